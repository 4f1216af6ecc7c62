/* fuzz_trace_pack.c — the reader of trace packs (src/store/trace_pack.c),
 * compressed or not: any bytes, as a corrupted database row would hand
 * them over, must give entries within their bounds or an error, never a
 * read or write past a buffer (LZ4's decoder included). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/trace_pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy: the sanitizer sees a read one past it */
    uint8_t *p = malloc(size ? size : 1);
    if (!p) return 0;
    if (size) memcpy(p, data, size);
    trace_pack_reader r;
    if (trace_pack_open(&r, p, size) == 0) {
        trace_rec e;
        while (trace_pack_next(&r, &e) == 1) {
            if (strlen(e.trace_id) != 32 || strlen(e.root_name) >= sizeof e.root_name || !e.span_count) abort();
            /* every byte of the blob is inside the pack: ASan checks the copy */
            uint8_t *copy = malloc(e.blob_len ? e.blob_len : 1);
            if (!copy) abort();
            memcpy(copy, e.blob, e.blob_len);
            free(copy);
        }
        trace_pack_close(&r);
    }
    free(p);
    return 0;
}
