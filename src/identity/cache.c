/* cache.c — string-keyed chained hash table (see cache.h). */
#include "identity/cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"

typedef struct idcache_ent {
    struct idcache_ent *next;
    uint64_t hash;
    void *val;
    char key[];        /* NUL-terminated copy */
} idcache_ent;

struct idcache {
    idcache_ent **b;
    size_t nb;         /* power of two */
    size_t n;
    uint64_t seed;
    void (*free_val)(void *);
};

static uint64_t idcache_hash(const idcache *c, const char *key)
{
    uint64_t h = 0xcbf29ce484222325ull ^ c->seed;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    /* final avalanche so the low bits (the bucket) depend on every byte */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

idcache *idcache_new(void (*free_val)(void *))
{
    idcache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->nb = 64;
    c->b = calloc(c->nb, sizeof *c->b);
    if (!c->b) { free(c); return NULL; }
    ids_random_bytes(&c->seed, sizeof c->seed);
    c->free_val = free_val;
    return c;
}

void idcache_free(idcache *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->nb; i++) {
        idcache_ent *e = c->b[i];
        while (e) {
            idcache_ent *next = e->next;
            if (c->free_val) c->free_val(e->val);
            free(e);
            e = next;
        }
    }
    free(c->b);
    free(c);
}

static idcache_ent **idcache_slot(const idcache *c, const char *key, uint64_t h)
{
    idcache_ent **pp = &c->b[h & (c->nb - 1)];
    while (*pp && !((*pp)->hash == h && strcmp((*pp)->key, key) == 0)) pp = &(*pp)->next;
    return pp;
}

void *idcache_get(const idcache *c, const char *key)
{
    idcache_ent *e = *idcache_slot(c, key, idcache_hash(c, key));
    return e ? e->val : NULL;
}

static void idcache_grow(idcache *c)
{
    size_t nb = c->nb * 2;
    idcache_ent **b = calloc(nb, sizeof *b);
    if (!b) return;   /* stay at the old size: slower, still correct */
    for (size_t i = 0; i < c->nb; i++) {
        idcache_ent *e = c->b[i];
        while (e) {
            idcache_ent *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(c->b);
    c->b = b;
    c->nb = nb;
}

int idcache_put(idcache *c, const char *key, void *val)
{
    uint64_t h = idcache_hash(c, key);
    idcache_ent **pp = idcache_slot(c, key, h);
    if (*pp) {
        if (c->free_val && (*pp)->val != val) c->free_val((*pp)->val);
        (*pp)->val = val;
        return 0;
    }
    size_t kl = strlen(key);
    idcache_ent *e = malloc(sizeof *e + kl + 1);
    if (!e) return -1;
    memcpy(e->key, key, kl + 1);
    e->hash = h;
    e->val = val;
    e->next = NULL;
    *pp = e;
    if (++c->n > c->nb) idcache_grow(c);
    return 0;
}

bool idcache_del(idcache *c, const char *key)
{
    idcache_ent **pp = idcache_slot(c, key, idcache_hash(c, key));
    idcache_ent *e = *pp;
    if (!e) return false;
    *pp = e->next;
    if (c->free_val) c->free_val(e->val);
    free(e);
    c->n--;
    return true;
}

size_t idcache_count(const idcache *c) { return c->n; }

void idcache_foreach(idcache *c, bool (*fn)(const char *key, void *val, void *arg), void *arg)
{
    for (size_t i = 0; i < c->nb; i++) {
        idcache_ent **pp = &c->b[i];
        while (*pp) {
            idcache_ent *e = *pp;
            if (fn(e->key, e->val, arg)) {
                *pp = e->next;
                if (c->free_val) c->free_val(e->val);
                free(e);
                c->n--;
            } else {
                pp = &e->next;
            }
        }
    }
}
