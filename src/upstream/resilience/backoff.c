/* backoff.c — how long to wait before a retry, and how many retries a
 * provider may take: exponential backoff with full jitter, and the retry
 * budget over a sliding ten-second window (resilience.h). */
#include "upstream/resilience/resilience.h"

uint64_t upstream_backoff_ms(uint32_t base_ms, uint32_t cap_ms, unsigned retry, uint64_t rnd)
{
    /* base · 2^retry, saturating at cap (and never shifting past 32 bits). */
    uint64_t ceil = base_ms;
    for (unsigned i = 0; i < retry && ceil < cap_ms; i++) ceil <<= 1;
    if (ceil > cap_ms) ceil = cap_ms;
    return ceil ? rnd % (ceil + 1) : 0;
}

/* The bucket of `now`, emptied first if it still holds an older second. */
static unsigned budget_bucket(upstream_budget *b, uint64_t now_ms)
{
    uint64_t sec = now_ms / UPSTREAM_BUDGET_BUCKET_MS;
    unsigned i = (unsigned)(sec % UPSTREAM_BUDGET_BUCKETS);
    if (b->second[i] != sec) {
        b->second[i] = sec;
        b->requests[i] = 0;
        b->retries[i] = 0;
    }
    return i;
}

void upstream_budget_note_request(upstream_budget *b, uint64_t now_ms)
{
    unsigned i = budget_bucket(b, now_ms);
    if (b->requests[i] < UINT32_MAX) b->requests[i]++;
}

bool upstream_budget_take_retry(upstream_budget *b, double ratio, uint32_t min_per_s, uint64_t now_ms)
{
    unsigned cur = budget_bucket(b, now_ms);
    uint64_t sec = now_ms / UPSTREAM_BUDGET_BUCKET_MS;
    uint64_t requests = 0, retries = 0;
    for (unsigned i = 0; i < UPSTREAM_BUDGET_BUCKETS; i++) {
        /* Only buckets of the last ten seconds count. */
        if (sec - b->second[i] >= UPSTREAM_BUDGET_BUCKETS) continue;
        requests += b->requests[i];
        retries += b->retries[i];
    }
    double allowed = ratio * (double)requests + (double)min_per_s * UPSTREAM_BUDGET_BUCKETS;
    if ((double)(retries + 1) > allowed) return false;
    b->retries[cur]++;
    return true;
}
