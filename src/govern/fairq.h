/* fairq.h — fair sharing of upstream slots across users (invariant 4,
 * "capacity is shared fairly"; docs/architecture.md).
 *
 * A `fairq` holds pools, one per model deployment, each with a capacity:
 * the most upstream calls it may have in flight (0 = unlimited). A call
 * takes a slot with fairq_acquire and gives it back with fairq_release.
 * When no slot is free the caller waits in its user's queue; a freed slot
 * goes to the next waiter by weighted deficit round robin (DRR):
 *   - users with waiters form an active list; a user new to the list joins
 *     at its tail;
 *   - when a user reaches the head of the list, its deficit grows by its
 *     weight (its quantum; tier-derived, 0 counts as 1); each grant costs
 *     1; the user keeps the turn while its deficit covers a grant, then
 *     goes to the tail;
 *   - a user whose queue empties leaves the list and loses its deficit.
 * So with weights 3 and 1 two busy users get slots 3:1, and a user with
 * one request behind another user's fifty waits for at most one grant.
 *
 * Queues are bounded per user (max_per_user) and over all pools
 * (max_global); 0 = unbounded. Past a bound acquire answers FAIRQ_FULL and
 * the caller sheds load: 503 overloaded_error with Retry-After.
 *
 * Threads: any thread may release (a call can end on any loop); a waiter's
 * grant is always delivered on the loop of the fairq_thread it acquired
 * through: a slot freed on another thread is handed over under the lock,
 * and the waiter is put in its thread's inbox and woken with uv_async_send.
 * One mutex per fairq guards pools, queues and inboxes.
 *
 * Grant vs cancel: a waiter is QUEUED, then PENDING (granted: it owns a
 * slot, its callback not yet run), then DELIVERED (callback run). Cancel
 * must be called on the waiter's own loop thread, the one that runs the
 * callbacks, so a cancel never overlaps a callback of the same waiter:
 * cancelling a QUEUED waiter takes it out of the queue; cancelling a
 * PENDING one takes it out of the inbox and gives its slot back (to the
 * next waiter); both return true and the callback never runs. Once the
 * callback has run (or acquire returned FAIRQ_GRANTED) cancel returns
 * false: the caller owns the slot and must fairq_release it. */
#ifndef BRIGADE_FAIRQ_H
#define BRIGADE_FAIRQ_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "util/inbox.h"

typedef struct fairq        fairq;
typedef struct fairq_pool   fairq_pool;
typedef struct fairq_thread fairq_thread;
typedef struct fairq_user   fairq_user;
typedef struct fairq_waiter fairq_waiter;

/* Milliseconds from any fixed origin (NULL = CLOCK_MONOTONIC): only
 * differences are used, for queue waits and the Retry-After estimate. */
typedef int64_t (*fairq_clock_fn)(void *arg);

enum { FAIRQ_GRANTED = 0, FAIRQ_QUEUED = 1, FAIRQ_FULL = 2 };

/* A caller-allocated waiter; it must stay put from a FAIRQ_QUEUED acquire
 * until its callback ran or fairq_cancel returned. Fields after "private"
 * belong to fairq. */
struct fairq_waiter {
    int64_t enqueued_ms;        /* clock time of the acquire */
    int64_t waited_ms;          /* time from acquire to grant (0: at once) */
    /* private */
    int           state;
    fairq_thread *thread;
    fairq_pool   *pool;
    fairq_user   *user;
    fairq_waiter *prev, *next;  /* in its user's queue */
    inbox_node    inbox_link;   /* then in its thread's inbox of grants */
    void        (*granted)(fairq_waiter *w, void *arg);
    void         *arg;
};

/* Histogram of queue waits: bucket i counts waits <= fairq_wait_bounds_ms[i]
 * (and > the previous bound); the last bucket counts the rest (+Inf).
 * Counts are per bucket, not cumulative. */
#define FAIRQ_HIST_N 14
extern const int64_t fairq_wait_bounds_ms[FAIRQ_HIST_N - 1];

typedef struct fairq_pool_stats {
    uint32_t capacity;          /* 0 = unlimited */
    uint32_t in_use;            /* slots held */
    uint32_t depth;             /* waiters queued now */
    uint64_t acquires;          /* calls of fairq_acquire */
    uint64_t granted_now;       /* FAIRQ_GRANTED */
    uint64_t queued;            /* FAIRQ_QUEUED */
    uint64_t full;              /* FAIRQ_FULL (shed) */
    uint64_t cancelled;         /* fairq_cancel that returned true */
    uint64_t waits;             /* grants, immediate ones included (wait 0) */
    uint64_t wait_ms_sum;
    uint64_t wait_hist[FAIRQ_HIST_N];
} fairq_pool_stats;

/* max_per_user / max_global: queued waiters allowed per user per pool and
 * over all pools (0 = unbounded). NULL on OOM. */
fairq *fairq_new(fairq_clock_fn clock, void *clock_arg, uint32_t max_per_user,
                 uint32_t max_global);
/* Frees the pools too. Every fairq_thread must be closed (and its close
 * callback run) first. */
void   fairq_free(fairq *q);

/* A pool named `name` (copied) with `capacity` slots (0 = unlimited);
 * NULL on OOM. Pools live until fairq_free. */
fairq_pool *fairq_pool_new(fairq *q, const char *name, uint32_t capacity);
/* The pool of that name, or NULL. */
fairq_pool *fairq_pool_find(fairq *q, const char *name);
/* Change the capacity (e.g. a config reload); slots freed by raising it
 * go to waiters at once. Slots in use above a lowered capacity stay until
 * released. */
void        fairq_pool_set_capacity(fairq_pool *p, uint32_t capacity);
const char *fairq_pool_name(const fairq_pool *p);

/* The inbox of one loop thread, made and closed on that loop. Its async
 * handle is unref'd: it does not keep the loop alive by itself. */
fairq_thread *fairq_thread_new(fairq *q, uv_loop_t *loop);
/* Close on t's loop. Waiters of t still queued are dropped (their
 * callbacks never run) and slots granted to undelivered ones are given
 * back; callers normally cancel their waiters first. The memory goes when
 * the loop runs the handle's close callback. */
void          fairq_thread_close(fairq_thread *t);

/* Ask for a slot of p for user_key (copied), weight = DRR quantum. Call on
 * t's loop.
 *   FAIRQ_GRANTED: the slot is taken now; `granted` is NOT called.
 *   FAIRQ_QUEUED:  `granted(w, arg)` runs later on t's loop (never from
 *                  inside this call); then the slot is the caller's.
 *   FAIRQ_FULL:    a queue bound is reached; nothing is held.
 *                  *retry_after_s (may be NULL) = estimated seconds until
 *                  the queue has room, from the recent rate of releases;
 *                  at least 1. */
int  fairq_acquire(fairq_thread *t, fairq_pool *p, const char *user_key, uint32_t weight,
                   fairq_waiter *w, void (*granted)(fairq_waiter *w, void *arg),
                   void *arg, uint32_t *retry_after_s);

/* Leave the queue (deadline passed, client gone). On the waiter's loop
 * thread only. true: the waiter is out and owns nothing (also when it was
 * already cancelled, dropped by fairq_thread_close, or refused FAIRQ_FULL).
 * false: acquire answered FAIRQ_GRANTED or the callback has run: the
 * caller owns a slot and must fairq_release it. */
bool fairq_cancel(fairq_waiter *w);

/* Give a slot of p back; the next waiter by DRR gets it. Any thread. */
void fairq_release(fairq_pool *p);

void fairq_pool_stats_get(fairq_pool *p, fairq_pool_stats *out);

#endif
