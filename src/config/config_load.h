/* config_load.h — the YAML loader's toolkit, shared by its files and by no
 * one else (the contract is config.h). config_yaml.c walks the document;
 * each top-level section has a file that reads it (config_server.c,
 * config_models.c, config_tiers.c, config_observability.c, config_tools.c,
 * config_agents.c); config_load_fields.c has what they all use.
 *
 * Every reader returns 0, or -1 after ld_fail has written
 * "FILE:LINE: key.path: what is wrong" into the load's error buffer. */
#ifndef BRIGADE_CONFIG_LOAD_H
#define BRIGADE_CONFIG_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "config/config_node.h"

struct fy_node;

/* The smallest context an agent can work in: the system prompt, a tool
 * list and one exchange have to fit. */
#define CONFIG_AGENT_MIN_CONTEXT 256

/* One load: where its messages go, and the config being filled. */
typedef struct ld {
    const char     *name;      /* file name in messages */
    char           *err;
    size_t          errlen;
    brigade_config *cfg;
    /* A tenant's body from the API (config_tenant.c), not the file: no
     * ${VAR} expansion, no `tenants:`, and agents' tool names checked by
     * tool_known instead of against the file's tools. */
    bool            api_body;
    config_tool_known_fn tool_known;
    void           *tool_known_arg;
} ld;

/* One known key of a mapping and what the collector found for it. */
typedef struct slot {
    const char     *key;
    struct fy_node *val;       /* NULL if absent or `key:` with no value */
    int             line;      /* 1-based line of the key; 0 if absent */
    int             present;
} slot;

/* Where each list entry came from, for cross-reference messages. */
typedef struct entry_lines {
    int item;                  /* first line of the entry */
    int name;                  /* line of its `name:` */
    int ref;                   /* models: line of `provider:` */
} entry_lines;

/* Reads one list entry into `e` (an element of the list's array). */
typedef int (*ld_entry_fn)(ld *, struct fy_node *, int, const char *, void *, entry_lines *);

/* messages: an error names the file, the line and the key path; a warning
 * goes into cfg->warnings (and the log) */
int ld_fail(ld *l, int line, const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void ld_warn(ld *l, int line, const char *path, const char *msg);
void ld_path(char *out, size_t outlen, const char *parent, const char *key);

/* a mapping's keys into slots; unknown keys refused with a suggestion */
const char *ld_suggest(const char *key, const slot *slots, size_t n);
int ld_collect(ld *l, struct fy_node *map, int line, const char *path, slot *slots, size_t n);

/* typed readers of one slot: type and range checked */
int ld_scalar(ld *l, const slot *s, const char *path, const char *want, const char **txt, size_t *len);
int ld_bool(ld *l, const slot *s, const char *path, bool *out);
int ld_text(ld *l, const slot *s, const char *path, const char **txt, size_t *len);
int ld_string(ld *l, const slot *s, const char *path, char **out, int *raw_literal);
int ld_nonempty(ld *l, const slot *s, const char *path, char **out, int *raw_literal);
int ld_name(ld *l, const slot *s, const char *path, char **out);
int ld_env_name(ld *l, const slot *s, const char *path, char *out, size_t outlen);
int ld_from_env(ld *l, const slot *s, const char *path, char **out);
int ld_int(ld *l, const slot *s, const char *path, int64_t min, int64_t max, int64_t *out);
int ld_u32(ld *l, const slot *s, const char *path, int64_t min, int64_t max, uint32_t *out);
int ld_size(ld *l, const slot *s, const char *path, int64_t max, size_t *out);
int ld_double(ld *l, const slot *s, const char *path, double min, double max, double *out);
int ld_http_url(ld *l, const slot *s, const char *path, char **out, size_t *host_at);

/* lists of entries and of names */
int ld_sequence(ld *l, struct fy_node *list, int line, const char *path, size_t *count, int allow_empty);
void ld_known_names(char *out, size_t outlen, const char *const *names, size_t stride, size_t n);
int ld_check_unique(ld *l, const char *list, const char *const *names, size_t stride, size_t n, const entry_lines *el);
int ld_list(ld *l, const slot *s, const char *list, size_t elem, ld_entry_fn one, void (*free_one)(void *), int allow_empty, void **out, size_t *out_n, entry_lines **out_lines);
int ld_ident(ld *l, const slot *s, const char *path, char **out, const char *extra, const char *what);
int ld_tenants(ld *l, const slot *s, const char *path, bool *enable);   /* `tenants: all | enable` */

/* the sections (one file each) */
int ld_server(ld *l, struct fy_node *n, int line);
int ld_models_resolve(ld *l, const entry_lines *ml);
int ld_provider_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el);
int ld_model_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el);
int ld_governance(ld *l, struct fy_node *n, int line);
int ld_tier_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el);
int ld_observability(ld *l, struct fy_node *n, int line);
int ld_egress(ld *l, struct fy_node *n, int line);      /* config_egress.c */
int ld_console(ld *l, struct fy_node *n, int line);
int ld_store(ld *l, struct fy_node *n, int line);        /* config_store.c */
int ld_credential_provider_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el);
void ld_credential_provider_free(void *e);
/* tools[].auth: {provider, scopes, header?, format?} (config_credentials.c) */
int ld_tool_auth(ld *l, const slot *s, const char *path, tool_cfg *t);
int ld_tool_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el);
/* tools[] of kind: command (config_command.c): kind, argv, env, network,
 * limits; a tenant's body may not declare one. Sets t->kind. */
typedef struct ld_command_slots {
    const slot *kind, *argv, *env, *network, *limits;
} ld_command_slots;
int ld_tool_command(ld *l, const ld_command_slots *cs, int line, const char *path, tool_cfg *t);
/* `limits:` of a sandboxed process (config_command.c): a command tool's,
 * an MCP server's sandbox; cpu_seconds up to cpu_max. */
int ld_sandbox_limits(ld *l, const slot *s, const char *path, uint32_t cpu_max,
                      command_limits_cfg *out);
/* the top-level `sandbox:` (config_command.c) */
int ld_sandbox(ld *l, struct fy_node *n, int line);
/* mcp_servers[] (config_mcp.c) */
int ld_mcp_server_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el);
void ld_mcp_server_free(void *e);
int ld_agent_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el);
/* config_approval.c: a tool's `approval:`, an agent's `approval_by:` */
int ld_tool_approval(ld *l, const slot *s, const char *path, tool_cfg *t);
int ld_agent_approval_by(ld *l, const slot *s, const char *path, agent_cfg *a);
int ld_guard(ld *l, struct fy_node *n, int line);                              /* config_guard.c */
int ld_agent_guard(ld *l, const slot *s, const char *path, agent_guard_cfg *g); /* config_guard.c */
void ld_provider_free(void *e);
void ld_model_free(void *e);
void ld_tier_free(void *e);
void ld_tool_free(void *e);
void ld_agent_free(void *e);

#endif
