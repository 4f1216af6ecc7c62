/* routes.c — the table of every HTTP route: method, path, who may call it,
 * and its handler. This is the one place to look to see the API's surface
 * and its permissions. */
#include "api/api.h"

#define R(m, p, roles, work, run) {m, p, roles, work, run, 0}
#define R_FLAGS(m, p, roles, work, run, flags) {m, p, roles, work, run, flags}

static const api_route api_routes[] = {
    R("GET",    "/healthz",                 0,                  NULL, api_health_live),
    R("GET",    "/readyz",                  0,                  api_health_ready, NULL),
    R("GET",    "/metrics",                 ROLES_SERVER_ADMIN, NULL, api_metrics_get),

    R("POST",   "/v1/tenants",              ROLES_SERVER_ADMIN, api_tenants_create, NULL),
    R("GET",    "/v1/tenants",              ROLES_SERVER_ADMIN, api_tenants_list, NULL),
    R("PATCH",  "/v1/tenants/{id}",         ROLES_SERVER_ADMIN | ROLES_TENANT_ADMIN,
                                                                api_tenants_patch, NULL),
    R("POST",   "/v1/tenants/{id}/admin-keys", ROLES_SERVER_ADMIN | ROLES_TENANT_ADMIN,
                                                                api_admin_keys_create, NULL),
    R("GET",    "/v1/tenants/{id}/admin-keys", ROLES_SERVER_ADMIN | ROLES_TENANT_ADMIN,
                                                                api_admin_keys_list, NULL),
    R("DELETE", "/v1/tenants/{id}/admin-keys/{key_id}", ROLES_SERVER_ADMIN | ROLES_TENANT_ADMIN,
                                                                api_admin_keys_revoke, NULL),

    R("POST",   "/v1/users",                ROLES_TENANT_ADMIN, api_users_create, NULL),
    R("GET",    "/v1/users",                ROLES_TENANT_ADMIN, api_users_list, NULL),
    R("GET",    "/v1/users/{id}",           ROLES_TENANT_ADMIN | ROLES_USER, api_users_get, NULL),
    R("PATCH",  "/v1/users/{id}",           ROLES_TENANT_ADMIN, api_users_patch, NULL),
    R("DELETE", "/v1/users/{id}",           ROLES_TENANT_ADMIN, api_users_delete, NULL),
    R("POST",   "/v1/users/{id}/keys",      ROLES_TENANT_ADMIN, api_keys_create, NULL),
    R("GET",    "/v1/users/{id}/keys",      ROLES_TENANT_ADMIN | ROLES_USER, api_keys_list, NULL),
    R("DELETE", "/v1/keys/{id}",            ROLES_TENANT_ADMIN | ROLES_USER, api_keys_revoke, NULL),

    R("GET",    "/v1/me",                   ROLES_USER,         api_me_get, NULL),
    R("GET",    "/v1/usage",                ROLES_TENANT_ADMIN | ROLES_USER, api_usage_get, NULL),
    R("GET",    "/v1/audit",                ROLES_SERVER_ADMIN | ROLES_TENANT_ADMIN, api_audit_list, NULL),
    R("GET",    "/v1/audit/verify",         ROLES_SERVER_ADMIN | ROLES_TENANT_ADMIN, api_audit_verify, NULL),
    R("GET",    "/v1/guard/decisions",      ROLES_SERVER_ADMIN | ROLES_TENANT_ADMIN | ROLES_USER,
                                                                api_guard_decisions_list, NULL),
    R("GET",    "/v1/guard/summary",        ROLES_SERVER_ADMIN | ROLES_TENANT_ADMIN | ROLES_USER,
                                                                api_guard_summary, NULL),
    R("GET",    "/v1/traces/{trace_id}",    ROLES_TENANT_ADMIN | ROLES_USER, api_traces_get, NULL),
    R("GET",    "/v1/models",               ROLES_ANY,          NULL, api_models_list),
    R("POST",   "/v1/chat/completions",     ROLES_USER,         NULL, api_chat_completions),
    R("POST",   "/v1/responses",            ROLES_USER,         NULL, api_responses_create),
    R("GET",    "/v1/responses/{id}",       ROLES_USER,         api_responses_get, NULL),
    R("DELETE", "/v1/responses/{id}",       ROLES_USER,         api_responses_delete, NULL),
    R("POST",   "/v1/completions",          ROLES_USER,         NULL, api_completions),
    R("POST",   "/v1/embeddings",           ROLES_USER,         NULL, api_embeddings),
    R_FLAGS("POST", "/v1/messages",         ROLES_USER,         NULL, api_messages, API_ROUTE_ANTHROPIC),

    R("GET",    "/v1/agents",               ROLES_USER | ROLES_TENANT_ADMIN, api_agents_list, NULL),
    R("POST",   "/v1/sessions",             ROLES_USER,         api_sessions_create, NULL),
    R("GET",    "/v1/sessions",             ROLES_USER,         api_sessions_list, NULL),
    R("GET",    "/v1/sessions/{id}",        ROLES_USER,         api_sessions_get, NULL),
    R("DELETE", "/v1/sessions/{id}",        ROLES_USER,         api_sessions_delete, NULL),
    R("GET",    "/v1/sessions/{id}/messages", ROLES_USER,       api_messages_list, NULL),
    R("POST",   "/v1/sessions/{id}/messages", ROLES_USER,       NULL, api_messages_post),
    R("GET",    "/v1/runs/{id}",            ROLES_USER,         api_runs_get, NULL),
    R("GET",    "/v1/runs/{id}/events",     ROLES_USER,         NULL, api_run_events),
    R("POST",   "/v1/runs/{id}/cancel",     ROLES_USER | ROLES_TENANT_ADMIN, NULL, api_runs_cancel),
    R("POST",   "/v1/runs/{id}/approvals/{call_id}", ROLES_USER | ROLES_TENANT_ADMIN,
                                                                api_approvals_decide, NULL),
    R("GET",    "/v1/approvals",            ROLES_USER | ROLES_TENANT_ADMIN, api_approvals_list, NULL),

    R("GET",    "/v1/memory",               ROLES_USER,         api_memory_search, NULL),
    R("GET",    "/v1/memory/{key}",         ROLES_USER,         api_memory_get, NULL),
    R("PUT",    "/v1/memory/{key}",         ROLES_USER,         api_memory_put, NULL),
    R("DELETE", "/v1/memory/{key}",         ROLES_USER,         api_memory_delete, NULL),

    R("GET",    "/v1/tools",                ROLES_TENANT_ADMIN, api_tools_list, NULL),
    R("POST",   "/v1/tools",                ROLES_TENANT_ADMIN, api_tools_create, NULL),
    R("GET",    "/v1/tools/{name}",         ROLES_TENANT_ADMIN, api_tools_get, NULL),
    R("PATCH",  "/v1/tools/{name}",         ROLES_TENANT_ADMIN, api_tools_patch, NULL),
    R("DELETE", "/v1/tools/{name}",         ROLES_TENANT_ADMIN, api_tools_delete, NULL),
    R("POST",   "/v1/agents",               ROLES_TENANT_ADMIN, api_agents_create, NULL),
    R("GET",    "/v1/agents/{name}",        ROLES_TENANT_ADMIN, api_agents_get, NULL),
    R("PATCH",  "/v1/agents/{name}",        ROLES_TENANT_ADMIN, api_agents_patch, NULL),
    R("DELETE", "/v1/agents/{name}",        ROLES_TENANT_ADMIN, api_agents_delete, NULL),
    R("GET",    "/v1/mcp-servers",          ROLES_TENANT_ADMIN, api_mcp_servers_list, NULL),
    R("POST",   "/v1/mcp-servers",          ROLES_TENANT_ADMIN, api_mcp_servers_create, NULL),
    R("GET",    "/v1/mcp-servers/{name}",   ROLES_TENANT_ADMIN, api_mcp_servers_get, NULL),
    R("PATCH",  "/v1/mcp-servers/{name}",   ROLES_TENANT_ADMIN, api_mcp_servers_patch, NULL),
    R("DELETE", "/v1/mcp-servers/{name}",   ROLES_TENANT_ADMIN, api_mcp_servers_delete, NULL),

    R("GET",    "/v1/connections",          ROLES_USER,         api_connections_list, NULL),
    R("POST",   "/v1/connections",          ROLES_USER,         api_connections_create, NULL),
    R("DELETE", "/v1/connections/{id}",     ROLES_USER,         api_connections_delete, NULL),
    R("GET",    "/oauth/start",             0,                  NULL, api_oauth_start),
    R("GET",    "/oauth/callback",          0,                  NULL, api_oauth_callback),

    /* the web console (console_routes.c, docs/console.md) */
    R("GET",    "/ui",                      0,                  NULL, api_console_redirect),
    R("GET",    "/ui/",                     0,                  NULL, api_console_index),
    R("GET",    "/ui/{file}",               0,                  NULL, api_console_asset),
    R("POST",   "/ui/api/session",          ROLES_ANY,          NULL, api_console_login),
    R_FLAGS("GET", "/ui/api/session",       ROLES_ANY,          NULL, api_console_whoami,
                                                                API_ROUTE_CONSOLE_SESSION),
    R("DELETE", "/ui/api/session",          ROLES_ANY,          NULL, api_console_logout),
    R("GET",    "/v1/metrics/recent",       ROLES_SERVER_ADMIN, api_metrics_recent, NULL),
    R("GET",    "/v1/runs",                 ROLES_TENANT_ADMIN, api_runs_list_live, NULL),
};

#define N_ROUTES (sizeof api_routes / sizeof api_routes[0])

/* The router calls plain functions; one trampoline per table row binds the
 * request to its route. */
#define ENTRY(i) static void api_entry_##i(http_request *req) { api_begin(req, &api_routes[i]); }
ENTRY(0) ENTRY(1) ENTRY(2) ENTRY(3) ENTRY(4) ENTRY(5) ENTRY(6) ENTRY(7) ENTRY(8) ENTRY(9)
ENTRY(10) ENTRY(11) ENTRY(12) ENTRY(13) ENTRY(14) ENTRY(15) ENTRY(16) ENTRY(17) ENTRY(18) ENTRY(19)
ENTRY(20) ENTRY(21) ENTRY(22) ENTRY(23) ENTRY(24) ENTRY(25) ENTRY(26) ENTRY(27) ENTRY(28) ENTRY(29)
ENTRY(30) ENTRY(31) ENTRY(32)
ENTRY(33)
ENTRY(34) ENTRY(35) ENTRY(36)
ENTRY(37) ENTRY(38) ENTRY(39) ENTRY(40) ENTRY(41) ENTRY(42) ENTRY(43) ENTRY(44) ENTRY(45) ENTRY(46) ENTRY(47) ENTRY(48) ENTRY(49) ENTRY(50)
ENTRY(51) ENTRY(52) ENTRY(53)
ENTRY(54) ENTRY(55) ENTRY(56) ENTRY(57) ENTRY(58)
ENTRY(59) ENTRY(60) ENTRY(61) ENTRY(62) ENTRY(63) ENTRY(64) ENTRY(65) ENTRY(66)
ENTRY(67) ENTRY(68) ENTRY(69) ENTRY(70) ENTRY(71) ENTRY(72) ENTRY(73)
ENTRY(74)

static const http_handler api_entries[] = {
    api_entry_0, api_entry_1, api_entry_2, api_entry_3, api_entry_4, api_entry_5,
    api_entry_6, api_entry_7, api_entry_8, api_entry_9, api_entry_10, api_entry_11,
    api_entry_12, api_entry_13, api_entry_14, api_entry_15, api_entry_16, api_entry_17,
    api_entry_18, api_entry_19, api_entry_20, api_entry_21, api_entry_22, api_entry_23,
    api_entry_24, api_entry_25, api_entry_26, api_entry_27, api_entry_28, api_entry_29,
    api_entry_30, api_entry_31, api_entry_32,
    api_entry_33,
    api_entry_34, api_entry_35, api_entry_36,
    api_entry_37, api_entry_38, api_entry_39, api_entry_40, api_entry_41, api_entry_42, api_entry_43, api_entry_44, api_entry_45, api_entry_46, api_entry_47, api_entry_48, api_entry_49, api_entry_50,
    api_entry_51, api_entry_52, api_entry_53,
    api_entry_54, api_entry_55, api_entry_56, api_entry_57, api_entry_58,
    api_entry_59, api_entry_60, api_entry_61, api_entry_62, api_entry_63, api_entry_64, api_entry_65,
    api_entry_66,
    api_entry_67, api_entry_68, api_entry_69, api_entry_70, api_entry_71, api_entry_72, api_entry_73,
    api_entry_74,
};

_Static_assert(sizeof api_entries / sizeof api_entries[0] == N_ROUTES,
               "every route needs an ENTRY trampoline");

void api_register_routes(http_router *r)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        http_router_add(r, api_routes[i].method, api_routes[i].pattern, api_entries[i]);
}
