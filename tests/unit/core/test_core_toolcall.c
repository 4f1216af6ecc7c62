/* test_core_toolcall.c — unit tests of src/core/toolcall_core.c: the
 * built-in tool-calling core driven through scripted runs, event by event,
 * as the harness would drive it — the happy path, both limits, malformed
 * model replies and harness events, and the memory a run with a long
 * history keeps (counted through cJSON's allocation hooks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/step.h"

/* --- counting allocator: cJSON's hooks, so the test sees what runs keep --- */

static size_t live_bytes;

typedef union {
    size_t n;
    max_align_t align;
} alloc_hdr;

static void *count_malloc(size_t n)
{
    alloc_hdr *h = malloc(sizeof(*h) + n);
    if (!h)
        return NULL;
    h->n = n;
    live_bytes += n;
    return h + 1;
}

static void count_free(void *p)
{
    if (!p)
        return;
    alloc_hdr *h = (alloc_hdr *)p - 1;
    live_bytes -= h->n;
    free(h);
}

static int setup_hooks(void **unused)
{
    (void)unused;
    cJSON_Hooks hooks = {count_malloc, count_free};
    cJSON_InitHooks(&hooks);
    return 0;
}

/* --- helpers --- */

static cJSON *parse(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    if (!j)
        fail_msg("bad test JSON: %s", json);
    return j;
}

static const char *TOOLS_JSON =
    "[{\"type\":\"function\",\"function\":{\"name\":\"weather\",\"parameters\":{\"type\":\"object\"}}},"
    " {\"type\":\"function\",\"function\":{\"name\":\"time\",\"parameters\":{\"type\":\"object\"}}}]";

static cJSON *agent_tools;

static step_agent make_agent(void)
{
    step_agent a = {
        .name = "helper",
        .model = "gpt-test",
        .system_prompt = "You are a helpful agent.",
        .tools = agent_tools,
        .max_steps = 8,
        .max_tool_calls = 8,
        .max_output_tokens = 256,
        .context_tokens = 4000,
    };
    return a;
}

static step_effect start(const step_core *core, void *st, cJSON *history, const char *text)
{
    step_event ev = {.kind = STEP_EVENT_START, .history = history};
    ev.message = cJSON_CreateObject();
    cJSON_AddStringToObject(ev.message, "role", "user");
    cJSON_AddStringToObject(ev.message, "content", text);
    step_effect e = core->step(st, &ev);
    /* The core took everything. */
    assert_null(ev.history);
    assert_null(ev.message);
    return e;
}

static step_effect reply(void *st, const char *json)
{
    step_event ev = {.kind = STEP_EVENT_MODEL_REPLY, .message = parse(json), .output_tokens = 10};
    step_effect e = step_core_toolcall.step(st, &ev);
    assert_null(ev.message);
    return e;
}

static step_effect results(void *st, const char *json)
{
    step_event ev = {.kind = STEP_EVENT_TOOL_RESULTS, .results = parse(json)};
    step_effect e = step_core_toolcall.step(st, &ev);
    assert_null(ev.results);
    return e;
}

static const cJSON *req_messages(const step_effect *e)
{
    assert_int_equal(e->kind, STEP_EFFECT_CALL_MODEL);
    const cJSON *m = cJSON_GetObjectItem(e->request, "messages");
    assert_true(cJSON_IsArray(m));
    return m;
}

static const char *str_at(const cJSON *arr, int i, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetArrayItem(arr, i), key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *TWO_CALLS =
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
    "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},"
    "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"time\",\"arguments\":\"{}\"}}]}";

static const char *TWO_RESULTS =
    "[{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"rain, 4C\"},"
    " {\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"09:30\"}]";

/* --- tests --- */

static void test_full_run(void **unused)
{
    (void)unused;
    step_agent a = make_agent();
    void *st = step_core_toolcall.create(&a);
    assert_non_null(st);
    assert_string_equal(step_core_toolcall.name, "toolcall");

    step_effect e = start(&step_core_toolcall, st, NULL, "Weather and time in Oslo?");
    const cJSON *m = req_messages(&e);
    assert_string_equal(cJSON_GetObjectItem(e.request, "model")->valuestring, "gpt-test");
    assert_int_equal(cJSON_GetObjectItem(e.request, "max_tokens")->valueint, 256);
    assert_true(cJSON_Compare(cJSON_GetObjectItem(e.request, "tools"), agent_tools, 1));
    assert_int_equal(cJSON_GetArraySize(m), 2);
    assert_string_equal(str_at(m, 0, "role"), "system");
    assert_string_equal(str_at(m, 0, "content"), "You are a helpful agent.");
    assert_string_equal(str_at(m, 1, "content"), "Weather and time in Oslo?");
    assert_int_equal(e.context_dropped, 0);
    assert_true(e.context_tokens > 0);
    assert_int_equal(e.context.lead, 1);        /* the system prompt, then message 0 */
    assert_int_equal(e.context.first, 0);
    assert_int_equal(e.context.count, 1);
    step_effect_clear(&e);
    assert_null(e.request);

    e = reply(st, TWO_CALLS);
    assert_int_equal(e.kind, STEP_EFFECT_CALL_TOOLS);
    assert_int_equal(cJSON_GetArraySize(e.tool_calls), 2);
    assert_string_equal(str_at(e.tool_calls, 0, "id"), "call_1");
    assert_string_equal(str_at(e.tool_calls, 1, "id"), "call_2");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(e.tool_calls, 0), "function"),
                            "name")->valuestring, "weather");
    step_effect_clear(&e);

    e = results(st, TWO_RESULTS);
    m = req_messages(&e);
    assert_int_equal(cJSON_GetArraySize(m), 5);
    assert_string_equal(str_at(m, 2, "role"), "assistant");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 2), "tool_calls")), 2);
    assert_string_equal(str_at(m, 3, "tool_call_id"), "call_1");
    assert_string_equal(str_at(m, 4, "content"), "09:30");
    assert_int_equal(e.context.lead, 1);        /* messages 0–3: question, calls, results */
    assert_int_equal(e.context.first, 0);
    assert_int_equal(e.context.count, 4);
    assert_non_null(cJSON_GetObjectItem(e.request, "tools"));
    assert_int_equal(cJSON_GetObjectItem(e.request, "max_tokens")->valueint, 256);
    step_effect_clear(&e);

    e = reply(st, "{\"role\":\"assistant\",\"content\":\"Rainy, 4C; it is 09:30.\"}");
    assert_int_equal(e.kind, STEP_EFFECT_FINISH);
    assert_string_equal(cJSON_GetObjectItem(e.message, "content")->valuestring,
                        "Rainy, 4C; it is 09:30.");
    assert_string_equal(cJSON_GetObjectItem(e.message, "role")->valuestring, "assistant");
    step_effect_clear(&e);

    /* The run is over: any further event is refused, not acted on. */
    e = reply(st, "{\"role\":\"assistant\",\"content\":\"again\"}");
    assert_int_equal(e.kind, STEP_EFFECT_FAIL);
    assert_string_equal(e.error_code, "bad_event");
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
}

static void test_history_and_no_tools(void **unused)
{
    (void)unused;
    step_agent a = make_agent();
    a.tools = NULL;
    a.system_prompt = NULL;
    a.max_output_tokens = 0;
    void *st = step_core_toolcall.create(&a);
    cJSON *hist = parse("[{\"role\":\"user\",\"content\":\"hi\"},42,"
                        "{\"role\":\"assistant\",\"content\":\"hello\"}]");
    step_effect e = start(&step_core_toolcall, st, hist, "again");
    const cJSON *m = req_messages(&e);
    assert_null(cJSON_GetObjectItem(e.request, "tools"));
    assert_null(cJSON_GetObjectItem(e.request, "max_tokens"));
    assert_int_equal(cJSON_GetArraySize(m), 3); /* the non-object 42 is gone */
    assert_string_equal(str_at(m, 0, "content"), "hi");
    assert_string_equal(str_at(m, 2, "content"), "again");
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
}

static void test_content_and_calls_is_tool_step(void **unused)
{
    (void)unused;
    step_agent a = make_agent();
    void *st = step_core_toolcall.create(&a);
    step_effect e = start(&step_core_toolcall, st, NULL, "q");
    step_effect_clear(&e);
    e = reply(st, "{\"role\":\"assistant\",\"content\":\"Let me check.\",\"tool_calls\":["
                  "{\"id\":\"c\",\"function\":{\"name\":\"time\"}}]}");
    assert_int_equal(e.kind, STEP_EFFECT_CALL_TOOLS);
    /* Normalized: type and arguments filled in. */
    const cJSON *call = cJSON_GetArrayItem(e.tool_calls, 0);
    assert_string_equal(cJSON_GetObjectItem(call, "type")->valuestring, "function");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(call, "function"), "arguments")->valuestring, "{}");
    step_effect_clear(&e);
    e = results(st, "[{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"noon\"}]");
    const cJSON *m = req_messages(&e);
    assert_string_equal(str_at(m, 2, "content"), "Let me check.");
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
}

static void test_empty_reply_finishes_empty(void **unused)
{
    (void)unused;
    step_agent a = make_agent();
    const char *replies[] = {"{}", "{\"role\":\"assistant\",\"content\":null}",
                             "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[]}"};
    for (size_t i = 0; i < 3; i++) {
        void *st = step_core_toolcall.create(&a);
        step_effect e = start(&step_core_toolcall, st, NULL, "q");
        step_effect_clear(&e);
        e = reply(st, replies[i]);
        assert_int_equal(e.kind, STEP_EFFECT_FINISH);
        assert_string_equal(cJSON_GetObjectItem(e.message, "content")->valuestring, "");
        assert_string_equal(cJSON_GetObjectItem(e.message, "role")->valuestring, "assistant");
        assert_null(cJSON_GetObjectItem(e.message, "tool_calls"));
        step_effect_clear(&e);
        step_core_toolcall.destroy(st);
    }
}

static void test_max_steps(void **unused)
{
    (void)unused;
    step_agent a = make_agent();
    a.max_steps = 2;
    void *st = step_core_toolcall.create(&a);
    step_effect e = start(&step_core_toolcall, st, NULL, "loop forever");
    assert_int_equal(e.kind, STEP_EFFECT_CALL_MODEL); /* step 1 */
    step_effect_clear(&e);
    e = reply(st, TWO_CALLS);
    step_effect_clear(&e);
    e = results(st, TWO_RESULTS);
    assert_int_equal(e.kind, STEP_EFFECT_CALL_MODEL); /* step 2 */
    step_effect_clear(&e);
    e = reply(st, "{\"role\":\"assistant\",\"tool_calls\":["
                  "{\"id\":\"call_3\",\"type\":\"function\",\"function\":{\"name\":\"time\",\"arguments\":\"{}\"}}]}");
    assert_int_equal(e.kind, STEP_EFFECT_CALL_TOOLS);
    step_effect_clear(&e);
    e = results(st, "[{\"role\":\"tool\",\"tool_call_id\":\"call_3\",\"content\":\"x\"}]");
    assert_int_equal(e.kind, STEP_EFFECT_FAIL);
    assert_string_equal(e.error_code, "max_steps");
    assert_non_null(strstr(e.error_message, "2 model calls"));
    assert_null(e.request);
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);

    /* Zero means zero: the first call is refused. */
    a.max_steps = 0;
    st = step_core_toolcall.create(&a);
    e = start(&step_core_toolcall, st, NULL, "q");
    assert_int_equal(e.kind, STEP_EFFECT_FAIL);
    assert_string_equal(e.error_code, "max_steps");
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
}

static void test_max_tool_calls(void **unused)
{
    (void)unused;
    step_agent a = make_agent();
    a.max_tool_calls = 3;
    void *st = step_core_toolcall.create(&a);
    step_effect e = start(&step_core_toolcall, st, NULL, "q");
    step_effect_clear(&e);
    e = reply(st, TWO_CALLS); /* 2 of 3 */
    assert_int_equal(e.kind, STEP_EFFECT_CALL_TOOLS);
    step_effect_clear(&e);
    e = results(st, TWO_RESULTS);
    step_effect_clear(&e);
    e = reply(st, TWO_CALLS); /* 2 more, 1 left: refused whole */
    assert_int_equal(e.kind, STEP_EFFECT_FAIL);
    assert_string_equal(e.error_code, "max_tool_calls");
    assert_non_null(strstr(e.error_message, "asked for 2 tool calls but only 1"));
    assert_null(e.tool_calls);
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
}

static void test_malformed_tool_calls(void **unused)
{
    (void)unused;
    const char *bad[] = {
        /* missing id */
        "{\"role\":\"assistant\",\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":\"time\",\"arguments\":\"{}\"}}]}",
        /* empty id */
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"\",\"function\":{\"name\":\"time\"}}]}",
        /* missing name */
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":{\"arguments\":\"{}\"}}]}",
        /* function not an object */
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":\"time\"}]}",
        /* call not an object */
        "{\"role\":\"assistant\",\"tool_calls\":[\"time\"]}",
        /* tool_calls not an array */
        "{\"role\":\"assistant\",\"tool_calls\":{\"id\":\"a\"}}",
        /* arguments not a string */
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"t\",\"arguments\":{}}}]}",
        /* duplicate ids */
        ("{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"t\"}},"
         "{\"id\":\"a\",\"function\":{\"name\":\"u\"}}]}"),
        /* wrong type */
        "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"type\":\"shell\",\"function\":{\"name\":\"t\"}}]}",
        /* not an assistant message */
        "{\"role\":\"user\",\"content\":\"hi\"}",
        /* not an object at all */
        "[1,2]",
        /* content of a wrong type */
        "{\"role\":\"assistant\",\"content\":7}",
    };
    step_agent a = make_agent();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        void *st = step_core_toolcall.create(&a);
        step_effect e = start(&step_core_toolcall, st, NULL, "q");
        step_effect_clear(&e);
        e = reply(st, bad[i]);
        if (e.kind != STEP_EFFECT_FAIL || strcmp(e.error_code, "model_error") != 0)
            fail_msg("reply %zu (%s) not refused as model_error", i, bad[i]);
        assert_true(strlen(e.error_message) > 0);
        step_effect_clear(&e);
        step_core_toolcall.destroy(st);
    }
    /* An overlong id (network input is bounded). */
    char big[1200];
    char id[400];
    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    snprintf(big, sizeof(big),
             "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"%s\",\"function\":{\"name\":\"t\"}}]}", id);
    void *st = step_core_toolcall.create(&a);
    step_effect e = start(&step_core_toolcall, st, NULL, "q");
    step_effect_clear(&e);
    e = reply(st, big);
    assert_string_equal(e.error_code, "model_error");
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
}

static void test_bad_events(void **unused)
{
    (void)unused;
    step_agent a = make_agent();
    const char *bad_results[] = {
        "[{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"x\"}]",           /* one short */
        "[{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"x\"},"
        " {\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"y\"}]",           /* out of order */
        "[{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"x\"}, 5]",        /* not an object */
        "[{\"role\":\"user\",\"tool_call_id\":\"call_1\",\"content\":\"x\"},"
        " {\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"y\"}]",           /* wrong role */
        "{\"role\":\"tool\"}",                                                         /* not an array */
    };
    for (size_t i = 0; i < sizeof(bad_results) / sizeof(bad_results[0]); i++) {
        void *st = step_core_toolcall.create(&a);
        step_effect e = start(&step_core_toolcall, st, NULL, "q");
        step_effect_clear(&e);
        e = reply(st, TWO_CALLS);
        step_effect_clear(&e);
        e = results(st, bad_results[i]);
        if (e.kind != STEP_EFFECT_FAIL || strcmp(e.error_code, "bad_event") != 0)
            fail_msg("results %zu not refused as bad_event", i);
        step_effect_clear(&e);
        step_core_toolcall.destroy(st);
    }
    /* Events out of order: a reply before START; START without a message. */
    void *st = step_core_toolcall.create(&a);
    step_effect e = reply(st, "{\"role\":\"assistant\",\"content\":\"x\"}");
    assert_string_equal(e.error_code, "bad_event");
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
    st = step_core_toolcall.create(&a);
    step_event ev = {.kind = STEP_EVENT_START, .history = cJSON_CreateArray()};
    e = step_core_toolcall.step(st, &ev);
    assert_string_equal(e.error_code, "bad_event");
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
    assert_null(step_core_toolcall.create(NULL));
}

/* A session with a long history: every request stays within the context
 * budget, and the run keeps about one budget of messages, not the history. */
static void test_long_history_bounded(void **unused)
{
    (void)unused;
    step_agent a = make_agent();
    a.context_tokens = 2000;
    char text[401];
    memset(text, 'w', 400);
    text[400] = '\0';
    size_t base = live_bytes;
    cJSON *hist = cJSON_CreateArray();
    for (int i = 0; i < 1000; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", i % 2 ? "assistant" : "user");
        cJSON_AddStringToObject(m, "content", text);
        cJSON_AddItemToArray(hist, m);
    }
    size_t hist_bytes = live_bytes - base;
    void *st = step_core_toolcall.create(&a);
    step_effect e = start(&step_core_toolcall, st, hist, "latest question");
    const cJSON *m = req_messages(&e);
    assert_true(e.context_dropped > 900);
    assert_true(e.context_tokens <= 2000);
    assert_non_null(strstr(str_at(m, 1, "content"), "earlier messages omitted"));
    assert_string_equal(str_at(m, cJSON_GetArraySize(m) - 1, "content"), "latest question");
    /* the conversation's messages in it, by number: the system prompt and
     * the note lead; the first kept message is number `dropped` (the
     * history's numbers are 0–999, the question's 1000) */
    assert_int_equal(e.context.lead, 2);
    assert_int_equal(e.context.first, e.context_dropped);
    assert_int_equal(e.context.count, (size_t)cJSON_GetArraySize(m) - 2);
    assert_int_equal(e.context.first + e.context.count - 1, 1000);
    assert_string_equal(str_at(m, 2, "content"), text);
    step_effect_clear(&e);
    /* The history cost ~500 KB; the run now keeps only what it may send. */
    size_t kept = live_bytes - base;
    print_message("history %zu bytes, run keeps %zu bytes\n", hist_bytes, kept);
    assert_true(hist_bytes > 400 * 1000);
    /* About one budget of messages: text at ~4 bytes a token plus cJSON's
     * nodes. 12 bytes a budget token is the bound this test holds it to. */
    assert_true(kept < 12 * (size_t)a.context_tokens);

    size_t last_dropped = 0;
    for (int step = 0; step < 3; step++) {
        e = reply(st, TWO_CALLS);
        assert_int_equal(e.kind, STEP_EFFECT_CALL_TOOLS);
        step_effect_clear(&e);
        e = results(st, TWO_RESULTS);
        m = req_messages(&e);
        assert_true(e.context_tokens <= 2000);
        assert_true(e.context_dropped >= last_dropped);
        last_dropped = e.context_dropped;
        char want[96];
        snprintf(want, sizeof(want), "[%zu earlier messages omitted to fit the context]",
                 e.context_dropped);
        assert_string_equal(str_at(m, 1, "content"), want);
        /* The current turn — question, calls and results — is all there. */
        int n = cJSON_GetArraySize(m);
        assert_string_equal(str_at(m, n - 1, "role"), "tool");
        /* numbers go on: each round adds a call and two results */
        assert_int_equal(e.context.lead, 2);
        assert_int_equal(e.context.first, e.context_dropped);
        assert_int_equal(e.context.count, (size_t)n - 2);
        assert_int_equal(e.context.first + e.context.count - 1, 1000 + 3 * (step + 1));
        step_effect_clear(&e);
    }
    print_message("after 3 tool rounds the run keeps %zu bytes\n", live_bytes - base);
    assert_true(live_bytes - base < 12 * (size_t)a.context_tokens);
    e = reply(st, "{\"role\":\"assistant\",\"content\":\"ok\"}");
    assert_int_equal(e.kind, STEP_EFFECT_FINISH);
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
    assert_int_equal(live_bytes, base);
}

static int setup_tools(void **unused)
{
    (void)unused;
    agent_tools = parse(TOOLS_JSON);
    return 0;
}

static int teardown_tools(void **unused)
{
    (void)unused;
    cJSON_Delete(agent_tools);
    agent_tools = NULL;
    return 0;
}

/* A paused run taken over by a new state: the pending calls come back as
 * CALL_TOOLS, the counters go on from where they were, and the results
 * lead to a request holding the whole conversation. */
static void test_resume(void **unused)
{
    (void)unused;
    step_agent a = make_agent();
    void *st = step_core_toolcall.create(&a);
    step_event ev = {.kind = STEP_EVENT_RESUME, .steps = 1, .tool_calls = 2,
                     .history = parse("[{\"role\":\"user\",\"content\":\"Oslo?\"}]"),
                     .message = parse(TWO_CALLS)};
    step_effect e = step_core_toolcall.step(st, &ev);
    assert_null(ev.history);
    assert_null(ev.message);
    assert_int_equal(e.kind, STEP_EFFECT_CALL_TOOLS);
    assert_int_equal(cJSON_GetArraySize(e.tool_calls), 2);
    assert_string_equal(str_at(e.tool_calls, 1, "id"), "call_2");
    step_effect_clear(&e);
    e = results(st, TWO_RESULTS);
    const cJSON *m = req_messages(&e);
    assert_int_equal(cJSON_GetArraySize(m), 5);   /* system, user, assistant, 2 results */
    assert_string_equal(str_at(m, 1, "content"), "Oslo?");
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);

    /* The counters carry over: 2 used + 2 re-emitted of a limit of 3 fails. */
    a.max_tool_calls = 3;
    st = step_core_toolcall.create(&a);
    ev = (step_event){.kind = STEP_EVENT_RESUME, .steps = 1, .tool_calls = 2,
                      .message = parse(TWO_CALLS)};
    e = step_core_toolcall.step(st, &ev);
    assert_int_equal(e.kind, STEP_EFFECT_FAIL);
    assert_string_equal(e.error_code, "max_tool_calls");
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);

    /* A message without calls, or RESUME on a state already started, is refused. */
    st = step_core_toolcall.create(&a);
    ev = (step_event){.kind = STEP_EVENT_RESUME, .message = parse("{\"role\":\"assistant\",\"content\":\"x\"}")};
    e = step_core_toolcall.step(st, &ev);
    assert_int_equal(e.kind, STEP_EFFECT_FAIL);
    assert_string_equal(e.error_code, "bad_event");
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
    st = step_core_toolcall.create(&a);
    e = start(&step_core_toolcall, st, NULL, "hi");
    step_effect_clear(&e);
    ev = (step_event){.kind = STEP_EVENT_RESUME, .message = parse(TWO_CALLS)};
    e = step_core_toolcall.step(st, &ev);
    assert_int_equal(e.kind, STEP_EFFECT_FAIL);
    step_effect_clear(&e);
    step_core_toolcall.destroy(st);
}

int main(void)
{
    setup_hooks(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_run, setup_tools, teardown_tools),
        cmocka_unit_test_setup_teardown(test_history_and_no_tools, setup_tools, teardown_tools),
        cmocka_unit_test_setup_teardown(test_content_and_calls_is_tool_step, setup_tools, teardown_tools),
        cmocka_unit_test_setup_teardown(test_empty_reply_finishes_empty, setup_tools, teardown_tools),
        cmocka_unit_test_setup_teardown(test_max_steps, setup_tools, teardown_tools),
        cmocka_unit_test_setup_teardown(test_max_tool_calls, setup_tools, teardown_tools),
        cmocka_unit_test_setup_teardown(test_malformed_tool_calls, setup_tools, teardown_tools),
        cmocka_unit_test_setup_teardown(test_bad_events, setup_tools, teardown_tools),
        cmocka_unit_test(test_long_history_bounded),
        cmocka_unit_test_setup_teardown(test_resume, setup_tools, teardown_tools),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
