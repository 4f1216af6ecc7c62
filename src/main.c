/* main.c — the `brigade` command line: one binary, one subcommand a job.
 *
 *   brigade serve      the server (src/app/serve.c)
 *   brigade mock-llm   the mock model provider for tests and demos (src/mock/)
 *   brigade admin      tenants, users and keys straight against the store
 *   brigade audit      verify the audit log, print its signing key (src/app/audit_cli.c)
 *   brigade usage      usage reports (src/app/usage_cli.c)
 *   brigade chat       a terminal chat with an agent of a running brigade (src/app/chat_cli.c)
 *
 * Exit codes: 0 success, 1 a failure at run time (message on stderr),
 * 2 a usage error (bad flag or argument). */
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "app/cli.h"
#include "mock/mock_server.h"
#include "util/log.h"

static const char main_usage[] =
    "usage: brigade COMMAND [OPTIONS]\n"
    "\n"
    "brigade is a multi-user agent harness and OpenAI-compatible gateway.\n"
    "\n"
    "Commands:\n"
    "  serve      serve the HTTP API (brigade serve --help)\n"
    "  mock-llm   run the mock model provider (brigade mock-llm --help)\n"
    "  admin      create tenants, users and keys offline (brigade admin --help)\n"
    "  audit      verify the audit log end to end (brigade audit --help)\n"
    "  usage      usage and cost reports, also while serving (brigade usage --help)\n"
    "  chat       chat with an agent of a running brigade, as a user (brigade chat --help)\n"
    "  guard      measure and try the prompt-injection detectors (brigade guard --help)\n"
    "  mcp-client run brigade's MCP client once against a server URL (brigade mcp-client --help)\n"
    "\n"
    "  --version  print the version\n"
    "  --help     this text\n";

int main(int argc, char **argv)
{
    log_init_from_env();
    signal(SIGPIPE, SIG_IGN);
    /* Store work runs on libuv's thread pool and blocks there until the
     * writer commits; libuv's default of 4 threads would cap a group commit
     * at 4 callers. 32 lets many concurrent writes share one commit (the
     * threads mostly sleep). An explicit UV_THREADPOOL_SIZE wins. */
    setenv("UV_THREADPOOL_SIZE", "32", 0);   /* a peer that hangs up is an error return, not a death */
    if (argc < 2) {
        fputs(main_usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("brigade %s\n", BRIGADE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(main_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0) return app_serve_main(argc - 1, argv + 1);
    if (strcmp(cmd, "mock-llm") == 0) return mock_llm_main(argc - 1, argv + 1);
    if (strcmp(cmd, "admin") == 0) return app_admin_main(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0) return app_audit_main(argc - 1, argv + 1);
    if (strcmp(cmd, "usage") == 0) return app_usage_main(argc - 1, argv + 1);
    if (strcmp(cmd, "chat") == 0) return app_chat_main(argc - 1, argv + 1);
    if (strcmp(cmd, "guard") == 0) return app_guard_main(argc - 1, argv + 1);
    if (strcmp(cmd, "mcp-client") == 0) return app_mcp_client_main(argc - 1, argv + 1);
    fprintf(stderr, "brigade: unknown command \"%s\"\n\n%s", cmd, main_usage);
    return 2;
}
