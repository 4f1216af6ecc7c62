/* test_mock_schema.c — the mock's structured output (a minimal instance of
 * a JSON Schema, and a response_format request answered with it), its ids
 * unique per call, and its deterministic embeddings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock/mock_engine.h"

/* The instance of `schema` as parsed JSON (the caller deletes it). */
static cJSON *instance(const char *schema)
{
    cJSON *s = cJSON_Parse(schema);
    assert_non_null(s);
    buf b;
    buf_init(&b);
    mock_schema_instance(s, &b);
    buf_append(&b, "", 1);
    cJSON *j = cJSON_Parse(b.data);
    if (!j) fail_msg("not JSON: %s", b.data);
    buf_free(&b);
    cJSON_Delete(s);
    return j;
}

static void test_schema_instance_shapes(void **st)
{
    (void)st;
    cJSON *j = instance(
        "{\"type\":\"object\",\"required\":[\"name\",\"age\",\"tags\",\"kind\",\"when\",\"ok\",\"score\",\"maybe\",\"inner\"],"
        "\"additionalProperties\":false,\"properties\":{"
        "\"name\":{\"type\":\"string\",\"minLength\":20},"
        "\"age\":{\"type\":\"integer\",\"minimum\":18,\"maximum\":99},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":3},\"minItems\":2},"
        "\"kind\":{\"enum\":[\"cat\",\"dog\"]},"
        "\"when\":{\"type\":\"string\",\"format\":\"date-time\"},"
        "\"ok\":{\"type\":\"boolean\"},"
        "\"score\":{\"type\":\"number\",\"exclusiveMinimum\":5,\"maximum\":6},"
        "\"maybe\":{\"anyOf\":[{\"type\":\"null\"},{\"type\":\"integer\",\"multipleOf\":7,\"minimum\":2}]},"
        "\"inner\":{\"$ref\":\"#/$defs/Inner\"},"
        "\"optional\":{\"type\":\"string\"}},"
        "\"$defs\":{\"Inner\":{\"type\":[\"object\",\"null\"],\"required\":[\"c\"],\"properties\":{\"c\":{\"const\":42}}}}}");
    assert_true(strlen(cJSON_GetObjectItem(j, "name")->valuestring) >= 20);
    assert_int_equal(cJSON_GetObjectItem(j, "age")->valueint, 18);
    cJSON *tags = cJSON_GetObjectItem(j, "tags");
    assert_int_equal(cJSON_GetArraySize(tags), 2);
    assert_true(strlen(cJSON_GetArrayItem(tags, 0)->valuestring) <= 3);
    assert_string_equal(cJSON_GetObjectItem(j, "kind")->valuestring, "cat");
    assert_string_equal(cJSON_GetObjectItem(j, "when")->valuestring, "2024-01-01T00:00:00Z");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    double score = cJSON_GetObjectItem(j, "score")->valuedouble;
    assert_true(score > 5 && score <= 6);
    assert_int_equal(cJSON_GetObjectItem(j, "maybe")->valueint, 7);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "inner"), "c")->valueint, 42);
    assert_null(cJSON_GetObjectItem(j, "optional"));   /* the smallest valid object */
    cJSON_Delete(j);
}

static void test_schema_instance_bounds(void **st)
{
    (void)st;
    /* a recursive $ref ends (in null), and an empty schema is null */
    cJSON *j = instance("{\"$defs\":{\"N\":{\"type\":\"object\",\"required\":[\"next\"],"
                        "\"properties\":{\"next\":{\"$ref\":\"#/$defs/N\"}}}},\"$ref\":\"#/$defs/N\"}");
    assert_true(cJSON_IsObject(j));
    cJSON_Delete(j);
    j = instance("{}");
    assert_true(cJSON_IsNull(j));
    cJSON_Delete(j);
    j = instance("{\"type\":\"array\",\"maxItems\":0,\"items\":{\"type\":\"integer\"}}");
    assert_int_equal(cJSON_GetArraySize(j), 0);
    cJSON_Delete(j);
    j = instance("{\"type\":\"array\",\"minItems\":100000,\"items\":{\"type\":\"integer\"}}");
    assert_int_equal(cJSON_GetArraySize(j), 16);
    cJSON_Delete(j);
    j = instance("{\"$ref\":\"#/nowhere\"}");
    assert_true(cJSON_IsNull(j));
    cJSON_Delete(j);
}

static void plan(mock_plan *p, arena *a, const char *body)
{
    mock_plan_make(p, a, body, strlen(body), NULL);
}

static void test_structured_reply_and_unique_ids(void **st)
{
    (void)st;
    arena a;
    arena_init(&a, 1024);
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi [[tokens:3]]\"}],"
                       "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"strict\":true,"
                       "\"schema\":{\"type\":\"object\",\"required\":[\"city\",\"temp\"],\"properties\":{"
                       "\"city\":{\"type\":\"string\"},\"temp\":{\"type\":\"number\"}}}}}}";
    mock_plan p, q;
    plan(&p, &a, body);
    plan(&q, &a, body);
    cJSON *j = cJSON_ParseWithLength(p.text, p.text_len);
    assert_non_null(j);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "city")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "temp")));
    assert_true(p.n_tokens > 1);                  /* streamed in several chunks */
    cJSON_Delete(j);
    assert_string_not_equal(p.id, q.id);
    const char *tool = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[[tool:f {}]]\"}]}";
    plan(&p, &a, tool);
    plan(&q, &a, tool);
    assert_string_not_equal(p.tool_call_id, q.tool_call_id);
    const char *obj = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"response_format\":{\"type\":\"json_object\"}}";
    plan(&p, &a, obj);
    j = cJSON_ParseWithLength(p.text, p.text_len);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "answer")));
    cJSON_Delete(j);
    arena_free(&a);
}

static void test_embeddings(void **st)
{
    (void)st;
    buf b;
    buf_init(&b);
    int64_t tok;
    const char *body = "{\"model\":\"e\",\"input\":[\"hello\",\"hello\",\"other\"],\"dimensions\":8}";
    assert_int_equal(mock_embeddings(body, strlen(body), &b, &tok), 200);
    assert_int_equal(tok, 2 + 2 + 2);
    buf_append(&b, "", 1);
    cJSON *j = cJSON_Parse(b.data);
    cJSON *data = cJSON_GetObjectItem(j, "data");
    assert_int_equal(cJSON_GetArraySize(data), 3);
    cJSON *v0 = cJSON_GetObjectItem(cJSON_GetArrayItem(data, 0), "embedding");
    cJSON *v1 = cJSON_GetObjectItem(cJSON_GetArrayItem(data, 1), "embedding");
    cJSON *v2 = cJSON_GetObjectItem(cJSON_GetArrayItem(data, 2), "embedding");
    assert_int_equal(cJSON_GetArraySize(v0), 8);
    double n = 0, diff = 0;
    for (int i = 0; i < 8; i++) {
        double x = cJSON_GetArrayItem(v0, i)->valuedouble;
        n += x * x;
        assert_true(x == cJSON_GetArrayItem(v1, i)->valuedouble);
        diff += fabs(x - cJSON_GetArrayItem(v2, i)->valuedouble);
    }
    assert_true(fabs(n - 1) < 1e-5);
    assert_true(diff > 0.1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "prompt_tokens")->valueint, 6);
    cJSON_Delete(j);
    /* base64: 8 float32 = 32 bytes = 44 characters with padding */
    b.len = 0;
    body = "{\"model\":\"e\",\"input\":\"hello\",\"dimensions\":8,\"encoding_format\":\"base64\"}";
    assert_int_equal(mock_embeddings(body, strlen(body), &b, &tok), 200);
    buf_append(&b, "", 1);
    j = cJSON_Parse(b.data);
    const char *s = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "embedding")->valuestring;
    assert_int_equal(strlen(s), 44);
    cJSON_Delete(j);
    static const char *const bad[] = {
        "{\"model\":\"e\"}", "{\"input\":\"x\"}", "{\"model\":\"e\",\"input\":[]}",
        "{\"model\":\"e\",\"input\":\"x\",\"dimensions\":0}", "{\"model\":\"e\",\"input\":[true]}",
        "{\"model\":\"e\",\"input\":\"x\",\"encoding_format\":\"hex\"}", "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b.len = 0;
        assert_int_equal(mock_embeddings(bad[i], strlen(bad[i]), &b, &tok), 400);
    }
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_instance_shapes),
        cmocka_unit_test(test_schema_instance_bounds),
        cmocka_unit_test(test_structured_reply_and_unique_ids),
        cmocka_unit_test(test_embeddings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
