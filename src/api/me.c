/* me.c — GET /v1/me: who the caller is, its limits and what it has spent
 * today and this month (UTC), so a client can show a user their own state. */
#include "api/api.h"

#include <string.h>
#include <time.h>

#include "util/timeutil.h"

/* Start of the current UTC day and month, as unix seconds. */
static void api_me_periods(int64_t now, int64_t *day_start, int64_t *month_start)
{
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    *day_start = (int64_t)timegm(&tm);
    tm.tm_mday = 1;
    *month_start = (int64_t)timegm(&tm);
}

static cJSON *api_me_period(int64_t spent_nusd, const cJSON *budget)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "spent_usd", api_usd(spent_nusd));
    cJSON_AddNumberToObject(o, "reserved_usd", 0);   /* no reservations in flight yet */
    if (budget && cJSON_IsNumber(budget)) cJSON_AddNumberToObject(o, "budget_usd", budget->valuedouble);
    else cJSON_AddNullToObject(o, "budget_usd");
    return o;
}

void api_me_get(api_ctx *ctx)
{
    store *st = ctx->app->store;
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
    int64_t now = time_now_unix(), day_start, month_start, day_spent = 0, month_spent = 0;
    api_me_periods(now, &day_start, &month_start);
    if ((s = store_usage_spent(st, &ctx->scope, day_start, now + 1, &day_spent)) != STORE_OK ||
        (s = store_usage_spent(st, &ctx->scope, month_start, now + 1, &month_spent)) != STORE_OK) {
        tenant_rec_free(&t);
        api_fail_store(ctx, s, "usage");
        return;
    }
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
    cJSON *limits = api_json_limits(ctx->app, u.tier, &u.limits);
    cJSON_AddItemToObject(o, "limits", limits);
    cJSON *usage = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddItemToObject(usage, "day", api_me_period(day_spent,
                          cJSON_GetObjectItemCaseSensitive(limits, "daily_budget_usd")));
    cJSON_AddItemToObject(usage, "month", api_me_period(month_spent,
                          cJSON_GetObjectItemCaseSensitive(limits, "monthly_budget_usd")));
    api_reply(ctx, 200, o);
}
