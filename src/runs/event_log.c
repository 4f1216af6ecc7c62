/* event_log.c — a run's events kept for reading again (runs.h, "A run's
 * events, readable again"): GET /v1/runs/{id}/events and a client whose
 * stream broke and comes back with Last-Event-ID.
 *
 * Every event of a run gets a number (its SSE id, from 1) and a copy in the
 * run's log, a bounded ring: at most RUN_LOG_MAX_FRAMES events and
 * RUN_LOG_MAX_BYTES of them per run; older ones are dropped first (a reader
 * who asks for them is told which were skipped; the transcript and
 * GET /v1/runs/{id} still have what they said). The log lives while the run
 * does — paused runs too — and RUN_LOG_LINGER_S after its end, so a client
 * that reconnects just after the last event still reads it; at most
 * RUN_LOG_MAX_ENDED ended logs are kept, oldest forgotten first (one
 * still being read is forgotten too, and freed when its readers stop).
 *
 * Readers ("watchers") live on any loop: an append wakes each with its own
 * uv_async, and the reader takes what is new under the lock. A reader never
 * slows the run down: a slow one falls behind the ring and is told what it
 * skipped. One mutex guards every log; it is held for copies only. */
#include "runs/runs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runs/run_stream.h"
#include "util/log.h"
#include "util/strfmt.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define RUN_LOG_MAX_FRAMES 512
#define RUN_LOG_MAX_BYTES  (128u * 1024)
#define RUN_LOG_LINGER_S   300

typedef struct log_frame {
    uint64_t seq;
    char    *name;                  /* and the JSON, in one allocation */
    char    *json;
    size_t   len;
} log_frame;

struct runs_event_watch {
    run_log          *log;
    uv_async_t        async;
    uint64_t          after;        /* the last seq given */
    runs_event_wake_fn wake;
    void             *arg;
    runs_event_watch *next;
    log_frame        *taken;        /* copies given by the last take */
    size_t            n_taken;
};

struct run_log {
    char       run_id[ID_MAX], tenant_id[ID_MAX], user_id[ID_MAX];
    log_frame *ring;                /* circular: cap slots, n used from head */
    size_t     cap, head, n, bytes;
    uint64_t   next_seq;            /* the next event's number (from 1) */
    bool       ended;
    int64_t    ended_at;            /* unix s */
    runs_event_watch *watchers;
    run_log   *ended_next;          /* the FIFO of ended logs */
    bool       forgotten;           /* swept while read: out of the map, freed by its last reader */
};

struct run_logs {
    pthread_mutex_t mu;
    strmap  *by_id;                 /* run id → run_log* */
    run_log *ended_head, *ended_tail;
    size_t   n_ended;
    size_t   ended_bytes;           /* the ended logs' events, at most RUN_LOG_ENDED_BYTES_MAX */
    run_stream *pub;                /* several instances: every event to Redis too (run_stream.h) */
};

run_logs *run_logs_new(void)
{
    run_logs *l = xcalloc(1, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    l->by_id = xnonnull(strmap_new(NULL));
    return l;
}

static void frame_free(log_frame *f)
{
    free(f->name);
    memset(f, 0, sizeof *f);
}

static void log_free(run_log *g)
{
    for (size_t i = 0; i < g->n; i++) frame_free(&g->ring[(g->head + i) % g->cap]);
    free(g->ring);
    free(g);
}

static bool free_one(const char *key, void *val, void *arg)
{
    (void)key;
    (void)arg;
    run_log *g = val;
    /* watchers are the API's, closed with their requests before this */
    log_free(g);
    return true;
}

void run_logs_set_stream(run_logs *l, run_stream *pub)
{
    pthread_mutex_lock(&l->mu);
    l->pub = pub;
    pthread_mutex_unlock(&l->mu);
}

void run_logs_free(run_logs *l)
{
    if (!l) return;
    strmap_foreach(l->by_id, free_one, NULL);
    strmap_free(l->by_id);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* Forget ended logs past their linger (or past the count), oldest first.
 * A log someone still reads leaves the map and the FIFO like the others
 * (no new reader finds it) and is freed by its last reader's unwatch.
 * The sweep once stopped at such a log instead: one reader that kept its
 * stream open without reading (its connection's writes full, the write
 * timeout restarted by every small event) held back every ended log
 * behind it, and the count and the linger bounded nothing — all tenants'
 * ended runs, ~20 KB each, kept for as long as that reader stayed.
 * Lock held. */
static void sweep_locked(run_logs *l, int64_t now)
{
    while (l->ended_head) {
        run_log *g = l->ended_head;
        bool old = now - g->ended_at > RUN_LOG_LINGER_S || l->n_ended > RUN_LOG_MAX_ENDED ||
                   l->ended_bytes > RUN_LOG_ENDED_BYTES_MAX;
        if (!old) break;   /* FIFO: the rest are younger */
        l->ended_head = g->ended_next;
        if (!l->ended_head) l->ended_tail = NULL;
        l->n_ended--;
        l->ended_bytes -= g->bytes;
        strmap_del(l->by_id, g->run_id);
        if (g->watchers) g->forgotten = true;
        else log_free(g);
    }
}

static run_log *log_get_locked(run_logs *l, const char *run_id, const char *tenant_id, const char *user_id)
{
    run_log *g = strmap_get(l->by_id, run_id);
    if (g) return g;
    g = calloc(1, sizeof *g);
    if (!g) return NULL;
    str_copy(g->run_id, sizeof g->run_id, run_id);
    str_copy(g->tenant_id, sizeof g->tenant_id, tenant_id);
    str_copy(g->user_id, sizeof g->user_id, user_id);
    g->next_seq = 1;
    if (strmap_put(l->by_id, g->run_id, g) != 0) {
        free(g);
        return NULL;
    }
    return g;
}

static void wake_all_locked(run_log *g)
{
    for (runs_event_watch *w = g->watchers; w; w = w->next) uv_async_send(&w->async);
}

uint64_t run_log_append(run_logs *l, const char *run_id, const char *tenant_id, const char *user_id,
                        const char *name, const char *json, size_t len)
{
    if (!l || !run_id || !run_id[0]) return 0;
    size_t nl = strlen(name);
    char *block = malloc(nl + 1 + len + 1);
    if (!block) return 0;
    memcpy(block, name, nl + 1);
    memcpy(block + nl + 1, json, len);
    block[nl + 1 + len] = '\0';
    pthread_mutex_lock(&l->mu);
    sweep_locked(l, time_now_unix());
    run_log *g = log_get_locked(l, run_id, tenant_id, user_id);
    if (!g || g->ended) {   /* no memory, or an event after the end: not kept */
        pthread_mutex_unlock(&l->mu);
        free(block);
        return 0;
    }
    if (g->n == g->cap && g->cap < RUN_LOG_MAX_FRAMES) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        log_frame *r = calloc(cap, sizeof *r);
        if (r) {
            for (size_t i = 0; i < g->n; i++) r[i] = g->ring[(g->head + i) % g->cap];
            free(g->ring);
            g->ring = r;
            g->cap = cap;
            g->head = 0;
        }
    }
    /* room: drop the oldest until this one fits both bounds */
    while (g->n && (g->n == g->cap || g->bytes + len > RUN_LOG_MAX_BYTES)) {
        log_frame *old = &g->ring[g->head];
        g->bytes -= old->len;
        frame_free(old);
        g->head = (g->head + 1) % g->cap;
        g->n--;
    }
    uint64_t seq = g->next_seq++;
    if (g->cap) {
        log_frame *f = &g->ring[(g->head + g->n) % g->cap];
        f->seq = seq;
        f->name = block;
        f->json = block + nl + 1;
        f->len = len;
        g->n++;
        g->bytes += len;
        block = NULL;
    }
    /* under the lock: the events of one run reach the queue in order */
    if (l->pub) run_stream_publish(l->pub, run_id, seq, name, json, len);
    wake_all_locked(g);
    pthread_mutex_unlock(&l->mu);
    free(block);
    return seq;
}

void run_log_end(run_logs *l, const char *run_id)
{
    if (!l || !run_id) return;
    pthread_mutex_lock(&l->mu);
    run_log *g = strmap_get(l->by_id, run_id);
    if (g && !g->ended) {
        g->ended = true;
        g->ended_at = time_now_unix();
        if (l->ended_tail) l->ended_tail->ended_next = g;
        else l->ended_head = g;
        l->ended_tail = g;
        l->n_ended++;
        l->ended_bytes += g->bytes;   /* an ended log no longer grows */
        if (l->pub) run_stream_end(l->pub, run_id, g->next_seq - 1);
        wake_all_locked(g);
    }
    pthread_mutex_unlock(&l->mu);
}

void runs_set_stream(runs *r, run_stream *s)
{
    r->stream = s;
    run_logs_set_stream(r->logs, s);
}

run_stream *runs_stream(runs *r) { return r ? r->stream : NULL; }

/* ---- readers ---- */

static void watch_async_cb(uv_async_t *a)
{
    runs_event_watch *w = a->data;
    if (w->wake) w->wake(w->arg);
}

static void taken_free(runs_event_watch *w)
{
    for (size_t i = 0; i < w->n_taken; i++) free(w->taken[i].name);
    free(w->taken);
    w->taken = NULL;
    w->n_taken = 0;
}

runs_event_watch *runs_events_watch(runs *r, const char *tenant_id, const char *user_id, const char *run_id,
                                    uint64_t after, uv_loop_t *loop, runs_event_wake_fn wake, void *arg)
{
    run_logs *l = r ? r->logs : NULL;
    if (!l || !run_id) return NULL;
    pthread_mutex_lock(&l->mu);
    run_log *g = strmap_get(l->by_id, run_id);
    /* another user's run is as unknown as no run */
    if (!g || strcmp(g->tenant_id, tenant_id) != 0 || strcmp(g->user_id, user_id) != 0) {
        pthread_mutex_unlock(&l->mu);
        return NULL;
    }
    runs_event_watch *w = calloc(1, sizeof *w);
    if (!w || uv_async_init(loop, &w->async, watch_async_cb) != 0) {
        pthread_mutex_unlock(&l->mu);
        free(w);
        return NULL;
    }
    w->async.data = w;
    w->log = g;
    w->after = after;
    w->wake = wake;
    w->arg = arg;
    w->next = g->watchers;
    g->watchers = w;
    uv_async_send(&w->async);   /* what is there already */
    pthread_mutex_unlock(&l->mu);
    return w;
}

size_t runs_events_take(runs *r, runs_event_watch *w, runs_event_frame *out, size_t max, bool *ended,
                        uint64_t *skipped_from, uint64_t *skipped_to)
{
    taken_free(w);
    *ended = false;
    *skipped_from = *skipped_to = 0;
    run_logs *l = r->logs;
    pthread_mutex_lock(&l->mu);
    run_log *g = w->log;
    uint64_t first = g->n ? g->ring[g->head].seq : g->next_seq;
    if (w->after + 1 < first) {
        /* dropped from the ring before this reader got them */
        *skipped_from = w->after + 1;
        *skipped_to = first - 1;
        w->after = first - 1;
    }
    size_t k = 0;
    w->taken = calloc(max ? max : 1, sizeof *w->taken);
    for (size_t i = 0; w->taken && i < g->n && k < max; i++) {
        const log_frame *f = &g->ring[(g->head + i) % g->cap];
        if (f->seq <= w->after) continue;
        size_t nl = strlen(f->name);
        char *copy = malloc(nl + 1 + f->len + 1);
        if (!copy) break;
        memcpy(copy, f->name, nl + 1 + f->len + 1);
        w->taken[k] = (log_frame){.seq = f->seq, .name = copy, .json = copy + nl + 1, .len = f->len};
        out[k] = (runs_event_frame){.seq = f->seq, .name = copy, .json = copy + nl + 1, .len = f->len};
        k++;
        w->after = f->seq;
    }
    w->n_taken = k;
    *ended = g->ended && w->after + 1 >= g->next_seq;
    pthread_mutex_unlock(&l->mu);
    return k;
}

static void watch_closed(uv_handle_t *h)
{
    runs_event_watch *w = h->data;
    taken_free(w);
    free(w);
}

void runs_events_unwatch(runs *r, runs_event_watch *w)
{
    if (!w) return;
    run_logs *l = r->logs;
    pthread_mutex_lock(&l->mu);
    run_log *g = w->log;
    for (runs_event_watch **pp = &g->watchers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    if (g->forgotten && !g->watchers) log_free(g);   /* swept while read: see sweep_locked */
    w->log = NULL;
    pthread_mutex_unlock(&l->mu);
    w->wake = NULL;
    uv_close((uv_handle_t *)&w->async, watch_closed);
}
