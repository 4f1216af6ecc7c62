/* mcp.h — brigade's Model Context Protocol client: the MCP servers of the
 * configuration (`mcp_servers:`), run and spoken to by one hub, whose
 * tools agents use as SERVER__TOOL (docs/mcp.md).
 *
 * The hub owns every server instance on a thread of its own with its own
 * libuv loop: an instance is per (server, tenant, user) when the server is
 * `per_user` (the default for stdio), else one per server. Instances are
 * started on first use, stopped when idle, bounded in number per server
 * (the least recently used is stopped for a new one), and started again
 * after a crash with a growing back-off. Loops and pool threads talk to
 * the hub through its inbox; answers come back on the caller's own loop.
 *
 * A server never gets brigade's environment, the caller's brigade
 * credential, or anything of another user: a stdio child's environment is
 * what its configuration declares plus PATH, its working directory is its
 * user's own (data_dir/mcp/SERVER/TENANT/USER). */
#ifndef BRIGADE_MCP_H
#define BRIGADE_MCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "config/config.h"

typedef struct mcp_hub mcp_hub;

/* Start the hub's thread (named "mcp"). The configuration must outlive the
 * hub. NULL with err when the thread cannot start. */
mcp_hub *mcp_hub_start(const brigade_config *cfg, char *err, size_t errlen);
/* Stop every instance (stdio children get SIGTERM, then SIGKILL), answer
 * every waiting request with an error, join the thread, free. */
void     mcp_hub_stop(mcp_hub *h);

/* Whose instance: per_user servers use tenant and user; others ignore them.
 * tenant_def: a tenant's own server (mcp_server_cfg.tenant_def), NULL for
 * the configuration's; the server is then read from it, not looked up by
 * name, and its instances are that tenant's alone. */
typedef struct mcp_who {
    const char *tenant_id;
    const char *user_id;
    const char *tenant_def;
    /* A server with `auth: {kind: oauth}`: the user's own Authorization
     * header value ("Bearer …", from the vault), sent on every request of
     * the user's session from now on; NULL: none. A secret: never logged. */
    const char *authorization;
} mcp_who;

/* One tool a server offers (after its allow-list). */
typedef struct mcp_tool_info {
    char *name;               /* the server's name for it */
    char *description;
    char *input_schema;       /* JSON text of inputSchema ({"type":"object"} if none) */
} mcp_tool_info;

typedef struct mcp_tool_list {
    mcp_tool_info *items;
    size_t         n;
} mcp_tool_list;

/* The server's tools for this user, starting the user's instance if it is
 * not running. BLOCKS until the list is known or the server's
 * startup_timeout_ms passed: call it from a thread-pool worker, never from
 * a loop. False with err ("the MCP server fs did not start: …"). */
bool mcp_hub_list_tools(mcp_hub *h, const char *server, const mcp_who *who, mcp_tool_list *out,
                        char *err, size_t errlen);
void mcp_tool_list_free(mcp_tool_list *l);

/* A tools/call's answer: the text for the model, already cut to the
 * max_output given (with a note when cut). ok=false: the server said
 * isError, or the call failed (the text says why). auth_refused: it failed
 * because an HTTP server refused the user's own token (mcp_who's
 * authorization) with a 401, or a 403 asking for more scope. */
typedef void (*mcp_call_done_fn)(void *arg, bool ok, bool auth_refused, const char *text, size_t len);

/* The JSON-RPC error code the HTTP transport gives a request whose user
 * token the server refused (see mcp_call_done_fn): the last of JSON-RPC's
 * range for implementation errors (the SDKs use the first few). A server
 * could send it itself; it would only have its own user asked to connect
 * again, which a 401 of its own does too. Read only for servers with
 * `auth: {kind: oauth}`. */
#define MCP_ERR_AUTH_REFUSED (-32099)
/* Egress refused an address of an MCP server (its URL, or an endpoint of
 * its authorization): what was refused, for the `egress.refuse` audit
 * entry (mcp_hub_set_on_egress_refused). Never the URL or anything of the
 * user's. */
typedef struct mcp_egress_refusal {
    char cls[32];       /* egress_class_name */
    char address[64];
    char form[32];      /* egress_via_name, "" when the address came plain */
} mcp_egress_refusal;
/* Called on a thread-pool worker of the hub (it may block: a store write)
 * for every refused address: the server's name, the tenant and user whose
 * instance it was (a shared server's: the user who started it). Set
 * before any call. */
typedef void (*mcp_egress_refused_fn)(void *arg, const char *server, const char *tenant_id,
                                      const char *user_id, const mcp_egress_refusal *r);
void mcp_hub_set_on_egress_refused(mcp_hub *h, mcp_egress_refused_fn fn, void *arg);
/* A progress notification of the call: progress, total (< 0 when not
 * given), message (NULL when none). */
typedef void (*mcp_call_progress_fn)(void *arg, double progress, double total, const char *message);

typedef struct mcp_call mcp_call;

/* Call a tool on the caller's loop `loop` (the loop's own thread).
 * `done` is called exactly once, on that loop, on a later turn — unless
 * mcp_call_cancel came first. `arguments` is the JSON object text. */
mcp_call *mcp_hub_call(mcp_hub *h, uv_loop_t *loop, const char *server, const mcp_who *who,
                       const char *tool, const char *arguments, size_t max_output,
                       mcp_call_done_fn done, mcp_call_progress_fn progress, void *arg);
/* On the caller's loop: stop waiting (`done` is not called); the server is
 * told with notifications/cancelled. */
void      mcp_call_cancel(mcp_call *c);

/* `brigade mcp-client URL` (probe.c): one session with the streamable
 * HTTP server at url, on a loop of its own — initialize, tools/list, every
 * tool called with arguments made from its schema — reported on `out`.
 * A server that answers 401 is authorized headlessly (MCP authorization:
 * the authorization URL is fetched and the code taken from its redirect),
 * as the client of `auth` (all fields may be NULL: dynamic registration).
 * 0 when every step answered, 1 otherwise. For the MCP conformance suite. */
typedef struct mcp_probe_opts {
    const char *client_id;              /* pre-registered */
    const char *client_secret;
    const char *client_metadata_url;    /* a client ID metadata document's URL */
    const egress_net *allow_nets;       /* reachable although private (as egress.allow_networks) */
    size_t      n_allow_nets;
} mcp_probe_opts;
int       mcp_probe_run(const char *url, bool allow_private_networks, const mcp_probe_opts *opts, FILE *out);

/* Instances running now (for tests and metrics). */
size_t    mcp_hub_instances(mcp_hub *h);

#endif
