/* hmac.h — HMAC-SHA256 over a SHA-256 fetched once (keys.c), shared by key
 * hashing and HS256 JWT checks. OpenSSL 3's one-shot HMAC() looks the
 * algorithm up on every call (~3 µs and a global lock). Private to
 * src/identity/. */
#ifndef BRIGADE_IDENTITY_HMAC_H
#define BRIGADE_IDENTITY_HMAC_H

#include <stdbool.h>
#include <stddef.h>

bool identity_hmac_sha256(const unsigned char *secret, size_t secret_len, const void *msg,
                          size_t msg_len, unsigned char mac[32]);

/* A key whose padded blocks are hashed once: the digest states after
 * key^ipad and key^opad. Every request's key hash is an HMAC under the same
 * server secret, so preparing it at start saves two SHA-256 blocks and two
 * digest initialisations per request. Read-only once made: any number of
 * threads may use it at once. */
typedef struct identity_hmac_key identity_hmac_key;

identity_hmac_key *identity_hmac_key_new(const unsigned char *secret, size_t secret_len);
void identity_hmac_key_free(identity_hmac_key *k);   /* NULL is fine */
/* Same result as identity_hmac_sha256 with the key's secret. */
bool identity_hmac_sha256_with(const identity_hmac_key *k, const void *msg, size_t msg_len,
                               unsigned char mac[32]);

#endif
