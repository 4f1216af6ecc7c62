/* config_node.c — small questions about a libfyaml node that both the
 * loader and the YAML-to-JSON conversion ask: its line, whether it is null,
 * and what it is, for "expected X, got Y" messages. It sits below both, so
 * config_json.c needs nothing from the loader. */
#include <libfyaml.h>
#include <stdio.h>
#include <string.h>

#include "config/config_node.h"

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
const char *config_node_what(struct fy_node *n, char *buf, size_t len)
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
