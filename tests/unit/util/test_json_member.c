/* test_json_member.c — json_top_member (src/util/json_member.c): the value
 * range of a top-level member, its key matched after decoding escapes, never
 * a member of a nested object or a look-alike inside a string, and no read
 * outside the text whatever the text is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/json_member.h"

/* The value of key in text as a string ("" + false when not found). */
static bool value_of(const char *text, const char *key, char *out, size_t outlen)
{
    size_t a = 0, b = 0;
    out[0] = '\0';
    if (!json_top_member(text, strlen(text), key, strlen(key), &a, &b)) return false;
    assert_true(a <= b && b <= strlen(text));
    assert_true(b - a < outlen);
    memcpy(out, text + a, b - a);
    out[b - a] = '\0';
    return true;
}

static void test_finds_top_level_values(void **state)
{
    (void)state;
    char v[128];
    const char *t = " { \"a\" : 1 , \"model\"\t:\r\n\"gpt \\\"x\\\"\" ,\"z\":[1,{\"model\":2}]} ";
    assert_true(value_of(t, "model", v, sizeof v));
    assert_string_equal(v, "\"gpt \\\"x\\\"\"");
    assert_true(value_of(t, "a", v, sizeof v));
    assert_string_equal(v, "1");
    assert_true(value_of(t, "z", v, sizeof v));
    assert_string_equal(v, "[1,{\"model\":2}]");
    assert_false(value_of(t, "mode", v, sizeof v));
    assert_false(value_of(t, "models", v, sizeof v));
    assert_false(value_of("{}", "model", v, sizeof v));
    /* after a byte order mark, which cJSON reads past */
    assert_true(value_of("\xef\xbb\xbf{\"model\":\"m\"}", "model", v, sizeof v));
    assert_string_equal(v, "\"m\"");
}

static void test_nested_and_quoted_lookalikes_are_skipped(void **state)
{
    (void)state;
    char v[128];
    /* a "model" inside an object, inside an array and inside a string with
     * brackets and escaped quotes, before the real one */
    const char *t = "{\"o\":{\"model\":\"no\"},\"s\":\"}\\\",\\\"model\\\":\\\"no\",\"a\":[\"]\",{\"model\":0}],"
                    "\"model\":null}";
    assert_true(value_of(t, "model", v, sizeof v));
    assert_string_equal(v, "null");
}

static void test_escaped_keys_are_decoded(void **state)
{
    (void)state;
    char v[64];
    assert_true(value_of("{\"mod\\u0065l\":true}", "model", v, sizeof v));
    assert_string_equal(v, "true");
    assert_true(value_of("{\"\\u006D\\u006f\\u0064el\":-1.5e3}", "model", v, sizeof v));
    assert_string_equal(v, "-1.5e3");
    /* \/ and a non-ASCII character, by escape and by its UTF-8 bytes */
    assert_true(value_of("{\"a\\/b\":1}", "a/b", v, sizeof v));
    assert_true(value_of("{\"caf\\u00e9\":2}", "caf\xc3\xa9", v, sizeof v));
    assert_string_equal(v, "2");
    /* a surrogate pair is one character (U+1F600) */
    assert_true(value_of("{\"\\ud83d\\ude00\":3}", "\xf0\x9f\x98\x80", v, sizeof v));
    assert_string_equal(v, "3");
    /* a lone surrogate matches nothing */
    assert_false(value_of("{\"\\ud83d\":4}", "\xed\xa0\xbd", v, sizeof v));
    /* a key that only starts like the name, or is longer */
    assert_false(value_of("{\"model\\u0000\":1}", "model", v, sizeof v));
    assert_false(value_of("{\"mode\":1}", "model", v, sizeof v));
}

/* Every prefix of a text, and every byte changed: the walk stays inside the
 * text (ASan would see a read outside the heap copy) and never claims a
 * range outside it. */
static void test_any_text_is_walked_safely(void **state)
{
    (void)state;
    const char *t = "{\"a\":[1,{\"b\":\"\\\\\\\"\"}],\"mod\\u0065l\":\"\\ud83d\\ude00\",\"c\":{}}";
    size_t n = strlen(t);
    for (size_t len = 0; len <= n; len++) {
        char *copy = malloc(len ? len : 1);
        memcpy(copy, t, len);
        size_t a, b;
        if (json_top_member(copy, len, "model", 5, &a, &b)) assert_true(a <= b && b <= len);
        for (size_t i = 0; i < len; i++) {
            char keep = copy[i];
            static const char bytes[] = "\"\\{}[],:u ";
            for (const char *c = bytes; *c; c++) {
                copy[i] = *c;
                if (json_top_member(copy, len, "model", 5, &a, &b)) assert_true(a <= b && b <= len);
            }
            copy[i] = keep;
        }
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_top_level_values),
        cmocka_unit_test(test_nested_and_quoted_lookalikes_are_skipped),
        cmocka_unit_test(test_escaped_keys_are_decoded),
        cmocka_unit_test(test_any_text_is_walked_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
