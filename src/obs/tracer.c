/* tracer.c — where ended spans go: one queue, one thread that encodes them
 * into trace rows and hands the rows to the store's writer, and passes the
 * spans on to the OTLP exporter.
 *
 * Request threads only push onto the queue (a mutex held for a pointer
 * swap). The tracer thread wakes every OBS_TRACE_FLUSH_MS / 2 (or sooner
 * when a big batch builds up), takes the whole queue, groups it into one
 * row per trace and owner (the spans as a binary blob, span_codec.c: no
 * JSON here), and frees the spans. The rows gather in a flush; a flush is
 * handed to the writer with one store operation that is not waited for
 * (store_traces_insert_async), and while the writer commits it the next
 * one gathers. So a span is readable within OBS_TRACE_FLUSH_MS of its end,
 * a busy server pays one savepoint per flush, and the tracer never sits
 * idle while its queue fills: it waited for every commit once, and at
 * saturation dropped three spans in four (docs/benchmarks.md, session 9).
 * Both bounds hold memory: the queue (spans, ~0.9 KB each) and the flush
 * gathering while another commits (encoded rows, ~600 bytes a request).
 * Past them spans are dropped and counted rather than growing memory. */
#include "obs/obs_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
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

#define OBS_QUEUE_MAX 32768        /* spans waiting for the tracer (~0.9 KB each: ~28 MB at most) */
#define OBS_BATCH_WAKE 1024        /* wake the thread early at this many */
#define OBS_TAKE_CHUNK 512         /* spans encoded together (obs_tracer_take) */
#define OBS_FLUSH_MAX_ROWS 65536   /* rows gathering while another flush commits ... */
#define OBS_FLUSH_MAX_BYTES (32u << 20)   /* ... and their encoded spans */
#define OBS_FLUSH_KEEP_BYTES (4u << 20)   /* a committed flush's buffer kept up to this */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    obs_span **queue;              /* qlen spans, in the order they ended */
    obs_span **spare;              /* the other array: the tracer's while it takes */
    size_t qlen;
    uint64_t submitted, finished;  /* spans ever queued / ever written or dropped */
    struct obs_flush *in_flight;   /* the flush the writer has, if any */
    struct obs_flush *spare_flush; /* a committed one, emptied, for the next */
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
    bool dropped = false, say = false;
    uint64_t told = 0;
    pthread_mutex_lock(&obs_tr.mu);
    if (obs_tr.qlen >= OBS_QUEUE_MAX || obs_tr.stopping) {
        dropped = true;
        say = !obs_tr.stopping && log_limit_event(&obs_tr.drop_log, &told);
    } else {
        obs_tr.queue[obs_tr.qlen++] = s;
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

/* Groups a flush's spans by owner, then trace, then start: each group of
 * one trace and owner becomes one row, an owner's rows follow one another
 * in trace-id byte order (new ids begin with their time, so rows go in as
 * their traces began), and so the store can pack an owner's traces of the
 * same 10 ms into one row (store/trace_pack.h). Owners are ordered by a
 * key (span.c), not by their ids: two owners whose keys collide may then
 * interleave in a trace both wrote to, which only splits their rows (a
 * read joins a trace's rows), while obs_same_row still compares the ids.
 *
 * The sort runs on the tracer thread for every span, so it sorts plain
 * keys read once from each span (the trace id as two big-endian words),
 * compared inline, rather than calling back into a comparison that reads
 * the spans again: glibc's qsort with such a callback was a quarter of the
 * tracer's instructions (docs/benchmarks.md, session 10). */
static uint64_t obs_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

typedef struct obs_sort_item {
    uint64_t owner, id_hi, id_lo;
    int64_t start;
    obs_span *span;
} obs_sort_item;

static inline bool obs_item_before(const obs_sort_item *a, const obs_sort_item *b)
{
    if (a->owner != b->owner) return a->owner < b->owner;
    if (a->id_hi != b->id_hi) return a->id_hi < b->id_hi;
    if (a->id_lo != b->id_lo) return a->id_lo < b->id_lo;
    return a->start < b->start;
}

/* Stable merge sort of n items, tmp as big: runs of 8 by insertion, then
 * merged bottom-up (spans come in the order they ended, so a request's
 * few spans are already close together). */
static void obs_sort_items(obs_sort_item *a, obs_sort_item *tmp, size_t n)
{
    enum { RUN = 8 };
    for (size_t lo = 0; lo < n; lo += RUN) {
        size_t hi = lo + RUN < n ? lo + RUN : n;
        for (size_t i = lo + 1; i < hi; i++) {
            obs_sort_item x = a[i];
            size_t j = i;
            for (; j > lo && obs_item_before(&x, &a[j - 1]); j--) a[j] = a[j - 1];
            a[j] = x;
        }
    }
    obs_sort_item *src = a, *dst = tmp;
    for (size_t width = RUN; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) dst[k++] = obs_item_before(&src[j], &src[i]) ? src[j++] : src[i++];
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        obs_sort_item *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

/* The spans in row order, in place (n at most OBS_TAKE_CHUNK). */
static void obs_spans_sort(obs_span **arr, size_t n)
{
    obs_sort_item items[OBS_TAKE_CHUNK], tmp[OBS_TAKE_CHUNK];
    for (size_t i = 0; i < n; i++) {
        const obs_span *s = arr[i];
        items[i] = (obs_sort_item){s->owner_key, obs_be64(s->ctx.trace_id), obs_be64(s->ctx.trace_id + 8),
                                   s->start_ns, arr[i]};
    }
    obs_sort_items(items, tmp, n);
    for (size_t i = 0; i < n; i++) arr[i] = items[i].span;
}

static bool obs_same_row(const obs_span *a, const obs_span *b)
{
    return memcmp(a->ctx.trace_id, b->ctx.trace_id, 16) == 0 &&
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
    /* A span that continues a client's traceparent is not made here, but
     * when any span of the trace is, the id is this server's. */
    r->local_id = false;
    for (size_t i = 0; i < n; i++) {
        if (g[i]->ctx.made_here) r->local_id = true;
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

/* Rows gathered for one store operation. The blobs are one buffer; each
 * row's blob pointer is set when the flush is handed over, since the
 * buffer may move while it gathers. */
typedef struct obs_flush {
    trace_rec *rows;
    size_t nrows, cap;
    buf blobs;
    size_t spans;      /* spans in the rows (counted as dropped if the write fails) */
    uint64_t upto;     /* obs_tr.submitted when its last spans were taken */
} obs_flush;

static obs_flush *obs_flush_new(uint64_t upto)
{
    obs_flush *f = xcalloc(1, sizeof *f);
    f->upto = upto;
    return f;
}

static void obs_flush_free(obs_flush *f)
{
    if (!f) return;
    free(f->rows);
    buf_free(&f->blobs);
    free(f);
}

/* Full: take no more spans into it until the one being committed is done
 * (the spans then wait in the queue, and past its bound are dropped). */
static bool obs_flush_full(const obs_flush *f)
{
    return f->nrows >= OBS_FLUSH_MAX_ROWS || f->blobs.len >= OBS_FLUSH_MAX_BYTES;
}

/* Sorts n spans (at most OBS_TAKE_CHUNK) into rows appended to f. */
static void obs_flush_add(obs_flush *f, obs_span **arr, size_t n)
{
    obs_spans_sort(arr, n);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && obs_same_row(arr[i], arr[j]); j++) {}
        /* Ownerless spans (requests that never authenticated) are never
         * returned by a read: they go to the exporter only. */
        if (!arr[i]->tenant_id[0]) continue;
        if (f->nrows == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 256;
            f->rows = xrealloc(f->rows, f->cap * sizeof *f->rows);
        }
        trace_rec *r = &f->rows[f->nrows++];
        obs_row_of(r, arr + i, j - i);
        size_t before = f->blobs.len;
        obs_blob_encode(&f->blobs, arr + i, j - i);
        r->blob = NULL;
        r->blob_len = f->blobs.len - before;
        f->spans += j - i;
        thread_background_yield();   /* between rows, as the writer does */
    }
}

/* The spans of one take, encoded into f, then gone to the exporter or
 * freed, OBS_TAKE_CHUNK at a time. A span was written on another core, so
 * each is a cache miss at first; the chunk's spans are prefetched together
 * (the queue is an array, not a list, so that the misses overlap rather
 * than follow one another), and a chunk, unlike a whole queue, stays in
 * the cache through its passes (sort, encode, free). The spans of one
 * request end together, so a chunk's edge seldom splits a trace into two
 * rows (which a read joins anyway). */
static void obs_tracer_take(obs_flush *f, obs_span **arr, size_t n)
{
    for (size_t at = 0; at < n; at += OBS_TAKE_CHUNK) {
        size_t k = n - at < OBS_TAKE_CHUNK ? n - at : OBS_TAKE_CHUNK;
        obs_span **chunk = arr + at;
        for (size_t i = 0; i < k; i++) {
            __builtin_prefetch(chunk[i]);                                  /* ids (the sort) */
            __builtin_prefetch((const char *)chunk[i] + offsetof(obs_span, tenant_id));
        }
        if (obs_tr.st) obs_flush_add(f, chunk, k);
        if (obs_tr.otlp) {
            obs_otlp_offer(chunk, k);   /* takes the spans */
        } else {
            obs_span_free_many(chunk, k);
        }
        thread_background_yield();
    }
}

/* A flush's write is over (committed or failed): on the writer's thread,
 * or on the tracer's when it was not queued. */
static void obs_tracer_committed(void *arg, store_status status)
{
    obs_flush *f = arg;
    if (status != STORE_OK) {
        log_error("obs: %zu spans not stored (%s)", f->spans, store_status_text(status));
        obs_counter_add(obs_series_of(obs_m_spans_dropped(), NULL), f->spans);
    }
    pthread_mutex_lock(&obs_tr.mu);
    obs_tr.finished = f->upto;
    obs_tr.in_flight = NULL;
    /* Kept for the next flush, buffers and all (growing them again was a
     * tenth of the encoding), unless a burst made them big. */
    if (!obs_tr.spare_flush && f->blobs.cap <= OBS_FLUSH_KEEP_BYTES) {
        f->nrows = 0;
        f->spans = 0;
        f->blobs.len = 0;
        obs_tr.spare_flush = f;
        f = NULL;
    }
    pthread_cond_broadcast(&obs_tr.done);
    pthread_cond_signal(&obs_tr.wake);
    pthread_mutex_unlock(&obs_tr.mu);
    obs_flush_free(f);
}

/* Hands f to the writer (called without obs_tr.mu, with f already
 * obs_tr.in_flight). now: commit it at once (a stop, a test's flush). */
static void obs_tracer_hand_over(obs_flush *f, bool now)
{
    for (size_t r = 0, off = 0; r < f->nrows; r++) {
        f->rows[r].blob = (unsigned char *)f->blobs.data + off;
        off += f->rows[r].blob_len;
    }
    int64_t prune = 0;
    if (obs_tr.opts.retention_hours) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        prune = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec -
                (int64_t)obs_tr.opts.retention_hours * 3600 * 1000000000LL;
    }
    store_status st = store_traces_insert_async(obs_tr.st, f->rows, f->nrows, prune, obs_tr.opts.max_spans,
                                                now, obs_tracer_committed, f);
    if (st != STORE_OK) obs_tracer_committed(f, st);
}

static void *obs_tracer_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tracer");   /* top -H (docs/architecture.md, Threads) */
    /* At the loops' priority, not niced: a niced tracer fell behind a
     * saturated server and dropped spans (util/thread_prio.h). Its bursts
     * yield the core between chunks instead. */
    obs_flush *gathering = obs_flush_new(0);
    pthread_mutex_lock(&obs_tr.mu);
    for (;;) {
        bool urgent = obs_tr.stopping || obs_tr.flush_waiters;
        bool can_take = obs_tr.qlen && !obs_flush_full(gathering);
        bool can_hand = !obs_tr.in_flight && gathering->upto > obs_tr.finished;
        if (!can_hand && !(can_take && (urgent || obs_tr.qlen >= OBS_BATCH_WAKE))) {
            if (obs_tr.stopping && !obs_tr.qlen && !obs_tr.in_flight) break;
            /* Half the bound: the other half is for the commit itself.
             * Woken early by a big queue, a flush's commit, or a stop. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long ns = ts.tv_nsec + (long)(OBS_TRACE_FLUSH_MS / 2) * 1000000L;
            ts.tv_sec += ns / 1000000000L;
            ts.tv_nsec = ns % 1000000000L;
            if (pthread_cond_timedwait(&obs_tr.wake, &obs_tr.mu, &ts) != ETIMEDOUT) continue;
        }
        if (obs_tr.qlen && !obs_flush_full(gathering)) {
            obs_span **taken = obs_tr.queue;
            size_t n = obs_tr.qlen;
            gathering->upto = obs_tr.submitted;
            obs_tr.queue = obs_tr.spare;   /* the spans that end meanwhile go there */
            obs_tr.spare = NULL;
            obs_tr.qlen = 0;
            pthread_mutex_unlock(&obs_tr.mu);
            /* An eighth of the queue (4 096 spans, four wakes' worth) is a
             * tracer falling behind: no yields until it has caught up
             * (util/thread_prio.h). Yielding there cost it more than its
             * work, and spans were dropped (docs/benchmarks.md). */
            thread_background_hurry(n >= OBS_QUEUE_MAX / 8);
            obs_tracer_take(gathering, taken, n);
            pthread_mutex_lock(&obs_tr.mu);
            obs_tr.spare = taken;
        }
        if (!obs_tr.in_flight && gathering->upto > obs_tr.finished) {
            obs_flush *f = gathering;
            if (obs_tr.spare_flush) {
                gathering = obs_tr.spare_flush;
                obs_tr.spare_flush = NULL;
                gathering->upto = f->upto;
            } else {
                gathering = obs_flush_new(f->upto);
            }
            if (!f->nrows) {
                /* nothing for the store (ownerless spans only) */
                obs_tr.finished = f->upto;
                pthread_cond_broadcast(&obs_tr.done);
                obs_flush_free(f);
            } else {
                obs_tr.in_flight = f;
                bool now = obs_tr.stopping || obs_tr.flush_waiters;
                pthread_mutex_unlock(&obs_tr.mu);
                obs_tracer_hand_over(f, now);
                pthread_mutex_lock(&obs_tr.mu);
            }
        }
        uint64_t told = 0;
        if (log_limit_flush(&obs_tr.drop_log, &told)) {
            pthread_mutex_unlock(&obs_tr.mu);
            obs_tracer_tell_dropped(told);
            pthread_mutex_lock(&obs_tr.mu);
        }
    }
    obs_flush_free(obs_tr.spare_flush);
    obs_tr.spare_flush = NULL;
    pthread_mutex_unlock(&obs_tr.mu);
    obs_flush_free(gathering);
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
    if (!obs_tr.queue) obs_tr.queue = xmalloc(OBS_QUEUE_MAX * sizeof *obs_tr.queue);
    if (!obs_tr.spare) obs_tr.spare = xmalloc(OBS_QUEUE_MAX * sizeof *obs_tr.spare);
    obs_tr.qlen = 0;
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

size_t obs_tracer_queued(void)
{
    pthread_mutex_lock(&obs_tr.mu);
    size_t n = obs_tr.qlen;
    pthread_mutex_unlock(&obs_tr.mu);
    return n;
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
    pthread_mutex_lock(&obs_tr.mu);   /* a late submit sees stopping and drops its span */
    free(obs_tr.queue);
    free(obs_tr.spare);
    obs_tr.queue = obs_tr.spare = NULL;
    obs_tr.qlen = 0;
    pthread_mutex_unlock(&obs_tr.mu);
    if (obs_tr.otlp) obs_otlp_stop();
    obs_tr.st = NULL;
}
