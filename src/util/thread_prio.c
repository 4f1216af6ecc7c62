/* thread_prio.c — background threads giving their core up to the loops
 * (see thread_prio.h for why). */
#include "util/thread_prio.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

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
