/* arena.h — per-request bump allocator.
 *
 * Every request gets one arena; everything allocated while serving it is
 * freed at once when the request ends. This keeps the hot path free of
 * malloc/free pairs and makes leaks on error paths impossible. */
#ifndef BRIGADE_ARENA_H
#define BRIGADE_ARENA_H

#include <stddef.h>

typedef struct arena_block arena_block;
typedef struct arena {
    arena_block *head;      /* current block, newest first */
    size_t       block_size;
    size_t       total;     /* bytes handed out, for limits and metrics */
} arena;

void  arena_init(arena *a, size_t block_size);
void *arena_alloc(arena *a, size_t n);          /* 16-byte aligned, never NULL (aborts on OOM) */
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_strdup(arena *a, const char *s);
char *arena_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void  arena_reset(arena *a);                    /* keep the first block, drop the rest */
void  arena_free(arena *a);

#endif
