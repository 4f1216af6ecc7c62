/* test_tool_command.c — the tool kind `command` (src/tools/tool_command.c)
 * as the registry and the harness see it: the argv template's placeholders
 * must be declared properties (never in the program itself), and — where
 * bubblewrap works here — a call fills them as whole values without any
 * shell, hands the arguments as JSON on stdin, keeps each user's private
 * directory to that user, and reports failure to the model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/scope_mint.h"
#include "sandbox/sandbox.h"
#include "test_util.h"
#include "tools/tools.h"

static uv_loop_t L;
static char data_dir[256];

typedef struct result {
    int  calls;
    bool ok;
    char out[4096];
} result;

static void on_done(void *arg, bool ok, const char *output, size_t len)
{
    result *r = arg;
    r->calls++;
    r->ok = ok;
    snprintf(r->out, sizeof r->out, "%.*s", (int)len, output);
}

static tool_cfg command(const char *name, char **argv, size_t argc, const char *params)
{
    static char *path_name[] = {"PATH"}, *path_value[] = {"/usr/bin:/bin"};
    tool_cfg t = {.name = (char *)name, .kind = TOOL_CFG_COMMAND, .argv = argv, .argc = argc,
                  .env_names = path_name, .env_values = path_value, .n_env = 1,
                  .parameters_json = (char *)params, .timeout_ms = 10000,
                  .max_response_bytes = 65536, .effects = TOOL_EFFECTS_READ};
    return t;
}

static void test_placeholders_checked(void **state)
{
    (void)state;
    char err[256];
    char *bad_prog[] = {"/usr/bin/{prog}"};
    tool_cfg a = command("a", bad_prog, 1, "{\"type\":\"object\",\"properties\":{\"prog\":{\"type\":\"string\"}}}");
    const tool_cfg *list[] = {&a};
    assert_null(tools_registry_of(list, 1, err, sizeof err));
    assert_non_null(strstr(err, "argv[0]"));

    char *undeclared[] = {"/bin/echo", "{who}"};
    tool_cfg b = command("b", undeclared, 2, "{\"type\":\"object\"}");
    list[0] = &b;
    assert_null(tools_registry_of(list, 1, err, sizeof err));
    assert_non_null(strstr(err, "placeholder {who} is not a property"));

    /* a script's own braces are not placeholders */
    char *script[] = {"/bin/sh", "-c", "f() { echo ${1:-x}; }; f {who}"};
    tool_cfg c = command("c", script, 3,
                         "{\"type\":\"object\",\"properties\":{\"who\":{\"type\":\"string\"}}}");
    list[0] = &c;
    tool_registry *r = tools_registry_of(list, 1, err, sizeof err);
    if (!r) fail_msg("%s", err);
    const tool_def *d = tools_find(r, "c");
    assert_non_null(d);
    assert_int_equal(d->kind, TOOL_COMMAND);
    tools_registry_free(r);
}

static result run(const tool_def *d, const scope *sc, const char *args)
{
    result r = {0};
    tool_env env = {.loop = &L, .scope = sc, .max_output_bytes = 4000};
    tool_exec *x = tools_execute(d, &env, args, on_done, &r);
    assert_non_null(x);
    test_run_timed(&L, &r.calls, 15000);
    assert_int_equal(r.calls, 1);
    test_spin(&L, 100);
    return r;
}

static void test_live_calls(void **state)
{
    (void)state;
    if (!sandbox_host_info()->bwrap_ok) skip();
    char err[256];
    /* echo prints its argv: the value stays one argument, unexpanded */
    char *echo[] = {"/bin/echo", "[{who}]", "{n}"};
    tool_cfg e = command("echo", echo, 3,
                         "{\"type\":\"object\",\"properties\":{\"who\":{\"type\":\"string\"},"
                         "\"n\":{\"type\":\"integer\"}}}");
    char *files[] = {"/bin/sh", "-c", "cat > /dev/null; cat /work/mine 2>/dev/null; echo {v} > /work/mine"};
    tool_cfg f = command("files", files, 3,
                         "{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"string\"}}}");
    char *stdin_echo[] = {"/bin/cat"};
    tool_cfg s = command("stdin", stdin_echo, 1, "{\"type\":\"object\",\"additionalProperties\":true}");
    char *fails[] = {"/bin/false"};
    tool_cfg x = command("fails", fails, 1, NULL);
    const tool_cfg *list[] = {&e, &f, &s, &x};
    tool_registry *r = tools_registry_of(list, 4, err, sizeof err);
    if (!r) fail_msg("%s", err);
    scope alice, bob;
    scope_mint_user(&alice, "ten_1", "usr_alice", "key_a", "default");
    scope_mint_user(&bob, "ten_1", "usr_bob", "key_b", "default");

    result o = run(tools_find(r, "echo"), &alice, "{\"who\":\"$HOME; rm -rf /\",\"n\":7}");
    if (!o.ok) fail_msg("%s", o.out);
    assert_string_equal(o.out, "[$HOME; rm -rf /] 7\n");

    o = run(tools_find(r, "stdin"), &alice, "{\"a\":[1,2],\"b\":\"x\"}");
    assert_true(o.ok);
    assert_string_equal(o.out, "{\"a\":[1,2],\"b\":\"x\"}\n");

    /* alice's file is hers: bob's call does not see it */
    assert_true(run(tools_find(r, "files"), &alice, "{\"v\":\"alice1\"}").ok);
    o = run(tools_find(r, "files"), &alice, "{\"v\":\"alice2\"}");
    assert_string_equal(o.out, "alice1\n");
    o = run(tools_find(r, "files"), &bob, "{\"v\":\"bob1\"}");
    assert_true(o.ok);
    assert_string_equal(o.out, "");

    o = run(tools_find(r, "fails"), &alice, "{}");
    assert_false(o.ok);
    assert_non_null(strstr(o.out, "exited with status 1"));
    tools_registry_free(r);
}

static void test_private_dirs(void **state)
{
    (void)state;
    char a[1024], b[1024], c[1024];
    assert_true(sandbox_private_dir("tool", "ten_1", "usr_1", a, sizeof a));
    assert_non_null(strstr(a, "/sandbox/tool/ten_1/usr_1"));
    /* ids that could climb or collide are encoded, never used as paths */
    assert_true(sandbox_private_dir("tool", "ten_1", "..", b, sizeof b));
    assert_null(strstr(b, "/.."));
    assert_true(sandbox_private_dir("tool", "ten_1", "a/b", c, sizeof c));
    assert_null(strstr(c + strlen(data_dir), "a/b"));
    assert_true(sandbox_private_dir("tool", "ten_1", "x612f62~", b, sizeof b));
    assert_string_not_equal(b, c);
    assert_false(sandbox_private_dir("tool", "ten_1", "usr_1", a, 10));
}

int main(void)
{
    if (!test_tmpdir(data_dir, sizeof data_dir, "tool-command")) return 1;
    sandbox_settings set = {.init_path = getenv("SANDBOX_INIT"), .data_dir = data_dir};
    sandbox_setup(&set);
    uv_loop_init(&L);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placeholders_checked),
        cmocka_unit_test(test_private_dirs),
        cmocka_unit_test(test_live_calls),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    uv_run(&L, UV_RUN_NOWAIT);
    test_rmtree(data_dir);
    sandbox_shutdown();
    return rc;
}
