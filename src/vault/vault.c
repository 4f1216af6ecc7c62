/* vault.c — the vault (vault.h): connections, the consent flow, the token
 * a tool call is made with, refreshes one at a time, and key rotation.
 *
 * Everything here blocks (the store, the provider's endpoints) and runs
 * on the thread pool: the API's `work` handlers, and vault_fetch's job for
 * a run. Process-wide state is small and locked: the key ring, the
 * discovered endpoints of each provider, and one refresh lock per
 * connection (striped). */
#include "vault/vault_internal.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "obs/audit.h"
#include "util/log.h"

#define REFRESH_STRIPES 64
#define LEASE_SLACK_MS 5000        /* a lease outlives the provider's timeout by this */
#define LEASE_POLL_MS 50           /* waiting for another instance's refresh */

typedef struct provider_endpoints {
    pthread_mutex_t mu;
    bool     resolved;
    char    *authorization, *token, *revocation;
} provider_endpoints;

/* A provider the vault made at run time: an MCP server's authorization
 * server (vault_set_provider_resolver), kept for the life of the process
 * (pointers to it are held by callers: never freed before vault_free). */
typedef struct dyn_provider {
    credential_provider_cfg p;        /* first: a provider pointer is the node's */
    provider_endpoints      e;
    struct dyn_provider    *next;
} dyn_provider;

struct vault {
    store                *st;
    const brigade_config *cfg;
    vault_keyring         ring;
    char                  public_url[1024];
    provider_endpoints   *endpoints;      /* one per cfg->credential_providers */
    pthread_mutex_t       refresh_lock[REFRESH_STRIPES];
    vault_active_fn       on_active;
    void                 *on_active_arg;
    pthread_mutex_t       dyn_mu;
    dyn_provider         *dyn;
    vault_provider_resolver resolve;
    void                 *resolve_arg;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wipe_free(char *s)
{
    if (!s) return;
    sodium_memzero(s, strlen(s));
    free(s);
}

vault *vault_open(store *st, const brigade_config *cfg, const char *data_dir, char *err, size_t errlen)
{
    vault *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    v->st = st;
    v->cfg = cfg;
    char path[4096];
    snprintf(path, sizeof path, "%s/vault.key", data_dir);
    if (vault_keyring_load(&v->ring, path, true, err, errlen) != 0) {
        free(v);
        return NULL;
    }
    if (cfg->public_url)
        snprintf(v->public_url, sizeof v->public_url, "%s", cfg->public_url);
    else if (strchr(cfg->listen_host, ':'))
        snprintf(v->public_url, sizeof v->public_url, "http://[%s]:%d", cfg->listen_host, cfg->listen_port);
    else
        snprintf(v->public_url, sizeof v->public_url, "http://%s:%d", cfg->listen_host, cfg->listen_port);
    v->endpoints = calloc(cfg->n_credential_providers ? cfg->n_credential_providers : 1, sizeof *v->endpoints);
    for (size_t i = 0; i < cfg->n_credential_providers; i++) {
        const credential_provider_cfg *p = &cfg->credential_providers[i];
        pthread_mutex_init(&v->endpoints[i].mu, NULL);
        if (p->kind == CREDENTIAL_OAUTH2 && !p->issuer) {
            v->endpoints[i].authorization = strdup(p->authorization_endpoint);
            v->endpoints[i].token = strdup(p->token_endpoint);
            v->endpoints[i].revocation = p->revocation_endpoint ? strdup(p->revocation_endpoint) : NULL;
            v->endpoints[i].resolved = true;
        }
    }
    for (int i = 0; i < REFRESH_STRIPES; i++) pthread_mutex_init(&v->refresh_lock[i], NULL);
    pthread_mutex_init(&v->dyn_mu, NULL);
    return v;
}

void vault_free(vault *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->cfg->n_credential_providers; i++) {
        free(v->endpoints[i].authorization);
        free(v->endpoints[i].token);
        free(v->endpoints[i].revocation);
        pthread_mutex_destroy(&v->endpoints[i].mu);
    }
    free(v->endpoints);
    for (dyn_provider *d = v->dyn, *next; d; d = next) {
        next = d->next;
        free(d->e.authorization);
        free(d->e.token);
        free(d->e.revocation);
        pthread_mutex_destroy(&d->e.mu);
        config_credential_provider_free(&d->p);
        free(d);
    }
    pthread_mutex_destroy(&v->dyn_mu);
    for (int i = 0; i < REFRESH_STRIPES; i++) pthread_mutex_destroy(&v->refresh_lock[i]);
    vault_keyring_wipe(&v->ring);
    free(v);
}

void vault_set_on_active(vault *v, vault_active_fn fn, void *arg)
{
    v->on_active = fn;
    v->on_active_arg = arg;
}

/* ---- sealing a connection ---- */

char *vault_seal_for(vault *v, const char *tenant_id, const char *user_id, const char *conn_id,
                     const char *plain, int *key_version)
{
    unsigned char key[VAULT_KEY_LEN];
    int version = vault_keyring_current(&v->ring, key);
    if (version < 0) return NULL;
    char ad[512];
    size_t adlen = vault_ad_connection(ad, sizeof ad, tenant_id, user_id, conn_id);
    char *s = vault_seal_raw(key, version, ad, adlen, plain, strlen(plain));
    sodium_memzero(key, sizeof key);
    *key_version = version;
    return s;
}

int vault_open_for(vault *v, const char *tenant_id, const char *user_id, const char *conn_id,
                   const char *sealed, char **plain)
{
    *plain = NULL;
    unsigned char key[VAULT_KEY_LEN];
    if (vault_keyring_key(&v->ring, vault_sealed_version(sealed), key) != 0) return -1;
    char ad[512];
    size_t adlen = vault_ad_connection(ad, sizeof ad, tenant_id, user_id, conn_id);
    int rc = vault_open_raw(key, ad, adlen, sealed, plain);
    sodium_memzero(key, sizeof key);
    return rc;
}

/* The secrets of a connection as JSON, sealed for its row. */
static char *seal_secrets(vault *v, const char *tenant_id, const char *user_id, const char *conn_id,
                          const char *access, const char *refresh, const char *api_key, int *version)
{
    cJSON *j = cJSON_CreateObject();
    if (access) cJSON_AddStringToObject(j, "access_token", access);
    if (refresh) cJSON_AddStringToObject(j, "refresh_token", refresh);
    if (api_key) cJSON_AddStringToObject(j, "api_key", api_key);
    char *plain = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!plain) return NULL;
    char *s = vault_seal_for(v, tenant_id, user_id, conn_id, plain, version);
    wipe_free(plain);
    return s;
}

/* The secret `field` of an opened connection (malloc'd), or NULL. */
static char *secret_field(const char *plain, const char *field)
{
    cJSON *j = cJSON_Parse(plain);
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, field);
    char *out = cJSON_IsString(f) ? strdup(f->valuestring) : NULL;
    if (j) {
        /* wipe the parsed copies too */
        for (cJSON *c = j->child; c; c = c->next)
            if (cJSON_IsString(c)) sodium_memzero(c->valuestring, strlen(c->valuestring));
        cJSON_Delete(j);
    }
    return out;
}

/* ---- providers ---- */

static provider_endpoints *endpoints_of(vault *v, const credential_provider_cfg *p)
{
    if (p >= v->cfg->credential_providers && p < v->cfg->credential_providers + v->cfg->n_credential_providers)
        return &v->endpoints[p - v->cfg->credential_providers];
    return &((dyn_provider *)p)->e;   /* a run-time provider (dyn_provider's first member) */
}

void vault_set_provider_resolver(vault *v, vault_provider_resolver fn, void *arg)
{
    v->resolve = fn;
    v->resolve_arg = arg;
}

/* The provider of that name: the configuration's, or one made at run time
 * for an MCP server ("mcp:…", by the resolver: discovery and maybe a
 * registration, so blocking; made once per process). NULL when none. */
static const credential_provider_cfg *provider_find(vault *v, const char *tenant_id, const char *name,
                                                    char *why, size_t whylen)
{
    const credential_provider_cfg *p = config_find_credential_provider(v->cfg, name);
    if (p || !name || strncmp(name, VAULT_MCP_PROVIDER_PREFIX, strlen(VAULT_MCP_PROVIDER_PREFIX)) != 0 ||
        !v->resolve)
        return p;
    pthread_mutex_lock(&v->dyn_mu);
    for (dyn_provider *d = v->dyn; d; d = d->next)
        if (!strcmp(d->p.name, name)) {
            pthread_mutex_unlock(&v->dyn_mu);
            return &d->p;
        }
    pthread_mutex_unlock(&v->dyn_mu);
    dyn_provider *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    char redirect[1200];
    snprintf(redirect, sizeof redirect, "%s/oauth/callback", v->public_url);
    if (v->resolve(v->resolve_arg, tenant_id ? tenant_id : "", name, redirect, &d->p, why, whylen) != 0) {
        config_credential_provider_free(&d->p);
        free(d);
        return NULL;
    }
    pthread_mutex_init(&d->e.mu, NULL);
    d->e.authorization = strdup(d->p.authorization_endpoint);
    d->e.token = strdup(d->p.token_endpoint);
    d->e.resolved = d->e.authorization && d->e.token;
    pthread_mutex_lock(&v->dyn_mu);
    for (dyn_provider *o = v->dyn; o; o = o->next)
        if (!strcmp(o->p.name, name)) {   /* another thread made it meanwhile: theirs */
            pthread_mutex_unlock(&v->dyn_mu);
            free(d->e.authorization);
            free(d->e.token);
            pthread_mutex_destroy(&d->e.mu);
            config_credential_provider_free(&d->p);
            free(d);
            return &o->p;
        }
    d->next = v->dyn;
    v->dyn = d;
    pthread_mutex_unlock(&v->dyn_mu);
    return &d->p;
}

/* Copy the endpoint string under the lock (or NULL). */
static char *endpoint_copy(provider_endpoints *e, int which)
{
    const char *s = which == 0 ? e->authorization : which == 1 ? e->token : e->revocation;
    return s ? strdup(s) : NULL;
}

/* The provider's endpoints: given in the config, or discovered from the
 * issuer on first use (RFC 8414 metadata, else OIDC discovery), cached for
 * the life of the process. A failed discovery is tried again next time. */
static bool provider_resolve(vault *v, const credential_provider_cfg *p, char **authz, char **token,
                             char **revocation, char *why, size_t whylen)
{
    provider_endpoints *e = endpoints_of(v, p);
    pthread_mutex_lock(&e->mu);
    if (!e->resolved) {
        static const char *const wells[] = {"/.well-known/oauth-authorization-server",
                                            "/.well-known/openid-configuration"};
        char issuer[1024];
        snprintf(issuer, sizeof issuer, "%s", p->issuer);
        size_t il = strlen(issuer);
        while (il && issuer[il - 1] == '/') issuer[--il] = '\0';
        for (size_t w = 0; w < 2 && !e->resolved; w++) {
            char url[1200];
            snprintf(url, sizeof url, "%s%s", issuer, wells[w]);
            vault_http_resp r;
            vault_http(&(vault_http_to){v->st, v->cfg, p}, url, NULL, NULL, NULL, &r);
            cJSON *j = r.status == 200 ? cJSON_ParseWithLength(r.body, r.len) : NULL;
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "authorization_endpoint");
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "token_endpoint");
            const cJSON *rv = cJSON_GetObjectItemCaseSensitive(j, "revocation_endpoint");
            const cJSON *iss = cJSON_GetObjectItemCaseSensitive(j, "issuer");
            /* RFC 8414 3.3: the metadata must name the issuer it was asked of */
            bool ok = cJSON_IsString(a) && cJSON_IsString(t) && cJSON_IsString(iss);
            if (ok) {
                char got[1024];
                snprintf(got, sizeof got, "%s", iss->valuestring);
                size_t gl = strlen(got);
                while (gl && got[gl - 1] == '/') got[--gl] = '\0';
                ok = strcmp(got, issuer) == 0 &&
                     (!strncmp(a->valuestring, "https://", 8) || !strncmp(a->valuestring, "http://", 7)) &&
                     (!strncmp(t->valuestring, "https://", 8) || !strncmp(t->valuestring, "http://", 7));
            }
            if (ok) {
                e->authorization = strdup(a->valuestring);
                e->token = strdup(t->valuestring);
                const char *rvs = p->revocation_endpoint ? p->revocation_endpoint
                                  : cJSON_IsString(rv) ? rv->valuestring : NULL;
                e->revocation = rvs ? strdup(rvs) : NULL;
                e->resolved = true;
            }
            cJSON_Delete(j);
            vault_http_resp_free(&r);
        }
        if (!e->resolved) {
            pthread_mutex_unlock(&e->mu);
            snprintf(why, whylen, "the provider's metadata could not be read from its issuer");
            return false;
        }
    }
    if (authz) *authz = endpoint_copy(e, 0);
    if (token) *token = endpoint_copy(e, 1);
    if (revocation) *revocation = endpoint_copy(e, 2);
    pthread_mutex_unlock(&e->mu);
    return true;
}

/* The scopes to ask for: the provider's, then those of every tool that
 * names it, each once, space-separated. */
static void consent_scopes(const vault *v, const credential_provider_cfg *p, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t off = 0;
    for (size_t i = 0; i < p->n_scopes; i++)
        off += (size_t)snprintf(out + off, off < outlen ? outlen - off : 0, "%s%s", off ? " " : "", p->scopes[i]);
    for (size_t t = 0; t < v->cfg->n_tools; t++) {
        const tool_cfg *tc = &v->cfg->tools[t];
        if (!tc->auth_provider || strcmp(tc->auth_provider, p->name) != 0) continue;
        for (size_t i = 0; i < tc->n_auth_scopes; i++) {
            const char *sc = tc->auth_scopes[i];
            size_t sl = strlen(sc);
            bool have = false;
            for (const char *q = out; (q = strstr(q, sc)) != NULL; q += sl)
                if ((q == out || q[-1] == ' ') && (q[sl] == ' ' || q[sl] == '\0')) have = true;
            if (!have && off < outlen)
                off += (size_t)snprintf(out + off, outlen - off, "%s%s", off ? " " : "", sc);
        }
    }
    if (off >= outlen) out[outlen - 1] = '\0';
}

/* Does the space-separated `granted` hold every one of scopes? */
static bool scopes_cover(const char *granted, char *const *scopes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t sl = strlen(scopes[i]);
        bool have = false;
        for (const char *q = granted; !have && (q = strstr(q, scopes[i])) != NULL; q += sl)
            if ((q == granted || q[-1] == ' ') && (q[sl] == ' ' || q[sl] == '\0')) have = true;
        if (!have) return false;
    }
    return true;
}

static vault_status from_store(store_status st)
{
    switch (st) {
    case STORE_OK: return VAULT_OK;
    case STORE_NOT_FOUND: case STORE_FORBIDDEN: return VAULT_NOT_FOUND;
    case STORE_CONFLICT: return VAULT_CONFLICT;
    case STORE_INVALID: return VAULT_INVALID;
    default: return VAULT_ERROR;
    }
}

/* ---- consent ---- */

/* A new flow for an existing (pending or active) connection: its
 * connect_url. */
static vault_status flow_new(vault *v, const credential_provider_cfg *p, const char *tenant_id,
                             const char *user_id, const char *conn_id, char connect_url[VAULT_URL_MAX],
                             char why[VAULT_WHY_MAX])
{
    char state[64], ticket[64], verifier[64];
    vault_random_token(state);
    vault_random_token(ticket);
    vault_random_token(verifier);
    oauth_flow_rec f;
    memset(&f, 0, sizeof f);
    vault_hash_hex(state, f.state_hash);
    vault_hash_hex(ticket, f.start_hash);
    snprintf(f.connection_id, sizeof f.connection_id, "%s", conn_id);
    snprintf(f.tenant_id, sizeof f.tenant_id, "%s", tenant_id);
    snprintf(f.user_id, sizeof f.user_id, "%s", user_id);
    snprintf(f.provider, sizeof f.provider, "%s", p->name);
    /* the state itself is needed again only to build the provider URL at
     * /oauth/start: sealed together with the verifier, bound to the flow */
    char plain[160];
    snprintf(plain, sizeof plain, "%s %s", verifier, state);
    unsigned char key[VAULT_KEY_LEN];
    int version = vault_keyring_current(&v->ring, key);
    char ad[512];
    size_t adlen = vault_ad_flow(ad, sizeof ad, f.start_hash, tenant_id, user_id, conn_id);
    f.sealed_verifier = version < 0 ? NULL : vault_seal_raw(key, version, ad, adlen, plain, strlen(plain));
    f.key_version = version;
    sodium_memzero(key, sizeof key);
    sodium_memzero(plain, sizeof plain);
    sodium_memzero(verifier, sizeof verifier);
    sodium_memzero(state, sizeof state);
    f.expires_at = now_ms() / 1000 + VAULT_FLOW_TTL_S;
    store_status st = f.sealed_verifier ? store_oauth_flow_put(v->st, &f, now_ms() / 1000) : STORE_ERROR;
    oauth_flow_rec_free(&f);
    if (st != STORE_OK) {
        sodium_memzero(ticket, sizeof ticket);
        snprintf(why, VAULT_WHY_MAX, "the consent flow could not be recorded");
        return from_store(st);
    }
    snprintf(connect_url, VAULT_URL_MAX, "%s/oauth/start?ticket=%s", v->public_url, ticket);
    sodium_memzero(ticket, sizeof ticket);
    return VAULT_OK;
}

static void notify_active(vault *v, const char *tenant_id, const char *user_id, const char *provider)
{
    if (v->on_active) v->on_active(v->on_active_arg, tenant_id, user_id, provider);
}

vault_status vault_connect(vault *v, const scope *sc, const char *provider, const char *api_key,
                           connection_rec *out, char connect_url[VAULT_URL_MAX], char why[VAULT_WHY_MAX])
{
    memset(out, 0, sizeof *out);
    connect_url[0] = '\0';
    char pwhy[VAULT_WHY_MAX] = "";
    const credential_provider_cfg *p = provider_find(v, sc->tenant_id, provider, pwhy, sizeof pwhy);
    if (!p) {
        if (pwhy[0]) snprintf(why, VAULT_WHY_MAX, "%s", pwhy);
        else snprintf(why, VAULT_WHY_MAX, "no credential provider named \"%.64s\"", provider);
        return VAULT_NOT_FOUND;
    }
    if (p->kind == CREDENTIAL_API_KEY && !api_key) {
        snprintf(why, VAULT_WHY_MAX, "provider \"%s\" takes a key: send {\"provider\", \"api_key\"}", p->name);
        return VAULT_INVALID;
    }
    if (p->kind == CREDENTIAL_OAUTH2 && api_key) {
        snprintf(why, VAULT_WHY_MAX, "provider \"%s\" is connected by consent, not with a key", p->name);
        return VAULT_INVALID;
    }
    char new_id[ID_MAX];
    ids_new(new_id, "conn");
    int64_t now = now_ms() / 1000;
    store_status st = store_connection_begin(v->st, sc, p->name, new_id, now, out);
    if (st != STORE_OK) {
        snprintf(why, VAULT_WHY_MAX, "the connection could not be recorded");
        return from_store(st);
    }
    if (p->kind == CREDENTIAL_API_KEY) {
        int version = 0;
        char *sealed = seal_secrets(v, sc->tenant_id, sc->user_id, out->id, NULL, NULL, api_key, &version);
        /* the consent and its audit entry in one transaction */
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "provider", p->name);
        cJSON_AddStringToObject(d, "kind", "api_key");
        obs_audit_act a;
        obs_audit_act_begin(&a, v->st, sc, NULL, "consent.grant", out->id, d);
        st = sealed ? store_connection_seal(v->st, sc->tenant_id, sc->user_id, out->id, "", sealed, version, 0, now)
                    : STORE_ERROR;
        obs_audit_act_end(&a);
        wipe_free(sealed);
        if (st != STORE_OK) {
            connection_rec_free(out);
            snprintf(why, VAULT_WHY_MAX, "the key could not be sealed");
            return from_store(st);
        }
        snprintf(out->status, sizeof out->status, "active");
        connection_rec_free(out);   /* the caller needs no sealed text */
        notify_active(v, sc->tenant_id, sc->user_id, p->name);
        return VAULT_OK;
    }
    vault_status vs = flow_new(v, p, sc->tenant_id, sc->user_id, out->id, connect_url, why);
    connection_rec_free(out);
    return vs;
}

vault_status vault_oauth_start(vault *v, const char *ticket, char cookie[64], char location[VAULT_URL_MAX],
                               char why[VAULT_WHY_MAX])
{
    location[0] = '\0';
    if (!ticket || strlen(ticket) != 43) {
        snprintf(why, VAULT_WHY_MAX, "this connect link is not valid");
        return VAULT_NOT_FOUND;
    }
    char start_hash[65], cookie_hash[65];
    vault_hash_hex(ticket, start_hash);
    vault_random_token(cookie);
    vault_hash_hex(cookie, cookie_hash);
    oauth_flow_rec f;
    store_status st = store_oauth_flow_start(v->st, start_hash, cookie_hash, now_ms() / 1000, &f);
    if (st == STORE_CONFLICT) {
        snprintf(why, VAULT_WHY_MAX, "this connect link was already opened; ask for a new one");
        return VAULT_CONFLICT;
    }
    if (st != STORE_OK) {
        snprintf(why, VAULT_WHY_MAX, st == STORE_NOT_FOUND ? "this connect link is unknown or has expired"
                                                           : "the consent flow could not be read");
        return from_store(st);
    }
    char pwhy[VAULT_WHY_MAX] = "";
    const credential_provider_cfg *p = provider_find(v, f.tenant_id, f.provider, pwhy, sizeof pwhy);
    unsigned char key[VAULT_KEY_LEN];
    char *plain = NULL;
    char ad[512];
    size_t adlen = vault_ad_flow(ad, sizeof ad, f.start_hash, f.tenant_id, f.user_id, f.connection_id);
    if (!p || vault_keyring_key(&v->ring, f.key_version, key) != 0 ||
        vault_open_raw(key, ad, adlen, f.sealed_verifier, &plain) != 0) {
        sodium_memzero(key, sizeof key);
        oauth_flow_rec_free(&f);
        snprintf(why, VAULT_WHY_MAX, "the consent flow could not be opened");
        return VAULT_ERROR;
    }
    sodium_memzero(key, sizeof key);
    char *sp = strchr(plain, ' ');
    char *authz = NULL;
    if (!sp || !provider_resolve(v, p, &authz, NULL, NULL, why, VAULT_WHY_MAX)) {
        wipe_free(plain);
        oauth_flow_rec_free(&f);
        if (!sp) snprintf(why, VAULT_WHY_MAX, "the consent flow could not be opened");
        return sp ? VAULT_PROVIDER : VAULT_ERROR;
    }
    *sp = '\0';
    const char *verifier = plain, *state = sp + 1;
    char challenge[64], scopes[CONN_SCOPES_MAX], redirect[1200];
    vault_pkce_challenge(verifier, challenge);
    consent_scopes(v, p, scopes, sizeof scopes);
    snprintf(redirect, sizeof redirect, "%s/oauth/callback", v->public_url);
    snprintf(location, VAULT_URL_MAX, "%s%cresponse_type=code&client_id=", authz, strchr(authz, '?') ? '&' : '?');
    vault_url_encode(location, VAULT_URL_MAX, p->client_id);
    strncat(location, "&redirect_uri=", VAULT_URL_MAX - strlen(location) - 1);
    vault_url_encode(location, VAULT_URL_MAX, redirect);
    if (scopes[0]) {
        strncat(location, "&scope=", VAULT_URL_MAX - strlen(location) - 1);
        vault_url_encode(location, VAULT_URL_MAX, scopes);
    }
    strncat(location, "&state=", VAULT_URL_MAX - strlen(location) - 1);
    vault_url_encode(location, VAULT_URL_MAX, state);
    strncat(location, "&code_challenge_method=S256&code_challenge=", VAULT_URL_MAX - strlen(location) - 1);
    vault_url_encode(location, VAULT_URL_MAX, challenge);
    if (p->resource) {
        strncat(location, "&resource=", VAULT_URL_MAX - strlen(location) - 1);
        vault_url_encode(location, VAULT_URL_MAX, p->resource);
    }
    free(authz);
    wipe_free(plain);
    oauth_flow_rec_free(&f);
    return VAULT_OK;
}

/* A form body of name=value pairs (NULL-terminated list), encoded. */
static char *form_of(const char *const *kv)
{
    size_t cap = 64;
    for (size_t i = 0; kv[i]; i++) cap += 3 * strlen(kv[i]) + 2;
    char *out = calloc(1, cap);
    if (!out) return NULL;
    for (size_t i = 0; kv[i] && kv[i + 1]; i += 2) {
        if (i) strcat(out, "&");
        vault_url_encode(out, cap, kv[i]);
        strcat(out, "=");
        vault_url_encode(out, cap, kv[i + 1]);
    }
    return out;
}

/* Call the token endpoint with a grant; 0 ok, 1 refused (r->error), -1 failed (why). */
static int token_call(vault *v, const credential_provider_cfg *p, const char *const *grant,
                      vault_token_response *r, char *why, size_t whylen)
{
    memset(r, 0, sizeof *r);
    char *token_url = NULL;
    if (!provider_resolve(v, p, NULL, &token_url, NULL, why, whylen)) return -1;
    const char *kv[24];
    size_t n = 0;
    for (; grant[n] && n < 16; n++) kv[n] = grant[n];
    bool basic = p->client_secret && !p->secret_in_body;
    if (!basic) {   /* a public client names itself in the body; client_secret_post adds its secret */
        kv[n++] = "client_id";
        kv[n++] = p->client_id;
        if (p->client_secret) {
            kv[n++] = "client_secret";
            kv[n++] = p->client_secret;
        }
    }
    if (p->resource) {
        kv[n++] = "resource";
        kv[n++] = p->resource;
    }
    kv[n] = NULL;
    char *form = form_of(kv);
    vault_http_resp resp;
    vault_http(&(vault_http_to){v->st, v->cfg, p}, token_url, form, basic ? p->client_id : NULL,
               basic ? p->client_secret : NULL, &resp);
    wipe_free(form);
    free(token_url);
    int rc;
    if (resp.status == 0) {
        snprintf(why, whylen, "%s", resp.error);
        rc = -1;
    } else {
        rc = vault_parse_token_response(resp.body, resp.len, r, why, whylen);
        if (rc == 0 && (resp.status < 200 || resp.status > 299)) {
            vault_token_response_free(r);
            snprintf(why, whylen, "the provider's token endpoint answered HTTP %ld", resp.status);
            rc = -1;
        } else if (rc < 0 && (resp.status < 200 || resp.status > 299)) {
            snprintf(why, whylen, "the provider's token endpoint answered HTTP %ld", resp.status);
        } else if (rc == 1 && resp.status >= 500) {
            snprintf(why, whylen, "the provider's token endpoint answered HTTP %ld (%s)", resp.status, r->error);
        }
    }
    vault_http_resp_free(&resp);
    return rc;
}

/* Two issuer identifiers name the same issuer (a trailing '/' aside). */
static bool same_issuer(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la && a[la - 1] == '/') la--;
    while (lb && b[lb - 1] == '/') lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

vault_status vault_oauth_callback(vault *v, const char *state, const char *code, const char *error,
                                  const char *iss, const char *cookie, vault_flow_owner *owner,
                                  char why[VAULT_WHY_MAX])
{
    memset(owner, 0, sizeof *owner);
    if (!state || !state[0] || strlen(state) > 256) {
        snprintf(why, VAULT_WHY_MAX, "the answer from the provider has no valid state");
        return VAULT_INVALID;
    }
    char state_hash[65];
    vault_hash_hex(state, state_hash);
    oauth_flow_rec f;
    /* taken (deleted) first: a state works once, whatever follows */
    store_status st = store_oauth_flow_take(v->st, state_hash, now_ms() / 1000, &f);
    if (st != STORE_OK) {
        snprintf(why, VAULT_WHY_MAX, st == STORE_NOT_FOUND ? "this sign-in is unknown, was already used, or has expired"
                                                           : "the consent flow could not be read");
        return st == STORE_NOT_FOUND ? VAULT_NOT_FOUND : VAULT_ERROR;
    }
    snprintf(owner->provider, sizeof owner->provider, "%s", f.provider);
    snprintf(owner->tenant_id, sizeof owner->tenant_id, "%s", f.tenant_id);
    snprintf(owner->user_id, sizeof owner->user_id, "%s", f.user_id);
    snprintf(owner->connection_id, sizeof owner->connection_id, "%s", f.connection_id);
    vault_status vs = VAULT_OK;
    char cookie_hash[65] = "";
    if (cookie && cookie[0]) vault_hash_hex(cookie, cookie_hash);
    char pwhy[VAULT_WHY_MAX] = "";
    const credential_provider_cfg *p = provider_find(v, f.tenant_id, f.provider, pwhy, sizeof pwhy);
    char *plain = NULL;
    if (!f.browser_hash[0] || !cookie_hash[0] ||
        sodium_memcmp(cookie_hash, f.browser_hash, 64) != 0) {
        /* not the browser that opened this user's connect link */
        snprintf(why, VAULT_WHY_MAX, "this sign-in was not started in this browser; open the connect link again");
        vs = VAULT_INVALID;
    } else if (iss && p && p->issuer && !same_issuer(iss, p->issuer)) {
        /* RFC 9207: the answer names another issuer than the one this flow
         * went to (a mix-up attack between providers) */
        snprintf(why, VAULT_WHY_MAX, "the answer came from another issuer than \"%s\"", p->name);
        vs = VAULT_INVALID;
    } else if (error && error[0]) {
        snprintf(why, VAULT_WHY_MAX, "the provider did not grant access");
        vs = VAULT_PROVIDER;
    } else if (!code || !code[0] || strlen(code) > 4096) {
        snprintf(why, VAULT_WHY_MAX, "the answer from the provider has no code");
        vs = VAULT_INVALID;
    } else if (!p) {
        snprintf(why, VAULT_WHY_MAX, "the provider is no longer configured");
        vs = VAULT_NOT_FOUND;
    } else {
        unsigned char key[VAULT_KEY_LEN];
        char ad[512];
        size_t adlen = vault_ad_flow(ad, sizeof ad, f.start_hash, f.tenant_id, f.user_id, f.connection_id);
        if (vault_keyring_key(&v->ring, f.key_version, key) != 0 ||
            vault_open_raw(key, ad, adlen, f.sealed_verifier, &plain) != 0 || !strchr(plain, ' ')) {
            snprintf(why, VAULT_WHY_MAX, "the consent flow could not be opened");
            vs = VAULT_ERROR;
        }
        sodium_memzero(key, sizeof key);
    }
    if (vs == VAULT_OK) {
        *strchr(plain, ' ') = '\0';
        char redirect[1200];
        snprintf(redirect, sizeof redirect, "%s/oauth/callback", v->public_url);
        const char *grant[] = {"grant_type", "authorization_code", "code", code, "redirect_uri", redirect,
                               "code_verifier", plain, NULL};
        vault_token_response r;
        char twhy[VAULT_WHY_MAX];
        int rc = token_call(v, p, grant, &r, twhy, sizeof twhy);
        if (rc != 0) {
            snprintf(why, VAULT_WHY_MAX, "%s", twhy);
            vs = VAULT_PROVIDER;
        } else {
            int64_t now = now_ms();
            char scopes[CONN_SCOPES_MAX];
            if (r.scope[0]) snprintf(scopes, sizeof scopes, "%s", r.scope);
            else consent_scopes(v, p, scopes, sizeof scopes);
            int version = 0;
            char *sealed = seal_secrets(v, f.tenant_id, f.user_id, f.connection_id, r.access_token,
                                        r.refresh_token, NULL, &version);
            /* the consent and its audit entry in one transaction; the
             * actor is the user who followed the link (no scope here: the
             * flow's record says whose it is) */
            char actor[96];
            snprintf(actor, sizeof actor, "user:%s", f.user_id);
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "provider", f.provider);
            cJSON_AddStringToObject(d, "kind", "oauth2");
            obs_audit_act a;
            obs_audit_act_begin_raw(&a, v->st, f.tenant_id, actor, "oauth-consent", "consent.grant",
                                    f.connection_id, d);
            st = sealed ? store_connection_seal(v->st, f.tenant_id, f.user_id, f.connection_id, scopes, sealed,
                                                version, vault_refresh_due_ms(now, r.expires_in), now / 1000)
                        : STORE_ERROR;
            obs_audit_act_end(&a);
            wipe_free(sealed);
            vault_token_response_free(&r);
            if (st != STORE_OK) {
                snprintf(why, VAULT_WHY_MAX, st == STORE_NOT_FOUND ? "the connection was deleted meanwhile"
                                                                   : "the connection could not be stored");
                vs = from_store(st);
            }
        }
    }
    wipe_free(plain);
    if (vs == VAULT_OK) notify_active(v, f.tenant_id, f.user_id, f.provider);
    oauth_flow_rec_free(&f);
    return vs;
}

/* RFC 7009: revoke the refresh token (which revokes its access tokens at
 * most servers), else the access token. true if the provider said 200. */
static bool revoke_remote(vault *v, const credential_provider_cfg *p, const char *plain)
{
    char *url = NULL, why[VAULT_WHY_MAX];
    if (!provider_resolve(v, p, NULL, NULL, &url, why, sizeof why) || !url) return false;
    char *rt = secret_field(plain, "refresh_token");
    char *at = rt ? NULL : secret_field(plain, "access_token");
    const char *kv[8] = {"token", rt ? rt : at, "token_type_hint", rt ? "refresh_token" : "access_token", NULL};
    if (!p->client_secret) {
        kv[4] = "client_id";
        kv[5] = p->client_id;
        kv[6] = NULL;
    }
    bool ok = false;
    if (kv[1]) {
        char *form = form_of(kv);
        vault_http_resp r;
        vault_http(&(vault_http_to){v->st, v->cfg, p}, url, form, p->client_secret ? p->client_id : NULL,
                   p->client_secret, &r);
        ok = r.status == 200;
        vault_http_resp_free(&r);
        wipe_free(form);
    }
    wipe_free(rt);
    wipe_free(at);
    free(url);
    return ok;
}

vault_status vault_disconnect(vault *v, const scope *sc, const char *id, bool *revoked_remote,
                              char why[VAULT_WHY_MAX])
{
    *revoked_remote = false;
    connection_rec c;
    store_status st = store_connection_get(v->st, sc, id, &c);
    if (st != STORE_OK) {
        snprintf(why, VAULT_WHY_MAX, st == STORE_NOT_FOUND ? "no connection with this id" : "the connection could not be read");
        return from_store(st);
    }
    /* erased here first: the next tool call of a run finds nothing, even
     * while the provider is slow to answer the revocation */
    char pwhy[VAULT_WHY_MAX] = "";
    const credential_provider_cfg *p = provider_find(v, c.tenant_id, c.provider, pwhy, sizeof pwhy);
    bool will_revoke = p && p->kind == CREDENTIAL_OAUTH2 && c.sealed;
    /* the erasure and its audit entry in one transaction; what the
     * provider answers comes after, in an entry of its own */
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "provider", c.provider);
    cJSON_AddBoolToObject(d, "revoke_at_provider", will_revoke);
    obs_audit_act a;
    obs_audit_act_begin(&a, v->st, sc, NULL, "consent.revoke", id, d);
    st = store_connection_delete(v->st, sc, id);
    obs_audit_act_end(&a);
    if (st != STORE_OK) {
        connection_rec_free(&c);
        snprintf(why, VAULT_WHY_MAX, "the connection could not be erased");
        return from_store(st);
    }
    char *plain = NULL;
    if (will_revoke && vault_open_for(v, c.tenant_id, c.user_id, c.id, c.sealed, &plain) == 0)
        *revoked_remote = revoke_remote(v, p, plain);
    wipe_free(plain);
    if (will_revoke) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "provider", c.provider);
        cJSON_AddBoolToObject(r, "revoked_at_provider", *revoked_remote);
        obs_audit(v->st, sc, "consent.revoke.remote", id, r);
    }
    connection_rec_free(&c);
    return VAULT_OK;
}

/* ---- the token for a tool call ---- */

void vault_token_clear(vault_token *t)
{
    wipe_free(t->header_value);
    t->header_value = NULL;
}

static unsigned stripe_of(const char *id)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) h = (h ^ *p) * 16777619u;
    return h % REFRESH_STRIPES;
}

/* format with "{token}" replaced (malloc'd) */
static char *header_of(const char *format, const char *token)
{
    const char *at = strstr(format, "{token}");
    if (!at) return NULL;
    size_t n = (size_t)(at - format) + strlen(token) + strlen(at + 7) + 1;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%.*s%s%s", (int)(at - format), format, token, at + 7);
    return out;
}

static void token_missing(vault *v, const credential_provider_cfg *p, const scope *sc, const char *conn_id,
                          vault_token *out, const char *fmt)
{
    out->status = VAULT_TOKEN_MISSING;
    snprintf(out->why, sizeof out->why, fmt, p->name);
    if (p->kind == CREDENTIAL_OAUTH2) {
        char why[VAULT_WHY_MAX];
        char cid[ID_MAX] = "";
        if (conn_id) {
            snprintf(cid, sizeof cid, "%s", conn_id);
        } else {
            connection_rec c;
            char new_id[ID_MAX];
            ids_new(new_id, "conn");
            if (store_connection_begin(v->st, sc, p->name, new_id, now_ms() / 1000, &c) == STORE_OK)
                snprintf(cid, sizeof cid, "%s", c.id);
            connection_rec_free(&c);
        }
        if (cid[0]) flow_new(v, p, sc->tenant_id, sc->user_id, cid, out->connect_url, why);
    }
}

/* Refresh c (held lock); fills plain_out with the new secrets JSON. 0 ok;
 * 1 the grant is gone (connection expired); -1 failed (why). */
static int refresh_now(vault *v, const credential_provider_cfg *p, connection_rec *c, const char *plain,
                       char **plain_out, char *why, size_t whylen)
{
    char *rt = secret_field(plain, "refresh_token");
    if (!rt) {
        snprintf(why, whylen, "the access token of \"%s\" has expired and there is no refresh token", p->name);
        return 1;
    }
    const char *grant[] = {"grant_type", "refresh_token", "refresh_token", rt, NULL};
    vault_token_response r;
    int rc = token_call(v, p, grant, &r, why, whylen);
    if (rc != 0) {
        wipe_free(rt);
        if (rc == 1 && strcmp(r.error, "invalid_grant") == 0) {
            snprintf(why, whylen, "the grant for \"%s\" was revoked or has expired", p->name);
            return 1;
        }
        return -1;
    }
    int64_t now = now_ms();
    /* rotation: the provider's new refresh token replaces ours; a server
     * that keeps it gives none, and ours stays */
    const char *new_rt = r.refresh_token ? r.refresh_token : rt;
    int version = 0;
    char *sealed = seal_secrets(v, c->tenant_id, c->user_id, c->id, r.access_token, new_rt, NULL, &version);
    store_status st = sealed ? store_connection_seal(v->st, c->tenant_id, c->user_id, c->id,
                                                     r.scope[0] ? r.scope : c->scopes, sealed, version,
                                                     vault_refresh_due_ms(now, r.expires_in), now / 1000)
                             : STORE_ERROR;
    wipe_free(sealed);
    wipe_free(rt);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "access_token", r.access_token);
    *plain_out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    vault_token_response_free(&r);
    if (st != STORE_OK) {
        /* the new token works, but the rotated refresh token is lost */
        snprintf(why, whylen, "the refreshed token could not be stored");
        log_warn("vault: connection %s: refreshed, but the new tokens could not be stored", c->id);
    }
    return 0;
}

void vault_token_refused(vault *v, const scope *sc, const char *provider, const char *connection_id,
                         int64_t fetched_at_s)
{
    if (!scope_is_user(sc) || !provider || !connection_id || !connection_id[0]) return;
    connection_rec c;
    memset(&c, 0, sizeof c);
    if (store_connection_find(v->st, sc->tenant_id, sc->user_id, provider, &c) != STORE_OK) return;
    if (!strcmp(c.id, connection_id) && !strcmp(c.status, "active") && c.updated_at <= fetched_at_s) {
        store_status st = store_connection_set_status(v->st, c.tenant_id, c.user_id, c.id, "expired",
                                                      now_ms() / 1000);
        if (st == STORE_OK)
            log_info("vault: connection %s to \"%.64s\": its token was refused by the service (HTTP 401/403); "
                     "marked expired, the user is asked to connect again", c.id, provider);
    }
    connection_rec_free(&c);
}

bool vault_connection_active(vault *v, const scope *sc, const char *provider)
{
    if (!scope_is_user(sc)) return false;
    connection_rec c;
    memset(&c, 0, sizeof c);
    store_status st = store_connection_find(v->st, sc->tenant_id, sc->user_id, provider, &c);
    bool yes = st == STORE_OK && !strcmp(c.status, "active") && c.sealed;
    connection_rec_free(&c);
    return yes;
}

void vault_token_get(vault *v, const scope *sc, const char *provider, char *const *scopes, size_t n_scopes,
                     const char *format, vault_token *out)
{
    memset(out, 0, sizeof *out);
    char pwhy[VAULT_WHY_MAX] = "";
    const credential_provider_cfg *p = scope_is_user(sc) ? provider_find(v, sc->tenant_id, provider, pwhy, sizeof pwhy)
                                                         : NULL;
    if (!p || !scope_is_user(sc)) {
        out->status = VAULT_TOKEN_ERROR;
        if (pwhy[0]) snprintf(out->why, sizeof out->why, "%s", pwhy);
        else snprintf(out->why, sizeof out->why, "no credential provider named \"%.64s\"", provider ? provider : "");
        return;
    }
    connection_rec c;
    store_status st = store_connection_find(v->st, sc->tenant_id, sc->user_id, p->name, &c);
    if (st == STORE_NOT_FOUND || (st == STORE_OK && (strcmp(c.status, "active") != 0 || !c.sealed))) {
        bool had = st == STORE_OK;
        token_missing(v, p, sc, had ? c.id : NULL, out,
                      had && !strcmp(c.status, "expired") ? "the connection to \"%s\" has expired; connect it again"
                                                          : "no active connection to \"%s\"; connect it first");
        connection_rec_free(&c);
        return;
    }
    if (st != STORE_OK) {
        out->status = VAULT_TOKEN_ERROR;
        snprintf(out->why, sizeof out->why, "the connection could not be read");
        return;
    }
    if (!scopes_cover(c.scopes, scopes, n_scopes) && p->kind == CREDENTIAL_OAUTH2) {
        token_missing(v, p, sc, c.id, out, "the connection to \"%s\" lacks a scope this tool needs; connect it again");
        connection_rec_free(&c);
        return;
    }
    char *plain = NULL;
    bool locked = false;
    unsigned stripe = stripe_of(c.id);
    if (c.expires_at && now_ms() >= c.expires_at) {
        /* single flight: one refresh per connection in this process (the
         * lock), and across processes (the lease); whoever waited reads the
         * row again and finds it fresh */
        pthread_mutex_lock(&v->refresh_lock[stripe]);
        locked = true;
        int64_t deadline = now_ms() + p->timeout_ms + LEASE_SLACK_MS;
        for (;;) {
            connection_rec again;
            st = store_connection_find(v->st, sc->tenant_id, sc->user_id, p->name, &again);
            connection_rec_free(&c);
            c = again;
            if (st != STORE_OK || strcmp(c.status, "active") != 0 || !c.sealed) break;
            if (!c.expires_at || now_ms() < c.expires_at) break;       /* someone refreshed it */
            int64_t t = now_ms();
            store_status ls = store_connection_lease(v->st, c.id, t, t + p->timeout_ms + LEASE_SLACK_MS);
            if (ls == STORE_OK) {
                char *old = NULL;
                char why[VAULT_WHY_MAX];
                int rc = -1;
                if (vault_open_for(v, c.tenant_id, c.user_id, c.id, c.sealed, &old) == 0)
                    rc = refresh_now(v, p, &c, old, &plain, why, sizeof why);
                else
                    snprintf(why, sizeof why, "the connection's secrets do not open (sealed for another owner or key)");
                wipe_free(old);
                if (rc != 0) {
                    if (rc == 1) store_connection_set_status(v->st, c.tenant_id, c.user_id, c.id, "expired", t / 1000);
                    else store_connection_unlease(v->st, c.id);
                    if (rc == 1) {
                        token_missing(v, p, sc, c.id, out, "the connection to \"%s\" has expired; connect it again");
                    } else {
                        out->status = VAULT_TOKEN_ERROR;
                        snprintf(out->why, sizeof out->why, "%s", why);
                    }
                    goto done;
                }
                break;
            }
            if (ls != STORE_CONFLICT || now_ms() > deadline) {
                out->status = VAULT_TOKEN_ERROR;
                snprintf(out->why, sizeof out->why, "the token of \"%s\" could not be refreshed in time", p->name);
                goto done;
            }
            usleep(LEASE_POLL_MS * 1000);   /* another instance is refreshing */
        }
        if (st != STORE_OK || strcmp(c.status, "active") != 0 || !c.sealed) {
            token_missing(v, p, sc, st == STORE_OK ? c.id : NULL, out,
                          "no active connection to \"%s\"; connect it first");
            goto done;
        }
    }
    if (!plain && vault_open_for(v, c.tenant_id, c.user_id, c.id, c.sealed, &plain) != 0) {
        out->status = VAULT_TOKEN_ERROR;
        snprintf(out->why, sizeof out->why, "the connection to \"%s\" does not open here "
                 "(sealed for another owner, or under a key this server lacks)", p->name);
        goto done;
    }
    char *token = secret_field(plain, p->kind == CREDENTIAL_API_KEY ? "api_key" : "access_token");
    out->header_value = token ? header_of(format ? format : "Bearer {token}", token) : NULL;
    wipe_free(token);
    if (!out->header_value) {
        out->status = VAULT_TOKEN_ERROR;
        snprintf(out->why, sizeof out->why, "the connection to \"%s\" holds no token", p->name);
        goto done;
    }
    out->status = VAULT_TOKEN_OK;
    snprintf(out->connection_id, sizeof out->connection_id, "%s", c.id);
done:
    if (locked) pthread_mutex_unlock(&v->refresh_lock[stripe]);
    wipe_free(plain);
    connection_rec_free(&c);
}

/* ---- the asynchronous form, for runs ---- */

struct vault_fetch {
    uv_work_t        work;
    vault           *v;
    scope            sc;
    char             provider[CONN_PROVIDER_MAX];
    char           **scopes;
    size_t           n_scopes;
    char            *format;
    vault_fetch_done done;
    void            *arg;
    atomic_bool      cancelled;
    vault_token      result;
};

static void fetch_work(uv_work_t *w)
{
    vault_fetch *f = w->data;
    if (atomic_load(&f->cancelled)) return;
    vault_token_get(f->v, &f->sc, f->provider, f->scopes, f->n_scopes, f->format, &f->result);
}

static void fetch_free(vault_fetch *f)
{
    vault_token_clear(&f->result);
    for (size_t i = 0; i < f->n_scopes; i++) free(f->scopes[i]);
    free(f->scopes);
    free(f->format);
    free(f);
}

static void fetch_after(uv_work_t *w, int status)
{
    vault_fetch *f = w->data;
    if (status == 0 && !atomic_load(&f->cancelled)) f->done(f->arg, &f->result);
    fetch_free(f);
}

vault_fetch *vault_fetch_start(vault *v, uv_loop_t *loop, const scope *sc, const char *provider,
                               char *const *scopes, size_t n_scopes, const char *format,
                               vault_fetch_done done, void *arg)
{
    vault_fetch *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->v = v;
    f->sc = *sc;
    snprintf(f->provider, sizeof f->provider, "%s", provider);
    f->scopes = calloc(n_scopes ? n_scopes : 1, sizeof *f->scopes);
    for (size_t i = 0; i < n_scopes; i++) f->scopes[f->n_scopes++] = strdup(scopes[i]);
    f->format = strdup(format ? format : "Bearer {token}");
    f->done = done;
    f->arg = arg;
    atomic_init(&f->cancelled, false);
    f->work.data = f;
    if (uv_queue_work(loop, &f->work, fetch_work, fetch_after) != 0) {
        fetch_free(f);
        return NULL;
    }
    return f;
}

void vault_fetch_cancel(vault_fetch *f)
{
    if (f) atomic_store(&f->cancelled, true);   /* freed by fetch_after */
}

/* ---- key rotation ---- */

int vault_rotate_key(store *st, const char *data_dir, size_t *resealed, int *new_version, char *err, size_t errlen)
{
    *resealed = 0;
    vault_keyring ring;
    char path[4096];
    snprintf(path, sizeof path, "%s/vault.key", data_dir);
    if (vault_keyring_load(&ring, path, false, err, errlen) != 0) return -1;
    int top = 0;
    for (int i = 0; i < ring.n; i++)
        if (ring.versions[i] > top) top = ring.versions[i];
    if (ring.n >= VAULT_MAX_KEYS) {
        vault_keyring_wipe(&ring);
        snprintf(err, errlen, "the vault key file holds %d versions already", VAULT_MAX_KEYS);
        return -1;
    }
    /* 1. the new version joins the file: from now on a running server
     * seals with it, and still holds the old ones to open */
    ring.versions[ring.n] = top + 1;
    randombytes_buf(ring.keys[ring.n], VAULT_KEY_LEN);
    ring.n++;
    *new_version = top + 1;
    if (vault_keyring_save(&ring, err, errlen) != 0) {
        vault_keyring_wipe(&ring);
        return -1;
    }
    unsigned char nkey[VAULT_KEY_LEN];
    memcpy(nkey, ring.keys[ring.n - 1], VAULT_KEY_LEN);
    /* 2. every row sealed under another version is re-sealed; a row that
     * changed meanwhile (a refresh sealed it anew) is simply read again */
    int rc = 0;
    bool settled = false;
    for (int round = 0; round < 1000; round++) {
        connection_rec *rows = NULL;
        size_t n = 0;
        if (store_connection_list_sealed_other(st, top + 1, 100, &rows, &n) != STORE_OK) {
            snprintf(err, errlen, "the connections could not be read");
            rc = -1;
            break;
        }
        if (n == 0) {
            free(rows);
            /* a server may have sealed a row under the old key in the
             * instant before it saw the new file: look once more, later */
            if (settled) break;
            settled = true;
            usleep(500 * 1000);
            continue;
        }
        settled = false;
        for (size_t i = 0; i < n; i++) {
            connection_rec *c = &rows[i];
            unsigned char okey[VAULT_KEY_LEN];
            char *plain = NULL;
            char ad[512];
            size_t adlen = vault_ad_connection(ad, sizeof ad, c->tenant_id, c->user_id, c->id);
            if (vault_keyring_key(&ring, vault_sealed_version(c->sealed), okey) != 0 ||
                vault_open_raw(okey, ad, adlen, c->sealed, &plain) != 0) {
                sodium_memzero(okey, sizeof okey);
                snprintf(err, errlen, "connection %s does not open with any key of the file; "
                         "nothing was dropped", c->id);
                rc = -1;
                break;
            }
            sodium_memzero(okey, sizeof okey);
            char *sealed = vault_seal_raw(nkey, top + 1, ad, adlen, plain, strlen(plain));
            wipe_free(plain);
            store_status rs = sealed ? store_connection_reseal(st, c->id, c->sealed, sealed, top + 1) : STORE_ERROR;
            wipe_free(sealed);
            if (rs == STORE_OK) (*resealed)++;
            else if (rs != STORE_CONFLICT) {
                snprintf(err, errlen, "connection %s could not be re-sealed", c->id);
                rc = -1;
                break;
            }
        }
        connection_recs_free(rows, n);
        if (rc) break;
    }
    /* 3. only the new key stays in the file (servers keep the old ones
     * they read, for a row sealed in the instant before they saw the new
     * file) */
    if (rc == 0) {
        ring.versions[0] = top + 1;
        memcpy(ring.keys[0], nkey, VAULT_KEY_LEN);
        ring.n = 1;
        rc = vault_keyring_save(&ring, err, errlen);
    }
    sodium_memzero(nkey, sizeof nkey);
    vault_keyring_wipe(&ring);
    return rc;
}
