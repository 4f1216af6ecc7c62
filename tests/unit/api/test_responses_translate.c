/* test_responses_translate.c — the Responses API translation both ways:
 * a Responses request into the chat-completions request brigade governs
 * (what is translated, what is refused and with which param), and a chat
 * completion — whole or as chunks — back into a Response object and the
 * Responses event stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/chat_request.h"
#include "api/responses_translate.h"

static brigade_config cfg;

static int setup(void **state)
{
    (void)state;
    config_defaults(&cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    config_free(&cfg);
    return 0;
}

/* Parse a Responses body and translate it (history may be NULL): the chat
 * request as JSON, after checking chat_request_parse accepts it too. */
static cJSON *translate(const char *body, const char *history)
{
    responses_request r;
    chat_request_error e;
    if (!responses_request_parse(body, strlen(body), &cfg, &r, &e)) {
        print_error("refused: %s (%s)\n", e.message, e.param);
        fail();
    }
    cJSON *h = history ? cJSON_Parse(history) : NULL;
    size_t len = 0;
    char *chat = responses_chat_body(&r, h, &len, &e);
    cJSON_Delete(h);
    assert_non_null(chat);
    chat_request cr;
    assert_true(chat_request_parse(chat, len, &cfg, &cr, &e));
    chat_request_free(&cr);
    cJSON *out = cJSON_Parse(chat);
    free(chat);
    responses_request_free(&r);
    assert_non_null(out);
    return out;
}

static void expect_refused(const char *body, int status, const char *code, const char *param)
{
    responses_request r;
    chat_request_error e;
    bool ok = responses_request_parse(body, strlen(body), &cfg, &r, &e);
    responses_request_free(&r);
    if (ok) {
        print_error("accepted: %s\n", body);
        fail();
    }
    assert_int_equal(e.status, status);
    assert_string_equal(e.code, code);
    assert_string_equal(e.param, param ? param : "");
    assert_true(strlen(e.message) > 10);
}

static void assert_json_equal(const cJSON *got, const char *want)
{
    cJSON *w = cJSON_Parse(want);
    assert_non_null(w);
    if (!cJSON_Compare(got, w, true)) {
        char *g = cJSON_PrintUnformatted(got);
        print_error("got  %s\nwant %s\n", g, want);
        free(g);
        cJSON_Delete(w);
        fail();
    }
    cJSON_Delete(w);
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static void test_string_input_and_instructions(void **state)
{
    (void)state;
    cJSON *chat = translate("{\"model\":\"mock-small\",\"input\":\"hi\",\"instructions\":\"be brief\","
                            "\"metadata\":{\"k\":\"secret-v\"},\"store\":false}", NULL);
    assert_string_equal(get(chat, "model")->valuestring, "mock-small");
    assert_json_equal(get(chat, "messages"),
                      "[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hi\"}]");
    assert_null(get(chat, "stream"));
    char *text = cJSON_PrintUnformatted(chat);
    assert_null(strstr(text, "secret-v"));     /* metadata stays with brigade */
    free(text);
    cJSON_Delete(chat);
}

static void test_items_history_first(void **state)
{
    (void)state;
    const char *history = "[{\"type\":\"message\",\"role\":\"user\",\"content\":\"earlier\"},"
                          "{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\","
                          "\"content\":[{\"type\":\"output_text\",\"text\":\"a\",\"annotations\":[]},"
                          "{\"type\":\"output_text\",\"text\":\"b\",\"annotations\":[]}]},"
                          "{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},"
                          "{\"type\":\"function_call\",\"id\":\"fc_2\",\"call_id\":\"c2\",\"name\":\"g\",\"arguments\":\"{\\\"x\\\":1}\"}]";
    cJSON *chat = translate("{\"model\":\"mock-small\",\"previous_response_id\":\"resp_00\",\"input\":["
                            "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"one\"},"
                            "{\"type\":\"function_call_output\",\"call_id\":\"c2\",\"output\":[{\"type\":\"input_text\",\"text\":\"two\"}]},"
                            "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},"
                            "{\"role\":\"developer\",\"content\":\"rules\"},"
                            "{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"look\"},"
                            "{\"type\":\"input_image\",\"image_url\":\"https://example.invalid/a.png\",\"detail\":\"low\"}]}]}",
                            history);
    assert_json_equal(get(chat, "messages"),
        "[{\"role\":\"user\",\"content\":\"earlier\"},"
        "{\"role\":\"assistant\",\"content\":\"ab\",\"tool_calls\":["
        "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},"
        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"x\\\":1}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"one\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"two\"},"
        "{\"role\":\"system\",\"content\":\"rules\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.invalid/a.png\",\"detail\":\"low\"}}]}]");
    cJSON_Delete(chat);
}

static void test_tools_format_and_sampling(void **state)
{
    (void)state;
    cJSON *chat = translate(
        "{\"model\":\"mock-small\",\"input\":\"x\",\"stream\":true,"
        "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"description\":\"d\",\"parameters\":{\"type\":\"object\"},\"strict\":true}],"
        "\"tool_choice\":{\"type\":\"function\",\"name\":\"f\"},\"parallel_tool_calls\":false,"
        "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\",\"schema\":{\"type\":\"object\"},\"strict\":true}},"
        "\"max_output_tokens\":64,\"temperature\":0.5,\"top_p\":0.5,\"reasoning\":{\"effort\":\"high\"},"
        "\"include\":[],\"truncation\":\"disabled\",\"user\":\"u\"}", NULL);
    assert_json_equal(get(chat, "tools"),
        "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\",\"parameters\":{\"type\":\"object\"},\"strict\":true}}]");
    assert_json_equal(get(chat, "tool_choice"), "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}");
    assert_true(cJSON_IsFalse(get(chat, "parallel_tool_calls")));
    assert_json_equal(get(chat, "response_format"),
        "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\",\"schema\":{\"type\":\"object\"},\"strict\":true}}");
    assert_int_equal(get(chat, "max_completion_tokens")->valueint, 64);
    assert_string_equal(get(chat, "reasoning_effort")->valuestring, "high");
    assert_true(cJSON_IsTrue(get(chat, "stream")));
    assert_true(cJSON_IsTrue(get(get(chat, "stream_options"), "include_usage")));
    cJSON_Delete(chat);
    /* json_object, and no tools: no tool fields at all */
    chat = translate("{\"model\":\"mock-small\",\"input\":\"x\",\"parallel_tool_calls\":true,"
                     "\"text\":{\"format\":{\"type\":\"json_object\"}}}", NULL);
    assert_json_equal(get(chat, "response_format"), "{\"type\":\"json_object\"}");
    assert_null(get(chat, "parallel_tool_calls"));
    cJSON_Delete(chat);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}",
                   400, "unsupported_tool", "tools[0].type");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"f\"},"
                   "{\"type\":\"code_interpreter\"}]}", 400, "unsupported_tool", "tools[1].type");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"background\":true}", 400, "unsupported_parameter", "background");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"prompt\":{\"id\":\"p\"}}", 400, "unsupported_parameter", "prompt");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"frobnicate\":1}", 400, "unknown_parameter", "frobnicate");
    expect_refused("{\"model\":\"mock-small\",\"input\":[{\"type\":\"item_reference\",\"id\":\"x\"}]}",
                   400, "unsupported_item", "input[0]");
    expect_refused("{\"model\":\"mock-small\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
                   400, "unsupported_content", "input[0].content[0]");
    expect_refused("{\"model\":\"mock-small\",\"input\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
                   400, "invalid_value", "input[0]");
    expect_refused("{\"model\":\"mock-small\",\"input\":[{\"type\":\"function_call\",\"call_id\":\"c\"}]}",
                   400, "invalid_value", "input[0]");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"a\",\"input\":\"b\"}", 400, "duplicate_key", "input");
    expect_refused("{\"model\":\"mock-small\"}", 400, "missing_field", "input");
    expect_refused("{\"input\":\"x\"}", 400, "missing_field", "model");
    expect_refused("{\"model\":\"nope\",\"input\":\"x\"}", 404, "model_not_found", "model");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"max_output_tokens\":1.5}", 400, "invalid_value", "max_output_tokens");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"max_output_tokens\":99999999}", 400, "invalid_value", "max_output_tokens");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\"}}}",
                   400, "invalid_value", "text.format");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"tool_choice\":\"sometimes\"}", 400, "invalid_value", "tool_choice");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"previous_response_id\":\"\"}", 400, "invalid_value",
                   "previous_response_id");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"metadata\":{\"a\":1}}", 400, "invalid_value", "metadata");
    expect_refused("{\"model\":\"mock-small\",\"input\":\"x\",\"stream\":\"yes\"}", 400, "invalid_type", "stream");
    /* a body with one item too many */
    char *big = malloc(64 + (RESPONSES_MAX_ITEMS + 1) * 32);
    size_t n = (size_t)sprintf(big, "{\"model\":\"mock-small\",\"input\":[");
    for (int i = 0; i <= RESPONSES_MAX_ITEMS; i++)
        n += (size_t)sprintf(big + n, "%s{\"role\":\"user\",\"content\":\"\"}", i ? "," : "");
    sprintf(big + n, "]}");
    expect_refused(big, 400, "too_many_items", "input");
    free(big);
    /* null is absent */
    cJSON *chat = translate("{\"model\":\"mock-small\",\"input\":\"x\",\"background\":null,\"tools\":null,"
                            "\"temperature\":null,\"top_p\":null}", NULL);
    cJSON_Delete(chat);
}

static responses_request parse_ok(const char *body)
{
    responses_request r;
    chat_request_error e;
    assert_true(responses_request_parse(body, strlen(body), &cfg, &r, &e));
    return r;
}

static void test_completion_to_response(void **state)
{
    (void)state;
    responses_request r = parse_ok("{\"model\":\"mock-small\",\"input\":\"x\",\"metadata\":{\"k\":\"v\"}}");
    cJSON *resp = responses_object_new(&r, "resp_abc", 1700000000);
    assert_string_equal(get(resp, "status")->valuestring, "in_progress");
    const char *cc = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
                     "\"message\":{\"role\":\"assistant\",\"content\":\"hello\",\"tool_calls\":[{\"id\":\"call_9\","
                     "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
                     "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7}}";
    assert_true(responses_object_complete(resp, cc, strlen(cc)));
    assert_string_equal(get(resp, "status")->valuestring, "completed");
    assert_true(cJSON_IsNull(get(resp, "incomplete_details")));
    const cJSON *out = get(resp, "output");
    assert_int_equal(cJSON_GetArraySize(out), 2);
    const cJSON *msg = cJSON_GetArrayItem(out, 0), *call = cJSON_GetArrayItem(out, 1);
    assert_string_equal(get(msg, "type")->valuestring, "message");
    assert_int_equal(strncmp(get(msg, "id")->valuestring, "msg_", 4), 0);
    assert_string_equal(get(cJSON_GetArrayItem(get(msg, "content"), 0), "text")->valuestring, "hello");
    assert_string_equal(get(call, "type")->valuestring, "function_call");
    assert_int_equal(strncmp(get(call, "id")->valuestring, "fc_", 3), 0);
    assert_string_equal(get(call, "call_id")->valuestring, "call_9");
    assert_string_equal(get(call, "arguments")->valuestring, "{\"a\":1}");
    const cJSON *u = get(resp, "usage");
    assert_int_equal(get(u, "input_tokens")->valueint, 11);
    assert_int_equal(get(u, "output_tokens")->valueint, 7);
    assert_int_equal(get(u, "total_tokens")->valueint, 18);
    assert_json_equal(get(resp, "metadata"), "{\"k\":\"v\"}");
    /* the turn: the input, then the output */
    cJSON *turn = responses_turn_items(&r, resp);
    assert_int_equal(cJSON_GetArraySize(turn), 3);
    assert_string_equal(get(cJSON_GetArrayItem(turn, 0), "role")->valuestring, "user");
    assert_string_equal(get(cJSON_GetArrayItem(turn, 2), "type")->valuestring, "function_call");
    cJSON_Delete(turn);
    cJSON_Delete(resp);
    /* cut by the cap: incomplete */
    resp = responses_object_new(&r, "resp_abd", 1700000000);
    const char *cut = "{\"choices\":[{\"message\":{\"content\":\"a b\"},\"finish_reason\":\"length\"}]}";
    assert_true(responses_object_complete(resp, cut, strlen(cut)));
    assert_string_equal(get(resp, "status")->valuestring, "incomplete");
    assert_string_equal(get(get(resp, "incomplete_details"), "reason")->valuestring, "max_output_tokens");
    cJSON_Delete(resp);
    /* not a chat completion */
    resp = responses_object_new(&r, "resp_abe", 1700000000);
    assert_false(responses_object_complete(resp, "{\"error\":{}}", 12));
    assert_false(responses_object_complete(resp, "nonsense", 8));
    cJSON_Delete(resp);
    responses_request_free(&r);
}

/* The events of a framed stream, as parsed JSON payloads in order, with
 * each `event:` line equal to its payload's type. */
static cJSON *events_of(const buf *b)
{
    cJSON *arr = cJSON_CreateArray();
    const char *p = b->data, *end = b->data + b->len;
    while (p < end) {
        assert_int_equal(strncmp(p, "event: ", 7), 0);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        char type[80];
        snprintf(type, sizeof type, "%.*s", (int)(nl - p - 7), p + 7);
        p = nl + 1;
        assert_int_equal(strncmp(p, "data: ", 6), 0);
        const char *stop = strstr(p, "\n\n");
        cJSON *ev = cJSON_ParseWithLength(p + 6, (size_t)(stop - p - 6));
        assert_non_null(ev);
        assert_string_equal(get(ev, "type")->valuestring, type);
        cJSON_AddItemToArray(arr, ev);
        p = stop + 2;
    }
    return arr;
}

static void test_stream_events(void **state)
{
    (void)state;
    responses_request r = parse_ok("{\"model\":\"mock-small\",\"input\":\"x\",\"stream\":true}");
    cJSON *resp = responses_object_new(&r, "resp_s", 1700000000);
    responses_stream s;
    responses_stream_init(&s, resp);
    buf out;
    buf_init(&out);
    responses_stream_begin(&s, &out);
    static const char *const chunks[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"q\\\":\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9}}",
    };
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++)
        assert_true(responses_stream_chunk(&s, chunks[i], strlen(chunks[i]), &out));
    assert_false(responses_stream_chunk(&s, "[1", 2, &out));
    responses_stream_finish(&s, &out);
    responses_stream_end(&s, &out);
    cJSON *evs = events_of(&out);
    static const char *const want[] = {
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed",
    };
    assert_int_equal(cJSON_GetArraySize(evs), (int)(sizeof want / sizeof *want));
    int i = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, evs) {
        assert_string_equal(get(ev, "type")->valuestring, want[i]);
        assert_int_equal(get(ev, "sequence_number")->valueint, i);
        i++;
    }
    const cJSON *text_done = cJSON_GetArrayItem(evs, 6);
    assert_string_equal(get(text_done, "text")->valuestring, "Hello");
    const cJSON *args_done = cJSON_GetArrayItem(evs, 12);
    assert_string_equal(get(args_done, "arguments")->valuestring, "{\"q\":1}");
    assert_int_equal(get(args_done, "output_index")->valueint, 1);
    const cJSON *done = get(cJSON_GetArrayItem(evs, i - 1), "response");
    assert_string_equal(get(done, "status")->valuestring, "completed");
    const cJSON *out_items = get(done, "output");
    assert_int_equal(cJSON_GetArraySize(out_items), 3);
    assert_string_equal(get(cJSON_GetArrayItem(out_items, 1), "call_id")->valuestring, "call_a");
    assert_string_equal(get(cJSON_GetArrayItem(out_items, 2), "call_id")->valuestring, "call_b");
    assert_string_equal(get(cJSON_GetArrayItem(out_items, 2), "status")->valuestring, "completed");
    assert_int_equal(get(get(done, "usage"), "output_tokens")->valueint, 9);
    /* the Response kept for GET is the one the last event carried */
    assert_true(cJSON_Compare(done, resp, true));
    cJSON_Delete(evs);
    buf_free(&out);
    responses_stream_free(&s);
    cJSON_Delete(resp);
    responses_request_free(&r);
}

/* A provider chunk whose tool_calls alternate indexes opens a call at each:
 * at most 1 024 items in the Response, then the chunk is malformed; the
 * items are counted, not walked (40 000 alternations took 12 s). */
static void test_stream_items_bounded(void **state)
{
    (void)state;
    responses_request r = parse_ok("{\"model\":\"mock-small\",\"input\":\"x\",\"stream\":true}");
    cJSON *resp = responses_object_new(&r, "resp_b", 1700000000);
    responses_stream s;
    responses_stream_init(&s, resp);
    buf out, chunk;
    buf_init(&out);
    buf_init(&chunk);
    buf_puts(&chunk, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[");
    for (int i = 0; i < 1000; i++) buf_printf(&chunk, "%s{\"index\":%d,\"function\":{\"name\":\"f\"}}", i ? "," : "", i % 2);
    buf_puts(&chunk, "]}}]}");
    assert_true(responses_stream_chunk(&s, chunk.data, chunk.len, &out));   /* 1 000 calls: fine */
    assert_false(responses_stream_chunk(&s, chunk.data, chunk.len, &out));  /* past 1 024 */
    const char *text = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}";
    assert_false(responses_stream_chunk(&s, text, strlen(text), &out));  /* a new text item too */
    responses_stream_finish(&s, &out);
    assert_int_equal(cJSON_GetArraySize(get(resp, "output")), 1024);
    buf_free(&chunk);
    buf_free(&out);
    responses_stream_free(&s);
    cJSON_Delete(resp);
    responses_request_free(&r);
}

static void test_stream_failure(void **state)
{
    (void)state;
    responses_request r = parse_ok("{\"model\":\"mock-small\",\"input\":\"x\",\"stream\":true}");
    cJSON *resp = responses_object_new(&r, "resp_f", 1700000000);
    responses_stream s;
    responses_stream_init(&s, resp);
    buf out;
    buf_init(&out);
    responses_stream_begin(&s, &out);
    responses_stream_fail(&s, "upstream_timeout", "too slow", &out);
    cJSON *evs = events_of(&out);
    assert_int_equal(cJSON_GetArraySize(evs), 4);
    assert_string_equal(get(cJSON_GetArrayItem(evs, 2), "code")->valuestring, "upstream_timeout");
    const cJSON *failed = get(cJSON_GetArrayItem(evs, 3), "response");
    assert_string_equal(get(failed, "status")->valuestring, "failed");
    assert_string_equal(get(get(failed, "error"), "message")->valuestring, "too slow");
    cJSON_Delete(evs);
    buf_free(&out);
    responses_stream_free(&s);
    cJSON_Delete(resp);
    responses_request_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_input_and_instructions),
        cmocka_unit_test(test_items_history_first),
        cmocka_unit_test(test_tools_format_and_sampling),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_completion_to_response),
        cmocka_unit_test(test_stream_events),
        cmocka_unit_test(test_stream_items_bounded),
        cmocka_unit_test(test_stream_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
