/* mock_gullible.c — the mock's "gullible" mode: a model that has been
 * successfully prompt-injected.
 *
 * A normal mock takes instructions only from the last user message. A
 * gullible one also obeys tool-call markers it finds in text a third party
 * controls — tool results (fetched pages, files, MCP results, memory
 * recalls) and the descriptions of the tools it is offered (MCP tool
 * poisoning) — as a model that falls for an injection would. The guard
 * knows nothing of this syntax: what stops an attack in the scenario suite
 * must be a real layer (output withheld, taint, exfiltration, allow-list),
 * never the marker being mangled. So the reading is deliberately generous:
 * spotlighting's datamark (U+02C6 between words) reads as a space, and a
 * JSON tool result is also read through its string values (a memory
 * recall holds the note JSON-escaped; spotlighted, the JSON is inside
 * other text and its escapes are read as what they stand for) — a model
 * reads all of these. Malformed
 * markers in untrusted text are ignored (a model would just not act),
 * never a 400. */
#include "mock/mock_engine.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GULLIBLE_MAX_TEXT   (256u * 1024u)  /* bytes of one untrusted text read */
#define GULLIBLE_JSON_DEPTH 8
#define GULLIBLE_MAX_ARGS   (16u * 1024u)   /* bytes of a marker's JSON arguments */
#define GULLIBLE_MAX_TRIES  64              /* "[[" looked at per text: no quadratic scan */
#define GULLIBLE_MAX_FILLED (1024u * 1024u) /* an argument after {{user}} is filled in */

static bool gullible_name_char(char c)
{
    return ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

static bool gullible_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Does the user's text hold `word` (ASCII case-insensitive)? */
static bool gullible_user_says(const char *user, size_t ulen, const char *word, size_t wlen)
{
    if (!user || wlen == 0 || wlen > ulen) return false;
    for (size_t i = 0; i + wlen <= ulen; i++)
        if (strncasecmp(user + i, word, wlen) == 0) return true;
    return false;
}

/* "{{user}}" in an argument's string stands for the user's last message:
 * an injected model forwarding the conversation (what it would copy from
 * its context, which a mock cannot compose). Strings only, depth-bounded. */
static void gullible_fill_user(cJSON *j, int depth, const char *user, size_t ulen)
{
    if (depth > GULLIBLE_JSON_DEPTH) return;
    cJSON *c;
    cJSON_ArrayForEach(c, j) {
        if (cJSON_IsString(c) && strstr(c->valuestring, "{{user}}")) {
            const char *v = c->valuestring;
            size_t n = 0;
            for (const char *h = v; (h = strstr(h, "{{user}}")); h += 8) n++;
            if (ulen && n > GULLIBLE_MAX_FILLED / ulen) continue;   /* left as written */
            size_t len = strlen(v) + n * ulen;
            char *o = malloc(len + 1), *w = o;
            if (!o) return;
            for (const char *h = v, *next; ; h = next + 8) {
                next = strstr(h, "{{user}}");
                size_t k = next ? (size_t)(next - h) : strlen(h);
                memcpy(w, h, k);
                w += k;
                if (!next) break;
                if (ulen) memcpy(w, user, ulen);
                w += ulen;
            }
            *w = '\0';
            cJSON_SetValuestring(c, o);
            free(o);
        } else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
            gullible_fill_user(c, depth + 1, user, ulen);
        }
    }
}

/* Parse "tool:NAME {json}]]" at q; on success fill *m and return the byte
 * after "]]", else NULL. */
static const char *gullible_tool_at(const char *q, const char *end, const char *user, size_t ulen,
                                    arena *a, mock_injected *m)
{
    if (end - q < 5 || memcmp(q, "tool:", 5) != 0) return NULL;
    q += 5;
    const char *name = q;
    while (q < end && gullible_name_char(*q)) q++;
    size_t nlen = (size_t)(q - name);
    if (nlen == 0 || nlen > 64) return NULL;
    while (q < end && gullible_space(*q)) q++;
    char *args = NULL;
    if (q < end && *q == '{') {
        const char *jend = NULL;
        size_t room = (size_t)(end - q);
        cJSON *j = cJSON_ParseWithLengthOpts(q, room < GULLIBLE_MAX_ARGS ? room : GULLIBLE_MAX_ARGS,
                                             &jend, false);
        if (!j || !cJSON_IsObject(j) || !jend) {
            cJSON_Delete(j);
            return NULL;
        }
        gullible_fill_user(j, 0, user ? user : "", user ? ulen : 0);
        char *compact = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!compact) return NULL;
        args = arena_strdup(a, compact);
        free(compact);
        q = jend;
        while (q < end && gullible_space(*q)) q++;
    }
    if (end - q < 2 || q[0] != ']' || q[1] != ']') return NULL;
    m->name = arena_strndup(a, name, nlen);
    m->args = args ? args : arena_strdup(a, "{}");
    return q + 2;
}

/* Spotlighting's datamark, U+02C6 (CB 86), read as the space it stands for. */
static char *gullible_unmark(const char *s, size_t len, size_t *out_len)
{
    char *o = malloc(len + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] == 0xCB && i + 1 < len && (unsigned char)s[i + 1] == 0x86) {
            o[k++] = ' ';
            i++;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    *out_len = k;
    return o;
}

static size_t gullible_scan_plain(const char *text, size_t len, const char *user, size_t ulen,
                                  arena *a, mock_injected *out, size_t max)
{
    size_t n = 0, tries = 0;
    const char *s = text, *end = text + len;
    while (n < max && s + 2 <= end && tries++ < GULLIBLE_MAX_TRIES) {
        const char *o = memmem(s, (size_t)(end - s), "[[", 2);
        if (!o) break;
        const char *q = o + 2;
        s = q;
        mock_injected m = {0};
        if (end - q >= 3 && memcmp(q, "on:", 3) == 0) {
            /* [[on:WORD tool:NAME {json}]]: a delayed invocation, obeyed
             * in a turn whose user message says WORD */
            const char *w = q + 3, *we = w;
            while (we < end && gullible_name_char(*we)) we++;
            size_t wlen = (size_t)(we - w);
            if (wlen == 0 || wlen > 64 || we >= end || *we != ' ') continue;
            const char *after = gullible_tool_at(we + 1, end, user, ulen, a, &m);
            if (!after) continue;
            s = after;
            if (!gullible_user_says(user, ulen, w, wlen)) continue;
            m.trigger = arena_strndup(a, w, wlen);
        } else {
            const char *after = gullible_tool_at(q, end, user, ulen, a, &m);
            if (!after) continue;
            s = after;
        }
        out[n++] = m;
    }
    return n;
}

static size_t gullible_scan_json(const cJSON *j, int depth, const char *user, size_t ulen,
                                 arena *a, mock_injected *out, size_t max)
{
    size_t n = 0;
    if (depth > GULLIBLE_JSON_DEPTH || max == 0) return 0;
    if (cJSON_IsString(j)) {
        const char *v = j->valuestring;
        return gullible_scan_plain(v, strlen(v), user, ulen, a, out, max);
    }
    const cJSON *c;
    if (cJSON_IsArray(j) || cJSON_IsObject(j))
        cJSON_ArrayForEach(c, j) {
            if (n >= max) break;
            n += gullible_scan_json(c, depth + 1, user, ulen, a, out + n, max - n);
        }
    return n;
}

size_t mock_injected_markers(const char *text, size_t len, const char *user, size_t ulen, arena *a,
                             mock_injected *out, size_t max)
{
    if (!text || max == 0) return 0;
    if (len > GULLIBLE_MAX_TEXT) len = GULLIBLE_MAX_TEXT;
    size_t ul;
    char *t = gullible_unmark(text, len, &ul);
    if (!t) return 0;
    size_t n = gullible_scan_plain(t, ul, user, ulen, a, out, max);
    /* A JSON text is read through its strings, where quotes are escaped. */
    if (n == 0) {
        cJSON *j = cJSON_ParseWithLength(t, ul);
        if (j) n = gullible_scan_json(j, 0, user, ulen, a, out, max);
        cJSON_Delete(j);
    }
    /* JSON inside other text (a spotlighted memory recall): its escapes
     * read as what they stand for. */
    if (n == 0 && memchr(t, '\\', ul)) {
        size_t k = 0;
        for (size_t i = 0; i < ul; i++) {
            if (t[i] == '\\' && i + 1 < ul && t[i + 1] && strchr("\"\\/", t[i + 1])) t[k++] = t[++i];
            else if (t[i] == '\\' && i + 1 < ul && t[i + 1] == 'n') { t[k++] = '\n'; i++; }
            else t[k++] = t[i];
        }
        n = gullible_scan_plain(t, k, user, ulen, a, out, max);
    }
    free(t);
    return n;
}

/* Has the conversation already called `name` with these arguments? */
static bool gullible_already_called(const cJSON *msgs, const mock_injected *m)
{
    const cJSON *msg, *tc;
    cJSON_ArrayForEach(msg, msgs) {
        cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(msg, "tool_calls")) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
            const cJSON *ar = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
            if (!cJSON_IsString(nm) || strcmp(nm->valuestring, m->name) != 0) continue;
            if (!cJSON_IsString(ar)) return strcmp(m->args, "{}") == 0;
            cJSON *pa = cJSON_Parse(ar->valuestring);
            char *compact = pa ? cJSON_PrintUnformatted(pa) : NULL;
            bool same = compact ? strcmp(compact, m->args) == 0 : strcmp(ar->valuestring, m->args) == 0;
            free(compact);
            cJSON_Delete(pa);
            if (same) return true;
        }
    }
    return false;
}

/* The first marker of `text` not yet acted on. */
static bool gullible_first_new(const char *text, size_t len, const cJSON *msgs, const char *user,
                               size_t ulen, arena *a, mock_injected *out)
{
    mock_injected found[16];
    size_t n = mock_injected_markers(text, len, user, ulen, a, found, 16);
    for (size_t i = 0; i < n; i++)
        if (!gullible_already_called(msgs, &found[i])) {
            *out = found[i];
            return true;
        }
    return false;
}

static bool gullible_from_content(const cJSON *content, const cJSON *msgs, const char *user,
                                  size_t ulen, arena *a, mock_injected *out)
{
    if (cJSON_IsString(content))
        return gullible_first_new(content->valuestring, strlen(content->valuestring), msgs, user,
                                  ulen, a, out);
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (cJSON_IsString(t) &&
            gullible_first_new(t->valuestring, strlen(t->valuestring), msgs, user, ulen, a, out))
            return true;
    }
    return false;
}

bool mock_gullible_pick(const cJSON *root, const char *user, size_t ulen, arena *a,
                        mock_injected *out)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    int n = cJSON_GetArraySize(msgs);
    /* Tool results, newest first: the page just fetched before the one
     * read three turns ago. */
    for (int i = n - 1; i >= 0; i--) {
        const cJSON *m = cJSON_GetArrayItem(msgs, i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role) || strcmp(role->valuestring, "tool") != 0) continue;
        if (gullible_from_content(cJSON_GetObjectItemCaseSensitive(m, "content"), msgs, user, ulen,
                                  a, out))
            return true;
    }
    /* Then the descriptions of the tools offered (tool poisoning). */
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(root, "tools")) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(fn, "description");
        if (cJSON_IsString(d) &&
            gullible_first_new(d->valuestring, strlen(d->valuestring), msgs, user, ulen, a, out))
            return true;
    }
    return false;
}
