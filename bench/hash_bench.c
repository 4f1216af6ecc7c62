/* hash_bench.c — the two hashes on brigade's hot paths, timed natively
 * against the forms they replaced (docs/benchmarks.md, session 6):
 *
 *   build/tests/unit/obs/hash_bench [N]        N rounds of each (300 000)
 *
 * - a request's key HMAC: identity_hmac_sha256_with (plain SHA256_CTX
 *   states copied by value) against the EVP form it replaced (the prepared
 *   EVP_MD_CTX copied into a new context twice per MAC), on a 52-byte key;
 * - an audit entry's chain hash: audit_chain_hash (OpenSSL's SHA-256)
 *   against libsodium's SHA-256 fed the same encoding in the same pieces,
 *   on an entry of ~600 bytes.
 * Both pairs give the same bytes (checked here before timing). CPU time per
 * call, best of 3 passes. Not a test: figures move with the machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "identity/hmac.h"
#include "obs/audit_chain.h"

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The replaced HMAC form: prepared EVP contexts copied per call. */
static void hmac_evp(EVP_MD_CTX *inner, EVP_MD_CTX *outer, const void *msg, size_t n, unsigned char mac[32])
{
    unsigned char in[32];
    unsigned int len = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_MD_CTX_copy_ex(c, inner);
    EVP_DigestUpdate(c, msg, n);
    EVP_DigestFinal_ex(c, in, &len);
    EVP_MD_CTX_copy_ex(c, outer);
    EVP_DigestUpdate(c, in, 32);
    EVP_DigestFinal_ex(c, mac, &len);
    EVP_MD_CTX_free(c);
}

/* libsodium's SHA-256 of an entry's encoding, in the pieces the encoder
 * feeds (each field's length, then its bytes). */
static void chain_sodium(const unsigned char *enc, size_t n, char out[AUDIT_HASH_HEX])
{
    crypto_hash_sha256_state s;
    crypto_hash_sha256_init(&s);
    for (size_t at = 0; at < n; at += 40) crypto_hash_sha256_update(&s, enc + at, n - at < 40 ? n - at : 40);
    unsigned char d[32];
    crypto_hash_sha256_final(&s, d);
    audit_hex(d, sizeof d, out);
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 300000;
    if (rounds <= 0 || sodium_init() < 0) {
        fprintf(stderr, "usage: hash_bench [ROUNDS > 0]\n");
        return 2;
    }
    unsigned char secret[32], pad_i[64] = {0}, pad_o[64] = {0};
    memset(secret, 7, sizeof secret);
    memcpy(pad_i, secret, 32);
    memcpy(pad_o, secret, 32);
    for (int i = 0; i < 64; i++) {
        pad_i[i] ^= 0x36;
        pad_o[i] ^= 0x5c;
    }
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MD_CTX *ei = EVP_MD_CTX_new(), *eo = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ei, md, NULL);
    EVP_DigestUpdate(ei, pad_i, 64);
    EVP_DigestInit_ex(eo, md, NULL);
    EVP_DigestUpdate(eo, pad_o, 64);
    identity_hmac_key *k = identity_hmac_key_new(secret, sizeof secret);
    char key[53];
    memset(key, 'k', 52);
    key[52] = '\0';

    char details[480];
    memset(details, 'd', sizeof details - 1);
    details[sizeof details - 1] = '\0';
    audit_rec e = {.seq = 42, .ts = 1700000000, .tenant_id = "ten_0123456789abcdef", .actor = "usr_0123456789",
                   .credential = "key_0123456789", .action = "tool.call", .target = "clock", .details = details};
    snprintf(e.prev_hash, sizeof e.prev_hash, "%s", AUDIT_GENESIS_HASH);
    unsigned char enc[1024];
    size_t enc_n = audit_chain_encode(&e, enc, sizeof enc);

    unsigned char m1[32], m2[32];
    char h1[AUDIT_HASH_HEX], h2[AUDIT_HASH_HEX];
    hmac_evp(ei, eo, key, 52, m1);
    if (!k || !identity_hmac_sha256_with(k, key, 52, m2) || memcmp(m1, m2, 32) != 0 || enc_n > sizeof enc) {
        fprintf(stderr, "hash_bench: the two HMAC forms differ\n");
        return 1;
    }
    audit_chain_hash(&e, h1);
    chain_sodium(enc, enc_n, h2);
    if (strcmp(h1, h2) != 0) {
        fprintf(stderr, "hash_bench: the two chain hashes differ\n");
        return 1;
    }

    double best[4] = {1e9, 1e9, 1e9, 1e9};
    for (int pass = 0; pass < 3; pass++) {
        double t0 = cpu_s();
        for (long i = 0; i < rounds; i++) { hmac_evp(ei, eo, key, 52, m1); key[0] = (char)('a' + (m1[0] & 15)); }
        double t1 = cpu_s();
        for (long i = 0; i < rounds; i++) { identity_hmac_sha256_with(k, key, 52, m2); key[0] = (char)('a' + (m2[0] & 15)); }
        double t2 = cpu_s();
        for (long i = 0; i < rounds; i++) { chain_sodium(enc, enc_n, h2); enc[enc_n - 1] = (unsigned char)h2[0]; }
        double t3 = cpu_s();
        for (long i = 0; i < rounds; i++) { audit_chain_hash(&e, h1); e.seq++; }
        double t4 = cpu_s();
        double d[4] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3};
        for (int j = 0; j < 4; j++) if (d[j] < best[j]) best[j] = d[j];
    }
    printf("key HMAC, 52-byte key:      EVP copies %.3f µs, SHA256_CTX copies %.3f µs\n",
           best[0] / (double)rounds * 1e6, best[1] / (double)rounds * 1e6);
    printf("audit chain hash, %zu bytes: libsodium %.3f µs, OpenSSL %.3f µs\n", enc_n,
           best[2] / (double)rounds * 1e6, best[3] / (double)rounds * 1e6);
    identity_hmac_key_free(k);
    EVP_MD_CTX_free(ei);
    EVP_MD_CTX_free(eo);
    EVP_MD_free(md);
    return 0;
}
