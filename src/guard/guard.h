/* guard.h — the harness's checks, in one place: its contract.
 *
 * invariant 1, docs/architecture.md (complete mediation) says the harness performs an
 * agent core's effect only after its own checks. Those checks live here,
 * behind two calls the harness (src/runs/) makes:
 *
 *   - guard_before_effect() before every effect, and again before each
 *     tool call of a CALL_TOOLS effect: allow, refuse (the call does not
 *     run; the reason becomes its result so the model can correct itself),
 *     or stop (the run ends, failed, with the decision's code and reason),
 *     or needs-approval (a declared tool's `approval:` policy matched the
 *     call: the run waits for a person, runs/approvals.c).
 *   - guard_after_result() after every result — the run's start (the user
 *     message and the session's history), a resume, a model's reply, a
 *     batch of tool results — before the core sees it: pass, or flag (the
 *     run ends, failed, with the flag's code and reason). Tool results may
 *     be rewritten in place (spotlighted or withheld), and every detector
 *     hit comes back as a `guard.flagged` event payload for the run's
 *     stream.
 *
 * The agent's `guard:` policy (config.h agent_guard_cfg, docs/guard.md):
 *   - user input flagged by a detector (engine.h): flag (an event) or block
 *     (the run fails with code `guard_blocked`, naming the detector);
 *   - tool output flagged: flag, spotlight or drop it (spotlight.h);
 *   - the MCP tools offered at a run's start, their descriptions and
 *     schemas, by the same policy: a flagged one taints the run from its
 *     first step (flag, spotlight: also wrapped) or is not offered and its
 *     call refused (drop) (tool_descriptions.h);
 *   - taint: once untrusted content is in the run's context — a message
 *     whose origin (core/origin.h) is untrusted: a tool's output (not the
 *     clock's, not a refused call's error), fetched content, the memory
 *     tool's answer when it read an entry — this run's or, through the
 *     history, an earlier run's of the session, calls of tools with
 *     effects write or external need a person's approval or are refused
 *     (`tainted_tools`);
 *   - exfiltration: in a tainted run, a call of a write or external tool
 *     whose arguments carry a value of the user's (exfil.h) is refused,
 *     and a final answer with a markdown image or link that carries one
 *     (or any image URL with a query string) ends the run failed.
 *
 * Today's checks: the loop guard (the same tool with the same arguments
 * more than the agent's max_repeated_tool_calls in one run), the agent's
 * tool permission, and the arguments against the tool's JSON schema. Each
 * decision names the check that made it and has a machine code and words.
 * The checks of one tool call are traced: one "guardrail" span per check
 * that ran, a child of the call's span (brigade.guardrail.check and
 * .decision), as docs/observability.md lists.
 *
 * The per-run and per-session cost caps are not here: they are part of
 * the model call's budget reservation (govern/).
 *
 * A guard_run is one run's memory (the loop guard's count of calls, the
 * taint, the user's sensitive values); it is used on the run's loop only.
 * Nothing here blocks or does I/O: the detectors are in memory (engine.h). */
#ifndef BRIGADE_GUARD_H
#define BRIGADE_GUARD_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/step.h"
#include "obs/obs.h"
#include "scope/scope.h"
#include "tools/tools.h"

/* The run a decision is about: what a check may look at. */
typedef struct guard_ctx {
    const scope         *sc;          /* whose run: the user and credential */
    const agent_cfg     *agent;       /* its agent: tools, limits */
    const tool_registry *tools;       /* the run's tools: its tenant's snapshot (tool_tenant.h) */
    const char          *run_id;
    const char          *session_id;
} guard_ctx;

typedef enum guard_effect_kind {
    GUARD_EFFECT_MODEL_CALL = 1,      /* `json`: the chat-completions request */
    GUARD_EFFECT_TOOL_CALLS,          /* `json`: the batch of tool calls, before any runs */
    GUARD_EFFECT_TOOL_CALL,           /* one call of the batch: tool_name, arguments, span */
    GUARD_EFFECT_FINISH,              /* `json`: the final assistant message */
} guard_effect_kind;

typedef struct guard_effect {
    guard_effect_kind kind;
    const cJSON *json;
    const char  *tool_name;           /* TOOL_CALL */
    const char  *arguments;           /* TOOL_CALL: the model's JSON text */
    obs_span    *span;                /* TOOL_CALL: the call's span (parent of decisions) */
    /* MODEL_CALL: which of the request's messages are the conversation's,
     * by the core's numbers (core/step.h), or NULL. What the guard gathers
     * from a request (the user's values, the taint) only grows, so a
     * message it has read at an earlier model call of the run is not read
     * again. */
    const step_context_ref *context;
} guard_effect;

typedef enum guard_verdict {
    GUARD_ALLOW = 0,
    GUARD_REFUSE,                     /* this call does not run; `reason` is its result */
    GUARD_STOP,                       /* the run ends, failed with `code` and `reason` */
    GUARD_NEEDS_APPROVAL,             /* TOOL_CALL: the tool's approval policy asks for a
                                         person (approval_when.h); `reason` says which
                                         rule, `tool` is set */
} guard_verdict;

typedef struct guard_decision {
    guard_verdict   verdict;
    const char     *check;            /* the check that decided; NULL when all allowed */
    const char     *code;             /* "tool_not_allowed", "invalid_arguments",
                                         "repeated_tool_call"; NULL when allowed */
    char            reason[300];      /* in words, for the model or the run's error */
    const tool_def *tool;             /* TOOL_CALL allowed: the tool to run */
} guard_decision;

typedef enum guard_result_kind {
    GUARD_RESULT_MODEL_REPLY = 1,     /* `json`: the assistant message */
    GUARD_RESULT_TOOL_RESULTS,        /* `json`: the tool messages, in call order (may be
                                         rewritten: spotlighted, withheld) */
    GUARD_RESULT_START,               /* `json`: the user message; `history`: the session's */
    GUARD_RESULT_RESUME,              /* `history`: the conversation so far */
} guard_result_kind;

typedef struct guard_result {
    guard_result_kind kind;
    cJSON            *json;
    const cJSON      *history;
    cJSON            *tools;          /* START, RESUME: the tools offered to the model (may be
                                         rewritten: a poisoned MCP tool spotlighted or removed,
                                         tool_descriptions.h) */
} guard_result;

typedef struct guard_review {
    bool        flagged;              /* false: pass */
    const char *check, *code;
    char        reason[300];
    cJSON      *events;               /* NULL or an array of `guard.flagged` payloads:
                                         the caller emits and frees them */
} guard_review;

typedef struct guard_run guard_run;

guard_run *guard_run_new(void);
void       guard_run_free(guard_run *g);

/* Is untrusted content in the run's context (the taint)? *kinds (may be
 * NULL) gets the origin kinds that brought it, as bits 1u << origin_kind.
 * The harness records it with what the run writes to memory. */
bool guard_run_tainted(const guard_run *g, uint32_t *kinds);

guard_decision guard_before_effect(guard_run *g, const guard_ctx *ctx, const guard_effect *e);
/* The `guard.flagged` payloads of guard_before_effect's taint and
 * exfiltration decisions since the last call (NULL: none); the caller
 * emits and frees them. */
cJSON         *guard_take_events(guard_run *g);
guard_review   guard_after_result(guard_run *g, const guard_ctx *ctx, const guard_result *r);

#endif
