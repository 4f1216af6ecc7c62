/* test_chat_request.c — the gateway's request check and rewrite: what is
 * refused (with which status, code and param), and that an accepted body
 * reaches the provider with only "model" changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "api/chat_request.h"

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

static void expect_refused(const char *body, int status, const char *code, const char *param)
{
    chat_request r;
    chat_request_error e;
    assert_false(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    assert_int_equal(e.status, status);
    assert_string_equal(e.code, code);
    assert_string_equal(e.param, param ? param : "");
    assert_true(strlen(e.message) > 10);
}

static void test_accepts_and_rewrites_model(void **state)
{
    (void)state;
    const model_cfg *m = config_find_model(&cfg, "mock-small");
    assert_non_null(m);
    const char *body = "{\"model\":\"mock-small\",\"temperature\":0.5,\"tools\":[{\"type\":\"function\","
                       "\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    chat_request r;
    chat_request_error e;
    assert_true(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    assert_ptr_equal(r.model, m);
    assert_true(r.stream);
    assert_true(r.client_wants_usage);
    cJSON *out = cJSON_Parse(r.upstream_body);
    assert_non_null(out);
    assert_string_equal(cJSON_GetObjectItem(out, "model")->valuestring, m->upstream_model);
    /* everything else passes through untouched */
    assert_true(cJSON_GetObjectItem(out, "temperature")->valuedouble == 0.5);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(out, "tools"), 0), "type")->valuestring,
                        "function");
    cJSON_Delete(out);
    chat_request_free(&r);
}

/* A model whose provider knows it by another name: "model" is rewritten,
 * the rest re-encoded unchanged. (Same names: the bytes are forwarded.) */
static void test_rewrites_to_the_upstream_name(void **state)
{
    (void)state;
    model_cfg *m = &cfg.models[1];
    char *saved = m->upstream_model;
    m->upstream_model = "provider-name-7";
    char body[200];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"top_p\":0.25,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
             m->name);
    chat_request r;
    chat_request_error e;
    assert_true(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    cJSON *out = cJSON_Parse(r.upstream_body);
    assert_non_null(out);
    assert_string_equal(cJSON_GetObjectItem(out, "model")->valuestring, "provider-name-7");
    assert_true(cJSON_GetObjectItem(out, "top_p")->valuedouble == 0.25);
    assert_int_equal(cJSON_GetObjectItem(out, "max_completion_tokens")->valueint, m->max_output_tokens);
    cJSON_Delete(out);
    chat_request_free(&r);
    m->upstream_model = saved;

    /* same name, the client's own output cap: byte for byte */
    snprintf(body, sizeof body,
             "{ \"model\" : \"%s\", \"max_tokens\": 7, \"messages\":[{\"role\":\"user\"}] }", m->name);
    assert_true(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    assert_int_equal(r.upstream_body_len, strlen(body));
    assert_memory_equal(r.upstream_body, body, strlen(body));
    assert_int_equal(r.max_output_tokens, 7);
    chat_request_free(&r);

    /* no cap: the model's is added (the reservation is priced on it), the
     * client's bytes otherwise as they came */
    snprintf(body, sizeof body,
             " { \"model\" : \"%s\", \"messages\":[{\"role\":\"user\"}] }", m->name);
    assert_true(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    char want[300];
    snprintf(want, sizeof want, " {\"max_completion_tokens\":%u, \"model\" : \"%s\", \"messages\":[{\"role\":\"user\"}] }",
             m->max_output_tokens, m->name);
    assert_int_equal(r.upstream_body_len, strlen(want));
    assert_memory_equal(r.upstream_body, want, strlen(want));
    assert_int_equal(r.max_output_tokens, m->max_output_tokens);
    chat_request_free(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("{\"model\":\"mock-small\",", 400, "invalid_json", NULL);
    expect_refused("[1,2]", 400, "invalid_json", NULL);
    expect_refused("{\"model\":\"mock-small\",\"messages\":[]} x", 400, "invalid_json", NULL);
    expect_refused("{\"messages\":[{\"role\":\"user\"}]}", 400, "missing_field", "model");
    expect_refused("{\"model\":7,\"messages\":[{\"role\":\"user\"}]}", 400, "invalid_value", "model");
    expect_refused("{\"model\":\"gpt-nope\",\"messages\":[{\"role\":\"user\"}]}", 404,
                   "model_not_found", "model");
    expect_refused("{\"model\":\"mock-small\"}", 400, "missing_field", "messages");
    expect_refused("{\"model\":\"mock-small\",\"messages\":[]}", 400, "invalid_value", "messages");
    expect_refused("{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"},{\"content\":\"x\"}]}",
                   400, "invalid_value", "messages[1]");
    expect_refused("{\"model\":\"mock-small\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\"}]}",
                   400, "invalid_type", "stream");
    expect_refused("{\"model\":\"mock-small\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\"}]}",
                   400, "invalid_value", "max_tokens");
    expect_refused("{\"model\":\"mock-small\",\"max_tokens\":1.5,\"messages\":[{\"role\":\"user\"}]}",
                   400, "invalid_value", "max_tokens");
    expect_refused("{\"model\":\"mock-small\",\"max_completion_tokens\":999999999,\"messages\":[{\"role\":\"user\"}]}",
                   400, "invalid_value", "max_completion_tokens");
    expect_refused("", 400, "missing_body", NULL);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    const char body[] = "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}";
    chat_request r;
    chat_request_error e;
    assert_false(chat_request_parse(body, sizeof body - 1, &cfg, &r, &e));
    assert_string_equal(e.code, "invalid_utf8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_and_rewrites_model),
        cmocka_unit_test(test_rewrites_to_the_upstream_name),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_invalid_utf8),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
