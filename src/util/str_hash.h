/* str_hash.h — the seeded string hash of the tables that take keys from
 * clients (strmap.c, the repeated-key check of json_strict.c).
 *
 * Seeded because a fixed hash lets a client choose keys that all land in
 * one slot: a request body of ~100 000 such keys made the repeated-key
 * check probe n²/2 times, seconds of a loop thread for one request. With
 * a random seed the slot of a key is not known outside the process.
 * Eight bytes a step: the keys on the request path (ids, credential MACs,
 * "t/<tenant>/<user>") are 30 to 70 bytes, and hashing them a byte at a
 * time was most of every lookup. */
#ifndef BRIGADE_STR_HASH_H
#define BRIGADE_STR_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t str_hash_seeded(const char *key, size_t n, uint64_t seed)
{
    uint64_t h = (0xcbf29ce484222325ull ^ seed) + n;
    const unsigned char *p = (const unsigned char *)key;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    /* final avalanche so the low bits (the slot) depend on every byte */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

#endif
