/* fuzz_config_yaml.c — libFuzzer target for the YAML configuration loader
 * (src/config/): config_load_string on arbitrary bytes. The file is the
 * operator's, but it is parsed before anything else runs, often generated
 * by tooling, and its error messages quote it; a loader that crashes or
 * leaks on odd input would take the whole server with it.
 *
 * Invariants (abort() when broken; leaks are caught by LeakSanitizer):
 *   - a refused input comes with a message, and the config is left zeroed;
 *   - loading is deterministic: the same bytes give the same verdict, the
 *     same message, and the same list sizes;
 *   - a loaded config is whole: every name set, every model resolved to a
 *     provider and its deployments (if any) to theirs, every fallback and agent
 *     model resolved and findable by name, the default tier exists, every
 *     agent's tool is a built-in or a declared tool, names are unique per
 *     list, and limits that divide or bound (max_choices, tier
 *     weights, degrade_threshold, sample ratio) are in range. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/log.h"

static void check_unique(const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) == 0) abort();
}

#define NAMES_OF(list, n, out)                                                     \
    do {                                                                           \
        for (size_t k_ = 0; k_ < (n); k_++) {                                      \
            if (!(list)[k_].name || !(list)[k_].name[0]) abort();                  \
            (out)[k_] = (list)[k_].name;                                           \
        }                                                                          \
    } while (0)

static void check_loaded(const brigade_config *c)
{
    if (!c->listen_host || !c->data_dir || !c->default_tier) abort();
    if (c->listen_port < 0 || c->listen_port > 65535) abort();
    if (c->max_choices == 0) abort();
    if (!config_find_tier(c, c->default_tier)) abort();

    size_t most = c->n_providers + c->n_models + c->n_tiers + c->n_tools + c->n_agents + 1;
    const char **names = malloc(most * sizeof *names);
    if (!names) abort();
    NAMES_OF(c->providers, c->n_providers, names);
    check_unique(names, c->n_providers);
    NAMES_OF(c->models, c->n_models, names);
    check_unique(names, c->n_models);
    NAMES_OF(c->tiers, c->n_tiers, names);
    check_unique(names, c->n_tiers);
    NAMES_OF(c->tools, c->n_tools, names);
    check_unique(names, c->n_tools);
    NAMES_OF(c->agents, c->n_agents, names);
    check_unique(names, c->n_agents);
    free(names);

    for (size_t i = 0; i < c->n_providers; i++) {
        const provider_cfg *p = &c->providers[i];
        if (p->kind != PROVIDER_MOCK && p->kind != PROVIDER_OPENAI && p->kind != PROVIDER_ANTHROPIC) abort();
        if (p->kind != PROVIDER_MOCK && !p->base_url) abort();
    }
    for (size_t i = 0; i < c->n_models; i++) {
        const model_cfg *m = &c->models[i];
        if (!m->provider || !m->upstream_model) abort();   /* no deployments: the one provider/upstream_model */
        if (!(m->input_usd_per_mtok >= 0) || !(m->output_usd_per_mtok >= 0)) abort();
        if (config_find_model(c, m->name) != m) abort();
        for (size_t d = 0; d < m->n_deployments; d++) {
            const deployment_cfg *dep = &m->deployments[d];
            if (!dep->provider || !dep->upstream_model || !dep->name) abort();
            if (dep->provider < c->providers || dep->provider >= c->providers + c->n_providers) abort();
        }
        if (m->n_fallbacks && !m->fallback_models) abort();
        for (size_t f = 0; f < m->n_fallbacks; f++)
            if (!m->fallback_models[f] || m->fallback_models[f] == m) abort();
        /* A price table must give a defined cost for any token counts. */
        if (config_cost_nusd(m, INT64_MAX, INT64_MAX) < 0) abort();
    }
    for (size_t i = 0; i < c->n_tiers; i++) {
        const tier_cfg *t = &c->tiers[i];
        if (t->weight == 0) abort();
        if (t->rpm < 0 || t->tpm < 0 || t->max_concurrent_runs < 0) abort();
        if (!(t->daily_budget_usd >= 0) || !(t->monthly_budget_usd >= 0)) abort();
    }
    for (size_t i = 0; i < c->n_tools; i++) {
        const tool_cfg *t = &c->tools[i];
        if (!t->parameters_json) abort();
        if (t->kind == TOOL_CFG_COMMAND) {
            /* a program and nothing of an HTTP tool */
            if (t->argc == 0 || !t->argv || !t->argv[0] || !t->argv[0][0] || t->url || t->method) abort();
            if (t->n_env && (!t->env_names || !t->env_values)) abort();
        } else if (!t->url || !t->method || t->argc) {
            abort();
        }
        if (config_find_tool(c, t->name) != t) abort();
    }
    for (size_t i = 0; i < c->n_agents; i++) {
        const agent_cfg *a = &c->agents[i];
        if (!a->model || config_find_model(c, a->model_name) != a->model) abort();
        if (a->degrade_model_name && !a->degrade_model) abort();
        if (a->degrade_model && !(a->degrade_threshold > 0 && a->degrade_threshold <= 1)) abort();
        if (a->max_steps == 0) abort();
        for (size_t k = 0; k < a->n_tools; k++)
            if (strcmp(a->tools[k], "memory") != 0 && strcmp(a->tools[k], "clock") != 0 &&
                !config_find_tool(c, a->tools[k]))
                abort();
        if (config_find_agent(c, a->name) != a) abort();
    }
    const obs_cfg *o = &c->observability;
    if (!(o->traces_sample_ratio >= 0 && o->traces_sample_ratio <= 1)) abort();
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) return 0;
    /* ${VAR} in the input reads the environment: keep it the same for every run. */
    static int env_set;
    if (!env_set) {
        setenv("FUZZ_KEY", "sk-fuzz", 1);
        unsetenv("FUZZ_UNSET");
        log_set_level(LOG_ERROR);   /* the loader's warnings would flood the run */
        env_set = 1;
    }
    brigade_config a, b;
    char ea[512] = "", eb[512] = "";
    int ra = config_load_string("fuzz.yaml", (const char *)data, size, &a, ea, sizeof ea);
    int rb = config_load_string("fuzz.yaml", (const char *)data, size, &b, eb, sizeof eb);
    if (ra != rb || strcmp(ea, eb) != 0) abort();
    if (ra != 0) {
        if (!ea[0]) abort();
        if (!all_zero(&a, sizeof a)) abort();
    } else {
        if (a.n_providers != b.n_providers || a.n_models != b.n_models || a.n_tiers != b.n_tiers ||
            a.n_tools != b.n_tools || a.n_agents != b.n_agents || a.n_warnings != b.n_warnings)
            abort();
        check_loaded(&a);
    }
    config_free(&a);
    config_free(&b);
    return 0;
}
