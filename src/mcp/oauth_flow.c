/* oauth_flow.c — MCP authorization, the client's side of it (MCP
 * 2025-11-25 "Authorization", with the 2025-03-26 fallbacks), blocking:
 *
 *   1. protected-resource metadata (RFC 9728): the challenge's
 *      resource_metadata (same origin as the server only: a server may not
 *      send brigade to fetch another host's URL), else the well-known URLs
 *      (path insertion, then the root); none at all is a 2025-03-26 server,
 *      whose authorization server is its own origin;
 *   2. authorization-server metadata (RFC 8414 / OpenID discovery, the
 *      order of mcp_as_meta_urls); a 2025-03-26 server without any gets the
 *      default /authorize, /token and /register at its origin; an AS whose
 *      metadata does not list S256 in code_challenge_methods_supported is
 *      refused (the spec's MUST: PKCE cannot be verified);
 *   3. the client's identity: pre-registered, else a client ID metadata
 *      document (when the AS says client_id_metadata_document_supported),
 *      else RFC 7591 dynamic registration;
 *   4. the authorization request (PKCE S256, state, RFC 8707 resource, the
 *      scope: the challenge's, else the PRM's scopes_supported, else none)
 *      through a consent function, and the redirect checked (state, RFC
 *      9207 iss);
 *   5. the token request with the same resource and the token endpoint
 *      auth method the registration or the AS metadata names
 *      (client_secret_basic, client_secret_post or none).
 *
 * Every request goes through egress with the server's policy (no private
 * network unless the operator allowed it for this server, no redirects),
 * bounded in size and time. The caller's brigade credential is never part
 * of any of it. */
#include "mcp/mcp_oauth.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/xalloc.h"

#define FLOW_TIMEOUT_MS 10000u
#define FLOW_MAX_BODY (256u * 1024u)

struct mcp_oauth {
    char             server_url[MCP_OAUTH_URL_MAX];
    mcp_oauth_client client;          /* strings below are owned copies */
    char            *own[6];
    egress_policy    policy;
    /* a registration made once, kept for step-ups */
    char            *reg_client_id, *reg_client_secret, *reg_auth_method;
    char             reg_endpoint_for[MCP_OAUTH_URL_MAX];   /* the token endpoint it was made for */
    bool             reg_loaded;      /* reg_* came from mcp_oauth_client (not made here) */
    char            *access_token;
    char            *refresh_token;
    char             scopes[MCP_OAUTH_SCOPE_MAX];   /* the configuration's, when the server names none */
    bool             refused;                       /* egress refused an address: what, in `refusal` */
    egress_check     refusal;
};

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

mcp_oauth *mcp_oauth_new(const char *server_url, const mcp_oauth_client *client, const egress_policy *policy)
{
    mcp_oauth *o = xcalloc(1, sizeof *o);
    snprintf(o->server_url, sizeof o->server_url, "%s", server_url);
    o->client.client_id = o->own[0] = dup_or_null(client->client_id);
    o->client.client_secret = o->own[1] = dup_or_null(client->client_secret);
    o->client.token_endpoint_auth_method = o->own[2] = dup_or_null(client->token_endpoint_auth_method);
    o->client.client_metadata_url = o->own[3] = dup_or_null(client->client_metadata_url);
    o->client.redirect_uri = o->own[4] = dup_or_null(client->redirect_uri);
    o->client.client_name = o->own[5] = dup_or_null(client->client_name ? client->client_name : "brigade");
    o->policy = *policy;
    o->policy.max_redirects = 0;
    if (client->scopes) snprintf(o->scopes, sizeof o->scopes, "%s", client->scopes);
    if (client->registered_client_id && client->registered_for && client->registered_client_id[0]) {
        o->reg_client_id = xstrdup(client->registered_client_id);
        o->reg_auth_method = xstrdup(client->registered_auth_method ? client->registered_auth_method : "none");
        snprintf(o->reg_endpoint_for, sizeof o->reg_endpoint_for, "%s", client->registered_for);
        o->reg_loaded = true;
    }
    return o;
}

static void free_secret(char *s)
{
    if (!s) return;
    sodium_memzero(s, strlen(s));
    free(s);
}

void mcp_oauth_free(mcp_oauth *o)
{
    if (!o) return;
    for (size_t i = 0; i < sizeof o->own / sizeof o->own[0]; i++) free_secret(o->own[i]);
    free(o->reg_client_id);
    free_secret(o->reg_client_secret);
    free(o->reg_auth_method);
    free_secret(o->access_token);
    free_secret(o->refresh_token);
    free(o);
}

const char *mcp_oauth_token(const mcp_oauth *o) { return o ? o->access_token : NULL; }

/* ---- one bounded request through egress ---- */

typedef struct flow_resp {
    long  status;
    buf   body;
    bool  too_big;
    char *location;   /* a 3xx's Location, absolute */
    char  www_auth[MCP_OAUTH_URL_MAX + MCP_OAUTH_SCOPE_MAX];   /* a 401's WWW-Authenticate */
} flow_resp;

static size_t flow_header(char *p, size_t size, size_t n, void *arg)
{
    flow_resp *r = arg;
    size_t len = size * n;
    static const char name[] = "www-authenticate:";
    if (len > sizeof name - 1 && !strncasecmp(p, name, sizeof name - 1)) {
        size_t k = len - (sizeof name - 1);
        const char *v = p + sizeof name - 1;
        while (k && (*v == ' ' || *v == '\t')) v++, k--;
        while (k && (v[k - 1] == '\r' || v[k - 1] == '\n')) k--;
        if (k < sizeof r->www_auth) {
            memcpy(r->www_auth, v, k);
            r->www_auth[k] = '\0';
        }
    }
    return len;
}

static size_t flow_write(char *p, size_t size, size_t n, void *arg)
{
    flow_resp *r = arg;
    size_t len = size * n;
    if (r->body.len + len > FLOW_MAX_BODY) {
        r->too_big = true;
        return 0;
    }
    buf_append(&r->body, p, len);
    return len;
}

static void resp_free(flow_resp *r)
{
    buf_free(&r->body);
    free(r->location);
}

/* GET (form NULL, json NULL) or POST a form or JSON. basic_user/pass:
 * HTTP Basic (already form-encoded by the caller, RFC 6749 2.3.1). */
static bool flow_http_accept(mcp_oauth *o, const char *url, const char *form, const char *json,
                             const char *basic_user, const char *basic_pass, const char *accept, flow_resp *r,
                             char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->body);
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "not an http(s) URL: %.200s", url);
        return false;
    }
    CURL *e = curl_easy_init();
    if (!e) {
        snprintf(err, errlen, "libcurl failed");
        return false;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    char acc[128];
    snprintf(acc, sizeof acc, "Accept: %s", accept ? accept : "application/json");
    struct curl_slist *h = curl_slist_append(NULL, acc);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, flow_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, flow_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "brigade-mcp/" BRIGADE_VERSION);
    if (form) {
        h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, form);
    } else if (json) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
    }
    if (basic_user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, basic_user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, basic_pass ? basic_pass : "");
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    egress_policy pol = o->policy;
    pol.timeout_ms = FLOW_TIMEOUT_MS;
    pol.max_response_bytes = FLOW_MAX_BODY;
    egress_check chk;
    bool ok = false;
    if (!egress_apply(e, &chk, &pol)) {
        snprintf(err, errlen, "the egress policy could not be applied");
    } else {
        CURLcode rc = curl_easy_perform(e);
        if (egress_refused(&chk, rc)) {
            char msg[256];
            egress_describe(&chk, msg, sizeof msg);
            if (!o->refused) {
                o->refused = true;
                o->refusal = chk;
            }
            snprintf(err, errlen, "%.250s (%.200s)", msg, url);
        } else if (r->too_big) {
            snprintf(err, errlen, "%.200s answered more than %u bytes", url, FLOW_MAX_BODY);
        } else if (rc != CURLE_OK) {
            snprintf(err, errlen, "%.200s could not be reached: %.200s", url,
                     errbuf[0] ? errbuf : curl_easy_strerror(rc));
        } else {
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
            char *loc = NULL;
            if (r->status >= 300 && r->status < 400 && curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
                r->location = xstrdup(loc);
            buf_append(&r->body, "", 1);   /* NUL-terminate; len counts it */
            r->body.len--;
            ok = true;
        }
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return ok;
}

static bool flow_http(mcp_oauth *o, const char *url, const char *form, const char *json, const char *basic_user,
                      const char *basic_pass, flow_resp *r, char *err, size_t errlen)
{
    return flow_http_accept(o, url, form, json, basic_user, basic_pass, NULL, r, err, errlen);
}

/* GET a JSON object (200 only); NULL when anything else, err says why. */
static cJSON *fetch_json(mcp_oauth *o, const char *url, char *err, size_t errlen)
{
    flow_resp r;
    if (!flow_http(o, url, NULL, NULL, NULL, NULL, &r, err, errlen)) {
        resp_free(&r);
        return NULL;
    }
    cJSON *j = NULL;
    if (r.status != 200) snprintf(err, errlen, "%.200s answered HTTP %ld", url, r.status);
    else if (!(j = cJSON_ParseWithLength(r.body.data, r.body.len)) || !cJSON_IsObject(j)) {
        snprintf(err, errlen, "%.200s did not answer a JSON object", url);
        cJSON_Delete(j);
        j = NULL;
    }
    resp_free(&r);
    return j;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static bool jarray_has(const cJSON *o, const char *k, const char *want)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k), *v;
    cJSON_ArrayForEach(v, a) if (cJSON_IsString(v) && !strcmp(v->valuestring, want)) return true;
    return false;
}

static bool http_url(const char *u)
{
    return u && (!strncasecmp(u, "https://", 8) || !strncasecmp(u, "http://", 7)) && strlen(u) < MCP_OAUTH_URL_MAX;
}

/* Same URL but for a trailing slash. */
static bool same_url(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la && a[la - 1] == '/') la--;
    while (lb && b[lb - 1] == '/') lb--;
    return la == lb && !strncmp(a, b, la);
}

/* Append &k=v (v percent-encoded) to a buf. */
static void add_param(buf *b, const char *k, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    if (b->len) buf_append(b, "&", 1);
    buf_append(b, k, strlen(k));
    buf_append(b, "=", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            buf_append(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, e, 3);
        }
    }
}

static char *buf_take(buf *b)
{
    buf_append(b, "", 1);
    char *s = xstrdup(b->data);
    buf_free(b);
    return s;
}

static char *form_enc(const char *v)
{
    buf b;
    buf_init(&b);
    add_param(&b, "x", v);
    char *s = buf_take(&b);
    memmove(s, s + 2, strlen(s + 2) + 1);   /* drop "x=" */
    return s;
}

/* One query parameter of a URL, percent-decoded; false when absent. */
static bool query_param(const char *url, const char *name, char *out, size_t outlen)
{
    const char *q = strchr(url, '?');
    if (!q) return false;
    size_t nl = strlen(name);
    for (const char *p = q + 1; *p && *p != '#';) {
        size_t seg = strcspn(p, "&#");
        if (seg > nl && !strncmp(p, name, nl) && p[nl] == '=') {
            size_t k = 0;
            for (const char *v = p + nl + 1; v < p + seg; v++) {
                if (k + 1 >= outlen) return false;
                if (*v == '%' && v + 2 < p + seg && isxdigit((unsigned char)v[1]) &&
                    isxdigit((unsigned char)v[2])) {
                    char hx[3] = {v[1], v[2], 0};
                    char c = (char)strtol(hx, NULL, 16);
                    if (c == '\0') return false;   /* no NUL inside a value */
                    out[k++] = c;
                    v += 2;
                } else out[k++] = *v == '+' ? ' ' : *v;
            }
            out[k] = '\0';
            return true;
        }
        p += seg;
        if (*p == '&') p++;
    }
    return false;
}

static void random_b64url(char out[64])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, 64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void s256(const char *verifier, char out[64])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)verifier, strlen(verifier));
    sodium_bin2base64(out, 64, h, sizeof h, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* ---- the steps ---- */

/* 1. Protected-resource metadata: NULL (with *legacy) when the server
 * publishes none. */
static cJSON *find_prm(mcp_oauth *o, const mcp_www_auth *ch, bool *refused, char *err, size_t errlen)
{
    *refused = false;
    char server_origin[MCP_OAUTH_URL_MAX];
    if (!mcp_url_origin(o->server_url, server_origin, sizeof server_origin)) return NULL;
    if (ch && ch->resource_metadata[0]) {
        char origin[MCP_OAUTH_URL_MAX];
        if (!mcp_url_origin(ch->resource_metadata, origin, sizeof origin) || strcasecmp(origin, server_origin) != 0) {
            /* a server may not make brigade fetch another host's URL */
            snprintf(err, errlen, "the server's resource_metadata %.200s is not on the server's origin %.200s",
                     ch->resource_metadata, server_origin);
            *refused = true;
            return NULL;
        }
        cJSON *j = fetch_json(o, ch->resource_metadata, err, errlen);
        if (j) return j;
        if (strstr(err, "egress refused")) {
            *refused = true;
            return NULL;
        }
    }
    char urls[MCP_OAUTH_MAX_WELL_KNOWN][MCP_OAUTH_URL_MAX];
    size_t n = mcp_prm_urls(o->server_url, urls, MCP_OAUTH_MAX_WELL_KNOWN);
    for (size_t i = 0; i < n; i++) {
        cJSON *j = fetch_json(o, urls[i], err, errlen);
        if (j) return j;
        if (strstr(err, "egress refused")) {
            *refused = true;
            return NULL;
        }
    }
    return NULL;
}

typedef struct as_info {
    char issuer[MCP_OAUTH_URL_MAX];
    char authorization_endpoint[MCP_OAUTH_URL_MAX];
    char token_endpoint[MCP_OAUTH_URL_MAX];
    char registration_endpoint[MCP_OAUTH_URL_MAX];
    bool cimd;
    bool has_meta;
    cJSON *meta;   /* owned; NULL for the fallbacks */
} as_info;

static bool find_as(mcp_oauth *o, const char *issuer, bool legacy, as_info *as, char *err, size_t errlen)
{
    memset(as, 0, sizeof *as);
    char urls[MCP_OAUTH_MAX_WELL_KNOWN][MCP_OAUTH_URL_MAX];
    size_t n = mcp_as_meta_urls(issuer, urls, MCP_OAUTH_MAX_WELL_KNOWN);
    if (n == 0) {
        snprintf(err, errlen, "the authorization server %.200s is not an http(s) URL", issuer);
        return false;
    }
    for (size_t i = 0; i < n && !as->meta; i++) {
        as->meta = fetch_json(o, urls[i], err, errlen);
        if (!as->meta && strstr(err, "egress refused")) return false;
    }
    snprintf(as->issuer, sizeof as->issuer, "%s", issuer);
    if (!as->meta) {
        if (!legacy) {
            snprintf(err, errlen, "the authorization server %.200s publishes no metadata", issuer);
            return false;
        }
        /* 2025-03-26: the default endpoints at the server's origin (an
         * origin too long for them is refused, never cut) */
        _Static_assert(MCP_OAUTH_URL_MAX - 16 == 2032, "the %.2032s precisions below");
        if (strlen(issuer) > MCP_OAUTH_URL_MAX - 16) {
            snprintf(err, errlen, "the authorization server's URL is too long (over %d bytes)", MCP_OAUTH_URL_MAX - 16);
            return false;
        }
        snprintf(as->authorization_endpoint, sizeof as->authorization_endpoint, "%.2032s/authorize", issuer);
        snprintf(as->token_endpoint, sizeof as->token_endpoint, "%.2032s/token", issuer);
        snprintf(as->registration_endpoint, sizeof as->registration_endpoint, "%.2032s/register", issuer);
        return true;
    }
    as->has_meta = true;
    const char *iss = jstr(as->meta, "issuer");
    char iss_origin[MCP_OAUTH_URL_MAX];
    /* 2025-03-26 servers published their metadata at their root whatever
     * the issuer's path: there the issuer need only be of the same origin */
    if (iss && (legacy ? !mcp_url_origin(iss, iss_origin, sizeof iss_origin) || strcasecmp(iss_origin, issuer) != 0
                       : !same_url(iss, issuer))) {
        snprintf(err, errlen, "the authorization server's metadata names issuer %.200s, not %.200s", iss, issuer);
        return false;
    }
    const char *ae = jstr(as->meta, "authorization_endpoint"), *te = jstr(as->meta, "token_endpoint"),
               *re = jstr(as->meta, "registration_endpoint");
    if (!http_url(ae) || !http_url(te) || (re && !http_url(re))) {
        snprintf(err, errlen, "the authorization server's metadata lacks http(s) authorization and token endpoints");
        return false;
    }
    if (!jarray_has(as->meta, "code_challenge_methods_supported", "S256")) {
        snprintf(err, errlen, "the authorization server %.200s does not list S256 in code_challenge_methods_supported: "
                 "PKCE cannot be relied on, brigade does not authorize with it", issuer);
        return false;
    }
    snprintf(as->authorization_endpoint, sizeof as->authorization_endpoint, "%s", ae);
    snprintf(as->token_endpoint, sizeof as->token_endpoint, "%s", te);
    if (re) snprintf(as->registration_endpoint, sizeof as->registration_endpoint, "%s", re);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(as->meta, "client_id_metadata_document_supported");
    as->cimd = cJSON_IsTrue(c);
    return true;
}

/* The auth method for the token endpoint when nothing names one: what the
 * AS supports, preferring a secret in a header over one in the body. */
static const char *pick_method(const as_info *as, bool have_secret)
{
    const cJSON *m = as->meta ? cJSON_GetObjectItemCaseSensitive(as->meta, "token_endpoint_auth_methods_supported") : NULL;
    if (!m) return have_secret ? "client_secret_basic" : "none";   /* RFC 8414's default is basic */
    if (have_secret && jarray_has(as->meta, "token_endpoint_auth_methods_supported", "client_secret_basic"))
        return "client_secret_basic";
    if (have_secret && jarray_has(as->meta, "token_endpoint_auth_methods_supported", "client_secret_post"))
        return "client_secret_post";
    if (jarray_has(as->meta, "token_endpoint_auth_methods_supported", "none")) return "none";
    return have_secret ? "client_secret_basic" : "none";
}

typedef struct client_id {
    const char *id, *secret, *method;
} client_id;

static bool identify(mcp_oauth *o, const as_info *as, client_id *c, char *err, size_t errlen)
{
    if (o->client.client_id) {
        c->id = o->client.client_id;
        c->secret = o->client.client_secret;
        c->method = o->client.token_endpoint_auth_method ? o->client.token_endpoint_auth_method
                                                         : pick_method(as, c->secret != NULL);
        return true;
    }
    if (as->cimd && o->client.client_metadata_url) {
        c->id = o->client.client_metadata_url;
        c->secret = NULL;
        c->method = "none";
        return true;
    }
    if (o->reg_client_id && !strcmp(o->reg_endpoint_for, as->token_endpoint)) {
        c->id = o->reg_client_id;
        c->secret = o->reg_client_secret;
        c->method = o->reg_auth_method;
        return true;
    }
    if (!as->registration_endpoint[0]) {
        snprintf(err, errlen, "the authorization server %.200s offers no dynamic registration and brigade has no "
                 "client registered there (configure auth.client_id)", as->issuer);
        return false;
    }
    /* RFC 7591 */
    const char *want = pick_method(as, false);
    if (as->meta && !jarray_has(as->meta, "token_endpoint_auth_methods_supported", "none") &&
        cJSON_GetObjectItemCaseSensitive(as->meta, "token_endpoint_auth_methods_supported"))
        want = pick_method(as, true);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "client_name", o->client.client_name);
    cJSON *ru = cJSON_AddArrayToObject(req, "redirect_uris");
    cJSON_AddItemToArray(ru, cJSON_CreateString(o->client.redirect_uri));
    cJSON *gt = cJSON_AddArrayToObject(req, "grant_types");
    cJSON_AddItemToArray(gt, cJSON_CreateString("authorization_code"));
    cJSON_AddItemToArray(gt, cJSON_CreateString("refresh_token"));
    cJSON *rt = cJSON_AddArrayToObject(req, "response_types");
    cJSON_AddItemToArray(rt, cJSON_CreateString("code"));
    cJSON_AddStringToObject(req, "token_endpoint_auth_method", want);
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    flow_resp r;
    bool ok = flow_http(o, as->registration_endpoint, NULL, body, NULL, NULL, &r, err, errlen);
    free(body);
    cJSON *ans = NULL;
    if (ok && (r.status != 200 && r.status != 201)) {
        snprintf(err, errlen, "dynamic registration at %.200s answered HTTP %ld", as->registration_endpoint, r.status);
        ok = false;
    } else if (ok && (!(ans = cJSON_ParseWithLength(r.body.data, r.body.len)) || !jstr(ans, "client_id"))) {
        snprintf(err, errlen, "dynamic registration at %.200s gave no client_id", as->registration_endpoint);
        ok = false;
    }
    if (ok) {
        free(o->reg_client_id);
        free_secret(o->reg_client_secret);
        free(o->reg_auth_method);
        o->reg_client_id = xstrdup(jstr(ans, "client_id"));
        o->reg_client_secret = dup_or_null(jstr(ans, "client_secret"));
        const char *m = jstr(ans, "token_endpoint_auth_method");
        o->reg_auth_method = xstrdup(m ? m : o->reg_client_secret ? pick_method(as, true) : "none");
        snprintf(o->reg_endpoint_for, sizeof o->reg_endpoint_for, "%s", as->token_endpoint);
        o->reg_loaded = false;
        c->id = o->reg_client_id;
        c->secret = o->reg_client_secret;
        c->method = o->reg_auth_method;
    }
    cJSON_Delete(ans);
    resp_free(&r);
    return ok;
}

/* The resource (RFC 8707): the PRM's `resource` when it names this server
 * (same origin, a prefix of its path), else the server's URL. */
static bool pick_resource(mcp_oauth *o, const cJSON *prm, char *out, size_t outlen, char *err, size_t errlen)
{
    const char *res = prm ? jstr(prm, "resource") : NULL;
    if (!res) {
        snprintf(out, outlen, "%s", o->server_url);
        return true;
    }
    size_t rl = strlen(res);
    while (rl && res[rl - 1] == '/') rl--;
    if (!http_url(res) || strncmp(o->server_url, res, rl) != 0 ||
        (o->server_url[rl] && o->server_url[rl] != '/' && o->server_url[rl] != '?')) {
        snprintf(err, errlen, "the protected-resource metadata names resource %.200s, which is not %.200s", res,
                 o->server_url);
        return false;
    }
    snprintf(out, outlen, "%s", res);
    return true;
}

/* Steps 1 to 3 and the client's identity: what an authorization request
 * needs. */
typedef struct prepared {
    as_info   as;
    client_id c;
    char      resource[MCP_OAUTH_URL_MAX];
    char      scope[MCP_OAUTH_SCOPE_MAX];
} prepared;

static bool flow_prepare(mcp_oauth *o, const mcp_www_auth *ch, prepared *pp, char *err, size_t errlen)
{
    err[0] = '\0';
    memset(pp, 0, sizeof *pp);
    bool refused = false;
    cJSON *prm = find_prm(o, ch, &refused, err, errlen);
    if (refused) return false;
    char issuer[MCP_OAUTH_URL_MAX];
    bool legacy = false;
    if (prm) {
        const cJSON *as = cJSON_GetObjectItemCaseSensitive(prm, "authorization_servers");
        const cJSON *first = cJSON_GetArrayItem(as, 0);
        if (!cJSON_IsString(first) || !http_url(first->valuestring)) {
            snprintf(err, errlen, "the protected-resource metadata names no http(s) authorization server");
            cJSON_Delete(prm);
            return false;
        }
        snprintf(issuer, sizeof issuer, "%s", first->valuestring);
    } else {
        legacy = true;   /* 2025-03-26: the server's origin is its authorization server */
        mcp_url_origin(o->server_url, issuer, sizeof issuer);
    }
    char *resource = pp->resource;
    if (!pick_resource(o, prm, resource, sizeof pp->resource, err, errlen)) {
        cJSON_Delete(prm);
        return false;
    }
    /* scope: the challenge's, else the PRM's scopes_supported, else the
     * configuration's, else none */
    char *scope = pp->scope;
    const size_t scope_size = sizeof pp->scope;
    if (ch && ch->scope[0]) {
        snprintf(scope, scope_size, "%s", ch->scope);
    } else if (prm) {
        const cJSON *ss = cJSON_GetObjectItemCaseSensitive(prm, "scopes_supported"), *s;
        cJSON_ArrayForEach(s, ss) {
            if (!cJSON_IsString(s) || !s->valuestring[0]) continue;
            size_t l = strlen(scope);
            if (l + strlen(s->valuestring) + 2 >= scope_size) break;
            snprintf(scope + l, scope_size - l, "%s%s", l ? " " : "", s->valuestring);
        }
    }
    cJSON_Delete(prm);
    if (!scope[0] && o->scopes[0]) snprintf(scope, scope_size, "%s", o->scopes);
    as_info *asp = &pp->as;
    if (!find_as(o, issuer, legacy, asp, err, errlen)) {
        cJSON_Delete(asp->meta);
        asp->meta = NULL;
        return false;
    }
    client_id *cp = &pp->c;
    if (!identify(o, asp, cp, err, errlen)) {
        cJSON_Delete(asp->meta);
        asp->meta = NULL;
        return false;
    }
    if (strcmp(cp->method, "none") && strcmp(cp->method, "client_secret_basic") &&
        strcmp(cp->method, "client_secret_post")) {
        snprintf(err, errlen, "token endpoint auth method \"%.60s\" is not one brigade speaks", cp->method);
        cJSON_Delete(asp->meta);
        asp->meta = NULL;
        return false;
    }
    if (strcmp(cp->method, "none") && !cp->secret) {
        snprintf(err, errlen, "token endpoint auth method %s needs a client secret", cp->method);
        cJSON_Delete(asp->meta);
        asp->meta = NULL;
        return false;
    }
    return true;
}

bool mcp_oauth_authorize(mcp_oauth *o, const mcp_www_auth *ch, mcp_oauth_consent_fn consent, void *consent_arg,
                         char *err, size_t errlen)
{
    prepared pp;
    if (!flow_prepare(o, ch, &pp, err, errlen)) return false;
    as_info as = pp.as;
    client_id c = pp.c;
    const char *resource = pp.resource, *scope = pp.scope;
    /* the authorization request */
    char verifier[64], challenge[64], state[64];
    random_b64url(verifier);
    s256(verifier, challenge);
    random_b64url(state);
    buf q;
    buf_init(&q);
    add_param(&q, "response_type", "code");
    add_param(&q, "client_id", c.id);
    add_param(&q, "redirect_uri", o->client.redirect_uri);
    add_param(&q, "code_challenge", challenge);
    add_param(&q, "code_challenge_method", "S256");
    add_param(&q, "state", state);
    add_param(&q, "resource", resource);
    if (scope[0]) add_param(&q, "scope", scope);
    char *query = buf_take(&q);
    size_t ulen = strlen(as.authorization_endpoint) + strlen(query) + 2;
    char *auth_url = xmalloc(ulen);
    snprintf(auth_url, ulen, "%s%c%s", as.authorization_endpoint, strchr(as.authorization_endpoint, '?') ? '&' : '?',
             query);
    free(query);
    char *cb = consent(consent_arg, auth_url, err, errlen);
    free(auth_url);
    if (!cb) {
        cJSON_Delete(as.meta);
        return false;
    }
    char code[1024], got_state[128], iss[MCP_OAUTH_URL_MAX], oerr[128];
    bool ok = false;
    if (strncmp(cb, o->client.redirect_uri, strlen(o->client.redirect_uri)) != 0) {
        snprintf(err, errlen, "the authorization server redirected elsewhere than brigade's redirect URI");
    } else if (query_param(cb, "error", oerr, sizeof oerr)) {
        snprintf(err, errlen, "the authorization server refused: %.100s", oerr);
    } else if (!query_param(cb, "state", got_state, sizeof got_state) || strcmp(got_state, state) != 0) {
        snprintf(err, errlen, "the authorization redirect's state does not match");
    } else if (query_param(cb, "iss", iss, sizeof iss) && as.has_meta && jstr(as.meta, "issuer") &&
               !same_url(iss, jstr(as.meta, "issuer"))) {
        snprintf(err, errlen, "the authorization redirect's iss is not the authorization server's issuer");   /* RFC 9207 */
    } else if (!query_param(cb, "code", code, sizeof code) || !code[0]) {
        snprintf(err, errlen, "the authorization redirect carries no code");
    } else {
        ok = true;
    }
    free(cb);
    if (!ok) {
        cJSON_Delete(as.meta);
        return false;
    }
    /* the token request */
    buf f;
    buf_init(&f);
    add_param(&f, "grant_type", "authorization_code");
    add_param(&f, "code", code);
    add_param(&f, "redirect_uri", o->client.redirect_uri);
    add_param(&f, "code_verifier", verifier);
    add_param(&f, "resource", resource);
    char *user = NULL, *pass = NULL;
    if (!strcmp(c.method, "client_secret_basic")) {
        user = form_enc(c.id);
        pass = form_enc(c.secret);
    } else {
        add_param(&f, "client_id", c.id);
        if (!strcmp(c.method, "client_secret_post")) add_param(&f, "client_secret", c.secret);
    }
    char *form = buf_take(&f);
    flow_resp r;
    ok = flow_http(o, as.token_endpoint, form, NULL, user, pass, &r, err, errlen);
    free_secret(form);
    free_secret(user);
    free_secret(pass);
    sodium_memzero(verifier, sizeof verifier);
    sodium_memzero(code, sizeof code);
    cJSON_Delete(as.meta);
    cJSON *ans = NULL;
    if (ok && r.status != 200) {
        cJSON *e = cJSON_ParseWithLength(r.body.data, r.body.len);
        snprintf(err, errlen, "the token endpoint answered HTTP %ld%s%.100s", r.status, jstr(e, "error") ? ": " : "",
                 jstr(e, "error") ? jstr(e, "error") : "");
        cJSON_Delete(e);
        ok = false;
    } else if (ok) {
        ans = cJSON_ParseWithLength(r.body.data, r.body.len);
        const char *at = jstr(ans, "access_token"), *tt = jstr(ans, "token_type");
        if (!at || strlen(at) > 8192) {
            snprintf(err, errlen, "the token endpoint gave no usable access_token");
            ok = false;
        } else if (tt && strcasecmp(tt, "Bearer") != 0) {
            snprintf(err, errlen, "the token endpoint gave a %.40s token, not a Bearer one", tt);
            ok = false;
        } else {
            for (const char *p = at; *p; p++)
                if ((unsigned char)*p <= 0x20 || *p == 0x7f) ok = false;   /* it goes into a header */
            if (!ok) snprintf(err, errlen, "the token endpoint gave an access_token that cannot be sent");
        }
        if (ok) {
            free_secret(o->access_token);
            o->access_token = xstrdup(at);
            free_secret(o->refresh_token);
            o->refresh_token = dup_or_null(jstr(ans, "refresh_token"));
        }
    }
    cJSON_Delete(ans);
    if (r.body.data) sodium_memzero(r.body.data, r.body.len);
    resp_free(&r);
    return ok;
}

void mcp_oauth_provider_name(const char *server_name, const char *url, const char *client_id,
                             const char *tenant_id, char out[MCP_OAUTH_PROVIDER_MAX])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    const char *parts[] = {tenant_id ? tenant_id : "", url ? url : "", client_id ? client_id : ""};
    for (size_t i = 0; i < 3; i++)   /* each with its NUL: no two splits hash alike */
        crypto_hash_sha256_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, h);
    char hex[17];
    sodium_bin2hex(hex, sizeof hex, h, 8);
    snprintf(out, MCP_OAUTH_PROVIDER_MAX, "mcp:%.32s:%s", server_name, hex);
}

void mcp_oauth_discovery_free(mcp_oauth_discovery *d)
{
    if (!d) return;
    free(d->client_id);
    free_secret(d->client_secret);
    memset(d, 0, sizeof *d);
}

bool mcp_oauth_discover(const char *server_url, const mcp_oauth_client *client, const egress_policy *policy,
                        mcp_oauth_discovery *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    mcp_oauth *o = mcp_oauth_new(server_url, client, policy);
    /* the challenge: what the server says to a request without a token */
    char init[256];
    snprintf(init, sizeof init,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"%s\","
             "\"capabilities\":{},\"clientInfo\":{\"name\":\"brigade\",\"version\":\"%s\"}}}",
             MCP_OAUTH_PROTOCOL_VERSION, BRIGADE_VERSION);
    flow_resp r;
    bool ok = flow_http_accept(o, server_url, NULL, init, NULL, NULL, "application/json, text/event-stream", &r, err,
                               errlen);
    mcp_www_auth ch;
    bool have = ok && (r.status == 401 || r.status == 403) && mcp_www_auth_parse(r.www_auth, &ch);
    resp_free(&r);
    prepared pp;
    if (ok) ok = flow_prepare(o, have ? &ch : NULL, &pp, err, errlen);
    if (ok) {
        const char *iss = pp.as.has_meta ? jstr(pp.as.meta, "issuer") : NULL;
        snprintf(out->issuer, sizeof out->issuer, "%s", iss ? iss : "");
        snprintf(out->authorization_endpoint, sizeof out->authorization_endpoint, "%s", pp.as.authorization_endpoint);
        snprintf(out->token_endpoint, sizeof out->token_endpoint, "%s", pp.as.token_endpoint);
        snprintf(out->resource, sizeof out->resource, "%s", pp.resource);
        snprintf(out->scope, sizeof out->scope, "%s", pp.scope);
        snprintf(out->auth_method, sizeof out->auth_method, "%s", pp.c.method);
        out->client_id = xstrdup(pp.c.id);
        out->client_secret = dup_or_null(pp.c.secret);
        /* made now (not configured, not a metadata document, not the one
         * the caller kept): the caller may keep it */
        out->registered = o->reg_client_id && pp.c.id == o->reg_client_id && !o->reg_loaded;
        if (out->registered) snprintf(out->registered_for, sizeof out->registered_for, "%s", o->reg_endpoint_for);
        cJSON_Delete(pp.as.meta);
    }
    if (!ok && o->refused) {
        out->refused = true;
        snprintf(out->refused_class, sizeof out->refused_class, "%s", egress_class_name(o->refusal.cls));
        snprintf(out->refused_address, sizeof out->refused_address, "%s", o->refusal.address);
        snprintf(out->refused_form, sizeof out->refused_form, "%s",
                 o->refusal.via != EGRESS_VIA_NONE ? egress_via_name(o->refusal.via) : "");
    }
    mcp_oauth_free(o);
    return ok;
}

char *mcp_oauth_consent_headless(void *oauth, const char *authorization_url, char *err, size_t errlen)
{
    mcp_oauth *o = oauth;
    flow_resp r;
    if (!flow_http(o, authorization_url, NULL, NULL, NULL, NULL, &r, err, errlen)) {
        resp_free(&r);
        return NULL;
    }
    char *loc = r.location;
    r.location = NULL;
    if (!loc) snprintf(err, errlen, "the authorization endpoint answered HTTP %ld, not a redirect", r.status);
    resp_free(&r);
    return loc;
}
