/* store_pg_approvals.c — runs paused for a person or a credential, and
 * their approvals, on PostgreSQL (the same contracts as store_approvals.c:
 * a pause is stored whole in one transaction; going on takes the wait row
 * once; a decision changes a pending approval once).
 *
 * Across instances: a pause that asks for approvals locks the tenant's row
 * before it counts the pending ones, so two instances cannot both pass the
 * bounds; a decision locks the approval's row (the second decider finds it
 * decided: STORE_CONFLICT); going on deletes the wait row and only the
 * transaction whose DELETE removed it goes on; the deadline sweeper skips
 * rows another instance's sweeper holds (SKIP LOCKED). */
#include "store/store_pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"
#include "util/utf8.h"

#define APPROVAL_COLS "run_id, id, tenant_id, user_id, session_id, tool, arguments, reason," \
    " approval_by, status, decided_by, note, deadline, created_at, decided_at"
#define WAIT_COLS "run_id, tenant_id, user_id, session_id, key_id, kind, pending, provider, connect_url, deadline"

static char *dup_or_null(const PGresult *r, int i, int col, bool empty_is_null, bool *oom)
{
    if (PQgetisnull(r, i, col)) return NULL;
    const char *v = PQgetvalue(r, i, col);
    if (empty_is_null && !v[0]) return NULL;
    char *d = strdup(v);
    if (!d) *oom = true;
    return d;
}

static int read_approval(const PGresult *r, int i, approval_rec *a)
{
    memset(a, 0, sizeof *a);
    pg_copy(r, i, 0, a->run_id, sizeof a->run_id);
    pg_copy(r, i, 1, a->call_id, sizeof a->call_id);
    pg_copy(r, i, 2, a->tenant_id, sizeof a->tenant_id);
    pg_copy(r, i, 3, a->user_id, sizeof a->user_id);
    pg_copy(r, i, 4, a->session_id, sizeof a->session_id);
    pg_copy(r, i, 5, a->tool, sizeof a->tool);
    pg_copy(r, i, 7, a->reason, sizeof a->reason);
    a->approval_by = (int)pg_i64(r, i, 8);
    a->status = (approval_status)pg_i64(r, i, 9);
    pg_copy(r, i, 10, a->decided_by, sizeof a->decided_by);
    a->deadline = pg_i64(r, i, 12);
    a->created_at = pg_i64(r, i, 13);
    a->decided_at = pg_i64(r, i, 14);
    bool oom = false;
    a->arguments = dup_or_null(r, i, 6, false, &oom);
    a->note = dup_or_null(r, i, 11, true, &oom);
    if (oom) { approval_rec_free(a); return -1; }
    return 0;
}

static int read_wait(const PGresult *r, int i, run_wait_rec *w)
{
    memset(w, 0, sizeof *w);
    pg_copy(r, i, 0, w->run_id, sizeof w->run_id);
    pg_copy(r, i, 1, w->tenant_id, sizeof w->tenant_id);
    pg_copy(r, i, 2, w->user_id, sizeof w->user_id);
    pg_copy(r, i, 3, w->session_id, sizeof w->session_id);
    pg_copy(r, i, 4, w->key_id, sizeof w->key_id);
    w->kind = (run_status)pg_i64(r, i, 5);
    pg_copy(r, i, 7, w->provider, sizeof w->provider);
    w->deadline = pg_i64(r, i, 9);
    bool oom = false;
    w->pending = dup_or_null(r, i, 6, false, &oom);
    w->connect_url = dup_or_null(r, i, 8, true, &oom);
    if (oom) { run_wait_rec_free(w); return -1; }
    return 0;
}

static store_status collect_approvals(PGresult *r, approval_rec **out, size_t *n)
{
    int rows = PQntuples(r);
    if (rows > 0) {
        approval_rec *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(r); return STORE_ERROR; }
        for (int i = 0; i < rows; i++)
            if (read_approval(r, i, &arr[i]) != 0) { store_free_approvals(arr, (size_t)i); PQclear(r); return STORE_ERROR; }
        *out = arr;
        *n = (size_t)rows;
    }
    PQclear(r);
    return STORE_OK;
}

static store_status collect_waits(PGresult *r, run_wait_rec **out, size_t *n)
{
    int rows = PQntuples(r);
    if (rows > 0) {
        run_wait_rec *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(r); return STORE_ERROR; }
        for (int i = 0; i < rows; i++)
            if (read_wait(r, i, &arr[i]) != 0) { store_free_run_waits(arr, (size_t)i); PQclear(r); return STORE_ERROR; }
        *out = arr;
        *n = (size_t)rows;
    }
    PQclear(r);
    return STORE_OK;
}

/* ---- pause ---- */

typedef struct pause_args {
    const scope *sc;
    const run_rec *run;
    const run_wait_rec *w;
    const approval_rec *a;
    size_t n;
    int64_t now;
} pause_args;

static store_status pending_count(PGconn *c, const char *tenant_id, const char *user_id, int64_t *count)
{
    const char *p[2] = {tenant_id, user_id};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT count(*) FROM approvals WHERE tenant_id = $1"
                             " AND ($2::text IS NULL OR user_id = $2) AND status = 0", 2, p, &st,
                          "count approvals");
    if (!r) return st;
    *count = pg_i64(r, 0, 0);
    PQclear(r);
    return STORE_OK;
}

static store_status pause_op(PGconn *c, void *arg)
{
    pause_args *p = arg;
    store_status st;
    if (p->n) {
        const char *tp[1] = {p->sc->tenant_id};
        PGresult *r = pg_exec(c, "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE", 1, tp, &st, "lock tenant");
        if (!r) return st;
        PQclear(r);
        int64_t mine = 0, tenant = 0;
        st = pending_count(c, p->sc->tenant_id, p->sc->user_id, &mine);
        if (st == STORE_OK) st = pending_count(c, p->sc->tenant_id, NULL, &tenant);
        if (st != STORE_OK) return st;
        if (mine + (int64_t)p->n > STORE_APPROVALS_PENDING_PER_USER ||
            tenant + (int64_t)p->n > STORE_APPROVALS_PENDING_PER_TENANT)
            return STORE_QUOTA;
    }
    char v[8][PG_I64_MAX];
    const char *up[9] = {pg_num(v[0], p->w->kind), pg_num(v[1], p->run->input_tokens),
                         pg_num(v[2], p->run->output_tokens), pg_num(v[3], p->run->cost_nusd),
                         pg_num(v[4], p->run->steps), pg_num(v[5], p->run->tool_calls), p->run->id, p->sc->user_id,
                         p->sc->tenant_id};
    int64_t changed = pg_run_count(c, "UPDATE runs SET status = $1, input_tokens = $2, output_tokens = $3,"
                                      " cost_nusd = $4, steps = $5, tool_calls = $6"
                                      " WHERE id = $7 AND user_id = $8 AND tenant_id = $9 AND status = 2",
                                   9, up, &st, "pause run");
    if (changed < 0) return st;
    if (changed != 1) return STORE_CONFLICT;   /* not this scope's running run */
    /* never the connect_url: it holds the flow's one-time start ticket */
    const char *wp[11] = {p->run->id, p->sc->tenant_id, p->sc->user_id, p->run->session_id, p->sc->key_id,
                          v[0], p->w->pending, p->w->provider, "", pg_num(v[6], p->w->deadline),
                          pg_num(v[7], p->now)};
    st = pg_run(c, "INSERT INTO run_waits (" WAIT_COLS ", created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                11, wp, "insert run wait");
    if (st != STORE_OK) return st;
    for (size_t i = 0; i < p->n; i++) {
        const approval_rec *a = &p->a[i];
        /* an earlier, decided approval of a reused call id gives way */
        const char *dp[2] = {p->run->id, a->call_id};
        if ((st = pg_run(c, "DELETE FROM approvals WHERE run_id = $1 AND id = $2 AND status != 0", 2, dp,
                         "replace approval")) != STORE_OK)
            return st;
        char by[PG_I64_MAX], dl[PG_I64_MAX];
        const char *ap[11] = {p->run->id, a->call_id, p->sc->tenant_id, p->sc->user_id, p->run->session_id,
                              a->tool, a->arguments ? a->arguments : "{}", a->reason, pg_num(by, a->approval_by),
                              pg_num(dl, a->deadline), v[7]};
        if ((st = pg_run(c, "INSERT INTO approvals (run_id, id, tenant_id, user_id, session_id, tool, arguments,"
                            " reason, approval_by, deadline, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                         11, ap, "insert approval")) != STORE_OK)
            return st;
    }
    return STORE_OK;
}

store_status store_pg_run_pause(store *st, const scope *sc, const run_rec *run, const run_wait_rec *w,
                                const approval_rec *approvals, size_t n)
{
    if (!scope_valid(sc) || !run || !w) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if ((w->kind != RUN_WAITING_APPROVAL && w->kind != RUN_WAITING_AUTH) || !w->pending || (n && !approvals) ||
        (w->kind == RUN_WAITING_APPROVAL && n == 0))
        return STORE_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!utf8_valid(approvals[i].call_id, strlen(approvals[i].call_id)) ||
            !utf8_valid(approvals[i].tool, strlen(approvals[i].tool)) ||
            (approvals[i].arguments && !utf8_valid(approvals[i].arguments, strlen(approvals[i].arguments))))
            return STORE_INVALID;
    pause_args p = {sc, run, w, approvals, n, time_now_unix()};
    return pg_write(st, pause_op, &p);
}

/* ---- go on ---- */

typedef struct unpause_args { const scope *sc; const char *run_id; run_wait_rec *out; } unpause_args;

static store_status unpause_op(PGconn *c, void *arg)
{
    unpause_args *u = arg;
    const char *p[3] = {u->run_id, u->sc->user_id, u->sc->tenant_id};
    store_status st;
    /* taken: read and deleted at once, so one taker wins */
    PGresult *r = pg_exec(c, "DELETE FROM run_waits WHERE run_id = $1 AND user_id = $2 AND tenant_id = $3"
                             " RETURNING " WAIT_COLS, 3, p, &st, "take run wait");
    if (!r) return st;
    if (PQntuples(r) != 1) { PQclear(r); return STORE_NOT_FOUND; }
    int bad = read_wait(r, 0, u->out);
    PQclear(r);
    if (bad) return STORE_ERROR;
    const char *rp[1] = {u->run_id};
    int64_t n = pg_run_count(c, "UPDATE runs SET status = 2 WHERE id = $1 AND status IN (3, 8)", 1, rp, &st,
                             "resume run");
    if (n < 0) return st;
    return n == 1 ? STORE_OK : STORE_CONFLICT;
}

store_status store_pg_run_unpause(store *st, const scope *sc, const char *run_id, run_wait_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !run_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    unpause_args u = {sc, run_id, out};
    store_status res = pg_write(st, unpause_op, &u);
    if (res != STORE_OK) run_wait_rec_free(out);
    return res;
}

store_status store_pg_run_waits_all(struct pg_store *p, run_wait_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    store_status st;
    PGresult *r = pg_read(p, "SELECT " WAIT_COLS " FROM run_waits ORDER BY created_at", 0, NULL, &st, "run waits");
    if (!r) return st;
    return collect_waits(r, out, n);
}

store_status store_pg_run_wait_of(struct pg_store *p, const scope *sc, const char *run_id, run_wait_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!sc || !sc->tenant_id[0] || !sc->user_id[0] || !run_id) return STORE_NOT_FOUND;
    const char *params[3] = {run_id, sc->tenant_id, sc->user_id};
    store_status st;
    PGresult *r = pg_read(p, "SELECT " WAIT_COLS " FROM run_waits WHERE run_id = $1 AND tenant_id = $2"
                             " AND user_id = $3", 3, params, &st, "run wait");
    if (!r) return st;
    st = PQntuples(r) == 1 ? (read_wait(r, 0, out) == 0 ? STORE_OK : STORE_ERROR) : STORE_NOT_FOUND;
    PQclear(r);
    return st;
}

/* ---- read ---- */

store_status store_pg_approvals_of_run(struct pg_store *p, const char *tenant_id, const char *user_id,
                                       const char *run_id, approval_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!tenant_id || !tenant_id[0] || !run_id) return STORE_NOT_FOUND;
    const char *params[3] = {run_id, tenant_id, user_id};
    store_status st;
    PGresult *r = pg_read(p, "SELECT " APPROVAL_COLS " FROM approvals WHERE run_id = $1 AND tenant_id = $2"
                             " AND ($3::text IS NULL OR user_id = $3) ORDER BY created_at, ord", 3, params, &st,
                          "approvals");
    if (!r) return st;
    return collect_approvals(r, out, n);
}

store_status store_pg_approvals_pending(struct pg_store *p, const char *tenant_id, const char *user_id,
                                        size_t limit, approval_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!tenant_id || !tenant_id[0] || limit == 0) return STORE_NOT_FOUND;
    char lim[PG_I64_MAX];
    const char *params[3] = {tenant_id, user_id, pg_num(lim, (int64_t)limit)};
    store_status st;
    PGresult *r = pg_read(p, "SELECT " APPROVAL_COLS " FROM approvals WHERE tenant_id = $1"
                             " AND ($2::text IS NULL OR user_id = $2) AND status = 0 ORDER BY created_at, ord"
                             " LIMIT $3", 3, params, &st, "pending approvals");
    if (!r) return st;
    return collect_approvals(r, out, n);
}

/* ---- decide ---- */

typedef struct decide_args {
    const char *tenant_id, *by_user, *admin_key, *run_id, *call_id, *note;
    bool approve;
    approval_rec *out;
    size_t *left;
    bool expired;
} decide_args;

static store_status decide_op(PGconn *c, void *arg)
{
    decide_args *d = arg;
    const char *p[3] = {d->run_id, d->call_id, d->tenant_id};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT " APPROVAL_COLS " FROM approvals WHERE run_id = $1 AND id = $2"
                             " AND tenant_id = $3 FOR UPDATE", 3, p, &st, "read approval");
    if (!r) return st;
    if (PQntuples(r) != 1) { PQclear(r); return STORE_NOT_FOUND; }
    approval_rec_free(d->out);
    int bad = read_approval(r, 0, d->out);
    PQclear(r);
    if (bad) return STORE_ERROR;
    if (d->by_user && strcmp(d->out->user_id, d->by_user) != 0) return STORE_NOT_FOUND;
    if ((d->out->approval_by == 1 && !d->by_user) || (d->out->approval_by == 2 && d->by_user))
        return STORE_FORBIDDEN;
    if (d->out->status != APPROVAL_PENDING) return STORE_CONFLICT;
    int64_t now = time_now_unix();
    char v[PG_I64_MAX];
    if (d->out->deadline <= now) {
        /* too late: denied at its deadline, as the sweeper writes it */
        const char *ep[3] = {pg_num(v, d->out->deadline), d->run_id, d->call_id};
        if ((st = pg_run(c, "UPDATE approvals SET status = 2, decided_by = 'timeout', decided_at = $1"
                            " WHERE run_id = $2 AND id = $3 AND status = 0", 3, ep, "expire approval")) != STORE_OK)
            return st;
        d->out->status = APPROVAL_DENIED;
        snprintf(d->out->decided_by, sizeof d->out->decided_by, "timeout");
        d->out->decided_at = d->out->deadline;
        d->expired = true;
        return STORE_OK;
    }
    char by[sizeof d->out->decided_by], s[PG_I64_MAX];
    snprintf(by, sizeof by, "%s:%s", d->by_user ? "user" : "tenant_admin", d->by_user ? d->by_user : d->admin_key);
    const char *up[6] = {pg_num(s, d->approve ? APPROVAL_APPROVED : APPROVAL_DENIED), by, d->note ? d->note : "",
                         pg_num(v, now), d->run_id, d->call_id};
    int64_t n = pg_run_count(c, "UPDATE approvals SET status = $1, decided_by = $2, note = $3, decided_at = $4"
                                " WHERE run_id = $5 AND id = $6 AND status = 0", 6, up, &st, "decide approval");
    if (n < 0) return st;
    if (n != 1) return STORE_CONFLICT;
    d->out->status = d->approve ? APPROVAL_APPROVED : APPROVAL_DENIED;
    snprintf(d->out->decided_by, sizeof d->out->decided_by, "%s", by);
    d->out->decided_at = now;
    const char *cp[1] = {d->run_id};
    r = pg_exec(c, "SELECT count(*) FROM approvals WHERE run_id = $1 AND status = 0", 1, cp, &st, "count pending");
    if (!r) return st;
    *d->left = (size_t)pg_i64(r, 0, 0);
    PQclear(r);
    return STORE_OK;
}

store_status store_pg_approval_decide(store *st, const char *tenant_id, const char *by_user, const char *admin_key,
                                      const char *run_id, const char *call_id, bool approve, const char *note,
                                      approval_rec *out, size_t *pending_left)
{
    memset(out, 0, sizeof *out);
    *pending_left = 0;
    if (!tenant_id || !tenant_id[0] || !run_id || !call_id || (!by_user && !admin_key)) return STORE_NOT_FOUND;
    if (note && !utf8_valid(note, strlen(note))) return STORE_INVALID;
    decide_args d = {tenant_id, by_user, admin_key, run_id, call_id, note, approve, out, pending_left, false};
    store_status res = pg_write(st, decide_op, &d);
    if (res == STORE_OK && d.expired) res = STORE_CONFLICT;
    if (res != STORE_OK && res != STORE_CONFLICT && res != STORE_FORBIDDEN) approval_rec_free(out);
    return res;
}

typedef struct expire_args { int64_t now; approval_rec *out; } expire_args;

static store_status expire_op(PGconn *c, void *arg)
{
    expire_args *e = arg;
    char now[PG_I64_MAX];
    const char *p[1] = {pg_num(now, e->now)};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT " APPROVAL_COLS " FROM approvals WHERE status = 0 AND deadline <= $1"
                             " ORDER BY deadline LIMIT 1 FOR UPDATE SKIP LOCKED", 1, p, &st, "read approval");
    if (!r) return st;
    if (PQntuples(r) != 1) { PQclear(r); return STORE_NOT_FOUND; }
    int bad = read_approval(r, 0, e->out);
    PQclear(r);
    if (bad) return STORE_ERROR;
    const char *up[3] = {now, e->out->run_id, e->out->call_id};
    if ((st = pg_run(c, "UPDATE approvals SET status = 2, decided_by = 'timeout', decided_at = $1"
                        " WHERE run_id = $2 AND id = $3 AND status = 0", 3, up, "expire approval")) != STORE_OK)
        return st;
    e->out->status = APPROVAL_DENIED;
    snprintf(e->out->decided_by, sizeof e->out->decided_by, "timeout");
    e->out->decided_at = e->now;
    return STORE_OK;
}

store_status store_pg_approval_expire_next(store *st, int64_t now, approval_rec *out)
{
    memset(out, 0, sizeof *out);
    expire_args e = {now, out};
    store_status res = pg_write(st, expire_op, &e);
    if (res != STORE_OK) approval_rec_free(out);
    return res;
}
