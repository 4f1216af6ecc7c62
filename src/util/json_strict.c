/* json_strict.c — refusing JSON that brigade and the next reader would read
 * differently (see json_strict.h). */
#include "util/json_strict.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Up to this many members an object is checked pairwise (at most 120
 * comparisons); past it, with a hash set, so that a body of one object
 * with 100,000 keys costs 100,000 hashes, not 5·10⁹ comparisons. */
#define JSON_STRICT_PAIRWISE_MAX 16

static bool json_strict_is_hex0(const char *p)
{
    return p[0] == '0' && p[1] == '0' && p[2] == '0' && p[3] == '0';
}

bool json_strict_text(const char *text, size_t len, const char *what, json_strict_error *err)
{
    memset(err, 0, sizeof *err);
    if (!text) return true;
    if (memchr(text, '\0', len)) {
        snprintf(err->message, sizeof err->message,
                 "%.40s contains a NUL byte, which is not allowed in JSON", what);
        return false;
    }
    /* A backslash occurs in valid JSON only inside a string, where it always
     * starts an escape: stepping over the escaped character keeps "\\u0000"
     * (an escaped backslash, then text) from matching. Invalid JSON may be
     * misread here, but the parser refuses it anyway. */
    for (const char *p = memchr(text, '\\', len); p; ) {
        size_t left = len - (size_t)(p - text);
        if (left >= 6 && p[1] == 'u' && json_strict_is_hex0(p + 2)) {
            snprintf(err->message, sizeof err->message,
                     "%.40s contains the escape \\u0000 (a NUL character), which is not accepted", what);
            return false;
        }
        if (left < 3) break;
        p = memchr(p + 2, '\\', left - 2);
    }
    return true;
}

/* ---- the tree ---- */

typedef struct strict_set {
    const char **slot;
    size_t       cap;   /* a power of two */
} strict_set;

static uint64_t strict_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The first member of `obj` whose key an earlier member already had, or
 * NULL. */
static const cJSON *strict_repeat_in(const cJSON *obj, strict_set *set)
{
    size_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next) n++;
    if (n <= JSON_STRICT_PAIRWISE_MAX) {
        for (const cJSON *c = obj->child; c; c = c->next)
            for (const cJSON *e = obj->child; e != c; e = e->next)
                if (c->string && e->string && strcmp(c->string, e->string) == 0) return c;
        return NULL;
    }
    size_t cap = 64;
    while (cap < 2 * n) cap *= 2;
    if (cap > set->cap) {
        free(set->slot);
        set->slot = malloc(cap * sizeof *set->slot);
        if (!set->slot) abort();
        set->cap = cap;
    }
    memset(set->slot, 0, cap * sizeof *set->slot);
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (!c->string) continue;
        size_t i = (size_t)strict_hash(c->string) & (cap - 1);
        while (set->slot[i]) {
            if (strcmp(set->slot[i], c->string) == 0) return c;
            i = (i + 1) & (cap - 1);
        }
        set->slot[i] = c->string;
    }
    return NULL;
}

/* One container on the way down, and which of its children we are in. */
typedef struct strict_frame {
    const cJSON *node;
    const cJSON *next;   /* the next child to visit */
    const cJSON *cur;    /* the child being visited */
    int          index;  /* cur's position (arrays) */
} strict_frame;

static void strict_append(char *out, size_t outlen, const char *s)
{
    size_t at = strlen(out), n = strlen(s);
    if (at + n < outlen) {
        memcpy(out + at, s, n + 1);
    } else if (outlen >= 4) {   /* too long: cut, and say so */
        snprintf(out + at, outlen - at, "%s", s);
        memcpy(out + outlen - 4, "...", 4);
    }
}

/* "a.b[2].c": the path of key `key` inside the containers on the stack. */
static void strict_path(const strict_frame *st, size_t depth, const char *key, char *out,
                        size_t outlen)
{
    out[0] = '\0';
    for (size_t i = 0; i < depth; i++) {
        const strict_frame *f = &st[i];
        char seg[24];
        if (cJSON_IsArray(f->node)) {
            snprintf(seg, sizeof seg, "[%d]", f->index);
            strict_append(out, outlen, seg);
        } else {
            if (out[0]) strict_append(out, outlen, ".");
            strict_append(out, outlen, f->cur && f->cur->string ? f->cur->string : "");
        }
    }
    if (out[0]) strict_append(out, outlen, ".");
    strict_append(out, outlen, key);
}

bool json_strict_tree(const cJSON *root, const char *what, json_strict_error *err)
{
    memset(err, 0, sizeof *err);
    if (!root || !(cJSON_IsObject(root) || cJSON_IsArray(root))) return true;
    strict_set set = {NULL, 0};
    size_t cap = 16, depth = 0;
    strict_frame *st = malloc(cap * sizeof *st);
    if (!st) abort();
    const cJSON *dup = NULL;
    if (cJSON_IsObject(root)) dup = strict_repeat_in(root, &set);
    if (!dup) st[depth++] = (strict_frame){root, root->child, NULL, -1};
    while (!dup && depth > 0) {
        strict_frame *f = &st[depth - 1];
        const cJSON *c = f->next;
        if (!c) {
            depth--;
            continue;
        }
        f->cur = c;
        f->index++;
        f->next = c->next;
        if (!(cJSON_IsObject(c) || cJSON_IsArray(c)) || !c->child) continue;
        if (cJSON_IsObject(c) && (dup = strict_repeat_in(c, &set)) != NULL) break;
        if (depth == cap) {
            cap *= 2;
            strict_frame *bigger = realloc(st, cap * sizeof *st);
            if (!bigger) abort();
            st = bigger;
        }
        st[depth++] = (strict_frame){c, c->child, NULL, -1};
    }
    if (dup) {
        snprintf(err->key, sizeof err->key, "%s", dup->string);
        strict_path(st, depth, dup->string, err->path, sizeof err->path);
        snprintf(err->message, sizeof err->message,
                 "%.40s repeats the key \"%s\" (at %s): a key may appear only once in a JSON object",
                 what, err->key, err->path);
    }
    free(st);
    free(set.slot);
    return dup == NULL;
}
