/* store_sqlite.c — the SQLite backend's lifetime and connections.
 *
 * Layout of the backend: one writer connection owned by the writer thread
 * (store_writer.c) and one read-only connection per reading thread, opened
 * on first use. Under WAL, readers never block the writer and the writer
 * never blocks readers, so reads from the thread pool run in parallel while
 * the writer batches commits. Each connection caches its prepared
 * statements, so the hot path does no SQL parsing. */
#include "store/store_internal.h"
#include "store/usage_shares.h"
#include "store/store_pg.h"
#include "store/trace_pack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define STORE_BUSY_TIMEOUT_MS 5000

static atomic_uint_fast64_t store_next_gen = 1;

int64_t store_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- connections ---- */

store_conn *store_conn_open(const char *path, int readonly, char *err, size_t errlen)
{
    store_conn *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, errlen, "out of memory"); return NULL; }
    int flags = SQLITE_OPEN_NOMUTEX |   /* one thread uses a connection at a time */
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    /* The writer's files yield the core between I/O calls (store_yield_vfs.c). */
    if (sqlite3_open_v2(path, &c->db, flags, readonly ? NULL : store_yield_vfs()) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : "out of memory");
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    sqlite3_busy_timeout(c->db, STORE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(c->db, 1);
    const char *pragmas = readonly
        ? "PRAGMA query_only = ON;"
        /* synchronous=FULL, not NORMAL: in WAL mode NORMAL skips the fsync
         * at commit, so a power loss can undo transactions that were already
         * acknowledged. the design (docs/architecture.md) promises that what the API acknowledged is
         * durable before the response; group commit pays for the fsync once
         * per batch rather than once per request. */
        : "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
          /* The writer inserts into indexes keyed by random ids (spans by
           * trace id, …), which touch pages all over the file: a page
           * cache of 32 MiB rather than SQLite's 2 MiB default keeps them
           * in memory instead of re-reading them for every batch. */
          "PRAGMA cache_size = -32768;"
          /* Erased rows must not linger in free pages or in the unused
           * part of a page: deleted content is overwritten with zeros.
           * Only the writer deletes, so only it needs this. */
          "PRAGMA secure_delete = ON;";
    /* memory search ranks with it (store_rank.c); readers search */
    if (readonly && store_rank_register(c->db) != 0) {
        snprintf(err, errlen, "cannot register the memory ranking on %s", path);
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    char *emsg = NULL;
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, &emsg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot configure %s: %s", path, emsg ? emsg : "?");
        sqlite3_free(emsg);
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    return c;
}

/* SQLite's WAL hook on the writer's connection, after each commit: note
 * the WAL's size, do not checkpoint. SQLite's automatic checkpoint ran
 * inside COMMIT, so the batch that crossed its threshold — a run's end a
 * client waits for — also waited for a thousand pages to be copied into
 * the database and synced; the writer now does that once the batch's
 * callers are woken (store_writer_checkpoint). */
int store_wal_noted(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    ((store_conn *)arg)->wal_frames = frames;
    return SQLITE_OK;
}

void store_conn_close(store_conn *c)
{
    if (!c) return;
    for (int i = 0; i < c->ncache; i++) sqlite3_finalize(c->cache[i].stmt);
    for (int i = 0; i < c->nctl; i++) sqlite3_finalize(c->ctl[i].stmt);
    sqlite3_close(c->db);
    if (c->trace_sealer) trace_pack_sealer_free(c->trace_sealer);
    free(c->trace_sealer);
    free(c);
}

sqlite3_stmt *store_stmt(store_conn *c, const char *sql)
{
    for (int i = 0; i < c->ncache; i++) {
        if (c->cache[i].sql == sql) {
            sqlite3_stmt *s = c->cache[i].stmt;
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            return s;
        }
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
        log_error("store: prepare failed: %s", sqlite3_errmsg(c->db));
        return NULL;
    }
    if (c->ncache < STORE_STMT_CACHE) {
        c->cache[c->ncache].sql = sql;
        c->cache[c->ncache].stmt = s;
        c->ncache++;
    } else {
        /* The cache is sized for every statement the backend has; reaching
         * this means a new statement was added without growing it. */
        log_error("store: statement cache full (%d)", STORE_STMT_CACHE);
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

store_status store_sqlite_status(store_conn *c, int rc, const char *what)
{
    if ((rc & 0xff) == SQLITE_CONSTRAINT) return STORE_CONFLICT;
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return STORE_OK;
    log_error("store: %s: %s (%d)", what, sqlite3_errmsg(c->db), rc);
    return STORE_ERROR;
}

void store_bind_text(sqlite3_stmt *s, int idx, const char *v)
{
    /* SQLITE_STATIC is safe: every caller keeps v alive until the statement
     * is reset, and store_stmt resets and clears before each use. */
    if (v) sqlite3_bind_text(s, idx, v, -1, SQLITE_STATIC);
    else sqlite3_bind_null(s, idx);
}

void store_col_copy(sqlite3_stmt *s, int col, char *dst, size_t dstlen)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    if (!v) { dst[0] = '\0'; return; }
    snprintf(dst, dstlen, "%s", (const char *)v);
}

/* ---- per-thread readers ----
 *
 * A thread may read from several stores (tests open many), so the
 * thread-local state is a short list keyed by the store's generation number,
 * which is never reused; the list nodes belong to the thread (freed at
 * thread exit), the connections belong to the store (freed at close). */

typedef struct store_tls_node {
    uint64_t gen;
    store_conn *conn;
    struct store_tls_node *next;
} store_tls_node;

static pthread_key_t store_tls_key;
static pthread_once_t store_tls_once = PTHREAD_ONCE_INIT;

static void store_tls_free(void *p)
{
    store_tls_node *n = p;
    while (n) {
        store_tls_node *next = n->next;
        free(n);
        n = next;
    }
}

static void store_tls_init(void) { pthread_key_create(&store_tls_key, store_tls_free); }

store_conn *store_reader(store *st)
{
    pthread_once(&store_tls_once, store_tls_init);
    store_tls_node *head = pthread_getspecific(store_tls_key);
    for (store_tls_node *n = head; n; n = n->next)
        if (n->gen == st->gen) return n->conn;

    char err[256];
    store_conn *c = store_conn_open(st->path, 1, err, sizeof err);
    if (!c) { log_error("store: %s", err); return NULL; }
    store_tls_node *n = malloc(sizeof *n);
    if (!n) { store_conn_close(c); return NULL; }
    n->gen = st->gen;
    n->conn = c;
    n->next = head;
    pthread_setspecific(store_tls_key, n);
    pthread_mutex_lock(&st->readers_mu);
    c->next_all = st->readers;
    st->readers = c;
    pthread_mutex_unlock(&st->readers_mu);
    return c;
}

int store_exec_prepared(store_conn *c, const char *sql)
{
    sqlite3_stmt *s = NULL;
    for (int i = 0; i < c->nctl && !s; i++)
        if (c->ctl[i].sql == sql) s = c->ctl[i].stmt;
    if (!s && c->nctl < STORE_CTL_STMTS &&
        sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) == SQLITE_OK) {
        c->ctl[c->nctl].sql = sql;
        c->ctl[c->nctl].stmt = s;
        c->nctl++;
    }
    if (!s) {                  /* no room (a new statement without a slot): parse it */
        int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK) log_error("store: %s: %s", sql, sqlite3_errmsg(c->db));
        return rc;
    }
    int rc = sqlite3_step(s);
    sqlite3_reset(s);          /* nothing of it stays active: a COMMIT after it may proceed */
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) return SQLITE_OK;
    log_error("store: %s: %s", sql, sqlite3_errmsg(c->db));
    return rc;
}

static const char store_sql_begin[] = "BEGIN", store_sql_commit[] = "COMMIT",
                  store_sql_rollback[] = "ROLLBACK";

void store_read_begin(store *st)
{
    STORE_PG_DISPATCH_VOID(st, (void)0);
    store_conn *c = store_reader(st);
    if (!c) return;
    /* a failed BEGIN leaves each read its own transaction, as without */
    if (c->snapshot_depth++ == 0 && store_exec_prepared(c, store_sql_begin) != SQLITE_OK)
        c->snapshot_depth = 0;
}

void store_read_end(store *st)
{
    STORE_PG_DISPATCH_VOID(st, (void)0);
    store_conn *c = store_reader(st);
    if (!c || c->snapshot_depth == 0) return;
    if (--c->snapshot_depth == 0 && store_exec_prepared(c, store_sql_commit) != SQLITE_OK)
        store_exec_prepared(c, store_sql_rollback);
}

/* ---- lifetime ---- */

static int store_mkdir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) {
        struct stat sb;
        if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return 0;
        snprintf(err, errlen, "%s exists and is not a directory", dir);
        return -1;
    }
    snprintf(err, errlen, "cannot create data directory %s: %s", dir, strerror(errno));
    return -1;
}

/* The database holds every tenant's data: it is created 0600 by us, not
 * by SQLite (which would use 0644 less the umask), and an existing one, or
 * a -wal / -shm left from before, is narrowed to 0600. SQLite gives the
 * -wal and -shm files it creates later the database file's mode. */
static int store_private_files(const char *db_path, char *err, size_t errlen)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s%s", db_path, suffixes[i]);
        int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (i == 0 ? O_CREAT : 0);
        int fd = open(path, flags, 0600);
        if (fd < 0) {
            if (i > 0 && errno == ENOENT) continue;
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            return -1;
        }
        struct stat sb;
        int rc = fstat(fd, &sb);
        if (rc == 0 && !S_ISREG(sb.st_mode)) {
            close(fd);
            snprintf(err, errlen, "%s is not a regular file", path);
            return -1;
        }
        if (rc != 0 || ((sb.st_mode & 0777) != 0600 && fchmod(fd, 0600) != 0)) {
            snprintf(err, errlen, "cannot make %s private (chmod 600 %s): %s", path, path,
                     strerror(errno));
            close(fd);
            return -1;
        }
        close(fd);
    }
    return 0;
}

store *store_open(const char *data_dir, char *err, size_t errlen)
{
    if (!data_dir || !*data_dir) { snprintf(err, errlen, "no data directory"); return NULL; }
    if (store_mkdir(data_dir, err, errlen) != 0) return NULL;

    store *st = calloc(1, sizeof *st);
    if (!st) { snprintf(err, errlen, "out of memory"); return NULL; }
    if ((size_t)snprintf(st->path, sizeof st->path, "%s/brigade.db", data_dir) >= sizeof st->path) {
        snprintf(err, errlen, "data directory path too long");
        free(st);
        return NULL;
    }
    if (store_private_files(st->path, err, errlen) != 0) {
        free(st);
        return NULL;
    }
    st->gen = atomic_fetch_add(&store_next_gen, 1);
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->readers_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* usage flush deadlines */
    pthread_cond_init(&st->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&st->done, NULL);
    st->usage_shares = usage_shares_new();

    st->wconn = store_conn_open(st->path, 0, err, errlen);
    if (!st->wconn) goto fail;
    if (store_migrate(st->wconn, &st->schema_version, err, errlen) != 0) goto fail;
    /* The writer checkpoints on its own, after a batch's callers are woken
     * (store_writer.c); this hook replaces SQLite's automatic checkpoint. */
    sqlite3_wal_hook(st->wconn->db, store_wal_noted, st->wconn);
    if (store_writer_start(st, err, errlen) != 0) goto fail;
    return st;

fail:
    store_conn_close(st->wconn);
    usage_shares_free(st->usage_shares);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->readers_mu);
    pthread_cond_destroy(&st->wake);
    pthread_cond_destroy(&st->done);
    free(st);
    return NULL;
}

void store_close(store *st)
{
    if (!st) return;
    STORE_PG_DISPATCH_VOID(st, store_pg_close_store(st));
    store_writer_stop(st);          /* commits queued usage first */
    store_conn *c = st->readers;
    while (c) {
        store_conn *next = c->next_all;
        store_conn_close(c);
        c = next;
    }
    /* Everything into the database file and the WAL emptied, so a clean
     * stop leaves one file to copy, not a WAL beside a stale .db. */
    if (st->wconn && sqlite3_wal_checkpoint_v2(st->wconn->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL,
                                               NULL) != SQLITE_OK)
        log_warn("store: the WAL could not be emptied at close: %s", sqlite3_errmsg(st->wconn->db));
    store_conn_close(st->wconn);
    /* This thread's list node for the store is now stale; drop it so a long
     * test process does not accumulate them. Other threads' nodes are keyed
     * by a generation that never returns, and are freed at their exit. */
    pthread_once(&store_tls_once, store_tls_init);
    store_tls_node *head = pthread_getspecific(store_tls_key), *prev = NULL;
    for (store_tls_node *n = head; n; prev = n, n = n->next) {
        if (n->gen != st->gen) continue;
        if (prev) prev->next = n->next; else head = n->next;
        free(n);
        break;
    }
    pthread_setspecific(store_tls_key, head);
    store_usage_chunks_free(st);
    usage_shares_free(st->usage_shares);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->readers_mu);
    pthread_cond_destroy(&st->wake);
    pthread_cond_destroy(&st->done);
    free(st);
}

bool store_ping(store *st)
{
    STORE_PG_DISPATCH(st, store_pg_ping(store_pg_of(st)));
    store_conn *c = store_reader(st);
    if (!c) return false;
    sqlite3_stmt *s = store_stmt(c, "SELECT count(*) FROM tenants");
    if (!s) return false;
    bool ok = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_reset(s);
    return ok;
}

int store_schema_version(store *st) { return st->schema_version; }

store_status store_scrub_freed(store *st)
{
    STORE_PG_DISPATCH(st, store_pg_scrub_freed(store_pg_of(st)));
    /* A connection of its own: VACUUM cannot run inside the writer's
     * transactions. secure_delete zeroes what VACUUM frees; the TRUNCATE
     * checkpoint copies the rewritten pages home and cuts the log to zero
     * bytes, so the old page images do not linger in the -wal file. */
    char err[256];
    store_conn *c = store_conn_open(st->path, 0, err, sizeof err);
    if (!c) {
        log_error("store: scrub: %s", err);
        return STORE_ERROR;
    }
    char *emsg = NULL;
    int rc = sqlite3_exec(c->db, "PRAGMA secure_delete = ON; VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
                          NULL, NULL, &emsg);
    if (rc != SQLITE_OK) log_error("store: scrub: %s", emsg ? emsg : sqlite3_errmsg(c->db));
    sqlite3_free(emsg);
    store_conn_close(c);
    return rc == SQLITE_OK ? STORE_OK : STORE_ERROR;
}

const char *store_status_text(store_status s)
{
    switch (s) {
    case STORE_OK: return "ok";
    case STORE_NOT_FOUND: return "not found";
    case STORE_CONFLICT: return "conflict";
    case STORE_FORBIDDEN: return "forbidden";
    case STORE_INVALID: return "invalid argument";
    case STORE_ERROR: return "storage error";
    case STORE_QUOTA: return "storage quota reached";
    case STORE_TOO_LARGE: return "larger than the storage quota";
    }
    return "unknown";
}
