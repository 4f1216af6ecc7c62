/* upstream.h — calling model providers, on the loop, for the gateway and runs.
 *
 * One `upstream` per loop thread owns a libcurl multi handle driven by that
 * libuv loop (multi_socket interface: curl's sockets are uv_poll handles,
 * its timer a uv_timer), so thousands of calls wait on one thread at the
 * cost of a small struct each, and connections to a provider are reused.
 *
 * The internal form is OpenAI chat completions: a call carries an OpenAI
 * request body and yields an OpenAI response body (non-streaming) or OpenAI
 * `chat.completion.chunk` SSE events (streaming). Providers of another
 * protocol (Anthropic, later) translate to and from this form. Provider kind
 * `mock` answers in-process (the mock engine, no sockets) with the same
 * callbacks and timings as a remote provider.
 *
 * Every callback runs on the loop thread, and never from inside
 * upstream_chat itself (an in-process provider answers on a later loop
 * turn), so the caller can finish setting up after upstream_chat returns.
 * Inside on_event / on_done the caller may cancel or resume the call. */
#ifndef BRIGADE_UPSTREAM_H
#define BRIGADE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"

typedef struct upstream upstream;
typedef struct upstream_call upstream_call;

typedef enum upstream_error {
    UPSTREAM_OK = 0,
    UPSTREAM_CONNECT,        /* could not connect / DNS / TLS */
    UPSTREAM_TIMEOUT,        /* provider timeout_ms passed */
    UPSTREAM_HTTP_STATUS,    /* provider answered non-2xx; status and body given */
    UPSTREAM_MALFORMED,      /* 2xx but the body/stream was not valid */
    UPSTREAM_TRUNCATED,      /* stream ended before [DONE] / finish_reason */
    UPSTREAM_CANCELLED       /* upstream_call_cancel */
} upstream_error;

typedef struct upstream_result {
    upstream_error error;
    int            status;           /* provider HTTP status (0 if none) */
    const char    *body;             /* non-stream: the provider's body (valid during on_done) */
    size_t         body_len;
    const char    *message;          /* human-readable cause for errors */
    int64_t        input_tokens;     /* from the provider's usage, or estimated */
    int64_t        output_tokens;
    bool           usage_estimated;  /* provider gave none: counted from the text */
    uint32_t       retry_after_s;    /* from Retry-After on 429/503, else 0 */
} upstream_result;

typedef struct upstream_callbacks {
    /* Streaming only: one complete SSE event payload (the JSON after
     * "data: ", without the "data: " and blank line), in OpenAI chunk form.
     * "[DONE]" is not passed; on_done follows it. Return false to pause the
     * provider (backpressure) until upstream_call_resume. */
    bool (*on_event)(upstream_call *call, const char *json, size_t len, void *arg);
    /* Always called exactly once, last. The call is freed after it returns. */
    void (*on_done)(upstream_call *call, const upstream_result *res, void *arg);
} upstream_callbacks;

upstream *upstream_new(uv_loop_t *loop, const brigade_config *cfg);
/* Cancel every call in flight (each gets on_done with UPSTREAM_CANCELLED),
 * then free. */
void      upstream_free(upstream *u);

/* Start a chat completion. `body` is an OpenAI request (copied); the caller
 * has already replaced "model" with model->upstream_model; for streaming
 * the upstream module adds stream_options.include_usage itself. Returns
 * NULL only if the call could not even start (then nothing is called). */
upstream_call *upstream_chat(upstream *u, const model_cfg *model, const char *body,
                             size_t body_len, bool stream, const char *request_id,
                             const upstream_callbacks *cb, void *arg);
/* Why the last upstream_chat on this thread returned NULL: "" if it could
 * not start for a reason of ours, else the reason the request cannot be
 * sent to that provider (e.g. it cannot be expressed in Anthropic's form) —
 * the client's request to fix, so a 400. */
const char *upstream_last_error(void);
void upstream_call_resume(upstream_call *call);
/* Stop a call; on_done follows with UPSTREAM_CANCELLED (synchronously). */
void upstream_call_cancel(upstream_call *call);

/* --- retries (retry.c) --- */

#define UPSTREAM_RETRY_AFTER_MAX_S 2   /* a longer Retry-After goes back to the client */

/* Is this failure worth another attempt (number attempt+1, counting from 0),
 * and after how many ms? Connection errors, 5xx, malformed or truncated
 * answers and 429 with a short Retry-After are; timeouts are not. Up to the
 * provider's max_retries, with exponential backoff and ±25% jitter. */
bool upstream_should_retry(const provider_cfg *p, unsigned attempt, const upstream_result *res,
                           uint64_t *delay_ms);

/* --- plain HTTP requests on the loop (declared HTTP tools) ---
 * Same curl-on-libuv machinery as model calls, with connection reuse. */

typedef struct upstream_http_req {
    const char        *method;           /* GET, POST, PUT, PATCH, DELETE */
    const char        *url;              /* http:// or https:// */
    const char *const *headers;          /* "Name: value" lines */
    size_t             n_headers;
    const char        *body;             /* may be NULL */
    size_t             body_len;
    uint32_t           timeout_ms;
    size_t             max_response_bytes;  /* larger responses fail with an error */
    const char        *request_id;       /* sent as x-request-id, may be NULL */
} upstream_http_req;

/* status: the HTTP status (0 if none); error: NULL on a complete response,
 * else why it failed ("timed out after 10000 ms", "response over 262144
 * bytes", "could not connect: …"). body valid only during the call. */
typedef void (*upstream_http_done)(void *arg, int status, const char *body, size_t len,
                                   const char *error);

typedef struct upstream_fetch upstream_fetch;

/* Start a request; `done` is called exactly once, never from inside this
 * function (unless cancelled first). NULL only if it could not start. */
upstream_fetch *upstream_http_fetch(upstream *u, const upstream_http_req *req,
                                    upstream_http_done done, void *arg);
/* Stop it; `done` is not called. */
void            upstream_fetch_cancel(upstream_fetch *f);

/* Rough token count of a text (≈ 4 bytes a token), for estimates. */
int64_t upstream_estimate_tokens(const char *text, size_t len);

/* Is the provider reachable (for /readyz)? mock: always. openai: a recent
 * call succeeded or a TCP connect to the base URL's host works. Blocking,
 * bounded by 2 s. */
bool upstream_provider_reachable(const provider_cfg *p);

const char *upstream_error_name(upstream_error e);

#endif
