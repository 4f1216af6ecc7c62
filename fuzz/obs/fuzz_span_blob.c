/* fuzz_span_blob.c — the decoder of stored spans (src/obs/span_codec.c):
 * any bytes, as a corrupted database row would hand them over, must decode
 * to spans within their bounds or to an error, never a read past the blob. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "obs/span_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy: the sanitizer sees a read one past it */
    uint8_t *p = malloc(size ? size : 1);
    if (!p) return 0;
    if (size) memcpy(p, data, size);
    static obs_span_view v;
    obs_blob_reader r;
    if (obs_blob_open(&r, p, size) == 0) {
        buf b;
        buf_init(&b);
        while (obs_blob_next(&r, &v) == 1) {
            if (strlen(v.name) >= sizeof v.name || v.n_attrs > OBS_SPAN_ATTRS_MAX) abort();
            b.len = 0;
            obs_span_view_attrs_json(&b, &v);
        }
        buf_free(&b);
    }
    free(p);
    return 0;
}
