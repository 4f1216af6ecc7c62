/* config_internal.h — helpers shared by the config module's source files
 * (defaults, YAML loader, ${VAR} expansion). Not part of the contract. */
#ifndef BRIGADE_CONFIG_INTERNAL_H
#define BRIGADE_CONFIG_INTERNAL_H

#include <stddef.h>

#include "config/config.h"

/* malloc'd copy; aborts on out-of-memory (configuration is start-up work,
 * and a half-built config is worse than a clear crash). */
char *config_xstrdup(const char *s);
char *config_xstrndup(const char *s, size_t n);
void *config_xcalloc(size_t n, size_t size);
void *config_xrealloc(void *p, size_t size);

/* Append a warning (already formatted, copied) and log it. */
void config_add_warning(brigade_config *cfg, const char *msg);

/* Fill an entry with the per-entry defaults (timeouts, connection cap,
 * mock behaviour); `name` is copied. The loader starts each file entry here. */
void config_provider_defaults(provider_cfg *p, const char *name, provider_kind kind);

/* Free the members of one list entry (not the entry itself). */
void config_provider_free(provider_cfg *p);
void config_model_free(model_cfg *m);
void config_tier_free(tier_cfg *t);
void config_tier_quota_defaults(tier_cfg *t);   /* the CONFIG_QUOTA_* storage quotas */
void config_tool_free(tool_cfg *t);
void config_credential_provider_free(credential_provider_cfg *p);
void config_agent_free(agent_cfg *a);

/* An agent's per-run limits at their defaults (description "", no model). */
void config_agent_defaults(agent_cfg *a);

/* Point an agent at its model and derive the model-dependent defaults
 * (max_output_tokens, context_tokens) from it. */
void config_agent_apply_model(agent_cfg *a, const model_cfg *m);

struct fy_node;

/* Append node `n` as JSON text to `out` (a util/buf). Unquoted scalars that
 * are JSON numbers, true/false or null keep that type; every other scalar
 * is a string. On failure returns -1 with *line the line of the offending
 * node, `sub` its key path below `n` (".a.b[2]", "" for `n` itself) and
 * `why` what is wrong. */
struct buf;
int config_yaml_to_json(struct fy_node *n, struct buf *out, int *line, char *sub, size_t sublen,
                        char *why, size_t whylen);

/* Expand ${VAR} and ${VAR:-fallback} in in[0..len) from the environment.
 * `$${` is a literal `${`. Returns 0 with *out malloc'd, or -1 with a
 * message in why (e.g. `environment variable FOO is not set`). */
int config_env_expand(const char *in, size_t len, char **out, char *why, size_t whylen);

/* Whether a string contains an expansion (`${` not escaped as `$${`). */
int config_env_has_ref(const char *in, size_t len);

#endif
