/* config_yaml.c — reads brigade's YAML configuration and validates all of
 * it before anything starts.
 *
 * Every error names the file, the 1-based line and the key path
 * ("brigade.yaml:14: models[1].provider: no provider named …"), so a typo is
 * a one-line fix rather than a debugging session. The first error stops the
 * load: later errors are often consequences of the first.
 *
 * Shape of the code: each mapping is first "collected" into a table of
 * slots (known key → node and line), which rejects unknown keys in one
 * place; then each section reads its slots with typed readers that check
 * type and range. Cross-references (model → provider, default_tier → tier,
 * duplicate names) are checked once all lists are read. */
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"

#define CONFIG_MAX_FILE_BYTES (4u << 20)   /* a config larger than this is a mistake */
#define CONFIG_MAX_NAME       128

typedef struct ld {
    const char     *name;      /* file name in messages */
    char           *err;
    size_t          errlen;
    brigade_config *cfg;
} ld;

/* One known key of a mapping and what the collector found for it. */
typedef struct slot {
    const char     *key;
    struct fy_node *val;       /* NULL if absent or `key:` with no value */
    int             line;      /* 1-based line of the key; 0 if absent */
    int             present;
} slot;

/* ------------------------------------------------------------------ */
/* messages                                                            */

static int ld_fail(ld *l, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int ld_fail(ld *l, int line, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (path && *path)
        snprintf(l->err, l->errlen, "%s:%d: %s: %s", l->name, line, path, msg);
    else
        snprintf(l->err, l->errlen, "%s:%d: %s", l->name, line, msg);
    return -1;
}

static void ld_warn(ld *l, int line, const char *path, const char *msg)
{
    char w[512];
    snprintf(w, sizeof(w), "%s:%d: %s: %s", l->name, line, path, msg);
    config_add_warning(l->cfg, w);
}

/* "parent.key" / "parent[i]" into out; truncation only shortens a message. */
static void ld_path(char *out, size_t outlen, const char *parent, const char *key)
{
    if (parent && *parent)
        snprintf(out, outlen, "%s.%s", parent, key);
    else
        snprintf(out, outlen, "%s", key);
}

/* ------------------------------------------------------------------ */
/* nodes                                                               */

/* 1-based line where a node starts. Collections have no token of their
 * own in this libfyaml, so they borrow their first child's; an empty one
 * (or a missing value) reports `fallback`, normally its key's line. */
static int node_line(struct fy_node *n, int fallback)
{
    if (!n)
        return fallback;
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        struct fy_token *t = fy_node_get_scalar_token(n);
        const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
        return m ? m->line + 1 : fallback;
    }
    case FYNT_MAPPING: {
        void *it = NULL;
        struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
        return p ? node_line(fy_node_pair_key(p), fallback) : fallback;
    }
    case FYNT_SEQUENCE: {
        void *it = NULL;
        struct fy_node *c = fy_node_sequence_iterate(n, &it);
        return c ? node_line(c, fallback) : fallback;
    }
    }
    return fallback;
}

static int node_is_null(struct fy_node *n)
{
    if (!n)
        return 1;
    if (fy_node_get_type(n) != FYNT_SCALAR || fy_node_get_style(n) != FYNS_PLAIN)
        return 0;
    size_t len;
    const char *s = fy_node_get_scalar(n, &len);
    if (!s || len == 0)
        return 1;
    return (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

/* What a node is, for "expected X, got Y": "a mapping", "a list",
 * "nothing (null)", or the scalar itself in quotes. */
static const char *node_what(struct fy_node *n, char *buf, size_t len)
{
    if (node_is_null(n))
        return "nothing (null)";
    switch (fy_node_get_type(n)) {
    case FYNT_MAPPING:  return "a mapping";
    case FYNT_SEQUENCE: return "a list";
    default:            break;
    }
    if (fy_node_get_style(n) != FYNS_PLAIN)
        return "a quoted string";
    size_t sl = 0;
    const char *sv = fy_node_get_scalar(n, &sl);
    snprintf(buf, len, "\"%.*s%s\"", (int)(sl > 40 ? 40 : sl), sv ? sv : "", sl > 40 ? "…" : "");
    return buf;
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
static const char *ld_suggest(const char *key, const slot *slots, size_t n)
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
static int ld_collect(ld *l, struct fy_node *map, int line, const char *path,
                      slot *slots, size_t n)
{
    char wbuf[64];
    for (size_t i = 0; i < n; i++) {
        slots[i].val = NULL;
        slots[i].line = 0;
        slots[i].present = 0;
    }
    if (node_is_null(map))
        return 0;
    if (fy_node_get_type(map) != FYNT_MAPPING)
        return ld_fail(l, node_line(map, line), path, "expected a mapping (key: value), got %s",
                       node_what(map, wbuf, sizeof(wbuf)));

    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p);
        int kline = node_line(k, line);
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
static int ld_scalar(ld *l, const slot *s, const char *path, const char *want,
                     const char **txt, size_t *len)
{
    char wbuf[64];
    if (node_is_null(s->val) || fy_node_get_type(s->val) != FYNT_SCALAR)
        return ld_fail(l, s->line, path, "expected %s, got %s", want, node_what(s->val, wbuf, sizeof(wbuf)));
    *txt = fy_node_get_scalar(s->val, len);
    if (!*txt)
        return ld_fail(l, s->line, path, "expected %s", want);
    return 0;
}

/* A string, with ${VAR} expanded. *raw_literal tells whether the file held
 * the value itself (no ${…}); used to warn about secrets written in. */
static int ld_string(ld *l, const slot *s, const char *path, char **out, int *raw_literal)
{
    const char *txt;
    size_t len;
    if (ld_scalar(l, s, path, "a string", &txt, &len) < 0)
        return -1;
    if (memchr(txt, '\0', len))
        return ld_fail(l, s->line, path, "strings must not contain NUL characters");
    if (raw_literal)
        *raw_literal = !config_env_has_ref(txt, len);
    char why[256];
    char *v = NULL;
    if (config_env_expand(txt, len, &v, why, sizeof(why)) < 0)
        return ld_fail(l, s->line, path, "%s", why);
    free(*out);
    *out = v;
    return 0;
}

/* A non-empty string (names, URLs, paths). */
static int ld_nonempty(ld *l, const slot *s, const char *path, char **out, int *raw_literal)
{
    if (ld_string(l, s, path, out, raw_literal) < 0)
        return -1;
    if (!**out)
        return ld_fail(l, s->line, path, "must not be empty");
    return 0;
}

/* A name clients or other entries refer to: printable, no spaces. */
static int ld_name(ld *l, const slot *s, const char *path, char **out)
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
static int ld_env_name(ld *l, const slot *s, const char *path, char *out, size_t outlen)
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
static int ld_from_env(ld *l, const slot *s, const char *path, char **out)
{
    char var[256];
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
static int ld_int(ld *l, const slot *s, const char *path, int64_t min, int64_t max, int64_t *out)
{
    char wbuf[64];
    const char *txt;
    size_t len;
    if (node_is_null(s->val) || fy_node_get_type(s->val) != FYNT_SCALAR ||
        fy_node_get_style(s->val) != FYNS_PLAIN)
        return ld_fail(l, s->line, path, "expected an integer, got %s", node_what(s->val, wbuf, sizeof(wbuf)));
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

static int ld_u32(ld *l, const slot *s, const char *path, int64_t min, int64_t max, uint32_t *out)
{
    int64_t v;
    if (ld_int(l, s, path, min, max, &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int ld_size(ld *l, const slot *s, const char *path, int64_t max, size_t *out)
{
    int64_t v;
    if (ld_int(l, s, path, 0, max, &v) < 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* A decimal number in [min, max]; no hex, inf or nan. */
static int ld_double(ld *l, const slot *s, const char *path, double min, double max, double *out)
{
    char wbuf[64];
    const char *txt;
    size_t len;
    if (node_is_null(s->val) || fy_node_get_type(s->val) != FYNT_SCALAR ||
        fy_node_get_style(s->val) != FYNS_PLAIN)
        return ld_fail(l, s->line, path, "expected a number, got %s", node_what(s->val, wbuf, sizeof(wbuf)));
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

/* ------------------------------------------------------------------ */
/* server:                                                             */

enum { LIM_BODY, LIM_HDR_BYTES, LIM_HDRS, LIM_URL, LIM_HDR_TO, LIM_BODY_TO, LIM_IDLE_TO,
       LIM_GRACE, LIM_CONNS, LIM_HIGH_WATER, LIM__N };

static int ld_limits(ld *l, struct fy_node *n, int line, const char *path, http_limits *lim)
{
    slot s[LIM__N] = {
        [LIM_BODY] = {.key = "max_body_bytes"},     [LIM_HDR_BYTES] = {.key = "max_header_bytes"},
        [LIM_HDRS] = {.key = "max_headers"},        [LIM_URL] = {.key = "max_url_bytes"},
        [LIM_HDR_TO] = {.key = "header_timeout_ms"}, [LIM_BODY_TO] = {.key = "body_timeout_ms"},
        [LIM_IDLE_TO] = {.key = "idle_timeout_ms"}, [LIM_GRACE] = {.key = "shutdown_grace_ms"},
        [LIM_CONNS] = {.key = "max_connections"},   [LIM_HIGH_WATER] = {.key = "stream_high_water_bytes"},
    };
    if (ld_collect(l, n, line, path, s, LIM__N) < 0)
        return -1;
    char p[160];
    const int64_t day_ms = 86400000, gib = 1LL << 30, mib = 1LL << 20;
#define LIM_SIZE(idx, field, max) \
    if (s[idx].present) { ld_path(p, sizeof(p), path, s[idx].key); \
        if (ld_size(l, &s[idx], p, (max), &lim->field) < 0) return -1; }
#define LIM_MS(idx, field) \
    if (s[idx].present) { ld_path(p, sizeof(p), path, s[idx].key); \
        if (ld_u32(l, &s[idx], p, 0, day_ms, &lim->field) < 0) return -1; }
    LIM_SIZE(LIM_BODY, max_body_bytes, gib)
    LIM_SIZE(LIM_HDR_BYTES, max_header_bytes, mib)
    LIM_SIZE(LIM_HDRS, max_headers, 10000)
    LIM_SIZE(LIM_URL, max_url_bytes, mib)
    LIM_MS(LIM_HDR_TO, header_timeout_ms)
    LIM_MS(LIM_BODY_TO, body_timeout_ms)
    LIM_MS(LIM_IDLE_TO, idle_timeout_ms)
    LIM_MS(LIM_GRACE, shutdown_grace_ms)
    LIM_SIZE(LIM_HIGH_WATER, stream_high_water, gib)
#undef LIM_SIZE
#undef LIM_MS
    if (s[LIM_CONNS].present) {
        ld_path(p, sizeof(p), path, s[LIM_CONNS].key);
        if (ld_u32(l, &s[LIM_CONNS], p, 0, 1000000, &lim->max_connections) < 0)
            return -1;
    }
    return 0;
}

enum { SRV_LISTEN, SRV_THREADS, SRV_DATA_DIR, SRV_ADMIN, SRV_ADMIN_ENV, SRV_LIMITS, SRV__N };

static int ld_server(ld *l, struct fy_node *n, int line)
{
    brigade_config *cfg = l->cfg;
    slot s[SRV__N] = {
        [SRV_LISTEN] = {.key = "listen"},     [SRV_THREADS] = {.key = "threads"},
        [SRV_DATA_DIR] = {.key = "data_dir"}, [SRV_ADMIN] = {.key = "admin_token"},
        [SRV_ADMIN_ENV] = {.key = "admin_token_env"}, [SRV_LIMITS] = {.key = "limits"},
    };
    if (ld_collect(l, n, line, "server", s, SRV__N) < 0)
        return -1;

    if (s[SRV_LISTEN].present) {
        char *v = NULL, *host = NULL, why[256];
        int port;
        if (ld_nonempty(l, &s[SRV_LISTEN], "server.listen", &v, NULL) < 0) {
            free(v);
            return -1;
        }
        int rc = config_parse_listen(v, &host, &port, why, sizeof(why));
        free(v);
        if (rc < 0)
            return ld_fail(l, s[SRV_LISTEN].line, "server.listen", "%s", why);
        free(cfg->listen_host);
        cfg->listen_host = host;
        cfg->listen_port = port;
    }
    if (s[SRV_THREADS].present) {
        int64_t v;
        if (ld_int(l, &s[SRV_THREADS], "server.threads", 0, 1024, &v) < 0)
            return -1;
        cfg->threads = (unsigned)v;
    }
    if (s[SRV_DATA_DIR].present && ld_nonempty(l, &s[SRV_DATA_DIR], "server.data_dir", &cfg->data_dir, NULL) < 0)
        return -1;
    if (s[SRV_ADMIN].present && s[SRV_ADMIN_ENV].present)
        return ld_fail(l, s[SRV_ADMIN_ENV].line, "server.admin_token_env",
                       "give either admin_token or admin_token_env, not both");
    if (s[SRV_ADMIN].present) {
        int literal = 0;
        if (ld_nonempty(l, &s[SRV_ADMIN], "server.admin_token", &cfg->admin_token, &literal) < 0)
            return -1;
        if (literal)
            ld_warn(l, s[SRV_ADMIN].line, "server.admin_token",
                    "the token is written in the file; prefer admin_token_env or ${VAR}");
    }
    if (s[SRV_ADMIN_ENV].present &&
        ld_from_env(l, &s[SRV_ADMIN_ENV], "server.admin_token_env", &cfg->admin_token) < 0)
        return -1;
    if (s[SRV_LIMITS].present &&
        ld_limits(l, s[SRV_LIMITS].val, s[SRV_LIMITS].line, "server.limits", &cfg->limits) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* lists                                                               */

/* Where each list entry came from, for cross-reference messages. */
typedef struct entry_lines {
    int item;                  /* first line of the entry */
    int name;                  /* line of its `name:` */
    int ref;                   /* models: line of `provider:` */
} entry_lines;

/* Check that `list` is a non-empty sequence and give its length. */
static int ld_sequence(ld *l, struct fy_node *list, int line, const char *path, size_t *count)
{
    char wbuf[64];
    if (node_is_null(list) || fy_node_get_type(list) != FYNT_SEQUENCE)
        return ld_fail(l, line, path, "expected a list (\"- name: …\" entries), got %s", node_what(list, wbuf, sizeof(wbuf)));
    int c = fy_node_sequence_item_count(list);
    if (c <= 0)
        return ld_fail(l, line, path, "the list is empty; give at least one entry or leave the key out");
    *count = (size_t)c;
    return 0;
}

enum { PR_NAME, PR_KIND, PR_BASE_URL, PR_API_KEY, PR_API_KEY_ENV, PR_TIMEOUT, PR_CONNECT_TIMEOUT,
       PR_MAX_CONNS, PR_LATENCY, PR_CHUNKS, PR_CHUNK_INTERVAL, PR_RETRIES, PR_BACKOFF, PR__N };

static int ld_provider(ld *l, struct fy_node *n, int line, const char *path, provider_cfg *p,
                       entry_lines *el)
{
    slot s[PR__N] = {
        [PR_NAME] = {.key = "name"},                 [PR_KIND] = {.key = "kind"},
        [PR_BASE_URL] = {.key = "base_url"},         [PR_API_KEY] = {.key = "api_key"},
        [PR_API_KEY_ENV] = {.key = "api_key_env"},   [PR_TIMEOUT] = {.key = "timeout_ms"},
        [PR_CONNECT_TIMEOUT] = {.key = "connect_timeout_ms"},
        [PR_MAX_CONNS] = {.key = "max_connections"}, [PR_LATENCY] = {.key = "latency_ms"},
        [PR_CHUNKS] = {.key = "stream_chunks"},      [PR_CHUNK_INTERVAL] = {.key = "chunk_interval_ms"},
        [PR_RETRIES] = {.key = "max_retries"},       [PR_BACKOFF] = {.key = "retry_backoff_ms"},
    };
    if (node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, kind, …), got nothing");
    if (ld_collect(l, n, line, path, s, PR__N) < 0)
        return -1;
    char kp[160];
    if (!s[PR_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    char *name = NULL;
    if (ld_name(l, &s[PR_NAME], kp, &name) < 0) {
        free(name);
        return -1;
    }
    el->name = s[PR_NAME].line;

    if (!s[PR_KIND].present) {
        free(name);
        return ld_fail(l, line, path, "missing required key \"kind\" (openai or mock)");
    }
    ld_path(kp, sizeof(kp), path, "kind");
    char *kind = NULL;
    if (ld_nonempty(l, &s[PR_KIND], kp, &kind, NULL) < 0) {
        free(name);
        free(kind);
        return -1;
    }
    provider_kind k;
    if (strcmp(kind, "openai") == 0) {
        k = PROVIDER_OPENAI;
    } else if (strcmp(kind, "mock") == 0) {
        k = PROVIDER_MOCK;
    } else {
        ld_fail(l, s[PR_KIND].line, kp, "unknown provider kind \"%s\" (known: openai, mock)", kind);
        free(name);
        free(kind);
        return -1;
    }
    free(kind);
    config_provider_defaults(p, name, k);
    free(name);

    /* Keys that only make sense for the other kind are errors: a mock
     * "latency_ms" on an openai provider silently doing nothing would be
     * a trap. */
    static const int openai_only[] = {PR_BASE_URL, PR_API_KEY, PR_API_KEY_ENV};
    static const int mock_only[] = {PR_LATENCY, PR_CHUNKS, PR_CHUNK_INTERVAL};
    const int *bad = k == PROVIDER_MOCK ? openai_only : mock_only;
    for (size_t i = 0; i < 3; i++) {
        if (s[bad[i]].present) {
            ld_path(kp, sizeof(kp), path, s[bad[i]].key);
            return ld_fail(l, s[bad[i]].line, kp, "only for kind %s, this provider is kind %s",
                           k == PROVIDER_MOCK ? "openai" : "mock", k == PROVIDER_MOCK ? "mock" : "openai");
        }
    }

    if (k == PROVIDER_OPENAI) {
        if (!s[PR_BASE_URL].present)
            return ld_fail(l, s[PR_KIND].line, path,
                           "kind openai needs base_url (e.g. https://api.openai.com/v1)");
        ld_path(kp, sizeof(kp), path, "base_url");
        if (ld_nonempty(l, &s[PR_BASE_URL], kp, &p->base_url, NULL) < 0)
            return -1;
        const char *u = p->base_url;
        size_t skip = strncmp(u, "http://", 7) == 0 ? 7 : strncmp(u, "https://", 8) == 0 ? 8 : 0;
        if (!skip)
            return ld_fail(l, s[PR_BASE_URL].line, kp,
                           "\"%s\" must start with http:// or https://", u);
        if (u[skip] == '\0' || u[skip] == '/')
            return ld_fail(l, s[PR_BASE_URL].line, kp, "\"%s\" has no host", u);
        for (const char *c = u; *c; c++)
            if ((unsigned char)*c <= ' ' || *c == 0x7f)
                return ld_fail(l, s[PR_BASE_URL].line, kp, "must not contain spaces or control characters");
        /* Paths are appended as "/chat/completions": drop trailing slashes. */
        size_t ul = strlen(p->base_url);
        while (ul > skip + 1 && p->base_url[ul - 1] == '/')
            p->base_url[--ul] = '\0';

        if (s[PR_API_KEY].present && s[PR_API_KEY_ENV].present) {
            ld_path(kp, sizeof(kp), path, "api_key_env");
            return ld_fail(l, s[PR_API_KEY_ENV].line, kp, "give either api_key or api_key_env, not both");
        }
        if (s[PR_API_KEY].present) {
            int literal = 0;
            ld_path(kp, sizeof(kp), path, "api_key");
            if (ld_nonempty(l, &s[PR_API_KEY], kp, &p->api_key, &literal) < 0)
                return -1;
            if (literal)
                ld_warn(l, s[PR_API_KEY].line, kp,
                        "the key is written in the file; prefer api_key_env or ${VAR}");
        }
        if (s[PR_API_KEY_ENV].present) {
            ld_path(kp, sizeof(kp), path, "api_key_env");
            if (ld_from_env(l, &s[PR_API_KEY_ENV], kp, &p->api_key) < 0)
                return -1;
        }
    } else {
#define PR_U32(idx, field, min, max) \
    if (s[idx].present) { ld_path(kp, sizeof(kp), path, s[idx].key); \
        if (ld_u32(l, &s[idx], kp, (min), (max), &p->field) < 0) return -1; }
        PR_U32(PR_LATENCY, mock_latency_ms, 0, 600000)
        PR_U32(PR_CHUNKS, mock_stream_chunks, 1, 100000)
        PR_U32(PR_CHUNK_INTERVAL, mock_chunk_interval_ms, 0, 60000)
    }
    PR_U32(PR_TIMEOUT, timeout_ms, 1, 86400000)
    PR_U32(PR_CONNECT_TIMEOUT, connect_timeout_ms, 1, 600000)
    PR_U32(PR_MAX_CONNS, max_connections, 1, 100000)
    PR_U32(PR_RETRIES, max_retries, 0, 10)
    PR_U32(PR_BACKOFF, retry_backoff_ms, 0, 60000)
#undef PR_U32
    return 0;
}

enum { MO_NAME, MO_PROVIDER, MO_UPSTREAM, MO_IN_PRICE, MO_OUT_PRICE, MO_MAX_OUT, MO_CONTEXT, MO__N };

static int ld_model(ld *l, struct fy_node *n, int line, const char *path, model_cfg *m, entry_lines *el)
{
    slot s[MO__N] = {
        [MO_NAME] = {.key = "name"},                       [MO_PROVIDER] = {.key = "provider"},
        [MO_UPSTREAM] = {.key = "upstream_model"},         [MO_IN_PRICE] = {.key = "input_usd_per_mtok"},
        [MO_OUT_PRICE] = {.key = "output_usd_per_mtok"},   [MO_MAX_OUT] = {.key = "max_output_tokens"},
        [MO_CONTEXT] = {.key = "context_window"},
    };
    if (node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, provider, …), got nothing");
    if (ld_collect(l, n, line, path, s, MO__N) < 0)
        return -1;
    char kp[160];
    m->max_output_tokens = 4096;
    m->context_window = 128000;
    if (!s[MO_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    if (ld_name(l, &s[MO_NAME], kp, &m->name) < 0)
        return -1;
    el->name = s[MO_NAME].line;
    if (!s[MO_PROVIDER].present)
        return ld_fail(l, line, path, "missing required key \"provider\"");
    ld_path(kp, sizeof(kp), path, "provider");
    if (ld_name(l, &s[MO_PROVIDER], kp, &m->provider_name) < 0)
        return -1;
    el->ref = s[MO_PROVIDER].line;
    if (s[MO_UPSTREAM].present) {
        ld_path(kp, sizeof(kp), path, "upstream_model");
        if (ld_nonempty(l, &s[MO_UPSTREAM], kp, &m->upstream_model, NULL) < 0)
            return -1;
    } else {
        m->upstream_model = config_xstrdup(m->name);
    }
    if (s[MO_IN_PRICE].present) {
        ld_path(kp, sizeof(kp), path, "input_usd_per_mtok");
        if (ld_double(l, &s[MO_IN_PRICE], kp, 0, 1e6, &m->input_usd_per_mtok) < 0)
            return -1;
    }
    if (s[MO_OUT_PRICE].present) {
        ld_path(kp, sizeof(kp), path, "output_usd_per_mtok");
        if (ld_double(l, &s[MO_OUT_PRICE], kp, 0, 1e6, &m->output_usd_per_mtok) < 0)
            return -1;
    }
    if (s[MO_MAX_OUT].present) {
        ld_path(kp, sizeof(kp), path, "max_output_tokens");
        if (ld_u32(l, &s[MO_MAX_OUT], kp, 1, 10000000, &m->max_output_tokens) < 0)
            return -1;
    }
    if (s[MO_CONTEXT].present) {
        ld_path(kp, sizeof(kp), path, "context_window");
        if (ld_u32(l, &s[MO_CONTEXT], kp, 1, 100000000, &m->context_window) < 0)
            return -1;
    }
    if (m->max_output_tokens > m->context_window) {
        int at = s[MO_MAX_OUT].present ? s[MO_MAX_OUT].line : s[MO_CONTEXT].line;
        ld_path(kp, sizeof(kp), path, s[MO_MAX_OUT].present ? "max_output_tokens" : "context_window");
        return ld_fail(l, at ? at : line, kp, "max_output_tokens (%u) exceeds context_window (%u)",
                       m->max_output_tokens, m->context_window);
    }
    return 0;
}

enum { TI_NAME, TI_RPM, TI_TPM, TI_RUNS, TI_DAILY, TI_MONTHLY, TI__N };

static int ld_tier(ld *l, struct fy_node *n, int line, const char *path, tier_cfg *t, entry_lines *el)
{
    slot s[TI__N] = {
        [TI_NAME] = {.key = "name"},   [TI_RPM] = {.key = "rpm"}, [TI_TPM] = {.key = "tpm"},
        [TI_RUNS] = {.key = "max_concurrent_runs"}, [TI_DAILY] = {.key = "daily_budget_usd"},
        [TI_MONTHLY] = {.key = "monthly_budget_usd"},
    };
    if (node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, rpm, …), got nothing");
    if (ld_collect(l, n, line, path, s, TI__N) < 0)
        return -1;
    char kp[160];
    if (!s[TI_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    if (ld_name(l, &s[TI_NAME], kp, &t->name) < 0)
        return -1;
    el->name = s[TI_NAME].line;
#define TI_INT(idx, field, max) \
    if (s[idx].present) { ld_path(kp, sizeof(kp), path, s[idx].key); \
        if (ld_int(l, &s[idx], kp, 0, (max), &t->field) < 0) return -1; }
#define TI_USD(idx, field) \
    if (s[idx].present) { ld_path(kp, sizeof(kp), path, s[idx].key); \
        if (ld_double(l, &s[idx], kp, 0, 1e9, &t->field) < 0) return -1; }
    TI_INT(TI_RPM, rpm, 1000000000LL)
    TI_INT(TI_TPM, tpm, 1000000000000LL)
    TI_INT(TI_RUNS, max_concurrent_runs, 1000000)
    TI_USD(TI_DAILY, daily_budget_usd)
    TI_USD(TI_MONTHLY, monthly_budget_usd)
#undef TI_INT
#undef TI_USD
    return 0;
}

/* "openai, mock" for "(known: …)" hints. */
static void ld_known_names(char *out, size_t outlen, const char *const *names, size_t stride, size_t n)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && off < outlen; i++) {
        const char *nm = *(const char *const *)((const char *)names + i * stride);
        off += (size_t)snprintf(out + off, outlen - off, "%s%s", i ? ", " : "", nm);
    }
}

/* Duplicate names within one list: report the second occurrence. */
static int ld_check_unique(ld *l, const char *list, const char *const *names, size_t stride, size_t n,
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
typedef int (*ld_entry_fn)(ld *, struct fy_node *, int, const char *, void *, entry_lines *);

static int ld_list(ld *l, const slot *s, const char *list, size_t elem, ld_entry_fn one,
                   void (*free_one)(void *), void **out, size_t *out_n, entry_lines **out_lines)
{
    size_t n = 0;
    if (ld_sequence(l, s->val, s->line, list, &n) < 0)
        return -1;
    char *arr = config_xcalloc(n, elem);
    entry_lines *el = config_xcalloc(n, sizeof(entry_lines));
    void *it = NULL;
    struct fy_node *item;
    size_t i = 0;
    while (i < n && (item = fy_node_sequence_iterate(s->val, &it)) != NULL) {
        char ip[64];
        snprintf(ip, sizeof(ip), "%s[%zu]", list, i);
        el[i].item = node_line(item, s->line);
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

static int ld_provider_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_provider(l, n, line, path, e, el);
}
static int ld_model_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_model(l, n, line, path, e, el);
}
static int ld_tier_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_tier(l, n, line, path, e, el);
}
static void ld_provider_free(void *e) { config_provider_free(e); }
static void ld_model_free(void *e) { config_model_free(e); }
static void ld_tier_free(void *e) { config_tier_free(e); }

/* ------------------------------------------------------------------ */
/* the document                                                        */

enum { RT_SERVER, RT_PROVIDERS, RT_MODELS, RT_TIERS, RT_DEFAULT_TIER, RT__N };

static int ld_root(ld *l, struct fy_node *root)
{
    char wbuf[64];
    brigade_config *cfg = l->cfg;
    slot s[RT__N] = {
        [RT_SERVER] = {.key = "server"}, [RT_PROVIDERS] = {.key = "providers"},
        [RT_MODELS] = {.key = "models"}, [RT_TIERS] = {.key = "tiers"},
        [RT_DEFAULT_TIER] = {.key = "default_tier"},
    };
    if (!node_is_null(root) && fy_node_get_type(root) != FYNT_MAPPING)
        return ld_fail(l, node_line(root, 1), NULL,
                       "the configuration must be a YAML mapping (key: value), got %s", node_what(root, wbuf, sizeof(wbuf)));
    if (ld_collect(l, root, 1, NULL, s, RT__N) < 0)
        return -1;
    if (s[RT_SERVER].present && ld_server(l, s[RT_SERVER].val, s[RT_SERVER].line) < 0)
        return -1;

    int rc = -1;
    entry_lines *pl = NULL, *ml = NULL, *tl = NULL;
    char known[512];

    /* A list given in the file replaces the embedded one wholesale:
     * merging by name would make "what is configured" depend on defaults
     * the reader of the file cannot see. */
    if (s[RT_PROVIDERS].present) {
        void *arr;
        size_t n;
        if (ld_list(l, &s[RT_PROVIDERS], "providers", sizeof(provider_cfg), ld_provider_fn,
                    ld_provider_free, &arr, &n, &pl) < 0)
            goto out;
        for (size_t i = 0; i < cfg->n_providers; i++)
            config_provider_free(&cfg->providers[i]);
        free(cfg->providers);
        cfg->providers = arr;
        cfg->n_providers = n;
        if (ld_check_unique(l, "providers", (const char *const *)&cfg->providers[0].name,
                            sizeof(provider_cfg), n, pl) < 0)
            goto out;
    }
    if (s[RT_MODELS].present) {
        void *arr;
        size_t n;
        if (ld_list(l, &s[RT_MODELS], "models", sizeof(model_cfg), ld_model_fn, ld_model_free,
                    &arr, &n, &ml) < 0)
            goto out;
        for (size_t i = 0; i < cfg->n_models; i++)
            config_model_free(&cfg->models[i]);
        free(cfg->models);
        cfg->models = arr;
        cfg->n_models = n;
        if (ld_check_unique(l, "models", (const char *const *)&cfg->models[0].name,
                            sizeof(model_cfg), n, ml) < 0)
            goto out;
    }
    if (s[RT_TIERS].present) {
        void *arr;
        size_t n;
        if (ld_list(l, &s[RT_TIERS], "tiers", sizeof(tier_cfg), ld_tier_fn, ld_tier_free,
                    &arr, &n, &tl) < 0)
            goto out;
        for (size_t i = 0; i < cfg->n_tiers; i++)
            config_tier_free(&cfg->tiers[i]);
        free(cfg->tiers);
        cfg->tiers = arr;
        cfg->n_tiers = n;
        if (ld_check_unique(l, "tiers", (const char *const *)&cfg->tiers[0].name,
                            sizeof(tier_cfg), n, tl) < 0)
            goto out;
    }
    if (s[RT_DEFAULT_TIER].present &&
        ld_name(l, &s[RT_DEFAULT_TIER], "default_tier", &cfg->default_tier) < 0)
        goto out;

    /* Resolve model → provider. Embedded models survive a replaced
     * provider list only if a mock provider of their name is still there. */
    ld_known_names(known, sizeof(known), (const char *const *)&cfg->providers[0].name,
                   sizeof(provider_cfg), cfg->n_providers);
    size_t kept = 0;
    for (size_t i = 0; i < cfg->n_models; i++) {
        model_cfg *m = &cfg->models[i];
        m->provider = NULL;
        for (size_t j = 0; j < cfg->n_providers; j++)
            if (strcmp(cfg->providers[j].name, m->provider_name) == 0)
                m->provider = &cfg->providers[j];
        if (ml && !m->provider) {
            char kp[64];
            snprintf(kp, sizeof(kp), "models[%zu].provider", i);
            ld_fail(l, ml[i].ref, kp, "no provider named \"%s\" (known: %s)", m->provider_name, known);
            goto out;
        }
        if (!ml && (!m->provider || m->provider->kind != PROVIDER_MOCK)) {
            config_model_free(m);
            continue;
        }
        if (kept != i) {
            cfg->models[kept] = *m;
            memset(m, 0, sizeof(*m));
        }
        kept++;
    }
    cfg->n_models = kept;
    if (cfg->n_models == 0) {
        ld_fail(l, s[RT_PROVIDERS].line, "models",
                "no models: the embedded mock models need the \"mock\" provider, "
                "which the providers list replaced; add a models list");
        goto out;
    }

    if (!config_find_tier(cfg, cfg->default_tier)) {
        ld_known_names(known, sizeof(known), (const char *const *)&cfg->tiers[0].name,
                       sizeof(tier_cfg), cfg->n_tiers);
        int at = s[RT_DEFAULT_TIER].present ? s[RT_DEFAULT_TIER].line : s[RT_TIERS].line;
        ld_fail(l, at, "default_tier", "no tier named \"%s\" (known: %s)%s", cfg->default_tier, known,
                s[RT_DEFAULT_TIER].present ? "" : "; set default_tier to one of them");
        goto out;
    }
    rc = 0;
out:
    free(pl);
    free(ml);
    free(tl);
    return rc;
}

/* Turn libfyaml's collected diagnostic into our one-line message. */
static int ld_syntax_error(ld *l, struct fy_diag *diag)
{
    void *it = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(diag, &it)) != NULL) {
        if (e->type < FYET_ERROR)
            continue;
        /* fy_diag_error lines are already 1-based (unlike fy_mark). */
        return ld_fail(l, e->line > 0 ? e->line : 1, NULL, "syntax error: %s (column %d)",
                       e->msg ? e->msg : "invalid YAML", e->column > 0 ? e->column : 1);
    }
    return ld_fail(l, 1, NULL, "syntax error: the YAML could not be parsed");
}

int config_load_string(const char *name, const char *yaml, size_t len, brigade_config *cfg,
                       char *err, size_t errlen)
{
    ld l = {.name = name ? name : "<config>", .err = err, .errlen = errlen, .cfg = cfg};
    if (errlen)
        err[0] = '\0';
    config_defaults(cfg);

    /* An empty (or comment-only) file means "all defaults"; libfyaml
     * returns no document for it, which is also what it does on a syntax
     * error, so tell the two apart by whether anything but comments and
     * blanks is present. */
    int blank = 1;
    for (size_t i = 0; i < len && blank; i++) {
        char c = yaml[i];
        if (c == '#') {
            while (i < len && yaml[i] != '\n')
                i++;
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            blank = 0;
        }
    }
    if (blank)
        return 0;

    /* libfyaml stops at a NUL as if the file ended there; a config with a
     * NUL in it is a binary or corrupted file, so say so. */
    const char *nul = memchr(yaml, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *c = yaml; c < nul; c++)
            line += *c == '\n';
        ld_fail(&l, line, NULL, "the file contains a NUL byte; is it a text file?");
        config_free(cfg);
        return -1;
    }

    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;            /* nothing to stderr: errors become our message */
    dcfg.output_fn = NULL;
    dcfg.level = FYET_ERROR;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag) {
        ld_fail(&l, 1, NULL, "cannot create the YAML parser");
        config_free(cfg);
        return -1;
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg = {
        .flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT | FYPCF_JSON_NONE,
        .diag = diag,
    };
    /* A parser rather than fy_document_build_from_string, so that a
     * second document ("---") is seen and refused instead of ignored. */
    struct fy_parser *fyp = fy_parser_create(&pcfg);
    struct fy_document *doc = NULL;
    int rc;
    if (!fyp || fy_parser_set_string(fyp, yaml, len) < 0) {
        rc = ld_fail(&l, 1, NULL, "cannot create the YAML parser");
    } else if (!(doc = fy_parse_load_document(fyp)) || fy_diag_got_error(diag)) {
        rc = ld_syntax_error(&l, diag);
    } else {
        struct fy_document *more = fy_parse_load_document(fyp);
        if (fy_diag_got_error(diag)) {
            rc = ld_syntax_error(&l, diag);
        } else if (more && fy_document_root(more)) {
            rc = ld_fail(&l, node_line(fy_document_root(more), 1), NULL,
                         "only one YAML document is allowed (a second one starts after \"---\")");
        } else {
            rc = ld_root(&l, fy_document_root(doc));
        }
        if (more)
            fy_parse_document_destroy(fyp, more);
    }
    if (doc)
        fy_parse_document_destroy(fyp, doc);
    if (fyp)
        fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
    if (rc < 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

int config_load_file(const char *path, brigade_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *data = malloc(CONFIG_MAX_FILE_BYTES + 1);
    if (!data) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t n = fread(data, 1, CONFIG_MAX_FILE_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(data);
        snprintf(err, errlen, "%s: cannot read", path);
        return -1;
    }
    if (n > CONFIG_MAX_FILE_BYTES) {
        free(data);
        snprintf(err, errlen, "%s: larger than %u bytes; is this the right file?", path,
                 CONFIG_MAX_FILE_BYTES);
        return -1;
    }
    int rc = config_load_string(path, data, n, cfg, err, errlen);
    free(data);
    if (rc == 0)
        cfg->source_path = config_xstrdup(path);
    return rc;
}
