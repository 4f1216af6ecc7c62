/* thread_prio.c — lowering a background thread's CPU priority (see
 * thread_prio.h for why). */
#include "util/thread_prio.h"

#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>

int thread_background(void)
{
    /* On Linux, nice is a per-thread attribute: PRIO_PROCESS with a
     * thread id changes that thread alone. */
    id_t tid = (id_t)gettid();
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, tid);
    if (cur == -1 && errno != 0) return -1;
    int want = cur + THREAD_BACKGROUND_NICE;
    if (want > 19) want = 19;
    return setpriority(PRIO_PROCESS, tid, want) == 0 ? 0 : -1;
}
