/* test_store_backends.c — the store.h functions that both backends
 * implement, each test run once on SQLite and once on PostgreSQL: opening
 * and migrations (concurrent starts too), the usage ledger (group commit,
 * scoped queries, the ledger at start, the committed hook), the audit
 * log (one chain from concurrent writers and two instances, checked by the
 * real verifier; scoped listing; tampering found), and the
 * refusal of an incomplete backend.
 *
 * PostgreSQL: BRIGADE_TEST_PG_URL if set; otherwise this test starts a
 * throwaway server with scripts/pg-test.sh (BRIGADE_PG_TEST_SCRIPT, set by
 * meson) in a temporary directory and stops it at the end. Each test starts
 * from an empty schema. BRIGADE_TEST_PG=skip skips the PostgreSQL half
 * (only for machines without postgresql-15; scripts/deps.sh installs it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity/scope_mint.h"
#include "obs/audit_chain.h"
#include "store/store.h"
#include "store/store_connections.h"
#include "store/store_internal.h"   /* store_migrations_latest */
#include "store/store_pg.h"
#include "test_pg.h"
#include "test_util.h"
#include "util/ids.h"

enum { B_SQLITE, B_PG };

typedef struct fx {
    int backend;
    char dir[64];
    store *st;
    scope admin, ta, tb;
} fx;

#define pg_url test_pg_url()
#define pg_sql test_pg_sql
#define pg_count test_pg_count
#define pg_fresh test_pg_fresh

/* ---- fixture ---- */

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->backend = (int)(intptr_t)*state;
    if (f->backend == B_PG) {
        if (!test_pg_url()) { free(f); skip(); }
        pg_fresh();
        char err[512];
        f->st = store_pg_open(pg_url, 4, err, sizeof err);
        if (!f->st) fail_msg("store_pg_open: %s", err);
    } else {
        f->st = test_store_open(f->dir, sizeof f->dir, "brigade-backends");
    }
    assert_non_null(f->st);
    scope_mint_server_admin(&f->admin);
    scope_mint_tenant_admin(&f->ta, "ten_a", "key_a");
    scope_mint_tenant_admin(&f->tb, "ten_b", "key_b");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->backend == B_PG) store_close(f->st);
    else test_store_close(f->st, f->dir);
    free(f);
    return 0;
}

/* ---- opening ---- */

static void test_open_migrates_to_latest(void **state)
{
    fx *f = *state;
    /* same numbers, same meaning on both backends */
    assert_int_equal(store_pg_migrations_latest(), store_migrations_latest());
    assert_int_equal(store_schema_version(f->st), store_pg_migrations_latest());
    assert_true(store_ping(f->st));
    if (f->backend != B_PG) return;
    /* reopening applies nothing twice */
    char err[512];
    store *again = store_pg_open(pg_url, 1, err, sizeof err);
    assert_non_null(again);
    assert_int_equal(store_schema_version(again), store_pg_migrations_latest());
    store_close(again);
    assert_int_equal(pg_count("SELECT count(*) FROM brigade_schema"), 1);
    /* the memory search column exists and is a tsvector (FTS by PostgreSQL) */
    assert_int_equal(pg_count("SELECT count(*) FROM information_schema.columns WHERE "
                              "table_name = 'memory' AND column_name = 'fts' AND udt_name = 'tsvector'"), 1);
}

typedef struct open_arg { store *st; char err[512]; } open_arg;

static void *open_thread(void *arg)
{
    open_arg *a = arg;
    a->st = store_pg_open(pg_url, 1, a->err, sizeof a->err);
    return NULL;
}

/* Several instances starting at once on an empty database: the advisory
 * lock makes one of them migrate and the others find the work done. */
static void test_pg_concurrent_starts(void **state)
{
    fx *f = *state;
    if (f->backend != B_PG) skip();
    store_close(f->st);
    pg_fresh();
    enum { N = 6 };
    pthread_t t[N];
    open_arg a[N];
    memset(a, 0, sizeof a);
    for (int i = 0; i < N; i++) assert_int_equal(pthread_create(&t[i], NULL, open_thread, &a[i]), 0);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        if (!a[i].st) fail_msg("instance %d: %s", i, a[i].err);
        assert_int_equal(store_schema_version(a[i].st), store_pg_migrations_latest());
    }
    for (int i = 1; i < N; i++) store_close(a[i].st);
    f->st = a[0].st;
    assert_int_equal(pg_count("SELECT count(*) FROM brigade_schema"), 1);
}

static void test_pg_newer_schema_refused(void **state)
{
    fx *f = *state;
    if (f->backend != B_PG) skip();
    pg_sql("UPDATE brigade_schema SET version = 9999");
    char err[512] = "";
    store *st = store_pg_open(pg_url, 1, err, sizeof err);
    assert_null(st);
    assert_non_null(strstr(err, "newer than this brigade"));
}

static void test_pg_bad_url(void **state)
{
    (void)state;
    char err[512] = "";
    assert_null(store_pg_open("postgresql:///nodb?host=/nonexistent-dir&connect_timeout=2", 1, err,
                              sizeof err));
    assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
    assert_null(store_pg_open("", 1, err, sizeof err));
    assert_null(store_pg_open(pg_url ? pg_url : "x", 0, err, sizeof err));
    assert_non_null(strstr(err, "pool_size"));
}

/* kind postgres refuses to start while any store function is missing, and
 * says which. */
static void test_open_backend(void **state)
{
    (void)state;
    char err[1024] = "";
    /* kind postgres opens through store_open_backend only while nothing is
     * missing (store_pg_missing); a partial backend is refused by name */
    if (!pg_url) skip();
    test_pg_fresh();
    char dir[256];
    assert_non_null(test_tmpdir(dir, sizeof dir, "backend-dir"));
    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);   /* made by the open, 0700 */
    store_backend b = {.kind = STORE_BACKEND_POSTGRES, .url = pg_url};
    store *st = store_open_backend(&b, data, err, sizeof err);
    if (store_pg_missing()[0]) {
        assert_null(st);
        assert_non_null(strstr(err, "not complete yet"));
    } else {
        if (!st) fail_msg("store_open_backend: %s", err);
        struct stat sb;
        assert_int_equal(stat(data, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0700);
        char got[512];
        store_data_dir(st, got, sizeof got);
        assert_string_equal(got, data);   /* the key files stay in the data directory */
        assert_true(store_ping(st));
        assert_int_equal(store_scrub_freed(st), STORE_OK);
        store_close(st);
    }
    test_rmtree(dir);
    /* a bad URL through the same door: a clear error, no store */
    store_backend bad = {.kind = STORE_BACKEND_POSTGRES, .url = "postgresql:///x?host=/nonexistent&connect_timeout=2"};
    assert_null(store_open_backend(&bad, "/tmp", err, sizeof err));
    assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
    /* every store function is implemented: nothing is listed */
    assert_string_equal(store_pg_missing(), "");
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

static void test_usage_query_scoped(void **state)
{
    fx *f = *state;
    int64_t day1 = 1764201600;       /* 2025-11-27 00:00 UTC */
    int64_t day2 = day1 + 86400;
    for (int i = 0; i < 10; i++) rec_usage(f, "ten_a", "usr_1", "gpt-a", day1 + 100 + i, 10, 5, 1000);
    for (int i = 0; i < 5; i++) rec_usage(f, "ten_a", "usr_2", "gpt-b", day2 + 100 + i, 20, 7, 3000);
    rec_usage(f, "ten_b", "usr_1", "gpt-a", day1 + 5, 999, 999, 999999);   /* other tenant, same user id */
    store_usage_flush(f->st);
    store_stats stats;
    store_get_stats(f->st, &stats);
    assert_int_equal(stats.usage_rows, 16);

    usage_row *r; size_t n;
    usage_query q = {.group_by = USAGE_GROUP_DAY};
    assert_int_equal(store_usage_query(f->st, &f->ta, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].group, "2025-11-27");
    assert_int_equal(r[0].requests, 10);
    assert_int_equal(r[0].input_tokens, 100);
    assert_int_equal(r[0].output_tokens, 50);
    assert_int_equal(r[0].cost_nusd, 10000);
    assert_string_equal(r[1].group, "2025-11-28");
    assert_int_equal(r[1].cost_nusd, 15000);
    free(r);

    q = (usage_query){.group_by = USAGE_GROUP_MODEL};
    assert_int_equal(store_usage_query(f->st, &f->ta, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(find_row(r, n, "gpt-a")->requests, 10);   /* not tenant B's row */
    free(r);

    q = (usage_query){.group_by = USAGE_GROUP_DAY, .from = day2, .to = day2 + 86400};
    assert_int_equal(store_usage_query(f->st, &f->ta, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 1);
    free(r);

    q = (usage_query){.group_by = USAGE_GROUP_USER, .user_id = "usr_2"};
    assert_int_equal(store_usage_query(f->st, &f->ta, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].group, "usr_2");
    free(r);

    /* a user asking for another user's usage gets its own, nothing else */
    scope me;
    scope_mint_user(&me, "ten_a", "usr_1", "key_u1", "default");
    q = (usage_query){.group_by = USAGE_GROUP_USER, .user_id = "usr_2"};
    assert_int_equal(store_usage_query(f->st, &me, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].group, "usr_1");
    assert_int_equal(r[0].cost_nusd, 10000);
    free(r);
    int64_t spent;
    assert_int_equal(store_usage_spent(f->st, &me, 0, 0, &spent), STORE_OK);
    assert_int_equal(spent, 10000);
    assert_int_equal(store_usage_spent(f->st, &me, day2, 0, &spent), STORE_OK);
    assert_int_equal(spent, 0);

    /* the server admin sees no user data; a forged scope sees nothing */
    assert_int_equal(store_usage_query(f->st, &f->admin, &q, &r, &n), STORE_FORBIDDEN);
    scope forged = me;
    forged.minted = 0;
    assert_int_equal(store_usage_query(f->st, &forged, &q, &r, &n), STORE_NOT_FOUND);
    assert_int_equal(store_usage_spent(f->st, &forged, 0, 0, &spent), STORE_NOT_FOUND);
    q.from = -1;
    assert_int_equal(store_usage_query(f->st, &f->ta, &q, &r, &n), STORE_INVALID);
}

/* Hostile text in every field is data, never SQL. */
static void test_usage_hostile_text(void **state)
{
    fx *f = *state;
    const char *evil = "x'); DROP TABLE usage; --";
    rec_usage(f, "ten_a", evil, evil, 1764201600, 1, 1, 7);
    store_usage_flush(f->st);
    usage_row *r; size_t n;
    usage_query q = {.group_by = USAGE_GROUP_MODEL, .user_id = evil};
    assert_int_equal(store_usage_query(f->st, &f->ta, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].group, evil);
    free(r);
    scope evil_tenant;
    scope_mint_tenant_admin(&evil_tenant, "' OR '1'='1", "key_x");
    assert_int_equal(store_usage_query(f->st, &evil_tenant, &q, &r, &n), STORE_OK);
    assert_int_equal(n, 0);
}

typedef struct burst_arg { fx *f; int id; } burst_arg;

static void *burst(void *arg)
{
    burst_arg *a = arg;
    for (int i = 0; i < 250; i++)
        rec_usage(a->f, "ten_a", a->id % 2 ? "usr_1" : "usr_2", "m", 1764201600 + i, 1, 1, 3);
    return NULL;
}

/* 2000 rows from 8 threads: every row lands, in far fewer commits. */
static void test_usage_group_commit(void **state)
{
    fx *f = *state;
    enum { T = 8 };
    pthread_t t[T];
    burst_arg a[T];
    for (int i = 0; i < T; i++) {
        a[i] = (burst_arg){f, i};
        assert_int_equal(pthread_create(&t[i], NULL, burst, &a[i]), 0);
    }
    for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
    store_usage_flush(f->st);
    store_stats s;
    store_get_stats(f->st, &s);
    assert_int_equal(s.usage_rows, 2000);
    assert_true(s.commits < 200);
    /* all committed: nothing waits, and no tenant holds a share of it */
    size_t tenants = 9;
    assert_int_equal(store_usage_backlog(f->st), 0);
    assert_int_equal(store_usage_backlog_of(f->st, f->ta.tenant_id, &tenants), 0);
    assert_int_equal(tenants, 0);
    int64_t spent;
    assert_int_equal(store_usage_spent(f->st, &f->ta, 0, 0, &spent), STORE_OK);
    assert_int_equal(spent, 6000);
    if (f->backend == B_PG) assert_int_equal(pg_count("SELECT count(*) FROM usage"), 2000);
}

/* Without a flush, rows are committed within STORE_USAGE_FLUSH_MS. */
static void test_usage_flushes_on_its_own(void **state)
{
    fx *f = *state;
    rec_usage(f, "ten_a", "usr_1", "m", 1764201600, 1, 1, 42);
    usleep((STORE_USAGE_FLUSH_MS * 3) * 1000);
    int64_t spent = 0;
    assert_int_equal(store_usage_spent(f->st, &f->ta, 0, 0, &spent), STORE_OK);
    assert_int_equal(spent, 42);
}

static size_t hook_rows;
static int64_t hook_cost;
static void on_committed(void *arg, const usage_rec *rows, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) hook_cost += rows[i].cost_nusd;
    hook_rows += n;
}

typedef struct ledger_sum { int calls; int64_t total, ten_b; } ledger_sum;
static void on_ledger(const char *t, const char *u, const char *k, int64_t ts, int64_t cost, void *arg)
{
    (void)u; (void)k;
    ledger_sum *s = arg;
    assert_int_equal(ts % 86400, 0);
    s->calls++;
    s->total += cost;
    if (strcmp(t, "ten_b") == 0) s->ten_b += cost;
}

static void test_usage_insert_now_ledger_hook(void **state)
{
    fx *f = *state;
    hook_rows = 0;
    hook_cost = 0;
    store_set_usage_committed_hook(f->st, on_committed, NULL);
    rec_usage(f, "ten_a", "usr_1", "m", 1764201600 + 10, 1, 1, 5);
    rec_usage(f, "ten_a", "usr_1", "m", 1764201600 + 20, 1, 1, 6);
    store_usage_flush(f->st);
    assert_int_equal(hook_rows, 2);
    assert_int_equal(hook_cost, 11);

    usage_rec rows[3];
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < 3; i++) {
        rows[i].ts = 1764201600 + 86400 + i;
        snprintf(rows[i].tenant_id, sizeof rows[i].tenant_id, "ten_b");
        snprintf(rows[i].key_id, sizeof rows[i].key_id, "key_%d", i % 2);
        rows[i].cost_nusd = 100;
    }
    assert_int_equal(store_usage_insert_now(f->st, rows, 3), STORE_OK);
    assert_int_equal(hook_rows, 2);   /* reconciliation rows are not "queued usage" */

    ledger_sum s = {0};
    assert_int_equal(store_usage_ledger(f->st, 0, on_ledger, &s), STORE_OK);
    assert_int_equal(s.total, 311);
    assert_int_equal(s.ten_b, 300);
    assert_int_equal(s.calls, 3);     /* (ten_a, usr_1, "", day1), (ten_b, "", key_0, day2), key_1 */
    s = (ledger_sum){0};
    assert_int_equal(store_usage_ledger(f->st, 1764201600 + 86400, on_ledger, &s), STORE_OK);
    assert_int_equal(s.total, 300);
}

/* ---- the audit log ---- */

static audit_key akey;
static store_audit_chain achain;

static void chain_init(uint64_t every)
{
    char dir[256], err[256];
    assert_non_null(test_tmpdir(dir, sizeof dir, "backends-key"));
    assert_int_equal(audit_key_load(dir, true, &akey, err, sizeof err), 0);
    test_rmtree(dir);
    achain = (store_audit_chain){.hash = audit_chain_hash, .sign = audit_chain_sign_cb,
                                 .sign_arg = &akey, .every = every};
}

typedef struct append_arg { store *st; int n, id; } append_arg;

static void *append_thread(void *arg)
{
    append_arg *a = arg;
    for (int i = 0; i < a->n; i++) {
        char target[32];
        snprintf(target, sizeof target, "usr_%d_%d", a->id, i);
        audit_rec e = {.tenant_id = a->id % 2 ? "ten_a" : "ten_b", .actor = "tenant_admin:key_1",
                       .credential = "key_1", .action = "user.create", .target = target,
                       .details = "{}"};
        assert_int_equal(store_audit_append(a->st, &e, &achain), STORE_OK);
    }
    return NULL;
}

static void verify_intact(store *st, uint64_t entries)
{
    audit_verify_result *res = calloc(1, sizeof *res);
    assert_int_equal(audit_verify(st, akey.pk, res), STORE_OK);
    if (!res->intact) fail_msg("chain not intact: %zu problems", res->n_problems);
    assert_int_equal(res->entries, entries);
    assert_true(res->checkpoints >= entries / 10);
    free(res);
}

/* Concurrent appends form one chain, verified by the real verifier. On
 * PostgreSQL half of the writers use a second store on the same database:
 * two instances appending to one chain. */
static void test_audit_one_chain(void **state)
{
    fx *f = *state;
    chain_init(10);
    store *other = f->st;
    if (f->backend == B_PG) {
        char err[512];
        other = store_pg_open(pg_url, 2, err, sizeof err);
        assert_non_null(other);
    }
    enum { T = 6, N = 20 };
    pthread_t t[T];
    append_arg a[T];
    for (int i = 0; i < T; i++) {
        a[i] = (append_arg){i % 2 ? other : f->st, N, i};
        assert_int_equal(pthread_create(&t[i], NULL, append_thread, &a[i]), 0);
    }
    for (int i = 0; i < T; i++) pthread_join(t[i], NULL);
    if (other != f->st) store_close(other);
    verify_intact(f->st, T * N);

    audit_tail tail;
    assert_int_equal(store_audit_tail(f->st, &tail), STORE_OK);
    assert_int_equal(tail.last_seq, T * N);
    assert_true(tail.last_cp_seq > 0);
    int64_t sealed = 0;
    assert_int_equal(store_audit_checkpoint(f->st, &achain, 0, &sealed), STORE_OK);
    assert_int_equal(tail.last_cp_seq == T * N ? 0 : T * N, sealed);
    assert_int_equal(store_audit_tail(f->st, &tail), STORE_OK);
    assert_int_equal(tail.last_cp_seq, T * N);
    assert_int_equal(tail.first_unsealed_seq, 0);
}

static int count_entry(const audit_rec *e, void *arg)
{
    (void)e;
    (*(int *)arg)++;
    return 0;
}

static void list_one(const audit_rec *e, void *arg)
{
    int *n = arg;
    assert_string_equal(e->tenant_id, "ten_a");
    (*n)++;
}

static void test_audit_list_scoped(void **state)
{
    fx *f = *state;
    chain_init(0);
    append_arg a1 = {f->st, 3, 1}, a2 = {f->st, 2, 2};   /* ten_a 3, ten_b 2 */
    append_thread(&a1);
    append_thread(&a2);
    int n = 0;
    bool more = false;
    audit_query q = {.limit = 2, .tenant_id = "ten_b"};   /* forced to its own tenant */
    assert_int_equal(store_audit_list(f->st, &f->ta, &q, list_one, &n, &more), STORE_OK);
    assert_int_equal(n, 2);
    assert_true(more);
    scope me;
    scope_mint_user(&me, "ten_a", "usr_1", "key_u", "default");
    assert_int_equal(store_audit_list(f->st, &me, &q, list_one, &n, &more), STORE_FORBIDDEN);
    scope forged = f->ta;
    forged.minted = 0;
    assert_int_equal(store_audit_list(f->st, &forged, &q, list_one, &n, &more), STORE_NOT_FOUND);
    q.limit = 0;
    assert_int_equal(store_audit_list(f->st, &f->ta, &q, list_one, &n, &more), STORE_INVALID);
    int all = 0;
    assert_int_equal(store_audit_scan(f->st, 1, NULL, count_entry, &all), STORE_OK);
    assert_int_equal(all, 5);
}

/* Tampering with a stored entry on PostgreSQL is found by the verifier. */
static void test_pg_audit_tamper_found(void **state)
{
    fx *f = *state;
    chain_init(5);
    append_arg a = {f->st, 12, 1};
    append_thread(&a);
    verify_intact(f->st, 12);
    pg_sql("UPDATE audit SET details = '{\"x\":1}' WHERE seq = 7");
    audit_verify_result *res = calloc(1, sizeof *res);
    assert_int_equal(audit_verify(f->st, akey.pk, res), STORE_OK);
    assert_false(res->intact);
    free(res);
}

/* An act and its audit entry commit together: a tenant created with its
 * entry attached writes both; a conflicting create writes neither. */
static void test_audit_rides_on_act(void **state)
{
    fx *f = *state;
    chain_init(0);
    tenant_rec t;
    memset(&t, 0, sizeof t);
    ids_new(t.id, "ten");
    snprintf(t.name, sizeof t.name, "acme");
    key_rec k;
    memset(&k, 0, sizeof k);
    ids_new(k.id, "key");
    k.kind = KEY_KIND_ADMIN;
    snprintf(k.prefix, sizeof k.prefix, "bk_adm");
    ids_hex(k.hash, k.id, 20);
    audit_rec e = {.actor = "server_admin", .action = "tenant.create", .target = t.id};
    store_audit_attach(f->st, &e, &achain);
    assert_int_equal(store_tenant_create(f->st, &f->admin, &t, &k), STORE_OK);
    store_audit_detach(f->st);
    assert_true(e.written);
    assert_int_equal(e.seq, 1);

    /* the same name again: the act fails, its entry is not written */
    tenant_rec t2 = t;
    ids_new(t2.id, "ten");
    key_rec k2 = k;
    ids_new(k2.id, "key");
    ids_hex(k2.hash, k2.id, 20);
    audit_rec e2 = {.actor = "server_admin", .action = "tenant.create", .target = t2.id};
    store_audit_attach(f->st, &e2, &achain);
    assert_int_equal(store_tenant_create(f->st, &f->admin, &t2, &k2), STORE_CONFLICT);
    store_audit_detach(f->st);
    assert_false(e2.written);
    audit_tail tail;
    assert_int_equal(store_audit_tail(f->st, &tail), STORE_OK);
    assert_int_equal(tail.last_seq, 1);
    tenant_rec *list; size_t n;
    assert_int_equal(store_tenant_list(f->st, &f->admin, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_free_tenants(list, n);
}

typedef struct revoke_arg { store *st; const scope *sc; const char *key; store_status r; } revoke_arg;
static void *revoke_thread(void *arg)
{
    revoke_arg *a = arg;
    a->r = store_key_revoke(a->st, a->sc, a->key, 1764201600);
    return NULL;
}

/* A tenant keeps one working admin key: two revocations of its last two
 * admin keys at once (on PostgreSQL, from two instances) cannot both pass. */
/* The reconciliation at start (reserve_journal_recover) charges open
 * reservations with store_usage_insert_now and its budget.reconcile entry
 * armed: both commit together on either backend, and the entry is not left
 * armed for a later act. */
static void test_usage_insert_now_carries_audit(void **state)
{
    fx *f = *state;
    chain_init(0);
    usage_rec row;
    memset(&row, 0, sizeof row);
    row.ts = 1764201600;
    snprintf(row.tenant_id, sizeof row.tenant_id, "ten_a");
    snprintf(row.user_id, sizeof row.user_id, "usr_1");
    row.cost_nusd = 42;
    audit_rec e = {.actor = "system", .credential = "startup", .action = "budget.reconcile",
                   .target = "reservations.journal"};
    store_audit_attach(f->st, &e, &achain);
    assert_int_equal(store_usage_insert_now(f->st, &row, 1), STORE_OK);
    store_audit_detach(f->st);
    assert_true(e.written);
    assert_int_equal(e.seq, 1);
    audit_tail tail;
    assert_int_equal(store_audit_tail(f->st, &tail), STORE_OK);
    assert_int_equal(tail.last_seq, 1);
    /* the next write carries no stale entry */
    assert_int_equal(store_usage_insert_now(f->st, &row, 1), STORE_OK);
    assert_int_equal(store_audit_tail(f->st, &tail), STORE_OK);
    assert_int_equal(tail.last_seq, 1);
    verify_intact(f->st, 1);
}

/* Ledger rows keep the reservation they settle (migration 17): the
 * reconciliation at start asks which open reservations already have a row
 * since a time, and charges those once. */
static void test_usage_reservations_committed(void **state)
{
    fx *f = *state;
    usage_rec rows[3];
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < 3; i++) {
        rows[i].ts = 1764201600 + 100 * i;
        snprintf(rows[i].tenant_id, sizeof rows[i].tenant_id, "ten_a");
        snprintf(rows[i].user_id, sizeof rows[i].user_id, "usr_1");
        rows[i].cost_nusd = 10;
    }
    rows[0].reservation_id = 7;
    rows[1].reservation_id = (uint64_t)1 << 62;   /* large ids survive the column */
    rows[2].reservation_id = 0;                  /* none */
    assert_int_equal(store_usage_insert_now(f->st, rows, 3), STORE_OK);
    uint64_t ids[4] = {7, (uint64_t)1 << 62, 8, 0};
    bool got[4];
    assert_int_equal(store_usage_reservations_committed(f->st, 0, ids, 4, got), STORE_OK);
    assert_true(got[0]);
    assert_true(got[1]);
    assert_false(got[2]);
    assert_false(got[3]);   /* 0 is "no reservation", never a match */
    /* rows before `since` do not count */
    assert_int_equal(store_usage_reservations_committed(f->st, 1764201600 + 50, ids, 4, got), STORE_OK);
    assert_false(got[0]);
    assert_true(got[1]);
    assert_int_equal(store_usage_reservations_committed(f->st, 0, ids, 0, got), STORE_OK);
}

/* brigade's dynamic registrations (migration 18): kept per provider and
 * redirect URI, replaced by a new one, a bad record refused. */
static void test_oauth_client_kept(void **state)
{
    fx *f = *state;
    oauth_client_rec r, got;
    assert_int_equal(store_oauth_client_get(f->st, "mcp:a:0011", "https://b.example/cb", &got), STORE_NOT_FOUND);
    memset(&r, 0, sizeof r);
    snprintf(r.provider, sizeof r.provider, "mcp:a:0011");
    snprintf(r.redirect_uri, sizeof r.redirect_uri, "https://b.example/cb");
    snprintf(r.token_endpoint, sizeof r.token_endpoint, "https://as.example/token");
    snprintf(r.client_id, sizeof r.client_id, "client-1");
    snprintf(r.auth_method, sizeof r.auth_method, "none");
    r.created_at = 1764201600;
    assert_int_equal(store_oauth_client_put(f->st, &r), STORE_OK);
    assert_int_equal(store_oauth_client_get(f->st, "mcp:a:0011", "https://b.example/cb", &got), STORE_OK);
    assert_string_equal(got.client_id, "client-1");
    assert_string_equal(got.token_endpoint, "https://as.example/token");
    assert_int_equal(got.created_at, 1764201600);
    assert_int_equal(store_oauth_client_get(f->st, "mcp:a:0011", "https://c.example/cb", &got), STORE_NOT_FOUND);
    snprintf(r.client_id, sizeof r.client_id, "client-2");
    assert_int_equal(store_oauth_client_put(f->st, &r), STORE_OK);
    assert_int_equal(store_oauth_client_get(f->st, "mcp:a:0011", "https://b.example/cb", &got), STORE_OK);
    assert_string_equal(got.client_id, "client-2");
    r.client_id[0] = '\0';
    assert_int_equal(store_oauth_client_put(f->st, &r), STORE_INVALID);
}

static void test_last_admin_key_kept(void **state)
{
    fx *f = *state;
    for (int round = 0; round < 5; round++) {
        char name[32];
        snprintf(name, sizeof name, "t%d", round);
        char tid[ID_MAX];
        assert_int_equal(test_store_tenant(f->st, &f->admin, name, tid), STORE_OK);
        scope ta;
        scope_mint_tenant_admin(&ta, tid, "key_x");
        key_rec *keys; size_t n;
        assert_int_equal(store_admin_key_list(f->st, &ta, &keys, &n), STORE_OK);
        assert_int_equal(n, 1);
        key_rec k2;
        memset(&k2, 0, sizeof k2);
        ids_new(k2.id, "key");
        k2.kind = KEY_KIND_ADMIN;
        snprintf(k2.prefix, sizeof k2.prefix, "bk_adm");
        ids_hex(k2.hash, k2.id, 20);
        assert_int_equal(store_key_create(f->st, &ta, &k2), STORE_OK);
        store *other = f->st;
        if (f->backend == B_PG) other = test_pg_open(1);
        revoke_arg a = {f->st, &ta, keys[0].id, STORE_ERROR}, b = {other, &ta, k2.id, STORE_ERROR};
        pthread_t t1, t2;
        pthread_create(&t1, NULL, revoke_thread, &a);
        pthread_create(&t2, NULL, revoke_thread, &b);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        if (other != f->st) store_close(other);
        assert_true((a.r == STORE_OK) != (b.r == STORE_OK));
        assert_true(a.r == STORE_CONFLICT || b.r == STORE_CONFLICT);
        free(keys);
    }
}

/* ---- memory ---- */

typedef struct mem_fx { char tid[ID_MAX], u1[ID_MAX], u2[ID_MAX]; scope ta, s1, s2; } mem_fx;

static void mem_setup(fx *f, mem_fx *m)
{
    assert_int_equal(test_store_tenant(f->st, &f->admin, "memt", m->tid), STORE_OK);
    scope_mint_tenant_admin(&m->ta, m->tid, "key_x");
    assert_int_equal(test_store_user(f->st, &m->ta, "one", m->u1), STORE_OK);
    assert_int_equal(test_store_user(f->st, &m->ta, "two", m->u2), STORE_OK);
    scope_mint_user(&m->s1, m->tid, m->u1, "k1", "default");
    scope_mint_user(&m->s2, m->tid, m->u2, "k2", "default");
}

static void test_memory_basic_isolated(void **state)
{
    fx *f = *state;
    mem_fx m;
    mem_setup(f, &m);
    memory_rec r;
    assert_int_equal(store_memory_put(f->st, &m.s1, "colour", "blue like the lake", &r), STORE_OK);
    assert_string_equal(r.value, "blue like the lake");
    memory_rec_free(&r);
    assert_int_equal(store_memory_put_from(f->st, &m.s1, "colour", "green", "{\"kind\":\"user\"}", NULL),
                     STORE_OK);
    assert_int_equal(store_memory_get(f->st, &m.s1, "colour", &r), STORE_OK);
    assert_string_equal(r.value, "green");
    assert_string_equal(r.origin_json, "{\"kind\":\"user\"}");
    memory_rec_free(&r);
    /* user two: another user's key does not exist for it */
    assert_int_equal(store_memory_get(f->st, &m.s2, "colour", &r), STORE_NOT_FOUND);
    assert_int_equal(store_memory_delete(f->st, &m.s2, "colour"), STORE_NOT_FOUND);
    assert_int_equal(store_memory_get(f->st, &m.ta, "colour", &r), STORE_FORBIDDEN);
    assert_int_equal(store_memory_put(f->st, &m.s1, "", "x", NULL), STORE_INVALID);
    assert_int_equal(store_memory_put(f->st, &m.s1, "bad\x01key", "x", NULL), STORE_INVALID);
    assert_int_equal(store_memory_put(f->st, &m.s1, "k", "\xff\xfe", NULL), STORE_INVALID);
    assert_int_equal(store_memory_delete(f->st, &m.s1, "colour"), STORE_OK);
    assert_int_equal(store_memory_get(f->st, &m.s1, "colour", &r), STORE_NOT_FOUND);
    /* an erased user gets no new rows */
    assert_int_equal(store_user_delete(f->st, &m.ta, m.u2), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &m.s2, "after", "erased", NULL), STORE_NOT_FOUND);
}

static void test_memory_search_ranked_own_rows(void **state)
{
    fx *f = *state;
    mem_fx m;
    mem_setup(f, &m);
    assert_int_equal(store_memory_put(f->st, &m.s1, "trip", "holiday by the lake in june", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &m.s1, "food", "favourite dish: lake fish", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &m.s1, "misc", "nothing relevant", NULL), STORE_OK);
    memory_rec *arr; size_t n;
    /* a sentence: entries sharing more of its words rank first */
    assert_int_equal(store_memory_search(f->st, &m.s1, "what holiday at the lake in june?", 10, &arr, &n),
                     STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(arr[0].key, "trip");
    assert_string_equal(arr[1].key, "food");
    store_free_memories(arr, n);
    /* user two's rows full of the same words change nothing for user one */
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(store_memory_put(f->st, &m.s2, key, "lake lake lake fish fish holiday", NULL), STORE_OK);
    }
    assert_int_equal(store_memory_search(f->st, &m.s1, "lake fish", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(arr[0].key, "food");
    for (size_t i = 0; i < n; i++) assert_null(strstr(arr[i].value, "lake lake"));
    store_free_memories(arr, n);
    /* no words: newest first, own rows only */
    assert_int_equal(store_memory_search(f->st, &m.s1, " ?! ", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 3);
    store_free_memories(arr, n);
    assert_int_equal(store_memory_search(f->st, &m.s2, "", 5, &arr, &n), STORE_OK);
    assert_int_equal(n, 5);
    store_free_memories(arr, n);
}

/* Query text is never syntax: tsquery and FTS5 operators, quotes, SQL. */
static void test_memory_search_hostile_text(void **state)
{
    fx *f = *state;
    mem_fx m;
    mem_setup(f, &m);
    assert_int_equal(store_memory_put(f->st, &m.s1, "secret plan", "owner one: near the lake", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &m.s1, "notes", "owner one: secret recipe", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &m.s2, "secret plan", "owner two: secret secret", NULL), STORE_OK);
    char longq[12000];
    memset(longq, '(', sizeof longq - 1);
    longq[sizeof longq - 1] = '\0';
    memcpy(longq + 100, " secret ", 8);
    const char *queries[] = {
        "secret & !lake", "secret | user_id", "secret:*", "secret <-> lake", "!!secret", "'secret'",
        "secret\\", "(secret", "secret) || (1=1", "'; DROP TABLE memory; --", "\"secret", "*",
        "NEAR(secret lake, 2)", "\x01secret\x7f", "\xff\xfe", longq, "  \t\n ",
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        memory_rec *arr; size_t n;
        assert_int_equal(store_memory_search(f->st, &m.s1, queries[i], 50, &arr, &n), STORE_OK);
        for (size_t j = 0; j < n; j++) assert_non_null(strstr(arr[j].value, "owner one"));
        if (strstr(queries[i], "secret")) assert_int_equal(n, 2);
        store_free_memories(arr, n);
    }
    if (f->backend == B_PG) assert_int_equal(pg_count("SELECT count(*) FROM memory"), 3);
}

static void tiny_quota(void *arg, const char *tier, store_quota *out)
{
    (void)arg; (void)tier;
    *out = (store_quota){.memory_bytes = 40, .memory_entries = 2};
}

static void test_memory_quota(void **state)
{
    fx *f = *state;
    mem_fx m;
    mem_setup(f, &m);
    store_set_quota_fn(f->st, tiny_quota, NULL);
    assert_int_equal(store_memory_put(f->st, &m.s1, "a", "0123456789", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &m.s1, "b", "0123456789", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &m.s1, "c", "x", NULL), STORE_QUOTA);
    assert_string_equal(store_quota_refused()->quota, "memory_entries");
    assert_int_equal(store_memory_put(f->st, &m.s1, "a", "0123456789012345678901234567890", NULL),
                     STORE_QUOTA);
    assert_string_equal(store_quota_refused()->quota, "memory_bytes");
    assert_int_equal(store_memory_put(f->st, &m.s1, "a", "short", NULL), STORE_OK);   /* replacing shrinks */
}

/* ---- tenant definitions, stored Responses ---- */

static void test_defs_scoped(void **state)
{
    fx *f = *state;
    mem_fx m;
    mem_setup(f, &m);
    char other[ID_MAX];
    assert_int_equal(test_store_tenant(f->st, &f->admin, "other", other), STORE_OK);
    scope tb;
    scope_mint_tenant_admin(&tb, other, "key_o");
    assert_int_equal(store_def_create(f->st, &m.ta, STORE_DEF_TOOL, "zeta", "{\"a\":1}", 2), STORE_OK);
    assert_int_equal(store_def_create(f->st, &m.ta, STORE_DEF_TOOL, "alpha", NULL, 2), STORE_OK);
    assert_int_equal(store_def_create(f->st, &m.ta, STORE_DEF_TOOL, "third", "{}", 2), STORE_QUOTA);
    assert_int_equal(store_def_create(f->st, &m.ta, STORE_DEF_TOOL, "zeta", "{}", 5), STORE_CONFLICT);
    assert_int_equal(store_def_create(f->st, &m.s1, STORE_DEF_TOOL, "mine", "{}", 5), STORE_FORBIDDEN);
    def_rec *arr; size_t n;
    assert_int_equal(store_def_list(f->st, &m.s1, STORE_DEF_TOOL, &arr, &n), STORE_OK);   /* users read */
    assert_int_equal(n, 2);
    assert_string_equal(arr[0].name, "alpha");
    assert_null(arr[0].body);
    store_free_defs(arr, n);
    assert_int_equal(store_def_list(f->st, &tb, STORE_DEF_TOOL, &arr, &n), STORE_OK);   /* not another tenant's */
    assert_int_equal(n, 0);
    def_rec d;
    assert_int_equal(store_def_get(f->st, &tb, STORE_DEF_TOOL, "zeta", &d), STORE_NOT_FOUND);
    assert_int_equal(store_def_update(f->st, &tb, STORE_DEF_TOOL, "zeta", "{\"evil\":1}"), STORE_NOT_FOUND);
    assert_int_equal(store_def_delete(f->st, &tb, STORE_DEF_TOOL, "zeta"), STORE_NOT_FOUND);
    assert_int_equal(store_def_update(f->st, &m.ta, STORE_DEF_TOOL, "alpha", "{}"), STORE_NOT_FOUND);  /* catalogue entry */
    assert_int_equal(store_def_update(f->st, &m.ta, STORE_DEF_TOOL, "zeta", "{\"a\":2}"), STORE_OK);
    assert_int_equal(store_def_get(f->st, &m.s1, STORE_DEF_TOOL, "zeta", &d), STORE_OK);
    assert_string_equal(d.body, "{\"a\":2}");
    def_rec_free(&d);
    assert_int_equal(store_def_delete(f->st, &m.ta, STORE_DEF_TOOL, "zeta"), STORE_OK);
    assert_int_equal(store_def_get(f->st, &m.ta, STORE_DEF_TOOL, "zeta", &d), STORE_NOT_FOUND);
}

static void test_responses_chain_scoped(void **state)
{
    fx *f = *state;
    mem_fx m;
    mem_setup(f, &m);
    assert_int_equal(store_response_put(f->st, &m.s1, "resp_01", NULL, "m", "[1]", "{\"id\":1}"), STORE_OK);
    assert_int_equal(store_response_put(f->st, &m.s1, "resp_02", "resp_01", "m", "[]", "{\"id\":2}"), STORE_OK);
    assert_int_equal(store_response_put(f->st, &m.s1, "resp_03", "resp_02", "m", "[3,4]", "{\"id\":3}"), STORE_OK);
    char *items;
    assert_int_equal(store_response_chain(f->st, &m.s1, "resp_03", &items), STORE_OK);
    assert_string_equal(items, "[1,3,4]");
    free(items);
    /* user two continues from user one's response: its chain stops at the
     * foreign row, so the earlier response is "missing" */
    assert_int_equal(store_response_put(f->st, &m.s2, "resp_0b", "resp_03", "m", "[9]", "{}"), STORE_OK);
    assert_int_equal(store_response_chain(f->st, &m.s2, "resp_0b", &items), STORE_NOT_FOUND);
    assert_int_equal(store_response_chain(f->st, &m.s2, "resp_03", &items), STORE_NOT_FOUND);
    char *obj;
    assert_int_equal(store_response_get(f->st, &m.s2, "resp_01", &obj), STORE_NOT_FOUND);
    assert_int_equal(store_response_get(f->st, &m.s1, "resp_01", &obj), STORE_OK);
    assert_string_equal(obj, "{\"id\":1}");
    free(obj);
    assert_int_equal(store_response_delete(f->st, &m.s2, "resp_02"), STORE_NOT_FOUND);
    assert_int_equal(store_response_delete(f->st, &m.s1, "resp_02"), STORE_OK);
    assert_int_equal(store_response_chain(f->st, &m.s1, "resp_03", &items), STORE_NOT_FOUND);
    assert_int_equal(store_response_put(f->st, &m.s1, "bad", NULL, "m", "[]", "{}"), STORE_INVALID);
    store_set_quota_fn(f->st, tiny_quota, NULL);   /* memory_bytes 40 */
    assert_int_equal(store_response_room(f->st, &m.s1, 10), STORE_OK);
    assert_int_equal(store_response_room(f->st, &m.s1, 100), STORE_TOO_LARGE);   /* alone over the limit */
    assert_int_equal(store_response_put(f->st, &m.s1, "resp_04", NULL, "m", "[\"0123456789012345678901234567890\"]",
                                        "{}"), STORE_QUOTA);
}

/* ---- traces ---- */

static trace_rec mk_trace(const char *trace, const char *tenant, const char *user, int64_t start,
                          uint32_t spans, unsigned char *blob, size_t len)
{
    trace_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.trace_id, sizeof r.trace_id, "%s", trace);
    snprintf(r.tenant_id, sizeof r.tenant_id, "%s", tenant);
    snprintf(r.user_id, sizeof r.user_id, "%s", user);
    r.start_ns = start;
    r.end_ns = start + 10;
    snprintf(r.root_name, sizeof r.root_name, "root");
    r.span_count = spans;
    r.blob = blob;
    r.blob_len = len;
    return r;
}

static void test_traces_scoped_binary(void **state)
{
    fx *f = *state;
    mem_fx m;
    mem_setup(f, &m);
    unsigned char blob[256];
    for (int i = 0; i < 256; i++) blob[i] = (unsigned char)(255 - i);   /* NUL and high bytes */
    const char *t1 = "0123456789abcdef0123456789abcdef", *t2 = "fedcba9876543210fedcba9876543210";
    trace_rec rows[3] = {mk_trace(t1, m.tid, m.u1, 100, 3, blob, sizeof blob),
                         mk_trace(t1, m.tid, m.u1, 200, 2, blob, 5),
                         mk_trace(t2, m.tid, m.u1, 300, 1, blob, 1)};
    assert_int_equal(store_traces_insert(f->st, rows, 3, 0, 0), STORE_OK);
    trace_rec *out; size_t n;
    assert_int_equal(store_trace_get(f->st, &m.s1, t1, &out, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].blob_len, sizeof blob);
    assert_memory_equal(out[0].blob, blob, sizeof blob);
    assert_int_equal(out[0].span_count, 3);
    assert_int_equal(out[1].start_ns, 200);
    store_free_traces(out, n);
    assert_int_equal(store_trace_get(f->st, &m.ta, t1, &out, &n), STORE_OK);   /* its tenant's admin */
    store_free_traces(out, n);
    assert_int_equal(store_trace_get(f->st, &m.s2, t1, &out, &n), STORE_NOT_FOUND);
    /* user two writes a span into user one's trace id: now nobody but the
     * tenant admin sees it (one foreign row hides the whole trace) */
    trace_rec foreign = mk_trace(t1, m.tid, m.u2, 150, 1, blob, 2);
    assert_int_equal(store_traces_insert(f->st, &foreign, 1, 0, 0), STORE_OK);
    assert_int_equal(store_trace_get(f->st, &m.s1, t1, &out, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->admin, t1, &out, &n), STORE_FORBIDDEN);
    /* keep the newest 2 spans: only t2's row (1 span) and the foreign one (1) remain */
    assert_int_equal(store_traces_insert(f->st, NULL, 0, 0, 2), STORE_OK);
    assert_int_equal(store_trace_get(f->st, &m.s1, t2, &out, &n), STORE_OK);
    store_free_traces(out, n);
    assert_int_equal(store_trace_get(f->st, &m.ta, t1, &out, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_free_traces(out, n);
    /* an erased user's late spans are skipped */
    assert_int_equal(store_user_delete(f->st, &m.ta, m.u1), STORE_OK);
    trace_rec late = mk_trace("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", m.tid, m.u1, 500, 1, blob, 1);
    assert_int_equal(store_traces_insert(f->st, &late, 1, 0, 0), STORE_OK);
    assert_int_equal(store_trace_get(f->st, &m.ta, late.trace_id, &out, &n), STORE_NOT_FOUND);
}

/* ---- PostgreSQL restarted under the store ---- */

typedef struct down_arg { fx *f; bool ping; } down_arg;

static void while_down(void *arg)
{
    down_arg *d = arg;
    d->ping = store_ping(d->f->st);   /* refused while away */
    for (int i = 0; i < 50; i++) rec_usage(d->f, "ten_a", "usr_1", "m", 1764201600 + i, 1, 1, 2);
}

/* The server restarts: calls made while it is away fail, the first calls
 * after it is back succeed (no restart of brigade), and usage recorded
 * meanwhile is committed once it is back (nothing acknowledged lost). */
static void test_pg_server_restart(void **state)
{
    fx *f = *state;
    rec_usage(f, "ten_a", "usr_1", "m", 1764201600, 1, 1, 2);
    store_usage_flush(f->st);
    assert_true(store_ping(f->st));   /* every pool connection has been used */
    down_arg d = {f, true};
    if (test_pg_restart(while_down, &d) != 0) skip();
    assert_false(d.ping);
    assert_true(store_ping(f->st));
    store_usage_flush(f->st);
    int64_t spent;
    assert_int_equal(store_usage_spent(f->st, &f->ta, 0, 0, &spent), STORE_OK);
    assert_int_equal(spent, 51 * 2);
    mem_fx m;
    mem_setup(f, &m);   /* writes work too */
}

/* ---- a write nobody waits for (guard decisions) carries its audit entry ---- */

static atomic_int guard_done;
static void on_guard_done(void *arg, store_status st) { (void)arg; if (st == STORE_OK) atomic_fetch_add(&guard_done, 1); }

static void test_guard_async_with_audit(void **state)
{
    fx *f = *state;
    mem_fx m;
    mem_setup(f, &m);
    chain_init(0);
    atomic_store(&guard_done, 0);
    guard_decision_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.tenant_id, sizeof r.tenant_id, "%s", m.tid);
    snprintf(r.user_id, sizeof r.user_id, "%s", m.u1);
    snprintf(r.channel, sizeof r.channel, "answer");
    snprintf(r.detector, sizeof r.detector, "exfiltration");
    snprintf(r.action, sizeof r.action, "withhold");
    r.score = -1;
    r.created_at = 1764201600;
    audit_rec e = {.tenant_id = m.tid, .actor = "user:x", .action = "guard.withheld", .target = "run_x"};
    store_audit_attach(f->st, &e, &achain);
    assert_int_equal(store_guard_decision_record(f->st, &r, NULL, on_guard_done, NULL), STORE_OK);
    for (int i = 0; i < 200 && atomic_load(&guard_done) == 0; i++) usleep(10000);
    assert_int_equal(atomic_load(&guard_done), 1);
    assert_true(e.written);
    audit_tail tail;
    assert_int_equal(store_audit_tail(f->st, &tail), STORE_OK);
    assert_int_equal(tail.last_seq, 1);
    guard_decision_query q = {.limit = 10};
    guard_decision_rec *rows; size_t n; bool more;
    assert_int_equal(store_guard_decisions_list(f->st, &m.s1, &q, &rows, &n, &more), STORE_OK);
    assert_int_equal(n, 1);
    assert_true(rows[0].score < 0);
    free(rows);
    assert_int_equal(store_guard_decisions_list(f->st, &m.s2, &q, &rows, &n, &more), STORE_OK);
    assert_int_equal(n, 0);   /* another user's */
    free(rows);
}

/* ---- moving a SQLite deployment to PostgreSQL ---- */

/* A usage row of cost_nusd for uid, in the SQLite store being moved. */
static void lite_usage_row(store *lite, const char *tid, const char *uid, int64_t cost_nusd)
{
    usage_rec u;
    memset(&u, 0, sizeof u);
    u.ts = 1764201600;
    snprintf(u.tenant_id, sizeof u.tenant_id, "%s", tid);
    snprintf(u.user_id, sizeof u.user_id, "%s", uid);
    u.cost_nusd = cost_nusd;
    assert_int_equal(store_usage_insert_now(lite, &u, 1), STORE_OK);
}

/* Three traces of one window, made here: SQLite keeps them as one pack
 * row, big enough to be compressed (trace_pack.h). Trace i has ids[i],
 * 2 + i spans, starts at 10 + i, and blobs[i] filled with fill + i. */
static void lite_pack_of_three(store *lite, const char *tid, const char *uid, unsigned id_tail, char fill,
                               char ids[3][33], unsigned char blobs[3][2000])
{
    trace_rec packed[3];
    for (int i = 0; i < 3; i++) {
        snprintf(ids[i], 33, "%012llx%020x", 0x0190a1b2c3d0ULL + (unsigned)i, id_tail + (unsigned)i);
        memset(blobs[i], fill + i, 2000);
        packed[i] = mk_trace(ids[i], tid, uid, 10 + i, 2 + (uint32_t)i, blobs[i], 2000);
        packed[i].local_id = true;
    }
    assert_int_equal(store_traces_insert(lite, packed, 3, 0, 0), STORE_OK);
}

static void test_pg_import_sqlite(void **state)
{
    fx *f = *state;   /* a fresh PostgreSQL schema */
    char dir[64];
    store *lite = test_store_open(dir, sizeof dir, "brigade-import");
    assert_non_null(lite);
    chain_init(3);
    char tid[ID_MAX], uid[ID_MAX];
    assert_int_equal(test_store_tenant(lite, &f->admin, "moved", tid), STORE_OK);
    scope ta, su;
    scope_mint_tenant_admin(&ta, tid, "key_m");
    assert_int_equal(test_store_user(lite, &ta, "mover", uid), STORE_OK);
    scope_mint_user(&su, tid, uid, "key_u", "default");
    assert_int_equal(store_memory_put(lite, &su, "café plan", "meet by the lake", NULL), STORE_OK);
    session_rec ses;
    assert_int_equal(store_session_create(lite, &su, "helper", NULL, &ses), STORE_OK);
    run_rec run;
    assert_int_equal(store_run_start(lite, &su, ses.id, NULL, "hello", RUN_RUNNING, &run), STORE_OK);
    session_rec_free(&ses);
    for (int i = 0; i < 7; i++) {
        audit_rec e = {.tenant_id = tid, .actor = "tenant_admin:key_m", .action = "user.update", .target = uid};
        assert_int_equal(store_audit_append(lite, &e, &achain), STORE_OK);
    }
    lite_usage_row(lite, tid, uid, 123);
    unsigned char blob[3] = {0, 0xff, 7};
    trace_rec tr = mk_trace("0123456789abcdef0123456789abcdef", tid, uid, 1, 1, blob, 3);
    assert_int_equal(store_traces_insert(lite, &tr, 1, 0, 0), STORE_OK);
    /* three of one window, made here: SQLite keeps them as one pack row
     * (big enough to be compressed), which PostgreSQL must get back as
     * three (trace_pack.h) */
    char packed_id[3][33];
    static unsigned char packed_blob[3][2000];
    lite_pack_of_three(lite, tid, uid, 0xabc0u, 'a', packed_id, packed_blob);
    store_close(lite);
    assert_int_equal(test_sqlite_count(dir, "SELECT count(*) FROM traces WHERE id_window <> 0"
                                            " AND substr(spans, 1, 4) = X'42544B02'", NULL), 1);

    /* the target must be empty: f->st's schema is migrated and empty */
    store_import_report rep;
    char err[1024];
    if (store_pg_import_sqlite(dir, pg_url, &rep, err, sizeof err) != 0) fail_msg("import: %s", err);
    int64_t audit_rows = -1;
    for (size_t t = 0; t < rep.ntables; t++)
        if (strcmp(rep.table[t], "audit") == 0) audit_rows = rep.rows[t];
    assert_int_equal(audit_rows, 7);
    verify_intact(f->st, 7);   /* the chain moved whole, checkpoints included */
    memory_rec *arr; size_t n;
    assert_int_equal(store_memory_search(f->st, &su, "cafe lake", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 1);   /* the search vector is computed on the target */
    store_free_memories(arr, n);
    int64_t spent;
    assert_int_equal(store_usage_spent(f->st, &su, 0, 0, &spent), STORE_OK);
    assert_int_equal(spent, 123);
    run_rec got;
    assert_int_equal(store_run_get(f->st, &su, run.id, &got), STORE_OK);
    trace_rec *trs;
    assert_int_equal(store_trace_get(f->st, &su, tr.trace_id, &trs, &n), STORE_OK);
    assert_int_equal(trs[0].blob_len, 3);
    assert_memory_equal(trs[0].blob, blob, 3);
    store_free_traces(trs, n);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(store_trace_get(f->st, &su, packed_id[i], &trs, &n), STORE_OK);
        assert_int_equal(n, 1);
        assert_int_equal(trs[0].span_count, 2 + i);
        assert_int_equal(trs[0].start_ns, 10 + i);
        assert_string_equal(trs[0].root_name, "root");
        assert_int_equal(trs[0].blob_len, sizeof packed_blob[i]);
        assert_memory_equal(trs[0].blob, packed_blob[i], sizeof packed_blob[i]);
        store_free_traces(trs, n);
    }
    /* a row per trace, each with its own seq (the pack's last span's is
     * the last entry's), none of them a pack */
    assert_int_equal(pg_count("SELECT count(*) FROM traces"), 4);
    assert_int_equal(pg_count("SELECT count(*) FROM traces WHERE trace_id = ''"), 0);
    assert_int_equal(pg_count("SELECT count(DISTINCT seq) FROM traces"), 4);
    assert_int_equal(pg_count("SELECT max(seq) FROM traces"), 1 + 2 + 3 + 4);
    /* new rows after the move get fresh ids (sequences moved past the copied ones) */
    assert_int_equal(store_memory_put(f->st, &su, "second", "x", NULL), STORE_OK);
    /* a second import into the now non-empty database is refused, nothing written */
    assert_int_not_equal(store_pg_import_sqlite(dir, pg_url, &rep, err, sizeof err), 0);
    assert_non_null(strstr(err, "not empty"));
    assert_int_equal(pg_count("SELECT count(*) FROM audit"), 7);
    test_rmtree(dir);
}

/* A pack that cannot be read (its LZ4 block cut short on disk) stops the
 * move with an error naming it, and PostgreSQL is left empty: a move that
 * lost some traces quietly would be discovered only when they are asked
 * for, after the SQLite file is gone. */
static void test_pg_import_refuses_a_corrupt_pack(void **state)
{
    fx *f = *state;   /* a fresh PostgreSQL schema */
    char dir[64];
    store *lite = test_store_open(dir, sizeof dir, "brigade-import-bad");
    assert_non_null(lite);
    char tid[ID_MAX], uid[ID_MAX];
    assert_int_equal(test_store_tenant(lite, &f->admin, "moved", tid), STORE_OK);
    scope ta;
    scope_mint_tenant_admin(&ta, tid, "key_m");
    assert_int_equal(test_store_user(lite, &ta, "mover", uid), STORE_OK);
    lite_usage_row(lite, tid, uid, 5);
    char packed_id[3][33];
    static unsigned char packed_blob[3][2000];
    lite_pack_of_three(lite, tid, uid, 0xdef0u, 'k', packed_id, packed_blob);
    store_close(lite);
    char path[128];
    snprintf(path, sizeof path, "%s/brigade.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE traces SET spans = substr(spans, 1, length(spans) - 9)"
                                      " WHERE id_window <> 0 AND substr(spans, 1, 4) = X'42544B02'",
                                  NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);

    store_import_report rep;
    char err[1024] = "";
    assert_int_not_equal(store_pg_import_sqlite(dir, pg_url, &rep, err, sizeof err), 0);
    assert_non_null(strstr(err, "corrupt"));
    assert_int_equal(pg_count("SELECT count(*) FROM traces"), 0);
    assert_int_equal(pg_count("SELECT count(*) FROM usage"), 0);
    assert_int_equal(pg_count("SELECT count(*) FROM users"), 0);
    test_rmtree(dir);
}

#define BOTH(fn) \
    {"sqlite: " #fn, fn, setup, teardown, (void *)(intptr_t)B_SQLITE}, \
    {"postgres: " #fn, fn, setup, teardown, (void *)(intptr_t)B_PG}

#define PG_ONLY(fn) {"postgres: " #fn, fn, setup, teardown, (void *)(intptr_t)B_PG}

int main(void)
{
    if (test_pg_start() != 0) return 1;
    const struct CMUnitTest tests[] = {
        BOTH(test_open_migrates_to_latest),
        PG_ONLY(test_pg_concurrent_starts),
        PG_ONLY(test_pg_newer_schema_refused),
        cmocka_unit_test(test_pg_bad_url),
        cmocka_unit_test(test_open_backend),
        BOTH(test_usage_query_scoped),
        BOTH(test_usage_hostile_text),
        BOTH(test_usage_group_commit),
        BOTH(test_usage_flushes_on_its_own),
        BOTH(test_usage_insert_now_ledger_hook),
        BOTH(test_audit_one_chain),
        BOTH(test_audit_list_scoped),
        PG_ONLY(test_pg_audit_tamper_found),
        BOTH(test_audit_rides_on_act),
        BOTH(test_usage_insert_now_carries_audit),
        BOTH(test_usage_reservations_committed),
        BOTH(test_oauth_client_kept),
        BOTH(test_last_admin_key_kept),
        BOTH(test_memory_basic_isolated),
        BOTH(test_memory_search_ranked_own_rows),
        BOTH(test_memory_search_hostile_text),
        BOTH(test_memory_quota),
        BOTH(test_defs_scoped),
        BOTH(test_responses_chain_scoped),
        BOTH(test_traces_scoped_binary),
        PG_ONLY(test_pg_server_restart),
        BOTH(test_guard_async_with_audit),
        PG_ONLY(test_pg_import_sqlite),
        PG_ONLY(test_pg_import_refuses_a_corrupt_pack),
    };
    /* BRIGADE_TEST_PG=skip (said explicitly): the SQLite half only */
    struct CMUnitTest run[sizeof tests / sizeof tests[0]];
    size_t n = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (test_pg_url() || strncmp(tests[i].name, "postgres: ", 10) != 0) run[n++] = tests[i];
    if (n < sizeof tests / sizeof tests[0])
        fprintf(stderr, "BRIGADE_TEST_PG=skip: %zu PostgreSQL cases skipped\n", sizeof tests / sizeof tests[0] - n);
    return _cmocka_run_group_tests("test_store_backends", run, n, NULL, NULL);
}
