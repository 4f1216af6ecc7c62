/* test_call.c — the metered model call (govern/call.h) and the agent's
 * cost caps reserved in govern: the delivered rule; caps reserved with the
 * budgets, all-or-nothing, so two calls of one run or session admitted at
 * once never pass the cap together (also from many threads, also with
 * governance off); and a metered call on a real loop with the in-process
 * mock provider: admitted, settled to its cost with the usage row, refused
 * by a cap with nothing held, cancelled in the queue with everything
 * released. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"
#include "govern/call.h"
#include "test_util.h"

/* ---- the delivered rule ---- */

static void test_delivered_rule(void **state)
{
    (void)state;
    upstream_result ok = {.error = UPSTREAM_OK};
    upstream_result cut = {.error = UPSTREAM_TRUNCATED, .output_tokens = 12};
    upstream_result cut_empty = {.error = UPSTREAM_TRUNCATED, .output_tokens = 0};
    upstream_result cancelled = {.error = UPSTREAM_CANCELLED, .output_tokens = 5};
    assert_true(metered_call_is_delivered(&ok, false));          /* complete: charged */
    assert_false(metered_call_is_delivered(&cut, false));        /* nothing reached the client */
    assert_true(metered_call_is_delivered(&cut, true));          /* a cut stream the client read */
    assert_false(metered_call_is_delivered(&cut_empty, true));   /* no output produced */
    assert_true(metered_call_is_delivered(&cancelled, true));    /* stopped after text went out */
}

/* ---- caps in govern ---- */

static int64_t fixed_clock(void *arg) { (void)arg; return 1767225600000LL; }   /* 2026-01-01 */

static govern_subject subject(void)
{
    govern_subject s;
    memset(&s, 0, sizeof s);
    s.tenant_id = "ten_1";
    s.user_id = "usr_1";
    s.key_id = "key_1";
    return s;
}

static void test_caps_reserved_all_or_nothing(void **state)
{
    (void)state;
    govern *g = govern_new(fixed_clock, NULL);
    govern_subject s = subject();
    s.user.daily_budget_nusd = 1000;
    govern_cap run_a = {.name = "run", .limit_nusd = 100};
    govern_cap run_b = {.name = "run", .limit_nusd = 100};
    govern_cap session = {.name = "session", .limit_nusd = 150, .spent_nusd = 30};
    govern_cap *caps_a[GOVERN_CAPS] = {&run_a, &session};
    govern_cap *caps_b[GOVERN_CAPS] = {&run_b, &session};
    govern_reservation r1, r2, r3;
    govern_refusal why;

    /* Two calls of one run in flight at once: the second sees the first's
     * reservation and is refused by the run cap. */
    assert_true(govern_admit_capped(g, &s, caps_a, 10, 60, &r1, &why, NULL));
    assert_false(govern_admit_capped(g, &s, caps_a, 10, 60, &r2, &why, NULL));
    assert_string_equal(why.code, "run_budget_exceeded");
    assert_string_equal(why.limit, "run.max_cost");
    assert_non_null(strstr(why.message, "per run"));
    assert_non_null(strstr(why.message, "reserved"));
    /* Another run of the same session: its own run cap passes, the shared
     * session cap (30 spent + 60 reserved + 61 > 150) does not. */
    assert_false(govern_admit_capped(g, &s, caps_b, 10, 61, &r2, &why, NULL));
    assert_string_equal(why.code, "session_budget_exceeded");
    assert_non_null(strstr(why.message, "per session"));
    /* A cap refusal reserved nothing anywhere, not in the user's budget. */
    govern_period day;
    govern_spend(g, "ten_1", "usr_1", &day, NULL);
    assert_int_equal(day.reserved_nusd, 60);
    assert_true(govern_admit_capped(g, &s, caps_b, 10, 60, &r2, &why, NULL));   /* 30+60+60 = 150 */
    int64_t spent, reserved;
    govern_cap_read(g, &session, &spent, &reserved);
    assert_int_equal(spent, 30);
    assert_int_equal(reserved, 120);

    /* Settle charges the actual cost to the caps, release gives back. */
    govern_settle(g, &r1, 5, 25);
    govern_release(g, &r2);
    assert_int_equal(run_a.spent_nusd, 25);
    assert_int_equal(run_a.reserved_nusd, 0);
    assert_int_equal(run_b.spent_nusd, 0);
    assert_int_equal(session.spent_nusd, 55);
    assert_int_equal(session.reserved_nusd, 0);
    govern_settle(g, &r1, 5, 25);                                /* once only */
    assert_int_equal(session.spent_nusd, 55);

    /* A budget refusal after the caps passed holds nothing on the caps. */
    s.user.daily_budget_nusd = 10;
    assert_false(govern_admit_capped(g, &s, caps_a, 10, 50, &r3, &why, NULL));
    assert_string_equal(why.code, "budget_exceeded");
    assert_int_equal(run_a.reserved_nusd, 0);
    assert_int_equal(session.reserved_nusd, 0);
    govern_free(g);
}

static void test_caps_hold_when_governance_is_off(void **state)
{
    (void)state;
    govern *g = govern_new(fixed_clock, NULL);
    govern_set_enabled(g, false);
    govern_subject s = subject();
    govern_cap run = {.name = "run", .limit_nusd = 100};
    govern_cap *caps[GOVERN_CAPS] = {&run, NULL};
    govern_reservation r1, r2;
    govern_refusal why;
    assert_true(govern_admit_capped(g, &s, caps, 0, 70, &r1, &why, NULL));
    assert_false(govern_admit_capped(g, &s, caps, 0, 70, &r2, &why, NULL));
    assert_string_equal(why.code, "run_budget_exceeded");
    govern_settle(g, &r1, 0, 40);
    assert_int_equal(run.spent_nusd, 40);
    assert_int_equal(run.reserved_nusd, 0);
    assert_true(govern_admit_capped(g, &s, caps, 0, 60, &r2, &why, NULL));
    govern_release(g, &r2);
    assert_int_equal(run.reserved_nusd, 0);
    govern_free(g);
}

/* Many threads admitting calls of one session at once: exactly as many
 * pass as the cap holds, whatever the interleaving. */
enum { THREADS = 8, PER_THREAD = 40, CAP = 100 };

typedef struct racer {
    govern     *g;
    govern_cap *session;
    int         admitted;
    govern_reservation res[PER_THREAD];
} racer;

static void *race(void *arg)
{
    racer *rc = arg;
    govern_subject s = subject();
    govern_cap run = {.name = "run", .limit_nusd = 0};
    govern_cap *caps[GOVERN_CAPS] = {&run, rc->session};
    for (int i = 0; i < PER_THREAD; i++) {
        govern_refusal why;
        if (govern_admit_capped(rc->g, &s, caps, 1, 1, &rc->res[rc->admitted], &why, NULL))
            rc->admitted++;
    }
    /* The run caps live on this stack: settle before they go. */
    for (int i = 0; i < rc->admitted; i++) govern_settle(rc->g, &rc->res[i], 1, 1);
    return NULL;
}

static void test_caps_under_concurrent_calls(void **state)
{
    (void)state;
    govern *g = govern_new(fixed_clock, NULL);
    govern_cap session = {.name = "session", .limit_nusd = CAP};
    racer rc[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&rc[i], 0, sizeof rc[i]);
        rc[i].g = g;
        rc[i].session = &session;
        assert_int_equal(pthread_create(&th[i], NULL, race, &rc[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        total += rc[i].admitted;
    }
    /* Settling frees nothing: spent stays. At most CAP passed in all. */
    assert_true(total <= CAP);
    assert_int_equal(session.spent_nusd, total);
    assert_int_equal(session.reserved_nusd, 0);
    assert_int_equal(total, CAP);           /* 320 attempts: the cap is the only limit */
    govern_free(g);
}

/* ---- a metered call on a loop ---- */

typedef struct fx {
    brigade_config cfg;
    uv_loop_t      loop;
    gate          *g;
    gate_thread   *t;
    upstream      *up;
    store         *st;
    char           dir[256];
} fx;

static const char *yaml =
    "providers:\n"
    "  - {name: p, kind: mock, max_concurrent: 1, latency_ms: 20}\n"
    "models:\n"
    "  - {name: m, provider: p, input_usd_per_mtok: 1000, output_usd_per_mtok: 2000, max_output_tokens: 50}\n"
    "tiers:\n"
    "  - {name: default, daily_budget_usd: 100}\n"
    "governance: {queue_per_user: 4, queue_global: 10}\n"
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
    f->g = gate_new(&f->cfg, fixed_clock, NULL);
    f->t = gate_thread_new(f->g, &f->loop);
    f->up = upstream_new(&f->loop, &f->cfg);
    f->st = test_store_open(f->dir, sizeof f->dir, "brigade-call");
    *state = f;
    return f->g && f->t && f->up && f->st ? 0 : -1;
}

static int teardown(void **state)
{
    fx *f = *state;
    upstream_free(f->up);
    gate_thread_close(f->t);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    gate_free(f->g);
    uv_loop_close(&f->loop);
    test_store_close(f->st, f->dir);
    config_free(&f->cfg);
    free(f);
    return 0;
}

typedef struct probe {
    fx              *f;
    int              events, ready, refused, done;
    upstream_error   error;
    usage_rec        usage;
    bool             recorded;
} probe;

static bool p_event(metered_call *mc, upstream_call *call, const char *json, size_t len, void *arg)
{
    (void)call; (void)json; (void)len;
    probe *p = arg;
    p->events++;
    metered_call_reached_client(mc);
    return true;
}
static void p_ready(metered_call *mc, void *arg) { (void)mc; ((probe *)arg)->ready++; }
static void p_refused(metered_call *mc, const gate_refusal *why, void *arg)
{
    (void)mc; (void)why;
    ((probe *)arg)->refused++;
}
static void p_done(metered_call *mc, upstream_call *call, const upstream_result *res, void *arg)
{
    (void)call;
    probe *p = arg;
    p->done++;
    p->error = res->error;
    p->recorded = metered_call_record_usage(mc, p->f->st, res, "req_1", 200, &p->usage);
}
static const metered_callbacks cbs = {p_event, p_ready, p_refused, p_done};

static const user_limits unset = {-1, -1, -1, -1, -1};
static const char body[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

/* Who calls: one user of one tenant, no overrides, and its scope. */
typedef struct caller {
    user_limits l;
    gate_who    who;
    scope       sc;
} caller;

static void caller_init(caller *c)
{
    memset(c, 0, sizeof *c);
    c->l = unset;
    c->who = (gate_who){"ten_1", "usr_1", "key_1", NULL, &c->l, &c->l, &c->l};
    strcpy(c->sc.tenant_id, "ten_1");
    strcpy(c->sc.user_id, "usr_1");
    strcpy(c->sc.key_id, "key_1");
}

static metered_call_params params(fx *f, const caller *c, govern_cap *run)
{
    metered_call_params p = {.gate = f->t, .who = &c->who, .owner = &c->sc,
                             .model = config_find_model(&f->cfg, "m"),
                             .prompt_bytes = sizeof body - 1, .stream = true,
                             .caps = {run, NULL}};
    return p;
}

static void test_metered_call_settles_what_was_delivered(void **state)
{
    fx *f = *state;
    caller c;
    caller_init(&c);
    govern_cap run = {.name = "run", .limit_nusd = 1000000000};
    metered_call_params p = params(f, &c, &run);
    metered_call mc;
    probe pr = {.f = f};
    gate_refusal why;
    assert_int_equal(metered_call_begin(&mc, &p, &cbs, &pr, &why), GATE_READY);
    assert_true(mc.est_cost_nusd > 0);
    assert_int_equal(run.reserved_nusd, mc.est_cost_nusd);          /* reserved before spent */
    assert_true(metered_call_dispatch(&mc, f->up, body, sizeof body - 1, "req_1"));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(pr.done, 1);
    assert_int_equal(pr.error, UPSTREAM_OK);
    assert_true(pr.events > 0);
    assert_true(mc.delivered);
    assert_true(pr.recorded);
    const model_cfg *m = config_find_model(&f->cfg, "m");
    assert_int_equal(mc.charged_nusd,
                     config_cost_nusd(m, pr.usage.input_tokens, pr.usage.output_tokens));
    assert_int_equal(pr.usage.cost_nusd, mc.charged_nusd);
    assert_string_equal(pr.usage.model, "m");
    assert_string_equal(pr.usage.request_id, "req_1");
    assert_int_equal(run.spent_nusd, mc.charged_nusd);               /* the cap moved on */
    assert_int_equal(run.reserved_nusd, 0);
    govern_stats st;
    govern_stats(gate_govern(f->g), &st);
    assert_int_equal(st.settles, 1);
    assert_int_equal(st.reserved_nusd, 0);
}

static void test_metered_call_refused_by_cap_holds_nothing(void **state)
{
    fx *f = *state;
    caller c;
    caller_init(&c);
    govern_cap run = {.name = "run", .limit_nusd = 1000, .spent_nusd = 999};
    metered_call_params p = params(f, &c, &run);
    metered_call mc;
    probe pr = {.f = f};
    gate_refusal why;
    assert_int_equal(metered_call_begin(&mc, &p, &cbs, &pr, &why), GATE_REFUSED);
    assert_string_equal(why.code, "run_budget_exceeded");
    assert_true(gate_refusal_is_cost_cap(&why));
    assert_int_equal(run.reserved_nusd, 0);
    govern_stats st;
    govern_stats(gate_govern(f->g), &st);
    assert_int_equal(st.admits, 0);
    assert_int_equal(st.reserved_nusd, 0);
    metered_call_cancel(&mc, "nothing to stop");                     /* harmless after a refusal */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(pr.done + pr.ready + pr.refused, 0);
}

static void test_metered_call_cancelled_in_queue_releases(void **state)
{
    fx *f = *state;
    caller c;
    caller_init(&c);
    govern_cap run = {.name = "run", .limit_nusd = 0};
    metered_call_params p = params(f, &c, &run);
    metered_call first, second;
    probe p1 = {.f = f}, p2 = {.f = f};
    gate_refusal why;
    assert_int_equal(metered_call_begin(&first, &p, &cbs, &p1, &why), GATE_READY);
    assert_true(metered_call_dispatch(&first, f->up, body, sizeof body - 1, "req_1"));
    /* The model's one slot is taken: the second call waits. */
    assert_int_equal(metered_call_begin(&second, &p, &cbs, &p2, &why), GATE_WAIT);
    assert_int_equal(run.reserved_nusd, first.est_cost_nusd + second.est_cost_nusd);
    metered_call_cancel(&second, "the caller went away");
    assert_int_equal(run.reserved_nusd, first.est_cost_nusd);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(p1.done, 1);
    assert_int_equal(p2.ready + p2.refused + p2.done, 0);             /* no callback after cancel */
    assert_int_equal(run.reserved_nusd, 0);
    assert_int_equal(run.spent_nusd, first.charged_nusd);
    govern_stats st;
    govern_stats(gate_govern(f->g), &st);
    assert_int_equal(st.settles, 1);
    assert_int_equal(st.releases, 1);
    assert_int_equal(st.reserved_nusd, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivered_rule),
        cmocka_unit_test(test_caps_reserved_all_or_nothing),
        cmocka_unit_test(test_caps_hold_when_governance_is_off),
        cmocka_unit_test(test_caps_under_concurrent_calls),
        cmocka_unit_test_setup_teardown(test_metered_call_settles_what_was_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metered_call_refused_by_cap_holds_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metered_call_cancelled_in_queue_releases, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
