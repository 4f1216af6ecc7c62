/* seal.c — sealing tenants' JWT keys under the server secret (see seal.h). */
#include "identity/seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "identity/b64url.h"

#define SEAL_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SEAL_MAX_PLAIN 65536         /* keys are at most 16 KiB (tenants.c) */
#define SEAL_KDF_ID 1
static const char seal_kdf_context[crypto_kdf_CONTEXTBYTES + 1] = "tjwtseal";

int seal_derive_key(const unsigned char server_secret[32], unsigned char key[SEAL_KEY_LEN])
{
    _Static_assert(crypto_kdf_KEYBYTES == 32, "the server secret is a crypto_kdf master key");
    _Static_assert(SEAL_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "AEAD key size");
    if (sodium_init() < 0) return -1;
    return crypto_kdf_derive_from_key(key, SEAL_KEY_LEN, SEAL_KDF_ID, seal_kdf_context,
                                      server_secret) == 0 ? 0 : -1;
}

bool seal_is_sealed(const char *text)
{
    return text && strncmp(text, SEAL_PREFIX, strlen(SEAL_PREFIX)) == 0;
}

/* "brigade tenant jwt key\0" tenant_id "\0" alg: the NULs keep the fields
 * apart, so no tenant id and algorithm pair spells another. */
static unsigned char *seal_ad(const char *tenant_id, const char *alg, size_t *len)
{
    static const char label[] = "brigade tenant jwt key";
    size_t tl = strlen(tenant_id), al = strlen(alg);
    *len = sizeof label + tl + 1 + al;
    unsigned char *ad = malloc(*len);
    if (!ad) return NULL;
    memcpy(ad, label, sizeof label);
    memcpy(ad + sizeof label, tenant_id, tl + 1);
    memcpy(ad + sizeof label + tl + 1, alg, al);
    return ad;
}

char *seal_jwt_key(const unsigned char key[SEAL_KEY_LEN], const char *tenant_id, const char *alg,
                   const char *plain, size_t len)
{
    if (!tenant_id || !alg || !plain || len > SEAL_MAX_PLAIN) return NULL;
    size_t adlen;
    unsigned char *ad = seal_ad(tenant_id, alg, &adlen);
    size_t rawlen = SEAL_NONCE + len + SEAL_TAG;
    unsigned char *raw = malloc(rawlen);
    size_t plen = strlen(SEAL_PREFIX);
    char *out = malloc(plen + b64url_encoded_len(rawlen) + 1);
    if (!ad || !raw || !out) {
        free(ad);
        free(raw);
        free(out);
        return NULL;
    }
    randombytes_buf(raw, SEAL_NONCE);   /* 192-bit random nonces: no counter to keep */
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(raw + SEAL_NONCE, &clen, (const unsigned char *)plain,
                                               len, ad, adlen, NULL, raw, key);
    memcpy(out, SEAL_PREFIX, plen);
    size_t n = b64url_encode(out + plen, raw, SEAL_NONCE + (size_t)clen);
    out[plen + n] = '\0';
    free(ad);
    free(raw);
    return out;
}

int seal_open_jwt_key(const unsigned char key[SEAL_KEY_LEN], const char *tenant_id, const char *alg,
                      const char *sealed, char **plain_out)
{
    *plain_out = NULL;
    if (!tenant_id || !alg || !seal_is_sealed(sealed)) return -1;
    const char *enc = sealed + strlen(SEAL_PREFIX);
    size_t elen = strlen(enc);
    if (elen > b64url_encoded_len(SEAL_NONCE + SEAL_MAX_PLAIN + SEAL_TAG)) return -1;
    unsigned char *raw = malloc(elen * 3 / 4 + 1);
    if (!raw) return -1;
    long rawlen = b64url_decode(raw, enc, elen);
    if (rawlen < (long)(SEAL_NONCE + SEAL_TAG)) {
        free(raw);
        return -1;
    }
    size_t adlen;
    unsigned char *ad = seal_ad(tenant_id, alg, &adlen);
    size_t clen = (size_t)rawlen - SEAL_NONCE;
    unsigned char *plain = malloc(clen - SEAL_TAG + 1);
    unsigned long long plen = 0;
    int rc = -1;
    if (ad && plain &&
        crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, raw + SEAL_NONCE, clen, ad,
                                                   adlen, raw, key) == 0) {
        plain[plen] = '\0';
        /* a key is text (a secret or a PEM): one with a NUL inside would
         * be cut short by every string function downstream */
        if (memchr(plain, '\0', (size_t)plen) == NULL) {
            *plain_out = (char *)plain;
            plain = NULL;
            rc = 0;
        }
    }
    if (plain) {
        sodium_memzero(plain, clen - SEAL_TAG + 1);
        free(plain);
    }
    free(ad);
    free(raw);
    return rc;
}
