/* agents.c — GET /v1/agents. A user sees the agents it may use: the
 * catalogue's its tenant has (every `tenants: all` entry, and the
 * `tenants: enable` ones its admin enabled) and the tenant's own, each
 * only if the user's tier may use it, with their model, tools and limits.
 * A tenant admin sees the definitions instead (tenant_defs.c). */
#include <string.h>

#include "api/api.h"

void api_agents_list(api_ctx *ctx)
{
    if (ctx->scope.role == SCOPE_TENANT_ADMIN) {
        api_agents_admin_list(ctx);
        return;
    }
    const brigade_config *cfg = &ctx->env->cfg;
    tools_tenant tt;
    def_rec *rows = NULL;
    size_t n = 0;
    if (tools_tenant_load(ctx->env->store, &ctx->scope, cfg, &tt) != TOOLS_TENANT_OK) {
        api_fail_store(ctx, STORE_ERROR, "agent");
        return;
    }
    store_status st = store_def_list(ctx->env->store, &ctx->scope, STORE_DEF_AGENT, &rows, &n);
    if (st != STORE_OK) {
        tools_tenant_free(&tt);
        api_fail_store(ctx, st, "agent");
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < cfg->n_agents; i++) {
        const def_rec *row = NULL;
        for (size_t j = 0; j < n; j++)
            if (!strcmp(rows[j].name, cfg->agents[i].name)) row = &rows[j];
        if (row && row->body) continue;       /* the tenant's own of that name is listed below */
        const agent_cfg *a = tools_tenant_catalogue_agent(cfg, cfg->agents[i].name, row != NULL);
        if (a && config_agent_allows_tier(a, ctx->scope.tier)) cJSON_AddItemToArray(arr, api_json_agent(a));
    }
    for (size_t j = 0; j < n; j++) {
        if (!rows[j].body) continue;
        agent_cfg a;
        char why[400];
        /* one that no longer loads is not offered (its admin sees why) */
        if (config_agent_from_json(cfg, rows[j].body, strlen(rows[j].body), tools_tenant_knows, &tt, &a,
                                   why, sizeof why) < 0)
            continue;
        if (config_agent_allows_tier(&a, ctx->scope.tier)) cJSON_AddItemToArray(arr, api_json_agent(&a));
        config_agent_free(&a);
    }
    store_free_defs(rows, n);
    tools_tenant_free(&tt);
    api_reply(ctx, 200, api_json_list(arr, false));
}
