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

#endif
