/* breaker.c — the circuit breaker of one deployment (resilience.h).
 *
 * closed → open when `failures` transient faults come in a row, or when
 * at least `error_rate` of the calls in the last `window_ms` failed (once
 * there were `min_calls` of them); open → half-open after `open_ms`, which
 * lets exactly one probe through; the probe's success closes the breaker,
 * its failure opens it again for another `open_ms`. While open, attempts go
 * to other deployments or fallbacks at once instead of waiting for a dead
 * provider's timeouts, and the provider gets room to recover. */
#include <string.h>

#include "upstream/resilience/resilience.h"

void upstream_breaker_cfg_of(const provider_cfg *p, upstream_breaker_cfg *out)
{
    out->failures = p ? p->breaker_failures : 5;
    out->error_rate = p ? p->breaker_error_rate : 0.5;
    out->window_ms = p && p->breaker_window_ms ? p->breaker_window_ms : 10000;
    out->min_calls = p && p->breaker_min_calls ? p->breaker_min_calls : 10;
    out->open_ms = p && p->breaker_open_ms ? p->breaker_open_ms : 5000;
}

upstream_breaker_state upstream_breaker_state_at(const upstream_breaker *b, const upstream_breaker_cfg *c,
                                                 uint64_t now)
{
    if (b->state == UPSTREAM_BREAKER_OPEN && now >= b->opened_at + c->open_ms) return UPSTREAM_BREAKER_HALF_OPEN;
    return b->state;
}

bool upstream_breaker_admit(upstream_breaker *b, const upstream_breaker_cfg *c, uint64_t now, bool *probe)
{
    *probe = false;
    switch (upstream_breaker_state_at(b, c, now)) {
    case UPSTREAM_BREAKER_CLOSED:
        return true;
    case UPSTREAM_BREAKER_HALF_OPEN:
        if (b->state == UPSTREAM_BREAKER_HALF_OPEN && b->probing) return false;
        b->state = UPSTREAM_BREAKER_HALF_OPEN;
        b->probing = true;
        *probe = true;
        return true;
    case UPSTREAM_BREAKER_OPEN:
    default:
        return false;
    }
}

static void breaker_open(upstream_breaker *b, uint64_t now)
{
    b->state = UPSTREAM_BREAKER_OPEN;
    b->opened_at = now;
    b->probing = false;
    b->opens++;
}

/* A fresh start: a closed breaker forgets the faults that opened it. */
static void breaker_close(upstream_breaker *b)
{
    b->state = UPSTREAM_BREAKER_CLOSED;
    b->probing = false;
    b->consecutive = 0;
    memset(b->slot_at, 0, sizeof b->slot_at);
    memset(b->calls, 0, sizeof b->calls);
    memset(b->faults, 0, sizeof b->faults);
}

void upstream_breaker_record(upstream_breaker *b, const upstream_breaker_cfg *c, uint64_t now,
                             upstream_fault f, bool was_probe)
{
    bool fault = upstream_fault_transient(f);
    if (f == UPSTREAM_FAULT_CANCELLED) {
        if (was_probe) b->probing = false;   /* someone else may probe */
        return;
    }
    if (b->state == UPSTREAM_BREAKER_HALF_OPEN) {
        /* Only the probe decides; stragglers started before it opened do not. */
        if (!was_probe) return;
        if (fault) breaker_open(b, now);
        else breaker_close(b);
        return;
    }
    if (b->state == UPSTREAM_BREAKER_OPEN) return;

    /* Closed: count into the window's slot of `now`. */
    uint64_t slot_ms = c->window_ms / UPSTREAM_BREAKER_SLOTS;
    if (slot_ms == 0) slot_ms = 1;
    uint64_t at = now / slot_ms * slot_ms;
    unsigned i = (unsigned)((now / slot_ms) % UPSTREAM_BREAKER_SLOTS);
    if (b->slot_at[i] != at) {
        b->slot_at[i] = at;
        b->calls[i] = 0;
        b->faults[i] = 0;
    }
    b->calls[i]++;
    if (fault) {
        b->faults[i]++;
        b->consecutive++;
    } else {
        b->consecutive = 0;
    }
    if (!fault) return;
    if (c->failures && b->consecutive >= c->failures) {
        breaker_open(b, now);
        return;
    }
    if (c->error_rate > 0) {
        uint64_t calls = 0, faults = 0;
        for (unsigned k = 0; k < UPSTREAM_BREAKER_SLOTS; k++) {
            if (b->slot_at[k] + c->window_ms <= now && b->slot_at[k] != at) continue;
            calls += b->calls[k];
            faults += b->faults[k];
        }
        if (calls >= c->min_calls && (double)faults >= c->error_rate * (double)calls)
            breaker_open(b, now);
    }
}
