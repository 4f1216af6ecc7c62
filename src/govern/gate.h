/* gate.h — the admission of one model call, as the harness performs it.
 *
 * Every model call — a gateway request or an agent step — passes the same
 * gate before it may reach a provider:
 *
 *   1. limits are resolved: the user's tier (or its per-user overrides), the
 *      key's own limits, the tenant's (governance.tenant_limits or its
 *      overrides);
 *   2. govern_admit: rate limits (rpm, tpm) and the worst-case cost reserved
 *      against every budget, atomically (govern.h) — refused: 429;
 *   3. a slot of the model's upstream capacity from the fair queue (fairq.h,
 *      weighted by tier) — queue full: 503; still queued when the call's
 *      deadline passes: 504;
 *
 * and leaves it when the call ends: the reservation settled to the actual
 * cost (or released on failure), the slot handed to the next waiter.
 *
 * The worst case of a call is its estimated prompt tokens plus the most
 * output tokens it may produce, priced at the dearest model it may be
 * served by (itself or a fallback); gate_estimate computes it.
 *
 * One `gate` per process holds the govern state and the fair queue, one
 * `gate_thread` per loop; a gate_call lives with its request or run and is
 * used on the loop thread that entered it. */
#ifndef BRIGADE_GATE_H
#define BRIGADE_GATE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "govern/fairq.h"
#include "govern/govern.h"
#include "govern/govern_redis.h"
#include "govern/govern_slots.h"
#include "govern/reserve_journal.h"
#include "store/store.h"

typedef struct gate gate;
typedef struct gate_thread gate_thread;
typedef struct gate_call gate_call;

enum { GATE_READY = 0, GATE_WAIT = 1, GATE_REFUSED = 2 };

/* Why a call may not go ahead: status 429 (a limit or a budget), 503 (the
 * queue is full) or 504 (its deadline passed in the queue). */
typedef struct gate_refusal {
    int      status;
    char     type[32];            /* rate_limit_error | insufficient_quota |
                                     overloaded_error | timeout_error */
    char     code[48];
    char     limit[48];           /* "user.daily_budget", "queue", … */
    char     message[256];
    uint32_t retry_after_s;       /* 0: do not retry as is */
} gate_refusal;

/* Who calls, as identity resolved it; the strings are copied. */
typedef struct gate_who {
    const char        *tenant_id, *user_id, *key_id;
    const char        *tier;        /* the user's tier (NULL: the default tier) */
    const user_limits *user, *key, *tenant;   /* overrides, -1 = not set; NULL = none */
} gate_who;

typedef struct gate_redis_wait gate_redis_wait;

struct gate_call {
    /* filled by gate_enter */
    govern_reservation    reservation;
    govern_ratelimit_info ratelimit;  /* for x-ratelimit-* headers */
    int64_t               queue_wait_ms;
    /* private */
    gate_thread   *t;
    fairq_waiter   waiter;
    fairq_pool    *pool;
    uv_timer_t    *deadline_timer;    /* while queued with a deadline */
    bool           queued, holding_slot, entered;
    char           user_key[2 * GOVERN_ID_MAX + 2];
    void         (*ready)(gate_call *c, void *arg);
    void         (*refused)(gate_call *c, const gate_refusal *why, void *arg);
    void          *arg;
    /* the Redis backend (governance.backend: redis) */
    gate_redis_wait *rwait;           /* an admission in flight to Redis */
    govern_redis_res *rres;           /* its reservation, once admitted (NULL: none; on the
                                       * heap: 720 bytes only the Redis backend needs) */
    const model_cfg *model;
    uint64_t       deadline_ms;
    uint32_t       weight;
};

/* From the configuration: a fair-queue pool per model (capacity = the sum
 * of its deployments' max_concurrent; unlimited if any is 0), queue bounds,
 * governance on or off. clock NULL = real time. NULL on OOM. */
gate *gate_new(const brigade_config *cfg, govern_clock_fn clock, void *clock_arg);
void  gate_free(gate *g);
govern *gate_govern(gate *g);
/* The journal that makes each dispatched call's reservation durable
 * (reserve_journal.h); set before serving. metered_call reads it. */
void gate_set_journal(gate *g, reserve_journal *j);
/* The store whose usage ledger the calls' rows go to: while more than
 * shed_rows of them wait for its writer (store_usage_backlog), a call is
 * refused at once (503 overloaded_error, code "ledger_behind", Retry-After
 * 1 s) instead of adding to the queue — if its tenant holds at least an
 * even share of the rows waiting (store_usage_backlog_of: with k tenants
 * waiting, a k-th or more). A tenant below that is still admitted, so one
 * tenant's flood does not refuse everybody's calls. Past 1.5 × shed_rows
 * every call is refused: the queue's hard bound (STORE_USAGE_QUEUE_MAX,
 * twice STORE_USAGE_SHED_ROWS) must not be reached. Set before serving;
 * serve passes STORE_USAGE_SHED_ROWS. */
void gate_set_ledger(gate *g, store *st, uint64_t shed_rows);
reserve_journal *gate_thread_journal(const gate_thread *t);
fairq  *gate_fairq(gate *g);

gate_thread *gate_thread_new(gate *g, uv_loop_t *loop);
/* On its loop, after every call of it has left. */
void         gate_thread_close(gate_thread *t);

/* Rebuild spend from the usage ledger (store) at start. With the Redis
 * backend, st is also the ledger Redis's spend is rebuilt from whenever
 * Redis lost its data. */
int gate_load_ledger(gate *g, store *st, char *err, size_t errlen);
/* A charge the journal's recovery committed at start (reserve_journal.h):
 * with Redis it is passed on there (the ledger is not read back); in
 * process gate_load_ledger reads it with the rest. */
void gate_charge_recovered(gate *g, const usage_rec *row);

/* The Redis backend's state (false: the backend is in-process). */
bool gate_redis_stats(gate *g, govern_redis_stats *out);
/* Ready as far as governance goes: false only with the Redis backend,
 * failing closed, while Redis is unreachable or rebuilding; *why says so. */
bool gate_ready(gate *g, const char **why);

/* The subject of govern for `who`, with the limits that apply: tier +
 * user overrides, key limits, tenant limits. Strings point into `who`. */
void gate_subject(const gate *g, const gate_who *who, govern_subject *out);
/* The fair-queue weight of a tier. */
uint32_t gate_weight(const gate *g, const char *tier);

/* Worst-case tokens and cost of a call of `model` with a request body of
 * `prompt_bytes` bytes that may produce up to max_output tokens in all (a
 * request for n choices: n × the output cap; 0 = the model's cap): prompt
 * tokens estimated as ceil(bytes / 3) + 16 (no tokenizer undercounts that
 * on JSON chat text), priced at the dearest model of the fallback chain. */
void gate_estimate(const model_cfg *model, size_t prompt_bytes, uint64_t max_output,
                   int64_t *tokens, int64_t *cost_nusd);

/* Admit a call of `model` for `who`. deadline_ms: loop time (uv_now) after
 * which a queued call gives up (0 = none).
 *   GATE_READY:   go ahead now (ready is not called);
 *   GATE_WAIT:    queued (or, with the Redis backend, waiting for Redis's
 *                 answer); later exactly one of ready(c) or refused(c) runs
 *                 on this loop (never from inside this call);
 *   GATE_REFUSED: *why says why; nothing is held.
 * Either way the caller calls gate_leave exactly once afterwards (also
 * after a refusal: it is then a no-op). */
int  gate_enter(gate_thread *t, gate_call *c, const gate_who *who, const model_cfg *model,
                int64_t est_tokens, int64_t est_cost_nusd, uint64_t deadline_ms,
                void (*ready)(gate_call *, void *), void (*refused)(gate_call *, const gate_refusal *, void *),
                void *arg, gate_refusal *why);
/* The same, with an agent run's cost caps reserved in the same step
 * (govern_admit_capped; caps NULL: none). */
int  gate_enter_capped(gate_thread *t, gate_call *c, const gate_who *who,
                       govern_cap *const caps[GOVERN_CAPS], const model_cfg *model,
                       int64_t est_tokens, int64_t est_cost_nusd, uint64_t deadline_ms,
                       void (*ready)(gate_call *, void *),
                       void (*refused)(gate_call *, const gate_refusal *, void *), void *arg,
                       gate_refusal *why);

/* The call ended: delivered (charge actual tokens and cost) or not
 * (release everything). Leaves the queue if still waiting. Idempotent. */
void gate_leave(gate_call *c, bool delivered, int64_t actual_tokens, int64_t actual_cost_nusd);

/* Refusals of govern in the gate's form. */
void gate_refusal_from_govern(gate_refusal *out, const govern_refusal *why);
/* Was it an agent's per-run or per-session cost cap (run_budget_exceeded,
 * session_budget_exceeded)? Those end a run as failed, not refused. */
bool gate_refusal_is_cost_cap(const gate_refusal *why);

/* Runs: the user's and the tenant's concurrent-runs limits. With the
 * Redis backend a run takes a slot there (govern_slots.h: one count over
 * every instance), and counts in process too (for /v1/me); when Redis
 * cannot answer, the in-process count alone decides, against
 * max_concurrent_runs / instances. Blocks up to governance.redis.timeout_ms
 * with Redis: call it on the thread pool. *slot (zeroed first) is what
 * gate_run_end gives back; it may be copied to hand the run over. */
bool gate_run_begin(gate *g, const gate_who *who, govern_slot *slot, gate_refusal *why);
/* The same, counted even past the limits: a run going on after a pause (a
 * person approved its calls; refusing it then would lose that). Runs
 * that start meanwhile are refused until the count falls. Thread pool. */
void gate_run_begin_over(gate *g, const gate_who *who, govern_slot *slot);
/* Any thread; never blocks. */
void gate_run_end(gate *g, const char *tenant_id, const char *user_id, govern_slot *slot);
/* The Redis run slots' state (false: in-process backend). */
bool gate_slots_stats(gate *g, govern_slots_stats *out);

/* Has the user spent at least `fraction` of its daily or monthly budget
 * (spent + reserved)? For graceful degradation. */
bool gate_budget_nearly_spent(gate *g, const gate_who *who, double fraction);

#endif
