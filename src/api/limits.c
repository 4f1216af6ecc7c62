/* limits.c — reading and showing limit overrides: the `limits` object of
 * PATCH /v1/users/{id}, PATCH /v1/tenants/{id} and POST /v1/users/{id}/keys,
 * and the effective limits shown in responses (an override if set, else
 * the configured value: the user's tier, or governance.tenant_limits).
 *
 * In requests each limit is a non-negative number (0 = unlimited), or null
 * to return to the configured value; budgets are US dollars. */
#include "api/api.h"

#include "util/timeutil.h"

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

/* A period as the governance state has it right now: settled spend (the
 * ledger plus what settled since start), outstanding reservations, and the
 * budget that applies (null = unlimited). */
cJSON *api_json_budget_period(const govern_period *p, const cJSON *budget)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "spent_usd", api_usd(p->spent_nusd));
    cJSON_AddNumberToObject(o, "reserved_usd", api_usd(p->reserved_nusd));
    if (budget && cJSON_IsNumber(budget)) {
        cJSON_AddNumberToObject(o, "budget_usd", budget->valuedouble);
        double left = budget->valuedouble - api_usd(p->spent_nusd) - api_usd(p->reserved_nusd);
        cJSON_AddNumberToObject(o, "remaining_usd", left > 0 ? left : 0);
    } else {
        cJSON_AddNullToObject(o, "budget_usd");
        cJSON_AddNullToObject(o, "remaining_usd");
    }
    char iso[21];
    time_format_iso(iso, p->end_ms / 1000);
    cJSON_AddStringToObject(o, "resets_at", iso);
    return o;
}


cJSON *api_json_budget(api_ctx *ctx)
{
    api_env *a = ctx->env;
    const scope *sc = &ctx->scope;
    cJSON *limits = NULL;
    if (sc->role == SCOPE_USER) {
        user_rec u;
        if (store_user_get(a->store, sc, sc->user_id, &u) != STORE_OK) return NULL;
        limits = api_json_limits(a, u.tier, &u.limits);
    } else if (sc->role == SCOPE_TENANT_ADMIN) {
        tenant_rec t;
        if (store_tenant_get(a->store, sc, sc->tenant_id, &t) != STORE_OK) return NULL;
        limits = api_json_limits_over(&a->cfg.governance.tenant_limits, &t.limits, true);
        tenant_rec_free(&t);
    } else {
        return NULL;
    }
    govern_period day, month;
    govern_spend(gate_govern(a->gate), sc->tenant_id, sc->role == SCOPE_USER ? sc->user_id : "",
                 &day, &month);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scope", sc->role == SCOPE_USER ? "user" : "tenant");
    cJSON_AddItemToObject(o, "day", api_json_budget_period(&day,
                          cJSON_GetObjectItemCaseSensitive(limits, "daily_budget_usd")));
    cJSON_AddItemToObject(o, "month", api_json_budget_period(&month,
                          cJSON_GetObjectItemCaseSensitive(limits, "monthly_budget_usd")));
    cJSON_Delete(limits);
    return o;
}
