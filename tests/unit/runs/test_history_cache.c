/* test_history_cache.c — the sessions' histories kept between runs
 * (src/runs/history_cache.c): an entry is given only for its scope and for
 * the count the store has, a deletion keeps entries out, the bound and the
 * idle expiry hold, a view is the loader's (newest messages, no leading
 * tool results). Whole runs through it: test_runs_exec.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "identity/scope_mint.h"
#include "runs/history_cache.h"
#include "runs/runs_internal.h"

static scope ALICE, BOB;

static int setup(void **state)
{
    (void)state;
    scope_mint_user(&ALICE, "ten_1", "usr_alice", "key_a", "default");
    scope_mint_user(&BOB, "ten_1", "usr_bob", "key_b", "default");
    return 0;
}

/* rows[i]: "user" / "assistant" / "tool" by the letters of `roles`
 * (u, a, t), contents "m0", "m1", …, seq i + 1. */
static message_rec ROWS[16];
static size_t rows_of(const char *roles)
{
    size_t n = strlen(roles);
    for (size_t i = 0; i < n; i++) {
        message_rec *m = &ROWS[i];
        memset(m, 0, sizeof *m);
        const char *role = roles[i] == 'u' ? "user" : roles[i] == 'a' ? "assistant" : "tool";
        snprintf(m->role, sizeof m->role, "%s", role);
        static char contents[16][24];
        snprintf(contents[i], sizeof contents[i], "m%zu", i);
        m->content = contents[i];
        if (roles[i] == 't') snprintf(m->tool_call_id, sizeof m->tool_call_id, "c%zu", i);
        m->seq = (int64_t)i + 1;
    }
    return n;
}

/* The view's contents, joined ("m2,m3"). */
static void view_contents(const history_entry *e, size_t limit, char *out, size_t len)
{
    cJSON *v = history_entry_view(e, limit);
    assert_non_null(v);
    out[0] = '\0';
    const cJSON *m;
    cJSON_ArrayForEach(m, v) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? "," : "", c->valuestring);
    }
    cJSON_Delete(v);
}

static history_entry *entry_of(history_cache *c, const scope *sc, const char *session,
                               const char *roles, int64_t count)
{
    size_t n = rows_of(roles);
    return history_entry_from_rows(sc, session, ROWS, n, 0, count, RUNS_HISTORY_MAX,
                                   history_cache_epoch(c));
}

static void test_given_for_its_count_and_scope_only(void **state)
{
    (void)state;
    history_cache *c = history_cache_new(1 << 20, 60000);
    history_cache_put(c, entry_of(c, &ALICE, "ses_1", "uaua", 4), RUNS_HISTORY_MAX);
    assert_int_equal(history_cache_entries(c), 1);
    /* another user naming the session gets nothing, and leaves it */
    assert_null(history_cache_take(c, &BOB, "ses_1", 4, history_cache_epoch(c)));
    assert_int_equal(history_cache_entries(c), 1);
    /* the right user, the right count */
    history_entry *e = history_cache_take(c, &ALICE, "ses_1", 4, history_cache_epoch(c));
    assert_non_null(e);
    assert_int_equal(history_cache_entries(c), 0);   /* the run's alone */
    char got[128];
    view_contents(e, RUNS_HISTORY_MAX, got, sizeof got);
    assert_string_equal(got, "m0,m1,m2,m3");
    history_cache_put(c, e, RUNS_HISTORY_MAX);
    /* the store says 5 (someone else wrote): stale, dropped */
    assert_null(history_cache_take(c, &ALICE, "ses_1", 5, history_cache_epoch(c)));
    assert_int_equal(history_cache_entries(c), 0);
    uint64_t hits, misses;
    history_cache_counts(c, &hits, &misses);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 2);
    history_cache_free(c);
}

/* A view is what runs_load_history gives: the newest `limit`, never
 * starting on a tool result; the same JSON as the stored rows'. */
static void test_view_is_the_loaders(void **state)
{
    (void)state;
    history_cache *c = history_cache_new(1 << 20, 60000);
    history_entry *e = entry_of(c, &ALICE, "ses_1", "uattau", 6);
    char got[128];
    view_contents(e, 100, got, sizeof got);
    assert_string_equal(got, "m0,m1,m2,m3,m4,m5");
    view_contents(e, 4, got, sizeof got);          /* m2.. starts on results: from m4 */
    assert_string_equal(got, "m4,m5");
    view_contents(e, 2, got, sizeof got);
    assert_string_equal(got, "m4,m5");
    view_contents(e, 0, got, sizeof got);
    assert_string_equal(got, "");
    /* the messages are runs_model_message's */
    cJSON *v = history_entry_view(e, 100), *want = cJSON_CreateArray();
    for (size_t i = 0; i < 6; i++) cJSON_AddItemToArray(want, runs_model_message(&ROWS[i]));
    char *a = cJSON_PrintUnformatted(v), *b = cJSON_PrintUnformatted(want);
    assert_string_equal(a, b);
    free(a);
    free(b);
    cJSON_Delete(v);
    cJSON_Delete(want);
    /* a message added is counted and seen */
    message_rec m = {.role = "user", .content = (char *)"later"};
    assert_true(history_entry_add(e, &m));
    history_cache_put(c, e, RUNS_HISTORY_MAX);
    e = history_cache_take(c, &ALICE, "ses_1", 7, history_cache_epoch(c));
    assert_non_null(e);
    view_contents(e, 2, got, sizeof got);
    assert_string_equal(got, "m5,later");
    /* put back with room for 3: the oldest go */
    history_cache_put(c, e, 3);
    e = history_cache_take(c, &ALICE, "ses_1", 7, history_cache_epoch(c));
    view_contents(e, 100, got, sizeof got);
    assert_string_equal(got, "m4,m5,later");
    history_entry_free(e);
    history_cache_free(c);
}

/* The user's message of a PostgreSQL start is stored already: not the
 * history's, and not counted. */
static void test_skip_seq(void **state)
{
    (void)state;
    history_cache *c = history_cache_new(1 << 20, 60000);
    size_t n = rows_of("uau");
    history_entry *e = history_entry_from_rows(&ALICE, "ses_1", ROWS, n, 3, 2, RUNS_HISTORY_MAX,
                                               history_cache_epoch(c));
    char got[64];
    view_contents(e, 100, got, sizeof got);
    assert_string_equal(got, "m0,m1");
    history_cache_put(c, e, RUNS_HISTORY_MAX);
    e = history_cache_take(c, &ALICE, "ses_1", 2, history_cache_epoch(c));
    assert_non_null(e);
    history_entry_free(e);
    history_cache_free(c);
}

/* A deletion while an entry is out (a run holds it, or a start is reading
 * the store for it): it is not put back, whichever session it was. */
static void test_deletion_keeps_entries_out(void **state)
{
    (void)state;
    history_cache *c = history_cache_new(1 << 20, 60000);
    history_cache_put(c, entry_of(c, &ALICE, "ses_1", "ua", 2), RUNS_HISTORY_MAX);
    history_cache_put(c, entry_of(c, &ALICE, "ses_2", "ua", 2), RUNS_HISTORY_MAX);
    history_cache_put(c, entry_of(c, &BOB, "ses_3", "ua", 2), RUNS_HISTORY_MAX);
    assert_int_equal(history_cache_entries(c), 3);
    history_cache_drop_session(c, "ses_2");
    assert_int_equal(history_cache_entries(c), 2);
    /* taken, then an erasure: it does not come back */
    uint64_t epoch = history_cache_epoch(c);
    history_entry *e = history_cache_take(c, &ALICE, "ses_1", 2, epoch);
    assert_non_null(e);
    history_cache_drop_user(c, "ten_1", "usr_alice");
    history_cache_put(c, e, RUNS_HISTORY_MAX);
    assert_int_equal(history_cache_entries(c), 1);   /* bob's */
    /* made from a read that began before a deletion: not kept either */
    epoch = history_cache_epoch(c);
    size_t n = rows_of("ua");
    e = history_entry_from_rows(&ALICE, "ses_4", ROWS, n, 0, 2, RUNS_HISTORY_MAX, epoch);
    history_cache_drop_session(c, "ses_other");
    history_cache_put(c, e, RUNS_HISTORY_MAX);
    assert_null(history_cache_take(c, &ALICE, "ses_4", 2, history_cache_epoch(c)));
    /* the erasure took every entry of the user, and only those */
    history_cache_drop_user(c, "ten_1", "usr_bob");
    assert_int_equal(history_cache_entries(c), 0);
    assert_int_equal(history_cache_bytes(c), 0);
    history_cache_free(c);
}

/* The bound: the least recently put go first; an entry larger than the
 * whole bound is never kept; a newer entry of a session is not replaced by
 * an older one. */
static void test_bound_and_order(void **state)
{
    (void)state;
    history_cache *probe = history_cache_new(1 << 20, 60000);
    history_cache_put(probe, entry_of(probe, &ALICE, "ses_x", "uaua", 4), RUNS_HISTORY_MAX);
    size_t one = history_cache_bytes(probe);
    assert_true(one > 0);
    history_cache_free(probe);

    history_cache *c = history_cache_new(one * 2 + one / 2, 60000);
    history_cache_put(c, entry_of(c, &ALICE, "ses_1", "uaua", 4), RUNS_HISTORY_MAX);
    history_cache_put(c, entry_of(c, &ALICE, "ses_2", "uaua", 4), RUNS_HISTORY_MAX);
    history_cache_put(c, entry_of(c, &ALICE, "ses_3", "uaua", 4), RUNS_HISTORY_MAX);
    assert_int_equal(history_cache_entries(c), 2);
    assert_true(history_cache_bytes(c) <= one * 2 + one / 2);
    assert_null(history_cache_take(c, &ALICE, "ses_1", 4, history_cache_epoch(c)));
    history_entry *e = history_cache_take(c, &ALICE, "ses_3", 4, history_cache_epoch(c));
    assert_non_null(e);
    history_cache_put(c, e, RUNS_HISTORY_MAX);
    /* too big for the bound on its own */
    history_cache_put(c, entry_of(c, &ALICE, "ses_big", "uauauauauauauaua", 16), RUNS_HISTORY_MAX);
    assert_null(history_cache_take(c, &ALICE, "ses_big", 16, history_cache_epoch(c)));
    /* an older entry of ses_3 arriving late does not replace the newer */
    history_cache_put(c, entry_of(c, &ALICE, "ses_3", "ua", 2), RUNS_HISTORY_MAX);
    e = history_cache_take(c, &ALICE, "ses_3", 4, history_cache_epoch(c));
    assert_non_null(e);
    history_entry_free(e);
    history_cache_free(c);
}

static void test_idle_entries_expire(void **state)
{
    (void)state;
    history_cache *c = history_cache_new(1 << 20, 1);   /* 1 ms */
    history_cache_put(c, entry_of(c, &ALICE, "ses_1", "ua", 2), RUNS_HISTORY_MAX);
    history_cache_put(c, entry_of(c, &ALICE, "ses_2", "ua", 2), RUNS_HISTORY_MAX);
    assert_int_equal(history_cache_entries(c), 2);
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    history_cache_expire(c, 1);                         /* at most one a call */
    assert_int_equal(history_cache_entries(c), 1);
    history_cache_expire(c, 64);
    assert_int_equal(history_cache_entries(c), 0);
    history_cache_free(c);
}

/* Off (0 bytes): nothing is kept, nothing given, nothing leaks. */
static void test_off(void **state)
{
    (void)state;
    history_cache *c = history_cache_new(0, 60000);
    assert_false(history_cache_enabled(c));
    history_cache_put(c, entry_of(c, &ALICE, "ses_1", "ua", 2), RUNS_HISTORY_MAX);
    assert_int_equal(history_cache_entries(c), 0);
    assert_null(history_cache_take(c, &ALICE, "ses_1", 2, 0));
    history_cache_free(c);
    assert_false(history_cache_enabled(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_given_for_its_count_and_scope_only, setup),
        cmocka_unit_test_setup(test_view_is_the_loaders, setup),
        cmocka_unit_test_setup(test_skip_seq, setup),
        cmocka_unit_test_setup(test_deletion_keeps_entries_out, setup),
        cmocka_unit_test_setup(test_bound_and_order, setup),
        cmocka_unit_test_setup(test_idle_entries_expire, setup),
        cmocka_unit_test_setup(test_off, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
