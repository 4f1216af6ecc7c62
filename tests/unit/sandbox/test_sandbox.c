/* test_sandbox.c — the sandbox's pieces (src/sandbox/): the command line
 * that starts a tool (namespaces, the read-only view, the private
 * directory, no network unless granted, seccomp, the helper's limits and
 * landlock, nothing of the environment on it), the refusal of bad specs,
 * the seccomp filter and the landlock probe; and, where bubblewrap works
 * on this machine, real calls: JSON in and out, ptrace and mount refused,
 * writes outside the private directory refused, a timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "test_util.h"

static const char *const sh_argv[] = {"sh", "-c", "cat"};

static sandbox_host fake_host(bool bwrap, int landlock)
{
    sandbox_host h = {.bwrap_ok = bwrap, .seccomp_ok = true, .landlock_abi = landlock};
    snprintf(h.bwrap_path, sizeof h.bwrap_path, "/usr/bin/bwrap");
    snprintf(h.init_path, sizeof h.init_path, "/opt/brigade/brigade-sandbox-init");
    return h;
}

static sandbox_spec base_spec(void)
{
    static const char *const env[] = {"PATH=/usr/bin:/bin", "SECRETISH=value-not-on-argv"};
    sandbox_spec s = {.argv = sh_argv, .argc = 3, .env = env, .n_env = 2,
                      .private_dir = "/data/sandbox/t/u", .network = false,
                      .limits = {.cpu_seconds = 5, .memory_bytes = 1 << 28, .open_files = 64,
                                 .file_bytes = 1 << 20, .processes = 16}};
    return s;
}

static int find(char **argv, const char *a)
{
    for (int i = 0; argv[i]; i++)
        if (!strcmp(argv[i], a)) return i;
    return -1;
}

static bool has_seq(char **argv, const char *a, const char *b, const char *c)
{
    for (int i = 0; argv[i]; i++)
        if (!strcmp(argv[i], a) && argv[i + 1] && !strcmp(argv[i + 1], b) &&
            (!c || (argv[i + 2] && !strcmp(argv[i + 2], c))))
            return true;
    return false;
}

static void test_argv_bwrap(void **state)
{
    (void)state;
    sandbox_host h = fake_host(true, 4);
    sandbox_spec s = base_spec();
    char err[256];
    h.run_uid = h.run_gid = SANDBOX_NOBODY;
    char **argv = sandbox_build_argv(&h, &s, true, "/sys/fs/cgroup/pids/b/s1/cgroup.procs", err, sizeof err);
    assert_non_null(argv);
    /* the helper joins the cgroup, then bwrap */
    assert_string_equal(argv[0], h.init_path);
    assert_true(has_seq(argv, "--cgroup-procs", "/sys/fs/cgroup/pids/b/s1/cgroup.procs", NULL));
    int bw = find(argv, "/usr/bin/bwrap");
    assert_true(bw > 0);
    for (const char *const *f = (const char *const[]){"--unshare-user", "--unshare-pid",
             "--unshare-ipc", "--unshare-uts", "--unshare-net", "--die-with-parent",
             "--new-session", NULL}; *f; f++)
        assert_true(find(argv, *f) > bw);
    assert_true(has_seq(argv, "--ro-bind", "/usr", "/usr"));
    /* brigade is root here: the private directory is staged where nobody
     * can reach it, and the chain becomes nobody before bwrap */
    assert_true(has_seq(argv, "--stage-work", "/data/sandbox/t/u", NULL));
    assert_true(has_seq(argv, "--bind", SANDBOX_STAGE_DIR, SANDBOX_WORK_DIR));
    assert_true(has_seq(argv, "--user", "65534:65534", NULL));
    assert_true(find(argv, "--user") < find(argv, "/usr/bin/bwrap"));
    assert_true(has_seq(argv, "--chdir", SANDBOX_WORK_DIR, NULL));
    assert_true(has_seq(argv, "--proc", "/proc", NULL));
    assert_true(has_seq(argv, "--tmpfs", "/tmp", NULL));
    assert_true(has_seq(argv, "--seccomp", "3", NULL));
    assert_true(has_seq(argv, "--remount-ro", "/", NULL));
    assert_true(has_seq(argv, "--cap-drop", "ALL", NULL));
    /* bwrap keeps the seccomp fd; the tool gets only 0, 1 and 2 */
    assert_true(has_seq(argv, "--close-from", "4", "--"));
    assert_true(find(argv, "--close-from") < bw);
    assert_true(has_seq(argv, "--ro-bind", h.init_path, SANDBOX_INIT_INSIDE));
    /* nothing secret of /etc, no home, no data directory but the user's own */
    for (int i = 0; argv[i]; i++) {
        assert_null(strstr(argv[i], "shadow"));
        assert_null(strstr(argv[i], "/root"));
        assert_null(strstr(argv[i], "/home"));
        assert_null(strstr(argv[i], "value-not-on-argv"));
        assert_false(!strcmp(argv[i], "/etc"));
    }
    assert_false(has_seq(argv, "--ro-bind", "/", "/"));
    /* inside: the helper's limits and landlock, then the tool */
    int in = find(argv, SANDBOX_INIT_INSIDE);
    assert_true(in > bw);
    assert_true(has_seq(argv, "--cpu", "5", NULL));
    assert_true(has_seq(argv, "--as", "268435456", NULL));
    assert_true(has_seq(argv, "--nofile", "64", NULL));
    assert_true(has_seq(argv, "--fsize", "1048576", NULL));
    assert_true(find(argv, "--landlock") > in);
    assert_true(find(argv, "--no-network") > in);
    assert_true(has_seq(argv, "--write", SANDBOX_WORK_DIR, NULL));
    int n = 0;
    while (argv[n]) n++;
    assert_string_equal(argv[n - 3], "sh");
    assert_string_equal(argv[n - 2], "-c");
    assert_string_equal(argv[n - 1], "cat");
    assert_string_equal(argv[n - 4], "--");
    sandbox_argv_free(argv);
}

static void test_argv_network_granted(void **state)
{
    (void)state;
    sandbox_host h = fake_host(true, 0);
    sandbox_spec s = base_spec();
    s.network = true;
    char err[256];
    char **argv = sandbox_build_argv(&h, &s, false, NULL, err, sizeof err);
    assert_non_null(argv);
    assert_int_equal(find(argv, "--user"), -1);   /* brigade is not root here */
    assert_true(has_seq(argv, "--bind", "/data/sandbox/t/u", SANDBOX_WORK_DIR));
    assert_int_equal(find(argv, "--unshare-net"), -1);
    assert_int_equal(find(argv, "--seccomp"), -1);
    assert_int_equal(find(argv, "--cgroup-procs"), -1);
    /* no landlock on this (fake) kernel: the helper is not asked for it */
    assert_int_equal(find(argv, "--landlock"), -1);
    assert_true(find(argv, "--unshare-user") > 0);
    sandbox_argv_free(argv);
}

static void test_argv_unsandboxed(void **state)
{
    (void)state;
    sandbox_host h = fake_host(false, 6);
    h.allow_unsandboxed = true;
    sandbox_spec s = base_spec();
    char err[256];
    char **argv = sandbox_build_argv(&h, &s, false, NULL, err, sizeof err);
    assert_non_null(argv);
    assert_int_equal(find(argv, "/usr/bin/bwrap"), -1);
    /* still limits and landlock, on the working directory (the private dir) */
    assert_true(has_seq(argv, "--cpu", "5", NULL));
    assert_true(has_seq(argv, "--write", ".", NULL));
    assert_true(find(argv, "--no-network") > 0);
    sandbox_argv_free(argv);
}

/* An MCP server's sandbox: its program files read-only, its directory at
 * its own path (the working directory and landlock's writable one), and
 * the PWD that bwrap's --chdir sets taken out of the environment. */
static void test_argv_read_only_and_work_inside(void **state)
{
    (void)state;
    sandbox_host h = fake_host(true, 6);
    sandbox_spec s = base_spec();
    static const char *const ro[] = {"/opt/mcp/node_modules", "/srv/share"};
    s.read_only = ro;
    s.n_read_only = 2;
    s.work_inside = "/var/lib/brigade/mcp/files/t/u";
    s.private_dir = "/var/lib/brigade/mcp/files/t/u";
    char err[256];
    char **argv = sandbox_build_argv(&h, &s, true, NULL, err, sizeof err);
    assert_non_null(argv);
    assert_true(has_seq(argv, "--ro-bind", "/opt/mcp/node_modules", "/opt/mcp/node_modules"));
    assert_true(has_seq(argv, "--ro-bind", "/srv/share", "/srv/share"));
    assert_true(has_seq(argv, "--bind", s.private_dir, s.work_inside));
    assert_true(has_seq(argv, "--chdir", s.work_inside, NULL));
    assert_true(has_seq(argv, "--write", s.work_inside, NULL));
    assert_false(has_seq(argv, "--write", SANDBOX_WORK_DIR, NULL));
    assert_true(has_seq(argv, "--unsetenv", "PWD", NULL));
    assert_true(find(argv, "--unsetenv") > find(argv, SANDBOX_INIT_INSIDE));
    /* read-only binds come before the root is made read-only */
    assert_true(find(argv, "/srv/share") < find(argv, "--remount-ro"));
    sandbox_argv_free(argv);

    /* refused: what would hide the sandbox's own directories or the
     * private one, the whole root, unclear paths */
    const char *const bad[] = {"relative", "/", "/proc/1", "/tmp", "/tmp/x", "/dev", "/opt/../etc",
                               "/opt//x", "/opt/x/", "/opt/./x", "/var/lib/brigade",
                               "/var/lib/brigade/mcp/files/t/u/sub", "/.brigade/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *one[] = {bad[i]};
        s.read_only = one;
        s.n_read_only = 1;
        argv = sandbox_build_argv(&h, &s, true, NULL, err, sizeof err);
        if (argv) fail_msg("read-only %s was accepted", bad[i]);
        assert_non_null(strstr(err, "read-only path"));
    }
    s.n_read_only = 0;
    const char *const bad_work[] = {"/", "/usr/x", "/etc", "/proc/w", "/tmp", "/a/../b", "rel"};
    for (size_t i = 0; i < sizeof bad_work / sizeof bad_work[0]; i++) {
        s.work_inside = bad_work[i];
        argv = sandbox_build_argv(&h, &s, true, NULL, err, sizeof err);
        if (argv) fail_msg("work_inside %s was accepted", bad_work[i]);
    }
    /* a tool declaring PWD keeps its own */
    static const char *const env_pwd[] = {"PATH=/usr/bin", "PWD=/declared"};
    s = base_spec();
    s.env = env_pwd;
    argv = sandbox_build_argv(&h, &s, true, NULL, err, sizeof err);
    assert_non_null(argv);
    assert_int_equal(find(argv, "--unsetenv"), -1);
    sandbox_argv_free(argv);
}

static void test_argv_bad_specs(void **state)
{
    (void)state;
    sandbox_host h = fake_host(true, 0);
    char err[256];
    sandbox_spec s = base_spec();
    s.argc = 0;
    assert_null(sandbox_build_argv(&h, &s, false, NULL, err, sizeof err));
    assert_non_null(strstr(err, "argv"));
    s = base_spec();
    s.private_dir = "relative/dir";
    assert_null(sandbox_build_argv(&h, &s, false, NULL, err, sizeof err));
    assert_non_null(strstr(err, "absolute"));
    static const char *const bad_env[] = {"NO_EQUALS"};
    s = base_spec();
    s.env = bad_env;
    s.n_env = 1;
    assert_null(sandbox_build_argv(&h, &s, false, NULL, err, sizeof err));
    static const char *const bad_name[] = {"1X=y"};
    s.env = bad_name;
    assert_null(sandbox_build_argv(&h, &s, false, NULL, err, sizeof err));
    s = base_spec();
    h.init_path[0] = '\0';
    assert_null(sandbox_build_argv(&h, &s, false, NULL, err, sizeof err));
    assert_non_null(strstr(err, "helper"));
}

static void test_seccomp_filter(void **state)
{
    (void)state;
    unsigned char *prog = NULL;
    size_t len = 0;
    char err[256];
    assert_true(sandbox_seccomp_bpf(&prog, &len, err, sizeof err));
    /* BPF instructions are 8 bytes each; the rules make dozens of them */
    assert_true(len >= 8 * 40);
    assert_int_equal(len % 8, 0);
    free(prog);
    const char *const *d = sandbox_seccomp_denied();
    const char *must[] = {"ptrace", "mount", "umount2", "kexec_load", "bpf", "keyctl", "add_key",
                          "request_key", "init_module", "finit_module", "perf_event_open",
                          "unshare", "setns", "process_vm_readv", "userfaultfd", "pivot_root"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        bool found = false;
        for (size_t j = 0; d[j]; j++) found = found || !strcmp(d[j], must[i]);
        if (!found) fail_msg("%s is not refused", must[i]);
    }
}

static void test_landlock_probe(void **state)
{
    (void)state;
    int abi = sandbox_landlock_abi();
    assert_true(abi >= 0);
    /* the probe agrees with the raw syscall */
    long raw = syscall(444, NULL, 0, 1u);
    assert_int_equal(abi, raw > 0 ? raw : 0);
}

/* ---- real runs, where this machine can ---- */

typedef struct got {
    int      done;
    bool     ok, timed_out;
    char     out[4096];
    char     why[512];
} got;

static void got_done(void *arg, const sandbox_result *r)
{
    got *g = arg;
    g->ok = r->ok;
    g->timed_out = r->timed_out;
    snprintf(g->out, sizeof g->out, "%s", r->out);
    snprintf(g->why, sizeof g->why, "%s", r->why ? r->why : "");
    g->done = 1;
}

static char private_root[256];

static bool live(void)
{
    const sandbox_host *h = sandbox_host_info();
    return h->bwrap_ok && h->init_path[0];
}

static void run_sh(const char *script, const char *input, uint32_t timeout_ms, got *g)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *argv[] = {"sh", "-c", script};
    static const char *const env[] = {"PATH=/usr/bin:/bin"};
    sandbox_spec s = {.argv = argv, .argc = 3, .env = env, .n_env = 1,
                      .private_dir = private_root, .label = "unit",
                      .limits = {.cpu_seconds = 5, .memory_bytes = 1ull << 30, .open_files = 64,
                                 .file_bytes = 1 << 20, .processes = 16}};
    char err[256];
    memset(g, 0, sizeof *g);
    sandbox_run_t *r = sandbox_run(&loop, &s, input, strlen(input), 4000, 1000, timeout_ms,
                                   got_done, g, err, sizeof err);
    if (!r) fail_msg("sandbox_run: %s", err);
    test_run_timed(&loop, &g->done, timeout_ms + 5000);
    test_spin(&loop, 200);   /* the cgroup's removal */
    assert_true(g->done);
    uv_loop_close(&loop);
}

static void test_live_json_roundtrip(void **state)
{
    (void)state;
    if (!live()) skip();
    got g;
    run_sh("read x; echo \"{\\\"got\\\":$x}\"", "{\"a\":1}\n", 10000, &g);
    assert_true(g.ok);
    assert_string_equal(g.out, "{\"got\":{\"a\":1}}\n");
}

static void test_live_refused(void **state)
{
    (void)state;
    if (!live()) skip();
    got g;
    /* mount is refused by seccomp (EPERM), so is a new user namespace;
     * writing outside /work and /tmp fails (read-only root, landlock) */
    run_sh("if unshare -U true 2>/dev/null; then echo unshare-ok; fi; "
           "if mount -t tmpfs x /tmp 2>/dev/null; then echo mount-ok; fi; "
           "if echo x > /usr/evil 2>/dev/null; then echo write-ok; fi; "
           "if echo x > /work/fine; then echo work-ok; fi; "
           "cat /proc/1/environ | tr '\\0' ' '; echo; hostname",
           "", 10000, &g);
    assert_true(g.ok);
    assert_null(strstr(g.out, "unshare-ok"));
    assert_null(strstr(g.out, "mount-ok"));
    assert_null(strstr(g.out, "write-ok"));
    assert_non_null(strstr(g.out, "work-ok"));
    assert_non_null(strstr(g.out, "sandbox"));
    /* pid 1 is the sandbox's own: its environment is the declared one */
    assert_null(strstr(g.out, "SANDBOX_INIT"));
}

static void test_live_timeout(void **state)
{
    (void)state;
    if (!live()) skip();
    got g;
    run_sh("sleep 30", "", 500, &g);
    assert_false(g.ok);
    assert_true(g.timed_out);
    assert_non_null(strstr(g.why, "in time"));
}

static void test_live_exit_status(void **state)
{
    (void)state;
    if (!live()) skip();
    got g;
    run_sh("echo oops >&2; exit 3", "", 10000, &g);
    assert_false(g.ok);
    assert_non_null(strstr(g.why, "status 3"));
    assert_non_null(strstr(g.why, "oops"));
}

static void test_live_cancel(void **state)
{
    (void)state;
    if (!live()) skip();
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *argv[] = {"sh", "-c", "sleep 30"};
    static const char *const env[] = {"PATH=/usr/bin:/bin"};
    sandbox_spec s = {.argv = argv, .argc = 3, .env = env, .n_env = 1,
                      .private_dir = private_root, .label = "unit",
                      .limits = {.cpu_seconds = 5, .processes = 16}};
    char err[256];
    got g = {0};
    uint64_t t0 = uv_hrtime();
    sandbox_run_t *r = sandbox_run(&loop, &s, "", 0, 4000, 1000, 30000, got_done, &g, err, sizeof err);
    if (!r) fail_msg("sandbox_run: %s", err);
    test_spin(&loop, 300);
    sandbox_run_cancel(r);
    /* the sandbox dies, its handles close and its cgroup goes, all without
     * calling done: then the loop has nothing left and closes */
    for (int i = 0; i < 60 && uv_loop_alive(&loop); i++) test_spin(&loop, 50);
    assert_false(g.done);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_true(uv_hrtime() - t0 < 10ull * 1000 * 1000 * 1000);
}

static void test_live_output_cut(void **state)
{
    (void)state;
    if (!live()) skip();
    got g;
    /* far more than the 4000-byte cap: stopped, marked cut */
    run_sh("head -c 1000000 /dev/zero | tr '\\0' a; sleep 20", "", 10000, &g);
    assert_false(g.ok);
    assert_false(g.timed_out);
    assert_non_null(strstr(g.why, "output passed 4000 bytes"));
    assert_int_equal(strlen(g.out), 4000);
}

int main(void)
{
    sandbox_settings set = {.init_path = getenv("SANDBOX_INIT")};
    sandbox_setup(&set);
    if (!test_tmpdir(private_root, sizeof private_root, "sandbox-unit")) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_bwrap),
        cmocka_unit_test(test_argv_network_granted),
        cmocka_unit_test(test_argv_unsandboxed),
        cmocka_unit_test(test_argv_bad_specs),
        cmocka_unit_test(test_argv_read_only_and_work_inside),
        cmocka_unit_test(test_seccomp_filter),
        cmocka_unit_test(test_landlock_probe),
        cmocka_unit_test(test_live_json_roundtrip),
        cmocka_unit_test(test_live_refused),
        cmocka_unit_test(test_live_timeout),
        cmocka_unit_test(test_live_exit_status),
        cmocka_unit_test(test_live_cancel),
        cmocka_unit_test(test_live_output_cut),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(private_root);
    sandbox_shutdown();
    return rc;
}
