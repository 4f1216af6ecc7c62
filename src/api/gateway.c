/* gateway.c — POST /v1/chat/completions: the OpenAI-compatible gateway path.
 *
 * The request is checked (valid UTF-8 JSON object, a known model, messages,
 * sane max_tokens), its `model` is swapped for the provider's name, and it
 * is forwarded through the loop's upstream client. Everything else in the
 * body — tools, tool_choice, response_format, sampling fields — passes
 * through unchanged, so clients written for OpenAI work as they are.
 * Streaming responses are relayed event by event with backpressure: when the
 * client reads slowly, the provider transfer is paused rather than buffered.
 * Usage (tokens and cost from the model's price table) is recorded for the
 * calling user, key and model when the call ends.
 *
 * Runs entirely on the loop thread: no store reads, no blocking. */
#include "api/api.h"
#include "api/chat_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/timeutil.h"

typedef struct gateway_call {
    api_ctx         *ctx;
    upstream_call   *call;          /* the attempt in flight, or NULL */
    uv_timer_t      *retry_timer;   /* malloc'd while a retry is pending */
    const model_cfg *model;
    char            *upstream_body; /* kept for retries; freed at the end */
    size_t           upstream_body_len;
    unsigned         attempt;       /* 0 = first */
    bool             stream;
    bool             client_wants_usage;
    bool             stream_started;
    buf              scratch;       /* one SSE event at a time, reused */
    buf              rename;        /* an event or body with the model renamed, reused */
} gateway_call;

static void gateway_start_attempt(gateway_call *g);

/* ---- usage ---- */

/* Charge the calling user for a call that produced an answer — a complete
 * one, or the part of a cut stream the client already received. A failed
 * call that delivered nothing costs the user nothing. */
static void gateway_record_usage(gateway_call *g, const upstream_result *res, int status)
{
    api_ctx *ctx = g->ctx;
    app *a = ctx->app;
    bool delivered = res->error == UPSTREAM_OK || (g->stream_started && res->output_tokens > 0);
    if (!delivered || (res->input_tokens == 0 && res->output_tokens == 0)) return;
    usage_rec u;
    memset(&u, 0, sizeof u);
    u.ts = time_now_unix();
    snprintf(u.tenant_id, sizeof u.tenant_id, "%s", ctx->scope.tenant_id);
    snprintf(u.user_id, sizeof u.user_id, "%s", ctx->scope.user_id);
    snprintf(u.key_id, sizeof u.key_id, "%s", ctx->scope.key_id);
    snprintf(u.model, sizeof u.model, "%s", g->model->name);
    memcpy(u.request_id, ctx->req->request_id, sizeof u.request_id);
    u.input_tokens = res->input_tokens;
    u.output_tokens = res->output_tokens;
    u.cost_nusd = config_cost_nusd(g->model, res->input_tokens, res->output_tokens);
    u.status = status;
    store_usage_record(a->store, &u);
    atomic_fetch_add(&a->metrics.input_tokens, (uint64_t)u.input_tokens);
    atomic_fetch_add(&a->metrics.output_tokens, (uint64_t)u.output_tokens);
    atomic_fetch_add(&a->metrics.cost_nusd, (uint64_t)u.cost_nusd);
}

/* ---- the model name clients see ---- */

/* Providers answer with their own model name; clients asked for brigade's.
 * Swap the top-level "model" value back. A raw `"model":"` can only be a
 * key in valid JSON (inside strings the quotes are escaped), so a textual
 * replacement of the first one is exact. Returns the text to send. */
static const char *gateway_client_model(gateway_call *g, const char *json, size_t len,
                                        size_t *out_len)
{
    const model_cfg *m = g->model;
    *out_len = len;
    if (strcmp(m->name, m->upstream_model) == 0) return json;
    char pat[160];
    int pl = snprintf(pat, sizeof pat, "\"model\":\"%s\"", m->upstream_model);
    if (pl <= 0 || (size_t)pl >= sizeof pat) return json;
    const char *at = memmem(json, len, pat, (size_t)pl);
    if (!at) return json;
    buf *b = &g->rename;
    b->len = 0;
    buf_append(b, json, (size_t)(at - json));
    buf_printf(b, "\"model\":\"%s\"", m->name);   /* config names are plain: no escaping needed */
    buf_append(b, at + pl, len - (size_t)(at - json) - (size_t)pl);
    *out_len = b->len;
    return b->data;
}

/* ---- retries ---- */

/* Retry only before the client has seen a byte: a half-streamed answer
 * cannot be restarted. The policy itself is upstream_should_retry's. */
static bool gateway_should_retry(gateway_call *g, const upstream_result *res, uint64_t *delay_ms)
{
    if (g->stream_started || g->ctx->req->aborted) return false;
    return upstream_should_retry(g->model->provider, g->attempt, res, delay_ms);
}

static void gateway_timer_closed(uv_handle_t *h) { free(h); }

static void gateway_stop_retry_timer(gateway_call *g)
{
    if (!g->retry_timer) return;
    uv_timer_stop(g->retry_timer);
    uv_close((uv_handle_t *)g->retry_timer, gateway_timer_closed);
    g->retry_timer = NULL;
}

static void gateway_retry_fire(uv_timer_t *t)
{
    gateway_call *g = t->data;
    gateway_stop_retry_timer(g);
    g->attempt++;
    gateway_start_attempt(g);
}

/* Turn a failed provider call into the client's error (API.md's table). */
static void gateway_fail_upstream(gateway_call *g, const upstream_result *res)
{
    api_ctx *ctx = g->ctx;
    const char *prov = g->model->provider_name;
    const char *why = res->message ? res->message : upstream_error_name(res->error);
    switch (res->error) {
    case UPSTREAM_TIMEOUT:
        api_fail(ctx, 504, "timeout_error", "upstream_timeout", NULL,
                 "provider \"%s\" did not answer in time", prov);
        return;
    case UPSTREAM_HTTP_STATUS:
        if (res->status == 429) {
            snprintf(ctx->retry_after, sizeof ctx->retry_after, "%u",
                     res->retry_after_s ? res->retry_after_s : 1);
            api_fail(ctx, 429, "rate_limit_error", "upstream_rate_limited", NULL,
                     "provider \"%s\" is rate limiting; retry after %s s", prov, ctx->retry_after);
            return;
        }
        if (res->status >= 400 && res->status < 500 && res->status != 401 && res->status != 403 &&
            res->status != 404 && res->status != 408) {
            /* The provider judged the request itself invalid: the client's to fix. */
            char msg[300] = "";
            cJSON *b = res->body ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "error"), "message");
            if (cJSON_IsString(m)) snprintf(msg, sizeof msg, "%s", m->valuestring);
            cJSON_Delete(b);
            api_fail(ctx, 400, "invalid_request_error", "upstream_rejected", NULL,
                     "provider \"%s\" rejected the request (HTTP %d)%s%s", prov, res->status,
                     msg[0] ? ": " : "", msg);
            return;
        }
        api_fail(ctx, 502, "upstream_error", "upstream_status", NULL,
                 "provider \"%s\" failed with HTTP %d", prov, res->status);
        return;
    case UPSTREAM_CONNECT:
        api_fail(ctx, 502, "upstream_error", "upstream_unreachable", NULL,
                 "could not reach provider \"%s\": %s", prov, why);
        return;
    case UPSTREAM_MALFORMED:
        api_fail(ctx, 502, "upstream_error", "upstream_malformed", NULL,
                 "provider \"%s\" sent an invalid response: %s", prov, why);
        return;
    case UPSTREAM_TRUNCATED:
        api_fail(ctx, 502, "upstream_error", "upstream_truncated", NULL,
                 "provider \"%s\" ended the response early", prov);
        return;
    case UPSTREAM_CANCELLED:
    case UPSTREAM_OK:
    default:
        api_fail(ctx, 502, "upstream_error", "upstream_failed", NULL, "provider \"%s\": %s", prov,
                 why);
        return;
    }
}

/* Frame one event as SSE in the scratch buffer (after renaming the model). */
static void gateway_stream_event(gateway_call *g, const char *json, size_t len)
{
    size_t n;
    const char *text = gateway_client_model(g, json, len, &n);
    g->scratch.len = 0;
    buf_append(&g->scratch, "data: ", 6);
    buf_append(&g->scratch, text, n);
    buf_append(&g->scratch, "\n\n", 2);
}

static bool gateway_on_event(upstream_call *call, const char *json, size_t len, void *arg)
{
    (void)call;
    gateway_call *g = arg;
    http_request *req = g->ctx->req;
    if (req->aborted) return true;          /* on_abort cancels the call; just drain */
    /* We always ask the provider for usage; a client that did not ask for the
     * usage chunk (empty choices) does not get it. */
    if (!g->client_wants_usage && memmem(json, len, "\"choices\":[]", 12)) return true;
    if (!g->stream_started) {
        http_stream_begin(req, 200, "text/event-stream");
        g->stream_started = true;
    }
    gateway_stream_event(g, json, len);
    return http_stream_write(req, g->scratch.data, g->scratch.len);
}

/* The end of the request, whatever happened: answer, record, free. */
static void gateway_finish(gateway_call *g, const upstream_result *res)
{
    api_ctx *ctx = g->ctx;
    http_request *req = ctx->req;
    req->on_abort = NULL;
    req->on_drain = NULL;
    ctx->handler_state = NULL;
    free(g->upstream_body);
    g->upstream_body = NULL;

    int status = 200;
    if (res->error != UPSTREAM_OK) {
        atomic_fetch_add(&ctx->app->metrics.upstream_errors, 1);
        gateway_fail_upstream(g, res);
        status = ctx->status;
        if (res->error != UPSTREAM_CANCELLED)
            log_warn("gateway request=%s model=%s attempts=%u error=%s status=%d",
                     req->request_id, g->model->name, g->attempt + 1,
                     upstream_error_name(res->error), res->status);
    }
    gateway_record_usage(g, res, status);

    buf scratch, rename;
    if (g->stream && (g->stream_started || res->error == UPSTREAM_OK)) {
        if (!g->stream_started) http_stream_begin(req, 200, "text/event-stream");
        if (res->error == UPSTREAM_OK) {
            static const char done[] = "data: [DONE]\n\n";
            http_stream_write(req, done, sizeof done - 1);
        } else {
            /* Headers are gone already: report the failure in-band, the way
             * OpenAI does, so SDKs raise it. */
            cJSON *e = cJSON_CreateObject();
            cJSON *inner = cJSON_AddObjectToObject(e, "error");
            cJSON_AddStringToObject(inner, "type", ctx->err_type);
            cJSON_AddStringToObject(inner, "code", ctx->err_code);
            cJSON_AddStringToObject(inner, "message", ctx->err_message);
            cJSON_AddNullToObject(inner, "param");
            char *text = cJSON_PrintUnformatted(e);
            cJSON_Delete(e);
            if (text) {
                g->scratch.len = 0;
                buf_printf(&g->scratch, "data: %s\n\n", text);
                http_stream_write(req, g->scratch.data, g->scratch.len);
                free(text);
            }
        }
        scratch = g->scratch;
        rename = g->rename;
        http_stream_end(req);
    } else if (res->error == UPSTREAM_OK) {
        size_t n;
        const char *body = gateway_client_model(g, res->body, res->body_len, &n);
        scratch = g->scratch;
        rename = g->rename;
        http_respond(req, 200, "application/json", body, n);
    } else {
        scratch = g->scratch;
        rename = g->rename;
        api_send(ctx);
    }
    /* g lived in the request's arena, which finishing the request freed;
     * the buffers were taken out first. */
    buf_free(&scratch);
    buf_free(&rename);
}

static void gateway_on_done(upstream_call *call, const upstream_result *res, void *arg)
{
    (void)call;
    gateway_call *g = arg;
    g->call = NULL;
    uint64_t delay_ms;
    if (res->error != UPSTREAM_OK && res->error != UPSTREAM_CANCELLED &&
        gateway_should_retry(g, res, &delay_ms)) {
        log_info("gateway request=%s model=%s attempt=%u failed (%s %d); retrying in %llu ms",
                 g->ctx->req->request_id, g->model->name, g->attempt + 1,
                 upstream_error_name(res->error), res->status, (unsigned long long)delay_ms);
        g->retry_timer = malloc(sizeof *g->retry_timer);
        if (!g->retry_timer) abort();
        uv_timer_init(g->ctx->req->loop, g->retry_timer);
        g->retry_timer->data = g;
        uv_timer_start(g->retry_timer, gateway_retry_fire, delay_ms, 0);
        return;
    }
    gateway_finish(g, res);
}

static void gateway_start_attempt(gateway_call *g)
{
    static const upstream_callbacks cbs = {gateway_on_event, gateway_on_done};
    api_ctx *ctx = g->ctx;
    atomic_fetch_add(&ctx->app->metrics.upstream_calls, 1);
    g->call = upstream_chat(ctx->thread->upstream, g->model, g->upstream_body,
                            g->upstream_body_len, g->stream, ctx->req->request_id, &cbs, g);
    if (!g->call) {
        const char *why = upstream_last_error();
        if (why[0]) {
            /* The request cannot be put in this provider's form: the
             * client's to fix. */
            api_fail(ctx, 400, "invalid_request_error", "unsupported_for_provider", NULL,
                     "this request cannot be sent to provider \"%s\": %s",
                     g->model->provider_name, why);
            buf scratch = g->scratch, rename = g->rename;
            free(g->upstream_body);
            ctx->req->on_abort = NULL;
            ctx->req->on_drain = NULL;
            ctx->handler_state = NULL;
            api_send(ctx);
            buf_free(&scratch);
            buf_free(&rename);
            return;
        }
        upstream_result res = {.error = UPSTREAM_CONNECT,
                               .message = "the call could not be started"};
        gateway_finish(g, &res);
    }
    /* else: upstream_chat never calls back from inside itself. */
}

/* The client went away: stop the provider call (no point paying for tokens
 * nobody reads) or the pending retry; the request then finishes. */
static void gateway_on_abort(http_request *req)
{
    gateway_call *g = ((api_ctx *)req->user)->handler_state;
    if (!g) return;
    if (g->call) {
        upstream_call_cancel(g->call);      /* on_done follows, synchronously */
    } else if (g->retry_timer) {
        gateway_stop_retry_timer(g);
        upstream_result res = {.error = UPSTREAM_CANCELLED, .message = "client went away"};
        gateway_finish(g, &res);
    }
}

/* The client caught up: let the provider send again. */
static void gateway_on_drain(http_request *req)
{
    gateway_call *g = ((api_ctx *)req->user)->handler_state;
    if (g && g->call) upstream_call_resume(g->call);
}

void api_chat_completions(api_ctx *ctx)
{
    http_request *req = ctx->req;
    chat_request cr;
    chat_request_error cerr;
    if (!chat_request_parse(req->body, req->body_len, &ctx->app->cfg, &cr, &cerr)) {
        api_fail(ctx, cerr.status, cerr.type, cerr.code, cerr.param[0] ? cerr.param : NULL, "%s",
                 cerr.message);
        api_send(ctx);
        return;
    }
    gateway_call *g = arena_alloc(&req->arena, sizeof *g);
    memset(g, 0, sizeof *g);
    g->ctx = ctx;
    g->model = cr.model;
    g->stream = cr.stream;
    g->client_wants_usage = cr.client_wants_usage;
    g->upstream_body = cr.upstream_body;          /* ownership moves to g */
    g->upstream_body_len = cr.upstream_body_len;
    buf_init(&g->scratch);
    buf_init(&g->rename);
    ctx->handler_state = g;
    req->on_abort = gateway_on_abort;
    req->on_drain = gateway_on_drain;
    gateway_start_attempt(g);
}
