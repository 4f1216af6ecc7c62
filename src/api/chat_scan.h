/* chat_scan.h — the common chat-completions request read without a cJSON
 * tree (chat_scan.c), and the cJSON reading it must agree with.
 *
 * chat_request_parse (chat_request.h) first asks chat_scan; only when the
 * scan cannot decide does the tree path run. The scan decides a request
 * only when it accepts it, and only when it is sure the tree path accepts
 * it with exactly the same result; every refusal, and anything unusual
 * (escapes in keys, the model or the service tier, numbers that are not
 * plain integers in the governed fields, deep nesting, fields the tree path
 * refuses), goes to the tree
 * path, so errors and their wording never change. test_chat_request and
 * fuzz_chat_request compare the two on every input they make. */
#ifndef BRIGADE_API_CHAT_SCAN_H
#define BRIGADE_API_CHAT_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "api/chat_request.h"

/* body must be valid UTF-8 and pass json_strict_text. true: decided and
 * accepted, *out filled (upstream_body malloc'd); false: not decided,
 * *out untouched but for zeroes. */
bool chat_scan(const char *body, size_t len, const brigade_config *cfg, chat_request *out);

/* chat_request_parse without the scan: the reference (chat_request.c). */
bool chat_request_parse_tree_path(const char *body, size_t len, const brigade_config *cfg,
                                  chat_request *out, chat_request_error *err);

/* A top-level key that is a governed field in another letter case (Go's
 * folding): the tree path refuses it (chat_request.c). key NUL-terminated. */
bool chat_request_case_clash(const char *key);

/* What the forwarded body changes in the client's bytes: nothing else is
 * touched (no re-encoding, so numbers and strings reach the provider as the
 * client wrote them; json_member.h says why). */
typedef struct chat_forward_edits {
    uint32_t    cap;              /* 0: no output cap added */
    bool        cap_replaces;     /* the cap replaces [cap_start, cap_end): a
                                   * "max_completion_tokens" the client sent as
                                   * null; else it goes in right after the
                                   * opening brace, with a comma */
    size_t      cap_start, cap_end;
    const char *upstream_model;   /* NULL: the model keeps its name; else this
                                   * string replaces [model_start, model_end),
                                   * the "model" value with its quotes */
    size_t      model_start, model_end;
} chat_forward_edits;

/* The body to forward: the client's bytes with the edits made, and a
 * leading UTF-8 byte order mark dropped. */
void chat_request_forward_bytes(const char *body, size_t len, const chat_forward_edits *e,
                                chat_request *out);

#endif
