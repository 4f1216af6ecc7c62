/* store_guard.c — the guard's decisions: rows written without waiting
 * (the writer's next batch, store_write_async), pruned by the retention
 * on each write, and read inside the scope: a user its own rows, a tenant
 * admin its tenant's, the server admin any tenant's. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct guard_insert_args {
    guard_decision_rec rec;
    guard_decision_retention keep;
    void (*done)(void *arg, store_status status);
    void *done_arg;
} guard_insert_args;

/* The tenant's rows past its bound, and every row past the age bound. */
static store_status guard_prune_in(store_conn *c, const char *tenant_id,
                                   const guard_decision_retention *keep, int64_t now,
                                   int64_t *deleted)
{
    if (keep->max_per_tenant > 0) {
        /* without a tenant: every tenant's, one statement per tenant */
        sqlite3_stmt *s = store_stmt(c,
            tenant_id ? "DELETE FROM guard_decisions WHERE tenant_id = ?1 AND id <="
                        " (SELECT id FROM guard_decisions WHERE tenant_id = ?1"
                        "  ORDER BY id DESC LIMIT 1 OFFSET ?2)"
                      : "DELETE FROM guard_decisions AS g WHERE id <="
                        " (SELECT id FROM guard_decisions WHERE tenant_id = g.tenant_id"
                        "  ORDER BY id DESC LIMIT 1 OFFSET ?2)");
        if (!s) return STORE_ERROR;
        if (tenant_id) store_bind_text(s, 1, tenant_id);
        sqlite3_bind_int64(s, 2, keep->max_per_tenant);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "prune guard decisions");
        if (deleted) *deleted += sqlite3_changes(c->db);
    }
    if (keep->max_age_s > 0) {
        sqlite3_stmt *s = store_stmt(c, "DELETE FROM guard_decisions WHERE created_at < ?");
        if (!s) return STORE_ERROR;
        sqlite3_bind_int64(s, 1, now - keep->max_age_s);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "prune guard decisions");
        if (deleted) *deleted += sqlite3_changes(c->db);
    }
    return STORE_OK;
}

static store_status guard_insert_op(store_conn *c, void *arg)
{
    guard_insert_args *a = arg;
    const guard_decision_rec *r = &a->rec;
    sqlite3_stmt *s = store_stmt(c,
        "INSERT INTO guard_decisions (tenant_id, user_id, session_id, run_id, channel, tool,"
        " detector, score, action, labels, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, r->tenant_id);
    store_bind_text(s, 2, r->user_id);
    store_bind_text(s, 3, r->session_id);
    store_bind_text(s, 4, r->run_id);
    store_bind_text(s, 5, r->channel);
    store_bind_text(s, 6, r->tool);
    store_bind_text(s, 7, r->detector);
    if (r->score >= 0) sqlite3_bind_double(s, 8, r->score);
    else sqlite3_bind_null(s, 8);
    store_bind_text(s, 9, r->action);
    store_bind_text(s, 10, r->labels[0] ? r->labels : "[]");
    sqlite3_bind_int64(s, 11, r->created_at);
    store_status st = store_step_done(c, s, "insert guard decision");
    if (st != STORE_OK) return st;
    /* The count bound reads past the tenant's newest max_per_tenant rows
     * (an index walk of that length), so it runs every max/100 rows
     * written, at most every 1000: a tenant holds at most ~1% more for a
     * moment. The age bound is one index probe: every row. */
    guard_decision_retention keep = a->keep;
    int64_t every = keep.max_per_tenant / 100;
    if (every < 1) every = 1;
    if (every > 1000) every = 1000;
    if (sqlite3_last_insert_rowid(c->db) % every != 0) keep.max_per_tenant = 0;
    return guard_prune_in(c, r->tenant_id, &keep, r->created_at, NULL);
}

static void guard_insert_done(void *arg, store_status status)
{
    guard_insert_args *a = arg;
    if (a->done) a->done(a->done_arg, status);
    free(a);
}

store_status store_guard_decision_record(store *st, const guard_decision_rec *r,
                                         const guard_decision_retention *keep,
                                         void (*done)(void *arg, store_status status), void *arg)
{
    STORE_PG_DISPATCH(st, store_pg_guard_decision_record(st, r, keep, done, arg));
    if (!r || !r->tenant_id[0]) {
        store_audit_detach(st);
        return STORE_INVALID;
    }
    guard_insert_args *a = malloc(sizeof *a);
    if (!a) {
        store_audit_detach(st);
        return STORE_ERROR;
    }
    a->rec = *r;
    a->keep = keep ? *keep : (guard_decision_retention){0};
    a->done = done;
    a->done_arg = arg;
    store_status res = store_write_async(st, guard_insert_op, a, guard_insert_done, a);
    if (res != STORE_OK) free(a);
    return res;
}

typedef struct guard_prune_args {
    const guard_decision_retention *keep;
    int64_t now, deleted;
} guard_prune_args;

static store_status guard_prune_op(store_conn *c, void *arg)
{
    guard_prune_args *a = arg;
    a->deleted = 0;
    return guard_prune_in(c, NULL, a->keep, a->now, &a->deleted);
}

store_status store_guard_decisions_prune(store *st, const guard_decision_retention *keep,
                                         int64_t now, int64_t *deleted)
{
    STORE_PG_DISPATCH(st, store_pg_guard_decisions_prune(st, keep, now, deleted));
    guard_prune_args a = {keep, now, 0};
    store_status r = store_write(st, guard_prune_op, &a);
    if (deleted) *deleted = r == STORE_OK ? a.deleted : 0;
    return r;
}

/* ---- reading, inside the scope ---- */

/* The tenant and user a scope may read: a user itself, a tenant admin its
 * tenant (any user, or the one asked for), the server admin any. */
static store_status guard_scope_filter(const scope *sc, const guard_decision_query *q,
                                       const char **tenant, const char **user)
{
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (!q || q->from < 0 || q->to < 0 || q->before < 0) return STORE_INVALID;
    switch (sc->role) {
    case SCOPE_USER: *tenant = sc->tenant_id; *user = sc->user_id; break;
    case SCOPE_TENANT_ADMIN: *tenant = sc->tenant_id; *user = q->user_id; break;
    case SCOPE_SERVER_ADMIN: *tenant = q->tenant_id; *user = q->user_id; break;
    default: return STORE_FORBIDDEN;
    }
    return STORE_OK;
}

#define GUARD_WHERE " WHERE (?1 IS NULL OR tenant_id = ?1) AND (?2 IS NULL OR user_id = ?2)" \
                    " AND (?3 = 0 OR created_at >= ?3) AND (?4 = 0 OR created_at < ?4)"

static int guard_read_row(sqlite3_stmt *s, void *rec)
{
    guard_decision_rec *r = rec;
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(s, 0);
    r->created_at = sqlite3_column_int64(s, 1);
    store_col_copy(s, 2, r->tenant_id, sizeof r->tenant_id);
    store_col_copy(s, 3, r->user_id, sizeof r->user_id);
    store_col_copy(s, 4, r->session_id, sizeof r->session_id);
    store_col_copy(s, 5, r->run_id, sizeof r->run_id);
    store_col_copy(s, 6, r->channel, sizeof r->channel);
    store_col_copy(s, 7, r->tool, sizeof r->tool);
    store_col_copy(s, 8, r->detector, sizeof r->detector);
    r->score = sqlite3_column_type(s, 9) == SQLITE_NULL ? -1 : sqlite3_column_double(s, 9);
    store_col_copy(s, 10, r->action, sizeof r->action);
    store_col_copy(s, 11, r->labels, sizeof r->labels);
    return 0;
}

static const store_rows guard_rows = {sizeof(guard_decision_rec), guard_read_row, NULL,
                                      "guard decisions"};

store_status store_guard_decisions_list(store *st, const scope *sc, const guard_decision_query *q,
                                        guard_decision_rec **out, size_t *n, bool *has_more)
{
    STORE_PG_DISPATCH(st, store_pg_guard_decisions_list(store_pg_of(st), sc, q, out, n, has_more));
    *out = NULL;
    *n = 0;
    if (has_more) *has_more = false;
    const char *tenant = NULL, *user = NULL;
    store_status r = guard_scope_filter(sc, q, &tenant, &user);
    if (r != STORE_OK) return r;
    if (q->limit == 0 || q->limit > 1000) return STORE_INVALID;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c,
        "SELECT id, created_at, tenant_id, user_id, session_id, run_id, channel, tool, detector,"
        " score, action, labels FROM guard_decisions" GUARD_WHERE
        " AND (?5 IS NULL OR run_id = ?5) AND (?6 IS NULL OR action = ?6)"
        " AND (?7 IS NULL OR channel = ?7) AND (?8 = 0 OR id < ?8)"
        " ORDER BY id DESC LIMIT ?9");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, tenant);
    store_bind_text(s, 2, user);
    sqlite3_bind_int64(s, 3, q->from);
    sqlite3_bind_int64(s, 4, q->to);
    store_bind_text(s, 5, q->run_id);
    store_bind_text(s, 6, q->action);
    store_bind_text(s, 7, q->channel);
    sqlite3_bind_int64(s, 8, q->before);
    sqlite3_bind_int64(s, 9, (int64_t)q->limit + 1);   /* one more: is there a next page? */
    void *arr;
    r = store_collect(c, s, &guard_rows, q->limit + 1, &arr, n);
    *out = arr;
    if (r == STORE_OK && *n > q->limit) {
        *n = q->limit;
        if (has_more) *has_more = true;
    }
    return r;
}

static int guard_read_count(sqlite3_stmt *s, void *rec)
{
    guard_decision_count *g = rec;
    memset(g, 0, sizeof *g);
    store_col_copy(s, 0, g->detector, sizeof g->detector);
    store_col_copy(s, 1, g->action, sizeof g->action);
    store_col_copy(s, 2, g->channel, sizeof g->channel);
    store_col_copy(s, 3, g->day, sizeof g->day);
    g->count = sqlite3_column_int64(s, 4);
    return 0;
}

static const store_rows guard_counts = {sizeof(guard_decision_count), guard_read_count, NULL,
                                        "guard decision counts"};

store_status store_guard_decisions_summary(store *st, const scope *sc,
                                           const guard_decision_query *q,
                                           guard_decision_count **out, size_t *n, bool *truncated)
{
    STORE_PG_DISPATCH(st, store_pg_guard_decisions_summary(store_pg_of(st), sc, q, out, n, truncated));
    *out = NULL;
    *n = 0;
    if (truncated) *truncated = false;
    const char *tenant = NULL, *user = NULL;
    store_status r = guard_scope_filter(sc, q, &tenant, &user);
    if (r != STORE_OK) return r;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c,
        "SELECT detector, action, channel, strftime('%Y-%m-%d', created_at, 'unixepoch') AS day,"
        " count(*) FROM guard_decisions" GUARD_WHERE
        " GROUP BY detector, action, channel, day ORDER BY day, detector, action, channel"
        " LIMIT ?5");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, tenant);
    store_bind_text(s, 2, user);
    sqlite3_bind_int64(s, 3, q->from);
    sqlite3_bind_int64(s, 4, q->to);
    sqlite3_bind_int64(s, 5, GUARD_DECISION_COUNTS_MAX + 1);
    void *arr;
    r = store_collect(c, s, &guard_counts, GUARD_DECISION_COUNTS_MAX + 1, &arr, n);
    *out = arr;
    if (r == STORE_OK && *n > GUARD_DECISION_COUNTS_MAX) {
        *n = GUARD_DECISION_COUNTS_MAX;
        if (truncated) *truncated = true;
    }
    return r;
}
