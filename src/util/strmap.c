/* strmap.c — string-keyed chained hash table (see strmap.h). */
#include "util/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"
#include "util/str_hash.h"

typedef struct strmap_ent {
    struct strmap_ent *next;
    uint64_t hash;
    void *val;
    char key[];        /* NUL-terminated copy */
} strmap_ent;

struct strmap {
    strmap_ent **b;
    size_t nb;         /* power of two */
    size_t n;
    uint64_t seed;
    void (*free_val)(void *);
};

/* Seeded per map (util/str_hash.h says why). */
static uint64_t strmap_hash(const strmap *c, const char *key)
{
    return str_hash_seeded(key, strlen(key), c->seed);
}

strmap *strmap_new(void (*free_val)(void *))
{
    strmap *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->nb = 64;
    c->b = calloc(c->nb, sizeof *c->b);
    if (!c->b) { free(c); return NULL; }
    ids_random_bytes(&c->seed, sizeof c->seed);
    c->free_val = free_val;
    return c;
}

void strmap_free(strmap *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->nb; i++) {
        strmap_ent *e = c->b[i];
        while (e) {
            strmap_ent *next = e->next;
            if (c->free_val) c->free_val(e->val);
            free(e);
            e = next;
        }
    }
    free(c->b);
    free(c);
}

static strmap_ent **strmap_slot(const strmap *c, const char *key, uint64_t h)
{
    strmap_ent **pp = &c->b[h & (c->nb - 1)];
    while (*pp && !((*pp)->hash == h && strcmp((*pp)->key, key) == 0)) pp = &(*pp)->next;
    return pp;
}

void *strmap_get(const strmap *c, const char *key)
{
    strmap_ent *e = *strmap_slot(c, key, strmap_hash(c, key));
    return e ? e->val : NULL;
}

static void strmap_grow(strmap *c)
{
    size_t nb = c->nb * 2;
    strmap_ent **b = calloc(nb, sizeof *b);
    if (!b) return;   /* stay at the old size: slower, still correct */
    for (size_t i = 0; i < c->nb; i++) {
        strmap_ent *e = c->b[i];
        while (e) {
            strmap_ent *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(c->b);
    c->b = b;
    c->nb = nb;
}

int strmap_put(strmap *c, const char *key, void *val)
{
    uint64_t h = strmap_hash(c, key);
    strmap_ent **pp = strmap_slot(c, key, h);
    if (*pp) {
        if (c->free_val && (*pp)->val != val) c->free_val((*pp)->val);
        (*pp)->val = val;
        return 0;
    }
    size_t kl = strlen(key);
    strmap_ent *e = malloc(sizeof *e + kl + 1);
    if (!e) return -1;
    memcpy(e->key, key, kl + 1);
    e->hash = h;
    e->val = val;
    e->next = NULL;
    *pp = e;
    if (++c->n > c->nb) strmap_grow(c);
    return 0;
}

bool strmap_del(strmap *c, const char *key)
{
    strmap_ent **pp = strmap_slot(c, key, strmap_hash(c, key));
    strmap_ent *e = *pp;
    if (!e) return false;
    *pp = e->next;
    if (c->free_val) c->free_val(e->val);
    free(e);
    c->n--;
    return true;
}

size_t strmap_count(const strmap *c) { return c->n; }

void strmap_foreach(strmap *c, bool (*fn)(const char *key, void *val, void *arg), void *arg)
{
    for (size_t i = 0; i < c->nb; i++) {
        strmap_ent **pp = &c->b[i];
        while (*pp) {
            strmap_ent *e = *pp;
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
