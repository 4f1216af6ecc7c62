/* json_strict.h — the checks that make brigade read a JSON text the way the
 * next reader will.
 *
 * brigade parses untrusted JSON with cJSON, which accepts an object with a
 * repeated key and returns its FIRST copy, while most other parsers (Python,
 * JavaScript, serde's maps, Go's structs) keep the LAST. When brigade then
 * forwards the same bytes — a gateway body to a provider — the two readings
 * differ: a body governed as max_tokens 1 is served as 1,000,000. cJSON also
 * cuts a string at an escaped NUL (\u0000), so a key or value brigade reads
 * as "max_tokens" may be "max_tokens\0x" to the provider.
 *
 * cJSON is lenient in other ways strict parsers are not: numbers such as
 * 01, 1. or 1.e5, raw control characters in strings, any byte up to 0x20
 * taken as whitespace.
 *
 * So every JSON text from the network or from a model is refused when
 *   - it has a raw NUL byte or a \u0000 escape, or what cJSON accepts but
 *     JSON does not (json_strict_text, on the text before parsing), or
 *   - any object in it, at any depth, names a key twice (json_strict_tree,
 *     on the parsed tree).
 * Both are pure and linear in the input (a small object is checked pairwise,
 * a large one with a hash set). */
#ifndef BRIGADE_JSON_STRICT_H
#define BRIGADE_JSON_STRICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

typedef enum json_strict_kind {
    JSON_STRICT_OK = 0,
    JSON_STRICT_NUL,             /* a NUL byte or \u0000 */
    JSON_STRICT_SYNTAX,          /* not JSON, though cJSON would read it */
    JSON_STRICT_REPEATED_KEY,
} json_strict_kind;

typedef struct json_strict_error {
    json_strict_kind kind;
    char key[64];     /* the repeated key, cut to fit (empty for a NUL) */
    char path[128];   /* where: "max_tokens", "messages[2].role", … ("" for a NUL) */
    char message[320];/* a sentence for the client, naming the key and where */
} json_strict_error;

/* The raw text: no NUL byte, no \u0000 escape in a string, numbers of the
 * JSON grammar, no raw control character in a string, only JSON's four
 * whitespace bytes. (Anything else wrong is left to the parser.) true if
 * clean; else false with err->kind and err->message set. `what` names the
 * text in the message ("the request body", "the arguments object"). */
bool json_strict_text(const char *text, size_t len, const char *what, json_strict_error *err);

/* The parsed tree: no object repeats a key. true if none does; else false
 * with the first repeated key found in err: an object's own keys are
 * checked (in document order) before the objects inside it, so a repeated
 * top-level field is the one named. */
bool json_strict_tree(const struct cJSON *root, const char *what, json_strict_error *err);

/* How many occupied slots the repeated-key check of big objects has
 * stepped past on this thread, ever (tests: keys a client chose must not
 * pile up in one slot). */
uint64_t json_strict_probes(void);

#endif
