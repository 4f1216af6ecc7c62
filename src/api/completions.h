/* completions.h — POST /v1/completions, OpenAI's legacy text completions,
 * as a thin layer on the gateway's chat path: the prompt becomes one user
 * message, and the chat answer a `text_completion` (streamed as
 * text_completion chunks). Pure translations, for the unit tests and the
 * fuzz target. */
#ifndef BRIGADE_API_COMPLETIONS_H
#define BRIGADE_API_COMPLETIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "api/chat_request.h"
#include "config/config.h"
#include "util/buf.h"

/* A legacy completions body → the chat request it stands for, checked
 * like any chat request into *out. The prompt is a string or an array of
 * one string; several prompts (each its own model call), token arrays,
 * echo, suffix and logprobs are refused with a 400 naming the field. */
bool completions_request_parse(const char *body, size_t len, const brigade_config *cfg,
                               chat_request *out, chat_request_error *err);

/* A chat.completion → a text_completion (malloc'd, *out_len); NULL when
 * the body is not a chat completion. */
char *completions_answer(const char *json, size_t len, size_t *out_len);

/* One chat.completion.chunk → one text_completion chunk as an SSE event
 * appended to out (the usage chunk only when the client asked for it). */
void completions_stream_chunk(bool wants_usage, const char *json, size_t len, buf *out);

#endif
