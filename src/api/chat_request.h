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
    char param[48];
    char message[320];
} chat_request_error;

typedef struct chat_request {
    const model_cfg *model;      /* the configured model the client named */
    bool  stream;
    bool  client_wants_usage;    /* stream_options.include_usage */
    uint32_t max_output_tokens;  /* max_completion_tokens / max_tokens; 0 = not given */
    char *upstream_body;         /* malloc'd: the body with "model" = upstream name */
    size_t upstream_body_len;
} chat_request;

/* Validate `body` (valid UTF-8, a JSON object, "model" a configured model,
 * "messages" a non-empty array of objects with a string "role", "stream" a
 * boolean, max_tokens / max_completion_tokens within the model's cap) and
 * produce the body to send upstream. Every other field passes through
 * unchanged. Returns true, or false with err filled. */
bool chat_request_parse(const char *body, size_t len, const brigade_config *cfg,
                        chat_request *out, chat_request_error *err);
void chat_request_free(chat_request *r);

#endif
