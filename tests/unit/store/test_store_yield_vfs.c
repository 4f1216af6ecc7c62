/* test_store_yield_vfs.c — the store writer's files go through the yield
 * VFS (src/store/store_yield_vfs.c), readers' through the default one, and
 * what the writer writes through it reads back the same after a reopen;
 * queued usage rows (in chunks, store_writer.c) are all committed once.
 *
 * Its gathered writes: a counting VFS is made the default before the yield
 * VFS wraps it, so the tests see the writes that reach the files. A large
 * commit and a checkpoint reach them in few writes; a reader on its own
 * connection sees every commit as soon as it returns and nothing of one
 * still open (even with pages spilled into the WAL), and each commit's
 * sync comes after all its frames reached the WAL; a held write that
 * fails fails the commit it belongs to, and the store goes on after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- the counting VFS under the yield VFS ---- */

static sqlite3_vfs *count_real;
static int wal_writes, db_writes;   /* writes that reached the files */
static int wal_reads;               /* reads of the WAL that reached it */
static int fail_wal_writes;         /* non-zero: WAL writes fail with it */

typedef struct count_file {
    sqlite3_file base;
    sqlite3_file *real;
    int kind;                       /* 1 WAL, 2 main database, 0 other */
} count_file;

#define CREAL(f) (((count_file *)(f))->real)

static int count_close(sqlite3_file *f) { return CREAL(f)->pMethods->xClose(CREAL(f)); }
static int count_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    if (((count_file *)f)->kind == 1) wal_reads++;
    return CREAL(f)->pMethods->xRead(CREAL(f), b, n, o);
}
static int count_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    count_file *c = (count_file *)f;
    if (c->kind == 1) {
        if (fail_wal_writes) return fail_wal_writes;
        wal_writes++;
    }
    if (c->kind == 2) db_writes++;
    return c->real->pMethods->xWrite(c->real, b, n, o);
}
static int count_truncate(sqlite3_file *f, sqlite3_int64 s) { return CREAL(f)->pMethods->xTruncate(CREAL(f), s); }
/* The WAL's size on disk when it was last synced: a commit's sync must
 * cover every frame of it, held ones included. */
static sqlite3_int64 wal_size_at_sync;
static int count_sync(sqlite3_file *f, int fl)
{
    count_file *c = (count_file *)f;
    if (c->kind == 1) c->real->pMethods->xFileSize(c->real, &wal_size_at_sync);
    return c->real->pMethods->xSync(c->real, fl);
}
static int count_size(sqlite3_file *f, sqlite3_int64 *s) { return CREAL(f)->pMethods->xFileSize(CREAL(f), s); }
static int count_lock(sqlite3_file *f, int l) { return CREAL(f)->pMethods->xLock(CREAL(f), l); }
static int count_unlock(sqlite3_file *f, int l) { return CREAL(f)->pMethods->xUnlock(CREAL(f), l); }
static int count_reserved(sqlite3_file *f, int *o) { return CREAL(f)->pMethods->xCheckReservedLock(CREAL(f), o); }
static int count_fcntl(sqlite3_file *f, int op, void *a) { return CREAL(f)->pMethods->xFileControl(CREAL(f), op, a); }
static int count_sector(sqlite3_file *f) { return CREAL(f)->pMethods->xSectorSize(CREAL(f)); }
static int count_chars(sqlite3_file *f) { return CREAL(f)->pMethods->xDeviceCharacteristics(CREAL(f)); }
static int count_shm_map(sqlite3_file *f, int p, int s, int e, void volatile **o)
{
    return CREAL(f)->pMethods->xShmMap(CREAL(f), p, s, e, o);
}
static int count_shm_lock(sqlite3_file *f, int o, int n, int fl) { return CREAL(f)->pMethods->xShmLock(CREAL(f), o, n, fl); }
static void count_shm_barrier(sqlite3_file *f) { CREAL(f)->pMethods->xShmBarrier(CREAL(f)); }
static int count_shm_unmap(sqlite3_file *f, int d) { return CREAL(f)->pMethods->xShmUnmap(CREAL(f), d); }

static const sqlite3_io_methods count_io = {
    2, count_close, count_read, count_write, count_truncate, count_sync, count_size, count_lock,
    count_unlock, count_reserved, count_fcntl, count_sector, count_chars, count_shm_map,
    count_shm_lock, count_shm_barrier, count_shm_unmap, NULL, NULL};

static int count_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)v;
    count_file *c = (count_file *)f;
    c->base.pMethods = NULL;
    c->real = (sqlite3_file *)&c[1];
    c->kind = (flags & SQLITE_OPEN_WAL) ? 1 : (flags & SQLITE_OPEN_MAIN_DB) ? 2 : 0;
    int rc = count_real->xOpen(count_real, name, c->real, flags, out);
    if (c->real->pMethods) c->base.pMethods = &count_io;
    return rc;
}

static sqlite3_vfs count_vfs;

/* Made the default before any store opens, so the yield VFS wraps it. */
static void count_vfs_register(void)
{
    count_real = sqlite3_vfs_find(NULL);
    assert_non_null(count_real);
    count_vfs = *count_real;
    count_vfs.pNext = NULL;
    count_vfs.zName = "brigade-test-count";
    count_vfs.szOsFile = (int)sizeof(count_file) + count_real->szOsFile;
    count_vfs.xOpen = count_open;
    assert_int_equal(sqlite3_vfs_register(&count_vfs, 1), SQLITE_OK);
}

/* A connection through the writer's VFS, as the writer configures it
 * (WAL, synchronous=FULL; no automatic checkpoint: the tests run it). */
static sqlite3 *open_writer(const char *path, int cache_pages)
{
    sqlite3 *db = NULL;
    const char *vfs = store_yield_vfs();
    assert_non_null(vfs);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
    char sql[160];
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=%d;"
             " PRAGMA wal_autocheckpoint=0;", cache_pages);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static sqlite3 *open_reader(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return db;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static void check_integrity(sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
}

/* n rows of `size` bytes each (value i repeated), ids from first */
static int insert_rows(sqlite3 *db, int first, int n, int size)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t (id, body) VALUES (?, ?)", -1, &s, NULL), SQLITE_OK);
    char *body = malloc((size_t)size);
    assert_non_null(body);
    int rc = SQLITE_DONE;
    for (int i = first; i < first + n && rc == SQLITE_DONE; i++) {
        memset(body, 'a' + i % 26, (size_t)size);
        sqlite3_bind_int(s, 1, i);
        sqlite3_bind_text(s, 2, body, size, SQLITE_STATIC);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    free(body);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static sqlite3_int64 wal_size_now(const char *path)
{
    char p[160];
    snprintf(p, sizeof p, "%s-wal", path);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void temp_db(char *path, size_t cap, char *dir, size_t dircap)
{
    snprintf(dir, dircap, "/tmp/brigade-gather-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, cap, "%s/t.db", dir);
}

static void remove_db(const char *dir)
{
    char p[300];
    const char *sfx[] = {"/t.db", "/t.db-wal", "/t.db-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", dir, sfx[i]);
        remove(p);
    }
    remove(dir);
}

/* A new database in a temp dir, its writer through the yield VFS, and
 * the tests' table t (id, body). */
static sqlite3 *open_test_table(char dir[64], char path[128], int cache_pages)
{
    temp_db(path, 128, dir, 64);
    sqlite3 *w = open_writer(path, cache_pages);
    assert_int_equal(sqlite3_exec(w, "CREATE TABLE t (id INTEGER PRIMARY KEY, body)", NULL, NULL, NULL), SQLITE_OK);
    return w;
}

/* A commit of ~300 pages reaches the WAL in a handful of writes (two a
 * page without gathering), a checkpoint of them the database likewise,
 * and a reader sees every byte. */
static void test_writes_gathered(void **state)
{
    (void)state;
    char dir[64], path[128];
    sqlite3 *w = open_test_table(dir, path, 2000);
    wal_writes = db_writes = 0;
    assert_int_equal(sqlite3_exec(w, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(insert_rows(w, 0, 600, 2000), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    int pages = (int)query_int(w, "PRAGMA page_count");
    assert_true(pages > 300);
    /* 300+ frames, ~1.3 MB: ten or so writes of 31 frames */
    assert_true(wal_writes > 0);
    assert_true(wal_writes <= pages / 20);
    /* the whole WAL into the database, then emptied: the reader below
     * reads the database file alone */
    wal_reads = 0;
    assert_int_equal(sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL), SQLITE_OK);
    assert_int_equal(wal_size_now(path), 0);   /* all copied (TRUNCATE gives up otherwise) */
    /* consecutive pages: runs of up to 31 written, and read ahead */
    assert_true(db_writes > 0);
    assert_true(db_writes <= pages / 20);
    assert_true(wal_reads > 0);
    assert_true(wal_reads <= pages / 20);

    sqlite3 *r = open_reader(path);
    assert_int_equal(query_int(r, "SELECT count(*) FROM t"), 600);
    assert_int_equal(query_int(r, "SELECT count(*) FROM t WHERE length(body) = 2000 AND"
                                  " substr(body, 1, 1) = char(97 + id % 26) AND substr(body, 2000, 1) = char(97 + id % 26)"),
                     600);
    check_integrity(r);
    sqlite3_close(r);
    sqlite3_close(w);
    remove_db(dir);
}

/* Commits seen at once by a reader on another connection, and synced
 * whole; a transaction still open (its pages spilled into the WAL by a
 * small cache, and read back from there) is not seen. */
static void test_reader_sees_each_commit(void **state)
{
    (void)state;
    char dir[64], path[128];
    sqlite3 *w = open_test_table(dir, path, 10);
    sqlite3 *r = open_reader(path);
    int rows = 0;
    for (int round = 0; round < 40; round++) {
        int n = 1 + (round * 7) % 23;
        assert_int_equal(sqlite3_exec(w, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(insert_rows(w, rows, n, 1500 + round * 37), SQLITE_OK);
        /* open: not seen; the writer reads its own spilled pages back */
        assert_int_equal(query_int(r, "SELECT count(*) FROM t"), rows);
        assert_int_equal(query_int(w, "SELECT count(*) FROM t WHERE substr(body, length(body), 1) = char(97 + id % 26)"),
                         rows + n);
        assert_int_equal(sqlite3_exec(w, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
        assert_true(wal_size_at_sync == wal_size_now(path));   /* the sync came after every frame */
        rows += n;
        assert_int_equal(query_int(r, "SELECT count(*) FROM t"), rows);
        assert_int_equal(query_int(r, "SELECT count(*) FROM t WHERE substr(body, length(body), 1) = char(97 + id % 26)"),
                         rows);
        if (round % 10 == 9) {   /* the checkpoint, between commits, as the writer runs it */
            assert_int_equal(sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL), SQLITE_OK);
            assert_int_equal(query_int(r, "SELECT count(*) FROM t"), rows);
        }
    }
    /* rewrite pages in place, then delete some, in one transaction */
    assert_int_equal(sqlite3_exec(w, "BEGIN IMMEDIATE; UPDATE t SET body = zeroblob(900) WHERE id % 3 = 0;"
                                     " DELETE FROM t WHERE id % 5 = 0; COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(query_int(r, "SELECT count(*) FROM t WHERE length(body) = 900"),
                     query_int(w, "SELECT count(*) FROM t WHERE id % 3 = 0"));
    check_integrity(r);
    sqlite3_close(r);
    sqlite3_close(w);
    /* and after a reopen, from the files alone */
    r = open_reader(path);
    check_integrity(r);
    assert_int_equal(query_int(r, "SELECT count(*) FROM t WHERE id % 5 = 0"), 0);
    sqlite3_close(r);
    remove_db(dir);
}

/* A checkpoint never copies bytes read ahead by an earlier one: the WAL
 * is rewritten from its start in between (same offsets, new pages; few
 * enough that one read ahead covers a whole checkpoint). */
static void test_read_ahead_never_stale(void **state)
{
    (void)state;
    char dir[64], path[128];
    sqlite3 *w = open_test_table(dir, path, 2000);
    assert_int_equal(sqlite3_exec(w, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(insert_rows(w, 0, 12, 2000), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL), SQLITE_OK);
    for (int round = 0; round < 3; round++) {
        /* the same pages again, each round another case */
        assert_int_equal(sqlite3_exec(w, round % 2 ? "UPDATE t SET body = lower(body)" : "UPDATE t SET body = upper(body)",
                                      NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_wal_checkpoint_v2(w, NULL, round == 1 ? SQLITE_CHECKPOINT_PASSIVE
                                                                       : SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL),
                         SQLITE_OK);
        sqlite3 *r = open_reader(path);
        assert_int_equal(query_int(r, round % 2 ? "SELECT count(*) FROM t WHERE substr(body, 1, 1) = char(97 + id % 26)"
                                                : "SELECT count(*) FROM t WHERE substr(body, 1, 1) = char(65 + id % 26)"),
                         12);
        check_integrity(r);
        sqlite3_close(r);
    }
    sqlite3_close(w);
    /* the database file alone, after the last checkpoint emptied the WAL */
    sqlite3 *r = open_reader(path);
    assert_int_equal(query_int(r, "SELECT count(*) FROM t WHERE substr(body, 1, 1) = char(65 + id % 26)"), 12);
    sqlite3_close(r);
    remove_db(dir);
}

/* A held WAL write that fails when it is sent fails the commit: the
 * rows are not there, and the next commit works. */
static void test_failed_held_write_fails_commit(void **state)
{
    (void)state;
    char dir[64], path[128];
    sqlite3 *w = open_test_table(dir, path, 2000);
    assert_int_equal(sqlite3_exec(w, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(insert_rows(w, 0, 5, 1000), SQLITE_OK);   /* a few frames: all held */
    fail_wal_writes = SQLITE_IOERR_WRITE;
    int rc = sqlite3_exec(w, "COMMIT", NULL, NULL, NULL);
    fail_wal_writes = 0;
    assert_int_not_equal(rc, SQLITE_OK);
    if (!sqlite3_get_autocommit(w)) sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL);
    sqlite3 *r = open_reader(path);
    assert_int_equal(query_int(r, "SELECT count(*) FROM t"), 0);
    assert_int_equal(sqlite3_exec(w, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(insert_rows(w, 10, 3, 1000), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(query_int(r, "SELECT count(*) FROM t"), 3);
    check_integrity(r);
    sqlite3_close(r);
    sqlite3_close(w);
    remove_db(dir);
}

int main(void)
{
    count_vfs_register();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_uses_yield_vfs),
        cmocka_unit_test(test_writes_gathered),
        cmocka_unit_test(test_reader_sees_each_commit),
        cmocka_unit_test(test_read_ahead_never_stale),
        cmocka_unit_test(test_failed_held_write_fails_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
