/* resilience.h — the rules that keep model calls alive when providers are
 * slow or failing: which failures are worth another attempt, how long to
 * back off, how many retries a provider may take (retry budget), when a
 * deployment's circuit breaker opens and closes, which deployment serves
 * the next attempt (load balancing), and which model a request falls back
 * to. See docs/resilience.md for the whole picture.
 *
 * Everything here is pure: no clock, no randomness, no locks. Time (ms of
 * a monotonic clock) and random numbers are arguments, so the unit tests
 * can drive each rule exactly; upstream's dispatch (dispatch.c) and the
 * process-wide deployment state (health.c) supply them and the locking. */
#ifndef BRIGADE_UPSTREAM_RESILIENCE_H
#define BRIGADE_UPSTREAM_RESILIENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "upstream/upstream.h"

/* ------------------------------------------------------------- failures */

typedef enum upstream_fault {
    UPSTREAM_FAULT_NONE = 0,        /* success */
    UPSTREAM_FAULT_REQUEST,         /* the provider rejected the request itself (4xx): the client's */
    UPSTREAM_FAULT_RATE_LIMIT,      /* 429 */
    UPSTREAM_FAULT_SERVER_ERROR,    /* 5xx (and 408), or no deployment available */
    UPSTREAM_FAULT_TIMEOUT,         /* attempt timeout, first byte, stream idle */
    UPSTREAM_FAULT_CONNECT,
    UPSTREAM_FAULT_MALFORMED,       /* invalid or truncated answer */
    UPSTREAM_FAULT_CONTEXT_WINDOW,  /* the prompt does not fit the model */
    UPSTREAM_FAULT_CANCELLED
} upstream_fault;

/* Classify an attempt's result. A 400 whose error says the prompt is too
 * long (OpenAI `context_length_exceeded`, Anthropic "prompt is too long")
 * is CONTEXT_WINDOW, not REQUEST. */
upstream_fault upstream_fault_of(const upstream_result *r);
const char    *upstream_fault_name(upstream_fault f);
/* The FALLBACK_* bit of a fault (0 for NONE, REQUEST, CANCELLED). */
uint32_t       upstream_fault_bit(upstream_fault f);
/* Worth another attempt on the same model (rate limit, 5xx, timeout,
 * connect, malformed). Also what counts against a circuit breaker. */
bool           upstream_fault_transient(upstream_fault f);

/* -------------------------------------------------------------- backoff */

/* The wait before retry number `retry` (0 = the first retry): "full
 * jitter", uniformly in [0, min(cap_ms, base_ms · 2^retry)], from the
 * random value `rnd`. Spreading retries over the whole interval is what
 * keeps many clients that failed together from retrying together. */
uint64_t upstream_backoff_ms(uint32_t base_ms, uint32_t cap_ms, unsigned retry, uint64_t rnd);

/* --------------------------------------------------------- retry budget */

/* Per provider, over a sliding window of 10 one-second buckets: a retry is
 * allowed while retries ≤ ratio × requests + min_per_s × 10. Under a
 * failure storm retries then add at most `ratio` more load instead of
 * multiplying it by max_retries + 1; the floor lets a quiet provider
 * still retry. */
#define UPSTREAM_BUDGET_BUCKETS 10
#define UPSTREAM_BUDGET_BUCKET_MS 1000
typedef struct upstream_budget {
    uint64_t second[UPSTREAM_BUDGET_BUCKETS];     /* which second each bucket holds */
    uint32_t requests[UPSTREAM_BUDGET_BUCKETS];
    uint32_t retries[UPSTREAM_BUDGET_BUCKETS];
} upstream_budget;

void upstream_budget_note_request(upstream_budget *b, uint64_t now_ms);
/* Take one retry if the budget allows it (then it is counted). */
bool upstream_budget_take_retry(upstream_budget *b, double ratio, uint32_t min_per_s, uint64_t now_ms);

/* ------------------------------------------------------ circuit breaker */

typedef enum upstream_breaker_state {
    UPSTREAM_BREAKER_CLOSED = 0,
    UPSTREAM_BREAKER_OPEN,
    UPSTREAM_BREAKER_HALF_OPEN
} upstream_breaker_state;

typedef struct upstream_breaker_cfg {
    uint32_t failures;      /* consecutive faults that open it (0 = this trigger off) */
    double   error_rate;    /* fault rate over the window that opens it (0 = off) */
    uint32_t window_ms;
    uint32_t min_calls;     /* calls in the window before the rate counts */
    uint32_t open_ms;       /* how long it stays open before a probe */
} upstream_breaker_cfg;

void upstream_breaker_cfg_of(const provider_cfg *p, upstream_breaker_cfg *out);

#define UPSTREAM_BREAKER_SLOTS 10   /* the window, in tenths */
typedef struct upstream_breaker {
    upstream_breaker_state state;
    uint32_t consecutive;            /* faults in a row */
    uint64_t opened_at;
    bool     probing;                /* half-open: the one probe is out */
    uint64_t slot_at[UPSTREAM_BREAKER_SLOTS];   /* start of the tenth each slot counts */
    uint32_t calls[UPSTREAM_BREAKER_SLOTS];
    uint32_t faults[UPSTREAM_BREAKER_SLOTS];
    uint64_t opens;                  /* times it opened, for metrics */
} upstream_breaker;

/* The state as of `now`: an open breaker whose open_ms passed reads
 * HALF_OPEN (without taking the probe). */
upstream_breaker_state upstream_breaker_state_at(const upstream_breaker *b, const upstream_breaker_cfg *c,
                                                 uint64_t now);
/* May an attempt go to this deployment now? Closed: yes. Open past
 * open_ms, or half-open with no probe out: yes, and this attempt is the
 * probe (*probe = true). Otherwise no. */
bool upstream_breaker_admit(upstream_breaker *b, const upstream_breaker_cfg *c, uint64_t now, bool *probe);
/* The outcome of an attempt. Only transient faults count as failures; a
 * request error (4xx) shows the provider is up and counts as success;
 * CANCELLED counts as nothing (but gives the probe back). */
void upstream_breaker_record(upstream_breaker *b, const upstream_breaker_cfg *c, uint64_t now,
                             upstream_fault f, bool was_probe);

/* ------------------------------------------------------ load balancing */

typedef struct upstream_lb_item {
    uint32_t weight;
    uint32_t in_flight;
    int64_t  current;     /* smooth weighted round robin state, kept between picks */
    bool     eligible;    /* admitted by breaker and concurrency cap */
    bool     preferred;   /* not yet tried by this request, not rate limited */
} upstream_lb_item;

/* Index of the deployment for the next attempt, or -1 if none is
 * eligible. Preferred items win over merely eligible ones. weighted: smooth
 * weighted round robin (nginx's: each pick adds every weight to its
 * `current`, takes the largest and subtracts the total), so weights 3:1
 * give a b a a a b … exactly, without bursts. least_in_flight: the fewest
 * calls in flight relative to weight; ties go round from `rnd`. */
int upstream_lb_pick(upstream_lb_item *items, size_t n, model_balance mode, uint64_t rnd);

/* ------------------------------------------------------------ fallback */

/* The next model of `requested`'s fallback chain to try, after model
 * `failed` failed with fault `f` (after its own retries), starting at
 * *pos (advanced past the choice). NULL if the fault is not in
 * requested->fallback_on or the chain is used up. Models whose
 * context_window is below `prompt_tokens` are skipped; after a
 * CONTEXT_WINDOW fault only models with a larger window than `failed`'s
 * are candidates. */
const model_cfg *upstream_fallback_next(const model_cfg *requested, size_t *pos, const model_cfg *failed,
                                        upstream_fault f, int64_t prompt_tokens);

#endif
