/* tracer.c — where ended spans go: one queue, one thread that writes them
 * to the store in batches and passes them on to the OTLP exporter.
 *
 * Request threads only push onto the queue (a mutex held for a pointer
 * swap). The tracer thread wakes every OBS_TRACE_FLUSH_MS / 2 (or sooner
 * when a big batch builds up), takes the whole queue, groups it into one
 * row per trace and owner (the spans as a binary blob, span_codec.c: no
 * JSON here), and writes it with one store operation — so a span is readable within OBS_TRACE_FLUSH_MS
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
#include "util/log_limit.h"
#include "util/thread_prio.h"
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
    unsigned flush_waiters;        /* obs_tracer_flush callers: their spans are committed at once */
    pthread_t thread;
    store *st;
    obs_tracer_opts opts;
    bool otlp;
    log_limit drop_log;            /* "spans dropped" at most once a second (under mu) */
} obs_tr = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};
static atomic_bool obs_tr_running;

/* Spans dropped at the queue's bound are counted on /metrics; the log
 * says so too, once a second at most, so that a trace missing under load
 * is not a mystery. */
static void obs_tracer_tell_dropped(uint64_t n)
{
    log_warn("obs: %llu span(s) dropped: the tracer's queue (%d spans) is full, so the traces of "
             "some requests are incomplete (brigade_trace_spans_dropped_total)",
             (unsigned long long)n, OBS_QUEUE_MAX);
}

void obs_tracer_submit(obs_span *s)
{
    if (!atomic_load_explicit(&obs_tr_running, memory_order_acquire)) {
        obs_span_free(s);
        return;
    }
    s->next = NULL;
    bool dropped = false, say = false;
    uint64_t told = 0;
    pthread_mutex_lock(&obs_tr.mu);
    if (obs_tr.qlen >= OBS_QUEUE_MAX || obs_tr.stopping) {
        dropped = true;
        say = !obs_tr.stopping && log_limit_event(&obs_tr.drop_log, &told);
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
        obs_span_free(s);
    }
    if (say) obs_tracer_tell_dropped(told);
}

/* Groups a flush's spans by trace, then owner, then start: each group
 * becomes one row, rows in trace-id byte order (new ids begin with their
 * time, so rows go in as their traces began). The ids are compared as two
 * big-endian words, not by memcmp: a flush sorts up to thousands of spans
 * on the tracer thread, which must not hold a core for long
 * (util/thread_prio.h). */
static uint64_t obs_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static int obs_trace_id_order(const uint8_t *x, const uint8_t *y)
{
    uint64_t a = obs_be64(x), b = obs_be64(y);
    if (a == b) {
        a = obs_be64(x + 8);
        b = obs_be64(y + 8);
    }
    return (a > b) - (a < b);
}

static int obs_span_order(const void *pa, const void *pb)
{
    const obs_span *a = *(obs_span *const *)pa, *b = *(obs_span *const *)pb;
    int c = obs_trace_id_order(a->ctx.trace_id, b->ctx.trace_id);
    if (!c) c = strcmp(a->tenant_id, b->tenant_id);
    if (!c) c = strcmp(a->user_id, b->user_id);
    if (!c) c = (a->start_ns > b->start_ns) - (a->start_ns < b->start_ns);
    return c;
}

static bool obs_same_row(const obs_span *a, const obs_span *b)
{
    return obs_trace_id_order(a->ctx.trace_id, b->ctx.trace_id) == 0 &&
           strcmp(a->tenant_id, b->tenant_id) == 0 && strcmp(a->user_id, b->user_id) == 0;
}

/* The row's columns from its spans (sorted by start); the blob is filled
 * in by the caller, since the shared buffer may still move. */
static void obs_row_of(trace_rec *r, obs_span *const *g, size_t n)
{
    ids_hex(r->trace_id, g[0]->ctx.trace_id, 16);
    memcpy(r->tenant_id, g[0]->tenant_id, sizeof r->tenant_id);
    memcpy(r->user_id, g[0]->user_id, sizeof r->user_id);
    r->start_ns = g[0]->start_ns;
    r->end_ns = g[0]->end_ns;
    const obs_span *root = g[0];
    bool failed = false, have_root = false;
    for (size_t i = 0; i < n; i++) {
        if (g[i]->end_ns > r->end_ns) r->end_ns = g[i]->end_ns;
        if (g[i]->status == OBS_STATUS_ERROR) failed = true;
        if (!have_root && !g[i]->has_parent) {
            root = g[i];
            have_root = true;
        }
    }
    _Static_assert(sizeof r->root_name == sizeof root->name, "root_name holds a span name");
    memcpy(r->root_name, root->name, sizeof r->root_name);
    r->status = failed ? OBS_STATUS_ERROR : (int)root->status;
    r->span_count = (uint32_t)n;
}

/* Rows of one flush, in the blob buffer the tracer thread reuses. */
static buf obs_blobs;

static void obs_tracer_store(obs_span **arr, size_t n, bool behind)
{
    qsort(arr, n, sizeof *arr, obs_span_order);
    trace_rec *rows = xmalloc(n * sizeof *rows);
    size_t *offs = xmalloc(n * sizeof *offs);
    size_t nrows = 0, stored = 0;
    obs_blobs.len = 0;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && obs_same_row(arr[i], arr[j]); j++) {}
        /* Ownerless spans (requests that never authenticated) are never
         * returned by a read: they go to the exporter only. */
        if (!arr[i]->tenant_id[0]) continue;
        obs_row_of(&rows[nrows], arr + i, j - i);
        offs[nrows] = obs_blobs.len;
        obs_blob_encode(&obs_blobs, arr + i, j - i);
        nrows++;
        stored += j - i;
        thread_background_yield();   /* a flush holds up to 16,384 spans */
    }
    for (size_t r = 0; r < nrows; r++) {
        rows[r].blob = (unsigned char *)obs_blobs.data + offs[r];
        rows[r].blob_len = (r + 1 < nrows ? offs[r + 1] : obs_blobs.len) - offs[r];
    }
    int64_t prune = 0;
    if (obs_tr.opts.retention_hours) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        prune = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec -
                (int64_t)obs_tr.opts.retention_hours * 3600 * 1000000000LL;
    }
    if (nrows) {
        /* Behind: with the store's next batch, not a commit of its own
         * (store.h); at a stop, or when a test flushes, at once. */
        store_status st = behind ? store_traces_insert_behind(obs_tr.st, rows, nrows, prune,
                                                              obs_tr.opts.max_spans)
                                 : store_traces_insert(obs_tr.st, rows, nrows, prune, obs_tr.opts.max_spans);
        if (st != STORE_OK) {
            log_error("obs: %zu spans not stored (%s)", stored, store_status_text(st));
            obs_counter_add(obs_series_of(obs_m_spans_dropped(), NULL), stored);
        }
    }
    free(offs);
    free(rows);
    /* A burst's buffer is not kept for ever. */
    if (obs_blobs.cap > (4u << 20)) buf_free(&obs_blobs);
}

static void obs_tracer_write(obs_span *list, size_t n, bool behind)
{
    if (!n) return;
    obs_span **arr = xmalloc(n * sizeof *arr);
    size_t i = 0;
    for (obs_span *s = list; s; s = s->next) arr[i++] = s;

    if (obs_tr.st) obs_tracer_store(arr, n, behind);
    if (obs_tr.otlp) {
        obs_otlp_offer(arr, n);   /* takes the spans */
    } else {
        for (i = 0; i < n; i++) {
            obs_span_free(arr[i]);
            thread_background_yield();   /* thousands of frees: give the core up as they go */
        }
    }
    free(arr);
}

static void *obs_tracer_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tracer");   /* top -H (docs/architecture.md, Threads) */
    /* Its bursts must not hold a core a loop needs (util/thread_prio.h). */
    if (thread_background() != 0) log_debug("obs: the tracer runs at the loops' priority");
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
        bool behind = !stop && !obs_tr.flush_waiters;
        pthread_mutex_unlock(&obs_tr.mu);

        obs_tracer_write(list, n, behind);

        pthread_mutex_lock(&obs_tr.mu);
        obs_tr.finished = upto;
        uint64_t told = 0;
        bool say = log_limit_flush(&obs_tr.drop_log, &told);
        pthread_cond_broadcast(&obs_tr.done);
        if (say) {
            pthread_mutex_unlock(&obs_tr.mu);
            obs_tracer_tell_dropped(told);
            pthread_mutex_lock(&obs_tr.mu);
        }
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
    obs_tr.flush_waiters++;
    pthread_cond_signal(&obs_tr.wake);
    while (obs_tr.finished < want) pthread_cond_wait(&obs_tr.done, &obs_tr.mu);
    obs_tr.flush_waiters--;
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
    buf_free(&obs_blobs);
    atomic_store(&obs_tr_running, false);
    if (obs_tr.otlp) obs_otlp_stop();
    obs_tr.st = NULL;
}
