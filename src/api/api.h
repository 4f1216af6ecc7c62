/* api.h — the HTTP API's handlers and what they share.
 *
 * Every route of docs/api.md is an `api_route` (routes.c): who may call it (a
 * set of roles; none = public) and its handler. api_begin() runs the common
 * front half for all of them — authentication from the identity cache (with
 * JWT subject provisioning deferred to the thread pool), the role check,
 * then the handler:
 *
 *   - `work` handlers do blocking store work. They run on the libuv thread
 *     pool, fill ctx with a JSON response or an error, and api_finish()
 *     sends it from the loop thread. They never touch the connection.
 *   - `run` handlers stay on the loop (the gateway path, health) and answer
 *     the request themselves.
 *
 * Handlers get the caller's scope from authentication (ctx->scope) and pass
 * it to the store; none takes a user id from a body to read data. They reach
 * the server through ctx->env (api_env: configuration, store, identity,
 * tools, runs, governance, counters) and their loop through ctx->thread
 * (api_thread), never through the app that wires them (app.h includes this
 * header, not the reverse). */
#ifndef BRIGADE_API_H
#define BRIGADE_API_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "console/console_session.h"
#include "govern/gate.h"
#include "http/http.h"
#include "identity/identity.h"
#include "obs/obs.h"
#include "runs/runs.h"
#include "store/store.h"
#include "tools/tool_tenant.h"
#include "tools/tools.h"
#include "upstream/upstream.h"
#include "vault/vault.h"

#define ROLE_BIT(r) (1u << (r))
#define ROLES_SERVER_ADMIN ROLE_BIT(SCOPE_SERVER_ADMIN)
#define ROLES_TENANT_ADMIN ROLE_BIT(SCOPE_TENANT_ADMIN)
#define ROLES_USER         ROLE_BIT(SCOPE_USER)
#define ROLES_ANY          (ROLES_SERVER_ADMIN | ROLES_TENANT_ADMIN | ROLES_USER)

/* The server's request counters: kept by the API and the server's
 * request-done hook, read by /metrics. */
typedef struct api_metrics {
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t responses_2xx, responses_4xx, responses_5xx;
    atomic_uint_fast64_t auth_failures;
} api_metrics;

/* What a handler may reach of the running server: built once by `brigade
 * serve` (the app holds it) and shared by the loop threads. */
typedef struct api_env {
    brigade_config cfg;
    store         *store;
    identity      *identity;
    tool_registry *tools;            /* built-in and declared tools */
    runs          *runs;             /* every active agent run */
    gate          *gate;             /* governance: budgets, rate limits, fair queue */
    vault         *vault;            /* users' own credentials for tools (src/vault/) */
    console_sessions *console;       /* the web console's sign-ins (NULL: console off) */
    api_metrics    metrics;
    int64_t        started_at;
} api_env;

/* One loop thread's own part (its loop and its upstream client), reached
 * from a request as req->thread_data. */
typedef struct api_thread {
    api_env     *env;
    uv_loop_t   *loop;
    upstream    *upstream;
    runs_thread *runs;               /* this loop's part of the run registry */
    gate_thread *gate;               /* this loop's fair-queue inbox */
    unsigned     index;
} api_thread;

static inline api_thread *api_thread_of(http_request *req) { return req->thread_data; }

typedef struct api_ctx api_ctx;

typedef struct api_route {
    const char *method;
    const char *pattern;
    unsigned    roles;                 /* 0 = no authentication */
    void      (*work)(api_ctx *ctx);   /* blocking: thread pool */
    void      (*run)(api_ctx *ctx);    /* on the loop: must answer req itself */
    unsigned    flags;                 /* API_ROUTE_* */
} api_route;

/* A route of Anthropic's API (/v1/messages): its clients send the key as
 * `x-api-key` (taken when there is no Authorization header), and read
 * errors in Anthropic's shape, {"type":"error","error":{"type","message"}}
 * (the same statuses and retry-after). */
#define API_ROUTE_ANTHROPIC 1u
/* The console's own session endpoint (GET /ui/api/session): a console
 * session cookie authenticates it without the CSRF header, because it is
 * where the page learns that token (a cross-site page cannot read the
 * answer). Every other route needs cookie + header. */
#define API_ROUTE_CONSOLE_SESSION 2u

struct api_ctx {
    http_request    *req;
    api_env         *env;
    api_thread      *thread;
    const api_route *route;
    scope            scope;            /* from authentication (zeroed if public) */
    auth_pending     pending;

    /* the answer a `work` handler prepares (api_finish sends it) */
    int    status;
    char  *body;                       /* malloc'd JSON; NULL with status 204 */
    size_t body_len;
    bool   is_error;
    const char *err_type, *err_code;
    char   err_message[384];
    char   err_param[128];
    char   retry_after[16];            /* Retry-After value for 429/503, if any */
    void  *handler_state;              /* a `run` handler's own state */
    const char *content_type;          /* of body; NULL = application/json (api_reply_text) */

    /* tracing (api_core.c): the request's server span — parent of every
     * span the handler makes: obs_span_begin(obs_span_ctx(ctx->span), …) —
     * and its trace id in hex (for logs and records). span is NULL for
     * untraced routes (the public probes). */
    obs_span *span;
    obs_span *auth_span;               /* open while authentication is pending */
    char      trace_id[OBS_TRACE_ID_HEX];
    /* the console session that authenticated this request ("" when the
     * credential came in a header) */
    char      console_sid[CONSOLE_SESSION_ID_HEX + 1];
};

/* --- the web console (console_routes.c) --- */
void api_console_redirect(api_ctx *ctx);      /* GET /ui → /ui/ */
void api_console_index(api_ctx *ctx);         /* GET /ui/ */
void api_console_asset(api_ctx *ctx);         /* GET /ui/{file} */
void api_console_login(api_ctx *ctx);         /* POST /ui/api/session */
void api_console_whoami(api_ctx *ctx);        /* GET /ui/api/session */
void api_console_logout(api_ctx *ctx);        /* DELETE /ui/api/session */
void api_metrics_recent(api_ctx *ctx);        /* GET /v1/metrics/recent */
/* --- a tenant admin's live runs (live_runs.c) --- */
void api_runs_list_live(api_ctx *ctx);        /* GET /v1/runs */
void api_runs_cancel_as_admin(api_ctx *ctx);  /* POST /v1/runs/{id}/cancel, tenant admin */
/* On a public route (no authentication ran): the credential of the
 * console session this request names with its cookie AND its CSRF token,
 * copied into out; NULL otherwise. For /readyz, whose details are the
 * server admin's. */
const char *api_console_session_credential(api_ctx *ctx, char *out, size_t cap);
/* The headers every console response carries (CSP, framing, sniffing,
 * referrer). */
void api_console_headers(http_request *req);

/* Register every route of the API on the router. */
void api_register_routes(http_router *r);

/* The front half of every route (see above). */
void api_begin(http_request *req, const api_route *route);
/* Every finished request (the server's on_request_done): ends the request
 * span and counts the request by route and status. */
void api_request_done(http_request *req, int status);
/* A child span of the request's span, owned by the caller's scope (a new
 * trace if the route is untraced). End it with obs_span_end. Work that
 * outlives the request (a run) keeps a copy of *obs_span_ctx(ctx->span)
 * and begins its spans from that. */
obs_span *api_span_begin(api_ctx *ctx, const char *name, obs_span_kind kind);

/* --- answering, from `work` handlers (and `run` ones via api_send) --- */

/* Take ownership of `json` and make it the response. */
void api_reply(api_ctx *ctx, int status, cJSON *json);
/* Take ownership of `text` (malloc'd) and send it as `content_type`. */
void api_reply_text(api_ctx *ctx, int status, const char *content_type, char *text);
/* An error in the OpenAI envelope; `param` may be NULL. */
void api_fail(api_ctx *ctx, int status, const char *type, const char *code,
              const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Map a store status to the right HTTP error ("user not found", …). */
void api_fail_store(api_ctx *ctx, store_status st, const char *what);
/* Send what ctx holds now (for `run` handlers). */
void api_send(api_ctx *ctx);

/* --- request bodies --- */

/* Parse the body as a JSON object: invalid UTF-8, invalid JSON, a non-object
 * or (if `allowed` is non-NULL, a NULL-terminated list) an unknown field is
 * a 400 with `param` naming the field. Returns NULL after api_fail. The
 * caller frees the result with cJSON_Delete. An empty body is `{}` when
 * `empty_ok`. */
cJSON *api_body_object(api_ctx *ctx, const char *const *allowed, bool empty_ok);

/* Field readers: false after api_fail on a wrong type, a missing required
 * field, or a string that is empty or longer than max (bytes). A missing
 * optional field leaves *out untouched and returns true. */
bool api_field_string(api_ctx *ctx, const cJSON *obj, const char *name, bool required,
                      size_t max, char *out, size_t outlen, bool *present);
bool api_field_bool(api_ctx *ctx, const cJSON *obj, const char *name, bool *out, bool *present);

/* Query parameters: integer in [min, max] (false after api_fail). */
bool api_query_int(api_ctx *ctx, const char *name, long long min, long long max,
                   long long *out, bool *present);

/* --- JSON shapes shared by several handlers (json_out.c) --- */

cJSON *api_json_tenant(const api_env *env, const tenant_rec *t);
cJSON *api_json_user(const api_env *env, const user_rec *u);
cJSON *api_json_key(const key_rec *k);
cJSON *api_json_limits(const api_env *env, const char *tier, const user_limits *over);
/* limits.c: a request's `limits` object applied over *inout (fields absent
 * stay, null = -1 "configured value"); false after answering 400. */
bool   api_parse_limits(api_ctx *ctx, const cJSON *limits, bool allow_concurrency,
                        user_limits *inout);
/* Effective limits (override, else base; unlimited = null) as JSON. */
cJSON *api_json_limits_over(const tier_cfg *base, const user_limits *over, bool with_concurrency);
/* A budget period as governance has it now: spent, reserved, budget
 * (JSON number or null), remaining, resets_at. */
struct govern_period;
cJSON *api_json_budget_period(const struct govern_period *p, const cJSON *budget);
/* The caller's budgets (a user's own; a tenant admin's: the tenant's), for
 * /v1/usage; NULL for the server admin or on a store error. */
cJSON *api_json_budget(api_ctx *ctx);
double api_usd(int64_t nusd);
cJSON *api_json_list(cJSON *data_array, bool has_more);
/* usage.c: usage rows as CSV (RFC 4180, CRLF lines, a header line first);
 * with tenant_id non-NULL a leading "tenant_id" column. malloc'd. Also
 * `brigade usage`'s output, so the two always agree. */
char  *api_usage_csv(const usage_row *rows, size_t n, const char *tenant_id, bool header);
cJSON *api_usage_json_row(const usage_row *r);
/* usage.c: a time bound, unix seconds or a UTC date YYYY-MM-DD; -1 if neither. */
int64_t api_usage_parse_time(const char *v);

/* --- handlers (one file each) --- */

void api_tenants_create(api_ctx *ctx);
void api_tenants_list(api_ctx *ctx);
void api_tenants_patch(api_ctx *ctx);
void api_admin_keys_create(api_ctx *ctx);
void api_admin_keys_list(api_ctx *ctx);
void api_admin_keys_revoke(api_ctx *ctx);
void api_users_create(api_ctx *ctx);
void api_users_list(api_ctx *ctx);
void api_users_get(api_ctx *ctx);
void api_users_patch(api_ctx *ctx);
void api_users_delete(api_ctx *ctx);
void api_keys_create(api_ctx *ctx);
void api_keys_list(api_ctx *ctx);
void api_keys_revoke(api_ctx *ctx);
void api_me_get(api_ctx *ctx);
void api_usage_get(api_ctx *ctx);
void api_models_list(api_ctx *ctx);
void api_health_live(api_ctx *ctx);
void api_health_ready(api_ctx *ctx);
void api_metrics_get(api_ctx *ctx);
void api_traces_get(api_ctx *ctx);      /* GET /v1/traces/{trace_id} (traces.c) */
/* the audit log (audit_routes.c) */
void api_audit_list(api_ctx *ctx);
/* users' own credentials (connections.c) and the browser side of consent
 * (oauth_routes.c) */
void api_connections_list(api_ctx *ctx);    /* GET /v1/connections */
void api_connections_create(api_ctx *ctx);  /* POST /v1/connections */
void api_connections_delete(api_ctx *ctx);  /* DELETE /v1/connections/{id} */
void api_oauth_start(api_ctx *ctx);         /* GET /oauth/start (public) */
void api_oauth_callback(api_ctx *ctx);      /* GET /oauth/callback (public) */      /* GET /v1/audit?from=&to=&actor=&action=&tenant=&limit=&after= */
void api_audit_verify(api_ctx *ctx);    /* GET /v1/audit/verify */
/* the guard's decisions (guard_decisions.c) */
void api_guard_decisions_list(api_ctx *ctx); /* GET /v1/guard/decisions?user=&run=&action=&channel=&from=&to=&limit=&cursor=&tenant= */
void api_guard_summary(api_ctx *ctx);        /* GET /v1/guard/summary?from=&to=&user=&tenant= */
/* A 401 is prepared in ctx: record it as auth.failure (at most one entry per
 * source address a second; never the secret), then send it. On the loop. */
void api_audit_auth_failure(api_ctx *ctx, const char *code);
void api_chat_completions(api_ctx *ctx);
/* the OpenAI Responses API (responses.c) */
void api_responses_create(api_ctx *ctx);   /* POST /v1/responses */
void api_responses_get(api_ctx *ctx);      /* GET /v1/responses/{id} */
void api_responses_delete(api_ctx *ctx);   /* DELETE /v1/responses/{id} */
/* the client APIs on the chat path (client_routes.c) */
void api_messages(api_ctx *ctx);              /* POST /v1/messages: Anthropic Messages inbound */
void api_completions(api_ctx *ctx);           /* POST /v1/completions: legacy text completions */
void api_embeddings(api_ctx *ctx);            /* POST /v1/embeddings */
/* x-ratelimit-* headers of the OpenAI form, added to the response
 * (ratelimit_headers.c). */
void api_add_ratelimit_headers(http_request *req, const govern_ratelimit_info *rl);
/* agents and their sessions (agents.c, sessions.c, runs.c) */
void api_approvals_list(api_ctx *ctx);     /* GET /v1/approvals (approvals.c) */
void api_approvals_decide(api_ctx *ctx);   /* POST /v1/runs/{id}/approvals/{call_id} */
cJSON *api_json_approval(const approval_rec *a);
void api_agents_list(api_ctx *ctx);
/* a tenant's own tools and agents, and the catalogue entries it enables
 * (tenant_defs.c) */
cJSON *api_json_agent(const agent_cfg *a);
void api_tools_list(api_ctx *ctx);
void api_tools_create(api_ctx *ctx);
void api_tools_get(api_ctx *ctx);
void api_tools_patch(api_ctx *ctx);
void api_tools_delete(api_ctx *ctx);
void api_agents_admin_list(api_ctx *ctx);
void api_agents_create(api_ctx *ctx);
void api_agents_get(api_ctx *ctx);
void api_agents_patch(api_ctx *ctx);
void api_agents_delete(api_ctx *ctx);
void api_mcp_servers_list(api_ctx *ctx);
void api_mcp_servers_create(api_ctx *ctx);
void api_mcp_servers_get(api_ctx *ctx);
void api_mcp_servers_patch(api_ctx *ctx);
void api_mcp_servers_delete(api_ctx *ctx);
void api_sessions_create(api_ctx *ctx);
void api_sessions_list(api_ctx *ctx);
void api_sessions_get(api_ctx *ctx);
void api_sessions_delete(api_ctx *ctx);
void api_messages_list(api_ctx *ctx);
void api_messages_post(api_ctx *ctx);
void api_runs_get(api_ctx *ctx);
void api_runs_cancel(api_ctx *ctx);
void api_run_events(api_ctx *ctx);            /* GET /v1/runs/{id}/events (run_events.c) */
/* … for a run this process keeps no events of, the caller's (rec, read
 * from the store): its events from Redis when several instances share one
 * (run_events_remote.c). false: no Redis here, or too many readers — the
 * caller answers the stored state. */
bool api_run_events_remote(api_ctx *ctx, const run_rec *rec, uint64_t after);

/* run_answer.c: runs told to the client — a message's run as an SSE stream
 * or a JSON answer, a cancel's answer — and the API's JSON of runs. */
void   api_run_post(api_ctx *ctx, const char *session_id, const char *content, bool stream,
                    runs_if_busy if_busy);
void   api_run_cancel(api_ctx *ctx, const char *run_id);
cJSON *api_json_run(const run_rec *run);
cJSON *api_json_message(const message_rec *m);
/* the user's long-term memory (memory.c) */
void api_memory_search(api_ctx *ctx);   /* GET /v1/memory?q=&limit= */
void api_memory_get(api_ctx *ctx);      /* GET /v1/memory/{key} */
void api_memory_put(api_ctx *ctx);      /* PUT /v1/memory/{key} {"value": "…"} */
void api_memory_delete(api_ctx *ctx);   /* DELETE /v1/memory/{key} */

#endif
