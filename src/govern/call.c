/* call.c — one metered model call: estimate → admit → queue → dispatch →
 * settle → usage → spans → metrics. The contract is in call.h; the
 * admission itself is gate.c's, the reservation govern.c's. */
#include "govern/call.h"

#include <stdio.h>
#include <string.h>

#include "util/strfmt.h"
#include "util/timeutil.h"

/* ---- the delivered rule and what it charges ---- */

bool metered_call_is_delivered(const upstream_result *res, bool reached_client)
{
    /* A complete answer, or the part of a cut one the client already has:
     * the provider produced it and the client got it. A failed call that
     * delivered nothing costs the caller nothing. */
    return res->error == UPSTREAM_OK || (reached_client && res->output_tokens > 0);
}

const model_cfg *metered_call_charged_model(const metered_call *mc, const upstream_result *res)
{
    return res->served_model ? res->served_model : mc->model;
}

/* ---- spans ---- */

static void metered_end_queue_span(metered_call *mc, int status, const char *why)
{
    if (!mc->queue_span) return;
    if (status == OBS_STATUS_OK)
        obs_span_set_int(mc->queue_span, "brigade.queue.wait_ms", mc->gate.queue_wait_ms);
    obs_span_end(mc->queue_span, status, why);
    mc->queue_span = NULL;
}

/* The call will not reach a provider: end its spans as an error. */
static void metered_end_spans(metered_call *mc, const char *refused_code, const char *why)
{
    metered_end_queue_span(mc, OBS_STATUS_ERROR, why);
    if (mc->model_span) {
        if (refused_code) obs_span_set_str(mc->model_span, "brigade.refused", refused_code);
        obs_span_end(mc->model_span, OBS_STATUS_ERROR, why);
        mc->model_span = NULL;
    }
}

/* ---- the gate ---- */

static void metered_leave(metered_call *mc, bool delivered, int64_t tokens, int64_t cost)
{
    if (!mc->in_gate) return;
    mc->in_gate = false;
    gate_leave(&mc->gate, delivered, tokens, cost);
}

static void metered_gate_ready(gate_call *c, void *arg)
{
    (void)c;
    metered_call *mc = arg;
    mc->cb->on_ready(mc, mc->arg);
}

static void metered_gate_refused(gate_call *c, const gate_refusal *why, void *arg)
{
    (void)c;
    metered_call *mc = arg;
    metered_leave(mc, false, 0, 0);
    metered_end_spans(mc, why->code, why->message);
    mc->cb->on_refused(mc, why, mc->arg);
}

/* Without a gate (a harness under test) nothing is reserved; the agent's
 * cost caps still hold for the one call a run makes at a time. */
static bool metered_caps_only(const metered_call_params *p, int64_t est_cost, gate_refusal *why)
{
    govern_refusal gr;
    if (govern_caps_allow(p->caps, est_cost, &gr)) return true;
    gate_refusal_from_govern(why, &gr);
    return false;
}

int metered_call_begin(metered_call *mc, const metered_call_params *p,
                       const metered_callbacks *cb, void *arg, gate_refusal *why)
{
    memset(mc, 0, sizeof *mc);
    mc->cb = cb;
    mc->arg = arg;
    mc->owner = p->owner;
    mc->model = p->model;
    mc->stream = p->stream;
    mc->deadline_ms = p->deadline_ms;
    mc->responses = p->responses;
    mc->plain_stream = p->plain_stream && p->stream;
    mc->journal = gate_thread_journal(p->gate);
    gate_estimate(p->model, p->prompt_bytes, p->max_output, &mc->est_tokens, &mc->est_cost_nusd);
    mc->max_output = p->max_output ? p->max_output : p->model->max_output_tokens;
    mc->model_span = upstream_span_begin(p->parent, p->owner, p->model, p->stream);

    obs_span *gs = obs_span_begin(obs_span_ctx(mc->model_span), "governance", OBS_SPAN_INTERNAL,
                                  p->owner);
    obs_span_set_int(gs, "brigade.estimate.tokens", mc->est_tokens);
    obs_span_set_double(gs, "brigade.estimate.cost_usd", (double)mc->est_cost_nusd / 1e9);
    int r;
    if (!p->gate) {
        r = metered_caps_only(p, mc->est_cost_nusd, why) ? GATE_READY : GATE_REFUSED;
        for (int i = 0; i < GOVERN_CAPS; i++) mc->ungated_caps[i] = p->caps[i];
    } else {
        mc->in_gate = true;
        r = gate_enter_capped(p->gate, &mc->gate, p->who, p->caps, p->model, mc->est_tokens,
                              mc->est_cost_nusd, p->deadline_ms, metered_gate_ready,
                              metered_gate_refused, mc, why);
    }
    obs_span_set_str(gs, "brigade.decision",
                     r == GATE_REFUSED ? "refused" : r == GATE_WAIT ? "queued" : "admitted");
    if (r == GATE_REFUSED) {
        obs_span_set_str(gs, "brigade.limit", why->limit);
        obs_span_end(gs, OBS_STATUS_ERROR, why->message);
        metered_leave(mc, false, 0, 0);
        metered_end_spans(mc, why->code, why->message);
        return r;
    }
    obs_span_end(gs, OBS_STATUS_OK, NULL);
    if (r == GATE_WAIT)
        mc->queue_span = obs_span_begin(obs_span_ctx(mc->model_span), "queue.wait",
                                        OBS_SPAN_INTERNAL, p->owner);
    return r;
}

/* ---- the provider call ---- */

static bool metered_on_event(upstream_call *call, const char *json, size_t len, void *arg)
{
    metered_call *mc = arg;
    return mc->cb->on_event ? mc->cb->on_event(mc, call, json, len, mc->arg) : true;
}

static void metered_on_attempt(upstream_call *call, const upstream_attempt *a, void *arg)
{
    (void)call;
    metered_call *mc = arg;
    upstream_span_attempt(mc->model_span, mc->owner, a);
}

/* The reservation's durable record is over without a ledger row: the call
 * cost nothing. */
static void metered_journal_close(metered_call *mc)
{
    if (!mc->journal_id) return;
    reserve_journal_close_entry(mc->journal, mc->journal_id);
    mc->journal_id = 0;
}

static void metered_on_done(upstream_call *call, const upstream_result *res, void *arg)
{
    metered_call *mc = arg;
    mc->call = NULL;
    /* Settle to what was delivered, and release the rest of the
     * reservation and the slot. */
    mc->delivered = metered_call_is_delivered(res, mc->reached_client);
    /* Delivered: the record stays open until its usage row is committed
     * (metered_call_record_usage hands it to the row). */
    if (!mc->delivered) metered_journal_close(mc);
    if (res->error != UPSTREAM_OK && res->error != UPSTREAM_CANCELLED)
        obs_counter_add(obs_series_of(obs_m_model_errors(), NULL), 1);
    const model_cfg *m = metered_call_charged_model(mc, res);
    mc->charged_nusd = mc->delivered ? config_cost_nusd(m, res->input_tokens, res->output_tokens) : 0;
    /* The reservation is a hard cap (upstream caps the output at
     * max_output): never charge past what was reserved. */
    if (mc->charged_nusd > mc->est_cost_nusd) mc->charged_nusd = mc->est_cost_nusd;
    metered_leave(mc, mc->delivered, res->input_tokens + res->output_tokens, mc->charged_nusd);
    for (int i = 0; i < GOVERN_CAPS; i++)
        if (mc->ungated_caps[i]) mc->ungated_caps[i]->spent_nusd += mc->charged_nusd;
    metered_end_queue_span(mc, OBS_STATUS_ERROR, "left the queue");
    upstream_span_end(mc->model_span, res, mc->charged_nusd);
    mc->model_span = NULL;
    mc->cb->on_done(mc, call, res, mc->arg);
}

bool metered_call_dispatch(metered_call *mc, upstream *up, const char *body, size_t body_len,
                           const char *request_id)
{
    static const upstream_callbacks cbs = {metered_on_event, metered_on_done, metered_on_attempt};
    metered_end_queue_span(mc, OBS_STATUS_OK, NULL);
    /* The provider continues the trace from the model call's span. */
    char tp[OBS_TRACEPARENT_LEN + 1] = "";
    if (mc->model_span) obs_traceparent_format(obs_span_ctx(mc->model_span), tp);
    upstream_opts opts = {.deadline_ms = mc->deadline_ms, .request_id = request_id,
                          .traceparent = tp[0] ? tp : NULL, .responses = mc->responses,
                          .max_output_tokens = mc->max_output, .plain_stream = mc->plain_stream};
    /* The reservation is made durable before anything can be delivered:
     * a crash from here on charges it at the next start, unless its usage
     * row is committed first (reserve_journal.h). No record, no call. */
    if (mc->journal) {
        reserve_entry e = {mc->owner->tenant_id, mc->owner->user_id, mc->owner->key_id,
                           mc->model->name, request_id, mc->est_cost_nusd, mc->est_tokens};
        mc->journal_id = reserve_journal_open_entry(mc->journal, &e);
        if (!mc->journal_id) {
            metered_leave(mc, false, 0, 0);
            upstream_result none = {.error = UPSTREAM_CONNECT,
                                    .message = "the reservation could not be recorded"};
            upstream_span_end(mc->model_span, &none, 0);
            mc->model_span = NULL;
            return false;
        }
    }
    mc->call = upstream_chat(up, mc->model, body, body_len, mc->stream, &opts, &cbs, mc);
    obs_counter_add(obs_series_of(obs_m_model_calls(), NULL), 1);
    if (mc->call) return true;            /* upstream_chat never calls back from inside */
    obs_counter_add(obs_series_of(obs_m_model_errors(), NULL), 1);
    metered_journal_close(mc);
    metered_leave(mc, false, 0, 0);
    const char *why = upstream_last_error();
    upstream_result none = {.error = why[0] ? UPSTREAM_MALFORMED : UPSTREAM_CONNECT,
                            .message = why[0] ? why : "the call could not be started"};
    upstream_span_end(mc->model_span, &none, 0);
    mc->model_span = NULL;
    return false;
}

void metered_call_reached_client(metered_call *mc) { mc->reached_client = true; }

void metered_call_resume(metered_call *mc)
{
    if (mc->call) upstream_call_resume(mc->call);
}

void metered_call_cancel(metered_call *mc, const char *why)
{
    if (mc->call) {
        upstream_call *c = mc->call;
        upstream_call_cancel(c);           /* metered_on_done runs now */
        return;
    }
    metered_leave(mc, false, 0, 0);        /* out of the queue, the reservation released */
    metered_end_spans(mc, NULL, why);
}

/* ---- usage ---- */

bool metered_call_record_usage(metered_call *mc, store *st, const upstream_result *res,
                               const char *request_id, int status, usage_rec *out)
{
    if (!mc->delivered || (res->input_tokens == 0 && res->output_tokens == 0)) {
        metered_journal_close(mc);        /* no row: nothing to wait for */
        return false;
    }
    usage_rec u;
    memset(&u, 0, sizeof u);
    /* the row closes the reservation's record once committed */
    u.reservation_id = mc->journal_id;
    mc->journal_id = 0;
    u.ts = time_now_unix();
    str_copy(u.tenant_id, sizeof u.tenant_id, mc->owner->tenant_id);
    str_copy(u.user_id, sizeof u.user_id, mc->owner->user_id);
    str_copy(u.key_id, sizeof u.key_id, mc->owner->key_id);
    /* The model that served it is the one charged, at its own prices. */
    const model_cfg *m = metered_call_charged_model(mc, res);
    str_copy(u.model, sizeof u.model, m->name);
    str_copy(u.deployment, sizeof u.deployment, res->deployment);
    str_copy_max(u.request_id, sizeof u.request_id, request_id, 32);
    u.input_tokens = res->input_tokens;
    u.output_tokens = res->output_tokens;
    u.cost_nusd = mc->charged_nusd;
    u.status = status;
    store_usage_record(st, &u);
    obs_counter_add(obs_series_of(obs_m_tokens(), OBS_L(u.tenant_id, u.model, "input")),
                    (uint64_t)u.input_tokens);
    obs_counter_add(obs_series_of(obs_m_tokens(), OBS_L(u.tenant_id, u.model, "output")),
                    (uint64_t)u.output_tokens);
    obs_counter_add(obs_series_of(obs_m_cost(), OBS_L(u.tenant_id, u.model)), (uint64_t)u.cost_nusd);
    obs_counter_add(obs_series_of(obs_m_input_tokens(), NULL), (uint64_t)u.input_tokens);
    obs_counter_add(obs_series_of(obs_m_output_tokens(), NULL), (uint64_t)u.output_tokens);
    obs_counter_add(obs_series_of(obs_m_cost_total(), NULL), (uint64_t)u.cost_nusd);
    if (out) *out = u;
    return true;
}
