/* connections.c — a user's own credentials for tools (docs/api.md, "A user's
 * own credentials"): the routes over the vault (src/vault/).
 *
 *   GET    /v1/connections        the caller's connections, never a secret
 *   POST   /v1/connections        {provider} → {id, connect_url};
 *                                 {provider, api_key} → sealed at once
 *   DELETE /v1/connections/{id}   revoke at the provider, erase here
 *
 * A user reaches only its own connections: another user's id is 404,
 * exactly like an id that does not exist. The browser side of consent
 * (/oauth/start, /oauth/callback) is in oauth_routes.c. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/audit.h"
#include "util/ids.h"

static cJSON *connection_json(const connection_rec *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", c->id);
    cJSON_AddStringToObject(o, "object", "connection");
    cJSON_AddStringToObject(o, "provider", c->provider);
    cJSON_AddStringToObject(o, "status", c->status);
    cJSON *sc = cJSON_AddArrayToObject(o, "scopes");
    const char *p = c->scopes;
    while (*p) {
        while (*p == ' ') p++;
        size_t n = strcspn(p, " ");
        if (n) {
            char one[CONN_SCOPES_MAX];
            memcpy(one, p, n);
            one[n] = '\0';
            cJSON_AddItemToArray(sc, cJSON_CreateString(one));
        }
        p += n;
    }
    cJSON_AddNumberToObject(o, "created_at", (double)c->created_at);
    return o;
}

/* A vault answer that is not OK, as an API error (why holds no secret). */
static void connections_fail(api_ctx *ctx, vault_status vs, const char *why, const char *param)
{
    switch (vs) {
    case VAULT_NOT_FOUND:
        api_fail(ctx, 404, "invalid_request_error", "not_found", param, "%s", why);
        break;
    case VAULT_INVALID:
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", param, "%s", why);
        break;
    case VAULT_CONFLICT:
        api_fail(ctx, 409, "invalid_request_error", "conflict", param, "%s", why);
        break;
    case VAULT_PROVIDER:
        api_fail(ctx, 502, "api_error", "provider_error", NULL, "%s", why);
        break;
    default:
        api_fail(ctx, 500, "api_error", "vault_error", NULL, "%s", why);
        break;
    }
}

void api_connections_list(api_ctx *ctx)
{
    connection_rec *rows = NULL;
    size_t n = 0;
    store_status st = store_connection_list(ctx->env->store, &ctx->scope, &rows, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "connection");
        return;
    }
    cJSON *data = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(data, connection_json(&rows[i]));
    connection_recs_free(rows, n);
    api_reply(ctx, 200, api_json_list(data, false));
}

void api_connections_create(api_ctx *ctx)
{
    if (!ctx->env->vault) {
        api_fail(ctx, 503, "api_error", "vault_unavailable", NULL, "the vault is not configured");
        return;
    }
    static const char *const allowed[] = {"provider", "api_key", NULL};
    cJSON *body = api_body_object(ctx, allowed, false);
    if (!body) return;
    char provider[CONN_PROVIDER_MAX];
    char *api_key = calloc(1, VAULT_MAX_API_KEY + 1);
    bool has_key = false;
    if (!api_field_string(ctx, body, "provider", true, CONN_PROVIDER_MAX - 1, provider, sizeof provider, NULL) ||
        !api_field_string(ctx, body, "api_key", false, VAULT_MAX_API_KEY, api_key, VAULT_MAX_API_KEY + 1,
                          &has_key)) {
        cJSON_Delete(body);
        free(api_key);
        return;
    }
    /* the key is never echoed, so wipe the parsed body's copy now */
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(body, "api_key");
    if (cJSON_IsString(k)) explicit_bzero(k->valuestring, strlen(k->valuestring));
    cJSON_Delete(body);
    for (const unsigned char *c = (const unsigned char *)api_key; has_key && *c; c++) {
        if (*c < 0x21 || *c > 0x7e) {
            explicit_bzero(api_key, VAULT_MAX_API_KEY + 1);
            free(api_key);
            api_fail(ctx, 400, "invalid_request_error", "invalid_value", "api_key",
                     "api_key must be printable ASCII without spaces (it is sent in a header)");
            return;
        }
    }
    connection_rec c;
    char connect_url[VAULT_URL_MAX], why[VAULT_WHY_MAX];
    vault_status vs = vault_connect(ctx->env->vault, &ctx->scope, provider, has_key ? api_key : NULL, &c,
                                    connect_url, why);
    explicit_bzero(api_key, VAULT_MAX_API_KEY + 1);
    free(api_key);
    if (vs != VAULT_OK) {
        connections_fail(ctx, vs, why, vs == VAULT_NOT_FOUND ? "provider" : NULL);
        return;
    }
    cJSON *o = connection_json(&c);
    if (connect_url[0]) {
        cJSON_AddStringToObject(o, "connect_url", connect_url);
        cJSON_AddNumberToObject(o, "connect_url_expires_in", VAULT_FLOW_TTL_S);
    }   /* a key's consent.grant is audited with it, in the vault */
    api_reply(ctx, connect_url[0] ? 200 : 201, o);
}

void api_connections_delete(api_ctx *ctx)
{
    const char *id = ctx->req->n_params > 0 ? ctx->req->params[0] : "";
    if (!ctx->env->vault) {
        api_fail(ctx, 503, "api_error", "vault_unavailable", NULL, "the vault is not configured");
        return;
    }
    connection_rec c;
    store_status st = strlen(id) < ID_MAX ? store_connection_get(ctx->env->store, &ctx->scope, id, &c)
                                          : STORE_NOT_FOUND;
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "connection");
        return;
    }
    char provider[CONN_PROVIDER_MAX];
    snprintf(provider, sizeof provider, "%s", c.provider);
    connection_rec_free(&c);
    bool remote = false;
    char why[VAULT_WHY_MAX];
    vault_status vs = vault_disconnect(ctx->env->vault, &ctx->scope, id, &remote, why);
    if (vs != VAULT_OK) {
        connections_fail(ctx, vs, why, NULL);
        return;
    }
    /* consent.revoke (and consent.revoke.remote) are audited in the vault */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "connection");
    cJSON_AddBoolToObject(o, "deleted", true);
    cJSON_AddBoolToObject(o, "revoked_at_provider", remote);
    api_reply(ctx, 200, o);
}
