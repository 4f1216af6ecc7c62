/* tool_use_map.c — Anthropic tool_use ⇄ OpenAI tool call (see
 * tool_use_map.h). */
#include "util/tool_use_map.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *map_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

cJSON *tool_use_to_call(const cJSON *block, bool input_required, size_t *args_len)
{
    const char *id = map_str(block, "id"), *name = map_str(block, "name");
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(block, "input");
    if (!id || !name || (input ? !cJSON_IsObject(input) : input_required)) return NULL;
    char *args = input ? cJSON_PrintUnformatted(input) : NULL;
    cJSON *tc = cJSON_CreateObject();
    cJSON_AddStringToObject(tc, "id", id);
    cJSON_AddStringToObject(tc, "type", "function");
    cJSON *fn = cJSON_AddObjectToObject(tc, "function");
    cJSON_AddStringToObject(fn, "name", name);
    cJSON_AddStringToObject(fn, "arguments", args ? args : "{}");
    if (args_len) *args_len = args ? strlen(args) : 2;
    free(args);
    return tc;
}

/* The input object of a call's arguments text (see tool_call_to_use). */
static cJSON *map_tool_input(const char *args)
{
    if (!args) return cJSON_CreateObject();
    const char *p = args;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (!*p) return cJSON_CreateObject();
    cJSON *j = cJSON_Parse(args);
    if (cJSON_IsObject(j)) return j;
    cJSON_Delete(j);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "arguments", args);
    return o;
}

cJSON *tool_call_to_use(const cJSON *call)
{
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
    const char *id = map_str(call, "id"), *name = map_str(fn, "name");
    if (!id || !name) return NULL;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "tool_use");
    cJSON_AddStringToObject(b, "id", id);
    cJSON_AddStringToObject(b, "name", name);
    cJSON_AddItemToObject(b, "input", map_tool_input(map_str(fn, "arguments")));
    return b;
}

const char *tool_use_stop_reason(const char *finish_reason)
{
    if (!finish_reason) return "end_turn";
    if (strcmp(finish_reason, "length") == 0) return "max_tokens";
    if (strcmp(finish_reason, "tool_calls") == 0 || strcmp(finish_reason, "function_call") == 0)
        return "tool_use";
    if (strcmp(finish_reason, "content_filter") == 0) return "refusal";
    return "end_turn";
}

const char *tool_use_finish_reason(const char *stop_reason)
{
    if (!stop_reason) return "stop";
    if (strcmp(stop_reason, "max_tokens") == 0) return "length";
    if (strcmp(stop_reason, "tool_use") == 0) return "tool_calls";
    if (strcmp(stop_reason, "refusal") == 0) return "content_filter";
    /* end_turn, stop_sequence, pause_turn and anything new: a normal stop. */
    return "stop";
}
