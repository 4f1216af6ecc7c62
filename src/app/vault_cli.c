/* vault_cli.c — `brigade admin vault rotate-key`: a new vault key version,
 * every connection re-sealed under it, the old versions dropped from
 * data_dir/vault.key. Unlike the other admin commands it does not take the
 * data directory's lock: it is meant to run while `brigade serve` does
 * (the server re-reads the key file when it changes, see
 * src/vault/vault_key.c), so rotation needs no downtime. */
#include "app/app.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "vault/vault.h"

int app_vault_rotate_key(const char *data_dir, const store_backend *backend)
{
    char err[1024];
    store *st = store_open_backend(backend, data_dir, err, sizeof err);
    if (!st) {
        fprintf(stderr, "brigade admin: store: %s\n", err);
        return 1;
    }
    size_t n = 0;
    int version = 0;
    int rc = vault_rotate_key(st, data_dir, &n, &version, err, sizeof err);
    store_close(st);
    if (rc != 0) {
        fprintf(stderr, "brigade admin: vault rotate-key: %s\n", err);
        return 1;
    }
    printf("{\"object\":\"vault.key\",\"version\":%d,\"resealed\":%zu}\n", version, n);
    return 0;
}
