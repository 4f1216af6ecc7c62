/* config_credentials.c — the `credential_providers:` section (where a
 * user's own token for a tool comes from: an OAuth 2 authorization server,
 * or a key the user pastes) and a tool's `auth:` (which provider, which
 * scopes, and how the token is sent). The vault (src/vault/) acts on them;
 * docs/config.md documents every key. */
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_load.h"

#define CRED_MAX_SCOPES 64
#define CRED_SCOPE_MAX_LEN 256

void ld_credential_provider_free(void *e) { config_credential_provider_free(e); }

/* A list of OAuth scope tokens (RFC 6749 3.3: printable ASCII but space,
 * '"' and '\'), none repeated. */
static int ld_scope_list(ld *l, const slot *s, const char *path, char ***out, size_t *out_n)
{
    size_t n = 0;
    if (ld_sequence(l, s->val, s->line, path, &n, 1) < 0)
        return -1;
    if (n > CRED_MAX_SCOPES)
        return ld_fail(l, s->line, path, "at most %d scopes", CRED_MAX_SCOPES);
    *out = config_xcalloc(n ? n : 1, sizeof(char *));
    void *it = NULL;
    struct fy_node *item;
    char kp[200];
    while (*out_n < n && (item = fy_node_sequence_iterate(s->val, &it)) != NULL) {
        snprintf(kp, sizeof(kp), "%s[%zu]", path, *out_n);
        slot is = {.key = path, .val = item, .line = config_node_line(item, s->line), .present = 1};
        char *v = NULL;
        if (ld_nonempty(l, &is, kp, &v, NULL) < 0) {
            free(v);
            return -1;
        }
        (*out)[(*out_n)++] = v;
        if (strlen(v) > CRED_SCOPE_MAX_LEN)
            return ld_fail(l, is.line, kp, "a scope is at most %d bytes", CRED_SCOPE_MAX_LEN);
        for (const unsigned char *c = (const unsigned char *)v; *c; c++)
            if (*c <= 0x20 || *c >= 0x7f || *c == '"' || *c == '\\')
                return ld_fail(l, is.line, kp, "\"%s\" is not a scope (printable ASCII without "
                               "spaces, quotes or backslashes)", v);
        for (size_t j = 0; j + 1 < *out_n; j++)
            if (!strcmp((*out)[j], v))
                return ld_fail(l, is.line, kp, "\"%s\" is listed twice", v);
    }
    return 0;
}

enum { CP_NAME, CP_KIND, CP_ISSUER, CP_AUTHZ, CP_TOKEN, CP_REVOKE, CP_CLIENT_ID, CP_SECRET_ENV,
       CP_SCOPES, CP_RESOURCE, CP_TIMEOUT, CP_ALLOW_PRIVATE, CP__N };

static int ld_credential_provider(ld *l, struct fy_node *n, int line, const char *path,
                                  credential_provider_cfg *p, entry_lines *el)
{
    slot s[CP__N] = {
        [CP_NAME] = {.key = "name"},           [CP_KIND] = {.key = "kind"},
        [CP_ISSUER] = {.key = "issuer"},       [CP_AUTHZ] = {.key = "authorization_endpoint"},
        [CP_TOKEN] = {.key = "token_endpoint"}, [CP_REVOKE] = {.key = "revocation_endpoint"},
        [CP_CLIENT_ID] = {.key = "client_id"}, [CP_SECRET_ENV] = {.key = "client_secret_env"},
        [CP_SCOPES] = {.key = "scopes"},       [CP_RESOURCE] = {.key = "resource"},
        [CP_TIMEOUT] = {.key = "timeout_ms"},
        [CP_ALLOW_PRIVATE] = {.key = "allow_private_networks"},
    };
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, kind, …), got nothing");
    if (ld_collect(l, n, line, path, s, CP__N) < 0)
        return -1;
    char kp[160];
    size_t host_at;
    p->timeout_ms = 10000;
    if (!s[CP_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    if (ld_ident(l, &s[CP_NAME], kp, &p->name, "_-", "credential provider") < 0)
        return -1;
    el->name = s[CP_NAME].line;
    if (!s[CP_KIND].present)
        return ld_fail(l, line, path, "missing required key \"kind\" (oauth2 or api_key)");
    ld_path(kp, sizeof(kp), path, "kind");
    char *kind = NULL;
    if (ld_nonempty(l, &s[CP_KIND], kp, &kind, NULL) < 0) {
        free(kind);
        return -1;
    }
    p->kind = !strcmp(kind, "oauth2") ? CREDENTIAL_OAUTH2 : !strcmp(kind, "api_key") ? CREDENTIAL_API_KEY : 0;
    if (!p->kind) {
        ld_fail(l, s[CP_KIND].line, kp, "unknown kind \"%s\" (known: oauth2, api_key)", kind);
        free(kind);
        return -1;
    }
    free(kind);

    if (p->kind == CREDENTIAL_API_KEY) {
        /* a pasted key has no endpoints: a key given here would be a mistake */
        for (int i = CP_ISSUER; i < CP__N; i++)
            if (s[i].present)
                return ld_fail(l, s[i].line, path, "\"%s\" is for kind oauth2; an api_key provider "
                               "takes only name and kind", s[i].key);
        return 0;
    }

    struct { int idx; char **out; } urls[] = {
        {CP_ISSUER, &p->issuer}, {CP_AUTHZ, &p->authorization_endpoint},
        {CP_TOKEN, &p->token_endpoint}, {CP_REVOKE, &p->revocation_endpoint},
        {CP_RESOURCE, &p->resource},
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        if (!s[urls[i].idx].present)
            continue;
        ld_path(kp, sizeof(kp), path, s[urls[i].idx].key);
        if (ld_http_url(l, &s[urls[i].idx], kp, urls[i].out, &host_at) < 0)
            return -1;
        if (strchr(*urls[i].out, '#'))
            return ld_fail(l, s[urls[i].idx].line, kp, "must not contain a fragment (#)");
    }
    if (!p->issuer && (!p->authorization_endpoint || !p->token_endpoint))
        return ld_fail(l, line, path, "an oauth2 provider needs \"issuer\" (discovery) or both "
                       "\"authorization_endpoint\" and \"token_endpoint\"");
    if (!s[CP_CLIENT_ID].present)
        return ld_fail(l, line, path, "missing required key \"client_id\"");
    ld_path(kp, sizeof(kp), path, "client_id");
    if (ld_nonempty(l, &s[CP_CLIENT_ID], kp, &p->client_id, NULL) < 0)
        return -1;
    if (s[CP_SECRET_ENV].present) {
        ld_path(kp, sizeof(kp), path, "client_secret_env");
        if (ld_from_env(l, &s[CP_SECRET_ENV], kp, &p->client_secret) < 0)
            return -1;
    }
    if (s[CP_SCOPES].present) {
        ld_path(kp, sizeof(kp), path, "scopes");
        if (ld_scope_list(l, &s[CP_SCOPES], kp, &p->scopes, &p->n_scopes) < 0)
            return -1;
    }
    if (s[CP_TIMEOUT].present) {
        ld_path(kp, sizeof(kp), path, "timeout_ms");
        if (ld_u32(l, &s[CP_TIMEOUT], kp, 100, 120000, &p->timeout_ms) < 0)
            return -1;
    }
    if (s[CP_ALLOW_PRIVATE].present) {
        ld_path(kp, sizeof(kp), path, "allow_private_networks");
        if (l->api_body)   /* the operator's decision only (docs/egress.md) */
            return ld_fail(l, s[CP_ALLOW_PRIVATE].line, kp, "only the server's configuration may let "
                           "a credential provider be reached on a private network");
        if (ld_bool(l, &s[CP_ALLOW_PRIVATE], kp, &p->allow_private_networks) < 0)
            return -1;
    }
    return 0;
}

int ld_credential_provider_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_credential_provider(l, n, line, path, e, el);
}

enum { TA_PROVIDER, TA_SCOPES, TA_HEADER, TA_FORMAT, TA__N };

/* tools[].auth. The providers are read before the tools, so the name is
 * checked here. */
int ld_tool_auth(ld *l, const slot *a, const char *path, tool_cfg *t)
{
    slot s[TA__N] = {
        [TA_PROVIDER] = {.key = "provider"}, [TA_SCOPES] = {.key = "scopes"},
        [TA_HEADER] = {.key = "header"},     [TA_FORMAT] = {.key = "format"},
    };
    char kp[200];
    if (ld_collect(l, a->val, a->line, path, s, TA__N) < 0)
        return -1;
    if (!s[TA_PROVIDER].present)
        return ld_fail(l, a->line, path, "missing required key \"provider\"");
    ld_path(kp, sizeof(kp), path, "provider");
    if (ld_nonempty(l, &s[TA_PROVIDER], kp, &t->auth_provider, NULL) < 0)
        return -1;
    if (!config_find_credential_provider(l->cfg, t->auth_provider)) {
        char known[512] = "";
        if (l->cfg->n_credential_providers)
            ld_known_names(known, sizeof(known), (const char *const *)&l->cfg->credential_providers[0].name,
                           sizeof(credential_provider_cfg), l->cfg->n_credential_providers);
        return ld_fail(l, s[TA_PROVIDER].line, kp, "no credential provider named \"%s\" (known: %s)",
                       t->auth_provider, known[0] ? known : "none; declare it in credential_providers");
    }
    if (s[TA_SCOPES].present) {
        ld_path(kp, sizeof(kp), path, "scopes");
        if (ld_scope_list(l, &s[TA_SCOPES], kp, &t->auth_scopes, &t->n_auth_scopes) < 0)
            return -1;
    }
    if (s[TA_HEADER].present) {
        ld_path(kp, sizeof(kp), path, "header");
        if (ld_nonempty(l, &s[TA_HEADER], kp, &t->auth_header, NULL) < 0)
            return -1;
        for (const char *c = t->auth_header; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  strchr("!#$%&'*+-.^_`|~", *c)))
                return ld_fail(l, s[TA_HEADER].line, kp, "\"%s\" is not a valid header name", t->auth_header);
        static const char *const reserved[] = {"host", "content-length", "transfer-encoding",
                                               "connection", "content-type"};
        for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
            if (!strcasecmp(t->auth_header, reserved[i]))
                return ld_fail(l, s[TA_HEADER].line, kp, "this header is set by brigade and cannot carry a token");
    } else {
        t->auth_header = config_xstrdup("Authorization");
    }
    if (s[TA_FORMAT].present) {
        ld_path(kp, sizeof(kp), path, "format");
        if (ld_nonempty(l, &s[TA_FORMAT], kp, &t->auth_format, NULL) < 0)
            return -1;
        const char *at = strstr(t->auth_format, "{token}");
        if (!at || strstr(at + 1, "{token}"))
            return ld_fail(l, s[TA_FORMAT].line, kp, "must contain \"{token}\" exactly once");
        for (const char *c = t->auth_format; *c; c++)
            if ((unsigned char)*c < ' ' || *c == 0x7f)
                return ld_fail(l, s[TA_FORMAT].line, kp, "must not contain control characters");
    } else {
        t->auth_format = config_xstrdup("Bearer {token}");
    }
    /* the vault's token and a literal credential in the same header: one
     * of them is a mistake, and the literal would be shared by every user */
    for (size_t i = 0; i < t->n_headers; i++)
        if (!strcasecmp(t->header_names[i], t->auth_header))
            return ld_fail(l, a->line, path, "the tool also sets the header \"%s\" in headers; "
                           "with auth the user's own token goes there", t->auth_header);
    return 0;
}
