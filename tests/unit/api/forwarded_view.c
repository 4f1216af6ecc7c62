/* forwarded_view.c — a provider's reading of a forwarded body (see
 * forwarded_view.h): a small strict JSON reader, independent of cJSON. */
#include "forwarded_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FV_MAX_DEPTH 1000

typedef struct fv_in {
    const char *s, *end;
} fv_in;

static void fv_ws(fv_in *in)
{
    while (in->s < in->end && (*in->s == ' ' || *in->s == '\t' || *in->s == '\n' || *in->s == '\r'))
        in->s++;
}

static int fv_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool fv_u4(fv_in *in, unsigned *out)
{
    if (in->end - in->s < 4) return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = fv_hex(in->s[i]);
        if (h < 0) return false;
        v = v * 16 + (unsigned)h;
    }
    in->s += 4;
    *out = v;
    return true;
}

static bool fv_put(char *out, size_t outlen, size_t *n, unsigned char c)
{
    if (out) {
        if (*n + 1 >= outlen) return false;
        out[*n] = (char)c;
    }
    (*n)++;
    return true;
}

static bool fv_put_cp(char *out, size_t outlen, size_t *n, unsigned cp)
{
    if (cp < 0x80) return fv_put(out, outlen, n, (unsigned char)cp);
    if (cp < 0x800)
        return fv_put(out, outlen, n, (unsigned char)(0xC0 | (cp >> 6))) &&
               fv_put(out, outlen, n, (unsigned char)(0x80 | (cp & 0x3F)));
    if (cp < 0x10000)
        return fv_put(out, outlen, n, (unsigned char)(0xE0 | (cp >> 12))) &&
               fv_put(out, outlen, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3F))) &&
               fv_put(out, outlen, n, (unsigned char)(0x80 | (cp & 0x3F)));
    return fv_put(out, outlen, n, (unsigned char)(0xF0 | (cp >> 18))) &&
           fv_put(out, outlen, n, (unsigned char)(0x80 | ((cp >> 12) & 0x3F))) &&
           fv_put(out, outlen, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3F))) &&
           fv_put(out, outlen, n, (unsigned char)(0x80 | (cp & 0x3F)));
}

/* A string at in->s (the opening quote), decoded into out (may be NULL:
 * only skipped). Raw control characters are invalid, as in strict
 * parsers. */
static bool fv_str(fv_in *in, char *out, size_t outlen, size_t *len)
{
    size_t n = 0;
    if (in->s >= in->end || *in->s != '"') return false;
    in->s++;
    while (in->s < in->end) {
        unsigned char c = (unsigned char)*in->s++;
        if (c == '"') {
            if (out) out[n] = '\0';
            if (len) *len = n;
            return true;
        }
        if (c < 0x20) return false;
        if (c != '\\') {
            if (!fv_put(out, outlen, &n, c)) return false;
            continue;
        }
        if (in->s >= in->end) return false;
        char e = *in->s++;
        unsigned cp;
        switch (e) {
        case '"': case '\\': case '/': cp = (unsigned char)e; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (!fv_u4(in, &cp)) return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (in->end - in->s < 2 || in->s[0] != '\\' || in->s[1] != 'u') return false;
                in->s += 2;
                if (!fv_u4(in, &lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return false;
            }
            break;
        default: return false;
        }
        if (!fv_put_cp(out, outlen, &n, cp)) return false;
    }
    return false;
}

static bool fv_value_at(fv_in *in, fv_value *v, int depth);

static bool fv_number_text(fv_in *in)
{
    const char *s = in->s;
    if (s < in->end && *s == '-') s++;
    if (s >= in->end) return false;
    if (*s == '0') s++;
    else if (*s >= '1' && *s <= '9') while (s < in->end && *s >= '0' && *s <= '9') s++;
    else return false;
    if (s < in->end && *s == '.') {
        s++;
        if (s >= in->end || *s < '0' || *s > '9') return false;
        while (s < in->end && *s >= '0' && *s <= '9') s++;
    }
    if (s < in->end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < in->end && (*s == '+' || *s == '-')) s++;
        if (s >= in->end || *s < '0' || *s > '9') return false;
        while (s < in->end && *s >= '0' && *s <= '9') s++;
    }
    in->s = s;
    return true;
}

static bool fv_lit(fv_in *in, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(in->end - in->s) < n || memcmp(in->s, w, n) != 0) return false;
    in->s += n;
    return true;
}

static bool fv_value_at(fv_in *in, fv_value *v, int depth)
{
    if (depth > FV_MAX_DEPTH) return false;
    fv_ws(in);
    if (in->s >= in->end) return false;
    const char *start = in->s;
    bool ok;
    switch (*in->s) {
    case '{':
        v->type = FV_OBJECT;
        in->s++;
        fv_ws(in);
        if (in->s < in->end && *in->s == '}') { in->s++; ok = true; break; }
        for (;;) {
            fv_value inner;
            fv_ws(in);
            if (!fv_str(in, NULL, 0, NULL)) return false;
            fv_ws(in);
            if (in->s >= in->end || *in->s++ != ':') return false;
            if (!fv_value_at(in, &inner, depth + 1)) return false;
            fv_ws(in);
            if (in->s >= in->end) return false;
            if (*in->s == ',') { in->s++; continue; }
            if (*in->s == '}') { in->s++; break; }
            return false;
        }
        ok = true;
        break;
    case '[':
        v->type = FV_ARRAY;
        in->s++;
        fv_ws(in);
        if (in->s < in->end && *in->s == ']') { in->s++; ok = true; break; }
        for (;;) {
            fv_value inner;
            if (!fv_value_at(in, &inner, depth + 1)) return false;
            fv_ws(in);
            if (in->s >= in->end) return false;
            if (*in->s == ',') { in->s++; continue; }
            if (*in->s == ']') { in->s++; break; }
            return false;
        }
        ok = true;
        break;
    case '"': v->type = FV_STRING; ok = fv_str(in, NULL, 0, NULL); break;
    case 't': v->type = FV_BOOL; ok = fv_lit(in, "true"); break;
    case 'f': v->type = FV_BOOL; ok = fv_lit(in, "false"); break;
    case 'n': v->type = FV_NULL; ok = fv_lit(in, "null"); break;
    default: v->type = FV_NUMBER; ok = fv_number_text(in); break;
    }
    v->raw = start;
    v->raw_len = (size_t)(in->s - start);
    return ok;
}

bool fv_read(forwarded_view *fv, const char *text, size_t len)
{
    memset(fv, 0, sizeof *fv);
    fv_in in = {text, text + len};
    fv_ws(&in);
    if (in.s >= in.end || *in.s != '{') return false;
    in.s++;
    fv_ws(&in);
    if (in.s < in.end && *in.s == '}') {
        in.s++;
    } else {
        for (;;) {
            if (fv->n == fv->cap) {
                fv->cap = fv->cap ? 2 * fv->cap : 16;
                fv->m = realloc(fv->m, fv->cap * sizeof *fv->m);
                if (!fv->m) abort();
            }
            struct fv_member *m = &fv->m[fv->n];
            fv_ws(&in);
            m->key.type = FV_STRING;
            m->key.raw = in.s;
            if (!fv_str(&in, NULL, 0, NULL)) return false;
            m->key.raw_len = (size_t)(in.s - m->key.raw);
            fv_ws(&in);
            if (in.s >= in.end || *in.s++ != ':') return false;
            if (!fv_value_at(&in, &m->v, 1)) return false;
            fv->n++;
            fv_ws(&in);
            if (in.s >= in.end) return false;
            if (*in.s == ',') { in.s++; continue; }
            if (*in.s == '}') { in.s++; break; }
            return false;
        }
    }
    fv_ws(&in);
    return in.s == in.end;
}

void fv_free(forwarded_view *fv)
{
    free(fv->m);
    memset(fv, 0, sizeof *fv);
}

/* Member i's key, decoded (a decoded string is never longer than its
 * text); the caller frees it. */
static char *fv_key(const forwarded_view *fv, size_t i, size_t *len)
{
    char *k = malloc(fv->m[i].key.raw_len + 1);
    if (!k) abort();
    if (!fv_string(fv->m[i].key, k, fv->m[i].key.raw_len + 1, len)) abort();   /* read before */
    return k;
}

fv_value fv_last(const forwarded_view *fv, const char *name)
{
    fv_value none = {FV_ABSENT, NULL, 0};
    size_t nl = strlen(name);
    for (size_t i = fv->n; i-- > 0;) {
        size_t kl;
        char *k = fv_key(fv, i, &kl);
        bool same = kl == nl && memcmp(k, name, nl) == 0;
        free(k);
        if (same) return fv->m[i].v;
    }
    return none;
}

static bool fv_folds_to(const char *key, size_t key_len, const char *name)
{
    const unsigned char *k = (const unsigned char *)key, *end = k + key_len;
    for (const char *f = name; *f; f++) {
        if (k >= end) return false;
        unsigned char c = *k;
        if (c == 0xE2 && end - k >= 3 && k[1] == 0x84 && k[2] == 0xAA) { c = 'k'; k += 3; }
        else if (c == 0xC5 && end - k >= 2 && k[1] == 0xBF) { c = 's'; k += 2; }
        else { if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32); k++; }
        if (c != (unsigned char)*f) return false;
    }
    return k == end;
}

fv_value fv_last_folded(const forwarded_view *fv, const char *name)
{
    fv_value none = {FV_ABSENT, NULL, 0};
    for (size_t i = fv->n; i-- > 0;) {
        size_t kl;
        char *k = fv_key(fv, i, &kl);
        bool same = fv_folds_to(k, kl, name);
        free(k);
        if (same) return fv->m[i].v;
    }
    return none;
}

bool fv_is_true(fv_value v) { return v.type == FV_BOOL && v.raw[0] == 't'; }

bool fv_number(fv_value v, double *out)
{
    if (v.type != FV_NUMBER) return false;
    char *tmp = malloc(v.raw_len + 1);
    if (!tmp) abort();
    memcpy(tmp, v.raw, v.raw_len);
    tmp[v.raw_len] = '\0';
    *out = strtod(tmp, NULL);
    free(tmp);
    return true;
}

bool fv_string(fv_value v, char *out, size_t outlen, size_t *out_len)
{
    if (v.type != FV_STRING) return false;
    fv_in in = {v.raw, v.raw + v.raw_len};
    return fv_str(&in, out, outlen, out_len);
}

/* ---- the property ---- */

typedef fv_value (*fv_lookup)(const forwarded_view *, const char *);

static bool fv_check_reading(const forwarded_view *fv, fv_lookup get, const char *reading,
                             const char *upstream_model, bool stream, unsigned choices,
                             unsigned max_output, char *why, size_t whylen)
{
    char model[256];
    size_t ml = 0;
    if (!fv_string(get(fv, "model"), model, sizeof model, &ml) || ml != strlen(upstream_model) ||
        memcmp(model, upstream_model, ml) != 0) {
        snprintf(why, whylen, "%s: model is not \"%s\"", reading, upstream_model);
        return false;
    }
    fv_value st = get(fv, "stream");
    if (!(st.type == FV_ABSENT || st.type == FV_NULL || st.type == FV_BOOL) || fv_is_true(st) != stream) {
        snprintf(why, whylen, "%s: stream differs from the governed %d", reading, stream);
        return false;
    }
    fv_value n = get(fv, "n");
    double nv = 1;
    if (n.type != FV_ABSENT && n.type != FV_NULL && !fv_number(n, &nv)) nv = -1;
    if (nv != (double)choices) {
        snprintf(why, whylen, "%s: n is %g, governed %u", reading, nv, choices);
        return false;
    }
    static const char *const caps[] = {"max_completion_tokens", "max_tokens"};
    bool capped = false;
    for (int i = 0; i < 2; i++) {
        fv_value c = get(fv, caps[i]);
        double v;
        if (c.type == FV_ABSENT || c.type == FV_NULL) continue;
        if (!fv_number(c, &v) || v > (double)max_output) {
            snprintf(why, whylen, "%s: %s is %.*s, governed at most %u", reading, caps[i],
                     (int)(c.raw_len > 40 ? 40 : c.raw_len), c.raw, max_output);
            return false;
        }
        capped = true;
    }
    if (!capped) {
        snprintf(why, whylen, "%s: no output cap reaches the provider", reading);
        return false;
    }
    static const char *const unmetered[] = {"best_of", "audio", "prediction", "web_search_options"};
    for (size_t i = 0; i < sizeof unmetered / sizeof unmetered[0]; i++) {
        fv_value u = get(fv, unmetered[i]);
        if (u.type != FV_ABSENT && u.type != FV_NULL) {
            snprintf(why, whylen, "%s: %s reaches the provider", reading, unmetered[i]);
            return false;
        }
    }
    fv_value tier = get(fv, "service_tier");
    char t[32];
    if (tier.type != FV_ABSENT && tier.type != FV_NULL &&
        !(fv_string(tier, t, sizeof t, NULL) &&
          (strcmp(t, "auto") == 0 || strcmp(t, "default") == 0 || strcmp(t, "flex") == 0))) {
        snprintf(why, whylen, "%s: service_tier %.*s reaches the provider", reading,
                 (int)(tier.raw_len > 40 ? 40 : tier.raw_len), tier.raw);
        return false;
    }
    return true;
}

bool fv_check_governed(const char *text, size_t len, const char *upstream_model, bool stream,
                       unsigned choices, unsigned max_output, char *why, size_t whylen)
{
    forwarded_view fv;
    bool ok = fv_read(&fv, text, len);
    if (!ok)
        snprintf(why, whylen, "the forwarded body is not a JSON object a provider can read");
    else
        ok = fv_check_reading(&fv, fv_last, "last key wins", upstream_model, stream, choices,
                              max_output, why, whylen) &&
             fv_check_reading(&fv, fv_last_folded, "case-folded, last key wins", upstream_model,
                              stream, choices, max_output, why, whylen);
    fv_free(&fv);
    return ok;
}
