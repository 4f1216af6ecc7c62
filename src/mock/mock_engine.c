/* mock_engine.c — the mock LLM's planning and rendering (see mock_engine.h). */
#include "mock/mock_engine.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json_escape.h"
#include "util/strfmt.h"

/* ------------------------------------------------------------------ faults */

static const char *const mock_fault_names[MOCK_FAULT__COUNT] = {
    "none", "rate_limit", "server_error", "hang", "truncate", "malformed", "slow_first_byte",
    "overloaded", "ignore_max_tokens",
};

const char *mock_fault_name(mock_fault f)
{
    return (unsigned)f < MOCK_FAULT__COUNT ? mock_fault_names[f] : "unknown";
}

mock_fault mock_fault_parse(const char *s, size_t len)
{
    for (int i = 1; i < MOCK_FAULT__COUNT; i++)
        if (strlen(mock_fault_names[i]) == len && memcmp(mock_fault_names[i], s, len) == 0)
            return (mock_fault)i;
    return MOCK_FAULT_NONE;
}

void mock_fault_table_init(mock_fault_table *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
}

void mock_fault_table_destroy(mock_fault_table *t) { pthread_mutex_destroy(&t->mu); }

uint32_t mock_fault_table_hit(mock_fault_table *t, uint64_t key)
{
    pthread_mutex_lock(&t->mu);
    size_t victim = 0;
    uint32_t n = 0;
    t->tick++;
    for (size_t i = 0; i < MOCK_FAULT_TABLE_SIZE; i++) {
        if (t->e[i].used && t->e[i].key == key) {
            t->e[i].used = t->tick;
            n = ++t->e[i].count;
            goto out;
        }
        if (t->e[i].used < t->e[victim].used) victim = i;
    }
    /* Not seen (or forgotten): the least recently used slot takes it. */
    t->e[victim].key = key;
    t->e[victim].count = n = 1;
    t->e[victim].used = t->tick;
out:
    pthread_mutex_unlock(&t->mu);
    return n;
}

static mock_fault_table mock_global_faults;
static pthread_once_t   mock_global_once = PTHREAD_ONCE_INIT;
static void mock_global_init(void) { mock_fault_table_init(&mock_global_faults); }

mock_fault_table *mock_fault_table_global(void)
{
    pthread_once(&mock_global_once, mock_global_init);
    return &mock_global_faults;
}

/* ----------------------------------------------------------------- helpers */

static const char *const mock_words[64] = {
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
    "yankee", "zulu", "amber", "basil", "cedar", "dune", "ember", "fern",
    "garnet", "harbor", "iris", "jade", "kelp", "lotus", "maple", "nectar",
    "olive", "pepper", "quartz", "raven", "saffron", "thyme", "umber", "violet",
    "willow", "xenon", "yarrow", "zinnia", "anchor", "beacon", "canyon", "delta2",
    "estuary", "fjord", "glacier", "horizon", "island", "jetty", "knoll", "lagoon",
};

const char *mock_word(uint32_t i) { return mock_words[i % 64]; }

int64_t mock_count_text_tokens(size_t bytes) { return (int64_t)((bytes + 3) / 4); }

uint64_t mock_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Append text of a message's content: a string, or the "text" of each part
 * of an array. Returns the byte count (also when out is NULL). */
static size_t mock_content_text(const cJSON *content, buf *out)
{
    size_t n = 0;
    if (cJSON_IsString(content)) {
        n = strlen(content->valuestring);
        if (out) buf_append(out, content->valuestring, n);
    } else if (cJSON_IsArray(content)) {
        const cJSON *part;
        cJSON_ArrayForEach(part, content) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(t)) {
                size_t k = strlen(t->valuestring);
                if (out) buf_append(out, t->valuestring, k);
                n += k;
            }
        }
    }
    return n;
}

static size_t mock_tool_calls_bytes(const cJSON *msg)
{
    size_t n = 0;
    const cJSON *tc, *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    cJSON_ArrayForEach(tc, calls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        if (cJSON_IsString(name)) n += strlen(name->valuestring);
        if (cJSON_IsString(args)) n += strlen(args->valuestring);
    }
    return n;
}

static void mock_plan_fail(mock_plan *p, const char *msg, const char *param)
{
    p->status = 400;
    p->err_message = msg;
    p->err_param = param;
}

static bool mock_parse_u32(const char **s, const char *end, uint32_t max, uint32_t *out)
{
    const char *q = *s;
    uint64_t v = 0;
    if (q >= end || *q < '0' || *q > '9') return false;
    while (q < end && *q >= '0' && *q <= '9') {
        v = v * 10 + (uint64_t)(*q - '0');
        if (v > max) return false;
        q++;
    }
    *s = q;
    *out = (uint32_t)v;
    return true;
}

typedef struct mock_markers {
    bool        has_tool;
    bool        tool_loop;    /* [[tool_loop]]: call the tool again after every result */
    uint32_t    tool_loop_n;  /* [[tool_loop:N]]: …until N results came back (0: for ever) */
    const char *tool_name;
    const char *tool_args;
    size_t      tool_args_len;
    mock_fault  fault;
    bool        fault_counted;
    uint32_t    fault_n;
    bool        has_latency;
    uint32_t    latency_ms;
    bool        has_tokens;
    uint32_t    tokens;
} mock_markers;

/* Scan `text` for [[…]] markers. Unknown [[…]] text is left alone (it may be
 * ordinary prose); a known marker that is malformed is a 400, because a test
 * author wants to hear about a typo rather than get a silent normal reply. */
static bool mock_parse_markers(const char *text, size_t len, arena *a, mock_markers *m,
                               const char **err)
{
    const char *s = text, *end = text + len;
    memset(m, 0, sizeof(*m));
    while (s + 2 <= end) {
        const char *o = memmem(s, (size_t)(end - s), "[[", 2);
        if (!o) break;
        const char *q = o + 2;
        size_t rest = (size_t)(end - q);
        s = q;
        if (rest >= 5 && memcmp(q, "tool:", 5) == 0) {
            q += 5;
            const char *name = q;
            size_t nlen;
            if (q < end && *q == '"') {
                /* a quoted name: any printable bytes but the quote — what a
                 * hostile model might call a tool (tests of who shows it) */
                name = ++q;
                while (q < end && *q != '"' && (unsigned char)*q >= 0x20) q++;
                nlen = (size_t)(q - name);
                if (q >= end || *q != '"') { *err = "invalid [[tool:\"NAME\" {json}]] marker: unclosed name"; return false; }
                q++;
            } else {
                while (q < end && (((*q | 32) >= 'a' && (*q | 32) <= 'z') || (*q >= '0' && *q <= '9') ||
                                   *q == '_' || *q == '-' || *q == '.'))
                    q++;
                nlen = (size_t)(q - name);
            }
            if (nlen == 0 || nlen > 64) { *err = "invalid [[tool:NAME {json}]] marker: bad tool name"; return false; }
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\n')) q++;
            const char *args = "{}";
            size_t alen = 2;
            if (q < end && *q == '{') {
                const char *jend = NULL;
                cJSON *j = cJSON_ParseWithLengthOpts(q, (size_t)(end - q), &jend, false);
                if (!j || !cJSON_IsObject(j)) {
                    cJSON_Delete(j);
                    *err = "invalid [[tool:NAME {json}]] marker: arguments are not a JSON object";
                    return false;
                }
                char *compact = cJSON_PrintUnformatted(j);
                cJSON_Delete(j);
                if (!compact) { *err = "out of memory"; return false; }
                alen = strlen(compact);
                args = arena_strndup(a, compact, alen);
                free(compact);
                q = jend;
                while (q < end && (*q == ' ' || *q == '\t' || *q == '\n')) q++;
            }
            if (end - q < 2 || q[0] != ']' || q[1] != ']') {
                *err = "invalid [[tool:NAME {json}]] marker: missing ]]";
                return false;
            }
            m->has_tool = true;
            m->tool_name = arena_strndup(a, name, nlen);
            m->tool_args = args;
            m->tool_args_len = alen;
            s = q + 2;
        } else if (rest >= 11 && memcmp(q, "tool_loop]]", 11) == 0) {
            m->tool_loop = true;
            m->tool_loop_n = 0;
            s = q + 11;
        } else if (rest >= 10 && memcmp(q, "tool_loop:", 10) == 0) {
            /* a bounded loop: N tool steps, then the answer (bench/runs.sh
             * times a run of many steps with it) */
            q += 10;
            if (!mock_parse_u32(&q, end, MOCK_MAX_TOOL_LOOP, &m->tool_loop_n) || m->tool_loop_n == 0 ||
                end - q < 2 || q[0] != ']' || q[1] != ']') {
                *err = "invalid [[tool_loop:N]] marker: N must be a number from 1 to 1000";
                return false;
            }
            m->tool_loop = true;
            s = q + 2;
        } else if (rest >= 6 && memcmp(q, "fault:", 6) == 0) {
            q += 6;
            const char *k = q;
            while (q < end && ((*q >= 'a' && *q <= 'z') || *q == '_')) q++;
            mock_fault f = mock_fault_parse(k, (size_t)(q - k));
            if (f == MOCK_FAULT_NONE) {
                *err = "invalid [[fault:KIND]] marker: KIND is one of rate_limit, server_error, "
                       "hang, truncate, malformed, slow_first_byte, overloaded";
                return false;
            }
            m->fault = f;
            m->fault_counted = false;
            if (q < end && *q == ':') {
                q++;
                if (!mock_parse_u32(&q, end, 1000000, &m->fault_n)) {
                    *err = "invalid [[fault:KIND:N]] marker: N must be a number";
                    return false;
                }
                m->fault_counted = true;
            }
            if (end - q < 2 || q[0] != ']' || q[1] != ']') {
                *err = "invalid [[fault:KIND]] marker: missing ]]";
                return false;
            }
            s = q + 2;
        } else if (rest >= 8 && memcmp(q, "latency:", 8) == 0) {
            q += 8;
            if (!mock_parse_u32(&q, end, MOCK_MAX_LATENCY_MS, &m->latency_ms) || end - q < 2 ||
                q[0] != ']' || q[1] != ']') {
                *err = "invalid [[latency:MS]] marker: MS must be a number up to 600000";
                return false;
            }
            m->has_latency = true;
            s = q + 2;
        } else if (rest >= 7 && memcmp(q, "tokens:", 7) == 0) {
            q += 7;
            if (!mock_parse_u32(&q, end, MOCK_MAX_TOKENS, &m->tokens) || end - q < 2 ||
                q[0] != ']' || q[1] != ']') {
                *err = "invalid [[tokens:N]] marker: N must be a number up to 100000";
                return false;
            }
            m->has_tokens = true;
            s = q + 2;
        }
    }
    return true;
}

/* Words of a text reply: generated (n words from the list). */
static void mock_plan_words(mock_plan *p, arena *a, uint32_t n)
{
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++) len += strlen(mock_word(i)) + (i ? 1 : 0);
    char *t = arena_alloc(a, len + 1);
    uint32_t *off = arena_alloc(a, sizeof(uint32_t) * ((size_t)n + 1));
    size_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        off[i] = (uint32_t)at;
        if (i) t[at++] = ' ';
        size_t k = strlen(mock_word(i));
        memcpy(t + at, mock_word(i), k);
        at += k;
    }
    t[at] = '\0';
    off[n] = (uint32_t)at;
    p->text = t;
    p->text_len = at;
    p->tok_off = off;
    p->n_tokens = n;
}

/* Words of a given text: a token starts at each whitespace run before a word
 * (the first at 0), so the tokens concatenated are the text exactly. */
static bool mock_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static void mock_plan_text(mock_plan *p, arena *a, const char *t, size_t len)
{
    uint32_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (!mock_ws(t[i]) && (i == 0 || mock_ws(t[i - 1]))) n++;
    uint32_t *off = arena_alloc(a, sizeof(uint32_t) * ((size_t)n + 1));
    uint32_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (mock_ws(t[i]) || (i > 0 && !mock_ws(t[i - 1]))) continue;
        size_t start = i;
        if (k == 0) start = 0;
        else while (start > 0 && mock_ws(t[start - 1])) start--;
        off[k++] = (uint32_t)start;
    }
    off[n] = (uint32_t)len;
    p->text = t;
    p->text_len = len;
    p->tok_off = off;
    p->n_tokens = n;
}

/* A different 64-bit value per call (splitmix64 of a counter). */
static uint64_t mock_call_nonce(void)
{
    static _Atomic uint64_t seq;
    uint64_t z = atomic_fetch_add(&seq, 1) + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* response_format json_schema: the reply is a minimal instance of the
 * schema; json_object: an object holding the usual words. false when the
 * request asks for neither. */
static bool mock_plan_structured(mock_plan *p, arena *a, const cJSON *root)
{
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, "response_format");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rf, "type");
    if (!cJSON_IsString(type)) return false;
    buf t;
    buf_init(&t);
    if (strcmp(type->valuestring, "json_schema") == 0) {
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
        mock_schema_instance(cJSON_GetObjectItemCaseSensitive(js, "schema"), &t);
    } else if (strcmp(type->valuestring, "json_object") == 0) {
        buf_puts(&t, "{\"answer\": \"");
        for (uint32_t i = 0; i < MOCK_DEFAULT_TOKENS; i++) buf_printf(&t, "%s%s", i ? " " : "", mock_word(i));
        buf_puts(&t, "\"}");
    } else {
        buf_free(&t);
        return false;
    }
    mock_plan_text(p, a, arena_strndup(a, t.data, t.len), t.len);
    buf_free(&t);
    return true;
}

void mock_plan_make(mock_plan *p, arena *a, const char *body, size_t len, const mock_options *opt)
{
    memset(p, 0, sizeof(*p));
    p->status = 200;
    p->model = "mock";
    p->finish_reason = "stop";
    p->hash = mock_hash(body ? body : "", body ? len : 0);
    /* Ids are unique per call, as a provider's are (clients key state on
     * them): the body's hash mixed with a process-wide call counter. The
     * fault table keys on the hash alone, so a retry of the same body
     * still counts as the same request. */
    p->call_nonce = mock_call_nonce();
    snprintf(p->id, sizeof(p->id), "chatcmpl-%016" PRIx64, p->hash ^ p->call_nonce);
    p->created = (int64_t)time(NULL);

    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    if (!root || !cJSON_IsObject(root)) {
        mock_plan_fail(p, "request body is not a valid JSON object", NULL);
        goto done;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsString(model) || !model->valuestring[0]) {
        mock_plan_fail(p, "'model' is required and must be a non-empty string", "model");
        goto done;
    }
    p->model = arena_strdup(a, model->valuestring);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        mock_plan_fail(p, "'messages' is required and must be a non-empty array", "messages");
        goto done;
    }
    p->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stream"));
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    p->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    int64_t max_tokens = -1;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens");
    if (!cJSON_IsNumber(mt)) mt = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    /* clamped before the cast: a double past int64's range makes the cast undefined */
    if (cJSON_IsNumber(mt) && mt->valuedouble >= 0)
        max_tokens = mt->valuedouble < 1e15 ? (int64_t)mt->valuedouble : (int64_t)1e15;
    p->n_choices = 1;
    const cJSON *nc = cJSON_GetObjectItemCaseSensitive(root, "n");
    if (nc && !cJSON_IsNull(nc)) {
        if (!cJSON_IsNumber(nc) || nc->valuedouble < 1 || nc->valuedouble > MOCK_MAX_CHOICES ||
            nc->valuedouble != (double)(int)nc->valuedouble) {
            mock_plan_fail(p, "'n' must be an integer from 1 to 128", "n");
            goto done;
        }
        p->n_choices = (uint32_t)nc->valuedouble;
    }

    /* Prompt tokens, the last user message, and the last tool result after it. */
    const cJSON *m, *last_user = NULL, *last_tool = NULL;
    uint32_t tool_results = 0;   /* since the last user message */
    int i = 0;
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            mock_plan_fail(p, arena_printf(a, "messages[%d] must be an object with a string 'role'", i),
                           "messages");
            goto done;
        }
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        size_t bytes = mock_content_text(content, NULL) + mock_tool_calls_bytes(m);
        p->prompt_tokens += 3 + mock_count_text_tokens(bytes);
        if (strcmp(role->valuestring, "user") == 0) {
            last_user = m;
            last_tool = NULL;
            tool_results = 0;
        } else if (strcmp(role->valuestring, "tool") == 0 && last_user) {
            last_tool = m;
            tool_results++;
        }
        i++;
    }

    mock_markers mk;
    memset(&mk, 0, sizeof(mk));
    const char *user_text = NULL;
    size_t user_len = 0;
    if (last_user) {
        buf t;
        buf_init(&t);
        mock_content_text(cJSON_GetObjectItemCaseSensitive(last_user, "content"), &t);
        const char *err = NULL;
        bool ok = mock_parse_markers(t.data ? t.data : "", t.len, a, &mk, &err);
        user_len = t.len;
        user_text = arena_strndup(a, t.data ? t.data : "", t.len);
        buf_free(&t);
        if (!ok) {
            mock_plan_fail(p, err, "messages");
            goto done;
        }
    }
    p->has_latency = mk.has_latency;
    p->latency_ms = mk.latency_ms;
    p->has_tokens = mk.has_tokens;

    /* This attempt's fault: a forced one wins; a counted marker fails only
     * the first N attempts of this exact body. */
    if (opt && opt->forced_fault != MOCK_FAULT_NONE) {
        p->fault = opt->forced_fault;
    } else if (mk.fault != MOCK_FAULT_NONE) {
        if (mk.fault_counted && opt && opt->faults) {
            uint32_t attempt = mock_fault_table_hit(opt->faults, p->hash);
            p->fault = attempt <= mk.fault_n ? mk.fault : MOCK_FAULT_NONE;
        } else if (!mk.fault_counted || mk.fault_n > 0) {
            p->fault = mk.fault;
        }
    }

    uint32_t chunks_cfg = opt ? opt->stream_chunks : 0;
    /* A model stuck in a loop ([[tool_loop]]) asks again after each result;
     * each call gets its own id (the number of messages so far). */
    bool user_call = mk.has_tool &&
                     (!last_tool || (mk.tool_loop && (mk.tool_loop_n == 0 || tool_results < mk.tool_loop_n)));
    /* A gullible model, with nothing left of the user's to do, does what
     * untrusted text asks (mock_gullible.c). */
    mock_injected inj;
    bool injected = !user_call && opt && opt->gullible &&
                    mock_gullible_pick(root, user_text, user_len, a, &inj);
    if (user_call || injected) {
        p->reply = MOCK_REPLY_TOOL_CALL;
        p->tool_name = user_call ? mk.tool_name : inj.name;
        p->tool_args = user_call ? mk.tool_args : inj.args;
        p->tool_args_len = user_call ? mk.tool_args_len : strlen(inj.args);
        snprintf(p->tool_call_id, sizeof(p->tool_call_id), "call_%016" PRIx64,
                 p->hash ^ p->call_nonce ^ mock_hash(p->tool_name, strlen(p->tool_name)) ^ (uint64_t)i);
        p->finish_reason = "tool_calls";
        p->completion_tokens = mock_count_text_tokens(strlen(p->tool_name) + p->tool_args_len);
        uint32_t frags = chunks_cfg ? chunks_cfg : 4;
        if (frags > p->tool_args_len) frags = (uint32_t)p->tool_args_len;
        p->n_chunks = frags ? frags : 1;
    } else {
        p->reply = MOCK_REPLY_TEXT;
        if (last_tool) {
            /* Quote the tool result, naming the tool whose call it answers. */
            const char *tname = "tool";
            const cJSON *tcid = cJSON_GetObjectItemCaseSensitive(last_tool, "tool_call_id");
            cJSON_ArrayForEach(m, msgs) {
                const cJSON *tc, *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
                cJSON_ArrayForEach(tc, calls) {
                    const cJSON *id = cJSON_GetObjectItemCaseSensitive(tc, "id");
                    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
                    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
                    if (cJSON_IsString(tcid) && cJSON_IsString(id) && cJSON_IsString(nm) &&
                        strcmp(id->valuestring, tcid->valuestring) == 0)
                        tname = nm->valuestring;
                }
            }
            buf q;
            buf_init(&q);
            buf_printf(&q, "Tool %s returned: ", tname);
            buf c;
            buf_init(&c);
            mock_content_text(cJSON_GetObjectItemCaseSensitive(last_tool, "content"), &c);
            size_t clen = c.len > MOCK_QUOTE_MAX ? MOCK_QUOTE_MAX : c.len;
            /* Do not cut a UTF-8 sequence in half. */
            while (clen > 0 && clen < c.len && ((unsigned char)c.data[clen] & 0xC0) == 0x80) clen--;
            if (clen) buf_append(&q, c.data, clen);
            char *txt = arena_strndup(a, q.data, q.len);
            mock_plan_text(p, a, txt, q.len);
            buf_free(&q);
            buf_free(&c);
        } else if (mock_plan_structured(p, a, root)) {
            /* the JSON answer of a response_format, in full (a cut would
             * not parse) */
        } else {
            uint32_t n = mk.has_tokens ? mk.tokens : MOCK_DEFAULT_TOKENS;
            /* ignore_max_tokens: a provider that answers past the cap. */
            if (max_tokens >= 0 && (int64_t)n > max_tokens && p->fault != MOCK_FAULT_IGNORE_MAX_TOKENS) {
                n = (uint32_t)max_tokens;
                p->finish_reason = "length";
            }
            mock_plan_words(p, a, n);
        }
        p->completion_tokens = p->n_tokens;
        /* [[tokens:N]] promises N chunks; otherwise the configured count. */
        if (mk.has_tokens || chunks_cfg == 0 || chunks_cfg > p->n_tokens)
            p->n_chunks = p->n_tokens;
        else
            p->n_chunks = chunks_cfg;
    }

    /* Every choice is the same reply, and each is billed. */
    p->completion_tokens *= p->n_choices;

done:
    cJSON_Delete(root);
}

/* --------------------------------------------------------------- rendering */

/* "%" PRId64 onto out, without printf: the mock renders every chunk of
 * every benchmark's stream, and two printf calls a chunk were a seventh of
 * a held agent run's instructions with the in-process mock. */
static void mock_put_i64(buf *out, int64_t v)
{
    char d[24];
    buf_append(out, d, fmt_i64(d, v));
}

static void mock_render_head(const mock_plan *p, buf *out, const char *object)
{
    buf_puts(out, "{\"id\":\"");
    buf_puts(out, p->id);
    buf_puts(out, "\",\"object\":\"");
    buf_puts(out, object);
    buf_puts(out, "\",\"created\":");
    mock_put_i64(out, p->created);
    buf_puts(out, ",\"model\":");
    json_escape_string(out, p->model, strlen(p->model));
    buf_puts(out, ",\"system_fingerprint\":\"fp_mock\"");
}

static void mock_render_usage(const mock_plan *p, buf *out)
{
    buf_puts(out, "\"usage\":{\"prompt_tokens\":");
    mock_put_i64(out, p->prompt_tokens);
    buf_puts(out, ",\"completion_tokens\":");
    mock_put_i64(out, p->completion_tokens);
    buf_puts(out, ",\"total_tokens\":");
    mock_put_i64(out, p->prompt_tokens + p->completion_tokens);
    buf_puts(out, "}");
}

void mock_render_completion(const mock_plan *p, buf *out)
{
    buf_reserve(out, 320 + (p->text_len + p->tool_args_len * 2 + 128) * p->n_choices);
    mock_render_head(p, out, "chat.completion");
    buf_puts(out, ",\"choices\":[");
    for (uint32_t k = 0; k < (p->n_choices ? p->n_choices : 1); k++) {
        buf_printf(out, "%s{\"index\":%u,\"message\":{\"role\":\"assistant\",\"content\":",
                   k ? "," : "", k);
        if (p->reply == MOCK_REPLY_TOOL_CALL) {
            buf_printf(out, "null,\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":",
                       p->tool_call_id);
            json_escape_string(out, p->tool_name, strlen(p->tool_name));
            buf_puts(out, ",\"arguments\":");
            json_escape_string(out, p->tool_args, p->tool_args_len);
            buf_puts(out, "}}]");
        } else {
            json_escape_string(out, p->text ? p->text : "", p->text_len);
        }
        buf_printf(out, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"%s\"}", p->finish_reason);
    }
    buf_puts(out, "],");
    mock_render_usage(p, out);
    buf_puts(out, "}");
}

/* Events of one choice: role chunk + (tool header?) + chunks + finish. */
static size_t mock_choice_events(const mock_plan *p)
{
    return 1 + (size_t)p->n_chunks + 1 + (p->reply == MOCK_REPLY_TOOL_CALL ? 1 : 0);
}

size_t mock_event_count(const mock_plan *p)
{
    size_t n = mock_choice_events(p) * (p->n_choices ? p->n_choices : 1);
    if (p->include_usage) n++;
    return n;
}

size_t mock_frag_at(const mock_plan *p, size_t k)
{
    size_t at = p->tool_args_len * k / p->n_chunks;
    while (at > 0 && at < p->tool_args_len && ((unsigned char)p->tool_args[at] & 0xC0) == 0x80) at--;
    return at;
}

void mock_render_event(const mock_plan *p, size_t i, buf *out)
{
    size_t count = mock_event_count(p);
    if (i >= count) return;
    buf_reserve(out, 256);
    mock_render_head(p, out, "chat.completion.chunk");
    if (p->include_usage && i == count - 1) {
        buf_puts(out, ",\"choices\":[],");
        mock_render_usage(p, out);
        buf_puts(out, "}");
        return;
    }
    /* Choice `choice`'s event `i` (choices stream one after the other). */
    size_t per = mock_choice_events(p), choice = i / per;
    i %= per;
    buf_puts(out, ",\"choices\":[{\"index\":");
    mock_put_i64(out, (int64_t)choice);
    buf_puts(out, ",\"delta\":");
    size_t finish_at = per - 1;
    const char *finish = "null";
    if (i == 0) {
        buf_puts(out, p->reply == MOCK_REPLY_TOOL_CALL ? "{\"role\":\"assistant\",\"content\":null}"
                                                       : "{\"role\":\"assistant\",\"content\":\"\"}");
    } else if (i == finish_at) {
        buf_puts(out, "{}");
        finish = p->finish_reason;
    } else if (p->reply == MOCK_REPLY_TOOL_CALL && i == 1) {
        buf_puts(out, "{\"tool_calls\":[{\"index\":0,\"id\":\"");
        buf_puts(out, p->tool_call_id);
        buf_puts(out, "\",\"type\":\"function\",\"function\":{\"name\":");
        json_escape_string(out, p->tool_name, strlen(p->tool_name));
        buf_puts(out, ",\"arguments\":\"\"}}]}");
    } else if (p->reply == MOCK_REPLY_TOOL_CALL) {
        size_t k = i - 2, a = mock_frag_at(p, k), b = mock_frag_at(p, k + 1);
        buf_puts(out, "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":");
        json_escape_string(out, p->tool_args + a, b - a);
        buf_puts(out, "}}]}");
    } else {
        size_t k = i - 1;
        uint32_t t0 = (uint32_t)((uint64_t)p->n_tokens * k / p->n_chunks);
        uint32_t t1 = (uint32_t)((uint64_t)p->n_tokens * (k + 1) / p->n_chunks);
        buf_puts(out, "{\"content\":");
        json_escape_string(out, p->text + p->tok_off[t0], p->tok_off[t1] - p->tok_off[t0]);
        buf_puts(out, "}");
    }
    if (finish[0] == 'n') {
        buf_puts(out, ",\"logprobs\":null,\"finish_reason\":null}]}");
    } else {
        buf_puts(out, ",\"logprobs\":null,\"finish_reason\":\"");
        buf_puts(out, finish);
        buf_puts(out, "\"}]}");
    }
}

void mock_render_malformed(const mock_plan *p, buf *out)
{
    /* Looks like the start of a real reply, then stops: unterminated string,
     * object and array. */
    mock_render_head(p, out, p->stream ? "chat.completion.chunk" : "chat.completion");
    buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"alpha br");
}

void mock_render_error(buf *out, const char *type, const char *code, const char *message,
                       const char *param)
{
    buf_puts(out, "{\"error\":{\"message\":");
    json_escape_string(out, message, strlen(message));
    buf_puts(out, ",\"type\":");
    json_escape_string(out, type, strlen(type));
    buf_puts(out, ",\"param\":");
    if (param) json_escape_string(out, param, strlen(param));
    else buf_puts(out, "null");
    buf_puts(out, ",\"code\":");
    if (code) json_escape_string(out, code, strlen(code));
    else buf_puts(out, "null");
    buf_puts(out, "}}");
}

int mock_render_fault_error(const mock_plan *p, buf *out, uint32_t *retry_after_s)
{
    if (retry_after_s) *retry_after_s = 0;
    if (p->status != 200) {
        mock_render_error(out, "invalid_request_error", "invalid_request", p->err_message,
                          p->err_param);
        return p->status;
    }
    if (p->fault == MOCK_FAULT_RATE_LIMIT) {
        if (retry_after_s) *retry_after_s = 1;
        mock_render_error(out, "rate_limit_error", "rate_limit_exceeded",
                          "mock-llm: rate limit reached (injected fault), retry after 1s", NULL);
        return 429;
    }
    if (p->fault == MOCK_FAULT_OVERLOADED) {
        mock_render_error(out, "server_error", "overloaded",
                          "mock-llm: overloaded (injected fault)", NULL);
        return 503;
    }
    mock_render_error(out, "server_error", "internal_error",
                      "mock-llm: internal server error (injected fault)", NULL);
    return 500;
}

/* -------------------------------------------------------------- statistics */

void mock_stats_init(mock_stats *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
}

void mock_stats_destroy(mock_stats *s) { pthread_mutex_destroy(&s->mu); }

void mock_stats_record(mock_stats *s, const mock_plan *p)
{
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    if (p->status != 200) {
        atomic_fetch_add_explicit(&s->bad_requests, 1, memory_order_relaxed);
        return;
    }
    if (p->stream) atomic_fetch_add_explicit(&s->streams, 1, memory_order_relaxed);
    if (p->fault != MOCK_FAULT_NONE)
        atomic_fetch_add_explicit(&s->faults[p->fault], 1, memory_order_relaxed);
    else if (p->reply == MOCK_REPLY_TOOL_CALL)
        atomic_fetch_add_explicit(&s->tool_calls, 1, memory_order_relaxed);

    size_t nlen = strlen(p->model);
    if (nlen >= sizeof(s->models[0].name)) nlen = sizeof(s->models[0].name) - 1;
    /* Lock-free lookup of names already present; a slot's name is written
     * before `used` is published, under the mutex. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < MOCK_STATS_MODELS; i++) {
            if (!atomic_load_explicit(&s->models[i].used, memory_order_acquire)) {
                if (pass == 0) break;
                memcpy(s->models[i].name, p->model, nlen);
                s->models[i].name[nlen] = '\0';
                atomic_store_explicit(&s->models[i].count, 1, memory_order_relaxed);
                atomic_store_explicit(&s->models[i].used, true, memory_order_release);
                pthread_mutex_unlock(&s->mu);
                return;
            }
            if (strncmp(s->models[i].name, p->model, nlen) == 0 && s->models[i].name[nlen] == '\0') {
                atomic_fetch_add_explicit(&s->models[i].count, 1, memory_order_relaxed);
                if (pass == 1) pthread_mutex_unlock(&s->mu);
                return;
            }
        }
        if (pass == 0) pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add_explicit(&s->other_models, 1, memory_order_relaxed);
}

void mock_stats_render(mock_stats *s, buf *out)
{
    buf_printf(out, "{\"requests\":%" PRIuFAST64 ",\"streams\":%" PRIuFAST64
                    ",\"bad_requests\":%" PRIuFAST64 ",\"tool_calls\":%" PRIuFAST64 ",\"faults\":{",
               atomic_load(&s->requests), atomic_load(&s->streams), atomic_load(&s->bad_requests),
               atomic_load(&s->tool_calls));
    for (int f = 1; f < MOCK_FAULT__COUNT; f++)
        buf_printf(out, "%s\"%s\":%" PRIuFAST64, f > 1 ? "," : "", mock_fault_name((mock_fault)f),
                   atomic_load(&s->faults[f]));
    buf_puts(out, "},\"models\":{");
    bool first = true;
    for (size_t i = 0; i < MOCK_STATS_MODELS; i++) {
        if (!atomic_load_explicit(&s->models[i].used, memory_order_acquire)) break;
        if (!first) buf_puts(out, ",");
        first = false;
        json_escape_string(out, s->models[i].name, strlen(s->models[i].name));
        buf_printf(out, ":%" PRIuFAST64, atomic_load(&s->models[i].count));
    }
    buf_printf(out, "},\"other_models\":%" PRIuFAST64 "}", atomic_load(&s->other_models));
}
