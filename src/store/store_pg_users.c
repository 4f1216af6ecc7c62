/* store_pg_users.c — users and keys on PostgreSQL (the same contracts and
 * scope rules as store_users.c and store_keys.c: every statement carries
 * the scope's tenant, so another tenant's id matches no row; a user reads
 * itself and its own keys only; the server admin sees no users).
 *
 * Where SQLite relies on its single writer to serialize two checks, this
 * file locks a row inside the transaction instead (other instances write
 * too): revoking an admin key locks the tenant's row first, so two
 * concurrent revocations of a tenant's last two admin keys cannot both
 * pass the "keeps an admin" check. */
#include "store/store_pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"
#include "util/timeutil.h"

#define USER_COLS "id, tenant_id, external_id, display_name, tier, disabled, " \
    "lim_rpm, lim_tpm, lim_max_concurrent_runs, lim_daily_budget_nusd, lim_monthly_budget_nusd, created_at"
#define KEY_COLS "id, tenant_id, user_id, kind, prefix, hash, created_at, revoked_at, " \
    "lim_rpm, lim_tpm, lim_daily_budget_nusd, lim_monthly_budget_nusd"

static void pg_read_user(const PGresult *r, int i, user_rec *u)
{
    memset(u, 0, sizeof *u);
    pg_copy(r, i, 0, u->id, sizeof u->id);
    pg_copy(r, i, 1, u->tenant_id, sizeof u->tenant_id);
    pg_copy(r, i, 2, u->external_id, sizeof u->external_id);
    pg_copy(r, i, 3, u->display_name, sizeof u->display_name);
    pg_copy(r, i, 4, u->tier, sizeof u->tier);
    u->disabled = pg_i64(r, i, 5) != 0;
    u->limits.rpm = pg_i64(r, i, 6);
    u->limits.tpm = pg_i64(r, i, 7);
    u->limits.max_concurrent_runs = pg_i64(r, i, 8);
    u->limits.daily_budget_nusd = pg_i64(r, i, 9);
    u->limits.monthly_budget_nusd = pg_i64(r, i, 10);
    u->created_at = pg_i64(r, i, 11);
}

static void pg_read_key(const PGresult *r, int i, key_rec *k)
{
    memset(k, 0, sizeof *k);
    pg_copy(r, i, 0, k->id, sizeof k->id);
    pg_copy(r, i, 1, k->tenant_id, sizeof k->tenant_id);
    pg_copy(r, i, 2, k->user_id, sizeof k->user_id);
    k->kind = (key_kind)pg_i64(r, i, 3);
    pg_copy(r, i, 4, k->prefix, sizeof k->prefix);
    pg_copy(r, i, 5, k->hash, sizeof k->hash);
    k->created_at = pg_i64(r, i, 6);
    k->revoked_at = pg_i64(r, i, 7);
    k->limits.rpm = pg_i64(r, i, 8);
    k->limits.tpm = pg_i64(r, i, 9);
    k->limits.max_concurrent_runs = -1;
    k->limits.daily_budget_nusd = pg_i64(r, i, 10);
    k->limits.monthly_budget_nusd = pg_i64(r, i, 11);
}

/* Every row of r into a fresh array (NULL when none). */
static store_status pg_collect_users(PGresult *r, user_rec **out, size_t *n)
{
    int rows = PQntuples(r);
    if (rows > 0) {
        user_rec *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(r); return STORE_ERROR; }
        for (int i = 0; i < rows; i++) pg_read_user(r, i, &arr[i]);
        *out = arr;
        *n = (size_t)rows;
    }
    PQclear(r);
    return STORE_OK;
}

static store_status pg_collect_keys(PGresult *r, key_rec **out, size_t *n)
{
    int rows = PQntuples(r);
    if (rows > 0) {
        key_rec *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(r); return STORE_ERROR; }
        for (int i = 0; i < rows; i++) pg_read_key(r, i, &arr[i]);
        *out = arr;
        *n = (size_t)rows;
    }
    PQclear(r);
    return STORE_OK;
}

store_status store_pg_load_users(struct pg_store *p, void (*fn)(const user_rec *u, void *arg), void *arg)
{
    store_status st;
    PGresult *r = pg_read(p, "SELECT " USER_COLS " FROM users", 0, NULL, &st, "load users");
    if (!r) return st;
    for (int i = 0; i < PQntuples(r); i++) {
        user_rec u;
        pg_read_user(r, i, &u);
        fn(&u, arg);
    }
    PQclear(r);
    return STORE_OK;
}

store_status store_pg_load_keys(struct pg_store *p, void (*fn)(const key_rec *k, void *arg), void *arg)
{
    store_status st;
    PGresult *r = pg_read(p, "SELECT " KEY_COLS " FROM keys", 0, NULL, &st, "load keys");
    if (!r) return st;
    for (int i = 0; i < PQntuples(r); i++) {
        key_rec k;
        pg_read_key(r, i, &k);
        fn(&k, arg);
    }
    PQclear(r);
    return STORE_OK;
}

/* ---- users ---- */

typedef struct pg_user_args {
    const char *tenant_id, *user_id, *external_id, *tier, *id;
    const user_rec *u;
    const user_update *upd;
    user_rec *out;
    const key_rec *k;
    int64_t when;
} pg_user_args;

static store_status pg_user_fetch(PGconn *c, const char *tenant_id, const char *user_id, user_rec *out)
{
    const char *params[2] = {user_id, tenant_id};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT " USER_COLS " FROM users WHERE id = $1 AND tenant_id = $2", 2, params,
                          &st, "get user");
    if (!r) return st;
    st = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
    if (st == STORE_OK) pg_read_user(r, 0, out);
    PQclear(r);
    return st;
}

static store_status pg_user_provision_op(PGconn *c, void *arg)
{
    pg_user_args *a = arg;
    const char *tp[1] = {a->tenant_id};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT 1 FROM tenants WHERE id = $1", 1, tp, &st, "provision");
    if (!r) return st;
    int found = PQntuples(r) == 1;
    PQclear(r);
    if (!found) return STORE_NOT_FOUND;
    /* Insert-or-keep: two instances' racing first requests of one subject
     * make one row (the unique index makes the second wait, then skip). */
    char id[ID_MAX], now[PG_I64_MAX];
    ids_new(id, "usr");
    const char *ip[5] = {id, a->tenant_id, a->external_id, a->tier && a->tier[0] ? a->tier : NULL,
                         pg_num(now, time_now_unix())};
    st = pg_run(c, "INSERT INTO users (id, tenant_id, external_id, tier, created_at)"
                   " VALUES ($1, $2, $3, COALESCE($4, (SELECT default_tier FROM tenants WHERE id = $2)), $5)"
                   " ON CONFLICT (tenant_id, external_id) DO NOTHING", 5, ip, "provision user");
    if (st != STORE_OK) return st;
    const char *sp[2] = {a->tenant_id, a->external_id};
    r = pg_exec(c, "SELECT " USER_COLS " FROM users WHERE tenant_id = $1 AND external_id = $2", 2, sp, &st,
                "read provisioned user");
    if (!r) return st;
    st = PQntuples(r) == 1 ? STORE_OK : STORE_ERROR;
    if (st == STORE_OK) pg_read_user(r, 0, a->out);
    PQclear(r);
    return st;
}

store_status store_pg_user_provision(store *st, const char *tenant_id, const char *external_id,
                                     const char *tier, user_rec *out)
{
    if (!tenant_id || !*tenant_id || !external_id || !*external_id || strlen(external_id) >= STORE_NAME_MAX)
        return STORE_INVALID;
    pg_user_args a = {.tenant_id = tenant_id, .external_id = external_id, .tier = tier, .out = out};
    return pg_write(st, pg_user_provision_op, &a);
}

static store_status pg_user_create_op(PGconn *c, void *arg)
{
    pg_user_args *a = arg;
    const user_rec *u = a->u;
    char v[7][PG_I64_MAX];
    const char *params[12] = {a->id, a->tenant_id, u->external_id, u->display_name,
                              u->tier[0] ? u->tier : NULL, pg_num(v[0], u->disabled),
                              pg_num(v[1], u->limits.rpm), pg_num(v[2], u->limits.tpm),
                              pg_num(v[3], u->limits.max_concurrent_runs),
                              pg_num(v[4], u->limits.daily_budget_nusd),
                              pg_num(v[5], u->limits.monthly_budget_nusd),
                              pg_num(v[6], u->created_at ? u->created_at : time_now_unix())};
    return pg_run(c, "INSERT INTO users (id, tenant_id, external_id, display_name, tier, disabled, lim_rpm,"
                     " lim_tpm, lim_max_concurrent_runs, lim_daily_budget_nusd, lim_monthly_budget_nusd,"
                     " created_at) VALUES ($1, $2, $3, $4,"
                     " COALESCE($5, (SELECT default_tier FROM tenants WHERE id = $2)),"
                     " $6, $7, $8, $9, $10, $11, $12)", 12, params, "insert user");
}

store_status store_pg_user_create(store *st, const scope *sc, const user_rec *u)
{
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (!u || !u->external_id[0]) return STORE_INVALID;
    /* the tenant is the scope's, whatever the record says */
    if (u->tenant_id[0] && strcmp(u->tenant_id, sc->tenant_id) != 0) return STORE_NOT_FOUND;
    char id[ID_MAX];
    if (u->id[0]) memcpy(id, u->id, sizeof id); else ids_new(id, "usr");
    pg_user_args a = {.tenant_id = sc->tenant_id, .u = u, .id = id};
    return pg_write(st, pg_user_create_op, &a);
}

store_status store_pg_user_get(struct pg_store *p, const scope *sc, const char *user_id, user_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !user_id) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    if (sc->role == SCOPE_USER && strcmp(sc->user_id, user_id) != 0) return STORE_NOT_FOUND;
    PGconn *c = pg_acquire(p);
    if (!c) return STORE_ERROR;
    store_status st = pg_user_fetch(c, sc->tenant_id, user_id, out);
    pg_release(p, c);
    return st;
}

store_status store_pg_user_list(struct pg_store *p, const scope *sc, const char *after, size_t limit,
                                user_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (limit == 0 || limit > 1000) limit = limit ? 1000 : 100;
    char lim[PG_I64_MAX];
    const char *params[3] = {sc->tenant_id, after ? after : "", pg_num(lim, (int64_t)limit)};
    store_status st;
    /* COLLATE "C": byte order, as SQLite's, so paging by id agrees */
    PGresult *r = pg_read(p, "SELECT " USER_COLS " FROM users WHERE tenant_id = $1 AND id COLLATE \"C\" > $2"
                             " ORDER BY id COLLATE \"C\" LIMIT $3", 3, params, &st, "list users");
    if (!r) return st;
    return pg_collect_users(r, out, n);
}

static store_status pg_user_update_op(PGconn *c, void *arg)
{
    pg_user_args *a = arg;
    const user_update *u = a->upd;
    char v[9][PG_I64_MAX];
    const char *params[14] = {u->set_tier ? "t" : "f", u->tier, u->set_disabled ? "t" : "f",
                              pg_num(v[0], u->disabled), u->set_display_name ? "t" : "f", u->display_name,
                              u->set_limits ? "t" : "f", pg_num(v[1], u->limits.rpm),
                              pg_num(v[2], u->limits.tpm), pg_num(v[3], u->limits.max_concurrent_runs),
                              pg_num(v[4], u->limits.daily_budget_nusd),
                              pg_num(v[5], u->limits.monthly_budget_nusd), a->user_id, a->tenant_id};
    store_status st;
    int64_t n = pg_run_count(c,
        "UPDATE users SET"
        " tier = CASE WHEN $1::boolean THEN $2 ELSE tier END,"
        " disabled = CASE WHEN $3::boolean THEN $4::bigint ELSE disabled END,"
        " display_name = CASE WHEN $5::boolean THEN $6 ELSE display_name END,"
        " lim_rpm = CASE WHEN $7::boolean THEN $8::bigint ELSE lim_rpm END,"
        " lim_tpm = CASE WHEN $7::boolean THEN $9::bigint ELSE lim_tpm END,"
        " lim_max_concurrent_runs = CASE WHEN $7::boolean THEN $10::bigint ELSE lim_max_concurrent_runs END,"
        " lim_daily_budget_nusd = CASE WHEN $7::boolean THEN $11::bigint ELSE lim_daily_budget_nusd END,"
        " lim_monthly_budget_nusd = CASE WHEN $7::boolean THEN $12::bigint ELSE lim_monthly_budget_nusd END"
        " WHERE id = $13 AND tenant_id = $14", 14, params, &st, "update user");
    if (n < 0) return st;
    if (n != 1) return STORE_NOT_FOUND;
    user_rec tmp;
    return pg_user_fetch(c, a->tenant_id, a->user_id, a->out ? a->out : &tmp);
}

static bool limits_ok(const user_limits *l)
{
    return l->rpm >= -1 && l->tpm >= -1 && l->max_concurrent_runs >= -1 && l->daily_budget_nusd >= -1 &&
           l->monthly_budget_nusd >= -1;
}

store_status store_pg_user_update(store *st, const scope *sc, const char *user_id, const user_update *upd,
                                  user_rec *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !user_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (!upd) return STORE_INVALID;
    if (upd->set_tier && (!upd->tier[0] || !memchr(upd->tier, '\0', sizeof upd->tier))) return STORE_INVALID;
    if (upd->set_display_name && !memchr(upd->display_name, '\0', sizeof upd->display_name))
        return STORE_INVALID;
    if (upd->set_limits && !limits_ok(&upd->limits)) return STORE_INVALID;
    pg_user_args a = {.tenant_id = sc->tenant_id, .user_id = user_id, .upd = upd, .out = out};
    return pg_write(st, pg_user_update_op, &a);
}

static store_status pg_user_delete_op(PGconn *c, void *arg)
{
    pg_user_args *a = arg;
    /* The same erasure as store_users.c, table by table, before the users
     * row, in this one transaction (a failure erases nothing). The memory
     * search vector is a column of the memory rows: it goes with them. */
    static const char *const erase[] = {
        "DELETE FROM keys WHERE user_id = $1 AND tenant_id = $2",
        "DELETE FROM memory WHERE tenant_id = $2 AND user_id = $1",
        "DELETE FROM messages WHERE session_id IN"
        " (SELECT id FROM sessions WHERE user_id = $1 AND tenant_id = $2)",
        "DELETE FROM runs WHERE session_id IN"
        " (SELECT id FROM sessions WHERE user_id = $1 AND tenant_id = $2)",
        "DELETE FROM sessions WHERE user_id = $1 AND tenant_id = $2",
        "DELETE FROM approvals WHERE user_id = $1 AND tenant_id = $2",
        "DELETE FROM run_waits WHERE user_id = $1 AND tenant_id = $2",
        "DELETE FROM responses WHERE user_id = $1 AND tenant_id = $2",
        "DELETE FROM guard_decisions WHERE user_id = $1 AND tenant_id = $2",
        "DELETE FROM traces WHERE tenant_id = $2 AND user_id = $1",
        "DELETE FROM connections WHERE user_id = $1 AND tenant_id = $2",
        "DELETE FROM oauth_flows WHERE user_id = $1 AND tenant_id = $2",
    };
    const char *params[2] = {a->user_id, a->tenant_id};
    for (size_t i = 0; i < sizeof erase / sizeof erase[0]; i++) {
        store_status st = pg_run(c, erase[i], 2, params, "erase user data");
        if (st != STORE_OK) return st;
    }
    store_status st;
    int64_t n = pg_run_count(c, "DELETE FROM users WHERE id = $1 AND tenant_id = $2", 2, params, &st,
                             "delete user");
    if (n < 0) return st;
    return n == 1 ? STORE_OK : STORE_NOT_FOUND;   /* NOT_FOUND rolls back: nothing erased */
}

store_status store_pg_user_delete(store *st, const scope *sc, const char *user_id)
{
    if (!scope_valid(sc) || !user_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    pg_user_args a = {.tenant_id = sc->tenant_id, .user_id = user_id};
    return pg_write(st, pg_user_delete_op, &a);
}

/* ---- keys ---- */

static store_status pg_key_create_op(PGconn *c, void *arg)
{
    pg_user_args *a = arg;
    const key_rec *k = a->k;
    if (k->kind == KEY_KIND_USER) {
        /* the user must be this tenant's: locked, so a concurrent delete
         * on another instance waits for this transaction */
        const char *up[2] = {k->user_id, a->tenant_id};
        store_status st;
        PGresult *r = pg_exec(c, "SELECT 1 FROM users WHERE id = $1 AND tenant_id = $2 FOR SHARE", 2, up, &st,
                              "key owner");
        if (!r) return st;
        int alive = PQntuples(r) == 1;
        PQclear(r);
        if (!alive) return STORE_NOT_FOUND;
    }
    const user_limits *l = &k->limits;
    bool none = !l->rpm && !l->tpm && !l->daily_budget_nusd && !l->monthly_budget_nusd;
    char v[6][PG_I64_MAX];
    const char *params[11] = {k->id, a->tenant_id, k->kind == KEY_KIND_USER ? k->user_id : NULL,
                              pg_num(v[0], k->kind), k->prefix, k->hash, pg_num(v[1], k->created_at),
                              pg_num(v[2], none ? -1 : l->rpm), pg_num(v[3], none ? -1 : l->tpm),
                              pg_num(v[4], none ? -1 : l->daily_budget_nusd),
                              pg_num(v[5], none ? -1 : l->monthly_budget_nusd)};
    return pg_run(c, "INSERT INTO keys (id, tenant_id, user_id, kind, prefix, hash, created_at, revoked_at,"
                     " lim_rpm, lim_tpm, lim_daily_budget_nusd, lim_monthly_budget_nusd)"
                     " VALUES ($1,$2,$3,$4,$5,$6,$7,0,$8,$9,$10,$11)", 11, params, "insert key");
}

store_status store_pg_key_create(store *st, const scope *sc, const key_rec *k)
{
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (!k || !k->id[0] || !k->hash[0] || (k->kind != KEY_KIND_USER && k->kind != KEY_KIND_ADMIN))
        return STORE_INVALID;
    if (k->kind == KEY_KIND_USER && !k->user_id[0]) return STORE_INVALID;
    if (k->tenant_id[0] && strcmp(k->tenant_id, sc->tenant_id) != 0) return STORE_NOT_FOUND;
    pg_user_args a = {.tenant_id = sc->tenant_id, .k = k};
    return pg_write(st, pg_key_create_op, &a);
}

store_status store_pg_key_list(struct pg_store *p, const scope *sc, const char *user_id, key_rec **out,
                               size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    if (sc->role == SCOPE_USER) {
        if (user_id && strcmp(user_id, sc->user_id) != 0) return STORE_NOT_FOUND;
        user_id = sc->user_id;
    }
    if (user_id) {
        /* the keys of a user not in the tenant: "no such user", not an empty list */
        user_rec u;
        store_status r = store_pg_user_get(p, sc, user_id, &u);
        if (r != STORE_OK) return r;
    }
    store_status st;
    const char *params[2] = {sc->tenant_id, user_id};
    PGresult *r = user_id
        ? pg_read(p, "SELECT " KEY_COLS " FROM keys WHERE tenant_id = $1 AND user_id = $2"
                     " ORDER BY created_at, id COLLATE \"C\"", 2, params, &st, "list keys")
        : pg_read(p, "SELECT " KEY_COLS " FROM keys WHERE tenant_id = $1 ORDER BY created_at, id COLLATE \"C\"",
                  1, params, &st, "list keys");
    if (!r) return st;
    return pg_collect_keys(r, out, n);
}

store_status store_pg_key_get(struct pg_store *p, const scope *sc, const char *key_id, key_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !key_id) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    store_status st;
    const char *params[2] = {key_id, sc->tenant_id};
    PGresult *r = pg_read(p, "SELECT " KEY_COLS " FROM keys WHERE id = $1 AND tenant_id = $2", 2, params, &st,
                          "get key");
    if (!r) return st;
    st = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
    if (st == STORE_OK) pg_read_key(r, 0, out);
    PQclear(r);
    if (st == STORE_OK && sc->role == SCOPE_USER && strcmp(out->user_id, sc->user_id) != 0) {
        memset(out, 0, sizeof *out);
        st = STORE_NOT_FOUND;
    }
    return st;
}

static store_status pg_key_revoke_op(PGconn *c, void *arg)
{
    pg_user_args *a = arg;
    char kind[PG_I64_MAX], when[PG_I64_MAX];
    store_status st;
    if (!a->user_id) {   /* a user's revocation never reaches an admin key */
        const char *lp[1] = {a->tenant_id};
        PGresult *r = pg_exec(c, "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE", 1, lp, &st, "lock tenant");
        if (!r) return st;
        PQclear(r);
        const char *cp[3] = {a->id, a->tenant_id, pg_num(kind, KEY_KIND_ADMIN)};
        r = pg_exec(c, "SELECT (SELECT kind = $3::bigint AND revoked_at = 0 FROM keys WHERE id = $1 AND tenant_id = $2),"
                       " (SELECT count(*) FROM keys WHERE tenant_id = $2 AND kind = $3::bigint AND revoked_at = 0"
                       " AND id <> $1)", 3, cp, &st, "count admin keys");
        if (!r) return st;
        bool last = strcmp(PQgetvalue(r, 0, 0), "t") == 0 && pg_i64(r, 0, 1) == 0;
        PQclear(r);
        if (last) return STORE_CONFLICT;
    }
    /* revoking twice keeps the first time */
    const char *params[4] = {pg_num(when, a->when), a->id, a->tenant_id, a->user_id};
    int64_t n = pg_run_count(c, "UPDATE keys SET revoked_at = CASE WHEN revoked_at = 0 THEN $1::bigint"
                                " ELSE revoked_at END WHERE id = $2 AND tenant_id = $3"
                                " AND ($4::text IS NULL OR user_id = $4)", 4, params, &st, "revoke key");
    if (n < 0) return st;
    return n == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_pg_key_revoke(store *st, const scope *sc, const char *key_id, int64_t when)
{
    if (!scope_valid(sc) || !key_id) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    if (when <= 0) return STORE_INVALID;
    pg_user_args a = {.tenant_id = sc->tenant_id, .user_id = sc->role == SCOPE_USER ? sc->user_id : NULL,
                      .id = key_id, .when = when};
    return pg_write(st, pg_key_revoke_op, &a);
}

store_status store_pg_admin_key_list(struct pg_store *p, const scope *sc, key_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    char kind[PG_I64_MAX];
    const char *params[2] = {sc->tenant_id, pg_num(kind, KEY_KIND_ADMIN)};
    store_status st;
    PGresult *r = pg_read(p, "SELECT " KEY_COLS " FROM keys WHERE tenant_id = $1 AND kind = $2"
                             " ORDER BY created_at, id COLLATE \"C\"", 2, params, &st, "list admin keys");
    if (!r) return st;
    return pg_collect_keys(r, out, n);
}
