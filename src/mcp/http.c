/* http.c — MCP's streamable HTTP transport: every message brigade sends is
 * a POST of one JSON-RPC message to the server's URL with
 * `Accept: application/json, text/event-stream`; the answer is one JSON
 * message, or an SSE stream of messages (sse_reader.c), or 202 for a
 * notification. The server's `Mcp-Session-Id` (from the initialize answer)
 * goes on every later request, with `MCP-Protocol-Version` once
 * negotiated. A stream that ends — broken, or closed by the server — after
 * events with ids but before the answer to the request it carried is
 * resumed with a GET carrying `Last-Event-ID`, after the stream's `retry`
 * time (at most 3 times). After initialize, the hub's transports open the
 * GET stream for messages the server sends on its own (stream_open). A
 * 401 (or a 403 insufficient_scope) runs MCP authorization when the
 * transport has one (mcp_http_set_oauth: brigade mcp-client); the hub's
 * send the user's own token instead (mcp_http_set_bearer). A 404 on a request that
 * carried the session id means the session is gone: the transport closes
 * and the hub starts a new one (a new initialize). An HTTP or network
 * failure of a request becomes a JSON-RPC error answer to that request, so
 * the call that waits for it ends with a clear message. Closing sends
 * DELETE with the session id. Every body is bounded (MCP_MAX_MESSAGE_BYTES).
 *
 * Only the configuration's headers are sent: never the caller's brigade
 * credential. Every handle is prepared in http_prepare (the one place where
 * an egress policy applies). */
#include "mcp/mcp_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "egress/egress_curl.h"
#include "mcp/mcp_oauth.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/json_num.h"

#define HTTP_CONNECT_TIMEOUT_MS 10000L
#define HTTP_TRANSFER_TIMEOUT_MS 3600000L   /* a stream's whole life */
#define HTTP_DELETE_TIMEOUT_MS 2000L
#define HTTP_MAX_RESUMES 3

typedef enum req_kind { REQ_POST = 1, REQ_RESUME, REQ_DELETE, REQ_STREAM } req_kind;

/* The GET stream: reopened after it ends, at most this many times in a row
 * without an event (a server that closes it at once is not hammered). */
#define HTTP_STREAM_MAX_EMPTY 5
#define HTTP_STREAM_DEFAULT_RETRY_MS 1000

typedef struct http_tr http_tr;

typedef struct http_req {
    mcp_xfer          x;
    http_tr          *t;
    req_kind          kind;
    CURL             *e;
    struct curl_slist *hdrs;
    char             *body;          /* POST: the message sent */
    bool              sent_session;  /* the request carried Mcp-Session-Id */
    bool              is_sse, is_json, got_status;
    long              status;
    buf               json;          /* a JSON answer, or an error body (bounded) */
    bool              too_big;
    mcp_sse_reader    sse;
    char              last_id[256];  /* of this stream */
    uint32_t          retry_ms;      /* the stream's `retry:` */
    int64_t           req_id;        /* the request it carries (0: none) */
    bool              answered;      /* its answer came */
    bool              got_event;     /* the GET stream: an event came on it */
    int               resumes;
    int               auth_tries;    /* authorizations this request caused (MCP_OAUTH_MAX_TRIES) */
    char              www_auth[MCP_OAUTH_URL_MAX + MCP_OAUTH_SCOPE_MAX];   /* a 401/403's WWW-Authenticate */
    char              errbuf[CURL_ERROR_SIZE];
    egress_check      egress;        /* the address check of this transfer (docs/egress.md) */
    struct http_req  *next;
} http_req;

struct http_tr {
    mcp_transport          base;
    mcp_curl              *curl;
    const mcp_server_cfg  *cfg;
    mcp_transport_cb       cb;
    char                   session_id[256];
    char                   proto[32];
    http_req              *reqs;
    bool                   closing, told;
    bool                   close_later;   /* tr_close_now is queued */
    int                    waits;         /* resumptions waiting for their time */
    struct resume_wait    *wait_list;
    bool                   want_stream;   /* open the GET stream after initialize (the hub's) */
    bool                   stream_open;   /* a GET stream is in flight or waits to reopen */
    int                    stream_empty;  /* reopens in a row without an event */
    mcp_oauth             *oauth;         /* MCP authorization, when the server needs it (not owned) */
    char                  *bearer;        /* or: the user's Authorization value from the vault (owned) */
    mcp_oauth_consent_fn   consent;
    void                  *consent_arg;
};

static void tr_maybe_free(http_tr *t)
{
    if (t->closing && !t->close_later && !t->reqs && t->waits == 0) {
        if (t->bearer) explicit_bzero(t->bearer, strlen(t->bearer));
        free(t->bearer);
        free(t);
    }
}

static void tr_tell_closed(http_tr *t, const char *why)
{
    if (t->told || t->closing) return;
    t->told = true;
    t->cb.on_closed(t->cb.arg, why);
}

static void req_unlink(http_req *r)
{
    http_tr *t = r->t;
    for (http_req **pp = &t->reqs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
}

static void req_free(http_req *r)
{
    if (r->e) curl_easy_cleanup(r->e);
    curl_slist_free_all(r->hdrs);
    free(r->body);
    buf_free(&r->json);
    mcp_sse_free(&r->sse);
    free(r);
}

/* ---- reading the answer ---- */

static void req_deliver(http_req *r, const char *text, size_t len)
{
    http_tr *t = r->t;
    if (t->closing || t->told || len == 0) return;
    t->cb.on_message(t->cb.arg, text, len);
}

/* Is this message the answer to the request the stream carries? */
static bool req_is_answer(const http_req *r, const char *text, size_t len)
{
    if (!r->req_id) return false;
    cJSON *m = cJSON_ParseWithLength(text, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
    bool yes = cJSON_IsNumber(id) && json_num_i64(id->valuedouble) == r->req_id &&
               !cJSON_GetObjectItemCaseSensitive(m, "method");
    cJSON_Delete(m);
    return yes;
}

static void req_on_event(void *arg, const mcp_sse_event *ev)
{
    http_req *r = arg;
    if (ev->id) snprintf(r->last_id, sizeof r->last_id, "%s", ev->id);
    if (ev->retry_ms) r->retry_ms = ev->retry_ms;
    r->got_event = true;
    if (strcmp(ev->event, "message") != 0 || ev->data_len == 0) return;
    if (req_is_answer(r, ev->data, ev->data_len)) r->answered = true;
    req_deliver(r, ev->data, ev->data_len);
}

static void req_read_status(http_req *r)
{
    if (r->got_status) return;
    r->got_status = true;
    curl_easy_getinfo(r->e, CURLINFO_RESPONSE_CODE, &r->status);
}

static size_t req_on_header(char *p, size_t size, size_t n, void *arg)
{
    http_req *r = arg;
    size_t len = size * n;
    char line[MCP_OAUTH_URL_MAX + MCP_OAUTH_SCOPE_MAX + 64];
    size_t k = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, p, k);
    line[k] = '\0';
    while (k && (line[k - 1] == '\r' || line[k - 1] == '\n')) line[--k] = '\0';
    if (!strncasecmp(line, "HTTP/", 5)) {   /* a new response (after a 100): start over */
        r->is_sse = r->is_json = false;
        return len;
    }
    char *colon = strchr(line, ':');
    if (!colon) return len;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (!strcasecmp(line, "content-type")) {
        r->is_sse = !strncasecmp(v, "text/event-stream", 17);
        r->is_json = !strncasecmp(v, "application/json", 16);
    } else if (!strcasecmp(line, "www-authenticate")) {
        snprintf(r->www_auth, sizeof r->www_auth, "%s", v);
    } else if (!strcasecmp(line, "mcp-session-id") && r->kind == REQ_POST) {
        /* visible ASCII only (the spec's rule), and it must fit */
        bool ok = *v && strlen(v) < sizeof r->t->session_id;
        for (const char *q = v; ok && *q; q++) ok = *q > 0x20 && *q < 0x7f;
        if (ok) snprintf(r->t->session_id, sizeof r->t->session_id, "%s", v);
    }
    return len;
}

static size_t req_on_write(char *p, size_t size, size_t n, void *arg)
{
    http_req *r = arg;
    size_t len = size * n;
    req_read_status(r);
    if (r->t->closing) return 0;   /* stop reading */
    if (r->status >= 200 && r->status < 300 && r->is_sse) {
        if (!mcp_sse_feed(&r->sse, p, len, req_on_event, r)) {
            r->too_big = true;
            return 0;
        }
        return len;
    }
    /* JSON, or an error's body: kept bounded */
    size_t cap = r->status >= 200 && r->status < 300 ? MCP_MAX_MESSAGE_BYTES : 4096;
    if (r->json.len + len > cap) {
        if (r->status >= 200 && r->status < 300) {
            r->too_big = true;
            return 0;
        }
        len = cap > r->json.len ? cap - r->json.len : 0;
        if (len) buf_append(&r->json, p, len);
        return size * n;
    }
    buf_append(&r->json, p, len);
    return len;
}

/* ---- sending ---- */

static void req_done(mcp_xfer *x, CURLcode code);
static void req_resume_later(http_req *r);
static void stream_ended(http_req *r, CURLcode code);

/* The one place an HTTP handle to an MCP server is prepared: URL, method,
 * headers, bounds. An egress policy (addresses allowed, redirects) belongs
 * here, for every request of this transport: egress_apply, last, checks
 * every address the transfer connects to (no private network unless the
 * operator allowed it for this server by name), no redirects, no proxy. */
static bool http_prepare(http_tr *t, http_req *r, const char *method)
{
    CURL *e = r->e;
    curl_easy_setopt(e, CURLOPT_URL, t->cfg->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     r->kind == REQ_DELETE ? HTTP_DELETE_TIMEOUT_MS : HTTP_TRANSFER_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &r->x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, req_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, req_on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "brigade-mcp/" BRIGADE_VERSION);
    struct curl_slist *h = NULL;
    char line[400];
    for (size_t i = 0; i < t->cfg->n_headers; i++) {
        snprintf(line, sizeof line, "%s: %s", t->cfg->header_names[i], t->cfg->header_values[i]);
        h = curl_slist_append(h, line);
    }
    if (r->kind == REQ_POST) {
        h = curl_slist_append(h, "Content-Type: application/json");
        h = curl_slist_append(h, "Accept: application/json, text/event-stream");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
    } else if (r->kind == REQ_RESUME || r->kind == REQ_STREAM) {
        h = curl_slist_append(h, "Accept: text/event-stream");
        if (r->last_id[0]) {
            snprintf(line, sizeof line, "Last-Event-ID: %s", r->last_id);
            h = curl_slist_append(h, line);
        }
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (t->session_id[0]) {
        snprintf(line, sizeof line, "Mcp-Session-Id: %s", t->session_id);
        h = curl_slist_append(h, line);
        r->sent_session = true;
    }
    if (t->proto[0]) {
        snprintf(line, sizeof line, "MCP-Protocol-Version: %s", t->proto);
        h = curl_slist_append(h, line);
    }
    const char *token = mcp_oauth_token(t->oauth);
    if (!token && t->bearer) {
        /* the user's own token (the vault's "Bearer …"), never the caller's
         * brigade credential */
        size_t tl = strlen(t->bearer) + 32;
        char *ah = xmalloc(tl);
        snprintf(ah, tl, "Authorization: %s", t->bearer);
        h = curl_slist_append(h, ah);
        explicit_bzero(ah, tl);
        free(ah);
    }
    if (token) {
        /* the token of this server's own authorization (mcp_oauth): never
         * the caller's brigade credential */
        size_t tl = strlen(token) + 32;
        char *ah = xmalloc(tl);
        snprintf(ah, tl, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, ah);
        free(ah);
    }
    r->hdrs = h;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    size_t n_nets = 0;
    const egress_net *nets = mcp_curl_allow_nets(t->curl, &n_nets);
    egress_policy pol = {
        .allow_private_networks = t->cfg->allow_private_networks,
        .allow_nets = nets,
        .n_allow_nets = n_nets,
        .max_redirects = 0,
        .timeout_ms = r->kind == REQ_DELETE ? HTTP_DELETE_TIMEOUT_MS : HTTP_TRANSFER_TIMEOUT_MS,
        .connect_timeout_ms = HTTP_CONNECT_TIMEOUT_MS,
    };
    return egress_apply(e, &r->egress, &pol);
}

static int64_t body_request_id(const char *body)
{
    cJSON *m = body ? cJSON_Parse(body) : NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
    int64_t v = cJSON_IsNumber(id) && cJSON_GetObjectItemCaseSensitive(m, "method") ? json_num_i64(id->valuedouble) : 0;
    cJSON_Delete(m);
    return v;
}

static http_req *req_start(http_tr *t, req_kind kind, char *body, const char *last_id, int resumes)
{
    http_req *r = xcalloc(1, sizeof *r);
    r->x.done = req_done;
    r->t = t;
    r->kind = kind;
    r->body = body;
    r->req_id = body_request_id(body);
    r->resumes = resumes;
    buf_init(&r->json);
    mcp_sse_init(&r->sse, MCP_MAX_MESSAGE_BYTES);
    if (last_id) snprintf(r->last_id, sizeof r->last_id, "%s", last_id);
    r->e = curl_easy_init();
    if (!r->e || !http_prepare(t, r, kind == REQ_DELETE ? "DELETE" : NULL) || !mcp_curl_add(t->curl, r->e)) {
        req_free(r);
        return NULL;
    }
    r->next = t->reqs;
    t->reqs = r;
    return r;
}

/* A request that failed as a whole: an error answer to its id, if it
 * carried a request (a notification's failure only goes to the log). */
static void req_fail_code(http_req *r, int code, const char *why)
{
    cJSON *sent = r->body ? cJSON_Parse(r->body) : NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(sent, "id");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(sent, "method");
    if (id && method) {
        char *ans = mcp_write_response(id, NULL, code, why);
        if (ans) req_deliver(r, ans, strlen(ans));
        free(ans);
    } else {
        log_msg(LOG_WARN, "mcp %s: %s", r->t->cfg->name, why);
    }
    cJSON_Delete(sent);
}

static void req_fail(http_req *r, const char *why)
{
    req_fail_code(r, -32000, why);
}

/* A 401, or a 403 whose challenge says insufficient_scope (a step-up). */
static bool req_needs_auth(http_req *r)
{
    if (r->status == 401) return true;
    if (r->status != 403) return false;
    mcp_www_auth ch;
    return mcp_www_auth_parse(r->www_auth, &ch) && !strcmp(ch.error, "insufficient_scope");
}

/* Authorize (mcp_oauth, with the challenge) and send the request again;
 * bounded: a request causes at most MCP_OAUTH_MAX_TRIES authorizations,
 * so a server that keeps refusing cannot make a loop. true when the
 * request was sent again; else it failed with the reason. */
static bool req_authorize(http_req *r)
{
    http_tr *t = r->t;
    char why[600];
    if (r->auth_tries >= MCP_OAUTH_MAX_TRIES) {
        snprintf(why, sizeof why, "the MCP server still answered HTTP %ld after %d authorizations", r->status,
                 r->auth_tries);
        req_fail(r, why);
        return false;
    }
    mcp_www_auth ch;
    bool have = mcp_www_auth_parse(r->www_auth, &ch);
    char err[500];
    if (!mcp_oauth_authorize(t->oauth, have ? &ch : NULL, t->consent, t->consent_arg, err, sizeof err)) {
        log_msg(LOG_WARN, "mcp %s: authorization failed: %s", t->cfg->name, err);
        snprintf(why, sizeof why, "the MCP server needs authorization, which failed: %.500s", err);
        req_fail(r, why);
        return false;
    }
    http_req *again = req_start(t, r->kind, r->body ? xstrdup(r->body) : NULL, r->last_id[0] ? r->last_id : NULL,
                                r->resumes);
    if (!again) {
        req_fail(r, "the MCP request could not be sent again after authorization");
        return false;
    }
    again->auth_tries = r->auth_tries + 1;
    return true;
}

static void req_done(mcp_xfer *x, CURLcode code)
{
    http_req *r = (http_req *)x;
    http_tr *t = r->t;
    req_unlink(r);
    req_read_status(r);
    if (t->closing) {
        req_free(r);
        tr_maybe_free(t);
        return;
    }
    if (r->kind == REQ_STREAM) {
        stream_ended(r, code);
        req_free(r);
        return;
    }
    char why[300];
    if (r->too_big) {
        snprintf(why, sizeof why, "the MCP server's answer was larger than %u bytes", MCP_MAX_MESSAGE_BYTES);
        req_fail(r, why);
    } else if (r->is_sse && r->last_id[0] && r->req_id && !r->answered &&
               r->resumes < HTTP_MAX_RESUMES && r->kind != REQ_DELETE &&
               (code != CURLE_OK || (r->status >= 200 && r->status < 300))) {
        /* the stream ended (broken or closed) before the answer: resume it */
        req_resume_later(r);
    } else if (egress_refused(&r->egress, code)) {
        char msg[256];
        egress_describe(&r->egress, msg, sizeof msg);
        snprintf(why, sizeof why, "the MCP server may not be reached: %.250s", msg);
        if (t->cb.on_egress_refused && !t->closing && !t->told) t->cb.on_egress_refused(t->cb.arg, &r->egress);
        req_fail(r, why);
    } else if (code != CURLE_OK) {
        snprintf(why, sizeof why, "the MCP server could not be reached: %.200s",
                 r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
        req_fail(r, why);
    } else if (t->oauth && r->kind != REQ_DELETE && req_needs_auth(r)) {
        if (req_authorize(r)) {
            req_free(r);
            return;
        }
    } else if (!t->oauth && t->bearer && r->kind != REQ_DELETE && req_needs_auth(r)) {
        /* the user's own token (a run's, from the vault) refused: the call
         * fails, marked so, and the run has the user asked again */
        snprintf(why, sizeof why, "the MCP server refused the user's authorization (HTTP %ld)", r->status);
        req_fail_code(r, MCP_ERR_AUTH_REFUSED, why);
    } else if (r->status == 404 && r->sent_session) {
        /* the session is gone: the hub starts a new one (a new initialize) */
        t->session_id[0] = '\0';
        req_fail(r, "the MCP server ended the session");
        tr_tell_closed(t, "the server ended the MCP session (HTTP 404)");
    } else if (r->status >= 400 || (r->status < 200 && r->status != 0)) {
        size_t bl = r->json.len < 200 ? r->json.len : 200;
        snprintf(why, sizeof why, "the MCP server answered HTTP %ld%s%.*s", r->status, bl ? ": " : "",
                 (int)bl, bl ? r->json.data : "");
        req_fail(r, why);
    } else if (r->is_json && r->json.len) {
        req_deliver(r, r->json.data, r->json.len);
    } else if (r->is_sse && r->req_id && !r->answered) {
        req_fail(r, "the MCP server's stream ended without the answer");
    }
    req_free(r);
}

/* ---- resumption: GET with Last-Event-ID after the stream's retry ---- */

typedef struct resume_wait {
    uv_timer_t timer;
    http_tr   *t;
    bool       stream;    /* the GET stream's reopening (no request of ours) */
    char      *body;
    char       last_id[256];
    int        resumes;
    struct resume_wait *next;
} resume_wait;

static void resume_closed(uv_handle_t *h)
{
    resume_wait *w = h->data;
    http_tr *t = w->t;
    for (resume_wait **pp = &t->wait_list; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    free(w->body);
    free(w);
    t->waits--;
    tr_maybe_free(t);
}

static void resume_fire(uv_timer_t *tm)
{
    resume_wait *w = tm->data;
    http_tr *t = w->t;
    if (uv_is_closing((uv_handle_t *)&w->timer)) return;
    if (!t->closing && w->stream) {
        if (!req_start(t, REQ_STREAM, NULL, w->last_id[0] ? w->last_id : NULL, 0)) t->stream_open = false;
    } else if (!t->closing) {
        http_req *again = req_start(t, REQ_RESUME, NULL, w->last_id, w->resumes);
        if (again) {
            again->body = w->body;   /* kept: the answer's id, and its failure */
            again->req_id = body_request_id(w->body);
            w->body = NULL;
        } else {
            tr_tell_closed(t, "the MCP server's stream ended and could not be resumed");
        }
    }
    uv_close((uv_handle_t *)&w->timer, resume_closed);
}

static void req_resume_later(http_req *r)
{
    http_tr *t = r->t;
    resume_wait *w = xcalloc(1, sizeof *w);
    w->t = t;
    w->body = r->body;
    r->body = NULL;
    snprintf(w->last_id, sizeof w->last_id, "%s", r->last_id);
    w->resumes = r->resumes + 1;
    uv_timer_init(mcp_curl_loop(t->curl), &w->timer);
    w->timer.data = w;
    t->waits++;
    w->next = t->wait_list;
    t->wait_list = w;
    /* the server's retry time, bounded: a hostile one cannot park it long */
    uint64_t ms = r->retry_ms ? (r->retry_ms > 30000 ? 30000 : r->retry_ms) : 0;
    uv_timer_start(&w->timer, resume_fire, ms, 0);
}

/* ---- the GET stream: what the server sends on its own ----
 *
 * After initialize the hub's transport opens a GET with `Accept:
 * text/event-stream` (and the session's headers): every message on it goes
 * to the session like any other (a notification such as
 * tools/list_changed, a request such as ping, which the session answers
 * by POST). 405 (or any other error answer) means the server offers none:
 * not asked again for this session. A stream that ends — closed by the
 * server or broken — is opened again after its `retry:` (1 s by default,
 * 30 s at most) with `Last-Event-ID` when it had ids, at most
 * HTTP_STREAM_MAX_EMPTY times in a row without an event. */

static void stream_reopen_later(http_tr *t, const char *last_id, uint32_t retry_ms)
{
    resume_wait *w = xcalloc(1, sizeof *w);
    w->t = t;
    w->stream = true;
    snprintf(w->last_id, sizeof w->last_id, "%s", last_id ? last_id : "");
    uv_timer_init(mcp_curl_loop(t->curl), &w->timer);
    w->timer.data = w;
    t->waits++;
    w->next = t->wait_list;
    t->wait_list = w;
    uint64_t ms = retry_ms ? (retry_ms > 30000 ? 30000 : retry_ms) : HTTP_STREAM_DEFAULT_RETRY_MS;
    uv_timer_start(&w->timer, resume_fire, ms, 0);
}

static void stream_ended(http_req *r, CURLcode code)
{
    http_tr *t = r->t;
    if (t->closing || t->told) return;
    bool ok_stream = r->is_sse && r->status >= 200 && r->status < 300;
    if (egress_refused(&r->egress, code) || (r->got_status && r->status != 0 && !ok_stream) || r->too_big) {
        /* 405: the server sends nothing on its own; another answer: it will
         * not either, for this session */
        t->stream_open = false;
        if (r->status != 405)
            log_msg(LOG_INFO, "mcp %s: no GET stream (HTTP %ld)", t->cfg->name, r->status);
        return;
    }
    t->stream_empty = r->got_event ? 0 : t->stream_empty + 1;
    if (t->stream_empty > HTTP_STREAM_MAX_EMPTY) {
        t->stream_open = false;
        log_msg(LOG_INFO, "mcp %s: the GET stream keeps ending without an event; not opened again", t->cfg->name);
        return;
    }
    stream_reopen_later(t, r->last_id, r->retry_ms);
}

static void stream_open(http_tr *t)
{
    if (!t->want_stream || t->stream_open || t->closing || t->told) return;
    t->stream_open = true;
    if (!req_start(t, REQ_STREAM, NULL, NULL, 0)) t->stream_open = false;
}

void mcp_http_enable_get_stream(mcp_transport *base)
{
    ((http_tr *)base)->want_stream = true;
}

/* ---- the transport ---- */

static bool tr_send(mcp_transport *base, const char *text, size_t len)
{
    http_tr *t = (http_tr *)base;
    if (t->closing || t->told) return false;
    char *body = xmalloc(len + 1);
    memcpy(body, text, len);
    body[len] = '\0';
    return req_start(t, REQ_POST, body, NULL, 0) != NULL;
}

static void tr_negotiated(mcp_transport *base, const char *version)
{
    http_tr *t = (http_tr *)base;
    snprintf(t->proto, sizeof t->proto, "%s", version ? version : "");
    stream_open(t);   /* the session exists now: what the server sends on its own */
}

static void tr_close_now(void *arg)
{
    http_tr *t = arg;
    t->close_later = false;
    for (http_req *r = t->reqs, *next; r; r = next) {   /* give up what is in flight */
        next = r->next;
        mcp_curl_remove(t->curl, r->e);
        req_free(r);
    }
    t->reqs = NULL;
    for (resume_wait *w = t->wait_list; w; w = w->next)   /* resumptions not made */
        if (!uv_is_closing((uv_handle_t *)&w->timer)) {
            uv_timer_stop(&w->timer);
            uv_close((uv_handle_t *)&w->timer, resume_closed);
        }
    /* end the session on the server: DELETE, not waited for by anyone */
    if (t->session_id[0]) {
        t->closing = false;   /* req_start refuses nothing, but keeps the list */
        req_start(t, REQ_DELETE, NULL, NULL, 0);
        t->closing = true;
    }
    tr_maybe_free(t);
}

static void tr_close(mcp_transport *base)
{
    http_tr *t = (http_tr *)base;
    if (t->closing) return;
    t->closing = true;   /* nothing more is delivered from now on */
    if (mcp_curl_busy(t->curl)) {
        /* inside curl's callbacks (a message read made the hub close):
         * the transfers are removed right after */
        t->close_later = true;
        mcp_curl_later(t->curl, tr_close_now, t);
        return;
    }
    tr_close_now(t);
}

void mcp_http_set_bearer(mcp_transport *base, const char *value)
{
    http_tr *t = (http_tr *)base;
    if (t->bearer) explicit_bzero(t->bearer, strlen(t->bearer));
    free(t->bearer);
    t->bearer = value ? xstrdup(value) : NULL;
}

void mcp_http_set_oauth(mcp_transport *base, mcp_oauth *o, mcp_oauth_consent_fn consent, void *consent_arg)
{
    http_tr *t = (http_tr *)base;
    t->oauth = o;
    t->consent = consent;
    t->consent_arg = consent_arg;
}

mcp_transport *mcp_http_open(mcp_curl *curl, const mcp_server_cfg *cfg, mcp_transport_cb cb,
                             char *err, size_t errlen)
{
    if (!curl) {
        snprintf(err, errlen, "HTTP is not available in this process");
        return NULL;
    }
    http_tr *t = xcalloc(1, sizeof *t);
    t->base.send = tr_send;
    t->base.close = tr_close;
    t->base.negotiated = tr_negotiated;
    t->curl = curl;
    t->cfg = cfg;
    t->cb = cb;
    return &t->base;
}
