/* chat_fields.h — the one list of the chat-completions request's top-level
 * fields that the gateway governs: reads (model, messages, stream, the
 * output caps, n) or refuses (what it could not reserve or charge).
 *
 * Both readers of a chat request take their field names from here: the
 * cJSON tree path (chat_request.c) and the one-pass scan (chat_scan.c),
 * which also uses chat_field as its slot index. Why one list: each path
 * refuses a governed field spelled in another letter case and checks its
 * value, and a client chooses which path reads its request (a repeated key,
 * an escape in a name). A field governed on one path only would be checked
 * on that path only: a repeated max_tokens once slipped past the output
 * cap. test_chat_request (test_each_governed_field_same_on_both_paths)
 * sends every field of this list, in hostile values and spellings, down
 * both paths; fuzz/corpus/fuzz_chat_request holds a seed for each.
 *
 * Adding a field: add it here, give it a check in the tree path and either
 * the same check in chat_scan or a refusal to decide it there (chat_scan.c
 * counts the fields it decides and does not compile until it is told of
 * the new one), and add its fuzz seed governed_<name>.json. */
#ifndef BRIGADE_API_CHAT_FIELDS_H
#define BRIGADE_API_CHAT_FIELDS_H

#include <stddef.h>

/* X(ID, "name"), in the order the scan compares keys with them (the
 * commonest first: the scan tries each in turn). */
#define CHAT_GOVERNED_FIELDS(X)                          \
    X(MODEL, "model")                                    \
    X(MESSAGES, "messages")                              \
    X(STREAM, "stream")                                  \
    X(STREAM_OPTIONS, "stream_options")                  \
    X(MAX_TOKENS, "max_tokens")                          \
    X(MAX_COMPLETION_TOKENS, "max_completion_tokens")    \
    X(N, "n")                                            \
    X(BEST_OF, "best_of")                                \
    X(AUDIO, "audio")                                    \
    X(PREDICTION, "prediction")                          \
    X(WEB_SEARCH_OPTIONS, "web_search_options")          \
    X(MODALITIES, "modalities")                          \
    X(SERVICE_TIER, "service_tier")

typedef enum chat_field {
#define CHAT_FIELD_ENUM(id, name) CHAT_FIELD_##id,
    CHAT_GOVERNED_FIELDS(CHAT_FIELD_ENUM)
#undef CHAT_FIELD_ENUM
    CHAT_FIELD_COUNT
} chat_field;

/* The longest name's length (checked for each in chat_fields.c). A key that
 * folds to a governed field (chat_request_case_clash) is at most three
 * times as long: the scan copies keys up to that length to check them. */
#define CHAT_FIELD_NAME_MAX 21

typedef struct chat_field_name {
    const char *name;
    size_t      len;   /* strlen(name), so no reader measures it per request */
} chat_field_name;

/* Indexed by chat_field. */
extern const chat_field_name chat_governed_fields[CHAT_FIELD_COUNT];

#endif
