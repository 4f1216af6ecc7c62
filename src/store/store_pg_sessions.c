/* store_pg_sessions.c — a user's sessions, transcripts and runs on
 * PostgreSQL (the same contracts as store_sessions.c and store_runs.c:
 * SCOPE_USER only, every statement carries the scope's user and tenant,
 * another user's session or run is STORE_NOT_FOUND).
 *
 * Message numbers across instances: an append locks the session's row
 * (the UPDATE of its counters comes first) before it reads the next seq,
 * so two instances appending to one session take turns and a group
 * appended in one transaction stays contiguous. A run's changes lock the
 * run's row (SELECT … FOR UPDATE), so a cancel on one instance racing a
 * completion on another settles once (the second finds it terminal:
 * STORE_CONFLICT). */
#include "store/store_internal.h"   /* store_quota_* */
#include "store/store_pg_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/ids.h"
#include "util/timeutil.h"
#include "util/utf8.h"

#define METADATA_MAX (64u << 10)
#define LIST_DEFAULT 100
#define LIST_MAX 1000
#define SESSION_COLS "id, agent, metadata, created_at, updated_at, message_count"
#define MESSAGE_COLS "seq, session_id, run_id, role, content, tool_calls, tool_call_id, created_at, origin"
#define RUN_COLS "id, session_id, agent, status, error_code, error_message, input_tokens," \
    " output_tokens, cost_nusd, steps, tool_calls, user_seq, final_seq, created_at, started_at, finished_at"

static bool text_ok(const char *s) { return !s || utf8_valid(s, strlen(s)); }

static bool message_valid(const message_rec *m)
{
    if (!memchr(m->role, '\0', sizeof m->role) || !memchr(m->tool_call_id, '\0', sizeof m->tool_call_id))
        return false;
    if (m->origin_json && strlen(m->origin_json) > STORE_ORIGIN_MAX) return false;
    if (!text_ok(m->content) || !text_ok(m->tool_calls_json) || !text_ok(m->origin_json) ||
        !utf8_valid(m->tool_call_id, strlen(m->tool_call_id)))
        return false;
    if (strcmp(m->role, "user") == 0) return m->content && !m->tool_calls_json && !m->tool_call_id[0];
    if (strcmp(m->role, "assistant") == 0) return (m->content || m->tool_calls_json) && !m->tool_call_id[0];
    if (strcmp(m->role, "tool") == 0) return m->tool_call_id[0] && !m->tool_calls_json;
    return false;
}

/* Append m to the session (the caller checked the session is the scope's). */
static store_status message_append(PGconn *c, const scope *sc, const char *session_id, const char *run_id,
                                   const message_rec *m, int64_t now, int64_t *seq_out)
{
    if (!message_valid(m)) return STORE_INVALID;
    char nowv[PG_I64_MAX];
    const char *tp[2] = {pg_num(nowv, now), session_id};
    store_status st = pg_run(c, "UPDATE sessions SET message_count = message_count + 1, updated_at = $1"
                                " WHERE id = $2", 2, tp, "touch session");
    if (st != STORE_OK) return st;
    const char *sp[1] = {session_id};
    PGresult *r = pg_exec(c, "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = $1", 1, sp, &st,
                          "next seq");
    if (!r) return st;
    int64_t seq = pg_i64(r, 0, 0);
    PQclear(r);
    char seqv[PG_I64_MAX];
    const char *p[11] = {session_id, pg_num(seqv, seq), run_id ? run_id : "", sc->tenant_id, sc->user_id,
                         m->role, m->content, m->tool_calls_json, m->tool_call_id, nowv, m->origin_json};
    st = pg_run(c, "INSERT INTO messages (session_id, seq, run_id, tenant_id, user_id, role, content,"
                   " tool_calls, tool_call_id, created_at, origin) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                11, p, "insert message");
    if (st == STORE_OK && seq_out) *seq_out = seq;
    return st;
}

static char *dup_col(const PGresult *r, int i, int col, bool *oom)
{
    if (PQgetisnull(r, i, col)) return NULL;
    char *v = strdup(PQgetvalue(r, i, col));
    if (!v) *oom = true;
    return v;
}

static int read_session(const PGresult *r, int i, session_rec *out)
{
    memset(out, 0, sizeof *out);
    pg_copy(r, i, 0, out->id, sizeof out->id);
    pg_copy(r, i, 1, out->agent, sizeof out->agent);
    out->created_at = pg_i64(r, i, 3);
    out->updated_at = pg_i64(r, i, 4);
    out->message_count = pg_i64(r, i, 5);
    bool oom = false;
    out->metadata_json = dup_col(r, i, 2, &oom);
    return oom ? -1 : 0;
}

static int read_message(const PGresult *r, int i, message_rec *m)
{
    memset(m, 0, sizeof *m);
    m->seq = pg_i64(r, i, 0);
    pg_copy(r, i, 1, m->session_id, sizeof m->session_id);
    pg_copy(r, i, 2, m->run_id, sizeof m->run_id);
    pg_copy(r, i, 3, m->role, sizeof m->role);
    pg_copy(r, i, 6, m->tool_call_id, sizeof m->tool_call_id);
    m->created_at = pg_i64(r, i, 7);
    bool oom = false;
    m->content = dup_col(r, i, 4, &oom);
    m->tool_calls_json = dup_col(r, i, 5, &oom);
    m->origin_json = dup_col(r, i, 8, &oom);
    if (oom) { message_rec_free(m); return -1; }
    return 0;
}

static void read_run(const PGresult *r, int i, run_rec *x)
{
    memset(x, 0, sizeof *x);
    pg_copy(r, i, 0, x->id, sizeof x->id);
    pg_copy(r, i, 1, x->session_id, sizeof x->session_id);
    pg_copy(r, i, 2, x->agent, sizeof x->agent);
    x->status = (run_status)pg_i64(r, i, 3);
    pg_copy(r, i, 4, x->error_code, sizeof x->error_code);
    pg_copy(r, i, 5, x->error_message, sizeof x->error_message);
    x->input_tokens = pg_i64(r, i, 6);
    x->output_tokens = pg_i64(r, i, 7);
    x->cost_nusd = pg_i64(r, i, 8);
    x->steps = pg_i64(r, i, 9);
    x->tool_calls = pg_i64(r, i, 10);
    x->user_seq = pg_i64(r, i, 11);
    x->final_seq = pg_i64(r, i, 12);
    x->created_at = pg_i64(r, i, 13);
    x->started_at = pg_i64(r, i, 14);
    x->finished_at = pg_i64(r, i, 15);
}

static size_t clamp(size_t limit) { return limit == 0 ? LIST_DEFAULT : limit > LIST_MAX ? LIST_MAX : limit; }

/* ---- sessions ---- */

typedef struct ses_args {
    const scope *sc;
    session_rec *rec;
    const char *session_id;
    store_quota quota;
    store_quota_refusal refusal;
} ses_args;

static store_status session_create_op(PGconn *c, void *arg)
{
    ses_args *a = arg;
    const char *up[2] = {a->sc->user_id, a->sc->tenant_id};
    store_status st;
    /* the owner may have been erased since the request authenticated; the
     * lock also serializes this user's creations for the quota */
    PGresult *r = pg_exec(c, "SELECT 1 FROM users WHERE id = $1 AND tenant_id = $2 FOR UPDATE", 2, up, &st,
                          "lock user");
    if (!r) return st;
    int alive = PQntuples(r) == 1;
    PQclear(r);
    if (!alive) return STORE_NOT_FOUND;
    if (a->quota.sessions > 0) {
        r = pg_exec(c, "SELECT count(*) FROM sessions WHERE user_id = $1 AND tenant_id = $2", 2, up, &st,
                    "sessions quota");
        if (!r) return st;
        int64_t n = pg_i64(r, 0, 0);
        PQclear(r);
        st = store_quota_check("sessions", a->quota.sessions, n, n + 1, 1, &a->refusal);
        if (st != STORE_OK) return st;
    }
    char cr[PG_I64_MAX], up2[PG_I64_MAX];
    const char *p[7] = {a->rec->id, a->sc->tenant_id, a->sc->user_id, a->rec->agent, a->rec->metadata_json,
                        pg_num(cr, a->rec->created_at), pg_num(up2, a->rec->updated_at)};
    return pg_run(c, "INSERT INTO sessions (id, tenant_id, user_id, agent, metadata, created_at, updated_at)"
                     " VALUES ($1,$2,$3,$4,$5,$6,$7)", 7, p, "insert session");
}

static bool agent_ok(const char *agent)
{
    size_t n = agent ? strnlen(agent, STORE_AGENT_MAX) : 0;
    if (n == 0 || n >= STORE_AGENT_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)agent[i] < 0x20 || agent[i] == 0x7f) return false;
    return utf8_valid(agent, n);
}

store_status store_pg_session_create(store *st, const scope *sc, const char *agent, const char *metadata_json,
                                     session_rec *out)
{
    session_rec rec;
    memset(&rec, 0, sizeof rec);
    if (out) memset(out, 0, sizeof *out);
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!agent_ok(agent)) return STORE_INVALID;
    if (metadata_json && (strlen(metadata_json) > METADATA_MAX || !text_ok(metadata_json))) return STORE_INVALID;
    ids_new(rec.id, "ses");
    memcpy(rec.agent, agent, strlen(agent) + 1);
    rec.created_at = rec.updated_at = time_now_unix();
    rec.metadata_json = (char *)metadata_json;
    ses_args a = {.sc = sc, .rec = &rec};
    store_quota_of(st, sc, &a.quota);
    store_status res = store_quota_record(pg_write(st, session_create_op, &a), &a.refusal);
    if (res != STORE_OK || !out) return res;
    *out = rec;
    out->metadata_json = NULL;
    if (metadata_json && !(out->metadata_json = strdup(metadata_json))) return STORE_ERROR;
    return STORE_OK;
}

store_status store_pg_session_get(struct pg_store *p, const scope *sc, const char *session_id, session_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !session_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    const char *params[3] = {session_id, sc->user_id, sc->tenant_id};
    store_status st;
    PGresult *r = pg_read(p, "SELECT " SESSION_COLS " FROM sessions WHERE id = $1 AND user_id = $2"
                             " AND tenant_id = $3", 3, params, &st, "get session");
    if (!r) return st;
    st = PQntuples(r) == 1 ? (read_session(r, 0, out) == 0 ? STORE_OK : STORE_ERROR) : STORE_NOT_FOUND;
    PQclear(r);
    return st;
}

store_status store_pg_session_list(struct pg_store *p, const scope *sc, const char *before, size_t limit,
                                   session_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    char lim[PG_I64_MAX];
    pg_num(lim, (int64_t)clamp(limit));
    store_status st;
    PGresult *r;
    if (before && *before) {
        /* a cursor that is not one of this user's sessions is NOT_FOUND */
        const char *cp[3] = {before, sc->user_id, sc->tenant_id};
        r = pg_read(p, "SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND tenant_id = $3", 3, cp, &st,
                    "session cursor");
        if (!r) return st;
        int found = PQntuples(r) == 1;
        PQclear(r);
        if (!found) return STORE_NOT_FOUND;
    }
    const char *params[4] = {sc->user_id, sc->tenant_id, before && *before ? before : NULL, lim};
    r = pg_read(p, "SELECT " SESSION_COLS " FROM sessions WHERE user_id = $1 AND tenant_id = $2"
                   " AND ($3::text IS NULL OR ord < (SELECT ord FROM sessions WHERE id = $3))"
                   " ORDER BY ord DESC LIMIT $4", 4, params, &st, "list sessions");
    if (!r) return st;
    int rows = PQntuples(r);
    if (rows > 0) {
        session_rec *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(r); return STORE_ERROR; }
        for (int i = 0; i < rows; i++) {
            if (read_session(r, i, &arr[i]) != 0) {
                store_free_sessions(arr, (size_t)i);
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

static store_status session_owned(PGconn *c, const scope *sc, const char *session_id, bool lock)
{
    const char *p[3] = {session_id, sc->user_id, sc->tenant_id};
    store_status st;
    PGresult *r = pg_exec(c, lock ? "SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND tenant_id = $3"
                                    " FOR UPDATE"
                                  : "SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND tenant_id = $3",
                          3, p, &st, "session owned");
    if (!r) return st;
    st = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
    PQclear(r);
    return st;
}

static store_status session_delete_op(PGconn *c, void *arg)
{
    ses_args *a = arg;
    store_status st = session_owned(c, a->sc, a->session_id, true);
    if (st != STORE_OK) return st;
    static const char *const erase[] = {
        "DELETE FROM messages WHERE session_id = $1",
        "DELETE FROM runs WHERE session_id = $1",
        "DELETE FROM sessions WHERE id = $1",
    };
    const char *p[1] = {a->session_id};
    for (size_t i = 0; i < sizeof erase / sizeof erase[0]; i++)
        if ((st = pg_run(c, erase[i], 1, p, "delete session")) != STORE_OK) return st;
    return STORE_OK;
}

store_status store_pg_session_delete(store *st, const scope *sc, const char *session_id)
{
    if (!scope_valid(sc) || !session_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    ses_args a = {.sc = sc, .session_id = session_id};
    return pg_write(st, session_delete_op, &a);
}

/* ---- messages ---- */

static store_status message_query(struct pg_store *p, const scope *sc, const char *session_id, const char *sql,
                                  int64_t after_seq, size_t limit, message_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc) || !session_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    char after[PG_I64_MAX], lim[PG_I64_MAX];
    const char *params[5] = {session_id, sc->user_id, sc->tenant_id, pg_num(after, after_seq),
                             pg_num(lim, (int64_t)clamp(limit))};
    PGconn *c = pg_acquire(p);
    if (!c) return STORE_ERROR;
    /* another user's session is NOT_FOUND, not an empty page */
    store_status st = session_owned(c, sc, session_id, false);
    PGresult *r = st == STORE_OK ? pg_exec(c, sql, 5, params, &st, "list messages") : NULL;
    pg_release(p, c);
    if (!r) return st;
    int rows = PQntuples(r);
    if (rows > 0) {
        message_rec *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(r); return STORE_ERROR; }
        for (int i = 0; i < rows; i++) {
            if (read_message(r, i, &arr[i]) != 0) {
                store_free_messages(arr, (size_t)i);
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

store_status store_pg_message_list(struct pg_store *p, const scope *sc, const char *session_id,
                                   int64_t after_seq, size_t limit, message_rec **out, size_t *n)
{
    return message_query(p, sc, session_id,
                         "SELECT " MESSAGE_COLS " FROM messages WHERE session_id = $1 AND user_id = $2"
                         " AND tenant_id = $3 AND seq > $4::bigint ORDER BY seq LIMIT $5",
                         after_seq, limit, out, n);
}

store_status store_pg_message_tail(struct pg_store *p, const scope *sc, const char *session_id, size_t limit,
                                   message_rec **out, size_t *n)
{
    return message_query(p, sc, session_id,
                         "SELECT * FROM (SELECT " MESSAGE_COLS " FROM messages WHERE session_id = $1"
                         /* $4 unused by a tail, but PostgreSQL must be able to type it */
                         " AND user_id = $2 AND tenant_id = $3 AND $4::bigint = $4::bigint"
                         " ORDER BY seq DESC LIMIT $5) t ORDER BY seq",
                         0, limit, out, n);
}

/* ---- runs ---- */

static bool counters_ok(const run_rec *r)
{
    return r->input_tokens >= 0 && r->output_tokens >= 0 && r->cost_nusd >= 0 && r->steps >= 0 &&
           r->tool_calls >= 0;
}

/* The run must be this scope's and not yet final; its row is locked. */
static store_status run_open(PGconn *c, const scope *sc, const char *run_id, char session_id[ID_MAX])
{
    const char *p[3] = {run_id, sc->user_id, sc->tenant_id};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT session_id, status FROM runs WHERE id = $1 AND user_id = $2"
                             " AND tenant_id = $3 FOR UPDATE", 3, p, &st, "run lookup");
    if (!r) return st;
    if (PQntuples(r) != 1) { PQclear(r); return STORE_NOT_FOUND; }
    pg_copy(r, 0, 0, session_id, ID_MAX);
    run_status cur = (run_status)pg_i64(r, 0, 1);
    PQclear(r);
    return run_status_terminal(cur) ? STORE_CONFLICT : STORE_OK;
}

store_status pg_run_close_waits(PGconn *c, const char *run_id, int64_t now)
{
    const char *p[1] = {run_id};
    store_status st = pg_run(c, "DELETE FROM run_waits WHERE run_id = $1", 1, p, "drop run wait");
    if (st != STORE_OK) return st;
    char nowv[PG_I64_MAX];
    const char *q[2] = {pg_num(nowv, now), run_id};
    return pg_run(c, "UPDATE approvals SET status = 2, decided_by = 'run_ended', decided_at = $1"
                     " WHERE run_id = $2 AND status = 0", 2, q, "close approvals");
}

typedef struct run_args {
    const scope *sc;
    const char *session_id, *agent, *user_content;
    run_status status;
    run_rec *run;
    const run_rec *crun;
    const message_rec *msgs;
    size_t n;
    int64_t now;
    store_quota quota;
    store_quota_refusal refusal;
    const char *instance;             /* run start: this process's id (migration 19) */
} run_args;

static store_status run_start_op(PGconn *c, void *arg)
{
    run_args *a = arg;
    run_rec *r = a->run;
    const char *sp[3] = {a->session_id, a->sc->user_id, a->sc->tenant_id};
    store_status st;
    PGresult *res = pg_exec(c, "SELECT agent, message_count FROM sessions WHERE id = $1 AND user_id = $2"
                               " AND tenant_id = $3 FOR UPDATE", 3, sp, &st, "run session");
    if (!res) return st;
    if (PQntuples(res) != 1) { PQclear(res); return STORE_NOT_FOUND; }
    if (!(a->agent && a->agent[0])) pg_copy(res, 0, 0, r->agent, sizeof r->agent);
    int64_t messages = pg_i64(res, 0, 1);
    PQclear(res);
    st = store_quota_check("messages_per_session", a->quota.messages_per_session, messages, messages + 1, 1,
                           &a->refusal);
    if (st != STORE_OK) return st;
    message_rec m;
    memset(&m, 0, sizeof m);
    memcpy(m.role, "user", 5);
    m.content = (char *)a->user_content;
    m.origin_json = (char *)"{\"kind\":\"user\",\"untrusted\":false}";   /* the posted message is the user's */
    r->history_count = messages;
    st = message_append(c, a->sc, a->session_id, r->id, &m, a->now, &r->user_seq);
    if (st != STORE_OK) return st;
    char v[4][PG_I64_MAX];
    const char *p[10] = {r->id, a->session_id, a->sc->tenant_id, a->sc->user_id, r->agent,
                         pg_num(v[0], a->status), pg_num(v[1], r->user_seq), pg_num(v[2], r->created_at),
                         pg_num(v[3], r->started_at), a->instance ? a->instance : ""};
    /* owned by this instance, its heartbeat now (store_runs_heartbeat) */
    return pg_run(c, "INSERT INTO runs (id, session_id, tenant_id, user_id, agent, status, user_seq, created_at,"
                     " started_at, owner, heartbeat) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$8)", 10, p,
                  "insert run");
}

store_status store_pg_run_start(store *st, const scope *sc, const char *session_id, const char *agent,
                                const char *user_content, run_status status, run_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !session_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (status != RUN_QUEUED && status != RUN_RUNNING) return STORE_INVALID;
    if (!user_content) return STORE_INVALID;
    if (agent && agent[0]) {
        size_t n = strnlen(agent, STORE_AGENT_MAX);
        if (n >= STORE_AGENT_MAX || !utf8_valid(agent, n)) return STORE_INVALID;
        memcpy(out->agent, agent, n + 1);
    }
    ids_new(out->id, "run");
    memcpy(out->session_id, session_id, strnlen(session_id, ID_MAX - 1));
    out->status = status;
    out->created_at = time_now_unix();
    out->started_at = status == RUN_RUNNING ? out->created_at : 0;
    run_args a = {.sc = sc, .session_id = session_id, .agent = agent, .user_content = user_content,
                  .status = status, .run = out, .now = out->created_at, .instance = store_pg_of(st)->instance};
    store_quota_of(st, sc, &a.quota);
    store_status res = store_quota_record(pg_write(st, run_start_op, &a), &a.refusal);
    if (res != STORE_OK) memset(out, 0, sizeof *out);
    return res;
}

static store_status run_counters(PGconn *c, const run_rec *r)
{
    char v[5][PG_I64_MAX];
    const char *p[6] = {pg_num(v[0], r->input_tokens), pg_num(v[1], r->output_tokens), pg_num(v[2], r->cost_nusd),
                        pg_num(v[3], r->steps), pg_num(v[4], r->tool_calls), r->id};
    return pg_run(c, "UPDATE runs SET input_tokens = $1, output_tokens = $2, cost_nusd = $3, steps = $4,"
                     " tool_calls = $5 WHERE id = $6", 6, p, "run counters");
}

static store_status run_append_op(PGconn *c, void *arg)
{
    run_args *a = arg;
    char session_id[ID_MAX];
    store_status st = run_open(c, a->sc, a->crun->id, session_id);
    if (st != STORE_OK) return st;
    int64_t now = time_now_unix();
    for (size_t i = 0; i < a->n; i++)   /* any failure rolls the whole group back */
        if ((st = message_append(c, a->sc, session_id, a->crun->id, &a->msgs[i], now, NULL)) != STORE_OK)
            return st;
    return run_counters(c, a->crun);
}

store_status store_pg_run_append(store *st, const scope *sc, const run_rec *run, const message_rec *msgs,
                                 size_t n)
{
    if (!scope_valid(sc) || !run) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if ((n && !msgs) || !counters_ok(run) || !memchr(run->id, '\0', sizeof run->id)) return STORE_INVALID;
    run_args a = {.sc = sc, .crun = run, .msgs = msgs, .n = n};
    return pg_write(st, run_append_op, &a);
}

static store_status run_finish_op(PGconn *c, void *arg)
{
    run_args *a = arg;
    run_rec *r = a->run;
    char session_id[ID_MAX];
    store_status st = run_open(c, a->sc, r->id, session_id);
    if (st != STORE_OK) return st;
    int64_t final_seq = 0;
    if (a->msgs && (st = message_append(c, a->sc, session_id, r->id, a->msgs, a->now, &final_seq)) != STORE_OK)
        return st;
    char v[9][PG_I64_MAX];
    const char *p[11] = {pg_num(v[0], r->status), r->error_code, r->error_message, pg_num(v[1], r->input_tokens),
                         pg_num(v[2], r->output_tokens), pg_num(v[3], r->cost_nusd), pg_num(v[4], r->steps),
                         pg_num(v[5], r->tool_calls), pg_num(v[6], final_seq), pg_num(v[7], a->now), r->id};
    st = pg_run(c, "UPDATE runs SET status = $1, error_code = $2, error_message = $3, input_tokens = $4,"
                   " output_tokens = $5, cost_nusd = $6, steps = $7, tool_calls = $8, final_seq = $9,"
                   " finished_at = $10 WHERE id = $11", 11, p, "finish run");
    if (st != STORE_OK) return st;
    if ((st = pg_run_close_waits(c, r->id, a->now)) != STORE_OK) return st;
    r->final_seq = final_seq;
    r->finished_at = a->now;
    return STORE_OK;
}

store_status store_pg_run_finish(store *st, const scope *sc, run_rec *run, const message_rec *final)
{
    if (!scope_valid(sc) || !run) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!run_status_terminal(run->status) || !counters_ok(run) || !memchr(run->id, '\0', sizeof run->id) ||
        !memchr(run->error_code, '\0', sizeof run->error_code) ||
        !memchr(run->error_message, '\0', sizeof run->error_message) ||
        !utf8_valid(run->error_message, strlen(run->error_message)) ||
        !utf8_valid(run->error_code, strlen(run->error_code)))
        return STORE_INVALID;
    int64_t old_final = run->final_seq, old_finished = run->finished_at;
    run_args a = {.sc = sc, .run = run, .msgs = final, .now = time_now_unix()};
    store_status res = pg_write(st, run_finish_op, &a);
    if (res != STORE_OK) {
        run->final_seq = old_final;
        run->finished_at = old_finished;
    }
    return res;
}

static store_status run_status_op(PGconn *c, void *arg)
{
    run_args *a = arg;
    char session_id[ID_MAX];
    store_status st = run_open(c, a->sc, a->crun->id, session_id);
    if (st != STORE_OK) return st;
    char s[PG_I64_MAX], now[PG_I64_MAX];
    const char *p[3] = {pg_num(s, a->crun->status), pg_num(now, time_now_unix()), a->crun->id};
    return pg_run(c, "UPDATE runs SET status = $1::bigint, started_at = CASE WHEN $1::bigint = 2"
                     " AND started_at = 0 THEN $2::bigint ELSE started_at END WHERE id = $3", 3, p, "run status");
}

store_status store_pg_run_set_status(store *st, const scope *sc, const run_rec *run)
{
    if (!scope_valid(sc) || !run) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (run->status < RUN_QUEUED || run->status > RUN_WAITING_AUTH || run_status_terminal(run->status) ||
        !memchr(run->id, '\0', sizeof run->id))
        return STORE_INVALID;
    run_args a = {.sc = sc, .crun = run};
    return pg_write(st, run_status_op, &a);
}

store_status store_pg_run_get(struct pg_store *p, const scope *sc, const char *run_id, run_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !run_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    const char *params[3] = {run_id, sc->user_id, sc->tenant_id};
    store_status st;
    PGresult *r = pg_read(p, "SELECT " RUN_COLS " FROM runs WHERE id = $1 AND user_id = $2 AND tenant_id = $3",
                          3, params, &st, "get run");
    if (!r) return st;
    st = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
    if (st == STORE_OK) read_run(r, 0, out);
    PQclear(r);
    return st;
}

typedef struct recover_args {
    size_t n;
    const char *instance;
} recover_args;

/* Several instances share this database: at start, this instance's own
 * runs from before (its id is kept in its data directory), and the queued
 * or running runs whose instance stopped renewing their heartbeat (or that
 * have none: rows from before migration 19) are interrupted — never a
 * live instance's. */
static store_status recover_op(PGconn *c, void *arg)
{
    recover_args *a = arg;
    char now[PG_I64_MAX], stale[PG_I64_MAX];
    int64_t t = time_now_unix();
    const char *p[3] = {pg_num(now, t), pg_num(stale, t - STORE_RUN_LEASE_S), a->instance};
    store_status st;
    int64_t n = pg_run_count(c, "UPDATE runs SET status = 7, error_code = 'server_restart',"
                                " error_message = 'the server restarted while the run was in progress',"
                                " finished_at = $1 WHERE status IN (1, 2)"
                                " AND (owner = '' OR owner = $3 OR heartbeat < $2)",
                             3, p, &st, "recover runs");
    if (n < 0) return st;
    a->n = (size_t)n;
    return STORE_OK;
}

typedef struct heartbeat_args {
    const char *instance;
    size_t lost;
} heartbeat_args;

static store_status heartbeat_op(PGconn *c, void *arg)
{
    heartbeat_args *a = arg;
    char now[PG_I64_MAX], stale[PG_I64_MAX];
    int64_t t = time_now_unix();
    const char *p[3] = {a->instance, pg_num(now, t), pg_num(stale, t - STORE_RUN_LEASE_S)};
    store_status st;
    if (pg_run_count(c, "UPDATE runs SET heartbeat = $2 WHERE owner = $1 AND status IN (1, 2)", 2, p, &st,
                     "run heartbeat") < 0)
        return st;
    int64_t n = pg_run_count(c, "UPDATE runs SET status = 7, error_code = 'instance_lost',"
                                " error_message = 'the instance running it stopped while the run was in progress',"
                                " finished_at = $2 WHERE status IN (1, 2) AND owner <> $1 AND heartbeat < $3",
                             3, p, &st, "runs of lost instances");
    if (n < 0) return st;
    a->lost = (size_t)n;
    return STORE_OK;
}

store_status store_pg_runs_heartbeat(store *st, size_t *lost)
{
    heartbeat_args a = {.instance = store_pg_of(st)->instance};
    store_status res = pg_write(st, heartbeat_op, &a);
    if (lost) *lost = res == STORE_OK ? a.lost : 0;
    return res;
}

store_status store_pg_runs_recover(store *st, size_t *n)
{
    recover_args a = {.instance = store_pg_of(st)->instance};
    store_status res = pg_write(st, recover_op, &a);
    if (n) *n = res == STORE_OK ? a.n : 0;
    return res;
}

store_status store_pg_session_spent(struct pg_store *p, const scope *sc, const char *session_id,
                                    int64_t *cost_nusd)
{
    *cost_nusd = 0;
    if (!scope_valid(sc) || !session_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    const char *params[3] = {session_id, sc->user_id, sc->tenant_id};
    store_status st;
    PGresult *r = pg_read(p, "SELECT coalesce(sum(cost_nusd), 0) FROM runs WHERE session_id = $1"
                             " AND user_id = $2 AND tenant_id = $3", 3, params, &st, "session spent");
    if (!r) return st;
    *cost_nusd = pg_i64(r, 0, 0);
    PQclear(r);
    return STORE_OK;
}
