/* config.c — the embedded defaults, lookups, cost arithmetic and freeing of
 * a brigade_config. The YAML loader lives in config_yaml.c, the conversion
 * of a tool's YAML parameter schema to JSON in config_json.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "util/log.h"

char *config_xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) {
        fprintf(stderr, "brigade: out of memory reading the configuration\n");
        abort();
    }
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *config_xstrdup(const char *s)
{
    return s ? config_xstrndup(s, strlen(s)) : NULL;
}

void *config_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "brigade: out of memory reading the configuration\n");
        abort();
    }
    return p;
}

void *config_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q) {
        fprintf(stderr, "brigade: out of memory reading the configuration\n");
        abort();
    }
    return q;
}

void config_add_warning(brigade_config *cfg, const char *msg)
{
    cfg->warnings = config_xrealloc(cfg->warnings, (cfg->n_warnings + 1) * sizeof(char *));
    cfg->warnings[cfg->n_warnings++] = config_xstrdup(msg);
    log_warn("config: %s", msg);
}

/* Provider values shared by the embedded mock provider and any provider the
 * file declares; the YAML loader starts each entry from these. */
void config_provider_defaults(provider_cfg *p, const char *name, provider_kind kind)
{
    memset(p, 0, sizeof(*p));
    p->name = config_xstrdup(name);
    p->kind = kind;
    p->timeout_ms = 120000;
    p->connect_timeout_ms = 5000;
    p->max_connections = 64;
    p->first_byte_timeout_ms = 30000;
    p->stream_idle_timeout_ms = 30000;
    p->max_retries = 2;
    p->retry_backoff_ms = 100;
    p->retry_backoff_max_ms = 2000;
    p->retry_budget_ratio = 0.2;
    p->retry_budget_min_per_s = 3;
    p->breaker_failures = 5;
    p->breaker_error_rate = 0.5;
    p->breaker_window_ms = 10000;
    p->breaker_min_calls = 10;
    p->breaker_open_ms = 5000;
    p->mock_latency_ms = 0;
    p->mock_stream_chunks = 8;
    p->mock_chunk_interval_ms = 0;
    /* The Messages API refuses a request without this header; the version
     * pins the wire format brigade speaks. */
    if (kind == PROVIDER_ANTHROPIC)
        p->anthropic_version = config_xstrdup("2023-06-01");
}

void config_agent_apply_model(agent_cfg *a, const model_cfg *m)
{
    a->model = m;
    a->max_output_tokens = m->max_output_tokens;
    /* A small working context by default: agents re-send their context on
     * every step, so the model's full window would multiply the cost. */
    a->context_tokens = m->context_window < 16000 ? m->context_window : 16000;
}

void config_agent_defaults(agent_cfg *a)
{
    memset(a, 0, sizeof(*a));
    a->description = config_xstrdup("");
    a->max_steps = 8;
    a->max_tool_calls = 16;
    a->max_wall_ms = 120000;
    a->max_tool_output_bytes = 16384;
    a->max_repeated_tool_calls = 3;
    a->degrade_threshold = 0.9;
    a->guard.user_input = GUARD_INPUT_FLAG;
    a->guard.tool_output = GUARD_OUTPUT_FLAG;
}

static void config_default_agent(brigade_config *cfg)
{
    static const char *const tools[] = {"memory", "clock"};
    agent_cfg *a = &cfg->agents[0];
    config_agent_defaults(a);
    a->name = config_xstrdup("assistant");
    free(a->description);
    a->description = config_xstrdup("A helpful assistant that remembers what you ask it to.");
    a->model_name = config_xstrdup("mock-small");
    a->system_prompt = config_xstrdup("You are a helpful assistant. Use the memory tool to "
                                      "remember what the user asks you to remember.");
    a->n_tools = 2;
    a->tools = config_xcalloc(2, sizeof(char *));
    for (size_t i = 0; i < 2; i++)
        a->tools[i] = config_xstrdup(tools[i]);
    config_agent_apply_model(a, config_find_model(cfg, "mock-small"));
}

static void config_model_init(model_cfg *m, const char *name, provider_cfg *prov,
                              double in_price, double out_price)
{
    memset(m, 0, sizeof(*m));
    m->name = config_xstrdup(name);
    m->provider_name = config_xstrdup(prov->name);
    m->provider = prov;
    m->upstream_model = config_xstrdup(name);
    m->input_usd_per_mtok = in_price;
    m->output_usd_per_mtok = out_price;
    m->max_output_tokens = 4096;
    m->context_window = 128000;
    m->fallback_on = FALLBACK_ALL;
}

void config_defaults(brigade_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_host = config_xstrdup("127.0.0.1");
    cfg->listen_port = 8080;
    cfg->data_dir = config_xstrdup("./brigade-data");
    cfg->threads = 0;          /* the http layer reads 0 as one loop per CPU */
    cfg->request_timeout_ms = 120000;
    cfg->max_request_timeout_ms = 600000;
    cfg->max_choices = 8;
    cfg->history_cache_mb = 64;
    /* limits stay zero: http_limits_apply_defaults fills each zero field. */

    const char *tok = getenv("BRIGADE_ADMIN_TOKEN");
    cfg->admin_token = (tok && *tok) ? config_xstrdup(tok) : NULL;

    cfg->n_providers = 1;
    cfg->providers = config_xcalloc(1, sizeof(provider_cfg));
    config_provider_defaults(&cfg->providers[0], "mock", PROVIDER_MOCK);

    cfg->n_models = 2;
    cfg->models = config_xcalloc(2, sizeof(model_cfg));
    config_model_init(&cfg->models[0], "mock-small", &cfg->providers[0], 0.50, 1.50);
    config_model_init(&cfg->models[1], "mock-large", &cfg->providers[0], 3.00, 15.00);

    /* One tier, unlimited everywhere: budgets are opt-in, and a fresh
     * install talking to the free mock provider has nothing to protect. */
    cfg->n_tiers = 1;
    cfg->tiers = config_xcalloc(1, sizeof(tier_cfg));
    cfg->tiers[0].name = config_xstrdup("default");
    cfg->tiers[0].weight = 1;
    config_tier_quota_defaults(&cfg->tiers[0]);
    cfg->default_tier = config_xstrdup("default");

    cfg->governance.enabled = true;
    cfg->console.enabled = true;
    cfg->console.session_ttl_s = 1800;
    cfg->console.max_sessions = 1024;
    cfg->store.pool_size = 8;
    cfg->governance.queue_per_user = 16;
    cfg->governance.queue_global = 1024;
    cfg->governance.redis.port = 6379;
    cfg->governance.redis.instances = 1;
    cfg->governance.redis.reservation_ttl_s = 900;
    cfg->governance.redis.timeout_ms = 500;

    cfg->guard.threshold_patterns = 0.5;
    cfg->guard.threshold_user = 0.5;
    cfg->guard.threshold_tool = 0.5;
    cfg->guard.threshold_remote = 0.5;
    cfg->guard.remote_timeout_ms = 2000;
    cfg->guard.decisions_retention_days = 90;
    cfg->guard.decisions_max_per_tenant = 100000;
    cfg->observability.traces_enabled = true;
    cfg->observability.traces_retention_hours = 72;
    cfg->observability.traces_sample_ratio = 1.0;
    cfg->observability.traces_max_spans = 1000000;
    cfg->observability.otlp_max_queue = 8192;
    cfg->observability.otlp_batch = 512;
    cfg->observability.otlp_interval_ms = 1000;
    cfg->observability.audit_checkpoint_every = 1000;
    cfg->observability.audit_checkpoint_interval_s = 60;
    cfg->observability.otlp_timeout_ms = 2000;
    cfg->observability.metrics_max_series = 1000;

    /* No declared tools: an HTTP tool needs a URL only the operator knows. */
    cfg->n_agents = 1;
    cfg->agents = config_xcalloc(1, sizeof(agent_cfg));
    config_default_agent(cfg);
}

void config_provider_free(provider_cfg *p)
{
    free(p->name);
    free(p->base_url);
    if (p->api_key) {
        /* A secret: do not leave it lying in freed heap memory. */
        explicit_bzero(p->api_key, strlen(p->api_key));
        free(p->api_key);
    }
    free(p->anthropic_version);
    memset(p, 0, sizeof(*p));
}

void config_model_free(model_cfg *m)
{
    free(m->name);
    free(m->provider_name);
    free(m->upstream_model);
    for (size_t i = 0; i < m->n_deployments; i++) {
        free(m->deployments[i].provider_name);
        free(m->deployments[i].upstream_model);
        free(m->deployments[i].name);
    }
    free(m->deployments);
    for (size_t i = 0; i < m->n_fallbacks; i++) free(m->fallbacks[i]);
    free(m->fallbacks);
    free(m->fallback_models);
    memset(m, 0, sizeof(*m));
}

void config_tier_quota_defaults(tier_cfg *t)
{
    t->quota_memory_bytes = CONFIG_QUOTA_MEMORY_BYTES;
    t->quota_memory_entries = CONFIG_QUOTA_MEMORY_ENTRIES;
    t->quota_sessions = CONFIG_QUOTA_SESSIONS;
    t->quota_messages_per_session = CONFIG_QUOTA_MESSAGES_PER_SESSION;
}

void config_tier_free(tier_cfg *t)
{
    free(t->name);
    memset(t, 0, sizeof(*t));
}

void config_tool_free(tool_cfg *t)
{
    free(t->name);
    free(t->description);
    free(t->url);
    free(t->method);
    for (size_t i = 0; i < t->n_headers; i++) {
        free(t->header_names ? t->header_names[i] : NULL);
        if (t->header_values && t->header_values[i]) {
            /* Header values are often credentials. */
            explicit_bzero(t->header_values[i], strlen(t->header_values[i]));
            free(t->header_values[i]);
        }
    }
    free(t->header_names);
    free(t->header_values);
    free(t->parameters_json);
    free(t->auth_provider);
    for (size_t i = 0; i < t->n_auth_scopes; i++) free(t->auth_scopes[i]);
    free(t->auth_scopes);
    free(t->auth_header);
    free(t->auth_format);
    for (size_t i = 0; i < t->n_approval_when; i++) {
        free(t->approval_when[i].pointer);
        free(t->approval_when[i].text);
    }
    free(t->approval_when);
    for (size_t i = 0; i < t->argc; i++) free(t->argv[i]);
    free(t->argv);
    for (size_t i = 0; i < t->n_env; i++) {
        free(t->env_names[i]);
        if (t->env_values && t->env_values[i]) {
            /* like header values, often secrets */
            explicit_bzero(t->env_values[i], strlen(t->env_values[i]));
            free(t->env_values[i]);
        }
    }
    free(t->env_names);
    free(t->env_values);
    memset(t, 0, sizeof(*t));
}

void config_agent_free(agent_cfg *a)
{
    free(a->name);
    free(a->description);
    free(a->model_name);
    free(a->system_prompt);
    free(a->degrade_model_name);
    for (size_t i = 0; i < a->n_tools; i++)
        free(a->tools[i]);
    free(a->tools);
    for (size_t i = 0; i < a->n_tiers; i++)
        free(a->tiers[i]);
    free(a->tiers);
    memset(a, 0, sizeof(*a));
}

void config_free(brigade_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->source_path);
    free(cfg->listen_host);
    free(cfg->data_dir);
    free(cfg->store.url);
    if (cfg->admin_token) {
        explicit_bzero(cfg->admin_token, strlen(cfg->admin_token));
        free(cfg->admin_token);
    }
    for (size_t i = 0; i < cfg->n_providers; i++)
        config_provider_free(&cfg->providers[i]);
    free(cfg->providers);
    for (size_t i = 0; i < cfg->n_models; i++)
        config_model_free(&cfg->models[i]);
    free(cfg->models);
    for (size_t i = 0; i < cfg->n_tiers; i++)
        config_tier_free(&cfg->tiers[i]);
    free(cfg->tiers);
    free(cfg->default_tier);
    free(cfg->governance.redis.host);
    free(cfg->governance.redis.key_prefix);
    for (size_t i = 0; i < cfg->n_tools; i++)
        config_tool_free(&cfg->tools[i]);
    free(cfg->tools);
    for (size_t i = 0; i < cfg->n_credential_providers; i++)
        config_credential_provider_free(&cfg->credential_providers[i]);
    free(cfg->credential_providers);
    free(cfg->egress_allow_nets);
    free(cfg->public_url);
    free(cfg->sandbox.bwrap);
    free(cfg->sandbox.helper);
    for (size_t i = 0; i < cfg->n_agents; i++)
        config_agent_free(&cfg->agents[i]);
    free(cfg->agents);
    for (size_t i = 0; i < cfg->n_mcp_servers; i++)
        config_mcp_server_free(&cfg->mcp_servers[i]);
    free(cfg->mcp_servers);
    free(cfg->observability.otlp_endpoint);
    free(cfg->guard.rules);
    free(cfg->guard.classifier);
    free(cfg->guard.remote_url);
    free(cfg->observability.service_name);
    for (size_t i = 0; i < cfg->n_warnings; i++)
        free(cfg->warnings[i]);
    free(cfg->warnings);
    memset(cfg, 0, sizeof(*cfg));
}

const model_cfg *config_find_model(const brigade_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_models; i++)
        if (strcmp(cfg->models[i].name, name) == 0)
            return &cfg->models[i];
    return NULL;
}

const credential_provider_cfg *config_find_credential_provider(const brigade_config *cfg,
                                                               const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_credential_providers; i++)
        if (strcmp(cfg->credential_providers[i].name, name) == 0)
            return &cfg->credential_providers[i];
    return NULL;
}

void config_credential_provider_free(credential_provider_cfg *p)
{
    free(p->name);
    free(p->issuer);
    free(p->authorization_endpoint);
    free(p->token_endpoint);
    free(p->revocation_endpoint);
    free(p->client_id);
    if (p->client_secret) {
        explicit_bzero(p->client_secret, strlen(p->client_secret));
        free(p->client_secret);
    }
    for (size_t i = 0; i < p->n_scopes; i++)
        free(p->scopes[i]);
    free(p->scopes);
    free(p->resource);
    memset(p, 0, sizeof(*p));
}

const tier_cfg *config_find_tier(const brigade_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_tiers; i++)
        if (strcmp(cfg->tiers[i].name, name) == 0)
            return &cfg->tiers[i];
    return NULL;
}

const agent_cfg *config_find_agent(const brigade_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_agents; i++)
        if (strcmp(cfg->agents[i].name, name) == 0)
            return &cfg->agents[i];
    return NULL;
}

const tool_cfg *config_find_tool(const brigade_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_tools; i++)
        if (strcmp(cfg->tools[i].name, name) == 0)
            return &cfg->tools[i];
    return NULL;
}

bool config_agent_allows_tier(const agent_cfg *a, const char *tier)
{
    if (!a)
        return false;
    if (a->n_tiers == 0)       /* no list: every tier */
        return true;
    if (!tier)
        return false;
    for (size_t i = 0; i < a->n_tiers; i++)
        if (strcmp(a->tiers[i], tier) == 0)
            return true;
    return false;
}

int64_t config_cost_nusd(const model_cfg *m, int64_t input_tokens, int64_t output_tokens)
{
    if (!m)
        return 0;
    if (input_tokens < 0)
        input_tokens = 0;
    if (output_tokens < 0)
        output_tokens = 0;
    /* USD per million tokens × 1e9 nano-USD / 1e6 tokens = × 1000 per token.
     * Summing before rounding keeps the total within half a nano-dollar of
     * the exact price; a double holds token counts × prices exactly enough
     * for any realistic call (well under 2^53 nano-USD = 9 million USD). */
    double nusd = (double)input_tokens * m->input_usd_per_mtok * 1000.0 +
                  (double)output_tokens * m->output_usd_per_mtok * 1000.0;
    if (!(nusd >= 0.0))     /* negative price cannot load, but NaN-safe */
        return 0;
    if (nusd >= 9.2e18)
        return INT64_MAX;
    return (int64_t)llround(nusd);
}
