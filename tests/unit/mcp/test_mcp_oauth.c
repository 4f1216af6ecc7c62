/* test_mcp_oauth.c — the pure pieces of MCP authorization (src/mcp/
 * oauth_www.c): reading a WWW-Authenticate (Bearer among other challenges,
 * token and quoted values, escapes, what is malformed or too long is
 * refused, never cut) and the well-known URLs tried for protected-resource
 * and authorization-server metadata, in the spec's order; the vault's
 * provider name of a server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/mcp_oauth.h"

static void test_www_bearer_params(void **state)
{
    (void)state;
    mcp_www_auth w;
    assert_true(mcp_www_auth_parse("Bearer resource_metadata=\"https://mcp.example.com/.well-known/"
                                   "oauth-protected-resource/mcp\", scope=\"files:read files:write\"", &w));
    assert_true(w.bearer);
    assert_string_equal(w.resource_metadata, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
    assert_string_equal(w.scope, "files:read files:write");
    assert_string_equal(w.error, "");

    assert_true(mcp_www_auth_parse("bearer error=insufficient_scope,scope=\"a b\"", &w));
    assert_string_equal(w.error, "insufficient_scope");
    assert_string_equal(w.scope, "a b");

    /* a bare Bearer */
    assert_true(mcp_www_auth_parse("Bearer", &w));
    assert_string_equal(w.scope, "");
}

static void test_www_several_challenges(void **state)
{
    (void)state;
    mcp_www_auth w;
    /* the Basic challenge's realm and scope are not Bearer's */
    assert_true(mcp_www_auth_parse("Basic realm=\"x\", scope=\"nope\", Bearer scope=\"yes\", error=\"invalid_token\"", &w));
    assert_string_equal(w.scope, "yes");
    assert_string_equal(w.error, "invalid_token");
    /* a token68 challenge before */
    assert_true(mcp_www_auth_parse("Negotiate abc123==, Bearer resource_metadata=\"https://h/x\"", &w));
    assert_string_equal(w.resource_metadata, "https://h/x");
    /* no Bearer at all */
    assert_false(mcp_www_auth_parse("Basic realm=\"x\"", &w));
    assert_false(mcp_www_auth_parse("", &w));
    assert_false(mcp_www_auth_parse(NULL, &w));
}

static void test_www_escapes_and_malformed(void **state)
{
    (void)state;
    mcp_www_auth w;
    assert_true(mcp_www_auth_parse("Bearer scope=\"a\\\"b\\\\c\"", &w));
    assert_string_equal(w.scope, "a\"b\\c");
    assert_false(mcp_www_auth_parse("Bearer scope=\"unterminated", &w));
    assert_false(mcp_www_auth_parse("Bearer scope=\"a\" junk junk", &w));
    assert_false(mcp_www_auth_parse("Bearer scope=\"a\x01\"", &w));   /* a control character */
    assert_false(mcp_www_auth_parse("Bearer scope=\"a\"\"b\"", &w));
    assert_false(mcp_www_auth_parse("\"quoted\" scheme", &w));
    /* too long a value is refused, not cut into another URL */
    size_t n = MCP_OAUTH_URL_MAX + 100;
    char *big = malloc(n + 64);
    int k = snprintf(big, n + 64, "Bearer resource_metadata=\"https://h/");
    memset(big + k, 'a', n - (size_t)k);
    strcpy(big + n, "\"");
    assert_false(mcp_www_auth_parse(big, &w));
    free(big);
}

static void test_prm_urls(void **state)
{
    (void)state;
    char u[MCP_OAUTH_MAX_WELL_KNOWN][MCP_OAUTH_URL_MAX];
    assert_int_equal(mcp_prm_urls("https://h.example:8443/public/mcp?x=1", u, MCP_OAUTH_MAX_WELL_KNOWN), 2);
    assert_string_equal(u[0], "https://h.example:8443/.well-known/oauth-protected-resource/public/mcp");
    assert_string_equal(u[1], "https://h.example:8443/.well-known/oauth-protected-resource");
    assert_int_equal(mcp_prm_urls("http://h/", u, MCP_OAUTH_MAX_WELL_KNOWN), 1);
    assert_string_equal(u[0], "http://h/.well-known/oauth-protected-resource");
    assert_int_equal(mcp_prm_urls("http://h/mcp/", u, MCP_OAUTH_MAX_WELL_KNOWN), 2);
    assert_string_equal(u[0], "http://h/.well-known/oauth-protected-resource/mcp");
    assert_int_equal(mcp_prm_urls("ftp://h/mcp", u, MCP_OAUTH_MAX_WELL_KNOWN), 0);
    assert_int_equal(mcp_prm_urls("http://user@h/mcp", u, MCP_OAUTH_MAX_WELL_KNOWN), 0);
    assert_int_equal(mcp_prm_urls("http:///mcp", u, MCP_OAUTH_MAX_WELL_KNOWN), 0);
}

static void test_as_meta_urls(void **state)
{
    (void)state;
    char u[MCP_OAUTH_MAX_WELL_KNOWN][MCP_OAUTH_URL_MAX];
    assert_int_equal(mcp_as_meta_urls("https://auth.example.com/tenant1", u, MCP_OAUTH_MAX_WELL_KNOWN), 3);
    assert_string_equal(u[0], "https://auth.example.com/.well-known/oauth-authorization-server/tenant1");
    assert_string_equal(u[1], "https://auth.example.com/.well-known/openid-configuration/tenant1");
    assert_string_equal(u[2], "https://auth.example.com/tenant1/.well-known/openid-configuration");
    assert_int_equal(mcp_as_meta_urls("https://auth.example.com", u, MCP_OAUTH_MAX_WELL_KNOWN), 2);
    assert_string_equal(u[0], "https://auth.example.com/.well-known/oauth-authorization-server");
    assert_string_equal(u[1], "https://auth.example.com/.well-known/openid-configuration");
    /* fewer slots than URLs: the first ones */
    assert_int_equal(mcp_as_meta_urls("https://a/t", u, 1), 1);
    assert_string_equal(u[0], "https://a/.well-known/oauth-authorization-server/t");
    assert_int_equal(mcp_as_meta_urls("javascript:alert(1)", u, MCP_OAUTH_MAX_WELL_KNOWN), 0);
}

static void test_origin(void **state)
{
    (void)state;
    char o[MCP_OAUTH_URL_MAX];
    assert_true(mcp_url_origin("https://h:1/a/b?c", o, sizeof o));
    assert_string_equal(o, "https://h:1");
    assert_false(mcp_url_origin("file:///etc/passwd", o, sizeof o));
    assert_false(mcp_url_origin("https://h\\@evil/", o, sizeof o));
}

/* The vault's provider of a server: bound to the tenant, the URL and the
 * client, so a definition repointed elsewhere is another provider. */
static void test_provider_name(void **state)
{
    (void)state;
    char a[MCP_OAUTH_PROVIDER_MAX], b[MCP_OAUTH_PROVIDER_MAX];
    mcp_oauth_provider_name("tracker", "https://t.example/mcp", NULL, "", a);
    assert_int_equal(strlen(a), strlen("mcp:tracker:") + 16);
    assert_memory_equal(a, "mcp:tracker:", 12);
    mcp_oauth_provider_name("tracker", "https://t.example/mcp", NULL, "", b);
    assert_string_equal(a, b);   /* stable */
    mcp_oauth_provider_name("tracker", "https://evil.example/mcp", NULL, "", b);
    assert_string_not_equal(a, b);
    mcp_oauth_provider_name("tracker", "https://t.example/mcp", NULL, "ten_1", b);
    assert_string_not_equal(a, b);
    mcp_oauth_provider_name("tracker", "https://t.example/mcp", "client-2", "", b);
    assert_string_not_equal(a, b);
    /* no two splits of the same bytes hash alike */
    mcp_oauth_provider_name("x", "ab", "c", "", a);
    mcp_oauth_provider_name("x", "a", "bc", "", b);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_www_bearer_params),
        cmocka_unit_test(test_www_several_challenges),
        cmocka_unit_test(test_www_escapes_and_malformed),
        cmocka_unit_test(test_prm_urls),
        cmocka_unit_test(test_as_meta_urls),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_provider_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
