/* hmac.c — HMAC-SHA256 (RFC 2104) over a SHA-256 fetched once (see hmac.h),
 * one-shot or under a prepared key. test_keys checks both against RFC 4231's
 * vectors. */
#include "identity/hmac.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* SHA256_Init/Update/Final for the prepared key (see identity_hmac_key). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

/* OpenSSL 3's one-shot HMAC() looks the algorithm up in the provider store
 * on every call (about 3 µs and a global lock, on the path of every
 * authenticated request); by hand over a prefetched digest: about 0.5 µs. */
static EVP_MD *keys_sha256;
static pthread_once_t keys_sha256_once = PTHREAD_ONCE_INIT;

static void keys_sha256_fetch(void) { keys_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); }

/* The key as one SHA-256 block: hashed if longer, zero-padded (RFC 2104). */
static bool hmac_block(const unsigned char *secret, size_t secret_len, unsigned char k[64])
{
    unsigned int n = 0;
    memset(k, 0, 64);
    if (secret_len > 64) return EVP_Digest(secret, secret_len, k, &n, keys_sha256, NULL) == 1;
    memcpy(k, secret, secret_len);
    return true;
}

bool identity_hmac_sha256(const unsigned char *secret, size_t secret_len, const void *msg,
                          size_t msg_len, unsigned char mac[32])
{
    pthread_once(&keys_sha256_once, keys_sha256_fetch);
    if (!keys_sha256) return false;
    unsigned char k[64], ipad[64], opad[64], inner[32];
    unsigned int n = 0;
    if (!hmac_block(secret, secret_len, k)) return false;
    for (size_t i = 0; i < 64; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestInit_ex(c, keys_sha256, NULL) && EVP_DigestUpdate(c, ipad, 64) &&
              EVP_DigestUpdate(c, msg, msg_len) && EVP_DigestFinal_ex(c, inner, &n) && n == 32 &&
              EVP_DigestInit_ex(c, keys_sha256, NULL) && EVP_DigestUpdate(c, opad, 64) &&
              EVP_DigestUpdate(c, inner, 32) && EVP_DigestFinal_ex(c, mac, &n) && n == 32;
    EVP_MD_CTX_free(c);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    return ok;
}


/* The prepared key keeps plain SHA256_CTX states and copies them by value:
 * EVP_MD_CTX_copy_ex duplicates the provider's context (an allocation and
 * its free, twice per MAC), which made a request's key hash ~6 k
 * instructions; the low-level calls run the same SHA-256 code (SHA-NI where
 * the CPU has it) at ~1.5 k. OpenSSL 3 marks them deprecated, not removed:
 * hmac.c alone uses them, and test_keys holds the result to RFC 4231. */
struct identity_hmac_key {
    SHA256_CTX inner;   /* SHA-256 having absorbed key ^ ipad */
    SHA256_CTX outer;   /* SHA-256 having absorbed key ^ opad */
};

void identity_hmac_key_free(identity_hmac_key *k)
{
    if (!k) return;
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

identity_hmac_key *identity_hmac_key_new(const unsigned char *secret, size_t secret_len)
{
    pthread_once(&keys_sha256_once, keys_sha256_fetch);
    if (!keys_sha256) return NULL;
    identity_hmac_key *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    unsigned char blk[64], ipad[64], opad[64];
    bool ok = hmac_block(secret, secret_len, blk);
    for (size_t i = 0; i < 64; i++) {
        ipad[i] = blk[i] ^ 0x36;
        opad[i] = blk[i] ^ 0x5c;
    }
    ok = ok && SHA256_Init(&k->inner) == 1 && SHA256_Update(&k->inner, ipad, 64) == 1 &&
         SHA256_Init(&k->outer) == 1 && SHA256_Update(&k->outer, opad, 64) == 1;
    OPENSSL_cleanse(blk, sizeof blk);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    if (!ok) {
        identity_hmac_key_free(k);
        return NULL;
    }
    return k;
}

/* The prepared states are only read (copied by value), so any number of
 * threads may use one key at once. */
bool identity_hmac_sha256_with(const identity_hmac_key *k, const void *msg, size_t msg_len,
                               unsigned char mac[32])
{
    if (!k) return false;
    unsigned char inner[32];
    SHA256_CTX c = k->inner;
    bool ok = SHA256_Update(&c, msg, msg_len) == 1 && SHA256_Final(inner, &c) == 1;
    c = k->outer;
    ok = ok && SHA256_Update(&c, inner, 32) == 1 && SHA256_Final(mac, &c) == 1;
    OPENSSL_cleanse(&c, sizeof c);
    OPENSSL_cleanse(inner, sizeof inner);
    return ok;
}
