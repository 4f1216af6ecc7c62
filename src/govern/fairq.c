/* fairq.c — weighted deficit round robin over users for upstream slots,
 * with cross-loop delivery of grants (contract in fairq.h).
 *
 * Everything — pools, per-user queues, the active lists and every
 * thread's inbox — sits under the one mutex of the fairq. Decisions are a
 * few pointer moves, and one lock makes the grant/cancel race simple to
 * reason about: a waiter's state only changes under it. */
#include "govern/fairq.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/inbox.h"
#include "util/strmap.h"

const int64_t fairq_wait_bounds_ms[FAIRQ_HIST_N - 1] = {
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000
};

enum { W_IDLE = 0, W_GRANTED_NOW, W_QUEUED, W_PENDING, W_DELIVERED, W_CANCELLED };

/* Retry-After estimates never promise more than an hour away. */
#define FAIRQ_MAX_RETRY_S 3600

struct fairq {
    pthread_mutex_t mu;
    fairq_clock_fn  clock;
    void           *clock_arg;
    uint32_t        max_per_user, max_global;
    uint32_t        queued;          /* waiters over all pools */
    fairq_pool     *pools;
    fairq_thread   *threads;         /* open inboxes */
};

/* A user with waiters in one pool; exists only while it has some. */
struct fairq_user {
    fairq_user   *prev_active, *next_active;
    fairq_waiter *head, *tail;
    uint32_t      n;
    uint32_t      weight;
    int64_t       deficit;
    char          key[];
};

struct fairq_pool {
    fairq          *q;
    fairq_pool     *next;
    strmap         *users;           /* user_key -> fairq_user (not owned) */
    fairq_user     *head, *tail;     /* the DRR active list */
    uint64_t        sum_weights;     /* of the active users */
    int64_t         last_release_ms;
    double          gap_ewma_ms;     /* mean time between releases, 0 = unknown */
    fairq_pool_stats st;
    char            name[];
};

struct fairq_thread {
    fairq        *q;
    fairq_thread *prev, *next;
    inbox         granted;           /* granted, not yet delivered; under q->mu */
};

static fairq_waiter *waiter_of(inbox_node *n)
{
    return n ? (fairq_waiter *)((char *)n - offsetof(fairq_waiter, inbox_link)) : NULL;
}

static int64_t fairq_mono_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

fairq *fairq_new(fairq_clock_fn clock, void *clock_arg, uint32_t max_per_user,
                 uint32_t max_global)
{
    fairq *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    pthread_mutex_init(&q->mu, NULL);
    q->clock = clock ? clock : fairq_mono_ms;
    q->clock_arg = clock_arg;
    q->max_per_user = max_per_user;
    q->max_global = max_global;
    return q;
}

void fairq_free(fairq *q)
{
    if (!q) return;
    fairq_pool *p = q->pools;
    while (p) {
        fairq_pool *next = p->next;
        strmap_free(p->users);       /* users own no waiters the caller still needs */
        free(p);
        p = next;
    }
    pthread_mutex_destroy(&q->mu);
    free(q);
}

fairq_pool *fairq_pool_new(fairq *q, const char *name, uint32_t capacity)
{
    size_t n = strlen(name);
    fairq_pool *p = calloc(1, sizeof *p + n + 1);
    if (!p) return NULL;
    p->users = strmap_new(free);
    if (!p->users) { free(p); return NULL; }
    memcpy(p->name, name, n + 1);
    p->q = q;
    p->st.capacity = capacity;
    pthread_mutex_lock(&q->mu);
    p->next = q->pools;
    q->pools = p;
    pthread_mutex_unlock(&q->mu);
    return p;
}

fairq_pool *fairq_pool_find(fairq *q, const char *name)
{
    pthread_mutex_lock(&q->mu);
    fairq_pool *p = q->pools;
    while (p && strcmp(p->name, name) != 0) p = p->next;
    pthread_mutex_unlock(&q->mu);
    return p;
}

const char *fairq_pool_name(const fairq_pool *p) { return p->name; }

/* ---- the active list and the queues (all under q->mu) ---- */

static void active_remove(fairq_pool *p, fairq_user *u)
{
    if (u->prev_active) u->prev_active->next_active = u->next_active;
    else                p->head = u->next_active;
    if (u->next_active) u->next_active->prev_active = u->prev_active;
    else                p->tail = u->prev_active;
    u->prev_active = u->next_active = NULL;
}

static void active_append(fairq_pool *p, fairq_user *u)
{
    u->prev_active = p->tail;
    u->next_active = NULL;
    if (p->tail) p->tail->next_active = u;
    else         p->head = u;
    p->tail = u;
}

/* Take w out of its user's queue; a user left empty leaves the pool. */
static void queue_unlink(fairq_pool *p, fairq_waiter *w)
{
    fairq_user *u = w->user;
    if (w->prev) w->prev->next = w->next;
    else         u->head = w->next;
    if (w->next) w->next->prev = w->prev;
    else         u->tail = w->prev;
    w->prev = w->next = NULL;
    w->user = NULL;
    u->n--;
    p->st.depth--;
    p->q->queued--;
    if (u->n == 0) {
        active_remove(p, u);
        p->sum_weights -= u->weight;
        strmap_del(p->users, u->key);    /* frees u */
    }
}

static void record_wait(fairq_pool *p, int64_t ms)
{
    if (ms < 0) ms = 0;
    int i = 0;
    while (i < FAIRQ_HIST_N - 1 && ms > fairq_wait_bounds_ms[i]) i++;
    p->st.wait_hist[i]++;
    p->st.waits++;
    p->st.wait_ms_sum += (uint64_t)ms;
}

/* The next waiter by DRR. The head user gets its quantum when its turn
 * starts (deficit below one grant), keeps the turn while the deficit pays
 * for grants, then goes to the tail. p->head is not NULL. */
static fairq_waiter *drr_next(fairq_pool *p)
{
    fairq_user *u = p->head;
    if (u->deficit < 1) u->deficit += u->weight;
    fairq_waiter *w = u->head;
    u->deficit--;
    bool last = u->n == 1;
    bool turn_over = u->deficit < 1;
    queue_unlink(p, w);                  /* frees u when last */
    if (!last && turn_over && p->head != p->tail) {
        active_remove(p, u);
        active_append(p, u);
    }
    return w;
}

/* Hand free slots to waiters. The grant is final here (the slot is the
 * waiter's); delivery runs on the waiter's loop. */
static void pool_dispatch(fairq_pool *p, int64_t now)
{
    while (p->head && (p->st.capacity == 0 || p->st.in_use < p->st.capacity)) {
        fairq_waiter *w = drr_next(p);
        p->st.in_use++;
        w->state = W_PENDING;
        w->waited_ms = now - w->enqueued_ms;
        record_wait(p, w->waited_ms);
        /* Cannot fail: a closed thread has no waiters left in any queue. */
        (void)inbox_push_locked(&w->thread->granted, &w->inbox_link);
    }
}

void fairq_pool_set_capacity(fairq_pool *p, uint32_t capacity)
{
    fairq *q = p->q;
    pthread_mutex_lock(&q->mu);
    p->st.capacity = capacity;
    pool_dispatch(p, q->clock(q->clock_arg));
    pthread_mutex_unlock(&q->mu);
}

/* ---- threads ---- */

static void fairq_thread_wake(inbox *ib)
{
    fairq_thread *t = ib->owner;
    fairq *q = t->q;
    /* One waiter at a time: a callback may cancel a later waiter of this
     * inbox, which must then still be in it. */
    for (;;) {
        pthread_mutex_lock(&q->mu);
        fairq_waiter *w = waiter_of(inbox_pop_locked(&t->granted));
        if (w) w->state = W_DELIVERED;
        pthread_mutex_unlock(&q->mu);
        if (!w) break;
        w->granted(w, w->arg);
    }
}

fairq_thread *fairq_thread_new(fairq *q, uv_loop_t *loop)
{
    fairq_thread *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->q = q;
    if (inbox_init(&t->granted, loop, &q->mu, fairq_thread_wake, t) != 0) { free(t); return NULL; }
    pthread_mutex_lock(&q->mu);
    t->next = q->threads;
    if (q->threads) q->threads->prev = t;
    q->threads = t;
    pthread_mutex_unlock(&q->mu);
    return t;
}

static void fairq_thread_freed(inbox *ib) { free(ib->owner); }

void fairq_thread_close(fairq_thread *t)
{
    fairq *q = t->q;
    pthread_mutex_lock(&q->mu);
    int64_t now = q->clock(q->clock_arg);
    /* Queued waiters of t: out of their queues. */
    for (fairq_pool *p = q->pools; p; p = p->next) {
        fairq_user *u = p->head;
        while (u) {
            fairq_user *next_u = u->next_active;
            fairq_waiter *w = u->head;
            while (w) {
                fairq_waiter *next_w = w->next;
                if (w->thread == t) {
                    queue_unlink(p, w);          /* may free u: next_u kept */
                    w->state = W_CANCELLED;
                }
                w = next_w;
            }
            u = next_u;
        }
    }
    /* Granted but undelivered: their slots go back. */
    fairq_waiter *w;
    while ((w = waiter_of(inbox_pop_locked(&t->granted))) != NULL) {
        w->state = W_CANCELLED;
        fairq_pool *p = w->pool;
        if (p->st.in_use > 0) p->st.in_use--;
        pool_dispatch(p, now);
    }
    if (t->prev) t->prev->next = t->next;
    else         q->threads = t->next;
    if (t->next) t->next->prev = t->prev;
    inbox_mark_closed_locked(&t->granted);
    pthread_mutex_unlock(&q->mu);
    inbox_close_handle(&t->granted, fairq_thread_freed);
}

/* ---- acquire, cancel, release ---- */

/* Seconds until a queue position frees, from the mean gap between
 * releases; `releases` is how many releases that takes. */
static uint32_t retry_estimate(const fairq_pool *p, double releases)
{
    double ms = p->gap_ewma_ms * releases;
    if (ms <= 0 && p->st.waits > 0) ms = (double)p->st.wait_ms_sum / (double)p->st.waits;
    double s = ms / 1000.0;
    if (s > FAIRQ_MAX_RETRY_S) return FAIRQ_MAX_RETRY_S;
    uint32_t r = (uint32_t)s;
    if ((double)r < s) r++;
    return r < 1 ? 1 : r;
}

int fairq_acquire(fairq_thread *t, fairq_pool *p, const char *user_key, uint32_t weight,
                  fairq_waiter *w, void (*granted)(fairq_waiter *w, void *arg),
                  void *arg, uint32_t *retry_after_s)
{
    fairq *q = p->q;
    if (weight == 0) weight = 1;
    pthread_mutex_lock(&q->mu);
    int64_t now = q->clock(q->clock_arg);
    w->enqueued_ms = now;
    w->waited_ms = 0;
    w->thread = t;
    w->pool = p;
    w->user = NULL;
    w->prev = w->next = NULL;
    w->granted = granted;
    w->arg = arg;
    p->st.acquires++;

    /* A free slot and nobody waiting: take it (waiters come first). */
    if (p->st.capacity == 0 || (p->st.in_use < p->st.capacity && !p->head)) {
        p->st.in_use++;
        p->st.granted_now++;
        record_wait(p, 0);
        w->state = W_GRANTED_NOW;
        pthread_mutex_unlock(&q->mu);
        return FAIRQ_GRANTED;
    }

    fairq_user *u = strmap_get(p->users, user_key);
    bool full_user = q->max_per_user && u && u->n >= q->max_per_user;
    bool full_all = q->max_global && q->queued >= q->max_global;
    if (full_user || full_all) {
        p->st.full++;
        w->state = W_IDLE;
        if (retry_after_s) {
            /* Global: one release anywhere frees a place. Per user: the
             * user's next grant, about sum(weights)/weight releases away. */
            double releases = 1.0;
            if (full_user && p->sum_weights > 0)
                releases = (double)p->sum_weights / (double)u->weight;
            *retry_after_s = retry_estimate(p, releases);
        }
        pthread_mutex_unlock(&q->mu);
        return FAIRQ_FULL;
    }

    if (!u) {
        size_t n = strlen(user_key);
        u = calloc(1, sizeof *u + n + 1);
        if (!u || strmap_put(p->users, user_key, u) != 0) {
            /* OOM: shedding is the honest answer. */
            free(u);
            p->st.full++;
            w->state = W_IDLE;
            if (retry_after_s) *retry_after_s = 1;
            pthread_mutex_unlock(&q->mu);
            return FAIRQ_FULL;
        }
        memcpy(u->key, user_key, n + 1);
        u->weight = weight;
        p->sum_weights += weight;
        active_append(p, u);             /* new users join at the tail */
    } else if (u->weight != weight) {
        p->sum_weights = p->sum_weights - u->weight + weight;
        u->weight = weight;
    }
    w->user = u;
    w->prev = u->tail;
    if (u->tail) u->tail->next = w;
    else         u->head = w;
    u->tail = w;
    u->n++;
    p->st.depth++;
    q->queued++;
    p->st.queued++;
    w->state = W_QUEUED;
    /* Only if capacity was raised without a dispatch; the grant still goes
     * through the inbox, never from inside this call. */
    pool_dispatch(p, now);
    pthread_mutex_unlock(&q->mu);
    return FAIRQ_QUEUED;
}

bool fairq_cancel(fairq_waiter *w)
{
    fairq_pool *p = w->pool;
    if (!p) return false;
    fairq *q = p->q;
    bool out = false;
    pthread_mutex_lock(&q->mu);
    if (w->state == W_QUEUED) {
        queue_unlink(p, w);
        w->state = W_CANCELLED;
        p->st.cancelled++;
        out = true;
    } else if (w->state == W_PENDING) {
        /* Granted, not yet delivered: the slot goes on to the next waiter. */
        inbox_unlink_locked(&w->thread->granted, &w->inbox_link);
        w->state = W_CANCELLED;
        p->st.cancelled++;
        if (p->st.in_use > 0) p->st.in_use--;
        pool_dispatch(p, q->clock(q->clock_arg));
        out = true;
    } else if (w->state == W_CANCELLED || w->state == W_IDLE) {
        out = true;                      /* already out (or refused FULL): owns nothing */
    }
    pthread_mutex_unlock(&q->mu);
    return out;
}

void fairq_release(fairq_pool *p)
{
    fairq *q = p->q;
    pthread_mutex_lock(&q->mu);
    int64_t now = q->clock(q->clock_arg);
    if (p->last_release_ms) {
        double gap = (double)(now - p->last_release_ms);
        if (gap < 0) gap = 0;
        p->gap_ewma_ms = p->gap_ewma_ms > 0 ? p->gap_ewma_ms * 0.875 + gap * 0.125 : gap;
    }
    p->last_release_ms = now;
    if (p->st.in_use > 0) p->st.in_use--;
    pool_dispatch(p, now);
    pthread_mutex_unlock(&q->mu);
}

void fairq_pool_stats_get(fairq_pool *p, fairq_pool_stats *out)
{
    pthread_mutex_lock(&p->q->mu);
    *out = p->st;
    pthread_mutex_unlock(&p->q->mu);
}
