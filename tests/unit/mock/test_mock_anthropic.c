/* test_mock_anthropic.c — the mock engine's Anthropic face: an Anthropic
 * request rewritten as the OpenAI one (so markers, tool results and token
 * counts are the same), the whole `message`, the stream's event sequence,
 * faults and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "mock/mock_engine.h"

static void plan_for(mock_plan *p, arena *a, const char *anthropic_body)
{
    buf b;
    buf_init(&b);
    const char *err = NULL;
    if (!mock_anthropic_request(anthropic_body, strlen(anthropic_body), &b, &err)) fail_msg("%s", err);
    char *oa = arena_strndup(a, b.data, b.len);
    mock_plan_make(p, a, oa, b.len, NULL);
    buf_free(&b);
}

static void test_request_rewrite(void **st)
{
    (void)st;
    buf b;
    buf_init(&b);
    const char *err = NULL;
    const char *in =
        "{\"model\":\"c\",\"max_tokens\":9,\"stream\":true,\"system\":[{\"type\":\"text\",\"text\":\"sys\"}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"[[tool:f {\\\"a\\\":1}]]\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{\"a\":1}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
        "\"content\":[{\"type\":\"text\",\"text\":\"42\"}]}]}]}";
    assert_true(mock_anthropic_request(in, strlen(in), &b, &err));
    assert_string_equal(b.data,
                        "{\"model\":\"c\",\"stream\":true,\"max_tokens\":9,\"messages\":["
                        "{\"role\":\"system\",\"content\":\"sys\"},"
                        "{\"role\":\"user\",\"content\":\"[[tool:f {\\\"a\\\":1}]]\"},"
                        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"tool_calls\":"
                        "[{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
                        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"42\"}]}");
    b.len = 0;
    assert_false(mock_anthropic_request("{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 56, &b, &err));
    assert_non_null(strstr(err, "max_tokens"));
    assert_false(mock_anthropic_request("{\"model\":\"c\",\"max_tokens\":1,\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
                                        71, &b, &err));
    assert_false(mock_anthropic_request("nope", 4, &b, &err));
    buf_free(&b);

    /* The tool result is quoted, naming the tool. */
    arena a;
    arena_init(&a, 1024);
    mock_plan p;
    plan_for(&p, &a, in);
    assert_int_equal(p.status, 200);
    assert_int_equal(p.reply, MOCK_REPLY_TEXT);
    assert_string_equal(p.text, "Tool f returned: 42");
    /* sys (3+1) + marker 19 bytes (3+5) + "ok"+"f"+"{\"a\":1}" 10 bytes (3+3) + "42" (3+1) */
    assert_int_equal(p.prompt_tokens, 4 + 8 + 6 + 4);
    arena_free(&a);
}

static void test_message_and_stream(void **st)
{
    (void)st;
    arena a;
    arena_init(&a, 1024);
    mock_plan p;
    plan_for(&p, &a, "{\"model\":\"c\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"[[tokens:5]]\"}]}");
    buf b;
    buf_init(&b);
    mock_render_anthropic_message(&p, &b);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "message");
    assert_true(strncmp(cJSON_GetObjectItem(j, "id")->valuestring, "msg_", 4) == 0);
    assert_string_equal(cJSON_GetObjectItem(j, "stop_reason")->valuestring, "max_tokens");
    cJSON *blk = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "content"), 0);
    assert_string_equal(cJSON_GetObjectItem(blk, "text")->valuestring, "alpha bravo");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "output_tokens")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "input_tokens")->valueint, 3 + 3);
    cJSON_Delete(j);

    /* Stream: the event names in order, data lines valid JSON of that type. */
    static const char *const names[] = { "message_start", "content_block_start", "ping", "content_block_delta",
                                         "content_block_delta", "content_block_stop", "message_delta", "message_stop" };
    assert_int_equal(mock_anthropic_event_count(&p), 8);
    buf text;
    buf_init(&text);
    for (size_t i = 0; i < 8; i++) {
        b.len = 0;
        mock_render_anthropic_event(&p, i, &b);
        char want[64];
        snprintf(want, sizeof(want), "event: %s\ndata: ", names[i]);
        assert_true(strncmp(b.data, want, strlen(want)) == 0);
        assert_true(b.len > 2 && memcmp(b.data + b.len - 2, "\n\n", 2) == 0);
        cJSON *e = cJSON_ParseWithLength(b.data + strlen(want), b.len - strlen(want) - 2);
        assert_non_null(e);
        assert_string_equal(cJSON_GetObjectItem(e, "type")->valuestring, names[i]);
        cJSON *d = cJSON_GetObjectItem(e, "delta");
        if (cJSON_IsString(cJSON_GetObjectItem(d, "text"))) buf_puts(&text, cJSON_GetObjectItem(d, "text")->valuestring);
        if (i == 6) {
            assert_string_equal(cJSON_GetObjectItem(d, "stop_reason")->valuestring, "max_tokens");
            assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "usage"), "output_tokens")->valueint, 2);
        }
        cJSON_Delete(e);
    }
    assert_string_equal(text.data, "alpha bravo");
    buf_free(&text);

    /* Tool call: a tool_use block, its input streamed in fragments. */
    plan_for(&p, &a, "{\"model\":\"c\",\"max_tokens\":99,\"messages\":[{\"role\":\"user\",\"content\":\"[[tool:wx {\\\"city\\\":\\\"Oslo\\\"}]]\"}]}");
    b.len = 0;
    mock_render_anthropic_message(&p, &b);
    j = cJSON_Parse(b.data);
    blk = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "content"), 0);
    assert_string_equal(cJSON_GetObjectItem(blk, "type")->valuestring, "tool_use");
    assert_string_equal(cJSON_GetObjectItem(blk, "name")->valuestring, "wx");
    assert_true(strncmp(cJSON_GetObjectItem(blk, "id")->valuestring, "toolu_", 6) == 0);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(blk, "input"), "city")->valuestring, "Oslo");
    assert_string_equal(cJSON_GetObjectItem(j, "stop_reason")->valuestring, "tool_use");
    cJSON_Delete(j);
    buf args;
    buf_init(&args);
    size_t n = mock_anthropic_event_count(&p);
    assert_int_equal(n, 4 + 6);
    for (size_t i = 3; i < n - 3; i++) {
        b.len = 0;
        mock_render_anthropic_event(&p, i, &b);
        const char *d = strstr(b.data, "data: ") + 6;
        cJSON *e = cJSON_ParseWithLength(d, b.len - (size_t)(d - b.data));
        cJSON *pj = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "delta"), "partial_json");
        assert_true(cJSON_IsString(pj));
        buf_puts(&args, pj->valuestring);
        cJSON_Delete(e);
    }
    assert_string_equal(args.data, "{\"city\":\"Oslo\"}");
    buf_free(&args);

    /* Faults and errors in Anthropic's error form. */
    uint32_t ra;
    mock_plan f = p;
    f.fault = MOCK_FAULT_OVERLOADED;
    b.len = 0;
    assert_int_equal(mock_render_anthropic_fault_error(&f, &b, &ra), 529);
    assert_string_equal(b.data, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                                "\"message\":\"mock-llm: overloaded (injected fault)\"}}");
    f.fault = MOCK_FAULT_RATE_LIMIT;
    b.len = 0;
    assert_int_equal(mock_render_anthropic_fault_error(&f, &b, &ra), 429);
    assert_int_equal(ra, 1);
    f.fault = MOCK_FAULT_SERVER_ERROR;
    b.len = 0;
    assert_int_equal(mock_render_anthropic_fault_error(&f, &b, &ra), 500);
    assert_non_null(strstr(b.data, "api_error"));
    /* The OpenAI face answers overloaded with a 503. */
    f.fault = MOCK_FAULT_OVERLOADED;
    b.len = 0;
    assert_int_equal(mock_render_fault_error(&f, &b, &ra), 503);
    b.len = 0;
    mock_render_anthropic_malformed(&p, false, &b);
    buf_append(&b, "", 1);
    assert_null(cJSON_Parse(b.data));
    assert_int_equal(mock_fault_parse("overloaded", 10), MOCK_FAULT_OVERLOADED);
    buf_free(&b);
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_rewrite),
        cmocka_unit_test(test_message_and_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
