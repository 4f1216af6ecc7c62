/* test_obs_trace.c — W3C traceparent parsing and formatting, span
 * attributes, and the OTLP/HTTP JSON encoding of spans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "identity/scope_mint.h"
#include "obs/obs_internal.h"

static void test_traceparent_valid(void **state)
{
    (void)state;
    obs_trace_ctx c;
    const char *h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_true(obs_traceparent_parse(h, &c));
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.trace_id[15], 0x36);
    assert_int_equal(c.span_id[7], 0xb7);
    assert_int_equal(c.flags, 1);
    char out[OBS_TRACEPARENT_LEN + 1];
    obs_traceparent_format(&c, out);
    assert_string_equal(out, h);
    char tid[OBS_TRACE_ID_HEX];
    obs_trace_id_hex(&c, tid);
    assert_string_equal(tid, "4bf92f3577b34da6a3ce929d0e0e4736");
    /* flags other than 01 are kept as they are */
    assert_true(obs_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c));
    assert_int_equal(c.flags, 0);
}

static void test_traceparent_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "00",
        /* version other than 00 */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        /* upper-case hex */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        /* all-zero ids */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        /* wrong lengths, separators, trailing data */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        obs_trace_ctx c;
        memset(&c, 0x5a, sizeof c);
        if (obs_traceparent_parse(bad[i], &c)) fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(c.trace_id[0], 0x5a);   /* untouched */
    }
    obs_trace_ctx c;
    assert_false(obs_traceparent_parse(NULL, &c));
    assert_true(obs_trace_id_valid("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_false(obs_trace_id_valid("4BF92F3577B34DA6A3CE929D0E0E4736"));
    assert_false(obs_trace_id_valid("00000000000000000000000000000000"));
    assert_false(obs_trace_id_valid("4bf92f3577b34da6"));
    assert_false(obs_trace_id_valid("../../etc/passwd"));
}

static void test_new_ids_distinct(void **state)
{
    (void)state;
    obs_trace_ctx a, b;
    obs_trace_ctx_new(&a);
    obs_trace_ctx_new(&b);
    assert_memory_not_equal(a.trace_id, b.trace_id, 16);
    char out[OBS_TRACEPARENT_LEN + 1];
    obs_traceparent_format(&a, out);
    obs_trace_ctx back;
    assert_true(obs_traceparent_parse(out, &back));   /* we emit what we accept */
    assert_memory_equal(back.trace_id, a.trace_id, 16);
}

/* Only ids this process made say so (the store packs their traces, found
 * again by the time they begin with: store/trace_pack.h). An id from a
 * client's traceparent never does, whatever its bits, and children carry
 * their parent's mark. */
static void test_made_here(void **state)
{
    (void)state;
    obs_trace_ctx mine, theirs;
    obs_trace_ctx_new(&mine);
    assert_true(mine.made_here);
    char out[OBS_TRACEPARENT_LEN + 1];
    obs_traceparent_format(&mine, out);
    memset(&theirs, 0xff, sizeof theirs);
    assert_true(obs_traceparent_parse(out, &theirs));   /* our own id, sent back by a client */
    assert_false(theirs.made_here);
    scope owner;
    scope_mint_user(&owner, "ten_a", "usr_a", "key_a", "default");
    obs_span *root = obs_span_begin(NULL, "root", OBS_SPAN_SERVER, &owner);
    obs_span *child = obs_span_begin(obs_span_ctx(root), "child", OBS_SPAN_INTERNAL, &owner);
    obs_span *cont = obs_span_begin(&theirs, "continued", OBS_SPAN_SERVER, &owner);
    assert_true(obs_span_ctx(root)->made_here);
    assert_true(obs_span_ctx(child)->made_here);
    assert_false(obs_span_ctx(cont)->made_here);
    /* an owner's spans share a grouping key; another owner's differs */
    scope other;
    scope_mint_user(&other, "ten_a", "usr_b", "key_b", "default");
    obs_span *elsewhere = obs_span_begin(NULL, "root", OBS_SPAN_SERVER, &other);
    assert_true(root->owner_key == child->owner_key);
    assert_true(root->owner_key != elsewhere->owner_key);
    obs_span_set_owner(elsewhere, &owner);
    assert_true(root->owner_key == elsewhere->owner_key);
    obs_span_discard(elsewhere);
    obs_span_discard(cont);
    obs_span_discard(child);
    obs_span_discard(root);
}

/* Freed spans are made again from the pool (span_pool.c), which keeps at
 * most OBS_SPANS_KEPT, and a thread's cache goes back to it at the
 * thread's exit (run under ASan/LSan, a span lost on the way leaks). */
static void *make_one_span(void *arg)
{
    obs_span *s = obs_span_begin(NULL, "in a thread", OBS_SPAN_INTERNAL, NULL);
    *(obs_span **)arg = s;
    obs_span_discard(s);   /* into the pool, not this thread's cache */
    return NULL;
}

static void test_span_pool(void **state)
{
    (void)state;
    enum { N = OBS_SPANS_KEPT + 500 };
    obs_span **made = malloc(N * sizeof *made);
    for (size_t i = 0; i < N; i++) made[i] = obs_span_begin(NULL, "s", OBS_SPAN_INTERNAL, NULL);
    obs_span_set_str(made[0], "big", "a value that fits");
    obs_span_free_many(made, N);
    assert_int_equal(obs_span_pool_size(), OBS_SPANS_KEPT);   /* the rest were freed */
    obs_span *again = obs_span_begin(NULL, "again", OBS_SPAN_INTERNAL, NULL);
    bool reused = false;
    for (size_t i = 0; i < OBS_SPANS_KEPT; i++) reused |= made[i] == again;
    assert_true(reused);
    assert_string_equal(again->name, "again");
    assert_int_equal(again->n_attrs, 0);          /* nothing of the span it was */
    assert_int_equal(again->pool_used, 0);
    obs_span_discard(again);
    /* another thread takes a batch into its cache, and gives it back as it exits */
    size_t before = obs_span_pool_size();
    pthread_t t;
    obs_span *theirs = NULL;
    assert_int_equal(pthread_create(&t, NULL, make_one_span, &theirs), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_non_null(theirs);
    assert_int_equal(obs_span_pool_size(), before);
    free(made);
}

/* New trace ids start with their time in Unix ms (so the store's trace-id
 * index grows at its end, traceparent.c), and keep 80 random bits: ids made
 * in the same millisecond differ, and sort by time across milliseconds. */
static void test_new_ids_time_ordered(void **state)
{
    (void)state;
    struct timespec t0, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    obs_trace_ctx a, b;
    obs_trace_ctx_new(&a);
    obs_trace_ctx_new(&b);
    clock_gettime(CLOCK_REALTIME, &t1);
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++) ms = ms << 8 | a.trace_id[i];
    uint64_t lo = (uint64_t)t0.tv_sec * 1000 + (uint64_t)t0.tv_nsec / 1000000;
    uint64_t hi = (uint64_t)t1.tv_sec * 1000 + (uint64_t)t1.tv_nsec / 1000000;
    assert_true(ms >= lo && ms <= hi);
    assert_memory_not_equal(a.trace_id + 6, b.trace_id + 6, 10);
    /* a later millisecond sorts after, as hex text too (the stored form) */
    struct timespec pause = {0, 2 * 1000 * 1000};
    nanosleep(&pause, NULL);
    obs_trace_ctx later;
    obs_trace_ctx_new(&later);
    char ha[OBS_TRACEPARENT_LEN + 1], hl[OBS_TRACEPARENT_LEN + 1];
    obs_traceparent_format(&a, ha);
    obs_traceparent_format(&later, hl);
    assert_true(memcmp(ha + 3, hl + 3, 32) < 0);   /* "00-" then the trace id */
}

static void test_span_children_and_attrs(void **state)
{
    (void)state;
    scope user;
    scope_mint_user(&user, "ten_1", "usr_1", "key_1", "default");
    obs_span *root = obs_span_begin(NULL, "GET /v1/x", OBS_SPAN_SERVER, &user);
    obs_span *child = obs_span_begin(obs_span_ctx(root), "chat", OBS_SPAN_CLIENT, NULL);
    assert_memory_equal(child->ctx.trace_id, root->ctx.trace_id, 16);
    assert_memory_equal(child->parent_id, root->ctx.span_id, 8);
    assert_true(child->has_parent);
    assert_false(root->has_parent);
    assert_string_equal(root->tenant_id, "ten_1");
    assert_string_equal(root->user_id, "usr_1");
    assert_string_equal(child->tenant_id, "");

    obs_span_set_str(child, "k", "first");
    obs_span_set_str(child, "k", "second");   /* replaces */
    obs_span_set_int(child, "n", 42);
    assert_int_equal(child->n_attrs, 2);
    assert_string_equal(child->pool + child->attrs[0].off, "second");
    /* far more attributes than fit: the extra ones are dropped, no overrun */
    char key[32], big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "a%d", i);
        obs_span_set_str(child, key, big);
    }
    assert_int_equal(child->n_attrs, OBS_SPAN_ATTRS_MAX);
    assert_true(child->values_used <= OBS_SPAN_POOL);
    assert_true(child->pool_used <= child->pool_cap && child->pool_cap <= OBS_SPAN_POOL_MAX);
    assert_string_equal(obs_attr_key(child, &child->attrs[0]), "k");
    obs_span_discard(child);
    obs_span_end(root, OBS_STATUS_OK, NULL);   /* no tracer running: freed */
}

/* Setting a key again replaces its value, whether or not other keys of
 * the span share its mark (length, first and last byte: span.c skips the
 * search for a key whose mark no earlier key has). */
static void test_attr_set_again_replaces(void **state)
{
    (void)state;
    obs_set_sample_ratio(1);
    obs_span *s = obs_span_begin(NULL, "marks", OBS_SPAN_INTERNAL, NULL);
    char key[8];
    for (int round = 0; round < 2; round++) {
        /* 26 keys of one mark, then 40 of assorted lengths and ends */
        for (char c = 'A'; c <= 'Z'; c++) {
            snprintf(key, sizeof key, "k%cx", c);
            obs_span_set_int(s, key, round * 100 + c);
        }
        for (int i = 0; i < 40; i++) {
            snprintf(key, sizeof key, "%c%d", 'a' + i % 7, i);
            obs_span_set_int(s, key, round * 100 + i);
        }
    }
    assert_int_equal(s->n_attrs, 26 + 40 > OBS_SPAN_ATTRS_MAX ? OBS_SPAN_ATTRS_MAX : 26 + 40);
    for (unsigned i = 0; i < s->n_attrs; i++) {
        const char *k = obs_attr_key(s, &s->attrs[i]);
        for (unsigned j = 0; j < i; j++) assert_string_not_equal(k, obs_attr_key(s, &s->attrs[j]));
        if (k[0] == 'k' && strlen(k) == 3) assert_int_equal(s->attrs[i].v.i, 100 + k[1]);
        else assert_int_equal(s->attrs[i].v.i, 100 + atoi(k + 1));
    }
    obs_span_discard(s);
}

/* Head sampling: the share of new traces sampled follows the ratio; an
 * unsampled span keeps its context (for the traceparent) but no
 * attributes; children follow their parent's flag. */
static void test_sampling(void **state)
{
    (void)state;
    obs_trace_ctx c;
    obs_set_sample_ratio(0);
    for (int i = 0; i < 100; i++) {
        obs_trace_ctx_new(&c);
        assert_int_equal(c.flags & 1, 0);
    }
    obs_set_sample_ratio(1);
    for (int i = 0; i < 100; i++) {
        obs_trace_ctx_new(&c);
        assert_int_equal(c.flags & 1, 1);
    }
    obs_set_sample_ratio(0.25);
    int sampled = 0;
    for (int i = 0; i < 20000; i++) {
        obs_trace_ctx_new(&c);
        sampled += c.flags & 1;
    }
    assert_in_range(sampled, 4400, 5600);          /* 5000 ± 8 sigma-ish */

    obs_set_sample_ratio(0);
    obs_span *root = obs_span_begin(NULL, "root", OBS_SPAN_SERVER, NULL);
    assert_false(obs_span_recording(root));
    obs_span_set_str(root, "k", "v");                /* kept nowhere, costs nothing */
    char tp[OBS_TRACEPARENT_LEN + 1];
    obs_traceparent_format(obs_span_ctx(root), tp);
    assert_string_equal(tp + 53, "00");              /* the flag goes on, unsampled */
    obs_span *child = obs_span_begin(obs_span_ctx(root), "child", OBS_SPAN_INTERNAL, NULL);
    assert_false(obs_span_recording(child));
    obs_span_end(child, OBS_STATUS_OK, NULL);
    obs_span_end(root, OBS_STATUS_OK, NULL);

    obs_set_sample_ratio(0);                         /* a sampled parent wins over the ratio */
    obs_trace_ctx parent;
    assert_true(obs_traceparent_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", &parent));
    obs_span *cont = obs_span_begin(&parent, "continued", OBS_SPAN_SERVER, NULL);
    assert_true(obs_span_recording(cont));
    obs_span_discard(cont);
    obs_set_sample_ratio(1);
}

/* Attribute strings as JSON: what needs escaping is escaped, runs of plain
 * text pass as they are, invalid UTF-8 never makes invalid JSON. */
static void test_json_strings(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        {"", "\"\""},
        {"plain text", "\"plain text\""},
        {"a\"b\\c", "\"a\\\"b\\\\c\""},
        {"line\nbreak\r\ttab", "\"line\\nbreak\\r\\ttab\""},
        {"\x01" "ctl\x7f", "\"\\u0001ctl\\u007f\""},
        {"caf\xc3\xa9", "\"caf\xc3\xa9\""},               /* valid UTF-8 kept */
        {"bad\xff\xfe" "end", "\"bad\xef\xbf\xbd\xef\xbf\xbd" "end\""}, /* invalid: U+FFFD */
        {"\"", "\"\\\"\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf b;
        buf_init(&b);
        obs_json_str(&b, cases[i].in);
        buf_append(&b, "", 1);
        assert_string_equal(b.data, cases[i].out);
        cJSON *j = cJSON_Parse(b.data);
        assert_non_null(j);
        assert_true(cJSON_IsString(j));
        cJSON_Delete(j);
        buf_free(&b);
    }
}

static void test_otlp_encoding(void **state)
{
    (void)state;
    obs_trace_ctx parent;
    assert_true(obs_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &parent));
    obs_span *s = obs_span_begin(&parent, "chat \"mock\"\n", OBS_SPAN_CLIENT, NULL);
    obs_span_set_str(s, "gen_ai.request.model", "mock-gpt");
    obs_span_set_int(s, "gen_ai.usage.input_tokens", 1234567890123LL);
    obs_span_set_double(s, "x.ratio", 0.25);
    obs_span_set_bool(s, "x.flag", true);
    obs_span_set_str(s, "bad.utf8", "\xff\xfe ok");
    s->end_ns = s->start_ns + 5000;
    s->status = OBS_STATUS_ERROR;
    s->status_msg = strdup("upstream 502");

    buf b;
    buf_init(&b);
    obs_span *arr[1] = {s};
    obs_otlp_encode(&b, arr, 1, "brigade-test");
    buf_append(&b, "", 1);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    cJSON *rs = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "resourceSpans"), 0);
    cJSON *rattr = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(rs, "resource"), "attributes"), 0);
    assert_string_equal(cJSON_GetObjectItem(rattr, "key")->valuestring, "service.name");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(rattr, "value"), "stringValue")->valuestring,
                        "brigade-test");
    cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItem(rs, "scopeSpans"), 0);
    cJSON *sp = cJSON_GetArrayItem(cJSON_GetObjectItem(ss, "spans"), 0);
    assert_string_equal(cJSON_GetObjectItem(sp, "traceId")->valuestring, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(cJSON_GetObjectItem(sp, "parentSpanId")->valuestring, "00f067aa0ba902b7");
    assert_int_equal(strlen(cJSON_GetObjectItem(sp, "spanId")->valuestring), 16);
    assert_string_equal(cJSON_GetObjectItem(sp, "name")->valuestring, "chat \"mock\"\n");
    assert_int_equal(cJSON_GetObjectItem(sp, "kind")->valueint, 3);
    /* 64-bit times are strings */
    assert_true(cJSON_IsString(cJSON_GetObjectItem(sp, "startTimeUnixNano")));
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)s->start_ns);
    assert_string_equal(cJSON_GetObjectItem(sp, "startTimeUnixNano")->valuestring, want);
    cJSON *attrs = cJSON_GetObjectItem(sp, "attributes");
    int seen = 0;
    cJSON *a;
    cJSON_ArrayForEach(a, attrs) {
        const char *k = cJSON_GetObjectItem(a, "key")->valuestring;
        cJSON *v = cJSON_GetObjectItem(a, "value");
        if (strcmp(k, "gen_ai.request.model") == 0) {
            assert_string_equal(cJSON_GetObjectItem(v, "stringValue")->valuestring, "mock-gpt");
            seen |= 1;
        } else if (strcmp(k, "gen_ai.usage.input_tokens") == 0) {
            assert_string_equal(cJSON_GetObjectItem(v, "intValue")->valuestring, "1234567890123");
            seen |= 2;
        } else if (strcmp(k, "x.ratio") == 0) {
            assert_true(cJSON_GetObjectItem(v, "doubleValue")->valuedouble == 0.25);
            seen |= 4;
        } else if (strcmp(k, "x.flag") == 0) {
            assert_true(cJSON_IsTrue(cJSON_GetObjectItem(v, "boolValue")));
            seen |= 8;
        } else if (strcmp(k, "bad.utf8") == 0) {
            assert_string_equal(cJSON_GetObjectItem(v, "stringValue")->valuestring, "\xef\xbf\xbd\xef\xbf\xbd ok");
            seen |= 16;
        }
    }
    assert_int_equal(seen, 31);
    cJSON *status = cJSON_GetObjectItem(sp, "status");
    assert_int_equal(cJSON_GetObjectItem(status, "code")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItem(status, "message")->valuestring, "upstream 502");
    cJSON_Delete(j);

    /* the store's flat attribute object is valid JSON with typed values */
    buf_free(&b);
    buf_init(&b);
    obs_attrs_json(&b, s);
    buf_append(&b, "", 1);
    j = cJSON_Parse(b.data);
    assert_non_null(j);
    assert_true(cJSON_GetObjectItem(j, "gen_ai.usage.input_tokens")->valuedouble == 1234567890123.0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "x.flag")));
    cJSON_Delete(j);
    buf_free(&b);
    obs_span_discard(s);
}

/* A text attribute loses its personal data; an id attribute is kept as
 * it is. (An error's message is redacted the same way in obs_span_end; the
 * e2e test reads it back through the traces API.) */
static void test_span_redacts_pii(void **state)
{
    (void)state;
    obs_trace_ctx ctx;
    obs_trace_ctx_new(&ctx);
    ctx.flags = 1;
    obs_span *s = obs_span_begin(&ctx, "tool", OBS_SPAN_INTERNAL, NULL);
    obs_span_set_text(s, "brigade.note", "from jane@example.com");
    obs_span_set_str(s, "brigade.run_id", "run_4111111111111111");
    assert_string_equal(s->pool + s->attrs[0].off, "from [EMAIL]");
    assert_string_equal(s->pool + s->attrs[1].off, "run_4111111111111111");
    obs_span_discard(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_valid),
        cmocka_unit_test(test_traceparent_invalid),
        cmocka_unit_test(test_new_ids_distinct),
        cmocka_unit_test(test_new_ids_time_ordered),
        cmocka_unit_test(test_made_here),
        cmocka_unit_test(test_span_pool),
        cmocka_unit_test(test_span_children_and_attrs),
        cmocka_unit_test(test_attr_set_again_replaces),
        cmocka_unit_test(test_span_redacts_pii),
        cmocka_unit_test(test_otlp_encoding),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_json_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
