/* pii_policy.h — an agent's `guard: {pii: {input, output}}` policy
 * (config.h guard_pii_action, docs/guard.md "PII"): personal data found by
 * util/pii.h in what the model is sent and what it answers.
 *
 *   input   the user's message and each tool result, as the run receives
 *           them (guard.c calls guard_pii_input), and every user and tool
 *           message of each model request, history included (the harness
 *           calls guard_pii_request before the call);
 *   output  the model's reply (guard.c calls guard_pii_output), before the
 *           core sees it: the final answer returned and persisted is the
 *           redacted one.
 *
 * `flag` adds a guard.flagged payload {channel, tool?, detector: "pii",
 * score: 1, action, labels: the kinds, spans: offsets and kinds} — never a
 * value — and a guardrail span; `redact` also replaces each value by its
 * kind's token ([EMAIL], [CARD], …). Nothing here blocks. On the run's
 * loop: the scan is linear and measured (docs/guard.md). */
#ifndef BRIGADE_GUARD_PII_POLICY_H
#define BRIGADE_GUARD_PII_POLICY_H

#include <cjson/cJSON.h>

#include "guard/guard.h"

/* One message the run received: the user's ("user") or a tool result
 * ("tool", the tool's name). Its content may be rewritten; a flag's payload
 * is appended to *events (made when NULL). */
void guard_pii_input(const guard_ctx *ctx, cJSON *message, const char *channel, const char *tool,
                     cJSON **events);
/* The model's reply (an assistant message): its content, as above, on the
 * channel "model". */
void guard_pii_output(const guard_ctx *ctx, cJSON *message, cJSON **events);
/* A chat request about to be sent: with input `redact`, the content of its
 * user and tool messages is redacted (no events: each was flagged when it
 * arrived). */
void guard_pii_request(const guard_ctx *ctx, cJSON *request);

#endif
