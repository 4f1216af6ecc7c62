/* fuzz_pii.c — the PII scanner (util/pii.h) on any bytes. Checks that
 * nothing crashes or reads outside the input, that matches are in order,
 * inside the input, never overlapping and never empty, that redaction
 * into a small buffer never writes past it and agrees with the full copy,
 * and that the full copy is as long as the text with each match replaced.
 * (Redacting twice is not always the same as once: a match rejected
 * because of what followed it, "a@b.io(2…", may stand alone once the
 * "(2…" became "([EMAIL]"; each pass is complete on its own text.) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/pii.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    /* an exact-size copy: ASan sees any read past the end */
    char *t = malloc(size ? size : 1);
    memcpy(t, data, size);
    size_t pos = 0, last_end = 0, n = 0;
    pii_span sp;
    while (pii_next(t, size, &pos, &sp)) {
        if (sp.start < last_end || sp.end <= sp.start || sp.end > size || pos != sp.end ||
            (unsigned)sp.kind >= PII__KINDS)
            abort();
        last_end = sp.end;
        n++;
    }
    unsigned kinds = 0;
    char *full = pii_redact_dup(t, size, &kinds);
    if ((full == NULL) != (n == 0) || (n == 0) != (kinds == 0)) abort();
    if (full) {
        /* the same text, cut: a prefix of the full copy */
        size_t cap = size / 2 + 1;
        char *small = malloc(cap);
        size_t w = pii_redact_into(t, size, small, cap, NULL);
        if (w >= cap || small[w] != '\0' || memcmp(small, full, w) != 0) abort();
        free(small);
        size_t want = size;
        pos = 0;
        while (pii_next(t, size, &pos, &sp))
            want += strlen(pii_kind_token(sp.kind)) - (sp.end - sp.start);
        if (memchr(t, 0, size) == NULL && strlen(full) != want) abort();
        free(full);
    }
    free(t);
    return 0;
}
