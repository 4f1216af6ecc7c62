/* store_pg_usage.c — the usage ledger on PostgreSQL: group commit of
 * queued rows by a writer thread, and the same scoped reads as
 * store_usage.c.
 *
 * store_usage_record only appends to a bounded queue (safe on a loop
 * thread). The writer thread, on its own connection, takes everything
 * queued and inserts it with multi-row INSERTs in one transaction: one
 * commit (one WAL flush on the server) per batch instead of one per row,
 * at the latest STORE_USAGE_FLUSH_MS after the oldest row arrived. */
#include "store/store_pg_internal.h"
#include "store/usage_shares.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

#define PG_USAGE_QUEUE_MAX 100000   /* as the SQLite writer: drop and log beyond it */
#define PG_USAGE_COLS 12

static int64_t pg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Insert rows[0..n) with as few statements as possible (caller's transaction). */
static store_status pg_usage_insert(PGconn *c, const usage_rec *rows, size_t n)
{
    static const char head[] =
        "INSERT INTO usage (ts, tenant_id, user_id, key_id, model, request_id,"
        " input_tokens, output_tokens, cost_nusd, status, deployment, reservation) VALUES ";
    for (size_t done = 0; done < n;) {
        size_t k = n - done < PG_USAGE_BATCH_MAX ? n - done : PG_USAGE_BATCH_MAX;
        size_t sqlcap = sizeof head + k * 110;   /* a row: 12 "$NNNN," of 7 bytes at most, "()," */
        char *sql = malloc(sqlcap);
        const char **vals = malloc(k * PG_USAGE_COLS * sizeof *vals);
        char (*nums)[6][24] = malloc(k * sizeof *nums);
        if (!sql || !vals || !nums) {
            free(sql); free(vals); free(nums);
            log_error("store: usage insert: out of memory");
            return STORE_ERROR;
        }
        size_t len = (size_t)snprintf(sql, sqlcap, "%s", head);
        for (size_t i = 0; i < k; i++) {
            const usage_rec *u = &rows[done + i];
            int b = (int)(i * PG_USAGE_COLS);
            len += (size_t)snprintf(sql + len, sqlcap - len,
                "%s($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)", i ? "," : "",
                b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12);
            snprintf(nums[i][0], 24, "%" PRId64, u->ts);
            snprintf(nums[i][1], 24, "%" PRId64, u->input_tokens);
            snprintf(nums[i][2], 24, "%" PRId64, u->output_tokens);
            snprintf(nums[i][3], 24, "%" PRId64, u->cost_nusd);
            snprintf(nums[i][4], 24, "%d", u->status);
            snprintf(nums[i][5], 24, "%" PRId64, (int64_t)u->reservation_id);   /* ids are < 2^63 */
            const char **v = &vals[b];
            v[0] = nums[i][0]; v[1] = u->tenant_id; v[2] = u->user_id; v[3] = u->key_id;
            v[4] = u->model; v[5] = u->request_id; v[6] = nums[i][1]; v[7] = nums[i][2];
            v[8] = nums[i][3]; v[9] = nums[i][4]; v[10] = u->deployment; v[11] = nums[i][5];
        }
        store_status st = pg_run(c, sql, (int)(k * PG_USAGE_COLS), vals, "insert usage");
        free(sql); free(vals); free(nums);
        if (st != STORE_OK) return st;
        done += k;
    }
    return STORE_OK;
}

/* One transaction around the rows. */
static store_status pg_usage_commit_once(PGconn *c, const usage_rec *rows, size_t n)
{
    if (!pg_alive(c)) return STORE_ERROR;
    store_status st = pg_run(c, "BEGIN", 0, NULL, "usage begin");
    if (st != STORE_OK) return st;
    st = pg_usage_insert(c, rows, n);
    if (st == STORE_OK) st = pg_run(c, "COMMIT", 0, NULL, "usage commit");
    if (st != STORE_OK && PQstatus(c) == CONNECTION_OK) PQclear(PQexec(c, "ROLLBACK"));
    return st;
}

/* Spend must not vanish because PostgreSQL restarted: while the server is
 * unreachable (the connection is broken, not the rows refused) the batch
 * is retried, with growing pauses, for up to PG_USAGE_RETRY_MS; a batch
 * the server refused is not retried (it would be refused again). New rows
 * keep queueing meanwhile, bounded by PG_USAGE_QUEUE_MAX. */
#define PG_USAGE_RETRY_MS 30000
static store_status pg_usage_commit(struct pg_store *p, PGconn *c, const usage_rec *rows, size_t n)
{
    int64_t start = pg_mono_ms(), pause = 50;
    for (;;) {
        store_status st = pg_usage_commit_once(c, rows, n);
        if (st == STORE_OK || PQstatus(c) == CONNECTION_OK) return st;
        pthread_mutex_lock(&p->mu);
        int stopping = p->stopping;
        pthread_mutex_unlock(&p->mu);
        /* closing: a shorter wait, so a stop is not held up for long */
        int64_t limit = stopping ? PG_USAGE_RETRY_MS / 6 : PG_USAGE_RETRY_MS;
        if (pg_mono_ms() - start + pause > limit) return st;
        struct timespec ts = {pause / 1000, (pause % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (pause < 1000) pause *= 2;
    }
}

static void *pg_usage_writer(void *arg)
{
    struct pg_store *p = arg;
    /* the same name as SQLite's writer: the thread that commits what nobody waits for */
    pthread_setname_np(pthread_self(), "writer");
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && !p->flush_wanted && p->usage_n == 0 && !p->async_head)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->async_head) {
            /* writes nobody waits for (guard decisions): each its own
             * transaction with its audit entries, then its callback */
            pg_async *list = p->async_head;
            p->async_head = p->async_tail = NULL;
            pthread_mutex_unlock(&p->mu);
            size_t ran = 0, ok = 0;
            for (pg_async *op = list, *next; op; op = next) {
                next = op->next;
                store_status st = pg_alive(p->wconn)
                    ? pg_txn(p->wconn, op->fn, op->arg, op->audit, op->chain, op->n_audit) : STORE_ERROR;
                if (op->done) op->done(op->done_arg, st);
                ok += st == STORE_OK;
                ran++;
                free(op);
            }
            pthread_mutex_lock(&p->mu);
            p->async_n -= ran;
            p->stats.ops += ran;
            p->stats.commits += ok;
            continue;
        }
        /* Wait out the batching window unless asked to flush now. */
        while (!p->stopping && !p->flush_wanted && p->usage_n > 0 && !p->async_head) {
            int64_t due = p->usage_first_ms + STORE_USAGE_FLUSH_MS;
            int64_t now = pg_mono_ms();
            if (now >= due) break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = ts.tv_nsec + (due - now) * 1000000LL;
            ts.tv_sec += ns / 1000000000LL;
            ts.tv_nsec = ns % 1000000000LL;
            pthread_cond_timedwait(&p->wake, &p->mu, &ts);
        }
        if (p->usage_n == 0) {
            p->flush_wanted = 0;
            if (p->stopping) break;
            continue;
        }
        usage_rec *rows = p->usage;
        size_t n = p->usage_n;
        int64_t first_ms = p->usage_first_ms;
        p->usage = NULL;
        p->usage_n = p->usage_cap = 0;
        p->flush_wanted = 0;
        void (*hook)(void *, const usage_rec *, size_t) = p->usage_committed;
        void *hook_arg = p->usage_committed_arg;
        pthread_mutex_unlock(&p->mu);

        store_status st = pg_usage_commit(p, p->wconn, rows, n);
        if (st != STORE_OK)
            log_error("store: %zu usage rows lost: the PostgreSQL commit failed", n);
        else if (hook)
            hook(hook_arg, rows, n);
        usage_shares_settle(p->usage_shares, rows, n);
        free(rows);

        pthread_mutex_lock(&p->mu);
        if (st == STORE_OK) {
            p->stats.commits++;
            p->stats.ops++;
            p->stats.usage_rows += n;
            store_stats_usage_wait(&p->stats, first_ms, pg_mono_ms());
        }
        p->usage_done_seq += n;
        atomic_fetch_sub_explicit(&p->usage_backlog, n, memory_order_relaxed);
        uint64_t dropped = 0;
        if (log_limit_flush(&p->usage_drop_log, &dropped))
            log_error("store: %llu more usage row(s) dropped (queue full); their reservations stay "
                      "open in the journal and are charged at the next start",
                      (unsigned long long)dropped);
        pthread_cond_broadcast(&p->done);
    }
    pthread_cond_broadcast(&p->done);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int pg_usage_writer_start(struct pg_store *p, char *err, size_t errlen)
{
    int rc = pthread_create(&p->writer, NULL, pg_usage_writer, p);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the usage writer: %s", strerror(rc));
        return -1;
    }
    p->writer_started = 1;
    return 0;
}

void pg_usage_writer_stop(struct pg_store *p)
{
    if (!p->writer_started) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->writer, NULL);
    p->writer_started = 0;
}

void store_pg_usage_record(struct pg_store *p, const usage_rec *u)
{
    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->usage_n >= PG_USAGE_QUEUE_MAX) {
        int closing = p->stopping;
        uint64_t dropped = 0;
        p->stats.usage_dropped++;
        bool say = log_limit_event(&p->usage_drop_log, &dropped);
        pthread_mutex_unlock(&p->mu);
        if (say)
            log_error("store: %llu usage row(s) dropped (%s); their reservations stay open in the "
                      "journal and are charged at the next start",
                      (unsigned long long)dropped, closing ? "closing" : "queue full");
        return;
    }
    if (p->usage_n == p->usage_cap) {
        size_t cap = p->usage_cap ? p->usage_cap * 2 : 64;
        usage_rec *nu = realloc(p->usage, cap * sizeof *nu);
        if (!nu) {
            pthread_mutex_unlock(&p->mu);
            log_error("store: usage row dropped (out of memory)");
            return;
        }
        p->usage = nu;
        p->usage_cap = cap;
    }
    if (p->usage_n == 0) p->usage_first_ms = pg_mono_ms();
    p->usage[p->usage_n++] = *u;
    p->usage_queued_seq++;
    atomic_fetch_add_explicit(&p->usage_backlog, 1, memory_order_relaxed);
    usage_shares_add(p->usage_shares, u->tenant_id);
    if (p->usage_n == 1) pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

void store_pg_usage_flush(struct pg_store *p)
{
    pthread_mutex_lock(&p->mu);
    uint64_t target = p->usage_queued_seq;
    if (p->usage_done_seq < target) {
        p->flush_wanted = 1;
        pthread_cond_signal(&p->wake);
        while (p->usage_done_seq < target && p->writer_started)
            pthread_cond_wait(&p->done, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
}

void store_pg_set_usage_committed_hook(struct pg_store *p,
                                       void (*fn)(void *arg, const usage_rec *rows, size_t n),
                                       void *arg)
{
    pthread_mutex_lock(&p->mu);
    p->usage_committed = fn;
    p->usage_committed_arg = arg;
    pthread_mutex_unlock(&p->mu);
}

typedef struct pg_insert_now_args {
    const usage_rec *rows;
    size_t n;
} pg_insert_now_args;

static store_status pg_usage_insert_now_op(PGconn *c, void *arg)
{
    const pg_insert_now_args *a = arg;
    return a->n ? pg_usage_insert(c, a->rows, a->n) : STORE_OK;
}

/* Rows written at once in one transaction through pg_write, so the audit
 * entries armed on this thread ride on it as on SQLite (the reconciliation
 * at start charges open reservations with its budget.reconcile entry:
 * both or neither). */
store_status store_pg_usage_insert_now(store *st, const usage_rec *rows, size_t n)
{
    pg_insert_now_args a = {rows, n};
    return pg_write(st, pg_usage_insert_now_op, &a);
}

/* Which open reservations already settle a ledger row (the reconciliation
 * at start charges those once, by their row): the ids asked for, among the
 * rows since `since`, in one statement. */
store_status store_pg_usage_reservations_committed(struct pg_store *p, int64_t since, const uint64_t *ids,
                                                   size_t n, bool *committed)
{
    for (size_t i = 0; i < n; i++) committed[i] = false;
    if (!n) return STORE_OK;
    /* the ids as a PostgreSQL array literal: digits and commas only */
    size_t cap = 2 + n * 21;
    char *arr = malloc(cap);
    if (!arr) return STORE_ERROR;
    size_t len = (size_t)snprintf(arr, cap, "{");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(arr + len, cap - len, "%s%" PRId64, i ? "," : "", (int64_t)ids[i]);
    snprintf(arr + len, cap - len, "}");
    char b[PG_I64_MAX];
    const char *params[2] = {pg_num(b, since), arr};
    store_status st;
    PGresult *r = pg_read(p, "SELECT DISTINCT reservation FROM usage"
                             " WHERE ts >= $1 AND reservation != 0 AND reservation = ANY($2::bigint[])", 2, params, &st,
                          "usage reservations");
    free(arr);
    if (!r) return st;
    for (int row = 0; row < PQntuples(r); row++) {
        uint64_t got = (uint64_t)pg_i64(r, row, 0);
        for (size_t i = 0; i < n; i++)
            if (ids[i] == got) committed[i] = true;
    }
    PQclear(r);
    return STORE_OK;
}

/* ---- reads (the scope rules of store_usage.c) ---- */

#define USAGE_WHERE " FROM usage WHERE tenant_id = $1 AND ($2::text IS NULL OR user_id = $2)" \
                    " AND ($3::bigint = 0 OR ts >= $3) AND ($4::bigint = 0 OR ts < $4)"
#define USAGE_SUMS  " count(*), sum(input_tokens), sum(output_tokens), sum(cost_nusd)"

static const char *const pg_usage_sql[] = {
    [USAGE_GROUP_DAY]   = "SELECT to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS g,"
                          USAGE_SUMS USAGE_WHERE " GROUP BY g ORDER BY g",
    [USAGE_GROUP_MODEL] = "SELECT model AS g," USAGE_SUMS USAGE_WHERE " GROUP BY g ORDER BY g",
    [USAGE_GROUP_USER]  = "SELECT user_id AS g," USAGE_SUMS USAGE_WHERE " GROUP BY g ORDER BY g",
};

static store_status usage_filter(const scope *sc, const char *requested, const char **user)
{
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    *user = sc->role == SCOPE_USER ? sc->user_id : requested;
    return STORE_OK;
}

store_status store_pg_usage_query(struct pg_store *p, const scope *sc, const usage_query *q,
                                  usage_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const char *user = NULL;
    store_status r = usage_filter(sc, q ? q->user_id : NULL, &user);
    if (r != STORE_OK) return r;
    if (!q || q->group_by < USAGE_GROUP_DAY || q->group_by > USAGE_GROUP_USER ||
        q->from < 0 || q->to < 0)
        return STORE_INVALID;
    char from[24], to[24];
    snprintf(from, sizeof from, "%" PRId64, q->from);
    snprintf(to, sizeof to, "%" PRId64, q->to);
    const char *params[4] = {sc->tenant_id, user, from, to};
    PGconn *c = pg_acquire(p);
    if (!c) return STORE_ERROR;
    store_status st;
    PGresult *res = pg_exec(c, pg_usage_sql[q->group_by], 4, params, &st, "usage query");
    pg_release(p, c);
    if (!res) return st;
    int rows = PQntuples(res);
    if (rows > 0) {
        usage_row *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(res); return STORE_ERROR; }
        for (int i = 0; i < rows; i++) {
            pg_copy(res, i, 0, arr[i].group, sizeof arr[i].group);
            arr[i].requests = pg_i64(res, i, 1);
            arr[i].input_tokens = pg_i64(res, i, 2);
            arr[i].output_tokens = pg_i64(res, i, 3);
            arr[i].cost_nusd = pg_i64(res, i, 4);
        }
        *out = arr;
        *n = (size_t)rows;
    }
    PQclear(res);
    return STORE_OK;
}

store_status store_pg_usage_spent(struct pg_store *p, const scope *sc, int64_t from, int64_t to,
                                  int64_t *cost_nusd)
{
    *cost_nusd = 0;
    const char *user = NULL;
    store_status r = usage_filter(sc, NULL, &user);
    if (r != STORE_OK) return r;
    if (from < 0 || to < 0) return STORE_INVALID;
    char f[24], t[24];
    snprintf(f, sizeof f, "%" PRId64, from);
    snprintf(t, sizeof t, "%" PRId64, to);
    const char *params[4] = {sc->tenant_id, user, f, t};
    PGconn *c = pg_acquire(p);
    if (!c) return STORE_ERROR;
    store_status st;
    PGresult *res = pg_exec(c, "SELECT coalesce(sum(cost_nusd), 0)" USAGE_WHERE, 4, params, &st,
                            "usage spent");
    pg_release(p, c);
    if (!res) return st;
    *cost_nusd = pg_i64(res, 0, 0);
    PQclear(res);
    return STORE_OK;
}

store_status store_pg_usage_ledger(struct pg_store *p, int64_t from,
                                   void (*fn)(const char *tenant_id, const char *user_id,
                                              const char *key_id, int64_t ts, int64_t cost_nusd,
                                              void *arg),
                                   void *arg)
{
    char f[24];
    snprintf(f, sizeof f, "%" PRId64, from);
    const char *params[1] = {f};
    PGconn *c = pg_acquire(p);
    if (!c) return STORE_ERROR;
    store_status st;
    /* floor division, as SQLite's integer division of non-negative ts */
    PGresult *res = pg_exec(c,
        "SELECT tenant_id, user_id, key_id, (ts / 86400) * 86400, sum(cost_nusd) FROM usage"
        " WHERE ts >= $1 GROUP BY 1, 2, 3, 4", 1, params, &st, "usage ledger");
    pg_release(p, c);
    if (!res) return st;
    for (int i = 0; i < PQntuples(res); i++)
        fn(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), pg_i64(res, i, 3),
           pg_i64(res, i, 4), arg);
    PQclear(res);
    return STORE_OK;
}

uint64_t store_pg_usage_backlog(struct pg_store *p)
{
    return atomic_load_explicit(&p->usage_backlog, memory_order_relaxed);
}

uint64_t store_pg_usage_backlog_of(struct pg_store *p, const char *tenant_id, size_t *tenants)
{
    return usage_shares_of(p->usage_shares, tenant_id, tenants);
}
