/* sandbox_internal.h — what the files of src/sandbox/ share and nothing
 * else includes: the probed BPF program and the per-sandbox cgroups. */
#ifndef BRIGADE_SANDBOX_INTERNAL_H
#define BRIGADE_SANDBOX_INTERNAL_H

#include "sandbox/sandbox.h"

/* The seccomp program built at setup (NULL when there is none). */
const unsigned char *sandbox_bpf(size_t *len);

/* A fresh pids cgroup for one sandbox with pids.max = processes (0: no
 * maximum). false (dir "") when brigade has no cgroup to create it in. */
bool sandbox_cgroup_make(uint32_t processes, char *dir, size_t dirlen);
/* SIGKILL every process in it. */
void sandbox_cgroup_kill(const char *dir);
/* Remove it; false while processes are still leaving it. */
bool sandbox_cgroup_remove(const char *dir);

#endif
