/* test_anthropic_translate.c — OpenAI ⇄ Anthropic translation, both ways:
 * requests (system, alternation, tool calls and results, tools,
 * tool_choice, max_tokens default, sampling), whole responses (text,
 * tool_use, stop reasons, usage, error objects) and a recorded Anthropic
 * event stream → the OpenAI chunks, with input_json_delta split in pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/providers/anthropic_translate.h"

static cJSON *req(const char *openai, uint32_t def_max, bool stream)
{
    const char *err = NULL;
    size_t n = 0;
    char *s = anthropic_request_from_openai(openai, strlen(openai), def_max, stream, &n, &err);
    if (!s) fail_msg("translation failed: %s", err);
    assert_int_equal(n, strlen(s));
    cJSON *j = cJSON_Parse(s);
    free(s);
    assert_non_null(j);
    return j;
}

static const char *req_err(const char *openai)
{
    const char *err = NULL;
    size_t n = 0;
    char *s = anthropic_request_from_openai(openai, strlen(openai), 100, false, &n, &err);
    assert_null(s);
    assert_non_null(err);
    return err;
}

static char *print(const cJSON *j)
{
    static char out[4096];
    char *s = cJSON_PrintUnformatted(j);
    snprintf(out, sizeof(out), "%s", s ? s : "(null)");
    free(s);
    return out;
}

static void test_request_system_and_merge(void **st)
{
    (void)st;
    cJSON *j = req("{\"model\":\"claude-x\",\"messages\":["
                   "{\"role\":\"system\",\"content\":\"be brief\"},"
                   "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"no lies\"}]},"
                   "{\"role\":\"user\",\"content\":\"one\"},"
                   "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"two\"}]},"
                   "{\"role\":\"assistant\",\"content\":\"ok\"},"
                   "{\"role\":\"assistant\",\"content\":\"\"},"
                   "{\"role\":\"assistant\",\"content\":\"more\"},"
                   "{\"role\":\"user\",\"content\":\"three\"}],"
                   "\"temperature\":1.7,\"top_p\":0.5,\"stop\":\"END\",\"user\":\"u-1\"}",
                   321, true);
    assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "claude-x");
    assert_string_equal(cJSON_GetObjectItem(j, "system")->valuestring, "be brief\n\nno lies");
    assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 321);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
    assert_true(cJSON_GetObjectItem(j, "temperature")->valuedouble == 1.0);   /* clamped */
    assert_true(cJSON_GetObjectItem(j, "top_p")->valuedouble == 0.5);
    assert_string_equal(print(cJSON_GetObjectItem(j, "stop_sequences")), "[\"END\"]");
    assert_string_equal(print(cJSON_GetObjectItem(j, "metadata")), "{\"user_id\":\"u-1\"}");
    assert_string_equal(print(cJSON_GetObjectItem(j, "messages")),
                        "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"one\"},"
                        "{\"type\":\"text\",\"text\":\"two\"}]},"
                        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"},"
                        "{\"type\":\"text\",\"text\":\"more\"}]},"
                        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"three\"}]}]");
    cJSON_Delete(j);
}

static void test_request_tools(void **st)
{
    (void)st;
    cJSON *j = req("{\"model\":\"m\",\"max_completion_tokens\":50,\"max_tokens\":9,\"messages\":["
                   "{\"role\":\"user\",\"content\":\"weather?\"},"
                   "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                   "{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"wx\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},"
                   "{\"id\":\"t2\",\"type\":\"function\",\"function\":{\"name\":\"clock\",\"arguments\":\"\"}}]},"
                   "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"-3C\"},"
                   "{\"role\":\"tool\",\"tool_call_id\":\"t2\",\"content\":[{\"type\":\"text\",\"text\":\"noon\"}]},"
                   "{\"role\":\"user\",\"content\":\"thanks\"}],"
                   "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"wx\",\"description\":\"weather\","
                   "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}},"
                   "{\"type\":\"function\",\"function\":{\"name\":\"clock\"}}],"
                   "\"tool_choice\":\"required\",\"parallel_tool_calls\":false}",
                   100, false);
    assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 50);
    assert_null(cJSON_GetObjectItem(j, "stream"));
    assert_null(cJSON_GetObjectItem(j, "system"));
    assert_string_equal(print(cJSON_GetObjectItem(j, "messages")),
                        "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather?\"}]},"
                        "{\"role\":\"assistant\",\"content\":["
                        "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"wx\",\"input\":{\"city\":\"Oslo\"}},"
                        "{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"clock\",\"input\":{}}]},"
                        "{\"role\":\"user\",\"content\":["
                        "{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"-3C\"},"
                        "{\"type\":\"tool_result\",\"tool_use_id\":\"t2\",\"content\":\"noon\"},"
                        "{\"type\":\"text\",\"text\":\"thanks\"}]}]");
    assert_string_equal(print(cJSON_GetObjectItem(j, "tools")),
                        "[{\"name\":\"wx\",\"description\":\"weather\",\"input_schema\":{\"type\":\"object\","
                        "\"properties\":{\"city\":{\"type\":\"string\"}}}},"
                        "{\"name\":\"clock\",\"input_schema\":{\"type\":\"object\"}}]");
    assert_string_equal(print(cJSON_GetObjectItem(j, "tool_choice")),
                        "{\"type\":\"any\",\"disable_parallel_tool_use\":true}");
    cJSON_Delete(j);
}

static void test_request_tool_choice(void **st)
{
    (void)st;
    static const struct { const char *in, *out; } cases[] = {
        { "\"auto\"", "{\"type\":\"auto\"}" },
        { "\"none\"", "{\"type\":\"none\"}" },
        { "\"required\"", "{\"type\":\"any\"}" },
        { "{\"type\":\"function\",\"function\":{\"name\":\"wx\"}}", "{\"type\":\"tool\",\"name\":\"wx\"}" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                 "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"wx\"}}],\"tool_choice\":%s}",
                 cases[i].in);
        cJSON *j = req(body, 0, false);
        assert_string_equal(print(cJSON_GetObjectItem(j, "tool_choice")), cases[i].out);
        /* No max_tokens and no model default: 4096. */
        assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 4096);
        cJSON_Delete(j);
    }
    /* tool_choice without tools is dropped (Anthropic refuses it). */
    cJSON *j = req("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"auto\"}",
                   7, false);
    assert_null(cJSON_GetObjectItem(j, "tool_choice"));
    assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 7);
    cJSON_Delete(j);
    /* Arguments that are not a JSON object are kept, not dropped. */
    j = req("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
            "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{oops\"}}]}]}",
            7, false);
    assert_string_equal(print(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(
                            cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 1), "content"), 0), "input")),
                        "{\"arguments\":\"{oops\"}");
    cJSON_Delete(j);
    /* Images: data URL → base64 source, http URL → url source. */
    j = req("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
            "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}},"
            "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.png\"}}]}]}", 7, false);
    assert_string_equal(print(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 0), "content")),
                        "[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AAAA\"}},"
                        "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.png\"}}]");
    cJSON_Delete(j);
}

static void test_request_errors(void **st)
{
    (void)st;
    req_err("not json");
    req_err("{\"model\":\"m\"}");
    req_err("{\"model\":\"m\",\"messages\":[]}");
    req_err("{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}");
    req_err("{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}");
    req_err("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"only system\"}]}");
    req_err("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}");
    req_err("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"sometimes\",\"tools\":[]}");
    req_err("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}");
    req_err("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}");
    req_err("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"web\"}]}");
    req_err("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}");
}

static void test_response(void **st)
{
    (void)st;
    static const char text[] =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
        "\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\"},{\"type\":\"text\",\"text\":\"Hello \"},"
        "{\"type\":\"text\",\"text\":\"there\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
        "\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":3}}";
    anthropic_usage u;
    const char *err;
    int est;
    char *s = anthropic_response_to_openai(text, strlen(text), 1700000000, &u, &err, &est);
    assert_non_null(s);
    assert_string_equal(s,
                        "{\"id\":\"msg_1\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"claude-x\","
                        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello there\","
                        "\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                        "\"usage\":{\"prompt_tokens\":15,\"completion_tokens\":3,\"total_tokens\":18}}");
    assert_true(u.have);
    assert_int_equal(u.input_tokens, 15);
    assert_int_equal(u.output_tokens, 3);
    free(s);

    static const char tool[] =
        "{\"id\":\"msg_2\",\"type\":\"message\",\"model\":\"c\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_9\","
        "\"name\":\"wx\",\"input\":{\"city\":\"Oslo\",\"n\":2}}],\"stop_reason\":\"tool_use\","
        "\"usage\":{\"input_tokens\":4,\"output_tokens\":8}}";
    s = anthropic_response_to_openai(tool, strlen(tool), 1, &u, &err, &est);
    assert_non_null(s);
    cJSON *j = cJSON_Parse(s);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "tool_calls");
    cJSON *msg = cJSON_GetObjectItem(ch, "message");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(msg, "content")));
    assert_string_equal(print(cJSON_GetObjectItem(msg, "tool_calls")),
                        "[{\"id\":\"toolu_9\",\"type\":\"function\",\"function\":{\"name\":\"wx\","
                        "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\",\\\"n\\\":2}\"}}]");
    cJSON_Delete(j);
    free(s);

    static const struct { const char *stop, *finish; } reasons[] = {
        { "end_turn", "stop" }, { "stop_sequence", "stop" }, { "max_tokens", "length" },
        { "tool_use", "tool_calls" }, { "refusal", "content_filter" },
    };
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        char b[256];
        snprintf(b, sizeof(b), "{\"content\":[],\"stop_reason\":\"%s\"}", reasons[i].stop);
        s = anthropic_response_to_openai(b, strlen(b), 1, &u, &err, &est);
        assert_non_null(s);
        assert_false(u.have);
        char want[64];
        snprintf(want, sizeof(want), "\"finish_reason\":\"%s\"", reasons[i].finish);
        assert_non_null(strstr(s, want));
        free(s);
    }

    static const char e529[] = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
    assert_null(anthropic_response_to_openai(e529, strlen(e529), 1, &u, &err, &est));
    assert_int_equal(est, 503);
    assert_null(anthropic_response_to_openai("{\"type\":\"message\"}", 18, 1, &u, &err, &est));
    assert_int_equal(est, 0);
    assert_non_null(err);
    assert_null(anthropic_response_to_openai("[1]", 3, 1, &u, &err, &est));
    static const char badtool[] = "{\"content\":[{\"type\":\"tool_use\",\"id\":\"x\",\"name\":\"y\",\"input\":[1]}]}";
    assert_null(anthropic_response_to_openai(badtool, strlen(badtool), 1, &u, &err, &est));
    assert_int_equal(anthropic_error_status("rate_limit_error"), 429);
    assert_int_equal(anthropic_error_status("invalid_request_error"), 400);
    assert_int_equal(anthropic_error_status("something_new"), 500);
}

/* ---- stream ---- */

typedef struct chunks { cJSON *all; } chunks;

static void collect_chunk(void *ctx, const char *json, size_t len)
{
    chunks *c = ctx;
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (!j) fail_msg("chunk is not JSON: %.*s", (int)len, json);
    cJSON_AddItemToArray(c->all, j);
}

static const char *const RECORDED[] = {
    ("{\"type\":\"message_start\",\"message\":{\"id\":\"msg_s\",\"type\":\"message\",\"role\":\"assistant\","
     "\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}"),
    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
    "{\"type\": \"ping\"}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me \"}}",
    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"check.\"}}",
    "{\"type\":\"content_block_stop\",\"index\":0}",
    "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_a\",\"name\":\"wx\",\"input\":{}}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"ci\"}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ty\\\": \\\"Os\"}}",
    "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"lo\\\"}\"}}",
    "{\"type\":\"content_block_stop\",\"index\":1}",
    "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_b\",\"name\":\"clock\",\"input\":{}}}",
    "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}",
    "{\"type\":\"content_block_stop\",\"index\":2}",
    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}",
    "{\"type\":\"message_stop\"}",
};

static void test_stream_recorded(void **st)
{
    (void)st;
    anthropic_stream s;
    anthropic_stream_init(&s, 1234);
    chunks c = { cJSON_CreateArray() };
    size_t n = sizeof(RECORDED) / sizeof(RECORDED[0]);
    for (size_t i = 0; i < n; i++) {
        anthropic_ev ev = anthropic_stream_event(&s, RECORDED[i], strlen(RECORDED[i]), collect_chunk, &c);
        assert_int_equal(ev, i == n - 1 ? ANTHROPIC_EV_DONE : ANTHROPIC_EV_OK);
    }
    /* After message_stop nothing more is emitted. */
    assert_int_equal(anthropic_stream_event(&s, RECORDED[3], strlen(RECORDED[3]), collect_chunk, &c),
                     ANTHROPIC_EV_DONE);
    static const char *const want_delta[] = {
        "{\"role\":\"assistant\",\"content\":\"\"}",
        "{\"content\":\"Let me \"}",
        "{\"content\":\"check.\"}",
        "{\"tool_calls\":[{\"index\":0,\"id\":\"toolu_a\",\"type\":\"function\",\"function\":{\"name\":\"wx\",\"arguments\":\"\"}}]}",
        "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"ci\"}}]}",
        "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ty\\\": \\\"Os\"}}]}",
        "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"lo\\\"}\"}}]}",
        "{\"tool_calls\":[{\"index\":1,\"id\":\"toolu_b\",\"type\":\"function\",\"function\":{\"name\":\"clock\",\"arguments\":\"\"}}]}",
        "{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{}\"}}]}",
        "{}",
    };
    size_t nw = sizeof(want_delta) / sizeof(want_delta[0]);
    assert_int_equal(cJSON_GetArraySize(c.all), nw + 1);
    for (size_t i = 0; i < nw; i++) {
        cJSON *ch = cJSON_GetArrayItem(c.all, (int)i);
        assert_string_equal(cJSON_GetObjectItem(ch, "id")->valuestring, "msg_s");
        assert_string_equal(cJSON_GetObjectItem(ch, "object")->valuestring, "chat.completion.chunk");
        assert_string_equal(cJSON_GetObjectItem(ch, "model")->valuestring, "claude-x");
        assert_int_equal(cJSON_GetObjectItem(ch, "created")->valueint, 1234);
        cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(ch, "choices"), 0);
        assert_string_equal(print(cJSON_GetObjectItem(c0, "delta")), want_delta[i]);
        cJSON *fr = cJSON_GetObjectItem(c0, "finish_reason");
        if (i == nw - 1) assert_string_equal(fr->valuestring, "tool_calls");
        else assert_true(cJSON_IsNull(fr));
    }
    cJSON *last = cJSON_GetArrayItem(c.all, (int)nw);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(last, "choices")), 0);
    assert_string_equal(print(cJSON_GetObjectItem(last, "usage")),
                        "{\"prompt_tokens\":25,\"completion_tokens\":42,\"total_tokens\":67}");
    assert_true(s.usage.have);
    assert_int_equal(s.usage.input_tokens, 25);
    assert_int_equal(s.usage.output_tokens, 42);
    /* The arguments fragments joined are the JSON the model wrote. */
    assert_int_equal(s.usage.out_bytes, strlen("Let me check.") + 2 + strlen("{\"city\": \"Oslo\"}") + 5 + 2);
    cJSON_Delete(c.all);
    anthropic_stream_free(&s);
}

static anthropic_ev feed(anthropic_stream *s, chunks *c, const char *ev)
{
    return anthropic_stream_event(s, ev, strlen(ev), collect_chunk, c);
}

static void test_stream_errors(void **st)
{
    (void)st;
    anthropic_stream s;
    chunks c = { cJSON_CreateArray() };

    /* error event, even before message_start */
    anthropic_stream_init(&s, 1);
    assert_int_equal(feed(&s, &c, "{\"type\":\"ping\"}"), ANTHROPIC_EV_OK);
    assert_int_equal(feed(&s, &c, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"),
                     ANTHROPIC_EV_ERROR);
    assert_int_equal(s.err_status, 503);
    assert_string_equal(s.err_message, "Overloaded");
    anthropic_stream_free(&s);

    const char *const bad[][2] = {
        { "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\"}}", NULL },   /* before start */
        { RECORDED[0], "not json" },
        { RECORDED[0], "{\"no\":\"type\"}" },
        { RECORDED[0], "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}" },
        { RECORDED[0], "{\"type\":\"content_block_start\",\"index\":-1,\"content_block\":{\"type\":\"text\"}}" },
        { RECORDED[0], "{\"type\":\"content_block_start\",\"index\":99999,\"content_block\":{\"type\":\"text\"}}" },
        { RECORDED[0], "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\"}}" },
        { RECORDED[0], RECORDED[0] },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        anthropic_stream_init(&s, 1);
        anthropic_ev ev = feed(&s, &c, bad[i][0]);
        if (bad[i][1]) {
            assert_int_equal(ev, ANTHROPIC_EV_OK);
            ev = feed(&s, &c, bad[i][1]);
        }
        if (ev != ANTHROPIC_EV_MALFORMED) fail_msg("case %zu: got %d", i, ev);
        assert_true(s.err_message[0] != '\0');
        anthropic_stream_free(&s);
    }
    /* A text block started twice, and a text delta on a tool block. */
    anthropic_stream_init(&s, 1);
    feed(&s, &c, RECORDED[0]);
    assert_int_equal(feed(&s, &c, RECORDED[1]), ANTHROPIC_EV_OK);
    assert_int_equal(feed(&s, &c, RECORDED[1]), ANTHROPIC_EV_MALFORMED);
    anthropic_stream_free(&s);
    anthropic_stream_init(&s, 1);
    feed(&s, &c, RECORDED[0]);
    assert_int_equal(feed(&s, &c, RECORDED[6]), ANTHROPIC_EV_OK);
    assert_int_equal(feed(&s, &c, "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}"),
                     ANTHROPIC_EV_MALFORMED);
    /* Unknown event and delta types are ignored (Anthropic may add them). */
    anthropic_stream_free(&s);
    anthropic_stream_init(&s, 1);
    feed(&s, &c, RECORDED[0]);
    assert_int_equal(feed(&s, &c, "{\"type\":\"something_new\"}"), ANTHROPIC_EV_OK);
    assert_int_equal(feed(&s, &c, RECORDED[1]), ANTHROPIC_EV_OK);
    assert_int_equal(feed(&s, &c, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"citations_delta\"}}"),
                     ANTHROPIC_EV_OK);
    /* message_stop without message_delta: a finish chunk "stop" and usage. */
    int before = cJSON_GetArraySize(c.all);
    assert_int_equal(feed(&s, &c, "{\"type\":\"message_stop\"}"), ANTHROPIC_EV_DONE);
    assert_int_equal(cJSON_GetArraySize(c.all), before + 2);
    cJSON *fin = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(c.all, before), "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(fin, "finish_reason")->valuestring, "stop");
    anthropic_stream_free(&s);
    cJSON_Delete(c.all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_system_and_merge),
        cmocka_unit_test(test_request_tools),
        cmocka_unit_test(test_request_tool_choice),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_stream_recorded),
        cmocka_unit_test(test_stream_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
