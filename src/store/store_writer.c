/* store_writer.c — the single writer thread and group commit.
 *
 * SQLite allows one writer at a time, and each commit costs an fsync
 * (synchronous=FULL). Rather than have every request thread fight for the
 * write lock and pay its own fsync, callers hand their write to one thread
 * and sleep. The writer takes everything queued, runs it in ONE transaction
 * (BEGIN IMMEDIATE … COMMIT), each operation in its own SAVEPOINT so a
 * failing operation (say a unique-constraint conflict) is rolled back alone,
 * then wakes every caller with its own status. Under load, N concurrent
 * writes cost one fsync instead of N.
 *
 * Usage rows are not waited for: store_usage_record appends to a queue and
 * returns; the writer commits them with the next batch, or on its own at
 * the latest STORE_USAGE_FLUSH_MS after the oldest queued row arrived. */
#include "store/store_internal.h"
#include "store/usage_shares.h"
#include "store/store_pg.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/thread_prio.h"

/* Bound on queued-but-uncommitted usage rows; beyond it rows are dropped and
 * logged rather than growing memory without limit while the disk is stuck. */
#define STORE_USAGE_QUEUE_MAX 100000
/* Usage rows waiting (this batch's included) past which the writer stops
 * yielding its core between rows: about an eighth of a second of a
 * saturated two-core gateway's calls, and six times a 100 ms batch at c=1
 * (~4 000 calls a second), whose tail the yields are for. A writer that
 * also stores every request's trace spent 23 % of its samples in the
 * scheduler at saturation, with a backlog under the old 10 000
 * (docs/benchmarks.md, session 9). */
#define STORE_WRITER_HURRY_ROWS 2500

/* Queued usage rows live in fixed chunks, not one array doubled by
 * realloc: under load a batch held ~20,000 rows (10 MB), and growing that
 * array copied it again and again and touched fresh pages on the loop
 * thread, then the writer freed it all (perf at c=64: page faults and
 * memmove about 4 % of the loop). A chunk stays under malloc's mmap
 * threshold, and emptied chunks are kept for the next rows, up to
 * STORE_USAGE_CHUNKS_KEPT (about 1 MB). */
#define STORE_USAGE_CHUNK_ROWS 112
#define STORE_USAGE_CHUNKS_KEPT 16

typedef struct usage_chunk {
    struct usage_chunk *next;
    size_t n;
    usage_rec rows[STORE_USAGE_CHUNK_ROWS];
} usage_chunk;

/* Give emptied chunks back (under st->mu): kept up to the bound, freed past it. */
static void store_usage_chunks_recycle(store *st, usage_chunk *list)
{
    while (list) {
        usage_chunk *next = list->next;
        if (st->usage_spare_n < STORE_USAGE_CHUNKS_KEPT) {
            list->next = st->usage_spare;
            st->usage_spare = list;
            st->usage_spare_n++;
        } else {
            free(list);
        }
        list = next;
    }
}

void store_usage_chunks_free(store *st)
{
    for (usage_chunk *c = st->usage_head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    for (usage_chunk *c = st->usage_spare, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    st->usage_head = st->usage_tail = st->usage_spare = NULL;
    st->usage_n = st->usage_spare_n = 0;
}

store_status store_usage_insert(store_conn *c, const usage_rec *u)
{
    static const char sql[] =
        "INSERT INTO usage (ts, tenant_id, user_id, key_id, model, request_id,"
        " input_tokens, output_tokens, cost_nusd, status, deployment, reservation)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)";
    sqlite3_stmt *s = store_stmt(c, sql);
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, u->ts);
    store_bind_text(s, 2, u->tenant_id);
    store_bind_text(s, 3, u->user_id);
    store_bind_text(s, 4, u->key_id);
    store_bind_text(s, 5, u->model);
    store_bind_text(s, 6, u->request_id);
    sqlite3_bind_int64(s, 7, u->input_tokens);
    sqlite3_bind_int64(s, 8, u->output_tokens);
    sqlite3_bind_int64(s, 9, u->cost_nusd);
    sqlite3_bind_int(s, 10, u->status);
    store_bind_text(s, 11, u->deployment);
    sqlite3_bind_int64(s, 12, (int64_t)u->reservation_id);   /* ids are < 2^63 (reserve_journal.c) */
    return store_step_done(c, s, "insert usage");
}

/* After an erasure has committed: copy the WAL into the database file and
 * truncate it to nothing, so the erased rows' older page images (and the
 * zeroed pages secure_delete left) do not wait in the WAL for the next
 * automatic checkpoint. TRUNCATE lets readers go on; it waits at most the
 * busy timeout for readers of an older snapshot to finish, and if one still
 * holds on, the scrub is retried after the next batch. */
static void store_writer_scrub(store_conn *c)
{
    int frames = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &frames, &copied);
    if (rc == SQLITE_OK) {
        c->scrub_wanted = 0;
        return;
    }
    log_warn("store: the WAL could not be emptied after an erasure (%s); retrying after the "
             "next write", sqlite3_errmsg(c->db));
}

/* A batch's transaction control, prepared once per connection
 * (store_exec_prepared: these arrays' addresses name the statements). */
static const char sql_begin[] = "BEGIN IMMEDIATE", sql_commit[] = "COMMIT", sql_rollback[] = "ROLLBACK",
                  sql_op_begin[] = "SAVEPOINT op", sql_op_undo[] = "ROLLBACK TO op",
                  sql_op_end[] = "RELEASE op", sql_usage_begin[] = "SAVEPOINT usage",
                  sql_usage_undo[] = "ROLLBACK TO usage", sql_usage_end[] = "RELEASE usage";

/* Run one batch. Returns with every op's status set. */
static void store_writer_batch(store *st, store_op *ops, usage_chunk *usage, size_t usage_n)
{
    store_conn *c = st->wconn;
    if (store_exec_prepared(c, sql_begin) != SQLITE_OK) {
        for (store_op *o = ops; o; o = o->next) o->status = STORE_ERROR;
        if (usage_n) log_error("store: dropped %zu usage rows (cannot begin)", usage_n);
        return;
    }
    for (store_op *o = ops; o; o = o->next) {
        if (store_exec_prepared(c, sql_op_begin) != SQLITE_OK) { o->status = STORE_ERROR; continue; }
        o->status = o->fn(c, o->arg);
        thread_background_yield();
        /* The act's audit entries, in its savepoint: both or neither. */
        for (int i = 0; o->status == STORE_OK && i < o->n_audit; i++) {
            o->status = store_audit_append_in(c, o->audit[i], o->audit_chain[i]);
            if (o->status != STORE_OK)
                log_error("store: the audit entry of an act could not be written: the act is "
                          "undone");
        }
        if (o->status != STORE_OK) {
            store_exec_prepared(c, sql_op_undo);
            c->traces_seq_known = 0;   /* the op may have written trace rows */
        }
        store_exec_prepared(c, sql_op_end);
    }
    bool usage_ok = false;
    if (usage_n && store_exec_prepared(c, sql_usage_begin) == SQLITE_OK) {
        bool failed = false;
        for (usage_chunk *k = usage; k && !failed; k = k->next)
            for (size_t i = 0; i < k->n; i++) {
                if (store_usage_insert(c, &k->rows[i]) != STORE_OK) {
                    failed = true;
                    break;
                }
                thread_background_yield();   /* a batch may hold thousands */
            }
        if (failed) {
            log_error("store: dropped %zu usage rows (insert failed)", usage_n);
            store_exec_prepared(c, sql_usage_undo);
        } else {
            usage_ok = true;
        }
        store_exec_prepared(c, sql_usage_end);
    }
    /* An I/O error can make SQLite roll the whole transaction back on its
     * own; then nothing of this batch is on disk, whatever the ops said. */
    int lost = sqlite3_get_autocommit(c->db);
    bool committed = true;
    if (lost || store_exec_prepared(c, sql_commit) != SQLITE_OK) {
        if (!lost) store_exec_prepared(c, sql_rollback);
        c->traces_seq_known = 0;
        for (store_op *o = ops; o; o = o->next) o->status = STORE_ERROR;
        if (usage_n) log_error("store: dropped %zu usage rows (commit failed)", usage_n);
        committed = false;
    }
    for (store_op *o = ops; o; o = o->next)
        for (int i = 0; i < o->n_audit; i++) o->audit[i]->written = committed && o->status == STORE_OK;
    /* Rows now durable: their reservations may close. Rows that were
     * dropped keep theirs open, so a restart charges them. */
    if (committed && usage_ok && usage_n && st->usage_committed)
        for (usage_chunk *k = usage; k; k = k->next)
            st->usage_committed(st->usage_committed_arg, k->rows, k->n);
    /* before the callers wake: an erasure is answered once it is scrubbed */
    if (c->scrub_wanted) store_writer_scrub(c);
}

/* Copy the WAL into the database once it holds STORE_WAL_CHECKPOINT_FRAMES
 * pages (SQLite's own threshold), now that the batch that grew it has its
 * callers woken: it is no longer in the time a client waits for an
 * acknowledged write (store_wal_noted). PASSIVE, as SQLite's automatic
 * checkpoint: readers are never waited for; what they still read stays in
 * the WAL for a later one. Without the mutex: the loops queue meanwhile. */
static void store_writer_checkpoint(store *st)
{
    store_conn *c = st->wconn;
    if (!c || c->wal_frames < STORE_WAL_CHECKPOINT_FRAMES) return;
    c->wal_frames = 0;   /* the next commit says how big the WAL is then */
    pthread_mutex_unlock(&st->mu);
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_warn("store: WAL checkpoint failed: %s", sqlite3_errmsg(c->db));
    pthread_mutex_lock(&st->mu);
}

static void *store_writer_main(void *arg)
{
    store *st = arg;
    pthread_setname_np(pthread_self(), "writer");   /* top -H (docs/architecture.md, Threads) */
    /* Not niced: what it writes cannot be dropped, and a niced writer
     * fell behind saturated loops until calls were shed
     * (util/thread_prio.h). Its bursts yield the core between rows instead
     * (thread_background_yield). */
    pthread_mutex_lock(&st->mu);
    for (;;) {
        /* Commit now for an op someone waits on; otherwise wait for the
         * oldest queued usage row or lazy op to be STORE_USAGE_FLUSH_MS / 2
         * old (half the bound: the other half is for the commit itself).
         * Every commit costs an fsync and rewrites the pages it touched
         * that are not full yet: a tracer flush committed on its own was
         * most of the commits at load (docs/benchmarks.md). */
        while (!st->ops_eager && !st->stopping) {
            int64_t first = INT64_MAX;
            if (st->usage_n) first = st->usage_first_ms;
            if (st->lazy_pending && st->lazy_first_ms < first) first = st->lazy_first_ms;
            if (first == INT64_MAX) {
                pthread_cond_wait(&st->wake, &st->mu);
                continue;
            }
            int64_t deadline = first + STORE_USAGE_FLUSH_MS / 2;
            if (st->flush_wanted || store_mono_ms() >= deadline) break;
            struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
            pthread_cond_timedwait(&st->wake, &st->mu, &ts);
        }
        if (st->stopping && !st->ops_head && !st->usage_n) break;

        store_op *ops = st->ops_head;
        st->ops_head = st->ops_tail = NULL;
        st->ops_eager = 0;
        st->lazy_pending = 0;
        /* Far behind: stop offering the core between rows until caught up
         * (util/thread_prio.h, thread_background_hurry). */
        thread_background_hurry(atomic_load_explicit(&st->usage_backlog, memory_order_relaxed) >=
                                STORE_WRITER_HURRY_ROWS);
        usage_chunk *usage = st->usage_head;
        size_t usage_n = st->usage_n;
        int64_t usage_first_ms = st->usage_first_ms;
        uint64_t seq = st->usage_queued_seq;
        st->usage_head = st->usage_tail = NULL;
        st->usage_n = 0;
        st->flush_wanted = 0;
        pthread_mutex_unlock(&st->mu);

        store_writer_batch(st, ops, usage, usage_n);
        for (usage_chunk *k = usage; k; k = k->next) usage_shares_settle(st->usage_shares, k->rows, k->n);

        pthread_mutex_lock(&st->mu);
        store_usage_chunks_recycle(st, usage);
        for (store_op *o = ops; o; o = o->next) st->stats.ops++;
        /* The async ops, kept in queue order (appended at a tail) so their
         * callbacks run in the order the writes were queued. */
        store_op *async_ops = NULL, **async_tail = &async_ops;
        for (store_op *o = ops; o;) {
            store_op *next = o->next;   /* o lives on its caller's stack: read first */
            if (o->async) {
                o->next = NULL;
                *async_tail = o;
                async_tail = &o->next;
                st->async_n--;
            } else {
                o->done = 1;
            }
            o = next;
        }
        st->usage_done_seq = seq;
        atomic_fetch_sub_explicit(&st->usage_backlog, usage_n, memory_order_relaxed);
        st->stats.commits++;
        st->stats.usage_rows += usage_n;
        if (usage_n) store_stats_usage_wait(&st->stats, usage_first_ms, store_mono_ms());
        uint64_t dropped = 0;
        if (log_limit_flush(&st->usage_drop_log, &dropped))
            log_error("store: %llu more usage row(s) dropped (queue full); their reservations stay "
                      "open in the journal and are charged at the next start",
                      (unsigned long long)dropped);
        pthread_cond_broadcast(&st->done);
        if (async_ops) {
            /* outside the mutex: a callback may queue the next write */
            pthread_mutex_unlock(&st->mu);
            while (async_ops) {
                store_op *next = async_ops->next;
                if (async_ops->done_fn) async_ops->done_fn(async_ops->done_arg, async_ops->status);
                free(async_ops);
                async_ops = next;
            }
            pthread_mutex_lock(&st->mu);
        }
        store_writer_checkpoint(st);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

int store_writer_start(store *st, char *err, size_t errlen)
{
    int rc = pthread_create(&st->writer, NULL, store_writer_main, st);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the store writer: %s", strerror(rc));
        return -1;
    }
    return 0;
}

void store_writer_stop(store *st)
{
    pthread_mutex_lock(&st->mu);
    st->stopping = 1;
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->writer, NULL);
}

/* The audit entries armed on this thread for its next write (the act). */
static _Thread_local struct {
    store *st;
    int n;
    audit_rec *e[STORE_AUDIT_ATTACH_MAX];
    const store_audit_chain *chain[STORE_AUDIT_ATTACH_MAX];
} audit_armed;

void store_audit_attach(store *st, audit_rec *e, const store_audit_chain *chain)
{
    if (audit_armed.st != st) {
        audit_armed.st = st;
        audit_armed.n = 0;
    }
    e->written = false;
    if (!store_audit_prepare(e, chain) || audit_armed.n == STORE_AUDIT_ATTACH_MAX) {
        /* not armed: the act will refuse to run without it (store_write) */
        log_error("store: an audit entry could not be attached to its act");
        audit_armed.n = -1;
        return;
    }
    if (audit_armed.n < 0) return;
    audit_armed.e[audit_armed.n] = e;
    audit_armed.chain[audit_armed.n] = chain;
    audit_armed.n++;
}

void store_audit_detach(store *st)
{
    if (audit_armed.st == st) {
        audit_armed.st = NULL;
        audit_armed.n = 0;
    }
}

/* The entries armed on this thread ride on op; false: one could not be
 * prepared, and the act must not be done at all. */
static bool store_op_take_armed(store *st, store_op *op)
{
    if (audit_armed.st != st) return true;
    bool ok = audit_armed.n >= 0;
    op->n_audit = ok ? audit_armed.n : 0;
    for (int i = 0; i < op->n_audit; i++) {
        op->audit[i] = audit_armed.e[i];
        op->audit_chain[i] = audit_armed.chain[i];
    }
    audit_armed.st = NULL;              /* the entries ride on this one write only */
    audit_armed.n = 0;
    return ok;
}

static store_status store_write_async_queue(store *st, store_write_fn fn, void *arg,
                                            void (*done)(void *arg, store_status status),
                                            void *done_arg, bool lazy)
{
    store_op *op = calloc(1, sizeof *op);
    if (!op) {
        store_audit_detach(st);
        return STORE_ERROR;
    }
    *op = (store_op){.fn = fn, .arg = arg, .status = STORE_ERROR, .async = 1,
                     .done_fn = done, .done_arg = done_arg};
    if (!store_op_take_armed(st, op)) {
        free(op);
        return STORE_ERROR;
    }
    pthread_mutex_lock(&st->mu);
    if (st->stopping || st->async_n >= STORE_ASYNC_QUEUE_MAX) {
        int closing = st->stopping;
        pthread_mutex_unlock(&st->mu);
        free(op);
        log_error("store: a write was dropped (%s)", closing ? "closing" : "queue full");
        return STORE_ERROR;
    }
    st->async_n++;
    if (st->ops_tail) st->ops_tail->next = op; else st->ops_head = op;
    st->ops_tail = op;
    if (!lazy) {
        st->ops_eager++;
    } else if (!st->lazy_pending) {
        st->lazy_pending = 1;
        st->lazy_first_ms = store_mono_ms();
    }
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->mu);
    return STORE_OK;
}

store_status store_write_async(store *st, store_write_fn fn, void *arg,
                               void (*done)(void *arg, store_status status), void *done_arg)
{
    return store_write_async_queue(st, fn, arg, done, done_arg, false);
}

store_status store_write_async_lazy(store *st, store_write_fn fn, void *arg,
                                    void (*done)(void *arg, store_status status), void *done_arg)
{
    return store_write_async_queue(st, fn, arg, done, done_arg, true);
}

static store_status store_write_queued(store *st, store_write_fn fn, void *arg, bool lazy)
{
    store_op op = {.fn = fn, .arg = arg, .status = STORE_ERROR};
    if (!store_op_take_armed(st, &op)) return STORE_ERROR;
    pthread_mutex_lock(&st->mu);
    if (st->stopping) {
        pthread_mutex_unlock(&st->mu);
        return STORE_ERROR;
    }
    if (st->ops_tail) st->ops_tail->next = &op; else st->ops_head = &op;
    st->ops_tail = &op;
    if (!lazy) {
        st->ops_eager++;
    } else if (!st->lazy_pending) {
        st->lazy_pending = 1;
        st->lazy_first_ms = store_mono_ms();
    }
    pthread_cond_signal(&st->wake);
    while (!op.done) pthread_cond_wait(&st->done, &st->mu);
    pthread_mutex_unlock(&st->mu);
    return op.status;
}

store_status store_write(store *st, store_write_fn fn, void *arg)
{
    return store_write_queued(st, fn, arg, false);
}

store_status store_write_lazy(store *st, store_write_fn fn, void *arg)
{
    return store_write_queued(st, fn, arg, true);
}

uint64_t store_usage_backlog(store *st)
{
    STORE_PG_DISPATCH(st, store_pg_usage_backlog(store_pg_of(st)));
    return atomic_load_explicit(&st->usage_backlog, memory_order_relaxed);
}

uint64_t store_usage_backlog_of(store *st, const char *tenant_id, size_t *tenants)
{
    STORE_PG_DISPATCH(st, store_pg_usage_backlog_of(store_pg_of(st), tenant_id, tenants));
    return usage_shares_of(st->usage_shares, tenant_id, tenants);
}

void store_get_stats(store *st, store_stats *out)
{
    STORE_PG_DISPATCH_VOID(st, store_pg_get_stats(store_pg_of(st), out));
    pthread_mutex_lock(&st->mu);
    *out = st->stats;
    out->usage_queued = atomic_load_explicit(&st->usage_backlog, memory_order_relaxed);
    pthread_mutex_unlock(&st->mu);
}

void store_usage_record(store *st, const usage_rec *u)
{
    STORE_PG_DISPATCH_VOID(st, store_pg_usage_record(store_pg_of(st), u));
    pthread_mutex_lock(&st->mu);
    if (st->stopping || st->usage_n >= STORE_USAGE_QUEUE_MAX) {
        int closing = st->stopping;
        uint64_t dropped = 0;
        st->stats.usage_dropped++;
        bool say = log_limit_event(&st->usage_drop_log, &dropped);
        pthread_mutex_unlock(&st->mu);
        if (say)
            log_error("store: %llu usage row(s) dropped (%s); their reservations stay open in the "
                      "journal and are charged at the next start",
                      (unsigned long long)dropped, closing ? "closing" : "queue full");
        return;
    }
    usage_chunk *k = st->usage_tail;
    if (!k || k->n == STORE_USAGE_CHUNK_ROWS) {
        k = st->usage_spare;
        if (k) {
            st->usage_spare = k->next;
            st->usage_spare_n--;
        } else if (!(k = malloc(sizeof *k))) {
            pthread_mutex_unlock(&st->mu);
            log_error("store: usage row dropped (out of memory)");
            return;
        }
        k->next = NULL;
        k->n = 0;
        if (st->usage_tail) st->usage_tail->next = k; else st->usage_head = k;
        st->usage_tail = k;
    }
    if (st->usage_n == 0) st->usage_first_ms = store_mono_ms();
    k->rows[k->n++] = *u;
    st->usage_n++;
    st->usage_queued_seq++;
    atomic_fetch_add_explicit(&st->usage_backlog, 1, memory_order_relaxed);
    usage_shares_add(st->usage_shares, u->tenant_id);
    /* Wake the writer only when the queue goes from empty to not empty: it
     * then arms its flush deadline and takes everything queued by then.
     * (It re-checks the queue under this mutex before every wait, so no row
     * is stranded.) Waking it per row cost two context switches a request. */
    if (st->usage_n == 1) pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->mu);
}

void store_set_usage_committed_hook(store *st,
                                    void (*fn)(void *arg, const usage_rec *rows, size_t n), void *arg)
{
    STORE_PG_DISPATCH_VOID(st, store_pg_set_usage_committed_hook(store_pg_of(st), fn, arg));
    pthread_mutex_lock(&st->mu);
    st->usage_committed = fn;
    st->usage_committed_arg = arg;
    pthread_mutex_unlock(&st->mu);
}

typedef struct usage_insert_args {
    const usage_rec *rows;
    size_t n;
} usage_insert_args;

static store_status store_usage_insert_op(store_conn *c, void *arg)
{
    usage_insert_args *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        store_status r = store_usage_insert(c, &a->rows[i]);
        if (r != STORE_OK) return r;
    }
    return STORE_OK;
}

store_status store_usage_insert_now(store *st, const usage_rec *rows, size_t n)
{
    STORE_PG_DISPATCH(st, store_pg_usage_insert_now(st, rows, n));
    usage_insert_args a = {rows, n};
    return store_write(st, store_usage_insert_op, &a);
}

void store_usage_flush(store *st)
{
    STORE_PG_DISPATCH_VOID(st, store_pg_usage_flush(store_pg_of(st)));
    pthread_mutex_lock(&st->mu);
    uint64_t target = st->usage_queued_seq;
    if (st->usage_done_seq < target) {
        st->flush_wanted = 1;
        pthread_cond_signal(&st->wake);
        while (st->usage_done_seq < target)
            pthread_cond_wait(&st->done, &st->mu);
    }
    pthread_mutex_unlock(&st->mu);
}

/* The PostgreSQL backend's writes carry the armed entries too
 * (store_pg_write.c): the same hand-over as store_write's. */
bool store_audit_take_armed(store *st, audit_rec **e, const store_audit_chain **chain, int *n)
{
    store_op op = {0};
    bool ok = store_op_take_armed(st, &op);
    *n = op.n_audit;
    for (int i = 0; i < op.n_audit; i++) {
        e[i] = op.audit[i];
        chain[i] = op.audit_chain[i];
    }
    return ok;
}
