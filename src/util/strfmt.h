/* strfmt.h — bounded string copies and decimal integers without printf's
 * machinery. snprintf(dst, n, "%s", s) costs a few hundred instructions
 * (format parsing, vtable'd stdio buffer) where a copy costs tens, and the
 * gateway's request path made a dozen such calls per request. Each helper
 * gives exactly what its printf form gives, truncation included. */
#ifndef BRIGADE_UTIL_STRFMT_H
#define BRIGADE_UTIL_STRFMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* snprintf(dst, n, "%.*s", (int)max, src): at most max bytes of src, cut
 * to fit n - 1, NUL-terminated (nothing written when n is 0). src NULL is
 * taken as "". Returns the bytes copied. */
static inline size_t str_copy_max(char *dst, size_t n, const char *src, size_t max)
{
    if (!n) return 0;
    if (max > n - 1) max = n - 1;
    size_t len = src ? strnlen(src, max) : 0;
    memcpy(dst, src ? src : "", len);
    dst[len] = '\0';
    return len;
}

/* snprintf(dst, n, "%s", src). */
static inline size_t str_copy(char *dst, size_t n, const char *src)
{
    return str_copy_max(dst, n, src, (size_t)-1);
}

/* snprintf(dst, n, "%s%c%s", a, sep, b): two strings and a separator. */
static inline size_t str_join2(char *dst, size_t n, const char *a, char sep, const char *b)
{
    size_t len = str_copy(dst, n, a);
    if (len + 1 >= n) return len;
    dst[len++] = sep;
    return len + str_copy(dst + len, n - len, b);
}

/* The decimal digits of v at out (no NUL; at most 20 bytes): "%" PRIu64. */
static inline size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

/* "%" PRId64: a '-' then the digits (at most 20 bytes). */
static inline size_t fmt_i64(char *out, int64_t v)
{
    if (v >= 0) return fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);   /* INT64_MIN too */
}

/* The lower-case hexadecimal digits of v at out (no NUL; at most 16
 * bytes): "%" PRIx64, as a chunked body's size line needs. */
static inline size_t fmt_hex(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

#endif
