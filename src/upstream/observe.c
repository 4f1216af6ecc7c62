/* observe.c — model calls as trace spans, in the OpenTelemetry gen_ai
 * conventions, for the gateway and the run harness alike: one span a model
 * call (what was asked, what served it, its usage and cost), one child span
 * an attempt (deployment, outcome, what followed: retry, fallback, done). */
#include "upstream/upstream.h"

#include <stdio.h>
#include <string.h>

static const char *upstream_system_name(const model_cfg *m)
{
    if (!m || !m->provider) return "unknown";
    switch (m->provider->kind) {
    case PROVIDER_OPENAI:    return "openai";
    case PROVIDER_ANTHROPIC: return "anthropic";
    case PROVIDER_MOCK:      return "brigade.mock";
    }
    return "unknown";
}

obs_span *upstream_span_begin(const obs_trace_ctx *parent, const scope *owner, const model_cfg *m,
                              bool stream)
{
    /* gen_ai's operation names: an embedding model's calls are "embeddings". */
    const char *op = m->embedding ? "embeddings" : "chat";
    char name[160];   /* "op model", cut to fit as snprintf would; without its cost per call */
    size_t ol = strlen(op), nl = strnlen(m->name, sizeof name - ol - 2);
    memcpy(name, op, ol);
    name[ol] = ' ';
    memcpy(name + ol + 1, m->name, nl);
    name[ol + 1 + nl] = '\0';
    obs_span *s = obs_span_begin(parent, name, OBS_SPAN_CLIENT, owner);
    obs_span_set_str(s, "gen_ai.operation.name", op);
    obs_span_set_str(s, "gen_ai.system", upstream_system_name(m));
    obs_span_set_str(s, "gen_ai.request.model", m->name);
    obs_span_set_bool(s, "brigade.stream", stream);
    return s;
}

void upstream_span_attempt(const obs_span *call_span, const scope *owner, const upstream_attempt *a)
{
    if (!call_span) return;
    obs_span *s = obs_span_begin(obs_span_ctx(call_span), "attempt", OBS_SPAN_CLIENT, owner);
    obs_span_set_int(s, "brigade.attempt", (int64_t)a->number);
    if (a->model) obs_span_set_str(s, "gen_ai.request.model", a->model->name);
    if (a->deployment) obs_span_set_str(s, "brigade.deployment", a->deployment);
    if (a->status) obs_span_set_int(s, "http.response.status_code", a->status);
    obs_span_set_str(s, "brigade.outcome", a->fault ? a->fault : "ok");
    obs_span_set_int(s, "brigade.duration_ms", (int64_t)a->duration_ms);
    obs_span_set_bool(s, "brigade.breaker_probe", a->probe);
    if (a->next) obs_span_set_str(s, "brigade.next", a->next);
    obs_span_end(s, a->error == UPSTREAM_OK ? OBS_STATUS_OK : OBS_STATUS_ERROR, a->message);
}

void upstream_span_end(obs_span *s, const upstream_result *res, int64_t cost_nusd)
{
    if (!s) return;
    if (res->served_model) {
        obs_span_set_str(s, "gen_ai.response.model", res->served_model->name);
        obs_span_set_str(s, "gen_ai.system", upstream_system_name(res->served_model));
    }
    if (res->deployment) obs_span_set_str(s, "brigade.deployment", res->deployment);
    obs_span_set_int(s, "gen_ai.usage.input_tokens", res->input_tokens);
    obs_span_set_int(s, "gen_ai.usage.output_tokens", res->output_tokens);
    obs_span_set_int(s, "brigade.attempts", (int64_t)res->attempts);
    obs_span_set_double(s, "brigade.cost_usd", (double)cost_nusd / 1e9);
    if (res->error == UPSTREAM_OK) {
        obs_span_end(s, OBS_STATUS_OK, NULL);
        return;
    }
    obs_span_set_str(s, "error.type", upstream_error_name(res->error));
    if (res->status) obs_span_set_int(s, "http.response.status_code", res->status);
    obs_span_end(s, OBS_STATUS_ERROR, res->message ? res->message : upstream_error_name(res->error));
}
