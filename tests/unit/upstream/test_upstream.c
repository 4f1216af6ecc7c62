/* test_upstream.c — the upstream module on a real uv loop: provider `mock`
 * (in-process: plain, stream, tool call, every fault, backpressure, cancel
 * from on_event) and provider `openai` against a fake HTTP server written
 * here with libuv that replies canned bytes — including an SSE stream in
 * chunked encoding split at awkward byte boundaries, a truncated stream, a
 * 429 with Retry-After, a malformed body, a refused connection and a
 * server that never answers — each over the built-in HTTP/1.1 client and
 * over libcurl; and the built-in client's own cases against a server of
 * many connections (keep-alive, a stale connection, the connection limit's
 * queue, answer forms, oversized and garbage answers). Each test ends with uv_loop_close() == 0: no
 * handle may be left behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "test_util.h"
#include "upstream/upstream.h"
#include "util/buf.h"
#include "util/timeutil.h"

/* ------------------------------------------------------------ fixtures */

static uv_loop_t      L;
static provider_cfg   P;
static model_cfg      M;
static brigade_config CFG;
static upstream      *U;
/* The openai tests run twice: over the built-in HTTP/1.1 client (the
 * default for http://) and over libcurl (`http_client: curl`). */
static bool           USE_CURL;

static void setup_provider(provider_kind kind, const char *base_url)
{
    memset(&P, 0, sizeof(P));
    memset(&M, 0, sizeof(M));
    memset(&CFG, 0, sizeof(CFG));
    P.name = "p";
    P.kind = kind;
    P.base_url = (char *)base_url;
    P.api_key = "sk-test";
    P.timeout_ms = 3000;
    P.connect_timeout_ms = 1000;
    P.max_connections = 4;
    P.http_client_curl = USE_CURL;
    M.name = "m";
    M.provider = &P;
    M.upstream_model = "m";
    M.max_output_tokens = 4096;
}

static int setup(void **st)
{
    (void)st;
    assert_int_equal(uv_loop_init(&L), 0);
    setup_provider(PROVIDER_MOCK, NULL);
    U = upstream_new(&L, &CFG);
    return 0;
}

static void close_left_over(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static int teardown(void **st)
{
    (void)st;
    upstream_free(U);
    /* A test that failed midway leaves its fake server's handles open:
     * close them here, or the loop would never end and the failure would
     * show as a hang. (A test that passes has closed its own.) */
    uv_run(&L, UV_RUN_NOWAIT);
    uv_walk(&L, close_left_over, NULL);
    uv_run(&L, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&L), 0);   /* every handle closed */
    return 0;
}

typedef struct collect {
    int             done;
    upstream_result r;
    char            message[256];
    buf             body;
    buf             content;     /* delta.content of stream events, joined */
    int             n_events;
    int             pause_at;    /* return false at this event (1-based), 0 = never */
    int             cancel_at;   /* cancel inside this event, 0 = never */
    int             bad_json;
    upstream_call  *call;
    uv_timer_t      resume_timer;
    uint64_t        t0, t_done;
} collect;

static void collect_resume(uv_timer_t *t)
{
    collect *c = t->data;
    upstream_call_resume(c->call);
}

static bool on_event(upstream_call *call, const char *json, size_t len, void *arg)
{
    collect *c = arg;
    assert_ptr_equal(call, c->call);
    assert_int_equal(c->done, 0);
    c->n_events++;
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (!j) c->bad_json++;
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    const cJSON *content = cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "delta"), "content");
    if (cJSON_IsString(content)) buf_puts(&c->content, content->valuestring);
    cJSON_Delete(j);
    if (c->n_events == c->cancel_at) {
        upstream_call_cancel(call);
        assert_int_equal(c->done, 1);   /* on_done came synchronously */
        return true;
    }
    if (c->n_events == c->pause_at) {
        uv_timer_start(&c->resume_timer, collect_resume, 30, 0);
        return false;
    }
    return true;
}

static void on_done(upstream_call *call, const upstream_result *r, void *arg)
{
    collect *c = arg;
    (void)call;
    c->done++;
    c->r = *r;
    c->r.body = NULL;
    if (r->message) snprintf(c->message, sizeof(c->message), "%s", r->message);
    if (r->body) buf_append(&c->body, r->body, r->body_len);
    c->t_done = time_mono_ns();
}

static const upstream_callbacks CB = { on_event, on_done, NULL };

static void collect_init(collect *c)
{
    memset(c, 0, sizeof(*c));
    buf_init(&c->body);
    buf_init(&c->content);
    uv_timer_init(&L, &c->resume_timer);
    c->resume_timer.data = c;
    c->t0 = time_mono_ns();
}

static void collect_timer_closed(uv_handle_t *h) { *(bool *)h->data = true; }

/* The collect lives on the test's stack: its timer must be closed before
 * the function returns. */
static void collect_free(collect *c)
{
    buf_free(&c->body);
    buf_free(&c->content);
    bool closed = false;
    c->resume_timer.data = &closed;
    uv_close((uv_handle_t *)&c->resume_timer, collect_timer_closed);
    while (!closed) uv_run(&L, UV_RUN_ONCE);
}

/* Run the loop until the call is done (bounded: the test fails past 4 s). */
static void run_until_done(collect *c)
{
    assert_int_equal(test_run_until(&L, &c->done, 4000), 1);
    /* on_done must never come twice: turn the loop a little more. */
    for (int i = 0; i < 3; i++) uv_run(&L, UV_RUN_NOWAIT);
    assert_int_equal(c->done, 1);
}

static upstream_call *chat(collect *c, const char *user_text, bool stream)
{
    char body[2048];
    snprintf(body, sizeof(body), "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             user_text);
    c->call = upstream_chat(U, &M, body, strlen(body), stream, &(upstream_opts){.request_id = "req-123"}, &CB, c);
    assert_non_null(c->call);
    assert_int_equal(c->done, 0);   /* never answered inside upstream_chat */
    return c->call;
}

/* ------------------------------------------------------- mock provider */

static void test_mock_plain(void **st)
{
    (void)st;
    collect c;
    collect_init(&c);
    chat(&c, "hello [[tokens:6]]", false);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    assert_int_equal(c.r.status, 200);
    cJSON *j = cJSON_ParseWithLength(c.body.data, c.body.len);
    assert_non_null(j);
    cJSON *u = cJSON_GetObjectItem(j, "usage");
    assert_int_equal(cJSON_GetObjectItem(u, "completion_tokens")->valueint, 6);
    assert_int_equal(c.r.output_tokens, 6);
    /* "hello [[tokens:6]]" is 18 bytes → 5 tokens + 3 */
    assert_int_equal(c.r.input_tokens, 8);
    assert_false(c.r.usage_estimated);
    cJSON_Delete(j);
    collect_free(&c);
}

static void test_mock_stream(void **st)
{
    (void)st;
    P.mock_chunk_interval_ms = 2;
    collect c;
    collect_init(&c);
    chat(&c, "[[tokens:5]]", true);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    /* role + 5 content + finish + usage */
    assert_int_equal(c.n_events, 8);
    assert_int_equal(c.bad_json, 0);
    assert_string_equal(c.content.data, "alpha bravo charlie delta echo");
    assert_int_equal(c.r.output_tokens, 5);
    assert_true(c.t_done - c.t0 >= 6 * 2000000ULL);   /* paced by the interval */
    collect_free(&c);
}

static void test_mock_tool_call(void **st)
{
    (void)st;
    collect c;
    collect_init(&c);
    chat(&c, "[[tool:lookup {\\\"q\\\":\\\"x\\\"}]]", false);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    cJSON *j = cJSON_ParseWithLength(c.body.data, c.body.len);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "tool_calls");
    cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "message"), "tool_calls"), 0);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"), "name")->valuestring, "lookup");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"), "arguments")->valuestring,
                        "{\"q\":\"x\"}");
    cJSON_Delete(j);
    collect_free(&c);
}

static void test_mock_faults(void **st)
{
    (void)st;
    P.timeout_ms = 150;
    static const struct { const char *text; bool stream; upstream_error e; int status; } cases[] = {
        { "[[fault:rate_limit]]", false, UPSTREAM_HTTP_STATUS, 429 },
        { "[[fault:server_error]]", true, UPSTREAM_HTTP_STATUS, 500 },
        { "[[fault:hang]]", false, UPSTREAM_TIMEOUT, 0 },
        { "[[fault:truncate]]", true, UPSTREAM_TRUNCATED, 0 },
        { "[[fault:truncate]]", false, UPSTREAM_TRUNCATED, 0 },
        { "[[fault:malformed]]", false, UPSTREAM_MALFORMED, 0 },
        { "[[fault:malformed]]", true, UPSTREAM_MALFORMED, 0 },
        { "[[fault:slow_first_byte]] [[latency:40]]", false, UPSTREAM_OK, 200 },
        { "[[fault:nope]]", false, UPSTREAM_HTTP_STATUS, 400 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        collect c;
        collect_init(&c);
        chat(&c, cases[i].text, cases[i].stream);
        run_until_done(&c);
        if (c.r.error != cases[i].e || c.r.status != cases[i].status)
            fail_msg("case %zu (%s): got %s status %d", i, cases[i].text, upstream_error_name(c.r.error),
                     c.r.status);
        if (cases[i].status == 429) assert_int_equal(c.r.retry_after_s, 1);
        if (cases[i].e == UPSTREAM_TIMEOUT) assert_true(c.t_done - c.t0 >= 140000000ULL);
        if (cases[i].e == UPSTREAM_OK) assert_true(c.t_done - c.t0 >= 40000000ULL);
        if (cases[i].e == UPSTREAM_TRUNCATED && cases[i].stream) {
            assert_true(c.n_events > 0);
            assert_true(c.n_events < 19);   /* fewer than the whole stream */
        }
        if (cases[i].e == UPSTREAM_HTTP_STATUS) {
            cJSON *j = cJSON_ParseWithLength(c.body.data, c.body.len);
            assert_non_null(cJSON_GetObjectItem(j, "error"));
            cJSON_Delete(j);
        }
        collect_free(&c);
    }
}

static void test_mock_fault_count(void **st)
{
    (void)st;
    /* Unique text so the process-wide attempt table starts at zero. */
    char text[96];
    snprintf(text, sizeof(text), "[[fault:server_error:2]] %llu", (unsigned long long)time_mono_ns());
    upstream_error seen[3];
    for (int i = 0; i < 3; i++) {
        collect c;
        collect_init(&c);
        chat(&c, text, false);
        run_until_done(&c);
        seen[i] = c.r.error;
        collect_free(&c);
    }
    assert_int_equal(seen[0], UPSTREAM_HTTP_STATUS);
    assert_int_equal(seen[1], UPSTREAM_HTTP_STATUS);
    assert_int_equal(seen[2], UPSTREAM_OK);
}

static void test_mock_backpressure_and_cancel(void **st)
{
    (void)st;
    collect c;
    collect_init(&c);
    c.pause_at = 2;
    chat(&c, "[[tokens:4]]", true);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    assert_int_equal(c.n_events, 7);
    assert_true(c.t_done - c.t0 >= 25000000ULL);   /* waited for the resume */
    collect_free(&c);

    collect d;
    collect_init(&d);
    d.cancel_at = 3;
    chat(&d, "[[tokens:10]]", true);
    run_until_done(&d);
    assert_int_equal(d.r.error, UPSTREAM_CANCELLED);
    assert_int_equal(d.n_events, 3);
    collect_free(&d);

    /* Cancel before anything happened, and upstream_free with a call in flight. */
    collect e;
    collect_init(&e);
    chat(&e, "[[latency:1000]]", false);
    upstream_call_cancel(e.call);
    assert_int_equal(e.done, 1);
    assert_int_equal(e.r.error, UPSTREAM_CANCELLED);
    collect_free(&e);

    collect f;
    collect_init(&f);
    chat(&f, "[[fault:hang]]", true);
    upstream_free(U);
    U = NULL;
    assert_int_equal(f.done, 1);
    assert_int_equal(f.r.error, UPSTREAM_CANCELLED);
    collect_free(&f);
}

/* ------------------------------------------------ fake OpenAI server */

typedef struct fake {
    uv_tcp_t    srv;
    uv_tcp_t    cli;
    uv_timer_t  tm;
    bool        has_cli;
    int         port;
    buf         req;          /* what the client sent */
    buf         resp;         /* what to answer */
    size_t      sent;
    const size_t *splits;     /* write sizes, cycled; NULL = all at once */
    size_t      n_splits, split_i;
    bool        close_after;
    bool        never_reply;
    bool        replying;
} fake;

static fake F;

static void fake_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(sz);
    b->len = sz;
}

static void fake_write_done(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void fake_send(const char *p, size_t n)
{
    uv_write_t *w = malloc(sizeof(*w));
    char *copy = malloc(n);
    memcpy(copy, p, n);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    uv_write(w, (uv_stream_t *)&F.cli, &b, 1, fake_write_done);
}

static void fake_tick(uv_timer_t *t)
{
    (void)t;
    if (!F.has_cli) return;
    size_t n = F.resp.len - F.sent;
    if (F.splits) {
        size_t want = F.splits[F.split_i++ % F.n_splits];
        if (want < n) n = want;
    }
    fake_send(F.resp.data + F.sent, n);
    F.sent += n;
    if (F.sent < F.resp.len) return;
    uv_timer_stop(&F.tm);
    if (F.close_after) {
        uv_close((uv_handle_t *)&F.cli, NULL);
        F.has_cli = false;
    }
}

static bool fake_request_complete(void)
{
    const char *end = F.req.data ? memmem(F.req.data, F.req.len, "\r\n\r\n", 4) : NULL;
    if (!end) return false;
    size_t head = (size_t)(end - F.req.data) + 4;
    size_t cl = 0;
    for (const char *p = F.req.data; p < end; p++)
        if ((p == F.req.data || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
            cl = strtoul(p + 15, NULL, 10);
    return F.req.len >= head + cl;
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)s;
    if (n > 0) buf_append(&F.req, b->base, (size_t)n);
    free(b->base);
    if (n < 0) {
        if (F.has_cli) uv_close((uv_handle_t *)&F.cli, NULL);
        F.has_cli = false;
        uv_timer_stop(&F.tm);
        return;
    }
    if (!F.replying && !F.never_reply && fake_request_complete()) {
        F.replying = true;
        uv_timer_start(&F.tm, fake_tick, 0, 1);
    }
}

static void fake_accept(uv_stream_t *srv, int status)
{
    assert_int_equal(status, 0);
    assert_false(F.has_cli);   /* one connection per test */
    uv_tcp_init(&L, &F.cli);
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&F.cli), 0);
    F.has_cli = true;
    uv_read_start((uv_stream_t *)&F.cli, fake_alloc, fake_read);
}

static char FAKE_URL[64];

static void fake_start(void)
{
    memset(&F, 0, sizeof(F));
    buf_init(&F.req);
    buf_init(&F.resp);
    uv_tcp_init(&L, &F.srv);
    uv_timer_init(&L, &F.tm);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&F.srv, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&F.srv, 8, fake_accept), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&F.srv, (struct sockaddr *)&got, &len);
    F.port = ntohs(got.sin_port);
    snprintf(FAKE_URL, sizeof(FAKE_URL), "http://127.0.0.1:%d/v1", F.port);
    setup_provider(PROVIDER_OPENAI, FAKE_URL);
}

static void fake_stop(void)
{
    /* Let curl drop its connections first (upstream_free in teardown would
     * too, but the fake's handles must close before the loop check). */
    upstream_free(U);
    U = upstream_new(&L, &CFG);
    if (F.has_cli) uv_close((uv_handle_t *)&F.cli, NULL);
    uv_close((uv_handle_t *)&F.srv, NULL);
    uv_close((uv_handle_t *)&F.tm, NULL);
    uv_run(&L, UV_RUN_DEFAULT);
    buf_free(&F.req);
    buf_free(&F.resp);
}

static void fake_json_reply(int status, const char *extra_headers, const char *body)
{
    buf_printf(&F.resp, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
               status, strlen(body), extra_headers, body);
}

/* SSE text in chunked encoding; each chunk holds `chunk` bytes of it. */
static void fake_sse_reply(const char *sse, size_t chunk, bool terminate)
{
    buf_puts(&F.resp, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
    size_t n = strlen(sse);
    for (size_t at = 0; at < n; at += chunk) {
        size_t k = n - at < chunk ? n - at : chunk;
        buf_printf(&F.resp, "%zx\r\n", k);
        buf_append(&F.resp, sse + at, k);
        buf_puts(&F.resp, "\r\n");
    }
    if (terminate) buf_puts(&F.resp, "0\r\n\r\n");
}

static const char SSE_OK[] =
    ": keep-alive comment\r\n\r\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u00e9t\u00e9\"},\"finish_reason\":null}]}\r\r"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3,\"total_tokens\":14}}\n\n"
    "data: [DONE]\n\n";

static const size_t AWKWARD[] = { 1, 5, 37, 3, 61, 2, 97, 4 };

static void test_openai_plain(void **st)
{
    (void)st;
    fake_start();
    fake_json_reply(200, "",
                    "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
                    "{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"stop\"}],"
                    "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":1,\"total_tokens\":13}}");
    collect c;
    collect_init(&c);
    chat(&c, "hello", false);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    assert_int_equal(c.r.status, 200);
    assert_int_equal(c.r.input_tokens, 12);
    assert_int_equal(c.r.output_tokens, 1);
    assert_false(c.r.usage_estimated);
    assert_non_null(strstr(c.body.data, "\"content\":\"hi\""));
    /* What the provider received. */
    assert_true(strncmp(F.req.data, "POST /v1/chat/completions HTTP/1.1\r\n", 36) == 0);
    assert_non_null(strcasestr(F.req.data, "authorization: Bearer sk-test\r\n"));
    assert_non_null(strcasestr(F.req.data, "x-request-id: req-123\r\n"));
    assert_null(strcasestr(F.req.data, "expect:"));
    assert_non_null(strstr(F.req.data, "{\"model\":\"m\""));
    collect_free(&c);
    fake_stop();
}

static void test_openai_no_usage_estimated(void **st)
{
    (void)st;
    fake_start();
    fake_json_reply(200, "", "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"12345678\"}}]}");
    collect c;
    collect_init(&c);
    chat(&c, "hello", false);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    assert_true(c.r.usage_estimated);
    assert_int_equal(c.r.output_tokens, 2);
    assert_true(c.r.input_tokens > 0);
    collect_free(&c);
    fake_stop();
}

static void test_openai_stream_awkward(void **st)
{
    (void)st;
    fake_start();
    fake_sse_reply(SSE_OK, 50, true);
    F.splits = AWKWARD;
    F.n_splits = sizeof(AWKWARD) / sizeof(AWKWARD[0]);
    collect c;
    collect_init(&c);
    chat(&c, "hello", true);
    run_until_done(&c);
    if (c.r.error != UPSTREAM_OK) fail_msg("error %s: %s", upstream_error_name(c.r.error), c.message);
    assert_int_equal(c.n_events, 5);
    assert_int_equal(c.bad_json, 0);
    assert_string_equal(c.content.data, "Hello \xc3\xa9t\xc3\xa9");
    assert_int_equal(c.r.input_tokens, 11);
    assert_int_equal(c.r.output_tokens, 3);
    /* The module asked for usage in the stream. */
    assert_non_null(strstr(F.req.data, "\"stream\":true"));
    assert_non_null(strstr(F.req.data, "\"stream_options\":{\"include_usage\":true}"));
    assert_non_null(strcasestr(F.req.data, "accept: text/event-stream"));
    collect_free(&c);
    fake_stop();
}

/* brigade's own request text (an agent run's, upstream_opts.plain_stream)
 * gets the stream options put after its opening brace, its bytes as they
 * are — as a client's body with one "stream": true gets them after a read
 * of its members; a body with "stream_options" of its own is rewritten
 * through cJSON (its 16.0 printed as 16). */
static void test_openai_plain_stream_body(void **st)
{
    (void)st;
    static const char body[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                               "\"max_tokens\":16.0,\"stream\":true}";
    static const char want[] = "{\"stream_options\":{\"include_usage\":true},\"model\":\"m\",\"messages\":"
                               "[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":16.0,\"stream\":true}";
    for (int plain = 0; plain < 3; plain++) {
        fake_start();
        fake_sse_reply(SSE_OK, 50, true);
        collect c;
        collect_init(&c);
        char text[256];
        snprintf(text, sizeof text, "%s", body);
        if (plain == 2)   /* options of the client's own: not the plain case */
            snprintf(text, sizeof text, "{\"model\":\"m\",\"messages\":[],\"max_tokens\":16.0,\"stream\":true,"
                                        "\"stream_options\":{\"include_usage\":false}}");
        c.call = upstream_chat(U, &M, text, strlen(text), true,
                               &(upstream_opts){.plain_stream = plain == 1}, &CB, &c);
        assert_non_null(c.call);
        run_until_done(&c);
        assert_int_equal(c.r.error, UPSTREAM_OK);
        if (plain < 2) {
            assert_non_null(strstr(F.req.data, want));
        } else {
            assert_null(strstr(F.req.data, "16.0"));
            assert_non_null(strstr(F.req.data, "\"include_usage\":true"));
            assert_null(strstr(F.req.data, "\"include_usage\":false"));
        }
        collect_free(&c);
        fake_stop();
    }
}

static void test_openai_stream_backpressure(void **st)
{
    (void)st;
    fake_start();
    fake_sse_reply(SSE_OK, 4096, true);   /* everything in one read */
    collect c;
    collect_init(&c);
    c.pause_at = 1;
    chat(&c, "hello", true);
    run_until_done(&c);
    if (c.r.error != UPSTREAM_OK) fail_msg("error %s: %s", upstream_error_name(c.r.error), c.message);
    assert_int_equal(c.n_events, 5);
    assert_string_equal(c.content.data, "Hello \xc3\xa9t\xc3\xa9");
    assert_true(c.t_done - c.t0 >= 25000000ULL);
    collect_free(&c);
    fake_stop();

    /* Bytes keep arriving while paused: curl is paused (CURL_WRITEFUNC_PAUSE)
     * and redelivers them on resume; the built-in client stops reading the
     * socket and hands out what it had read. */
    fake_start();
    fake_sse_reply(SSE_OK, 50, true);
    F.splits = AWKWARD;
    F.n_splits = sizeof(AWKWARD) / sizeof(AWKWARD[0]);
    collect d;
    collect_init(&d);
    d.pause_at = 2;
    chat(&d, "hello", true);
    run_until_done(&d);
    if (d.r.error != UPSTREAM_OK) fail_msg("error %s: %s", upstream_error_name(d.r.error), d.message);
    assert_int_equal(d.n_events, 5);
    assert_string_equal(d.content.data, "Hello \xc3\xa9t\xc3\xa9");
    assert_int_equal(d.r.output_tokens, 3);
    collect_free(&d);
    fake_stop();
}

static void test_openai_stream_cancel_in_event(void **st)
{
    (void)st;
    fake_start();
    fake_sse_reply(SSE_OK, 4096, false);   /* stays open: only the cancel ends it */
    collect c;
    collect_init(&c);
    c.cancel_at = 2;
    chat(&c, "hello", true);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_CANCELLED);
    assert_int_equal(c.n_events, 2);
    collect_free(&c);
    fake_stop();
}

static void test_openai_stream_truncated(void **st)
{
    (void)st;
    fake_start();
    /* Events, then the connection closes without [DONE] or the last chunk. */
    static const char cut[] =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n"
        "data: {\"choices\":[{\"ind";
    fake_sse_reply(cut, 16, false);
    F.close_after = true;
    collect c;
    collect_init(&c);
    chat(&c, "hello", true);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_TRUNCATED);
    assert_int_equal(c.n_events, 2);
    assert_true(c.r.usage_estimated);
    collect_free(&c);
    fake_stop();

    /* A clean end of stream without [DONE] is truncated too. */
    fake_start();
    fake_sse_reply("data: {\"choices\":[]}\n\n", 64, true);
    collect d;
    collect_init(&d);
    chat(&d, "hello", true);
    run_until_done(&d);
    assert_int_equal(d.r.error, UPSTREAM_TRUNCATED);
    collect_free(&d);
    fake_stop();
}

static void test_openai_stream_malformed_event(void **st)
{
    (void)st;
    fake_start();
    fake_sse_reply("data: {\"choices\":[]}\n\ndata: {not json\n\ndata: [DONE]\n\n", 64, true);
    collect c;
    collect_init(&c);
    chat(&c, "hello", true);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_MALFORMED);
    assert_int_equal(c.n_events, 1);
    collect_free(&c);
    fake_stop();
}

static void test_openai_429(void **st)
{
    (void)st;
    fake_start();
    fake_json_reply(429, "Retry-After: 7\r\n",
                    "{\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\",\"code\":null,\"param\":null}}");
    collect c;
    collect_init(&c);
    chat(&c, "hello", true);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_HTTP_STATUS);
    assert_int_equal(c.r.status, 429);
    assert_int_equal(c.r.retry_after_s, 7);
    assert_non_null(strstr(c.body.data, "slow down"));
    assert_int_equal(c.n_events, 0);
    collect_free(&c);
    fake_stop();
}

static void test_openai_malformed_body(void **st)
{
    (void)st;
    fake_start();
    fake_json_reply(200, "", "{\"choices\":[{\"index\":0,");
    collect c;
    collect_init(&c);
    chat(&c, "hello", false);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_MALFORMED);
    assert_int_equal(c.r.status, 200);
    collect_free(&c);
    fake_stop();
}

static void test_openai_timeout(void **st)
{
    (void)st;
    fake_start();
    F.never_reply = true;
    P.timeout_ms = 200;
    collect c;
    collect_init(&c);
    chat(&c, "hello", false);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_TIMEOUT);
    assert_true(c.t_done - c.t0 >= 190000000ULL);
    collect_free(&c);
    fake_stop();
}

static void test_openai_refused(void **st)
{
    (void)st;
    fake_start();
    fake_stop();   /* the port is now closed */
    collect c;
    collect_init(&c);
    chat(&c, "hello", false);
    run_until_done(&c);
    assert_int_equal(c.r.error, UPSTREAM_CONNECT);
    assert_int_equal(c.r.status, 0);
    assert_true(c.message[0] != '\0');
    collect_free(&c);
    provider_cfg fresh = P;   /* a pointer never seen answering: probe for real */
    assert_false(upstream_provider_reachable(&fresh));
}

/* A failed probe is believed for a few seconds: /readyz is public, and a
 * flood of it probed a provider that does not answer on every call, each
 * probe holding a thread-pool thread up to 2 s. Here the port starts to
 * listen right after a refused probe: the next /readyz still says
 * unreachable, without probing. */
static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void test_reachable_failure_is_remembered(void **st)
{
    (void)st;
    int fd = listen_on(0);
    assert_true(fd >= 0);
    struct sockaddr_in got;
    socklen_t gl = sizeof got;
    getsockname(fd, (struct sockaddr *)&got, &gl);
    int port = ntohs(got.sin_port);
    close(fd);                                     /* nothing listens there now */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", port);
    static provider_cfg p;   /* an address no other test's provider had */
    p = (provider_cfg){.kind = PROVIDER_OPENAI, .name = "probed", .base_url = url};
    assert_false(upstream_provider_reachable(&p));  /* refused */
    fd = listen_on(port);
    assert_true(fd >= 0);
    assert_false(upstream_provider_reachable(&p));  /* the failure, believed: not probed again */
    close(fd);
}

static void test_misc(void **st)
{
    (void)st;
    assert_int_equal(upstream_estimate_tokens("abcdefgh", 8), 2);
    assert_int_equal(upstream_estimate_tokens("abcdefghi", 9), 3);
    assert_int_equal(upstream_estimate_tokens("", 0), 0);
    assert_string_equal(upstream_error_name(UPSTREAM_TRUNCATED), "truncated");
    provider_cfg mock = { .kind = PROVIDER_MOCK };
    assert_true(upstream_provider_reachable(&mock));
    fake_start();
    provider_cfg fresh = P;
    assert_true(upstream_provider_reachable(&fresh));
    fake_stop();
}

/* ------------------------------- the built-in HTTP/1.1 client's own cases
 *
 * A second fake server, for what only the built-in client does: it takes
 * any number of connections and answers each complete request the way the
 * test's mode says (keep-alive, drop, close, 1xx, oversized head, garbage,
 * bytes past the answer, silence). It counts connections and requests. */

typedef enum h1_mode {
    H1M_KEEP,          /* 200 with a length, connection kept */
    H1M_CLOSE_EACH,    /* 200 with a length, then the server closes */
    H1M_DROP_SECOND,   /* a connection's second request: closed unanswered */
    H1M_DROP_ALL,      /* every request: closed unanswered */
    H1M_TILL_CLOSE,    /* HTTP/1.0 answer without a length, ended by the close */
    H1M_CONTINUE,      /* 100 Continue, then the 200 */
    H1M_CONTINUE_LEN,  /* 100 Continue with a Content-Length (no body all the same), then the 200 */
    H1M_NO_CONTENT,    /* 204 with a Content-Length, and nothing after its head */
    H1M_HUGE_HEAD,     /* 200 and 70 KiB of headers */
    H1M_GARBAGE,       /* not HTTP */
    H1M_NO_CODE,       /* a status line without its three digits */
    H1M_EXTRA,         /* 200, then bytes nobody asked for */
    H1M_SILENT,        /* never answers */
} h1_mode;

typedef struct h1_sconn {
    uv_tcp_t t;
    buf      in;
    int      answered;
    bool     closing;
} h1_sconn;

static struct {
    uv_tcp_t lst;
    h1_mode  mode;
    int      accepted, open_now, max_open, requests;
    size_t   last_body_len;
    char     url[64];
} S;

static void h1s_closed(uv_handle_t *h)
{
    h1_sconn *c = h->data;
    buf_free(&c->in);
    free(c);
}

static void h1s_close(h1_sconn *c)
{
    if (c->closing) return;
    c->closing = true;
    S.open_now--;
    uv_close((uv_handle_t *)&c->t, h1s_closed);
}

typedef struct { uv_write_t w; h1_sconn *c; bool close_after; char data[]; } h1s_write;

static void h1s_written(uv_write_t *w, int status)
{
    (void)status;
    h1s_write *x = (h1s_write *)w;
    if (x->close_after) h1s_close(x->c);
    free(x);
}

static void h1s_send(h1_sconn *c, const char *p, size_t n, bool close_after)
{
    h1s_write *x = malloc(sizeof(*x) + n);
    memcpy(x->data, p, n);
    x->c = c;
    x->close_after = close_after;
    uv_buf_t b = uv_buf_init(x->data, (unsigned)n);
    uv_write(&x->w, (uv_stream_t *)&c->t, &b, 1, h1s_written);
}

#define H1_JSON "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\"}}]," \
                "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}"

/* One complete request at the front of c->in: answer it per S.mode. */
static void h1s_answer(h1_sconn *c)
{
    c->answered++;
    S.requests++;
    char head[256];
    int k = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     strlen(H1_JSON));
    buf out;
    buf_init(&out);
    bool close_after = false;
    switch (S.mode) {
    case H1M_SILENT: buf_free(&out); return;
    case H1M_DROP_ALL: buf_free(&out); h1s_close(c); return;
    case H1M_DROP_SECOND:
        if (c->answered == 2) { buf_free(&out); h1s_close(c); return; }
        /* fallthrough */
    case H1M_KEEP: buf_append(&out, head, (size_t)k); buf_puts(&out, H1_JSON); break;
    case H1M_CLOSE_EACH: buf_append(&out, head, (size_t)k); buf_puts(&out, H1_JSON); close_after = true; break;
    case H1M_TILL_CLOSE:
        buf_puts(&out, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" H1_JSON);
        close_after = true;
        break;
    case H1M_CONTINUE:
        buf_puts(&out, "HTTP/1.1 100 Continue\r\n\r\n");
        buf_append(&out, head, (size_t)k);
        buf_puts(&out, H1_JSON);
        break;
    case H1M_CONTINUE_LEN:
        buf_puts(&out, "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n");
        buf_append(&out, head, (size_t)k);
        buf_puts(&out, H1_JSON);
        break;
    case H1M_NO_CONTENT: buf_puts(&out, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"); break;
    case H1M_HUGE_HEAD:
        buf_puts(&out, "HTTP/1.1 200 OK\r\n");
        for (int i = 0; i < 1100; i++) buf_printf(&out, "X-Filler-%04d: %060d\r\n", i, i);
        buf_printf(&out, "Content-Length: %zu\r\n\r\n%s", strlen(H1_JSON), H1_JSON);
        break;
    case H1M_GARBAGE: buf_puts(&out, "hello there, not http\r\n\r\n"); close_after = true; break;
    case H1M_NO_CODE:
        buf_printf(&out, "HTTP/1.1  OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(H1_JSON), H1_JSON);
        break;
    case H1M_EXTRA:
        buf_append(&out, head, (size_t)k);
        buf_puts(&out, H1_JSON);
        buf_puts(&out, "HTTP/1.1 200 OK\r\n");   /* a second answer nobody asked for */
        break;
    }
    h1s_send(c, out.data, out.len, close_after);
    buf_free(&out);
}

static void h1s_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(sz);
    b->len = sz;
}

static void h1s_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    h1_sconn *c = s->data;
    if (n > 0 && !c->closing) buf_append(&c->in, b->base, (size_t)n);
    free(b->base);
    if (n < 0) {
        h1s_close(c);
        return;
    }
    for (;;) {   /* every complete request in what arrived */
        const char *end = c->in.data ? memmem(c->in.data, c->in.len, "\r\n\r\n", 4) : NULL;
        if (!end || c->closing) return;
        size_t head = (size_t)(end - c->in.data) + 4, cl = 0;
        for (const char *p = c->in.data; p < end; p++)
            if ((p == c->in.data || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
                cl = strtoul(p + 15, NULL, 10);
        if (c->in.len < head + cl) return;
        S.last_body_len = cl;
        buf_consume(&c->in, head + cl);
        h1s_answer(c);
    }
}

static void h1s_accept(uv_stream_t *l, int status)
{
    assert_int_equal(status, 0);
    h1_sconn *c = calloc(1, sizeof(*c));
    buf_init(&c->in);
    uv_tcp_init(&L, &c->t);
    c->t.data = c;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&c->t), 0);
    S.accepted++;
    if (++S.open_now > S.max_open) S.max_open = S.open_now;
    uv_read_start((uv_stream_t *)&c->t, h1s_alloc, h1s_read);
}

static void h1s_start(h1_mode mode, const char *host)
{
    memset(&S, 0, sizeof(S));
    S.mode = mode;
    uv_tcp_init(&L, &S.lst);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&S.lst, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&S.lst, 64, h1s_accept), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&S.lst, (struct sockaddr *)&got, &len);
    snprintf(S.url, sizeof(S.url), "http://%s:%d/v1", host, ntohs(got.sin_port));
    setup_provider(PROVIDER_OPENAI, S.url);
}

static void h1s_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->type == UV_TCP && h->data && !uv_is_closing(h) && h != (uv_handle_t *)&S.lst) h1s_close(h->data);
}

static void h1s_stop(void)
{
    upstream_free(U);
    U = upstream_new(&L, &CFG);
    uv_run(&L, UV_RUN_NOWAIT);
    uv_walk(&L, h1s_walk_close, NULL);   /* the server's side of every connection */
    uv_close((uv_handle_t *)&S.lst, NULL);
    uv_run(&L, UV_RUN_DEFAULT);
}

/* One non-stream call, run to its end. */
static void h1_call(collect *c)
{
    collect_init(c);
    chat(c, "hello", false);
    run_until_done(c);
}

static void test_h1_keepalive(void **st)
{
    (void)st;
    h1s_start(H1M_KEEP, "127.0.0.1");
    for (int i = 0; i < 3; i++) {
        collect c;
        h1_call(&c);
        if (c.r.error != UPSTREAM_OK) fail_msg("call %d: %s", i, c.message);
        assert_int_equal(c.r.input_tokens, 5);
        collect_free(&c);
    }
    assert_int_equal(S.requests, 3);
    assert_int_equal(S.accepted, 1);   /* one connection, kept */
    h1s_stop();
}

static void test_h1_hostname_and_server_close(void **st)
{
    (void)st;
    /* A name (through the resolver), and a server that closes after each
     * answer: every call opens a new connection, none fails. */
    h1s_start(H1M_CLOSE_EACH, "localhost");
    for (int i = 0; i < 3; i++) {
        collect c;
        h1_call(&c);
        if (c.r.error != UPSTREAM_OK) fail_msg("call %d: %s", i, c.message);
        collect_free(&c);
        test_spin(&L, 20);   /* the close reaches the client while it is idle */
    }
    assert_int_equal(S.requests, 3);
    assert_int_equal(S.accepted, 3);
    h1s_stop();
}

static void test_h1_stale_connection_retried_once(void **st)
{
    (void)st;
    /* The second request on a kept connection is dropped unanswered (the
     * server closed it as the request came): sent again on a new one. */
    h1s_start(H1M_DROP_SECOND, "127.0.0.1");
    collect a, b;
    h1_call(&a);
    assert_int_equal(a.r.error, UPSTREAM_OK);
    h1_call(&b);
    if (b.r.error != UPSTREAM_OK) fail_msg("retry: %s", b.message);
    assert_int_equal(S.accepted, 2);
    assert_int_equal(S.requests, 3);
    collect_free(&a);
    collect_free(&b);
    h1s_stop();

    /* On a fresh connection the same is an error, and not retried. */
    h1s_start(H1M_DROP_ALL, "127.0.0.1");
    collect c;
    h1_call(&c);
    assert_int_equal(c.r.error, UPSTREAM_CONNECT);
    assert_int_equal(c.r.status, 0);
    assert_non_null(strstr(c.message, "without answering"));
    assert_int_equal(S.requests, 1);
    collect_free(&c);
    h1s_stop();
}

static void test_h1_max_connections_queue(void **st)
{
    (void)st;
    h1s_start(H1M_KEEP, "127.0.0.1");
    P.max_connections = 1;
    collect c[4];
    for (int i = 0; i < 4; i++) {
        collect_init(&c[i]);
        chat(&c[i], "hello", false);
    }
    for (int i = 0; i < 4; i++) {
        run_until_done(&c[i]);
        if (c[i].r.error != UPSTREAM_OK) fail_msg("call %d: %s", i, c[i].message);
    }
    assert_int_equal(S.requests, 4);
    assert_int_equal(S.max_open, 1);   /* waited in turn on one connection */
    for (int i = 0; i < 4; i++) collect_free(&c[i]);
    h1s_stop();
}

static void test_h1_queued_timeout_and_cancel(void **st)
{
    (void)st;
    /* One connection, a server that never answers: the first call holds it
     * until its timeout, the second times out while waiting, the third is
     * cancelled while waiting. No callback after the cancel. */
    h1s_start(H1M_SILENT, "127.0.0.1");
    P.max_connections = 1;
    P.timeout_ms = 200;
    collect a, b, c;
    collect_init(&a);
    collect_init(&b);
    collect_init(&c);
    chat(&a, "hello", false);
    chat(&b, "hello", false);
    chat(&c, "hello", false);
    upstream_call_cancel(c.call);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.r.error, UPSTREAM_CANCELLED);
    run_until_done(&a);
    run_until_done(&b);
    assert_int_equal(a.r.error, UPSTREAM_TIMEOUT);
    assert_int_equal(b.r.error, UPSTREAM_TIMEOUT);
    assert_true(b.t_done - b.t0 < 1000000000ULL);
    assert_int_equal(c.done, 1);
    assert_int_equal(S.max_open, 1);
    collect_free(&a);
    collect_free(&b);
    collect_free(&c);
    h1s_stop();
}

static void test_h1_answer_forms(void **st)
{
    (void)st;
    /* Ended by the close (HTTP/1.0, no length), and after a 100 Continue:
     * one with a Content-Length too, which a 1xx cannot have a body for
     * (RFC 9112 6.3): the bytes after its head are the real answer, not
     * its body (found by fuzz_upstream_h1). */
    h1_mode ok_modes[] = { H1M_TILL_CLOSE, H1M_CONTINUE, H1M_CONTINUE_LEN };
    for (size_t i = 0; i < 3; i++) {
        h1s_start(ok_modes[i], "127.0.0.1");
        collect c;
        h1_call(&c);
        if (c.r.error != UPSTREAM_OK) fail_msg("mode %zu: %s", i, c.message);
        assert_int_equal(c.r.status, 200);
        assert_non_null(strstr(c.body.data, "\"content\":\"ok\""));
        collect_free(&c);
        h1s_stop();
    }
    /* A 204 ends with its head, whatever its Content-Length says: the
     * answer is whole at once (not waited on until the timeout). */
    h1s_start(H1M_NO_CONTENT, "127.0.0.1");
    collect nc;
    h1_call(&nc);
    assert_int_equal(nc.r.status, 204);
    assert_int_not_equal(nc.r.error, UPSTREAM_TIMEOUT);
    assert_true(nc.t_done - nc.t0 < 1000000000ULL);
    collect_free(&nc);
    h1s_stop();
    /* Headers past 64 KiB: refused, not buffered. */
    h1s_start(H1M_HUGE_HEAD, "127.0.0.1");
    collect h;
    h1_call(&h);
    assert_int_equal(h.r.error, UPSTREAM_TRUNCATED);
    assert_non_null(strstr(h.message, "64 KiB"));
    collect_free(&h);
    h1s_stop();
    /* Not HTTP at all: a connect-class failure (nothing was answered). */
    h1s_start(H1M_GARBAGE, "127.0.0.1");
    collect g;
    h1_call(&g);
    assert_int_equal(g.r.error, UPSTREAM_CONNECT);
    assert_int_equal(g.r.status, 0);
    collect_free(&g);
    h1s_stop();
    /* A status line without its code is not HTTP either: llhttp 8 reads
     * it as status 0, which was handed on as an answer of status 0 (found
     * by fuzz_upstream_h1). */
    h1s_start(H1M_NO_CODE, "127.0.0.1");
    h1_call(&g);
    assert_int_equal(g.r.error, UPSTREAM_CONNECT);
    assert_int_equal(g.r.status, 0);
    collect_free(&g);
    h1s_stop();
}

static void test_h1_extra_bytes_not_reused(void **st)
{
    (void)st;
    /* Bytes past a whole answer: the answer counts, the connection is not
     * used again (the next call gets a new one). */
    h1s_start(H1M_EXTRA, "127.0.0.1");
    collect a, b;
    h1_call(&a);
    assert_int_equal(a.r.error, UPSTREAM_OK);
    h1_call(&b);
    assert_int_equal(b.r.error, UPSTREAM_OK);
    assert_int_equal(S.accepted, 2);
    collect_free(&a);
    collect_free(&b);
    h1s_stop();
}

static void test_h1_large_body(void **st)
{
    (void)st;
    /* A body larger than the socket takes at once goes out through a queued
     * write, whole. */
    h1s_start(H1M_KEEP, "127.0.0.1");
    size_t n = 6u << 20;
    char *text = malloc(n + 1);
    memset(text, 'a', n);
    text[n] = '\0';
    size_t bl = n + 128;
    char *body = malloc(bl);
    int k = snprintf(body, bl, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", text);
    collect c;
    collect_init(&c);
    c.call = upstream_chat(U, &M, body, (size_t)k, false, &(upstream_opts){0}, &CB, &c);
    assert_non_null(c.call);
    assert_int_equal(test_run_until(&L, &c.done, 8000), 1);
    if (c.r.error != UPSTREAM_OK) fail_msg("%s", c.message);
    assert_true(S.last_body_len >= n);
    free(text);
    free(body);
    collect_free(&c);
    h1s_stop();
}

/* The same tests over libcurl. */
#define OVER_CURL(t) static void t##_curl(void **st) { USE_CURL = true; t(st); USE_CURL = false; }
OVER_CURL(test_openai_plain)
OVER_CURL(test_openai_no_usage_estimated)
OVER_CURL(test_openai_stream_awkward)
OVER_CURL(test_openai_stream_backpressure)
OVER_CURL(test_openai_stream_cancel_in_event)
OVER_CURL(test_openai_stream_truncated)
OVER_CURL(test_openai_stream_malformed_event)
OVER_CURL(test_openai_429)
OVER_CURL(test_openai_malformed_body)
OVER_CURL(test_openai_timeout)
OVER_CURL(test_openai_refused)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mock_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mock_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mock_tool_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mock_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mock_fault_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mock_backpressure_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_no_usage_estimated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_stream_awkward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_plain_stream_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_stream_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_stream_cancel_in_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_stream_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_stream_malformed_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_429, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_malformed_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misc, setup, teardown),
        cmocka_unit_test(test_reachable_failure_is_remembered),
        cmocka_unit_test_setup_teardown(test_h1_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h1_hostname_and_server_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h1_stale_connection_retried_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h1_max_connections_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h1_queued_timeout_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h1_answer_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h1_extra_bytes_not_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h1_large_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_plain_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_no_usage_estimated_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_stream_awkward_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_stream_backpressure_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_stream_cancel_in_event_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_stream_truncated_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_stream_malformed_event_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_429_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_malformed_body_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_timeout_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_refused_curl, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
