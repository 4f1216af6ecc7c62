/* config_load_fields.c — the YAML loader's toolkit, used by every section
 * of the file: error messages that name the file, the line and the key
 * path; collecting a mapping's keys into slots (an unknown key is refused,
 * with a "did you mean" for a typo); the typed readers that check type and
 * range (bool, string, name, integer, size, number, URL, ${VAR} and *_env
 * secrets); and the list helpers (a sequence of entries, unique names,
 * "known: …" hints, identifiers). */
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_load.h"
#include "util/buf.h"

#define CONFIG_MAX_NAME       128

/* ------------------------------------------------------------------ */
/* messages                                                            */

int ld_fail(ld *l, int line, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (l->api_body)   /* a request body: the key path says where, lines mean little */
        snprintf(l->err, l->errlen, "%s: %s", path && *path ? path : l->name, msg);
    else if (path && *path)
        snprintf(l->err, l->errlen, "%s:%d: %s: %s", l->name, line, path, msg);
    else
        snprintf(l->err, l->errlen, "%s:%d: %s", l->name, line, msg);
    return -1;
}

void ld_warn(ld *l, int line, const char *path, const char *msg)
{
    /* A tenant's body is read while the server runs, on many threads: the
     * shared configuration is never written then. */
    if (l->api_body)
        return;
    char w[512];
    snprintf(w, sizeof(w), "%s:%d: %s: %s", l->name, line, path, msg);
    config_add_warning(l->cfg, w);
}

/* "parent.key" / "parent[i]" into out; truncation only shortens a message. */
void ld_path(char *out, size_t outlen, const char *parent, const char *key)
{
    if (parent && *parent)
        snprintf(out, outlen, "%s.%s", parent, key);
    else
        snprintf(out, outlen, "%s", key);
}

/* ------------------------------------------------------------------ */
/* unknown keys and suggestions                                        */

/* Edit distance counting a swap of two neighbours as one edit ("rmp" →
 * "rpm"), the commonest typo in keys (optimal string alignment). */
static size_t ld_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The closest known key within a small edit distance, or NULL. */
const char *ld_suggest(const char *key, const slot *slots, size_t n)
{
    const char *best = NULL;
    size_t best_d = 99;
    size_t klen = strlen(key);
    size_t limit = klen <= 4 ? 1 : (klen <= 8 ? 2 : 3);
    for (size_t i = 0; i < n; i++) {
        size_t d = ld_edit_distance(key, slots[i].key);
        if (d < best_d) {
            best_d = d;
            best = slots[i].key;
        }
    }
    return best_d <= limit ? best : NULL;
}

/* Top-level keys that belong under `server:` — a common slip. */
static const char *const ld_server_keys[] = {
    "listen", "threads", "data_dir", "admin_token", "admin_token_env", "limits", NULL
};

/* Fill `slots` from mapping `map`. A null value (`server:` with nothing
 * under it) counts as an empty mapping. Any key not in `slots` is an error. */
int ld_collect(ld *l, struct fy_node *map, int line, const char *path,
                      slot *slots, size_t n)
{
    char wbuf[64];
    for (size_t i = 0; i < n; i++) {
        slots[i].val = NULL;
        slots[i].line = 0;
        slots[i].present = 0;
    }
    if (config_node_is_null(map))
        return 0;
    if (fy_node_get_type(map) != FYNT_MAPPING)
        return ld_fail(l, config_node_line(map, line), path, "expected a mapping (key: value), got %s",
                       config_node_what(map, wbuf, sizeof(wbuf)));

    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p);
        int kline = config_node_line(k, line);
        size_t klen = 0;
        const char *ks = (k && fy_node_get_type(k) == FYNT_SCALAR) ? fy_node_get_scalar(k, &klen) : NULL;
        if (!ks)
            return ld_fail(l, kline, path, "keys must be plain strings");
        char key[64];
        if (klen >= sizeof(key)) {
            return ld_fail(l, kline, path, "unknown key \"%.40s…\"", ks);
        }
        memcpy(key, ks, klen);
        key[klen] = '\0';

        size_t i;
        for (i = 0; i < n; i++)
            if (strcmp(slots[i].key, key) == 0)
                break;
        if (i == n) {
            char kp[160];
            ld_path(kp, sizeof(kp), path, key);
            const char *s = ld_suggest(key, slots, n);
            if (s)
                return ld_fail(l, kline, kp, "unknown key (did you mean \"%s\"?)", s);
            if (!path || !*path) {
                for (const char *const *sk = ld_server_keys; *sk; sk++)
                    if (strcmp(*sk, key) == 0)
                        return ld_fail(l, kline, kp, "unknown key (did you mean \"server.%s\"?)", key);
            }
            char known[256] = "";
            size_t off = 0;
            for (size_t j = 0; j < n && off < sizeof(known); j++)
                off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%s", j ? ", " : "", slots[j].key);
            return ld_fail(l, kline, kp, "unknown key (known: %s)", known);
        }
        slots[i].val = fy_node_pair_value(p);
        slots[i].line = kline;
        slots[i].present = 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* typed readers                                                       */

/* The raw text of a scalar, or an error naming what was found instead. */
int ld_scalar(ld *l, const slot *s, const char *path, const char *want,
                     const char **txt, size_t *len)
{
    char wbuf[64];
    if (config_node_is_null(s->val) || fy_node_get_type(s->val) != FYNT_SCALAR)
        return ld_fail(l, s->line, path, "expected %s, got %s", want, config_node_what(s->val, wbuf, sizeof(wbuf)));
    *txt = fy_node_get_scalar(s->val, len);
    if (!*txt)
        return ld_fail(l, s->line, path, "expected %s", want);
    return 0;
}

/* true or false (YAML 1.2 core schema spellings only: no yes/no/on/off,
 * whose meaning surprises people). */
int ld_bool(ld *l, const slot *s, const char *path, bool *out)
{
    const char *txt;
    size_t len;
    if (ld_scalar(l, s, path, "true or false", &txt, &len) < 0)
        return -1;
    if (len == 4 && memcmp(txt, "true", 4) == 0) *out = true;
    else if (len == 5 && memcmp(txt, "false", 5) == 0) *out = false;
    else return ld_fail(l, s->line, path, "expected true or false, got \"%.*s\"", (int)(len > 40 ? 40 : len), txt);
    return 0;
}

/* A string scalar as written (no ${VAR} expansion), without NUL. */
int ld_text(ld *l, const slot *s, const char *path, const char **txt, size_t *len)
{
    if (ld_scalar(l, s, path, "a string", txt, len) < 0)
        return -1;
    if (memchr(*txt, '\0', *len))
        return ld_fail(l, s->line, path, "strings must not contain NUL characters");
    return 0;
}

/* A string, with ${VAR} expanded. *raw_literal tells whether the file held
 * the value itself (no ${…}); used to warn about secrets written in. */
int ld_string(ld *l, const slot *s, const char *path, char **out, int *raw_literal)
{
    const char *txt;
    size_t len;
    if (ld_text(l, s, path, &txt, &len) < 0)
        return -1;
    if (raw_literal)
        *raw_literal = !config_env_has_ref(txt, len);
    char why[256];
    char *v = NULL;
    /* A tenant's body must never read the server's environment. */
    if (l->api_body)
        v = config_xstrndup(txt, len);
    else if (config_env_expand(txt, len, &v, why, sizeof(why)) < 0)
        return ld_fail(l, s->line, path, "%s", why);
    free(*out);
    *out = v;
    return 0;
}

/* A non-empty string (names, URLs, paths). */
int ld_nonempty(ld *l, const slot *s, const char *path, char **out, int *raw_literal)
{
    if (ld_string(l, s, path, out, raw_literal) < 0)
        return -1;
    if (!**out)
        return ld_fail(l, s->line, path, "must not be empty");
    return 0;
}

/* A name clients or other entries refer to: printable, no spaces. */
int ld_name(ld *l, const slot *s, const char *path, char **out)
{
    if (ld_nonempty(l, s, path, out, NULL) < 0)
        return -1;
    size_t n = strlen(*out);
    if (n > CONFIG_MAX_NAME)
        return ld_fail(l, s->line, path, "longer than %d bytes", CONFIG_MAX_NAME);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)(*out)[i];
        if (c <= ' ' || c == 0x7f)
            return ld_fail(l, s->line, path, "\"%s\" must not contain spaces or control characters", *out);
    }
    return 0;
}

/* An environment variable name: the `*_env` options. */
int ld_env_name(ld *l, const slot *s, const char *path, char *out, size_t outlen)
{
    const char *txt;
    size_t len;
    if (ld_scalar(l, s, path, "an environment variable name", &txt, &len) < 0)
        return -1;
    int ok = len > 0 && len < outlen;
    for (size_t i = 0; ok && i < len; i++) {
        char c = txt[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    }
    if (!ok)
        return ld_fail(l, s->line, path, "\"%.*s\" is not an environment variable name",
                       (int)(len > 64 ? 64 : len), txt);
    memcpy(out, txt, len);
    out[len] = '\0';
    return 0;
}

/* Resolve `NAME_env: VAR` to the variable's value (set and non-empty). */
int ld_from_env(ld *l, const slot *s, const char *path, char **out)
{
    char var[256];
    if (l->api_body)
        return ld_fail(l, s->line, path, "a tenant's definition may not read the server's environment");
    if (ld_env_name(l, s, path, var, sizeof(var)) < 0)
        return -1;
    const char *v = getenv(var);
    if (!v)
        return ld_fail(l, s->line, path, "environment variable %s is not set", var);
    if (!*v)
        return ld_fail(l, s->line, path, "environment variable %s is empty", var);
    free(*out);
    *out = config_xstrdup(v);
    return 0;
}

/* An integer in [min, max]. Numbers must be plain scalars: "60" in quotes
 * is a string, and accepting it would hide a YAML mistake. */
int ld_int(ld *l, const slot *s, const char *path, int64_t min, int64_t max, int64_t *out)
{
    char wbuf[64];
    const char *txt;
    size_t len;
    if (config_node_is_null(s->val) || fy_node_get_type(s->val) != FYNT_SCALAR ||
        fy_node_get_style(s->val) != FYNS_PLAIN)
        return ld_fail(l, s->line, path, "expected an integer, got %s", config_node_what(s->val, wbuf, sizeof(wbuf)));
    txt = fy_node_get_scalar(s->val, &len);
    char tmp[32];
    int ok = txt && len > 0 && len < sizeof(tmp);
    for (size_t i = 0; ok && i < len; i++)
        ok = (txt[i] >= '0' && txt[i] <= '9') || (i == 0 && (txt[i] == '-' || txt[i] == '+') && len > 1);
    if (!ok)
        return ld_fail(l, s->line, path, "expected an integer, got \"%.*s\"",
                       (int)(len > 40 ? 40 : len), txt ? txt : "");
    memcpy(tmp, txt, len);
    tmp[len] = '\0';
    errno = 0;
    long long v = strtoll(tmp, NULL, 10);
    if (errno == ERANGE || v < min || v > max) {
        if (tmp[0] == '-' && min == 0)
            return ld_fail(l, s->line, path, "must not be negative (got %s)", tmp);
        return ld_fail(l, s->line, path, "must be between %lld and %lld (got %s)",
                       (long long)min, (long long)max, tmp);
    }
    *out = v;
    return 0;
}

int ld_u32(ld *l, const slot *s, const char *path, int64_t min, int64_t max, uint32_t *out)
{
    int64_t v;
    if (ld_int(l, s, path, min, max, &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int ld_size(ld *l, const slot *s, const char *path, int64_t max, size_t *out)
{
    int64_t v;
    if (ld_int(l, s, path, 0, max, &v) < 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* A decimal number in [min, max]; no hex, inf or nan. */
int ld_double(ld *l, const slot *s, const char *path, double min, double max, double *out)
{
    char wbuf[64];
    const char *txt;
    size_t len;
    if (config_node_is_null(s->val) || fy_node_get_type(s->val) != FYNT_SCALAR ||
        fy_node_get_style(s->val) != FYNS_PLAIN)
        return ld_fail(l, s->line, path, "expected a number, got %s", config_node_what(s->val, wbuf, sizeof(wbuf)));
    txt = fy_node_get_scalar(s->val, &len);
    char tmp[64];
    int ok = txt && len > 0 && len < sizeof(tmp);
    int digits = 0;
    for (size_t i = 0; ok && i < len; i++) {
        char c = txt[i];
        digits += (c >= '0' && c <= '9');
        ok = (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+';
    }
    char *end = NULL;
    double v = 0;
    if (ok && digits) {
        memcpy(tmp, txt, len);
        tmp[len] = '\0';
        errno = 0;
        v = strtod(tmp, &end);
        ok = end && *end == '\0' && errno != ERANGE && isfinite(v);
    } else {
        ok = 0;
    }
    if (!ok)
        return ld_fail(l, s->line, path, "expected a number, got \"%.*s\"",
                       (int)(len > 40 ? 40 : len), txt ? txt : "");
    if (v < min || v > max) {
        if (v < 0 && min == 0)
            return ld_fail(l, s->line, path, "must not be negative (got %s)", tmp);
        return ld_fail(l, s->line, path, "must be between %g and %g (got %s)", min, max, tmp);
    }
    *out = v;
    return 0;
}

/* An http:// or https:// URL with a host and no spaces or control
 * characters; *host_at is where the host starts. */
int ld_http_url(ld *l, const slot *s, const char *path, char **out, size_t *host_at)
{
    if (ld_nonempty(l, s, path, out, NULL) < 0)
        return -1;
    const char *u = *out;
    size_t skip = strncmp(u, "http://", 7) == 0 ? 7 : strncmp(u, "https://", 8) == 0 ? 8 : 0;
    if (!skip)
        return ld_fail(l, s->line, path, "\"%s\" must start with http:// or https://", u);
    if (u[skip] == '\0' || u[skip] == '/')
        return ld_fail(l, s->line, path, "\"%s\" has no host", u);
    for (const char *c = u; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return ld_fail(l, s->line, path, "must not contain spaces or control characters");
    *host_at = skip;
    return 0;
}

/* ------------------------------------------------------------------ */
/* lists                                                               */

/* Check that `list` is a non-empty sequence and give its length. */
int ld_sequence(ld *l, struct fy_node *list, int line, const char *path, size_t *count,
                       int allow_empty)
{
    char wbuf[64];
    if (config_node_is_null(list) || fy_node_get_type(list) != FYNT_SEQUENCE)
        return ld_fail(l, line, path, "expected a list (\"- name: …\" entries), got %s", config_node_what(list, wbuf, sizeof(wbuf)));
    int c = fy_node_sequence_item_count(list);
    if (c < 0 || (c == 0 && !allow_empty))
        return ld_fail(l, line, path, "the list is empty; give at least one entry or leave the key out");
    *count = (size_t)c;
    return 0;
}

/* "openai, mock" for "(known: …)" hints. */
void ld_known_names(char *out, size_t outlen, const char *const *names, size_t stride, size_t n)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && off < outlen; i++) {
        const char *nm = *(const char *const *)((const char *)names + i * stride);
        off += (size_t)snprintf(out + off, outlen - off, "%s%s", i ? ", " : "", nm);
    }
}

/* Duplicate names within one list: report the second occurrence. */
int ld_check_unique(ld *l, const char *list, const char *const *names, size_t stride, size_t n,
                           const entry_lines *el)
{
    for (size_t i = 1; i < n; i++) {
        const char *a = *(const char *const *)((const char *)names + i * stride);
        for (size_t j = 0; j < i; j++) {
            const char *b = *(const char *const *)((const char *)names + j * stride);
            if (strcmp(a, b) == 0) {
                char kp[64];
                snprintf(kp, sizeof(kp), "%s[%zu].name", list, i);
                return ld_fail(l, el[i].name, kp, "duplicate name \"%s\" (also %s[%zu], line %d)",
                               a, list, j, el[j].name);
            }
        }
    }
    return 0;
}

/* Read a list of entries with `one`; returns the new array (replacing the
 * defaults is the caller's job, so a failed load never half-replaces). */
int ld_list(ld *l, const slot *s, const char *list, size_t elem, ld_entry_fn one,
                   void (*free_one)(void *), int allow_empty, void **out, size_t *out_n,
                   entry_lines **out_lines)
{
    size_t n = 0;
    if (ld_sequence(l, s->val, s->line, list, &n, allow_empty) < 0)
        return -1;
    char *arr = config_xcalloc(n, elem);
    entry_lines *el = config_xcalloc(n, sizeof(entry_lines));
    void *it = NULL;
    struct fy_node *item;
    size_t i = 0;
    while (i < n && (item = fy_node_sequence_iterate(s->val, &it)) != NULL) {
        char ip[64];
        snprintf(ip, sizeof(ip), "%s[%zu]", list, i);
        el[i].item = config_node_line(item, s->line);
        if (one(l, item, el[i].item, ip, arr + i * elem, &el[i]) < 0) {
            for (size_t j = 0; j <= i; j++)
                free_one(arr + j * elem);
            free(arr);
            free(el);
            return -1;
        }
        i++;
    }
    *out = arr;
    *out_n = i;
    *out_lines = el;
    return 0;
}

/* ------------------------------------------------------------------ */
/* tools: and agents:                                                  */

/* Tool and agent names travel to model providers (function names) and into
 * URLs and logs, so they are kept to a conservative alphabet. */
int ld_ident(ld *l, const slot *s, const char *path, char **out, const char *extra, const char *what)
{
    if (ld_nonempty(l, s, path, out, NULL) < 0)
        return -1;
    size_t n = strlen(*out);
    int ok = n <= 64;
    for (size_t i = 0; ok && i < n; i++) {
        char c = (*out)[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             (c && strchr(extra, c));
    }
    if (!ok)
        return ld_fail(l, s->line, path, "\"%.64s%s\" is not a valid %s name (1-64 characters of "
                       "a-z A-Z 0-9 %s)", *out, n > 64 ? "…" : "", what, extra);
    return 0;
}
