/* test_strfmt.c — the printf-free helpers of util/strfmt.h give byte for
 * byte what their snprintf forms give: every destination size from 0 up
 * past the source, every precision, and integers at their edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/strfmt.h"

static void test_copies_match_snprintf(void **st)
{
    (void)st;
    const char *srcs[] = { "", "a", "tenant-1234", "a string of thirty-two bytes....!", "0123456789abcdef0123456789abcdef0123456789" };
    for (size_t s = 0; s < sizeof srcs / sizeof srcs[0]; s++) {
        size_t sl = strlen(srcs[s]);
        for (size_t n = 0; n <= sl + 2; n++) {
            char want[64], got[64];
            memset(want, 'x', sizeof want);
            memset(got, 'x', sizeof got);
            snprintf(want, n, "%s", srcs[s]);
            str_copy(got, n, srcs[s]);
            assert_memory_equal(want, got, sizeof want);
            for (size_t max = 0; max <= sl + 1; max++) {
                memset(want, 'x', sizeof want);
                memset(got, 'x', sizeof got);
                snprintf(want, n, "%.*s", (int)max, srcs[s]);
                size_t k = str_copy_max(got, n, srcs[s], max);
                assert_memory_equal(want, got, sizeof want);
                if (n) assert_int_equal(k, strlen(got));
            }
        }
    }
    char d[4] = "zzz";
    str_copy(d, sizeof d, NULL);   /* NULL is "" */
    assert_string_equal(d, "");
}

static void test_integers_match_printf(void **st)
{
    (void)st;
    uint64_t us[] = { 0, 1, 9, 10, 99, 100, 12345, 4294967295u, 4294967296u, UINT64_MAX / 10, UINT64_MAX };
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
        char want[32], got[32];
        snprintf(want, sizeof want, "%" PRIu64, us[i]);
        size_t n = fmt_u64(got, us[i]);
        got[n] = '\0';
        assert_string_equal(want, got);
    }
    int64_t is[] = { 0, 1, -1, 9, -9, 10, -10, 1700000000, -1700000000, INT64_MAX, INT64_MIN, INT64_MIN + 1 };
    for (size_t i = 0; i < sizeof is / sizeof is[0]; i++) {
        char want[32], got[32];
        snprintf(want, sizeof want, "%" PRId64, is[i]);
        size_t n = fmt_i64(got, is[i]);
        got[n] = '\0';
        assert_string_equal(want, got);
    }
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
        char want[32], got[32];
        snprintf(want, sizeof want, "%" PRIx64, us[i]);
        size_t n = fmt_hex(got, us[i]);
        got[n] = '\0';
        assert_string_equal(want, got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copies_match_snprintf),
        cmocka_unit_test(test_integers_match_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
