/* test_runs_exec.c — the harness itself (src/runs/: start.c, exec.c,
 * model.c, toolrun.c) driven the way the API drives it, but through a
 * subscriber of the test's own: a real libuv loop, the real store in a
 * temp dir, the in-process mock provider (kind `mock`) for model calls,
 * and either a scripted fake core (a step_core that returns the effects a
 * test lists, and records the events it is fed) or the built-in core.
 *
 * Covered: a run that completes (events, transcript, usage); a tool error
 * (refused, failing) becoming the tool's result; cancellation mid-tool;
 * interrupt; enqueue and reject on a busy session; a limit hit at each
 * point — wall time in a model call and in a tool, steps and tool calls
 * (the core's), the loop guard (guard/) — a core that fails, and a
 * subscriber's backpressure: full, drained, gone; and waiting_auth, with a
 * credentials table of the test's own (runs/credentials.h): the run pauses
 * before the call, resumes when the connection becomes active and sends
 * the user's token, or fails when the wait times out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/step.h"
#include "identity/scope_mint.h"
#include "runs/credentials.h"
#include "runs/runs.h"
#include "runs/runs_internal.h"
#include "test_util.h"

static uv_loop_t L;

/* ---- a TCP server that accepts and never answers: the "slow" tool ---- */

static uv_tcp_t SLOW;
static int SLOW_PORT;
static uv_tcp_t *SLOW_CONNS[16];
static int SLOW_N;

static void slow_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    static char scratch[4096];
    (void)suggested;
    *b = uv_buf_init(scratch, sizeof scratch);
}

static void slow_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)s;
    (void)n;
    (void)b;   /* read and forget: the answer never comes */
}

static void slow_accept(uv_stream_t *server, int status)
{
    if (status < 0 || SLOW_N == 16) return;
    uv_tcp_t *c = calloc(1, sizeof *c);
    uv_tcp_init(&L, c);
    if (uv_accept(server, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, (uv_close_cb)free);
        return;
    }
    SLOW_CONNS[SLOW_N++] = c;
    uv_read_start((uv_stream_t *)c, slow_alloc, slow_read);
}

/* Listen on a free loopback port; returns the port. */
static int tcp_listen(uv_tcp_t *srv, uv_connection_cb on_accept)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&L, srv);
    assert_int_equal(uv_tcp_bind(srv, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)srv, 16, on_accept), 0);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(srv, (struct sockaddr *)&ss, &len);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void slow_start(void) { SLOW_PORT = tcp_listen(&SLOW, slow_accept); }

static void slow_stop(void)
{
    for (int i = 0; i < SLOW_N; i++) uv_close((uv_handle_t *)SLOW_CONNS[i], (uv_close_cb)free);
    SLOW_N = 0;
    uv_close((uv_handle_t *)&SLOW, NULL);
}

/* ---- a TCP server that answers every request: the "authed" tool ----
 * It keeps the last request's bytes, to see which header was sent. */

static uv_tcp_t ECHO_SRV;
static int ECHO_PORT;
static char ECHO_REQ[8192];
static size_t ECHO_LEN;
static int ECHO_COUNT;

static void echo_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    if (n < 0) {
        uv_close((uv_handle_t *)s, (uv_close_cb)free);
        return;
    }
    size_t room = sizeof ECHO_REQ - 1 - ECHO_LEN;
    size_t take = (size_t)n < room ? (size_t)n : room;
    memcpy(ECHO_REQ + ECHO_LEN, b->base, take);
    ECHO_LEN += take;
    ECHO_REQ[ECHO_LEN] = '\0';
    char *end = strstr(ECHO_REQ, "\r\n\r\n");
    if (!end) return;
    const char *cl = strcasestr(ECHO_REQ, "content-length:");
    size_t want = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
    if (ECHO_LEN < (size_t)(end + 4 - ECHO_REQ) + want) return;
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Content-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}";
    uv_buf_t out = uv_buf_init((char *)reply, sizeof reply - 1);
    uv_try_write(s, &out, 1);
    ECHO_COUNT++;
}

static void echo_accept(uv_stream_t *server, int status)
{
    if (status < 0) return;
    uv_tcp_t *c = calloc(1, sizeof *c);
    uv_tcp_init(&L, c);
    if (uv_accept(server, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, (uv_close_cb)free);
        return;
    }
    ECHO_LEN = 0;
    uv_read_start((uv_stream_t *)c, slow_alloc, echo_read);
}

static void echo_start(void) { ECHO_PORT = tcp_listen(&ECHO_SRV, echo_accept); }

/* ---- the test's own credentials table (runs/credentials.h) ----
 * A user has a token for "github" once the test says the connection is
 * active; before, the answer is MISSING with a connect URL. Answers come
 * on a later loop turn, as the contract says. */

static int CRED_CONNECTED;
static int CRED_FETCHES;

typedef struct cred_fetch {
    uv_timer_t timer;
    runs_cred_done done;
    void *arg;
    char user[ID_MAX];
} cred_fetch;

static void cred_answer(uv_timer_t *t)
{
    cred_fetch *f = t->data;
    char value[96];
    snprintf(value, sizeof value, "Bearer tok-%s", f->user);
    runs_cred_answer a = CRED_CONNECTED
        ? (runs_cred_answer){.status = RUNS_CRED_OK, .header_name = "Authorization",
                             .header_value = value, .connection_id = "conn_1"}
        : (runs_cred_answer){.status = RUNS_CRED_MISSING, .why = "not connected",
                             .connect_url = "https://idp.example/connect?provider=github"};
    f->done(f->arg, &a);
    uv_close((uv_handle_t *)&f->timer, (uv_close_cb)free);
}

static void *cred_fetch_fn(void *self, uv_loop_t *loop, const scope *sc, const char *provider,
                           char *const *scopes, size_t n_scopes, const char *header_name,
                           const char *format, runs_cred_done done, void *arg)
{
    (void)self; (void)scopes; (void)n_scopes; (void)header_name; (void)format;
    assert_string_equal(provider, "github");
    CRED_FETCHES++;
    cred_fetch *f = calloc(1, sizeof *f);
    f->done = done;
    f->arg = arg;
    snprintf(f->user, sizeof f->user, "%s", sc->user_id);
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    uv_timer_start(&f->timer, cred_answer, 0, 0);
    return f;
}

static void cred_cancel_fn(void *self, void *handle)
{
    (void)self;
    cred_fetch *f = handle;
    uv_close((uv_handle_t *)&f->timer, (uv_close_cb)free);
}

static const runs_credentials TEST_CREDS = {.fetch = cred_fetch_fn, .cancel = cred_cancel_fn, .refused = NULL, .self = NULL};

/* ---- the scripted core ---- */

/* One run's script: effects as "model:TEXT" (a request whose last user
 * message is TEXT), "tools:JSON" (those tool calls), "finish:TEXT",
 * "fail:CODE". After the last, the core finishes with "done". */
typedef struct script {
    const char *effects[8];
    int         events[8];           /* the kinds of events fed, in order */
    size_t      n_events;
    char        results[2048];       /* the last TOOL_RESULTS, as JSON */
    char        history[8192];       /* the history START brought, as JSON */
} script;

static script *SCRIPTS[8];            /* each created run takes the next */
static size_t  N_SCRIPTS, NEXT_SCRIPT;

typedef struct fake_state {
    script *sc;
    size_t  next;
    const step_agent *agent;
} fake_state;

static void *fake_create(const step_agent *agent)
{
    fake_state *f = calloc(1, sizeof *f);
    f->sc = NEXT_SCRIPT < N_SCRIPTS ? SCRIPTS[NEXT_SCRIPT++] : NULL;
    f->agent = agent;
    return f;
}

static step_effect fake_step(void *state, step_event *ev)
{
    fake_state *f = state;
    step_effect e;
    memset(&e, 0, sizeof e);
    script *sc = f->sc;
    if (sc && sc->n_events < 8) sc->events[sc->n_events++] = (int)ev->kind;
    if (sc && ev->kind == STEP_EVENT_START && ev->history) {
        char *j = cJSON_PrintUnformatted(ev->history);
        snprintf(sc->history, sizeof sc->history, "%s", j);
        free(j);
    }
    if (sc && ev->results) {
        char *j = cJSON_PrintUnformatted(ev->results);
        snprintf(sc->results, sizeof sc->results, "%s", j);
        free(j);
    }
    cJSON_Delete(ev->history);
    cJSON_Delete(ev->message);
    cJSON_Delete(ev->results);
    ev->history = ev->message = ev->results = NULL;
    const char *next = sc && f->next < 8 ? sc->effects[f->next] : NULL;
    f->next++;
    if (!next) next = "finish:done";
    if (strncmp(next, "model:", 6) == 0) {
        e.kind = STEP_EFFECT_CALL_MODEL;
        e.request = cJSON_CreateObject();
        cJSON_AddStringToObject(e.request, "model", f->agent->model);
        cJSON *msgs = cJSON_AddArrayToObject(e.request, "messages");
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", next + 6);
        cJSON_AddItemToArray(msgs, m);
    } else if (strncmp(next, "tools:", 6) == 0) {
        e.kind = STEP_EFFECT_CALL_TOOLS;
        e.tool_calls = cJSON_Parse(next + 6);
    } else if (strncmp(next, "finish:", 7) == 0) {
        e.kind = STEP_EFFECT_FINISH;
        e.message = cJSON_CreateObject();
        cJSON_AddStringToObject(e.message, "role", "assistant");
        cJSON_AddStringToObject(e.message, "content", next + 7);
    } else {
        e.kind = STEP_EFFECT_FAIL;
        e.error_code = "scripted_failure";
        snprintf(e.error_message, sizeof e.error_message, "%s", next + 5);
    }
    return e;
}

static void fake_destroy(void *state) { free(state); }

static const step_core FAKE_CORE = {"scripted", fake_create, fake_step, fake_destroy};

/* ---- a subscriber that remembers what it was told ---- */

typedef struct sub {
    runs_subscriber rs;
    int        started, ended;
    char       run_id[ID_MAX];
    char       events[32][24];
    int        n_events;
    int        saw_tool_call;
    int        deltas;
    char       delta_text[256];       /* the deltas' text, joined */
    uint64_t   last_seq;              /* events are numbered, increasing */
    /* the outcome */
    int        err_kind;              /* 0: none */
    char       err_code[64];
    run_status status;
    char       code[64];
    char       message_text[256];
    bool       has_message;
    int64_t    steps, tool_calls, output_tokens;
    int        order;                 /* when it ended, among all subscribers */
} sub;

static int END_ORDER;

static bool sub_start(runs_subscriber *s, const run_rec *run)
{
    sub *b = (sub *)s;
    b->started++;
    snprintf(b->run_id, sizeof b->run_id, "%s", run->id);
    return true;
}

static bool sub_event(runs_subscriber *s, const char *name, const char *json, size_t len, uint64_t seq)
{
    sub *b = (sub *)s;
    /* every event is a JSON object naming its run (a delta's written by
     * hand, run_event_delta) */
    cJSON *j = cJSON_ParseWithLength(json, len);
    assert_true(cJSON_IsObject(j));
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(j, "run_id");
    assert_true(cJSON_IsString(rid));
    assert_string_equal(rid->valuestring, b->run_id);
    if (strcmp(name, "message.delta") == 0) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");
        assert_true(cJSON_IsString(t));
        strncat(b->delta_text, t->valuestring, sizeof b->delta_text - strlen(b->delta_text) - 1);
    }
    cJSON_Delete(j);
    assert_true(seq > b->last_seq);
    b->last_seq = seq;
    if (b->n_events < 32) snprintf(b->events[b->n_events++], sizeof b->events[0], "%s", name);
    if (strcmp(name, "tool.call") == 0) b->saw_tool_call = 1;
    if (strcmp(name, "message.delta") == 0) b->deltas++;
    return true;
}

/* A subscriber that is always full (a client that never reads). */
static bool sub_event_full(runs_subscriber *s, const char *name, const char *json, size_t len, uint64_t seq)
{
    sub_event(s, name, json, len, seq);
    return false;
}

static void sub_end(runs_subscriber *s, const runs_outcome *o)
{
    sub *b = (sub *)s;
    b->ended++;
    b->order = ++END_ORDER;
    assert_null(s->run);              /* forgotten before the call */
    if (o->error) {
        b->err_kind = (int)o->error->kind;
        snprintf(b->err_code, sizeof b->err_code, "%s", o->error->code);
    }
    if (o->run) {
        b->status = o->run->status;
        snprintf(b->code, sizeof b->code, "%s", o->run->error_code);
        b->steps = o->run->steps;
        b->tool_calls = o->run->tool_calls;
        b->output_tokens = o->run->output_tokens;
    }
    if (o->message) {
        b->has_message = true;
        snprintf(b->message_text, sizeof b->message_text, "%s",
                 o->message->content ? o->message->content : "");
    }
}

static void sub_init(sub *b, bool events)
{
    memset(b, 0, sizeof *b);
    b->rs.on_start = sub_start;
    b->rs.on_event = events ? sub_event : NULL;
    b->rs.on_end = sub_end;
}

static bool sub_saw(const sub *b, const char *name)
{
    for (int i = 0; i < b->n_events; i++)
        if (strcmp(b->events[i], name) == 0) return true;
    return false;
}

/* ---- the fixture: config, store, tools, upstream, runs ---- */

typedef struct fixture {
    char           dir[256];
    brigade_config cfg;
    store         *st;
    tool_registry *tools;
    upstream      *up;
    runs          *r;
    runs_thread   *t;
    scope          user;
    char           session[ID_MAX];
} fixture;

static fixture F;

static void fixture_open(const char *agent, const step_core *core)
{
    memset(&F, 0, sizeof F);
    N_SCRIPTS = NEXT_SCRIPT = 0;
    END_ORDER = 0;
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "providers: [{name: local, kind: mock}]\n"
             "models: [{name: m, provider: local, input_usd_per_mtok: 1, output_usd_per_mtok: 2}]\n"
             "tiers: [{name: default}]\n"
             "default_tier: default\n"
             "tools:\n"
             "  - {name: slow, url: \"http://127.0.0.1:%d/slow\", timeout_ms: 20000, allow_private_networks: true}\n"
             "  - {name: down, url: \"http://127.0.0.1:1/down\", timeout_ms: 2000, allow_private_networks: true}\n"
             "  - {name: authed, url: \"http://127.0.0.1:%d/authed\", auth_timeout_s: 1, allow_private_networks: true}\n"
             "agents:\n"
             "  - {name: scripted, model: m, tools: [clock, slow, down], max_repeated_tool_calls: 2}\n"
             "  - {name: hasty, model: m, tools: [slow], max_wall_ms: 1000}\n"
             "  - {name: one-step, model: m, tools: [clock], max_steps: 1}\n"
             "  - {name: no-tools, model: m, tools: [clock], max_tool_calls: 0}\n"
             "  - {name: authed, model: m, tools: [authed]}\n"
             "  - {name: stepper, model: m, tools: [clock], max_repeated_tool_calls: 10}\n",
             SLOW_PORT, ECHO_PORT);
    char err[256];
    if (config_load_string("t.yaml", yaml, strlen(yaml), &F.cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    F.st = test_store_open(F.dir, sizeof F.dir, "runs-exec");
    assert_non_null(F.st);
    scope admin, tadmin;
    char tenant[ID_MAX], user[ID_MAX];
    scope_mint_server_admin(&admin);
    assert_int_equal(test_store_tenant(F.st, &admin, "t1", tenant), STORE_OK);
    scope_mint_tenant_admin(&tadmin, tenant, "key_admin");
    assert_int_equal(test_store_user(F.st, &tadmin, "alice", user), STORE_OK);
    scope_mint_user(&F.user, tenant, user, "key_alice", "default");
    session_rec s;
    assert_int_equal(store_session_create(F.st, &F.user, agent, NULL, &s), STORE_OK);
    snprintf(F.session, sizeof F.session, "%s", s.id);
    session_rec_free(&s);
    F.tools = tools_registry_new(&F.cfg, err, sizeof err);
    if (!F.tools) fail_msg("tools: %s", err);
    F.up = upstream_new(&L, &F.cfg);
    F.r = runs_new(&F.cfg, F.st, F.tools);
    runs_set_core(F.r, core);
    F.t = runs_thread_new(F.r, &L, F.up);
}

static void fixture_close(void)
{
    assert_int_equal(runs_active(F.r), 0);
    runs_thread_free(F.t);
    test_spin(&L, 20);                /* close callbacks */
    runs_free(F.r);
    upstream_free(F.up);
    tools_registry_free(F.tools);
    test_spin(&L, 20);
    test_store_close(F.st, F.dir);
    config_free(&F.cfg);
}

static void post(sub *b, const char *text, runs_if_busy mode)
{
    runs_post_message(F.t, &b->rs, &F.user, F.session, text, mode, NULL);
}

/* Post `text` as a new run that follows `sc` (NULL: no script) and wait
 * for its end. */
static void run_script(sub *b, script *sc, bool events, const char *text)
{
    if (sc) SCRIPTS[N_SCRIPTS++] = sc;
    sub_init(b, events);
    post(b, text, RUNS_BUSY_REJECT);
    assert_true(test_run_timed(&L, &b->ended, 8000));
}

/* The session's transcript: its roles, in order ("user,assistant"). */
static void transcript_roles(char *out, size_t len)
{
    message_rec *ms = NULL;
    size_t n = 0;
    out[0] = '\0';
    assert_int_equal(store_message_list(F.st, &F.user, F.session, 0, 100, &ms, &n), STORE_OK);
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "", ms[i].role);
    store_free_messages(ms, n);
}

static int setup(void **state)
{
    (void)state;
    uv_loop_init(&L);
    slow_start();
    echo_start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    slow_stop();
    uv_close((uv_handle_t *)&ECHO_SRV, NULL);
    uv_run(&L, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&L), 0);
    return 0;
}

/* ---- the tests ---- */

static void test_completes(void **state)
{
    (void)state;
    fixture_open("scripted", &FAKE_CORE);
    script s = {.effects = {"model:hello [[tokens:3]]", "finish:all done"}};
    sub b;
    run_script(&b, &s, true, "hi");
    assert_int_equal(b.started, 1);
    assert_int_equal(b.err_kind, 0);
    assert_int_equal(b.status, RUN_COMPLETED);
    assert_true(b.has_message);
    assert_string_equal(b.message_text, "all done");
    assert_int_equal(b.steps, 1);
    assert_int_equal(b.output_tokens, 3);
    assert_string_equal(b.events[0], "run.started");
    assert_true(sub_saw(&b, "message.delta"));
    assert_true(b.delta_text[0] != '\0');
    assert_string_equal(b.events[b.n_events - 1], "run.completed");
    /* the core was fed the start, then the model's reply */
    assert_int_equal(s.n_events, 2);
    assert_int_equal(s.events[0], STEP_EVENT_START);
    assert_int_equal(s.events[1], STEP_EVENT_MODEL_REPLY);
    char roles[128];
    transcript_roles(roles, sizeof roles);
    assert_string_equal(roles, "user,assistant");
    fixture_close();
}

/* A run holds what it has not written for at most RUN_WRITE_HOLD_MS (5 ms)
 * from the oldest of it, and steps that come in the meantime join it: a
 * quick run of three tool steps is one write with its start and end, not
 * a write per step (docs/architecture.md, "Runs written behind"). Every
 * step still lands, whole and in order. */
static void test_quick_steps_share_a_write(void **state)
{
    (void)state;
    fixture_open("stepper", &FAKE_CORE);
#define CLOCK_CALL(id) "tools:[{\"id\":\"" id "\",\"type\":\"function\",\"function\":{\"name\":\"clock\"," \
                       "\"arguments\":\"{}\"}}]"
    script s = {.effects = {"model:a [[tokens:1]]", CLOCK_CALL("c1"), "model:b [[tokens:1]]", CLOCK_CALL("c2"),
                            "model:c [[tokens:1]]", CLOCK_CALL("c3"), "finish:done"}};
#undef CLOCK_CALL
    store_stats before, after;
    store_get_stats(F.st, &before);
    uint64_t t0 = uv_hrtime();
    sub b;
    run_script(&b, &s, true, "hi");
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    store_runs_settle(F.st);   /* the tool.call audit entries queued behind */
    store_get_stats(F.st, &after);
    if (b.status != RUN_COMPLETED) fail_msg("the run ended %d (%s)", b.status, b.code);
    assert_int_equal(b.tool_calls, 3);
    char roles[256];
    transcript_roles(roles, sizeof roles);
    assert_string_equal(roles, "user,assistant,tool,assistant,tool,assistant,tool,assistant");
    /* the writes: the run's (one per 5 ms it took, and its end), one
     * tool.call audit entry per call, and settle's two no-ops */
    uint64_t ops = after.ops - before.ops, run_writes = ops - 3 - 2;
    print_message("three quick steps: %llu run writes in %llu ms\n", (unsigned long long)run_writes,
                  (unsigned long long)ms);
    assert_true(ops >= 3 + 2 + 1);
    assert_true(run_writes <= 1 + ms / 5);
    fixture_close();
}

/* A model request as the provider is sent it (run_model_body): the core's
 * request, its messages referring to the conversation (core/step.h), is
 * written with every member but each message's `origin`; the conversation
 * keeps its origins; the text reads back as the request without them. */
static void test_request_body_without_origins(void **state)
{
    (void)state;
    cJSON *conv = cJSON_Parse("["
        "{\"role\":\"user\",\"origin\":{\"kind\":\"user\",\"untrusted\":false},\"content\":\"hi \\\"you\\\"\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "  \"function\":{\"name\":\"clock\",\"arguments\":\"{}\"}}],\"origin\":{\"kind\":\"model\"}},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":[{\"type\":\"text\",\"text\":\"12:00\",\"origin\":1}],"
        " \"origin\":{\"kind\":\"tool\",\"untrusted\":true}}]");
    char *before = cJSON_PrintUnformatted(conv);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", "m");
    cJSON_AddItemToObject(req, "messages", step_context_select("be brief", conv, 100000, NULL, NULL));
    cJSON_AddNumberToObject(req, "max_tokens", 64);
    cJSON_AddBoolToObject(req, "stream", true);
    size_t len = 0;
    char *body = run_model_body(req, &len);
    assert_int_equal(len, strlen(body));
    assert_string_equal(body,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":\"hi \\\"you\\\"\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"clock\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":[{\"type\":\"text\",\"text\":\"12:00\",\"origin\":1}]}],"
        "\"max_tokens\":64,\"stream\":true}");
    char *after = cJSON_PrintUnformatted(conv);
    assert_string_equal(after, before);               /* the origins stay in the conversation */
    free(after);
    free(body);
    /* a second "messages" member (a core's mistake) sends no origin either */
    cJSON_AddItemToObject(req, "messages", cJSON_Parse("[{\"role\":\"user\",\"content\":\"x\","
                                                       "\"origin\":{\"kind\":\"user\"}}]"));
    body = run_model_body(req, &len);
    assert_null(strstr(body, "\"kind\""));
    free(body);
    cJSON_Delete(req);
    cJSON_Delete(conv);
    free(before);
}

/* The request's text with the conversation's earlier messages taken from
 * what the run wrote at an earlier step (run_model_body_kept) is the text
 * written whole, at every step of a long tool loop on the built-in core —
 * with the context moving forward, a message redacted into a copy (its
 * copy is written; at the next step the conversation's own text again), a
 * message taken out of the request (nothing reused), and a message changed
 * under its number against step.h (written anew). */
static void expect_same_body(run_texts *t, const cJSON *req, const step_context_ref *ctx)
{
    size_t n1 = 0, n2 = 0;
    char *whole = run_model_body(req, &n1);
    char *kept = run_model_body_kept(t, req, ctx, &n2);
    assert_int_equal(n1, n2);
    assert_string_equal(kept, whole);
    free(whole);
    free(kept);
}

static void test_request_text_kept(void **state)
{
    (void)state;
    step_agent a = {.name = "looper", .model = "m", .system_prompt = "be brief", .max_steps = 100,
                    .max_tool_calls = 100, .context_tokens = 600};
    void *st = step_core_toolcall.create(&a);
    run_texts t = {0};
    cJSON *hist = cJSON_Parse("[{\"role\":\"user\",\"content\":\"earlier \\\"question\\\"\",\"origin\":{\"kind\":\"user\"}},"
                              "{\"role\":\"assistant\",\"content\":\"earlier answer \\u00e9\"}]");
    step_event ev = {.kind = STEP_EVENT_START, .history = hist,
                     .message = cJSON_Parse("{\"role\":\"user\",\"content\":\"loop\",\"origin\":{\"kind\":\"user\"}}")};
    step_effect e = step_core_toolcall.step(st, &ev);
    for (int round = 0; round < 40; round++) {
        assert_int_equal(e.kind, STEP_EFFECT_CALL_MODEL);
        cJSON *msgs = cJSON_GetObjectItem(e.request, "messages");
        if (round % 7 == 3) {
            /* a redaction: the message after the lead becomes an edited copy */
            cJSON *m = cJSON_GetArrayItem(msgs, (int)e.context.lead);
            cJSON *copy = step_message_copy(m);
            cJSON_ReplaceItemInObjectCaseSensitive(copy, "content", cJSON_CreateString("[REDACTED]"));
            assert_true(cJSON_ReplaceItemViaPointer(msgs, m, copy));
        }
        if (round % 11 == 5)   /* a message taken out: the count no longer matches */
            cJSON_Delete(cJSON_DetachItemFromArray(msgs, (int)e.context.lead));
        expect_same_body(&t, e.request, &e.context);
        assert_true(t.n <= e.context.count);             /* only the context's messages are kept */
        step_effect_clear(&e);
        char reply[300];
        snprintf(reply, sizeof reply, "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c%d\","
                 "\"type\":\"function\",\"function\":{\"name\":\"clock\",\"arguments\":\"{}\"}}]}", round);
        ev = (step_event){.kind = STEP_EVENT_MODEL_REPLY, .message = cJSON_Parse(reply)};
        e = step_core_toolcall.step(st, &ev);
        assert_int_equal(e.kind, STEP_EFFECT_CALL_TOOLS);
        step_effect_clear(&e);
        char result[300];
        snprintf(result, sizeof result, "[{\"role\":\"tool\",\"tool_call_id\":\"c%d\",\"content\":"
                 "\"{\\\"utc\\\":\\\"12:%02d\\\"}\",\"origin\":{\"kind\":\"tool\",\"untrusted\":true}}]", round, round);
        ev = (step_event){.kind = STEP_EVENT_TOOL_RESULTS, .results = cJSON_Parse(result)};
        e = step_core_toolcall.step(st, &ev);
    }
    assert_true(e.context_dropped > 0);                  /* the context did move forward */
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
    run_texts_free(&t);

    /* against step.h: a numbered message changed in place (its first
     * member replaced) is written anew, not taken from what was kept */
    cJSON *conv = cJSON_Parse("[{\"role\":\"user\",\"content\":\"one\"},{\"role\":\"user\",\"content\":\"two\"}]");
    cJSON *req = cJSON_CreateObject();
    cJSON_AddItemToObject(req, "messages", step_context_select(NULL, conv, 100000, NULL, NULL));
    step_context_ref ctx = {.lead = 0, .first = 0, .count = 2};
    expect_same_body(&t, req, &ctx);
    assert_int_equal(t.n, 2);
    cJSON_Delete(req);
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(conv, 1), "role", cJSON_CreateString("assistant"));
    req = cJSON_CreateObject();
    cJSON_AddItemToObject(req, "messages", step_context_select(NULL, conv, 100000, NULL, NULL));
    expect_same_body(&t, req, &ctx);
    cJSON_Delete(req);
    cJSON_Delete(conv);
    run_texts_free(&t);
}

static void test_json_subscriber_gets_no_events(void **state)
{
    (void)state;
    fixture_open("scripted", &FAKE_CORE);
    script s = {.effects = {"model:hello [[tokens:2]]"}};
    sub b;
    run_script(&b, &s, false, "hi");
    assert_int_equal(b.n_events, 0);
    assert_int_equal(b.status, RUN_COMPLETED);
    fixture_close();
}

static void test_tool_errors_become_results(void **state)
{
    (void)state;
    fixture_open("scripted", &FAKE_CORE);
    script s = {.effects = {
        "model:hello [[tokens:2]]",
        "tools:[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"down\",\"arguments\":\"{}\"}},"
        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"nope\",\"arguments\":\"{}\"}},"
        "{\"id\":\"c3\",\"type\":\"function\",\"function\":{\"name\":\"clock\",\"arguments\":\"{\\\"x\\\":1}\"}}]",
        "finish:recovered"}};
    sub b;
    run_script(&b, &s, true, "hi");
    assert_int_equal(b.status, RUN_COMPLETED);
    assert_int_equal(b.tool_calls, 3);
    assert_int_equal(s.n_events, 3);
    assert_int_equal(s.events[2], STEP_EVENT_TOOL_RESULTS);
    /* each failure is its call's result, in call order, so the model can
     * correct itself: the tool failed, was refused, had bad arguments */
    cJSON *res = cJSON_Parse(s.results);
    assert_int_equal(cJSON_GetArraySize(res), 3);
    const char *ids[] = {"c1", "c2", "c3"};
    const char *want[] = {"", "error: the tool \"nope\" is not available to this agent",
                          "error: invalid arguments for clock"};
    for (int i = 0; i < 3; i++) {
        cJSON *m = cJSON_GetArrayItem(res, i);
        assert_string_equal(cJSON_GetObjectItem(m, "tool_call_id")->valuestring, ids[i]);
        const char *content = cJSON_GetObjectItem(m, "content")->valuestring;
        if (want[i][0]) assert_non_null(strstr(content, want[i]));
        else assert_true(strlen(content) > 0);
    }
    /* and each says where its text came from (core/origin.h): the HTTP
     * tool's is fetched and untrusted; a refusal is brigade's own words */
    const char *kinds[] = {"fetched", "system", "system"};
    for (int i = 0; i < 3; i++) {
        cJSON *o = cJSON_GetObjectItem(cJSON_GetArrayItem(res, i), "origin");
        assert_non_null(o);
        assert_string_equal(cJSON_GetObjectItem(o, "kind")->valuestring, kinds[i]);
        assert_string_equal(cJSON_GetObjectItem(o, "call_id")->valuestring, ids[i]);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "untrusted")) == (i == 0));
    }
    cJSON_Delete(res);
    /* … as the transcript keeps it */
    message_rec *ms = NULL;
    size_t n = 0;
    assert_int_equal(store_message_list(F.st, &F.user, F.session, 0, 100, &ms, &n), STORE_OK);
    assert_int_equal(n, 6);
    assert_string_equal(ms[0].origin_json, "{\"kind\":\"user\",\"untrusted\":false}");
    assert_non_null(strstr(ms[2].origin_json, "\"kind\":\"fetched\""));
    assert_non_null(strstr(ms[3].origin_json, "\"kind\":\"system\""));
    store_free_messages(ms, n);
    char roles[128];
    transcript_roles(roles, sizeof roles);
    assert_string_equal(roles, "user,assistant,tool,tool,tool,assistant");
    fixture_close();
}

static void test_cancel_mid_tool(void **state)
{
    (void)state;
    fixture_open("scripted", &FAKE_CORE);
    script s = {.effects = {
        "model:hello [[tokens:2]]",
        "tools:[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"slow\",\"arguments\":\"{}\"}}]"}};
    SCRIPTS[N_SCRIPTS++] = &s;
    sub b, c;
    sub_init(&b, true);
    sub_init(&c, false);
    post(&b, "hi", RUNS_BUSY_REJECT);
    assert_true(test_run_timed(&L, &b.saw_tool_call, 5000));
    test_spin(&L, 50);                /* the tool's request is out */
    assert_true(runs_live_status(F.r, &F.user, b.run_id, &(run_status){0}));
    runs_cancel(F.t, &c.rs, &F.user, b.run_id);
    assert_true(test_run_timed(&L, &c.ended, 5000));
    assert_true(b.ended);
    assert_int_equal(b.status, RUN_CANCELLED);
    assert_string_equal(b.code, "cancelled");
    assert_true(sub_saw(&b, "run.failed"));
    /* the cancel answers with the stored run, after the run's end */
    assert_int_equal(c.err_kind, 0);
    assert_int_equal(c.status, RUN_CANCELLED);
    assert_true(c.order > b.order);
    /* the tool's result never reached the core; no half turn was written */
    assert_int_equal(s.n_events, 2);
    char roles[128];
    transcript_roles(roles, sizeof roles);
    assert_string_equal(roles, "user");
    fixture_close();
}

static void test_cancel_unknown_run(void **state)
{
    (void)state;
    fixture_open("scripted", &FAKE_CORE);
    sub c;
    sub_init(&c, false);
    runs_cancel(F.t, &c.rs, &F.user, "run_nope");
    assert_true(test_run_timed(&L, &c.ended, 5000));
    assert_int_equal(c.err_kind, RUNS_ERR_NOT_FOUND);
    assert_string_equal(c.err_code, "not_found");
    fixture_close();
}

static void test_interrupt(void **state)
{
    (void)state;
    fixture_open("scripted", &FAKE_CORE);
    script s1 = {.effects = {
        "model:hello [[tokens:2]]",
        "tools:[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"slow\",\"arguments\":\"{}\"}}]"}};
    script s2 = {.effects = {"finish:second"}};
    SCRIPTS[N_SCRIPTS++] = &s1;
    SCRIPTS[N_SCRIPTS++] = &s2;
    sub a, b;
    sub_init(&a, true);
    sub_init(&b, false);
    post(&a, "first", RUNS_BUSY_REJECT);
    assert_true(test_run_timed(&L, &a.saw_tool_call, 5000));
    post(&b, "second", RUNS_BUSY_INTERRUPT);
    assert_true(test_run_timed(&L, &b.ended, 5000));
    assert_int_equal(a.status, RUN_INTERRUPTED);
    assert_int_equal(b.err_kind, 0);
    assert_int_equal(b.status, RUN_COMPLETED);
    assert_string_equal(b.message_text, "second");
    assert_true(a.order < b.order);
    fixture_close();
}

static void test_enqueue_and_reject(void **state)
{
    (void)state;
    fixture_open("scripted", &FAKE_CORE);
    script s1 = {.effects = {"model:slowly [[latency:300]] [[tokens:2]]", "finish:one"}};
    script s2 = {.effects = {"finish:two"}};
    SCRIPTS[N_SCRIPTS++] = &s1;
    SCRIPTS[N_SCRIPTS++] = &s2;
    sub a, b, c;
    sub_init(&a, false);
    sub_init(&b, false);
    sub_init(&c, false);
    post(&a, "one", RUNS_BUSY_REJECT);
    assert_true(test_run_timed(&L, &a.started, 5000));
    post(&b, "two", RUNS_BUSY_ENQUEUE);
    post(&c, "three", RUNS_BUSY_REJECT);
    assert_true(test_run_timed(&L, &c.ended, 5000));
    assert_int_equal(c.err_kind, RUNS_ERR_BUSY);
    assert_string_equal(c.err_code, "session_busy");
    assert_int_equal(b.started, 0);   /* waits for the first */
    assert_true(test_run_timed(&L, &b.ended, 5000));
    assert_int_equal(a.status, RUN_COMPLETED);
    assert_int_equal(b.status, RUN_COMPLETED);
    assert_string_equal(b.message_text, "two");
    assert_true(a.order < b.order);
    char roles[128];
    transcript_roles(roles, sizeof roles);
    assert_string_equal(roles, "user,assistant,user,assistant");
    fixture_close();
}

static void test_wall_time_in_model_call(void **state)
{
    (void)state;
    fixture_open("hasty", &FAKE_CORE);
    script s = {.effects = {"model:slowly [[latency:3000]]"}};
    sub b;
    run_script(&b, &s, true, "hi");
    assert_int_equal(b.status, RUN_FAILED);
    assert_string_equal(b.code, "max_wall_time");
    assert_int_equal(s.n_events, 1);  /* the reply never came */
    fixture_close();
}

static void test_wall_time_in_tool(void **state)
{
    (void)state;
    fixture_open("hasty", &FAKE_CORE);
    script s = {.effects = {
        "model:hello [[tokens:2]]",
        "tools:[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"slow\",\"arguments\":\"{}\"}}]"}};
    sub b;
    run_script(&b, &s, true, "hi");
    assert_true(b.saw_tool_call);
    assert_int_equal(b.status, RUN_FAILED);
    assert_string_equal(b.code, "max_wall_time");
    assert_int_equal(s.n_events, 2);
    fixture_close();
}

static void test_max_steps(void **state)
{
    (void)state;
    fixture_open("one-step", &step_core_toolcall);
    sub b;
    run_script(&b, NULL, true, "what time is it [[tool:clock {}]]");
    assert_int_equal(b.status, RUN_FAILED);
    assert_string_equal(b.code, "max_steps");
    assert_int_equal(b.steps, 1);
    assert_int_equal(b.tool_calls, 1);
    fixture_close();
}

static void test_max_tool_calls(void **state)
{
    (void)state;
    fixture_open("no-tools", &step_core_toolcall);
    sub b;
    run_script(&b, NULL, true, "what time is it [[tool:clock {}]]");
    assert_int_equal(b.status, RUN_FAILED);
    assert_string_equal(b.code, "max_tool_calls");
    assert_int_equal(b.tool_calls, 0);
    assert_false(sub_saw(&b, "tool.call"));
    fixture_close();
}

static void test_loop_guard(void **state)
{
    (void)state;
    fixture_open("scripted", &FAKE_CORE);
#define CLOCK_CALL "tools:[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"clock\",\"arguments\":\"{ }\"}}]"
    script s = {.effects = {"model:a [[tokens:2]]", CLOCK_CALL, "model:b [[tokens:2]]", CLOCK_CALL,
                            "model:c [[tokens:2]]", CLOCK_CALL}};
    sub b;
    run_script(&b, &s, true, "hi");
    assert_int_equal(b.status, RUN_FAILED);
    assert_string_equal(b.code, "repeated_tool_call");
    assert_int_equal(b.tool_calls, 2);   /* the third never ran */
    assert_int_equal(b.steps, 3);
    fixture_close();
}

static void test_core_failure(void **state)
{
    (void)state;
    fixture_open("scripted", &FAKE_CORE);
    script s = {.effects = {"fail:the core gave up"}};
    sub b;
    run_script(&b, &s, false, "hi");
    assert_int_equal(b.err_kind, 0);
    assert_int_equal(b.status, RUN_FAILED);
    assert_string_equal(b.code, "scripted_failure");
    assert_false(b.has_message);
    fixture_close();
}

static void test_session_not_found(void **state)
{
    (void)state;
    fixture_open("scripted", &FAKE_CORE);
    sub b;
    sub_init(&b, true);
    runs_post_message(F.t, &b.rs, &F.user, "ses_nope", "hi", RUNS_BUSY_REJECT, NULL);
    assert_true(test_run_timed(&L, &b.ended, 5000));
    assert_int_equal(b.started, 0);
    assert_int_equal(b.err_kind, RUNS_ERR_NOT_FOUND);
    assert_int_equal(b.n_events, 0);
    fixture_close();
}

/* A full subscriber pauses the model; drained, it gets more; once it
 * has left, the run goes on to its end without it. */
static void test_backpressure_drain_and_gone(void **state)
{
    (void)state;
    fixture_open("scripted", &FAKE_CORE);
    script s = {.effects = {"model:hello [[tokens:40]]", "finish:ok"}};
    SCRIPTS[N_SCRIPTS++] = &s;
    sub b;
    sub_init(&b, true);
    b.rs.on_event = sub_event_full;
    post(&b, "hi", RUNS_BUSY_REJECT);
    assert_true(test_run_timed(&L, &b.deltas, 5000));
    test_spin(&L, 100);
    int paused_at = b.deltas;
    test_spin(&L, 150);
    assert_int_equal(b.deltas, paused_at);      /* no progress while full */
    assert_int_equal(b.ended, 0);
    runs_subscriber_drained(&b.rs);
    test_spin(&L, 100);
    assert_true(b.deltas > paused_at);          /* one more, then full again */
    int second = b.deltas;
    test_spin(&L, 100);
    assert_int_equal(b.deltas, second);
    runs_subscriber_gone(&b.rs);
    for (int i = 0; i < 100 && runs_active(F.r) > 0; i++) test_spin(&L, 50);
    assert_int_equal(runs_active(F.r), 0);
    assert_int_equal(b.ended, 0);               /* never told: it had left */
    assert_int_equal(b.deltas, second);
    run_rec rec;
    assert_int_equal(store_run_get(F.st, &F.user, b.run_id, &rec), STORE_OK);
    assert_int_equal(rec.status, RUN_COMPLETED);
    fixture_close();
}

/* ---- waiting_auth ---- */

/* The "authed" tool needs the user's own "github" credential. */
static void auth_fixture(bool creds)
{
    fixture_open("authed", &step_core_toolcall);
    for (size_t i = 0; i < F.cfg.n_tools; i++)
        if (strcmp(F.cfg.tools[i].name, "authed") == 0) F.cfg.tools[i].auth_provider = strdup("github");
    if (creds) runs_set_credentials(F.r, &TEST_CREDS);
    CRED_CONNECTED = 0;
    CRED_FETCHES = 0;
    ECHO_COUNT = 0;
}

static int sub_saw_flag(const sub *b, const char *name) { return sub_saw(b, name) ? 1 : 0; }

/* Spin until the subscriber has seen `name`. */
static bool wait_event(sub *b, const char *name, unsigned ms)
{
    for (unsigned t = 0; t < ms; t += 20) {
        if (sub_saw_flag(b, name)) return true;
        test_spin(&L, 20);
    }
    return false;
}

static void test_waiting_auth_then_connected(void **state)
{
    (void)state;
    auth_fixture(true);
    sub b;
    sub_init(&b, true);
    post(&b, "call it [[tool:authed {}]]", RUNS_BUSY_REJECT);
    assert_true(wait_event(&b, "auth.required", 5000));
    test_spin(&L, 100);
    assert_int_equal(b.ended, 0);               /* a stream stays attached */
    assert_int_equal(ECHO_COUNT, 0);            /* nothing was sent without the token */
    run_status live;
    assert_true(runs_live_status(F.r, &F.user, b.run_id, &live));
    assert_int_equal(live, RUN_WAITING_AUTH);
    run_rec rec;
    assert_int_equal(store_run_get(F.st, &F.user, b.run_id, &rec), STORE_OK);
    assert_int_equal(rec.status, RUN_WAITING_AUTH);
    /* the session is busy while the run waits */
    sub c;
    sub_init(&c, false);
    post(&c, "another", RUNS_BUSY_REJECT);
    assert_true(test_run_timed(&L, &c.ended, 5000));
    assert_int_equal(c.err_kind, RUNS_ERR_BUSY);
    /* another user's or another provider's connection wakes nothing */
    runs_on_connection_active(F.r, F.user.tenant_id, "user_other", "github");
    runs_on_connection_active(F.r, F.user.tenant_id, F.user.user_id, "gitlab");
    test_spin(&L, 100);
    assert_int_equal(b.ended, 0);

    CRED_CONNECTED = 1;
    runs_on_connection_active(F.r, F.user.tenant_id, F.user.user_id, "github");
    assert_true(test_run_timed(&L, &b.ended, 8000));
    assert_int_equal(b.status, RUN_COMPLETED);
    assert_int_equal(ECHO_COUNT, 1);
    char want[96];
    snprintf(want, sizeof want, "Authorization: Bearer tok-%s\r\n", F.user.user_id);
    assert_non_null(strstr(ECHO_REQ, want));     /* the user's own token, as the header */
    assert_true(sub_saw(&b, "tool.result"));
    assert_string_equal(b.events[b.n_events - 1], "run.completed");
    char roles[128];
    transcript_roles(roles, sizeof roles);
    assert_string_equal(roles, "user,assistant,tool,assistant");
    fixture_close();
}

static void test_waiting_auth_times_out(void **state)
{
    (void)state;
    auth_fixture(true);
    sub b;
    run_script(&b, NULL, false, "call it [[tool:authed {}]]");
    /* a message without a stream is answered at once, with the run waiting */
    assert_int_equal(b.status, RUN_WAITING_AUTH);
    run_rec rec;
    for (int i = 0; i < 200; i++) {
        test_spin(&L, 25);
        assert_int_equal(store_run_get(F.st, &F.user, b.run_id, &rec), STORE_OK);
        if (rec.status == RUN_FAILED) break;
    }
    assert_int_equal(rec.status, RUN_FAILED);    /* auth_timeout_s: 1 */
    assert_string_equal(rec.error_code, "auth_timeout");
    assert_non_null(strstr(rec.error_message, "github"));
    assert_int_equal(ECHO_COUNT, 0);
    /* The end is stored before the run lets its session go (on the loop,
     * when the writer's commit is handed back): readable a moment before
     * the run is no longer active. */
    for (int i = 0; i < 200 && runs_active(F.r) > 0; i++) test_spin(&L, 5);
    fixture_close();
}

/* ---- the history kept between runs (runs/history_cache.h) ---- */

/* The session's history as the store gives it (what a run read before the
 * cache), printed. */
static char *stored_history(void)
{
    cJSON *h = runs_load_history(F.st, &F.user, F.session, 0);
    char *j = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    return j;
}

/* What the cache holds for the session, printed (NULL: nothing for the
 * session's current count); the entry goes back as it was. */
static char *cached_history(void)
{
    session_rec s;
    assert_int_equal(store_session_get(F.st, &F.user, F.session, &s), STORE_OK);
    int64_t count = s.message_count;
    session_rec_free(&s);
    uint64_t epoch = history_cache_epoch(F.r->history);
    history_entry *e = history_cache_take(F.r->history, &F.user, F.session, count, epoch);
    if (!e) return NULL;
    cJSON *v = history_entry_view(e, RUNS_HISTORY_MAX);
    char *j = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    history_cache_put(F.r->history, e, RUNS_HISTORY_MAX);
    return j;
}

/* A run starts with the history the store holds, whether it came from the
 * cache or the store: the scripted core prints what START brought. The
 * second run's comes from the cache; after another instance (a second
 * registry on the same store) ran on the session, the cache's count is
 * stale and the store is read. */
static void test_history_kept_between_runs(void **state)
{
    (void)state;
    fixture_open("stepper", &FAKE_CORE);
#define HCLOCK_CALL(id) "tools:[{\"id\":\"" id "\",\"type\":\"function\",\"function\":{\"name\":\"clock\"," \
                        "\"arguments\":\"{}\"}}]"
    script s1 = {.effects = {"model:a [[tokens:1]]", HCLOCK_CALL("h1"), "finish:first"}};
    sub b;
    run_script(&b, &s1, true, "one");
    assert_int_equal(b.status, RUN_COMPLETED);
    assert_string_equal(s1.history, "[]");
    assert_int_equal(history_cache_entries(F.r->history), 1);
    char *want = stored_history(), *cached = cached_history();
    assert_non_null(cached);
    assert_string_equal(cached, want);
    free(cached);

    script s2 = {.effects = {"model:b [[tokens:1]]", HCLOCK_CALL("h2"), "finish:second"}};
    run_script(&b, &s2, true, "two");
    assert_int_equal(b.status, RUN_COMPLETED);
    assert_string_equal(s2.history, want);
    free(want);
    uint64_t hits, misses;
    history_cache_counts(F.r->history, &hits, &misses);
    assert_int_equal(hits, 1 + 1);             /* run two's, and cached_history's */
    assert_int_equal(misses, 1);               /* run one's */

    /* another instance on the same store runs on the session */
    runs *other = runs_new(&F.cfg, F.st, F.tools);
    runs_set_core(other, &FAKE_CORE);
    runs_thread *ot = runs_thread_new(other, &L, F.up);
    script s3 = {.effects = {"finish:elsewhere"}};
    SCRIPTS[N_SCRIPTS++] = &s3;
    sub_init(&b, true);
    runs_post_message(ot, &b.rs, &F.user, F.session, "three", RUNS_BUSY_REJECT, NULL);
    assert_true(test_run_timed(&L, &b.ended, 8000));
    assert_int_equal(b.status, RUN_COMPLETED);
    runs_thread_free(ot);
    test_spin(&L, 20);
    runs_free(other);

    want = stored_history();
    assert_non_null(strstr(want, "elsewhere"));
    assert_null(cached_history());             /* stale: dropped */
    script s4 = {.effects = {"finish:fourth"}};
    run_script(&b, &s4, true, "four");
    assert_string_equal(s4.history, want);
    free(want);
    history_cache_counts(F.r->history, &hits, &misses);
    assert_int_equal(misses, 1 + 2);           /* cached_history's, run four's */

    /* the session deleted: what was kept of it goes */
    want = stored_history();
    cached = cached_history();
    assert_non_null(cached);
    assert_string_equal(cached, want);
    free(cached);
    free(want);
    runs_session_deleted(F.r, F.session);
    assert_int_equal(history_cache_entries(F.r->history), 0);
    /* (the store still has it: this test deleted only the cache's copy)
     * and the user erased */
    script s5 = {.effects = {"finish:fifth"}};
    run_script(&b, &s5, true, "five");
    assert_int_equal(history_cache_entries(F.r->history), 1);
    identity_revocation rv = {.tenant_id = F.user.tenant_id, .user_id = F.user.user_id,
                              .code = "user_deleted", .message = "the user was deleted"};
    runs_on_revocation(F.r, &rv);
    assert_int_equal(history_cache_entries(F.r->history), 0);
#undef HCLOCK_CALL
    fixture_close();
}

/* With the built-in core, guards and the bounded context at work on
 * conversations that refer to the cache's messages: after every run what
 * the cache holds is what the store holds — nothing in a run changed a
 * cached message in place. */
static void test_cached_history_unchanged_by_runs(void **state)
{
    (void)state;
    fixture_open("stepper", &step_core_toolcall);
    for (int i = 0; i < 6; i++) {
        char text[96];
        snprintf(text, sizeof text, "turn %d [[tool:clock {}]] [[tool_loop:%d]]", i, 1 + i % 3);
        sub b;
        run_script(&b, NULL, true, text);
        if (b.status != RUN_COMPLETED) fail_msg("run %d ended %d (%s)", i, b.status, b.code);
        char *want = stored_history(), *cached = cached_history();
        if (!cached) fail_msg("run %d: nothing cached", i);
        assert_string_equal(cached, want);
        free(cached);
        free(want);
    }
    uint64_t hits, misses;
    history_cache_counts(F.r->history, &hits, &misses);
    assert_int_equal(misses, 1);               /* the first run's */
    fixture_close();
}

static void test_auth_without_credential_store(void **state)
{
    (void)state;
    auth_fixture(false);
    sub b;
    run_script(&b, NULL, false, "call it [[tool:authed {}]]");
    assert_int_equal(b.status, RUN_COMPLETED);   /* the failure is the tool's result */
    assert_non_null(strstr(b.message_text, "no credential store is configured"));
    assert_int_equal(ECHO_COUNT, 0);
    fixture_close();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completes),
        cmocka_unit_test(test_quick_steps_share_a_write),
        cmocka_unit_test(test_request_body_without_origins),
        cmocka_unit_test(test_request_text_kept),
        cmocka_unit_test(test_json_subscriber_gets_no_events),
        cmocka_unit_test(test_tool_errors_become_results),
        cmocka_unit_test(test_cancel_mid_tool),
        cmocka_unit_test(test_cancel_unknown_run),
        cmocka_unit_test(test_interrupt),
        cmocka_unit_test(test_enqueue_and_reject),
        cmocka_unit_test(test_wall_time_in_model_call),
        cmocka_unit_test(test_wall_time_in_tool),
        cmocka_unit_test(test_max_steps),
        cmocka_unit_test(test_max_tool_calls),
        cmocka_unit_test(test_loop_guard),
        cmocka_unit_test(test_core_failure),
        cmocka_unit_test(test_session_not_found),
        cmocka_unit_test(test_backpressure_drain_and_gone),
        cmocka_unit_test(test_waiting_auth_then_connected),
        cmocka_unit_test(test_waiting_auth_times_out),
        cmocka_unit_test(test_auth_without_credential_store),
        cmocka_unit_test(test_history_kept_between_runs),
        cmocka_unit_test(test_cached_history_unchanged_by_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
