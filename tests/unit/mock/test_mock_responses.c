/* test_mock_responses.c — the mock engine's Responses face: a Responses
 * request rewritten as the chat one (so markers, tool results and token
 * counts are the same), previous_response_id refused (the mock keeps
 * nothing), the whole Response, and the stream's event sequence for a text
 * and a tool call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "mock/mock_engine.h"

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static void plan_for(mock_plan *p, arena *a, const char *body)
{
    buf b;
    buf_init(&b);
    const char *err = NULL;
    if (!mock_responses_request(body, strlen(body), &b, &err)) fail_msg("%s", err);
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
        "{\"model\":\"m\",\"max_output_tokens\":9,\"stream\":true,\"instructions\":\"sys\","
        "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}],"
        "\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"go\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"f\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"42\"}]}";
    assert_true(mock_responses_request(in, strlen(in), &b, &err));
    buf_append(&b, "", 1);
    assert_string_equal(b.data,
                        "{\"model\":\"m\",\"stream\":true,\"max_completion_tokens\":9,\"messages\":["
                        "{\"role\":\"system\",\"content\":\"sys\"},{\"role\":\"user\",\"content\":\"go\"},"
                        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
                        "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
                        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"42\"}],"
                        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]}");
    const char *prev = "{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":\"resp_1\"}";
    assert_false(mock_responses_request(prev, strlen(prev), &b, &err));
    assert_non_null(strstr(err, "previous_response_id"));
    assert_false(mock_responses_request("{\"model\":\"m\"}", 13, &b, &err));
    assert_false(mock_responses_request("nope", 4, &b, &err));
    buf_free(&b);
}

static void test_whole_response(void **st)
{
    (void)st;
    arena a;
    arena_init(&a, 1024);
    mock_plan p;
    plan_for(&p, &a, "{\"model\":\"m\",\"input\":\"hi [[tokens:3]]\"}");
    buf b;
    buf_init(&b);
    mock_render_responses_object(&p, &b);
    cJSON *r = cJSON_ParseWithLength(b.data, b.len);
    assert_non_null(r);
    assert_string_equal(get(r, "object")->valuestring, "response");
    assert_int_equal(strncmp(get(r, "id")->valuestring, "resp_", 5), 0);
    assert_string_equal(get(r, "status")->valuestring, "completed");
    const cJSON *item = cJSON_GetArrayItem(get(r, "output"), 0);
    assert_string_equal(get(item, "type")->valuestring, "message");
    assert_string_equal(get(cJSON_GetArrayItem(get(item, "content"), 0), "text")->valuestring, "alpha bravo charlie");
    assert_int_equal(get(get(r, "usage"), "output_tokens")->valueint, 3);
    assert_int_equal(get(get(r, "usage"), "input_tokens")->valueint, (int)p.prompt_tokens);
    cJSON_Delete(r);
    /* cut by max_output_tokens: incomplete */
    b.len = 0;
    plan_for(&p, &a, "{\"model\":\"m\",\"input\":\"hi [[tokens:9]]\",\"max_output_tokens\":2}");
    mock_render_responses_object(&p, &b);
    r = cJSON_ParseWithLength(b.data, b.len);
    assert_string_equal(get(r, "status")->valuestring, "incomplete");
    assert_string_equal(get(get(r, "incomplete_details"), "reason")->valuestring, "max_output_tokens");
    cJSON_Delete(r);
    buf_free(&b);
    arena_free(&a);
}

/* The events of a stream, in order: their types, and the text or arguments
 * their deltas add up to. */
static void check_stream(const char *body, const char *const *head, size_t n_head, const char *delta_type,
                         const char *joined)
{
    arena a;
    arena_init(&a, 1024);
    mock_plan p;
    plan_for(&p, &a, body);
    size_t n = mock_responses_event_count(&p);
    buf all, ev;
    buf_init(&all);
    buf_init(&ev);
    for (size_t i = 0; i < n; i++) {
        ev.len = 0;
        mock_render_responses_event(&p, i, &ev);
        buf_append(&ev, "", 1);
        assert_int_equal(strncmp(ev.data, "event: ", 7), 0);
        const char *data = strstr(ev.data, "\ndata: ") + 7;
        cJSON *j = cJSON_ParseWithLength(data, strlen(data) - 2);
        assert_non_null(j);
        assert_int_equal(get(j, "sequence_number")->valueint, (int)i);
        const char *type = get(j, "type")->valuestring;
        if (i < n_head) assert_string_equal(type, head[i]);
        if (strcmp(type, delta_type) == 0) buf_puts(&all, get(j, "delta")->valuestring);
        if (i == n - 1) {
            assert_string_equal(type, "response.completed");
            assert_int_equal(get(get(get(j, "response"), "usage"), "output_tokens")->valueint,
                             (int)p.completion_tokens);
        }
        cJSON_Delete(j);
    }
    buf_append(&all, "", 1);
    assert_string_equal(all.data, joined);
    buf_free(&all);
    buf_free(&ev);
    arena_free(&a);
}

static void test_stream_events(void **st)
{
    (void)st;
    const char *text_head[] = {"response.created", "response.in_progress", "response.output_item.added",
                               "response.content_part.added", "response.output_text.delta"};
    check_stream("{\"model\":\"m\",\"input\":\"hi [[tokens:4]]\",\"stream\":true}", text_head, 5,
                 "response.output_text.delta", "alpha bravo charlie delta");
    const char *tool_head[] = {"response.created", "response.in_progress", "response.output_item.added",
                               "response.function_call_arguments.delta"};
    check_stream("{\"model\":\"m\",\"input\":\"[[tool:f {\\\"city\\\":\\\"Paris\\\"}]]\",\"stream\":true,"
                 "\"tools\":[{\"type\":\"function\",\"name\":\"f\"}]}",
                 tool_head, 4, "response.function_call_arguments.delta", "{\"city\":\"Paris\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_rewrite),
        cmocka_unit_test(test_whole_response),
        cmocka_unit_test(test_stream_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
