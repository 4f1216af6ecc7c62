/* test_vault_seal.c — the vault's sealing: a round trip; what must not
 * open (another tenant, user or connection — a row copied to another
 * owner —, an altered box, another key); the key ring file (created 0600,
 * versions, a version added by another process found on demand) and the
 * stored form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_util.h"
#include "vault/vault_internal.h"

#define PLAIN "{\"access_token\":\"at-secret-0123456789\",\"refresh_token\":\"rt-secret-9876543210\"}"

static void seal_for(const unsigned char key[VAULT_KEY_LEN], int version, const char *t, const char *u,
                     const char *c, char **out)
{
    char ad[512];
    size_t adlen = vault_ad_connection(ad, sizeof ad, t, u, c);
    *out = vault_seal_raw(key, version, ad, adlen, PLAIN, strlen(PLAIN));
    assert_non_null(*out);
}

static int open_for(const unsigned char key[VAULT_KEY_LEN], const char *t, const char *u, const char *c,
                    const char *sealed, char **plain)
{
    char ad[512];
    size_t adlen = vault_ad_connection(ad, sizeof ad, t, u, c);
    return vault_open_raw(key, ad, adlen, sealed, plain);
}

static void test_round_trip_and_binding(void **state)
{
    (void)state;
    unsigned char key[VAULT_KEY_LEN], other[VAULT_KEY_LEN];
    memset(key, 3, sizeof key);
    memset(other, 4, sizeof other);
    char *box = NULL, *plain = NULL;
    seal_for(key, 7, "ten_a", "usr_alice", "conn_1", &box);
    assert_int_equal(strncmp(box, "v7.", 3), 0);
    assert_int_equal(vault_sealed_version(box), 7);
    assert_null(strstr(box, "secret"));
    assert_int_equal(open_for(key, "ten_a", "usr_alice", "conn_1", box, &plain), 0);
    assert_string_equal(plain, PLAIN);
    free(plain);

    /* the row copied to another user, tenant or connection does not open */
    assert_int_equal(open_for(key, "ten_a", "usr_bob", "conn_1", box, &plain), -1);
    assert_int_equal(open_for(key, "ten_b", "usr_alice", "conn_1", box, &plain), -1);
    assert_int_equal(open_for(key, "ten_a", "usr_alice", "conn_2", box, &plain), -1);
    /* field boundaries count: ("ten_a","usr_alice") is not ("ten_au","sr_alice") */
    assert_int_equal(open_for(key, "ten_au", "sr_alice", "conn_1", box, &plain), -1);
    /* another key */
    assert_int_equal(open_for(other, "ten_a", "usr_alice", "conn_1", box, &plain), -1);
    assert_null(plain);
    /* any altered character */
    size_t n = strlen(box);
    for (size_t i = 3; i < n; i += 7) {
        char saved = box[i];
        box[i] = box[i] == 'A' ? 'B' : 'A';
        assert_int_equal(open_for(key, "ten_a", "usr_alice", "conn_1", box, &plain), -1);
        box[i] = saved;
    }
    /* cut short, or not the sealed form at all */
    box[20] = '\0';
    assert_int_equal(open_for(key, "ten_a", "usr_alice", "conn_1", box, &plain), -1);
    assert_int_equal(open_for(key, "ten_a", "usr_alice", "conn_1", "plaintext", &plain), -1);
    assert_int_equal(open_for(key, "ten_a", "usr_alice", "conn_1", "v1.", &plain), -1);
    free(box);
    /* two seals of the same text differ (random nonces) */
    char *b1 = NULL, *b2 = NULL;
    seal_for(key, 1, "t", "u", "c", &b1);
    seal_for(key, 1, "t", "u", "c", &b2);
    assert_string_not_equal(b1, b2);
    free(b1);
    free(b2);
}

static void test_sealed_version(void **state)
{
    (void)state;
    assert_int_equal(vault_sealed_version("v1.abc"), 1);
    assert_int_equal(vault_sealed_version("v12.abc"), 12);
    assert_int_equal(vault_sealed_version("v0.abc"), -1);
    assert_int_equal(vault_sealed_version("v.abc"), -1);
    assert_int_equal(vault_sealed_version("x1.abc"), -1);
    assert_int_equal(vault_sealed_version("v1abc"), -1);
    assert_int_equal(vault_sealed_version(NULL), -1);
}

static void test_keyring_file(void **state)
{
    (void)state;
    char dir[256], path[512], err[256];
    test_tmpdir(dir, sizeof dir, "vault-keyring");
    snprintf(path, sizeof path, "%s/vault.key", dir);
    vault_keyring r;
    /* not there and not to be created */
    assert_int_equal(vault_keyring_load(&r, path, false, err, sizeof err), -1);
    vault_keyring_wipe(&r);
    assert_int_equal(vault_keyring_load(&r, path, true, err, sizeof err), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    unsigned char k1[VAULT_KEY_LEN], again[VAULT_KEY_LEN];
    assert_int_equal(vault_keyring_current(&r, k1), 1);

    /* another process adds version 2: the ring finds it when asked, and
     * seals with it from then on, still opening version 1 */
    vault_keyring other;
    assert_int_equal(vault_keyring_load(&other, path, false, err, sizeof err), 0);
    other.versions[other.n] = 2;
    memset(other.keys[other.n], 9, VAULT_KEY_LEN);
    other.n++;
    assert_int_equal(vault_keyring_save(&other, err, sizeof err), 0);
    vault_keyring_wipe(&other);
    assert_int_equal(vault_keyring_key(&r, 2, again), 0);
    assert_int_equal(again[0], 9);
    assert_int_equal(vault_keyring_current(&r, again), 2);
    assert_int_equal(vault_keyring_key(&r, 1, again), 0);
    assert_memory_equal(again, k1, VAULT_KEY_LEN);
    assert_int_equal(vault_keyring_key(&r, 3, again), -1);
    vault_keyring_wipe(&r);

    /* a key file others may read is refused */
    chmod(path, 0644);
    assert_int_equal(vault_keyring_load(&r, path, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "chmod 600"));
    vault_keyring_wipe(&r);
    /* a malformed one too */
    FILE *f = fopen(path, "w");
    fputs("1 nothex\n", f);
    fclose(f);
    chmod(path, 0600);
    assert_int_equal(vault_keyring_load(&r, path, false, err, sizeof err), -1);
    vault_keyring_wipe(&r);
    test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_binding),
        cmocka_unit_test(test_sealed_version),
        cmocka_unit_test(test_keyring_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
