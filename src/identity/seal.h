/* seal.h — tenants' JWT keys sealed under the server secret, so that a copy
 * of the database does not hand out the HS256 secrets that sign users in.
 *
 * XChaCha20-Poly1305 (libsodium AEAD) under a key derived from the server
 * secret (data_dir/secret) with crypto_kdf, a context of its own, so it is
 * never the key the key hashes use. The associated data binds the tenant id
 * and the algorithm: a sealed key copied into another tenant's row, or the
 * same row with its `alg` changed (an RS256 public key turned into an HS256
 * secret), does not open. Stored form: "sealed:v1:" + base64url(nonce ||
 * ciphertext). Private to src/identity/. */
#ifndef BRIGADE_IDENTITY_SEAL_H
#define BRIGADE_IDENTITY_SEAL_H

#include <stdbool.h>
#include <stddef.h>

#define SEAL_KEY_LEN 32
#define SEAL_PREFIX "sealed:v1:"

/* The sealing key from the 32-byte server secret. 0, or -1 if libsodium
 * cannot start. */
int  seal_derive_key(const unsigned char server_secret[32], unsigned char key[SEAL_KEY_LEN]);

/* True if text has the sealed form's prefix (it may still fail to open). */
bool seal_is_sealed(const char *text);

/* Seal plain[0..len) for (tenant_id, alg): a malloc'd NUL-terminated
 * string, or NULL (out of memory). */
char *seal_jwt_key(const unsigned char key[SEAL_KEY_LEN], const char *tenant_id, const char *alg,
                   const char *plain, size_t len);

/* Open a sealed key: a malloc'd NUL-terminated plaintext in *plain_out, or
 * -1 if it is not sealed, was altered, or belongs to another tenant or
 * algorithm (or another server secret). */
int seal_open_jwt_key(const unsigned char key[SEAL_KEY_LEN], const char *tenant_id, const char *alg,
                      const char *sealed, char **plain_out);

#endif
