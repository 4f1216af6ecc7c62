/* config_tenant.c — a tenant's own tool, agent or MCP server, sent as a
 * JSON body to the API (POST/PATCH /v1/tools, /v1/agents, /v1/mcp-servers),
 * read by the very readers of the file's `tools:`, `agents:` and
 * `mcp_servers:` entries (config_tools.c, config_agents.c, config_mcp.c),
 * so one set of rules holds for both. libfyaml reads the
 * JSON as the YAML it is a subset of; what JSON allows and YAML readers
 * would read differently (a repeated key, a NUL) is refused first by
 * json_strict. The load is marked api_body: a tenant's strings never read
 * the server's environment, and `tenants:` is the operator's alone. */
#include <libfyaml.h>
#include <stdio.h>
#include <string.h>

#include "config/config_load.h"
#include "util/json_strict.h"
#include "util/utf8.h"

typedef int (*ld_one_fn)(ld *, struct fy_node *, int, const char *, void *, entry_lines *);

static int config_from_json(ld *l, const char *json, size_t len, ld_one_fn one, void *out)
{
    json_strict_error jerr;
    if (!utf8_valid(json, len))
        return ld_fail(l, 1, NULL, "not valid UTF-8");
    if (!json_strict_text(json, len, "the body", &jerr))
        return ld_fail(l, 1, NULL, "%s", jerr.message);
    /* libfyaml's own message (a repeated key, a syntax error), collected
     * rather than printed */
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = NULL;
    dcfg.level = FYET_ERROR;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag)
        return ld_fail(l, 1, NULL, "cannot create the JSON parser");
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT | FYPCF_JSON_FORCE, .diag = diag};
    struct fy_document *doc = fy_document_build_from_string(&pcfg, json, len);
    if (!doc || !fy_document_root(doc) || fy_diag_got_error(diag)) {
        void *it = NULL;
        struct fy_diag_error *e;
        const char *msg = "not a valid JSON object";
        while ((e = fy_diag_errors_iterate(diag, &it)) != NULL)
            if (e->type >= FYET_ERROR && e->msg) {
                msg = e->msg;
                break;
            }
        ld_fail(l, 1, NULL, "not valid JSON: %s", msg);
        if (doc) fy_document_destroy(doc);
        fy_diag_destroy(diag);
        return -1;
    }
    struct fy_node *root = fy_document_root(doc);
    int rc;
    if (fy_node_get_type(root) != FYNT_MAPPING) {
        rc = ld_fail(l, 1, NULL, "expected a JSON object");
    } else {
        entry_lines el = {0};
        rc = one(l, root, 1, "", out, &el);
    }
    fy_document_destroy(doc);
    fy_diag_destroy(diag);     /* after the document, which refers to it */
    return rc;
}

int config_tool_from_json(const brigade_config *cfg, const char *json, size_t len, tool_cfg *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* The readers take a mutable config only to record warnings, which a
     * tenant's body never earns (no literal-secret warning: there is no
     * environment to put the secret in). */
    ld l = {.name = "body", .err = err, .errlen = errlen, .cfg = (brigade_config *)cfg, .api_body = true};
    if (config_from_json(&l, json, len, ld_tool_fn, out) < 0) {
        config_tool_free(out);
        return -1;
    }
    return 0;
}

int config_agent_from_json(const brigade_config *cfg, const char *json, size_t len,
                           config_tool_known_fn known, void *known_arg, agent_cfg *out,
                           char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    ld l = {.name = "body", .err = err, .errlen = errlen, .cfg = (brigade_config *)cfg, .api_body = true,
            .tool_known = known, .tool_known_arg = known_arg};
    if (config_from_json(&l, json, len, ld_agent_fn, out) < 0) {
        config_agent_free(out);
        return -1;
    }
    return 0;
}

int config_mcp_server_from_json(const brigade_config *cfg, const char *json, size_t len,
                                mcp_server_cfg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    ld l = {.name = "body", .err = err, .errlen = errlen, .cfg = (brigade_config *)cfg, .api_body = true};
    if (config_from_json(&l, json, len, ld_mcp_server_fn, out) < 0) {
        config_mcp_server_free(out);
        return -1;
    }
    out->tenant_def = config_xstrndup(json, len);
    return 0;
}
