/* agents.c — GET /v1/agents: the agents this user's tier may use, with
 * their model, tools and limits. From the configuration only (no store). */
#include "api/api.h"

void api_agents_list(api_ctx *ctx)
{
    const brigade_config *cfg = &ctx->env->cfg;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < cfg->n_agents; i++) {
        const agent_cfg *a = &cfg->agents[i];
        if (!config_agent_allows_tier(a, ctx->scope.tier)) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", a->name);
        cJSON_AddStringToObject(o, "object", "agent");
        if (a->description) cJSON_AddStringToObject(o, "description", a->description);
        else cJSON_AddNullToObject(o, "description");
        cJSON_AddStringToObject(o, "model", a->model_name);
        cJSON *tools = cJSON_AddArrayToObject(o, "tools");
        for (size_t k = 0; k < a->n_tools; k++) cJSON_AddItemToArray(tools, cJSON_CreateString(a->tools[k]));
        cJSON *lim = cJSON_AddObjectToObject(o, "limits");
        cJSON_AddNumberToObject(lim, "max_steps", a->max_steps);
        cJSON_AddNumberToObject(lim, "max_tool_calls", a->max_tool_calls);
        cJSON_AddNumberToObject(lim, "max_wall_ms", a->max_wall_ms);
        cJSON_AddNumberToObject(lim, "max_output_tokens", a->max_output_tokens);
        cJSON_AddNumberToObject(lim, "context_tokens", a->context_tokens);
        cJSON_AddItemToArray(arr, o);
    }
    api_reply(ctx, 200, api_json_list(arr, false));
    api_send(ctx);
}
