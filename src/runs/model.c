/* model.c — performing a CALL_MODEL effect: send the core's request to the
 * agent's model (always streamed, so the client sees `message.delta` events
 * as text arrives), assemble the reply — text and tool calls — from the
 * chunks, charge its usage to the user, and feed it back to the core.
 * Retries, deployments and fallbacks are upstream_chat's; the call's
 * deadline is what is left of the run's wall time.
 *
 * Before each call: the agent's per-run and per-session cost caps, the
 * degradation rule (a nearly spent budget sends the call to the agent's
 * cheaper model), and the governance gate (govern/gate.h) — rate limits,
 * the worst-case cost reserved, a fair-queue slot. After it the
 * reservation is settled to what was charged. */
#include "runs/runs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/timeutil.h"

static void run_model_leave_gate(run_exec *x, bool delivered, const upstream_result *res);

/* Merge one streamed tool-call fragment into the call at its index. */
static void run_model_take_tool_delta(run_exec *x, const cJSON *d)
{
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(d, "index");
    int i = cJSON_IsNumber(idx) ? idx->valueint : 0;
    if (i < 0 || i > 127) return;
    if (!x->reply_tools) x->reply_tools = cJSON_CreateArray();
    while (cJSON_GetArraySize(x->reply_tools) <= i) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "id", "");
        cJSON_AddStringToObject(c, "type", "function");
        cJSON *f = cJSON_AddObjectToObject(c, "function");
        cJSON_AddStringToObject(f, "name", "");
        cJSON_AddStringToObject(f, "arguments", "");
        cJSON_AddItemToArray(x->reply_tools, c);
    }
    cJSON *call = cJSON_GetArrayItem(x->reply_tools, i);
    cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(d, "id");
    const cJSON *df = cJSON_GetObjectItemCaseSensitive(d, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(df, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(df, "arguments");
    if (cJSON_IsString(id) && id->valuestring[0])
        cJSON_ReplaceItemInObjectCaseSensitive(call, "id", cJSON_CreateString(id->valuestring));
    if (cJSON_IsString(name) && name->valuestring[0])
        cJSON_ReplaceItemInObjectCaseSensitive(fn, "name", cJSON_CreateString(name->valuestring));
    if (cJSON_IsString(args) && args->valuestring[0]) {
        const cJSON *cur = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        size_t a = strlen(cur->valuestring), b = strlen(args->valuestring);
        if (a + b > (1u << 20)) return;   /* a model cannot make us hold more than 1 MiB */
        char *joined = malloc(a + b + 1);
        if (!joined) abort();
        memcpy(joined, cur->valuestring, a);
        memcpy(joined + a, args->valuestring, b + 1);
        cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", cJSON_CreateString(joined));
        free(joined);
    }
}

static bool run_model_on_event(upstream_call *call, const char *json, size_t len, void *arg)
{
    (void)call;
    run_exec *x = arg;
    cJSON *chunk = cJSON_ParseWithLength(json, len);
    if (!chunk) return true;            /* the provider layer reports malformed streams */
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk, "choices"), 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(delta, "content");
    bool more = true;
    if (cJSON_IsString(content) && content->valuestring[0]) {
        size_t n = strlen(content->valuestring);
        if (x->reply_text.len + n <= (4u << 20)) buf_append(&x->reply_text, content->valuestring, n);
        x->reply_started = true;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "text", content->valuestring);
        run_event(x, "message.delta", d);
        /* A slow client pauses the model rather than growing our buffers. */
        more = !x->sub || !x->sub_full;
    }
    const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
    const cJSON *tc;
    cJSON_ArrayForEach(tc, tcs) run_model_take_tool_delta(x, tc);
    cJSON_Delete(chunk);
    return more;
}

static void run_model_charge(run_exec *x, const upstream_result *res)
{
    /* A fallback that served the call is charged at its own prices. */
    const model_cfg *m = res->served_model ? res->served_model
                         : x->call_model ? x->call_model : x->agent->model;
    int64_t cost = config_cost_nusd(m, res->input_tokens, res->output_tokens);
    x->rec.input_tokens += res->input_tokens;
    x->rec.output_tokens += res->output_tokens;
    x->rec.cost_nusd += cost;
    if (res->input_tokens == 0 && res->output_tokens == 0) return;
    usage_rec u;
    memset(&u, 0, sizeof u);
    u.ts = time_now_unix();
    snprintf(u.tenant_id, sizeof u.tenant_id, "%s", x->sc.tenant_id);
    snprintf(u.user_id, sizeof u.user_id, "%s", x->sc.user_id);
    snprintf(u.key_id, sizeof u.key_id, "%s", x->sc.key_id);
    snprintf(u.model, sizeof u.model, "%s", m->name);
    snprintf(u.deployment, sizeof u.deployment, "%s", res->deployment ? res->deployment : "");
    snprintf(u.request_id, sizeof u.request_id, "%.32s", x->rec.id);
    u.input_tokens = res->input_tokens;
    u.output_tokens = res->output_tokens;
    u.cost_nusd = cost;
    u.status = 200;
    store_usage_record(x->r->st, &u);
    obs_counter_add(obs_series_of(obs_m_tokens(), OBS_L(u.tenant_id, u.model, "input")),
                    (uint64_t)u.input_tokens);
    obs_counter_add(obs_series_of(obs_m_tokens(), OBS_L(u.tenant_id, u.model, "output")),
                    (uint64_t)u.output_tokens);
    obs_counter_add(obs_series_of(obs_m_cost(), OBS_L(u.tenant_id, u.model)), (uint64_t)u.cost_nusd);
}

static void run_model_on_done(upstream_call *call, const upstream_result *res, void *arg)
{
    (void)call;
    run_exec *x = arg;
    x->call = NULL;
    if (x->finishing) return;           /* cancelled by run_exec_end */
    if (res->error == UPSTREAM_CANCELLED) return;   /* run_model_abort: whoever cancelled decides */
    /* Governance: settle to what is charged (a failed call whose text
     * reached the client is charged for it, like a cut gateway stream). */
    bool delivered = res->error == UPSTREAM_OK || (x->reply_started && res->output_tokens > 0);
    if (delivered && res->error != UPSTREAM_OK) run_model_charge(x, res);
    run_model_leave_gate(x, delivered, res);
    {
        const model_cfg *m = res->served_model ? res->served_model : x->call_model;
        upstream_span_end(x->model_span, res,
                          delivered ? config_cost_nusd(m, res->input_tokens, res->output_tokens) : 0);
        x->model_span = NULL;
    }
    if (res->error != UPSTREAM_OK) {
        log_info("run %s: model call failed after %u attempts (%s %d)", x->rec.id, res->attempts,
                 upstream_error_name(res->error), res->status);
        char msg[200];
        if (res->error == UPSTREAM_HTTP_STATUS)
            snprintf(msg, sizeof msg, "the model's provider failed with HTTP %d", res->status);
        else
            snprintf(msg, sizeof msg, "the model's provider failed: %s",
                     res->message ? res->message : upstream_error_name(res->error));
        free(x->call_body);
        x->call_body = NULL;
        run_exec_fail(x, res->error == UPSTREAM_TIMEOUT ? "model_timeout" : "model_error", msg);
        return;
    }
    free(x->call_body);
    x->call_body = NULL;
    run_model_charge(x, res);

    /* The assistant message, as the core and the transcript will see it. */
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "role", "assistant");
    if (x->reply_text.len) cJSON_AddStringToObject(msg, "content", x->reply_text.data);
    else cJSON_AddNullToObject(msg, "content");
    if (x->reply_tools && cJSON_GetArraySize(x->reply_tools) > 0) {
        cJSON_AddItemToObject(msg, "tool_calls", x->reply_tools);
        x->reply_tools = NULL;
    }
    x->reply_text.len = 0;
    cJSON_Delete(x->reply_tools);
    x->reply_tools = NULL;
    /* Kept for the transcript: written with its tool results, as one group. */
    cJSON_Delete(x->assistant_msg);
    x->assistant_msg = cJSON_Duplicate(msg, true);
    step_event ev = {.kind = STEP_EVENT_MODEL_REPLY, .message = msg,
                     .output_tokens = res->output_tokens};
    run_exec_feed(x, &ev);
}

static void run_model_on_attempt(upstream_call *call, const upstream_attempt *a, void *arg)
{
    (void)call;
    run_exec *x = arg;
    upstream_span_attempt(x->model_span, &x->sc, a);
}

/* End the spans of a call that will not complete normally. */
static void run_model_end_spans(run_exec *x, const char *why)
{
    if (x->queue_span) {
        obs_span_end(x->queue_span, OBS_STATUS_ERROR, why);
        x->queue_span = NULL;
    }
    if (x->model_span) {
        obs_span_end(x->model_span, OBS_STATUS_ERROR, why);
        x->model_span = NULL;
    }
}

static void run_model_start(run_exec *x)
{
    static const upstream_callbacks cbs = {run_model_on_event, run_model_on_done,
                                           run_model_on_attempt};
    const model_cfg *model = x->call_model ? x->call_model : x->agent->model;
    x->reply_text.len = 0;
    x->reply_started = false;
    cJSON_Delete(x->reply_tools);
    x->reply_tools = NULL;
    /* The run's wall-time timer says how much time is left: the model
     * call, its retries and fallbacks must fit in it. */
    if (x->queue_span) {
        obs_span_set_int(x->queue_span, "brigade.queue.wait_ms", x->gate.queue_wait_ms);
        obs_span_end(x->queue_span, OBS_STATUS_OK, NULL);
        x->queue_span = NULL;
    }
    /* The provider continues the trace from the model call's span. */
    char tp[OBS_TRACEPARENT_LEN + 1] = "";
    if (x->model_span) obs_traceparent_format(obs_span_ctx(x->model_span), tp);
    upstream_opts opts = {.request_id = x->rec.id, .traceparent = tp[0] ? tp : NULL};
    if (uv_is_active((uv_handle_t *)&x->wall_timer))
        opts.deadline_ms = uv_now(x->t->loop) + uv_timer_get_due_in(&x->wall_timer);
    x->call = upstream_chat(x->t->up, model, x->call_body, x->call_body_len, true, &opts, &cbs, x);
    if (!x->call) {
        run_model_leave_gate(x, false, NULL);
        run_model_end_spans(x, "the call could not be started");
        char msg[300];
        const char *why = upstream_last_error();
        snprintf(msg, sizeof msg, "the call to the model could not be started%s%s",
                 why[0] ? ": " : "", why);
        free(x->call_body);
        x->call_body = NULL;
        run_exec_fail(x, "model_error", msg);
    }
}

/* ---- governance ---- */

static int64_t run_usd_to_nusd(double usd) { return (int64_t)(usd * 1e9 + 0.5); }

static void run_model_leave_gate(run_exec *x, bool delivered, const upstream_result *res)
{
    if (!x->in_gate) return;
    x->in_gate = false;
    int64_t tokens = 0, cost = 0;
    if (delivered && res) {
        const model_cfg *m = res->served_model ? res->served_model : x->call_model;
        tokens = res->input_tokens + res->output_tokens;
        cost = config_cost_nusd(m, res->input_tokens, res->output_tokens);
    }
    gate_leave(&x->gate, delivered, tokens, cost);
}

/* A governance refusal ends the run; a client still waiting without a
 * stream gets the refusal's status (run_finish_done). */
static void run_model_refused(run_exec *x, const gate_refusal *why)
{
    if (x->model_span) obs_span_set_str(x->model_span, "brigade.refused", why->code);
    run_model_end_spans(x, why->message);
    x->refused = true;
    x->refusal = *why;
    free(x->call_body);
    x->call_body = NULL;
    run_exec_fail(x, why->code, why->message);
}

static void run_model_gate_ready(gate_call *c, void *arg)
{
    run_exec *x = arg;
    if (c->queue_wait_ms > 0) {
        x->queue_wait_ms += c->queue_wait_ms;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddNumberToObject(d, "wait_ms", (double)c->queue_wait_ms);
        cJSON_AddStringToObject(d, "model", x->call_model->name);
        run_event(x, "model.queued", d);
    }
    if (x->finishing || x->stopped) {
        run_model_leave_gate(x, false, NULL);
        run_model_end_spans(x, "the run stopped");
        return;
    }
    run_model_start(x);
}

static void run_model_gate_refused(gate_call *c, const gate_refusal *why, void *arg)
{
    (void)c;
    run_exec *x = arg;
    run_model_leave_gate(x, false, NULL);
    if (x->finishing || x->stopped) return;
    run_model_refused(x, why);
}

/* The model this call goes to: the agent's, or its cheaper degrade model
 * once the user's budget is nearly spent. */
static const model_cfg *run_model_choose(run_exec *x, const runs_who *w, cJSON *request)
{
    const agent_cfg *a = x->agent;
    if (!a->degrade_model || !x->r->gate) return a->model;
    if (!x->degraded && gate_budget_nearly_spent(x->r->gate, &w->who, a->degrade_threshold)) {
        x->degraded = true;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "from", a->model->name);
        cJSON_AddStringToObject(d, "to", a->degrade_model->name);
        cJSON_AddStringToObject(d, "reason", "budget nearly spent");
        run_event(x, "model.degraded", d);
    }
    if (!x->degraded) return a->model;
    cJSON_DeleteItemFromObjectCaseSensitive(request, "model");
    cJSON_AddStringToObject(request, "model", a->degrade_model->upstream_model);
    return a->degrade_model;
}

/* The agent's cost caps: would this call's worst case pass them? */
static bool run_model_within_caps(run_exec *x, int64_t est_cost)
{
    const agent_cfg *a = x->agent;
    char msg[200];
    if (a->max_cost_usd_per_run > 0 &&
        x->rec.cost_nusd + est_cost > run_usd_to_nusd(a->max_cost_usd_per_run)) {
        snprintf(msg, sizeof msg, "the next model call could cost up to $%.6f, which would pass the "
                 "agent's cap of $%.6f per run ($%.6f spent)", (double)est_cost / 1e9,
                 a->max_cost_usd_per_run, (double)x->rec.cost_nusd / 1e9);
        run_exec_fail(x, "run_budget_exceeded", msg);
        return false;
    }
    if (a->max_cost_usd_per_session > 0 &&
        x->session_spent_nusd + x->rec.cost_nusd + est_cost >
            run_usd_to_nusd(a->max_cost_usd_per_session)) {
        snprintf(msg, sizeof msg, "the next model call could cost up to $%.6f, which would pass the "
                 "agent's cap of $%.6f per session ($%.6f spent)", (double)est_cost / 1e9,
                 a->max_cost_usd_per_session,
                 (double)(x->session_spent_nusd + x->rec.cost_nusd) / 1e9);
        run_exec_fail(x, "session_budget_exceeded", msg);
        return false;
    }
    return true;
}

void run_model_call(run_exec *x, cJSON *request)
{
    cJSON_DeleteItemFromObjectCaseSensitive(request, "stream");
    cJSON_AddBoolToObject(request, "stream", true);
    runs_who w;
    runs_gate_who(x->r, &x->sc, &w);
    x->call_model = run_model_choose(x, &w, request);
    free(x->call_body);
    x->call_body = cJSON_PrintUnformatted(request);
    cJSON_Delete(request);
    if (!x->call_body) {
        run_exec_fail(x, "internal_error", "out of memory");
        return;
    }
    x->call_body_len = strlen(x->call_body);
    x->model_span = upstream_span_begin(x->run_span ? obs_span_ctx(x->run_span) : NULL, &x->sc,
                                        x->call_model, true);
    int64_t est_tokens, est_cost;
    gate_estimate(x->call_model, x->call_body_len, x->agent->max_output_tokens, &est_tokens, &est_cost);
    if (!run_model_within_caps(x, est_cost)) {
        run_model_end_spans(x, "over the agent's cost cap");
        free(x->call_body);
        x->call_body = NULL;
        return;
    }
    if (!x->r->gate || !x->t->gate) {
        run_model_start(x);
        return;
    }
    uint64_t deadline = 0;
    if (uv_is_active((uv_handle_t *)&x->wall_timer))
        deadline = uv_now(x->t->loop) + uv_timer_get_due_in(&x->wall_timer);
    gate_refusal why;
    x->in_gate = true;
    obs_span *gs = obs_span_begin(obs_span_ctx(x->model_span), "governance", OBS_SPAN_INTERNAL, &x->sc);
    obs_span_set_int(gs, "brigade.estimate.tokens", est_tokens);
    obs_span_set_double(gs, "brigade.estimate.cost_usd", (double)est_cost / 1e9);
    int r = gate_enter(x->t->gate, &x->gate, &w.who, x->call_model, est_tokens, est_cost, deadline,
                       run_model_gate_ready, run_model_gate_refused, x, &why);
    obs_span_set_str(gs, "brigade.decision",
                     r == GATE_REFUSED ? "refused" : r == GATE_WAIT ? "queued" : "admitted");
    if (r == GATE_REFUSED) {
        obs_span_set_str(gs, "brigade.limit", why.limit);
        obs_span_end(gs, OBS_STATUS_ERROR, why.message);
        run_model_leave_gate(x, false, NULL);
        run_model_refused(x, &why);
        return;
    }
    obs_span_end(gs, OBS_STATUS_OK, NULL);
    if (r == GATE_WAIT)
        x->queue_span = obs_span_begin(obs_span_ctx(x->model_span), "queue.wait", OBS_SPAN_INTERNAL, &x->sc);
    if (r == GATE_READY) run_model_start(x);
    /* GATE_WAIT: run_model_gate_ready or _refused follows */
}

void run_model_abort(run_exec *x)
{
    run_model_leave_gate(x, false, NULL);   /* out of the queue, the reservation released */
    run_model_end_spans(x, "the run stopped");
    if (x->call) {
        upstream_call *c = x->call;
        x->call = NULL;
        upstream_call_cancel(c);        /* on_done runs now and sees `finishing` / no call */
    }
    free(x->call_body);
    x->call_body = NULL;
}
