/* key_routes.c — user keys: a tenant admin issues them (the key is shown once,
 * only its hash is kept), lists their prefixes, and revokes them; a user may
 * list and revoke its own. Revocation takes effect on the next request. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "obs/audit.h"

void api_keys_create(api_ctx *ctx)
{
    cJSON *body = api_body_object(ctx, (const char *const[]){"limits", NULL}, true);
    if (!body) return;
    /* A key may carry limits of its own (rpm, tpm, budgets), for example a
     * low budget for a key handed to a batch job. */
    user_limits lim = {-1, -1, -1, -1, -1};
    const cJSON *limits = cJSON_GetObjectItemCaseSensitive(body, "limits");
    bool ok = !limits || cJSON_IsNull(limits) || api_parse_limits(ctx, limits, false, &lim);
    cJSON_Delete(body);
    if (!ok) return;
    key_rec k;
    char key[KEY_MAX];
    obs_audit_act a;   /* the key and its entry in one transaction */
    obs_audit_act_begin(&a, ctx->env->store, &ctx->scope, NULL, "key.create", NULL, NULL);
    obs_audit_act_target(&a, k.id);
    obs_audit_act_detail(&a, "user_id", k.user_id);
    obs_audit_act_detail(&a, "prefix", k.prefix);
    store_status st = identity_create_user_key_limited(ctx->env->identity, &ctx->scope,
                                                       ctx->req->params[0], &lim, &k, key);
    obs_audit_act_end(&a);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "user");
        return;
    }
    cJSON *o = api_json_key(&k);
    cJSON_AddStringToObject(o, "key", key);
    api_reply(ctx, 201, o);
}

void api_keys_list(api_ctx *ctx)
{
    key_rec *ks = NULL;
    size_t n = 0;
    store_status st = store_key_list(ctx->env->store, &ctx->scope, ctx->req->params[0], &ks, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "user");
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, api_json_key(&ks[i]));
    free(ks);
    api_reply(ctx, 200, api_json_list(arr, false));
}

void api_keys_revoke(api_ctx *ctx)
{
    const char *key_id = ctx->req->params[0];
    obs_audit_act a;
    obs_audit_act_begin(&a, ctx->env->store, &ctx->scope, NULL, "key.revoke", key_id, NULL);
    store_status st = identity_revoke_key(ctx->env->identity, &ctx->scope, key_id);
    obs_audit_act_end(&a);
    if (st == STORE_CONFLICT) {
        api_fail(ctx, 409, "conflict_error", "last_admin_key", NULL,
                 "this is the tenant's last active admin key: create another before revoking it");
        return;
    }
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "key");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", key_id);
    cJSON_AddStringToObject(o, "object", "key");
    cJSON_AddBoolToObject(o, "revoked", true);
    api_reply(ctx, 200, o);
}
