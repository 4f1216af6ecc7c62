/* store_internal.h — what the SQLite backend's files share, and nothing more
 * (the PostgreSQL backend's are in store_pg_internal.h; it uses the quota
 * and audit helpers declared here).
 *
 * The backend is split by concern: store_sqlite.c (lifetime, connections,
 * statement cache), store_writer.c (the single writer and group commit),
 * store_migrations.c (schema versions), and one file per kind of object
 * (tenants, users, keys, usage, sessions and messages, runs, memory), with
 * the statement shapes those share in store_util.c, the storage quotas in
 * store_quota.c and the memory search ranking in store_rank.c.
 * Nothing outside src/store/ includes this. */
#ifndef BRIGADE_STORE_INTERNAL_H
#define BRIGADE_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdint.h>

#include "store/store.h"
#include "util/log_limit.h"

#define STORE_STMT_CACHE 128
#define STORE_CTL_STMTS 12

/* WAL frames (pages) after which the writer copies the WAL into the
 * database: SQLite's own automatic checkpoint threshold, kept. */
#define STORE_WAL_CHECKPOINT_FRAMES 1000

/* One SQLite connection and its prepared statements. Statements are keyed by
 * the address of their SQL text (always a string literal), so the cache
 * lookup is a pointer comparison. */
typedef struct store_conn {
    sqlite3 *db;
    struct { const char *sql; sqlite3_stmt *stmt; } cache[STORE_STMT_CACHE];
    int ncache;
    struct store_conn *next_all;   /* the store's list of every connection */
    /* writer only: an operation erased data whose old page images must
     * leave the WAL after the commit (store_writer.c) */
    int scrub_wanted;
    /* writer only: the next trace row's seq is traces_seq + its span count
     * (store_traces.c); read from the table when traces_seq_known is 0,
     * which the writer sets again whenever a rollback may have undone rows */
    int64_t traces_seq;
    int traces_seq_known;
    /* writer only: what compresses trace packs, set up at the first pack
     * and kept (its LZ4 state takes clearing 16 KB to set up) */
    struct trace_pack_sealer *trace_sealer;
    /* writer only: frames in the WAL after the last commit (SQLite's WAL
     * hook, store_wal_noted); the writer checkpoints past
     * STORE_WAL_CHECKPOINT_FRAMES once the batch's callers are woken */
    int wal_frames;
    /* readers only: store_read_begin pairs open (0: each read its own) */
    int snapshot_depth;
    /* transaction control (BEGIN, SAVEPOINT, COMMIT, …) prepared once
     * (store_exec_prepared), apart from `cache` so it never crowds it */
    struct { const char *sql; sqlite3_stmt *stmt; } ctl[STORE_CTL_STMTS];
    int nctl;
} store_conn;

/* A write operation: runs on the writer thread inside its own savepoint.
 * Returning anything but STORE_OK rolls back only this operation. */
typedef store_status (*store_write_fn)(store_conn *c, void *arg);

typedef struct store_op {
    store_write_fn fn;
    void *arg;
    audit_rec *audit[STORE_AUDIT_ATTACH_MAX];          /* entries that ride on this act */
    const store_audit_chain *audit_chain[STORE_AUDIT_ATTACH_MAX];
    int n_audit;
    store_status status;
    int done;
    /* store_write_async: nobody waits; the writer calls done_fn after the
     * commit (on its own thread) and frees the op */
    void (*done_fn)(void *arg, store_status status);
    void *done_arg;
    int async;
    struct store_op *next;
} store_op;

struct store {
    char path[4096];
    uint64_t gen;                 /* unique per open store: keys thread-local readers */

    /* the writer */
    store_conn *wconn;
    pthread_t writer;
    pthread_mutex_t mu;           /* guards everything below */
    pthread_cond_t wake;          /* writer waits here for work */
    pthread_cond_t done;          /* callers wait here for their commit */
    store_op *ops_head, *ops_tail;
    struct usage_chunk *usage_head, *usage_tail;   /* queued usage rows (store_writer.c) */
    size_t usage_n;               /* rows in them */
    log_limit usage_drop_log;     /* "usage rows dropped" at most once a second (under mu) */
    struct usage_chunk *usage_spare;   /* emptied chunks kept for reuse */
    size_t usage_spare_n;
    int64_t usage_first_ms;       /* monotonic ms when the oldest queued row arrived */
    uint64_t usage_queued_seq;    /* rows ever queued */
    uint64_t usage_done_seq;      /* rows ever committed (or dropped on error) */
    _Atomic uint64_t usage_backlog; /* queued - done, read without mu (store_usage_backlog) */
    struct usage_shares *usage_shares; /* the same rows by tenant (usage_shares.h) */
    int flush_wanted;
    int stopping;
    size_t async_n;               /* store_write_async ops queued, not yet committed */
    size_t ops_eager;             /* queued ops that want their commit now */
    int lazy_pending;             /* a store_write_lazy op is queued ... */
    int64_t lazy_first_ms;        /* ... since this monotonic ms */

    /* readers: one connection per thread, all listed here so close can free them */
    pthread_mutex_t readers_mu;
    store_conn *readers;

    int schema_version;
    store_stats stats;            /* under mu */

    void (*usage_committed)(void *arg, const usage_rec *rows, size_t n);  /* set before serving */
    void *usage_committed_arg;

    store_quota_fn quota_fn;      /* set before serving, read-only after */
    void *quota_arg;

    struct pg_store *pg;          /* non-NULL: PostgreSQL answers instead (store_pg.h) */
};

/* The writer's VFS (store_yield_vfs.c): the default one, with a yield
 * point before every read, write and sync, and adjacent writes to the WAL
 * and the database gathered into one. store_yield_vfs() registers it
 * once and returns its name, or NULL (use the default) if it could not. */
#define STORE_YIELD_VFS "brigade-yield"
const char *store_yield_vfs(void);

/* store_sqlite.c */
store_conn  *store_conn_open(const char *path, int readonly, char *err, size_t errlen);
void         store_conn_close(store_conn *c);
/* The writer's WAL hook (sqlite3_wal_hook): notes c->wal_frames. */
int          store_wal_noted(void *arg, sqlite3 *db, const char *name, int frames);
store_conn  *store_reader(store *st);                    /* this thread's read connection */
sqlite3_stmt *store_stmt(store_conn *c, const char *sql); /* reset, bindings cleared; NULL on error */
/* Run a statement without rows (BEGIN, SAVEPOINT, COMMIT, …) prepared once
 * per connection, not parsed again at every call as sqlite3_exec does: a
 * batch's transaction control was ~18 000 instructions a statement. sql
 * keys the statement cache by its address: a string of static storage.
 * SQLITE_OK or the error (logged). */
int          store_exec_prepared(store_conn *c, const char *sql);
store_status store_sqlite_status(store_conn *c, int rc, const char *what);
void         store_bind_text(sqlite3_stmt *s, int idx, const char *v);  /* NULL or "" binds NULL? no: text */
void         store_col_copy(sqlite3_stmt *s, int col, char *dst, size_t dstlen);
int64_t      store_mono_ms(void);

/* store_writer.c */
int          store_writer_start(store *st, char *err, size_t errlen);
void         store_writer_stop(store *st);
store_status store_write(store *st, store_write_fn fn, void *arg);
/* store_write for data that may wait (traces): the op does not wake the
 * writer to commit at once; it rides with the next batch, or is committed
 * at the latest STORE_USAGE_FLUSH_MS / 2 after it was queued, as queued
 * usage rows are. The caller still waits for that commit. */
store_status store_write_lazy(store *st, store_write_fn fn, void *arg);
/* A write nobody waits for (never blocks on disk; safe on a loop thread):
 * fn runs in the writer's next batch, like store_write's, with the audit
 * entries armed on this thread riding on it (store_audit_attach); then
 * done(done_arg, status) is called on the writer thread, after the commit,
 * the callbacks in the order their writes were queued. `arg` must live
 * until then (done frees it). STORE_OK: queued, done will
 * be called; anything else (closing, STORE_ASYNC_QUEUE_MAX ops waiting):
 * not queued, done is not called. */
#define STORE_ASYNC_QUEUE_MAX 10000
store_status store_write_async(store *st, store_write_fn fn, void *arg,
                               void (*done)(void *arg, store_status status), void *done_arg);
/* store_write_async for what may wait a moment (a tool call's audit
 * entry): it does not wake the writer to commit at once; it rides with
 * the next batch (in queue order), or is committed at the latest
 * STORE_USAGE_FLUSH_MS / 2 after it was queued. */
store_status store_write_async_lazy(store *st, store_write_fn fn, void *arg,
                                    void (*done)(void *arg, store_status status), void *done_arg);
store_status store_usage_insert(store_conn *c, const usage_rec *u);
/* The queued and spare usage chunks, freed (at close). */
void         store_usage_chunks_free(store *st);
/* The audit entries armed on this thread for st's next write, handed over
 * (at most STORE_AUDIT_ATTACH_MAX); false: one could not be prepared and
 * the act must not run. Used by the PostgreSQL backend's writes. */
bool         store_audit_take_armed(store *st, audit_rec **e, const store_audit_chain **chain, int *n);

/* store_audit.c: append an entry inside the writer's transaction */
store_status store_audit_append_in(store_conn *c, audit_rec *e, const store_audit_chain *chain);
/* fill an entry's defaults; false if it cannot be appended */
bool         store_audit_prepare(audit_rec *e, const store_audit_chain *chain);

/* store_quota.c: the caller's quota (zeros: unlimited), and recording a
 * refusal for store_quota_refused (on the caller's thread, after the write
 * returned: the writer thread only fills a store_quota_refusal) */
void         store_quota_of(store *st, const scope *sc, store_quota *out);
store_status store_quota_record(store_status res, const store_quota_refusal *r);  /* returns res */
/* In a writer op: would `used` + `delta` pass `limit` (0 = unlimited)?
 * STORE_OK, or STORE_QUOTA / STORE_TOO_LARGE with *r filled. `single` is
 * the size of the one item being written (too large on its own > limit). */
store_status store_quota_check(const char *quota, int64_t limit, int64_t used, int64_t wanted,
                               int64_t single, store_quota_refusal *r);

/* store_migrations.c */
int store_migrate(store_conn *c, int *version_out, char *err, size_t errlen);
int store_migrations_latest(void);

/* store_sessions.c: what runs and user erasure share with sessions */
store_status store_user_alive(store_conn *c, const char *tenant_id, const char *user_id);
store_status store_session_owned(store_conn *c, const scope *sc, const char *session_id);
/* Validate m and append it to the session with the next seq; bumps the
 * session's message_count and updated_at. STORE_INVALID for a malformed
 * message — inside the caller's savepoint, so a group rolls back whole. */
store_status store_message_append(store_conn *c, const scope *sc, const char *session_id,
                                  const char *run_id, const message_rec *m, int64_t now,
                                  int64_t *seq_out);
/* The same for n messages in order (one seq lookup and one session
 * update for all of them: a run's step appends several). */
store_status store_messages_append(store_conn *c, const scope *sc, const char *session_id,
                                   const char *run_id, const message_rec *msgs, size_t n,
                                   int64_t now, int64_t *first_seq_out);

/* store_memory.c: the FTS5 MATCH expression for a plain-words query
 * (exposed for the unit tests). out holds STORE_FTS_EXPR_MAX bytes; returns
 * the number of words, 0 if there is nothing to search for. */
#define STORE_MEMORY_TERMS_MAX 16     /* words of a query that are searched */
#define STORE_MEMORY_TERM_MAX 128     /* bytes; longer "words" are dropped */
#define STORE_FTS_EXPR_MAX (STORE_MEMORY_TERMS_MAX * (2 * STORE_MEMORY_TERM_MAX + 6) + 1)
size_t store_memory_fts_query(const char *query, char *out);

/* store_rank.c: memory search ranked by the caller's own rows (BM25 with
 * statistics over the caller's matching entries only; see the file). */
typedef struct store_rank_row {
    int64_t  id, updated_at;
    uint32_t tf[STORE_MEMORY_TERMS_MAX][2];   /* per word: occurrences in key, in value */
    uint32_t len;                             /* key + value, in tokens */
    double   score;
} store_rank_row;
/* Register brigade_match_stats on a connection: 0, or -1. */
int  store_rank_register(sqlite3 *db);
/* The caller's entries matching `expr` (owner part + nwords words, as
 * store_memory_search builds it), best first. *out malloc'd (NULL if none). */
store_status store_rank_memory(store_conn *c, const scope *sc, const char *expr, size_t nwords,
                               store_rank_row **out, size_t *n);
/* The pure parts, for the unit tests: score rows (entries = the caller's
 * entry count), and sort best first (score, then newest, then highest id). */
void store_rank_score(store_rank_row *rows, size_t n, size_t nwords, int64_t entries);
void store_rank_sort(store_rank_row *rows, size_t n);

/* store_util.c: statement shapes every object file uses */

/* Bind a row's id and the scope's user and tenant at first, first+1,
 * first+2 — the "WHERE id = ? AND user_id = ? AND tenant_id = ?" that makes
 * another user's row indistinguishable from a missing one. */
void store_bind_owned(sqlite3_stmt *s, int first, const char *id, const scope *sc);
/* Step a bound existence query once and reset it: STORE_OK for a row,
 * STORE_NOT_FOUND for none, else the SQLite error (logged as what). */
store_status store_step_exists(store_conn *c, sqlite3_stmt *s, const char *what);
/* Step a bound statement that returns no rows (a write) and reset it:
 * STORE_OK when it ran to completion, else the SQLite error (a constraint
 * is STORE_CONFLICT; logged as what). */
store_status store_step_done(store_conn *c, sqlite3_stmt *s, const char *what);
/* Copy a nullable TEXT column into a fresh string (NULL for SQL NULL).
 * -1 only when the column has a value and there is no memory for it. */
int store_col_dup(sqlite3_stmt *s, int col, char **dst);

/* How store_collect reads one kind of record. */
typedef struct store_rows {
    size_t size;                                /* bytes of one record */
    int  (*read)(sqlite3_stmt *s, void *rec);   /* 0; -1 out of memory, rec holds nothing to free */
    void (*free)(void *arr, size_t n);          /* frees n records and arr; NULL: plain free(arr) */
    const char *what;                           /* names the query in the error log */
} store_rows;

/* Step a bound query to its end, reading each row into a fresh array. With
 * limit > 0 at most limit rows are read into an array of limit records
 * (non-NULL even when empty); limit 0 reads every row into a growing array
 * (NULL when empty). On error nothing is returned: *out NULL, *n 0. The
 * statement is always reset. */
store_status store_collect(store_conn *c, sqlite3_stmt *s, const store_rows *kind, size_t limit,
                           void **out, size_t *n);

/* store_approvals.c: a run that ends drops its wait and denies its
 * pending approvals (decided_by "run_ended") */
store_status store_run_close_waits(store_conn *c, const char *run_id, int64_t now);

/* row readers shared by files */
void store_read_user(sqlite3_stmt *s, user_rec *u);      /* columns as STORE_USER_COLS */
void store_read_key(sqlite3_stmt *s, key_rec *k);        /* columns as STORE_KEY_COLS */

#define STORE_USER_COLS "id, tenant_id, external_id, display_name, tier, disabled, " \
    "lim_rpm, lim_tpm, lim_max_concurrent_runs, lim_daily_budget_nusd, lim_monthly_budget_nusd, created_at"
#define STORE_KEY_COLS "id, tenant_id, user_id, kind, prefix, hash, created_at, revoked_at, " \
    "lim_rpm, lim_tpm, lim_daily_budget_nusd, lim_monthly_budget_nusd"

#endif
