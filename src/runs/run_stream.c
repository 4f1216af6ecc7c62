/* run_stream.c — a run's events in Redis for the other instances
 * (run_stream.h; docs/scale-out.md, "Run events from any instance").
 *
 * One Redis Stream per run, key PREFIX "run:" ID ":events". Each event is
 * an entry whose id is "SEQ-0" — the event's own number, so every instance
 * serves the same SSE ids and a Last-Event-ID N is the range after "N-0" —
 * with fields n (name) and d (JSON). The run's end is one more entry,
 * "LAST-1" (LAST: its last event's number), with the field end: it sorts
 * after the last event and before any later one. XADD MAXLEN ~ 512 bounds
 * a stream like the event log's ring; the key expires RUN_STREAM_IDLE_S
 * after a live run's last event (an owner killed mid-run leaves no end)
 * and RUN_STREAM_LINGER_S after the end, as the event log forgets.
 *
 * Followers poll: every RUN_STREAM_POLL_MS each follower with room in its
 * buffer and no command in flight sends one XRANGE from where it is. We
 * chose polling over XREAD BLOCK or pub/sub: one non-blocking connection
 * serves publishing and every follower (XREAD BLOCK would hold a
 * connection per wait, or delay a new follower until the block times out),
 * a new follower is answered at once, a slow client simply stops being
 * polled (its buffer is full) so Redis keeps the backlog rather than us,
 * and the cost is bounded: at most RUN_STREAM_MAX_READERS small commands
 * per poll, an added delay of at most RUN_STREAM_POLL_MS per event.
 *
 * Threads: this module's thread runs its own libuv loop with the hiredis
 * connection; callers touch only the queue and the readers, under mu. */
#include "runs/run_stream.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/timeutil.h"

#define RS_ID_MAX        72
#define RS_PUB_INFLIGHT  512           /* publish commands awaiting Redis's reply */
#define RS_QUEUE_MAX_BYTES (8u * 1024 * 1024) /* … and their bytes */
#define RS_READER_MAX_BYTES (256u * 1024) /* a follower with this much buffered is not polled */
#define RS_UNREACHABLE_MS 1000         /* a new follower waits this long for a connection */
#define RS_CONNECT_TIMEOUT_MS 1000     /* a connection attempt, then another */
#define RS_REPLY_TIMEOUT_MS 2000       /* a command unanswered this long: the connection is dead */
#define RS_PING_MS        1000         /* an idle connection is checked this often */

typedef struct rs_item {
    struct rs_item *next;
    bool     end;
    uint64_t seq;
    char     run_id[RS_ID_MAX];
    char    *name, *json;              /* one allocation (name first) */
    size_t   len;
} rs_item;

struct run_stream_reader {
    run_stream        *s;
    run_stream_reader *next;
    char               run_id[RS_ID_MAX];
    uint64_t           after;          /* the last event buffered */
    run_stream_state   state;
    bool               ended_seen, exists_known, gone;
    int                inflight;       /* commands awaiting a reply */
    uint64_t           born_ms;
    run_stream_frame   buf[RUN_STREAM_READER_FRAMES];
    size_t             nbuf, buf_bytes;
    uint64_t           skip_from, skip_to;
    /* the reader's loop only */
    run_stream_frame   taken[RUN_STREAM_READER_FRAMES];
    size_t             ntaken;
    uv_async_t        *async;
    run_stream_wake_fn wake;
    void              *arg;
};

struct run_stream {
    char              *host, *prefix;
    int                port, db;
    pthread_t          thread;
    uv_loop_t          loop;
    uv_async_t         wake;
    uv_timer_t         tick, retry;
    redisAsyncContext *ac;             /* the thread's */
    bool               up, lost;
    uint64_t           connect_ms;     /* when the attempt in progress began */
    int                awaiting;       /* commands sent with a callback, not answered yet */
    uint64_t           heard_ms;       /* the last reply, or when awaiting went from 0 */
    int                pub_inflight;
    pthread_mutex_t    mu;             /* what follows */
    bool               stopping;
    rs_item           *qhead, *qtail;
    size_t             qn, qbytes;
    run_stream_reader *readers;
    size_t             nreaders;       /* followers not unfollowed */
    atomic_uint_fast64_t dropped, published;
    atomic_bool        up_seen;        /* up, for other threads */
    atomic_bool        warned;
};

static void rs_key(const run_stream *s, const char *run_id, char *out, size_t n)
{
    snprintf(out, n, "%srun:%s:events", s->prefix, run_id);
}

void run_stream_stats_get(run_stream *s, run_stream_stats *out)
{
    pthread_mutex_lock(&s->mu);
    out->followers = s->nreaders;
    pthread_mutex_unlock(&s->mu);
    out->up = atomic_load(&s->up_seen);
    out->published = atomic_load(&s->published);
    out->dropped = atomic_load(&s->dropped);
}

static void rs_drop(run_stream *s, const char *why)
{
    atomic_fetch_add(&s->dropped, 1);
    if (!atomic_exchange(&s->warned, true))
        log_warn("run events: an event was not published to redis (%s); other instances miss it", why);
}

static uint64_t rs_now_ms(void) { return time_mono_ns() / 1000000; }

/* Every command sent with a callback is counted until its reply (or the
 * NULL reply of a closed connection): how a dead connection is noticed. */
static void rs_sent(run_stream *s)
{
    if (s->awaiting++ == 0) s->heard_ms = rs_now_ms();
}

static void rs_heard(run_stream *s)
{
    s->awaiting--;
    s->heard_ms = rs_now_ms();
}

/* ---- owner side ---- */

static void rs_enqueue(run_stream *s, rs_item *it)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->qn >= RUN_STREAM_QUEUE_MAX || s->qbytes + it->len > RS_QUEUE_MAX_BYTES) {
        pthread_mutex_unlock(&s->mu);
        free(it->name);
        free(it);
        rs_drop(s, "the queue is full: redis is slow or away");
        return;
    }
    if (s->qtail) s->qtail->next = it;
    else s->qhead = it;
    s->qtail = it;
    s->qn++;
    s->qbytes += it->len;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->wake);
}

void run_stream_publish(run_stream *s, const char *run_id, uint64_t seq, const char *name, const char *json,
                        size_t len)
{
    if (!s || !run_id || !seq || strlen(run_id) >= RS_ID_MAX) return;
    rs_item *it = calloc(1, sizeof *it);
    size_t nl = strlen(name);
    char *block = it ? malloc(nl + 1 + len + 1) : NULL;
    if (!block) {
        free(it);
        rs_drop(s, "out of memory");
        return;
    }
    memcpy(block, name, nl + 1);
    memcpy(block + nl + 1, json, len);
    block[nl + 1 + len] = '\0';
    it->name = block;
    it->json = block + nl + 1;
    it->len = len;
    it->seq = seq;
    snprintf(it->run_id, sizeof it->run_id, "%s", run_id);
    rs_enqueue(s, it);
}

void run_stream_end(run_stream *s, const char *run_id, uint64_t last_seq)
{
    if (!s || !run_id || strlen(run_id) >= RS_ID_MAX) return;
    rs_item *it = calloc(1, sizeof *it);
    if (!it) {
        rs_drop(s, "out of memory");
        return;
    }
    it->end = true;
    it->seq = last_seq;
    snprintf(it->run_id, sizeof it->run_id, "%s", run_id);
    rs_enqueue(s, it);
}

static void rs_pub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    run_stream *s = priv;
    redisReply *rp = reply;
    s->pub_inflight--;
    rs_heard(s);
    /* an id not above the stream's last: the entry is there already (sent
     * again after a reconnection) — nothing lost */
    if (rp && rp->type == REDIS_REPLY_ERROR && !strstr(rp->str, "equal or smaller")) rs_drop(s, rp->str);
    else if (rp && rp->type == REDIS_REPLY_STRING) atomic_fetch_add(&s->published, 1);
}

/* Send what is queued, at most RS_PUB_INFLIGHT unanswered. Thread. */
static void rs_flush(run_stream *s)
{
    while (s->up && s->ac && s->pub_inflight < RS_PUB_INFLIGHT) {
        pthread_mutex_lock(&s->mu);
        rs_item *it = s->qhead;
        if (it) {
            s->qhead = it->next;
            if (!s->qhead) s->qtail = NULL;
            s->qn--;
            s->qbytes -= it->len;
        }
        pthread_mutex_unlock(&s->mu);
        if (!it) return;
        char key[RS_ID_MAX + 128], id[48], maxlen[16], ttl[16];
        rs_key(s, it->run_id, key, sizeof key);
        snprintf(id, sizeof id, "%llu-%d", (unsigned long long)it->seq, it->end ? 1 : 0);
        snprintf(maxlen, sizeof maxlen, "%d", RUN_STREAM_MAXLEN);
        snprintf(ttl, sizeof ttl, "%d", it->end ? RUN_STREAM_LINGER_S : RUN_STREAM_IDLE_S);
        int rc;
        if (it->end) {
            const char *argv[] = {"XADD", key, "MAXLEN", "~", maxlen, id, "end", "1"};
            rc = redisAsyncCommandArgv(s->ac, rs_pub_reply, s, 8, argv, NULL);
        } else {
            const char *argv[] = {"XADD", key, "MAXLEN", "~", maxlen, id, "n", it->name, "d", it->json};
            size_t argl[] = {4, strlen(key), 6, 1, strlen(maxlen), strlen(id), 1, strlen(it->name), 1, it->len};
            rc = redisAsyncCommandArgv(s->ac, rs_pub_reply, s, 10, argv, argl);
        }
        if (rc == REDIS_OK) {
            s->pub_inflight++;
            rs_sent(s);
            const char *ex[] = {"EXPIRE", key, ttl};
            redisAsyncCommandArgv(s->ac, NULL, NULL, 3, ex, NULL);
        } else {
            rs_drop(s, "the connection refused the command");
        }
        free(it->name);
        free(it);
    }
}

/* ---- followers (the thread's side) ---- */

static void rs_notify(run_stream_reader *rd)
{
    if (!rd->gone && rd->async) uv_async_send(rd->async);
}

static void rs_frame_free(run_stream_frame *f)
{
    free(f->name);
    memset(f, 0, sizeof *f);
}

static void rs_reader_free(run_stream_reader *rd)
{
    for (size_t i = 0; i < rd->nbuf; i++) rs_frame_free(&rd->buf[i]);
    free(rd);
}

static void rs_exists_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    run_stream_reader *rd = priv;
    redisReply *rp = reply;
    rs_heard(rd->s);
    pthread_mutex_lock(&rd->s->mu);
    rd->inflight--;
    if (!rd->gone && rd->state == RUN_STREAM_WAITING) {
        if (!rp || rp->type != REDIS_REPLY_INTEGER) rd->state = RUN_STREAM_UNREACHABLE;
        else {
            rd->exists_known = true;
            rd->state = rp->integer ? RUN_STREAM_LIVE : RUN_STREAM_ABSENT;
        }
        rs_notify(rd);
    }
    pthread_mutex_unlock(&rd->s->mu);
}

static const redisReply *rs_field(const redisReply *fields, const char *name)
{
    if (!fields || fields->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1];
    }
    return NULL;
}

static void rs_range_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    run_stream_reader *rd = priv;
    redisReply *rp = reply;
    rs_heard(rd->s);
    pthread_mutex_lock(&rd->s->mu);
    rd->inflight--;
    if (rd->gone || rd->state == RUN_STREAM_UNREACHABLE || rd->state == RUN_STREAM_ABSENT) goto out;
    if (!rp || rp->type != REDIS_REPLY_ARRAY) {
        rd->state = RUN_STREAM_UNREACHABLE;
        rs_notify(rd);
        goto out;
    }
    bool news = false;
    for (size_t i = 0; i < rp->elements && !rd->ended_seen; i++) {
        const redisReply *e = rp->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        unsigned long long seq = 0, part = 0;
        if (sscanf(e->element[0]->str, "%llu-%llu", &seq, &part) != 2) continue;
        if (part >= 1) {                    /* the run's end */
            rd->ended_seen = true;
            news = true;
            break;
        }
        if (seq <= rd->after || rd->nbuf >= RUN_STREAM_READER_FRAMES) continue;
        const redisReply *n = rs_field(e->element[1], "n"), *d = rs_field(e->element[1], "d");
        if (!n || !d) continue;
        if (seq > rd->after + 1) {          /* trimmed (MAXLEN) before this reader read them */
            if (!rd->skip_from) rd->skip_from = rd->after + 1;
            rd->skip_to = seq - 1;
        }
        char *block = malloc(n->len + 1 + d->len + 1);
        if (!block) break;
        memcpy(block, n->str, n->len);
        block[n->len] = '\0';
        memcpy(block + n->len + 1, d->str, d->len);
        block[n->len + 1 + d->len] = '\0';
        rd->buf[rd->nbuf++] = (run_stream_frame){.seq = seq, .name = block, .json = block + n->len + 1,
                                                 .len = d->len};
        rd->buf_bytes += d->len;
        rd->after = seq;
        news = true;
    }
    if (news) rs_notify(rd);
out:
    pthread_mutex_unlock(&rd->s->mu);
}

/* One poll of every follower; forget those that are gone. Thread. */
static void rs_poll(run_stream *s)
{
    uint64_t now = time_mono_ns() / 1000000;
    pthread_mutex_lock(&s->mu);
    for (run_stream_reader **pp = &s->readers; *pp;) {
        run_stream_reader *rd = *pp;
        if (rd->gone && rd->inflight == 0) {
            *pp = rd->next;
            rs_reader_free(rd);
            continue;
        }
        pp = &rd->next;
        bool done = rd->gone || rd->ended_seen || rd->state == RUN_STREAM_ABSENT ||
                    rd->state == RUN_STREAM_UNREACHABLE;
        if (done || rd->inflight) continue;
        if (!s->up || !s->ac) {
            if (rd->state == RUN_STREAM_LIVE || now - rd->born_ms > RS_UNREACHABLE_MS) {
                rd->state = RUN_STREAM_UNREACHABLE;
                rs_notify(rd);
            }
            continue;
        }
        size_t room = RUN_STREAM_READER_FRAMES - rd->nbuf;
        /* a slow client: Redis keeps the backlog */
        if (!room || rd->buf_bytes >= RS_READER_MAX_BYTES) continue;
        char key[RS_ID_MAX + 128], start[32], count[16];
        rs_key(s, rd->run_id, key, sizeof key);
        /* "AFTER-1": the end entry of a run whose last event is AFTER, and
         * every event after AFTER */
        snprintf(start, sizeof start, "%llu-1", (unsigned long long)rd->after);
        snprintf(count, sizeof count, "%zu", room + 1);
        if (!rd->exists_known) {
            const char *ex[] = {"EXISTS", key};
            if (redisAsyncCommandArgv(s->ac, rs_exists_reply, rd, 2, ex, NULL) == REDIS_OK) {
                rd->inflight++;
                rs_sent(s);
            }
        }
        const char *xr[] = {"XRANGE", key, start, "+", "COUNT", count};
        if (redisAsyncCommandArgv(s->ac, rs_range_reply, rd, 6, xr, NULL) == REDIS_OK) {
            rd->inflight++;
            rs_sent(s);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- the connection (thread) ---- */

static void rs_connect(run_stream *s);

static void rs_retry_cb(uv_timer_t *t) { rs_connect(t->data); }

static void rs_schedule_retry(run_stream *s)
{
    if (!s->stopping) uv_timer_start(&s->retry, rs_retry_cb, 500, 0);
}

static void rs_on_connect(const redisAsyncContext *ac, int status)
{
    run_stream *s = ac->data;
    if (status != REDIS_OK) {
        s->ac = NULL;                       /* hiredis frees it */
        rs_schedule_retry(s);
        return;
    }
    if (s->db != 0) {
        char db[12];
        snprintf(db, sizeof db, "%d", s->db);
        const char *argv[] = {"SELECT", db};
        redisAsyncCommandArgv((redisAsyncContext *)ac, NULL, NULL, 2, argv, NULL);
    }
    s->up = true;
    atomic_store(&s->up_seen, true);
    s->heard_ms = rs_now_ms();
    if (s->lost) log_info("run events: connected to redis again");
    s->lost = false;
    rs_flush(s);
    rs_poll(s);
}

static void rs_on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    run_stream *s = ac->data;
    bool was = s->up;
    s->up = false;
    atomic_store(&s->up_seen, false);
    s->ac = NULL;                           /* hiredis frees it */
    if (was && !s->stopping) {
        log_warn("run events: lost the connection to redis; reconnecting");
        s->lost = true;
    }
    rs_schedule_retry(s);
}

static void rs_connect(run_stream *s)
{
    if (s->stopping || s->ac) return;
    redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
    if (!ac || ac->err) {
        if (ac) redisAsyncFree(ac);
        rs_schedule_retry(s);
        return;
    }
    ac->data = s;
    if (redisLibuvAttach(ac, &s->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        rs_schedule_retry(s);
        return;
    }
    redisAsyncSetConnectCallback(ac, rs_on_connect);
    redisAsyncSetDisconnectCallback(ac, rs_on_disconnect);
    s->ac = ac;
    s->connect_ms = time_mono_ns() / 1000000;
}

/* hiredis 0.14's libuv adapter drops a poll error (a refused connection to
 * a Redis that is still down): the connect callback never comes. A connect
 * not done within RS_CONNECT_TIMEOUT_MS is abandoned and tried again. */
static void rs_connect_deadline(run_stream *s)
{
    if (!s->ac || s->up || time_mono_ns() / 1000000 - s->connect_ms < RS_CONNECT_TIMEOUT_MS) return;
    redisAsyncContext *ac = s->ac;
    s->ac = NULL;
    redisAsyncFree(ac);                     /* not connected: no callback runs */
    rs_schedule_retry(s);
}

static void rs_ping_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    (void)reply;
    rs_heard(priv);
}

/* The same adapter also drops the error of a connection that breaks while
 * a write is pending: hiredis never calls back, the replies never come. A
 * connection with a command unanswered for RS_REPLY_TIMEOUT_MS (an idle
 * one is sent a PING every RS_PING_MS) is closed — its commands answered
 * NULL, so followers learn Redis is away — and made again. */
static void rs_liveness(run_stream *s)
{
    if (!s->up || !s->ac) return;
    uint64_t now = rs_now_ms();
    if (s->awaiting == 0) {
        if (now - s->heard_ms >= RS_PING_MS) {
            const char *argv[] = {"PING"};
            if (redisAsyncCommandArgv(s->ac, rs_ping_reply, s, 1, argv, NULL) == REDIS_OK) rs_sent(s);
        }
        return;
    }
    if (now - s->heard_ms < RS_REPLY_TIMEOUT_MS) return;
    log_warn("run events: redis stopped answering; reconnecting");
    redisAsyncContext *ac = s->ac;
    s->up = false;
    atomic_store(&s->up_seen, false);
    s->lost = true;
    s->ac = NULL;
    redisAsyncFree(ac);                     /* NULL replies; the disconnect callback sees up false */
    rs_schedule_retry(s);
}

static void rs_tick_cb(uv_timer_t *t)
{
    run_stream *s = t->data;
    rs_connect_deadline(s);
    rs_liveness(s);
    rs_flush(s);
    rs_poll(s);
}

static void rs_wake_cb(uv_async_t *a)
{
    run_stream *s = a->data;
    pthread_mutex_lock(&s->mu);
    bool stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    if (!stop) {
        rs_flush(s);
        rs_poll(s);
        return;
    }
    uv_timer_stop(&s->tick);
    uv_timer_stop(&s->retry);
    if (s->ac) {
        redisAsyncContext *ac = s->ac;
        s->ac = NULL;
        redisAsyncFree(ac);                 /* pending callbacks get NULL */
    }
    s->up = false;
    uv_close((uv_handle_t *)&s->tick, NULL);
    uv_close((uv_handle_t *)&s->retry, NULL);
    uv_close((uv_handle_t *)&s->wake, NULL);
}

static void *rs_main(void *arg)
{
    run_stream *s = arg;
    pthread_setname_np(pthread_self(), "runstream");
    rs_connect(s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

run_stream *run_stream_start(const governance_redis_cfg *cfg)
{
    run_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->host = strdup(cfg->host ? cfg->host : "127.0.0.1");
    s->prefix = strdup(cfg->key_prefix ? cfg->key_prefix : "brigade:");
    s->port = cfg->port ? cfg->port : 6379;
    s->db = cfg->db;
    if (!s->host || !s->prefix || uv_loop_init(&s->loop) != 0) {
        free(s->host);
        free(s->prefix);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    uv_async_init(&s->loop, &s->wake, rs_wake_cb);
    s->wake.data = s;
    uv_timer_init(&s->loop, &s->tick);
    s->tick.data = s;
    uv_timer_init(&s->loop, &s->retry);
    s->retry.data = s;
    uv_timer_start(&s->tick, rs_tick_cb, RUN_STREAM_POLL_MS, RUN_STREAM_POLL_MS);
    if (pthread_create(&s->thread, NULL, rs_main, s) != 0) {
        log_error("run events: cannot start the thread: other instances will not read this one's runs");
        uv_close((uv_handle_t *)&s->tick, NULL);
        uv_close((uv_handle_t *)&s->retry, NULL);
        uv_close((uv_handle_t *)&s->wake, NULL);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
        pthread_mutex_destroy(&s->mu);
        free(s->host);
        free(s->prefix);
        free(s);
        return NULL;
    }
    return s;
}

void run_stream_stop(run_stream *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->wake);
    pthread_join(s->thread, NULL);
    uv_loop_close(&s->loop);
    for (rs_item *it = s->qhead, *next; it; it = next) {
        next = it->next;
        free(it->name);
        free(it);
    }
    for (run_stream_reader *rd = s->readers, *next; rd; rd = next) {
        next = rd->next;
        rs_reader_free(rd);
    }
    pthread_mutex_destroy(&s->mu);
    free(s->host);
    free(s->prefix);
    free(s);
}

/* ---- followers (their loop's side) ---- */

static void rs_async_cb(uv_async_t *a)
{
    run_stream_reader *rd = a->data;
    if (rd && rd->wake) rd->wake(rd->arg);
}

static void rs_async_closed(uv_handle_t *h) { free(h); }

run_stream_reader *run_stream_follow(run_stream *s, const char *run_id, uint64_t after, uv_loop_t *loop,
                                     run_stream_wake_fn wake, void *arg)
{
    if (!s || !run_id || strlen(run_id) >= RS_ID_MAX) return NULL;
    run_stream_reader *rd = calloc(1, sizeof *rd);
    uv_async_t *a = rd ? calloc(1, sizeof *a) : NULL;
    if (!a || uv_async_init(loop, a, rs_async_cb) != 0) {
        free(a);
        free(rd);
        return NULL;
    }
    a->data = rd;
    rd->s = s;
    rd->async = a;
    rd->wake = wake;
    rd->arg = arg;
    rd->after = after;
    rd->born_ms = time_mono_ns() / 1000000;
    snprintf(rd->run_id, sizeof rd->run_id, "%s", run_id);
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->nreaders >= RUN_STREAM_MAX_READERS) {
        pthread_mutex_unlock(&s->mu);
        uv_close((uv_handle_t *)a, rs_async_closed);
        free(rd);
        return NULL;
    }
    rd->next = s->readers;
    s->readers = rd;
    s->nreaders++;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->wake);                /* poll it now, not at the next tick */
    return rd;
}

static void rs_taken_free(run_stream_reader *rd)
{
    for (size_t i = 0; i < rd->ntaken; i++) rs_frame_free(&rd->taken[i]);
    rd->ntaken = 0;
}

size_t run_stream_take(run_stream_reader *rd, run_stream_frame *out, size_t max, run_stream_state *state,
                       uint64_t *skip_from, uint64_t *skip_to)
{
    rs_taken_free(rd);
    pthread_mutex_lock(&rd->s->mu);
    size_t k = rd->nbuf < max ? rd->nbuf : max;
    if (k > RUN_STREAM_READER_FRAMES) k = RUN_STREAM_READER_FRAMES;
    for (size_t i = 0; i < k; i++) {
        rd->taken[i] = out[i] = rd->buf[i];
        rd->buf_bytes -= rd->buf[i].len;
    }
    memmove(rd->buf, rd->buf + k, (rd->nbuf - k) * sizeof *rd->buf);
    rd->nbuf -= k;
    rd->ntaken = k;
    *skip_from = rd->skip_from;
    *skip_to = rd->skip_to;
    rd->skip_from = rd->skip_to = 0;
    *state = rd->ended_seen && rd->nbuf == 0 ? RUN_STREAM_ENDED : rd->state;
    pthread_mutex_unlock(&rd->s->mu);
    return k;
}

void run_stream_unfollow(run_stream_reader *rd)
{
    if (!rd) return;
    rs_taken_free(rd);
    uv_async_t *a = rd->async;
    pthread_mutex_lock(&rd->s->mu);
    rd->gone = true;                        /* the thread frees it once unanswered */
    rd->s->nreaders--;                      /* the bound counts followers, not leftovers */
    rd->async = NULL;
    rd->wake = NULL;
    pthread_mutex_unlock(&rd->s->mu);
    a->data = NULL;
    uv_close((uv_handle_t *)a, rs_async_closed);
}
