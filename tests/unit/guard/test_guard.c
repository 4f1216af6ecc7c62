/* test_guard.c — the harness's checks (src/guard/): a tool the agent does
 * not list is refused, as is one the server does not have; arguments are
 * checked against the tool's schema only once it is allowed; the loop
 * guard stops the run when one (tool, arguments) pair, whitespace aside,
 * comes more than max_repeated_tool_calls times, counting across batches;
 * other effects and every result pass. Each tool-call check leaves its
 * decision; a refusal names the check, a code and the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "guard/guard.h"
#include "identity/scope_mint.h"

static brigade_config CFG;
static tool_registry *TOOLS;
static scope SC;
static guard_ctx CTX;

static int setup(void **state)
{
    (void)state;
    static const char yaml[] =
        "providers: [{name: local, kind: mock}]\n"
        "models: [{name: m, provider: local}]\n"
        "tiers: [{name: default}]\n"
        "default_tier: default\n"
        "tools:\n"
        "  - {name: weather, url: \"http://127.0.0.1:9/w\", parameters: {type: object, "
        "properties: {city: {type: string}}, required: [city]}}\n"
        "  - {name: hidden, url: \"http://127.0.0.1:9/h\"}\n"
        "agents:\n"
        "  - {name: a, model: m, tools: [clock, weather], max_repeated_tool_calls: 2}\n";
    char err[256];
    if (config_load_string("g.yaml", yaml, strlen(yaml), &CFG, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    TOOLS = tools_registry_new(&CFG, err, sizeof err);
    if (!TOOLS) fail_msg("tools: %s", err);
    scope_mint_user(&SC, "ten_1", "usr_1", "key_1", "default");
    CTX = (guard_ctx){.sc = &SC, .agent = config_find_agent(&CFG, "a"), .tools = TOOLS,
                      .run_id = "run_1", .session_id = "ses_1"};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tools_registry_free(TOOLS);
    config_free(&CFG);
    return 0;
}

static guard_decision one_call(guard_run *g, const char *name, const char *args)
{
    guard_effect e = {.kind = GUARD_EFFECT_TOOL_CALL, .tool_name = name, .arguments = args};
    return guard_before_effect(g, &CTX, &e);
}

static void test_permission_and_arguments(void **state)
{
    (void)state;
    guard_run *g = guard_run_new();
    guard_decision d = one_call(g, "weather", "{\"city\":\"Oslo\"}");
    assert_int_equal(d.verdict, GUARD_ALLOW);
    assert_non_null(d.tool);
    assert_null(d.code);

    d = one_call(g, "hidden", "{}");          /* the server has it; the agent does not list it */
    assert_int_equal(d.verdict, GUARD_REFUSE);
    assert_string_equal(d.check, "tool_permission");
    assert_string_equal(d.code, "tool_not_allowed");
    assert_string_equal(d.reason, "the tool \"hidden\" is not available to this agent");
    assert_null(d.tool);

    d = one_call(g, "nothing-by-this-name", "{}");
    assert_int_equal(d.verdict, GUARD_REFUSE);
    assert_string_equal(d.code, "tool_not_allowed");

    d = one_call(g, "weather", "{\"town\":\"Oslo\"}");
    assert_int_equal(d.verdict, GUARD_REFUSE);
    assert_string_equal(d.check, "tool_arguments");
    assert_string_equal(d.code, "invalid_arguments");
    assert_memory_equal(d.reason, "invalid arguments for weather: ", 31);

    d = one_call(g, "weather", "not json");
    assert_int_equal(d.verdict, GUARD_REFUSE);
    assert_string_equal(d.code, "invalid_arguments");
    guard_run_free(g);
}

static guard_decision batch(guard_run *g, const char *json)
{
    cJSON *calls = cJSON_Parse(json);
    guard_effect e = {.kind = GUARD_EFFECT_TOOL_CALLS, .json = calls};
    guard_decision d = guard_before_effect(g, &CTX, &e);
    cJSON_Delete(calls);
    return d;
}

#define CALL(args) "{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"clock\",\"arguments\":\"" args "\"}}"

static void test_loop_guard(void **state)
{
    (void)state;
    guard_run *g = guard_run_new();
    /* twice is allowed (max_repeated_tool_calls 2), across batches */
    assert_int_equal(batch(g, "[" CALL("{}") "]").verdict, GUARD_ALLOW);
    assert_int_equal(batch(g, "[" CALL("{ }") "]").verdict, GUARD_ALLOW);
    /* other arguments are another call */
    assert_int_equal(batch(g, "[" CALL("{\\\"tz\\\":\\\"UTC\\\"}") "]").verdict, GUARD_ALLOW);
    /* the third time, whitespace aside, stops the run */
    guard_decision d = batch(g, "[" CALL("{  }") "]");
    assert_int_equal(d.verdict, GUARD_STOP);
    assert_string_equal(d.check, "tool_loop");
    assert_string_equal(d.code, "repeated_tool_call");
    assert_non_null(strstr(d.reason, "tool \"clock\" with the same arguments more than 2 times"));
    guard_run_free(g);

    /* within one batch too; a fresh run starts counting again */
    g = guard_run_new();
    assert_int_equal(batch(g, "[" CALL("{}") "," CALL("{}") "," CALL("{}") "]").verdict, GUARD_STOP);
    guard_run_free(g);
    g = guard_run_new();
    assert_int_equal(batch(g, "[" CALL("{}") "]").verdict, GUARD_ALLOW);
    guard_run_free(g);
}

static void test_other_effects_and_results_pass(void **state)
{
    (void)state;
    guard_run *g = guard_run_new();
    cJSON *req = cJSON_Parse("{\"model\":\"m\",\"messages\":[]}");
    guard_effect e = {.kind = GUARD_EFFECT_MODEL_CALL, .json = req};
    assert_int_equal(guard_before_effect(g, &CTX, &e).verdict, GUARD_ALLOW);
    e = (guard_effect){.kind = GUARD_EFFECT_FINISH, .json = req};
    assert_int_equal(guard_before_effect(g, &CTX, &e).verdict, GUARD_ALLOW);
    guard_result r = {.kind = GUARD_RESULT_MODEL_REPLY, .json = req};
    assert_false(guard_after_result(g, &CTX, &r).flagged);
    r.kind = GUARD_RESULT_TOOL_RESULTS;
    assert_false(guard_after_result(g, &CTX, &r).flagged);
    cJSON_Delete(req);
    guard_run_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permission_and_arguments),
        cmocka_unit_test(test_loop_guard),
        cmocka_unit_test(test_other_effects_and_results_pass),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
