/* test_tool_tenant.c — tools and agents per tenant, below the API: the
 * catalogue keys of the config file (effects, tenants, identity header
 * templates), a tenant's JSON definition read by the config readers
 * (config_tool_from_json, config_agent_from_json: the file's rules, no
 * environment, no `tenants:`), the store's rows scoped to one tenant, and
 * what a run resolves for a tenant (tools_run_set_resolve): its own first,
 * the catalogue's it has, never another tenant's; the same for MCP servers
 * (config_mcp_server_from_json: http only, nothing of a program or of
 * private networks; SERVER__TOOL known only for the servers it has). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/scope_mint.h"
#include "test_util.h"
#include "tools/tool_tenant.h"

static const char catalogue_yaml[] =
    "tools:\n"
    "  - {name: open, url: \"http://127.0.0.1:9/open\", effects: read}\n"
    "  - {name: gated, url: \"http://127.0.0.1:9/gated\", tenants: enable,\n"
    "     headers: {X-User: \"${user.id}\", X-Both: \"${TEST_TT_VAR}/${tenant.id}\"}}\n"
    "agents:\n"
    "  - {name: assistant, model: mock-small, tools: [memory, open, gated]}\n"
    "  - {name: private, model: mock-small, tenants: enable}\n"
    "mcp_servers:\n"
    "  - {name: cat-open, command: /bin/true}\n"
    "  - {name: cat-gated, command: /bin/true, tenants: enable}\n";

static char err[1024];

static void load_catalogue(brigade_config *cfg)
{
    setenv("TEST_TT_VAR", "from-env", 1);
    int rc = config_load_string("t.yaml", catalogue_yaml, strlen(catalogue_yaml), cfg, err, sizeof err);
    if (rc != 0) print_error("%s\n", err);
    assert_int_equal(rc, 0);
}

/* ---- the config file ---- */

static void test_catalogue_keys(void **state)
{
    (void)state;
    brigade_config c;
    load_catalogue(&c);
    const tool_cfg *open = config_find_tool(&c, "open"), *gated = config_find_tool(&c, "gated");
    assert_int_equal(open->effects, TOOL_EFFECTS_READ);
    assert_false(open->tenants_enable);
    assert_int_equal(gated->effects, TOOL_EFFECTS_EXTERNAL);   /* the default of an HTTP tool */
    assert_true(gated->tenants_enable);
    /* identity templates stay for the call; ${VAR} is the file's */
    assert_string_equal(gated->header_values[0], "${user.id}");
    assert_string_equal(gated->header_values[1], "from-env/${tenant.id}");
    assert_true(config_find_agent(&c, "private")->tenants_enable);
    assert_false(config_find_agent(&c, "assistant")->tenants_enable);
    config_free(&c);

    const char *bad = "tools:\n  - {name: x, url: \"http://h/x\", effects: maybe}\n";
    assert_int_equal(config_load_string("t.yaml", bad, strlen(bad), &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "t.yaml:2: tools[0].effects: expected read, write or external"));
    bad = "tools:\n  - {name: x, url: \"http://h/x\", tenants: some}\n";
    assert_int_equal(config_load_string("t.yaml", bad, strlen(bad), &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "tools[0].tenants: expected all"));
}

/* ---- a tenant's JSON definition ---- */

static int tool_json(const brigade_config *c, const char *json, tool_cfg *t)
{
    err[0] = '\0';
    return config_tool_from_json(c, json, strlen(json), t, err, sizeof err);
}

static void expect_tool_error(const brigade_config *c, const char *json, const char *want)
{
    tool_cfg t;
    int rc = tool_json(c, json, &t);
    if (rc == 0 || !strstr(err, want)) {
        print_error("want [%s]\n got rc=%d err=[%s]\n", want, rc, err);
        if (rc == 0) config_tool_free(&t);
        fail();
    }
}

static void test_tool_from_json(void **state)
{
    (void)state;
    brigade_config c;
    load_catalogue(&c);
    tool_cfg t;
    assert_int_equal(tool_json(&c, "{\"name\":\"w\",\"url\":\"http://127.0.0.1:9/w/{city}\",\"method\":\"get\","
                                   "\"description\":\"${TEST_TT_VAR}\",\"headers\":{\"X-U\":\"u=${user.id}\"},"
                                   "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}",
                               &t), 0);
    assert_string_equal(t.method, "GET");
    assert_string_equal(t.description, "${TEST_TT_VAR}");   /* never the environment */
    assert_string_equal(t.header_values[0], "u=${user.id}");
    assert_int_equal(t.effects, TOOL_EFFECTS_EXTERNAL);
    assert_true(tools_check_declared(&t, err, sizeof err));
    config_tool_free(&t);

    expect_tool_error(&c, "{\"name\":\"w\",\"url\":\"http://h/\",\"url\":\"http://i/\"}", "not valid JSON: duplicate key");
    expect_tool_error(&c, "{\"name\":\"w\",\"url\":\"http://h/\",\"tenants\":\"all\"}", "tenants: only the server's");
    expect_tool_error(&c, "{\"name\":\"w\",\"url\":\"http://h/\",\"headers\":{\"X\":\"${HOME}\"}}",
                      "headers.X: only ${user.id} and ${tenant.id}");
    expect_tool_error(&c, "{\"name\":\"w\",\"urll\":\"http://h/\"}", "unknown key (did you mean \"url\"?)");
    expect_tool_error(&c, "[1]", "expected a JSON object");
    expect_tool_error(&c, "{\"name\":\"w\",\"url\":\"http://{h}/\"}", "url: placeholders are only allowed after the host");
    expect_tool_error(&c, "{\"name\":\"w\",\"url\":\"http://h/\",\"timeout_ms\":\"5\"}", "timeout_ms: expected an integer");
    /* no file and line in a body's message: the key path leads */
    assert_int_equal(strncmp(err, "timeout_ms: ", 12), 0);

    /* the registry's rules apply too (what the config reader leaves to it) */
    assert_int_equal(tool_json(&c, "{\"name\":\"w\",\"url\":\"http://h/a/%2e%2e/{p}\","
                                   "\"parameters\":{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\"}}}}",
                               &t), 0);
    assert_false(tools_check_declared(&t, err, sizeof err));
    assert_non_null(strstr(err, "url: url path has a \".\" or \"..\" segment"));
    config_tool_free(&t);
    config_free(&c);
}

static bool knows_only_w(void *arg, const char *name)
{
    (void)arg;
    return !strcmp(name, "w") || !strcmp(name, "memory");
}

/* Egress: allow_private_networks is the operator's key only; a tenant
 * may set max_redirects within 0-10. */
static void test_tool_from_json_egress(void **state)
{
    (void)state;
    brigade_config c;
    load_catalogue(&c);
    expect_tool_error(&c, "{\"name\":\"w\",\"url\":\"http://127.0.0.1:9/w\",\"allow_private_networks\":true}",
                      "allow_private_networks: only the server's configuration may let a tool reach private networks");
    expect_tool_error(&c, "{\"name\":\"w\",\"url\":\"http://127.0.0.1:9/w\",\"allow_private_networks\":false}",
                      "allow_private_networks: only the server's configuration");
    expect_tool_error(&c, "{\"name\":\"w\",\"url\":\"http://h/w\",\"max_redirects\":11}", "max_redirects");
    tool_cfg t;
    assert_int_equal(tool_json(&c, "{\"name\":\"w\",\"url\":\"http://h/w\",\"max_redirects\":3}", &t), 0);
    assert_int_equal(t.max_redirects, 3);
    assert_false(t.allow_private_networks);
    config_tool_free(&t);
    config_free(&c);
}

static void test_agent_from_json(void **state)
{
    (void)state;
    brigade_config c;
    load_catalogue(&c);
    agent_cfg a;
    const char *ok = "{\"name\":\"mine\",\"model\":\"mock-small\",\"tools\":[\"w\",\"memory\"],\"max_steps\":3}";
    assert_int_equal(config_agent_from_json(&c, ok, strlen(ok), knows_only_w, NULL, &a, err, sizeof err), 0);
    assert_int_equal(a.max_steps, 3);
    assert_int_equal(a.n_tools, 2);
    config_agent_free(&a);
    const char *other = "{\"name\":\"mine\",\"model\":\"mock-small\",\"tools\":[\"open\"]}";
    assert_int_equal(config_agent_from_json(&c, other, strlen(other), knows_only_w, NULL, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "tools[0]: no tool named \"open\""));
    const char *model = "{\"name\":\"mine\",\"model\":\"gpt-9\"}";
    assert_int_equal(config_agent_from_json(&c, model, strlen(model), knows_only_w, NULL, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "model: no model named \"gpt-9\""));
    config_free(&c);
}

static int mcp_json(const brigade_config *c, const char *json, mcp_server_cfg *m)
{
    err[0] = '\0';
    return config_mcp_server_from_json(c, json, strlen(json), m, err, sizeof err);
}

static void expect_mcp_error(const brigade_config *c, const char *json, const char *want)
{
    mcp_server_cfg m;
    int rc = mcp_json(c, json, &m);
    if (rc == 0 || !strstr(err, want)) {
        print_error("want [%s]\n got rc=%d err=[%s]\n", want, rc, err);
        if (rc == 0) config_mcp_server_free(&m);
        fail();
    }
}

static void test_mcp_from_json(void **state)
{
    (void)state;
    brigade_config c;
    load_catalogue(&c);
    assert_true(config_find_mcp_server(&c, "cat-gated")->tenants_enable);
    assert_false(config_find_mcp_server(&c, "cat-open")->tenants_enable);
    mcp_server_cfg m;
    const char *ok = "{\"name\":\"notes\",\"url\":\"https://h/mcp\",\"headers\":{\"X-K\":\"${HOME}\"},\"tools\":[\"a\"]}";
    assert_int_equal(mcp_json(&c, ok, &m), 0);
    assert_int_equal(m.transport, MCP_TRANSPORT_HTTP);   /* a tenant's default */
    assert_string_equal(m.header_values[0], "${HOME}");   /* never the environment */
    assert_string_equal(m.tenant_def, ok);
    assert_false(m.allow_private_networks);
    assert_int_equal(m.max_instances, 32);
    config_mcp_server_free(&m);

    expect_mcp_error(&c, "{\"name\":\"x\",\"transport\":\"stdio\",\"command\":\"/bin/sh\"}",
                     "command: a tenant never makes brigade run a program");
    expect_mcp_error(&c, "{\"name\":\"x\",\"transport\":\"stdio\"}", "transport: a tenant's MCP server has transport: http");
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"args\":[]}", "args: a tenant never");
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"allow_private_networks\":false}",
                     "allow_private_networks: only the server's configuration");
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"tenants\":\"all\"}", "tenants: only the server's");
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"auth\":{\"provider\":\"g\"}}", "auth.provider: unknown key");
    /* MCP authorization: a tenant's server registers brigade dynamically;
     * a client secret from brigade's environment is the operator's */
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"auth\":{\"kind\":\"oauth\",\"client_id\":\"a\"}}",
                     "auth.client_id: a pre-registered client is the server's configuration's");
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"auth\":{\"kind\":\"oauth\",\"client_secret_env\":\"HOME\"}}",
                     "auth.client_secret_env: a pre-registered client");
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"auth\":{\"kind\":\"saml\"}}", "auth.kind: unknown kind");
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"auth\":{\"kind\":\"oauth\",\"scopes\":[\"a b\"]}}",
                     "auth.scopes: a scope is printable ASCII");
    {
        mcp_server_cfg m;
        memset(&m, 0, sizeof m);
        char err[300];
        const char *ok = "{\"name\":\"x\",\"url\":\"http://h/\",\"auth\":{\"kind\":\"oauth\",\"scopes\":[\"files:read\"],\"timeout_s\":30}}";
        assert_int_equal(config_mcp_server_from_json(&c, ok, strlen(ok), &m, err, sizeof err), 0);
        assert_true(m.oauth);
        assert_null(m.oauth_client_id);
        assert_int_equal(m.n_oauth_scopes, 1);
        assert_string_equal(m.oauth_scopes[0], "files:read");
        assert_int_equal(m.oauth_timeout_s, 30);
        config_mcp_server_free(&m);
    }
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"file:///etc/passwd\"}", "url: ");
    expect_mcp_error(&c, "{\"name\":\"x_y\",\"url\":\"http://h/\"}", "name: ");
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"headers\":{\"X\":\"a\\r\\nB: c\"}}",
                     "headers.X: a value must not contain a line break");
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"headers\":{\"mcp-session-id\":\"s\"}}",
                     "headers.mcp-session-id: this header is set by brigade");
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"url\":\"http://i/\"}", "duplicate key");
    /* the approval policy: a tool's reader; the guard reads it through the tool */
    const char *gated = "{\"name\":\"g\",\"url\":\"http://h/\",\"approval\":{\"when\":{\"pointer\":\"/p\","
                        "\"matches\":\"rm*\"}},\"approval_timeout_s\":60}";
    assert_int_equal(mcp_json(&c, gated, &m), 0);
    assert_non_null(m.approval);
    assert_int_equal(m.approval->approval, TOOL_APPROVAL_WHEN);
    assert_int_equal(m.approval->approval_timeout_s, 60);
    tool_def d = {.kind = TOOL_MCP, .mcp_server = &m};
    assert_ptr_equal(tools_approval_policy(&d), m.approval);
    config_mcp_server_free(&m);
    expect_mcp_error(&c, "{\"name\":\"x\",\"url\":\"http://h/\",\"approval\":\"maybe\"}", "approval: expected never");
    /* the operator's file: the reserved headers hold there too */
    const char *bad = "mcp_servers:\n  - {name: h, transport: http, url: \"http://h/\", headers: {Host: x}}\n";
    brigade_config c2;
    assert_int_equal(config_load_string("t.yaml", bad, strlen(bad), &c2, err, sizeof err), -1);
    assert_non_null(strstr(err, "headers.Host: this header is set by brigade"));
    config_free(&c);
}

/* ---- the store and a run's resolution ---- */

typedef struct fx {
    char dir[64];
    store *st;
    brigade_config cfg;
    tool_registry *server;
    scope admin, ta, tb, ua, ub;
    char ta_id[ID_MAX], tb_id[ID_MAX], u1[ID_MAX], u2[ID_MAX];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->st = test_store_open(f->dir, sizeof f->dir, "brigade-tt");
    assert_non_null(f->st);
    load_catalogue(&f->cfg);
    f->server = tools_registry_new(&f->cfg, err, sizeof err);
    assert_non_null(f->server);
    scope_mint_server_admin(&f->admin);
    assert_int_equal(test_store_tenant(f->st, &f->admin, "a", f->ta_id), STORE_OK);
    assert_int_equal(test_store_tenant(f->st, &f->admin, "b", f->tb_id), STORE_OK);
    scope_mint_tenant_admin(&f->ta, f->ta_id, "key_a");
    scope_mint_tenant_admin(&f->tb, f->tb_id, "key_b");
    assert_int_equal(test_store_user(f->st, &f->ta, "alice", f->u1), STORE_OK);
    assert_int_equal(test_store_user(f->st, &f->tb, "bob", f->u2), STORE_OK);
    scope_mint_user(&f->ua, f->ta_id, f->u1, "key_1", "default");
    scope_mint_user(&f->ub, f->tb_id, f->u2, "key_2", "default");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tools_registry_free(f->server);
    config_free(&f->cfg);
    test_store_close(f->st, f->dir);
    free(f);
    return 0;
}

static void test_store_scoped(void **state)
{
    fx *f = *state;
    assert_int_equal(store_def_create(f->st, &f->ta, STORE_DEF_TOOL, "t", "{}", 2), STORE_OK);
    assert_int_equal(store_def_create(f->st, &f->ta, STORE_DEF_TOOL, "t", "{}", 2), STORE_CONFLICT);
    assert_int_equal(store_def_create(f->st, &f->tb, STORE_DEF_TOOL, "t", "{\"b\":1}", 2), STORE_OK);
    assert_int_equal(store_def_create(f->st, &f->ta, STORE_DEF_TOOL, "u", NULL, 2), STORE_OK);
    assert_int_equal(store_def_create(f->st, &f->ta, STORE_DEF_TOOL, "v", "{}", 2), STORE_QUOTA);
    /* users read, never write */
    assert_int_equal(store_def_create(f->st, &f->ua, STORE_DEF_TOOL, "w", "{}", 9), STORE_FORBIDDEN);
    assert_int_equal(store_def_delete(f->st, &f->ua, STORE_DEF_TOOL, "t"), STORE_FORBIDDEN);
    def_rec d;
    assert_int_equal(store_def_get(f->st, &f->ub, STORE_DEF_TOOL, "t", &d), STORE_OK);
    assert_string_equal(d.body, "{\"b\":1}");   /* B's own, not A's */
    def_rec_free(&d);
    assert_int_equal(store_def_get(f->st, &f->ub, STORE_DEF_TOOL, "u", &d), STORE_NOT_FOUND);
    assert_int_equal(store_def_get(f->st, &f->ua, STORE_DEF_AGENT, "t", &d), STORE_NOT_FOUND);
    /* an enabled catalogue entry has no body to update */
    assert_int_equal(store_def_update(f->st, &f->ta, STORE_DEF_TOOL, "u", "{}"), STORE_NOT_FOUND);
    assert_int_equal(store_def_update(f->st, &f->tb, STORE_DEF_TOOL, "u", "{}"), STORE_NOT_FOUND);
    assert_int_equal(store_def_delete(f->st, &f->tb, STORE_DEF_TOOL, "u"), STORE_NOT_FOUND);
    def_rec *rows;
    size_t n;
    assert_int_equal(store_def_list(f->st, &f->ua, STORE_DEF_TOOL, &rows, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].name, "t");
    assert_null(rows[1].body);
    store_free_defs(rows, n);
    assert_int_equal(store_def_delete(f->st, &f->ta, STORE_DEF_TOOL, "t"), STORE_OK);
    assert_int_equal(store_def_get(f->st, &f->ub, STORE_DEF_TOOL, "t", &d), STORE_OK);
    def_rec_free(&d);
}

static void test_run_set(void **state)
{
    fx *f = *state;
    tools_run_set s;
    char why[512];
    /* the catalogue agent, gated tool not enabled: a registry of its own,
     * without the gated tool */
    assert_int_equal(tools_run_set_resolve(f->st, &f->ua, &f->cfg, f->server, "assistant", &s, why, sizeof why),
                     TOOLS_TENANT_OK);
    assert_ptr_equal(s.agent, config_find_agent(&f->cfg, "assistant"));
    assert_ptr_not_equal(s.tools, f->server);
    assert_non_null(tools_find(s.tools, "open"));
    assert_null(tools_find(s.tools, "gated"));
    assert_int_equal(tools_find(s.tools, "memory")->effects, TOOL_EFFECTS_WRITE);
    assert_int_equal(tools_find(s.tools, "clock")->effects, TOOL_EFFECTS_READ);
    tools_run_set_free(&s);
    /* enabled for A: the server's registry serves as it is */
    assert_int_equal(store_def_create(f->st, &f->ta, STORE_DEF_TOOL, "gated", NULL, 64), STORE_OK);
    assert_int_equal(tools_run_set_resolve(f->st, &f->ua, &f->cfg, f->server, "assistant", &s, why, sizeof why),
                     TOOLS_TENANT_OK);
    assert_ptr_equal(s.tools, f->server);
    tools_run_set_free(&s);
    /* an agent with tenants: enable exists for A only once enabled */
    assert_int_equal(tools_run_set_resolve(f->st, &f->ua, &f->cfg, f->server, "private", &s, why, sizeof why),
                     TOOLS_TENANT_NOT_FOUND);
    /* A's own agent and tool: B never resolves them */
    const char *tool = "{\"name\":\"mine\",\"url\":\"http://127.0.0.1:9/mine\",\"effects\":\"write\"}";
    const char *agent = "{\"name\":\"own\",\"model\":\"mock-small\",\"tools\":[\"mine\",\"open\"]}";
    assert_int_equal(store_def_create(f->st, &f->ta, STORE_DEF_TOOL, "mine", tool, 64), STORE_OK);
    assert_int_equal(store_def_create(f->st, &f->ta, STORE_DEF_AGENT, "own", agent, 64), STORE_OK);
    assert_int_equal(tools_run_set_resolve(f->st, &f->ua, &f->cfg, f->server, "own", &s, why, sizeof why),
                     TOOLS_TENANT_OK);
    assert_ptr_equal(s.agent, &s.own_agent);
    assert_int_equal(tools_find(s.tools, "mine")->effects, TOOL_EFFECTS_WRITE);
    assert_non_null(tools_find(s.tools, "open"));
    /* the snapshot is the run's: deleting the rows leaves it whole */
    assert_int_equal(store_def_delete(f->st, &f->ta, STORE_DEF_TOOL, "mine"), STORE_OK);
    assert_string_equal(tools_find(s.tools, "mine")->http->url, "http://127.0.0.1:9/mine");
    tools_run_set_free(&s);
    /* now the agent lists a tool that is gone: it no longer loads, and says why */
    assert_int_equal(tools_run_set_resolve(f->st, &f->ua, &f->cfg, f->server, "own", &s, why, sizeof why),
                     TOOLS_TENANT_UNUSABLE);
    assert_non_null(strstr(why, "no tool named \"mine\""));
    assert_int_equal(tools_run_set_resolve(f->st, &f->ub, &f->cfg, f->server, "own", &s, why, sizeof why),
                     TOOLS_TENANT_NOT_FOUND);
    /* a tenant's own tool shadows the catalogue's of that name, in that tenant only */
    const char *shadow = "{\"name\":\"open\",\"url\":\"http://127.0.0.1:9/shadow\"}";
    assert_int_equal(store_def_create(f->st, &f->tb, STORE_DEF_TOOL, "open", shadow, 64), STORE_OK);
    assert_int_equal(tools_run_set_resolve(f->st, &f->ub, &f->cfg, f->server, "assistant", &s, why, sizeof why),
                     TOOLS_TENANT_OK);
    assert_string_equal(tools_find(s.tools, "open")->http->url, "http://127.0.0.1:9/shadow");
    tools_run_set_free(&s);
    assert_int_equal(tools_run_set_resolve(f->st, &f->ua, &f->cfg, f->server, "assistant", &s, why, sizeof why),
                     TOOLS_TENANT_OK);
    assert_string_equal(tools_find(s.tools, "open")->http->url, "http://127.0.0.1:9/open");
    tools_run_set_free(&s);
}

/* SERVER__TOOL for a tenant: the catalogue servers it has and its own,
 * never another tenant's; a run takes its own server's definition along. */
static void test_mcp_per_tenant(void **state)
{
    fx *f = *state;
    tools_tenant ta, tb;
    assert_int_equal(tools_tenant_load(f->st, &f->ua, &f->cfg, &ta), TOOLS_TENANT_OK);
    assert_true(tools_tenant_knows(&ta, "cat-open__x"));
    assert_false(tools_tenant_knows(&ta, "cat-gated__x"));
    assert_false(tools_tenant_knows(&ta, "nothing__x"));
    tools_tenant_free(&ta);
    const char *own = "{\"name\":\"mine\",\"url\":\"http://127.0.0.1:9/mcp\"}";
    assert_int_equal(store_def_create(f->st, &f->ta, STORE_DEF_MCP, "cat-gated", NULL, 32), STORE_OK);
    assert_int_equal(store_def_create(f->st, &f->ta, STORE_DEF_MCP, "mine", own, 32), STORE_OK);
    assert_int_equal(tools_tenant_load(f->st, &f->ua, &f->cfg, &ta), TOOLS_TENANT_OK);
    assert_int_equal(tools_tenant_load(f->st, &f->ub, &f->cfg, &tb), TOOLS_TENANT_OK);
    assert_true(tools_tenant_knows(&ta, "cat-gated__x"));
    assert_true(tools_tenant_knows(&ta, "mine__*"));
    assert_false(tools_tenant_knows(&tb, "cat-gated__x"));
    assert_false(tools_tenant_knows(&tb, "mine__*"));
    assert_false(tools_tenant_knows(&ta, "mine"));   /* a tool of that name it has not */
    tools_tenant_free(&ta);
    tools_tenant_free(&tb);
    /* a run of A's agent: the own server's tool, its definition kept by the run */
    const char *agent = "{\"name\":\"uses\",\"model\":\"mock-small\",\"tools\":[\"mine__echo\",\"cat-open__x\"]}";
    assert_int_equal(store_def_create(f->st, &f->ta, STORE_DEF_AGENT, "uses", agent, 64), STORE_OK);
    tools_run_set s;
    char why[512];
    assert_int_equal(tools_run_set_resolve(f->st, &f->ua, &f->cfg, f->server, "uses", &s, why, sizeof why),
                     TOOLS_TENANT_OK);
    const tool_def *d = tools_find(s.tools, "mine__echo");
    assert_non_null(d);
    assert_int_equal(d->kind, TOOL_MCP);
    assert_string_equal(d->mcp_server->tenant_def, own);
    assert_int_equal(s.n_own_mcp, 1);
    assert_null(tools_find(s.tools, "cat-open__x")->mcp_server->tenant_def);
    assert_int_equal(store_def_delete(f->st, &f->ta, STORE_DEF_MCP, "mine"), STORE_OK);
    assert_string_equal(d->mcp_server->url, "http://127.0.0.1:9/mcp");   /* the run's own copy */
    tools_run_set_free(&s);
    assert_int_equal(tools_run_set_resolve(f->st, &f->ua, &f->cfg, f->server, "uses", &s, why, sizeof why),
                     TOOLS_TENANT_UNUSABLE);
    assert_non_null(strstr(why, "mine__echo"));
    /* B's agent may not name A's server at all */
    assert_int_equal(tools_run_set_resolve(f->st, &f->ub, &f->cfg, f->server, "uses", &s, why, sizeof why),
                     TOOLS_TENANT_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue_keys),
        cmocka_unit_test(test_tool_from_json),
        cmocka_unit_test(test_tool_from_json_egress),
        cmocka_unit_test(test_agent_from_json),
        cmocka_unit_test_setup_teardown(test_store_scoped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_set, setup, teardown),
        cmocka_unit_test(test_mcp_from_json),
        cmocka_unit_test_setup_teardown(test_mcp_per_tenant, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
