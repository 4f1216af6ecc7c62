/* limits.c — reading and showing limit overrides: the `limits` object of
 * PATCH /v1/users/{id}, PATCH /v1/tenants/{id} and POST /v1/users/{id}/keys,
 * and the effective limits shown in responses (an override if set, else
 * the configured value: the user's tier, or governance.tenant_limits).
 *
 * In requests each limit is a non-negative number (0 = unlimited), or null
 * to return to the configured value; budgets are US dollars. */
#include "api/api.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const api_limit_names[] = {"rpm", "tpm", "max_concurrent_runs",
                                              "daily_budget_usd", "monthly_budget_usd"};

static int64_t *api_limit_slot(user_limits *l, size_t i)
{
    switch (i) {
    case 0: return &l->rpm;
    case 1: return &l->tpm;
    case 2: return &l->max_concurrent_runs;
    case 3: return &l->daily_budget_nusd;
    default: return &l->monthly_budget_nusd;
    }
}

bool api_parse_limits(api_ctx *ctx, const cJSON *limits, bool allow_concurrency, user_limits *inout)
{
    if (!cJSON_IsObject(limits)) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_type", "limits",
                 "field \"limits\" must be an object");
        return false;
    }
    for (const cJSON *f = limits->child; f; f = f->next) {
        size_t i;
        for (i = 0; i < 5; i++)
            if (strcmp(f->string, api_limit_names[i]) == 0) break;
        if (i == 5 || (i == 2 && !allow_concurrency)) {
            api_fail(ctx, 400, "invalid_request_error", "unknown_field", "limits",
                     "unknown limit \"%.40s\" (known: rpm, tpm, %sdaily_budget_usd, "
                     "monthly_budget_usd)", f->string, allow_concurrency ? "max_concurrent_runs, " : "");
            return false;
        }
        int64_t *out = api_limit_slot(inout, i);
        if (cJSON_IsNull(f)) { *out = -1; continue; }
        bool money = i >= 3;
        char param[64];
        snprintf(param, sizeof param, "limits.%s", api_limit_names[i]);
        double d = cJSON_IsNumber(f) ? f->valuedouble : -1;
        double max = money ? 1e9 : 1e12;
        if (!cJSON_IsNumber(f) || !isfinite(d) || d < 0 || d > max || (!money && d != floor(d))) {
            api_fail(ctx, 400, "invalid_request_error", "invalid_value", param,
                     "%s must be %s from 0 (unlimited) to %.0f, or null for the configured value",
                     param, money ? "a number of US dollars" : "a whole number", max);
            return false;
        }
        *out = money ? (int64_t)llround(d * 1e9) : (int64_t)d;
    }
    return true;
}

/* A limit: the override if set, else the configured value; 0 = unlimited
 * is shown as null so clients need no magic number. */
static void api_json_limit_num(cJSON *o, const char *name, double v)
{
    if (v <= 0) cJSON_AddNullToObject(o, name);
    else cJSON_AddNumberToObject(o, name, v);
}

cJSON *api_json_limits_over(const tier_cfg *base, const user_limits *over, bool with_concurrency)
{
    static const tier_cfg none = {0};
    static const user_limits unset = {-1, -1, -1, -1, -1};
    if (!base) base = &none;
    if (!over) over = &unset;
    cJSON *o = cJSON_CreateObject();
    api_json_limit_num(o, "rpm", over->rpm >= 0 ? (double)over->rpm : (double)base->rpm);
    api_json_limit_num(o, "tpm", over->tpm >= 0 ? (double)over->tpm : (double)base->tpm);
    if (with_concurrency)
        api_json_limit_num(o, "max_concurrent_runs",
                           over->max_concurrent_runs >= 0 ? (double)over->max_concurrent_runs
                                                          : (double)base->max_concurrent_runs);
    api_json_limit_num(o, "daily_budget_usd", over->daily_budget_nusd >= 0
                                                  ? api_usd(over->daily_budget_nusd)
                                                  : base->daily_budget_usd);
    api_json_limit_num(o, "monthly_budget_usd", over->monthly_budget_nusd >= 0
                                                    ? api_usd(over->monthly_budget_nusd)
                                                    : base->monthly_budget_usd);
    return o;
}
