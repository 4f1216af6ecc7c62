/* api_core.c — the front half of every route: authenticate, check the role,
 * dispatch to the handler (on the loop or the thread pool), send the answer.
 * Also the helpers handlers share for reading bodies and failing clearly. */
#include "api/api.h"
#include "api/messages.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/recent.h"
#include "util/json_strict.h"
#include "util/log.h"
#include "util/strfmt.h"
#include "util/timeutil.h"
#include "util/utf8.h"

#define API_X_API_KEY_MAX 8192   /* a key or token longer than this is not one */

/* ---- answering ---- */

void api_reply(api_ctx *ctx, int status, cJSON *json)
{
    free(ctx->body);
    ctx->body = NULL;
    ctx->body_len = 0;
    ctx->is_error = false;
    ctx->status = status;
    if (json) {
        ctx->body = cJSON_PrintUnformatted(json);
        ctx->body_len = ctx->body ? strlen(ctx->body) : 0;
        cJSON_Delete(json);
        if (!ctx->body) api_fail(ctx, 500, "api_error", "internal_error", NULL, "out of memory");
    }
}

void api_reply_text(api_ctx *ctx, int status, const char *content_type, char *text)
{
    if (!text) {
        api_fail(ctx, 500, "api_error", "internal_error", NULL, "out of memory");
        return;
    }
    free(ctx->body);
    ctx->body = text;
    ctx->body_len = strlen(text);
    ctx->is_error = false;
    ctx->status = status;
    ctx->content_type = content_type;
}

void api_fail(api_ctx *ctx, int status, const char *type, const char *code, const char *param,
              const char *fmt, ...)
{
    free(ctx->body);
    ctx->body = NULL;
    ctx->is_error = true;
    ctx->status = status;
    ctx->err_type = type;
    ctx->err_code = code;
    snprintf(ctx->err_param, sizeof ctx->err_param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err_message, sizeof ctx->err_message, fmt, ap);
    va_end(ap);
}

void api_fail_store(api_ctx *ctx, store_status st, const char *what)
{
    switch (st) {
    case STORE_OK:
        break;
    case STORE_NOT_FOUND:
        api_fail(ctx, 404, "not_found_error", "not_found", NULL, "%s not found", what);
        break;
    case STORE_CONFLICT:
        api_fail(ctx, 409, "conflict_error", "already_exists", NULL, "%s already exists", what);
        break;
    case STORE_FORBIDDEN:
        api_fail(ctx, 403, "permission_error", "forbidden", NULL,
                 "your credential may not do this to a %s", what);
        break;
    case STORE_INVALID:
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", NULL, "invalid %s", what);
        break;
    case STORE_QUOTA:
    case STORE_TOO_LARGE: {
        /* read on the thread that made the store call: handlers run there */
        const store_quota_refusal *r = store_quota_refused();
        char why[300];
        store_quota_describe(r, ctx->scope.tier, why, sizeof why);
        const char *hint = !r->quota ? "" :
            strcmp(r->quota, "memory_bytes") == 0 ? "delete memory entries (DELETE /v1/memory/{key}) or "
                                                    "stored responses (DELETE /v1/responses/{id}) first" :
            strncmp(r->quota, "memory", 6) == 0 ? "delete memory entries (DELETE /v1/memory/{key}) first" :
            strcmp(r->quota, "sessions") == 0 ? "delete sessions (DELETE /v1/sessions/{id}) first" :
            "start a new session";
        if (st == STORE_TOO_LARGE)
            api_fail(ctx, 413, "request_too_large", "larger_than_quota", NULL,
                     "this %s alone is larger than the storage quota: %s", what, why);
        else
            api_fail(ctx, 429, "insufficient_quota", "storage_quota_exceeded", NULL,
                     "storage quota reached: %s; %s, or ask a tenant admin for a tier with more",
                     why, hint);
        break;
    }
    case STORE_ERROR:
    default:
        api_fail(ctx, 500, "api_error", "store_error", NULL,
                 "the store could not complete the request; it was not applied");
        break;
    }
}

void api_send(api_ctx *ctx)
{
    /* ctx lives in the request's arena: finishing the request frees it, so
     * nothing of ctx is touched after the http_respond* call. */
    http_request *req = ctx->req;
    char *body = ctx->body;
    ctx->body = NULL;
    if (ctx->is_error && ctx->route && (ctx->route->flags & API_ROUTE_ANTHROPIC)) {
        if (ctx->retry_after[0]) http_add_header(req, "retry-after", ctx->retry_after);
        buf b;
        buf_init(&b);
        messages_error_body(ctx->status, ctx->err_message, &b);
        http_respond(req, ctx->status, "application/json", b.data, b.len);
        buf_free(&b);
    } else if (ctx->is_error) {
        if (ctx->retry_after[0]) http_add_header(req, "retry-after", ctx->retry_after);
        http_respond_error(req, ctx->status, ctx->err_type, ctx->err_code, ctx->err_message,
                           ctx->err_param[0] ? ctx->err_param : NULL);
    } else if (body) {
        http_respond(req, ctx->status, ctx->content_type ? ctx->content_type : "application/json",
                     body, ctx->body_len);
    } else {
        http_respond(req, ctx->status ? ctx->status : 204, NULL, NULL, 0);
    }
    free(body);
}

/* ---- dispatch ---- */

/* The request's fields on log lines of the current thread. */
static void api_log_ctx(const api_ctx *ctx)
{
    log_ctx_set(ctx->req->request_id, ctx->trace_id, ctx->scope.tenant_id);
}

static void api_work_trampoline(http_request *req)
{
    api_ctx *ctx = req->user;
    api_log_ctx(ctx);
    ctx->route->work(ctx);
    log_ctx_clear();
}

static void api_work_done(http_request *req)
{
    api_send(req->user);
}

/* What a route's roles accept, in words, for the errors that name it. */
static const char *api_roles_need(unsigned roles)
{
    if (roles == ROLES_SERVER_ADMIN) return "the server admin token (BRIGADE_ADMIN_TOKEN)";
    if (roles == ROLES_TENANT_ADMIN) return "a tenant admin key";
    if (roles == (ROLES_TENANT_ADMIN | ROLES_SERVER_ADMIN)) return "a tenant admin key or the server admin token";
    if (roles & ROLES_USER) return "a user key or user token";
    return "a tenant admin key";
}

static void api_dispatch(api_ctx *ctx)
{
    const api_route *route = ctx->route;
    /* The client left while its credential was resolved off the loop: its
     * route is not run. A handler set up for it (a run's events: a watcher
     * and a ping timer) waited for a close it had missed, and was never
     * freed. */
    if (ctx->req->aborted) {
        http_abort(ctx->req);
        return;
    }
    if (ctx->span && route->roles) {
        /* Authenticated: the request's spans belong to the caller from here. */
        obs_span_set_owner(ctx->span, &ctx->scope);
        obs_span_set_str(ctx->span, "brigade.auth.role", scope_role_name(ctx->scope.role));
    }
    if (route->roles && !(route->roles & ROLE_BIT(ctx->scope.role))) {
        const char *need = api_roles_need(route->roles);
        api_fail(ctx, 403, "permission_error", "wrong_role", NULL,
                 "%s %s needs %s; this request used a %s credential", route->method,
                 route->pattern, need, scope_role_name(ctx->scope.role));
        api_send(ctx);
        return;
    }
    if (route->work) {
        http_request_defer(ctx->req, api_work_trampoline, api_work_done);
    } else {
        api_log_ctx(ctx);
        route->run(ctx);
        log_ctx_clear();
    }
}

/* The authentication span ends with the verdict: the outcome code only,
 * never the credential or the reason text (which may quote claims). */
static void api_auth_span_end(api_ctx *ctx, auth_status st)
{
    if (!ctx->auth_span) return;
    static const char *const names[] = {
        [AUTH_OK] = "ok", [AUTH_MISSING] = "missing", [AUTH_MALFORMED] = "malformed",
        [AUTH_EXPIRED] = "expired", [AUTH_REVOKED] = "revoked", [AUTH_DISABLED] = "disabled",
    };
    const char *res = (size_t)st < sizeof names / sizeof names[0] && names[st] ? names[st] : "invalid";
    if (st == AUTH_OK) obs_span_set_owner(ctx->auth_span, &ctx->scope);
    obs_span_set_str(ctx->auth_span, "brigade.auth.result", res);
    obs_span_end(ctx->auth_span, st == AUTH_OK ? OBS_STATUS_OK : OBS_STATUS_ERROR,
                 st == AUTH_OK ? NULL : "authentication failed");
    ctx->auth_span = NULL;
}

static void api_fail_auth(api_ctx *ctx, auth_status st, const char *why)
{
    atomic_fetch_add(&ctx->env->metrics.auth_failures, 1);
    const char *code = "invalid_api_key";
    switch (st) {
    case AUTH_MISSING: code = "missing_credential"; break;
    case AUTH_MALFORMED: code = "malformed_credential"; break;
    case AUTH_EXPIRED: code = "expired_credential"; break;
    case AUTH_REVOKED: code = "revoked_credential"; break;
    case AUTH_DISABLED: code = "user_disabled"; break;
    default: break;
    }
    http_add_header(ctx->req, "www-authenticate", "Bearer realm=\"brigade\"");
    if (st == AUTH_MISSING && ctx->route && ctx->route->roles)
        /* say which credential would do, not just that none was given */
        api_fail(ctx, 401, "authentication_error", code, NULL,
                 "%s %s needs %s in the Authorization header (Bearer)", ctx->route->method,
                 ctx->route->pattern, api_roles_need(ctx->route->roles));
    else
        api_fail(ctx, 401, "authentication_error", code, NULL, "%s",
                 why && why[0] ? why : "invalid credential");
    api_audit_auth_failure(ctx, code);   /* audits (rate-bounded), then sends */
}

static void api_provision_work(http_request *req)
{
    api_ctx *ctx = req->user;
    api_log_ctx(ctx);
    char why[256] = "";
    auth_status st = identity_provision(ctx->env->identity, &ctx->pending, &ctx->scope, why,
                                        sizeof why);
    if (st != AUTH_OK) {
        ctx->status = 401;
        ctx->is_error = true;
        snprintf(ctx->err_message, sizeof ctx->err_message, "%s",
                 why[0] ? why : "could not provision this user");
    }
    log_ctx_clear();
}

static void api_provision_done(http_request *req)
{
    api_ctx *ctx = req->user;
    if (ctx->is_error) {
        ctx->is_error = false;
        api_auth_span_end(ctx, AUTH_INVALID);
        api_fail_auth(ctx, AUTH_INVALID, ctx->err_message);
        return;
    }
    api_auth_span_end(ctx, AUTH_OK);
    api_dispatch(ctx);
}

/* The credential, as an Authorization header value. On an Anthropic
 * route a client sends `x-api-key: KEY` instead: it is read as `Bearer
 * KEY` when there is no Authorization header (with both, Authorization is
 * the credential, as everywhere else). Only Anthropic routes read it: a
 * second way to authenticate on every route would be one more header for
 * proxies and logs to protect, for no client that needs it. A value too
 * long to be a key is passed as is, to fail as malformed. */
static const char *api_credential_header(http_request *req, const api_route *route, char *out,
                                         size_t cap)
{
    const char *auth = http_header_get(req, "authorization");
    if (auth || !(route->flags & API_ROUTE_ANTHROPIC)) return auth;
    const char *key = http_header_get(req, "x-api-key");
    if (!key) return NULL;
    int n = snprintf(out, cap, "Bearer %s", key);
    return n > 0 && (size_t)n < cap ? out : key;
}

/* A request with no credential header may carry the web console's session
 * cookie: it stands for the credential the user signed in with, which then
 * goes through the normal identity path below (so revocation applies),
 * but only together with the session's CSRF token in a header — a cookie
 * alone, as a cross-site form post would send it, is refused 403. Returns
 * 1 with the credential in out, 0 when there is no console cookie, -1
 * after answering. */
static int api_console_credential(api_ctx *ctx, char *out, size_t cap)
{
    http_request *req = ctx->req;
    char sid[CONSOLE_SESSION_ID_HEX + 2];
    if (!ctx->env->console ||
        !console_cookie_get(http_header_get(req, "cookie"), CONSOLE_COOKIE_NAME, sid, sizeof sid))
        return 0;
    bool need_csrf = !(ctx->route->flags & API_ROUTE_CONSOLE_SESSION);
    console_session_status cs =
        console_session_resolve(ctx->env->console, sid, http_header_get(req, CONSOLE_CSRF_HEADER),
                                need_csrf, time_now_unix(), out, cap, NULL, NULL);
    if (cs == CONSOLE_SESSION_OK) {
        /* a live session id is exactly CONSOLE_SESSION_ID_HEX long */
        memcpy(ctx->console_sid, sid, CONSOLE_SESSION_ID_HEX);
        ctx->console_sid[CONSOLE_SESSION_ID_HEX] = '\0';
        return 1;
    }
    if (cs == CONSOLE_SESSION_BAD_CSRF) {
        api_auth_span_end(ctx, AUTH_INVALID);
        atomic_fetch_add(&ctx->env->metrics.auth_failures, 1);
        api_fail(ctx, 403, "permission_error", "csrf_token_invalid", NULL,
                 "a console session cookie needs its CSRF token in the " CONSOLE_CSRF_HEADER
                 " header (returned at sign-in); a cookie alone is refused");
        api_send(ctx);
        return -1;
    }
    api_auth_span_end(ctx, AUTH_EXPIRED);
    api_fail_auth(ctx, AUTH_EXPIRED,
                  "the console session expired or was signed out; sign in again at /ui/");
    return -1;
}

static void api_authenticate(api_ctx *ctx, bool caught_up);

/* A key this instance's cache did not hold, with other instances on the
 * same store: one round of catching up with their changes, off the loop,
 * then the key is tried again (a key made on instance A works on B at
 * once, not after B's next periodic sync). */
static void api_catch_up_work(http_request *req)
{
    api_ctx *ctx = req->user;
    if (identity_catch_up(ctx->env->identity) < 0)
        log_warn("identity: could not read the store to look for a key made elsewhere");
}

static void api_catch_up_done(http_request *req)
{
    api_ctx *ctx = req->user;
    api_log_ctx(ctx);
    api_authenticate(ctx, true);
    log_ctx_clear();
}

/* The request's credential, resolved: dispatched, deferred (provisioning
 * a JWT's user, or catching up for an unseen key), or answered 401/403. */
static void api_authenticate(api_ctx *ctx, bool caught_up)
{
    http_request *req = ctx->req;
    const api_route *route = ctx->route;
    char why[256] = "";
    char bearer[API_X_API_KEY_MAX + 8];
    const char *credential = api_credential_header(req, route, bearer, sizeof bearer);
    char console_cred[CONSOLE_CREDENTIAL_MAX + 1];
    if (!credential) {
        int rc = api_console_credential(ctx, console_cred, sizeof console_cred);
        if (rc < 0) return;           /* answered: bad CSRF or a dead session */
        if (rc > 0) credential = console_cred;
    }
    /* The connection's memo of its last key (identity.h): a keep-alive
     * client's key is not hashed again at every request. */
    _Static_assert(sizeof(identity_key_memo) <= HTTP_CONN_MEMO_BYTES, "the key memo fits the connection's room");
    auth_status st = identity_authenticate_memo(ctx->env->identity, credential, http_conn_memo(req), &ctx->scope,
                                                &ctx->pending, why, sizeof why);
    if (st == AUTH_UNSEEN_KEY && caught_up) st = AUTH_INVALID;
    if (st == AUTH_OK) {
        api_auth_span_end(ctx, st);
        api_dispatch(ctx);
    } else if (st == AUTH_NEEDS_PROVISION) {
        /* A valid JWT for a subject we have not seen: creating the user is a
         * durable write, so it runs off the loop. */
        obs_span_set_bool(ctx->auth_span, "brigade.auth.provisioned", true);
        http_request_defer(req, api_provision_work, api_provision_done);
    } else if (st == AUTH_UNSEEN_KEY) {
        obs_span_set_bool(ctx->auth_span, "brigade.auth.caught_up", true);
        http_request_defer(req, api_catch_up_work, api_catch_up_done);
    } else {
        api_auth_span_end(ctx, st);
        api_fail_auth(ctx, st, why);
    }
}

void api_begin(http_request *req, const api_route *route)
{
    api_ctx *ctx = arena_alloc(&req->arena, sizeof *ctx);
    memset(ctx, 0, sizeof *ctx);
    ctx->req = req;
    ctx->thread = api_thread_of(req);
    ctx->env = ctx->thread->env;
    ctx->route = route;
    req->user = ctx;
    req->app_ctx = ctx;         /* for api_request_done, after a handler took `user` over */

    if (!route->roles) {
        /* The public probes are not traced: a load balancer polling them
         * would fill the span store with nothing worth reading. */
        api_dispatch(ctx);
        return;
    }
    /* A client's valid traceparent is continued; anything else (absent or
     * malformed) starts a new trace. The response names our span. */
    obs_trace_ctx parent;
    bool continued = obs_traceparent_parse(http_header_get(req, "traceparent"), &parent);
    char name[96];
    str_join2(name, sizeof name, route->method, ' ', route->pattern);
    ctx->span = obs_span_begin(continued ? &parent : NULL, name, OBS_SPAN_SERVER, NULL);
    obs_span_set_str(ctx->span, "http.request.method", req->method);
    /* The router's pattern (/v1/memory/{key}), never the path: a path
     * holds identifiers users chose (memory keys), and spans outlive the
     * data they describe unless erased with it. */
    obs_span_set_str(ctx->span, "http.route", route->pattern);
    obs_span_set_str(ctx->span, "brigade.request_id", req->request_id);
    obs_trace_id_hex(obs_span_ctx(ctx->span), ctx->trace_id);
    char tp[OBS_TRACEPARENT_LEN + 1];
    obs_traceparent_format(obs_span_ctx(ctx->span), tp);
    http_add_header(req, "traceparent", tp);

    ctx->auth_span = obs_span_begin(obs_span_ctx(ctx->span), "authenticate", OBS_SPAN_INTERNAL, NULL);
    api_log_ctx(ctx);                 /* what identity logs carries the request */
    api_authenticate(ctx, false);
    log_ctx_clear();
}

obs_span *api_span_begin(api_ctx *ctx, const char *name, obs_span_kind kind)
{
    return obs_span_begin(ctx->span ? obs_span_ctx(ctx->span) : NULL, name, kind, &ctx->scope);
}

void api_request_done(http_request *req, int status)
{
    /* Not req->user: the runs module takes that over for the messages it
     * answers, and the request span and route label must still be found. */
    api_ctx *ctx = req->app_ctx;
    /* Requests the router refused (404/405) and malformed ones never had a
     * route: one bounded label for all of them, never the raw path. */
    const char *route = ctx && ctx->route ? ctx->route->pattern : "unmatched";
    const char *method = ctx && ctx->route ? ctx->route->method : "other";
    char digits[24], code[8];   /* "%d" into 8 bytes, without the formatter */
    size_t cl = fmt_i64(digits, status);
    if (cl > sizeof code - 1) cl = sizeof code - 1;
    memcpy(code, digits, cl);
    code[cl] = '\0';
    obs_counter_add(obs_series_of(obs_m_http_requests(), OBS_L(method, route, code)), 1);
    uint64_t now = time_mono_ns();
    double latency_s = req->started_ns && now > req->started_ns
                           ? (double)(now - req->started_ns) / 1e9 : 0;
    if (req->started_ns && now > req->started_ns)
        obs_histogram_observe(obs_series_of(obs_m_http_duration(), OBS_L(method, route)),
                              latency_s);
    /* the last hour, per minute, for the console (GET /v1/metrics/recent) */
    obs_recent_request(time_now_unix(), status, latency_s,
                       obs_counter_value(obs_series_of(obs_m_input_tokens(), NULL)) +
                           obs_counter_value(obs_series_of(obs_m_output_tokens(), NULL)),
                       obs_counter_value(obs_series_of(obs_m_cost_total(), NULL)));
    if (!ctx) return;
    if (ctx->auth_span) {
        obs_span_discard(ctx->auth_span);   /* the client left mid-provisioning */
        ctx->auth_span = NULL;
    }
    if (ctx->span) {
        obs_span_set_int(ctx->span, "http.response.status_code", status);
        if (req->aborted) obs_span_set_bool(ctx->span, "brigade.client_aborted", true);
        /* Server spans: only 5xx is an error (4xx is the client's). */
        obs_span_end(ctx->span, status >= 500 ? OBS_STATUS_ERROR : OBS_STATUS_OK,
                     status >= 500 ? http_status_text(status) : NULL);
        ctx->span = NULL;
    }
}

/* ---- request bodies ---- */

cJSON *api_body_object(api_ctx *ctx, const char *const *allowed, bool empty_ok)
{
    http_request *req = ctx->req;
    if (!req->body || req->body_len == 0) {
        if (empty_ok) return cJSON_CreateObject();
        api_fail(ctx, 400, "invalid_request_error", "missing_body", NULL,
                 "this request needs a JSON object body");
        return NULL;
    }
    if (!utf8_valid(req->body, req->body_len)) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_utf8", NULL,
                 "the request body is not valid UTF-8");
        return NULL;
    }
    json_strict_error jerr;
    if (!json_strict_text(req->body, req->body_len, "the request body", &jerr)) {
        api_fail(ctx, 400, "invalid_request_error",
                 jerr.kind == JSON_STRICT_NUL ? "nul_character" : "invalid_json", NULL, "%s",
                 jerr.message);
        return NULL;
    }
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, false);
    if (!obj) {
        size_t at = end && end >= req->body ? (size_t)(end - req->body) : 0;
        api_fail(ctx, 400, "invalid_request_error", "invalid_json", NULL,
                 "the request body is not valid JSON (error near byte %zu)", at);
        return NULL;
    }
    /* Anything but whitespace after the value is malformed, too. */
    for (const char *p = end; p && p < req->body + req->body_len; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            cJSON_Delete(obj);
            api_fail(ctx, 400, "invalid_request_error", "invalid_json", NULL,
                     "unexpected data after the JSON value (byte %zu)",
                     (size_t)(p - req->body));
            return NULL;
        }
    }
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        api_fail(ctx, 400, "invalid_request_error", "invalid_json", NULL,
                 "the request body must be a JSON object");
        return NULL;
    }
    /* cJSON keeps the first copy of a repeated key where other readers keep
     * the last: refuse the ambiguity at every depth (util/json_strict.h). */
    if (!json_strict_tree(obj, "the request body", &jerr)) {
        cJSON_Delete(obj);
        api_fail(ctx, 400, "invalid_request_error", "duplicate_key", jerr.path, "%s", jerr.message);
        return NULL;
    }
    if (allowed) {
        for (const cJSON *f = obj->child; f; f = f->next) {
            bool known = false;
            for (const char *const *a = allowed; *a; a++)
                if (f->string && strcmp(f->string, *a) == 0) { known = true; break; }
            if (!known) {
                char name[48];
                snprintf(name, sizeof name, "%s", f->string ? f->string : "");
                cJSON_Delete(obj);
                api_fail(ctx, 400, "invalid_request_error", "unknown_field", name,
                         "unknown field \"%s\"", name);
                return NULL;
            }
        }
    }
    return obj;
}

bool api_field_string(api_ctx *ctx, const cJSON *obj, const char *name, bool required,
                      size_t max, char *out, size_t outlen, bool *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (present) *present = v != NULL && !cJSON_IsNull(v);
    if (!v || cJSON_IsNull(v)) {
        if (!required) return true;
        api_fail(ctx, 400, "invalid_request_error", "missing_field", name,
                 "missing required field \"%s\"", name);
        return false;
    }
    if (!cJSON_IsString(v) || !v->valuestring) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_type", name,
                 "field \"%s\" must be a string", name);
        return false;
    }
    size_t len = strlen(v->valuestring);
    if (len == 0 || len > max || len >= outlen) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", name,
                 "field \"%s\" must be 1 to %zu bytes long", name, max < outlen - 1 ? max : outlen - 1);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v->valuestring[i];
        if (c < 0x20) {
            api_fail(ctx, 400, "invalid_request_error", "invalid_value", name,
                     "field \"%s\" must not contain control characters", name);
            return false;
        }
    }
    memcpy(out, v->valuestring, len + 1);
    return true;
}

bool api_field_bool(api_ctx *ctx, const cJSON *obj, const char *name, bool *out, bool *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (present) *present = v != NULL;
    if (!v) return true;
    if (!cJSON_IsBool(v)) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_type", name,
                 "field \"%s\" must be true or false", name);
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

bool api_query_int(api_ctx *ctx, const char *name, long long min, long long max,
                   long long *out, bool *present)
{
    const char *v = http_query_get(ctx->req, name);
    if (present) *present = v != NULL;
    if (!v) return true;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || n < min || n > max) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", name,
                 "query parameter \"%s\" must be an integer from %lld to %lld", name, min, max);
        return false;
    }
    *out = n;
    return true;
}
