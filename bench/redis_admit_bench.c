/* redis_admit_bench.c — the admission round trip of shared governance in
 * Redis (govern_redis.h) against a Redis that holds N users' counters, for
 * docs/benchmarks.md ("Several instances"): does the script's cost grow
 * with the number of users?
 *
 *   redis_admit_bench --port P [--users N] [--calls M] [--conc C]
 *
 * Against a redis-server on 127.0.0.1:P (bench/cluster.sh starts one, empty,
 * without persistence): first every one of N users makes one call (admit
 * + settle, 64 in flight) so that each has its spend hash, reservation set
 * and GCRA hash; then M admissions of users drawn at random, one at a time
 * (the round trip: from govern_redis_admit to its callback, p50/p99/max),
 * then M more with C in flight (admissions per second). Each subject has a
 * daily budget and an rpm limit at the user level and a tenant budget, so
 * the script does all its work. Prints one "ADMIT …" line for the script
 * that calls it, and Redis's key count and memory. Bounded: N ≤ 10^7,
 * M ≤ 10^7, C ≤ 1024. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "govern/govern_redis.h"
#include "store/store.h"

typedef struct call {
    govern_redis_res res;
    char             user[24];
    int64_t          t0_ns;
    bool             busy;
} call;

typedef struct bench {
    uv_loop_t          loop;
    govern_redis_conn *c;
    long               users, todo, started, done, admitted, in_flight, conc;
    bool               random;
    int64_t           *lat_ns;         /* per measured call, or NULL */
    call              *calls;
} bench;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void next_call(bench *b, call *k);

/* The owner of a call: calls live in one array of the bench. */
static bench *g_bench;

static void on_admit(int result, const govern_refusal *why, const govern_ratelimit_info *rl,
                          void *arg)
{
    (void)why;
    (void)rl;
    call *k = arg;
    bench *b = g_bench;
    int64_t dt = now_ns() - k->t0_ns;
    if (b->lat_ns) b->lat_ns[b->done] = dt;
    b->done++;
    b->in_flight--;
    if (result == GOVERN_REDIS_ADMITTED) {
        b->admitted++;
        govern_redis_settle(b->c, &k->res, 10, 1000);
    }
    k->busy = false;
    if (b->started < b->todo) next_call(b, k);
    else if (b->in_flight == 0) uv_stop(&b->loop);
}

static void next_call(bench *b, call *k)
{
    long u = b->random ? (long)((((uint64_t)rand() << 31) ^ (uint64_t)rand()) % (uint64_t)b->users)
                       : b->started % b->users;
    snprintf(k->user, sizeof k->user, "u%ld", u);
    govern_subject s = {.tenant_id = "bench", .user_id = k->user, .key_id = ""};
    s.user.daily_budget_nusd = 1000LL * GOVERN_NUSD_PER_USD;
    s.user.rpm = 1000000;
    s.tenant.daily_budget_nusd = 1000000LL * GOVERN_NUSD_PER_USD;
    b->started++;
    b->in_flight++;
    k->busy = true;
    k->t0_ns = now_ns();
    govern_redis_admit(b->c, &s, 100, 1000, &k->res, on_admit, k);
}

static void run(bench *b, long n, long conc, bool random, int64_t *lat)
{
    b->todo = n;
    b->started = b->done = b->admitted = b->in_flight = 0;
    b->random = random;
    b->lat_ns = lat;
    for (long i = 0; i < conc && i < n; i++) next_call(b, &b->calls[i]);
    uv_run(&b->loop, UV_RUN_DEFAULT);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void tick(uv_timer_t *t) { (void)t; }

int main(int argc, char **argv)
{
    int port = 0;
    long users = 1000, calls = 20000, conc = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        char *end;
        long v = strtol(argv[i + 1], &end, 10);
        if (*end || v <= 0) {
            fprintf(stderr, "redis_admit_bench: %s wants a positive number, not \"%s\"\n", argv[i], argv[i + 1]);
            return 2;
        }
        if (strcmp(argv[i], "--port") == 0 && v < 65536) port = (int)v;
        else if (strcmp(argv[i], "--users") == 0 && v <= 10000000) users = v;
        else if (strcmp(argv[i], "--calls") == 0 && v <= 10000000) calls = v;
        else if (strcmp(argv[i], "--conc") == 0 && v <= 1024) conc = v;
        else {
            fprintf(stderr, "redis_admit_bench: unknown or out-of-range option %s %s\n", argv[i], argv[i + 1]);
            return 2;
        }
    }
    if (!port) {
        fprintf(stderr, "usage: redis_admit_bench --port P [--users N] [--calls M] [--conc C]\n");
        return 2;
    }
    char dir[] = "/tmp/brigade-admit-bench-XXXXXX", err[256];
    if (!mkdtemp(dir)) return 1;
    store *st = store_open(dir, err, sizeof err);
    if (!st) {
        fprintf(stderr, "redis_admit_bench: store: %s\n", err);
        return 1;
    }
    governance_redis_cfg cfg = {.host = "127.0.0.1", .port = port, .key_prefix = "bench:",
                                .instances = 1, .reservation_ttl_s = 900, .timeout_ms = 2000};
    govern_redis *r = govern_redis_new(&cfg, st);
    bench b = {.users = users, .conc = conc};
    g_bench = &b;
    uv_loop_init(&b.loop);
    b.calls = calloc((size_t)(conc > 64 ? conc : 64), sizeof *b.calls);
    int64_t *lat = calloc((size_t)calls, sizeof *lat);
    if (!r || !b.calls || !lat) return 1;
    b.c = govern_redis_conn_new(r, &b.loop);
    /* connected, and the generation written (an empty ledger: spend 0) */
    uv_timer_t t;
    uv_timer_init(&b.loop, &t);
    uv_timer_start(&t, tick, 10, 10);
    for (int k = 0; k < 500; k++) {
        uv_run(&b.loop, UV_RUN_ONCE);
        govern_redis_stats gs;
        govern_redis_stats_get(r, &gs);
        if (gs.connected && gs.generation_ok) break;
    }
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    int64_t t0 = now_ns();
    run(&b, users, 64, false, NULL);                        /* every user once */
    double fill_s = (double)(now_ns() - t0) / 1e9;
    if (b.admitted != users) {
        fprintf(stderr, "redis_admit_bench: only %ld of %ld users admitted while filling\n", b.admitted, users);
        return 1;
    }
    run(&b, calls, 1, true, lat);                           /* the round trip, one at a time */
    qsort(lat, (size_t)calls, sizeof *lat, cmp64);
    long ok1 = b.admitted;
    t0 = now_ns();
    run(&b, calls, conc, true, NULL);                       /* throughput */
    double secs = (double)(now_ns() - t0) / 1e9;
    redisContext *rc = redisConnect("127.0.0.1", port);
    long long keys = -1, mem = -1;
    redisReply *rp = rc && !rc->err ? redisCommand(rc, "DBSIZE") : NULL;
    if (rp && rp->type == REDIS_REPLY_INTEGER) keys = rp->integer;
    if (rp) freeReplyObject(rp);
    rp = rc && !rc->err ? redisCommand(rc, "MEMORY STATS") : NULL;
    for (size_t i = 0; rp && rp->type == REDIS_REPLY_ARRAY && i + 1 < rp->elements; i += 2)
        if (rp->element[i]->type == REDIS_REPLY_STRING && strcmp(rp->element[i]->str, "total.allocated") == 0)
            mem = rp->element[i + 1]->integer;
    if (rp) freeReplyObject(rp);
    if (rc) redisFree(rc);
    printf("ADMIT users=%ld calls=%ld admitted=%ld fill_s=%.1f p50_us=%.0f p99_us=%.0f max_us=%.0f "
           "conc=%ld admits_per_s=%.0f admitted_conc=%ld redis_keys=%lld redis_bytes=%lld\n",
           users, calls, ok1, fill_s, (double)lat[calls / 2] / 1e3, (double)lat[calls * 99 / 100] / 1e3,
           (double)lat[calls - 1] / 1e3, conc, (double)calls / secs, b.admitted, keys, mem);
    govern_redis_conn_close(b.c);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uv_loop_close(&b.loop);
    govern_redis_free(r);
    store_close(st);
    free(lat);
    free(b.calls);
    char rm[96];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
