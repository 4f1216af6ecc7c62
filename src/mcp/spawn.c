/* spawn.c — the one place brigade starts an MCP server's process: the
 * program, its arguments (with {workdir} filled in), the whole environment
 * it gets and its working directory go in; nothing else of brigade does
 * (no inherited descriptors beyond the three pipes, no inherited
 * environment). By default the process runs in the sandbox (src/sandbox/,
 * docs/sandbox.md): its own namespaces, a read-only view of the system
 * plus the server's own program files, the instance's directory as its
 * only writable one (at its own path), no network unless granted, seccomp,
 * landlock, rlimits and a pids cgroup. `sandbox: false` — the operator's
 * explicit choice, warned about at start — spawns it plainly, in its own
 * process group. */
#include "mcp/mcp_internal.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "util/log.h"
#include "util/xalloc.h"

/* Defaults of a server's sandbox limits (`sandbox.limits`, docs/config.md).
 * A server lives for hours, so no CPU-time bound unless the operator sets
 * one; Node reserves much address space, so 2 GiB. */
#define MCP_SANDBOX_MEMORY     (2048ull << 20)
#define MCP_SANDBOX_OPEN_FILES 1024

struct mcp_child {
    uv_process_t      proc;       /* unsandboxed */
    sandbox_proc     *sp;         /* sandboxed */
    mcp_child_exit_fn on_exit;
    void             *arg;
    int               pid;
    bool              exited;
};

/* `{workdir}` in an argument or an environment value is the instance's
 * own directory as the process sees it (/work in the sandbox). */
static char *fill(const char *s, const char *workdir)
{
    static const char tok[] = "{workdir}";
    size_t n = 0, tl = sizeof tok - 1, wl = strlen(workdir);
    for (const char *p = strstr(s, tok); p; p = strstr(p + tl, tok)) n++;
    char *o = xmalloc(strlen(s) + n * wl + 1), *w = o;
    for (const char *p = s;;) {
        const char *q = strstr(p, tok);
        if (!q) {
            strcpy(w, p);
            break;
        }
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        memcpy(w, workdir, wl);
        w += wl;
        p = q + tl;
    }
    return o;
}

/* The child's environment: PATH (brigade's, so a command name resolves as
 * the operator expects) and what the configuration declares — nothing
 * else of brigade's environment, which holds its secrets. */
static char **make_env(const mcp_server_cfg *cfg, const char *workdir, size_t *n_out)
{
    char **env = xcalloc(cfg->n_env + 2, sizeof *env);
    size_t n = 0;
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    size_t plen = strlen(path);
    env[n] = xmalloc(plen + 6);
    snprintf(env[n++], plen + 6, "PATH=%s", path);
    for (size_t i = 0; i < cfg->n_env; i++) {
        char *v = fill(cfg->env_values[i], workdir);
        size_t l = strlen(cfg->env_names[i]) + strlen(v) + 2;
        env[n] = xmalloc(l);
        snprintf(env[n++], l, "%s=%s", cfg->env_names[i], v);
        explicit_bzero(v, strlen(v));
        free(v);
    }
    *n_out = n;
    return env;
}

static void strv_free(char **v, bool secret)
{
    for (char **e = v; e && *e; e++) {
        if (secret) explicit_bzero(*e, strlen(*e));
        free(*e);
    }
    free(v);
}

/* The command's real path: as given when it has a '/', else the first
 * executable of that name in brigade's PATH. false when there is none. */
static bool resolve_command(const char *cmd, char *out, size_t outlen)
{
    char cand[PATH_MAX];
    if (strchr(cmd, '/')) return realpath(cmd, out) && access(out, X_OK) == 0 && outlen >= PATH_MAX;
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        const char *e = strchr(p, ':');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l > 0 && l + strlen(cmd) + 2 < sizeof cand) {
            snprintf(cand, sizeof cand, "%.*s/%s", (int)l, p, cmd);
            struct stat st;
            if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0 &&
                outlen >= PATH_MAX && realpath(cand, out))
                return true;
        }
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* Already in the sandbox's view of the system. */
static bool in_system(const char *p)
{
    static const char *const sys[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
        size_t l = strlen(sys[i]);
        if (!strncmp(p, sys[i], l) && (p[l] == '\0' || p[l] == '/')) return true;
    }
    return false;
}

/* a is b or lies beneath it */
static bool within(const char *a, const char *b)
{
    size_t l = strlen(b);
    return !strncmp(a, b, l) && (a[l] == '\0' || a[l] == '/' || (l == 1 && b[0] == '/'));
}

typedef struct ro_list {
    char  *v[SANDBOX_MAX_READ_ONLY];
    size_t n;
} ro_list;

/* Add `dir` (a real path) unless it is visible already; never the data
 * directory, anything in it, or anything holding it. */
static bool ro_add(ro_list *r, const char *dir, const char *data_dir, bool configured,
                   const char *server, char *err, size_t errlen)
{
    const char *why = data_dir[0] && (within(dir, data_dir) || within(data_dir, dir))
                          ? "it is, holds or lies in brigade's data directory"
                          : sandbox_read_only_refusal(dir);
    if (why) {
        if (configured) {
            snprintf(err, errlen, "sandbox.read_only %.200s: %s", dir, why);
            return false;
        }
        log_warn("mcp %s: %.200s is not shown in the sandbox: %s", server, dir, why);
        return true;
    }
    if (!configured && in_system(dir)) return true;
    /* found, not chosen: never a whole top-level directory (a file given
     * as /srv/x.json must not show all of /srv) nor anything of /etc —
     * the operator lists such paths in sandbox.read_only */
    if (!configured && (!strchr(dir + 1, '/') || within(dir, "/etc"))) {
        log_warn("mcp %s: %.200s is not shown in the sandbox automatically (list it in "
                 "sandbox.read_only to show it)", server, dir);
        return true;
    }
    for (size_t i = 0; i < r->n; i++)
        if (within(dir, r->v[i])) return true;
    if (r->n == SANDBOX_MAX_READ_ONLY) {
        snprintf(err, errlen, "more than %d read-only paths for the sandbox", SANDBOX_MAX_READ_ONLY);
        return false;
    }
    r->v[r->n++] = xstrdup(dir);
    return true;
}

/* The directory to show for a program file at real path `file`: the
 * outermost node_modules it lies in (its package and the packages it
 * needs), else the directory holding it. */
static void program_dir(const char *file, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", file);
    char *nm = strstr(out, "/node_modules/");
    if (nm) {
        nm[strlen("/node_modules")] = '\0';
        return;
    }
    char *slash = strrchr(out, '/');
    if (slash && slash != out) *slash = '\0';
    else snprintf(out, outlen, "/");
}

/* The read-only paths of a server: the configured ones, the command's
 * directory, and the directory of each argument that is an absolute path
 * to a file (its script). */
static bool read_only_paths(const mcp_server_cfg *cfg, const char *command, char **args,
                            const char *data_dir, ro_list *r, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_sandbox_read_only; i++) {
        char real[PATH_MAX];
        /* shown at the path the operator wrote, which is what the server
         * is told; a link in it would show something else */
        if (!realpath(cfg->sandbox_read_only[i], real)) {
            snprintf(err, errlen, "sandbox.read_only %.200s: %s", cfg->sandbox_read_only[i], strerror(errno));
            return false;
        }
        if (strcmp(real, cfg->sandbox_read_only[i]) != 0) {
            snprintf(err, errlen, "sandbox.read_only %.200s: is or passes through a symbolic link (to %.200s)",
                     cfg->sandbox_read_only[i], real);
            return false;
        }
        if (!ro_add(r, real, data_dir, true, cfg->name, err, errlen)) return false;
    }
    char dir[PATH_MAX];
    program_dir(command, dir, sizeof dir);
    if (!ro_add(r, dir, data_dir, false, cfg->name, err, errlen)) return false;
    for (size_t i = 0; i < cfg->n_args; i++) {
        struct stat st;
        char real[PATH_MAX];
        if (args[i][0] != '/' || stat(args[i], &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (!realpath(args[i], real)) continue;
        program_dir(real, dir, sizeof dir);
        if (!ro_add(r, dir, data_dir, false, cfg->name, err, errlen)) return false;
        /* reached through a link: the path as given must resolve inside too */
        program_dir(args[i], dir, sizeof dir);
        if (strcmp(real, args[i]) != 0 && realpath(dir, real) && !strcmp(real, dir) &&
            !ro_add(r, dir, data_dir, false, cfg->name, err, errlen))
            return false;
    }
    return true;
}

/* --- the two kinds of child --- */

static void child_closed(uv_handle_t *h) { free(h->data); }

static void plain_exited(uv_process_t *p, int64_t status, int sig)
{
    mcp_child *c = p->data;
    c->exited = true;
    c->on_exit(c->arg, status, sig);
    uv_close((uv_handle_t *)&c->proc, child_closed);
}

static void sandbox_exited(sandbox_proc *p, int64_t status, int sig, void *arg)
{
    (void)p;
    mcp_child *c = arg;
    c->exited = true;
    c->sp = NULL;   /* the sandbox frees itself after this */
    c->on_exit(c->arg, status, sig);
    free(c);
}

static mcp_child *spawn_plain(uv_loop_t *loop, const mcp_server_cfg *cfg, const char *workdir,
                              uv_pipe_t *in, uv_pipe_t *out, uv_pipe_t *errp, mcp_child *c,
                              char *err, size_t errlen)
{
    char **argv = xcalloc(cfg->n_args + 2, sizeof *argv);
    argv[0] = xstrdup(cfg->command);
    for (size_t i = 0; i < cfg->n_args; i++) argv[i + 1] = fill(cfg->args[i], workdir);
    size_t n_env;
    char **env = make_env(cfg, workdir, &n_env);
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)errp},
    };
    uv_process_options_t opt = {
        .exit_cb = plain_exited,
        .file = argv[0],
        .args = argv,
        .env = env,             /* never NULL: NULL would mean "brigade's own" */
        .cwd = cfg->cwd ? cfg->cwd : workdir,
        .stdio_count = 3,
        .stdio = stdio,
        /* its own process group: a stop reaches what it started too */
        .flags = UV_PROCESS_DETACHED,
    };
    c->proc.data = c;
    int rc = uv_spawn(loop, &c->proc, &opt);
    strv_free(argv, false);
    strv_free(env, true);
    if (rc != 0) {
        snprintf(err, errlen, "could not start %.200s: %s", cfg->command, uv_strerror(rc));
        /* uv_spawn initialises the process handle even when it fails */
        uv_close((uv_handle_t *)&c->proc, child_closed);
        return NULL;
    }
    c->pid = c->proc.pid;
    return c;
}

static mcp_child *spawn_sandboxed(uv_loop_t *loop, const mcp_server_cfg *cfg, const char *workdir,
                                  const char *mcp_root, uv_pipe_t *in, uv_pipe_t *out,
                                  uv_pipe_t *errp, mcp_child *c, char *err, size_t errlen)
{
    char why[300];
    if (!sandbox_can_run(why, sizeof why)) {
        snprintf(err, errlen, "it cannot run here: %s (or the operator sets sandbox: false on it)", why);
        free(c);
        return NULL;
    }
    char command[PATH_MAX];
    if (!resolve_command(cfg->command, command, sizeof command)) {
        snprintf(err, errlen, "could not start %.200s: no such file or directory", cfg->command);
        free(c);
        return NULL;
    }
    if (cfg->n_args + 1 > SANDBOX_MAX_ARGS || cfg->n_env + 1 > SANDBOX_MAX_ENV) {
        snprintf(err, errlen, "the sandbox takes at most %d arguments and %d environment variables",
                 SANDBOX_MAX_ARGS - 1, SANDBOX_MAX_ENV - 1);
        free(c);
        return NULL;
    }
    /* The instance's directory is at its own path inside too: {workdir}
     * means the same in and out (and in the process list), and what a
     * server reports as a path is the host's; nothing else of the data
     * directory is there, its parents are empty directories of the
     * sandbox's own root. */
    char **argv = xcalloc(cfg->n_args + 2, sizeof *argv);
    argv[0] = xstrdup(command);
    for (size_t i = 0; i < cfg->n_args; i++) argv[i + 1] = fill(cfg->args[i], workdir);
    size_t n_env;
    char **env = make_env(cfg, workdir, &n_env);
    /* the data directory is the parent of its mcp/ (the hub's root) */
    char data_dir[PATH_MAX];
    snprintf(data_dir, sizeof data_dir, "%s", mcp_root ? mcp_root : "");
    char *slash = strrchr(data_dir, '/');
    if (slash && slash != data_dir) *slash = '\0';
    ro_list ro = {0};
    mcp_child *ret = NULL;
    if (read_only_paths(cfg, command, argv + 1, data_dir, &ro, err, errlen)) {
        const command_limits_cfg *l = &cfg->sandbox_limits;
        char label[64];
        snprintf(label, sizeof label, "mcp %s", cfg->name);
        sandbox_spec spec = {
            .argv = (const char *const *)argv, .argc = cfg->n_args + 1,
            .env = (const char *const *)env, .n_env = n_env,
            .private_dir = workdir, .work_inside = workdir, .network = cfg->sandbox_network,
            .read_only = (const char *const *)ro.v, .n_read_only = ro.n,
            .label = label,
            .limits = {
                .cpu_seconds = l->cpu_seconds,
                .memory_bytes = l->memory_mb ? (uint64_t)l->memory_mb << 20 : MCP_SANDBOX_MEMORY,
                .open_files = l->open_files ? l->open_files : MCP_SANDBOX_OPEN_FILES,
                .file_bytes = l->file_size_mb ? (uint64_t)l->file_size_mb << 20 : SANDBOX_DEFAULT_FILE_BYTES,
                .processes = l->processes ? l->processes : SANDBOX_DEFAULT_PROCESSES,
            },
        };
        c->sp = sandbox_spawn(loop, &spec, in, out, errp, sandbox_exited, c, why, sizeof why);
        if (c->sp) {
            c->pid = sandbox_pid(c->sp);
            ret = c;
        } else {
            snprintf(err, errlen, "could not start %.200s: %s", cfg->command, why);
        }
    }
    for (size_t i = 0; i < ro.n; i++) free(ro.v[i]);
    strv_free(argv, false);
    strv_free(env, true);
    if (!ret) free(c);
    return ret;
}

mcp_child *mcp_spawn(uv_loop_t *loop, const mcp_server_cfg *cfg, const char *workdir,
                     const char *mcp_root, uv_pipe_t *in, uv_pipe_t *out, uv_pipe_t *errp,
                     mcp_child_exit_fn on_exit, void *arg, char *err, size_t errlen)
{
    mcp_child *c = xcalloc(1, sizeof *c);
    c->on_exit = on_exit;
    c->arg = arg;
    if (!cfg->sandbox) return spawn_plain(loop, cfg, workdir, in, out, errp, c, err, errlen);
    return spawn_sandboxed(loop, cfg, workdir, mcp_root, in, out, errp, c, err, errlen);
}

void mcp_child_signal(mcp_child *c, int sig)
{
    if (!c || c->exited) return;
    if (c->sp && sig == SIGKILL) {
        sandbox_kill(c->sp);   /* its process group, and everything in its cgroup */
        return;
    }
    /* the process group: for a sandbox, bwrap outside, whose end takes the
     * pid namespace and everything in it (--die-with-parent) */
    kill(-c->pid, sig);
}
