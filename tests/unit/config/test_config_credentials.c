/* test_config_credentials.c — `credential_providers:`, a tool's `auth:` and
 * `server.public_url`: what is read, the defaults, and the errors each
 * reports (a secret only from the environment, a provider a tool names must
 * exist, a header not set twice). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"

static char err[1024];

static int load(const char *yaml, brigade_config *cfg)
{
    err[0] = '\0';
    return config_load_string("brigade.yaml", yaml, strlen(yaml), cfg, err, sizeof(err));
}

static void expect_error(const char *yaml, const char *want)
{
    brigade_config c;
    int rc = load(yaml, &c);
    if (rc == 0 || !strstr(err, want)) {
        print_error("want error containing [%s]\n got rc=%d err=[%s]\n", want, rc, err);
        if (rc == 0) config_free(&c);
        fail();
    }
    config_free(&c);
}

#define PROVIDERS                                                                          \
    "credential_providers:\n"                                                              \
    "  - {name: gh, kind: oauth2, issuer: \"https://auth.example.com\", client_id: app,\n"  \
    "     client_secret_env: TEST_GH_SECRET, scopes: [openid, \"repo:read\"],\n"              \
    "     resource: \"https://api.example.com\", timeout_ms: 3000}\n"                       \
    "  - {name: manual, kind: oauth2, authorization_endpoint: \"https://a.example/authorize\",\n" \
    "     token_endpoint: \"https://a.example/token\", client_id: pub}\n"                   \
    "  - {name: keyed, kind: api_key}\n"

static void test_providers_and_auth(void **state)
{
    (void)state;
    setenv("TEST_GH_SECRET", "s3cret-from-env", 1);
    brigade_config c;
    int rc = load(PROVIDERS
                  "server: {public_url: \"https://brigade.example.com/\"}\n"
                  "tools:\n"
                  "  - {name: repos, url: \"https://api.example.com/repos\", auth: {provider: gh, scopes: [\"repo:read\"]}}\n"
                  "  - {name: tix, url: \"https://t.example/x\", auth: {provider: keyed, header: X-Api-Key, format: \"{token}\"}}\n",
                  &c);
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_credential_providers, 3);
    const credential_provider_cfg *gh = config_find_credential_provider(&c, "gh");
    assert_non_null(gh);
    assert_int_equal(gh->kind, CREDENTIAL_OAUTH2);
    assert_string_equal(gh->client_secret, "s3cret-from-env");
    assert_int_equal(gh->n_scopes, 2);
    assert_string_equal(gh->scopes[1], "repo:read");
    assert_string_equal(gh->resource, "https://api.example.com");
    assert_int_equal(gh->timeout_ms, 3000);
    assert_null(gh->authorization_endpoint);   /* discovered at first use */
    const credential_provider_cfg *m = config_find_credential_provider(&c, "manual");
    assert_null(m->client_secret);
    assert_int_equal(m->timeout_ms, 10000);
    assert_int_equal(config_find_credential_provider(&c, "keyed")->kind, CREDENTIAL_API_KEY);
    assert_null(config_find_credential_provider(&c, "nope"));
    assert_string_equal(c.public_url, "https://brigade.example.com");
    const tool_cfg *t = &c.tools[0];
    assert_string_equal(t->auth_provider, "gh");
    assert_string_equal(t->auth_header, "Authorization");
    assert_string_equal(t->auth_format, "Bearer {token}");
    assert_int_equal(t->n_auth_scopes, 1);
    assert_string_equal(c.tools[1].auth_header, "X-Api-Key");
    assert_string_equal(c.tools[1].auth_format, "{token}");
    config_free(&c);
}

static void test_errors(void **state)
{
    (void)state;
    setenv("TEST_GH_SECRET", "s3cret-from-env", 1);
    unsetenv("TEST_UNSET_SECRET");
    expect_error("credential_providers:\n  - {name: x, kind: saml}\n", "unknown kind \"saml\"");
    expect_error("credential_providers:\n  - {name: x}\n", "missing required key \"kind\"");
    expect_error("credential_providers:\n  - {name: x, kind: oauth2, client_id: a}\n",
                 "needs \"issuer\" (discovery) or both");
    expect_error("credential_providers:\n  - {name: x, kind: oauth2, issuer: \"https://i\"}\n",
                 "missing required key \"client_id\"");
    expect_error("credential_providers:\n  - {name: x, kind: oauth2, issuer: \"https://i\", client_id: a, client_secret: s}\n",
                 "client_secret: unknown key");
    expect_error("credential_providers:\n  - {name: x, kind: oauth2, issuer: \"https://i\", client_id: a, client_secret_env: TEST_UNSET_SECRET}\n",
                 "environment variable TEST_UNSET_SECRET is not set");
    expect_error("credential_providers:\n  - {name: x, kind: oauth2, issuer: \"ftp://i\", client_id: a}\n",
                 "must start with http:// or https://");
    expect_error("credential_providers:\n  - {name: x, kind: oauth2, issuer: \"https://i#f\", client_id: a}\n",
                 "must not contain a fragment");
    expect_error("credential_providers:\n  - {name: x, kind: oauth2, issuer: \"https://i\", client_id: a, scopes: [\"a b\"]}\n",
                 "is not a scope");
    expect_error("credential_providers:\n  - {name: x, kind: api_key, client_id: a}\n",
                 "\"client_id\" is for kind oauth2");
    expect_error("credential_providers:\n  - {name: x, kind: api_key}\n  - {name: x, kind: api_key}\n",
                 "credential_providers");
    expect_error("tools:\n  - {name: t, url: \"https://x/\", auth: {provider: ghost}}\n",
                 "no credential provider named \"ghost\"");
    expect_error(PROVIDERS "tools:\n  - {name: t, url: \"https://x/\", auth: {provider: keyed, format: \"Bearer\"}}\n",
                 "must contain \"{token}\" exactly once");
    expect_error(PROVIDERS "tools:\n  - {name: t, url: \"https://x/\", auth: {provider: keyed, header: Host}}\n",
                 "cannot carry a token");
    expect_error(PROVIDERS "tools:\n  - {name: t, url: \"https://x/\", headers: {authorization: \"Bearer shared\"},\n"
                 "     auth: {provider: gh}}\n",
                 "also sets the header \"Authorization\"");
    expect_error(PROVIDERS "tools:\n  - {name: t, url: \"https://x/\", auth: {scopes: [a]}}\n",
                 "missing required key \"provider\"");
    expect_error("server: {public_url: \"https://b.example/path\"}\n", "must be an origin");
    expect_error("server: {public_url: \"https://user@b.example\"}\n", "must be an origin");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_providers_and_auth),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
