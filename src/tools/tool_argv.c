/* tool_argv.c — the argv template of a command tool: its {name}
 * placeholders (name of [A-Za-z0-9_-]; any other brace is literal, so a
 * script's own braces stay as written), checked once when the registry is
 * built — each a top-level property of the tool's parameters, never in
 * the program itself — and filled per call with the argument: a string as
 * is, anything else as JSON, an absent one as nothing, always inside its
 * one argv entry (brigade runs no shell over it). Kept apart from
 * tool_command.c so the registry (and its fuzz target) need no sandbox. */
#include "tools/tools_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sandbox.h"
#include "util/buf.h"

/* The length of the {placeholder} starting at p (its name's length), or 0
 * when p does not start one: a placeholder is "{" + [A-Za-z0-9_-]+ + "}";
 * any other brace is literal (a script's own braces stay as written). */
static size_t placeholder_at(const char *p)
{
    if (*p != '{') return 0;
    size_t n = 0;
    while ((p[1 + n] >= 'a' && p[1 + n] <= 'z') || (p[1 + n] >= 'A' && p[1 + n] <= 'Z') ||
           (p[1 + n] >= '0' && p[1 + n] <= '9') || p[1 + n] == '_' || p[1 + n] == '-')
        n++;
    return n && p[1 + n] == '}' ? n : 0;
}

/* Calls `each` with the name of every {placeholder} of one entry. */
static bool placeholders(const char *s, bool (*each)(const char *, size_t, void *), void *arg)
{
    for (const char *p = s; *p; p++) {
        size_t n = placeholder_at(p);
        if (!n) continue;
        if (!each(p + 1, n, arg)) return false;
        p += n + 1;
    }
    return true;
}

typedef struct check_ctx {
    const cJSON *props;
    char        *why;
    size_t       whylen;
} check_ctx;

static bool check_one(const char *name, size_t n, void *arg)
{
    check_ctx *c = arg;
    char nm[128];
    if (n >= sizeof nm) {
        snprintf(c->why, c->whylen, "a {placeholder} name is too long");
        return false;
    }
    memcpy(nm, name, n);
    nm[n] = '\0';
    if (!c->props || !cJSON_GetObjectItemCaseSensitive(c->props, nm)) {
        snprintf(c->why, c->whylen, "placeholder {%.64s} is not a property of the tool's parameters", nm);
        return false;
    }
    return true;
}

bool tool_command_check(const tool_cfg *tc, const cJSON *schema, char *why, size_t whylen)
{
    check_ctx c = {cJSON_GetObjectItemCaseSensitive(schema, "properties"), why, whylen};
    why[0] = '\0';
    if (tc->argc > SANDBOX_MAX_ARGS) {
        snprintf(why, whylen, "more than %d entries", SANDBOX_MAX_ARGS);
        return false;
    }
    /* the program itself is never filled in by the model */
    for (const char *p = tc->argv[0]; *p; p++)
        if (placeholder_at(p)) {
            snprintf(why, whylen, "the program (argv[0]) may not hold a placeholder");
            return false;
        }
    for (size_t i = 1; i < tc->argc; i++)
        if (!placeholders(tc->argv[i], check_one, &c)) {
            return false;
        }
    return true;
}

char *tool_argv_fill(const char *tmpl, const cJSON *args)
{
    buf b;
    buf_init(&b);
    for (const char *p = tmpl; *p;) {
        size_t n = placeholder_at(p);
        if (!n) {
            buf_append(&b, p, 1);
            p++;
            continue;
        }
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), p + 1);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
        if (cJSON_IsString(v)) {
            buf_append(&b, v->valuestring, strlen(v->valuestring));
        } else if (v && !cJSON_IsNull(v)) {
            char *j = cJSON_PrintUnformatted(v);
            if (j) buf_append(&b, j, strlen(j));
            free(j);
        }
        p += n + 2;
    }
    buf_append(&b, "", 0);
    return buf_detach(&b);
}

