/* test_log_limit.c — util/log_limit.h: the first event is logged at once,
 * events within the next second only counted, and the next line stands for
 * every one of them; a quiet second later, a single event is logged alone;
 * a burst that stopped inside its second is told by a flush. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "util/log_limit.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_one_line_a_second_counts_the_rest(void **st)
{
    (void)st;
    log_limit l = {0};
    uint64_t n = 0;
    assert_true(log_limit_event(&l, &n));        /* the first: at once */
    assert_int_equal(n, 1);
    for (int i = 0; i < 9999; i++) assert_false(log_limit_event(&l, &n));
    sleep_ms(1050);
    assert_true(log_limit_event(&l, &n));        /* a second on: all of them */
    assert_int_equal(n, 10000);
    assert_false(log_limit_event(&l, &n));
    sleep_ms(1050);
    assert_true(log_limit_event(&l, &n));        /* the one left over, and this one */
    assert_int_equal(n, 2);
    sleep_ms(1050);
    assert_true(log_limit_event(&l, &n));        /* quiet since: alone */
    assert_int_equal(n, 1);
}

static void test_a_burst_that_stopped_is_flushed(void **st)
{
    (void)st;
    log_limit l = {0};
    uint64_t n = 0;
    assert_false(log_limit_flush(&l, &n));       /* nothing counted: nothing to tell */
    assert_true(log_limit_event(&l, &n));
    for (int i = 0; i < 499; i++) assert_false(log_limit_event(&l, &n));
    assert_false(log_limit_flush(&l, &n));       /* not yet a second */
    sleep_ms(1050);
    assert_true(log_limit_flush(&l, &n));        /* the burst, though no event came */
    assert_int_equal(n, 499);
    assert_false(log_limit_flush(&l, &n));
    assert_false(log_limit_event(&l, &n));       /* the flush's line started a new second */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_line_a_second_counts_the_rest),
        cmocka_unit_test(test_a_burst_that_stopped_is_flushed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
