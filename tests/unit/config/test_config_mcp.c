/* test_config_mcp.c — `mcp_servers:`: what is read and its defaults (stdio
 * per user, http shared), SERVER__TOOL and SERVER__* in an agent's tools,
 * and the errors: keys of the other transport, a name with "_", PATH in
 * env, a relative cwd, an unknown server in an agent's tools; the
 * `sandbox:` of a stdio server (on by default, false to opt out, network,
 * read_only paths, limits) and its errors; `auth: {kind: oauth}` (MCP
 * authorization) and its errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"

static char err[1024];

static int load(const char *yaml, brigade_config *cfg)
{
    err[0] = '\0';
    return config_load_string("brigade.yaml", yaml, strlen(yaml), cfg, err, sizeof(err));
}

static void expect_error(const char *yaml, const char *want)
{
    brigade_config c;
    int rc = load(yaml, &c);
    if (rc == 0 || !strstr(err, want)) {
        print_error("want error containing [%s]\n got rc=%d err=[%s]\n", want, rc, err);
        if (rc == 0) config_free(&c);
        fail();
    }
    config_free(&c);
}

static void test_read_and_defaults(void **state)
{
    (void)state;
    static const char yaml[] =
        "mcp_servers:\n"
        "  - name: files\n"
        "    command: /usr/bin/node\n"
        "    args: [server.js, \"{workdir}\"]\n"
        "    env: {MEMORY_FILE_PATH: \"{workdir}/m.jsonl\", MODE: test}\n"
        "    tools: [read_file, list_directory]\n"
        "  - {name: remote, transport: http, url: \"https://mcp.example.com/mcp\",\n"
        "     headers: {X-Api-Key: k}, call_timeout_ms: 5000, idle_timeout_s: 30, max_instances: 4}\n"
        "agents:\n"
        "  - {name: a, model: mock-small, tools: [memory, files__read_file, \"remote__*\"]}\n";
    brigade_config c;
    if (load(yaml, &c) != 0) fail_msg("%s", err);
    assert_int_equal(c.n_mcp_servers, 2);
    const mcp_server_cfg *f = config_find_mcp_server(&c, "files");
    assert_non_null(f);
    assert_int_equal(f->transport, MCP_TRANSPORT_STDIO);
    assert_true(f->per_user);
    assert_string_equal(f->command, "/usr/bin/node");
    assert_int_equal(f->n_args, 2);
    assert_string_equal(f->args[1], "{workdir}");
    assert_int_equal(f->n_env, 2);
    assert_string_equal(f->env_names[0], "MEMORY_FILE_PATH");
    assert_int_equal(f->n_tools, 2);
    assert_int_equal(f->startup_timeout_ms, 30000);
    assert_int_equal(f->call_timeout_ms, 60000);
    assert_int_equal(f->idle_timeout_s, 600);
    assert_int_equal(f->max_instances, 32);
    assert_int_equal(f->ping_interval_s, 60);
    const mcp_server_cfg *r = config_find_mcp_server(&c, "remote");
    assert_int_equal(r->transport, MCP_TRANSPORT_HTTP);
    assert_false(r->per_user);
    assert_string_equal(r->url, "https://mcp.example.com/mcp");
    assert_int_equal(r->n_headers, 1);
    assert_int_equal(r->call_timeout_ms, 5000);
    assert_int_equal(r->max_instances, 4);
    const char *tool = NULL;
    assert_ptr_equal(config_mcp_tool_server(&c, "files__read_file", &tool), f);
    assert_string_equal(tool, "read_file");
    assert_ptr_equal(config_mcp_tool_server(&c, "remote__*", &tool), r);
    assert_string_equal(tool, "*");
    assert_null(config_mcp_tool_server(&c, "nope__x", &tool));
    assert_null(config_mcp_tool_server(&c, "files__", &tool));
    assert_null(config_mcp_tool_server(&c, "__x", &tool));
    config_free(&c);
}

static void test_sandbox(void **state)
{
    (void)state;
    static const char yaml[] =
        "mcp_servers:\n"
        "  - {name: plain, command: node}\n"
        "  - {name: off, command: node, sandbox: false, cwd: /srv/x}\n"
        "  - name: granted\n"
        "    command: node\n"
        "    sandbox:\n"
        "      network: true\n"
        "      read_only: [/opt/mcp/node_modules, /srv/data]\n"
        "      limits: {cpu_seconds: 86400, memory_mb: 4096, processes: 32}\n"
        "  - {name: remote, transport: http, url: \"https://mcp.example.com/mcp\"}\n";
    brigade_config c;
    if (load(yaml, &c) != 0) fail_msg("%s", err);
    const mcp_server_cfg *p = config_find_mcp_server(&c, "plain");
    assert_true(p->sandbox);
    assert_false(p->sandbox_network);
    assert_int_equal(p->n_sandbox_read_only, 0);
    assert_int_equal(p->sandbox_limits.memory_mb, 0);   /* the MCP default, at spawn */
    const mcp_server_cfg *o = config_find_mcp_server(&c, "off");
    assert_false(o->sandbox);
    assert_string_equal(o->cwd, "/srv/x");
    const mcp_server_cfg *g = config_find_mcp_server(&c, "granted");
    assert_true(g->sandbox);
    assert_true(g->sandbox_network);
    assert_int_equal(g->n_sandbox_read_only, 2);
    assert_string_equal(g->sandbox_read_only[0], "/opt/mcp/node_modules");
    assert_int_equal(g->sandbox_limits.cpu_seconds, 86400);
    assert_int_equal(g->sandbox_limits.memory_mb, 4096);
    assert_int_equal(g->sandbox_limits.processes, 32);
    assert_false(config_find_mcp_server(&c, "remote")->sandbox);
    config_free(&c);

    expect_error("mcp_servers:\n  - {name: a, command: x, cwd: /srv}\n", "cwd is only for a server with sandbox: false");
    expect_error("mcp_servers:\n  - {name: a, transport: http, url: \"https://x.example\", sandbox: false}\n",
                 "\"sandbox\" is for transport: stdio");
    expect_error("mcp_servers:\n  - {name: a, command: x, sandbox: maybe}\n", "sandbox");
    expect_error("mcp_servers:\n  - {name: a, command: x, sandbox: {read_only: [rel/dir]}}\n", "must be an absolute path");
    expect_error("mcp_servers:\n  - {name: a, command: x, sandbox: {read_only: [/]}}\n", "the whole machine");
    expect_error("mcp_servers:\n  - {name: a, command: x, sandbox: {read_only: [/opt/../etc]}}\n", "plain path");
    expect_error("mcp_servers:\n  - {name: a, command: x, sandbox: {read_only: [/opt/x/]}}\n", "plain path");
    expect_error("mcp_servers:\n  - {name: a, command: x, sandbox: {read_only: [/proc/1]}}\n", "its own directories");
    expect_error("mcp_servers:\n  - {name: a, command: x, sandbox: {read_only: [/tmp]}}\n", "its own directories");
    expect_error("mcp_servers:\n  - {name: a, command: x, sandbox: {limits: {processes: 2}}}\n", "processes");
    expect_error("mcp_servers:\n  - {name: a, command: x, sandbox: {limits: {memory_mb: 999999}}}\n", "memory_mb");
    expect_error("mcp_servers:\n  - {name: a, command: x, sandbox: {netwrok: true}}\n", "netwrok");
    expect_error("mcp_servers:\n  - {name: a, command: x, sandbox: {network: yes-please}}\n", "network");
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("mcp_servers:\n  - {name: a_b, command: x}\n", "not a valid MCP server name");
    expect_error("mcp_servers:\n  - {name: a}\n", "missing required key \"command\"");
    expect_error("mcp_servers:\n  - {name: a, transport: http}\n", "missing required key \"url\"");
    expect_error("mcp_servers:\n  - {name: a, transport: ws, url: \"http://x\"}\n", "unknown transport");
    expect_error("mcp_servers:\n  - {name: a, command: x, url: \"http://x\"}\n", "\"url\" is for transport: http");
    expect_error("mcp_servers:\n  - {name: a, transport: http, url: \"http://x\", command: y}\n",
                 "\"command\" is for transport: stdio");
    expect_error("mcp_servers:\n  - {name: a, command: x, env: {PATH: /bin}}\n", "PATH is brigade's own");
    expect_error("mcp_servers:\n  - {name: a, command: x, env: {\"1BAD\": v}}\n", "not a valid environment variable name");
    expect_error("mcp_servers:\n  - {name: a, command: x, cwd: rel/dir}\n", "absolute path");
    expect_error("mcp_servers:\n  - {name: a, command: x, max_instances: 0}\n", "max_instances");
    expect_error("mcp_servers:\n  - {name: a, command: x, shell: true}\n", "shell");
    expect_error("mcp_servers:\n  - {name: a, command: x}\n  - {name: a, command: y}\n", "duplicate name");
    expect_error("mcp_servers:\n  - {name: a, command: x}\n"
                 "agents:\n  - {name: g, model: mock-small, tools: [b__tool]}\n", "no tool named \"b__tool\"");
}

static void test_oauth(void **state)
{
    (void)state;
    setenv("BRIGADE_TEST_MCP_SECRET", "s3cret", 1);
    static const char yaml[] =
        "mcp_servers:\n"
        "  - {name: gh, transport: http, url: \"https://mcp.example.com/mcp\",\n"
        "     auth: {kind: oauth, client_id: brigade-app, client_secret_env: BRIGADE_TEST_MCP_SECRET,\n"
        "            scopes: [repo, \"read:user\"], timeout_s: 120}}\n"
        "  - {name: open, transport: http, url: \"https://m.example/mcp\", auth: {kind: oauth}}\n";
    brigade_config c;
    if (load(yaml, &c) != 0) fail_msg("%s", err);
    const mcp_server_cfg *g = config_find_mcp_server(&c, "gh");
    assert_true(g->oauth);
    assert_string_equal(g->oauth_client_id, "brigade-app");
    assert_string_equal(g->oauth_client_secret, "s3cret");
    assert_int_equal(g->n_oauth_scopes, 2);
    assert_string_equal(g->oauth_scopes[1], "read:user");
    assert_int_equal(g->oauth_timeout_s, 120);
    const mcp_server_cfg *o = config_find_mcp_server(&c, "open");
    assert_true(o->oauth);
    assert_null(o->oauth_client_id);
    assert_null(o->oauth_client_secret);
    assert_int_equal(o->oauth_timeout_s, 600);
    config_free(&c);
    expect_error("mcp_servers:\n  - {name: a, command: x, auth: {kind: oauth}}\n", "MCP authorization is for transport: http");
    expect_error("mcp_servers:\n  - {name: a, transport: http, url: \"http://x\", auth: {}}\n", "missing required key \"kind\"");
    expect_error("mcp_servers:\n  - {name: a, transport: http, url: \"http://x\", auth: {kind: basic}}\n", "unknown kind");
    expect_error("mcp_servers:\n  - {name: a, transport: http, url: \"http://x\", auth: {kind: oauth, provider: g}}\n",
                 "unknown key");
    expect_error("mcp_servers:\n  - {name: a, transport: http, url: \"http://x\",\n"
                 "     auth: {kind: oauth, client_secret_env: BRIGADE_TEST_MCP_SECRET}}\n", "needs its client_id");
    expect_error("mcp_servers:\n  - {name: a, transport: http, url: \"http://x\",\n"
                 "     auth: {kind: oauth, client_id: c, client_secret_env: BRIGADE_TEST_MCP_UNSET}}\n",
                 "BRIGADE_TEST_MCP_UNSET");
    expect_error("mcp_servers:\n  - {name: a, transport: http, url: \"http://x\", auth: {kind: oauth, scopes: [\"a\\\"b\"]}}\n",
                 "printable ASCII");
    expect_error("mcp_servers:\n  - {name: a, transport: http, url: \"http://x\", auth: {kind: oauth, timeout_s: 0}}\n",
                 "timeout_s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_and_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sandbox),
        cmocka_unit_test(test_oauth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
