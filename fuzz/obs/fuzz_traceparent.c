/* fuzz_traceparent.c — libFuzzer target for the W3C `traceparent` header
 * parser (src/obs/traceparent.c): any client may send one, before
 * authentication, and a wrongly accepted one would join unrelated requests
 * into one trace.
 *
 * Invariants (abort() when broken):
 *   - a header is accepted only if it is exactly "00-" 32 lower-case hex "-"
 *     16 lower-case hex "-" 2 lower-case hex, with non-zero ids (checked
 *     independently here);
 *   - what is accepted formats back to the very same text;
 *   - a refused header leaves the output untouched;
 *   - obs_trace_id_valid agrees with the same rules for a bare trace id. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "obs/obs.h"

static bool fuzz_hex(const char *s, size_t n, bool *nonzero)
{
    *nonzero = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        if (c != '0') *nonzero = true;
    }
    return true;
}

static bool fuzz_expect_valid(const char *h, size_t len)
{
    if (len != OBS_TRACEPARENT_LEN) return false;
    if (memcmp(h, "00-", 3) != 0 || h[35] != '-' || h[52] != '-') return false;
    bool nz_trace, nz_span, nz_flags;
    return fuzz_hex(h + 3, 32, &nz_trace) && fuzz_hex(h + 36, 16, &nz_span) &&
           fuzz_hex(h + 53, 2, &nz_flags) && nz_trace && nz_span;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256) return 0;
    char *h = malloc(size + 1);
    if (!h) return 0;
    memcpy(h, data, size);
    h[size] = '\0';
    size_t len = strlen(h);                 /* a header value stops at NUL */

    obs_trace_ctx c, before;
    memset(&c, 0xA5, sizeof c);
    before = c;
    bool ok = obs_traceparent_parse(h, &c);
    if (ok != fuzz_expect_valid(h, len)) abort();
    if (ok) {
        char out[OBS_TRACEPARENT_LEN + 1];
        obs_traceparent_format(&c, out);
        if (strcmp(out, h) != 0) abort();
        char tid[OBS_TRACE_ID_HEX];
        obs_trace_id_hex(&c, tid);
        if (memcmp(tid, h + 3, 32) != 0 || !obs_trace_id_valid(tid)) abort();
    } else if (memcmp(&c, &before, sizeof c) != 0) {
        abort();
    }
    if (len == 32) {
        bool nz;
        bool want = fuzz_hex(h, 32, &nz) && nz;
        if (obs_trace_id_valid(h) != want) abort();
    }
    free(h);
    return 0;
}
