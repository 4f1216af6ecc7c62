/* toolrun.c — performing a CALL_TOOLS effect, in three phases, so that a
 * batch is never half run:
 *
 *   1. every call passes the guards (guard.h: the agent may use the tool,
 *      the arguments fit its schema, the tool's approval policy); a refusal
 *      becomes the tool's result, so the model can correct itself. If a
 *      call needs a person's approval that a resumed run does not already
 *      hold, the run pauses (pause.c) before anything runs;
 *   2. the calls of tools with `auth` get the run's user's own credential
 *      (runs/credentials.h), all at once; if one is missing, the run pauses
 *      in waiting_auth, again before anything runs;
 *   3. the calls that may run, run concurrently (a denied one gets
 *      "denied: …" as its result). When all have answered, the assistant
 *      message that asked and every result are written to the transcript
 *      as one group (store_run_append), then fed back to the core. */
#include "runs/runs_internal.h"

#include "core/origin.h"
#include "obs/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/strfmt.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define RUNS_PREVIEW_BYTES 200   /* of a tool result, in the tool.result event */

/* What a tool's callback gets: the run and which call it answers. One
 * array of them per effect (x->tool_slots), freed when the effect ends. */
struct tool_slot {
    run_exec *x;
    size_t    index;
    obs_span *span;                   /* "tool NAME", child of the run's span */
    const tool_def *def;              /* NULL when the call was refused */
    guard_verdict verdict;            /* the guards' answer (phase 1) */
    char      why[320];               /* REFUSE: the result; a denial: the note */
    const char *refused_code;         /* REFUSE by a guard: its code (audited) */
    bool      denied;                 /* needed approval and was denied */
    /* phase 2: the user's credential */
    void     *cred_fetch;             /* a fetch in flight */
    bool      cred_missing;
    char     *connect_url;            /* MISSING: where to connect */
    char     *auth_name, *auth_value; /* OK: the header (the value is a secret) */
    char      connection_id[ID_MAX];  /* OK: the user's connection used (named in the audit) */
    int64_t   cred_fetched_at;        /* OK: when (unix s), for a refusal (credentials.h refused) */
    /* provenance (provenance.c) */
    bool      started;                /* the tool ran: its result is its own text */
    char     *memory_read;            /* the memory tool's entries read, with their origins */
};

static void tool_slot_forget_secret(tool_slot *slot)
{
    if (slot->auth_value) {
        explicit_bzero(slot->auth_value, strlen(slot->auth_value));
        free(slot->auth_value);
    }
    free(slot->auth_name);
    free(slot->connect_url);
    slot->auth_value = slot->auth_name = slot->connect_url = NULL;
}

/* ---- the audit entry of a tool call (invariant 5: "tool call with the
 * credential it used"). Where the run's writes are queued (SQLite) it is
 * queued too, from the loop and without waiting: it commits with the
 * run's next write, in the same group commit, instead of costing a
 * thread-pool hop and a commit of its own (obs_audit_behind). Elsewhere
 * (PostgreSQL) it is written on the thread pool: obs_audit waits for the
 * commit, which the loop must not. ---- */

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
    /* the user's own credential it used: which connection, never its token */
    if (slot->connection_id[0]) cJSON_AddStringToObject(d, "connection", slot->connection_id);
    if (slot->def && slot->def->http) {
        cJSON *h = cJSON_AddArrayToObject(d, "tool_headers");
        for (size_t i = 0; i < slot->def->http->n_headers; i++)
            cJSON_AddItemToArray(h, cJSON_CreateString(slot->def->http->header_names[i]));
    }
    /* an MCP server's tool: which server (its instance is the user's own) */
    if (slot->def && slot->def->mcp_server)
        cJSON_AddStringToObject(d, "mcp_server", slot->def->mcp_server->name);
    cJSON_AddBoolToObject(d, "allowed", slot->def != NULL);
    if (slot->refused_code) cJSON_AddStringToObject(d, "refused", slot->refused_code);
    cJSON_AddBoolToObject(d, "ok", ok);
    if (obs_audit_behind(x->r->st, &x->sc, "tool.call", j->tool, d)) {   /* takes d */
        free(j);
        return;
    }
    j->details = d;
    j->work.data = j;
    if (uv_queue_work(x->t->loop, &j->work, run_tool_audit_work, run_tool_audit_done) != 0) {
        cJSON_Delete(d);
        free(j);
    }
}

/* A message_rec view of a cJSON chat message (strings are borrowed). */
static void run_tool_msg_rec(run_exec *x, const cJSON *m, message_rec *out, char **tc_json,
                             char **origin_json)
{
    memset(out, 0, sizeof *out);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    const cJSON *tcid = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
    str_copy(out->role, sizeof out->role, cJSON_IsString(role) ? role->valuestring : "tool");
    out->content = cJSON_IsString(content) ? content->valuestring : NULL;
    *tc_json = tcs ? cJSON_PrintUnformatted(tcs) : NULL;
    out->tool_calls_json = *tc_json;
    if (cJSON_IsString(tcid)) str_copy(out->tool_call_id, sizeof out->tool_call_id, tcid->valuestring);
    str_copy(out->session_id, sizeof out->session_id, x->rec.session_id);
    str_copy(out->run_id, sizeof out->run_id, x->rec.id);
    const cJSON *origin = cJSON_GetObjectItemCaseSensitive(m, ORIGIN_MEMBER);
    *origin_json = cJSON_IsObject(origin) ? cJSON_PrintUnformatted(origin) : NULL;
    out->origin_json = *origin_json;
}

static void run_tools_persist_done(run_exec *x);

/* Write the step's messages (the assistant message, then the results in
 * call order): queued behind, or now (on the thread pool). */
static store_status run_tools_write_msgs(run_exec *x, bool behind)
{
    size_t n = 1 + (size_t)cJSON_GetArraySize(x->results);
    message_rec *msgs = xcalloc(n, sizeof *msgs);
    char **tcj = xcalloc(n, sizeof *tcj), **orj = xcalloc(n, sizeof *orj);
    run_tool_msg_rec(x, x->assistant_msg, &msgs[0], &tcj[0], &orj[0]);
    size_t i = 1;
    const cJSON *r;
    cJSON_ArrayForEach(r, x->results) {
        run_tool_msg_rec(x, r, &msgs[i], &tcj[i], &orj[i]);
        i++;
    }
    store_status res = behind ? (run_exec_write_step(x, msgs, n) ? STORE_OK : STORE_ERROR)
                              : store_run_append(x->r->st, &x->sc, &x->rec, msgs, n);
    if (res == STORE_OK) run_exec_history_add(x, msgs, n);
    for (size_t k = 0; k < n; k++) {
        cJSON_free(tcj[k]);
        cJSON_free(orj[k]);
    }
    free(tcj);
    free(orj);
    free(msgs);
    return res;
}

static void run_tools_persist_work(run_exec *x)
{
    x->work_status = run_tools_write_msgs(x, false);
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

static void run_tools_free_slots(run_exec *x)
{
    if (x->tool_slots) {
        for (size_t i = 0; i < x->n_execs; i++) {
            tool_slot *slot = &x->tool_slots[i];
            if (slot->cred_fetch && x->r->has_creds) x->r->creds.cancel(x->r->creds.self, slot->cred_fetch);
            slot->cred_fetch = NULL;
            tool_slot_forget_secret(slot);
            free(slot->memory_read);
            slot->memory_read = NULL;
            if (slot->span) {
                obs_span_end(slot->span, OBS_STATUS_ERROR, "the call did not run");
                slot->span = NULL;
            }
        }
    }
    free(x->tool_slots);
    x->tool_slots = NULL;
    free(x->execs);
    x->execs = NULL;
    x->n_creds_pending = 0;
}

static void run_tools_all_done(run_exec *x)
{
    run_tools_free_slots(x);
    cJSON_Delete(x->pending_calls);
    x->pending_calls = NULL;
    if (!x->assistant_msg) {
        run_exec_fail(x, "internal_error", "tool results without the message that asked for them");
        return;
    }
    /* The guard sees the results before they are recorded: a flagged
     * output is recorded as the model is shown it (spotlighted or
     * withheld), so a later run's context never holds it raw. */
    guard_result gr = {.kind = GUARD_RESULT_TOOL_RESULTS, .json = x->results};
    guard_review v = guard_after_result(x->guard, &x->guard_ctx, &gr);
    run_guard_events(x, &v);
    if (v.flagged) {
        run_exec_fail(x, v.code, v.reason);
        return;
    }
    if (x->behind) {
        /* written behind: queued, not waited for — the writer lands it
         * before anything the run queues later, its end included */
        x->work_status = run_tools_write_msgs(x, true);
        run_tools_persist_done(x);
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
    /* where the text came from (provenance.c): the tool's kind, and for
     * the memory tool who wrote what it read */
    tool_slot *slot = x->tool_slots ? &x->tool_slots[i] : NULL;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const char *tname = cJSON_IsString(nm) ? nm->valuestring : "";
    cJSON *origin = run_origin_tool_result(slot ? slot->def : NULL, !slot || !slot->started, tname,
                                           cJSON_IsString(id) ? id->valuestring : "",
                                           slot ? slot->memory_read : NULL);
    if (slot) run_origin_trace(slot->span, origin);
    cJSON *event_origin = origin ? cJSON_Duplicate(origin, true) : NULL;
    origin_set(msg, origin);
    cJSON_ReplaceItemInArray(x->results, (int)i, msg);

    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", cJSON_IsString(id) ? id->valuestring : "");
    cJSON_AddBoolToObject(d, "ok", ok);
    size_t plen;
    char *preview = tools_cap_output(text, len, RUNS_PREVIEW_BYTES, &plen);
    cJSON_AddStringToObject(d, "preview", preview ? preview : "");
    if (event_origin) cJSON_AddItemToObject(d, "origin", event_origin);
    free(preview);
    free(text);
    run_event(x, "tool.result", d);
    if (slot) {
        run_tool_audit(x, slot, tname, ok);
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

/* The memory tool's entries read, with who wrote them (tools.h): kept
 * for the origin of its result. */
static void run_tool_read_origins(void *arg, const char *entries_json)
{
    tool_slot *slot = arg;
    free(slot->memory_read);
    slot->memory_read = xstrdup(entries_json);
}

/* The user's own credential a call needs: an HTTP tool's `auth`, or an
 * MCP server's `auth: {kind: oauth}` (its tools' mcp_auth_provider, the
 * token sent as "Authorization: Bearer …"). false: none. */
typedef struct slot_auth {
    const char   *provider;
    char *const  *scopes;
    size_t        n_scopes;
    const char   *header, *format;
    uint32_t      timeout_s;
    const char   *tool;
} slot_auth;

static bool slot_auth_of(const tool_slot *slot, slot_auth *a)
{
    memset(a, 0, sizeof *a);
    if (!slot->def) return false;
    const tool_cfg *tc = slot->def->http;
    if (tc && tc->auth_provider) {
        *a = (slot_auth){tc->auth_provider, tc->auth_scopes, tc->n_auth_scopes,
                         tc->auth_header ? tc->auth_header : "Authorization",
                         tc->auth_format ? tc->auth_format : "Bearer {token}", tc->auth_timeout_s, tc->name};
        return true;
    }
    if (slot->def->mcp_server && slot->def->mcp_auth_provider[0]) {
        *a = (slot_auth){slot->def->mcp_auth_provider, NULL, 0, "Authorization", "Bearer {token}",
                         slot->def->mcp_server->oauth_timeout_s, slot->def->name};
        return true;
    }
    return false;
}

/* The service refused the user's own credential this call sent: the
 * vault marks the connection expired (off the loop), so the next call of a
 * tool of that provider asks the user to connect again (waiting_auth)
 * rather than fail the same way again. This call fails as it is: the batch
 * has run, and its other calls may have acted. */
static void run_tool_auth_refused(void *arg)
{
    tool_slot *slot = arg;
    run_exec *x = slot->x;
    slot_auth sa;
    if (!slot_auth_of(slot, &sa) || !slot->connection_id[0]) return;
    log_warn("run %s: %s refused the user's credential for %s (connection %s); the user will be asked "
             "to connect again", x->rec.id, sa.tool ? sa.tool : "a tool", sa.provider, slot->connection_id);
    if (x->r->has_creds && x->r->creds.refused)
        x->r->creds.refused(x->r->creds.self, x->t->loop, &x->sc, sa.provider, slot->connection_id,
                            slot->cred_fetched_at);
}

/* A tool's progress (an MCP server's progress notifications) as a
 * tool.progress event: {id, progress, total?, message?}. */
static void run_tool_progress(void *arg, double progress, double total, const char *message)
{
    tool_slot *slot = arg;
    run_exec *x = slot->x;
    if (x->finishing) return;
    const cJSON *call = cJSON_GetArrayItem(x->pending_calls, (int)slot->index);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(call, "id");
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "id", cJSON_IsString(id) ? id->valuestring : "");
    cJSON_AddNumberToObject(d, "progress", progress);
    if (total >= 0) cJSON_AddNumberToObject(d, "total", total);
    if (message) cJSON_AddStringToObject(d, "message", message);
    run_event(x, "tool.progress", d);
}

static const char *run_call_str(const cJSON *call, const char *key)
{
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
    const cJSON *v = strcmp(key, "id") == 0 ? cJSON_GetObjectItemCaseSensitive(call, "id")
                                            : cJSON_GetObjectItemCaseSensitive(fn, key);
    if (strcmp(key, "arguments") == 0)
        return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : "{}";
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Phase 3: run what may run, in call order. */
static void run_tools_go(run_exec *x)
{
    size_t n = x->n_execs;
    for (size_t i = 0; i < n; i++) {
        const cJSON *call = cJSON_GetArrayItem(x->pending_calls, (int)i);
        const char *tname = run_call_str(call, "name"), *targs = run_call_str(call, "arguments");
        tool_slot *slot = &x->tool_slots[i];
        x->rec.tool_calls++;
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "id", run_call_str(call, "id"));
        cJSON_AddStringToObject(d, "name", tname);
        cJSON_AddStringToObject(d, "arguments", targs);
        run_event(x, "tool.call", d);
        if (slot->verdict == GUARD_REFUSE || slot->denied || !slot->def) {
            const char *why = slot->why[0] ? slot->why : "error: the call was refused";
            run_tool_result(x, i, false, why, strlen(why));
            continue;
        }
        tool_env env = {
            .loop = x->t->loop, .upstream = x->t->up, .store = x->r->st, .scope = &x->sc,
            .max_output_bytes = x->agent->max_tool_output_bytes, .request_id = x->rec.id,
            .auth_header_name = slot->auth_name, .auth_header_value = slot->auth_value,
            .egress_allow_nets = x->r->cfg->egress_allow_nets,
            .n_egress_allow_nets = x->r->cfg->n_egress_allow_nets, .span = slot->span,
            .progress = run_tool_progress, .progress_arg = slot,
            .read_origins = run_tool_read_origins, .read_origins_arg = slot,
            .auth_refused = run_tool_auth_refused, .auth_refused_arg = slot,
        };
        /* what this call writes to memory is recorded as written by this
         * run, untrusted if untrusted content is in its context now */
        char *write_origin = slot->def->kind == TOOL_MEMORY ? run_memory_write_origin(x) : NULL;
        env.memory_origin = write_origin;
        slot->started = true;
        x->execs[i] = tools_execute(slot->def, &env, targs, run_tool_done, slot);
        free(write_origin);
        /* the request holds its own copy of the header now */
        tool_slot_forget_secret(slot);
        if (!x->execs[i]) {
            slot->started = false;
            char why[320];
            snprintf(why, sizeof why, "error: the tool %s could not be started", tname);
            run_tool_result(x, i, false, why, strlen(why));
        }
    }
    if (x->n_done == x->n_execs) run_tools_all_done(x);
}

/* Phase 2 done: every credential answered. */
static void run_tools_creds_done(run_exec *x)
{
    for (size_t i = 0; i < x->n_execs; i++) {
        tool_slot *slot = &x->tool_slots[i];
        if (!slot->cred_missing) continue;
        /* The user has not connected the provider: nothing of the batch
         * runs; the run waits for the connection. */
        const cJSON *call = cJSON_GetArrayItem(x->pending_calls, (int)i);
        slot_auth sa;
        slot_auth_of(slot, &sa);
        char url[1024], id[STORE_CALL_ID_MAX], provider[72], tname[160];
        str_copy(provider, sizeof provider, sa.provider ? sa.provider : "");
        str_copy(tname, sizeof tname, sa.tool ? sa.tool : "");
        str_copy(url, sizeof url, slot->connect_url ? slot->connect_url : "");
        str_copy(id, sizeof id, run_call_str(call, "id"));
        run_tools_free_slots(x);
        cJSON_Delete(x->pending_calls);
        x->pending_calls = NULL;
        cJSON_Delete(x->results);
        x->results = NULL;
        run_pause(x, RUN_WAITING_AUTH, NULL, provider, url[0] ? url : NULL, tname, id, sa.timeout_s);
        return;
    }
    run_tools_go(x);
}

static void run_tool_cred(void *arg, const runs_cred_answer *a)
{
    tool_slot *slot = arg;
    run_exec *x = slot->x;
    slot->cred_fetch = NULL;
    if (a->status == RUNS_CRED_OK && a->header_name && a->header_value) {
        slot->auth_name = xstrdup(a->header_name);
        slot->auth_value = xstrdup(a->header_value);
        str_copy(slot->connection_id, sizeof slot->connection_id, a->connection_id ? a->connection_id : "");
        slot->cred_fetched_at = time_now_unix();
    } else if (a->status == RUNS_CRED_MISSING) {
        slot->cred_missing = true;
        if (a->connect_url) slot->connect_url = xstrdup(a->connect_url);
    } else {
        slot_auth sa;
        slot_auth_of(slot, &sa);
        slot->verdict = GUARD_REFUSE;
        snprintf(slot->why, sizeof slot->why, "error: the credential for %s could not be had: %s",
                 sa.provider ? sa.provider : "the tool", a->why ? a->why : "the credential store failed");
    }
    if (--x->n_creds_pending == 0) run_tools_creds_done(x);
}

/* A resumed run's decision on call `id`, if it holds one. */
static const cJSON *run_decision(run_exec *x, const char *id)
{
    return x->decisions ? cJSON_GetObjectItemCaseSensitive(x->decisions, id) : NULL;
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
    x->n_creds_pending = 0;

    /* Phase 1: the guards, for the whole batch. */
    cJSON *asks = NULL;                 /* calls that wait for a person */
    for (size_t i = 0; i < n; i++) {
        const cJSON *call = cJSON_GetArrayItem(calls, (int)i);
        const char *id = run_call_str(call, "id"), *tname = run_call_str(call, "name");
        const char *targs = run_call_str(call, "arguments");
        tool_slot *slot = &x->tool_slots[i];
        slot->x = x;
        slot->index = i;
        char span_name[96];
        snprintf(span_name, sizeof span_name, "tool %.64s", tname);
        slot->span = obs_span_begin(x->run_span ? obs_span_ctx(x->run_span) : NULL, span_name,
                                    OBS_SPAN_INTERNAL, &x->sc);
        obs_span_set_str(slot->span, "gen_ai.operation.name", "execute_tool");
        obs_span_set_str(slot->span, "gen_ai.tool.name", tname);
        obs_span_set_str(slot->span, "gen_ai.tool.call.id", id);
        obs_span_set_str(slot->span, "brigade.credential", x->sc.key_id);

        guard_effect ge = {.kind = GUARD_EFFECT_TOOL_CALL, .json = call, .tool_name = tname,
                           .arguments = targs, .span = slot->span};
        guard_decision gd = guard_before_effect(x->guard, &x->guard_ctx, &ge);
        run_guard_verdict_events(x);
        slot->verdict = gd.verdict;
        slot->def = gd.tool;
        if (gd.tool && gd.tool->mcp_server)
            obs_span_set_str(slot->span, "brigade.mcp.server", gd.tool->mcp_server->name);
        if (gd.verdict == GUARD_REFUSE || gd.verdict == GUARD_STOP) {
            slot->verdict = GUARD_REFUSE;
            slot->refused_code = gd.code;   /* a string literal of guard.c */
            slot->def = NULL;
            snprintf(slot->why, sizeof slot->why, "error: %s", gd.reason);
            continue;
        }
        if (gd.verdict != GUARD_NEEDS_APPROVAL) continue;
        const cJSON *dec = run_decision(x, id);
        if (dec) {
            const cJSON *ok = cJSON_GetObjectItemCaseSensitive(dec, "approved");
            const cJSON *note = cJSON_GetObjectItemCaseSensitive(dec, "note");
            const cJSON *by = cJSON_GetObjectItemCaseSensitive(dec, "by");
            obs_span_set_str(slot->span, "brigade.approval", cJSON_IsTrue(ok) ? "approved" : "denied");
            if (!cJSON_IsTrue(ok)) {
                slot->denied = true;
                snprintf(slot->why, sizeof slot->why, "denied: the call was not approved (%s)%s%.200s",
                         cJSON_IsString(by) ? by->valuestring : "denied",
                         cJSON_IsString(note) && note->valuestring[0] ? ": " : "",
                         cJSON_IsString(note) ? note->valuestring : "");
            }
            continue;
        }
        if (!asks) asks = cJSON_CreateArray();
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "id", id);
        cJSON_AddStringToObject(a, "tool", tname);
        cJSON_AddStringToObject(a, "arguments", targs);
        cJSON_AddStringToObject(a, "reason", gd.reason);
        cJSON_AddItemToArray(asks, a);
    }
    /* A resumed run's decisions were for this batch only: a later batch
     * that reuses a call id asks again. */
    cJSON_Delete(x->decisions);
    x->decisions = NULL;
    if (asks) {
        /* Nothing of the batch runs before every approval is decided. */
        run_tools_free_slots(x);
        cJSON_Delete(x->pending_calls);
        x->pending_calls = NULL;
        cJSON_Delete(x->results);
        x->results = NULL;
        run_pause(x, RUN_WAITING_APPROVAL, asks, NULL, NULL, NULL, NULL, 0);
        return;
    }

    /* Phase 2: the user's own credentials, for the calls that will run. */
    for (size_t i = 0; i < n; i++) {
        tool_slot *slot = &x->tool_slots[i];
        slot_auth sa;
        if (slot->verdict == GUARD_REFUSE || slot->denied || !slot_auth_of(slot, &sa)) continue;
        if (!x->r->has_creds) {
            slot->verdict = GUARD_REFUSE;
            snprintf(slot->why, sizeof slot->why, "error: the tool %.64s needs the user's own "
                     "credential, but no credential store is configured", sa.tool);
            continue;
        }
        x->n_creds_pending++;
    }
    if (x->n_creds_pending == 0) {
        run_tools_go(x);
        return;
    }
    /* Counted first, then asked: an answer never comes before all are out
     * (fetch answers on a later loop turn, credentials.h). */
    for (size_t i = 0; i < n; i++) {
        tool_slot *slot = &x->tool_slots[i];
        slot_auth sa;
        if (slot->verdict == GUARD_REFUSE || slot->denied || !slot_auth_of(slot, &sa)) continue;
        slot->cred_fetch = x->r->creds.fetch(x->r->creds.self, x->t->loop, &x->sc, sa.provider, sa.scopes,
                                             sa.n_scopes, sa.header, sa.format, run_tool_cred, slot);
    }
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
    run_tools_free_slots(x);
}
