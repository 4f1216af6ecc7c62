/* call.h — one metered model call: the single path every model call takes,
 * a gateway request or an agent step alike (invariant 3, docs/architecture.md: "money
 * is reserved before it is spent" lives here and only here).
 *
 *   estimate   the worst case of the call (gate_estimate);
 *   admit      limits, rates, the budgets and the agent's run and session
 *              cost caps reserved all-or-nothing (gate_enter → govern_admit),
 *              in a "governance" span;
 *   queue      a slot of the model's upstream capacity, in a "queue.wait"
 *              span when it has to wait;
 *   dispatch   upstream_chat, continuing the trace (traceparent) from the
 *              model call's span;
 *   settle     the "delivered" rule: a call is charged when it completed, or
 *              when part of its answer already reached the client and the
 *              provider produced output; anything else is released;
 *   usage      the usage ledger row and the token and cost counters;
 *   spans      the model call's span ended with its usage and cost.
 *
 * The caller (api/gateway.c, runs/model.c) owns a metered_call (zeroed or
 * not: begin resets it), decides what to do with the answer, and says when
 * something of it reached its client (metered_call_reached_client). All of
 * it runs on the loop thread of the gate_thread given to begin.
 *
 * Life of a call:
 *   metered_call_begin → GATE_REFUSED (over; *why says why)
 *                      → GATE_READY   → the caller calls metered_call_dispatch
 *                      → GATE_WAIT    → later cb->on_ready (then dispatch, or
 *                                       abandon) or cb->on_refused (over)
 *   metered_call_dispatch → false: could not start (over, nothing charged)
 *                         → true:  cb->on_event per chunk, then cb->on_done
 *                                  once, after settling and ending the span
 *   metered_call_cancel   at any point: a dispatched call ends through
 *                         on_done (UPSTREAM_CANCELLED, synchronously, with
 *                         the delivered rule applied); one not dispatched is
 *                         left at once (released) and gets no callback. */
#ifndef BRIGADE_GOVERN_CALL_H
#define BRIGADE_GOVERN_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "govern/gate.h"
#include "obs/obs.h"
#include "scope/scope.h"
#include "store/store.h"
#include "upstream/upstream.h"

typedef struct metered_call metered_call;

typedef struct metered_callbacks {
    /* One streamed chunk (see upstream_callbacks.on_event): false pauses
     * the provider until upstream_call_resume. */
    bool (*on_event)(metered_call *mc, upstream_call *call, const char *json, size_t len,
                     void *arg);
    /* A queued call got its slot: dispatch it, or metered_call_cancel. */
    void (*on_ready)(metered_call *mc, void *arg);
    /* A queued call was refused (its deadline passed): it is over. */
    void (*on_refused)(metered_call *mc, const gate_refusal *why, void *arg);
    /* The provider call ended; mc->delivered and mc->charged_nusd say what
     * was settled. res is valid during the call only. */
    void (*on_done)(metered_call *mc, upstream_call *call, const upstream_result *res, void *arg);
} metered_callbacks;

typedef struct metered_call_params {
    gate_thread         *gate;        /* NULL: no governance (only the caps are checked) */
    const gate_who      *who;         /* who pays */
    govern_cap          *caps[GOVERN_CAPS]; /* an agent run's run and session caps (NULL: none) */
    const scope         *owner;       /* the caller's scope: spans; kept, must outlive the call */
    const model_cfg     *model;
    size_t               prompt_bytes;/* the request body, for the estimate */
    uint64_t             max_output;  /* output tokens in all (n × cap; 0 = the model's cap) */
    const obs_trace_ctx *parent;      /* the span the model call's span is a child of */
    bool                 stream;
    uint64_t             deadline_ms; /* uv_now time; 0 = none (queue and provider) */
    bool                 responses;   /* the body is a Responses request (upstream_opts.responses) */
    bool                 plain_stream;/* the body is brigade's own (upstream_opts.plain_stream) */
} metered_call_params;

struct metered_call {
    /* for the caller to read */
    gate_call        gate;            /* .ratelimit (x-ratelimit-*), .queue_wait_ms */
    int64_t          est_tokens, est_cost_nusd;
    bool             delivered;       /* set before on_done: the call was charged */
    int64_t          charged_nusd;    /* what settling charged (0 if not delivered) */
    /* private */
    const metered_callbacks *cb;
    void            *arg;
    const scope     *owner;
    const model_cfg *model;
    upstream_call   *call;            /* in flight, or NULL */
    obs_span        *model_span, *queue_span;
    uint64_t         deadline_ms;
    uint64_t         max_output;      /* reserved output tokens: the provider's hard cap */
    bool             stream, in_gate, reached_client, responses, plain_stream;
    govern_cap      *ungated_caps[GOVERN_CAPS];  /* no gate: charged here directly */
    reserve_journal *journal;         /* the gate's (NULL: no durable reservations) */
    uint64_t         journal_id;      /* the reservation's record while open, else 0 */
};

/* Estimate, open the model call's span, and admit (see the life above). */
int  metered_call_begin(metered_call *mc, const metered_call_params *p,
                        const metered_callbacks *cb, void *arg, gate_refusal *why);

/* Send the admitted call. body: an OpenAI request naming the model's
 * upstream name (copied). false: it could not start (upstream_last_error()
 * may say why): the call is over, released, its span ended; no callback. */
bool metered_call_dispatch(metered_call *mc, upstream *up, const char *body, size_t body_len,
                           const char *request_id);

/* Part of this answer reached the client (a streamed chunk was sent): from
 * now on a cut call that produced output is charged. */
void metered_call_reached_client(metered_call *mc);

/* Let a paused provider send again. */
void metered_call_resume(metered_call *mc);

/* Stop the call wherever it is (see the life above); why ends the spans of
 * a call not dispatched. Idempotent. */
void metered_call_cancel(metered_call *mc, const char *why);

/* The "delivered" rule, alone (for tests and the caller's own books). */
bool metered_call_is_delivered(const upstream_result *res, bool reached_client);

/* The model a result is charged for: the one that served it (a fallback,
 * maybe, at its own prices), else the one asked for. */
const model_cfg *metered_call_charged_model(const metered_call *mc, const upstream_result *res);

/* After on_done of a delivered call: the usage ledger row (status: what the
 * client was told) and the token and cost counters. Nothing when the call
 * was not delivered or counted no tokens; then false. *out (may be NULL)
 * gets the row. Every delivered call must come here, once: the row takes
 * over the reservation's durable record (reserve_journal.h), which stays
 * open until the row is committed. */
bool metered_call_record_usage(metered_call *mc, store *st, const upstream_result *res,
                               const char *request_id, int status, usage_rec *out);

#endif
