/* tool_url.c — what a model's argument may become inside a declared HTTP
 * tool's URL path, decided before any request is made.
 *
 * Percent-encoding a placeholder's value keeps it inside one path segment
 * for a server that decodes once and then routes. It does not stop a
 * value that is itself a dot segment (curl and most servers resolve
 * "/projects/../tickets" to "/tickets"), nor a server, proxy or framework
 * that decodes more than once, turns backslashes into slashes, strips
 * ";params" before resolving dots, or applies Unicode compatibility
 * normalisation. The tool's URL carries its credential, so any of those
 * would let the model reach another endpoint with it.
 *
 * So a path value is refused when it, or what it decodes to after one or
 * more rounds of percent-decoding, is empty, "." or ".." (also before a
 * ";"), or contains "/", "\", a control character, bytes that are not
 * UTF-8 (overlong forms like %c0%ae) or a character that NFKC turns into a
 * dot or a slash. A value still changing after TOOL_URL_MAX_DECODES rounds
 * is refused too. And after the URL is built, its whole path is checked
 * for dot segments, which catches a template like "/{a}." filled with ".".
 *
 * Pure functions; unit-tested in tests/unit/tools/test_tools_url.c. */
#include "tools/tools.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

#define TOOL_URL_MAX_DECODES 8

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One round of percent-decoding in place; returns the new length. *changed
 * says whether any %XY was decoded. A '%' not followed by two hex digits
 * stays as it is (servers differ on it; it cannot form a dot or slash). */
static size_t pct_decode_once(char *s, size_t n, bool *changed)
{
    size_t j = 0;
    *changed = false;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)s[i + 2])) >= 0) {
            s[j++] = (char)(hi << 4 | lo);
            i += 2;
            *changed = true;
        } else {
            s[j++] = s[i];
        }
    }
    return j;
}

/* Code points whose NFKC form contains ".", "/" or "\" in a way that can
 * make a dot segment or a separator: ONE and TWO DOT LEADER, the vertical
 * two dot leader, SMALL and FULLWIDTH FULL STOP, ACCOUNT OF (a/c),
 * ADDRESSED TO THE SUBJECT (a/s), CARE OF (c/o), CADA UNA (c/u), SMALL and
 * FULLWIDTH REVERSE SOLIDUS, FULLWIDTH SOLIDUS. (The ellipsis, three dots,
 * and "1." style numbers cannot form a dot segment.) */
static bool is_normalising_lookalike(uint32_t cp)
{
    static const uint32_t list[] = {0x2024, 0x2025, 0xFE30, 0xFE52, 0xFF0E, 0x2100, 0x2101,
                                    0x2105, 0x2106, 0xFE68, 0xFF0F, 0xFF3C};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        if (list[i] == cp) return true;
    return false;
}

/* Is s[0..n) (one segment, no decoding) a dot segment: "." or "..", also
 * when followed by ";params" (which some servers strip before resolving)? */
static bool is_dot_segment(const char *s, size_t n)
{
    const char *semi = memchr(s, ';', n);
    if (semi) n = (size_t)(semi - s);
    return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

/* One layer of a path value: the checks that do not depend on decoding. */
static const char *layer_problem(const char *s, size_t n)
{
    if (n == 0) return "it is empty";
    if (is_dot_segment(s, n)) return "it is \".\" or \"..\", which would move to another path";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/') return "it contains \"/\", which would add path segments";
        if (c == '\\') return "it contains \"\\\", which some servers treat as \"/\"";
        if (c < 0x20 || c == 0x7f) return "it contains a control character";
    }
    if (!utf8_valid(s, n)) return "it is not valid UTF-8 once percent-decoded";
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t len;
        if (c < 0x80) { cp = c; len = 1; }
        else if (c < 0xE0) { cp = c & 0x1F; len = 2; }
        else if (c < 0xF0) { cp = c & 0x0F; len = 3; }
        else { cp = c & 0x07; len = 4; }
        for (size_t k = 1; k < len; k++) cp = cp << 6 | ((unsigned char)s[i + k] & 0x3F);
        if (is_normalising_lookalike(cp))
            return "it contains a character that Unicode normalisation turns into \".\" or "
                   "\"/\"";
        i += len;
    }
    return NULL;
}

bool tools_url_path_value_ok(const char *value, size_t len, char *why, size_t whylen)
{
    char *s = malloc(len + 1);
    if (!s) {
        snprintf(why, whylen, "out of memory");
        return false;
    }
    memcpy(s, value, len);
    size_t n = len;
    const char *problem = layer_problem(s, n);
    bool decoded = false;
    for (int round = 0; !problem; round++) {
        bool changed;
        n = pct_decode_once(s, n, &changed);
        if (!changed) break;
        if (round == TOOL_URL_MAX_DECODES) {
            problem = "it is percent-encoded too many times over";
            decoded = false;
            break;
        }
        decoded = true;
        problem = layer_problem(s, n);
    }
    free(s);
    if (problem) {
        /* Say when it was the decoded form: the model sent it encoded. */
        snprintf(why, whylen, "%s%s", problem, decoded ? " (once percent-decoded)" : "");
        return false;
    }
    return true;
}

bool tools_url_path_ok(const char *path, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && path[i] == '/') i++;
        size_t start = i;
        while (i < len && path[i] != '/') i++;
        size_t n = i - start;
        if (n == 0) continue;
        char *seg = malloc(n);
        if (!seg) return false;
        memcpy(seg, path + start, n);
        bool bad = is_dot_segment(seg, n);
        /* One round more than a value may take: encoding it into the path
         * added one (found by fuzz_tool_url). */
        int max_rounds = TOOL_URL_MAX_DECODES + 1;
        for (int round = 0; !bad && round <= max_rounds; round++) {
            bool changed;
            n = pct_decode_once(seg, n, &changed);
            if (!changed) break;
            /* A segment that decodes to contain a slash or backslash is
             * checked piece by piece too: "%2e%2e%2fx" is "../x". */
            for (size_t k = 0, from = 0; k <= n && !bad; k++)
                if (k == n || seg[k] == '/' || seg[k] == '\\') {
                    bad = is_dot_segment(seg + from, k - from);
                    from = k + 1;
                }
            if (round == max_rounds) bad = true;
        }
        free(seg);
        if (bad) return false;
    }
    return true;
}
