/* store_sessions.c — a user's sessions and their transcripts.
 *
 * Everything here belongs to one user: the functions take a SCOPE_USER
 * scope, every statement carries `user_id = ? AND tenant_id = ?` from it,
 * and another user's session is STORE_NOT_FOUND exactly like a missing one.
 * Messages are only ever appended, by runs (store_runs.c), through
 * store_message_append below: it assigns `seq` inside the writer's
 * transaction, so two appends to one session can never get the same
 * number, and a group of messages appended in one operation is contiguous. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdlib.h>
#include <string.h>

#include "util/ids.h"
#include "util/timeutil.h"
#include "util/utf8.h"

#define STORE_METADATA_MAX (64u << 10)   /* a session's metadata JSON text */
#define STORE_LIST_DEFAULT 100
#define STORE_LIST_MAX 1000

#define STORE_SESSION_COLS "id, agent, metadata, created_at, updated_at, message_count"
#define STORE_MESSAGE_COLS "seq, session_id, run_id, role, content, tool_calls, tool_call_id, created_at, origin"

/* ---- freeing ---- */

void session_rec_free(session_rec *s)
{
    if (!s) return;
    free(s->metadata_json);
    s->metadata_json = NULL;
}

void message_rec_free(message_rec *m)
{
    if (!m) return;
    free(m->content);
    free(m->tool_calls_json);
    free(m->origin_json);
    m->content = m->tool_calls_json = m->origin_json = NULL;
}

void store_free_sessions(session_rec *arr, size_t n)
{
    if (!arr) return;
    for (size_t i = 0; i < n; i++) session_rec_free(&arr[i]);
    free(arr);
}

void store_free_messages(message_rec *arr, size_t n)
{
    if (!arr) return;
    for (size_t i = 0; i < n; i++) message_rec_free(&arr[i]);
    free(arr);
}

/* ---- shared checks ---- */

store_status store_user_alive(store_conn *c, const char *tenant_id, const char *user_id)
{
    sqlite3_stmt *s = store_stmt(c, "SELECT 1 FROM users WHERE id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, user_id);
    store_bind_text(s, 2, tenant_id);
    return store_step_exists(c, s, "user alive");
}

store_status store_session_owned(store_conn *c, const scope *sc, const char *session_id)
{
    sqlite3_stmt *s = store_stmt(c, "SELECT 1 FROM sessions WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, session_id, sc);
    return store_step_exists(c, s, "session owned");
}

static bool store_text_ok(const char *s)
{
    return !s || utf8_valid(s, strlen(s));
}

/* The shape rules of a transcript message, so the transcript can always be
 * replayed to a model: a tool result names its call, a user message has
 * text, an assistant message has text or tool calls. */
static bool store_message_valid(const message_rec *m)
{
    if (!memchr(m->role, '\0', sizeof m->role) || !memchr(m->tool_call_id, '\0', sizeof m->tool_call_id))
        return false;
    if (m->origin_json && strlen(m->origin_json) > STORE_ORIGIN_MAX) return false;
    if (!store_text_ok(m->content) || !store_text_ok(m->tool_calls_json) || !store_text_ok(m->origin_json) ||
        !utf8_valid(m->tool_call_id, strlen(m->tool_call_id)))
        return false;
    if (strcmp(m->role, "user") == 0) return m->content && !m->tool_calls_json && !m->tool_call_id[0];
    if (strcmp(m->role, "assistant") == 0) return (m->content || m->tool_calls_json) && !m->tool_call_id[0];
    if (strcmp(m->role, "tool") == 0) return m->tool_call_id[0] && !m->tool_calls_json;
    return false;
}

store_status store_messages_append(store_conn *c, const scope *sc, const char *session_id,
                                   const char *run_id, const message_rec *msgs, size_t n,
                                   int64_t now, int64_t *first_seq_out)
{
    /* Checked here, message by message, rather than by the callers up
     * front: a group that fails half-way must leave nothing behind, and
     * that is the savepoint's job whatever the cause of the failure. */
    for (size_t i = 0; i < n; i++)
        if (!store_message_valid(&msgs[i])) return STORE_INVALID;
    if (n == 0) return STORE_OK;

    sqlite3_stmt *s = store_stmt(c, "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, session_id);
    int rc = sqlite3_step(s);
    int64_t seq = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return store_sqlite_status(c, rc, "next seq");
    if (first_seq_out) *first_seq_out = seq;

    for (size_t i = 0; i < n; i++, seq++) {
        const message_rec *m = &msgs[i];
        s = store_stmt(c, "INSERT INTO messages (session_id, seq, run_id, tenant_id, user_id, role, content,"
                          " tool_calls, tool_call_id, created_at, origin) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
        if (!s) return STORE_ERROR;
        store_bind_text(s, 1, session_id);
        sqlite3_bind_int64(s, 2, seq);
        store_bind_text(s, 3, run_id ? run_id : "");
        store_bind_text(s, 4, sc->tenant_id);
        store_bind_text(s, 5, sc->user_id);
        store_bind_text(s, 6, m->role);
        store_bind_text(s, 7, m->content);
        store_bind_text(s, 8, m->tool_calls_json);
        store_bind_text(s, 9, m->tool_call_id);
        sqlite3_bind_int64(s, 10, now);
        store_bind_text(s, 11, m->origin_json);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "insert message");
    }

    s = store_stmt(c, "UPDATE sessions SET message_count = message_count + ?, updated_at = ? WHERE id = ?");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)n);
    sqlite3_bind_int64(s, 2, now);
    store_bind_text(s, 3, session_id);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "touch session");
    return STORE_OK;
}

store_status store_message_append(store_conn *c, const scope *sc, const char *session_id,
                                  const char *run_id, const message_rec *m, int64_t now,
                                  int64_t *seq_out)
{
    return store_messages_append(c, sc, session_id, run_id, m, 1, now, seq_out);
}

/* ---- rows ---- */

static int store_read_session(sqlite3_stmt *s, void *rec)
{
    session_rec *out = rec;
    memset(out, 0, sizeof *out);
    store_col_copy(s, 0, out->id, sizeof out->id);
    store_col_copy(s, 1, out->agent, sizeof out->agent);
    out->created_at = sqlite3_column_int64(s, 3);
    out->updated_at = sqlite3_column_int64(s, 4);
    out->message_count = sqlite3_column_int64(s, 5);
    return store_col_dup(s, 2, &out->metadata_json);
}

static int store_read_message(sqlite3_stmt *s, void *rec)
{
    message_rec *m = rec;
    memset(m, 0, sizeof *m);
    m->seq = sqlite3_column_int64(s, 0);
    store_col_copy(s, 1, m->session_id, sizeof m->session_id);
    store_col_copy(s, 2, m->run_id, sizeof m->run_id);
    store_col_copy(s, 3, m->role, sizeof m->role);
    store_col_copy(s, 6, m->tool_call_id, sizeof m->tool_call_id);
    m->created_at = sqlite3_column_int64(s, 7);
    if (store_col_dup(s, 4, &m->content) != 0 || store_col_dup(s, 5, &m->tool_calls_json) != 0 ||
        store_col_dup(s, 8, &m->origin_json) != 0) {
        message_rec_free(m);
        return -1;
    }
    return 0;
}

static void store_session_rows_free(void *arr, size_t n) { store_free_sessions(arr, n); }
static void store_message_rows_free(void *arr, size_t n) { store_free_messages(arr, n); }
static const store_rows session_rows = {sizeof(session_rec), store_read_session, store_session_rows_free,
                                        "list sessions"};
static const store_rows message_rows = {sizeof(message_rec), store_read_message, store_message_rows_free,
                                        "list messages"};

/* ---- sessions ---- */

typedef struct session_create_args {
    const scope *sc;
    session_rec *rec;
    store_quota quota;
    store_quota_refusal refusal;
} session_create_args;

static store_status store_session_create_op(store_conn *c, void *arg)
{
    session_create_args *a = arg;
    /* the owner may have been erased since the request authenticated; a
     * session created now would outlive the erasure */
    store_status res = store_user_alive(c, a->sc->tenant_id, a->sc->user_id);
    if (res != STORE_OK) return res;
    if (a->quota.sessions > 0) {
        sqlite3_stmt *s = store_stmt(c, "SELECT count(*) FROM sessions WHERE user_id = ? AND tenant_id = ?");
        if (!s) return STORE_ERROR;
        store_bind_text(s, 1, a->sc->user_id);
        store_bind_text(s, 2, a->sc->tenant_id);
        int rc = sqlite3_step(s);
        int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
        if (rc != SQLITE_ROW) return store_sqlite_status(c, rc, "sessions quota");
        res = store_quota_check("sessions", a->quota.sessions, n, n + 1, 1, &a->refusal);
        if (res != STORE_OK) return res;
    }
    sqlite3_stmt *s = store_stmt(c, "INSERT INTO sessions (id, tenant_id, user_id, agent, metadata,"
                                    " created_at, updated_at) VALUES (?,?,?,?,?,?,?)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->rec->id);
    store_bind_text(s, 2, a->sc->tenant_id);
    store_bind_text(s, 3, a->sc->user_id);
    store_bind_text(s, 4, a->rec->agent);
    store_bind_text(s, 5, a->rec->metadata_json);
    sqlite3_bind_int64(s, 6, a->rec->created_at);
    sqlite3_bind_int64(s, 7, a->rec->updated_at);
    return store_step_done(c, s, "insert session");
}

static bool store_agent_ok(const char *agent)
{
    size_t n = agent ? strnlen(agent, STORE_AGENT_MAX) : 0;
    if (n == 0 || n >= STORE_AGENT_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)agent[i] < 0x20 || agent[i] == 0x7f) return false;
    return utf8_valid(agent, n);
}

store_status store_session_create(store *st, const scope *sc, const char *agent,
                                  const char *metadata_json, session_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_session_create(st, sc, agent, metadata_json, out));
    session_rec rec;
    memset(&rec, 0, sizeof rec);
    if (out) memset(out, 0, sizeof *out);
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!store_agent_ok(agent)) return STORE_INVALID;
    if (metadata_json && (strlen(metadata_json) > STORE_METADATA_MAX || !store_text_ok(metadata_json)))
        return STORE_INVALID;
    ids_new(rec.id, "ses");
    memcpy(rec.agent, agent, strlen(agent) + 1);
    rec.created_at = rec.updated_at = time_now_unix();
    rec.metadata_json = (char *)metadata_json;   /* borrowed for the insert only */
    session_create_args a = {sc, &rec, {0}, {0}};
    store_quota_of(st, sc, &a.quota);
    store_status res = store_quota_record(store_write(st, store_session_create_op, &a), &a.refusal);
    if (res != STORE_OK || !out) return res;
    *out = rec;
    out->metadata_json = NULL;
    if (metadata_json && !(out->metadata_json = strdup(metadata_json))) return STORE_ERROR;
    return STORE_OK;
}

store_status store_session_get(store *st, const scope *sc, const char *session_id, session_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_session_get(store_pg_of(st), sc, session_id, out));
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !session_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_SESSION_COLS " FROM sessions"
                                    " WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, session_id, sc);
    int rc = sqlite3_step(s);
    store_status res;
    if (rc == SQLITE_ROW) res = store_read_session(s, out) == 0 ? STORE_OK : STORE_ERROR;
    else res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "get session");
    sqlite3_reset(s);
    return res;
}

static size_t store_clamp_limit(size_t limit)
{
    if (limit == 0) return STORE_LIST_DEFAULT;
    return limit > STORE_LIST_MAX ? STORE_LIST_MAX : limit;
}

store_status store_session_list(store *st, const scope *sc, const char *before, size_t limit,
                                session_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_session_list(store_pg_of(st), sc, before, limit, out, n));
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    limit = store_clamp_limit(limit);
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;

    /* The cursor is a session id; its rowid is its place in creation order.
     * A cursor that is not one of this user's sessions is NOT_FOUND, not
     * an empty page, so a client cannot mistake a bad cursor for the end. */
    int64_t below = INT64_MAX;
    if (before && *before) {
        sqlite3_stmt *s = store_stmt(c, "SELECT rowid FROM sessions WHERE id = ? AND user_id = ? AND tenant_id = ?");
        if (!s) return STORE_ERROR;
        store_bind_owned(s, 1, before, sc);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) below = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "session cursor");
    }

    sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_SESSION_COLS " FROM sessions"
                                    " WHERE user_id = ? AND tenant_id = ? AND rowid < ?"
                                    " ORDER BY rowid DESC LIMIT ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, sc->user_id);
    store_bind_text(s, 2, sc->tenant_id);
    sqlite3_bind_int64(s, 3, below);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)limit);
    void *arr;
    store_status res = store_collect(c, s, &session_rows, limit, &arr, n);
    *out = arr;
    return res;
}

typedef struct session_delete_args {
    const scope *sc;
    const char *session_id;
} session_delete_args;

static store_status store_session_delete_op(store_conn *c, void *arg)
{
    session_delete_args *a = arg;
    store_status res = store_session_owned(c, a->sc, a->session_id);
    if (res != STORE_OK) return res;
    static const char *const erase[] = {
        "DELETE FROM messages WHERE session_id = ?",
        "DELETE FROM runs WHERE session_id = ?",
        "DELETE FROM sessions WHERE id = ?",
    };
    for (size_t i = 0; i < sizeof erase / sizeof erase[0]; i++) {
        sqlite3_stmt *s = store_stmt(c, erase[i]);
        if (!s) return STORE_ERROR;
        store_bind_text(s, 1, a->session_id);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "delete session");
    }
    return STORE_OK;
}

store_status store_session_delete(store *st, const scope *sc, const char *session_id)
{
    STORE_PG_DISPATCH(st, store_pg_session_delete(st, sc, session_id));
    if (!scope_valid(sc) || !session_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    session_delete_args a = {sc, session_id};
    return store_write(st, store_session_delete_op, &a);
}

/* ---- messages ---- */

/* The two transcript reads differ only in their SQL, which takes the
 * session and its owner as ?1-?3, a seq to start after as ?4 (a tail has
 * none and ignores it) and the page size as ?5. Another user's session is
 * STORE_NOT_FOUND, not an empty page. */
static store_status store_message_query(store *st, const scope *sc, const char *session_id,
                                        const char *sql, int64_t after_seq, size_t limit,
                                        message_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc) || !session_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    limit = store_clamp_limit(limit);
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    store_status res = store_session_owned(c, sc, session_id);
    if (res != STORE_OK) return res;
    sqlite3_stmt *s = store_stmt(c, sql);
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, session_id, sc);
    sqlite3_bind_int64(s, 4, after_seq);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)limit);
    void *arr;
    res = store_collect(c, s, &message_rows, limit, &arr, n);
    *out = arr;
    return res;
}

store_status store_message_list(store *st, const scope *sc, const char *session_id,
                                int64_t after_seq, size_t limit, message_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_message_list(store_pg_of(st), sc, session_id, after_seq, limit, out, n));
    return store_message_query(st, sc, session_id,
                               "SELECT " STORE_MESSAGE_COLS " FROM messages"
                               " WHERE session_id = ?1 AND user_id = ?2 AND tenant_id = ?3 AND seq > ?4"
                               " ORDER BY seq LIMIT ?5",
                               after_seq, limit, out, n);
}

store_status store_message_tail(store *st, const scope *sc, const char *session_id,
                                size_t limit, message_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_message_tail(store_pg_of(st), sc, session_id, limit, out, n));
    /* newest first, as the index walks back from the end, then turned
     * around here: ordering the rows again in SQL made SQLite sort them in
     * a temporary b-tree at every run's start */
    store_status res = store_message_query(st, sc, session_id,
                                           "SELECT " STORE_MESSAGE_COLS " FROM messages"
                                           " WHERE session_id = ?1 AND user_id = ?2 AND tenant_id = ?3"
                                           " ORDER BY seq DESC LIMIT ?5",
                                           0, limit, out, n);
    for (size_t i = 0, j = *n; res == STORE_OK && i + 1 < j; i++, j--) {
        message_rec m = (*out)[i];
        (*out)[i] = (*out)[j - 1];
        (*out)[j - 1] = m;
    }
    return res;
}
