/* store_users.c — users of a tenant.
 *
 * A tenant admin manages its tenant's users; every statement carries
 * `tenant_id = <the scope's tenant>` so a user id from another tenant simply
 * matches no row (STORE_NOT_FOUND). A user scope may read itself only. The
 * server admin sees no users at all (STORE_FORBIDDEN). */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdbool.h>
#include <string.h>

#include "util/ids.h"
#include "util/timeutil.h"

void store_read_user(sqlite3_stmt *s, user_rec *u)
{
    memset(u, 0, sizeof *u);
    store_col_copy(s, 0, u->id, sizeof u->id);
    store_col_copy(s, 1, u->tenant_id, sizeof u->tenant_id);
    store_col_copy(s, 2, u->external_id, sizeof u->external_id);
    store_col_copy(s, 3, u->display_name, sizeof u->display_name);
    store_col_copy(s, 4, u->tier, sizeof u->tier);
    u->disabled = sqlite3_column_int(s, 5) != 0;
    u->limits.rpm = sqlite3_column_int64(s, 6);
    u->limits.tpm = sqlite3_column_int64(s, 7);
    u->limits.max_concurrent_runs = sqlite3_column_int64(s, 8);
    u->limits.daily_budget_nusd = sqlite3_column_int64(s, 9);
    u->limits.monthly_budget_nusd = sqlite3_column_int64(s, 10);
    u->created_at = sqlite3_column_int64(s, 11);
}

/* Read one user of one tenant through connection c. */
static store_status store_user_fetch(store_conn *c, const char *tenant_id, const char *user_id, user_rec *out)
{
    sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_USER_COLS " FROM users WHERE id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, user_id);
    store_bind_text(s, 2, tenant_id);
    int rc = sqlite3_step(s);
    store_status res;
    if (rc == SQLITE_ROW) { store_read_user(s, out); res = STORE_OK; }
    else res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "get user");
    sqlite3_reset(s);
    return res;
}

store_status store_load_users(store *st, void (*fn)(const user_rec *u, void *arg), void *arg)
{
    STORE_PG_DISPATCH(st, store_pg_load_users(store_pg_of(st), fn, arg));
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_USER_COLS " FROM users");
    if (!s) return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        user_rec u;
        store_read_user(s, &u);
        fn(&u, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(c, rc, "load users");
}

/* ---- provisioning (JWT subjects) ---- */

typedef struct user_provision_args {
    const char *tenant_id, *external_id, *tier;
    user_rec *out;
} user_provision_args;

static store_status store_user_provision_op(store_conn *c, void *arg)
{
    user_provision_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "SELECT 1 FROM tenants WHERE id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->tenant_id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "provision");

    /* Insert-or-keep: the writer runs ops one after another, so two racing
     * first requests of one subject make one row and read the same id. */
    char id[ID_MAX];
    ids_new(id, "usr");
    s = store_stmt(c, "INSERT INTO users (id, tenant_id, external_id, tier, created_at)"
                      " VALUES (?1, ?2, ?3, COALESCE(?4, (SELECT default_tier FROM tenants WHERE id = ?2)), ?5)"
                      " ON CONFLICT (tenant_id, external_id) DO NOTHING");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, id);
    store_bind_text(s, 2, a->tenant_id);
    store_bind_text(s, 3, a->external_id);
    store_bind_text(s, 4, a->tier && a->tier[0] ? a->tier : NULL);
    sqlite3_bind_int64(s, 5, time_now_unix());
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "provision user");

    s = store_stmt(c, "SELECT " STORE_USER_COLS " FROM users WHERE tenant_id = ? AND external_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->tenant_id);
    store_bind_text(s, 2, a->external_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) store_read_user(s, a->out);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(c, rc, "read provisioned user");
}

store_status store_user_provision(store *st, const char *tenant_id, const char *external_id,
                                  const char *tier, user_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_user_provision(st, tenant_id, external_id, tier, out));
    if (!tenant_id || !*tenant_id || !external_id || !*external_id ||
        strlen(external_id) >= STORE_NAME_MAX)
        return STORE_INVALID;
    user_provision_args a = {tenant_id, external_id, tier, out};
    return store_write(st, store_user_provision_op, &a);
}

/* ---- create ---- */

typedef struct user_create_args {
    const char *tenant_id;
    const user_rec *u;
    const char *id;
} user_create_args;

static store_status store_user_create_op(store_conn *c, void *arg)
{
    user_create_args *a = arg;
    sqlite3_stmt *s = store_stmt(c,
        "INSERT INTO users (id, tenant_id, external_id, display_name, tier, disabled, lim_rpm, lim_tpm,"
        " lim_max_concurrent_runs, lim_daily_budget_nusd, lim_monthly_budget_nusd, created_at)"
        " VALUES (?1, ?2, ?3, ?4, COALESCE(?5, (SELECT default_tier FROM tenants WHERE id = ?2)),"
        " ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (!s) return STORE_ERROR;
    const user_rec *u = a->u;
    store_bind_text(s, 1, a->id);
    store_bind_text(s, 2, a->tenant_id);
    store_bind_text(s, 3, u->external_id);
    store_bind_text(s, 4, u->display_name);
    store_bind_text(s, 5, u->tier[0] ? u->tier : NULL);
    sqlite3_bind_int(s, 6, u->disabled);
    sqlite3_bind_int64(s, 7, u->limits.rpm);
    sqlite3_bind_int64(s, 8, u->limits.tpm);
    sqlite3_bind_int64(s, 9, u->limits.max_concurrent_runs);
    sqlite3_bind_int64(s, 10, u->limits.daily_budget_nusd);
    sqlite3_bind_int64(s, 11, u->limits.monthly_budget_nusd);
    sqlite3_bind_int64(s, 12, u->created_at ? u->created_at : time_now_unix());
    return store_step_done(c, s, "insert user");
}

store_status store_user_create(store *st, const scope *sc, const user_rec *u)
{
    STORE_PG_DISPATCH(st, store_pg_user_create(st, sc, u));
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (!u || !u->external_id[0]) return STORE_INVALID;
    /* The tenant is the scope's, whatever the record says: a tenant admin
     * cannot plant a user in another tenant. */
    if (u->tenant_id[0] && strcmp(u->tenant_id, sc->tenant_id) != 0) return STORE_NOT_FOUND;
    char id[ID_MAX];
    if (u->id[0]) memcpy(id, u->id, sizeof id); else ids_new(id, "usr");
    user_create_args a = {sc->tenant_id, u, id};
    return store_write(st, store_user_create_op, &a);
}

/* ---- read ---- */

store_status store_user_get(store *st, const scope *sc, const char *user_id, user_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_user_get(store_pg_of(st), sc, user_id, out));
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !user_id) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    if (sc->role == SCOPE_USER && strcmp(sc->user_id, user_id) != 0) return STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    return store_user_fetch(c, sc->tenant_id, user_id, out);
}

static int store_user_row(sqlite3_stmt *s, void *rec)
{
    store_read_user(s, rec);
    return 0;
}

static const store_rows user_rows = {sizeof(user_rec), store_user_row, NULL, "list users"};

store_status store_user_list(store *st, const scope *sc, const char *after, size_t limit,
                             user_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_user_list(store_pg_of(st), sc, after, limit, out, n));
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (limit == 0 || limit > 1000) limit = limit ? 1000 : 100;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_USER_COLS " FROM users"
                                    " WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, sc->tenant_id);
    store_bind_text(s, 2, after ? after : "");
    sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
    void *arr;
    store_status res = store_collect(c, s, &user_rows, limit, &arr, n);
    *out = arr;
    return res;
}

/* ---- update ---- */

typedef struct user_update_args {
    const char *tenant_id, *user_id;
    const user_update *upd;
    user_rec *out;
} user_update_args;

static store_status store_user_update_op(store_conn *c, void *arg)
{
    user_update_args *a = arg;
    const user_update *p = a->upd;
    /* One statement for every PATCH shape: each column keeps its value
     * unless its set_ flag is bound true. */
    sqlite3_stmt *s = store_stmt(c,
        "UPDATE users SET"
        " tier = CASE WHEN ?1 THEN ?2 ELSE tier END,"
        " disabled = CASE WHEN ?3 THEN ?4 ELSE disabled END,"
        " display_name = CASE WHEN ?5 THEN ?6 ELSE display_name END,"
        " lim_rpm = CASE WHEN ?7 THEN ?8 ELSE lim_rpm END,"
        " lim_tpm = CASE WHEN ?7 THEN ?9 ELSE lim_tpm END,"
        " lim_max_concurrent_runs = CASE WHEN ?7 THEN ?10 ELSE lim_max_concurrent_runs END,"
        " lim_daily_budget_nusd = CASE WHEN ?7 THEN ?11 ELSE lim_daily_budget_nusd END,"
        " lim_monthly_budget_nusd = CASE WHEN ?7 THEN ?12 ELSE lim_monthly_budget_nusd END"
        " WHERE id = ?13 AND tenant_id = ?14");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int(s, 1, p->set_tier);
    store_bind_text(s, 2, p->tier);
    sqlite3_bind_int(s, 3, p->set_disabled);
    sqlite3_bind_int(s, 4, p->disabled);
    sqlite3_bind_int(s, 5, p->set_display_name);
    store_bind_text(s, 6, p->display_name);
    sqlite3_bind_int(s, 7, p->set_limits);
    sqlite3_bind_int64(s, 8, p->limits.rpm);
    sqlite3_bind_int64(s, 9, p->limits.tpm);
    sqlite3_bind_int64(s, 10, p->limits.max_concurrent_runs);
    sqlite3_bind_int64(s, 11, p->limits.daily_budget_nusd);
    sqlite3_bind_int64(s, 12, p->limits.monthly_budget_nusd);
    store_bind_text(s, 13, a->user_id);
    store_bind_text(s, 14, a->tenant_id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "update user");
    if (sqlite3_changes(c->db) != 1) return STORE_NOT_FOUND;
    user_rec tmp;
    return store_user_fetch(c, a->tenant_id, a->user_id, a->out ? a->out : &tmp);
}

static bool store_limits_ok(const user_limits *l)
{
    /* negative = "use the tier"; normalise nothing here, only refuse junk */
    return l->rpm >= -1 && l->tpm >= -1 && l->max_concurrent_runs >= -1 &&
           l->daily_budget_nusd >= -1 && l->monthly_budget_nusd >= -1;
}

store_status store_user_update(store *st, const scope *sc, const char *user_id,
                               const user_update *upd, user_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_user_update(st, sc, user_id, upd, out));
    if (out) memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !user_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (!upd) return STORE_INVALID;
    if (upd->set_tier && (!upd->tier[0] || !memchr(upd->tier, '\0', sizeof upd->tier))) return STORE_INVALID;
    if (upd->set_display_name && !memchr(upd->display_name, '\0', sizeof upd->display_name)) return STORE_INVALID;
    if (upd->set_limits && !store_limits_ok(&upd->limits)) return STORE_INVALID;
    user_update_args a = {sc->tenant_id, user_id, upd, out};
    return store_write(st, store_user_update_op, &a);
}

/* ---- delete ---- */

typedef struct user_delete_args {
    const char *tenant_id, *user_id;
} user_delete_args;

static store_status store_user_delete_op(store_conn *c, void *arg)
{
    user_delete_args *a = arg;
    /* Erasure of everything the user owns, in this one savepoint. Tables
     * added later (tool credentials, …) get their DELETE here, before the
     * users row, so a failure erases nothing. Messages and runs go by their
     * sessions (indexed) before the sessions themselves; deleting memory
     * rows fires the trigger that removes their full-text index entries.
     * Traces: the rows the user owns — not another owner's rows, even of
     * a trace the user shared, since trace ids come from clients (ownerless
     * spans are never stored). Finding them reads the whole traces table
     * (no index by owner: it would cost every row written; the table has
     * a row per trace, not per span, so the scan is short). */
    static const char *const erase[] = {
        "DELETE FROM keys WHERE user_id = ?1 AND tenant_id = ?2",
        "DELETE FROM memory WHERE tenant_id = ?2 AND user_id = ?1",
        "DELETE FROM messages WHERE session_id IN"
        " (SELECT id FROM sessions WHERE user_id = ?1 AND tenant_id = ?2)",
        "DELETE FROM runs WHERE session_id IN"
        " (SELECT id FROM sessions WHERE user_id = ?1 AND tenant_id = ?2)",
        "DELETE FROM sessions WHERE user_id = ?1 AND tenant_id = ?2",
        "DELETE FROM approvals WHERE user_id = ?1 AND tenant_id = ?2",
        "DELETE FROM run_waits WHERE user_id = ?1 AND tenant_id = ?2",
        "DELETE FROM responses WHERE user_id = ?1 AND tenant_id = ?2",
        /* the guard's decisions about the user's runs (no text, but theirs) */
        "DELETE FROM guard_decisions WHERE user_id = ?1 AND tenant_id = ?2",
        "DELETE FROM traces WHERE tenant_id = ?2 AND user_id = ?1",
        /* the user's tool credentials and consent flows in progress (the
         * connections would also go by their foreign key; said here so the
         * list is the whole of what erasure removes). Their tokens are not
         * revoked at the provider: docs/security.md, known gaps. */
        "DELETE FROM connections WHERE user_id = ?1 AND tenant_id = ?2",
        "DELETE FROM oauth_flows WHERE user_id = ?1 AND tenant_id = ?2",
    };
    bool had_memory = false;
    for (size_t i = 0; i < sizeof erase / sizeof erase[0]; i++) {
        sqlite3_stmt *s = store_stmt(c, erase[i]);
        if (!s) return STORE_ERROR;
        store_bind_text(s, 1, a->user_id);
        store_bind_text(s, 2, a->tenant_id);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "erase user data");
        if (i == 1) had_memory = sqlite3_changes(c->db) > 0;
    }
    if (had_memory) {
        /* FTS5 deletes by adding tombstones: the erased words stay in the
         * older index segments until a merge. Merging every segment into
         * one drops them now (their pages then freed, and zeroed by
         * secure_delete). It rewrites the whole memory index, which is
         * bounded by the memory quotas; erasures are rare. */
        sqlite3_stmt *s = store_stmt(c, "INSERT INTO memory_fts (memory_fts) VALUES ('optimize')");
        if (!s) return STORE_ERROR;
        store_status res = store_step_done(c, s, "merge the memory index");
        if (res != STORE_OK) return res;
    }
    sqlite3_stmt *s = store_stmt(c, "DELETE FROM users WHERE id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->user_id);
    store_bind_text(s, 2, a->tenant_id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "delete user");
    /* NOT_FOUND rolls back the savepoint: nothing erased for a foreign id */
    if (sqlite3_changes(c->db) != 1) return STORE_NOT_FOUND;
    c->scrub_wanted = 1;   /* and the WAL emptied once this commits */
    return STORE_OK;
}

store_status store_user_delete(store *st, const scope *sc, const char *user_id)
{
    STORE_PG_DISPATCH(st, store_pg_user_delete(st, sc, user_id));
    if (!scope_valid(sc) || !user_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    user_delete_args a = {sc->tenant_id, user_id};
    return store_write(st, store_user_delete_op, &a);
}
