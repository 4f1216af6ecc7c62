/* chat_cli.c — `brigade chat`: a terminal client of a running brigade, for a
 * person at a keyboard (or a script feeding stdin). It is an ordinary API
 * client — a user key, the sessions API with streaming, the approvals API —
 * so it sees exactly what that key may see and nothing more.
 *
 * Each line typed is a message to the session's agent; the answer streams
 * in as it is produced, tool calls and results show as they happen, and an
 * approval the run waits for is asked on the spot (y/n). Lines starting with
 * "/" are commands (/help lists them). Colour when stdout is a terminal
 * (and NO_COLOR is not set).
 *
 * libcurl's easy interface, blocking: one request at a time, except that a
 * decision is posted on a second handle from inside the stream's callback
 * while the run waits for it. */
#include "app/cli.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"

#define CHAT_LINE_MAX 16384
#define CHAT_EVENT_MAX (1u << 20)        /* one SSE event's data; longer is cut off */
#define CHAT_BODY_MAX (4u << 20)         /* a JSON answer */

static const char chat_usage[] =
    "usage: brigade chat [--url URL] [--key KEY] [--agent NAME] [--session ID]\n"
    "\n"
    "An interactive chat with an agent of a running brigade, as the user whose\n"
    "key is given. Type a message and press Enter; the answer streams in, with\n"
    "tool calls and results as they happen. Commands:\n"
    "  /help              this list\n"
    "  /new [AGENT]       a new session (with AGENT, or the current agent)\n"
    "  /sessions          your sessions\n"
    "  /switch ID         continue session ID\n"
    "  /history           the current session's transcript\n"
    "  /usage             your spend and remaining budget\n"
    "  /approvals         your pending approvals\n"
    "  /approve ID | /deny ID [NOTE]   decide a pending call (run and call from /approvals)\n"
    "  /quit              leave (so does end of input)\n"
    "\n"
    "  --url URL       brigade's base URL (default $BRIGADE_URL, else http://127.0.0.1:8080)\n"
    "  --key KEY       a user key bk_usr_… or a user JWT (default $BRIGADE_KEY)\n"
    "  --agent NAME    the agent of a new session (default assistant)\n"
    "  --session ID    continue this session instead of starting one\n";

typedef struct chat {
    const char *url, *key;
    char        agent[128];
    char        session[64];
    bool        color;
    CURL       *curl;                    /* requests (and the stream) */
    CURL       *side;                    /* decisions posted during a stream */
    struct curl_slist *headers;
} chat;

/* ---- output ---- */

static const char *chat_c(const chat *c, const char *code) { return c->color ? code : ""; }
#define C_DIM "\033[2m"
#define C_ANSWER "\033[36m"
#define C_WARN "\033[33m"
#define C_ERR "\033[31m"
#define C_OFF "\033[0m"

/* Text from the server, shown as text: control characters (an ANSI escape a
 * hostile tool result could carry) are replaced, newlines and tabs kept. */
static void chat_print_text(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 && *p != '\n' && *p != '\t') fputc('?', stdout);
        else if (*p == 0x7f) fputc('?', stdout);
        else fputc(*p, stdout);
    }
}

static const char *json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* ---- plain requests ---- */

static size_t chat_collect(char *data, size_t size, size_t n, void *arg)
{
    buf *b = arg;
    size_t len = size * n;
    if (b->len + len > CHAT_BODY_MAX) return 0;   /* too large: the transfer fails */
    buf_append(b, data, len);
    return len;
}

/* One request with a JSON body (or none); *status and the parsed answer
 * (NULL if not JSON). Prints transport errors. */
static cJSON *chat_request(chat *c, CURL *h, const char *method, const char *path, const cJSON *body,
                           long *status)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", c->url, path);
    buf b;
    buf_init(&b);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, chat_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (text) curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    CURLcode rc = curl_easy_perform(h);
    *status = 0;
    cJSON *out = NULL;
    if (rc != CURLE_OK) {
        fprintf(stderr, "%sbrigade chat: %s: %s%s\n", chat_c(c, C_ERR), url, curl_easy_strerror(rc),
                chat_c(c, C_OFF));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
        buf_append(&b, "", 1);
        out = cJSON_Parse(b.data);
    }
    free(text);
    buf_free(&b);
    return out;
}

/* An error answer, as the API words it. */
static void chat_print_error(const chat *c, long status, const cJSON *o)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    printf("%serror %ld: %s%s\n", chat_c(c, C_ERR), status,
           e ? json_str(e, "message") : "(no answer)", chat_c(c, C_OFF));
}

/* ---- the stream of a run ---- */

typedef struct stream_state {
    chat *c;
    buf   line, event, data;
    bool  in_text;                       /* message.delta printed since the last newline */
    bool  ended;
} stream_state;

static void chat_newline_if_text(stream_state *s)
{
    if (s->in_text) {
        printf("%s\n", chat_c(s->c, C_OFF));
        s->in_text = false;
    }
}

static void chat_decide(chat *c, const char *run_id, const char *call_id, bool approve, const char *note);

/* Ask the person at the keyboard; true = approve. */
static bool chat_ask_approval(chat *c, const cJSON *d)
{
    printf("%sapproval needed: %s %s (%s)%s\n", chat_c(c, C_WARN), json_str(d, "tool"),
           json_str(d, "arguments"), json_str(d, "reason"), chat_c(c, C_OFF));
    printf("approve? [y/N] ");
    fflush(stdout);
    char answer[64];
    if (!fgets(answer, sizeof answer, stdin)) return false;
    return answer[0] == 'y' || answer[0] == 'Y';
}

static void chat_event(stream_state *s)
{
    chat *c = s->c;
    buf_append(&s->data, "", 1);
    buf_append(&s->event, "", 1);
    cJSON *d = cJSON_Parse(s->data.data);
    const char *ev = s->event.data;
    if (!d) goto out;
    if (strcmp(ev, "message.delta") == 0) {
        if (!s->in_text) fputs(chat_c(c, C_ANSWER), stdout);
        chat_print_text(json_str(d, "text"));
        s->in_text = true;
    } else if (strcmp(ev, "tool.call") == 0) {
        chat_newline_if_text(s);
        printf("%s[tool] %s ", chat_c(c, C_DIM), json_str(d, "name"));
        chat_print_text(json_str(d, "arguments"));
        printf("%s\n", chat_c(c, C_OFF));
    } else if (strcmp(ev, "tool.result") == 0) {
        chat_newline_if_text(s);
        printf("%s[result%s] ", chat_c(c, C_DIM),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "ok")) ? "" : ", failed");
        chat_print_text(json_str(d, "preview"));
        printf("%s\n", chat_c(c, C_OFF));
    } else if (strcmp(ev, "approval.required") == 0) {
        chat_newline_if_text(s);
        bool yes = chat_ask_approval(c, d);
        chat_decide(c, json_str(d, "run_id"), json_str(d, "id"), yes, yes ? NULL : "denied at the terminal");
    } else if (strcmp(ev, "auth.required") == 0) {
        chat_newline_if_text(s);
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(d, "connect_url");
        printf("%sthe tool %s needs your account at %s: connect it at %s — the run goes on once you "
               "have%s\n",
               chat_c(c, C_WARN), json_str(d, "tool"), json_str(d, "provider"),
               cJSON_IsString(u) ? u->valuestring : "(ask your admin: no link)", chat_c(c, C_OFF));
    } else if (strcmp(ev, "model.degraded") == 0) {
        chat_newline_if_text(s);
        printf("%s[budget nearly spent: answering with %s]%s\n", chat_c(c, C_DIM), json_str(d, "to"),
               chat_c(c, C_OFF));
    } else if (strcmp(ev, "run.completed") == 0) {
        if (!s->in_text) {
            /* nothing streamed (a tool-only turn): the final answer */
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(d, "message");
            const char *text = json_str(m, "content");
            if (text[0]) {
                fputs(chat_c(c, C_ANSWER), stdout);
                chat_print_text(text);
                s->in_text = true;
            }
        }
        chat_newline_if_text(s);
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(d, "usage");
        const cJSON *cost = cJSON_GetObjectItemCaseSensitive(u, "cost_usd");
        printf("%s[done: $%.6f]%s\n", chat_c(c, C_DIM), cJSON_IsNumber(cost) ? cost->valuedouble : 0.0,
               chat_c(c, C_OFF));
        s->ended = true;
    } else if (strcmp(ev, "run.failed") == 0) {
        chat_newline_if_text(s);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(d, "error");
        printf("%srun %s: %s: %s%s\n", chat_c(c, C_ERR), json_str(d, "status"), json_str(e, "code"),
               json_str(e, "message"), chat_c(c, C_OFF));
        s->ended = true;
    }
    fflush(stdout);
out:
    cJSON_Delete(d);
    s->event.len = 0;
    s->data.len = 0;
}

/* One line of the SSE stream (without its newline). */
static void chat_sse_line(stream_state *s, const char *line, size_t len)
{
    if (len && line[len - 1] == '\r') len--;
    if (len == 0) {
        if (s->data.len) chat_event(s);
        return;
    }
    if (line[0] == ':') return;                     /* a ping */
    if (len > 7 && memcmp(line, "event: ", 7) == 0) {
        s->event.len = 0;
        buf_append(&s->event, line + 7, len - 7);
    } else if (len > 6 && memcmp(line, "data: ", 6) == 0) {
        if (s->data.len + len < CHAT_EVENT_MAX) buf_append(&s->data, line + 6, len - 6);
    }
}

static size_t chat_stream_write(char *data, size_t size, size_t n, void *arg)
{
    stream_state *s = arg;
    size_t len = size * n;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            chat_sse_line(s, s->line.data ? s->line.data : "", s->line.len);
            s->line.len = 0;
        } else if (s->line.len < CHAT_EVENT_MAX) {
            buf_append(&s->line, &data[i], 1);
        }
    }
    return len;
}

static void chat_send(chat *c, const char *content)
{
    char url[2048];
    snprintf(url, sizeof url, "%s/v1/sessions/%s/messages", c->url, c->session);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "content", content);
    cJSON_AddBoolToObject(body, "stream", true);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    stream_state s;
    memset(&s, 0, sizeof s);
    s.c = c;
    buf_init(&s.line);
    buf_init(&s.event);
    buf_init(&s.data);
    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, chat_stream_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status != 200) {
        /* an ordinary JSON error, not a stream */
        buf_append(&s.line, "", 1);
        cJSON *o = cJSON_Parse(s.line.data);
        chat_print_error(c, status, o);
        cJSON_Delete(o);
    } else if (rc != CURLE_OK) {
        chat_newline_if_text(&s);
        printf("%sthe stream broke: %s%s\n", chat_c(c, C_ERR), curl_easy_strerror(rc), chat_c(c, C_OFF));
    } else if (!s.ended) {
        chat_newline_if_text(&s);
        printf("%sthe stream ended before the run did%s\n", chat_c(c, C_ERR), chat_c(c, C_OFF));
    }
    free(text);
    buf_free(&s.line);
    buf_free(&s.event);
    buf_free(&s.data);
}

static void chat_decide(chat *c, const char *run_id, const char *call_id, bool approve, const char *note)
{
    char path[512];
    snprintf(path, sizeof path, "/v1/runs/%s/approvals/%s", run_id, call_id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "decision", approve ? "approve" : "deny");
    if (note && note[0]) cJSON_AddStringToObject(body, "note", note);
    long status;
    cJSON *o = chat_request(c, c->side, "POST", path, body, &status);
    cJSON_Delete(body);
    if (status == 200) printf("%s[%s]%s\n", chat_c(c, C_DIM), approve ? "approved" : "denied", chat_c(c, C_OFF));
    else chat_print_error(c, status, o);
    cJSON_Delete(o);
}

/* ---- commands ---- */

static bool chat_new_session(chat *c, const char *agent_name)
{
    char agent[sizeof c->agent];            /* agent_name may be c->agent itself */
    snprintf(agent, sizeof agent, "%s", agent_name);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "agent", agent);
    long status;
    cJSON *o = chat_request(c, c->curl, "POST", "/v1/sessions", body, &status);
    cJSON_Delete(body);
    bool ok = status == 201;
    if (ok) {
        snprintf(c->session, sizeof c->session, "%s", json_str(o, "id"));
        snprintf(c->agent, sizeof c->agent, "%s", agent);
        printf("%ssession %s with %s%s\n", chat_c(c, C_DIM), c->session, c->agent, chat_c(c, C_OFF));
    } else {
        chat_print_error(c, status, o);
    }
    cJSON_Delete(o);
    return ok;
}

static void chat_list(chat *c, const char *path, void (*row)(const chat *c, const cJSON *item))
{
    long status;
    cJSON *o = chat_request(c, c->curl, "GET", path, NULL, &status);
    if (status != 200) {
        chat_print_error(c, status, o);
    } else {
        const cJSON *item;
        int n = 0;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(o, "data")) {
            row(c, item);
            n++;
        }
        if (!n) printf("(none)\n");
    }
    cJSON_Delete(o);
}

static void chat_session_row(const chat *c, const cJSON *s)
{
    printf("%s %s %-12s", strcmp(json_str(s, "id"), c->session) == 0 ? "*" : " ", json_str(s, "id"),
           json_str(s, "agent"));
    putchar('\n');
}

static void chat_message_row(const chat *c, const cJSON *m)
{
    (void)c;
    const char *content = json_str(m, "content");
    printf("%-9s ", json_str(m, "role"));
    chat_print_text(content[0] ? content : "(tool call)");
    putchar('\n');
}

static void chat_approval_row(const chat *c, const cJSON *a)
{
    (void)c;
    printf("run %s call %s: %s ", json_str(a, "run_id"), json_str(a, "id"), json_str(a, "tool"));
    chat_print_text(json_str(a, "arguments"));
    putchar('\n');
}

static void chat_show_usage(chat *c)
{
    long status;
    cJSON *o = chat_request(c, c->curl, "GET", "/v1/usage", NULL, &status);
    if (status != 200) {
        chat_print_error(c, status, o);
        cJSON_Delete(o);
        return;
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "budget");
    static const char *const periods[] = {"day", "month"};
    for (int i = 0; i < 2; i++) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(b, periods[i]);
        const cJSON *spent = cJSON_GetObjectItemCaseSensitive(p, "spent_usd");
        const cJSON *budget = cJSON_GetObjectItemCaseSensitive(p, "budget_usd");
        const cJSON *left = cJSON_GetObjectItemCaseSensitive(p, "remaining_usd");
        printf("%-5s spent $%.6f", periods[i], cJSON_IsNumber(spent) ? spent->valuedouble : 0.0);
        if (cJSON_IsNumber(budget))
            printf(" of $%.2f, $%.6f left (resets %s)", budget->valuedouble,
                   cJSON_IsNumber(left) ? left->valuedouble : 0.0, json_str(p, "resets_at"));
        else
            printf(" (no budget)");
        putchar('\n');
    }
    cJSON_Delete(o);
}

/* A command line ("/…"); false: leave. */
static bool chat_command(chat *c, char *line)
{
    char *save = NULL;
    char *cmd = strtok_r(line, " \t", &save);
    char *arg = strtok_r(NULL, " \t", &save);
    char *rest = arg ? strtok_r(NULL, "", &save) : NULL;
    char path[512];
    if (strcmp(cmd, "/quit") == 0 || strcmp(cmd, "/exit") == 0) return false;
    if (strcmp(cmd, "/help") == 0) {
        fputs(strstr(chat_usage, "  /help"), stdout);
    } else if (strcmp(cmd, "/new") == 0) {
        char agent[128];
        snprintf(agent, sizeof agent, "%s", arg ? arg : c->agent);
        chat_new_session(c, agent);
    } else if (strcmp(cmd, "/sessions") == 0) {
        chat_list(c, "/v1/sessions", chat_session_row);
    } else if (strcmp(cmd, "/switch") == 0 && arg) {
        snprintf(path, sizeof path, "/v1/sessions/%s", arg);
        long status;
        cJSON *o = chat_request(c, c->curl, "GET", path, NULL, &status);
        if (status == 200) {
            snprintf(c->session, sizeof c->session, "%s", json_str(o, "id"));
            snprintf(c->agent, sizeof c->agent, "%s", json_str(o, "agent"));
            printf("%ssession %s with %s%s\n", chat_c(c, C_DIM), c->session, c->agent, chat_c(c, C_OFF));
        } else {
            chat_print_error(c, status, o);
        }
        cJSON_Delete(o);
    } else if (strcmp(cmd, "/history") == 0) {
        snprintf(path, sizeof path, "/v1/sessions/%s/messages", c->session);
        chat_list(c, path, chat_message_row);
    } else if (strcmp(cmd, "/usage") == 0) {
        chat_show_usage(c);
    } else if (strcmp(cmd, "/approvals") == 0) {
        chat_list(c, "/v1/approvals", chat_approval_row);
    } else if ((strcmp(cmd, "/approve") == 0 || strcmp(cmd, "/deny") == 0) && arg && rest) {
        /* /approve RUN_ID CALL_ID, /deny RUN_ID CALL_ID [NOTE] */
        char *note_save = NULL;
        char *call = strtok_r(rest, " \t", &note_save);
        char *note = strtok_r(NULL, "", &note_save);
        chat_decide(c, arg, call, cmd[1] == 'a', note);
    } else {
        printf("unknown command or missing argument: %s (/help lists them)\n", cmd);
    }
    return true;
}

/* ---- main ---- */

int app_chat_main(int argc, char **argv)
{
    chat c;
    memset(&c, 0, sizeof c);
    c.url = getenv("BRIGADE_URL");
    c.key = getenv("BRIGADE_KEY");
    snprintf(c.agent, sizeof c.agent, "assistant");
    const char *session = NULL;
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},   {"key", required_argument, NULL, 'k'},
        {"agent", required_argument, NULL, 'a'}, {"session", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'u': c.url = optarg; break;
        case 'k': c.key = optarg; break;
        case 'a': snprintf(c.agent, sizeof c.agent, "%s", optarg); break;
        case 's': session = optarg; break;
        case 'h': fputs(chat_usage, stdout); return 0;
        default: fputs(chat_usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "brigade chat: unexpected argument \"%s\"\n\n%s", argv[optind], chat_usage);
        return 2;
    }
    if (!c.url || !c.url[0]) c.url = "http://127.0.0.1:8080";
    if (!c.key || !c.key[0]) {
        fprintf(stderr, "brigade chat: no key: give --key or set BRIGADE_KEY (a user key bk_usr_…)\n");
        return 2;
    }
    size_t ulen = strlen(c.url);
    char url[1024];
    snprintf(url, sizeof url, "%.*s", (int)(ulen && c.url[ulen - 1] == '/' ? ulen - 1 : ulen), c.url);
    c.url = url;
    const char *no_color = getenv("NO_COLOR");
    c.color = isatty(STDOUT_FILENO) && !(no_color && no_color[0]);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    c.curl = curl_easy_init();
    c.side = curl_easy_init();
    char auth[4096];
    snprintf(auth, sizeof auth, "authorization: Bearer %s", c.key);
    c.headers = curl_slist_append(NULL, auth);
    c.headers = curl_slist_append(c.headers, "content-type: application/json");
    int rc = 0;
    if (session) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "/switch %s", session);
        chat_command(&c, cmd);
        if (!c.session[0]) rc = 1;
    } else if (!chat_new_session(&c, c.agent)) {
        rc = 1;
    }
    bool interactive = isatty(STDIN_FILENO);
    char *line = malloc(CHAT_LINE_MAX);
    while (rc == 0 && line) {
        if (interactive) {
            printf("%s> %s", chat_c(&c, C_DIM), chat_c(&c, C_OFF));
            fflush(stdout);
        }
        if (!fgets(line, CHAT_LINE_MAX, stdin)) break;
        size_t n = strlen(line);
        if (n == CHAT_LINE_MAX - 1 && line[n - 1] != '\n') {
            printf("%sa message is at most %d bytes: not sent%s\n", chat_c(&c, C_ERR), CHAT_LINE_MAX - 2,
                   chat_c(&c, C_OFF));
            int ch;
            while ((ch = getchar()) != EOF && ch != '\n') {}
            continue;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (!n) continue;
        if (line[0] == '/') {
            if (!chat_command(&c, line)) break;
        } else {
            chat_send(&c, line);
        }
    }
    free(line);
    curl_slist_free_all(c.headers);
    curl_easy_cleanup(c.curl);
    curl_easy_cleanup(c.side);
    curl_global_cleanup();
    explicit_bzero(auth, sizeof auth);
    return rc;
}
