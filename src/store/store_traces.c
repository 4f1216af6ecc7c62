/* store_traces.c — spans of traces: batched inserts with retention pruning,
 * and the scoped read behind GET /v1/traces/{id}.
 *
 * Spans arrive from the tracer's thread (src/obs/tracer.c) in batches, one
 * writer operation per batch, so tracing costs one savepoint per flush
 * rather than a transaction per span. Pruning runs in the same operation:
 * by age (indexed end_ns) and by count (the newest max_spans by seq, the
 * primary key), both range deletes that touch only what they remove.
 *
 * Who may read a trace: a trace id arrives from clients (traceparent), so
 * anyone can put spans into any trace id they like. A trace is therefore
 * shown only when *every* owned span of it is within the caller's scope —
 * one foreign span hides the whole trace (404, as for a trace that does
 * not exist). Spans without an owner (requests that never authenticated)
 * belong to nobody and are never returned. */
#include "store/store_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_TRACE_SPANS_MAX 10000

void store_free_spans(span_rec *arr, size_t n)
{
    if (!arr) return;
    for (size_t i = 0; i < n; i++) free(arr[i].attributes);
    free(arr);
}

typedef struct spans_batch {
    const span_rec *spans;
    size_t n;
    int64_t prune_before_ns;
    uint64_t max_spans;
} spans_batch;

/* A user's span is written only while the user exists: spans reach the
 * store a flush after they end, and one of an erased user's last requests
 * must not land after the erasure (store_user_delete). One lookup per
 * owner per batch, remembered here; a plain INSERT per span (an INSERT …
 * SELECT … WHERE EXISTS doubled the cost of every span). */
#define SPAN_OWNERS_CACHED 32
typedef struct span_owners {
    size_t n;
    struct { const span_rec *first; bool alive; } seen[SPAN_OWNERS_CACHED];
} span_owners;

static store_status store_span_owner_alive(store_conn *c, span_owners *o, const span_rec *r)
{
    if (!r->user_id[0]) return STORE_OK;   /* a tenant admin's or nobody's */
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->seen[i].first->user_id, r->user_id) == 0 &&
            strcmp(o->seen[i].first->tenant_id, r->tenant_id) == 0)
            return o->seen[i].alive ? STORE_OK : STORE_NOT_FOUND;
    store_status res = store_user_alive(c, r->tenant_id, r->user_id);
    if ((res == STORE_OK || res == STORE_NOT_FOUND) && o->n < SPAN_OWNERS_CACHED) {
        o->seen[o->n].first = r;
        o->seen[o->n].alive = res == STORE_OK;
        o->n++;
    }
    return res;
}

static store_status store_spans_write(store_conn *c, void *arg)
{
    const spans_batch *b = arg;
    static const char ins[] =
        "INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, tenant_id, user_id,"
        " start_ns, end_ns, status, status_message, attributes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)";
    span_owners owners = {.n = 0};
    for (size_t i = 0; i < b->n; i++) {
        const span_rec *r = &b->spans[i];
        store_status alive = store_span_owner_alive(c, &owners, r);
        if (alive == STORE_NOT_FOUND) continue;
        if (alive != STORE_OK) return alive;
        sqlite3_stmt *s = store_stmt(c, ins);
        if (!s) return STORE_ERROR;
        store_bind_text(s, 1, r->trace_id);
        store_bind_text(s, 2, r->span_id);
        store_bind_text(s, 3, r->parent_span_id);
        store_bind_text(s, 4, r->name);
        sqlite3_bind_int(s, 5, r->kind);
        store_bind_text(s, 6, r->tenant_id);
        store_bind_text(s, 7, r->user_id);
        sqlite3_bind_int64(s, 8, r->start_ns);
        sqlite3_bind_int64(s, 9, r->end_ns);
        sqlite3_bind_int(s, 10, r->status);
        store_bind_text(s, 11, r->status_message);
        store_bind_text(s, 12, r->attributes ? r->attributes : "{}");
        store_status st = store_step_done(c, s, "insert span");
        if (st != STORE_OK) return st;
    }
    if (b->prune_before_ns > 0) {
        sqlite3_stmt *s = store_stmt(c, "DELETE FROM spans WHERE end_ns < ?");
        if (!s) return STORE_ERROR;
        sqlite3_bind_int64(s, 1, b->prune_before_ns);
        store_status st = store_step_done(c, s, "prune spans by age");
        if (st != STORE_OK) return st;
    }
    if (b->max_spans > 0) {
        sqlite3_stmt *s = store_stmt(c, "DELETE FROM spans WHERE seq <= (SELECT MAX(seq) FROM spans) - ?");
        if (!s) return STORE_ERROR;
        sqlite3_bind_int64(s, 1, b->max_spans > INT64_MAX ? INT64_MAX : (int64_t)b->max_spans);
        store_status st = store_step_done(c, s, "prune spans by count");
        if (st != STORE_OK) return st;
    }
    return STORE_OK;
}

store_status store_spans_insert(store *st, const span_rec *spans, size_t n,
                                int64_t prune_before_ns, uint64_t max_spans)
{
    if (!st || (n && !spans)) return STORE_INVALID;
    spans_batch b = {spans, n, prune_before_ns, max_spans};
    return store_write(st, store_spans_write, &b);
}

static void store_read_span(sqlite3_stmt *s, span_rec *r)
{
    memset(r, 0, sizeof *r);
    store_col_copy(s, 0, r->trace_id, sizeof r->trace_id);
    store_col_copy(s, 1, r->span_id, sizeof r->span_id);
    store_col_copy(s, 2, r->parent_span_id, sizeof r->parent_span_id);
    store_col_copy(s, 3, r->name, sizeof r->name);
    r->kind = sqlite3_column_int(s, 4);
    store_col_copy(s, 5, r->tenant_id, sizeof r->tenant_id);
    store_col_copy(s, 6, r->user_id, sizeof r->user_id);
    r->start_ns = sqlite3_column_int64(s, 7);
    r->end_ns = sqlite3_column_int64(s, 8);
    r->status = sqlite3_column_int(s, 9);
    store_col_copy(s, 10, r->status_message, sizeof r->status_message);
}

store_status store_trace_get(store *st, const scope *sc, const char *trace_id,
                             span_rec **out, size_t *n)
{
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
        "SELECT trace_id, span_id, parent_span_id, name, kind, tenant_id, user_id, start_ns,"
        " end_ns, status, status_message, attributes,"
        " (tenant_id = ?2 AND (?3 = '' OR user_id = ?3)) AS mine"
        " FROM spans WHERE trace_id = ?1 AND tenant_id != '' ORDER BY start_ns, seq LIMIT ?4";
    sqlite3_stmt *s = store_stmt(c, sql);
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, trace_id);
    store_bind_text(s, 2, sc->tenant_id);
    store_bind_text(s, 3, user);
    sqlite3_bind_int(s, 4, STORE_TRACE_SPANS_MAX);

    span_rec *arr = NULL;
    size_t cnt = 0, cap = 0;
    store_status res = STORE_OK;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!sqlite3_column_int(s, 12)) { res = STORE_NOT_FOUND; break; }
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            span_rec *na = realloc(arr, ncap * sizeof *na);
            if (!na) { res = STORE_ERROR; break; }
            arr = na;
            cap = ncap;
        }
        store_read_span(s, &arr[cnt]);
        if (store_col_dup(s, 11, &arr[cnt].attributes) != 0) { res = STORE_ERROR; break; }
        cnt++;
    }
    if (res == STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        res = store_sqlite_status(c, rc, "read trace");
    sqlite3_reset(s);
    if (res == STORE_OK && cnt == 0) res = STORE_NOT_FOUND;
    if (res != STORE_OK) {
        store_free_spans(arr, cnt);
        return res;
    }
    *out = arr;
    *n = cnt;
    return STORE_OK;
}
