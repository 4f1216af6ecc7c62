/* test_store.c — the store: migrations, scope enforcement, group commit
 * under concurrency, usage batching and queries. Each test works in a fresh
 * data directory under /tmp — or, with BRIGADE_TEST_STORE=postgres (the
 * meson test test_store_pg), in a fresh schema of a PostgreSQL server
 * (test_pg.h); the tests of SQLite's own files skip there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity/scope_mint.h"
#include "test_pg.h"
#include "test_util.h"
#include "store/store.h"
#include "util/ids.h"
#include "util/timeutil.h"

typedef struct fx {
    char dir[64];
    store *st;
    scope admin;           /* server admin */
    scope ta, tb;          /* tenant admins of A and B */
    char ta_id[ID_MAX], tb_id[ID_MAX];
} fx;

static int on_pg;   /* BRIGADE_TEST_STORE=postgres */

static store *open_store(fx *f)
{
    if (!on_pg) return test_store_open(f->dir, sizeof f->dir, "brigade-store");
    test_pg_fresh();
    return test_pg_open(4);
}

/* Close and open the same data again (what a restart sees). */
static void reopen(fx *f)
{
    store_close(f->st);
    if (on_pg) {
        f->st = test_pg_open(4);
        return;
    }
    char err[256];
    f->st = store_open(f->dir, err, sizeof err);
    assert_non_null(f->st);
}

static void make_tenant(fx *f, const char *name, char id_out[ID_MAX])
{
    assert_int_equal(test_store_tenant(f->st, &f->admin, name, id_out), STORE_OK);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->st = open_store(f);
    assert_non_null(f->st);
    scope_mint_server_admin(&f->admin);
    make_tenant(f, "tenant-a", f->ta_id);
    make_tenant(f, "tenant-b", f->tb_id);
    scope_mint_tenant_admin(&f->ta, f->ta_id, "key_a");
    scope_mint_tenant_admin(&f->tb, f->tb_id, "key_b");
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

static void mkuser(fx *f, const scope *sc, const char *ext, char id_out[ID_MAX])
{
    assert_int_equal(test_store_user(f->st, sc, ext, id_out), STORE_OK);
}

static void mkkey(fx *f, const scope *sc, const char *user_id, char id_out[ID_MAX])
{
    key_rec k;
    memset(&k, 0, sizeof k);
    ids_new(k.id, "key");
    k.kind = KEY_KIND_USER;
    snprintf(k.user_id, sizeof k.user_id, "%s", user_id);
    snprintf(k.prefix, sizeof k.prefix, "bk_usr_xx");
    ids_hex(k.hash, k.id, 20);
    assert_int_equal(store_key_create(f->st, sc, &k), STORE_OK);
    if (id_out) memcpy(id_out, k.id, ID_MAX);
}

/* ---- migrations ---- */

static void test_migrations_idempotent(void **state)
{
    if (on_pg) skip();   /* SQLite's own files (test_store_backends covers PostgreSQL) */
    fx *f = *state;
    int v = store_schema_version(f->st);
    assert_true(v >= 1);
    assert_true(store_ping(f->st));
    char uid[ID_MAX];
    mkuser(f, &f->ta, "persisted", uid);
    store_close(f->st);

    /* the file really records the version */
    char path[128];
    snprintf(path, sizeof path, "%s/brigade.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), v);
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);

    char err[256];
    f->st = store_open(f->dir, err, sizeof err);    /* re-open: nothing re-applied */
    assert_non_null(f->st);
    assert_int_equal(store_schema_version(f->st), v);
    user_rec u;
    assert_int_equal(store_user_get(f->st, &f->ta, uid, &u), STORE_OK);
    assert_string_equal(u.external_id, "persisted");
}

static void test_open_creates_dir_0700(void **state)
{
    if (on_pg) skip();   /* SQLite's own files (test_store_backends covers PostgreSQL) */
    fx *f = *state;
    char sub[128], err[256];
    snprintf(sub, sizeof sub, "%s/nested", f->dir);
    store *st = store_open(sub, err, sizeof err);
    assert_non_null(st);
    struct stat sb;
    assert_int_equal(stat(sub, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    store_close(st);
}

/* ---- scope ---- */

static void test_tenant_isolation(void **state)
{
    fx *f = *state;
    char ua[ID_MAX], ub[ID_MAX], kb[ID_MAX];
    mkuser(f, &f->ta, "alice", ua);
    mkuser(f, &f->tb, "bob", ub);
    mkkey(f, &f->tb, ub, kb);
    user_rec u;
    key_rec k;
    /* A's admin: B's user and key do not exist */
    assert_int_equal(store_user_get(f->st, &f->ta, ub, &u), STORE_NOT_FOUND);
    user_update upd = {.set_disabled = true, .disabled = true};
    assert_int_equal(store_user_update(f->st, &f->ta, ub, &upd, &u), STORE_NOT_FOUND);
    assert_int_equal(store_user_delete(f->st, &f->ta, ub), STORE_NOT_FOUND);
    assert_int_equal(store_key_get(f->st, &f->ta, kb, &k), STORE_NOT_FOUND);
    assert_int_equal(store_key_revoke(f->st, &f->ta, kb, time_now_unix()), STORE_NOT_FOUND);
    key_rec *ks; size_t nk;
    assert_int_equal(store_key_list(f->st, &f->ta, ub, &ks, &nk), STORE_NOT_FOUND);
    /* a key for B's user cannot be planted through A */
    key_rec nkey;
    memset(&nkey, 0, sizeof nkey);
    ids_new(nkey.id, "key");
    nkey.kind = KEY_KIND_USER;
    snprintf(nkey.user_id, sizeof nkey.user_id, "%s", ub);
    snprintf(nkey.hash, sizeof nkey.hash, "feedface");
    assert_int_equal(store_key_create(f->st, &f->ta, &nkey), STORE_NOT_FOUND);
    /* listing shows A's only */
    user_rec *us; size_t n;
    assert_int_equal(store_user_list(f->st, &f->ta, NULL, 100, &us, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(us[0].id, ua);
    free(us);
    /* B's data untouched by A's attempts */
    assert_int_equal(store_user_get(f->st, &f->tb, ub, &u), STORE_OK);
    assert_false(u.disabled);
    assert_int_equal(store_key_get(f->st, &f->tb, kb, &k), STORE_OK);
    assert_int_equal(k.revoked_at, 0);
    /* tenants: A sees itself only, cannot read B */
    tenant_rec *ts; size_t nt;
    assert_int_equal(store_tenant_list(f->st, &f->ta, &ts, &nt), STORE_OK);
    assert_int_equal(nt, 1);
    assert_string_equal(ts[0].id, f->ta_id);
    store_free_tenants(ts, nt);
    tenant_rec t;
    assert_int_equal(store_tenant_get(f->st, &f->ta, f->tb_id, &t), STORE_NOT_FOUND);
    assert_int_equal(store_tenant_list(f->st, &f->admin, &ts, &nt), STORE_OK);
    assert_int_equal(nt, 2);
    store_free_tenants(ts, nt);
    /* server admin sees no users and cannot create one */
    assert_int_equal(store_user_get(f->st, &f->admin, ua, &u), STORE_FORBIDDEN);
    assert_int_equal(store_user_list(f->st, &f->admin, NULL, 10, &us, &n), STORE_FORBIDDEN);
}

static void test_user_scope(void **state)
{
    fx *f = *state;
    char u1[ID_MAX], u2[ID_MAX], k1[ID_MAX], k2[ID_MAX];
    mkuser(f, &f->ta, "one", u1);
    mkuser(f, &f->ta, "two", u2);
    mkkey(f, &f->ta, u1, k1);
    mkkey(f, &f->ta, u2, k2);
    scope me;
    scope_mint_user(&me, f->ta_id, u1, k1, "default");
    user_rec u;
    key_rec k;
    assert_int_equal(store_user_get(f->st, &me, u1, &u), STORE_OK);
    assert_int_equal(store_user_get(f->st, &me, u2, &u), STORE_NOT_FOUND);
    assert_int_equal(store_key_get(f->st, &me, k2, &k), STORE_NOT_FOUND);
    assert_int_equal(store_key_revoke(f->st, &me, k2, time_now_unix()), STORE_NOT_FOUND);
    key_rec *ks; size_t n;
    assert_int_equal(store_key_list(f->st, &me, u2, &ks, &n), STORE_NOT_FOUND);
    assert_int_equal(store_key_list(f->st, &me, NULL, &ks, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ks[0].id, k1);
    free(ks);
    /* role not allowed at all */
    user_rec nu;
    memset(&nu, 0, sizeof nu);
    snprintf(nu.external_id, sizeof nu.external_id, "x");
    assert_int_equal(store_user_create(f->st, &me, &nu), STORE_FORBIDDEN);
    user_update upd = {.set_tier = true, .tier = "gold"};
    assert_int_equal(store_user_update(f->st, &me, u1, &upd, &u), STORE_FORBIDDEN);
    /* own key revocation is allowed */
    assert_int_equal(store_key_revoke(f->st, &me, k1, 1234), STORE_OK);
    assert_int_equal(store_key_get(f->st, &me, k1, &k), STORE_OK);
    assert_int_equal(k.revoked_at, 1234);
    assert_int_equal(store_key_revoke(f->st, &me, k1, 9999), STORE_OK);   /* first time kept */
    assert_int_equal(store_key_get(f->st, &me, k1, &k), STORE_OK);
    assert_int_equal(k.revoked_at, 1234);
}

static void test_unminted_scope(void **state)
{
    fx *f = *state;
    char ua[ID_MAX];
    mkuser(f, &f->ta, "carol", ua);
    scope forged;
    memset(&forged, 0, sizeof forged);
    forged.role = SCOPE_TENANT_ADMIN;
    snprintf(forged.tenant_id, sizeof forged.tenant_id, "%s", f->ta_id);
    user_rec u;
    user_rec *us; size_t n;
    tenant_rec *ts; size_t nt;
    assert_int_equal(store_user_get(f->st, &forged, ua, &u), STORE_NOT_FOUND);
    assert_int_equal(store_user_list(f->st, &forged, NULL, 10, &us, &n), STORE_NOT_FOUND);
    assert_int_equal(n, 0);
    assert_int_equal(store_tenant_list(f->st, &forged, &ts, &nt), STORE_NOT_FOUND);
    assert_int_equal(store_user_delete(f->st, &forged, ua), STORE_NOT_FOUND);
    assert_int_equal(store_user_get(f->st, NULL, ua, &u), STORE_NOT_FOUND);
    user_rec nu;
    memset(&nu, 0, sizeof nu);
    snprintf(nu.external_id, sizeof nu.external_id, "planted");
    assert_int_equal(store_user_create(f->st, &forged, &nu), STORE_NOT_FOUND);
    forged.minted = SCOPE_MINTED;
    forged.role = SCOPE_NONE;
    assert_int_equal(store_user_get(f->st, &forged, ua, &u), STORE_NOT_FOUND);
    /* still there for the real admin */
    assert_int_equal(store_user_get(f->st, &f->ta, ua, &u), STORE_OK);
}

static void test_update_and_delete(void **state)
{
    fx *f = *state;
    char ua[ID_MAX], k1[ID_MAX], k2[ID_MAX];
    mkuser(f, &f->ta, "dave", ua);
    mkkey(f, &f->ta, ua, k1);
    mkkey(f, &f->ta, ua, k2);
    user_update upd;
    memset(&upd, 0, sizeof upd);
    upd.set_tier = true;
    snprintf(upd.tier, sizeof upd.tier, "gold");
    upd.set_limits = true;
    upd.limits = (user_limits){10, 2000, 3, 500000000, -1};
    user_rec u;
    assert_int_equal(store_user_update(f->st, &f->ta, ua, &upd, &u), STORE_OK);
    assert_string_equal(u.tier, "gold");
    assert_false(u.disabled);
    assert_int_equal(u.limits.rpm, 10);
    assert_int_equal(u.limits.daily_budget_nusd, 500000000);
    assert_int_equal(u.limits.monthly_budget_nusd, -1);
    assert_string_equal(u.external_id, "dave");
    /* duplicate external id within a tenant: conflict; across tenants: fine */
    user_rec dup;
    memset(&dup, 0, sizeof dup);
    snprintf(dup.external_id, sizeof dup.external_id, "dave");
    assert_int_equal(store_user_create(f->st, &f->ta, &dup), STORE_CONFLICT);
    assert_int_equal(store_user_create(f->st, &f->tb, &dup), STORE_OK);

    assert_int_equal(store_user_delete(f->st, &f->ta, ua), STORE_OK);
    key_rec k;
    assert_int_equal(store_key_get(f->st, &f->ta, k1, &k), STORE_NOT_FOUND);
    assert_int_equal(store_key_get(f->st, &f->ta, k2, &k), STORE_NOT_FOUND);
    assert_int_equal(store_user_get(f->st, &f->ta, ua, &u), STORE_NOT_FOUND);
    assert_int_equal(store_user_delete(f->st, &f->ta, ua), STORE_NOT_FOUND);
}

static void test_user_list_paging(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 25; i++) {
        char ext[32];
        snprintf(ext, sizeof ext, "p%02d", i);
        mkuser(f, &f->ta, ext, NULL);
    }
    char after[ID_MAX] = "";
    size_t total = 0, pages = 0;
    for (;;) {
        user_rec *us; size_t n;
        assert_int_equal(store_user_list(f->st, &f->ta, after[0] ? after : NULL, 10, &us, &n), STORE_OK);
        if (n == 0) { free(us); break; }
        for (size_t i = 1; i < n; i++) assert_true(strcmp(us[i - 1].id, us[i].id) < 0);
        memcpy(after, us[n - 1].id, ID_MAX);
        total += n;
        pages++;
        free(us);
    }
    assert_int_equal(total, 25);
    assert_int_equal(pages, 3);
}

static void test_provision(void **state)
{
    fx *f = *state;
    user_rec a, b;
    assert_int_equal(store_user_provision(f->st, f->ta_id, "jwt-sub", NULL, &a), STORE_OK);
    assert_string_equal(a.tier, "default");          /* the tenant's default tier */
    assert_string_equal(a.tenant_id, f->ta_id);
    assert_int_equal(store_user_provision(f->st, f->ta_id, "jwt-sub", "gold", &b), STORE_OK);
    assert_string_equal(b.id, a.id);                 /* existing row returned, unchanged */
    assert_string_equal(b.tier, "default");
    assert_int_equal(store_user_provision(f->st, f->tb_id, "jwt-sub", "gold", &b), STORE_OK);
    assert_string_not_equal(b.id, a.id);             /* same subject, other tenant: other user */
    assert_string_equal(b.tier, "gold");
    assert_int_equal(store_user_provision(f->st, "ten_missing", "x", NULL, &b), STORE_NOT_FOUND);
    assert_int_equal(store_user_provision(f->st, f->ta_id, "", NULL, &b), STORE_INVALID);
}

/* ---- group commit ---- */

typedef struct gc_arg {
    fx *f;
    int thread;
    int ok, conflicts;
} gc_arg;

static void *gc_worker(void *p)
{
    gc_arg *a = p;
    for (int i = 0; i < 200; i++) {
        user_rec u;
        memset(&u, 0, sizeof u);
        snprintf(u.external_id, sizeof u.external_id, "t%d-u%d", a->thread, i);
        u.limits = (user_limits){-1, -1, -1, -1, -1};
        if (store_user_create(a->f->st, &a->f->ta, &u) == STORE_OK) a->ok++;
        /* every 50th op collides with an existing row: only it must fail */
        if (i % 50 == 0) {
            memset(u.id, 0, sizeof u.id);
            if (store_user_create(a->f->st, &a->f->ta, &u) == STORE_CONFLICT) a->conflicts++;
        }
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    fx *f = *state;
    enum { T = 8 };
    pthread_t th[T];
    gc_arg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (gc_arg){.f = f, .thread = i};
        pthread_create(&th[i], NULL, gc_worker, &args[i]);
    }
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    store_stats stats;
    store_get_stats(f->st, &stats);
    /* 2 tenants + 1600 users + 32 conflicting attempts went through the writer */
    assert_true(stats.ops >= 2 + T * 200 + T * 4);
    assert_true(stats.commits >= 1 && stats.commits <= stats.ops);
    print_message("group commit: %llu ops in %llu commits\n", (unsigned long long)stats.ops,
                  (unsigned long long)stats.commits);
    for (int i = 0; i < T; i++) {
        assert_int_equal(args[i].ok, 200);
        assert_int_equal(args[i].conflicts, 4);
    }
    /* all committed: count through a fresh connection after re-open */
    reopen(f);
    size_t total = 0;
    char after[ID_MAX] = "";
    for (;;) {
        user_rec *us; size_t n;
        assert_int_equal(store_user_list(f->st, &f->ta, after[0] ? after : NULL, 1000, &us, &n), STORE_OK);
        if (!n) { free(us); break; }
        memcpy(after, us[n - 1].id, ID_MAX);
        total += n;
        free(us);
    }
    assert_int_equal(total, T * 200);
}

/* ---- usage ---- */

static void rec_usage(fx *f, const char *tenant, const char *user, const char *model, int64_t ts,
                      int64_t in, int64_t out, int64_t cost)
{
    usage_rec u;
    memset(&u, 0, sizeof u);
    u.ts = ts;
    snprintf(u.tenant_id, sizeof u.tenant_id, "%s", tenant);
    snprintf(u.user_id, sizeof u.user_id, "%s", user);
    snprintf(u.model, sizeof u.model, "%s", model);
    ids_request_id(u.request_id);
    u.input_tokens = in;
    u.output_tokens = out;
    u.cost_nusd = cost;
    u.status = 200;
    store_usage_record(f->st, &u);
}

static const usage_row *find_row(const usage_row *r, size_t n, const char *g)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(r[i].group, g) == 0) return &r[i];
    return NULL;
}

static void test_usage_query(void **state)
{
    fx *f = *state;
    char u1[ID_MAX], u2[ID_MAX];
    mkuser(f, &f->ta, "spender1", u1);
    mkuser(f, &f->ta, "spender2", u2);
    const int64_t day1 = 1795478400;              /* 2026-11-24T00:00:00Z */
    const int64_t day2 = day1 + 86400;
    for (int i = 0; i < 10; i++) rec_usage(f, f->ta_id, u1, "gpt-a", day1 + 100 + i, 10, 5, 1000);
    for (int i = 0; i < 5; i++) rec_usage(f, f->ta_id, u2, "gpt-b", day2 + 100 + i, 20, 7, 3000);
    rec_usage(f, f->tb_id, "usr_other", "gpt-a", day1 + 5, 999, 999, 999999);   /* other tenant */
    store_usage_flush(f->st);
    store_stats stats;
    store_get_stats(f->st, &stats);
    assert_int_equal(stats.usage_rows, 16);

    usage_row *r; size_t n;
    usage_query q = {.group_by = USAGE_GROUP_DAY};
    assert_int_equal(store_usage_query(f->st, &f->ta, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].group, "2026-11-24");
    assert_int_equal(r[0].requests, 10);
    assert_int_equal(r[0].input_tokens, 100);
    assert_int_equal(r[0].output_tokens, 50);
    assert_int_equal(r[0].cost_nusd, 10000);
    assert_string_equal(r[1].group, "2026-11-25");
    assert_int_equal(r[1].cost_nusd, 15000);
    free(r);

    q.group_by = USAGE_GROUP_MODEL;
    assert_int_equal(store_usage_query(f->st, &f->ta, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_non_null(find_row(r, n, "gpt-a"));
    assert_int_equal(find_row(r, n, "gpt-a")->requests, 10);   /* B's row not counted */
    assert_int_equal(find_row(r, n, "gpt-b")->output_tokens, 35);
    free(r);

    q.group_by = USAGE_GROUP_USER;
    assert_int_equal(store_usage_query(f->st, &f->ta, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(find_row(r, n, u1)->cost_nusd, 10000);
    assert_int_equal(find_row(r, n, u2)->cost_nusd, 15000);
    free(r);

    /* time window and user filter */
    q = (usage_query){.group_by = USAGE_GROUP_DAY, .from = day2, .to = day2 + 86400};
    assert_int_equal(store_usage_query(f->st, &f->ta, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].requests, 5);
    free(r);
    q = (usage_query){.group_by = USAGE_GROUP_MODEL, .user_id = u1};
    assert_int_equal(store_usage_query(f->st, &f->ta, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].group, "gpt-a");
    free(r);

    /* a user sees only itself, whatever filter it asks for */
    scope me;
    scope_mint_user(&me, f->ta_id, u2, "k", "default");
    q = (usage_query){.group_by = USAGE_GROUP_USER, .user_id = u1};
    assert_int_equal(store_usage_query(f->st, &me, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].group, u2);
    free(r);
    int64_t spent = -1;
    assert_int_equal(store_usage_spent(f->st, &me, 0, 0, &spent), STORE_OK);
    assert_int_equal(spent, 15000);
    assert_int_equal(store_usage_spent(f->st, &me, day1, day2, &spent), STORE_OK);
    assert_int_equal(spent, 0);
    assert_int_equal(store_usage_query(f->st, &f->admin, &q, &r, &n), STORE_FORBIDDEN);
}

static void test_usage_flushes_on_its_own(void **state)
{
    if (on_pg) skip();   /* SQLite's own files (test_store_backends covers PostgreSQL) */
    fx *f = *state;
    rec_usage(f, f->ta_id, "usr_x", "m", time_now_unix(), 1, 1, 42);
    /* no flush call: the writer must commit within STORE_USAGE_FLUSH_MS */
    usleep((STORE_USAGE_FLUSH_MS + 150) * 1000);
    char path[128];
    snprintf(path, sizeof path, "%s/brigade.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), sum(cost_nusd) FROM usage", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1);
    assert_int_equal(sqlite3_column_int(s, 1), 42);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* The writer checkpoints the WAL itself (SQLite's automatic checkpoint is
 * replaced by its hook, store_wal_noted): once the WAL holds
 * STORE_WAL_CHECKPOINT_FRAMES pages, they are copied into the database
 * after the batch's callers are woken. Without that the database file
 * would stay as created and the WAL would grow without bound. */
static void test_wal_checkpointed_by_the_writer(void **state)
{
    if (on_pg) skip();   /* SQLite's own files */
    fx *f = *state;
    char db[160];
    snprintf(db, sizeof db, "%s/brigade.db", f->dir);
    struct stat before;
    assert_int_equal(stat(db, &before), 0);
    /* ~3 000 pages of usage rows, over several commits */
    for (int batch = 0; batch < 12; batch++) {
        for (int i = 0; i < 2000; i++)
            rec_usage(f, f->ta_id, "usr_checkpoint_a_rather_long_user_id", "model-with-a-long-name",
                      time_now_unix(), i, i, i);
        store_usage_flush(f->st);
    }
    struct stat now = before;
    for (int i = 0; i < 100 && now.st_size < before.st_size + 2 * 1024 * 1024; i++) {
        usleep(20 * 1000);
        assert_int_equal(stat(db, &now), 0);
    }
    print_message("database %lld -> %lld bytes\n", (long long)before.st_size, (long long)now.st_size);
    assert_true(now.st_size >= before.st_size + 2 * 1024 * 1024);
    /* and the rows read back whole */
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT count(*) FROM usage", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 24000);
    sqlite3_finalize(q);
    sqlite3_close(h);
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
        cmocka_unit_test_setup_teardown(test_migrations_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_creates_dir_0700, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unminted_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_list_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_flushes_on_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_checkpointed_by_the_writer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
