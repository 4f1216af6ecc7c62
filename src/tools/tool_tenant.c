/* tool_tenant.c — one tenant's view of the catalogue and of its own tools
 * and agents (tool_tenant.h), and the snapshot a run takes of them. */
#include "tools/tool_tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/mcp.h"
#include "mcp/mcp_oauth.h"
#include "util/log.h"
#include "util/xalloc.h"

static bool tools_builtin(const char *name)
{
    return !strcmp(name, "memory") || !strcmp(name, "clock");
}

tools_tenant_status tools_tenant_load(store *st, const scope *sc, const brigade_config *cfg,
                                      tools_tenant *out)
{
    memset(out, 0, sizeof *out);
    out->cfg = cfg;
    store_status r = store_def_list(st, sc, STORE_DEF_TOOL, &out->rows, &out->n);
    if (r == STORE_OK) r = store_def_list(st, sc, STORE_DEF_MCP, &out->mcp_rows, &out->n_mcp);
    if (r != STORE_OK) {
        tools_tenant_free(out);
        return TOOLS_TENANT_ERROR;
    }
    return TOOLS_TENANT_OK;
}

void tools_tenant_free(tools_tenant *tt)
{
    store_free_defs(tt->rows, tt->n);
    store_free_defs(tt->mcp_rows, tt->n_mcp);
    tt->rows = tt->mcp_rows = NULL;
    tt->n = tt->n_mcp = 0;
}

/* A tenant's row of one kind by name: its own definition (with a body) or
 * its enabling of a catalogue entry (without). */
static const def_rec *def_row_named(const def_rec *rows, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].name, name)) return &rows[i];
    return NULL;
}

static const def_rec *tools_tenant_row(const tools_tenant *tt, const char *name)
{
    return def_row_named(tt->rows, tt->n, name);
}

const def_rec *tools_tenant_own(const tools_tenant *tt, const char *name)
{
    const def_rec *r = tools_tenant_row(tt, name);
    return r && r->body ? r : NULL;
}

const tool_cfg *tools_tenant_catalogue_tool(const tools_tenant *tt, const char *name)
{
    const def_rec *r = tools_tenant_row(tt, name);
    if (r && r->body) return NULL;              /* the tenant's own shadows it */
    const tool_cfg *tc = config_find_tool(tt->cfg, name);
    if (!tc) return NULL;
    return !tc->tenants_enable || r ? tc : NULL;
}

static const def_rec *tools_tenant_mcp_row(const tools_tenant *tt, const char *name)
{
    return def_row_named(tt->mcp_rows, tt->n_mcp, name);
}

const def_rec *tools_tenant_own_mcp(const tools_tenant *tt, const char *name)
{
    const def_rec *r = tools_tenant_mcp_row(tt, name);
    return r && r->body ? r : NULL;
}

const mcp_server_cfg *tools_tenant_catalogue_mcp(const tools_tenant *tt, const char *name)
{
    const def_rec *r = tools_tenant_mcp_row(tt, name);
    if (r && r->body) return NULL;              /* the tenant's own shadows it */
    const mcp_server_cfg *m = config_find_mcp_server(tt->cfg, name);
    if (!m) return NULL;
    return !m->tenants_enable || r ? m : NULL;
}

/* SERVER of SERVER__TOOL into buf, and *tool at TOOL; false when the name
 * has no such form. */
static bool tools_mcp_split(const char *name, char *buf, size_t buflen, const char **tool)
{
    const char *sep = strstr(name, CONFIG_MCP_SEP);
    if (!sep || sep == name || !sep[2] || (size_t)(sep - name) >= buflen) return false;
    memcpy(buf, name, (size_t)(sep - name));
    buf[sep - name] = '\0';
    if (tool) *tool = sep + 2;
    return true;
}

bool tools_tenant_knows(void *arg, const char *name)
{
    const tools_tenant *tt = arg;
    char server[STORE_DEF_NAME_MAX];
    if (tools_mcp_split(name, server, sizeof server, NULL))
        return tools_tenant_own_mcp(tt, server) || tools_tenant_catalogue_mcp(tt, server);
    return tools_builtin(name) || tools_tenant_own(tt, name) || tools_tenant_catalogue_tool(tt, name);
}

const agent_cfg *tools_tenant_catalogue_agent(const brigade_config *cfg, const char *name, bool enabled)
{
    const agent_cfg *a = config_find_agent(cfg, name);
    return a && (!a->tenants_enable || enabled) ? a : NULL;
}

tools_tenant_status tools_tenant_agent(store *st, const scope *sc, const tools_tenant *tt,
                                       const char *name, agent_cfg *own, const agent_cfg **agent,
                                       char *err, size_t errlen)
{
    memset(own, 0, sizeof *own);
    *agent = NULL;
    def_rec d;
    store_status r = store_def_get(st, sc, STORE_DEF_AGENT, name, &d);
    if (r != STORE_OK && r != STORE_NOT_FOUND) return TOOLS_TENANT_ERROR;
    if (r == STORE_OK && d.body) {
        char why[400];
        int rc = config_agent_from_json(tt->cfg, d.body, strlen(d.body), tools_tenant_knows,
                                        (void *)tt, own, why, sizeof why);
        def_rec_free(&d);
        if (rc < 0) {
            snprintf(err, errlen, "agent \"%.64s\" no longer loads: %s", name, why);
            return TOOLS_TENANT_UNUSABLE;
        }
        *agent = own;
        return TOOLS_TENANT_OK;
    }
    *agent = tools_tenant_catalogue_agent(tt->cfg, name, r == STORE_OK);
    def_rec_free(&d);
    return *agent ? TOOLS_TENANT_OK : TOOLS_TENANT_NOT_FOUND;
}

/* Does the server's registry serve this agent in this tenant exactly:
 * every tool it lists is the catalogue's and the tenant has it? */
static bool tools_server_serves(const tools_tenant *tt, const agent_cfg *a)
{
    for (size_t i = 0; i < a->n_tools; i++) {
        if (tools_builtin(a->tools[i])) continue;
        if (strstr(a->tools[i], CONFIG_MCP_SEP)) return false;
        const tool_cfg *tc = tools_tenant_catalogue_tool(tt, a->tools[i]);
        if (!tc || tools_tenant_own(tt, a->tools[i])) return false;
    }
    return true;
}

/* The server of an agent's tool SERVER__TOOL as this tenant has it: its
 * own (read from its definition once per run, kept in the run's set) or
 * the catalogue's; NULL when it has neither (the tool is left out and the
 * guard refuses a call of it as of any unknown tool). *why is set when the
 * tenant's own no longer loads. */
static const mcp_server_cfg *tools_run_mcp_server(const tools_tenant *tt, tools_run_set *out,
                                                  const char *name, const char **tool, char *why,
                                                  size_t whylen)
{
    char server[STORE_DEF_NAME_MAX];
    why[0] = '\0';
    if (!tools_mcp_split(name, server, sizeof server, tool)) return NULL;
    const def_rec *own = tools_tenant_own_mcp(tt, server);
    if (!own) return tools_tenant_catalogue_mcp(tt, server);
    for (size_t i = 0; i < out->n_own_mcp; i++)
        if (!strcmp(out->own_mcp[i].name, server)) return &out->own_mcp[i];
    mcp_server_cfg *m = &out->own_mcp[out->n_own_mcp];
    char err[400];
    if (config_mcp_server_from_json(tt->cfg, own->body, strlen(own->body), m, err, sizeof err) < 0) {
        snprintf(why, whylen, "the MCP server %s no longer loads: %.300s", server, err);
        return NULL;
    }
    out->n_own_mcp++;
    return m;
}

/* The MCP servers' tools the agent lists (SERVER__TOOL, or SERVER__* for
 * all a server offers), each server asked once for this user's list —
 * which starts the user's instance: this runs on the thread pool, where
 * waiting is allowed. A server that cannot be reached leaves the tools the
 * agent names explicitly as tools whose description says so (a call tries
 * again, and the model reads the error); SERVER__* then adds nothing. */
static void tools_run_set_add_mcp(const tools_tenant *tt, tools_run_set *out, const agent_cfg *a,
                                  const scope *sc)
{
    mcp_hub *hub = tools_mcp_hub();
    tool_registry *reg = out->registry;
    const mcp_server_cfg **srvs = xcalloc(a->n_tools ? a->n_tools : 1, sizeof *srvs);
    const char **wants = xcalloc(a->n_tools ? a->n_tools : 1, sizeof *wants);
    out->own_mcp = xcalloc(a->n_tools ? a->n_tools : 1, sizeof *out->own_mcp);
    for (size_t i = 0; i < a->n_tools; i++) {
        char why[400];
        srvs[i] = tools_run_mcp_server(tt, out, a->tools[i], &wants[i], why, sizeof why);
        /* a tenant's own server that no longer loads (the configuration
         * changed under it): its tools are left out, and said why */
        if (!srvs[i] && why[0]) log_warn("run of tenant %s: %s", sc ? sc->tenant_id : "?", why);
    }
    for (size_t i = 0; i < a->n_tools; i++) {
        const mcp_server_cfg *srv = srvs[i];
        if (!srv) continue;
        bool seen = false;   /* this server was listed for an earlier name */
        for (size_t j = 0; j < i && !seen; j++) seen = srvs[j] == srv;
        if (seen) continue;
        mcp_tool_list list = {0};
        char why[300] = "MCP servers are not running in this process";
        mcp_who who = {.tenant_id = sc ? sc->tenant_id : "", .user_id = sc ? sc->user_id : "",
                       .tenant_def = srv->tenant_def};
        /* a server with `auth: {kind: oauth}` lists its tools to the user's
         * own token: without one yet, the tools the agent names are offered
         * and a call asks for the user's consent */
        char provider[MCP_OAUTH_PROVIDER_MAX] = "", authz[8192] = "";
        bool authorized = true;
        if (srv->oauth) {
            mcp_oauth_provider_name(srv->name, srv->url, srv->oauth_client_id,
                                    srv->tenant_def && sc ? sc->tenant_id : "", provider);
            authorized = tools_mcp_token(sc, provider, authz, sizeof authz);
            who.authorization = authorized ? authz : NULL;
            if (!authorized)
                snprintf(why, sizeof why, "the user has not authorized brigade at the MCP server %s yet; "
                         "calling this tool asks them to", srv->name);
        }
        bool ok = hub && authorized && mcp_hub_list_tools(hub, srv->name, &who, &list, why, sizeof why);
        explicit_bzero(authz, sizeof authz);
        /* every name of the agent's for this server, in the agent's order */
        for (size_t j = i; j < a->n_tools; j++) {
            if (srvs[j] != srv) continue;
            const char *want = wants[j];
            bool all = !strcmp(want, "*");
            if (!ok) {
                if (!all) tools_registry_add_mcp(reg, srv, want, NULL, why);
                continue;
            }
            for (size_t k = 0; k < list.n; k++)
                if (all || !strcmp(list.items[k].name, want))
                    tools_registry_add_mcp(reg, srv, list.items[k].name, &list.items[k], NULL);
        }
        mcp_tool_list_free(&list);
        if (provider[0]) tools_registry_set_mcp_auth(reg, srv->name, provider);
    }
    free(srvs);
    free(wants);
}

static tools_tenant_status tools_run_set_build(const tools_tenant *tt, tools_run_set *out,
                                               char *err, size_t errlen)
{
    const agent_cfg *a = out->agent;
    const tool_cfg **list = xcalloc(a->n_tools ? a->n_tools : 1, sizeof *list);
    out->own_tools = xcalloc(a->n_tools ? a->n_tools : 1, sizeof *out->own_tools);
    size_t n = 0;
    tools_tenant_status res = TOOLS_TENANT_OK;
    for (size_t i = 0; i < a->n_tools && res == TOOLS_TENANT_OK; i++) {
        const char *name = a->tools[i];
        const def_rec *own = tools_builtin(name) ? NULL : tools_tenant_own(tt, name);
        if (own) {
            char why[400];
            tool_cfg *tc = &out->own_tools[out->n_own_tools];
            if (config_tool_from_json(tt->cfg, own->body, strlen(own->body), tc, why, sizeof why) < 0) {
                snprintf(err, errlen, "tool \"%.64s\" no longer loads: %s", name, why);
                res = TOOLS_TENANT_UNUSABLE;
                break;
            }
            out->n_own_tools++;
            list[n++] = tc;
            continue;
        }
        /* A catalogue tool the tenant does not have is left out: the
         * guard refuses a call of it as it refuses any unknown tool. */
        const tool_cfg *tc = tools_builtin(name) ? NULL : tools_tenant_catalogue_tool(tt, name);
        if (tc) list[n++] = tc;
    }
    if (res == TOOLS_TENANT_OK) {
        out->registry = tools_registry_of(list, n, err, errlen);
        if (!out->registry) res = TOOLS_TENANT_UNUSABLE;
        else tools_run_set_add_mcp(tt, out, a, out->sc);
        out->tools = out->registry;
    }
    free(list);
    return res;
}

tools_tenant_status tools_run_set_resolve(store *st, const scope *sc, const brigade_config *cfg,
                                          const tool_registry *server, const char *agent_name,
                                          tools_run_set *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    tools_tenant tt;
    if (tools_tenant_load(st, sc, cfg, &tt) != TOOLS_TENANT_OK) return TOOLS_TENANT_ERROR;
    tools_tenant_status res = tools_tenant_agent(st, sc, &tt, agent_name, &out->own_agent, &out->agent,
                                                 err, errlen);
    if (res == TOOLS_TENANT_OK) {
        out->sc = sc;
        if (tools_server_serves(&tt, out->agent)) out->tools = server;
        else res = tools_run_set_build(&tt, out, err, errlen);
        out->sc = NULL;   /* the caller's; not kept */
    }
    tools_tenant_free(&tt);
    if (res != TOOLS_TENANT_OK) tools_run_set_free(out);
    return res;
}

void tools_run_set_free(tools_run_set *s)
{
    if (!s) return;
    tools_registry_free(s->registry);     /* before the tool_cfgs it points into */
    for (size_t i = 0; i < s->n_own_tools; i++) config_tool_free(&s->own_tools[i]);
    free(s->own_tools);
    for (size_t i = 0; i < s->n_own_mcp; i++) config_mcp_server_free(&s->own_mcp[i]);
    free(s->own_mcp);
    config_agent_free(&s->own_agent);
    memset(s, 0, sizeof *s);
}
