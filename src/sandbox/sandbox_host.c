/* sandbox_host.c — what this machine offers the sandbox, found once at
 * start: bubblewrap with working user namespaces, a seccomp filter that
 * builds, landlock's ABI, and a pids cgroup brigade may create children
 * in. Each finding is logged, so an operator sees at start which layers
 * hold (docs/sandbox.md). Also the per-sandbox cgroups: made before a
 * sandbox starts, emptied by SIGKILL, removed after. */
#include "sandbox/sandbox_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <grp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

static sandbox_host host;
static unsigned char *bpf_prog;
static size_t bpf_len;
static atomic_uint cgroup_seq;

const sandbox_host *sandbox_host_info(void) { return &host; }

const unsigned char *sandbox_bpf(size_t *len)
{
    *len = bpf_len;
    return bpf_prog;
}

/* Run argv with an empty environment and no output, as the user tools run
 * as; its exit status, or -1 if it did not finish within two seconds
 * (then it is killed). At start only: fork is safe here. */
static int run_quietly(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        if (host.run_uid && (setgroups(0, NULL) != 0 || setgid(host.run_gid) != 0 ||
                             setuid(host.run_uid) != 0))
            _exit(126);
        char *envp[] = {NULL};
        execve(argv[0], argv, envp);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static bool executable(const char *p) { return p && p[0] == '/' && access(p, X_OK) == 0; }

static void find_bwrap(const char *given)
{
    if (given) {
        snprintf(host.bwrap_path, sizeof host.bwrap_path, "%s", given);
    } else if (executable("/usr/bin/bwrap")) {
        snprintf(host.bwrap_path, sizeof host.bwrap_path, "/usr/bin/bwrap");
    } else {
        const char *path = getenv("PATH");
        char dir[256];
        for (const char *p = path; p && *p;) {
            size_t n = strcspn(p, ":");
            if (n && n < sizeof dir) {
                snprintf(dir, sizeof dir, "%.*s/bwrap", (int)n, p);
                if (executable(dir)) {
                    snprintf(host.bwrap_path, sizeof host.bwrap_path, "%s", dir);
                    break;
                }
            }
            p += n + (p[n] == ':');
        }
    }
    if (!executable(host.bwrap_path)) {
        log_warn("sandbox: bubblewrap (bwrap) not found%s%s", given ? " at " : "", given ? given : "");
        host.bwrap_path[0] = '\0';
        return;
    }
    /* The namespaces a sandbox uses, tried once for real. */
    char *argv[] = {host.bwrap_path, "--unshare-user", "--unshare-pid", "--unshare-net",
                    "--unshare-ipc", "--unshare-uts", "--ro-bind", "/", "/", "--proc", "/proc",
                    "--dev", "/dev", "--die-with-parent", "--", "/bin/true", NULL};
    int rc = run_quietly(argv);
    host.bwrap_ok = rc == 0;
    if (!host.bwrap_ok)
        log_warn("sandbox: %s cannot create user, pid and network namespaces here "
                 "(unprivileged user namespaces disabled?)", host.bwrap_path);
}

static void find_init(const char *given)
{
    char self[512];
    if (given) {
        snprintf(host.init_path, sizeof host.init_path, "%s", given);
    } else {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
            self[n] = '\0';
            char *slash = strrchr(self, '/');
            if (slash) *slash = '\0';
            snprintf(host.init_path, sizeof host.init_path, "%.480s/brigade-sandbox-init", self);
        }
    }
    if (!executable(host.init_path)) {
        log_warn("sandbox: the helper %s is missing: tool processes cannot start",
                 host.init_path[0] ? host.init_path : "brigade-sandbox-init");
        host.init_path[0] = '\0';
    }
}

static bool write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text);
}

/* The pids controller's directory of this process: cgroup v1's
 * "N:pids:/path" or v2's "0::/path" where the v2 root offers pids. */
static bool cgroup_base(char *out, size_t outlen)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) return false;
    char line[512], v2[512] = "";
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (!strcmp(ctrls, "pids")) {
            snprintf(out, outlen, "/sys/fs/cgroup/pids%s", strcmp(path, "/") ? path : "");
            found = true;
        } else if (!ctrls[0]) {
            snprintf(v2, sizeof v2, "%s", strcmp(path, "/") ? path : "");
        }
    }
    fclose(f);
    if (found) return true;
    FILE *c = fopen("/sys/fs/cgroup/cgroup.controllers", "re");
    if (!c) return false;
    char ctl[256] = "";
    bool pids = fgets(ctl, sizeof ctl, c) && strstr(ctl, "pids");
    fclose(c);
    if (!pids) return false;
    snprintf(out, outlen, "/sys/fs/cgroup%s", v2);
    return true;
}

static void find_cgroup(void)
{
    char base[400], dir[512], probe[600];
    if (!cgroup_base(base, sizeof base)) {
        log_warn("sandbox: no pids cgroup found: a tool's process count is bounded only by "
                 "RLIMIT_NPROC (which does not bind root) and its timeout");
        return;
    }
    snprintf(dir, sizeof dir, "%.400s/brigade-%ld", base, (long)getpid());
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_warn("sandbox: cannot create a pids cgroup under %s (%s): a tool's process count is "
                 "bounded only by RLIMIT_NPROC and its timeout", base, strerror(errno));
        return;
    }
    /* cgroup v2 hands the controller down explicitly; v1 has no such file */
    snprintf(probe, sizeof probe, "%s/cgroup.subtree_control", dir);
    if (access(probe, F_OK) == 0) write_file(probe, "+pids");
    snprintf(probe, sizeof probe, "%s/probe", dir);
    bool ok = mkdir(probe, 0700) == 0 || errno == EEXIST;
    char max[640];
    snprintf(max, sizeof max, "%s/pids.max", probe);
    ok = ok && write_file(max, "8");
    rmdir(probe);
    if (!ok) {
        rmdir(dir);
        log_warn("sandbox: the cgroup %s has no usable pids controller: a tool's process count "
                 "is bounded only by RLIMIT_NPROC and its timeout", base);
        return;
    }
    /* made again on the first sandbox: a brigade that never runs a tool
     * (or is killed) leaves nothing behind */
    rmdir(dir);
    snprintf(host.cgroup_dir, sizeof host.cgroup_dir, "%s", dir);
}

void sandbox_setup(const sandbox_settings *s)
{
    sandbox_settings none = {0};
    if (!s) s = &none;
    memset(&host, 0, sizeof host);
    host.allow_unsandboxed = s->allow_unsandboxed;
    /* brigade as root: tools run as nobody, so that even the processes
     * of a sandbox are no one on the host */
    if (geteuid() == 0) host.run_uid = host.run_gid = SANDBOX_NOBODY;
    if (s->data_dir && s->data_dir[0]) {
        /* absolute: bwrap binds it, and the process's cwd may change */
        char abs[4096];
        if (s->data_dir[0] == '/') snprintf(abs, sizeof abs, "%s", s->data_dir);
        else if (getcwd(abs, sizeof abs - 600))
            snprintf(abs + strlen(abs), sizeof abs - strlen(abs), "/%.500s", s->data_dir);
        else abs[0] = '\0';
        if (abs[0] && strlen(abs) + 9 < sizeof host.private_root)
            snprintf(host.private_root, sizeof host.private_root, "%.500s/sandbox", abs);
    }
    find_init(s->init_path);
    find_bwrap(s->bwrap_path);
    char err[256];
    free(bpf_prog);
    bpf_prog = NULL;
    host.seccomp_ok = sandbox_seccomp_bpf(&bpf_prog, &bpf_len, err, sizeof err);
    if (!host.seccomp_ok) log_warn("sandbox: %s", err);
    host.landlock_abi = sandbox_landlock_abi();
    find_cgroup();
    log_info("sandbox: bwrap %s, seccomp %s, landlock %s (ABI %d), pids cgroup %s, tools run as %s",
             host.bwrap_ok ? "ok" : "unavailable", host.seccomp_ok ? "ok" : "unavailable",
             host.landlock_abi ? "ok" : "absent", host.landlock_abi,
             host.cgroup_dir[0] ? host.cgroup_dir : "none",
             host.run_uid ? "uid 65534 (brigade is root)" : "brigade's user");
    if (!host.bwrap_ok && host.allow_unsandboxed)
        log_warn("sandbox: tool processes will run WITHOUT namespaces (sandbox.allow_unsandboxed): "
                 "they can see the host's files, processes and network");
}

bool sandbox_can_run(char *why, size_t whylen)
{
    if (!host.init_path[0]) {
        snprintf(why, whylen, "the sandbox helper brigade-sandbox-init is missing");
        return false;
    }
    if (host.bwrap_ok && host.seccomp_ok) return true;
    if (host.allow_unsandboxed) return true;
    snprintf(why, whylen, "this machine cannot sandbox tool processes (%s); the operator may "
             "allow running them unsandboxed (sandbox.allow_unsandboxed)",
             !host.bwrap_ok ? "no bubblewrap or no user namespaces" : "no seccomp");
    return false;
}

/* ---- one cgroup a sandbox ---- */

bool sandbox_cgroup_make(uint32_t processes, char *dir, size_t dirlen)
{
    dir[0] = '\0';
    if (!host.cgroup_dir[0]) return false;
    if (mkdir(host.cgroup_dir, 0700) != 0 && errno != EEXIST) {
        log_warn("sandbox: cannot create cgroup %s: %s", host.cgroup_dir, strerror(errno));
        return false;
    }
    char sub[600];
    snprintf(sub, sizeof sub, "%s/cgroup.subtree_control", host.cgroup_dir);
    if (access(sub, F_OK) == 0) write_file(sub, "+pids");
    unsigned n = atomic_fetch_add(&cgroup_seq, 1);
    snprintf(dir, dirlen, "%s/s%u", host.cgroup_dir, n);
    if (mkdir(dir, 0700) != 0) {
        log_warn("sandbox: cannot create cgroup %s: %s", dir, strerror(errno));
        dir[0] = '\0';
        return false;
    }
    char max[600], v[32];
    snprintf(max, sizeof max, "%s/pids.max", dir);
    if (processes) snprintf(v, sizeof v, "%u", processes);
    else snprintf(v, sizeof v, "max");
    if (!write_file(max, v)) {
        log_warn("sandbox: cannot set %s", max);
        rmdir(dir);
        dir[0] = '\0';
        return false;
    }
    return true;
}

void sandbox_cgroup_kill(const char *dir)
{
    if (!dir || !dir[0]) return;
    char procs[600];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    /* A process may fork while it is being killed (the pids limit bounds
     * how often): read until the list is empty, a bounded number of times. */
    for (int round = 0; round < 16; round++) {
        FILE *f = fopen(procs, "re");
        if (!f) return;
        long pid;
        int n = 0;
        while (fscanf(f, "%ld", &pid) == 1) {
            if (pid > 1) kill((pid_t)pid, SIGKILL);
            n++;
        }
        fclose(f);
        if (n == 0) return;
    }
}

bool sandbox_cgroup_remove(const char *dir)
{
    if (!dir || !dir[0]) return true;
    return rmdir(dir) == 0 || errno == ENOENT;
}

void sandbox_shutdown(void)
{
    if (host.cgroup_dir[0]) {
        /* sandboxes still running have their own cgroups below */
        DIR *d = opendir(host.cgroup_dir);
        struct dirent *e;
        char sub[800];
        while (d && (e = readdir(d)) != NULL)
            if (e->d_name[0] == 's') {
                snprintf(sub, sizeof sub, "%s/%s", host.cgroup_dir, e->d_name);
                sandbox_cgroup_kill(sub);
                rmdir(sub);
            }
        if (d) closedir(d);
        rmdir(host.cgroup_dir);
        host.cgroup_dir[0] = '\0';
    }
    free(bpf_prog);
    bpf_prog = NULL;
    bpf_len = 0;
}

/* ---- private directories ---- */

static bool id_plain(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64 || !strcmp(s, ".") || !strcmp(s, "..")) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* One path component: the id itself, or "x" + hex of its bytes + "~". The
 * "~" (never in a plain id) keeps the two forms apart: no id encodes to
 * another id's directory. */
static bool component(const char *id, char *out, size_t outlen)
{
    if (id_plain(id)) return (size_t)snprintf(out, outlen, "%s", id) < outlen;
    size_t n = id ? strlen(id) : 0;
    if (n > 200 || 2 * n + 3 > outlen) return false;
    out[0] = 'x';
    for (size_t i = 0; i < n; i++) snprintf(out + 1 + 2 * i, 3, "%02x", (unsigned char)id[i]);
    out[1 + 2 * n] = '~';
    out[2 + 2 * n] = '\0';
    return true;
}

bool sandbox_private_dir(const char *owner, const char *tenant, const char *user, char *out,
                         size_t outlen)
{
    char a[420], b[420], c[420];
    if (!host.private_root[0] || !component(owner, a, sizeof a) ||
        !component(tenant && tenant[0] ? tenant : "-", b, sizeof b) ||
        !component(user && user[0] ? user : "-", c, sizeof c))
        return false;
    return (size_t)snprintf(out, outlen, "%s/%s/%s/%s", host.private_root, a, b, c) < outlen;
}
