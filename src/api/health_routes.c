/* health_routes.c — /healthz (the process answers), /readyz (the store and every
 * provider are reachable; the details for the server admin token only) and
 * /metrics (Prometheus text, server admin). */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include "runs/run_stream.h"
#include "sandbox/sandbox.h"
#include "util/buf.h"
#include "util/timeutil.h"

void api_health_live(api_ctx *ctx)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    http_respond(ctx->req, 200, "application/json", ok, sizeof ok - 1);
}

/* Ready or not for anyone (a load balancer needs no more); the checks —
 * which name providers, models and deployments — only for the server admin
 * token (in the header, or held by a console session whose cookie comes
 * with its CSRF token): the route is public, and those names tell an outsider what the
 * server fronts and which upstream is failing. */
void api_health_ready(api_ctx *ctx)
{
    const brigade_config *cfg = &ctx->env->cfg;
    const char *auth = http_header_get(ctx->req, "authorization");
    /* the server admin signed in to the console: its session's token */
    char console_cred[CONSOLE_CREDENTIAL_MAX + 1];
    if (!auth) auth = api_console_session_credential(ctx, console_cred, sizeof console_cred);
    bool detail = identity_is_admin_token(ctx->env->identity, auth);
    cJSON *o = cJSON_CreateObject();
    cJSON *checks = cJSON_AddObjectToObject(o, "checks");
    bool ready = store_ping(ctx->env->store);
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
    /* Shared governance (Redis): unready while budgets fail closed. */
    const char *gwhy;
    bool gov_ok = gate_ready(ctx->env->gate, &gwhy);
    cJSON_AddStringToObject(checks, "governance", gwhy);
    ready = ready && gov_ok;
    /* What tool processes get (docs/sandbox.md); informational: the
     * server serves without it, and a command tool's call says why not. */
    const sandbox_host *sh = sandbox_host_info();
    cJSON *sb = cJSON_AddObjectToObject(checks, "sandbox");
    cJSON_AddStringToObject(sb, "namespaces", sh->bwrap_ok ? "ok" : "unavailable");
    cJSON_AddStringToObject(sb, "seccomp", sh->seccomp_ok ? "ok" : "unavailable");
    cJSON_AddNumberToObject(sb, "landlock_abi", sh->landlock_abi);
    cJSON_AddBoolToObject(sb, "pids_cgroup", sh->cgroup_dir[0] != '\0');
    cJSON_AddBoolToObject(sb, "unsandboxed_allowed", sh->allow_unsandboxed);
    cJSON_AddStringToObject(o, "status", ready ? "ready" : "not_ready");
    if (!detail) cJSON_DeleteItemFromObjectCaseSensitive(o, "checks");
    api_reply(ctx, ready ? 200 : 503, o);
}

static void api_metrics_append(void *b, const char *s, size_t n) { buf_append(b, s, n); }

/* A label value in the exposition format: backslash, quote and newline
 * escaped. */
static void api_metrics_label(buf *b, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\' || *p == '"') buf_printf(b, "\\%c", *p);
        else if (*p == '\n') buf_append(b, "\\n", 2);
        else buf_append(b, p, 1);
    }
}

/* Governance and resilience state, read at scrape time: the fair queue of
 * each model (depth, slots, waits, shed calls), each deployment's breaker,
 * and the governance counters. */
static void api_metrics_governance(api_env *a, buf *b)
{
    const brigade_config *cfg = &a->cfg;
    fairq *fq = gate_fairq(a->gate);
    static const struct {
        const char *name, *type, *help;
        int field;                   /* 0 depth, 1 in_use, 2 full */
    } pool_metrics[] = {
        {"brigade_upstream_queue_depth", "gauge", "Model calls waiting for an upstream slot.", 0},
        {"brigade_upstream_slots_in_use", "gauge",
         "Upstream calls holding a slot of the model's capacity.", 1},
        {"brigade_upstream_queue_shed_total", "counter",
         "Model calls refused because the fair queue was full.", 2},
    };
    for (size_t k = 0; k < sizeof pool_metrics / sizeof pool_metrics[0]; k++) {
        buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", pool_metrics[k].name, pool_metrics[k].help,
                   pool_metrics[k].name, pool_metrics[k].type);
        for (size_t i = 0; i < cfg->n_models; i++) {
            fairq_pool *p = fairq_pool_find(fq, cfg->models[i].name);
            if (!p) continue;
            fairq_pool_stats st;
            fairq_pool_stats_get(p, &st);
            unsigned long long v = pool_metrics[k].field == 0 ? st.depth
                                 : pool_metrics[k].field == 1 ? st.in_use : st.full;
            buf_printf(b, "%s{model=\"", pool_metrics[k].name);
            api_metrics_label(b, cfg->models[i].name);
            buf_printf(b, "\"} %llu\n", v);
        }
    }
    buf_printf(b, "# HELP brigade_upstream_queue_wait_seconds Time model calls waited for an upstream slot (0 when granted at once).\n"
                  "# TYPE brigade_upstream_queue_wait_seconds histogram\n");
    for (size_t i = 0; i < cfg->n_models; i++) {
        fairq_pool *p = fairq_pool_find(fq, cfg->models[i].name);
        if (!p) continue;
        fairq_pool_stats st;
        fairq_pool_stats_get(p, &st);
        uint64_t cum = 0;
        for (int k = 0; k < FAIRQ_HIST_N; k++) {
            cum += st.wait_hist[k];
            buf_printf(b, "brigade_upstream_queue_wait_seconds_bucket{model=\"");
            api_metrics_label(b, cfg->models[i].name);
            if (k < FAIRQ_HIST_N - 1)
                buf_printf(b, "\",le=\"%g\"} %llu\n", (double)fairq_wait_bounds_ms[k] / 1000.0,
                           (unsigned long long)cum);
            else
                buf_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        buf_printf(b, "brigade_upstream_queue_wait_seconds_sum{model=\"");
        api_metrics_label(b, cfg->models[i].name);
        buf_printf(b, "\"} %g\n", (double)st.wait_ms_sum / 1000.0);
        buf_printf(b, "brigade_upstream_queue_wait_seconds_count{model=\"");
        api_metrics_label(b, cfg->models[i].name);
        buf_printf(b, "\"} %llu\n", (unsigned long long)st.waits);
    }
    upstream_deployment_stat ds[256];
    size_t nd = upstream_deployment_stats(ds, 256);
    if (nd > 256) nd = 256;
    buf_printf(b, "# HELP brigade_deployment_breaker_state Circuit breaker of each deployment: 0 closed, 1 half-open, 2 open.\n"
                  "# TYPE brigade_deployment_breaker_state gauge\n");
    for (size_t i = 0; i < nd; i++) {
        int v = strcmp(ds[i].state, "open") == 0 ? 2 : strcmp(ds[i].state, "half_open") == 0 ? 1 : 0;
        buf_printf(b, "brigade_deployment_breaker_state{model=\"");
        api_metrics_label(b, ds[i].model);
        buf_printf(b, "\",deployment=\"");
        api_metrics_label(b, ds[i].deployment);
        buf_printf(b, "\"} %d\n", v);
    }
    buf_printf(b, "# HELP brigade_deployment_in_flight Upstream calls in flight per deployment.\n"
                  "# TYPE brigade_deployment_in_flight gauge\n");
    for (size_t i = 0; i < nd; i++) {
        buf_printf(b, "brigade_deployment_in_flight{model=\"");
        api_metrics_label(b, ds[i].model);
        buf_printf(b, "\",deployment=\"");
        api_metrics_label(b, ds[i].deployment);
        buf_printf(b, "\"} %u\n", ds[i].in_flight);
    }
    govern_stats gs;
    govern_stats_get(gate_govern(a->gate), &gs);
    buf_printf(b, "# HELP brigade_governance_admits_total Model calls admitted by governance.\n"
                  "# TYPE brigade_governance_admits_total counter\n"
                  "brigade_governance_admits_total %llu\n"
                  "# HELP brigade_governance_refused_total Model calls and runs refused, by limit.\n"
                  "# TYPE brigade_governance_refused_total counter\n"
                  "brigade_governance_refused_total{limit=\"rpm\"} %llu\n"
                  "brigade_governance_refused_total{limit=\"tpm\"} %llu\n"
                  "brigade_governance_refused_total{limit=\"tokens_exceed\"} %llu\n"
                  "brigade_governance_refused_total{limit=\"daily_budget\"} %llu\n"
                  "brigade_governance_refused_total{limit=\"monthly_budget\"} %llu\n"
                  "brigade_governance_refused_total{limit=\"concurrency\"} %llu\n"
                  "# HELP brigade_governance_reserved_nanodollars Money reserved by calls in flight, in 1e-9 USD.\n"
                  "# TYPE brigade_governance_reserved_nanodollars gauge\n"
                  "brigade_governance_reserved_nanodollars %lld\n",
               (unsigned long long)gs.admits, (unsigned long long)gs.refused_rpm,
               (unsigned long long)gs.refused_tpm, (unsigned long long)gs.refused_tokens_exceed,
               (unsigned long long)gs.refused_daily_budget, (unsigned long long)gs.refused_monthly_budget,
               (unsigned long long)gs.refused_concurrency, (long long)gs.reserved_nusd);
    govern_redis_stats rs;
    if (gate_redis_stats(a->gate, &rs))
        buf_printf(b, "# HELP brigade_governance_redis_up 1 while this instance reaches the shared governance Redis.\n"
                      "# TYPE brigade_governance_redis_up gauge\n"
                      "brigade_governance_redis_up %d\n"
                      "# HELP brigade_governance_redis_generation_ok 1 once spend in Redis was rebuilt from the ledger (0: Redis lost its data and is being rebuilt).\n"
                      "# TYPE brigade_governance_redis_generation_ok gauge\n"
                      "brigade_governance_redis_generation_ok %d\n"
                      "# HELP brigade_governance_redis_admissions_total Admissions answered by Redis or not, by result.\n"
                      "# TYPE brigade_governance_redis_admissions_total counter\n"
                      "brigade_governance_redis_admissions_total{result=\"admitted\"} %llu\n"
                      "brigade_governance_redis_admissions_total{result=\"refused\"} %llu\n"
                      "brigade_governance_redis_admissions_total{result=\"unavailable\"} %llu\n"
                      "# HELP brigade_governance_redis_rebuilds_total Times this instance rebuilt spend in Redis from the ledger.\n"
                      "# TYPE brigade_governance_redis_rebuilds_total counter\n"
                      "brigade_governance_redis_rebuilds_total %llu\n"
                      "# HELP brigade_governance_redis_connects_total Connections to Redis made (the first and every reconnection).\n"
                      "# TYPE brigade_governance_redis_connects_total counter\n"
                      "brigade_governance_redis_connects_total %llu\n",
                   rs.connected ? 1 : 0, rs.generation_ok ? 1 : 0, (unsigned long long)rs.admits,
                   (unsigned long long)rs.refusals, (unsigned long long)rs.unavailable,
                   (unsigned long long)rs.reseeds, (unsigned long long)rs.reconnects);
    govern_slots_stats ss;
    if (gate_slots_stats(a->gate, &ss))
        buf_printf(b, "# HELP brigade_governance_redis_run_slots_up 1 while run slots (max_concurrent_runs) are counted in Redis; 0: each instance counts its own against limit / instances.\n"
                      "# TYPE brigade_governance_redis_run_slots_up gauge\n"
                      "brigade_governance_redis_run_slots_up %d\n"
                      "# HELP brigade_governance_redis_run_slots_total Run slots asked of Redis, by result (unavailable: counted per instance instead; released and renewed count leases, one per level).\n"
                      "# TYPE brigade_governance_redis_run_slots_total counter\n"
                      "brigade_governance_redis_run_slots_total{result=\"acquired\"} %llu\n"
                      "brigade_governance_redis_run_slots_total{result=\"refused\"} %llu\n"
                      "brigade_governance_redis_run_slots_total{result=\"unavailable\"} %llu\n"
                      "brigade_governance_redis_run_slots_total{result=\"released\"} %llu\n"
                      "brigade_governance_redis_run_slots_total{result=\"renewed\"} %llu\n",
                   ss.up ? 1 : 0, (unsigned long long)ss.acquired, (unsigned long long)ss.refused,
                   (unsigned long long)ss.unavailable, (unsigned long long)ss.releases,
                   (unsigned long long)ss.renewals);
}

/* Several instances: run events through Redis (runs/run_stream.h). */
static void api_metrics_run_events(api_env *a, buf *b)
{
    run_stream *s = runs_stream(a->runs);
    if (!s) return;
    run_stream_stats st;
    run_stream_stats_get(s, &st);
    buf_printf(b, "# HELP brigade_run_events_redis_up 1 while this instance reaches Redis for run events.\n"
                  "# TYPE brigade_run_events_redis_up gauge\n"
                  "brigade_run_events_redis_up %d\n"
                  "# HELP brigade_run_events_published_total Run events (and ends) this instance published to Redis.\n"
                  "# TYPE brigade_run_events_published_total counter\n"
                  "brigade_run_events_published_total %llu\n"
                  "# HELP brigade_run_events_dropped_total Run events not published (queue full, or refused by Redis).\n"
                  "# TYPE brigade_run_events_dropped_total counter\n"
                  "brigade_run_events_dropped_total %llu\n"
                  "# HELP brigade_run_events_followers Other instances' runs whose events this instance streams now.\n"
                  "# TYPE brigade_run_events_followers gauge\n"
                  "brigade_run_events_followers %zu\n",
               st.up ? 1 : 0, (unsigned long long)st.published, (unsigned long long)st.dropped, st.followers);
}

/* The store writer's group commits (store_stats): ops / commits is the
 * batch size, and commits per second what the disk's fsyncs cost. */
static void api_metrics_store(const api_env *env, buf *b)
{
    store_stats s;
    store_get_stats(env->store, &s);
    buf_printf(b, "# HELP brigade_store_commits_total Transactions the store's writer committed.\n"
                  "# TYPE brigade_store_commits_total counter\n"
                  "brigade_store_commits_total %llu\n"
                  "# HELP brigade_store_write_ops_total Write operations in those commits.\n"
                  "# TYPE brigade_store_write_ops_total counter\n"
                  "brigade_store_write_ops_total %llu\n"
                  "# HELP brigade_store_usage_rows_total Usage rows committed to the ledger.\n"
                  "# TYPE brigade_store_usage_rows_total counter\n"
                  "brigade_store_usage_rows_total %llu\n"
                  "# HELP brigade_store_usage_wait_seconds How long the oldest usage row of each commit "
                  "waited to be committed (queued to durable).\n"
                  "# TYPE brigade_store_usage_wait_seconds summary\n"
                  "brigade_store_usage_wait_seconds_sum %.3f\n"
                  "brigade_store_usage_wait_seconds_count %llu\n"
                  "# HELP brigade_store_usage_wait_max_seconds The longest such wait since the start.\n"
                  "# TYPE brigade_store_usage_wait_max_seconds gauge\n"
                  "brigade_store_usage_wait_max_seconds %.3f\n"
                  "# HELP brigade_store_usage_queued Usage rows not committed yet (queued, or in the "
                  "commit under way).\n"
                  "# TYPE brigade_store_usage_queued gauge\n"
                  "brigade_store_usage_queued %llu\n"
                  "# HELP brigade_store_usage_dropped_total Usage rows refused because the writer's "
                  "queue was full; their reservations are charged at the next start.\n"
                  "# TYPE brigade_store_usage_dropped_total counter\n"
                  "brigade_store_usage_dropped_total %llu\n",
               (unsigned long long)s.commits, (unsigned long long)s.ops,
               (unsigned long long)s.usage_rows, (double)s.usage_wait_ms_sum / 1000.0,
               (unsigned long long)s.usage_wait_count, (double)s.usage_wait_ms_max / 1000.0,
               (unsigned long long)s.usage_queued, (unsigned long long)s.usage_dropped);
}

void api_metrics_get(api_ctx *ctx)
{
    api_metrics *m = &ctx->env->metrics;
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
    METRIC("auth_failures_total", "counter", "Requests refused for their credential.",
           atomic_load(&m->auth_failures));
    METRIC("uptime_seconds", "gauge", "Seconds since the server started.",
           time_now_unix() - ctx->env->started_at);
#undef METRIC
    /* The registry's families (per-route HTTP, upstream, tokens, OTLP…). */
    obs_metrics_render(api_metrics_append, &b);
    api_metrics_governance(ctx->env, &b);
    api_metrics_run_events(ctx->env, &b);
    api_metrics_store(ctx->env, &b);
    http_respond(ctx->req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    buf_free(&b);
}

void api_models_list(api_ctx *ctx)
{
    const brigade_config *cfg = &ctx->env->cfg;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < cfg->n_models; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", cfg->models[i].name);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", (double)ctx->env->started_at);
        cJSON_AddStringToObject(m, "owned_by", cfg->models[i].provider_name);
        cJSON_AddItemToArray(arr, m);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToObject(o, "data", arr);
    api_reply(ctx, 200, o);
    api_send(ctx);
}
