/* sandbox_start.c — how long a sandboxed process takes to start: N
 * sequential one-shot runs (src/sandbox/ sandbox_run) of a trivial program,
 * timed from the call to its result, with every layer the machine offers
 * (bwrap namespaces, seccomp, landlock, the pids cgroup, rlimits); and the
 * same program started plainly through uv_spawn, for the baseline. Prints
 * p50, p90, p99 and max in milliseconds.
 *
 *   build/tests/unit/sandbox/sandbox_start [N] [program args…]
 *   (default: 50 runs of /bin/true; e.g. `50 node -e 0` for a node tool)
 *
 * Needs the helper: SANDBOX_INIT=build/brigade-sandbox-init. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sandbox/sandbox.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *ms, int n)
{
    qsort(ms, (size_t)n, sizeof *ms, cmp);
    printf("%-28s n=%d  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", what, n,
           ms[n / 2], ms[(n * 9) / 10], ms[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], ms[n - 1]);
}

static int done_flag;
static bool done_ok;

static void on_done(void *arg, const sandbox_result *r)
{
    (void)arg;
    done_ok = r->ok;
    if (!r->ok) fprintf(stderr, "run failed: %s\n", r->why);
    done_flag = 1;
}

static void on_plain_exit(uv_process_t *p, int64_t st, int sig)
{
    (void)st;
    (void)sig;
    done_flag = 1;
    uv_close((uv_handle_t *)p, NULL);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 50;
    if (n < 1 || n > 10000) n = 50;
    const char *def[] = {"/bin/true"};
    const char *const *prog = argc > 2 ? (const char *const *)argv + 2 : def;
    size_t progc = argc > 2 ? (size_t)(argc - 2) : 1;

    char dir[] = "/tmp/sandbox-bench-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    sandbox_settings set = {.init_path = getenv("SANDBOX_INIT"), .data_dir = dir};
    sandbox_setup(&set);
    const sandbox_host *h = sandbox_host_info();
    printf("layers: bwrap %s, seccomp %s, landlock ABI %d, pids cgroup %s\n",
           h->bwrap_ok ? "yes" : "no", h->seccomp_ok ? "yes" : "no", h->landlock_abi,
           h->cgroup_dir[0] ? "yes" : "no");
    char priv[1024];
    if (!sandbox_private_dir("bench", "tenant", "user", priv, sizeof priv)) return 1;

    uv_loop_t loop;
    uv_loop_init(&loop);
    static const char *const env[] = {"PATH=/usr/bin:/bin"};
    sandbox_spec spec = {.argv = prog, .argc = progc, .env = env, .n_env = 1,
                         .private_dir = priv, .label = "bench",
                         .limits = {.cpu_seconds = 10, .memory_bytes = SANDBOX_DEFAULT_MEMORY,
                                    .open_files = 256, .file_bytes = 1 << 20, .processes = 64}};
    double *ms = calloc((size_t)n, sizeof *ms);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char err[256];
        done_flag = 0;
        uint64_t t0 = uv_hrtime();
        if (!sandbox_run(&loop, &spec, "{}\n", 3, 65536, 4096, 10000, on_done, NULL, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        while (!done_flag) uv_run(&loop, UV_RUN_ONCE);
        ms[i] = (double)(uv_hrtime() - t0) / 1e6;
        ok += done_ok;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    report("sandboxed (all layers)", ms, n);
    for (int i = 0; i < n; i++) {
        uv_process_t p;
        char *args[SANDBOX_MAX_ARGS + 1];
        for (size_t j = 0; j < progc && j < SANDBOX_MAX_ARGS; j++) args[j] = (char *)prog[j];
        args[progc] = NULL;
        uv_stdio_container_t io[3] = {{.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_IGNORE}};
        uv_process_options_t o = {.exit_cb = on_plain_exit, .file = args[0], .args = args,
                                  .stdio = io, .stdio_count = 3};
        done_flag = 0;
        uint64_t t0 = uv_hrtime();
        if (uv_spawn(&loop, &p, &o) != 0) return 1;
        while (!done_flag) uv_run(&loop, UV_RUN_ONCE);
        ms[i] = (double)(uv_hrtime() - t0) / 1e6;
    }
    report("plain uv_spawn (baseline)", ms, n);
    /* let the last cgroups go */
    uint64_t until = uv_hrtime() + 500000000ull;
    while (uv_hrtime() < until && uv_run(&loop, UV_RUN_NOWAIT)) {}
    sandbox_shutdown();
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", dir);
    printf("%d of %d sandboxed runs succeeded\n", ok, n);
    free(ms);
    return ok == n ? 0 : 1;
}
