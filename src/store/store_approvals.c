/* store_approvals.c — a run paused for a person (waiting_approval) or for
 * the user's credential (waiting_auth), stored whole so that a restart, or
 * a kill -9, loses neither the run nor the calls that wait.
 *
 * Pausing writes, in one transaction, the run's status and counters, one
 * run_waits row (the assistant message whose tool calls wait, what the run
 * waits for, the credential it runs with) and one approvals row per call
 * that needs a person. Going on takes the wait row (read and deleted, so
 * only one taker wins) and sets the run running again. A decision changes
 * a pending approval once (a second one is STORE_CONFLICT). A run that
 * ends while paused drops its wait and denies what is still pending.
 *
 * Approvals are read by the run's user, or by a tenant admin for the whole
 * tenant: every query names the tenant, and the user unless it is the
 * admin's. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"
#include "util/utf8.h"

#define APPROVAL_COLS "run_id, id, tenant_id, user_id, session_id, tool, arguments, reason," \
    " approval_by, status, decided_by, note, deadline, created_at, decided_at"
#define WAIT_COLS "run_id, tenant_id, user_id, session_id, key_id, kind, pending, provider," \
    " connect_url, deadline"

void approval_rec_free(approval_rec *a)
{
    if (!a) return;
    free(a->arguments);
    free(a->note);
    a->arguments = a->note = NULL;
}

void store_free_approvals(approval_rec *arr, size_t n)
{
    for (size_t i = 0; i < n; i++) approval_rec_free(&arr[i]);
    free(arr);
}

void run_wait_rec_free(run_wait_rec *w)
{
    if (!w) return;
    free(w->pending);
    free(w->connect_url);
    w->pending = w->connect_url = NULL;
}

void store_free_run_waits(run_wait_rec *arr, size_t n)
{
    for (size_t i = 0; i < n; i++) run_wait_rec_free(&arr[i]);
    free(arr);
}

static int store_read_approval(sqlite3_stmt *s, void *rec)
{
    approval_rec *a = rec;
    memset(a, 0, sizeof *a);
    store_col_copy(s, 0, a->run_id, sizeof a->run_id);
    store_col_copy(s, 1, a->call_id, sizeof a->call_id);
    store_col_copy(s, 2, a->tenant_id, sizeof a->tenant_id);
    store_col_copy(s, 3, a->user_id, sizeof a->user_id);
    store_col_copy(s, 4, a->session_id, sizeof a->session_id);
    store_col_copy(s, 5, a->tool, sizeof a->tool);
    store_col_copy(s, 7, a->reason, sizeof a->reason);
    a->approval_by = sqlite3_column_int(s, 8);
    a->status = (approval_status)sqlite3_column_int(s, 9);
    store_col_copy(s, 10, a->decided_by, sizeof a->decided_by);
    a->deadline = sqlite3_column_int64(s, 12);
    a->created_at = sqlite3_column_int64(s, 13);
    a->decided_at = sqlite3_column_int64(s, 14);
    if (store_col_dup(s, 6, &a->arguments) < 0 || store_col_dup(s, 11, &a->note) < 0) {
        approval_rec_free(a);
        return -1;
    }
    if (a->note && !a->note[0]) {
        free(a->note);
        a->note = NULL;
    }
    return 0;
}

static void store_free_approvals_v(void *arr, size_t n) { store_free_approvals(arr, n); }

static const store_rows approval_rows = {sizeof(approval_rec), store_read_approval,
                                         store_free_approvals_v, "approvals"};

static int store_read_wait(sqlite3_stmt *s, void *rec)
{
    run_wait_rec *w = rec;
    memset(w, 0, sizeof *w);
    store_col_copy(s, 0, w->run_id, sizeof w->run_id);
    store_col_copy(s, 1, w->tenant_id, sizeof w->tenant_id);
    store_col_copy(s, 2, w->user_id, sizeof w->user_id);
    store_col_copy(s, 3, w->session_id, sizeof w->session_id);
    store_col_copy(s, 4, w->key_id, sizeof w->key_id);
    w->kind = (run_status)sqlite3_column_int(s, 5);
    store_col_copy(s, 7, w->provider, sizeof w->provider);
    w->deadline = sqlite3_column_int64(s, 9);
    if (store_col_dup(s, 6, &w->pending) < 0 || store_col_dup(s, 8, &w->connect_url) < 0) {
        run_wait_rec_free(w);
        return -1;
    }
    if (w->connect_url && !w->connect_url[0]) {
        free(w->connect_url);
        w->connect_url = NULL;
    }
    return 0;
}

static void store_free_waits_v(void *arr, size_t n) { store_free_run_waits(arr, n); }

static const store_rows wait_rows = {sizeof(run_wait_rec), store_read_wait, store_free_waits_v,
                                     "run waits"};

/* ---- pause ---- */

typedef struct run_pause_args {
    const scope *sc;
    const run_rec *run;
    const run_wait_rec *w;
    const approval_rec *a;
    size_t n;
    int64_t now;
} run_pause_args;

static store_status store_pending_count(store_conn *c, const char *tenant_id, const char *user_id,
                                        int64_t *count)
{
    sqlite3_stmt *s = store_stmt(c, user_id
        ? "SELECT count(*) FROM approvals WHERE tenant_id = ? AND user_id = ? AND status = 0"
        : "SELECT count(*) FROM approvals WHERE tenant_id = ? AND status = 0");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, tenant_id);
    if (user_id) store_bind_text(s, 2, user_id);
    int rc = sqlite3_step(s);
    *count = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(c, rc, "count approvals");
}

static store_status store_run_pause_op(store_conn *c, void *arg)
{
    run_pause_args *p = arg;
    if (p->n) {
        /* Bounded: a model asking for risky calls in a loop, over many
         * sessions, cannot fill the tenant's queue of decisions. */
        int64_t mine = 0, tenant = 0;
        store_status res = store_pending_count(c, p->sc->tenant_id, p->sc->user_id, &mine);
        if (res == STORE_OK) res = store_pending_count(c, p->sc->tenant_id, NULL, &tenant);
        if (res != STORE_OK) return res;
        if (mine + (int64_t)p->n > STORE_APPROVALS_PENDING_PER_USER ||
            tenant + (int64_t)p->n > STORE_APPROVALS_PENDING_PER_TENANT)
            return STORE_QUOTA;
    }
    sqlite3_stmt *s = store_stmt(c, "UPDATE runs SET status = ?, input_tokens = ?, output_tokens = ?,"
                                    " cost_nusd = ?, steps = ?, tool_calls = ?"
                                    " WHERE id = ? AND user_id = ? AND tenant_id = ? AND status = 2");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int(s, 1, (int)p->w->kind);
    sqlite3_bind_int64(s, 2, p->run->input_tokens);
    sqlite3_bind_int64(s, 3, p->run->output_tokens);
    sqlite3_bind_int64(s, 4, p->run->cost_nusd);
    sqlite3_bind_int64(s, 5, p->run->steps);
    sqlite3_bind_int64(s, 6, p->run->tool_calls);
    store_bind_owned(s, 7, p->run->id, p->sc);
    store_status res = store_step_done(c, s, "pause run");
    if (res != STORE_OK) return res;
    if (sqlite3_changes(c->db) != 1) return STORE_CONFLICT;   /* not this scope's running run */

    s = store_stmt(c, "INSERT INTO run_waits (" WAIT_COLS ", created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, p->run->id);
    store_bind_text(s, 2, p->sc->tenant_id);
    store_bind_text(s, 3, p->sc->user_id);
    store_bind_text(s, 4, p->run->session_id);
    store_bind_text(s, 5, p->sc->key_id);
    sqlite3_bind_int(s, 6, (int)p->w->kind);
    store_bind_text(s, 7, p->w->pending);
    store_bind_text(s, 8, p->w->provider);
    /* Never the connect_url: it holds the flow's one-time start ticket, of
     * which the vault keeps only a hash, and whoever opens it first binds
     * their provider account to this user (docs/security.md). The event
     * carries it; after a restart the user asks for a new link. */
    store_bind_text(s, 9, "");
    sqlite3_bind_int64(s, 10, p->w->deadline);
    sqlite3_bind_int64(s, 11, p->now);
    res = store_step_done(c, s, "insert run wait");
    if (res != STORE_OK) return res;

    for (size_t i = 0; i < p->n; i++) {
        const approval_rec *a = &p->a[i];
        /* A model may reuse a call id within a run: an earlier, decided
         * approval of that id gives way (the audit log keeps its decision);
         * a pending one cannot exist (the run waits for it). */
        s = store_stmt(c, "DELETE FROM approvals WHERE run_id = ? AND id = ? AND status != 0");
        if (!s) return STORE_ERROR;
        store_bind_text(s, 1, p->run->id);
        store_bind_text(s, 2, a->call_id);
        res = store_step_done(c, s, "replace approval");
        if (res != STORE_OK) return res;
        s = store_stmt(c, "INSERT INTO approvals (run_id, id, tenant_id, user_id, session_id, tool,"
                          " arguments, reason, approval_by, deadline, created_at)"
                          " VALUES (?,?,?,?,?,?,?,?,?,?,?)");
        if (!s) return STORE_ERROR;
        store_bind_text(s, 1, p->run->id);
        store_bind_text(s, 2, a->call_id);
        store_bind_text(s, 3, p->sc->tenant_id);
        store_bind_text(s, 4, p->sc->user_id);
        store_bind_text(s, 5, p->run->session_id);
        store_bind_text(s, 6, a->tool);
        store_bind_text(s, 7, a->arguments ? a->arguments : "{}");
        store_bind_text(s, 8, a->reason);
        sqlite3_bind_int(s, 9, a->approval_by);
        sqlite3_bind_int64(s, 10, a->deadline);
        sqlite3_bind_int64(s, 11, p->now);
        res = store_step_done(c, s, "insert approval");
        if (res != STORE_OK) return res;
    }
    return STORE_OK;
}

store_status store_run_pause(store *st, const scope *sc, const run_rec *run,
                             const run_wait_rec *w, const approval_rec *approvals, size_t n)
{
    STORE_PG_DISPATCH(st, store_pg_run_pause(st, sc, run, w, approvals, n));
    if (!scope_valid(sc) || !run || !w) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if ((w->kind != RUN_WAITING_APPROVAL && w->kind != RUN_WAITING_AUTH) || !w->pending ||
        (n && !approvals) || (w->kind == RUN_WAITING_APPROVAL && n == 0))
        return STORE_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!utf8_valid(approvals[i].call_id, strlen(approvals[i].call_id)) ||
            !utf8_valid(approvals[i].tool, strlen(approvals[i].tool)) ||
            (approvals[i].arguments && !utf8_valid(approvals[i].arguments, strlen(approvals[i].arguments))))
            return STORE_INVALID;
    run_pause_args p = {sc, run, w, approvals, n, time_now_unix()};
    return store_write(st, store_run_pause_op, &p);
}

/* ---- go on ---- */

typedef struct run_unpause_args {
    const scope *sc;
    const char *run_id;
    run_wait_rec *out;
} run_unpause_args;

static store_status store_run_unpause_op(store_conn *c, void *arg)
{
    run_unpause_args *u = arg;
    sqlite3_stmt *s = store_stmt(c, "SELECT " WAIT_COLS " FROM run_waits"
                                    " WHERE run_id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, u->run_id, u->sc);
    int rc = sqlite3_step(s);
    int bad = rc == SQLITE_ROW ? store_read_wait(s, u->out) : 0;
    sqlite3_reset(s);
    if (rc == SQLITE_DONE) return STORE_NOT_FOUND;
    if (rc != SQLITE_ROW) return store_sqlite_status(c, rc, "read run wait");
    if (bad) return STORE_ERROR;
    s = store_stmt(c, "DELETE FROM run_waits WHERE run_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, u->run_id);
    store_status res = store_step_done(c, s, "take run wait");
    if (res != STORE_OK) return res;
    s = store_stmt(c, "UPDATE runs SET status = 2 WHERE id = ? AND status IN (3, 8)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, u->run_id);
    res = store_step_done(c, s, "resume run");
    if (res == STORE_OK && sqlite3_changes(c->db) != 1) res = STORE_CONFLICT;
    return res;
}

store_status store_run_unpause(store *st, const scope *sc, const char *run_id, run_wait_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_run_unpause(st, sc, run_id, out));
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !run_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    run_unpause_args u = {sc, run_id, out};
    store_status res = store_write(st, store_run_unpause_op, &u);
    if (res != STORE_OK) run_wait_rec_free(out);
    return res;
}

store_status store_run_close_waits(store_conn *c, const char *run_id, int64_t now)
{
    sqlite3_stmt *s = store_stmt(c, "DELETE FROM run_waits WHERE run_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, run_id);
    store_status res = store_step_done(c, s, "drop run wait");
    if (res != STORE_OK) return res;
    s = store_stmt(c, "UPDATE approvals SET status = 2, decided_by = 'run_ended', decided_at = ?"
                      " WHERE run_id = ? AND status = 0");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, now);
    store_bind_text(s, 2, run_id);
    return store_step_done(c, s, "close approvals");
}

store_status store_run_waits_all(store *st, run_wait_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_run_waits_all(store_pg_of(st), out, n));
    *out = NULL;
    *n = 0;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " WAIT_COLS " FROM run_waits ORDER BY created_at");
    if (!s) return STORE_ERROR;
    return store_collect(c, s, &wait_rows, 0, (void **)out, n);
}

store_status store_run_wait_of(store *st, const scope *sc, const char *run_id, run_wait_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_run_wait_of(store_pg_of(st), sc, run_id, out));
    memset(out, 0, sizeof *out);
    if (!sc || !sc->tenant_id[0] || !sc->user_id[0] || !run_id) return STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " WAIT_COLS " FROM run_waits"
                                    " WHERE run_id = ?1 AND tenant_id = ?2 AND user_id = ?3");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, run_id);
    store_bind_text(s, 2, sc->tenant_id);
    store_bind_text(s, 3, sc->user_id);
    run_wait_rec *rows = NULL;
    size_t n = 0;
    store_status res = store_collect(c, s, &wait_rows, 0, (void **)&rows, &n);
    if (res != STORE_OK) return res;
    if (n == 0) {
        free(rows);
        return STORE_NOT_FOUND;
    }
    *out = rows[0];                      /* run_id is the key: one row at most */
    free(rows);
    return STORE_OK;
}

/* ---- read ---- */

store_status store_approvals_of_run(store *st, const char *tenant_id, const char *user_id,
                                    const char *run_id, approval_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_approvals_of_run(store_pg_of(st), tenant_id, user_id, run_id, out, n));
    *out = NULL;
    *n = 0;
    if (!tenant_id || !tenant_id[0] || !run_id) return STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, user_id
        ? "SELECT " APPROVAL_COLS " FROM approvals WHERE run_id = ?1 AND tenant_id = ?2"
          " AND user_id = ?3 ORDER BY created_at, rowid"
        : "SELECT " APPROVAL_COLS " FROM approvals WHERE run_id = ?1 AND tenant_id = ?2"
          " ORDER BY created_at, rowid");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, run_id);
    store_bind_text(s, 2, tenant_id);
    if (user_id) store_bind_text(s, 3, user_id);
    return store_collect(c, s, &approval_rows, 0, (void **)out, n);
}

store_status store_approvals_pending(store *st, const char *tenant_id, const char *user_id,
                                     size_t limit, approval_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_approvals_pending(store_pg_of(st), tenant_id, user_id, limit, out, n));
    *out = NULL;
    *n = 0;
    if (!tenant_id || !tenant_id[0] || limit == 0) return STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, user_id
        ? "SELECT " APPROVAL_COLS " FROM approvals WHERE tenant_id = ?1 AND user_id = ?2"
          " AND status = 0 ORDER BY created_at, rowid LIMIT ?3"
        : "SELECT " APPROVAL_COLS " FROM approvals WHERE tenant_id = ?1 AND status = 0"
          " ORDER BY created_at, rowid LIMIT ?3");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, tenant_id);
    if (user_id) store_bind_text(s, 2, user_id);
    sqlite3_bind_int64(s, 3, (int64_t)limit);
    return store_collect(c, s, &approval_rows, limit, (void **)out, n);
}

/* ---- decide ---- */

typedef struct approval_decide_args {
    const char *tenant_id, *by_user, *admin_key, *run_id, *call_id, *note;
    bool approve;
    approval_rec *out;
    size_t *left;
    bool expired;                     /* its deadline had passed: denied, not decided */
} approval_decide_args;

static store_status store_approval_decide_op(store_conn *c, void *arg)
{
    approval_decide_args *d = arg;
    sqlite3_stmt *s = store_stmt(c, "SELECT " APPROVAL_COLS " FROM approvals"
                                    " WHERE run_id = ? AND id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, d->run_id);
    store_bind_text(s, 2, d->call_id);
    store_bind_text(s, 3, d->tenant_id);
    int rc = sqlite3_step(s);
    int bad = rc == SQLITE_ROW ? store_read_approval(s, d->out) : 0;
    sqlite3_reset(s);
    if (rc == SQLITE_DONE) return STORE_NOT_FOUND;
    if (rc != SQLITE_ROW) return store_sqlite_status(c, rc, "read approval");
    if (bad) return STORE_ERROR;
    /* Another user's approval does not exist for this caller. */
    if (d->by_user && strcmp(d->out->user_id, d->by_user) != 0) return STORE_NOT_FOUND;
    /* approval_by: 1 = the run's user only, 2 = a tenant admin only */
    if ((d->out->approval_by == 1 && !d->by_user) || (d->out->approval_by == 2 && d->by_user))
        return STORE_FORBIDDEN;
    if (d->out->status != APPROVAL_PENDING) return STORE_CONFLICT;
    int64_t now = time_now_unix();
    if (d->out->deadline <= now) {
        /* Too late, even if the sweeper has not noticed yet: the call was
         * denied at its deadline. (The sweeper's denial writes the same.) */
        s = store_stmt(c, "UPDATE approvals SET status = 2, decided_by = 'timeout', decided_at = ?"
                          " WHERE run_id = ? AND id = ? AND status = 0");
        if (!s) return STORE_ERROR;
        sqlite3_bind_int64(s, 1, d->out->deadline);
        store_bind_text(s, 2, d->run_id);
        store_bind_text(s, 3, d->call_id);
        store_status res = store_step_done(c, s, "expire approval");
        if (res != STORE_OK) return res;
        d->out->status = APPROVAL_DENIED;
        snprintf(d->out->decided_by, sizeof d->out->decided_by, "timeout");
        d->out->decided_at = d->out->deadline;
        d->expired = true;
        return STORE_OK;   /* committed; reported as a conflict below */
    }
    char by[sizeof d->out->decided_by];
    snprintf(by, sizeof by, "%s:%s", d->by_user ? "user" : "tenant_admin",
             d->by_user ? d->by_user : d->admin_key);
    s = store_stmt(c, "UPDATE approvals SET status = ?, decided_by = ?, note = ?, decided_at = ?"
                      " WHERE run_id = ? AND id = ? AND status = 0");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int(s, 1, d->approve ? APPROVAL_APPROVED : APPROVAL_DENIED);
    store_bind_text(s, 2, by);
    store_bind_text(s, 3, d->note ? d->note : "");
    sqlite3_bind_int64(s, 4, now);
    store_bind_text(s, 5, d->run_id);
    store_bind_text(s, 6, d->call_id);
    store_status res = store_step_done(c, s, "decide approval");
    if (res != STORE_OK) return res;
    if (sqlite3_changes(c->db) != 1) return STORE_CONFLICT;
    d->out->status = d->approve ? APPROVAL_APPROVED : APPROVAL_DENIED;
    snprintf(d->out->decided_by, sizeof d->out->decided_by, "%s", by);
    d->out->decided_at = now;
    s = store_stmt(c, "SELECT count(*) FROM approvals WHERE run_id = ? AND status = 0");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, d->run_id);
    rc = sqlite3_step(s);
    *d->left = rc == SQLITE_ROW ? (size_t)sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(c, rc, "count pending");
}

store_status store_approval_decide(store *st, const char *tenant_id, const char *by_user,
                                   const char *admin_key, const char *run_id,
                                   const char *call_id, bool approve, const char *note,
                                   approval_rec *out, size_t *pending_left)
{
    STORE_PG_DISPATCH(st, store_pg_approval_decide(st, tenant_id, by_user, admin_key, run_id, call_id, approve, note, out, pending_left));
    memset(out, 0, sizeof *out);
    *pending_left = 0;
    if (!tenant_id || !tenant_id[0] || !run_id || !call_id || (!by_user && !admin_key))
        return STORE_NOT_FOUND;
    if (note && !utf8_valid(note, strlen(note))) return STORE_INVALID;
    approval_decide_args d = {tenant_id, by_user, admin_key, run_id, call_id, note, approve, out,
                              pending_left, false};
    store_status res = store_write(st, store_approval_decide_op, &d);
    if (res == STORE_OK && d.expired) res = STORE_CONFLICT;
    if (res != STORE_OK && res != STORE_CONFLICT && res != STORE_FORBIDDEN) approval_rec_free(out);
    return res;
}

/* ---- deadlines ---- */

typedef struct approval_expire_args {
    int64_t now;
    approval_rec *out;
} approval_expire_args;

static store_status store_approval_expire_op(store_conn *c, void *arg)
{
    approval_expire_args *e = arg;
    sqlite3_stmt *s = store_stmt(c, "SELECT " APPROVAL_COLS " FROM approvals"
                                    " WHERE status = 0 AND deadline <= ? ORDER BY deadline LIMIT 1");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, e->now);
    int rc = sqlite3_step(s);
    int bad = rc == SQLITE_ROW ? store_read_approval(s, e->out) : 0;
    sqlite3_reset(s);
    if (rc == SQLITE_DONE) return STORE_NOT_FOUND;
    if (rc != SQLITE_ROW) return store_sqlite_status(c, rc, "read approval");
    if (bad) return STORE_ERROR;
    s = store_stmt(c, "UPDATE approvals SET status = 2, decided_by = 'timeout', decided_at = ?"
                      " WHERE run_id = ? AND id = ? AND status = 0");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, e->now);
    store_bind_text(s, 2, e->out->run_id);
    store_bind_text(s, 3, e->out->call_id);
    store_status res = store_step_done(c, s, "expire approval");
    if (res != STORE_OK) return res;
    e->out->status = APPROVAL_DENIED;
    snprintf(e->out->decided_by, sizeof e->out->decided_by, "timeout");
    e->out->decided_at = e->now;
    return STORE_OK;
}

store_status store_approval_expire_next(store *st, int64_t now, approval_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_approval_expire_next(st, now, out));
    memset(out, 0, sizeof *out);
    approval_expire_args e = {now, out};
    store_status res = store_write(st, store_approval_expire_op, &e);
    if (res != STORE_OK) approval_rec_free(out);
    return res;
}
