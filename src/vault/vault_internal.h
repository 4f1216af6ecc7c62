/* vault_internal.h — what the files of src/vault/ share: the key ring
 * (vault_key.c), sealing (vault_seal.c), the OAuth pieces that are pure
 * functions (vault_oauth.c), the provider HTTP client (vault_http.c) and
 * the vault itself (vault.c). Unit tests include it; nothing outside
 * src/vault/ does. */
#ifndef BRIGADE_VAULT_INTERNAL_H
#define BRIGADE_VAULT_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "vault/vault.h"

/* ---- the key ring (vault_key.c): data_dir/vault.key, one line per
 * version, "VERSION HEX64"; the highest version seals, every listed one
 * opens. ---- */

#define VAULT_KEY_LEN 32
#define VAULT_MAX_KEYS 8

typedef struct vault_keyring {
    pthread_mutex_t mu;
    char   path[4096];
    int    n;
    int    versions[VAULT_MAX_KEYS];
    unsigned char keys[VAULT_MAX_KEYS][VAULT_KEY_LEN];
    struct timespec mtime;      /* of the file as last read: changed = re-read */
    long long size;
} vault_keyring;

/* Load path (create it with version 1 when create and it is missing).
 * 0, or -1 with err. */
int  vault_keyring_load(vault_keyring *r, const char *path, bool create, char *err, size_t errlen);
void vault_keyring_wipe(vault_keyring *r);
/* Copy the key of `version` (re-reading the file once if it is not held:
 * a rotation by another process added it). 0, or -1. */
int  vault_keyring_key(vault_keyring *r, int version, unsigned char key[VAULT_KEY_LEN]);
/* The sealing key: the highest version (after a cheap check that the file
 * has not changed). Returns that version, or -1. */
int  vault_keyring_current(vault_keyring *r, unsigned char key[VAULT_KEY_LEN]);
/* Write the ring to its file (0600, atomically). */
int  vault_keyring_save(vault_keyring *r, char *err, size_t errlen);

/* ---- sealing (vault_seal.c) ---- */

/* The associated data of a connection's secrets and of a flow's verifier. */
size_t vault_ad_connection(char *out, size_t outlen, const char *tenant_id, const char *user_id,
                           const char *conn_id);
size_t vault_ad_flow(char *out, size_t outlen, const char *state_hash, const char *tenant_id,
                     const char *user_id, const char *conn_id);
/* "v<version>." + base64url(nonce || ciphertext); malloc'd, NULL on OOM. */
char *vault_seal_raw(const unsigned char key[VAULT_KEY_LEN], int version, const char *ad, size_t adlen,
                     const char *plain, size_t len);
/* The version a sealed text names, or -1 if it is not one. */
int   vault_sealed_version(const char *sealed);
/* Open: 0 and *plain (malloc'd, NUL-terminated), or -1 (altered, another
 * owner, another key). */
int   vault_open_raw(const unsigned char key[VAULT_KEY_LEN], const char *ad, size_t adlen,
                     const char *sealed, char **plain);

/* ---- OAuth pieces (vault_oauth.c) ---- */

/* 32 random bytes as base64url (43 characters): states, tickets, cookies,
 * PKCE verifiers. */
void vault_random_token(char out[64]);
/* base64url(SHA-256(verifier)) (RFC 7636 S256). */
void vault_pkce_challenge(const char *verifier, char out[64]);
/* hex SHA-256 of a text (how states, tickets and cookies are stored). */
void vault_hash_hex(const char *text, char out[65]);
/* Append s percent-encoded (RFC 3986 unreserved kept) to out. */
void vault_url_encode(char *out, size_t outlen, const char *s);

/* A token endpoint's answer (RFC 6749 5.1 / 5.2). */
typedef struct vault_token_response {
    char   *access_token;     /* malloc'd secrets */
    char   *refresh_token;    /* NULL if none */
    int64_t expires_in;       /* seconds; 0 if not given */
    char    scope[CONN_SCOPES_MAX];
    char    error[64];        /* an error answer: its code ("invalid_grant") */
} vault_token_response;

/* Parse a token response body (JSON). 0 with access_token set; 1 with
 * error set (an OAuth error answer); -1 if it is not one (why says why,
 * without quoting the body). */
int  vault_parse_token_response(const char *body, size_t len, vault_token_response *out,
                                char *why, size_t whylen);
void vault_token_response_free(vault_token_response *r);
/* When the vault refreshes a token that expires in `expires_in` s from
 * now_ms: a margin of min(5 s, a quarter of its life) before. 0 = never. */
int64_t vault_refresh_due_ms(int64_t now_ms, int64_t expires_in);

/* ---- the provider's endpoints (vault_http.c): blocking, bounded ---- */

typedef struct vault_http_resp {
    long   status;            /* 0 if no answer */
    char  *body;              /* malloc'd, NUL-terminated */
    size_t len;
    char   error[256];        /* set when there is no complete answer */
    bool   egress_refused;    /* egress refused the provider's address (error says which) */
} vault_http_resp;

/* Where the vault's provider calls go, and under which egress policy: the
 * provider's (its timeout_ms; allow_private_networks, the operator's only)
 * and the operator's egress.allow_networks. A refusal is audited
 * (`egress.refuse`, target the provider, by "system") in `st`. */
typedef struct vault_http_to {
    store                         *st;
    const brigade_config          *cfg;
    const credential_provider_cfg *provider;
} vault_http_to;

/* POST a form (or GET when form is NULL), with HTTP basic client
 * authentication when user is non-NULL, through egress. No redirects; at
 * most VAULT_MAX_TOKEN_RESPONSE bytes; the provider's timeout_ms for the
 * whole exchange. */
void vault_http(const vault_http_to *to, const char *url, const char *form, const char *user,
                const char *pass, vault_http_resp *out);
void vault_http_resp_free(vault_http_resp *r);

#endif
