/* gateway.c — POST /v1/chat/completions: the OpenAI-compatible gateway path.
 *
 * The request is checked (valid UTF-8 JSON object with no repeated key, a
 * known model, messages, sane max_tokens and n, nothing billed beyond what
 * can be reserved: chat_request.h), its `model` is swapped for the
 * provider's name, and it is forwarded through the loop's upstream
 * client. Everything else in the body — tools, tool_choice,
 * response_format, sampling fields — passes through unchanged, so clients
 * written for OpenAI work as they are.
 * Streaming responses are relayed event by event with backpressure: when the
 * client reads slowly, the provider transfer is paused rather than buffered.
 * Usage (tokens and cost from the model's price table) is recorded for the
 * calling user, key and model when the call ends.
 *
 * Retries, deadlines, deployments and fallbacks are the upstream module's
 * (upstream_chat, docs/resilience.md): the gateway gives the call its
 * deadline — server.request_timeout_ms, or the client's
 * x-brigade-timeout-ms capped by server.max_request_timeout_ms — and tells
 * the client what served it (x-brigade-model, x-brigade-deployment).
 *
 * The call itself is a metered model call (govern/call.h), the same one
 * agent runs make: rate limits, the worst-case cost reserved against every
 * budget, a fair-queue slot of the model's upstream capacity, settling to
 * what was delivered, the usage row, spans. This file is the HTTP side:
 * the answer, the renaming, and x-ratelimit-* headers that tell the client
 * where it stands.
 *
 * Runs entirely on the loop thread: no store reads, no blocking. */
#include "api/gateway.h"
#include "govern/call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/timeutil.h"

typedef struct gateway_call {
    api_ctx         *ctx;
    const model_cfg *model;         /* the model the client asked for */
    const model_cfg *served;        /* the model of the attempt answering (a fallback, maybe) */
    const char      *served_upstream; /* its name at the provider */
    char            *upstream_body; /* freed at the end */
    size_t           upstream_body_len;
    uint64_t         deadline_ms;   /* uv_now clock */
    bool             stream;
    bool             client_wants_usage;
    bool             stream_started;
    buf              scratch;       /* one SSE event at a time, reused */
    buf              rename;        /* an event or body with the model renamed, reused */
    metered_call     mc;            /* governance, the provider call, its usage and spans */
    bool             waiting;       /* queued for an upstream slot */
    bool             rl_sent;       /* x-ratelimit-* added (once the gate knows them) */
    const gateway_dialect *dialect; /* how the client's API spells the answer (NULL: as is) */
    void            *dialect_state;
} gateway_call;

/* ---- usage ---- */

/* The usage row of a delivered call (the metered call's rule; it counts
 * the process totals for /metrics too). */
static void gateway_record_usage(gateway_call *g, const upstream_result *res, int status)
{
    metered_call_record_usage(&g->mc, g->ctx->env->store, res, g->ctx->req->request_id, status, NULL);
}

/* ---- the model name clients see ---- */

/* Providers answer with their own model name; clients asked for brigade's.
 * Swap the top-level "model" value back. A raw `"model":"` can only be a
 * key in valid JSON (inside strings the quotes are escaped), so a textual
 * replacement of the first one is exact. Returns the text to send. */
static const char *gateway_client_model(gateway_call *g, const char *json, size_t len,
                                        size_t *out_len)
{
    const model_cfg *m = g->served ? g->served : g->model;
    const char *up = g->served_upstream ? g->served_upstream : m->upstream_model;
    *out_len = len;
    if (strcmp(m->name, up) == 0) return json;
    char pat[160];
    int pl = snprintf(pat, sizeof pat, "\"model\":\"%s\"", up);
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

/* What serves the call now (for renaming and the response headers). */
static void gateway_note_served(gateway_call *g, upstream_call *call)
{
    const model_cfg *m = upstream_call_model(call);
    if (m) g->served = m;
    const char *up = upstream_call_upstream_model(call);
    if (up) g->served_upstream = up;
}

static void gateway_served_headers(gateway_call *g, const char *deployment)
{
    http_request *req = g->ctx->req;
    if (g->served) http_add_header(req, "x-brigade-model", g->served->name);
    if (deployment) http_add_header(req, "x-brigade-deployment", deployment);
}

/* Turn a failed provider call into the client's error (docs/api.md's table). */
void api_gateway_fail_upstream(api_ctx *ctx, const model_cfg *model, const upstream_result *res)
{
    const char *prov = res->deployment ? res->deployment : model->provider_name;
    const char *why = res->message ? res->message : upstream_error_name(res->error);
    switch (res->error) {
    case UPSTREAM_TIMEOUT:
        api_fail(ctx, 504, "timeout_error", "upstream_timeout", NULL,
                 "provider \"%s\" did not answer in time: %s", prov, why);
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

/* Whether the chunk holds "choices":[] (the usage chunk): memmem's answer,
 * found from the chunk's few ']' rather than by a substring search of
 * every chunk (a text's quote inside a string is escaped, so neither
 * reading can match inside one). */
static bool gateway_chunk_empty_choices(const char *json, size_t len)
{
    static const char pat[] = "\"choices\":[]";
    const size_t pl = sizeof pat - 1;
    const char *p = json, *end = json + len;
    while ((p = memchr(p, ']', (size_t)(end - p)))) {
        size_t at = (size_t)(p - json);
        if (at + 1 >= pl && memcmp(p + 1 - pl, pat, pl) == 0) return true;
        p++;
    }
    return false;
}

static bool gateway_on_event(metered_call *mc, upstream_call *call, const char *json, size_t len,
                             void *arg)
{
    (void)mc;
    gateway_call *g = arg;
    http_request *req = g->ctx->req;
    if (req->aborted) return true;          /* on_abort cancels the call; just drain */
    /* We always ask the provider for usage; a client that did not ask for the
     * usage chunk (empty choices) does not get it. */
    if (!g->dialect && !g->client_wants_usage && gateway_chunk_empty_choices(json, len))
        return true;
    if (!g->stream_started) {
        gateway_note_served(g, call);
        gateway_served_headers(g, upstream_call_deployment(call));
        http_stream_begin(req, 200, "text/event-stream");
        g->stream_started = true;
        metered_call_reached_client(&g->mc);
        obs_gauge_add(obs_series_of(obs_m_active_streams(), NULL), 1);
    }
    if (g->dialect) {
        size_t n;
        const char *text = gateway_client_model(g, json, len, &n);
        g->scratch.len = 0;
        g->dialect->event(g->dialect_state, text, n, &g->scratch);
        if (!g->scratch.len) return true;
    } else {
        gateway_stream_event(g, json, len);
    }
    return http_stream_write(req, g->scratch.data, g->scratch.len);
}

void gateway_openai_stream_end(bool ok, const char *type, const char *code, const char *message,
                               buf *out)
{
    if (ok) {
        buf_puts(out, "data: [DONE]\n\n");
        return;
    }
    /* Headers are gone already: report the failure in-band, the way
     * OpenAI does, so SDKs raise it. */
    cJSON *e = cJSON_CreateObject();
    cJSON *inner = cJSON_AddObjectToObject(e, "error");
    cJSON_AddStringToObject(inner, "type", type);
    cJSON_AddStringToObject(inner, "code", code);
    cJSON_AddStringToObject(inner, "message", message);
    cJSON_AddNullToObject(inner, "param");
    char *text = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    if (text) {
        buf_printf(out, "data: %s\n\n", text);
        free(text);
    }
}

/* The call is over for the request: no more abort or drain callbacks, and
 * the body kept for the upstream is freed. */
static void gateway_detach(gateway_call *g)
{
    http_request *req = g->ctx->req;
    req->on_abort = NULL;
    req->on_drain = NULL;
    g->ctx->handler_state = NULL;
    free(g->upstream_body);
    g->upstream_body = NULL;
}

/* What outlives g (which lives in the request's arena, freed when the
 * answer is sent): its buffers and the dialect's state, taken out first
 * and freed after. */
typedef struct gateway_leftovers {
    buf scratch, rename;
    const gateway_dialect *dialect;
    void *dialect_state;
} gateway_leftovers;

static gateway_leftovers gateway_take_leftovers(gateway_call *g)
{
    gateway_leftovers l = {g->scratch, g->rename, g->dialect, g->dialect_state};
    return l;
}

static void gateway_free_leftovers(gateway_leftovers *l)
{
    buf_free(&l->scratch);
    buf_free(&l->rename);
    if (l->dialect && l->dialect->free) l->dialect->free(l->dialect_state);
}

/* The end of the request, whatever happened: answer, record, free. */
static void gateway_finish(gateway_call *g, const upstream_result *res)
{
    api_ctx *ctx = g->ctx;
    http_request *req = ctx->req;
    gateway_detach(g);

    /* The metered call has settled it (the delivered rule) and ended its
     * spans; the usage row below follows the same rule. */
    if (g->stream_started) obs_gauge_add(obs_series_of(obs_m_active_streams(), NULL), -1);

    int status = 200;
    if (res->error != UPSTREAM_OK) {
            api_gateway_fail_upstream(ctx, g->model, res);
        status = ctx->status;
        if (res->error != UPSTREAM_CANCELLED)
            log_warn("gateway request=%s model=%s attempts=%u error=%s status=%d",
                     req->request_id, g->model->name, res->attempts,
                     upstream_error_name(res->error), res->status);
    }
    gateway_record_usage(g, res, status);
    if (!g->stream_started) {
        if (res->served_model) g->served = res->served_model;
        gateway_served_headers(g, res->deployment);
    }

    if (g->stream && (g->stream_started || res->error == UPSTREAM_OK)) {
        if (!g->stream_started) http_stream_begin(req, 200, "text/event-stream");
        g->scratch.len = 0;
        if (g->dialect) {
            bool ok = res->error == UPSTREAM_OK;
            g->dialect->end(g->dialect_state, ok, ok ? 200 : ctx->status, ctx->err_type,
                            ctx->err_code, ok ? NULL : ctx->err_message, &g->scratch);
        } else {
            gateway_openai_stream_end(res->error == UPSTREAM_OK, ctx->err_type, ctx->err_code,
                                      ctx->err_message, &g->scratch);
        }
        if (g->scratch.len) http_stream_write(req, g->scratch.data, g->scratch.len);
        gateway_leftovers l = gateway_take_leftovers(g);
        http_stream_end(req);
        gateway_free_leftovers(&l);
    } else if (res->error == UPSTREAM_OK) {
        size_t n;
        const char *body = gateway_client_model(g, res->body, res->body_len, &n);
        char *translated = NULL;
        if (g->dialect) {
            size_t tn = 0;
            translated = g->dialect->answer(g->dialect_state, body, n, &tn);
            if (translated) {
                body = translated;
                n = tn;
            }
        }
        gateway_leftovers l = gateway_take_leftovers(g);
        http_respond(req, 200, "application/json", body, n);
        free(translated);
        gateway_free_leftovers(&l);
    } else {
        gateway_leftovers l = gateway_take_leftovers(g);
        api_send(ctx);
        gateway_free_leftovers(&l);
    }
    /* g lived in the request's arena, which finishing the request freed;
     * what it held was taken out first. */
}

static void gateway_on_done(metered_call *mc, upstream_call *call, const upstream_result *res,
                            void *arg)
{
    (void)mc;
    gateway_call *g = arg;
    gateway_note_served(g, call);
    gateway_finish(g, res);
}

static void gateway_start(gateway_call *g)
{
    api_ctx *ctx = g->ctx;
    if (!metered_call_dispatch(&g->mc, ctx->thread->upstream, g->upstream_body,
                               g->upstream_body_len, ctx->req->request_id)) {
        /* Not started: the metered call is over (released, span ended). */
        const char *why = upstream_last_error();
        if (why[0]) {
            /* The request cannot be put in this provider's form: the
             * client's to fix. */
            api_fail(ctx, 400, "invalid_request_error", "unsupported_for_provider", NULL,
                     "this request cannot be sent to provider \"%s\": %s",
                     g->model->provider_name, why);
            gateway_detach(g);
            gateway_leftovers l = gateway_take_leftovers(g);
            api_send(ctx);
            gateway_free_leftovers(&l);
            return;
        }
        upstream_result res = {.error = UPSTREAM_CONNECT,
                               .message = "the call could not be started"};
        gateway_finish(g, &res);
    }
    /* else: upstream_chat never calls back from inside itself. */
}

/* The deadline of the call: the client's x-brigade-timeout-ms (a positive
 * integer of ms, capped by server.max_request_timeout_ms) or
 * server.request_timeout_ms. false if the header is malformed. */
bool api_gateway_deadline(api_ctx *ctx, uint64_t *deadline)
{
    const brigade_config *cfg = &ctx->env->cfg;
    uint64_t ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : 120000;
    uint64_t max = cfg->max_request_timeout_ms ? cfg->max_request_timeout_ms : 600000;
    const char *h = http_header_get(ctx->req, "x-brigade-timeout-ms");
    if (h) {
        uint64_t v = 0;
        size_t i = 0;
        for (; h[i] >= '0' && h[i] <= '9' && i < 12; i++) v = v * 10 + (uint64_t)(h[i] - '0');
        if (i == 0 || h[i] != '\0' || v == 0) return false;
        ms = v;
    }
    if (ms > max) ms = max;
    *deadline = uv_now(ctx->req->loop) + ms;
    return true;
}

/* x-ratelimit-* once: right after admission, or when the gate's answer
 * came later (the Redis backend answers asynchronously). */
static void gateway_ratelimit_headers(gateway_call *g, http_request *req)
{
    const govern_ratelimit_info *rl = &g->mc.gate.ratelimit;
    if (g->rl_sent || (!rl->has_requests && !rl->has_tokens)) return;
    api_add_ratelimit_headers(req, rl);
    g->rl_sent = true;
}

/* A governance refusal (before the call, or its deadline passing in the
 * queue): the limit it names, when to retry, and where the caller stands. */
static void gateway_refuse(gateway_call *g, const gate_refusal *why)
{
    api_ctx *ctx = g->ctx;
    http_request *req = ctx->req;
    gateway_detach(g);
    if (why->retry_after_s)
        snprintf(ctx->retry_after, sizeof ctx->retry_after, "%u", why->retry_after_s);
    gateway_ratelimit_headers(g, req);
    api_fail(ctx, why->status, why->type, why->code, NULL, "%s", why->message);
    gateway_leftovers l = gateway_take_leftovers(g);
    api_send(ctx);
    gateway_free_leftovers(&l);
}

static void gateway_gate_ready(metered_call *mc, void *arg)
{
    (void)mc;
    gateway_call *g = arg;
    g->waiting = false;
    gateway_ratelimit_headers(g, g->ctx->req);
    gateway_start(g);
}

static void gateway_gate_refused(metered_call *mc, const gate_refusal *why, void *arg)
{
    (void)mc;
    gateway_call *g = arg;
    g->waiting = false;
    gateway_refuse(g, why);
}

/* The client went away: stop the provider call (no point paying for tokens
 * nobody reads), or leave the queue; the request then finishes. */
static void gateway_on_abort(http_request *req)
{
    gateway_call *g = ((api_ctx *)req->user)->handler_state;
    if (!g) return;
    if (g->mc.call) {
        metered_call_cancel(&g->mc, "client went away");   /* on_done follows, synchronously */
    } else if (g->waiting) {
        g->waiting = false;
        metered_call_cancel(&g->mc, "client went away");   /* out of the queue, released */
        upstream_result res = {.error = UPSTREAM_CANCELLED, .message = "client went away"};
        gateway_finish(g, &res);
    }
}

/* The client caught up: let the provider send again. */
static void gateway_on_drain(http_request *req)
{
    gateway_call *g = ((api_ctx *)req->user)->handler_state;
    if (g) metered_call_resume(&g->mc);
}

bool gateway_read_request(api_ctx *ctx, gateway_request_reader read, chat_request *cr)
{
    http_request *req = ctx->req;
    chat_request_error cerr;
    if (read(req->body, req->body_len, &ctx->env->cfg, cr, &cerr)) return true;
    api_fail(ctx, cerr.status, cerr.type, cerr.code, cerr.param[0] ? cerr.param : NULL, "%s",
             cerr.message);
    api_send(ctx);
    return false;
}

void api_chat_completions(api_ctx *ctx)
{
    chat_request cr;
    if (gateway_read_request(ctx, chat_request_parse, &cr)) gateway_run(ctx, &cr, NULL, NULL);
}

void gateway_run(api_ctx *ctx, chat_request *cr_in, const gateway_dialect *dialect, void *state)
{
    http_request *req = ctx->req;
    chat_request cr = *cr_in;
    cr_in->upstream_body = NULL;
    uint64_t deadline;
    if (!api_gateway_deadline(ctx, &deadline)) {
        chat_request_free(&cr);
        if (dialect && dialect->free) dialect->free(state);
        api_fail(ctx, 400, "invalid_request_error", "invalid_header", "x-brigade-timeout-ms",
                 "x-brigade-timeout-ms must be a positive whole number of milliseconds");
        api_send(ctx);
        return;
    }
    gateway_call *g = arena_alloc(&req->arena, sizeof *g);
    memset(g, 0, sizeof *g);
    g->ctx = ctx;
    g->dialect = dialect;
    g->dialect_state = state;
    g->model = cr.model;
    g->stream = cr.stream;
    g->client_wants_usage = cr.client_wants_usage;
    g->upstream_body = cr.upstream_body;          /* ownership moves to g */
    g->upstream_body_len = cr.upstream_body_len;
    g->deadline_ms = deadline;
    buf_init(&g->scratch);
    buf_init(&g->rename);
    ctx->handler_state = g;
    req->on_abort = gateway_on_abort;
    req->on_drain = gateway_on_drain;

    /* Governance: who is calling, with the limits identity has for them. */
    user_limits lim[3];
    identity_limits(ctx->env->identity, &ctx->scope, &lim[0], &lim[1], &lim[2]);
    gate_who who = {ctx->scope.tenant_id, ctx->scope.user_id, ctx->scope.key_id,
                    ctx->scope.tier[0] ? ctx->scope.tier : NULL, &lim[0], &lim[1], &lim[2]};
    /* Each of the n choices may run to the output cap: all of them are
     * reserved and counted against tpm; settling charges what the
     * provider reports. */
    metered_call_params p = {
        .gate = ctx->thread->gate, .who = &who, .owner = &ctx->scope, .model = g->model,
        .prompt_bytes = g->upstream_body_len,
        .max_output = (uint64_t)cr.choices * cr.max_output_tokens,
        .parent = ctx->span ? obs_span_ctx(ctx->span) : NULL, .stream = g->stream,
        .deadline_ms = deadline};
    static const metered_callbacks cbs = {gateway_on_event, gateway_gate_ready,
                                          gateway_gate_refused, gateway_on_done};
    gate_refusal why;
    int r = metered_call_begin(&g->mc, &p, &cbs, g, &why);
    if (r == GATE_REFUSED) {
        gateway_refuse(g, &why);
        return;
    }
    gateway_ratelimit_headers(g, req);
    if (r == GATE_WAIT) {
        g->waiting = true;              /* gateway_gate_ready or _refused follows */
        return;
    }
    gateway_start(g);
}
