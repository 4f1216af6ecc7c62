/* refusal.c — the texts of govern's refusals (see govern_refusal in
 * govern.h). Kept apart from the admission logic: they run only on the
 * refusal path and are what a client reads, so they get their own file. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "govern/govern_internal.h"
#include "util/timeutil.h"

/* "$1.234567": micro-dollar precision is what a person reads. */
static void fmt_usd(char out[32], int64_t nusd)
{
    const char *sign = nusd < 0 ? "-" : "";
    uint64_t v = nusd < 0 ? (uint64_t)0 - (uint64_t)nusd : (uint64_t)nusd;
    uint64_t micro = (v + 500) / 1000;  /* round to the micro-dollar */
    snprintf(out, 32, "%s$%" PRIu64 ".%06" PRIu64, sign, micro / 1000000, micro % 1000000);
}

static void set_head(govern_refusal *why, const char *type, const char *code,
                     const char *level, const char *limit)
{
    why->status = 429;
    why->type = type;
    snprintf(why->code, sizeof why->code, "%s", code);
    snprintf(why->limit, sizeof why->limit, "%s.%s", level, limit);
}

void govern_refuse_tokens(govern_refusal *why, const char *level, int64_t tpm,
                          int64_t est_tokens)
{
    set_head(why, "rate_limit_error", "tokens_exceed_limit", level, "tpm");
    snprintf(why->message, sizeof why->message,
             "This request needs up to %" PRId64 " tokens, more than the %s limit of %"
             PRId64 " tokens per minute allows in one request; lower max_tokens or "
             "shorten the input.", est_tokens, why->limit, tpm);
    why->retry_after_s = 0;
}

void govern_refuse_rate(govern_refusal *why, const char *level, bool tokens,
                        int64_t limit, int64_t wait_ms)
{
    set_head(why, "rate_limit_error", "rate_limit_exceeded", level, tokens ? "tpm" : "rpm");
    int64_t s = (wait_ms + 999) / 1000;
    if (s < 1) s = 1;
    if (s > UINT32_MAX) s = UINT32_MAX;
    why->retry_after_s = (uint32_t)s;
    snprintf(why->message, sizeof why->message,
             "Rate limit %s reached: %" PRId64 " %s per minute. Retry in %" PRId64 " s.",
             why->limit, limit, tokens ? "tokens" : "requests", s);
}

void govern_refuse_budget(govern_refusal *why, const char *level, bool monthly,
                          int64_t budget, int64_t spent, int64_t reserved,
                          int64_t est, int64_t now_ms, int64_t resets_ms)
{
    set_head(why, "insufficient_quota", "budget_exceeded", level,
             monthly ? "monthly_budget" : "daily_budget");
    char b[32], sp[32], rs[32], e[32], at[21];
    fmt_usd(b, budget);
    fmt_usd(sp, spent);
    fmt_usd(rs, reserved);
    fmt_usd(e, est);
    time_format_iso(at, resets_ms / 1000);
    int64_t wait_s = (resets_ms - now_ms + 999) / 1000;
    if (wait_s < 1) wait_s = 1;
    if (wait_s > UINT32_MAX) wait_s = UINT32_MAX;
    why->retry_after_s = (uint32_t)wait_s;
    /* Ids and amounts are bounded; a cut sentence is still better than none. */
    if (snprintf(why->message, sizeof why->message,
             "Budget %s of %s per %s exhausted: %s spent and %s reserved, this call "
             "may cost %s; the budget resets at %s.", why->limit, b,
             monthly ? "month" : "day", sp, rs, e, at) >= (int)sizeof why->message)
        why->message[sizeof why->message - 1] = '\0';
}

void govern_refuse_runs(govern_refusal *why, const char *level, int64_t limit)
{
    set_head(why, "rate_limit_error", "concurrency_limit", level, "max_concurrent_runs");
    why->retry_after_s = 1;
    snprintf(why->message, sizeof why->message,
             "Concurrency limit %s reached: at most %" PRId64 " agent runs at once. "
             "Retry when a run ends.", why->limit, limit);
}

void govern_refuse_cap(govern_refusal *why, const govern_cap *cap, int64_t est)
{
    char code[48];
    snprintf(code, sizeof code, "%s_budget_exceeded", cap->name);
    set_head(why, "insufficient_quota", code, cap->name, "max_cost");
    why->retry_after_s = 0;    /* the run's or session's spend will not go down */
    int n = snprintf(why->message, sizeof why->message,
                     "the next model call could cost up to $%.6f, which would pass the "
                     "agent's cap of $%.6f per %s ($%.6f spent", (double)est / 1e9,
                     (double)cap->limit_nusd / 1e9, cap->name, (double)cap->spent_nusd / 1e9);
    if (n > 0 && (size_t)n < sizeof why->message) {
        /* Another call of the same run or session holds a reservation. */
        if (cap->reserved_nusd > 0)
            snprintf(why->message + n, sizeof why->message - (size_t)n, ", $%.6f reserved)",
                     (double)cap->reserved_nusd / 1e9);
        else
            snprintf(why->message + n, sizeof why->message - (size_t)n, ")");
    }
}
