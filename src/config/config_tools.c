/* config_tools.c — the `tools:` section: declared HTTP tools (name, URL
 * and its {placeholders}, method, headers and their secrets, the JSON
 * Schema of the arguments, written in YAML and converted by config_json.c). */
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_load.h"
#include "util/buf.h"

/* RFC 9110 token characters: what a header name may be made of. */
static int ld_is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A header whose value is a credential: written literally, it earns the
 * same warning as a literal api_key. */
static int ld_header_is_secret(const char *name)
{
    if (!strcasecmp(name, "authorization") || !strcasecmp(name, "proxy-authorization"))
        return 1;
    static const char *const words[] = {"key", "token", "secret", "password"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(name, words[i]))
            return 1;
    return 0;
}

/* A header value: `${user.id}` and `${tenant.id}` (CONFIG_TOOL_IDENTITY_*)
 * stay as written, filled in per call with the calling user's identity
 * (tool_http.c); the rest is a string as ld_string reads it, except that a
 * tenant's body may hold no other `${`. */
static int ld_header_value(ld *l, const slot *s, const char *path, char **out, int *raw_literal)
{
    static const char *const idents[] = {CONFIG_TOOL_IDENTITY_USER, CONFIG_TOOL_IDENTITY_TENANT};
    const char *txt;
    size_t len;
    if (ld_text(l, s, path, &txt, &len) < 0)
        return -1;
    buf b;
    buf_init(&b);
    *raw_literal = 1;
    size_t i = 0;
    while (i <= len) {
        /* the next identity template, or the end */
        size_t j = i, tl = 0;
        for (; j < len; j++) {
            for (size_t k = 0; k < 2 && !tl; k++)
                if (len - j >= strlen(idents[k]) && !memcmp(txt + j, idents[k], strlen(idents[k])))
                    tl = strlen(idents[k]);
            if (tl)
                break;
        }
        char *seg = NULL, why[256];
        if (config_env_has_ref(txt + i, j - i)) {
            *raw_literal = 0;
            if (l->api_body) {
                buf_free(&b);
                return ld_fail(l, s->line, path, "only %s and %s may be used with ${ in a tenant's "
                               "header value", idents[0], idents[1]);
            }
        }
        if (l->api_body)
            seg = config_xstrndup(txt + i, j - i);
        else if (config_env_expand(txt + i, j - i, &seg, why, sizeof(why)) < 0) {
            buf_free(&b);
            return ld_fail(l, s->line, path, "%s", why);
        }
        buf_append(&b, seg, strlen(seg));
        free(seg);
        if (!tl)
            break;
        buf_append(&b, txt + j, tl);
        i = j + tl;
    }
    buf_append(&b, "", 0);
    free(*out);
    *out = buf_detach(&b);
    return 0;
}

static int ld_tool_headers(ld *l, struct fy_node *map, int line, const char *path, tool_cfg *t)
{
    char wbuf[64], kp[400];
    if (config_node_is_null(map))
        return 0;
    if (fy_node_get_type(map) != FYNT_MAPPING)
        return ld_fail(l, config_node_line(map, line), path,
                       "expected a mapping (Header-Name: value), got %s", config_node_what(map, wbuf, sizeof(wbuf)));
    int cnt = fy_node_mapping_item_count(map);
    if (cnt <= 0)
        return 0;
    t->header_names = config_xcalloc((size_t)cnt, sizeof(char *));
    t->header_values = config_xcalloc((size_t)cnt, sizeof(char *));
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(map, &it)) != NULL && t->n_headers < (size_t)cnt) {
        struct fy_node *k = fy_node_pair_key(p);
        int kline = config_node_line(k, line);
        size_t klen = 0;
        const char *ks = (k && fy_node_get_type(k) == FYNT_SCALAR) ? fy_node_get_scalar(k, &klen) : NULL;
        if (!ks || klen == 0)
            return ld_fail(l, kline, path, "header names must be non-empty strings");
        int ok = klen <= 128;
        for (size_t i = 0; ok && i < klen; i++)
            ok = ld_is_tchar(ks[i]);
        if (!ok)
            return ld_fail(l, kline, path, "\"%.*s\" is not a valid header name", (int)(klen > 64 ? 64 : klen), ks);
        char *name = config_xstrndup(ks, klen);
        snprintf(kp, sizeof(kp), "%s.%s", path, name);
        /* Framing and routing headers belong to brigade's HTTP client: a
         * wrong Content-Length or Host from the file would corrupt requests. */
        static const char *const reserved[] = {"host", "content-length", "transfer-encoding", "connection"};
        for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
            if (!strcasecmp(name, reserved[i])) {
                free(name);
                return ld_fail(l, kline, kp, "this header is set by brigade and cannot be configured");
            }
        }
        for (size_t i = 0; i < t->n_headers; i++) {
            if (!strcasecmp(name, t->header_names[i])) {
                ld_fail(l, kline, kp, "header given twice (also \"%s\"; names are case-insensitive)",
                        t->header_names[i]);
                free(name);
                return -1;
            }
        }
        size_t i = t->n_headers++;
        t->header_names[i] = name;
        slot vs = {.key = name, .val = fy_node_pair_value(p), .line = kline, .present = 1};
        int literal = 0;
        if (ld_header_value(l, &vs, kp, &t->header_values[i], &literal) < 0)
            return -1;
        for (const char *c = t->header_values[i]; *c; c++)
            if (((unsigned char)*c < ' ' && *c != '\t') || *c == 0x7f)
                return ld_fail(l, kline, kp, "header values must not contain control characters or line breaks");
        if (literal && *t->header_values[i] && ld_header_is_secret(name))
            ld_warn(l, kline, kp, "the credential is written in the file; prefer ${VAR}");
    }
    return 0;
}

/* `parameters`: a JSON Schema of the tool's arguments, written as YAML. */
static int ld_tool_parameters(ld *l, const slot *s, const char *path, tool_cfg *t)
{
    char wbuf[64], kp[400];
    struct fy_node *n = s->val;
    if (config_node_is_null(n) || fy_node_get_type(n) != FYNT_MAPPING)
        return ld_fail(l, s->line, path, "expected a mapping holding a JSON Schema "
                       "(type: object, properties: …), got %s", config_node_what(n, wbuf, sizeof(wbuf)));
    /* Models send the arguments of a call as one JSON object. */
    struct fy_node *type = fy_node_mapping_lookup_by_string(n, "type", FY_NT);
    if (!type)
        return ld_fail(l, s->line, path, "needs \"type: object\" (a tool's arguments are a JSON object)");
    size_t tl = 0;
    const char *tv = fy_node_get_type(type) == FYNT_SCALAR ? fy_node_get_scalar(type, &tl) : NULL;
    if (!tv || tl != 6 || memcmp(tv, "object", 6) != 0) {
        ld_path(kp, sizeof(kp), path, "type");
        return ld_fail(l, config_node_line(type, s->line), kp,
                       "must be \"object\" (a tool's arguments are a JSON object), got %s",
                       config_node_what(type, wbuf, sizeof(wbuf)));
    }
    struct fy_node *props = fy_node_mapping_lookup_by_string(n, "properties", FY_NT);
    if (props && !config_node_is_null(props) && fy_node_get_type(props) != FYNT_MAPPING) {
        ld_path(kp, sizeof(kp), path, "properties");
        return ld_fail(l, config_node_line(props, s->line), kp, "expected a mapping (argument name: schema), got %s",
                       config_node_what(props, wbuf, sizeof(wbuf)));
    }
    buf b;
    buf_init(&b);
    int line = 0;
    char sub[128], why[256];
    if (config_yaml_to_json(n, &b, &line, sub, sizeof(sub), why, sizeof(why)) < 0) {
        buf_free(&b);
        snprintf(kp, sizeof(kp), "%s%s", path, sub);
        return ld_fail(l, line ? line : s->line, kp, "%s", why);
    }
    buf_append(&b, "", 0);
    free(t->parameters_json);
    t->parameters_json = buf_detach(&b);
    return 0;
}

/* `{name}` placeholders of a tool URL: only after the host (an argument
 * choosing the host would let the model send the request anywhere), each
 * a property of the parameters schema so the model knows to supply it. */
static int ld_tool_url_placeholders(ld *l, const slot *s, const char *path, const char *u, size_t host_at,
                                    struct fy_node *params)
{
    size_t host_end = host_at + strcspn(u + host_at, "/?#");
    for (size_t i = 0; u[i]; i++) {
        if (u[i] != '{' && u[i] != '}')
            continue;
        if (i < host_end)
            return ld_fail(l, s->line, path, "placeholders are only allowed after the host, in \"%s\"", u);
        if (u[i] == '}')
            return ld_fail(l, s->line, path, "\"}\" without \"{\" in \"%s\"", u);
        size_t j = i + 1;
        while ((u[j] >= 'a' && u[j] <= 'z') || (u[j] >= 'A' && u[j] <= 'Z') ||
               (u[j] >= '0' && u[j] <= '9') || u[j] == '_' || u[j] == '-')
            j++;
        if (j == i + 1 || u[j] != '}')
            return ld_fail(l, s->line, path, "bad placeholder at \"%.20s\" (want {name}, name of "
                           "a-z A-Z 0-9 _ -)", u + i);
        struct fy_node *props = params ? fy_node_mapping_lookup_by_string(params, "properties", FY_NT) : NULL;
        struct fy_node *prop = (props && fy_node_get_type(props) == FYNT_MAPPING)
                                   ? fy_node_mapping_lookup_by_string(props, u + i + 1, j - i - 1) : NULL;
        if (!prop)
            return ld_fail(l, s->line, path, "placeholder {%.*s} is not a property of the tool's parameters",
                           (int)(j - i - 1), u + i + 1);
        i = j;
    }
    return 0;
}

enum { TO_NAME, TO_DESC, TO_URL, TO_METHOD, TO_HEADERS, TO_PARAMS, TO_TIMEOUT, TO_MAX_RESP,
       TO_APPROVAL, TO_APPROVAL_TIMEOUT, TO_AUTH_TIMEOUT, TO_EFFECTS, TO_TENANTS, TO_AUTH,
       TO_ALLOW_PRIVATE, TO_MAX_REDIRECTS, TO__N };

const char *config_tool_effects_name(tool_effects e)
{
    return e == TOOL_EFFECTS_READ ? "read" : e == TOOL_EFFECTS_WRITE ? "write" : "external";
}

/* `effects: read | write | external` of a tool. */
static int ld_tool_effects(ld *l, const slot *s, const char *path, tool_effects *out)
{
    const char *txt;
    size_t len;
    if (ld_scalar(l, s, path, "read, write or external", &txt, &len) < 0)
        return -1;
    static const tool_effects all[] = {TOOL_EFFECTS_READ, TOOL_EFFECTS_WRITE, TOOL_EFFECTS_EXTERNAL};
    for (size_t i = 0; i < 3; i++) {
        const char *n = config_tool_effects_name(all[i]);
        if (len == strlen(n) && !memcmp(txt, n, len)) {
            *out = all[i];
            return 0;
        }
    }
    return ld_fail(l, s->line, path, "expected read, write or external, got \"%.*s\"",
                   (int)(len > 40 ? 40 : len), txt);
}

int ld_tenants(ld *l, const slot *s, const char *path, bool *enable)
{
    const char *txt;
    size_t len;
    if (l->api_body)
        return ld_fail(l, s->line, path, "only the server's configuration says which tenants "
                       "have an entry");
    if (ld_scalar(l, s, path, "all or enable", &txt, &len) < 0)
        return -1;
    if (len == 3 && !memcmp(txt, "all", 3))
        *enable = false;
    else if (len == 6 && !memcmp(txt, "enable", 6))
        *enable = true;
    else
        return ld_fail(l, s->line, path, "expected all (every tenant) or enable (tenants whose "
                       "admin enabled it), got \"%.*s\"", (int)(len > 40 ? 40 : len), txt);
    return 0;
}

static int ld_tool(ld *l, struct fy_node *n, int line, const char *path, tool_cfg *t, entry_lines *el)
{
    slot s[TO__N] = {
        [TO_NAME] = {.key = "name"},          [TO_DESC] = {.key = "description"},
        [TO_URL] = {.key = "url"},            [TO_METHOD] = {.key = "method"},
        [TO_HEADERS] = {.key = "headers"},    [TO_PARAMS] = {.key = "parameters"},
        [TO_TIMEOUT] = {.key = "timeout_ms"}, [TO_MAX_RESP] = {.key = "max_response_bytes"},
        [TO_APPROVAL] = {.key = "approval"}, [TO_APPROVAL_TIMEOUT] = {.key = "approval_timeout_s"},
        [TO_AUTH_TIMEOUT] = {.key = "auth_timeout_s"},
        [TO_EFFECTS] = {.key = "effects"},    [TO_TENANTS] = {.key = "tenants"},
        [TO_AUTH] = {.key = "auth"},
        [TO_ALLOW_PRIVATE] = {.key = "allow_private_networks"}, [TO_MAX_REDIRECTS] = {.key = "max_redirects"},
    };
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, url, …), got nothing");
    if (ld_collect(l, n, line, path, s, TO__N) < 0)
        return -1;
    char kp[160];
    t->timeout_ms = 10000;
    t->max_response_bytes = 262144;
    t->approval_timeout_s = 3600;
    t->auth_timeout_s = 600;
    t->effects = TOOL_EFFECTS_EXTERNAL;
    if (!s[TO_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    if (ld_ident(l, &s[TO_NAME], kp, &t->name, "_-", "tool") < 0)
        return -1;
    el->name = s[TO_NAME].line;
    if (!strcmp(t->name, "memory") || !strcmp(t->name, "clock"))
        return ld_fail(l, s[TO_NAME].line, kp, "\"%s\" is a built-in tool; choose another name", t->name);

    if (s[TO_DESC].present) {
        ld_path(kp, sizeof(kp), path, "description");
        if (ld_string(l, &s[TO_DESC], kp, &t->description, NULL) < 0)
            return -1;
    } else {
        t->description = config_xstrdup("");
    }

    if (!s[TO_URL].present)
        return ld_fail(l, line, path, "missing required key \"url\"");
    ld_path(kp, sizeof(kp), path, "url");
    size_t host_at;
    if (ld_http_url(l, &s[TO_URL], kp, &t->url, &host_at) < 0)
        return -1;
    if (ld_tool_url_placeholders(l, &s[TO_URL], kp, t->url, host_at,
                                 s[TO_PARAMS].present ? s[TO_PARAMS].val : NULL) < 0)
        return -1;

    if (s[TO_METHOD].present) {
        ld_path(kp, sizeof(kp), path, "method");
        if (ld_nonempty(l, &s[TO_METHOD], kp, &t->method, NULL) < 0)
            return -1;
        static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
        size_t i;
        for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
            if (!strcasecmp(t->method, methods[i]))
                break;
        if (i == sizeof(methods) / sizeof(methods[0]))
            return ld_fail(l, s[TO_METHOD].line, kp, "unknown method \"%s\" (known: GET, POST, PUT, PATCH, DELETE)",
                           t->method);
        free(t->method);
        t->method = config_xstrdup(methods[i]);
    } else {
        t->method = config_xstrdup("POST");
    }

    if (s[TO_HEADERS].present) {
        ld_path(kp, sizeof(kp), path, "headers");
        if (ld_tool_headers(l, s[TO_HEADERS].val, s[TO_HEADERS].line, kp, t) < 0)
            return -1;
    }
    if (s[TO_PARAMS].present) {
        ld_path(kp, sizeof(kp), path, "parameters");
        if (ld_tool_parameters(l, &s[TO_PARAMS], kp, t) < 0)
            return -1;
    } else {
        t->parameters_json = config_xstrdup("{\"type\":\"object\"}");
    }
    if (s[TO_TIMEOUT].present) {
        ld_path(kp, sizeof(kp), path, "timeout_ms");
        if (ld_u32(l, &s[TO_TIMEOUT], kp, 1, 600000, &t->timeout_ms) < 0)
            return -1;
    }
    if (s[TO_MAX_RESP].present) {
        ld_path(kp, sizeof(kp), path, "max_response_bytes");
        if (ld_u32(l, &s[TO_MAX_RESP], kp, 1, 16 << 20, &t->max_response_bytes) < 0)
            return -1;
    }
    if (s[TO_APPROVAL].present) {
        ld_path(kp, sizeof(kp), path, "approval");
        if (ld_tool_approval(l, &s[TO_APPROVAL], kp, t) < 0)
            return -1;
    }
    if (s[TO_APPROVAL_TIMEOUT].present) {
        ld_path(kp, sizeof(kp), path, "approval_timeout_s");
        if (ld_u32(l, &s[TO_APPROVAL_TIMEOUT], kp, 1, 30 * 86400, &t->approval_timeout_s) < 0)
            return -1;
    }
    if (s[TO_AUTH_TIMEOUT].present) {
        ld_path(kp, sizeof(kp), path, "auth_timeout_s");
        if (ld_u32(l, &s[TO_AUTH_TIMEOUT], kp, 1, 86400, &t->auth_timeout_s) < 0)
            return -1;
    }
    if (s[TO_EFFECTS].present) {
        ld_path(kp, sizeof(kp), path, "effects");
        if (ld_tool_effects(l, &s[TO_EFFECTS], kp, &t->effects) < 0)
            return -1;
    }
    if (s[TO_TENANTS].present) {
        ld_path(kp, sizeof(kp), path, "tenants");
        if (ld_tenants(l, &s[TO_TENANTS], kp, &t->tenants_enable) < 0)
            return -1;
    }
    if (s[TO_AUTH].present) {
        ld_path(kp, sizeof(kp), path, "auth");
        if (ld_tool_auth(l, &s[TO_AUTH], kp, t) < 0)
            return -1;
    }
    if (s[TO_ALLOW_PRIVATE].present) {
        ld_path(kp, sizeof(kp), path, "allow_private_networks");
        /* Reaching the server's own networks is the operator's decision:
         * a tenant admin could otherwise point a tool at the machine. */
        if (l->api_body)
            return ld_fail(l, s[TO_ALLOW_PRIVATE].line, kp, "only the server's configuration may let "
                           "a tool reach private networks; a tenant's tool reaches public addresses only");
        if (ld_bool(l, &s[TO_ALLOW_PRIVATE], kp, &t->allow_private_networks) < 0)
            return -1;
    }
    if (s[TO_MAX_REDIRECTS].present) {
        ld_path(kp, sizeof(kp), path, "max_redirects");
        if (ld_u32(l, &s[TO_MAX_REDIRECTS], kp, 0, EGRESS_MAX_REDIRECTS_CFG, &t->max_redirects) < 0)
            return -1;
        /* libcurl drops an Authorization header on a redirect to another
         * host, but not a header of another name: the user's token would
         * follow the redirect wherever it points. */
        const char *ah = t->auth_header ? t->auth_header : "Authorization";
        if (t->max_redirects && t->auth_provider && strcasecmp(ah, "Authorization") != 0)
            return ld_fail(l, s[TO_MAX_REDIRECTS].line, kp, "a tool that sends the user's credential "
                           "in \"%s\" cannot follow redirects (the header would go to the redirect's "
                           "host); use the Authorization header or max_redirects: 0", ah);
    }
    return 0;
}


int ld_tool_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_tool(l, n, line, path, e, el);
}
void ld_tool_free(void *e) { config_tool_free(e); }
