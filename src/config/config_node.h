/* config_node.h — questions about a libfyaml node that the loader and the
 * YAML-to-JSON conversion (config_json.c) both ask. Internal to config/. */
#ifndef BRIGADE_CONFIG_NODE_H
#define BRIGADE_CONFIG_NODE_H

#include <stddef.h>

struct fy_node;

/* 1-based line where a YAML node starts (`fallback` if it has none). */
int config_node_line(struct fy_node *n, int fallback);

/* Whether a node is YAML null: absent, empty, `~` or `null`, unquoted. */
int config_node_is_null(struct fy_node *n);

/* What a node is, for "expected X, got Y": "a mapping", "a list",
 * "nothing (null)", or the scalar itself in quotes (written into buf). */
const char *config_node_what(struct fy_node *n, char *buf, size_t len);

#endif
