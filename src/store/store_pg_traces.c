/* store_pg_traces.c — traces as rows on PostgreSQL (the same contracts as
 * store_traces.c: batched inserts with retention pruning, and the read
 * that shows a trace only when every row of it is within the caller's
 * scope).
 *
 * seq counts spans (a row's seq is the number of spans written up to and
 * including it), computed from the table's max: a transaction-scoped
 * advisory lock serializes the batches of every instance, so two batches
 * never compute the same seq. The spans blob is BYTEA, sent as a binary
 * parameter and read back with PQunescapeBytea. */
#include "store/store_pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define PG_TRACES_LOCK "7262726967747263"

typedef struct batch {
    const trace_rec *rows;
    size_t n;
    int64_t prune_before_ns;
    uint64_t max_spans;
} batch;

static store_status owner_alive(PGconn *c, const trace_rec *r)
{
    if (!r->user_id[0]) return STORE_OK;   /* a tenant admin's */
    const char *p[2] = {r->user_id, r->tenant_id};
    store_status st;
    PGresult *res = pg_exec(c, "SELECT 1 FROM users WHERE id = $1 AND tenant_id = $2 FOR SHARE", 2, p, &st,
                            "trace owner");
    if (!res) return st;
    st = PQntuples(res) == 1 ? STORE_OK : STORE_NOT_FOUND;
    PQclear(res);
    return st;
}

static store_status write_op(PGconn *c, void *arg)
{
    const batch *b = arg;
    store_status st = pg_run(c, "SELECT pg_advisory_xact_lock(x'" PG_TRACES_LOCK "'::bigint)", 0, NULL,
                             "traces lock");
    if (st != STORE_OK) return st;
    for (size_t i = 0; i < b->n; i++) {
        const trace_rec *r = &b->rows[i];
        if (!r->tenant_id[0] || !r->span_count || !r->blob) return STORE_INVALID;
        st = owner_alive(c, r);
        if (st == STORE_NOT_FOUND) continue;
        if (st != STORE_OK) return st;
        char v[5][PG_I64_MAX];
        const char *p[9] = {r->trace_id, r->tenant_id, r->user_id, pg_num(v[0], r->start_ns),
                            pg_num(v[1], r->end_ns), r->root_name, pg_num(v[2], r->status),
                            pg_num(v[3], r->span_count), (const char *)r->blob};
        int lens[9] = {0, 0, 0, 0, 0, 0, 0, 0, (int)r->blob_len};
        int fmts[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};
        PGresult *res = PQexecParams(c,
            "INSERT INTO traces (seq, trace_id, tenant_id, user_id, start_ns, end_ns, root_name, status,"
            " span_count, spans) VALUES ((SELECT COALESCE(MAX(seq), 0) FROM traces) + $8::bigint,"
            " $1, $2, $3, $4, $5, $6, $7, $8, $9)", 9, NULL, p, lens, fmts, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            log_error("store: insert trace: %s", PQresultErrorMessage(res));
            PQclear(res);
            return STORE_ERROR;
        }
        PQclear(res);
    }
    char before[PG_I64_MAX], max[PG_I64_MAX];
    if (b->prune_before_ns > 0) {
        const char *p[1] = {pg_num(before, b->prune_before_ns)};
        if ((st = pg_run(c, "DELETE FROM traces WHERE seq < COALESCE((SELECT seq FROM traces"
                                " WHERE end_ns >= $1 ORDER BY seq LIMIT 1), 9223372036854775807)",
                         1, p, "prune traces by age")) != STORE_OK)
            return st;
    }
    if (b->max_spans > 0) {
        const char *p[1] = {pg_num(max, b->max_spans > INT64_MAX ? INT64_MAX : (int64_t)b->max_spans)};
        if ((st = pg_run(c, "DELETE FROM traces WHERE seq <= (SELECT MAX(seq) FROM traces) - $1::bigint", 1, p,
                         "prune traces by count")) != STORE_OK)
            return st;
    }
    return STORE_OK;
}

store_status store_pg_traces_insert(store *st, const trace_rec *rows, size_t n, int64_t prune_before_ns,
                                    uint64_t max_spans)
{
    if (!st || (n && !rows)) return STORE_INVALID;
    for (size_t i = 0; i < n; i++)
        if (rows[i].blob_len > (size_t)INT32_MAX) return STORE_INVALID;
    batch b = {rows, n, prune_before_ns, max_spans};
    return pg_write(st, write_op, &b);
}

store_status store_pg_traces_insert_async(store *st, const trace_rec *rows, size_t n,
                                          int64_t prune_before_ns, uint64_t max_spans,
                                          void (*done)(void *done_arg, store_status status),
                                          void *done_arg)
{
    if (!done) return STORE_INVALID;
    store_status res = store_pg_traces_insert(st, rows, n, prune_before_ns, max_spans);
    if (res == STORE_INVALID) return res;   /* not queued, as on SQLite */
    done(done_arg, res);
    return STORE_OK;
}

static int read_trace(const PGresult *r, int i, trace_rec *t)
{
    memset(t, 0, sizeof *t);
    pg_copy(r, i, 0, t->trace_id, sizeof t->trace_id);
    pg_copy(r, i, 1, t->tenant_id, sizeof t->tenant_id);
    pg_copy(r, i, 2, t->user_id, sizeof t->user_id);
    t->start_ns = pg_i64(r, i, 3);
    t->end_ns = pg_i64(r, i, 4);
    pg_copy(r, i, 5, t->root_name, sizeof t->root_name);
    t->status = (int)pg_i64(r, i, 6);
    int64_t cnt = pg_i64(r, i, 7);
    t->span_count = cnt < 0 ? 0 : cnt > UINT32_MAX ? UINT32_MAX : (uint32_t)cnt;
    size_t len = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 8), &len);
    if (!raw) return -1;
    t->blob = malloc(len ? len : 1);
    if (!t->blob) { PQfreemem(raw); return -1; }
    memcpy(t->blob, raw, len);
    t->blob_len = len;
    PQfreemem(raw);
    return 0;
}

store_status store_pg_trace_get(struct pg_store *p, const scope *sc, const char *trace_id, trace_rec **out,
                                size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc) || !trace_id || !trace_id[0]) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    const char *user = sc->role == SCOPE_USER ? sc->user_id : "";
    if (!sc->tenant_id[0] || (sc->role == SCOPE_USER && !user[0])) return STORE_NOT_FOUND;
    char lim[PG_I64_MAX];
    const char *params[4] = {trace_id, sc->tenant_id, user, pg_num(lim, STORE_TRACE_SPANS_MAX)};
    store_status st;
    /* one statement, one snapshot: the scope check and the rows agree */
    PGresult *r = pg_read(p,
        "SELECT trace_id, tenant_id, user_id, start_ns, end_ns, root_name, status, span_count, spans,"
        " (tenant_id = $2 AND ($3 = '' OR user_id = $3)) AS mine"
        " FROM traces WHERE trace_id = $1 ORDER BY start_ns, seq LIMIT $4", 4, params, &st, "read trace");
    if (!r) return st;
    int rows = PQntuples(r);
    trace_rec *arr = rows ? calloc((size_t)rows, sizeof *arr) : NULL;
    size_t cnt = 0, spans = 0;
    st = rows == 0 ? STORE_NOT_FOUND : arr ? STORE_OK : STORE_ERROR;
    for (int i = 0; st == STORE_OK && i < rows; i++) {
        if (strcmp(PQgetvalue(r, i, 9), "t") != 0) { st = STORE_NOT_FOUND; break; }   /* one foreign row hides all */
        if (spans >= STORE_TRACE_SPANS_MAX) continue;
        if (read_trace(r, i, &arr[cnt]) != 0) { st = STORE_ERROR; break; }
        spans += arr[cnt].span_count;
        cnt++;
    }
    PQclear(r);
    if (st != STORE_OK) {
        store_free_traces(arr, cnt);
        return st;
    }
    *out = arr;
    *n = cnt;
    return STORE_OK;
}
