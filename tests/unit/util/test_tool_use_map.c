/* test_tool_use_map.c — one tool call between Anthropic's tool_use block
 * and OpenAI's tool call, both ways: the fields carried over, input ⇄
 * arguments text, what is refused, and a round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util/tool_use_map.h"

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *use_to_call(const char *block, bool input_required, size_t *len)
{
    cJSON *b = cJSON_Parse(block);
    assert_non_null(b);
    cJSON *tc = tool_use_to_call(b, input_required, len);
    cJSON_Delete(b);
    return tc;
}

static void test_use_to_call(void **state)
{
    (void)state;
    size_t len = 0;
    cJSON *tc = use_to_call("{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"search\","
                            "\"input\":{\"q\":\"x\",\"n\":2}}", true, &len);
    assert_non_null(tc);
    assert_string_equal(str_at(tc, "id", NULL), "toolu_1");
    assert_string_equal(str_at(tc, "type", NULL), "function");
    assert_string_equal(str_at(tc, "function", "name"), "search");
    assert_string_equal(str_at(tc, "function", "arguments"), "{\"q\":\"x\",\"n\":2}");
    assert_int_equal(len, strlen("{\"q\":\"x\",\"n\":2}"));
    cJSON_Delete(tc);

    /* no input: "{}" when allowed, refused when required */
    tc = use_to_call("{\"id\":\"a\",\"name\":\"n\"}", false, &len);
    assert_non_null(tc);
    assert_string_equal(str_at(tc, "function", "arguments"), "{}");
    assert_int_equal(len, 2);
    cJSON_Delete(tc);
    assert_null(use_to_call("{\"id\":\"a\",\"name\":\"n\"}", true, NULL));

    /* refused: no id, no name, a name that is not a string, input not an object */
    assert_null(use_to_call("{\"name\":\"n\",\"input\":{}}", false, NULL));
    assert_null(use_to_call("{\"id\":\"a\",\"input\":{}}", false, NULL));
    assert_null(use_to_call("{\"id\":\"a\",\"name\":3,\"input\":{}}", false, NULL));
    assert_null(use_to_call("{\"id\":\"a\",\"name\":\"n\",\"input\":[1]}", false, NULL));
    assert_null(use_to_call("{\"id\":\"a\",\"name\":\"n\",\"input\":\"{}\"}", true, NULL));
}

static cJSON *call_to_use(const char *call)
{
    cJSON *c = cJSON_Parse(call);
    assert_non_null(c);
    cJSON *b = tool_call_to_use(c);
    cJSON_Delete(c);
    return b;
}

static void test_call_to_use(void **state)
{
    (void)state;
    cJSON *b = call_to_use("{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
                           "{\"name\":\"search\",\"arguments\":\"{\\\"q\\\":\\\"x\\\"}\"}}");
    assert_non_null(b);
    assert_string_equal(str_at(b, "type", NULL), "tool_use");
    assert_string_equal(str_at(b, "id", NULL), "call_1");
    assert_string_equal(str_at(b, "name", NULL), "search");
    assert_string_equal(str_at(b, "input", "q"), "x");
    cJSON_Delete(b);

    /* absent or blank arguments: {} */
    const char *empty[] = {
        "{\"id\":\"c\",\"function\":{\"name\":\"n\"}}",
        "{\"id\":\"c\",\"function\":{\"name\":\"n\",\"arguments\":\" \\n\\t\"}}",
    };
    for (size_t i = 0; i < 2; i++) {
        b = call_to_use(empty[i]);
        assert_non_null(b);
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(b, "input");
        assert_true(cJSON_IsObject(in));
        assert_null(in->child);
        cJSON_Delete(b);
    }

    /* arguments that are not a JSON object are kept, not dropped */
    b = call_to_use("{\"id\":\"c\",\"function\":{\"name\":\"n\",\"arguments\":\"[1,2\"}}");
    assert_non_null(b);
    assert_string_equal(str_at(b, "input", "arguments"), "[1,2");
    cJSON_Delete(b);

    assert_null(call_to_use("{\"function\":{\"name\":\"n\"}}"));
    assert_null(call_to_use("{\"id\":\"c\",\"function\":{}}"));
    assert_null(call_to_use("{\"id\":\"c\"}"));
}

/* OpenAI → Anthropic → OpenAI gives back the same call. */
static void test_round_trip(void **state)
{
    (void)state;
    const char *call = "{\"id\":\"call_9\",\"type\":\"function\",\"function\":"
                       "{\"name\":\"get\",\"arguments\":\"{\\\"url\\\":\\\"http://a/\\\",\\\"n\\\":[1,true]}\"}}";
    cJSON *c = cJSON_Parse(call);
    cJSON *b = tool_call_to_use(c);
    assert_non_null(b);
    cJSON *back = tool_use_to_call(b, true, NULL);
    assert_non_null(back);
    assert_true(cJSON_Compare(c, back, true));
    cJSON_Delete(back);
    cJSON_Delete(b);
    cJSON_Delete(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_use_to_call),
        cmocka_unit_test(test_call_to_use),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
