/* test_obs_store.c — spans through the tracer into the store and back:
 * round trip, the scope rules of store_trace_get (a user cannot read
 * another user's trace; one foreign span hides a trace; tenant admins see
 * their tenant only), and retention pruning by age and by count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/scope_mint.h"
#include "obs/obs.h"
#include "store/store.h"
#include "test_util.h"

typedef struct fx {
    char dir[64];
    store *st;
    scope admin, ta, tb, ua1, ua2, ub;
    char ta_id[ID_MAX], tb_id[ID_MAX];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->st = test_store_open(f->dir, sizeof f->dir, "brigade-obs");
    assert_non_null(f->st);
    scope_mint_server_admin(&f->admin);
    assert_int_equal(test_store_tenant(f->st, &f->admin, "ta", f->ta_id), STORE_OK);
    assert_int_equal(test_store_tenant(f->st, &f->admin, "tb", f->tb_id), STORE_OK);
    scope_mint_tenant_admin(&f->ta, f->ta_id, "key_ta");
    scope_mint_tenant_admin(&f->tb, f->tb_id, "key_tb");
    char id[ID_MAX];
    assert_int_equal(test_store_user(f->st, &f->ta, "a1", id), STORE_OK);
    scope_mint_user(&f->ua1, f->ta_id, id, "key_a1", "default");
    assert_int_equal(test_store_user(f->st, &f->ta, "a2", id), STORE_OK);
    scope_mint_user(&f->ua2, f->ta_id, id, "key_a2", "default");
    assert_int_equal(test_store_user(f->st, &f->tb, "b1", id), STORE_OK);
    scope_mint_user(&f->ub, f->tb_id, id, "key_b1", "default");
    char err[256];
    obs_tracer_opts o = {.retention_hours = 72, .max_spans = 1000000};
    assert_int_equal(obs_tracer_start(&o, f->st, err, sizeof err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    obs_tracer_stop();
    test_store_close(f->st, f->dir);
    free(f);
    return 0;
}

/* A request-like trace owned by `owner`: server span, auth, a model call. */
static void make_trace(const scope *owner, const obs_trace_ctx *parent, char tid[OBS_TRACE_ID_HEX])
{
    obs_span *root = obs_span_begin(parent, "POST /v1/chat/completions", OBS_SPAN_SERVER, NULL);
    obs_span *auth = obs_span_begin(obs_span_ctx(root), "authenticate", OBS_SPAN_INTERNAL, NULL);
    obs_span_set_owner(auth, owner);
    obs_span_end(auth, OBS_STATUS_OK, NULL);
    obs_span_set_owner(root, owner);
    obs_span *call = obs_span_begin(obs_span_ctx(root), "chat mock-gpt", OBS_SPAN_CLIENT, owner);
    obs_span_set_str(call, "gen_ai.system", "openai");
    obs_span_set_int(call, "gen_ai.usage.input_tokens", 12);
    obs_span_end(call, OBS_STATUS_ERROR, "upstream 502");
    obs_span_set_int(root, "http.response.status_code", 200);
    obs_span_end(root, OBS_STATUS_OK, NULL);
    obs_trace_id_hex(obs_span_ctx(root), tid);
}

static void test_round_trip(void **state)
{
    fx *f = *state;
    char tid[OBS_TRACE_ID_HEX];
    make_trace(&f->ua1, NULL, tid);
    obs_tracer_flush();
    span_rec *spans;
    size_t n;
    assert_int_equal(store_trace_get(f->st, &f->ua1, tid, &spans, &n), STORE_OK);
    assert_int_equal(n, 3);
    /* ordered by start: root first, its children point at it */
    assert_string_equal(spans[0].name, "POST /v1/chat/completions");
    assert_string_equal(spans[0].parent_span_id, "");
    assert_int_equal(spans[0].kind, OBS_SPAN_SERVER);
    for (size_t i = 1; i < n; i++) {
        assert_string_equal(spans[i].parent_span_id, spans[0].span_id);
        assert_string_equal(spans[i].trace_id, tid);
    }
    const span_rec *call = strcmp(spans[1].name, "chat mock-gpt") == 0 ? &spans[1] : &spans[2];
    assert_int_equal(call->status, OBS_STATUS_ERROR);
    assert_string_equal(call->status_message, "upstream 502");
    cJSON *a = cJSON_Parse(call->attributes);
    assert_non_null(a);
    assert_string_equal(cJSON_GetObjectItem(a, "gen_ai.system")->valuestring, "openai");
    assert_int_equal(cJSON_GetObjectItem(a, "gen_ai.usage.input_tokens")->valueint, 12);
    cJSON_Delete(a);
    assert_true(spans[0].end_ns >= spans[0].start_ns);
    store_free_spans(spans, n);
}

static void test_scoping(void **state)
{
    fx *f = *state;
    char tid[OBS_TRACE_ID_HEX];
    make_trace(&f->ua1, NULL, tid);
    obs_tracer_flush();
    span_rec *spans;
    size_t n;
    /* the owner and its tenant admin see it */
    assert_int_equal(store_trace_get(f->st, &f->ua1, tid, &spans, &n), STORE_OK);
    store_free_spans(spans, n);
    assert_int_equal(store_trace_get(f->st, &f->ta, tid, &spans, &n), STORE_OK);
    assert_int_equal(n, 3);
    store_free_spans(spans, n);
    /* another user of the same tenant, another tenant's user and admin: not found */
    assert_int_equal(store_trace_get(f->st, &f->ua2, tid, &spans, &n), STORE_NOT_FOUND);
    assert_null(spans);
    assert_int_equal(store_trace_get(f->st, &f->ub, tid, &spans, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->tb, tid, &spans, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->admin, tid, &spans, &n), STORE_FORBIDDEN);
    assert_int_equal(store_trace_get(f->st, &f->ua1, "00000000000000000000000000000001", &spans, &n),
                     STORE_NOT_FOUND);

    /* User a2 continues a1's trace id (a forged traceparent): the trace
     * now holds a foreign span, so neither user can read it — a2 learns
     * nothing of a1's spans, and a1 is not shown a2's. */
    obs_trace_ctx forged;
    char tp[80];
    snprintf(tp, sizeof tp, "00-%s-00f067aa0ba902b7-01", tid);
    assert_true(obs_traceparent_parse(tp, &forged));
    char tid2[OBS_TRACE_ID_HEX];
    make_trace(&f->ua2, &forged, tid2);
    assert_string_equal(tid, tid2);
    obs_tracer_flush();
    assert_int_equal(store_trace_get(f->st, &f->ua2, tid, &spans, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->ua1, tid, &spans, &n), STORE_NOT_FOUND);
    /* the tenant admin owns both users' spans */
    assert_int_equal(store_trace_get(f->st, &f->ta, tid, &spans, &n), STORE_OK);
    assert_int_equal(n, 6);
    store_free_spans(spans, n);

    /* spans without an owner are never returned (and do not hide) */
    char tid3[OBS_TRACE_ID_HEX];
    make_trace(&f->ub, NULL, tid3);
    snprintf(tp, sizeof tp, "00-%s-00f067aa0ba902b7-01", tid3);
    assert_true(obs_traceparent_parse(tp, &forged));
    obs_span *anon = obs_span_begin(&forged, "GET /v1/me", OBS_SPAN_SERVER, NULL);
    obs_span_end(anon, OBS_STATUS_OK, NULL);
    obs_tracer_flush();
    assert_int_equal(store_trace_get(f->st, &f->ub, tid3, &spans, &n), STORE_OK);
    assert_int_equal(n, 3);
    store_free_spans(spans, n);
}

static span_rec rec(const char *tid, const char *sid, const char *tenant, int64_t end_ns)
{
    span_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.trace_id, sizeof r.trace_id, "%s", tid);
    snprintf(r.span_id, sizeof r.span_id, "%s", sid);
    snprintf(r.name, sizeof r.name, "s");
    snprintf(r.tenant_id, sizeof r.tenant_id, "%s", tenant);
    r.kind = OBS_SPAN_INTERNAL;
    r.start_ns = end_ns - 1000;
    r.end_ns = end_ns;
    r.attributes = "{}";
    return r;
}

static void test_retention(void **state)
{
    fx *f = *state;
    const char *old_t = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", *new_t = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    int64_t now = 2000000000LL * 1000000000LL;
    span_rec r[2] = {rec(old_t, "0000000000000001", f->ta_id, now - 100LL * 3600 * 1000000000LL),
                     rec(new_t, "0000000000000002", f->ta_id, now)};
    assert_int_equal(store_spans_insert(f->st, r, 2, 0, 0), STORE_OK);
    span_rec *spans;
    size_t n;
    assert_int_equal(store_trace_get(f->st, &f->ta, old_t, &spans, &n), STORE_OK);
    store_free_spans(spans, n);
    /* the next batch prunes what ended more than 72 hours before now */
    span_rec r2 = rec(new_t, "0000000000000003", f->ta_id, now);
    assert_int_equal(store_spans_insert(f->st, &r2, 1, now - 72LL * 3600 * 1000000000LL, 0), STORE_OK);
    assert_int_equal(store_trace_get(f->st, &f->ta, old_t, &spans, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->ta, new_t, &spans, &n), STORE_OK);
    assert_int_equal(n, 2);
    store_free_spans(spans, n);

    /* by count: 50 spans with a cap of 10 keep the newest 10 */
    span_rec many[50];
    char sid[17];
    const char *cnt_t = "cccccccccccccccccccccccccccccccc";
    for (int i = 0; i < 50; i++) {
        snprintf(sid, sizeof sid, "%016x", i + 16);
        many[i] = rec(cnt_t, sid, f->ta_id, now + i);
    }
    assert_int_equal(store_spans_insert(f->st, many, 50, 0, 10), STORE_OK);
    assert_int_equal(store_trace_get(f->st, &f->ta, cnt_t, &spans, &n), STORE_OK);
    assert_int_equal(n, 10);
    assert_string_equal(spans[0].span_id, "0000000000000038");   /* i = 40 */
    store_free_spans(spans, n);
    /* and nothing else survived the cap */
    assert_int_equal(store_trace_get(f->st, &f->ta, new_t, &spans, &n), STORE_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scoping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
