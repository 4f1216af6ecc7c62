/* audit_chain.c — the canonical encoding and hash of an audit entry, the
 * signed checkpoints, and the server's Ed25519 key file. See audit_chain.h
 * for the exact encoding; it is the contract an external verifier relies
 * on, so it never changes without a new domain tag. */
#include "obs/audit_chain.h"

#include <errno.h>
#include <fcntl.h>
/* SHA256_Init/Update/Final: OpenSSL 3 marks them deprecated, not removed
 * (the entry hash below says why they and not libsodium's). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the encoding, written through a sink so that hashing needs no buffer ---- */

typedef struct audit_sink {
    unsigned char *out;
    size_t outlen, len;
    SHA256_CTX *sha;
} audit_sink;

static void sink_put(audit_sink *k, const void *p, size_t n)
{
    if (k->sha) SHA256_Update(k->sha, p, n);
    if (k->out && k->len < k->outlen) {
        size_t room = k->outlen - k->len;
        memcpy(k->out + k->len, p, n < room ? n : room);
    }
    k->len += n;
}

static void sink_u64(audit_sink *k, uint64_t v)
{
    unsigned char b[8];
    for (int i = 7; i >= 0; i--) { b[i] = (unsigned char)(v & 0xff); v >>= 8; }
    sink_put(k, b, 8);
}

static void sink_str(audit_sink *k, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    sink_u64(k, (uint64_t)n);
    if (n) sink_put(k, s, n);
}

static void audit_encode_entry(audit_sink *k, const audit_rec *e)
{
    sink_str(k, AUDIT_ENTRY_TAG);
    sink_u64(k, (uint64_t)e->seq);
    sink_u64(k, (uint64_t)e->ts);
    sink_str(k, e->tenant_id);
    sink_str(k, e->actor);
    sink_str(k, e->credential);
    sink_str(k, e->action);
    sink_str(k, e->target);
    sink_str(k, e->details);
    sink_str(k, e->prev_hash);
}

size_t audit_chain_encode(const audit_rec *e, unsigned char *out, size_t outlen)
{
    audit_sink k = {out, outlen, 0, NULL};
    audit_encode_entry(&k, e);
    return k.len;
}

void audit_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int audit_from_hex(const char *hex, unsigned char *out, size_t n)
{
    if (strlen(hex) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = hex[2 * i + j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

void audit_chain_hash(const audit_rec *e, char out[AUDIT_HASH_HEX])
{
    /* SHA-256 through OpenSSL, which uses the CPU's SHA instructions where
     * it has them (libsodium's is portable C): every audited act — a tool
     * call of every agent step — is hashed on the store writer. The digest
     * is the same, so chains written before verify as they did. */
    SHA256_CTX sha;
    SHA256_Init(&sha);
    audit_sink k = {NULL, 0, 0, &sha};
    audit_encode_entry(&k, e);
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256_Final(d, &sha);
    audit_hex(d, sizeof d, out);
}

/* ---- checkpoints ---- */

/* Longest message: tag, seq, hash, ts, every, interval, flags, prev seq, prev signature. */
#define AUDIT_CP_MSG_MAX 512

/* Version 2 chains the checkpoints: each signs the previous checkpoint's
 * seq and signature, and the bound (every, interval_s) and reason (flags)
 * it was made under. Version 1 (before chaining) is still read. */
static size_t audit_checkpoint_message(const audit_checkpoint *cp, unsigned char *out, size_t outlen)
{
    audit_sink k = {out, outlen, 0, NULL};
    if (cp->version == 1) {
        sink_str(&k, AUDIT_CHECKPOINT_TAG_V1);
        sink_u64(&k, (uint64_t)cp->seq);
        sink_str(&k, cp->hash);
        sink_u64(&k, (uint64_t)cp->ts);
        return k.len;
    }
    sink_str(&k, AUDIT_CHECKPOINT_TAG);
    sink_u64(&k, (uint64_t)cp->seq);
    sink_str(&k, cp->hash);
    sink_u64(&k, (uint64_t)cp->ts);
    sink_u64(&k, cp->every);
    sink_u64(&k, cp->interval_s);
    sink_u64(&k, cp->flags);
    sink_u64(&k, (uint64_t)cp->prev_seq);
    sink_str(&k, cp->prev_signature);
    return k.len;
}

void audit_checkpoint_sign(const audit_key *key, audit_checkpoint *cp)
{
    unsigned char msg[AUDIT_CP_MSG_MAX], sig[crypto_sign_BYTES];
    size_t n = audit_checkpoint_message(cp, msg, sizeof msg);
    crypto_sign_detached(sig, NULL, msg, n < sizeof msg ? n : sizeof msg, key->sk);
    audit_hex(sig, sizeof sig, cp->signature);
}

int audit_chain_sign_cb(void *arg, audit_checkpoint *cp)
{
    if (!arg) return -1;
    audit_checkpoint_sign(arg, cp);
    return 0;
}

bool audit_checkpoint_valid(const unsigned char pk[32], const audit_checkpoint *cp)
{
    unsigned char msg[AUDIT_CP_MSG_MAX], sig[crypto_sign_BYTES];
    if (cp->version != 1 && cp->version != 2) return false;
    if (audit_from_hex(cp->signature, sig, sizeof sig) != 0) return false;
    size_t n = audit_checkpoint_message(cp, msg, sizeof msg);
    if (n > sizeof msg) return false;   /* a hash field far too long: never signed by us */
    return crypto_sign_verify_detached(sig, msg, n, pk) == 0;
}

/* ---- the key file: one line, the 32-byte seed in hex ---- */

static int audit_key_read(const char *path, audit_key *key, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? 1 : -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (sb.st_mode & 077)) {
        close(fd);
        snprintf(err, errlen, "%s: must be readable by its owner only (chmod 600)", path);
        return -1;
    }
    char buf[130];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 64) {
        snprintf(err, errlen, "%s: not an audit key (expected 64 hex digits)", path);
        return -1;
    }
    buf[64] = '\0';
    unsigned char seed[crypto_sign_SEEDBYTES];
    if (audit_from_hex(buf, seed, sizeof seed) != 0) {
        snprintf(err, errlen, "%s: not an audit key (expected 64 hex digits)", path);
        return -1;
    }
    crypto_sign_seed_keypair(key->pk, key->sk, seed);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(buf, sizeof buf);
    return 0;
}

int audit_key_load(const char *data_dir, bool create, audit_key *key, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", data_dir, AUDIT_KEY_FILE);
    int r = audit_key_read(path, key, err, errlen);
    if (r <= 0 || !create) return r == 0 ? 0 : -1;

    /* Create: write a temporary file, then link() it into place. link fails
     * if the key appeared meanwhile (another process won), and then we read
     * theirs — never two keys, never a half-written one. */
    unsigned char seed[crypto_sign_SEEDBYTES];
    randombytes_buf(seed, sizeof seed);
    char line[66];
    audit_hex(seed, sizeof seed, line);
    line[64] = '\n';
    line[65] = '\0';
    sodium_memzero(seed, sizeof seed);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    bool ok = write(fd, line, 65) == 65 && fsync(fd) == 0;
    close(fd);
    sodium_memzero(line, sizeof line);
    if (!ok) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write %s", tmp);
        return -1;
    }
    if (link(tmp, path) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    unlink(tmp);
    return audit_key_read(path, key, err, errlen) == 0 ? 0 : -1;
}
