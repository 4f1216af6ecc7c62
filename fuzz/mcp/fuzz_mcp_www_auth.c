/* fuzz_mcp_www_auth.c — libFuzzer target for what an MCP server's 401/403
 * says in its WWW-Authenticate (src/mcp/oauth_www.c), and the well-known
 * URLs built from a URL (the challenge's resource_metadata, a PRM's
 * authorization server). A server is not trusted: nothing may crash or
 * overrun.
 *
 * Invariants (abort() when broken): an accepted challenge is a Bearer one;
 * every value is NUL-terminated within its field and holds no control
 * character; every URL built starts with the origin of what it was built
 * from and fits its slot. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/mcp_oauth.h"

static void check_value(const char *v, size_t cap)
{
    size_t n = strnlen(v, cap);
    if (n >= cap) abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    mcp_www_auth w;
    if (mcp_www_auth_parse(text, &w)) {
        if (!w.bearer) abort();
        check_value(w.resource_metadata, sizeof w.resource_metadata);
        check_value(w.scope, sizeof w.scope);
        check_value(w.error, sizeof w.error);
    }
    char u[MCP_OAUTH_MAX_WELL_KNOWN][MCP_OAUTH_URL_MAX], origin[MCP_OAUTH_URL_MAX];
    bool has_origin = mcp_url_origin(text, origin, sizeof origin);
    size_t n = mcp_prm_urls(text, u, MCP_OAUTH_MAX_WELL_KNOWN);
    for (size_t i = 0; i < n; i++)
        if (!has_origin || strncmp(u[i], origin, strlen(origin)) != 0 || strnlen(u[i], MCP_OAUTH_URL_MAX) >= MCP_OAUTH_URL_MAX) abort();
    size_t m = mcp_as_meta_urls(text, u, MCP_OAUTH_MAX_WELL_KNOWN);
    for (size_t i = 0; i < m; i++)
        if (!has_origin || strncmp(u[i], origin, strlen(origin)) != 0) abort();
    free(text);
    return 0;
}
