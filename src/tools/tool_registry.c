/* tool_registry.c — the set of tools a brigade process offers: the built-ins
 * (memory, clock) plus the HTTP tools declared in the configuration, each
 * with a JSON Schema checked once here, at start, so a bad declaration
 * stops brigade instead of failing on the first call. Also the OpenAI
 * "tools" array that offers a subset of them to a model, and the argument
 * check the harness runs before any tool does. */
#include "tools/tools.h"
#include "tools/tools_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/mcp.h"
#include "util/json_strict.h"
#include "util/utf8.h"
#include "util/xalloc.h"

struct tool_registry {
    tool_def *defs;
    size_t    n, cap;
};

/* The built-ins' schemas. Per-action needs (save needs key and value, …)
 * are checked by the memory tool itself, with messages that say which
 * field the action wants; the schema keeps to what the model must know. */
static const char memory_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"action\":{\"type\":\"string\",\"enum\":[\"save\",\"recall\",\"search\",\"delete\"],"
    "\"description\":\"save: store value under key (replaces an older value); recall: read "
    "the value of key; search: find memories whose key or value match the words of query "
    "(at most 10); delete: forget key\"},"
    "\"key\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":256,"
    "\"description\":\"a short name for the memory (save, recall, delete)\"},"
    "\"value\":{\"type\":\"string\",\"description\":\"the text to remember (save)\"},"
    "\"query\":{\"type\":\"string\",\"description\":\"words to look for (search)\"}},"
    "\"required\":[\"action\"],\"additionalProperties\":false}";

static const char clock_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"timezone\":{\"type\":\"string\",\"enum\":[\"UTC\"],"
    "\"description\":\"only \\\"UTC\\\" is supported; the default\"}},"
    "\"additionalProperties\":false}";

static const char memory_desc[] =
    "Your long-term memory of this user, kept across sessions: save, recall, search or "
    "delete short notes by key.";
static const char clock_desc[] = "The current date and time (UTC).";

static bool reg_add_builtin(tool_registry *r, const char *name, const char *desc,
                            tool_kind kind, tool_effects effects, const char *schema_text,
                            char *err, size_t errlen)
{
    cJSON *schema = cJSON_Parse(schema_text);
    if (!schema || !tools_schema_check(schema, name, err, errlen)) {
        /* A bug in this file, not in anyone's configuration. */
        if (!schema) snprintf(err, errlen, "built-in tool %s: schema does not parse", name);
        cJSON_Delete(schema);
        return false;
    }
    tool_def *d = &r->defs[r->n++];
    d->name = name;
    d->description = desc;
    d->kind = kind;
    d->effects = effects;
    d->parameters = schema;
    d->http = NULL;
    return true;
}

static bool reg_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool reg_text_safe(const char *s)
{
    for (; s && *s; s++)
        if (*s == '\r' || *s == '\n') return false;
    return true;
}

/* Placeholders may only fill the path and query: a `{host}` in the
 * authority would let a model point the tool (and its credentials) at any
 * server it likes. */
static bool reg_url_ok(const char *url, char *why, size_t whylen)
{
    const char *rest = NULL;
    if (url && strncmp(url, "http://", 7) == 0) rest = url + 7;
    else if (url && strncmp(url, "https://", 8) == 0) rest = url + 8;
    if (!rest) {
        snprintf(why, whylen, "url must start with http:// or https://");
        return false;
    }
    const char *path = strpbrk(rest, "/?#");
    const char *brace = strchr(url, '{');
    if (brace && (!path || brace < path)) {
        snprintf(why, whylen, "url placeholders may appear only after the host");
        return false;
    }
    /* A fragment is never sent: a placeholder there would mean nothing. */
    const char *frag = strchr(url, '#');
    if (frag && strchr(frag, '{')) {
        snprintf(why, whylen, "url placeholders may not appear in the #fragment");
        return false;
    }
    /* The request's path is checked for dot segments once filled in; the
     * template itself must not have any (curl would resolve them). */
    if (path && *path == '/') {
        size_t plen = strcspn(path, "?#");
        if (!tools_url_path_ok(path, plen)) {
            snprintf(why, whylen, "url path has a \".\" or \"..\" segment");
            return false;
        }
    }
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            snprintf(why, whylen, "url contains a space or a control character");
            return false;
        }
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (!close || close == p + 1) {
                snprintf(why, whylen, "url has an unclosed or empty {placeholder}");
                return false;
            }
            for (const char *q = p + 1; q < close; q++)
                if (*q == '{' || *q == '/') {
                    snprintf(why, whylen, "url has a malformed {placeholder}");
                    return false;
                }
            p = close;
        }
    }
    return true;
}

/* Every {placeholder} must name a property the schema declares at its top
 * level: only declared arguments are ever put into a request. */
static bool reg_placeholders_declared(const char *url, const cJSON *schema, char *why,
                                      size_t whylen)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    for (const char *p = strchr(url, '{'); p; p = strchr(p + 1, '{')) {
        const char *close = strchr(p, '}');
        if (!close) break;   /* reg_url_ok refused it already */
        char name[128];
        size_t n = (size_t)(close - p - 1);
        if (n >= sizeof name) {
            snprintf(why, whylen, "a {placeholder} name is longer than %zu bytes", sizeof name - 1);
            return false;
        }
        memcpy(name, p + 1, n);
        name[n] = '\0';
        if (!props || !cJSON_GetObjectItemCaseSensitive(props, name)) {
            /* %.64s: the message fits the caller's buffer whatever the name */
            snprintf(why, whylen, "placeholder {%.64s} is not a property of the tool's parameters",
                     name);
            return false;
        }
    }
    return true;
}

/* A declared tool's parameters: parsed, checked against the subset, an
 * object at the top, additionalProperties made explicit. */
static cJSON *reg_schema_of(const tool_cfg *tc, const char *where, char *err, size_t errlen)
{
    const char *text = tc->parameters_json && tc->parameters_json[0] ? tc->parameters_json
                                                                     : "{\"type\":\"object\"}";
    cJSON *schema = cJSON_Parse(text);
    if (!schema) {
        snprintf(err, errlen, "%s: not valid JSON", where);
        return NULL;
    }
    if (!tools_schema_check(schema, where, err, errlen)) {
        cJSON_Delete(schema);
        return NULL;
    }
    /* Models send tool arguments as a JSON object; OpenAI requires it too. */
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(schema, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "object") != 0) {
        snprintf(err, errlen, "%s: the top level must be {\"type\": \"object\", …}", where);
        cJSON_Delete(schema);
        return NULL;
    }
    /* Only declared arguments reach the tool, so the model is told so:
     * unless the tool says otherwise, other properties are refused by
     * validation, with a message naming the allowed ones. */
    if (!cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties"))
        cJSON_AddFalseToObject(schema, "additionalProperties");
    return schema;
}

/* A command tool (kind: command): its name, argv template and schema. */
static cJSON *reg_check_command(const tool_cfg *tc, const char *at, char *err, size_t errlen)
{
    char where[96], why[160];
    const char *dot = at[0] ? "." : "";
    snprintf(where, sizeof where, "%s%sparameters", at, dot);
    if (tc->argc == 0 || !tc->argv || !tc->argv[0] || !tc->argv[0][0]) {
        snprintf(err, errlen, "%s%sargv: the program is missing", at, dot);
        return NULL;
    }
    cJSON *schema = reg_schema_of(tc, where, err, errlen);
    if (!schema) return NULL;
    if (!tool_command_check(tc, schema, why, sizeof why)) {
        snprintf(err, errlen, "%s%sargv: %s", at, dot, why);
        cJSON_Delete(schema);
        return NULL;
    }
    return schema;
}

/* The checks of one declared tool, and its schema (with
 * additionalProperties made explicit); `at` names it in messages
 * ("tools[2]"). NULL with err when it is not usable. */
static cJSON *reg_check_declared(const tool_cfg *tc, const char *at, char *err, size_t errlen)
{
    char where[96];
    snprintf(where, sizeof where, "%s%sparameters", at, at[0] ? "." : "");
    const char *dot = at[0] ? "." : "";
    if (!reg_name_ok(tc->name)) {
        snprintf(err, errlen, "%s%sname: must be 1-64 of [a-zA-Z0-9_-]", at, dot);
        return NULL;
    }
    char why[128];
    if (tc->kind == TOOL_CFG_COMMAND) return reg_check_command(tc, at, err, errlen);
    if (!reg_url_ok(tc->url, why, sizeof why)) {
        snprintf(err, errlen, "%s%surl: %s", at, dot, why);
        return NULL;
    }
    const char *m = tc->method ? tc->method : "POST";
    if (strcmp(m, "GET") && strcmp(m, "POST") && strcmp(m, "PUT") && strcmp(m, "PATCH") &&
        strcmp(m, "DELETE")) {
        snprintf(err, errlen, "%s%smethod: must be GET, POST, PUT, PATCH or DELETE", at, dot);
        return NULL;
    }
    for (size_t i = 0; i < tc->n_headers; i++) {
        if (!reg_text_safe(tc->header_names[i]) || !reg_text_safe(tc->header_values[i]) ||
            !tc->header_names[i] || !tc->header_names[i][0] ||
            strchr(tc->header_names[i], ':')) {
            snprintf(err, errlen, "%s%sheaders[%zu]: a header name or value contains "
                                  "a line break or colon", at, dot, i);
            return NULL;
        }
    }
    cJSON *schema = reg_schema_of(tc, where, err, errlen);
    if (!schema) return NULL;
    if (!reg_placeholders_declared(tc->url, schema, why, sizeof why)) {
        snprintf(err, errlen, "%s%surl: %s", at, dot, why);
        cJSON_Delete(schema);
        return NULL;
    }
    return schema;
}

bool tools_check_declared(const tool_cfg *tc, char *err, size_t errlen)
{
    cJSON *schema = reg_check_declared(tc, "", err, errlen);
    cJSON_Delete(schema);
    return schema != NULL;
}

static bool reg_add_declared(tool_registry *r, const tool_cfg *tc, size_t idx, char *err,
                             size_t errlen)
{
    char at[32];
    snprintf(at, sizeof at, "tools[%zu]", idx);
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->defs[i].name, tc->name) == 0) {
            snprintf(err, errlen, "tools[%zu].name: a tool named \"%s\" already exists", idx,
                     tc->name);
            return false;
        }
    cJSON *schema = reg_check_declared(tc, at, err, errlen);
    if (!schema) return false;
    tool_def *d = &r->defs[r->n++];
    d->name = tc->name;
    d->description = tc->description ? tc->description : "";
    d->kind = tc->kind == TOOL_CFG_COMMAND ? TOOL_COMMAND : TOOL_HTTP;
    d->effects = tc->effects ? tc->effects : TOOL_EFFECTS_EXTERNAL;
    d->parameters = schema;
    d->http = tc;
    return true;
}

tool_registry *tools_registry_of(const tool_cfg *const *tools, size_t n, char *err, size_t errlen)
{
    tool_registry *r = xcalloc(1, sizeof *r);
    r->cap = 2 + n;
    r->defs = xcalloc(r->cap, sizeof *r->defs);
    /* memory changes the user's stored memory; clock only reads */
    bool ok = reg_add_builtin(r, "memory", memory_desc, TOOL_MEMORY, TOOL_EFFECTS_WRITE, memory_schema,
                              err, errlen) &&
              reg_add_builtin(r, "clock", clock_desc, TOOL_CLOCK, TOOL_EFFECTS_READ, clock_schema,
                              err, errlen);
    for (size_t i = 0; ok && i < n; i++)
        ok = reg_add_declared(r, tools[i], i, err, errlen);
    if (!ok) {
        tools_registry_free(r);
        return NULL;
    }
    return r;
}

tool_registry *tools_registry_new(const brigade_config *cfg, char *err, size_t errlen)
{
    size_t n = cfg ? cfg->n_tools : 0;
    const tool_cfg **list = xcalloc(n ? n : 1, sizeof *list);
    for (size_t i = 0; i < n; i++) list[i] = &cfg->tools[i];
    tool_registry *r = tools_registry_of(list, n, err, errlen);
    free(list);
    return r;
}

void tools_registry_free(tool_registry *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        cJSON_Delete(r->defs[i].parameters);
        cJSON_Delete(r->defs[i].offered);
        free(r->defs[i].mcp_tool);
        free(r->defs[i].own_name);
        free(r->defs[i].own_description);
    }
    free(r->defs);
    free(r);
}

const tool_def *tools_find(const tool_registry *r, const char *name)
{
    if (!r || !name) return NULL;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->defs[i].name, name) == 0) return &r->defs[i];
    return NULL;
}

size_t tools_count(const tool_registry *r) { return r ? r->n : 0; }

const tool_def *tools_at(const tool_registry *r, size_t i)
{
    return r && i < r->n ? &r->defs[i] : NULL;
}

const tool_cfg *tools_approval_policy(const tool_def *t)
{
    if (t->http) return t->http;
    return t->mcp_server ? t->mcp_server->approval : NULL;
}

bool tools_registry_add_mcp(tool_registry *r, const struct mcp_server_cfg *server, const char *tool,
                            const struct mcp_tool_info *info, const char *unavailable)
{
    char name[160];
    int nl = snprintf(name, sizeof name, "%s" CONFIG_MCP_SEP "%s", server->name, tool);
    if (nl < 0 || (size_t)nl >= sizeof name || !reg_name_ok(name) || tools_find(r, name)) return false;
    cJSON *given = info ? cJSON_Parse(info->input_schema) : NULL;
    cJSON *params = NULL, *offered = NULL;
    char err[256];
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(given, "type");
    if (given && cJSON_IsString(type) && !strcmp(type->valuestring, "object") &&
        tools_schema_check(given, name, err, sizeof err)) {
        params = given;
    } else {
        /* brigade's subset cannot check it: the model gets the server's
         * schema, the server checks the arguments itself */
        params = cJSON_CreateObject();
        cJSON_AddStringToObject(params, "type", "object");
        if (cJSON_IsObject(given)) offered = given;
        else cJSON_Delete(given);
    }
    if (r->n == r->cap) {
        r->cap *= 2;
        r->defs = xrealloc(r->defs, r->cap * sizeof *r->defs);
    }
    tool_def *d = &r->defs[r->n++];
    memset(d, 0, sizeof *d);
    d->own_name = xstrdup(name);
    d->name = d->own_name;
    if (info) {
        d->own_description = xstrdup(info->description ? info->description : "");
    } else {
        char desc[400];
        snprintf(desc, sizeof desc, "(the MCP server %s is unavailable: %.300s)", server->name,
                 unavailable ? unavailable : "unknown");
        d->own_description = xstrdup(desc);
    }
    d->description = d->own_description;
    d->kind = TOOL_MCP;
    d->effects = TOOL_EFFECTS_EXTERNAL;
    d->parameters = params;
    d->offered = offered;
    d->mcp_server = server;
    d->mcp_tool = xstrdup(tool);
    return true;
}

void tools_registry_set_mcp_auth(tool_registry *r, const char *server, const char *provider)
{
    for (size_t i = 0; i < r->n; i++) {
        tool_def *d = &r->defs[i];
        if (d->kind == TOOL_MCP && d->mcp_server && !strcmp(d->mcp_server->name, server))
            snprintf(d->mcp_auth_provider, sizeof d->mcp_auth_provider, "%s", provider);
    }
}

static cJSON *spec_of(const tool_def *d)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "type", "function");
    cJSON *f = cJSON_AddObjectToObject(t, "function");
    cJSON_AddStringToObject(f, "name", d->name);
    if (d->description && d->description[0])
        cJSON_AddStringToObject(f, "description", d->description);
    cJSON_AddItemToObject(f, "parameters", cJSON_Duplicate(d->offered ? d->offered : d->parameters, true));
    return t;
}

/* "SERVER__*": the prefix's length ("SERVER__"), else 0. */
static size_t mcp_wildcard_prefix(const char *name)
{
    size_t l = name ? strlen(name) : 0;
    return l > 3 && !strcmp(name + l - 3, CONFIG_MCP_SEP "*") ? l - 1 : 0;
}

bool tools_name_listed(char *const *names, size_t n, const char *tool)
{
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(names[i], tool)) return true;
        size_t p = mcp_wildcard_prefix(names[i]);
        if (p && !strncmp(names[i], tool, p) && tool[p] && !strstr(tool + p, CONFIG_MCP_SEP "*"))
            return true;
    }
    return false;
}

cJSON *tools_openai_specs(const tool_registry *r, char *const *names, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr || !r) return arr;
    if (!names) {
        for (size_t i = 0; i < r->n; i++) cJSON_AddItemToArray(arr, spec_of(&r->defs[i]));
        return arr;
    }
    for (size_t i = 0; i < n; i++) {
        size_t p = mcp_wildcard_prefix(names[i]);
        if (p) {   /* every tool of that MCP server the registry has */
            for (size_t k = 0; k < r->n; k++)
                if (r->defs[k].kind == TOOL_MCP && !strncmp(r->defs[k].name, names[i], p) &&
                    !tools_name_listed(names, i, r->defs[k].name))
                    cJSON_AddItemToArray(arr, spec_of(&r->defs[k]));
            continue;
        }
        const tool_def *d = tools_find(r, names[i]);
        if (!d) continue;
        /* a name listed twice (or also through SERVER__*) is offered once */
        if (!tools_name_listed(names, i, names[i])) cJSON_AddItemToArray(arr, spec_of(d));
    }
    return arr;
}

/* The arguments string comes from a model: bound it, check it is UTF-8 and
 * one JSON value, then hand it to the schema. */
#define TOOLS_MAX_ARGS_BYTES (1u << 20)

/* A number too large for a double (1e999) is read by cJSON as infinity and
 * written back as null, so a tool would receive something other than what
 * was validated (found by fuzz_tool_args). Finds the first one; its path
 * ("arguments.a[2]") goes into `at`, which holds the path so far. */
static bool args_find_overflow(const cJSON *v, char *at, size_t atlen)
{
    if (cJSON_IsNumber(v)) return !isfinite(v->valuedouble);
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) return false;
    size_t len = strlen(at), i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        if (cJSON_IsObject(v)) snprintf(at + len, atlen - len, ".%s", c->string ? c->string : "");
        else snprintf(at + len, atlen - len, "[%zu]", i);
        if (args_find_overflow(c, at, atlen)) return true;
        at[len] = '\0';
    }
    return false;
}

bool tools_validate_args(const tool_def *t, const char *arguments, char *err, size_t errlen)
{
    if (!t) {
        snprintf(err, errlen, "no such tool");
        return false;
    }
    size_t len = arguments ? strlen(arguments) : 0;
    if (len > TOOLS_MAX_ARGS_BYTES) {
        snprintf(err, errlen, "arguments: longer than %u bytes", TOOLS_MAX_ARGS_BYTES);
        return false;
    }
    if (!utf8_valid(arguments ? arguments : "", len)) {
        snprintf(err, errlen, "arguments: not valid UTF-8");
        return false;
    }
    json_strict_error jerr;
    if (!json_strict_text(arguments, len, "the arguments object", &jerr)) {
        snprintf(err, errlen, "%s", jerr.message);
        return false;
    }
    /* Some models send "" for a tool without parameters: that is {}. */
    size_t i = 0;
    while (i < len && (arguments[i] == ' ' || arguments[i] == '\n' || arguments[i] == '\t' ||
                       arguments[i] == '\r'))
        i++;
    cJSON *v = i == len ? cJSON_CreateObject() : NULL;
    if (!v) {
        const char *end = NULL;
        v = cJSON_ParseWithLengthOpts(arguments, len, &end, false);
        if (!v) {
            size_t at = end && end >= arguments ? (size_t)(end - arguments) : 0;
            snprintf(err, errlen, "arguments: not valid JSON (error near byte %zu)", at);
            return false;
        }
        for (const char *p = end; p < arguments + len; p++)
            if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') {
                cJSON_Delete(v);
                snprintf(err, errlen, "arguments: unexpected text after the JSON value");
                return false;
            }
    }
    /* The schema and the tool read the first copy of a repeated key, the
     * model may have meant the last: refuse, and tell the model why. */
    if (!json_strict_tree(v, "the arguments object", &jerr)) {
        cJSON_Delete(v);
        snprintf(err, errlen, "%s", jerr.message);
        return false;
    }
    char at[160] = "arguments";
    if (args_find_overflow(v, at, sizeof at)) {
        cJSON_Delete(v);
        snprintf(err, errlen, "%s: number out of range (larger than a double)", at);
        return false;
    }
    bool ok = tools_schema_validate(t->parameters, v, "arguments", err, errlen);
    cJSON_Delete(v);
    return ok;
}
