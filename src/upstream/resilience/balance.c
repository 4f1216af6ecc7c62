/* balance.c — choosing the deployment of a model for the next attempt
 * (resilience.h): smooth weighted round robin, or least calls in flight.
 * Deployments whose breaker is open or whose concurrency cap is reached
 * are not eligible; those this request already tried, or that answered
 * 429 recently, are used only when nothing better is left. */
#include "upstream/resilience/resilience.h"

static int lb_pick_among(upstream_lb_item *it, size_t n, model_balance mode, uint64_t rnd, bool need_pref)
{
    int best = -1;
    if (mode == BALANCE_WEIGHTED) {
        int64_t total = 0;
        for (size_t i = 0; i < n; i++) {
            if (!it[i].eligible || (need_pref && !it[i].preferred)) continue;
            it[i].current += it[i].weight;
            total += it[i].weight;
            if (best < 0 || it[i].current > it[best].current) best = (int)i;
        }
        if (best >= 0) it[best].current -= total;
        return best;
    }
    /* least in flight, relative to weight: a.in_flight/a.weight < b.in_flight/b.weight,
     * compared by cross-multiplying. Ties: the first one from a random start. */
    size_t start = n ? (size_t)(rnd % n) : 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (!it[i].eligible || (need_pref && !it[i].preferred)) continue;
        if (best < 0) {
            best = (int)i;
            continue;
        }
        uint64_t a = (uint64_t)it[i].in_flight * (it[best].weight ? it[best].weight : 1);
        uint64_t b = (uint64_t)it[best].in_flight * (it[i].weight ? it[i].weight : 1);
        if (a < b) best = (int)i;
    }
    return best;
}

int upstream_lb_pick(upstream_lb_item *items, size_t n, model_balance mode, uint64_t rnd)
{
    int i = lb_pick_among(items, n, mode, rnd, true);
    if (i < 0) i = lb_pick_among(items, n, mode, rnd, false);
    return i;
}
