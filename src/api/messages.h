/* messages.h — the Anthropic Messages API inbound (POST /v1/messages):
 * its request as the governed chat request, and the chat answer in
 * Anthropic's shapes (a `message`, its event stream, its errors).
 *
 * The translations are pure (no I/O, no clock), so the unit tests and the
 * fuzz target run the same code as the handler. The outbound direction
 * (brigade's chat form → an Anthropic provider) is upstream's
 * anthropic_translate.c; both map tool calls with util/tool_use_map.h. */
#ifndef BRIGADE_API_MESSAGES_H
#define BRIGADE_API_MESSAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/chat_request.h"
#include "config/config.h"
#include "util/buf.h"

#define MESSAGES_MAX_BLOCKS 4096   /* content blocks in one request, all messages */
#define MESSAGES_MAX_TOOLS  256

/* An Anthropic Messages request body → the OpenAI chat request it stands
 * for (malloc'd JSON, *out_len), then checked like any chat request
 * (chat_request_parse: model, output cap, …) into *out. The body is read
 * strictly first (chat_request_read_object). What cannot be expressed as a
 * chat request — hosted tools, documents, extended thinking, an image in
 * a tool result — is a 400 naming the field. top_k passes only to a model
 * served by Anthropic (or the mock). */
bool messages_request_parse(const char *body, size_t len, const brigade_config *cfg,
                            chat_request *out, chat_request_error *err);

/* A chat.completion → an Anthropic `message` (malloc'd, *out_len); NULL
 * when the body is not a chat completion. */
char *messages_answer(const char *json, size_t len, size_t *out_len);

/* The stream: chat.completion.chunk events in, Anthropic events out. */
typedef struct messages_stream {
    bool    started;           /* message_start sent */
    int     open_block;        /* index of the open content block, -1 none */
    bool    open_is_text;
    int     next_block;        /* blocks started so far */
    int     tool_block[64];    /* OpenAI tool-call index → block index (-1 unseen) */
    char    stop_reason[16];
    int64_t input_tokens, output_tokens;
} messages_stream;

void messages_stream_init(messages_stream *s);
/* One chunk → zero or more SSE events appended to out. */
void messages_stream_chunk(messages_stream *s, const char *json, size_t len, buf *out);
/* The end: on success the closing events (block stop, message_delta with
 * stop_reason and usage, message_stop); on failure an `error` event. */
void messages_stream_end(messages_stream *s, bool ok, int status, const char *message, buf *out);

/* Anthropic's error type for an HTTP status (400 invalid_request_error,
 * 401 authentication_error, 403 permission_error, 404 not_found_error,
 * 413 request_too_large, 429 rate_limit_error, 503 and 529
 * overloaded_error, else api_error). */
const char *messages_error_type(int status);
/* {"type":"error","error":{"type":…,"message":…}} appended to out. */
void messages_error_body(int status, const char *message, buf *out);

#endif
