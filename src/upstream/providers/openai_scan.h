/* openai_scan.h — what the gateway reads from an OpenAI chat completion
 * answer (or one stream chunk), without building a cJSON tree; and two
 * top-level members of a request body it forwards (openai_scan_members).
 *
 * Of a provider's answer the gateway needs only: is it a JSON object, its
 * usage (prompt_tokens, completion_tokens) and how many bytes of text the
 * choices carry (for an estimate when usage is missing). Parsing the whole
 * answer into a cJSON tree and freeing it was the largest single cost of a
 * gateway request on the loop thread (docs/benchmarks.md).
 *
 * openai_scan reads the same facts in two linear passes over the text: a
 * strict JSON check, then a walk to the few fields. It decides only texts
 * whose reading by cJSON it knows exactly: strict JSON (RFC 8259), an
 * object at the top, no escape in any key, no \u0000, no unpaired
 * surrogate, no number over 63 characters, nesting under 128. For any
 * other text it returns false and the caller reads it with cJSON as before,
 * so the result never differs from the cJSON reading (first copy of a
 * repeated key, decoded string lengths, strtod's numbers): test_openai_scan
 * compares the two on hand-made and mutated texts. */
#ifndef BRIGADE_OPENAI_SCAN_H
#define BRIGADE_OPENAI_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* choices[].index values at or above this are not counted in choice_slots
 * (the output cap's bound on choices, outcap.h). */
#define OPENAI_SCAN_MAX_CHOICE_INDEX 128

typedef struct openai_scan_result {
    bool    have_usage;   /* usage.prompt_tokens and completion_tokens, both in [0, 1e15] */
    int64_t in_tok, out_tok;
    size_t  text_bytes;   /* content + tool call names and arguments, every choice; of a
                             whole answer ("message") only when have_usage is false (the
                             charge is estimated from it only then), else 0 */

    /* Of a stream chunk only (choice_field "delta"), for the resilience
     * layer, which reads every chunk on its way to the client: */
    bool     usage_member;   /* the root has a "usage" member, whatever its value */
    bool     type_member;    /* the root has a "type" member: a Responses event, not a chat chunk */
    uint32_t text_choices;   /* choices whose delta carries text: a non-empty content, refusal,
                                reasoning_content or reasoning string, or a tool call's arguments */
    uint32_t choice_slots;   /* 1 + the highest numeric choices[].index below
                                OPENAI_SCAN_MAX_CHOICE_INDEX (truncated), 0 if none */
    bool     quiet;          /* tells a client nothing yet: no usage member, choices a non-empty
                                array, no finish_reason other than null, and every delta member
                                a role or a null or empty content (meaningless with type_member) */
    /* The root's "id" and "model" (first copies) when each is a string: its
     * bytes in the text (valid while the text is), else NULL; ids_plain is
     * false when either is a string with an escape (its bytes are then not
     * its decoded value, and id and model are not given). "created" when
     * it is a number. */
    const char *id, *model;
    size_t      id_len, model_len;
    bool        ids_plain;
    bool        have_created;
    double      created;
    /* Where the root's first "choices" value begins in the text (NULL if
     * none): openai_scan_delta_of starts there. */
    const char *choices;
} openai_scan_result;

/* A top-level member of a text read by openai_scan_members. */
typedef struct openai_scan_member {
    const char *value;       /* the first copy's value in the text, or NULL */
    size_t      value_len;
    unsigned    count;       /* how many copies the object has */
} openai_scan_member;

/* Of a request body: true when it is an object the scan is sure of (the
 * same conditions as openai_scan: strict JSON, no escape in any key, ...),
 * with out[i] the top-level member named names[i]. false: not decided here
 * (read it with cJSON). */
bool openai_scan_members(const char *text, size_t len, const char *const names[2],
                         openai_scan_member out[2]);

/* A string value as it stands in the text: its bytes between the quotes
 * (p NULL when the member is absent or not a string); plain when it holds
 * no escape, its bytes then being its decoded value. */
typedef struct openai_scan_str {
    const char *p;
    size_t      len;
    bool        plain;
} openai_scan_str;

/* One element of a stream chunk's choices[0].delta.tool_calls as an agent
 * run reads it (runs/model.c): index is cJSON's valueint of "index" (the
 * number saturated to int, truncated; 0 when it is not a number); id and
 * function.name, function.arguments as strings (p NULL when absent or not
 * a string, or when the call or its function is not an object). */
typedef struct openai_scan_call {
    int             index;
    openai_scan_str id, name, arguments;
} openai_scan_call;

/* What an agent run takes from a stream chunk, as cJSON would read it: the
 * first element of "choices" (an array's or an object's, as
 * cJSON_GetArrayItem), its delta's "content" (*content) and each element of
 * its delta's "tool_calls" (an array's or an object's members, as
 * cJSON_ArrayForEach), handed to on_call in order; first copies of every
 * key. true: the text is decided (the conditions of openai_scan) and
 * everything was handed; false: nothing was, read it with cJSON. */
bool openai_scan_delta(const char *text, size_t len, openai_scan_str *content,
                       void (*on_call)(void *arg, const openai_scan_call *call), void *arg);

/* openai_scan_delta of a text openai_scan(text, len, "delta", facts)
 * decided (returned true for these very bytes): the same reading, without
 * checking the text a second time. A run's chunks were read twice, once by
 * the provider and resilience layers and once by the run (~7 % of a run's
 * instructions, docs/benchmarks.md); upstream_event_facts hands the first
 * reading on. */
void openai_scan_delta_of(const char *text, size_t len, const openai_scan_result *facts,
                          openai_scan_str *content,
                          void (*on_call)(void *arg, const openai_scan_call *call), void *arg);

/* cJSON's decoded copy of a string the scan gave (escapes resolved, \u
 * pairs joined, UTF-8): written to out, which has room for s->len + 1
 * bytes (a decoded string is never longer), NUL-terminated; its length. */
size_t openai_scan_str_decode(const openai_scan_str *s, char *out);

/* choice_field: "message" (a whole answer) or "delta" (a stream chunk).
 * true: the text is a JSON object and *out holds what it says; false: not
 * decided here (read it with cJSON). */
bool openai_scan(const char *text, size_t len, const char *choice_field, openai_scan_result *out);

#endif
