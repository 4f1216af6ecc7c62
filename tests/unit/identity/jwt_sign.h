/* jwt_sign.h — a small JWS signer for the unit tests (the server only
 * verifies). Header-only so each test binary carries its own copy. */
#ifndef BRIGADE_TEST_JWT_SIGN_H
#define BRIGADE_TEST_JWT_SIGN_H

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "identity/b64url.h"

/* alg: "HS256" (secret/secret_len), "RS256"/"ES256" (pkey), or anything
 * else (e.g. "none": empty signature). header_json NULL builds
 * {"alg":alg,"typ":"JWT"}. Returns a malloc'd token. */
static char *test_jwt_sign(const char *alg, const char *header_json, const char *payload_json,
                           const unsigned char *secret, size_t secret_len, EVP_PKEY *pkey)
{
    char hdr[512];
    if (!header_json) {
        snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
        header_json = hdr;
    }
    size_t hl = strlen(header_json), pl = strlen(payload_json);
    char *tok = malloc(b64url_encoded_len(hl) + b64url_encoded_len(pl) + 1024);
    size_t o = b64url_encode(tok, (const unsigned char *)header_json, hl);
    tok[o++] = '.';
    o += b64url_encode(tok + o, (const unsigned char *)payload_json, pl);
    size_t signed_len = o;
    tok[o++] = '.';
    tok[o] = '\0';

    unsigned char sig[1024];
    size_t siglen = 0;
    if (strcmp(alg, "HS256") == 0) {
        unsigned int l = 0;
        HMAC(EVP_sha256(), secret, (int)secret_len, (unsigned char *)tok, signed_len, sig, &l);
        siglen = l;
    } else if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char der[1024];
        size_t dl = sizeof der;
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey);
        EVP_DigestSign(ctx, der, &dl, (unsigned char *)tok, signed_len);
        EVP_MD_CTX_free(ctx);
        if (strcmp(alg, "RS256") == 0) {
            memcpy(sig, der, dl);
            siglen = dl;
        } else {
            /* DER ECDSA-Sig-Value → JWS r||s */
            const unsigned char *p = der;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
            BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
            ECDSA_SIG_free(es);
            siglen = 64;
        }
    }
    b64url_encode(tok + o, sig, siglen);
    return tok;
}

#endif
