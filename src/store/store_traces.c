/* store_traces.c — traces as rows: batched inserts with retention pruning,
 * and the scoped read behind GET /v1/traces/{id}.
 *
 * A row is one trace's spans from one owner, written in one flush of the
 * tracer (src/obs/tracer.c): the spans are a blob in src/obs/span_codec.h's
 * form, which the store never opens; the columns are what a read and
 * retention need. A request's spans are usually one row; spans of the same
 * trace that end in later flushes (or belong to another owner) are further
 * rows of the same trace id.
 *
 * seq is the primary key and counts spans, not rows: a row's seq is the
 * number of spans ever written up to and including it. Keeping the newest
 * max_spans spans is therefore a range delete on the primary key, as it
 * was when rows were spans. Age pruning is one too: rows are written as
 * their traces end, so it deletes every row before the first one that
 * ended at or after the cutoff, found by walking the primary key from its
 * start (past only the rows being deleted). An index on end_ns would cost
 * every traced request one more B-tree insert for this. What it gives up:
 * a row written after a younger one (the order within one tracer flush,
 * or a clock set back) waits for that one, a flush interval or so.
 *
 * Who may read a trace: a trace id arrives from clients (traceparent), so
 * anyone can put spans into any trace id they like. A trace is therefore
 * shown only when *every* row of it is within the caller's scope — one
 * foreign row hides the whole trace (404, as for a trace that does not
 * exist). Spans without an owner (requests that never authenticated) are
 * not written at all: no read could ever return them. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/thread_prio.h"

void store_free_traces(trace_rec *arr, size_t n)
{
    if (!arr) return;
    for (size_t i = 0; i < n; i++) free(arr[i].blob);
    free(arr);
}

typedef struct traces_batch {
    const trace_rec *rows;
    size_t n;
    int64_t prune_before_ns;
    uint64_t max_spans;
} traces_batch;

/* A user's row is written only while the user exists: spans reach the
 * store a flush after they end, and one of an erased user's last requests
 * must not land after the erasure (store_user_delete). One lookup per
 * owner per batch, remembered here. */
#define TRACE_OWNERS_CACHED 32
typedef struct trace_owners {
    size_t n;
    struct { const trace_rec *first; bool alive; } seen[TRACE_OWNERS_CACHED];
} trace_owners;

static store_status store_trace_owner_alive(store_conn *c, trace_owners *o, const trace_rec *r)
{
    if (!r->user_id[0]) return STORE_OK;   /* a tenant admin's */
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->seen[i].first->user_id, r->user_id) == 0 &&
            strcmp(o->seen[i].first->tenant_id, r->tenant_id) == 0)
            return o->seen[i].alive ? STORE_OK : STORE_NOT_FOUND;
    store_status res = store_user_alive(c, r->tenant_id, r->user_id);
    if ((res == STORE_OK || res == STORE_NOT_FOUND) && o->n < TRACE_OWNERS_CACHED) {
        o->seen[o->n].first = r;
        o->seen[o->n].alive = res == STORE_OK;
        o->n++;
    }
    return res;
}

static store_status store_traces_write(store_conn *c, void *arg)
{
    const traces_batch *b = arg;
    static const char ins[] =
        "INSERT INTO traces (seq, trace_id, tenant_id, user_id, start_ns, end_ns, root_name,"
        " status, span_count, spans) VALUES (?10, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    /* Only this thread writes traces: the newest seq is read once and then
     * counted here, rather than looked up for every row. */
    if (!c->traces_seq_known) {
        sqlite3_stmt *m = store_stmt(c, "SELECT IFNULL(MAX(seq), 0) FROM traces");
        if (!m) return STORE_ERROR;
        int rc = sqlite3_step(m);
        int64_t max = rc == SQLITE_ROW ? sqlite3_column_int64(m, 0) : 0;
        sqlite3_reset(m);
        if (rc != SQLITE_ROW) return store_sqlite_status(c, rc, "read the newest trace");
        c->traces_seq = max;
        c->traces_seq_known = 1;
    }
    trace_owners owners = {.n = 0};
    for (size_t i = 0; i < b->n; i++) {
        const trace_rec *r = &b->rows[i];
        if (!r->tenant_id[0] || !r->span_count || !r->blob) return STORE_INVALID;
        store_status alive = store_trace_owner_alive(c, &owners, r);
        if (alive == STORE_NOT_FOUND) continue;
        if (alive != STORE_OK) return alive;
        sqlite3_stmt *s = store_stmt(c, ins);
        if (!s) return STORE_ERROR;
        store_bind_text(s, 1, r->trace_id);
        store_bind_text(s, 2, r->tenant_id);
        store_bind_text(s, 3, r->user_id);
        sqlite3_bind_int64(s, 4, r->start_ns);
        sqlite3_bind_int64(s, 5, r->end_ns);
        store_bind_text(s, 6, r->root_name);
        sqlite3_bind_int(s, 7, r->status);
        sqlite3_bind_int64(s, 8, r->span_count);
        sqlite3_bind_blob(s, 9, r->blob, (int)r->blob_len, SQLITE_STATIC);
        sqlite3_bind_int64(s, 10, c->traces_seq + r->span_count);
        store_status st = store_step_done(c, s, "insert trace");
        if (st != STORE_OK) return st;
        c->traces_seq += r->span_count;
        thread_background_yield();   /* a tracer flush holds thousands of rows */
    }
    if (b->prune_before_ns > 0) {
        /* In write order (the header says why): the rows before the
         * first one that ended at or after the cutoff. */
        sqlite3_stmt *s = store_stmt(c, "DELETE FROM traces WHERE seq < IFNULL((SELECT seq FROM traces"
                                        " WHERE end_ns >= ?1 ORDER BY seq LIMIT 1), 9223372036854775807)");
        if (!s) return STORE_ERROR;
        sqlite3_bind_int64(s, 1, b->prune_before_ns);
        store_status st = store_step_done(c, s, "prune traces by age");
        if (st != STORE_OK) return st;
    }
    if (b->max_spans > 0) {
        sqlite3_stmt *s = store_stmt(c, "DELETE FROM traces WHERE seq <= (SELECT MAX(seq) FROM traces) - ?");
        if (!s) return STORE_ERROR;
        sqlite3_bind_int64(s, 1, b->max_spans > INT64_MAX ? INT64_MAX : (int64_t)b->max_spans);
        store_status st = store_step_done(c, s, "prune traces by count");
        if (st != STORE_OK) return st;
    }
    return STORE_OK;
}

static store_status store_traces_check(store *st, const trace_rec *rows, size_t n)
{
    if (!st || (n && !rows)) return STORE_INVALID;
    for (size_t i = 0; i < n; i++)
        if (rows[i].blob_len > (size_t)INT32_MAX) return STORE_INVALID;
    return STORE_OK;
}

store_status store_traces_insert(store *st, const trace_rec *rows, size_t n,
                                 int64_t prune_before_ns, uint64_t max_spans)
{
    STORE_PG_DISPATCH(st, store_pg_traces_insert(st, rows, n, prune_before_ns, max_spans));
    store_status bad = store_traces_check(st, rows, n);
    if (bad != STORE_OK) return bad;
    traces_batch b = {rows, n, prune_before_ns, max_spans};
    return store_write(st, store_traces_write, &b);
}

/* An async write's batch lives until the writer is done with it. */
typedef struct traces_async {
    traces_batch b;
    void (*done)(void *arg, store_status status);
    void *done_arg;
} traces_async;

static void store_traces_async_done(void *arg, store_status status)
{
    traces_async *a = arg;
    void (*done)(void *, store_status) = a->done;
    void *done_arg = a->done_arg;
    free(a);
    done(done_arg, status);
}

store_status store_traces_insert_async(store *st, const trace_rec *rows, size_t n,
                                       int64_t prune_before_ns, uint64_t max_spans, bool now,
                                       void (*done)(void *done_arg, store_status status),
                                       void *done_arg)
{
    STORE_PG_DISPATCH(st, store_pg_traces_insert_async(st, rows, n, prune_before_ns, max_spans, done,
                                                       done_arg));
    if (!done) return STORE_INVALID;
    store_status bad = store_traces_check(st, rows, n);
    if (bad != STORE_OK) return bad;
    traces_async *a = malloc(sizeof *a);
    if (!a) return STORE_ERROR;
    *a = (traces_async){{rows, n, prune_before_ns, max_spans}, done, done_arg};
    store_status q = now ? store_write_async(st, store_traces_write, &a->b, store_traces_async_done, a)
                         : store_write_async_lazy(st, store_traces_write, &a->b, store_traces_async_done, a);
    if (q != STORE_OK) free(a);
    return q;
}

static int store_read_trace(sqlite3_stmt *s, trace_rec *r)
{
    memset(r, 0, sizeof *r);
    store_col_copy(s, 0, r->trace_id, sizeof r->trace_id);
    store_col_copy(s, 1, r->tenant_id, sizeof r->tenant_id);
    store_col_copy(s, 2, r->user_id, sizeof r->user_id);
    r->start_ns = sqlite3_column_int64(s, 3);
    r->end_ns = sqlite3_column_int64(s, 4);
    store_col_copy(s, 5, r->root_name, sizeof r->root_name);
    r->status = sqlite3_column_int(s, 6);
    int64_t cnt = sqlite3_column_int64(s, 7);
    r->span_count = cnt < 0 ? 0 : cnt > UINT32_MAX ? UINT32_MAX : (uint32_t)cnt;
    const void *blob = sqlite3_column_blob(s, 8);
    int len = sqlite3_column_bytes(s, 8);
    r->blob = malloc(len > 0 ? (size_t)len : 1);
    if (!r->blob) return -1;
    if (len > 0) memcpy(r->blob, blob, (size_t)len);
    r->blob_len = len > 0 ? (size_t)len : 0;
    return 0;
}

store_status store_trace_get(store *st, const scope *sc, const char *trace_id,
                             trace_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_trace_get(store_pg_of(st), sc, trace_id, out, n));
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc) || !trace_id || !trace_id[0]) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    const char *user = sc->role == SCOPE_USER ? sc->user_id : "";
    if (!sc->tenant_id[0] || (sc->role == SCOPE_USER && !user[0])) return STORE_NOT_FOUND;

    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    /* One statement, one snapshot: the scope check and the rows it allows
     * cannot disagree. `mine` is computed by SQLite per row. */
    static const char sql[] =
        "SELECT trace_id, tenant_id, user_id, start_ns, end_ns, root_name, status, span_count,"
        " spans, (tenant_id = ?2 AND (?3 = '' OR user_id = ?3)) AS mine"
        " FROM traces WHERE trace_id = ?1 ORDER BY start_ns, seq LIMIT ?4";
    sqlite3_stmt *s = store_stmt(c, sql);
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, trace_id);
    store_bind_text(s, 2, sc->tenant_id);
    store_bind_text(s, 3, user);
    sqlite3_bind_int(s, 4, STORE_TRACE_SPANS_MAX);   /* rows hold at least a span each */

    trace_rec *arr = NULL;
    size_t cnt = 0, cap = 0, spans = 0;
    store_status res = STORE_OK;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!sqlite3_column_int(s, 9)) { res = STORE_NOT_FOUND; break; }
        /* Rows past the span bound are not read, but the scope check
         * goes on (up to the row bound): a foreign row further on must
         * still hide the trace. */
        if (spans >= STORE_TRACE_SPANS_MAX) continue;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            trace_rec *na = realloc(arr, ncap * sizeof *na);
            if (!na) { res = STORE_ERROR; break; }
            arr = na;
            cap = ncap;
        }
        if (store_read_trace(s, &arr[cnt]) != 0) { res = STORE_ERROR; break; }
        spans += arr[cnt].span_count;
        cnt++;
    }
    if (res == STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        res = store_sqlite_status(c, rc, "read trace");
    sqlite3_reset(s);
    if (res == STORE_OK && cnt == 0) res = STORE_NOT_FOUND;
    if (res != STORE_OK) {
        store_free_traces(arr, cnt);
        return res;
    }
    *out = arr;
    *n = cnt;
    return STORE_OK;
}
