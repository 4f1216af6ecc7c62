/* jwt.c — compact JWS verification with the algorithm pinned (see jwt.h).
 *
 * Order of checks matters: the header's `alg` is compared with the pinned
 * algorithm before any key is used, and the signature is checked before a
 * single claim is believed. The payload is parsed only after the signature
 * has verified. */
#include "identity/jwt.h"
#include "identity/hmac.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "identity/b64url.h"
#include "util/json_strict.h"

#define JWT_HS256_MIN_SECRET 32   /* RFC 7518 §3.2: at least the hash size */

struct jwt_key {
    jwt_alg alg;
    EVP_PKEY *pkey;               /* RS256 / ES256 */
    unsigned char *secret;        /* HS256 */
    size_t secret_len;
};

jwt_alg jwt_alg_from_name(const char *name)
{
    if (!name) return JWT_ALG_NONE;
    if (strcmp(name, "HS256") == 0) return JWT_HS256;
    if (strcmp(name, "RS256") == 0) return JWT_RS256;
    if (strcmp(name, "ES256") == 0) return JWT_ES256;
    return JWT_ALG_NONE;
}

const char *jwt_alg_name(jwt_alg alg)
{
    switch (alg) {
    case JWT_HS256: return "HS256";
    case JWT_RS256: return "RS256";
    case JWT_ES256: return "ES256";
    case JWT_ALG_NONE: break;
    }
    return "none";
}

const char *jwt_status_text(jwt_status st)
{
    switch (st) {
    case JWT_OK: return "ok";
    case JWT_MALFORMED: return "malformed token";
    case JWT_BAD_ALG: return "token algorithm not accepted";
    case JWT_BAD_KID: return "unknown token key id";
    case JWT_BAD_SIGNATURE: return "token signature invalid";
    case JWT_EXPIRED: return "token expired";
    case JWT_NOT_YET_VALID: return "token not yet valid";
    case JWT_MISSING_EXP: return "token has no expiry (exp)";
    case JWT_BAD_ISSUER: return "token issuer not accepted";
    case JWT_BAD_AUDIENCE: return "token audience not accepted";
    case JWT_MISSING_SUB: return "token has no subject (sub)";
    case JWT_BAD_KEY: return "issuer key unusable";
    case JWT_BAD_SUB: return "token subject (sub) not accepted: control characters, or longer than 255 bytes";
    }
    return "invalid token";
}

/* ---- keys ---- */

void jwt_key_free(jwt_key *k)
{
    if (!k) return;
    EVP_PKEY_free(k->pkey);
    if (k->secret) OPENSSL_clear_free(k->secret, k->secret_len);
    free(k);
}

jwt_key *jwt_key_load(jwt_alg alg, const char *key, size_t key_len, char *err, size_t errlen)
{
    if (!key || key_len == 0) { snprintf(err, errlen, "empty key"); return NULL; }
    jwt_key *k = calloc(1, sizeof *k);
    if (!k) { snprintf(err, errlen, "out of memory"); return NULL; }
    k->alg = alg;
    if (alg == JWT_HS256) {
        /* Whatever the text looks like (even a PEM public key), for HS256
         * it is the shared secret: the pinned alg decides, not the key. */
        k->secret = OPENSSL_malloc(key_len);
        if (!k->secret) { free(k); snprintf(err, errlen, "out of memory"); return NULL; }
        memcpy(k->secret, key, key_len);
        k->secret_len = key_len;
        return k;
    }
    if (alg != JWT_RS256 && alg != JWT_ES256) {
        snprintf(err, errlen, "unsupported algorithm");
        free(k);
        return NULL;
    }
    if (key_len > 16384) { snprintf(err, errlen, "key too long"); free(k); return NULL; }
    BIO *bio = BIO_new_mem_buf(key, (int)key_len);
    if (bio) k->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!k->pkey) {
        snprintf(err, errlen, "key is not a PEM public key");
        free(k);
        return NULL;
    }
    if (alg == JWT_RS256) {
        if (!EVP_PKEY_is_a(k->pkey, "RSA")) {
            snprintf(err, errlen, "RS256 needs an RSA public key");
            goto bad;
        }
        if (EVP_PKEY_get_bits(k->pkey) < 2048) {
            snprintf(err, errlen, "RSA key shorter than 2048 bits");
            goto bad;
        }
    } else {
        char group[64] = "";
        size_t glen = 0;
        if (!EVP_PKEY_is_a(k->pkey, "EC") ||
            !EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen) ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
            snprintf(err, errlen, "ES256 needs an EC P-256 public key");
            goto bad;
        }
    }
    return k;
bad:
    jwt_key_free(k);
    return NULL;
}

int jwt_check_key(jwt_alg alg, const char *key, size_t key_len, char *err, size_t errlen)
{
    if (alg == JWT_HS256 && key_len < JWT_HS256_MIN_SECRET) {
        snprintf(err, errlen, "HS256 secret shorter than %d bytes", JWT_HS256_MIN_SECRET);
        return -1;
    }
    jwt_key *k = jwt_key_load(alg, key, key_len, err, errlen);
    if (!k) return -1;
    jwt_key_free(k);
    return 0;
}

/* ---- parsing ---- */

typedef struct jwt_parts {
    const char *p[3];
    size_t n[3];
} jwt_parts;

static bool jwt_split(const char *token, jwt_parts *parts)
{
    size_t len = strnlen(token, JWT_MAX_TOKEN + 1);
    if (len > JWT_MAX_TOKEN) return false;
    const char *d1 = memchr(token, '.', len);
    if (!d1) return false;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) return false;
    parts->p[0] = token;   parts->n[0] = (size_t)(d1 - token);
    parts->p[1] = d1 + 1;  parts->n[1] = (size_t)(d2 - d1 - 1);
    parts->p[2] = d2 + 1;  parts->n[2] = len - (size_t)(d2 + 1 - token);
    /* an empty payload is a valid JWS (RFC 7515); it is no claim set, which
     * the claims layer refuses */
    return parts->n[0] > 0;
}

/* Parse a decoded header or payload: one JSON object, no NUL, and no key
 * twice — a token with two "sub", "exp" or "alg" means one thing to us
 * (cJSON reads the first) and another to the issuer's or any other
 * verifier's library (most read the last). NULL if any of that fails. */
static cJSON *jwt_json_object(const char *text, size_t len)
{
    json_strict_error e;
    /* A NUL is left to jwt_verify_with_key's own check (refused there as
     * a forged subject); jwt_peek_issuer only finds the issuer's config. */
    if (!json_strict_text(text, len, "the token", &e) && e.kind != JSON_STRICT_NUL) return NULL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (j && (!cJSON_IsObject(j) || !json_strict_tree(j, "the token", &e))) {
        cJSON_Delete(j);
        j = NULL;
    }
    return j;
}

/* Decode one part and parse it as a JSON object; NULL if either fails. */
static cJSON *jwt_json_part(const char *p, size_t n)
{
    unsigned char *raw = malloc(n * 3 / 4 + 1);
    if (!raw) return NULL;
    long rl = b64url_decode(raw, p, n);
    cJSON *j = rl > 0 ? jwt_json_object((const char *)raw, (size_t)rl) : NULL;
    free(raw);
    return j;
}

bool jwt_peek_issuer(const char *token, char *iss_out, size_t iss_len)
{
    jwt_parts parts;
    if (!token || !jwt_split(token, &parts)) return false;
    cJSON *pl = jwt_json_part(parts.p[1], parts.n[1]);
    if (!pl) return false;
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(pl, "iss");
    bool ok = cJSON_IsString(iss) && iss->valuestring[0] && strlen(iss->valuestring) < iss_len;
    if (ok) snprintf(iss_out, iss_len, "%s", iss->valuestring);
    cJSON_Delete(pl);
    return ok;
}

/* ---- signatures ---- */

static bool jwt_verify_hs256(const jwt_key *k, const unsigned char *data, size_t n,
                             const unsigned char *sig, size_t siglen)
{
    unsigned char mac[32];
    if (!identity_hmac_sha256((const unsigned char *)k->secret, k->secret_len, data, n, mac))
        return false;
    return siglen == sizeof mac && CRYPTO_memcmp(mac, sig, sizeof mac) == 0;
}

static bool jwt_verify_pkey(EVP_PKEY *pkey, const unsigned char *data, size_t n,
                            const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return false;
    bool ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, siglen, data, n) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* JWS ES256 signatures are r||s, 32 bytes each (RFC 7518 §3.4); OpenSSL
 * wants the DER SEQUENCE of two INTEGERs. */
static bool jwt_verify_es256(const jwt_key *k, const unsigned char *data, size_t n,
                             const unsigned char *sig, size_t siglen)
{
    if (siglen != 64) return false;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return false;
    }
    unsigned char *der = NULL;
    int dlen = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);   /* owns r and s now */
    if (dlen <= 0) return false;
    bool ok = jwt_verify_pkey(k->pkey, data, n, der, (size_t)dlen);
    OPENSSL_free(der);
    return ok;
}

/* ---- claims ---- */

static bool jwt_num(const cJSON *o, const char *name, int64_t *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(x)) return false;
    double d = x->valuedouble;
    if (d != d || d < -9.0e15 || d > 9.0e15) return false;   /* NaN or beyond exact integers */
    *v = (int64_t)d;
    return true;
}

static bool jwt_aud_ok(const cJSON *pl, const char *want)
{
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(pl, "aud");
    if (cJSON_IsString(aud)) return strcmp(aud->valuestring, want) == 0;
    if (cJSON_IsArray(aud)) {
        const cJSON *a;
        cJSON_ArrayForEach(a, aud)
            if (cJSON_IsString(a) && strcmp(a->valuestring, want) == 0) return true;
    }
    return false;
}

/* Control characters in UTF-8: C0 (incl. NUL), DEL, and C1 (U+0080..U+009F,
 * encoded C2 80..C2 9F). */
static bool jwt_sub_ok(const char *sub)
{
    size_t n = strnlen(sub, JWT_SUB_MAX + 1);
    if (n == 0 || n > JWT_SUB_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)sub[i];
        if (c < 0x20 || c == 0x7f) return false;
        if (c == 0xc2 && i + 1 < n && (unsigned char)sub[i + 1] >= 0x80 && (unsigned char)sub[i + 1] <= 0x9f)
            return false;
    }
    return true;
}

/* True if the JSON text holds a NUL: raw, or written as \u0000 (cJSON would
 * decode it and cut the string short there). A backslash escapes the next
 * character, so "\\u0000" (a backslash, then "u0000") is not one. */
static bool jwt_json_has_nul(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == 0) return true;
        if (p[i] != '\\') continue;
        if (i + 5 < n && p[i + 1] == 'u' && p[i + 2] == '0' && p[i + 3] == '0' && p[i + 4] == '0' &&
            p[i + 5] == '0')
            return true;
        i++;   /* skip the escaped character */
    }
    return false;
}

static jwt_status jwt_check_claims(const cJSON *pl, const jwt_issuer_cfg *cfg, int64_t now,
                                   jwt_claims *out)
{
    int64_t leeway = cfg->leeway_s > 0 ? cfg->leeway_s : 0;
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(pl, "iss");
    if (!cJSON_IsString(iss) || !cfg->issuer || strcmp(iss->valuestring, cfg->issuer) != 0)
        return JWT_BAD_ISSUER;
    if (cfg->audience && !jwt_aud_ok(pl, cfg->audience)) return JWT_BAD_AUDIENCE;

    int64_t exp, nbf = 0;
    if (!cJSON_GetObjectItemCaseSensitive(pl, "exp")) return JWT_MISSING_EXP;
    if (!jwt_num(pl, "exp", &exp)) return JWT_MALFORMED;
    if (now > exp + leeway) return JWT_EXPIRED;
    if (cJSON_GetObjectItemCaseSensitive(pl, "nbf")) {
        if (!jwt_num(pl, "nbf", &nbf)) return JWT_MALFORMED;
        if (now + leeway < nbf) return JWT_NOT_YET_VALID;
    }
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(pl, "sub");
    if (!cJSON_IsString(sub) || !sub->valuestring[0]) return JWT_MISSING_SUB;
    if (!jwt_sub_ok(sub->valuestring)) return JWT_BAD_SUB;

    if (out) {
        snprintf(out->iss, sizeof out->iss, "%s", iss->valuestring);
        snprintf(out->sub, sizeof out->sub, "%s", sub->valuestring);
        out->exp = exp;
        out->nbf = nbf;
    }
    return JWT_OK;
}

/* ---- verify ---- */

jwt_status jwt_verify_signature(const char *token, jwt_alg alg, const char *kid, const jwt_key *key,
                                unsigned char **payload_out, size_t *payload_len)
{
    *payload_out = NULL;
    *payload_len = 0;
    if (!token) return JWT_MALFORMED;
    if (!key || key->alg != alg) return JWT_BAD_KEY;
    jwt_parts parts;
    if (!jwt_split(token, &parts)) return JWT_MALFORMED;

    cJSON *hdr = jwt_json_part(parts.p[0], parts.n[0]);
    if (!hdr) return JWT_MALFORMED;
    const cJSON *halg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
    const cJSON *hkid = cJSON_GetObjectItemCaseSensitive(hdr, "kid");
    jwt_status st = JWT_OK;
    if (!cJSON_IsString(halg) || alg == JWT_ALG_NONE || strcmp(halg->valuestring, jwt_alg_name(alg)) != 0)
        st = JWT_BAD_ALG;       /* "none", "HS256" against a pinned RS256, … */
    else if (cJSON_GetObjectItemCaseSensitive(hdr, "crit"))
        st = JWT_MALFORMED;     /* we understand no critical extensions */
    else if (kid && (!cJSON_IsString(hkid) || strcmp(hkid->valuestring, kid) != 0))
        st = JWT_BAD_KID;
    cJSON_Delete(hdr);
    if (st != JWT_OK) return st;

    /* Decode (strictly) before any crypto, so a mis-encoded payload is
     * reported as malformed; it is parsed only after the signature holds. */
    unsigned char *payload = malloc(parts.n[1] * 3 / 4 + 1);
    if (!payload) return JWT_MALFORMED;
    long plen = b64url_decode(payload, parts.p[1], parts.n[1]);
    if (plen < 0) { free(payload); return JWT_MALFORMED; }
    payload[plen] = '\0';

    unsigned char sig[512];
    if (parts.n[2] == 0 || parts.n[2] > sizeof sig * 4 / 3) { free(payload); return JWT_BAD_SIGNATURE; }
    long siglen = b64url_decode(sig, parts.p[2], parts.n[2]);
    if (siglen <= 0) { free(payload); return JWT_MALFORMED; }

    const unsigned char *data = (const unsigned char *)token;
    size_t dlen = parts.n[0] + 1 + parts.n[1];
    bool ok;
    switch (alg) {
    case JWT_HS256: ok = jwt_verify_hs256(key, data, dlen, sig, (size_t)siglen); break;
    case JWT_RS256: ok = jwt_verify_pkey(key->pkey, data, dlen, sig, (size_t)siglen); break;
    case JWT_ES256: ok = jwt_verify_es256(key, data, dlen, sig, (size_t)siglen); break;
    default: ok = false; break;
    }
    if (!ok) { free(payload); return JWT_BAD_SIGNATURE; }
    *payload_out = payload;
    *payload_len = (size_t)plen;
    return JWT_OK;
}

jwt_status jwt_verify_with_key(const char *token, const jwt_issuer_cfg *cfg, const jwt_key *key,
                               int64_t now, jwt_claims *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (!token || !cfg) return JWT_MALFORMED;
    unsigned char *payload;
    size_t plen;
    jwt_status st = jwt_verify_signature(token, cfg->alg, cfg->kid, key, &payload, &plen);
    if (st != JWT_OK) return st;
    if (jwt_json_has_nul(payload, plen)) {
        free(payload);
        return JWT_BAD_SUB;   /* any claim with a NUL: it is the subject that it would forge */
    }
    cJSON *pl = plen ? jwt_json_object((const char *)payload, plen) : NULL;
    free(payload);
    if (!pl) return JWT_MALFORMED;
    st = jwt_check_claims(pl, cfg, now, out);
    cJSON_Delete(pl);
    return st;
}

jwt_status jwt_verify(const char *token, const jwt_issuer_cfg *cfg, int64_t now, jwt_claims *out)
{
    if (!cfg) return JWT_MALFORMED;
    char err[128];
    jwt_key *k = jwt_key_load(cfg->alg, cfg->key, cfg->key ? (cfg->key_len ? cfg->key_len : strlen(cfg->key)) : 0,
                              err, sizeof err);
    if (!k) {
        if (out) memset(out, 0, sizeof *out);
        return JWT_BAD_KEY;
    }
    jwt_status st = jwt_verify_with_key(token, cfg, k, now, out);
    jwt_key_free(k);
    return st;
}
