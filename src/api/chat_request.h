/* chat_request.h — checking and rewriting an OpenAI chat-completions request.
 *
 * Pure (no I/O, no globals), so the gateway, the unit tests and the JSON
 * fuzz target all run exactly the same code on untrusted bytes. */
#ifndef BRIGADE_CHAT_REQUEST_H
#define BRIGADE_CHAT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

typedef struct chat_request_error {
    int  status;                 /* 400 or 404 */
    const char *type, *code;
    char param[128];
    char message[320];
} chat_request_error;

typedef struct chat_request {
    const model_cfg *model;      /* the configured model the client named */
    bool  stream;
    bool  client_wants_usage;    /* stream_options.include_usage */
    uint32_t max_output_tokens;  /* per choice: the larger of max_completion_tokens and
                                    max_tokens, else the model's cap (then added to the body) */
    uint32_t choices;            /* n (default 1): the call may produce this many answers */
    char *upstream_body;         /* malloc'd: the body with "model" = upstream name */
    size_t upstream_body_len;
} chat_request;

/* Validate `body` (valid UTF-8, a JSON object with no key repeated at any
 * depth and no NUL, "model" a configured model, "messages" a non-empty
 * array of objects with a string "role", "stream" a boolean, max_tokens /
 * max_completion_tokens within the model's cap, "n" from 1 to
 * server.max_choices, nothing that multiplies the cost beyond what can be
 * reserved: best_of, audio output, predicted outputs, web search, a dearer
 * service tier) and produce the body to send upstream. Every other field
 * passes through unchanged.
 *
 * The contract the gateway's budget rests on: whatever this accepts, the
 * provider reads — first copy of a key or last, cJSON or not — the same
 * model, stream flag and n, and output caps no larger than
 * max_output_tokens (checked by fuzz_chat_request and the unit tests).
 * Returns true, or false with err filled. */
bool chat_request_parse(const char *body, size_t len, const brigade_config *cfg,
                        chat_request *out, chat_request_error *err);
void chat_request_free(chat_request *r);

/* The first checks of every gateway body (chat completions, Responses,
 * Messages, completions, embeddings): present, valid UTF-8, one JSON
 * object and nothing after it, no NUL, no key repeated at any depth. The
 * parsed object, or NULL with err filled (400: missing_body, invalid_utf8,
 * invalid_json, nul_character, duplicate_key with the key's path as
 * param). */
struct cJSON;
struct cJSON *chat_request_body_object(const char *body, size_t len, chat_request_error *err);
/* The same, with the request *out zeroed first (the dialects' readers). */
struct cJSON *chat_request_read_object(const char *body, size_t len, chat_request *out,
                                       chat_request_error *err);

/* A dialect's request translated to a chat request tree (consumed), then
 * checked like any chat request (chat_request_parse) into *out. */
bool chat_request_parse_tree(struct cJSON *chat, const brigade_config *cfg, chat_request *out,
                             chat_request_error *err);

/* root's "model": a configured model of the kind asked for (an embedding
 * model or a chat one), or NULL with err filled (400, or 404 unknown). */
const model_cfg *chat_request_model(const struct cJSON *root, const brigade_config *cfg,
                                    bool embedding, chat_request_error *err);

/* Every top-level key of root one of fields[0..n): else false with a 400
 * naming it ("not a <api> field this gateway supports"). */
bool chat_request_known_fields(const struct cJSON *root, const char *const *fields, size_t n,
                               const char *api, chat_request_error *err);

/* Fill err (status 404 gets the type not_found_error, else
 * invalid_request_error); returns false, for `return chat_request_fail(…)`. */
bool chat_request_fail(chat_request_error *err, int status, const char *code, const char *param,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
