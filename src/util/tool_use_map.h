/* tool_use_map.h — one tool call in the two wire forms brigade speaks:
 * Anthropic's `tool_use` content block ({"type":"tool_use","id","name",
 * "input": object}) and OpenAI's `tool_calls` entry ({"id","type":"function",
 * "function":{"name","arguments": JSON text}}).
 *
 * Both the Anthropic provider (upstream/providers/anthropic_translate.c: requests out,
 * answers back) and the mock's Anthropic face (mock/mock_anthropic.c:
 * requests in) map between them; the mapping lives here so that they cannot
 * drift. It is in util/ rather than upstream/ because mock/ must not depend
 * on upstream/ (the provider kind `mock` depends on mock/, not the reverse),
 * and it is pure cJSON in, cJSON out, like json_strict — no new folder edge.
 * The callers keep their own error texts: these return NULL and say nothing.
 * The stop reason of the answer that carries the calls is mapped here too. */
#ifndef BRIGADE_TOOL_USE_MAP_H
#define BRIGADE_TOOL_USE_MAP_H

#include <stdbool.h>
#include <stddef.h>

struct cJSON;

/* The OpenAI tool call of an Anthropic tool_use block; its arguments are
 * the compact JSON text of `input`, "{}" when input is absent. NULL when
 * the block has no string id or name, when input is there but not an
 * object, or when it is absent and input_required. *args_len (if not NULL)
 * gets the length of the arguments text. */
struct cJSON *tool_use_to_call(const struct cJSON *block, bool input_required, size_t *args_len);

/* The Anthropic tool_use block of an OpenAI tool call. Its input is the
 * arguments parsed when they are a JSON object, {} when they are absent or
 * blank, and {"arguments": text} otherwise (what a model wrote is kept, not
 * dropped). NULL when the call has no string id or function name. */
struct cJSON *tool_call_to_use(const struct cJSON *call);

/* Why an answer ended, in both forms: OpenAI's finish_reason ⇄
 * Anthropic's stop_reason (stop ⇄ end_turn, length ⇄ max_tokens,
 * tool_calls ⇄ tool_use, content_filter ⇄ refusal). A stop sequence,
 * pause_turn, NULL and anything unknown read as a normal stop; OpenAI's
 * old function_call as tool use. */
const char *tool_use_stop_reason(const char *finish_reason);
const char *tool_use_finish_reason(const char *stop_reason);

#endif
