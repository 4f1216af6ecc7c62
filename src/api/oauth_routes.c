/* oauth_routes.c — the browser's side of consent: the two routes a user's
 * browser (not an API client) opens, both without a brigade credential.
 *
 *   GET /oauth/start?ticket=T   the connect_url of POST /v1/connections:
 *       works once; sets a cookie (HttpOnly, SameSite=Lax, path
 *       /oauth/callback, 10 minutes) bound to the flow, and redirects to the
 *       provider's authorization endpoint (from the config or its metadata,
 *       never from the request: no open redirect).
 *   GET /oauth/callback?state&code|error   where the provider sends the
 *       browser back: completes the flow only in the browser holding the
 *       start's cookie, then shows a small page, "connected" or "failed:
 *       why". Every text on it is HTML-escaped and holds no secret.
 *
 * docs/security.md ("Consent") says why these steps stop the attacks. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/audit.h"
#include "util/buf.h"

#define OAUTH_PARAM_MAX 4096   /* longer state or code values are refused */

typedef struct oauth_job {
    char *ticket, *state, *code, *error, *iss, *cookie;
    vault_status vs;
    int  status;
    char why[VAULT_WHY_MAX];
    char cookie_out[64];
    char location[VAULT_URL_MAX];
    vault_flow_owner owner;
    bool secure;                 /* public_url is https: the cookie is Secure */
} oauth_job;

static void oauth_job_free(oauth_job *j)
{
    char *fields[] = {j->ticket, j->state, j->code, j->error, j->iss, j->cookie};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (fields[i]) explicit_bzero(fields[i], strlen(fields[i]));
        free(fields[i]);
    }
    explicit_bzero(j, sizeof *j);
    free(j);
}

static char *param_copy(http_request *req, const char *name)
{
    const char *v = http_query_get(req, name);
    if (!v || strlen(v) > OAUTH_PARAM_MAX) return NULL;
    return strdup(v);
}

static void html_escape(buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': buf_puts(b, "&lt;"); break;
        case '>': buf_puts(b, "&gt;"); break;
        case '&': buf_puts(b, "&amp;"); break;
        case '"': buf_puts(b, "&quot;"); break;
        case '\'': buf_puts(b, "&#39;"); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\n') buf_append(b, s, 1);
        }
    }
}

/* The headers every page of these routes carries: nothing cached, nothing
 * framed, no script, no referrer. */
static void oauth_page_headers(http_request *req)
{
    http_add_header(req, "cache-control", "no-store");
    http_add_header(req, "pragma", "no-cache");
    http_add_header(req, "referrer-policy", "no-referrer");
    http_add_header(req, "x-frame-options", "DENY");
    http_add_header(req, "x-content-type-options", "nosniff");
    http_add_header(req, "content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
}

static void oauth_page(api_ctx *ctx, int status, const char *title, const char *message)
{
    buf b;
    buf_init(&b);
    buf_puts(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>");
    html_escape(&b, title);
    buf_puts(&b, "</title></head><body style=\"font-family:sans-serif;margin:3em\"><h1>");
    html_escape(&b, title);
    buf_puts(&b, "</h1><p>");
    html_escape(&b, message);
    buf_puts(&b, "</p><p>You can close this window.</p></body></html>\n");
    oauth_page_headers(ctx->req);
    api_reply_text(ctx, status, "text/html; charset=utf-8", buf_detach(&b));
    api_send(ctx);
}

static int vault_http_status(vault_status vs)
{
    switch (vs) {
    case VAULT_OK: return 200;
    case VAULT_NOT_FOUND: return 404;
    case VAULT_INVALID: return 400;
    case VAULT_CONFLICT: return 409;
    case VAULT_PROVIDER: return 502;
    default: return 500;
    }
}

/* ---- /oauth/start ---- */

static void oauth_start_work(http_request *req)
{
    api_ctx *ctx = req->user;
    oauth_job *j = ctx->handler_state;
    j->vs = vault_oauth_start(ctx->env->vault, j->ticket, j->cookie_out, j->location, j->why);
}

static void oauth_start_done(http_request *req)
{
    api_ctx *ctx = req->user;
    oauth_job *j = ctx->handler_state;
    ctx->handler_state = NULL;
    if (j->vs != VAULT_OK) {
        oauth_page(ctx, vault_http_status(j->vs), "Connection failed", j->why);
        oauth_job_free(j);
        return;
    }
    char cookie[256];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/oauth/callback; Max-Age=%d; HttpOnly; SameSite=Lax%s",
             VAULT_COOKIE, j->cookie_out, VAULT_FLOW_TTL_S, j->secure ? "; Secure" : "");
    oauth_page_headers(req);
    http_add_header(req, "set-cookie", cookie);
    http_add_header(req, "location", j->location);
    explicit_bzero(cookie, sizeof cookie);
    oauth_job_free(j);
    api_reply_text(ctx, 302, "text/plain; charset=utf-8", strdup("Redirecting to the provider.\n"));
    api_send(ctx);
}

/* A job for one of the two routes, or NULL after answering the page that
 * says why there is none. */
static oauth_job *oauth_job_new(api_ctx *ctx)
{
    if (!ctx->env->vault) {
        oauth_page(ctx, 503, "Connection failed", "the vault is not configured");
        return NULL;
    }
    oauth_job *j = calloc(1, sizeof *j);
    if (!j) oauth_page(ctx, 500, "Connection failed", "out of memory");
    return j;
}

void api_oauth_start(api_ctx *ctx)
{
    oauth_job *j = oauth_job_new(ctx);
    if (!j) return;
    j->ticket = param_copy(ctx->req, "ticket");
    j->secure = ctx->env->cfg.public_url && strncmp(ctx->env->cfg.public_url, "https://", 8) == 0;
    ctx->handler_state = j;
    http_request_defer(ctx->req, oauth_start_work, oauth_start_done);
}

/* ---- /oauth/callback ---- */

static void oauth_callback_work(http_request *req)
{
    api_ctx *ctx = req->user;
    oauth_job *j = ctx->handler_state;
    j->vs = vault_oauth_callback(ctx->env->vault, j->state, j->code, j->error, j->iss, j->cookie, &j->owner,
                                 j->why);
    /* consent.grant is audited by the vault, with the connection's seal */
}

static void oauth_callback_done(http_request *req)
{
    api_ctx *ctx = req->user;
    oauth_job *j = ctx->handler_state;
    ctx->handler_state = NULL;
    /* the cookie has served: it goes, whatever the outcome */
    http_add_header(req, "set-cookie", VAULT_COOKIE "=; Path=/oauth/callback; Max-Age=0; HttpOnly; SameSite=Lax");
    if (j->vs == VAULT_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "Your account at \"%s\" is now connected to brigade.", j->owner.provider);
        oauth_page(ctx, 200, "Connected", msg);
    } else {
        char msg[VAULT_WHY_MAX + 16];
        snprintf(msg, sizeof msg, "failed: %s", j->why);
        oauth_page(ctx, vault_http_status(j->vs), "Connection failed", msg);
    }
    oauth_job_free(j);
}

void api_oauth_callback(api_ctx *ctx)
{
    oauth_job *j = oauth_job_new(ctx);
    if (!j) return;
    j->state = param_copy(ctx->req, "state");
    j->code = param_copy(ctx->req, "code");
    j->error = param_copy(ctx->req, "error");
    j->iss = param_copy(ctx->req, "iss");
    char cookie[128];
    if (vault_cookie_get(http_header_get(ctx->req, "cookie"), VAULT_COOKIE, cookie, sizeof cookie))
        j->cookie = strdup(cookie);
    explicit_bzero(cookie, sizeof cookie);
    ctx->handler_state = j;
    http_request_defer(ctx->req, oauth_callback_work, oauth_callback_done);
}
