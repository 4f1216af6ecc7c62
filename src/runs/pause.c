/* pause.c — a run paused for a person (waiting_approval) or for the user's
 * own credential (waiting_auth), and how it goes on.
 *
 * Pausing: the run's state is written whole (store_run_pause: its status
 * and counters, the assistant message whose tool calls wait, one approval
 * per call that needs a person) before anyone hears of the pause; then the
 * run leaves memory (run_exec_release: no core state, no timer, no
 * concurrent-run slot) and only its session slot stays in the registry,
 * marked paused — so the session stays busy, GET /v1/runs/{id} shows the
 * waiting status, cancel and revocation still find it. A streaming client
 * stays attached to the slot; a non-streamed message is answered at once
 * with the run in its waiting status.
 *
 * Going on is one path, whether the server restarted in between or not:
 * the paused run is rebuilt from the store (its wait taken, its history
 * and the pending assistant message read, its approvals' decisions) and a
 * new core state gets the RESUME event (core/step.h), which re-emits the
 * pending calls; toolrun.c then runs the approved ones and reports the
 * denied ones as denied. A run that is stopped while paused (cancel, an
 * interrupting message, a revoked credential, waiting_auth timing out) is
 * ended straight from the store, without a core.
 *
 * Who wakes a paused run: the last decision of its approvals (api, through
 * runs_approvals_decided), a connection becoming active
 * (runs_on_connection_active), and the sweeper — a one-second timer on the
 * first loop that denies approvals past their deadline and fails
 * waiting_auth runs past theirs, looking at the registry in memory and
 * touching the store only when a deadline is due (each denial by deadline
 * is audited as approval.timeout, by "system"). After a restart,
 * runs_restore_paused puts the paused runs back into the registry; the
 * deadlines that passed meanwhile are due at the first sweep. */
#include "runs/runs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/approval_when.h"
#include "obs/audit.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define RUNS_SWEEP_MS 1000

/* A streaming client of a paused run: how it finds its slot if it leaves. */
typedef struct pause_ref {
    runs         *r;
    session_slot *slot;               /* NULL once the run took the client back (under r->lock) */
} pause_ref;

/* ---------------------------------------------------------------- pausing */

typedef struct run_pause_job {
    run_wait_rec  wait;
    approval_rec *approvals;
    size_t        n;
    cJSON        *asks;               /* {id, tool, arguments, reason}, for the events */
    char          auth_tool[72];
    char          auth_call_id[STORE_CALL_ID_MAX];
} run_pause_job;

static void run_pause_job_free(run_pause_job *j)
{
    if (!j) return;
    free(j->wait.pending);
    free(j->wait.connect_url);
    free(j->approvals);
    cJSON_Delete(j->asks);
    free(j);
}

static void run_pause_work(run_exec *x)
{
    run_pause_job *j = x->pause_job;
    x->work_status = store_run_pause(x->r->st, &x->sc, &x->rec, &j->wait, j->approvals, j->n);
}

/* The pause is written: tell the client, hand the run's place to the
 * registry, leave memory. */
static void run_pause_done(run_exec *x)
{
    run_pause_job *j = x->pause_job;
    x->pause_job = NULL;
    if (run_exec_job_superseded(x)) {   /* stopped meanwhile: it ends from here */
        run_pause_job_free(j);
        return;
    }
    if (x->work_status == STORE_QUOTA) {
        run_pause_job_free(j);
        char msg[200];
        snprintf(msg, sizeof msg, "too many approvals are pending (at most %d per user and %d "
                 "per tenant); decide some first", STORE_APPROVALS_PENDING_PER_USER,
                 STORE_APPROVALS_PENDING_PER_TENANT);
        run_exec_fail(x, "approvals_limit", msg);
        return;
    }
    if (x->work_status != STORE_OK) {
        run_pause_job_free(j);
        run_exec_fail(x, "store_error", "the pause could not be recorded");
        return;
    }
    x->rec.status = j->wait.kind;
    if (j->wait.kind == RUN_WAITING_APPROVAL) {
        const cJSON *a;
        cJSON_ArrayForEach(a, j->asks) run_event(x, "approval.required", cJSON_Duplicate(a, true));
    } else {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "id", j->auth_call_id);
        cJSON_AddStringToObject(d, "tool", j->auth_tool);
        cJSON_AddStringToObject(d, "provider", j->wait.provider);
        if (j->wait.connect_url) cJSON_AddStringToObject(d, "connect_url", j->wait.connect_url);
        else cJSON_AddNullToObject(d, "connect_url");
        run_event(x, "auth.required", d);
    }

    runs *r = x->r;
    runs_subscriber *keep = x->sub && x->sub_started && x->sub->on_event ? x->sub : NULL;
    pthread_mutex_lock(&r->lock);
    session_slot *s = strmap_get(r->active, x->rec.id);
    if (s) {
        s->paused = true;
        s->run = NULL;
        s->pause_sc = x->sc;
        s->pause_kind = j->wait.kind;
        s->live_status = j->wait.kind;
        snprintf(s->pause_provider, sizeof s->pause_provider, "%s", j->wait.provider);
        s->pause_deadline = j->wait.deadline;
        bool wake = s->wake_pending;
        s->wake_pending = false;
        if (keep) {
            /* The stream stays open while the server lives; the run picks it
             * up again when it goes on. */
            pause_ref *ref = xcalloc(1, sizeof *ref);
            ref->r = r;
            ref->slot = s;
            keep->paused = ref;
            keep->run = NULL;
            s->pause_sub = keep;
            x->sub = NULL;
        }
        if (wake) runs_paused_wake_locked(r, s, 0, NULL, NULL);
    }
    pthread_mutex_unlock(&r->lock);
    run_pause_job_free(j);
    if (x->sub) {
        /* A message posted without a stream is answered now, with the run
         * in its waiting status; its result is read later. */
        runs_outcome o = {.run = &x->rec};
        run_event_end(x, &o);
    }
    run_exec_release(x);
}

void run_pause(run_exec *x, run_status kind, cJSON *asks, const char *provider,
               const char *connect_url, const char *auth_tool, const char *auth_call_id,
               uint32_t auth_timeout_s)
{
    run_pause_job *j = xcalloc(1, sizeof *j);
    j->asks = asks;
    j->wait.kind = kind;
    j->wait.pending = cJSON_PrintUnformatted(x->assistant_msg);
    int64_t now = time_now_unix();
    if (kind == RUN_WAITING_AUTH) {
        snprintf(j->wait.provider, sizeof j->wait.provider, "%s", provider ? provider : "");
        if (connect_url) j->wait.connect_url = xstrdup(connect_url);
        snprintf(j->auth_tool, sizeof j->auth_tool, "%s", auth_tool ? auth_tool : "");
        snprintf(j->auth_call_id, sizeof j->auth_call_id, "%s", auth_call_id ? auth_call_id : "");
        j->wait.deadline = now + (auth_timeout_s ? auth_timeout_s : 600);
    } else {
        j->n = (size_t)cJSON_GetArraySize(asks);
        j->approvals = xcalloc(j->n ? j->n : 1, sizeof *j->approvals);
        size_t i = 0;
        const cJSON *a;
        cJSON_ArrayForEach(a, asks) {
            approval_rec *ap = &j->approvals[i++];
            const char *tool = cJSON_GetObjectItemCaseSensitive(a, "tool")->valuestring;
            snprintf(ap->call_id, sizeof ap->call_id, "%s",
                     cJSON_GetObjectItemCaseSensitive(a, "id")->valuestring);
            snprintf(ap->tool, sizeof ap->tool, "%s", tool);
            ap->arguments = cJSON_GetObjectItemCaseSensitive(a, "arguments")->valuestring;
            snprintf(ap->reason, sizeof ap->reason, "%s",
                     cJSON_GetObjectItemCaseSensitive(a, "reason")->valuestring);
            ap->approval_by = (int)x->agent->approval_by;
            /* the run's own tools: a tenant's tool or an MCP server's is
             * not in the server's registry */
            const tool_def *def = tools_find(x->set.tools, tool);
            const tool_cfg *policy = def ? tools_approval_policy(def) : NULL;
            uint32_t timeout = policy ? policy->approval_timeout_s : 3600;
            ap->deadline = now + timeout;
            if (!j->wait.deadline || ap->deadline < j->wait.deadline) j->wait.deadline = ap->deadline;
        }
    }
    if (!j->wait.pending) {
        run_pause_job_free(j);
        run_exec_fail(x, "internal_error", "out of memory");
        return;
    }
    x->pause_job = j;
    x->rec.status = kind;              /* what store_run_pause writes */
    run_exec_flush_writes(x);   /* written behind: the run and its steps are queued before its pause */
    run_exec_job(x, run_pause_work, run_pause_done);
}

/* ---------------------------------------------------------------- going on */

typedef struct run_resume {
    uv_work_t        work;
    runs            *r;
    runs_thread     *t;
    scope            sc;
    char             run_id[ID_MAX], session_id[ID_MAX];
    runs_subscriber *sub;
    /* a stop instead of going on: the status, code (a literal) and words */
    run_status       stop_status;
    const char      *stop_code;
    char             stop_message[256];
    /* read on the pool */
    bool             not_ready;       /* approvals still pending: stay paused */
    bool             lost;            /* the store failed, or the run is gone */
    run_rec          rec;
    tools_run_set    set;             /* its tenant's agent and tools, resolved again */
    cJSON           *history, *pending, *decisions;
    char             lost_why[128];
    bool             counted;         /* holds one of its user's concurrent runs (slot) */
    govern_slot      slot;
} run_resume;

static void run_resume_free(run_resume *m)
{
    if (m->counted) gate_run_end(m->r->gate, m->sc.tenant_id, m->sc.user_id, &m->slot);
    cJSON_Delete(m->history);
    cJSON_Delete(m->pending);
    cJSON_Delete(m->decisions);
    tools_run_set_free(&m->set);
    free(m);
}

/* The decisions of the pending message's calls, as toolrun.c reads them:
 * {call id: {approved, note, by}}. */
static cJSON *run_resume_decisions(const approval_rec *a, size_t n, const cJSON *pending)
{
    cJSON *d = cJSON_CreateObject();
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(pending, "tool_calls");
    for (size_t i = 0; i < n; i++) {
        if (a[i].status == APPROVAL_PENDING ||
            !approval_fits_call(a[i].call_id, a[i].tool, a[i].arguments, calls))
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "approved", a[i].status == APPROVAL_APPROVED);
        if (a[i].note) cJSON_AddStringToObject(o, "note", a[i].note);
        const char *by = strncmp(a[i].decided_by, "user:", 5) == 0 ? "denied by the user"
                       : strncmp(a[i].decided_by, "tenant_admin:", 13) == 0 ? "denied by a tenant admin"
                       : strcmp(a[i].decided_by, "timeout") == 0 ? "no decision before the deadline"
                       : "denied";
        cJSON_AddStringToObject(o, "by", by);
        cJSON_DeleteItemFromObjectCaseSensitive(d, a[i].call_id);
        cJSON_AddItemToObject(d, a[i].call_id, o);
    }
    return d;
}

static void run_resume_work(uv_work_t *w)
{
    run_resume *m = w->data;
    runs *r = m->r;
    /* Its credential may have been revoked, or its user disabled, while it
     * waited: it then ends, as a queued message would be refused. */
    if (!m->stop_code && r->identity) {
        auth_status a = identity_scope_check(r->identity, &m->sc, m->lost_why, sizeof m->lost_why);
        if (a != AUTH_OK) {
            m->stop_status = RUN_CANCELLED;
            m->stop_code = a == AUTH_REVOKED ? "revoked_credential"
                         : a == AUTH_DISABLED ? "user_disabled" : "invalid_api_key";
            snprintf(m->stop_message, sizeof m->stop_message, "%s while the run waited", m->lost_why);
        }
    }
    /* Not ready while any approval of the run still waits (the approvals of
     * earlier batches were all decided before those went on). */
    approval_rec *a = NULL;
    size_t n = 0;
    if (!m->stop_code) {
        if (store_approvals_of_run(r->st, m->sc.tenant_id, m->sc.user_id, m->run_id, &a, &n) != STORE_OK) {
            m->lost = true;
            return;
        }
        for (size_t i = 0; i < n; i++) m->not_ready |= a[i].status == APPROVAL_PENDING;
        if (m->not_ready) {
            store_free_approvals(a, n);
            return;
        }
    }
    run_wait_rec wait;
    store_status st = store_run_unpause(r->st, &m->sc, m->run_id, &wait);
    if (st == STORE_OK) st = store_run_get(r->st, &m->sc, m->run_id, &m->rec);
    if (st != STORE_OK) {
        run_wait_rec_free(&wait);
        store_free_approvals(a, n);
        m->lost = true;
        return;
    }
    char why[200] = "";
    tools_tenant_status ts = tools_run_set_resolve(r->st, &m->sc, r->cfg, r->tools, m->rec.agent,
                                                   &m->set, why, sizeof why);
    if ((ts != TOOLS_TENANT_OK || !m->set.agent) && !m->stop_code) {
        m->stop_status = RUN_FAILED;
        m->stop_code = "agent_unavailable";
        if (why[0])
            snprintf(m->stop_message, sizeof m->stop_message, "%s", why);
        else
            snprintf(m->stop_message, sizeof m->stop_message,
                     "the run's agent \"%s\" is no longer available to its tenant", m->rec.agent);
    }
    m->pending = cJSON_Parse(wait.pending);
    run_wait_rec_free(&wait);
    if (!m->stop_code && m->pending) m->decisions = run_resume_decisions(a, n, m->pending);
    store_free_approvals(a, n);
    if (m->stop_code) {
        m->rec.status = m->stop_status;
        snprintf(m->rec.error_code, sizeof m->rec.error_code, "%s", m->stop_code);
        snprintf(m->rec.error_message, sizeof m->rec.error_message, "%s", m->stop_message);
        if (store_run_finish(r->st, &m->sc, &m->rec, NULL) != STORE_OK)
            log_error("run %s: could not persist its end", m->run_id);
        return;
    }
    m->history = runs_load_history(r->st, &m->sc, m->rec.session_id, 0);
    /* Going on, it holds one of its user's concurrent runs again until it
     * ends, like a run that starts (a paused run gave its back). Past the
     * limit if need be; new runs wait meanwhile. Before, a resumed run
     * was never counted: a user could pause runs, approve them together,
     * and run them all at once past max_concurrent_runs. */
    if (r->gate && m->pending) {
        runs_who who;
        runs_gate_who(r, &m->sc, &who);
        gate_run_begin_over(r->gate, &who.who, &m->slot);
        m->counted = true;
    }
}

/* Put the client back on the slot (the run stays paused). */
static void run_resume_repause(run_resume *m)
{
    pthread_mutex_lock(&m->r->lock);
    session_slot *s = strmap_get(m->r->active, m->run_id);
    if (s) {
        s->paused = true;
        if (m->sub && m->sub->paused) {
            ((pause_ref *)m->sub->paused)->slot = s;
            s->pause_sub = m->sub;
            m->sub = NULL;
        }
    }
    pthread_mutex_unlock(&m->r->lock);
}

/* The run ended while paused: free the session, tell the client. */
static void run_resume_ended(run_resume *m)
{
    runs_registry_release(m->r, m->session_id, m->run_id);
    /* its end, as the run's last event: in its log, and to a client still
     * attached */
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "status", run_status_name(m->rec.status));
    cJSON *e = cJSON_AddObjectToObject(d, "error");
    cJSON_AddStringToObject(e, "code", m->rec.error_code);
    cJSON_AddStringToObject(e, "message", m->rec.error_message);
    cJSON_AddStringToObject(d, "run_id", m->rec.id);
    char *json = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    uint64_t seq = json ? run_log_append(m->r->logs, m->rec.id, m->sc.tenant_id, m->sc.user_id, "run.failed",
                                         json, strlen(json))
                        : 0;
    run_log_end(m->r->logs, m->rec.id);
    runs_subscriber *sub = m->sub;
    if (sub) {
        free(sub->paused);
        sub->paused = NULL;
        if (sub->on_event && json) sub->on_event(sub, "run.failed", json, strlen(json), seq);
        runs_outcome o = {.run = &m->rec};
        sub->on_end(sub, &o);
    }
    cJSON_free(json);
}

static void run_resume_after(uv_work_t *w, int status)
{
    (void)status;
    run_resume *m = w->data;
    if (m->not_ready) {
        run_resume_repause(m);
        run_resume_free(m);
        return;
    }
    if (m->lost || m->stop_code || !m->pending) {
        if (m->lost && m->stop_code) {
            /* Ended while paused, and its run is gone with its user's data
             * (an erasure): the session is freed, the client told why. */
            snprintf(m->rec.id, sizeof m->rec.id, "%s", m->run_id);
            snprintf(m->rec.session_id, sizeof m->rec.session_id, "%s", m->session_id);
            m->rec.status = m->stop_status;
            snprintf(m->rec.error_code, sizeof m->rec.error_code, "%s", m->stop_code);
            snprintf(m->rec.error_message, sizeof m->rec.error_message, "%s", m->stop_message);
        } else if (m->lost) {
            /* Nothing to go on with (the run was erased with its user, or
             * the store failed): the session is freed; the stored run, if
             * any, is what it is. */
            log_warn("paused run %s could not go on", m->run_id);
            snprintf(m->rec.id, sizeof m->rec.id, "%s", m->run_id);
            snprintf(m->rec.session_id, sizeof m->rec.session_id, "%s", m->session_id);
            m->rec.status = RUN_FAILED;
            snprintf(m->rec.error_code, sizeof m->rec.error_code, "store_error");
            snprintf(m->rec.error_message, sizeof m->rec.error_message, "the paused run could not be read back");
        }
        run_resume_ended(m);
        run_resume_free(m);
        return;
    }
    run_exec *x = run_exec_new(m->t, &m->sc, &m->rec, &m->set, NULL);
    x->counted = m->counted;           /* the run now holds the slot taken on the pool */
    x->slot = m->slot;
    m->counted = false;
    x->decisions = m->decisions;
    m->decisions = NULL;
    x->assistant_msg = cJSON_Duplicate(m->pending, true);   /* written with its results */
    if (m->sub) {
        free(m->sub->paused);
        m->sub->paused = NULL;
        x->sub = m->sub;
        x->sub->run = x;
        x->sub_started = true;
        m->sub = NULL;
    }
    runs_registry_resumed(m->r, m->session_id, x);
    if (!x->core_state) {
        run_exec_fail(x, "internal_error", "out of memory");
        run_resume_free(m);
        return;
    }
    step_event ev = {.kind = STEP_EVENT_RESUME, .history = m->history, .message = m->pending,
                     .steps = (uint32_t)m->rec.steps, .tool_calls = (uint32_t)m->rec.tool_calls};
    m->history = m->pending = NULL;
    run_resume_free(m);
    run_exec_feed(x, &ev);
}

/* On the loop that will run it. */
static void run_resume_on_loop(void *arg)
{
    run_resume *m = arg;
    m->work.data = m;
    if (uv_queue_work(m->t->loop, &m->work, run_resume_work, run_resume_after) != 0) {
        run_resume_repause(m);
        run_resume_free(m);
    }
}

bool runs_paused_wake_locked(runs *r, session_slot *s, run_status stop_status,
                             const char *stop_code, const char *stop_message)
{
    if (!s->paused) return false;
    /* The client's loop if one is attached (its events must be sent
     * there), else the loop the run last ran on, else the home loop. */
    runs_thread *t = s->pause_sub ? s->t : (s->t && !s->t->closing ? s->t : r->home);
    if (!t) return false;
    run_resume *m = xcalloc(1, sizeof *m);
    m->r = r;
    m->t = t;
    m->sc = s->pause_sc;
    snprintf(m->run_id, sizeof m->run_id, "%s", s->run_id);
    snprintf(m->session_id, sizeof m->session_id, "%s", s->session_id);
    m->stop_status = stop_status;
    m->stop_code = stop_code;
    snprintf(m->stop_message, sizeof m->stop_message, "%s", stop_message ? stop_message : "");
    m->sub = s->pause_sub;
    s->paused = false;
    s->pause_sub = NULL;
    if (m->sub) ((pause_ref *)m->sub->paused)->slot = NULL;
    if (!mailbox_post(t->mbox, run_resume_on_loop, m)) {
        /* That loop is shutting down: the run stays paused (in the store
         * too), and its client is going away with the loop. */
        s->paused = true;
        free(m);
        return false;
    }
    return true;
}

void runs_registry_resumed(runs *r, const char *session_id, run_exec *x)
{
    pthread_mutex_lock(&r->lock);
    session_slot *s = strmap_get(r->sessions, session_id);
    if (s) {
        s->run = x;
        s->t = x->t;
        s->live_status = RUN_RUNNING;
        s->wake_pending = false;
    }
    pthread_mutex_unlock(&r->lock);
}

void runs_approvals_decided(runs *r, const char *run_id)
{
    pthread_mutex_lock(&r->lock);
    session_slot *s = strmap_get(r->active, run_id);
    if (s && s->paused && s->pause_kind == RUN_WAITING_APPROVAL) runs_paused_wake_locked(r, s, 0, NULL, NULL);
    else if (s && !s->paused && s->run) s->wake_pending = true;   /* its pause is being written */
    pthread_mutex_unlock(&r->lock);
}

typedef struct runs_conn_match {
    runs *r;
    const char *tenant_id, *user_id, *provider;
} runs_conn_match;

static bool runs_wake_auth_slot(const char *key, void *val, void *arg)
{
    (void)key;
    session_slot *s = val;
    runs_conn_match *m = arg;
    if (strcmp(s->tenant_id, m->tenant_id) != 0 || strcmp(s->user_id, m->user_id) != 0) return false;
    if (s->paused && s->pause_kind == RUN_WAITING_AUTH && strcmp(s->pause_provider, m->provider) == 0)
        runs_paused_wake_locked(m->r, s, 0, NULL, NULL);
    else if (!s->paused && s->run)
        s->wake_pending = true;   /* a pause being written may be for this connection: look again */
    return false;
}

void runs_on_connection_active(struct runs *r, const char *tenant_id, const char *user_id,
                               const char *provider)
{
    if (!r || !tenant_id || !user_id || !provider) return;
    runs_conn_match m = {r, tenant_id, user_id, provider};
    pthread_mutex_lock(&r->lock);
    strmap_foreach(r->sessions, runs_wake_auth_slot, &m);
    pthread_mutex_unlock(&r->lock);
}

void runs_set_credentials(struct runs *r, const runs_credentials *c)
{
    r->creds = *c;
    r->has_creds = c->fetch != NULL;
}

/* A streaming client of a paused run went away (events.c). */
void runs_paused_subscriber_gone(runs_subscriber *sub)
{
    pause_ref *ref = sub->paused;
    pthread_mutex_lock(&ref->r->lock);
    if (ref->slot && ref->slot->pause_sub == sub) ref->slot->pause_sub = NULL;
    pthread_mutex_unlock(&ref->r->lock);
    sub->paused = NULL;
    free(ref);
}

/* ---------------------------------------------------------------- deadlines */

typedef struct sweep_item {
    char       run_id[ID_MAX];
    char       tenant_id[ID_MAX], user_id[ID_MAX];
    run_status kind;
    size_t     pending;               /* approvals still pending after the expiry */
    int64_t    next_deadline;         /* the earliest of those */
} sweep_item;

typedef struct sweep_job {
    uv_work_t  work;
    runs      *r;
    sweep_item *items;
    size_t     n, cap;
} sweep_job;

typedef struct sweep_collect {
    sweep_job *j;
    int64_t    now;
} sweep_collect;

static bool runs_sweep_slot(const char *key, void *val, void *arg)
{
    (void)key;
    session_slot *s = val;
    sweep_collect *c = arg;
    if (!s->paused || !s->pause_deadline || s->pause_deadline > c->now) return false;
    sweep_job *j = c->j;
    if (j->n == j->cap) {
        j->cap = j->cap ? 2 * j->cap : 8;
        j->items = xrealloc(j->items, j->cap * sizeof *j->items);
    }
    sweep_item *it = &j->items[j->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->run_id, sizeof it->run_id, "%s", s->run_id);
    snprintf(it->tenant_id, sizeof it->tenant_id, "%s", s->tenant_id);
    snprintf(it->user_id, sizeof it->user_id, "%s", s->user_id);
    it->kind = s->pause_kind;
    s->pause_deadline = 0;            /* looked at once; the job sets the next one */
    return false;
}

/* approval.timeout's details, read in the denial's transaction. */
static void runs_timeout_details(cJSON *d, void *arg)
{
    const approval_rec *a = arg;
    cJSON_AddStringToObject(d, "run_id", a->run_id);
    cJSON_AddStringToObject(d, "call_id", a->call_id);
    cJSON_AddStringToObject(d, "tool", a->tool);
    cJSON_AddStringToObject(d, "decision", "denied");
    cJSON_AddStringToObject(d, "user_id", a->user_id);
}

/* At most this many denials per sweep (the next sweep takes the rest). */
#define RUNS_SWEEP_EXPIRE_MAX 256

static void runs_sweep_work(uv_work_t *w)
{
    sweep_job *j = w->data;
    int64_t now = time_now_unix();
    /* A denial by deadline is a decision too: audited, by "system", in
     * the denial's own transaction. One at a time; bounded per sweep. */
    size_t n_expired = 0;
    for (; n_expired < RUNS_SWEEP_EXPIRE_MAX; n_expired++) {
        approval_rec expired;
        obs_audit_act a;
        obs_audit_act_begin_raw(&a, j->r->st, "", "system", "deadline", "approval.timeout", NULL, NULL);
        obs_audit_act_tenant(&a, expired.tenant_id);
        obs_audit_act_target(&a, expired.call_id);
        obs_audit_act_fill(&a, runs_timeout_details, &expired);
        store_status es = store_approval_expire_next(j->r->st, now, &expired);
        obs_audit_act_end(&a);
        if (es != STORE_OK) break;
        approval_rec_free(&expired);
    }
    if (n_expired) log_info("%zu approval(s) denied: no decision before their deadline", n_expired);
    for (size_t i = 0; i < j->n; i++) {
        sweep_item *it = &j->items[i];
        if (it->kind != RUN_WAITING_APPROVAL) continue;
        approval_rec *a = NULL;
        size_t n = 0;
        if (store_approvals_of_run(j->r->st, it->tenant_id, it->user_id, it->run_id, &a, &n) != STORE_OK) {
            it->pending = 1;
            it->next_deadline = now + 5;   /* try again soon */
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            if (a[k].status != APPROVAL_PENDING) continue;
            it->pending++;
            if (!it->next_deadline || a[k].deadline < it->next_deadline) it->next_deadline = a[k].deadline;
        }
        store_free_approvals(a, n);
    }
}

static void runs_sweep_after(uv_work_t *w, int status)
{
    (void)status;
    sweep_job *j = w->data;
    runs *r = j->r;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < j->n; i++) {
        sweep_item *it = &j->items[i];
        session_slot *s = strmap_get(r->active, it->run_id);
        if (!s || !s->paused) continue;
        if (it->kind == RUN_WAITING_AUTH) {
            char msg[200];
            snprintf(msg, sizeof msg, "the user did not connect \"%.64s\" in time; the tool call "
                     "that needed it did not run", s->pause_provider);
            runs_paused_wake_locked(r, s, RUN_FAILED, "auth_timeout", msg);
        } else if (it->pending == 0) {
            runs_paused_wake_locked(r, s, 0, NULL, NULL);
        } else {
            s->pause_deadline = it->next_deadline;
        }
    }
    pthread_mutex_unlock(&r->lock);
    free(j->items);
    free(j);
}

static void runs_sweep_tick(uv_timer_t *timer)
{
    runs *r = timer->data;
    /* histories unused too long, a few at a time (this loop serves too) */
    history_cache_expire(r->history, RUNS_HISTORY_EXPIRE_PER_SWEEP);
    if (history_cache_enabled(r->history))
        obs_gauge_set(obs_series_of(obs_m_history_cache_bytes(), NULL),
                      (double)history_cache_bytes(r->history));
    sweep_job *j = xcalloc(1, sizeof *j);
    j->r = r;
    sweep_collect c = {j, time_now_unix()};
    pthread_mutex_lock(&r->lock);
    strmap_foreach(r->sessions, runs_sweep_slot, &c);
    pthread_mutex_unlock(&r->lock);
    if (j->n == 0) {
        free(j);
        return;
    }
    j->work.data = j;
    if (uv_queue_work(timer->loop, &j->work, runs_sweep_work, runs_sweep_after) != 0) {
        free(j->items);
        free(j);
    }
}

void runs_sweep_start(runs_thread *t)
{
    runs *r = t->r;
    pthread_mutex_lock(&r->lock);
    bool mine = r->home == NULL;
    if (mine) r->home = t;
    pthread_mutex_unlock(&r->lock);
    if (!mine) return;
    t->sweep = xcalloc(1, sizeof *t->sweep);
    uv_timer_init(t->loop, t->sweep);
    t->sweep->data = r;
    uv_timer_start(t->sweep, runs_sweep_tick, RUNS_SWEEP_MS, RUNS_SWEEP_MS);
    uv_unref((uv_handle_t *)t->sweep);   /* never what keeps a loop alive */
}

static void runs_sweep_closed(uv_handle_t *h) { free(h); }

void runs_sweep_stop(runs_thread *t)
{
    if (!t->sweep) return;
    uv_close((uv_handle_t *)t->sweep, runs_sweep_closed);
    t->sweep = NULL;
    pthread_mutex_lock(&t->r->lock);
    if (t->r->home == t) t->r->home = NULL;
    pthread_mutex_unlock(&t->r->lock);
}

/* ---------------------------------------------------------------- after a restart */

void runs_restore_paused(runs *r)
{
    /* Deadlines that passed while the server was down are due at once:
     * the first sweep (a second after start) denies them, audited, and the
     * runs go on; a decision that comes first finds them denied too. */
    run_wait_rec *w = NULL;
    size_t n = 0;
    if (store_run_waits_all(r->st, &w, &n) != STORE_OK) {
        log_error("paused runs could not be read back; they stay paused in the store");
        return;
    }
    size_t restored = 0;
    for (size_t i = 0; i < n; i++) {
        scope sc;
        if (!r->identity || !identity_scope_of_paused_run(r->identity, w[i].tenant_id, w[i].user_id,
                                                          w[i].key_id, &sc)) {
            log_warn("paused run %s: its user no longer exists; left as it is", w[i].run_id);
            continue;
        }
        int64_t deadline = w[i].deadline;
        if (w[i].kind == RUN_WAITING_APPROVAL) {
            /* the earliest pending deadline; none pending: go on at the
             * first sweep */
            approval_rec *a = NULL;
            size_t na = 0;
            deadline = time_now_unix();
            if (store_approvals_of_run(r->st, w[i].tenant_id, w[i].user_id, w[i].run_id, &a, &na) == STORE_OK) {
                int64_t first = 0;
                for (size_t k = 0; k < na; k++)
                    if (a[k].status == APPROVAL_PENDING && (!first || a[k].deadline < first))
                        first = a[k].deadline;
                if (first) deadline = first;
                store_free_approvals(a, na);
            }
        }
        session_slot *s = xcalloc(1, sizeof *s);
        snprintf(s->session_id, sizeof s->session_id, "%s", w[i].session_id);
        snprintf(s->run_id, sizeof s->run_id, "%s", w[i].run_id);
        snprintf(s->tenant_id, sizeof s->tenant_id, "%s", w[i].tenant_id);
        snprintf(s->user_id, sizeof s->user_id, "%s", w[i].user_id);
        snprintf(s->key_id, sizeof s->key_id, "%s", w[i].key_id);
        s->live_status = w[i].kind;
        s->paused = true;
        s->pause_sc = sc;
        s->pause_kind = w[i].kind;
        snprintf(s->pause_provider, sizeof s->pause_provider, "%s", w[i].provider);
        s->pause_deadline = deadline;
        pthread_mutex_lock(&r->lock);
        if (strmap_get(r->sessions, s->session_id)) {
            pthread_mutex_unlock(&r->lock);
            free(s);
            continue;
        }
        strmap_put(r->sessions, s->session_id, s);
        strmap_put(r->active, s->run_id, s);
        r->n_active++;
        pthread_mutex_unlock(&r->lock);
        restored++;
    }
    store_free_run_waits(w, n);
    if (restored) log_info("%zu paused run(s) restored (waiting for an approval or a connection)", restored);
}
