/* arena.c — per-request bump allocator (see arena.h). */
#include "util/arena.h"
#include "util/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
    arena_block *next;
    size_t       cap;
    size_t       used;
    _Alignas(16) unsigned char data[];
};

static arena_block *arena_block_new(size_t cap)
{
    arena_block *b = xmalloc(sizeof(*b) + cap);
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

void arena_init(arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 4096;
    a->total = 0;
}

void *arena_alloc(arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (need == 0) need = 16;
    if (!a->head || a->head->cap - a->head->used < need) {
        size_t cap = need > a->block_size ? need : a->block_size;
        arena_block *b = arena_block_new(cap);
        b->next = a->head;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += need;
    a->total += need;
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(arena *a, const char *fmt, ...)
{
    if (!fmt) return arena_strndup(a, "", 0);   /* also tells gcc fmt is set */
    va_list ap;
    va_start(ap, fmt);
    char probe[1];   /* a real buffer: gcc warns on a NULL one under sanitizers */
    int n = vsnprintf(probe, sizeof probe, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_reset(arena *a)
{
    if (!a->head) return;
    /* Keep the oldest block (the usual size) and free the rest. */
    arena_block *b = a->head, *last = NULL;
    while (b->next) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    last = b;
    last->used = 0;
    a->head = last;
    a->total = 0;
}

void arena_free(arena *a)
{
    arena_block *b = a->head;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}
