/* obs.h — observability: W3C trace context, spans, metrics.
 *
 * Traces. A span is begun with its parent's context (or none: a new trace),
 * collects attributes, and is ended once. Ending pushes it on one queue (one
 * short mutex hold, the only lock on the hot path); the tracer's thread
 * writes queued spans to the store in batches (they are readable through
 * GET /v1/traces/{id} within OBS_TRACE_FLUSH_MS) and hands them to the OTLP
 * exporter when observability.otlp.endpoint is set. Without obs_start (unit
 * tests, the CLI) spans are built and freed on end: instrumented code never
 * needs to check whether tracing is on.
 *
 * The tracer and the metric registry are process-wide: instrumentation sits
 * deep in the gateway and the run loop, and threading a pointer through
 * every call for a sink that exists once per process buys nothing.
 *
 * Metrics. Families are registered by name (idempotent: registering again
 * returns the same family), series are looked up by label values under the
 * family's mutex and then updated with atomics; keep the series pointer to
 * skip the lookup. A family holds at most obs_metrics_max_series() series;
 * past that, updates go to one series whose labels read "_overflow_" and
 * brigade_metrics_series_overflow_total counts them. Never use a user id,
 * a key or free text as a label value: tenant, model, provider, route and
 * status are bounded; users are not.
 *
 * Usage:
 *   obs_span *s = obs_span_begin(&parent_ctx, "chat mock-gpt", OBS_SPAN_CLIENT, &ctx->scope);
 *   obs_span_set_str(s, "gen_ai.request.model", model);
 *   obs_span_set_int(s, "gen_ai.usage.input_tokens", in);
 *   obs_span_end(s, OBS_STATUS_OK, NULL);
 *
 *   static obs_metric *calls;   // once
 *   if (!calls) calls = obs_counter("brigade_upstream_requests_total", "…", OBS_L("provider", "status"));
 *   obs_counter_add(obs_series_of(calls, OBS_L(provider, "ok")), 1);
 */
#ifndef BRIGADE_OBS_H
#define BRIGADE_OBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scope/scope.h"

typedef struct store store;

/* ---------------- trace context ---------------- */

#define OBS_TRACEPARENT_LEN 55   /* "00-" 32 "-" 16 "-" 2 */
#define OBS_TRACE_ID_HEX 33      /* 32 hex + NUL */
#define OBS_SPAN_ID_HEX 17       /* 16 hex + NUL */
#define OBS_TRACE_FLUSH_MS 500   /* an ended span is in the store within this bound */

typedef struct obs_trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];          /* the parent span for children made from this */
    uint8_t flags;               /* bit 0: sampled */
    bool made_here;              /* the trace id was made by this process (obs_trace_ctx_new),
                                  * not taken from a client: it begins with its time, and the
                                  * store may pack its trace with others (store/trace_pack.h) */
} obs_trace_ctx;

/* Strict W3C parse: version 00, lower-case hex, non-zero ids, nothing after
 * the flags. false (and *out untouched) for anything else: the caller then
 * starts a new trace. */
bool obs_traceparent_parse(const char *header, obs_trace_ctx *out);
/* "00-<trace>-<span>-<flags>"; out holds OBS_TRACEPARENT_LEN + 1. */
void obs_traceparent_format(const obs_trace_ctx *c, char *out);
/* A new random context (trace and span ids), sampled — flags bit 0 — with
 * the probability set by obs_set_sample_ratio (default 1). */
void obs_trace_ctx_new(obs_trace_ctx *out);
/* Head sampling, parent-based: a new trace is recorded with this
 * probability (0–1); a continued trace follows its parent's sampled flag.
 * Spans of an unsampled trace still carry its context (the traceparent
 * goes on), but are not stored or exported. */
void obs_set_sample_ratio(double ratio);
void obs_trace_id_hex(const obs_trace_ctx *c, char out[OBS_TRACE_ID_HEX]);
/* Strict: exactly 32 lower-case hex digits, not all zero. */
bool obs_trace_id_valid(const char *hex);

/* ---------------- spans ---------------- */

typedef enum { OBS_SPAN_INTERNAL = 1, OBS_SPAN_SERVER = 2, OBS_SPAN_CLIENT = 3 } obs_span_kind;
typedef enum { OBS_STATUS_UNSET = 0, OBS_STATUS_OK = 1, OBS_STATUS_ERROR = 2 } obs_status;

typedef struct obs_span obs_span;

/* Begin a span. parent NULL: a new trace (root span). owner may be NULL
 * (set it later with obs_span_set_owner, e.g. after authentication); only
 * the tenant and user are kept. Never NULL (aborts on out of memory, like
 * the rest of the hot path's small allocations). */
obs_span *obs_span_begin(const obs_trace_ctx *parent, const char *name, obs_span_kind kind,
                         const scope *owner);
/* The context to give children (and to put in a traceparent header). */
const obs_trace_ctx *obs_span_ctx(const obs_span *s);
void obs_span_set_owner(obs_span *s, const scope *owner);
void obs_span_set_name(obs_span *s, const char *name);
/* Attributes: at most OBS_SPAN_ATTRS_MAX per span (later ones are dropped);
 * strings are cut to 256 bytes. Setting a key again replaces the value. */
#define OBS_SPAN_ATTRS_MAX 32
void obs_span_set_str(obs_span *s, const char *key, const char *value);
/* set_str is for names and ids brigade made (models, tools, routes, run
 * ids). A value that can hold a user's text goes through set_text, which
 * replaces personal data in it (util/pii.h); so does an error's message
 * given to obs_span_end. */
void obs_span_set_text(obs_span *s, const char *key, const char *value);
void obs_span_set_int(obs_span *s, const char *key, int64_t value);
void obs_span_set_double(obs_span *s, const char *key, double value);
void obs_span_set_bool(obs_span *s, const char *key, bool value);
/* End the span (message may be NULL; kept for OBS_STATUS_ERROR) and hand it
 * to the tracer. `s` is invalid afterwards. NULL is ignored. */
void obs_span_end(obs_span *s, obs_status status, const char *message);
/* Is this span recorded (its trace sampled)? */
bool obs_span_recording(const obs_span *s);
/* Drop a span without recording it. */
void obs_span_discard(obs_span *s);

/* ---------------- the tracer (process-wide) ---------------- */

typedef struct obs_tracer_opts {
    uint32_t retention_hours;    /* spans older are pruned (default 72) */
    uint64_t max_spans;          /* the store keeps at most this many (default 1000000) */
    const char *otlp_endpoint;   /* NULL/"" = no export; spans go to {endpoint}/v1/traces */
    uint32_t otlp_max_queue;     /* spans waiting for export (default 8192) */
    uint32_t otlp_batch;         /* spans per POST (default 512) */
    uint32_t otlp_interval_ms;   /* export at least this often (default 1000) */
    uint32_t otlp_timeout_ms;    /* per POST (default 2000) */
    const char *service_name;    /* resource service.name (default "brigade") */
} obs_tracer_opts;

/* Start the tracer's threads writing to `st` (may be NULL: export only).
 * 0, or -1 with err set. */
int  obs_tracer_start(const obs_tracer_opts *o, store *st, char *err, size_t errlen);
/* Flush what is queued to the store (and a last export try), stop threads.
 * Call before store_close. */
void obs_tracer_stop(void);
/* Block until every span ended before the call is in the store (tests). */
void obs_tracer_flush(void);
/* Spans waiting in the tracer's queue, not yet taken (tests, measurements). */
size_t obs_tracer_queued(void);

/* From the `observability:` configuration (obs_setup.c): log format and
 * content flag, the metric series cap, and the tracer (store and/or OTLP).
 * 0, or -1 with err set. Stop with obs_tracer_stop. */
struct obs_cfg;
int obs_setup(const struct obs_cfg *cfg, store *st, char *err, size_t errlen);

/* ---------------- metrics (process-wide) ---------------- */

typedef struct obs_metric obs_metric;
typedef struct obs_series obs_series;

#define OBS_LABELS_MAX 6
/* A NULL-terminated list of label names or values. */
#define OBS_L(...) ((const char *const[]){__VA_ARGS__, NULL})

obs_metric *obs_counter(const char *name, const char *help, const char *const *labels);
obs_metric *obs_gauge(const char *name, const char *help, const char *const *labels);
/* buckets: upper bounds, ascending (+Inf is implicit); NULL = the default
 * latency buckets in seconds (5 ms … 60 s). */
obs_metric *obs_histogram(const char *name, const char *help, const char *const *labels,
                          const double *buckets, size_t n_buckets);
/* The series for these label values (as many as the family has names;
 * NULL for a family without labels). Never NULL. */
obs_series *obs_series_of(obs_metric *m, const char *const *values);

void obs_counter_add(obs_series *s, uint64_t n);
/* A counter's value now (the per-minute ring of recent.h reads the totals). */
uint64_t obs_counter_value(const obs_series *s);
void obs_gauge_set(obs_series *s, double v);
void obs_gauge_add(obs_series *s, double d);     /* negative to decrement */
void obs_histogram_observe(obs_series *s, double v);

/* Series cap per family (default 1000; observability.metrics.max_series). */
void   obs_metrics_set_max_series(size_t n);
size_t obs_metrics_max_series(void);

/* Append every family in Prometheus text format 0.0.4. `append` is called
 * with pieces of text (buf_append fits). */
void obs_metrics_render(void (*append)(void *ctx, const char *s, size_t n), void *ctx);

/* The metrics brigade itself keeps (registered on first use). */
obs_metric *obs_m_http_requests(void);        /* counter {method, route, status} */
obs_metric *obs_m_http_duration(void);        /* histogram {method, route} seconds */
obs_metric *obs_m_otlp_dropped(void);         /* counter brigade_otlp_spans_dropped_total */
obs_metric *obs_m_otlp_exported(void);        /* counter brigade_otlp_spans_exported_total */
obs_metric *obs_m_spans_dropped(void);        /* counter: spans not stored (queue full) */
/* Ready for the gateway and the run loop (metrics_std.c has names/units). */
obs_metric *obs_m_upstream_requests(void);    /* counter {provider, outcome}: ok|error|timeout|rate_limited */
obs_metric *obs_m_upstream_duration(void);    /* histogram {provider} seconds, per attempt */
obs_metric *obs_m_upstream_retries(void);     /* counter {provider} */
obs_metric *obs_m_breaker_state(void);        /* gauge {provider}: 0 closed, 1 half-open, 2 open */
obs_metric *obs_m_provider_overrun(void);     /* counter {deployment}: answers past the reserved output */
obs_metric *obs_m_stream_resumes(void);       /* counter {model, outcome}: attempted|resumed|diverged */
obs_metric *obs_m_upstream_hedges(void);      /* counter {model, winner}: hedge|primary|none */
obs_metric *obs_m_tokens(void);               /* counter {tenant, model, direction}: input|output */
obs_metric *obs_m_cost(void);                 /* counter {tenant, model} nano-USD */
obs_metric *obs_m_queue_depth(void);          /* gauge: runs waiting */
obs_metric *obs_m_queue_wait(void);           /* histogram seconds */
obs_metric *obs_m_active_runs(void);          /* gauge */
obs_metric *obs_m_history_cache(void);        /* counter: outcome (runs/history_cache.h) */
obs_metric *obs_m_history_cache_bytes(void);  /* gauge */
obs_metric *obs_m_model_calls(void);          /* counter: metered model calls sent */
obs_metric *obs_m_model_errors(void);         /* counter: … that failed */
obs_metric *obs_m_input_tokens(void);         /* counter: process totals (all tenants) */
obs_metric *obs_m_output_tokens(void);
obs_metric *obs_m_cost_total(void);           /* counter nano-USD */
obs_metric *obs_m_active_streams(void);       /* gauge */
obs_metric *obs_m_refusals(void);             /* counter {tenant, reason}: rate_limit|concurrency|budget|overload */
obs_metric *obs_m_guard_decisions(void);      /* counter {action, channel, detector}: the guard's
                                                 decisions that were not allow (guard_record.h) */

#endif
