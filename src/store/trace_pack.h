/* trace_pack.h — several traces of one owner in one stored row.
 *
 * A trace row costs the SQLite writer ~12 000 instructions whatever its
 * size: the row's B-tree insert (a ~700-byte row splits a 4 KB page every
 * few inserts), its entry in the trace-id index, the statement's setup and
 * halt. At one row per request that was over half of what tracing every
 * request cost (docs/benchmarks.md, session 10). A pack holds up to
 * TRACE_PACK_MAX_TRACES traces of one owner whose ids were made by this
 * server within one TRACE_PACK_WINDOW_MS window, as one row: per trace,
 * only its bytes are left to write.
 *
 * Finding a packed trace without an index entry of its own: an id made
 * here begins with its creation time (48 bits of Unix ms, traceparent.c),
 * so a read of trace id T looks at the packs of T's window, and at T's
 * own rows by the index as before (store_traces.c). Only ids this server
 * made are packed: their windows hold what the server really served in
 * 10 ms, whereas ids a client sends could name any window, and a client
 * could pile packs into one window to slow down the reads of whoever's
 * trace falls in it. A read goes through every pack of its window, so the
 * window is short: at 17 000 requests a second a 10 ms window holds ~170
 * traces (~100 KB), and a tracer flush (every ~250 ms) still fills each
 * of an owner's packs with that owner's part of them.
 *
 * Layout (integers little-endian): "BTK" 0x01, then entries:
 *   trace_id[16] (binary) i64 start_ns i64 end_ns u8 status u32 span_count
 *   u8 root_len root_name u32 blob_len blob
 * Each entry's blob is a trace row's blob (src/obs/span_codec.h), which
 * the store still never opens. Lengths are checked when reading, so a
 * corrupt pack yields an error, never a read past its end.
 *
 * Stored compressed: "BTK" 0x02, u32 entries_len, then the entries (as
 * above, without the first four bytes) as one LZ4 block. An owner's
 * traces of one window repeat their names, attribute keys, model and
 * route, so a pack shrinks ~3×; at saturation brigade wrote 3.8 KB to
 * disk a request (the pack, the WAL checkpoint's copy of it, and
 * secure_delete's zeroing when it is pruned) and 1.6 KB with LZ4, for
 * a few per cent less CPU a request (docs/benchmarks.md, session 11). LZ4 rather
 * than zstd: zstd -1 shrinks ~4.4× but compresses at a third of LZ4's
 * speed, on the writer's thread. A small pack, or one that LZ4 does not
 * shrink, is stored as 0x01. Reading decompresses into a buffer of the stated size,
 * at most TRACE_PACK_READ_MAX_BYTES, with LZ4's bounds-checked decoder,
 * and a stated size the block does not fill exactly is corrupt. */
#ifndef BRIGADE_TRACE_PACK_H
#define BRIGADE_TRACE_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lz4.h>

#include "store/store.h"
#include "util/buf.h"

#define TRACE_PACK_WINDOW_MS 10
#define TRACE_PACK_MAX_TRACES 256
#define TRACE_PACK_MAX_BYTES (256u << 10)
/* The largest entries_len a compressed pack may state: four times what
 * this server packs, so a lower TRACE_PACK_MAX_BYTES later still reads
 * what was written before it; past it the pack is corrupt. */
#define TRACE_PACK_READ_MAX_BYTES (4 * TRACE_PACK_MAX_BYTES)

/* The window of a trace id: its first 48 bits (Unix ms, for an id made
 * here) / TRACE_PACK_WINDOW_MS, plus one, so that 0 means "none". 0 for
 * anything but 32 lower-case hex digits. */
int64_t trace_pack_window(const char *trace_id_hex);

/* The bytes r adds to a pack (its blob and columns). */
size_t trace_pack_entry_size(const trace_rec *r);
void trace_pack_begin(buf *b);
void trace_pack_add(buf *b, const trace_rec *r);
/* Packs smaller than this are stored plain: at light load a pack holds
 * two or three traces, LZ4 shrinks it less, and compressing it cost the
 * writer more (~6 000 instructions a request at c=1) than the bytes saved. */
#define TRACE_PACK_SEAL_MIN_BYTES 4096

/* What compresses a writer's packs: LZ4's state, set up once and reset
 * cheaply for each pack (a fresh state clears 16 KB), and the output. */
typedef struct trace_pack_sealer {
    LZ4_stream_t lz;
    buf out;
} trace_pack_sealer;
void trace_pack_sealer_init(trace_pack_sealer *s);
void trace_pack_sealer_free(trace_pack_sealer *s);

/* The bytes to store for the pack in b (begun and added to): b's entries
 * LZ4-compressed into s->out, or b itself when b is under
 * TRACE_PACK_SEAL_MIN_BYTES or compressing would not make it smaller.
 * Sets *out and returns its length; *out points into b or s->out. */
size_t trace_pack_seal(trace_pack_sealer *s, const buf *b, const void **out);

typedef struct trace_pack_reader {
    const uint8_t *p;
    size_t len, off;
    uint8_t *own;                 /* a compressed pack's entries, decompressed */
} trace_pack_reader;

/* -1 when blob is not a pack, or is a compressed one that does not
 * decompress to its stated size (or memory is short). A reader that
 * opened must be closed. */
int trace_pack_open(trace_pack_reader *r, const void *blob, size_t len);
void trace_pack_close(trace_pack_reader *r);
/* The next entry into *out: its trace id, times, root name, status, span
 * count, and blob (pointing into the pack: valid while it and the reader
 * are open). tenant_id
 * and user_id are left as they were (they are the row's). 1, 0 at the
 * end, -1 when the pack is corrupt. */
int trace_pack_next(trace_pack_reader *r, trace_rec *out);

#endif
