/* config_approval.c — a tool's `approval:` policy (never | always |
 * {when: condition or list of conditions}) and an agent's `approval_by:`,
 * read with the other config readers (docs/config.md, docs/tools.md). A
 * condition is {pointer: "/json/pointer", over: N | under: N |
 * matches: "glob" | equals: "text" | present: true}: exactly one test. */
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_load.h"

#define APPROVAL_TEXT_MAX 256          /* bytes of a pointer or a pattern (approval_when.h) */
#define APPROVAL_CONDS_MAX 32          /* conditions of one tool */

enum { AC_POINTER, AC_OVER, AC_UNDER, AC_MATCHES, AC_EQUALS, AC_PRESENT, AC__N };

static int ld_approval_text(ld *l, const slot *s, const char *path, char **out)
{
    if (ld_string(l, s, path, out, NULL) < 0)
        return -1;
    if (strlen(*out) > APPROVAL_TEXT_MAX)
        return ld_fail(l, s->line, path, "at most %d bytes", APPROVAL_TEXT_MAX);
    return 0;
}

static int ld_approval_cond(ld *l, struct fy_node *n, int line, const char *path, approval_cond *c)
{
    slot s[AC__N] = {
        [AC_POINTER] = {.key = "pointer"}, [AC_OVER] = {.key = "over"},
        [AC_UNDER] = {.key = "under"},     [AC_MATCHES] = {.key = "matches"},
        [AC_EQUALS] = {.key = "equals"},   [AC_PRESENT] = {.key = "present"},
    };
    char wbuf[64], kp[400];
    if (config_node_is_null(n) || fy_node_get_type(n) != FYNT_MAPPING)
        return ld_fail(l, config_node_line(n, line), path, "expected a condition {pointer, over | under | "
                       "matches | equals | present}, got %s", config_node_what(n, wbuf, sizeof(wbuf)));
    if (ld_collect(l, n, line, path, s, AC__N) < 0)
        return -1;
    if (!s[AC_POINTER].present)
        return ld_fail(l, line, path, "missing required key \"pointer\" (a JSON pointer such as \"/amount\")");
    ld_path(kp, sizeof(kp), path, "pointer");
    if (ld_approval_text(l, &s[AC_POINTER], kp, &c->pointer) < 0)
        return -1;
    if (c->pointer[0] && c->pointer[0] != '/')
        return ld_fail(l, s[AC_POINTER].line, kp, "a JSON pointer starts with \"/\" (RFC 6901), got \"%.64s\"",
                       c->pointer);
    int tests = 0;
    for (int i = AC_OVER; i < AC__N; i++) tests += s[i].present;
    if (tests != 1)
        return ld_fail(l, line, path, "give exactly one test: over, under, matches, equals or present");
    if (s[AC_OVER].present || s[AC_UNDER].present) {
        int k = s[AC_OVER].present ? AC_OVER : AC_UNDER;
        ld_path(kp, sizeof(kp), path, s[k].key);
        c->test = k == AC_OVER ? APPROVAL_TEST_OVER : APPROVAL_TEST_UNDER;
        return ld_double(l, &s[k], kp, -1e15, 1e15, &c->number);
    }
    if (s[AC_MATCHES].present || s[AC_EQUALS].present) {
        int k = s[AC_MATCHES].present ? AC_MATCHES : AC_EQUALS;
        ld_path(kp, sizeof(kp), path, s[k].key);
        c->test = k == AC_MATCHES ? APPROVAL_TEST_MATCHES : APPROVAL_TEST_EQUALS;
        return ld_approval_text(l, &s[k], kp, &c->text);
    }
    bool present = false;
    ld_path(kp, sizeof(kp), path, "present");
    if (ld_bool(l, &s[AC_PRESENT], kp, &present) < 0)
        return -1;
    if (!present)
        return ld_fail(l, s[AC_PRESENT].line, kp, "only \"present: true\" is a test");
    c->test = APPROVAL_TEST_PRESENT;
    return 0;
}

int ld_tool_approval(ld *l, const slot *s, const char *path, tool_cfg *t)
{
    char wbuf[64], kp[400];
    struct fy_node *n = s->val;
    if (!config_node_is_null(n) && fy_node_get_type(n) == FYNT_SCALAR) {
        size_t len = 0;
        const char *v = fy_node_get_scalar(n, &len);
        if (v && len == 5 && !memcmp(v, "never", 5)) t->approval = TOOL_APPROVAL_NEVER;
        else if (v && len == 6 && !memcmp(v, "always", 6)) t->approval = TOOL_APPROVAL_ALWAYS;
        else
            return ld_fail(l, s->line, path, "expected never, always or {when: …}, got \"%.*s\"",
                           (int)(len > 40 ? 40 : len), v ? v : "");
        return 0;
    }
    slot w[1] = {{.key = "when"}};
    if (config_node_is_null(n) || fy_node_get_type(n) != FYNT_MAPPING)
        return ld_fail(l, s->line, path, "expected never, always or {when: …}, got %s",
                       config_node_what(n, wbuf, sizeof(wbuf)));
    if (ld_collect(l, n, s->line, path, w, 1) < 0)
        return -1;
    if (!w[0].present)
        return ld_fail(l, s->line, path, "missing required key \"when\"");
    ld_path(kp, sizeof(kp), path, "when");
    struct fy_node *wn = w[0].val;
    bool list = !config_node_is_null(wn) && fy_node_get_type(wn) == FYNT_SEQUENCE;
    int cnt = list ? fy_node_sequence_item_count(wn) : 1;
    if (cnt <= 0)
        return ld_fail(l, w[0].line, kp, "give at least one condition");
    if (cnt > APPROVAL_CONDS_MAX)
        return ld_fail(l, w[0].line, kp, "at most %d conditions", APPROVAL_CONDS_MAX);
    t->approval_when = config_xcalloc((size_t)cnt, sizeof *t->approval_when);
    t->approval = TOOL_APPROVAL_WHEN;
    for (int i = 0; i < cnt; i++) {
        struct fy_node *c = list ? fy_node_sequence_get_by_index(wn, i) : wn;
        char ip[420];
        if (list) snprintf(ip, sizeof ip, "%s[%d]", kp, i);
        else snprintf(ip, sizeof ip, "%s", kp);
        t->n_approval_when++;
        if (ld_approval_cond(l, c, config_node_line(c, w[0].line), ip, &t->approval_when[i]) < 0)
            return -1;
    }
    return 0;
}

int ld_agent_approval_by(ld *l, const slot *s, const char *path, agent_cfg *a)
{
    const char *v;
    size_t len;
    if (ld_scalar(l, s, path, "user, tenant_admin or any", &v, &len) < 0)
        return -1;
    if (len == 4 && !memcmp(v, "user", 4)) a->approval_by = APPROVAL_BY_USER;
    else if (len == 12 && !memcmp(v, "tenant_admin", 12)) a->approval_by = APPROVAL_BY_TENANT_ADMIN;
    else if (len == 3 && !memcmp(v, "any", 3)) a->approval_by = APPROVAL_BY_ANY;
    else
        return ld_fail(l, s->line, path, "expected user, tenant_admin or any, got \"%.*s\"",
                       (int)(len > 40 ? 40 : len), v);
    return 0;
}
