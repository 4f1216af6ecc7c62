/* health.c — the process-wide state of every deployment: calls in flight,
 * circuit breaker, "rate limited until", counters; and the retry budget of
 * every provider. Shared by all loop threads, so each model's state has a
 * mutex (held for a few hundred nanoseconds per attempt: pick and admit,
 * then record the outcome), and each provider's budget another.
 *
 * The state is built from the configuration the first upstream_new sees
 * and dropped when the last upstream is freed (tests load several configs
 * one after another). A model that is not in that configuration (a test
 * that builds one by hand) gets its state on first use. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/resilience/health.h"
#include "upstream/upstream_internal.h"
#include "util/xalloc.h"

struct up_health_model {
    const model_cfg *m;
    pthread_mutex_t  mu;
    up_dep          *deps;
    size_t           n;
    upstream_breaker_cfg *bcfg;   /* per deployment, from its provider */
    uint64_t         rr;          /* rotates least_in_flight ties */
};

typedef struct up_health_prov {
    const provider_cfg *p;
    pthread_mutex_t     mu;
    upstream_budget     b;
} up_health_prov;

static pthread_mutex_t hl_mu = PTHREAD_MUTEX_INITIALIZER;
static const brigade_config *hl_cfg;
static int hl_refs;
static up_health_model **hl_models;   /* cfg's models in order, then extras */
static size_t hl_n_models;
static up_health_prov **hl_provs;
static size_t hl_n_provs;

static up_health_model *hl_model_new(const model_cfg *m)
{
    up_health_model *hm = xcalloc(1, sizeof(*hm));
    hm->m = m;
    pthread_mutex_init(&hm->mu, NULL);
    /* The embedded models have no deployments list: provider/upstream_model
     * is the one deployment. */
    hm->n = m->n_deployments ? m->n_deployments : 1;
    hm->deps = xcalloc(hm->n, sizeof(*hm->deps));
    hm->bcfg = xcalloc(hm->n, sizeof(*hm->bcfg));
    for (size_t i = 0; i < hm->n; i++) {
        up_dep *d = &hm->deps[i];
        if (m->n_deployments) {
            const deployment_cfg *dc = &m->deployments[i];
            d->prov = dc->provider;
            d->upstream_model = dc->upstream_model;
            snprintf(d->name, sizeof d->name, "%s", dc->name);
            d->weight = dc->weight ? dc->weight : 1;
            d->max_concurrent = dc->max_concurrent;
            d->first_byte_timeout_ms = dc->first_byte_timeout_ms;
        } else {
            d->prov = m->provider;
            d->upstream_model = m->upstream_model;
            snprintf(d->name, sizeof d->name, "%s/%s", m->provider_name ? m->provider_name : "?",
                     m->upstream_model ? m->upstream_model : m->name);
            d->weight = 1;
            d->max_concurrent = m->provider ? m->provider->max_concurrent : 0;
        }
        upstream_breaker_cfg_of(d->prov, &hm->bcfg[i]);
    }
    return hm;
}

static void hl_model_free(up_health_model *hm)
{
    pthread_mutex_destroy(&hm->mu);
    free(hm->deps);
    free(hm->bcfg);
    free(hm);
}

static void hl_clear(void)
{
    for (size_t i = 0; i < hl_n_models; i++) hl_model_free(hl_models[i]);
    for (size_t i = 0; i < hl_n_provs; i++) {
        pthread_mutex_destroy(&hl_provs[i]->mu);
        free(hl_provs[i]);
    }
    free(hl_models);
    free(hl_provs);
    hl_models = NULL;
    hl_provs = NULL;
    hl_n_models = hl_n_provs = 0;
    hl_cfg = NULL;
}

static void hl_add_model(const model_cfg *m)
{
    up_health_model **nm = xrealloc(hl_models, sizeof(*nm) * (hl_n_models + 1));
    hl_models = nm;
    hl_models[hl_n_models++] = hl_model_new(m);
}

void upstream_health_attach(const brigade_config *cfg)
{
    pthread_mutex_lock(&hl_mu);
    if (hl_refs == 0 || hl_cfg != cfg) {
        /* A new configuration: its state starts fresh. (Two live configs at
         * once do not happen: one process serves one.) */
        hl_clear();
        hl_cfg = cfg;
        for (size_t i = 0; cfg && i < cfg->n_models; i++) hl_add_model(&cfg->models[i]);
    }
    hl_refs++;
    pthread_mutex_unlock(&hl_mu);
}

void upstream_health_detach(void)
{
    pthread_mutex_lock(&hl_mu);
    if (hl_refs > 0 && --hl_refs == 0) hl_clear();
    pthread_mutex_unlock(&hl_mu);
}

up_health_model *upstream_health_model(const model_cfg *m)
{
    pthread_mutex_lock(&hl_mu);
    up_health_model *hm = NULL;
    /* The configured models are at their own index: no search on the hot path. */
    if (hl_cfg && m >= hl_cfg->models && m < hl_cfg->models + hl_cfg->n_models &&
        (size_t)(m - hl_cfg->models) < hl_n_models)
        hm = hl_models[m - hl_cfg->models];
    for (size_t i = hl_cfg ? hl_cfg->n_models : 0; !hm && i < hl_n_models; i++)
        if (hl_models[i]->m == m) hm = hl_models[i];
    if (!hm) {
        hl_add_model(m);
        hm = hl_models[hl_n_models - 1];
    }
    pthread_mutex_unlock(&hl_mu);
    return hm;
}

size_t upstream_health_n(const up_health_model *hm) { return hm->n; }
const up_dep *upstream_health_dep(const up_health_model *hm, size_t i) { return &hm->deps[i]; }

uint64_t upstream_health_provider_mask(const up_health_model *hm, uint64_t tried)
{
    uint64_t out = 0;
    for (size_t i = 0; i < hm->n && i < 64; i++) {
        if (!((tried >> i) & 1)) continue;
        for (size_t j = 0; j < hm->n && j < 64; j++)
            if (hm->deps[j].prov == hm->deps[i].prov) out |= 1ull << j;
    }
    return out;
}

bool upstream_health_any_usable(up_health_model *hm, uint64_t now, uint64_t avoid)
{
    bool any = false;
    pthread_mutex_lock(&hm->mu);
    for (size_t i = 0; i < hm->n && !any; i++) {
        if (i < 64 && ((avoid >> i) & 1)) continue;
        const up_dep *d = &hm->deps[i];
        upstream_breaker_state st = upstream_breaker_state_at(&d->br, &hm->bcfg[i], now);
        bool admissible = st == UPSTREAM_BREAKER_CLOSED ||
                          (st == UPSTREAM_BREAKER_HALF_OPEN && !(d->br.state == UPSTREAM_BREAKER_HALF_OPEN && d->br.probing));
        bool full = d->max_concurrent && d->in_flight >= d->max_concurrent;
        any = admissible && !full && d->cool_until <= now;
    }
    pthread_mutex_unlock(&hm->mu);
    return any;
}

int upstream_health_acquire(up_health_model *hm, uint64_t now, uint64_t tried_mask, uint64_t rnd,
                            bool *probe, const char **why)
{
    upstream_lb_item stack_items[8];
    upstream_lb_item *items = hm->n <= 8 ? stack_items : xcalloc(hm->n, sizeof(*items));
    *probe = false;
    *why = NULL;
    pthread_mutex_lock(&hm->mu);
    bool any_open = false, any_full = false;
    for (size_t i = 0; i < hm->n; i++) {
        up_dep *d = &hm->deps[i];
        upstream_breaker_state st = upstream_breaker_state_at(&d->br, &hm->bcfg[i], now);
        bool full = d->max_concurrent && d->in_flight >= d->max_concurrent;
        bool admissible = st == UPSTREAM_BREAKER_CLOSED ||
                          (st == UPSTREAM_BREAKER_HALF_OPEN && !(d->br.state == UPSTREAM_BREAKER_HALF_OPEN && d->br.probing));
        if (!admissible) any_open = true;
        if (full) any_full = true;
        items[i].weight = d->weight;
        items[i].in_flight = d->in_flight;
        items[i].current = d->swrr_current;
        items[i].eligible = admissible && !full;
        items[i].preferred = !(i < 64 && (tried_mask >> i) & 1) && d->cool_until <= now;
    }
    int pick = upstream_lb_pick(items, hm->n, hm->m->balance, rnd + hm->rr++);
    for (size_t i = 0; i < hm->n; i++) hm->deps[i].swrr_current = items[i].current;
    if (pick >= 0) {
        up_dep *d = &hm->deps[pick];
        upstream_breaker_admit(&d->br, &hm->bcfg[pick], now, probe);
        d->in_flight++;
    } else {
        *why = any_open && !any_full ? "every deployment's circuit breaker is open"
               : any_full && !any_open ? "every deployment is at its max_concurrent"
                                       : "no deployment is available (breakers open or at max_concurrent)";
    }
    pthread_mutex_unlock(&hm->mu);
    if (items != stack_items) free(items);
    return pick;
}

void upstream_health_release(up_health_model *hm, int i, uint64_t now, upstream_fault f, bool probe,
                             uint64_t latency_ms, bool retry)
{
    if (i < 0 || (size_t)i >= hm->n) return;
    pthread_mutex_lock(&hm->mu);
    up_dep *d = &hm->deps[i];
    if (d->in_flight) d->in_flight--;
    upstream_breaker_record(&d->br, &hm->bcfg[i], now, f, probe);
    if (f != UPSTREAM_FAULT_CANCELLED) {
        d->calls++;
        if (upstream_fault_transient(f)) d->failures++;
        d->latency_sum += latency_ms;
        d->latency_count++;
    }
    if (retry) d->retries++;
    pthread_mutex_unlock(&hm->mu);
}

void upstream_health_cool(up_health_model *hm, int i, uint64_t until)
{
    if (i < 0 || (size_t)i >= hm->n) return;
    pthread_mutex_lock(&hm->mu);
    if (hm->deps[i].cool_until < until) hm->deps[i].cool_until = until;
    pthread_mutex_unlock(&hm->mu);
}

void upstream_health_note_fallback(up_health_model *hm)
{
    pthread_mutex_lock(&hm->mu);
    hm->deps[0].fallbacks++;
    pthread_mutex_unlock(&hm->mu);
}

/* ------------------------------------------------------- retry budget */

static up_health_prov *hl_prov(const provider_cfg *p)
{
    pthread_mutex_lock(&hl_mu);
    up_health_prov *hp = NULL;
    for (size_t i = 0; i < hl_n_provs && !hp; i++)
        if (hl_provs[i]->p == p) hp = hl_provs[i];
    if (!hp) {
        hp = xcalloc(1, sizeof(*hp));
        up_health_prov **np = xrealloc(hl_provs, sizeof(*np) * (hl_n_provs + 1));
        hp->p = p;
        pthread_mutex_init(&hp->mu, NULL);
        hl_provs = np;
        hl_provs[hl_n_provs++] = hp;
    }
    pthread_mutex_unlock(&hl_mu);
    return hp;
}

void upstream_health_budget_request(const provider_cfg *p, uint64_t now)
{
    up_health_prov *hp = hl_prov(p);
    pthread_mutex_lock(&hp->mu);
    upstream_budget_note_request(&hp->b, now);
    pthread_mutex_unlock(&hp->mu);
}

bool upstream_health_budget_retry(const provider_cfg *p, uint64_t now)
{
    up_health_prov *hp = hl_prov(p);
    pthread_mutex_lock(&hp->mu);
    bool ok = upstream_budget_take_retry(&hp->b, p->retry_budget_ratio, p->retry_budget_min_per_s, now);
    pthread_mutex_unlock(&hp->mu);
    return ok;
}

/* ------------------------------------------------------------ reports */

static const char *hl_state_name(upstream_breaker_state s)
{
    return s == UPSTREAM_BREAKER_OPEN ? "open" : s == UPSTREAM_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

size_t upstream_deployment_stats(upstream_deployment_stat *out, size_t max)
{
    uint64_t now = uv_hrtime() / 1000000;
    size_t n = 0;
    pthread_mutex_lock(&hl_mu);
    for (size_t m = 0; m < hl_n_models; m++) {
        up_health_model *hm = hl_models[m];
        pthread_mutex_lock(&hm->mu);
        for (size_t i = 0; i < hm->n; i++, n++) {
            if (n >= max) continue;
            const up_dep *d = &hm->deps[i];
            upstream_deployment_stat *s = &out[n];
            s->model = hm->m->name;
            s->deployment = d->name;
            s->state = hl_state_name(upstream_breaker_state_at(&d->br, &hm->bcfg[i], now));
            s->in_flight = d->in_flight;
            s->calls = d->calls;
            s->failures = d->failures;
            s->retries = d->retries;
            s->fallbacks = d->fallbacks;
            s->breaker_opens = d->br.opens;
            s->latency_ms_sum = d->latency_sum;
            s->latency_count = d->latency_count;
        }
        pthread_mutex_unlock(&hm->mu);
    }
    pthread_mutex_unlock(&hl_mu);
    return n;
}

bool upstream_models_ready(char *why, size_t whylen)
{
    uint64_t now = uv_hrtime() / 1000000;
    bool ready = true;
    if (why && whylen) why[0] = '\0';
    pthread_mutex_lock(&hl_mu);
    for (size_t m = 0; m < hl_n_models && ready; m++) {
        up_health_model *hm = hl_models[m];
        pthread_mutex_lock(&hm->mu);
        size_t open = 0;
        for (size_t i = 0; i < hm->n; i++)
            if (upstream_breaker_state_at(&hm->deps[i].br, &hm->bcfg[i], now) == UPSTREAM_BREAKER_OPEN) open++;
        if (open == hm->n) {
            ready = false;
            if (why && whylen)
                snprintf(why, whylen, "model \"%s\": every deployment's circuit breaker is open", hm->m->name);
        }
        pthread_mutex_unlock(&hm->mu);
    }
    pthread_mutex_unlock(&hl_mu);
    return ready;
}
