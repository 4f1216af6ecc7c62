/* sandbox_argv.c — the command line that starts a sandboxed process: the
 * helper joining the pids cgroup, bubblewrap making the namespaces and the
 * filesystem view, then the helper again applying rlimits and landlock
 * before it executes the tool. Kept apart from spawning so the unit tests
 * can read exactly what would run.
 *
 * The filesystem a tool sees: /usr (and the /bin, /lib… links or
 * directories beside it) read-only; of /etc only what programs need to
 * run (users, name resolution, certificates, the dynamic linker's cache,
 * alternatives) — never shadow files, keys or brigade's own files; a fresh
 * /proc of its own pid namespace, a minimal /dev, an empty /tmp, and its
 * private directory read-write at /work. When brigade runs as root the
 * chain drops to an unprivileged user before bwrap; the helper first binds
 * the private directory at SANDBOX_STAGE_DIR in a mount namespace of the
 * chain's own, since that user cannot reach it through the data directory. Nothing else of the host: not
 * brigade's data directory, not other users' directories, not /root or
 * /home. The root itself is made read-only at the end.
 *
 * The environment is not on this command line: brigade starts the chain
 * with exactly the declared variables as its environment (bwrap passes its
 * own on), so a secret value never appears in a process list. */
#include "sandbox/sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/xalloc.h"

typedef struct argvb {
    char **v;
    size_t n, cap;
} argvb;

static void add(argvb *b, const char *s)
{
    if (b->n + 2 > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = xrealloc(b->v, b->cap * sizeof *b->v);
    }
    b->v[b->n++] = xstrdup(s);
    b->v[b->n] = NULL;
}

static void add2(argvb *b, const char *a, const char *c) { add(b, a); add(b, c); }
static void add3(argvb *b, const char *a, const char *c, const char *d) { add(b, a); add(b, c); add(b, d); }

static void addnum(argvb *b, const char *opt, unsigned long long v)
{
    char n[32];
    snprintf(n, sizeof n, "%llu", v);
    add2(b, opt, n);
}

void sandbox_argv_free(char **argv)
{
    if (!argv) return;
    for (char **p = argv; *p; p++) free(*p);
    free(argv);
}

/* The top-level system directories: on a merged-/usr system /bin, /lib…
 * are links into /usr and are recreated as links; otherwise bound. */
static void add_system(argvb *b)
{
    add3(b, "--ro-bind", "/usr", "/usr");
    static const char *const tops[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
    for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++) {
        char target[256];
        ssize_t n = readlink(tops[i], target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            add3(b, "--symlink", target, tops[i]);
        } else {
            add3(b, "--ro-bind-try", tops[i], tops[i]);
        }
    }
    /* What of /etc a program needs; the rest (shadow, ssh and TLS private
     * keys, anything an operator keeps there) stays out. */
    static const char *const etc[] = {
        "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/host.conf", "/etc/resolv.conf",
        "/etc/nsswitch.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols",
        "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
        "/etc/alternatives", "/etc/ssl/certs", "/etc/ca-certificates", "/etc/mime.types",
    };
    for (size_t i = 0; i < sizeof etc / sizeof etc[0]; i++) add3(b, "--ro-bind-try", etc[i], etc[i]);
}

static bool env_ok(const char *e)
{
    const char *eq = e ? strchr(e, '=') : NULL;
    if (!eq || eq == e) return false;
    for (const char *p = e; p < eq; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
              (p > e && *p >= '0' && *p <= '9')))
            return false;
    return true;
}

const char *sandbox_read_only_refusal(const char *p)
{
    if (!p || p[0] != '/') return "not an absolute path";
    size_t n = strlen(p);
    if (n == 1) return "the whole root would be visible";
    if (n > 1024) return "longer than 1024 bytes";
    if (p[n - 1] == '/') return "ends with /";
    /* a component that is empty, "." or "..": the path must say plainly
     * what it shows */
    for (const char *c = p + 1; c && *c;) {
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
            return "has an empty, \".\" or \"..\" component";
        c = e ? e + 1 : NULL;
    }
    /* what the sandbox makes itself: a path there would hide or replace it */
    static const char *const own[] = {"/proc", "/dev", "/tmp", "/.brigade"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        size_t l = strlen(own[i]);
        if (!strncmp(p, own[i], l) && (p[l] == '\0' || p[l] == '/')) return "the sandbox makes that directory itself";
    }
    return NULL;
}

static bool under(const char *a, const char *b)
{
    size_t l = strlen(b);
    return !strncmp(a, b, l) && (a[l] == '\0' || a[l] == '/');
}

static const char *work_dir(const sandbox_spec *s)
{
    return s->work_inside ? s->work_inside : SANDBOX_WORK_DIR;
}

/* The private directory's place inside: any clean absolute path but the
 * system's and the sandbox's own (/tmp is the sandbox's, a fresh tmpfs,
 * so a directory in it is fine). */
static const char *work_refusal(const char *p)
{
    if (!p || p[0] != '/' || !p[1]) return "not an absolute path below /";
    if (strlen(p) > 1024) return "longer than 1024 bytes";
    if (!strcmp(p, "/tmp")) return "is /tmp itself";
    for (const char *c = p + 1; c && *c;) {
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
            return "has an empty, \".\" or \"..\" component";
        c = e ? e + 1 : NULL;
    }
    static const char *const sys[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
                                      "/etc", "/proc", "/dev", "/.brigade"};
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (under(p, sys[i])) return "is a directory of the system or of the sandbox";
    return NULL;
}

static bool spec_ok(const sandbox_spec *s, char *err, size_t errlen)
{
    if (!s || !s->argv || s->argc == 0 || s->argc > SANDBOX_MAX_ARGS) {
        snprintf(err, errlen, "sandbox: argv must have 1 to %d entries", SANDBOX_MAX_ARGS);
        return false;
    }
    for (size_t i = 0; i < s->argc; i++)
        if (!s->argv[i] || (i == 0 && !s->argv[0][0])) {
            snprintf(err, errlen, "sandbox: argv[%zu] is missing", i);
            return false;
        }
    if (s->n_env > SANDBOX_MAX_ENV) {
        snprintf(err, errlen, "sandbox: more than %d environment variables", SANDBOX_MAX_ENV);
        return false;
    }
    for (size_t i = 0; i < s->n_env; i++)
        if (!env_ok(s->env[i])) {
            snprintf(err, errlen, "sandbox: env[%zu] is not NAME=value", i);
            return false;
        }
    if (s->n_read_only > SANDBOX_MAX_READ_ONLY) {
        snprintf(err, errlen, "sandbox: more than %d read-only paths", SANDBOX_MAX_READ_ONLY);
        return false;
    }
    for (size_t i = 0; i < s->n_read_only; i++) {
        const char *why = sandbox_read_only_refusal(s->read_only[i]);
        if (!why && (under(s->read_only[i], work_dir(s)) || under(work_dir(s), s->read_only[i])))
            why = "holds or lies in the private directory";
        if (why) {
            snprintf(err, errlen, "sandbox: read-only path %.200s: %s", s->read_only[i] ? s->read_only[i] : "(none)", why);
            return false;
        }
    }
    const char *wwhy = work_refusal(work_dir(s));
    if (wwhy) {
        snprintf(err, errlen, "sandbox: the private directory's place inside %s", wwhy);
        return false;
    }
    if (!s->private_dir || s->private_dir[0] != '/') {
        snprintf(err, errlen, "sandbox: the private directory must be an absolute path");
        return false;
    }
    return true;
}

/* The helper's inner options: limits, then landlock. */
static void add_inner(argvb *b, const sandbox_host *h, const sandbox_spec *s, bool inside)
{
    const sandbox_limits *l = &s->limits;
    /* only stdin, stdout and stderr reach the tool */
    add2(b, "--close-from", "3");
    /* bwrap's --chdir sets PWD: the environment is what was declared */
    bool pwd = false;
    for (size_t i = 0; i < s->n_env; i++) pwd = pwd || !strncmp(s->env[i], "PWD=", 4);
    if (inside && !pwd) add2(b, "--unsetenv", "PWD");
    if (l->cpu_seconds) addnum(b, "--cpu", l->cpu_seconds);
    if (l->open_files) addnum(b, "--nofile", l->open_files);
    if (l->file_bytes) addnum(b, "--fsize", l->file_bytes);
    /* RLIMIT_NPROC counts every process of the (real) user and binds only
     * a non-root one: the pids cgroup is the limit that holds; this one
     * is a second bound where brigade does not run as root. */
    if (l->processes && !h->cgroup_dir[0] && (geteuid() != 0 || h->run_uid))
        addnum(b, "--nproc", l->processes);
    if (l->memory_bytes) addnum(b, "--as", l->memory_bytes);
    if (h->landlock_abi > 0) {
        add(b, "--landlock");
        if (!s->network) add(b, "--no-network");
        /* unsandboxed, the working directory is the private directory: "."
         * opens even where its parents are closed to the tool's user */
        add2(b, "--write", inside ? work_dir(s) : ".");
        add2(b, "--write", "/tmp");
        add2(b, "--write", "/dev");
    }
}

char **sandbox_build_argv(const sandbox_host *h, const sandbox_spec *s, bool with_seccomp,
                          const char *cgroup_procs, char *err, size_t errlen)
{
    if (!h || !spec_ok(s, err, errlen)) {
        if (!h) snprintf(err, errlen, "sandbox: not set up");
        return NULL;
    }
    if (!h->init_path[0]) {
        snprintf(err, errlen, "sandbox: the helper brigade-sandbox-init was not found");
        return NULL;
    }
    argvb b = {0};
    char user[48];
    snprintf(user, sizeof user, "%u:%u", h->run_uid, h->run_gid);
    add(&b, h->init_path);
    if (cgroup_procs) add2(&b, "--cgroup-procs", cgroup_procs);
    if (h->run_uid && h->bwrap_ok) add2(&b, "--stage-work", s->private_dir);
    if (h->run_uid) add2(&b, "--user", user);
    if (!h->bwrap_ok) {
        /* unsandboxed, as the operator allowed: limits and landlock only */
        add_inner(&b, h, s, false);
        add(&b, "--");
        for (size_t i = 0; i < s->argc; i++) add(&b, s->argv[i]);
        return b.v;
    }
    /* bwrap gets stdin, stdout, stderr and the seccomp program */
    addnum(&b, "--close-from", SANDBOX_FD_SECCOMP + 1);
    add(&b, "--");
    add(&b, h->bwrap_path);
    add(&b, "--unshare-user");
    /* no capability even inside its own user namespace */
    add2(&b, "--cap-drop", "ALL");
    add(&b, "--unshare-pid");
    add(&b, "--unshare-ipc");
    add(&b, "--unshare-uts");
    add(&b, "--unshare-cgroup-try");
    if (!s->network) add(&b, "--unshare-net");
    add(&b, "--die-with-parent");
    add(&b, "--new-session");
    add2(&b, "--hostname", "sandbox");
    add_system(&b);
    add2(&b, "--proc", "/proc");
    add2(&b, "--dev", "/dev");
    add2(&b, "--tmpfs", "/tmp");
    add3(&b, "--bind", h->run_uid ? SANDBOX_STAGE_DIR : s->private_dir, work_dir(s));
    add2(&b, "--chdir", work_dir(s));
    /* the program's own files (a missing one makes the start fail: the
     * server could not run without it) */
    for (size_t i = 0; i < s->n_read_only; i++) add3(&b, "--ro-bind", s->read_only[i], s->read_only[i]);
    add3(&b, "--ro-bind", h->init_path, SANDBOX_INIT_INSIDE);
    add2(&b, "--remount-ro", "/");
    if (with_seccomp) addnum(&b, "--seccomp", SANDBOX_FD_SECCOMP);
    add(&b, "--");
    add(&b, SANDBOX_INIT_INSIDE);
    add_inner(&b, h, s, true);
    add(&b, "--");
    for (size_t i = 0; i < s->argc; i++) add(&b, s->argv[i]);
    return b.v;
}
