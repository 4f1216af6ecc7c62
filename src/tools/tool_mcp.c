/* tool_mcp.c — a tool of an MCP server (SERVER__TOOL): the call goes to
 * the run's user's instance of the server through the MCP hub (mcp/mcp.h),
 * which answers on the run's loop with the result already turned into text
 * and cut to the agent's tool-output cap. Progress the server reports goes
 * to the run as events. The caller's brigade credential is never part of
 * what the server gets: only the tool's name and arguments. */
#include "tools/tools_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/mcp.h"

/* The process's hub: one for all loops (instances are per user, not per
 * loop). Set by serve before any run starts, read-only afterwards. */
static mcp_hub *tools_hub;

void tools_set_mcp_hub(mcp_hub *hub) { tools_hub = hub; }
mcp_hub *tools_mcp_hub(void) { return tools_hub; }

/* The user's token for an oauth server's listing (the vault's; set by
 * serve before any run, read-only afterwards). */
static tools_mcp_token_fn tools_token_fn;
static void *tools_token_arg;

void tools_set_mcp_token(tools_mcp_token_fn fn, void *arg)
{
    tools_token_fn = fn;
    tools_token_arg = arg;
}

bool tools_mcp_token(const scope *sc, const char *provider, char *out, size_t outlen)
{
    return tools_token_fn && sc && tools_token_fn(tools_token_arg, sc, provider, out, outlen);
}

typedef struct exec_mcp {
    tool_exec base;
    mcp_call *call;
    void    (*auth_refused)(void *arg);
    void     *auth_refused_arg;
    void    (*progress)(void *arg, double progress, double total, const char *message);
    void     *progress_arg;
} exec_mcp;

static void mcp_done(void *arg, bool ok, bool auth_refused, const char *text, size_t len)
{
    exec_mcp *m = arg;
    m->call = NULL;
    if (auth_refused && m->auth_refused) m->auth_refused(m->auth_refused_arg);
    tool_exec_deliver(&m->base, ok, text, len);
    free(m);
}

static void mcp_progress(void *arg, double progress, double total, const char *message)
{
    exec_mcp *m = arg;
    if (m->progress) m->progress(m->progress_arg, progress, total, message);
}

tool_exec *tool_mcp_start(const tool_def *t, const tool_env *env, const cJSON *args,
                          size_t max_output, char *out, size_t outlen)
{
    if (!tools_hub || !t->mcp_server) {
        snprintf(out, outlen, "error: MCP servers are not running in this process");
        return NULL;
    }
    char *text = cJSON_PrintUnformatted(args);
    if (!text) {
        snprintf(out, outlen, "error: out of memory");
        return NULL;
    }
    exec_mcp *m = calloc(1, sizeof *m);
    if (!m) {
        free(text);
        snprintf(out, outlen, "error: out of memory");
        return NULL;
    }
    m->base.impl = EXEC_MCP;
    m->progress = env->progress;
    m->progress_arg = env->progress_arg;
    m->auth_refused = env->auth_refused;
    m->auth_refused_arg = env->auth_refused_arg;
    mcp_who who = {.tenant_id = env->scope ? env->scope->tenant_id : "",
                   .user_id = env->scope ? env->scope->user_id : "",
                   .tenant_def = t->mcp_server->tenant_def,
                   /* an oauth server's: the user's own token the run got from the
                    * vault for this call (never the caller's brigade credential) */
                   .authorization = t->mcp_auth_provider[0] ? env->auth_header_value : NULL};
    m->call = mcp_hub_call(tools_hub, env->loop, t->mcp_server->name, &who, t->mcp_tool, text,
                           max_output, mcp_done, mcp_progress, m);
    free(text);
    if (!m->call) {
        free(m);
        snprintf(out, outlen, "error: the call to the MCP server could not start");
        return NULL;
    }
    return &m->base;
}

void tool_mcp_cancel(tool_exec *x)
{
    exec_mcp *m = (exec_mcp *)x;
    mcp_call_cancel(m->call);
    free(m);
}
