/* tenants.c — POST/GET /v1/tenants and PATCH /v1/tenants/{id}: the server
 * admin makes tenants (each with its first admin key, shown once, and
 * optionally its JWT settings); afterwards only the tenant's own admin sets
 * how its user JWTs are checked, and the server admin its limits. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/jwt.h"
#include "obs/audit.h"
#include "util/xalloc.h"

/* Read {issuer, audience, alg, key} into jwt (jwt->key malloc'd). */
static bool api_tenant_jwt_parse(api_ctx *ctx, const cJSON *v, tenant_jwt *jwt)
{
    static const char *const allowed[] = {"issuer", "audience", "alg", "key", NULL};
    memset(jwt, 0, sizeof *jwt);
    if (!cJSON_IsObject(v)) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_type", "jwt",
                 "field \"jwt\" must be an object {issuer, audience, alg, key} or null");
        return false;
    }
    for (const cJSON *f = v->child; f; f = f->next) {
        bool known = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(f->string, *a) == 0) known = true;
        if (!known) {
            api_fail(ctx, 400, "invalid_request_error", "unknown_field", "jwt",
                     "unknown field \"jwt.%.40s\"", f->string);
            return false;
        }
    }
    if (!api_field_string(ctx, v, "issuer", true, STORE_NAME_MAX - 1, jwt->issuer,
                          sizeof jwt->issuer, NULL) ||
        !api_field_string(ctx, v, "audience", true, STORE_NAME_MAX - 1, jwt->audience,
                          sizeof jwt->audience, NULL) ||
        !api_field_string(ctx, v, "alg", true, 7, jwt->alg, sizeof jwt->alg, NULL))
        return false;
    jwt_alg alg = jwt_alg_from_name(jwt->alg);
    if (alg == JWT_ALG_NONE) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "jwt.alg",
                 "jwt.alg must be HS256, RS256 or ES256");
        return false;
    }
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(v, "key");
    if (!cJSON_IsString(key) || !key->valuestring[0] || strlen(key->valuestring) > 16384) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "jwt.key",
                 "jwt.key must be the HS256 secret or a PEM public key (at most 16 KiB)");
        return false;
    }
    char why[200];
    if (jwt_check_key(alg, key->valuestring, strlen(key->valuestring), why, sizeof why) != 0) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "jwt.key",
                 "jwt.key is not usable for %s: %s", jwt->alg, why);
        return false;
    }
    jwt->key = xstrdup(key->valuestring);
    return true;
}

/* The audit's view of JWT settings: issuer, audience, alg and the key's
 * fingerprint — never the key. */
static cJSON *api_jwt_summary_json(const jwt_settings_summary *s)
{
    if (!s->set) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "issuer", s->issuer);
    if (s->audience[0]) cJSON_AddStringToObject(o, "audience", s->audience);
    else cJSON_AddNullToObject(o, "audience");
    cJSON_AddStringToObject(o, "alg", s->alg);
    if (s->key_fingerprint[0]) cJSON_AddStringToObject(o, "key_sha256", s->key_fingerprint);
    else cJSON_AddNullToObject(o, "key_sha256");
    return o;
}

static void api_jwt_summary_of(const tenant_jwt *jwt, jwt_settings_summary *s)
{
    memset(s, 0, sizeof *s);
    if (!jwt) return;
    s->set = true;
    /* the precision bounds what gcc -O2 cannot see is NUL-terminated in time */
    snprintf(s->issuer, sizeof s->issuer, "%.*s", (int)sizeof s->issuer - 1, jwt->issuer);
    snprintf(s->audience, sizeof s->audience, "%.*s", (int)sizeof s->audience - 1, jwt->audience);
    snprintf(s->alg, sizeof s->alg, "%.*s", (int)sizeof s->alg - 1, jwt->alg);
    identity_key_fingerprint(jwt->key, strlen(jwt->key), s->key_fingerprint);
}

void api_tenants_create(api_ctx *ctx)
{
    static const char *const allowed[] = {"name", "jwt", NULL};
    cJSON *body = api_body_object(ctx, allowed, false);
    if (!body) return;
    char name[129];
    tenant_jwt jwt = {0};
    bool has_jwt = false;
    if (!api_field_string(ctx, body, "name", true, 128, name, sizeof name, NULL)) goto out;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(body, "jwt");
    if (j && !cJSON_IsNull(j)) {
        if (!api_tenant_jwt_parse(ctx, j, &jwt)) goto out;
        has_jwt = true;
    }
    tenant_rec t;
    char admin_key[KEY_MAX];
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", name);
    {
        jwt_settings_summary js;
        api_jwt_summary_of(has_jwt ? &jwt : NULL, &js);
        cJSON_AddItemToObject(d, "jwt", api_jwt_summary_json(&js));
    }
    obs_audit_act a;   /* the tenant and its entry in one transaction */
    obs_audit_act_begin(&a, ctx->env->store, &ctx->scope, "", "tenant.create", NULL, d);
    obs_audit_act_tenant(&a, t.id);
    obs_audit_act_target(&a, t.id);
    store_status st = identity_create_tenant(ctx->env->identity, &ctx->scope, name,
                                             has_jwt ? &jwt : NULL, &t, admin_key);
    obs_audit_act_end(&a);
    if (st == STORE_CONFLICT) {
        /* the name or the issuer: say neither which tenant holds it nor
         * which of the two clashed with whom */
        api_fail(ctx, 409, "conflict_error", "already_exists", NULL,
                 "the tenant name or the JWT issuer is already in use");
        goto out;
    }
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "tenant");
        goto out;
    }
    cJSON *o = api_json_tenant(ctx->env, &t);
    cJSON_AddStringToObject(o, "admin_key", admin_key);
    tenant_rec_free(&t);
    api_reply(ctx, 201, o);
out:
    free(jwt.key);
    cJSON_Delete(body);
}

void api_tenants_list(api_ctx *ctx)
{
    tenant_rec *ts = NULL;
    size_t n = 0;
    store_status st = store_tenant_list(ctx->env->store, &ctx->scope, &ts, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "tenant");
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, api_json_tenant(ctx->env, &ts[i]));
    store_free_tenants(ts, n);
    api_reply(ctx, 200, api_json_list(arr, false));
}

/* tenant.jwt.change's details, read inside the act's transaction: the
 * settings before and after (summaries, never the key). */
static void api_tenant_jwt_change_details(cJSON *d, void *arg)
{
    const jwt_settings_summary *sums = arg;
    cJSON_AddItemToObject(d, "before", api_jwt_summary_json(&sums[0]));
    cJSON_AddItemToObject(d, "after", api_jwt_summary_json(&sums[1]));
}

void api_tenants_patch(api_ctx *ctx)
{
    static const char *const allowed[] = {"jwt", "limits", NULL};
    const char *tenant_id = ctx->req->params[0];
    cJSON *body = api_body_object(ctx, allowed, false);
    if (!body) return;
    tenant_jwt jwt = {0};
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(body, "jwt");
    const cJSON *limits = cJSON_GetObjectItemCaseSensitive(body, "limits");
    if (!j && !limits) {
        api_fail(ctx, 400, "invalid_request_error", "missing_field", NULL,
                 "nothing to change: give \"jwt\" (an object, or null to turn JWT sign-in off) "
                 "and/or \"limits\"");
        goto out;
    }
    bool clear = cJSON_IsNull(j);
    if (ctx->scope.role == SCOPE_TENANT_ADMIN && strcmp(ctx->scope.tenant_id, tenant_id) != 0) {
        /* another tenant is not there for this admin, whatever the body says */
        api_fail_store(ctx, STORE_NOT_FOUND, "tenant");
        goto out;
    }
    if (j && ctx->scope.role != SCOPE_TENANT_ADMIN) {
        /* With them the server admin could name an issuer of its own and
         * sign in as any of the tenant's users. */
        api_fail(ctx, 403, "permission_error", "forbidden", "jwt",
                 "only the tenant's admin may change its JWT settings (the server admin sets them "
                 "when creating the tenant)");
        goto out;
    }
    if (j && !clear && !api_tenant_jwt_parse(ctx, j, &jwt)) goto out;
    tenant_rec t;
    store_status st;
    /* Everything is checked before anything is written, so a refused part
     * leaves the tenant as it was. */
    user_limits l;
    if (limits) {
        /* Tenant-wide limits bound what the tenant's admin gives its users,
         * so only the server admin sets them. */
        if (ctx->scope.role != SCOPE_SERVER_ADMIN) {
            api_fail(ctx, 403, "permission_error", "forbidden", "limits",
                     "only the server admin may change a tenant's limits");
            goto out;
        }
        st = store_tenant_get(ctx->env->store, &ctx->scope, tenant_id, &t);
        if (st != STORE_OK) {
            api_fail_store(ctx, st, "tenant");
            goto out;
        }
        l = t.limits;
        tenant_rec_free(&t);
        if (!api_parse_limits(ctx, limits, true, &l)) goto out;
    }
    if (j) {
        jwt_settings_summary sums[2];   /* before, after: never the key itself */
        obs_audit_act a;
        obs_audit_act_begin(&a, ctx->env->store, &ctx->scope, tenant_id, "tenant.jwt.change",
                            tenant_id, NULL);
        obs_audit_act_fill(&a, api_tenant_jwt_change_details, sums);
        st = identity_set_tenant_jwt(ctx->env->identity, &ctx->scope, tenant_id,
                                     clear ? NULL : &jwt, &t, &sums[0], &sums[1]);
        obs_audit_act_end(&a);
        if (st == STORE_CONFLICT) {
            /* never which tenant holds the issuer */
            api_fail(ctx, 409, "conflict_error", "already_exists", "jwt.issuer",
                     "this JWT issuer is already in use; use the issuer of your own identity provider");
            goto out;
        }
        if (st != STORE_OK) {
            api_fail_store(ctx, st, "tenant");
            goto out;
        }
        tenant_rec_free(&t);
    }
    if (limits) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddItemToObject(d, "limits", cJSON_Duplicate(limits, true));
        obs_audit_act a;
        obs_audit_act_begin(&a, ctx->env->store, &ctx->scope, tenant_id, "budget.change", tenant_id, d);
        st = identity_set_tenant_limits(ctx->env->identity, &ctx->scope, tenant_id, &l);
        obs_audit_act_end(&a);
        if (st != STORE_OK) {
            api_fail_store(ctx, st, "tenant");
            goto out;
        }
    }
    st = store_tenant_get(ctx->env->store, &ctx->scope, tenant_id, &t);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "tenant");
        goto out;
    }
    api_reply(ctx, 200, api_json_tenant(ctx->env, &t));
    tenant_rec_free(&t);
out:
    free(jwt.key);
    cJSON_Delete(body);
}
