/* hmac.c — HMAC-SHA256 (RFC 2104) over a SHA-256 fetched once (see hmac.h).
 * test_keys checks it against RFC 4231's vectors. */
#include "identity/hmac.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* OpenSSL 3's one-shot HMAC() looks the algorithm up in the provider store
 * on every call (about 3 µs and a global lock, on the path of every
 * authenticated request); by hand over a prefetched digest: about 0.5 µs. */
static EVP_MD *keys_sha256;
static pthread_once_t keys_sha256_once = PTHREAD_ONCE_INIT;

static void keys_sha256_fetch(void) { keys_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); }

bool identity_hmac_sha256(const unsigned char *secret, size_t secret_len, const void *msg,
                          size_t msg_len, unsigned char mac[32])
{
    pthread_once(&keys_sha256_once, keys_sha256_fetch);
    if (!keys_sha256) return false;
    unsigned char k[64] = {0}, ipad[64], opad[64], inner[32];
    unsigned int n = 0;
    if (secret_len > sizeof k) {
        if (!EVP_Digest(secret, secret_len, k, &n, keys_sha256, NULL)) return false;
    } else {
        memcpy(k, secret, secret_len);
    }
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

