/* config_mcp.c — the `mcp_servers:` section: MCP servers whose tools
 * agents use as SERVER__TOOL. A stdio server: the command, its arguments,
 * the whole environment it gets (nothing of brigade's own environment is
 * passed on but PATH, so a server never sees brigade's secrets), its
 * working directory, and its sandbox (on unless `sandbox: false`: network,
 * read-only paths, limits); an http server: its URL and headers. Then who gets
 * an instance (per_user), which of its tools are offered, and its time
 * and instance bounds (docs/mcp.md). */
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_load.h"

void config_mcp_server_free(mcp_server_cfg *m)
{
    if (!m) return;
    free(m->name);
    free(m->command);
    for (size_t i = 0; i < m->n_args; i++) free(m->args[i]);
    free(m->args);
    for (size_t i = 0; i < m->n_env; i++) {
        free(m->env_names[i]);
        if (m->env_values[i]) explicit_bzero(m->env_values[i], strlen(m->env_values[i]));
        free(m->env_values[i]);
    }
    free(m->env_names);
    free(m->env_values);
    free(m->cwd);
    free(m->url);
    for (size_t i = 0; i < m->n_headers; i++) {
        free(m->header_names[i]);
        if (m->header_values[i]) explicit_bzero(m->header_values[i], strlen(m->header_values[i]));
        free(m->header_values[i]);
    }
    free(m->header_names);
    free(m->header_values);
    for (size_t i = 0; i < m->n_tools; i++) free(m->tools[i]);
    free(m->tools);
    free(m->oauth_client_id);
    if (m->oauth_client_secret) explicit_bzero(m->oauth_client_secret, strlen(m->oauth_client_secret));
    free(m->oauth_client_secret);
    for (size_t i = 0; i < m->n_oauth_scopes; i++) free(m->oauth_scopes[i]);
    free(m->oauth_scopes);
    for (size_t i = 0; i < m->n_sandbox_read_only; i++) free(m->sandbox_read_only[i]);
    free(m->sandbox_read_only);
    free(m->tenant_def);
    if (m->approval) config_tool_free(m->approval);
    free(m->approval);
    memset(m, 0, sizeof *m);
}

const mcp_server_cfg *config_find_mcp_server(const brigade_config *cfg, const char *name)
{
    if (!cfg || !name) return NULL;
    for (size_t i = 0; i < cfg->n_mcp_servers; i++)
        if (!strcmp(cfg->mcp_servers[i].name, name)) return &cfg->mcp_servers[i];
    return NULL;
}

const mcp_server_cfg *config_mcp_tool_server(const brigade_config *cfg, const char *tool,
                                             const char **tool_name)
{
    const char *sep = tool ? strstr(tool, CONFIG_MCP_SEP) : NULL;
    if (!sep || sep == tool || !sep[2]) return NULL;
    char server[40];
    size_t n = (size_t)(sep - tool);
    if (n >= sizeof server) return NULL;
    memcpy(server, tool, n);
    server[n] = '\0';
    const mcp_server_cfg *m = config_find_mcp_server(cfg, server);
    if (m && tool_name) *tool_name = sep + 2;
    return m;
}

/* A list of plain strings (args, tools). */
static int ld_strings(ld *l, const slot *s, const char *path, size_t max_each, char ***out,
                      size_t *out_n)
{
    size_t n = 0;
    if (ld_sequence(l, s->val, s->line, path, &n, 1) < 0) return -1;
    if (n > 256) return ld_fail(l, s->line, path, "at most 256 entries");
    *out = config_xcalloc(n ? n : 1, sizeof(char *));
    void *it = NULL;
    struct fy_node *item;
    char kp[200];
    while (*out_n < n && (item = fy_node_sequence_iterate(s->val, &it)) != NULL) {
        snprintf(kp, sizeof kp, "%s[%zu]", path, *out_n);
        slot is = {.key = path, .val = item, .line = config_node_line(item, s->line), .present = 1};
        char *v = NULL;
        if (ld_string(l, &is, kp, &v, NULL) < 0) {
            free(v);
            return -1;
        }
        (*out)[(*out_n)++] = v;
        if (strlen(v) > max_each) return ld_fail(l, is.line, kp, "longer than %zu bytes", max_each);
    }
    return 0;
}

/* NAME: value mappings (env, headers). Values go through ld_string, so
 * ${VAR} takes a value from brigade's environment — explicitly, by name. */
static int ld_pairs(ld *l, const slot *s, const char *path, bool header, char ***names,
                    char ***values, size_t *n_out)
{
    char wbuf[64], kp[300];
    if (config_node_is_null(s->val)) return 0;
    if (fy_node_get_type(s->val) != FYNT_MAPPING)
        return ld_fail(l, s->line, path, "expected a mapping (NAME: value), got %s",
                       config_node_what(s->val, wbuf, sizeof wbuf));
    int cnt = fy_node_mapping_item_count(s->val);
    if (cnt <= 0) return 0;
    if (cnt > 128) return ld_fail(l, s->line, path, "at most 128 entries");
    *names = config_xcalloc((size_t)cnt, sizeof(char *));
    *values = config_xcalloc((size_t)cnt, sizeof(char *));
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(s->val, &it)) != NULL && *n_out < (size_t)cnt) {
        struct fy_node *k = fy_node_pair_key(p);
        int kline = config_node_line(k, s->line);
        size_t klen = 0;
        const char *ks = (k && fy_node_get_type(k) == FYNT_SCALAR) ? fy_node_get_scalar(k, &klen) : NULL;
        bool ok = ks && klen > 0 && klen <= 128;
        for (size_t i = 0; ok && i < klen; i++) {
            char c = ks[i];
            ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
                 (i > 0 && c >= '0' && c <= '9') || (header && c == '-');
        }
        if (!ok)
            return ld_fail(l, kline, path, "\"%.*s\" is not a valid %s name", ks ? (int)(klen > 64 ? 64 : klen) : 0,
                           ks ? ks : "", header ? "header" : "environment variable");
        char *name = config_xstrndup(ks, klen);
        snprintf(kp, sizeof kp, "%s.%s", path, name);
        for (size_t i = 0; i < *n_out; i++)
            if (header ? !strcasecmp(name, (*names)[i]) : !strcmp(name, (*names)[i])) {
                free(name);
                return ld_fail(l, kline, kp, "given twice");
            }
        /* Framing, routing and the MCP session's own headers are the
         * transport's (src/mcp/http.c): a configured one would corrupt or
         * hijack the session. */
        static const char *const reserved[] = {"host", "content-length", "transfer-encoding",
                                               "connection", "content-type", "accept", "expect",
                                               "mcp-session-id", "mcp-protocol-version", "last-event-id"};
        for (size_t r = 0; header && r < sizeof reserved / sizeof reserved[0]; r++)
            if (!strcasecmp(name, reserved[r])) {
                free(name);
                return ld_fail(l, kline, kp, "this header is set by brigade and cannot be configured");
            }
        if (!header && !strcmp(name, "PATH")) {
            free(name);
            return ld_fail(l, kline, kp, "PATH is brigade's own and is always passed on");
        }
        size_t i = (*n_out)++;
        (*names)[i] = name;
        slot vs = {.key = name, .val = fy_node_pair_value(p), .line = kline, .present = 1};
        if (ld_string(l, &vs, kp, &(*values)[i], NULL) < 0) return -1;
        if (strchr((*values)[i], '\n') || strchr((*values)[i], '\r'))
            return ld_fail(l, kline, kp, "a value must not contain a line break");
    }
    return 0;
}

enum { MC_NAME, MC_TRANSPORT, MC_COMMAND, MC_ARGS, MC_ENV, MC_CWD, MC_URL, MC_HEADERS, MC_PER_USER,
       MC_TOOLS, MC_STARTUP, MC_CALL, MC_IDLE, MC_MAX, MC_PING, MC_PRIVATE, MC_TENANTS, MC_AUTH,
       MC_APPROVAL, MC_APPROVAL_TIMEOUT, MC_SANDBOX, MC__N };

/* A read-only path of the sandbox: what sandbox_read_only_refusal (in
 * src/sandbox, which config may not include) checks again at start. */
static const char *ro_refusal(const char *p)
{
    if (p[0] != '/') return "must be an absolute path";
    if (!strcmp(p, "/")) return "must not be / (the whole machine)";
    if (strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//") ||
        (strlen(p) >= 3 && !strcmp(p + strlen(p) - 3, "/..")) ||
        (strlen(p) >= 2 && !strcmp(p + strlen(p) - 2, "/.")) || p[strlen(p) - 1] == '/')
        return "must be a plain path (no \".\", \"..\", \"//\" or trailing /)";
    static const char *const own[] = {"/proc", "/dev", "/tmp", "/.brigade"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        size_t l = strlen(own[i]);
        if (!strncmp(p, own[i], l) && (p[l] == '\0' || p[l] == '/'))
            return "is where the sandbox makes its own directories (/proc, /dev, /tmp, /.brigade)";
    }
    return NULL;
}

enum { MS_NETWORK, MS_READ_ONLY, MS_LIMITS, MS__N };

/* `sandbox:` of a stdio server: false (the operator runs it unsandboxed,
 * with a warning at start), true (the defaults), or a mapping. */
static int ld_mcp_sandbox(ld *l, const slot *s, const char *path, mcp_server_cfg *m)
{
    char kp[200];
    if (s->val && fy_node_get_type(s->val) == FYNT_SCALAR)
        return ld_bool(l, s, path, &m->sandbox);
    slot ss[MS__N] = {
        [MS_NETWORK] = {.key = "network"}, [MS_READ_ONLY] = {.key = "read_only"},
        [MS_LIMITS] = {.key = "limits"},
    };
    if (config_node_is_null(s->val)) return 0;
    if (ld_collect(l, s->val, s->line, path, ss, MS__N) < 0) return -1;
    if (ss[MS_NETWORK].present) {
        ld_path(kp, sizeof kp, path, "network");
        if (ld_bool(l, &ss[MS_NETWORK], kp, &m->sandbox_network) < 0) return -1;
    }
    if (ss[MS_READ_ONLY].present) {
        ld_path(kp, sizeof kp, path, "read_only");
        if (ld_strings(l, &ss[MS_READ_ONLY], kp, 1024, &m->sandbox_read_only, &m->n_sandbox_read_only) < 0)
            return -1;
        if (m->n_sandbox_read_only > 32) return ld_fail(l, ss[MS_READ_ONLY].line, kp, "at most 32 paths");
        for (size_t i = 0; i < m->n_sandbox_read_only; i++) {
            const char *why = ro_refusal(m->sandbox_read_only[i]);
            if (why) return ld_fail(l, ss[MS_READ_ONLY].line, kp, "\"%.200s\" %s", m->sandbox_read_only[i], why);
        }
    }
    if (ss[MS_LIMITS].present) {
        ld_path(kp, sizeof kp, path, "limits");
        /* a server lives for hours: its CPU time adds up */
        if (ld_sandbox_limits(l, &ss[MS_LIMITS], kp, 10000000, &m->sandbox_limits) < 0) return -1;
    }
    return 0;
}


/* What a tenant's own server (a request body) may not say: whatever runs a
 * program, reaches the server's private networks or sizes the operator's
 * resources is the operator's configuration alone. */
static int ld_mcp_tenant_refusals(ld *l, const slot *s, const char *path)
{
    static const struct { int k; const char *why; } refused[] = {
        {MC_COMMAND, "a tenant never makes brigade run a program: stdio servers exist only in the "
                     "server's configuration (enable one with {\"name\": …, \"catalogue\": true})"},
        {MC_ARGS, "a tenant never makes brigade run a program: stdio servers exist only in the "
                  "server's configuration"},
        {MC_ENV, "a tenant never makes brigade run a program: stdio servers exist only in the "
                 "server's configuration"},
        {MC_CWD, "a tenant never makes brigade run a program: stdio servers exist only in the "
                 "server's configuration"},
        {MC_PER_USER, "a tenant's server always keeps one session per user"},
        {MC_PRIVATE, "only the server's configuration may let an MCP server reach private networks; "
                     "a tenant's server reaches public addresses (and the operator's "
                     "egress.allow_networks) only"},
        {MC_SANDBOX, "the sandbox is for stdio servers, which exist only in the server's configuration"},
        {MC_MAX, "the bound of instances is the operator's (a tenant's server gets 32)"},
    };
    char kp[200];
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (s[refused[i].k].present) {
            ld_path(kp, sizeof kp, path, s[refused[i].k].key);
            return ld_fail(l, s[refused[i].k].line, kp, "%s", refused[i].why);
        }
    return 0;
}

enum { MA_KIND, MA_CLIENT_ID, MA_SECRET_ENV, MA_SCOPES, MA_TIMEOUT, MA__N };

/* mcp_servers[].auth: {kind: oauth, client_id, client_secret_env, scopes,
 * timeout_s}. A tenant's server may say kind, scopes and timeout_s only:
 * a client secret comes from brigade's environment, which is the
 * operator's. */
static int ld_mcp_auth(ld *l, const slot *a, const char *path, mcp_server_cfg *m)
{
    slot s[MA__N] = {
        [MA_KIND] = {.key = "kind"}, [MA_CLIENT_ID] = {.key = "client_id"},
        [MA_SECRET_ENV] = {.key = "client_secret_env"}, [MA_SCOPES] = {.key = "scopes"},
        [MA_TIMEOUT] = {.key = "timeout_s"},
    };
    char kp[200];
    if (ld_collect(l, a->val, a->line, path, s, MA__N) < 0) return -1;
    if (!s[MA_KIND].present) return ld_fail(l, a->line, path, "missing required key \"kind\" (oauth)");
    char *kind = NULL;
    ld_path(kp, sizeof kp, path, "kind");
    if (ld_nonempty(l, &s[MA_KIND], kp, &kind, NULL) < 0) return -1;
    bool ok = !strcmp(kind, "oauth");
    if (!ok) ld_fail(l, s[MA_KIND].line, kp, "unknown kind \"%s\" (known: oauth)", kind);
    free(kind);
    if (!ok) return -1;
    if (m->transport != MCP_TRANSPORT_HTTP)
        return ld_fail(l, a->line, path, "MCP authorization is for transport: http");
    if (l->api_body && (s[MA_CLIENT_ID].present || s[MA_SECRET_ENV].present)) {
        int k = s[MA_CLIENT_ID].present ? MA_CLIENT_ID : MA_SECRET_ENV;
        ld_path(kp, sizeof kp, path, s[k].key);
        return ld_fail(l, s[k].line, kp, "a pre-registered client is the server's configuration's; a "
                       "tenant's server registers brigade dynamically");
    }
    m->oauth = true;
    m->oauth_timeout_s = 600;
    if (s[MA_CLIENT_ID].present) {
        ld_path(kp, sizeof kp, path, "client_id");
        if (ld_nonempty(l, &s[MA_CLIENT_ID], kp, &m->oauth_client_id, NULL) < 0) return -1;
    }
    if (s[MA_SECRET_ENV].present) {
        ld_path(kp, sizeof kp, path, "client_secret_env");
        if (!s[MA_CLIENT_ID].present)
            return ld_fail(l, s[MA_SECRET_ENV].line, kp, "a client secret needs its client_id");
        if (ld_from_env(l, &s[MA_SECRET_ENV], kp, &m->oauth_client_secret) < 0) return -1;
    }
    if (s[MA_SCOPES].present) {
        ld_path(kp, sizeof kp, path, "scopes");
        if (ld_strings(l, &s[MA_SCOPES], kp, 32, &m->oauth_scopes, &m->n_oauth_scopes) < 0) return -1;
        for (size_t i = 0; i < m->n_oauth_scopes; i++)
            for (const unsigned char *c = (const unsigned char *)m->oauth_scopes[i]; *c; c++)
                if (*c <= 0x20 || *c == '"' || *c == '\\' || *c >= 0x7f)
                    return ld_fail(l, s[MA_SCOPES].line, kp, "a scope is printable ASCII without spaces, "
                                   "quotes or backslashes (RFC 6749 3.3)");
    }
    if (s[MA_TIMEOUT].present) {
        ld_path(kp, sizeof kp, path, "timeout_s");
        if (ld_u32(l, &s[MA_TIMEOUT], kp, 1, 86400, &m->oauth_timeout_s) < 0) return -1;
    }
    return 0;
}

static int ld_mcp_server(ld *l, struct fy_node *n, int line, const char *path, mcp_server_cfg *m,
                         entry_lines *el)
{
    slot s[MC__N] = {
        [MC_NAME] = {.key = "name"},       [MC_TRANSPORT] = {.key = "transport"},
        [MC_COMMAND] = {.key = "command"}, [MC_ARGS] = {.key = "args"},
        [MC_ENV] = {.key = "env"},         [MC_CWD] = {.key = "cwd"},
        [MC_URL] = {.key = "url"},         [MC_HEADERS] = {.key = "headers"},
        [MC_PER_USER] = {.key = "per_user"}, [MC_TOOLS] = {.key = "tools"},
        [MC_STARTUP] = {.key = "startup_timeout_ms"}, [MC_CALL] = {.key = "call_timeout_ms"},
        [MC_IDLE] = {.key = "idle_timeout_s"}, [MC_MAX] = {.key = "max_instances"},
        [MC_PING] = {.key = "ping_interval_s"}, [MC_PRIVATE] = {.key = "allow_private_networks"},
        [MC_SANDBOX] = {.key = "sandbox"},
        [MC_TENANTS] = {.key = "tenants"}, [MC_AUTH] = {.key = "auth"}, [MC_APPROVAL] = {.key = "approval"},
        [MC_APPROVAL_TIMEOUT] = {.key = "approval_timeout_s"},
    };
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, transport, …), got nothing");
    if (ld_collect(l, n, line, path, s, MC__N) < 0) return -1;
    if (l->api_body && ld_mcp_tenant_refusals(l, s, path) < 0) return -1;
    char kp[200];
    m->startup_timeout_ms = 30000;
    m->call_timeout_ms = 60000;
    m->idle_timeout_s = 600;
    m->max_instances = 32;
    m->ping_interval_s = 60;
    if (!s[MC_NAME].present) return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof kp, path, "name");
    if (ld_ident(l, &s[MC_NAME], kp, &m->name, "-", "MCP server") < 0) return -1;
    if (strlen(m->name) > 32) return ld_fail(l, s[MC_NAME].line, kp, "at most 32 characters");
    el->name = s[MC_NAME].line;

    /* a tenant's server speaks HTTP; so does its default */
    const char *transport = l->api_body ? "http" : "stdio";
    char *tr = NULL;
    if (s[MC_TRANSPORT].present) {
        ld_path(kp, sizeof kp, path, "transport");
        if (ld_nonempty(l, &s[MC_TRANSPORT], kp, &tr, NULL) < 0) {
            free(tr);
            return -1;
        }
        transport = tr;
    }
    if (!strcmp(transport, "stdio")) m->transport = MCP_TRANSPORT_STDIO;
    else if (!strcmp(transport, "http")) m->transport = MCP_TRANSPORT_HTTP;
    else {
        ld_fail(l, s[MC_TRANSPORT].line, kp, "unknown transport \"%s\" (known: stdio, http)", transport);
        free(tr);
        return -1;
    }
    free(tr);
    if (l->api_body && m->transport != MCP_TRANSPORT_HTTP)
        return ld_fail(l, s[MC_TRANSPORT].line, kp, "a tenant's MCP server has transport: http; stdio "
                       "servers (programs) exist only in the server's configuration, and a tenant "
                       "enables one with {\"name\": …, \"catalogue\": true}");
    bool stdio = m->transport == MCP_TRANSPORT_STDIO;
    static const int stdio_only[] = {MC_COMMAND, MC_ARGS, MC_ENV, MC_CWD, MC_SANDBOX};
    static const int http_only[] = {MC_URL, MC_HEADERS};
    for (size_t i = 0; i < 5; i++)
        if (!stdio && s[stdio_only[i]].present)
            return ld_fail(l, s[stdio_only[i]].line, path, "\"%s\" is for transport: stdio",
                           s[stdio_only[i]].key);
    for (size_t i = 0; i < 2; i++)
        if (stdio && s[http_only[i]].present)
            return ld_fail(l, s[http_only[i]].line, path, "\"%s\" is for transport: http",
                           s[http_only[i]].key);
    if (stdio) {
        if (!s[MC_COMMAND].present) return ld_fail(l, line, path, "missing required key \"command\"");
        ld_path(kp, sizeof kp, path, "command");
        if (ld_nonempty(l, &s[MC_COMMAND], kp, &m->command, NULL) < 0) return -1;
        if (s[MC_ARGS].present) {
            ld_path(kp, sizeof kp, path, "args");
            if (ld_strings(l, &s[MC_ARGS], kp, 4096, &m->args, &m->n_args) < 0) return -1;
        }
        if (s[MC_ENV].present) {
            ld_path(kp, sizeof kp, path, "env");
            if (ld_pairs(l, &s[MC_ENV], kp, false, &m->env_names, &m->env_values, &m->n_env) < 0)
                return -1;
        }
        m->sandbox = true;
        if (s[MC_SANDBOX].present) {
            ld_path(kp, sizeof kp, path, "sandbox");
            if (ld_mcp_sandbox(l, &s[MC_SANDBOX], kp, m) < 0) return -1;
        }
        if (s[MC_CWD].present) {
            ld_path(kp, sizeof kp, path, "cwd");
            if (ld_nonempty(l, &s[MC_CWD], kp, &m->cwd, NULL) < 0) return -1;
            if (m->cwd[0] != '/') return ld_fail(l, s[MC_CWD].line, kp, "must be an absolute path");
            if (m->sandbox)
                return ld_fail(l, s[MC_CWD].line, kp, "a sandboxed server works in its own directory "
                               "(/work inside); cwd is only for a server with sandbox: false");
        }
    } else {
        if (!s[MC_URL].present) return ld_fail(l, line, path, "missing required key \"url\"");
        ld_path(kp, sizeof kp, path, "url");
        size_t host_at;
        if (ld_http_url(l, &s[MC_URL], kp, &m->url, &host_at) < 0) return -1;
        if (s[MC_HEADERS].present) {
            ld_path(kp, sizeof kp, path, "headers");
            if (ld_pairs(l, &s[MC_HEADERS], kp, true, &m->header_names, &m->header_values,
                         &m->n_headers) < 0)
                return -1;
        }
    }
    m->per_user = stdio;
    if (s[MC_AUTH].present) {
        ld_path(kp, sizeof kp, path, "auth");
        if (ld_mcp_auth(l, &s[MC_AUTH], kp, m) < 0) return -1;
    }
    if (s[MC_PRIVATE].present) {
        /* egress (docs/egress.md): an http server on a private network is
         * the operator's choice, made here by name */
        ld_path(kp, sizeof kp, path, "allow_private_networks");
        if (ld_bool(l, &s[MC_PRIVATE], kp, &m->allow_private_networks) < 0) return -1;
    }
    if (s[MC_APPROVAL].present || s[MC_APPROVAL_TIMEOUT].present) {
        /* the tools' approval policy: a tool's reader, on a tool_cfg of its own */
        m->approval = config_xcalloc(1, sizeof *m->approval);
        m->approval->approval_timeout_s = 3600;
        if (s[MC_APPROVAL].present) {
            ld_path(kp, sizeof kp, path, "approval");
            if (ld_tool_approval(l, &s[MC_APPROVAL], kp, m->approval) < 0) return -1;
        }
        if (s[MC_APPROVAL_TIMEOUT].present) {
            ld_path(kp, sizeof kp, path, "approval_timeout_s");
            if (ld_u32(l, &s[MC_APPROVAL_TIMEOUT], kp, 1, 30 * 86400, &m->approval->approval_timeout_s) < 0)
                return -1;
        }
    }
    if (s[MC_TENANTS].present) {
        ld_path(kp, sizeof kp, path, "tenants");
        if (ld_tenants(l, &s[MC_TENANTS], kp, &m->tenants_enable) < 0) return -1;
    }
    if (s[MC_PER_USER].present) {
        ld_path(kp, sizeof kp, path, "per_user");
        if (ld_bool(l, &s[MC_PER_USER], kp, &m->per_user) < 0) return -1;
    }
    if (s[MC_TOOLS].present) {
        ld_path(kp, sizeof kp, path, "tools");
        if (ld_strings(l, &s[MC_TOOLS], kp, 64, &m->tools, &m->n_tools) < 0) return -1;
    }
    /* A run's start waits for the listing on a pool thread shared by every
     * tenant: a tenant's server (which may never answer) holds one for 10 s
     * at most. */
    int64_t startup_max = l->api_body ? MCP_TENANT_STARTUP_MAX_MS : 600000;
    if (l->api_body) m->startup_timeout_ms = MCP_TENANT_STARTUP_MAX_MS;
    struct { int k; const char *key; int64_t min, max; uint32_t *out; } nums[] = {
        {MC_STARTUP, "startup_timeout_ms", 100, startup_max, &m->startup_timeout_ms},
        {MC_CALL, "call_timeout_ms", 100, 3600000, &m->call_timeout_ms},
        {MC_IDLE, "idle_timeout_s", 1, 86400, &m->idle_timeout_s},
        {MC_MAX, "max_instances", 1, 4096, &m->max_instances},
        {MC_PING, "ping_interval_s", 0, 86400, &m->ping_interval_s},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (!s[nums[i].k].present) continue;
        ld_path(kp, sizeof kp, path, nums[i].key);
        if (ld_u32(l, &s[nums[i].k], kp, nums[i].min, nums[i].max, nums[i].out) < 0) return -1;
    }
    return 0;
}

int ld_mcp_server_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_mcp_server(l, n, line, path, e, el);
}

void ld_mcp_server_free(void *e) { config_mcp_server_free(e); }
