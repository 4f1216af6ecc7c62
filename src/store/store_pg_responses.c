/* store_pg_responses.c — stored Responses on PostgreSQL (the same
 * contracts as store_responses.c: a user's own turns, linked by
 * previous_id; the chain walk is filtered by the caller's tenant and user
 * at every step; bytes count against the memory_bytes quota). A put locks
 * the user's row first: an erased user gets no rows, and two instances
 * cannot both pass the quota. */
#include "store/store_internal.h"   /* store_quota_of / _check / _record */
#include "store/store_pg_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/timeutil.h"

static bool id_ok(const char *id)
{
    size_t n = id ? strnlen(id, ID_MAX) : 0;
    if (n < 6 || n >= ID_MAX || strncmp(id, "resp_", 5) != 0) return false;
    for (size_t i = 5; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) return false;
    return true;
}

static store_status bytes_used(PGconn *c, const scope *sc, int64_t *used)
{
    const char *p[2] = {sc->tenant_id, sc->user_id};
    store_status st;
    PGresult *r = pg_exec(c,
        "SELECT (SELECT COALESCE(SUM(bytes), 0) FROM memory WHERE tenant_id = $1 AND user_id = $2)"
        " + (SELECT COALESCE(SUM(bytes), 0) FROM responses WHERE tenant_id = $1 AND user_id = $2)",
        2, p, &st, "responses quota");
    if (!r) return st;
    *used = pg_i64(r, 0, 0);
    PQclear(r);
    return STORE_OK;
}

typedef struct put_args {
    const scope *sc;
    const char *id, *previous_id, *model, *items, *object;
    int64_t bytes, now;
    store_quota quota;
    store_quota_refusal refusal;
} put_args;

static store_status put_op(PGconn *c, void *arg)
{
    put_args *a = arg;
    const char *up[2] = {a->sc->user_id, a->sc->tenant_id};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT 1 FROM users WHERE id = $1 AND tenant_id = $2 FOR UPDATE", 2, up, &st,
                          "lock user");
    if (!r) return st;
    int alive = PQntuples(r) == 1;
    PQclear(r);
    if (!alive) return STORE_NOT_FOUND;
    if (a->quota.memory_bytes > 0) {
        int64_t used = 0;   /* set by bytes_used; -O3 cannot tell */
        if ((st = bytes_used(c, a->sc, &used)) != STORE_OK) return st;
        st = store_quota_check("memory_bytes", a->quota.memory_bytes, used, used + a->bytes, a->bytes,
                               &a->refusal);
        if (st != STORE_OK) return st;
    }
    char bytes[PG_I64_MAX], now[PG_I64_MAX];
    const char *p[9] = {a->id, a->sc->tenant_id, a->sc->user_id, a->previous_id ? a->previous_id : "",
                        a->model, a->items, a->object, pg_num(bytes, a->bytes), pg_num(now, a->now)};
    return pg_run(c, "INSERT INTO responses (id, tenant_id, user_id, previous_id, model, items, object, bytes,"
                     " created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)", 9, p, "store response");
}

store_status store_pg_response_put(store *st, const scope *sc, const char *id, const char *previous_id,
                                   const char *model, const char *items_json, const char *object_json)
{
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!id_ok(id) || (previous_id && previous_id[0] && !id_ok(previous_id)) || !model || !items_json ||
        !object_json)
        return STORE_INVALID;
    size_t bytes = strlen(items_json) + strlen(object_json);
    if (bytes > STORE_RESPONSE_MAX_BYTES) return STORE_INVALID;
    put_args a = {sc, id, previous_id, model, items_json, object_json, (int64_t)bytes, time_now_unix(),
                  {0}, {0}};
    store_quota_of(st, sc, &a.quota);
    return store_quota_record(pg_write(st, put_op, &a), &a.refusal);
}

store_status store_pg_response_room(store *st, const scope *sc, int64_t bytes)
{
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    store_quota q;
    store_quota_of(st, sc, &q);
    if (q.memory_bytes <= 0) return STORE_OK;
    struct pg_store *p = store_pg_of(st);
    PGconn *c = pg_acquire(p);
    if (!c) return STORE_ERROR;
    int64_t used = 0;   /* set by bytes_used; -O3 cannot tell */
    store_status res = bytes_used(c, sc, &used);
    pg_release(p, c);
    if (res != STORE_OK) return res;
    store_quota_refusal r = {0};
    return store_quota_record(store_quota_check("memory_bytes", q.memory_bytes, used, used + bytes, bytes, &r),
                              &r);
}

store_status store_pg_response_get(struct pg_store *p, const scope *sc, const char *id, char **object_json)
{
    *object_json = NULL;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!id_ok(id)) return STORE_NOT_FOUND;
    const char *params[3] = {id, sc->user_id, sc->tenant_id};
    store_status st;
    PGresult *r = pg_read(p, "SELECT object FROM responses WHERE id = $1 AND user_id = $2 AND tenant_id = $3",
                          3, params, &st, "get response");
    if (!r) return st;
    if (PQntuples(r) == 1) st = (*object_json = strdup(PQgetvalue(r, 0, 0))) ? STORE_OK : STORE_ERROR;
    else st = STORE_NOT_FOUND;
    PQclear(r);
    return st;
}

store_status store_pg_response_chain(struct pg_store *p, const scope *sc, const char *id, char **items_json)
{
    *items_json = NULL;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!id_ok(id)) return STORE_NOT_FOUND;
    char max[PG_I64_MAX];
    const char *params[4] = {id, sc->user_id, sc->tenant_id, pg_num(max, STORE_RESPONSE_CHAIN_MAX)};
    store_status st;
    /* every step filtered by the caller's tenant and user */
    PGresult *r = pg_read(p,
        "WITH RECURSIVE chain (id, prev, items, depth) AS ("
        "  SELECT id, previous_id, items, 1 FROM responses WHERE id = $1 AND user_id = $2 AND tenant_id = $3"
        "  UNION ALL"
        "  SELECT r.id, r.previous_id, r.items, chain.depth + 1 FROM responses r JOIN chain ON r.id = chain.prev"
        "   WHERE r.user_id = $2 AND r.tenant_id = $3 AND chain.depth < $4::int)"
        " SELECT prev, items, depth FROM chain ORDER BY depth DESC", 4, params, &st, "read response chain");
    if (!r) return st;
    int rows = PQntuples(r);
    if (rows == 0) { PQclear(r); return STORE_NOT_FOUND; }
    /* the oldest row read: past the bound, or its earlier response deleted */
    if (pg_i64(r, 0, 2) >= STORE_RESPONSE_CHAIN_MAX) { PQclear(r); return STORE_TOO_LARGE; }
    if (PQgetvalue(r, 0, 0)[0]) { PQclear(r); return STORE_NOT_FOUND; }
    buf out;
    buf_init(&out);
    buf_append(&out, "[", 1);
    bool any = false;
    st = STORE_OK;
    for (int i = 0; i < rows && st == STORE_OK; i++) {
        const char *items = PQgetvalue(r, i, 1);
        int len = PQgetlength(r, i, 1);
        if (len < 2 || items[0] != '[' || items[len - 1] != ']') { st = STORE_ERROR; break; }
        if (len > 2) {
            if (any) buf_append(&out, ",", 1);
            buf_append(&out, items + 1, (size_t)len - 2);
            any = true;
        }
        if (out.len > STORE_RESPONSE_CHAIN_BYTES) st = STORE_TOO_LARGE;
    }
    PQclear(r);
    if (st != STORE_OK) {
        buf_free(&out);
        return st;
    }
    buf_append(&out, "]", 1);
    *items_json = buf_detach(&out);
    return STORE_OK;
}

typedef struct del_args { const scope *sc; const char *id; } del_args;

static store_status delete_op(PGconn *c, void *arg)
{
    del_args *a = arg;
    const char *p[3] = {a->id, a->sc->user_id, a->sc->tenant_id};
    store_status st;
    int64_t n = pg_run_count(c, "DELETE FROM responses WHERE id = $1 AND user_id = $2 AND tenant_id = $3", 3,
                             p, &st, "delete response");
    return n < 0 ? st : n == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_pg_response_delete(store *st, const scope *sc, const char *id)
{
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!id_ok(id)) return STORE_NOT_FOUND;
    del_args a = {sc, id};
    return pg_write(st, delete_op, &a);
}
