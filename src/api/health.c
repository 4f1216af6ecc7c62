/* health.c — /healthz (the process answers), /readyz (the store and every
 * provider are reachable) and /metrics (Prometheus text, server admin). */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include "util/buf.h"
#include "util/timeutil.h"

void api_health_live(api_ctx *ctx)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    http_respond(ctx->req, 200, "application/json", ok, sizeof ok - 1);
}

void api_health_ready(api_ctx *ctx)
{
    const brigade_config *cfg = &ctx->app->cfg;
    cJSON *o = cJSON_CreateObject();
    cJSON *checks = cJSON_AddObjectToObject(o, "checks");
    bool ready = store_ping(ctx->app->store);
    cJSON_AddStringToObject(checks, "store", ready ? "ok" : "unreachable");
    cJSON *provs = cJSON_AddObjectToObject(checks, "providers");
    for (size_t i = 0; i < cfg->n_providers; i++) {
        bool up = upstream_provider_reachable(&cfg->providers[i]);
        cJSON_AddStringToObject(provs, cfg->providers[i].name, up ? "ok" : "unreachable");
        ready = ready && up;
    }
    /* Circuit breakers: each deployment's state; not ready when some model
     * has every deployment open (its calls can only fall back or fail). */
    upstream_deployment_stat st[256];
    size_t n = upstream_deployment_stats(st, 256);
    cJSON *deps = cJSON_AddObjectToObject(checks, "deployments");
    for (size_t i = 0; i < n && i < 256; i++) {
        char key[300];
        snprintf(key, sizeof key, "%s@%s", st[i].model, st[i].deployment);
        cJSON_AddStringToObject(deps, key, st[i].state);
    }
    char why[200];
    bool models_ok = upstream_models_ready(why, sizeof why);
    cJSON_AddStringToObject(checks, "models", models_ok ? "ok" : why);
    ready = ready && models_ok;
    cJSON_AddStringToObject(o, "status", ready ? "ready" : "not_ready");
    api_reply(ctx, ready ? 200 : 503, o);
}

static void api_metrics_append(void *b, const char *s, size_t n) { buf_append(b, s, n); }

void api_metrics_get(api_ctx *ctx)
{
    app_metrics *m = &ctx->app->metrics;
    buf b;
    buf_init(&b);
#define METRIC(name, type, help, value)                                                     \
    buf_printf(&b, "# HELP brigade_" name " " help "\n# TYPE brigade_" name " " type        \
                   "\nbrigade_" name " %llu\n",                                             \
               (unsigned long long)(value))
    METRIC("http_requests_total", "counter", "HTTP requests received.", atomic_load(&m->requests));
    buf_printf(&b, "# HELP brigade_http_responses_total HTTP responses by status class.\n"
                   "# TYPE brigade_http_responses_total counter\n"
                   "brigade_http_responses_total{class=\"2xx\"} %llu\n"
                   "brigade_http_responses_total{class=\"4xx\"} %llu\n"
                   "brigade_http_responses_total{class=\"5xx\"} %llu\n",
               (unsigned long long)atomic_load(&m->responses_2xx),
               (unsigned long long)atomic_load(&m->responses_4xx),
               (unsigned long long)atomic_load(&m->responses_5xx));
    METRIC("upstream_calls_total", "counter", "Model provider calls started.",
           atomic_load(&m->upstream_calls));
    METRIC("upstream_errors_total", "counter", "Model provider calls that failed.",
           atomic_load(&m->upstream_errors));
    METRIC("input_tokens_total", "counter", "Prompt tokens charged.", atomic_load(&m->input_tokens));
    METRIC("output_tokens_total", "counter", "Completion tokens charged.",
           atomic_load(&m->output_tokens));
    METRIC("cost_nanodollars_total", "counter", "Cost charged, in 1e-9 US dollars.",
           atomic_load(&m->cost_nusd));
    METRIC("auth_failures_total", "counter", "Requests refused for their credential.",
           atomic_load(&m->auth_failures));
    METRIC("uptime_seconds", "gauge", "Seconds since the server started.",
           time_now_unix() - ctx->app->started_at);
    METRIC("runs_active", "gauge", "Agent runs in progress (all loops).",
           runs_active(ctx->app->runs));
#undef METRIC
    /* The registry's families (per-route HTTP, upstream, tokens, OTLP…). */
    obs_metrics_render(api_metrics_append, &b);
    http_respond(ctx->req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    buf_free(&b);
}

void api_models_list(api_ctx *ctx)
{
    const brigade_config *cfg = &ctx->app->cfg;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < cfg->n_models; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", cfg->models[i].name);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", (double)ctx->app->started_at);
        cJSON_AddStringToObject(m, "owned_by", cfg->models[i].provider_name);
        cJSON_AddItemToArray(arr, m);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToObject(o, "data", arr);
    api_reply(ctx, 200, o);
    api_send(ctx);
}
