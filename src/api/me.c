/* me.c — GET /v1/me: who the caller is, its limits and what it has spent
 * today and this month (UTC), so a client can show a user their own state. */
#include "api/api.h"

#include <string.h>

#include "util/timeutil.h"

void api_me_get(api_ctx *ctx)
{
    store *st = ctx->env->store;
    user_rec u;
    tenant_rec t;
    store_status s = store_user_get(st, &ctx->scope, ctx->scope.user_id, &u);
    if (s != STORE_OK) {
        api_fail_store(ctx, s, "user");
        return;
    }
    s = store_tenant_get(st, &ctx->scope, ctx->scope.tenant_id, &t);
    if (s != STORE_OK) {
        api_fail_store(ctx, s, "tenant");
        return;
    }
    govern_period day, month;
    govern_spend(gate_govern(ctx->env->gate), ctx->scope.tenant_id, ctx->scope.user_id, &day, &month);
    cJSON *o = cJSON_CreateObject();
    cJSON *user = cJSON_AddObjectToObject(o, "user");
    cJSON_AddStringToObject(user, "id", u.id);
    cJSON_AddStringToObject(user, "external_id", u.external_id);
    cJSON_AddStringToObject(user, "tier", u.tier);
    cJSON_AddBoolToObject(user, "disabled", u.disabled);
    cJSON *tenant = cJSON_AddObjectToObject(o, "tenant");
    cJSON_AddStringToObject(tenant, "id", t.id);
    cJSON_AddStringToObject(tenant, "name", t.name);
    tenant_rec_free(&t);
    cJSON *limits = api_json_limits(ctx->env, u.tier, &u.limits);
    cJSON_AddItemToObject(o, "limits", limits);
    cJSON *usage = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddItemToObject(usage, "day", api_json_budget_period(&day,
                          cJSON_GetObjectItemCaseSensitive(limits, "daily_budget_usd")));
    cJSON_AddItemToObject(usage, "month", api_json_budget_period(&month,
                          cJSON_GetObjectItemCaseSensitive(limits, "monthly_budget_usd")));
    cJSON_AddNumberToObject(usage, "active_runs",
                            (double)govern_active_runs(gate_govern(ctx->env->gate),
                                                       ctx->scope.tenant_id, ctx->scope.user_id));
    api_reply(ctx, 200, o);
}
