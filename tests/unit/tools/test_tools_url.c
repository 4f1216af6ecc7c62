/* test_tools_url.c — the rules for what a model's argument may become in a
 * declared HTTP tool's URL path (src/tools/tool_url.c): values that are or
 * decode (once, twice, …) to a dot segment, a separator, a control
 * character, broken UTF-8 or a normalising look-alike are refused; ordinary
 * values with dots and percent signs pass; and a built path is checked as a
 * whole for dot segments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tools/tools.h"

static void expect_refused(const char *v, size_t n, const char *why_part)
{
    char why[160] = "";
    if (tools_url_path_value_ok(v, n, why, sizeof why)) fail_msg("accepted \"%.*s\"", (int)n, v);
    if (why_part && !strstr(why, why_part)) fail_msg("\"%.*s\": %s", (int)n, v, why);
}

#define REFUSED(lit, part) expect_refused(lit, sizeof lit - 1, part)

static void test_path_values_refused(void **state)
{
    (void)state;
    REFUSED("", "empty");
    REFUSED(".", "\".\" or \"..\"");
    REFUSED("..", "\".\" or \"..\"");
    REFUSED("..;a=b", "\".\" or \"..\"");
    REFUSED("%2e%2e", "once percent-decoded");
    REFUSED("%2E%2e", "\".\" or \"..\"");
    REFUSED(".%2E", "\".\" or \"..\"");
    REFUSED("%252e%252e", "once percent-decoded");          /* double encoding */
    REFUSED("%25252e%25252e", "\".\" or \"..\"");           /* triple */
    REFUSED("a/b", "\"/\"");
    REFUSED("a%2Fb", "\"/\"");
    REFUSED("a%252Fb", "\"/\"");
    REFUSED("a\\b", "\"\\\"");
    REFUSED("a%5Cb", "\"\\\"");
    REFUSED("a\nb", "control");
    REFUSED("a\x7f", "control");
    REFUSED("a%00b", "control");
    REFUSED("a%0D%0Ab", "control");
    expect_refused("a\0b", 3, "control");                   /* an embedded NUL */
    REFUSED("%c0%ae%c0%ae", "UTF-8");                        /* overlong dots */
    REFUSED("%ff", "UTF-8");
    REFUSED("\xef\xbc\x8e\xef\xbc\x8e", "normalisation");    /* FULLWIDTH FULL STOP */
    REFUSED("\xe2\x80\xa5", "normalisation");                /* TWO DOT LEADER */
    REFUSED("\xef\xb9\x92.", "normalisation");               /* SMALL FULL STOP */
    REFUSED("x\xef\xbc\x8f" "y", "normalisation");           /* FULLWIDTH SOLIDUS */
    REFUSED("x\xef\xbc\xbc" "y", "normalisation");           /* FULLWIDTH REVERSE SOLIDUS */
    REFUSED("%E2%84%80", "normalisation");                   /* ACCOUNT OF (a/c), encoded */
    /* a value still decoding after 8 rounds */
    REFUSED("%252525252525252525252e", "too many");
}

static void test_path_values_accepted(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "web", "a.b", "...", "..a", "a..", ".a", "a;b", "100%", "%zz", "%2", "%",
        "S\xc3\xa3o Paulo", "caf\xc3\xa9", "\xe2\x80\xa6", /* HORIZONTAL ELLIPSIS: "..." */
        "%41%42",                                          /* "AB" */
        "a?b#c&d=e",
        "%2525252525252541",                               /* "A" after exactly 8 rounds */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char why[160];
        if (!tools_url_path_value_ok(ok[i], strlen(ok[i]), why, sizeof why))
            fail_msg("refused \"%s\": %s", ok[i], why);
    }
}

static void test_whole_path(void **state)
{
    (void)state;
#define PATH_OK(p) tools_url_path_ok(p, sizeof p - 1)
    assert_true(PATH_OK("/"));
    assert_true(PATH_OK("/api/projects/web/tickets"));
    assert_true(PATH_OK("/a/.../b"));
    assert_true(PATH_OK("/a/..b/b."));
    assert_true(PATH_OK("/a//b"));
    assert_false(PATH_OK("/a/../b"));
    assert_false(PATH_OK("/a/./b"));
    assert_false(PATH_OK("/a/.."));
    assert_false(PATH_OK("/a/%2e%2e/b"));
    assert_false(PATH_OK("/a/%2E/b"));
    assert_false(PATH_OK("/a/%252e%252e/b"));
    assert_false(PATH_OK("/a/..;x/b"));
    assert_false(PATH_OK("/a/x%2f..%2fy/b"));     /* "x/../y" once decoded */
    assert_false(PATH_OK("/a/x%5C..%5Cy/b"));     /* backslashes as separators */
    assert_false(PATH_OK("/a/%252525252525252525252e/b"));
    /* an accepted value (8 rounds) encoded into a path needs one round more */
    assert_true(PATH_OK("/a/%252525252525252541/b"));
#undef PATH_OK
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_values_refused),
        cmocka_unit_test(test_path_values_accepted),
        cmocka_unit_test(test_whole_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
