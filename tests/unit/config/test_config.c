/* test_config.c — unit tests of src/config: embedded defaults, the YAML
 * loader and every validation error it reports (file:line: key: message),
 * ${VAR} expansion, listen parsing and the cost arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "config/config.h"
#include "util/log.h"

#ifndef BRIGADE_SOURCE_ROOT
#define BRIGADE_SOURCE_ROOT "."
#endif

static char err[1024];

static int load(const char *yaml, brigade_config *cfg)
{
    err[0] = '\0';
    return config_load_string("brigade.yaml", yaml, strlen(yaml), cfg, err, sizeof(err));
}

/* Loading must fail with a message containing `want` (file:line: key: …). */
#define assert_load_error(yaml, want)                                              \
    do {                                                                           \
        brigade_config c_;                                                         \
        int rc_ = load((yaml), &c_);                                               \
        if (rc_ == 0 || !strstr(err, (want))) {                                    \
            print_error("want error containing [%s]\n got rc=%d err=[%s]\n", (want), rc_, err); \
            if (rc_ == 0)                                                          \
                config_free(&c_);                                                  \
            fail();                                                                \
        }                                                                          \
        /* a failed load leaves the struct zeroed, so freeing is harmless */      \
        assert_null(c_.providers);                                                 \
        config_free(&c_);                                                          \
    } while (0)

static void test_defaults(void **state)
{
    (void)state;
    unsetenv("BRIGADE_ADMIN_TOKEN");
    brigade_config c;
    config_defaults(&c);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8080);
    assert_string_equal(c.data_dir, "./brigade-data");
    assert_null(c.admin_token);
    assert_null(c.source_path);
    assert_int_equal(c.threads, 0);
    assert_int_equal(c.max_choices, 8);
    assert_int_equal(c.limits.max_body_bytes, 0);
    assert_int_equal(c.n_providers, 1);
    assert_string_equal(c.providers[0].name, "mock");
    assert_int_equal(c.providers[0].kind, PROVIDER_MOCK);
    assert_int_equal(c.providers[0].mock_stream_chunks, 8);
    assert_int_equal(c.providers[0].timeout_ms, 120000);
    assert_int_equal(c.n_models, 2);
    const model_cfg *s = config_find_model(&c, "mock-small");
    const model_cfg *l = config_find_model(&c, "mock-large");
    assert_non_null(s);
    assert_non_null(l);
    assert_ptr_equal(s->provider, &c.providers[0]);
    assert_string_equal(s->upstream_model, "mock-small");
    assert_true(s->input_usd_per_mtok == 0.50 && s->output_usd_per_mtok == 1.50);
    assert_true(l->input_usd_per_mtok == 3.00 && l->output_usd_per_mtok == 15.00);
    assert_int_equal(s->max_output_tokens, 4096);
    assert_int_equal(s->context_window, 128000);
    assert_null(config_find_model(&c, "gpt-4o"));
    const tier_cfg *t = config_find_tier(&c, "default");
    assert_non_null(t);
    assert_int_equal(t->rpm, 0);
    assert_true(t->daily_budget_usd == 0);
    assert_string_equal(c.default_tier, "default");
    assert_null(config_find_tier(&c, "gold"));
    config_free(&c);
    assert_null(c.models);
    config_free(&c); /* twice is harmless */

    setenv("BRIGADE_ADMIN_TOKEN", "adm-secret", 1);
    config_defaults(&c);
    assert_string_equal(c.admin_token, "adm-secret");
    config_free(&c);
    unsetenv("BRIGADE_ADMIN_TOKEN");
}

static void test_empty_and_comment_only(void **state)
{
    (void)state;
    brigade_config c;
    assert_int_equal(load("", &c), 0);
    assert_int_equal(c.listen_port, 8080);
    assert_int_equal(c.n_models, 2);
    config_free(&c);
    assert_int_equal(load("# nothing here\n\n   # still nothing\n", &c), 0);
    assert_string_equal(c.default_tier, "default");
    config_free(&c);
    /* A section with nothing under it is an empty section. */
    assert_int_equal(load("server:\n", &c), 0);
    assert_string_equal(c.listen_host, "127.0.0.1");
    config_free(&c);
}

static const char full_yaml[] =
    "server:\n"                                         /* 1 */
    "  listen: \"[::1]:9090\"\n"                        /* 2 */
    "  threads: 3\n"
    "  data_dir: /var/lib/brigade\n"
    "  admin_token_env: TEST_ADMIN\n"
    "  limits:\n"
    "    max_body_bytes: 2048\n"
    "    max_header_bytes: 4096\n"
    "    max_headers: 32\n"
    "    max_url_bytes: 1024\n"                         /* 10 */
    "    header_timeout_ms: 1000\n"
    "    body_timeout_ms: 2000\n"
    "    idle_timeout_ms: 3000\n"
    "    shutdown_grace_ms: 4000\n"
    "    max_connections: 500\n"
    "    stream_high_water_bytes: 65536\n"
    "providers:\n"
    "  - name: openai\n"
    "    kind: openai\n"
    "    base_url: https://api.openai.com/v1/\n"        /* 20 */
    "    api_key_env: TEST_OPENAI_KEY\n"
    "    timeout_ms: 90000\n"
    "    connect_timeout_ms: 3000\n"
    "    max_connections: 16\n"
    "  - name: mock\n"
    "    kind: mock\n"
    "    latency_ms: 25\n"
    "    stream_chunks: 4\n"
    "    chunk_interval_ms: 5\n"
    "models:\n"                                         /* 30 */
    "  - name: gpt-4o-mini\n"
    "    provider: openai\n"
    "    upstream_model: gpt-4o-mini-2024-07-18\n"
    "    input_usd_per_mtok: 0.15\n"
    "    output_usd_per_mtok: 0.60\n"
    "    max_output_tokens: 2048\n"
    "    context_window: 64000\n"
    "  - name: echo\n"
    "    provider: mock\n"
    "tiers:\n"                                          /* 40 */
    "  - name: free\n"
    "    rpm: 10\n"
    "    tpm: 20000\n"
    "    max_concurrent_runs: 1\n"
    "    daily_budget_usd: 0.5\n"
    "    monthly_budget_usd: 5\n"
    "  - name: pro\n"
    "default_tier: free\n";

static void test_full_config(void **state)
{
    (void)state;
    setenv("TEST_ADMIN", "admin-from-env", 1);
    setenv("TEST_OPENAI_KEY", "sk-from-env", 1);
    brigade_config c;
    int rc = load(full_yaml, &c);
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.listen_host, "::1");
    assert_int_equal(c.listen_port, 9090);
    assert_int_equal(c.threads, 3);
    assert_string_equal(c.data_dir, "/var/lib/brigade");
    assert_string_equal(c.admin_token, "admin-from-env");
    assert_int_equal(c.limits.max_body_bytes, 2048);
    assert_int_equal(c.limits.max_header_bytes, 4096);
    assert_int_equal(c.limits.max_headers, 32);
    assert_int_equal(c.limits.max_url_bytes, 1024);
    assert_int_equal(c.limits.header_timeout_ms, 1000);
    assert_int_equal(c.limits.body_timeout_ms, 2000);
    assert_int_equal(c.limits.idle_timeout_ms, 3000);
    assert_int_equal(c.limits.shutdown_grace_ms, 4000);
    assert_int_equal(c.limits.max_connections, 500);
    assert_int_equal(c.limits.stream_high_water, 65536);

    assert_int_equal(c.n_providers, 2);
    provider_cfg *o = &c.providers[0], *m = &c.providers[1];
    assert_string_equal(o->name, "openai");
    assert_int_equal(o->kind, PROVIDER_OPENAI);
    assert_string_equal(o->base_url, "https://api.openai.com/v1"); /* trailing / dropped */
    assert_string_equal(o->api_key, "sk-from-env");
    assert_int_equal(o->timeout_ms, 90000);
    assert_int_equal(o->connect_timeout_ms, 3000);
    assert_int_equal(o->max_connections, 16);
    assert_string_equal(m->name, "mock");
    assert_int_equal(m->kind, PROVIDER_MOCK);
    assert_null(m->base_url);
    assert_null(m->api_key);
    assert_int_equal(m->mock_latency_ms, 25);
    assert_int_equal(m->mock_stream_chunks, 4);
    assert_int_equal(m->mock_chunk_interval_ms, 5);
    assert_int_equal(m->timeout_ms, 120000); /* per-entry default */

    /* models replaced the embedded ones */
    assert_int_equal(c.n_models, 2);
    assert_null(config_find_model(&c, "mock-small"));
    const model_cfg *g = config_find_model(&c, "gpt-4o-mini");
    assert_non_null(g);
    assert_ptr_equal(g->provider, o);
    assert_string_equal(g->provider_name, "openai");
    assert_string_equal(g->upstream_model, "gpt-4o-mini-2024-07-18");
    assert_true(g->input_usd_per_mtok == 0.15);
    assert_true(g->output_usd_per_mtok == 0.60);
    assert_int_equal(g->max_output_tokens, 2048);
    assert_int_equal(g->context_window, 64000);
    const model_cfg *e = config_find_model(&c, "echo");
    assert_non_null(e);
    assert_ptr_equal(e->provider, m);
    assert_string_equal(e->upstream_model, "echo");
    assert_true(e->input_usd_per_mtok == 0 && e->output_usd_per_mtok == 0);
    assert_int_equal(e->max_output_tokens, 4096);
    assert_int_equal(e->context_window, 128000);

    assert_int_equal(c.n_tiers, 2);
    const tier_cfg *f = config_find_tier(&c, "free");
    assert_non_null(f);
    assert_int_equal(f->rpm, 10);
    assert_int_equal(f->tpm, 20000);
    assert_int_equal(f->max_concurrent_runs, 1);
    assert_true(f->daily_budget_usd == 0.5);
    assert_true(f->monthly_budget_usd == 5);
    const tier_cfg *p = config_find_tier(&c, "pro");
    assert_non_null(p);
    assert_int_equal(p->rpm, 0);
    assert_true(p->monthly_budget_usd == 0);
    assert_null(config_find_tier(&c, "default"));
    assert_string_equal(c.default_tier, "free");
    assert_int_equal(c.n_warnings, 0);
    config_free(&c);
    unsetenv("TEST_ADMIN");
    unsetenv("TEST_OPENAI_KEY");
}

static void test_not_a_mapping(void **state)
{
    (void)state;
    assert_load_error("- a\n- b\n", "brigade.yaml:1: the configuration must be a YAML mapping");
    assert_load_error("\n\njust a string\n", "brigade.yaml:3: the configuration must be a YAML mapping");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    assert_load_error("server:\n  listen: 127.0.0.1:8080\n  threads: [1,\n", "brigade.yaml:4: syntax error: ");
    assert_load_error("server:\n  listen: 'abc\n", "brigade.yaml:2: syntax error: ");
    assert_load_error("server:\n  threads: 1\n  threads: 2\n", "brigade.yaml:3: syntax error: duplicate key");
    assert_load_error("server:\n  listen: *nowhere\n", "brigade.yaml:2: syntax error: ");
    /* A second document would be silently ignored by a naive reader. */
    assert_load_error("server:\n  threads: 1\n---\nserver:\n  threads: 2\n",
                      "brigade.yaml:4: only one YAML document is allowed");
    brigade_config c;
    char bin[] = "server:\n  threads: 1\n\0junk\n";
    assert_int_equal(config_load_string("brigade.yaml", bin, sizeof(bin) - 1, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "brigade.yaml:3: the file contains a NUL byte"));
    config_free(&c);
}

/* Bytes that are not UTF-8 are refused with their line before libfyaml sees
 * them: 0xff in a %directive's name made libfyaml 0.7 loop forever (found by
 * fuzz/config/fuzz_config_yaml). */
static void test_not_utf8(void **state)
{
    (void)state;
    assert_load_error("%erve\xff\n", "brigade.yaml:1: not valid UTF-8");
    assert_load_error("server:\n  data_dir: /tmp/caf\xe9\n", "brigade.yaml:2: not valid UTF-8");
    assert_load_error("server:\n  threads: 1\n# \xc3\x28 an invalid sequence in a comment\n", "brigade.yaml:3: not valid UTF-8");
    /* Well-formed UTF-8 (and a byte-order mark) still loads. */
    brigade_config c;
    assert_int_equal(load("\xef\xbb\xbfserver:\n  data_dir: /tmp/caf\xc3\xa9\n", &c), 0);
    config_free(&c);
}

static void test_anchors_and_flow_style(void **state)
{
    (void)state;
    brigade_config c;
    /* Anchors and aliases are resolved, so shared settings can be written once. */
    int rc = load("tiers:\n  - &base {name: default, rpm: 30, tpm: 1000}\n  - {name: other, rpm: 30}\n"
                  "models: [{name: m1, provider: mock, max_output_tokens: &cap 1000}, "
                  "{name: m2, provider: mock, max_output_tokens: *cap}]\n", &c);
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(config_find_tier(&c, "default")->tpm, 1000);
    assert_int_equal(config_find_model(&c, "m2")->max_output_tokens, 1000);
    config_free(&c);
    assert_load_error("a: &x {b: *x}\n", "brigade.yaml:1: syntax error");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    assert_load_error("server:\n  lissten: 127.0.0.1:1\n",
                      "brigade.yaml:2: server.lissten: unknown key (did you mean \"listen\"?)");
    assert_load_error("listen: 127.0.0.1:1\n",
                      "brigade.yaml:1: listen: unknown key (did you mean \"server.listen\"?)");
    assert_load_error("# c\nfrobnicate: 1\n", "brigade.yaml:2: frobnicate: unknown key (known: server, providers");
    assert_load_error("server:\n  limits:\n    max_body: 1\n",
                      "brigade.yaml:3: server.limits.max_body: unknown key");
    assert_load_error("models:\n  - name: a\n    provider: mock\n    input_usd_per_mtk: 1\n",
                      "brigade.yaml:4: models[0].input_usd_per_mtk: unknown key (did you mean \"input_usd_per_mtok\"?)");
    assert_load_error("tiers:\n  - name: a\n    rmp: 1\ndefault_tier: a\n",
                      "brigade.yaml:3: tiers[0].rmp: unknown key (did you mean \"rpm\"?)");
}

/* server.max_choices: the operator's bound on a chat completion's n. */
static void test_max_choices(void **state)
{
    (void)state;
    brigade_config c;
    assert_int_equal(load("server:\n  max_choices: 2\n", &c), 0);
    assert_int_equal(c.max_choices, 2);
    config_free(&c);
    assert_int_equal(load("server:\n  threads: 1\n", &c), 0);
    assert_int_equal(c.max_choices, 8);
    config_free(&c);
}

/* server.history_cache_mb: the memory of the histories kept between runs. */
static void test_history_cache_mb(void **state)
{
    (void)state;
    brigade_config c;
    assert_int_equal(load("server:\n  threads: 1\n", &c), 0);
    assert_int_equal(c.history_cache_mb, 64);
    config_free(&c);
    assert_int_equal(load("server:\n  history_cache_mb: 0\n", &c), 0);
    assert_int_equal(c.history_cache_mb, 0);
    config_free(&c);
    assert_load_error("server:\n  history_cache_mb: -1\n",
                      "brigade.yaml:2: server.history_cache_mb: must not be negative (got -1)");
    assert_load_error("server:\n  history_cache_mb: 65537\n",
                      "brigade.yaml:2: server.history_cache_mb: must be between 0 and 65536 (got 65537)");
}

/* guard.decisions: the retention of the guard's recorded decisions. */
static void test_guard_decisions(void **state)
{
    (void)state;
    brigade_config c;
    assert_int_equal(load("server:\n  threads: 1\n", &c), 0);
    assert_int_equal(c.guard.decisions_retention_days, 90);
    assert_int_equal(c.guard.decisions_max_per_tenant, 100000);
    config_free(&c);
    assert_int_equal(load("guard:\n  decisions: {retention_days: 7, max_per_tenant: 0}\n", &c), 0);
    assert_int_equal(c.guard.decisions_retention_days, 7);
    assert_int_equal(c.guard.decisions_max_per_tenant, 0);
    config_free(&c);
    assert_load_error("guard:\n  decisions: {retention_days: -1}\n",
                      "brigade.yaml:2: guard.decisions.retention_days: must not be negative");
    assert_load_error("guard:\n  decisions: {retention_days: 4000}\n",
                      "guard.decisions.retention_days: must be between 0 and 3650");
    assert_load_error("guard:\n  decisions: {max_per_tenant: lots}\n",
                      "guard.decisions.max_per_tenant: expected an integer");
    assert_load_error("guard:\n  decisions: {keep: 3}\n", "guard.decisions");
    assert_load_error("guard:\n  decisions: 5\n", "guard.decisions");
}

static void test_wrong_types_and_ranges(void **state)
{
    (void)state;
    assert_load_error("server:\n  threads: four\n",
                      "brigade.yaml:2: server.threads: expected an integer, got \"four\"");
    assert_load_error("server:\n  threads: \"4\"\n",
                      "brigade.yaml:2: server.threads: expected an integer, got a quoted string");
    assert_load_error("server:\n  threads: 1.5\n", "brigade.yaml:2: server.threads: expected an integer");
    assert_load_error("server:\n  threads: 5000\n",
                      "brigade.yaml:2: server.threads: must be between 0 and 1024 (got 5000)");
    assert_load_error("server:\n  max_choices: 0\n",
                      "brigade.yaml:2: server.max_choices: must be between 1 and 128 (got 0)");
    assert_load_error("server:\n  max_choices: 129\n",
                      "brigade.yaml:2: server.max_choices: must be between 1 and 128 (got 129)");
    assert_load_error("server: 5\n", "brigade.yaml:1: server: expected a mapping (key: value), got \"5\"");
    assert_load_error("server:\n  listen: [a, b]\n", "brigade.yaml:2: server.listen: expected a string, got a list");
    assert_load_error("server:\n  data_dir: \"\"\n", "brigade.yaml:2: server.data_dir: must not be empty");
    assert_load_error("server:\n  limits:\n    max_body_bytes: -1\n",
                      "brigade.yaml:3: server.limits.max_body_bytes: must not be negative (got -1)");
    assert_load_error("server:\n  limits:\n    idle_timeout_ms: 99999999999\n",
                      "brigade.yaml:3: server.limits.idle_timeout_ms: must be between 0 and 86400000");
    assert_load_error("providers: openai\n", "brigade.yaml:1: providers: expected a list");
    assert_load_error("providers: []\n", "brigade.yaml:1: providers: the list is empty");
    assert_load_error("models:\n  - name: a\n    provider: mock\n    input_usd_per_mtok: -0.5\n",
                      "brigade.yaml:4: models[0].input_usd_per_mtok: must not be negative (got -0.5)");
    assert_load_error("models:\n  - name: a\n    provider: mock\n    output_usd_per_mtok: cheap\n",
                      "brigade.yaml:4: models[0].output_usd_per_mtok: expected a number, got \"cheap\"");
    assert_load_error("models:\n  - name: a\n    provider: mock\n    output_usd_per_mtok: .nan\n",
                      "brigade.yaml:4: models[0].output_usd_per_mtok: expected a number");
    assert_load_error("models:\n  - name: a\n    provider: mock\n    max_output_tokens: 0\n",
                      "brigade.yaml:4: models[0].max_output_tokens: must be between 1 and");
    assert_load_error("models:\n  - name: a\n    provider: mock\n    max_output_tokens: 9000\n    context_window: 8000\n",
                      "brigade.yaml:4: models[0].max_output_tokens: max_output_tokens (9000) exceeds context_window (8000)");
    assert_load_error("models:\n  - provider: mock\n", "brigade.yaml:2: models[0]: missing required key \"name\"");
    assert_load_error("models:\n  - name: a b\n    provider: mock\n",
                      "brigade.yaml:2: models[0].name: \"a b\" must not contain spaces");
    assert_load_error("tiers:\n  - name: default\n    rpm: -5\n",
                      "brigade.yaml:3: tiers[0].rpm: must not be negative (got -5)");
    assert_load_error("tiers:\n  - name: default\n    daily_budget_usd: -1\n",
                      "brigade.yaml:3: tiers[0].daily_budget_usd: must not be negative");
    assert_load_error("providers:\n  - name: m\n    kind: mock\n    stream_chunks: 0\n",
                      "brigade.yaml:4: providers[0].stream_chunks: must be between 1 and 100000 (got 0)");
    assert_load_error("providers:\n  - name: m\n    kind: mock\n    timeout_ms: -3\n",
                      "brigade.yaml:4: providers[0].timeout_ms: must be between 1 and 86400000 (got -3)");
}

static void test_duplicates(void **state)
{
    (void)state;
    assert_load_error("providers:\n  - name: m\n    kind: mock\n  - name: m\n    kind: mock\n",
                      "brigade.yaml:4: providers[1].name: duplicate name \"m\" (also providers[0], line 2)");
    assert_load_error("models:\n  - name: a\n    provider: mock\n  - name: b\n    provider: mock\n"
                      "  - name: a\n    provider: mock\n",
                      "brigade.yaml:6: models[2].name: duplicate name \"a\" (also models[0], line 2)");
    assert_load_error("tiers:\n  - name: default\n  - name: default\n",
                      "brigade.yaml:3: tiers[1].name: duplicate name \"default\"");
}

static void test_model_missing_provider(void **state)
{
    (void)state;
    setenv("TEST_OPENAI_KEY", "sk-x", 1);
    /* The example of the spec, line for line: the bad reference is on line 14. */
    const char *y =
        "providers:\n"                              /* 1 */
        "  - name: openai\n"
        "    kind: openai\n"
        "    base_url: https://api.openai.com/v1\n"
        "    api_key_env: TEST_OPENAI_KEY\n"
        "  - name: mock\n"
        "    kind: mock\n"
        "models:\n"
        "  - name: gpt-4o-mini\n"
        "    provider: openai\n"                    /* 10 */
        "    input_usd_per_mtok: 0.15\n"
        "    output_usd_per_mtok: 0.60\n"
        "  - name: gpt-4o\n"
        "    provider: opnai\n";                    /* 14 */
    assert_load_error(y, "brigade.yaml:14: models[1].provider: no provider named \"opnai\" (known: openai, mock)");
    assert_load_error("models:\n  - name: a\n    provider: nope\n",
                      "brigade.yaml:3: models[0].provider: no provider named \"nope\" (known: mock)");
    assert_load_error("models:\n  - name: a\n", "brigade.yaml:2: models[0]: missing required key \"provider\"");
    unsetenv("TEST_OPENAI_KEY");
}

static void test_provider_rules(void **state)
{
    (void)state;
    assert_load_error("providers:\n  - name: o\n    kind: openai\n",
                      "brigade.yaml:3: providers[0]: kind openai needs base_url");
    assert_load_error("providers:\n  - name: o\n    kind: openai\n    base_url: ftp://example.com\n",
                      "brigade.yaml:4: providers[0].base_url: \"ftp://example.com\" must start with http:// or https://");
    assert_load_error("providers:\n  - name: o\n    kind: openai\n    base_url: api.openai.com/v1\n",
                      "brigade.yaml:4: providers[0].base_url: \"api.openai.com/v1\" must start with http://");
    assert_load_error("providers:\n  - name: o\n    kind: openai\n    base_url: https://\n",
                      "brigade.yaml:4: providers[0].base_url: \"https://\" has no host");
    assert_load_error("providers:\n  - name: o\n    kind: anthropic\n",
                      "brigade.yaml:3: providers[0]: kind anthropic needs base_url");
    assert_load_error("providers:\n  - name: o\n", "brigade.yaml:2: providers[0]: missing required key \"kind\"");
    assert_load_error("providers:\n  - name: m\n    kind: mock\n    base_url: http://x\n",
                      "brigade.yaml:4: providers[0].base_url: only for kind openai");
    assert_load_error("providers:\n  - name: o\n    kind: openai\n    base_url: http://x\n    latency_ms: 5\n",
                      "brigade.yaml:5: providers[0].latency_ms: only for kind mock");
    assert_load_error("providers:\n  - name: o\n    kind: openai\n    base_url: http://x\n    gullible: true\n",
                      "brigade.yaml:5: providers[0].gullible: only for kind mock");
    assert_load_error("providers:\n  - name: o\n    kind: openai\n    base_url: http://x\n    http_client: libcurl\n",
                      "brigade.yaml:5: providers[0].http_client: must be auto or curl, got \"libcurl\"");
    assert_load_error("providers:\n  - name: m\n    kind: mock\n    http_client: curl\n",
                      "brigade.yaml:4: providers[0].http_client: only for kind openai or anthropic");
    assert_load_error("providers:\n  - name: mock\n    kind: mock\n    gullible: sometimes\n",
                      "brigade.yaml:4: providers[0].gullible: expected true or false, got \"sometimes\"");
    setenv("TEST_K", "k", 1);
    assert_load_error("providers:\n  - name: o\n    kind: openai\n    base_url: http://x\n"
                      "    api_key: ${TEST_K}\n    api_key_env: TEST_K\n",
                      "brigade.yaml:6: providers[0].api_key_env: give either api_key or api_key_env, not both");
    unsetenv("TEST_K");
    /* Replacing providers without the mock one leaves the embedded mock models without a provider. */
    assert_load_error("providers:\n  - name: o\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\n",
                      "brigade.yaml:1: models: no models");
}

static void test_providers_replace_defaults(void **state)
{
    (void)state;
    brigade_config c;
    /* A mock provider of the same name keeps the embedded mock models. */
    int rc = load("providers:\n  - name: mock\n    kind: mock\n    latency_ms: 7\n"
                  "  - name: local\n    kind: openai\n    base_url: http://127.0.0.1:9000/v1\n", &c);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_providers, 2);
    assert_int_equal(c.n_models, 2);
    assert_ptr_equal(config_find_model(&c, "mock-small")->provider, &c.providers[0]);
    assert_int_equal(c.providers[0].mock_latency_ms, 7);
    assert_false(c.providers[0].mock_gullible);   /* an injected model only when asked */
    assert_null(c.providers[1].api_key); /* a local server needs no key */
    config_free(&c);
    rc = load("providers:\n  - name: mock\n    kind: mock\n    gullible: true\n", &c);
    assert_int_equal(rc, 0);
    assert_true(c.providers[0].mock_gullible);
    config_free(&c);
}

/* ------------------------------------------------------------------ */
/* anthropic providers, declared tools, agents                         */

static void test_default_agent(void **state)
{
    (void)state;
    brigade_config c;
    config_defaults(&c);
    assert_int_equal(c.n_tools, 0);
    assert_int_equal(c.n_agents, 1);
    const agent_cfg *a = config_find_agent(&c, "assistant");
    assert_non_null(a);
    assert_ptr_equal(a, &c.agents[0]);
    assert_string_equal(a->model_name, "mock-small");
    assert_ptr_equal(a->model, config_find_model(&c, "mock-small"));
    assert_non_null(a->description);
    assert_non_null(strstr(a->system_prompt, "Use the memory tool to remember"));
    assert_int_equal(a->n_tools, 2);
    assert_string_equal(a->tools[0], "memory");
    assert_string_equal(a->tools[1], "clock");
    assert_int_equal(a->n_tiers, 0);
    assert_int_equal(a->max_steps, 8);
    assert_int_equal(a->max_tool_calls, 16);
    assert_int_equal(a->max_wall_ms, 120000);
    assert_int_equal(a->max_output_tokens, 4096);
    assert_int_equal(a->context_tokens, 16000);  /* min(128000, 16000) */
    assert_int_equal(a->max_tool_output_bytes, 16384);
    assert_true(config_agent_allows_tier(a, "default"));
    assert_true(config_agent_allows_tier(a, "anything"));
    assert_null(config_find_agent(&c, "nobody"));
    assert_null(config_find_agent(&c, NULL));
    assert_null(config_find_tool(&c, "memory")); /* built-ins are not declared tools */
    config_free(&c);
    assert_null(c.agents);

    /* An empty file keeps it too, with the pointer into the loaded models. */
    assert_int_equal(load("", &c), 0);
    assert_int_equal(c.n_agents, 1);
    assert_ptr_equal(c.agents[0].model, config_find_model(&c, "mock-small"));
    config_free(&c);
}

static void test_anthropic_provider(void **state)
{
    (void)state;
    setenv("TEST_ANTHROPIC_KEY", "sk-ant-test", 1);
    brigade_config c;
    int rc = load("providers:\n"
                  "  - name: claude\n"
                  "    kind: anthropic\n"
                  "    base_url: https://api.anthropic.com/v1/\n"
                  "    api_key_env: TEST_ANTHROPIC_KEY\n"
                  "    max_retries: 5\n"
                  "    retry_backoff_ms: 250\n"
                  "  - name: claude2\n"
                  "    kind: anthropic\n"
                  "    base_url: http://127.0.0.1:9/v1\n"
                  "    anthropic_version: 2024-01-01\n"
                  "  - name: mock\n"
                  "    kind: mock\n"
                  "models:\n"
                  "  - name: sonnet\n"
                  "    provider: claude\n"
                  "    upstream_model: claude-sonnet-4-5\n", &c);
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    const provider_cfg *p = &c.providers[0];
    assert_int_equal(p->kind, PROVIDER_ANTHROPIC);
    assert_string_equal(p->base_url, "https://api.anthropic.com/v1");
    assert_string_equal(p->api_key, "sk-ant-test");
    assert_string_equal(p->anthropic_version, "2023-06-01"); /* default */
    assert_int_equal(p->max_retries, 5);
    assert_int_equal(p->retry_backoff_ms, 250);
    assert_null(c.providers[1].api_key);
    assert_string_equal(c.providers[1].anthropic_version, "2024-01-01");
    assert_int_equal(c.providers[1].max_retries, 2);        /* defaults */
    assert_int_equal(c.providers[1].retry_backoff_ms, 100);
    assert_null(c.providers[2].anthropic_version);          /* mock: none */
    assert_ptr_equal(config_find_model(&c, "sonnet")->provider, p);
    /* models replaced without mock-small: the embedded agent is gone */
    assert_int_equal(c.n_agents, 0);
    config_free(&c);

    assert_load_error("providers:\n  - name: a\n    kind: anthropic\n",
                      "brigade.yaml:3: providers[0]: kind anthropic needs base_url (e.g. https://api.anthropic.com/v1)");
    assert_load_error("providers:\n  - name: o\n    kind: openai\n    base_url: http://x\n    anthropic_version: 2023-06-01\n",
                      "brigade.yaml:5: providers[0].anthropic_version: only for kind anthropic, this provider is kind openai");
    assert_load_error("providers:\n  - name: m\n    kind: mock\n    anthropic_version: 2023-06-01\n",
                      "brigade.yaml:4: providers[0].anthropic_version: only for kind anthropic, this provider is kind mock");
    assert_load_error("providers:\n  - name: m\n    kind: mock\n    api_key: x\n",
                      "brigade.yaml:4: providers[0].api_key: only for kind openai or anthropic, this provider is kind mock");
    assert_load_error("providers:\n  - name: a\n    kind: anthropic\n    base_url: http://x\n    latency_ms: 1\n",
                      "brigade.yaml:5: providers[0].latency_ms: only for kind mock, this provider is kind anthropic");
    assert_load_error("providers:\n  - name: a\n    kind: anthropic\n    base_url: http://x\n    anthropic_version: \"2023 06\"\n",
                      "brigade.yaml:5: providers[0].anthropic_version: \"2023 06\" must not contain spaces");
    assert_load_error("providers:\n  - name: a\n    kind: anthropic\n    base_url: file:///x\n",
                      "brigade.yaml:4: providers[0].base_url: \"file:///x\" must start with http:// or https://");
    assert_load_error("providers:\n  - name: o\n    kind: claude\n",
                      "brigade.yaml:3: providers[0].kind: unknown provider kind \"claude\" (known: openai, anthropic, mock)");
    assert_load_error("providers:\n  - name: m\n    kind: mock\n    max_retries: 11\n",
                      "brigade.yaml:4: providers[0].max_retries: must be between 0 and 10 (got 11)");
    assert_load_error("providers:\n  - name: m\n    kind: mock\n    retry_backoff_ms: -1\n",
                      "brigade.yaml:4: providers[0].retry_backoff_ms: must not be negative (got -1)");
    assert_load_error("providers:\n  - name: m\n    kind: mock\n    retry_backoff_ms: 60001\n",
                      "brigade.yaml:4: providers[0].retry_backoff_ms: must be between 0 and 60000 (got 60001)");
    /* A literal key earns the same warning as for openai. */
    rc = load("providers:\n  - name: mock\n    kind: mock\n  - name: a\n    kind: anthropic\n"
              "    base_url: https://api.anthropic.com/v1\n    api_key: sk-ant-literal\n", &c);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_warnings, 1);
    assert_non_null(strstr(c.warnings[0], "brigade.yaml:7: providers[1].api_key: the key is written in the file"));
    config_free(&c);
    unsetenv("TEST_ANTHROPIC_KEY");
}

static const char agents_yaml[] =
    "tiers:\n"                                              /* 1 */
    "  - name: default\n"
    "  - name: pro\n"
    "tools:\n"
    "  - name: weather\n"                                   /* 5 */
    "    description: Current weather for a city\n"
    "    url: https://api.example.com/v1/weather/{city}?units=metric\n"
    "    method: get\n"
    "    headers:\n"
    "      Authorization: Bearer ${TEST_TOOL_TOKEN}\n"      /* 10 */
    "      X-Trace: brigade\n"
    "    parameters:\n"
    "      type: object\n"
    "      properties:\n"
    "        city: {type: string, description: \"City name, e.g. \\\"Oslo\\\"\"}\n" /* 15 */
    "        days: {type: integer, minimum: 1, maximum: 7}\n"
    "      required: [city]\n"
    "    timeout_ms: 5000\n"
    "    max_response_bytes: 65536\n"
    "  - name: note_add\n"                                  /* 20 */
    "    url: http://127.0.0.1:9000/notes\n"
    "agents:\n"
    "  - name: support.bot-1\n"
    "    description: Answers support questions\n"
    "    model: mock-large\n"                               /* 25 */
    "    system_prompt: |\n"
    "      You are the support bot.\n"
    "      Be brief.\n"
    "    tools: [memory, weather, clock, note_add]\n"
    "    tiers: [pro]\n"                                    /* 30 */
    "    max_steps: 20\n"
    "    max_tool_calls: 0\n"
    "    max_wall_ms: 1000\n"
    "    max_output_tokens: 1024\n"
    "    context_tokens: 32000\n"                           /* 35 */
    "    max_tool_output_bytes: 256\n"
    "  - name: plain\n"
    "    model: mock-small\n";

static void test_tools_and_agents_full(void **state)
{
    (void)state;
    setenv("TEST_TOOL_TOKEN", "tok-123", 1);
    brigade_config c;
    int rc = load(agents_yaml, &c);
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_warnings, 0);

    assert_int_equal(c.n_tools, 2);
    const tool_cfg *w = config_find_tool(&c, "weather");
    assert_non_null(w);
    assert_ptr_equal(w, &c.tools[0]);
    assert_string_equal(w->description, "Current weather for a city");
    assert_string_equal(w->url, "https://api.example.com/v1/weather/{city}?units=metric");
    assert_string_equal(w->method, "GET");  /* normalised to upper case */
    assert_int_equal(w->n_headers, 2);
    assert_string_equal(w->header_names[0], "Authorization");
    assert_string_equal(w->header_values[0], "Bearer tok-123");
    assert_string_equal(w->header_names[1], "X-Trace");
    assert_string_equal(w->header_values[1], "brigade");
    assert_string_equal(w->parameters_json,
                        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\","
                        "\"description\":\"City name, e.g. \\\"Oslo\\\"\"},\"days\":{\"type\":\"integer\","
                        "\"minimum\":1,\"maximum\":7}},\"required\":[\"city\"]}");
    assert_int_equal(w->timeout_ms, 5000);
    assert_int_equal(w->max_response_bytes, 65536);
    const tool_cfg *n = config_find_tool(&c, "note_add");
    assert_non_null(n);
    assert_string_equal(n->description, "");
    assert_string_equal(n->method, "POST");
    assert_int_equal(n->n_headers, 0);
    assert_string_equal(n->parameters_json, "{\"type\":\"object\"}");
    assert_int_equal(n->timeout_ms, 10000);
    assert_int_equal(n->max_response_bytes, 262144);
    assert_null(config_find_tool(&c, "clock"));

    /* agents replaced the embedded one */
    assert_int_equal(c.n_agents, 2);
    assert_null(config_find_agent(&c, "assistant"));
    const agent_cfg *a = config_find_agent(&c, "support.bot-1");
    assert_non_null(a);
    assert_string_equal(a->description, "Answers support questions");
    assert_string_equal(a->model_name, "mock-large");
    assert_ptr_equal(a->model, config_find_model(&c, "mock-large"));
    assert_string_equal(a->system_prompt, "You are the support bot.\nBe brief.\n");
    assert_int_equal(a->n_tools, 4);
    assert_string_equal(a->tools[0], "memory");
    assert_string_equal(a->tools[1], "weather");
    assert_string_equal(a->tools[2], "clock");
    assert_string_equal(a->tools[3], "note_add");
    assert_int_equal(a->n_tiers, 1);
    assert_string_equal(a->tiers[0], "pro");
    assert_int_equal(a->max_steps, 20);
    assert_int_equal(a->max_tool_calls, 0);
    assert_int_equal(a->max_wall_ms, 1000);
    assert_int_equal(a->max_output_tokens, 1024);
    assert_int_equal(a->context_tokens, 32000);
    assert_int_equal(a->max_tool_output_bytes, 256);
    assert_true(config_agent_allows_tier(a, "pro"));
    assert_false(config_agent_allows_tier(a, "default"));
    assert_false(config_agent_allows_tier(a, NULL));
    assert_false(config_agent_allows_tier(NULL, "pro"));

    const agent_cfg *p = config_find_agent(&c, "plain");
    assert_non_null(p);
    assert_string_equal(p->description, "");
    assert_null(p->system_prompt);
    assert_int_equal(p->n_tools, 0);
    assert_int_equal(p->n_tiers, 0);
    assert_true(config_agent_allows_tier(p, "default"));
    assert_int_equal(p->max_steps, 8);
    assert_int_equal(p->max_output_tokens, 4096);
    assert_int_equal(p->context_tokens, 16000);
    config_free(&c);
    assert_null(c.tools);
    unsetenv("TEST_TOOL_TOKEN");
}

/* A nested schema with every JSON type comes out as JSON that re-parses
 * with the same structure. */
static void test_parameters_json(void **state)
{
    (void)state;
    brigade_config c;
    int rc = load("tools:\n"
                  "  - name: search\n"
                  "    url: https://search.example/q\n"
                  "    parameters:\n"
                  "      type: object\n"
                  "      additionalProperties: false\n"
                  "      properties:\n"
                  "        query: {type: string, minLength: 1, pattern: \"^[a-z]+\\t$\"}\n"
                  "        limit: {type: integer, default: 10, maximum: 1.5e2, minimum: -3}\n"
                  "        exact: {type: boolean, default: True}\n"
                  "        filters:\n"
                  "          type: object\n"
                  "          properties:\n"
                  "            tags:\n"
                  "              type: array\n"
                  "              items: {type: string, enum: [\"a\", b, \"true\", \"42\", null]}\n"
                  "            since: {type: [string, \"null\"], default: ~}\n"
                  "            note: {description: 'Ünïcödé, \"quoted\" and \\ back'}\n"
                  "      required: [query]\n", &c);
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    const char *js = config_find_tool(&c, "search")->parameters_json;
    cJSON *root = cJSON_Parse(js);
    if (!root)
        print_error("not JSON: %s\n", js);
    assert_non_null(root);
    assert_true(cJSON_IsObject(root));
    assert_string_equal(cJSON_GetObjectItem(root, "type")->valuestring, "object");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(root, "additionalProperties")));
    cJSON *props = cJSON_GetObjectItem(root, "properties");
    assert_true(cJSON_IsObject(props));
    assert_int_equal(cJSON_GetArraySize(props), 4);
    cJSON *q = cJSON_GetObjectItem(props, "query");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(q, "minLength")));
    assert_int_equal(cJSON_GetObjectItem(q, "minLength")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(q, "pattern")->valuestring, "^[a-z]+\t$");
    cJSON *lim = cJSON_GetObjectItem(props, "limit");
    assert_int_equal(cJSON_GetObjectItem(lim, "default")->valueint, 10);
    assert_true(cJSON_GetObjectItem(lim, "maximum")->valuedouble == 150.0);
    assert_true(cJSON_GetObjectItem(lim, "minimum")->valuedouble == -3.0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(props, "exact"), "default")));
    cJSON *filters = cJSON_GetObjectItem(props, "filters");
    cJSON *fprops = cJSON_GetObjectItem(filters, "properties");
    cJSON *tags = cJSON_GetObjectItem(fprops, "tags");
    assert_string_equal(cJSON_GetObjectItem(tags, "type")->valuestring, "array");
    cJSON *en = cJSON_GetObjectItem(cJSON_GetObjectItem(tags, "items"), "enum");
    assert_true(cJSON_IsArray(en));
    assert_int_equal(cJSON_GetArraySize(en), 5);
    assert_string_equal(cJSON_GetArrayItem(en, 0)->valuestring, "a");
    assert_string_equal(cJSON_GetArrayItem(en, 1)->valuestring, "b");
    assert_true(cJSON_IsString(cJSON_GetArrayItem(en, 2))); /* quoted "true" stays a string */
    assert_string_equal(cJSON_GetArrayItem(en, 2)->valuestring, "true");
    assert_true(cJSON_IsString(cJSON_GetArrayItem(en, 3)));
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(en, 4)));
    cJSON *since = cJSON_GetObjectItem(fprops, "since");
    cJSON *st = cJSON_GetObjectItem(since, "type");
    assert_int_equal(cJSON_GetArraySize(st), 2);
    assert_string_equal(cJSON_GetArrayItem(st, 1)->valuestring, "null");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(since, "default")));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(fprops, "note"), "description")->valuestring,
                        "Ünïcödé, \"quoted\" and \\ back");
    cJSON *req = cJSON_GetObjectItem(root, "required");
    assert_int_equal(cJSON_GetArraySize(req), 1);
    assert_string_equal(cJSON_GetArrayItem(req, 0)->valuestring, "query");
    cJSON_Delete(root);
    config_free(&c);

    /* Anchors inside a schema are resolved before conversion. */
    rc = load("tools:\n  - name: t\n    url: http://127.0.0.1/x\n    parameters:\n      type: object\n"
              "      properties:\n        a: &s {type: string}\n        b: *s\n", &c);
    assert_int_equal(rc, 0);
    assert_string_equal(c.tools[0].parameters_json,
                        "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},\"b\":{\"type\":\"string\"}}}");
    config_free(&c);
}

static void test_tool_errors(void **state)
{
    (void)state;
#define T "tools:\n  - name: t\n    url: http://127.0.0.1/x\n"
    assert_load_error("tools:\n  - url: http://x\n", "brigade.yaml:2: tools[0]: missing required key \"name\"");
    assert_load_error("tools:\n  - name: t\n", "brigade.yaml:2: tools[0]: missing required key \"url\"");
    assert_load_error("tools:\n  - name: my tool\n    url: http://x\n",
                      "brigade.yaml:2: tools[0].name: \"my tool\" is not a valid tool name (1-64 characters of a-z A-Z 0-9 _-)");
    assert_load_error("tools:\n  - name: a.b\n    url: http://x\n", "brigade.yaml:2: tools[0].name: \"a.b\" is not a valid tool name");
    assert_load_error("tools:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    url: http://x\n",
                      "brigade.yaml:2: tools[0].name: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…\" is not a valid tool name");
    assert_load_error("tools:\n  - name: memory\n    url: http://x\n",
                      "brigade.yaml:2: tools[0].name: \"memory\" is a built-in tool; choose another name");
    assert_load_error("tools:\n  - name: clock\n    url: http://x\n", "brigade.yaml:2: tools[0].name: \"clock\" is a built-in tool");
    assert_load_error(T "  - name: t\n    url: http://y\n",
                      "brigade.yaml:4: tools[1].name: duplicate name \"t\" (also tools[0], line 2)");
    assert_load_error("tools: []\n", "brigade.yaml:1: tools: the list is empty");
    assert_load_error("tools:\n  - name: t\n    url: ftp://x/y\n",
                      "brigade.yaml:3: tools[0].url: \"ftp://x/y\" must start with http:// or https://");
    assert_load_error("tools:\n  - name: t\n    url: https:///path\n", "brigade.yaml:3: tools[0].url: \"https:///path\" has no host");
    assert_load_error("tools:\n  - name: t\n    url: http://{host}/x\n    parameters: {type: object, properties: {host: {}}}\n",
                      "brigade.yaml:3: tools[0].url: placeholders are only allowed after the host");
    assert_load_error("tools:\n  - name: t\n    url: http://x/{id}\n",
                      "brigade.yaml:3: tools[0].url: placeholder {id} is not a property of the tool's parameters");
    assert_load_error("tools:\n  - name: t\n    url: http://x/{id\n    parameters: {type: object, properties: {id: {}}}\n",
                      "brigade.yaml:3: tools[0].url: bad placeholder at \"{id\"");
    assert_load_error("tools:\n  - name: t\n    url: http://x/a}b\n", "brigade.yaml:3: tools[0].url: \"}\" without \"{\"");
    assert_load_error(T "    method: FETCH\n",
                      "brigade.yaml:4: tools[0].method: unknown method \"FETCH\" (known: GET, POST, PUT, PATCH, DELETE)");
    assert_load_error(T "    headers: [a, b]\n",
                      "brigade.yaml:4: tools[0].headers: expected a mapping (Header-Name: value), got a list");
    assert_load_error(T "    headers:\n      \"Bad Name\": x\n",
                      "brigade.yaml:5: tools[0].headers: \"Bad Name\" is not a valid header name");
    assert_load_error(T "    headers:\n      Content-Length: 5\n",
                      "brigade.yaml:5: tools[0].headers.Content-Length: this header is set by brigade");
    assert_load_error(T "    headers:\n      X-A: 1\n      x-a: 2\n",
                      "brigade.yaml:6: tools[0].headers.x-a: header given twice (also \"X-A\"");
    assert_load_error(T "    headers:\n      X-A: \"a\\r\\nEvil: 1\"\n",
                      "brigade.yaml:5: tools[0].headers.X-A: header values must not contain control characters");
    unsetenv("TEST_UNSET");
    assert_load_error(T "    headers:\n      Authorization: Bearer ${TEST_UNSET}\n",
                      "brigade.yaml:5: tools[0].headers.Authorization: environment variable TEST_UNSET is not set");
    assert_load_error(T "    headers:\n      X-A: {a: 1}\n",
                      "brigade.yaml:5: tools[0].headers.X-A: expected a string, got a mapping");
    assert_load_error(T "    parameters: [a]\n",
                      "brigade.yaml:4: tools[0].parameters: expected a mapping holding a JSON Schema (type: object, properties: …), got a list");
    assert_load_error(T "    parameters:\n      properties: {}\n",
                      "brigade.yaml:4: tools[0].parameters: needs \"type: object\"");
    assert_load_error(T "    parameters:\n      type: string\n",
                      "brigade.yaml:5: tools[0].parameters.type: must be \"object\" (a tool's arguments are a JSON object), got \"string\"");
    assert_load_error(T "    parameters:\n      type: object\n      properties: [a]\n",
                      "brigade.yaml:6: tools[0].parameters.properties: expected a mapping (argument name: schema), got a list");
    assert_load_error(T "    parameters:\n      type: object\n      properties:\n        n:\n          maximum: .inf\n",
                      "brigade.yaml:8: tools[0].parameters.properties.n.maximum: \".inf\" is a YAML number JSON cannot hold");
    assert_load_error(T "    parameters:\n      type: object\n      properties:\n        n: {enum: [1, 0x10]}\n",
                      "brigade.yaml:7: tools[0].parameters.properties.n.enum[1]: \"0x10\" is a YAML number JSON cannot hold");
    assert_load_error(T "    parameters:\n      type: object\n      x: 007\n",
                      "brigade.yaml:6: tools[0].parameters.x: \"007\" is a YAML number");
    assert_load_error(T "    timeout_ms: 0\n", "brigade.yaml:4: tools[0].timeout_ms: must be between 1 and 600000 (got 0)");
    assert_load_error(T "    timeout_ms: 600001\n", "brigade.yaml:4: tools[0].timeout_ms: must be between 1 and 600000");
    assert_load_error(T "    max_response_bytes: 16777217\n",
                      "brigade.yaml:4: tools[0].max_response_bytes: must be between 1 and 16777216 (got 16777217)");
    assert_load_error(T "    max_response_bytes: 0\n", "brigade.yaml:4: tools[0].max_response_bytes: must be between 1");
    assert_load_error(T "    headerz: {}\n", "brigade.yaml:4: tools[0].headerz: unknown key (did you mean \"headers\"?)");

    /* A literal credential header warns, like a literal api_key; a ${VAR} one does not. */
    brigade_config c;
    setenv("TEST_TOOL_TOKEN", "tok", 1);
    int rc = load(T "    headers:\n      Authorization: Bearer abc\n      X-Api-Key: ${TEST_TOOL_TOKEN}\n"
                    "      X-Other: plain\n", &c);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_warnings, 1);
    assert_non_null(strstr(c.warnings[0], "brigade.yaml:5: tools[0].headers.Authorization: the credential is written in the file"));
    config_free(&c);
    rc = load(T "    headers:\n      x-api-key: abc\n", &c);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_warnings, 1);
    config_free(&c);
    unsetenv("TEST_TOOL_TOKEN");
#undef T
}

/* `approval:` (never | always | {when: …}), approval_timeout_s,
 * auth_timeout_s on a tool; approval_by on an agent. */
/* Egress keys: a tool's allow_private_networks and max_redirects, the
 * top-level egress.allow_networks (docs/egress.md). */
static void test_egress_keys(void **state)
{
    (void)state;
    brigade_config c;
    const char *ok = "egress:\n  allow_networks: [10.20.0.0/16, \"fd00:1::/64\", 169.254.170.2]\n"
                     "tools:\n  - {name: a, url: \"http://127.0.0.1/x\", allow_private_networks: true, max_redirects: 2}\n"
                     "  - {name: b, url: \"http://h/x\"}\n";
    if (load(ok, &c) != 0) fail_msg("%s", err);
    assert_int_equal(c.n_egress_allow_nets, 3);
    assert_int_equal(c.egress_allow_nets[0].prefix, 16);
    assert_int_equal(c.egress_allow_nets[2].prefix, 32);
    assert_true(c.tools[0].allow_private_networks);
    assert_int_equal(c.tools[0].max_redirects, 2);
    assert_false(c.tools[1].allow_private_networks);
    assert_int_equal(c.tools[1].max_redirects, 0);
    config_free(&c);
    assert_load_error("egress:\n  allow_networks: [10.1.2.3/16]\n",
                      "brigade.yaml:2: egress.allow_networks[0]: \"10.1.2.3/16\" has bits set after its /16 prefix");
    assert_load_error("egress:\n  allow_networks: [intranet]\n",
                      "egress.allow_networks[0]: \"intranet\" is not an IPv4 or IPv6 address");
    assert_load_error("egress:\n  allow_networks: 10.0.0.0/8\n", "egress.allow_networks: expected a list");
    assert_load_error("egress:\n  allow: [10.0.0.0/8]\n", "egress");
    assert_load_error("tools:\n  - {name: a, url: \"http://h/x\", allow_private_networks: maybe}\n",
                      "tools[0].allow_private_networks");
    assert_load_error("tools:\n  - {name: a, url: \"http://h/x\", max_redirects: 11}\n", "tools[0].max_redirects");
    assert_load_error("credential_providers:\n  - {name: k, kind: oauth2, issuer: \"http://h\", client_id: c}\n"
                      "tools:\n  - {name: a, url: \"http://h/x\", max_redirects: 1, auth: {provider: k, header: X-Token}}\n",
                      "cannot follow redirects");
    const char *cp = "credential_providers:\n  - {name: k, kind: oauth2, issuer: \"http://127.0.0.1:1\", client_id: c, "
                     "allow_private_networks: true}\n";
    if (load(cp, &c) != 0) fail_msg("%s", err);
    assert_true(c.credential_providers[0].allow_private_networks);
    config_free(&c);
    assert_load_error("credential_providers:\n  - {name: k, kind: api_key, allow_private_networks: true}\n",
                      "is for kind oauth2");
}

static void test_tool_approval(void **state)
{
    (void)state;
#define T "tools:\n  - name: t\n    url: http://127.0.0.1/x\n"
    brigade_config c;
    assert_int_equal(load(T, &c), 0);
    assert_int_equal(c.tools[0].approval, TOOL_APPROVAL_NEVER);
    assert_int_equal(c.tools[0].approval_timeout_s, 3600);
    assert_int_equal(c.tools[0].auth_timeout_s, 600);
    config_free(&c);
    assert_int_equal(load(T "    approval: always\n    approval_timeout_s: 60\n    auth_timeout_s: 30\n", &c), 0);
    assert_int_equal(c.tools[0].approval, TOOL_APPROVAL_ALWAYS);
    assert_int_equal(c.tools[0].approval_timeout_s, 60);
    assert_int_equal(c.tools[0].auth_timeout_s, 30);
    config_free(&c);
    assert_int_equal(load(T "    approval:\n      when:\n        - {pointer: /amount, over: 100}\n"
                            "        - {pointer: /to, matches: \"*@external.com\"}\n"
                            "        - {pointer: /mode, equals: delete}\n"
                            "        - {pointer: /n, under: -1.5}\n"
                            "        - {pointer: /force, present: true}\n", &c), 0);
    assert_int_equal(c.tools[0].approval, TOOL_APPROVAL_WHEN);
    assert_int_equal(c.tools[0].n_approval_when, 5);
    assert_string_equal(c.tools[0].approval_when[0].pointer, "/amount");
    assert_int_equal(c.tools[0].approval_when[0].test, APPROVAL_TEST_OVER);
    assert_true(c.tools[0].approval_when[0].number == 100);
    assert_string_equal(c.tools[0].approval_when[1].text, "*@external.com");
    assert_int_equal(c.tools[0].approval_when[2].test, APPROVAL_TEST_EQUALS);
    assert_true(c.tools[0].approval_when[3].number == -1.5);
    assert_int_equal(c.tools[0].approval_when[4].test, APPROVAL_TEST_PRESENT);
    config_free(&c);
    /* one condition without a list */
    assert_int_equal(load(T "    approval: {when: {pointer: /a, over: 1}}\n", &c), 0);
    assert_int_equal(c.tools[0].n_approval_when, 1);
    config_free(&c);

    assert_load_error(T "    approval: sometimes\n",
                      "brigade.yaml:4: tools[0].approval: expected never, always or {when: …}, got \"sometimes\"");
    assert_load_error(T "    approval: {}\n", "brigade.yaml:4: tools[0].approval: missing required key \"when\"");
    assert_load_error(T "    approval: {when: []}\n", "tools[0].approval.when: give at least one condition");
    assert_load_error(T "    approval: {when: {over: 1}}\n", "missing required key \"pointer\"");
    assert_load_error(T "    approval: {when: {pointer: amount, over: 1}}\n",
                      "tools[0].approval.when.pointer: a JSON pointer starts with \"/\"");
    assert_load_error(T "    approval: {when: {pointer: /a}}\n", "give exactly one test");
    assert_load_error(T "    approval: {when: {pointer: /a, over: 1, under: 2}}\n", "give exactly one test");
    assert_load_error(T "    approval: {when: [{pointer: /a, over: x}]}\n", "tools[0].approval.when[0].over");
    assert_load_error(T "    approval: {when: {pointer: /a, present: false}}\n", "only \"present: true\" is a test");
    assert_load_error(T "    approval: {when: {pointer: /a, matchez: x}}\n", "unknown key");
    assert_load_error(T "    approval: {when: {pointer: /a, over: 1}, extra: 1}\n", "unknown key");
    char big[600];
    snprintf(big, sizeof big, T "    approval: {when: {pointer: /a, matches: \"%0300d\"}}\n", 0);
    assert_load_error(big, "at most 256 bytes");
    assert_load_error(T "    approval_timeout_s: 0\n", "tools[0].approval_timeout_s: must be between 1 and 2592000");
    assert_load_error(T "    auth_timeout_s: 86401\n", "tools[0].auth_timeout_s: must be between 1 and 86400");

    assert_int_equal(load(T "agents:\n  - {name: a, model: mock-small, tools: [t], approval_by: tenant_admin}\n"
                            "  - {name: b, model: mock-small, approval_by: user}\n"
                            "  - {name: c, model: mock-small}\n", &c), 0);
    assert_int_equal(c.agents[0].approval_by, APPROVAL_BY_TENANT_ADMIN);
    assert_int_equal(c.agents[1].approval_by, APPROVAL_BY_USER);
    assert_int_equal(c.agents[2].approval_by, APPROVAL_BY_ANY);
    config_free(&c);
    assert_load_error("agents:\n  - {name: a, model: mock-small, approval_by: admins}\n",
                      "agents[0].approval_by: expected user, tenant_admin or any, got \"admins\"");
#undef T
}

static void test_agent_errors(void **state)
{
    (void)state;
#define A "agents:\n  - name: a\n    model: mock-small\n"
    assert_load_error("agents:\n  - model: mock-small\n", "brigade.yaml:2: agents[0]: missing required key \"name\"");
    assert_load_error("agents:\n  - name: a\n", "brigade.yaml:2: agents[0]: missing required key \"model\"");
    assert_load_error("agents:\n  - name: a/b\n    model: mock-small\n",
                      "brigade.yaml:2: agents[0].name: \"a/b\" is not a valid agent name (1-64 characters of a-z A-Z 0-9 _.-)");
    assert_load_error(A "  - name: a\n    model: mock-large\n",
                      "brigade.yaml:4: agents[1].name: duplicate name \"a\" (also agents[0], line 2)");
    assert_load_error("agents:\n  - name: a\n    model: gpt-9\n",
                      "brigade.yaml:3: agents[0].model: no model named \"gpt-9\" (known: mock-small, mock-large)");
    assert_load_error("models:\n  - name: tiny\n    provider: mock\n    max_output_tokens: 10\n    context_window: 100\n"
                      "agents:\n  - name: a\n    model: tiny\n",
                      "brigade.yaml:8: agents[0].model: model \"tiny\" has a context_window of 100 tokens; an agent needs at least 256");
    assert_load_error(A "    tools: [memory, search]\n",
                      "brigade.yaml:4: agents[0].tools[1]: no tool named \"search\" (known: memory, clock)");
    assert_load_error("tools:\n  - name: web\n    url: http://127.0.0.1/\n" A "    tools:\n      - clock\n      - wbe\n",
                      "brigade.yaml:9: agents[0].tools[1]: no tool named \"wbe\" (known: memory, clock, web)");
    assert_load_error(A "    tools: [clock, clock]\n", "brigade.yaml:4: agents[0].tools[1]: \"clock\" is listed twice");
    {   /* at most 128 names: 129 refused before any is looked at */
        char many[4096] = A "    tools: [";
        for (int i = 0; i < 129; i++) snprintf(many + strlen(many), sizeof many - strlen(many), "%sx%d", i ? ", " : "", i);
        strcat(many, "]\n");
        assert_load_error(many, "brigade.yaml:4: agents[0].tools: at most 128 names (this list has 129)");
    }
    assert_load_error(A "    tools: memory\n", "brigade.yaml:4: agents[0].tools: expected a list");
    assert_load_error(A "    tools: [[memory]]\n", "brigade.yaml:4: agents[0].tools[0]: expected a string, got a list");
    assert_load_error(A "    tiers: [gold]\n", "brigade.yaml:4: agents[0].tiers[0]: no tier named \"gold\" (known: default)");
    assert_load_error(A "    tiers: []\n", "brigade.yaml:4: agents[0].tiers: the list is empty");
    assert_load_error(A "    max_steps: 0\n", "brigade.yaml:4: agents[0].max_steps: must be between 1 and 100 (got 0)");
    assert_load_error(A "    max_steps: 101\n", "brigade.yaml:4: agents[0].max_steps: must be between 1 and 100 (got 101)");
    assert_load_error(A "    max_tool_calls: 1001\n", "brigade.yaml:4: agents[0].max_tool_calls: must be between 0 and 1000 (got 1001)");
    assert_load_error(A "    max_tool_calls: -1\n", "brigade.yaml:4: agents[0].max_tool_calls: must not be negative (got -1)");
    assert_load_error(A "    max_wall_ms: 999\n", "brigade.yaml:4: agents[0].max_wall_ms: must be between 1000 and 3600000 (got 999)");
    assert_load_error(A "    max_wall_ms: 3600001\n", "brigade.yaml:4: agents[0].max_wall_ms: must be between 1000 and 3600000");
    assert_load_error(A "    max_output_tokens: 4097\n",
                      "brigade.yaml:4: agents[0].max_output_tokens: must be between 1 and 4096 (got 4097)");
    assert_load_error(A "    max_output_tokens: 0\n", "brigade.yaml:4: agents[0].max_output_tokens: must be between 1 and 4096");
    assert_load_error(A "    context_tokens: 255\n",
                      "brigade.yaml:4: agents[0].context_tokens: must be between 256 and 128000 (got 255)");
    assert_load_error(A "    context_tokens: 128001\n", "brigade.yaml:4: agents[0].context_tokens: must be between 256 and 128000");
    assert_load_error(A "    max_tool_output_bytes: 255\n",
                      "brigade.yaml:4: agents[0].max_tool_output_bytes: must be between 256 and 1048576 (got 255)");
    assert_load_error(A "    max_tool_output_bytes: 1048577\n", "brigade.yaml:4: agents[0].max_tool_output_bytes: must be between 256");
    assert_load_error(A "    system_prompt: [a]\n", "brigade.yaml:4: agents[0].system_prompt: expected a string, got a list");
    assert_load_error(A "    max_stepz: 3\n", "brigade.yaml:4: agents[0].max_stepz: unknown key (did you mean \"max_steps\"?)");
    assert_load_error("agents:\n  -\n", "brigade.yaml:1: agents[0]: expected a mapping (name, model, …), got nothing");

    /* system_prompt: at most 64 KiB */
    size_t big = 65537;
    char *y = malloc(big + 200);
    assert_non_null(y);
    int off = snprintf(y, 200, A "    system_prompt: ");
    memset(y + off, 'x', big);
    strcpy(y + off + big, "\n");
    assert_load_error(y, "brigade.yaml:4: agents[0].system_prompt: longer than 65536 bytes (65537)");
    y[off + big - 1] = '\n';   /* exactly 65536 loads */
    y[off + big] = '\0';
    brigade_config c;
    int rc = load(y, &c);
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(c.agents[0].system_prompt), 65536);
    config_free(&c);
    free(y);
#undef A
}

static void test_agent_replacement(void **state)
{
    (void)state;
    brigade_config c;
    /* models replaced, mock-small still there (redefined): the assistant
     * stays and takes its limits from the new definition. */
    int rc = load("models:\n  - name: mock-small\n    provider: mock\n    max_output_tokens: 500\n"
                  "    context_window: 8000\n", &c);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_agents, 1);
    const agent_cfg *a = config_find_agent(&c, "assistant");
    assert_non_null(a);
    assert_ptr_equal(a->model, config_find_model(&c, "mock-small"));
    assert_int_equal(a->max_output_tokens, 500);
    assert_int_equal(a->context_tokens, 8000);
    config_free(&c);

    /* models replaced without mock-small: no agents, and that is not an error. */
    rc = load("models:\n  - name: other\n    provider: mock\n", &c);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_agents, 0);
    assert_null(config_find_agent(&c, "assistant"));
    config_free(&c);

    /* The embedded models survive a replaced providers list, so does the agent. */
    rc = load("providers:\n  - name: mock\n    kind: mock\n", &c);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_agents, 1);
    assert_ptr_equal(c.agents[0].model, config_find_model(&c, "mock-small"));
    config_free(&c);

    /* agents given: they replace the default. */
    rc = load("agents:\n  - name: x\n    model: mock-large\n", &c);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_agents, 1);
    assert_null(config_find_agent(&c, "assistant"));
    assert_non_null(config_find_agent(&c, "x"));
    config_free(&c);

    /* an explicit empty list: no agents at all */
    rc = load("agents: []\n", &c);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_agents, 0);
    config_free(&c);

    /* tiers of an agent are checked against the replaced tiers list */
    rc = load("tiers:\n  - name: free\n  - name: pro\ndefault_tier: free\n"
              "agents:\n  - name: a\n    model: mock-small\n    tiers: [free, pro]\n", &c);
    assert_int_equal(rc, 0);
    assert_true(config_agent_allows_tier(&c.agents[0], "free"));
    assert_true(config_agent_allows_tier(&c.agents[0], "pro"));
    assert_false(config_agent_allows_tier(&c.agents[0], "default"));
    config_free(&c);
}

static void test_env_expansion(void **state)
{
    (void)state;
    brigade_config c;
    setenv("TEST_DIR", "/srv/data", 1);
    setenv("TEST_PORT_HOST", "0.0.0.0", 1);
    setenv("TEST_KEY", "sk-abc", 1);
    unsetenv("TEST_UNSET");
    int rc = load("server:\n  listen: ${TEST_PORT_HOST}:7000\n  data_dir: ${TEST_DIR}/brigade\n"
                  "  admin_token: ${TEST_UNSET:-fallback-token}\n"
                  "providers:\n  - name: o\n    kind: openai\n    base_url: http://127.0.0.1/v1\n"
                  "    api_key: \"${TEST_KEY}\"\n  - name: mock\n    kind: mock\n", &c);
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.listen_host, "0.0.0.0");
    assert_int_equal(c.listen_port, 7000);
    assert_string_equal(c.data_dir, "/srv/data/brigade");
    assert_string_equal(c.admin_token, "fallback-token");
    assert_string_equal(c.providers[0].api_key, "sk-abc");
    assert_int_equal(c.n_warnings, 0); /* values from ${…} are not "written in the file" */
    config_free(&c);
}

static void test_env_literals(void **state)
{
    (void)state;
    brigade_config c;
    /* "$$" stays, "$${" is an escaped "${", a lone "$" is literal. */
    int rc = load("server:\n  data_dir: /a$$b/$${HOME}/c$d\n", &c);
    assert_int_equal(rc, 0);
    assert_string_equal(c.data_dir, "/a$$b/${HOME}/c$d");
    config_free(&c);
}

static void test_env_errors(void **state)
{
    (void)state;
    unsetenv("TEST_UNSET");
    assert_load_error("server:\n  data_dir: ${TEST_UNSET}/x\n",
                      "brigade.yaml:2: server.data_dir: environment variable TEST_UNSET is not set");
    assert_load_error("server:\n  data_dir: ${TEST_UNSET\n",
                      "brigade.yaml:2: server.data_dir: unterminated ${TEST_UNSET");
    assert_load_error("server:\n  data_dir: ${1X}\n", "brigade.yaml:2: server.data_dir: bad variable reference");
    assert_load_error("providers:\n  - name: mock\n    kind: mock\n  - name: o\n    kind: openai\n"
                      "    base_url: http://x\n    api_key_env: TEST_UNSET\n",
                      "brigade.yaml:7: providers[1].api_key_env: environment variable TEST_UNSET is not set");
    setenv("TEST_EMPTY", "", 1);
    assert_load_error("server:\n  admin_token_env: TEST_EMPTY\n",
                      "brigade.yaml:2: server.admin_token_env: environment variable TEST_EMPTY is empty");
    unsetenv("TEST_EMPTY");
    assert_load_error("server:\n  admin_token_env: not-a-name\n",
                      "brigade.yaml:2: server.admin_token_env: \"not-a-name\" is not an environment variable name");
    assert_load_error("server:\n  admin_token: x\n  admin_token_env: HOME\n",
                      "brigade.yaml:3: server.admin_token_env: give either admin_token or admin_token_env");
}

static void test_api_key_env_and_literal_warning(void **state)
{
    (void)state;
    brigade_config c;
    setenv("TEST_OPENAI_KEY", "sk-env-123", 1);
    int rc = load("providers:\n  - name: mock\n    kind: mock\n"
                  "  - name: a\n    kind: openai\n    base_url: https://a.example/v1\n    api_key_env: TEST_OPENAI_KEY\n"
                  "  - name: b\n    kind: openai\n    base_url: https://b.example/v1\n    api_key: sk-literal\n", &c);
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.providers[1].api_key, "sk-env-123");
    assert_string_equal(c.providers[2].api_key, "sk-literal");
    assert_int_equal(c.n_warnings, 1);
    assert_non_null(strstr(c.warnings[0], "brigade.yaml:11: providers[2].api_key: the key is written in the file"));
    config_free(&c);
    unsetenv("TEST_OPENAI_KEY");
}

static void test_listen(void **state)
{
    (void)state;
    assert_load_error("server:\n  listen: localhost:80\n",
                      "brigade.yaml:2: server.listen: bad listen host \"localhost\"");
    assert_load_error("server:\n  listen: 127.0.0.1:99999\n",
                      "brigade.yaml:2: server.listen: bad port in \"127.0.0.1:99999\"");
    assert_load_error("server:\n  listen: 127.0.0.1\n", "brigade.yaml:2: server.listen: bad listen address");
    assert_load_error("server:\n  listen: ::1:80\n", "brigade.yaml:2: server.listen: bad listen address \"::1:80\" (put an IPv6");
    assert_load_error("server:\n  listen: 127.0.0.1:-1\n", "brigade.yaml:2: server.listen: bad port");
    assert_load_error("server:\n  listen: \"[::1]8080\"\n", "brigade.yaml:2: server.listen: bad listen address");
    assert_load_error("server:\n  listen: 127.0.0.1:80x\n", "brigade.yaml:2: server.listen: bad port");

    char *host = NULL, e[128];
    int port = -1;
    assert_int_equal(config_parse_listen("0.0.0.0:0", &host, &port, e, sizeof(e)), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 0);
    free(host);
    assert_int_equal(config_parse_listen("[::]:65535", &host, &port, e, sizeof(e)), 0);
    assert_string_equal(host, "::");
    assert_int_equal(port, 65535);
    free(host);
    assert_int_equal(config_parse_listen("1.2.3.4:65536", &host, &port, e, sizeof(e)), -1);
    assert_int_equal(config_parse_listen("", &host, &port, e, sizeof(e)), -1);
    assert_int_equal(config_parse_listen("[fe80::zz]:1", &host, &port, e, sizeof(e)), -1);
}

static void test_default_tier(void **state)
{
    (void)state;
    assert_load_error("default_tier: gold\n", "brigade.yaml:1: default_tier: no tier named \"gold\" (known: default)");
    assert_load_error("tiers:\n  - name: free\n  - name: pro\n",
                      "brigade.yaml:1: default_tier: no tier named \"default\" (known: free, pro)");
    brigade_config c;
    assert_int_equal(load("tiers:\n  - name: free\n  - name: pro\n    rpm: 100\ndefault_tier: pro\n", &c), 0);
    assert_string_equal(c.default_tier, "pro");
    assert_int_equal(config_find_tier(&c, c.default_tier)->rpm, 100);
    config_free(&c);
}

static void test_cost(void **state)
{
    (void)state;
    brigade_config c;
    config_defaults(&c);
    const model_cfg *s = config_find_model(&c, "mock-small");
    const model_cfg *l = config_find_model(&c, "mock-large");
    /* 1000 × 0.50 × 1000 + 500 × 1.50 × 1000 */
    assert_int_equal(config_cost_nusd(s, 1000, 500), 1250000);
    /* 1 M input tokens at 3 USD/Mtok = 3 USD = 3e9 nano-USD */
    assert_int_equal(config_cost_nusd(l, 1000000, 0), 3000000000LL);
    assert_int_equal(config_cost_nusd(l, 0, 1000000), 15000000000LL);
    assert_int_equal(config_cost_nusd(s, 0, 0), 0);
    assert_int_equal(config_cost_nusd(s, -5, -5), 0);
    assert_int_equal(config_cost_nusd(NULL, 10, 10), 0);
    model_cfg m = {.input_usd_per_mtok = 0.15, .output_usd_per_mtok = 0.60};
    assert_int_equal(config_cost_nusd(&m, 1, 1), 750);
    assert_int_equal(config_cost_nusd(&m, 7, 3), 7 * 150 + 3 * 600);
    /* rounding: 1.5 nano-USD per token → 1 token rounds up to 2, 3 tokens 4.5 → 5 */
    m.input_usd_per_mtok = 0.0015;
    m.output_usd_per_mtok = 0;
    assert_int_equal(config_cost_nusd(&m, 1, 0), 2);
    assert_int_equal(config_cost_nusd(&m, 3, 0), 5);
    m.input_usd_per_mtok = 0.0004; /* 0.4 nano-USD a token: summed before rounding */
    assert_int_equal(config_cost_nusd(&m, 1, 0), 0);
    assert_int_equal(config_cost_nusd(&m, 10, 0), 4);
    m.input_usd_per_mtok = 1e6;
    assert_int_equal(config_cost_nusd(&m, INT64_MAX, 0), INT64_MAX); /* saturates */
    config_free(&c);
}

static void test_load_file(void **state)
{
    (void)state;
    brigade_config c;
    char e[512];
    assert_int_equal(config_load_file("/nonexistent/brigade.yaml", &c, e, sizeof(e)), -1);
    assert_non_null(strstr(e, "/nonexistent/brigade.yaml: cannot open"));
    config_free(&c);

    char path[] = "/tmp/brigade-config-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *y = "server:\n  listen: 127.0.0.1:0\n  threads: -1\n";
    assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    assert_int_equal(config_load_file(path, &c, e, sizeof(e)), -1);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: server.threads: must not be negative (got -1)", path);
    assert_string_equal(e, want);
    config_free(&c);
    unlink(path);
}

static void test_example_file(void **state)
{
    (void)state;
    const char *key = getenv("OPENAI_API_KEY");
    if (!key || !*key)
        setenv("OPENAI_API_KEY", "sk-test-example", 1);
    key = getenv("ANTHROPIC_API_KEY");
    if (!key || !*key)
        setenv("ANTHROPIC_API_KEY", "sk-ant-test-example", 1);
    brigade_config c;
    char e[512];
    int rc = config_load_file(BRIGADE_SOURCE_ROOT "/examples/brigade.yaml", &c, e, sizeof(e));
    if (rc)
        print_error("%s\n", e);
    assert_int_equal(rc, 0);
    assert_non_null(c.source_path);
    assert_int_equal(c.n_warnings, 0);
    assert_non_null(config_find_model(&c, "gpt-4o-mini"));
    assert_non_null(config_find_model(&c, "mock-small"));
    assert_non_null(config_find_tier(&c, c.default_tier));
    assert_non_null(config_find_model(&c, "gpt-4o-mini")->provider->api_key);
    /* the new sections are shown too */
    const model_cfg *cl = config_find_model(&c, "claude-sonnet");
    assert_non_null(cl);
    assert_int_equal(cl->provider->kind, PROVIDER_ANTHROPIC);
    assert_string_equal(cl->provider->api_key, getenv("ANTHROPIC_API_KEY"));
    assert_string_equal(cl->provider->anthropic_version, "2023-06-01");
    const tool_cfg *w = config_find_tool(&c, "weather");
    assert_non_null(w);
    assert_string_equal(w->method, "GET");
    assert_int_equal(w->n_headers, 1);
    assert_non_null(strstr(w->parameters_json, "\"required\":[\"city\"]"));
    const agent_cfg *f = config_find_agent(&c, "forecaster");
    assert_non_null(f);
    assert_ptr_equal(f->model, cl);
    assert_true(config_agent_allows_tier(f, "pro"));
    assert_false(config_agent_allows_tier(f, "default"));
    assert_non_null(config_find_agent(&c, "assistant"));
    config_free(&c);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* the literal-key warning is expected noise */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_and_comment_only),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_not_a_mapping),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_not_utf8),
        cmocka_unit_test(test_anchors_and_flow_style),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types_and_ranges),
        cmocka_unit_test(test_guard_decisions),
        cmocka_unit_test(test_history_cache_mb),
        cmocka_unit_test(test_max_choices),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_model_missing_provider),
        cmocka_unit_test(test_provider_rules),
        cmocka_unit_test(test_providers_replace_defaults),
        cmocka_unit_test(test_default_agent),
        cmocka_unit_test(test_anthropic_provider),
        cmocka_unit_test(test_tools_and_agents_full),
        cmocka_unit_test(test_parameters_json),
        cmocka_unit_test(test_tool_errors),
        cmocka_unit_test(test_tool_approval),
        cmocka_unit_test(test_agent_errors),
        cmocka_unit_test(test_agent_replacement),
        cmocka_unit_test(test_env_expansion),
        cmocka_unit_test(test_env_literals),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_api_key_env_and_literal_warning),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_default_tier),
        cmocka_unit_test(test_egress_keys),
        cmocka_unit_test(test_cost),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_example_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
