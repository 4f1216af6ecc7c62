/* test_outcap_replay.c — the pure parts of the output cap (outcap.h) and of
 * resuming a cut stream by replay (replay.h): counting streamed tokens,
 * the events that end a cut stream, matching a replay against the text
 * already delivered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "upstream/resilience/outcap.h"
#include "upstream/resilience/replay.h"

static const char *chunk(char *out, size_t n, const char *content)
{
    snprintf(out, n, "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\","
                     "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]}", content);
    return out;
}

static void test_outcap_counts_and_cuts(void **st)
{
    (void)st;
    upstream_outcap oc;
    upstream_outcap_init(&oc, 3, false);
    char b[512];
    const char *role = "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}";
    assert_int_equal(upstream_outcap_tokens(&oc, role, strlen(role), NULL), 0);
    for (int i = 0; i < 3; i++) {
        chunk(b, sizeof b, "word ");
        uint64_t t = upstream_outcap_tokens(&oc, b, strlen(b), NULL);
        assert_int_equal(t, 1);
        assert_true(upstream_outcap_pass(&oc, t));
    }
    chunk(b, sizeof b, "more");
    assert_false(upstream_outcap_pass(&oc, upstream_outcap_tokens(&oc, b, strlen(b), NULL)));
    assert_int_equal(oc.streamed, 3);
    /* the end: one finish chunk ("length"), then the usage chunk */
    buf out;
    buf_init(&out);
    size_t n = upstream_outcap_end_events(&oc, 11, &out);
    assert_int_equal(n, 2);
    cJSON *fin = cJSON_Parse(out.data);
    assert_non_null(fin);
    assert_string_equal(cJSON_GetObjectItem(fin, "id")->valuestring, "c1");
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(fin, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(c0, "finish_reason")->valuestring, "length");
    cJSON *u = cJSON_Parse(out.data + strlen(out.data) + 1);
    const cJSON *usage = cJSON_GetObjectItem(u, "usage");
    assert_int_equal((int)cJSON_GetObjectItem(usage, "prompt_tokens")->valuedouble, 11);
    assert_int_equal((int)cJSON_GetObjectItem(usage, "completion_tokens")->valuedouble, 3);
    cJSON_Delete(fin);
    cJSON_Delete(u);
    buf_free(&out);
    upstream_outcap_free(&oc);
    /* no cap: nothing is counted, everything passes */
    upstream_outcap_init(&oc, 0, false);
    chunk(b, sizeof b, "x");
    assert_int_equal(upstream_outcap_tokens(&oc, b, strlen(b), NULL), 0);
    assert_true(upstream_outcap_pass(&oc, 1000));
    upstream_outcap_free(&oc);
}

static void test_outcap_responses(void **st)
{
    (void)st;
    upstream_outcap oc;
    upstream_outcap_init(&oc, 2, true);
    const char *evs[] = {
        "{\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"id\":\"msg_1\",\"type\":\"message\","
        "\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}",
        "{\"type\":\"response.content_part.added\",\"output_index\":0,\"content_index\":0,\"item_id\":\"msg_1\","
        "\"part\":{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}}",
        "{\"type\":\"response.output_text.delta\",\"output_index\":0,\"content_index\":0,\"item_id\":\"msg_1\",\"delta\":\"hello\"}",
        "{\"type\":\"response.output_text.delta\",\"output_index\":0,\"content_index\":0,\"item_id\":\"msg_1\",\"delta\":\" world\"}",
    };
    for (size_t i = 0; i < 4; i++) {
        uint64_t t = upstream_outcap_tokens(&oc, evs[i], strlen(evs[i]), NULL);
        assert_int_equal(t, i >= 2 ? 1 : 0);
        assert_true(upstream_outcap_pass(&oc, t));
    }
    buf out;
    buf_init(&out);
    assert_int_equal(upstream_outcap_end_events(&oc, 5, &out), 1);
    cJSON *e = cJSON_Parse(out.data);
    assert_string_equal(cJSON_GetObjectItem(e, "type")->valuestring, "response.incomplete");
    const cJSON *r = cJSON_GetObjectItem(e, "response");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "incomplete_details"), "reason")->valuestring,
                        "max_output_tokens");
    const cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "output"), 0);
    assert_string_equal(cJSON_GetObjectItem(item, "status")->valuestring, "incomplete");
    const cJSON *part = cJSON_GetArrayItem(cJSON_GetObjectItem(item, "content"), 0);
    assert_string_equal(cJSON_GetObjectItem(part, "text")->valuestring, "hello world");
    cJSON_Delete(e);
    buf_free(&out);
    upstream_outcap_free(&oc);
}

/* A call's arguments and an item made whole again by output_item.done;
 * and a long answer of small deltas kept in linear time (each delta
 * copied the whole text so far: 200 000 deltas of 16 bytes, ~320 GB). */
static void test_outcap_responses_texts(void **st)
{
    (void)st;
    upstream_outcap oc;
    upstream_outcap_init(&oc, 1000000, true);
    const char *evs[] = {
        "{\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\","
        "\"status\":\"in_progress\",\"name\":\"f\",\"arguments\":\"\"}}",
        "{\"type\":\"response.function_call_arguments.delta\",\"output_index\":0,\"delta\":\"{\\\"a\\\":\"}",
        "{\"type\":\"response.function_call_arguments.delta\",\"output_index\":0,\"delta\":\"1}\"}",
        "{\"type\":\"response.output_item.added\",\"output_index\":1,\"item\":{\"id\":\"msg_1\",\"type\":\"message\","
        "\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}",
        "{\"type\":\"response.content_part.added\",\"output_index\":1,\"content_index\":0,"
        "\"part\":{\"type\":\"output_text\",\"text\":\"\"}}",
        "{\"type\":\"response.output_text.delta\",\"output_index\":1,\"content_index\":0,\"delta\":\"draft\"}",
        "{\"type\":\"response.output_item.done\",\"output_index\":1,\"item\":{\"id\":\"msg_1\",\"type\":\"message\","
        "\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"whole\"}]}}",
        "{\"type\":\"response.output_item.added\",\"output_index\":2,\"item\":{\"id\":\"msg_2\",\"type\":\"message\","
        "\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}",
        "{\"type\":\"response.content_part.added\",\"output_index\":2,\"content_index\":0,"
        "\"part\":{\"type\":\"output_text\",\"text\":\"\"}}",
    };
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++)
        upstream_outcap_tokens(&oc, evs[i], strlen(evs[i]), NULL);
    const char *small = "{\"type\":\"response.output_text.delta\",\"output_index\":2,\"content_index\":0,"
                        "\"delta\":\"0123456789abcdef\"}";
    enum { N = 200000 };
    clock_t t0 = clock();
    for (int i = 0; i < N; i++) upstream_outcap_tokens(&oc, small, strlen(small), NULL);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    buf out;
    buf_init(&out);
    assert_int_equal(upstream_outcap_end_events(&oc, 5, &out), 1);
    cJSON *e = cJSON_Parse(out.data);
    const cJSON *items = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "response"), "output");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "arguments")->valuestring, "{\"a\":1}");
    const cJSON *m1 = cJSON_GetArrayItem(items, 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(m1, "content"), 0), "text")->valuestring,
                        "whole");   /* the done item's text, not draft + whole */
    const cJSON *m2 = cJSON_GetArrayItem(items, 2);
    const char *long_text = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(m2, "content"), 0), "text")->valuestring;
    assert_int_equal(strlen(long_text), (size_t)N * 16);
    assert_int_equal(strncmp(long_text, "0123456789abcdef0123", 20), 0);
    cJSON_Delete(e);
    buf_free(&out);
    upstream_outcap_free(&oc);
    if (secs > 2.0) fail_msg("%d deltas took %.2f s of CPU", N, secs);
}

static void test_replay_skips_then_trims(void **st)
{
    (void)st;
    upstream_replay r;
    upstream_replay_init(&r);
    char b[512];
    chunk(b, sizeof b, "alpha ");
    upstream_replay_note(&r, b, strlen(b));
    chunk(b, sizeof b, "bravo");
    upstream_replay_note(&r, b, strlen(b));
    assert_true(r.resumable);
    upstream_replay_begin(&r);
    buf out;
    buf_init(&out);
    const char *role = "{\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}";
    assert_int_equal(upstream_replay_match(&r, role, strlen(role), &out), UPSTREAM_REPLAY_SKIP);
    chunk(b, sizeof b, "alpha ");
    assert_int_equal(upstream_replay_match(&r, b, strlen(b), &out), UPSTREAM_REPLAY_SKIP);
    /* "bravo charlie": past the kept text by " charlie" */
    chunk(b, sizeof b, "bravo charlie");
    assert_int_equal(upstream_replay_match(&r, b, strlen(b), &out),
                     UPSTREAM_REPLAY_PASS);
    cJSON *j = cJSON_Parse(out.data);
    const cJSON *d = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "delta");
    assert_string_equal(cJSON_GetObjectItem(d, "content")->valuestring, " charlie");
    assert_false(r.active);
    cJSON_Delete(j);
    buf_free(&out);
    upstream_replay_free(&r);
}

static void test_replay_diverges(void **st)
{
    (void)st;
    upstream_replay r;
    upstream_replay_init(&r);
    char b[512];
    chunk(b, sizeof b, "alpha bravo");
    upstream_replay_note(&r, b, strlen(b));
    buf out;
    buf_init(&out);
    /* other text */
    upstream_replay_begin(&r);
    chunk(b, sizeof b, "alpha delta");
    assert_int_equal(upstream_replay_match(&r, b, strlen(b), &out),
                     UPSTREAM_REPLAY_DIVERGED);
    /* an end before repeating all of it */
    upstream_replay_begin(&r);
    chunk(b, sizeof b, "alpha");
    assert_int_equal(upstream_replay_match(&r, b, strlen(b), &out), UPSTREAM_REPLAY_SKIP);
    const char *fin = "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}";
    assert_int_equal(upstream_replay_match(&r, fin, strlen(fin), &out), UPSTREAM_REPLAY_DIVERGED);
    /* a tool call */
    upstream_replay_begin(&r);
    const char *tool = "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}";
    assert_int_equal(upstream_replay_match(&r, tool, strlen(tool), &out), UPSTREAM_REPLAY_DIVERGED);
    buf_free(&out);
    /* a delivered tool call makes the stream not resumable */
    upstream_replay_note(&r, tool, strlen(tool));
    r.active = false;
    upstream_replay_note(&r, tool, strlen(tool));
    assert_false(r.resumable);
    upstream_replay_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcap_counts_and_cuts),
        cmocka_unit_test(test_outcap_responses),
        cmocka_unit_test(test_outcap_responses_texts),
        cmocka_unit_test(test_replay_skips_then_trims),
        cmocka_unit_test(test_replay_diverges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
