/* store_keys.c — credentials: tenant admin keys and user keys.
 *
 * Only the HMAC hash and a short prefix of a key are stored. A tenant admin
 * manages every key of its tenant; a user sees and revokes only its own
 * keys. A key of another tenant or another user is STORE_NOT_FOUND. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <string.h>

void store_read_key(sqlite3_stmt *s, key_rec *k)
{
    memset(k, 0, sizeof *k);
    store_col_copy(s, 0, k->id, sizeof k->id);
    store_col_copy(s, 1, k->tenant_id, sizeof k->tenant_id);
    store_col_copy(s, 2, k->user_id, sizeof k->user_id);
    k->kind = (key_kind)sqlite3_column_int(s, 3);
    store_col_copy(s, 4, k->prefix, sizeof k->prefix);
    store_col_copy(s, 5, k->hash, sizeof k->hash);
    k->created_at = sqlite3_column_int64(s, 6);
    k->revoked_at = sqlite3_column_int64(s, 7);
    k->limits.rpm = sqlite3_column_int64(s, 8);
    k->limits.tpm = sqlite3_column_int64(s, 9);
    k->limits.max_concurrent_runs = -1;
    k->limits.daily_budget_nusd = sqlite3_column_int64(s, 10);
    k->limits.monthly_budget_nusd = sqlite3_column_int64(s, 11);
}

static int store_key_row(sqlite3_stmt *s, void *rec)
{
    store_read_key(s, rec);
    return 0;
}

static const store_rows key_rows = {sizeof(key_rec), store_key_row, NULL, "list keys"};

store_status store_load_keys(store *st, void (*fn)(const key_rec *k, void *arg), void *arg)
{
    STORE_PG_DISPATCH(st, store_pg_load_keys(store_pg_of(st), fn, arg));
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_KEY_COLS " FROM keys");
    if (!s) return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        key_rec k;
        store_read_key(s, &k);
        fn(&k, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(c, rc, "load keys");
}

/* ---- create ---- */

typedef struct key_create_args {
    const char *tenant_id;
    const key_rec *k;
} key_create_args;

static store_status store_key_create_op(store_conn *c, void *arg)
{
    key_create_args *a = arg;
    const key_rec *k = a->k;
    if (k->kind == KEY_KIND_USER) {
        /* the user must be one of this tenant's: checked inside the
         * transaction, so a concurrent delete cannot slip between */
        store_status res = store_user_alive(c, a->tenant_id, k->user_id);
        if (res != STORE_OK) return res;
    }
    sqlite3_stmt *s = store_stmt(c, "INSERT INTO keys (id, tenant_id, user_id, kind, prefix, hash, created_at,"
                                    " revoked_at, lim_rpm, lim_tpm, lim_daily_budget_nusd, lim_monthly_budget_nusd)"
                                    " VALUES (?,?,?,?,?,?,?,0,?,?,?,?)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, k->id);
    store_bind_text(s, 2, a->tenant_id);
    store_bind_text(s, 3, k->kind == KEY_KIND_USER ? k->user_id : NULL);
    sqlite3_bind_int(s, 4, k->kind);
    store_bind_text(s, 5, k->prefix);
    store_bind_text(s, 6, k->hash);
    sqlite3_bind_int64(s, 7, k->created_at);
    /* a zeroed key_rec (no limits given) means "not set" */
    const user_limits *l = &k->limits;
    bool none = !l->rpm && !l->tpm && !l->daily_budget_nusd && !l->monthly_budget_nusd;
    sqlite3_bind_int64(s, 8, none ? -1 : l->rpm);
    sqlite3_bind_int64(s, 9, none ? -1 : l->tpm);
    sqlite3_bind_int64(s, 10, none ? -1 : l->daily_budget_nusd);
    sqlite3_bind_int64(s, 11, none ? -1 : l->monthly_budget_nusd);
    return store_step_done(c, s, "insert key");
}

store_status store_key_create(store *st, const scope *sc, const key_rec *k)
{
    STORE_PG_DISPATCH(st, store_pg_key_create(st, sc, k));
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (!k || !k->id[0] || !k->hash[0] || (k->kind != KEY_KIND_USER && k->kind != KEY_KIND_ADMIN))
        return STORE_INVALID;
    if (k->kind == KEY_KIND_USER && !k->user_id[0]) return STORE_INVALID;
    if (k->tenant_id[0] && strcmp(k->tenant_id, sc->tenant_id) != 0) return STORE_NOT_FOUND;
    key_create_args a = {sc->tenant_id, k};
    return store_write(st, store_key_create_op, &a);
}

/* ---- read ---- */

store_status store_key_list(store *st, const scope *sc, const char *user_id,
                            key_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_key_list(store_pg_of(st), sc, user_id, out, n));
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    if (sc->role == SCOPE_USER) {
        if (user_id && strcmp(user_id, sc->user_id) != 0) return STORE_NOT_FOUND;
        user_id = sc->user_id;
    }
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    if (user_id) {
        /* listing the keys of a user that is not in the tenant is "no such
         * user", not an empty list */
        user_rec u;
        store_status r = store_user_get(st, sc, user_id, &u);
        if (r != STORE_OK) return r;
    }
    sqlite3_stmt *s;
    if (user_id) {
        s = store_stmt(c, "SELECT " STORE_KEY_COLS " FROM keys WHERE tenant_id = ? AND user_id = ? ORDER BY created_at, id");
        if (s) { store_bind_text(s, 1, sc->tenant_id); store_bind_text(s, 2, user_id); }
    } else {
        s = store_stmt(c, "SELECT " STORE_KEY_COLS " FROM keys WHERE tenant_id = ? ORDER BY created_at, id");
        if (s) store_bind_text(s, 1, sc->tenant_id);
    }
    if (!s) return STORE_ERROR;
    void *arr;
    store_status res = store_collect(c, s, &key_rows, 0, &arr, n);
    *out = arr;
    return res;
}

store_status store_key_get(store *st, const scope *sc, const char *key_id, key_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_key_get(store_pg_of(st), sc, key_id, out));
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !key_id) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_KEY_COLS " FROM keys WHERE id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, key_id);
    store_bind_text(s, 2, sc->tenant_id);
    int rc = sqlite3_step(s);
    store_status res;
    if (rc == SQLITE_ROW) { store_read_key(s, out); res = STORE_OK; }
    else res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "get key");
    sqlite3_reset(s);
    if (res == STORE_OK && sc->role == SCOPE_USER && strcmp(out->user_id, sc->user_id) != 0) {
        memset(out, 0, sizeof *out);
        res = STORE_NOT_FOUND;
    }
    return res;
}

/* ---- revoke ---- */

typedef struct key_revoke_args {
    const char *tenant_id, *user_id, *key_id;   /* user_id NULL: any key of the tenant */
    int64_t when;
} key_revoke_args;

/* A tenant must keep one working admin key: revoking the last one would
 * lock its admin out for good (only the server admin could mint another).
 * Checked inside the revoking transaction, so two concurrent revocations of
 * a tenant's last two keys cannot both pass. */
static store_status store_key_keeps_an_admin(store_conn *c, const key_revoke_args *a)
{
    sqlite3_stmt *s = store_stmt(c,
        "SELECT (SELECT kind = ?3 AND revoked_at = 0 FROM keys WHERE id = ?1 AND tenant_id = ?2),"
        " (SELECT count(*) FROM keys WHERE tenant_id = ?2 AND kind = ?3 AND revoked_at = 0 AND id <> ?1)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->key_id);
    store_bind_text(s, 2, a->tenant_id);
    sqlite3_bind_int(s, 3, KEY_KIND_ADMIN);
    int rc = sqlite3_step(s);
    store_status res = STORE_OK;
    if (rc != SQLITE_ROW) res = store_sqlite_status(c, rc, "count admin keys");
    else if (sqlite3_column_int(s, 0) == 1 && sqlite3_column_int64(s, 1) == 0) res = STORE_CONFLICT;
    sqlite3_reset(s);
    return res;
}

static store_status store_key_revoke_op(store_conn *c, void *arg)
{
    key_revoke_args *a = arg;
    if (!a->user_id) {   /* a user's revocation never reaches an admin key */
        store_status keep = store_key_keeps_an_admin(c, a);
        if (keep != STORE_OK) return keep;
    }
    /* Revoking twice keeps the first time: the audit trail stays true. */
    sqlite3_stmt *s = store_stmt(c,
        "UPDATE keys SET revoked_at = CASE WHEN revoked_at = 0 THEN ?1 ELSE revoked_at END"
        " WHERE id = ?2 AND tenant_id = ?3 AND (?4 IS NULL OR user_id = ?4)");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, a->when);
    store_bind_text(s, 2, a->key_id);
    store_bind_text(s, 3, a->tenant_id);
    store_bind_text(s, 4, a->user_id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "revoke key");
    return sqlite3_changes(c->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_key_revoke(store *st, const scope *sc, const char *key_id, int64_t when)
{
    STORE_PG_DISPATCH(st, store_pg_key_revoke(st, sc, key_id, when));
    if (!scope_valid(sc) || !key_id) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    if (when <= 0) return STORE_INVALID;
    key_revoke_args a = {sc->tenant_id, sc->role == SCOPE_USER ? sc->user_id : NULL, key_id, when};
    return store_write(st, store_key_revoke_op, &a);
}

/* ---- tenant admin keys ---- */

store_status store_admin_key_list(store *st, const scope *sc, key_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_admin_key_list(store_pg_of(st), sc, out, n));
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_KEY_COLS " FROM keys WHERE tenant_id = ? AND kind = ?"
                                    " ORDER BY created_at, id");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, sc->tenant_id);
    sqlite3_bind_int(s, 2, KEY_KIND_ADMIN);
    void *arr;
    store_status res = store_collect(c, s, &key_rows, 0, &arr, n);
    *out = arr;
    return res;
}
