/* govern_slots.h — run concurrency (max_concurrent_runs, user and tenant)
 * shared by every instance through Redis (governance.backend: redis;
 * docs/scale-out.md).
 *
 * A run holds one slot at the user level and one at the tenant level. A
 * slot is a lease in a Redis sorted set per level (P "c:" level id), the
 * member naming this process and the run's acquisition, scored by the
 * lease's expiry (Redis's own clock). Acquiring is one script (RUN_BEGIN,
 * redis_scripts.c), atomic over both levels, one round trip: drop the
 * expired leases, refuse if a level is full, else add the lease at every
 * level.
 *
 * Leases last GOVERN_SLOT_LEASE_MS and a thread of this module renews the
 * held ones every third of that, so a run may live as long as it likes,
 * while an instance killed with runs in flight gives their slots back by
 * expiry within one lease. Releasing (a run ended) is handed to the same
 * thread, never done on the caller's thread: it is called from loop
 * threads. A release Redis never gets (Redis away) expires on its own.
 * If Redis lost its data, the next renewal puts the live runs' leases
 * back (the count may then stand above a limit until runs end: new runs
 * are refused meanwhile, none is stopped).
 *
 * Acquiring blocks (a connection of a small pool, at most timeout_ms per
 * round trip): call it on the thread pool, never on a loop thread. When
 * Redis cannot answer it returns GOVERN_SLOTS_UNAVAILABLE and the caller
 * counts the run in process against limit / instances
 * (govern_slots_fallback), as rate limits do; the run's lease reaches
 * Redis with the first renewal after it is back. */
#ifndef BRIGADE_GOVERN_SLOTS_H
#define BRIGADE_GOVERN_SLOTS_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "govern/govern.h"
#include "govern/govern_redis.h"

#define GOVERN_SLOT_LEASE_MS 30000

typedef struct govern_slots govern_slots;

enum { GOVERN_SLOTS_OK = 0, GOVERN_SLOTS_REFUSED = 1, GOVERN_SLOTS_UNAVAILABLE = 2 };

/* One run's slot. Zero-initialised: none held (releasing it does nothing).
 * It may be copied to hand it over (the copy then releases it, once). */
typedef struct govern_slot {
    void *node;                   /* private: the lease this process renews */
} govern_slot;

typedef struct govern_slots_stats {
    bool     up;                  /* the last round trip got an answer */
    uint64_t acquired, refused, unavailable, renewals, releases;
} govern_slots_stats;

/* lease_ms 0: GOVERN_SLOT_LEASE_MS (tests pass a short one). Starts the
 * renewal thread. NULL on failure. */
govern_slots *govern_slots_new(const governance_redis_cfg *cfg, uint32_t lease_ms);
/* Stops the thread after sending the releases already handed to it.
 * Slots still held are not released: their leases expire. */
void          govern_slots_free(govern_slots *g);

/* Take a slot at s's user (if any) and tenant levels against their
 * max_concurrent_runs (0 = unlimited: counted, never refused). Blocking.
 * REFUSED: *why is the same refusal as in process (429
 * "concurrency_limit"), nothing held. OK: *slot is held until
 * govern_slots_release. UNAVAILABLE (Redis did not answer): *slot is held
 * too, its lease written by the first renewal Redis answers, so that a
 * run started meanwhile (counted in process by the caller) joins the count
 * of every instance when Redis is back. */
int  govern_slots_acquire(govern_slots *g, const govern_subject *s, govern_slot *slot,
                          govern_refusal *why);
/* Give the slot back (sent by the thread). Any thread; no-op if none. */
void govern_slots_release(govern_slots *g, govern_slot *slot);

/* While Redis is away: s with max_concurrent_runs shared by instances. */
void govern_slots_fallback(const governance_redis_cfg *cfg, const govern_subject *in,
                           govern_subject *out);

void govern_slots_stats_get(govern_slots *g, govern_slots_stats *out);

#endif
