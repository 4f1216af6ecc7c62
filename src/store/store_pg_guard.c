/* store_pg_guard.c — the guard's decisions on PostgreSQL (the same
 * contracts as store_guard.c): rows written without waiting (the writer
 * thread's queue, pg_write_async), pruned by the retention on each write,
 * and read inside the scope. */
#include "store/store_internal.h"
#include "store/store_pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct insert_args {
    guard_decision_rec rec;
    guard_decision_retention keep;
    void (*done)(void *arg, store_status status);
    void *done_arg;
} insert_args;

static store_status prune_in(PGconn *c, const char *tenant_id, const guard_decision_retention *keep, int64_t now,
                             int64_t *deleted)
{
    store_status st;
    if (keep->max_per_tenant > 0) {
        char max[PG_I64_MAX];
        const char *p[2] = {tenant_id, pg_num(max, keep->max_per_tenant)};
        int64_t n = pg_run_count(c,
            "DELETE FROM guard_decisions AS g WHERE ($1::text IS NULL OR g.tenant_id = $1) AND id <="
            " (SELECT id FROM guard_decisions WHERE tenant_id = g.tenant_id ORDER BY id DESC LIMIT 1 OFFSET $2)",
            2, p, &st, "prune guard decisions");
        if (n < 0) return st;
        if (deleted) *deleted += n;
    }
    if (keep->max_age_s > 0) {
        char before[PG_I64_MAX];
        const char *p[1] = {pg_num(before, now - keep->max_age_s)};
        int64_t n = pg_run_count(c, "DELETE FROM guard_decisions WHERE created_at < $1", 1, p, &st,
                                 "prune guard decisions");
        if (n < 0) return st;
        if (deleted) *deleted += n;
    }
    return STORE_OK;
}

static store_status insert_op(PGconn *c, void *arg)
{
    insert_args *a = arg;
    const guard_decision_rec *r = &a->rec;
    char score[64], at[PG_I64_MAX];
    if (r->score >= 0) snprintf(score, sizeof score, "%.17g", r->score);
    const char *p[11] = {r->tenant_id, r->user_id, r->session_id, r->run_id, r->channel, r->tool, r->detector,
                         r->score >= 0 ? score : NULL, r->action, r->labels[0] ? r->labels : "[]",
                         pg_num(at, r->created_at)};
    store_status st;
    PGresult *res = pg_exec(c, "INSERT INTO guard_decisions (tenant_id, user_id, session_id, run_id, channel, tool,"
                               " detector, score, action, labels, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"
                               " RETURNING id", 11, p, &st, "insert guard decision");
    if (!res) return st;
    int64_t id = pg_i64(res, 0, 0);
    PQclear(res);
    /* the count bound every max/100 rows (at most every 1000), the age bound every row */
    guard_decision_retention keep = a->keep;
    int64_t every = keep.max_per_tenant / 100;
    if (every < 1) every = 1;
    if (every > 1000) every = 1000;
    if (id % every != 0) keep.max_per_tenant = 0;
    return prune_in(c, r->tenant_id, &keep, r->created_at, NULL);
}

static void insert_done(void *arg, store_status status)
{
    insert_args *a = arg;
    if (a->done) a->done(a->done_arg, status);
    free(a);
}

store_status store_pg_guard_decision_record(store *st, const guard_decision_rec *r,
                                            const guard_decision_retention *keep,
                                            void (*done)(void *arg, store_status status), void *arg)
{
    if (!r || !r->tenant_id[0]) {
        store_audit_detach(st);
        return STORE_INVALID;
    }
    insert_args *a = malloc(sizeof *a);
    if (!a) {
        store_audit_detach(st);
        return STORE_ERROR;
    }
    a->rec = *r;
    a->keep = keep ? *keep : (guard_decision_retention){0};
    a->done = done;
    a->done_arg = arg;
    store_status res = pg_write_async(st, insert_op, a, insert_done, a);
    if (res != STORE_OK) free(a);
    return res;
}

typedef struct prune_args { const guard_decision_retention *keep; int64_t now, deleted; } prune_args;

static store_status prune_op(PGconn *c, void *arg)
{
    prune_args *a = arg;
    a->deleted = 0;
    return prune_in(c, NULL, a->keep, a->now, &a->deleted);
}

store_status store_pg_guard_decisions_prune(store *st, const guard_decision_retention *keep, int64_t now,
                                            int64_t *deleted)
{
    prune_args a = {keep, now, 0};
    store_status r = pg_write(st, prune_op, &a);
    if (deleted) *deleted = r == STORE_OK ? a.deleted : 0;
    return r;
}

static store_status scope_filter(const scope *sc, const guard_decision_query *q, const char **tenant,
                                 const char **user)
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

#define GUARD_WHERE " WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR user_id = $2)" \
                    " AND ($3::bigint = 0 OR created_at >= $3) AND ($4::bigint = 0 OR created_at < $4)"

store_status store_pg_guard_decisions_list(struct pg_store *p, const scope *sc, const guard_decision_query *q,
                                           guard_decision_rec **out, size_t *n, bool *has_more)
{
    *out = NULL;
    *n = 0;
    if (has_more) *has_more = false;
    const char *tenant = NULL, *user = NULL;
    store_status st = scope_filter(sc, q, &tenant, &user);
    if (st != STORE_OK) return st;
    if (q->limit == 0 || q->limit > 1000) return STORE_INVALID;
    char v[4][PG_I64_MAX];
    const char *params[9] = {tenant, user, pg_num(v[0], q->from), pg_num(v[1], q->to), q->run_id, q->action,
                             q->channel, pg_num(v[2], q->before), pg_num(v[3], (int64_t)q->limit + 1)};
    PGresult *r = pg_read(p, "SELECT id, created_at, tenant_id, user_id, session_id, run_id, channel, tool, detector,"
                             " score, action, labels FROM guard_decisions" GUARD_WHERE
                             " AND ($5::text IS NULL OR run_id = $5) AND ($6::text IS NULL OR action = $6)"
                             " AND ($7::text IS NULL OR channel = $7) AND ($8::bigint = 0 OR id < $8)"
                             " ORDER BY id DESC LIMIT $9", 9, params, &st, "guard decisions");
    if (!r) return st;
    int rows = PQntuples(r);
    guard_decision_rec *arr = calloc(q->limit + 1, sizeof *arr);
    if (!arr) { PQclear(r); return STORE_ERROR; }
    for (int i = 0; i < rows; i++) {
        guard_decision_rec *g = &arr[i];
        g->id = pg_i64(r, i, 0);
        g->created_at = pg_i64(r, i, 1);
        pg_copy(r, i, 2, g->tenant_id, sizeof g->tenant_id);
        pg_copy(r, i, 3, g->user_id, sizeof g->user_id);
        pg_copy(r, i, 4, g->session_id, sizeof g->session_id);
        pg_copy(r, i, 5, g->run_id, sizeof g->run_id);
        pg_copy(r, i, 6, g->channel, sizeof g->channel);
        pg_copy(r, i, 7, g->tool, sizeof g->tool);
        pg_copy(r, i, 8, g->detector, sizeof g->detector);
        g->score = PQgetisnull(r, i, 9) ? -1 : strtod(PQgetvalue(r, i, 9), NULL);
        pg_copy(r, i, 10, g->action, sizeof g->action);
        pg_copy(r, i, 11, g->labels, sizeof g->labels);
    }
    PQclear(r);
    *out = arr;
    *n = (size_t)rows;
    if (*n > q->limit) {
        *n = q->limit;
        if (has_more) *has_more = true;
    }
    return STORE_OK;
}

store_status store_pg_guard_decisions_summary(struct pg_store *p, const scope *sc, const guard_decision_query *q,
                                              guard_decision_count **out, size_t *n, bool *truncated)
{
    *out = NULL;
    *n = 0;
    if (truncated) *truncated = false;
    const char *tenant = NULL, *user = NULL;
    store_status st = scope_filter(sc, q, &tenant, &user);
    if (st != STORE_OK) return st;
    char v[3][PG_I64_MAX];
    const char *params[5] = {tenant, user, pg_num(v[0], q->from), pg_num(v[1], q->to),
                             pg_num(v[2], GUARD_DECISION_COUNTS_MAX + 1)};
    PGresult *r = pg_read(p, "SELECT detector, action, channel,"
                             " to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*)"
                             " FROM guard_decisions" GUARD_WHERE
                             " GROUP BY detector, action, channel, day"
                             " ORDER BY day, detector COLLATE \"C\", action COLLATE \"C\", channel COLLATE \"C\" LIMIT $5",
                          5, params, &st, "guard decision counts");
    if (!r) return st;
    int rows = PQntuples(r);
    if (rows > 0) {
        guard_decision_count *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(r); return STORE_ERROR; }
        for (int i = 0; i < rows; i++) {
            pg_copy(r, i, 0, arr[i].detector, sizeof arr[i].detector);
            pg_copy(r, i, 1, arr[i].action, sizeof arr[i].action);
            pg_copy(r, i, 2, arr[i].channel, sizeof arr[i].channel);
            pg_copy(r, i, 3, arr[i].day, sizeof arr[i].day);
            arr[i].count = pg_i64(r, i, 4);
        }
        *out = arr;
        *n = (size_t)rows;
    }
    PQclear(r);
    if (*n > GUARD_DECISION_COUNTS_MAX) {
        *n = GUARD_DECISION_COUNTS_MAX;
        if (truncated) *truncated = true;
    }
    return STORE_OK;
}
