/* config_models.c — the `providers:` and `models:` sections: each
 * provider's kind, URL, secret, timeouts, retries and circuit breaker; each
 * model's price table, deployments (weights, caps), balance and fallbacks,
 * resolved against the providers and the other models once all are read. */
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_load.h"

enum { PR_NAME, PR_KIND, PR_BASE_URL, PR_API_KEY, PR_API_KEY_ENV, PR_TIMEOUT, PR_CONNECT_TIMEOUT,
       PR_MAX_CONNS, PR_LATENCY, PR_CHUNKS, PR_CHUNK_INTERVAL, PR_RETRIES, PR_BACKOFF,
       PR_ANTHROPIC_VERSION, PR_FIRST_BYTE, PR_IDLE, PR_MAX_CONC, PR_BACKOFF_MAX, PR_BUDGET_RATIO,
       PR_BUDGET_MIN, PR_BRK_FAILURES, PR_BRK_RATE, PR_BRK_WINDOW, PR_BRK_MIN_CALLS, PR_BRK_OPEN,
       PR_RESPONSES, PR_GULLIBLE, PR_HTTP_CLIENT, PR__N };

static const char *ld_kind_name(provider_kind k)
{
    return k == PROVIDER_OPENAI ? "openai" : k == PROVIDER_ANTHROPIC ? "anthropic" : "mock";
}

static int ld_provider(ld *l, struct fy_node *n, int line, const char *path, provider_cfg *p,
                       entry_lines *el)
{
    slot s[PR__N] = {
        [PR_NAME] = {.key = "name"},                 [PR_KIND] = {.key = "kind"},
        [PR_BASE_URL] = {.key = "base_url"},         [PR_API_KEY] = {.key = "api_key"},
        [PR_API_KEY_ENV] = {.key = "api_key_env"},   [PR_TIMEOUT] = {.key = "timeout_ms"},
        [PR_CONNECT_TIMEOUT] = {.key = "connect_timeout_ms"},
        [PR_MAX_CONNS] = {.key = "max_connections"}, [PR_LATENCY] = {.key = "latency_ms"},
        [PR_CHUNKS] = {.key = "stream_chunks"},      [PR_CHUNK_INTERVAL] = {.key = "chunk_interval_ms"},
        [PR_RETRIES] = {.key = "max_retries"},       [PR_BACKOFF] = {.key = "retry_backoff_ms"},
        [PR_ANTHROPIC_VERSION] = {.key = "anthropic_version"},
        [PR_FIRST_BYTE] = {.key = "first_byte_timeout_ms"},
        [PR_IDLE] = {.key = "stream_idle_timeout_ms"},
        [PR_MAX_CONC] = {.key = "max_concurrent"},
        [PR_BACKOFF_MAX] = {.key = "retry_backoff_max_ms"},
        [PR_BUDGET_RATIO] = {.key = "retry_budget_ratio"},
        [PR_BUDGET_MIN] = {.key = "retry_budget_min_per_s"},
        [PR_BRK_FAILURES] = {.key = "breaker_failures"},
        [PR_BRK_RATE] = {.key = "breaker_error_rate"},
        [PR_BRK_WINDOW] = {.key = "breaker_window_ms"},
        [PR_BRK_MIN_CALLS] = {.key = "breaker_min_calls"},
        [PR_BRK_OPEN] = {.key = "breaker_open_ms"},
        [PR_RESPONSES] = {.key = "responses"},
        [PR_GULLIBLE] = {.key = "gullible"},
        [PR_HTTP_CLIENT] = {.key = "http_client"},
    };
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, kind, …), got nothing");
    if (ld_collect(l, n, line, path, s, PR__N) < 0)
        return -1;
    char kp[160];
    if (!s[PR_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    char *name = NULL;
    if (ld_name(l, &s[PR_NAME], kp, &name) < 0) {
        free(name);
        return -1;
    }
    el->name = s[PR_NAME].line;

    if (!s[PR_KIND].present) {
        free(name);
        return ld_fail(l, line, path, "missing required key \"kind\" (openai, anthropic or mock)");
    }
    ld_path(kp, sizeof(kp), path, "kind");
    char *kind = NULL;
    if (ld_nonempty(l, &s[PR_KIND], kp, &kind, NULL) < 0) {
        free(name);
        free(kind);
        return -1;
    }
    provider_kind k;
    if (strcmp(kind, "openai") == 0) {
        k = PROVIDER_OPENAI;
    } else if (strcmp(kind, "anthropic") == 0) {
        k = PROVIDER_ANTHROPIC;
    } else if (strcmp(kind, "mock") == 0) {
        k = PROVIDER_MOCK;
    } else {
        ld_fail(l, s[PR_KIND].line, kp, "unknown provider kind \"%s\" (known: openai, anthropic, mock)", kind);
        free(name);
        free(kind);
        return -1;
    }
    free(kind);
    config_provider_defaults(p, name, k);
    free(name);

    /* Keys that only make sense for another kind are errors: a mock
     * "latency_ms" on an openai provider silently doing nothing would be
     * a trap. Each key lists the kinds it belongs to. */
    static const struct { int idx; unsigned kinds; const char *which; } only[] = {
        {PR_BASE_URL, 1u << PROVIDER_OPENAI | 1u << PROVIDER_ANTHROPIC, "openai or anthropic"},
        {PR_API_KEY, 1u << PROVIDER_OPENAI | 1u << PROVIDER_ANTHROPIC, "openai or anthropic"},
        {PR_API_KEY_ENV, 1u << PROVIDER_OPENAI | 1u << PROVIDER_ANTHROPIC, "openai or anthropic"},
        {PR_ANTHROPIC_VERSION, 1u << PROVIDER_ANTHROPIC, "anthropic"},
        /* only an OpenAI-compatible provider may have a /responses endpoint */
        {PR_RESPONSES, 1u << PROVIDER_OPENAI, "openai"},
        {PR_HTTP_CLIENT, 1u << PROVIDER_OPENAI | 1u << PROVIDER_ANTHROPIC, "openai or anthropic"},
        {PR_LATENCY, 1u << PROVIDER_MOCK, "mock"},
        {PR_CHUNKS, 1u << PROVIDER_MOCK, "mock"},
        {PR_CHUNK_INTERVAL, 1u << PROVIDER_MOCK, "mock"},
        {PR_GULLIBLE, 1u << PROVIDER_MOCK, "mock"},
    };
    for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++) {
        if (s[only[i].idx].present && !(only[i].kinds & (1u << k))) {
            ld_path(kp, sizeof(kp), path, s[only[i].idx].key);
            return ld_fail(l, s[only[i].idx].line, kp, "only for kind %s, this provider is kind %s",
                           only[i].which, ld_kind_name(k));
        }
    }

    if (k == PROVIDER_OPENAI || k == PROVIDER_ANTHROPIC) {
        /* Required for anthropic too, although the public endpoint is
         * well known: which host receives the API key should be visible in
         * the file, not implied by a default. */
        if (!s[PR_BASE_URL].present)
            return ld_fail(l, s[PR_KIND].line, path, "kind %s needs base_url (e.g. %s)", ld_kind_name(k),
                           k == PROVIDER_OPENAI ? "https://api.openai.com/v1" : "https://api.anthropic.com/v1");
        ld_path(kp, sizeof(kp), path, "base_url");
        size_t skip;
        if (ld_http_url(l, &s[PR_BASE_URL], kp, &p->base_url, &skip) < 0)
            return -1;
        /* Paths are appended as "/chat/completions": drop trailing slashes. */
        size_t ul = strlen(p->base_url);
        while (ul > skip + 1 && p->base_url[ul - 1] == '/')
            p->base_url[--ul] = '\0';

        if (s[PR_API_KEY].present && s[PR_API_KEY_ENV].present) {
            ld_path(kp, sizeof(kp), path, "api_key_env");
            return ld_fail(l, s[PR_API_KEY_ENV].line, kp, "give either api_key or api_key_env, not both");
        }
        if (s[PR_API_KEY].present) {
            int literal = 0;
            ld_path(kp, sizeof(kp), path, "api_key");
            if (ld_nonempty(l, &s[PR_API_KEY], kp, &p->api_key, &literal) < 0)
                return -1;
            if (literal)
                ld_warn(l, s[PR_API_KEY].line, kp,
                        "the key is written in the file; prefer api_key_env or ${VAR}");
        }
        if (s[PR_API_KEY_ENV].present) {
            ld_path(kp, sizeof(kp), path, "api_key_env");
            if (ld_from_env(l, &s[PR_API_KEY_ENV], kp, &p->api_key) < 0)
                return -1;
        }
        if (s[PR_RESPONSES].present) {
            /* passthrough: POST /v1/responses goes to {base_url}/responses
             * (rewritten: docs/api.md); translate (the default): as chat. */
            const char *t;
            size_t tl;
            ld_path(kp, sizeof(kp), path, "responses");
            if (ld_text(l, &s[PR_RESPONSES], kp, &t, &tl) < 0) return -1;
            if (tl == 11 && memcmp(t, "passthrough", 11) == 0) p->responses_passthrough = true;
            else if (!(tl == 9 && memcmp(t, "translate", 9) == 0))
                return ld_fail(l, s[PR_RESPONSES].line, kp, "must be passthrough or translate, got \"%.*s\"",
                               (int)(tl > 64 ? 64 : tl), t);
        }
        if (s[PR_HTTP_CLIENT].present) {
            /* auto (the default): brigade's own HTTP/1.1 client for a
             * plain-http base_url, libcurl otherwise; curl: always libcurl. */
            const char *t;
            size_t tl;
            ld_path(kp, sizeof(kp), path, "http_client");
            if (ld_text(l, &s[PR_HTTP_CLIENT], kp, &t, &tl) < 0) return -1;
            if (tl == 4 && memcmp(t, "curl", 4) == 0) p->http_client_curl = true;
            else if (!(tl == 4 && memcmp(t, "auto", 4) == 0))
                return ld_fail(l, s[PR_HTTP_CLIENT].line, kp, "must be auto or curl, got \"%.*s\"",
                               (int)(tl > 64 ? 64 : tl), t);
        }
        if (s[PR_ANTHROPIC_VERSION].present) {
            ld_path(kp, sizeof(kp), path, "anthropic_version");
            /* Sent as a header value: ld_name's "no spaces or control
             * characters" is exactly what keeps it a single safe token. */
            if (ld_name(l, &s[PR_ANTHROPIC_VERSION], kp, &p->anthropic_version) < 0)
                return -1;
        }
    } else {
#define PR_U32(idx, field, min, max) \
    if (s[idx].present) { ld_path(kp, sizeof(kp), path, s[idx].key); \
        if (ld_u32(l, &s[idx], kp, (min), (max), &p->field) < 0) return -1; }
        PR_U32(PR_LATENCY, mock_latency_ms, 0, 600000)
        PR_U32(PR_CHUNKS, mock_stream_chunks, 1, 100000)
        PR_U32(PR_CHUNK_INTERVAL, mock_chunk_interval_ms, 0, 60000)
        if (s[PR_GULLIBLE].present) {
            ld_path(kp, sizeof(kp), path, "gullible");
            if (ld_bool(l, &s[PR_GULLIBLE], kp, &p->mock_gullible) < 0) return -1;
        }
    }
    PR_U32(PR_TIMEOUT, timeout_ms, 1, 86400000)
    PR_U32(PR_CONNECT_TIMEOUT, connect_timeout_ms, 1, 600000)
    PR_U32(PR_MAX_CONNS, max_connections, 1, 100000)
    PR_U32(PR_RETRIES, max_retries, 0, 10)
    PR_U32(PR_BACKOFF, retry_backoff_ms, 0, 60000)
    PR_U32(PR_FIRST_BYTE, first_byte_timeout_ms, 0, 86400000)
    PR_U32(PR_IDLE, stream_idle_timeout_ms, 0, 86400000)
    PR_U32(PR_MAX_CONC, max_concurrent, 0, 1000000)
    PR_U32(PR_BACKOFF_MAX, retry_backoff_max_ms, 0, 600000)
    PR_U32(PR_BUDGET_MIN, retry_budget_min_per_s, 0, 1000000)
    PR_U32(PR_BRK_FAILURES, breaker_failures, 0, 1000000)
    PR_U32(PR_BRK_WINDOW, breaker_window_ms, 100, 3600000)
    PR_U32(PR_BRK_MIN_CALLS, breaker_min_calls, 1, 1000000)
    PR_U32(PR_BRK_OPEN, breaker_open_ms, 1, 3600000)
#undef PR_U32
    if (s[PR_BUDGET_RATIO].present) {
        ld_path(kp, sizeof(kp), path, "retry_budget_ratio");
        if (ld_double(l, &s[PR_BUDGET_RATIO], kp, 0, 10, &p->retry_budget_ratio) < 0)
            return -1;
    }
    if (s[PR_BRK_RATE].present) {
        ld_path(kp, sizeof(kp), path, "breaker_error_rate");
        if (ld_double(l, &s[PR_BRK_RATE], kp, 0, 1, &p->breaker_error_rate) < 0)
            return -1;
    }
    if (p->retry_backoff_max_ms < p->retry_backoff_ms) {
        int at = s[PR_BACKOFF_MAX].present ? s[PR_BACKOFF_MAX].line : s[PR_BACKOFF].line;
        ld_path(kp, sizeof(kp), path, s[PR_BACKOFF_MAX].present ? "retry_backoff_max_ms" : "retry_backoff_ms");
        return ld_fail(l, at ? at : line, kp, "retry_backoff_max_ms (%u) is below retry_backoff_ms (%u)",
                       p->retry_backoff_max_ms, p->retry_backoff_ms);
    }
    return 0;
}

enum { DE_PROVIDER, DE_UPSTREAM, DE_WEIGHT, DE_MAX_CONC, DE_FIRST_BYTE, DE__N };

/* One entry of models[].deployments. Providers are final by now (the
 * providers list is read before the models), so the name resolves here,
 * with the line of the mistake. */
static int ld_deployment(ld *l, struct fy_node *n, int line, const char *path, const char *model_name,
                         deployment_cfg *d)
{
    slot s[DE__N] = {
        [DE_PROVIDER] = {.key = "provider"}, [DE_UPSTREAM] = {.key = "upstream_model"},
        [DE_WEIGHT] = {.key = "weight"},     [DE_MAX_CONC] = {.key = "max_concurrent"},
        [DE_FIRST_BYTE] = {.key = "first_byte_timeout_ms"},
    };
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (provider, upstream_model, …), got nothing");
    if (ld_collect(l, n, line, path, s, DE__N) < 0)
        return -1;
    char kp[256];
    if (!s[DE_PROVIDER].present)
        return ld_fail(l, line, path, "missing required key \"provider\"");
    ld_path(kp, sizeof(kp), path, "provider");
    if (ld_name(l, &s[DE_PROVIDER], kp, &d->provider_name) < 0)
        return -1;
    brigade_config *cfg = l->cfg;
    for (size_t j = 0; j < cfg->n_providers; j++)
        if (strcmp(cfg->providers[j].name, d->provider_name) == 0)
            d->provider = &cfg->providers[j];
    if (!d->provider) {
        char known[512];
        ld_known_names(known, sizeof(known), (const char *const *)&cfg->providers[0].name,
                       sizeof(provider_cfg), cfg->n_providers);
        return ld_fail(l, s[DE_PROVIDER].line, kp, "no provider named \"%s\" (known: %s)",
                       d->provider_name, known);
    }
    if (s[DE_UPSTREAM].present) {
        ld_path(kp, sizeof(kp), path, "upstream_model");
        if (ld_nonempty(l, &s[DE_UPSTREAM], kp, &d->upstream_model, NULL) < 0)
            return -1;
    } else {
        d->upstream_model = config_xstrdup(model_name);
    }
    d->weight = 1;
    if (s[DE_WEIGHT].present) {
        ld_path(kp, sizeof(kp), path, "weight");
        if (ld_u32(l, &s[DE_WEIGHT], kp, 1, 1000000, &d->weight) < 0)
            return -1;
    }
    d->max_concurrent = d->provider->max_concurrent;
    if (s[DE_MAX_CONC].present) {
        ld_path(kp, sizeof(kp), path, "max_concurrent");
        if (ld_u32(l, &s[DE_MAX_CONC], kp, 0, 1000000, &d->max_concurrent) < 0)
            return -1;
    }
    if (s[DE_FIRST_BYTE].present) {
        ld_path(kp, sizeof(kp), path, "first_byte_timeout_ms");
        if (ld_u32(l, &s[DE_FIRST_BYTE], kp, 1, 86400000, &d->first_byte_timeout_ms) < 0)
            return -1;
    }
    size_t nl = strlen(d->provider_name) + 1 + strlen(d->upstream_model) + 1;
    d->name = config_xcalloc(1, nl);
    snprintf(d->name, nl, "%s/%s", d->provider_name, d->upstream_model);
    return 0;
}

static const char *const ld_fallback_classes[] = {
    "rate_limit", "server_error", "timeout", "connect", "malformed", "context_window", NULL
};

/* models[].fallback_on: a list of failure classes → FALLBACK_* bits. */
static int ld_fallback_on(ld *l, const slot *s, const char *path, uint32_t *out)
{
    size_t n = 0;
    if (ld_sequence(l, s->val, s->line, path, &n, 1) < 0)
        return -1;
    *out = 0;
    void *it = NULL;
    struct fy_node *item;
    size_t i = 0;
    char kp[256];
    while ((item = fy_node_sequence_iterate(s->val, &it)) != NULL) {
        snprintf(kp, sizeof(kp), "%s[%zu]", path, i++);
        slot is = {.key = path, .val = item, .line = config_node_line(item, s->line), .present = 1};
        char *v = NULL;
        if (ld_nonempty(l, &is, kp, &v, NULL) < 0) {
            free(v);
            return -1;
        }
        size_t c;
        for (c = 0; ld_fallback_classes[c]; c++)
            if (strcmp(v, ld_fallback_classes[c]) == 0)
                break;
        if (!ld_fallback_classes[c]) {
            ld_fail(l, is.line, kp, "unknown failure class \"%s\" (known: rate_limit, server_error, "
                    "timeout, connect, malformed, context_window)", v);
            free(v);
            return -1;
        }
        free(v);
        *out |= 1u << c;
    }
    return 0;
}

enum { MO_NAME, MO_PROVIDER, MO_UPSTREAM, MO_IN_PRICE, MO_OUT_PRICE, MO_MAX_OUT, MO_CONTEXT,
       MO_DEPLOYMENTS, MO_BALANCE, MO_FALLBACKS, MO_FALLBACK_ON, MO_KIND, MO_DIMENSIONS, MO_FIRST_BYTE,
       MO_HEDGE, MO_RESUME, MO__N };

/* kind: chat (the default) or embedding. An embedding model generates no
 * tokens: it has no output price or cap (both 0, so a reservation is its
 * input alone), and its context window defaults to 8192 tokens, what one
 * input of OpenAI's embedding models may hold. */
static int ld_model_kind(ld *l, slot *s, const char *path, model_cfg *m)
{
    char kp[160];
    if (s[MO_KIND].present) {
        ld_path(kp, sizeof(kp), path, "kind");
        char *k = NULL;
        if (ld_nonempty(l, &s[MO_KIND], kp, &k, NULL) < 0) {
            free(k);
            return -1;
        }
        bool ok = strcmp(k, "embedding") == 0 || strcmp(k, "chat") == 0;
        m->embedding = strcmp(k, "embedding") == 0;
        if (!ok) ld_fail(l, s[MO_KIND].line, kp, "unknown kind \"%s\" (known: chat, embedding)", k);
        free(k);
        if (!ok) return -1;
    }
    if (s[MO_DIMENSIONS].present) {
        ld_path(kp, sizeof(kp), path, "dimensions");
        if (!m->embedding)
            return ld_fail(l, s[MO_DIMENSIONS].line, kp, "only a model of kind embedding has dimensions");
        if (ld_u32(l, &s[MO_DIMENSIONS], kp, 1, 65536, &m->dimensions) < 0)
            return -1;
    }
    if (!m->embedding) return 0;
    for (int k = MO_OUT_PRICE; k <= MO_MAX_OUT; k++)
        if (s[k].present) {
            ld_path(kp, sizeof(kp), path, s[k].key);
            return ld_fail(l, s[k].line, kp, "an embedding model generates no tokens: leave %s out",
                           s[k].key);
        }
    m->max_output_tokens = 0;
    if (!s[MO_CONTEXT].present) m->context_window = 8192;
    return 0;
}

static int ld_model(ld *l, struct fy_node *n, int line, const char *path, model_cfg *m, entry_lines *el)
{
    slot s[MO__N] = {
        [MO_NAME] = {.key = "name"},                       [MO_PROVIDER] = {.key = "provider"},
        [MO_UPSTREAM] = {.key = "upstream_model"},         [MO_IN_PRICE] = {.key = "input_usd_per_mtok"},
        [MO_OUT_PRICE] = {.key = "output_usd_per_mtok"},   [MO_MAX_OUT] = {.key = "max_output_tokens"},
        [MO_CONTEXT] = {.key = "context_window"},          [MO_DEPLOYMENTS] = {.key = "deployments"},
        [MO_BALANCE] = {.key = "balance"},                 [MO_FALLBACKS] = {.key = "fallbacks"},
        [MO_FALLBACK_ON] = {.key = "fallback_on"},         [MO_KIND] = {.key = "kind"},
        [MO_DIMENSIONS] = {.key = "dimensions"},           [MO_FIRST_BYTE] = {.key = "first_byte_timeout_ms"},
        [MO_HEDGE] = {.key = "hedge_after_ms"},             [MO_RESUME] = {.key = "stream_resume"},
    };
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, provider, …), got nothing");
    if (ld_collect(l, n, line, path, s, MO__N) < 0)
        return -1;
    char kp[160];
    m->max_output_tokens = 4096;
    m->context_window = 128000;
    m->fallback_on = FALLBACK_ALL;
    if (!s[MO_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    if (ld_name(l, &s[MO_NAME], kp, &m->name) < 0)
        return -1;
    el->name = s[MO_NAME].line;
    if (s[MO_DEPLOYMENTS].present) {
        /* Two ways of saying where the model lives would disagree sooner or later. */
        for (int k = MO_PROVIDER; k <= MO_UPSTREAM; k++)
            if (s[k].present) {
                ld_path(kp, sizeof(kp), path, s[k].key);
                return ld_fail(l, s[k].line, kp, "give either %s or deployments, not both", s[k].key);
            }
        ld_path(kp, sizeof(kp), path, "deployments");
        size_t nd = 0;
        if (ld_sequence(l, s[MO_DEPLOYMENTS].val, s[MO_DEPLOYMENTS].line, kp, &nd, 0) < 0)
            return -1;
        m->deployments = config_xcalloc(nd, sizeof(deployment_cfg));
        void *it = NULL;
        struct fy_node *item;
        while (m->n_deployments < nd && (item = fy_node_sequence_iterate(s[MO_DEPLOYMENTS].val, &it))) {
            char dp[180];
            snprintf(dp, sizeof(dp), "%s[%zu]", kp, m->n_deployments);
            deployment_cfg *d = &m->deployments[m->n_deployments++];
            if (ld_deployment(l, item, config_node_line(item, s[MO_DEPLOYMENTS].line), dp, m->name, d) < 0)
                return -1;
            for (size_t j = 0; j + 1 < m->n_deployments; j++)
                if (strcmp(m->deployments[j].name, d->name) == 0)
                    return ld_fail(l, config_node_line(item, s[MO_DEPLOYMENTS].line), dp,
                                   "deployment \"%s\" is listed twice", d->name);
        }
        /* Older code sees the first deployment as "the" provider. */
        m->provider_name = config_xstrdup(m->deployments[0].provider_name);
        m->upstream_model = config_xstrdup(m->deployments[0].upstream_model);
        el->ref = s[MO_DEPLOYMENTS].line;
    } else {
        if (!s[MO_PROVIDER].present)
            return ld_fail(l, line, path, "missing required key \"provider\" (or \"deployments\")");
        ld_path(kp, sizeof(kp), path, "provider");
        if (ld_name(l, &s[MO_PROVIDER], kp, &m->provider_name) < 0)
            return -1;
        el->ref = s[MO_PROVIDER].line;
        if (s[MO_UPSTREAM].present) {
            ld_path(kp, sizeof(kp), path, "upstream_model");
            if (ld_nonempty(l, &s[MO_UPSTREAM], kp, &m->upstream_model, NULL) < 0)
                return -1;
        } else {
            m->upstream_model = config_xstrdup(m->name);
        }
    }
    if (s[MO_BALANCE].present) {
        ld_path(kp, sizeof(kp), path, "balance");
        char *b = NULL;
        if (ld_nonempty(l, &s[MO_BALANCE], kp, &b, NULL) < 0) {
            free(b);
            return -1;
        }
        int ok = 1;
        if (strcmp(b, "weighted") == 0) m->balance = BALANCE_WEIGHTED;
        else if (strcmp(b, "least_in_flight") == 0) m->balance = BALANCE_LEAST_IN_FLIGHT;
        else ok = 0;
        if (!ok) {
            ld_fail(l, s[MO_BALANCE].line, kp, "unknown balance \"%s\" (known: weighted, least_in_flight)", b);
            free(b);
            return -1;
        }
        free(b);
    }
    if (s[MO_FALLBACKS].present) {
        ld_path(kp, sizeof(kp), path, "fallbacks");
        size_t nf = 0;
        if (ld_sequence(l, s[MO_FALLBACKS].val, s[MO_FALLBACKS].line, kp, &nf, 1) < 0)
            return -1;
        m->fallbacks = config_xcalloc(nf ? nf : 1, sizeof(char *));
        void *it = NULL;
        struct fy_node *item;
        while (m->n_fallbacks < nf && (item = fy_node_sequence_iterate(s[MO_FALLBACKS].val, &it))) {
            char fp[180];
            snprintf(fp, sizeof(fp), "%s[%zu]", kp, m->n_fallbacks);
            slot is = {.key = "fallbacks", .val = item,
                       .line = config_node_line(item, s[MO_FALLBACKS].line), .present = 1};
            char *v = NULL;
            if (ld_name(l, &is, fp, &v) < 0) {
                free(v);
                return -1;
            }
            m->fallbacks[m->n_fallbacks++] = v;
            if (strcmp(v, m->name) == 0)
                return ld_fail(l, is.line, fp, "a model cannot be its own fallback");
            for (size_t j = 0; j + 1 < m->n_fallbacks; j++)
                if (strcmp(m->fallbacks[j], v) == 0)
                    return ld_fail(l, is.line, fp, "\"%s\" is listed twice", v);
        }
    }
    if (s[MO_FALLBACK_ON].present) {
        ld_path(kp, sizeof(kp), path, "fallback_on");
        if (ld_fallback_on(l, &s[MO_FALLBACK_ON], kp, &m->fallback_on) < 0)
            return -1;
    }
    if (s[MO_IN_PRICE].present) {
        ld_path(kp, sizeof(kp), path, "input_usd_per_mtok");
        if (ld_double(l, &s[MO_IN_PRICE], kp, 0, 1e6, &m->input_usd_per_mtok) < 0)
            return -1;
    }
    if (s[MO_OUT_PRICE].present) {
        ld_path(kp, sizeof(kp), path, "output_usd_per_mtok");
        if (ld_double(l, &s[MO_OUT_PRICE], kp, 0, 1e6, &m->output_usd_per_mtok) < 0)
            return -1;
    }
    if (s[MO_MAX_OUT].present) {
        ld_path(kp, sizeof(kp), path, "max_output_tokens");
        if (ld_u32(l, &s[MO_MAX_OUT], kp, 1, 10000000, &m->max_output_tokens) < 0)
            return -1;
    }
    if (s[MO_CONTEXT].present) {
        ld_path(kp, sizeof(kp), path, "context_window");
        if (ld_u32(l, &s[MO_CONTEXT], kp, 1, 100000000, &m->context_window) < 0)
            return -1;
    }
    if (s[MO_FIRST_BYTE].present) {
        ld_path(kp, sizeof(kp), path, "first_byte_timeout_ms");
        if (ld_u32(l, &s[MO_FIRST_BYTE], kp, 1, 86400000, &m->first_byte_timeout_ms) < 0)
            return -1;
    }
    if (s[MO_HEDGE].present) {
        ld_path(kp, sizeof(kp), path, "hedge_after_ms");
        if (ld_u32(l, &s[MO_HEDGE], kp, 0, 86400000, &m->hedge_after_ms) < 0)
            return -1;
    }
    if (s[MO_RESUME].present) {
        ld_path(kp, sizeof(kp), path, "stream_resume");
        if (ld_bool(l, &s[MO_RESUME], kp, &m->stream_resume) < 0)
            return -1;
    }
    if (ld_model_kind(l, s, path, m) < 0)
        return -1;
    if (m->max_output_tokens > m->context_window) {
        int at = s[MO_MAX_OUT].present ? s[MO_MAX_OUT].line : s[MO_CONTEXT].line;
        ld_path(kp, sizeof(kp), path, s[MO_MAX_OUT].present ? "max_output_tokens" : "context_window");
        return ld_fail(l, at ? at : line, kp, "max_output_tokens (%u) exceeds context_window (%u)",
                       m->max_output_tokens, m->context_window);
    }
    return 0;
}

/* After the models list is final: resolve each model's fallbacks to
 * models (names checked here, since a fallback may be declared later in
 * the list). `ml` gives the entries' lines, NULL for the embedded models. */
int ld_models_resolve(ld *l, const entry_lines *ml)
{
    brigade_config *cfg = l->cfg;
    for (size_t i = 0; i < cfg->n_models; i++) {
        model_cfg *m = &cfg->models[i];
        free(m->fallback_models);
        m->fallback_models = NULL;
        if (!m->n_fallbacks) continue;
        m->fallback_models = config_xcalloc(m->n_fallbacks, sizeof(*m->fallback_models));
        for (size_t f = 0; f < m->n_fallbacks; f++) {
            m->fallback_models[f] = config_find_model(cfg, m->fallbacks[f]);
            if (!m->fallback_models[f]) {
                char kp[64], known[512];
                snprintf(kp, sizeof(kp), "models[%zu].fallbacks[%zu]", i, f);
                ld_known_names(known, sizeof(known), (const char *const *)&cfg->models[0].name,
                               sizeof(model_cfg), cfg->n_models);
                return ld_fail(l, ml ? ml[i].item : 0, kp, "no model named \"%s\" (known: %s)",
                               m->fallbacks[f], known);
            }
            if (m->fallback_models[f]->embedding != m->embedding) {
                char kp[64];
                snprintf(kp, sizeof(kp), "models[%zu].fallbacks[%zu]", i, f);
                return ld_fail(l, ml ? ml[i].item : 0, kp, "\"%s\" is %s model and \"%s\" is not: "
                               "a fallback answers the same kind of request", m->fallbacks[f],
                               m->embedding ? "not an embedding" : "an embedding", m->name);
            }
        }
    }
    return 0;
}


int ld_provider_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_provider(l, n, line, path, e, el);
}
int ld_model_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_model(l, n, line, path, e, el);
}
void ld_provider_free(void *e) { config_provider_free(e); }
void ld_model_free(void *e) { config_model_free(e); }
