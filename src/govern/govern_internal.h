/* govern_internal.h — what govern.c and refusal.c share: the per-level
 * counters and the builders of refusal texts. Not for other modules. */
#ifndef BRIGADE_GOVERN_INTERNAL_H
#define BRIGADE_GOVERN_INTERNAL_H

#include <stdint.h>

#include "govern/govern.h"

/* The counters of one level (a tenant, a user or a key). */
typedef struct govern_ent {
    int64_t rpm_tat_ns, tpm_tat_ns;   /* GCRA buckets (gcra.h) */
    int64_t day_start, month_start;   /* periods the spend below belongs to */
    int64_t day_spent, month_spent;
    int64_t reserved;                 /* outstanding reservations */
    int64_t runs;                     /* active agent runs */
} govern_ent;

/* level is "user", "key" or "tenant". */
void govern_refuse_tokens(govern_refusal *why, const char *level, int64_t tpm,
                          int64_t est_tokens);
void govern_refuse_rate(govern_refusal *why, const char *level, bool tokens,
                        int64_t limit, int64_t wait_ms);
void govern_refuse_budget(govern_refusal *why, const char *level, bool monthly,
                          int64_t budget, int64_t spent, int64_t reserved,
                          int64_t est, int64_t now_ms, int64_t resets_ms);
void govern_refuse_runs(govern_refusal *why, const char *level, int64_t limit);
/* An agent's per-run or per-session cost cap (cap->name is the level). */
void govern_refuse_cap(govern_refusal *why, const govern_cap *cap, int64_t est);

#endif
