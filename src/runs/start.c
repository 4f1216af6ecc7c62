/* start.c — from a posted message to a running run: read the session and
 * its agent, claim the session (or wait in its queue, or interrupt its
 * run, as if_busy says), count the run against the user's concurrent
 * runs, persist the message and the run in one transaction with the
 * history the model will see, then hand over to exec.c. Every way this
 * can fail is told to the subscriber as a runs_error. Also the cancel
 * request, which waits for the run's end and reads it back.
 *
 * The store work runs on the thread pool, one job at a time per start;
 * everything else on the loop of the caller. */
#include "runs/runs_internal.h"

#include "core/origin.h"
#include "guard/engine.h"
#include "guard/guard_record.h"
#include "obs/audit.h"
#include "util/strfmt.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---------------------------------------------------------------- jobs */

static void runs_job_work(uv_work_t *w)
{
    runs_job *j = w->data;
    j->fn(j->arg);
}

static void runs_job_after(uv_work_t *w, int status)
{
    (void)status;   /* never cancelled */
    runs_job *j = w->data;
    j->done(j->arg);
}

static void runs_job_queue(uv_loop_t *loop, runs_job *j, void (*fn)(void *), void (*done)(void *),
                           void *arg)
{
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    j->work.data = j;
    if (uv_queue_work(loop, &j->work, runs_job_work, runs_job_after) != 0) {
        fn(arg);      /* the pool refused (cannot happen with a live loop): inline */
        done(arg);
    }
}

/* ---------------------------------------------------------------- answering a start */

static void run_start_free(run_start *s)
{
    if (!s) return;
    if (s->counted) gate_run_end(s->t->r->gate, s->sc.tenant_id, s->sc.user_id, &s->slot);
    free(s->content);
    cJSON_Delete(s->history);
    history_entry_free(s->hist);      /* a start that failed after taking it */
    tools_run_set_free(&s->set);
    free(s);
}

/* Take one of the user's concurrent runs (max_concurrent_runs); false with
 * s->refusal filled if none is free. On the thread pool only: with Redis
 * governance it is a blocking round trip (gate_run_begin). */
static bool run_start_count(run_start *s)
{
    runs *r = s->t->r;
    if (!r->gate || s->counted) return true;
    runs_who w;
    runs_gate_who(r, &s->sc, &w);
    if (!gate_run_begin(r->gate, &w.who, &s->slot, &s->refusal)) {
        s->refused = true;
        return false;
    }
    s->counted = true;
    return true;
}

/* Tell the subscriber the message did not run, and forget the start. */
static void run_start_fail(run_start *s, runs_error_kind kind, const char *code,
                           const char *message, uint32_t retry_after_s)
{
    runs_error e = {.kind = kind, .code = code, .message = message, .retry_after_s = retry_after_s};
    if (kind == RUNS_ERR_GOVERNED) e.refusal = &s->refusal;
    runs_outcome o = {.error = &e};
    runs_subscriber *sub = s->sub;
    s->sub = NULL;
    sub->on_end(sub, &o);
    run_start_free(s);
}

/* A governance refusal: the limit it names, and when to retry. */
static void run_start_fail_refused(run_start *s)
{
    run_start_fail(s, RUNS_ERR_GOVERNED, s->refusal.code, s->refusal.message,
                   s->refusal.retry_after_s);
}

/* A stored message as the model sees it (OpenAI chat form). */
cJSON *runs_model_message(const message_rec *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "role", m->role);
    if (m->content) cJSON_AddStringToObject(o, "content", m->content);
    else cJSON_AddNullToObject(o, "content");
    if (m->tool_calls_json) {
        cJSON *tc = cJSON_Parse(m->tool_calls_json);
        if (tc) cJSON_AddItemToObject(o, "tool_calls", tc);
    }
    if (m->tool_call_id[0]) cJSON_AddStringToObject(o, "tool_call_id", m->tool_call_id);
    /* its provenance (core/origin.h): as recorded, or, for a row older than
     * provenance (or one that does not parse), inferred from its role */
    cJSON *origin = m->origin_json ? cJSON_Parse(m->origin_json) : NULL;
    if (!cJSON_IsObject(origin)) {
        cJSON_Delete(origin);
        origin = origin_inferred(m->role);
    }
    origin_set(o, origin);
    return o;
}

/* Thread pool, in the start's read snapshot: the history the run starts
 * with. From the cache when it holds the session as the store counts it
 * (history_cache.h), else read from the store and kept for the next run;
 * without a cache (or out of memory for it), read as it always was. The
 * user's message, stored already on PostgreSQL (user_seq), is the run's,
 * not its history: the store's newest RUNS_HISTORY_MAX minus it. */
static void run_start_history(run_start *s, uint64_t epoch)
{
    runs *r = s->t->r;
    size_t limit = RUNS_HISTORY_MAX - (s->run.user_seq ? 1 : 0);
    if (history_cache_enabled(r->history)) {
        s->hist = history_cache_take(r->history, &s->sc, s->session_id, s->run.history_count, epoch);
        obs_counter_add(obs_series_of(obs_m_history_cache(), OBS_L(s->hist ? "hit" : "miss")), 1);
        if (!s->hist) {
            message_rec *msgs = NULL;
            size_t n = 0;
            if (store_message_tail(r->st, &s->sc, s->session_id, RUNS_HISTORY_MAX, &msgs, &n) == STORE_OK) {
                s->hist = history_entry_from_rows(&s->sc, s->session_id, msgs, n, s->run.user_seq,
                                                  s->run.history_count, RUNS_HISTORY_MAX, epoch);
                store_free_messages(msgs, n);
            }
        }
        if (s->hist) {
            s->history = history_entry_view(s->hist, limit);
            if (s->history) return;
            history_entry_free(s->hist);
            s->hist = NULL;
        }
    }
    s->history = runs_load_history(r->st, &s->sc, s->session_id, s->run.user_seq);
}

/* Thread pool: the user's message and the run, in one transaction; then
 * the history the model will see (complete turns, oldest first). */
static void run_start_persist_work(void *arg)
{
    run_start *s = arg;
    store *st = s->t->r->st;
    /* The request was authenticated when it arrived; a queued message may
     * have waited since. Checked after the session was claimed, so a
     * revocation either is seen here or finds the claim and stops the run
     * when it starts (runs_registry_revoke). */
    if (s->t->r->identity) {
        auth_status a = identity_scope_check(s->t->r->identity, &s->sc, s->lost_why,
                                             sizeof s->lost_why);
        if (a != AUTH_OK) {
            s->lost_code = a == AUTH_REVOKED ? "revoked_credential"
                         : a == AUTH_DISABLED ? "user_disabled" : "invalid_api_key";
            return;
        }
    }
    /* A store that writes behind (SQLite) only checks here: the start is
     * written with the run's first write (exec.c). PostgreSQL writes it. */
    s->start_unwritten = store_runs_write_behind(st);
    /* before the store is read: a deletion after this keeps the entry this
     * start takes or makes out of the cache (history_cache.h) */
    uint64_t epoch = history_cache_epoch(s->t->r->history);
    /* The check and the history in one read snapshot, taken now that the
     * session is ours: it holds every end of the runs before (each is
     * committed before its run lets the session go). */
    store_read_begin(st);
    s->st = s->start_unwritten
          ? store_run_check_start(st, &s->sc, s->session_id, s->agent->name, s->content, RUN_RUNNING, &s->run)
          : store_run_start(st, &s->sc, s->session_id, s->agent->name, s->content, RUN_RUNNING, &s->run);
    if (s->st == STORE_QUOTA || s->st == STORE_TOO_LARGE)   /* this thread's: copy it now */
        store_quota_describe(store_quota_refused(), s->sc.tier, s->quota_why, sizeof s->quota_why);
    /* the new message is the START event's, not the history's (written
     * behind, it is not stored yet: user_seq is 0, nothing skipped) */
    if (s->st == STORE_OK) run_start_history(s, epoch);
    store_read_end(st);
}

cJSON *runs_load_history(store *st, const scope *sc, const char *session_id, int64_t skip_seq)
{
    message_rec *msgs = NULL;
    size_t n = 0;
    cJSON *history = cJSON_CreateArray();
    if (store_message_tail(st, sc, session_id, RUNS_HISTORY_MAX, &msgs, &n) == STORE_OK) {
        size_t first = 0;
        /* Never start the history on a tool result whose call was cut off. */
        while (first < n && strcmp(msgs[first].role, "tool") == 0) first++;
        for (size_t i = first; i < n; i++) {
            if (msgs[i].seq == skip_seq) continue;
            cJSON_AddItemToArray(history, runs_model_message(&msgs[i]));
        }
        store_free_messages(msgs, n);
    }
    return history;
}

static void run_start_persist_done(void *arg)
{
    run_start *s = arg;
    if (s->lost_code) {
        runs_registry_release(s->t->r, s->session_id, NULL);
        char msg[200];
        snprintf(msg, sizeof msg, "%s; the message was not run", s->lost_why);
        run_start_fail(s, RUNS_ERR_CREDENTIAL_LOST, s->lost_code, msg, 0);
        return;
    }
    if (s->st != STORE_OK) {
        runs_registry_release(s->t->r, s->session_id, NULL);
        if (s->st == STORE_NOT_FOUND)
            run_start_fail(s, RUNS_ERR_NOT_FOUND, "not_found", "session not found", 0);
        else if (s->st == STORE_CONFLICT)
            /* several instances on one PostgreSQL: the session has an
             * active run on another instance (the store's one-active-run-
             * per-session index, migration 19) */
            run_start_fail(s, RUNS_ERR_BUSY, "session_busy",
                           "the session has a run in progress on another instance of this deployment; "
                           "wait for it to end (GET /v1/sessions/{id}) and send again", 0);
        else if (s->st == STORE_QUOTA || s->st == STORE_TOO_LARGE) {
            char msg[400];
            snprintf(msg, sizeof msg, "storage quota reached: %s; start a new session, or ask a "
                     "tenant admin for a tier with more", s->quota_why);
            /* a full storage quota does not empty itself: no point retrying */
            run_start_fail(s, RUNS_ERR_STORAGE_QUOTA, "storage_quota_exceeded", msg, 0);
        } else
            run_start_fail(s, RUNS_ERR_STORE, "store_error",
                           "the run could not be recorded; nothing was started", 0);
        return;
    }
    run_exec_begin(s);
    run_start_free(s);
}

/* Thread pool: a queued message's turn came (the session is ours): count
 * the run, then write it, in one job — the count may wait on Redis, which
 * a loop thread must not. */
static void run_start_count_persist_work(void *arg)
{
    run_start *s = arg;
    if (!run_start_count(s)) {
        runs_registry_release(s->t->r, s->session_id, NULL);
        return;
    }
    run_start_persist_work(s);
}

static void run_start_count_persist_done(void *arg)
{
    run_start *s = arg;
    if (s->refused) {
        run_start_fail_refused(s);
        return;
    }
    run_start_persist_done(s);
}

static void run_start_count_persist(run_start *s)
{
    runs_job_queue(s->t->loop, &s->job, run_start_count_persist_work, run_start_count_persist_done, s);
}

/* Our turn on a session that was busy (posted through the mailbox). The
 * claim was made on the thread pool, so this can arrive before the load
 * job's completion has run on this loop: then that completion continues. */
static void run_start_resume(void *arg)
{
    run_start *s = arg;
    if (!s->loaded) {
        s->resume_pending = true;
        return;
    }
    if (s->t->closing) {
        runs_registry_release(s->t->r, s->session_id, NULL);
        run_start_fail(s, RUNS_ERR_SHUTDOWN, "server_shutdown", "the server is shutting down", 1);
        return;
    }
    run_start_count_persist(s);
}

static void run_start_load_reads(run_start *s);
static void run_start_guard_input(run_start *s);

/* Thread pool: the session must be the caller's, its agent still
 * there for the caller's tenant (its own, or the catalogue's it has) and
 * allowed for the caller's tier. The agent and its tools are resolved
 * here, once, into the run's own snapshot (tool_tenant.h). */
static void run_start_load_work(void *arg)
{
    run_start *s = arg;
    /* Not in one read snapshot: resolving the agent's tools may connect
     * to an MCP server and refresh a user's OAuth token — a write it then
     * reads back, which a snapshot taken before it would not show (the
     * expired token went out again, and the snapshot kept the WAL from
     * being emptied after the old token's erasure). The check and the
     * history, after the claim, do share one (run_start_persist_work). */
    run_start_load_reads(s);
    if (s->error[0] || s->st != STORE_OK) return;
    run_start_guard_input(s);
    if (s->guard_blocked) return;
    /* Claim the session here, on the pool (the registry is thread-safe), so
     * an idle session's run is written in this same job: one thread-pool
     * round trip less per run. */
    s->claim = runs_registry_claim(s->t->r, s->t, &s->sc, s->session_id, s->if_busy,
                                   run_start_resume, s, s->busy, &s->full);
    if (s->claim == 0) {
        /* A run that would exceed the user's concurrent runs gives the
         * session back before anything is written. */
        if (!run_start_count(s)) {
            runs_registry_release(s->t->r, s->session_id, NULL);
            return;
        }
        s->persisted_in_load = true;
        run_start_persist_work(s);
    }
}

static void run_start_load_reads(run_start *s)
{
    session_rec sess;
    s->st = store_session_get(s->t->r->st, &s->sc, s->session_id, &sess);
    if (s->st != STORE_OK) return;
    char why[sizeof s->error];
    tools_tenant_status ts = tools_run_set_resolve(s->t->r->st, &s->sc, s->t->r->cfg, s->t->r->tools,
                                                   sess.agent, &s->set, why, sizeof why);
    s->agent = s->set.agent;
    if (ts == TOOLS_TENANT_ERROR)
        s->st = STORE_ERROR;
    else if (ts == TOOLS_TENANT_UNUSABLE)
        str_copy(s->error, sizeof s->error, why);
    else if (!s->agent)
        snprintf(s->error, sizeof s->error,
                 "this session's agent \"%s\" is no longer available to your tenant", sess.agent);
    else if (!config_agent_allows_tier(s->agent, s->sc.tier))
        snprintf(s->error, sizeof s->error, "your tier may not use agent \"%s\"", sess.agent);
    session_rec_free(&sess);
    if (s->error[0] || s->st != STORE_OK) return;
    if (s->agent->max_cost_usd_per_session > 0)
        store_session_spent(s->t->r->st, &s->sc, s->session_id, &s->session_spent_nusd);
}

/* An agent that blocks flagged input refuses the message before anything
 * is written (the detectors are read-only: safe here). Outside the read
 * snapshot: a remote classifier may take a while. */
static void run_start_guard_input(run_start *s)
{
    if (s->agent->guard.user_input == GUARD_INPUT_BLOCK && guard_engine_active() && s->content) {
        guard_finding f;
        /* on the pool: the remote classifier, if any, may be asked too */
        guard_engine_scan_blocking(s->content, strlen(s->content), GUARD_CHANNEL_USER, &f);
        if (f.flagged) {
            s->guard_blocked = true;
            size_t o = (size_t)snprintf(s->error, sizeof s->error, "the message was blocked: the %s "
                                        "detector flagged it as a likely prompt injection (",
                                        f.detector);
            for (size_t i = 0; i < f.det.n_labels && o + 2 < sizeof s->error; i++)
                o += (size_t)snprintf(s->error + o, sizeof s->error - o, "%s%s", i ? ", " : "",
                                      f.det.labels[i]);
            if (o + 2 < sizeof s->error) snprintf(s->error + o, sizeof s->error - o, ")");
            /* a block is audited (on the pool: obs_audit waits for the commit) */
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "session_id", s->session_id);
            cJSON_AddStringToObject(d, "detector", f.detector);
            cJSON *labels = cJSON_AddArrayToObject(d, "labels");
            for (size_t i = 0; i < f.det.n_labels; i++)
                cJSON_AddItemToArray(labels, cJSON_CreateString(f.det.labels[i]));
            obs_audit(s->t->r->st, &s->sc, "guard.blocked", s->agent->name, d);   /* takes d */
            guard_record_finding(&s->sc, s->session_id, NULL, &f, "user", NULL, "block", true);
        }
    }
}

static void run_start_load_done(void *arg)
{
    run_start *s = arg;
    s->loaded = true;
    if (s->refused) {
        run_start_fail_refused(s);
        return;
    }
    if (s->persisted_in_load) {
        run_start_persist_done(s);   /* claimed and written by the same job */
        return;
    }
    if (s->st == STORE_NOT_FOUND) {
        run_start_fail(s, RUNS_ERR_NOT_FOUND, "not_found", "session not found", 0);
        return;
    }
    if (s->st != STORE_OK) {
        run_start_fail(s, RUNS_ERR_STORE, "store_error", "the session could not be read", 0);
        return;
    }
    if (s->guard_blocked) {
        run_start_fail(s, RUNS_ERR_GUARD_BLOCKED, "guard_blocked", s->error, 0);
        return;
    }
    if (s->error[0]) {
        run_start_fail(s, s->agent ? RUNS_ERR_AGENT_NOT_ALLOWED : RUNS_ERR_AGENT_UNAVAILABLE,
                       s->agent ? "agent_not_allowed" : "agent_unavailable", s->error, 0);
        return;
    }
    if (s->claim < 0) {
        char msg[200];
        if (s->full) {
            snprintf(msg, sizeof msg, "session busy and %d messages already wait for it",
                     RUNS_QUEUE_MAX);
            run_start_fail(s, RUNS_ERR_QUEUE_FULL, "session_queue_full", msg, 1);
        } else {
            snprintf(msg, sizeof msg,
                     "session busy: run %s is in progress (send if_busy \"enqueue\" or "
                     "\"interrupt\" to wait for it or stop it)", s->busy[0] ? s->busy : "(starting)");
            run_start_fail(s, RUNS_ERR_BUSY, "session_busy", msg, 0);
        }
    } else if (s->resume_pending) {
        /* our turn came while this job finished */
        run_start_count_persist(s);
    }
    /* else queued: run_start_resume continues when the session frees. */
}

void runs_post_message(runs_thread *t, runs_subscriber *sub, const scope *sc,
                       const char *session_id, const char *content, runs_if_busy if_busy,
                       const obs_trace_ctx *trace)
{
    run_start *s = xcalloc(1, sizeof *s);
    if (trace) {
        s->trace = *trace;
        s->has_trace = true;
    }
    s->t = t;
    s->sub = sub;
    sub->run = NULL;
    s->sc = *sc;
    str_copy(s->session_id, sizeof s->session_id, session_id);
    s->content = xstrdup(content);
    s->if_busy = if_busy;
    /* A subscriber that leaves while its message waits changes nothing:
     * the message still runs when its turn comes (the API's rule). */
    if (t->closing) {
        run_start_fail(s, RUNS_ERR_SHUTDOWN, "server_shutdown", "the server is shutting down", 1);
        return;
    }
    runs_job_queue(t->loop, &s->job, run_start_load_work, run_start_load_done, s);
}

/* ---------------------------------------------------------------- cancel */

/* A run another instance runs (several instances on one PostgreSQL): the
 * cancel is marked in the store for its owner (store_run_request_cancel),
 * and the store is read every RUN_CANCEL_REMOTE_POLL_MS until the run has
 * ended, at most RUN_CANCEL_REMOTE_WAIT_MS — the owner looks for marks
 * four times a second, so it is usually a quarter of a second. An owner
 * that does not act by then is answered with the run as stored. */
#define RUN_CANCEL_REMOTE_POLL_MS 100
#define RUN_CANCEL_REMOTE_WAIT_MS 10000

typedef struct run_cancel_req {
    runs_thread     *t;
    runs_subscriber *sub;
    runs_job         job;
    scope            sc;
    char             run_id[ID_MAX];
    store_status     st;
    run_rec          run;
    bool             asked;            /* the store was asked (remote or not) */
    bool             remote;           /* another instance was asked to stop it */
    int              polls;
    uv_timer_t      *timer;
} run_cancel_req;

static void run_cancel_read_work(void *arg)
{
    run_cancel_req *c = arg;
    c->st = store_run_get(c->t->r->st, &c->sc, c->run_id, &c->run);
    if (c->st == STORE_OK && !c->asked && (c->run.status == RUN_QUEUED || c->run.status == RUN_RUNNING)) {
        c->asked = true;
        bool requested = false;
        if (store_run_request_cancel(c->t->r->st, &c->sc, c->run_id, &requested) == STORE_OK && requested)
            c->remote = true;
    }
}

static void run_cancel_timer_closed(uv_handle_t *h) { free(h); }

static void run_cancel_read_done(void *arg);

static void run_cancel_poll(uv_timer_t *tm)
{
    run_cancel_req *c = tm->data;
    runs_job_queue(c->t->loop, &c->job, run_cancel_read_work, run_cancel_read_done, c);
}

static void run_cancel_read_done(void *arg)
{
    run_cancel_req *c = arg;
    if (c->remote && c->st == STORE_OK && !run_status_terminal(c->run.status) &&
        c->polls < RUN_CANCEL_REMOTE_WAIT_MS / RUN_CANCEL_REMOTE_POLL_MS) {
        if (!c->timer && (c->timer = calloc(1, sizeof *c->timer))) {
            uv_timer_init(c->t->loop, c->timer);
            c->timer->data = c;
        }
        if (c->timer) {
            c->polls++;
            uv_timer_start(c->timer, run_cancel_poll, RUN_CANCEL_REMOTE_POLL_MS, 0);
            return;
        }
    }
    if (c->timer) uv_close((uv_handle_t *)c->timer, run_cancel_timer_closed);
    runs_error e = {.kind = RUNS_ERR_NOT_FOUND, .code = "not_found", .message = "run not found"};
    if (c->st != STORE_OK && c->st != STORE_NOT_FOUND)
        e = (runs_error){.kind = RUNS_ERR_STORE, .code = "store_error",
                         .message = "the run could not be read"};
    runs_outcome o = {.error = c->st == STORE_OK ? NULL : &e, .run = c->st == STORE_OK ? &c->run : NULL};
    c->sub->on_end(c->sub, &o);
    free(c);
}

/* The run has ended (posted by the registry): answer with its stored state. */
static void run_cancel_answer(void *arg)
{
    run_cancel_req *c = arg;
    c->asked = true;   /* it ran here: nobody else to ask */
    runs_job_queue(c->t->loop, &c->job, run_cancel_read_work, run_cancel_read_done, c);
}

/* Not active here: read it, and ask its instance if another runs it. */
static void run_cancel_read(run_cancel_req *c)
{
    runs_job_queue(c->t->loop, &c->job, run_cancel_read_work, run_cancel_read_done, c);
}

void runs_cancel(runs_thread *t, runs_subscriber *sub, const scope *sc, const char *run_id)
{
    run_cancel_req *c = xcalloc(1, sizeof *c);
    c->t = t;
    c->sub = sub;
    sub->run = NULL;
    c->sc = *sc;
    str_copy(c->run_id, sizeof c->run_id, run_id);
    if (!runs_registry_cancel(t->r, t, sc, run_id, run_cancel_answer, c))
        run_cancel_read(c);   /* not active here: read it now */
}
