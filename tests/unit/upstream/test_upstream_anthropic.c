/* test_upstream_anthropic.c — provider `anthropic` end to end against a
 * real mock-llm server (its POST /v1/messages) started in-process on
 * 127.0.0.1 port 0: plain, streamed, a tool call round trip, 429, 529
 * (reported as 503), a truncated stream, malformed bodies and streams,
 * backpressure and cancel from inside on_event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "mock/mock_server.h"
#include "test_util.h"
#include "upstream/upstream.h"
#include "util/buf.h"
#include "util/timeutil.h"

static uv_loop_t      L;
static provider_cfg   P;
static model_cfg      M;
static brigade_config CFG;
static char           URL[64];
static mock_server   *S;
static upstream      *U;

typedef struct collect {
    int             done, n_events, pause_at, cancel_at;
    upstream_call  *call;
    upstream_result r;
    char            message[256];
    buf             body, content, args;
    char            tool_id[64], tool_name[64], finish[32];
    int64_t         usage_prompt, usage_completion;
    uv_timer_t      resume;
} collect;

static void on_resume(uv_timer_t *t) { upstream_call_resume(((collect *)t->data)->call); }

static bool on_event(upstream_call *call, const char *json, size_t len, void *arg)
{
    collect *c = arg;
    c->n_events++;
    cJSON *j = cJSON_ParseWithLength(json, len);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring, "chat.completion.chunk");
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    const cJSON *d = cJSON_GetObjectItem(ch, "delta");
    const cJSON *t = cJSON_GetObjectItem(d, "content");
    if (cJSON_IsString(t)) buf_puts(&c->content, t->valuestring);
    const cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "tool_calls"), 0);
    const cJSON *id = cJSON_GetObjectItem(tc, "id");
    const cJSON *fn = cJSON_GetObjectItem(tc, "function");
    if (cJSON_IsString(id)) snprintf(c->tool_id, sizeof(c->tool_id), "%s", id->valuestring);
    if (cJSON_IsString(cJSON_GetObjectItem(fn, "name")))
        snprintf(c->tool_name, sizeof(c->tool_name), "%s", cJSON_GetObjectItem(fn, "name")->valuestring);
    if (cJSON_IsString(cJSON_GetObjectItem(fn, "arguments")))
        buf_puts(&c->args, cJSON_GetObjectItem(fn, "arguments")->valuestring);
    const cJSON *fr = cJSON_GetObjectItem(ch, "finish_reason");
    if (cJSON_IsString(fr)) snprintf(c->finish, sizeof(c->finish), "%s", fr->valuestring);
    const cJSON *u = cJSON_GetObjectItem(j, "usage");
    if (u) {
        c->usage_prompt = cJSON_GetObjectItem(u, "prompt_tokens")->valueint;
        c->usage_completion = cJSON_GetObjectItem(u, "completion_tokens")->valueint;
    }
    cJSON_Delete(j);
    if (c->n_events == c->cancel_at) {
        upstream_call_cancel(call);
        return true;
    }
    if (c->n_events == c->pause_at) {
        uv_timer_start(&c->resume, on_resume, 20, 0);
        return false;
    }
    return true;
}

static void on_done(upstream_call *call, const upstream_result *r, void *arg)
{
    (void)call;
    collect *c = arg;
    c->done++;
    c->r = *r;
    if (r->body) buf_append(&c->body, r->body, r->body_len);
    if (r->message) snprintf(c->message, sizeof(c->message), "%s", r->message);
    c->r.body = NULL;
    c->r.message = NULL;
}

static void timer_closed(uv_handle_t *h) { *(bool *)h->data = true; }

static void collect_free(collect *c)
{
    buf_free(&c->body);
    buf_free(&c->content);
    buf_free(&c->args);
    bool closed = false;
    c->resume.data = &closed;
    uv_close((uv_handle_t *)&c->resume, timer_closed);
    while (!closed) uv_run(&L, UV_RUN_ONCE);
}

static void run_body(collect *c, const char *body, bool stream)
{
    static const upstream_callbacks cb = { on_event, on_done, NULL };
    memset(c, 0, sizeof(*c));
    buf_init(&c->body);
    buf_init(&c->content);
    buf_init(&c->args);
    uv_timer_init(&L, &c->resume);
    c->resume.data = c;
    c->call = upstream_chat(U, &M, body, strlen(body), stream, &(upstream_opts){.request_id = "rid-a"}, &cb, c);
    assert_non_null(c->call);
    assert_int_equal(c->done, 0);
    assert_int_equal(test_run_until(&L, &c->done, 4000), 1);
}

static void run_chat(collect *c, const char *text, bool stream)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"model\":\"claude-mock\",\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},"
             "{\"role\":\"user\",\"content\":\"%s\"}]}", text);
    run_body(c, body, stream);
}

static int setup(void **st)
{
    (void)st;
    mock_server_opts o = { .host = "127.0.0.1", .port = 0, .threads = 1, .stream_chunks = 0 };
    char err[128];
    S = mock_server_start(&o, err, sizeof(err));
    if (!S) fail_msg("mock server: %s", err);
    snprintf(URL, sizeof(URL), "http://127.0.0.1:%d/v1", mock_server_port(S));
    memset(&P, 0, sizeof(P));
    P.name = "claude";
    P.kind = PROVIDER_ANTHROPIC;
    P.base_url = URL;
    P.api_key = "sk-ant-test";
    P.timeout_ms = 3000;
    P.connect_timeout_ms = 1000;
    P.max_connections = 2;
    M.name = "claude-mock";
    M.provider = &P;
    M.max_output_tokens = 1000;
    uv_loop_init(&L);
    U = upstream_new(&L, &CFG);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    upstream_free(U);
    uv_run(&L, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&L), 0);
    mock_server_stop(S);
    return 0;
}

/* Prompt tokens as the mock counts them: system "sys" (3+1) + user text. */
static int64_t prompt_tokens(const char *text) { return 3 + 1 + 3 + (int64_t)((strlen(text) + 3) / 4); }

static void test_plain_and_stream(void **st)
{
    (void)st;
    collect c;
    run_chat(&c, "hi [[tokens:4]]", false);
    if (c.r.error != UPSTREAM_OK) fail_msg("%s: %s %s", upstream_error_name(c.r.error), c.message, c.body.data);
    assert_int_equal(c.r.status, 200);
    assert_int_equal(c.r.output_tokens, 4);
    assert_int_equal(c.r.input_tokens, prompt_tokens("hi [[tokens:4]]"));
    assert_false(c.r.usage_estimated);
    cJSON *j = cJSON_ParseWithLength(c.body.data, c.body.len);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring, "chat.completion");
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "message"), "content")->valuestring,
                        "alpha bravo charlie delta");
    assert_string_equal(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "stop");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "completion_tokens")->valueint, 4);
    cJSON_Delete(j);
    collect_free(&c);

    run_chat(&c, "hi [[tokens:6]]", true);
    if (c.r.error != UPSTREAM_OK) fail_msg("%s: %s", upstream_error_name(c.r.error), c.message);
    /* role + 6 content + finish + usage */
    assert_int_equal(c.n_events, 1 + 6 + 1 + 1);
    assert_string_equal(c.content.data, "alpha bravo charlie delta echo foxtrot");
    assert_string_equal(c.finish, "stop");
    assert_int_equal(c.r.output_tokens, 6);
    assert_int_equal(c.usage_completion, 6);
    assert_int_equal(c.usage_prompt, prompt_tokens("hi [[tokens:6]]"));
    assert_int_equal(c.r.input_tokens, c.usage_prompt);
    collect_free(&c);

    /* max_tokens from the request: the answer is cut, finish "length". */
    run_body(&c, "{\"model\":\"claude-mock\",\"max_tokens\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", true);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    assert_string_equal(c.finish, "length");
    assert_int_equal(c.r.output_tokens, 3);
    collect_free(&c);
}

static void test_tool_round_trip(void **st)
{
    (void)st;
    collect c;
    run_chat(&c, "[[tool:lookup {\\\"q\\\":\\\"kiwi\\\",\\\"n\\\":3}]]", true);
    if (c.r.error != UPSTREAM_OK) fail_msg("%s: %s", upstream_error_name(c.r.error), c.message);
    assert_string_equal(c.tool_name, "lookup");
    assert_true(strncmp(c.tool_id, "toolu_", 6) == 0);
    assert_string_equal(c.args.data, "{\"q\":\"kiwi\",\"n\":3}");
    assert_string_equal(c.finish, "tool_calls");
    char id[64];
    snprintf(id, sizeof(id), "%s", c.tool_id);
    collect_free(&c);

    /* Send the result back the OpenAI way; the provider makes it a
     * tool_result and the mock quotes it. */
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"model\":\"claude-mock\",\"messages\":["
             "{\"role\":\"user\",\"content\":\"[[tool:lookup {\\\"q\\\":\\\"kiwi\\\",\\\"n\\\":3}]]\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\","
             "\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":\\\"kiwi\\\",\\\"n\\\":3}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"%s\",\"content\":\"kiwi is a fruit\"}],"
             "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"parameters\":{\"type\":\"object\"}}}]}",
             id, id);
    run_body(&c, body, false);
    if (c.r.error != UPSTREAM_OK) fail_msg("%s: %s %s", upstream_error_name(c.r.error), c.message, c.body.data);
    cJSON *j = cJSON_ParseWithLength(c.body.data, c.body.len);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "message"), "content")->valuestring,
                        "Tool lookup returned: kiwi is a fruit");
    cJSON_Delete(j);
    collect_free(&c);

    /* Non-stream tool call. */
    run_chat(&c, "[[tool:calc]]", false);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    assert_non_null(strstr(c.body.data, "\"finish_reason\":\"tool_calls\""));
    assert_non_null(strstr(c.body.data, "\"arguments\":\"{}\""));
    collect_free(&c);
}

static void test_faults(void **st)
{
    (void)st;
    collect c;
    run_chat(&c, "[[fault:rate_limit]]", false);
    assert_int_equal(c.r.error, UPSTREAM_HTTP_STATUS);
    assert_int_equal(c.r.status, 429);
    assert_int_equal(c.r.retry_after_s, 1);
    assert_non_null(strstr(c.body.data, "\"rate_limit_error\""));
    collect_free(&c);

    run_chat(&c, "[[fault:overloaded]]", true);
    assert_int_equal(c.r.error, UPSTREAM_HTTP_STATUS);
    assert_int_equal(c.r.status, 503);   /* 529 is treated as 503 */
    assert_non_null(strstr(c.body.data, "overloaded_error"));
    collect_free(&c);

    run_chat(&c, "[[fault:server_error:1]] once", false);
    assert_int_equal(c.r.status, 500);
    collect_free(&c);
    run_chat(&c, "[[fault:server_error:1]] once", false);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    collect_free(&c);

    run_chat(&c, "[[fault:truncate]] [[tokens:8]]", true);
    assert_int_equal(c.r.error, UPSTREAM_TRUNCATED);
    assert_true(c.n_events > 0 && c.n_events < 8);
    collect_free(&c);

    run_chat(&c, "[[fault:malformed]]", false);
    assert_int_equal(c.r.error, UPSTREAM_MALFORMED);
    collect_free(&c);
    run_chat(&c, "[[fault:malformed]]", true);
    assert_int_equal(c.r.error, UPSTREAM_MALFORMED);
    /* message_start's role chunk is held back until content comes (so a
     * failure right after it can still be retried): the caller saw nothing. */
    assert_int_equal(c.n_events, 0);
    collect_free(&c);

    run_chat(&c, "[[fault:nope]]", false);
    assert_int_equal(c.r.error, UPSTREAM_HTTP_STATUS);
    assert_int_equal(c.r.status, 400);
    collect_free(&c);

    /* A request that cannot be put in Anthropic's form does not start. */
    static const upstream_callbacks cb = { on_event, on_done, NULL };
    assert_null(upstream_chat(U, &M, "{\"model\":\"x\",\"messages\":[]}", 28, false, NULL, &cb, &c));

    mock_stats *ms = mock_server_stats(S);
    assert_int_equal(atomic_load(&ms->faults[MOCK_FAULT_OVERLOADED]), 1);
}

static void test_backpressure_and_cancel(void **st)
{
    (void)st;
    collect c;
    memset(&c, 0, sizeof(c));
    /* pause_at needs to be set before the call starts: use run_body's
     * pieces by hand. */
    static const upstream_callbacks cb = { on_event, on_done, NULL };
    const char *body = "{\"model\":\"claude-mock\",\"messages\":[{\"role\":\"user\",\"content\":\"[[tokens:5]]\"}]}";
    buf_init(&c.body);
    buf_init(&c.content);
    buf_init(&c.args);
    uv_timer_init(&L, &c.resume);
    c.resume.data = &c;
    c.pause_at = 2;
    uint64_t t0 = time_mono_ns();
    c.call = upstream_chat(U, &M, body, strlen(body), true, NULL, &cb, &c);
    while (!c.done) uv_run(&L, UV_RUN_ONCE);
    assert_int_equal(c.r.error, UPSTREAM_OK);
    assert_int_equal(c.n_events, 8);
    assert_string_equal(c.content.data, "alpha bravo charlie delta echo");
    assert_true(time_mono_ns() - t0 >= 15000000ULL);
    collect_free(&c);

    memset(&c, 0, sizeof(c));
    buf_init(&c.body);
    buf_init(&c.content);
    buf_init(&c.args);
    uv_timer_init(&L, &c.resume);
    c.cancel_at = 3;
    c.call = upstream_chat(U, &M, body, strlen(body), true, NULL, &cb, &c);
    while (!c.done) uv_run(&L, UV_RUN_ONCE);
    assert_int_equal(c.r.error, UPSTREAM_CANCELLED);
    assert_int_equal(c.n_events, 3);
    for (int i = 0; i < 5; i++) uv_run(&L, UV_RUN_NOWAIT);
    assert_int_equal(c.done, 1);
    collect_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_and_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_and_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
