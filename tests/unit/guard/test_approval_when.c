/* test_approval_when.c — unit tests of src/guard/approval_when.c: the glob
 * (with hostile patterns and values in bounded time), JSON pointers, each
 * test of a condition, the fail-safe cases (wrong type, too long, arguments
 * that do not parse), the reason that names the rule, and that a decision
 * binds to the very call it was given for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "guard/approval_when.h"

static bool glob(const char *p, const char *t) { return approval_glob(p, t, strlen(t)); }

static void test_glob(void **unused)
{
    (void)unused;
    assert_true(glob("*@external.com", "eve@external.com"));
    assert_false(glob("*@external.com", "eve@internal.com"));
    assert_false(glob("*@external.com", "eve@external.com.evil"));
    assert_true(glob("a?c", "abc"));
    assert_false(glob("a?c", "ac"));
    assert_true(glob("*", ""));
    assert_true(glob("", ""));
    assert_false(glob("", "x"));
    assert_true(glob("a*b*c", "a123b456c"));
    assert_false(glob("a*b*c", "a123b456"));
    assert_true(glob("\\*lit", "*lit"));
    assert_false(glob("\\*lit", "xlit"));
    assert_true(glob("**", "anything"));
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The patterns that make backtracking matchers exponential: here each costs
 * at most |pattern| × |value| steps. */
static void test_glob_hostile_bounded(void **unused)
{
    (void)unused;
    char *value = malloc(APPROVAL_VALUE_MAX + 1);
    memset(value, 'a', APPROVAL_VALUE_MAX);
    value[APPROVAL_VALUE_MAX] = '\0';
    char pattern[APPROVAL_PATTERN_MAX + 1];
    for (int i = 0; i < APPROVAL_PATTERN_MAX; i += 2) {
        pattern[i] = '*';
        pattern[i + 1] = 'a';
    }
    pattern[APPROVAL_PATTERN_MAX - 1] = 'b';   /* never matches: the worst case */
    pattern[APPROVAL_PATTERN_MAX] = '\0';
    double t0 = now_ms();
    for (int k = 0; k < 10; k++) assert_false(approval_glob(pattern, value, APPROVAL_VALUE_MAX));
    double per = (now_ms() - t0) / 10;
    print_message("worst-case glob (%d-byte pattern, %d-byte value): %.2f ms\n",
                  APPROVAL_PATTERN_MAX, APPROVAL_VALUE_MAX, per);
    assert_true(per < 200);   /* far below: ~2M steps even under the sanitizers */
    free(value);
}

static void test_pointer(void **unused)
{
    (void)unused;
    cJSON *d = cJSON_Parse("{\"a\":{\"b/c\":1,\"d~e\":2,\"\":3},\"list\":[10,20],\"x\":null}");
    assert_ptr_equal(approval_pointer(d, ""), d);
    assert_int_equal(approval_pointer(d, "/a/b~1c")->valueint, 1);
    assert_int_equal(approval_pointer(d, "/a/d~0e")->valueint, 2);
    assert_int_equal(approval_pointer(d, "/a/")->valueint, 3);
    assert_int_equal(approval_pointer(d, "/list/1")->valueint, 20);
    assert_null(approval_pointer(d, "/list/01"));
    assert_null(approval_pointer(d, "/list/2"));
    assert_null(approval_pointer(d, "/list/-1"));
    assert_null(approval_pointer(d, "/a/b~2c"));
    assert_null(approval_pointer(d, "/missing"));
    assert_null(approval_pointer(d, "no-slash"));
    assert_null(approval_pointer(d, "/list/0/deeper"));
    cJSON_Delete(d);
}

static void test_conditions(void **unused)
{
    (void)unused;
    approval_cond conds[] = {
        {.pointer = "/amount", .test = APPROVAL_TEST_OVER, .number = 100},
        {.pointer = "/to", .test = APPROVAL_TEST_MATCHES, .text = "*@external.com"},
    };
    tool_cfg t = {.name = "pay", .approval = TOOL_APPROVAL_WHEN, .approval_when = conds,
                  .n_approval_when = 2};
    char why[300];
    struct { const char *args; bool needed; } cases[] = {
        {"{\"amount\":50,\"to\":\"bob@corp.com\"}", false},
        {"{\"amount\":100,\"to\":\"bob@corp.com\"}", false},      /* over is strict */
        {"{\"amount\":100.5}", true},
        {"{\"amount\":5,\"to\":\"eve@external.com\"}", true},
        {"{\"amount\":\"5000\"}", true},                          /* wrong type: ask */
        {"{\"to\":42}", true},
        {"{}", false},                                            /* names nothing */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *a = cJSON_Parse(cases[i].args);
        why[0] = '\0';
        bool got = approval_needed(&t, a, why, sizeof why);
        if (got != cases[i].needed) fail_msg("case %zu (%s): got %d", i, cases[i].args, got);
        cJSON_Delete(a);
    }
    cJSON *a = cJSON_Parse("{\"amount\":500}");
    assert_true(approval_needed(&t, a, why, sizeof why));
    assert_non_null(strstr(why, "/amount is over 100"));
    assert_null(strstr(why, "500"));                              /* never the value */
    cJSON_Delete(a);
    /* arguments that could not be parsed: any condition counts as met */
    assert_true(approval_needed(&t, NULL, why, sizeof why));

    /* a value too long to judge counts as matching */
    size_t n = APPROVAL_VALUE_MAX + 10;
    char *long_to = malloc(n + 1);
    memset(long_to, 'x', n);
    long_to[n] = '\0';
    a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "to", long_to);
    assert_true(approval_cond_holds(&conds[1], a));
    cJSON_Delete(a);
    free(long_to);

    approval_cond eq = {.pointer = "/mode", .test = APPROVAL_TEST_EQUALS, .text = "delete"};
    approval_cond under = {.pointer = "/n", .test = APPROVAL_TEST_UNDER, .number = 0};
    approval_cond present = {.pointer = "/force", .test = APPROVAL_TEST_PRESENT};
    a = cJSON_Parse("{\"mode\":\"delete\",\"n\":-1,\"force\":false}");
    assert_true(approval_cond_holds(&eq, a));
    assert_true(approval_cond_holds(&under, a));
    assert_true(approval_cond_holds(&present, a));
    cJSON_Delete(a);
    a = cJSON_Parse("{\"mode\":\"deletex\",\"n\":0}");
    assert_false(approval_cond_holds(&eq, a));
    assert_false(approval_cond_holds(&under, a));
    assert_false(approval_cond_holds(&present, a));
    cJSON_Delete(a);

    tool_cfg never = {.name = "n"}, always = {.name = "al", .approval = TOOL_APPROVAL_ALWAYS};
    a = cJSON_Parse("{}");
    assert_false(approval_needed(&never, a, why, sizeof why));
    assert_true(approval_needed(&always, a, why, sizeof why));
    assert_non_null(strstr(why, "always"));
    cJSON_Delete(a);
}

/* A decision binds to the call that was shown: id, tool and arguments. */
static void test_decision_fits_call(void **unused)
{
    (void)unused;
    cJSON *calls = cJSON_Parse("[{\"id\":\"c1\",\"function\":{\"name\":\"pay\",\"arguments\":\"{\\\"amount\\\":500}\"}},"
                               " {\"id\":\"c2\",\"function\":{\"name\":\"wipe\"}}]");
    assert_non_null(calls);
    assert_true(approval_fits_call("c1", "pay", "{\"amount\":500}", calls));
    assert_false(approval_fits_call("c1", "pay", "{\"amount\":5000}", calls));   /* other arguments */
    assert_false(approval_fits_call("c1", "wipe", "{\"amount\":500}", calls));   /* another tool */
    assert_false(approval_fits_call("c3", "pay", "{\"amount\":500}", calls));    /* no such call */
    assert_true(approval_fits_call("c2", "wipe", "{}", calls));                   /* missing arguments: {} */
    assert_false(approval_fits_call(NULL, "pay", "{}", calls));
    cJSON_Delete(calls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_glob_hostile_bounded),
        cmocka_unit_test(test_pointer),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_decision_fits_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
