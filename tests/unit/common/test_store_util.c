/* test_store_util.c — a store populated the way the admin API would, for
 * the unit tests (see test_util.h). Kept apart from test_util.c so a test
 * that uses only the loop helpers does not need the store linked. */
#include "test_util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/store_internal.h"
#include "util/timeutil.h"

store *test_store_open(char *dir, size_t len, const char *name)
{
    if (!test_tmpdir(dir, len, name)) return NULL;
    char err[256];
    store *st = store_open(dir, err, sizeof err);
    if (!st) fprintf(stderr, "store_open %s: %s\n", dir, err);
    return st;
}

void test_store_close(store *st, const char *dir)
{
    store_close(st);
    test_rmtree(dir);
}

store_status test_store_tenant(store *st, const scope *server_admin, const char *name,
                               char id_out[ID_MAX])
{
    tenant_rec t;
    memset(&t, 0, sizeof t);
    ids_new(t.id, "ten");
    snprintf(t.name, sizeof t.name, "%s", name);
    t.created_at = time_now_unix();
    key_rec k;
    memset(&k, 0, sizeof k);
    ids_new(k.id, "key");
    k.kind = KEY_KIND_ADMIN;
    snprintf(k.prefix, sizeof k.prefix, "bk_adm_xx");
    ids_hex(k.hash, t.id, 20);   /* any unique 40+ hex chars will do here */
    store_status res = store_tenant_create(st, server_admin, &t, &k);
    if (res == STORE_OK) memcpy(id_out, t.id, ID_MAX);
    return res;
}

store_status test_store_user(store *st, const scope *tenant_admin, const char *external_id,
                             char id_out[ID_MAX])
{
    user_rec u;
    memset(&u, 0, sizeof u);
    ids_new(u.id, "usr");
    snprintf(u.external_id, sizeof u.external_id, "%s", external_id);
    snprintf(u.tier, sizeof u.tier, "default");
    u.limits = (user_limits){-1, -1, -1, -1, -1};
    store_status res = store_user_create(st, tenant_admin, &u);
    if (res == STORE_OK && id_out) memcpy(id_out, u.id, ID_MAX);
    return res;
}

void test_store_queue_usage(store *st, const char *tenant_id, int n)
{
    for (int i = 0; i < n; i++) {
        usage_rec u = {0};
        u.ts = 1;
        snprintf(u.tenant_id, sizeof u.tenant_id, "%s", tenant_id);
        snprintf(u.user_id, sizeof u.user_id, "usr_t");
        snprintf(u.model, sizeof u.model, "m");
        store_usage_record(st, &u);
    }
}

static atomic_int writer_held, writer_release;

static store_status hold_writer_op(store_conn *c, void *arg)
{
    (void)c;
    (void)arg;
    atomic_store(&writer_held, 1);
    while (!atomic_load(&writer_release)) nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    return STORE_OK;
}

static void hold_writer_done(void *arg, store_status status)
{
    (void)arg;
    (void)status;
}

bool test_store_hold_writer(store *st)
{
    atomic_store(&writer_held, 0);
    atomic_store(&writer_release, 0);
    if (store_write_async(st, hold_writer_op, NULL, hold_writer_done, NULL) != STORE_OK) {
        fprintf(stderr, "test_store_hold_writer: the write was not queued\n");
        return false;
    }
    for (int ms = 0; !atomic_load(&writer_held) && ms < 20000; ms++)
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    return atomic_load(&writer_held);
}

void test_store_release_writer(void) { atomic_store(&writer_release, 1); }

long long test_sqlite_count(const char *dir, const char *sql, const char *bind)
{
    char path[256];
    snprintf(path, sizeof path, "%s/brigade.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
        if (bind) sqlite3_bind_text(s, 1, bind, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
    } else {
        fprintf(stderr, "test_sqlite_count: %s: %s\n", sql, db ? sqlite3_errmsg(db) : "cannot open");
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}
