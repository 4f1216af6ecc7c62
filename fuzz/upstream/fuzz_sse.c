/* fuzz_sse.c — libFuzzer target for the incremental SSE parser that reads
 * provider streams (src/upstream/net/upstream_sse.c).
 *
 * A provider's bytes reach the parser in pieces cut wherever TCP and curl
 * happen to cut them, so the harness cuts the input too: the first byte
 * seeds the piece sizes, the second picks the event cap and whether the
 * consumer pauses between events (backpressure). What is checked:
 *   - no sanitizer report, whatever the bytes and the cuts;
 *   - every delivered event is within the cap;
 *   - the events are exactly those of an independent, whole-buffer
 *     reference parser written here from the SSE rules, so where the input
 *     is cut never changes what is delivered. An early error (-1) is only
 *     allowed when the input really has a line or event over the cap. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/net/net.h"

/* ---- reference: the SSE rules applied to the whole input at once ---- */

typedef struct ref_event { size_t off, len; } ref_event;   /* into ref_out */

typedef struct ref_result {
    char      *out;         /* all event payloads back to back */
    size_t     out_len;
    ref_event *ev;
    size_t     n_ev;
    bool       error;       /* an event over the cap: parsing stops there */
    size_t     max_line;    /* the longest line (complete or not), in bytes */
} ref_result;

static void ref_parse(const uint8_t *d, size_t n, size_t cap, ref_result *r)
{
    memset(r, 0, sizeof *r);
    r->out = malloc(n + 1);
    r->ev = malloc((n + 1) * sizeof *r->ev);   /* at most one event per two bytes */
    if (!r->out || !r->ev) abort();
    size_t cur_off = 0, cur_len = 0;   /* the event being built, in out */
    bool has = false;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && d[j] != '\n' && d[j] != '\r') j++;
        size_t llen = j - i;
        if (llen > r->max_line) r->max_line = llen;
        if (j == n) break;                                  /* unfinished line */
        if (d[j] == '\r' && j + 1 == n) break;              /* "\r", "\n" may follow */
        size_t next = j + 1 + (d[j] == '\r' && d[j + 1] == '\n');
        const uint8_t *line = d + i;
        i = next;
        if (llen == 0) {
            if (has) {
                r->ev[r->n_ev].off = cur_off;
                r->ev[r->n_ev].len = cur_len;
                r->n_ev++;
                cur_off += cur_len;
                cur_len = 0;
                has = false;
            }
            continue;
        }
        if (line[0] == ':') continue;
        const uint8_t *v = NULL;
        size_t vlen = 0;
        if (llen >= 5 && memcmp(line, "data:", 5) == 0) {
            v = line + 5;
            vlen = llen - 5;
            if (vlen && v[0] == ' ') { v++; vlen--; }
        } else if (llen == 4 && memcmp(line, "data", 4) == 0) {
            v = line;   /* empty value */
        } else {
            continue;   /* event:, id:, retry:, unknown fields */
        }
        size_t sep = has ? 1 : 0;
        if (cur_len + sep + vlen > cap) { r->error = true; return; }
        if (sep) r->out[cur_off + cur_len++] = '\n';
        memcpy(r->out + cur_off + cur_len, v, vlen);
        cur_len += vlen;
        has = true;
    }
    /* an unfinished line over the cap is an error too (at the end of input) */
    size_t tail = n - i;
    if (tail > cap && !memchr(d + i, '\n', tail) && !memchr(d + i, '\r', tail)) r->error = true;
}

static void ref_free(ref_result *r) { free(r->out); free(r->ev); }

/* ---- the harness ---- */

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    uint32_t seed = 0x9e3779b9u ^ ((uint32_t)data[0] * 0x01010101u);
    if (seed == 0) seed = 1;
    static const size_t caps[4] = { 8, 64, 4096, UPSTREAM_MAX_EVENT };
    size_t cap = caps[data[1] & 3];
    bool pause = data[1] & 4;            /* stop after each event, feed more later */
    unsigned piece_max = 1u << (((data[1] >> 3) & 7) + 1);   /* 2 … 256 bytes */
    const uint8_t *in = data + 2;
    size_t n = size - 2;

    ref_result ref;
    ref_parse(in, n, cap, &ref);

    upstream_sse s;
    upstream_sse_init(&s, cap);
    size_t fed = 0, got = 0;
    bool failed = false;
    while (!failed) {
        /* Drain (all events, or one if pausing), then feed the next piece. */
        for (;;) {
            const char *ev;
            size_t len;
            int r = upstream_sse_next(&s, &ev, &len);
            if (r == 0) break;
            if (r < 0) { failed = true; break; }
            if (r != 1) abort();
            if (len > cap) abort();                       /* over the cap */
            if (got >= ref.n_ev) abort();                 /* an event the rules do not give */
            if (len != ref.ev[got].len ||
                (len && memcmp(ev, ref.out + ref.ev[got].off, len) != 0))
                abort();                                  /* different payload */
            got++;
            if (pause) break;
        }
        if (failed) break;
        if (fed == n) {
            /* Everything fed: drain what the pauses left, then stop. */
            const char *ev;
            size_t len;
            int r;
            while ((r = upstream_sse_next(&s, &ev, &len)) == 1) {
                if (len > cap || got >= ref.n_ev) abort();
                if (len != ref.ev[got].len ||
                    (len && memcmp(ev, ref.out + ref.ev[got].off, len) != 0))
                    abort();
                got++;
            }
            if (r < 0) failed = true;
            break;
        }
        size_t piece = 1 + rng_next(&seed) % piece_max;
        if (piece > n - fed) piece = n - fed;
        /* Copy the piece to its own allocation so a read past it is caught. */
        char *p = malloc(piece);
        if (!p) abort();
        memcpy(p, in + fed, piece);
        upstream_sse_feed(&s, p, piece);
        free(p);
        fed += piece;
    }

    if (failed) {
        /* Allowed only when a line or an event really is over the cap. */
        if (!ref.error && ref.max_line <= cap) abort();
    } else {
        if (ref.error) abort();                           /* missed an over-cap event */
        if (got != ref.n_ev) abort();                     /* lost events */
    }
    upstream_sse_free(&s);
    ref_free(&ref);
    return 0;
}
