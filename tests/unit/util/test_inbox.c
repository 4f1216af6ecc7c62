/* test_inbox.c — the cross-loop inbox shared by runs' mailboxes and the
 * fair queue's grants: FIFO order, unlinking from the middle, taking all at
 * once, no push after close, an idle inbox not keeping its loop alive, a
 * push from another thread waking the loop, and the close callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "util/inbox.h"

typedef struct item {
    inbox_node node;   /* first */
    int        v;
} item;

static void no_wake(inbox *ib) { (void)ib; }

static void test_fifo_unlink_take_all(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    inbox ib;
    assert_int_equal(inbox_init(&ib, &loop, &mu, no_wake, NULL), 0);
    item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].v = i;
        assert_true(inbox_push_locked(&ib, &it[i].node));
    }
    inbox_unlink_locked(&ib, &it[2].node);   /* middle */
    inbox_unlink_locked(&ib, &it[4].node);   /* tail */
    assert_int_equal(((item *)inbox_pop_locked(&ib))->v, 0);
    item more = {.v = 9};
    assert_true(inbox_push_locked(&ib, &more.node));   /* after the new tail */
    int want[] = {1, 3, 9}, n = 0;
    for (inbox_node *x = inbox_take_all_locked(&ib); x; x = x->next) {
        assert_true(n < 3);
        assert_int_equal(((item *)x)->v, want[n++]);
    }
    assert_int_equal(n, 3);
    assert_null(inbox_pop_locked(&ib));
    assert_null(inbox_take_all_locked(&ib));

    inbox_mark_closed_locked(&ib);
    assert_false(inbox_push_locked(&ib, &it[0].node));
    assert_null(inbox_pop_locked(&ib));
    inbox_close_handle(&ib, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- across threads ---- */

typedef struct box {
    uv_loop_t       loop;
    pthread_mutex_t mu;
    inbox           ib;
    int             got[100];
    int             n_got;
    atomic_int      closed;
} box;

static void box_wake(inbox *ib)
{
    box *b = ib->owner;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        item *x = (item *)inbox_pop_locked(ib);
        pthread_mutex_unlock(&b->mu);
        if (!x) break;
        b->got[b->n_got++] = x->v;
    }
    if (b->n_got == 100) {
        pthread_mutex_lock(&b->mu);
        inbox_mark_closed_locked(ib);
        pthread_mutex_unlock(&b->mu);
    }
}

static void box_closed(inbox *ib)
{
    box *b = ib->owner;
    atomic_store(&b->closed, 1);
}

static item posts[100];

static void *poster(void *arg)
{
    box *b = arg;
    for (int i = 0; i < 100; i++) {
        posts[i].v = i;
        pthread_mutex_lock(&b->mu);
        bool ok = inbox_push_locked(&b->ib, &posts[i].node);
        pthread_mutex_unlock(&b->mu);
        if (!ok) return (void *)1;
    }
    return NULL;
}

static void keep_alive_cb(uv_timer_t *t)
{
    box *b = t->data;
    if (b->n_got == 100) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        inbox_close_handle(&b->ib, box_closed);
    }
}

static void test_cross_thread(void **state)
{
    (void)state;
    static box b;
    memset(&b, 0, sizeof b);
    uv_loop_init(&b.loop);
    pthread_mutex_init(&b.mu, NULL);
    assert_int_equal(inbox_init(&b.ib, &b.loop, &b.mu, box_wake, &b), 0);
    /* Unreferenced: with nothing else, the loop does not wait for it. */
    assert_int_equal(uv_run(&b.loop, UV_RUN_DEFAULT), 0);

    uv_timer_t keep;
    uv_timer_init(&b.loop, &keep);
    keep.data = &b;
    uv_timer_start(&keep, keep_alive_cb, 1, 1);
    pthread_t th;
    pthread_create(&th, NULL, poster, &b);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    void *rc;
    pthread_join(th, &rc);
    assert_null(rc);
    assert_int_equal(b.n_got, 100);
    for (int i = 0; i < 100; i++) assert_int_equal(b.got[i], i);   /* in order */
    assert_int_equal(atomic_load(&b.closed), 1);
    assert_int_equal(uv_loop_close(&b.loop), 0);
    pthread_mutex_destroy(&b.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_unlink_take_all),
        cmocka_unit_test(test_cross_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
