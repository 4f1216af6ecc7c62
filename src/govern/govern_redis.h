/* govern_redis.h — shared governance in Redis for several instances
 * (governance.backend: redis; docs/scale-out.md).
 *
 * The same rules as govern.h (budgets by reservation over user, key and
 * tenant, day and month; GCRA rpm and tpm; run concurrency), but the
 * counters live in one Redis that every instance shares, and each step is
 * one Lua script (redis_scripts.c): atomic across every level, one round
 * trip per admission. Refusals are govern_refusal, built by the same
 * functions as the in-process backend, so clients see the same 429s.
 *
 * Threads: one govern_redis per process; one govern_redis_conn per libuv
 * loop (hiredis's async context on that loop through its libuv adapter —
 * nothing blocks a loop thread). A conn and what it admits are used on its
 * loop thread only.
 *
 * Failure:
 *   - Redis unreachable (not connected, or no reply within timeout_ms): the
 *     admission ends GOVERN_REDIS_UNAVAILABLE and the caller applies
 *     govern_redis_fallback (budgets fail closed unless fail_open; rates a
 *     per-instance share). The conn reconnects by itself (every 500 ms).
 *   - Redis lost its data (the generation key is gone): admissions answer
 *     UNAVAILABLE until one instance has rebuilt the spend from the store's
 *     ledger (in a worker thread) and written it with the generation in one
 *     script, together with its own calls still in flight (reservations)
 *     and the settles Redis never got (spend). Spend counters never expire;
 *     reservations do (reservation_ttl_s), which is how a crashed
 *     instance's reservations are released.
 *   - A settle that could not be delivered (Redis away, no reply) is kept
 *     and sent again on reconnection, so spend is never lost with a
 *     connection: the reservation it ends may expire meanwhile, the cost
 *     still arrives. */
#ifndef BRIGADE_GOVERN_REDIS_H
#define BRIGADE_GOVERN_REDIS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "govern/govern.h"
#include "store/store.h"

typedef struct govern_redis govern_redis;
typedef struct govern_redis_conn govern_redis_conn;

enum { GOVERN_REDIS_ADMITTED = 0, GOVERN_REDIS_REFUSED = 1, GOVERN_REDIS_UNAVAILABLE = 2 };

#define GOVERN_REDIS_LEVEL_MAX 200

/* One admitted call, owned by the caller until settled or released. */
typedef struct govern_redis_res {
    bool    active;
    int     n;                                    /* levels */
    char    level[3][GOVERN_REDIS_LEVEL_MAX];     /* level ids (keys' suffixes) */
    int64_t tpm[3];
    int64_t est_tokens, est_cost_nusd;
    char    member[64];                           /* "<id>:<est nusd>" */
    void   *node;                                 /* private: this process's record */
} govern_redis_res;

/* result: GOVERN_REDIS_*. why: set on REFUSED. rl: set on ADMITTED. */
typedef void (*govern_redis_admit_cb)(int result, const govern_refusal *why,
                                      const govern_ratelimit_info *rl, void *arg);

/* Counters for /metrics and /readyz. */
typedef struct govern_redis_stats {
    bool     connected;        /* at least one loop's conn is up */
    bool     generation_ok;    /* the last reply found the generation */
    uint64_t admits, refusals, unavailable, reseeds, reconnects, noscript;
} govern_redis_stats;

/* st: the store whose ledger rebuilds spend (NULL: none yet — then Redis
 * without its generation stays closed; set it before the loops run). NULL
 * on OOM. */
govern_redis *govern_redis_new(const governance_redis_cfg *cfg, store *st);
void          govern_redis_set_store(govern_redis *r, store *st);
void          govern_redis_free(govern_redis *r);

govern_redis_conn *govern_redis_conn_new(govern_redis *r, uv_loop_t *loop);
/* Closes the connection; pending admissions end UNAVAILABLE. */
void               govern_redis_conn_close(govern_redis_conn *c);
bool               govern_redis_conn_up(const govern_redis_conn *c);

/* One round trip: reserve est_cost_nusd at every level's day and month
 * budget, consume 1 rpm and est_tokens tpm. cb runs exactly once, later, on
 * the conn's loop (never inside this call). res must stay valid until then. */
void govern_redis_admit(govern_redis_conn *c, const govern_subject *s, int64_t est_tokens,
                        int64_t est_cost_nusd, govern_redis_res *res,
                        govern_redis_admit_cb cb, void *arg);
/* Fire and forget: charge the actual cost, return unused tokens. If Redis
 * is away the reservation expires on its own and the ledger row keeps the
 * spend for the next rebuild. No-op unless res is active. */
void govern_redis_settle(govern_redis_conn *c, govern_redis_res *res, int64_t actual_tokens,
                         int64_t actual_cost_nusd);
void govern_redis_release(govern_redis_conn *c, govern_redis_res *res);

/* A cost to add to the spend of a subject's levels with no reservation of
 * this process behind it: a call a previous run of this instance had in
 * flight when it died, charged to the ledger at start (reserve_journal.h).
 * Kept with the settles not yet acknowledged and sent on the first
 * connection (or folded into a rebuild). Its reservation in Redis, made
 * by the dead process, still counts until it expires: until then the call
 * is counted twice (too much, never too little). Any thread. */
void govern_redis_charge(govern_redis *r, const char *tenant_id, const char *user_id,
                         const char *key_id, int64_t cost_nusd);

/* While Redis is unreachable: the subject to admit locally instead. Rates
 * become limit / instances (at least 1); budgets are kept as they are when
 * fail_open is false (the caller refuses a subject that has any, see
 * govern_redis_fallback_refuses) and dropped when fail_open. */
void govern_redis_fallback(const governance_redis_cfg *cfg, const govern_subject *in,
                           govern_subject *out);
/* Fail closed: does s have a budget that cannot be checked? Then *why is
 * the 503 refusal to answer. */
bool govern_redis_fallback_refuses(const governance_redis_cfg *cfg, const govern_subject *s,
                                   govern_refusal *why);

void govern_redis_stats_get(govern_redis *r, govern_redis_stats *out);

/* The level id of a subject's level (0 user, 1 key, 2 tenant); false when
 * the level does not apply. Exposed for tests. */
bool govern_redis_level_id(const govern_subject *s, int level, char out[GOVERN_REDIS_LEVEL_MAX]);

#endif
