/* fuzz_tenant_def.c — libFuzzer target for a tenant's own tool, agent or
 * MCP server (config_tool_from_json, config_agent_from_json,
 * config_mcp_server_from_json): the JSON body a tenant admin sends to
 * POST/PATCH /v1/tools, /v1/agents and /v1/mcp-servers, read by libfyaml
 * and the config file's readers while the server runs.
 *
 * Invariants (abort() when broken; leaks are caught by LeakSanitizer):
 *   - a refused body comes with a message, and the result is left zeroed;
 *   - an accepted definition holds only what a body may: a name of
 *     [a-zA-Z0-9_.-]{1,64}, UTF-8 text, an http(s) URL, an agent's tools
 *     all ones the tenant may list, a model of the configuration; an MCP
 *     server that speaks http to an http(s) URL and says nothing of a
 *     program, of private networks or of the operator's bounds, with no
 *     line break in a header value;
 *   - nothing in it comes from the server's environment: read twice, with
 *     the variables a body could name set to two different values, the
 *     verdict, the message and every field are the same (which also makes
 *     reading deterministic). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/log.h"
#include "util/utf8.h"

/* the environment of the two reads */
static void set_env(int which)
{
    const char *v = which ? "sk-fuzz-env-one" : "sk-fuzz-env-two";
    setenv("FUZZ_KEY", v, 1);
    setenv("HOME", v, 1);
}

static void same(const char *a, const char *b)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b))) abort();
}

static const char catalogue[] =
    "tools:\n  - {name: open, url: \"http://127.0.0.1:9/open\"}\n"
    "agents:\n  - {name: assistant, model: mock-small, tools: [memory, open]}\n";

static bool knows(void *arg, const char *name)
{
    (void)arg;
    return !strcmp(name, "memory") || !strcmp(name, "clock") || !strcmp(name, "open") || name[0] == 't';
}

static void check_text(const char *s)
{
    if (!s) return;
    if (!utf8_valid(s, strlen(s))) abort();
}

static void check_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64) abort();
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", s[i])) abort();
}

static void check_tool(const tool_cfg *t)
{
    check_name(t->name);
    check_text(t->description);
    check_text(t->url);
    check_text(t->parameters_json);
    if (strncmp(t->url, "http://", 7) && strncmp(t->url, "https://", 8)) abort();
    if (t->tenants_enable) abort();
    for (size_t i = 0; i < t->n_headers; i++) {
        check_text(t->header_names[i]);
        check_text(t->header_values[i]);
    }
}

static void same_tool(const tool_cfg *a, const tool_cfg *b)
{
    same(a->name, b->name);
    same(a->description, b->description);
    same(a->url, b->url);
    same(a->method, b->method);
    same(a->parameters_json, b->parameters_json);
    if (a->n_headers != b->n_headers || a->effects != b->effects || a->timeout_ms != b->timeout_ms) abort();
    for (size_t i = 0; i < a->n_headers; i++) {
        same(a->header_names[i], b->header_names[i]);
        same(a->header_values[i], b->header_values[i]);
    }
}

static void same_agent(const agent_cfg *a, const agent_cfg *b)
{
    same(a->name, b->name);
    same(a->description, b->description);
    same(a->system_prompt, b->system_prompt);
    same(a->model_name, b->model_name);
    if (a->n_tools != b->n_tools || a->n_tiers != b->n_tiers || a->max_steps != b->max_steps) abort();
    for (size_t i = 0; i < a->n_tools; i++) same(a->tools[i], b->tools[i]);
}

static void check_agent(const brigade_config *cfg, const agent_cfg *a)
{
    check_name(a->name);
    check_text(a->description);
    check_text(a->system_prompt);
    if (!a->model || config_find_model(cfg, a->model_name) != a->model) abort();
    if (a->tenants_enable || a->max_steps == 0) abort();
    for (size_t i = 0; i < a->n_tools; i++)
        if (!knows(NULL, a->tools[i])) abort();
}

static void check_mcp(const mcp_server_cfg *m, const char *json, size_t len)
{
    size_t n = m->name ? strlen(m->name) : 0;
    if (n == 0 || n > 32) abort();
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", m->name[i])) abort();
    if (m->transport != MCP_TRANSPORT_HTTP || m->command || m->n_args || m->n_env || m->cwd) abort();
    if (m->allow_private_networks || m->per_user || m->tenants_enable || m->max_instances != 32) abort();
    if (m->startup_timeout_ms > MCP_TENANT_STARTUP_MAX_MS) abort();
    if (!m->url || (strncmp(m->url, "http://", 7) && strncmp(m->url, "https://", 8))) abort();
    check_text(m->url);
    for (size_t i = 0; i < m->n_headers; i++) {
        check_text(m->header_names[i]);
        check_text(m->header_values[i]);
        if (strpbrk(m->header_values[i], "\r\n")) abort();
    }
    if (!m->tenant_def || strlen(m->tenant_def) != len || memcmp(m->tenant_def, json, len)) abort();
}

static void same_mcp(const mcp_server_cfg *a, const mcp_server_cfg *b)
{
    same(a->name, b->name);
    same(a->url, b->url);
    if (a->n_headers != b->n_headers || a->n_tools != b->n_tools || a->call_timeout_ms != b->call_timeout_ms) abort();
    for (size_t i = 0; i < a->n_headers; i++) {
        same(a->header_names[i], b->header_names[i]);
        same(a->header_values[i], b->header_values[i]);
    }
    for (size_t i = 0; i < a->n_tools; i++) same(a->tools[i], b->tools[i]);
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static brigade_config cfg;
    static int ready;
    if (!ready) {
        set_env(0);
        log_set_level(LOG_ERROR);
        char err[512];
        if (config_load_string("c.yaml", catalogue, strlen(catalogue), &cfg, err, sizeof err) != 0) abort();
        ready = 1;
    }
    if (size > 128 * 1024) return 0;
    const char *json = (const char *)data;
    char e1[512] = "", e2[512] = "";
    tool_cfg t1, t2;
    set_env(0);
    int r1 = config_tool_from_json(&cfg, json, size, &t1, e1, sizeof e1);
    set_env(1);
    int r2 = config_tool_from_json(&cfg, json, size, &t2, e2, sizeof e2);
    if (r1 != r2 || strcmp(e1, e2)) abort();
    if (r1 == 0) {
        check_tool(&t1);
        same_tool(&t1, &t2);
        config_tool_free(&t1);
        config_tool_free(&t2);
    } else if (!e1[0] || !all_zero(&t1, sizeof t1)) {
        abort();
    }
    agent_cfg a1, a2;
    set_env(0);
    r1 = config_agent_from_json(&cfg, json, size, knows, NULL, &a1, e1, sizeof e1);
    set_env(1);
    r2 = config_agent_from_json(&cfg, json, size, knows, NULL, &a2, e2, sizeof e2);
    if (r1 != r2 || strcmp(e1, e2)) abort();
    if (r1 == 0) {
        check_agent(&cfg, &a1);
        same_agent(&a1, &a2);
        config_agent_free(&a1);
        config_agent_free(&a2);
    } else if (!e1[0] || !all_zero(&a1, sizeof a1)) {
        abort();
    }
    mcp_server_cfg m1, m2;
    set_env(0);
    r1 = config_mcp_server_from_json(&cfg, json, size, &m1, e1, sizeof e1);
    set_env(1);
    r2 = config_mcp_server_from_json(&cfg, json, size, &m2, e2, sizeof e2);
    if (r1 != r2 || strcmp(e1, e2)) abort();
    if (r1 == 0) {
        check_mcp(&m1, json, size);
        same_mcp(&m1, &m2);
        config_mcp_server_free(&m1);
        config_mcp_server_free(&m2);
    } else if (!e1[0] || !all_zero(&m1, sizeof m1)) {
        abort();
    }
    return 0;
}
