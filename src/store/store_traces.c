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
 * Packs (trace_pack.h): consecutive rows of a batch that belong to one
 * owner and whose ids this server made in one 10 ms window are written as
 * a single row — trace_id '', id_window set, the spans column a pack of
 * their records. A busy server's flush holds many such rows, and a row
 * costs the writer far more than its bytes do. A read of trace T takes
 * T's own rows by the trace-id index and the packs of T's window by the
 * partial index on id_window, and gives back T's records from both.
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
 * exist). A foreign pack hides it when it holds a record of the trace.
 * Spans without an owner (requests that never authenticated) are not
 * written at all: no read could ever return them. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/trace_pack.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/thread_prio.h"
#include "util/xalloc.h"

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

static bool store_trace_row_valid(const trace_rec *r)
{
    return r->tenant_id[0] && r->span_count && r->blob;
}

/* Rows i.. that go into one pack with row i: valid, of i's owner, ids made
 * here in i's window, within the pack's bounds. 1 when row i goes alone. */
static size_t store_trace_pack_run(const traces_batch *b, size_t i, int64_t *window)
{
    const trace_rec *first = &b->rows[i];
    *window = first->local_id ? trace_pack_window(first->trace_id) : 0;
    if (!*window) return 1;
    size_t bytes = 4 + trace_pack_entry_size(first), j = i + 1;
    for (; j < b->n && j - i < TRACE_PACK_MAX_TRACES; j++) {
        const trace_rec *r = &b->rows[j];
        if (!r->local_id || !store_trace_row_valid(r) || strcmp(r->user_id, first->user_id) != 0 ||
            strcmp(r->tenant_id, first->tenant_id) != 0 || trace_pack_window(r->trace_id) != *window)
            break;
        size_t more = trace_pack_entry_size(r);
        if (bytes + more > TRACE_PACK_MAX_BYTES) break;
        bytes += more;
    }
    return j - i;
}

/* The next seq: the newest is read once, then counted here (only this
 * thread writes traces). */
static store_status store_traces_seq_load(store_conn *c)
{
    if (c->traces_seq_known) return STORE_OK;
    sqlite3_stmt *m = store_stmt(c, "SELECT IFNULL(MAX(seq), 0) FROM traces");
    if (!m) return STORE_ERROR;
    int rc = sqlite3_step(m);
    int64_t max = rc == SQLITE_ROW ? sqlite3_column_int64(m, 0) : 0;
    sqlite3_reset(m);
    if (rc != SQLITE_ROW) return store_sqlite_status(c, rc, "read the newest trace");
    c->traces_seq = max;
    c->traces_seq_known = 1;
    return STORE_OK;
}

static store_status store_trace_insert_one(store_conn *c, const trace_rec *r)
{
    static const char ins[] =
        "INSERT INTO traces (seq, trace_id, tenant_id, user_id, start_ns, end_ns, root_name,"
        " status, span_count, spans) VALUES (?10, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
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
    if (st == STORE_OK) c->traces_seq += r->span_count;
    return st;
}

/* n rows of one owner and window as one row: trace_id '' (never asked
 * for: a read needs a whole id), its window set, the spans a pack. */
static store_status store_trace_insert_pack(store_conn *c, const trace_rec *rows, size_t n,
                                            int64_t window, buf *pack, trace_pack_sealer *sealer)
{
    static const char ins[] =
        "INSERT INTO traces (seq, trace_id, tenant_id, user_id, start_ns, end_ns, root_name,"
        " status, span_count, spans, id_window) VALUES (?9, '', ?1, ?2, ?3, ?4, '', 0, ?5, ?6, ?7)";
    pack->len = 0;
    trace_pack_begin(pack);
    int64_t start = rows[0].start_ns, end = rows[0].end_ns, spans = 0;
    for (size_t i = 0; i < n; i++) {
        trace_pack_add(pack, &rows[i]);
        if (rows[i].start_ns < start) start = rows[i].start_ns;
        if (rows[i].end_ns > end) end = rows[i].end_ns;
        spans += rows[i].span_count;
    }
    sqlite3_stmt *s = store_stmt(c, ins);
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, rows[0].tenant_id);
    store_bind_text(s, 2, rows[0].user_id);
    sqlite3_bind_int64(s, 3, start);
    sqlite3_bind_int64(s, 4, end);
    sqlite3_bind_int64(s, 5, spans);
    const void *bytes;
    size_t len = trace_pack_seal(sealer, pack, &bytes);
    sqlite3_bind_blob(s, 6, bytes, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, window);
    sqlite3_bind_int64(s, 9, c->traces_seq + spans);
    store_status st = store_step_done(c, s, "insert trace pack");
    if (st == STORE_OK) c->traces_seq += spans;
    return st;
}

static store_status store_traces_write(store_conn *c, void *arg)
{
    const traces_batch *b = arg;
    store_status seq = store_traces_seq_load(c);
    if (seq != STORE_OK) return seq;
    trace_owners owners = {.n = 0};
    buf pack;
    buf_init(&pack);
    store_status res = STORE_OK;
    for (size_t i = 0, n; i < b->n && res == STORE_OK; i += n) {
        const trace_rec *r = &b->rows[i];
        if (!store_trace_row_valid(r)) { res = STORE_INVALID; break; }
        int64_t window = 0;
        n = store_trace_pack_run(b, i, &window);
        store_status alive = store_trace_owner_alive(c, &owners, r);
        if (alive == STORE_NOT_FOUND) continue;   /* all n are that owner's */
        if (alive != STORE_OK) { res = alive; break; }
        if (n > 1 && !c->trace_sealer) {
            c->trace_sealer = xmalloc(sizeof *c->trace_sealer);
            trace_pack_sealer_init(c->trace_sealer);
        }
        res = n > 1 ? store_trace_insert_pack(c, r, n, window, &pack, c->trace_sealer)
                    : store_trace_insert_one(c, r);
        thread_background_yield();   /* a tracer flush holds thousands of rows */
    }
    buf_free(&pack);
    if (res != STORE_OK) return res;
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

/* What a read gathers: the trace's records, each with where it sorts
 * (its start, then its row's seq, then its place in a pack). */
typedef struct trace_found {
    trace_rec *recs;
    int64_t *seq;
    uint32_t *place;
    size_t n, cap, spans;
} trace_found;

static trace_rec *trace_found_slot(trace_found *f, int64_t seq, uint32_t place)
{
    if (f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 4;
        trace_rec *nr = realloc(f->recs, ncap * sizeof *nr);
        if (!nr) return NULL;
        f->recs = nr;
        int64_t *ns = realloc(f->seq, ncap * sizeof *ns);
        if (!ns) return NULL;
        f->seq = ns;
        uint32_t *np = realloc(f->place, ncap * sizeof *np);
        if (!np) return NULL;
        f->place = np;
        f->cap = ncap;
    }
    f->seq[f->n] = seq;
    f->place[f->n] = place;
    trace_rec *r = &f->recs[f->n];
    memset(r, 0, sizeof *r);
    return r;
}

static int store_blob_copy(trace_rec *r, const void *blob, size_t len)
{
    r->blob = malloc(len > 0 ? len : 1);
    if (!r->blob) return -1;
    if (len > 0) memcpy(r->blob, blob, len);
    r->blob_len = len;
    return 0;
}

/* A row of the trace itself (found by its id). */
static int store_read_trace_row(sqlite3_stmt *s, trace_found *f, int64_t seq)
{
    trace_rec *r = trace_found_slot(f, seq, 0);
    if (!r) return -1;
    store_col_copy(s, 0, r->trace_id, sizeof r->trace_id);
    store_col_copy(s, 1, r->tenant_id, sizeof r->tenant_id);
    store_col_copy(s, 2, r->user_id, sizeof r->user_id);
    r->start_ns = sqlite3_column_int64(s, 3);
    r->end_ns = sqlite3_column_int64(s, 4);
    store_col_copy(s, 5, r->root_name, sizeof r->root_name);
    r->status = sqlite3_column_int(s, 6);
    int64_t cnt = sqlite3_column_int64(s, 7);
    r->span_count = cnt < 0 ? 0 : cnt > UINT32_MAX ? UINT32_MAX : (uint32_t)cnt;
    int len = sqlite3_column_bytes(s, 8);
    if (store_blob_copy(r, sqlite3_column_blob(s, 8), len > 0 ? (size_t)len : 0) != 0) return -1;
    f->n++;
    f->spans += r->span_count;
    return 0;
}

/* A pack of the id's window: its entries of that trace. 1 when it holds
 * any and is not the caller's (the trace is then hidden), -1 on a corrupt
 * pack or no memory. A corrupt pack fails the read (logged) rather than
 * being passed over: it might hold another owner's record of the trace,
 * which must hide it. */
static int store_read_trace_pack(sqlite3_stmt *s, const char *trace_id, bool mine, trace_found *f,
                                 int64_t seq)
{
    trace_pack_reader rd;
    if (trace_pack_open(&rd, sqlite3_column_blob(s, 8), (size_t)sqlite3_column_bytes(s, 8)) != 0) {
        log_error("store: the trace pack at seq %lld is corrupt; reads of its 10 ms window fail",
                  (long long)seq);
        return -1;
    }
    trace_rec e;
    int got, res = 0;
    uint32_t place = 0;
    while (res == 0 && (got = trace_pack_next(&rd, &e)) == 1) {
        place++;
        if (strcmp(e.trace_id, trace_id) != 0) continue;
        if (!mine) {
            res = 1;
            break;
        }
        /* Past the span bound nothing more is kept, but every pack is
         * still looked through: a foreign one must hide the trace. */
        if (f->spans >= STORE_TRACE_SPANS_MAX) continue;
        trace_rec *r = trace_found_slot(f, seq, place);
        if (!r) {
            res = -1;
            break;
        }
        *r = e;
        r->blob = NULL;
        store_col_copy(s, 1, r->tenant_id, sizeof r->tenant_id);
        store_col_copy(s, 2, r->user_id, sizeof r->user_id);
        if (store_blob_copy(r, e.blob, e.blob_len) != 0) {
            res = -1;
            break;
        }
        f->n++;
        f->spans += r->span_count;
    }
    trace_pack_close(&rd);
    if (res != 0) return res;
    if (got < 0)
        log_error("store: the trace pack at seq %lld is corrupt; reads of its 10 ms window fail",
                  (long long)seq);
    return got < 0 ? -1 : 0;
}

typedef struct trace_sort_key {
    int64_t start_ns, seq;
    uint32_t place;
    size_t at;
} trace_sort_key;

static int trace_sort_order(const void *pa, const void *pb)
{
    const trace_sort_key *a = pa, *b = pb;
    if (a->start_ns != b->start_ns) return a->start_ns < b->start_ns ? -1 : 1;
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    return (a->place > b->place) - (a->place < b->place);
}

/* The records by start, then as written. */
static trace_rec *trace_found_sorted(const trace_found *f)
{
    trace_sort_key *keys = malloc(f->n * sizeof *keys);
    trace_rec *out = malloc(f->n * sizeof *out);
    if (!keys || !out) {
        free(keys);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < f->n; i++)
        keys[i] = (trace_sort_key){f->recs[i].start_ns, f->seq[i], f->place[i], i};
    qsort(keys, f->n, sizeof *keys, trace_sort_order);
    for (size_t i = 0; i < f->n; i++) out[i] = f->recs[keys[i].at];
    free(keys);
    return out;
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
     * cannot disagree. `mine` is computed by SQLite per row. The trace's
     * own rows come by the id's index, the packs that may hold it by its
     * window's (trace_pack.h); `id_window <> 0` lets SQLite use that
     * partial index. */
    static const char sql[] =
        "SELECT trace_id, tenant_id, user_id, start_ns, end_ns, root_name, status, span_count,"
        " spans, (tenant_id = ?2 AND (?3 = '' OR user_id = ?3)) AS mine, id_window, seq"
        " FROM traces WHERE trace_id = ?1 OR (id_window = ?5 AND id_window <> 0) LIMIT ?4";
    sqlite3_stmt *s = store_stmt(c, sql);
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, trace_id);
    store_bind_text(s, 2, sc->tenant_id);
    store_bind_text(s, 3, user);
    sqlite3_bind_int(s, 4, STORE_TRACE_SPANS_MAX);   /* rows hold at least a span each */
    sqlite3_bind_int64(s, 5, trace_pack_window(trace_id));

    trace_found f = {0};
    store_status res = STORE_OK;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        bool mine = sqlite3_column_int(s, 9) != 0;
        int64_t seq = sqlite3_column_int64(s, 11);
        if (sqlite3_column_int64(s, 10) != 0) {
            int got = store_read_trace_pack(s, trace_id, mine, &f, seq);
            if (got < 0) { res = STORE_ERROR; break; }
            if (got > 0) { res = STORE_NOT_FOUND; break; }
            continue;
        }
        if (!mine) { res = STORE_NOT_FOUND; break; }
        /* Rows past the span bound are not read, but the scope check
         * goes on (up to the row bound): a foreign row further on must
         * still hide the trace. */
        if (f.spans >= STORE_TRACE_SPANS_MAX) continue;
        if (store_read_trace_row(s, &f, seq) != 0) { res = STORE_ERROR; break; }
    }
    if (res == STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        res = store_sqlite_status(c, rc, "read trace");
    sqlite3_reset(s);
    if (res == STORE_OK && f.n == 0) res = STORE_NOT_FOUND;
    trace_rec *sorted = res == STORE_OK ? trace_found_sorted(&f) : NULL;
    if (res == STORE_OK && !sorted) res = STORE_ERROR;
    free(f.seq);
    free(f.place);
    if (res != STORE_OK) {
        store_free_traces(f.recs, f.n);
        return res;
    }
    free(f.recs);
    *out = sorted;
    *n = f.n;
    return STORE_OK;
}
