/* tenant_defs.c — a tenant's tools, agents and MCP servers through the
 * API: GET|POST /v1/tools, GET|PATCH|DELETE /v1/tools/{name}, the same for
 * /v1/agents (the tenant admin's side; a user's GET /v1/agents is in
 * agents.c) and /v1/mcp-servers. One set of handlers serves both kinds through a small table of
 * what differs (def_kind). A definition is validated by the config readers
 * (config_tool_from_json, config_agent_from_json,
 * config_mcp_server_from_json: the rules of the config file) and stored as the JSON the admin sent; `{name, catalogue: true}`
 * enables an entry of the server's catalogue for the tenant instead.
 * Every store call is scoped to the caller's tenant: another tenant's
 * names are simply not there (404). Changes are audited (tool.create,
 * tool.update, tool.delete, tool.enable, tool.disable, agent.…,
 * mcp_server.…). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "obs/audit.h"

typedef struct def_kind {
    store_def_kind kind;
    const char    *what;           /* "tool", "agent": messages, audit actions, "object" */
    const char    *route;          /* "/v1/tools" */
    size_t         max_count, max_body;
} def_kind;

static const def_kind def_tool = {STORE_DEF_TOOL, "tool", "/v1/tools", TOOLS_TENANT_MAX_TOOLS,
                                  TOOLS_TENANT_TOOL_BODY_MAX};
static const def_kind def_agent = {STORE_DEF_AGENT, "agent", "/v1/agents", TOOLS_TENANT_MAX_AGENTS,
                                   TOOLS_TENANT_AGENT_BODY_MAX};
static const def_kind def_mcp = {STORE_DEF_MCP, "mcp_server", "/v1/mcp-servers", TOOLS_TENANT_MAX_MCP,
                                 TOOLS_TENANT_MCP_BODY_MAX};

static bool def_catalogue_has(const api_env *env, const def_kind *k, const char *name)
{
    switch (k->kind) {
    case STORE_DEF_TOOL: return config_find_tool(&env->cfg, name) != NULL;
    case STORE_DEF_AGENT: return config_find_agent(&env->cfg, name) != NULL;
    default: return config_find_mcp_server(&env->cfg, name) != NULL;
    }
}

static bool def_catalogue_enable(const api_env *env, const def_kind *k, const char *name)
{
    switch (k->kind) {
    case STORE_DEF_TOOL: return config_find_tool(&env->cfg, name)->tenants_enable;
    case STORE_DEF_AGENT: return config_find_agent(&env->cfg, name)->tenants_enable;
    default: return config_find_mcp_server(&env->cfg, name)->tenants_enable;
    }
}

/* The catalogue's names of a kind, in the file's order. */
static size_t def_catalogue_count(const api_env *env, const def_kind *k)
{
    switch (k->kind) {
    case STORE_DEF_TOOL: return env->cfg.n_tools;
    case STORE_DEF_AGENT: return env->cfg.n_agents;
    default: return env->cfg.n_mcp_servers;
    }
}

static const char *def_catalogue_name(const api_env *env, const def_kind *k, size_t i)
{
    switch (k->kind) {
    case STORE_DEF_TOOL: return env->cfg.tools[i].name;
    case STORE_DEF_AGENT: return env->cfg.agents[i].name;
    default: return env->cfg.mcp_servers[i].name;
    }
}

/* The act's audit entry rides on its store write (one transaction): begin
 * right before the write, obs_audit_act_end right after it. */
static void def_audit_begin(obs_audit_act *a, api_ctx *ctx, const def_kind *k, const char *verb,
                            const char *name, cJSON *d)
{
    char action[32];
    snprintf(action, sizeof action, "%s.%s", k->what, verb);
    obs_audit_act_begin(a, ctx->env->store, &ctx->scope, NULL, action, name, d);
}

/* ---- the JSON of a definition ---- */

static cJSON *def_json_limits(const agent_cfg *a)
{
    cJSON *lim = cJSON_CreateObject();
    cJSON_AddNumberToObject(lim, "max_steps", a->max_steps);
    cJSON_AddNumberToObject(lim, "max_tool_calls", a->max_tool_calls);
    cJSON_AddNumberToObject(lim, "max_wall_ms", a->max_wall_ms);
    cJSON_AddNumberToObject(lim, "max_output_tokens", a->max_output_tokens);
    cJSON_AddNumberToObject(lim, "context_tokens", a->context_tokens);
    return lim;
}

static cJSON *def_json_names(char *const *names, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
    return arr;
}

/* An agent, as users list it (agents.c) and admins read it. */
cJSON *api_json_agent(const agent_cfg *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", a->name);
    cJSON_AddStringToObject(o, "object", "agent");
    if (a->description && a->description[0]) cJSON_AddStringToObject(o, "description", a->description);
    else cJSON_AddNullToObject(o, "description");
    cJSON_AddStringToObject(o, "model", a->model_name);
    cJSON_AddItemToObject(o, "tools", def_json_names(a->tools, a->n_tools));
    cJSON_AddItemToObject(o, "limits", def_json_limits(a));
    /* its guard policy (docs/guard.md): what a user can expect of it */
    static const char *const input[] = {"off", "flag", "block"};
    static const char *const output[] = {"off", "flag", "spotlight", "drop"};
    static const char *const taint[] = {"allow", "approve", "refuse"};
    cJSON *g = cJSON_AddObjectToObject(o, "guard");
    cJSON_AddStringToObject(g, "user_input", input[a->guard.user_input]);
    cJSON_AddStringToObject(g, "tool_output", output[a->guard.tool_output]);
    cJSON_AddStringToObject(g, "tainted_tools", taint[a->guard.tainted_tools]);
    cJSON_AddStringToObject(g, "exfiltration", a->guard.exfiltration ? "block" : "off");
    static const char *const pii[] = {"off", "flag", "redact"};
    cJSON *p = cJSON_AddObjectToObject(g, "pii");
    cJSON_AddStringToObject(p, "input", pii[a->guard.pii_input]);
    cJSON_AddStringToObject(p, "output", pii[a->guard.pii_output]);
    return o;
}

static cJSON *def_json_tool(const tool_cfg *t, bool own)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", t->name);
    cJSON_AddStringToObject(o, "object", "tool");
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "description", t->description ? t->description : "");
    cJSON_AddStringToObject(o, "effects", config_tool_effects_name(t->effects));
    cJSON *params = cJSON_Parse(t->parameters_json ? t->parameters_json : "{\"type\":\"object\"}");
    cJSON_AddItemToObject(o, "parameters", params ? params : cJSON_CreateObject());
    /* The operator's endpoint and headers are not the tenant's to read; a
     * tenant's own header values are never echoed (they may be secrets). */
    if (own) {
        cJSON_AddStringToObject(o, "url", t->url);
        cJSON_AddStringToObject(o, "method", t->method);
        cJSON_AddItemToObject(o, "headers", def_json_names(t->header_names, t->n_headers));
        cJSON_AddNumberToObject(o, "timeout_ms", t->timeout_ms);
        cJSON_AddNumberToObject(o, "max_response_bytes", t->max_response_bytes);
        cJSON_AddNumberToObject(o, "max_redirects", t->max_redirects);
    }
    return o;
}

/* An MCP server: its tools appear to agents as NAME__TOOL. The operator's
 * endpoint, program and headers are not the tenant's to read; a tenant's
 * own header values are never echoed. */
static cJSON *def_json_mcp(const mcp_server_cfg *m, bool own)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", m->name);
    cJSON_AddStringToObject(o, "object", "mcp_server");
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "transport", m->transport == MCP_TRANSPORT_HTTP ? "http" : "stdio");
    if (m->n_tools) cJSON_AddItemToObject(o, "tools", def_json_names(m->tools, m->n_tools));
    else cJSON_AddNullToObject(o, "tools");
    /* whether its calls wait for a person (docs/tools.md "Approvals") */
    static const char *const approval[] = {[TOOL_APPROVAL_NEVER] = "never", [TOOL_APPROVAL_ALWAYS] = "always",
                                           [TOOL_APPROVAL_WHEN] = "when"};
    cJSON_AddStringToObject(o, "approval", approval[m->approval ? m->approval->approval : TOOL_APPROVAL_NEVER]);
    /* whether each user authorizes brigade at it (docs/mcp.md) */
    if (m->oauth) {
        cJSON *a = cJSON_AddObjectToObject(o, "auth");
        cJSON_AddStringToObject(a, "kind", "oauth");
    } else {
        cJSON_AddNullToObject(o, "auth");
    }
    if (own) {
        cJSON_AddStringToObject(o, "url", m->url ? m->url : "");
        cJSON_AddItemToObject(o, "headers", def_json_names(m->header_names, m->n_headers));
        cJSON_AddNumberToObject(o, "startup_timeout_ms", m->startup_timeout_ms);
        cJSON_AddNumberToObject(o, "call_timeout_ms", m->call_timeout_ms);
        cJSON_AddNumberToObject(o, "idle_timeout_s", m->idle_timeout_s);
        cJSON_AddNumberToObject(o, "ping_interval_s", m->ping_interval_s);
    }
    return o;
}

/* Source, availability and times around a definition's JSON. */
static cJSON *def_json_wrap(cJSON *o, bool own, bool enable_needed, bool available, const def_rec *row)
{
    cJSON_AddStringToObject(o, "source", own ? "tenant" : "catalogue");
    if (!own) cJSON_AddStringToObject(o, "tenants", enable_needed ? "enable" : "all");
    cJSON_AddBoolToObject(o, "available", available);
    if (row) {
        cJSON_AddNumberToObject(o, "created_at", (double)row->created_at);
        cJSON_AddNumberToObject(o, "updated_at", (double)row->updated_at);
    }
    return o;
}

/* The tenant's own definition (a stored body), or NULL with err when it
 * no longer loads (the configuration changed under it). */
static cJSON *def_json_own(api_ctx *ctx, const def_kind *k, const tools_tenant *tt, const def_rec *row)
{
    char why[400];
    cJSON *o = NULL;
    if (k->kind == STORE_DEF_TOOL) {
        tool_cfg t;
        if (config_tool_from_json(&ctx->env->cfg, row->body, strlen(row->body), &t, why, sizeof why) == 0) {
            o = def_json_tool(&t, true);
            config_tool_free(&t);
        }
    } else if (k->kind == STORE_DEF_MCP) {
        mcp_server_cfg m;
        if (config_mcp_server_from_json(&ctx->env->cfg, row->body, strlen(row->body), &m, why, sizeof why) == 0) {
            o = def_json_mcp(&m, true);
            config_mcp_server_free(&m);
        }
    } else {
        agent_cfg a;
        if (config_agent_from_json(&ctx->env->cfg, row->body, strlen(row->body), tools_tenant_knows,
                                   (void *)tt, &a, why, sizeof why) == 0) {
            o = api_json_agent(&a);
            cJSON_AddStringToObject(o, "name", a.name);
            if (a.system_prompt) cJSON_AddStringToObject(o, "system_prompt", a.system_prompt);
            cJSON_AddItemToObject(o, "tiers", def_json_names(a.tiers, a.n_tiers));
            config_agent_free(&a);
        }
    }
    if (!o) {   /* still listed, so the admin can see and fix or delete it */
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", row->name);
        cJSON_AddStringToObject(o, "object", k->what);
        cJSON_AddStringToObject(o, "name", row->name);
        cJSON_AddStringToObject(o, "error", why);
    }
    return def_json_wrap(o, true, false, true, row);
}

static cJSON *def_json_catalogue(api_ctx *ctx, const def_kind *k, const char *name, const def_rec *row)
{
    bool enable = def_catalogue_enable(ctx->env, k, name);
    cJSON *o;
    if (k->kind == STORE_DEF_TOOL) {
        o = def_json_tool(config_find_tool(&ctx->env->cfg, name), false);
    } else if (k->kind == STORE_DEF_MCP) {
        o = def_json_mcp(config_find_mcp_server(&ctx->env->cfg, name), false);
    } else {
        const agent_cfg *a = config_find_agent(&ctx->env->cfg, name);
        o = api_json_agent(a);
        cJSON_AddStringToObject(o, "name", a->name);
    }
    return def_json_wrap(o, false, enable, !enable || row != NULL, row);
}

/* ---- reading the path and the body ---- */

static const char *def_path_name(api_ctx *ctx, const def_kind *k)
{
    const char *name = ctx->req->n_params > 0 ? ctx->req->params[0] : NULL;
    if (!name || !name[0] || strlen(name) >= STORE_DEF_NAME_MAX) {
        api_fail(ctx, 404, "not_found_error", "not_found", NULL, "%s not found", k->what);
        return NULL;
    }
    return name;
}

/* The body as a JSON object, bounded; NULL after answering. */
static cJSON *def_body(api_ctx *ctx, const def_kind *k)
{
    if (ctx->req->body_len > k->max_body) {
        api_fail(ctx, 400, "invalid_request_error", "too_large", NULL,
                 "a %s's definition is at most %zu bytes of JSON (this one has %zu)", k->what,
                 k->max_body, ctx->req->body_len);
        return NULL;
    }
    return api_body_object(ctx, NULL, false);
}

/* A message of the config readers, "key.path: what", as a 400 naming the
 * key as its param. */
static void def_fail_invalid(api_ctx *ctx, const char *why)
{
    char param[128] = "";
    const char *colon = strstr(why, ": ");
    if (colon && (size_t)(colon - why) < sizeof param && !memchr(why, ' ', (size_t)(colon - why)) &&
        strncmp(why, "body: ", 6) != 0)   /* the whole body (not JSON, not an object): no one key */
        snprintf(param, sizeof param, "%.*s", (int)(colon - why), why);
    api_fail(ctx, 400, "invalid_request_error", "invalid_definition", param[0] ? param : NULL, "%s", why);
}

/* Validate a whole definition with the config file's rules; false after
 * answering 400. */
static bool def_validate(api_ctx *ctx, const def_kind *k, const char *json)
{
    char why[512];
    size_t len = strlen(json);
    if (k->kind == STORE_DEF_TOOL) {
        tool_cfg t;
        if (config_tool_from_json(&ctx->env->cfg, json, len, &t, why, sizeof why) < 0) {
            def_fail_invalid(ctx, why);
            return false;
        }
        bool ok = tools_check_declared(&t, why, sizeof why);
        config_tool_free(&t);
        if (!ok) def_fail_invalid(ctx, why);
        return ok;
    }
    if (k->kind == STORE_DEF_MCP) {
        mcp_server_cfg m;
        if (config_mcp_server_from_json(&ctx->env->cfg, json, len, &m, why, sizeof why) < 0) {
            def_fail_invalid(ctx, why);
            return false;
        }
        config_mcp_server_free(&m);
        return true;
    }
    tools_tenant tt;
    if (tools_tenant_load(ctx->env->store, &ctx->scope, &ctx->env->cfg, &tt) != TOOLS_TENANT_OK) {
        api_fail_store(ctx, STORE_ERROR, k->what);
        return false;
    }
    agent_cfg a;
    int rc = config_agent_from_json(&ctx->env->cfg, json, len, tools_tenant_knows, &tt, &a, why, sizeof why);
    tools_tenant_free(&tt);
    if (rc < 0) {
        def_fail_invalid(ctx, why);
        return false;
    }
    config_agent_free(&a);
    return true;
}

/* ---- the handlers ---- */

static void def_list(api_ctx *ctx, const def_kind *k)
{
    def_rec *rows = NULL;
    size_t n = 0;
    store_status st = store_def_list(ctx->env->store, &ctx->scope, k->kind, &rows, &n);
    tools_tenant tt = {0};
    if (st == STORE_OK && tools_tenant_load(ctx->env->store, &ctx->scope, &ctx->env->cfg, &tt) != TOOLS_TENANT_OK)
        st = STORE_ERROR;
    if (st != STORE_OK) {
        store_free_defs(rows, n);
        api_fail_store(ctx, st, k->what);
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    /* the catalogue first, in the file's order; then the tenant's own */
    size_t nc = def_catalogue_count(ctx->env, k);
    for (size_t i = 0; i < nc; i++) {
        const char *name = def_catalogue_name(ctx->env, k, i);
        const def_rec *row = NULL;
        for (size_t j = 0; j < n; j++)
            if (!strcmp(rows[j].name, name)) row = &rows[j];
        if (row && row->body) continue;   /* shadowed by the tenant's own */
        cJSON_AddItemToArray(arr, def_json_catalogue(ctx, k, name, row));
    }
    for (size_t j = 0; j < n; j++)
        if (rows[j].body) cJSON_AddItemToArray(arr, def_json_own(ctx, k, &tt, &rows[j]));
    tools_tenant_free(&tt);
    store_free_defs(rows, n);
    api_reply(ctx, 200, api_json_list(arr, false));
}

static void def_get_named(api_ctx *ctx, const def_kind *k, const char *name)
{
    def_rec row;
    store_status st = store_def_get(ctx->env->store, &ctx->scope, k->kind, name, &row);
    if (st != STORE_OK && st != STORE_NOT_FOUND) {
        api_fail_store(ctx, st, k->what);
        return;
    }
    if (st == STORE_OK && row.body) {
        tools_tenant tt;
        if (tools_tenant_load(ctx->env->store, &ctx->scope, &ctx->env->cfg, &tt) != TOOLS_TENANT_OK) {
            def_rec_free(&row);
            api_fail_store(ctx, STORE_ERROR, k->what);
            return;
        }
        api_reply(ctx, 200, def_json_own(ctx, k, &tt, &row));
        tools_tenant_free(&tt);
    } else if (def_catalogue_has(ctx->env, k, name)) {
        api_reply(ctx, 200, def_json_catalogue(ctx, k, name, st == STORE_OK ? &row : NULL));
    } else {
        api_fail(ctx, 404, "not_found_error", "not_found", NULL, "%s not found", k->what);
    }
    def_rec_free(&row);
}

static void def_get(api_ctx *ctx, const def_kind *k)
{
    const char *name = def_path_name(ctx, k);
    if (name) def_get_named(ctx, k, name);
}

/* POST {name, catalogue: true}: enable a catalogue entry. */
static void def_enable(api_ctx *ctx, const def_kind *k, const cJSON *body, const char *name)
{
    for (const cJSON *f = body->child; f; f = f->next)
        if (strcmp(f->string, "name") && strcmp(f->string, "catalogue")) {
            api_fail(ctx, 400, "invalid_request_error", "unknown_field", f->string,
                     "enabling a catalogue %s takes only \"name\" and \"catalogue\" (not \"%.64s\")",
                     k->what, f->string);
            return;
        }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(body, "catalogue");
    if (!cJSON_IsTrue(c)) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "catalogue",
                 "\"catalogue\" must be true (to disable an entry: DELETE %s/{name})", k->route);
        return;
    }
    if (!def_catalogue_has(ctx->env, k, name)) {
        api_fail(ctx, 404, "not_found_error", "not_found", "name",
                 "the server's catalogue has no %s named \"%s\"", k->what, name);
        return;
    }
    obs_audit_act a;
    def_audit_begin(&a, ctx, k, "enable", name, NULL);
    store_status st = store_def_create(ctx->env->store, &ctx->scope, k->kind, name, NULL, k->max_count);
    obs_audit_act_end(&a);
    if (st == STORE_CONFLICT) {
        api_fail(ctx, 409, "conflict_error", "already_exists", "name",
                 "\"%s\" is already enabled or defined by this tenant", name);
        return;
    }
    if (st == STORE_QUOTA) {
        api_fail(ctx, 400, "invalid_request_error", "limit_reached", NULL,
                 "a tenant has at most %zu %ss (its own and enabled catalogue entries)", k->max_count, k->what);
        return;
    }
    if (st != STORE_OK) {
        api_fail_store(ctx, st, k->what);
        return;
    }
    def_rec row;
    store_status gs = store_def_get(ctx->env->store, &ctx->scope, k->kind, name, &row);
    api_reply(ctx, 201, def_json_catalogue(ctx, k, name, gs == STORE_OK ? &row : NULL));
    def_rec_free(&row);
}

static void def_create(api_ctx *ctx, const def_kind *k)
{
    cJSON *body = def_body(ctx, k);
    if (!body) return;
    char name[STORE_DEF_NAME_MAX];
    if (!api_field_string(ctx, body, "name", true, STORE_DEF_NAME_MAX - 1, name, sizeof name, NULL))
        goto out;
    if (cJSON_GetObjectItemCaseSensitive(body, "catalogue")) {
        def_enable(ctx, k, body, name);
        goto out;
    }
    if (def_catalogue_has(ctx->env, k, name)) {
        api_fail(ctx, 409, "conflict_error", "name_taken", "name",
                 "the server's catalogue has a %s named \"%s\": enable it with {\"name\": \"%s\", "
                 "\"catalogue\": true}, or choose another name", k->what, name, name);
        goto out;
    }
    if (!def_validate(ctx, k, ctx->req->body)) goto out;
    obs_audit_act a;
    def_audit_begin(&a, ctx, k, "create", name, NULL);
    store_status st = store_def_create(ctx->env->store, &ctx->scope, k->kind, name, ctx->req->body,
                                       k->max_count);
    obs_audit_act_end(&a);
    if (st == STORE_CONFLICT) {
        api_fail(ctx, 409, "conflict_error", "already_exists", "name",
                 "this tenant already has a %s named \"%s\" (PATCH %s/%s changes it)", k->what, name,
                 k->route, name);
        goto out;
    }
    if (st == STORE_QUOTA) {
        api_fail(ctx, 400, "invalid_request_error", "limit_reached", NULL,
                 "a tenant has at most %zu %ss (its own and enabled catalogue entries)", k->max_count, k->what);
        goto out;
    }
    if (st != STORE_OK) {
        api_fail_store(ctx, st, k->what);
        goto out;
    }
    def_get_named(ctx, k, name);
    if (ctx->status == 200) ctx->status = 201;
out:
    cJSON_Delete(body);
}

/* PATCH: the stored definition with the body's fields replaced (null
 * removes one, back to its default), validated whole again. */
static void def_patch(api_ctx *ctx, const def_kind *k)
{
    const char *name = def_path_name(ctx, k);
    if (!name) return;
    cJSON *patch = def_body(ctx, k);
    if (!patch) return;
    cJSON *merged = NULL;
    char *text = NULL;
    def_rec row;
    store_status st = store_def_get(ctx->env->store, &ctx->scope, k->kind, name, &row);
    if (st == STORE_OK && !row.body) {
        api_fail(ctx, 400, "invalid_request_error", "catalogue_entry", NULL,
                 "\"%s\" is the server's catalogue %s: it cannot be changed, only disabled (DELETE)",
                 name, k->what);
        goto out;
    }
    if (st != STORE_OK) {
        api_fail_store(ctx, st, k->what);
        goto out;
    }
    const cJSON *pn = cJSON_GetObjectItemCaseSensitive(patch, "name");
    if (pn && !(cJSON_IsString(pn) && !strcmp(pn->valuestring, name))) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "name",
                 "a %s cannot be renamed: create the new name, then delete this one", k->what);
        goto out;
    }
    merged = cJSON_Parse(row.body);
    if (!merged) {
        api_fail_store(ctx, STORE_ERROR, k->what);
        goto out;
    }
    for (cJSON *f = patch->child; f; f = f->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(merged, f->string);
        if (!cJSON_IsNull(f)) cJSON_AddItemToObject(merged, f->string, cJSON_Duplicate(f, true));
    }
    text = cJSON_PrintUnformatted(merged);
    if (!text || strlen(text) > k->max_body) {
        api_fail(ctx, 400, "invalid_request_error", "too_large", NULL,
                 "a %s's definition is at most %zu bytes of JSON", k->what, k->max_body);
        goto out;
    }
    if (!def_validate(ctx, k, text)) goto out;
    cJSON *changed = cJSON_CreateArray();
    for (cJSON *f = patch->child; f; f = f->next) cJSON_AddItemToArray(changed, cJSON_CreateString(f->string));
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "fields", changed);
    obs_audit_act a;
    def_audit_begin(&a, ctx, k, "update", name, d);
    st = store_def_update(ctx->env->store, &ctx->scope, k->kind, name, text);
    obs_audit_act_end(&a);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, k->what);
        goto out;
    }
    def_get_named(ctx, k, name);
out:
    def_rec_free(&row);
    free(text);
    cJSON_Delete(merged);
    cJSON_Delete(patch);
}

static void def_delete(api_ctx *ctx, const def_kind *k)
{
    const char *name = def_path_name(ctx, k);
    if (!name) return;
    def_rec row;
    store_status st = store_def_get(ctx->env->store, &ctx->scope, k->kind, name, &row);
    bool catalogue = st == STORE_OK && !row.body;
    def_rec_free(&row);
    if (st == STORE_OK) {
        obs_audit_act a;
        def_audit_begin(&a, ctx, k, catalogue ? "disable" : "delete", name, NULL);
        st = store_def_delete(ctx->env->store, &ctx->scope, k->kind, name);
        obs_audit_act_end(&a);
    }
    if (st == STORE_NOT_FOUND && def_catalogue_has(ctx->env, k, name)) {
        api_fail(ctx, 400, "invalid_request_error", "catalogue_entry", NULL,
                 def_catalogue_enable(ctx->env, k, name)
                     ? "the catalogue %s \"%s\" is not enabled for this tenant"
                     : "the catalogue %s \"%s\" is available to every tenant; only the operator can remove it",
                 k->what, name);
        return;
    }
    if (st != STORE_OK) {
        api_fail_store(ctx, st, k->what);
        return;
    }
    api_reply(ctx, 204, NULL);
}

void api_tools_list(api_ctx *ctx) { def_list(ctx, &def_tool); }
void api_tools_create(api_ctx *ctx) { def_create(ctx, &def_tool); }
void api_tools_get(api_ctx *ctx) { def_get(ctx, &def_tool); }
void api_tools_patch(api_ctx *ctx) { def_patch(ctx, &def_tool); }
void api_tools_delete(api_ctx *ctx) { def_delete(ctx, &def_tool); }
void api_agents_admin_list(api_ctx *ctx) { def_list(ctx, &def_agent); }
void api_agents_create(api_ctx *ctx) { def_create(ctx, &def_agent); }
void api_agents_get(api_ctx *ctx) { def_get(ctx, &def_agent); }
void api_agents_patch(api_ctx *ctx) { def_patch(ctx, &def_agent); }
void api_agents_delete(api_ctx *ctx) { def_delete(ctx, &def_agent); }
void api_mcp_servers_list(api_ctx *ctx) { def_list(ctx, &def_mcp); }
void api_mcp_servers_create(api_ctx *ctx) { def_create(ctx, &def_mcp); }
void api_mcp_servers_get(api_ctx *ctx) { def_get(ctx, &def_mcp); }
void api_mcp_servers_patch(api_ctx *ctx) { def_patch(ctx, &def_mcp); }
void api_mcp_servers_delete(api_ctx *ctx) { def_delete(ctx, &def_mcp); }
