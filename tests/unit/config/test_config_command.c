/* test_config_command.c — tools of `kind: command` and the `sandbox:`
 * section (src/config/config_command.c): what is read, the defaults, the
 * errors each reports, and that a tenant's body may never declare one. */
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

static void test_command_tool_read(void **state)
{
    (void)state;
    setenv("TEST_CMD_TOKEN", "tok-from-env", 1);
    brigade_config c;
    int rc = load("sandbox: {allow_unsandboxed: true, bwrap: /opt/bwrap}\n"
                  "tools:\n"
                  "  - name: wc\n"
                  "    kind: command\n"
                  "    argv: [/usr/bin/node, /opt/wc.js, \"--lang={lang}\"]\n"
                  "    env: {PATH: /usr/bin, TOKEN: \"${TEST_CMD_TOKEN}\"}\n"
                  "    network: true\n"
                  "    timeout_ms: 5000\n"
                  "    limits: {cpu_seconds: 3, memory_mb: 256, processes: 8}\n"
                  "    parameters: {type: object, properties: {lang: {type: string}}}\n"
                  "  - {name: web, url: \"https://x.example/a\"}\n",
                  &c);
    if (rc != 0) fail_msg("%s", err);
    assert_true(c.sandbox.allow_unsandboxed);
    assert_string_equal(c.sandbox.bwrap, "/opt/bwrap");
    assert_null(c.sandbox.helper);
    const tool_cfg *t = &c.tools[0];
    assert_int_equal(t->kind, TOOL_CFG_COMMAND);
    assert_int_equal(t->argc, 3);
    assert_string_equal(t->argv[2], "--lang={lang}");
    assert_int_equal(t->n_env, 2);
    assert_string_equal(t->env_names[1], "TOKEN");
    assert_string_equal(t->env_values[1], "tok-from-env");
    assert_true(t->network);
    assert_int_equal(t->timeout_ms, 5000);
    assert_int_equal(t->limits.cpu_seconds, 3);
    assert_int_equal(t->limits.memory_mb, 256);
    assert_int_equal(t->limits.processes, 8);
    assert_int_equal(t->limits.open_files, 0);   /* 0: the sandbox's default */
    assert_null(t->url);
    assert_int_equal(c.tools[1].kind, TOOL_CFG_HTTP);
    assert_false(c.tools[1].network);
    config_free(&c);
}

static void test_command_tool_errors(void **state)
{
    (void)state;
    expect_error("tools:\n  - {name: a, kind: command}\n", "missing required key \"argv\"");
    expect_error("tools:\n  - {name: a, kind: shell, argv: [x]}\n", "expected http or command");
    expect_error("tools:\n  - {name: a, kind: command, argv: []}\n", "the list is empty");
    expect_error("tools:\n  - {name: a, kind: command, argv: [\"\"]}\n", "the program must not be empty");
    expect_error("tools:\n  - {name: a, kind: command, argv: [sh, \"${HOME}\"]}\n", "pass it in env");
    expect_error("tools:\n  - {name: a, kind: command, argv: [sh], url: \"https://x.example\"}\n",
                 "tools[0].url: not for tools of kind: command");
    expect_error("tools:\n  - {name: a, kind: command, argv: [sh], headers: {A: b}}\n",
                 "not for tools of kind: command");
    expect_error("tools:\n  - {name: a, url: \"https://x.example\", argv: [sh]}\n",
                 "tools[0].argv: only for tools of kind: command");
    expect_error("tools:\n  - {name: a, kind: command, argv: [sh], env: {\"1X\": y}}\n",
                 "variable names are");
    expect_error("tools:\n  - {name: a, kind: command, argv: [sh], env: {A: b, A: c}}\n", "");
    expect_error("tools:\n  - {name: a, kind: command, argv: [sh], limits: {processes: 0}}\n",
                 "tools[0].limits.processes");
    expect_error("tools:\n  - {name: a, kind: command, argv: [sh], limits: {forks: 3}}\n",
                 "forks");
    expect_error("tools:\n  - {name: a, kind: command, argv: [sh], network: maybe}\n",
                 "tools[0].network");
    expect_error("sandbox: {bwrap: relative/bwrap}\n", "sandbox.bwrap: must be an absolute path");
    expect_error("sandbox: {allow: true}\n", "allow");
}

static void test_tenant_body_refused(void **state)
{
    (void)state;
    brigade_config c;
    config_defaults(&c);
    tool_cfg t;
    const char *body = "{\"name\":\"mine\",\"kind\":\"command\",\"argv\":[\"/bin/sh\",\"-c\",\"id\"]}";
    assert_int_equal(config_tool_from_json(&c, body, strlen(body), &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "only the server's configuration may declare them"));
    /* nor can the command keys ride on an HTTP tool */
    const char *sneaky = "{\"name\":\"mine\",\"url\":\"https://x.example\",\"env\":{\"A\":\"b\"}}";
    assert_int_equal(config_tool_from_json(&c, sneaky, strlen(sneaky), &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "only for tools of kind: command"));
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_tool_read),
        cmocka_unit_test(test_command_tool_errors),
        cmocka_unit_test(test_tenant_body_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
