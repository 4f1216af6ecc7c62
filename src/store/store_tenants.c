/* store_tenants.c — tenants and their JWT issuer settings.
 *
 * Who may do what: the server admin creates and lists tenants (and sees no
 * user data); a tenant admin reads and configures only its own tenant (its
 * JWT settings are its alone once the tenant exists); a
 * user may read its own tenant's name and tier (for /v1/me) but never its
 * JWT key. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENANT_COLS "id, name, default_tier, jwt_issuer, jwt_audience, jwt_alg, jwt_key, created_at, " \
    "lim_rpm, lim_tpm, lim_max_concurrent_runs, lim_daily_budget_nusd, lim_monthly_budget_nusd"

static int store_read_tenant(sqlite3_stmt *s, tenant_rec *t, bool with_key)
{
    memset(t, 0, sizeof *t);
    store_col_copy(s, 0, t->id, sizeof t->id);
    store_col_copy(s, 1, t->name, sizeof t->name);
    store_col_copy(s, 2, t->default_tier, sizeof t->default_tier);
    t->has_jwt = sqlite3_column_type(s, 3) != SQLITE_NULL;
    if (t->has_jwt) {
        store_col_copy(s, 3, t->jwt.issuer, sizeof t->jwt.issuer);
        store_col_copy(s, 4, t->jwt.audience, sizeof t->jwt.audience);
        store_col_copy(s, 5, t->jwt.alg, sizeof t->jwt.alg);
        const unsigned char *k = sqlite3_column_text(s, 6);
        if (with_key && k) {
            t->jwt.key = strdup((const char *)k);
            if (!t->jwt.key) return -1;
        }
    }
    t->created_at = sqlite3_column_int64(s, 7);
    t->limits.rpm = sqlite3_column_int64(s, 8);
    t->limits.tpm = sqlite3_column_int64(s, 9);
    t->limits.max_concurrent_runs = sqlite3_column_int64(s, 10);
    t->limits.daily_budget_nusd = sqlite3_column_int64(s, 11);
    t->limits.monthly_budget_nusd = sqlite3_column_int64(s, 12);
    return 0;
}

void tenant_rec_free(tenant_rec *t)
{
    if (!t) return;
    free(t->jwt.key);
    t->jwt.key = NULL;
}

void store_free_tenants(tenant_rec *arr, size_t n)
{
    if (!arr) return;
    for (size_t i = 0; i < n; i++) tenant_rec_free(&arr[i]);
    free(arr);
}

/* a listed tenant carries its key: only admins list */
static int store_tenant_row(sqlite3_stmt *s, void *rec) { return store_read_tenant(s, rec, true); }
static void store_tenant_rows_free(void *arr, size_t n) { store_free_tenants(arr, n); }
static const store_rows tenant_rows = {sizeof(tenant_rec), store_tenant_row, store_tenant_rows_free,
                                       "list tenants"};

/* ---- authentication-time load ---- */

store_status store_load_tenants(store *st, void (*fn)(const tenant_rec *t, void *arg), void *arg)
{
    STORE_PG_DISPATCH(st, store_pg_load_tenants(store_pg_of(st), fn, arg));
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " TENANT_COLS " FROM tenants ORDER BY id");
    if (!s) return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        tenant_rec t;
        if (store_read_tenant(s, &t, true) != 0) { sqlite3_reset(s); return STORE_ERROR; }
        fn(&t, arg);
        tenant_rec_free(&t);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(c, rc, "load tenants");
}

/* ---- create ---- */

typedef struct tenant_create_args {
    const tenant_rec *t;
    const key_rec *k;
} tenant_create_args;

static store_status store_bind_jwt(sqlite3_stmt *s, int first, const tenant_jwt *j)
{
    if (j) {
        store_bind_text(s, first, j->issuer);
        if (j->audience[0]) store_bind_text(s, first + 1, j->audience);
        store_bind_text(s, first + 2, j->alg);
        store_bind_text(s, first + 3, j->key);
    }   /* else all four stay NULL (cleared bindings) */
    return STORE_OK;
}

static store_status store_tenant_create_op(store_conn *c, void *arg)
{
    tenant_create_args *a = arg;
    sqlite3_stmt *s = store_stmt(c,
        "INSERT INTO tenants (id, name, default_tier, jwt_issuer, jwt_audience, jwt_alg, jwt_key, created_at)"
        " VALUES (?,?,?,?,?,?,?,?)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->t->id);
    store_bind_text(s, 2, a->t->name);
    store_bind_text(s, 3, a->t->default_tier[0] ? a->t->default_tier : "default");
    store_bind_jwt(s, 4, a->t->has_jwt ? &a->t->jwt : NULL);
    sqlite3_bind_int64(s, 8, a->t->created_at);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "insert tenant");

    s = store_stmt(c, "INSERT INTO keys (id, tenant_id, user_id, kind, prefix, hash, created_at, revoked_at)"
                      " VALUES (?,?,NULL,?,?,?,?,0)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->k->id);
    store_bind_text(s, 2, a->t->id);
    sqlite3_bind_int(s, 3, KEY_KIND_ADMIN);
    store_bind_text(s, 4, a->k->prefix);
    store_bind_text(s, 5, a->k->hash);
    sqlite3_bind_int64(s, 6, a->k->created_at);
    return store_step_done(c, s, "insert admin key");
}

static bool store_jwt_ok(const tenant_jwt *j)
{
    return j->issuer[0] && j->alg[0] && j->key && j->key[0];
}

store_status store_tenant_create(store *st, const scope *sc, const tenant_rec *t,
                                 const key_rec *admin_key)
{
    STORE_PG_DISPATCH(st, store_pg_tenant_create(st, sc, t, admin_key));
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    if (!t || !admin_key || !t->id[0] || !t->name[0] || !admin_key->id[0] || !admin_key->hash[0] ||
        admin_key->kind != KEY_KIND_ADMIN)
        return STORE_INVALID;
    if (t->has_jwt && !store_jwt_ok(&t->jwt)) return STORE_INVALID;
    tenant_create_args a = {t, admin_key};
    return store_write(st, store_tenant_create_op, &a);
}

/* ---- read ---- */

store_status store_tenant_list(store *st, const scope *sc, tenant_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_tenant_list(store_pg_of(st), sc, out, n));
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_USER) return STORE_FORBIDDEN;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s;
    if (sc->role == SCOPE_SERVER_ADMIN) {
        s = store_stmt(c, "SELECT " TENANT_COLS " FROM tenants ORDER BY created_at, id");
    } else {
        s = store_stmt(c, "SELECT " TENANT_COLS " FROM tenants WHERE id = ?");
        if (s) store_bind_text(s, 1, sc->tenant_id);
    }
    if (!s) return STORE_ERROR;
    void *arr;
    store_status res = store_collect(c, s, &tenant_rows, 0, &arr, n);
    *out = arr;
    return res;
}

store_status store_tenant_get(store *st, const scope *sc, const char *tenant_id, tenant_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_tenant_get(store_pg_of(st), sc, tenant_id, out));
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !tenant_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_SERVER_ADMIN && strcmp(sc->tenant_id, tenant_id) != 0) return STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " TENANT_COLS " FROM tenants WHERE id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, tenant_id);
    int rc = sqlite3_step(s);
    store_status res;
    if (rc == SQLITE_ROW)
        /* a user learns its tenant's name, never the tenant's JWT key */
        res = store_read_tenant(s, out, sc->role != SCOPE_USER) == 0 ? STORE_OK : STORE_ERROR;
    else
        res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "get tenant");
    sqlite3_reset(s);
    return res;
}

/* ---- limits ---- */

typedef struct tenant_limits_args {
    const char *tenant_id;
    const user_limits *l;
} tenant_limits_args;

static store_status store_tenant_set_limits_op(store_conn *c, void *arg)
{
    tenant_limits_args *a = arg;
    sqlite3_stmt *s = store_stmt(c,
        "UPDATE tenants SET lim_rpm = ?, lim_tpm = ?, lim_max_concurrent_runs = ?,"
        " lim_daily_budget_nusd = ?, lim_monthly_budget_nusd = ? WHERE id = ?");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, a->l->rpm);
    sqlite3_bind_int64(s, 2, a->l->tpm);
    sqlite3_bind_int64(s, 3, a->l->max_concurrent_runs);
    sqlite3_bind_int64(s, 4, a->l->daily_budget_nusd);
    sqlite3_bind_int64(s, 5, a->l->monthly_budget_nusd);
    store_bind_text(s, 6, a->tenant_id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "set tenant limits");
    return sqlite3_changes(c->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_tenant_set_limits(store *st, const scope *sc, const char *tenant_id,
                                     const user_limits *limits)
{
    STORE_PG_DISPATCH(st, store_pg_tenant_set_limits(st, sc, tenant_id, limits));
    if (!scope_valid(sc) || !tenant_id || !limits) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    tenant_limits_args a = {tenant_id, limits};
    return store_write(st, store_tenant_set_limits_op, &a);
}

/* ---- jwt settings ---- */

typedef struct tenant_jwt_args {
    const char *tenant_id;
    const tenant_jwt *jwt;
} tenant_jwt_args;

static store_status store_tenant_set_jwt_op(store_conn *c, void *arg)
{
    tenant_jwt_args *a = arg;
    sqlite3_stmt *s = store_stmt(c,
        "UPDATE tenants SET jwt_issuer = ?, jwt_audience = ?, jwt_alg = ?, jwt_key = ? WHERE id = ?");
    if (!s) return STORE_ERROR;
    store_bind_jwt(s, 1, a->jwt);
    store_bind_text(s, 5, a->tenant_id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "set tenant jwt");
    return sqlite3_changes(c->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_tenant_set_jwt(store *st, const scope *sc, const char *tenant_id,
                                  const tenant_jwt *jwt)
{
    STORE_PG_DISPATCH(st, store_pg_tenant_set_jwt(st, sc, tenant_id, jwt));
    if (!scope_valid(sc) || !tenant_id) return STORE_NOT_FOUND;
    /* Once a tenant exists its sign-in settings are its own admin's: the
     * server admin could otherwise point them at an issuer it controls and
     * sign in as any user. */
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (strcmp(sc->tenant_id, tenant_id) != 0) return STORE_NOT_FOUND;
    if (jwt && !store_jwt_ok(jwt)) return STORE_INVALID;
    tenant_jwt_args a = {tenant_id, jwt};
    return store_write(st, store_tenant_set_jwt_op, &a);
}

/* ---- sealing keys stored by older versions ---- */

typedef struct tenant_reseal_args {
    const char *tenant_id, *old_key, *new_key;
} tenant_reseal_args;

static store_status store_tenant_reseal_op(store_conn *c, void *arg)
{
    tenant_reseal_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "UPDATE tenants SET jwt_key = ? WHERE id = ? AND jwt_key = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->new_key);
    store_bind_text(s, 2, a->tenant_id);
    store_bind_text(s, 3, a->old_key);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "reseal tenant jwt key");
    return sqlite3_changes(c->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_tenant_reseal_jwt_key(store *st, const char *tenant_id, const char *old_key,
                                         const char *new_key)
{
    STORE_PG_DISPATCH(st, store_pg_tenant_reseal_jwt_key(st, tenant_id, old_key, new_key));
    if (!tenant_id || !old_key || !new_key) return STORE_INVALID;
    tenant_reseal_args a = {tenant_id, old_key, new_key};
    return store_write(st, store_tenant_reseal_op, &a);
}
