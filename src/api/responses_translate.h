/* responses_translate.h — the OpenAI Responses API in terms of the chat
 * completions brigade already governs: a Responses request becomes a chat
 * request (which then goes through chat_request_parse and the one metered
 * call like any other), and the chat answer — whole, or chunk by chunk —
 * becomes a Response object or the Responses event stream.
 *
 * Pure (no I/O, no clock but `created_at`, no globals), so the route
 * (responses.c), the unit tests and the fuzz target run the same code on
 * untrusted bytes.
 *
 * What is translated, what is refused (400 naming the field) and why:
 * docs/api.md, "POST /v1/responses". In short: message items (roles user,
 * assistant, system, developer; text and image parts), function_call and
 * function_call_output items, function tools, tool_choice, text.format,
 * max_output_tokens, temperature, top_p, parallel_tool_calls, reasoning
 * (as reasoning_effort), metadata (kept, not sent). Hosted tools, background
 * mode, server-side conversations and prompts, and unknown item types or
 * top-level fields are refused: nothing is silently dropped that would make
 * the answer differ from what was asked. */
#ifndef BRIGADE_API_RESPONSES_TRANSLATE_H
#define BRIGADE_API_RESPONSES_TRANSLATE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/chat_request.h"
#include "config/config.h"
#include "util/buf.h"

#define RESPONSES_MAX_ITEMS    4096   /* input items of one request */
#define RESPONSES_MAX_TOOLS    128
#define RESPONSES_MAX_METADATA 16     /* OpenAI's bounds on metadata */
#define RESPONSES_ID_MAX       40

typedef struct responses_request {
    cJSON *root;                  /* the parsed body (owned) */
    const model_cfg *model;
    bool   stream;
    bool   store;                 /* default true */
    char   previous_id[RESPONSES_ID_MAX];   /* "" when absent */
    cJSON *input_items;           /* owned: the input as items (a string input is one user message) */
} responses_request;

/* Check a Responses request body (valid UTF-8, a JSON object with no key
 * repeated at any depth and no NUL, known fields only, a configured model,
 * items and tools that can be translated) and read what the route needs.
 * true, or false with err filled (status 400 or 404, param naming the
 * field). */
bool responses_request_parse(const char *body, size_t len, const brigade_config *cfg,
                             responses_request *out, chat_request_error *err);
void responses_request_free(responses_request *r);

/* The chat-completions request for r, after the items of the conversation
 * it continues (history: a JSON array of items, or NULL), naming brigade's
 * model (chat_request_parse renames it and applies the output cap). A
 * malloc'd JSON text, or NULL with err filled (an item or tool that cannot
 * be translated). */
char *responses_chat_body(const responses_request *r, const cJSON *history, size_t *len,
                          chat_request_error *err);

/* The Response object's fields that come from the request (status
 * "in_progress", no output yet). id: "resp_…". */
cJSON *responses_object_new(const responses_request *r, const char *id, int64_t created_at);

/* Fill a Response object from a whole chat.completion: output items
 * (a message with output_text, function_call items with their call_id),
 * usage, status ("completed", or "incomplete" with its reason). false if
 * the completion is not a chat.completion. */
bool responses_object_complete(cJSON *resp, const char *completion, size_t len);

/* The items this turn adds to its conversation: the input items, then the
 * Response's output items (a new array). */
cJSON *responses_turn_items(const responses_request *r, const cJSON *resp);

/* The event stream: chat.completion.chunk events in, Responses events out
 * (SSE framed, with sequence_number), into `out`. */
typedef struct responses_stream {
    cJSON   *resp;                /* the Response being built (borrowed) */
    uint64_t seq;
    int      text_index;          /* output index of the open message item, or -1 */
    buf      text;                /* its text so far */
    char     text_id[RESPONSES_ID_MAX];
    int      n_output;            /* items in resp's output (counted, not walked) */
    int      call_index;          /* output index of the open function_call item, or -1 */
    cJSON   *call_item;           /* that item, in resp's output */
    int      call_chat_index;     /* its index among the chunk's tool_calls */
    buf      args;                /* its arguments so far */
    char     finish[32];          /* the chat finish_reason */
    bool     have_usage;
    int64_t  input_tokens, output_tokens;
    /* passthrough (responses_stream_relay): the provider's item ids →
     * brigade's (at most RESPONSES_PASS_IDS_MAX), and whether its terminal
     * event filled the Response */
    struct strmap *ids;
    bool     relay_done;
} responses_stream;

void responses_stream_init(responses_stream *s, cJSON *resp);
void responses_stream_free(responses_stream *s);
/* response.created, response.in_progress */
void responses_stream_begin(responses_stream *s, buf *out);
/* One chat.completion.chunk. false if it is not one. */
bool responses_stream_chunk(responses_stream *s, const char *json, size_t len, buf *out);
/* The provider finished: close the open items (their .done events) and
 * set the Response's status and usage. The terminal event follows with
 * responses_stream_end. */
void responses_stream_finish(responses_stream *s, buf *out);
/* response.completed (or response.incomplete), with the whole Response. */
void responses_stream_end(responses_stream *s, buf *out);
/* The stream failed: an `error` event and response.failed. */
void responses_stream_fail(responses_stream *s, const char *code, const char *message, buf *out);

/* ---- passthrough (responses_passthrough.c) ----
 * For a model whose every deployment is on a provider with `responses:
 * passthrough`: the request goes to the provider's /responses, rewritten
 * so that nothing of the provider's shared store is used (store false, no
 * previous_response_id: the conversation's items are expanded into
 * input, their ids stripped), and the answer comes back under brigade's
 * ids. */

/* Does every deployment of m, and of each of its fallbacks, take
 * Responses requests? (Else the call is translated, wherever it lands.) */
bool responses_model_passthrough(const model_cfg *m);

/* The Responses request for the provider: r's body with the history's
 * items and the input items (ids stripped, reasoning items dropped) as
 * `input`, `model` upstream_model, `max_output_tokens` the governed cap,
 * `store` false, and no previous_response_id, stream or stream_options.
 * A malloc'd JSON text. */
char *responses_passthrough_body(const responses_request *r, const cJSON *history,
                                 const char *upstream_model, uint32_t max_output_tokens,
                                 size_t *len);

/* Fill s->resp (status, incomplete_details, output with brigade's item
 * ids, usage) from the provider's whole Response. false if it is not a
 * completed or incomplete Response. */
bool responses_object_from_provider(responses_stream *s, const char *body, size_t len);

/* One event of the provider's Responses stream, into `out` with brigade's
 * item ids and sequence numbers; its created / in_progress are dropped
 * (brigade sends its own), its completed / incomplete fills s->resp
 * (relay_done) and is not sent (responses_stream_end sends brigade's).
 * false if it is not a Responses event. */
bool responses_stream_relay(responses_stream *s, const char *json, size_t len, buf *out);

#endif
