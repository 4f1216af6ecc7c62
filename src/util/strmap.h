/* strmap.h — a small string-keyed hash table (the identity cache, the run
 * registry).
 *
 * Chained buckets, power-of-two size, grows at load factor 1. The hash is
 * seeded per table (util/str_hash.h), so keys chosen by a client (a JWT
 * subject) cannot be picked to collide. Not thread-safe: callers hold
 * their own lock around every call. */
#ifndef BRIGADE_STRMAP_H
#define BRIGADE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strmap strmap;

/* free_val (may be NULL) is called for values replaced, deleted or freed. */
strmap *strmap_new(void (*free_val)(void *));
void     strmap_free(strmap *c);
void    *strmap_get(const strmap *c, const char *key);
/* Insert or replace; the table copies the key and owns val. 0, or -1 on OOM
 * (then val is not owned). */
int      strmap_put(strmap *c, const char *key, void *val);
bool     strmap_del(strmap *c, const char *key);
size_t   strmap_count(const strmap *c);
/* Visit every entry; entries for which fn returns true are deleted. */
void     strmap_foreach(strmap *c, bool (*fn)(const char *key, void *val, void *arg), void *arg);

#endif
