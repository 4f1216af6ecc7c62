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
 * duplicate names) are checked once all lists are read; agents are read
 * last, so their references (model, tools, tiers) resolve as they are read.
 * A tool's YAML parameter schema becomes JSON in config_json.c. */
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "util/buf.h"
#include "util/utf8.h"

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
int config_node_line(struct fy_node *n, int fallback)
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
        return p ? config_node_line(fy_node_pair_key(p), fallback) : fallback;
    }
    case FYNT_SEQUENCE: {
        void *it = NULL;
        struct fy_node *c = fy_node_sequence_iterate(n, &it);
        return c ? config_node_line(c, fallback) : fallback;
    }
    }
    return fallback;
}

int config_node_is_null(struct fy_node *n)
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
    if (config_node_is_null(n))
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
    if (config_node_is_null(map))
        return 0;
    if (fy_node_get_type(map) != FYNT_MAPPING)
        return ld_fail(l, config_node_line(map, line), path, "expected a mapping (key: value), got %s",
                       node_what(map, wbuf, sizeof(wbuf)));

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
static int ld_scalar(ld *l, const slot *s, const char *path, const char *want,
                     const char **txt, size_t *len)
{
    char wbuf[64];
    if (config_node_is_null(s->val) || fy_node_get_type(s->val) != FYNT_SCALAR)
        return ld_fail(l, s->line, path, "expected %s, got %s", want, node_what(s->val, wbuf, sizeof(wbuf)));
    *txt = fy_node_get_scalar(s->val, len);
    if (!*txt)
        return ld_fail(l, s->line, path, "expected %s", want);
    return 0;
}

/* true or false (YAML 1.2 core schema spellings only: no yes/no/on/off,
 * whose meaning surprises people). */
static int ld_bool(ld *l, const slot *s, const char *path, bool *out)
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
    if (config_node_is_null(s->val) || fy_node_get_type(s->val) != FYNT_SCALAR ||
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
    if (config_node_is_null(s->val) || fy_node_get_type(s->val) != FYNT_SCALAR ||
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

/* An http:// or https:// URL with a host and no spaces or control
 * characters; *host_at is where the host starts. */
static int ld_http_url(ld *l, const slot *s, const char *path, char **out, size_t *host_at)
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

enum { SRV_LISTEN, SRV_THREADS, SRV_DATA_DIR, SRV_ADMIN, SRV_ADMIN_ENV, SRV_LIMITS, SRV_REQ_TIMEOUT,
       SRV_MAX_REQ_TIMEOUT, SRV_MAX_CHOICES, SRV__N };

static int ld_server(ld *l, struct fy_node *n, int line)
{
    brigade_config *cfg = l->cfg;
    slot s[SRV__N] = {
        [SRV_LISTEN] = {.key = "listen"},     [SRV_THREADS] = {.key = "threads"},
        [SRV_DATA_DIR] = {.key = "data_dir"}, [SRV_ADMIN] = {.key = "admin_token"},
        [SRV_ADMIN_ENV] = {.key = "admin_token_env"}, [SRV_LIMITS] = {.key = "limits"},
        [SRV_REQ_TIMEOUT] = {.key = "request_timeout_ms"},
        [SRV_MAX_REQ_TIMEOUT] = {.key = "max_request_timeout_ms"},
        [SRV_MAX_CHOICES] = {.key = "max_choices"},
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
    if (s[SRV_REQ_TIMEOUT].present &&
        ld_u32(l, &s[SRV_REQ_TIMEOUT], "server.request_timeout_ms", 1, 86400000, &cfg->request_timeout_ms) < 0)
        return -1;
    if (s[SRV_MAX_REQ_TIMEOUT].present &&
        ld_u32(l, &s[SRV_MAX_REQ_TIMEOUT], "server.max_request_timeout_ms", 1, 86400000,
               &cfg->max_request_timeout_ms) < 0)
        return -1;
    if (s[SRV_MAX_CHOICES].present &&
        ld_u32(l, &s[SRV_MAX_CHOICES], "server.max_choices", 1, 128, &cfg->max_choices) < 0)
        return -1;
    if (cfg->request_timeout_ms > cfg->max_request_timeout_ms) {
        int at = s[SRV_REQ_TIMEOUT].present ? s[SRV_REQ_TIMEOUT].line : s[SRV_MAX_REQ_TIMEOUT].line;
        return ld_fail(l, at ? at : line, "server.request_timeout_ms",
                       "request_timeout_ms (%u) exceeds max_request_timeout_ms (%u)",
                       cfg->request_timeout_ms, cfg->max_request_timeout_ms);
    }
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
static int ld_sequence(ld *l, struct fy_node *list, int line, const char *path, size_t *count,
                       int allow_empty)
{
    char wbuf[64];
    if (config_node_is_null(list) || fy_node_get_type(list) != FYNT_SEQUENCE)
        return ld_fail(l, line, path, "expected a list (\"- name: …\" entries), got %s", node_what(list, wbuf, sizeof(wbuf)));
    int c = fy_node_sequence_item_count(list);
    if (c < 0 || (c == 0 && !allow_empty))
        return ld_fail(l, line, path, "the list is empty; give at least one entry or leave the key out");
    *count = (size_t)c;
    return 0;
}

enum { PR_NAME, PR_KIND, PR_BASE_URL, PR_API_KEY, PR_API_KEY_ENV, PR_TIMEOUT, PR_CONNECT_TIMEOUT,
       PR_MAX_CONNS, PR_LATENCY, PR_CHUNKS, PR_CHUNK_INTERVAL, PR_RETRIES, PR_BACKOFF,
       PR_ANTHROPIC_VERSION, PR_FIRST_BYTE, PR_IDLE, PR_MAX_CONC, PR_BACKOFF_MAX, PR_BUDGET_RATIO,
       PR_BUDGET_MIN, PR_BRK_FAILURES, PR_BRK_RATE, PR_BRK_WINDOW, PR_BRK_MIN_CALLS, PR_BRK_OPEN,
       PR__N };

static const char *ld_kind_name(provider_kind k)
{
    return k == PROVIDER_OPENAI ? "openai" : k == PROVIDER_ANTHROPIC ? "anthropic" : "mock";
}

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
        [PR_ANTHROPIC_VERSION] = {.key = "anthropic_version"},
        [PR_FIRST_BYTE] = {.key = "first_byte_timeout_ms"},
        [PR_IDLE] = {.key = "stream_idle_timeout_ms"},
        [PR_MAX_CONC] = {.key = "max_concurrent"},
        [PR_BACKOFF_MAX] = {.key = "retry_backoff_max_ms"},
        [PR_BUDGET_RATIO] = {.key = "retry_budget_ratio"},
        [PR_BUDGET_MIN] = {.key = "retry_budget_min_per_s"},
        [PR_BRK_FAILURES] = {.key = "breaker_failures"},
        [PR_BRK_RATE] = {.key = "breaker_error_rate"},
        [PR_BRK_WINDOW] = {.key = "breaker_window_ms"},
        [PR_BRK_MIN_CALLS] = {.key = "breaker_min_calls"},
        [PR_BRK_OPEN] = {.key = "breaker_open_ms"},
    };
    if (config_node_is_null(n))
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
        return ld_fail(l, line, path, "missing required key \"kind\" (openai, anthropic or mock)");
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
    } else if (strcmp(kind, "anthropic") == 0) {
        k = PROVIDER_ANTHROPIC;
    } else if (strcmp(kind, "mock") == 0) {
        k = PROVIDER_MOCK;
    } else {
        ld_fail(l, s[PR_KIND].line, kp, "unknown provider kind \"%s\" (known: openai, anthropic, mock)", kind);
        free(name);
        free(kind);
        return -1;
    }
    free(kind);
    config_provider_defaults(p, name, k);
    free(name);

    /* Keys that only make sense for another kind are errors: a mock
     * "latency_ms" on an openai provider silently doing nothing would be
     * a trap. Each key lists the kinds it belongs to. */
    static const struct { int idx; unsigned kinds; const char *which; } only[] = {
        {PR_BASE_URL, 1u << PROVIDER_OPENAI | 1u << PROVIDER_ANTHROPIC, "openai or anthropic"},
        {PR_API_KEY, 1u << PROVIDER_OPENAI | 1u << PROVIDER_ANTHROPIC, "openai or anthropic"},
        {PR_API_KEY_ENV, 1u << PROVIDER_OPENAI | 1u << PROVIDER_ANTHROPIC, "openai or anthropic"},
        {PR_ANTHROPIC_VERSION, 1u << PROVIDER_ANTHROPIC, "anthropic"},
        {PR_LATENCY, 1u << PROVIDER_MOCK, "mock"},
        {PR_CHUNKS, 1u << PROVIDER_MOCK, "mock"},
        {PR_CHUNK_INTERVAL, 1u << PROVIDER_MOCK, "mock"},
    };
    for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++) {
        if (s[only[i].idx].present && !(only[i].kinds & (1u << k))) {
            ld_path(kp, sizeof(kp), path, s[only[i].idx].key);
            return ld_fail(l, s[only[i].idx].line, kp, "only for kind %s, this provider is kind %s",
                           only[i].which, ld_kind_name(k));
        }
    }

    if (k == PROVIDER_OPENAI || k == PROVIDER_ANTHROPIC) {
        /* Required for anthropic too, although the public endpoint is
         * well known: which host receives the API key should be visible in
         * the file, not implied by a default. */
        if (!s[PR_BASE_URL].present)
            return ld_fail(l, s[PR_KIND].line, path, "kind %s needs base_url (e.g. %s)", ld_kind_name(k),
                           k == PROVIDER_OPENAI ? "https://api.openai.com/v1" : "https://api.anthropic.com/v1");
        ld_path(kp, sizeof(kp), path, "base_url");
        size_t skip;
        if (ld_http_url(l, &s[PR_BASE_URL], kp, &p->base_url, &skip) < 0)
            return -1;
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
        if (s[PR_ANTHROPIC_VERSION].present) {
            ld_path(kp, sizeof(kp), path, "anthropic_version");
            /* Sent as a header value: ld_name's "no spaces or control
             * characters" is exactly what keeps it a single safe token. */
            if (ld_name(l, &s[PR_ANTHROPIC_VERSION], kp, &p->anthropic_version) < 0)
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
    PR_U32(PR_FIRST_BYTE, first_byte_timeout_ms, 0, 86400000)
    PR_U32(PR_IDLE, stream_idle_timeout_ms, 0, 86400000)
    PR_U32(PR_MAX_CONC, max_concurrent, 0, 1000000)
    PR_U32(PR_BACKOFF_MAX, retry_backoff_max_ms, 0, 600000)
    PR_U32(PR_BUDGET_MIN, retry_budget_min_per_s, 0, 1000000)
    PR_U32(PR_BRK_FAILURES, breaker_failures, 0, 1000000)
    PR_U32(PR_BRK_WINDOW, breaker_window_ms, 100, 3600000)
    PR_U32(PR_BRK_MIN_CALLS, breaker_min_calls, 1, 1000000)
    PR_U32(PR_BRK_OPEN, breaker_open_ms, 1, 3600000)
#undef PR_U32
    if (s[PR_BUDGET_RATIO].present) {
        ld_path(kp, sizeof(kp), path, "retry_budget_ratio");
        if (ld_double(l, &s[PR_BUDGET_RATIO], kp, 0, 10, &p->retry_budget_ratio) < 0)
            return -1;
    }
    if (s[PR_BRK_RATE].present) {
        ld_path(kp, sizeof(kp), path, "breaker_error_rate");
        if (ld_double(l, &s[PR_BRK_RATE], kp, 0, 1, &p->breaker_error_rate) < 0)
            return -1;
    }
    if (p->retry_backoff_max_ms < p->retry_backoff_ms) {
        int at = s[PR_BACKOFF_MAX].present ? s[PR_BACKOFF_MAX].line : s[PR_BACKOFF].line;
        ld_path(kp, sizeof(kp), path, s[PR_BACKOFF_MAX].present ? "retry_backoff_max_ms" : "retry_backoff_ms");
        return ld_fail(l, at ? at : line, kp, "retry_backoff_max_ms (%u) is below retry_backoff_ms (%u)",
                       p->retry_backoff_max_ms, p->retry_backoff_ms);
    }
    return 0;
}

static void ld_known_names(char *out, size_t outlen, const char *const *names, size_t stride, size_t n);

enum { DE_PROVIDER, DE_UPSTREAM, DE_WEIGHT, DE_MAX_CONC, DE__N };

/* One entry of models[].deployments. Providers are final by now (the
 * providers list is read before the models), so the name resolves here,
 * with the line of the mistake. */
static int ld_deployment(ld *l, struct fy_node *n, int line, const char *path, const char *model_name,
                         deployment_cfg *d)
{
    slot s[DE__N] = {
        [DE_PROVIDER] = {.key = "provider"}, [DE_UPSTREAM] = {.key = "upstream_model"},
        [DE_WEIGHT] = {.key = "weight"},     [DE_MAX_CONC] = {.key = "max_concurrent"},
    };
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (provider, upstream_model, …), got nothing");
    if (ld_collect(l, n, line, path, s, DE__N) < 0)
        return -1;
    char kp[256];
    if (!s[DE_PROVIDER].present)
        return ld_fail(l, line, path, "missing required key \"provider\"");
    ld_path(kp, sizeof(kp), path, "provider");
    if (ld_name(l, &s[DE_PROVIDER], kp, &d->provider_name) < 0)
        return -1;
    brigade_config *cfg = l->cfg;
    for (size_t j = 0; j < cfg->n_providers; j++)
        if (strcmp(cfg->providers[j].name, d->provider_name) == 0)
            d->provider = &cfg->providers[j];
    if (!d->provider) {
        char known[512];
        ld_known_names(known, sizeof(known), (const char *const *)&cfg->providers[0].name,
                       sizeof(provider_cfg), cfg->n_providers);
        return ld_fail(l, s[DE_PROVIDER].line, kp, "no provider named \"%s\" (known: %s)",
                       d->provider_name, known);
    }
    if (s[DE_UPSTREAM].present) {
        ld_path(kp, sizeof(kp), path, "upstream_model");
        if (ld_nonempty(l, &s[DE_UPSTREAM], kp, &d->upstream_model, NULL) < 0)
            return -1;
    } else {
        d->upstream_model = config_xstrdup(model_name);
    }
    d->weight = 1;
    if (s[DE_WEIGHT].present) {
        ld_path(kp, sizeof(kp), path, "weight");
        if (ld_u32(l, &s[DE_WEIGHT], kp, 1, 1000000, &d->weight) < 0)
            return -1;
    }
    d->max_concurrent = d->provider->max_concurrent;
    if (s[DE_MAX_CONC].present) {
        ld_path(kp, sizeof(kp), path, "max_concurrent");
        if (ld_u32(l, &s[DE_MAX_CONC], kp, 0, 1000000, &d->max_concurrent) < 0)
            return -1;
    }
    size_t nl = strlen(d->provider_name) + 1 + strlen(d->upstream_model) + 1;
    d->name = config_xcalloc(1, nl);
    snprintf(d->name, nl, "%s/%s", d->provider_name, d->upstream_model);
    return 0;
}

static const char *const ld_fallback_classes[] = {
    "rate_limit", "server_error", "timeout", "connect", "malformed", "context_window", NULL
};

/* models[].fallback_on: a list of failure classes → FALLBACK_* bits. */
static int ld_fallback_on(ld *l, const slot *s, const char *path, uint32_t *out)
{
    size_t n = 0;
    if (ld_sequence(l, s->val, s->line, path, &n, 1) < 0)
        return -1;
    *out = 0;
    void *it = NULL;
    struct fy_node *item;
    size_t i = 0;
    char kp[256];
    while ((item = fy_node_sequence_iterate(s->val, &it)) != NULL) {
        snprintf(kp, sizeof(kp), "%s[%zu]", path, i++);
        slot is = {.key = path, .val = item, .line = config_node_line(item, s->line), .present = 1};
        char *v = NULL;
        if (ld_nonempty(l, &is, kp, &v, NULL) < 0) {
            free(v);
            return -1;
        }
        size_t c;
        for (c = 0; ld_fallback_classes[c]; c++)
            if (strcmp(v, ld_fallback_classes[c]) == 0)
                break;
        if (!ld_fallback_classes[c]) {
            ld_fail(l, is.line, kp, "unknown failure class \"%s\" (known: rate_limit, server_error, "
                    "timeout, connect, malformed, context_window)", v);
            free(v);
            return -1;
        }
        free(v);
        *out |= 1u << c;
    }
    return 0;
}

enum { MO_NAME, MO_PROVIDER, MO_UPSTREAM, MO_IN_PRICE, MO_OUT_PRICE, MO_MAX_OUT, MO_CONTEXT,
       MO_DEPLOYMENTS, MO_BALANCE, MO_FALLBACKS, MO_FALLBACK_ON, MO__N };

static int ld_model(ld *l, struct fy_node *n, int line, const char *path, model_cfg *m, entry_lines *el)
{
    slot s[MO__N] = {
        [MO_NAME] = {.key = "name"},                       [MO_PROVIDER] = {.key = "provider"},
        [MO_UPSTREAM] = {.key = "upstream_model"},         [MO_IN_PRICE] = {.key = "input_usd_per_mtok"},
        [MO_OUT_PRICE] = {.key = "output_usd_per_mtok"},   [MO_MAX_OUT] = {.key = "max_output_tokens"},
        [MO_CONTEXT] = {.key = "context_window"},          [MO_DEPLOYMENTS] = {.key = "deployments"},
        [MO_BALANCE] = {.key = "balance"},                 [MO_FALLBACKS] = {.key = "fallbacks"},
        [MO_FALLBACK_ON] = {.key = "fallback_on"},
    };
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, provider, …), got nothing");
    if (ld_collect(l, n, line, path, s, MO__N) < 0)
        return -1;
    char kp[160];
    m->max_output_tokens = 4096;
    m->context_window = 128000;
    m->fallback_on = FALLBACK_ALL;
    if (!s[MO_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    if (ld_name(l, &s[MO_NAME], kp, &m->name) < 0)
        return -1;
    el->name = s[MO_NAME].line;
    if (s[MO_DEPLOYMENTS].present) {
        /* Two ways of saying where the model lives would disagree sooner or later. */
        for (int k = MO_PROVIDER; k <= MO_UPSTREAM; k++)
            if (s[k].present) {
                ld_path(kp, sizeof(kp), path, s[k].key);
                return ld_fail(l, s[k].line, kp, "give either %s or deployments, not both", s[k].key);
            }
        ld_path(kp, sizeof(kp), path, "deployments");
        size_t nd = 0;
        if (ld_sequence(l, s[MO_DEPLOYMENTS].val, s[MO_DEPLOYMENTS].line, kp, &nd, 0) < 0)
            return -1;
        m->deployments = config_xcalloc(nd, sizeof(deployment_cfg));
        void *it = NULL;
        struct fy_node *item;
        while (m->n_deployments < nd && (item = fy_node_sequence_iterate(s[MO_DEPLOYMENTS].val, &it))) {
            char dp[180];
            snprintf(dp, sizeof(dp), "%s[%zu]", kp, m->n_deployments);
            deployment_cfg *d = &m->deployments[m->n_deployments++];
            if (ld_deployment(l, item, config_node_line(item, s[MO_DEPLOYMENTS].line), dp, m->name, d) < 0)
                return -1;
            for (size_t j = 0; j + 1 < m->n_deployments; j++)
                if (strcmp(m->deployments[j].name, d->name) == 0)
                    return ld_fail(l, config_node_line(item, s[MO_DEPLOYMENTS].line), dp,
                                   "deployment \"%s\" is listed twice", d->name);
        }
        /* Older code sees the first deployment as "the" provider. */
        m->provider_name = config_xstrdup(m->deployments[0].provider_name);
        m->upstream_model = config_xstrdup(m->deployments[0].upstream_model);
        el->ref = s[MO_DEPLOYMENTS].line;
    } else {
        if (!s[MO_PROVIDER].present)
            return ld_fail(l, line, path, "missing required key \"provider\" (or \"deployments\")");
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
    }
    if (s[MO_BALANCE].present) {
        ld_path(kp, sizeof(kp), path, "balance");
        char *b = NULL;
        if (ld_nonempty(l, &s[MO_BALANCE], kp, &b, NULL) < 0) {
            free(b);
            return -1;
        }
        int ok = 1;
        if (strcmp(b, "weighted") == 0) m->balance = BALANCE_WEIGHTED;
        else if (strcmp(b, "least_in_flight") == 0) m->balance = BALANCE_LEAST_IN_FLIGHT;
        else ok = 0;
        if (!ok) {
            ld_fail(l, s[MO_BALANCE].line, kp, "unknown balance \"%s\" (known: weighted, least_in_flight)", b);
            free(b);
            return -1;
        }
        free(b);
    }
    if (s[MO_FALLBACKS].present) {
        ld_path(kp, sizeof(kp), path, "fallbacks");
        size_t nf = 0;
        if (ld_sequence(l, s[MO_FALLBACKS].val, s[MO_FALLBACKS].line, kp, &nf, 1) < 0)
            return -1;
        m->fallbacks = config_xcalloc(nf ? nf : 1, sizeof(char *));
        void *it = NULL;
        struct fy_node *item;
        while (m->n_fallbacks < nf && (item = fy_node_sequence_iterate(s[MO_FALLBACKS].val, &it))) {
            char fp[180];
            snprintf(fp, sizeof(fp), "%s[%zu]", kp, m->n_fallbacks);
            slot is = {.key = "fallbacks", .val = item,
                       .line = config_node_line(item, s[MO_FALLBACKS].line), .present = 1};
            char *v = NULL;
            if (ld_name(l, &is, fp, &v) < 0) {
                free(v);
                return -1;
            }
            m->fallbacks[m->n_fallbacks++] = v;
            if (strcmp(v, m->name) == 0)
                return ld_fail(l, is.line, fp, "a model cannot be its own fallback");
            for (size_t j = 0; j + 1 < m->n_fallbacks; j++)
                if (strcmp(m->fallbacks[j], v) == 0)
                    return ld_fail(l, is.line, fp, "\"%s\" is listed twice", v);
        }
    }
    if (s[MO_FALLBACK_ON].present) {
        ld_path(kp, sizeof(kp), path, "fallback_on");
        if (ld_fallback_on(l, &s[MO_FALLBACK_ON], kp, &m->fallback_on) < 0)
            return -1;
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

/* After the models list is final: resolve each model's fallbacks to
 * models (names checked here, since a fallback may be declared later in
 * the list). `ml` gives the entries' lines, NULL for the embedded models. */
static int ld_models_resolve(ld *l, const entry_lines *ml)
{
    brigade_config *cfg = l->cfg;
    for (size_t i = 0; i < cfg->n_models; i++) {
        model_cfg *m = &cfg->models[i];
        free(m->fallback_models);
        m->fallback_models = NULL;
        if (!m->n_fallbacks) continue;
        m->fallback_models = config_xcalloc(m->n_fallbacks, sizeof(*m->fallback_models));
        for (size_t f = 0; f < m->n_fallbacks; f++) {
            m->fallback_models[f] = config_find_model(cfg, m->fallbacks[f]);
            if (!m->fallback_models[f]) {
                char kp[64], known[512];
                snprintf(kp, sizeof(kp), "models[%zu].fallbacks[%zu]", i, f);
                ld_known_names(known, sizeof(known), (const char *const *)&cfg->models[0].name,
                               sizeof(model_cfg), cfg->n_models);
                return ld_fail(l, ml ? ml[i].item : 0, kp, "no model named \"%s\" (known: %s)",
                               m->fallbacks[f], known);
            }
        }
    }
    return 0;
}

enum { TI_NAME, TI_RPM, TI_TPM, TI_RUNS, TI_DAILY, TI_MONTHLY, TI_WEIGHT,
       TI_Q_MEM_BYTES, TI_Q_MEM_ENTRIES, TI_Q_SESSIONS, TI_Q_MESSAGES, TI__N };

/* The limit keys a tier and governance.tenant_limits share; `s` holds the
 * collected slots, `path` the mapping's key path. */
static int ld_limit_fields(ld *l, slot *s, const char *path, tier_cfg *t)
{
    char kp[160];
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

#define TI_SLOTS                                                                          \
    [TI_NAME] = {.key = "name"},   [TI_RPM] = {.key = "rpm"}, [TI_TPM] = {.key = "tpm"},  \
    [TI_RUNS] = {.key = "max_concurrent_runs"}, [TI_DAILY] = {.key = "daily_budget_usd"},  \
    [TI_MONTHLY] = {.key = "monthly_budget_usd"}, [TI_WEIGHT] = {.key = "weight"},        \
    [TI_Q_MEM_BYTES] = {.key = "memory_bytes"}, [TI_Q_MEM_ENTRIES] = {.key = "memory_entries"}, \
    [TI_Q_SESSIONS] = {.key = "sessions"}, [TI_Q_MESSAGES] = {.key = "messages_per_session"}

static int ld_tier(ld *l, struct fy_node *n, int line, const char *path, tier_cfg *t, entry_lines *el)
{
    slot s[TI__N] = {TI_SLOTS};
    if (config_node_is_null(n))
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
    t->weight = 1;
    if (s[TI_WEIGHT].present) {
        ld_path(kp, sizeof(kp), path, "weight");
        if (ld_u32(l, &s[TI_WEIGHT], kp, 1, 1000, &t->weight) < 0)
            return -1;
    }
    /* Storage quotas: left out or null = the default, 0 = unlimited. */
    config_tier_quota_defaults(t);
    struct { int idx; int64_t max; int64_t *field; } quotas[] = {
        {TI_Q_MEM_BYTES, 1LL << 40, &t->quota_memory_bytes},
        {TI_Q_MEM_ENTRIES, 1000000000LL, &t->quota_memory_entries},
        {TI_Q_SESSIONS, 1000000000LL, &t->quota_sessions},
        {TI_Q_MESSAGES, 1000000000LL, &t->quota_messages_per_session},
    };
    for (size_t i = 0; i < sizeof quotas / sizeof quotas[0]; i++) {
        slot *q = &s[quotas[i].idx];
        if (!q->present || config_node_is_null(q->val)) continue;
        ld_path(kp, sizeof(kp), path, q->key);
        if (ld_int(l, q, kp, 0, quotas[i].max, quotas[i].field) < 0)
            return -1;
    }
    return ld_limit_fields(l, s, path, t);
}

enum { GV_ENABLED, GV_QUEUE_USER, GV_QUEUE_GLOBAL, GV_TENANT, GV__N };

/* `governance:` — on/off, the fair queue's bounds, and the limits every
 * tenant has unless its admin changed them (PATCH /v1/tenants/{id}). */
static int ld_governance(ld *l, struct fy_node *n, int line)
{
    governance_cfg *g = &l->cfg->governance;
    slot s[GV__N] = {
        [GV_ENABLED] = {.key = "enabled"},         [GV_QUEUE_USER] = {.key = "queue_per_user"},
        [GV_QUEUE_GLOBAL] = {.key = "queue_global"}, [GV_TENANT] = {.key = "tenant_limits"},
    };
    if (config_node_is_null(n))
        return 0;
    if (ld_collect(l, n, line, "governance", s, GV__N) < 0)
        return -1;
    if (s[GV_ENABLED].present && ld_bool(l, &s[GV_ENABLED], "governance.enabled", &g->enabled) < 0)
        return -1;
    if (s[GV_QUEUE_USER].present &&
        ld_u32(l, &s[GV_QUEUE_USER], "governance.queue_per_user", 0, 100000, &g->queue_per_user) < 0)
        return -1;
    if (s[GV_QUEUE_GLOBAL].present &&
        ld_u32(l, &s[GV_QUEUE_GLOBAL], "governance.queue_global", 0, 10000000, &g->queue_global) < 0)
        return -1;
    if (s[GV_TENANT].present) {
        slot ts[TI__N] = {TI_SLOTS};
        const char *tp = "governance.tenant_limits";
        if (config_node_is_null(s[GV_TENANT].val))
            return 0;
        if (ld_collect(l, s[GV_TENANT].val, s[GV_TENANT].line, tp, ts, TI__N) < 0)
            return -1;
        if (ts[TI_NAME].present)
            return ld_fail(l, ts[TI_NAME].line, "governance.tenant_limits.name",
                           "tenant limits have no name; remove the key");
        if (ts[TI_WEIGHT].present)
            return ld_fail(l, ts[TI_WEIGHT].line, "governance.tenant_limits.weight",
                           "weights are per tier; remove the key");
        for (int q = TI_Q_MEM_BYTES; q <= TI_Q_MESSAGES; q++)
            if (ts[q].present) {
                char kq[96];
                ld_path(kq, sizeof(kq), tp, ts[q].key);
                return ld_fail(l, ts[q].line, kq, "storage quotas are per tier; remove the key");
            }
        if (ld_limit_fields(l, ts, tp, &g->tenant_limits) < 0)
            return -1;
    }
    return 0;
}

/* `observability:` — logs, traces, OTLP export, metrics (docs/observability.md). */
enum { OB_LOGS, OB_TRACES, OB_OTLP, OB_METRICS, OB_AUDIT, OB__N };
enum { OBL_FORMAT, OBL_CONTENT, OBL__N };
enum { OBT_ENABLED, OBT_RETENTION, OBT_MAX_SPANS, OBT_SAMPLE, OBT__N };
enum { OBO_ENDPOINT, OBO_QUEUE, OBO_BATCH, OBO_INTERVAL, OBO_TIMEOUT, OBO_SERVICE, OBO__N };
enum { OBM_MAX_SERIES, OBM__N };
enum { OBA_EVERY, OBA_INTERVAL, OBA__N };

static int ld_observability(ld *l, struct fy_node *n, int line)
{
    obs_cfg *o = &l->cfg->observability;
    slot s[OB__N] = {[OB_LOGS] = {.key = "logs"}, [OB_TRACES] = {.key = "traces"},
                     [OB_OTLP] = {.key = "otlp"}, [OB_METRICS] = {.key = "metrics"},
                     [OB_AUDIT] = {.key = "audit"}};
    if (ld_collect(l, n, line, "observability", s, OB__N) < 0)
        return -1;
    if (s[OB_LOGS].present) {
        slot g[OBL__N] = {[OBL_FORMAT] = {.key = "format"}, [OBL_CONTENT] = {.key = "content"}};
        if (ld_collect(l, s[OB_LOGS].val, s[OB_LOGS].line, "observability.logs", g, OBL__N) < 0)
            return -1;
        if (g[OBL_FORMAT].present) {
            char *v = NULL;
            if (ld_nonempty(l, &g[OBL_FORMAT], "observability.logs.format", &v, NULL) < 0) {
                free(v);
                return -1;
            }
            int fmt = strcmp(v, "json") == 0 ? 0 : strcmp(v, "text") == 0 ? 1 : -1;
            free(v);
            if (fmt < 0)
                return ld_fail(l, g[OBL_FORMAT].line, "observability.logs.format",
                               "expected json or text");
            o->logs_format = fmt;
        }
        if (g[OBL_CONTENT].present &&
            ld_bool(l, &g[OBL_CONTENT], "observability.logs.content", &o->logs_content) < 0)
            return -1;
    }
    if (s[OB_TRACES].present) {
        slot g[OBT__N] = {[OBT_ENABLED] = {.key = "enabled"}, [OBT_RETENTION] = {.key = "retention_hours"},
                          [OBT_MAX_SPANS] = {.key = "max_spans"}, [OBT_SAMPLE] = {.key = "sample_ratio"}};
        if (ld_collect(l, s[OB_TRACES].val, s[OB_TRACES].line, "observability.traces", g, OBT__N) < 0)
            return -1;
        if (g[OBT_ENABLED].present &&
            ld_bool(l, &g[OBT_ENABLED], "observability.traces.enabled", &o->traces_enabled) < 0)
            return -1;
        if (g[OBT_RETENTION].present &&
            ld_u32(l, &g[OBT_RETENTION], "observability.traces.retention_hours", 1, 24 * 3650,
                   &o->traces_retention_hours) < 0)
            return -1;
        if (g[OBT_MAX_SPANS].present) {
            int64_t v;
            if (ld_int(l, &g[OBT_MAX_SPANS], "observability.traces.max_spans", 1000, 1000000000, &v) < 0)
                return -1;
            o->traces_max_spans = (uint64_t)v;
        }
        if (g[OBT_SAMPLE].present &&
            ld_double(l, &g[OBT_SAMPLE], "observability.traces.sample_ratio", 0.0, 1.0,
                      &o->traces_sample_ratio) < 0)
            return -1;
    }
    if (s[OB_OTLP].present) {
        slot g[OBO__N] = {[OBO_ENDPOINT] = {.key = "endpoint"}, [OBO_QUEUE] = {.key = "max_queue"},
                          [OBO_BATCH] = {.key = "batch"},       [OBO_INTERVAL] = {.key = "interval_ms"},
                          [OBO_TIMEOUT] = {.key = "timeout_ms"}, [OBO_SERVICE] = {.key = "service_name"}};
        if (ld_collect(l, s[OB_OTLP].val, s[OB_OTLP].line, "observability.otlp", g, OBO__N) < 0)
            return -1;
        if (g[OBO_ENDPOINT].present) {
            size_t host_at;
            free(o->otlp_endpoint);
            o->otlp_endpoint = NULL;
            if (ld_http_url(l, &g[OBO_ENDPOINT], "observability.otlp.endpoint", &o->otlp_endpoint,
                            &host_at) < 0)
                return -1;
        }
        if (g[OBO_QUEUE].present &&
            ld_u32(l, &g[OBO_QUEUE], "observability.otlp.max_queue", 1, 10000000, &o->otlp_max_queue) < 0)
            return -1;
        if (g[OBO_BATCH].present &&
            ld_u32(l, &g[OBO_BATCH], "observability.otlp.batch", 1, 4096, &o->otlp_batch) < 0)
            return -1;
        if (g[OBO_INTERVAL].present &&
            ld_u32(l, &g[OBO_INTERVAL], "observability.otlp.interval_ms", 10, 600000, &o->otlp_interval_ms) < 0)
            return -1;
        if (g[OBO_TIMEOUT].present &&
            ld_u32(l, &g[OBO_TIMEOUT], "observability.otlp.timeout_ms", 10, 600000, &o->otlp_timeout_ms) < 0)
            return -1;
        if (g[OBO_SERVICE].present) {
            free(o->service_name);
            o->service_name = NULL;
            if (ld_nonempty(l, &g[OBO_SERVICE], "observability.otlp.service_name", &o->service_name, NULL) < 0)
                return -1;
        }
    }
    if (s[OB_METRICS].present) {
        slot g[OBM__N] = {[OBM_MAX_SERIES] = {.key = "max_series"}};
        if (ld_collect(l, s[OB_METRICS].val, s[OB_METRICS].line, "observability.metrics", g, OBM__N) < 0)
            return -1;
        if (g[OBM_MAX_SERIES].present &&
            ld_u32(l, &g[OBM_MAX_SERIES], "observability.metrics.max_series", 10, 1000000,
                   &o->metrics_max_series) < 0)
            return -1;
    }
    if (s[OB_AUDIT].present) {
        slot g[OBA__N] = {[OBA_EVERY] = {.key = "checkpoint_every"},
                          [OBA_INTERVAL] = {.key = "checkpoint_interval_s"}};
        if (ld_collect(l, s[OB_AUDIT].val, s[OB_AUDIT].line, "observability.audit", g, OBA__N) < 0)
            return -1;
        if (g[OBA_EVERY].present &&
            ld_u32(l, &g[OBA_EVERY], "observability.audit.checkpoint_every", 1, 1000000,
                   &o->audit_checkpoint_every) < 0)
            return -1;
        if (g[OBA_INTERVAL].present &&
            ld_u32(l, &g[OBA_INTERVAL], "observability.audit.checkpoint_interval_s", 1, 86400,
                   &o->audit_checkpoint_interval_s) < 0)
            return -1;
    }
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
/* tools: and agents:                                                  */

/* Tool and agent names travel to model providers (function names) and into
 * URLs and logs, so they are kept to a conservative alphabet. */
static int ld_ident(ld *l, const slot *s, const char *path, char **out, const char *extra, const char *what)
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

/* RFC 9110 token characters: what a header name may be made of. */
static int ld_is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A header whose value is a credential: written literally, it earns the
 * same warning as a literal api_key. */
static int ld_header_is_secret(const char *name)
{
    if (!strcasecmp(name, "authorization") || !strcasecmp(name, "proxy-authorization"))
        return 1;
    static const char *const words[] = {"key", "token", "secret", "password"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(name, words[i]))
            return 1;
    return 0;
}

static int ld_tool_headers(ld *l, struct fy_node *map, int line, const char *path, tool_cfg *t)
{
    char wbuf[64], kp[400];
    if (config_node_is_null(map))
        return 0;
    if (fy_node_get_type(map) != FYNT_MAPPING)
        return ld_fail(l, config_node_line(map, line), path,
                       "expected a mapping (Header-Name: value), got %s", node_what(map, wbuf, sizeof(wbuf)));
    int cnt = fy_node_mapping_item_count(map);
    if (cnt <= 0)
        return 0;
    t->header_names = config_xcalloc((size_t)cnt, sizeof(char *));
    t->header_values = config_xcalloc((size_t)cnt, sizeof(char *));
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(map, &it)) != NULL && t->n_headers < (size_t)cnt) {
        struct fy_node *k = fy_node_pair_key(p);
        int kline = config_node_line(k, line);
        size_t klen = 0;
        const char *ks = (k && fy_node_get_type(k) == FYNT_SCALAR) ? fy_node_get_scalar(k, &klen) : NULL;
        if (!ks || klen == 0)
            return ld_fail(l, kline, path, "header names must be non-empty strings");
        int ok = klen <= 128;
        for (size_t i = 0; ok && i < klen; i++)
            ok = ld_is_tchar(ks[i]);
        if (!ok)
            return ld_fail(l, kline, path, "\"%.*s\" is not a valid header name", (int)(klen > 64 ? 64 : klen), ks);
        char *name = config_xstrndup(ks, klen);
        snprintf(kp, sizeof(kp), "%s.%s", path, name);
        /* Framing and routing headers belong to brigade's HTTP client: a
         * wrong Content-Length or Host from the file would corrupt requests. */
        static const char *const reserved[] = {"host", "content-length", "transfer-encoding", "connection"};
        for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
            if (!strcasecmp(name, reserved[i])) {
                free(name);
                return ld_fail(l, kline, kp, "this header is set by brigade and cannot be configured");
            }
        }
        for (size_t i = 0; i < t->n_headers; i++) {
            if (!strcasecmp(name, t->header_names[i])) {
                ld_fail(l, kline, kp, "header given twice (also \"%s\"; names are case-insensitive)",
                        t->header_names[i]);
                free(name);
                return -1;
            }
        }
        size_t i = t->n_headers++;
        t->header_names[i] = name;
        slot vs = {.key = name, .val = fy_node_pair_value(p), .line = kline, .present = 1};
        int literal = 0;
        if (ld_string(l, &vs, kp, &t->header_values[i], &literal) < 0)
            return -1;
        for (const char *c = t->header_values[i]; *c; c++)
            if (((unsigned char)*c < ' ' && *c != '\t') || *c == 0x7f)
                return ld_fail(l, kline, kp, "header values must not contain control characters or line breaks");
        if (literal && *t->header_values[i] && ld_header_is_secret(name))
            ld_warn(l, kline, kp, "the credential is written in the file; prefer ${VAR}");
    }
    return 0;
}

/* `parameters`: a JSON Schema of the tool's arguments, written as YAML. */
static int ld_tool_parameters(ld *l, const slot *s, const char *path, tool_cfg *t)
{
    char wbuf[64], kp[400];
    struct fy_node *n = s->val;
    if (config_node_is_null(n) || fy_node_get_type(n) != FYNT_MAPPING)
        return ld_fail(l, s->line, path, "expected a mapping holding a JSON Schema "
                       "(type: object, properties: …), got %s", node_what(n, wbuf, sizeof(wbuf)));
    /* Models send the arguments of a call as one JSON object. */
    struct fy_node *type = fy_node_mapping_lookup_by_string(n, "type", FY_NT);
    if (!type)
        return ld_fail(l, s->line, path, "needs \"type: object\" (a tool's arguments are a JSON object)");
    size_t tl = 0;
    const char *tv = fy_node_get_type(type) == FYNT_SCALAR ? fy_node_get_scalar(type, &tl) : NULL;
    if (!tv || tl != 6 || memcmp(tv, "object", 6) != 0) {
        ld_path(kp, sizeof(kp), path, "type");
        return ld_fail(l, config_node_line(type, s->line), kp,
                       "must be \"object\" (a tool's arguments are a JSON object), got %s",
                       node_what(type, wbuf, sizeof(wbuf)));
    }
    struct fy_node *props = fy_node_mapping_lookup_by_string(n, "properties", FY_NT);
    if (props && !config_node_is_null(props) && fy_node_get_type(props) != FYNT_MAPPING) {
        ld_path(kp, sizeof(kp), path, "properties");
        return ld_fail(l, config_node_line(props, s->line), kp, "expected a mapping (argument name: schema), got %s",
                       node_what(props, wbuf, sizeof(wbuf)));
    }
    buf b;
    buf_init(&b);
    int line = 0;
    char sub[128], why[256];
    if (config_yaml_to_json(n, &b, &line, sub, sizeof(sub), why, sizeof(why)) < 0) {
        buf_free(&b);
        snprintf(kp, sizeof(kp), "%s%s", path, sub);
        return ld_fail(l, line ? line : s->line, kp, "%s", why);
    }
    buf_append(&b, "", 0);
    free(t->parameters_json);
    t->parameters_json = buf_detach(&b);
    return 0;
}

/* `{name}` placeholders of a tool URL: only after the host (an argument
 * choosing the host would let the model send the request anywhere), each
 * a property of the parameters schema so the model knows to supply it. */
static int ld_tool_url_placeholders(ld *l, const slot *s, const char *path, const char *u, size_t host_at,
                                    struct fy_node *params)
{
    size_t host_end = host_at + strcspn(u + host_at, "/?#");
    for (size_t i = 0; u[i]; i++) {
        if (u[i] != '{' && u[i] != '}')
            continue;
        if (i < host_end)
            return ld_fail(l, s->line, path, "placeholders are only allowed after the host, in \"%s\"", u);
        if (u[i] == '}')
            return ld_fail(l, s->line, path, "\"}\" without \"{\" in \"%s\"", u);
        size_t j = i + 1;
        while ((u[j] >= 'a' && u[j] <= 'z') || (u[j] >= 'A' && u[j] <= 'Z') ||
               (u[j] >= '0' && u[j] <= '9') || u[j] == '_' || u[j] == '-')
            j++;
        if (j == i + 1 || u[j] != '}')
            return ld_fail(l, s->line, path, "bad placeholder at \"%.20s\" (want {name}, name of "
                           "a-z A-Z 0-9 _ -)", u + i);
        struct fy_node *props = params ? fy_node_mapping_lookup_by_string(params, "properties", FY_NT) : NULL;
        struct fy_node *prop = (props && fy_node_get_type(props) == FYNT_MAPPING)
                                   ? fy_node_mapping_lookup_by_string(props, u + i + 1, j - i - 1) : NULL;
        if (!prop)
            return ld_fail(l, s->line, path, "placeholder {%.*s} is not a property of the tool's parameters",
                           (int)(j - i - 1), u + i + 1);
        i = j;
    }
    return 0;
}

enum { TO_NAME, TO_DESC, TO_URL, TO_METHOD, TO_HEADERS, TO_PARAMS, TO_TIMEOUT, TO_MAX_RESP, TO__N };

static int ld_tool(ld *l, struct fy_node *n, int line, const char *path, tool_cfg *t, entry_lines *el)
{
    slot s[TO__N] = {
        [TO_NAME] = {.key = "name"},          [TO_DESC] = {.key = "description"},
        [TO_URL] = {.key = "url"},            [TO_METHOD] = {.key = "method"},
        [TO_HEADERS] = {.key = "headers"},    [TO_PARAMS] = {.key = "parameters"},
        [TO_TIMEOUT] = {.key = "timeout_ms"}, [TO_MAX_RESP] = {.key = "max_response_bytes"},
    };
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, url, …), got nothing");
    if (ld_collect(l, n, line, path, s, TO__N) < 0)
        return -1;
    char kp[160];
    t->timeout_ms = 10000;
    t->max_response_bytes = 262144;
    if (!s[TO_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    if (ld_ident(l, &s[TO_NAME], kp, &t->name, "_-", "tool") < 0)
        return -1;
    el->name = s[TO_NAME].line;
    if (!strcmp(t->name, "memory") || !strcmp(t->name, "clock"))
        return ld_fail(l, s[TO_NAME].line, kp, "\"%s\" is a built-in tool; choose another name", t->name);

    if (s[TO_DESC].present) {
        ld_path(kp, sizeof(kp), path, "description");
        if (ld_string(l, &s[TO_DESC], kp, &t->description, NULL) < 0)
            return -1;
    } else {
        t->description = config_xstrdup("");
    }

    if (!s[TO_URL].present)
        return ld_fail(l, line, path, "missing required key \"url\"");
    ld_path(kp, sizeof(kp), path, "url");
    size_t host_at;
    if (ld_http_url(l, &s[TO_URL], kp, &t->url, &host_at) < 0)
        return -1;
    if (ld_tool_url_placeholders(l, &s[TO_URL], kp, t->url, host_at,
                                 s[TO_PARAMS].present ? s[TO_PARAMS].val : NULL) < 0)
        return -1;

    if (s[TO_METHOD].present) {
        ld_path(kp, sizeof(kp), path, "method");
        if (ld_nonempty(l, &s[TO_METHOD], kp, &t->method, NULL) < 0)
            return -1;
        static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
        size_t i;
        for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
            if (!strcasecmp(t->method, methods[i]))
                break;
        if (i == sizeof(methods) / sizeof(methods[0]))
            return ld_fail(l, s[TO_METHOD].line, kp, "unknown method \"%s\" (known: GET, POST, PUT, PATCH, DELETE)",
                           t->method);
        free(t->method);
        t->method = config_xstrdup(methods[i]);
    } else {
        t->method = config_xstrdup("POST");
    }

    if (s[TO_HEADERS].present) {
        ld_path(kp, sizeof(kp), path, "headers");
        if (ld_tool_headers(l, s[TO_HEADERS].val, s[TO_HEADERS].line, kp, t) < 0)
            return -1;
    }
    if (s[TO_PARAMS].present) {
        ld_path(kp, sizeof(kp), path, "parameters");
        if (ld_tool_parameters(l, &s[TO_PARAMS], kp, t) < 0)
            return -1;
    } else {
        t->parameters_json = config_xstrdup("{\"type\":\"object\"}");
    }
    if (s[TO_TIMEOUT].present) {
        ld_path(kp, sizeof(kp), path, "timeout_ms");
        if (ld_u32(l, &s[TO_TIMEOUT], kp, 1, 600000, &t->timeout_ms) < 0)
            return -1;
    }
    if (s[TO_MAX_RESP].present) {
        ld_path(kp, sizeof(kp), path, "max_response_bytes");
        if (ld_u32(l, &s[TO_MAX_RESP], kp, 1, 16 << 20, &t->max_response_bytes) < 0)
            return -1;
    }
    return 0;
}

/* A list of names (agents[].tools, agents[].tiers): each a plain string,
 * none repeated. `check` says whether a name exists, filling `known` for
 * the message when it does not. */
typedef int (*ld_name_check_fn)(const brigade_config *cfg, const char *name, char *known, size_t knownlen);

static int ld_name_list(ld *l, const slot *s, const char *path, int allow_empty, const char *what,
                        ld_name_check_fn check, char ***out, size_t *out_n)
{
    size_t n = 0;
    if (ld_sequence(l, s->val, s->line, path, &n, allow_empty) < 0)
        return -1;
    *out = config_xcalloc(n, sizeof(char *));
    void *it = NULL;
    struct fy_node *item;
    char kp[200], known[512];
    while (*out_n < n && (item = fy_node_sequence_iterate(s->val, &it)) != NULL) {
        size_t i = *out_n;
        snprintf(kp, sizeof(kp), "%s[%zu]", path, i);
        slot is = {.key = path, .val = item, .line = config_node_line(item, s->line), .present = 1};
        char *name = NULL;
        if (ld_name(l, &is, kp, &name) < 0) {
            free(name);
            return -1;
        }
        (*out)[(*out_n)++] = name;
        for (size_t j = 0; j < i; j++)
            if (!strcmp((*out)[j], name))
                return ld_fail(l, is.line, kp, "\"%s\" is listed twice", name);
        if (!check(l->cfg, name, known, sizeof(known)))
            return ld_fail(l, is.line, kp, "no %s named \"%s\" (known: %s)", what, name, known);
    }
    return 0;
}

static int ld_check_tool_name(const brigade_config *cfg, const char *name, char *known, size_t knownlen)
{
    if (!strcmp(name, "memory") || !strcmp(name, "clock") || config_find_tool(cfg, name))
        return 1;
    size_t off = (size_t)snprintf(known, knownlen, "memory, clock");
    for (size_t i = 0; i < cfg->n_tools && off < knownlen; i++)
        off += (size_t)snprintf(known + off, knownlen - off, ", %s", cfg->tools[i].name);
    return 0;
}

static int ld_check_tier_name(const brigade_config *cfg, const char *name, char *known, size_t knownlen)
{
    if (config_find_tier(cfg, name))
        return 1;
    ld_known_names(known, knownlen, (const char *const *)&cfg->tiers[0].name, sizeof(tier_cfg), cfg->n_tiers);
    return 0;
}

/* The smallest context an agent can work in: the system prompt, a tool
 * list and one exchange have to fit. */
#define CONFIG_AGENT_MIN_CONTEXT 256

enum { AG_NAME, AG_DESC, AG_MODEL, AG_PROMPT, AG_TOOLS, AG_TIERS, AG_STEPS, AG_TOOL_CALLS, AG_WALL,
       AG_MAX_OUT, AG_CONTEXT, AG_TOOL_OUT, AG_REPEAT, AG_RUN_COST, AG_SESSION_COST, AG_DEGRADE,
       AG__N };

enum { DG_MODEL, DG_THRESHOLD, DG__N };

/* agents[].degrade: {model, threshold} — the cheaper model to answer with
 * when the user's budget is nearly spent. */
static int ld_agent_degrade(ld *l, const slot *d, const char *path, agent_cfg *a)
{
    char kp[256], known[512];
    slot s[DG__N] = {[DG_MODEL] = {.key = "model"}, [DG_THRESHOLD] = {.key = "threshold"}};
    if (config_node_is_null(d->val))
        return 0;
    if (ld_collect(l, d->val, d->line, path, s, DG__N) < 0)
        return -1;
    if (!s[DG_MODEL].present)
        return ld_fail(l, d->line, path, "missing required key \"model\"");
    ld_path(kp, sizeof(kp), path, "model");
    if (ld_name(l, &s[DG_MODEL], kp, &a->degrade_model_name) < 0)
        return -1;
    a->degrade_model = config_find_model(l->cfg, a->degrade_model_name);
    if (!a->degrade_model) {
        ld_known_names(known, sizeof(known), (const char *const *)&l->cfg->models[0].name,
                       sizeof(model_cfg), l->cfg->n_models);
        return ld_fail(l, s[DG_MODEL].line, kp, "no model named \"%s\" (known: %s)",
                       a->degrade_model_name, known);
    }
    if (s[DG_THRESHOLD].present) {
        ld_path(kp, sizeof(kp), path, "threshold");
        if (ld_double(l, &s[DG_THRESHOLD], kp, 0.01, 1.0, &a->degrade_threshold) < 0)
            return -1;
    }
    return 0;
}

/* Agents are read after models, tiers and tools, so every reference is
 * resolved here, with the line of the entry that made it. */
static int ld_agent(ld *l, struct fy_node *n, int line, const char *path, agent_cfg *a, entry_lines *el)
{
    slot s[AG__N] = {
        [AG_NAME] = {.key = "name"},                 [AG_DESC] = {.key = "description"},
        [AG_MODEL] = {.key = "model"},               [AG_PROMPT] = {.key = "system_prompt"},
        [AG_TOOLS] = {.key = "tools"},               [AG_TIERS] = {.key = "tiers"},
        [AG_STEPS] = {.key = "max_steps"},           [AG_TOOL_CALLS] = {.key = "max_tool_calls"},
        [AG_WALL] = {.key = "max_wall_ms"},          [AG_MAX_OUT] = {.key = "max_output_tokens"},
        [AG_CONTEXT] = {.key = "context_tokens"},    [AG_TOOL_OUT] = {.key = "max_tool_output_bytes"},
        [AG_REPEAT] = {.key = "max_repeated_tool_calls"},
        [AG_RUN_COST] = {.key = "max_cost_usd_per_run"},
        [AG_SESSION_COST] = {.key = "max_cost_usd_per_session"},
        [AG_DEGRADE] = {.key = "degrade"},
    };
    config_agent_defaults(a);
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, model, …), got nothing");
    if (ld_collect(l, n, line, path, s, AG__N) < 0)
        return -1;
    char kp[160], known[512];
    if (!s[AG_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    if (ld_ident(l, &s[AG_NAME], kp, &a->name, "_.-", "agent") < 0)
        return -1;
    el->name = s[AG_NAME].line;
    if (s[AG_DESC].present) {
        ld_path(kp, sizeof(kp), path, "description");
        if (ld_string(l, &s[AG_DESC], kp, &a->description, NULL) < 0)
            return -1;
    }

    if (!s[AG_MODEL].present)
        return ld_fail(l, line, path, "missing required key \"model\"");
    ld_path(kp, sizeof(kp), path, "model");
    if (ld_name(l, &s[AG_MODEL], kp, &a->model_name) < 0)
        return -1;
    el->ref = s[AG_MODEL].line;
    const model_cfg *m = config_find_model(l->cfg, a->model_name);
    if (!m) {
        ld_known_names(known, sizeof(known), (const char *const *)&l->cfg->models[0].name,
                       sizeof(model_cfg), l->cfg->n_models);
        return ld_fail(l, s[AG_MODEL].line, kp, "no model named \"%s\" (known: %s)", a->model_name, known);
    }
    if (m->context_window < CONFIG_AGENT_MIN_CONTEXT)
        return ld_fail(l, s[AG_MODEL].line, kp, "model \"%s\" has a context_window of %u tokens; "
                       "an agent needs at least %d", m->name, m->context_window, CONFIG_AGENT_MIN_CONTEXT);
    config_agent_apply_model(a, m);

    if (s[AG_PROMPT].present) {
        ld_path(kp, sizeof(kp), path, "system_prompt");
        if (ld_string(l, &s[AG_PROMPT], kp, &a->system_prompt, NULL) < 0)
            return -1;
        size_t pl = strlen(a->system_prompt);
        if (pl > 65536)
            return ld_fail(l, s[AG_PROMPT].line, kp, "longer than 65536 bytes (%zu)", pl);
        if (pl == 0) {         /* an empty prompt is no prompt */
            free(a->system_prompt);
            a->system_prompt = NULL;
        }
    }
    /* `tools: []` states "no tools" explicitly; `tiers: []` would read as
     * "no tier may use it", which an agent nobody can use never means. */
    if (s[AG_TOOLS].present) {
        ld_path(kp, sizeof(kp), path, "tools");
        if (ld_name_list(l, &s[AG_TOOLS], kp, 1, "tool", ld_check_tool_name, &a->tools, &a->n_tools) < 0)
            return -1;
    }
    if (s[AG_TIERS].present) {
        ld_path(kp, sizeof(kp), path, "tiers");
        if (ld_name_list(l, &s[AG_TIERS], kp, 0, "tier", ld_check_tier_name, &a->tiers, &a->n_tiers) < 0)
            return -1;
    }
#define AG_U32(idx, field, min, max) \
    if (s[idx].present) { ld_path(kp, sizeof(kp), path, s[idx].key); \
        if (ld_u32(l, &s[idx], kp, (min), (max), &a->field) < 0) return -1; }
    AG_U32(AG_STEPS, max_steps, 1, 100)
    AG_U32(AG_TOOL_CALLS, max_tool_calls, 0, 1000)
    AG_U32(AG_WALL, max_wall_ms, 1000, 3600000)
    AG_U32(AG_MAX_OUT, max_output_tokens, 1, m->max_output_tokens)
    AG_U32(AG_CONTEXT, context_tokens, CONFIG_AGENT_MIN_CONTEXT, m->context_window)
    AG_U32(AG_TOOL_OUT, max_tool_output_bytes, 256, 1 << 20)
    AG_U32(AG_REPEAT, max_repeated_tool_calls, 1, 1000)
#undef AG_U32
#define AG_USD(idx, field) \
    if (s[idx].present) { ld_path(kp, sizeof(kp), path, s[idx].key); \
        if (ld_double(l, &s[idx], kp, 0, 1e6, &a->field) < 0) return -1; }
    AG_USD(AG_RUN_COST, max_cost_usd_per_run)
    AG_USD(AG_SESSION_COST, max_cost_usd_per_session)
#undef AG_USD
    if (s[AG_DEGRADE].present) {
        ld_path(kp, sizeof(kp), path, "degrade");
        if (ld_agent_degrade(l, &s[AG_DEGRADE], kp, a) < 0)
            return -1;
    }
    return 0;
}

static int ld_tool_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_tool(l, n, line, path, e, el);
}
static int ld_agent_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_agent(l, n, line, path, e, el);
}
static void ld_tool_free(void *e) { config_tool_free(e); }
static void ld_agent_free(void *e) { config_agent_free(e); }

/* ------------------------------------------------------------------ */
/* the document                                                        */

enum { RT_SERVER, RT_PROVIDERS, RT_MODELS, RT_TIERS, RT_DEFAULT_TIER, RT_TOOLS, RT_AGENTS,
       RT_GOVERNANCE, RT_OBSERVABILITY, RT__N };

static int ld_root(ld *l, struct fy_node *root)
{
    char wbuf[64];
    brigade_config *cfg = l->cfg;
    slot s[RT__N] = {
        [RT_SERVER] = {.key = "server"}, [RT_PROVIDERS] = {.key = "providers"},
        [RT_MODELS] = {.key = "models"}, [RT_TIERS] = {.key = "tiers"},
        [RT_DEFAULT_TIER] = {.key = "default_tier"}, [RT_TOOLS] = {.key = "tools"},
        [RT_AGENTS] = {.key = "agents"},             [RT_GOVERNANCE] = {.key = "governance"},
        [RT_OBSERVABILITY] = {.key = "observability"},
    };
    if (!config_node_is_null(root) && fy_node_get_type(root) != FYNT_MAPPING)
        return ld_fail(l, config_node_line(root, 1), NULL,
                       "the configuration must be a YAML mapping (key: value), got %s", node_what(root, wbuf, sizeof(wbuf)));
    if (ld_collect(l, root, 1, NULL, s, RT__N) < 0)
        return -1;
    if (s[RT_SERVER].present && ld_server(l, s[RT_SERVER].val, s[RT_SERVER].line) < 0)
        return -1;
    if (s[RT_GOVERNANCE].present &&
        ld_governance(l, s[RT_GOVERNANCE].val, s[RT_GOVERNANCE].line) < 0)
        return -1;
    if (s[RT_OBSERVABILITY].present &&
        ld_observability(l, s[RT_OBSERVABILITY].val, s[RT_OBSERVABILITY].line) < 0)
        return -1;

    int rc = -1;
    entry_lines *pl = NULL, *ml = NULL, *tl = NULL, *tol = NULL, *al = NULL;
    char known[512];

    /* A list given in the file replaces the embedded one wholesale:
     * merging by name would make "what is configured" depend on defaults
     * the reader of the file cannot see. */
    if (s[RT_PROVIDERS].present) {
        void *arr;
        size_t n;
        if (ld_list(l, &s[RT_PROVIDERS], "providers", sizeof(provider_cfg), ld_provider_fn,
                    ld_provider_free, 0, &arr, &n, &pl) < 0)
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
                    0, &arr, &n, &ml) < 0)
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
                    0, &arr, &n, &tl) < 0)
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
    if (s[RT_TOOLS].present) {
        void *arr;
        size_t n;
        if (ld_list(l, &s[RT_TOOLS], "tools", sizeof(tool_cfg), ld_tool_fn, ld_tool_free, 0,
                    &arr, &n, &tol) < 0)
            goto out;
        for (size_t i = 0; i < cfg->n_tools; i++)
            config_tool_free(&cfg->tools[i]);
        free(cfg->tools);
        cfg->tools = arr;
        cfg->n_tools = n;
        if (ld_check_unique(l, "tools", (const char *const *)&cfg->tools[0].name,
                            sizeof(tool_cfg), n, tol) < 0)
            goto out;
    }

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
    if (ld_models_resolve(l, ml) < 0)
        goto out;
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

    /* Agents last: they refer to models, tiers and tools. */
    if (s[RT_AGENTS].present) {
        void *arr;
        size_t n;
        /* `agents: []` is allowed: a pure gateway with no agents. */
        if (ld_list(l, &s[RT_AGENTS], "agents", sizeof(agent_cfg), ld_agent_fn, ld_agent_free, 1,
                    &arr, &n, &al) < 0)
            goto out;
        for (size_t i = 0; i < cfg->n_agents; i++)
            config_agent_free(&cfg->agents[i]);
        free(cfg->agents);
        cfg->agents = arr;
        cfg->n_agents = n;
        if (n > 1 && ld_check_unique(l, "agents", (const char *const *)&cfg->agents[0].name,
                                     sizeof(agent_cfg), n, al) < 0)
            goto out;
    } else {
        /* The embedded agent survives a replaced models list only if its
         * model is still there (and big enough); it then takes its limits
         * from that model, which the file may have redefined. The models
         * array was rebuilt either way, so the pointer is re-resolved. */
        size_t keep = 0;
        for (size_t i = 0; i < cfg->n_agents; i++) {
            agent_cfg *a = &cfg->agents[i];
            const model_cfg *m = config_find_model(cfg, a->model_name);
            if (!m || m->context_window < CONFIG_AGENT_MIN_CONTEXT) {
                config_agent_free(a);
                continue;
            }
            config_agent_apply_model(a, m);
            if (keep != i) {
                cfg->agents[keep] = *a;
                memset(a, 0, sizeof(*a));
            }
            keep++;
        }
        cfg->n_agents = keep;
    }
    rc = 0;
out:
    free(pl);
    free(ml);
    free(tl);
    free(tol);
    free(al);
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

    /* YAML is UTF-8 text, and libfyaml 0.7 loops forever on some bytes that
     * are not (0xff in a %directive's name: found by fuzz/config), so refuse
     * what is not UTF-8 before parsing, naming the line. A UTF-8 sequence
     * never holds a newline byte, so checking line by line is exact. */
    int at_line = 1;
    for (const char *p = yaml, *end = yaml + len; p < end; at_line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (!utf8_valid(p, n)) {
            ld_fail(&l, at_line, NULL, "not valid UTF-8 (a YAML file is UTF-8 text)");
            config_free(cfg);
            return -1;
        }
        p += n + 1;
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
            rc = ld_fail(&l, config_node_line(fy_document_root(more), 1), NULL,
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
