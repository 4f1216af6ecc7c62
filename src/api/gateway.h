/* gateway.h — the parts of the chat-completions gateway (gateway.c) that
 * the other gateway routes (the Responses API, responses.c) answer with in
 * the same way: the call's deadline, and a failed provider call as the
 * client's error. */
#ifndef BRIGADE_API_GATEWAY_H
#define BRIGADE_API_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"

/* The deadline of a call (uv_now clock): the client's x-brigade-timeout-ms
 * (a positive integer of ms, capped by server.max_request_timeout_ms) or
 * server.request_timeout_ms. false if the header is malformed. */
bool api_gateway_deadline(api_ctx *ctx, uint64_t *deadline);

/* The client's error for a provider call that failed (api_fail on ctx):
 * 504 timeout, 429 rate limited, 400 the provider rejected the request,
 * 502 otherwise. */
void api_gateway_fail_upstream(api_ctx *ctx, const model_cfg *model, const upstream_result *res);

#endif
