/* test_pii_policy.c — an agent's `guard: {pii: …}` (src/guard/pii_policy.c
 * through guard.c and the harness's request pass): redact rewrites the
 * user's message, a tool's result, every user and tool message of a model
 * request (history included) and the model's reply; flag leaves them and
 * says which kinds, never the values; off does nothing; the config refuses
 * other words; the tenant's JSON agent is read by the same code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/step.h"
#include "guard/engine.h"
#include "guard/guard.h"
#include "guard/pii_policy.h"
#include "identity/scope_mint.h"

static brigade_config CFG;
static tool_registry *TOOLS;
static scope SC;

static const char PII_TEXT[] = "mail jane.doe@example.com, card 4111 1111 1111 1111";

static int setup(void **state)
{
    (void)state;
    static const char yaml[] =
        "providers: [{name: local, kind: mock}]\n"
        "models: [{name: m, provider: local}]\n"
        "tiers: [{name: default}]\n"
        "default_tier: default\n"
        "tools:\n"
        "  - {name: page, url: \"http://127.0.0.1:9/p\", effects: read}\n"
        "agents:\n"
        "  - {name: redactor, model: m, tools: [page], guard: {pii: {input: redact, output: redact}}}\n"
        "  - {name: flagger, model: m, tools: [page], guard: {pii: {input: flag, output: flag}}}\n"
        "  - {name: plain, model: m, tools: [page]}\n";
    char err[256];
    if (config_load_string("p.yaml", yaml, strlen(yaml), &CFG, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    TOOLS = tools_registry_new(&CFG, err, sizeof err);
    if (!TOOLS) fail_msg("tools: %s", err);
    scope_mint_user(&SC, "ten_1", "usr_1", "key_1", "default");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tools_registry_free(TOOLS);
    config_free(&CFG);
    return 0;
}

static guard_ctx ctx_of(const char *agent)
{
    return (guard_ctx){.sc = &SC, .agent = config_find_agent(&CFG, agent), .tools = TOOLS,
                       .run_id = "run_1", .session_id = "ses_1"};
}

static cJSON *message(const char *role, const char *content)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    return m;
}

static const char *content(const cJSON *m)
{
    return cJSON_GetObjectItemCaseSensitive(m, "content")->valuestring;
}

/* The one pii event of a review: its action and labels, and no value. */
static void expect_pii_event(cJSON *events, const char *channel, const char *action)
{
    assert_non_null(events);
    cJSON *ev = NULL, *e;
    cJSON_ArrayForEach(e, events)
        if (strcmp(cJSON_GetObjectItem(e, "detector")->valuestring, "pii") == 0) ev = e;
    assert_non_null(ev);
    assert_string_equal(cJSON_GetObjectItem(ev, "channel")->valuestring, channel);
    assert_string_equal(cJSON_GetObjectItem(ev, "action")->valuestring, action);
    cJSON *labels = cJSON_GetObjectItem(ev, "labels");
    assert_int_equal(cJSON_GetArraySize(labels), 2);
    assert_string_equal(cJSON_GetArrayItem(labels, 0)->valuestring, "email");
    assert_string_equal(cJSON_GetArrayItem(labels, 1)->valuestring, "card");
    char *printed = cJSON_PrintUnformatted(events);
    assert_null(strstr(printed, "jane"));
    assert_null(strstr(printed, "4111"));
    free(printed);
}

static void test_user_message(void **state)
{
    (void)state;
    const char *agents[] = {"redactor", "flagger", "plain"};
    const char *want[] = {"mail [EMAIL], card [CARD]", PII_TEXT, PII_TEXT};
    for (int i = 0; i < 3; i++) {
        guard_ctx ctx = ctx_of(agents[i]);
        guard_run *g = guard_run_new();
        cJSON *msg = message("user", PII_TEXT);
        guard_result r = {.kind = GUARD_RESULT_START, .json = msg, .history = NULL};
        guard_review v = guard_after_result(g, &ctx, &r);
        assert_false(v.flagged);                       /* never blocks */
        assert_string_equal(content(msg), want[i]);
        if (i < 2) expect_pii_event(v.events, "user", i == 0 ? "redact" : "flag");
        else assert_null(v.events);                    /* the injection engine is not loaded */
        cJSON_Delete(v.events);
        cJSON_Delete(msg);
        guard_run_free(g);
    }
}

static void test_tool_result_and_reply(void **state)
{
    (void)state;
    guard_ctx ctx = ctx_of("redactor");
    guard_run *g = guard_run_new();
    cJSON *calls = cJSON_Parse("[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"page\","
                               "\"arguments\":\"{}\"}}]");
    guard_effect e = {.kind = GUARD_EFFECT_TOOL_CALLS, .json = calls};
    assert_int_equal(guard_before_effect(g, &ctx, &e).verdict, GUARD_ALLOW);
    cJSON_Delete(calls);
    cJSON *results = cJSON_CreateArray();
    cJSON *m = message("tool", PII_TEXT);
    cJSON_AddStringToObject(m, "tool_call_id", "c1");
    cJSON_AddItemToArray(results, m);
    guard_result r = {.kind = GUARD_RESULT_TOOL_RESULTS, .json = results};
    guard_review v = guard_after_result(g, &ctx, &r);
    assert_string_equal(content(m), "mail [EMAIL], card [CARD]");
    expect_pii_event(v.events, "tool", "redact");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(v.events, 0), "tool")->valuestring, "page");
    cJSON_Delete(v.events);
    cJSON_Delete(results);

    /* the reply: text parts too */
    cJSON *reply = cJSON_Parse("{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
                               "\"mail jane.doe@example.com, card 4111 1111 1111 1111\"}]}");
    r = (guard_result){.kind = GUARD_RESULT_MODEL_REPLY, .json = reply};
    v = guard_after_result(g, &ctx, &r);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(reply, "content"), 0),
                                            "text")->valuestring, "mail [EMAIL], card [CARD]");
    expect_pii_event(v.events, "model", "redact");
    cJSON_Delete(v.events);
    cJSON_Delete(reply);
    guard_run_free(g);

    /* flag: the reply is kept */
    ctx = ctx_of("flagger");
    g = guard_run_new();
    reply = message("assistant", PII_TEXT);
    r = (guard_result){.kind = GUARD_RESULT_MODEL_REPLY, .json = reply};
    v = guard_after_result(g, &ctx, &r);
    assert_string_equal(content(reply), PII_TEXT);
    expect_pii_event(v.events, "model", "flag");
    cJSON_Delete(v.events);
    cJSON_Delete(reply);
    guard_run_free(g);
}

/* The request pass: user and tool messages (history included) lose their
 * values; the system prompt and the assistant's messages are left. */
static void test_request(void **state)
{
    (void)state;
    const char *req_json =
        "{\"model\":\"m\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"support: help@example.com\"},"
        "{\"role\":\"user\",\"content\":\"I am jane.doe@example.com\"},"
        "{\"role\":\"assistant\",\"content\":\"noted, bob@example.com\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"IBAN GB82 WEST 1234 5698 7654 32\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"call +44 20 7946 0958\"}]}]}";
    guard_ctx red = ctx_of("redactor"), flag = ctx_of("flagger");
    cJSON *req = cJSON_Parse(req_json);
    guard_pii_request(&flag, req);                     /* flag: nothing changes */
    char *before = cJSON_PrintUnformatted(req);
    cJSON *orig = cJSON_Parse(req_json);
    char *o = cJSON_PrintUnformatted(orig);
    assert_string_equal(before, o);
    free(before);
    free(o);
    cJSON_Delete(orig);
    guard_pii_request(&red, req);
    cJSON *ms = cJSON_GetObjectItem(req, "messages");
    assert_string_equal(content(cJSON_GetArrayItem(ms, 0)), "support: help@example.com");
    assert_string_equal(content(cJSON_GetArrayItem(ms, 1)), "I am [EMAIL]");
    assert_string_equal(content(cJSON_GetArrayItem(ms, 2)), "noted, bob@example.com");
    assert_string_equal(content(cJSON_GetArrayItem(ms, 3)), "IBAN [IBAN]");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(ms, 4),
                                                                                  "content"), 0), "text")->valuestring,
                        "call [PHONE]");
    cJSON_Delete(req);
    /* hostile shapes: no messages, messages not an array, content a number */
    cJSON *odd = cJSON_Parse("{\"messages\":{\"role\":\"user\"}}");
    guard_pii_request(&red, odd);
    cJSON_Delete(odd);
    odd = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":7},{\"role\":3},7,"
                      "{\"role\":\"tool\",\"content\":[{\"text\":null},5]}]}");
    guard_pii_request(&red, odd);
    cJSON_Delete(odd);
    guard_pii_request(&red, NULL);
}

/* A request whose messages are references to the run's conversation (what the
 * built-in core sends, core/step.h): the redaction reaches the request,
 * and the conversation keeps what the user and the tool said. */
static void test_request_of_references(void **state)
{
    (void)state;
    cJSON *conv = cJSON_Parse("["
        "{\"role\":\"user\",\"content\":\"I am jane.doe@example.com\",\"origin\":{\"kind\":\"user\",\"untrusted\":false}},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "  \"function\":{\"name\":\"crm\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":[{\"type\":\"text\",\"text\":\"call +44 20 7946 0958\"}]}]");
    char *before = cJSON_PrintUnformatted(conv);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddItemToObject(req, "messages", step_context_select(NULL, conv, 100000, NULL, NULL));
    guard_ctx red = ctx_of("redactor");
    guard_pii_request(&red, req);
    cJSON *ms = cJSON_GetObjectItem(req, "messages");
    assert_int_equal(cJSON_GetArraySize(ms), 3);
    assert_string_equal(content(cJSON_GetArrayItem(ms, 0)), "I am [EMAIL]");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(ms, 2),
                                                                                  "content"), 0), "text")->valuestring,
                        "call [PHONE]");
    char *after = cJSON_PrintUnformatted(conv);
    assert_string_equal(after, before);
    cJSON_Delete(req);
    cJSON_Delete(conv);
    free(before);
    free(after);
}

static void expect_config_error(const char *extra, const char *want)
{
    char yaml[1024], err[300] = "";
    snprintf(yaml, sizeof yaml,
             "providers: [{name: local, kind: mock}]\nmodels: [{name: m, provider: local}]\n%s", extra);
    brigade_config c;
    if (config_load_string("g.yaml", yaml, strlen(yaml), &c, err, sizeof err) == 0) {
        config_free(&c);
        fail_msg("accepted: %s", extra);
    }
    if (!strstr(err, want)) fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_config(void **state)
{
    (void)state;
    expect_config_error("agents: [{name: a, model: m, guard: {pii: {input: mask}}}]\n",
                        "agents[0].guard.pii.input: expected off, flag or redact");
    expect_config_error("agents: [{name: a, model: m, guard: {pii: {output: [redact]}}}]\n",
                        "agents[0].guard.pii.output");
    expect_config_error("agents: [{name: a, model: m, guard: {pii: {inputs: redact}}}]\n", "inputs");
    expect_config_error("agents: [{name: a, model: m, guard: {pii: redact}}]\n", "agents[0].guard.pii");
    const agent_cfg *a = config_find_agent(&CFG, "plain");
    assert_int_equal(a->guard.pii_input, GUARD_PII_OFF);
    assert_int_equal(a->guard.pii_output, GUARD_PII_OFF);
    a = config_find_agent(&CFG, "redactor");
    assert_int_equal(a->guard.pii_input, GUARD_PII_REDACT);
    assert_int_equal(a->guard.pii_output, GUARD_PII_REDACT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_message),
        cmocka_unit_test(test_tool_result_and_reply),
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_request_of_references),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
