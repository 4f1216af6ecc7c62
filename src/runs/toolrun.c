/* toolrun.c — performing a CALL_TOOLS effect. Each call passes the guards
 * first (guard.h: the agent may use the tool, the arguments fit its
 * schema); a refusal becomes the tool's result, so the model can correct
 * itself. The calls that pass run concurrently. When all
 * have answered, the assistant message that asked and every result are
 * written to the transcript as one group (store_run_append), then fed back
 * to the core. */
#include "runs/runs_internal.h"

#include "obs/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

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
    message_rec *msgs = xcalloc(n, sizeof *msgs);
    char **tcj = xcalloc(n, sizeof *tcj);
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
    char *text = xmalloc(len + 1);
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

void run_tools_call(run_exec *x, cJSON *calls)
{
    size_t n = (size_t)cJSON_GetArraySize(calls);
    x->pending_calls = calls;
    x->results = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(x->results, cJSON_CreateNull());
    x->execs = xcalloc(n ? n : 1, sizeof *x->execs);
    x->tool_slots = xcalloc(n ? n : 1, sizeof *x->tool_slots);
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

        /* The guards before the call (guard.h): a refusal becomes the
         * tool's result, so the model can correct itself. */
        char why[320];
        guard_effect ge = {.kind = GUARD_EFFECT_TOOL_CALL, .json = call, .tool_name = tname,
                           .arguments = targs, .span = slot->span};
        guard_decision gd = guard_before_effect(x->guard, &x->guard_ctx, &ge);
        if (gd.verdict != GUARD_ALLOW) {
            snprintf(why, sizeof why, "error: %s", gd.reason);
            run_tool_result(x, i, false, why, strlen(why));
            continue;
        }
        const tool_def *def = gd.tool;
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
