/* serve_mcp_oauth.h — MCP servers with `auth: {kind: oauth}` wired to the
 * vault (serve_mcp_oauth.c): the vault's provider resolver and the tools'
 * token getter. */
#ifndef BRIGADE_APP_SERVE_MCP_OAUTH_H
#define BRIGADE_APP_SERVE_MCP_OAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "scope/scope.h"

/* vault_provider_resolver; arg is the api_env. */
int  serve_mcp_provider_resolve(void *arg, const char *tenant_id, const char *provider, const char *redirect_uri,
                                credential_provider_cfg *out, char *why, size_t whylen);
/* tools_mcp_token_fn; arg is the vault. */
bool serve_mcp_token(void *arg, const scope *sc, const char *provider, char *out, size_t outlen);

#endif
