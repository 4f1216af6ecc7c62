/* tool_tenant.h — what one tenant may use: the server's catalogue (the
 * config file's tools, agents and MCP servers; an entry with `tenants: enable` only once
 * the tenant's admin enabled it), the tenant's own tools and agents (stored
 * as JSON, read by the config readers), and the built-ins. A tenant's own
 * entry takes precedence over a catalogue entry of the same name within
 * that tenant (the API refuses to create one while the catalogue has the
 * name; the catalogue may gain it later). Nothing here reaches another
 * tenant: every read is scoped to the caller's tenant by the store.
 *
 * A run resolves its agent and tools once, at its start, into a
 * tools_run_set that the run owns: a PATCH or DELETE during the run changes
 * the store, never the memory the run reads. */
#ifndef BRIGADE_TOOL_TENANT_H
#define BRIGADE_TOOL_TENANT_H

#include "tools/tools.h"

/* Limits of a tenant's own definitions (docs/tools.md). */
#define TOOLS_TENANT_MAX_TOOLS 64
#define TOOLS_TENANT_MAX_AGENTS 64
#define TOOLS_TENANT_TOOL_BODY_MAX (64u << 10)
#define TOOLS_TENANT_AGENT_BODY_MAX (96u << 10)
#define TOOLS_TENANT_MAX_MCP 32
#define TOOLS_TENANT_MCP_BODY_MAX (32u << 10)

typedef enum tools_tenant_status {
    TOOLS_TENANT_OK = 0,
    TOOLS_TENANT_NOT_FOUND,   /* no such agent for this tenant (also: another tenant's) */
    TOOLS_TENANT_UNUSABLE,    /* it exists but does not load any more (err says why) */
    TOOLS_TENANT_ERROR        /* the store failed */
} tools_tenant_status;

/* One tenant's tool and MCP server rows (its own and the catalogue entries
 * enabled), read once, for the questions below. */
typedef struct tools_tenant {
    const brigade_config *cfg;
    def_rec              *rows;
    size_t                n;
    def_rec              *mcp_rows;
    size_t                n_mcp;
} tools_tenant;

tools_tenant_status tools_tenant_load(store *st, const scope *sc, const brigade_config *cfg,
                                      tools_tenant *out);
void tools_tenant_free(tools_tenant *tt);
/* The tenant's own definition of a tool, or NULL. */
const def_rec *tools_tenant_own(const tools_tenant *tt, const char *name);
/* The catalogue tool of that name if the tenant has it (`tenants: all`, or
 * enabled), else NULL. A name the tenant defines itself is not the
 * catalogue's for it: NULL. */
const tool_cfg *tools_tenant_catalogue_tool(const tools_tenant *tt, const char *name);
/* The tenant's own MCP server definition of that name, or NULL. */
const def_rec *tools_tenant_own_mcp(const tools_tenant *tt, const char *name);
/* The catalogue MCP server of that name if the tenant has it (`tenants:
 * all`, or enabled) and does not define its own of that name, else NULL. */
const mcp_server_cfg *tools_tenant_catalogue_mcp(const tools_tenant *tt, const char *name);
/* May an agent of this tenant list this tool? (config_tool_known_fn) A
 * SERVER__TOOL or SERVER__* needs SERVER to be the tenant's own MCP server
 * or a catalogue one it has. */
bool tools_tenant_knows(void *tt, const char *name);

/* A catalogue agent the tenant has, or NULL (enabled = a row enables it). */
const agent_cfg *tools_tenant_catalogue_agent(const brigade_config *cfg, const char *name, bool enabled);

/* An agent as the tenant sees it: its own (parsed into *own, which the
 * caller frees with config_agent_free) or the catalogue's (*agent points
 * into the configuration). */
tools_tenant_status tools_tenant_agent(store *st, const scope *sc, const tools_tenant *tt,
                                       const char *name, agent_cfg *own, const agent_cfg **agent,
                                       char *err, size_t errlen);

/* What one run uses, owned by the run. */
typedef struct tools_run_set {
    const agent_cfg     *agent;       /* &own_agent, or the catalogue's */
    agent_cfg            own_agent;
    tool_cfg            *own_tools;   /* the tenant's own tools the agent lists */
    size_t               n_own_tools;
    mcp_server_cfg      *own_mcp;     /* the tenant's own MCP servers the agent uses */
    size_t               n_own_mcp;
    tool_registry       *registry;    /* owned; NULL when the server's serves */
    const tool_registry *tools;       /* what the guard and the model see */
    const scope         *sc;          /* while resolving: whose MCP instances */
} tools_run_set;

tools_tenant_status tools_run_set_resolve(store *st, const scope *sc, const brigade_config *cfg,
                                          const tool_registry *server, const char *agent_name,
                                          tools_run_set *out, char *err, size_t errlen);
void tools_run_set_free(tools_run_set *s);

#endif
