/* exec.c — a run from its start (start.c has claimed the session and
 * written the run) to its end: loop — ask the core for the next effect,
 * perform it (model.c, toolrun.c), feed the result back — until the core
 * finishes or fails, a limit is hit, or the run is cancelled. The end is
 * persisted before the subscriber hears of it.
 *
 * Everything here runs on the loop of the request that started the run;
 * store work goes to the thread pool, one job at a time per run. */
#include "runs/runs_internal.h"

#include "core/origin.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/pii_policy.h"
#include "util/log.h"
#include "util/strfmt.h"
#include "util/timeutil.h"
#include "util/xalloc.h"


/* A run whose store writes behind (SQLite) holds what it has not written
 * yet — its start, its steps — for at most this long from the oldest of
 * them, then queues all of it as one write; its end takes along whatever
 * is held. A short run costs one commit (its start, steps and end
 * together), and a longer one is in the transcript (and survives a crash)
 * within this long plus one commit of each step — well before a real
 * model's next answer. Steps that come faster than that share a write:
 * queuing each step as the next one came (as before) cost a 9-step run of
 * 3 ms two to three commits, and its end waited out the one in progress
 * (docs/benchmarks.md). */
#define RUN_WRITE_HOLD_MS 5

/* Shared by a run and its steps in the writer's queue: the writer thread
 * says a step failed, the loop reads it before the next step. Freed by
 * whichever lets go last. */
typedef struct run_behind_state {
    atomic_int failed;
    atomic_int refs;
} run_behind_state;

static void run_behind_unref(run_behind_state *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1) free(b);
}

/* ---------------------------------------------------------------- threads */

runs_thread *runs_thread_new(runs *r, uv_loop_t *loop, upstream *up)
{
    runs_thread *t = xcalloc(1, sizeof *t);
    t->r = r;
    t->loop = loop;
    t->up = up;
    t->mbox = mailbox_new(loop);
    runs_sweep_start(t);   /* the first loop watches paused runs' deadlines */
    return t;
}

void runs_set_gate(runs *r, struct gate *g, struct identity *id)
{
    r->gate = g;
    r->identity = id;
}

void runs_thread_set_gate(runs_thread *t, struct gate_thread *gt) { t->gate = gt; }

void runs_set_core(runs *r, const step_core *core) { r->core = core; }

static void run_finish_done(run_exec *x);
static void run_finish_work(run_exec *x);
static void run_held_free(run_exec *x);

/* The loop is shutting down with this run still going: persist it as
 * interrupted (blocking is fine at shutdown; a crash instead is caught by
 * store_runs_recover), tell its client, free it. */
static void run_exec_shutdown(run_exec *x)
{
    run_model_abort(x);
    run_tools_abort(x);
    /* A run that had already decided its end (finishing) is written with
     * that end; any other is interrupted. */
    if (!x->finishing) {
        x->rec.status = RUN_INTERRUPTED;
        snprintf(x->rec.error_code, sizeof x->rec.error_code, "server_shutdown");
        snprintf(x->rec.error_message, sizeof x->rec.error_message,
                 "the server shut down while the run was in progress");
        x->rec.finished_at = time_now_unix();
    }
    run_exec_flush_writes(x);   /* queued ahead of the blocking end: it lands first */
    store_run_finish(x->r->st, &x->sc, &x->rec, x->final_msg.role[0] ? &x->final_msg : NULL);
    runs_error e = {.kind = RUNS_ERR_SHUTDOWN, .code = "server_shutdown",
                    .message = "the server shut down while the run was in progress"};
    runs_outcome o = {.error = &e, .run = &x->rec};
    run_log_end(x->r->logs, x->rec.id);
    run_event_end(x, &o);
    runs_registry_release(x->r, x->rec.session_id, x->rec.id);
    run_exec_release(x);
}

void runs_thread_free(runs_thread *t)
{
    if (!t) return;
    t->closing = true;
    runs_sweep_stop(t);
    /* Ends written behind that are still in the writer's queue: wait for
     * them, so their completions are in the mailbox that closes next and
     * run there (the run ends as it would have). */
    store_runs_settle(t->r->st);
    mailbox_close(t->mbox);
    /* The loop has stopped serving: what is still running is interrupted.
     * Persist that now (blocking is fine at shutdown) so the transcript and
     * the run agree; a crash instead is caught by store_runs_recover. */
    run_exec *next;
    for (run_exec *x = t->runs; x; x = next) {
        next = x->next;
        if (x->work_fn) {
            /* A store job is on the pool: its completion (on the next turns
             * of this loop) finishes the run off. */
            x->orphan = true;
            t->orphans++;
            continue;
        }
        run_exec_shutdown(x);
    }
    if (t->orphans == 0) free(t);
}

/* ---------------------------------------------------------------- the run's lifetime */

static void run_handle_closed(uv_handle_t *h)
{
    run_exec *x = h->data;
    if (--x->open_handles == 0) {
        free(x->unwritten_start);
        run_held_free(x);
        run_behind_unref(x->behind_state);
        buf_free(&x->reply_text);
        free(x->refusal);
        tools_run_set_free(&x->set);  /* last: nothing of the run reads it any more */
        free(x);
    }
}

/* Unlink, free what the run holds, close its handles (the struct goes with
 * the last close callback). */
/* The run stops counting against its user's max_concurrent_runs (once). */
static void run_exec_uncount(run_exec *x)
{
    if (x->counted) {
        x->counted = false;
        gate_run_end(x->r->gate, x->sc.tenant_id, x->sc.user_id, &x->slot);
    }
}

void run_exec_release(run_exec *x)
{
    runs_thread *t = x->t;
    if (x->prev) x->prev->next = x->next;
    else if (t->runs == x) t->runs = x->next;
    if (x->next) x->next->prev = x->prev;
    x->next = x->prev = NULL;
    run_exec_uncount(x);
    if (x->run_span) {
        obs_span_set_str(x->run_span, "brigade.run.status", run_status_name(x->rec.status));
        obs_span_set_int(x->run_span, "brigade.run.steps", x->rec.steps);
        obs_span_set_int(x->run_span, "brigade.run.tool_calls", x->rec.tool_calls);
        obs_span_set_int(x->run_span, "gen_ai.usage.input_tokens", x->rec.input_tokens);
        obs_span_set_int(x->run_span, "gen_ai.usage.output_tokens", x->rec.output_tokens);
        obs_span_set_double(x->run_span, "brigade.cost_usd", (double)x->rec.cost_nusd / 1e9);
        if (x->queue_wait_ms) obs_span_set_int(x->run_span, "brigade.queue.wait_ms", x->queue_wait_ms);
        run_taint_trace(x->run_span, x->guard);
        /* a paused run's span ends with the pause: it goes on in a new one */
        bool ok = x->rec.status == RUN_COMPLETED || x->rec.status == RUN_WAITING_APPROVAL ||
                  x->rec.status == RUN_WAITING_AUTH;
        if (!ok && x->rec.error_code[0]) obs_span_set_str(x->run_span, "error.type", x->rec.error_code);
        obs_span_end(x->run_span, ok ? OBS_STATUS_OK : OBS_STATUS_ERROR, ok ? NULL : x->rec.error_message);
        x->run_span = NULL;
        obs_gauge_add(obs_series_of(obs_m_active_runs(), NULL), -1);
    }
    if (x->core_state) x->core->destroy(x->core_state);
    x->core_state = NULL;
    run_texts_free(&x->texts);
    cJSON_Delete(x->tool_specs);
    cJSON_Delete(x->reply_tools);
    run_model_reply_args_free(x);
    cJSON_Delete(x->pending_calls);
    cJSON_Delete(x->assistant_msg);
    cJSON_Delete(x->results);
    cJSON_Delete(x->decisions);
    x->decisions = NULL;
    free(x->execs);
    guard_run_free(x->guard);
    x->guard = NULL;
    x->tool_specs = x->reply_tools = x->pending_calls = x->assistant_msg = x->results = NULL;
    x->execs = NULL;
    free(x->final_msg.content);
    free(x->final_msg.origin_json);
    x->final_msg.content = x->final_msg.origin_json = NULL;
    /* last of what the conversation held: the core's state referred to
     * the entry's messages (freed above) */
    free(x->hist_user);
    x->hist_user = NULL;
    /* (the bytes gauge is set by the home loop's sweep, once a second) */
    if (x->hist && x->hist_ok) history_cache_put(x->r->history, x->hist, RUNS_HISTORY_MAX);
    else history_entry_free(x->hist);
    x->hist = NULL;
    uv_close((uv_handle_t *)&x->wall_timer, run_handle_closed);
    if (x->behind) uv_close((uv_handle_t *)&x->start_timer, run_handle_closed);
}

static void run_job_work(uv_work_t *w)
{
    run_exec *x = w->data;
    x->work_fn(x);
}

/* A store job (or an end written behind) has completed: on the loop. */
static void run_job_complete(run_exec *x)
{
    if (x->orphan) {
        /* Its loop is shutting down (runs_thread_free): a finishing run ends
         * as it would have; any other is interrupted. */
        runs_thread *t = x->t;
        void (*done)(run_exec *) = x->work_done;
        x->work_fn = NULL;
        x->work_done = NULL;
        if (done == run_finish_done) done(x);
        else run_exec_shutdown(x);
        if (--t->orphans == 0) free(t);
        return;
    }
    void (*done)(run_exec *) = x->work_done;
    x->work_fn = NULL;
    x->work_done = NULL;
    done(x);
}

static void run_job_after(uv_work_t *w, int status)
{
    (void)status;
    run_job_complete(w->data);
}

void run_exec_job(run_exec *x, void (*fn)(run_exec *), void (*done)(run_exec *))
{
    x->work_fn = fn;
    x->work_done = done;
    x->work.data = x;
    uv_queue_work(x->t->loop, &x->work, run_job_work, run_job_after);
}

/* ---- the end ---- */

static void run_finish_work(run_exec *x)
{
    x->work_status = store_run_finish(x->r->st, &x->sc, &x->rec,
                                      x->final_msg.role[0] ? &x->final_msg : NULL);
}

/* ---- written behind ---- */

static void run_behind_written(void *arg, store_status st, const run_rec *stored)
{
    (void)stored;
    run_behind_state *b = arg;
    if (st != STORE_OK) atomic_store(&b->failed, 1);
    run_behind_unref(b);
}

static void run_held_free(run_exec *x)
{
    for (size_t i = 0; i < x->held_n; i++) message_rec_free(&x->held_msgs[i]);
    free(x->held_msgs);
    free(x->held_rec);
    x->held_msgs = NULL;
    x->held_rec = NULL;
    x->held_n = 0;
}

/* What the run holds (its start, a step) forgotten: it was queued. */
static void run_held_queued(run_exec *x)
{
    if (x->held_n) x->queued_steps = x->held_rec->steps;
    run_held_free(x);
    free(x->unwritten_start);
    x->unwritten_start = NULL;
    uv_timer_stop(&x->start_timer);
}

/* Queue what the run holds, in one write. false: it could not be queued
 * (the run fails at its next step). */
static bool run_queue_held(run_exec *x)
{
    if (!x->unwritten_start && !x->held_n) return true;
    store_run_behind w = {.start_content = x->unwritten_start, .msgs = x->held_msgs, .n = x->held_n,
                          .expect_steps = x->queued_steps};
    atomic_fetch_add(&x->behind_state->refs, 1);
    if (store_run_write_behind(x->r->st, &x->sc, x->held_n ? x->held_rec : &x->rec, &w,
                               run_behind_written, x->behind_state) != STORE_OK) {
        run_behind_unref(x->behind_state);
        atomic_store(&x->behind_state->failed, 1);
        return false;
    }
    run_held_queued(x);
    return true;
}

void run_exec_flush_writes(run_exec *x)
{
    if (x->behind) run_queue_held(x);
}

static void run_hold_timer_fired(uv_timer_t *t)
{
    run_queue_held(t->data);
}

static bool run_message_copy(message_rec *dst, const message_rec *src)
{
    *dst = *src;
    dst->content = src->content ? strdup(src->content) : NULL;
    dst->tool_calls_json = src->tool_calls_json ? strdup(src->tool_calls_json) : NULL;
    dst->origin_json = src->origin_json ? strdup(src->origin_json) : NULL;
    return (!src->content || dst->content) && (!src->tool_calls_json || dst->tool_calls_json) &&
           (!src->origin_json || dst->origin_json);
}

bool run_exec_write_step(run_exec *x, const message_rec *msgs, size_t n)
{
    /* joins what is held (the start, earlier steps): the timer that the
     * oldest of them started still bounds how long all of it waits */
    size_t at = x->held_n;
    x->held_msgs = xrealloc(x->held_msgs, (at + n) * sizeof *x->held_msgs);
    memset(x->held_msgs + at, 0, n * sizeof *x->held_msgs);
    if (!x->held_rec) x->held_rec = xmalloc(sizeof *x->held_rec);
    *x->held_rec = x->rec;            /* the counters as of this step */
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        ok = run_message_copy(&x->held_msgs[at + i], &msgs[i]);
        x->held_n = at + i + 1;
    }
    if (!ok) {
        run_held_free(x);
        atomic_store(&x->behind_state->failed, 1);
        return false;
    }
    if (!uv_is_active((uv_handle_t *)&x->start_timer))
        uv_timer_start(&x->start_timer, run_hold_timer_fired, RUN_WRITE_HOLD_MS, 0);
    return true;
}

/* On the loop, from the mailbox: the end written behind has committed. */
static void run_finish_posted(void *arg)
{
    run_exec *x = arg;
    if (x->work_status == STORE_OK) x->rec.final_seq = x->behind_final_seq;
    if (x->behind_broken) {
        /* a step before it is missing: the run was ended failed instead */
        x->rec.status = RUN_FAILED;
        snprintf(x->rec.error_code, sizeof x->rec.error_code, "store_error");
        snprintf(x->rec.error_message, sizeof x->rec.error_message, "a step of the run could not be recorded");
        free(x->final_msg.content);
        x->final_msg.content = NULL;
        x->final_msg.role[0] = '\0';
    }
    run_job_complete(x);
}

/* On the writer thread. */
static void run_finish_written(void *arg, store_status st, const run_rec *stored)
{
    run_exec *x = arg;
    x->work_status = st;
    x->behind_final_seq = stored->final_seq;
    x->behind_broken = st == STORE_OK && stored->status == RUN_FAILED && x->rec.status != RUN_FAILED;
    if (!mailbox_post(x->t->mbox, run_finish_posted, x))
        log_error("run %s: its end was written after its loop closed", x->rec.id);
}

/* Persist the end: written behind and waited for (through the writer's
 * callback and the loop's mailbox, no thread-pool hop), or a store job. */
static void run_exec_persist_end(run_exec *x)
{
    if (!x->behind) {
        run_exec_job(x, run_finish_work, run_finish_done);
        return;
    }
    /* what the run holds rides along: start, step and end in one write
     * (the step's counters are overwritten by the end's, in the same op) */
    store_run_behind w = {.start_content = x->unwritten_start, .msgs = x->held_msgs, .n = x->held_n,
                          .expect_steps = x->queued_steps,
                          .finish = true, .final = x->final_msg.role[0] ? &x->final_msg : NULL};
    x->work_fn = run_finish_work;      /* marks a store write in flight (never called) */
    x->work_done = run_finish_done;
    x->work_status = store_run_write_behind(x->r->st, &x->sc, &x->rec, &w, run_finish_written, x);
    if (x->work_status == STORE_OK) {
        run_held_queued(x);
        return;
    }
    /* not queued: said on a later turn, as a store job would */
    if (!mailbox_post(x->t->mbox, run_finish_posted, x)) {
        x->work_fn = NULL;
        x->work_done = NULL;
        run_finish_done(x);
    }
}

void run_exec_history_add(run_exec *x, const message_rec *msgs, size_t n)
{
    if (x->hist && x->hist_user) {
        /* the user's message, as the store records it, comes first */
        message_rec user = {.role = "user", .content = x->hist_user,
                            .origin_json = (char *)"{\"kind\":\"user\",\"untrusted\":false}"};
        if (!history_entry_add(x->hist, &user)) {
            history_entry_free(x->hist);
            x->hist = NULL;
        }
        free(x->hist_user);
        x->hist_user = NULL;
    }
    for (size_t i = 0; x->hist && i < n; i++) {
        if (!history_entry_add(x->hist, &msgs[i])) {
            history_entry_free(x->hist);   /* the cache must not be told less than was stored */
            x->hist = NULL;
        }
    }
}

/* The end is stored: whether the session's cached history (x->hist) is
 * now what the store holds — every write of the run landed, the final
 * answer added — and may go back to the cache at the release. */
static void run_finish_history(run_exec *x)
{
    if (!x->hist || x->work_status != STORE_OK || x->behind_broken ||
        (x->behind_state && atomic_load(&x->behind_state->failed)))
        return;
    run_exec_history_add(x, &x->final_msg, x->final_msg.role[0] ? 1 : 0);
    x->hist_ok = x->hist != NULL;
}

static void run_finish_done(run_exec *x)
{
    run_finish_history(x);
    /* (A run cancelled because its user was erased finds nothing left to
     * update: that is the erasure, not a failure.) */
    if (x->work_status != STORE_OK &&
        !(x->work_status == STORE_NOT_FOUND && strcmp(x->rec.error_code, "user_deleted") == 0)) {
        log_error("run %s: could not persist its end (%s)", x->rec.id,
                  store_status_text(x->work_status));
        /* An answer is never given as final unless it is stored: the
         * client hears that the run failed. */
        if (x->rec.status == RUN_COMPLETED) {
            x->rec.status = RUN_FAILED;
            snprintf(x->rec.error_code, sizeof x->rec.error_code, "store_error");
            snprintf(x->rec.error_message, sizeof x->rec.error_message,
                     "the run's end could not be recorded");
        }
    }
    x->final_msg.seq = x->rec.final_seq;
    /* Free the session, and the run's place under max_concurrent_runs,
     * before telling anyone: a client that sends its next message the
     * moment it reads this answer must find the session idle and its runs
     * not counting this one. (The count was released after the answer:
     * a next run arriving on another loop in between was refused with
     * concurrency_limit, seen as e2e governance "max_concurrent_runs"
     * failing once.) (Queued messages and cancel waiters are resumed
     * through mailboxes, on later loop turns.) */
    runs_registry_release(x->r, x->rec.session_id, x->rec.id);
    run_exec_uncount(x);
    /* Tell the client. */
    if (x->rec.status == RUN_COMPLETED) {
        cJSON *d = cJSON_CreateObject();
        cJSON *m = cJSON_AddObjectToObject(d, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", x->final_msg.content ? x->final_msg.content : "");
        cJSON *u = cJSON_AddObjectToObject(d, "usage");
        cJSON_AddNumberToObject(u, "input_tokens", (double)x->rec.input_tokens);
        cJSON_AddNumberToObject(u, "output_tokens", (double)x->rec.output_tokens);
        cJSON_AddNumberToObject(u, "cost_usd", (double)x->rec.cost_nusd / 1e9);
        run_event(x, "run.completed", d);
    } else {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "status", run_status_name(x->rec.status));
        cJSON *e = cJSON_AddObjectToObject(d, "error");
        if (x->refusal) cJSON_AddStringToObject(e, "type", x->refusal->type);
        cJSON_AddStringToObject(e, "code", x->rec.error_code);
        cJSON_AddStringToObject(e, "message", x->rec.error_message);
        if (x->refusal && x->refusal->retry_after_s)
            cJSON_AddNumberToObject(e, "retry_after_s", x->refusal->retry_after_s);
        run_event(x, "run.failed", d);
    }
    run_log_end(x->r->logs, x->rec.id);
    if (x->refusal && x->rec.steps <= 1) {
        /* Refused before the model said anything: the message itself was
         * refused (a limit or budget, the queue, the deadline), with when
         * to retry. The run is recorded failed. */
        runs_error e = {.kind = RUNS_ERR_GOVERNED, .code = x->refusal->code,
                        .message = x->refusal->message, .refusal = x->refusal,
                        .retry_after_s = x->refusal->retry_after_s, .run_id = x->rec.id};
        runs_outcome o = {.error = &e, .run = &x->rec};
        run_event_end(x, &o);
    } else {
        runs_outcome o = {.run = &x->rec, .message = x->final_msg.role[0] ? &x->final_msg : NULL};
        run_event_end(x, &o);
    }
    run_exec_release(x);
}

/* End the run with this status. `message` (taken, may be NULL) is the final
 * assistant message of a completed run. */
static void run_exec_end(run_exec *x, run_status status, const char *code, const char *text,
                         cJSON *message)
{
    if (x->finishing) {
        cJSON_Delete(message);
        return;
    }
    x->finishing = true;
    uv_timer_stop(&x->wall_timer);
    run_model_abort(x);
    run_tools_abort(x);
    x->rec.status = status;
    x->rec.finished_at = time_now_unix();
    if (code) {
        str_copy(x->rec.error_code, sizeof x->rec.error_code, code);
        str_copy(x->rec.error_message, sizeof x->rec.error_message, text ? text : code);
    }
    if (message) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(message, "content");
        snprintf(x->final_msg.role, sizeof x->final_msg.role, "assistant");
        x->final_msg.content = strdup(cJSON_IsString(c) ? c->valuestring : "");
        /* the model's reply carries its origin (model.c); a core that made
         * up its own final message gets one that says so */
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(message, ORIGIN_MEMBER);
        cJSON *own = cJSON_IsObject(o) ? NULL : origin_new(ORIGIN_MODEL, false);
        x->final_msg.origin_json = cJSON_PrintUnformatted(own ? own : o);
        cJSON_Delete(own);
        str_copy(x->final_msg.run_id, sizeof x->final_msg.run_id, x->rec.id);
        str_copy(x->final_msg.session_id, sizeof x->final_msg.session_id, x->rec.session_id);
        x->final_msg.created_at = x->rec.finished_at;
        cJSON_Delete(message);
    }
    /* The live status stays "running" until the end is stored: readers
     * then find it in the store (runs_registry_release), never an end
     * that a crash could still take back. */
    if (x->work_fn) return;   /* a store job is in flight: it ends the run when done */
    run_exec_persist_end(x);
}

bool run_exec_job_superseded(run_exec *x)
{
    if (x->finishing) {
        run_exec_persist_end(x);
        return true;
    }
    if (x->stopped) {
        run_exec_end(x, x->stop_status, x->stop_code, x->stop_message, NULL);
        return true;
    }
    return false;
}

void run_exec_fail(run_exec *x, const char *code, const char *message)
{
    run_exec_end(x, RUN_FAILED, code, message, NULL);
}

/* Cancel, interrupt, wall time: stop whatever is in flight and end. */
void run_exec_stop(run_exec *x, run_status status, const char *code, const char *message)
{
    if (x->finishing || x->stopped) return;
    x->stopped = true;
    x->stop_status = status;
    x->stop_code = code;
    str_copy(x->stop_message, sizeof x->stop_message, message);
    if (x->work_fn) return;   /* the store job's completion sees `stopped` */
    run_exec_end(x, status, code, x->stop_message, NULL);
}

static void run_wall_timeout(uv_timer_t *t)
{
    run_exec *x = t->data;
    char msg[128];
    snprintf(msg, sizeof msg, "the run took longer than the agent's limit of %u ms",
             x->agent->max_wall_ms);
    run_exec_stop(x, RUN_FAILED, "max_wall_time", msg);
}

/* ---- effects ---- */

/* What the guards see of an effect. */
static guard_effect run_guard_effect(const step_effect *e)
{
    switch (e->kind) {
    case STEP_EFFECT_CALL_MODEL:
        return (guard_effect){.kind = GUARD_EFFECT_MODEL_CALL, .json = e->request, .context = &e->context};
    case STEP_EFFECT_CALL_TOOLS: return (guard_effect){.kind = GUARD_EFFECT_TOOL_CALLS, .json = e->tool_calls};
    case STEP_EFFECT_FINISH: return (guard_effect){.kind = GUARD_EFFECT_FINISH, .json = e->message};
    default: return (guard_effect){0};
    }
}

void run_exec_effect(run_exec *x, step_effect *e)
{
    if (e->kind != STEP_EFFECT_FAIL) {
        /* The guards before every effect; one that does not pass ends the
         * run (the refusals of single tool calls are toolrun.c's). */
        guard_effect ge = run_guard_effect(e);
        guard_decision d = guard_before_effect(x->guard, &x->guard_ctx, &ge);
        run_guard_verdict_events(x);
        if (d.verdict != GUARD_ALLOW) {
            run_exec_fail(x, d.code, d.reason);
            return;
        }
    }
    switch (e->kind) {
    case STEP_EFFECT_CALL_MODEL: {
        cJSON *request = e->request;
        e->request = NULL;
        guard_pii_request(&x->guard_ctx, request);   /* the agent's pii.input: redact */
        x->rec.steps++;
        run_model_call(x, request, &e->context);
        break;
    }
    case STEP_EFFECT_CALL_TOOLS: {
        cJSON *calls = e->tool_calls;
        e->tool_calls = NULL;
        run_tools_call(x, calls);
        break;
    }
    case STEP_EFFECT_FINISH: {
        cJSON *m = e->message;
        e->message = NULL;
        run_exec_end(x, RUN_COMPLETED, NULL, NULL, m);
        break;
    }
    case STEP_EFFECT_FAIL:
    default:
        run_exec_fail(x, e->error_code ? e->error_code : "agent_error",
                      e->error_message[0] ? e->error_message : "the agent core failed");
        break;
    }
}

static void run_event_clear(step_event *ev)
{
    cJSON_Delete(ev->history);
    cJSON_Delete(ev->message);
    cJSON_Delete(ev->results);
}

/* The decisions before an effect that the client is told of (taint,
 * exfiltration), as `guard.flagged` events. */
void run_guard_verdict_events(run_exec *x)
{
    cJSON *events = guard_take_events(x->guard), *e;
    if (!events) return;
    while ((e = cJSON_DetachItemFromArray(events, 0))) run_event(x, "guard.flagged", e);
    cJSON_Delete(events);
}

void run_guard_events(run_exec *x, guard_review *v)
{
    if (!v->events) return;
    cJSON *e;
    while ((e = cJSON_DetachItemFromArray(v->events, 0))) run_event(x, "guard.flagged", e);
    cJSON_Delete(v->events);
    v->events = NULL;
}

void run_exec_feed(run_exec *x, step_event *ev)
{
    if (x->stopped) {
        run_event_clear(ev);
        run_exec_end(x, x->stop_status, x->stop_code, x->stop_message, NULL);
        return;
    }
    /* a step written behind did not commit: nothing after it may land */
    if (x->behind_state && atomic_load(&x->behind_state->failed)) {
        run_event_clear(ev);
        run_exec_fail(x, "store_error", "the step could not be recorded");
        return;
    }
    /* The guards after every result, before the core sees it: the start
     * (the user's message, the history), a resume, a reply, tool results
     * (which the guard may rewrite: spotlighted, withheld). */
    guard_result gr = {0};
    switch (ev->kind) {
    /* the start and a resume also see the tools offered: a poisoned MCP
     * tool description is spotlighted or taken out of x->tool_specs here,
     * before the core's first model call copies them */
    case STEP_EVENT_START:
        gr = (guard_result){GUARD_RESULT_START, ev->message, ev->history, x->tool_specs};
        break;
    case STEP_EVENT_RESUME:
        gr = (guard_result){GUARD_RESULT_RESUME, NULL, ev->history, x->tool_specs};
        break;
    case STEP_EVENT_MODEL_REPLY: gr = (guard_result){GUARD_RESULT_MODEL_REPLY, ev->message, NULL, NULL}; break;
    /* tool results were reviewed before they were recorded (toolrun.c),
     * so that the transcript — the context of later runs — holds what
     * the model was shown */
    default: break;
    }
    if (gr.kind) {
        guard_review v = guard_after_result(x->guard, &x->guard_ctx, &gr);
        run_guard_events(x, &v);
        if (v.flagged) {
            run_event_clear(ev);
            run_exec_fail(x, v.code, v.reason);
            return;
        }
    }
    step_effect e = x->core->step(x->core_state, ev);
    run_exec_effect(x, &e);
    step_effect_clear(&e);
}

/* ---------------------------------------------------------------- starting */

run_exec *run_exec_new(runs_thread *t, const scope *sc, const run_rec *rec,
                       tools_run_set *set, const obs_trace_ctx *trace)
{
    run_exec *x = xcalloc(1, sizeof *x);
    x->t = t;
    x->r = t->r;
    x->sc = *sc;
    x->rec = *rec;
    x->set = *set;                    /* the run owns its snapshot from here */
    if (set->agent == &set->own_agent) x->set.agent = &x->set.own_agent;
    memset(set, 0, sizeof *set);
    x->agent = x->set.agent;
    const agent_cfg *a = x->agent;
    /* The run's span: a child of the request that started it, though it
     * outlives that request when the client goes away. */
    char span_name[96];
    snprintf(span_name, sizeof span_name, "run %s", a->name);
    x->run_span = obs_span_begin(trace, span_name, OBS_SPAN_INTERNAL, sc);
    obs_span_set_str(x->run_span, "brigade.run_id", rec->id);
    obs_span_set_str(x->run_span, "brigade.session_id", rec->session_id);
    obs_span_set_str(x->run_span, "gen_ai.agent.name", a->name);
    obs_gauge_add(obs_series_of(obs_m_active_runs(), NULL), 1);
    buf_init(&x->reply_text);
    x->tool_specs = a->n_tools ? tools_openai_specs(x->set.tools, a->tools, a->n_tools) : NULL;
    x->core_agent.name = a->name;
    x->core_agent.model = a->model->upstream_model;
    x->core_agent.system_prompt = a->system_prompt;
    x->core_agent.tools = x->tool_specs;
    x->core_agent.max_steps = a->max_steps;
    x->core_agent.max_tool_calls = a->max_tool_calls;
    x->core_agent.max_output_tokens = a->max_output_tokens;
    x->core_agent.context_tokens = a->context_tokens;
    x->core = t->r->core;
    x->guard = guard_run_new();
    x->guard_ctx = (guard_ctx){.sc = &x->sc, .agent = x->agent, .tools = x->set.tools,
                               .run_id = x->rec.id, .session_id = x->rec.session_id};
    x->core_state = x->core->create(&x->core_agent);

    uv_timer_init(t->loop, &x->wall_timer);
    x->wall_timer.data = x;
    x->open_handles = 1;
    x->queued_steps = rec->steps;
    if (store_runs_write_behind(t->r->st)) {
        x->behind = true;
        x->behind_state = xcalloc(1, sizeof *x->behind_state);
        atomic_init(&x->behind_state->failed, 0);
        atomic_init(&x->behind_state->refs, 1);
        uv_timer_init(t->loop, &x->start_timer);
        x->start_timer.data = x;
        x->open_handles++;
    }
    x->next = t->runs;
    if (t->runs) t->runs->prev = x;
    t->runs = x;
    if (x->core_state) uv_timer_start(&x->wall_timer, run_wall_timeout, a->max_wall_ms, 0);
    return x;
}

void run_exec_begin(run_start *s)
{
    runs_thread *t = s->t;
    run_exec *x = run_exec_new(t, &s->sc, &s->run, &s->set, s->has_trace ? &s->trace : NULL);
    x->sub = s->sub;                  /* hears the end; its events after on_start */
    s->sub = NULL;
    x->counted = s->counted;          /* the run now holds the user's slot */
    x->slot = s->slot;
    s->counted = false;
    s->slot.node = NULL;
    x->session_spent_nusd = s->session_spent_nusd;
    runs_registry_started(t->r, x->rec.session_id, x->rec.id, x);

    cJSON *history = s->history;
    s->history = NULL;
    char *content = s->content;
    s->content = NULL;
    x->hist = s->hist;                /* history refers to it: it lives as long as the run */
    s->hist = NULL;
    /* the run's first stored message: added to the entry with the next
     * ones (a run held open on its model keeps only the text) */
    if (x->hist && !(x->hist_user = strdup(content))) {
        history_entry_free(x->hist);
        x->hist = NULL;
    }

    if (!x->core_state) {
        if (s->start_unwritten) x->unwritten_start = content;   /* ends with the failure */
        else free(content);
        cJSON_Delete(history);
        run_exec_fail(x, "internal_error", "out of memory");
        return;
    }
    if (x->sub) {
        x->sub->run = x;
        if (x->sub->on_start && !x->sub->on_start(x->sub, &x->rec)) {
            x->sub->run = NULL;
            x->sub = NULL;             /* already gone: the run goes on */
        } else {
            x->sub_started = true;
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "session_id", x->rec.session_id);
            cJSON_AddStringToObject(d, "agent", x->rec.agent);
            run_event(x, "run.started", d);
        }
    }
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "role", "user");
    cJSON_AddStringToObject(msg, "content", content);
    origin_set(msg, origin_new(ORIGIN_USER, false));   /* as store_run_start records it */
    if (s->start_unwritten) {
        /* written behind: the start rides with the run's first write */
        x->unwritten_start = content;
        uv_timer_start(&x->start_timer, run_hold_timer_fired, RUN_WRITE_HOLD_MS, 0);
    } else {
        free(content);
    }
    step_event ev = {.kind = STEP_EVENT_START, .history = history, .message = msg};
    run_exec_feed(x, &ev);
}
