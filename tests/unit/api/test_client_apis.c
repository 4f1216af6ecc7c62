/* test_client_apis.c — the client APIs translated onto the chat path:
 * Anthropic Messages in (request → chat request, chat answer and stream →
 * Anthropic's shapes), legacy completions, and the embeddings check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/completions.h"
#include "api/embeddings.h"
#include "api/messages.h"

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

/* The chat request a Messages body becomes (parsed), or NULL with *e. */
static cJSON *messages_chat(const char *body, chat_request *r, chat_request_error *e)
{
    if (!messages_request_parse(body, strlen(body), &cfg, r, e)) return NULL;
    cJSON *j = cJSON_Parse(r->upstream_body);
    assert_non_null(j);
    return j;
}

static void test_messages_request_translated(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"mock-small\",\"max_tokens\":100,\"system\":[{\"type\":\"text\",\"text\":\"Be brief.\"}],"
        "\"stop_sequences\":[\"END\"],\"temperature\":0.3,\"top_k\":5,\"metadata\":{\"user_id\":\"u-1\"},"
        "\"tools\":[{\"name\":\"get_weather\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\"}}],"
        "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},\"stream\":true,"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AAAA\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"x\"},{\"type\":\"text\",\"text\":\"ok\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"is_error\":true,"
        "\"content\":[{\"type\":\"text\",\"text\":\"boom\"}]},{\"type\":\"text\",\"text\":\"and?\"}]}]}";
    chat_request r;
    chat_request_error e;
    cJSON *j = messages_chat(body, &r, &e);
    assert_non_null(j);
    assert_true(r.stream);
    assert_int_equal(r.max_output_tokens, 100);
    assert_string_equal(cJSON_GetObjectItem(j, "user")->valuestring, "u-1");
    assert_int_equal(cJSON_GetObjectItem(j, "top_k")->valueint, 5);
    assert_string_equal(cJSON_GetObjectItem(j, "tool_choice")->valuestring, "required");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "parallel_tool_calls")));
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "stop"), 0)->valuestring, "END");
    cJSON *fn = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tools"), 0), "function");
    assert_string_equal(cJSON_GetObjectItem(fn, "name")->valuestring, "get_weather");
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(fn, "parameters")));
    cJSON *msgs = cJSON_GetObjectItem(j, "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 5);   /* system, user, assistant, tool, user */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")->valuestring, "Be brief.");
    cJSON *img = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "content"), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(img, "image_url"), "url")->valuestring,
                        "data:image/png;base64,AAAA");
    cJSON *asst = cJSON_GetArrayItem(msgs, 2);
    assert_string_equal(cJSON_GetObjectItem(asst, "content")->valuestring, "ok");
    cJSON *call = cJSON_GetArrayItem(cJSON_GetObjectItem(asst, "tool_calls"), 0);
    assert_string_equal(cJSON_GetObjectItem(call, "id")->valuestring, "toolu_1");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(call, "function"), "arguments")->valuestring,
                        "{\"city\":\"Paris\"}");
    cJSON *tool = cJSON_GetArrayItem(msgs, 3);
    assert_string_equal(cJSON_GetObjectItem(tool, "role")->valuestring, "tool");
    assert_string_equal(cJSON_GetObjectItem(tool, "content")->valuestring, "error: boom");
    cJSON_Delete(j);
    chat_request_free(&r);
}

static void expect_messages_refused(const char *body, int status, const char *param)
{
    chat_request r;
    chat_request_error e;
    assert_false(messages_request_parse(body, strlen(body), &cfg, &r, &e));
    assert_int_equal(e.status, status);
    assert_string_equal(e.param, param);
}

static void test_messages_request_refused(void **state)
{
    (void)state;
#define M(rest) "{\"model\":\"mock-small\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]" rest "}"
    expect_messages_refused("{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 400,
                            "max_tokens");
    expect_messages_refused("{\"model\":\"nope\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                            404, "model");
    expect_messages_refused(M(",\"max_tokens\":11"), 400, "max_tokens");       /* repeated key */
    expect_messages_refused(M(",\"n\":2"), 400, "n");                           /* not a Messages field */
    expect_messages_refused(M(",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}"), 400, "thinking");
    expect_messages_refused(M(",\"tools\":[{\"type\":\"bash_20250124\",\"name\":\"bash\"}]"), 400, "tools[0]");
    expect_messages_refused(M(",\"metadata\":{\"user_id\":\"u\",\"other\":1}"), 400, "metadata");
    expect_messages_refused(M(",\"temperature\":1.5"), 400, "temperature");
    expect_messages_refused(M(",\"stop_sequences\":[\"\"]"), 400, "stop_sequences");
    expect_messages_refused(M(",\"system\":[{\"type\":\"image\"}]"), 400, "system[0]");
    expect_messages_refused("{\"model\":\"mock-small\",\"max_tokens\":10,\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
                            400, "messages[0]");
    expect_messages_refused("{\"model\":\"mock-small\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":"
                            "[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":\"image\"}]}]}]}",
                            400, "messages[0].content[0].content[0]");
    /* over the model's output cap: the governed check refuses it */
    expect_messages_refused("{\"model\":\"mock-small\",\"max_tokens\":999999999,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                            400, "max_tokens");
#undef M
}

static void test_messages_answer(void **state)
{
    (void)state;
    const char *chat = "{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[{\"index\":0,"
                       "\"message\":{\"role\":\"assistant\",\"content\":\"hello\",\"tool_calls\":[{\"id\":\"call_1\","
                       "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
                       "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}";
    size_t n = 0;
    char *out = messages_answer(chat, strlen(chat), &n);
    assert_non_null(out);
    cJSON *j = cJSON_Parse(out);
    assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, "msg_abc");
    assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "message");
    assert_string_equal(cJSON_GetObjectItem(j, "stop_reason")->valuestring, "tool_use");
    cJSON *content = cJSON_GetObjectItem(j, "content");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(content, 0), "text")->valuestring, "hello");
    cJSON *use = cJSON_GetArrayItem(content, 1);
    assert_string_equal(cJSON_GetObjectItem(use, "type")->valuestring, "tool_use");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(use, "input"), "a")->valueint, 1);
    cJSON *u = cJSON_GetObjectItem(j, "usage");
    assert_int_equal(cJSON_GetObjectItem(u, "input_tokens")->valueint, 7);
    assert_int_equal(cJSON_GetObjectItem(u, "output_tokens")->valueint, 3);
    cJSON_Delete(j);
    free(out);
    assert_null(messages_answer("[1]", 3, &n));
    assert_null(messages_answer("{\"choices\":[]}", 14, &n));
}

/* The event types of an SSE text, in order, joined by spaces. */
static void event_types(const char *sse, char *out, size_t cap)
{
    out[0] = '\0';
    for (const char *p = strstr(sse, "event: "); p; p = strstr(p + 1, "\nevent: ")) {
        const char *s = p[0] == '\n' ? p + 8 : p + 7;
        size_t n = strcspn(s, "\n");
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%.*s", l ? " " : "", (int)n, s);
    }
}

static void test_messages_stream(void **state)
{
    (void)state;
    messages_stream s;
    messages_stream_init(&s);
    buf out;
    buf_init(&out);
    const char *chunks[] = {
        "{\"id\":\"chatcmpl-x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
        "{\"id\":\"chatcmpl-x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}",
        "{\"id\":\"chatcmpl-x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
        "{\"id\":\"chatcmpl-x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]}}]}",
        "{\"id\":\"chatcmpl-x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
        "{\"id\":\"chatcmpl-x\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}",
        "not json",
    };
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
        messages_stream_chunk(&s, chunks[i], strlen(chunks[i]), &out);
    messages_stream_end(&s, true, 200, NULL, &out);
    buf_append(&out, "", 1);
    char types[512];
    event_types(out.data, types, sizeof types);
    assert_string_equal(types, "message_start ping content_block_start content_block_delta content_block_stop "
                               "content_block_start content_block_delta content_block_stop message_delta message_stop");
    assert_non_null(strstr(out.data, "\"id\":\"msg_x\""));
    assert_non_null(strstr(out.data, "{\"type\":\"text_delta\",\"text\":\"Hi\"}"));
    assert_non_null(strstr(out.data, "\"partial_json\":\"{\\\"a\\\":\""));
    assert_non_null(strstr(out.data, "\"stop_reason\":\"tool_use\""));
    assert_non_null(strstr(out.data, "\"input_tokens\":9,\"output_tokens\":4"));
    buf_free(&out);

    /* A failure after the start: one error event in Anthropic's shape. */
    messages_stream_init(&s);
    buf_init(&out);
    messages_stream_end(&s, false, 429, "slow \"down\"", &out);
    buf_append(&out, "", 1);
    assert_string_equal(out.data, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                                  "\"message\":\"slow \\\"down\\\"\"}}\n\n");
    buf_free(&out);
    assert_string_equal(messages_error_type(401), "authentication_error");
    assert_string_equal(messages_error_type(403), "permission_error");
    assert_string_equal(messages_error_type(404), "not_found_error");
    assert_string_equal(messages_error_type(503), "overloaded_error");
    assert_string_equal(messages_error_type(502), "api_error");
}

static void test_completions(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"mock-small\",\"prompt\":[\"Once\"],\"max_tokens\":5,\"n\":2,\"stop\":\"\\n\"}";
    chat_request r;
    chat_request_error e;
    assert_true(completions_request_parse(body, strlen(body), &cfg, &r, &e));
    assert_int_equal(r.choices, 2);
    cJSON *j = cJSON_Parse(r.upstream_body);
    cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 0);
    assert_string_equal(cJSON_GetObjectItem(m0, "content")->valuestring, "Once");
    assert_string_equal(cJSON_GetObjectItem(j, "stop")->valuestring, "\n");
    cJSON_Delete(j);
    chat_request_free(&r);
    static const struct { const char *body, *param; } refused[] = {
        {"{\"model\":\"mock-small\",\"prompt\":\"x\",\"echo\":true}", "echo"},
        {"{\"model\":\"mock-small\",\"prompt\":\"x\",\"suffix\":\"y\"}", "suffix"},
        {"{\"model\":\"mock-small\",\"prompt\":\"x\",\"logprobs\":1}", "logprobs"},
        {"{\"model\":\"mock-small\",\"prompt\":[\"a\",\"b\"]}", "prompt"},
        {"{\"model\":\"mock-small\",\"prompt\":[[1,2]]}", "prompt"},
        {"{\"model\":\"mock-small\",\"prompt\":\"x\",\"best_of\":2}", "best_of"},
        {"{\"model\":\"mock-small\",\"prompt\":\"x\",\"prompt\":\"y\"}", "prompt"},
        {"{\"model\":\"mock-small\",\"prompt\":\"x\",\"messages\":[]}", "messages"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_false(completions_request_parse(refused[i].body, strlen(refused[i].body), &cfg, &r, &e));
        assert_int_equal(e.status, 400);
        assert_string_equal(e.param, refused[i].param);
    }
    const char *chat = "{\"id\":\"chatcmpl-q\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":"
                       "{\"content\":\"text\"},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1}}";
    size_t n;
    char *out = completions_answer(chat, strlen(chat), &n);
    j = cJSON_Parse(out);
    assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, "cmpl-q");
    assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring, "text_completion");
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(c0, "text")->valuestring, "text");
    assert_string_equal(cJSON_GetObjectItem(c0, "finish_reason")->valuestring, "length");
    cJSON_Delete(j);
    free(out);
    buf b;
    buf_init(&b);
    completions_stream_chunk(false, "{\"choices\":[],\"usage\":{}}", 25, &b);
    assert_int_equal(b.len, 0);   /* the usage chunk only when asked for */
    completions_stream_chunk(true, "{\"choices\":[],\"usage\":{}}", 25, &b);
    assert_true(b.len > 0);
    buf_free(&b);
}

static void test_embeddings(void **state)
{
    (void)state;
    model_cfg *m = &cfg.models[1];
    chat_request r;
    chat_request_error e;
    const char *body = "{\"model\":\"mock-small\",\"input\":\"x\"}";
    assert_false(embeddings_request_parse(body, strlen(body), &cfg, &r, &e));
    assert_string_equal(e.code, "wrong_model_kind");
    m->embedding = true;
    m->dimensions = 256;
    uint32_t cap = m->max_output_tokens, ctx = m->context_window;
    m->max_output_tokens = 0;
    m->context_window = 10;
    char ok[160];
    snprintf(ok, sizeof ok, "{\"model\":\"%s\",\"input\":[\"a\",\"b\"],\"dimensions\":256,\"encoding_format\":\"base64\"}",
             m->name);
    assert_true(embeddings_request_parse(ok, strlen(ok), &cfg, &r, &e));
    assert_ptr_equal(r.model, m);
    assert_false(r.stream);
    assert_int_equal(r.max_output_tokens, 0);
    chat_request_free(&r);
    static const char *const fields[][2] = {
        {"\"input\":\"x\",\"dimensions\":257", "dimensions"},
        {"\"input\":\"x\",\"encoding_format\":\"int8\"", "encoding_format"},
        {"\"input\":[[1,2]]", "input[0]"},
        {"\"input\":[1,2]", "input"},
        {"\"input\":\"01234567890123456789012345678901234567890\"", "input"},   /* 11 tokens > 10 */
        {"\"input\":[]", "input"},
        {"\"input\":\"x\",\"stream\":true", "stream"},
        {"\"input\":\"x\",\"user\":7", "user"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char b[256];
        snprintf(b, sizeof b, "{\"model\":\"%s\",%s}", m->name, fields[i][0]);
        assert_false(embeddings_request_parse(b, strlen(b), &cfg, &r, &e));
        assert_string_equal(e.param, fields[i][1]);
    }
    /* and a chat request for it is refused */
    snprintf(ok, sizeof ok, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", m->name);
    assert_false(chat_request_parse(ok, strlen(ok), &cfg, &r, &e));
    assert_string_equal(e.code, "wrong_model_kind");
    m->embedding = false;
    m->dimensions = 0;
    m->max_output_tokens = cap;
    m->context_window = ctx;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_request_translated),
        cmocka_unit_test(test_messages_request_refused),
        cmocka_unit_test(test_messages_answer),
        cmocka_unit_test(test_messages_stream),
        cmocka_unit_test(test_completions),
        cmocka_unit_test(test_embeddings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
