/* ids.c — random identifiers (see ids.h). Uses getrandom(2), which never
 * returns predictable bytes once the kernel pool is initialised. */
#include "util/ids.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/strfmt.h"

void ids_random_bytes(void *out, size_t n)
{
    unsigned char *p = out;
    while (n) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            abort();
        }
        p += r;
        n -= (size_t)r;
    }
}

void ids_hex(char *out, const void *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void ids_new(char out[ID_MAX], const char *prefix)
{
    unsigned char raw[12];
    char hex[25];
    ids_random_bytes(raw, sizeof raw);
    ids_hex(hex, raw, sizeof raw);
    str_join2(out, ID_MAX, prefix, '_', hex);
}

void ids_request_id(char out[33])
{
    unsigned char raw[16];
    ids_random_bytes(raw, sizeof raw);
    ids_hex(out, raw, sizeof raw);
}
