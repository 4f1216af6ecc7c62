/* registry.c — every active run, by session and by id, shared by all loops.
 *
 * invariant 4, docs/architecture.md's "runs on one session are serialized" lives here:
 * a session has at most one active run; a second message is rejected,
 * queued (bounded: RUNS_QUEUE_MAX) or made to interrupt the first, as the
 * client asked. The lock is held only for these small bookkeeping steps,
 * never across I/O; a run itself is touched only on its own loop, which
 * other loops reach through that loop's mailbox. */
#include "runs/runs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/strfmt.h"
#include "util/xalloc.h"

runs *runs_new(const brigade_config *cfg, store *st, const tool_registry *tools)
{
    runs *r = xcalloc(1, sizeof *r);
    r->cfg = cfg;
    r->st = st;
    r->tools = tools;
    r->core = &step_core_toolcall;
    pthread_mutex_init(&r->lock, NULL);
    r->sessions = xnonnull(strmap_new(NULL));
    r->active = xnonnull(strmap_new(NULL));
    r->logs = run_logs_new();
    /* off (0 MB) the cache takes and keeps nothing; a failure to make it
     * only costs the loads it would have saved */
    r->history = history_cache_new(cfg ? (size_t)cfg->history_cache_mb << 20 : 0, RUNS_HISTORY_IDLE_MS);
    return r;
}

static bool runs_free_slot(const char *key, void *val, void *arg)
{
    (void)key;
    (void)arg;
    session_slot *s = val;
    while (s->queue) { run_waiter *w = s->queue; s->queue = w->next; free(w); }
    while (s->cancel_waiters) { run_waiter *w = s->cancel_waiters; s->cancel_waiters = w->next; free(w); }
    free(s);
    return true;
}

void runs_free(runs *r)
{
    if (!r) return;
    strmap_foreach(r->sessions, runs_free_slot, NULL);
    strmap_free(r->sessions);
    strmap_free(r->active);
    run_logs_free(r->logs);
    history_cache_free(r->history);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

size_t runs_active(runs *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->n_active;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static run_waiter *runs_waiter_new(runs_thread *t, mailbox_fn fn, void *arg)
{
    run_waiter *w = xcalloc(1, sizeof *w);
    w->t = t;
    w->fn = fn;
    w->arg = arg;
    return w;
}

/* Posted to the active run's loop: stop it because a newer message wants
 * the session. The run is looked up again there; it may have ended. */
typedef struct runs_stop_msg {
    runs *r;
    char  run_id[ID_MAX];
    run_status status;
    const char *code;
    const char *message;
} runs_stop_msg;

static void runs_stop_on_loop(void *arg)
{
    runs_stop_msg *m = arg;
    pthread_mutex_lock(&m->r->lock);
    session_slot *s = strmap_get(m->r->active, m->run_id);
    run_exec *x = s ? s->run : NULL;
    pthread_mutex_unlock(&m->r->lock);
    if (x) run_exec_stop(x, m->status, m->code, m->message);
    free(m);
}

static void runs_post_stop(runs *r, session_slot *s, run_status status, const char *code,
                           const char *message)
{
    /* A paused run has no loop running it: it ends from the store. */
    if (s->paused) {
        runs_paused_wake_locked(r, s, status, code, message);
        return;
    }
    if (!s->run_id[0] || !s->t) return;
    runs_stop_msg *m = xcalloc(1, sizeof *m);
    m->r = r;
    str_copy(m->run_id, sizeof m->run_id, s->run_id);
    m->status = status;
    m->code = code;
    m->message = message;
    if (!mailbox_post(s->t->mbox, runs_stop_on_loop, m)) free(m);
}

int runs_registry_claim(runs *r, runs_thread *t, const scope *sc, const char *session_id,
                        runs_if_busy mode, mailbox_fn resume_fn, void *resume_arg,
                        char busy_run[ID_MAX], bool *full)
{
    *full = false;
    busy_run[0] = '\0';
    pthread_mutex_lock(&r->lock);
    session_slot *s = strmap_get(r->sessions, session_id);
    if (!s) {
        s = xcalloc(1, sizeof *s);
        str_copy(s->session_id, sizeof s->session_id, session_id);
        str_copy(s->tenant_id, sizeof s->tenant_id, sc->tenant_id);
        str_copy(s->user_id, sizeof s->user_id, sc->user_id);
        str_copy(s->key_id, sizeof s->key_id, sc->key_id);
        s->t = t;
        s->live_status = RUN_RUNNING;
        strmap_put(r->sessions, session_id, s);
        pthread_mutex_unlock(&r->lock);
        return 0;
    }
    snprintf(busy_run, ID_MAX, "%s", s->run_id);
    if (mode == RUNS_BUSY_REJECT) {
        pthread_mutex_unlock(&r->lock);
        return -1;
    }
    if (s->queued >= RUNS_QUEUE_MAX) {
        *full = true;
        pthread_mutex_unlock(&r->lock);
        return -1;
    }
    run_waiter *w = runs_waiter_new(t, resume_fn, resume_arg);
    str_copy(w->key_id, sizeof w->key_id, sc->key_id);
    if (mode == RUNS_BUSY_INTERRUPT) {
        /* Jump the queue, and ask the active run to stop. */
        w->next = s->queue;
        s->queue = w;
        if (!s->queue_tail) s->queue_tail = w;
        if (s->run_id[0])
            runs_post_stop(r, s, RUN_INTERRUPTED, "interrupted",
                           "a newer message on this session interrupted the run");
        else
            s->interrupt_pending = true;   /* stopped as soon as it has started */
    } else {
        if (s->queue_tail) s->queue_tail->next = w;
        else s->queue = w;
        s->queue_tail = w;
    }
    s->queued++;
    pthread_mutex_unlock(&r->lock);
    return 1;
}

void runs_registry_started(runs *r, const char *session_id, const char *run_id, run_exec *x)
{
    pthread_mutex_lock(&r->lock);
    session_slot *s = strmap_get(r->sessions, session_id);
    if (s) {
        str_copy(s->run_id, sizeof s->run_id, run_id);
        s->run = x;
        s->t = x->t;
        s->live_status = RUN_RUNNING;
        str_copy(s->live_agent, sizeof s->live_agent, x->rec.agent);
        s->live_created_at = x->rec.created_at;
        strmap_put(r->active, run_id, s);
        r->n_active++;
        str_copy(s->key_id, sizeof s->key_id, x->sc.key_id);
        /* An interrupt, or the loss of its credential, that arrived while
         * this run was still starting. */
        if (s->revoke_code) {
            runs_post_stop(r, s, RUN_CANCELLED, s->revoke_code, s->revoke_message);
            s->revoke_code = s->revoke_message = NULL;
            s->interrupt_pending = false;
        } else if (s->interrupt_pending) {
            s->interrupt_pending = false;
            runs_post_stop(r, s, RUN_INTERRUPTED, "interrupted",
                           "a newer message on this session interrupted the run");
        }
    }
    pthread_mutex_unlock(&r->lock);
}

void runs_registry_release(runs *r, const char *session_id, const char *run_id)
{
    pthread_mutex_lock(&r->lock);
    session_slot *s = strmap_get(r->sessions, session_id);
    if (!s) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    if (run_id && run_id[0] && strmap_del(r->active, run_id)) r->n_active--;
    run_waiter *cancels = s->cancel_waiters;
    s->cancel_waiters = NULL;
    run_waiter *next = s->queue;
    if (next) {
        /* Hand the session straight to the next message: no gap in which a
         * third message could slip in ahead of it. */
        s->queue = next->next;
        if (!s->queue) s->queue_tail = NULL;
        s->queued--;
        s->run_id[0] = '\0';
        s->run = NULL;
        s->t = next->t;
        s->interrupt_pending = false;
        /* The next message checks its own credential before it starts. */
        str_copy(s->key_id, sizeof s->key_id, next->key_id);
        s->revoke_code = s->revoke_message = NULL;
    } else {
        strmap_del(r->sessions, session_id);
        free(s);
    }
    pthread_mutex_unlock(&r->lock);

    while (cancels) {
        run_waiter *w = cancels;
        cancels = w->next;
        if (!mailbox_post(w->t->mbox, w->fn, w->arg)) w->fn(w->arg);
        free(w);
    }
    if (next) {
        if (!mailbox_post(next->t->mbox, next->fn, next->arg)) next->fn(next->arg);
        free(next);
    }
}

bool runs_live_status(runs *r, const scope *sc, const char *run_id, run_status *status)
{
    pthread_mutex_lock(&r->lock);
    session_slot *s = strmap_get(r->active, run_id);
    bool ok = s && strcmp(s->tenant_id, sc->tenant_id) == 0 && strcmp(s->user_id, sc->user_id) == 0;
    if (ok) *status = s->live_status;
    pthread_mutex_unlock(&r->lock);
    return ok;
}

bool runs_live_run(runs *r, const scope *sc, const char *run_id, run_rec *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&r->lock);
    session_slot *s = strmap_get(r->active, run_id);
    bool ok = s && strcmp(s->tenant_id, sc->tenant_id) == 0 && strcmp(s->user_id, sc->user_id) == 0;
    if (ok) {
        str_copy(out->id, sizeof out->id, s->run_id);
        str_copy(out->session_id, sizeof out->session_id, s->session_id);
        str_copy(out->agent, sizeof out->agent, s->live_agent);
        out->status = s->live_status;
        out->created_at = out->started_at = s->live_created_at;
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}

bool runs_session_busy(runs *r, const char *session_id)
{
    pthread_mutex_lock(&r->lock);
    bool busy = strmap_get(r->sessions, session_id) != NULL;
    pthread_mutex_unlock(&r->lock);
    return busy;
}

/* Cancel: if the run is active and the caller's, register a waiter to be
 * answered at its end and ask its loop to stop it. Returns false if it is
 * not active (the caller then reads the stored run). */
bool runs_registry_cancel(runs *r, runs_thread *t, const scope *sc, const char *run_id,
                          mailbox_fn answer_fn, void *answer_arg)
{
    pthread_mutex_lock(&r->lock);
    session_slot *s = strmap_get(r->active, run_id);
    if (!s || strcmp(s->tenant_id, sc->tenant_id) != 0 || strcmp(s->user_id, sc->user_id) != 0) {
        pthread_mutex_unlock(&r->lock);
        return false;
    }
    run_waiter *w = runs_waiter_new(t, answer_fn, answer_arg);
    w->next = s->cancel_waiters;
    s->cancel_waiters = w;
    runs_post_stop(r, s, RUN_CANCELLED, "cancelled", "the run was cancelled");
    pthread_mutex_unlock(&r->lock);
    return true;
}

/* ---- the tenant admin's live view ---- */

typedef struct runs_live_collect {
    const char *tenant_id;
    runs_live  *out;
    size_t      n, max;
} runs_live_collect;

static bool runs_live_slot(const char *key, void *val, void *arg)
{
    (void)key;
    const session_slot *s = val;
    runs_live_collect *c = arg;
    /* (returning true would delete the entry: every path returns false) */
    if (c->n >= c->max || !s->run_id[0] || strcmp(s->tenant_id, c->tenant_id) != 0) return false;
    runs_live *l = &c->out[c->n++];
    str_copy(l->run_id, sizeof l->run_id, s->run_id);
    str_copy(l->session_id, sizeof l->session_id, s->session_id);
    str_copy(l->user_id, sizeof l->user_id, s->user_id);
    l->status = s->live_status;
    return false;
}

size_t runs_list_live(runs *r, const char *tenant_id, runs_live *out, size_t max)
{
    if (!tenant_id || !tenant_id[0] || max == 0) return 0;
    runs_live_collect c = {tenant_id, out, 0, max};
    pthread_mutex_lock(&r->lock);
    strmap_foreach(r->active, runs_live_slot, &c);
    pthread_mutex_unlock(&r->lock);
    return c.n;
}

bool runs_cancel_in_tenant(runs *r, const char *tenant_id, const char *run_id)
{
    if (!tenant_id || !tenant_id[0]) return false;
    pthread_mutex_lock(&r->lock);
    session_slot *s = strmap_get(r->active, run_id);
    bool found = s && strcmp(s->tenant_id, tenant_id) == 0;
    if (found) runs_post_stop(r, s, RUN_CANCELLED, "cancelled", "the run was cancelled by a tenant admin");
    pthread_mutex_unlock(&r->lock);
    return found;
}

bool runs_cancel_remote(runs *r, const char *tenant_id, const char *user_id, const char *run_id)
{
    pthread_mutex_lock(&r->lock);
    session_slot *s = strmap_get(r->active, run_id);
    bool found = s && strcmp(s->tenant_id, tenant_id) == 0 && strcmp(s->user_id, user_id) == 0;
    if (found) runs_post_stop(r, s, RUN_CANCELLED, "cancelled", "the run was cancelled");
    pthread_mutex_unlock(&r->lock);
    return found;
}

/* ---- credentials lost: stop what they started ---- */

typedef struct runs_revoke_match {
    runs       *r;
    const char *tenant_id, *user_id, *key_id, *code, *message;
    size_t      n;
} runs_revoke_match;

static bool runs_revoke_slot(const char *key, void *val, void *arg)
{
    (void)key;
    session_slot *s = val;
    runs_revoke_match *m = arg;
    if (strcmp(s->tenant_id, m->tenant_id) != 0) return false;
    if (m->user_id && strcmp(s->user_id, m->user_id) != 0) return false;
    if (m->key_id && strcmp(s->key_id, m->key_id) != 0) return false;
    if (s->run_id[0]) {
        runs_post_stop(m->r, s, RUN_CANCELLED, m->code, m->message);
    } else {
        /* Claimed, not yet started. Its start checks the credential after
         * claiming: a check after this change refuses it; one made before
         * is caught here, when it registers as started. */
        s->revoke_code = m->code;
        s->revoke_message = m->message;
    }
    m->n++;
    return false;                 /* keep the slot: the run releases it */
}

size_t runs_registry_revoke(runs *r, const char *tenant_id, const char *user_id,
                            const char *key_id, const char *code, const char *message)
{
    if (!r || !tenant_id) return 0;
    runs_revoke_match m = {r, tenant_id, user_id, key_id, code, message, 0};
    pthread_mutex_lock(&r->lock);
    strmap_foreach(r->sessions, runs_revoke_slot, &m);
    pthread_mutex_unlock(&r->lock);
    return m.n;
}

void runs_session_deleted(runs *r, const char *session_id)
{
    if (r) history_cache_drop_session(r->history, session_id);
}

void runs_on_revocation(runs *r, const identity_revocation *rv)
{
    /* an erased user's conversations must not outlive the erasure here */
    if (r && rv->code && strcmp(rv->code, "user_deleted") == 0)
        history_cache_drop_user(r->history, rv->tenant_id, rv->user_id);
    size_t n = runs_registry_revoke(r, rv->tenant_id, rv->user_id, rv->key_id, rv->code,
                                    rv->message);
    if (n) log_info("%s: %zu active run(s) of user %s cancelled", rv->code, n,
                    rv->user_id ? rv->user_id : "-");
}
