/* store_runs.c — runs: one agent turn on a session, and its lifecycle.
 *
 * A run's writes are shaped so that a crash at any instant leaves a
 * transcript a model can be shown again: the user message and the run row
 * are created together (store_run_start), an assistant message with tool
 * calls lands together with all its tool results (store_run_append), and
 * the final message lands together with the terminal status
 * (store_run_finish). Each is one writer operation, i.e. one savepoint in
 * one committed transaction. Runs caught in flight by a crash are marked
 * interrupted at the next start (store_runs_recover) — but not a run paused
 * for an approval or a credential: that one was stored whole, and goes on
 * after the restart (store_approvals.c).
 *
 * A run in a terminal state is final: appending to it or finishing it again
 * is STORE_CONFLICT, so a cancel racing a completion settles once. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/utf8.h"

#define STORE_RUN_COLS "id, session_id, agent, status, error_code, error_message, input_tokens," \
    " output_tokens, cost_nusd, steps, tool_calls, user_seq, final_seq, created_at, started_at, finished_at"

const char *run_status_name(run_status s)
{
    switch (s) {
    case RUN_QUEUED: return "queued";
    case RUN_RUNNING: return "running";
    case RUN_WAITING_APPROVAL: return "waiting_approval";
    case RUN_COMPLETED: return "completed";
    case RUN_FAILED: return "failed";
    case RUN_CANCELLED: return "cancelled";
    case RUN_INTERRUPTED: return "interrupted";
    case RUN_WAITING_AUTH: return "waiting_auth";
    }
    return "unknown";
}

bool run_status_terminal(run_status s)
{
    return s == RUN_COMPLETED || s == RUN_FAILED || s == RUN_CANCELLED || s == RUN_INTERRUPTED;
}

/* The SQL below names states by number (recovery, the partial index in
 * migration 2); keep the enum where that SQL expects it. */
_Static_assert(RUN_QUEUED == 1 && RUN_RUNNING == 2 && RUN_WAITING_APPROVAL == 3 &&
               RUN_INTERRUPTED == 7 && RUN_WAITING_AUTH == 8, "run_status values are stored on disk");

static bool run_status_valid(run_status s)
{
    return s >= RUN_QUEUED && s <= RUN_WAITING_AUTH;
}

static void store_read_run(sqlite3_stmt *s, run_rec *r)
{
    memset(r, 0, sizeof *r);
    store_col_copy(s, 0, r->id, sizeof r->id);
    store_col_copy(s, 1, r->session_id, sizeof r->session_id);
    store_col_copy(s, 2, r->agent, sizeof r->agent);
    r->status = (run_status)sqlite3_column_int(s, 3);
    store_col_copy(s, 4, r->error_code, sizeof r->error_code);
    store_col_copy(s, 5, r->error_message, sizeof r->error_message);
    r->input_tokens = sqlite3_column_int64(s, 6);
    r->output_tokens = sqlite3_column_int64(s, 7);
    r->cost_nusd = sqlite3_column_int64(s, 8);
    r->steps = sqlite3_column_int64(s, 9);
    r->tool_calls = sqlite3_column_int64(s, 10);
    r->user_seq = sqlite3_column_int64(s, 11);
    r->final_seq = sqlite3_column_int64(s, 12);
    r->created_at = sqlite3_column_int64(s, 13);
    r->started_at = sqlite3_column_int64(s, 14);
    r->finished_at = sqlite3_column_int64(s, 15);
}

/* The run's session and status, if the run is this scope's. */
static store_status store_run_lookup(store_conn *c, const scope *sc, const char *run_id,
                                     char session_id[ID_MAX], run_status *status)
{
    sqlite3_stmt *s = store_stmt(c, "SELECT session_id, status FROM runs WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, run_id, sc);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        store_col_copy(s, 0, session_id, ID_MAX);
        *status = (run_status)sqlite3_column_int(s, 1);
    }
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "run lookup");
}

/* Every change to a run starts here: the run must be this scope's and not
 * yet final. session_id receives the run's session. */
static store_status store_run_open(store_conn *c, const scope *sc, const char *run_id,
                                   char session_id[ID_MAX])
{
    run_status cur = RUN_QUEUED;   /* set by the lookup when it finds the run */
    store_status res = store_run_lookup(c, sc, run_id, session_id, &cur);
    if (res != STORE_OK) return res;
    return run_status_terminal(cur) ? STORE_CONFLICT : STORE_OK;
}

static bool store_counters_ok(const run_rec *r)
{
    return r->input_tokens >= 0 && r->output_tokens >= 0 && r->cost_nusd >= 0 &&
           r->steps >= 0 && r->tool_calls >= 0;
}

/* ---- start ---- */

typedef struct run_start_args {
    const scope *sc;
    const char *session_id, *agent, *user_content;
    run_status status;
    run_rec *out;
    int64_t now;
    store_quota quota;
    store_quota_refusal refusal;
} run_start_args;

static store_status store_run_start_op(store_conn *c, void *arg)
{
    run_start_args *a = arg;
    run_rec *r = a->out;
    /* the session must be the scope's: read its agent, which is also the
     * run's unless the caller names another */
    sqlite3_stmt *s = store_stmt(c, "SELECT agent, message_count FROM sessions"
                                    " WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, a->session_id, a->sc);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && !(a->agent && a->agent[0])) store_col_copy(s, 0, r->agent, sizeof r->agent);
    int64_t messages = rc == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "run session");
    /* The quota is checked here, at the user's message, and not for the
     * messages the run then writes: a run that started is never cut off
     * half-way (its length is bounded by the agent's max_steps and
     * max_tool_calls), so a session ends at most one run over the quota. */
    store_status res = store_quota_check("messages_per_session", a->quota.messages_per_session,
                                         messages, messages + 1, 1, &a->refusal);
    if (res != STORE_OK) return res;

    message_rec m;
    memset(&m, 0, sizeof m);
    memcpy(m.role, "user", 5);
    m.content = (char *)a->user_content;
    /* The posted message is the user's, whatever its text claims to be
     * (core/origin.h): nothing in the request can set its origin. */
    m.origin_json = (char *)"{\"kind\":\"user\",\"untrusted\":false}";
    r->history_count = messages;
    res = store_message_append(c, a->sc, a->session_id, r->id, &m, a->now, &r->user_seq);
    if (res != STORE_OK) return res;

    s = store_stmt(c, "INSERT INTO runs (id, session_id, tenant_id, user_id, agent, status, user_seq,"
                      " created_at, started_at) VALUES (?,?,?,?,?,?,?,?,?)");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, r->id);
    store_bind_text(s, 2, a->session_id);
    store_bind_text(s, 3, a->sc->tenant_id);
    store_bind_text(s, 4, a->sc->user_id);
    store_bind_text(s, 5, r->agent);
    sqlite3_bind_int(s, 6, (int)a->status);
    sqlite3_bind_int64(s, 7, r->user_seq);
    sqlite3_bind_int64(s, 8, r->created_at);
    sqlite3_bind_int64(s, 9, r->started_at);
    return store_step_done(c, s, "insert run");
}

store_status store_run_start(store *st, const scope *sc, const char *session_id,
                             const char *agent, const char *user_content, run_status status,
                             run_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_run_start(st, sc, session_id, agent, user_content, status, out));
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
    run_start_args a = {sc, session_id, agent, user_content, status, out, out->created_at, {0}, {0}};
    store_quota_of(st, sc, &a.quota);
    store_status res = store_quota_record(store_write(st, store_run_start_op, &a), &a.refusal);
    if (res != STORE_OK) memset(out, 0, sizeof *out);
    return res;
}

/* ---- append a step ---- */

typedef struct run_append_args {
    const scope *sc;
    const run_rec *run;
    const message_rec *msgs;
    size_t n;
} run_append_args;

static store_status store_run_counters(store_conn *c, const run_rec *r)
{
    sqlite3_stmt *s = store_stmt(c, "UPDATE runs SET input_tokens = ?, output_tokens = ?, cost_nusd = ?,"
                                    " steps = ?, tool_calls = ? WHERE id = ?");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, r->input_tokens);
    sqlite3_bind_int64(s, 2, r->output_tokens);
    sqlite3_bind_int64(s, 3, r->cost_nusd);
    sqlite3_bind_int64(s, 4, r->steps);
    sqlite3_bind_int64(s, 5, r->tool_calls);
    store_bind_text(s, 6, r->id);
    return store_step_done(c, s, "run counters");
}

static store_status store_run_append_op(store_conn *c, void *arg)
{
    run_append_args *a = arg;
    char session_id[ID_MAX];
    store_status res = store_run_open(c, a->sc, a->run->id, session_id);
    if (res != STORE_OK) return res;
    /* any failure returns before the counters move; the writer then rolls
     * back this operation's savepoint: the group lands whole or not at all */
    res = store_messages_append(c, a->sc, session_id, a->run->id, a->msgs, a->n, time_now_unix(), NULL);
    if (res != STORE_OK) return res;
    return store_run_counters(c, a->run);
}

store_status store_run_append(store *st, const scope *sc, const run_rec *run,
                              const message_rec *msgs, size_t n)
{
    STORE_PG_DISPATCH(st, store_pg_run_append(st, sc, run, msgs, n));
    if (!scope_valid(sc) || !run) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if ((n && !msgs) || !store_counters_ok(run) || !memchr(run->id, '\0', sizeof run->id)) return STORE_INVALID;
    run_append_args a = {sc, run, msgs, n};
    return store_write(st, store_run_append_op, &a);
}

/* ---- finish ---- */

typedef struct run_finish_args {
    const scope *sc;
    run_rec *run;
    const message_rec *final;
    int64_t now;
} run_finish_args;

static store_status store_run_finish_op(store_conn *c, void *arg)
{
    run_finish_args *a = arg;
    run_rec *r = a->run;
    char session_id[ID_MAX];
    store_status res = store_run_open(c, a->sc, r->id, session_id);
    if (res != STORE_OK) return res;
    int64_t final_seq = 0;
    if (a->final) {
        res = store_message_append(c, a->sc, session_id, r->id, a->final, a->now, &final_seq);
        if (res != STORE_OK) return res;
    }
    sqlite3_stmt *s = store_stmt(c,
        "UPDATE runs SET status = ?, error_code = ?, error_message = ?, input_tokens = ?,"
        " output_tokens = ?, cost_nusd = ?, steps = ?, tool_calls = ?, final_seq = ?, finished_at = ?"
        " WHERE id = ?");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int(s, 1, (int)r->status);
    store_bind_text(s, 2, r->error_code);
    store_bind_text(s, 3, r->error_message);
    sqlite3_bind_int64(s, 4, r->input_tokens);
    sqlite3_bind_int64(s, 5, r->output_tokens);
    sqlite3_bind_int64(s, 6, r->cost_nusd);
    sqlite3_bind_int64(s, 7, r->steps);
    sqlite3_bind_int64(s, 8, r->tool_calls);
    sqlite3_bind_int64(s, 9, final_seq);
    sqlite3_bind_int64(s, 10, a->now);
    store_bind_text(s, 11, r->id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "finish run");
    /* A run that ends while paused (cancelled, its wait timed out) leaves
     * no wait behind, and no approval anyone could still give. */
    res = store_run_close_waits(c, r->id, a->now);
    if (res != STORE_OK) return res;
    /* the caller's record changes only here; store_run_finish restores it
     * if the batch's commit fails after all */
    r->final_seq = final_seq;
    r->finished_at = a->now;
    return STORE_OK;
}

store_status store_run_finish(store *st, const scope *sc, run_rec *run, const message_rec *final)
{
    STORE_PG_DISPATCH(st, store_pg_run_finish(st, sc, run, final));
    if (!scope_valid(sc) || !run) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!run_status_terminal(run->status) || !store_counters_ok(run) ||
        !memchr(run->id, '\0', sizeof run->id) ||
        !memchr(run->error_code, '\0', sizeof run->error_code) ||
        !memchr(run->error_message, '\0', sizeof run->error_message) ||
        !utf8_valid(run->error_message, strlen(run->error_message)) ||
        !utf8_valid(run->error_code, strlen(run->error_code)))
        return STORE_INVALID;
    int64_t old_final = run->final_seq, old_finished = run->finished_at;
    run_finish_args a = {sc, run, final, time_now_unix()};
    store_status res = store_write(st, store_run_finish_op, &a);
    if (res != STORE_OK) {
        run->final_seq = old_final;
        run->finished_at = old_finished;
    }
    return res;
}

/* ---- written behind (SQLite): nobody waits, except for the end ----
 *
 * With one SQLite writer, every write goes through one FIFO queue and the
 * writer runs them in that order, so a run's writes land in the order they
 * were queued whether or not anyone waits for them. The run engine
 * therefore queues its start and its steps without waiting (and without a
 * thread-pool hop), and waits only for its end: once the end has
 * committed, so has everything the run queued before it.
 *
 * The start is not written when the run begins: it rides in the same op
 * as the run's first write (its first step, or its end), so a short run
 * costs one commit; or it is queued alone once the run has gone on for a
 * moment (runs/exec.c). Until then the run is only in memory. What a crash
 * may take of a run in progress is in docs/api.md ("Shutdown and
 * restart"). The PostgreSQL backend writes eagerly, as before: there the
 * engine keeps its blocking calls on the thread pool. */

typedef struct run_behind_op {
    scope        sc;
    run_rec      run;
    char        *start_content;   /* the start rides along (NULL: queued earlier) */
    message_rec *msgs;            /* a step's messages (own copies) */
    size_t       n;
    int64_t      expect_steps;    /* the run's stored steps before this write */
    bool         finish;
    bool         has_final;
    message_rec  final;
    store_run_behind_done done;
    void        *done_arg;
} run_behind_op;

bool store_runs_write_behind(const store *st)
{
    return st && !store_pg_of(st);
}

store_status store_run_check_start(store *st, const scope *sc, const char *session_id,
                                   const char *agent, const char *user_content, run_status status,
                                   run_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_run_start(st, sc, session_id, agent, user_content, status, out));
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !session_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (status != RUN_QUEUED && status != RUN_RUNNING) return STORE_INVALID;
    if (!user_content || !utf8_valid(user_content, strlen(user_content))) return STORE_INVALID;
    if (agent && agent[0]) {
        size_t n = strnlen(agent, STORE_AGENT_MAX);
        if (n >= STORE_AGENT_MAX || !utf8_valid(agent, n)) return STORE_INVALID;
        memcpy(out->agent, agent, n + 1);
    }
    /* What the start op refuses, refused now, on a reader: the session is
     * the scope's and has room for one more message. The op checks the
     * session again when it runs (one deleted meanwhile). */
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT agent, message_count FROM sessions"
                                    " WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, session_id, sc);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && !out->agent[0]) store_col_copy(s, 0, out->agent, sizeof out->agent);
    int64_t messages = rc == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;
    sqlite3_reset(s);
    store_status res = rc == SQLITE_ROW ? STORE_OK
                     : rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "run session");
    if (res == STORE_OK) {
        store_quota quota;
        store_quota_refusal refusal = {0};
        store_quota_of(st, sc, &quota);
        res = store_quota_record(store_quota_check("messages_per_session", quota.messages_per_session,
                                                   messages, messages + 1, 1, &refusal), &refusal);
    }
    if (res != STORE_OK) {
        memset(out, 0, sizeof *out);
        return res;
    }
    ids_new(out->id, "run");
    memcpy(out->session_id, session_id, strnlen(session_id, ID_MAX - 1));
    out->status = status;
    out->created_at = time_now_unix();
    out->started_at = status == RUN_RUNNING ? out->created_at : 0;
    out->history_count = messages;
    return STORE_OK;
}

/* The run's stored steps; STORE_NOT_FOUND if it is not (or not yet) there. */
static store_status store_run_stored_steps(store_conn *c, const scope *sc, const char *run_id,
                                           int64_t *steps)
{
    sqlite3_stmt *s = store_stmt(c, "SELECT steps FROM runs WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, run_id, sc);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *steps = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "run steps");
}

static store_status store_run_behind_op(store_conn *c, void *arg)
{
    run_behind_op *o = arg;
    store_status res;
    if (o->start_content) {
        /* checked on a reader before the run began (store_run_check_start):
         * no quota here, a run that started is never cut off for it */
        run_start_args a = {&o->sc, o->run.session_id, o->run.agent, o->start_content,
                            RUN_RUNNING, &o->run, o->run.created_at, {0}, {0}};
        res = store_run_start_op(c, &a);
        if (res != STORE_OK) return res;
    }
    /* Every write of the run builds on the one queued before it. If that
     * one is missing (its commit failed), this one must not land either, or
     * the transcript would have a hole; the end is still written, as a
     * failure, so the run does not stay "running" until a restart. */
    int64_t steps = 0;
    res = store_run_stored_steps(c, &o->sc, o->run.id, &steps);
    if (res != STORE_OK) return res;
    bool hole = steps != o->expect_steps;
    if (hole) {
        if (!o->finish) return STORE_CONFLICT;
        /* the messages are not written (o->n and the final stay as they
         * are: store_run_behind_free frees them by those) */
        o->run.status = RUN_FAILED;
        snprintf(o->run.error_code, sizeof o->run.error_code, "store_error");
        snprintf(o->run.error_message, sizeof o->run.error_message,
                 "a step of the run could not be recorded");
    }
    if (o->n && !hole) {
        run_append_args a = {&o->sc, &o->run, o->msgs, o->n};
        res = store_run_append_op(c, &a);
        if (res != STORE_OK) return res;
    }
    if (o->finish) {
        run_finish_args a = {&o->sc, &o->run, o->has_final && !hole ? &o->final : NULL,
                             o->run.finished_at ? o->run.finished_at : time_now_unix()};
        res = store_run_finish_op(c, &a);
        if (res != STORE_OK) return res;
    }
    return STORE_OK;
}

static void store_message_copy(message_rec *dst, const message_rec *src)
{
    *dst = *src;
    dst->content = src->content ? strdup(src->content) : NULL;
    dst->tool_calls_json = src->tool_calls_json ? strdup(src->tool_calls_json) : NULL;
    dst->origin_json = src->origin_json ? strdup(src->origin_json) : NULL;
}

static bool store_message_copied(const message_rec *dst, const message_rec *src)
{
    return (!src->content || dst->content) && (!src->tool_calls_json || dst->tool_calls_json) &&
           (!src->origin_json || dst->origin_json);
}

static void store_run_behind_free(run_behind_op *o)
{
    if (!o) return;
    free(o->start_content);
    for (size_t i = 0; o->msgs && i < o->n; i++) message_rec_free(&o->msgs[i]);
    free(o->msgs);
    if (o->has_final) message_rec_free(&o->final);
    free(o);
}

/* On the writer thread, after the commit (or its failure). */
static void store_run_behind_committed(void *arg, store_status status)
{
    run_behind_op *o = arg;
    if (status != STORE_OK && !o->finish)
        log_error("run %s: a step could not be recorded (%s); the run fails at its next step",
                  o->run.id, store_status_text(status));
    if (o->done) o->done(o->done_arg, status, &o->run);
    store_run_behind_free(o);
}

store_status store_run_write_behind(store *st, const scope *sc, const run_rec *run,
                                    const store_run_behind *w, store_run_behind_done done,
                                    void *done_arg)
{
    if (!store_runs_write_behind(st)) return STORE_INVALID;
    if (!scope_valid(sc) || !run || !w) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if ((w->n && !w->msgs) || !store_counters_ok(run) || !memchr(run->id, '\0', sizeof run->id) ||
        (w->finish && !run_status_terminal(run->status)) ||
        !memchr(run->error_message, '\0', sizeof run->error_message) ||
        !utf8_valid(run->error_message, strnlen(run->error_message, sizeof run->error_message)))
        return STORE_INVALID;
    run_behind_op *o = calloc(1, sizeof *o);
    if (!o) return STORE_ERROR;
    o->sc = *sc;
    o->run = *run;
    o->expect_steps = w->expect_steps;
    o->finish = w->finish;
    o->done = done;
    o->done_arg = done_arg;
    bool ok = true;
    if (w->start_content) ok = (o->start_content = strdup(w->start_content)) != NULL;
    if (ok && w->n) {
        ok = (o->msgs = calloc(w->n, sizeof *o->msgs)) != NULL;
        for (size_t i = 0; ok && i < w->n; i++) {
            store_message_copy(&o->msgs[i], &w->msgs[i]);
            o->n = i + 1;
            ok = store_message_copied(&o->msgs[i], &w->msgs[i]);
        }
    }
    if (ok && w->final) {
        store_message_copy(&o->final, w->final);
        o->has_final = true;
        ok = store_message_copied(&o->final, w->final);
    }
    if (!ok) {
        store_run_behind_free(o);
        return STORE_ERROR;
    }
    store_status res = store_write_async(st, store_run_behind_op, o, store_run_behind_committed, o);
    if (res != STORE_OK) store_run_behind_free(o);
    return res;
}

static store_status store_runs_noop_op(store_conn *c, void *arg)
{
    (void)c;
    (void)arg;
    return STORE_OK;
}

void store_runs_settle(store *st)
{
    if (!store_runs_write_behind(st)) return;
    /* Twice: the writer calls a batch's done callbacks after it has woken
     * that batch's waiters, so only a later batch proves they have run. */
    store_write(st, store_runs_noop_op, NULL);
    store_write(st, store_runs_noop_op, NULL);
}

/* ---- status, read ---- */

typedef struct run_status_args {
    const scope *sc;
    const run_rec *run;
} run_status_args;

static store_status store_run_set_status_op(store_conn *c, void *arg)
{
    run_status_args *a = arg;
    char session_id[ID_MAX];
    store_status res = store_run_open(c, a->sc, a->run->id, session_id);
    if (res != STORE_OK) return res;
    sqlite3_stmt *s = store_stmt(c,
        "UPDATE runs SET status = ?1,"
        " started_at = CASE WHEN ?1 = 2 AND started_at = 0 THEN ?2 ELSE started_at END"
        " WHERE id = ?3");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int(s, 1, (int)a->run->status);
    sqlite3_bind_int64(s, 2, time_now_unix());
    store_bind_text(s, 3, a->run->id);
    return store_step_done(c, s, "run status");
}

store_status store_run_set_status(store *st, const scope *sc, const run_rec *run)
{
    STORE_PG_DISPATCH(st, store_pg_run_set_status(st, sc, run));
    if (!scope_valid(sc) || !run) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    /* terminal states go through store_run_finish, which records why */
    if (!run_status_valid(run->status) || run_status_terminal(run->status) ||
        !memchr(run->id, '\0', sizeof run->id))
        return STORE_INVALID;
    run_status_args a = {sc, run};
    return store_write(st, store_run_set_status_op, &a);
}

store_status store_run_get(store *st, const scope *sc, const char *run_id, run_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_run_get(store_pg_of(st), sc, run_id, out));
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !run_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_RUN_COLS " FROM runs WHERE id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, run_id, sc);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) store_read_run(s, out);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "get run");
}

/* ---- recovery ---- */

typedef struct run_recover_args {
    size_t n;
} run_recover_args;

static store_status store_runs_recover_op(store_conn *c, void *arg)
{
    run_recover_args *a = arg;
    sqlite3_stmt *s = store_stmt(c,
        "UPDATE runs SET status = 7, error_code = 'server_restart',"
        " error_message = 'the server restarted while the run was in progress', finished_at = ?"
        /* runs_active's condition, spelled as in the index (migration 24),
         * so the planner may use it */
        " WHERE (status < 4 OR status = 8) AND status IN (1, 2)");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, time_now_unix());
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "recover runs");
    a->n = (size_t)sqlite3_changes(c->db);
    return STORE_OK;
}

store_status store_runs_recover(store *st, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_runs_recover(st, n));
    run_recover_args a = {0};
    store_status res = store_write(st, store_runs_recover_op, &a);
    if (n) *n = res == STORE_OK ? a.n : 0;
    return res;
}

store_status store_runs_heartbeat(store *st, size_t *lost)
{
    STORE_PG_DISPATCH(st, store_pg_runs_heartbeat(st, lost));
    if (lost) *lost = 0;
    return STORE_OK;   /* one SQLite server: its start interrupted every run left */
}

/* ---- a session's spend (the agent's per-session cost cap) ---- */

store_status store_session_spent(store *st, const scope *sc, const char *session_id,
                                 int64_t *cost_nusd)
{
    STORE_PG_DISPATCH(st, store_pg_session_spent(store_pg_of(st), sc, session_id, cost_nusd));
    *cost_nusd = 0;
    if (!scope_valid(sc) || !session_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    /* runs_session covers session_id; the owner columns keep it scoped */
    sqlite3_stmt *s = store_stmt(c, "SELECT coalesce(sum(cost_nusd), 0) FROM runs"
                                    " WHERE session_id = ? AND user_id = ? AND tenant_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_owned(s, 1, session_id, sc);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *cost_nusd = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : store_sqlite_status(c, rc, "session spent");
}
