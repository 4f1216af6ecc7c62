/* config_agents.c — the `agents:` section: an agent's model, system
 * prompt, tools and tiers (resolved as they are read: agents come last),
 * its per-run limits and cost caps, and graceful degradation to a cheaper
 * model. */
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_load.h"

/* A list of names (agents[].tools, agents[].tiers): each a plain string,
 * none repeated, at most CONFIG_NAME_LIST_MAX of them (a tenant admin's
 * agent of thousands of tool names cost seconds of its runs' starts:
 * every run lists and matches them pairwise). `check` says whether a name
 * exists, filling `known` for the message when it does not. */
#define CONFIG_NAME_LIST_MAX 128
typedef int (*ld_name_check_fn)(const ld *l, const char *name, char *known, size_t knownlen);

static int ld_name_list(ld *l, const slot *s, const char *path, int allow_empty, const char *what,
                        ld_name_check_fn check, char ***out, size_t *out_n)
{
    size_t n = 0;
    if (ld_sequence(l, s->val, s->line, path, &n, allow_empty) < 0)
        return -1;
    if (n > CONFIG_NAME_LIST_MAX)
        return ld_fail(l, s->line, path, "at most %d names (this list has %zu)", CONFIG_NAME_LIST_MAX, n);
    *out = config_xcalloc(n, sizeof(char *));
    void *it = NULL;
    struct fy_node *item;
    char kp[200], known[512];
    while (*out_n < n && (item = fy_node_sequence_iterate(s->val, &it)) != NULL) {
        size_t i = *out_n;
        snprintf(kp, sizeof(kp), "%s[%zu]", path, i);
        slot is = {.key = path, .val = item, .line = config_node_line(item, s->line), .present = 1};
        char *name = NULL;
        if (ld_name(l, &is, kp, &name) < 0) {
            free(name);
            return -1;
        }
        (*out)[(*out_n)++] = name;
        for (size_t j = 0; j < i; j++)
            if (!strcmp((*out)[j], name))
                return ld_fail(l, is.line, kp, "\"%s\" is listed twice", name);
        if (!check(l, name, known, sizeof(known)))
            return ld_fail(l, is.line, kp, "no %s named \"%s\" (known: %s)", what, name, known);
    }
    return 0;
}

static int ld_check_tool_name(const ld *l, const char *name, char *known, size_t knownlen)
{
    const brigade_config *cfg = l->cfg;
    if (!strcmp(name, "memory") || !strcmp(name, "clock"))
        return 1;
    /* A tenant's agent: the tenant's own tools and MCP servers and the
     * catalogue's it has. */
    if (l->tool_known) {
        snprintf(known, knownlen, "memory, clock, this tenant's tools and the catalogue tools "
                 "enabled for it: GET /v1/tools; SERVER__TOOL of its MCP servers: GET /v1/mcp-servers");
        return l->tool_known(l->tool_known_arg, name);
    }
    /* An MCP server's tool (SERVER__TOOL, or SERVER__* for all it offers):
     * the server's tool list is only known once it runs. */
    if (config_mcp_tool_server(cfg, name, NULL))
        return 1;
    if (config_find_tool(cfg, name))
        return 1;
    size_t off = (size_t)snprintf(known, knownlen, "memory, clock");
    for (size_t i = 0; i < cfg->n_tools && off < knownlen; i++)
        off += (size_t)snprintf(known + off, knownlen - off, ", %s", cfg->tools[i].name);
    return 0;
}

static int ld_check_tier_name(const ld *l, const char *name, char *known, size_t knownlen)
{
    const brigade_config *cfg = l->cfg;
    if (config_find_tier(cfg, name))
        return 1;
    ld_known_names(known, knownlen, (const char *const *)&cfg->tiers[0].name, sizeof(tier_cfg), cfg->n_tiers);
    return 0;
}

enum { AG_NAME, AG_DESC, AG_MODEL, AG_PROMPT, AG_TOOLS, AG_TIERS, AG_STEPS, AG_TOOL_CALLS, AG_WALL,
       AG_MAX_OUT, AG_CONTEXT, AG_TOOL_OUT, AG_REPEAT, AG_RUN_COST, AG_SESSION_COST, AG_DEGRADE,
       AG_APPROVAL_BY, AG_TENANTS, AG_GUARD, AG__N };

enum { DG_MODEL, DG_THRESHOLD, DG__N };

/* agents[].degrade: {model, threshold} — the cheaper model to answer with
 * when the user's budget is nearly spent. */
static int ld_agent_degrade(ld *l, const slot *d, const char *path, agent_cfg *a)
{
    char kp[256], known[512];
    slot s[DG__N] = {[DG_MODEL] = {.key = "model"}, [DG_THRESHOLD] = {.key = "threshold"}};
    if (config_node_is_null(d->val))
        return 0;
    if (ld_collect(l, d->val, d->line, path, s, DG__N) < 0)
        return -1;
    if (!s[DG_MODEL].present)
        return ld_fail(l, d->line, path, "missing required key \"model\"");
    ld_path(kp, sizeof(kp), path, "model");
    if (ld_name(l, &s[DG_MODEL], kp, &a->degrade_model_name) < 0)
        return -1;
    a->degrade_model = config_find_model(l->cfg, a->degrade_model_name);
    if (!a->degrade_model) {
        ld_known_names(known, sizeof(known), (const char *const *)&l->cfg->models[0].name,
                       sizeof(model_cfg), l->cfg->n_models);
        return ld_fail(l, s[DG_MODEL].line, kp, "no model named \"%s\" (known: %s)",
                       a->degrade_model_name, known);
    }
    if (a->degrade_model->embedding)
        return ld_fail(l, s[DG_MODEL].line, kp, "model \"%s\" is an embedding model; an agent "
                       "needs a chat model", a->degrade_model_name);
    if (s[DG_THRESHOLD].present) {
        ld_path(kp, sizeof(kp), path, "threshold");
        if (ld_double(l, &s[DG_THRESHOLD], kp, 0.01, 1.0, &a->degrade_threshold) < 0)
            return -1;
    }
    return 0;
}

/* Agents are read after models, tiers and tools, so every reference is
 * resolved here, with the line of the entry that made it. */
static int ld_agent(ld *l, struct fy_node *n, int line, const char *path, agent_cfg *a, entry_lines *el)
{
    slot s[AG__N] = {
        [AG_NAME] = {.key = "name"},                 [AG_DESC] = {.key = "description"},
        [AG_MODEL] = {.key = "model"},               [AG_PROMPT] = {.key = "system_prompt"},
        [AG_TOOLS] = {.key = "tools"},               [AG_TIERS] = {.key = "tiers"},
        [AG_STEPS] = {.key = "max_steps"},           [AG_TOOL_CALLS] = {.key = "max_tool_calls"},
        [AG_WALL] = {.key = "max_wall_ms"},          [AG_MAX_OUT] = {.key = "max_output_tokens"},
        [AG_CONTEXT] = {.key = "context_tokens"},    [AG_TOOL_OUT] = {.key = "max_tool_output_bytes"},
        [AG_REPEAT] = {.key = "max_repeated_tool_calls"},
        [AG_RUN_COST] = {.key = "max_cost_usd_per_run"},
        [AG_SESSION_COST] = {.key = "max_cost_usd_per_session"},
        [AG_DEGRADE] = {.key = "degrade"},
        [AG_APPROVAL_BY] = {.key = "approval_by"},     [AG_TENANTS] = {.key = "tenants"},
        [AG_GUARD] = {.key = "guard"},
    };
    config_agent_defaults(a);
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, model, …), got nothing");
    if (ld_collect(l, n, line, path, s, AG__N) < 0)
        return -1;
    char kp[160], known[512];
    if (!s[AG_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    if (ld_ident(l, &s[AG_NAME], kp, &a->name, "_.-", "agent") < 0)
        return -1;
    el->name = s[AG_NAME].line;
    if (s[AG_DESC].present) {
        ld_path(kp, sizeof(kp), path, "description");
        if (ld_string(l, &s[AG_DESC], kp, &a->description, NULL) < 0)
            return -1;
    }

    if (!s[AG_MODEL].present)
        return ld_fail(l, line, path, "missing required key \"model\"");
    ld_path(kp, sizeof(kp), path, "model");
    if (ld_name(l, &s[AG_MODEL], kp, &a->model_name) < 0)
        return -1;
    el->ref = s[AG_MODEL].line;
    const model_cfg *m = config_find_model(l->cfg, a->model_name);
    if (!m) {
        ld_known_names(known, sizeof(known), (const char *const *)&l->cfg->models[0].name,
                       sizeof(model_cfg), l->cfg->n_models);
        return ld_fail(l, s[AG_MODEL].line, kp, "no model named \"%s\" (known: %s)", a->model_name, known);
    }
    if (m->embedding)
        return ld_fail(l, s[AG_MODEL].line, kp, "model \"%s\" is an embedding model; an agent "
                       "needs a chat model", m->name);
    if (m->context_window < CONFIG_AGENT_MIN_CONTEXT)
        return ld_fail(l, s[AG_MODEL].line, kp, "model \"%s\" has a context_window of %u tokens; "
                       "an agent needs at least %d", m->name, m->context_window, CONFIG_AGENT_MIN_CONTEXT);
    config_agent_apply_model(a, m);

    if (s[AG_PROMPT].present) {
        ld_path(kp, sizeof(kp), path, "system_prompt");
        if (ld_string(l, &s[AG_PROMPT], kp, &a->system_prompt, NULL) < 0)
            return -1;
        size_t pl = strlen(a->system_prompt);
        if (pl > 65536)
            return ld_fail(l, s[AG_PROMPT].line, kp, "longer than 65536 bytes (%zu)", pl);
        if (pl == 0) {         /* an empty prompt is no prompt */
            free(a->system_prompt);
            a->system_prompt = NULL;
        }
    }
    /* `tools: []` states "no tools" explicitly; `tiers: []` would read as
     * "no tier may use it", which an agent nobody can use never means. */
    if (s[AG_TOOLS].present) {
        ld_path(kp, sizeof(kp), path, "tools");
        if (ld_name_list(l, &s[AG_TOOLS], kp, 1, "tool", ld_check_tool_name, &a->tools, &a->n_tools) < 0)
            return -1;
    }
    if (s[AG_TIERS].present) {
        ld_path(kp, sizeof(kp), path, "tiers");
        if (ld_name_list(l, &s[AG_TIERS], kp, 0, "tier", ld_check_tier_name, &a->tiers, &a->n_tiers) < 0)
            return -1;
    }
#define AG_U32(idx, field, min, max) \
    if (s[idx].present) { ld_path(kp, sizeof(kp), path, s[idx].key); \
        if (ld_u32(l, &s[idx], kp, (min), (max), &a->field) < 0) return -1; }
    AG_U32(AG_STEPS, max_steps, 1, 100)
    AG_U32(AG_TOOL_CALLS, max_tool_calls, 0, 1000)
    AG_U32(AG_WALL, max_wall_ms, 1000, 3600000)
    AG_U32(AG_MAX_OUT, max_output_tokens, 1, m->max_output_tokens)
    AG_U32(AG_CONTEXT, context_tokens, CONFIG_AGENT_MIN_CONTEXT, m->context_window)
    AG_U32(AG_TOOL_OUT, max_tool_output_bytes, 256, 1 << 20)
    AG_U32(AG_REPEAT, max_repeated_tool_calls, 1, 1000)
#undef AG_U32
#define AG_USD(idx, field) \
    if (s[idx].present) { ld_path(kp, sizeof(kp), path, s[idx].key); \
        if (ld_double(l, &s[idx], kp, 0, 1e6, &a->field) < 0) return -1; }
    AG_USD(AG_RUN_COST, max_cost_usd_per_run)
    AG_USD(AG_SESSION_COST, max_cost_usd_per_session)
#undef AG_USD
    if (s[AG_DEGRADE].present) {
        ld_path(kp, sizeof(kp), path, "degrade");
        if (ld_agent_degrade(l, &s[AG_DEGRADE], kp, a) < 0)
            return -1;
    }
    if (s[AG_APPROVAL_BY].present) {
        ld_path(kp, sizeof(kp), path, "approval_by");
        if (ld_agent_approval_by(l, &s[AG_APPROVAL_BY], kp, a) < 0)
            return -1;
    }
    if (s[AG_TENANTS].present) {
        ld_path(kp, sizeof(kp), path, "tenants");
        if (ld_tenants(l, &s[AG_TENANTS], kp, &a->tenants_enable) < 0)
            return -1;
    }
    if (s[AG_GUARD].present) {
        ld_path(kp, sizeof(kp), path, "guard");
        if (ld_agent_guard(l, &s[AG_GUARD], kp, &a->guard) < 0)
            return -1;
    }
    return 0;
}


int ld_agent_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_agent(l, n, line, path, e, el);
}
void ld_agent_free(void *e) { config_agent_free(e); }
