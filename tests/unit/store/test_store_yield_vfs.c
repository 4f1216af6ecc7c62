/* test_store_yield_vfs.c — the store writer's files go through the yield
 * VFS (src/store/store_yield_vfs.c), readers' through the default one, and
 * what the writer writes through it reads back the same after a reopen;
 * queued usage rows (in chunks, store_writer.c) are all committed once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "identity/scope_mint.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "test_util.h"

static const char *vfs_of(sqlite3 *db)
{
    sqlite3_vfs *v = NULL;
    assert_int_equal(sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &v), SQLITE_OK);
    assert_non_null(v);
    return v->zName;
}

/* The committed-rows hook sees every row once, across the queue's chunks. */
static size_t hooked_rows;
static int64_t hooked_tokens;
static void count_committed(void *arg, const usage_rec *rows, size_t n)
{
    (void)arg;
    hooked_rows += n;
    for (size_t i = 0; i < n; i++) hooked_tokens += rows[i].input_tokens;
}

static void test_writer_uses_yield_vfs(void **state)
{
    (void)state;
    char dir[256];
    store *st = test_store_open(dir, sizeof dir, "brigade-yield-vfs");
    assert_non_null(st);
    assert_string_equal(vfs_of(st->wconn->db), STORE_YIELD_VFS);
    char err[256];
    store_conn *reader = store_conn_open(st->path, 1, err, sizeof err);
    assert_non_null(reader);
    assert_string_not_equal(vfs_of(reader->db), STORE_YIELD_VFS);
    store_conn_close(reader);

    /* Rows written through it, read back after the store is reopened. */
    scope admin;
    scope_mint_server_admin(&admin);
    char tenant[ID_MAX], user[ID_MAX];
    assert_int_equal(test_store_tenant(st, &admin, "t-yield", tenant), STORE_OK);
    scope ta;
    scope_mint_tenant_admin(&ta, tenant, "key_a");
    assert_int_equal(test_store_user(st, &ta, "u-yield", user), STORE_OK);
    store_set_usage_committed_hook(st, count_committed, NULL);
    for (int i = 0; i < 3000; i++) {   /* past one automatic checkpoint (1000 pages) */
        usage_rec u = {.ts = 1700000000 + i, .input_tokens = i, .output_tokens = 1, .cost_nusd = 7, .status = 200};
        snprintf(u.tenant_id, sizeof u.tenant_id, "%s", tenant);
        snprintf(u.user_id, sizeof u.user_id, "%s", user);
        snprintf(u.model, sizeof u.model, "m");
        snprintf(u.request_id, sizeof u.request_id, "req-%d", i);
        memset(u.deployment, 'd', 100);   /* fatter rows: more pages */
        store_usage_record(st, &u);
    }
    store_usage_flush(st);
    assert_int_equal(hooked_rows, 3000);
    assert_int_equal(hooked_tokens, 2999 * 3000 / 2);
    store_close(st);
    st = store_open(dir, err, sizeof err);
    assert_non_null(st);
    int64_t spent = -1;
    scope su;
    scope_mint_user(&su, tenant, user, "key_1", "default");
    assert_int_equal(store_usage_spent(st, &su, 0, 0, &spent), STORE_OK);
    assert_int_equal(spent, 3000 * 7);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_uses_yield_vfs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
