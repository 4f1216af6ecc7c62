/* tools.h — the tools an agent may call, and how the harness runs them.
 *
 * A tool is built in (`memory`: save, recall and search the user's own
 * long-term memory; `clock`: the current time) or declared in the
 * configuration (an HTTP endpoint with a JSON Schema for its arguments,
 * or — the operator's only — a command run in the sandbox, src/sandbox/:
 * the arguments as JSON on its stdin, its stdout the result).
 * The harness (src/runs/) — never the agent core — runs them:
 *
 *   1. tools_validate_args() checks the model's arguments against the
 *      tool's JSON Schema before anything runs (called by the guards,
 *      src/guard/); on failure the model gets the error message as the
 *      tool result, so it can correct itself;
 *   2. tools_execute() runs the tool asynchronously on the run's loop
 *      (HTTP tools over libcurl on the loop; memory through the store on the
 *      thread pool; clock at once — but always called back on a later loop
 *      turn, never from inside tools_execute);
 *   3. the output is cut to the agent's max_tool_output_bytes before it
 *      enters the context (with a note saying it was cut).
 *
 * Memory is scoped (invariant 2, docs/architecture.md): the memory tool acts with the
 * scope of the run's user and reaches only that user's memory — the same
 * store the /v1/memory API uses. */
#ifndef BRIGADE_TOOLS_H
#define BRIGADE_TOOLS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config/config.h"
#include "egress/egress_curl.h"
#include "obs/obs.h"
#include "scope/scope.h"
#include "store/store.h"
#include "upstream/upstream.h"

typedef enum tool_kind { TOOL_MEMORY = 1, TOOL_CLOCK, TOOL_HTTP, TOOL_COMMAND, TOOL_MCP } tool_kind;

struct mcp_hub;
struct mcp_server_cfg;
struct mcp_tool_info;

typedef struct tool_def {
    const char     *name;
    const char     *description;
    tool_kind       kind;
    tool_effects    effects;         /* read | write | external (config.h) */
    cJSON          *parameters;      /* JSON Schema (owned by the registry) */
    const tool_cfg *http;            /* TOOL_HTTP, TOOL_COMMAND: its configuration */
    /* TOOL_MCP (tool_mcp.c): named SERVER__TOOL; the server's own name
     * for the tool; the schema the server gave when brigade's subset
     * cannot check it (the model is offered it, `parameters` is then only
     * {"type":"object"}). Owned by the registry. */
    const struct mcp_server_cfg *mcp_server;
    char           *mcp_tool;
    char           *own_name, *own_description;
    cJSON          *offered;
    /* TOOL_MCP of a server with `auth: {kind: oauth}`: the vault's provider
     * for this user's token (mcp_oauth_provider_name); "" for none. The
     * run gets the token before the call, or waits for the user's consent
     * (runs/credentials.h), as for an HTTP tool's `auth`. */
    char            mcp_auth_provider[72];
} tool_def;

/* The tool's approval policy (approval, approval_when,
 * approval_timeout_s): a declared tool's own, or its MCP server's; NULL
 * when it has none. */
const tool_cfg *tools_approval_policy(const tool_def *t);

typedef struct tool_registry tool_registry;

/* Build the registry from the configuration: the built-ins plus every
 * declared tool (whose parameters must be a usable JSON Schema: the
 * supported subset is documented in docs/tools.md). Returns NULL with err
 * on a bad schema. */
tool_registry  *tools_registry_new(const brigade_config *cfg, char *err, size_t errlen);
/* The same from a list of declared tools (a run's own set: the catalogue
 * tools a tenant has and the tenant's own; tool_tenant.c). The tool_cfgs
 * must outlive the registry. */
tool_registry  *tools_registry_of(const tool_cfg *const *tools, size_t n, char *err, size_t errlen);
/* The registry's checks of one declared tool (name, URL template, method,
 * headers, schema), for a tenant's tool before it is stored. */
bool            tools_check_declared(const tool_cfg *tc, char *err, size_t errlen);
void            tools_registry_free(tool_registry *r);
/* Add a tool an MCP server listed, as SERVER__TOOL; false (and nothing
 * added) when its name does not fit a model's function names
 * ([a-zA-Z0-9_-], at most 64 bytes with the server's) or is taken.
 * `info` NULL adds a tool whose server could not be reached: its schema is
 * open and its description says why (a call tries the server again). */
bool            tools_registry_add_mcp(tool_registry *r, const struct mcp_server_cfg *server,
                                       const char *tool, const struct mcp_tool_info *info,
                                       const char *unavailable);
/* The process's MCP hub (set once by serve before any run; NULL: no MCP
 * servers are reachable and their tools are left out). */
void            tools_set_mcp_hub(struct mcp_hub *hub);
struct mcp_hub *tools_mcp_hub(void);
/* Every tool of `server` in r needs the user's token of `provider`. */
void            tools_registry_set_mcp_auth(tool_registry *r, const char *server, const char *provider);
/* The user's token for an oauth MCP server's listing at a run's start
 * (blocking: the thread pool): fills `out` with the Authorization value
 * ("Bearer …") and returns true, or false when the user has none yet (the
 * server's tools the agent names are then offered, and a call asks for
 * the user's consent). Set by the program before serving; NULL: none. */
typedef bool (*tools_mcp_token_fn)(void *arg, const scope *sc, const char *provider, char *out, size_t outlen);
void            tools_set_mcp_token(tools_mcp_token_fn fn, void *arg);
bool            tools_mcp_token(const scope *sc, const char *provider, char *out, size_t outlen);
const tool_def *tools_find(const tool_registry *r, const char *name);
/* Iterate: tools_at(r, 0 .. tools_count(r)-1), built-ins first. */
size_t          tools_count(const tool_registry *r);
const tool_def *tools_at(const tool_registry *r, size_t i);

/* The registry points into `cfg` (declared tools' names and tool_cfg):
 * free the registry before the configuration.
 *
 * The OpenAI "tools" array offering these tools to a model (new cJSON):
 * [{"type":"function","function":{"name","description","parameters"}}].
 * names == NULL offers every tool; unknown names are skipped, a name
 * listed twice is offered once. */
cJSON *tools_openai_specs(const tool_registry *r, char *const *names, size_t n);
/* Does an agent's list of tool names give it `tool`: by name, or through
 * SERVER__* for a tool SERVER__NAME of an MCP server? */
bool   tools_name_listed(char *const *names, size_t n, const char *tool);

/* Validate arguments (JSON text) against the tool's schema. Returns true,
 * or false with a message for the model ("arguments.query: expected a
 * string"). Invalid JSON is an error too. */
bool tools_validate_args(const tool_def *t, const char *arguments, char *err, size_t errlen);

/* Where and as whom a tool runs. */
typedef struct tool_env {
    uv_loop_t   *loop;
    upstream    *upstream;           /* for HTTP tools (upstream_http_fetch) */
    store       *store;              /* for memory */
    const scope *scope;              /* the run's user; memory is this user's only */
    size_t       max_output_bytes;   /* cap on what is returned */
    const char  *request_id;         /* forwarded as x-request-id */
    /* The run's user's own credential for a tool with `auth` (runs/
     * credentials.h): sent as this header, never logged or traced; NULL
     * for none. Replaces a configured header of the same name. */
    const char  *auth_header_name;
    const char  *auth_header_value;
    /* Egress (docs/egress.md): the operator's egress.allow_networks (the
     * configuration outlives the call), and the tool call's span, parent
     * of the `egress` span of an HTTP tool's request (NULL: none). A
     * refusal is the tool's error, that span, and an audit entry
     * `egress.refuse` written with `store` as the run's user. */
    const egress_net *egress_allow_nets;
    size_t            n_egress_allow_nets;
    obs_span         *span;
    /* Progress a tool reports while it runs (MCP progress notifications):
     * progress, total (< 0 unknown), message (NULL none). NULL: ignored. */
    void       (*progress)(void *arg, double progress, double total, const char *message);
    void        *progress_arg;
    /* Provenance (core/origin.h). `memory_origin`: the origin recorded on
     * the memory entries this call writes, JSON object text (NULL: not
     * recorded). `read_origins`: the memory tool tells, on the loop just
     * before `done`, the entries it read and who wrote them — a JSON array
     * [{"key", "origin"}] (origin null when not recorded). NULL: ignored. */
    const char  *memory_origin;
    void       (*read_origins)(void *arg, const char *entries_json);
    void        *read_origins_arg;
    /* The service refused the user's own credential (auth_header_value):
     * an HTTP tool's 401; an MCP server's 401, or 403 asking for more
     * scope. Called on the loop just before `done`, so the run can have
     * the user asked again (runs/credentials.h). NULL: ignored. */
    void       (*auth_refused)(void *arg);
    void        *auth_refused_arg;
} tool_env;

/* The result handed back: `output` is text for the model (JSON for memory
 * and clock, the response body for HTTP tools), already capped. ok=false
 * means the tool failed; `output` then says why, for the model. */
typedef void (*tool_done_fn)(void *arg, bool ok, const char *output, size_t len);

typedef struct tool_exec tool_exec;

/* Start a tool call. Always calls `done` exactly once, on a later loop turn
 * (unless cancelled first). `arguments` must have passed validation. */
tool_exec *tools_execute(const tool_def *t, const tool_env *env, const char *arguments,
                         tool_done_fn done, void *arg);
/* Stop it: `done` is not called. Safe until `done` has been called. */
void       tools_cancel(tool_exec *x);

/* Cut `text` to at most `max` bytes on a UTF-8 boundary, appending
 * "\n[output cut: N of M bytes]" (N bytes of the text kept, M its length).
 * The note counts towards `max`: the result is never longer than `max`
 * (when `max` is too small for the note, the text is cut without one).
 * A text of at most `max` bytes is copied unchanged. Returns a malloc'd,
 * NUL-terminated string (NULL only on out-of-memory). */
char *tools_cap_output(const char *text, size_t len, size_t max, size_t *out_len);

/* Used when tool_env.max_output_bytes is 0 (the agent default). */
#define TOOLS_DEFAULT_MAX_OUTPUT 16384

/* --- what an argument may become in a declared tool's URL (tool_url.c) ---
 * A value for a `{placeholder}` in the URL's path must stay one path
 * segment whatever the server does with it: false, with `why` saying what
 * is wrong, if it — or what it decodes to after any number of rounds of
 * percent-decoding — is empty, "." or ".." (also before a ";"), contains
 * "/", "\", a control character, non-UTF-8 bytes, or a character that
 * Unicode NFKC normalisation turns into a dot or a slash. */
bool tools_url_path_value_ok(const char *value, size_t len, char *why, size_t whylen);
/* False if some segment of a URL path (what lies between the host and the
 * "?"), percent-decoded any number of times, is a dot segment. */
bool tools_url_path_ok(const char *path, size_t len);
/* A built request URL is at most this long: a longer one is refused before
 * any request (servers answer 414 anyway; long values belong in a body). */
#define TOOLS_HTTP_MAX_URL 16384

/* --- the JSON Schema subset (schema.c; documented in docs/tools.md) ---
 * Keywords: type (one or an array), properties, required,
 * additionalProperties (bool or schema), items (one schema), enum, const,
 * minimum, maximum, exclusiveMinimum, exclusiveMaximum (number, or the
 * draft-4 boolean), minLength, maxLength (characters), minItems, maxItems,
 * anyOf, oneOf; description, title, default, examples, $schema, $comment
 * are accepted and ignored. Anything else (pattern, format, $ref, allOf,
 * not, patternProperties, tuple items, …) is refused when loading, so a
 * schema never silently means less than it says. */
#define TOOLS_SCHEMA_MAX_DEPTH 32      /* nesting of subschemas */
#define TOOLS_SCHEMA_MAX_NODES 2048    /* subschemas in one tool's schema */

/* Check that `schema` uses only the subset, with well-formed values.
 * `where` names it in messages ("tools[2].parameters"). */
bool tools_schema_check(const cJSON *schema, const char *where, char *err, size_t errlen);
/* Validate `value` against a checked schema; messages name the path from
 * `root` ("arguments.items[2].name: expected a string, got number"). */
bool tools_schema_validate(const cJSON *schema, const cJSON *value, const char *root,
                           char *err, size_t errlen);

#endif
