/* store_pg_connections.c — the vault's rows on PostgreSQL (the same
 * contracts as store_connections.c: sealed secrets in and out, flows kept
 * as hashes, a user reaches only its own connections). The refresh lease
 * and a flow's single use are single UPDATE / DELETE … RETURNING
 * statements: PostgreSQL re-checks their WHERE on the row it locked, so
 * two instances can never both win them. */
#include "store/store_connections.h"
#include "store/store_pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_COLS "id, tenant_id, user_id, provider, status, scopes, sealed, key_version, expires_at," \
                  " refreshing_until, created_at, updated_at"
#define FLOW_COLS "state_hash, start_hash, browser_hash, connection_id, tenant_id, user_id, provider," \
                  " sealed_verifier, key_version, expires_at"

static int conn_read(const PGresult *r, int i, connection_rec *c)
{
    memset(c, 0, sizeof *c);
    pg_copy(r, i, 0, c->id, sizeof c->id);
    pg_copy(r, i, 1, c->tenant_id, sizeof c->tenant_id);
    pg_copy(r, i, 2, c->user_id, sizeof c->user_id);
    pg_copy(r, i, 3, c->provider, sizeof c->provider);
    pg_copy(r, i, 4, c->status, sizeof c->status);
    pg_copy(r, i, 5, c->scopes, sizeof c->scopes);
    if (!PQgetisnull(r, i, 6) && !(c->sealed = strdup(PQgetvalue(r, i, 6)))) return -1;
    c->key_version = (int)pg_i64(r, i, 7);
    c->expires_at = pg_i64(r, i, 8);
    c->refreshing_until = pg_i64(r, i, 9);
    c->created_at = pg_i64(r, i, 10);
    c->updated_at = pg_i64(r, i, 11);
    return 0;
}

static store_status conn_one(PGresult *r, connection_rec *out)
{
    store_status st = PQntuples(r) >= 1 ? (conn_read(r, 0, out) == 0 ? STORE_OK : STORE_ERROR) : STORE_NOT_FOUND;
    PQclear(r);
    return st;
}

static store_status conn_many(PGresult *r, connection_rec **out, size_t *n)
{
    int rows = PQntuples(r);
    if (rows > 0) {
        connection_rec *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(r); return STORE_ERROR; }
        for (int i = 0; i < rows; i++)
            if (conn_read(r, i, &arr[i]) != 0) { connection_recs_free(arr, (size_t)i); PQclear(r); return STORE_ERROR; }
        *out = arr;
        *n = (size_t)rows;
    }
    PQclear(r);
    return STORE_OK;
}

store_status store_pg_connection_list(struct pg_store *p, const scope *sc, connection_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!scope_is_user(sc)) return scope_valid(sc) ? STORE_FORBIDDEN : STORE_NOT_FOUND;
    const char *params[2] = {sc->tenant_id, sc->user_id};
    store_status st;
    PGresult *r = pg_read(p, "SELECT " CONN_COLS " FROM connections WHERE tenant_id = $1 AND user_id = $2"
                             " ORDER BY created_at DESC, id COLLATE \"C\"", 2, params, &st, "list connections");
    return r ? conn_many(r, out, n) : st;
}

store_status store_pg_connection_get(struct pg_store *p, const scope *sc, const char *id, connection_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!scope_is_user(sc) || !id) return STORE_NOT_FOUND;
    const char *params[3] = {id, sc->user_id, sc->tenant_id};
    store_status st;
    PGresult *r = pg_read(p, "SELECT " CONN_COLS " FROM connections WHERE id = $1 AND user_id = $2 AND tenant_id = $3",
                          3, params, &st, "read connection");
    return r ? conn_one(r, out) : st;
}

store_status store_pg_connection_find(struct pg_store *p, const char *tenant_id, const char *user_id,
                                      const char *provider, connection_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!tenant_id || !tenant_id[0] || !user_id || !user_id[0] || !provider) return STORE_NOT_FOUND;
    const char *params[3] = {tenant_id, user_id, provider};
    store_status st;
    PGresult *r = pg_read(p, "SELECT " CONN_COLS " FROM connections WHERE tenant_id = $1 AND user_id = $2"
                             " AND provider = $3", 3, params, &st, "read connection");
    return r ? conn_one(r, out) : st;
}

typedef struct conn_args {
    const scope *sc;
    const char *tenant_id, *user_id, *id, *provider, *new_id, *scopes, *sealed, *status, *old_sealed;
    int key_version;
    int64_t now, expires_at, until_ms;
    connection_rec *out;
} conn_args;

static store_status begin_op(PGconn *c, void *arg)
{
    conn_args *a = arg;
    const char *up[2] = {a->sc->user_id, a->sc->tenant_id};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT 1 FROM users WHERE id = $1 AND tenant_id = $2 FOR SHARE", 2, up, &st, "user alive");
    if (!r) return st;
    int alive = PQntuples(r) == 1;
    PQclear(r);
    if (!alive) return STORE_NOT_FOUND;
    char now[PG_I64_MAX];
    const char *p[5] = {a->new_id, a->sc->tenant_id, a->sc->user_id, a->provider, pg_num(now, a->now)};
    if ((st = pg_run(c, "INSERT INTO connections (id, tenant_id, user_id, provider, status, created_at, updated_at)"
                        " VALUES ($1,$2,$3,$4,'pending',$5,$5) ON CONFLICT (tenant_id, user_id, provider) DO NOTHING",
                     5, p, "begin connection")) != STORE_OK)
        return st;
    const char *q[3] = {a->sc->tenant_id, a->sc->user_id, a->provider};
    r = pg_exec(c, "SELECT " CONN_COLS " FROM connections WHERE tenant_id = $1 AND user_id = $2 AND provider = $3",
                3, q, &st, "read connection");
    return r ? conn_one(r, a->out) : st;
}

store_status store_pg_connection_begin(store *st, const scope *sc, const char *provider, const char *new_id,
                                       int64_t now, connection_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!scope_is_user(sc)) return scope_valid(sc) ? STORE_FORBIDDEN : STORE_NOT_FOUND;
    if (!provider || !provider[0] || !new_id || !new_id[0]) return STORE_INVALID;
    conn_args a = {.sc = sc, .provider = provider, .new_id = new_id, .now = now, .out = out};
    store_status res = pg_write(st, begin_op, &a);
    if (res != STORE_OK) connection_rec_free(out);
    return res;
}

static store_status seal_op(PGconn *c, void *arg)
{
    conn_args *a = arg;
    char kv[PG_I64_MAX], ex[PG_I64_MAX], now[PG_I64_MAX];
    const char *p[9] = {a->status, a->scopes ? a->scopes : "", a->sealed, pg_num(kv, a->key_version),
                        pg_num(ex, a->expires_at), pg_num(now, a->now), a->id, a->user_id, a->tenant_id};
    store_status st;
    int64_t n = pg_run_count(c, "UPDATE connections SET status = $1, scopes = $2, sealed = $3, key_version = $4,"
                                " expires_at = $5, refreshing_until = 0, updated_at = $6"
                                " WHERE id = $7 AND user_id = $8 AND tenant_id = $9", 9, p, &st, "seal connection");
    return n < 0 ? st : n == 0 ? STORE_NOT_FOUND : STORE_OK;
}

store_status store_pg_connection_seal(store *st, const char *tenant_id, const char *user_id, const char *id,
                                      const char *scopes, const char *sealed, int key_version, int64_t expires_at,
                                      int64_t now)
{
    if (!tenant_id || !user_id || !id || !sealed) return STORE_INVALID;
    conn_args a = {.tenant_id = tenant_id, .user_id = user_id, .id = id, .scopes = scopes, .sealed = sealed,
                   .status = "active", .key_version = key_version, .expires_at = expires_at, .now = now};
    return pg_write(st, seal_op, &a);
}

static store_status status_op(PGconn *c, void *arg)
{
    conn_args *a = arg;
    char now[PG_I64_MAX];
    const char *p[5] = {a->status, pg_num(now, a->now), a->id, a->user_id, a->tenant_id};
    store_status st;
    int64_t n = pg_run_count(c, "UPDATE connections SET status = $1, sealed = NULL, expires_at = 0,"
                                " refreshing_until = 0, updated_at = $2 WHERE id = $3 AND user_id = $4 AND tenant_id = $5",
                             5, p, &st, "connection status");
    return n < 0 ? st : n == 0 ? STORE_NOT_FOUND : STORE_OK;
}

store_status store_pg_connection_set_status(store *st, const char *tenant_id, const char *user_id, const char *id,
                                            const char *status, int64_t now)
{
    if (!tenant_id || !user_id || !id || !status) return STORE_INVALID;
    conn_args a = {.tenant_id = tenant_id, .user_id = user_id, .id = id, .status = status, .now = now};
    return pg_write(st, status_op, &a);
}

static store_status delete_op(PGconn *c, void *arg)
{
    conn_args *a = arg;
    const char *p[3] = {a->id, a->sc->user_id, a->sc->tenant_id};
    store_status st;
    int64_t n = pg_run_count(c, "DELETE FROM connections WHERE id = $1 AND user_id = $2 AND tenant_id = $3", 3, p,
                             &st, "delete connection");
    return n < 0 ? st : n == 0 ? STORE_NOT_FOUND : STORE_OK;
}

store_status store_pg_connection_delete(store *st, const scope *sc, const char *id)
{
    if (!scope_is_user(sc) || !id) return STORE_NOT_FOUND;
    conn_args a = {.sc = sc, .id = id};
    return pg_write(st, delete_op, &a);
}

static store_status lease_op(PGconn *c, void *arg)
{
    conn_args *a = arg;
    char until[PG_I64_MAX], now[PG_I64_MAX];
    const char *p[3] = {pg_num(until, a->until_ms), a->id, pg_num(now, a->now)};
    store_status st;
    int64_t n = pg_run_count(c, "UPDATE connections SET refreshing_until = $1 WHERE id = $2 AND status = 'active'"
                                " AND refreshing_until < $3", 3, p, &st, "lease connection");
    return n < 0 ? st : n == 0 ? STORE_CONFLICT : STORE_OK;
}

store_status store_pg_connection_lease(store *st, const char *id, int64_t now_ms, int64_t until_ms)
{
    conn_args a = {.id = id, .now = now_ms, .until_ms = until_ms};
    return pg_write(st, lease_op, &a);
}

static store_status unlease_op(PGconn *c, void *arg)
{
    conn_args *a = arg;
    const char *p[1] = {a->id};
    return pg_run(c, "UPDATE connections SET refreshing_until = 0 WHERE id = $1", 1, p, "unlease connection");
}

store_status store_pg_connection_unlease(store *st, const char *id)
{
    conn_args a = {.id = id};
    return pg_write(st, unlease_op, &a);
}

store_status store_pg_connection_list_sealed_other(struct pg_store *p, int version, size_t limit,
                                                   connection_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char v[PG_I64_MAX], lim[PG_I64_MAX];
    const char *params[2] = {pg_num(v, version), pg_num(lim, (int64_t)limit)};
    store_status st;
    PGresult *r = pg_read(p, "SELECT " CONN_COLS " FROM connections WHERE sealed IS NOT NULL AND key_version <> $1"
                             " ORDER BY id COLLATE \"C\" LIMIT $2", 2, params, &st, "list connections");
    return r ? conn_many(r, out, n) : st;
}

static store_status reseal_op(PGconn *c, void *arg)
{
    conn_args *a = arg;
    char v[PG_I64_MAX];
    const char *p[4] = {a->sealed, pg_num(v, a->key_version), a->id, a->old_sealed};
    store_status st;
    int64_t n = pg_run_count(c, "UPDATE connections SET sealed = $1, key_version = $2 WHERE id = $3 AND sealed = $4",
                             4, p, &st, "reseal connection");
    return n < 0 ? st : n == 0 ? STORE_CONFLICT : STORE_OK;
}

store_status store_pg_connection_reseal(store *st, const char *id, const char *old_sealed, const char *new_sealed,
                                        int version)
{
    conn_args a = {.id = id, .old_sealed = old_sealed, .sealed = new_sealed, .key_version = version};
    return pg_write(st, reseal_op, &a);
}

/* ---- consent flows ---- */

typedef struct flow_args {
    const oauth_flow_rec *in;
    oauth_flow_rec *out;
    const char *hash, *browser_hash;
    int64_t now;
} flow_args;

static store_status flow_read(PGresult *r, oauth_flow_rec *f)
{
    if (PQntuples(r) < 1) { PQclear(r); return STORE_NOT_FOUND; }
    pg_copy(r, 0, 0, f->state_hash, sizeof f->state_hash);
    pg_copy(r, 0, 1, f->start_hash, sizeof f->start_hash);
    pg_copy(r, 0, 2, f->browser_hash, sizeof f->browser_hash);
    pg_copy(r, 0, 3, f->connection_id, sizeof f->connection_id);
    pg_copy(r, 0, 4, f->tenant_id, sizeof f->tenant_id);
    pg_copy(r, 0, 5, f->user_id, sizeof f->user_id);
    pg_copy(r, 0, 6, f->provider, sizeof f->provider);
    store_status st = STORE_OK;
    if (!PQgetisnull(r, 0, 7) && !(f->sealed_verifier = strdup(PQgetvalue(r, 0, 7)))) st = STORE_ERROR;
    f->key_version = (int)pg_i64(r, 0, 8);
    f->expires_at = pg_i64(r, 0, 9);
    PQclear(r);
    return st;
}

static store_status flow_put_op(PGconn *c, void *arg)
{
    flow_args *a = arg;
    const oauth_flow_rec *f = a->in;
    char now[PG_I64_MAX], kv[PG_I64_MAX], ex[PG_I64_MAX];
    const char *sp[1] = {pg_num(now, a->now)};
    store_status st = pg_run(c, "DELETE FROM oauth_flows WHERE expires_at < $1", 1, sp, "sweep flows");
    if (st != STORE_OK) return st;
    const char *p[9] = {f->state_hash, f->start_hash, f->connection_id, f->tenant_id, f->user_id, f->provider,
                        f->sealed_verifier, pg_num(kv, f->key_version), pg_num(ex, f->expires_at)};
    return pg_run(c, "INSERT INTO oauth_flows (state_hash, start_hash, browser_hash, connection_id, tenant_id,"
                     " user_id, provider, sealed_verifier, key_version, expires_at)"
                     " VALUES ($1,$2,'',$3,$4,$5,$6,$7,$8,$9)", 9, p, "insert flow");
}

store_status store_pg_oauth_flow_put(store *st, const oauth_flow_rec *f, int64_t now)
{
    if (!f || !f->state_hash[0] || !f->start_hash[0] || !f->sealed_verifier) return STORE_INVALID;
    flow_args a = {.in = f, .now = now};
    return pg_write(st, flow_put_op, &a);
}

static store_status flow_start_op(PGconn *c, void *arg)
{
    flow_args *a = arg;
    const char *p[1] = {a->hash};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT " FLOW_COLS " FROM oauth_flows WHERE start_hash = $1 FOR UPDATE", 1, p, &st,
                          "read flow");
    if (!r) return st;
    oauth_flow_rec_free(a->out);
    memset(a->out, 0, sizeof *a->out);
    if ((st = flow_read(r, a->out)) != STORE_OK) return st;
    if (a->out->expires_at < a->now) return STORE_NOT_FOUND;
    if (a->out->browser_hash[0]) return STORE_CONFLICT;   /* a connect link opens once */
    const char *u[2] = {a->browser_hash, a->hash};
    int64_t n = pg_run_count(c, "UPDATE oauth_flows SET browser_hash = $1 WHERE start_hash = $2 AND browser_hash = ''",
                             2, u, &st, "start flow");
    if (n < 0) return st;
    if (n == 0) return STORE_CONFLICT;
    snprintf(a->out->browser_hash, sizeof a->out->browser_hash, "%s", a->browser_hash);
    return STORE_OK;
}

store_status store_pg_oauth_flow_start(store *st, const char *start_hash, const char *browser_hash, int64_t now,
                                       oauth_flow_rec *out)
{
    memset(out, 0, sizeof *out);
    flow_args a = {.hash = start_hash, .browser_hash = browser_hash, .now = now, .out = out};
    store_status res = pg_write(st, flow_start_op, &a);
    if (res != STORE_OK) oauth_flow_rec_free(out);
    return res;
}

static store_status flow_take_op(PGconn *c, void *arg)
{
    flow_args *a = arg;
    const char *p[1] = {a->hash};
    store_status st;
    /* read and deleted in one statement: single use across instances */
    PGresult *r = pg_exec(c, "DELETE FROM oauth_flows WHERE state_hash = $1 RETURNING " FLOW_COLS, 1, p, &st,
                          "take flow");
    return r ? flow_read(r, a->out) : st;
}

store_status store_pg_oauth_flow_take(store *st, const char *state_hash, int64_t now, oauth_flow_rec *out)
{
    memset(out, 0, sizeof *out);
    flow_args a = {.hash = state_hash, .now = now, .out = out};
    store_status res = pg_write(st, flow_take_op, &a);
    if (res == STORE_OK && out->expires_at < now) res = STORE_NOT_FOUND;   /* taken all the same */
    if (res != STORE_OK) oauth_flow_rec_free(out);
    return res;
}

/* ---- brigade's own registrations at authorization servers ---- */

store_status store_pg_oauth_client_get(struct pg_store *p, const char *provider, const char *redirect_uri,
                                       oauth_client_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!provider || !redirect_uri) return STORE_NOT_FOUND;
    const char *params[2] = {provider, redirect_uri};
    store_status st;
    PGresult *r = pg_read(p, "SELECT token_endpoint, client_id, auth_method, created_at FROM oauth_clients"
                             " WHERE provider = $1 AND redirect_uri = $2", 2, params, &st, "oauth client");
    if (!r) return st;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return STORE_NOT_FOUND;
    }
    snprintf(out->provider, sizeof out->provider, "%s", provider);
    snprintf(out->redirect_uri, sizeof out->redirect_uri, "%s", redirect_uri);
    pg_copy(r, 0, 0, out->token_endpoint, sizeof out->token_endpoint);
    pg_copy(r, 0, 1, out->client_id, sizeof out->client_id);
    pg_copy(r, 0, 2, out->auth_method, sizeof out->auth_method);
    if (!out->auth_method[0]) snprintf(out->auth_method, sizeof out->auth_method, "none");
    out->created_at = pg_i64(r, 0, 3);
    PQclear(r);
    return STORE_OK;
}

static store_status oauth_client_put_op(PGconn *c, void *arg)
{
    const oauth_client_rec *rec = arg;
    char b[PG_I64_MAX];
    const char *params[6] = {rec->provider, rec->redirect_uri, rec->token_endpoint, rec->client_id,
                             rec->auth_method, pg_num(b, rec->created_at)};
    /* replaces the one for the same provider and redirect URI, as SQLite's
     * INSERT OR REPLACE; one statement, so two instances never clash */
    return pg_run(c, "INSERT INTO oauth_clients (provider, redirect_uri, token_endpoint, client_id, auth_method,"
                     " created_at) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (provider, redirect_uri) DO UPDATE SET"
                     " token_endpoint = EXCLUDED.token_endpoint, client_id = EXCLUDED.client_id,"
                     " auth_method = EXCLUDED.auth_method, created_at = EXCLUDED.created_at",
                  6, params, "keep oauth client");
}

store_status store_pg_oauth_client_put(store *st, const oauth_client_rec *rec)
{
    return pg_write(st, oauth_client_put_op, (void *)rec);
}
