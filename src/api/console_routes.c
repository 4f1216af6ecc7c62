/* console_routes.c — the web console's routes: its embedded files under
 * /ui/ with the headers a console needs, and its sign-in session (open,
 * read, close). The console itself only calls the /v1 API, so the API's
 * rules apply to it unchanged; see docs/console.md for the security model.
 * Also the server admin's last-hour metrics (GET /v1/metrics/recent),
 * which the console charts. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include "console/console_assets.h"
#include "obs/recent.h"
#include "util/timeutil.h"

/* default-src 'self' and no inline script: the page runs only the bundle
 * it was served with; nothing may frame it; forms post only to itself. */
#define CONSOLE_CSP "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
                    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "  \
                    "frame-ancestors 'none'"

void api_console_headers(http_request *req)
{
    http_add_header(req, "content-security-policy", CONSOLE_CSP);
    http_add_header(req, "x-frame-options", "DENY");
    http_add_header(req, "x-content-type-options", "nosniff");
    http_add_header(req, "referrer-policy", "no-referrer");
    http_add_header(req, "cross-origin-opener-policy", "same-origin");
    http_add_header(req, "cross-origin-resource-policy", "same-origin");
}

static bool console_off(api_ctx *ctx)
{
    if (ctx->env->console) return false;
    api_fail(ctx, 404, "not_found_error", "console_disabled", NULL,
             "the web console is turned off (console.enabled: false)");
    api_send(ctx);
    return true;
}

static void console_serve(api_ctx *ctx, const char *name)
{
    http_request *req = ctx->req;
    const console_asset *a = console_asset_find(name);
    if (!a) {
        api_fail(ctx, 404, "not_found_error", "not_found", NULL, "no such console file");
        api_send(ctx);
        return;
    }
    api_console_headers(req);
    bool html = strcmp(name, "index.html") == 0;
    /* The page is never cached (it is the entry point and must follow a
     * new binary at once); the bundle is revalidated by its ETag. */
    http_add_header(req, "cache-control", html ? "no-store" : "no-cache");
    http_add_header(req, "etag", a->etag);
    const char *inm = http_header_get(req, "if-none-match");
    if (!html && inm && strcmp(inm, a->etag) == 0) {
        http_respond(req, 304, NULL, NULL, 0);
        return;
    }
    http_respond(req, 200, a->content_type, (const char *)a->data, a->len);
}

void api_console_redirect(api_ctx *ctx)
{
    if (console_off(ctx)) return;
    http_add_header(ctx->req, "location", "/ui/");
    http_respond(ctx->req, 308, NULL, NULL, 0);
}

void api_console_index(api_ctx *ctx)
{
    if (console_off(ctx)) return;
    console_serve(ctx, "index.html");
}

void api_console_asset(api_ctx *ctx)
{
    if (console_off(ctx)) return;
    const char *name = ctx->req->n_params > 0 ? ctx->req->params[0] : "";
    /* one segment: the router never hands a slash; dots are file names */
    console_serve(ctx, name);
}

/* The caller as the console shows it, with the session's CSRF token. */
static cJSON *console_session_json(api_ctx *ctx, const char *csrf, int64_t expires_at)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "role", scope_role_name(ctx->scope.role));
    if (ctx->scope.tenant_id[0]) cJSON_AddStringToObject(o, "tenant_id", ctx->scope.tenant_id);
    else cJSON_AddNullToObject(o, "tenant_id");
    if (ctx->scope.user_id[0]) cJSON_AddStringToObject(o, "user_id", ctx->scope.user_id);
    else cJSON_AddNullToObject(o, "user_id");
    cJSON_AddStringToObject(o, "csrf_token", csrf);
    cJSON_AddStringToObject(o, "csrf_header", CONSOLE_CSRF_HEADER);
    cJSON_AddNumberToObject(o, "expires_at", (double)expires_at);
    cJSON_AddNumberToObject(o, "idle_timeout_s", ctx->env->cfg.console.session_ttl_s);
    return o;
}

static void console_send_json(api_ctx *ctx, int status, cJSON *o)
{
    api_console_headers(ctx->req);
    http_add_header(ctx->req, "cache-control", "no-store");
    api_reply(ctx, status, o);
    api_send(ctx);
}

/* POST /ui/api/session — sign in. The credential comes in the
 * Authorization header (api_begin has already authenticated it through
 * the identity path, so a wrong key never opens a session); it is kept
 * server-side only and the browser gets an opaque HttpOnly cookie. */
void api_console_login(api_ctx *ctx)
{
    if (console_off(ctx)) return;
    http_request *req = ctx->req;
    const char *auth = http_header_get(req, "authorization");
    if (ctx->console_sid[0] || !auth) {
        api_fail(ctx, 400, "invalid_request_error", "credential_required", NULL,
                 "sign in with your key or token in the Authorization header (Bearer …)");
        api_send(ctx);
        return;
    }
    char sid[CONSOLE_SESSION_ID_HEX + 1], csrf[CONSOLE_CSRF_HEX + 1];
    int64_t now = time_now_unix();
    if (!console_session_open(ctx->env->console, auth, now, sid, csrf)) {
        api_fail(ctx, 400, "invalid_request_error", "credential_too_long", NULL,
                 "this credential is too long to keep in a console session");
        api_send(ctx);
        return;
    }
    /* No Max-Age: a browser-session cookie; the server's sliding idle
     * timeout is what ends it. Secure when the server is reached by https. */
    const char *pub = ctx->env->cfg.public_url;
    bool secure = pub && strncmp(pub, "https://", 8) == 0;
    char cookie[256];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict%s",
             CONSOLE_COOKIE_NAME, sid, secure ? "; Secure" : "");
    http_add_header(req, "set-cookie", cookie);
    console_send_json(ctx, 200, console_session_json(ctx, csrf, now + ctx->env->cfg.console.session_ttl_s));
}

/* GET /ui/api/session — who the cookie signs in as, and its CSRF token
 * (for a reloaded page). */
void api_console_whoami(api_ctx *ctx)
{
    if (console_off(ctx)) return;
    if (!ctx->console_sid[0]) {
        api_fail(ctx, 400, "invalid_request_error", "no_console_session", NULL,
                 "this request carries no console session cookie");
        api_send(ctx);
        return;
    }
    char cred[CONSOLE_CREDENTIAL_MAX + 1], csrf[CONSOLE_CSRF_HEX + 1];
    int64_t expires = 0;
    if (console_session_resolve(ctx->env->console, ctx->console_sid, NULL, false, time_now_unix(),
                                cred, sizeof cred, csrf, &expires) != CONSOLE_SESSION_OK) {
        api_fail(ctx, 401, "authentication_error", "expired_credential", NULL,
                 "the console session expired; sign in again");
        api_send(ctx);
        return;
    }
    memset(cred, 0, sizeof cred);
    console_send_json(ctx, 200, console_session_json(ctx, csrf, expires));
}

/* DELETE /ui/api/session — sign out: the session is forgotten and the
 * cookie cleared. */
void api_console_logout(api_ctx *ctx)
{
    if (console_off(ctx)) return;
    if (!ctx->console_sid[0]) {
        api_fail(ctx, 400, "invalid_request_error", "no_console_session", NULL,
                 "this request carries no console session cookie");
        api_send(ctx);
        return;
    }
    console_session_close(ctx->env->console, ctx->console_sid);
    char cookie[160];
    snprintf(cookie, sizeof cookie, "%s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
             CONSOLE_COOKIE_NAME);
    api_console_headers(ctx->req);
    http_add_header(ctx->req, "set-cookie", cookie);
    http_add_header(ctx->req, "cache-control", "no-store");
    http_respond(ctx->req, 204, NULL, NULL, 0);
}

const char *api_console_session_credential(api_ctx *ctx, char *out, size_t cap)
{
    http_request *req = ctx->req;
    char sid[CONSOLE_SESSION_ID_HEX + 2];
    if (!ctx->env->console ||
        !console_cookie_get(http_header_get(req, "cookie"), CONSOLE_COOKIE_NAME, sid, sizeof sid))
        return NULL;
    if (console_session_resolve(ctx->env->console, sid, http_header_get(req, CONSOLE_CSRF_HEADER), true,
                                time_now_unix(), out, cap, NULL, NULL) != CONSOLE_SESSION_OK)
        return NULL;
    return out;
}

void api_metrics_recent(api_ctx *ctx)
{
    cJSON *o = obs_recent_json(time_now_unix());
    api_reply(ctx, 200, o);
}
