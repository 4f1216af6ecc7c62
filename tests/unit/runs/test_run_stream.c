/* test_run_stream.c — a run's events through Redis (runs/run_stream.h)
 * against a real redis-server started here on a loopback port in a temp
 * dir: events published by one "instance" read by another with the same
 * numbers, from the start or after an id, live, to the end; a run Redis
 * has no stream of (ABSENT); a stream trimmed to its bound (the skipped
 * events said); the bound on followers; Redis down (UNREACHABLE, never a
 * hang) and back (reconnects by itself). The server: tests/unit/common/test_redis.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "runs/run_stream.h"
#include "util/timeutil.h"
#include "test_redis.h"

static test_redis g_redis;          /* the server (tests/unit/common/test_redis.h) */

static long long redis_int(const char *fmt, const char *arg)
{
    redisContext *c = redisConnect("127.0.0.1", g_redis.port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, fmt, arg);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

/* Publishing is asynchronous: wait until the stream's end is in Redis. */
static void wait_ended(const char *run, uint64_t last)
{
    char key[128], id[48];
    snprintf(key, sizeof key, "t:run:%s:events", run);
    snprintf(id, sizeof id, "%llu-1", (unsigned long long)last);
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnect("127.0.0.1", g_redis.port);
        assert_true(c && !c->err);
        redisReply *r = redisCommand(c, "XRANGE %s %s %s", key, id, id);
        bool there = r && r->type == REDIS_REPLY_ARRAY && r->elements == 1;
        if (r) freeReplyObject(r);
        redisFree(c);
        if (there) return;
        usleep(25000);
    }
    fail_msg("%s's end never reached redis", run);
}

static governance_redis_cfg cfg(void)
{
    return (governance_redis_cfg){.host = "127.0.0.1", .port = g_redis.port, .key_prefix = "t:"};
}

/* ---- a follower on this thread's loop ---- */

typedef struct got {
    uint64_t seq[4096];
    char     last_name[32], last_json[64];
    size_t   n;
    uint64_t skip_from, skip_to;
    run_stream_state state;
    int      wakes;
} got;

static void on_wake(void *arg) { ((got *)arg)->wakes++; }

/* Run the loop and take until the state is final (or timeout_ms). */
static void follow_until_final(uv_loop_t *loop, run_stream_reader *rd, got *g, int timeout_ms)
{
    uint64_t end = time_mono_ns() / 1000000 + (uint64_t)timeout_ms;
    for (;;) {
        uv_run(loop, UV_RUN_NOWAIT);
        run_stream_frame f[RUN_STREAM_READER_FRAMES];
        uint64_t sf = 0, st = 0;
        size_t n = run_stream_take(rd, f, RUN_STREAM_READER_FRAMES, &g->state, &sf, &st);
        if (sf && !g->skip_from) {
            g->skip_from = sf;
            g->skip_to = st;
        }
        for (size_t i = 0; i < n && g->n < 4096; i++) {
            g->seq[g->n++] = f[i].seq;
            snprintf(g->last_name, sizeof g->last_name, "%s", f[i].name);
            snprintf(g->last_json, sizeof g->last_json, "%.*s", (int)f[i].len, f[i].json);
        }
        if (g->state == RUN_STREAM_ENDED || g->state == RUN_STREAM_ABSENT || g->state == RUN_STREAM_UNREACHABLE)
            return;
        if (time_mono_ns() / 1000000 > end) return;
        usleep(2000);
    }
}

static void publish_n(run_stream *s, const char *run, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i <= to; i++) {
        char json[64];
        int n = snprintf(json, sizeof json, "{\"i\":%llu}", (unsigned long long)i);
        run_stream_publish(s, run, i, i % 2 ? "message.delta" : "tool.call", json, (size_t)n);
    }
}

static void test_published_read_elsewhere(void **state)
{
    (void)state;
    governance_redis_cfg c = cfg();
    run_stream *a = run_stream_start(&c), *b = run_stream_start(&c);
    assert_non_null(a);
    assert_non_null(b);
    publish_n(a, "run_one", 1, 5);
    run_stream_end(a, "run_one", 5);
    wait_ended("run_one", 5);
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* from the start, on the other instance */
    got *g = calloc(1, sizeof *g);
    run_stream_reader *rd = run_stream_follow(b, "run_one", 0, &loop, on_wake, g);
    assert_non_null(rd);
    follow_until_final(&loop, rd, g, 5000);
    assert_int_equal(g->state, RUN_STREAM_ENDED);
    assert_int_equal(g->n, 5);
    for (size_t i = 0; i < 5; i++) assert_int_equal(g->seq[i], i + 1);
    assert_string_equal(g->last_name, "message.delta");
    assert_string_equal(g->last_json, "{\"i\":5}");
    assert_int_equal(g->skip_from, 0);
    assert_true(g->wakes > 0);
    run_stream_unfollow(rd);
    /* after an id (Last-Event-ID 3) */
    memset(g, 0, sizeof *g);
    rd = run_stream_follow(b, "run_one", 3, &loop, on_wake, g);
    follow_until_final(&loop, rd, g, 5000);
    assert_int_equal(g->state, RUN_STREAM_ENDED);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->seq[0], 4);
    run_stream_unfollow(rd);
    /* the key lingers as the event log does */
    long long ttl = redis_int("TTL %s", "t:run:run_one:events");
    assert_true(ttl > 0 && ttl <= RUN_STREAM_LINGER_S);
    /* live: followed first, published after */
    memset(g, 0, sizeof *g);
    publish_n(a, "run_live", 1, 1);
    usleep(200000);
    rd = run_stream_follow(b, "run_live", 0, &loop, on_wake, g);
    follow_until_final(&loop, rd, g, 300);
    assert_int_equal(g->state, RUN_STREAM_LIVE);
    assert_int_equal(g->n, 1);
    publish_n(a, "run_live", 2, 3);
    run_stream_end(a, "run_live", 3);
    follow_until_final(&loop, rd, g, 5000);
    assert_int_equal(g->state, RUN_STREAM_ENDED);
    assert_int_equal(g->n, 3);
    assert_int_equal(g->seq[2], 3);
    run_stream_unfollow(rd);
    /* a run Redis has no stream of */
    memset(g, 0, sizeof *g);
    rd = run_stream_follow(b, "run_nobody", 0, &loop, on_wake, g);
    follow_until_final(&loop, rd, g, 5000);
    assert_int_equal(g->state, RUN_STREAM_ABSENT);
    assert_int_equal(g->n, 0);
    run_stream_unfollow(rd);
    /* bad input: nothing published, nothing followed */
    run_stream_publish(a, NULL, 1, "x", "{}", 2);
    run_stream_publish(a, "run_x", 0, "x", "{}", 2);
    char longid[200];
    memset(longid, 'r', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    run_stream_publish(a, longid, 1, "x", "{}", 2);
    assert_null(run_stream_follow(b, longid, 0, &loop, on_wake, g));
    uv_run(&loop, UV_RUN_NOWAIT);
    free(g);
    run_stream_stop(a);
    run_stream_stop(b);
    uv_loop_close(&loop);
}

static void test_trimmed_and_bounded(void **state)
{
    (void)state;
    governance_redis_cfg c = cfg();
    run_stream *a = run_stream_start(&c);
    publish_n(a, "run_long", 1, 2000);
    run_stream_end(a, "run_long", 2000);
    /* all of it in Redis first: a reader started earlier reads the head
     * before it is trimmed */
    wait_ended("run_long", 2000);
    uv_loop_t loop;
    uv_loop_init(&loop);
    got *g = calloc(1, sizeof *g);
    run_stream_reader *rd = run_stream_follow(a, "run_long", 0, &loop, on_wake, g);
    follow_until_final(&loop, rd, g, 10000);
    assert_int_equal(g->state, RUN_STREAM_ENDED);
    /* about the last 512 (MAXLEN ~ trims by whole nodes), the rest said skipped */
    assert_true(g->n >= RUN_STREAM_MAXLEN && g->n < 2000);
    assert_int_equal(g->skip_from, 1);
    assert_int_equal(g->skip_to, g->seq[0] - 1);
    for (size_t i = 1; i < g->n; i++) assert_int_equal(g->seq[i], g->seq[i - 1] + 1);
    assert_int_equal(g->seq[g->n - 1], 2000);
    run_stream_unfollow(rd);
    /* at most RUN_STREAM_MAX_READERS followers */
    run_stream_reader **all = calloc(RUN_STREAM_MAX_READERS, sizeof *all);
    for (int i = 0; i < RUN_STREAM_MAX_READERS; i++) {
        all[i] = run_stream_follow(a, "run_long", 0, &loop, on_wake, g);
        assert_non_null(all[i]);
    }
    assert_null(run_stream_follow(a, "run_long", 0, &loop, on_wake, g));
    for (int i = 0; i < RUN_STREAM_MAX_READERS; i++) run_stream_unfollow(all[i]);
    uv_run(&loop, UV_RUN_NOWAIT);
    free(all);
    free(g);
    run_stream_stop(a);
    uv_loop_close(&loop);
}

static void test_redis_away_and_back(void **state)
{
    (void)state;
    governance_redis_cfg c = cfg();
    run_stream *a = run_stream_start(&c);
    uv_loop_t loop;
    uv_loop_init(&loop);
    publish_n(a, "run_before", 1, 2);
    usleep(300000);
    got *g = calloc(1, sizeof *g);
    run_stream_reader *rd = run_stream_follow(a, "run_before", 0, &loop, on_wake, g);
    follow_until_final(&loop, rd, g, 500);
    assert_int_equal(g->n, 2);
    test_redis_stop(&g_redis);
    /* a follower already reading, and one arriving: told, within seconds */
    uint64_t t0 = time_mono_ns() / 1000000;
    follow_until_final(&loop, rd, g, 5000);
    assert_int_equal(g->state, RUN_STREAM_UNREACHABLE);
    run_stream_unfollow(rd);
    got *h = calloc(1, sizeof *h);
    rd = run_stream_follow(a, "run_before", 0, &loop, on_wake, h);
    follow_until_final(&loop, rd, h, 5000);
    assert_int_equal(h->state, RUN_STREAM_UNREACHABLE);
    assert_true(time_mono_ns() / 1000000 - t0 < 5000);
    run_stream_unfollow(rd);
    /* back (empty): what is published now is read again */
    assert_true(test_redis_start(&g_redis));
    usleep(1500000);
    publish_n(a, "run_after", 1, 3);
    run_stream_end(a, "run_after", 3);
    memset(h, 0, sizeof *h);
    for (int attempt = 0; attempt < 20 && h->state != RUN_STREAM_ENDED; attempt++) {
        memset(h, 0, sizeof *h);
        rd = run_stream_follow(a, "run_after", 0, &loop, on_wake, h);
        follow_until_final(&loop, rd, h, 3000);
        run_stream_unfollow(rd);
        if (h->state != RUN_STREAM_ENDED) usleep(250000);
    }
    assert_int_equal(h->state, RUN_STREAM_ENDED);
    assert_int_equal(h->n, 3);
    uv_run(&loop, UV_RUN_NOWAIT);
    free(g);
    free(h);
    run_stream_stop(a);
    uv_loop_close(&loop);
}

int main(void)
{
    int pre = test_redis_precheck();
    if (pre != 0) return pre;
    if (test_redis_open(&g_redis, "rs", 7) != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_read_elsewhere),
        cmocka_unit_test(test_trimmed_and_bounded),
        cmocka_unit_test(test_redis_away_and_back),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (test_redis_close(&g_redis) != 0) rc = rc ? rc : 1;
    return rc;
}
