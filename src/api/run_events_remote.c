/* run_events_remote.c — GET /v1/runs/{id}/events for a run another
 * instance runs (or ran): its events read from Redis, where the owning
 * instance publishes them (runs/run_stream.h; docs/scale-out.md, "Run
 * events from any instance"). run_events.c calls this once the store has
 * said the run is the caller's, so isolation is the store's, as for every
 * other run read.
 *
 * The stream has the same ids as the owner's own, honours Last-Event-ID,
 * and ends with the run's end. A live run whose stream is not in Redis yet
 * (its first event still on its way) is asked for again every
 * REMOTE_TICK_MS, REMOTE_ABSENT_TRIES times. Two ends do not come from Redis, and the
 * store's run answers them with one `run.state` event (as a run nobody
 * keeps events of does):
 *   - Redis is away (or has no stream for this run): what could be read is
 *     sent, then the run as stored;
 *   - the owner died before publishing the end: the store is read every
 *     REMOTE_CHECK_MS; once the run is final there and no end came within
 *     REMOTE_END_GRACE_MS more (the owner writes the store just before its
 *     last event), the run as stored ends the stream. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runs/run_stream.h"
#include "util/timeutil.h"

#define REMOTE_PING_MS      15000
#define REMOTE_BATCH        RUN_STREAM_READER_FRAMES
#define REMOTE_CHECK_MS     1000
#define REMOTE_TICK_MS      200
#define REMOTE_ABSENT_TRIES 10     /* a live run's stream not there yet: asked again, 2 s in all */
#define REMOTE_END_GRACE_MS 2000

typedef struct remote_reader {
    http_request      *req;
    store             *st;
    scope              sc;
    char               run_id[ID_MAX];
    run_stream_reader *rd;
    http_sse          *sse;
    bool               full, closing, work_busy;
    run_rec            rec;            /* the run as last read from the store */
    uint64_t           final_since_ms; /* when the store first said it was final */
    uint64_t           after;          /* the last event sent (or the client's Last-Event-ID) */
    int                ticks, absent_tries;
    struct run_stream *s;
    uv_timer_t        *check;
    uv_work_t          work;
    store_status       wst;
    run_rec            wrec;
} remote_reader;

static void timer_closed(uv_handle_t *h) { free(h); }

/* Detach from the request; the struct goes now or with its store job. */
static void remote_close(remote_reader *r)
{
    r->req->user = NULL;
    r->req->on_abort = NULL;
    r->req->on_drain = NULL;
    run_stream_unfollow(r->rd);
    r->rd = NULL;
    if (r->check) {
        uv_timer_stop(r->check);
        uv_close((uv_handle_t *)r->check, timer_closed);
        r->check = NULL;
    }
    r->closing = true;
    if (!r->work_busy) free(r);
}

static void remote_begin(remote_reader *r)
{
    if (!r->sse) r->sse = http_sse_begin(r->req, REMOTE_PING_MS);
}

/* The run as stored, as the stream's last event, and the end. */
static void remote_finish_with_state(remote_reader *r, const char *note)
{
    remote_begin(r);
    http_sse *sse = r->sse;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "run", api_json_run(&r->rec));
    cJSON_AddStringToObject(o, "run_id", r->rec.id);
    cJSON_AddStringToObject(o, "note", note);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (json) http_sse_event(sse, "run.state", NULL, json, strlen(json));
    free(json);
    remote_close(r);
    http_sse_end(sse);
}

static void remote_end(remote_reader *r)
{
    remote_begin(r);
    http_sse *sse = r->sse;
    remote_close(r);
    http_sse_end(sse);
}

/* Send what is new (on the request's loop). Returns the state seen. */
static run_stream_state remote_send(remote_reader *r)
{
    run_stream_frame f[REMOTE_BATCH];
    run_stream_state state = RUN_STREAM_WAITING;
    for (;;) {
        uint64_t skip_from = 0, skip_to = 0;
        size_t n = run_stream_take(r->rd, f, REMOTE_BATCH, &state, &skip_from, &skip_to);
        if (state == RUN_STREAM_WAITING || (state == RUN_STREAM_ABSENT && !r->sse && !n)) return state;
        remote_begin(r);
        if (skip_from) {
            char d[200];
            int dl = snprintf(d, sizeof d, "{\"from\":%llu,\"to\":%llu,\"run_id\":\"%s\"}",
                              (unsigned long long)skip_from, (unsigned long long)skip_to, r->run_id);
            if (!http_sse_event(r->sse, "events.skipped", NULL, d, (size_t)dl)) r->full = true;
        }
        for (size_t i = 0; i < n; i++) {
            char id[24];
            snprintf(id, sizeof id, "%llu", (unsigned long long)f[i].seq);
            r->after = f[i].seq;
            if (!http_sse_event(r->sse, f[i].name, id, f[i].json, f[i].len)) r->full = true;
        }
        if (n < REMOTE_BATCH || r->full) return state;
    }
}

static void remote_pump(void *arg)
{
    remote_reader *r = arg;
    if (r->full || r->req->aborted || !r->rd) return;
    run_stream_state state = remote_send(r);
    if (state == RUN_STREAM_ENDED) remote_end(r);
    else if (state == RUN_STREAM_ABSENT && !r->sse && !run_status_terminal(r->rec.status) &&
             r->absent_tries < REMOTE_ABSENT_TRIES) {
        /* a run that has just started: its instance's first events may
         * not be in Redis yet — asked again at the next tick */
        r->absent_tries++;
        run_stream_unfollow(r->rd);
        r->rd = NULL;
    } else if (state == RUN_STREAM_ABSENT)
        remote_finish_with_state(r, "this server keeps no events of this run (it ran before a restart, on another "
                                    "instance, or too long ago); this is its stored state");
    else if (state == RUN_STREAM_UNREACHABLE)
        remote_finish_with_state(r, "the run's events could not be read from the shared redis (it is away); this "
                                    "is the run as stored");
}

static void remote_abort(http_request *req)
{
    remote_reader *r = req->user;
    if (!r) return;
    http_sse *sse = r->sse;
    remote_close(r);
    if (sse) http_sse_end(sse);
    else http_respond(req, 499, NULL, NULL, 0);
}

static void remote_drain(http_request *req)
{
    remote_reader *r = req->user;
    if (!r) return;
    r->full = false;
    remote_pump(r);
}

/* ---- the owner died before the end: the store says so ---- */

static void check_work(uv_work_t *w)
{
    remote_reader *r = w->data;
    r->wst = store_run_get(r->st, &r->sc, r->run_id, &r->wrec);
}

static void check_after(uv_work_t *w, int status)
{
    (void)status;
    remote_reader *r = w->data;
    r->work_busy = false;
    if (r->closing) {
        free(r);
        return;
    }
    if (r->wst != STORE_OK) return;          /* the next check tries again */
    r->rec = r->wrec;
    if (!run_status_terminal(r->rec.status)) {
        r->final_since_ms = 0;
        return;
    }
    uint64_t now = time_mono_ns() / 1000000;
    if (!r->final_since_ms) r->final_since_ms = now;
    if (now - r->final_since_ms < REMOTE_END_GRACE_MS || r->full || !r->rd) return;
    /* what Redis still gives at once, then the stored end */
    run_stream_state state = remote_send(r);
    if (state == RUN_STREAM_ENDED) remote_end(r);
    else if (!r->full)
        remote_finish_with_state(r, "the instance running this run stopped before its end was published; this is "
                                    "the run as stored");
}

static void check_tick(uv_timer_t *t)
{
    remote_reader *r = t->data;
    if (r->closing) return;
    if (!r->rd) {
        r->rd = run_stream_follow(r->s, r->run_id, r->after, t->loop, remote_pump, r);
        if (!r->rd) {
            remote_finish_with_state(r, "this server keeps no events of this run and cannot read them from the "
                                        "shared redis now; this is its stored state");
            return;
        }
    }
    if (++r->ticks % (REMOTE_CHECK_MS / REMOTE_TICK_MS) != 0 || r->work_busy) return;
    r->work.data = r;
    if (uv_queue_work(t->loop, &r->work, check_work, check_after) == 0) r->work_busy = true;
}

bool api_run_events_remote(api_ctx *ctx, const run_rec *rec, uint64_t after)
{
    run_stream *s = runs_stream(ctx->env->runs);
    if (!s) return false;
    remote_reader *r = calloc(1, sizeof *r);
    uv_timer_t *t = r ? calloc(1, sizeof *t) : NULL;
    if (!t) {
        free(r);
        return false;
    }
    r->req = ctx->req;
    r->st = ctx->env->store;
    r->sc = ctx->scope;
    r->rec = *rec;
    r->s = s;
    r->after = after;
    snprintf(r->run_id, sizeof r->run_id, "%s", rec->id);
    r->rd = run_stream_follow(s, rec->id, after, ctx->thread->loop, remote_pump, r);
    if (!r->rd) {                            /* RUN_STREAM_MAX_READERS: the stored state */
        free(t);
        free(r);
        return false;
    }
    uv_timer_init(ctx->thread->loop, t);
    t->data = r;
    r->check = t;
    uv_timer_start(t, check_tick, REMOTE_TICK_MS, REMOTE_TICK_MS);
    ctx->req->user = r;
    ctx->req->on_abort = remote_abort;
    ctx->req->on_drain = remote_drain;
    return true;
}
