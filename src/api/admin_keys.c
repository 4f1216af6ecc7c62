/* admin_keys.c — a tenant's admin keys: POST, GET and DELETE under
 * /v1/tenants/{id}/admin-keys. The tenant's admin rotates its own keys (a
 * new one first, then the leaked one revoked); the server admin may mint
 * one for a tenant that lost all of its keys. The last active admin key
 * cannot be revoked, so no tenant locks itself out. A tenant admin naming
 * another tenant gets 404. Every change is audited; a key is shown once. */
#include "api/api.h"

#include <stdlib.h>

#include "obs/audit.h"

static void api_admin_keys_fail(api_ctx *ctx, store_status st)
{
    if (st == STORE_CONFLICT)
        api_fail(ctx, 409, "conflict_error", "last_admin_key", NULL,
                 "this is the tenant's last active admin key: create another before revoking it");
    else
        api_fail_store(ctx, st, "admin key");
}

void api_admin_keys_create(api_ctx *ctx)
{
    cJSON *body = api_body_object(ctx, (const char *const[]){NULL}, true);
    if (!body) return;
    cJSON_Delete(body);
    const char *tenant_id = ctx->req->params[0];
    key_rec k;
    char key[KEY_MAX];
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "kind", "tenant_admin");
    obs_audit_act a;   /* the key and its entry in one transaction */
    obs_audit_act_begin(&a, ctx->env->store, &ctx->scope, tenant_id, "key.create", NULL, d);
    obs_audit_act_target(&a, k.id);
    obs_audit_act_detail(&a, "prefix", k.prefix);
    store_status st = identity_create_admin_key(ctx->env->identity, &ctx->scope, tenant_id, &k, key);
    obs_audit_act_end(&a);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "tenant");
        return;
    }
    cJSON *o = api_json_key(&k);
    cJSON_AddStringToObject(o, "key", key);
    api_reply(ctx, 201, o);
}

void api_admin_keys_list(api_ctx *ctx)
{
    key_rec *ks = NULL;
    size_t n = 0;
    store_status st = identity_list_admin_keys(ctx->env->identity, &ctx->scope, ctx->req->params[0], &ks, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "tenant");
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, api_json_key(&ks[i]));
    free(ks);
    api_reply(ctx, 200, api_json_list(arr, false));
}

void api_admin_keys_revoke(api_ctx *ctx)
{
    const char *tenant_id = ctx->req->params[0], *key_id = ctx->req->params[1];
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "kind", "tenant_admin");
    obs_audit_act a;
    obs_audit_act_begin(&a, ctx->env->store, &ctx->scope, tenant_id, "key.revoke", key_id, d);
    store_status st = identity_revoke_admin_key(ctx->env->identity, &ctx->scope, tenant_id, key_id);
    obs_audit_act_end(&a);
    if (st != STORE_OK) {
        api_admin_keys_fail(ctx, st);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", key_id);
    cJSON_AddStringToObject(o, "object", "key");
    cJSON_AddBoolToObject(o, "revoked", true);
    api_reply(ctx, 200, o);
}
