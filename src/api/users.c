/* users.c — /v1/users: a tenant admin creates, lists, reads, changes and
 * erases its tenant's users. A user credential may read only itself
 * (GET /v1/users/{own id}); any other user is "not found". */
#include "api/api.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define USERS_PAGE_DEFAULT 20
#define USERS_PAGE_MAX 100

static bool api_tier_known(api_ctx *ctx, const char *tier)
{
    if (config_find_tier(&ctx->app->cfg, tier)) return true;
    api_fail(ctx, 400, "invalid_request_error", "unknown_tier", "tier",
             "no tier named \"%s\" in this server's configuration", tier);
    return false;
}

void api_users_create(api_ctx *ctx)
{
    static const char *const allowed[] = {"external_id", "tier", "display_name", NULL};
    cJSON *body = api_body_object(ctx, allowed, false);
    if (!body) return;
    char external_id[STORE_NAME_MAX], tier[32] = "", display_name[STORE_NAME_MAX] = "";
    bool has_tier = false;
    if (!api_field_string(ctx, body, "external_id", true, 255, external_id, sizeof external_id, NULL) ||
        !api_field_string(ctx, body, "tier", false, 31, tier, sizeof tier, &has_tier) ||
        !api_field_string(ctx, body, "display_name", false, 255, display_name,
                          sizeof display_name, NULL))
        goto out;
    if (has_tier && !api_tier_known(ctx, tier)) goto out;
    user_rec u;
    store_status st = identity_create_user(ctx->app->identity, &ctx->scope, external_id,
                                           has_tier ? tier : NULL,
                                           display_name[0] ? display_name : NULL, &u);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, st == STORE_CONFLICT ? "a user with this external_id" : "user");
        goto out;
    }
    api_reply(ctx, 201, api_json_user(ctx->app, &u));
out:
    cJSON_Delete(body);
}

void api_users_list(api_ctx *ctx)
{
    long long limit = USERS_PAGE_DEFAULT;
    if (!api_query_int(ctx, "limit", 1, USERS_PAGE_MAX, &limit, NULL)) return;
    const char *after = http_query_get(ctx->req, "after");
    if (after && strlen(after) >= ID_MAX) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "after",
                 "query parameter \"after\" must be a user id");
        return;
    }
    user_rec *us = NULL;
    size_t n = 0;
    /* Ask for one more than the page to learn whether there is a next page. */
    store_status st = store_user_list(ctx->app->store, &ctx->scope, after, (size_t)limit + 1,
                                      &us, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "user");
        return;
    }
    bool has_more = n > (size_t)limit;
    if (has_more) n = (size_t)limit;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, api_json_user(ctx->app, &us[i]));
    free(us);
    api_reply(ctx, 200, api_json_list(arr, has_more));
}

void api_users_get(api_ctx *ctx)
{
    user_rec u;
    store_status st = store_user_get(ctx->app->store, &ctx->scope, ctx->req->params[0], &u);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "user");
        return;
    }
    api_reply(ctx, 200, api_json_user(ctx->app, &u));
}

/* One limit of a PATCH: a non-negative number, or null for "the tier's". */
static bool api_limit_field(api_ctx *ctx, const cJSON *limits, const char *name, bool money,
                            int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(limits, name);
    if (!v) return true;                        /* unchanged */
    if (cJSON_IsNull(v)) { *out = -1; return true; }
    char param[64];
    snprintf(param, sizeof param, "limits.%s", name);
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    double max = money ? 1e9 : 1e12;
    if (!cJSON_IsNumber(v) || !isfinite(d) || d < 0 || d > max ||
        (!money && d != floor(d))) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", param,
                 "%s must be %s from 0 to %.0f, or null to use the tier's value", param,
                 money ? "a number of US dollars" : "a whole number", max);
        return false;
    }
    *out = money ? (int64_t)llround(d * 1e9) : (int64_t)d;
    return true;
}

void api_users_patch(api_ctx *ctx)
{
    static const char *const allowed[] = {"tier", "disabled", "limits", "display_name", NULL};
    static const char *const limit_names[] = {"rpm", "tpm", "max_concurrent_runs",
                                              "daily_budget_usd", "monthly_budget_usd", NULL};
    const char *user_id = ctx->req->params[0];
    cJSON *body = api_body_object(ctx, allowed, false);
    if (!body) return;
    user_update upd;
    memset(&upd, 0, sizeof upd);
    if (!api_field_string(ctx, body, "tier", false, 31, upd.tier, sizeof upd.tier, &upd.set_tier) ||
        !api_field_bool(ctx, body, "disabled", &upd.disabled, &upd.set_disabled) ||
        !api_field_string(ctx, body, "display_name", false, 255, upd.display_name,
                          sizeof upd.display_name, &upd.set_display_name))
        goto out;
    if (upd.set_tier && !api_tier_known(ctx, upd.tier)) goto out;
    const cJSON *limits = cJSON_GetObjectItemCaseSensitive(body, "limits");
    if (limits) {
        if (!cJSON_IsObject(limits)) {
            api_fail(ctx, 400, "invalid_request_error", "invalid_type", "limits",
                     "field \"limits\" must be an object");
            goto out;
        }
        for (const cJSON *f = limits->child; f; f = f->next) {
            bool known = false;
            for (const char *const *n = limit_names; *n; n++)
                if (strcmp(f->string, *n) == 0) known = true;
            if (!known) {
                api_fail(ctx, 400, "invalid_request_error", "unknown_field", "limits",
                         "unknown limit \"%.40s\" (known: rpm, tpm, max_concurrent_runs, "
                         "daily_budget_usd, monthly_budget_usd)", f->string);
                goto out;
            }
        }
        /* The store takes the complete override set: start from the current one. */
        user_rec cur;
        store_status st = store_user_get(ctx->app->store, &ctx->scope, user_id, &cur);
        if (st != STORE_OK) {
            api_fail_store(ctx, st, "user");
            goto out;
        }
        upd.limits = cur.limits;
        upd.set_limits = true;
        if (!api_limit_field(ctx, limits, "rpm", false, &upd.limits.rpm) ||
            !api_limit_field(ctx, limits, "tpm", false, &upd.limits.tpm) ||
            !api_limit_field(ctx, limits, "max_concurrent_runs", false,
                             &upd.limits.max_concurrent_runs) ||
            !api_limit_field(ctx, limits, "daily_budget_usd", true, &upd.limits.daily_budget_nusd) ||
            !api_limit_field(ctx, limits, "monthly_budget_usd", true,
                             &upd.limits.monthly_budget_nusd))
            goto out;
    }
    user_rec u;
    store_status st = identity_update_user(ctx->app->identity, &ctx->scope, user_id, &upd, &u);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "user");
        goto out;
    }
    api_reply(ctx, 200, api_json_user(ctx->app, &u));
out:
    cJSON_Delete(body);
}

void api_users_delete(api_ctx *ctx)
{
    const char *user_id = ctx->req->params[0];
    store_status st = identity_delete_user(ctx->app->identity, &ctx->scope, user_id);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "user");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", user_id);
    cJSON_AddStringToObject(o, "object", "user");
    cJSON_AddBoolToObject(o, "deleted", true);
    api_reply(ctx, 200, o);
}
