/* tracer.c — where ended spans go: one queue, one thread that writes them
 * to the store in batches and passes them on to the OTLP exporter.
 *
 * Request threads only push onto the queue (a mutex held for a pointer
 * swap). The tracer thread wakes every OBS_TRACE_FLUSH_MS / 2 (or sooner
 * when a big batch builds up), takes the whole queue, and writes it with
 * one store operation — so a span is readable within OBS_TRACE_FLUSH_MS
 * of its end, and a busy server pays one savepoint per flush, not one
 * transaction per span. The queue is bounded: when the store is stuck,
 * spans are dropped and counted rather than growing memory. */
#include "obs/obs_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "util/log.h"
#include "util/xalloc.h"

#define OBS_QUEUE_MAX 16384        /* spans waiting for the store (~4.5 KB each: ~75 MB at most) */
#define OBS_BATCH_WAKE 1024        /* wake the thread early at this many */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    obs_span *head, *tail;
    size_t qlen;
    uint64_t submitted, finished;  /* spans ever queued / ever written or dropped */
    bool stopping;
    pthread_t thread;
    store *st;
    obs_tracer_opts opts;
    bool otlp;
} obs_tr = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};
static atomic_bool obs_tr_running;

void obs_tracer_submit(obs_span *s)
{
    if (!atomic_load_explicit(&obs_tr_running, memory_order_acquire)) {
        free(s);
        return;
    }
    s->next = NULL;
    bool dropped = false;
    pthread_mutex_lock(&obs_tr.mu);
    if (obs_tr.qlen >= OBS_QUEUE_MAX || obs_tr.stopping) {
        dropped = true;
    } else {
        if (obs_tr.tail) obs_tr.tail->next = s;
        else obs_tr.head = s;
        obs_tr.tail = s;
        obs_tr.qlen++;
        obs_tr.submitted++;
        if (obs_tr.qlen == OBS_BATCH_WAKE) pthread_cond_signal(&obs_tr.wake);
    }
    pthread_mutex_unlock(&obs_tr.mu);
    if (dropped) {
        obs_counter_add(obs_series_of(obs_m_spans_dropped(), NULL), 1);
        free(s);
    }
}

static void obs_span_to_rec(const obs_span *s, span_rec *r)
{
    memset(r, 0, sizeof *r);
    ids_hex(r->trace_id, s->ctx.trace_id, 16);
    ids_hex(r->span_id, s->ctx.span_id, 8);
    if (s->has_parent) ids_hex(r->parent_span_id, s->parent_id, 8);
    snprintf(r->name, sizeof r->name, "%s", s->name);
    r->kind = (int)s->kind;
    snprintf(r->tenant_id, sizeof r->tenant_id, "%s", s->tenant_id);
    snprintf(r->user_id, sizeof r->user_id, "%s", s->user_id);
    r->start_ns = s->start_ns;
    r->end_ns = s->end_ns;
    r->status = (int)s->status;
    snprintf(r->status_message, sizeof r->status_message, "%s", s->status_msg);
    buf b;
    buf_init(&b);
    obs_attrs_json(&b, s);
    r->attributes = buf_detach(&b);
}

static void obs_tracer_write(obs_span *list, size_t n)
{
    if (!n) return;
    obs_span **arr = xmalloc(n * sizeof *arr);
    size_t i = 0;
    for (obs_span *s = list; s; s = s->next) arr[i++] = s;

    if (obs_tr.st) {
        span_rec *recs = xcalloc(n, sizeof *recs);
        for (i = 0; i < n; i++) obs_span_to_rec(arr[i], &recs[i]);
        int64_t prune = 0;
        if (obs_tr.opts.retention_hours) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            prune = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec -
                    (int64_t)obs_tr.opts.retention_hours * 3600 * 1000000000LL;
        }
        store_status st = store_spans_insert(obs_tr.st, recs, n, prune, obs_tr.opts.max_spans);
        if (st != STORE_OK) {
            log_error("obs: %zu spans not stored (%s)", n, store_status_text(st));
            obs_counter_add(obs_series_of(obs_m_spans_dropped(), NULL), n);
        }
        for (i = 0; i < n; i++) free(recs[i].attributes);
        free(recs);
    }
    if (obs_tr.otlp) {
        obs_otlp_offer(arr, n);   /* takes the spans */
    } else {
        for (i = 0; i < n; i++) free(arr[i]);
    }
    free(arr);
}

static void *obs_tracer_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tracer");   /* top -H (docs/architecture.md, Threads) */
    pthread_mutex_lock(&obs_tr.mu);
    for (;;) {
        if (obs_tr.qlen < OBS_BATCH_WAKE && !obs_tr.stopping) {
            /* Half the bound: the other half is for the commit itself. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long ns = ts.tv_nsec + (long)(OBS_TRACE_FLUSH_MS / 2) * 1000000L;
            ts.tv_sec += ns / 1000000000L;
            ts.tv_nsec = ns % 1000000000L;
            pthread_cond_timedwait(&obs_tr.wake, &obs_tr.mu, &ts);
        }
        obs_span *list = obs_tr.head;
        size_t n = obs_tr.qlen;
        uint64_t upto = obs_tr.submitted;
        obs_tr.head = obs_tr.tail = NULL;
        obs_tr.qlen = 0;
        bool stop = obs_tr.stopping;
        pthread_mutex_unlock(&obs_tr.mu);

        obs_tracer_write(list, n);

        pthread_mutex_lock(&obs_tr.mu);
        obs_tr.finished = upto;
        pthread_cond_broadcast(&obs_tr.done);
        if (stop && !obs_tr.head) break;
    }
    pthread_mutex_unlock(&obs_tr.mu);
    return NULL;
}

int obs_tracer_start(const obs_tracer_opts *o, store *st, char *err, size_t errlen)
{
    if (atomic_load(&obs_tr_running)) {
        snprintf(err, errlen, "the tracer is already running");
        return -1;
    }
    obs_tracer_opts def = {.retention_hours = 72, .max_spans = 1000000};
    obs_tr.opts = o ? *o : def;
    obs_tr.st = st;
    obs_tr.stopping = false;
    obs_tr.otlp = obs_tr.opts.otlp_endpoint && obs_tr.opts.otlp_endpoint[0];
    if (obs_tr.otlp && obs_otlp_start(&obs_tr.opts, err, errlen) != 0) return -1;
    /* Register the families now, so /metrics lists them at zero. */
    obs_m_spans_dropped();
    obs_m_otlp_dropped();
    obs_m_otlp_exported();
    int rc = pthread_create(&obs_tr.thread, NULL, obs_tracer_main, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the tracer thread: %s", strerror(rc));
        if (obs_tr.otlp) obs_otlp_stop();
        return -1;
    }
    atomic_store_explicit(&obs_tr_running, true, memory_order_release);
    return 0;
}

void obs_tracer_flush(void)
{
    if (!atomic_load(&obs_tr_running)) return;
    pthread_mutex_lock(&obs_tr.mu);
    uint64_t want = obs_tr.submitted;
    pthread_cond_signal(&obs_tr.wake);
    while (obs_tr.finished < want) pthread_cond_wait(&obs_tr.done, &obs_tr.mu);
    pthread_mutex_unlock(&obs_tr.mu);
}

void obs_tracer_stop(void)
{
    if (!atomic_load(&obs_tr_running)) return;
    pthread_mutex_lock(&obs_tr.mu);
    obs_tr.stopping = true;
    pthread_cond_signal(&obs_tr.wake);
    pthread_mutex_unlock(&obs_tr.mu);
    pthread_join(obs_tr.thread, NULL);
    atomic_store(&obs_tr_running, false);
    if (obs_tr.otlp) obs_otlp_stop();
    obs_tr.st = NULL;
}
