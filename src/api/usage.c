/* usage.c — GET /v1/usage: tokens and cost, grouped by day, model or user.
 * A tenant admin sees its tenant (optionally one user); a user sees only
 * its own usage, whatever `user=` says. Usage rows reach the store within
 * STORE_USAGE_FLUSH_MS of the request that caused them. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A time bound: unix seconds, or a UTC date "YYYY-MM-DD". */
static bool api_usage_time(api_ctx *ctx, const char *name, int64_t *out)
{
    const char *v = http_query_get(ctx->req, name);
    if (!v || !*v) return true;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (*end == '\0' && n >= 0 && n < 253402300800LL) {
        *out = n;
        return true;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(v, "%Y-%m-%d", &tm);
    if (rest && *rest == '\0') {
        *out = (int64_t)timegm(&tm);
        return true;
    }
    api_fail(ctx, 400, "invalid_request_error", "invalid_value", name,
             "query parameter \"%s\" must be unix seconds or a date YYYY-MM-DD (UTC)", name);
    return false;
}

void api_usage_get(api_ctx *ctx)
{
    usage_query q;
    memset(&q, 0, sizeof q);
    q.group_by = USAGE_GROUP_DAY;
    if (!api_usage_time(ctx, "from", &q.from) || !api_usage_time(ctx, "to", &q.to)) return;
    const char *g = http_query_get(ctx->req, "group_by");
    if (g && strcmp(g, "day") == 0) q.group_by = USAGE_GROUP_DAY;
    else if (g && strcmp(g, "model") == 0) q.group_by = USAGE_GROUP_MODEL;
    else if (g && strcmp(g, "user") == 0 && ctx->scope.role == SCOPE_TENANT_ADMIN)
        q.group_by = USAGE_GROUP_USER;
    else if (g) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "group_by",
                 ctx->scope.role == SCOPE_TENANT_ADMIN ? "group_by must be day, model or user"
                                                       : "group_by must be day or model");
        return;
    }
    const char *user = http_query_get(ctx->req, "user");
    if (user && ctx->scope.role == SCOPE_TENANT_ADMIN) {
        if (strlen(user) >= ID_MAX) {
            api_fail(ctx, 400, "invalid_request_error", "invalid_value", "user",
                     "query parameter \"user\" must be a user id");
            return;
        }
        q.user_id = user;
    }
    usage_row *rows = NULL;
    size_t n = 0;
    store_status st = store_usage_query(ctx->app->store, &ctx->scope, &q, &rows, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "usage");
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "group", rows[i].group);
        cJSON_AddNumberToObject(o, "requests", (double)rows[i].requests);
        cJSON_AddNumberToObject(o, "input_tokens", (double)rows[i].input_tokens);
        cJSON_AddNumberToObject(o, "output_tokens", (double)rows[i].output_tokens);
        cJSON_AddNumberToObject(o, "cost_usd", api_usd(rows[i].cost_nusd));
        cJSON_AddItemToArray(arr, o);
    }
    free(rows);
    api_reply(ctx, 200, api_json_list(arr, false));
}
