/* store_pg_internal.h — what the PostgreSQL backend's files share: the
 * connection pool, the usage writer, and the helpers that run a query and
 * map its outcome to a store_status. Nothing outside src/store/ includes it.
 *
 * Threading (same contract as store.h): every function blocks and is
 * called from the thread pool or the CLI, never on a loop thread, except
 * store_usage_record, which only enqueues. A call borrows one connection of
 * a fixed pool for the length of the call; when all are busy it waits at
 * most PG_POOL_WAIT_MS and then fails (STORE_ERROR, logged) instead of
 * queueing without bound. Usage rows go to a writer thread with a
 * connection of its own that commits them in batches (group commit), so a
 * burst of usage never takes a pool connection from a request. */
#ifndef BRIGADE_STORE_PG_INTERNAL_H
#define BRIGADE_STORE_PG_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "store/store_pg.h"
#include "util/log_limit.h"

#define PG_POOL_MAX 256
#define PG_POOL_WAIT_MS 5000      /* longest wait for a free connection */
#define PG_USAGE_BATCH_MAX 500    /* rows in one INSERT of the usage writer */

/* A write nobody waits for (store_pg_write.c pg_write_async): run by the
 * usage writer thread, on its connection, in its own transaction. */
typedef struct pg_async {
    store_status (*fn)(PGconn *c, void *arg);
    void *arg;
    audit_rec *audit[STORE_AUDIT_ATTACH_MAX];
    const store_audit_chain *chain[STORE_AUDIT_ATTACH_MAX];
    int n_audit;
    void (*done)(void *arg, store_status status);
    void *done_arg;
    struct pg_async *next;
} pg_async;

struct pg_store {
    char *url;
    char instance[ID_MAX];         /* this process's id, on the runs it starts (migration 19) */

    /* the pool */
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_free;
    PGconn *conns[PG_POOL_MAX];
    int busy[PG_POOL_MAX];
    unsigned nconns;

    int schema_version;

    /* the usage writer: its own connection, rows queued under mu */
    PGconn *wconn;
    pthread_t writer;
    int writer_started;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    usage_rec *usage;
    size_t usage_n, usage_cap;
    log_limit usage_drop_log;     /* "usage rows dropped" at most once a second (under mu) */
    int64_t usage_first_ms;
    uint64_t usage_queued_seq, usage_done_seq;
    _Atomic uint64_t usage_backlog; /* queued - done, read without mu (store_usage_backlog) */
    struct usage_shares *usage_shares; /* the same rows by tenant (usage_shares.h) */
    int flush_wanted, stopping;
    store_stats stats;
    void (*usage_committed)(void *arg, const usage_rec *rows, size_t n);
    void *usage_committed_arg;
    pg_async *async_head, *async_tail;   /* under mu */
    size_t async_n;
};

/* Open one connection (client_encoding UTF8, UTC): NULL with err. */
PGconn *pg_connect(const char *url, char *err, size_t errlen);
/* Borrow a connection for one call (reconnecting a broken one), and give
 * it back. NULL when none frees up within PG_POOL_WAIT_MS or the server is
 * unreachable (logged). */
PGconn *pg_acquire(struct pg_store *p);
void    pg_release(struct pg_store *p, PGconn *c);
/* Is c usable? A connection the server closed (a restart) is re-established
 * here; false (logged) when the server cannot be reached. */
bool    pg_alive(PGconn *c);

/* Run a statement with text parameters (NULL = SQL NULL). Returns the
 * result when its status is PGRES_COMMAND_OK or PGRES_TUPLES_OK, else NULL
 * with *st set (a unique violation is STORE_CONFLICT, anything else
 * STORE_ERROR, logged with `what`). */
PGresult *pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                  store_status *st, const char *what);
/* A statement without rows: STORE_OK or as pg_exec. */
store_status pg_run(PGconn *c, const char *sql, int nparams, const char *const *params,
                    const char *what);
/* Column helpers: a copy bounded by dstlen ("" for NULL), and an integer. */
void    pg_copy(const PGresult *r, int row, int col, char *dst, size_t dstlen);
int64_t pg_i64(const PGresult *r, int row, int col);
/* One statement on a pool connection (a read): the result, or NULL with *st. */
PGresult *pg_read(struct pg_store *p, const char *sql, int n, const char *const *params,
                  store_status *st, const char *what);
/* An integer as a text parameter, in buf (returned). */
#define PG_I64_MAX 24
const char *pg_num(char buf[PG_I64_MAX], int64_t v);
/* Rows changed by a command result ("UPDATE 1" → 1). */
int64_t pg_changed(const PGresult *r);
/* Run a write statement and say how many rows it changed (-1 on error,
 * with *st set). */
int64_t pg_run_count(PGconn *c, const char *sql, int nparams, const char *const *params,
                     store_status *st, const char *what);

/* store_pg_write.c: one act in one transaction on a pool connection, with
 * the audit entries armed on this thread (store_audit_attach) appended in
 * it; fn returning anything but STORE_OK rolls everything back. */
typedef store_status (*pg_write_fn)(PGconn *c, void *arg);
store_status pg_write(store *st, pg_write_fn fn, void *arg);
/* The same without waiting (never blocks on the database; safe on a loop
 * thread): queued for the writer thread with this thread's armed audit
 * entries; done(done_arg, status) runs there after the commit. STORE_OK:
 * queued; else (closing, STORE_ASYNC_QUEUE_MAX waiting) nothing queued and
 * done is not called. */
store_status pg_write_async(store *st, pg_write_fn fn, void *arg,
                            void (*done)(void *arg, store_status status), void *done_arg);
/* One act in one transaction on c with its audit entries (the writer
 * thread's half of pg_write_async). */
store_status pg_txn(PGconn *c, pg_write_fn fn, void *arg, audit_rec **audit,
                    const store_audit_chain **chain, int n_audit);

/* store_pg_sessions.c: a run that ends drops its wait and denies its
 * pending approvals (decided_by "run_ended") */
store_status pg_run_close_waits(PGconn *c, const char *run_id, int64_t now);

/* store_pg_migrations.c: apply pending migrations under an advisory lock
 * (several instances starting at once apply each migration once). */
int pg_migrate(PGconn *c, int *version_out, char *err, size_t errlen);

/* store_pg_usage.c: the writer thread */
int  pg_usage_writer_start(struct pg_store *p, char *err, size_t errlen);
void pg_usage_writer_stop(struct pg_store *p);

#endif
