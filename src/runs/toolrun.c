/* toolrun.c — performing a CALL_TOOLS effect. For each call the harness
 * checks that the agent may use the tool and validates the arguments
 * against the tool's schema; a refusal becomes the tool's result, so the
 * model can correct itself. The calls that pass run concurrently. When all
 * have answered, the assistant message that asked and every result are
 * written to the transcript as one group (store_run_append), then fed back
 * to the core. */
#include "runs/runs_internal.h"

#include "obs/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define RUNS_PREVIEW_BYTES 200   /* of a tool result, in the tool.result event */

/* What a tool's callback gets: the run and which call it answers. One
 * array of them per effect (x->tool_slots), freed when the effect ends. */
struct tool_slot {
    run_exec *x;
    size_t    index;
    obs_span *span;                   /* "tool NAME", child of the run's span */
    const tool_def *def;              /* NULL when the call was refused */
};

/* ---- the audit entry of a tool call (invariant 5: "tool call with the
 * credential it used"), written on the thread pool: obs_audit waits for
 * the commit, which the loop must not. ---- */

typedef struct tool_audit_job {
    uv_work_t work;
    store    *st;
    scope     sc;
    char      tool[72];
    cJSON    *details;
} tool_audit_job;

static void run_tool_audit_work(uv_work_t *w)
{
    tool_audit_job *j = w->data;
    obs_audit(j->st, &j->sc, "tool.call", j->tool, j->details);   /* takes details */
    j->details = NULL;
}

static void run_tool_audit_done(uv_work_t *w, int status)
{
    (void)status;
    tool_audit_job *j = w->data;
    cJSON_Delete(j->details);
    free(j);
}

/* The credential a tool used: the caller's (key id or "jwt") for every
 * tool, and for a declared HTTP tool the names (never the values) of the
 * headers it sends, where its own credentials live. */
static void run_tool_audit(run_exec *x, const tool_slot *slot, const char *name, bool ok)
{
    tool_audit_job *j = calloc(1, sizeof *j);
    if (!j) return;
    j->st = x->r->st;
    j->sc = x->sc;
    snprintf(j->tool, sizeof j->tool, "%.64s", name);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "run_id", x->rec.id);
    cJSON_AddStringToObject(d, "session_id", x->rec.session_id);
    cJSON_AddStringToObject(d, "credential", x->sc.key_id);
    if (slot->def && slot->def->http) {
        cJSON *h = cJSON_AddArrayToObject(d, "tool_headers");
        for (size_t i = 0; i < slot->def->http->n_headers; i++)
            cJSON_AddItemToArray(h, cJSON_CreateString(slot->def->http->header_names[i]));
    }
    cJSON_AddBoolToObject(d, "allowed", slot->def != NULL);
    cJSON_AddBoolToObject(d, "ok", ok);
    j->details = d;
    j->work.data = j;
    if (uv_queue_work(x->t->loop, &j->work, run_tool_audit_work, run_tool_audit_done) != 0) {
        cJSON_Delete(d);
        free(j);
    }
}

static bool run_tool_allowed(const run_exec *x, const char *name)
{
    for (size_t i = 0; i < x->agent->n_tools; i++)
        if (strcmp(x->agent->tools[i], name) == 0) return true;
    return false;
}

/* A message_rec view of a cJSON chat message (strings are borrowed). */
static void run_tool_msg_rec(run_exec *x, const cJSON *m, message_rec *out, char **tc_json)
{
    memset(out, 0, sizeof *out);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    const cJSON *tcid = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
    snprintf(out->role, sizeof out->role, "%s", cJSON_IsString(role) ? role->valuestring : "tool");
    out->content = cJSON_IsString(content) ? content->valuestring : NULL;
    *tc_json = tcs ? cJSON_PrintUnformatted(tcs) : NULL;
    out->tool_calls_json = *tc_json;
    if (cJSON_IsString(tcid)) snprintf(out->tool_call_id, sizeof out->tool_call_id, "%s", tcid->valuestring);
    snprintf(out->session_id, sizeof out->session_id, "%s", x->rec.session_id);
    snprintf(out->run_id, sizeof out->run_id, "%s", x->rec.id);
}

static void run_tools_persist_work(run_exec *x)
{
    size_t n = 1 + (size_t)cJSON_GetArraySize(x->results);
    message_rec *msgs = calloc(n, sizeof *msgs);
    char **tcj = calloc(n, sizeof *tcj);
    if (!msgs || !tcj) abort();
    run_tool_msg_rec(x, x->assistant_msg, &msgs[0], &tcj[0]);
    size_t i = 1;
    const cJSON *r;
    cJSON_ArrayForEach(r, x->results) {
        run_tool_msg_rec(x, r, &msgs[i], &tcj[i]);
        i++;
    }
    x->work_status = store_run_append(x->r->st, &x->sc, &x->rec, msgs, n);
    for (size_t k = 0; k < n; k++) cJSON_free(tcj[k]);
    free(tcj);
    free(msgs);
}

static void run_tools_persist_done(run_exec *x)
{
    if (run_exec_job_superseded(x)) return;
    if (x->work_status != STORE_OK) {
        run_exec_fail(x, "store_error", "the step could not be recorded");
        return;
    }
    cJSON *results = x->results;
    x->results = NULL;
    cJSON_Delete(x->assistant_msg);
    x->assistant_msg = NULL;
    step_event ev = {.kind = STEP_EVENT_TOOL_RESULTS, .results = results};
    run_exec_feed(x, &ev);
}

static void run_tools_all_done(run_exec *x)
{
    free(x->execs);
    x->execs = NULL;
    free(x->tool_slots);
    x->tool_slots = NULL;
    cJSON_Delete(x->pending_calls);
    x->pending_calls = NULL;
    if (!x->assistant_msg) {
        run_exec_fail(x, "internal_error", "tool results without the message that asked for them");
        return;
    }
    run_exec_job(x, run_tools_persist_work, run_tools_persist_done);
}

/* Record one call's result (in call order) and tell the client. */
static void run_tool_result(run_exec *x, size_t i, bool ok, const char *output, size_t len)
{
    const cJSON *call = cJSON_GetArrayItem(x->pending_calls, (int)i);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(call, "id");
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "role", "tool");
    cJSON_AddStringToObject(msg, "tool_call_id", cJSON_IsString(id) ? id->valuestring : "");
    char *text = malloc(len + 1);
    if (!text) abort();
    memcpy(text, output, len);
    text[len] = '\0';
    cJSON_AddStringToObject(msg, "content", text);
    cJSON_ReplaceItemInArray(x->results, (int)i, msg);

    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", cJSON_IsString(id) ? id->valuestring : "");
    cJSON_AddBoolToObject(d, "ok", ok);
    size_t plen;
    char *preview = tools_cap_output(text, len, RUNS_PREVIEW_BYTES, &plen);
    cJSON_AddStringToObject(d, "preview", preview ? preview : "");
    free(preview);
    free(text);
    run_event(x, "tool.result", d);
    tool_slot *slot = x->tool_slots ? &x->tool_slots[i] : NULL;
    if (slot) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
        run_tool_audit(x, slot, cJSON_IsString(nm) ? nm->valuestring : "", ok);
        if (slot->span) {
            obs_span_set_bool(slot->span, "brigade.tool.ok", ok);
            obs_span_end(slot->span, ok ? OBS_STATUS_OK : OBS_STATUS_ERROR, ok ? NULL : "the tool failed");
            slot->span = NULL;
        }
    }
    x->n_done++;
}

static void run_tool_done(void *arg, bool ok, const char *output, size_t len)
{
    tool_slot *slot = arg;
    run_exec *x = slot->x;
    size_t i = slot->index;
    if (x->execs) x->execs[i] = NULL;
    if (x->finishing) return;
    run_tool_result(x, i, ok, output, len);
    if (x->n_done == x->n_execs) run_tools_all_done(x);
}

/* FNV-1a over the tool's name and its arguments re-printed compactly, so
 * that whitespace differences do not hide a repetition. */
static uint64_t run_tool_call_hash(const char *name, const char *args)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = name; *p; p++) { h ^= (unsigned char)*p; h *= 1099511628211ULL; }
    h ^= 0xff;
    h *= 1099511628211ULL;
    cJSON *parsed = cJSON_Parse(args);
    char *norm = parsed ? cJSON_PrintUnformatted(parsed) : NULL;
    cJSON_Delete(parsed);
    for (const char *p = norm ? norm : args; *p; p++) { h ^= (unsigned char)*p; h *= 1099511628211ULL; }
    free(norm);
    return h;
}

/* The loop guard: a model that asks for the same tool with the same
 * arguments again and again is stuck, and each round costs a model call.
 * True if this batch makes some call exceed the agent's
 * max_repeated_tool_calls; *which names it. */
static bool run_tools_repeated(run_exec *x, cJSON *calls, char *which, size_t whichlen)
{
    const cJSON *call;
    cJSON_ArrayForEach(call, calls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        const char *tname = cJSON_IsString(name) ? name->valuestring : "";
        const char *targs = cJSON_IsString(args) && args->valuestring[0] ? args->valuestring : "{}";
        uint64_t h = run_tool_call_hash(tname, targs);
        size_t i;
        for (i = 0; i < x->n_seen; i++)
            if (x->seen_calls[i] == h) break;
        if (i == x->n_seen) {
            if (x->n_seen == x->cap_seen) {
                size_t cap = x->cap_seen ? 2 * x->cap_seen : 8;
                uint64_t *c = realloc(x->seen_calls, cap * sizeof *c);
                if (!c) abort();
                x->seen_calls = c;
                uint32_t *k = realloc(x->seen_counts, cap * sizeof *k);
                if (!k) abort();
                x->seen_counts = k;
                x->cap_seen = cap;
            }
            x->seen_calls[i] = h;
            x->seen_counts[i] = 0;
            x->n_seen++;
        }
        if (++x->seen_counts[i] > x->agent->max_repeated_tool_calls) {
            snprintf(which, whichlen, "%.64s", tname);
            return true;
        }
    }
    return false;
}

void run_tools_call(run_exec *x, cJSON *calls)
{
    char repeated[80];
    if (run_tools_repeated(x, calls, repeated, sizeof repeated)) {
        char msg[200];
        snprintf(msg, sizeof msg, "the model asked for tool \"%s\" with the same arguments more "
                 "than %u times; the run was stopped as a loop", repeated,
                 x->agent->max_repeated_tool_calls);
        cJSON_Delete(calls);
        run_exec_fail(x, "repeated_tool_call", msg);
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(calls);
    x->pending_calls = calls;
    x->results = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(x->results, cJSON_CreateNull());
    x->execs = calloc(n ? n : 1, sizeof *x->execs);
    x->tool_slots = calloc(n ? n : 1, sizeof *x->tool_slots);
    if (!x->execs || !x->tool_slots) abort();
    x->n_execs = n;
    x->n_done = 0;
    tool_env env = {
        .loop = x->t->loop, .upstream = x->t->up, .store = x->r->st, .scope = &x->sc,
        .max_output_bytes = x->agent->max_tool_output_bytes, .request_id = x->rec.id,
    };
    for (size_t i = 0; i < n; i++) {
        const cJSON *call = cJSON_GetArrayItem(calls, (int)i);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(call, "id");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        const char *tname = cJSON_IsString(name) ? name->valuestring : "";
        const char *targs = cJSON_IsString(args) && args->valuestring[0] ? args->valuestring : "{}";
        x->rec.tool_calls++;

        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "id", cJSON_IsString(id) ? id->valuestring : "");
        cJSON_AddStringToObject(d, "name", tname);
        cJSON_AddStringToObject(d, "arguments", targs);
        run_event(x, "tool.call", d);

        tool_slot *slot = &x->tool_slots[i];
        slot->x = x;
        slot->index = i;
        char span_name[96];
        snprintf(span_name, sizeof span_name, "tool %.64s", tname);
        slot->span = obs_span_begin(x->run_span ? obs_span_ctx(x->run_span) : NULL, span_name,
                                    OBS_SPAN_INTERNAL, &x->sc);
        obs_span_set_str(slot->span, "gen_ai.operation.name", "execute_tool");
        obs_span_set_str(slot->span, "gen_ai.tool.name", tname);
        obs_span_set_str(slot->span, "gen_ai.tool.call.id", cJSON_IsString(id) ? id->valuestring : "");
        obs_span_set_str(slot->span, "brigade.credential", x->sc.key_id);

        /* The harness's checks before any call: permission, then the
         * arguments against the tool's schema. Each decision is a span. */
        char why[300];
        const tool_def *def = run_tool_allowed(x, tname) ? tools_find(x->r->tools, tname) : NULL;
        obs_span *g = obs_span_begin(obs_span_ctx(slot->span), "guardrail", OBS_SPAN_INTERNAL, &x->sc);
        obs_span_set_str(g, "brigade.guardrail.check", "tool_permission");
        obs_span_set_str(g, "brigade.guardrail.decision", def ? "allow" : "deny");
        obs_span_end(g, def ? OBS_STATUS_OK : OBS_STATUS_ERROR, def ? NULL : "tool not allowed");
        if (!def) {
            snprintf(why, sizeof why, "error: the tool \"%.64s\" is not available to this agent", tname);
            run_tool_result(x, i, false, why, strlen(why));
            continue;
        }
        char err[240];
        bool valid = tools_validate_args(def, targs, err, sizeof err);
        g = obs_span_begin(obs_span_ctx(slot->span), "guardrail", OBS_SPAN_INTERNAL, &x->sc);
        obs_span_set_str(g, "brigade.guardrail.check", "tool_arguments");
        obs_span_set_str(g, "brigade.guardrail.decision", valid ? "allow" : "deny");
        obs_span_end(g, valid ? OBS_STATUS_OK : OBS_STATUS_ERROR, valid ? NULL : err);
        if (!valid) {
            snprintf(why, sizeof why, "error: invalid arguments for %s: %s", tname, err);
            run_tool_result(x, i, false, why, strlen(why));
            continue;
        }
        slot->def = def;
        x->execs[i] = tools_execute(def, &env, targs, run_tool_done, slot);
        if (!x->execs[i]) {
            snprintf(why, sizeof why, "error: the tool %s could not be started", tname);
            run_tool_result(x, i, false, why, strlen(why));
        }
    }
    if (x->n_done == x->n_execs) run_tools_all_done(x);
}

void run_tools_abort(run_exec *x)
{
    if (!x->execs) return;
    for (size_t i = 0; i < x->n_execs; i++) {
        if (x->execs[i]) {
            tools_cancel(x->execs[i]);   /* its `done` will not be called */
            x->execs[i] = NULL;
        }
        if (x->tool_slots && x->tool_slots[i].span) {
            obs_span_end(x->tool_slots[i].span, OBS_STATUS_ERROR, "the run stopped");
            x->tool_slots[i].span = NULL;
        }
    }
    free(x->execs);
    x->execs = NULL;
    free(x->tool_slots);
    x->tool_slots = NULL;
}
