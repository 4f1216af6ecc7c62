/* test_config_governance.c — the governance parts of the configuration:
 * tier weights, the `governance:` section (fair-queue bounds, tenant
 * limits) and the agents' cost caps, loop guard and degradation model,
 * with the errors each reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"

static char err[1024];

static int load(const char *yaml, brigade_config *cfg)
{
    err[0] = '\0';
    return config_load_string("brigade.yaml", yaml, strlen(yaml), cfg, err, sizeof(err));
}

static void expect_error(const char *yaml, const char *want)
{
    brigade_config c;
    int rc = load(yaml, &c);
    if (rc == 0 || !strstr(err, want)) {
        print_error("want error containing [%s]\n got rc=%d err=[%s]\n", want, rc, err);
        if (rc == 0) config_free(&c);
        fail();
    }
    config_free(&c);
}

static void test_defaults(void **state)
{
    (void)state;
    brigade_config c;
    assert_int_equal(load("", &c), 0);
    assert_true(c.governance.enabled);
    assert_int_equal(c.governance.queue_per_user, 16);
    assert_int_equal(c.governance.queue_global, 1024);
    assert_int_equal(c.governance.tenant_limits.rpm, 0);
    assert_int_equal(c.tiers[0].weight, 1);
    const agent_cfg *a = config_find_agent(&c, "assistant");
    assert_non_null(a);
    assert_int_equal(a->max_repeated_tool_calls, 3);
    assert_null(a->degrade_model);
    assert_true(a->max_cost_usd_per_run == 0);
    config_free(&c);
}

static void test_full(void **state)
{
    (void)state;
    brigade_config c;
    const char *yaml =
        "tiers:\n"
        "  - {name: free, rpm: 10, tpm: 1000, max_concurrent_runs: 2, daily_budget_usd: 0.5,\n"
        "     monthly_budget_usd: 5, weight: 1}\n"
        "  - {name: pro, rpm: 600, weight: 4}\n"
        "default_tier: free\n"
        "governance:\n"
        "  enabled: false\n"
        "  queue_per_user: 4\n"
        "  queue_global: 100\n"
        "  tenant_limits: {rpm: 1000, daily_budget_usd: 100}\n"
        "agents:\n"
        "  - name: helper\n"
        "    model: mock-large\n"
        "    max_cost_usd_per_run: 0.25\n"
        "    max_cost_usd_per_session: 2\n"
        "    max_repeated_tool_calls: 2\n"
        "    degrade: {model: mock-small, threshold: 0.8}\n";
    assert_int_equal(load(yaml, &c), 0);
    assert_false(c.governance.enabled);
    assert_int_equal(c.governance.queue_per_user, 4);
    assert_int_equal(c.governance.queue_global, 100);
    assert_int_equal(c.governance.tenant_limits.rpm, 1000);
    assert_true(c.governance.tenant_limits.daily_budget_usd == 100);
    assert_int_equal(config_find_tier(&c, "pro")->weight, 4);
    assert_int_equal(config_find_tier(&c, "free")->max_concurrent_runs, 2);
    const agent_cfg *a = config_find_agent(&c, "helper");
    assert_true(a->max_cost_usd_per_run == 0.25);
    assert_true(a->max_cost_usd_per_session == 2);
    assert_int_equal(a->max_repeated_tool_calls, 2);
    assert_non_null(a->degrade_model);
    assert_string_equal(a->degrade_model->name, "mock-small");
    assert_true(a->degrade_threshold == 0.8);
    config_free(&c);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("governance:\n  enabled: yes\n", "brigade.yaml:2: governance.enabled: expected true or false");
    expect_error("governance:\n  queue_size: 3\n", "governance.queue_size: unknown key");
    expect_error("governance:\n  tenant_limits: {name: x}\n", "tenant limits have no name");
    expect_error("governance:\n  tenant_limits: {rpm: -1}\n", "governance.tenant_limits.rpm");
    expect_error("tiers:\n  - {name: t, weight: 0}\n", "tiers[0].weight");
    expect_error("agents:\n  - {name: a, model: mock-small, degrade: {model: nope}}\n",
                 "agents[0].degrade.model: no model named \"nope\"");
    expect_error("agents:\n  - {name: a, model: mock-small, degrade: {threshold: 0.5}}\n",
                 "missing required key \"model\"");
    expect_error("agents:\n  - {name: a, model: mock-small, degrade: {model: mock-large, threshold: 2}}\n",
                 "agents[0].degrade.threshold");
    expect_error("agents:\n  - {name: a, model: mock-small, max_cost_usd_per_run: -1}\n",
                 "agents[0].max_cost_usd_per_run");
    expect_error("agents:\n  - {name: a, model: mock-small, max_repeated_tool_calls: 0}\n",
                 "agents[0].max_repeated_tool_calls");
}

/* Storage quotas per tier: defaults, 0 = unlimited, null = the default,
 * and not a tenant limit. */
static void test_storage_quotas(void **state)
{
    (void)state;
    brigade_config c;
    assert_int_equal(load("", &c), 0);
    assert_int_equal(c.tiers[0].quota_memory_bytes, 10 << 20);
    assert_int_equal(c.tiers[0].quota_memory_entries, 1000);
    assert_int_equal(c.tiers[0].quota_sessions, 1000);
    assert_int_equal(c.tiers[0].quota_messages_per_session, 2000);
    config_free(&c);
    const char *yaml =
        "tiers:\n"
        "  - {name: free, memory_bytes: 65536, memory_entries: 10, sessions: 0,\n"
        "     messages_per_session: null}\n"
        "  - {name: default}\n";
    assert_int_equal(load(yaml, &c), 0);
    const tier_cfg *t = config_find_tier(&c, "free");
    assert_int_equal(t->quota_memory_bytes, 65536);
    assert_int_equal(t->quota_memory_entries, 10);
    assert_int_equal(t->quota_sessions, 0);                 /* unlimited */
    assert_int_equal(t->quota_messages_per_session, 2000);  /* null: the default */
    assert_int_equal(config_find_tier(&c, "default")->quota_memory_entries, 1000);
    config_free(&c);
    expect_error("tiers:\n  - {name: t, memory_bytes: -1}\n", "tiers[0].memory_bytes");
    expect_error("tiers:\n  - {name: t, sessions: \"5\"}\n", "tiers[0].sessions");
    expect_error("governance:\n  tenant_limits: {memory_entries: 5}\n",
                 "governance.tenant_limits.memory_entries: storage quotas are per tier");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_storage_quotas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
