/* vault_bench.c — what the vault costs a tool call: opening the user's
 * connection and checking whether its token must be refreshed.
 *
 *   open+check   vault_open_for on a row already read (XChaCha20-Poly1305
 *                open of a typical sealed access + refresh token) and the
 *                expiry comparison: the vault's own work per call;
 *   token_get    vault_token_get end to end on one thread: the store read
 *                of the connection (SQLite, this thread's connection), the
 *                open, the refresh check and the header built — what the
 *                thread-pool job of a tool call does when no refresh is due.
 *
 * One thread, uncontended, 200 users with a connection each. Prints the
 * median of 7 rounds per operation in ns. Built by
 * tests/unit/vault/meson.build (ninja -C BUILD bench/vault_bench); run it
 * with the build directory as the working directory's neighbour:
 *   BUILD/tests/unit/vault/vault_bench */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "identity/scope_mint.h"
#include "test_util.h"
#include "vault/vault_internal.h"

#define USERS 200
#define ROUNDS 7
#define ITERS 20000

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    static const char yaml[] =
        "credential_providers:\n"
        "  - {name: demo, kind: oauth2, authorization_endpoint: \"http://127.0.0.1:9/a\",\n"
        "     token_endpoint: \"http://127.0.0.1:9/t\", client_id: brigade}\n";
    char dir[256], err[512];
    store *st = test_store_open(dir, sizeof dir, "vault-bench");
    brigade_config cfg;
    if (!st || config_load_string("bench.yaml", yaml, strlen(yaml), &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "vault_bench: set-up failed: %s\n", err);
        return 1;
    }
    vault *v = vault_open(st, &cfg, dir, err, sizeof err);
    scope sa, ta;
    scope_mint_server_admin(&sa);
    char tenant[ID_MAX];
    test_store_tenant(st, &sa, "bench", tenant);
    scope_mint_tenant_admin(&ta, tenant, "key_admin");
    static scope users[USERS];
    static connection_rec rows[USERS];
    /* a JWT-sized access token and an opaque refresh token */
    char access[1025], refresh[65];
    memset(access, 'a', 1024);
    access[1024] = '\0';
    memset(refresh, 'r', 64);
    refresh[64] = '\0';
    char plain[1200];
    snprintf(plain, sizeof plain, "{\"access_token\":\"%s\",\"refresh_token\":\"%s\"}", access, refresh);
    for (int i = 0; i < USERS; i++) {
        char ext[32], uid[ID_MAX], cid[ID_MAX];
        snprintf(ext, sizeof ext, "u%d", i);
        test_store_user(st, &ta, ext, uid);
        scope_mint_user(&users[i], tenant, uid, "key", "default");
        ids_new(cid, "conn");
        store_connection_begin(st, &users[i], "demo", cid, 1, &rows[i]);
        int version;
        char *sealed = vault_seal_for(v, tenant, uid, rows[i].id, plain, &version);
        store_connection_seal(st, tenant, uid, rows[i].id, "openid", sealed, version, 0, 1);
        rows[i].sealed = sealed;
    }
    double open_ns[ROUNDS], get_ns[ROUNDS];
    volatile size_t sink = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (int k = 0; k < ITERS; k++) {
            connection_rec *c = &rows[k % USERS];
            char *p = NULL;
            if (vault_open_for(v, c->tenant_id, c->user_id, c->id, c->sealed, &p) != 0) abort();
            sink += strlen(p) + (c->expires_at && c->expires_at < 5);
            free(p);
        }
        open_ns[r] = (now_ns() - t0) / ITERS;
        t0 = now_ns();
        for (int k = 0; k < ITERS; k++) {
            vault_token t;
            vault_token_get(v, &users[k % USERS], "demo", NULL, 0, "Bearer {token}", &t);
            if (t.status != VAULT_TOKEN_OK) abort();
            sink += strlen(t.header_value);
            vault_token_clear(&t);
        }
        get_ns[r] = (now_ns() - t0) / ITERS;
    }
    qsort(open_ns, ROUNDS, sizeof open_ns[0], cmp);
    qsort(get_ns, ROUNDS, sizeof get_ns[0], cmp);
    printf("vault_bench: %d users, %d calls x %d rounds (median; min-max)\n", USERS, ITERS, ROUNDS);
    printf("  open+check (1 KiB token)     %8.0f ns  (%.0f-%.0f)\n", open_ns[ROUNDS / 2], open_ns[0], open_ns[ROUNDS - 1]);
    printf("  vault_token_get (store+open) %8.0f ns  (%.0f-%.0f)\n", get_ns[ROUNDS / 2], get_ns[0], get_ns[ROUNDS - 1]);
    (void)sink;
    for (int i = 0; i < USERS; i++) connection_rec_free(&rows[i]);
    vault_free(v);
    config_free(&cfg);
    test_store_close(st, dir);
    return 0;
}
