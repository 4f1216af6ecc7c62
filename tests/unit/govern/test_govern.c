/* test_govern.c — the rules of src/govern/govern.c: reservations never let
 * concurrent calls past a budget, GCRA admits exactly its burst and then
 * right on the promised second, periods roll over at UTC midnight and the
 * first of the month, release and double settle, the ledger rebuild, the
 * refusal texts and run concurrency. Every test runs on an injected clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "govern/govern.h"

#define USD GOVERN_NUSD_PER_USD

/* ---- the injected clock ---- */

static _Atomic int64_t fake_now_ms;
static int64_t fake_clock(void *arg) { (void)arg; return atomic_load(&fake_now_ms); }
static void set_now(int64_t ms) { atomic_store(&fake_now_ms, ms); }

static govern *new_govern(int64_t now_ms)
{
    set_now(now_ms);
    govern *g = govern_new(fake_clock, NULL);
    assert_non_null(g);
    return g;
}

static govern_subject subject(const char *tenant, const char *user, const char *key)
{
    govern_subject s;
    memset(&s, 0, sizeof s);
    s.tenant_id = tenant;
    s.user_id = user;
    s.key_id = key;
    return s;
}

#define T0 1707998400000LL   /* 2024-02-15T12:00:00Z */

/* ---- (a) concurrent admissions against one budget ---- */

#define N_THREADS 8
#define EST (100 * 1000000LL)          /* $0.10 worst case */
#define BUDGET (10 * EST)              /* exactly 10 worst cases */

typedef struct race {
    govern        *g;
    govern_subject s;
    pthread_barrier_t start;
    _Atomic int    admitted;
    govern_reservation held[N_THREADS][64];
    int            n_held[N_THREADS];
    _Atomic int64_t settled_sum;
    int            settle_now;   /* phase 2: settle right after admitting */
    _Atomic int    odd;          /* unexpected outcomes seen by threads */
} race;

typedef struct race_arg { race *r; int id; } race_arg;

static void *race_thread(void *p)
{
    race_arg *a = p;
    race *r = a->r;
    uint32_t seed = 12345u + (uint32_t)a->id;
    pthread_barrier_wait(&r->start);
    for (int i = 0; i < 2000; i++) {
        govern_reservation res;
        govern_refusal why;
        if (!govern_admit(r->g, &r->s, 10, EST, &res, &why, NULL)) {
            /* cmocka cannot fail from a thread: count, check in main. */
            if (strcmp(why.code, "budget_exceeded") != 0) atomic_fetch_add(&r->odd, 1);
            continue;
        }
        atomic_fetch_add(&r->admitted, 1);
        if (r->settle_now) {
            seed = seed * 1103515245u + 12345u;
            int64_t actual = (int64_t)(seed >> 8) % (EST + 1);   /* 0..EST */
            govern_settle(r->g, &res, 10, actual);
            atomic_fetch_add(&r->settled_sum, actual);
        } else {
            if (r->n_held[a->id] >= 64) { atomic_fetch_add(&r->odd, 1); continue; }
            r->held[a->id][r->n_held[a->id]++] = res;
        }
    }
    return NULL;
}

static void run_race(race *r)
{
    pthread_t th[N_THREADS];
    race_arg args[N_THREADS];
    pthread_barrier_init(&r->start, NULL, N_THREADS);
    for (int i = 0; i < N_THREADS; i++) {
        args[i].r = r;
        args[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, race_thread, &args[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r->start);
}

static void test_budget_race(void **state)
{
    (void)state;
    race *r = calloc(1, sizeof *r);
    r->g = new_govern(T0);
    r->s = subject("ten_a", "usr_a", "key_a");
    r->s.user.daily_budget_nusd = BUDGET;
    r->s.tenant.monthly_budget_nusd = 1000 * USD;

    /* Phase 1: 16000 attempts while nothing settles: exactly 10 pass. */
    run_race(r);
    assert_int_equal(atomic_load(&r->admitted), 10);
    assert_int_equal(atomic_load(&r->odd), 0);
    govern_period day;
    govern_spend(r->g, "ten_a", "usr_a", &day, NULL);
    assert_int_equal(day.reserved_nusd, BUDGET);
    assert_int_equal(day.spent_nusd, 0);

    /* Settle all ten at 40% of the estimate: 6 worst cases fit again. */
    for (int t = 0; t < N_THREADS; t++)
        for (int i = 0; i < r->n_held[t]; i++) {
            govern_settle(r->g, &r->held[t][i], 4, EST * 4 / 10);
            atomic_fetch_add(&r->settled_sum, EST * 4 / 10);
        }
    govern_spend(r->g, "ten_a", "usr_a", &day, NULL);
    assert_int_equal(day.reserved_nusd, 0);
    assert_int_equal(day.spent_nusd, 4 * EST);

    /* Phase 2: admit and settle at random actual <= estimate concurrently. */
    atomic_store(&r->admitted, 0);
    memset(r->n_held, 0, sizeof r->n_held);
    r->settle_now = 1;
    run_race(r);
    assert_true(atomic_load(&r->admitted) >= 6);
    assert_int_equal(atomic_load(&r->odd), 0);
    govern_spend(r->g, "ten_a", "usr_a", &day, NULL);
    assert_int_equal(day.reserved_nusd, 0);
    assert_int_equal(day.spent_nusd, atomic_load(&r->settled_sum));
    assert_true(day.spent_nusd <= BUDGET);
    /* And the budget was used up as far as worst cases allow. */
    assert_true(day.spent_nusd + EST > BUDGET);

    govern_stats st;
    govern_stats(r->g, &st);
    assert_int_equal(st.admits, (uint64_t)(10 + atomic_load(&r->admitted)));
    assert_int_equal(st.admits + st.refused_daily_budget, 2u * N_THREADS * 2000);
    assert_int_equal(st.reserved_nusd, 0);
    govern_free(r->g);
    free(r);
}

/* ---- (b) GCRA ---- */

static void check_rpm_burst_then_exact(int64_t L)
{
    govern *g = new_govern(T0);
    govern_subject s = subject("ten_a", "usr_a", "key_a");
    s.user.rpm = L;
    govern_reservation res;
    govern_refusal why;
    govern_ratelimit_info rl;
    for (int64_t i = 0; i < L; i++) {
        assert_true(govern_admit(g, &s, 0, 0, &res, &why, &rl));
        assert_true(rl.has_requests);
        assert_int_equal(rl.limit_requests, L);
        assert_int_equal(rl.remaining_requests, L - 1 - i);
    }
    assert_false(govern_admit(g, &s, 0, 0, &res, &why, NULL));
    assert_int_equal(why.status, 429);
    assert_string_equal(why.type, "rate_limit_error");
    assert_string_equal(why.code, "rate_limit_exceeded");
    assert_string_equal(why.limit, "user.rpm");
    int64_t expect_s = (60 + L - 1) / L;          /* ceil(60/L) */
    assert_int_equal(why.retry_after_s, expect_s);

    /* The exact instant: T = 60 s / L rounded up to the millisecond. */
    int64_t wait_ms = (60000 * 1000000LL / L + 999999) / 1000000;
    set_now(T0 + wait_ms - 1);
    assert_false(govern_admit(g, &s, 0, 0, &res, &why, NULL));
    assert_int_equal(why.retry_after_s, 1);
    set_now(T0 + wait_ms);
    assert_true(govern_admit(g, &s, 0, 0, &res, &why, NULL));
    assert_false(govern_admit(g, &s, 0, 0, &res, &why, NULL));
    /* Retrying at the promised second passes. */
    set_now(T0 + wait_ms + why.retry_after_s * 1000LL);
    assert_true(govern_admit(g, &s, 0, 0, &res, &why, NULL));
    govern_free(g);
}

static void test_gcra_rpm(void **state)
{
    (void)state;
    check_rpm_burst_then_exact(60);
    check_rpm_burst_then_exact(7);
    check_rpm_burst_then_exact(1);
    check_rpm_burst_then_exact(1000);
}

static void test_gcra_tpm_settle_gives_back(void **state)
{
    (void)state;
    govern *g = new_govern(T0);
    govern_subject s = subject("ten_a", "usr_a", "key_a");
    s.key.tpm = 1000;
    govern_reservation r1, r2;
    govern_refusal why;
    govern_ratelimit_info rl;
    assert_true(govern_admit(g, &s, 600, 0, &r1, &why, &rl));
    assert_true(rl.has_tokens);
    assert_false(rl.has_requests);
    assert_int_equal(rl.remaining_tokens, 400);
    assert_int_equal(rl.reset_tokens_ms, 36000);
    assert_false(govern_admit(g, &s, 600, 0, &r2, &why, NULL));
    assert_string_equal(why.limit, "key.tpm");
    assert_int_equal(why.retry_after_s, 12);   /* 36 s + 36 s - 60 s */

    /* Only 100 of 600 used: 500 come back, now 600 fit. */
    govern_settle(g, &r1, 100, 0);
    govern_peek_rate(g, &s, &rl);
    assert_int_equal(rl.remaining_tokens, 900);
    assert_true(govern_admit(g, &s, 600, 0, &r2, &why, NULL));
    /* Release gives all back but never more than full. */
    govern_release(g, &r2);
    set_now(T0 + 120000);
    govern_peek_rate(g, &s, &rl);
    assert_int_equal(rl.remaining_tokens, 1000);
    assert_int_equal(rl.reset_tokens_ms, 0);

    /* More than the limit in one request: never, and do not retry. */
    assert_false(govern_admit(g, &s, 1001, 0, &r2, &why, NULL));
    assert_string_equal(why.code, "tokens_exceed_limit");
    assert_string_equal(why.type, "rate_limit_error");
    assert_int_equal(why.retry_after_s, 0);
    /* The whole limit at once is fine from full. */
    assert_true(govern_admit(g, &s, 1000, 0, &r2, &why, NULL));
    /* Going over the estimate is charged: 500 extra tokens = 30 s of debt. */
    govern_settle(g, &r2, 1500, 0);
    assert_false(govern_admit(g, &s, 1, 0, &r1, &why, NULL));
    assert_int_equal(why.retry_after_s, 31);
    govern_stats st;
    govern_stats(g, &st);
    assert_int_equal(st.refused_tpm, 2);
    assert_int_equal(st.refused_tokens_exceed, 1);
    govern_free(g);
}

/* A refusal by one level consumes nothing at the others; the longest wait
 * is the one reported. */
static void test_all_or_nothing(void **state)
{
    (void)state;
    govern *g = new_govern(T0);
    govern_subject s = subject("ten_a", "usr_a", "key_a");
    s.user.rpm = 10;
    s.tenant.rpm = 2;
    s.user.daily_budget_nusd = 5 * USD;
    govern_reservation r;
    govern_refusal why;
    govern_ratelimit_info rl;
    assert_true(govern_admit(g, &s, 0, USD, &r, &why, &rl));
    assert_int_equal(rl.limit_requests, 2);       /* tenant: 1 left, user 9 */
    assert_int_equal(rl.remaining_requests, 1);
    s.tenant.rpm = 0;
    govern_peek_rate(g, &s, &rl);
    assert_int_equal(rl.limit_requests, 10);      /* the user alone */
    assert_int_equal(rl.remaining_requests, 9);
    s.tenant.rpm = 2;
    assert_true(govern_admit(g, &s, 0, USD, &r, &why, &rl));
    assert_int_equal(rl.limit_requests, 2);
    assert_int_equal(rl.remaining_requests, 0);
    assert_int_equal(rl.reset_requests_ms, 60000);
    for (int i = 0; i < 5; i++) {
        assert_false(govern_admit(g, &s, 0, USD, &r, &why, NULL));
        assert_string_equal(why.limit, "tenant.rpm");
        assert_int_equal(why.retry_after_s, 30);
    }
    govern_ratelimit_info peek;
    s.tenant.rpm = 0;
    govern_peek_rate(g, &s, &peek);
    assert_int_equal(peek.remaining_requests, 8);  /* refusals took nothing */
    govern_period day;
    govern_spend(g, "ten_a", "usr_a", &day, NULL);
    assert_int_equal(day.reserved_nusd, 2 * USD);
    /* An absurd estimate is refused, not overflowed into a pass. */
    assert_false(govern_admit(g, &s, 0, INT64_MAX, &r, &why, NULL));
    assert_string_equal(why.limit, "user.daily_budget");
    govern_free(g);
}

/* ---- (c) periods ---- */

static void test_period_math(void **state)
{
    (void)state;
    assert_int_equal(govern_day_start(1709164740000LL), 1709078400000LL);
    assert_int_equal(govern_month_start(1709164800000LL), 1706745600000LL);  /* Feb 29 -> Feb 1 */
    assert_int_equal(govern_month_end(1709164800000LL), 1709251200000LL);    /* -> Mar 1 2024 */
    assert_int_equal(govern_month_end(1677585600000LL), 1677628800000LL);    /* Feb 28 2023 -> Mar 1 */
    assert_int_equal(govern_month_end(1702598400000LL), 1704067200000LL);    /* Dec -> Jan 1 */
    assert_int_equal(govern_month_start(1702598400000LL), 1701388800000LL);
    assert_int_equal(govern_month_start(1706745599000LL), 1704067200000LL);  /* Jan 31 23:59:59 */
}

static void test_rollover_leap_year(void **state)
{
    (void)state;
    const int64_t feb28_2359 = 1709164740000LL, feb29 = 1709164800000LL,
                  mar1 = 1709251200000LL;
    govern *g = new_govern(feb28_2359);
    govern_subject s = subject("ten_a", "usr_a", "key_a");
    s.user.daily_budget_nusd = USD;
    s.user.monthly_budget_nusd = 10 * USD;
    govern_reservation r1, r2;
    govern_refusal why;
    govern_period day, month;

    assert_true(govern_admit(g, &s, 0, USD / 2, &r1, &why, NULL));
    govern_settle(g, &r1, 0, USD * 4 / 10);
    set_now(feb28_2359 + 30000);
    assert_true(govern_admit(g, &s, 0, USD / 2, &r2, &why, NULL));   /* before midnight */
    assert_false(govern_admit(g, &s, 0, USD / 2, &r1, &why, NULL));
    assert_string_equal(why.limit, "user.daily_budget");
    assert_string_equal(why.type, "insufficient_quota");
    assert_int_equal(why.retry_after_s, 30);                         /* until midnight */

    /* Midnight: the day starts at 0, the month keeps its spend, and the
     * outstanding reservation still counts. */
    set_now(feb29);
    govern_spend(g, "ten_a", "usr_a", &day, &month);
    assert_int_equal(day.spent_nusd, 0);
    assert_int_equal(day.reserved_nusd, USD / 2);
    assert_int_equal(day.start_ms, feb29);
    assert_int_equal(day.end_ms, feb29 + 86400000LL);
    assert_int_equal(month.spent_nusd, USD * 4 / 10);
    assert_int_equal(month.start_ms, 1706745600000LL);
    assert_int_equal(month.end_ms, mar1);
    assert_int_equal(r2.day_start_ms, feb29 - 86400000LL);
    /* Settled after midnight: charged to the new day. */
    govern_settle(g, &r2, 0, USD * 3 / 10);
    govern_spend(g, "ten_a", "usr_a", &day, &month);
    assert_int_equal(day.spent_nusd, USD * 3 / 10);
    assert_int_equal(day.reserved_nusd, 0);
    assert_int_equal(month.spent_nusd, USD * 7 / 10);
    /* Tenant totals move along. */
    govern_spend(g, "ten_a", NULL, &day, &month);
    assert_int_equal(month.spent_nusd, USD * 7 / 10);

    /* Monthly budget: refusal waits until March 1st. */
    s.user.monthly_budget_nusd = USD;
    set_now(mar1 - 3600000);
    assert_false(govern_admit(g, &s, 0, USD / 2, &r1, &why, NULL));
    assert_string_equal(why.limit, "user.monthly_budget");
    assert_int_equal(why.retry_after_s, 3600);
    set_now(mar1);
    govern_spend(g, "ten_a", "usr_a", &day, &month);
    assert_int_equal(month.spent_nusd, 0);
    assert_int_equal(day.spent_nusd, 0);
    assert_int_equal(month.start_ms, mar1);
    assert_true(govern_admit(g, &s, 0, USD / 2, &r1, &why, NULL));

    /* A clock stepping back does not bring old spend back nor lose new. */
    govern_settle(g, &r1, 0, USD / 4);
    set_now(mar1 - 1000);
    govern_spend(g, "ten_a", "usr_a", &day, &month);
    assert_int_equal(month.spent_nusd, USD / 4);
    govern_free(g);
}

/* ---- (d) release and double settle ---- */

static void test_release_and_double_settle(void **state)
{
    (void)state;
    govern *g = new_govern(T0);
    govern_subject s = subject("ten_a", "usr_a", "key_a");
    s.tenant.daily_budget_nusd = USD;
    govern_reservation r, r2, zero;
    govern_refusal why;
    govern_period day;
    memset(&zero, 0, sizeof zero);

    assert_true(govern_admit(g, &s, 0, USD, &r, &why, NULL));
    assert_false(govern_admit(g, &s, 0, 1, &r2, &why, NULL));
    assert_string_equal(why.limit, "tenant.daily_budget");
    govern_release(g, &r);                       /* the call failed */
    govern_spend(g, "ten_a", NULL, &day, NULL);
    assert_int_equal(day.reserved_nusd, 0);
    assert_int_equal(day.spent_nusd, 0);
    govern_settle(g, &r, 0, USD);                /* after release: no-op */
    govern_release(g, &r);
    govern_spend(g, "ten_a", NULL, &day, NULL);
    assert_int_equal(day.spent_nusd, 0);

    assert_true(govern_admit(g, &s, 0, USD / 2, &r, &why, NULL));
    govern_settle(g, &r, 0, USD / 4);
    govern_settle(g, &r, 0, USD / 4);            /* double settle: no-op */
    govern_release(g, &r);
    govern_settle(g, &zero, 0, USD);             /* never admitted: no-op */
    govern_spend(g, "ten_a", NULL, &day, NULL);
    assert_int_equal(day.spent_nusd, USD / 4);
    assert_int_equal(day.reserved_nusd, 0);
    govern_stats st;
    govern_stats(g, &st);
    assert_int_equal(st.settles, 1);
    assert_int_equal(st.releases, 1);
    assert_int_equal(st.refused_daily_budget, 1);
    govern_free(g);
}

/* ---- (e) the ledger rebuild ---- */

static void test_ledger_rebuild(void **state)
{
    (void)state;
    govern *g = new_govern(T0);                  /* 2024-02-15T12:00Z */
    govern_ledger_add(g, "ten_a", "usr_a", "key_a", 1707991200, 100);   /* today */
    govern_ledger_add(g, "ten_a", "usr_a", "key_a", 1707904800, 20);    /* Feb 14 */
    govern_ledger_add(g, "ten_a", "usr_a", "key_a", 1706745599, 3000);  /* Jan 31 */
    govern_ledger_add(g, "ten_a", "usr_a", "key_a", 1709251200, 50000); /* future */
    govern_ledger_add(g, "ten_a", "", "key_adm", 1707991200, 4);        /* admin call */
    govern_ledger_add(g, "ten_b", "usr_b", "", 1707991200, 7);
    govern_period day, month;
    govern_spend(g, "ten_a", "usr_a", &day, &month);
    assert_int_equal(day.spent_nusd, 100);
    assert_int_equal(month.spent_nusd, 120);
    govern_spend(g, "ten_a", "", &day, &month);
    assert_int_equal(day.spent_nusd, 104);
    assert_int_equal(month.spent_nusd, 124);
    govern_spend(g, "ten_b", NULL, &day, &month);
    assert_int_equal(day.spent_nusd, 7);
    govern_spend(g, "ten_zz", "nobody", &day, &month);
    assert_int_equal(month.spent_nusd, 0);
    assert_int_equal(month.start_ms, 1706745600000LL);

    /* The rebuilt spend counts against the key's budget too. */
    govern_subject s = subject("ten_a", "usr_a", "key_a");
    s.key.daily_budget_nusd = 150;
    govern_reservation r;
    govern_refusal why;
    assert_true(govern_admit(g, &s, 0, 50, &r, &why, NULL));
    assert_false(govern_admit(g, &s, 0, 1, &r, &why, NULL));
    assert_string_equal(why.limit, "key.daily_budget");
    govern_free(g);
}

/* ---- (f) refusal texts ---- */

static void test_refusal_texts(void **state)
{
    (void)state;
    govern *g = new_govern(T0);
    govern_subject s = subject("ten_a", "usr_a", "key_a");
    s.user.rpm = 1;
    s.user.monthly_budget_nusd = 2 * USD;
    govern_reservation r;
    govern_refusal why;

    assert_true(govern_admit(g, &s, 0, USD + USD / 2, &r, &why, NULL));
    assert_false(govern_admit(g, &s, 0, USD, &r, &why, NULL));
    assert_string_equal(why.code, "budget_exceeded");
    assert_non_null(strstr(why.message, "user.monthly_budget"));
    assert_non_null(strstr(why.message, "$2.000000"));      /* the budget */
    assert_non_null(strstr(why.message, "$1.500000"));      /* reserved */
    assert_non_null(strstr(why.message, "2024-03-01T00:00:00Z"));

    assert_false(govern_admit(g, &s, 0, 0, &r, &why, NULL));
    assert_string_equal(why.code, "rate_limit_exceeded");
    assert_non_null(strstr(why.message, "user.rpm"));
    assert_non_null(strstr(why.message, "1 requests per minute"));
    assert_non_null(strstr(why.message, "Retry in 60 s"));

    s.tenant.tpm = 10;
    assert_false(govern_admit(g, &s, 11, 0, &r, &why, NULL));
    assert_non_null(strstr(why.message, "tenant.tpm"));
    assert_non_null(strstr(why.message, "11 tokens"));

    s.user.max_concurrent_runs = 1;
    assert_true(govern_run_begin(g, &s, &why));
    assert_false(govern_run_begin(g, &s, &why));
    assert_non_null(strstr(why.message, "user.max_concurrent_runs"));
    assert_string_equal(why.limit, "user.max_concurrent_runs");
    govern_free(g);
}

/* ---- run concurrency, key levels, the off switch ---- */

static void test_runs(void **state)
{
    (void)state;
    govern *g = new_govern(T0);
    govern_subject a = subject("ten_a", "usr_a", "key_a");
    govern_subject b = subject("ten_a", "usr_b", "key_b");
    a.user.max_concurrent_runs = b.user.max_concurrent_runs = 2;
    a.tenant.max_concurrent_runs = b.tenant.max_concurrent_runs = 3;
    govern_refusal why;
    assert_true(govern_run_begin(g, &a, &why));
    assert_true(govern_run_begin(g, &a, &why));
    assert_false(govern_run_begin(g, &a, &why));
    assert_string_equal(why.code, "concurrency_limit");
    assert_string_equal(why.type, "rate_limit_error");
    assert_int_equal(why.retry_after_s, 1);
    assert_true(govern_run_begin(g, &b, &why));
    assert_false(govern_run_begin(g, &b, &why));
    assert_string_equal(why.limit, "tenant.max_concurrent_runs");
    assert_int_equal(govern_active_runs(g, "ten_a", "usr_a"), 2);
    assert_int_equal(govern_active_runs(g, "ten_a", NULL), 3);
    govern_run_end(g, "ten_a", "usr_a");
    assert_true(govern_run_begin(g, &b, &why));
    govern_run_end(g, "ten_a", "usr_b");
    govern_run_end(g, "ten_a", "usr_b");
    govern_run_end(g, "ten_a", "usr_b");             /* extra end: stays at 0 */
    assert_int_equal(govern_active_runs(g, "ten_a", "usr_b"), 0);
    assert_int_equal(govern_active_runs(g, "ten_a", ""), 1);
    govern_stats st;
    govern_stats(g, &st);
    assert_int_equal(st.refused_concurrency, 2);
    govern_free(g);
}

static void test_key_levels_and_off(void **state)
{
    (void)state;
    govern *g = new_govern(T0);
    /* "jwt" is per user; a real key is shared by whoever holds it. */
    govern_subject a = subject("ten_a", "usr_a", "jwt"), b = subject("ten_a", "usr_b", "jwt");
    a.key.rpm = b.key.rpm = 1;
    govern_reservation r;
    govern_refusal why;
    assert_true(govern_admit(g, &a, 0, 0, &r, &why, NULL));
    assert_true(govern_admit(g, &b, 0, 0, &r, &why, NULL));
    assert_false(govern_admit(g, &a, 0, 0, &r, &why, NULL));
    assert_string_equal(why.limit, "key.rpm");
    govern_subject k1 = subject("ten_a", "usr_a", "key_s"), k2 = subject("ten_a", "usr_b", "key_s");
    k1.key.rpm = k2.key.rpm = 1;
    assert_true(govern_admit(g, &k1, 0, 0, &r, &why, NULL));
    assert_false(govern_admit(g, &k2, 0, 0, &r, &why, NULL));
    /* Tenant-admin call: no user level, the user limits are ignored. */
    govern_subject adm = subject("ten_a", "", "key_adm");
    adm.user.rpm = 1;
    assert_true(govern_admit(g, &adm, 0, 0, &r, &why, NULL));
    assert_true(govern_admit(g, &adm, 0, 0, &r, &why, NULL));

    /* Off: everything passes and nothing is reserved. */
    govern_subject s = subject("ten_c", "usr_c", "key_c");
    s.user.rpm = 1;
    s.user.daily_budget_nusd = 1;
    govern_set_enabled(g, false);
    for (int i = 0; i < 5; i++) {
        assert_true(govern_admit(g, &s, 100, USD, &r, &why, NULL));
        assert_int_equal(r.state, GOVERN_RES_UNGOVERNED);
        govern_settle(g, &r, 100, USD);
    }
    govern_period day;
    govern_spend(g, "ten_c", "usr_c", &day, NULL);
    assert_int_equal(day.spent_nusd, 0);
    assert_int_equal(day.reserved_nusd, 0);
    govern_set_enabled(g, true);
    assert_true(govern_admit(g, &s, 0, 1, &r, &why, NULL));
    assert_false(govern_admit(g, &s, 0, 1, &r, &why, NULL));
    govern_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_race),
        cmocka_unit_test(test_gcra_rpm),
        cmocka_unit_test(test_gcra_tpm_settle_gives_back),
        cmocka_unit_test(test_all_or_nothing),
        cmocka_unit_test(test_period_math),
        cmocka_unit_test(test_rollover_leap_year),
        cmocka_unit_test(test_release_and_double_settle),
        cmocka_unit_test(test_ledger_rebuild),
        cmocka_unit_test(test_refusal_texts),
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_key_levels_and_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
