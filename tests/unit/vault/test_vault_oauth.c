/* test_vault_oauth.c — the pure pieces of consent: PKCE S256 (checked against another
 * implementation), random states, hashing, percent-encoding, reading the
 * flow's cookie, reading a token endpoint's answer (good, an OAuth error,
 * garbage, too large, duplicate keys, a non-bearer token, a token that
 * cannot go in a header), and when a token is refreshed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vault/vault_internal.h"

/* S256: base64url(SHA-256(verifier)) without padding; the expected value
 * was computed with another implementation (Python's hashlib + base64). */
static void test_pkce_s256(void **state)
{
    (void)state;
    char ch[64];
    vault_pkce_challenge("dBjftJeZ4CVP-mJ92DKCRTs2JmREANGBmUp6T3I6ePg", ch);
    assert_string_equal(ch, "rMu0roald-39NAEIBinSaLg8FfF5Bk9gKp3zStk3pNg");
    vault_pkce_challenge("", ch);
    assert_string_equal(ch, "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
}

static void test_random_tokens(void **state)
{
    (void)state;
    char a[64], b[64];
    vault_random_token(a);
    vault_random_token(b);
    assert_int_equal(strlen(a), 43);   /* 256 bits, base64url, no padding */
    assert_string_not_equal(a, b);
    for (const char *p = a; *p; p++)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    *p == '-' || *p == '_');
    char h[65];
    vault_hash_hex("abc", h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_url_encode(void **state)
{
    (void)state;
    char out[64] = "x=";
    vault_url_encode(out, sizeof out, "a b&c=d/é~");
    assert_string_equal(out, "x=a%20b%26c%3Dd%2F%C3%A9~");
    char tiny[8] = "";
    vault_url_encode(tiny, sizeof tiny, "%%%%%%%%");
    assert_true(strlen(tiny) < sizeof tiny);
}

static void test_cookie(void **state)
{
    (void)state;
    char v[64];
    assert_true(vault_cookie_get("brigade_oauth=abc", "brigade_oauth", v, sizeof v));
    assert_string_equal(v, "abc");
    assert_true(vault_cookie_get("a=1; brigade_oauth=xyz ; b=2", "brigade_oauth", v, sizeof v));
    assert_string_equal(v, "xyz");
    assert_false(vault_cookie_get("xbrigade_oauth=1; brigade_oauthx=2", "brigade_oauth", v, sizeof v));
    assert_false(vault_cookie_get("brigade_oauth=", "brigade_oauth", v, sizeof v));
    assert_false(vault_cookie_get("brigade_oauth", "brigade_oauth", v, sizeof v));
    assert_false(vault_cookie_get(NULL, "brigade_oauth", v, sizeof v));
    char small[4];
    assert_false(vault_cookie_get("brigade_oauth=toolong", "brigade_oauth", small, sizeof small));
}

static int parse(const char *body, vault_token_response *r, char *why)
{
    return vault_parse_token_response(body, strlen(body), r, why, 256);
}

static void test_token_response(void **state)
{
    (void)state;
    vault_token_response r;
    char why[256];
    assert_int_equal(parse("{\"access_token\":\"AT1\",\"token_type\":\"Bearer\",\"expires_in\":3600,"
                           "\"refresh_token\":\"RT1\",\"scope\":\"openid offline_access\"}", &r, why), 0);
    assert_string_equal(r.access_token, "AT1");
    assert_string_equal(r.refresh_token, "RT1");
    assert_int_equal(r.expires_in, 3600);
    assert_string_equal(r.scope, "openid offline_access");
    vault_token_response_free(&r);

    assert_int_equal(parse("{\"error\":\"invalid_grant\",\"error_description\":\"<b>gone</b>\"}", &r, why), 1);
    assert_string_equal(r.error, "invalid_grant");
    assert_null(strstr(why, "<b>"));
    /* a provider cannot put anything but the error code's letters in our messages */
    assert_int_equal(parse("{\"error\":\"bad<script>\\n\"}", &r, why), 1);
    assert_string_equal(r.error, "badscript");

    assert_int_equal(parse("<html>", &r, why), -1);
    assert_non_null(strstr(why, "not a JSON object"));
    assert_int_equal(parse("[]", &r, why), -1);
    assert_int_equal(parse("{\"access_token\":\"a\",\"access_token\":\"b\"}", &r, why), -1);
    assert_int_equal(parse("{\"token_type\":\"Bearer\"}", &r, why), -1);
    assert_int_equal(parse("{\"access_token\":\"has space\"}", &r, why), -1);
    assert_int_equal(parse("{\"access_token\":\"a\\r\\nX-Injected: 1\"}", &r, why), -1);
    assert_int_equal(parse("{\"access_token\":\"AT\",\"token_type\":\"mac\"}", &r, why), -1);
    assert_int_equal(parse("{\"access_token\":\"AT\",\"expires_in\":\"soon\"}", &r, why), -1);
    assert_int_equal(parse("{\"access_token\":\"AT\",\"refresh_token\":7}", &r, why), -1);
    assert_int_equal(vault_parse_token_response("", 0, &r, why, sizeof why), -1);
    size_t big = VAULT_MAX_TOKEN_RESPONSE + 10;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    assert_int_equal(vault_parse_token_response(huge, big, &r, why, sizeof why), -1);
    assert_non_null(strstr(why, "over"));
    free(huge);
}

static void test_refresh_due(void **state)
{
    (void)state;
    assert_int_equal(vault_refresh_due_ms(1000, 0), 0);              /* never expires */
    assert_int_equal(vault_refresh_due_ms(0, 3600), 3600000 - 5000); /* 5 s early */
    assert_int_equal(vault_refresh_due_ms(0, 2), 1500);              /* a quarter of a short life */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkce_s256),
        cmocka_unit_test(test_random_tokens),
        cmocka_unit_test(test_url_encode),
        cmocka_unit_test(test_cookie),
        cmocka_unit_test(test_token_response),
        cmocka_unit_test(test_refresh_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
