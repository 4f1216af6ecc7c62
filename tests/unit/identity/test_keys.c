/* test_keys.c — credential format, HMAC hashing, the server secret file and
 * strict base64url. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity/b64url.h"
#include "identity/hmac.h"
#include "identity/identity.h"
#include "test_util.h"
#include "util/ids.h"

static void test_key_format(void **state)
{
    (void)state;
    char a[KEY_MAX], b[KEY_MAX];
    identity_generate_key("bk_usr_", a);
    identity_generate_key("bk_usr_", b);
    assert_int_equal(strlen(a), 7 + 43);
    assert_memory_equal(a, "bk_usr_", 7);
    for (size_t i = 7; i < strlen(a); i++) {
        char c = a[i];
        assert_true((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_');
    }
    assert_string_not_equal(a, b);
    identity_generate_key("bk_adm_", a);
    assert_memory_equal(a, "bk_adm_", 7);
    /* the 43 characters decode back to 32 bytes */
    unsigned char raw[40];
    assert_int_equal(b64url_decode(raw, a + 7, 43), 32);
}

static void test_hash(void **state)
{
    (void)state;
    unsigned char s1[32], s2[32];
    memset(s1, 1, sizeof s1);
    memset(s2, 2, sizeof s2);
    char h1[65], h2[65], h3[65];
    identity_hash_key(s1, 32, "bk_usr_example", h1);
    identity_hash_key(s1, 32, "bk_usr_example", h2);
    identity_hash_key(s2, 32, "bk_usr_example", h3);
    assert_int_equal(strlen(h1), 64);
    for (int i = 0; i < 64; i++) assert_non_null(strchr("0123456789abcdef", h1[i]));
    assert_string_equal(h1, h2);
    assert_string_not_equal(h1, h3);
    identity_hash_key(s1, 32, "bk_usr_examplf", h2);
    assert_string_not_equal(h1, h2);
    /* RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?") */
    identity_hash_key((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", h1);
    assert_string_equal(h1, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* The prepared key (pads hashed once, used for every request's key hash)
 * gives the one-shot MAC: RFC 4231 cases 2 and 6 (a key longer than a
 * block, hashed first), a 32-byte key like the server secret, and an empty
 * message. */
static void test_hmac_prepared(void **state)
{
    (void)state;
    unsigned char a[32], b[32], big[131], sec[32];
    memset(big, 0xaa, sizeof big);
    for (size_t i = 0; i < sizeof sec; i++) sec[i] = (unsigned char)(i * 7 + 1);
    struct { const unsigned char *key; size_t klen; const char *msg; } cases[] = {
        {(const unsigned char *)"Jefe", 4, "what do ya want for nothing?"},
        {big, sizeof big, "Test Using Larger Than Block-Size Key - Hash Key First"},
        {sec, sizeof sec, "bk_usr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        {sec, sizeof sec, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        identity_hmac_key *k = identity_hmac_key_new(cases[i].key, cases[i].klen);
        assert_non_null(k);
        size_t ml = strlen(cases[i].msg);
        assert_true(identity_hmac_sha256(cases[i].key, cases[i].klen, cases[i].msg, ml, a));
        /* twice: the prepared states are copied, never consumed */
        for (int r = 0; r < 2; r++) {
            memset(b, 0, sizeof b);
            assert_true(identity_hmac_sha256_with(k, cases[i].msg, ml, b));
            assert_memory_equal(a, b, 32);
        }
        identity_hmac_key_free(k);
    }
    char hex[65];
    ids_hex(hex, a, 32);
    identity_hmac_key *k = identity_hmac_key_new(big, sizeof big);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    assert_true(identity_hmac_sha256_with(k, m6, strlen(m6), b));
    ids_hex(hex, b, 32);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    identity_hmac_key_free(k);
    assert_false(identity_hmac_sha256_with(NULL, "x", 1, b));
    identity_hmac_key_free(NULL);
}

static void test_secret_file(void **state)
{
    (void)state;
    char dir[64];
    assert_non_null(test_tmpdir(dir, sizeof dir, "brigade-keys"));
    unsigned char a[IDENTITY_SECRET_LEN], b[IDENTITY_SECRET_LEN];
    char err[256];
    assert_int_equal(identity_load_secret(dir, a, err, sizeof err), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/secret", dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, IDENTITY_SECRET_LEN);
    /* loading again returns the same secret */
    assert_int_equal(identity_load_secret(dir, b, err, sizeof err), 0);
    assert_memory_equal(a, b, sizeof a);
    /* too open: refused with a clear message */
    assert_int_equal(chmod(path, 0644), 0);
    err[0] = '\0';
    assert_int_equal(identity_load_secret(dir, b, err, sizeof err), -1);
    assert_non_null(strstr(err, "644"));
    assert_non_null(strstr(err, "chmod 600"));
    /* truncated: refused */
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(truncate(path, 10), 0);
    assert_int_equal(identity_load_secret(dir, b, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    test_rmtree(dir);
}

static void test_b64url_strict(void **state)
{
    (void)state;
    unsigned char out[64];
    char enc[64];
    const unsigned char in[] = {0xfb, 0xff, 0x00, 0x10};
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t el = b64url_encode(enc, in, n);
        assert_int_equal(el, b64url_encoded_len(n));
        assert_int_equal(b64url_decode(out, enc, el), (long)n);
        assert_memory_equal(out, in, n);
    }
    assert_int_equal(b64url_decode(out, "-_8", 3), 2);      /* URL alphabet */
    assert_int_equal(b64url_decode(out, "+/8", 3), -1);     /* standard alphabet refused */
    assert_int_equal(b64url_decode(out, "QQ==", 4), -1);    /* padding refused */
    assert_int_equal(b64url_decode(out, "QR", 2), -1);      /* non-zero trailing bits */
    assert_int_equal(b64url_decode(out, "QQ", 2), 1);
    assert_int_equal(b64url_decode(out, "QUFBQ", 5), -1);   /* impossible length */
    assert_int_equal(b64url_decode(out, "QU FB", 5), -1);   /* whitespace */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_format),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_hmac_prepared),
        cmocka_unit_test(test_secret_file),
        cmocka_unit_test(test_b64url_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
