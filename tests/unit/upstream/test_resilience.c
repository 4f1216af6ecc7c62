/* test_resilience.c — the pure rules of resilience.h, with injected time
 * and random numbers: backoff bounds, the retry budget, circuit breaker
 * transitions, load-balancing choices, failure classes and fallbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/resilience/resilience.h"

/* ---------------------------------------------------------------- backoff */

static void test_backoff_bounds(void **st)
{
    (void)st;
    /* Full jitter: within [0, min(cap, base·2^n)], and both ends reachable. */
    for (unsigned retry = 0; retry < 12; retry++) {
        uint64_t ceil = 100ull << retry;
        if (ceil > 2000) ceil = 2000;
        uint64_t lo = UINT64_MAX, hi = 0;
        for (uint64_t r = 0; r < 5000; r++) {
            uint64_t d = upstream_backoff_ms(100, 2000, retry, r * 2654435761u);
            assert_true(d <= ceil);
            if (d < lo) lo = d;
            if (d > hi) hi = d;
        }
        assert_true(lo <= ceil / 20);
        assert_true(hi >= ceil - ceil / 20);
    }
    assert_int_equal(upstream_backoff_ms(100, 2000, 0, 100), 100);   /* rnd % 101 */
    assert_int_equal(upstream_backoff_ms(0, 2000, 3, 12345), 0);     /* no base: no wait */
    assert_true(upstream_backoff_ms(100, 2000, 1000, UINT64_MAX) <= 2000);   /* no overflow */
}

/* ----------------------------------------------------------- retry budget */

static void test_budget_ratio_and_floor(void **st)
{
    (void)st;
    upstream_budget b;
    memset(&b, 0, sizeof b);
    uint64_t t = 1000000;
    /* No floor: 100 requests allow 20 retries at ratio 0.2, not 21. */
    for (int i = 0; i < 100; i++) upstream_budget_note_request(&b, t);
    int ok = 0;
    for (int i = 0; i < 50; i++) ok += upstream_budget_take_retry(&b, 0.2, 0, t);
    assert_int_equal(ok, 20);

    /* Floor: 1 a second = 10 per window, with no requests at all. */
    memset(&b, 0, sizeof b);
    ok = 0;
    for (int i = 0; i < 50; i++) ok += upstream_budget_take_retry(&b, 0.2, 1, t);
    assert_int_equal(ok, 10);
}

static void test_budget_window_slides(void **st)
{
    (void)st;
    upstream_budget b;
    memset(&b, 0, sizeof b);
    uint64_t t = 5000000;
    for (int i = 0; i < 10; i++) upstream_budget_note_request(&b, t);
    assert_true(upstream_budget_take_retry(&b, 0.2, 0, t));
    assert_true(upstream_budget_take_retry(&b, 0.2, 0, t));
    assert_false(upstream_budget_take_retry(&b, 0.2, 0, t));
    /* 9.9 s later the old second still counts; 10 s later it is gone. */
    assert_false(upstream_budget_take_retry(&b, 0.2, 0, t + 9000));
    for (int i = 0; i < 10; i++) upstream_budget_note_request(&b, t + 10000);
    assert_true(upstream_budget_take_retry(&b, 0.2, 0, t + 10000));
    assert_true(upstream_budget_take_retry(&b, 0.2, 0, t + 10000));
    assert_false(upstream_budget_take_retry(&b, 0.2, 0, t + 10000));
}

/* ------------------------------------------------------- circuit breaker */

static const upstream_breaker_cfg BC = {
    .failures = 5, .error_rate = 0.5, .window_ms = 10000, .min_calls = 10, .open_ms = 5000,
};

static void test_breaker_consecutive(void **st)
{
    (void)st;
    upstream_breaker b;
    memset(&b, 0, sizeof b);
    uint64_t t = 100000;
    bool probe;
    for (int i = 0; i < 4; i++) upstream_breaker_record(&b, &BC, t, UPSTREAM_FAULT_SERVER_ERROR, false);
    assert_int_equal(upstream_breaker_state_at(&b, &BC, t), UPSTREAM_BREAKER_CLOSED);
    /* A success breaks the run. */
    upstream_breaker_record(&b, &BC, t, UPSTREAM_FAULT_NONE, false);
    for (int i = 0; i < 4; i++) upstream_breaker_record(&b, &BC, t, UPSTREAM_FAULT_TIMEOUT, false);
    assert_int_equal(upstream_breaker_state_at(&b, &BC, t), UPSTREAM_BREAKER_CLOSED);
    upstream_breaker_record(&b, &BC, t, UPSTREAM_FAULT_CONNECT, false);
    assert_int_equal(upstream_breaker_state_at(&b, &BC, t), UPSTREAM_BREAKER_OPEN);
    assert_false(upstream_breaker_admit(&b, &BC, t + 4999, &probe));
    /* After open_ms: half-open, one probe only. */
    assert_int_equal(upstream_breaker_state_at(&b, &BC, t + 5000), UPSTREAM_BREAKER_HALF_OPEN);
    assert_true(upstream_breaker_admit(&b, &BC, t + 5000, &probe));
    assert_true(probe);
    assert_false(upstream_breaker_admit(&b, &BC, t + 5001, &probe));
    /* A straggler's result does not decide; the probe's failure reopens. */
    upstream_breaker_record(&b, &BC, t + 5002, UPSTREAM_FAULT_NONE, false);
    assert_int_equal(b.state, UPSTREAM_BREAKER_HALF_OPEN);
    upstream_breaker_record(&b, &BC, t + 5003, UPSTREAM_FAULT_SERVER_ERROR, true);
    assert_int_equal(upstream_breaker_state_at(&b, &BC, t + 5003), UPSTREAM_BREAKER_OPEN);
    assert_false(upstream_breaker_admit(&b, &BC, t + 9000, &probe));
    /* The next probe succeeds: closed, with a clean slate. */
    assert_true(upstream_breaker_admit(&b, &BC, t + 10003, &probe));
    assert_true(probe);
    upstream_breaker_record(&b, &BC, t + 10100, UPSTREAM_FAULT_NONE, true);
    assert_int_equal(upstream_breaker_state_at(&b, &BC, t + 10100), UPSTREAM_BREAKER_CLOSED);
    assert_true(upstream_breaker_admit(&b, &BC, t + 10100, &probe));
    assert_false(probe);
    assert_int_equal(b.opens, 2);
}

static void test_breaker_rate_and_request_errors(void **st)
{
    (void)st;
    upstream_breaker b;
    memset(&b, 0, sizeof b);
    uint64_t t = 200000;
    /* Alternating success and fault: never 5 in a row, but 50% once 10 calls. */
    for (int i = 0; i < 9; i++)
        upstream_breaker_record(&b, &BC, t + (uint64_t)i * 100, i % 2 ? UPSTREAM_FAULT_NONE : UPSTREAM_FAULT_RATE_LIMIT,
                                false);
    assert_int_equal(b.state, UPSTREAM_BREAKER_CLOSED);   /* 5 of 9, under min_calls */
    upstream_breaker_record(&b, &BC, t + 950, UPSTREAM_FAULT_MALFORMED, false);
    assert_int_equal(b.state, UPSTREAM_BREAKER_OPEN);      /* 6 of 10 */

    /* 4xx request errors are the client's: never open it. Cancels neither. */
    memset(&b, 0, sizeof b);
    for (int i = 0; i < 50; i++) upstream_breaker_record(&b, &BC, t, UPSTREAM_FAULT_REQUEST, false);
    for (int i = 0; i < 50; i++) upstream_breaker_record(&b, &BC, t, UPSTREAM_FAULT_CANCELLED, false);
    assert_int_equal(b.state, UPSTREAM_BREAKER_CLOSED);

    /* Faults older than the window are forgotten. */
    memset(&b, 0, sizeof b);
    for (int i = 0; i < 4; i++) upstream_breaker_record(&b, &BC, t, UPSTREAM_FAULT_SERVER_ERROR, false);
    for (int i = 0; i < 6; i++) upstream_breaker_record(&b, &BC, t + 20000, UPSTREAM_FAULT_NONE, false);
    upstream_breaker_record(&b, &BC, t + 20000, UPSTREAM_FAULT_SERVER_ERROR, false);
    assert_int_equal(b.state, UPSTREAM_BREAKER_CLOSED);
}

static void test_breaker_cancelled_probe(void **st)
{
    (void)st;
    upstream_breaker b;
    memset(&b, 0, sizeof b);
    bool probe;
    for (int i = 0; i < 5; i++) upstream_breaker_record(&b, &BC, 1000, UPSTREAM_FAULT_CONNECT, false);
    assert_true(upstream_breaker_admit(&b, &BC, 7000, &probe));
    assert_true(probe);
    upstream_breaker_record(&b, &BC, 7001, UPSTREAM_FAULT_CANCELLED, true);
    /* The probe came back undecided: another may go. */
    assert_true(upstream_breaker_admit(&b, &BC, 7002, &probe));
    assert_true(probe);
}

/* --------------------------------------------------------- load balancing */

static void test_lb_weighted_proportions(void **st)
{
    (void)st;
    upstream_lb_item it[3];
    memset(it, 0, sizeof it);
    it[0].weight = 3;
    it[1].weight = 1;
    it[2].weight = 1;
    for (int i = 0; i < 3; i++) it[i].eligible = it[i].preferred = true;
    int count[3] = {0, 0, 0};
    int longest_run = 0, run = 0, last = -1;
    for (int n = 0; n < 500; n++) {
        int p = upstream_lb_pick(it, 3, BALANCE_WEIGHTED, (uint64_t)n);
        assert_true(p >= 0 && p < 3);
        count[p]++;
        run = p == last ? run + 1 : 1;
        last = p;
        if (run > longest_run) longest_run = run;
    }
    assert_int_equal(count[0], 300);
    assert_int_equal(count[1], 100);
    assert_int_equal(count[2], 100);
    assert_true(longest_run <= 2);   /* smooth: no bursts of the heavy one */

    /* An ineligible one (open breaker) gets nothing; the rest share. */
    it[0].eligible = false;
    memset(count, 0, sizeof count);
    for (int n = 0; n < 100; n++) count[upstream_lb_pick(it, 3, BALANCE_WEIGHTED, 0)]++;
    assert_int_equal(count[0], 0);
    assert_int_equal(count[1], 50);
    assert_int_equal(count[2], 50);
}

static void test_lb_least_in_flight(void **st)
{
    (void)st;
    upstream_lb_item it[3];
    memset(it, 0, sizeof it);
    for (int i = 0; i < 3; i++) {
        it[i].weight = 1;
        it[i].eligible = it[i].preferred = true;
    }
    it[0].in_flight = 4;
    it[1].in_flight = 1;
    it[2].in_flight = 2;
    for (uint64_t r = 0; r < 10; r++) assert_int_equal(upstream_lb_pick(it, 3, BALANCE_LEAST_IN_FLIGHT, r), 1);
    /* Relative to weight: 4 of weight 8 is less loaded than 1 of weight 1. */
    it[0].weight = 8;
    assert_int_equal(upstream_lb_pick(it, 3, BALANCE_LEAST_IN_FLIGHT, 0), 0);
    /* Ties spread by the random start. */
    it[0].weight = 1;
    it[0].in_flight = it[1].in_flight = it[2].in_flight = 0;
    int seen[3] = {0, 0, 0};
    for (uint64_t r = 0; r < 30; r++) seen[upstream_lb_pick(it, 3, BALANCE_LEAST_IN_FLIGHT, r)]++;
    assert_true(seen[0] && seen[1] && seen[2]);
    /* Skip open ones; prefer untried ones; none eligible → -1. */
    it[1].eligible = false;
    it[0].preferred = false;
    for (uint64_t r = 0; r < 10; r++) assert_int_equal(upstream_lb_pick(it, 3, BALANCE_LEAST_IN_FLIGHT, r), 2);
    it[2].eligible = false;
    assert_int_equal(upstream_lb_pick(it, 3, BALANCE_LEAST_IN_FLIGHT, 0), 0);   /* tried, but the only one */
    it[0].eligible = false;
    assert_int_equal(upstream_lb_pick(it, 3, BALANCE_LEAST_IN_FLIGHT, 0), -1);
}

/* ------------------------------------------------------ faults, fallbacks */

static void test_fault_classes(void **st)
{
    (void)st;
    upstream_result r;
    memset(&r, 0, sizeof r);
    assert_int_equal(upstream_fault_of(&r), UPSTREAM_FAULT_NONE);
    r.error = UPSTREAM_HTTP_STATUS;
    r.status = 429;
    assert_int_equal(upstream_fault_of(&r), UPSTREAM_FAULT_RATE_LIMIT);
    r.status = 503;
    assert_int_equal(upstream_fault_of(&r), UPSTREAM_FAULT_SERVER_ERROR);
    r.status = 400;
    r.body = "{\"error\":{\"message\":\"bad\",\"code\":\"invalid_value\"}}";
    r.body_len = strlen(r.body);
    assert_int_equal(upstream_fault_of(&r), UPSTREAM_FAULT_REQUEST);
    assert_false(upstream_fault_transient(UPSTREAM_FAULT_REQUEST));
    r.body = "{\"error\":{\"message\":\"This model's maximum context length is 8192 tokens\","
             "\"code\":\"context_length_exceeded\"}}";
    r.body_len = strlen(r.body);
    assert_int_equal(upstream_fault_of(&r), UPSTREAM_FAULT_CONTEXT_WINDOW);
    r.body = "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
             "\"message\":\"prompt is too long: 210000 tokens > 200000 maximum\"}}";
    r.body_len = strlen(r.body);
    assert_int_equal(upstream_fault_of(&r), UPSTREAM_FAULT_CONTEXT_WINDOW);
    r.error = UPSTREAM_TRUNCATED;
    assert_int_equal(upstream_fault_of(&r), UPSTREAM_FAULT_MALFORMED);
    r.error = UPSTREAM_TIMEOUT;
    assert_true(upstream_fault_transient(upstream_fault_of(&r)));
    r.error = UPSTREAM_CANCELLED;
    assert_false(upstream_fault_transient(upstream_fault_of(&r)));
}

static void test_fallback_rules(void **st)
{
    (void)st;
    model_cfg small = {.name = "small", .context_window = 8000, .fallback_on = FALLBACK_ALL};
    model_cfg mid = {.name = "mid", .context_window = 8000, .fallback_on = FALLBACK_ALL};
    model_cfg big = {.name = "big", .context_window = 200000, .fallback_on = FALLBACK_ALL};
    const model_cfg *chain[] = {&mid, &big};
    small.fallback_models = chain;
    small.n_fallbacks = 2;

    size_t pos = 0;
    assert_ptr_equal(upstream_fallback_next(&small, &pos, &small, UPSTREAM_FAULT_SERVER_ERROR, 100), &mid);
    assert_ptr_equal(upstream_fallback_next(&small, &pos, &mid, UPSTREAM_FAULT_TIMEOUT, 100), &big);
    assert_null(upstream_fallback_next(&small, &pos, &big, UPSTREAM_FAULT_TIMEOUT, 100));   /* used up */

    /* Context window: only to a larger window. */
    pos = 0;
    assert_ptr_equal(upstream_fallback_next(&small, &pos, &small, UPSTREAM_FAULT_CONTEXT_WINDOW, 100), &big);
    /* A prompt that does not fit a fallback skips it. */
    pos = 0;
    assert_ptr_equal(upstream_fallback_next(&small, &pos, &small, UPSTREAM_FAULT_CONNECT, 9000), &big);

    /* Request errors, cancels and classes not in fallback_on do not fall back. */
    pos = 0;
    assert_null(upstream_fallback_next(&small, &pos, &small, UPSTREAM_FAULT_REQUEST, 100));
    assert_null(upstream_fallback_next(&small, &pos, &small, UPSTREAM_FAULT_CANCELLED, 100));
    small.fallback_on = FALLBACK_RATE_LIMIT;
    assert_null(upstream_fallback_next(&small, &pos, &small, UPSTREAM_FAULT_SERVER_ERROR, 100));
    assert_ptr_equal(upstream_fallback_next(&small, &pos, &small, UPSTREAM_FAULT_RATE_LIMIT, 100), &mid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_budget_ratio_and_floor),
        cmocka_unit_test(test_budget_window_slides),
        cmocka_unit_test(test_breaker_consecutive),
        cmocka_unit_test(test_breaker_rate_and_request_errors),
        cmocka_unit_test(test_breaker_cancelled_probe),
        cmocka_unit_test(test_lb_weighted_proportions),
        cmocka_unit_test(test_lb_least_in_flight),
        cmocka_unit_test(test_fault_classes),
        cmocka_unit_test(test_fallback_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
