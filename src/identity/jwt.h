/* jwt.h — JSON Web Token verification (RFC 7519 / 7515), compact form only.
 *
 * The algorithm is pinned by the tenant's issuer configuration, never taken
 * from the token: a token whose header `alg` differs is refused, so
 * `alg: none` and algorithm confusion (an HS256 token "signed" with an RSA
 * public key) cannot pass. Supported: HS256, RS256, ES256 (OpenSSL EVP). */
#ifndef BRIGADE_JWT_H
#define BRIGADE_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum jwt_alg { JWT_ALG_NONE = 0, JWT_HS256, JWT_RS256, JWT_ES256 } jwt_alg;

typedef struct jwt_issuer_cfg {
    const char *issuer;        /* required `iss` */
    const char *audience;      /* required `aud` (string or array member) if non-NULL */
    jwt_alg     alg;
    const char *key;           /* HS256 secret, or PEM public key for RS256/ES256 */
    size_t      key_len;
    const char *kid;           /* if non-NULL, a token `kid` must equal it; unknown kid refused */
    int         leeway_s;      /* clock skew allowance for exp/nbf/iat (default 60) */
} jwt_issuer_cfg;

typedef enum jwt_status {
    JWT_OK = 0,
    JWT_MALFORMED,      /* not three base64url parts / bad JSON */
    JWT_BAD_ALG,        /* header alg is not the pinned one (incl. "none") */
    JWT_BAD_KID,
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,
    JWT_NOT_YET_VALID,
    JWT_MISSING_EXP,
    JWT_BAD_ISSUER,
    JWT_BAD_AUDIENCE,
    JWT_MISSING_SUB,
    JWT_BAD_KEY,        /* the configured key could not be loaded */
    JWT_BAD_SUB         /* sub with control characters (NUL included) or too long */
} jwt_status;

/* A subject is at most this many bytes (it becomes a user's external id),
 * with no control characters: C0, DEL or C1, and no NUL anywhere in the
 * claims — "alice\u0000x" would otherwise read as "alice". */
#define JWT_SUB_MAX 255

typedef struct jwt_claims {
    char    iss[256];
    char    sub[256];
    int64_t exp;
    int64_t nbf;           /* 0 if absent */
} jwt_claims;

jwt_alg     jwt_alg_from_name(const char *name);   /* "HS256"… or JWT_ALG_NONE */
const char *jwt_alg_name(jwt_alg alg);
const char *jwt_status_text(jwt_status st);

/* Read `iss` from an unverified token so the right issuer config can be
 * chosen. Nothing in it may be trusted until jwt_verify succeeds. */
bool jwt_peek_issuer(const char *token, char *iss_out, size_t iss_len);

jwt_status jwt_verify(const char *token, const jwt_issuer_cfg *cfg, int64_t now,
                      jwt_claims *out);

/* Validate a configured key for an algorithm (used when a tenant's jwt
 * settings are changed): 0 if usable, else -1 with err filled. */
int jwt_check_key(jwt_alg alg, const char *key, size_t key_len, char *err, size_t errlen);

/* A configured key parsed once (the PEM decoded into an EVP_PKEY, or the
 * HMAC secret copied), so the hot path verifies without re-parsing it.
 * Immutable after loading: one jwt_key may verify on many threads at once. */
typedef struct jwt_key jwt_key;

#define JWT_MAX_TOKEN 8192   /* longer tokens are refused unread */

jwt_key   *jwt_key_load(jwt_alg alg, const char *key, size_t key_len, char *err, size_t errlen);
void       jwt_key_free(jwt_key *k);
/* The signature layer alone (RFC 7515 compact JWS), with no claims: the
 * header's alg must be the pinned `alg`, `crit` is refused, `kid` (if
 * non-NULL) must match, and the signature must verify with key. On JWT_OK
 * *payload (malloc'd, NUL-terminated, possibly empty) holds the decoded
 * payload, not yet parsed nor trusted beyond its signature; the caller
 * frees it. */
jwt_status jwt_verify_signature(const char *token, jwt_alg alg, const char *kid, const jwt_key *key,
                                unsigned char **payload, size_t *payload_len);

/* jwt_verify with a pre-loaded key (cfg->key is ignored; cfg->alg must
 * match the key's algorithm). */
jwt_status jwt_verify_with_key(const char *token, const jwt_issuer_cfg *cfg, const jwt_key *key,
                               int64_t now, jwt_claims *out);

#endif
