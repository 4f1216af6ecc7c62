/* cache.h — a small string-keyed hash table for the identity cache.
 *
 * Chained buckets, power-of-two size, grows at load factor 1. The hash is
 * FNV-1a mixed with a per-table random seed, so keys chosen by a client (a
 * JWT subject) cannot be picked to collide. Not thread-safe: identity.c
 * holds its rwlock around every call. Private to src/identity/. */
#ifndef BRIGADE_IDCACHE_H
#define BRIGADE_IDCACHE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct idcache idcache;

/* free_val (may be NULL) is called for values replaced, deleted or freed. */
idcache *idcache_new(void (*free_val)(void *));
void     idcache_free(idcache *c);
void    *idcache_get(const idcache *c, const char *key);
/* Insert or replace; the table copies the key and owns val. 0, or -1 on OOM
 * (then val is not owned). */
int      idcache_put(idcache *c, const char *key, void *val);
bool     idcache_del(idcache *c, const char *key);
size_t   idcache_count(const idcache *c);
/* Visit every entry; entries for which fn returns true are deleted. */
void     idcache_foreach(idcache *c, bool (*fn)(const char *key, void *val, void *arg), void *arg);

#endif
