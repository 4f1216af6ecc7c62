/* mcp_client_cli.c — `brigade mcp-client [--allow-private-networks] URL`:
 * brigade's MCP client (src/mcp: the hub's session and streamable HTTP
 * transport) run once against a server, for the MCP conformance suite
 * (scripts/mcp-conformance.sh), which starts a test server and runs this
 * command with the server's URL as the last argument. Egress applies as
 * for a configured server: a private address only with the flag, or inside
 * a network of --allow-network (as egress.allow_networks). A server
 * that needs MCP authorization is authorized headlessly (src/mcp/
 * oauth_flow.c), with a pre-registered client from --client-id and
 * --client-secret-env, or from a JSON context in the environment variable
 * named by --client-context-env ({"client_id", "client_secret"}: the
 * conformance suite's MCP_CONFORMANCE_CONTEXT), else a client ID metadata
 * document's URL (--client-metadata-url), else dynamic registration. */
#include "app/cli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/egress_addr.h"
#include "mcp/mcp.h"

static const char mcp_client_usage[] =
    "usage: brigade mcp-client [--allow-private-networks] [--allow-network CIDR]... [--client-id ID]\n"
    "                          [--client-secret-env VAR]\n"
    "                          [--client-context-env VAR] [--client-metadata-url URL] URL\n"
    "  initialize, list the tools and call each (arguments from its schema);\n"
    "  a server answering 401 is authorized headlessly (MCP authorization);\n"
    "  exit 0 when every step answered, 1 otherwise, 2 on a usage error\n";

static int usage_error(const char *what)
{
    fprintf(stderr, "brigade mcp-client: %s\n%s", what, mcp_client_usage);
    return 2;
}

int app_mcp_client_main(int argc, char **argv)
{
    bool allow_private = false;
    egress_net nets[8];
    size_t n_nets = 0;
    const char *url = NULL, *client_id = NULL, *secret_env = NULL, *context_env = NULL, *metadata_url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--allow-private-networks")) allow_private = true;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(mcp_client_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--allow-network")) {
            char why[200], msg[300];
            if (i + 1 >= argc) return usage_error("--allow-network needs a network");
            if (n_nets == sizeof nets / sizeof nets[0]) return usage_error("at most 8 --allow-network");
            if (!egress_net_parse(argv[++i], &nets[n_nets], why, sizeof why)) {
                snprintf(msg, sizeof msg, "--allow-network %.100s: %.150s", argv[i], why);
                return usage_error(msg);
            }
            n_nets++;
        } else if (!strcmp(a, "--client-id") || !strcmp(a, "--client-secret-env") ||
                   !strcmp(a, "--client-context-env") || !strcmp(a, "--client-metadata-url")) {
            if (i + 1 >= argc || !argv[i + 1][0]) return usage_error("an option needs a value");
            const char *v = argv[++i];
            if (!strcmp(a, "--client-id")) client_id = v;
            else if (!strcmp(a, "--client-secret-env")) secret_env = v;
            else if (!strcmp(a, "--client-context-env")) context_env = v;
            else metadata_url = v;
        } else if (a[0] == '-' || url) {
            char msg[300];
            snprintf(msg, sizeof msg, "unexpected argument \"%.200s\"", a);
            return usage_error(msg);
        } else url = a;
    }
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) || strlen(url) > 2048)
        return usage_error("an http or https URL is needed");
    if (metadata_url && strncmp(metadata_url, "https://", 8) != 0)
        return usage_error("--client-metadata-url must be an https URL");
    mcp_probe_opts auth = {.client_id = client_id, .client_metadata_url = metadata_url,
                           .allow_nets = nets, .n_allow_nets = n_nets};
    if (secret_env) {
        auth.client_secret = getenv(secret_env);
        if (!auth.client_secret || !auth.client_secret[0]) return usage_error("--client-secret-env names an unset variable");
    }
    cJSON *ctx = NULL;
    const char *ctx_text = context_env ? getenv(context_env) : NULL;
    if (ctx_text && ctx_text[0]) {
        ctx = cJSON_Parse(ctx_text);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(ctx, "client_id");
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(ctx, "client_secret");
        if (!cJSON_IsObject(ctx)) {
            cJSON_Delete(ctx);
            return usage_error("--client-context-env: the variable does not hold a JSON object");
        }
        /* a context without client credentials (another scenario's) is no client */
        if (cJSON_IsString(id) && id->valuestring[0] && !client_id) {
            auth.client_id = id->valuestring;
            if (cJSON_IsString(sec) && sec->valuestring[0] && !auth.client_secret) auth.client_secret = sec->valuestring;
        }
    }
    int rc = mcp_probe_run(url, allow_private, &auth, stdout);
    cJSON_Delete(ctx);
    return rc;
}
