/* fuzz_jwt.c — libFuzzer target for bearer-token verification
 * (src/identity/jwt.c) and the strict base64url decoder under it
 * (src/identity/b64url.c). A JWT is the first thing an untrusted client
 * sends, before any authentication, so a crash or a bypass here is the
 * worst kind.
 *
 * The first input byte picks the case:
 *   bits 0-1  issuer config: HS256 (0, 1), RS256 (2), ES256 (3); the RSA
 *             and EC keys are generated once at start-up
 *   bit 2     self-signed: the rest is "header\0payload" (an empty header
 *             means a well-formed one for the config); the harness encodes
 *             and signs it, so verification reaches the claim checks
 *   bit 3     the config pins kid "k1"
 *   bit 4     the config requires audience "brigade"
 *   bit 5     jwt_verify (key parsed on each call) instead of
 *             jwt_verify_with_key (key loaded once)
 *   bit 6     with bit 2 on RS256/ES256: sign with HMAC-SHA256 keyed by the
 *             public PEM (the classic algorithm-confusion forgery)
 * otherwise the rest is the token, verbatim.
 *
 * Invariants (abort() when broken):
 *   - a verbatim token verifies only if it carries a real HMAC under our
 *     HS256 secret (checked independently here); RS256/ES256 keys exist
 *     only in this process, so any JWT_OK on a verbatim token is a bypass;
 *   - a confused-algorithm forgery never verifies;
 *   - a token we signed never fails as JWT_BAD_SIGNATURE, and with the
 *     well-formed header never as JWT_BAD_ALG / JWT_BAD_KID;
 *   - JWT_OK means the claims really satisfy the config (a subject of at
 *     most JWT_SUB_MAX bytes without control characters, no NUL anywhere
 *     in the claims, strict JSON with no key twice), and with the
 *     well-formed header, claims that satisfy it are never refused;
 *   - jwt_peek_issuer and b64url_decode stay within their buffers;
 *     whatever b64url_decode accepts re-encodes to the very same text. */
#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/b64url.h"
#include "identity/jwt.h"
#include "util/json_strict.h"

#define FZ_NOW      INT64_C(1700000000)
#define FZ_LEEWAY   60
#define FZ_ISSUER   "https://issuer.example"
#define FZ_AUD      "brigade"
#define FZ_KID      "k1"

static const char fz_hs_secret[] = "fuzz-hs256-secret-0123456789abcdef";   /* >= 32 bytes */

typedef struct fz_keyset {
    jwt_alg   alg;
    char     *pem;          /* public key PEM (RS/ES), or the secret (HS) */
    size_t    pem_len;
    EVP_PKEY *priv;         /* RS/ES signing key */
    jwt_key  *loaded;       /* for jwt_verify_with_key */
} fz_keyset;

static fz_keyset fz_keys[4];   /* indexed by jwt_alg */
static bool fz_ready;
static bool fz_debug;          /* FUZZ_JWT_DEBUG=1: print each status (to check seeds) */

/* ---- set-up ---- */

static char *fz_public_pem(EVP_PKEY *k, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b || PEM_write_bio_PUBKEY(b, k) != 1) abort();
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *out = malloc((size_t)n + 1);
    if (!out) abort();
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(b);
    return out;
}

static void fz_setup(void)
{
    char err[128];
    fz_keys[JWT_HS256].alg = JWT_HS256;
    fz_keys[JWT_HS256].pem = strdup(fz_hs_secret);
    fz_keys[JWT_HS256].pem_len = strlen(fz_hs_secret);

    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    if (!rsa || !ec) abort();
    fz_keys[JWT_RS256].alg = JWT_RS256;
    fz_keys[JWT_RS256].priv = rsa;
    fz_keys[JWT_RS256].pem = fz_public_pem(rsa, &fz_keys[JWT_RS256].pem_len);
    fz_keys[JWT_ES256].alg = JWT_ES256;
    fz_keys[JWT_ES256].priv = ec;
    fz_keys[JWT_ES256].pem = fz_public_pem(ec, &fz_keys[JWT_ES256].pem_len);

    for (int a = JWT_HS256; a <= JWT_ES256; a++) {
        fz_keys[a].loaded = jwt_key_load((jwt_alg)a, fz_keys[a].pem, fz_keys[a].pem_len, err, sizeof err);
        if (!fz_keys[a].loaded) {
            fprintf(stderr, "fuzz_jwt: cannot load %s key: %s\n", jwt_alg_name((jwt_alg)a), err);
            abort();
        }
    }
    fz_debug = getenv("FUZZ_JWT_DEBUG") != NULL;
    fz_ready = true;
}

/* ---- signing (the harness's side, independent of jwt.c) ---- */

static bool fz_hmac(const void *key, size_t klen, const char *data, size_t n, unsigned char *mac,
                    unsigned *maclen)
{
    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, n, mac, maclen) != NULL;
}

/* Sign data[0..n) with the config's algorithm; the JWS signature bytes. */
static size_t fz_sign(jwt_alg alg, bool confuse, const char *data, size_t n, unsigned char *sig)
{
    unsigned maclen = 0;
    if (alg == JWT_HS256 || confuse) {
        const fz_keyset *k = &fz_keys[alg];
        if (!fz_hmac(k->pem, k->pem_len, data, n, sig, &maclen)) abort();
        return maclen;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char der[600];
    size_t dlen = sizeof der;
    if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, fz_keys[alg].priv) != 1 ||
        EVP_DigestSign(ctx, der, &dlen, (const unsigned char *)data, n) != 1)
        abort();
    EVP_MD_CTX_free(ctx);
    if (alg == JWT_RS256) {
        memcpy(sig, der, dlen);
        return dlen;
    }
    /* ES256: DER SEQUENCE{r, s} → fixed 32-byte r || s */
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    if (!es) abort();
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32) abort();
    ECDSA_SIG_free(es);
    return 64;
}

/* ---- independent checks ---- */

static bool fz_int_claim(const cJSON *o, const char *name, int64_t *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= -9.0e15 && x->valuedouble <= 9.0e15)) return false;
    *v = (int64_t)x->valuedouble;
    return true;
}

/* A NUL in the JSON text: a raw 0 byte, or "\u0000" after an even run of
 * backslashes (an odd run means the backslash before "u0000" is itself
 * escaped and stands for text). */
static bool fz_has_nul(const unsigned char *p, size_t n)
{
    if (memchr(p, 0, n)) return true;
    for (size_t i = 0; i + 6 <= n; i++) {
        if (memcmp(p + i, "\\u0000", 6) != 0) continue;
        size_t run = 0;
        while (run < i && p[i - 1 - run] == '\\') run++;
        if (run % 2 == 0) return true;
    }
    return false;
}

/* A subject brigade takes: 1..JWT_SUB_MAX bytes, no C0, DEL or C1 (U+0080..U+009F). */
static bool fz_sub_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > JWT_SUB_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return false;
        if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] < 0xa0) return false;
    }
    return true;
}

/* Do the payload's claims satisfy the config at FZ_NOW? */
static bool fz_claims_ok(const unsigned char *payload, size_t len, bool want_aud)
{
    if (fz_has_nul(payload, len)) return false;
    /* Claims are read only from strict JSON with no key twice (a repeated
     * "sub" or "exp" means one thing to cJSON, another to other readers). */
    json_strict_error jerr;
    if (!json_strict_text((const char *)payload, len, "claims", &jerr)) return false;
    cJSON *pl = cJSON_ParseWithLength((const char *)payload, len);
    bool ok = false;
    if (!cJSON_IsObject(pl) || !json_strict_tree(pl, "claims", &jerr)) goto out;
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(pl, "iss");
    if (!cJSON_IsString(iss) || strcmp(iss->valuestring, FZ_ISSUER) != 0) goto out;
    if (want_aud) {
        const cJSON *aud = cJSON_GetObjectItemCaseSensitive(pl, "aud"), *a;
        bool found = cJSON_IsString(aud) && strcmp(aud->valuestring, FZ_AUD) == 0;
        if (cJSON_IsArray(aud))
            cJSON_ArrayForEach(a, aud) if (cJSON_IsString(a) && strcmp(a->valuestring, FZ_AUD) == 0) found = true;
        if (!found) goto out;
    }
    int64_t exp, nbf;
    if (!fz_int_claim(pl, "exp", &exp) || FZ_NOW > exp + FZ_LEEWAY) goto out;
    if (cJSON_GetObjectItemCaseSensitive(pl, "nbf") &&
        (!fz_int_claim(pl, "nbf", &nbf) || FZ_NOW + FZ_LEEWAY < nbf))
        goto out;
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(pl, "sub");
    if (!cJSON_IsString(sub) || !fz_sub_ok(sub->valuestring)) goto out;
    ok = true;
out:
    cJSON_Delete(pl);
    return ok;
}

/* The verified claims handed back must be the config's issuer and a live token. */
static void fz_check_out(const jwt_claims *c)
{
    if (strcmp(c->iss, FZ_ISSUER) != 0 || !c->sub[0] || memchr(c->sub, '\0', sizeof c->sub) == NULL ||
        !fz_sub_ok(c->sub))
        abort();
    if (FZ_NOW > c->exp + FZ_LEEWAY || (c->nbf && FZ_NOW + FZ_LEEWAY < c->nbf)) abort();
}

/* Does a verbatim token carry a genuine HMAC under our HS256 secret? */
static bool fz_really_hs_signed(const char *tok)
{
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2) return false;
    size_t slen = strlen(d2 + 1);
    unsigned char *sig = malloc(slen * 3 / 4 + 1);
    if (!sig) abort();
    long n = b64url_decode(sig, d2 + 1, slen);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    bool ok = n == 32 && fz_hmac(fz_hs_secret, strlen(fz_hs_secret), tok, (size_t)(d2 - tok), mac, &maclen) &&
              CRYPTO_memcmp(mac, sig, 32) == 0;
    free(sig);
    return ok;
}

/* ---- base64url and peek, on any bytes ---- */

static void fz_b64url(const uint8_t *d, size_t n)
{
    /* exactly the room the header promises, so ASan sees any overrun */
    unsigned char *out = malloc(n * 3 / 4 + 1);
    if (!out) abort();
    long got = b64url_decode(out, (const char *)d, n);
    if (got >= 0) {
        if ((size_t)got > n * 3 / 4) abort();
        char *again = malloc(b64url_encoded_len((size_t)got) + 1);
        if (!again) abort();
        size_t m = b64url_encode(again, out, (size_t)got);
        if (m != n || memcmp(again, d, n) != 0) abort();   /* not canonical */
        free(again);
    }
    /* and the other way: any bytes encode to text that decodes back */
    char *enc = malloc(b64url_encoded_len(n) + 1);
    unsigned char *dec = malloc(n + 1);
    if (!enc || !dec) abort();
    size_t el = b64url_encode(enc, d, n);
    if (el != b64url_encoded_len(n) || enc[el] != '\0') abort();
    if (b64url_decode(dec, enc, el) != (long)n || (n && memcmp(dec, d, n) != 0)) abort();
    free(enc);
    free(dec);
    free(out);
}

static void fz_peek(const char *tok, uint8_t sel)
{
    size_t cap = (sel & 1) ? 8 : 256;
    char *iss = malloc(cap);
    if (!iss) abort();
    if (jwt_peek_issuer(tok, iss, cap)) {
        size_t l = strnlen(iss, cap);
        if (l == 0 || l == cap) abort();
    }
    free(iss);
}

/* ---- the target ---- */

static jwt_status fz_verify(const char *tok, const jwt_issuer_cfg *cfg, bool reparse, jwt_claims *out)
{
    jwt_status st = reparse ? jwt_verify(tok, cfg, FZ_NOW, out)
                            : jwt_verify_with_key(tok, cfg, fz_keys[cfg->alg].loaded, FZ_NOW, out);
    if (fz_debug) fprintf(stderr, "fuzz_jwt: %s -> %s\n", jwt_alg_name(cfg->alg), jwt_status_text(st));
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz_ready) fz_setup();
    if (size < 1) return 0;
    uint8_t mode = data[0];
    const uint8_t *in = data + 1;
    size_t n = size - 1;

    static const jwt_alg algs[4] = { JWT_HS256, JWT_HS256, JWT_RS256, JWT_ES256 };
    jwt_alg alg = algs[mode & 3];
    bool self_signed = mode & 4, want_kid = mode & 8, want_aud = mode & 16, reparse = mode & 32;
    bool confuse = self_signed && (mode & 64) && alg != JWT_HS256;
    jwt_issuer_cfg cfg = {
        .issuer = FZ_ISSUER,
        .audience = want_aud ? FZ_AUD : NULL,
        .alg = alg,
        .key = fz_keys[alg].pem,
        .key_len = fz_keys[alg].pem_len,
        .kid = want_kid ? FZ_KID : NULL,
        .leeway_s = FZ_LEEWAY,
    };
    jwt_claims claims;

    fz_b64url(in, n);

    if (!self_signed) {
        char *tok = malloc(n + 1);
        if (!tok) abort();
        memcpy(tok, in, n);
        tok[n] = '\0';
        fz_peek(tok, mode >> 7);
        jwt_status st = fz_verify(tok, &cfg, reparse, &claims);
        if (st == JWT_OK) {
            if (alg != JWT_HS256 || !fz_really_hs_signed(tok)) abort();   /* verification bypass */
            fz_check_out(&claims);
        }
        free(tok);
        return 0;
    }

    /* Self-signed: "header\0payload", encoded and signed here. */
    const uint8_t *sep = memchr(in, 0, n);
    size_t hlen = sep ? (size_t)(sep - in) : 0;
    const uint8_t *pay = sep ? sep + 1 : in;
    size_t plen = sep ? n - hlen - 1 : n;
    char hdr_buf[96];
    const char *hdr = (const char *)in;
    bool canonical = hlen == 0;
    if (canonical) {
        hlen = (size_t)snprintf(hdr_buf, sizeof hdr_buf, "{\"alg\":\"%s\",\"typ\":\"JWT\"%s}",
                                jwt_alg_name(alg), want_kid ? ",\"kid\":\"" FZ_KID "\"" : "");
        hdr = hdr_buf;
    }
    size_t tcap = b64url_encoded_len(hlen) + b64url_encoded_len(plen) + b64url_encoded_len(512) + 4;
    char *tok = malloc(tcap);
    if (!tok) abort();
    size_t t = b64url_encode(tok, (const unsigned char *)hdr, hlen);
    tok[t++] = '.';
    t += b64url_encode(tok + t, pay, plen);
    unsigned char sig[512];
    size_t siglen = fz_sign(alg, confuse, tok, t, sig);
    tok[t++] = '.';
    t += b64url_encode(tok + t, sig, siglen);
    if (t >= tcap) abort();

    fz_peek(tok, mode >> 7);
    jwt_status st = fz_verify(tok, &cfg, reparse, &claims);
    if (confuse) {
        if (st == JWT_OK) abort();                                     /* forgery accepted */
    } else {
        if (st == JWT_BAD_SIGNATURE && t <= JWT_MAX_TOKEN) abort();    /* our own signature refused */
        if (canonical && (st == JWT_BAD_ALG || st == JWT_BAD_KID)) abort();
        bool claims_ok = plen > 0 && fz_claims_ok(pay, plen, want_aud);
        if (st == JWT_OK && !claims_ok) abort();                       /* bad claims accepted */
        if (st == JWT_OK) fz_check_out(&claims);
        if (canonical && claims_ok && t <= JWT_MAX_TOKEN && st != JWT_OK) abort();   /* good token refused */
    }
    free(tok);
    return 0;
}
