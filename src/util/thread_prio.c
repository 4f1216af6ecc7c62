/* thread_prio.c — lowering a background thread's CPU priority (see
 * thread_prio.h for why). */
#include "util/thread_prio.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

int thread_background(void)
{
    /* On Linux, nice is a per-thread attribute: PRIO_PROCESS with a
     * thread id changes that thread alone. */
    id_t tid = (id_t)gettid();
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, tid);
    if (cur == -1 && errno != 0) return -1;
    int want = cur + THREAD_BACKGROUND_NICE;
    if (want > 19) want = 19;
    return setpriority(PRIO_PROCESS, tid, want) == 0 ? 0 : -1;
}

static _Thread_local int64_t thread_last_yield_us;
static _Thread_local bool thread_hurried;
static _Thread_local unsigned long thread_yields;

void thread_background_hurry(bool on) { thread_hurried = on; }

unsigned long thread_background_yields(void) { return thread_yields; }

void thread_background_yield(void)
{
    if (thread_hurried) return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    if (us - thread_last_yield_us < THREAD_BACKGROUND_YIELD_US) return;
    thread_last_yield_us = us;
    thread_yields++;
    sched_yield();
}
