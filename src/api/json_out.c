/* json_out.c — the JSON shapes of brigade's objects, in one place so every
 * route shows a tenant, user, key or limit set the same way. Secrets (key
 * hashes, JWT keys) never appear here. */
#include "api/api.h"

#include "util/timeutil.h"

double api_usd(int64_t nusd) { return (double)nusd / 1e9; }

cJSON *api_json_list(cJSON *data, bool has_more)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToObject(o, "data", data ? data : cJSON_CreateArray());
    cJSON_AddBoolToObject(o, "has_more", has_more);
    return o;
}

cJSON *api_json_tenant(const api_env *env, const tenant_rec *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "object", "tenant");
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "default_tier", t->default_tier);
    if (t->has_jwt) {
        cJSON *j = cJSON_AddObjectToObject(o, "jwt");
        cJSON_AddStringToObject(j, "issuer", t->jwt.issuer);
        if (t->jwt.audience[0]) cJSON_AddStringToObject(j, "audience", t->jwt.audience);
        else cJSON_AddNullToObject(j, "audience");
        cJSON_AddStringToObject(j, "alg", t->jwt.alg);
    } else {
        cJSON_AddNullToObject(o, "jwt");
    }
    cJSON_AddItemToObject(o, "limits", api_json_limits_over(&env->cfg.governance.tenant_limits,
                                                            &t->limits, true));
    cJSON_AddNumberToObject(o, "created_at", (double)t->created_at);
    return o;
}

cJSON *api_json_limits(const api_env *env, const char *tier, const user_limits *over)
{
    /* A tier that the configuration no longer has falls back to the default
     * tier, so a renamed tier never turns into "unlimited". */
    const tier_cfg *t = config_find_tier(&env->cfg, tier);
    if (!t) t = config_find_tier(&env->cfg, env->cfg.default_tier);
    return api_json_limits_over(t, over, true);
}

cJSON *api_json_user(const api_env *env, const user_rec *u)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", u->id);
    cJSON_AddStringToObject(o, "object", "user");
    cJSON_AddStringToObject(o, "tenant_id", u->tenant_id);
    cJSON_AddStringToObject(o, "external_id", u->external_id);
    if (u->display_name[0]) cJSON_AddStringToObject(o, "display_name", u->display_name);
    else cJSON_AddNullToObject(o, "display_name");
    cJSON_AddStringToObject(o, "tier", u->tier);
    cJSON_AddBoolToObject(o, "disabled", u->disabled);
    cJSON_AddItemToObject(o, "limits", api_json_limits(env, u->tier, &u->limits));
    cJSON_AddNumberToObject(o, "created_at", (double)u->created_at);
    return o;
}

cJSON *api_json_key(const key_rec *k)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", k->id);
    cJSON_AddStringToObject(o, "object", "key");
    cJSON_AddStringToObject(o, "kind", k->kind == KEY_KIND_ADMIN ? "tenant_admin" : "user");
    cJSON_AddStringToObject(o, "prefix", k->prefix);
    if (k->user_id[0]) cJSON_AddStringToObject(o, "user_id", k->user_id);
    else cJSON_AddNullToObject(o, "user_id");
    cJSON_AddNumberToObject(o, "created_at", (double)k->created_at);
    if (k->revoked_at) cJSON_AddNumberToObject(o, "revoked_at", (double)k->revoked_at);
    else cJSON_AddNullToObject(o, "revoked_at");
    if (k->kind == KEY_KIND_USER)
        cJSON_AddItemToObject(o, "limits", api_json_limits_over(NULL, &k->limits, false));
    return o;
}
