/* json_escape.c — JSON string escaping with one policy for control bytes,
 * DEL and invalid UTF-8 (see json_escape.h). */
#include "util/json_escape.h"

#include <string.h>

/* The length of the well-formed UTF-8 sequence of two to four bytes at
 * s[0..n), or 0 when s[0] does not start one (the table of RFC 3629). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c >= 0xc2 && c <= 0xdf) return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[2] & 0xc0) != 0x80) return 0;
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;   /* no overlongs */
        unsigned char hi = c == 0xed ? 0x9f : 0xbf;   /* no surrogates */
        return s[1] >= lo && s[1] <= hi ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80) return 0;
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80;   /* no overlongs */
        unsigned char hi = c == 0xf4 ? 0x8f : 0xbf;   /* nothing above U+10FFFF */
        return s[1] >= lo && s[1] <= hi ? 4 : 0;
    }
    return 0;
}

/* What each byte is to the scanner: 1 copied as it is (printable ASCII but
 * the quote and backslash), 0 escaped, 2 the start of a multi-byte UTF-8
 * sequence or a broken byte. One load a byte keeps the common case short. */
static const unsigned char byte_kind[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* How many bytes from s[0] on are copied as they are: printable ASCII but
 * the quote and backslash, and well-formed UTF-8 sequences. */
static size_t plain_run(const unsigned char *s, size_t n)
{
    size_t i = 0;
    for (;;) {
        while (i < n && byte_kind[s[i]] == 1) i++;
        if (i == n || byte_kind[s[i]] == 0) return i;
        size_t k = utf8_seq_len(s + i, n - i);
        if (!k) return i;
        i += k;
    }
}

/* The escape of the byte at s, which plain_run stopped at: written to esc,
 * its length returned. Always consumes that one byte. */
static size_t escape_one(unsigned char c, char *esc)
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"':  memcpy(esc, "\\\"", 2); return 2;
    case '\\': memcpy(esc, "\\\\", 2); return 2;
    case '\n': memcpy(esc, "\\n", 2); return 2;
    case '\r': memcpy(esc, "\\r", 2); return 2;
    case '\t': memcpy(esc, "\\t", 2); return 2;
    default:
        if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            return 6;
        }
        memcpy(esc, "\xef\xbf\xbd", 3);   /* U+FFFD for a byte of broken UTF-8 */
        return 3;
    }
}

/* Below this, a string's escaped body is written into room reserved for
 * its worst case (every byte an escape) with one reservation; above it,
 * run by run, so a long text does not reserve six times its size. */
#define ESCAPE_DIRECT_MAX 4096

/* Append the escaped body; the caller has reserved room for the text as
 * it is, so a plain string costs one append a run. */
static void escape_append(buf *out, const unsigned char *p, size_t len)
{
    if (len <= ESCAPE_DIRECT_MAX) {
        buf_reserve(out, len * JSON_ESCAPE_MAX_GROWTH);
        char *d = out->data + out->len;
        size_t i = 0;
        while (i < len) {
            size_t run = plain_run(p + i, len - i);
            memcpy(d, p + i, run);
            d += run;
            i += run;
            if (i == len) break;
            d += escape_one(p[i], d);
            i++;
        }
        out->len = (size_t)(d - out->data);
        out->data[out->len] = '\0';
        return;
    }
    size_t i = 0;
    while (i < len) {
        size_t run = plain_run(p + i, len - i);
        if (run) buf_append(out, p + i, run);
        i += run;
        if (i == len) break;
        char esc[JSON_ESCAPE_MAX_GROWTH];
        buf_append(out, esc, escape_one(p[i], esc));
        i++;
    }
}

void json_escape_body(buf *out, const char *s, size_t len)
{
    if (len == 0) return;        /* s may then be NULL */
    buf_reserve(out, len);
    escape_append(out, (const unsigned char *)s, len);
}

void json_escape_string(buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    if (len == 0) {              /* s may then be NULL */
        buf_append(out, "\"\"", 2);
        return;
    }
    /* The opening quote and the first run go straight into the room just
     * reserved: most strings are one run, and then this is one copy. */
    buf_reserve(out, len + 2);
    size_t run = plain_run(p, len);
    char *d = out->data + out->len;
    d[0] = '"';
    memcpy(d + 1, p, run);
    if (run == len) {            /* the room reserved holds the closing quote and the NUL */
        d[run + 1] = '"';
        out->len += run + 2;
        out->data[out->len] = '\0';
        return;
    }
    out->len += run + 1;
    escape_append(out, p + run, len - run);
    buf_append(out, "\"", 1);
}

size_t json_escape_into(char *out, size_t cap, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    while (i < len) {
        size_t run = plain_run(p + i, len - i);
        if (run > cap - o) {
            /* Cut the run at a character boundary: the bytes of a run are
             * well-formed, so backing off continuation bytes finds one. */
            run = cap - o;
            while (run > 0 && (p[i + run] & 0xc0) == 0x80) run--;
            memcpy(out + o, p + i, run);
            return o + run;
        }
        memcpy(out + o, p + i, run);
        o += run;
        i += run;
        if (i == len) break;
        char esc[JSON_ESCAPE_MAX_GROWTH];
        size_t n = escape_one(p[i], esc);
        if (n > cap - o) break;
        memcpy(out + o, esc, n);
        o += n;
        i++;
    }
    return o;
}
