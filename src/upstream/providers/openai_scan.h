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
    size_t  text_bytes;   /* content + tool call names and arguments, every choice */

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

/* choice_field: "message" (a whole answer) or "delta" (a stream chunk).
 * true: the text is a JSON object and *out holds what it says; false: not
 * decided here (read it with cJSON). */
bool openai_scan(const char *text, size_t len, const char *choice_field, openai_scan_result *out);

#endif
