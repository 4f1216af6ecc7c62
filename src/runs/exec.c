/* exec.c — a run from its message to its end: load the session, claim it,
 * persist the user's message and the run, then loop — ask the core for the
 * next effect, perform it (model.c, toolrun.c), feed the result back — until
 * the core finishes or fails, a limit is hit, or the run is cancelled. The
 * end is persisted before the client hears of it.
 *
 * Everything here runs on the loop of the request that started the run;
 * store work goes to the thread pool, one job at a time per run. */
#include "runs/runs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/timeutil.h"

#define RUNS_HISTORY_MAX 200   /* stored messages loaded as a run's history */

/* ---------------------------------------------------------------- threads */

runs_thread *runs_thread_new(runs *r, uv_loop_t *loop, upstream *up)
{
    runs_thread *t = calloc(1, sizeof *t);
    if (!t) abort();
    t->r = r;
    t->loop = loop;
    t->up = up;
    t->mbox = mailbox_new(loop);
    return t;
}

void runs_set_gate(runs *r, struct gate *g, struct identity *id)
{
    r->gate = g;
    r->identity = id;
}

void runs_thread_set_gate(runs_thread *t, struct gate_thread *gt) { t->gate = gt; }

static void run_exec_release(run_exec *x);
static void run_finish_done(run_exec *x);

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
    store_run_finish(x->r->st, &x->sc, &x->rec, x->final_msg.role[0] ? &x->final_msg : NULL);
    if (x->sub) {
        http_request *req = x->sub;
        x->sub = NULL;
        req->on_abort = NULL;
        req->on_drain = NULL;
        if (x->stream_begun) http_stream_end(req);
        else http_respond_error(req, 503, "overloaded_error", "server_shutdown",
                                "the server shut down while the run was in progress", NULL);
    }
    runs_registry_release(x->r, x->rec.session_id, x->rec.id);
    run_exec_release(x);
}

void runs_thread_free(runs_thread *t)
{
    if (!t) return;
    t->closing = true;
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

/* ---------------------------------------------------------------- JSON */

cJSON *runs_json_run(const run_rec *run)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", run->id);
    cJSON_AddStringToObject(o, "object", "run");
    cJSON_AddStringToObject(o, "session_id", run->session_id);
    cJSON_AddStringToObject(o, "agent", run->agent);
    cJSON_AddStringToObject(o, "status", run_status_name(run->status));
    if (run->error_code[0]) {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "code", run->error_code);
        cJSON_AddStringToObject(e, "message", run->error_message);
    } else {
        cJSON_AddNullToObject(o, "error");
    }
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "input_tokens", (double)run->input_tokens);
    cJSON_AddNumberToObject(u, "output_tokens", (double)run->output_tokens);
    cJSON_AddNumberToObject(u, "cost_usd", (double)run->cost_nusd / 1e9);
    cJSON_AddNumberToObject(o, "steps", (double)run->steps);
    cJSON_AddNumberToObject(o, "tool_calls", (double)run->tool_calls);
    cJSON_AddNumberToObject(o, "created_at", (double)run->created_at);
    if (run->started_at) cJSON_AddNumberToObject(o, "started_at", (double)run->started_at);
    else cJSON_AddNullToObject(o, "started_at");
    if (run->finished_at) cJSON_AddNumberToObject(o, "finished_at", (double)run->finished_at);
    else cJSON_AddNullToObject(o, "finished_at");
    return o;
}

/* A stored message as the model sees it (OpenAI chat form). */
static cJSON *runs_model_message(const message_rec *m)
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
    return o;
}

/* The same, as the API shows it: with its place in the transcript. */
cJSON *runs_json_message(const message_rec *m)
{
    cJSON *o = runs_model_message(m);
    cJSON_AddNumberToObject(o, "seq", (double)m->seq);
    cJSON_AddStringToObject(o, "object", "message");
    if (m->run_id[0]) cJSON_AddStringToObject(o, "run_id", m->run_id);
    else cJSON_AddNullToObject(o, "run_id");
    cJSON_AddNumberToObject(o, "created_at", (double)m->created_at);
    return o;
}

/* ---------------------------------------------------------------- answering a start */

static void run_start_free(run_start *s)
{
    if (!s) return;
    if (s->counted) gate_run_end(s->t->r->gate, s->sc.tenant_id, s->sc.user_id);
    free(s->content);
    cJSON_Delete(s->history);
    free(s);
}

/* Take one of the user's concurrent runs (max_concurrent_runs); false with
 * s->refusal filled if none is free. Thread-safe (called on the pool too). */
static bool run_start_count(run_start *s)
{
    runs *r = s->t->r;
    if (!r->gate || s->counted) return true;
    runs_who w;
    runs_gate_who(r, &s->sc, &w);
    if (!gate_run_begin(r->gate, &w.who, &s->refusal)) {
        s->refused = true;
        return false;
    }
    s->counted = true;
    return true;
}

/* Answer a governance refusal: its status, the limit it names, and when
 * to retry. */
static void run_start_fail_refused(run_start *s)
{
    http_request *req = s->req;
    req->user = NULL;
    if (s->refusal.retry_after_s) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", s->refusal.retry_after_s);
        http_add_header(req, "retry-after", ra);
    }
    http_respond_error(req, s->refusal.status, s->refusal.type, s->refusal.code,
                       s->refusal.message, NULL);
    run_start_free(s);
}

static void run_start_fail(run_start *s, int status, const char *type, const char *code,
                           const char *message)
{
    http_request *req = s->req;
    req->user = NULL;
    /* a full storage quota does not empty itself: no point retrying */
    if (status == 503 || (status == 429 && strcmp(code, "storage_quota_exceeded") != 0))
        http_add_header(req, "retry-after", "1");
    http_respond_error(req, status, type, code, message, NULL);
    run_start_free(s);
}

/* ---------------------------------------------------------------- the run's lifetime */

static void run_handle_closed(uv_handle_t *h)
{
    run_exec *x = h->data;
    if (--x->open_handles == 0) {
        buf_free(&x->reply_text);
        buf_free(&x->sse);
        free(x);
    }
}

/* Unlink, free what the run holds, close its handles (the struct goes with
 * the last close callback). */
static void run_exec_release(run_exec *x)
{
    runs_thread *t = x->t;
    if (x->prev) x->prev->next = x->next;
    else if (t->runs == x) t->runs = x->next;
    if (x->next) x->next->prev = x->prev;
    x->next = x->prev = NULL;
    if (x->counted) {
        x->counted = false;
        gate_run_end(x->r->gate, x->sc.tenant_id, x->sc.user_id);
    }
    if (x->run_span) {
        obs_span_set_str(x->run_span, "brigade.run.status", run_status_name(x->rec.status));
        obs_span_set_int(x->run_span, "brigade.run.steps", x->rec.steps);
        obs_span_set_int(x->run_span, "brigade.run.tool_calls", x->rec.tool_calls);
        obs_span_set_int(x->run_span, "gen_ai.usage.input_tokens", x->rec.input_tokens);
        obs_span_set_int(x->run_span, "gen_ai.usage.output_tokens", x->rec.output_tokens);
        obs_span_set_double(x->run_span, "brigade.cost_usd", (double)x->rec.cost_nusd / 1e9);
        if (x->queue_wait_ms) obs_span_set_int(x->run_span, "brigade.queue.wait_ms", x->queue_wait_ms);
        bool ok = x->rec.status == RUN_COMPLETED;
        if (!ok && x->rec.error_code[0]) obs_span_set_str(x->run_span, "error.type", x->rec.error_code);
        obs_span_end(x->run_span, ok ? OBS_STATUS_OK : OBS_STATUS_ERROR, ok ? NULL : x->rec.error_message);
        x->run_span = NULL;
        obs_gauge_add(obs_series_of(obs_m_active_runs(), NULL), -1);
    }
    if (x->core_state) x->core->destroy(x->core_state);
    x->core_state = NULL;
    cJSON_Delete(x->tool_specs);
    cJSON_Delete(x->reply_tools);
    cJSON_Delete(x->pending_calls);
    cJSON_Delete(x->assistant_msg);
    cJSON_Delete(x->results);
    free(x->execs);
    free(x->seen_calls);
    free(x->seen_counts);
    x->seen_calls = NULL;
    x->seen_counts = NULL;
    x->n_seen = x->cap_seen = 0;
    x->tool_specs = x->reply_tools = x->pending_calls = x->assistant_msg = x->results = NULL;
    x->execs = NULL;
    free(x->final_msg.content);
    x->final_msg.content = NULL;
    uv_close((uv_handle_t *)&x->wall_timer, run_handle_closed);
    uv_close((uv_handle_t *)&x->ping_timer, run_handle_closed);
}

static void run_job_work(uv_work_t *w)
{
    run_exec *x = w->data;
    x->work_fn(x);
}

static void run_job_after(uv_work_t *w, int status)
{
    (void)status;
    run_exec *x = w->data;
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

static void run_finish_done(run_exec *x)
{
    /* (A run cancelled because its user was erased finds nothing left to
     * update: that is the erasure, not a failure.) */
    if (x->work_status != STORE_OK &&
        !(x->work_status == STORE_NOT_FOUND && strcmp(x->rec.error_code, "user_deleted") == 0))
        log_error("run %s: could not persist its end (%s)", x->rec.id,
                  store_status_text(x->work_status));
    x->final_msg.seq = x->rec.final_seq;
    /* Free the session before telling anyone: a client that sends its next
     * message the moment it reads this answer must find the session idle.
     * (Queued messages and cancel waiters are resumed through mailboxes, on
     * later loop turns.) */
    runs_registry_release(x->r, x->rec.session_id, x->rec.id);
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
        if (x->refused) cJSON_AddStringToObject(e, "type", x->refusal.type);
        cJSON_AddStringToObject(e, "code", x->rec.error_code);
        cJSON_AddStringToObject(e, "message", x->rec.error_message);
        if (x->refused && x->refusal.retry_after_s)
            cJSON_AddNumberToObject(e, "retry_after_s", x->refusal.retry_after_s);
        run_event(x, "run.failed", d);
    }
    if (x->sub) {
        http_request *req = x->sub;
        x->sub = NULL;
        req->on_abort = NULL;
        req->on_drain = NULL;
        req->user = NULL;
        if (x->stream_begun) {
            http_stream_end(req);
        } else if (x->refused && x->rec.steps <= 1) {
            /* Refused before the model said anything: the request itself
             * was refused (429 a limit or budget, 503 the queue, 504 the
             * deadline), with when to retry. The run is recorded failed. */
            if (x->refusal.retry_after_s) {
                char ra[16];
                snprintf(ra, sizeof ra, "%u", x->refusal.retry_after_s);
                http_add_header(req, "retry-after", ra);
            }
            http_add_header(req, "x-brigade-run-id", x->rec.id);
            http_respond_error(req, x->refusal.status, x->refusal.type, x->refusal.code,
                               x->refusal.message, NULL);
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "run", runs_json_run(&x->rec));
            if (x->final_msg.role[0]) cJSON_AddItemToObject(o, "message", runs_json_message(&x->final_msg));
            else cJSON_AddNullToObject(o, "message");
            char *body = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            http_respond(req, 200, "application/json", body ? body : "{}", body ? strlen(body) : 2);
            free(body);
        }
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
    uv_timer_stop(&x->ping_timer);
    run_model_abort(x);
    run_tools_abort(x);
    x->rec.status = status;
    x->rec.finished_at = time_now_unix();
    if (code) {
        snprintf(x->rec.error_code, sizeof x->rec.error_code, "%s", code);
        snprintf(x->rec.error_message, sizeof x->rec.error_message, "%s", text ? text : code);
    }
    if (message) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(message, "content");
        snprintf(x->final_msg.role, sizeof x->final_msg.role, "assistant");
        x->final_msg.content = strdup(cJSON_IsString(c) ? c->valuestring : "");
        snprintf(x->final_msg.run_id, sizeof x->final_msg.run_id, "%s", x->rec.id);
        snprintf(x->final_msg.session_id, sizeof x->final_msg.session_id, "%s", x->rec.session_id);
        x->final_msg.created_at = x->rec.finished_at;
        cJSON_Delete(message);
    }
    runs_registry_set_status(x->r, x->rec.id, status);
    if (x->work_fn) return;   /* a store job is in flight: it ends the run when done */
    run_exec_job(x, run_finish_work, run_finish_done);
}

bool run_exec_job_superseded(run_exec *x)
{
    if (x->finishing) {
        run_exec_job(x, run_finish_work, run_finish_done);
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
    snprintf(x->stop_message, sizeof x->stop_message, "%s", message);
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

static void run_ping(uv_timer_t *t)
{
    run_exec *x = t->data;
    static const char ping[] = ": ping\n\n";
    if (x->sub && x->stream_begun) http_stream_write(x->sub, ping, sizeof ping - 1);
}

/* ---- effects ---- */

void run_exec_effect(run_exec *x, step_effect *e)
{
    switch (e->kind) {
    case STEP_EFFECT_CALL_MODEL: {
        cJSON *request = e->request;
        e->request = NULL;
        x->rec.steps++;
        run_model_call(x, request);
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

void run_exec_feed(run_exec *x, step_event *ev)
{
    if (x->stopped) {
        cJSON_Delete(ev->history);
        cJSON_Delete(ev->message);
        cJSON_Delete(ev->results);
        run_exec_end(x, x->stop_status, x->stop_code, x->stop_message, NULL);
        return;
    }
    step_effect e = x->core->step(x->core_state, ev);
    run_exec_effect(x, &e);
    step_effect_clear(&e);
}

/* ---------------------------------------------------------------- starting */

static void run_sub_abort(http_request *req)
{
    run_exec *x = req->user;
    if (!x) return;
    /* The client went away: the run goes on; its result is read later. */
    x->sub = NULL;
    req->user = NULL;
    req->on_abort = NULL;
    req->on_drain = NULL;
    if (x->stream_begun) http_stream_end(req);
    else http_respond(req, 499, NULL, NULL, 0);
}

static void run_sub_drain(http_request *req)
{
    run_exec *x = req->user;
    if (x && x->call) upstream_call_resume(x->call);
}

static void run_exec_begin(run_start *s)
{
    runs_thread *t = s->t;
    run_exec *x = calloc(1, sizeof *x);
    if (!x) abort();
    x->t = t;
    x->r = t->r;
    x->sc = s->sc;
    x->rec = s->run;
    x->agent = s->agent;
    x->stream = s->stream;
    x->sub = s->req;
    x->counted = s->counted;          /* the run now holds the user's slot */
    s->counted = false;
    x->session_spent_nusd = s->session_spent_nusd;
    /* The run's span: a child of the request that started it, though it
     * outlives that request when the client goes away. */
    char span_name[96];
    snprintf(span_name, sizeof span_name, "run %s", s->agent->name);
    x->run_span = obs_span_begin(s->has_trace ? &s->trace : NULL, span_name, OBS_SPAN_INTERNAL, &s->sc);
    obs_span_set_str(x->run_span, "brigade.run_id", s->run.id);
    obs_span_set_str(x->run_span, "brigade.session_id", s->run.session_id);
    obs_span_set_str(x->run_span, "gen_ai.agent.name", s->agent->name);
    obs_gauge_add(obs_series_of(obs_m_active_runs(), NULL), 1);
    buf_init(&x->reply_text);
    buf_init(&x->sse);
    const agent_cfg *a = s->agent;
    x->tool_specs = a->n_tools ? tools_openai_specs(t->r->tools, a->tools, a->n_tools) : NULL;
    x->core_agent.name = a->name;
    x->core_agent.model = a->model->upstream_model;
    x->core_agent.system_prompt = a->system_prompt;
    x->core_agent.tools = x->tool_specs;
    x->core_agent.max_steps = a->max_steps;
    x->core_agent.max_tool_calls = a->max_tool_calls;
    x->core_agent.max_output_tokens = a->max_output_tokens;
    x->core_agent.context_tokens = a->context_tokens;
    x->core = &step_core_toolcall;
    x->core_state = x->core->create(&x->core_agent);

    uv_timer_init(t->loop, &x->wall_timer);
    uv_timer_init(t->loop, &x->ping_timer);
    x->wall_timer.data = x->ping_timer.data = x;
    x->open_handles = 2;
    x->next = t->runs;
    if (t->runs) t->runs->prev = x;
    t->runs = x;
    runs_registry_started(t->r, x->rec.session_id, x->rec.id, x);

    http_request *req = s->req;
    req->user = x;
    req->on_abort = run_sub_abort;
    req->on_drain = run_sub_drain;
    cJSON *history = s->history;
    s->history = NULL;
    char *content = s->content;
    s->content = NULL;
    run_start_free(s);

    if (!x->core_state) {
        free(content);
        cJSON_Delete(history);
        run_exec_fail(x, "internal_error", "out of memory");
        return;
    }
    uv_timer_start(&x->wall_timer, run_wall_timeout, a->max_wall_ms, 0);
    if (x->stream) {
        if (req->aborted) {
            run_sub_abort(req);
        } else {
            http_stream_begin(req, 200, "text/event-stream");
            x->stream_begun = true;
            uv_timer_start(&x->ping_timer, run_ping, RUNS_PING_MS, RUNS_PING_MS);
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "session_id", x->rec.session_id);
            cJSON_AddStringToObject(d, "agent", x->rec.agent);
            run_event(x, "run.started", d);
        }
    }
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "role", "user");
    cJSON_AddStringToObject(msg, "content", content);
    free(content);
    step_event ev = {.kind = STEP_EVENT_START, .history = history, .message = msg};
    run_exec_feed(x, &ev);
}

/* Thread pool: the user's message and the run, in one transaction; then
 * the history the model will see (complete turns, oldest first). */
static void run_start_persist_work(http_request *req)
{
    run_start *s = req->user;
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
    s->st = store_run_start(st, &s->sc, s->session_id, s->agent->name, s->content, RUN_RUNNING,
                            &s->run);
    if (s->st == STORE_QUOTA || s->st == STORE_TOO_LARGE)   /* this thread's: copy it now */
        store_quota_describe(store_quota_refused(), s->sc.tier, s->quota_why, sizeof s->quota_why);
    if (s->st != STORE_OK) return;
    message_rec *msgs = NULL;
    size_t n = 0;
    s->history = cJSON_CreateArray();
    if (store_message_tail(st, &s->sc, s->session_id, RUNS_HISTORY_MAX, &msgs, &n) == STORE_OK) {
        size_t first = 0;
        /* Never start the history on a tool result whose call was cut off. */
        while (first < n && strcmp(msgs[first].role, "tool") == 0) first++;
        for (size_t i = first; i < n; i++) {
            if (msgs[i].seq == s->run.user_seq) continue;   /* the new message: the START event */
            cJSON_AddItemToArray(s->history, runs_model_message(&msgs[i]));
        }
        store_free_messages(msgs, n);
    }
}

static void run_start_persist_done(http_request *req)
{
    run_start *s = req->user;
    if (s->lost_code) {
        runs_registry_release(s->t->r, s->session_id, NULL);
        http_add_header(s->req, "www-authenticate", "Bearer realm=\"brigade\"");
        char msg[200];
        snprintf(msg, sizeof msg, "%s; the message was not run", s->lost_why);
        run_start_fail(s, 401, "authentication_error", s->lost_code, msg);
        return;
    }
    if (s->st != STORE_OK) {
        runs_registry_release(s->t->r, s->session_id, NULL);
        if (s->st == STORE_NOT_FOUND)
            run_start_fail(s, 404, "not_found_error", "not_found", "session not found");
        else if (s->st == STORE_QUOTA || s->st == STORE_TOO_LARGE) {
            char msg[400];
            snprintf(msg, sizeof msg, "storage quota reached: %s; start a new session, or ask a "
                     "tenant admin for a tier with more", s->quota_why);
            run_start_fail(s, 429, "insufficient_quota", "storage_quota_exceeded", msg);
        } else
            run_start_fail(s, 500, "api_error", "store_error",
                           "the run could not be recorded; nothing was started");
        return;
    }
    run_exec_begin(s);
}

static void run_start_persist(run_start *s)
{
    http_request_defer(s->req, run_start_persist_work, run_start_persist_done);
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
        run_start_fail(s, 503, "overloaded_error", "server_shutdown", "the server is shutting down");
        return;
    }
    if (!run_start_count(s)) {
        runs_registry_release(s->t->r, s->session_id, NULL);
        run_start_fail_refused(s);
        return;
    }
    run_start_persist(s);
}

/* Thread pool: the session must be the caller's, its agent still
 * configured and allowed for the caller's tier. */
static void run_start_load_work(http_request *req)
{
    run_start *s = req->user;
    session_rec sess;
    s->st = store_session_get(s->t->r->st, &s->sc, s->session_id, &sess);
    if (s->st != STORE_OK) return;
    s->agent = config_find_agent(s->t->r->cfg, sess.agent);
    if (!s->agent)
        snprintf(s->error, sizeof s->error,
                 "this session's agent \"%s\" is no longer configured on this server", sess.agent);
    else if (!config_agent_allows_tier(s->agent, s->sc.tier))
        snprintf(s->error, sizeof s->error, "your tier may not use agent \"%s\"", sess.agent);
    session_rec_free(&sess);
    if (s->error[0]) return;
    if (s->agent->max_cost_usd_per_session > 0)
        store_session_spent(s->t->r->st, &s->sc, s->session_id, &s->session_spent_nusd);
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
        run_start_persist_work(req);
    }
}

static void run_start_load_done(http_request *req)
{
    run_start *s = req->user;
    s->loaded = true;
    if (s->refused) {
        run_start_fail_refused(s);
        return;
    }
    if (s->persisted_in_load) {
        run_start_persist_done(req);   /* claimed and written by the same job */
        return;
    }
    if (s->st == STORE_NOT_FOUND) {
        run_start_fail(s, 404, "not_found_error", "not_found", "session not found");
        return;
    }
    if (s->st != STORE_OK) {
        run_start_fail(s, 500, "api_error", "store_error", "the session could not be read");
        return;
    }
    if (s->error[0]) {
        run_start_fail(s, s->agent ? 403 : 409, s->agent ? "permission_error" : "conflict_error",
                       s->agent ? "agent_not_allowed" : "agent_unavailable", s->error);
        return;
    }
    if (s->claim < 0) {
        char msg[200];
        if (s->full) {
            snprintf(msg, sizeof msg, "session busy and %d messages already wait for it",
                     RUNS_QUEUE_MAX);
            run_start_fail(s, 503, "overloaded_error", "session_queue_full", msg);
        } else {
            snprintf(msg, sizeof msg,
                     "session busy: run %s is in progress (send if_busy \"enqueue\" or "
                     "\"interrupt\" to wait for it or stop it)", s->busy[0] ? s->busy : "(starting)");
            run_start_fail(s, 409, "conflict_error", "session_busy", msg);
        }
    } else if (s->resume_pending) {
        /* our turn came while this job finished */
        if (!run_start_count(s)) {
            runs_registry_release(s->t->r, s->session_id, NULL);
            run_start_fail_refused(s);
            return;
        }
        run_start_persist(s);
    }
    /* else queued: run_start_resume continues when the session frees. */
}

static void run_start_abort(http_request *req)
{
    /* A client that leaves while its message waits: the message still runs
     * when its turn comes (the API's rule); nothing to do here. */
    (void)req;
}

void runs_post_message(runs_thread *t, http_request *req, const scope *sc, const char *session_id,
                       const char *content, bool stream, runs_if_busy if_busy,
                       const obs_trace_ctx *trace)
{
    run_start *s = calloc(1, sizeof *s);
    if (!s) abort();
    if (trace) {
        s->trace = *trace;
        s->has_trace = true;
    }
    s->t = t;
    s->req = req;
    s->sc = *sc;
    snprintf(s->session_id, sizeof s->session_id, "%s", session_id);
    s->content = strdup(content);
    if (!s->content) abort();
    s->stream = stream;
    s->if_busy = if_busy;
    req->user = s;
    req->on_abort = run_start_abort;
    if (t->closing) {
        run_start_fail(s, 503, "overloaded_error", "server_shutdown", "the server is shutting down");
        return;
    }
    http_request_defer(req, run_start_load_work, run_start_load_done);
}

/* ---------------------------------------------------------------- cancel */

typedef struct run_cancel_req {
    runs_thread  *t;
    http_request *req;
    scope         sc;
    char          run_id[ID_MAX];
    store_status  st;
    run_rec       run;
} run_cancel_req;

static void run_cancel_read_work(http_request *req)
{
    run_cancel_req *c = req->user;
    c->st = store_run_get(c->t->r->st, &c->sc, c->run_id, &c->run);
}

static void run_cancel_read_done(http_request *req)
{
    run_cancel_req *c = req->user;
    req->user = NULL;
    if (c->st == STORE_OK) {
        cJSON *o = runs_json_run(&c->run);
        char *body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        http_respond(req, 200, "application/json", body ? body : "{}", body ? strlen(body) : 2);
        free(body);
    } else if (c->st == STORE_NOT_FOUND) {
        http_respond_error(req, 404, "not_found_error", "not_found", "run not found", NULL);
    } else {
        http_respond_error(req, 500, "api_error", "store_error", "the run could not be read", NULL);
    }
    free(c);
}

/* The run has ended (posted by the registry): answer with its stored state. */
static void run_cancel_answer(void *arg)
{
    run_cancel_req *c = arg;
    http_request_defer(c->req, run_cancel_read_work, run_cancel_read_done);
}

void runs_cancel(runs_thread *t, http_request *req, const scope *sc, const char *run_id)
{
    run_cancel_req *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->t = t;
    c->req = req;
    c->sc = *sc;
    snprintf(c->run_id, sizeof c->run_id, "%s", run_id);
    req->user = c;
    req->on_abort = NULL;
    if (!runs_registry_cancel(t->r, t, sc, run_id, run_cancel_answer, c))
        http_request_defer(req, run_cancel_read_work, run_cancel_read_done);   /* not active */
}
