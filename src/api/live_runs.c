/* live_runs.c — a tenant admin's live runs: the tenant's active runs as the
 * run registry has them (GET /v1/runs), and cancelling one of them (POST
 * /v1/runs/{id}/cancel with a tenant admin key, on whichever instance runs
 * it; a user's own cancel is in sessions.c). The console's "Live runs" page is made of these two. */
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

/* Not active here: with several instances on one PostgreSQL it may be
 * another's, which finds the mark (store_run_request_cancel) within its
 * next sync round and stops it; then, as here, audited and answered 202.
 * Off the loop: both are store calls. */
static void admin_cancel_work(http_request *req)
{
    api_ctx *ctx = req->user;
    const char *run_id = ctx->req->params[0];
    if (ctx->status == 0) {    /* not found here: ask the run's owner */
        bool requested = false;
        store_status st = store_run_request_cancel(ctx->env->store, &ctx->scope, run_id, &requested);
        if (st != STORE_OK) {
            ctx->status = 500;
            return;
        }
        if (!requested) {
            ctx->status = 404;
            return;
        }
    }
    ctx->status = 202;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "run_id", run_id);
    obs_audit(ctx->env->store, &ctx->scope, "run.cancel", run_id, d);
}

static void admin_cancel_done(http_request *req)
{
    api_ctx *ctx = req->user;
    const char *run_id = ctx->req->params[0];
    if (ctx->status == 404) {
        ctx->status = 0;
        api_fail(ctx, 404, "not_found_error", "not_found", NULL,
                 "no active run %s in your tenant (GET /v1/runs lists them)", run_id);
    } else if (ctx->status == 500) {
        ctx->status = 0;
        api_fail_store(ctx, STORE_ERROR, "run");
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", run_id);
        cJSON_AddStringToObject(o, "object", "run");
        cJSON_AddBoolToObject(o, "cancel_requested", true);
        api_reply(ctx, 202, o);
    }
    api_send(ctx);
}

void api_runs_cancel_as_admin(api_ctx *ctx)
{
    /* status 0: not active on this instance; 202: cancelled here */
    ctx->status = runs_cancel_in_tenant(ctx->env->runs, ctx->scope.tenant_id, ctx->req->params[0]) ? 202 : 0;
    http_request_defer(ctx->req, admin_cancel_work, admin_cancel_done);
}
