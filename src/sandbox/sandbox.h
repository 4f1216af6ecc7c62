/* sandbox.h — running a tool's process (a `command` tool, a stdio MCP
 * server) in a sandbox: its own user, pid, mount, ipc, uts and (unless
 * granted) network namespaces through bubblewrap; a read-only view of the
 * system and one private writable directory; a seccomp filter; landlock
 * where the kernel has it; rlimits and a pids cgroup; and an environment
 * holding only what the tool declared. docs/sandbox.md lists each layer,
 * what it stops and the test that shows it.
 *
 * Use:
 *   1. sandbox_setup() once at start: probes what the machine offers
 *      (bwrap and user namespaces, seccomp, landlock's ABI, a pids cgroup)
 *      and logs it. Read-only afterwards, so any loop thread may spawn.
 *   2. sandbox_spawn() starts one process with caller-owned pipes (for
 *      long-lived processes such as MCP servers), or sandbox_run() runs one
 *      call: the input on stdin, stdout read up to a cap, stderr logged,
 *      the whole sandbox killed at the timeout. */
#ifndef BRIGADE_SANDBOX_H
#define BRIGADE_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* What a tool process may use. 0 in a field means "no limit of this kind"
 * for sandbox_spawn; the configuration fills the defaults below. */
typedef struct sandbox_limits {
    uint32_t cpu_seconds;        /* RLIMIT_CPU */
    uint64_t memory_bytes;       /* RLIMIT_AS of each process */
    uint32_t open_files;         /* RLIMIT_NOFILE */
    uint64_t file_bytes;         /* RLIMIT_FSIZE: the largest file it may write */
    uint32_t processes;          /* the pids cgroup's pids.max (and RLIMIT_NPROC) */
} sandbox_limits;

#define SANDBOX_DEFAULT_CPU_SECONDS 10
#define SANDBOX_DEFAULT_MEMORY      (1024ull << 20)
#define SANDBOX_DEFAULT_OPEN_FILES  256
#define SANDBOX_DEFAULT_FILE_BYTES  (64ull << 20)
#define SANDBOX_DEFAULT_PROCESSES   64

/* Inside the sandbox the private directory is mounted here, and it is the
 * working directory. */
#define SANDBOX_WORK_DIR "/work"
/* Where the sandbox's helper (brigade-sandbox-init) is mounted inside. */
#define SANDBOX_INIT_INSIDE "/.brigade/init"
/* The descriptor holding the seccomp program when the chain starts. */
#define SANDBOX_FD_SECCOMP 3
/* When brigade runs as root, the helper binds the private directory here,
 * in a mount namespace of the chain's own, before it drops to the tools'
 * user: that user can reach it there, not through the data directory. */
#define SANDBOX_STAGE_DIR "/tmp/work"
/* The user tools run as when brigade runs as root (nobody / nogroup). */
#define SANDBOX_NOBODY 65534

/* Bounds of what a spec may ask for. */
#define SANDBOX_MAX_ARGS 64
#define SANDBOX_MAX_ENV  64
#define SANDBOX_MAX_READ_ONLY 32

typedef struct sandbox_spec {
    const char *const *argv;     /* argv[0] is looked up in PATH inside (or absolute) */
    size_t             argc;
    const char *const *env;      /* "NAME=value", the whole environment it gets */
    size_t             n_env;
    const char        *private_dir; /* host path, created; mounted read-write at work_inside */
    /* Where the private directory is inside, and the working directory:
     * NULL is SANDBOX_WORK_DIR. Absolute and clean, not "/" and not under
     * the system's or the sandbox's own directories (/usr, /etc, /proc…). */
    const char        *work_inside;
    bool               network;  /* false: a network namespace of its own (no route out) */
    /* Host paths shown read-only at the same path inside (a server's own
     * program files: an npm package's node_modules). Absolute, clean (no
     * "." or ".." component, no "//"), not "/" and not under /proc, /dev,
     * /tmp or /.brigade, which the sandbox makes itself; never holding,
     * nor inside, work_inside. */
    const char *const *read_only;
    size_t             n_read_only;
    sandbox_limits     limits;
    const char        *label;    /* names the process in logs ("tool weather") */
} sandbox_spec;

/* What sandbox_setup found; also what sandbox_build_argv builds from. */
typedef struct sandbox_host {
    bool     bwrap_ok;           /* bwrap runs with user, pid and net namespaces */
    char     bwrap_path[256];
    char     init_path[512];     /* brigade-sandbox-init on the host */
    bool     seccomp_ok;         /* the filter was built */
    int      landlock_abi;       /* 0: the kernel has no landlock */
    char     cgroup_dir[512];    /* a pids cgroup brigade may create children in; "" none */
    bool     allow_unsandboxed;  /* operator: run tools without namespaces when bwrap is missing */
    char     private_root[512];  /* DATA_DIR/sandbox (absolute); "" none */
    unsigned run_uid, run_gid;   /* brigade is root: tools run as this user (nobody); 0 = as brigade */
} sandbox_host;

typedef struct sandbox_settings {
    const char *data_dir;        /* private directories go under DATA_DIR/sandbox */
    bool        allow_unsandboxed;
    const char *bwrap_path;      /* NULL: /usr/bin/bwrap, else bwrap in PATH */
    const char *init_path;       /* NULL: brigade-sandbox-init next to the running binary */
} sandbox_settings;

/* Probe the machine and log what each layer can do. Never fails: what is
 * missing makes sandboxed starts refuse (or run unsandboxed, if allowed),
 * which sandbox_can_run() tells. */
void                sandbox_setup(const sandbox_settings *s);
/* Remove brigade's cgroup directory (at exit). */
void                sandbox_shutdown(void);
const sandbox_host *sandbox_host_info(void);
/* True when a sandboxed process can start (or the operator allowed
 * running unsandboxed); false with `why` otherwise. */
bool                sandbox_can_run(char *why, size_t whylen);

/* The argv brigade executes for `spec` (NULL-terminated, malloc'd strings
 * and array; free with sandbox_argv_free). With bwrap the chain is started
 * with SANDBOX_FD_SECCOMP open when `with_seccomp`; `cgroup_procs` is the
 * cgroup.procs file the process joins first (NULL: none). Pure: the unit
 * tests check it. NULL with `err` on a bad spec. */
/* NULL when `path` may be a read-only path of a spec, else why not. */
const char *sandbox_read_only_refusal(const char *path);

char **sandbox_build_argv(const sandbox_host *h, const sandbox_spec *spec, bool with_seccomp,
                          const char *cgroup_procs, char *err, size_t errlen);
void   sandbox_argv_free(char **argv);

/* The private directory of (owner, tenant, user) — owner is the tool or
 * server it belongs to — DATA_DIR/sandbox/OWNER/TENANT/USER. A component
 * of anything but [A-Za-z0-9_-] (or empty, or longer than 64) is written
 * as "x" and its hex, so no id can reach another's directory. false if
 * setup had no data directory or the path does not fit. */
bool sandbox_private_dir(const char *owner, const char *tenant, const char *user, char *out,
                         size_t outlen);

/* --- long-lived processes (MCP stdio servers) --- */
typedef struct sandbox_proc sandbox_proc;
/* Called once when the process (the sandbox's first process) has exited;
 * the sandbox is gone and `p` is freed after it returns. */
typedef void (*sandbox_exit_fn)(sandbox_proc *p, int64_t exit_status, int term_signal, void *arg);

/* Start spec's process. The pipes must be uv_pipe_init'ed (ipc 0) on
 * `loop` by the caller, who reads and writes them and closes them; NULL
 * for stderr discards it. NULL with `err` on failure. */
sandbox_proc *sandbox_spawn(uv_loop_t *loop, const sandbox_spec *spec, uv_pipe_t *in,
                            uv_pipe_t *out, uv_pipe_t *errp, sandbox_exit_fn on_exit, void *arg,
                            char *err, size_t errlen);
/* SIGKILL every process of the sandbox. The exit callback still comes. */
void          sandbox_kill(sandbox_proc *p);
/* The host pid of the sandbox's first process (bwrap), for logs. */
int           sandbox_pid(const sandbox_proc *p);

/* --- one call: input on stdin, bounded output --- */
typedef struct sandbox_result {
    bool        ok;              /* exited 0, within time and caps */
    bool        timed_out;
    bool        output_cut;      /* stdout passed max_out: killed, output kept up to it */
    int64_t     exit_status;
    int         term_signal;
    const char *out;             /* stdout (NUL-terminated), at most max_out bytes */
    size_t      out_len;
    const char *why;             /* when !ok: what happened, for the model */
} sandbox_result;
typedef void (*sandbox_run_fn)(void *arg, const sandbox_result *r);
typedef struct sandbox_run_t sandbox_run_t;

/* Run spec's process with `input` on stdin (then closed); `done` is called
 * once, on a later loop turn, after the process is gone. stderr (at most
 * max_err bytes) goes into `why` on failure, and into the log only when
 * observability.logs.content is on. NULL with `err` if it could not start. */
sandbox_run_t *sandbox_run(uv_loop_t *loop, const sandbox_spec *spec, const char *input,
                           size_t input_len, size_t max_out, size_t max_err, uint32_t timeout_ms,
                           sandbox_run_fn done, void *arg, char *err, size_t errlen);
/* Kill it; `done` is not called. Safe until `done` has been called. */
void           sandbox_run_cancel(sandbox_run_t *r);

/* --- the layers, for the probe and the unit tests --- */
/* Landlock's ABI version on this kernel, 0 when absent or disabled. */
int  sandbox_landlock_abi(void);
/* Restrict the calling process (the helper, just before exec): writes only
 * beneath `writable` dirs; no TCP bind/connect if !network (ABI >= 4);
 * no signals or abstract sockets out of the domain (ABI >= 6). 0 applied,
 * 1 no landlock here, -1 failed (errno). */
int  sandbox_landlock_apply(const char *const *writable, size_t n, bool network);
/* The seccomp filter as a BPF program (malloc'd into *prog). false with
 * `err` when libseccomp cannot build it. */
bool sandbox_seccomp_bpf(unsigned char **prog, size_t *len, char *err, size_t errlen);
/* The syscalls the filter refuses (NULL-terminated list of names). */
const char *const *sandbox_seccomp_denied(void);

#endif
