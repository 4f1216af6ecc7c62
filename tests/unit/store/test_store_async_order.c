/* test_store_async_order.c — the store writer calls the done-callbacks of
 * writes nobody waits for (store_write_async, store_writer.c) in the order
 * the writes were queued, each with its own write's status, also when many
 * of them commit in one batch; store_usage_backlog counts usage rows from
 * queued to committed (what the gate sheds calls by), and the writer runs
 * at the loops' priority (util/thread_prio.h says why). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "store/store.h"
#include "store/store_internal.h"
#include "test_util.h"

#define QUEUED 200   /* writes queued behind the held one: one batch */

/* Every seventh queued write fails (only its savepoint is rolled back):
 * its callback must get its own status, not a neighbour's. */
static store_status queued_write(store_conn *c, void *arg)
{
    (void)c;
    return (intptr_t)arg % 7 == 3 ? STORE_CONFLICT : STORE_OK;
}

/* Written by the writer thread only; read once every callback ran. */
static int order[QUEUED];
static store_status statuses[QUEUED];
static atomic_int calls;

static void note_done(void *arg, store_status status)
{
    int i = atomic_load(&calls);
    order[i] = (int)(intptr_t)arg;
    statuses[i] = status;
    atomic_store(&calls, i + 1);
}

static void wait_until(atomic_int *v, int want)
{
    for (int ms = 0; atomic_load(v) < want; ms++) {
        if (ms > 20000) fail_msg("waited 20 s for the writer (%d of %d)", atomic_load(v), want);
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    }
}

static void test_async_callbacks_in_queue_order(void **state)
{
    (void)state;
    char dir[256];
    store *st = test_store_open(dir, sizeof dir, "brigade-async-order");
    assert_non_null(st);

    /* the first write holds the writer inside its batch until released,
     * so that everything queued meanwhile commits together in the next */
    assert_true(test_store_hold_writer(st));
    store_stats before;
    store_get_stats(st, &before);
    for (intptr_t i = 0; i < QUEUED; i++)
        assert_int_equal(store_write_async(st, queued_write, (void *)i, note_done, (void *)i), STORE_OK);
    test_store_release_writer();
    wait_until(&calls, QUEUED);

    for (int i = 0; i < QUEUED; i++) {
        if (order[i] != i) fail_msg("callback %d was write %d's: not in queue order", i, order[i]);
        assert_int_equal(statuses[i], i % 7 == 3 ? STORE_CONFLICT : STORE_OK);
    }
    /* the held write's batch, then all the queued ones in one */
    store_stats after;
    store_get_stats(st, &after);
    assert_int_equal(after.commits - before.commits, 2);
    assert_int_equal(after.ops - before.ops, QUEUED + 1);
    test_store_close(st, dir);
}

/* The nice value of this process's thread called name (-100: none). */
static int thread_nice(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int nice = -100;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[64] = "", stat[1024] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        if (strcmp(comm, name) != 0) continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        f = fopen(path, "r");
        assert_non_null(f);
        assert_non_null(fgets(stat, sizeof stat, f));
        fclose(f);
        /* after "(comm) ": state is field 3, nice field 19 */
        const char *p = strrchr(stat, ')');
        assert_non_null(p);
        int field = 2;
        for (p++; *p && field < 19; p++)
            if (*p == ' ') field++;
        nice = atoi(p);
    }
    closedir(d);
    return nice;
}

static void test_usage_backlog_and_the_writers_priority(void **state)
{
    (void)state;
    char dir[256];
    store *st = test_store_open(dir, sizeof dir, "brigade-usage-backlog");
    assert_non_null(st);
    assert_true(test_store_hold_writer(st));
    /* the writer is running (and so has named itself): a niced writer fell
     * behind saturated loops (util/thread_prio.h) */
    assert_int_equal(thread_nice("writer"), getpriority(PRIO_PROCESS, 0));
    assert_int_equal(store_usage_backlog(st), 0);
    test_store_queue_usage(st, "ten_b", 300);
    assert_int_equal(store_usage_backlog(st), 300);   /* the writer is held: all waiting */
    store_stats s;
    store_get_stats(st, &s);
    assert_int_equal(s.usage_queued, 300);
    assert_int_equal(s.usage_dropped, 0);
    test_store_release_writer();
    store_usage_flush(st);
    assert_int_equal(store_usage_backlog(st), 0);
    store_get_stats(st, &s);
    assert_int_equal(s.usage_queued, 0);
    assert_int_equal(s.usage_rows, 300);

    /* rows the writer has taken into a commit not finished yet still
     * count: only a committed row is in the ledger (the gauge on /metrics
     * that bench/gateway.sh waits on before it reads the ledger) */
    test_store_queue_usage(st, "ten_b", 200);
    assert_true(test_store_hold_writer(st));   /* its batch took the 200 rows with it */
    store_get_stats(st, &s);
    assert_int_equal(s.usage_queued, 200);
    assert_int_equal(store_usage_backlog(st), 200);
    test_store_release_writer();
    store_usage_flush(st);
    store_get_stats(st, &s);
    assert_int_equal(s.usage_queued, 0);
    assert_int_equal(s.usage_rows, 500);
    test_store_close(st, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async_callbacks_in_queue_order),
        cmocka_unit_test(test_usage_backlog_and_the_writers_priority),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
