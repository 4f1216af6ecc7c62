/* config.h — brigade's configuration: what `brigade serve --config FILE` reads.
 *
 * The file is YAML (libfyaml). It is validated completely at start: an
 * unknown key, a wrong type or an out-of-range value is an error that names
 * the file, the line and the key path ("brigade.yaml:12: models[0].price:
 * expected a number"), and brigade refuses to start. Secrets never have to
 * be in the file: `api_key_env: NAME` reads an environment variable, and any
 * string may contain `${VAR}`, expanded from the environment (an unset
 * variable is an error). With no file, config_defaults() gives the embedded
 * defaults: the in-process mock provider and its models, SQLite in data_dir.
 * Every option is documented in docs/config.md and examples/brigade.yaml. */
#ifndef BRIGADE_CONFIG_H
#define BRIGADE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/server_limits.h"
#include "egress/egress_addr.h"

typedef enum provider_kind { PROVIDER_MOCK = 1, PROVIDER_OPENAI = 2, PROVIDER_ANTHROPIC = 3 } provider_kind;

typedef struct provider_cfg {
    char         *name;
    provider_kind kind;
    char         *base_url;          /* openai: e.g. "https://api.openai.com/v1" (no trailing /) */
    char         *api_key;           /* resolved secret, or NULL */
    uint32_t      timeout_ms;        /* one attempt, whole (default 120000) */
    uint32_t      connect_timeout_ms;/* default 5000 */
    uint32_t      first_byte_timeout_ms;  /* streams: request sent → first byte (default 30000, 0 = off) */
    uint32_t      stream_idle_timeout_ms; /* streams: longest gap between bytes (default 30000, 0 = off) */
    uint32_t      max_connections;   /* per loop thread (default 64) */
    uint32_t      max_concurrent;    /* calls in flight per deployment, process-wide (default 0 = unlimited) */
    uint32_t      max_retries;       /* extra attempts per request after a transient failure (default 2) */
    uint32_t      retry_backoff_ms;  /* backoff base: retry n waits random [0, min(max, base·2^n)] (default 100) */
    uint32_t      retry_backoff_max_ms; /* backoff cap (default 2000) */
    double        retry_budget_ratio;/* retries ≤ ratio × requests over 10 s … (default 0.2) */
    uint32_t      retry_budget_min_per_s; /* … + this many per second (default 3) */
    /* circuit breaker of each deployment on this provider (docs/resilience.md) */
    uint32_t      breaker_failures;  /* consecutive provider faults that open it (default 5, 0 = off) */
    double        breaker_error_rate;/* fault rate over the window that opens it (default 0.5, 0 = off) */
    uint32_t      breaker_window_ms; /* default 10000 */
    uint32_t      breaker_min_calls; /* calls in the window before the rate counts (default 10) */
    uint32_t      breaker_open_ms;   /* open this long, then one probe (default 5000) */
    char         *anthropic_version; /* anthropic: "anthropic-version" header (default "2023-06-01") */
    bool          responses_passthrough; /* openai: `responses: passthrough` — POST /v1/responses is
                                      * sent to {base_url}/responses instead of translated */
    bool          http_client_curl;  /* `http_client: curl` — libcurl even for plain http (default
                                      * auto: the built-in HTTP/1.1 client for http://, curl for https) */
    /* kind mock: behaviour of the in-process mock */
    uint32_t      mock_latency_ms;   /* default 0 */
    uint32_t      mock_stream_chunks;/* default 8 */
    uint32_t      mock_chunk_interval_ms; /* default 0 */
    bool          mock_gullible;     /* play an injected model (docs/api.md, "mock-llm") */
} provider_cfg;

/* One place a model is served from: a provider and the name it has there. */
typedef struct deployment_cfg {
    char         *provider_name;
    provider_cfg *provider;          /* resolved */
    char         *upstream_model;    /* default: the model's name */
    char         *name;              /* "provider/upstream_model", for stats and headers */
    uint32_t      weight;            /* balance weighted (default 1) */
    uint32_t      max_concurrent;    /* default: the provider's max_concurrent (0 = unlimited) */
    uint32_t      first_byte_timeout_ms; /* hang detection of an attempt here (0: the model's,
                                      * else the provider's first_byte_timeout_ms) */
} deployment_cfg;

typedef enum model_balance { BALANCE_LEAST_IN_FLIGHT = 0, BALANCE_WEIGHTED = 1 } model_balance;

/* Failure classes (bits of model_cfg.fallback_on). */
enum {
    FALLBACK_RATE_LIMIT = 1u << 0,     /* 429 */
    FALLBACK_SERVER_ERROR = 1u << 1,   /* 5xx, and every deployment's breaker open */
    FALLBACK_TIMEOUT = 1u << 2,
    FALLBACK_CONNECT = 1u << 3,
    FALLBACK_MALFORMED = 1u << 4,      /* invalid or truncated answers */
    FALLBACK_CONTEXT_WINDOW = 1u << 5, /* prompt too long for the model */
    FALLBACK_ALL = (1u << 6) - 1
};

typedef struct model_cfg {
    char         *name;              /* the name clients use */
    char         *provider_name;     /* = deployments[0]'s */
    provider_cfg *provider;          /* resolved; = deployments[0]'s */
    char         *upstream_model;    /* = deployments[0]'s (default: name) */
    double        input_usd_per_mtok;
    double        output_usd_per_mtok;
    uint32_t      max_output_tokens; /* cap and reservation basis (default 4096) */
    uint32_t      context_window;    /* default 128000 */
    /* Where it is served from. None (the embedded models): the one
     * deployment provider/upstream_model. */
    deployment_cfg *deployments; size_t n_deployments;
    model_balance balance;           /* default least_in_flight */
    char        **fallbacks;  size_t n_fallbacks;   /* model names, tried in order */
    const struct model_cfg **fallback_models;       /* resolved */
    uint32_t      fallback_on;       /* FALLBACK_* bits (default FALLBACK_ALL) */
    /* Hang detection and hedging (docs/resilience.md): the first-byte
     * deadline of an attempt on any deployment of this model (0: the
     * provider's), and the wait for a first byte after which a second,
     * hedged attempt starts on another deployment (0: no hedging). */
    uint32_t      first_byte_timeout_ms;
    uint32_t      hedge_after_ms;
    /* A stream cut by a transient fault after text reached the client is
     * resumed by replay: the request is sent again, the replayed answer
     * must repeat the delivered text exactly (it is skipped), and only what
     * comes after it goes on. Off by default: it helps providers that
     * answer deterministically (docs/resilience.md). */
    bool          stream_resume;
    /* `kind: embedding`: served on /v1/embeddings only, priced on input
     * (output price and cap 0); `dimensions` its vector size (0: the
     * provider's default), the most a request may ask for. */
    bool          embedding;
    uint32_t      dimensions;
} model_cfg;

typedef struct tier_cfg {
    char   *name;
    int64_t rpm;                     /* requests per minute, 0 = unlimited */
    int64_t tpm;                     /* tokens per minute, 0 = unlimited */
    int64_t max_concurrent_runs;     /* 0 = unlimited */
    double  daily_budget_usd;        /* 0 = unlimited */
    double  monthly_budget_usd;      /* 0 = unlimited */
    uint32_t weight;                 /* share of upstream capacity in the fair queue
                                      * (weighted deficit round robin; default 1) */
    /* storage quotas per user (0 = unlimited; defaults CONFIG_QUOTA_*) */
    int64_t quota_memory_bytes, quota_memory_entries, quota_sessions, quota_messages_per_session;
} tier_cfg;

#define CONFIG_QUOTA_MEMORY_BYTES (10LL << 20)   /* 160 values of the 64 KiB maximum */
#define CONFIG_QUOTA_MEMORY_ENTRIES 1000
#define CONFIG_QUOTA_SESSIONS 1000
#define CONFIG_QUOTA_MESSAGES_PER_SESSION 2000

/* `governance.backend`: where budgets, reservations and rate limits live. */
enum { GOVERN_BACKEND_LOCAL = 0, GOVERN_BACKEND_REDIS = 1 };

/* `governance.redis:` — shared governance for several instances
 * (docs/scale-out.md). Read only when backend is redis. */
typedef struct governance_redis_cfg {
    char    *host;                   /* from url redis://host:port/db (default 127.0.0.1) */
    int      port;                   /* default 6379 */
    int      db;                     /* default 0 */
    char    *key_prefix;             /* every key starts with it (default "brigade:") */
    bool     fail_open;              /* on_unreachable: fail_open admits budgets unchecked;
                                      * default fail_closed refuses them (503) */
    uint32_t instances;              /* instances sharing it: rate limits fall back to
                                      * limit / instances while Redis is away (default 1) */
    uint32_t reservation_ttl_s;      /* a reservation not settled by then is released by
                                      * expiry (a crashed instance's); default 900 */
    uint32_t timeout_ms;             /* one admission round trip, then unreachable (default 500) */
} governance_redis_cfg;

/* `governance:` — budgets, rate limits and the fair queue (docs/governance.md). */
typedef struct governance_cfg {
    int      backend;                /* GOVERN_BACKEND_*; default local (in-process) */
    governance_redis_cfg redis;
    bool     enabled;                /* default true; false admits everything (benchmarks) */
    uint32_t queue_per_user;         /* model calls one user may have waiting for a slot (default 16) */
    uint32_t queue_global;           /* waiting model calls in all (default 1024) */
    tier_cfg tenant_limits;          /* every tenant's limits unless PATCHed (name unused;
                                      * default: unlimited) */
} governance_cfg;

/* `observability:` (docs/observability.md): logs, traces, OTLP export and
 * metrics. */
typedef struct obs_cfg {
    int      logs_format;            /* 0 json (default), 1 text — as log_format */
    bool     logs_content;           /* log message content (default false) */
    bool     traces_enabled;         /* record spans (default true) */
    uint32_t traces_retention_hours; /* spans kept this long (default 72) */
    uint64_t traces_max_spans;       /* and at most this many (default 1000000) */
    double   traces_sample_ratio;    /* share of new traces recorded, 0–1 (default 1); a
                                      * continued trace follows its parent's sampled flag */
    char    *otlp_endpoint;          /* NULL = no export; spans POSTed to {endpoint}/v1/traces */
    uint32_t otlp_max_queue;         /* spans waiting for export (default 8192) */
    uint32_t otlp_batch;             /* spans per POST (default 512) */
    uint32_t otlp_interval_ms;       /* export at least this often (default 1000) */
    uint32_t otlp_timeout_ms;        /* per POST (default 2000) */
    char    *service_name;           /* OTLP resource service.name (default "brigade") */
    uint32_t metrics_max_series;     /* series per metric family (default 1000) */
    uint32_t audit_checkpoint_every; /* audit log: a signed checkpoint at least every N entries … */
    uint32_t audit_checkpoint_interval_s; /* … and within T s of an entry (defaults 1000, 60) */
} obs_cfg;

/* What a tool's call does to the world (`effects:`), for the approval
 * policy and the guardrails: read (looks only), write (changes brigade's or
 * the user's own state), external (reaches a system outside brigade, may
 * change it). Declared HTTP tools default to external. */
/* In a header value of a tool: replaced, per call, by the calling user's
 * id and tenant id (the only identity a tool receives). */
#define CONFIG_TOOL_IDENTITY_USER "${user.id}"
#define CONFIG_TOOL_IDENTITY_TENANT "${tenant.id}"

typedef enum tool_effects { TOOL_EFFECTS_READ = 1, TOOL_EFFECTS_WRITE, TOOL_EFFECTS_EXTERNAL } tool_effects;
const char *config_tool_effects_name(tool_effects e);   /* "read", "write", "external" */

/* A declared HTTP tool (`tools:` in the file). The model calls it with JSON
 * arguments that are validated against `parameters` first; brigade then
 * makes the request: POST/PUT/PATCH send the arguments as the JSON body,
 * GET/DELETE send them as query parameters. `{name}` placeholders in the URL
 * are filled from arguments of that name (percent-encoded). */
/* A tool's approval policy (`approval:`, docs/tools.md "Approvals"): a call
 * of the tool waits for a person — always, or when one of the conditions
 * on its arguments holds. */
typedef enum tool_approval {
    TOOL_APPROVAL_NEVER = 0, TOOL_APPROVAL_ALWAYS, TOOL_APPROVAL_WHEN,
} tool_approval;

typedef enum approval_test {
    APPROVAL_TEST_OVER = 1,          /* a number greater than `number` */
    APPROVAL_TEST_UNDER,             /* a number less than `number` */
    APPROVAL_TEST_MATCHES,           /* a string matching the glob `text` (* and ?) */
    APPROVAL_TEST_EQUALS,            /* a string equal to `text` */
    APPROVAL_TEST_PRESENT,           /* the pointer names any value */
} approval_test;

typedef struct approval_cond {
    char          *pointer;          /* RFC 6901 JSON pointer into the arguments */
    approval_test  test;
    double         number;           /* OVER, UNDER */
    char          *text;             /* MATCHES, EQUALS */
} approval_cond;

/* Who may decide an agent's approvals (`approval_by:`). */
typedef enum approval_by {
    APPROVAL_BY_ANY = 0,             /* the run's user or a tenant admin (default) */
    APPROVAL_BY_USER,                /* the run's user only */
    APPROVAL_BY_TENANT_ADMIN,        /* a tenant admin of the run's tenant only */
} approval_by;

/* A tool's kind (`kind:`): an HTTP endpoint (the default) or a command run
 * in the sandbox (docs/sandbox.md) — the operator's alone. */
typedef enum tool_cfg_kind { TOOL_CFG_HTTP = 0, TOOL_CFG_COMMAND } tool_cfg_kind;

/* `limits:` of a command tool (0 = the default, see docs/config.md). */
typedef struct command_limits_cfg {
    uint32_t cpu_seconds;            /* default 10 */
    uint32_t memory_mb;              /* address space of each process, default 1024 */
    uint32_t open_files;             /* default 256 */
    uint32_t file_size_mb;           /* the largest file it may write, default 64 */
    uint32_t processes;              /* default 64 */
} command_limits_cfg;

typedef struct tool_cfg {
    char     *name;                  /* [a-zA-Z0-9_-]{1,64}; not "memory" or "clock" */
    tool_cfg_kind kind;
    /* kind command: argv template ({name} placeholders as whole values),
     * the environment it gets (values may use ${VAR}), network granted */
    char    **argv;
    size_t    argc;
    char    **env_names;
    char    **env_values;
    size_t    n_env;
    bool      network;
    command_limits_cfg limits;
    char     *description;
    char     *url;                   /* http:// or https:// */
    char     *method;                /* GET | POST | PUT | PATCH | DELETE (default POST) */
    char    **header_names;          /* e.g. Authorization; values may use ${VAR} */
    char    **header_values;
    size_t    n_headers;
    char     *parameters_json;       /* JSON Schema of the arguments, as JSON text
                                      * (default {"type":"object"}) */
    uint32_t  timeout_ms;            /* default 10000 */
    uint32_t  max_response_bytes;    /* longer responses are an error; default 262144 */
    /* `auth:` the calling user's own credential, from the vault (docs/tools.md):
     * the harness fetches the user's token for this provider and sends it in
     * auth_header as auth_format with "{token}" replaced. */
    char     *auth_provider;         /* a credential_providers name; NULL = no auth */
    char    **auth_scopes;           /* scopes the tool needs */
    size_t    n_auth_scopes;
    char     *auth_header;           /* default "Authorization" */
    char     *auth_format;           /* default "Bearer {token}" */
    /* `approval:` never (default) | always | {when: condition or list} */
    tool_approval  approval;
    approval_cond *approval_when;    /* WHEN: any of these holds */
    size_t         n_approval_when;
    uint32_t       approval_timeout_s; /* undecided this long: denied (default 3600) */
    uint32_t       auth_timeout_s;   /* waiting_auth this long: the run fails (default 600) */
    tool_effects effects;            /* default TOOL_EFFECTS_EXTERNAL */
    /* The catalogue (docs/tools.md "Tools per tenant"): false (`tenants:
     * all`, the default) = every tenant has it; true (`tenants: enable`) =
     * only tenants whose admin enabled it. Never set for a tenant's own. */
    bool      tenants_enable;
    /* Egress (docs/egress.md): `allow_private_networks: true` lets this
     * tool reach loopback, RFC 1918, CGNAT and unique-local addresses —
     * the server's configuration only, never a tenant's body.
     * `max_redirects` (0–10, default 0): redirects followed, each hop's
     * address checked again. */
    bool      allow_private_networks;
    uint32_t  max_redirects;
} tool_cfg;
#define EGRESS_MAX_REDIRECTS_CFG 10   /* = EGRESS_MAX_REDIRECTS (egress_curl.h) */

/* A credential provider (`credential_providers:` in the file, docs/config.md):
 * where a user's own token for a tool comes from. Kind oauth2: the user
 * consents at the provider (authorization code with PKCE); kind api_key:
 * the user pastes a key. Either way the secret is sealed in the vault. */
typedef enum credential_kind { CREDENTIAL_OAUTH2 = 1, CREDENTIAL_API_KEY = 2 } credential_kind;

typedef struct credential_provider_cfg {
    char           *name;
    credential_kind kind;
    char           *issuer;                  /* oauth2: discovery (RFC 8414 / OIDC); NULL if the endpoints are given */
    char           *authorization_endpoint;  /* oauth2: given or discovered */
    char           *token_endpoint;          /* oauth2: given or discovered */
    char           *revocation_endpoint;     /* oauth2: RFC 7009, optional */
    char           *client_id;               /* oauth2 */
    char           *client_secret;           /* oauth2: from client_secret_env; NULL = public client */
    char          **scopes;                  /* oauth2: asked for at consent */
    size_t          n_scopes;
    char           *resource;                /* oauth2: RFC 8707 resource indicator, optional */
    uint32_t        timeout_ms;              /* token, revocation and discovery calls (default 10000) */
    bool            allow_private_networks;  /* its endpoints may be on a private network (docs/egress.md) */
    bool            secret_in_body;          /* client_secret_post (an MCP server's AS asked it), not Basic */
} credential_provider_cfg;

/* An agent's guardrail policy (`guard:` of an agent; docs/guard.md). */
typedef enum guard_input_action { GUARD_INPUT_OFF = 0, GUARD_INPUT_FLAG, GUARD_INPUT_BLOCK } guard_input_action;
typedef enum guard_output_action {
    GUARD_OUTPUT_OFF = 0, GUARD_OUTPUT_FLAG, GUARD_OUTPUT_SPOTLIGHT, GUARD_OUTPUT_DROP
} guard_output_action;
typedef enum guard_taint_action {
    GUARD_TAINT_ALLOW = 0, GUARD_TAINT_APPROVE, GUARD_TAINT_REFUSE
} guard_taint_action;
/* Personal data (util/pii.h) in what the model is sent or answers: off,
 * flag (a guard.flagged event with the kinds, never the values), or redact
 * (replaced by [EMAIL], [CARD], …, and flagged). */
typedef enum guard_pii_action { GUARD_PII_OFF = 0, GUARD_PII_FLAG, GUARD_PII_REDACT } guard_pii_action;
typedef struct agent_guard_cfg {
    guard_input_action  user_input;     /* a flagged user message (default flag) */
    guard_output_action tool_output;    /* a flagged tool output (default flag) */
    guard_taint_action  tainted_tools;  /* effects write|external once tool output is in the
                                         * context (default allow) */
    bool                exfiltration;   /* block data bound for a URL (default false) */
    guard_pii_action    pii_input;      /* user messages and tool output sent to the model
                                         * (default off) */
    guard_pii_action    pii_output;     /* the model's answers (default off) */
} agent_guard_cfg;

/* The detectors (`guard:` at the top of the file; docs/guard.md). */
typedef struct guard_cfg {
    char    *rules;                     /* pattern rule file; NULL = no pattern detector */
    char    *classifier;                /* classifier weights; NULL = no classifier */
    double   threshold_patterns;        /* default 0.5 */
    double   threshold_user;            /* classifier, user channel (default 0.5) */
    double   threshold_tool;            /* classifier, tool channel (default 0.5) */
    char    *remote_url;                /* remote classifier (POST); NULL = none */
    uint32_t remote_timeout_ms;         /* default 2000 */
    bool     remote_fail_closed;        /* on error: flag (true) or pass (false, default) */
    double   threshold_remote;          /* default 0.5 */
    uint32_t decisions_retention_days;  /* guard.decisions.retention_days (default 90; 0 = no
                                           age bound) */
    uint32_t decisions_max_per_tenant;  /* guard.decisions.max_per_tenant (default 100000;
                                           0 = no count bound) */
} guard_cfg;

/* An agent (`agents:` in the file): what a session talks to. */
typedef struct agent_cfg {
    char      *name;                 /* [a-zA-Z0-9_.-]{1,64} */
    char      *description;
    char      *model_name;
    const model_cfg *model;          /* resolved */
    char      *system_prompt;        /* may be NULL */
    char     **tools;                /* "memory", "clock", or names of declared tools */
    size_t     n_tools;
    char     **tiers;                /* tiers allowed to use it; none = every tier */
    size_t     n_tiers;
    uint32_t   max_steps;            /* model calls per run (default 8) */
    uint32_t   max_tool_calls;       /* tool calls per run (default 16) */
    uint32_t   max_wall_ms;          /* wall time per run (default 120000) */
    uint32_t   max_output_tokens;    /* per model call (default: the model's max_output_tokens) */
    uint32_t   context_tokens;       /* budget of the context sent to the model
                                      * (default min(model context_window, 16000)) */
    uint32_t   max_tool_output_bytes;/* tool output is cut to this before the model sees it
                                      * (default 16384) */
    uint32_t   max_repeated_tool_calls; /* the same tool with the same arguments, this many
                                      * times in one run, fails it (default 3) */
    double     max_cost_usd_per_run; /* 0 = no cap */
    double     max_cost_usd_per_session; /* 0 = no cap */
    /* Graceful degradation: when the user's daily or monthly budget is at
     * least degrade_threshold spent, model calls go to degrade_model. */
    char      *degrade_model_name;   /* NULL = off */
    const model_cfg *degrade_model;  /* resolved */
    double     degrade_threshold;    /* fraction of a budget, (0, 1] (default 0.9) */
    approval_by approval_by;         /* who decides its runs' approvals (default any) */
    bool       tenants_enable;       /* as tool_cfg.tenants_enable */
    agent_guard_cfg guard;           /* `guard:` */
} agent_cfg;

struct brigade_config;

/* `mcp_servers:` — MCP servers whose tools agents may use, named
 * SERVER__TOOL (docs/mcp.md). A stdio server is a program brigade starts
 * (per user by default, in its own working directory under data_dir); an
 * http server is reached over the streamable HTTP transport. */
typedef enum mcp_transport_kind { MCP_TRANSPORT_STDIO = 1, MCP_TRANSPORT_HTTP } mcp_transport_kind;

typedef struct mcp_server_cfg {
    char      *name;                 /* [a-zA-Z0-9-]{1,32}: no "_", so SERVER__TOOL splits once */
    mcp_transport_kind transport;
    /* stdio */
    char      *command;              /* the program (a path, or a name looked up in PATH) */
    char     **args;     size_t n_args;
    char     **env_names;            /* the child's whole environment, with PATH: */
    char     **env_values;           /*   nothing of brigade's own is passed on */
    size_t     n_env;
    char      *cwd;                  /* NULL: the instance's own directory under data_dir
                                      * (unsandboxed servers only) */
    /* stdio: the sandbox (docs/sandbox.md, `sandbox:` of the server) */
    bool       sandbox;              /* default true; false: the operator's explicit opt-out */
    bool       sandbox_network;      /* the machine's network granted (default false) */
    char     **sandbox_read_only;    /* host paths shown read-only inside, beside those */
    size_t     n_sandbox_read_only;  /*   found from command and args (docs/mcp.md) */
    command_limits_cfg sandbox_limits; /* 0 = the MCP defaults (docs/config.md) */
    /* http */
    char      *url;
    char     **header_names; char **header_values; size_t n_headers;
    bool       per_user;             /* one instance per (server, user); default true for stdio */
    bool       allow_private_networks; /* http: egress may reach loopback/private networks
                                      * (operator only, docs/egress.md); default false */
    char     **tools;    size_t n_tools;  /* allow-list of the server's tool names; none = all */
    uint32_t   startup_timeout_ms;   /* start + initialize + tools/list (default 30000) */
    uint32_t   call_timeout_ms;      /* one tools/call (default 60000) */
    uint32_t   idle_timeout_s;       /* an instance unused this long is stopped (default 600) */
    uint32_t   ping_interval_s;      /* an idle ready instance is pinged this often; no answer
                                      * within min(call_timeout_ms, 10 s): restarted on next
                                      * use (default 60; 0 = never) */
    uint32_t   max_instances;        /* running instances of this server; the least recently
                                      * used is stopped for a new one (default 32) */
    bool       tenants_enable;       /* as tool_cfg.tenants_enable: `tenants: enable` */
    /* `approval:` and `approval_timeout_s` for every call of the server's
     * tools, as a tool's (docs/tools.md "Approvals"): only those fields of
     * this tool_cfg are set. NULL: never. */
    tool_cfg  *approval;
    /* A tenant's own server (POST /v1/mcp-servers): the JSON it was read
     * from, which the MCP hub reads again to key and open the tenant's
     * instances; NULL for a server of the configuration. */
    char      *tenant_def;
    /* `auth: {kind: oauth, …}` (http only; docs/mcp.md "MCP authorization"):
     * each user authorizes brigade at the server's own authorization server
     * (discovered from its 401) and the server gets that user's token.
     * client_id / client_secret (from client_secret_env): a pre-registered
     * client, the operator's only; without one, dynamic registration. */
    bool       oauth;
    char      *oauth_client_id;
    char      *oauth_client_secret;
    char     **oauth_scopes;  size_t n_oauth_scopes;   /* asked for when the server names none */
    uint32_t   oauth_timeout_s;      /* a run waits this long for the user's consent (default 600) */
} mcp_server_cfg;

/* The separator of SERVER__TOOL, and the agent tool name that means every
 * tool of a server (its allow-list applies): SERVER__* */
#define CONFIG_MCP_SEP "__"
void config_mcp_server_free(mcp_server_cfg *m);
const mcp_server_cfg *config_find_mcp_server(const struct brigade_config *cfg, const char *name);
/* If `tool` is SERVER__NAME of a configured server: that server, and
 * *tool_name points at NAME inside `tool` ("*" for every tool). */
const mcp_server_cfg *config_mcp_tool_server(const struct brigade_config *cfg, const char *tool,
                                             const char **tool_name);
/* `console:` (docs/console.md): the web console at /ui/ and its sign-in
 * sessions. */
typedef struct console_cfg {
    bool     enabled;                /* default true */
    uint32_t session_ttl_s;          /* idle lifetime of a sign-in, sliding (default 1800) */
    uint32_t max_sessions;           /* the session table's bound (default 1024) */
} console_cfg;

/* `store:` (docs/config.md): where the data lives. */
/* the same values as store.h store_backend_kind (app/serve.c converts by value) */
typedef enum store_cfg_kind { STORE_CFG_SQLITE = 0, STORE_CFG_POSTGRES = 1 } store_cfg_kind;
typedef struct store_cfg {
    store_cfg_kind kind;             /* default sqlite (in data_dir) */
    char          *url;              /* postgres: libpq URI, ${VAR} expanded; NULL for sqlite */
    uint32_t       pool_size;        /* postgres: connections (default 8) */
} store_cfg;

typedef struct brigade_config {
    char        *source_path;        /* the file read, or NULL for embedded defaults */
    char        *listen_host;        /* default "127.0.0.1" */
    int          listen_port;        /* default 8080 */
    char        *data_dir;           /* default "./brigade-data" */
    char        *admin_token;        /* server admin token (BRIGADE_ADMIN_TOKEN if unset) */
    unsigned     threads;            /* loop threads, default = CPUs */
    http_limits  limits;             /* server.limits.* */
    uint32_t     request_timeout_ms; /* gateway deadline of a call, retries and fallbacks included (default 120000) */
    uint32_t     max_request_timeout_ms; /* cap of a client's x-brigade-timeout-ms (default 600000) */
    uint32_t     max_choices;        /* the most "n" a chat completion may ask for (default 8) */
    uint32_t     history_cache_mb;   /* sessions' recent messages kept between runs (default 64; 0 = off) */
    provider_cfg *providers;  size_t n_providers;
    model_cfg    *models;     size_t n_models;
    tier_cfg     *tiers;      size_t n_tiers;
    char        *default_tier;       /* default "default" (a tier of that name always exists) */
    tool_cfg     *tools;      size_t n_tools;    /* declared HTTP and command tools */
    /* `sandbox:` (docs/sandbox.md): where command tools run */
    struct {
        bool  allow_unsandboxed;     /* run them without namespaces where bwrap cannot */
        char *bwrap;                 /* path of bwrap (default: /usr/bin/bwrap or PATH) */
        char *helper;                /* brigade-sandbox-init (default: next to brigade) */
    } sandbox;
    credential_provider_cfg *credential_providers; size_t n_credential_providers;
    char        *public_url;         /* server.public_url: base of redirect_uri and connect_url
                                      * (default http://LISTEN_HOST:LISTEN_PORT) */
    agent_cfg    *agents;     size_t n_agents;
    mcp_server_cfg *mcp_servers; size_t n_mcp_servers;
    governance_cfg governance;
    obs_cfg      observability;
    /* `egress.allow_networks`: networks every request made for an agent
     * may reach although they are private (docs/egress.md). */
    egress_net  *egress_allow_nets; size_t n_egress_allow_nets;
    guard_cfg    guard;
    console_cfg  console;
    store_cfg    store;
    /* Non-fatal findings of the load (e.g. a literal api_key in the file),
     * each "FILE:LINE: key.path: message". They are also logged with
     * log_warn when found, so callers need not print them again. */
    char        **warnings;   size_t n_warnings;
} brigade_config;

/* Fill with the embedded defaults (mock provider, models "mock-small" and
 * "mock-large", tier "default", agent "assistant" on mock-small with the
 * memory and clock tools). `cfg` is overwritten, not freed first.
 * Aborts on out-of-memory (start-up only). */
void config_defaults(brigade_config *cfg);

/* Read and validate a YAML file on top of the defaults. Returns 0, or -1
 * with err = "FILE:LINE: key.path: what is wrong".
 * `cfg` is output only: it is overwritten (config_defaults is applied
 * internally, so do not call it first — that would leak). On success free
 * it with config_free; on failure it is left zeroed (config_free is a no-op). */
int  config_load_file(const char *path, brigade_config *cfg, char *err, size_t errlen);

/* Same, from a string (tests); `name` is used in messages. */
int  config_load_string(const char *name, const char *yaml, size_t len, brigade_config *cfg,
                        char *err, size_t errlen);

/* Frees everything and zeroes *cfg; safe on a zeroed struct and twice. */
void config_free(brigade_config *cfg);

/* Parse "HOST:PORT" / "[IPv6]:PORT" (what `listen:` and `--listen` take).
 * HOST must be an IPv4 or bracketed IPv6 literal; PORT 0..65535 (0 = any
 * free port). On success *host is malloc'd (without brackets). Returns 0,
 * or -1 with a message (no file/line prefix) in err. */
int  config_parse_listen(const char *s, char **host, int *port, char *err, size_t errlen);

const model_cfg *config_find_model(const brigade_config *cfg, const char *name);
const tier_cfg  *config_find_tier(const brigade_config *cfg, const char *name);
/* Free a provider's strings (one made at run time: the vault's, for an MCP
 * server's authorization server). */
void config_credential_provider_free(credential_provider_cfg *p);
const credential_provider_cfg *config_find_credential_provider(const brigade_config *cfg,
                                                               const char *name);
const agent_cfg *config_find_agent(const brigade_config *cfg, const char *name);
const tool_cfg  *config_find_tool(const brigade_config *cfg, const char *name);
/* A tenant's own tool or agent, from a JSON body of the API
 * (config_tenant.c): read by the same readers as the file's `tools:` and
 * `agents:` entries, so both are held to the same rules, except that a
 * body never reads the server's environment (`${VAR}` stays literal text)
 * and may not say `tenants:`. `known` tells whether an agent may list a
 * tool name (the tenant's own, enabled catalogue tools, the built-ins).
 * Returns 0, or -1 with err = "KEY.PATH: what is wrong". Free the result
 * with config_tool_free / config_agent_free. */
typedef bool (*config_tool_known_fn)(void *arg, const char *name);
int  config_tool_from_json(const brigade_config *cfg, const char *json, size_t len, tool_cfg *out,
                           char *err, size_t errlen);
int  config_agent_from_json(const brigade_config *cfg, const char *json, size_t len,
                            config_tool_known_fn known, void *known_arg, agent_cfg *out,
                            char *err, size_t errlen);
void config_tool_free(tool_cfg *t);
void config_agent_free(agent_cfg *a);
/* A tenant's own MCP server (POST /v1/mcp-servers): transport http only;
 * what runs a program or reaches private networks is refused, naming the
 * key. out->tenant_def keeps a copy of the JSON. Free with
 * config_mcp_server_free. */
int  config_mcp_server_from_json(const brigade_config *cfg, const char *json, size_t len,
                                 mcp_server_cfg *out, char *err, size_t errlen);
/* A tenant's server's startup_timeout_ms: its default and its bound. */
#define MCP_TENANT_STARTUP_MAX_MS 10000

/* May a user of this tier use this agent? */
bool             config_agent_allows_tier(const agent_cfg *a, const char *tier);

/* Cost in nano-USD of a call, from the model's price table:
 * input_tokens × input_usd_per_mtok × 1000 + output_tokens × output_usd_per_mtok × 1000
 * (1 USD per million tokens = 1000 nano-USD per token), summed in double
 * precision and rounded once to the nearest integer (halves away from zero).
 * Negative token counts count as 0; NULL m gives 0; saturates at INT64_MAX. */
int64_t config_cost_nusd(const model_cfg *m, int64_t input_tokens, int64_t output_tokens);

#endif
