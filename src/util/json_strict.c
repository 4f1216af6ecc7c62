/* json_strict.c — refusing JSON that brigade and the next reader would read
 * differently (see json_strict.h). */
#include "util/json_strict.h"
#include "util/ids.h"
#include "util/str_hash.h"
#include "util/xalloc.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Up to this many members an object is checked pairwise (at most 120
 * comparisons); past it, with a hash set, so that a body of one object
 * with 100,000 keys costs 100,000 hashes, not 5·10⁹ comparisons. */
#define JSON_STRICT_PAIRWISE_MAX 16

/* The value of four hex digits at p, or -1. */
static int json_hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static bool json_strict_fail(json_strict_error *err, json_strict_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool json_strict_fail(json_strict_error *err, json_strict_kind kind, const char *fmt, ...)
{
    err->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return false;
}

static bool json_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* The end of the JSON number at p (RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?
 * ([eE][+-]?[0-9]+)?), or NULL if the text there is not one — or goes on
 * with number characters, as "01", "1.", "1.e5" and ".5" would: cJSON reads
 * those (with strtod), a strict parser refuses them, and a lenient one may
 * read them otherwise. */
static const unsigned char *json_number_end(const unsigned char *p, const unsigned char *end)
{
    if (p < end && *p == '-') p++;
    if (p >= end || !json_digit(*p)) return NULL;
    if (*p == '0') p++;
    else while (p < end && json_digit(*p)) p++;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !json_digit(*p)) return NULL;
        while (p < end && json_digit(*p)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !json_digit(*p)) return NULL;
        while (p < end && json_digit(*p)) p++;
    }
    if (p < end && (json_digit(*p) || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-'))
        return NULL;
    return p;
}

bool json_strict_text(const char *text, size_t len, const char *what, json_strict_error *err)
{
    memset(err, 0, sizeof *err);
    if (!text) return true;
    const unsigned char *s = (const unsigned char *)text, *end = s + len, *p = s;
    while (p < end) {
        unsigned char c = *p;
        if (c == '"') {
            /* A string: a backslash always starts an escape, so stepping
             * over the escaped character keeps "\\u0000" (an escaped
             * backslash, then text) from matching. */
            for (p++; p < end; ) {
                c = *p;
                if (c == '"') break;
                if (c == '\\') {
                    /* cJSON reads a \u with anything but four hex digits
                     * after it as U+0000: both are refused. */
                    if (end - p >= 2 && p[1] == 'u') {
                        int v = end - p >= 6 ? json_hex4(p + 2) : -1;
                        if (v < 0)
                            return json_strict_fail(err, JSON_STRICT_SYNTAX,
                                                    "%.40s is not valid JSON: a \\u escape at byte %zu "
                                                    "needs four hex digits", what, (size_t)(p - s));
                        if (v == 0)
                            return json_strict_fail(err, JSON_STRICT_NUL,
                                                    "%.40s contains the escape \\u0000 (a NUL "
                                                    "character), which is not accepted", what);
                        p += 6;
                        continue;
                    }
                    p += 2;
                    continue;
                }
                if (c < 0x20) break;
                p++;
            }
            if (p < end && *p != '"') {
                if (*p == 0)
                    return json_strict_fail(err, JSON_STRICT_NUL,
                                            "%.40s contains a NUL byte, which is not allowed in JSON", what);
                return json_strict_fail(err, JSON_STRICT_SYNTAX,
                                        "%.40s is not valid JSON: a control character (0x%02X) inside a "
                                        "string at byte %zu must be escaped", what, *p, (size_t)(p - s));
            }
            p++;   /* past the closing quote (or the end: the parser refuses it) */
            continue;
        }
        if (c == '-' || json_digit(c)) {
            const unsigned char *q = json_number_end(p, end);
            if (!q)
                return json_strict_fail(err, JSON_STRICT_SYNTAX,
                                        "%.40s is not valid JSON: malformed number at byte %zu", what,
                                        (size_t)(p - s));
            p = q;
            continue;
        }
        if (c == 0)
            return json_strict_fail(err, JSON_STRICT_NUL,
                                    "%.40s contains a NUL byte, which is not allowed in JSON", what);
        /* cJSON skips every byte up to 0x20 as whitespace; JSON allows four. */
        if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return json_strict_fail(err, JSON_STRICT_SYNTAX,
                                    "%.40s is not valid JSON: control character 0x%02X at byte %zu", what,
                                    c, (size_t)(p - s));
        p++;
    }
    return true;
}

/* ---- the tree ---- */

/* Open addressing over the members' keys, copied in order into `keys`.
 * A slot is 8 bytes — 32 bits of the key's hash and its member's number
 * plus one (0: empty) — so the table of a big object stays small enough
 * for the cache, and a probe past another key compares two integers
 * rather than reaching into that key's string. */
typedef struct strict_set {
    uint64_t    *slot;
    size_t       cap;      /* a power of two */
    const char **keys;
    size_t       keys_cap;
} strict_set;

/* The keys are the client's: seeded once a process (util/str_hash.h),
 * so that no body can be made of keys that all share a slot. The fixed
 * FNV-1a used before let one be computed offline: 100 000 keys probing
 * n²/2 slots on the loop thread that parsed them. */
static uint64_t strict_seed;
static pthread_once_t strict_seed_once = PTHREAD_ONCE_INIT;
static void strict_seed_make(void) { ids_random_bytes(&strict_seed, sizeof strict_seed); }

static _Thread_local uint64_t strict_probes;
uint64_t json_strict_probes(void) { return strict_probes; }

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
    while (cap < n + n / 2) cap *= 2;   /* load at most 2/3 */
    if (cap > set->cap) {
        free(set->slot);
        set->slot = xmalloc(cap * sizeof *set->slot);
        set->cap = cap;
    }
    if (n > set->keys_cap) {
        free(set->keys);
        set->keys = xmalloc(n * sizeof *set->keys);
        set->keys_cap = n;
    }
    memset(set->slot, 0, cap * sizeof *set->slot);
    pthread_once(&strict_seed_once, strict_seed_make);
    uint32_t k = 0;
    for (const cJSON *c = obj->child; c; c = c->next, k++) {
        set->keys[k] = c->string ? c->string : "";
        uint64_t h = str_hash_seeded(set->keys[k], strlen(set->keys[k]), strict_seed);
        uint32_t tag = (uint32_t)(h >> 32);
        size_t i = (size_t)h & (cap - 1);
        for (; set->slot[i]; i = (i + 1) & (cap - 1)) {
            strict_probes++;
            uint64_t e = set->slot[i];
            if ((uint32_t)(e >> 32) == tag && strcmp(set->keys[(uint32_t)e - 1], set->keys[k]) == 0)
                return c;
        }
        set->slot[i] = (uint64_t)tag << 32 | (uint64_t)(k + 1);
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
    strict_set set = {NULL, 0, NULL, 0};
    size_t cap = 16, depth = 0;
    strict_frame *st = xmalloc(cap * sizeof *st);
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
            strict_frame *bigger = xrealloc(st, cap * sizeof *st);
            st = bigger;
        }
        st[depth++] = (strict_frame){c, c->child, NULL, -1};
    }
    if (dup) {
        err->kind = JSON_STRICT_REPEATED_KEY;
        snprintf(err->key, sizeof err->key, "%s", dup->string);
        strict_path(st, depth, dup->string, err->path, sizeof err->path);
        snprintf(err->message, sizeof err->message,
                 "%.40s repeats the key \"%s\" (at %s): a key may appear only once in a JSON object",
                 what, err->key, err->path);
    }
    free(st);
    free(set.slot);
    free(set.keys);
    return dup == NULL;
}
