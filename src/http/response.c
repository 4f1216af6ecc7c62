/* response.c — everything a handler sends: complete responses, the error
 * envelope, chunked / SSE streams with backpressure, deferred work, and the
 * status reason phrases.
 *
 * A response head is built in the request arena with memcpy (no printf on
 * the hot path) and goes out together with the body in one write; the
 * connection tries a non-blocking write first and copies only what the
 * kernel did not take.
 *
 * Streams are corked (see http_internal.h): the head and every chunk are
 * appended to the connection's cork and leave in one write at the end of
 * the loop turn; http_stream_end and http_abort send the cork at once.
 */
#include "http/http_internal.h"

#include <stdio.h>
#include <string.h>

#include "util/ids.h"
#include "util/json_escape.h"
#include "util/strfmt.h"

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:
        if (status >= 100 && status < 200) return "Informational";
        if (status >= 200 && status < 300) return "Success";
        if (status >= 300 && status < 400) return "Redirection";
        if (status >= 400 && status < 500) return "Client Error";
        return "Server Error";
    }
}

/* ---------------- head building ---------------- */

#define HEAD_FIXED 320   /* status line, date, lengths, id, connection, SSE lines */

typedef struct head_spec {
    int          status;
    const char  *ctype;           /* may be NULL */
    long long    clen;            /* >= 0 content-length; -1 chunked; -2 close-delimited */
    bool         keep_alive;
    bool         http10;
    const char  *request_id;
    const char  *xh;
    size_t       xh_len;
} head_spec;

static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}
#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

static char *put_u(char *o, unsigned long long v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *o++ = tmp[--n];
    return o;
}

static size_t head_bound(const head_spec *h)
{
    return HEAD_FIXED + (h->ctype ? strlen(h->ctype) : 0) + h->xh_len +
           strlen(http_status_text(h->status));
}

static size_t head_build(char *out, http_worker *w, const head_spec *h)
{
    char *o = out;
    o = PUTS(o, "HTTP/1.1 ");
    o = put_u(o, (unsigned)(h->status > 0 && h->status < 1000 ? h->status : 500));
    *o++ = ' ';
    const char *st = http_status_text(h->status);
    o = put(o, st, strlen(st));
    o = PUTS(o, "\r\n");
    size_t dl;
    const char *d = http_worker_date(w, &dl);
    o = put(o, d, dl);
    if (h->ctype && *h->ctype) {
        o = PUTS(o, "content-type: ");
        o = put(o, h->ctype, strlen(h->ctype));
        o = PUTS(o, "\r\n");
        if (strncmp(h->ctype, "text/event-stream", 17) == 0)
            o = PUTS(o, "cache-control: no-cache\r\nx-accel-buffering: no\r\n");
    }
    bool no_body_status = (h->status >= 100 && h->status < 200) || h->status == 204 ||
                          h->status == 304;
    if (!no_body_status) {
        if (h->clen >= 0) {
            o = PUTS(o, "content-length: ");
            o = put_u(o, (unsigned long long)h->clen);
            o = PUTS(o, "\r\n");
        } else if (h->clen == -1) {
            o = PUTS(o, "transfer-encoding: chunked\r\n");
        }
    }
    if (h->request_id && *h->request_id) {
        o = PUTS(o, "x-request-id: ");
        o = put(o, h->request_id, strnlen(h->request_id, 64));
        o = PUTS(o, "\r\n");
    }
    if (!h->keep_alive) o = PUTS(o, "connection: close\r\n");
    else if (h->http10) o = PUTS(o, "connection: keep-alive\r\n");
    if (h->xh_len) o = put(o, h->xh, h->xh_len);
    o = PUTS(o, "\r\n");
    return (size_t)(o - out);
}

/* ---------------- JSON error envelope ---------------- */

/* A JSON string literal of s into o, sized by json_bound. */
static size_t json_str(char *o, const char *s)
{
    size_t len = strlen(s);
    o[0] = '"';
    size_t n = 1 + json_escape_into(o + 1, len * JSON_ESCAPE_MAX_GROWTH, s, len);
    o[n++] = '"';
    return n;
}

static size_t json_bound(const char *s) { return s ? strlen(s) * JSON_ESCAPE_MAX_GROWTH + 2 : 4; }

/* Writes the envelope into out (sized by error_bound). */
static size_t error_body(char *out, const char *type, const char *code, const char *msg,
                         const char *param)
{
    char *o = out;
    o = PUTS(o, "{\"error\":{\"type\":");
    o += json_str(o, type ? type : "api_error");
    o = PUTS(o, ",\"code\":");
    if (code) o += json_str(o, code);
    else o = PUTS(o, "null");
    o = PUTS(o, ",\"message\":");
    o += json_str(o, msg ? msg : "");
    o = PUTS(o, ",\"param\":");
    if (param) o += json_str(o, param);
    else o = PUTS(o, "null");
    o = PUTS(o, "}}");
    return (size_t)(o - out);
}

static size_t error_bound(const char *type, const char *code, const char *msg, const char *param)
{
    return 64 + json_bound(type) + json_bound(code) + json_bound(msg) + json_bound(param);
}

void http_send_error_raw(http_conn *c, int status, const char *type, const char *code,
                         const char *message, const char *request_id)
{
    char idbuf[33];
    if (!request_id || !*request_id) {
        ids_request_id(idbuf);
        request_id = idbuf;
    }
    char body[1024];
    if (error_bound(type, code, message, NULL) > sizeof body) message = "error";
    size_t bl = error_body(body, type, code, message, NULL);
    head_spec h = { status, "application/json", (long long)bl, false, false, request_id, NULL, 0 };
    char head[HEAD_FIXED + 128];
    size_t hl = head_build(head, c->w, &h);
    uv_buf_t b[2] = { uv_buf_init(head, (unsigned)hl), uv_buf_init(body, (unsigned)bl) };
    http_conn_write(c, b, 2);
}

/* ---------------- complete responses ---------------- */

void http_add_header(http_request *req, const char *name, const char *value)
{
    struct http_request_priv *pv = req->priv;
    if (!name || !value || pv->state == HTTP_RS_STREAMING || pv->state == HTTP_RS_DONE) return;
    size_t nl = strlen(name), vl = strlen(value);
    /* A CR or LF would let a value inject headers or a body: refuse it. */
    if (!nl || strpbrk(name, "\r\n: \t") || strpbrk(value, "\r\n")) return;
    size_t need = nl + vl + 4;
    if (pv->xh_len + need > pv->xh_cap) {
        size_t cap = pv->xh_cap ? pv->xh_cap * 2 : 256;
        while (cap < pv->xh_len + need) cap *= 2;
        char *n = arena_alloc(&req->arena, cap);
        if (pv->xh_len) memcpy(n, pv->xh, pv->xh_len);
        pv->xh = n;
        pv->xh_cap = cap;
    }
    char *o = pv->xh + pv->xh_len;
    o = put(o, name, nl);
    o = PUTS(o, ": ");
    o = put(o, value, vl);
    o = PUTS(o, "\r\n");
    pv->xh_len = (size_t)(o - pv->xh);
}

static bool response_keep_alive(http_request *req)
{
    http_conn *c = req->conn;
    return req->priv->keep_alive && !c->w->stopping && !c->closing;
}

void http_respond(http_request *req, int status, const char *content_type,
                  const char *body, size_t len)
{
    struct http_request_priv *pv = req->priv;
    if (pv->state != HTTP_RS_HANDLER) return;   /* already answered or streaming */
    pv->state = HTTP_RS_DONE;                   /* no second answer, whatever happens below */
    pv->status = status;
    http_conn *c = req->conn;
    if (!c->closing) {
        head_spec h = { status, content_type, (long long)len, response_keep_alive(req), pv->http10,
                        req->request_id, pv->xh, pv->xh_len };
        pv->resp_keep_alive = h.keep_alive;
        char *head = arena_alloc(&req->arena, head_bound(&h));
        size_t hl = head_build(head, c->w, &h);
        bool no_body = pv->head || len == 0 || status == 204 || status == 304 || status < 200;
        uv_buf_t b[2] = { uv_buf_init(head, (unsigned)hl), uv_buf_init((char *)body, (unsigned)len) };
        http_conn_write(c, b, no_body ? 1 : 2);
    }
    http_conn_request_finished(req);
}

void http_respond_error(http_request *req, int status, const char *type, const char *code,
                        const char *message, const char *param)
{
    char *body = arena_alloc(&req->arena, error_bound(type, code, message, param));
    size_t bl = error_body(body, type, code, message, param);
    http_respond(req, status, "application/json", body, bl);
}

/* ---------------- streams ---------------- */

void http_stream_begin(http_request *req, int status, const char *content_type)
{
    struct http_request_priv *pv = req->priv;
    if (pv->state != HTTP_RS_HANDLER) return;
    pv->state = HTTP_RS_STREAMING;
    pv->status = status;
    http_conn *c = req->conn;
    if (c->closing) return;
    /* HTTP/1.0 has no chunked encoding: the body ends when we close. */
    head_spec h = { status, content_type, pv->http10 ? -2 : -1,
                    response_keep_alive(req) && !pv->http10, pv->http10,
                    req->request_id, pv->xh, pv->xh_len };
    pv->resp_keep_alive = h.keep_alive;
    char *head = arena_alloc(&req->arena, head_bound(&h));
    size_t hl = head_build(head, c->w, &h);
    uv_buf_t b = uv_buf_init(head, (unsigned)hl);
    /* Corked: the head goes out with the first events of this turn. */
    http_conn_cork(c, &b, 1);
}

bool http_stream_write(http_request *req, const char *data, size_t len)
{
    struct http_request_priv *pv = req->priv;
    if (pv->state != HTTP_RS_STREAMING) return false;
    http_conn *c = req->conn;
    if (c->closing || req->aborted) return false;
    if (len && !pv->head) {
        if (pv->http10) {
            uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
            http_conn_cork(c, &b, 1);
        } else {
            char hex[24];
            size_t n = fmt_hex(hex, len);   /* the chunk's size line */
            hex[n++] = '\r';
            hex[n++] = '\n';
            uv_buf_t b[3] = { uv_buf_init(hex, (unsigned)n), uv_buf_init((char *)data, (unsigned)len),
                              uv_buf_init((char *)"\r\n", 2) };
            http_conn_cork(c, b, 3);
        }
    }
    if (c->closing) return false;
    /* Corked bytes count: they are as much "queued" as the uv_write ones. */
    bool ok = http_conn_pending(c) < c->w->srv->limits.stream_high_water;
    if (!ok) pv->want_drain = true;
    return ok;
}

void http_stream_end(http_request *req)
{
    struct http_request_priv *pv = req->priv;
    if (pv->state != HTTP_RS_STREAMING) return;
    pv->state = HTTP_RS_DONE;
    http_conn *c = req->conn;
    if (!c->closing && !pv->head && !pv->http10) {
        uv_buf_t b = uv_buf_init((char *)"0\r\n\r\n", 5);
        http_conn_cork(c, &b, 1);
    }
    /* Now, not at the turn's end: the stream is over, and the next
     * pipelined request (or the close) must come after it. */
    if (!c->closing) http_conn_flush(c);
    http_conn_request_finished(req);
}

/* Cut the response off: what was already queued is still sent, then the
 * connection closes without the terminating chunk (or with no response at
 * all), so the client sees a truncated transfer. For fault injection and for
 * giving up on a client mid-stream. */
void http_abort(http_request *req)
{
    struct http_request_priv *pv = req->priv;
    if (pv->state == HTTP_RS_DONE) return;
    http_conn *c = req->conn;
    bool started = pv->state == HTTP_RS_STREAMING;
    pv->state = HTTP_RS_DONE;
    pv->resp_keep_alive = false;
    /* What was corked counts as sent from the caller's point of view. */
    if (!c->closing) http_conn_flush(c);
    if (!started) {
        if (!pv->status) pv->status = 499;   /* nginx's "client closed request" */
        if (!c->closing) http_conn_close(c);
    }
    http_conn_request_finished(req);
}

/* ---------------- deferred work ---------------- */

static void defer_work(uv_work_t *w)
{
    http_request *req = w->data;
    req->priv->work_fn(req);
}

static void defer_after(uv_work_t *w, int status)
{
    (void)status;   /* never cancelled: the request outlives its connection */
    http_request *req = w->data;
    if (req->priv->done_fn) req->priv->done_fn(req);
}

void http_request_defer(http_request *req, void (*work)(http_request *req),
                        void (*done)(http_request *req))
{
    struct http_request_priv *pv = req->priv;
    pv->work_fn = work;
    pv->done_fn = done;
    pv->work.data = req;
    if (uv_queue_work(req->loop, &pv->work, defer_work, defer_after) != 0) {
        /* The pool refused (cannot happen with a live loop): run inline. */
        work(req);
        if (done) done(req);
    }
}
