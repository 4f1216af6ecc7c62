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
#include "egress/egress_curl.h"
#include "obs/obs.h"
#include "scope/scope.h"

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
    int64_t        input_tokens;     /* usage of the attempt that was delivered (0 if none was) */
    int64_t        output_tokens;
    bool           usage_estimated;  /* provider gave none: counted from the text */
    uint32_t       retry_after_s;    /* from Retry-After on 429/503, else 0 */
    /* What served it (the last attempt): the model (the requested one or a
     * fallback; NULL if no attempt was made), the deployment
     * ("provider/upstream_model", NULL likewise), and how many attempts
     * were made in all. Valid during on_done. */
    const model_cfg *served_model;
    const char     *deployment;
    unsigned        attempts;
} upstream_result;

/* One attempt of a call, as it ends (on_attempt). */
typedef struct upstream_attempt {
    const model_cfg *model;          /* the model this attempt was for */
    const char      *deployment;     /* "provider/upstream_model" */
    unsigned         number;         /* 0 = first attempt of the call */
    upstream_error   error;          /* UPSTREAM_OK, or what went wrong */
    int              status;         /* HTTP status (0 if none) */
    const char      *fault;          /* failure class: "ok", "rate_limit", "server_error", "timeout",
                                      * "connect", "malformed", "context_window", "request", "cancelled" */
    const char      *message;        /* cause, or NULL */
    uint64_t         started_ms;     /* monotonic ms (uv_now) */
    uint64_t         duration_ms;
    bool             probe;          /* the half-open breaker's probe */
    const char      *next;           /* what follows: "done", "retry", "fallback", "hedge" (a
                                      * hedge beside it carries on), "resume" (a replay) */
} upstream_attempt;

typedef struct upstream_callbacks {
    /* Streaming only: one complete SSE event payload (the JSON after
     * "data: ", without the "data: " and blank line), in OpenAI chunk form.
     * "[DONE]" is not passed; on_done follows it. Return false to pause the
     * provider (backpressure) until upstream_call_resume. Once an event
     * has been passed, the call is never retried: a failure after it goes
     * to on_done. */
    bool (*on_event)(upstream_call *call, const char *json, size_t len, void *arg);
    /* Always called exactly once, last. The call is freed after it returns. */
    void (*on_done)(upstream_call *call, const upstream_result *res, void *arg);
    /* Optional: each attempt as it ends (for spans and metrics), before
     * the retry, fallback or on_done it leads to. Must not cancel. */
    void (*on_attempt)(upstream_call *call, const upstream_attempt *a, void *arg);
} upstream_callbacks;

/* Per-call options of upstream_chat. */
typedef struct upstream_opts {
    /* Absolute deadline of the whole call — every attempt, backoff and
     * fallback — in milliseconds of the monotonic clock: uv_now(loop), or
     * time_mono_ns() / 1000000 (the same CLOCK_MONOTONIC). 0: none (each
     * attempt is still bounded by its provider's timeouts). When it passes,
     * on_done gets UPSTREAM_TIMEOUT with a message saying so. */
    uint64_t    deadline_ms;
    const char *request_id;          /* sent as x-request-id; may be NULL */
    const char *traceparent;         /* W3C trace context to forward; may be NULL */
    /* The body is an OpenAI Responses request, not a chat request: it goes
     * to {base_url}/responses of a provider with `responses: passthrough`,
     * and its answer is a Response object (or the Responses event stream,
     * passed on as it is). A deployment or fallback on any other provider
     * cannot express it: that attempt is refused (the call ends with a 400
     * naming the reason). */
    bool        responses;
    /* The output tokens the call's reservation was priced on (max_tokens,
     * or the model's cap; n × that for n choices): a hard cap. A stream
     * that would pass it is cut there and ended as the provider would at
     * its cap (finish_reason "length", or response.incomplete for a
     * Responses stream), charged as streamed; an answer that reports more
     * is charged this many. Either is a provider fault: logged, counted in
     * brigade_provider_overrun_total, and held against the deployment's
     * circuit breaker. 0: no cap. */
    uint64_t    max_output_tokens;
    /* The body is brigade's own request text (an agent run's model call,
     * run_model_body): one top-level "stream": true, no "stream_options",
     * valid JSON. A provider that must add to a streamed request (OpenAI's
     * stream_options) then does so without reading the whole body again
     * to find those members: on a long conversation that read was a tenth
     * of a step (docs/benchmarks.md). Only for a streamed call. */
    bool        plain_stream;
} upstream_opts;

upstream *upstream_new(uv_loop_t *loop, const brigade_config *cfg);
/* Cancel every call in flight (each gets on_done with UPSTREAM_CANCELLED),
 * then free. */
void      upstream_free(upstream *u);

/* Start a chat completion of `model`. `body` is an OpenAI request (copied)
 * whose "model" is model->upstream_model (what chat_request_parse makes);
 * an attempt on a deployment or fallback with another upstream name gets
 * the body with that name. For streaming the upstream module adds
 * stream_options.include_usage itself.
 *
 * Attempts: the model's deployments are chosen by its `balance`, skipping
 * open circuit breakers; transient failures (connect, 429, 5xx, timeouts,
 * malformed or truncated answers) are retried — possibly on another
 * deployment — with full-jitter backoff, up to the provider's max_retries
 * and within its retry budget, never after an event reached on_event; then
 * the model's fallbacks are tried (fallback_on), all within
 * opts->deadline_ms. docs/resilience.md has the details.
 *
 * Returns NULL only if the call could not even start (then nothing is
 * called). `opts` may be NULL; it is copied. */
upstream_call *upstream_chat(upstream *u, const model_cfg *model, const char *body, size_t body_len,
                             bool stream, const upstream_opts *opts, const upstream_callbacks *cb,
                             void *arg);
/* The attempt in flight (or the last one): its model, the name the
 * provider knows it by (what a response's "model" says), and the
 * deployment. For renaming and headers while streaming. */
const model_cfg *upstream_call_model(const upstream_call *call);
const char      *upstream_call_upstream_model(const upstream_call *call);
const char      *upstream_call_deployment(const upstream_call *call);
/* From inside on_event: the provider's reading of the chunk (json, len)
 * being delivered (openai_scan with "delta": decided, these very bytes),
 * or NULL when there is none (a translated, held or replayed event, a
 * chunk left to cJSON). Lets a caller read the chunk with
 * openai_scan_delta_of instead of checking it again. */
struct openai_scan_result;   /* upstream/providers/openai_scan.h */
const struct openai_scan_result *upstream_event_facts(const upstream_call *call, const char *json,
                                                      size_t len);
const char *upstream_last_error(void);
void upstream_call_resume(upstream_call *call);
/* Stop a call; on_done follows with UPSTREAM_CANCELLED (synchronously). */
void upstream_call_cancel(upstream_call *call);

/* --- traces of model calls (observe.c), OpenTelemetry gen_ai conventions --- */

/* A span for one model call ("chat MODEL", kind client), child of parent. */
obs_span *upstream_span_begin(const obs_trace_ctx *parent, const scope *owner, const model_cfg *m,
                              bool stream);
/* A child span of call_span for one attempt (from on_attempt). */
void      upstream_span_attempt(const obs_span *call_span, const scope *owner,
                                const upstream_attempt *a);
/* End the call's span with what served it, its usage and its cost. */
void      upstream_span_end(obs_span *s, const upstream_result *res, int64_t cost_nusd);

/* --- deployment state (process-wide, all loop threads) --- */

typedef struct upstream_deployment_stat {
    const char *model;               /* names valid while the config lives */
    const char *deployment;          /* "provider/upstream_model" */
    const char *state;               /* breaker: "closed", "open", "half_open" */
    uint32_t    in_flight;
    uint64_t    calls;               /* attempts ended */
    uint64_t    failures;            /* attempts ended with a provider fault */
    uint64_t    retries;             /* attempts that were retries */
    uint64_t    fallbacks;           /* calls that fell back away from this model (first deployment only) */
    uint64_t    breaker_opens;
    uint64_t    latency_ms_sum;      /* of attempts ended */
    uint64_t    latency_count;
} upstream_deployment_stat;

/* Fill up to `max` entries (every deployment of every configured model,
 * in config order); returns how many there are in all. */
size_t upstream_deployment_stats(upstream_deployment_stat *out, size_t max);
/* For /readyz: false, with the model named in `why`, if every deployment
 * of some model has its breaker open. */
bool   upstream_models_ready(char *why, size_t whylen);

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
    /* Egress (egress/egress_curl.h): every fetch goes through it. NULL
     * policy: the strictest (public addresses only, no redirects). The
     * timeout and size above override the policy's. `egress_out`, if
     * given, receives the check when `done` is called (which addresses
     * were refused), so the caller can name the refusal. */
    const egress_policy *egress;
    egress_check        *egress_out;
} upstream_http_req;

/* status: the HTTP status (0 if none); error: NULL on a complete response,
 * else why it failed ("timed out after 10000 ms", "response over 262144
 * bytes", "could not connect: …", or egress_describe's "egress refused: …"
 * when the address was refused). body valid only during the call. */
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
