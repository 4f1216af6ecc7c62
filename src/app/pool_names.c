/* pool_names.c — names libuv's thread-pool workers "pool" in top -H.
 *
 * libuv names none of its threads, and a new thread inherits the name of
 * the thread that creates it. The pool starts on the first deferred job, so
 * without this its workers would appear as more "loop-0" threads (or
 * whichever loop deferred first) and an operator would read store work as
 * loop work. So at start-up, on the main thread, before any loop runs,
 * one job per pool thread is queued: each names its thread and waits
 * until all have started, so that no thread takes two jobs and every
 * worker is named. The wait is bounded: should the pool size be read
 * differently from libuv, start-up loses at most a second, and a worker
 * missed keeps the main thread's name. */
#include "app/pool_names.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

/* As libuv 1.x reads UV_THREADPOOL_SIZE (default 4, 0 means 1, at most 1024). */
static unsigned pool_size(void)
{
    const char *v = getenv("UV_THREADPOOL_SIZE");
    unsigned n = v ? (unsigned)atoi(v) : 4;
    if (n == 0) n = 1;
    if (n > 1024) n = 1024;
    return n;
}

typedef struct pool_naming {
    pthread_mutex_t mu;
    pthread_cond_t  all_started;
    unsigned        started, want;
} pool_naming;

static void name_one(uv_work_t *w)
{
    pool_naming *pn = w->data;
    pthread_setname_np(pthread_self(), "pool");
    pthread_mutex_lock(&pn->mu);
    pn->started++;
    pthread_cond_broadcast(&pn->all_started);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    while (pn->started < pn->want)
        if (pthread_cond_timedwait(&pn->all_started, &pn->mu, &until) != 0) break;
    pthread_mutex_unlock(&pn->mu);
}

static void named(uv_work_t *w, int status)
{
    (void)w;
    (void)status;
}

void app_name_pool_threads(void)
{
    unsigned n = pool_size();
    pool_naming pn = {.mu = PTHREAD_MUTEX_INITIALIZER, .all_started = PTHREAD_COND_INITIALIZER, .want = n};
    uv_work_t *jobs = calloc(n, sizeof *jobs);
    uv_loop_t loop;
    if (!jobs || uv_loop_init(&loop) != 0) {
        free(jobs);
        return;   /* names are a convenience: never a reason not to start */
    }
    for (unsigned i = 0; i < n; i++) {
        jobs[i].data = &pn;
        if (uv_queue_work(&loop, &jobs[i], name_one, named) != 0) break;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(jobs);
}
