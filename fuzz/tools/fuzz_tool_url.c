/* fuzz_tool_url.c — libFuzzer target for what a model's argument may become
 * in a declared HTTP tool's URL path (src/tools/tool_url.c). The value is
 * chosen by the model, so by whoever wrote the text it read; the tool's URL
 * carries the tool's credential.
 *
 * Invariants (abort() when broken):
 *   - an accepted value, and everything it becomes after 1 to 9 rounds of
 *     percent-decoding (checked here with an independent decoder), is
 *     non-empty, not "." or ".." (also before a ";"), and holds no "/",
 *     "\" or control character;
 *   - an accepted value, percent-encoded into "/api/projects/X/tickets",
 *     gives a path tools_url_path_ok accepts;
 *   - a refused value comes with a reason;
 *   - tools_url_path_ok on any bytes returns (no crash, no overread). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/tools.h"

static int fuzz_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

/* One round of decoding into out (out may not alias s); returns length. */
static size_t fuzz_decode(const unsigned char *s, size_t n, unsigned char *out, bool *changed)
{
    size_t j = 0;
    *changed = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && fuzz_hex(s[i + 1]) >= 0 && fuzz_hex(s[i + 2]) >= 0) {
            out[j++] = (unsigned char)(fuzz_hex(s[i + 1]) << 4 | fuzz_hex(s[i + 2]));
            i += 2;
            *changed = true;
        } else {
            out[j++] = s[i];
        }
    }
    return j;
}

static void fuzz_check_layer(const unsigned char *s, size_t n)
{
    if (n == 0) abort();
    size_t m = n;
    const unsigned char *semi = memchr(s, ';', n);
    if (semi) m = (size_t)(semi - s);
    if ((m == 1 && s[0] == '.') || (m == 2 && s[0] == '.' && s[1] == '.')) abort();
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == '\\' || s[i] < 0x20 || s[i] == 0x7f) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char why[160] = "";
    bool ok = tools_url_path_value_ok((const char *)data, size, why, sizeof why);
    (void)tools_url_path_ok((const char *)data, size);
    if (!ok) {
        if (!why[0]) abort();
        return 0;
    }
    unsigned char *a = malloc(size + 1), *b = malloc(size + 1);
    if (!a || !b) abort();
    memcpy(a, data, size);
    size_t n = size;
    fuzz_check_layer(a, n);
    for (int round = 0; round < 9; round++) {
        bool changed;
        n = fuzz_decode(a, n, b, &changed);
        if (!changed) break;
        fuzz_check_layer(b, n);
        unsigned char *t = a; a = b; b = t;
    }
    free(a);
    free(b);
    /* the value encoded into a path, as tool_http.c does */
    static const char hex[] = "0123456789ABCDEF";
    char *path = malloc(size * 3 + 32);
    if (!path) abort();
    size_t j = 0;
    memcpy(path, "/api/projects/", 14);
    j = 14;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = data[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            path[j++] = (char)c;
        } else {
            path[j++] = '%';
            path[j++] = hex[c >> 4];
            path[j++] = hex[c & 15];
        }
    }
    memcpy(path + j, "/tickets", 8);
    j += 8;
    if (!tools_url_path_ok(path, j)) abort();
    free(path);
    return 0;
}
