/* responses.c — the OpenAI Responses API: POST /v1/responses, GET and
 * DELETE /v1/responses/{id}.
 *
 * A Responses request is translated into the chat-completions request
 * brigade already governs (responses_translate.h), checked by the same
 * chat_request_parse as POST /v1/chat/completions (model, output caps,
 * what cannot be reserved), and sent as the same one metered call
 * (govern/call.h): rate limits, budgets reserved, the fair queue, the
 * provider's resilience, usage and spans. The answer is translated back,
 * whole or as the Responses event stream.
 *
 * State is the caller's: with "store" (the default) the turn — its input
 * items and output — is kept under the caller's scope (store_responses.c);
 * previous_response_id continues the conversation by prepending the items
 * of its chain, read within the same scope, so another user's id is a 404
 * exactly like a missing one. The store is touched on the thread pool
 * only: before the call (the chain, and whether the turn would fit the
 * quota) and after it (keeping the turn) — a client that gets
 * response.completed can continue from it at once. */
#include "api/api.h"
#include "api/chat_request.h"
#include "api/gateway.h"
#include "api/responses_translate.h"
#include "govern/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/timeutil.h"

typedef struct responses_call {
    api_ctx           *ctx;
    responses_request  rq;
    char               id[ID_MAX];
    cJSON             *resp;           /* the Response being built */
    responses_stream   rs;
    char              *history;        /* the chain's items (JSON array), from the store */
    store_status       load_status;
    char              *upstream_body;
    size_t             upstream_body_len;
    uint64_t           max_output;
    uint64_t           deadline_ms;
    bool               stream_started, waiting;
    bool               passthrough;    /* sent to the provider's /responses (responses_passthrough.c) */
    buf                scratch;
    metered_call       mc;
    /* keeping the turn */
    char              *turn_items, *turn_object;
    store_status       store_status;
} responses_call;

/* Everything the call owns outside the request's arena. */
static void responses_release(responses_call *rc)
{
    http_request *req = rc->ctx->req;
    req->on_abort = NULL;
    req->on_drain = NULL;
    rc->ctx->handler_state = NULL;
    responses_request_free(&rc->rq);
    responses_stream_free(&rc->rs);
    cJSON_Delete(rc->resp);
    rc->resp = NULL;
    free(rc->history);
    free(rc->upstream_body);
    free(rc->turn_items);
    free(rc->turn_object);
    rc->history = rc->upstream_body = rc->turn_items = rc->turn_object = NULL;
}

/* Answer with the error prepared in ctx (nothing streamed yet). */
static void responses_send_error(responses_call *rc)
{
    buf scratch = rc->scratch;
    responses_release(rc);
    api_send(rc->ctx);
    buf_free(&scratch);          /* rc lived in the request's arena */
}

static void responses_fail(responses_call *rc, const chat_request_error *e)
{
    api_fail(rc->ctx, e->status, e->type, e->code, e->param[0] ? e->param : NULL, "%s", e->message);
    responses_send_error(rc);
}

/* Send the last events (in scratch) and end the stream and the request. */
static void responses_close_stream(responses_call *rc)
{
    http_request *req = rc->ctx->req;
    http_stream_write(req, rc->scratch.data, rc->scratch.len);
    obs_gauge_add(obs_series_of(obs_m_active_streams(), NULL), -1);
    buf scratch = rc->scratch;
    responses_release(rc);
    http_stream_end(req);
    buf_free(&scratch);          /* rc lived in the request's arena */
}

/* ---- the end: deliver, after the turn is kept ---- */

static void responses_deliver(responses_call *rc)
{
    api_ctx *ctx = rc->ctx;
    if (rc->stream_started) {
        rc->scratch.len = 0;
        responses_stream_end(&rc->rs, &rc->scratch);
        responses_close_stream(rc);
        return;
    }
    char *text = cJSON_PrintUnformatted(rc->resp);
    buf scratch = rc->scratch;
    responses_release(rc);
    api_reply_text(ctx, 200, "application/json", text);
    api_send(ctx);
    buf_free(&scratch);
}

static void responses_keep_work(http_request *req)
{
    api_ctx *ctx = req->user;
    responses_call *rc = ctx->handler_state;
    rc->store_status = store_response_put(ctx->env->store, &ctx->scope, rc->id,
                                          rc->rq.previous_id[0] ? rc->rq.previous_id : NULL,
                                          rc->rq.model->name, rc->turn_items, rc->turn_object);
}

static void responses_keep_done(http_request *req)
{
    api_ctx *ctx = req->user;
    responses_call *rc = ctx->handler_state;
    if (rc->store_status != STORE_OK) {
        /* The answer is paid for and the client gets it, saying it was not
         * kept: the quota check before the call passed, but this answer
         * tipped the quota over (or the turn is over its size bound). */
        log_warn("responses request=%s id=%s: answered but not stored (store status %d)",
                 req->request_id, rc->id, rc->store_status);
        cJSON_ReplaceItemInObjectCaseSensitive(rc->resp, "store", cJSON_CreateFalse());
    }
    responses_deliver(rc);
}

/* The Response is complete: keep the turn (store), then deliver. */
static void responses_complete(responses_call *rc)
{
    rc->store_status = STORE_OK;
    if (!rc->rq.store) {
        responses_deliver(rc);
        return;
    }
    cJSON *items = responses_turn_items(&rc->rq, rc->resp);
    rc->turn_items = cJSON_PrintUnformatted(items);
    cJSON_Delete(items);
    rc->turn_object = cJSON_PrintUnformatted(rc->resp);
    http_request_defer(rc->ctx->req, responses_keep_work, responses_keep_done);
}

/* ---- the metered call ---- */

static void responses_begin_stream(responses_call *rc)
{
    http_request *req = rc->ctx->req;
    http_add_header(req, "x-brigade-model", rc->rq.model->name);
    http_stream_begin(req, 200, "text/event-stream");
    rc->stream_started = true;
    obs_gauge_add(obs_series_of(obs_m_active_streams(), NULL), 1);
    rc->scratch.len = 0;
    responses_stream_begin(&rc->rs, &rc->scratch);
}

static bool responses_on_event(metered_call *mc, upstream_call *call, const char *json, size_t len,
                               void *arg)
{
    (void)call;
    responses_call *rc = arg;
    http_request *req = rc->ctx->req;
    if (req->aborted) return true;
    if (!rc->stream_started) {
        responses_begin_stream(rc);
        metered_call_reached_client(mc);
    } else {
        rc->scratch.len = 0;
    }
    if (rc->passthrough) {
        /* A provider event that is not a Responses event: the call goes
         * on (its end says whether the answer is whole), the event is not
         * passed. */
        if (!responses_stream_relay(&rc->rs, json, len, &rc->scratch))
            log_warn("responses request=%s: a provider event that is not a Responses event was dropped",
                     req->request_id);
    } else {
        responses_stream_chunk(&rc->rs, json, len, &rc->scratch);
    }
    if (!rc->scratch.len) return true;
    return http_stream_write(req, rc->scratch.data, rc->scratch.len);
}

static void responses_on_done(metered_call *mc, upstream_call *call, const upstream_result *res,
                              void *arg)
{
    (void)mc;
    (void)call;
    responses_call *rc = arg;
    api_ctx *ctx = rc->ctx;
    http_request *req = ctx->req;
    req->on_abort = NULL;
    req->on_drain = NULL;
    /* What served it, as the chat route tells it: a fallback answers
     * under its own name. */
    if (res->served_model && rc->resp)
        cJSON_ReplaceItemInObjectCaseSensitive(rc->resp, "model",
                                               cJSON_CreateString(res->served_model->name));
    if (!rc->stream_started) {
        http_add_header(req, "x-brigade-model",
                        res->served_model ? res->served_model->name : rc->rq.model->name);
        if (res->deployment) http_add_header(req, "x-brigade-deployment", res->deployment);
    }
    int status = 200;
    bool ok = res->error == UPSTREAM_OK;
    if (!ok) {
        api_gateway_fail_upstream(ctx, rc->rq.model, res);
        status = ctx->status;
    } else if (!rc->rq.stream && !(rc->passthrough
                                       ? responses_object_from_provider(&rc->rs, res->body, res->body_len)
                                       : responses_object_complete(rc->resp, res->body, res->body_len))) {
        api_fail(ctx, 502, "upstream_error", "upstream_malformed", NULL,
                 "provider \"%s\" sent an answer that is not a %s",
                 rc->rq.model->provider_name, rc->passthrough ? "completed Response" : "chat completion");
        status = 502;
        ok = false;
    } else if (rc->rq.stream && rc->passthrough && !rc->rs.relay_done) {
        api_fail(ctx, 502, "upstream_error", "upstream_malformed", NULL,
                 "provider \"%s\" ended its Responses stream without a completed Response",
                 rc->rq.model->provider_name);
        status = 502;
        ok = false;
    }
    metered_call_record_usage(&rc->mc, ctx->env->store, res, req->request_id, status, NULL);
    if (!ok && rc->rq.stream && rc->stream_started) {
        /* headers are gone: the failure in-band, the way OpenAI reports it */
        rc->scratch.len = 0;
        responses_stream_fail(&rc->rs, ctx->err_code, ctx->err_message, &rc->scratch);
        responses_close_stream(rc);
        return;
    }
    if (!ok) {
        responses_send_error(rc);
        return;
    }
    if (rc->rq.stream) {
        if (!rc->stream_started) responses_begin_stream(rc);
        else rc->scratch.len = 0;
        /* passthrough: the provider's terminal event already filled the Response */
        if (!rc->passthrough) responses_stream_finish(&rc->rs, &rc->scratch);
        http_stream_write(req, rc->scratch.data, rc->scratch.len);
    }
    responses_complete(rc);
}

static void responses_dispatch(responses_call *rc)
{
    api_ctx *ctx = rc->ctx;
    if (metered_call_dispatch(&rc->mc, ctx->thread->upstream, rc->upstream_body,
                              rc->upstream_body_len, ctx->req->request_id))
        return;
    const char *why = upstream_last_error();
    if (why[0])
        api_fail(ctx, 400, "invalid_request_error", "unsupported_for_provider", NULL,
                 "this request cannot be sent to provider \"%s\": %s",
                 rc->rq.model->provider_name, why);
    else
        api_fail(ctx, 502, "upstream_error", "upstream_unreachable", NULL,
                 "the call to provider \"%s\" could not be started", rc->rq.model->provider_name);
    responses_send_error(rc);
}

static void responses_refuse(responses_call *rc, const gate_refusal *why)
{
    api_ctx *ctx = rc->ctx;
    if (why->retry_after_s)
        snprintf(ctx->retry_after, sizeof ctx->retry_after, "%u", why->retry_after_s);
    api_add_ratelimit_headers(ctx->req, &rc->mc.gate.ratelimit);
    api_fail(ctx, why->status, why->type, why->code, NULL, "%s", why->message);
    responses_send_error(rc);
}

static void responses_gate_ready(metered_call *mc, void *arg)
{
    (void)mc;
    responses_call *rc = arg;
    rc->waiting = false;
    responses_dispatch(rc);
}

static void responses_gate_refused(metered_call *mc, const gate_refusal *why, void *arg)
{
    (void)mc;
    responses_call *rc = arg;
    rc->waiting = false;
    responses_refuse(rc, why);
}

static void responses_on_abort(http_request *req)
{
    responses_call *rc = ((api_ctx *)req->user)->handler_state;
    if (!rc) return;
    if (rc->mc.call) {
        metered_call_cancel(&rc->mc, "client went away");   /* on_done follows, synchronously */
    } else if (rc->waiting) {
        rc->waiting = false;
        metered_call_cancel(&rc->mc, "client went away");
        api_fail(rc->ctx, 499, "invalid_request_error", "client_gone", NULL, "client went away");
        responses_send_error(rc);
    }
}

static void responses_on_drain(http_request *req)
{
    responses_call *rc = ((api_ctx *)req->user)->handler_state;
    if (rc) metered_call_resume(&rc->mc);
}

/* Translate (with the chain read), check as a chat request, and enter the
 * metered call. */
static void responses_start(responses_call *rc)
{
    api_ctx *ctx = rc->ctx;
    http_request *req = ctx->req;
    chat_request_error e;
    cJSON *history = NULL;
    if (rc->history) {
        history = cJSON_Parse(rc->history);
        free(rc->history);
        rc->history = NULL;
    }
    size_t chat_len = 0;
    /* Translated either way: the chat request is what is checked (model,
     * output cap, service tier…) on both paths, so both govern alike. */
    char *chat = responses_chat_body(&rc->rq, history, &chat_len, &e);
    if (!chat) {
        cJSON_Delete(history);
        responses_fail(rc, &e);
        return;
    }
    chat_request cr;
    bool ok = chat_request_parse(chat, chat_len, &ctx->env->cfg, &cr, &e);
    free(chat);
    if (!ok) {
        cJSON_Delete(history);
        /* the chat route's names of the Responses fields */
        if (strcmp(e.param, "max_completion_tokens") == 0) snprintf(e.param, sizeof e.param, "max_output_tokens");
        responses_fail(rc, &e);
        return;
    }
    rc->upstream_body = cr.upstream_body;            /* ownership moves to rc */
    rc->upstream_body_len = cr.upstream_body_len;
    rc->max_output = (uint64_t)cr.choices * cr.max_output_tokens;
    rc->passthrough = responses_model_passthrough(rc->rq.model);
    if (rc->passthrough) {
        /* The same governed cap, in the Responses request itself. */
        free(rc->upstream_body);
        rc->upstream_body = responses_passthrough_body(&rc->rq, history, rc->rq.model->upstream_model,
                                                       cr.max_output_tokens, &rc->upstream_body_len);
    }
    cJSON_Delete(history);
    ids_new(rc->id, "resp");
    rc->resp = responses_object_new(&rc->rq, rc->id, time_now_unix());
    responses_stream_init(&rc->rs, rc->resp);
    req->on_abort = responses_on_abort;
    req->on_drain = responses_on_drain;

    user_limits lim[3];
    identity_limits(ctx->env->identity, &ctx->scope, &lim[0], &lim[1], &lim[2]);
    gate_who who = {ctx->scope.tenant_id, ctx->scope.user_id, ctx->scope.key_id,
                    ctx->scope.tier[0] ? ctx->scope.tier : NULL, &lim[0], &lim[1], &lim[2]};
    metered_call_params p = {
        .gate = ctx->thread->gate, .who = &who, .owner = &ctx->scope, .model = rc->rq.model,
        .prompt_bytes = rc->upstream_body_len, .max_output = rc->max_output,
        .parent = ctx->span ? obs_span_ctx(ctx->span) : NULL, .stream = rc->rq.stream,
        .deadline_ms = rc->deadline_ms, .responses = rc->passthrough};
    static const metered_callbacks cbs = {responses_on_event, responses_gate_ready,
                                          responses_gate_refused, responses_on_done};
    gate_refusal why;
    int r = metered_call_begin(&rc->mc, &p, &cbs, rc, &why);
    if (r == GATE_REFUSED) {
        responses_refuse(rc, &why);
        return;
    }
    api_add_ratelimit_headers(req, &rc->mc.gate.ratelimit);
    if (r == GATE_WAIT) {
        rc->waiting = true;
        return;
    }
    responses_dispatch(rc);
}

/* ---- before the call: the chain, and room for the turn (thread pool) ---- */

static void responses_load_work(http_request *req)
{
    api_ctx *ctx = req->user;
    responses_call *rc = ctx->handler_state;
    rc->load_status = STORE_OK;
    if (rc->rq.previous_id[0]) {
        rc->load_status = store_response_chain(ctx->env->store, &ctx->scope, rc->rq.previous_id,
                                               &rc->history);
        if (rc->load_status != STORE_OK) {
            if (rc->load_status == STORE_NOT_FOUND)
                api_fail(ctx, 404, "not_found_error", "response_not_found", "previous_response_id",
                         "no response \"%.64s\" to continue (or an earlier response of its "
                         "conversation was deleted)", rc->rq.previous_id);
            else if (rc->load_status == STORE_TOO_LARGE)
                api_fail(ctx, 400, "invalid_request_error", "conversation_too_long",
                         "previous_response_id",
                         "the conversation of \"%.64s\" is longer than this server continues "
                         "(%d responses, %u bytes of items): start a new one",
                         rc->rq.previous_id, STORE_RESPONSE_CHAIN_MAX, STORE_RESPONSE_CHAIN_BYTES);
            else
                api_fail_store(ctx, rc->load_status, "response");
            return;
        }
    }
    if (rc->rq.store) {
        /* A turn keeps the input items and a Response object that repeats
         * the request's other fields: about twice the body, plus the
         * object's own fields. Refuse before paying for an answer that
         * could not be kept; the answer's own size is checked when the
         * turn is written (responses_keep_done). */
        int64_t estimate = 2 * (int64_t)req->body_len + 1024;
        rc->load_status = store_response_room(ctx->env->store, &ctx->scope, estimate);
        if (rc->load_status != STORE_OK) api_fail_store(ctx, rc->load_status, "response");
    }
}

static void responses_load_done(http_request *req)
{
    api_ctx *ctx = req->user;
    responses_call *rc = ctx->handler_state;
    if (rc->load_status != STORE_OK || req->aborted) {
        if (!ctx->is_error)
            api_fail(ctx, 499, "invalid_request_error", "client_gone", NULL, "client went away");
        responses_send_error(rc);
        return;
    }
    responses_start(rc);
}

void api_responses_create(api_ctx *ctx)
{
    http_request *req = ctx->req;
    responses_call *rc = arena_alloc(&req->arena, sizeof *rc);
    memset(rc, 0, sizeof *rc);
    rc->ctx = ctx;
    buf_init(&rc->scratch);
    ctx->handler_state = rc;
    chat_request_error e;
    if (!responses_request_parse(req->body, req->body_len, &ctx->env->cfg, &rc->rq, &e)) {
        responses_fail(rc, &e);
        return;
    }
    if (!api_gateway_deadline(ctx, &rc->deadline_ms)) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_header", "x-brigade-timeout-ms",
                 "x-brigade-timeout-ms must be a positive whole number of milliseconds");
        responses_send_error(rc);
        return;
    }
    if (rc->rq.previous_id[0] || rc->rq.store) {
        http_request_defer(req, responses_load_work, responses_load_done);
        return;
    }
    responses_start(rc);
}

/* ---- GET and DELETE /v1/responses/{id} ---- */

void api_responses_get(api_ctx *ctx)
{
    char *object = NULL;
    store_status st = store_response_get(ctx->env->store, &ctx->scope, ctx->req->params[0], &object);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "response");
        return;
    }
    api_reply_text(ctx, 200, "application/json", object);
}

void api_responses_delete(api_ctx *ctx)
{
    const char *id = ctx->req->params[0];
    store_status st = store_response_delete(ctx->env->store, &ctx->scope, id);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "response");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "response");
    cJSON_AddBoolToObject(o, "deleted", true);
    api_reply(ctx, 200, o);
}
