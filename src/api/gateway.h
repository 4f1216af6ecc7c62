/* gateway.h — the gateway path shared by every client API that is a chat
 * completion underneath: /v1/chat/completions speaks it as is, and the
 * other dialects (Anthropic Messages in messages.c, legacy text completions
 * in completions.c) translate their request into a chat request
 * (chat_request.h) and the answer back, through these hooks. Whatever the
 * dialect, the call is the same metered model call (govern/call.h):
 * scope, limits, budgets by reservation, fair queue, resilience, traces,
 * usage and audit do not depend on how the client spelt its request. The
 * Responses API (responses.c), which drives the metered call itself for its
 * stored state, answers with the same deadline and upstream errors. */
#ifndef BRIGADE_API_GATEWAY_H
#define BRIGADE_API_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "api/chat_request.h"
#include "util/buf.h"

typedef struct gateway_dialect {
    /* A whole chat.completion (its model already the client's name) → the
     * client's body, malloc'd with *out_len; NULL sends it as is. */
    char *(*answer)(void *state, const char *json, size_t len, size_t *out_len);
    /* One chat.completion.chunk (every one, the usage chunk too) → the SSE
     * bytes to send, appended to out (none is fine). */
    void (*event)(void *state, const char *json, size_t len, buf *out);
    /* The stream ends: completed (ok) or failed with the error the client
     * would have got as a status (type, code, message as for api_fail) →
     * the closing bytes appended to out. */
    void (*end)(void *state, bool ok, int status, const char *type, const char *code,
                const char *message, buf *out);
    void (*free)(void *state);
} gateway_dialect;

/* The deadline of a call (uv_now clock): the client's x-brigade-timeout-ms
 * (a positive integer of ms, capped by server.max_request_timeout_ms) or
 * server.request_timeout_ms. false if the header is malformed. */
bool api_gateway_deadline(api_ctx *ctx, uint64_t *deadline);

/* The client's error for a provider call that failed (api_fail on ctx):
 * 504 timeout, 429 rate limited, 400 the provider rejected the request,
 * 502 otherwise. */
void api_gateway_fail_upstream(api_ctx *ctx, const model_cfg *model, const upstream_result *res);

/* A route's request reader (chat_request_parse and its dialects' own). */
typedef bool (*gateway_request_reader)(const char *body, size_t len, const brigade_config *cfg,
                                       chat_request *out, chat_request_error *err);

/* Read the request body with `read`: true with *cr filled, or false after
 * answering the client's error. */
bool gateway_read_request(api_ctx *ctx, gateway_request_reader read, chat_request *cr);

/* Run the governed call of an accepted chat request and answer it in the
 * dialect (NULL: OpenAI chat completions as they come). Takes cr's body
 * and the state (freed with dialect->free when the request ends). */
void gateway_run(api_ctx *ctx, chat_request *cr, const gateway_dialect *dialect, void *state);

/* The end of an OpenAI-style stream: `data: [DONE]`, or the error as an
 * in-band `data: {"error":…}` event (headers are gone by then). */
void gateway_openai_stream_end(bool ok, const char *type, const char *code, const char *message,
                               buf *out);

#endif
