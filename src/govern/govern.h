/* govern.h — budgets by reservation, GCRA rate limits and run concurrency
 * (invariant 3, docs/architecture.md: "money is reserved before it is spent").
 *
 * A `govern` is pure in-process state: per-subject counters behind one
 * mutex, no store and no I/O. Several libuv loop threads call it at once.
 * The metered model call (call.h, for the gateway and the run harness)
 * wraps every model call in
 *
 *     govern_admit(...)    before the call: rate limits + reservation
 *     govern_settle(...)   after the call: charge the actual cost
 *     govern_release(...)  the call failed or was cancelled
 *
 * and every agent run in govern_run_begin / govern_run_end.
 *
 * Subjects and levels
 * -------------------
 * A call is made by a (tenant, user, key). Each level carries its own
 * govern_limits, resolved by the caller (tier + overrides); 0 in a field
 * means "unlimited". Counters live per level:
 *   - tenant: keyed by tenant_id;
 *   - user:   keyed by (tenant_id, user_id); skipped when user_id is "" or
 *             NULL (tenant-admin calls: only tenant and key levels apply);
 *   - key:    keyed by (tenant_id, key_id); skipped when key_id is "" or
 *             NULL. key_id "jwt" names no shared key but the user's JWT
 *             session, so its counters are per (tenant, user, "jwt").
 * Counters are never evicted (they are ~100 bytes each); a key or user that
 * is deleted keeps a dead entry until the process restarts.
 *
 * Money and time
 * --------------
 * Money is int64 nano-USD (1e-9 USD). Times are int64 milliseconds since
 * the Unix epoch from the clock given to govern_new (NULL = CLOCK_REALTIME);
 * tests inject their own.
 *
 * Periods: the UTC day [00:00, next 00:00) and the UTC month [1st 00:00,
 * next 1st 00:00) containing "now" (leap years included; Unix time has no
 * leap seconds). Each level keeps the spend of its current day and month;
 * the first touch after a boundary starts the new period at 0. A clock that
 * steps backwards never rolls a period back.
 *
 * Reservations are not tied to a period. A reservation still outstanding
 * when the day (or month) rolls over keeps counting against the new period,
 * because govern_settle charges the actual cost to the period current at
 * settle time. This is what makes "settled spend never exceeds the budget"
 * hold across midnight, too: a request may only pass if
 *     spent(current period) + reserved(all outstanding) + estimate <= budget
 * at every level and for both periods. (The only way past a budget is a
 * settle whose actual cost exceeds its estimate: the call happened, so it
 * is charged; the caller estimates worst-case to prevent it.)
 *
 * GCRA rate limits
 * ----------------
 * A limit of L per minute (rpm: requests, tpm: tokens) is a Generic Cell
 * Rate Algorithm bucket with emission interval T = 60000/L ms (kept in
 * nanoseconds, so L need not divide 60000) and burst L: a fresh subject may
 * spend L at once, then one unit every T. A request of cost c (rpm: 1,
 * tpm: est_tokens) with theoretical arrival time TAT passes at time now iff
 *     max(TAT, now) + c*T - now <= L*T          (i.e. <= one minute)
 * and then TAT becomes max(TAT, now) + c*T. When it does not pass, it will
 * pass exactly wait_ms = ceil(max(TAT, now) + c*T - now - L*T) later (to the
 * millisecond), and the refusal says retry_after_s = ceil(wait_ms / 1000):
 * retrying at that second succeeds if nothing else was spent meanwhile.
 * When several rate limits refuse, the one with the longest wait is named,
 * so the retry time is right for all of them.
 * A request asking more tokens than a tpm limit (est_tokens > L) can never
 * pass: it is refused at once with code "tokens_exceed_limit" (status 429,
 * type "rate_limit_error", retry_after_s 0 = "do not retry as is").
 *
 * Cost caps
 * ---------
 * An agent caps what one run, and one session, may cost. These caps are
 * not levels with periods but caller-owned counters (govern_cap: spent +
 * reserved against a limit) that govern_admit reserves against in the same
 * all-or-nothing step as the budgets, under the same lock: two calls of one
 * run or session admitted at once can never together pass the cap. Caps
 * apply even when governance is off (they are the agent's, not the
 * operator's).
 *
 * Order of checks in govern_admit: cost caps (run, then session), then
 * tokens_exceed_limit, then budgets (day before month; user, key, tenant),
 * then rates (rpm and tpm at user, key, tenant). A refusal consumes and
 * reserves nothing. */
#ifndef BRIGADE_GOVERN_H
#define BRIGADE_GOVERN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct govern govern;

/* Milliseconds since the Unix epoch. */
typedef int64_t (*govern_clock_fn)(void *arg);

#define GOVERN_NUSD_PER_USD 1000000000LL

/* Effective limits of one level; 0 = unlimited for each field. */
typedef struct govern_limits {
    int64_t rpm;                  /* requests per minute (GCRA) */
    int64_t tpm;                  /* tokens per minute (GCRA) */
    int64_t max_concurrent_runs;  /* agent runs at once (user and tenant) */
    int64_t daily_budget_nusd;    /* spend per UTC day */
    int64_t monthly_budget_nusd;  /* spend per UTC month */
} govern_limits;

/* An agent's cost cap of one run or one session (see "Cost caps"). The
 * owner sets name, limit and the spend so far, keeps it alive while any
 * reservation against it is outstanding, and reads it only through
 * govern_cap_read (govern's lock guards spent and reserved). */
typedef struct govern_cap {
    const char *name;             /* "run" or "session": the refusal's words */
    int64_t     limit_nusd;       /* 0 = no cap */
    int64_t     spent_nusd;       /* charged so far */
    int64_t     reserved_nusd;    /* outstanding reservations */
} govern_cap;

enum { GOVERN_CAP_RUN = 0, GOVERN_CAP_SESSION = 1, GOVERN_CAPS = 2 };

/* Who makes a call, with the limits that apply at each level. The strings
 * are only read during the call. */
typedef struct govern_subject {
    const char *tenant_id;        /* required */
    const char *user_id;          /* "" or NULL: no user level */
    const char *key_id;           /* "" or NULL: no key level; "jwt": per user */
    govern_limits tenant, user, key;
} govern_subject;

/* Why a call was refused. Every field is set on refusal. */
typedef struct govern_refusal {
    int status;                   /* HTTP status: 429 */
    const char *type;             /* "rate_limit_error" (rpm, tpm, runs) or
                                     "insufficient_quota" (budgets) */
    char code[48];                /* "rate_limit_exceeded", "tokens_exceed_limit",
                                     "budget_exceeded", "concurrency_limit",
                                     "run_budget_exceeded", "session_budget_exceeded" */
    char limit[48];               /* "<level>.<limit>": "user.rpm", "key.tpm",
                                     "tenant.daily_budget", "user.monthly_budget",
                                     "tenant.max_concurrent_runs",
                                     "run.max_cost", "session.max_cost" */
    char message[256];            /* one human sentence naming the limit and its
                                     value; rates: when to retry; budgets: spent,
                                     reserved and budget in USD and when the
                                     period resets */
    uint32_t retry_after_s;       /* rates: ceil(wait/1 s), exact (see above);
                                     budgets: seconds until the period rolls
                                     over; tokens_exceed_limit: 0;
                                     concurrency: 1 */
} govern_refusal;

/* For OpenAI-style x-ratelimit-* headers: of the levels that have the
 * limit, the most constraining one (lowest remaining). has_* is false when
 * no level limits requests (tokens). remaining = whole units that would
 * pass right now; reset_*_ms = time until that bucket is full again. */
typedef struct govern_ratelimit_info {
    bool    has_requests, has_tokens;
    int64_t limit_requests, remaining_requests, reset_requests_ms;
    int64_t limit_tokens, remaining_tokens, reset_tokens_ms;
} govern_ratelimit_info;

/* A caller-allocated record of one admitted call. Zero-initialised it is
 * inert: settling or releasing it does nothing. Settle and release each
 * work once; a second settle/release of the same reservation is a no-op.
 * The reservation must not outlive its govern. Fields after the comment
 * "private" belong to govern. */
#define GOVERN_ID_MAX 64
enum { GOVERN_RES_NONE = 0, GOVERN_RES_ACTIVE, GOVERN_RES_DONE, GOVERN_RES_UNGOVERNED };
typedef struct govern_reservation {
    int     state;                        /* GOVERN_RES_* */
    char    tenant_id[GOVERN_ID_MAX];     /* copies, truncated: for logs */
    char    user_id[GOVERN_ID_MAX];
    char    key_id[GOVERN_ID_MAX];
    int64_t est_tokens;
    int64_t est_cost_nusd;
    int64_t admitted_ms;                  /* clock time of the admission */
    int64_t day_start_ms, month_start_ms; /* periods current at admission */
    /* private */
    struct govern_ent *ent[3];            /* user, key, tenant (or NULL) */
    govern_cap *caps[GOVERN_CAPS];        /* the cost caps reserved against */
    int64_t tpm_interval_ns[3];           /* T of each level's tpm, 0 = none */
} govern_reservation;

/* A period's money, for /v1/me and /v1/usage. reserved_nusd is the sum of
 * outstanding reservations (the same for day and month, see above). */
typedef struct govern_period {
    int64_t spent_nusd, reserved_nusd;
    int64_t start_ms, end_ms;             /* [start, end) */
} govern_period;

/* Counters for /metrics; monotonic since govern_new. */
typedef struct govern_stats {
    uint64_t admits;                      /* admissions that passed */
    uint64_t settles, releases;
    uint64_t refused_rpm, refused_tpm, refused_tokens_exceed;
    uint64_t refused_daily_budget, refused_monthly_budget;
    uint64_t refused_concurrency;
    uint64_t refused_cost_cap;
    uint64_t runs_begun;
    int64_t  reserved_nusd;               /* outstanding, all tenants */
} govern_stats;

/* clock NULL = CLOCK_REALTIME. Returns NULL on OOM. */
govern *govern_new(govern_clock_fn clock, void *clock_arg);
void    govern_free(govern *g);

/* Off: govern_admit always passes and reserves nothing (its reservation is
 * marked GOVERN_RES_UNGOVERNED, and settling it does nothing);
 * govern_run_begin always passes but still counts. On by default. */
void    govern_set_enabled(govern *g, bool on);

/* Rebuild spend at start from the usage ledger: one row charged cost_nusd
 * at ts_unix_s (seconds). Added to the day and/or month spend of every
 * level the row names (user_id / key_id "" or NULL: that level skipped) if
 * ts falls in the current UTC day / month; rows of other periods (and of
 * the future) are ignored. */
void    govern_ledger_add(govern *g, const char *tenant_id, const char *user_id,
                          const char *key_id, int64_t ts_unix_s, int64_t cost_nusd);

/* Admit ONE model call, all-or-nothing under the lock: consume 1 from the
 * rpm buckets and est_tokens from the tpm buckets of the user, key and
 * tenant levels, and reserve est_cost_nusd against their day and month
 * budgets. Negative estimates count as 0.
 * true: admitted, *out is an active reservation to settle or release.
 * false: refused, nothing consumed, *why says why (*out untouched).
 * rl (may be NULL) receives the rate-limit state after the admission (on
 * refusal: the state as it is). */
bool    govern_admit(govern *g, const govern_subject *s, int64_t est_tokens,
                     int64_t est_cost_nusd, govern_reservation *out,
                     govern_refusal *why, govern_ratelimit_info *rl);
/* The same, reserving also against caps[GOVERN_CAP_RUN] and
 * caps[GOVERN_CAP_SESSION] (caps NULL, or an entry NULL: none). */
bool    govern_admit_capped(govern *g, const govern_subject *s, govern_cap *const caps[GOVERN_CAPS],
                            int64_t est_tokens, int64_t est_cost_nusd, govern_reservation *out,
                            govern_refusal *why, govern_ratelimit_info *rl);

/* The call finished: release the reservation and charge actual_cost_nusd
 * to the current day and month of each level; move each tpm bucket by
 * (actual_tokens - est_tokens): tokens not used are given back (never
 * making the bucket fuller than full), tokens beyond the estimate are
 * charged (at most one hour's worth). No-op unless r is active. */
void    govern_settle(govern *g, govern_reservation *r, int64_t actual_tokens,
                      int64_t actual_cost_nusd);

/* The call failed or was cancelled: release the money and give back the
 * estimated tokens; the request stays counted in rpm. No-op unless r is
 * active. */
void    govern_release(govern *g, govern_reservation *r);

/* A consistent copy of a cap's counters (under govern's lock). */
void    govern_cap_read(govern *g, const govern_cap *cap, int64_t *spent, int64_t *reserved);

/* The cap check alone, for a caller with no govern (a single thread):
 * would est_cost_nusd pass every cap? Reserves nothing. */
bool    govern_caps_allow(govern_cap *const caps[GOVERN_CAPS], int64_t est_cost_nusd,
                          govern_refusal *why);

/* The rate-limit state of s's levels without consuming anything. */
void    govern_peek_rate(govern *g, const govern_subject *s, govern_ratelimit_info *rl);

/* Start an agent run: refused (429 rate_limit_error "concurrency_limit",
 * retry_after_s 1) if the user's or the tenant's max_concurrent_runs
 * would be exceeded; otherwise counted until govern_run_end. */
bool    govern_run_begin(govern *g, const govern_subject *s, govern_refusal *why);
/* A run begun with govern_run_begin ended (user_id "" or NULL: tenant only,
 * as it was begun). Counts never go below 0. */
void    govern_run_end(govern *g, const char *tenant_id, const char *user_id);
/* Active runs of a user, or of the whole tenant (user_id "" or NULL). */
int64_t govern_active_runs(govern *g, const char *tenant_id, const char *user_id);

/* Spend of the current day and month of a user, or of the tenant (user_id
 * "" or NULL). Unknown subjects read as 0 with the right period bounds.
 * day or month may be NULL. */
void    govern_spend(govern *g, const char *tenant_id, const char *user_id,
                     govern_period *day, govern_period *month);

/* A consistent snapshot of the counters. govern_stats(g, &st) works too: a
 * function cannot share the struct's name in C, so that one is a macro. */
void    govern_stats_get(govern *g, govern_stats *out);
#define govern_stats(g, out) govern_stats_get((g), (out))

/* Period arithmetic, exposed for callers and tests (UTC, ms). */
int64_t govern_day_start(int64_t now_ms);
int64_t govern_month_start(int64_t now_ms);
int64_t govern_month_end(int64_t now_ms);   /* the next month's start */

#endif
