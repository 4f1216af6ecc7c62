/* store_tenant_defs.c — a tenant's own tools, agents and MCP servers
 * (their JSON definitions) and the catalogue entries its admin enabled (migration 10).
 * Every statement is bound to the caller's tenant: no call reaches another
 * tenant's rows. The tenant's users read (their runs resolve agents and
 * tools here); only its admin writes. What a body says is checked by the
 * caller (the config readers) before it is stored. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"
#include "util/utf8.h"

void def_rec_free(def_rec *d)
{
    if (!d) return;
    free(d->body);
    d->body = NULL;
}

void store_free_defs(def_rec *arr, size_t n)
{
    if (!arr) return;
    for (size_t i = 0; i < n; i++) def_rec_free(&arr[i]);
    free(arr);
}

static bool store_def_args_ok(store_def_kind kind, const char *name, const char *body)
{
    size_t n = name ? strnlen(name, STORE_DEF_NAME_MAX) : 0;
    if (n == 0 || n >= STORE_DEF_NAME_MAX || !utf8_valid(name, n)) return false;
    if (kind != STORE_DEF_TOOL && kind != STORE_DEF_AGENT && kind != STORE_DEF_MCP) return false;
    return !body || strnlen(body, STORE_DEF_BODY_MAX + 1) <= STORE_DEF_BODY_MAX;
}

/* Readers: the tenant's admin and its users; writers: its admin. */
static store_status store_def_may(const scope *sc, bool write)
{
    if (!scope_valid(sc) || !sc->tenant_id[0]) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_TENANT_ADMIN) return STORE_OK;
    return !write && sc->role == SCOPE_USER ? STORE_OK : STORE_FORBIDDEN;
}

static int store_def_row(sqlite3_stmt *s, void *rec)
{
    def_rec *d = rec;
    memset(d, 0, sizeof *d);
    store_col_copy(s, 0, d->name, sizeof d->name);
    if (store_col_dup(s, 1, &d->body) < 0) return -1;
    d->created_at = sqlite3_column_int64(s, 2);
    d->updated_at = sqlite3_column_int64(s, 3);
    return 0;
}

static void store_def_rows_free(void *arr, size_t n) { store_free_defs(arr, n); }
static const store_rows def_rows = {sizeof(def_rec), store_def_row, store_def_rows_free,
                                    "list tenant definitions"};

typedef struct def_write_args {
    const scope   *sc;
    store_def_kind kind;
    const char    *name, *body;
    size_t         max_count;
    int64_t        now;
} def_write_args;

static store_status store_def_create_op(store_conn *c, void *arg)
{
    def_write_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "SELECT count(*) FROM tenant_defs WHERE tenant_id = ? AND kind = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->sc->tenant_id);
    sqlite3_bind_int(s, 2, (int)a->kind);
    int rc = sqlite3_step(s);
    int64_t count = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    if (count < 0) return store_sqlite_status(c, rc, "count tenant definitions");
    if ((size_t)count >= a->max_count) return STORE_QUOTA;
    s = store_stmt(c, "INSERT INTO tenant_defs (tenant_id, kind, name, body, created_at, updated_at)"
                      " VALUES (?, ?, ?, ?, ?, ?)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->sc->tenant_id);
    sqlite3_bind_int(s, 2, (int)a->kind);
    store_bind_text(s, 3, a->name);
    if (a->body) store_bind_text(s, 4, a->body);
    else sqlite3_bind_null(s, 4);
    sqlite3_bind_int64(s, 5, a->now);
    sqlite3_bind_int64(s, 6, a->now);
    return store_step_done(c, s, "create tenant definition");
}

store_status store_def_create(store *st, const scope *sc, store_def_kind kind, const char *name,
                              const char *body, size_t max_count)
{
    STORE_PG_DISPATCH(st, store_pg_def_create(st, sc, kind, name, body, max_count));
    store_status may = store_def_may(sc, true);
    if (may != STORE_OK) return may;
    if (!store_def_args_ok(kind, name, body)) return STORE_INVALID;
    def_write_args a = {sc, kind, name, body, max_count, time_now_unix()};
    return store_write(st, store_def_create_op, &a);
}

static store_status store_def_update_op(store_conn *c, void *arg)
{
    def_write_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "UPDATE tenant_defs SET body = ?, updated_at = ?"
                                    " WHERE tenant_id = ? AND kind = ? AND name = ? AND body IS NOT NULL");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->body);
    sqlite3_bind_int64(s, 2, a->now);
    store_bind_text(s, 3, a->sc->tenant_id);
    sqlite3_bind_int(s, 4, (int)a->kind);
    store_bind_text(s, 5, a->name);
    store_status res = store_step_done(c, s, "update tenant definition");
    if (res != STORE_OK) return res;
    return sqlite3_changes(c->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_def_update(store *st, const scope *sc, store_def_kind kind, const char *name,
                              const char *body)
{
    STORE_PG_DISPATCH(st, store_pg_def_update(st, sc, kind, name, body));
    store_status may = store_def_may(sc, true);
    if (may != STORE_OK) return may;
    if (!body || !store_def_args_ok(kind, name, body)) return STORE_INVALID;
    def_write_args a = {sc, kind, name, body, 0, time_now_unix()};
    return store_write(st, store_def_update_op, &a);
}

static store_status store_def_delete_op(store_conn *c, void *arg)
{
    def_write_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "DELETE FROM tenant_defs WHERE tenant_id = ? AND kind = ? AND name = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->sc->tenant_id);
    sqlite3_bind_int(s, 2, (int)a->kind);
    store_bind_text(s, 3, a->name);
    store_status res = store_step_done(c, s, "delete tenant definition");
    if (res != STORE_OK) return res;
    return sqlite3_changes(c->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_def_delete(store *st, const scope *sc, store_def_kind kind, const char *name)
{
    STORE_PG_DISPATCH(st, store_pg_def_delete(st, sc, kind, name));
    store_status may = store_def_may(sc, true);
    if (may != STORE_OK) return may;
    if (!store_def_args_ok(kind, name, NULL)) return STORE_NOT_FOUND;
    def_write_args a = {sc, kind, name, NULL, 0, 0};
    return store_write(st, store_def_delete_op, &a);
}

store_status store_def_get(store *st, const scope *sc, store_def_kind kind, const char *name, def_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_def_get(store_pg_of(st), sc, kind, name, out));
    memset(out, 0, sizeof *out);
    store_status may = store_def_may(sc, false);
    if (may != STORE_OK) return may;
    if (!store_def_args_ok(kind, name, NULL)) return STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT name, body, created_at, updated_at FROM tenant_defs"
                                    " WHERE tenant_id = ? AND kind = ? AND name = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, sc->tenant_id);
    sqlite3_bind_int(s, 2, (int)kind);
    store_bind_text(s, 3, name);
    int rc = sqlite3_step(s);
    store_status res;
    if (rc == SQLITE_ROW) res = store_def_row(s, out) == 0 ? STORE_OK : STORE_ERROR;
    else res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "get tenant definition");
    sqlite3_reset(s);
    return res;
}

store_status store_def_list(store *st, const scope *sc, store_def_kind kind, def_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_def_list(store_pg_of(st), sc, kind, out, n));
    *out = NULL;
    *n = 0;
    store_status may = store_def_may(sc, false);
    if (may != STORE_OK) return may;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT name, body, created_at, updated_at FROM tenant_defs"
                                    " WHERE tenant_id = ? AND kind = ? ORDER BY name");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, sc->tenant_id);
    sqlite3_bind_int(s, 2, (int)kind);
    void *arr;
    store_status res = store_collect(c, s, &def_rows, 0, &arr, n);
    *out = arr;
    return res;
}
