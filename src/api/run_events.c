/* run_events.c — GET /v1/runs/{id}/events: a run's events as an SSE
 * stream, read again — from the first the server keeps, or after the
 * `Last-Event-ID` a client saw before its stream broke (the ids are the
 * ones the message's own stream carried). Live runs go on streaming until
 * their end; a run that ended recently is replayed whole.
 *
 * The events come from the run's event log (runs.h, event_log.c), which
 * this process keeps for runs that ran here, while they run and for a while
 * after. A run this process keeps no events of — it ran before a restart,
 * long ago, or elsewhere — answers with one `run.state` event: the run as
 * stored (GET /v1/runs/{id}'s object), so a client always learns how its
 * run stands — unless several instances share Redis and the run's owner
 * published its events there: then they are read from there
 * (run_events_remote.c). Another user's run is a 404, as everywhere. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_EVENTS_PING_MS 15000
#define RUN_EVENTS_BATCH   64       /* events taken per wake before yielding to the loop */

typedef struct run_events_reader {
    api_ctx          *ctx;
    http_request     *req;
    runs             *runs;
    runs_event_watch *watch;
    http_sse         *sse;
    bool              full;         /* the client's buffer is full: wait for on_drain */
} run_events_reader;

static void reader_close(run_events_reader *rd)
{
    rd->req->user = NULL;
    rd->req->on_abort = NULL;
    rd->req->on_drain = NULL;
    runs_events_unwatch(rd->runs, rd->watch);
    free(rd);
}

/* Send what is new; end the stream once the run has ended and all is sent. */
static void reader_pump(void *arg)
{
    run_events_reader *rd = arg;
    if (rd->full || rd->req->aborted) return;
    runs_event_frame f[RUN_EVENTS_BATCH];
    for (;;) {
        bool ended = false;
        uint64_t skip_from = 0, skip_to = 0;
        size_t n = runs_events_take(rd->runs, rd->watch, f, RUN_EVENTS_BATCH, &ended, &skip_from, &skip_to);
        if (skip_from) {
            /* a slow reader, or one coming back late: these were dropped
             * from the run's log; the transcript still has what they said */
            char d[200];
            int dl = snprintf(d, sizeof d, "{\"from\":%llu,\"to\":%llu,\"run_id\":\"%s\"}",
                              (unsigned long long)skip_from, (unsigned long long)skip_to, rd->req->params[0]);
            if (!http_sse_event(rd->sse, "events.skipped", NULL, d, (size_t)dl)) rd->full = true;
        }
        for (size_t i = 0; i < n; i++) {
            char id[24];
            snprintf(id, sizeof id, "%llu", (unsigned long long)f[i].seq);
            if (!http_sse_event(rd->sse, f[i].name, id, f[i].json, f[i].len)) rd->full = true;
        }
        if (ended) {
            http_sse *sse = rd->sse;
            reader_close(rd);
            http_sse_end(sse);
            return;
        }
        /* full: on_drain pumps again; fewer than a batch: the next wake */
        if (rd->full || n < RUN_EVENTS_BATCH) return;
    }
}

static void reader_abort(http_request *req)
{
    run_events_reader *rd = req->user;
    if (!rd) return;
    http_sse *sse = rd->sse;
    reader_close(rd);
    http_sse_end(sse);
}

static void reader_drain(http_request *req)
{
    run_events_reader *rd = req->user;
    if (!rd) return;
    rd->full = false;
    reader_pump(rd);
}

/* ---- a run this process keeps no events of: its stored state ---- */

typedef struct stored_state {
    store_status st;
    run_rec      rec;
    uint64_t     after;
} stored_state;

static void stored_work(http_request *req)
{
    api_ctx *ctx = req->user;
    stored_state *s = ctx->handler_state;
    s->st = store_run_get(ctx->env->store, &ctx->scope, req->params[0], &s->rec);
    if (s->st == STORE_NOT_FOUND && runs_live_run(ctx->env->runs, &ctx->scope, req->params[0], &s->rec))
        s->st = STORE_OK;   /* its start is not stored yet (written behind) */
    if (s->st == STORE_OK) {
        run_status live;
        if (runs_live_status(ctx->env->runs, &ctx->scope, s->rec.id, &live)) s->rec.status = live;
    }
}

static void stored_done(http_request *req)
{
    api_ctx *ctx = req->user;
    stored_state *s = ctx->handler_state;
    if (!s || s->st != STORE_OK) {
        api_fail_store(ctx, s ? s->st : STORE_ERROR, "run");
        api_send(ctx);
        return;
    }
    /* the caller's run: with several instances, its events from Redis */
    if (api_run_events_remote(ctx, &s->rec, s->after)) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "run", api_json_run(&s->rec));
    cJSON_AddStringToObject(o, "run_id", s->rec.id);
    cJSON_AddStringToObject(o, "note", "this server keeps no events of this run (it ran before a restart, on "
                                       "another instance, or too long ago); this is its stored state");
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    http_sse *sse = http_sse_begin(req, 0);
    if (json) http_sse_event(sse, "run.state", NULL, json, strlen(json));
    free(json);
    http_sse_end(sse);
}

/* Last-Event-ID (or ?after=): a decimal event number. */
static bool parse_after(api_ctx *ctx, uint64_t *after)
{
    *after = 0;
    const char *v = http_header_get(ctx->req, "last-event-id");
    const char *name = "Last-Event-ID";
    if (!v || !*v) {
        v = http_query_get(ctx->req, "after");
        name = "after";
    }
    if (!v || !*v) return true;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || errno || strlen(v) > 19) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_last_event_id", name,
                 "%s must be the decimal id of an event of this run (as its stream sent it)", name);
        return false;
    }
    *after = n;
    return true;
}

void api_run_events(api_ctx *ctx)
{
    uint64_t after;
    if (!parse_after(ctx, &after)) {
        api_send(ctx);
        return;
    }
    run_events_reader *rd = calloc(1, sizeof *rd);
    if (!rd) {
        api_fail(ctx, 500, "api_error", "internal_error", NULL, "out of memory");
        api_send(ctx);
        return;
    }
    rd->ctx = ctx;
    rd->req = ctx->req;
    rd->runs = ctx->env->runs;
    rd->watch = runs_events_watch(rd->runs, ctx->scope.tenant_id, ctx->scope.user_id, ctx->req->params[0], after,
                                  ctx->thread->loop, reader_pump, rd);
    if (!rd->watch) {
        free(rd);
        stored_state *s = arena_alloc(&ctx->req->arena, sizeof *s);   /* never NULL */
        memset(s, 0, sizeof *s);
        s->after = after;
        ctx->handler_state = s;
        http_request_defer(ctx->req, stored_work, stored_done);
        return;
    }
    ctx->req->user = rd;
    ctx->req->on_abort = reader_abort;
    ctx->req->on_drain = reader_drain;
    rd->sse = http_sse_begin(ctx->req, RUN_EVENTS_PING_MS);
    /* the first wake (already queued) sends what is there */
}
