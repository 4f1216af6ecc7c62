/* classifier.c — hashed n-gram features and the linear model's score
 * (classifier.h). Hashing is done on the fly, without building strings,
 * so a kilobyte costs a few thousand multiply-xors. */
#include "guard/classifier.h"
#include "guard/normalize.h"
#include "util/xalloc.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct guard_classifier {
    uint32_t bits, mask;
    float    bias[2];
    float   *w;
};

#define FNV_OFFSET 2166136261u
#define FNV_PRIME  16777619u

static inline uint32_t fnv_byte(uint32_t h, unsigned char c) { return (h ^ c) * FNV_PRIME; }

static uint32_t fnv_bytes(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) h = fnv_byte(h, (unsigned char)s[i]);
    return h;
}

static bool cls_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

size_t guard_features(const char *text, size_t len, guard_feature_fn fn, void *ctx)
{
    guard_norm g;
    if (guard_normalize(text, len, 0, &g) != 0) return 0;
    size_t n = 0;
    const char *t = g.text;
    /* character 4-grams */
    for (size_t i = 0; i + 4 <= g.len; i++) {
        fn(fnv_bytes(fnv_byte(FNV_OFFSET, 'c'), t + i, 4), ctx);
        n++;
    }
    /* words and word pairs */
    const char *prev = NULL;
    size_t prev_len = 0, i = 0;
    while (i < g.len) {
        if (!cls_word_byte((unsigned char)t[i])) { i++; continue; }
        size_t s = i;
        while (i < g.len && cls_word_byte((unsigned char)t[i])) i++;
        size_t wl = i - s;
        fn(fnv_bytes(fnv_byte(FNV_OFFSET, 'w'), t + s, wl), ctx);
        n++;
        if (prev) {
            uint32_t h = fnv_bytes(fnv_byte(FNV_OFFSET, 'b'), prev, prev_len);
            h = fnv_bytes(fnv_byte(h, ' '), t + s, wl);
            fn(h, ctx);
            n++;
        }
        prev = t + s;
        prev_len = wl;
    }
    guard_norm_free(&g);
    return n;
}

guard_classifier *guard_classifier_parse(const void *data, size_t len, const char *name,
                                         char *err, size_t errlen)
{
    const unsigned char *p = data;
    if (len < 24 || memcmp(p, "BRGDCLS1", 8) != 0) {
        snprintf(err, errlen, "%s: not a brigade classifier weights file (magic BRGDCLS1)", name);
        return NULL;
    }
    uint32_t bits = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 |
                    (uint32_t)p[11] << 24;
    if (bits < GUARD_CLS_BITS_MIN || bits > GUARD_CLS_BITS_MAX) {
        snprintf(err, errlen, "%s: bits %u is outside %d..%d", name, bits, GUARD_CLS_BITS_MIN,
                 GUARD_CLS_BITS_MAX);
        return NULL;
    }
    size_t want = 24 + ((size_t)4 << bits);
    if (len != want) {
        snprintf(err, errlen, "%s: %zu bytes, a model of %u bits has %zu", name, len, bits, want);
        return NULL;
    }
    guard_classifier *c = xcalloc(1, sizeof *c);
    c->bits = bits;
    c->mask = (1u << bits) - 1;
    c->w = xmalloc((size_t)4 << bits);
    /* little-endian floats, as the training script writes them */
    memcpy(c->bias, p + 16, 8);
    memcpy(c->w, p + 24, (size_t)4 << bits);
    for (size_t i = 0; i < ((size_t)1 << bits); i++)
        if (!isfinite(c->w[i])) {
            snprintf(err, errlen, "%s: weight %zu is not a finite number", name, i);
            guard_classifier_free(c);
            return NULL;
        }
    if (!isfinite(c->bias[0]) || !isfinite(c->bias[1])) {
        snprintf(err, errlen, "%s: a bias is not a finite number", name);
        guard_classifier_free(c);
        return NULL;
    }
    return c;
}

guard_classifier *guard_classifier_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return NULL;
    }
    size_t cap = 24 + ((size_t)4 << GUARD_CLS_BITS_MAX) + 1;
    unsigned char *buf = xmalloc(cap);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    guard_classifier *c = guard_classifier_parse(buf, n, path, err, errlen);
    free(buf);
    return c;
}

void guard_classifier_free(guard_classifier *c)
{
    if (!c) return;
    free(c->w);
    free(c);
}

typedef struct cls_sum {
    const guard_classifier *c;
    double sum;
} cls_sum;

static void cls_add(uint32_t h, void *ctx)
{
    cls_sum *s = ctx;
    s->sum += s->c->w[h & s->c->mask];
}

double guard_classifier_score(const guard_classifier *c, const char *text, size_t len,
                              guard_channel ch)
{
    cls_sum s = {c, 0.0};
    size_t n = guard_features(text, len, cls_add, &s);
    double z = c->bias[ch == GUARD_CHANNEL_TOOL ? 1 : 0];
    if (n) z += s.sum / sqrt((double)n);
    return 1.0 / (1.0 + exp(-z));
}

/* Back over UTF-8 continuation bytes, so a piece never cuts a character. */
static size_t cls_boundary(const char *text, size_t len, size_t at)
{
    if (at >= len) return len;
    size_t e = at;
    for (int k = 0; k < 3 && e > 0 && ((unsigned char)text[e] & 0xC0) == 0x80; k++) e--;
    return e;
}

double guard_classifier_scan(const guard_classifier *c, const char *text, size_t len,
                             guard_channel ch, size_t *best_start, size_t *best_end)
{
    double best = -1;
    size_t start = 0;
    *best_start = *best_end = 0;
    for (;;) {
        size_t end = cls_boundary(text, len, start + GUARD_CLS_PIECE);
        if (end <= start) end = len < start + GUARD_CLS_PIECE ? len : start + GUARD_CLS_PIECE;
        double p = guard_classifier_score(c, text + start, end - start, ch);
        if (p > best) {
            best = p;
            *best_start = start;
            *best_end = end;
        }
        if (end >= len) break;
        size_t next = cls_boundary(text, len, start + GUARD_CLS_STEP);
        start = next > start ? next : start + GUARD_CLS_STEP;
    }
    return best < 0 ? 0 : best;
}

static void cls_scan(const guard_detector *d, const char *text, size_t len, guard_channel ch,
                     guard_detection *out)
{
    size_t s, e;
    out->score = guard_classifier_scan(d->impl, text, len, ch, &s, &e);
    if (out->score >= 0.5) {
        guard_detection_label(out, "injection_classifier");
        guard_detection_span(out, s, e, "injection_classifier");
    }
}

static void cls_destroy(guard_detector *d)
{
    guard_classifier_free(d->impl);
    free(d);
}

guard_detector *guard_classifier_detector_new(guard_classifier *c)
{
    guard_detector *d = xcalloc(1, sizeof *d);
    d->name = "classifier";
    d->scan = cls_scan;
    d->destroy = cls_destroy;
    d->impl = c;
    return d;
}
