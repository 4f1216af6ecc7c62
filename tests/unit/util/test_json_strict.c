/* test_json_strict.c — the strict JSON checks: repeated keys at any depth
 * are found and named with their path, NUL escapes are refused, and what
 * is allowed (the same key in different objects, escaped backslashes) is
 * not refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_strict.h"

/* Parse `text` and check its tree; returns the error's path, or NULL when
 * no key repeats. */
static const char *repeated_at(const char *text, json_strict_error *e)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    bool ok = json_strict_tree(j, "the request body", e);
    cJSON_Delete(j);
    return ok ? NULL : e->path;
}

static void test_top_level_repeat_is_named(void **state)
{
    (void)state;
    json_strict_error e;
    const char *at = repeated_at("{\"model\":\"cheap\",\"max_tokens\":1,\"messages\":[],"
                                 "\"max_tokens\":1000000}", &e);
    assert_non_null(at);
    assert_string_equal(e.key, "max_tokens");
    assert_string_equal(e.path, "max_tokens");
    assert_non_null(strstr(e.message, "\"max_tokens\""));
    assert_non_null(strstr(e.message, "the request body"));
}

static void test_nested_repeats_carry_their_path(void **state)
{
    (void)state;
    json_strict_error e;
    assert_non_null(repeated_at("{\"messages\":[{\"role\":\"user\"},{\"role\":\"user\",\"content\":1,"
                                "\"role\":\"system\"}]}", &e));
    assert_string_equal(e.path, "messages[1].role");
    assert_string_equal(e.key, "role");
    assert_non_null(repeated_at("{\"a\":{\"b\":[[{\"c\":{\"k\":1,\"k\":2}}]]}}", &e));
    assert_string_equal(e.path, "a.b[0][0].c.k");
    /* A top-level array of objects. */
    assert_non_null(repeated_at("[1,{\"x\":1},{\"y\":1,\"y\":1}]", &e));
    assert_string_equal(e.path, "[2].y");
}

/* An object's own keys are checked before anything inside it, so a repeated
 * governed field is named even when a nested object repeats a key too. */
static void test_outer_repeat_named_first(void **state)
{
    (void)state;
    json_strict_error e;
    assert_non_null(repeated_at("{\"t\":{\"x\":1,\"x\":2},\"n\":1,\"n\":2}", &e));
    assert_string_equal(e.path, "n");
}

static void test_same_key_in_different_objects_is_fine(void **state)
{
    (void)state;
    json_strict_error e;
    assert_null(repeated_at("{\"a\":{\"k\":1},\"b\":{\"k\":1},\"c\":[{\"k\":1},{\"k\":2}],\"k\":0}", &e));
    assert_null(repeated_at("{}", &e));
    assert_null(repeated_at("[]", &e));
    assert_null(repeated_at("{\"a\":\"a\",\"A\":1,\"a \":2}", &e));
    /* Not objects: nothing to check. */
    cJSON *n = cJSON_Parse("3");
    assert_true(json_strict_tree(n, "x", &e));
    cJSON_Delete(n);
    assert_true(json_strict_tree(NULL, "x", &e));
}

/* Keys are compared as decoded: an escaped spelling is the same key. */
static void test_escaped_spelling_is_the_same_key(void **state)
{
    (void)state;
    json_strict_error e;
    assert_non_null(repeated_at("{\"max_tokens\":1,\"max\\u005ftokens\":9}", &e));
    assert_string_equal(e.key, "max_tokens");
}

/* A big object goes through the hash set: a repeat anywhere among many
 * distinct keys is found, and none is reported when there is none. */
static void test_large_objects(void **state)
{
    (void)state;
    enum { N = 20000 };
    size_t cap = (size_t)N * 24 + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int repeat = 0; repeat < 2; repeat++) {
        size_t at = 0;
        at += (size_t)snprintf(text + at, cap - at, "{");
        for (int i = 0; i < N; i++)
            at += (size_t)snprintf(text + at, cap - at, "%s\"key%d\":%d", i ? "," : "", i, i);
        if (repeat) at += (size_t)snprintf(text + at, cap - at, ",\"key%d\":0", N / 2);
        snprintf(text + at, cap - at, "}");
        json_strict_error e;
        const char *path = repeated_at(text, &e);
        if (repeat) {
            assert_non_null(path);
            char want[32];
            snprintf(want, sizeof want, "key%d", N / 2);
            assert_string_equal(e.key, want);
        } else {
            assert_null(path);
        }
    }
    free(text);
}

/* Keys chosen offline to share a slot under the fixed hash the check once
 * used (FNV-1a, its slot the low bits of h ^ h >> 29): what a hostile
 * client would send. With a seeded hash they spread out; with the old
 * one every key probed past all the keys before it (n²/2 probes: for
 * 100 000 keys, seconds of the loop thread that parsed the body). */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void test_keys_made_to_collide_do_not_pile_up(void **state)
{
    (void)state;
    enum { N = 2000, SLOTS = 4096 };   /* the set's size for N keys (load <= 2/3) */
    size_t cap = (size_t)N * 24 + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t at = (size_t)snprintf(text, cap, "{");
    char key[24];
    unsigned long long tries = 0;
    for (int i = 0; i < N; i++) {
        for (;;) {
            snprintf(key, sizeof key, "k%llx", tries++);
            uint64_t h = fnv1a(key);
            if (((h ^ (h >> 29)) & (SLOTS - 1)) == 77) break;
        }
        at += (size_t)snprintf(text + at, cap - at, "%s\"%s\":0", i ? "," : "", key);
    }
    snprintf(text + at, cap - at, "}");
    uint64_t before = json_strict_probes();
    json_strict_error e;
    assert_null(repeated_at(text, &e));
    uint64_t probes = json_strict_probes() - before;
    /* ~N/2 expected at this load; the fixed hash gave N(N-1)/2 = 2 M */
    assert_true(probes < (uint64_t)N * 8);
    free(text);
}

/* Deep nesting walks with an explicit stack (no recursion). */
static void test_deep_nesting(void **state)
{
    (void)state;
    enum { D = 900 };   /* under cJSON's nesting limit */
    char *text = malloc(D * 6 + 64);
    assert_non_null(text);
    size_t at = 0;
    for (int i = 0; i < D; i++) at += (size_t)sprintf(text + at, "{\"a\":");
    at += (size_t)sprintf(text + at, "{\"z\":1,\"z\":2}");
    for (int i = 0; i < D; i++) text[at++] = '}';
    text[at] = '\0';
    json_strict_error e;
    assert_non_null(repeated_at(text, &e));
    assert_string_equal(e.key, "z");
    assert_non_null(strstr(e.path, "..."));   /* too long to show whole: cut, and says so */
    free(text);
}

static void test_nul_is_refused(void **state)
{
    (void)state;
    json_strict_error e;
    const char *t1 = "{\"max_tokens\\u0000\":1}";
    assert_false(json_strict_text(t1, strlen(t1), "the request body", &e));
    assert_non_null(strstr(e.message, "\\u0000"));
    const char *t2 = "{\"a\":\"x\\u0000y\"}";
    assert_false(json_strict_text(t2, strlen(t2), "the request body", &e));
    const char t3[] = "{\"a\":\"x\0y\"}";
    assert_false(json_strict_text(t3, sizeof t3 - 1, "the request body", &e));
    assert_non_null(strstr(e.message, "NUL"));
    assert_int_equal(e.kind, JSON_STRICT_NUL);
    const char t4[] = "{\"a\":1}\0";
    assert_false(json_strict_text(t4, sizeof t4 - 1, "the request body", &e));
    assert_int_equal(e.kind, JSON_STRICT_NUL);
}

static void test_other_escapes_are_fine(void **state)
{
    (void)state;
    json_strict_error e;
    /* An escaped backslash followed by the text "u0000" is not a NUL. */
    const char *ok[] = {"{\"a\":\"\\\\u0000\"}", "{\"a\":\"\\u0001\\u00e9\\n\\\"\"}",
                        "{\"a\":\"\\\\\\\\u0000\"}", "{\"a\":\"\\\\\"}", "\\", "{}"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(json_strict_text(ok[i], strlen(ok[i]), "x", &e));
    /* …but three backslashes then u0000 are an escaped backslash and a NUL. */
    const char *bad = "{\"a\":\"\\\\\\u0000\"}";
    assert_false(json_strict_text(bad, strlen(bad), "x", &e));
    assert_true(json_strict_text(NULL, 0, "x", &e));
}

/* What cJSON reads but JSON is not: refused before parsing, as syntax. */
static void test_lenient_syntax_is_refused(void **state)
{
    (void)state;
    json_strict_error e;
    const char *bad[] = {"{\"n\":01}", "{\"n\":1.}", "{\"n\":1.e5}", "{\"n\":-}", "{\"n\":1e}",
                         "{\"n\":09999999}", "[1,-01]", "{\"s\":\"a\tb\"}", "{\"s\":\"a\nb\"}",
                         "{\x01\"a\":1}", "{\"a\":1\x0b}", "{\"n\":1.5.3}", "{\"n\":1e+}",
                         "{\"k\\u0x_t\":1}", "{\"k\":\"\\uZZZZ\"}", "{\"k\":\"\\u12\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(json_strict_text(bad[i], strlen(bad[i]), "the body", &e));
        assert_int_equal(e.kind, JSON_STRICT_SYNTAX);
        assert_non_null(strstr(e.message, "the body is not valid JSON"));
    }
    const char *good[] = {"{\"n\":0,\"m\":-0.5e+10,\"k\":10E-2,\"j\":123}", "[0,1,-1,2.25]",
                          "{\"s\":\"01 1. 1.e5 \\t\\n\\u0001\"}", " {\"a\" :\t[ true , null ]}\r\n",
                          "{\"s\":\"\u00e9\u2028\"}"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(json_strict_text(good[i], strlen(good[i]), "the body", &e));
    assert_int_equal(e.kind, JSON_STRICT_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_level_repeat_is_named),
        cmocka_unit_test(test_nested_repeats_carry_their_path),
        cmocka_unit_test(test_outer_repeat_named_first),
        cmocka_unit_test(test_same_key_in_different_objects_is_fine),
        cmocka_unit_test(test_escaped_spelling_is_the_same_key),
        cmocka_unit_test(test_large_objects),
        cmocka_unit_test(test_keys_made_to_collide_do_not_pile_up),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_nul_is_refused),
        cmocka_unit_test(test_other_escapes_are_fine),
        cmocka_unit_test(test_lenient_syntax_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
