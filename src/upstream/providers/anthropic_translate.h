/* anthropic_translate.h — OpenAI chat completions ⇄ Anthropic Messages API.
 *
 * Pure functions (no I/O, no clock except the `created` a caller passes),
 * so they are unit-tested and fuzzed on their own; provider_anthropic.c
 * puts them on the wire. The internal form of brigade is OpenAI chat
 * completions: requests go out translated to Anthropic, answers come back
 * translated to OpenAI — a whole `chat.completion`, or, for a stream, the
 * `chat.completion.chunk` events a client of OpenAI expects, one Anthropic
 * event giving zero or more chunks. Everything read here comes from the
 * network or a client: any shape is accepted without crashing, and what
 * cannot be translated is an error with a message, never a guess. */
#ifndef BRIGADE_ANTHROPIC_TRANSLATE_H
#define BRIGADE_ANTHROPIC_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define ANTHROPIC_DEFAULT_VERSION "2023-06-01"
#define ANTHROPIC_MAX_BLOCKS      1024   /* content blocks of one streamed message */

/* OpenAI request body → Anthropic Messages request body (malloc'd, with
 * its length in *out_len). `default_max_tokens` is used when the request
 * gives neither max_completion_tokens nor max_tokens (Anthropic requires
 * one). `stream` sets "stream". NULL with *err set when the request cannot
 * be expressed (not a JSON object, no messages, a bad role…). */
char *anthropic_request_from_openai(const char *body, size_t len, uint32_t default_max_tokens,
                                    bool stream, size_t *out_len, const char **err);

typedef struct anthropic_usage {
    bool    have;            /* the provider reported usage */
    int64_t input_tokens;    /* input + cache creation + cache read */
    int64_t output_tokens;
    size_t  out_bytes;       /* generated text and tool arguments, for estimates */
} anthropic_usage;

/* HTTP status an Anthropic error type stands for (rate_limit_error → 429,
 * overloaded_error → 503 — Anthropic's own 529 is treated as 503 —,
 * invalid_request_error → 400 …; unknown → 500). */
int anthropic_error_status(const char *type);

/* Non-streaming: an Anthropic `message` body → an OpenAI `chat.completion`
 * (malloc'd). `created` is the unix time to put in it. Returns NULL with
 * *err when the body is not a valid message; when it is an Anthropic error
 * object, *err is its message and *err_status its status (else 0). */
char *anthropic_response_to_openai(const char *body, size_t len, int64_t created,
                                   anthropic_usage *usage, const char **err, int *err_status);

/* --- streaming --- */

typedef enum anthropic_ev {
    ANTHROPIC_EV_OK = 0,      /* consumed; chunks (maybe none) were emitted */
    ANTHROPIC_EV_DONE,        /* message_stop: the stream is complete */
    ANTHROPIC_EV_ERROR,       /* an `error` event: err_status / err_message set */
    ANTHROPIC_EV_MALFORMED    /* not a valid event here: err_message set */
} anthropic_ev;

typedef void (*anthropic_emit_fn)(void *ctx, const char *json, size_t len);

typedef struct anthropic_stream {
    char            id[96];        /* from message_start (JSON-safe: checked) */
    char            model[128];
    int64_t         created;
    bool            started;       /* message_start seen */
    bool            finished;      /* finish chunk emitted */
    bool            done;          /* message_stop seen */
    int             n_tools;       /* tool calls so far: the OpenAI index */
    int16_t        *block;         /* content block index → tool index, -1 text, -2 ignored, -3 unseen */
    size_t          n_block;
    char            finish_reason[16];
    anthropic_usage usage;
    int             err_status;
    char            err_message[256];
    buf             scratch;       /* the chunk being built */
} anthropic_stream;

void anthropic_stream_init(anthropic_stream *s, int64_t created);
void anthropic_stream_free(anthropic_stream *s);
/* One SSE event's data (the JSON object; the `event:` name is redundant
 * with its "type" and not needed). Emits the OpenAI chunks it gives. */
anthropic_ev anthropic_stream_event(anthropic_stream *s, const char *data, size_t len,
                                    anthropic_emit_fn emit, void *ctx);

/* OpenAI finish_reason for an Anthropic stop_reason. */
const char *anthropic_finish_reason(const char *stop_reason);

#endif
