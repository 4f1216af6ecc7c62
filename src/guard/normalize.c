/* normalize.c — folding text for the injection detectors (normalize.h).
 * The look-alike table is ours, kept small on purpose: the letters that
 * can spell an English instruction, nothing that would change meaning. */
#include "guard/normalize.h"
#include "util/xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int32_t guard_utf8_next(const unsigned char *s, size_t n, size_t *len)
{
    *len = 1;
    if (n == 0) return -1;
    unsigned char c = s[0];
    if (c < 0x80) return c;
    size_t need;
    int32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) { need = 2; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 3; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 4; cp = c & 0x07; min = 0x10000; }
    else return -1;
    if (n < need) return -1;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *len = need;
    return cp;
}

/* Invisible characters an attacker puts inside a word to break a pattern. */
static bool norm_invisible(int32_t cp)
{
    return cp == 0x00AD || cp == 0x034F || cp == 0x061C || cp == 0x180E ||
           (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) ||
           cp == 0xFEFF || (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xE0000 && cp <= 0xE007F);
}

static bool norm_space(int32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\v' || cp == '\f' || cp == 0x00A0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Look-alikes of ASCII letters, sorted by code point (binary search). */
static const struct { int32_t cp; char ascii; } norm_confusables[] = {
    {0x00C0, 'a'}, {0x00C1, 'a'}, {0x00C2, 'a'}, {0x00C3, 'a'}, {0x00C4, 'a'}, {0x00C5, 'a'},
    {0x00C7, 'c'}, {0x00C8, 'e'}, {0x00C9, 'e'}, {0x00CA, 'e'}, {0x00CB, 'e'}, {0x00CC, 'i'},
    {0x00CD, 'i'}, {0x00CE, 'i'}, {0x00CF, 'i'}, {0x00D1, 'n'}, {0x00D2, 'o'}, {0x00D3, 'o'},
    {0x00D4, 'o'}, {0x00D5, 'o'}, {0x00D6, 'o'}, {0x00D8, 'o'}, {0x00D9, 'u'}, {0x00DA, 'u'},
    {0x00DB, 'u'}, {0x00DC, 'u'}, {0x00DD, 'y'}, {0x00E0, 'a'}, {0x00E1, 'a'}, {0x00E2, 'a'},
    {0x00E3, 'a'}, {0x00E4, 'a'}, {0x00E5, 'a'}, {0x00E7, 'c'}, {0x00E8, 'e'}, {0x00E9, 'e'},
    {0x00EA, 'e'}, {0x00EB, 'e'}, {0x00EC, 'i'}, {0x00ED, 'i'}, {0x00EE, 'i'}, {0x00EF, 'i'},
    {0x00F1, 'n'}, {0x00F2, 'o'}, {0x00F3, 'o'}, {0x00F4, 'o'}, {0x00F5, 'o'}, {0x00F6, 'o'},
    {0x00F8, 'o'}, {0x00F9, 'u'}, {0x00FA, 'u'}, {0x00FB, 'u'}, {0x00FC, 'u'}, {0x00FD, 'y'},
    {0x00FF, 'y'}, {0x0131, 'i'}, {0x0261, 'g'}, {0x0391, 'a'}, {0x0392, 'b'}, {0x0395, 'e'},
    {0x0396, 'z'}, {0x0397, 'h'}, {0x0399, 'i'}, {0x039A, 'k'}, {0x039C, 'm'}, {0x039D, 'n'},
    {0x039F, 'o'}, {0x03A1, 'p'}, {0x03A4, 't'}, {0x03A5, 'y'}, {0x03A7, 'x'}, {0x03B1, 'a'},
    {0x03B5, 'e'}, {0x03B9, 'i'}, {0x03BA, 'k'}, {0x03BD, 'v'}, {0x03BF, 'o'}, {0x03C1, 'p'},
    {0x03C4, 't'}, {0x03C5, 'u'}, {0x03C7, 'x'}, {0x0405, 's'}, {0x0406, 'i'}, {0x0408, 'j'},
    {0x0410, 'a'}, {0x0412, 'b'}, {0x0415, 'e'}, {0x041A, 'k'}, {0x041C, 'm'}, {0x041D, 'h'},
    {0x041E, 'o'}, {0x0420, 'p'}, {0x0421, 'c'}, {0x0422, 't'}, {0x0423, 'y'}, {0x0425, 'x'},
    {0x0430, 'a'}, {0x0435, 'e'}, {0x043E, 'o'}, {0x0440, 'p'}, {0x0441, 'c'}, {0x0443, 'y'},
    {0x0445, 'x'}, {0x0455, 's'}, {0x0456, 'i'}, {0x0458, 'j'}, {0x04BB, 'h'}, {0x0501, 'd'},
    {0x051B, 'q'}, {0x051D, 'w'}, {0x13A0, 'd'}, {0x13A1, 'r'}, {0x13A2, 't'}, {0x13A5, 'i'},
    {0x13AA, 'g'}, {0x13AC, 'w'}, {0x13B3, 'w'}, {0x13B7, 'm'}, {0x13BB, 'h'}, {0x13C0, 'g'},
    {0x13C2, 'h'}, {0x13C3, 'z'}, {0x13CF, 'b'}, {0x13D2, 'r'}, {0x13DA, 's'}, {0x13DE, 'l'},
    {0x13DF, 'c'}, {0x13E2, 'p'}, {0x13E6, 'k'}, {0x13F4, 'b'}, {0x1D00, 'a'}, {0x1D04, 'c'},
    {0x1D05, 'd'}, {0x1D07, 'e'}, {0x1D0A, 'j'}, {0x1D0B, 'k'}, {0x1D0D, 'm'}, {0x1D0F, 'o'},
    {0x1D18, 'p'}, {0x1D1B, 't'}, {0x1D1C, 'u'}, {0x1D20, 'v'}, {0x1D21, 'w'}, {0x1D22, 'z'},
    {0x2170, 'i'}, {0x217C, 'l'}, {0x217D, 'c'}, {0x217E, 'd'}, {0x217F, 'm'},
};

static int32_t norm_fold(int32_t cp)
{
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if (cp < 0x80) return cp;
    if (cp >= 0xFF01 && cp <= 0xFF5E) {                 /* full-width ASCII */
        int32_t a = cp - 0xFEE0;
        return (a >= 'A' && a <= 'Z') ? a + 32 : a;
    }
    if (cp >= 0x24B6 && cp <= 0x24CF) return 'a' + (cp - 0x24B6);   /* circled A–Z */
    if (cp >= 0x24D0 && cp <= 0x24E9) return 'a' + (cp - 0x24D0);   /* circled a–z */
    if (cp >= 0x1F130 && cp <= 0x1F149) return 'a' + (cp - 0x1F130); /* squared A–Z */
    if (cp >= 0x1F150 && cp <= 0x1F169) return 'a' + (cp - 0x1F150); /* neg. circled */
    if (cp >= 0x1F170 && cp <= 0x1F189) return 'a' + (cp - 0x1F170); /* neg. squared */
    if (cp >= 0x1F1E6 && cp <= 0x1F1FF) return 'a' + (cp - 0x1F1E6); /* regional ind. */
    if (cp >= 0x1D400 && cp <= 0x1D6A3)                 /* mathematical A–Z a–z, 13 styles */
        return 'a' + ((cp - 0x1D400) % 52) % 26;
    if (cp >= 0x1D7CE && cp <= 0x1D7FF) return '0' + (cp - 0x1D7CE) % 10;   /* math digits */
    size_t lo = 0, hi = sizeof norm_confusables / sizeof norm_confusables[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (norm_confusables[mid].cp == cp) return norm_confusables[mid].ascii;
        if (norm_confusables[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }
    return cp;
}

static size_t norm_put_utf8(char *o, int32_t cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool norm_is_lower(char c) { return c >= 'a' && c <= 'z'; }
static bool norm_is_leet(char c)
{
    return (c >= '0' && c <= '9') || c == '@' || c == '$';
}

static char norm_leet_letter(char c)
{
    switch (c) {
    case '0': return 'o'; case '1': return 'i'; case '3': return 'e'; case '4': return 'a';
    case '5': return 's'; case '7': return 't'; case '8': return 'b'; case '9': return 'g';
    case '@': return 'a'; case '$': return 's';
    default: return c;
    }
}

/* Digits and signs inside a word that holds a letter read as letters. */
static void norm_leet_words(guard_norm *g)
{
    size_t i = 0;
    while (i < g->len) {
        if (!norm_is_lower(g->text[i]) && !norm_is_leet(g->text[i])) { i++; continue; }
        size_t j = i;
        bool letter = false;
        while (j < g->len && (norm_is_lower(g->text[j]) || norm_is_leet(g->text[j]))) {
            letter |= norm_is_lower(g->text[j]);
            j++;
        }
        if (letter)
            for (size_t k = i; k < j; k++) g->text[k] = norm_leet_letter(g->text[k]);
        i = j;
    }
}

/* "i g n o r e", "i.g.n.o.r.e": four or more single letters each followed
 * by the same one separator are joined into a word (in place). */
static void norm_join_spaced(guard_norm *g)
{
    size_t r = 0, w = 0;
    while (r < g->len) {
        char c = g->text[r];
        bool single = norm_is_lower(c) && (r == 0 || !norm_is_lower(g->text[r - 1])) &&
                      r + 1 < g->len && strchr(" .-_*|/", g->text[r + 1]);
        if (single) {
            char sep = g->text[r + 1];
            size_t k = r, n = 0, end = r;
            /* k is at a letter that must stand alone */
            while (k < g->len && norm_is_lower(g->text[k]) &&
                   (k + 1 >= g->len || !norm_is_lower(g->text[k + 1]))) {
                n++;
                end = k + 1;
                if (k + 2 < g->len && g->text[k + 1] == sep && norm_is_lower(g->text[k + 2]))
                    k += 2;
                else
                    break;
            }
            if (n >= 4) {
                for (size_t q = r; q < end; q += 2) {
                    g->text[w] = g->text[q];
                    g->origin[w++] = g->origin[q];
                }
                r = end;
                continue;
            }
        }
        g->text[w] = c;
        g->origin[w++] = g->origin[r++];
    }
    g->len = w;
    g->text[w] = 0;
}

int guard_normalize(const char *in, size_t n, unsigned flags, guard_norm *out)
{
    memset(out, 0, sizeof *out);
    if (n >= UINT32_MAX) return -1;
    out->text = xmalloc(n + 1);
    out->origin = xmalloc((n + 1) * sizeof *out->origin);
    out->input = in;
    out->input_len = n;
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;
    bool last_space = false;
    while (i < n) {
        size_t at = i;
        unsigned char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c > ' ' && c < 'A') ||
            (c > 'Z' && c < 'a') || (c > 'z' && c < 0x7F)) {
            /* the common case: printable ASCII that is not a space or a capital */
            out->text[o] = (char)c;
            out->origin[o++] = (uint32_t)at;
            last_space = false;
            i++;
            continue;
        }
        size_t len;
        int32_t cp = guard_utf8_next(s + i, n - i, &len);
        i += len;
        if (cp < 0 || norm_invisible(cp) || (cp < 0x20 && cp != '\n' && !norm_space(cp)) ||
            cp == 0x7F)
            continue;
        if (cp == '\n') {
            if (last_space && o > 0 && out->text[o - 1] == ' ') o--;   /* no space before a newline */
            out->text[o] = '\n';
            out->origin[o++] = (uint32_t)at;
            last_space = false;
            continue;
        }
        if (norm_space(cp)) {
            if (last_space || (o > 0 && out->text[o - 1] == '\n')) continue;
            out->text[o] = ' ';
            out->origin[o++] = (uint32_t)at;
            last_space = true;
            continue;
        }
        last_space = false;
        int32_t f = norm_fold(cp);
        char buf[4];
        size_t k = norm_put_utf8(buf, f);
        /* a folded character never takes more bytes than its source did */
        for (size_t b = 0; b < k; b++) {
            out->text[o] = buf[b];
            out->origin[o++] = (uint32_t)at;
        }
    }
    out->len = o;
    out->text[o] = 0;
    if (flags & GUARD_NORM_LEET) {
        norm_leet_words(out);
        norm_join_spaced(out);
    }
    return 0;
}

void guard_norm_leet(const guard_norm *from, guard_norm *to)
{
    *to = *from;
    to->text = xmalloc(from->len + 1);
    to->origin = xmalloc((from->len + 1) * sizeof *to->origin);
    memcpy(to->text, from->text, from->len + 1);
    memcpy(to->origin, from->origin, from->len * sizeof *to->origin);
    norm_leet_words(to);
    norm_join_spaced(to);
}

void guard_norm_free(guard_norm *g)
{
    if (!g) return;
    free(g->text);
    free(g->origin);
    memset(g, 0, sizeof *g);
}

void guard_norm_span(const guard_norm *g, size_t start, size_t end, size_t *in_start,
                     size_t *in_end)
{
    if (g->len == 0) { *in_start = *in_end = 0; return; }
    if (start >= g->len) start = g->len - 1;
    if (end > g->len) end = g->len;
    if (end <= start) end = start + 1;
    *in_start = g->origin[start];
    size_t last = g->origin[end - 1], len;
    guard_utf8_next((const unsigned char *)g->input + last, g->input_len - last, &len);
    *in_end = last + len;
}
