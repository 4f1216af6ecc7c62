/* metrics_std.c — the metric families brigade itself keeps, one accessor
 * each, so that every file that counts something uses the same name, help
 * text, labels and buckets (registration is idempotent; the first call
 * registers). Label sets are bounded: routes are router patterns, tenants
 * and models come from configuration or the tenant table — never user ids. */
#include "obs/obs.h"

#define OBS_STD(fn, expr)                        \
    obs_metric *fn(void)                         \
    {                                            \
        static obs_metric *_Atomic m;            \
        obs_metric *v = m;                       \
        if (!v) m = v = (expr);                  \
        return v;                                \
    }

OBS_STD(obs_m_http_requests,
        obs_counter("brigade_http_server_requests_total",
                    "HTTP requests answered, by method, route pattern and status code.",
                    OBS_L("method", "route", "status")))
OBS_STD(obs_m_http_duration,
        obs_histogram("brigade_http_server_request_duration_seconds",
                      "Time from the end of the request headers to the end of the response.",
                      OBS_L("method", "route"), NULL, 0))
OBS_STD(obs_m_otlp_dropped,
        obs_counter("brigade_otlp_spans_dropped_total",
                    "Spans not exported: the OTLP queue was full or the collector failed.", NULL))
OBS_STD(obs_m_otlp_exported,
        obs_counter("brigade_otlp_spans_exported_total", "Spans accepted by the OTLP collector.", NULL))
OBS_STD(obs_m_spans_dropped,
        obs_counter("brigade_trace_spans_dropped_total",
                    "Spans not stored: the trace queue was full or the store failed.", NULL))
OBS_STD(obs_m_upstream_requests,
        obs_counter("brigade_upstream_requests_total",
                    "Model provider call attempts, by provider and outcome.",
                    OBS_L("provider", "outcome")))
OBS_STD(obs_m_upstream_duration,
        obs_histogram("brigade_upstream_request_duration_seconds",
                      "Duration of one model provider call attempt.", OBS_L("provider"), NULL, 0))
OBS_STD(obs_m_upstream_retries,
        obs_counter("brigade_upstream_retries_total", "Model provider calls retried.",
                    OBS_L("provider")))
OBS_STD(obs_m_provider_overrun,
        obs_counter("brigade_provider_overrun_total",
                    "Answers past the reserved output tokens (a provider that ignored the cap): "
                    "cut or charged at the reservation.",
                    OBS_L("deployment")))
OBS_STD(obs_m_upstream_hedges,
        obs_counter("brigade_upstream_hedges_total",
                    "Hedged attempts started after a slow first byte, by model and which attempt won.",
                    OBS_L("model", "winner")))
OBS_STD(obs_m_stream_resumes,
        obs_counter("brigade_upstream_stream_resumes_total",
                    "Streams cut after text reached the client, resumed by replay: attempted, resumed, "
                    "or diverged (the replay did not repeat the delivered text).",
                    OBS_L("model", "outcome")))
OBS_STD(obs_m_breaker_state,
        obs_gauge("brigade_upstream_breaker_state",
                  "Circuit breaker per provider: 0 closed, 1 half-open, 2 open.", OBS_L("provider")))
OBS_STD(obs_m_tokens,
        obs_counter("brigade_tokens_total", "Tokens charged, by tenant, model and direction.",
                    OBS_L("tenant", "model", "direction")))
OBS_STD(obs_m_cost,
        obs_counter("brigade_cost_nanodollars_by_model_total",
                    "Cost charged in 1e-9 US dollars, by tenant and model.", OBS_L("tenant", "model")))
OBS_STD(obs_m_queue_depth,
        obs_gauge("brigade_run_queue_depth", "Agent runs waiting for their session.", NULL))
OBS_STD(obs_m_queue_wait,
        obs_histogram("brigade_run_queue_wait_seconds", "Time agent runs waited before starting.",
                      NULL, NULL, 0))
OBS_STD(obs_m_active_runs,
        obs_gauge("brigade_active_runs", "Agent runs in progress (all loops; waiting ones included).",
                  NULL))
OBS_STD(obs_m_history_cache,
        obs_counter("brigade_run_history_cache_total",
                    "Agent run starts by where their history came from: hit (kept in memory since "
                    "the session's last run) or miss (read from the store).",
                    OBS_L("outcome")))
OBS_STD(obs_m_history_cache_bytes,
        obs_gauge("brigade_run_history_cache_bytes",
                  "Estimated memory of the sessions' histories kept between runs "
                  "(bounded by server.history_cache_mb).", NULL))
/* The process totals: every metered model call, the gateway's and the
 * agent runs' alike (counted in govern/call.c, the one model-call path). */
OBS_STD(obs_m_model_calls,
        obs_counter("brigade_upstream_calls_total",
                    "Model calls sent to a provider (gateway and agent runs), once each whatever "
                    "their retries and fallbacks; attempts: brigade_upstream_requests_total.",
                    NULL))
OBS_STD(obs_m_model_errors,
        obs_counter("brigade_upstream_errors_total",
                    "Model calls that failed after their retries and fallbacks (gateway and agent "
                    "runs; a call the client or the run cancelled is not counted).",
                    NULL))
OBS_STD(obs_m_input_tokens,
        obs_counter("brigade_input_tokens_total",
                    "Prompt tokens charged (gateway and agent runs); by tenant and model: "
                    "brigade_tokens_total.",
                    NULL))
OBS_STD(obs_m_output_tokens,
        obs_counter("brigade_output_tokens_total",
                    "Completion tokens charged (gateway and agent runs); by tenant and model: "
                    "brigade_tokens_total.",
                    NULL))
OBS_STD(obs_m_cost_total,
        obs_counter("brigade_cost_nanodollars_total",
                    "Cost charged in 1e-9 US dollars (gateway and agent runs); by tenant and "
                    "model: brigade_cost_nanodollars_by_model_total.",
                    NULL))
OBS_STD(obs_m_active_streams,
        obs_gauge("brigade_active_streams", "Streaming responses in progress.", NULL))
OBS_STD(obs_m_refusals,
        obs_counter("brigade_refusals_total",
                    "Requests refused by governance, by tenant and reason.",
                    OBS_L("tenant", "reason")))
OBS_STD(obs_m_guard_decisions,
        obs_counter("brigade_guard_decisions_total",
                    "Decisions of the guard that were not allow (flag, spotlight, drop, block, "
                    "refuse, approval, withhold), by action, channel and detector or check.",
                    OBS_L("action", "channel", "detector")))
