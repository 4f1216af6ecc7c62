/* sandbox_spawn.c — starting one sandboxed process on a libuv loop, and
 * ending it: the private directory is made (0700), a pids cgroup made for
 * it, the seccomp program handed to bwrap in a memfd, and the chain
 * (helper → bwrap → helper → tool) spawned in a session of its own with
 * exactly the declared environment. Killing it kills the session's
 * process group and everything in its cgroup; bwrap's --die-with-parent
 * and the pid namespace take the rest (when a pid namespace's first
 * process dies, the kernel kills every process in it). */
#include "sandbox/sandbox_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

struct sandbox_proc {
    uv_process_t    proc;
    uv_timer_t      reap;        /* retries removing the cgroup */
    int             reap_tries;
    sandbox_exit_fn on_exit;
    void           *arg;
    char            cgroup[600];
    char            label[96];
    int             pid;
    bool            exited;
};

/* mkdir -p with 0700 for every directory it makes. */
static bool make_dirs(const char *path, char *err, size_t errlen)
{
    char p[1024];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
        snprintf(err, errlen, "sandbox: the private directory's path is too long");
        return false;
    }
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "sandbox: cannot create %s: %s", p, strerror(errno));
                return false;
            }
            *s = c;
            if (!c) break;
        }
    }
    return true;
}

/* The seccomp program in a memfd the child inherits as fd 3. */
static int bpf_memfd(void)
{
    size_t len;
    const unsigned char *prog = sandbox_bpf(&len);
    if (!prog) return -1;
    int fd = memfd_create("brigade-seccomp", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (write(fd, prog, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void proc_free(uv_handle_t *h)
{
    free(h->data);
}

static void reap_try(uv_timer_t *t)
{
    sandbox_proc *p = t->data;
    sandbox_cgroup_kill(p->cgroup);
    if (sandbox_cgroup_remove(p->cgroup) || ++p->reap_tries > 40) {
        if (p->reap_tries > 40) log_warn("sandbox: %s: cgroup %s not removed", p->label, p->cgroup);
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, proc_free);
    }
}

static void proc_closed(uv_handle_t *h)
{
    sandbox_proc *p = h->data;
    /* the cgroup empties once the namespace's processes are gone */
    p->reap.data = p;
    uv_timer_start(&p->reap, reap_try, 0, 50);
}

static void proc_exited(uv_process_t *pr, int64_t status, int sig)
{
    sandbox_proc *p = pr->data;
    p->exited = true;
    /* anything the first process left behind goes with it: the cgroup
     * holds all of it (and the pid namespace died with bwrap); without a
     * cgroup, its process group — which outlives the leader only while a
     * member lives, so the number is not anyone else's */
    if (p->cgroup[0]) sandbox_cgroup_kill(p->cgroup);
    else kill(-p->pid, SIGKILL);
    if (p->on_exit) p->on_exit(p, status, sig, p->arg);
    uv_close((uv_handle_t *)&p->proc, proc_closed);
}

sandbox_proc *sandbox_spawn(uv_loop_t *loop, const sandbox_spec *spec, uv_pipe_t *in,
                            uv_pipe_t *out, uv_pipe_t *errp, sandbox_exit_fn on_exit, void *arg,
                            char *err, size_t errlen)
{
    const sandbox_host *h = sandbox_host_info();
    if (!sandbox_can_run(err, errlen)) return NULL;
    if (!spec || !spec->private_dir || !make_dirs(spec->private_dir, err, errlen)) {
        if (!spec || !spec->private_dir) snprintf(err, errlen, "sandbox: no private directory");
        return NULL;
    }
    sandbox_proc *p = xcalloc(1, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", spec->label ? spec->label : "tool");
    p->on_exit = on_exit;
    p->arg = arg;
    char procs[700];
    bool cg = sandbox_cgroup_make(spec->limits.processes, p->cgroup, sizeof p->cgroup);
    if (cg) snprintf(procs, sizeof procs, "%s/cgroup.procs", p->cgroup);
    /* the directory becomes the tools' user's */
    if (h->run_uid && chown(spec->private_dir, h->run_uid, h->run_gid) != 0)
        log_warn("sandbox: cannot give %s to the tools' user: %s", spec->private_dir, strerror(errno));
    int bpf = h->bwrap_ok ? bpf_memfd() : -1;
    if (h->bwrap_ok && bpf < 0) {
        snprintf(err, errlen, "sandbox: cannot pass the seccomp filter: %s", strerror(errno));
        sandbox_cgroup_remove(p->cgroup);
        free(p);
        return NULL;
    }
    char **argv = sandbox_build_argv(h, spec, bpf >= 0, cg ? procs : NULL, err, errlen);
    if (!argv) {
        if (bpf >= 0) close(bpf);
        sandbox_cgroup_remove(p->cgroup);
        free(p);
        return NULL;
    }
    char *envp[SANDBOX_MAX_ENV + 1];
    for (size_t i = 0; i < spec->n_env; i++) envp[i] = (char *)spec->env[i];
    envp[spec->n_env] = NULL;
    uv_stdio_container_t stdio[4] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)out},
        {.flags = errp ? UV_CREATE_PIPE | UV_WRITABLE_PIPE : UV_IGNORE, .data.stream = (uv_stream_t *)errp},
        {.flags = UV_INHERIT_FD, .data.fd = bpf},      /* SANDBOX_FD_SECCOMP */
    };
    uv_process_options_t o = {
        .exit_cb = proc_exited,
        .file = argv[0],
        .args = argv,
        .env = envp,
        /* unsandboxed, the tool starts in its private directory; in bwrap
         * --chdir does it */
        .cwd = h->bwrap_ok ? "/" : spec->private_dir,
        /* a session and process group of its own: killed as one */
        .flags = UV_PROCESS_DETACHED,
        .stdio = stdio,
        .stdio_count = bpf >= 0 ? 4 : 3,
    };
    p->proc.data = p;
    uv_timer_init(loop, &p->reap);
    int rc = uv_spawn(loop, &p->proc, &o);
    if (bpf >= 0) close(bpf);
    sandbox_argv_free(argv);
    if (rc != 0) {
        snprintf(err, errlen, "sandbox: cannot start %s: %s", p->label, uv_strerror(rc));
        sandbox_cgroup_remove(p->cgroup);
        /* uv_spawn failing still leaves the process handle to close */
        uv_close((uv_handle_t *)&p->proc, NULL);
        p->reap.data = p;
        uv_close((uv_handle_t *)&p->reap, proc_free);
        return NULL;
    }
    p->pid = p->proc.pid;
    log_debug("sandbox: %s started (pid %d)", p->label, p->pid);
    return p;
}

void sandbox_kill(sandbox_proc *p)
{
    if (!p || p->exited) return;
    kill(-p->pid, SIGKILL);
    kill(p->pid, SIGKILL);
    sandbox_cgroup_kill(p->cgroup);
}

int sandbox_pid(const sandbox_proc *p) { return p ? p->pid : 0; }
