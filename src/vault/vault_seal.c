/* vault_seal.c — sealing a connection's secrets and a flow's PKCE
 * verifier: XChaCha20-Poly1305 (libsodium AEAD, 24-byte random nonces, so
 * random nonces never collide in practice) under a vault key version.
 *
 * The associated data names what the ciphertext belongs to (tenant, user,
 * connection; for a verifier also the state's hash), each field with its
 * length, so no two different owners give the same bytes. A row copied to
 * another user's connection, or one whose key version was changed, fails
 * the tag check and does not open. Stored form: "v<version>." followed by
 * base64url(nonce || ciphertext || tag). */
#include "vault/vault_internal.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SEAL_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* base64url without padding, by table. libsodium's decoder is constant
 * time and costs ~10 ns a character, most of a tool call's vault time for
 * a JWT-sized token; the sealed text is ciphertext (its bytes are no
 * secret), so a plain table is enough here. -1 on a character outside the
 * alphabet or an impossible length. */
static signed char b64_table[256];

static void b64_init(void)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    memset(b64_table, -1, sizeof b64_table);
    for (int i = 0; i < 64; i++) b64_table[(unsigned char)alpha[i]] = (signed char)i;
}

static long b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, b64_init);
    if (len % 4 == 1) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_table[(unsigned char)in[i]];
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* the leftover bits of the last character must be zero (one text, one value) */
    if (bits && (acc & ((1u << bits) - 1))) return -1;
    return (long)o;
}

/* label, then each field as "<len>:<bytes>" */
static size_t ad_build(char *out, size_t outlen, const char *label, const char *const *fields, size_t n)
{
    size_t off = (size_t)snprintf(out, outlen, "%s", label);
    for (size_t i = 0; i < n && off < outlen; i++) {
        const char *f = fields[i] ? fields[i] : "";
        off += (size_t)snprintf(out + off, outlen - off, "|%zu:%s", strlen(f), f);
    }
    return off < outlen ? off : outlen - 1;
}

size_t vault_ad_connection(char *out, size_t outlen, const char *tenant_id, const char *user_id,
                           const char *conn_id)
{
    const char *f[] = {tenant_id, user_id, conn_id};
    return ad_build(out, outlen, "brigade-vault-connection-v1", f, 3);
}

size_t vault_ad_flow(char *out, size_t outlen, const char *state_hash, const char *tenant_id,
                     const char *user_id, const char *conn_id)
{
    const char *f[] = {state_hash, tenant_id, user_id, conn_id};
    return ad_build(out, outlen, "brigade-vault-flow-v1", f, 4);
}

char *vault_seal_raw(const unsigned char key[VAULT_KEY_LEN], int version, const char *ad, size_t adlen,
                     const char *plain, size_t len)
{
    if (sodium_init() < 0) return NULL;
    size_t raw_len = NONCE_LEN + len + TAG_LEN;
    unsigned char *raw = malloc(raw_len);
    if (!raw) return NULL;
    randombytes_buf(raw, NONCE_LEN);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(raw + NONCE_LEN, &clen, (const unsigned char *)plain, len,
                                               (const unsigned char *)ad, adlen, NULL, raw, key);
    size_t b64 = sodium_base64_ENCODED_LEN(raw_len, SEAL_VARIANT);
    char *out = malloc(b64 + 16);
    if (out) {
        int pre = snprintf(out, 16, "v%d.", version);
        sodium_bin2base64(out + pre, b64, raw, NONCE_LEN + (size_t)clen, SEAL_VARIANT);
    }
    free(raw);
    return out;
}

int vault_sealed_version(const char *sealed)
{
    if (!sealed || sealed[0] != 'v') return -1;
    char *end = NULL;
    long v = strtol(sealed + 1, &end, 10);
    if (end == sealed + 1 || *end != '.' || v < 1 || v > 1000000) return -1;
    return (int)v;
}

int vault_open_raw(const unsigned char key[VAULT_KEY_LEN], const char *ad, size_t adlen,
                   const char *sealed, char **plain)
{
    *plain = NULL;
    if (vault_sealed_version(sealed) < 0) return -1;
    const char *b64 = strchr(sealed, '.') + 1;
    size_t b64len = strlen(b64);
    size_t cap = b64len * 3 / 4 + 4;
    unsigned char *raw = malloc(cap);
    if (!raw) return -1;
    long got = b64url_decode(b64, b64len, raw, cap);
    size_t raw_len = got < 0 ? 0 : (size_t)got;
    if (got < 0 || raw_len < NONCE_LEN + TAG_LEN) {
        free(raw);
        return -1;
    }
    char *out = malloc(raw_len - NONCE_LEN - TAG_LEN + 1);
    unsigned long long mlen = 0;
    if (!out || crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)out, &mlen, NULL, raw + NONCE_LEN,
                                                           raw_len - NONCE_LEN, (const unsigned char *)ad,
                                                           adlen, raw, key) != 0) {
        free(out);
        free(raw);
        return -1;
    }
    out[mlen] = '\0';
    free(raw);
    *plain = out;
    return 0;
}
