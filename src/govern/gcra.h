/* gcra.h — the Generic Cell Rate Algorithm of govern's rate limits
 * (internal to src/govern; the semantics are stated in govern.h).
 *
 * A bucket is one number, its theoretical arrival time (TAT) in
 * nanoseconds since the epoch. Nanoseconds, because the emission interval
 * T = 60 s / L is rarely a whole number of milliseconds; the tolerance is
 * L*T (not 60 s) so that rounding T down never costs the burst its last
 * unit. Inline: these run on every admission. */
#ifndef BRIGADE_GOVERN_GCRA_H
#define BRIGADE_GOVERN_GCRA_H

#include <stdbool.h>
#include <stdint.h>

#define GCRA_WINDOW_NS 60000000000LL   /* one minute */

/* Emission interval of a limit of L per minute (L > 0). */
static inline int64_t gcra_interval_ns(int64_t limit)
{
    int64_t t = GCRA_WINDOW_NS / limit;
    return t > 0 ? t : 1;
}

/* Would `cost` units pass at now_ns? Callers check cost <= limit first, so
 * cost*T <= L*T <= 60 s and nothing overflows. On pass *new_tat is the
 * bucket's next TAT; on refusal *wait_ns is how long until it would pass. */
static inline bool gcra_try(int64_t tat, int64_t now_ns, int64_t cost, int64_t limit,
                            int64_t *new_tat, int64_t *wait_ns)
{
    int64_t t = gcra_interval_ns(limit);
    int64_t base = tat > now_ns ? tat : now_ns;
    int64_t next = base + cost * t;
    int64_t over = next - now_ns - limit * t;
    if (over > 0) { *wait_ns = over; return false; }
    *new_tat = next;
    *wait_ns = 0;
    return true;
}

/* Whole units that would pass right now. */
static inline int64_t gcra_remaining(int64_t tat, int64_t now_ns, int64_t limit)
{
    int64_t t = gcra_interval_ns(limit);
    int64_t used = tat > now_ns ? tat - now_ns : 0;
    int64_t room = limit * t - used;
    return room > 0 ? room / t : 0;
}

/* Nanoseconds until the bucket is full again. */
static inline int64_t gcra_reset_ns(int64_t tat, int64_t now_ns)
{
    return tat > now_ns ? tat - now_ns : 0;
}

#endif
