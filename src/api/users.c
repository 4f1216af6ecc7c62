/* users.c — /v1/users: a tenant admin creates, lists, reads, changes and
 * erases its tenant's users. A user credential may read only itself
 * (GET /v1/users/{own id}); any other user is "not found". */
#include "api/api.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "obs/audit.h"

#define USERS_PAGE_DEFAULT 20
#define USERS_PAGE_MAX 100

static bool api_tier_known(api_ctx *ctx, const char *tier)
{
    if (config_find_tier(&ctx->env->cfg, tier)) return true;
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
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "external_id", external_id);
    obs_audit_act a;   /* the user and its entry in one transaction */
    obs_audit_act_begin(&a, ctx->env->store, &ctx->scope, NULL, "user.create", NULL, d);
    obs_audit_act_target(&a, u.id);
    obs_audit_act_detail(&a, "tier", u.tier);   /* the default one when none was given */
    store_status st = identity_create_user(ctx->env->identity, &ctx->scope, external_id,
                                           has_tier ? tier : NULL,
                                           display_name[0] ? display_name : NULL, &u);
    obs_audit_act_end(&a);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, st == STORE_CONFLICT ? "a user with this external_id" : "user");
        goto out;
    }
    api_reply(ctx, 201, api_json_user(ctx->env, &u));
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
    store_status st = store_user_list(ctx->env->store, &ctx->scope, after, (size_t)limit + 1,
                                      &us, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "user");
        return;
    }
    bool has_more = n > (size_t)limit;
    if (has_more) n = (size_t)limit;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, api_json_user(ctx->env, &us[i]));
    free(us);
    api_reply(ctx, 200, api_json_list(arr, has_more));
}

void api_users_get(api_ctx *ctx)
{
    user_rec u;
    store_status st = store_user_get(ctx->env->store, &ctx->scope, ctx->req->params[0], &u);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "user");
        return;
    }
    api_reply(ctx, 200, api_json_user(ctx->env, &u));
}

void api_users_patch(api_ctx *ctx)
{
    static const char *const allowed[] = {"tier", "disabled", "limits", "display_name", NULL};
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
        /* The store takes the complete override set: start from the current one. */
        user_rec cur;
        store_status st = store_user_get(ctx->env->store, &ctx->scope, user_id, &cur);
        if (st != STORE_OK) {
            api_fail_store(ctx, st, "user");
            goto out;
        }
        upd.limits = cur.limits;
        upd.set_limits = true;
        if (!api_parse_limits(ctx, limits, true, &upd.limits)) goto out;
    }
    /* The record of who changed what: the request's fields as given (no
     * secrets can be in them), and budgets separately, since invariant 5
     * names budget changes. Both entries ride on the update's transaction. */
    obs_audit_act update_act, budget_act;
    bool has_update = false;
    cJSON *changed = cJSON_Duplicate(body, true);
    cJSON_DeleteItemFromObjectCaseSensitive(changed, "limits");
    if (changed->child) {
        obs_audit_act_begin(&update_act, ctx->env->store, &ctx->scope, NULL, "user.update", user_id,
                            changed);
        has_update = true;
    } else {
        cJSON_Delete(changed);
    }
    if (limits) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddItemToObject(d, "limits", cJSON_Duplicate(limits, true));
        obs_audit_act_begin(&budget_act, ctx->env->store, &ctx->scope, NULL, "budget.change",
                            user_id, d);
    }
    user_rec u;
    store_status st = identity_update_user(ctx->env->identity, &ctx->scope, user_id, &upd, &u);
    if (limits) obs_audit_act_end(&budget_act);
    if (has_update) obs_audit_act_end(&update_act);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "user");
        goto out;
    }
    api_reply(ctx, 200, api_json_user(ctx->env, &u));
out:
    cJSON_Delete(body);
}

void api_users_delete(api_ctx *ctx)
{
    const char *user_id = ctx->req->params[0];
    /* a tombstone: the user's data is gone, the record of its erasure stays */
    cJSON *d = cJSON_CreateObject();
    cJSON *what = cJSON_AddArrayToObject(d, "erased");
    static const char *const kinds[] = {"keys", "sessions", "messages", "runs", "memory"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        cJSON_AddItemToArray(what, cJSON_CreateString(kinds[i]));
    obs_audit_act a;
    obs_audit_act_begin(&a, ctx->env->store, &ctx->scope, NULL, "user.delete", user_id, d);
    store_status st = identity_delete_user(ctx->env->identity, &ctx->scope, user_id);
    obs_audit_act_end(&a);
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
