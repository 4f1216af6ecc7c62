/* test_dispatch.c — upstream_chat's attempts end to end, on the
 * in-process mock provider and a dead loopback port: retries, what is
 * charged, no retry after a streamed event, deadlines, fallbacks, the
 * breaker opening and the load moving to the healthy deployment, and the
 * on_attempt reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "upstream/providers/openai_scan.h"
#include "upstream/upstream.h"

static const char *const YAML =
    "providers:\n"
    "  - {name: m1, kind: mock, max_retries: 2, retry_backoff_ms: 5, retry_backoff_max_ms: 20,\n"
    "     timeout_ms: 5000, first_byte_timeout_ms: 0}\n"
    "  - {name: m2, kind: mock, max_retries: 0}\n"
    "  - {name: dead, kind: openai, base_url: 'http://127.0.0.1:1/v1', max_retries: 1,\n"
    "     retry_backoff_ms: 1, connect_timeout_ms: 500, breaker_failures: 2, breaker_open_ms: 300}\n"
    "models:\n"
    "  - {name: plain, provider: m1}\n"
    "  - {name: single, provider: m2}\n"
    "  - name: spread\n"
    "    balance: weighted\n"
    "    deployments: [{provider: dead, upstream_model: d}, {provider: m1, upstream_model: spread-up}]\n"
    "  - name: deadonly\n"
    "    provider: dead\n"
    "    fallbacks: [single]\n"
    "  - name: tiny\n"
    "    provider: m2\n"
    "    context_window: 20\n"
    "    max_output_tokens: 10\n"
    "    fallbacks: [single]\n";

static uv_loop_t      L;
static brigade_config CFG;
static upstream      *U;

typedef struct got {
    int      done, events, attempt_reports;
    upstream_result r;
    char     msg[256], dep[160], model[64];
    char     nexts[128];
    uint64_t ms;
} got;

static bool on_event(upstream_call *c, const char *j, size_t n, void *arg)
{
    (void)c; (void)j; (void)n;
    ((got *)arg)->events++;
    return true;
}

static void on_done(upstream_call *c, const upstream_result *r, void *arg)
{
    (void)c;
    got *g = arg;
    g->done++;
    g->r = *r;
    snprintf(g->msg, sizeof g->msg, "%s", r->message ? r->message : "");
    snprintf(g->dep, sizeof g->dep, "%s", r->deployment ? r->deployment : "");
    snprintf(g->model, sizeof g->model, "%s", r->served_model ? r->served_model->name : "");
    g->r.message = g->msg;
    g->r.body = NULL;
    g->ms = uv_now(&L);
}

static void on_attempt(upstream_call *c, const upstream_attempt *a, void *arg)
{
    (void)c;
    got *g = arg;
    g->attempt_reports++;
    size_t l = strlen(g->nexts);
    snprintf(g->nexts + l, sizeof g->nexts - l, "%s%s:%s", l ? "," : "", a->fault, a->next);
}

static const upstream_callbacks CB = {on_event, on_done, on_attempt};

static void run(const char *model, const char *text, bool stream, uint64_t deadline_in, got *g)
{
    memset(g, 0, sizeof *g);
    char body[512];
    const model_cfg *m = config_find_model(&CFG, model);
    assert_non_null(m);
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             m->upstream_model, text);
    uv_update_time(&L);
    upstream_opts o = {.deadline_ms = deadline_in ? uv_now(&L) + deadline_in : 0, .request_id = "t"};
    uint64_t t0 = uv_now(&L);
    assert_non_null(upstream_chat(U, m, body, strlen(body), stream, &o, &CB, g));
    assert_int_equal(g->done, 0);
    while (!g->done) uv_run(&L, UV_RUN_ONCE);
    g->ms -= t0;
}

static int setup(void **st)
{
    (void)st;
    char err[256];
    int rc = config_load_string("t.yaml", YAML, strlen(YAML), &CFG, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(uv_loop_init(&L), 0);
    U = upstream_new(&L, &CFG);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    upstream_free(U);
    uv_run(&L, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&L), 0);
    config_free(&CFG);
    return 0;
}

static void test_retry_then_success(void **st)
{
    (void)st;
    got g;
    run("plain", "hello [[fault:server_error:2]] a", false, 0, &g);
    assert_int_equal(g.r.error, UPSTREAM_OK);
    assert_int_equal(g.r.attempts, 3);
    assert_string_equal(g.model, "plain");
    assert_string_equal(g.dep, "m1/plain");
    assert_true(g.r.output_tokens > 0);
    assert_string_equal(g.nexts, "server_error:retry,server_error:retry,ok:done");
}

static void test_failure_not_charged(void **st)
{
    (void)st;
    got g;
    run("plain", "hello [[fault:server_error]] b", false, 0, &g);
    assert_int_equal(g.r.error, UPSTREAM_HTTP_STATUS);
    assert_int_equal(g.r.status, 500);
    assert_int_equal(g.r.attempts, 3);   /* 1 + max_retries */
    assert_int_equal(g.r.input_tokens, 0);
    assert_int_equal(g.r.output_tokens, 0);
}

static void test_request_error_not_retried(void **st)
{
    (void)st;
    got g;
    /* "single" has no retries anyway; a model with retries must not retry a 4xx either. */
    run("plain", "[[fault:rate_limit:1]] c", false, 0, &g);
    assert_int_equal(g.r.error, UPSTREAM_OK);   /* 429 once, Retry-After honoured, then served */
    assert_int_equal(g.r.attempts, 2);
    assert_true(g.ms >= 900);                   /* the mock's Retry-After: 1 */
}

static void test_no_retry_after_event(void **st)
{
    (void)st;
    got g;
    run("plain", "cut [[fault:truncate]] d", true, 0, &g);
    assert_int_equal(g.r.error, UPSTREAM_TRUNCATED);
    assert_true(g.events > 0);
    assert_int_equal(g.r.attempts, 1);
}

static void test_role_chunk_held_back(void **st)
{
    (void)st;
    got g;
    /* The mock's malformed stream sends its role chunk, then garbage: the
     * role chunk is held back, so the failure is still retried. */
    run("plain", "held [[fault:malformed:1]] [[tokens:3]]", true, 0, &g);
    assert_int_equal(g.r.error, UPSTREAM_OK);
    assert_int_equal(g.r.attempts, 2);
    assert_true(g.events >= 4);   /* role, 3 tokens (and finish, usage) of the good attempt only */
}

/* What a caller's on_event sees of upstream_event_facts: a reading of
 * exactly the bytes delivered (the same as a fresh openai_scan of them),
 * or NULL. */
typedef struct facts_seen {
    int done, events, with_facts, wrong;
} facts_seen;

static bool facts_on_event(upstream_call *c, const char *j, size_t n, void *arg)
{
    facts_seen *f = arg;
    f->events++;
    const openai_scan_result *r = upstream_event_facts(c, j, n);
    if (!r) return true;
    f->with_facts++;
    openai_scan_result fresh;
    if (!openai_scan(j, n, "delta", &fresh) || fresh.text_choices != r->text_choices ||
        fresh.quiet != r->quiet || fresh.choices != r->choices || fresh.usage_member != r->usage_member)
        f->wrong++;
    /* another text at another address or of another length gets nothing */
    if (upstream_event_facts(c, j, n - 1) || upstream_event_facts(c, "{}", 2)) f->wrong++;
    return true;
}

static void facts_on_done(upstream_call *c, const upstream_result *r, void *arg)
{
    (void)c; (void)r;
    ((facts_seen *)arg)->done = 1;
}

static void facts_run(const char *text, int64_t cap, facts_seen *f)
{
    static const upstream_callbacks cb = {facts_on_event, facts_on_done, NULL};
    memset(f, 0, sizeof *f);
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"plain\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             text);
    upstream_opts o = {.request_id = "t", .max_output_tokens = cap};
    assert_non_null(upstream_chat(U, config_find_model(&CFG, "plain"), body, strlen(body), true, &o, &cb, f));
    while (!f->done) uv_run(&L, UV_RUN_ONCE);
}

static void test_event_facts(void **st)
{
    (void)st;
    facts_seen f;
    /* Capped: the dispatch reads every chunk for the cap and hands that
     * reading on; the first (role) chunk is held back and delivered later
     * as a copy, without facts. */
    facts_run("facts [[tokens:5]]", 1000, &f);
    assert_true(f.events >= 6);
    assert_int_equal(f.wrong, 0);
    assert_int_equal(f.with_facts, f.events - 1);
    /* Not capped, in-process provider: nobody read the chunks; none. */
    facts_run("facts [[tokens:5]]", 0, &f);
    assert_true(f.events >= 6);
    assert_int_equal(f.with_facts, 0);
    assert_null(upstream_event_facts(NULL, "{}", 2));
}

static void test_config_errors(void **st)
{
    (void)st;
    static const struct { const char *yaml, *want; } cases[] = {
        {"providers: [{name: p, kind: mock}]\nmodels: [{name: m, provider: p, deployments: [{provider: p}]}]\n",
         "either provider or deployments"},
        {"providers: [{name: p, kind: mock}]\nmodels: [{name: m, deployments: [{provider: q}]}]\n",
         "no provider named \"q\""},
        {"providers: [{name: p, kind: mock}]\nmodels: [{name: m, provider: p, fallbacks: [nope]}]\n",
         "no model named \"nope\""},
        {"providers: [{name: p, kind: mock}]\nmodels: [{name: m, provider: p, fallbacks: [m]}]\n",
         "its own fallback"},
        {"providers: [{name: p, kind: mock}]\nmodels: [{name: m, provider: p, fallback_on: [oops]}]\n",
         "unknown failure class"},
        {"providers: [{name: p, kind: mock}]\nmodels: [{name: m, provider: p, balance: random}]\n",
         "unknown balance"},
        {"providers: [{name: p, kind: mock, retry_backoff_ms: 500, retry_backoff_max_ms: 100}]\n"
         "models: [{name: m, provider: p}]\n", "below retry_backoff_ms"},
        {"providers: [{name: p, kind: mock, breaker_error_rate: 2}]\nmodels: [{name: m, provider: p}]\n",
         "breaker_error_rate"},
        {"server: {request_timeout_ms: 9000, max_request_timeout_ms: 8000}\n", "exceeds max_request_timeout_ms"},
        {"providers: [{name: p, kind: mock}]\n"
         "models: [{name: m, deployments: [{provider: p, upstream_model: x}, {provider: p, upstream_model: x}]}]\n",
         "listed twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        brigade_config c;
        char err[512];
        int rc = config_load_string("e.yaml", cases[i].yaml, strlen(cases[i].yaml), &c, err, sizeof err);
        if (rc == 0 || !strstr(err, cases[i].want)) fprintf(stderr, "case %zu: rc %d, err %s\n", i, rc, err);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, cases[i].want));
    }
    /* What the loader makes of a good one. */
    const model_cfg *s = config_find_model(&CFG, "spread");
    assert_int_equal(s->n_deployments, 2);
    assert_string_equal(s->provider_name, "dead");          /* the first deployment, for older code */
    assert_string_equal(s->upstream_model, "d");
    assert_string_equal(s->deployments[1].name, "m1/spread-up");
    assert_int_equal(s->deployments[1].weight, 1);
    assert_int_equal(s->balance, BALANCE_WEIGHTED);
    const model_cfg *d = config_find_model(&CFG, "deadonly");
    assert_int_equal(d->n_fallbacks, 1);
    assert_ptr_equal(d->fallback_models[0], config_find_model(&CFG, "single"));
    assert_int_equal(d->fallback_on, FALLBACK_ALL);
    assert_int_equal(CFG.request_timeout_ms, 120000);
    assert_int_equal(config_find_model(&CFG, "plain")->provider->retry_backoff_max_ms, 20);
}

static void test_deadline(void **st)
{
    (void)st;
    got g;
    run("plain", "[[fault:hang]] e", false, 250, &g);
    assert_int_equal(g.r.error, UPSTREAM_TIMEOUT);
    assert_non_null(strstr(g.msg, "deadline"));
    assert_true(g.ms >= 240 && g.ms < 1000);
}

static void test_fallback_on_dead_provider(void **st)
{
    (void)st;
    got g;
    run("deadonly", "hi f", false, 5000, &g);
    assert_int_equal(g.r.error, UPSTREAM_OK);
    assert_string_equal(g.model, "single");
    assert_string_equal(g.dep, "m2/single");
    assert_int_equal(g.r.attempts, 3);           /* dead, its retry, then the fallback */
    assert_string_equal(g.nexts, "connect:retry,connect:fallback,ok:done");
}

static void test_context_window_fallback(void **st)
{
    (void)st;
    got g;
    run("tiny", "a long prompt that is well over twenty tokens once the JSON around it is counted too", false, 0, &g);
    assert_int_equal(g.r.error, UPSTREAM_OK);
    assert_string_equal(g.model, "single");
    assert_int_equal(g.r.attempts, 1);           /* tiny was never called */
}

static const upstream_deployment_stat *find_stat(upstream_deployment_stat *s, size_t n, const char *dep)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s[i].deployment, dep)) return &s[i];
    return NULL;
}

static void test_breaker_moves_load(void **st)
{
    (void)st;
    got g;
    /* Two failures on the dead deployment open its breaker; from then on
     * every call is served by the other one in a single attempt. */
    for (int i = 0; i < 6; i++) {
        char t[32];
        snprintf(t, sizeof t, "spread %d", i);
        run("spread", t, false, 5000, &g);
        assert_int_equal(g.r.error, UPSTREAM_OK);
        assert_string_equal(g.dep, "m1/spread-up");
    }
    upstream_deployment_stat s[16];
    size_t n = upstream_deployment_stats(s, 16);
    assert_true(n >= 5);
    const upstream_deployment_stat *dead = find_stat(s, n < 16 ? n : 16, "dead/d");
    assert_non_null(dead);
    assert_string_equal(dead->state, "open");
    assert_true(dead->calls <= 2);
    assert_int_equal(dead->breaker_opens, 1);
    for (int i = 0; i < 4; i++) {
        run("spread", "after open", false, 5000, &g);
        assert_int_equal(g.r.attempts, 1);
    }
    char why[200];
    assert_true(upstream_models_ready(why, sizeof why));   /* spread still has a closed deployment */

    /* deadonly's only deployment is the same dead provider, but its own breaker. */
    for (int i = 0; i < 2; i++) run("deadonly", "x", false, 5000, &g);
    assert_false(upstream_models_ready(why, sizeof why));
    assert_non_null(strstr(why, "deadonly"));
    /* Open: the fallback serves at once, without touching the dead port. */
    run("deadonly", "y", false, 5000, &g);
    assert_int_equal(g.r.attempts, 1);
    assert_string_equal(g.model, "single");
    /* After breaker_open_ms it is half-open: ready again, and one probe goes. */
    uv_sleep(320);
    uv_update_time(&L);
    assert_true(upstream_models_ready(why, sizeof why));
    run("deadonly", "z", false, 5000, &g);
    /* The probe failed and reopened it: the retry finds no deployment and
     * falls back (a refusal is not reported as an attempt). */
    assert_string_equal(g.nexts, "connect:retry,ok:done");
    assert_string_equal(g.model, "single");
}

static void test_opts_null_and_cancel(void **st)
{
    (void)st;
    got g;
    memset(&g, 0, sizeof g);
    const model_cfg *m = config_find_model(&CFG, "plain");
    const char *body = "{\"model\":\"plain\",\"messages\":[{\"role\":\"user\",\"content\":\"[[fault:hang]]\"}]}";
    upstream_call *c = upstream_chat(U, m, body, strlen(body), false, NULL, &CB, &g);
    assert_non_null(c);
    upstream_call_cancel(c);
    assert_int_equal(g.done, 1);
    assert_int_equal(g.r.error, UPSTREAM_CANCELLED);
    assert_int_equal(g.r.input_tokens, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retry_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_facts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_not_charged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_error_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_retry_after_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_chunk_held_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallback_on_dead_provider, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_window_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_moves_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_opts_null_and_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
