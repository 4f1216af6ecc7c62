/* store_connections.c — the vault's rows (store_connections.h): users'
 * connections to credential providers, sealed by the vault before they
 * arrive, and the consent flows in progress, kept as hashes.
 *
 * A user reaches only its own connections: every statement of a scoped
 * function binds the caller's tenant and user. The refresh lease and the
 * single use of a flow are single UPDATE/DELETE statements run by the one
 * writer, so two instances (or two threads) can never both win them. */
#include "store/store_connections.h"
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_COLS "id, tenant_id, user_id, provider, status, scopes, sealed, key_version, expires_at," \
                  " refreshing_until, created_at, updated_at"

void connection_rec_free(connection_rec *c)
{
    if (!c) return;
    if (c->sealed) {
        explicit_bzero(c->sealed, strlen(c->sealed));
        free(c->sealed);
    }
    c->sealed = NULL;
}

void connection_recs_free(connection_rec *arr, size_t n)
{
    for (size_t i = 0; i < n; i++) connection_rec_free(&arr[i]);
    free(arr);
}

void oauth_flow_rec_free(oauth_flow_rec *f)
{
    if (!f) return;
    free(f->sealed_verifier);
    f->sealed_verifier = NULL;
}

static int conn_read(sqlite3_stmt *s, void *rec)
{
    connection_rec *c = rec;
    memset(c, 0, sizeof *c);
    store_col_copy(s, 0, c->id, sizeof c->id);
    store_col_copy(s, 1, c->tenant_id, sizeof c->tenant_id);
    store_col_copy(s, 2, c->user_id, sizeof c->user_id);
    store_col_copy(s, 3, c->provider, sizeof c->provider);
    store_col_copy(s, 4, c->status, sizeof c->status);
    store_col_copy(s, 5, c->scopes, sizeof c->scopes);
    if (store_col_dup(s, 6, &c->sealed) != 0) return -1;
    c->key_version = sqlite3_column_int(s, 7);
    c->expires_at = sqlite3_column_int64(s, 8);
    c->refreshing_until = sqlite3_column_int64(s, 9);
    c->created_at = sqlite3_column_int64(s, 10);
    c->updated_at = sqlite3_column_int64(s, 11);
    return 0;
}

static void conn_rows_free(void *arr, size_t n) { connection_recs_free(arr, n); }

static const store_rows conn_rows = {sizeof(connection_rec), conn_read, conn_rows_free, "list connections"};

/* One row of a prepared SELECT into *out: STORE_OK, NOT_FOUND or ERROR. */
static store_status conn_one(store_conn *c, sqlite3_stmt *s, connection_rec *out)
{
    int rc = sqlite3_step(s);
    store_status res = STORE_OK;
    if (rc == SQLITE_ROW) {
        if (conn_read(s, out) != 0) res = STORE_ERROR;
    } else {
        res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "read connection");
    }
    sqlite3_reset(s);
    return res;
}

store_status store_connection_list(store *st, const scope *sc, connection_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_connection_list(store_pg_of(st), sc, out, n));
    *out = NULL;
    *n = 0;
    if (!scope_is_user(sc)) return scope_valid(sc) ? STORE_FORBIDDEN : STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " CONN_COLS " FROM connections WHERE tenant_id = ? AND user_id = ?"
                                    " ORDER BY created_at DESC, id");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, sc->tenant_id);
    store_bind_text(s, 2, sc->user_id);
    return store_collect(c, s, &conn_rows, 0, (void **)out, n);
}

store_status store_connection_get(store *st, const scope *sc, const char *id, connection_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_connection_get(store_pg_of(st), sc, id, out));
    memset(out, 0, sizeof *out);
    if (!scope_is_user(sc) || !id) return STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " CONN_COLS " FROM connections"
                                    " WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, id, sc);
    return conn_one(c, s, out);
}

store_status store_connection_find(store *st, const char *tenant_id, const char *user_id,
                                   const char *provider, connection_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_connection_find(store_pg_of(st), tenant_id, user_id, provider, out));
    memset(out, 0, sizeof *out);
    if (!tenant_id || !tenant_id[0] || !user_id || !user_id[0] || !provider) return STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " CONN_COLS " FROM connections"
                                    " WHERE tenant_id = ? AND user_id = ? AND provider = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, tenant_id);
    store_bind_text(s, 2, user_id);
    store_bind_text(s, 3, provider);
    return conn_one(c, s, out);
}

/* ---- writes ---- */

typedef struct conn_begin_args {
    const scope *sc;
    const char *provider, *new_id;
    int64_t now;
    connection_rec *out;
} conn_begin_args;

static store_status conn_begin_op(store_conn *c, void *arg)
{
    conn_begin_args *a = arg;
    store_status res = store_user_alive(c, a->sc->tenant_id, a->sc->user_id);
    if (res != STORE_OK) return res;
    sqlite3_stmt *s = store_stmt(c, "INSERT INTO connections (id, tenant_id, user_id, provider, status,"
                                    " created_at, updated_at) VALUES (?,?,?,?,'pending',?,?)"
                                    " ON CONFLICT (tenant_id, user_id, provider) DO NOTHING");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->new_id);
    store_bind_text(s, 2, a->sc->tenant_id);
    store_bind_text(s, 3, a->sc->user_id);
    store_bind_text(s, 4, a->provider);
    sqlite3_bind_int64(s, 5, a->now);
    sqlite3_bind_int64(s, 6, a->now);
    res = store_step_done(c, s, "begin connection");
    if (res != STORE_OK) return res;
    s = store_stmt(c, "SELECT " CONN_COLS " FROM connections WHERE tenant_id = ? AND user_id = ? AND provider = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->sc->tenant_id);
    store_bind_text(s, 2, a->sc->user_id);
    store_bind_text(s, 3, a->provider);
    return conn_one(c, s, a->out);
}

store_status store_connection_begin(store *st, const scope *sc, const char *provider,
                                    const char *new_id, int64_t now, connection_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_connection_begin(st, sc, provider, new_id, now, out));
    memset(out, 0, sizeof *out);
    if (!scope_is_user(sc)) return scope_valid(sc) ? STORE_FORBIDDEN : STORE_NOT_FOUND;
    if (!provider || !provider[0] || !new_id || !new_id[0]) return STORE_INVALID;
    conn_begin_args a = {sc, provider, new_id, now, out};
    store_status res = store_write(st, conn_begin_op, &a);
    if (res != STORE_OK) connection_rec_free(out);
    return res;
}

typedef struct conn_seal_args {
    const char *tenant_id, *user_id, *id, *scopes, *sealed, *status;
    int key_version;
    int64_t expires_at, now;
} conn_seal_args;

/* Run an UPDATE of one owned connection whose last three parameters,
 * from `first`, are its id, user and tenant: NOT_FOUND if it changed no
 * row. The old secrets' page images leave the WAL after the commit. */
static store_status conn_owned_update(store_conn *c, sqlite3_stmt *s, int first, const conn_seal_args *a,
                                      const char *what)
{
    store_bind_text(s, first, a->id);
    store_bind_text(s, first + 1, a->user_id);
    store_bind_text(s, first + 2, a->tenant_id);
    store_status res = store_step_done(c, s, what);
    if (res == STORE_OK && sqlite3_changes(c->db) == 0) return STORE_NOT_FOUND;
    if (res == STORE_OK) c->scrub_wanted = 1;
    return res;
}

static store_status conn_seal_op(store_conn *c, void *arg)
{
    conn_seal_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "UPDATE connections SET status = ?, scopes = ?, sealed = ?, key_version = ?,"
                                    " expires_at = ?, refreshing_until = 0, updated_at = ?"
                                    " WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->status);
    store_bind_text(s, 2, a->scopes ? a->scopes : "");
    store_bind_text(s, 3, a->sealed);
    sqlite3_bind_int(s, 4, a->key_version);
    sqlite3_bind_int64(s, 5, a->expires_at);
    sqlite3_bind_int64(s, 6, a->now);
    return conn_owned_update(c, s, 7, a, "seal connection");
}

store_status store_connection_seal(store *st, const char *tenant_id, const char *user_id,
                                   const char *id, const char *scopes, const char *sealed,
                                   int key_version, int64_t expires_at, int64_t now)
{
    STORE_PG_DISPATCH(st, store_pg_connection_seal(st, tenant_id, user_id, id, scopes, sealed, key_version, expires_at, now));
    if (!tenant_id || !user_id || !id || !sealed) return STORE_INVALID;
    conn_seal_args a = {tenant_id, user_id, id, scopes, sealed, "active", key_version, expires_at, now};
    return store_write(st, conn_seal_op, &a);
}

static store_status conn_status_op(store_conn *c, void *arg)
{
    conn_seal_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "UPDATE connections SET status = ?, sealed = NULL, expires_at = 0,"
                                    " refreshing_until = 0, updated_at = ?"
                                    " WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->status);
    sqlite3_bind_int64(s, 2, a->now);
    return conn_owned_update(c, s, 3, a, "connection status");
}

store_status store_connection_set_status(store *st, const char *tenant_id, const char *user_id,
                                         const char *id, const char *status, int64_t now)
{
    STORE_PG_DISPATCH(st, store_pg_connection_set_status(st, tenant_id, user_id, id, status, now));
    if (!tenant_id || !user_id || !id || !status) return STORE_INVALID;
    conn_seal_args a = {.tenant_id = tenant_id, .user_id = user_id, .id = id, .status = status, .now = now};
    return store_write(st, conn_status_op, &a);
}

typedef struct conn_del_args {
    const scope *sc;
    const char *id;
} conn_del_args;

static store_status conn_delete_op(store_conn *c, void *arg)
{
    conn_del_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "DELETE FROM connections WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, a->id, a->sc);
    store_status res = store_step_done(c, s, "delete connection");
    if (res == STORE_OK && sqlite3_changes(c->db) == 0) return STORE_NOT_FOUND;
    if (res == STORE_OK) c->scrub_wanted = 1;
    return res;
}

store_status store_connection_delete(store *st, const scope *sc, const char *id)
{
    STORE_PG_DISPATCH(st, store_pg_connection_delete(st, sc, id));
    if (!scope_is_user(sc) || !id) return STORE_NOT_FOUND;
    conn_del_args a = {sc, id};
    return store_write(st, conn_delete_op, &a);
}

typedef struct conn_lease_args {
    const char *id;
    int64_t now_ms, until_ms;
} conn_lease_args;

static store_status conn_lease_op(store_conn *c, void *arg)
{
    conn_lease_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "UPDATE connections SET refreshing_until = ?"
                                    " WHERE id = ? AND status = 'active' AND refreshing_until < ?");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, a->until_ms);
    store_bind_text(s, 2, a->id);
    sqlite3_bind_int64(s, 3, a->now_ms);
    store_status res = store_step_done(c, s, "lease connection");
    if (res == STORE_OK && sqlite3_changes(c->db) == 0) return STORE_CONFLICT;
    return res;
}

store_status store_connection_lease(store *st, const char *id, int64_t now_ms, int64_t until_ms)
{
    STORE_PG_DISPATCH(st, store_pg_connection_lease(st, id, now_ms, until_ms));
    conn_lease_args a = {id, now_ms, until_ms};
    return store_write(st, conn_lease_op, &a);
}

static store_status conn_unlease_op(store_conn *c, void *arg)
{
    sqlite3_stmt *s = store_stmt(c, "UPDATE connections SET refreshing_until = 0 WHERE id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, arg);
    return store_step_done(c, s, "unlease connection");
}

store_status store_connection_unlease(store *st, const char *id)
{
    STORE_PG_DISPATCH(st, store_pg_connection_unlease(st, id));
    return store_write(st, conn_unlease_op, (void *)id);
}

store_status store_connection_list_sealed_other(store *st, int version, size_t limit,
                                                connection_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_connection_list_sealed_other(store_pg_of(st), version, limit, out, n));
    *out = NULL;
    *n = 0;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " CONN_COLS " FROM connections"
                                    " WHERE sealed IS NOT NULL AND key_version <> ? ORDER BY id LIMIT ?");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int(s, 1, version);
    sqlite3_bind_int64(s, 2, (int64_t)limit);
    return store_collect(c, s, &conn_rows, limit, (void **)out, n);
}

typedef struct conn_reseal_args {
    const char *id, *old_sealed, *new_sealed;
    int version;
} conn_reseal_args;

static store_status conn_reseal_op(store_conn *c, void *arg)
{
    conn_reseal_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "UPDATE connections SET sealed = ?, key_version = ? WHERE id = ? AND sealed = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->new_sealed);
    sqlite3_bind_int(s, 2, a->version);
    store_bind_text(s, 3, a->id);
    store_bind_text(s, 4, a->old_sealed);
    store_status res = store_step_done(c, s, "reseal connection");
    if (res == STORE_OK && sqlite3_changes(c->db) == 0) return STORE_CONFLICT;
    if (res == STORE_OK) c->scrub_wanted = 1;
    return res;
}

store_status store_connection_reseal(store *st, const char *id, const char *old_sealed,
                                     const char *new_sealed, int version)
{
    STORE_PG_DISPATCH(st, store_pg_connection_reseal(st, id, old_sealed, new_sealed, version));
    conn_reseal_args a = {id, old_sealed, new_sealed, version};
    return store_write(st, conn_reseal_op, &a);
}

/* ---- consent flows ---- */

typedef struct flow_args {
    const oauth_flow_rec *in;
    oauth_flow_rec *out;
    const char *hash, *browser_hash;
    int64_t now;
} flow_args;

static store_status flow_put_op(store_conn *c, void *arg)
{
    flow_args *a = arg;
    const oauth_flow_rec *f = a->in;
    sqlite3_stmt *s = store_stmt(c, "DELETE FROM oauth_flows WHERE expires_at < ?");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, a->now);
    store_status res = store_step_done(c, s, "sweep flows");
    if (res != STORE_OK) return res;
    s = store_stmt(c, "INSERT INTO oauth_flows (state_hash, start_hash, browser_hash, connection_id, tenant_id,"
                      " user_id, provider, sealed_verifier, key_version, expires_at) VALUES (?,?,'',?,?,?,?,?,?,?)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, f->state_hash);
    store_bind_text(s, 2, f->start_hash);
    store_bind_text(s, 3, f->connection_id);
    store_bind_text(s, 4, f->tenant_id);
    store_bind_text(s, 5, f->user_id);
    store_bind_text(s, 6, f->provider);
    store_bind_text(s, 7, f->sealed_verifier);
    sqlite3_bind_int(s, 8, f->key_version);
    sqlite3_bind_int64(s, 9, f->expires_at);
    return store_step_done(c, s, "insert flow");
}

store_status store_oauth_flow_put(store *st, const oauth_flow_rec *f, int64_t now)
{
    STORE_PG_DISPATCH(st, store_pg_oauth_flow_put(st, f, now));
    if (!f || !f->state_hash[0] || !f->start_hash[0] || !f->sealed_verifier) return STORE_INVALID;
    flow_args a = {.in = f, .now = now};
    return store_write(st, flow_put_op, &a);
}

#define FLOW_COLS "state_hash, start_hash, browser_hash, connection_id, tenant_id, user_id, provider," \
                  " sealed_verifier, key_version, expires_at"

static store_status flow_read_one(store_conn *c, sqlite3_stmt *s, oauth_flow_rec *f)
{
    int rc = sqlite3_step(s);
    store_status res = STORE_OK;
    if (rc == SQLITE_ROW) {
        store_col_copy(s, 0, f->state_hash, sizeof f->state_hash);
        store_col_copy(s, 1, f->start_hash, sizeof f->start_hash);
        store_col_copy(s, 2, f->browser_hash, sizeof f->browser_hash);
        store_col_copy(s, 3, f->connection_id, sizeof f->connection_id);
        store_col_copy(s, 4, f->tenant_id, sizeof f->tenant_id);
        store_col_copy(s, 5, f->user_id, sizeof f->user_id);
        store_col_copy(s, 6, f->provider, sizeof f->provider);
        if (store_col_dup(s, 7, &f->sealed_verifier) != 0) res = STORE_ERROR;
        f->key_version = sqlite3_column_int(s, 8);
        f->expires_at = sqlite3_column_int64(s, 9);
    } else {
        res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "read flow");
    }
    sqlite3_reset(s);
    return res;
}

static store_status flow_start_op(store_conn *c, void *arg)
{
    flow_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "SELECT " FLOW_COLS " FROM oauth_flows WHERE start_hash = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->hash);
    store_status res = flow_read_one(c, s, a->out);
    if (res != STORE_OK) return res;
    if (a->out->expires_at < a->now) return STORE_NOT_FOUND;
    if (a->out->browser_hash[0]) return STORE_CONFLICT;   /* a connect link opens once */
    s = store_stmt(c, "UPDATE oauth_flows SET browser_hash = ? WHERE start_hash = ? AND browser_hash = ''");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->browser_hash);
    store_bind_text(s, 2, a->hash);
    res = store_step_done(c, s, "start flow");
    if (res == STORE_OK && sqlite3_changes(c->db) == 0) return STORE_CONFLICT;
    snprintf(a->out->browser_hash, sizeof a->out->browser_hash, "%s", a->browser_hash);
    return res;
}

store_status store_oauth_flow_start(store *st, const char *start_hash, const char *browser_hash,
                                    int64_t now, oauth_flow_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_oauth_flow_start(st, start_hash, browser_hash, now, out));
    memset(out, 0, sizeof *out);
    flow_args a = {.hash = start_hash, .browser_hash = browser_hash, .now = now, .out = out};
    store_status res = store_write(st, flow_start_op, &a);
    if (res != STORE_OK) oauth_flow_rec_free(out);
    return res;
}

static store_status flow_take_op(store_conn *c, void *arg)
{
    flow_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "SELECT " FLOW_COLS " FROM oauth_flows WHERE state_hash = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->hash);
    store_status res = flow_read_one(c, s, a->out);
    if (res != STORE_OK) return res;
    s = store_stmt(c, "DELETE FROM oauth_flows WHERE state_hash = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->hash);
    res = store_step_done(c, s, "take flow");
    if (res != STORE_OK) return res;
    c->scrub_wanted = 1;
    return STORE_OK;
}

store_status store_oauth_flow_take(store *st, const char *state_hash, int64_t now, oauth_flow_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_oauth_flow_take(st, state_hash, now, out));
    memset(out, 0, sizeof *out);
    flow_args a = {.hash = state_hash, .now = now, .out = out};
    store_status res = store_write(st, flow_take_op, &a);
    if (res == STORE_OK && out->expires_at < now) res = STORE_NOT_FOUND;   /* taken all the same */
    if (res != STORE_OK) oauth_flow_rec_free(out);
    return res;
}

/* ---- brigade's own registrations at authorization servers ---- */

store_status store_oauth_client_get(store *st, const char *provider, const char *redirect_uri,
                                    oauth_client_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_oauth_client_get(store_pg_of(st), provider, redirect_uri, out));
    memset(out, 0, sizeof *out);
    if (!provider || !redirect_uri) return STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT token_endpoint, client_id, auth_method, created_at FROM oauth_clients"
                                    " WHERE provider = ? AND redirect_uri = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, provider);
    store_bind_text(s, 2, redirect_uri);
    int rc = sqlite3_step(s);
    store_status res;
    if (rc == SQLITE_ROW) {
        snprintf(out->provider, sizeof out->provider, "%s", provider);
        snprintf(out->redirect_uri, sizeof out->redirect_uri, "%s", redirect_uri);
        const char *te = (const char *)sqlite3_column_text(s, 0);
        const char *id = (const char *)sqlite3_column_text(s, 1);
        const char *am = (const char *)sqlite3_column_text(s, 2);
        snprintf(out->token_endpoint, sizeof out->token_endpoint, "%s", te ? te : "");
        snprintf(out->client_id, sizeof out->client_id, "%s", id ? id : "");
        snprintf(out->auth_method, sizeof out->auth_method, "%s", am ? am : "none");
        out->created_at = sqlite3_column_int64(s, 3);
        res = STORE_OK;
    } else {
        res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "oauth client");
    }
    sqlite3_reset(s);
    return res;
}

static store_status oauth_client_put_op(store_conn *c, void *arg)
{
    const oauth_client_rec *r = arg;
    sqlite3_stmt *s = store_stmt(c, "INSERT OR REPLACE INTO oauth_clients (provider, redirect_uri, token_endpoint,"
                                    " client_id, auth_method, created_at) VALUES (?,?,?,?,?,?)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, r->provider);
    store_bind_text(s, 2, r->redirect_uri);
    store_bind_text(s, 3, r->token_endpoint);
    store_bind_text(s, 4, r->client_id);
    store_bind_text(s, 5, r->auth_method);
    sqlite3_bind_int64(s, 6, r->created_at);
    return store_step_done(c, s, "keep oauth client");
}

store_status store_oauth_client_put(store *st, const oauth_client_rec *rec)
{
    if (!rec || !rec->provider[0] || !rec->redirect_uri[0] || !rec->client_id[0]) return STORE_INVALID;
    STORE_PG_DISPATCH(st, store_pg_oauth_client_put(st, rec));
    return store_write(st, oauth_client_put_op, (void *)rec);
}
