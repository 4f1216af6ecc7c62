/* chat_request.h — checking and rewriting an OpenAI chat-completions request.
 *
 * Pure (no I/O, no globals), so the gateway, the unit tests and the JSON
 * fuzz target all run exactly the same code on untrusted bytes. */
#ifndef BRIGADE_CHAT_REQUEST_H
#define BRIGADE_CHAT_REQUEST_H

#include <cjson/cJSON.h>
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

/* The first checks of every gateway body (chat completions, Responses):
 * present, valid UTF-8, one JSON object and nothing after it, no NUL, no
 * key repeated at any depth. The parsed object, or NULL with err filled
 * (400: missing_body, invalid_utf8, invalid_json, nul_character,
 * duplicate_key with the key's path as param). */
cJSON *chat_request_body_object(const char *body, size_t len, chat_request_error *err);

#endif
