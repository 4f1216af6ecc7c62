/* embeddings.h — POST /v1/embeddings: checking an OpenAI embeddings
 * request for a configured embedding model (`kind: embedding`). Pure, for
 * the handler, the unit tests and the fuzz target. */
#ifndef BRIGADE_API_EMBEDDINGS_H
#define BRIGADE_API_EMBEDDINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "api/chat_request.h"
#include "config/config.h"

#define EMBEDDINGS_MAX_INPUTS 2048     /* OpenAI's own limit per request */

/* Validate `body` (read strictly: chat_request_read_object): "model" an
 * embedding model; "input" a non-empty string or an array of 1 to
 * EMBEDDINGS_MAX_INPUTS of them, each within the model's context window
 * (estimated at 4 bytes a token); token arrays refused (token ids belong
 * to one model's vocabulary); "encoding_format" float or base64;
 * "dimensions" a whole number from 1 to the model's configured dimensions
 * (65536 when unset); "user" a string; any other field refused. The
 * result is a chat_request only in form: model, the body to send (model =
 * the upstream name), stream false, one choice and no output. */
bool embeddings_request_parse(const char *body, size_t len, const brigade_config *cfg,
                              chat_request *out, chat_request_error *err);

#endif
