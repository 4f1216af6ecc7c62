/* test_console_session.c — the console's session table: ids and CSRF
 * tokens are random 256-bit hex, a session resolves only with its token
 * (or without, where asked), idles out and slides, is bounded (the least
 * recently used goes first), closes; and the Cookie header parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "console/console_session.h"

static void test_open_resolve_csrf(void **state)
{
    (void)state;
    console_sessions *t = console_sessions_new(4, 60);
    char id[65], csrf[65], id2[65], csrf2[65], cred[256], got_csrf[65];
    assert_true(console_session_open(t, "Bearer bk_usr_abc", 1000, id, csrf));
    assert_true(console_session_open(t, "Bearer bk_usr_def", 1000, id2, csrf2));
    assert_int_equal(strlen(id), 64);
    assert_int_equal(strlen(csrf), 64);
    assert_string_not_equal(id, id2);
    assert_string_not_equal(id, csrf);
    assert_string_not_equal(csrf, csrf2);

    int64_t exp = 0;
    assert_int_equal(console_session_resolve(t, id, csrf, true, 1001, cred, sizeof cred, got_csrf, &exp),
                     CONSOLE_SESSION_OK);
    assert_string_equal(cred, "Bearer bk_usr_abc");
    assert_string_equal(got_csrf, csrf);
    assert_int_equal(exp, 1061);
    /* the cookie alone, or another session's token, is refused */
    assert_int_equal(console_session_resolve(t, id, NULL, true, 1001, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_BAD_CSRF);
    assert_int_equal(console_session_resolve(t, id, csrf2, true, 1001, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_BAD_CSRF);
    assert_int_equal(console_session_resolve(t, id, "", true, 1001, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_BAD_CSRF);
    /* where asked, the token is not needed (the page's own session read) */
    assert_int_equal(console_session_resolve(t, id, NULL, false, 1001, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_OK);
    /* unknown ids, wrong lengths */
    assert_int_equal(console_session_resolve(t, "abc", csrf, true, 1001, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_UNKNOWN);
    char other[65];
    memcpy(other, id, 65);
    other[0] = other[0] == 'a' ? 'b' : 'a';
    assert_int_equal(console_session_resolve(t, other, csrf, true, 1001, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_UNKNOWN);
    /* a buffer too small for the credential is not a hit */
    char tiny[4];
    assert_int_equal(console_session_resolve(t, id, csrf, true, 1001, tiny, sizeof tiny, NULL, NULL),
                     CONSOLE_SESSION_UNKNOWN);
    console_sessions_free(t);
}

static void test_idle_expiry_slides(void **state)
{
    (void)state;
    console_sessions *t = console_sessions_new(4, 60);
    char id[65], csrf[65], cred[64];
    assert_true(console_session_open(t, "Bearer x", 1000, id, csrf));
    /* used at 1050: now lives until 1110 */
    assert_int_equal(console_session_resolve(t, id, csrf, true, 1050, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_OK);
    assert_int_equal(console_session_resolve(t, id, csrf, true, 1100, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_OK);
    assert_int_equal(console_sessions_count(t, 1100), 1);
    /* idle past the timeout: gone for good */
    assert_int_equal(console_session_resolve(t, id, csrf, true, 1161, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_UNKNOWN);
    assert_int_equal(console_session_resolve(t, id, csrf, true, 1100, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_UNKNOWN);
    assert_int_equal(console_sessions_count(t, 1100), 0);
    console_sessions_free(t);
}

static void test_bounded_lru_and_close(void **state)
{
    (void)state;
    console_sessions *t = console_sessions_new(2, 600);
    char a[65], ac[65], b[65], bc[65], c[65], cc[65], cred[64];
    assert_true(console_session_open(t, "Bearer a", 100, a, ac));
    assert_true(console_session_open(t, "Bearer b", 101, b, bc));
    /* a is used later than b: b is the least recently used */
    assert_int_equal(console_session_resolve(t, a, ac, true, 102, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_OK);
    assert_true(console_session_open(t, "Bearer c", 103, c, cc));
    assert_int_equal(console_sessions_count(t, 103), 2);
    assert_int_equal(console_session_resolve(t, b, bc, true, 104, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_UNKNOWN);
    assert_int_equal(console_session_resolve(t, a, ac, true, 104, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_OK);
    assert_int_equal(console_session_resolve(t, c, cc, true, 104, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_OK);
    assert_string_equal(cred, "Bearer c");
    /* sign-out */
    assert_true(console_session_close(t, a));
    assert_false(console_session_close(t, a));
    assert_int_equal(console_session_resolve(t, a, ac, true, 105, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_UNKNOWN);
    console_sessions_free(t);
}

/* One credential signing in again and again replaces its own oldest
 * session; it never pushes another credential's session out. */
static void test_per_credential_cap(void **state)
{
    (void)state;
    console_sessions *t = console_sessions_new(CONSOLE_SESSIONS_PER_CREDENTIAL + 2, 600);
    char other[65], oc[65], first[65], fc[65], id[65], csrf[65], cred[64];
    assert_true(console_session_open(t, "Bearer other", 10, other, oc));
    assert_true(console_session_open(t, "Bearer spam", 11, first, fc));
    for (int i = 0; i < 50; i++)
        assert_true(console_session_open(t, "Bearer spam", 12 + i, id, csrf));
    assert_int_equal(console_sessions_count(t, 100), CONSOLE_SESSIONS_PER_CREDENTIAL + 1);
    /* the other credential's session, older than all of them, is still there */
    assert_int_equal(console_session_resolve(t, other, oc, true, 100, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_OK);
    assert_string_equal(cred, "Bearer other");
    /* the spammer's first session was the one replaced; its newest lives */
    assert_int_equal(console_session_resolve(t, first, fc, true, 100, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_UNKNOWN);
    assert_int_equal(console_session_resolve(t, id, csrf, true, 100, cred, sizeof cred, NULL, NULL),
                     CONSOLE_SESSION_OK);
    console_sessions_free(t);
}

static void test_refuses_bad_credentials(void **state)
{
    (void)state;
    console_sessions *t = console_sessions_new(2, 600);
    char id[65], csrf[65];
    assert_false(console_session_open(t, "", 1, id, csrf));
    assert_false(console_session_open(t, NULL, 1, id, csrf));
    static char big[CONSOLE_CREDENTIAL_MAX + 2];
    memset(big, 'k', sizeof big - 1);
    assert_false(console_session_open(t, big, 1, id, csrf));
    assert_null(console_sessions_new(0, 60));
    assert_null(console_sessions_new(4, 0));
    console_sessions_free(t);
    console_sessions_free(NULL);
}

static void test_cookie_parser(void **state)
{
    (void)state;
    char v[80];
    assert_true(console_cookie_get("brigade_console=abc", "brigade_console", v, sizeof v));
    assert_string_equal(v, "abc");
    assert_true(console_cookie_get("a=1; brigade_console=xyz; b=2", "brigade_console", v, sizeof v));
    assert_string_equal(v, "xyz");
    assert_true(console_cookie_get("a=1;brigade_console=q ", "brigade_console", v, sizeof v));
    assert_string_equal(v, "q");
    /* a longer name that starts the same is another cookie */
    assert_false(console_cookie_get("brigade_console_x=1", "brigade_console", v, sizeof v));
    assert_false(console_cookie_get("xbrigade_console=1", "brigade_console", v, sizeof v));
    assert_false(console_cookie_get("brigade_console=", "brigade_console", v, sizeof v));
    assert_false(console_cookie_get("", "brigade_console", v, sizeof v));
    assert_false(console_cookie_get(NULL, "brigade_console", v, sizeof v));
    char small[4];
    assert_false(console_cookie_get("brigade_console=toolong", "brigade_console", small, sizeof small));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_resolve_csrf),
        cmocka_unit_test(test_idle_expiry_slides),
        cmocka_unit_test(test_bounded_lru_and_close),
        cmocka_unit_test(test_per_credential_cap),
        cmocka_unit_test(test_refuses_bad_credentials),
        cmocka_unit_test(test_cookie_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
