/* test_config_store.c — the `store:` section: sqlite by default, postgres
 * with a URL (from the environment), and every malformed form refused with
 * the key's path in the message. */
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

static void refused(const char *yaml, const char *want)
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

static void test_default_is_sqlite(void **state)
{
    (void)state;
    brigade_config c;
    assert_int_equal(load("server: {listen: '127.0.0.1:8080'}\n", &c), 0);
    assert_int_equal(c.store.kind, STORE_CFG_SQLITE);
    assert_null(c.store.url);
    assert_int_equal(c.store.pool_size, 8);
    config_free(&c);
    assert_int_equal(load("store: {kind: sqlite}\n", &c), 0);
    assert_int_equal(c.store.kind, STORE_CFG_SQLITE);
    config_free(&c);
}

static void test_postgres_from_env(void **state)
{
    (void)state;
    setenv("BRIGADE_TEST_DATABASE_URL", "postgresql:///brigade?host=/tmp/x", 1);
    brigade_config c;
    assert_int_equal(load("store:\n  kind: postgres\n  url: ${BRIGADE_TEST_DATABASE_URL}\n  pool_size: 16\n", &c), 0);
    assert_int_equal(c.store.kind, STORE_CFG_POSTGRES);
    assert_string_equal(c.store.url, "postgresql:///brigade?host=/tmp/x");
    assert_int_equal(c.store.pool_size, 16);
    config_free(&c);
}

static void test_bad_store(void **state)
{
    (void)state;
    refused("store: {kind: mysql}\n", "store.kind: must be sqlite or postgres");
    refused("store: {kind: postgres}\n", "store.url: kind postgres needs url");
    refused("store: {kind: postgres, url: ''}\n", "store.url");
    refused("store: {kind: sqlite, url: 'postgresql://x'}\n", "store.url: only for kind postgres");
    refused("store: {kind: postgres, url: 'postgresql:///x', pool_size: 0}\n", "store.pool_size");
    refused("store: {kind: postgres, url: 'postgresql:///x', pool_size: 257}\n", "store.pool_size");
    refused("store: {kind: postgres, url: 'postgresql:///x', pool: 4}\n", "pool");   /* unknown key */
    unsetenv("BRIGADE_TEST_UNSET_URL");
    refused("store: {kind: postgres, url: '${BRIGADE_TEST_UNSET_URL}'}\n", "BRIGADE_TEST_UNSET_URL");
    refused("store: [postgres]\n", "store");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_sqlite),
        cmocka_unit_test(test_postgres_from_env),
        cmocka_unit_test(test_bad_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
