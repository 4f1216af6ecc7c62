/* test_thread_prio.c — util/thread_prio.h: a background thread's yield
 * point gives its core up once every THREAD_BACKGROUND_YIELD_US of work,
 * and not at all while the thread is hurried (the store's writer when it
 * is far behind); the count is per thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <time.h>

#include "util/thread_prio.h"

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Call the yield point for ms milliseconds of wall time; yields made. */
static unsigned long work_for(int ms)
{
    unsigned long before = thread_background_yields();
    for (int64_t end = now_us() + ms * 1000; now_us() < end;) thread_background_yield();
    return thread_background_yields() - before;
}

static void *other_thread(void *arg)
{
    *(unsigned long *)arg = thread_background_yields();
    return NULL;
}

static void test_yields_unless_hurried(void **st)
{
    (void)st;
    /* 3 ms of work: a yield every 200 µs (at least one, however the
     * machine schedules this thread) */
    assert_true(work_for(3) >= 1);
    thread_background_hurry(true);
    assert_int_equal(work_for(3), 0);
    thread_background_hurry(false);
    assert_true(work_for(3) >= 1);
    /* another thread's count is its own */
    unsigned long theirs = 99;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &theirs), 0);
    pthread_join(t, NULL);
    assert_int_equal(theirs, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yields_unless_hurried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
