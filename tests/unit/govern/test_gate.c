/* test_gate.c — the harness's admission of model calls (govern/gate.h):
 * limits resolved from tier, user, key and tenant overrides; the worst-case
 * estimate; budget refusals, queue shedding, shedding while the usage
 * ledger's writer is behind (the tenants holding most of its backlog
 * first), and the deadline of a queued call, on a real libuv loop; settle
 * and release leaving nothing reserved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "govern/gate.h"
#include "test_util.h"

typedef struct fx {
    brigade_config cfg;
    uv_loop_t      loop;
    gate          *g;
    gate_thread   *t;
} fx;

static const char *yaml =
    "providers:\n"
    "  - {name: p, kind: mock, max_concurrent: 1}\n"
    "models:\n"
    "  - {name: cheap, provider: p, input_usd_per_mtok: 1, output_usd_per_mtok: 2, max_output_tokens: 100}\n"
    "  - {name: dear, provider: p, input_usd_per_mtok: 10, output_usd_per_mtok: 20, max_output_tokens: 100,\n"
    "     fallbacks: [cheap]}\n"
    "  - {name: backed, provider: p, input_usd_per_mtok: 1, output_usd_per_mtok: 2, max_output_tokens: 100,\n"
    "     fallbacks: [dear]}\n"
    "tiers:\n"
    "  - {name: default, rpm: 100, daily_budget_usd: 1}\n"
    "  - {name: gold, rpm: 1000, weight: 5}\n"
    "governance: {queue_per_user: 1, queue_global: 10, tenant_limits: {tpm: 5000}}\n"
    "agents: []\n";

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    char err[512];
    if (config_load_string("t.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof err) != 0) {
        print_error("%s\n", err);
        return -1;
    }
    uv_loop_init(&f->loop);
    f->g = gate_new(&f->cfg, NULL, NULL);
    f->t = gate_thread_new(f->g, &f->loop);
    *state = f;
    return f->g && f->t ? 0 : -1;
}

static int teardown(void **state)
{
    fx *f = *state;
    gate_thread_close(f->t);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    gate_free(f->g);
    uv_loop_close(&f->loop);
    config_free(&f->cfg);
    free(f);
    return 0;
}

static const user_limits unset = {-1, -1, -1, -1, -1};

static void test_limits_resolved(void **state)
{
    fx *f = *state;
    user_limits user = unset, key = unset, tenant = unset;
    gate_who who = {"ten_1", "usr_1", "key_1", "default", &user, &key, &tenant};
    govern_subject s;
    gate_subject(f->g, &who, &s);
    assert_int_equal(s.user.rpm, 100);                       /* the tier */
    assert_int_equal(s.user.daily_budget_nusd, 1000000000);
    assert_int_equal(s.tenant.tpm, 5000);                    /* governance.tenant_limits */
    assert_int_equal(s.key.rpm, 0);
    user.rpm = 7;                                            /* a user override wins */
    user.daily_budget_nusd = 0;                              /* 0 = unlimited, not "unset" */
    key.tpm = 300;
    tenant.tpm = -1;
    gate_subject(f->g, &who, &s);
    assert_int_equal(s.user.rpm, 7);
    assert_int_equal(s.user.daily_budget_nusd, 0);
    assert_int_equal(s.key.tpm, 300);
    assert_int_equal(s.tenant.tpm, 5000);
    who.tier = "no-such-tier";                               /* never "unlimited" */
    user = unset;
    gate_subject(f->g, &who, &s);
    assert_int_equal(s.user.rpm, 100);
    assert_int_equal(gate_weight(f->g, "gold"), 5);
    assert_int_equal(gate_weight(f->g, "default"), 1);
}

static void test_estimate_takes_the_dearest_of_the_chain(void **state)
{
    fx *f = *state;
    const model_cfg *cheap = config_find_model(&f->cfg, "cheap");
    const model_cfg *backed = config_find_model(&f->cfg, "backed");
    int64_t tok, cost;
    gate_estimate(cheap, 300, 50, &tok, &cost);
    assert_int_equal(tok, 100 + 16 + 50);
    assert_int_equal(cost, 116 * 1000 + 50 * 2000);
    gate_estimate(backed, 300, 0, &tok, &cost);              /* 0: the model's max output */
    assert_int_equal(tok, 116 + 100);
    assert_int_equal(cost, 116 * 10000 + 100 * 20000);       /* priced at "dear" */
}

typedef struct probe {
    int ready, refused;
    gate_refusal why;
} probe;

static void on_ready(gate_call *c, void *arg) { (void)c; ((probe *)arg)->ready++; }
static void on_refused(gate_call *c, const gate_refusal *why, void *arg)
{
    (void)c;
    probe *p = arg;
    p->refused++;
    p->why = *why;
}

static void test_budget_refusal_and_settle(void **state)
{
    fx *f = *state;
    user_limits user = unset, key = unset, tenant = unset;
    user.daily_budget_nusd = 250000;
    gate_who who = {"ten_b", "usr_b", "key_b", "default", &user, &key, &tenant};
    const model_cfg *cheap = config_find_model(&f->cfg, "cheap");
    gate_call a, b;
    gate_refusal why;
    probe pa = {0}, pb = {0};
    assert_int_equal(gate_enter(f->t, &a, &who, cheap, 100, 200000, 0, on_ready, on_refused, &pa, &why), GATE_READY);
    /* 200000 reserved of 250000: a second worst case of 200000 does not fit */
    assert_int_equal(gate_enter(f->t, &b, &who, cheap, 100, 200000, 0, on_ready, on_refused, &pb, &why), GATE_REFUSED);
    assert_int_equal(why.status, 429);
    assert_string_equal(why.type, "insufficient_quota");
    assert_string_equal(why.limit, "user.daily_budget");
    gate_leave(&b, false, 0, 0);                              /* a no-op after a refusal */
    gate_leave(&a, true, 60, 30000);                          /* settles to the actual cost */
    govern_period day;
    govern_spend(gate_govern(f->g), "ten_b", "usr_b", &day, NULL);
    assert_int_equal(day.spent_nusd, 30000);
    assert_int_equal(day.reserved_nusd, 0);
    gate_leave(&a, true, 60, 30000);                          /* idempotent */
    govern_spend(gate_govern(f->g), "ten_b", "usr_b", &day, NULL);
    assert_int_equal(day.spent_nusd, 30000);
    assert_int_equal(gate_enter(f->t, &b, &who, cheap, 100, 200000, 0, on_ready, on_refused, &pb, &why), GATE_READY);
    gate_leave(&b, false, 0, 0);
    govern_spend(gate_govern(f->g), "ten_b", "usr_b", &day, NULL);
    assert_int_equal(day.spent_nusd, 30000);
    assert_int_equal(day.reserved_nusd, 0);
}

/* The store's writer behind: past the shed bound every new call is refused
 * at once (503, Retry-After 1 s), whoever makes it, before anything is
 * reserved; once the rows are committed, calls are admitted again. */
static void test_a_ledger_behind_sheds_calls(void **state)
{
    fx *f = *state;
    char dir[256];
    store *st = test_store_open(dir, sizeof dir, "brigade-gate-ledger");
    assert_non_null(st);
    gate_set_ledger(f->g, st, 5);
    user_limits user = unset, key = unset, tenant = unset;
    gate_who who = {"ten_l", "usr_l", "key_l", "gold", &user, &key, &tenant};
    const model_cfg *cheap = config_find_model(&f->cfg, "cheap");
    gate_call a;
    gate_refusal why;
    probe pa = {0};
    assert_int_equal(gate_enter(f->t, &a, &who, cheap, 10, 10, 0, on_ready, on_refused, &pa, &why), GATE_READY);
    gate_leave(&a, false, 0, 0);
    /* five rows queued: the writer waits up to 100 ms to batch them, so the
     * next call normally sees them all waiting; tried again after a flush
     * in case a stalled machine let the writer commit them first */
    bool refused = false;
    for (int attempt = 0; attempt < 20 && !refused; attempt++) {
        store_usage_flush(st);
        test_store_queue_usage(st, "ten_l", 5);
        if (store_usage_backlog(st) < 5) continue;
        refused = gate_enter(f->t, &a, &who, cheap, 10, 10, 0, on_ready, on_refused, &pa, &why) == GATE_REFUSED;
        gate_leave(&a, false, 0, 0);
    }
    assert_true(refused);
    assert_int_equal(why.status, 503);
    assert_string_equal(why.type, "overloaded_error");
    assert_string_equal(why.code, "ledger_behind");
    assert_string_equal(why.limit, "store.usage_queue");
    assert_int_equal(why.retry_after_s, 1);
    assert_non_null(strstr(why.message, "usage records are waiting"));
    /* nothing was reserved for the refused call */
    govern_period day;
    govern_spend(gate_govern(f->g), "ten_l", "usr_l", &day, NULL);
    assert_int_equal(day.reserved_nusd, 0);
    store_usage_flush(st);
    assert_int_equal(store_usage_backlog(st), 0);
    assert_int_equal(gate_enter(f->t, &a, &who, cheap, 10, 10, 0, on_ready, on_refused, &pa, &why), GATE_READY);
    gate_leave(&a, false, 0, 0);
    gate_set_ledger(f->g, NULL, 0);
    test_store_close(st, dir);
}

/* One tenant's flood puts the writer behind: that tenant's calls are shed,
 * while a tenant with few rows waiting, or none, is still served — until
 * the backlog nears the queue's hard bound, when everyone is shed. A
 * global shed let any one tenant refuse every tenant's calls. */
static void test_the_flooding_tenant_is_shed_first(void **state)
{
    fx *f = *state;
    char dir[256];
    store *st = test_store_open(dir, sizeof dir, "brigade-gate-shares");
    assert_non_null(st);
    gate_set_ledger(f->g, st, 10);
    user_limits user = unset, key = unset, tenant = unset;
    gate_who flood = {"ten_flood", "usr_f", "key_f", "gold", &user, &key, &tenant};
    gate_who calm = {"ten_calm", "usr_c", "key_c", "gold", &user, &key, &tenant};
    gate_who idle = {"ten_idle", "usr_i", "key_i", "gold", &user, &key, &tenant};
    const model_cfg *cheap = config_find_model(&f->cfg, "cheap");
    gate_call a;
    gate_refusal why;
    probe pa = {0};

    assert_true(test_store_hold_writer(st));   /* nothing is committed until released */
    test_store_queue_usage(st, "ten_flood", 11);
    test_store_queue_usage(st, "ten_calm", 1);
    assert_int_equal(store_usage_backlog(st), 12);
    size_t tenants = 0;
    assert_int_equal(store_usage_backlog_of(st, "ten_flood", &tenants), 11);
    assert_int_equal(tenants, 2);

    assert_int_equal(gate_enter(f->t, &a, &flood, cheap, 10, 10, 0, on_ready, on_refused, &pa, &why),
                     GATE_REFUSED);
    assert_string_equal(why.code, "ledger_behind");
    assert_int_equal(gate_enter(f->t, &a, &calm, cheap, 10, 10, 0, on_ready, on_refused, &pa, &why), GATE_READY);
    gate_leave(&a, false, 0, 0);
    assert_int_equal(gate_enter(f->t, &a, &idle, cheap, 10, 10, 0, on_ready, on_refused, &pa, &why), GATE_READY);
    gate_leave(&a, false, 0, 0);

    /* at 1.5 × the bound every tenant is shed */
    test_store_queue_usage(st, "ten_calm", 3);
    assert_int_equal(store_usage_backlog(st), 15);
    assert_int_equal(gate_enter(f->t, &a, &idle, cheap, 10, 10, 0, on_ready, on_refused, &pa, &why),
                     GATE_REFUSED);
    assert_string_equal(why.code, "ledger_behind");

    test_store_release_writer();
    store_usage_flush(st);
    assert_int_equal(store_usage_backlog_of(st, "ten_flood", &tenants), 0);
    assert_int_equal(tenants, 0);
    assert_int_equal(gate_enter(f->t, &a, &flood, cheap, 10, 10, 0, on_ready, on_refused, &pa, &why), GATE_READY);
    gate_leave(&a, false, 0, 0);
    gate_set_ledger(f->g, NULL, 0);
    test_store_close(st, dir);
}

static void keep_alive_done(uv_timer_t *t) { (void)t; }

static void test_queue_shed_and_deadline(void **state)
{
    fx *f = *state;
    user_limits user = unset, key = unset, tenant = unset;
    gate_who who = {"ten_q", "usr_q", "key_q", "gold", &user, &key, &tenant};
    const model_cfg *cheap = config_find_model(&f->cfg, "cheap");   /* capacity 1 */
    gate_call a, b, c;
    gate_refusal why;
    probe pa = {0}, pb = {0}, pc = {0};
    assert_int_equal(gate_enter(f->t, &a, &who, cheap, 10, 10, 0, on_ready, on_refused, &pa, &why), GATE_READY);
    uv_update_time(&f->loop);
    uint64_t deadline = uv_now(&f->loop) + 50;
    assert_int_equal(gate_enter(f->t, &b, &who, cheap, 10, 10, deadline, on_ready, on_refused, &pb, &why), GATE_WAIT);
    /* queue_per_user is 1: the third is shed */
    assert_int_equal(gate_enter(f->t, &c, &who, cheap, 10, 10, 0, on_ready, on_refused, &pc, &why), GATE_REFUSED);
    assert_int_equal(why.status, 503);
    assert_string_equal(why.type, "overloaded_error");
    assert_true(why.retry_after_s >= 1);
    /* b's deadline passes in the queue: 504, its reservation released */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(pb.refused, 1);
    assert_int_equal(pb.ready, 0);
    assert_int_equal(pb.why.status, 504);
    assert_string_equal(pb.why.code, "queue_timeout");
    gate_leave(&b, false, 0, 0);
    govern_period day;
    govern_spend(gate_govern(f->g), "ten_q", "usr_q", &day, NULL);
    assert_int_equal(day.reserved_nusd, 10);                 /* only a's */
    /* a queued call gets the slot a leaving call frees */
    assert_int_equal(gate_enter(f->t, &b, &who, cheap, 10, 10, 0, on_ready, on_refused, &pb, &why), GATE_WAIT);
    gate_leave(&a, true, 5, 5);
    /* the grant comes through the loop's (unref'd) inbox: keep the loop
     * alive with a short timer, as a server's listening socket does */
    uv_timer_t keep;
    uv_timer_init(&f->loop, &keep);
    uv_timer_start(&keep, keep_alive_done, 20, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&keep, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(pb.ready, 1);
    gate_leave(&b, true, 5, 5);
    govern_spend(gate_govern(f->g), "ten_q", "usr_q", &day, NULL);
    assert_int_equal(day.reserved_nusd, 0);
    assert_int_equal(day.spent_nusd, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_limits_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_estimate_takes_the_dearest_of_the_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_refusal_and_settle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_ledger_behind_sheds_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_flooding_tenant_is_shed_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_shed_and_deadline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
