/* test_jwt.c — JWT verification with the algorithm pinned: keys are made at
 * test time (RSA 2048, EC P-256, an HMAC secret), tokens are signed here,
 * and every way a token should be refused is checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "identity/jwt.h"
#include "jwt_sign.h"

#define NOW 1800000000LL
#define ISS "https://idp.example"

static const unsigned char hs_secret[] = "0123456789abcdef0123456789abcdef-test";
static EVP_PKEY *rsa_key, *ec_key;
static char *rsa_pub_pem, *ec_pub_pem;

static char *pub_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, k);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = strndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

static int group_setup(void **state)
{
    (void)state;
    rsa_key = EVP_RSA_gen(2048);
    ec_key = EVP_EC_gen("P-256");
    if (!rsa_key || !ec_key) return -1;
    rsa_pub_pem = pub_pem(rsa_key);
    ec_pub_pem = pub_pem(ec_key);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(ec_key);
    free(rsa_pub_pem);
    free(ec_pub_pem);
    return 0;
}

static jwt_issuer_cfg cfg_for(jwt_alg alg)
{
    jwt_issuer_cfg c = {.issuer = ISS, .alg = alg, .leeway_s = 60};
    if (alg == JWT_HS256) { c.key = (const char *)hs_secret; c.key_len = strlen((const char *)hs_secret); }
    if (alg == JWT_RS256) { c.key = rsa_pub_pem; c.key_len = strlen(rsa_pub_pem); }
    if (alg == JWT_ES256) { c.key = ec_pub_pem; c.key_len = strlen(ec_pub_pem); }
    return c;
}

static char *sign(const char *alg, const char *payload)
{
    return test_jwt_sign(alg, NULL, payload, hs_secret, strlen((const char *)hs_secret),
                         strcmp(alg, "ES256") == 0 ? ec_key : rsa_key);
}

static char payload_buf[1024];
static const char *claims(int64_t exp_off, const char *extra)
{
    snprintf(payload_buf, sizeof payload_buf,
             "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"exp\":%lld%s%s}",
             (long long)(NOW + exp_off), extra ? "," : "", extra ? extra : "");
    return payload_buf;
}

static jwt_status verify(const char *tok, jwt_issuer_cfg c, jwt_claims *cl)
{
    return jwt_verify(tok, &c, NOW, cl);
}

static void test_valid_all_algs(void **state)
{
    (void)state;
    const char *names[] = {"HS256", "RS256", "ES256"};
    for (int i = 0; i < 3; i++) {
        char *t = sign(names[i], claims(600, NULL));
        jwt_claims cl;
        assert_int_equal(verify(t, cfg_for(jwt_alg_from_name(names[i])), &cl), JWT_OK);
        assert_string_equal(cl.sub, "alice");
        assert_string_equal(cl.iss, ISS);
        assert_int_equal(cl.exp, NOW + 600);
        /* a pre-loaded key verifies the same */
        char err[128];
        jwt_issuer_cfg c = cfg_for(jwt_alg_from_name(names[i]));
        jwt_key *k = jwt_key_load(c.alg, c.key, c.key_len, err, sizeof err);
        assert_non_null(k);
        assert_int_equal(jwt_verify_with_key(t, &c, k, NOW, &cl), JWT_OK);
        jwt_key_free(k);
        free(t);
    }
}

static void test_alg_none(void **state)
{
    (void)state;
    char *t = test_jwt_sign("none", NULL, claims(600, NULL), NULL, 0, NULL);
    assert_int_equal(verify(t, cfg_for(JWT_RS256), NULL), JWT_BAD_ALG);
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_BAD_ALG);
    free(t);
    /* "none" with a junk signature part, and a header without alg */
    t = test_jwt_sign("none", "{\"typ\":\"JWT\"}", claims(600, NULL), NULL, 0, NULL);
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_BAD_ALG);
    free(t);
    t = test_jwt_sign("none", "{\"alg\":\"hs256\"}", claims(600, NULL), NULL, 0, NULL);
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_BAD_ALG);   /* exact match only */
    free(t);
}

static void test_alg_confusion(void **state)
{
    (void)state;
    /* The classic attack: HMAC-"sign" with the RSA public key as secret. */
    char *t = test_jwt_sign("HS256", NULL, claims(600, NULL), (const unsigned char *)rsa_pub_pem,
                            strlen(rsa_pub_pem), NULL);
    assert_int_equal(verify(t, cfg_for(JWT_RS256), NULL), JWT_BAD_ALG);
    /* the token is otherwise well-formed: only the pin refuses it */
    jwt_issuer_cfg hs = {.issuer = ISS, .alg = JWT_HS256, .key = rsa_pub_pem,
                         .key_len = strlen(rsa_pub_pem), .leeway_s = 60};
    assert_int_equal(verify(t, hs, NULL), JWT_OK);
    free(t);
    /* an RS256 token offered where ES256 is pinned */
    t = sign("RS256", claims(600, NULL));
    assert_int_equal(verify(t, cfg_for(JWT_ES256), NULL), JWT_BAD_ALG);
    free(t);
}

static void test_time_claims(void **state)
{
    (void)state;
    char *t = sign("HS256", claims(-120, NULL));
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_EXPIRED);
    free(t);
    t = sign("HS256", claims(-30, NULL));            /* within the 60 s leeway */
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_OK);
    free(t);
    char nbf[64];
    snprintf(nbf, sizeof nbf, "\"nbf\":%lld", (long long)(NOW + 120));
    t = sign("HS256", claims(600, nbf));
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_NOT_YET_VALID);
    free(t);
    snprintf(nbf, sizeof nbf, "\"nbf\":%lld", (long long)(NOW + 30));
    t = sign("HS256", claims(600, nbf));
    jwt_claims cl;
    assert_int_equal(verify(t, cfg_for(JWT_HS256), &cl), JWT_OK);
    assert_int_equal(cl.nbf, NOW + 30);
    free(t);
    t = sign("HS256", "{\"iss\":\"" ISS "\",\"sub\":\"alice\"}");
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_MISSING_EXP);
    free(t);
    t = sign("HS256", "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"exp\":\"tomorrow\"}");
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_MALFORMED);
    free(t);
}

static void test_issuer_audience_subject(void **state)
{
    (void)state;
    char *t = sign("ES256", "{\"iss\":\"https://evil.example\",\"sub\":\"alice\",\"exp\":1800000600}");
    assert_int_equal(verify(t, cfg_for(JWT_ES256), NULL), JWT_BAD_ISSUER);
    free(t);

    jwt_issuer_cfg c = cfg_for(JWT_RS256);
    c.audience = "brigade";
    t = sign("RS256", claims(600, "\"aud\":\"other\""));
    assert_int_equal(verify(t, c, NULL), JWT_BAD_AUDIENCE);
    free(t);
    t = sign("RS256", claims(600, NULL));            /* aud required when configured */
    assert_int_equal(verify(t, c, NULL), JWT_BAD_AUDIENCE);
    free(t);
    t = sign("RS256", claims(600, "\"aud\":\"brigade\""));
    assert_int_equal(verify(t, c, NULL), JWT_OK);
    free(t);
    t = sign("RS256", claims(600, "\"aud\":[\"x\",\"brigade\"]"));
    assert_int_equal(verify(t, c, NULL), JWT_OK);
    free(t);
    t = sign("RS256", claims(600, "\"aud\":[\"x\",\"y\"]"));
    assert_int_equal(verify(t, c, NULL), JWT_BAD_AUDIENCE);
    free(t);

    t = sign("HS256", "{\"iss\":\"" ISS "\",\"exp\":1800000600}");
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_MISSING_SUB);
    free(t);
}

/* A subject becomes a user's external id: it must not be cut short by a
 * NUL (impersonating "alice" with "alice\u0000x"), hold control characters,
 * or exceed JWT_SUB_MAX bytes. */
static void test_subject_checks(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "alice\\u0000x",          /* escaped NUL: cJSON would read "alice" */
        "\\u0000alice",
        "al\\nice",               /* newline */
        "al\\u001bice",           /* ESC */
        "al\\u007fice",           /* DEL */
        "al\\u0085ice",           /* C1 (NEL) */
    };
    char payload[1024];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(payload, sizeof payload, "{\"iss\":\"" ISS "\",\"sub\":\"%s\",\"exp\":1800000600}", bad[i]);
        char *t = sign("HS256", payload);
        assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_BAD_SUB);
        free(t);
    }
    /* a NUL in another claim is refused too: nothing downstream expects one */
    char *t = sign("HS256", claims(600, "\"name\":\"x\\u0000y\""));
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_BAD_SUB);
    free(t);
    /* an escaped backslash followed by "u0000" is text, not a NUL */
    jwt_claims cl;
    t = sign("HS256", "{\"iss\":\"" ISS "\",\"sub\":\"a\\\\u0000\",\"exp\":1800000600}");
    assert_int_equal(verify(t, cfg_for(JWT_HS256), &cl), JWT_OK);
    assert_string_equal(cl.sub, "a\\u0000");
    free(t);
    /* non-ASCII letters are fine */
    t = sign("HS256", "{\"iss\":\"" ISS "\",\"sub\":\"jos\u00e9\",\"exp\":1800000600}");
    assert_int_equal(verify(t, cfg_for(JWT_HS256), &cl), JWT_OK);
    free(t);
    /* length: JWT_SUB_MAX bytes pass, one more is refused */
    char sub[JWT_SUB_MAX + 2];
    memset(sub, 's', sizeof sub);
    sub[JWT_SUB_MAX] = '\0';
    snprintf(payload, sizeof payload, "{\"iss\":\"" ISS "\",\"sub\":\"%s\",\"exp\":1800000600}", sub);
    t = sign("HS256", payload);
    assert_int_equal(verify(t, cfg_for(JWT_HS256), &cl), JWT_OK);
    assert_int_equal(strlen(cl.sub), JWT_SUB_MAX);
    free(t);
    sub[JWT_SUB_MAX] = 's';
    sub[JWT_SUB_MAX + 1] = '\0';
    snprintf(payload, sizeof payload, "{\"iss\":\"" ISS "\",\"sub\":\"%s\",\"exp\":1800000600}", sub);
    t = sign("HS256", payload);
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_BAD_SUB);
    free(t);
}

static void test_tampering(void **state)
{
    (void)state;
    const char *names[] = {"HS256", "RS256", "ES256"};
    for (int i = 0; i < 3; i++) {
        jwt_issuer_cfg c = cfg_for(jwt_alg_from_name(names[i]));
        char *t = sign(names[i], claims(600, NULL));
        /* payload swapped for another (validly encoded) one */
        char *other = sign(names[i], "{\"iss\":\"" ISS "\",\"sub\":\"mallory\",\"exp\":1800000600}");
        char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
        char *o1 = strchr(other, '.'), *o2 = strchr(o1 + 1, '.');
        char forged[4096];
        snprintf(forged, sizeof forged, "%.*s%.*s%s", (int)(d1 - t), t, (int)(o2 - o1), o1, d2);
        assert_int_equal(verify(forged, c, NULL), JWT_BAD_SIGNATURE);
        /* one signature character changed */
        char *sig = strrchr(t, '.') + 1;
        sig[0] = sig[0] == 'A' ? 'B' : 'A';
        assert_int_equal(verify(t, c, NULL), JWT_BAD_SIGNATURE);
        free(t);
        free(other);
    }
    /* ES256 with a DER signature instead of r||s */
    char *t = sign("ES256", claims(600, NULL));
    char *sig = strrchr(t, '.') + 1;
    strcpy(sig, "MEUCIQ");
    assert_int_equal(verify(t, cfg_for(JWT_ES256), NULL), JWT_BAD_SIGNATURE);
    free(t);
}

static void test_kid(void **state)
{
    (void)state;
    jwt_issuer_cfg c = cfg_for(JWT_HS256);
    c.kid = "k1";
    char *t = test_jwt_sign("HS256", "{\"alg\":\"HS256\",\"kid\":\"k2\"}", claims(600, NULL),
                            hs_secret, strlen((const char *)hs_secret), NULL);
    assert_int_equal(verify(t, c, NULL), JWT_BAD_KID);
    free(t);
    t = sign("HS256", claims(600, NULL));     /* no kid at all */
    assert_int_equal(verify(t, c, NULL), JWT_BAD_KID);
    free(t);
    t = test_jwt_sign("HS256", "{\"alg\":\"HS256\",\"kid\":\"k1\"}", claims(600, NULL),
                      hs_secret, strlen((const char *)hs_secret), NULL);
    assert_int_equal(verify(t, c, NULL), JWT_OK);
    free(t);
}

static void test_malformed(void **state)
{
    (void)state;
    jwt_issuer_cfg c = cfg_for(JWT_HS256);
    char *t = sign("HS256", claims(600, NULL));
    char bad[4096];
    /* padding in the header part */
    char *d1 = strchr(t, '.');
    snprintf(bad, sizeof bad, "%.*s=%s", (int)(d1 - t), t, d1);
    assert_int_equal(verify(bad, c, NULL), JWT_MALFORMED);
    /* standard-alphabet character in the payload */
    snprintf(bad, sizeof bad, "%s", t);
    *(strchr(bad, '.') + 1) = '+';
    assert_int_equal(verify(bad, c, NULL), JWT_MALFORMED);
    /* wrong number of parts */
    assert_int_equal(verify("a.b", c, NULL), JWT_MALFORMED);
    assert_int_equal(verify("a.b.c.d", c, NULL), JWT_MALFORMED);
    assert_int_equal(verify("", c, NULL), JWT_MALFORMED);
    assert_int_equal(verify("..", c, NULL), JWT_MALFORMED);
    /* a header that is not JSON */
    assert_int_equal(verify("bm90anNvbg.e30.AAAA", c, NULL), JWT_MALFORMED);
    /* a header that is JSON but not an object */
    assert_int_equal(verify("WzFd.e30.AAAA", c, NULL), JWT_MALFORMED);
    free(t);
}

static void test_oversize(void **state)
{
    (void)state;
    char *pad = malloc(9000);
    memset(pad, 'x', 8999);
    pad[8999] = '\0';
    char *payload = malloc(9200);
    snprintf(payload, 9200, "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"exp\":1800000600,\"pad\":\"%s\"}", pad);
    char *t = sign("HS256", payload);
    assert_true(strlen(t) > JWT_MAX_TOKEN);
    assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_MALFORMED);
    char iss[256];
    assert_false(jwt_peek_issuer(t, iss, sizeof iss));
    free(t);
    free(pad);
    free(payload);
}

static void test_peek_and_keys(void **state)
{
    (void)state;
    char *t = sign("RS256", claims(600, NULL));
    char iss[256];
    assert_true(jwt_peek_issuer(t, iss, sizeof iss));
    assert_string_equal(iss, ISS);
    char small[4];
    assert_false(jwt_peek_issuer(t, small, sizeof small));
    free(t);
    assert_false(jwt_peek_issuer("garbage", iss, sizeof iss));

    char err[128];
    assert_int_equal(jwt_check_key(JWT_RS256, rsa_pub_pem, strlen(rsa_pub_pem), err, sizeof err), 0);
    assert_int_equal(jwt_check_key(JWT_ES256, ec_pub_pem, strlen(ec_pub_pem), err, sizeof err), 0);
    assert_int_equal(jwt_check_key(JWT_RS256, ec_pub_pem, strlen(ec_pub_pem), err, sizeof err), -1);
    assert_int_equal(jwt_check_key(JWT_ES256, rsa_pub_pem, strlen(rsa_pub_pem), err, sizeof err), -1);
    assert_int_equal(jwt_check_key(JWT_RS256, "not a pem", 9, err, sizeof err), -1);
    assert_int_equal(jwt_check_key(JWT_HS256, "short", 5, err, sizeof err), -1);
    assert_int_equal(jwt_check_key(JWT_HS256, (const char *)hs_secret, strlen((const char *)hs_secret), err, sizeof err), 0);
    /* a bad configured key is reported as such, not as a bad token */
    jwt_issuer_cfg c = cfg_for(JWT_RS256);
    c.key = "junk";
    c.key_len = 4;
    t = sign("RS256", claims(600, NULL));
    assert_int_equal(verify(t, c, NULL), JWT_BAD_KEY);
    free(t);
    assert_int_equal(jwt_alg_from_name("none"), JWT_ALG_NONE);
    assert_int_equal(jwt_alg_from_name("rs256"), JWT_ALG_NONE);
    assert_string_equal(jwt_alg_name(JWT_ES256), "ES256");
}

/* A claim or header field given twice means one thing to cJSON (the first
 * copy) and another to most other JWT libraries (the last): two "sub",
 * "exp" or "alg" are refused as malformed, even when well signed. */
static void test_repeated_claims(void **state)
{
    (void)state;
    const char *payloads[] = {
        "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"exp\":%lld,\"sub\":\"admin\"}",
        "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"exp\":%lld,\"exp\":99999999999}",
        "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"exp\":%lld,\"x\":{\"a\":1,\"a\":2}}",
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char p[256];
        snprintf(p, sizeof p, payloads[i], (long long)(NOW + 600));
        char *t = sign("HS256", p);
        assert_int_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_MALFORMED);
        free(t);
    }
    char *t = test_jwt_sign("HS256", "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"alg\":\"none\"}",
                            claims(600, NULL), hs_secret, strlen((const char *)hs_secret), rsa_key);
    assert_int_not_equal(verify(t, cfg_for(JWT_HS256), NULL), JWT_OK);
    free(t);
    /* The issuer is not even peeked at in such a token. */
    t = sign("HS256", "{\"iss\":\"a\",\"iss\":\"" ISS "\",\"sub\":\"alice\",\"exp\":1}");
    char iss[256];
    assert_false(jwt_peek_issuer(t, iss, sizeof iss));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_all_algs),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_issuer_audience_subject),
        cmocka_unit_test(test_subject_checks),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_kid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_peek_and_keys),
        cmocka_unit_test(test_repeated_claims),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
