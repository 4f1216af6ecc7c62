/* mcp_client_cli.c — `brigade mcp-client [--allow-private-networks] URL`:
 * brigade's MCP client (src/mcp: the hub's session and streamable HTTP
 * transport) run once against a server, for the MCP conformance suite
 * (scripts/mcp-conformance.sh), which starts a test server and runs this
 * command with the server's URL as the last argument. Egress applies as
 * for a configured server: a private address only with the flag. */
#include "app/cli.h"

#include <stdio.h>
#include <string.h>

#include "mcp/mcp.h"

static const char mcp_client_usage[] =
    "usage: brigade mcp-client [--allow-private-networks] URL\n"
    "  initialize, list the tools and call each (arguments from its schema);\n"
    "  exit 0 when every step answered, 1 otherwise, 2 on a usage error\n";

int app_mcp_client_main(int argc, char **argv)
{
    bool allow_private = false;
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--allow-private-networks")) allow_private = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(mcp_client_usage, stdout);
            return 0;
        } else if (argv[i][0] == '-' || url) {
            fprintf(stderr, "brigade mcp-client: unexpected argument \"%s\"\n%s", argv[i], mcp_client_usage);
            return 2;
        } else url = argv[i];
    }
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) || strlen(url) > 2048) {
        fprintf(stderr, "brigade mcp-client: an http or https URL is needed\n%s", mcp_client_usage);
        return 2;
    }
    return mcp_probe_run(url, allow_private, stdout);
}
