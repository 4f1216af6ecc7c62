/* sandbox_landlock.c — landlock, the kernel's own unprivileged access
 * control: probe its ABI version and restrict the calling process. The
 * helper (sandbox_init_main.c) calls this inside bubblewrap, just before
 * it executes the tool, so the tool may write only beneath its private
 * directory and /tmp, and (when not granted a network) may not bind or
 * connect TCP sockets.
 *
 * Debian 12's <linux/landlock.h> stops at ABI 2, so the constants and
 * structures are written out here from the kernel's UAPI (ABI 1-6), under
 * names of our own so they never clash with a newer header. */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1

/* Filesystem rights (ABI 1, then REFER in 2, TRUNCATE in 3). */
#define LL_FS_EXECUTE     (1ull << 0)
#define LL_FS_WRITE_FILE  (1ull << 1)
#define LL_FS_READ_FILE   (1ull << 2)
#define LL_FS_READ_DIR    (1ull << 3)
#define LL_FS_REMOVE_DIR  (1ull << 4)
#define LL_FS_REMOVE_FILE (1ull << 5)
#define LL_FS_MAKE_CHAR   (1ull << 6)
#define LL_FS_MAKE_DIR    (1ull << 7)
#define LL_FS_MAKE_REG    (1ull << 8)
#define LL_FS_MAKE_SOCK   (1ull << 9)
#define LL_FS_MAKE_FIFO   (1ull << 10)
#define LL_FS_MAKE_BLOCK  (1ull << 11)
#define LL_FS_MAKE_SYM    (1ull << 12)
#define LL_FS_REFER       (1ull << 13)
#define LL_FS_TRUNCATE    (1ull << 14)
/* Network rights (ABI 4). */
#define LL_NET_BIND_TCP    (1ull << 0)
#define LL_NET_CONNECT_TCP (1ull << 1)
/* Scopes (ABI 6). */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0)
#define LL_SCOPE_SIGNAL               (1ull << 1)

/* The kernel reads only as much of the attribute as the ABI knows, by
 * the size passed: an older kernel is given the shorter struct. */
struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;   /* ABI 4 */
    uint64_t scoped;               /* ABI 6 */
};

struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t  parent_fd;
} __attribute__((packed));

int sandbox_landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    return v > 0 ? (int)v : 0;
}

int sandbox_landlock_apply(const char *const *writable, size_t n, bool network)
{
    int abi = sandbox_landlock_abi();
    if (abi <= 0) return 1;
    /* Everything that changes the filesystem is handled (so refused unless
     * a rule allows it); reading and executing are left to the mount
     * namespace's read-only view. */
    uint64_t write = LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE | LL_FS_MAKE_CHAR |
                     LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_MAKE_SOCK | LL_FS_MAKE_FIFO |
                     LL_FS_MAKE_BLOCK | LL_FS_MAKE_SYM;
    if (abi >= 2) write |= LL_FS_REFER;
    if (abi >= 3) write |= LL_FS_TRUNCATE;
    struct ll_ruleset_attr attr = {.handled_access_fs = write};
    size_t attr_size = sizeof(uint64_t);
    if (abi >= 4) {
        /* no rule is added for TCP, so handling it refuses it */
        if (!network) attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        attr_size = 2 * sizeof(uint64_t);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
        attr_size = sizeof attr;
    }
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
    if (rs < 0) return -1;
    for (size_t i = 0; i < n; i++) {
        int fd = open(writable[i], O_PATH | O_CLOEXEC | O_DIRECTORY);
        if (fd < 0) continue;   /* a directory that is not there needs no right */
        struct ll_path_beneath_attr pb = {.allowed_access = write, .parent_fd = fd};
        long rc = syscall(SYS_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &pb, 0);
        int e = errno;
        close(fd);
        if (rc < 0) {
            close(rs);
            errno = e;
            return -1;
        }
    }
    /* required for an unprivileged process (bwrap has set it already when
     * it installed the seccomp filter; setting it twice is harmless) */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_landlock_restrict_self, rs, 0) != 0) {
        int e = errno;
        close(rs);
        errno = e;
        return -1;
    }
    close(rs);
    return 0;
}
