/* run_answer.c — the API's subscriber to runs (runs.h): how a run started
 * by POST /v1/sessions/{id}/messages is told to its client — an SSE stream
 * of the run's events (stream true) or one JSON answer at its end — and
 * how POST /v1/runs/{id}/cancel answers once the run has stopped. Also the
 * API's JSON of runs and messages. The harness reports; this file alone
 * turns its reports into statuses, headers and bodies. */
#include "api/api.h"
#include "util/strfmt.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_STREAM_PING_MS 15000     /* ": ping" comment on a run's stream */

/* ---------------------------------------------------------------- JSON */

cJSON *api_json_run(const run_rec *run)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", run->id);
    cJSON_AddStringToObject(o, "object", "run");
    cJSON_AddStringToObject(o, "session_id", run->session_id);
    cJSON_AddStringToObject(o, "agent", run->agent);
    cJSON_AddStringToObject(o, "status", run_status_name(run->status));
    if (run->error_code[0]) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", run->error_code);
        cJSON_AddStringToObject(e, "message", run->error_message);
    } else {
        cJSON_AddNullToObject(o, "error");
    }
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "input_tokens", (double)run->input_tokens);
    cJSON_AddNumberToObject(u, "output_tokens", (double)run->output_tokens);
    cJSON_AddNumberToObject(u, "cost_usd", (double)run->cost_nusd / 1e9);
    cJSON_AddNumberToObject(o, "steps", (double)run->steps);
    cJSON_AddNumberToObject(o, "tool_calls", (double)run->tool_calls);
    cJSON_AddNumberToObject(o, "created_at", (double)run->created_at);
    if (run->started_at) cJSON_AddNumberToObject(o, "started_at", (double)run->started_at);
    else cJSON_AddNullToObject(o, "started_at");
    if (run->finished_at) cJSON_AddNumberToObject(o, "finished_at", (double)run->finished_at);
    else cJSON_AddNullToObject(o, "finished_at");
    return o;
}

/* A stored message as the API shows it: the model's form, with its place
 * in the transcript. */
cJSON *api_json_message(const message_rec *m)
{
    cJSON *o = runs_model_message(m);
    cJSON_AddNumberToObject(o, "seq", (double)m->seq);
    cJSON_AddStringToObject(o, "object", "message");
    if (m->run_id[0]) cJSON_AddStringToObject(o, "run_id", m->run_id);
    else cJSON_AddNullToObject(o, "run_id");
    cJSON_AddNumberToObject(o, "created_at", (double)m->created_at);
    return o;
}

/* ---------------------------------------------------------------- answers */

static void run_answer_json(http_request *req, int status, cJSON *o)
{
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    http_respond(req, status, "application/json", body ? body : "{}", body ? strlen(body) : 2);
    free(body);
}

/* Why a message did not run, as the API's status and error envelope. */
static void run_answer_error(http_request *req, const runs_error *e)
{
    int status = 500;
    const char *type = "api_error";
    switch (e->kind) {
    case RUNS_ERR_NOT_FOUND: status = 404; type = "not_found_error"; break;
    case RUNS_ERR_BUSY: status = 409; type = "conflict_error"; break;
    case RUNS_ERR_QUEUE_FULL: status = 503; type = "overloaded_error"; break;
    case RUNS_ERR_AGENT_NOT_ALLOWED: status = 403; type = "permission_error"; break;
    case RUNS_ERR_AGENT_UNAVAILABLE: status = 409; type = "conflict_error"; break;
    case RUNS_ERR_STORAGE_QUOTA: status = 429; type = "insufficient_quota"; break;
    case RUNS_ERR_CREDENTIAL_LOST:
        status = 401;
        type = "authentication_error";
        http_add_header(req, "www-authenticate", "Bearer realm=\"brigade\"");
        break;
    case RUNS_ERR_STORE: status = 500; type = "api_error"; break;
    case RUNS_ERR_GUARD_BLOCKED: status = 400; type = "invalid_request_error"; break;
    case RUNS_ERR_SHUTDOWN: status = 503; type = "overloaded_error"; break;
    case RUNS_ERR_GOVERNED:
        status = e->refusal->status;
        type = e->refusal->type;
        break;
    }
    if (e->retry_after_s) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", e->retry_after_s);
        http_add_header(req, "retry-after", ra);
    }
    if (e->run_id) http_add_header(req, "x-brigade-run-id", e->run_id);
    http_respond_error(req, status, type, e->code, e->message, NULL);
}

/* ---------------------------------------------------------------- a posted message */

typedef struct run_client {
    runs_subscriber sub;              /* first: what the run holds */
    http_request   *req;
    bool            stream;
    bool            started;          /* on_start came: leaving now leaves the run */
    http_sse       *sse;
} run_client;

static void run_client_free(run_client *c)
{
    c->req->user = NULL;
    c->req->on_abort = NULL;
    c->req->on_drain = NULL;
    free(c);
}

static bool run_client_start(runs_subscriber *sub, const run_rec *run)
{
    (void)run;
    run_client *c = (run_client *)sub;
    c->started = true;
    if (!c->stream) return true;
    if (c->req->aborted) {
        /* gone before the stream could begin: the run goes on alone */
        http_request *req = c->req;
        run_client_free(c);
        http_respond(req, 499, NULL, NULL, 0);
        return false;
    }
    c->sse = http_sse_begin(c->req, RUN_STREAM_PING_MS);
    return true;
}

static bool run_client_event(runs_subscriber *sub, const char *name, const char *json, size_t len, uint64_t seq)
{
    run_client *c = (run_client *)sub;
    /* A client gone (its on_abort follows) is not a full one: the model
     * must not pause for it. */
    if (!c->sse || c->req->aborted) return true;
    /* the id: where GET /v1/runs/{id}/events goes on if this stream breaks */
    char id[24];
    if (seq) id[fmt_u64(id, seq)] = '\0';   /* every event of a stream: no printf */
    return http_sse_event(c->sse, name, seq ? id : NULL, json, len);
}

static void run_client_end(runs_subscriber *sub, const runs_outcome *o)
{
    run_client *c = (run_client *)sub;
    http_request *req = c->req;
    http_sse *sse = c->sse;
    run_client_free(c);
    if (sse) {
        http_sse_end(sse);   /* the events said how it ended */
    } else if (o->error) {
        run_answer_error(req, o->error);
    } else {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "run", api_json_run(o->run));
        if (o->message) cJSON_AddItemToObject(j, "message", api_json_message(o->message));
        else cJSON_AddNullToObject(j, "message");
        run_answer_json(req, 200, j);
    }
}

/* The client went away. While its message waits nothing changes (it still
 * runs when its turn comes); once its run has started, the run goes on
 * and its result is read later. */
static void run_client_abort(http_request *req)
{
    run_client *c = req->user;
    if (!c || !c->started) return;
    runs_subscriber_gone(&c->sub);
    http_sse *sse = c->sse;
    run_client_free(c);
    if (sse) http_sse_end(sse);
    else http_respond(req, 499, NULL, NULL, 0);
}

static void run_client_drain(http_request *req)
{
    run_client *c = req->user;
    if (c) runs_subscriber_drained(&c->sub);
}

void api_run_post(api_ctx *ctx, const char *session_id, const char *content, bool stream,
                  runs_if_busy if_busy)
{
    run_client *c = xcalloc(1, sizeof *c);
    c->sub.on_start = run_client_start;
    c->sub.on_event = stream ? run_client_event : NULL;
    c->sub.on_end = run_client_end;
    c->req = ctx->req;
    c->stream = stream;
    ctx->req->user = c;
    ctx->req->on_abort = run_client_abort;
    ctx->req->on_drain = run_client_drain;
    runs_post_message(ctx->thread->runs, &c->sub, &ctx->scope, session_id, content, if_busy,
                      ctx->span ? obs_span_ctx(ctx->span) : NULL);
}

/* ---------------------------------------------------------------- a cancel */

typedef struct run_canceller {
    runs_subscriber sub;              /* first */
    http_request   *req;
} run_canceller;

static void run_canceller_end(runs_subscriber *sub, const runs_outcome *o)
{
    run_canceller *c = (run_canceller *)sub;
    http_request *req = c->req;
    req->user = NULL;
    free(c);
    if (o->error) run_answer_error(req, o->error);
    else run_answer_json(req, 200, api_json_run(o->run));
}

void api_run_cancel(api_ctx *ctx, const char *run_id)
{
    run_canceller *c = xcalloc(1, sizeof *c);
    c->sub.on_end = run_canceller_end;
    c->req = ctx->req;
    ctx->req->user = c;
    ctx->req->on_abort = NULL;
    runs_cancel(ctx->thread->runs, &c->sub, &ctx->scope, run_id);
}
