/* exfil.c — the run's sensitive values and the egress checks (exfil.h). */
#include "guard/exfil.h"
#include "util/xalloc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void guard_secrets_clear(guard_secrets *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->values[i]);
    free(s->values);
    free(s->lens);
    s->values = NULL;
    s->lens = NULL;
    s->n = s->cap = 0;
}

void guard_secrets_add(guard_secrets *s, const char *v, size_t len)
{
    while (len && (v[0] == ' ' || v[0] == '\n')) { v++; len--; }
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\n')) len--;
    if (len < EXFIL_VALUE_MIN || len > EXFIL_VALUE_MAX || s->n == EXFIL_VALUES_MAX) return;
    /* By length first: a message repeating one token thousands of times
     * measured every value for each repeat (strlen), at every run start
     * over the whole history. */
    for (size_t i = 0; i < s->n; i++)
        if (s->lens[i] == len && memcmp(s->values[i], v, len) == 0) return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        if (cap > EXFIL_VALUES_MAX) cap = EXFIL_VALUES_MAX;
        s->values = xrealloc(s->values, cap * sizeof *s->values);
        s->lens = xrealloc(s->lens, cap * sizeof *s->lens);
        s->cap = cap;
    }
    char *c = xmalloc(len + 1);
    memcpy(c, v, len);
    c[len] = 0;
    s->lens[s->n] = (uint16_t)len;
    s->values[s->n++] = c;
}

/* Every "value" string of a memory tool result (or a save's arguments). */
static void secrets_from_memory_json(guard_secrets *s, const cJSON *j, int depth)
{
    if (!j || depth > 8) return;
    const cJSON *c;
    cJSON_ArrayForEach(c, j) {
        if (cJSON_IsString(c) && c->string && strcmp(c->string, "value") == 0)
            guard_secrets_add(s, c->valuestring, strlen(c->valuestring));
        else if (cJSON_IsObject(c) || cJSON_IsArray(c))
            secrets_from_memory_json(s, c, depth + 1);
    }
}

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Tokens of a user's message that look like secrets or personal data. */
static void secrets_from_user_text(guard_secrets *s, const char *t)
{
    size_t i = 0, n = strlen(t);
    while (i < n) {
        while (i < n && (t[i] == ' ' || t[i] == '\n' || t[i] == '\t' || t[i] == ',' || t[i] == ';' ||
                         t[i] == '"' || t[i] == '\'' || t[i] == '(' || t[i] == ')'))
            i++;
        size_t b = i;
        while (i < n && !(t[i] == ' ' || t[i] == '\n' || t[i] == '\t' || t[i] == ',' ||
                          t[i] == ';' || t[i] == '"' || t[i] == '\'' || t[i] == '(' || t[i] == ')'))
            i++;
        size_t len = i - b;
        while (len && (t[b + len - 1] == '.' || t[b + len - 1] == ':')) len--;
        if (len < EXFIL_VALUE_MIN) continue;
        size_t alpha = 0, digit = 0, at = 0;
        for (size_t k = b; k < b + len; k++) {
            alpha += is_alpha(t[k]);
            digit += is_digit(t[k]);
            at += t[k] == '@';
        }
        /* an e-mail address is not kept: it is more often where the user
         * wants something sent than a secret */
        bool key = len >= 12 && alpha && digit && !at && !memchr(t + b, '/', len);
        bool number = digit >= 9 && alpha == 0;   /* not a date */
        if (key || number) guard_secrets_add(s, t + b, len);
    }
}

static const char *msg_text(const cJSON *m)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

/* A tool call of the messages: its id, whether it called the memory tool,
 * and where it came (a later call with the same id decides, as before). */
typedef struct exfil_call {
    const char *id;
    bool        memory;
    size_t      order;
} exfil_call;

static int exfil_call_cmp(const void *a, const void *b)
{
    const exfil_call *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Every call of the assistant messages, sorted by id with the last of each
 * id kept; *memory_calls counts the calls of the memory tool. Before,
 * each tool result searched every message for its call: a model call of a
 * long run with a long history did tens of thousands of strcmp, at every
 * step (27 % of the CPU of a 9-step run, docs/benchmarks.md). */
static exfil_call *exfil_calls_of(const cJSON *first, const cJSON *end, size_t *n_out,
                                  size_t *memory_calls)
{
    exfil_call *calls = NULL;
    size_t n = 0, cap = 0;
    *memory_calls = 0;
    const cJSON *call;
    for (const cJSON *m = first; m && m != end; m = m->next) {
        const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        cJSON_ArrayForEach(call, tcs) {
            const cJSON *cid = cJSON_GetObjectItemCaseSensitive(call, "id");
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
            if (!cJSON_IsString(name)) continue;
            bool memory = strcmp(name->valuestring, "memory") == 0;
            *memory_calls += memory;   /* its arguments count even without an id */
            if (!cJSON_IsString(cid)) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                calls = xrealloc(calls, cap * sizeof *calls);
            }
            calls[n] = (exfil_call){.id = cid->valuestring, .memory = memory, .order = n};
            n++;
        }
    }
    if (*memory_calls == 0) {   /* no result can be a memory tool's: no lookups */
        free(calls);
        *n_out = 0;
        return NULL;
    }
    qsort(calls, n, sizeof *calls, exfil_call_cmp);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && strcmp(calls[i].id, calls[i + 1].id) == 0) continue;   /* a later one decides */
        calls[kept++] = calls[i];
    }
    *n_out = kept;
    return calls;
}

static bool exfil_call_is_memory(const exfil_call *calls, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(calls[mid].id, id);
        if (c == 0) return calls[mid].memory;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

void guard_secrets_collect(guard_secrets *s, const cJSON *messages)
{
    if (cJSON_IsArray(messages)) guard_secrets_collect_range(s, messages->child, NULL);
}

void guard_secrets_collect_range(guard_secrets *s, const cJSON *first, const cJSON *end)
{
    size_t n_calls = 0, memory_calls = 0;
    exfil_call *calls = exfil_calls_of(first, end, &n_calls, &memory_calls);
    for (const cJSON *m = first; m && m != end; m = m->next) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) continue;
        if (strcmp(role->valuestring, "user") == 0) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (cJSON_IsString(c)) secrets_from_user_text(s, c->valuestring);
            else if (cJSON_IsArray(c)) {
                const cJSON *part;
                cJSON_ArrayForEach(part, c) {
                    const cJSON *tx = cJSON_GetObjectItemCaseSensitive(part, "text");
                    if (cJSON_IsString(tx)) secrets_from_user_text(s, tx->valuestring);
                }
            }
        } else if (strcmp(role->valuestring, "assistant") == 0) {
            if (memory_calls == 0) continue;
            const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls"), *call;
            cJSON_ArrayForEach(call, tcs) {
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
                const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
                if (!cJSON_IsString(name) || strcmp(name->valuestring, "memory") != 0) continue;
                cJSON *a = cJSON_IsString(args) ? cJSON_Parse(args->valuestring) : NULL;
                secrets_from_memory_json(s, a, 0);
                cJSON_Delete(a);
            }
        } else if (strcmp(role->valuestring, "tool") == 0) {
            /* a memory tool's result: its call named the memory tool */
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
            const char *t = msg_text(m);
            if (t && cJSON_IsString(id) && exfil_call_is_memory(calls, n_calls, id->valuestring)) {
                cJSON *j = cJSON_Parse(t);
                secrets_from_memory_json(s, j, 0);
                cJSON_Delete(j);
            }
        }
    }
    free(calls);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent- and plus-decoded copy. */
static char *pct_decode(const char *s, size_t n)
{
    char *o = xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else o[k++] = s[i] == '+' ? ' ' : s[i];
    }
    o[k] = 0;
    return o;
}

static void b64(const char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16 | (uint32_t)(unsigned char)in[i + 1] << 8 |
                     (unsigned char)in[i + 2];
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
        out[o++] = t[v & 63];
    }
    out[o] = 0;   /* the full groups only: a prefix found anywhere is enough */
}

/* Does `text` carry a value? Case-insensitive for e-mail-like values. */
static bool carries(const guard_secrets *s, const char *text, size_t *which)
{
    char *dec = pct_decode(text, strlen(text));
    size_t dn = strlen(dec);
    bool hit = false;
    /* A value longer than the text cannot be in it: arguments of many
     * short strings skip the searches (and the base64 form) of every
     * value, which was ~90 µs a string with the full set of values. */
    for (size_t i = 0; i < s->n && !hit; i++) {
        const char *v = s->values[i];
        size_t vn = s->lens[i], en = vn / 3 * 4;
        if (vn > dn) continue;
        if (strstr(dec, v) || strcasestr(dec, v)) { hit = true; *which = i; break; }
        if (en < 8 || en > dn) continue;
        char enc[EXFIL_VALUE_MAX * 2];
        b64(v, vn, enc);
        if (strstr(dec, enc)) { hit = true; *which = i; }
    }
    free(dec);
    return hit;
}

static bool walk_strings(const guard_secrets *s, const cJSON *j, int depth, size_t *which)
{
    if (!j || depth > 16) return false;
    if (cJSON_IsString(j)) return carries(s, j->valuestring, which);
    const cJSON *c;
    cJSON_ArrayForEach(c, j)
        if (walk_strings(s, c, depth + 1, which)) return true;
    return false;
}

bool guard_exfil_in_args(const guard_secrets *s, const char *args, char *what, size_t whatlen)
{
    if (!s->n || !args) return false;
    cJSON *j = cJSON_Parse(args);
    size_t which = 0;
    bool hit = j ? walk_strings(s, j, 0, &which) : carries(s, args, &which);
    cJSON_Delete(j);
    if (hit)
        snprintf(what, whatlen, "the arguments carry a value of the user's (%zu bytes) from %s",
                 strlen(s->values[which]), "their messages or memory");
    return hit;
}

bool guard_exfil_in_markdown(const guard_secrets *s, const char *text, bool any_query_image,
                             char *what, size_t whatlen)
{
    if (!text) return false;
    for (const char *p = strstr(text, "]("); p; p = strstr(p + 2, "](")) {
        const char *u = p + 2;
        while (*u == ' ' || *u == '<') u++;
        if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0) continue;
        size_t n = strcspn(u, ") \n>");
        if (n > 8192) n = 8192;
        /* an image is `![alt](url)`: find the `[` that opens this link */
        const char *b = p;
        while (b > text && *b != '[' && p - b < 2048) b--;
        bool image = *b == '[' && b > text && b[-1] == '!';
        char *url = xmalloc(n + 1);
        memcpy(url, u, n);
        url[n] = 0;
        size_t which;
        bool hit = s->n && carries(s, url, &which);
        bool query = memchr(url, '?', n) != NULL;
        free(url);
        if (hit) {
            snprintf(what, whatlen, "a markdown %s whose URL carries a value of the user's",
                     image ? "image" : "link");
            return true;
        }
        if (image && query && any_query_image) {
            snprintf(what, whatlen, "a markdown image whose URL has a query string, after "
                     "untrusted content entered the run");
            return true;
        }
    }
    return false;
}
