/* traceparent.c — W3C Trace Context: parsing and formatting the
 * `traceparent` header, and making new trace and span ids.
 *
 * Parsing is strict (version 00 only, lower-case hex, non-zero ids, exact
 * length): a header we do not fully understand must not be continued, since
 * a half-parsed id would join unrelated requests into one trace. The caller
 * starts a new trace instead, as the spec asks. */
#include "obs/obs_internal.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "util/ids.h"

static int obs_hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;   /* upper case is invalid in traceparent */
}

/* n bytes from 2n lower-case hex digits; false on any other character. */
static bool obs_unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = obs_hexval(s[2 * i]), lo = obs_hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool obs_all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

bool obs_traceparent_parse(const char *h, obs_trace_ctx *out)
{
    if (!h || strlen(h) != OBS_TRACEPARENT_LEN) return false;
    if (h[0] != '0' || h[1] != '0' || h[2] != '-' || h[35] != '-' || h[52] != '-') return false;
    obs_trace_ctx c;
    uint8_t flags;
    if (!obs_unhex(h + 3, c.trace_id, 16) || !obs_unhex(h + 36, c.span_id, 8) ||
        !obs_unhex(h + 53, &flags, 1))
        return false;
    if (obs_all_zero(c.trace_id, 16) || obs_all_zero(c.span_id, 8)) return false;
    c.flags = flags;
    c.made_here = false;   /* whatever its bits say: a client chose it */
    *out = c;
    return true;
}

void obs_traceparent_format(const obs_trace_ctx *c, char *out)
{
    char tid[33], sid[17], fl[3];
    ids_hex(tid, c->trace_id, 16);
    ids_hex(sid, c->span_id, 8);
    ids_hex(fl, &c->flags, 1);
    memcpy(out, "00-", 3);
    memcpy(out + 3, tid, 32);
    out[35] = '-';
    memcpy(out + 36, sid, 16);
    out[52] = '-';
    memcpy(out + 53, fl, 2);
    out[55] = '\0';
}

void obs_trace_id_hex(const obs_trace_ctx *c, char out[OBS_TRACE_ID_HEX])
{
    ids_hex(out, c->trace_id, 16);
}

bool obs_trace_id_valid(const char *hex)
{
    uint8_t id[16];
    return hex && strlen(hex) == 32 && obs_unhex(hex, id, 16) && !obs_all_zero(id, 16);
}

/* Ids come from a per-thread generator seeded from the kernel once: a
 * getrandom(2) call for every span would be the costliest part of a span.
 * Span ids grant nothing and select nothing, so they need to be unique,
 * not secret (a new trace id's random part is hashed: obs_trace_id_new).
 * splitmix64 has no zero state to fall into. */
static _Thread_local uint64_t obs_rng_state;
static _Thread_local bool obs_rng_seeded;

static uint64_t obs_rng_next(void)
{
    if (!obs_rng_seeded) {
        ids_random_bytes(&obs_rng_state, sizeof obs_rng_state);
        obs_rng_seeded = true;
    }
    uint64_t z = (obs_rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void obs_random_id(uint8_t *out, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = obs_rng_next();
            memcpy(out + i, &v, n - i < 8 ? n - i : 8);
        }
    } while (obs_all_zero(out, n));
}

/* Parts per 2^32 of new traces that are sampled; 2^32 = all. */
static _Atomic uint64_t obs_sample_threshold = (uint64_t)1 << 32;

void obs_set_sample_ratio(double ratio)
{
    if (!(ratio >= 0)) ratio = 0;       /* NaN too */
    if (ratio > 1) ratio = 1;
    obs_sample_threshold = (uint64_t)(ratio * 4294967296.0);
}

/* A new trace id begins with the time it was made: 48 bits of Unix
 * milliseconds, big-endian (as a UUIDv7 does; AWS X-Ray ids carry their
 * time the same way), then 80 random bits. The store indexes traces by id
 * (store_traces.c); random ids put each new trace, and each one retention
 * later deletes, on a random page of that index, so a group commit of a
 * thousand traces rewrote some eight hundred index pages. Ids that grow
 * with time append to the index's last pages instead, and retention
 * removes from its first. The right-most 7 bytes stay random, as W3C
 * Trace Context level 2 asks of a trace id that samplers read, and the
 * sampling decision below reads them. Ids that clients send are kept as
 * they are.
 *
 * Those 80 bits must not be predictable, unlike span ids: a read shows a
 * trace only if every row of it is the caller's, and anyone may put spans
 * into a trace id they name in `traceparent` — so a user who could work
 * out the ids the server will give other users' requests (splitmix64's
 * output reveals its state) could hide their traces from them. They are a
 * keyed hash (SipHash, a key drawn once per process) of the generator's
 * next number: one hash per trace, ~60 ns. */
static unsigned char obs_trace_key[crypto_shorthash_siphashx24_KEYBYTES];
static pthread_once_t obs_trace_key_once = PTHREAD_ONCE_INIT;

static void obs_trace_key_make(void) { ids_random_bytes(obs_trace_key, sizeof obs_trace_key); }

static void obs_trace_id_new(uint8_t id[16])
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
    for (int i = 0; i < 6; i++) id[i] = (uint8_t)(ms >> (8 * (5 - i)));
    pthread_once(&obs_trace_key_once, obs_trace_key_make);
    uint64_t n = obs_rng_next();
    unsigned char h[crypto_shorthash_siphashx24_BYTES];
    crypto_shorthash_siphashx24(h, (const unsigned char *)&n, sizeof n, obs_trace_key);
    memcpy(id + 6, h, 10);
}

void obs_trace_ctx_new(obs_trace_ctx *out)
{
    obs_trace_id_new(out->trace_id);
    out->made_here = true;
    obs_random_id(out->span_id, 8);
    /* The decision comes from the trace id's own random bits, so it is the
     * same wherever the id is seen. */
    uint32_t r = (uint32_t)out->trace_id[12] << 24 | (uint32_t)out->trace_id[13] << 16 |
                 (uint32_t)out->trace_id[14] << 8 | out->trace_id[15];
    out->flags = (uint64_t)r < obs_sample_threshold ? 1 : 0;
}
