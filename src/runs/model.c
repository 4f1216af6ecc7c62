/* model.c — performing a CALL_MODEL effect: send the core's request to the
 * agent's model (always streamed, so the client sees `message.delta` events
 * as text arrives), assemble the reply — text and tool calls — from the
 * chunks, charge its usage to the user, and feed it back to the core.
 * Retries, deployments and fallbacks are upstream_chat's; the call's
 * deadline is what is left of the run's wall time.
 *
 * Before each call: the degradation rule (a nearly spent budget sends the
 * call to the agent's cheaper model). The call itself is a metered model
 * call (govern/call.h), the same as the gateway's: the agent's per-run and
 * per-session cost caps reserved with the budgets, rate limits, a
 * fair-queue slot, settling to what was delivered, usage, spans. */
#include "runs/runs_internal.h"

#include "core/origin.h"
#include "upstream/providers/openai_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

/* A tool call's arguments come in fragments, often a few bytes each:
 * appended to a buffer of their own, and set into the call once the reply
 * is whole (run_model_reply_args_set). Rebuilding the cJSON string at
 * every fragment copied all the arguments so far: one 1 MiB event of
 * 25 000 fragments from a provider held a loop thread for seconds. */
#define RUN_MODEL_ARGS_MAX (1u << 20)   /* a model cannot make us hold more */

static void run_model_take_args(run_exec *x, int i, const char *args)
{
    if ((size_t)i >= x->n_reply_args) {
        size_t n = (size_t)i + 1;
        x->reply_args = xrealloc(x->reply_args, n * sizeof *x->reply_args);
        for (size_t k = x->n_reply_args; k < n; k++) buf_init(&x->reply_args[k]);
        x->n_reply_args = n;
    }
    buf *b = &x->reply_args[i];
    size_t add = strlen(args);
    if (b->len + add > RUN_MODEL_ARGS_MAX) return;
    buf_append(b, args, add);
}

/* Each call's arguments into its "arguments", and the buffers emptied. */
static void run_model_reply_args_set(run_exec *x)
{
    for (size_t i = 0; i < x->n_reply_args; i++) {
        buf *b = &x->reply_args[i];
        cJSON *call = x->reply_tools ? cJSON_GetArrayItem(x->reply_tools, (int)i) : NULL;
        cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        if (fn && b->len)
            cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", cJSON_CreateString(b->data));
        b->len = 0;
    }
}

void run_model_reply_args_free(run_exec *x)
{
    for (size_t i = 0; i < x->n_reply_args; i++) buf_free(&x->reply_args[i]);
    free(x->reply_args);
    x->reply_args = NULL;
    x->n_reply_args = 0;
}

/* Merge one streamed tool-call fragment into the call at its index: id,
 * name and arguments NULL when the fragment has none (not a string). */
static void run_model_take_call(run_exec *x, int i, const char *id, const char *name,
                                const char *args)
{
    if (i < 0 || i > 127) return;
    if (!x->reply_tools) x->reply_tools = cJSON_CreateArray();
    while (cJSON_GetArraySize(x->reply_tools) <= i) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "id", "");
        cJSON_AddStringToObject(c, "type", "function");
        cJSON *f = cJSON_AddObjectToObject(c, "function");
        cJSON_AddStringToObject(f, "name", "");
        cJSON_AddStringToObject(f, "arguments", "");
        cJSON_AddItemToArray(x->reply_tools, c);
    }
    cJSON *call = cJSON_GetArrayItem(x->reply_tools, i);
    cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
    if (id && id[0]) cJSON_ReplaceItemInObjectCaseSensitive(call, "id", cJSON_CreateString(id));
    if (name && name[0]) cJSON_ReplaceItemInObjectCaseSensitive(fn, "name", cJSON_CreateString(name));
    if (args && args[0]) run_model_take_args(x, i, args);
}

/* A fragment of the reply's text: kept, relayed. false: the subscriber
 * asked for a pause (a slow client pauses the model rather than growing
 * our buffers). */
static bool run_model_take_text(run_exec *x, metered_call *mc, const char *text, size_t n)
{
    if (n == 0) return true;
    if (x->reply_text.len + n <= (4u << 20)) buf_append(&x->reply_text, text, n);
    x->reply_started = true;
    metered_call_reached_client(mc);
    run_event_delta(x, text, n);
    return !x->sub || !x->sub_full;
}

/* A string of the chunk as a C string: its bytes when plain, else decoded
 * (into `small` when it fits, else the heap: *heap, freed by the caller). */
static const char *run_model_str(const openai_scan_str *s, char *small, size_t cap, char **heap)
{
    if (!s->p) return NULL;
    char *out = s->len < cap ? small : (*heap = xmalloc(s->len + 1));
    if (s->plain) {
        memcpy(out, s->p, s->len);
        out[s->len] = '\0';
    } else {
        openai_scan_str_decode(s, out);
    }
    return out;
}

static void run_model_scanned_call(void *arg, const openai_scan_call *c)
{
    run_exec *x = arg;
    char ib[128], nb[128], ab[512];
    char *ih = NULL, *nh = NULL, *ah = NULL;
    run_model_take_call(x, c->index, run_model_str(&c->id, ib, sizeof ib, &ih),
                        run_model_str(&c->name, nb, sizeof nb, &nh),
                        run_model_str(&c->arguments, ab, sizeof ab, &ah));
    free(ih);
    free(nh);
    free(ah);
}

/* The chunk read with cJSON: what openai_scan_delta does not decide. */
static bool run_model_chunk_tree(run_exec *x, metered_call *mc, const char *json, size_t len)
{
    cJSON *chunk = cJSON_ParseWithLength(json, len);
    if (!chunk) return true;            /* the provider layer reports malformed streams */
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk, "choices"), 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(delta, "content");
    bool more = true;
    if (cJSON_IsString(content))
        more = run_model_take_text(x, mc, content->valuestring, strlen(content->valuestring));
    const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");
    const cJSON *tc;
    cJSON_ArrayForEach(tc, tcs) {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(tc, "index");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(tc, "id");
        const cJSON *df = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(df, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(df, "arguments");
        run_model_take_call(x, cJSON_IsNumber(idx) ? idx->valueint : 0,
                            cJSON_IsString(id) ? id->valuestring : NULL,
                            cJSON_IsString(name) ? name->valuestring : NULL,
                            cJSON_IsString(args) ? args->valuestring : NULL);
    }
    cJSON_Delete(chunk);
    return more;
}

static bool run_model_on_event(metered_call *mc, upstream_call *call, const char *json, size_t len,
                               void *arg)
{
    run_exec *x = arg;
    /* The run needs the chunk's delta text and tool calls: read in place
     * (openai_scan_delta, the same reading as cJSON's, tested against it),
     * or with cJSON when the scan does not decide the text. When the
     * provider or the resilience layer already decided these very bytes,
     * their reading spares the check of the whole text. */
    openai_scan_str content;
    const openai_scan_result *facts = upstream_event_facts(call, json, len);
    if (facts)
        openai_scan_delta_of(json, len, facts, &content, run_model_scanned_call, x);
    else if (!openai_scan_delta(json, len, &content, run_model_scanned_call, x))
        return run_model_chunk_tree(x, mc, json, len);
    if (!content.p || content.len == 0) return true;
    if (content.plain) return run_model_take_text(x, mc, content.p, content.len);
    char small[512], *heap = NULL;
    const char *text = run_model_str(&content, small, sizeof small, &heap);
    bool more = run_model_take_text(x, mc, text, strlen(text));
    free(heap);
    return more;
}

/* The run's books and the usage ledger, for a delivered call. */
static void run_model_charge(run_exec *x, const upstream_result *res)
{
    x->rec.input_tokens += res->input_tokens;
    x->rec.output_tokens += res->output_tokens;
    x->rec.cost_nusd += x->mcall.charged_nusd;
    metered_call_record_usage(&x->mcall, x->r->st, res, x->rec.id, 200, NULL);
}

static void run_model_on_done(metered_call *mc, upstream_call *call, const upstream_result *res,
                              void *arg)
{
    (void)call;
    run_exec *x = arg;
    x->call = NULL;
    /* Settled by the metered call: a failed call whose text reached the
     * client is charged for it, like a cut gateway stream — also when the
     * run itself stopped the call. */
    if (mc->delivered && res->error != UPSTREAM_OK) run_model_charge(x, res);
    if (x->finishing) return;           /* cancelled by run_exec_end */
    if (res->error == UPSTREAM_CANCELLED) return;   /* run_model_abort: whoever cancelled decides */
    if (res->error != UPSTREAM_OK) {
        log_info("run %s: model call failed after %u attempts (%s %d)", x->rec.id, res->attempts,
                 upstream_error_name(res->error), res->status);
        char msg[200];
        if (res->error == UPSTREAM_HTTP_STATUS)
            snprintf(msg, sizeof msg, "the model's provider failed with HTTP %d", res->status);
        else
            snprintf(msg, sizeof msg, "the model's provider failed: %s",
                     res->message ? res->message : upstream_error_name(res->error));
        free(x->call_body);
        x->call_body = NULL;
        run_exec_fail(x, res->error == UPSTREAM_TIMEOUT ? "model_timeout" : "model_error", msg);
        return;
    }
    free(x->call_body);
    x->call_body = NULL;
    run_model_charge(x, res);

    /* The assistant message, as the core and the transcript will see it. */
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "role", "assistant");
    if (x->reply_text.len) cJSON_AddStringToObject(msg, "content", x->reply_text.data);
    else cJSON_AddNullToObject(msg, "content");
    run_model_reply_args_set(x);
    if (x->reply_tools && cJSON_GetArraySize(x->reply_tools) > 0) {
        cJSON_AddItemToObject(msg, "tool_calls", x->reply_tools);
        x->reply_tools = NULL;
    }
    x->reply_text.len = 0;
    cJSON_Delete(x->reply_tools);
    x->reply_tools = NULL;
    /* Its provenance: the model's, and which model (a degraded run's
     * replies name the cheaper one). */
    cJSON *origin = origin_new(ORIGIN_MODEL, false);
    if (origin && x->call_model) cJSON_AddStringToObject(origin, "model", x->call_model->name);
    origin_set(msg, origin);
    /* Kept for the transcript: written with its tool results, as one group. */
    cJSON_Delete(x->assistant_msg);
    x->assistant_msg = cJSON_Duplicate(msg, true);
    step_event ev = {.kind = STEP_EVENT_MODEL_REPLY, .message = msg,
                     .output_tokens = res->output_tokens};
    run_exec_feed(x, &ev);
}

static void run_model_start(run_exec *x)
{
    x->reply_text.len = 0;
    x->reply_started = false;
    cJSON_Delete(x->reply_tools);
    x->reply_tools = NULL;
    for (size_t i = 0; i < x->n_reply_args; i++) x->reply_args[i].len = 0;
    if (metered_call_dispatch(&x->mcall, x->t->up, x->call_body, x->call_body_len, x->rec.id)) {
        x->call = x->mcall.call;
        return;
    }
    char msg[300];
    const char *why = upstream_last_error();
    snprintf(msg, sizeof msg, "the call to the model could not be started%s%s",
             why[0] ? ": " : "", why);
    free(x->call_body);
    x->call_body = NULL;
    run_exec_fail(x, "model_error", msg);
}

/* ---- governance ---- */

static int64_t run_usd_to_nusd(double usd) { return (int64_t)(usd * 1e9 + 0.5); }

/* A governance refusal ends the run; a client still waiting without a
 * stream gets the refusal's status (run_finish_done). The agent's own cost
 * caps end it as failed, with their code. */
static void run_model_refused(run_exec *x, const gate_refusal *why)
{
    free(x->call_body);
    x->call_body = NULL;
    if (!gate_refusal_is_cost_cap(why)) {
        if (!x->refusal) x->refusal = xmalloc(sizeof *x->refusal);
        *x->refusal = *why;
    }
    run_exec_fail(x, why->code, why->message);
}

static void run_model_gate_ready(metered_call *mc, void *arg)
{
    run_exec *x = arg;
    if (mc->gate.queue_wait_ms > 0) {
        x->queue_wait_ms += mc->gate.queue_wait_ms;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddNumberToObject(d, "wait_ms", (double)mc->gate.queue_wait_ms);
        cJSON_AddStringToObject(d, "model", x->call_model->name);
        run_event(x, "model.queued", d);
    }
    if (x->finishing || x->stopped) {
        metered_call_cancel(mc, "the run stopped");
        return;
    }
    run_model_start(x);
}

static void run_model_gate_refused(metered_call *mc, const gate_refusal *why, void *arg)
{
    (void)mc;
    run_exec *x = arg;
    if (x->finishing || x->stopped) return;
    run_model_refused(x, why);
}

/* The model this call goes to: the agent's, or its cheaper degrade model
 * once the user's budget is nearly spent. */
static const model_cfg *run_model_choose(run_exec *x, const runs_who *w, cJSON *request)
{
    const agent_cfg *a = x->agent;
    if (!a->degrade_model || !x->r->gate) return a->model;
    if (!x->degraded && gate_budget_nearly_spent(x->r->gate, &w->who, a->degrade_threshold)) {
        x->degraded = true;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "from", a->model->name);
        cJSON_AddStringToObject(d, "to", a->degrade_model->name);
        cJSON_AddStringToObject(d, "reason", "budget nearly spent");
        run_event(x, "model.degraded", d);
    }
    if (!x->degraded) return a->model;
    cJSON_DeleteItemFromObjectCaseSensitive(request, "model");
    cJSON_AddStringToObject(request, "model", a->degrade_model->upstream_model);
    return a->degrade_model;
}

/* The agent's cost caps, as govern reserves against them: the run's
 * spend, and the session's (its earlier runs and this one). Set once per
 * run; settling each call moves them on. */
static void run_model_set_caps(run_exec *x)
{
    if (x->caps_set) return;
    x->caps_set = true;
    const agent_cfg *a = x->agent;
    x->run_cap = (govern_cap){.name = "run", .spent_nusd = x->rec.cost_nusd,
                              .limit_nusd = a->max_cost_usd_per_run > 0
                                                ? run_usd_to_nusd(a->max_cost_usd_per_run) : 0};
    x->session_cap = (govern_cap){
        .name = "session", .spent_nusd = x->session_spent_nusd + x->rec.cost_nusd,
        .limit_nusd = a->max_cost_usd_per_session > 0
                          ? run_usd_to_nusd(a->max_cost_usd_per_session) : 0};
}

void run_model_call(run_exec *x, cJSON *request, const step_context_ref *context)
{
    /* Streamed, and said only once: the text is then what
     * upstream_opts.plain_stream promises the provider, whatever the core
     * put in its request. */
    while (cJSON_GetObjectItemCaseSensitive(request, "stream"))
        cJSON_DeleteItemFromObjectCaseSensitive(request, "stream");
    while (cJSON_GetObjectItemCaseSensitive(request, "stream_options"))
        cJSON_DeleteItemFromObjectCaseSensitive(request, "stream_options");
    cJSON_AddBoolToObject(request, "stream", true);
    runs_who w;
    runs_gate_who(x->r, &x->sc, &w);
    x->call_model = run_model_choose(x, &w, request);
    free(x->call_body);
    x->call_body = run_model_body_kept(&x->texts, request, context, &x->call_body_len);
    cJSON_Delete(request);
    run_model_set_caps(x);
    static const metered_callbacks cbs = {run_model_on_event, run_model_gate_ready,
                                          run_model_gate_refused, run_model_on_done};
    /* The run's wall-time timer says how much time is left: the queue
     * wait, the model call, its retries and fallbacks must fit in it. */
    uint64_t deadline = 0;
    if (uv_is_active((uv_handle_t *)&x->wall_timer))
        deadline = uv_now(x->t->loop) + uv_timer_get_due_in(&x->wall_timer);
    metered_call_params p = {
        .gate = x->r->gate ? x->t->gate : NULL, .who = &w.who, .owner = &x->sc,
        .model = x->call_model, .prompt_bytes = x->call_body_len,
        .max_output = x->agent->max_output_tokens,
        .parent = x->run_span ? obs_span_ctx(x->run_span) : NULL, .stream = true, .plain_stream = true,
        .deadline_ms = deadline, .caps = {&x->run_cap, &x->session_cap}};
    gate_refusal why;
    int r = metered_call_begin(&x->mcall, &p, &cbs, x, &why);
    if (r == GATE_REFUSED) run_model_refused(x, &why);
    else if (r == GATE_READY) run_model_start(x);
    /* GATE_WAIT: run_model_gate_ready or _refused follows */
}

void run_model_abort(run_exec *x)
{
    /* Out of the queue with the reservation released, or the provider call
     * stopped (run_model_on_done runs now and sees `finishing` or the
     * cancellation). */
    x->call = NULL;
    metered_call_cancel(&x->mcall, "the run stopped");
    free(x->call_body);
    x->call_body = NULL;
}
