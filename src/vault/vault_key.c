/* vault_key.c — the vault's key ring: the keys that seal users'
 * credentials, kept outside the database in data_dir/vault.key (0600, the
 * data dir is 0700), so a copy of the database alone opens nothing.
 *
 * The file holds one line per key version, "VERSION HEX64". The highest
 * version seals; every version listed opens. Rotation (vault_rotate_key)
 * adds a version, re-seals every row, then drops the old lines; a running
 * server notices a changed file (its size and modification time, checked
 * before each seal) or a version it does not hold, and re-reads it, so it
 * seals with the new key and still opens rows of the old one meanwhile (it
 * keeps every key it has read). */
#include "vault/vault_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}


/* Read the file, adding versions not yet held (a key once read stays:
 * rows sealed under it may still be met). Caller holds r->mu. */
static int ring_read(vault_keyring *r, char *err, size_t errlen)
{
    FILE *f = fopen(r->path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the vault key %s: %s", r->path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0) {
        if (sb.st_mode & 077) {
            fclose(f);
            snprintf(err, errlen, "the vault key %s must be readable by its owner only (chmod 600)", r->path);
            return -1;
        }
        r->mtime = sb.st_mtim;
        r->size = (long long)sb.st_size;
    }
    char line[256];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        int version;
        char hex[128];
        if (line[0] == '#' || line[0] == '\n') continue;
        if (sscanf(line, "%d %127s", &version, hex) != 2 || version < 1 || strlen(hex) != 2 * VAULT_KEY_LEN) {
            fclose(f);
            snprintf(err, errlen, "the vault key %s is malformed (want lines \"VERSION HEX64\")", r->path);
            return -1;
        }
        unsigned char key[VAULT_KEY_LEN];
        for (int i = 0; i < VAULT_KEY_LEN; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                fclose(f);
                sodium_memzero(hex, sizeof hex);
                snprintf(err, errlen, "the vault key %s is malformed (not hex)", r->path);
                return -1;
            }
            key[i] = (unsigned char)(hi << 4 | lo);
        }
        sodium_memzero(hex, sizeof hex);
        lines++;
        int have = 0;
        for (int i = 0; i < r->n; i++)
            if (r->versions[i] == version) have = 1;
        if (!have && r->n < VAULT_MAX_KEYS) {
            r->versions[r->n] = version;
            memcpy(r->keys[r->n], key, VAULT_KEY_LEN);
            r->n++;
        }
        sodium_memzero(key, sizeof key);
    }
    sodium_memzero(line, sizeof line);
    fclose(f);
    if (!lines) {
        snprintf(err, errlen, "the vault key %s holds no key", r->path);
        return -1;
    }
    return 0;
}

int vault_keyring_save(vault_keyring *r, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", r->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# brigade vault keys: VERSION HEX (the highest seals). Keep this file apart from backups of the database.\n");
    for (int i = 0; i < r->n; i++) {
        char hex[2 * VAULT_KEY_LEN + 1];
        sodium_bin2hex(hex, sizeof hex, r->keys[i], VAULT_KEY_LEN);
        fprintf(f, "%d %s\n", r->versions[i], hex);
        sodium_memzero(hex, sizeof hex);
    }
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, r->path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", r->path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int vault_keyring_load(vault_keyring *r, const char *path, bool create, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    snprintf(r->path, sizeof r->path, "%s", path);
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot start");
        return -1;
    }
    if (access(path, F_OK) != 0 && errno == ENOENT && create) {
        r->n = 1;
        r->versions[0] = 1;
        randombytes_buf(r->keys[0], VAULT_KEY_LEN);
        if (vault_keyring_save(r, err, errlen) != 0) return -1;
        r->n = 0;
    }
    pthread_mutex_lock(&r->mu);
    int rc = ring_read(r, err, errlen);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void vault_keyring_wipe(vault_keyring *r)
{
    sodium_memzero(r->keys, sizeof r->keys);
    r->n = 0;
    pthread_mutex_destroy(&r->mu);
}

static int ring_find(const vault_keyring *r, int version)
{
    for (int i = 0; i < r->n; i++)
        if (r->versions[i] == version) return i;
    return -1;
}

int vault_keyring_key(vault_keyring *r, int version, unsigned char key[VAULT_KEY_LEN])
{
    pthread_mutex_lock(&r->mu);
    int i = ring_find(r, version);
    if (i < 0) {
        char err[256];
        if (ring_read(r, err, sizeof err) == 0) i = ring_find(r, version);
    }
    if (i >= 0) memcpy(key, r->keys[i], VAULT_KEY_LEN);
    pthread_mutex_unlock(&r->mu);
    return i >= 0 ? 0 : -1;
}

int vault_keyring_current(vault_keyring *r, unsigned char key[VAULT_KEY_LEN])
{
    pthread_mutex_lock(&r->mu);
    struct stat sb;
    if (stat(r->path, &sb) == 0 &&
        ((long long)sb.st_size != r->size || sb.st_mtim.tv_sec != r->mtime.tv_sec ||
         sb.st_mtim.tv_nsec != r->mtime.tv_nsec)) {
        char err[256];
        (void)ring_read(r, err, sizeof err);   /* on a bad file keep what we hold */
    }
    int best = -1;
    for (int i = 0; i < r->n; i++)
        if (best < 0 || r->versions[i] > r->versions[best]) best = i;
    int version = best >= 0 ? r->versions[best] : -1;
    if (best >= 0) memcpy(key, r->keys[best], VAULT_KEY_LEN);
    pthread_mutex_unlock(&r->mu);
    return version;
}
