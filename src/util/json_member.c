/* json_member.c — finding a top-level member's value in a JSON object's text
 * (json_member.h): a walk over the top level that decodes each key's escapes
 * to compare it, and skips every value without building anything. */
#include "util/json_member.h"

#include <stdint.h>
#include <string.h>

#include "util/utf8.h"

typedef struct walk {
    const char *p, *end;
} walk;

static void walk_ws(walk *w)
{
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\n' || *w->p == '\r' || *w->p == '\t')) w->p++;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The code unit of the 4 hex digits at p, or -1. */
static long hex4(const char *p, const char *end)
{
    if (end - p < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Compare the next decoded bytes of a key against want[*at..); false once
 * they differ (the caller keeps walking the key to its end). */
static bool key_matches(const char *bytes, size_t n, const char *want, size_t want_len, size_t *at)
{
    if (want_len - *at < n || memcmp(want + *at, bytes, n) != 0) return false;
    *at += n;
    return true;
}

/* A key at w->p (its opening quote): walk to past its closing quote and say
 * whether it decodes to want. false in *ok when the text is not a string. */
static bool walk_key(walk *w, const char *want, size_t want_len, bool *ok)
{
    *ok = false;
    if (w->p >= w->end || *w->p != '"') return false;
    w->p++;
    size_t at = 0;
    bool same = true;
    while (w->p < w->end) {
        char c = *w->p;
        if (c == '"') {
            w->p++;
            *ok = true;
            return same && at == want_len;
        }
        if (c != '\\') {
            const char *run = w->p;
            while (w->p < w->end && *w->p != '"' && *w->p != '\\') w->p++;
            if (same) same = key_matches(run, (size_t)(w->p - run), want, want_len, &at);
            continue;
        }
        if (w->end - w->p < 2) return false;
        char e = w->p[1];
        w->p += 2;
        char one;
        switch (e) {
        case '"': one = '"'; break;
        case '\\': one = '\\'; break;
        case '/': one = '/'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u': {
            long u = hex4(w->p, w->end);
            if (u < 0) return false;
            w->p += 4;
            uint32_t cp = (uint32_t)u;
            /* A high surrogate followed by a low one is one character; a
             * lone surrogate cannot be in a configured field name, so it
             * only has to make the key differ. */
            if (cp >= 0xd800 && cp < 0xdc00 && w->end - w->p >= 6 && w->p[0] == '\\' && w->p[1] == 'u') {
                long lo = hex4(w->p + 2, w->end);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
                    w->p += 6;
                }
            }
            if (cp >= 0xd800 && cp < 0xe000) {
                same = false;
                continue;
            }
            char enc[4];
            size_t n = utf8_encode(cp, enc);
            if (same) same = key_matches(enc, n, want, want_len, &at);
            continue;
        }
        default: return false;
        }
        if (same) same = key_matches(&one, 1, want, want_len, &at);
    }
    return false;
}

/* Past one string at w->p (its opening quote). */
static bool skip_string(walk *w)
{
    w->p++;
    while (w->p < w->end) {
        const char *q = w->p;
        while (q < w->end && *q != '"' && *q != '\\') q++;
        if (q >= w->end) break;
        if (*q == '"') {
            w->p = q + 1;
            return true;
        }
        if (w->end - q < 2) break;
        w->p = q + 2;   /* a backslash and the byte it escapes */
    }
    w->p = w->end;
    return false;
}

/* Past one value: a string, a container (its strings skipped whole, so a
 * bracket inside one is not counted), or a scalar. */
static bool skip_value(walk *w)
{
    if (w->p >= w->end) return false;
    char c = *w->p;
    if (c == '"') return skip_string(w);
    if (c == '{' || c == '[') {
        size_t depth = 0;
        while (w->p < w->end) {
            c = *w->p;
            if (c == '"') {
                if (!skip_string(w)) return false;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            else if (c == '}' || c == ']') {
                depth--;
                if (depth == 0) {
                    w->p++;
                    return true;
                }
            }
            w->p++;
        }
        return false;
    }
    const char *from = w->p;
    while (w->p < w->end && *w->p != ',' && *w->p != '}' && *w->p != ']' && *w->p != ' ' &&
           *w->p != '\n' && *w->p != '\r' && *w->p != '\t')
        w->p++;
    return w->p > from;
}

bool json_top_member(const char *text, size_t len, const char *key, size_t key_len, size_t *start,
                     size_t *end)
{
    walk w = {text, text + len};
    /* cJSON reads past a UTF-8 byte order mark, so a body that starts with
     * one was accepted: its members are found after it. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) w.p += 3;
    walk_ws(&w);
    if (w.p >= w.end || *w.p != '{') return false;
    w.p++;
    for (;;) {
        walk_ws(&w);
        if (w.p >= w.end || *w.p == '}') return false;
        bool ok;
        bool found = walk_key(&w, key, key_len, &ok);
        if (!ok) return false;
        walk_ws(&w);
        if (w.p >= w.end || *w.p != ':') return false;
        w.p++;
        walk_ws(&w);
        const char *value = w.p;
        if (!skip_value(&w)) return false;
        if (found) {
            *start = (size_t)(value - text);
            *end = (size_t)(w.p - text);
            return true;
        }
        walk_ws(&w);
        if (w.p >= w.end || *w.p != ',') return false;
        w.p++;
    }
}
