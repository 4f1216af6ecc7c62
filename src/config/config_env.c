/* config_env.c — `${VAR}` expansion of configuration strings.
 *
 * Secrets and per-host values come from the environment rather than the
 * file. Syntax (kept deliberately small, a subset of POSIX sh):
 *   ${NAME}            the variable's value; unset is an error
 *   ${NAME:-fallback}  the value, or `fallback` if unset or empty
 *   $${                a literal "${"
 * A `$` not followed by `{` is literal, so "pa$$word" stays as written.
 * NAME is [A-Za-z_][A-Za-z0-9_]*. Expansion is not recursive: a value that
 * itself contains ${…} is used verbatim. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "util/buf.h"

static int config_env_name_char(char c, int first)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_')
        return 1;
    return !first && c >= '0' && c <= '9';
}

int config_env_has_ref(const char *in, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (in[i] != '$')
            continue;
        if (in[i + 1] == '$' && i + 2 < len && in[i + 2] == '{') {
            i += 2;            /* escaped: skip past "$${" */
            continue;
        }
        if (in[i + 1] == '{')
            return 1;
    }
    return 0;
}

int config_env_expand(const char *in, size_t len, char **out, char *why, size_t whylen)
{
    buf b;
    buf_init(&b);
    size_t i = 0;
    while (i < len) {
        char c = in[i];
        if (c == '$' && i + 2 < len && in[i + 1] == '$' && in[i + 2] == '{') {
            buf_append(&b, "${", 2);
            i += 3;
            continue;
        }
        if (c != '$' || i + 1 >= len || in[i + 1] != '{') {
            buf_append(&b, &c, 1);
            i++;
            continue;
        }
        /* "${" — find the name, then "}" or ":-fallback}". */
        size_t start = i + 2, j = start;
        while (j < len && config_env_name_char(in[j], j == start))
            j++;
        size_t name_len = j - start;
        if (name_len == 0 || name_len > 255) {
            snprintf(why, whylen, "bad variable reference at \"%.*s\" (want ${NAME})",
                     (int)(len - i > 20 ? 20 : len - i), in + i);
            buf_free(&b);
            return -1;
        }
        char name[256];
        memcpy(name, in + start, name_len);
        name[name_len] = '\0';

        const char *fallback = NULL;
        size_t fallback_len = 0;
        if (j + 1 < len && in[j] == ':' && in[j + 1] == '-') {
            size_t k = j + 2;
            while (k < len && in[k] != '}')
                k++;
            fallback = in + j + 2;
            fallback_len = k - (j + 2);
            j = k;
        }
        if (j >= len || in[j] != '}') {
            snprintf(why, whylen, "unterminated ${%s (missing \"}\")", name);
            buf_free(&b);
            return -1;
        }
        const char *val = getenv(name);
        if (fallback && (!val || !*val)) {
            buf_append(&b, fallback, fallback_len);
        } else if (!val) {
            snprintf(why, whylen, "environment variable %s is not set", name);
            buf_free(&b);
            return -1;
        } else {
            buf_puts(&b, val);
        }
        i = j + 1;
    }
    buf_append(&b, "", 0);     /* an empty input still yields a "" string */
    *out = buf_detach(&b);
    return 0;
}
