/* sandbox_seccomp.c — the seccomp filter every sandboxed process runs
 * under, built with libseccomp and exported as a BPF program that
 * bubblewrap installs (`--seccomp FD`) just before it executes the tool.
 *
 * The default is to allow: the namespaces, the read-only view and
 * landlock do the confining; the filter takes away the kernel interfaces
 * a tool has no business with, each of which has been a way out of a
 * container or into another process: debugging other processes, mounting,
 * new namespaces (so the tool cannot build a fresh user namespace to gain
 * capabilities in), kernel modules and kexec, BPF, the kernel keyring,
 * perf, io_uring, and the terminal-injection ioctls. A refused call fails
 * with EPERM (ENOSYS for clone3 and io_uring, so libc and libuv fall back
 * to what is allowed). Syscalls of another architecture are killed. */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *const denied[] = {
    /* other processes */
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    /* the mount table and the root */
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr",
    /* namespaces (clone's namespace flags are refused separately) */
    "unshare", "setns",
    /* the kernel itself */
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf",
    "perf_event_open", "reboot", "swapon", "swapoff", "syslog", "acct", "quotactl",
    "iopl", "ioperm", "lookup_dcookie", "vhangup",
    /* the kernel keyring */
    "keyctl", "add_key", "request_key",
    /* faults handled in user space (a classic exploit aid) */
    "userfaultfd",
    /* files by handle (escapes a bind mount), filesystem-wide watches */
    "open_by_handle_at", "name_to_handle_at", "fanotify_init",
    /* the clocks everyone shares */
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    NULL,
};

const char *const *sandbox_seccomp_denied(void) { return denied; }

static bool seccomp_rules(scmp_filter_ctx ctx, char *err, size_t errlen)
{
    for (size_t i = 0; denied[i]; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR) continue;   /* not on this architecture */
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (rc < 0) {
            snprintf(err, errlen, "seccomp: refusing %s: %s", denied[i], strerror(-rc));
            return false;
        }
    }
    static const char *const nosys[] = {"clone3", "io_uring_setup", "io_uring_enter",
                                        "io_uring_register", NULL};
    for (size_t i = 0; nosys[i]; i++) {
        int nr = seccomp_syscall_resolve_name(nosys[i]);
        if (nr != __NR_SCMP_ERROR && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0) < 0) {
            snprintf(err, errlen, "seccomp: refusing %s", nosys[i]);
            return false;
        }
    }
    /* clone with a namespace flag: the flags are clone's first argument on
     * x86-64 and arm64 alike. */
    static const unsigned long ns_flags[] = {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                                             CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++)
        if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i])) < 0) {
            snprintf(err, errlen, "seccomp: refusing clone with namespace flags");
            return false;
        }
    /* pushing characters into the terminal's input */
    static const unsigned long ioctls[] = {TIOCSTI, TIOCLINUX};
    for (size_t i = 0; i < sizeof ioctls / sizeof ioctls[0]; i++)
        if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i])) < 0) {
            snprintf(err, errlen, "seccomp: refusing terminal ioctls");
            return false;
        }
    return true;
}

bool sandbox_seccomp_bpf(unsigned char **prog, size_t *len, char *err, size_t errlen)
{
    *prog = NULL;
    *len = 0;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        snprintf(err, errlen, "seccomp: cannot initialise libseccomp");
        return false;
    }
    bool ok = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) == 0 &&
              seccomp_rules(ctx, err, errlen);
    int fd = ok ? memfd_create("brigade-seccomp", MFD_CLOEXEC) : -1;
    if (ok && fd < 0) {
        snprintf(err, errlen, "seccomp: memfd_create: %s", strerror(errno));
        ok = false;
    }
    if (ok) {
        int rc = seccomp_export_bpf(ctx, fd);
        off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : -1;
        if (rc != 0 || size <= 0 || size > (1 << 20)) {
            snprintf(err, errlen, "seccomp: exporting the filter failed");
            ok = false;
        } else {
            *prog = malloc((size_t)size);
            if (!*prog || pread(fd, *prog, (size_t)size, 0) != size) {
                snprintf(err, errlen, "seccomp: reading the filter back failed");
                free(*prog);
                *prog = NULL;
                ok = false;
            } else {
                *len = (size_t)size;
            }
        }
    }
    if (fd >= 0) close(fd);
    seccomp_release(ctx);
    return ok;
}
