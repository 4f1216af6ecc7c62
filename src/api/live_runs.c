/* live_runs.c — a tenant admin's live runs: the tenant's active runs as the
 * run registry has them (GET /v1/runs), and cancelling one of them (POST
 * /v1/runs/{id}/cancel with a tenant admin key; a user's own cancel is in
 * sessions.c). The console's "Live runs" page is made of these two. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "obs/audit.h"

#define LIVE_RUNS_MAX 500   /* one page is all: more active runs than this is an outage */

void api_runs_list_live(api_ctx *ctx)
{
    runs_live *live = calloc(LIVE_RUNS_MAX + 1, sizeof *live);
    if (!live) {
        api_fail(ctx, 500, "api_error", "internal_error", NULL, "out of memory");
        return;
    }
    size_t n = runs_list_live(ctx->env->runs, ctx->scope.tenant_id, live, LIVE_RUNS_MAX + 1);
    bool more = n > LIVE_RUNS_MAX;
    if (more) n = LIVE_RUNS_MAX;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *arr = cJSON_AddArrayToObject(root, "data");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", live[i].run_id);
        cJSON_AddStringToObject(o, "object", "run");
        cJSON_AddStringToObject(o, "session_id", live[i].session_id);
        cJSON_AddStringToObject(o, "user_id", live[i].user_id);
        cJSON_AddStringToObject(o, "status", run_status_name(live[i].status));
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddBoolToObject(root, "has_more", more);
    free(live);
    api_reply(ctx, 200, root);
}

/* the cancel is audited off the loop (a store write), then answered */
static void admin_cancel_audit_work(http_request *req)
{
    api_ctx *ctx = req->user;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "run_id", ctx->req->params[0]);
    obs_audit(ctx->env->store, &ctx->scope, "run.cancel", ctx->req->params[0], d);
}

static void admin_cancel_audit_done(http_request *req)
{
    api_ctx *ctx = req->user;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", ctx->req->params[0]);
    cJSON_AddStringToObject(o, "object", "run");
    cJSON_AddBoolToObject(o, "cancel_requested", true);
    api_reply(ctx, 202, o);
    api_send(ctx);
}

void api_runs_cancel_as_admin(api_ctx *ctx)
{
    const char *run_id = ctx->req->params[0];
    if (!runs_cancel_in_tenant(ctx->env->runs, ctx->scope.tenant_id, run_id)) {
        api_fail(ctx, 404, "not_found_error", "not_found", NULL,
                 "no active run %s in your tenant (GET /v1/runs lists them)", run_id);
        api_send(ctx);
        return;
    }
    http_request_defer(ctx->req, admin_cancel_audit_work, admin_cancel_audit_done);
}
