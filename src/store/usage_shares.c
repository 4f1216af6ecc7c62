/* usage_shares.c — per-tenant counts of the usage rows waiting for the
 * store's writer (see usage_shares.h): an open-addressing table keyed by
 * tenant id, entries removed with backward shifting so that lookups never
 * walk tombstones. */
#include "store/usage_shares.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

typedef struct share_slot {
    char tenant_id[ID_MAX];       /* "" = empty */
    uint64_t rows;
} share_slot;

struct usage_shares {
    pthread_mutex_t mu;
    share_slot *slots;
    size_t cap, used;             /* cap a power of two; used = tenants with rows */
};

usage_shares *usage_shares_new(void)
{
    usage_shares *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->cap = 16;
    s->slots = xcalloc(s->cap, sizeof *s->slots);
    return s;
}

void usage_shares_free(usage_shares *s)
{
    if (!s) return;
    pthread_mutex_destroy(&s->mu);
    free(s->slots);
    free(s);
}

static size_t share_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 29));
}

/* The slot holding id, or the empty one where it would go. */
static size_t share_find(const usage_shares *s, const char *id)
{
    size_t i = share_hash(id) & (s->cap - 1);
    while (s->slots[i].tenant_id[0] && strcmp(s->slots[i].tenant_id, id) != 0) i = (i + 1) & (s->cap - 1);
    return i;
}

static void share_grow(usage_shares *s)
{
    share_slot *old = s->slots;
    size_t old_cap = s->cap;
    s->cap *= 2;
    s->slots = xcalloc(s->cap, sizeof *s->slots);
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].tenant_id[0]) s->slots[share_find(s, old[i].tenant_id)] = old[i];
    free(old);
}

/* Empty slot i, moving later entries of its run back so that every entry
 * stays reachable from its home slot (linear probing's deletion). */
static void share_remove(usage_shares *s, size_t i)
{
    size_t mask = s->cap - 1;
    s->slots[i].tenant_id[0] = '\0';
    s->used--;
    for (size_t j = (i + 1) & mask; s->slots[j].tenant_id[0]; j = (j + 1) & mask) {
        size_t home = share_hash(s->slots[j].tenant_id) & mask;
        /* j's entry may move to i unless its home lies in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        s->slots[i] = s->slots[j];
        s->slots[j].tenant_id[0] = '\0';
        i = j;
    }
}

void usage_shares_add(usage_shares *s, const char *tenant_id)
{
    if (!s || !tenant_id || !tenant_id[0]) return;
    pthread_mutex_lock(&s->mu);
    if ((s->used + 1) * 2 > s->cap) share_grow(s);
    size_t i = share_find(s, tenant_id);
    if (!s->slots[i].tenant_id[0]) {
        snprintf(s->slots[i].tenant_id, sizeof s->slots[i].tenant_id, "%s", tenant_id);
        s->slots[i].rows = 0;
        s->used++;
    }
    s->slots[i].rows++;
    pthread_mutex_unlock(&s->mu);
}

static void share_take(usage_shares *s, const char *tenant_id, uint64_t n)
{
    if (!tenant_id[0]) return;
    size_t i = share_find(s, tenant_id);
    if (!s->slots[i].tenant_id[0]) return;
    if (s->slots[i].rows > n) s->slots[i].rows -= n;
    else share_remove(s, i);
}

void usage_shares_settle(usage_shares *s, const usage_rec *rows, size_t n)
{
    if (!s || !n) return;
    pthread_mutex_lock(&s->mu);
    /* A batch is mostly runs of one tenant's rows: one lookup per run. */
    size_t run = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && strcmp(rows[i].tenant_id, rows[run].tenant_id) == 0) continue;
        share_take(s, rows[run].tenant_id, i - run);
        run = i;
    }
    pthread_mutex_unlock(&s->mu);
}

uint64_t usage_shares_of(usage_shares *s, const char *tenant_id, size_t *tenants)
{
    if (!s) {
        if (tenants) *tenants = 0;
        return 0;
    }
    pthread_mutex_lock(&s->mu);
    uint64_t rows = 0;
    if (tenant_id && tenant_id[0]) {
        size_t i = share_find(s, tenant_id);
        if (s->slots[i].tenant_id[0]) rows = s->slots[i].rows;
    }
    if (tenants) *tenants = s->used;
    pthread_mutex_unlock(&s->mu);
    return rows;
}
