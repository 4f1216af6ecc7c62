/* test_obs_recent.c — the last hour's per-minute ring: counts by minute,
 * 4xx/5xx apart, tokens and cost as the growth of the running totals,
 * percentiles from the latency buckets, minutes older than an hour gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "obs/recent.h"

static const cJSON *minute_at(const cJSON *root, int64_t start)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(root, "minutes"))
        if ((int64_t)cJSON_GetObjectItem(m, "start")->valuedouble == start) return m;
    return NULL;
}

static double num(const cJSON *m, const char *k) { return cJSON_GetObjectItem(m, k)->valuedouble; }

static void test_minutes(void **state)
{
    (void)state;
    obs_recent_reset();
    int64_t t0 = 1800000000 - 1800000000 % 60;   /* a minute's start */
    /* minute 0: 3 requests (one 404, one 500), 100 tokens used */
    obs_recent_request(t0 + 1, 200, 0.010, 1000, 5000);
    obs_recent_request(t0 + 2, 404, 0.001, 1000, 5000);
    obs_recent_request(t0 + 3, 500, 0.020, 1100, 7000);
    /* minute 2: 100 fast requests and one slow one */
    for (int i = 0; i < 100; i++) obs_recent_request(t0 + 121, 200, 0.002, 1100, 7000);
    obs_recent_request(t0 + 122, 200, 2.0, 1400, 9000);

    cJSON *j = obs_recent_json(t0 + 150);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "minutes")), OBS_RECENT_MINUTES);
    const cJSON *m0 = minute_at(j, t0), *m1 = minute_at(j, t0 + 60), *m2 = minute_at(j, t0 + 120);
    assert_non_null(m0);
    assert_non_null(m2);
    assert_int_equal(num(m0, "requests"), 3);
    assert_int_equal(num(m0, "errors_4xx"), 1);
    assert_int_equal(num(m0, "errors_5xx"), 1);
    assert_int_equal(num(m0, "tokens"), 100);
    assert_true(num(m0, "cost_usd") > 1.9e-6 && num(m0, "cost_usd") < 2.1e-6);
    assert_int_equal(num(m1, "requests"), 0);
    assert_int_equal(num(m2, "requests"), 101);
    assert_int_equal(num(m2, "tokens"), 300);
    /* p50 is a fast bucket (2 ms within √2), p99 too (1 of 101 is slow) */
    assert_true(num(m2, "p50_ms") >= 2.0 && num(m2, "p50_ms") <= 2.9);
    assert_true(num(m2, "p99_ms") <= 2.9);
    cJSON_Delete(j);

    /* an hour later minute 0 is gone, and its slot reused cleanly */
    obs_recent_request(t0 + 3600 + 5, 200, 0.5, 2000, 9000);
    j = obs_recent_json(t0 + 3600 + 10);
    assert_null(minute_at(j, t0));
    const cJSON *late = minute_at(j, t0 + 3600);
    assert_int_equal(num(late, "requests"), 1);
    assert_int_equal(num(late, "errors_5xx"), 0);
    assert_true(num(late, "p50_ms") >= 500 && num(late, "p50_ms") <= 708);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_minutes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
