/* config_json.c — turns a YAML node into JSON text.
 *
 * A declared tool's `parameters` is a JSON Schema, but it is far nicer to
 * write as YAML in the configuration file. The tool layer and the model
 * providers want JSON, so the loader converts the node once at start.
 *
 * Typing follows the YAML 1.2 core schema where JSON can express it: an
 * unquoted scalar that is a JSON number stays a number, true/false (any
 * case the core schema allows) a boolean, null/~/empty a null; everything
 * else, and every quoted scalar, is a string. YAML spellings JSON has no
 * form for (.inf, .nan, 0x1F, 0o17, +1, 007) are refused rather than
 * silently turned into strings: in a schema, `maximum: 0x10` becoming the
 * string "0x10" would be a validation rule that quietly does nothing. */
#include <libfyaml.h>
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"
#include "config/config_node.h"
#include "util/buf.h"
#include "util/json_escape.h"

/* Deeper than any sane schema; bounds the recursion. */
#define CONFIG_JSON_MAX_DEPTH 64

typedef struct cj {
    buf    *out;
    int    *line;
    char   *sub;
    size_t  sublen;
    char   *why;
    size_t  whylen;
} cj;

/* Whether s[0..n) is a number in JSON's grammar:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int config_json_is_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return 0;
    }
    return i == n;
}

/* A YAML core-schema number JSON cannot write: the caller refuses it. */
static int config_json_yaml_only_number(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
    if (i < n && s[i] == '.' && n - i == 4) {
        const char *w = s + i + 1;
        if (!strncmp(w, "inf", 3) || !strncmp(w, "Inf", 3) || !strncmp(w, "INF", 3) ||
            (i == 0 && (!strncmp(w, "nan", 3) || !strncmp(w, "NaN", 3) || !strncmp(w, "NAN", 3))))
            return 1;
    }
    if (s[0] == '+' && n > 1 && (s[1] >= '0' && s[1] <= '9'))
        return 1;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o'))
        return 1;
    /* Leading zeros ("007"): YAML reads 7, JSON has no such number. */
    i = s[0] == '-' ? 1 : 0;
    if (n > i + 1 && s[i] == '0' && s[i + 1] >= '0' && s[i + 1] <= '9') {
        for (size_t j = i; j < n; j++)
            if ((s[j] < '0' || s[j] > '9') && s[j] != '.' && s[j] != 'e' && s[j] != 'E' &&
                s[j] != '+' && s[j] != '-')
                return 0;
        return 1;
    }
    return 0;
}

/* Append ".key" or "[i]" to the error path; truncation only shortens it. */
static void config_json_sub(cj *c, size_t at, const char *fmt, const char *key, size_t keylen, size_t idx)
{
    if (at >= c->sublen)
        return;
    if (key)
        snprintf(c->sub + at, c->sublen - at, fmt, (int)keylen, key);
    else
        snprintf(c->sub + at, c->sublen - at, fmt, idx);
}

static int config_json_fail(cj *c, struct fy_node *n, const char *msg)
{
    *c->line = config_node_line(n, *c->line);
    snprintf(c->why, c->whylen, "%s", msg);
    return -1;
}

static int config_json_node(cj *c, struct fy_node *n, int depth)
{
    size_t at = strlen(c->sub);
    if (depth > CONFIG_JSON_MAX_DEPTH)
        return config_json_fail(c, n, "nested too deeply");
    if (config_node_is_null(n)) {
        buf_puts(c->out, "null");
        return 0;
    }
    switch (fy_node_get_type(n)) {
    case FYNT_MAPPING: {
        buf_append(c->out, "{", 1);
        void *it = NULL;
        struct fy_node_pair *p;
        int first = 1;
        while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
            struct fy_node *k = fy_node_pair_key(p);
            size_t kl = 0;
            const char *ks = (k && fy_node_get_type(k) == FYNT_SCALAR) ? fy_node_get_scalar(k, &kl) : NULL;
            if (!ks)
                return config_json_fail(c, k ? k : n, "keys must be strings");
            if (memchr(ks, '\0', kl))
                return config_json_fail(c, k, "keys must not contain NUL characters");
            if (!first)
                buf_append(c->out, ",", 1);
            first = 0;
            json_escape_string(c->out, ks, kl);
            buf_append(c->out, ":", 1);
            config_json_sub(c, at, ".%.*s", ks, kl, 0);
            if (config_json_node(c, fy_node_pair_value(p), depth + 1) < 0)
                return -1;
            c->sub[at] = '\0';
        }
        buf_append(c->out, "}", 1);
        return 0;
    }
    case FYNT_SEQUENCE: {
        buf_append(c->out, "[", 1);
        void *it = NULL;
        struct fy_node *item;
        size_t i = 0;
        while ((item = fy_node_sequence_iterate(n, &it)) != NULL) {
            if (i)
                buf_append(c->out, ",", 1);
            config_json_sub(c, at, "[%zu]", NULL, 0, i);
            if (config_json_node(c, item, depth + 1) < 0)
                return -1;
            c->sub[at] = '\0';
            i++;
        }
        buf_append(c->out, "]", 1);
        return 0;
    }
    case FYNT_SCALAR:
        break;
    }
    size_t len = 0;
    const char *s = fy_node_get_scalar(n, &len);
    if (!s)
        return config_json_fail(c, n, "unreadable value");
    if (memchr(s, '\0', len))
        return config_json_fail(c, n, "strings must not contain NUL characters");
    if (fy_node_get_style(n) == FYNS_PLAIN) {
        if (config_json_is_number(s, len)) {
            buf_append(c->out, s, len);
            return 0;
        }
        if ((len == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4)))) {
            buf_puts(c->out, "true");
            return 0;
        }
        if ((len == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5)))) {
            buf_puts(c->out, "false");
            return 0;
        }
        if (config_json_yaml_only_number(s, len)) {
            char msg[160];
            snprintf(msg, sizeof(msg), "\"%.*s\" is a YAML number JSON cannot hold; "
                     "write it as a plain decimal, or quote it for a string", (int)(len > 40 ? 40 : len), s);
            return config_json_fail(c, n, msg);
        }
    }
    json_escape_string(c->out, s, len);
    return 0;
}

int config_yaml_to_json(struct fy_node *n, struct buf *out, int *line, char *sub, size_t sublen,
                        char *why, size_t whylen)
{
    cj c = {.out = out, .line = line, .sub = sub, .sublen = sublen, .why = why, .whylen = whylen};
    if (sublen)
        sub[0] = '\0';
    *line = 0;
    int rc = config_json_node(&c, n, 0);
    if (rc == 0)
        *line = 0;
    return rc;
}
