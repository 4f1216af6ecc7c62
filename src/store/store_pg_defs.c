/* store_pg_defs.c — a tenant's own tools, agents and MCP servers on
 * PostgreSQL (the same contracts as store_tenant_defs.c: bound to the
 * caller's tenant; its users read, its admin writes). Creating locks the
 * tenant's row first, so two instances cannot both pass the count bound. */
#include "store/store_pg_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"
#include "util/utf8.h"

static bool args_ok(store_def_kind kind, const char *name, const char *body)
{
    size_t n = name ? strnlen(name, STORE_DEF_NAME_MAX) : 0;
    if (n == 0 || n >= STORE_DEF_NAME_MAX || !utf8_valid(name, n)) return false;
    if (kind != STORE_DEF_TOOL && kind != STORE_DEF_AGENT && kind != STORE_DEF_MCP) return false;
    return !body || strnlen(body, STORE_DEF_BODY_MAX + 1) <= STORE_DEF_BODY_MAX;
}

static store_status may(const scope *sc, bool write)
{
    if (!scope_valid(sc) || !sc->tenant_id[0]) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_TENANT_ADMIN) return STORE_OK;
    return !write && sc->role == SCOPE_USER ? STORE_OK : STORE_FORBIDDEN;
}

static int read_def(const PGresult *r, int i, def_rec *d)
{
    memset(d, 0, sizeof *d);
    pg_copy(r, i, 0, d->name, sizeof d->name);
    if (!PQgetisnull(r, i, 1) && !(d->body = strdup(PQgetvalue(r, i, 1)))) return -1;
    d->created_at = pg_i64(r, i, 2);
    d->updated_at = pg_i64(r, i, 3);
    return 0;
}

typedef struct def_args {
    const scope *sc;
    store_def_kind kind;
    const char *name, *body;
    size_t max_count;
    int64_t now;
} def_args;

static store_status create_op(PGconn *c, void *arg)
{
    def_args *a = arg;
    char kind[PG_I64_MAX], now[PG_I64_MAX];
    const char *lp[2] = {a->sc->tenant_id, pg_num(kind, a->kind)};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE", 1, lp, &st, "lock tenant");
    if (!r) return st;
    PQclear(r);
    r = pg_exec(c, "SELECT count(*) FROM tenant_defs WHERE tenant_id = $1 AND kind = $2", 2, lp, &st,
                "count tenant definitions");
    if (!r) return st;
    int64_t count = pg_i64(r, 0, 0);
    PQclear(r);
    if ((size_t)count >= a->max_count) return STORE_QUOTA;
    const char *p[6] = {a->sc->tenant_id, kind, a->name, a->body, pg_num(now, a->now), now};
    return pg_run(c, "INSERT INTO tenant_defs (tenant_id, kind, name, body, created_at, updated_at)"
                     " VALUES ($1,$2,$3,$4,$5,$6)", 6, p, "create tenant definition");
}

store_status store_pg_def_create(store *st, const scope *sc, store_def_kind kind, const char *name,
                                 const char *body, size_t max_count)
{
    store_status m = may(sc, true);
    if (m != STORE_OK) return m;
    if (!args_ok(kind, name, body)) return STORE_INVALID;
    def_args a = {sc, kind, name, body, max_count, time_now_unix()};
    return pg_write(st, create_op, &a);
}

static store_status update_op(PGconn *c, void *arg)
{
    def_args *a = arg;
    char kind[PG_I64_MAX], now[PG_I64_MAX];
    const char *p[5] = {a->body, pg_num(now, a->now), a->sc->tenant_id, pg_num(kind, a->kind), a->name};
    store_status st;
    int64_t n = pg_run_count(c, "UPDATE tenant_defs SET body = $1, updated_at = $2 WHERE tenant_id = $3"
                                " AND kind = $4 AND name = $5 AND body IS NOT NULL", 5, p, &st,
                             "update tenant definition");
    return n < 0 ? st : n == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_pg_def_update(store *st, const scope *sc, store_def_kind kind, const char *name,
                                 const char *body)
{
    store_status m = may(sc, true);
    if (m != STORE_OK) return m;
    if (!body || !args_ok(kind, name, body)) return STORE_INVALID;
    def_args a = {sc, kind, name, body, 0, time_now_unix()};
    return pg_write(st, update_op, &a);
}

static store_status delete_op(PGconn *c, void *arg)
{
    def_args *a = arg;
    char kind[PG_I64_MAX];
    const char *p[3] = {a->sc->tenant_id, pg_num(kind, a->kind), a->name};
    store_status st;
    int64_t n = pg_run_count(c, "DELETE FROM tenant_defs WHERE tenant_id = $1 AND kind = $2 AND name = $3", 3,
                             p, &st, "delete tenant definition");
    return n < 0 ? st : n == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_pg_def_delete(store *st, const scope *sc, store_def_kind kind, const char *name)
{
    store_status m = may(sc, true);
    if (m != STORE_OK) return m;
    if (!args_ok(kind, name, NULL)) return STORE_NOT_FOUND;
    def_args a = {sc, kind, name, NULL, 0, 0};
    return pg_write(st, delete_op, &a);
}

store_status store_pg_def_get(struct pg_store *p, const scope *sc, store_def_kind kind, const char *name,
                              def_rec *out)
{
    memset(out, 0, sizeof *out);
    store_status m = may(sc, false);
    if (m != STORE_OK) return m;
    if (!args_ok(kind, name, NULL)) return STORE_NOT_FOUND;
    char k[PG_I64_MAX];
    const char *params[3] = {sc->tenant_id, pg_num(k, kind), name};
    store_status st;
    PGresult *r = pg_read(p, "SELECT name, body, created_at, updated_at FROM tenant_defs"
                             " WHERE tenant_id = $1 AND kind = $2 AND name = $3", 3, params, &st,
                          "get tenant definition");
    if (!r) return st;
    st = PQntuples(r) == 1 ? (read_def(r, 0, out) == 0 ? STORE_OK : STORE_ERROR) : STORE_NOT_FOUND;
    PQclear(r);
    return st;
}

store_status store_pg_def_list(struct pg_store *p, const scope *sc, store_def_kind kind, def_rec **out,
                               size_t *n)
{
    *out = NULL;
    *n = 0;
    store_status m = may(sc, false);
    if (m != STORE_OK) return m;
    char k[PG_I64_MAX];
    const char *params[2] = {sc->tenant_id, pg_num(k, kind)};
    store_status st;
    PGresult *r = pg_read(p, "SELECT name, body, created_at, updated_at FROM tenant_defs"
                             " WHERE tenant_id = $1 AND kind = $2 ORDER BY name COLLATE \"C\"", 2, params, &st,
                          "list tenant definitions");
    if (!r) return st;
    int rows = PQntuples(r);
    if (rows > 0) {
        def_rec *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(r); return STORE_ERROR; }
        for (int i = 0; i < rows; i++) {
            if (read_def(r, i, &arr[i]) != 0) {
                store_free_defs(arr, (size_t)i);
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
