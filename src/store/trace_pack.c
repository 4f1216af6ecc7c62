/* trace_pack.c — several traces of one owner in one stored row: the
 * format (trace_pack.h says why and how it is found again). */
#include "store/trace_pack.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "util/ids.h"

static const uint8_t pack_magic[4] = {'B', 'T', 'K', 0x01};
static const uint8_t sealed_magic[4] = {'B', 'T', 'K', 0x02};
#define SEALED_HEADER 8   /* the magic, u32 entries_len */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static bool trace_id_bytes(const char *hex, uint8_t out[16])
{
    for (int i = 0; i < 16; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hi < 0 ? -1 : hex_digit(hex[2 * i + 1]);
        if (lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return hex[32] == '\0';
}

int64_t trace_pack_window(const char *hex)
{
    uint8_t id[16];
    if (!hex || !trace_id_bytes(hex, id)) return 0;
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++) ms = ms << 8 | id[i];
    return (int64_t)(ms / TRACE_PACK_WINDOW_MS) + 1;
}

static size_t root_len(const trace_rec *r) { return strnlen(r->root_name, sizeof r->root_name - 1); }

size_t trace_pack_entry_size(const trace_rec *r)
{
    return 16 + 8 + 8 + 1 + 4 + 1 + root_len(r) + 4 + r->blob_len;
}

void trace_pack_begin(buf *b) { buf_append(b, pack_magic, sizeof pack_magic); }

static void put_le(buf *b, uint64_t v, int bytes)
{
    uint8_t o[8];
    for (int i = 0; i < bytes; i++) o[i] = (uint8_t)(v >> (8 * i));
    buf_append(b, o, (size_t)bytes);
}

void trace_pack_add(buf *b, const trace_rec *r)
{
    uint8_t id[16];
    if (!trace_id_bytes(r->trace_id, id)) memset(id, 0, sizeof id);   /* callers pack valid ids only */
    size_t rl = root_len(r);
    buf_reserve(b, trace_pack_entry_size(r));
    buf_append(b, id, sizeof id);
    put_le(b, (uint64_t)r->start_ns, 8);
    put_le(b, (uint64_t)r->end_ns, 8);
    put_le(b, (uint64_t)(r->status & 0xff), 1);
    put_le(b, r->span_count, 4);
    put_le(b, rl, 1);
    buf_append(b, r->root_name, rl);
    put_le(b, r->blob_len, 4);
    buf_append(b, r->blob, r->blob_len);
}

static uint64_t get_le(const uint8_t *p, int bytes);

void trace_pack_sealer_init(trace_pack_sealer *s)
{
    LZ4_initStream(&s->lz, sizeof s->lz);
    buf_init(&s->out);
}

void trace_pack_sealer_free(trace_pack_sealer *s) { buf_free(&s->out); }

size_t trace_pack_seal(trace_pack_sealer *s, const buf *b, const void **out)
{
    *out = b->data;
    if (b->len < TRACE_PACK_SEAL_MIN_BYTES || b->len - sizeof pack_magic > TRACE_PACK_READ_MAX_BYTES)
        return b->len;
    int raw = (int)(b->len - sizeof pack_magic);
    int bound = LZ4_compressBound(raw);
    if (bound <= 0) return b->len;
    buf *z = &s->out;
    z->len = 0;
    buf_reserve(z, SEALED_HEADER + (size_t)bound);
    uint8_t *p = (uint8_t *)z->data;
    memcpy(p, sealed_magic, sizeof sealed_magic);
    for (int i = 0; i < 4; i++) p[4 + i] = (uint8_t)((uint32_t)raw >> (8 * i));
    /* The first block after a reset has no dictionary: a block on its own,
     * which LZ4_decompress_safe reads. */
    LZ4_resetStream_fast(&s->lz);
    int n = LZ4_compress_fast_continue(&s->lz, b->data + sizeof pack_magic, (char *)p + SEALED_HEADER, raw,
                                       bound, 1);
    if (n <= 0 || SEALED_HEADER + (size_t)n >= b->len) return b->len;
    z->len = SEALED_HEADER + (size_t)n;
    *out = z->data;
    return z->len;
}

int trace_pack_open(trace_pack_reader *r, const void *blob, size_t len)
{
    memset(r, 0, sizeof *r);
    if (!blob || len < sizeof pack_magic) return -1;
    if (memcmp(blob, pack_magic, sizeof pack_magic) == 0) {
        r->p = blob;
        r->len = len;
        r->off = sizeof pack_magic;
        return 0;
    }
    if (memcmp(blob, sealed_magic, sizeof sealed_magic) != 0 || len <= SEALED_HEADER ||
        len - SEALED_HEADER > INT_MAX)
        return -1;
    uint64_t raw = get_le((const uint8_t *)blob + 4, 4);
    if (raw == 0 || raw > TRACE_PACK_READ_MAX_BYTES) return -1;
    r->own = malloc((size_t)raw);
    if (!r->own) return -1;
    /* LZ4's safe decoder never writes past raw nor reads past the block;
     * a block that does not fill exactly the stated size is corrupt. */
    int got = LZ4_decompress_safe((const char *)blob + SEALED_HEADER, (char *)r->own,
                                  (int)(len - SEALED_HEADER), (int)raw);
    if (got < 0 || (uint64_t)got != raw) {
        trace_pack_close(r);
        return -1;
    }
    r->p = r->own;
    r->len = (size_t)raw;
    r->off = 0;
    return 0;
}

void trace_pack_close(trace_pack_reader *r)
{
    free(r->own);
    memset(r, 0, sizeof *r);
}

static bool take(trace_pack_reader *r, size_t n, const uint8_t **at)
{
    if (r->len - r->off < n) return false;
    *at = r->p + r->off;
    r->off += n;
    return true;
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int trace_pack_next(trace_pack_reader *r, trace_rec *out)
{
    if (r->off == r->len) return 0;
    const uint8_t *fixed, *root, *lenp, *blob;
    if (!take(r, 16 + 8 + 8 + 1 + 4 + 1, &fixed)) return -1;
    size_t rl = fixed[37];
    if (rl >= sizeof out->root_name || !take(r, rl, &root) || !take(r, 4, &lenp)) return -1;
    uint64_t bl = get_le(lenp, 4);
    if (!take(r, (size_t)bl, &blob)) return -1;
    uint32_t spans = (uint32_t)get_le(fixed + 33, 4);
    if (!spans) return -1;   /* a row holds at least one span */
    ids_hex(out->trace_id, fixed, 16);
    out->start_ns = (int64_t)get_le(fixed + 16, 8);
    out->end_ns = (int64_t)get_le(fixed + 24, 8);
    out->status = fixed[32];
    out->span_count = spans;
    memcpy(out->root_name, root, rl);
    out->root_name[rl] = '\0';
    out->blob = (unsigned char *)blob;
    out->blob_len = (size_t)bl;
    return 1;
}
