/* test_vault_store.c — the vault over a real store, without a provider:
 * an API-key connection sealed and used, another user's connection out of
 * reach, a sealed row copied to another user that does not open, the
 * consent flow's state (a connect link opens once; a state is taken once,
 * only in the browser bound to it, and not after it expired), and key
 * rotation re-sealing every row; brigade's own registrations at
 * authorization servers kept per (provider, redirect URI), and a token the
 * service refused marking only its own, not renewed, connection expired. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "identity/scope_mint.h"
#include "test_util.h"
#include "vault/vault_internal.h"

typedef struct fixture {
    char dir[256];
    store *st;
    brigade_config cfg;
    vault *v;
    char tenant[ID_MAX], alice_id[ID_MAX], bob_id[ID_MAX];
    scope alice, bob;
} fixture;

static const char yaml[] =
    "credential_providers:\n"
    "  - {name: keyed, kind: api_key}\n"
    "  - {name: demo, kind: oauth2, authorization_endpoint: \"http://127.0.0.1:9/authorize\",\n"
    "     token_endpoint: \"http://127.0.0.1:9/token\", client_id: brigade, scopes: [openid]}\n";

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->st = test_store_open(f->dir, sizeof f->dir, "vault-store");
    assert_non_null(f->st);
    char err[512];
    assert_int_equal(config_load_string("vault.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof err), 0);
    scope sa, ta;
    scope_mint_server_admin(&sa);
    assert_int_equal(test_store_tenant(f->st, &sa, "acme", f->tenant), STORE_OK);
    scope_mint_tenant_admin(&ta, f->tenant, "key_admin");
    assert_int_equal(test_store_user(f->st, &ta, "alice", f->alice_id), STORE_OK);
    assert_int_equal(test_store_user(f->st, &ta, "bob", f->bob_id), STORE_OK);
    scope_mint_user(&f->alice, f->tenant, f->alice_id, "key_alice", "default");
    scope_mint_user(&f->bob, f->tenant, f->bob_id, "key_bob", "default");
    f->v = vault_open(f->st, &f->cfg, f->dir, err, sizeof err);
    assert_non_null(f->v);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vault_free(f->v);
    config_free(&f->cfg);
    test_store_close(f->st, f->dir);
    free(f);
    return 0;
}

static void connect_key(fixture *f, const scope *sc, const char *key, char id[ID_MAX])
{
    connection_rec c;
    char url[VAULT_URL_MAX], why[VAULT_WHY_MAX];
    assert_int_equal(vault_connect(f->v, sc, "keyed", key, &c, url, why), VAULT_OK);
    assert_string_equal(c.status, "active");
    assert_string_equal(url, "");
    snprintf(id, ID_MAX, "%s", c.id);
}

static void test_api_key_and_isolation(void **state)
{
    fixture *f = *state;
    char id[ID_MAX];
    connect_key(f, &f->alice, "alice-key-0123456789", id);
    vault_token t;
    vault_token_get(f->v, &f->alice, "keyed", NULL, 0, "Key {token}!", &t);
    assert_int_equal(t.status, VAULT_TOKEN_OK);
    assert_string_equal(t.header_value, "Key alice-key-0123456789!");
    assert_string_equal(t.connection_id, id);
    vault_token_clear(&t);
    /* bob has none, and cannot read or erase alice's */
    vault_token_get(f->v, &f->bob, "keyed", NULL, 0, "{token}", &t);
    assert_int_equal(t.status, VAULT_TOKEN_MISSING);
    assert_null(t.header_value);
    connection_rec c;
    assert_int_equal(store_connection_get(f->st, &f->bob, id, &c), STORE_NOT_FOUND);
    bool remote;
    char why[VAULT_WHY_MAX];
    assert_int_equal(vault_disconnect(f->v, &f->bob, id, &remote, why), VAULT_NOT_FOUND);
    assert_int_equal(store_connection_get(f->st, &f->alice, id, &c), STORE_OK);
    assert_non_null(c.sealed);
    assert_null(strstr(c.sealed, "alice-key"));
    connection_rec_free(&c);
    /* an oauth2 provider is not connected with a key, and a key provider
     * not without one */
    char url[VAULT_URL_MAX];
    assert_int_equal(vault_connect(f->v, &f->bob, "demo", "k", &c, url, why), VAULT_INVALID);
    assert_int_equal(vault_connect(f->v, &f->bob, "keyed", NULL, &c, url, why), VAULT_INVALID);
    assert_int_equal(vault_connect(f->v, &f->bob, "nope", NULL, &c, url, why), VAULT_NOT_FOUND);
}

static void test_copied_row_does_not_open(void **state)
{
    fixture *f = *state;
    char a[ID_MAX], b[ID_MAX];
    connect_key(f, &f->alice, "alice-secret-key-1", a);
    connect_key(f, &f->bob, "bob-secret-key-22", b);
    /* bob's row gets alice's sealed secret (an attacker with the database) */
    char path[600], *msg = NULL, sql[512];
    snprintf(path, sizeof path, "%s/brigade.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    snprintf(sql, sizeof sql, "UPDATE connections SET sealed = (SELECT sealed FROM connections WHERE id = '%s') "
             "WHERE id = '%s'", a, b);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK);
    sqlite3_close(db);
    vault_token t;
    vault_token_get(f->v, &f->bob, "keyed", NULL, 0, "{token}", &t);
    assert_int_equal(t.status, VAULT_TOKEN_ERROR);
    assert_null(t.header_value);
    assert_non_null(strstr(t.why, "does not open"));
    vault_token_get(f->v, &f->alice, "keyed", NULL, 0, "{token}", &t);
    assert_int_equal(t.status, VAULT_TOKEN_OK);
    assert_string_equal(t.header_value, "alice-secret-key-1");
    vault_token_clear(&t);
}

static char *ticket_of(const char *url)
{
    const char *t = strstr(url, "ticket=");
    assert_non_null(t);
    return strdup(t + 7);
}

static void test_flow_state(void **state)
{
    fixture *f = *state;
    connection_rec c;
    char url[VAULT_URL_MAX], why[VAULT_WHY_MAX], cookie[64], loc[VAULT_URL_MAX], cookie2[64];
    assert_int_equal(vault_connect(f->v, &f->alice, "demo", NULL, &c, url, why), VAULT_OK);
    assert_string_equal(c.status, "pending");
    assert_non_null(strstr(url, "/oauth/start?ticket="));
    char *ticket = ticket_of(url);
    assert_int_equal(vault_oauth_start(f->v, ticket, cookie, loc, why), VAULT_OK);
    assert_ptr_equal(strstr(loc, "http://127.0.0.1:9/authorize?response_type=code&client_id=brigade&"), loc);
    assert_non_null(strstr(loc, "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Foauth%2Fcallback&"));
    assert_non_null(strstr(loc, "&code_challenge_method=S256&code_challenge="));
    /* the link opens once */
    assert_int_equal(vault_oauth_start(f->v, ticket, cookie2, loc, why), VAULT_CONFLICT);
    assert_int_equal(vault_oauth_start(f->v, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", cookie2, loc, why),
                     VAULT_NOT_FOUND);
    free(ticket);

    /* the state the provider would return */
    vault_flow_owner who;
    vault_status vs;
    vs = vault_oauth_callback(f->v, "forged-state", "code", NULL, NULL, cookie, &who, why);
    assert_int_equal(vs, VAULT_NOT_FOUND);
    /* the real state, from the authorization URL of a second flow */
    assert_int_equal(vault_connect(f->v, &f->alice, "demo", NULL, &c, url, why), VAULT_OK);
    ticket = ticket_of(url);
    assert_int_equal(vault_oauth_start(f->v, ticket, cookie, loc, why), VAULT_OK);
    free(ticket);
    char st[128];
    const char *s = strstr(loc, "&state=") + 7;
    snprintf(st, sizeof st, "%.*s", (int)strcspn(s, "&"), s);
    /* another browser's cookie: refused, and the state is spent */
    vs = vault_oauth_callback(f->v, st, "code", NULL, NULL, "someone-elses-cookie", &who, why);
    assert_int_equal(vs, VAULT_INVALID);
    assert_non_null(strstr(why, "not started in this browser"));
    assert_string_equal(who.user_id, f->alice_id);
    vs = vault_oauth_callback(f->v, st, "code", NULL, NULL, cookie, &who, why);
    assert_int_equal(vs, VAULT_NOT_FOUND);

    /* expired: a flow past its time is taken and refused */
    assert_int_equal(vault_connect(f->v, &f->alice, "demo", NULL, &c, url, why), VAULT_OK);
    ticket = ticket_of(url);
    assert_int_equal(vault_oauth_start(f->v, ticket, cookie, loc, why), VAULT_OK);
    free(ticket);
    s = strstr(loc, "&state=") + 7;
    snprintf(st, sizeof st, "%.*s", (int)strcspn(s, "&"), s);
    char path[600], *msg = NULL;
    snprintf(path, sizeof path, "%s/brigade.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, "UPDATE oauth_flows SET expires_at = 1", NULL, NULL, &msg), SQLITE_OK);
    sqlite3_close(db);
    vs = vault_oauth_callback(f->v, st, "code", NULL, NULL, cookie, &who, why);
    assert_int_equal(vs, VAULT_NOT_FOUND);
}

static void test_rotation(void **state)
{
    fixture *f = *state;
    char a[ID_MAX], b[ID_MAX];
    connect_key(f, &f->alice, "alice-rotating-key", a);
    connect_key(f, &f->bob, "bob-rotating-key", b);
    size_t n = 0;
    int version = 0;
    char err[256];
    assert_int_equal(vault_rotate_key(f->st, f->dir, &n, &version, err, sizeof err), 0);
    assert_int_equal(version, 2);
    assert_int_equal(n, 2);
    connection_rec c;
    assert_int_equal(store_connection_get(f->st, &f->alice, a, &c), STORE_OK);
    assert_int_equal(c.key_version, 2);
    assert_int_equal(vault_sealed_version(c.sealed), 2);
    connection_rec_free(&c);
    /* the running vault opens them (it reads the new key when it meets it) */
    vault_token t;
    vault_token_get(f->v, &f->bob, "keyed", NULL, 0, "{token}", &t);
    assert_int_equal(t.status, VAULT_TOKEN_OK);
    assert_string_equal(t.header_value, "bob-rotating-key");
    vault_token_clear(&t);
    /* and a second rotation still works */
    assert_int_equal(vault_rotate_key(f->st, f->dir, &n, &version, err, sizeof err), 0);
    assert_int_equal(version, 3);
    vault_token_get(f->v, &f->alice, "keyed", NULL, 0, "{token}", &t);
    assert_int_equal(t.status, VAULT_TOKEN_OK);
    vault_token_clear(&t);
}

static void test_oauth_client_kept(void **state)
{
    fixture *f = *state;
    oauth_client_rec r, got;
    assert_int_equal(store_oauth_client_get(f->st, "mcp:a:0011", "https://b.example/oauth/callback", &got),
                     STORE_NOT_FOUND);
    memset(&r, 0, sizeof r);
    snprintf(r.provider, sizeof r.provider, "mcp:a:0011");
    snprintf(r.redirect_uri, sizeof r.redirect_uri, "https://b.example/oauth/callback");
    snprintf(r.token_endpoint, sizeof r.token_endpoint, "https://as.example/token");
    snprintf(r.client_id, sizeof r.client_id, "client-1");
    snprintf(r.auth_method, sizeof r.auth_method, "none");
    r.created_at = 100;
    assert_int_equal(store_oauth_client_put(f->st, &r), STORE_OK);
    assert_int_equal(store_oauth_client_get(f->st, "mcp:a:0011", "https://b.example/oauth/callback", &got), STORE_OK);
    assert_string_equal(got.client_id, "client-1");
    assert_string_equal(got.token_endpoint, "https://as.example/token");
    assert_string_equal(got.auth_method, "none");
    /* another public URL is another registration */
    assert_int_equal(store_oauth_client_get(f->st, "mcp:a:0011", "https://c.example/oauth/callback", &got),
                     STORE_NOT_FOUND);
    /* registered again: replaced */
    snprintf(r.client_id, sizeof r.client_id, "client-2");
    assert_int_equal(store_oauth_client_put(f->st, &r), STORE_OK);
    assert_int_equal(store_oauth_client_get(f->st, "mcp:a:0011", "https://b.example/oauth/callback", &got), STORE_OK);
    assert_string_equal(got.client_id, "client-2");
    r.client_id[0] = '\0';
    assert_int_equal(store_oauth_client_put(f->st, &r), STORE_INVALID);
}

static void test_token_refused(void **state)
{
    fixture *f = *state;
    char id_a[ID_MAX], id_b[ID_MAX];
    connect_key(f, &f->alice, "sk-alice-0123456789", id_a);
    connect_key(f, &f->bob, "sk-bob-0123456789", id_b);
    int64_t now = time(NULL);
    /* renewed after the refused token was read (fetched_at in the past): left alone */
    vault_token_refused(f->v, &f->alice, "keyed", id_a, now - 100);
    assert_true(vault_connection_active(f->v, &f->alice, "keyed"));
    /* another connection's id, or another user's: left alone */
    vault_token_refused(f->v, &f->alice, "keyed", id_b, now + 1);
    vault_token_refused(f->v, &f->bob, "keyed", id_a, now + 1);
    assert_true(vault_connection_active(f->v, &f->alice, "keyed"));
    assert_true(vault_connection_active(f->v, &f->bob, "keyed"));
    /* refused as read: expired, the next token is MISSING */
    vault_token_refused(f->v, &f->alice, "keyed", id_a, now + 1);
    assert_false(vault_connection_active(f->v, &f->alice, "keyed"));
    assert_true(vault_connection_active(f->v, &f->bob, "keyed"));
    vault_token t;
    vault_token_get(f->v, &f->alice, "keyed", NULL, 0, "{token}", &t);
    assert_int_equal(t.status, VAULT_TOKEN_MISSING);
    vault_token_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_api_key_and_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oauth_client_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copied_row_does_not_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flow_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
