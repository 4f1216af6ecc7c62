/* test_fairq.c — the fair queue of src/govern/fairq.c: deficit round robin
 * lets a light user past a heavy one, weights share slots in proportion,
 * bounds shed load with an honest Retry-After, cancel is safe before and
 * after a grant, closing a thread drops its waiters, and a grant made on
 * one thread is delivered on the waiter's own loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "govern/fairq.h"

static _Atomic int64_t fake_ms;
static int64_t fake_clock(void *arg) { (void)arg; return atomic_load(&fake_ms); }

typedef struct fixture {
    uv_loop_t     loop;
    uv_idle_t     keep;   /* the inbox handle is unref'd: keep the loop alive */
    fairq        *q;
    fairq_pool   *p;
    fairq_thread *t;
} fixture;

static void keep_alive(uv_idle_t *h) { (void)h; }

static fixture *fixture_new(uint32_t per_user, uint32_t global, uint32_t capacity)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    atomic_store(&fake_ms, 1000);
    uv_loop_init(&f->loop);
    uv_idle_init(&f->loop, &f->keep);
    uv_idle_start(&f->keep, keep_alive);
    f->q = fairq_new(fake_clock, NULL, per_user, global);
    f->p = fairq_pool_new(f->q, "gpt-mock", capacity);
    f->t = fairq_thread_new(f->q, &f->loop);
    assert_non_null(f->t);
    return f;
}

static void fixture_free(fixture *f)
{
    fairq_thread_close(f->t);
    uv_close((uv_handle_t *)&f->keep, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    fairq_free(f->q);
    free(f);
}

/* Deliver whatever grants are in the inbox. */
static void drain(fixture *f)
{
    for (int i = 0; i < 3; i++) uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Grants are recorded in order, by user letter. */
static char granted_to[256];
static int  n_granted;
static int  in_acquire;       /* a callback from inside acquire is a bug */
static int  called_inside;

static void on_grant(fairq_waiter *w, void *arg)
{
    (void)w;
    if (in_acquire) called_inside++;
    if (n_granted < (int)sizeof granted_to - 1) granted_to[n_granted++] = (char)(intptr_t)arg;
    granted_to[n_granted] = '\0';
}

static void reset_grants(void) { n_granted = 0; granted_to[0] = '\0'; called_inside = 0; }

static int acquire(fixture *f, char user, uint32_t weight, fairq_waiter *w, uint32_t *retry)
{
    char key[2] = { user, '\0' };
    in_acquire = 1;
    int rc = fairq_acquire(f->t, f->p, key, weight, w, on_grant, (void *)(intptr_t)user, retry);
    in_acquire = 0;
    return rc;
}

static void test_drr_light_user_not_starved(void **state)
{
    (void)state;
    fixture *f = fixture_new(0, 0, 1);
    fairq_waiter hold, a[50], b;
    reset_grants();
    assert_int_equal(acquire(f, 'A', 1, &hold, NULL), FAIRQ_GRANTED);
    for (int i = 0; i < 50; i++) assert_int_equal(acquire(f, 'A', 1, &a[i], NULL), FAIRQ_QUEUED);
    assert_int_equal(acquire(f, 'B', 1, &b, NULL), FAIRQ_QUEUED);
    drain(f);
    assert_int_equal(n_granted, 0);              /* nothing granted before a release */
    fairq_pool_stats st;
    fairq_pool_stats_get(f->p, &st);
    assert_int_equal(st.depth, 51);
    assert_int_equal(st.in_use, 1);
    for (int i = 0; i < 51; i++) {
        fairq_release(f->p);
        drain(f);
        assert_int_equal(n_granted, i + 1);
    }
    assert_non_null(strchr(granted_to, 'B'));
    assert_true(strchr(granted_to, 'B') - granted_to < 2);   /* within the next 2 grants */
    assert_int_equal(called_inside, 0);
    fairq_pool_stats_get(f->p, &st);
    assert_int_equal(st.depth, 0);
    assert_int_equal(st.in_use, 1);
    assert_int_equal(st.queued, 51);
    assert_int_equal(st.granted_now, 1);
    fairq_release(f->p);
    fairq_pool_stats_get(f->p, &st);
    assert_int_equal(st.in_use, 0);
    fixture_free(f);
}

static void test_drr_weights(void **state)
{
    (void)state;
    fixture *f = fixture_new(0, 0, 1);
    fairq_waiter hold, a[40], b[40];
    reset_grants();
    assert_int_equal(acquire(f, 'C', 1, &hold, NULL), FAIRQ_GRANTED);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(acquire(f, 'A', 3, &a[i], NULL), FAIRQ_QUEUED);
        assert_int_equal(acquire(f, 'B', 1, &b[i], NULL), FAIRQ_QUEUED);
    }
    for (int i = 0; i < 40; i++) {
        fairq_release(f->p);
        drain(f);
    }
    assert_int_equal(n_granted, 40);
    assert_memory_equal(granted_to, "AAABAAABAAAB", 12);
    int na = 0, nb = 0;
    for (int i = 0; i < n_granted; i++) { if (granted_to[i] == 'A') na++; else nb++; }
    assert_int_equal(na, 30);
    assert_int_equal(nb, 10);
    /* Empty the queues so teardown finds none. */
    for (int i = 0; i < 40; i++) { fairq_release(f->p); drain(f); }
    fixture_free(f);
}

static void test_bounds_and_retry(void **state)
{
    (void)state;
    fixture *f = fixture_new(3, 5, 1);
    fairq_waiter hold, a[4], b[2], c, d;
    uint32_t retry = 0;
    reset_grants();
    assert_int_equal(acquire(f, 'H', 1, &hold, NULL), FAIRQ_GRANTED);
    /* Releases every 2 s teach the pool its pace. */
    for (int i = 0; i < 4; i++) {
        atomic_fetch_add(&fake_ms, 2000);
        fairq_release(f->p);
        assert_int_equal(acquire(f, 'H', 1, &hold, NULL), FAIRQ_GRANTED);
    }
    for (int i = 0; i < 3; i++) assert_int_equal(acquire(f, 'A', 1, &a[i], NULL), FAIRQ_QUEUED);
    assert_int_equal(acquire(f, 'A', 1, &a[3], &retry), FAIRQ_FULL);     /* per user */
    assert_int_equal(retry, 2);       /* A alone: its next grant is one release away */
    for (int i = 0; i < 2; i++) assert_int_equal(acquire(f, 'B', 1, &b[i], NULL), FAIRQ_QUEUED);
    retry = 0;
    assert_int_equal(acquire(f, 'C', 1, &c, &retry), FAIRQ_FULL);        /* global */
    assert_int_equal(retry, 2);
    retry = 0;
    assert_int_equal(acquire(f, 'A', 1, &a[3], &retry), FAIRQ_FULL);     /* A and B active */
    assert_int_equal(retry, 4);
    /* Another pool shares the global bound. */
    fairq_pool *p2 = fairq_pool_new(f->q, "other", 1);
    assert_ptr_equal(fairq_pool_find(f->q, "other"), p2);
    assert_null(fairq_pool_find(f->q, "nope"));
    assert_string_equal(fairq_pool_name(p2), "other");
    fairq_waiter h2;
    assert_int_equal(fairq_acquire(f->t, p2, "D", 1, &h2, on_grant, (void *)(intptr_t)'D', NULL),
                     FAIRQ_GRANTED);
    assert_int_equal(fairq_acquire(f->t, p2, "D", 1, &d, on_grant, (void *)(intptr_t)'D', &retry),
                     FAIRQ_FULL);
    assert_true(retry >= 1);
    /* Leaving the queue makes room. */
    assert_true(fairq_cancel(&a[0]));
    assert_int_equal(acquire(f, 'C', 1, &c, NULL), FAIRQ_QUEUED);
    fairq_pool_stats st;
    fairq_pool_stats_get(f->p, &st);
    assert_int_equal(st.full, 3);
    assert_int_equal(st.cancelled, 1);
    assert_int_equal(st.depth, 5);
    fairq_release(p2);
    for (int i = 0; i < 5; i++) { fairq_release(f->p); drain(f); }
    assert_int_equal(n_granted, 5);
    fixture_free(f);
}

static void test_cancel(void **state)
{
    (void)state;
    fixture *f = fixture_new(0, 0, 1);
    fairq_waiter hold, w1, w2, w3, w4, w5;
    fairq_pool_stats st;
    reset_grants();
    assert_int_equal(acquire(f, 'H', 1, &hold, NULL), FAIRQ_GRANTED);
    assert_false(fairq_cancel(&hold));           /* granted at once: caller owns it */
    assert_int_equal(acquire(f, 'A', 1, &w1, NULL), FAIRQ_QUEUED);
    assert_int_equal(acquire(f, 'B', 1, &w2, NULL), FAIRQ_QUEUED);
    assert_true(fairq_cancel(&w1));              /* queued: just leaves */
    assert_true(fairq_cancel(&w1));              /* again: still owns nothing */
    /* Granted but not delivered: cancel gives the slot back. */
    fairq_release(f->p);
    assert_true(fairq_cancel(&w2));
    drain(f);
    assert_int_equal(n_granted, 0);
    fairq_pool_stats_get(f->p, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.depth, 0);

    /* ... and to the next waiter when there is one. */
    assert_int_equal(acquire(f, 'H', 1, &hold, NULL), FAIRQ_GRANTED);
    assert_int_equal(acquire(f, 'A', 1, &w4, NULL), FAIRQ_QUEUED);
    assert_int_equal(acquire(f, 'B', 1, &w5, NULL), FAIRQ_QUEUED);
    fairq_release(f->p);                          /* -> w4, pending */
    assert_true(fairq_cancel(&w4));               /* -> w5 */
    drain(f);
    assert_string_equal(granted_to, "B");
    assert_false(fairq_cancel(&w5));              /* delivered: caller owns it */
    fairq_pool_stats_get(f->p, &st);
    assert_int_equal(st.in_use, 1);

    /* A waiter that got its wait recorded. */
    assert_int_equal(acquire(f, 'A', 1, &w3, NULL), FAIRQ_QUEUED);
    assert_int_equal(w3.enqueued_ms, 1000);
    atomic_store(&fake_ms, 1300);
    fairq_release(f->p);
    drain(f);
    assert_int_equal(w3.waited_ms, 300);
    fairq_pool_stats_get(f->p, &st);
    assert_int_equal(st.wait_hist[7], 1);          /* (250, 500] ms */
    assert_int_equal(st.cancelled, 2 + 1);
    fairq_release(f->p);
    fixture_free(f);
}

static void test_unlimited_and_capacity_change(void **state)
{
    (void)state;
    fixture *f = fixture_new(0, 0, 0);
    fairq_waiter w[10];
    reset_grants();
    for (int i = 0; i < 10; i++) assert_int_equal(acquire(f, 'A', 1, &w[i], NULL), FAIRQ_GRANTED);
    fairq_pool_stats st;
    fairq_pool_stats_get(f->p, &st);
    assert_int_equal(st.in_use, 10);
    assert_int_equal(st.wait_hist[0], 10);
    for (int i = 0; i < 10; i++) fairq_release(f->p);

    /* Capacity 1 with three waiting; raising it to 3 grants two more. */
    fairq_pool_set_capacity(f->p, 1);
    assert_int_equal(acquire(f, 'A', 1, &w[0], NULL), FAIRQ_GRANTED);
    for (int i = 1; i < 4; i++) assert_int_equal(acquire(f, 'B', 1, &w[i], NULL), FAIRQ_QUEUED);
    fairq_pool_set_capacity(f->p, 3);
    drain(f);
    assert_string_equal(granted_to, "BB");
    /* Closing the thread drops its last waiter; nothing is granted later. */
    fairq_thread *t2 = fairq_thread_new(f->q, &f->loop);
    fairq_waiter x;
    assert_int_equal(fairq_acquire(t2, f->p, "X", 1, &x, on_grant, (void *)(intptr_t)'X', NULL),
                     FAIRQ_QUEUED);
    fairq_thread_close(t2);
    fairq_pool_stats_get(f->p, &st);
    assert_int_equal(st.depth, 1);                 /* B's last one */
    fairq_release(f->p);
    drain(f);
    assert_string_equal(granted_to, "BBB");
    fairq_release(f->p);
    fairq_release(f->p);
    fairq_release(f->p);
    drain(f);
    fairq_pool_stats_get(f->p, &st);
    assert_int_equal(st.in_use, 0);
    assert_string_equal(granted_to, "BBB");
    fixture_free(f);
}

/* ---- a grant made on one thread, delivered on another's loop ---- */

typedef struct xthread {
    fairq_pool   *p;
    fairq        *q;
    pthread_t     self;
    _Atomic int   queued;
    _Atomic int   got;
    int           on_own_thread;
    int           rc;
    uv_loop_t     loop;
    uv_timer_t    deadline;
    fairq_waiter  w;
} xthread;

static void x_granted(fairq_waiter *w, void *arg)
{
    (void)w;
    xthread *x = arg;
    x->on_own_thread = pthread_equal(pthread_self(), x->self);
    atomic_store(&x->got, 1);
    uv_stop(&x->loop);
}

static void x_timeout(uv_timer_t *t) { uv_stop(t->loop); }

static void *x_main(void *arg)
{
    xthread *x = arg;
    uv_loop_init(&x->loop);
    fairq_thread *t = fairq_thread_new(x->q, &x->loop);
    uv_timer_init(&x->loop, &x->deadline);
    uv_timer_start(&x->deadline, x_timeout, 3000, 0);
    x->rc = fairq_acquire(t, x->p, "remote", 1, &x->w, x_granted, x, NULL);
    atomic_store(&x->queued, 1);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    fairq_thread_close(t);
    uv_close((uv_handle_t *)&x->deadline, NULL);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    uv_loop_close(&x->loop);
    return NULL;
}

static void test_cross_thread_grant(void **state)
{
    (void)state;
    fixture *f = fixture_new(0, 0, 1);
    fairq_waiter hold;
    reset_grants();
    assert_int_equal(acquire(f, 'H', 1, &hold, NULL), FAIRQ_GRANTED);
    xthread *x = calloc(1, sizeof *x);
    x->p = f->p;
    x->q = f->q;
    assert_int_equal(pthread_create(&x->self, NULL, x_main, x), 0);
    for (int i = 0; i < 3000 && !atomic_load(&x->queued); i++) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    assert_int_equal(atomic_load(&x->queued), 1);
    fairq_release(f->p);                 /* granted here, delivered there */
    drain(f);
    pthread_join(x->self, NULL);
    assert_int_equal(x->rc, FAIRQ_QUEUED);
    assert_int_equal(atomic_load(&x->got), 1);
    assert_true(x->on_own_thread);
    assert_int_equal(n_granted, 0);      /* not on the releasing loop */
    fairq_pool_stats st;
    fairq_pool_stats_get(f->p, &st);
    assert_int_equal(st.in_use, 1);      /* the remote waiter owns it now */
    fairq_release(f->p);
    free(x);
    fixture_free(f);
}

/* ---- two loops racing: grants cross threads, cancels race them ---- */

typedef struct worker {
    fairq      *q;
    fairq_pool *p;
    pthread_t   th;
    int         id;
    int         got, stuck, cancelled, direct;
    uv_loop_t   loop;
    uv_timer_t  deadline;
} worker;

static void w_granted(fairq_waiter *w, void *arg)
{
    (void)w;
    worker *k = arg;
    k->got = 1;
    uv_stop(&k->loop);
}

static void *w_main(void *arg)
{
    worker *k = arg;
    char user[8] = { 'u', (char)('0' + k->id), '\0' };
    uv_loop_init(&k->loop);
    uv_timer_init(&k->loop, &k->deadline);
    fairq_thread *t = fairq_thread_new(k->q, &k->loop);
    for (int i = 0; i < 400; i++) {
        fairq_waiter w;
        k->got = 0;
        int rc = fairq_acquire(t, k->p, user, 1 + (uint32_t)k->id, &w, w_granted, k, NULL);
        if (rc == FAIRQ_GRANTED) { k->direct++; fairq_release(k->p); continue; }
        if (i % 3 == 0 && fairq_cancel(&w)) { k->cancelled++; continue; }
        uv_timer_start(&k->deadline, x_timeout, 3000, 0);
        uv_run(&k->loop, UV_RUN_DEFAULT);
        uv_timer_stop(&k->deadline);
        if (!k->got) { k->stuck++; if (fairq_cancel(&w)) continue; }
        fairq_release(k->p);
    }
    fairq_thread_close(t);
    uv_close((uv_handle_t *)&k->deadline, NULL);
    uv_run(&k->loop, UV_RUN_DEFAULT);
    uv_loop_close(&k->loop);
    return NULL;
}

static void test_threads_race(void **state)
{
    (void)state;
    fairq *q = fairq_new(NULL, NULL, 0, 0);
    fairq_pool *p = fairq_pool_new(q, "m", 2);
    worker k[4];
    memset(k, 0, sizeof k);
    for (int i = 0; i < 4; i++) {
        k[i].q = q;
        k[i].p = p;
        k[i].id = i;
        assert_int_equal(pthread_create(&k[i].th, NULL, w_main, &k[i]), 0);
    }
    int cancelled = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(k[i].th, NULL);
        assert_int_equal(k[i].stuck, 0);
        cancelled += k[i].cancelled;
    }
    fairq_pool_stats st;
    fairq_pool_stats_get(p, &st);
    assert_int_equal(st.in_use, 0);         /* every slot came back */
    assert_int_equal(st.depth, 0);
    assert_int_equal(st.acquires, 1600);
    assert_int_equal(st.cancelled, (uint64_t)cancelled);
    fairq_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drr_light_user_not_starved),
        cmocka_unit_test(test_drr_weights),
        cmocka_unit_test(test_bounds_and_retry),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_unlimited_and_capacity_change),
        cmocka_unit_test(test_cross_thread_grant),
        cmocka_unit_test(test_threads_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
