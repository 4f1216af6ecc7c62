/* test_seal.c — tenants' JWT keys sealed under the server secret: the
 * round trip, what must not open (another tenant's row, another algorithm,
 * another server secret, an altered box), and the one-time sealing of keys
 * that older versions stored in plaintext, after which the database file
 * holds no byte of the secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"
#include "identity/scope_mint.h"
#include "identity/seal.h"
#include "jwt_sign.h"
#include "test_util.h"
#include "util/timeutil.h"

#define SECRET "a-tenant-hs256-secret-that-must-never-reach-the-disk"
#define ISS "https://idp.legacy.example"
#define AUD "brigade-legacy"

static void test_round_trip_and_binding(void **state)
{
    (void)state;
    unsigned char server[32], other[32], key[SEAL_KEY_LEN], key2[SEAL_KEY_LEN];
    memset(server, 7, sizeof server);
    memset(other, 8, sizeof other);
    assert_int_equal(seal_derive_key(server, key), 0);
    assert_int_equal(seal_derive_key(other, key2), 0);
    /* not the server secret itself, and different per secret */
    assert_memory_not_equal(key, server, sizeof key);
    assert_memory_not_equal(key, key2, sizeof key);

    char *box = seal_jwt_key(key, "ten_a", "HS256", SECRET, strlen(SECRET));
    assert_non_null(box);
    assert_true(seal_is_sealed(box));
    assert_null(strstr(box, SECRET));
    char *plain = NULL;
    assert_int_equal(seal_open_jwt_key(key, "ten_a", "HS256", box, &plain), 0);
    assert_string_equal(plain, SECRET);
    free(plain);
    /* two seals of one key differ (random nonces) */
    char *box2 = seal_jwt_key(key, "ten_a", "HS256", SECRET, strlen(SECRET));
    assert_string_not_equal(box, box2);
    free(box2);

    /* copied to another tenant's row; alg changed; another server; altered */
    assert_int_equal(seal_open_jwt_key(key, "ten_b", "HS256", box, &plain), -1);
    assert_null(plain);
    assert_int_equal(seal_open_jwt_key(key, "ten_a", "RS256", box, &plain), -1);
    assert_int_equal(seal_open_jwt_key(key2, "ten_a", "HS256", box, &plain), -1);
    /* "ten_a" + "HS256" and "ten_aH" + "S256" are different bindings */
    assert_int_equal(seal_open_jwt_key(key, "ten_aH", "S256", box, &plain), -1);
    size_t n = strlen(box);
    box[n - 3] = box[n - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(seal_open_jwt_key(key, "ten_a", "HS256", box, &plain), -1);
    free(box);
    /* plaintext and garbage are not sealed keys */
    assert_false(seal_is_sealed(SECRET));
    assert_int_equal(seal_open_jwt_key(key, "ten_a", "HS256", SECRET, &plain), -1);
    assert_int_equal(seal_open_jwt_key(key, "ten_a", "HS256", SEAL_PREFIX "!!", &plain), -1);
    assert_int_equal(seal_open_jwt_key(key, "ten_a", "HS256", SEAL_PREFIX, &plain), -1);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t nl = strlen(needle), cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    bool found = false;
    for (size_t i = 0; i + nl <= len && !found; i++) found = memcmp(buf + i, needle, nl) == 0;
    free(buf);
    return found;
}

static bool dir_contains(const char *dir, const char *needle)
{
    static const char *const files[] = {"brigade.db", "brigade.db-wal", "brigade.db-shm"};
    char path[512];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (file_contains(path, needle)) return true;
    }
    return false;
}

/* A row written the way versions before sealing wrote it, then a start. */
static void test_legacy_plaintext_sealed_at_start(void **state)
{
    (void)state;
    char dir[64];
    store *st = test_store_open(dir, sizeof dir, "brigade-seal");
    assert_non_null(st);
    scope admin;
    scope_mint_server_admin(&admin);
    tenant_rec t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "ten_legacy");
    snprintf(t.name, sizeof t.name, "legacy");
    snprintf(t.default_tier, sizeof t.default_tier, "default");
    t.created_at = time_now_unix();
    t.has_jwt = true;
    snprintf(t.jwt.issuer, sizeof t.jwt.issuer, ISS);
    snprintf(t.jwt.audience, sizeof t.jwt.audience, AUD);
    snprintf(t.jwt.alg, sizeof t.jwt.alg, "HS256");
    t.jwt.key = SECRET;
    key_rec k;
    memset(&k, 0, sizeof k);
    snprintf(k.id, sizeof k.id, "key_legacy");
    snprintf(k.prefix, sizeof k.prefix, "bk_adm_xxxxx");
    snprintf(k.hash, sizeof k.hash, "%064d", 0);
    k.kind = KEY_KIND_ADMIN;
    k.created_at = t.created_at;
    assert_int_equal(store_tenant_create(st, &admin, &t, &k), STORE_OK);
    store_usage_flush(st);
    assert_true(dir_contains(dir, SECRET));   /* the old way: plaintext on disk */

    char err[256];
    identity *id = identity_open(st, dir, NULL, err, sizeof err);
    assert_non_null(id);
    /* the row is sealed now ... */
    tenant_rec got;
    assert_int_equal(store_tenant_get(st, &admin, "ten_legacy", &got), STORE_OK);
    assert_true(seal_is_sealed(got.jwt.key));
    tenant_rec_free(&got);
    /* ... no file of the database holds the secret any more ... */
    assert_false(dir_contains(dir, SECRET));
    /* ... and the tenant's tokens still verify */
    char payload[256];
    snprintf(payload, sizeof payload, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u1\",\"exp\":%lld}",
             (long long)(time_now_unix() + 300));
    char *tok = test_jwt_sign("HS256", NULL, payload, (const unsigned char *)SECRET, strlen(SECRET), NULL);
    char hdr[2048], why[256];
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    scope s;
    auth_pending p;
    assert_int_equal(identity_authenticate(id, hdr, &s, &p, why, sizeof why), AUTH_NEEDS_PROVISION);
    identity_close(id);

    /* a second start finds nothing to seal and still verifies */
    id = identity_open(st, dir, NULL, err, sizeof err);
    assert_non_null(id);
    assert_int_equal(identity_authenticate(id, hdr, &s, &p, why, sizeof why), AUTH_NEEDS_PROVISION);
    identity_close(id);
    free(tok);
    test_store_close(st, dir);
}

/* Settings from before audiences were required: kept, but its tokens are
 * refused with a message that says what to do. */
static void test_no_audience_refused(void **state)
{
    (void)state;
    char dir[64];
    store *st = test_store_open(dir, sizeof dir, "brigade-noaud");
    assert_non_null(st);
    scope admin;
    scope_mint_server_admin(&admin);
    tenant_rec t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "ten_noaud");
    snprintf(t.name, sizeof t.name, "noaud");
    t.created_at = time_now_unix();
    t.has_jwt = true;
    snprintf(t.jwt.issuer, sizeof t.jwt.issuer, ISS);
    snprintf(t.jwt.alg, sizeof t.jwt.alg, "HS256");
    t.jwt.key = SECRET;
    key_rec k;
    memset(&k, 0, sizeof k);
    snprintf(k.id, sizeof k.id, "key_noaud");
    snprintf(k.prefix, sizeof k.prefix, "bk_adm_xxxxx");
    snprintf(k.hash, sizeof k.hash, "%064d", 1);
    k.kind = KEY_KIND_ADMIN;
    k.created_at = t.created_at;
    assert_int_equal(store_tenant_create(st, &admin, &t, &k), STORE_OK);
    char err[256];
    identity *id = identity_open(st, dir, NULL, err, sizeof err);
    assert_non_null(id);
    char payload[256];
    snprintf(payload, sizeof payload, "{\"iss\":\"" ISS "\",\"sub\":\"u1\",\"exp\":%lld}",
             (long long)(time_now_unix() + 300));
    char *tok = test_jwt_sign("HS256", NULL, payload, (const unsigned char *)SECRET, strlen(SECRET), NULL);
    char hdr[2048], why[256];
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    scope s;
    auth_pending p;
    assert_int_equal(identity_authenticate(id, hdr, &s, &p, why, sizeof why), AUTH_INVALID);
    assert_non_null(strstr(why, "audience"));
    free(tok);
    identity_close(id);
    test_store_close(st, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_binding),
        cmocka_unit_test(test_legacy_plaintext_sealed_at_start),
        cmocka_unit_test(test_no_audience_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
