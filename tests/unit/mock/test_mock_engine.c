/* test_mock_engine.c — the mock engine: markers, deterministic usage,
 * rendering (parsed back with cJSON), tool-call round trip, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "mock/mock_engine.h"
#include "util/json_escape.h"

static arena A;

static int setup(void **st) { (void)st; arena_init(&A, 4096); return 0; }
static int teardown(void **st) { (void)st; arena_free(&A); return 0; }

static void plan_of(mock_plan *p, const char *body, const mock_options *o)
{
    mock_plan_make(p, &A, body, strlen(body), o);
}

static cJSON *render_completion(const mock_plan *p)
{
    buf b;
    buf_init(&b);
    mock_render_completion(p, &b);
    cJSON *j = cJSON_ParseWithLength(b.data, b.len);
    buf_free(&b);
    assert_non_null(j);
    return j;
}

static void test_plain_reply_and_usage(void **st)
{
    (void)st;
    /* "hello" = 5 bytes → 2 tokens + 3; system "be brief" = 8 bytes → 2 + 3. */
    const char *body = "{\"model\":\"m1\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                       "{\"role\":\"user\",\"content\":\"hello\"}]}";
    mock_plan p;
    plan_of(&p, body, NULL);
    assert_int_equal(p.status, 200);
    assert_string_equal(p.model, "m1");
    assert_false(p.stream);
    assert_int_equal(p.prompt_tokens, 10);
    assert_int_equal(p.completion_tokens, MOCK_DEFAULT_TOKENS);
    assert_int_equal(p.fault, MOCK_FAULT_NONE);

    cJSON *j = render_completion(&p);
    assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring, "chat.completion");
    assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "m1");
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "stop");
    const char *content = cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "message"), "content")->valuestring;
    assert_true(strncmp(content, "alpha bravo charlie", 19) == 0);
    cJSON *u = cJSON_GetObjectItem(j, "usage");
    assert_int_equal(cJSON_GetObjectItem(u, "prompt_tokens")->valueint, 10);
    assert_int_equal(cJSON_GetObjectItem(u, "completion_tokens")->valueint, MOCK_DEFAULT_TOKENS);
    assert_int_equal(cJSON_GetObjectItem(u, "total_tokens")->valueint, 10 + MOCK_DEFAULT_TOKENS);
    cJSON_Delete(j);

    /* Same input, same reply (determinism), but a new id: ids are unique
     * per call, as a provider's are. */
    mock_plan q;
    plan_of(&q, body, NULL);
    assert_string_not_equal(q.id, p.id);
    assert_int_equal(q.hash, p.hash);
    assert_int_equal(q.text_len, p.text_len);
    assert_memory_equal(q.text, p.text, p.text_len);
}

static void test_markers(void **st)
{
    (void)st;
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"x [[tokens:5]] [[latency:250]] [[fault:rate_limit]] [[other]]\"}]}";
    mock_plan p;
    plan_of(&p, body, NULL);
    assert_int_equal(p.status, 200);
    assert_true(p.has_tokens);
    assert_int_equal(p.completion_tokens, 5);
    assert_true(p.has_latency);
    assert_int_equal(p.latency_ms, 250);
    assert_int_equal(p.fault, MOCK_FAULT_RATE_LIMIT);
    assert_int_equal(p.n_chunks, 5);
    assert_int_equal(p.text_len, strlen("alpha bravo charlie delta echo"));

    /* Markers only count in the LAST user message. */
    const char *b2 = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[[fault:hang]]\"},"
                     "{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":\"hi\"}]}";
    plan_of(&p, b2, NULL);
    assert_int_equal(p.fault, MOCK_FAULT_NONE);

    /* Array content parts are read too. */
    const char *b3 = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "[{\"type\":\"text\",\"text\":\"[[tokens:3]]\"}]}]}";
    plan_of(&p, b3, NULL);
    assert_int_equal(p.completion_tokens, 3);

    /* max_tokens cuts the reply: finish_reason length. */
    const char *b4 = "{\"model\":\"m\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"[[tokens:9]]\"}]}";
    plan_of(&p, b4, NULL);
    assert_int_equal(p.completion_tokens, 2);
    assert_string_equal(p.finish_reason, "length");
}

static void test_fault_count(void **st)
{
    (void)st;
    mock_fault_table t;
    mock_fault_table_init(&t);
    mock_options o = { .faults = &t };
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[[fault:server_error:2]]\"}]}";
    mock_plan p;
    plan_of(&p, body, &o);
    assert_int_equal(p.fault, MOCK_FAULT_SERVER_ERROR);
    plan_of(&p, body, &o);
    assert_int_equal(p.fault, MOCK_FAULT_SERVER_ERROR);
    plan_of(&p, body, &o);
    assert_int_equal(p.fault, MOCK_FAULT_NONE);   /* third attempt answers */
    /* A different body has its own count. */
    const char *other = "{\"model\":\"n\",\"messages\":[{\"role\":\"user\",\"content\":\"[[fault:server_error:2]]\"}]}";
    plan_of(&p, other, &o);
    assert_int_equal(p.fault, MOCK_FAULT_SERVER_ERROR);

    buf b;
    buf_init(&b);
    uint32_t ra = 0;
    plan_of(&p, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[[fault:rate_limit]]\"}]}", &o);
    assert_int_equal(mock_render_fault_error(&p, &b, &ra), 429);
    assert_int_equal(ra, 1);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "type")->valuestring,
                        "rate_limit_error");
    cJSON_Delete(j);
    buf_free(&b);

    /* Forced fault (header / flag) wins. */
    o.forced_fault = MOCK_FAULT_TRUNCATE;
    plan_of(&p, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &o);
    assert_int_equal(p.fault, MOCK_FAULT_TRUNCATE);
    mock_fault_table_destroy(&t);
}

static void test_tool_call_round_trip(void **st)
{
    (void)st;
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"look [[tool:get_weather {\\\"city\\\": \\\"Paris\\\", \\\"days\\\": 2}]]\"}]}";
    mock_plan p;
    plan_of(&p, body, NULL);
    assert_int_equal(p.status, 200);
    assert_int_equal(p.reply, MOCK_REPLY_TOOL_CALL);
    assert_string_equal(p.tool_name, "get_weather");
    assert_string_equal(p.finish_reason, "tool_calls");
    cJSON *j = render_completion(&p);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "tool_calls");
    cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "message"), "tool_calls"), 0);
    assert_string_equal(cJSON_GetObjectItem(tc, "type")->valuestring, "function");
    cJSON *fn = cJSON_GetObjectItem(tc, "function");
    assert_string_equal(cJSON_GetObjectItem(fn, "name")->valuestring, "get_weather");
    cJSON *args = cJSON_Parse(cJSON_GetObjectItem(fn, "arguments")->valuestring);
    assert_non_null(args);
    assert_string_equal(cJSON_GetObjectItem(args, "city")->valuestring, "Paris");
    assert_int_equal(cJSON_GetObjectItem(args, "days")->valueint, 2);
    cJSON_Delete(args);
    char id[64];
    strcpy(id, cJSON_GetObjectItem(tc, "id")->valuestring);
    cJSON_Delete(j);

    /* Second turn: the tool result follows the same user message → text
     * quoting it. */
    char body2[1024];
    snprintf(body2, sizeof(body2),
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
             "\"look [[tool:get_weather {\\\"city\\\":\\\"Paris\\\"}]]\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\","
             "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"%s\",\"content\":\"sunny, 21C\"}]}", id, id);
    plan_of(&p, body2, NULL);
    assert_int_equal(p.reply, MOCK_REPLY_TEXT);
    assert_string_equal(p.text, "Tool get_weather returned: sunny, 21C");
    assert_int_equal(p.completion_tokens, 5);

    /* Streamed tool call: header chunk with id/name/empty args, then
     * fragments whose concatenation is the arguments. */
    plan_of(&p, body, NULL);
    p.stream = true;
    p.include_usage = true;
    size_t n = mock_event_count(&p);
    buf acc, b;
    buf_init(&acc);
    buf_init(&b);
    bool saw_header = false, saw_finish = false, saw_usage = false;
    for (size_t i = 0; i < n; i++) {
        b.len = 0;
        mock_render_event(&p, i, &b);
        cJSON *e = cJSON_ParseWithLength(b.data, b.len);
        assert_non_null(e);
        assert_string_equal(cJSON_GetObjectItem(e, "object")->valuestring, "chat.completion.chunk");
        cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(e, "choices"), 0);
        if (!c0) {
            saw_usage = cJSON_GetObjectItem(e, "usage") != NULL;
            cJSON_Delete(e);
            continue;
        }
        cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "delta"), "tool_calls"), 0);
        if (t) {
            cJSON *f = cJSON_GetObjectItem(t, "function");
            if (cJSON_GetObjectItem(t, "id")) {
                saw_header = true;
                assert_string_equal(cJSON_GetObjectItem(f, "name")->valuestring, "get_weather");
                assert_string_equal(cJSON_GetObjectItem(f, "arguments")->valuestring, "");
            } else {
                buf_puts(&acc, cJSON_GetObjectItem(f, "arguments")->valuestring);
            }
        }
        cJSON *fr = cJSON_GetObjectItem(c0, "finish_reason");
        if (cJSON_IsString(fr)) {
            saw_finish = true;
            assert_string_equal(fr->valuestring, "tool_calls");
        }
        cJSON_Delete(e);
    }
    assert_true(saw_header && saw_finish && saw_usage);
    assert_int_equal(acc.len, p.tool_args_len);
    assert_memory_equal(acc.data, p.tool_args, p.tool_args_len);
    buf_free(&acc);
    buf_free(&b);
}

/* The chunks' bytes, exactly: the mock renders them without printf now;
 * every number and field must be where a client found it before. */
static void test_chunk_bytes(void **st)
{
    (void)st;
    mock_plan p;
    plan_of(&p, "{\"model\":\"m\\\"q\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL);
    snprintf(p.id, sizeof p.id, "chatcmpl-abc");
    p.created = -1700000000;   /* a sign, and every digit */
    buf b;
    buf_init(&b);
    mock_render_event(&p, 0, &b);
    buf_append(&b, "", 1);
    assert_string_equal(b.data, "{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":-1700000000,"
                                "\"model\":\"m\\\"q\",\"system_fingerprint\":\"fp_mock\",\"choices\":[{\"index\":0,"
                                "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
                                "\"finish_reason\":null}]}");
    size_t n = mock_event_count(&p);
    b.len = 0;
    mock_render_event(&p, n - 2, &b);
    buf_append(&b, "", 1);
    assert_non_null(strstr(b.data, ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}"));
    b.len = 0;
    mock_render_event(&p, n - 1, &b);
    buf_append(&b, "", 1);
    char want[256];
    snprintf(want, sizeof want, ",\"choices\":[],\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
             "\"total_tokens\":%lld}}", (long long)p.prompt_tokens, (long long)p.completion_tokens,
             (long long)(p.prompt_tokens + p.completion_tokens));
    assert_non_null(strstr(b.data, want));
    buf_free(&b);
}

static void test_stream_chunks(void **st)
{
    (void)st;
    const char *body = "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    mock_options o = { .stream_chunks = 4 };
    mock_plan p;
    plan_of(&p, body, &o);
    assert_true(p.stream);
    assert_true(p.include_usage);
    assert_int_equal(p.n_chunks, 4);
    size_t n = mock_event_count(&p);
    assert_int_equal(n, 1 + 4 + 1 + 1);
    buf text, b;
    buf_init(&text);
    buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        b.len = 0;
        mock_render_event(&p, i, &b);
        cJSON *e = cJSON_ParseWithLength(b.data, b.len);
        assert_non_null(e);
        cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(e, "choices"), 0);
        if (i == 0)
            assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "delta"), "role")->valuestring,
                                "assistant");
        else if (i >= 1 && i <= 4)
            buf_puts(&text, cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "delta"), "content")->valuestring);
        else if (i == 5)
            assert_string_equal(cJSON_GetObjectItem(c0, "finish_reason")->valuestring, "stop");
        else {
            assert_null(c0);
            cJSON *u = cJSON_GetObjectItem(e, "usage");
            assert_int_equal(cJSON_GetObjectItem(u, "completion_tokens")->valueint, MOCK_DEFAULT_TOKENS);
            assert_int_equal(cJSON_GetObjectItem(u, "prompt_tokens")->valueint, 4);
        }
        cJSON_Delete(e);
    }
    assert_int_equal(text.len, p.text_len);
    assert_memory_equal(text.data, p.text, p.text_len);
    buf_free(&text);
    buf_free(&b);

    /* [[tokens:N]] streams N content chunks whatever the configuration. */
    plan_of(&p, "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"[[tokens:7]]\"}]}", &o);
    assert_int_equal(p.n_chunks, 7);
    assert_int_equal(mock_event_count(&p), 1 + 7 + 1);
}

/* "n" is honoured: n choices, each the same reply, and usage counting the
 * completion tokens of all of them — whole bodies and streams alike. */
static void test_n_choices(void **st)
{
    (void)st;
    const char *body = "{\"model\":\"m\",\"n\":3,\"messages\":[{\"role\":\"user\",\"content\":\"[[tokens:5]]\"}]}";
    mock_plan p;
    plan_of(&p, body, NULL);
    assert_int_equal(p.status, 200);
    assert_int_equal(p.n_choices, 3);
    assert_int_equal(p.completion_tokens, 15);
    cJSON *j = render_completion(&p);
    cJSON *choices = cJSON_GetObjectItem(j, "choices");
    assert_int_equal(cJSON_GetArraySize(choices), 3);
    for (int k = 0; k < 3; k++) {
        cJSON *c = cJSON_GetArrayItem(choices, k);
        assert_int_equal(cJSON_GetObjectItem(c, "index")->valueint, k);
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "message"), "content")->valuestring,
                            "alpha bravo charlie delta echo");
    }
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "completion_tokens")->valueint, 15);
    cJSON_Delete(j);

    /* Streamed: each choice's role, chunks and finish, then the usage. */
    const char *sbody = "{\"model\":\"m\",\"n\":2,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                        "\"max_tokens\":3,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    plan_of(&p, sbody, NULL);
    assert_int_equal(p.completion_tokens, 6);
    size_t n = mock_event_count(&p);
    assert_int_equal(n, 2 * (1 + 3 + 1) + 1);
    buf text[2], b;
    buf_init(&text[0]);
    buf_init(&text[1]);
    buf_init(&b);
    int finished = 0;
    for (size_t i = 0; i < n; i++) {
        b.len = 0;
        mock_render_event(&p, i, &b);
        cJSON *e = cJSON_ParseWithLength(b.data, b.len);
        assert_non_null(e);
        cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(e, "choices"), 0);
        if (!c0) {
            assert_int_equal(i, n - 1);
            assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "usage"), "completion_tokens")->valueint, 6);
        } else {
            int k = cJSON_GetObjectItem(c0, "index")->valueint;
            assert_true(k == 0 || k == 1);
            const cJSON *content = cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "delta"), "content");
            if (cJSON_IsString(content)) buf_puts(&text[k], content->valuestring);
            if (cJSON_IsString(cJSON_GetObjectItem(c0, "finish_reason"))) finished++;
        }
        cJSON_Delete(e);
    }
    assert_int_equal(finished, 2);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(text[k].len, strlen("alpha bravo charlie"));
        assert_memory_equal(text[k].data, "alpha bravo charlie", text[k].len);
        buf_free(&text[k]);
    }
    buf_free(&b);

    /* Out of range or not an integer: 400 naming n. */
    const char *bad[] = {"0", "129", "1.5", "\"2\"", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char bb[160];
        snprintf(bb, sizeof bb, "{\"model\":\"m\",\"n\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", bad[i]);
        plan_of(&p, bb, NULL);
        assert_int_equal(p.status, 400);
        assert_string_equal(p.err_param, "n");
    }
}

/* A conversation of one user message, then `results` rounds of a clock call
 * and its result: the body the model sees after that many tool steps. */
static const char *loop_body(const char *marker, int results)
{
    static char body[8192];
    int o = snprintf(body, sizeof body,
                     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"time? [[tool:clock {}]] %s\"}", marker);
    for (int i = 0; i < results; i++)
        o += snprintf(body + o, sizeof body - (size_t)o,
                      ",{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c%d\","
                      "\"type\":\"function\",\"function\":{\"name\":\"clock\",\"arguments\":\"{}\"}}]},"
                      "{\"role\":\"tool\",\"tool_call_id\":\"c%d\",\"content\":\"12:0%d\"}",
                      i, i, i);
    snprintf(body + o, sizeof body - (size_t)o, "]}");
    return body;
}

/* [[tool_loop:N]]: the tool again after each result until N results came
 * back, then the answer; [[tool_loop]] alone never stops; a later user
 * message starts the count again. */
static void test_tool_loop_bounded(void **st)
{
    (void)st;
    mock_plan p;
    for (int r = 0; r < 3; r++) {
        plan_of(&p, loop_body("[[tool_loop:3]]", r), NULL);
        assert_int_equal(p.status, 200);
        assert_int_equal(p.reply, MOCK_REPLY_TOOL_CALL);
        assert_string_equal(p.tool_name, "clock");
    }
    plan_of(&p, loop_body("[[tool_loop:3]]", 3), NULL);
    assert_int_equal(p.reply, MOCK_REPLY_TEXT);
    assert_string_equal(p.text, "Tool clock returned: 12:02");
    /* the unbounded loop still asks after 3 (and 20) results */
    plan_of(&p, loop_body("[[tool_loop]]", 3), NULL);
    assert_int_equal(p.reply, MOCK_REPLY_TOOL_CALL);
    plan_of(&p, loop_body("[[tool_loop]]", 20), NULL);
    assert_int_equal(p.reply, MOCK_REPLY_TOOL_CALL);
    /* without a loop marker one result is the end */
    plan_of(&p, loop_body("", 1), NULL);
    assert_int_equal(p.reply, MOCK_REPLY_TEXT);
    /* results before the last user message do not count */
    char body[8192];
    const char *b2 = loop_body("[[tool_loop:2]]", 2);
    snprintf(body, sizeof body, "%.*s,{\"role\":\"user\",\"content\":\"again [[tool:clock {}]] "
             "[[tool_loop:2]]\"}]}", (int)(strlen(b2) - 2), b2);
    plan_of(&p, body, NULL);
    assert_int_equal(p.reply, MOCK_REPLY_TOOL_CALL);
}

static void test_bad_requests(void **st)
{
    (void)st;
    static const struct { const char *body; const char *param; } cases[] = {
        { "not json", NULL },
        { "[1,2]", NULL },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model" },
        { "{\"model\":\"m\"}", "messages" },
        { "{\"model\":\"m\",\"messages\":[]}", "messages" },
        { "{\"model\":\"m\",\"messages\":[42]}", "messages" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[[fault:nope]]\"}]}", "messages" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[[tool:x {bad]]\"}]}", "messages" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[[tokens:999999999]]\"}]}", "messages" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[[tool_loop:0]]\"}]}", "messages" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[[tool_loop:1001]]\"}]}", "messages" },
        { "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[[tool_loop:x]]\"}]}", "messages" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mock_plan p;
        plan_of(&p, cases[i].body, NULL);
        assert_int_equal(p.status, 400);
        assert_non_null(p.err_message);
        if (cases[i].param) assert_string_equal(p.err_param, cases[i].param);
        buf b;
        buf_init(&b);
        assert_int_equal(mock_render_fault_error(&p, &b, NULL), 400);
        cJSON *j = cJSON_Parse(b.data);
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "type")->valuestring,
                            "invalid_request_error");
        cJSON_Delete(j);
        buf_free(&b);
    }
    mock_plan p;
    mock_plan_make(&p, &A, NULL, 0, NULL);
    assert_int_equal(p.status, 400);
}

static void test_malformed_and_escaping(void **st)
{
    (void)st;
    mock_plan p;
    plan_of(&p, "{\"model\":\"m\\\"q\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL);
    buf b;
    buf_init(&b);
    mock_render_malformed(&p, &b);
    cJSON *j = cJSON_Parse(b.data);
    assert_null(j);
    b.len = 0;
    mock_render_completion(&p, &b);   /* model with a quote stays valid JSON */
    j = cJSON_Parse(b.data);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "m\"q");
    cJSON_Delete(j);
    b.len = 0;
    json_escape_string(&b, "a\n\x01\"\\", 5);
    assert_string_equal(b.data, "\"a\\n\\u0001\\\"\\\\\"");
    buf_free(&b);
}

static void test_stats(void **st)
{
    (void)st;
    mock_stats s;
    mock_stats_init(&s);
    mock_plan p;
    char body[160];
    for (int i = 0; i < 70; i++) {
        snprintf(body, sizeof(body), "{\"model\":\"model-%d\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", i);
        plan_of(&p, body, NULL);
        mock_stats_record(&s, &p);
    }
    plan_of(&p, "{\"model\":\"model-1\",\"messages\":[{\"role\":\"user\",\"content\":\"[[fault:hang]]\"}]}", NULL);
    mock_stats_record(&s, &p);
    buf b;
    buf_init(&b);
    mock_stats_render(&s, &b);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "requests")->valueint, 71);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "faults"), "hang")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "models"), "model-1")->valueint, 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "models")), MOCK_STATS_MODELS);
    assert_int_equal(cJSON_GetObjectItem(j, "other_models")->valueint, 70 - MOCK_STATS_MODELS);
    cJSON_Delete(j);
    buf_free(&b);
    mock_stats_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_reply_and_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_markers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_call_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_n_choices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_loop_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_and_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
