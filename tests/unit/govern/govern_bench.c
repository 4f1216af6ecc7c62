/* govern_bench.c — what governance costs on the hot path: nanoseconds per
 * admit+settle pair (on and off), per fair-queue acquire+release, and per
 * durable reservation (journal record opened, then closed as its usage row
 * would close it), one thread, uncontended, over 1000 users of 10 tenants
 * with every limit set.
 * Not a test: run it by hand and quote the numbers.
 *   build/tests/unit/govern/govern_bench [iterations] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "govern/fairq.h"
#include "govern/govern.h"
#include "govern/reserve_journal.h"

#define N_USERS 1000

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static char ten[N_USERS][16], usr[N_USERS][24], key[N_USERS][24];

static double bench_govern(govern *g, long n)
{
    govern_limits lim = { .rpm = 1000000000, .tpm = 1000000000, .max_concurrent_runs = 10,
                          .daily_budget_nusd = 1000000000000000LL,
                          .monthly_budget_nusd = 1000000000000000LL };
    govern_reservation r;
    govern_refusal why;
    govern_ratelimit_info rl;
    long refused = 0;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int u = (int)(i % N_USERS);
        govern_subject s = { ten[u], usr[u], key[u], lim, lim, lim };
        if (!govern_admit(g, &s, 100, 1000000, &r, &why, &rl)) { refused++; continue; }
        govern_settle(g, &r, 60, 500000);
    }
    double per = (now_ns() - t0) / (double)n;
    if (refused) fprintf(stderr, "unexpected: %ld refused (%s)\n", refused, why.message);
    return per;
}

static void granted(fairq_waiter *w, void *arg) { (void)w; (void)arg; }

static double bench_fairq(long n)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    fairq *q = fairq_new(NULL, NULL, 100, 10000);
    fairq_pool *p = fairq_pool_new(q, "model", 64);
    fairq_thread *t = fairq_thread_new(q, &loop);
    fairq_waiter w;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (fairq_acquire(t, p, usr[i % N_USERS], 1, &w, granted, NULL, NULL) != FAIRQ_GRANTED)
            abort();
        fairq_release(p);
    }
    double per = (now_ns() - t0) / (double)n;
    fairq_thread_close(t);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    fairq_free(q);
    return per;
}

/* One reservation's durable life: the record written before dispatch, and
 * its close, batched by 64 the way the writer closes a group commit's rows. */
static double bench_journal(long n)
{
    char dir[] = "/tmp/brigade-journal-bench-XXXXXX", err[256];
    if (!mkdtemp(dir)) return -1;
    reserve_journal *j = reserve_journal_open(dir, err, sizeof err);
    if (!j) return -1;
    usage_rec rows[64];
    memset(rows, 0, sizeof rows);
    int k = 0;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int u = (int)(i % N_USERS);
        reserve_entry e = {ten[u], usr[u], key[u], "gpt-4o-mini", "req_0123456789abcdef", 1000000, 300};
        rows[k++].reservation_id = reserve_journal_open_entry(j, &e);
        if (k == 64) {
            reserve_journal_on_usage_committed(j, rows, 64);
            k = 0;
        }
    }
    double per = (now_ns() - t0) / (double)n;
    reserve_journal_close(j);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, RESERVE_JOURNAL_FILE);
    unlink(path);
    rmdir(dir);
    return per;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    for (int i = 0; i < N_USERS; i++) {
        snprintf(ten[i], sizeof ten[i], "ten_%d", i % 10);
        snprintf(usr[i], sizeof usr[i], "usr_%06d", i);
        snprintf(key[i], sizeof key[i], "key_%06d", i);
    }
    govern *g = govern_new(NULL, NULL);
    bench_govern(g, n / 10);                       /* warm the tables */
    double on = bench_govern(g, n);
    govern_set_enabled(g, false);
    double off = bench_govern(g, n);
    govern_free(g);
    double fq = bench_fairq(n);
    double jr = bench_journal(n / 10);
    printf("govern admit+settle (3 levels, all limits): %.0f ns\n", on);
    printf("govern admit+settle (disabled):              %.0f ns\n", off);
    printf("fairq acquire+release (free slot):          %.0f ns\n", fq);
    printf("durable reservation (record + batched close): %.0f ns\n", jr);
    return 0;
}
