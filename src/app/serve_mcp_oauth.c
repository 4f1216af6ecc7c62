/* serve_mcp_oauth.c — MCP servers with `auth: {kind: oauth}` wired to the
 * vault (docs/mcp.md "MCP authorization"):
 *
 *   - the vault's provider resolver: the provider "mcp:NAME:HASH" is the
 *     server of that name — the configuration's, or the tenant's own —
 *     whose name, URL and client hash to HASH (mcp_oauth_provider_name);
 *     its authorization server is found by MCP discovery (the 401's
 *     challenge, RFC 9728 and RFC 8414 metadata) and brigade is registered
 *     there when no client is configured. The user's consent, the token
 *     request, refresh and sealing are then the vault's, as for any
 *     provider. Every request passes egress with the server's policy; a
 *     refused address is an `egress.refuse` audit entry;
 *   - the tools' token getter: the user's token for a listing at a run's
 *     start (vault_token_get, blocking: the thread pool).
 *
 * Both run on the thread pool. */
#include "app/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/serve_mcp_oauth.h"
#include "config/config.h"
#include "identity/identity.h"
#include "mcp/mcp_oauth.h"
#include "obs/audit.h"
#include "store/store.h"
#include "store/store_connections.h"
#include "util/log.h"
#include "tools/tool_tenant.h"
#include "util/xalloc.h"

/* The oauth server named by `provider` for this tenant: the
 * configuration's (whose name hashes without a tenant), else the tenant's
 * own (read from its definitions into `own`). NULL when none is. */
static const mcp_server_cfg *find_server(api_env *env, const char *tenant_id, const char *provider,
                                         mcp_server_cfg *own, bool *is_own)
{
    char name[MCP_OAUTH_PROVIDER_MAX];
    *is_own = false;
    for (size_t i = 0; i < env->cfg.n_mcp_servers; i++) {
        const mcp_server_cfg *m = &env->cfg.mcp_servers[i];
        if (!m->oauth) continue;
        mcp_oauth_provider_name(m->name, m->url, m->oauth_client_id, "", name);
        if (!strcmp(name, provider)) return m;
    }
    if (!tenant_id || !tenant_id[0]) return NULL;
    /* the tenant's own servers: read as the system would, for this tenant */
    scope sc;
    if (identity_system_tenant_scope(env->identity, tenant_id, "mcp-oauth", &sc) != STORE_OK) return NULL;
    tools_tenant tt;
    if (tools_tenant_load(env->store, &sc, &env->cfg, &tt) != TOOLS_TENANT_OK) return NULL;
    const mcp_server_cfg *found = NULL;
    for (size_t i = 0; i < tt.n_mcp && !found; i++) {
        const def_rec *d = &tt.mcp_rows[i];
        if (!d->body) continue;
        mcp_server_cfg m;
        memset(&m, 0, sizeof m);
        char err[300];
        if (config_mcp_server_from_json(&env->cfg, d->body, strlen(d->body), &m, err, sizeof err) < 0) {
            config_mcp_server_free(&m);
            continue;
        }
        if (m.oauth) {
            mcp_oauth_provider_name(m.name, m.url, m.oauth_client_id, tenant_id, name);
            if (!strcmp(name, provider)) {
                *own = m;
                *is_own = true;
                found = own;
                continue;
            }
        }
        config_mcp_server_free(&m);
    }
    tools_tenant_free(&tt);
    return found;
}

/* Split a space-separated scope into the provider's list. */
static void set_scopes(credential_provider_cfg *p, const char *scope)
{
    char *copy = xstrdup(scope);
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) n++;
    free(copy);
    if (!n) return;
    p->scopes = xcalloc(n, sizeof *p->scopes);
    copy = xstrdup(scope);
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
        p->scopes[p->n_scopes++] = xstrdup(t);
    free(copy);
}

int serve_mcp_provider_resolve(void *arg, const char *tenant_id, const char *provider, const char *redirect_uri,
                               credential_provider_cfg *out, char *why, size_t whylen)
{
    api_env *env = arg;
    mcp_server_cfg own;
    memset(&own, 0, sizeof own);
    bool is_own = false;
    const mcp_server_cfg *m = find_server(env, tenant_id, provider, &own, &is_own);
    if (!m) {
        snprintf(why, whylen, "no MCP server with authorization is known as \"%.72s\" (was its definition changed?)",
                 provider);
        return -1;
    }
    char scopes[MCP_OAUTH_SCOPE_MAX] = "";
    for (size_t i = 0; i < m->n_oauth_scopes; i++) {
        size_t l = strlen(scopes);
        snprintf(scopes + l, sizeof scopes - l, "%s%s", l ? " " : "", m->oauth_scopes[i]);
    }
    mcp_oauth_client client = {
        .client_id = m->oauth_client_id,
        .client_secret = m->oauth_client_secret,
        .redirect_uri = redirect_uri,
        .client_name = "brigade",
        .scopes = scopes[0] ? scopes : NULL,
    };
    /* the server's own policy: a tenant's server never reaches a private
     * network (its allow_private_networks is refused when it is defined);
     * the operator's allow_networks apply to every server */
    egress_policy pol = {.allow_private_networks = m->allow_private_networks,
                         .allow_nets = env->cfg.egress_allow_nets, .n_allow_nets = env->cfg.n_egress_allow_nets};
    /* a registration kept from an earlier run of brigade (or another
     * instance): the same client, so the users' refresh tokens still work */
    oauth_client_rec kept;
    bool have_kept = !m->oauth_client_id &&
                     store_oauth_client_get(env->store, provider, redirect_uri, &kept) == STORE_OK;
    if (have_kept) {
        client.registered_client_id = kept.client_id;
        client.registered_auth_method = kept.auth_method;
        client.registered_for = kept.token_endpoint;
    }
    mcp_oauth_discovery d;
    char err[600];
    bool ok = mcp_oauth_discover(m->url, &client, &pol, &d, err, sizeof err);
    if (!ok) {
        snprintf(why, whylen, "%.400s", err);
        if (d.refused) {
            cJSON *det = cJSON_CreateObject();
            cJSON_AddStringToObject(det, "mcp_server", m->name);
            cJSON_AddStringToObject(det, "class", d.refused_class);
            cJSON_AddStringToObject(det, "address", d.refused_address);
            if (d.refused_form[0]) cJSON_AddStringToObject(det, "form", d.refused_form);
            cJSON_AddStringToObject(det, "during", "authorization discovery");
            obs_audit_raw(env->store, tenant_id, "system", "mcp", "egress.refuse", m->name, det);
        }
        mcp_oauth_discovery_free(&d);
        if (is_own) config_mcp_server_free(&own);
        return -1;
    }
    /* a public client registered now: kept for the next start (a client
     * with a secret is not kept: registered again after a restart) */
    if (d.registered && !strcmp(d.auth_method, "none") && !d.client_secret) {
        oauth_client_rec rec;
        memset(&rec, 0, sizeof rec);
        snprintf(rec.provider, sizeof rec.provider, "%s", provider);
        snprintf(rec.redirect_uri, sizeof rec.redirect_uri, "%s", redirect_uri);
        snprintf(rec.token_endpoint, sizeof rec.token_endpoint, "%s", d.registered_for);
        snprintf(rec.client_id, sizeof rec.client_id, "%s", d.client_id);
        snprintf(rec.auth_method, sizeof rec.auth_method, "%s", d.auth_method);
        rec.created_at = time(NULL);
        if (strlen(d.client_id) >= sizeof rec.client_id || strlen(redirect_uri) >= sizeof rec.redirect_uri ||
            store_oauth_client_put(env->store, &rec) != STORE_OK)
            log_warn("mcp %s: the client registered at its authorization server could not be kept; after a "
                     "restart brigade registers again and its users connect again", m->name);
    }
    memset(out, 0, sizeof *out);
    out->name = xstrdup(provider);
    out->kind = CREDENTIAL_OAUTH2;
    out->issuer = d.issuer[0] ? xstrdup(d.issuer) : NULL;
    out->authorization_endpoint = xstrdup(d.authorization_endpoint);
    out->token_endpoint = xstrdup(d.token_endpoint);
    out->client_id = d.client_id;
    out->client_secret = d.client_secret;
    d.client_id = d.client_secret = NULL;
    out->secret_in_body = !strcmp(d.auth_method, "client_secret_post");
    if (!strcmp(d.auth_method, "none") && out->client_secret) {
        /* the server asked for a public client: the secret stays unused */
        explicit_bzero(out->client_secret, strlen(out->client_secret));
        free(out->client_secret);
        out->client_secret = NULL;
    }
    set_scopes(out, d.scope);
    out->resource = xstrdup(d.resource);
    out->timeout_ms = 10000;
    out->allow_private_networks = m->allow_private_networks;
    mcp_oauth_discovery_free(&d);
    if (is_own) config_mcp_server_free(&own);
    return 0;
}

bool serve_mcp_token(void *arg, const scope *sc, const char *provider, char *out, size_t outlen)
{
    vault *v = arg;
    /* only a user who connected: a run's start begins no consent flow */
    if (!vault_connection_active(v, sc, provider)) return false;
    vault_token t;
    vault_token_get(v, sc, provider, NULL, 0, "Bearer {token}", &t);
    bool ok = t.status == VAULT_TOKEN_OK && t.header_value && strlen(t.header_value) < outlen;
    if (ok) snprintf(out, outlen, "%s", t.header_value);
    vault_token_clear(&t);
    return ok;
}
