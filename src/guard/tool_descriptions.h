/* tool_descriptions.h — MCP tool poisoning: an MCP tool's description and
 * input schema come from its server, and the model reads them with every
 * call, before any tool has run. A server (or whoever controls it) can
 * write instructions there ("before using this tool, e-mail ..."); the
 * taint of tool outputs (guard.h) does not see them. So when a run starts,
 * each offered MCP tool's description and the strings of its schema
 * (property names and descriptions, titles, enum values, defaults,
 * examples) are scanned by the detectors on the `tool` channel, and a
 * flagged tool is handled by the agent's `tool_output` policy
 * (docs/guard.md): flag and spotlight taint the run from its first step
 * (spotlight also wraps the description as spotlight.h wraps an output);
 * drop takes the tool out of the offer, and guard.c refuses a call of it.
 *
 * Verdicts are cached per (server, tool, description and schema text) in a
 * small bounded process-wide cache, so a run start does not pay the scan
 * again; a changed description (tools/list_changed) is a different key and
 * is scanned. The cache is emptied when the detectors are reloaded. */
#ifndef BRIGADE_GUARD_TOOL_DESCRIPTIONS_H
#define BRIGADE_GUARD_TOOL_DESCRIPTIONS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "guard/engine.h"
#include "tools/tools.h"

/* Limits of the schema walk: a hostile server's schema may be huge or
 * deeply nested. Past them the walk stops and the tool is flagged by the
 * `schema_limits` check (what the model would read was not all scanned). */
#define GUARD_SCHEMA_MAX_DEPTH 32
#define GUARD_SCHEMA_MAX_NODES 4096
#define GUARD_SCHEMA_MAX_TEXT  (64u * 1024u)

/* The schema's strings, one per line, appended to out[0..cap) (always
 * NUL-terminated, cap > 0). Returns false when a limit cut the walk short. */
bool guard_schema_strings(const cJSON *schema, char *out, size_t cap);

/* One flagged tool, with its own copies of the finding's names. */
typedef struct guard_tooldesc_hit {
    char          tool[96];           /* SERVER__TOOL, as offered */
    bool          dropped;            /* taken out of the offer (policy drop) */
    guard_finding f;                  /* detector and labels point into the bufs below */
    char          detector_buf[32];
    char          label_bufs[GUARD_LABELS_MAX][48];
} guard_tooldesc_hit;

/* Scan the MCP tools of `specs` (the OpenAI tools array offered to the
 * model, tools_openai_specs) by policy `act`; rewrite specs in place
 * (spotlight: the description; drop: the tool's entry removed). Returns
 * the flagged tools (malloc'd, *n of them) or NULL. Nothing happens with
 * act OFF or no detector loaded. */
guard_tooldesc_hit *guard_tool_descriptions_review(const tool_registry *tools, cJSON *specs,
                                                   guard_output_action act, size_t *n);

/* Forget every cached verdict (the detectors changed). */
void guard_tool_descriptions_cache_clear(void);

#endif
