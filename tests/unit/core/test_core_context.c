/* test_core_context.c — unit tests of src/core/context.c: the token
 * estimate and the bounded-context policy of step.h (system prompt first,
 * newest kept, tool-call groups never split, current turn always kept, one
 * note for what was dropped, never a leading tool message). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/origin.h"
#include "core/step.h"

static cJSON *parse(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    if (!j)
        fail_msg("bad test JSON: %s", json);
    return j;
}

static cJSON *msg(const char *role, const char *content)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    return m;
}

static const char *role_at(const cJSON *arr, int i)
{
    return cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i), "role")->valuestring;
}

static const char *content_at(const cJSON *arr, int i)
{
    const cJSON *c = cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i), "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

/* A string of n copies of 'x'. */
static char *filler(size_t n)
{
    char *s = malloc(n + 1);
    memset(s, 'x', n);
    s[n] = '\0';
    return s;
}

static int64_t sum_tokens(const cJSON *arr)
{
    int64_t t = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, arr)
        t += step_estimate_tokens(m);
    return t;
}

static void test_estimate(void **unused)
{
    (void)unused;
    cJSON *m = msg("user", "abcdefgh"); /* 8 bytes: 2 + 4 */
    assert_int_equal(step_estimate_tokens(m), 6);
    cJSON_Delete(m);
    m = msg("user", "abcdefghi"); /* 9 bytes round up: 3 + 4 */
    assert_int_equal(step_estimate_tokens(m), 7);
    cJSON_Delete(m);
    /* tool call id + name + arguments all count: 4 + 4 + 8 = 16 bytes */
    m = parse("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c_01\","
              "\"type\":\"function\",\"function\":{\"name\":\"look\",\"arguments\":\"{\\\"a\\\":12}\"}}]}");
    assert_int_equal(step_estimate_tokens(m), 4 + 4);
    cJSON_Delete(m);
    /* content parts: text parts only */
    m = parse("{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"abcd\"},"
              "{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/y.png\"}}]}");
    assert_int_equal(step_estimate_tokens(m), 1 + 4);
    cJSON_Delete(m);
    /* a tool result's call id and name count with its content: 12 bytes */
    m = parse("{\"role\":\"tool\",\"tool_call_id\":\"c_01\",\"name\":\"look\",\"content\":\"abcd\"}");
    assert_int_equal(step_estimate_tokens(m), 3 + 4);
    cJSON_Delete(m);
    /* a repeated member counts once, its first, as a lookup finds it */
    m = parse("{\"role\":\"user\",\"content\":\"abcd\",\"content\":\"abcdefghijkl\","
              "\"name\":\"ab\",\"name\":\"abcdefgh\"}");
    assert_int_equal(step_estimate_tokens(m), 2 + 4);
    cJSON_Delete(m);
    assert_int_equal(step_estimate_tokens(NULL), 4);
}

static void test_fits_nothing_dropped(void **unused)
{
    (void)unused;
    cJSON *in = cJSON_CreateArray();
    cJSON_AddItemToArray(in, msg("user", "hello"));
    cJSON_AddItemToArray(in, msg("assistant", "hi there"));
    cJSON_AddItemToArray(in, msg("user", "what is 2+2?"));
    size_t dropped = 99;
    int64_t tokens = -1;
    cJSON *out = step_context_select("You are terse.", in, 1000, &dropped, &tokens);
    assert_non_null(out);
    assert_int_equal(cJSON_GetArraySize(out), 4);
    assert_int_equal(dropped, 0);
    assert_string_equal(role_at(out, 0), "system");
    assert_string_equal(content_at(out, 0), "You are terse.");
    assert_string_equal(content_at(out, 1), "hello");
    assert_string_equal(content_at(out, 3), "what is 2+2?");
    assert_int_equal(tokens, sum_tokens(out));
    /* A deep copy: the input is untouched and separately owned. */
    assert_ptr_not_equal(cJSON_GetArrayItem(out, 1), cJSON_GetArrayItem(in, 0));
    assert_int_equal(cJSON_GetArraySize(in), 3);
    cJSON_Delete(out);
    cJSON_Delete(in);
}

static void test_over_budget_drops_middle_with_note(void **unused)
{
    (void)unused;
    char *big = filler(400); /* 104 tokens a message */
    cJSON *in = cJSON_CreateArray();
    for (int i = 0; i < 10; i++) {
        cJSON_AddItemToArray(in, msg("user", big));
        cJSON_AddItemToArray(in, msg("assistant", big));
    }
    cJSON_AddItemToArray(in, msg("user", "the question"));
    size_t dropped = 0;
    int64_t tokens = 0;
    const int64_t budget = 500;
    cJSON *out = step_context_select("sys", in, budget, &dropped, &tokens);
    assert_non_null(out);
    int n = cJSON_GetArraySize(out);
    assert_true(dropped > 0);
    assert_int_equal((size_t)n, 2 + 21 - dropped);
    assert_string_equal(content_at(out, 0), "sys");
    char want[96];
    snprintf(want, sizeof(want), "[%zu earlier messages omitted to fit the context]", dropped);
    assert_string_equal(role_at(out, 1), "system");
    assert_string_equal(content_at(out, 1), want);
    assert_string_equal(content_at(out, n - 1), "the question");
    assert_true(tokens <= budget);
    assert_int_equal(tokens, sum_tokens(out));
    /* Greedy: one more message would not have fit. */
    assert_true(tokens + 104 > budget);
    cJSON_Delete(out);
    cJSON_Delete(in);
    free(big);
}

/* An assistant message with tool_calls and its results: in or out together. */
static cJSON *tool_conversation(void)
{
    return parse(
        "["
        "{\"role\":\"user\",\"content\":\"old question\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "  {\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"search\",\"arguments\":\"{}\"}},"
        "  {\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"fetch\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"result one, rather long text here\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"result two, also rather long text\"},"
        "{\"role\":\"assistant\",\"content\":\"old answer\"},"
        "{\"role\":\"user\",\"content\":\"new question\"},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":["
        "  {\"id\":\"c3\",\"type\":\"function\",\"function\":{\"name\":\"search\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c3\",\"content\":\"pending result\"}"
        "]");
}

static int has_call_id(const cJSON *arr, const char *id)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, arr) {
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "tool_calls"))
            if (strcmp(cJSON_GetObjectItem(c, "id")->valuestring, id) == 0)
                return 1;
    }
    return 0;
}

static void test_tool_groups_never_split(void **unused)
{
    (void)unused;
    cJSON *in = tool_conversation();
    int saw_partial = 0;
    /* Every budget from nothing to everything: the invariants hold at each. */
    for (int64_t budget = 0; budget <= 200; budget++) {
        size_t dropped = 0;
        int64_t tokens = 0;
        cJSON *out = step_context_select("sys", in, budget, &dropped, &tokens);
        assert_non_null(out);
        int n = cJSON_GetArraySize(out);
        int first_conv = dropped > 0 ? 2 : 1;
        assert_string_equal(role_at(out, 0), "system");
        assert_string_not_equal(role_at(out, first_conv), "tool");
        const cJSON *m;
        cJSON_ArrayForEach(m, out) {
            const cJSON *id = cJSON_GetObjectItem(m, "tool_call_id");
            if (id)
                assert_true(has_call_id(out, id->valuestring));
        }
        /* The current turn (3 messages) is always there. */
        assert_string_equal(content_at(out, n - 3), "new question");
        assert_int_equal((size_t)n, (dropped > 0 ? 2 : 1) + 8 - dropped);
        /* The old group is either whole or absent. */
        int c1 = has_call_id(out, "c1"), r1 = 0, r2 = 0;
        cJSON_ArrayForEach(m, out) {
            const cJSON *id = cJSON_GetObjectItem(m, "tool_call_id");
            if (id && strcmp(id->valuestring, "c1") == 0) r1 = 1;
            if (id && strcmp(id->valuestring, "c2") == 0) r2 = 1;
        }
        assert_int_equal(c1, r1);
        assert_int_equal(c1, r2);
        if (dropped == 4)
            saw_partial = 1; /* "old answer" kept, the group before it not */
        cJSON_Delete(out);
    }
    assert_true(saw_partial);
    cJSON_Delete(in);
}

static void test_current_turn_kept_over_budget(void **unused)
{
    (void)unused;
    char *big = filler(4000);
    cJSON *in = cJSON_CreateArray();
    cJSON_AddItemToArray(in, msg("user", "earlier"));
    cJSON_AddItemToArray(in, msg("assistant", "earlier answer"));
    cJSON_AddItemToArray(in, msg("user", big));
    size_t dropped = 0;
    int64_t tokens = 0;
    cJSON *out = step_context_select("sys", in, 50, &dropped, &tokens);
    assert_int_equal(dropped, 2);
    assert_int_equal(cJSON_GetArraySize(out), 3);
    assert_string_equal(content_at(out, 2), big);
    assert_true(tokens > 50); /* over budget, reported honestly */
    assert_int_equal(tokens, sum_tokens(out));
    cJSON_Delete(out);
    cJSON_Delete(in);
    free(big);
}

static void test_system_prompt_first(void **unused)
{
    (void)unused;
    cJSON *in = cJSON_CreateArray();
    cJSON_AddItemToArray(in, msg("user", "a"));
    cJSON_AddItemToArray(in, msg("assistant", "b"));
    cJSON_AddItemToArray(in, msg("user", "c"));
    size_t dropped = 0;
    int64_t tokens = 0;
    /* Budget 0: the prompt and the current turn only. */
    cJSON *out = step_context_select("be kind", in, 0, &dropped, &tokens);
    assert_int_equal(cJSON_GetArraySize(out), 3);
    assert_string_equal(content_at(out, 0), "be kind");
    assert_string_equal(content_at(out, 1), "[2 earlier messages omitted to fit the context]");
    assert_string_equal(content_at(out, 2), "c");
    cJSON_Delete(out);
    /* No prompt: no empty system message; the note comes first. */
    out = step_context_select(NULL, in, 0, &dropped, &tokens);
    assert_int_equal(cJSON_GetArraySize(out), 2);
    assert_string_equal(role_at(out, 0), "system");
    assert_string_equal(content_at(out, 0), "[2 earlier messages omitted to fit the context]");
    cJSON_Delete(out);
    out = step_context_select("", in, 1000, &dropped, &tokens);
    assert_int_equal(cJSON_GetArraySize(out), 3);
    assert_string_equal(role_at(out, 0), "user");
    cJSON_Delete(out);
    cJSON_Delete(in);
}

static void test_no_leading_tool_message(void **unused)
{
    (void)unused;
    /* A history that (wrongly) begins with orphan tool results. */
    cJSON *in = parse("["
                      "{\"role\":\"tool\",\"tool_call_id\":\"x1\",\"content\":\"orphan\"},"
                      "{\"role\":\"tool\",\"tool_call_id\":\"x2\",\"content\":\"orphan\"},"
                      "{\"role\":\"user\",\"content\":\"q1\"},"
                      "{\"role\":\"assistant\",\"content\":\"a1\"},"
                      "{\"role\":\"user\",\"content\":\"q2\"}]");
    size_t dropped = 0;
    int64_t tokens = 0;
    cJSON *out = step_context_select("sys", in, 100000, &dropped, &tokens);
    assert_int_equal(dropped, 2);
    assert_int_equal(cJSON_GetArraySize(out), 5);
    assert_string_equal(role_at(out, 1), "system"); /* the note */
    assert_string_equal(role_at(out, 2), "user");
    cJSON_Delete(out);
    cJSON_Delete(in);
    /* An orphan result after a plain message rides with that message. */
    in = parse("["
               "{\"role\":\"user\",\"content\":\"q0\"},"
               "{\"role\":\"assistant\",\"content\":\"a0\"},"
               "{\"role\":\"tool\",\"tool_call_id\":\"x\",\"content\":\"stray\"},"
               "{\"role\":\"user\",\"content\":\"q1\"}]");
    for (int64_t b = 0; b < 60; b++) {
        out = step_context_select("sys", in, b, &dropped, &tokens);
        int first_conv = dropped > 0 ? 2 : 1;
        assert_string_not_equal(role_at(out, first_conv), "tool");
        cJSON_Delete(out);
    }
    cJSON_Delete(in);
}

static void test_select_ex_counts_omitted(void **unused)
{
    (void)unused;
    char *big = filler(400);
    cJSON *in = cJSON_CreateArray();
    cJSON_AddItemToArray(in, msg("user", big));
    cJSON_AddItemToArray(in, msg("assistant", big));
    cJSON_AddItemToArray(in, msg("user", "now"));
    size_t dropped = 0, first = 99;
    int64_t tokens = 0;
    cJSON *out = step_context_select_ex("sys", in, 7, 60, &dropped, &tokens, &first, NULL);
    assert_int_equal(first, 2);
    assert_int_equal(dropped, 9);
    assert_string_equal(content_at(out, 1), "[9 earlier messages omitted to fit the context]");
    cJSON_Delete(out);
    /* Everything fits, but earlier ones were already omitted: still a note. */
    out = step_context_select_ex(NULL, in, 3, 100000, &dropped, &tokens, &first, NULL);
    assert_int_equal(first, 0);
    assert_int_equal(dropped, 3);
    assert_string_equal(content_at(out, 0), "[3 earlier messages omitted to fit the context]");
    assert_int_equal(cJSON_GetArraySize(out), 4);
    cJSON_Delete(out);
    /* NULL or non-array messages: just the prompt. */
    out = step_context_select("sys", NULL, 10, &dropped, &tokens);
    assert_int_equal(cJSON_GetArraySize(out), 1);
    assert_int_equal(dropped, 0);
    cJSON_Delete(out);
    cJSON_Delete(in);
    free(big);
}


/* Provenance (core/origin.h): copies keep each message's origin, the
 * messages the policy writes itself say they are brigade's, and the
 * harness's strip leaves no origin in what is sent. */
static void test_origins_kept_and_system_marked(void **state)
{
    (void)state;
    cJSON *msgs = parse("["
        "{\"role\":\"user\",\"content\":\"old question\",\"origin\":{\"kind\":\"user\",\"untrusted\":false}},"
        "{\"role\":\"assistant\",\"content\":\"old answer that is rather long indeed\","
        " \"origin\":{\"kind\":\"model\",\"untrusted\":false}},"
        "{\"role\":\"user\",\"content\":\"fetch it\",\"origin\":{\"kind\":\"user\",\"untrusted\":false}},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "  \"function\":{\"name\":\"fetch\",\"arguments\":\"{}\"}}],\"origin\":{\"kind\":\"model\",\"untrusted\":false}},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"page\","
        " \"origin\":{\"kind\":\"fetched\",\"untrusted\":true,\"url_host\":\"example.org\"}}]");
    size_t dropped = 0;
    int64_t tokens = 0;
    /* a budget that holds the current turn but not the first exchange */
    cJSON *out = step_context_select("be brief", msgs, 40, &dropped, &tokens);
    assert_non_null(out);
    assert_int_equal(dropped, 2);
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, out) {
        const cJSON *o = cJSON_GetObjectItem(m, "origin");
        assert_true(cJSON_IsObject(o));
        if (i < 2) {            /* the system prompt and the note */
            assert_int_equal(origin_kind_of(o), ORIGIN_SYSTEM);
            assert_false(origin_message_untrusted(m));
        }
        i++;
    }
    assert_int_equal(i, 5);
    const cJSON *tool = cJSON_GetArrayItem(out, 4);
    assert_int_equal(origin_message_kind(tool), ORIGIN_FETCHED);
    assert_true(origin_message_untrusted(tool));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(tool, "origin"), "url_host")->valuestring,
                        "example.org");
    /* the origin is not content: it costs no tokens of the estimate */
    cJSON *bare = cJSON_Duplicate(tool, 1);
    cJSON_DeleteItemFromObject(bare, "origin");
    assert_int_equal(step_estimate_tokens(bare), step_estimate_tokens(tool));
    cJSON_Delete(bare);
    /* the harness leaves the origin out when it writes the request
     * (run_model_body, test_runs_exec.c), never removing it here */
    cJSON_Delete(out);
    cJSON_Delete(msgs);
}

/* The kept messages are references to the conversation's (step.h): the
 * request prints the same JSON a copy would, deleting it leaves the
 * conversation whole, and a kept message changed the way step.h says —
 * replaced in the array by a copy, the copy edited — leaves the
 * conversation as it was. */
static void test_references_leave_the_conversation_alone(void **state)
{
    (void)state;
    cJSON *msgs = parse("["
        "{\"role\":\"user\",\"content\":\"what time is it\",\"origin\":{\"kind\":\"user\",\"untrusted\":false}},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "  \"function\":{\"name\":\"clock\",\"arguments\":\"{}\"}}],\"n\":3,\"ok\":true,"
        "  \"origin\":{\"kind\":\"model\",\"untrusted\":false}},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":[{\"type\":\"text\",\"text\":\"12:00\"}],"
        " \"origin\":{\"kind\":\"tool\",\"untrusted\":true}}]");
    char *before = cJSON_PrintUnformatted(msgs);
    cJSON *out = step_context_select(NULL, msgs, 100000, NULL, NULL);
    assert_non_null(out);
    assert_int_equal(cJSON_GetArraySize(out), 3);
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, out) {                        /* one item each, sharing the members */
        assert_true(m->type & cJSON_IsReference);
        assert_ptr_equal(m->child, cJSON_GetArrayItem(msgs, i)->child);
        i++;
    }
    char *as_sent = cJSON_PrintUnformatted(out);
    assert_string_equal(as_sent, before);               /* the same JSON as a copy */
    free(as_sent);
    /* change the first kept message: a copy replaces it, the copy is edited */
    cJSON *first = cJSON_GetArrayItem(out, 0);
    cJSON *edited = step_message_copy(first);
    assert_non_null(edited);
    assert_false(edited->type & cJSON_IsReference);
    assert_true(cJSON_ReplaceItemViaPointer(out, first, edited));
    cJSON_ReplaceItemInObjectCaseSensitive(edited, "content", cJSON_CreateString("[REDACTED]"));
    cJSON_DeleteItemFromObjectCaseSensitive(edited, "origin");
    char *changed = cJSON_PrintUnformatted(out);
    assert_non_null(strstr(changed, "[REDACTED]"));
    free(changed);
    char *after = cJSON_PrintUnformatted(msgs);
    assert_string_equal(after, before);                  /* the conversation is untouched */
    free(after);
    /* a copy of a reference is whole: it outlives the conversation */
    cJSON *copy = step_message_copy(cJSON_GetArrayItem(out, 2));
    cJSON_Delete(out);
    after = cJSON_PrintUnformatted(msgs);
    assert_string_equal(after, before);                  /* deleting the request frees only it */
    free(after);
    cJSON_Delete(msgs);
    char *c = cJSON_PrintUnformatted(copy);
    assert_string_equal(c, "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":[{\"type\":\"text\","
                           "\"text\":\"12:00\"}],\"origin\":{\"kind\":\"tool\",\"untrusted\":true}}");
    free(c);
    cJSON_Delete(copy);
    free(before);
}

/* The walk prices the note it would add before choosing to keep a group:
 * at the budget's edge, a group is kept exactly when it and the note for
 * what is left out fit — for counts of every number of digits, the note's
 * price being what the note in the request costs. */
static void test_note_priced_at_the_edge(void **state)
{
    (void)state;
    char big[401];
    memset(big, 'a', 400);
    big[400] = '\0';
    cJSON *in = cJSON_CreateArray();
    cJSON_AddItemToArray(in, msg("user", big));        /* 104 tokens: never kept here */
    cJSON_AddItemToArray(in, msg("assistant", "b"));   /* 5 tokens each */
    cJSON_AddItemToArray(in, msg("user", "q"));
    const size_t omitted[] = {0, 8, 9, 98, 99, 998, 999, 99999};
    for (size_t i = 0; i < sizeof omitted / sizeof omitted[0]; i++) {
        size_t n = omitted[i], dropped = 0;
        /* keeping the assistant's message leaves n + 1 out: price that note */
        char text[96];
        snprintf(text, sizeof text, "[%zu earlier messages omitted to fit the context]", n + 1);
        cJSON *note = msg("system", text);
        int64_t note_tokens = step_estimate_tokens(note);
        cJSON_Delete(note);
        int64_t edge = 5 + 5 + note_tokens;
        cJSON *out = step_context_select_ex(NULL, in, n, edge, &dropped, NULL, NULL, NULL);
        assert_int_equal(dropped, n + 1);
        assert_string_equal(content_at(out, 0), text);
        cJSON_Delete(out);
        out = step_context_select_ex(NULL, in, n, edge - 1, &dropped, NULL, NULL, NULL);
        assert_int_equal(dropped, n + 2);
        cJSON_Delete(out);
    }
    cJSON_Delete(in);
}

/* With a token cache over a conversation that grows and is trimmed from
 * the front (as the tool-calling core does), every selection is the one
 * made without it: the same request, note, count and tokens; and the
 * cache prices each message once. A cache that holds more than the
 * conversation (not this one) is priced again, not trusted. */
static void test_token_cache_same_selection(void **state)
{
    (void)state;
    cJSON *conv = cJSON_CreateArray();
    step_token_cache cache = {0};
    size_t omitted = 0;
    uint64_t rng = 12345;
    for (int round = 0; round < 60; round++) {
        /* a turn: the user, sometimes a tool call and its result, an answer */
        char text[64];
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int len = 1 + (int)((rng >> 33) % 60);
        snprintf(text, sizeof text, "%0*d", len, round);
        cJSON_AddItemToArray(conv, msg(round % 3 ? "assistant" : "user", text));
        if (round % 4 == 1) {
            cJSON *call = msg("assistant", NULL);
            cJSON_AddItemToObject(call, "tool_calls",
                cJSON_Parse("[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]"));
            cJSON_AddItemToArray(conv, call);
            cJSON *res = msg("tool", text);
            cJSON_AddStringToObject(res, "tool_call_id", "c");
            cJSON_AddItemToArray(conv, res);
        }
        int64_t budget = 40 + (int64_t)((rng >> 40) % 200);
        size_t d1 = 0, d2 = 0, f1 = 0, f2 = 0;
        int64_t t1 = 0, t2 = 0;
        cJSON *a = step_context_select_ex("sys", conv, omitted, budget, &d1, &t1, &f1, NULL);
        cJSON *b = step_context_select_ex("sys", conv, omitted, budget, &d2, &t2, &f2, &cache);
        char *pa = cJSON_PrintUnformatted(a), *pb = cJSON_PrintUnformatted(b);
        assert_string_equal(pa, pb);
        assert_int_equal(d1, d2);
        assert_int_equal(t1, t2);
        assert_int_equal(f1, f2);
        assert_int_equal(cache.n, (size_t)cJSON_GetArraySize(conv));
        free(pa);
        free(pb);
        cJSON_Delete(a);
        cJSON_Delete(b);
        /* trim what was left out, as the core does */
        for (size_t i = 0; i < f1; i++) cJSON_DeleteItemFromArray(conv, 0);
        step_token_cache_drop(&cache, f1);
        omitted += f1;
        for (size_t i = 0; i < cache.n; i++)
            assert_int_equal(cache.v[i], step_estimate_tokens(cJSON_GetArrayItem(conv, (int)i)));
    }
    assert_true(omitted > 20);                 /* the trimming was exercised */
    /* more estimates than messages: not this conversation, priced again */
    cJSON *small = cJSON_CreateArray();
    cJSON_AddItemToArray(small, msg("user", "hello there"));
    cJSON *out = step_context_select_ex(NULL, small, 0, 1000, NULL, NULL, NULL, &cache);
    assert_int_equal(cache.n, 1);
    assert_int_equal(cache.v[0], step_estimate_tokens(small->child));
    cJSON_Delete(out);
    cJSON_Delete(small);
    step_token_cache_free(&cache);
    cJSON_Delete(conv);
}

static void test_origin_rules(void **state)
{
    (void)state;
    /* rows older than provenance: inferred from the role */
    cJSON *o = origin_inferred("tool");
    assert_int_equal(origin_kind_of(o), ORIGIN_TOOL);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "untrusted")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "inferred")));
    cJSON_Delete(o);
    o = origin_inferred("user");
    assert_int_equal(origin_kind_of(o), ORIGIN_USER);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "untrusted")));
    cJSON_Delete(o);
    o = origin_inferred("assistant");
    assert_int_equal(origin_kind_of(o), ORIGIN_MODEL);
    cJSON_Delete(o);
    o = origin_inferred(NULL);
    assert_int_equal(origin_kind_of(o), ORIGIN_SYSTEM);
    cJSON_Delete(o);

    /* without an origin, a tool result is untrusted and a user's message not */
    cJSON *m = msg("tool", "x");
    assert_true(origin_message_untrusted(m));
    assert_int_equal(origin_message_kind(m), ORIGIN_TOOL);
    cJSON_Delete(m);
    m = msg("user", "x");
    assert_false(origin_message_untrusted(m));
    /* only an explicit false trusts: a missing or odd flag does not */
    assert_true(origin_set(m, parse("{\"kind\":\"memory\"}")));
    assert_true(origin_message_untrusted(m));
    assert_true(origin_set(m, parse("{\"kind\":\"memory\",\"untrusted\":0}")));
    assert_true(origin_message_untrusted(m));
    assert_true(origin_set(m, parse("{\"kind\":\"memory\",\"untrusted\":false}")));
    assert_false(origin_message_untrusted(m));
    assert_int_equal(origin_message_kind(m), ORIGIN_MEMORY);
    /* a kind brigade does not know is unknown, never a trusted one */
    assert_true(origin_set(m, parse("{\"kind\":\"System \"}")));
    assert_int_equal(origin_message_kind(m), ORIGIN_UNKNOWN);
    assert_true(origin_set(m, parse("{\"kind\":7}")));
    assert_int_equal(origin_message_kind(m), ORIGIN_UNKNOWN);
    assert_false(origin_set(NULL, origin_new(ORIGIN_USER, false)));   /* freed, no leak */
    cJSON_Delete(m);

    cJSON *kinds = origin_kinds_array((1u << ORIGIN_FETCHED) | (1u << ORIGIN_MEMORY));
    char *text = cJSON_PrintUnformatted(kinds);
    assert_string_equal(text, "[\"fetched\",\"memory\"]");
    free(text);
    cJSON_Delete(kinds);
    assert_string_equal(origin_kind_name((origin_kind)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimate),
        cmocka_unit_test(test_fits_nothing_dropped),
        cmocka_unit_test(test_over_budget_drops_middle_with_note),
        cmocka_unit_test(test_note_priced_at_the_edge),
        cmocka_unit_test(test_tool_groups_never_split),
        cmocka_unit_test(test_current_turn_kept_over_budget),
        cmocka_unit_test(test_system_prompt_first),
        cmocka_unit_test(test_no_leading_tool_message),
        cmocka_unit_test(test_select_ex_counts_omitted),
        cmocka_unit_test(test_origins_kept_and_system_marked),
        cmocka_unit_test(test_references_leave_the_conversation_alone),
        cmocka_unit_test(test_origin_rules),
        cmocka_unit_test(test_token_cache_same_selection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
