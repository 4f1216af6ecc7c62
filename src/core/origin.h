/* origin.h — provenance: where each message of a run's context came from.
 *
 * Every message a run holds carries an `origin` member beside its role and
 * content: a JSON object the harness writes, never the model or the user
 * (docs/guard.md, "Provenance"). Its members:
 *
 *   kind       "system"  brigade wrote it (the system prompt, the note of
 *                        omitted messages, a refused call's error);
 *              "user"    the user's posted message;
 *              "model"   the model's reply ("model": the model's name);
 *              "tool"    a tool's output ("tool", "call_id"; an MCP tool's
 *                        also "mcp_server");
 *              "fetched" an HTTP tool's response ("tool", "call_id",
 *                        "url_host": the host it was fetched from);
 *              "memory"  the memory tool's answer ("tool", "call_id",
 *                        "entries": [{"key", "origin"}] for the entries it
 *                        read, each with the origin recorded when the entry
 *                        was written);
 *              "unknown" not recorded (a memory entry written before
 *                        brigade recorded origins).
 *   untrusted  true when the content may carry instructions no one
 *              trusted wrote: tool output (not the clock's), fetched
 *              content, the memory tool's answer when it read an entry
 *              (stored data, whoever wrote it). The guard's taint is
 *              decided by this flag (guard.h).
 *   inferred   true on a message stored before origins were recorded: the
 *              origin was inferred from its role.
 *   wrapped    "spotlight" (the tool's text inside brigade's markers) or
 *              "withheld" (brigade's notice in place of the text): the
 *              guard rewrote the content (spotlight.h).
 *
 * A memory entry's own origin (`entries[].origin`, GET /v1/memory/{key}):
 * {"kind":"user"} written through the API, or {"kind":"run", "run_id",
 * "session_id", "untrusted", "tainted_by": [kinds]} written by the memory
 * tool in a run, untrusted when untrusted content was in that run's
 * context at the time of the call (it could have steered what was saved);
 * {"kind":"unknown","untrusted":true} for an entry older than provenance.
 *
 * The origin is the harness's bookkeeping, never sent upstream: the
 * harness leaves it out of every message when it writes a model request
 * (run_model_body, src/runs/request_text.c).
 *
 * Includes: only <cjson/cJSON.h> and the freestanding <stdbool.h> and
 * <stdint.h> — no I/O (invariant 1, docs/architecture.md; checked by
 * tests/unit/core/test_core_purity.c). */
#ifndef BRIGADE_ORIGIN_H
#define BRIGADE_ORIGIN_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum origin_kind {
    ORIGIN_SYSTEM = 0,
    ORIGIN_USER,
    ORIGIN_MODEL,
    ORIGIN_TOOL,
    ORIGIN_FETCHED,
    ORIGIN_MEMORY,
    ORIGIN_UNKNOWN,
    ORIGIN_NKINDS
} origin_kind;

/* The member of a message that holds its origin. */
#define ORIGIN_MEMBER "origin"

const char *origin_kind_name(origin_kind k);
/* The kind of an origin object; anything unrecognised is ORIGIN_UNKNOWN. */
origin_kind origin_kind_of(const cJSON *origin);

/* A new origin object {"kind": k, "untrusted": untrusted}; NULL on
 * out-of-memory. */
cJSON *origin_new(origin_kind k, bool untrusted);

/* The origin of a message stored before origins were recorded, from its
 * role: user → user, assistant → model, tool → tool (untrusted, as every
 * tool's output was taken to be then), anything else → system; each with
 * "inferred": true. */
cJSON *origin_inferred(const char *role);

/* Is this message untrusted content? Its origin's "untrusted" flag; a
 * message without an origin object is untrusted when its role is "tool"
 * (the rule before provenance, kept for what carries none). */
bool origin_message_untrusted(const cJSON *message);
/* The kind of a message's origin; without one, inferred from its role. */
origin_kind origin_message_kind(const cJSON *message);

/* Give `message` this origin (taken), replacing any it had. false on
 * out-of-memory (the origin is freed). */
bool origin_set(cJSON *message, cJSON *origin);

/* Bit (1u << kind) for each kind in `mask`, as a JSON array of names
 * (new; NULL on out-of-memory). */
cJSON *origin_kinds_array(uint32_t mask);

#endif
