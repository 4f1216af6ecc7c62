/* span_pool.c — spans given back for reuse instead of freed.
 *
 * A span is made on a request's loop thread and freed on the tracer's (or
 * the exporter's). glibc's malloc does not carry memory back across that
 * hand-off cheaply: a loop's malloc of a span (~0.9 KB) cost ~370
 * instructions, and the tracer's free, into an arena another thread
 * allocates from, ~200 — some 2 900 instructions a traced gateway request
 * of five spans (docs/benchmarks.md, session 10). Here the freeing thread
 * gives spans back in one locked step a batch (the tracer frees a chunk of
 * up to 512 at once), and each thread that makes spans takes them back a
 * batch at a time into a small cache of its own, so most spans are made
 * without a lock or a call into malloc.
 *
 * Bounds: the shared pool holds at most OBS_SPANS_KEPT spans (~3.5 MB),
 * a thread's cache OBS_SPAN_CACHE; beyond that spans are freed. A thread's
 * cache goes back to the pool when the thread exits. */
#include "obs/obs_internal.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/xalloc.h"

#define OBS_SPAN_CACHE 64

static struct {
    pthread_mutex_t mu;
    obs_span *spans[OBS_SPANS_KEPT];
    size_t n;
} obs_pool = {.mu = PTHREAD_MUTEX_INITIALIZER};

typedef struct obs_span_cache {
    obs_span *spans[OBS_SPAN_CACHE];
    size_t n;
} obs_span_cache;

static _Thread_local obs_span_cache obs_cache;
static _Thread_local bool obs_cache_keyed;
static pthread_key_t obs_cache_key;
static pthread_once_t obs_cache_key_once = PTHREAD_ONCE_INIT;

/* Puts n spans into the shared pool; what does not fit is freed. */
static void obs_pool_put(obs_span *const *spans, size_t n)
{
    pthread_mutex_lock(&obs_pool.mu);
    size_t room = OBS_SPANS_KEPT - obs_pool.n, kept = n < room ? n : room;
    for (size_t i = 0; i < kept; i++) obs_pool.spans[obs_pool.n++] = spans[i];
    pthread_mutex_unlock(&obs_pool.mu);
    for (size_t i = kept; i < n; i++) free(spans[i]);
}

/* At a thread's exit its cache goes back to the pool (the value is only
 * a marker: the cache is the thread's own _Thread_local, still readable
 * while its destructors run). */
static void obs_cache_exit(void *marker)
{
    (void)marker;
    obs_pool_put(obs_cache.spans, obs_cache.n);
    obs_cache.n = 0;
}

static void obs_cache_key_make(void) { pthread_key_create(&obs_cache_key, obs_cache_exit); }

obs_span *obs_span_alloc(void)
{
    if (!obs_cache.n) {
        pthread_mutex_lock(&obs_pool.mu);
        size_t take = obs_pool.n < OBS_SPAN_CACHE ? obs_pool.n : OBS_SPAN_CACHE;
        for (size_t i = 0; i < take; i++) obs_cache.spans[i] = obs_pool.spans[--obs_pool.n];
        pthread_mutex_unlock(&obs_pool.mu);
        obs_cache.n = take;
        if (take && !obs_cache_keyed) {
            pthread_once(&obs_cache_key_once, obs_cache_key_make);
            pthread_setspecific(obs_cache_key, &obs_cache);
            obs_cache_keyed = true;
        }
    }
    if (obs_cache.n) return obs_cache.spans[--obs_cache.n];
    return xmalloc(sizeof(obs_span));
}

void obs_span_recycle(obs_span *const *spans, size_t n)
{
    if (n) obs_pool_put(spans, n);
}

size_t obs_span_pool_size(void)
{
    pthread_mutex_lock(&obs_pool.mu);
    size_t n = obs_pool.n;
    pthread_mutex_unlock(&obs_pool.mu);
    return n;
}
