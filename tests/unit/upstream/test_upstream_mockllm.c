/* test_upstream_mockllm.c — provider `openai` against a real mock-llm
 * server (src/mock/mock_server.c on the http layer) started in-process on
 * 127.0.0.1 port 0: plain, streamed, tool call, injected faults through the
 * x-mock-markers, and the /mock/stats counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "mock/mock_server.h"
#include "upstream/upstream.h"
#include "util/buf.h"

static uv_loop_t      L;
static provider_cfg   P;
static model_cfg      M;
static brigade_config CFG;
static char           URL[64];

typedef struct collect {
    int done, n_events;
    upstream_result r;
    buf body, content;
} collect;

static bool on_event(upstream_call *call, const char *json, size_t len, void *arg)
{
    (void)call;
    collect *c = arg;
    c->n_events++;
    cJSON *j = cJSON_ParseWithLength(json, len);
    assert_non_null(j);
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "delta"), "content");
    if (cJSON_IsString(t)) buf_puts(&c->content, t->valuestring);
    cJSON_Delete(j);
    return true;
}

static void on_done(upstream_call *call, const upstream_result *r, void *arg)
{
    (void)call;
    collect *c = arg;
    c->done++;
    c->r = *r;
    if (r->body) buf_append(&c->body, r->body, r->body_len);
    c->r.body = NULL;
    c->r.message = NULL;
}

static void run_chat(upstream *u, collect *c, const char *text, bool stream)
{
    static const upstream_callbacks cb = { on_event, on_done, NULL };
    memset(c, 0, sizeof(*c));
    buf_init(&c->body);
    buf_init(&c->content);
    char body[512];
    snprintf(body, sizeof(body), "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", text);
    assert_non_null(upstream_chat(u, &M, body, strlen(body), stream, &(upstream_opts){.request_id = "rid-1"}, &cb, c));
    while (!c->done) uv_run(&L, UV_RUN_ONCE);
}

static void collect_free(collect *c)
{
    buf_free(&c->body);
    buf_free(&c->content);
}

static void test_against_mock_llm(void **st)
{
    (void)st;
    mock_server_opts o = { .host = "127.0.0.1", .port = 0, .threads = 1, .stream_chunks = 0 };
    char err[128];
    mock_server *s = mock_server_start(&o, err, sizeof(err));
    if (!s) fail_msg("mock server: %s", err);
    snprintf(URL, sizeof(URL), "http://127.0.0.1:%d/v1", mock_server_port(s));
    P.name = "remote-mock";
    P.kind = PROVIDER_OPENAI;
    P.base_url = URL;
    P.timeout_ms = 3000;
    P.connect_timeout_ms = 1000;
    P.max_connections = 2;
    M.name = "mock-small";
    M.provider = &P;
    uv_loop_init(&L);
    upstream *u = upstream_new(&L, &CFG);

    collect c;
    run_chat(u, &c, "hi [[tokens:4]]", false);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    assert_int_equal(c.r.output_tokens, 4);
    assert_int_equal(c.r.input_tokens, 3 + 4);   /* 15 bytes → 4 tokens + 3 */
    assert_false(c.r.usage_estimated);
    collect_free(&c);

    run_chat(u, &c, "hi [[tokens:6]]", true);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    assert_int_equal(c.n_events, 1 + 6 + 1 + 1);
    assert_string_equal(c.content.data, "alpha bravo charlie delta echo foxtrot");
    assert_int_equal(c.r.output_tokens, 6);
    collect_free(&c);

    run_chat(u, &c, "[[tool:calc {\\\"x\\\":1}]]", true);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    assert_true(c.n_events >= 4);
    collect_free(&c);

    run_chat(u, &c, "[[fault:rate_limit]]", false);
    assert_int_equal(c.r.error, UPSTREAM_HTTP_STATUS);
    assert_int_equal(c.r.status, 429);
    assert_int_equal(c.r.retry_after_s, 1);
    collect_free(&c);

    run_chat(u, &c, "[[fault:server_error:1]] once", false);
    assert_int_equal(c.r.status, 500);
    collect_free(&c);
    run_chat(u, &c, "[[fault:server_error:1]] once", false);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    collect_free(&c);

    run_chat(u, &c, "[[fault:truncate]] [[tokens:8]]", true);
    assert_int_equal(c.r.error, UPSTREAM_TRUNCATED);
    collect_free(&c);

    run_chat(u, &c, "[[fault:malformed]]", false);
    assert_int_equal(c.r.error, UPSTREAM_MALFORMED);
    collect_free(&c);
    run_chat(u, &c, "[[fault:malformed]]", true);
    assert_int_equal(c.r.error, UPSTREAM_MALFORMED);
    collect_free(&c);

    run_chat(u, &c, "[[latency:30]] [[tokens:2]]", true);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    collect_free(&c);

    /* hang: our timeout fires, curl drops the connection, and the server
     * frees the parked request on abort (ASan would see a leak otherwise). */
    P.timeout_ms = 200;
    run_chat(u, &c, "[[fault:hang]]", true);
    assert_int_equal(c.r.error, UPSTREAM_TIMEOUT);
    collect_free(&c);

    mock_stats *ms = mock_server_stats(s);
    assert_int_equal(atomic_load(&ms->requests), 11);
    assert_int_equal(atomic_load(&ms->faults[MOCK_FAULT_HANG]), 1);
    assert_int_equal(atomic_load(&ms->faults[MOCK_FAULT_RATE_LIMIT]), 1);
    assert_int_equal(atomic_load(&ms->faults[MOCK_FAULT_SERVER_ERROR]), 1);

    upstream_free(u);
    uv_run(&L, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&L), 0);
    mock_server_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_against_mock_llm) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
