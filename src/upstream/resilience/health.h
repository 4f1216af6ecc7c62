/* health.h — the process-wide state of every deployment (health.c), which
 * dispatch.c consults for every attempt: in flight, breaker, "rate limited
 * until", counters, and every provider's retry budget. Not a public
 * contract; the pure rules it applies are resilience.h's. */
#ifndef BRIGADE_UPSTREAM_HEALTH_H
#define BRIGADE_UPSTREAM_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "upstream/resilience/resilience.h"

/* --- process-wide deployment state (health.c) --- */

typedef struct up_dep {
    const provider_cfg *prov;
    const char         *upstream_model;
    char                name[160];        /* "provider/upstream_model" */
    uint32_t            weight, max_concurrent;
    uint32_t            first_byte_timeout_ms;   /* the deployment's own (0: the model's or provider's) */
    uint32_t            in_flight;
    int64_t             swrr_current;
    uint64_t            cool_until;       /* answered 429: avoid until then (ms) */
    upstream_breaker    br;
    uint64_t            calls, failures, retries, fallbacks, latency_sum, latency_count;
} up_dep;

typedef struct up_health_model up_health_model;

void             upstream_health_attach(const brigade_config *cfg);   /* upstream_new */
void             upstream_health_detach(void);                        /* upstream_free */
up_health_model *upstream_health_model(const model_cfg *m);
size_t           upstream_health_n(const up_health_model *hm);
/* Read-only fields (prov, upstream_model, name, weight) of deployment i. */
const up_dep    *upstream_health_dep(const up_health_model *hm, size_t i);
/* Every deployment (bit i) on a provider that one of `tried` is on: where
 * a retry would load a provider this call already failed on. */
uint64_t         upstream_health_provider_mask(const up_health_model *hm, uint64_t tried);
/* Is some deployment outside `avoid` usable now (breaker admits, not at
 * max_concurrent, not rate limited)? Takes nothing. */
bool             upstream_health_any_usable(up_health_model *hm, uint64_t now, uint64_t avoid);
/* Choose and admit a deployment (in_flight counted), preferring those not
 * in tried_mask; -1 with *why if none may be used now. */
int              upstream_health_acquire(up_health_model *hm, uint64_t now, uint64_t tried_mask,
                                         uint64_t rnd, bool *probe, const char **why);
/* The attempt on deployment i ended with fault f. */
void             upstream_health_release(up_health_model *hm, int i, uint64_t now, upstream_fault f,
                                         bool probe, uint64_t latency_ms, bool retry);
void             upstream_health_cool(up_health_model *hm, int i, uint64_t until);
void             upstream_health_note_fallback(up_health_model *hm);
void             upstream_health_budget_request(const provider_cfg *p, uint64_t now);
bool             upstream_health_budget_retry(const provider_cfg *p, uint64_t now);

#endif
