/* test_util.c — temp directories and loop turning for the unit tests (see
 * test_util.h). */
#include "test_util.h"

#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

char *test_tmpdir(char *dir, size_t len, const char *name)
{
    int n = snprintf(dir, len, "/tmp/%s-XXXXXX", name);
    if (n < 0 || (size_t)n >= len) return NULL;
    return mkdtemp(dir);
}

static int test_rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

void test_rmtree(const char *dir)
{
    /* depth first, so a directory is empty by the time it is removed */
    nftw(dir, test_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int test_run_until(uv_loop_t *loop, const int *flag, unsigned timeout_ms)
{
    uint64_t limit = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    while (!*flag && uv_hrtime() < limit) uv_run(loop, UV_RUN_ONCE);
    return *flag;
}

static void test_on_expired(uv_timer_t *t) { *(bool *)t->data = true; }

/* The timer lives on this frame: it is closed, and the close completed by
 * one more non-blocking turn, before returning. */
int test_run_timed(uv_loop_t *loop, const int *flag, unsigned ms)
{
    bool expired = false;
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = &expired;
    uv_timer_start(&t, test_on_expired, ms, 0);
    while (!(flag && *flag) && !expired) uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return flag ? *flag : 0;
}

void test_spin(uv_loop_t *loop, unsigned ms)
{
    test_run_timed(loop, NULL, ms);
}
