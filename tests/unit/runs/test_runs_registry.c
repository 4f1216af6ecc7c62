/* test_runs_registry.c — the run registry's rules (src/runs/registry.c):
 * one active run per session; a second message is refused, queued (up to
 * RUNS_QUEUE_MAX) or made to interrupt; releasing hands the session to the
 * next queued message through its loop's mailbox; cancel and live status
 * answer only the run's own user; a lost credential stops the runs it
 * started, and only those. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/scope_mint.h"
#include "runs/runs_internal.h"

typedef struct fixture {
    uv_loop_t    loop;
    uv_idle_t    keep;     /* the mailbox handle is unref'd: keep the loop alive */
    runs        *r;
    runs_thread *t;
    scope        alice, bob;
} fixture;

static void keep_alive(uv_idle_t *h) { (void)h; }

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    uv_loop_init(&f->loop);
    uv_idle_init(&f->loop, &f->keep);
    uv_idle_start(&f->keep, keep_alive);
    f->r = runs_new(NULL, NULL, NULL);
    f->t = runs_thread_new(f->r, &f->loop, NULL);
    scope_mint_user(&f->alice, "ten_a", "usr_alice", "key_a", "default");
    scope_mint_user(&f->bob, "ten_a", "usr_bob", "key_b", "default");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    runs_thread_free(f->t);
    uv_close((uv_handle_t *)&f->keep, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);   /* the mailbox's close callback */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    runs_free(f->r);
    free(f);
    return 0;
}

/* A mailbox callback that counts and remembers its order. */
static int calls[16], n_calls;
static void note_call(void *arg) { calls[n_calls++] = (int)(intptr_t)arg; }

static void test_claim_reject_enqueue_full(void **state)
{
    fixture *f = *state;
    char busy[ID_MAX];
    bool full;
    n_calls = 0;
    assert_int_equal(runs_registry_claim(f->r, f->t, &f->alice, "ses_1", RUNS_BUSY_REJECT,
                                         note_call, NULL, busy, &full), 0);
    assert_true(runs_session_busy(f->r, "ses_1"));
    assert_false(runs_session_busy(f->r, "ses_2"));
    /* busy, default reject */
    assert_int_equal(runs_registry_claim(f->r, f->t, &f->alice, "ses_1", RUNS_BUSY_REJECT,
                                         note_call, NULL, busy, &full), -1);
    assert_false(full);
    /* queue up to the bound, then refuse as full */
    for (int i = 1; i <= RUNS_QUEUE_MAX; i++)
        assert_int_equal(runs_registry_claim(f->r, f->t, &f->alice, "ses_1", RUNS_BUSY_ENQUEUE,
                                             note_call, (void *)(intptr_t)i, busy, &full), 1);
    assert_int_equal(runs_registry_claim(f->r, f->t, &f->alice, "ses_1", RUNS_BUSY_ENQUEUE,
                                         note_call, (void *)(intptr_t)99, busy, &full), -1);
    assert_true(full);
    /* each release hands the session to the next, in order, via the mailbox */
    for (int i = 1; i <= RUNS_QUEUE_MAX; i++) {
        runs_registry_release(f->r, "ses_1", NULL);
        uv_run(&f->loop, UV_RUN_NOWAIT);
        assert_int_equal(n_calls, i);
        assert_int_equal(calls[i - 1], i);
        assert_true(runs_session_busy(f->r, "ses_1"));   /* now that message's */
    }
    runs_registry_release(f->r, "ses_1", NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(n_calls, RUNS_QUEUE_MAX);
    assert_false(runs_session_busy(f->r, "ses_1"));
}

static void test_interrupt_jumps_the_queue(void **state)
{
    fixture *f = *state;
    char busy[ID_MAX];
    bool full;
    n_calls = 0;
    assert_int_equal(runs_registry_claim(f->r, f->t, &f->alice, "ses_3", RUNS_BUSY_REJECT,
                                         note_call, NULL, busy, &full), 0);
    assert_int_equal(runs_registry_claim(f->r, f->t, &f->alice, "ses_3", RUNS_BUSY_ENQUEUE,
                                         note_call, (void *)1, busy, &full), 1);
    assert_int_equal(runs_registry_claim(f->r, f->t, &f->alice, "ses_3", RUNS_BUSY_INTERRUPT,
                                         note_call, (void *)2, busy, &full), 1);
    runs_registry_release(f->r, "ses_3", NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(n_calls, 1);
    assert_int_equal(calls[0], 2);       /* the interrupting message goes first */
    runs_registry_release(f->r, "ses_3", NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(calls[1], 1);
    runs_registry_release(f->r, "ses_3", NULL);
    assert_false(runs_session_busy(f->r, "ses_3"));
}

static void test_live_status_and_cancel_are_per_user(void **state)
{
    fixture *f = *state;
    char busy[ID_MAX];
    bool full;
    n_calls = 0;
    assert_int_equal(runs_registry_claim(f->r, f->t, &f->alice, "ses_4", RUNS_BUSY_REJECT,
                                         note_call, NULL, busy, &full), 0);
    /* A run that is already finishing ignores the stop the cancel posts, so
     * no real run is needed to watch the registry's side. */
    run_exec *x = calloc(1, sizeof *x);
    x->t = f->t;
    x->finishing = true;
    runs_registry_started(f->r, "ses_4", "run_4", x);
    assert_int_equal(runs_active(f->r), 1);

    run_status st = 0;
    assert_true(runs_live_status(f->r, &f->alice, "run_4", &st));
    assert_int_equal(st, RUN_RUNNING);
    assert_false(runs_live_status(f->r, &f->bob, "run_4", &st));          /* not Bob's */
    assert_false(runs_registry_cancel(f->r, f->t, &f->bob, "run_4", note_call, (void *)7));
    assert_false(runs_registry_cancel(f->r, f->t, &f->alice, "run_nope", note_call, (void *)7));

    assert_true(runs_registry_cancel(f->r, f->t, &f->alice, "run_4", note_call, (void *)5));
    uv_run(&f->loop, UV_RUN_NOWAIT);      /* the stop message: ignored (finishing) */
    assert_int_equal(n_calls, 0);         /* answered only once the run has ended */
    runs_registry_release(f->r, "ses_4", "run_4");
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(n_calls, 1);
    assert_int_equal(calls[0], 5);
    assert_int_equal(runs_active(f->r), 0);
    assert_false(runs_live_status(f->r, &f->alice, "run_4", &st));
    free(x);
}

/* A credential lost (runs_registry_revoke): which runs match — by tenant,
 * user and key — and a run still starting is marked, to be stopped as soon
 * as it has started; a queued message brings its own key to the session. */
static void test_revoke_matches_user_and_key(void **state)
{
    fixture *f = *state;
    char busy[ID_MAX];
    bool full;
    scope alice2, carol;
    scope_mint_user(&alice2, "ten_a", "usr_alice", "key_a2", "default");
    scope_mint_user(&carol, "ten_b", "usr_alice", "key_a", "default");   /* same ids, other tenant */
    run_exec *xs[4];
    const scope *who[4] = {&f->alice, &alice2, &f->bob, &carol};
    const char *ses[4] = {"ses_r1", "ses_r2", "ses_r3", "ses_r4"};
    const char *run[4] = {"run_r1", "run_r2", "run_r3", "run_r4"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(runs_registry_claim(f->r, f->t, who[i], ses[i], RUNS_BUSY_REJECT,
                                             note_call, NULL, busy, &full), 0);
        xs[i] = calloc(1, sizeof *xs[i]);
        xs[i]->t = f->t;
        xs[i]->sc = *who[i];
        xs[i]->finishing = true;          /* ignores the posted stop */
        runs_registry_started(f->r, ses[i], run[i], xs[i]);
    }
    assert_int_equal(runs_registry_revoke(f->r, "ten_a", "usr_alice", "key_a", "c", "m"), 1);
    assert_int_equal(runs_registry_revoke(f->r, "ten_a", "usr_alice", NULL, "c", "m"), 2);
    assert_int_equal(runs_registry_revoke(f->r, "ten_a", "usr_bob", "key_a", "c", "m"), 0);
    assert_int_equal(runs_registry_revoke(f->r, "ten_b", "usr_alice", NULL, "c", "m"), 1);
    assert_int_equal(runs_registry_revoke(f->r, "ten_c", NULL, NULL, "c", "m"), 0);
    assert_int_equal(runs_registry_revoke(f->r, "ten_a", NULL, NULL, "c", "m"), 3);
    uv_run(&f->loop, UV_RUN_NOWAIT);      /* the stop messages: ignored (finishing) */

    /* a run still starting: marked, and the mark is spent when it starts */
    assert_int_equal(runs_registry_claim(f->r, f->t, &f->alice, "ses_r5", RUNS_BUSY_REJECT,
                                         note_call, NULL, busy, &full), 0);
    assert_int_equal(runs_registry_revoke(f->r, "ten_a", "usr_alice", "key_a", "revoked_credential",
                                          "gone"), 2);
    pthread_mutex_lock(&f->r->lock);
    session_slot *sl = strmap_get(f->r->sessions, "ses_r5");
    assert_string_equal(sl->revoke_code, "revoked_credential");
    pthread_mutex_unlock(&f->r->lock);
    /* a message queued on it with the user's other key takes the session
     * over with that key, unmarked: it checks its own credential */
    n_calls = 0;
    assert_int_equal(runs_registry_claim(f->r, f->t, &alice2, "ses_r5", RUNS_BUSY_ENQUEUE,
                                         note_call, (void *)9, busy, &full), 1);
    runs_registry_release(f->r, "ses_r5", NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(n_calls, 1);
    pthread_mutex_lock(&f->r->lock);
    sl = strmap_get(f->r->sessions, "ses_r5");
    assert_string_equal(sl->key_id, "key_a2");
    assert_null(sl->revoke_code);
    pthread_mutex_unlock(&f->r->lock);
    assert_int_equal(runs_registry_revoke(f->r, "ten_a", "usr_alice", "key_a", "c", "m"), 1);
    run_exec *x5 = calloc(1, sizeof *x5);
    x5->t = f->t;
    x5->sc = alice2;
    x5->finishing = true;
    assert_int_equal(runs_registry_revoke(f->r, "ten_a", "usr_alice", "key_a2", "c2", "m2"), 2);
    runs_registry_started(f->r, "ses_r5", "run_r5", x5);
    pthread_mutex_lock(&f->r->lock);
    assert_null(sl->revoke_code);         /* spent: the stop was posted */
    pthread_mutex_unlock(&f->r->lock);
    uv_run(&f->loop, UV_RUN_NOWAIT);

    for (int i = 0; i < 4; i++) runs_registry_release(f->r, ses[i], run[i]);
    runs_registry_release(f->r, "ses_r5", "run_r5");
    assert_int_equal(runs_active(f->r), 0);
    for (int i = 0; i < 4; i++) free(xs[i]);
    free(x5);
}

/* A reader that never finishes reading the oldest ended run's events
 * must not keep every later run's log: past RUN_LOG_MAX_ENDED the others
 * are forgotten as ever, the read one too (no new reader finds it), and
 * its reader still reads to the end. The sweep once stopped at a log with
 * a reader, and kept all logs behind it for as long as that reader
 * stayed. */
static void wake_nothing(void *arg) { (void)arg; }

static void test_a_lingering_reader_does_not_hold_ended_logs(void **state)
{
    fixture *f = *state;
    run_logs *logs = f->r->logs;
    /* a loop of the test's own: if a watch is left open by a failed
     * assertion, the fixture's teardown does not wait for it */
    uv_loop_t loop;
    uv_loop_init(&loop);
    assert_true(run_log_append(logs, "run_first", "ten_a", "usr_alice", "run.completed", "{\"n\":0}", 7) > 0);
    run_log_end(logs, "run_first");
    runs_event_watch *w = runs_events_watch(f->r, "ten_a", "usr_alice", "run_first", 0, &loop, wake_nothing, NULL);
    assert_non_null(w);
    char id[32];
    for (int i = 0; i < RUN_LOG_MAX_ENDED + 100; i++) {
        snprintf(id, sizeof id, "run_%d", i);
        assert_true(run_log_append(logs, id, "ten_a", "usr_alice", "run.completed", "{}", 2) > 0);
        run_log_end(logs, id);
    }
    /* the ones after the read one were forgotten past the count ... */
    assert_null(runs_events_watch(f->r, "ten_a", "usr_alice", "run_0", 0, &loop, wake_nothing, NULL));
    assert_null(runs_events_watch(f->r, "ten_a", "usr_alice", "run_98", 0, &loop, wake_nothing, NULL));
    /* ... and so was the read one, for anyone new */
    assert_null(runs_events_watch(f->r, "ten_a", "usr_alice", "run_first", 0, &loop, wake_nothing, NULL));
    runs_event_watch *young = runs_events_watch(f->r, "ten_a", "usr_alice", "run_200", 0, &loop, wake_nothing, NULL);
    assert_non_null(young);
    /* its reader still gets its events and the end */
    runs_event_frame fr[4];
    bool ended = false;
    uint64_t from, to;
    assert_int_equal(runs_events_take(f->r, w, fr, 4, &ended, &from, &to), 1);
    assert_int_equal(fr[0].seq, 1);
    assert_string_equal(fr[0].json, "{\"n\":0}");
    assert_true(ended);
    runs_events_unwatch(f->r, w);   /* the forgotten log is freed here (ASan: no leak, no use after) */
    runs_events_unwatch(f->r, young);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Ended logs are bounded by their bytes too: 2 100 runs of ~127 KiB of
 * events each (under the 4 096 count) pass 256 MiB, and the oldest are
 * forgotten; the newest are kept. */
static void test_ended_logs_are_bounded_by_bytes(void **state)
{
    fixture *f = *state;
    run_logs *logs = f->r->logs;
    uv_loop_t loop;
    uv_loop_init(&loop);
    size_t big = 127 * 1024;
    char *json = malloc(big + 1);
    assert_non_null(json);
    memset(json, 'x', big);
    json[0] = '"';
    json[big - 1] = '"';
    json[big] = '\0';
    char id[32];
    enum { RUNS = 2100 };
    for (int i = 0; i < RUNS; i++) {
        snprintf(id, sizeof id, "run_b%d", i);
        assert_true(run_log_append(logs, id, "ten_a", "usr_alice", "message.delta", json, big) > 0);
        run_log_end(logs, id);
    }
    /* one more event to sweep with */
    assert_true(run_log_append(logs, "run_live", "ten_a", "usr_alice", "run.created", "{}", 2) > 0);
    free(json);
    assert_null(runs_events_watch(f->r, "ten_a", "usr_alice", "run_b0", 0, &loop, wake_nothing, NULL));
    size_t kept = (256u << 20) / big;   /* about as many as fit */
    snprintf(id, sizeof id, "run_b%d", (int)(RUNS - kept / 2));
    runs_event_watch *w = runs_events_watch(f->r, "ten_a", "usr_alice", id, 0, &loop, wake_nothing, NULL);
    assert_non_null(w);
    runs_events_unwatch(f->r, w);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claim_reject_enqueue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_jumps_the_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_status_and_cancel_are_per_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_matches_user_and_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_lingering_reader_does_not_hold_ended_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ended_logs_are_bounded_by_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
