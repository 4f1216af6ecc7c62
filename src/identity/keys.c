/* keys.c — the server secret, credential generation and key hashing.
 *
 * A key is never stored: only HMAC-SHA256(secret, key). A copy of the
 * database alone therefore does not let anyone authenticate, nor test
 * guesses offline without the secret file, which is created 0600 and
 * refused if anyone else may read it. */
#include "identity/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/crypto.h>

#include "identity/b64url.h"
#include "identity/hmac.h"
#include "util/ids.h"

void identity_hash_key(const unsigned char *secret, size_t secret_len, const char *key,
                       char out_hex[65])
{
    unsigned char mac[32];
    if (!identity_hmac_sha256(secret, secret_len, key, strlen(key), mac)) {
        /* HMAC-SHA256 cannot fail short of OpenSSL being broken; an all-zero
         * hash would match nothing stored, but never continue silently. */
        memset(out_hex, '0', 64);
        out_hex[64] = '\0';
        return;
    }
    ids_hex(out_hex, mac, 32);
}

void identity_key_fingerprint(const char *key, size_t len, char out_hex[17])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!key || EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        out_hex[0] = '\0';
        return;
    }
    ids_hex(out_hex, md, 8);
    out_hex[16] = '\0';
}

void identity_generate_key(const char *prefix, char out[KEY_MAX])
{
    unsigned char raw[32];
    char enc[48];
    ids_random_bytes(raw, sizeof raw);
    b64url_encode(enc, raw, sizeof raw);          /* 43 characters */
    snprintf(out, KEY_MAX, "%s%s", prefix, enc);
}

static int identity_read_secret(int fd, const char *path, unsigned char *out, char *err, size_t errlen)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        return -1;
    }
    if (sb.st_mode & 077) {
        snprintf(err, errlen, "%s has permissions %03o; it must be readable by its owner only "
                 "(chmod 600 %s)", path, (unsigned)(sb.st_mode & 0777), path);
        return -1;
    }
    size_t got = 0;
    while (got < IDENTITY_SECRET_LEN) {
        ssize_t r = read(fd, out + got, IDENTITY_SECRET_LEN - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got != IDENTITY_SECRET_LEN) {
        snprintf(err, errlen, "%s is truncated (%zu of %d bytes)", path, got, IDENTITY_SECRET_LEN);
        return -1;
    }
    return 0;
}

int identity_load_secret(const char *data_dir, unsigned char out[IDENTITY_SECRET_LEN],
                         char *err, size_t errlen)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/secret", data_dir) >= sizeof path) {
        snprintf(err, errlen, "data directory path too long");
        return -1;
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", data_dir, strerror(errno));
        return -1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            int rc = identity_read_secret(fd, path, out, err, errlen);
            close(fd);
            return rc;
        }
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            return -1;
        }
        /* O_EXCL: if another process creates it first we read theirs. The
         * mode is given at creation, never widened then narrowed. */
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST) continue;
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            return -1;
        }
        ids_random_bytes(out, IDENTITY_SECRET_LEN);
        ssize_t w = write(fd, out, IDENTITY_SECRET_LEN);
        int ok = w == IDENTITY_SECRET_LEN && fsync(fd) == 0;
        close(fd);
        if (!ok) {
            unlink(path);
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "cannot create or read %s", path);
    return -1;
}
