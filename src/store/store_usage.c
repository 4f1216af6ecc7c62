/* store_usage.c — reading the usage ledger.
 *
 * Rows are written by the writer in batches (store_writer.c); this file
 * answers "how much, grouped by day / model / user" and "how much did this
 * user spend", always inside the scope: a tenant admin sees its tenant
 * (optionally one user), a user only itself, the server admin nothing. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdlib.h>

#include <string.h>

#define USAGE_WHERE " FROM usage WHERE tenant_id = ?1 AND (?2 IS NULL OR user_id = ?2)" \
                    " AND (?3 = 0 OR ts >= ?3) AND (?4 = 0 OR ts < ?4)"
#define USAGE_SUMS  " count(*), sum(input_tokens), sum(output_tokens), sum(cost_nusd)"

/* One statement per grouping: the group expression cannot be a parameter. */
static const char *const usage_sql[] = {
    [USAGE_GROUP_DAY]   = "SELECT strftime('%Y-%m-%d', ts, 'unixepoch') AS g," USAGE_SUMS USAGE_WHERE
                          " GROUP BY g ORDER BY g",
    [USAGE_GROUP_MODEL] = "SELECT model AS g," USAGE_SUMS USAGE_WHERE " GROUP BY g ORDER BY g",
    [USAGE_GROUP_USER]  = "SELECT user_id AS g," USAGE_SUMS USAGE_WHERE " GROUP BY g ORDER BY g",
};

static int store_usage_row(sqlite3_stmt *s, void *rec)
{
    usage_row *row = rec;
    memset(row, 0, sizeof *row);
    store_col_copy(s, 0, row->group, sizeof row->group);
    row->requests = sqlite3_column_int64(s, 1);
    row->input_tokens = sqlite3_column_int64(s, 2);
    row->output_tokens = sqlite3_column_int64(s, 3);
    row->cost_nusd = sqlite3_column_int64(s, 4);
    return 0;
}

static const store_rows usage_rows = {sizeof(usage_row), store_usage_row, NULL, "usage query"};

/* The user filter a scope is allowed: users always see themselves only. */
static store_status usage_filter(const scope *sc, const char *requested, const char **user)
{
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    *user = sc->role == SCOPE_USER ? sc->user_id : requested;
    return STORE_OK;
}

store_status store_usage_query(store *st, const scope *sc, const usage_query *q,
                               usage_row **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_usage_query(store_pg_of(st), sc, q, out, n));
    *out = NULL;
    *n = 0;
    const char *user = NULL;
    store_status r = usage_filter(sc, q ? q->user_id : NULL, &user);
    if (r != STORE_OK) return r;
    if (!q || q->group_by < USAGE_GROUP_DAY || q->group_by > USAGE_GROUP_USER ||
        q->from < 0 || q->to < 0)
        return STORE_INVALID;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, usage_sql[q->group_by]);
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, sc->tenant_id);
    store_bind_text(s, 2, user);
    sqlite3_bind_int64(s, 3, q->from);
    sqlite3_bind_int64(s, 4, q->to);
    void *arr;
    store_status res = store_collect(c, s, &usage_rows, 0, &arr, n);
    *out = arr;
    return res;
}

store_status store_usage_spent(store *st, const scope *sc, int64_t from, int64_t to,
                               int64_t *cost_nusd)
{
    STORE_PG_DISPATCH(st, store_pg_usage_spent(store_pg_of(st), sc, from, to, cost_nusd));
    *cost_nusd = 0;
    const char *user = NULL;
    store_status r = usage_filter(sc, NULL, &user);
    if (r != STORE_OK) return r;
    if (from < 0 || to < 0) return STORE_INVALID;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT coalesce(sum(cost_nusd), 0)" USAGE_WHERE);
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, sc->tenant_id);
    store_bind_text(s, 2, user);
    sqlite3_bind_int64(s, 3, from);
    sqlite3_bind_int64(s, 4, to);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *cost_nusd = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(c, rc, "usage spent");
}

/* ---- the ledger at start (reconciliation, governance rebuild) ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

store_status store_usage_reservations_committed(store *st, int64_t since, const uint64_t *ids, size_t n,
                                                bool *committed)
{
    STORE_PG_DISPATCH(st, store_pg_usage_reservations_committed(store_pg_of(st), since, ids, n, committed));
    for (size_t i = 0; i < n; i++) committed[i] = false;
    if (!n) return STORE_OK;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    /* The open reservations are few (calls in flight at a crash) and the
     * rows since the oldest of them are few too: read those rows' ids
     * (through usage_ts) and look each up in the sorted set. */
    uint64_t *sorted = malloc(n * sizeof *sorted);
    if (!sorted) return STORE_ERROR;
    memcpy(sorted, ids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u64);
    bool *seen = calloc(n, sizeof *seen);
    sqlite3_stmt *s = seen ? store_stmt(c, "SELECT reservation FROM usage WHERE ts >= ? AND reservation != 0") : NULL;
    if (!s) {
        free(sorted);
        free(seen);
        return STORE_ERROR;
    }
    sqlite3_bind_int64(s, 1, since);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t r = (uint64_t)sqlite3_column_int64(s, 0);
        uint64_t *hit = bsearch(&r, sorted, n, sizeof *sorted, cmp_u64);
        if (hit) seen[hit - sorted] = true;
    }
    sqlite3_reset(s);
    for (size_t i = 0; i < n; i++) {
        uint64_t *hit = bsearch(&ids[i], sorted, n, sizeof *sorted, cmp_u64);
        committed[i] = hit && seen[hit - sorted];
    }
    free(sorted);
    free(seen);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(c, rc, "usage reservations");
}


store_status store_usage_ledger(store *st, int64_t from,
                                void (*fn)(const char *tenant_id, const char *user_id,
                                           const char *key_id, int64_t ts, int64_t cost_nusd,
                                           void *arg),
                                void *arg)
{
    STORE_PG_DISPATCH(st, store_pg_usage_ledger(store_pg_of(st), from, fn, arg));
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    /* One row per (tenant, user, key, UTC day): a month of traffic folds
     * into a few rows per subject, so the rebuild stays fast. */
    sqlite3_stmt *s = store_stmt(c,
        "SELECT tenant_id, user_id, key_id, (ts / 86400) * 86400, sum(cost_nusd) FROM usage"
        " WHERE ts >= ? GROUP BY 1, 2, 3, 4");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, from);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        const char *u = (const char *)sqlite3_column_text(s, 1);
        const char *k = (const char *)sqlite3_column_text(s, 2);
        fn(t ? t : "", u ? u : "", k ? k : "", sqlite3_column_int64(s, 3),
           sqlite3_column_int64(s, 4), arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(c, rc, "usage ledger");
}
