/* approval_when.c — the approval policy of a tool applied to one call's
 * arguments (approval_when.h): JSON pointers, globs, number bounds. */
#include "guard/approval_when.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool approval_glob(const char *pattern, const char *text, size_t len)
{
    size_t p = 0, t = 0;
    size_t star_p = (size_t)-1, star_t = 0;   /* the last `*` and where it began to match */
    size_t plen = strlen(pattern);
    while (t < len) {
        if (p < plen && pattern[p] == '*') {
            star_p = p++;
            star_t = t;
            continue;
        }
        if (p < plen) {
            char pc = pattern[p];
            size_t step = 1;
            if (pc == '\\' && p + 1 < plen) {
                pc = pattern[p + 1];
                step = 2;
            } else if (pc == '?') {
                p++;
                t++;
                continue;
            }
            if (pc == text[t]) {
                p += step;
                t++;
                continue;
            }
        }
        /* A mismatch: let the last `*` swallow one byte more, or fail. */
        if (star_p == (size_t)-1) return false;
        p = star_p + 1;
        t = ++star_t;
    }
    while (p < plen && pattern[p] == '*') p++;
    return p == plen;
}

/* One reference token of a pointer, unescaped (~1 → /, ~0 → ~), into out.
 * Returns the length consumed from `s`, or 0 when the token is too long or
 * badly escaped. */
static size_t approval_token(const char *s, char *out, size_t outlen)
{
    size_t i = 0, o = 0;
    while (s[i] && s[i] != '/') {
        char c = s[i++];
        if (c == '~') {
            if (s[i] == '0') c = '~';
            else if (s[i] == '1') c = '/';
            else return 0;
            i++;
        }
        if (o + 1 >= outlen) return 0;
        out[o++] = c;
    }
    out[o] = '\0';
    return i ? i : (size_t)-1;   /* an empty token is a valid key "" */
}

const cJSON *approval_pointer(const cJSON *doc, const char *pointer)
{
    if (!pointer || !*pointer) return doc;
    if (*pointer != '/') return NULL;
    const cJSON *cur = doc;
    const char *s = pointer;
    char tok[APPROVAL_PATTERN_MAX + 1];
    while (cur && *s == '/') {
        s++;
        size_t used = approval_token(s, tok, sizeof tok);
        if (used == 0) return NULL;
        if (used != (size_t)-1) s += used;
        if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        } else if (cJSON_IsArray(cur)) {
            /* array index: digits only, no leading zero */
            size_t n = strlen(tok);
            if (n == 0 || n > 9 || (n > 1 && tok[0] == '0') || strspn(tok, "0123456789") != n)
                return NULL;
            cur = cJSON_GetArrayItem(cur, atoi(tok));
        } else {
            return NULL;
        }
    }
    return cur;
}

bool approval_cond_holds(const approval_cond *c, const cJSON *args)
{
    if (!args) return true;                    /* arguments it cannot judge: ask */
    const cJSON *v = approval_pointer(args, c->pointer);
    if (!v) return false;
    switch (c->test) {
    case APPROVAL_TEST_PRESENT:
        return true;
    case APPROVAL_TEST_OVER:
    case APPROVAL_TEST_UNDER:
        if (!cJSON_IsNumber(v)) return true;   /* the wrong type: ask */
        return c->test == APPROVAL_TEST_OVER ? v->valuedouble > c->number : v->valuedouble < c->number;
    case APPROVAL_TEST_MATCHES:
    case APPROVAL_TEST_EQUALS: {
        if (!cJSON_IsString(v)) return true;
        size_t n = strlen(v->valuestring);
        if (c->test == APPROVAL_TEST_EQUALS) return strcmp(v->valuestring, c->text) == 0;
        if (n > APPROVAL_VALUE_MAX) return true;
        return approval_glob(c->text, v->valuestring, n);
    }
    }
    return true;
}

bool approval_needed(const tool_cfg *t, const cJSON *args, char *reason, size_t reason_len)
{
    if (!t || t->approval == TOOL_APPROVAL_NEVER) return false;
    if (t->approval == TOOL_APPROVAL_ALWAYS) {
        snprintf(reason, reason_len, "the tool %.64s always needs approval", t->name);
        return true;
    }
    for (size_t i = 0; i < t->n_approval_when; i++) {
        const approval_cond *c = &t->approval_when[i];
        if (!approval_cond_holds(c, args)) continue;
        static const char *const what[] = {"", "over", "under", "matches", "equals", "present"};
        if (c->test == APPROVAL_TEST_OVER || c->test == APPROVAL_TEST_UNDER)
            snprintf(reason, reason_len, "the tool %.64s needs approval when %.128s is %s %g",
                     t->name, c->pointer, what[c->test], c->number);
        else if (c->test == APPROVAL_TEST_PRESENT)
            snprintf(reason, reason_len, "the tool %.64s needs approval when %.128s is present",
                     t->name, c->pointer);
        else
            snprintf(reason, reason_len, "the tool %.64s needs approval when %.128s %s \"%.64s\"",
                     t->name, c->pointer, what[c->test], c->text);
        return true;
    }
    return false;
}

bool approval_fits_call(const char *call_id, const char *tool, const char *arguments,
                        const cJSON *calls)
{
    if (!call_id || !tool || !arguments) return false;
    const cJSON *call;
    cJSON_ArrayForEach(call, calls) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(call, "id");
        if (!cJSON_IsString(id) || strcmp(id->valuestring, call_id) != 0) continue;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        const char *targs = cJSON_IsString(args) && args->valuestring[0] ? args->valuestring : "{}";
        return cJSON_IsString(name) && strcmp(name->valuestring, tool) == 0 &&
               strcmp(targs, arguments) == 0;
    }
    return false;
}
