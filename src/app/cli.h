/* cli.h — the report commands of the `brigade` command line that read the
 * store and may run while `brigade serve` uses the same data directory
 * (SQLite WAL: readers do not block the server's writer, and see one
 * consistent snapshot each). */
#ifndef BRIGADE_APP_CLI_H
#define BRIGADE_APP_CLI_H

/* `brigade audit verify|pubkey` (audit_cli.c). Exit 0 intact, 1 tampered,
 * 2 usage error, 3 the log could not be read. */
int app_audit_main(int argc, char **argv);

/* `brigade usage` (usage_cli.c): usage reports as a table, CSV or JSON. */
int app_usage_main(int argc, char **argv);

/* `brigade chat` (chat_cli.c): an interactive terminal client of a running
 * brigade — a user key, streaming, tool calls, approvals, /commands. */
int app_chat_main(int argc, char **argv);

/* `brigade guard eval|scan|features` (guard_cli.c): the injection detectors
 * offline. Exit 0 (scan: 0 clean, 1 flagged), 2 usage or input error. */
int app_guard_main(int argc, char **argv);

/* `brigade mcp-client URL` (mcp_client_cli.c): brigade's MCP client run
 * once against a server (the MCP conformance suite drives it). */
int app_mcp_client_main(int argc, char **argv);

#endif
