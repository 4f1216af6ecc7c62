/* test_obs_store.c — spans through the tracer into the store and back:
 * round trip (rows of binary spans, decoded as GET /v1/traces/{id} does),
 * the scope rules of store_trace_get (a user cannot read another user's
 * trace; one foreign row hides a trace; tenant admins see their tenant
 * only), retention pruning by age and by span count, and a tracer that
 * goes on taking spans while the writer is busy with its last flush. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "identity/scope_mint.h"
#include "obs/obs.h"
#include "obs/obs_internal.h"   /* obs_span.owner_key */
#include "obs/span_codec.h"
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

/* The spans of a trace as the API reads them: every row's blob decoded. */
static size_t trace_spans(fx *f, const scope *sc, const char *tid, obs_span_view *out, size_t max,
                          store_status *st)
{
    trace_rec *rows;
    size_t nrows, n = 0;
    *st = store_trace_get(f->st, sc, tid, &rows, &nrows);
    if (*st != STORE_OK) {
        assert_null(rows);
        return 0;
    }
    for (size_t r = 0; r < nrows; r++) {
        assert_string_equal(rows[r].trace_id, tid);
        obs_blob_reader rd;
        assert_int_equal(obs_blob_open(&rd, rows[r].blob, rows[r].blob_len), 0);
        int got;
        size_t in_row = 0;
        while (n < max && (got = obs_blob_next(&rd, &out[n])) == 1) { n++; in_row++; }
        assert_int_equal(in_row, rows[r].span_count);
    }
    store_free_traces(rows, nrows);
    return n;
}

static obs_span_view views[16];

static void test_round_trip(void **state)
{
    fx *f = *state;
    char tid[OBS_TRACE_ID_HEX];
    make_trace(&f->ua1, NULL, tid);
    obs_tracer_flush();
    /* one request, one owner: one row, its summary columns filled */
    trace_rec *rows;
    size_t nrows;
    assert_int_equal(store_trace_get(f->st, &f->ua1, tid, &rows, &nrows), STORE_OK);
    assert_int_equal(nrows, 1);
    assert_int_equal(rows[0].span_count, 3);
    assert_string_equal(rows[0].root_name, "POST /v1/chat/completions");
    assert_int_equal(rows[0].status, OBS_STATUS_ERROR);    /* the model call failed */
    assert_string_equal(rows[0].user_id, f->ua1.user_id);
    assert_true(rows[0].end_ns >= rows[0].start_ns);
    store_free_traces(rows, nrows);

    store_status st;
    size_t n = trace_spans(f, &f->ua1, tid, views, 16, &st);
    assert_int_equal(st, STORE_OK);
    assert_int_equal(n, 3);
    /* ordered by start: root first, its children point at it */
    obs_span_view *spans = views;
    assert_string_equal(spans[0].name, "POST /v1/chat/completions");
    assert_string_equal(spans[0].parent_span_id, "");
    assert_int_equal(spans[0].kind, OBS_SPAN_SERVER);
    for (size_t i = 1; i < n; i++) assert_string_equal(spans[i].parent_span_id, spans[0].span_id);
    const obs_span_view *call = strcmp(spans[1].name, "chat mock-gpt") == 0 ? &spans[1] : &spans[2];
    assert_int_equal(call->status, OBS_STATUS_ERROR);
    assert_string_equal(call->status_message, "upstream 502");
    buf b;
    buf_init(&b);
    obs_span_view_attrs_json(&b, call);
    cJSON *a = cJSON_Parse(b.data);
    buf_free(&b);
    assert_non_null(a);
    assert_string_equal(cJSON_GetObjectItem(a, "gen_ai.system")->valuestring, "openai");
    assert_int_equal(cJSON_GetObjectItem(a, "gen_ai.usage.input_tokens")->valueint, 12);
    cJSON_Delete(a);
    assert_true(spans[0].end_ns >= spans[0].start_ns);
}

static void test_scoping(void **state)
{
    fx *f = *state;
    char tid[OBS_TRACE_ID_HEX];
    make_trace(&f->ua1, NULL, tid);
    obs_tracer_flush();
    trace_rec *rows;
    size_t n;
    store_status st;
    /* the owner and its tenant admin see it */
    assert_int_equal(trace_spans(f, &f->ua1, tid, views, 16, &st), 3);
    assert_int_equal(trace_spans(f, &f->ta, tid, views, 16, &st), 3);
    /* another user of the same tenant, another tenant's user and admin: not found */
    assert_int_equal(store_trace_get(f->st, &f->ua2, tid, &rows, &n), STORE_NOT_FOUND);
    assert_null(rows);
    assert_int_equal(store_trace_get(f->st, &f->ub, tid, &rows, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->tb, tid, &rows, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->admin, tid, &rows, &n), STORE_FORBIDDEN);
    assert_int_equal(store_trace_get(f->st, &f->ua1, "00000000000000000000000000000001", &rows, &n),
                     STORE_NOT_FOUND);

    /* User a2 continues a1's trace id (a forged traceparent): the trace
     * now holds a foreign row, so neither user can read it — a2 learns
     * nothing of a1's spans, and a1 is not shown a2's. */
    obs_trace_ctx forged;
    char tp[80];
    snprintf(tp, sizeof tp, "00-%s-00f067aa0ba902b7-01", tid);
    assert_true(obs_traceparent_parse(tp, &forged));
    char tid2[OBS_TRACE_ID_HEX];
    make_trace(&f->ua2, &forged, tid2);
    assert_string_equal(tid, tid2);
    obs_tracer_flush();
    assert_int_equal(store_trace_get(f->st, &f->ua2, tid, &rows, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->ua1, tid, &rows, &n), STORE_NOT_FOUND);
    /* the tenant admin owns both users' spans */
    assert_int_equal(trace_spans(f, &f->ta, tid, views, 16, &st), 6);

    /* spans without an owner are never stored (and so do not hide) */
    char tid3[OBS_TRACE_ID_HEX];
    make_trace(&f->ub, NULL, tid3);
    snprintf(tp, sizeof tp, "00-%s-00f067aa0ba902b7-01", tid3);
    assert_true(obs_traceparent_parse(tp, &forged));
    obs_span *anon = obs_span_begin(&forged, "GET /v1/me", OBS_SPAN_SERVER, NULL);
    obs_span_end(anon, OBS_STATUS_OK, NULL);
    obs_tracer_flush();
    assert_int_equal(trace_spans(f, &f->ub, tid3, views, 16, &st), 3);
    assert_int_equal(store_trace_get(f->st, &f->ub, tid3, &rows, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_free_traces(rows, n);
}

/* The tracer orders spans by a key of their owner (span.c) and only then
 * by trace: two owners whose keys collide, writing into one trace, must
 * still get rows of their own, never one row with both owners' spans (the
 * row would be the first one's, and the scope check would miss the
 * other). Their spans interleave by start, so each owner's spans may come
 * as several rows; a read joins them. */
static void test_owner_key_collision(void **state)
{
    fx *f = *state;
    obs_span *root = obs_span_begin(NULL, "POST /v1/chat/completions", OBS_SPAN_SERVER, &f->ua1);
    obs_span *kids[6];
    for (int i = 0; i < 6; i++) {
        kids[i] = obs_span_begin(obs_span_ctx(root), "step", OBS_SPAN_INTERNAL, i % 2 ? &f->ua2 : &f->ua1);
        kids[i]->owner_key = root->owner_key;   /* the collision */
    }
    for (int i = 0; i < 6; i++) obs_span_end(kids[i], OBS_STATUS_OK, NULL);
    char tid[OBS_TRACE_ID_HEX];
    obs_trace_id_hex(obs_span_ctx(root), tid);
    obs_span_end(root, OBS_STATUS_OK, NULL);
    obs_tracer_flush();
    trace_rec *rows;
    size_t n;
    assert_int_equal(store_trace_get(f->st, &f->ta, tid, &rows, &n), STORE_OK);
    size_t a1 = 0, a2 = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].user_id, f->ua1.user_id) == 0) a1 += rows[i].span_count;
        else if (strcmp(rows[i].user_id, f->ua2.user_id) == 0) a2 += rows[i].span_count;
        else fail_msg("a row of nobody's");
    }
    store_free_traces(rows, n);
    assert_int_equal(a1, 4);
    assert_int_equal(a2, 3);
    /* each owner's row is foreign to the other: neither reads the trace */
    assert_int_equal(store_trace_get(f->st, &f->ua1, tid, &rows, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->ua2, tid, &rows, &n), STORE_NOT_FOUND);
}

/* A row of `spans` spans; the store never opens the blob, so any bytes do. */
static trace_rec row(const char *tid, const char *tenant, int64_t end_ns, uint32_t spans)
{
    static unsigned char blob[] = "opaque";
    trace_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.trace_id, sizeof r.trace_id, "%s", tid);
    snprintf(r.tenant_id, sizeof r.tenant_id, "%s", tenant);
    snprintf(r.root_name, sizeof r.root_name, "s");
    r.start_ns = end_ns - 1000;
    r.end_ns = end_ns;
    r.span_count = spans;
    r.blob = blob;
    r.blob_len = sizeof blob - 1;
    return r;
}

static size_t rows_of(fx *f, const char *tid, store_status want)
{
    trace_rec *rows;
    size_t n;
    assert_int_equal(store_trace_get(f->st, &f->ta, tid, &rows, &n), want);
    size_t spans = 0;
    for (size_t i = 0; i < n; i++) spans += rows[i].span_count;
    store_free_traces(rows, n);
    return spans;
}

static void test_retention(void **state)
{
    fx *f = *state;
    const char *old_t = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", *new_t = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    int64_t now = 2000000000LL * 1000000000LL;
    trace_rec r[2] = {row(old_t, f->ta_id, now - 100LL * 3600 * 1000000000LL, 1),
                      row(new_t, f->ta_id, now, 1)};
    assert_int_equal(store_traces_insert(f->st, r, 2, 0, 0), STORE_OK);
    assert_int_equal(rows_of(f, old_t, STORE_OK), 1);
    /* the next batch prunes what ended more than 72 hours before now */
    trace_rec r2 = row(new_t, f->ta_id, now, 1);
    assert_int_equal(store_traces_insert(f->st, &r2, 1, now - 72LL * 3600 * 1000000000LL, 0), STORE_OK);
    assert_int_equal(rows_of(f, old_t, STORE_NOT_FOUND), 0);
    assert_int_equal(rows_of(f, new_t, STORE_OK), 2);

    /* by count of spans, not rows: 50 one-span rows with a cap of 10 keep
     * the newest 10 */
    trace_rec many[50];
    const char *cnt_t = "cccccccccccccccccccccccccccccccc";
    for (int i = 0; i < 50; i++) many[i] = row(cnt_t, f->ta_id, now + i, 1);
    assert_int_equal(store_traces_insert(f->st, many, 50, 0, 10), STORE_OK);
    assert_int_equal(rows_of(f, cnt_t, STORE_OK), 10);
    /* and nothing else survived the cap */
    assert_int_equal(rows_of(f, new_t, STORE_NOT_FOUND), 0);
    /* one row of 8 spans counts 8: with a cap of 10, it and two of the
     * one-span rows before it remain */
    trace_rec big = row(cnt_t, f->ta_id, now + 60, 8);
    assert_int_equal(store_traces_insert(f->st, &big, 1, 0, 10), STORE_OK);
    assert_int_equal(rows_of(f, cnt_t, STORE_OK), 10);
    /* a row of more spans than the cap is kept whole until the next ones */
    trace_rec huge = row(new_t, f->ta_id, now + 70, 25);
    assert_int_equal(store_traces_insert(f->st, &huge, 1, 0, 10), STORE_OK);
    assert_int_equal(rows_of(f, cnt_t, STORE_NOT_FOUND), 0);
    assert_int_equal(rows_of(f, new_t, STORE_OK), 25);
}

/* Bad rows are refused, not stored half-way. */
static void test_insert_invalid(void **state)
{
    fx *f = *state;
    int64_t now = 2000000000LL * 1000000000LL;
    trace_rec r = row("dddddddddddddddddddddddddddddddd", "", now, 1);   /* ownerless */
    assert_int_equal(store_traces_insert(f->st, &r, 1, 0, 0), STORE_INVALID);
    r = row("dddddddddddddddddddddddddddddddd", f->ta_id, now, 0);          /* no spans */
    assert_int_equal(store_traces_insert(f->st, &r, 1, 0, 0), STORE_INVALID);
    assert_int_equal(rows_of(f, "dddddddddddddddddddddddddddddddd", STORE_NOT_FOUND), 0);
}

/* The writer counts seq itself (store_traces.c); a batch rolled back must
 * not leave that count ahead, or the count bound would later prune spans
 * that are within it. */
static void test_seq_after_rollback(void **state)
{
    fx *f = *state;
    int64_t now = 2000000000LL * 1000000000LL;
    const char *a_t = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", *b_t = "ffffffffffffffffffffffffffffffff";
    trace_rec a = row(a_t, f->ta_id, now, 1);
    assert_int_equal(store_traces_insert(f->st, &a, 1, 0, 0), STORE_OK);
    /* five spans written, then a bad row: the whole batch is undone */
    trace_rec bad[2] = {row(b_t, f->ta_id, now + 1, 5), row(b_t, f->ta_id, now + 2, 0)};
    assert_int_equal(store_traces_insert(f->st, bad, 2, 0, 0), STORE_INVALID);
    assert_int_equal(rows_of(f, b_t, STORE_NOT_FOUND), 0);
    /* 1 + 9 spans are within a cap of 10: the first row stays */
    trace_rec nine[9];
    for (int i = 0; i < 9; i++) nine[i] = row(b_t, f->ta_id, now + 10 + i, 1);
    assert_int_equal(store_traces_insert(f->st, nine, 9, 0, 10), STORE_OK);
    assert_int_equal(rows_of(f, a_t, STORE_OK), 1);
    assert_int_equal(rows_of(f, b_t, STORE_OK), 9);
    /* one more, and the first is the one pruned */
    trace_rec one = row(b_t, f->ta_id, now + 30, 1);
    assert_int_equal(store_traces_insert(f->st, &one, 1, 0, 10), STORE_OK);
    assert_int_equal(rows_of(f, a_t, STORE_NOT_FOUND), 0);
    assert_int_equal(rows_of(f, b_t, STORE_OK), 10);
}

#define BUSY_TRACES 24000   /* 72 000 spans: over twice the tracer's queue bound (32 768) */

/* While the writer commits (here: is held in) one flush, the tracer takes
 * the spans that keep ending and gathers the next one; its queue does not
 * fill, and nothing is dropped. A tracer that waited for each commit held
 * at most one queue's worth (then 16 384 spans) and dropped the rest, which is
 * how a saturated server stored one trace in four (docs/benchmarks.md). */
static void test_spans_gather_while_the_writer_is_busy(void **state)
{
    fx *f = *state;
    assert_true(test_store_hold_writer(f->st));
    static char tids[BUSY_TRACES][OBS_TRACE_ID_HEX];
    for (int i = 0; i < BUSY_TRACES; i++) {
        make_trace(i % 2 ? &f->ua1 : &f->ub, NULL, tids[i]);
        if (i % 1000 != 999) continue;
        /* the tracer takes what is queued even though the writer has not
         * committed anything it was given */
        for (int ms = 0; obs_tracer_queued() > 0; ms++) {
            if (ms > 20000) fail_msg("the tracer stopped taking spans after %d traces (%zu queued)", i + 1,
                                     obs_tracer_queued());
            nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
        }
    }
    test_store_release_writer();
    obs_tracer_flush();
    /* every trace whole, each read by its owner */
    for (int i = 0; i < BUSY_TRACES; i++) {
        store_status st;
        size_t n = trace_spans(f, i % 2 ? &f->ua1 : &f->ub, tids[i], views, 16, &st);
        assert_int_equal(st, STORE_OK);
        assert_int_equal(n, 3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scoping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_key_collision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_after_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spans_gather_while_the_writer_is_busy, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
