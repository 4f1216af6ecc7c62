/* test_json_write.c — util/json_write.c: a cJSON tree written as compact
 * JSON text. It must say what cJSON_PrintUnformatted says (the agent's
 * model requests were printed by cJSON before): the same bytes wherever
 * the two escaping policies agree — members in order, repeated keys kept,
 * numbers as cJSON writes them — and the same value where they do not
 * (\b, \f, DEL, broken UTF-8: json_escape.h's policy), or a closer one
 * (a double cJSON would cut to 15 digits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "util/json_write.h"

static char *written(const cJSON *item)
{
    buf b;
    buf_init(&b);
    json_write(&b, item);
    return buf_detach(&b);
}

/* The same text as cJSON_PrintUnformatted of the parsed text. */
static void same_as_cjson(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    char *want = cJSON_PrintUnformatted(j);
    char *got = written(j);
    if (strcmp(want, got) != 0) fail_msg("%s\n  cJSON: %s\n  wrote: %s", text, want, got);
    free(want);
    free(got);
    cJSON_Delete(j);
}

static void test_like_cjson(void **state)
{
    (void)state;
    same_as_cjson("{}");
    same_as_cjson("[]");
    same_as_cjson("null");
    same_as_cjson("[true,false,null,\"\",{}]");
    same_as_cjson("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi \\\"there\\\"\\n\\t\\\\ \\u0001\"},"
                  "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
                  "\"function\":{\"name\":\"clock\",\"arguments\":\"{\\\"tz\\\":\\\"UTC\\\"}\"}}]}],"
                  "\"stream\":true,\"max_tokens\":256}");
    /* a repeated key is written twice, in order, as cJSON does */
    same_as_cjson("{\"a\":1,\"a\":2,\"b\":{\"a\":[1,{\"a\":3}]}}");
    /* numbers: integers, negatives, fractions, exponents, the edge of int */
    same_as_cjson("[0,-0,1,-1,2147483647,-2147483648,2147483648,-2147483649,1e15,1e300,-1e-300,"
                  "0.1,3.14159265358979,1.5e-7,123456789012345678,0.25]");
    /* UTF-8 passes as it is; / is not escaped */
    same_as_cjson("[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\",\"a/b\"]");
    /* deep nesting */
    same_as_cjson("[[[[[[[[[[{\"k\":[[[[\"deep\"]]]]}]]]]]]]]]]");
}

/* Where the policies differ, the value is the same: cJSON reads both
 * texts back to equal trees. */
static void test_same_value(void **state)
{
    (void)state;
    cJSON *j = cJSON_CreateArray();
    cJSON_AddItemToArray(j, cJSON_CreateString("bell\b form\f del\x7f end"));
    char *got = written(j);
    assert_string_equal(got, "[\"bell\\u0008 form\\u000c del\\u007f end\"]");
    cJSON *back = cJSON_Parse(got);
    assert_true(cJSON_Compare(back, j, true));
    cJSON_Delete(back);
    free(got);
    cJSON_Delete(j);
    /* a byte of broken UTF-8 becomes U+FFFD: the text stays valid JSON */
    j = cJSON_CreateString("a\xff" "b");
    got = written(j);
    assert_string_equal(got, "\"a\xef\xbf\xbd" "b\"");
    free(got);
    cJSON_Delete(j);
}

/* A number cJSON would cut to 15 digits (it accepts %1.15g when it reads
 * back within an epsilon) keeps all of them: it reads back the same. */
static void test_numbers_exact(void **state)
{
    (void)state;
    const double d[] = {0.30000000000000004, 9007199254740993.0, 1.0 / 3.0, 2.2250738585072014e-308,
                        -123.456e-200, 4503599627370497.5};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        cJSON *j = cJSON_CreateNumber(d[i]);
        char *got = written(j);
        if (strtod(got, NULL) != d[i]) fail_msg("%.17g written as %s", d[i], got);
        free(got);
        cJSON_Delete(j);
    }
    cJSON *j = cJSON_CreateNumber(0.30000000000000004);
    char *got = written(j);
    assert_string_equal(got, "0.30000000000000004");
    free(got);
    cJSON_Delete(j);
}

static void test_odd_items(void **state)
{
    (void)state;
    char *got = written(NULL);
    assert_string_equal(got, "null");
    free(got);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "raw", cJSON_CreateRaw("{\"as\":\"is\"}"));
    cJSON_AddNumberToObject(j, "nan", 0.0 / 0.0);
    cJSON_AddNumberToObject(j, "inf", 1.0 / 0.0);
    cJSON *s = cJSON_CreateString("x");
    free(s->valuestring);
    s->valuestring = NULL;                 /* a string without text: "" as cJSON writes it */
    cJSON_AddItemToObject(j, "empty", s);
    got = written(j);
    assert_string_equal(got, "{\"raw\":{\"as\":\"is\"},\"nan\":null,\"inf\":null,\"empty\":\"\"}");
    free(got);
    cJSON_Delete(j);
    /* references are written as what they refer to */
    cJSON *target = cJSON_Parse("{\"role\":\"user\",\"content\":\"hi\"}");
    j = cJSON_CreateArray();
    cJSON_AddItemToArray(j, cJSON_CreateObjectReference(target->child));
    cJSON_AddItemToArray(j, cJSON_CreateStringReference("ref"));
    got = written(j);
    assert_string_equal(got, "[{\"role\":\"user\",\"content\":\"hi\"},\"ref\"]");
    free(got);
    cJSON_Delete(j);
    cJSON_Delete(target);
}

static void test_omitting(void **state)
{
    (void)state;
    cJSON *m = cJSON_Parse("{\"origin\":{\"kind\":\"user\"},\"role\":\"user\",\"origin\":1,"
                           "\"content\":{\"origin\":\"kept: not at this level\"},\"origins\":2}");
    buf b;
    buf_init(&b);
    json_write_omitting(&b, m, "origin");
    char *got = buf_detach(&b);
    assert_string_equal(got, "{\"role\":\"user\",\"content\":{\"origin\":\"kept: not at this level\"},\"origins\":2}");
    free(got);
    cJSON_Delete(m);
    /* only the omitted members: an empty object; not an object: whole */
    m = cJSON_Parse("{\"origin\":1}");
    json_write_omitting(&b, m, "origin");
    cJSON_Delete(m);
    m = cJSON_Parse("[{\"origin\":1}]");
    json_write_omitting(&b, m, "origin");
    cJSON_Delete(m);
    got = buf_detach(&b);
    assert_string_equal(got, "{}[{\"origin\":1}]");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_like_cjson),
        cmocka_unit_test(test_same_value),
        cmocka_unit_test(test_numbers_exact),
        cmocka_unit_test(test_odd_items),
        cmocka_unit_test(test_omitting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
