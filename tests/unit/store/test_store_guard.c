/* test_store_guard.c — the guard's decision rows (store_guard.c): written
 * without waiting and committed by the writer, read inside the scope (a
 * user its own, a tenant admin its tenant, the server admin any tenant it
 * names), pruned by age and by count per tenant, and erased with their
 * user. Each test works in a fresh data directory under /tmp — or, with
 * BRIGADE_TEST_STORE=postgres (the meson test test_store_guard_pg), in a
 * fresh schema of a PostgreSQL server (test_pg.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "identity/scope_mint.h"
#include "test_pg.h"
#include "test_util.h"
#include "store/store.h"

typedef struct fx {
    char dir[64];
    store *st;
    scope admin, ta, tb;
    char ta_id[ID_MAX], tb_id[ID_MAX];
    char ua[ID_MAX], uc[ID_MAX], ub[ID_MAX];
    scope sa, sc, sb;      /* sa, sc: users of tenant a; sb: a user of tenant b */
} fx;

static atomic_int committed;
static int on_pg;

static void on_done(void *arg, store_status status)
{
    (void)arg;
    if (status == STORE_OK) atomic_fetch_add(&committed, 1);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (on_pg) {
        test_pg_fresh();
        f->st = test_pg_open(4);
    } else {
        f->st = test_store_open(f->dir, sizeof f->dir, "brigade-guard");
    }
    assert_non_null(f->st);
    scope_mint_server_admin(&f->admin);
    assert_int_equal(test_store_tenant(f->st, &f->admin, "tenant-a", f->ta_id), STORE_OK);
    assert_int_equal(test_store_tenant(f->st, &f->admin, "tenant-b", f->tb_id), STORE_OK);
    scope_mint_tenant_admin(&f->ta, f->ta_id, "key_a");
    scope_mint_tenant_admin(&f->tb, f->tb_id, "key_b");
    assert_int_equal(test_store_user(f->st, &f->ta, "alice", f->ua), STORE_OK);
    assert_int_equal(test_store_user(f->st, &f->ta, "carol", f->uc), STORE_OK);
    assert_int_equal(test_store_user(f->st, &f->tb, "bob", f->ub), STORE_OK);
    scope_mint_user(&f->sa, f->ta_id, f->ua, "key_1", "default");
    scope_mint_user(&f->sc, f->ta_id, f->uc, "key_2", "default");
    scope_mint_user(&f->sb, f->tb_id, f->ub, "key_3", "default");
    atomic_store(&committed, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (on_pg) store_close(f->st); else test_store_close(f->st, f->dir);
    free(f);
    return 0;
}

/* Queue one row and wait for its commit. */
static void put(fx *f, const char *tenant, const char *user, const char *action, int64_t at,
                const guard_decision_retention *keep)
{
    guard_decision_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.tenant_id, sizeof r.tenant_id, "%s", tenant);
    snprintf(r.user_id, sizeof r.user_id, "%s", user);
    snprintf(r.session_id, sizeof r.session_id, "ses_1");
    snprintf(r.run_id, sizeof r.run_id, "run_%s", action);
    snprintf(r.channel, sizeof r.channel, "tool");
    snprintf(r.tool, sizeof r.tool, "page");
    snprintf(r.detector, sizeof r.detector, "patterns");
    snprintf(r.action, sizeof r.action, "%s", action);
    snprintf(r.labels, sizeof r.labels, "[\"instruction_override\"]");
    r.score = 0.9;
    r.created_at = at;
    int want = atomic_load(&committed) + 1;
    assert_int_equal(store_guard_decision_record(f->st, &r, keep, on_done, NULL), STORE_OK);
    for (int i = 0; i < 5000 && atomic_load(&committed) < want; i++) usleep(1000);
    assert_int_equal(atomic_load(&committed), want);
}

static size_t count(fx *f, const scope *sc, const guard_decision_query *q0)
{
    guard_decision_query q = q0 ? *q0 : (guard_decision_query){0};
    if (!q.limit) q.limit = 1000;
    guard_decision_rec *rows;
    size_t n;
    assert_int_equal(store_guard_decisions_list(f->st, sc, &q, &rows, &n, NULL), STORE_OK);
    free(rows);
    return n;
}

static void test_scope(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    put(f, f->ta_id, f->ua, "flag", now, NULL);
    put(f, f->ta_id, f->ua, "drop", now, NULL);
    put(f, f->ta_id, f->uc, "spotlight", now, NULL);
    put(f, f->tb_id, f->ub, "block", now, NULL);
    assert_int_equal(count(f, &f->sa, NULL), 2);
    /* a user's filter for another user is overridden by the scope */
    assert_int_equal(count(f, &f->sa, &(guard_decision_query){.user_id = f->uc}), 2);
    assert_int_equal(count(f, &f->sc, NULL), 1);
    assert_int_equal(count(f, &f->ta, NULL), 3);
    assert_int_equal(count(f, &f->ta, &(guard_decision_query){.user_id = f->uc}), 1);
    /* another tenant's admin: nothing of tenant a, even by user or tenant id */
    assert_int_equal(count(f, &f->tb, &(guard_decision_query){.user_id = f->ua}), 0);
    assert_int_equal(count(f, &f->tb, &(guard_decision_query){.tenant_id = f->ta_id}), 1);
    assert_int_equal(count(f, &f->admin, &(guard_decision_query){.tenant_id = f->ta_id}), 3);
    assert_int_equal(count(f, &f->admin, NULL), 4);
    assert_int_equal(count(f, &f->ta, &(guard_decision_query){.action = "drop"}), 1);
    /* paging: newest first, `before` the cursor */
    guard_decision_rec *rows;
    size_t n;
    bool more;
    assert_int_equal(store_guard_decisions_list(f->st, &f->ta, &(guard_decision_query){.limit = 2},
                                                &rows, &n, &more), STORE_OK);
    assert_int_equal(n, 2);
    assert_true(more);
    assert_true(rows[0].id > rows[1].id);
    assert_string_equal(rows[0].action, "spotlight");
    int64_t cursor = rows[1].id;
    free(rows);
    assert_int_equal(store_guard_decisions_list(f->st, &f->ta,
                                                &(guard_decision_query){.limit = 2, .before = cursor},
                                                &rows, &n, &more), STORE_OK);
    assert_int_equal(n, 1);
    assert_false(more);
    assert_string_equal(rows[0].action, "flag");
    free(rows);
    /* an unminted scope reads nothing; bad bounds are refused */
    scope fake = f->ta;
    fake.minted = 0;
    assert_int_equal(store_guard_decisions_list(f->st, &fake, &(guard_decision_query){.limit = 1},
                                                &rows, &n, NULL), STORE_NOT_FOUND);
    assert_int_equal(store_guard_decisions_list(f->st, &f->ta, &(guard_decision_query){.limit = 0},
                                                &rows, &n, NULL), STORE_INVALID);
    /* the summary: the same scope */
    guard_decision_count *c;
    assert_int_equal(store_guard_decisions_summary(f->st, &f->sa, &(guard_decision_query){0}, &c, &n,
                                                   NULL), STORE_OK);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) total += c[i].count;
    free(c);
    assert_int_equal(total, 2);
}

static void test_retention(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    guard_decision_retention keep = {.max_age_s = 30 * 86400, .max_per_tenant = 3};
    put(f, f->tb_id, f->ub, "flag", now, NULL);
    put(f, f->ta_id, f->ua, "flag", now - 40 * 86400, NULL);   /* too old */
    put(f, f->ta_id, f->ua, "flag", now - 20 * 86400, NULL);
    assert_int_equal(count(f, &f->admin, NULL), 3);
    /* each write prunes: the old row goes, and past the count the oldest */
    for (int i = 0; i < 4; i++) put(f, f->ta_id, f->ua, "drop", now, &keep);
    assert_int_equal(count(f, &f->ta, NULL), 3);
    assert_int_equal(count(f, &f->ta, &(guard_decision_query){.action = "flag"}), 0);
    assert_int_equal(count(f, &f->tb, NULL), 1);   /* another tenant's rows are not counted */
    /* prune everything by itself: every tenant */
    int64_t deleted = 0;
    guard_decision_retention tight = {.max_per_tenant = 1};
    assert_int_equal(store_guard_decisions_prune(f->st, &tight, now, &deleted), STORE_OK);
    assert_int_equal(deleted, 2);
    assert_int_equal(count(f, &f->ta, NULL), 1);
    assert_int_equal(count(f, &f->tb, NULL), 1);
    guard_decision_retention young = {.max_age_s = 1};
    assert_int_equal(store_guard_decisions_prune(f->st, &young, now + 10, &deleted), STORE_OK);
    assert_int_equal(deleted, 2);
    assert_int_equal(count(f, &f->admin, NULL), 0);
}

/* A large bound is checked every max/100 rows: never more than ~1% over. */
static void test_retention_amortized(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    guard_decision_retention keep = {.max_per_tenant = 200};
    for (int i = 0; i < 215; i++) put(f, f->ta_id, f->ua, "flag", now, &keep);
    size_t n = count(f, &f->ta, NULL);
    assert_true(n >= 200 && n <= 202);
}

static void test_erased_with_user(void **state)
{
    fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    put(f, f->ta_id, f->ua, "flag", now, NULL);
    put(f, f->ta_id, f->uc, "flag", now, NULL);
    assert_int_equal(store_user_delete(f->st, &f->ta, f->ua), STORE_OK);
    assert_int_equal(count(f, &f->ta, NULL), 1);
    assert_int_equal(count(f, &f->ta, &(guard_decision_query){.user_id = f->ua}), 0);
}

static void test_refused_rows(void **state)
{
    fx *f = *state;
    guard_decision_rec r;
    memset(&r, 0, sizeof r);   /* no tenant: refused before anything is queued */
    assert_int_equal(store_guard_decision_record(f->st, &r, NULL, on_done, NULL), STORE_INVALID);
    usleep(20000);
    assert_int_equal(atomic_load(&committed), 0);
}

int main(void)
{
    const char *kind = getenv("BRIGADE_TEST_STORE");
    on_pg = kind && strcmp(kind, "postgres") == 0;
    if (on_pg && test_pg_start() != 0) return 1;
    if (on_pg && !test_pg_url()) {   /* BRIGADE_TEST_PG=skip, said explicitly */
        fprintf(stderr, "BRIGADE_TEST_PG=skip: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_amortized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erased_with_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_rows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
