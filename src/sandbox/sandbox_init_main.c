/* sandbox_init_main.c — brigade-sandbox-init, the small helper that does
 * what must happen inside the sandboxed process itself, right before the
 * tool runs. brigade runs it twice around bubblewrap:
 *
 *   brigade-sandbox-init --cgroup-procs FILE -- bwrap … -- \
 *       /.brigade/init --cpu N --as N … --write /work --write /tmp -- TOOL ARGS…
 *
 * Outside, it joins the sandbox's pids cgroup before bwrap creates any
 * process, so nothing the tool forks can escape the pids limit, and, when
 * brigade runs as root, binds the private directory where that user can
 * reach it (--stage-work) and becomes an unprivileged user (--user), so
 * that the whole sandbox is that user on the host too. Inside
 * (after bwrap has made the namespaces and installed seccomp), it sets the
 * rlimits and applies landlock, then executes the tool. Both times it
 * first closes every descriptor it was not meant to pass on (--close-from).
 * --unsetenv NAME takes a variable out as it is read (bwrap's --chdir
 * sets PWD, which the tool did not declare). The other options are
 * applied in that order whatever order they are given in. Exits 127 with
 * a message on stderr when anything fails: a tool never runs with less
 * confinement than asked for. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

#define MAX_WRITABLE 8

static _Noreturn void die(const char *what, const char *detail)
{
    fprintf(stderr, "brigade-sandbox-init: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    _exit(127);   /* _exit: nothing of this process's own runs after */
}

static unsigned long long number(const char *s, const char *opt)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s ? s : "", &end, 10);
    if (!s || !*s || *end || errno) die("not a number after", opt);
    return v;
}

static void limit(int resource, unsigned long long v, const char *name)
{
    struct rlimit rl = {.rlim_cur = v, .rlim_max = v};
    if (setrlimit(resource, &rl) != 0) die("setrlimit", name);
}

/* Close every descriptor from `from` up: brigade's own are close-on-exec,
 * but whatever brigade itself inherited without that flag (from a shell, a
 * supervisor) must not reach a tool. */
static void close_from(unsigned from)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, from, ~0u, 0) == 0) return;
#endif
    DIR *d = opendir("/proc/self/fd");
    if (!d) die("cannot list descriptors to close", strerror(errno));
    int keep = dirfd(d);
    struct dirent *e;
    int fds[1024], n = 0;
    while ((e = readdir(d)) != NULL && n < 1024) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd >= (int)from && fd != keep) fds[n++] = fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++) close(fds[i]);
}

static void join_cgroup(const char *procs)
{
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("cannot open the cgroup", strerror(errno));
    /* "0" is the writing process itself */
    if (write(fd, "0\n", 2) != 2) die("cannot join the cgroup", strerror(errno));
    close(fd);
}

/* Make `dir` reachable at SANDBOX_STAGE_DIR for the unprivileged user the
 * chain becomes next, in a mount namespace of this chain's own (brigade is
 * root here): a small tmpfs over /tmp, the directory bound inside it. The
 * data directory above it stays closed to that user. */
static void stage_work(const char *dir)
{
    if (unshare(CLONE_NEWNS) != 0) die("unshare(CLONE_NEWNS)", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("mount private", strerror(errno));
    /* opened in the new namespace (a bind needs its source there), before
     * the tmpfs hides it if it lies under /tmp */
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) die("cannot open the private directory", strerror(errno));
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
    if (mount("brigade-stage", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=64k") != 0)
        die("mount the stage", strerror(errno));
    if (mkdir(SANDBOX_STAGE_DIR, 0755) != 0) die("mkdir the stage", strerror(errno));
    if (mount(src, SANDBOX_STAGE_DIR, NULL, MS_BIND, NULL) != 0) die("bind the private directory", strerror(errno));
    close(fd);
}

/* Become UID:GID for good (no supplementary groups): brigade running as
 * root starts tools as an unprivileged user. */
static void become(const char *spec)
{
    char *end = NULL;
    errno = 0;
    unsigned long uid = strtoul(spec, &end, 10);
    if (errno || !end || *end != ':') die("--user wants UID:GID", spec);
    unsigned long gid = strtoul(end + 1, &end, 10);
    if (errno || *end || uid == 0 || gid == 0) die("--user wants UID:GID, not root", spec);
    if (setgroups(0, NULL) != 0 || setgid((gid_t)gid) != 0 || setuid((uid_t)uid) != 0)
        die("cannot change user", strerror(errno));
    if (setuid(0) == 0) die("could become root again", NULL);
}

int main(int argc, char **argv)
{
    const char *cgroup = NULL, *user = NULL, *stage = NULL;
    const char *writable[MAX_WRITABLE];
    size_t n_writable = 0;
    bool landlock = false, network = true;
    long long cpu = -1, as = -1, nofile = -1, fsize = -1, nproc = -1, close_at = -1;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--cgroup-procs") && v) cgroup = argv[++i];
        else if (!strcmp(o, "--user") && v) user = argv[++i];
        else if (!strcmp(o, "--stage-work") && v) stage = argv[++i];
        else if (!strcmp(o, "--cpu")) { cpu = (long long)number(v, o); i++; }
        else if (!strcmp(o, "--as")) { as = (long long)number(v, o); i++; }
        else if (!strcmp(o, "--nofile")) { nofile = (long long)number(v, o); i++; }
        else if (!strcmp(o, "--fsize")) { fsize = (long long)number(v, o); i++; }
        else if (!strcmp(o, "--nproc")) { nproc = (long long)number(v, o); i++; }
        else if (!strcmp(o, "--close-from")) { close_at = (long long)number(v, o); i++; }
        else if (!strcmp(o, "--landlock")) landlock = true;
        else if (!strcmp(o, "--no-network")) network = false;
        else if (!strcmp(o, "--unsetenv") && v) {
            if (unsetenv(argv[++i]) != 0) die("unsetenv", argv[i]);
        }
        else if (!strcmp(o, "--write") && v) {
            if (n_writable == MAX_WRITABLE) die("too many --write", NULL);
            writable[n_writable++] = argv[++i];
        } else die("unknown option", o);
    }
    if (i + 1 >= argc) die("usage: brigade-sandbox-init [options] -- PROGRAM [ARGS…]", NULL);
    char **prog = argv + i + 1;

    if (close_at >= 3) close_from((unsigned)close_at);
    if (cgroup) join_cgroup(cgroup);
    if (stage) stage_work(stage);
    if (user) become(user);
    if (cpu >= 0) limit(RLIMIT_CPU, (unsigned long long)cpu, "cpu");
    if (nofile >= 0) limit(RLIMIT_NOFILE, (unsigned long long)nofile, "nofile");
    if (fsize >= 0) limit(RLIMIT_FSIZE, (unsigned long long)fsize, "fsize");
    if (nproc >= 0) limit(RLIMIT_NPROC, (unsigned long long)nproc, "nproc");
    if (landlock) {
        int rc = sandbox_landlock_apply(writable, n_writable, network);
        if (rc < 0) die("landlock", strerror(errno));
        /* rc 1: the kernel has none; brigade knew from its probe and logged it */
    }
    /* last: the address-space limit would also bound this helper's own
     * start-up (a sanitizer build reserves terabytes of shadow memory) */
    if (as >= 0) limit(RLIMIT_AS, (unsigned long long)as, "as");
    execvp(prog[0], prog);
    die("cannot execute", prog[0]);
}
