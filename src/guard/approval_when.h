/* approval_when.h — does a tool call need a person's approval? The tool's
 * policy (config.h: never, always, or `when` conditions on the arguments)
 * applied to one call's arguments.
 *
 * Pure and bounded: the arguments come from a model (hostile input), the
 * patterns from the operator. A JSON pointer is resolved in one walk; a glob
 * (`*` any run of bytes, `?` one byte, `\` quotes the next) is matched by
 * the two-cursor method that remembers only the last `*`, so its time is at
 * most |pattern| × |value| steps — and values longer than
 * APPROVAL_VALUE_MAX bytes are not matched at all but count as matching
 * (fail safe: a call the policy cannot judge waits for a person). So is a
 * value of the wrong type (a number tested with `matches`, a string with
 * `over`). A pointer that names nothing does not match. */
#ifndef BRIGADE_APPROVAL_WHEN_H
#define BRIGADE_APPROVAL_WHEN_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

#define APPROVAL_VALUE_MAX   8192   /* bytes of a string value a glob is matched against */
#define APPROVAL_PATTERN_MAX 256    /* bytes of a pattern or pointer (the config reader's bound) */

/* Does the policy ask for approval of a call with these arguments (a JSON
 * object, or NULL when they could not be parsed: then any condition
 * counts as met)? When it does, `reason` says why in words (the rule
 * that matched, never the argument's value). */
bool approval_needed(const tool_cfg *t, const cJSON *args, char *reason, size_t reason_len);

/* One condition against the arguments. */
bool approval_cond_holds(const approval_cond *c, const cJSON *args);

/* The glob of `matches`: true if `text` (len bytes) matches `pattern`. */
bool approval_glob(const char *pattern, const char *text, size_t len);

/* Is a decision about (call_id, tool, arguments) one about a call of
 * `calls` (an OpenAI tool_calls array) — the same id, the same tool, the
 * same arguments text? A decision binds to what was shown to the person,
 * never to a call id alone: a model may reuse ids. */
bool approval_fits_call(const char *call_id, const char *tool, const char *arguments,
                        const cJSON *calls);

/* Resolve an RFC 6901 pointer ("" is the whole document). NULL if it names
 * nothing. */
const cJSON *approval_pointer(const cJSON *doc, const char *pointer);

#endif
