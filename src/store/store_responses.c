/* store_responses.c — stored Responses (POST /v1/responses with "store"):
 * each row is one turn of a conversation — its input items and output
 * items as one JSON array, and the response object GET returns — owned by
 * a tenant's user like sessions and memory. previous_response_id is a
 * link to the row before; continuing a response reads its chain, newest
 * to oldest, in one recursive query that stays inside the caller's scope
 * at every step, so a chain can never reach another user's row.
 *
 * A stored response's bytes count against the user's memory_bytes quota
 * (with their memory entries): both are text the user keeps on the server. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/timeutil.h"

static bool store_response_id_ok(const char *id)
{
    size_t n = id ? strnlen(id, ID_MAX) : 0;
    if (n < 6 || n >= ID_MAX || strncmp(id, "resp_", 5) != 0) return false;
    for (size_t i = 5; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) return false;
    return true;
}

/* The memory_bytes quota's usage: memory entries and stored responses. */
static store_status store_response_bytes_used(store_conn *c, const scope *sc, int64_t *used)
{
    sqlite3_stmt *s = store_stmt(c,
        "SELECT (SELECT COALESCE(SUM(bytes), 0) FROM memory WHERE tenant_id = ?1 AND user_id = ?2)"
        " + (SELECT COALESCE(SUM(bytes), 0) FROM responses WHERE tenant_id = ?1 AND user_id = ?2)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, sc->tenant_id);
    store_bind_text(s, 2, sc->user_id);
    int rc = sqlite3_step(s);
    *used = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(c, rc, "responses quota");
}

typedef struct response_put_args {
    const scope *sc;
    const char *id, *previous_id, *model, *items, *object;
    int64_t bytes, now;
    store_quota quota;
    store_quota_refusal refusal;
} response_put_args;

static store_status store_response_put_op(store_conn *c, void *arg)
{
    response_put_args *a = arg;
    /* a user erased since the request authenticated must not get new rows */
    store_status res = store_user_alive(c, a->sc->tenant_id, a->sc->user_id);
    if (res != STORE_OK) return res;
    if (a->quota.memory_bytes > 0) {
        int64_t used;
        if ((res = store_response_bytes_used(c, a->sc, &used)) != STORE_OK) return res;
        res = store_quota_check("memory_bytes", a->quota.memory_bytes, used, used + a->bytes,
                                a->bytes, &a->refusal);
        if (res != STORE_OK) return res;
    }
    sqlite3_stmt *s = store_stmt(c,
        "INSERT INTO responses (id, tenant_id, user_id, previous_id, model, items, object, bytes,"
        " created_at) VALUES (?,?,?,?,?,?,?,?,?)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->id);
    store_bind_text(s, 2, a->sc->tenant_id);
    store_bind_text(s, 3, a->sc->user_id);
    store_bind_text(s, 4, a->previous_id ? a->previous_id : "");
    store_bind_text(s, 5, a->model);
    store_bind_text(s, 6, a->items);
    store_bind_text(s, 7, a->object);
    sqlite3_bind_int64(s, 8, a->bytes);
    sqlite3_bind_int64(s, 9, a->now);
    return store_step_done(c, s, "store response");
}

store_status store_response_put(store *st, const scope *sc, const char *id, const char *previous_id,
                                const char *model, const char *items_json, const char *object_json)
{
    STORE_PG_DISPATCH(st, store_pg_response_put(st, sc, id, previous_id, model, items_json, object_json));
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!store_response_id_ok(id) || (previous_id && previous_id[0] && !store_response_id_ok(previous_id)) ||
        !model || !items_json || !object_json)
        return STORE_INVALID;
    size_t bytes = strlen(items_json) + strlen(object_json);
    if (bytes > STORE_RESPONSE_MAX_BYTES) return STORE_INVALID;
    response_put_args a = {sc, id, previous_id, model, items_json, object_json, (int64_t)bytes,
                           time_now_unix(), {0}, {0}};
    store_quota_of(st, sc, &a.quota);
    return store_quota_record(store_write(st, store_response_put_op, &a), &a.refusal);
}

store_status store_response_room(store *st, const scope *sc, int64_t bytes)
{
    STORE_PG_DISPATCH(st, store_pg_response_room(st, sc, bytes));
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    store_quota q;
    store_quota_of(st, sc, &q);
    if (q.memory_bytes <= 0) return STORE_OK;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    int64_t used;
    store_status res = store_response_bytes_used(c, sc, &used);
    if (res != STORE_OK) return res;
    store_quota_refusal r = {0};
    return store_quota_record(store_quota_check("memory_bytes", q.memory_bytes, used, used + bytes,
                                                bytes, &r), &r);
}

store_status store_response_get(store *st, const scope *sc, const char *id, char **object_json)
{
    STORE_PG_DISPATCH(st, store_pg_response_get(store_pg_of(st), sc, id, object_json));
    *object_json = NULL;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!store_response_id_ok(id)) return STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT object FROM responses"
                                    " WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, id, sc);
    int rc = sqlite3_step(s);
    store_status res;
    if (rc == SQLITE_ROW) res = store_col_dup(s, 0, object_json) == 0 && *object_json ? STORE_OK : STORE_ERROR;
    else res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "get response");
    sqlite3_reset(s);
    return res;
}

store_status store_response_chain(store *st, const scope *sc, const char *id, char **items_json)
{
    STORE_PG_DISPATCH(st, store_pg_response_chain(store_pg_of(st), sc, id, items_json));
    *items_json = NULL;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!store_response_id_ok(id)) return STORE_NOT_FOUND;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    /* Every step of the walk is filtered by the caller's tenant and user:
     * a previous_id naming another user's row ends the walk there. */
    sqlite3_stmt *s = store_stmt(c,
        "WITH RECURSIVE chain (id, prev, items, depth) AS ("
        "  SELECT id, previous_id, items, 1 FROM responses"
        "   WHERE id = ?1 AND user_id = ?2 AND tenant_id = ?3"
        "  UNION ALL"
        "  SELECT r.id, r.previous_id, r.items, chain.depth + 1 FROM responses r"
        "   JOIN chain ON r.id = chain.prev"
        "   WHERE r.user_id = ?2 AND r.tenant_id = ?3 AND chain.depth < ?4)"
        " SELECT prev, items, depth FROM chain ORDER BY depth DESC");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, id, sc);
    sqlite3_bind_int(s, 4, STORE_RESPONSE_CHAIN_MAX);
    buf out;
    buf_init(&out);
    buf_append(&out, "[", 1);
    store_status res = STORE_OK;
    bool first_row = true, any = false;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *prev = (const char *)sqlite3_column_text(s, 0);
        const char *items = (const char *)sqlite3_column_text(s, 1);
        int items_len = sqlite3_column_bytes(s, 1);
        int depth = sqlite3_column_int(s, 2);
        if (first_row) {
            first_row = false;
            /* the oldest row read: a chain longer than the bound, or one
             * whose earlier response was deleted, cannot be continued */
            if (depth >= STORE_RESPONSE_CHAIN_MAX) { res = STORE_TOO_LARGE; break; }
            if (prev && prev[0]) { res = STORE_NOT_FOUND; break; }
        }
        /* each row's items are one JSON array: join their insides */
        if (!items || items_len < 2 || items[0] != '[' || items[items_len - 1] != ']') {
            res = STORE_ERROR;
            break;
        }
        if (items_len > 2) {
            if (any) buf_append(&out, ",", 1);
            buf_append(&out, items + 1, (size_t)items_len - 2);
            any = true;
        }
        if (out.len > STORE_RESPONSE_CHAIN_BYTES) { res = STORE_TOO_LARGE; break; }
    }
    if (res == STORE_OK && rc != SQLITE_DONE) res = store_sqlite_status(c, rc, "read response chain");
    if (res == STORE_OK && first_row) res = STORE_NOT_FOUND;
    sqlite3_reset(s);
    if (res != STORE_OK) {
        buf_free(&out);
        return res;
    }
    buf_append(&out, "]", 1);
    *items_json = buf_detach(&out);
    return STORE_OK;
}

typedef struct response_delete_args {
    const scope *sc;
    const char *id;
} response_delete_args;

static store_status store_response_delete_op(store_conn *c, void *arg)
{
    response_delete_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "DELETE FROM responses WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, a->id, a->sc);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "delete response");
    return sqlite3_changes(c->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_response_delete(store *st, const scope *sc, const char *id)
{
    STORE_PG_DISPATCH(st, store_pg_response_delete(st, sc, id));
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!store_response_id_ok(id)) return STORE_NOT_FOUND;
    response_delete_args a = {sc, id};
    return store_write(st, store_response_delete_op, &a);
}
