/* store_pg_tenants.c — tenants and their JWT settings on PostgreSQL (the
 * same contracts and scope rules as store_tenants.c: the server admin
 * creates, lists and sets limits; a tenant admin reads and configures only
 * its own tenant; a user reads its tenant's name, never its JWT key). */
#include "store/store_pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENANT_COLS "id, name, default_tier, jwt_issuer, jwt_audience, jwt_alg, jwt_key, created_at, " \
    "lim_rpm, lim_tpm, lim_max_concurrent_runs, lim_daily_budget_nusd, lim_monthly_budget_nusd"

static int pg_read_tenant(const PGresult *r, int i, tenant_rec *t, bool with_key)
{
    memset(t, 0, sizeof *t);
    pg_copy(r, i, 0, t->id, sizeof t->id);
    pg_copy(r, i, 1, t->name, sizeof t->name);
    pg_copy(r, i, 2, t->default_tier, sizeof t->default_tier);
    t->has_jwt = !PQgetisnull(r, i, 3);
    if (t->has_jwt) {
        pg_copy(r, i, 3, t->jwt.issuer, sizeof t->jwt.issuer);
        pg_copy(r, i, 4, t->jwt.audience, sizeof t->jwt.audience);
        pg_copy(r, i, 5, t->jwt.alg, sizeof t->jwt.alg);
        if (with_key && !PQgetisnull(r, i, 6) && !(t->jwt.key = strdup(PQgetvalue(r, i, 6))))
            return -1;
    }
    t->created_at = pg_i64(r, i, 7);
    t->limits.rpm = pg_i64(r, i, 8);
    t->limits.tpm = pg_i64(r, i, 9);
    t->limits.max_concurrent_runs = pg_i64(r, i, 10);
    t->limits.daily_budget_nusd = pg_i64(r, i, 11);
    t->limits.monthly_budget_nusd = pg_i64(r, i, 12);
    return 0;
}

store_status store_pg_load_tenants(struct pg_store *p, void (*fn)(const tenant_rec *t, void *arg), void *arg)
{
    store_status st;
    PGresult *r = pg_read(p, "SELECT " TENANT_COLS " FROM tenants ORDER BY id", 0, NULL, &st, "load tenants");
    if (!r) return st;
    for (int i = 0; i < PQntuples(r); i++) {
        tenant_rec t;
        if (pg_read_tenant(r, i, &t, true) != 0) { PQclear(r); return STORE_ERROR; }
        fn(&t, arg);
        tenant_rec_free(&t);
    }
    PQclear(r);
    return STORE_OK;
}

/* ---- create ---- */

typedef struct pg_tenant_args {
    const tenant_rec *t;
    const key_rec *k;
    const char *tenant_id, *old_key, *new_key;
    const user_limits *l;
    const tenant_jwt *jwt;
} pg_tenant_args;

static bool jwt_ok(const tenant_jwt *j) { return j->issuer[0] && j->alg[0] && j->key && j->key[0]; }

static store_status pg_tenant_create_op(PGconn *c, void *arg)
{
    pg_tenant_args *a = arg;
    const tenant_jwt *j = a->t->has_jwt ? &a->t->jwt : NULL;
    char created[PG_I64_MAX], kcreated[PG_I64_MAX], kind[PG_I64_MAX];
    const char *tp[8] = {a->t->id, a->t->name, a->t->default_tier[0] ? a->t->default_tier : "default",
                         j ? j->issuer : NULL, j && j->audience[0] ? j->audience : NULL,
                         j ? j->alg : NULL, j ? j->key : NULL, pg_num(created, a->t->created_at)};
    store_status r = pg_run(c, "INSERT INTO tenants (id, name, default_tier, jwt_issuer, jwt_audience,"
                               " jwt_alg, jwt_key, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
                            8, tp, "insert tenant");
    if (r != STORE_OK) return r;
    const char *kp[6] = {a->k->id, a->t->id, pg_num(kind, KEY_KIND_ADMIN), a->k->prefix, a->k->hash,
                         pg_num(kcreated, a->k->created_at)};
    return pg_run(c, "INSERT INTO keys (id, tenant_id, user_id, kind, prefix, hash, created_at, revoked_at)"
                     " VALUES ($1,$2,NULL,$3,$4,$5,$6,0)", 6, kp, "insert admin key");
}

store_status store_pg_tenant_create(store *st, const scope *sc, const tenant_rec *t, const key_rec *admin_key)
{
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    if (!t || !admin_key || !t->id[0] || !t->name[0] || !admin_key->id[0] || !admin_key->hash[0] ||
        admin_key->kind != KEY_KIND_ADMIN)
        return STORE_INVALID;
    if (t->has_jwt && !jwt_ok(&t->jwt)) return STORE_INVALID;
    pg_tenant_args a = {.t = t, .k = admin_key};
    return pg_write(st, pg_tenant_create_op, &a);
}

/* ---- read ---- */

store_status store_pg_tenant_list(struct pg_store *p, const scope *sc, tenant_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_USER) return STORE_FORBIDDEN;
    store_status st;
    const char *params[1] = {sc->tenant_id};
    PGresult *r = sc->role == SCOPE_SERVER_ADMIN
        ? pg_read(p, "SELECT " TENANT_COLS " FROM tenants ORDER BY created_at, id", 0, NULL, &st, "list tenants")
        : pg_read(p, "SELECT " TENANT_COLS " FROM tenants WHERE id = $1", 1, params, &st, "list tenants");
    if (!r) return st;
    int rows = PQntuples(r);
    if (rows > 0) {
        tenant_rec *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(r); return STORE_ERROR; }
        for (int i = 0; i < rows; i++) {
            if (pg_read_tenant(r, i, &arr[i], true) != 0) {
                store_free_tenants(arr, (size_t)i);
                PQclear(r);
                return STORE_ERROR;
            }
        }
        *out = arr;
        *n = (size_t)rows;
    }
    PQclear(r);
    return STORE_OK;
}

store_status store_pg_tenant_get(struct pg_store *p, const scope *sc, const char *tenant_id, tenant_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !tenant_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_SERVER_ADMIN && strcmp(sc->tenant_id, tenant_id) != 0) return STORE_NOT_FOUND;
    store_status st;
    const char *params[1] = {tenant_id};
    PGresult *r = pg_read(p, "SELECT " TENANT_COLS " FROM tenants WHERE id = $1", 1, params, &st, "get tenant");
    if (!r) return st;
    if (PQntuples(r) == 1)
        /* a user learns its tenant's name, never the tenant's JWT key */
        st = pg_read_tenant(r, 0, out, sc->role != SCOPE_USER) == 0 ? STORE_OK : STORE_ERROR;
    else
        st = STORE_NOT_FOUND;
    PQclear(r);
    return st;
}

/* ---- limits, JWT settings, resealing ---- */

static store_status pg_tenant_limits_op(PGconn *c, void *arg)
{
    pg_tenant_args *a = arg;
    char v[5][PG_I64_MAX];
    const char *params[6] = {pg_num(v[0], a->l->rpm), pg_num(v[1], a->l->tpm),
                             pg_num(v[2], a->l->max_concurrent_runs), pg_num(v[3], a->l->daily_budget_nusd),
                             pg_num(v[4], a->l->monthly_budget_nusd), a->tenant_id};
    store_status st;
    int64_t n = pg_run_count(c, "UPDATE tenants SET lim_rpm = $1, lim_tpm = $2, lim_max_concurrent_runs = $3,"
                                " lim_daily_budget_nusd = $4, lim_monthly_budget_nusd = $5 WHERE id = $6",
                             6, params, &st, "set tenant limits");
    return n < 0 ? st : n == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_pg_tenant_set_limits(store *st, const scope *sc, const char *tenant_id,
                                        const user_limits *limits)
{
    if (!scope_valid(sc) || !tenant_id || !limits) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    pg_tenant_args a = {.tenant_id = tenant_id, .l = limits};
    return pg_write(st, pg_tenant_limits_op, &a);
}

static store_status pg_tenant_jwt_op(PGconn *c, void *arg)
{
    pg_tenant_args *a = arg;
    const tenant_jwt *j = a->jwt;
    const char *params[5] = {j ? j->issuer : NULL, j && j->audience[0] ? j->audience : NULL,
                             j ? j->alg : NULL, j ? j->key : NULL, a->tenant_id};
    store_status st;
    int64_t n = pg_run_count(c, "UPDATE tenants SET jwt_issuer = $1, jwt_audience = $2, jwt_alg = $3,"
                                " jwt_key = $4 WHERE id = $5", 5, params, &st, "set tenant jwt");
    return n < 0 ? st : n == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_pg_tenant_set_jwt(store *st, const scope *sc, const char *tenant_id, const tenant_jwt *jwt)
{
    if (!scope_valid(sc) || !tenant_id) return STORE_NOT_FOUND;
    /* once a tenant exists its sign-in settings are its own admin's */
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (strcmp(sc->tenant_id, tenant_id) != 0) return STORE_NOT_FOUND;
    if (jwt && !jwt_ok(jwt)) return STORE_INVALID;
    pg_tenant_args a = {.tenant_id = tenant_id, .jwt = jwt};
    return pg_write(st, pg_tenant_jwt_op, &a);
}

static store_status pg_tenant_reseal_op(PGconn *c, void *arg)
{
    pg_tenant_args *a = arg;
    const char *params[3] = {a->new_key, a->tenant_id, a->old_key};
    store_status st;
    int64_t n = pg_run_count(c, "UPDATE tenants SET jwt_key = $1 WHERE id = $2 AND jwt_key = $3", 3, params,
                             &st, "reseal tenant jwt key");
    return n < 0 ? st : n == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_pg_tenant_reseal_jwt_key(store *st, const char *tenant_id, const char *old_key,
                                            const char *new_key)
{
    if (!tenant_id || !old_key || !new_key) return STORE_INVALID;
    pg_tenant_args a = {.tenant_id = tenant_id, .old_key = old_key, .new_key = new_key};
    return pg_write(st, pg_tenant_reseal_op, &a);
}
