/* sessions.c — a user's sessions with agents, their transcripts, messages
 * that start runs, and the runs themselves. Everything is the calling
 * user's own: another user's session or run is "not found". Posting a
 * message and cancelling a run hand the request to the harness (runs.h)
 * through the API's subscriber (run_answer.c); the rest are store reads
 * and writes on the thread pool. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "runs/runs.h"

#define SESSIONS_PAGE_DEFAULT 20
#define SESSIONS_PAGE_MAX 100
#define MESSAGES_PAGE_DEFAULT 100
#define MESSAGES_PAGE_MAX 500
#define SESSION_METADATA_MAX 16384
#define MESSAGE_CONTENT_MAX (64u << 10)

static cJSON *api_json_session(const session_rec *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", s->id);
    cJSON_AddStringToObject(o, "object", "session");
    cJSON_AddStringToObject(o, "agent", s->agent);
    cJSON *meta = s->metadata_json ? cJSON_Parse(s->metadata_json) : NULL;
    cJSON_AddItemToObject(o, "metadata", meta ? meta : cJSON_CreateObject());
    cJSON_AddNumberToObject(o, "message_count", (double)s->message_count);
    cJSON_AddNumberToObject(o, "created_at", (double)s->created_at);
    cJSON_AddNumberToObject(o, "updated_at", (double)s->updated_at);
    return o;
}

void api_sessions_create(api_ctx *ctx)
{
    static const char *const allowed[] = {"agent", "metadata", NULL};
    cJSON *body = api_body_object(ctx, allowed, false);
    if (!body) return;
    char agent[STORE_AGENT_MAX];
    char *meta = NULL;
    if (!api_field_string(ctx, body, "agent", true, STORE_AGENT_MAX - 1, agent, sizeof agent, NULL))
        goto out;
    /* The agent as the caller's tenant has it: its own, or the
     * catalogue's it may use; another tenant's is unknown here. */
    tools_tenant tt;
    agent_cfg own = {0};       /* freed below whether or not the store answered */
    const agent_cfg *a = NULL;
    char why[400] = "";
    tools_tenant_status ts = tools_tenant_load(ctx->env->store, &ctx->scope, &ctx->env->cfg, &tt);
    if (ts == TOOLS_TENANT_OK) {
        ts = tools_tenant_agent(ctx->env->store, &ctx->scope, &tt, agent, &own, &a, why, sizeof why);
        tools_tenant_free(&tt);
    }
    bool allowed_tier = a && config_agent_allows_tier(a, ctx->scope.tier);
    config_agent_free(&own);   /* only its name is kept, by the session */
    if (ts == TOOLS_TENANT_ERROR) {
        api_fail_store(ctx, STORE_ERROR, "agent");
        goto out;
    }
    if (ts == TOOLS_TENANT_UNUSABLE) {
        api_fail(ctx, 400, "invalid_request_error", "agent_unavailable", "agent", "%s", why);
        goto out;
    }
    if (!a) {
        api_fail(ctx, 400, "invalid_request_error", "unknown_agent", "agent",
                 "no agent named \"%s\" (GET /v1/agents lists yours)", agent);
        goto out;
    }
    if (!allowed_tier) {
        api_fail(ctx, 403, "permission_error", "agent_not_allowed", "agent",
                 "your tier may not use agent \"%s\"", agent);
        goto out;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "metadata");
    if (m && !cJSON_IsNull(m)) {
        if (!cJSON_IsObject(m)) {
            api_fail(ctx, 400, "invalid_request_error", "invalid_type", "metadata",
                     "\"metadata\" must be an object");
            goto out;
        }
        meta = cJSON_PrintUnformatted(m);
        if (!meta || strlen(meta) > SESSION_METADATA_MAX) {
            api_fail(ctx, 400, "invalid_request_error", "invalid_value", "metadata",
                     "\"metadata\" must be at most %d bytes of JSON", SESSION_METADATA_MAX);
            goto out;
        }
    }
    session_rec s;
    store_status st = store_session_create(ctx->env->store, &ctx->scope, agent, meta, &s);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "session");
        goto out;
    }
    api_reply(ctx, 201, api_json_session(&s));
    session_rec_free(&s);
out:
    cJSON_free(meta);
    cJSON_Delete(body);
}

void api_sessions_list(api_ctx *ctx)
{
    long long limit = SESSIONS_PAGE_DEFAULT;
    if (!api_query_int(ctx, "limit", 1, SESSIONS_PAGE_MAX, &limit, NULL)) return;
    const char *before = http_query_get(ctx->req, "before");
    if (before && strlen(before) >= ID_MAX) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "before",
                 "query parameter \"before\" must be a session id");
        return;
    }
    session_rec *ss = NULL;
    size_t n = 0;
    store_status st = store_session_list(ctx->env->store, &ctx->scope, before, (size_t)limit + 1,
                                         &ss, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "session");
        return;
    }
    bool more = n > (size_t)limit;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n && i < (size_t)limit; i++) cJSON_AddItemToArray(arr, api_json_session(&ss[i]));
    store_free_sessions(ss, n);
    api_reply(ctx, 200, api_json_list(arr, more));
}

void api_sessions_get(api_ctx *ctx)
{
    session_rec s;
    store_status st = store_session_get(ctx->env->store, &ctx->scope, ctx->req->params[0], &s);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "session");
        return;
    }
    api_reply(ctx, 200, api_json_session(&s));
    session_rec_free(&s);
}

void api_sessions_delete(api_ctx *ctx)
{
    const char *id = ctx->req->params[0];
    /* Only this user's sessions can be busy under this id: ids are random. */
    if (runs_session_busy(ctx->env->runs, id)) {
        session_rec s;
        if (store_session_get(ctx->env->store, &ctx->scope, id, &s) == STORE_OK) {
            session_rec_free(&s);
            api_fail(ctx, 409, "conflict_error", "session_busy", NULL,
                     "a run is in progress on this session; cancel it first");
            return;
        }
    }
    store_status st = store_session_delete(ctx->env->store, &ctx->scope, id);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "session");
        return;
    }
    runs_session_deleted(ctx->env->runs, id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "session");
    cJSON_AddBoolToObject(o, "deleted", true);
    api_reply(ctx, 200, o);
}

void api_messages_list(api_ctx *ctx)
{
    long long limit = MESSAGES_PAGE_DEFAULT, after = 0;
    if (!api_query_int(ctx, "limit", 1, MESSAGES_PAGE_MAX, &limit, NULL) ||
        !api_query_int(ctx, "after", 0, INT64_MAX, &after, NULL))
        return;
    message_rec *ms = NULL;
    size_t n = 0;
    store_status st = store_message_list(ctx->env->store, &ctx->scope, ctx->req->params[0], after,
                                         (size_t)limit + 1, &ms, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "session");
        return;
    }
    bool more = n > (size_t)limit;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n && i < (size_t)limit; i++) cJSON_AddItemToArray(arr, api_json_message(&ms[i]));
    store_free_messages(ms, n);
    api_reply(ctx, 200, api_json_list(arr, more));
}

void api_messages_post(api_ctx *ctx)
{
    static const char *const allowed[] = {"content", "stream", "if_busy", NULL};
    cJSON *body = api_body_object(ctx, allowed, false);
    if (!body) {
        api_send(ctx);
        return;
    }
    bool stream = false;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(body, "content");
    const cJSON *busy = cJSON_GetObjectItemCaseSensitive(body, "if_busy");
    runs_if_busy mode = RUNS_BUSY_REJECT;
    if (!content) {
        api_fail(ctx, 400, "invalid_request_error", "missing_field", "content",
                 "missing required field \"content\"");
    } else if (!cJSON_IsString(content) || !content->valuestring[0] ||
               strlen(content->valuestring) > MESSAGE_CONTENT_MAX) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "content",
                 "\"content\" must be a non-empty string of at most %u bytes", MESSAGE_CONTENT_MAX);
    } else if (!api_field_bool(ctx, body, "stream", &stream, NULL)) {
        /* api_fail done */
    } else if (busy && !(cJSON_IsString(busy) && (strcmp(busy->valuestring, "reject") == 0 ||
                                                  strcmp(busy->valuestring, "enqueue") == 0 ||
                                                  strcmp(busy->valuestring, "interrupt") == 0))) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "if_busy",
                 "\"if_busy\" must be \"reject\", \"enqueue\" or \"interrupt\"");
    } else {
        if (busy && strcmp(busy->valuestring, "enqueue") == 0) mode = RUNS_BUSY_ENQUEUE;
        if (busy && strcmp(busy->valuestring, "interrupt") == 0) mode = RUNS_BUSY_INTERRUPT;
        api_run_post(ctx, ctx->req->params[0], content->valuestring, stream, mode);
        cJSON_Delete(body);
        return;
    }
    cJSON_Delete(body);
    api_send(ctx);
}

void api_runs_get(api_ctx *ctx)
{
    run_rec r;
    store_status st = store_run_get(ctx->env->store, &ctx->scope, ctx->req->params[0], &r);
    /* a run whose start is not stored yet (written behind): memory has it */
    if (st == STORE_NOT_FOUND && runs_live_run(ctx->env->runs, &ctx->scope, ctx->req->params[0], &r))
        st = STORE_OK;
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "run");
        return;
    }
    run_status live;
    if (runs_live_status(ctx->env->runs, &ctx->scope, r.id, &live)) r.status = live;
    cJSON *j = api_json_run(&r);
    /* the run's approvals, pending and decided, in the order they were asked */
    approval_rec *a = NULL;
    size_t n = 0;
    if (store_approvals_of_run(ctx->env->store, ctx->scope.tenant_id, ctx->scope.user_id, r.id,
                               &a, &n) == STORE_OK) {
        cJSON *arr = cJSON_AddArrayToObject(j, "approvals");
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, api_json_approval(&a[i]));
        store_free_approvals(a, n);
    }
    /* a paused run: what it waits for, and until when (never the connect
     * link: it is the user's alone, in the run's auth.required event, and
     * POST /v1/connections makes a fresh one) */
    run_wait_rec w;
    if ((r.status == RUN_WAITING_AUTH || r.status == RUN_WAITING_APPROVAL) &&
        store_run_wait_of(ctx->env->store, &ctx->scope, r.id, &w) == STORE_OK) {
        cJSON *wj = cJSON_AddObjectToObject(j, "waiting");
        cJSON_AddStringToObject(wj, "for", w.kind == RUN_WAITING_AUTH ? "auth" : "approval");
        if (w.kind == RUN_WAITING_AUTH) cJSON_AddStringToObject(wj, "provider", w.provider);
        cJSON_AddNumberToObject(wj, "until", (double)w.deadline);
        run_wait_rec_free(&w);
    }
    api_reply(ctx, 200, j);
}

void api_runs_cancel(api_ctx *ctx)
{
    cJSON *body = api_body_object(ctx, (const char *const[]){NULL}, true);
    if (!body) {
        api_send(ctx);
        return;
    }
    cJSON_Delete(body);
    if (ctx->scope.role == SCOPE_TENANT_ADMIN) {
        api_runs_cancel_as_admin(ctx);   /* any active run of the tenant (live_runs.c) */
        return;
    }
    api_run_cancel(ctx, ctx->req->params[0]);
}
