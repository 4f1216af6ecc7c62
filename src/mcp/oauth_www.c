/* oauth_www.c — the pure pieces of MCP authorization: reading the
 * `WWW-Authenticate` of a 401/403 (RFC 9110 11.6.1 challenges, RFC 6750's
 * Bearer parameters, RFC 9728's resource_metadata) and building the
 * well-known metadata URLs to try, in the spec's order. No I/O:
 * tests/unit/mcp/test_mcp_oauth.c and fuzz/mcp/fuzz_mcp_www_auth.c. */
#include "mcp/mcp_oauth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar */
static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

/* Copy a token or quoted-string value at p into out; NULL when malformed
 * or too long (never cut: a cut URL or scope would be a different one). */
static const char *read_value(const char *p, char *out, size_t outlen)
{
    size_t n = 0;
    if (*p == '"') {
        p++;
        for (;;) {
            char c = *p;
            if (c == '\0') return NULL;                 /* unterminated */
            if (c == '"') { p++; break; }
            if (c == '\\') {
                c = *++p;
                if (c == '\0') return NULL;
            }
            if ((unsigned char)c < 0x20 || c == 0x7f) return NULL;
            if (n + 1 >= outlen) return NULL;
            out[n++] = c;
            p++;
        }
    } else {
        /* a token; token68's trailing '=' are allowed too */
        while (is_tchar(*p) || *p == '/' || *p == '=') {
            if (n + 1 >= outlen) return NULL;
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return p;
}

bool mcp_www_auth_parse(const char *value, mcp_www_auth *out)
{
    memset(out, 0, sizeof *out);
    if (!value) return false;
    const char *p = value;
    bool in_bearer = false;
    char name[64], scratch[MCP_OAUTH_URL_MAX];
    for (;;) {
        p = skip_ows(p);
        while (*p == ',') p = skip_ows(p + 1);
        if (!*p) break;
        size_t n = 0;
        while (is_tchar(*p)) {
            if (n + 1 >= sizeof name) return false;
            name[n++] = *p++;
        }
        name[n] = '\0';
        if (n == 0) return false;                      /* not a token: malformed */
        const char *q = skip_ows(p);
        if (*q == '=' && q[1] != '=') {
            /* name=value: a parameter of the current challenge */
            q = skip_ows(q + 1);
            char *dst = scratch;
            size_t dlen = sizeof scratch;
            if (in_bearer && !strcasecmp(name, "resource_metadata")) dst = out->resource_metadata, dlen = sizeof out->resource_metadata;
            else if (in_bearer && !strcasecmp(name, "scope")) dst = out->scope, dlen = sizeof out->scope;
            else if (in_bearer && !strcasecmp(name, "error")) dst = out->error, dlen = sizeof out->error;
            p = read_value(q, dst, dlen);
            if (!p) return false;
            p = skip_ows(p);
            if (*p && *p != ',') return false;
            continue;
        }
        /* a new challenge: its scheme, maybe followed by a token68 */
        in_bearer = !strcasecmp(name, "Bearer");
        if (in_bearer) out->bearer = true;
        p = q;
        if (*p && *p != ',' && (is_tchar(*p) || *p == '/')) {
            /* either token68 or the first auth-param: look ahead */
            const char *r = p;
            while (is_tchar(*r)) r++;
            r = skip_ows(r);
            if (*r == '=' && r[1] != '=') continue;     /* an auth-param: parsed next turn */
            p = read_value(p, scratch, sizeof scratch);
            if (!p) return false;
            p = skip_ows(p);
            if (*p && *p != ',') return false;
        }
    }
    return out->bearer;
}

/* Split an http(s) URL into origin (scheme://authority) and path (without
 * query or fragment; "" for "/" or none). */
static bool url_split(const char *url, char *origin, size_t olen, char *path, size_t plen)
{
    if (!url) return false;
    size_t skip;
    if (!strncasecmp(url, "https://", 8)) skip = 8;
    else if (!strncasecmp(url, "http://", 7)) skip = 7;
    else return false;
    const char *auth = url + skip;
    size_t alen = strcspn(auth, "/?#");
    if (alen == 0) return false;
    for (size_t i = 0; i < alen; i++)
        if ((unsigned char)auth[i] <= 0x20 || auth[i] == '@' || auth[i] == '\\') return false;
    if (skip + alen + 1 > olen) return false;
    memcpy(origin, url, skip + alen);
    origin[skip + alen] = '\0';
    const char *ps = auth + alen;
    size_t pl = *ps == '/' ? strcspn(ps, "?#") : 0;
    while (pl > 0 && ps[pl - 1] == '/') pl--;          /* "/mcp/" is "/mcp"; "/" is "" */
    if (pl + 1 > plen) return false;
    memcpy(path, ps, pl);
    path[pl] = '\0';
    return true;
}

bool mcp_url_origin(const char *url, char *out, size_t outlen)
{
    char path[MCP_OAUTH_URL_MAX];
    return url_split(url, out, outlen, path, sizeof path);
}

static size_t put(char out[][MCP_OAUTH_URL_MAX], size_t k, size_t max, const char *a, const char *b,
                  const char *c)
{
    if (k >= max) return k;
    int w = snprintf(out[k], MCP_OAUTH_URL_MAX, "%s%s%s", a, b, c);
    return w > 0 && w < MCP_OAUTH_URL_MAX ? k + 1 : k;
}

size_t mcp_prm_urls(const char *server_url, char out[][MCP_OAUTH_URL_MAX], size_t max)
{
    char origin[MCP_OAUTH_URL_MAX], path[MCP_OAUTH_URL_MAX];
    if (!url_split(server_url, origin, sizeof origin, path, sizeof path)) return 0;
    size_t k = 0;
    if (path[0]) k = put(out, k, max, origin, "/.well-known/oauth-protected-resource", path);
    return put(out, k, max, origin, "/.well-known/oauth-protected-resource", "");
}

size_t mcp_as_meta_urls(const char *issuer, char out[][MCP_OAUTH_URL_MAX], size_t max)
{
    char origin[MCP_OAUTH_URL_MAX], path[MCP_OAUTH_URL_MAX];
    if (!url_split(issuer, origin, sizeof origin, path, sizeof path)) return 0;
    size_t k = 0;
    if (path[0]) {
        k = put(out, k, max, origin, "/.well-known/oauth-authorization-server", path);
        k = put(out, k, max, origin, "/.well-known/openid-configuration", path);
        k = put(out, k, max, origin, path, "/.well-known/openid-configuration");
    } else {
        k = put(out, k, max, origin, "/.well-known/oauth-authorization-server", "");
        k = put(out, k, max, origin, "/.well-known/openid-configuration", "");
    }
    return k;
}
