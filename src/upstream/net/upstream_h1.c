/* upstream_h1.c — brigade's own HTTP/1.1 client, for model providers
 * reached over plain http (a local vLLM, Ollama, `brigade mock-llm`).
 *
 * Why not libcurl here: on the gateway's path libcurl was a third of the
 * loop thread's instructions per request (URL and header formatting, proxy
 * lookups in the environment, its connection-cache bookkeeping) and added
 * two poll(2) calls and an epoll_ctl churn per transfer, and each of its
 * transfers holds ~14 kB (docs/benchmarks.md). Over plain http a
 * provider call is one POST on a keep-alive connection: this file writes
 * the request in one system call and reads the answer with llhttp, on the
 * loop's own epoll. https, proxies and anything unusual in the URL stay on
 * libcurl (upstream_h1_get says which), as do tools' fetches.
 *
 * One upstream_h1 per (loop, provider): its connections (at most the
 * provider's max_connections; further requests wait in FIFO order, as
 * curl's CURLMOPT_MAX_HOST_CONNECTIONS did), the idle ones kept open and
 * watched (a provider closing an idle connection is noticed at once, and
 * one idle past 60 s is closed). A request sent on a reused connection that
 * dies before any byte of an answer is sent once more on a new connection,
 * as curl does: the provider closed it while the request was on the way.
 *
 * Lifetimes: a request's callbacks may cancel it (or start others) from
 * inside the parser's callbacks; the parser then stops at once, and a
 * finished request is handed back only after llhttp_execute has returned,
 * so a connection is never reused while its parser runs. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <llhttp.h>

#include "upstream/net/net.h"
#include "util/strfmt.h"
#include "util/xalloc.h"

#define H1_READ_BUF      (64u << 10)  /* one shared read buffer per pool */
#define H1_MAX_HEAD      (64u << 10)  /* response status line + headers */
#define H1_IDLE_MAX_MS   60000        /* an idle connection is closed after this */
#define H1_SWEEP_MS      15000
#define H1_NAME_MAX      32           /* header names kept for the handler */
#define H1_VALUE_MAX     256          /* header values kept for the handler */

typedef struct h1_conn h1_conn;

struct upstream_h1 {
    upstream           *u;
    const provider_cfg *prov;
    bool                usable;        /* false: this provider goes through curl */
    bool                closing;
    char               *host;          /* to resolve / connect: no brackets */
    char                port[8];
    char               *path_prefix;   /* the base URL's path, no trailing '/' */
    char               *host_line;     /* "Host: h[:p]\r\nUser-Agent: …\r\n" */
    bool                numeric;       /* host is an address: no resolver */
    struct sockaddr_storage addr;
    struct addrinfo     addr_ai;       /* one entry pointing at addr */
    size_t              max_conns, n_conns;
    h1_conn            *conns;         /* every open connection */
    h1_conn            *idle;          /* a stack: the warmest first */
    h1_req             *wait_head, *wait_tail;
    uv_timer_t          sweep;
    char               *rbuf;
    size_t              handles;       /* conns, requests and the sweep timer not yet closed */
};

struct h1_conn {
    uv_tcp_t          tcp;
    upstream_h1      *h;
    h1_req           *req;           /* NULL: idle (or connecting for nobody) */
    h1_conn          *prev, *next;   /* h->conns */
    h1_conn          *idle_next;
    bool              in_idle;
    bool              connected;
    bool              closing;
    bool              reused;        /* an answer was read on it before */
    bool              complete;      /* the current answer is whole */
    bool              abort;         /* the handler refused a body piece */
    bool              got_bytes;     /* of the current answer */
    bool              resolving;     /* a getaddrinfo is on the thread pool */
    bool              tcp_closed;
    int               status;
    uint64_t          idle_since_ms;
    llhttp_t          parser;
    uv_connect_t      connect;
    uv_getaddrinfo_t  gai;
    struct addrinfo  *ai, *ai_at;    /* addresses being tried */
    uv_write_t        write;
    buf               out;           /* request head (and body when it did not go at once) */
    size_t            head_bytes;
    char              name[H1_NAME_MAX];
    char              value[H1_VALUE_MAX];
    size_t            name_len, value_len;
    bool              name_over, value_over;
};

struct h1_req {
    upstream_h1       *h;
    h1_conn           *conn;
    const h1_handlers *hd;
    void              *owner;
    const char        *path;
    const struct curl_slist *headers;
    const char        *body;
    size_t             body_len;
    uv_timer_t         timer;
    uint64_t           deadline_ms;   /* the whole attempt */
    uint32_t           connect_timeout_ms;
    h1_req            *wait_next;
    bool               waiting;
    bool               retried;
    bool               paused;
    bool               ended;         /* done delivered or cancelled: no more callbacks */
    bool               in_post;       /* inside upstream_h1_post */
    h1_outcome         pending;       /* a failure to deliver from the timer (fail_soon) */
    char               msg[CURL_ERROR_SIZE];
};

static void h1_conn_close(h1_conn *c);
static void h1_dispatch(h1_req *r);
static void h1_send(h1_conn *c, h1_req *r);
static void h1_arm(h1_req *r, uint64_t now);
static void h1_on_timer(uv_timer_t *t);
static void h1_alloc(uv_handle_t *hd, size_t want, uv_buf_t *b);
static void h1_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

/* ------------------------------------------------------------- bookkeeping */

static void h1_handle_gone(upstream_h1 *h)
{
    if (--h->handles > 0 || !h->closing) return;
    upstream *u = h->u;
    free(h->rbuf);
    free(h->host);
    free(h->path_prefix);
    free(h->host_line);
    free(h);
    upstream_handle_closed(u);
}

static void h1_req_closed(uv_handle_t *t)
{
    h1_req *r = t->data;
    upstream_h1 *h = r->h;
    free(r);
    h1_handle_gone(h);
}

/* The request leaves its connection or the wait queue; no callback follows. */
static void h1_req_end(h1_req *r)
{
    if (r->ended) return;
    r->ended = true;
    upstream_h1 *h = r->h;
    if (r->waiting) {
        h1_req **pp = &h->wait_head;
        h1_req *prev = NULL;
        while (*pp && *pp != r) { prev = *pp; pp = &(*pp)->wait_next; }
        if (*pp) *pp = r->wait_next;
        if (h->wait_tail == r) h->wait_tail = prev;
        r->waiting = false;
    }
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, h1_req_closed);
}

static void h1_deliver(h1_req *r, h1_outcome o)
{
    if (r->ended) return;
    if (r->in_post) {
        /* Never inside upstream_h1_post: the caller does not hold r yet. */
        r->pending = o;
        uv_timer_start(&r->timer, h1_on_timer, 0, 0);
        return;
    }
    const h1_handlers *hd = r->hd;
    void *owner = r->owner;
    const char *msg = o == H1_OK ? NULL : r->msg;
    /* msg lives in r, which is freed by a close callback: after this turn. */
    h1_req_end(r);
    hd->done(owner, o, msg);
}

static void h1_fail(h1_req *r, h1_outcome o, const char *fmt, const char *detail)
{
    snprintf(r->msg, sizeof(r->msg), fmt, detail ? detail : "");
    h1_deliver(r, o);
}

/* --------------------------------------------------------- connections */

static void h1_conn_free(h1_conn *c)
{
    upstream_h1 *h = c->h;
    if (c->ai) uv_freeaddrinfo(c->ai);
    buf_free(&c->out);
    free(c);
    h1_handle_gone(h);
}

static void h1_conn_closed(uv_handle_t *hd)
{
    h1_conn *c = hd->data;
    c->tcp_closed = true;
    if (!c->resolving) h1_conn_free(c);   /* else the resolver's callback frees it */
}

static void h1_idle_remove(h1_conn *c)
{
    if (!c->in_idle) return;
    h1_conn **pp = &c->h->idle;
    while (*pp && *pp != c) pp = &(*pp)->idle_next;
    if (*pp) *pp = c->idle_next;
    c->in_idle = false;
}

/* A connection slot came free: the first waiting request gets a new one. */
static void h1_wake_waiter(upstream_h1 *h)
{
    if (!h->wait_head || h->closing || h->n_conns >= h->max_conns) return;
    h1_req *r = h->wait_head;
    h->wait_head = r->wait_next;
    if (!h->wait_head) h->wait_tail = NULL;
    r->waiting = false;
    h1_dispatch(r);
}

static void h1_conn_close(h1_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    upstream_h1 *h = c->h;
    h1_idle_remove(c);
    if (c->prev) c->prev->next = c->next;
    else h->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    h->n_conns--;
    c->req = NULL;
    uv_close((uv_handle_t *)&c->tcp, h1_conn_closed);
    h1_wake_waiter(h);
}

/* The answer on c is whole: reuse c (the next waiting request, or idle), or
 * close it; then tell the request's owner. */
static void h1_conn_release(h1_conn *c, bool keep)
{
    h1_req *r = c->req;
    c->req = NULL;
    if (r) r->conn = NULL;
    upstream_h1 *h = c->h;
    if (!keep || h->closing) {
        h1_conn_close(c);
    } else {
        c->reused = true;
        if (h->wait_head) {
            h1_req *w = h->wait_head;
            h->wait_head = w->wait_next;
            if (!h->wait_head) h->wait_tail = NULL;
            w->waiting = false;
            h1_send(c, w);
        } else {
            c->idle_since_ms = uv_now(h->u->loop);
            c->idle_next = h->idle;
            h->idle = c;
            c->in_idle = true;
        }
        /* A paused request may have stopped the reads: an idle connection
         * is always read (to see the provider close it). */
        uv_read_start((uv_stream_t *)&c->tcp, h1_alloc, h1_on_read);
    }
    if (r) h1_deliver(r, H1_OK);
}

/* The request on c failed on the wire. A request on a reused connection
 * that got nothing back goes once more on a fresh one. */
static void h1_conn_broke(h1_conn *c, const char *why)
{
    h1_req *r = c->req;
    bool got = c->got_bytes;
    int status = c->status;
    bool reused = c->reused;
    h1_conn_close(c);
    if (!r) return;
    r->conn = NULL;
    if (!got && reused && !r->retried) {
        r->retried = true;
        h1_dispatch(r);
        return;
    }
    if (status) h1_fail(r, H1_BROKEN, "provider connection broke mid-answer: %s", why);
    else if (got) h1_fail(r, H1_CONNECT, "provider answered something that is not HTTP: %s", why);
    else h1_fail(r, H1_CONNECT, "provider closed the connection without answering (%s)", why);
}

/* ------------------------------------------------------------- parsing */

static h1_conn *h1_of(llhttp_t *p) { return p->data; }

static int h1_on_status_complete(llhttp_t *p)
{
    h1_conn *c = h1_of(p);
    if (!c->req) return -1;
    /* llhttp 8 takes a status line without its three digits ("HTTP/1.1  OK")
     * as status 0: that is not an HTTP answer (as curl says too), and 0 is
     * what "no answer began" means here. */
    int status = llhttp_get_status_code(p);
    if (status < 100) return -1;
    c->status = status;
    c->req->hd->status(c->req->owner, c->status);
    return c->req ? 0 : -1;
}

static int h1_count_head(h1_conn *c, size_t n)
{
    c->head_bytes += n;
    return c->head_bytes > H1_MAX_HEAD ? -1 : 0;
}

static int h1_on_header_field(llhttp_t *p, const char *at, size_t n)
{
    h1_conn *c = h1_of(p);
    if (!c->req || h1_count_head(c, n) < 0) return -1;
    if (c->name_len + n > sizeof(c->name)) c->name_over = true;
    else {
        memcpy(c->name + c->name_len, at, n);
        c->name_len += n;
    }
    return 0;
}

static int h1_on_header_value(llhttp_t *p, const char *at, size_t n)
{
    h1_conn *c = h1_of(p);
    if (!c->req || h1_count_head(c, n) < 0) return -1;
    if (c->value_len + n > sizeof(c->value)) c->value_over = true;
    else {
        memcpy(c->value + c->value_len, at, n);
        c->value_len += n;
    }
    return 0;
}

static int h1_on_header_value_complete(llhttp_t *p)
{
    h1_conn *c = h1_of(p);
    if (!c->req) return -1;
    /* llhttp 8 lets a line begin with ':' (a header without a name): not
     * one the owner could want. */
    if (c->name_len && !c->name_over && !c->value_over && c->req->hd->header)
        c->req->hd->header(c->req->owner, c->name, c->name_len, c->value, c->value_len);
    c->name_len = c->value_len = 0;
    c->name_over = c->value_over = false;
    return c->req ? 0 : -1;
}

/* A 1xx (but 101), 204 or 304 answer has no body whatever its headers say
 * (RFC 9112 6.3): what follows a 1xx's head is the next answer. llhttp 8
 * reads a body there when Content-Length or chunked is given, which would
 * hand an interim answer's bytes to the owner as the body and misread the
 * real answer; 1 tells it there is none. curl frames these the same way. */
static int h1_on_headers_complete(llhttp_t *p)
{
    int s = llhttp_get_status_code(p);
    return (s >= 100 && s < 200 && s != 101) || s == 204 || s == 304 ? 1 : 0;
}

static int h1_on_body(llhttp_t *p, const char *at, size_t n)
{
    h1_conn *c = h1_of(p);
    if (!c->req) return -1;
    if (!c->req->hd->body(c->req->owner, at, n)) {
        if (c->req) c->abort = true;
        return -1;
    }
    return c->req ? 0 : -1;
}

static int h1_on_message_complete(llhttp_t *p)
{
    h1_conn *c = h1_of(p);
    if (!c->req) return -1;
    /* 1xx: an interim answer; the real one follows on the same bytes. */
    if (c->status >= 100 && c->status < 200 && c->status != 101) {
        c->status = 0;
        c->head_bytes = 0;
        return 0;
    }
    c->complete = true;
    return HPE_PAUSED;   /* hand the connection back after llhttp_execute returns */
}

static const llhttp_settings_t H1_SETTINGS = {
    .on_status_complete = h1_on_status_complete,
    .on_header_field = h1_on_header_field,
    .on_header_value = h1_on_header_value,
    .on_header_value_complete = h1_on_header_value_complete,
    .on_headers_complete = h1_on_headers_complete,
    .on_body = h1_on_body,
    .on_message_complete = h1_on_message_complete,
};

static void h1_alloc(uv_handle_t *hd, size_t want, uv_buf_t *b)
{
    (void)want;
    h1_conn *c = hd->data;
    /* One buffer per pool: a read is parsed (and copied by the handlers)
     * before the loop reads the next socket. */
    b->base = c->h->rbuf;
    b->len = H1_READ_BUF;
}

static void h1_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    h1_conn *c = s->data;
    if (n == 0 || c->closing) return;
    if (!c->req) {
        /* Idle: the provider closed it, or sent bytes nobody asked for. */
        h1_conn_close(c);
        return;
    }
    if (n < 0) {
        if (n == UV_EOF && c->got_bytes) {
            /* An answer whose end is the connection's end (no length). */
            llhttp_finish(&c->parser);   /* HPE_PAUSED from on_message_complete */
            if (c->complete && c->req) {
                h1_conn_release(c, false);
                return;
            }
            if (!c->req) return;
        }
        h1_conn_broke(c, n == UV_EOF ? "closed by the provider" : uv_strerror((int)n));
        return;
    }
    c->got_bytes = true;
    llhttp_errno_t e = llhttp_execute(&c->parser, b->base, (size_t)n);
    if (c->closing || !c->req) return;        /* cancelled from a handler */
    if (c->complete) {
        /* Bytes past the answer: nothing was asked for them; do not reuse.
         * Nor after a 101: the provider speaks something else from there. */
        const char *end = llhttp_get_error_pos(&c->parser);
        bool extra = e == HPE_PAUSED && end && end < b->base + n;
        h1_conn_release(c, !extra && c->status != 101 && llhttp_should_keep_alive(&c->parser));
        return;
    }
    if (e == HPE_OK) return;
    h1_req *r = c->req;
    if (c->abort) {
        /* The owner refused a piece (its own error is set): stop here. */
        h1_conn_close(c);
        r->conn = NULL;
        h1_fail(r, H1_BROKEN, "%s", "answer refused by the receiver");
        return;
    }
    if (c->head_bytes > H1_MAX_HEAD) {
        int status = c->status;
        h1_conn_close(c);
        r->conn = NULL;
        h1_fail(r, status ? H1_BROKEN : H1_CONNECT, "%s", "provider's response headers are over 64 KiB");
        return;
    }
    h1_conn_broke(c, llhttp_errno_name(e));
}

/* ------------------------------------------------------------- sending */

static void h1_write_done(uv_write_t *w, int status)
{
    h1_conn *c = w->data;
    if (c->closing) return;
    c->out.len = 0;
    if (status < 0 && c->req) h1_conn_broke(c, uv_strerror(status));
}

static void h1_append_headers(buf *o, const struct curl_slist *l)
{
    for (; l; l = l->next) {
        const char *s = l->data;
        const char *colon = strchr(s, ':');
        if (!colon) continue;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        if (!*v) continue;   /* curl's "Name:" removes a header: send nothing */
        buf_puts(o, s);
        buf_append(o, "\r\n", 2);
    }
}

/* Write r's request on c (connected, no request on it). */
static void h1_send(h1_conn *c, h1_req *r)
{
    upstream_h1 *h = c->h;
    c->req = r;
    r->conn = c;
    c->complete = c->abort = c->got_bytes = false;
    c->status = 0;
    c->head_bytes = 0;
    c->name_len = c->value_len = 0;
    c->name_over = c->value_over = false;
    llhttp_init(&c->parser, HTTP_RESPONSE, &H1_SETTINGS);
    c->parser.data = c;

    buf *o = &c->out;
    o->len = 0;
    buf_puts(o, "POST ");
    buf_puts(o, h->path_prefix);
    buf_puts(o, r->path);
    buf_append(o, " HTTP/1.1\r\n", 11);
    buf_puts(o, h->host_line);
    h1_append_headers(o, r->headers);
    char cl[48] = "Content-Length: ";
    size_t k = 16 + fmt_u64(cl + 16, r->body_len);
    memcpy(cl + k, "\r\n\r\n", 4);
    buf_append(o, cl, k + 4);

    uv_buf_t parts[2] = { uv_buf_init(o->data, (unsigned)o->len),
                          uv_buf_init((char *)r->body, (unsigned)r->body_len) };
    int nparts = r->body_len ? 2 : 1;
    int wrote = uv_try_write((uv_stream_t *)&c->tcp, parts, (unsigned)nparts);
    size_t total = o->len + r->body_len;
    if (wrote == (int)total) {
        o->len = 0;
        return;
    }
    if (wrote < 0 && wrote != UV_EAGAIN) {
        h1_conn_broke(c, uv_strerror(wrote));
        return;
    }
    /* The rest goes through uv_write from a copy kept in c: the caller's
     * body may be freed while the write waits (a cancel closes c first). */
    size_t done = wrote > 0 ? (size_t)wrote : 0;
    buf rest;
    buf_init(&rest);
    if (done < o->len) {
        buf_append(&rest, o->data + done, o->len - done);
        buf_append(&rest, r->body, r->body_len);
    } else {
        buf_append(&rest, r->body + (done - o->len), r->body_len - (done - o->len));
    }
    buf_free(o);
    *o = rest;
    c->write.data = c;
    uv_buf_t one = uv_buf_init(o->data, (unsigned)o->len);
    int rc = uv_write(&c->write, (uv_stream_t *)&c->tcp, &one, 1, h1_write_done);
    if (rc < 0) h1_conn_broke(c, uv_strerror(rc));
}

/* ---------------------------------------------------------- connecting */

static void h1_try_connect(h1_conn *c);

/* A connection for r, counted in h (it takes one of max_connections). */
static h1_conn *h1_conn_new(upstream_h1 *h, h1_req *r)
{
    h1_conn *c = xcalloc(1, sizeof(*c));
    c->h = h;
    buf_init(&c->out);
    c->req = r;
    r->conn = c;
    c->next = h->conns;
    if (h->conns) h->conns->prev = c;
    h->conns = c;
    h->n_conns++;
    h->handles++;
    uv_tcp_init(h->u->loop, &c->tcp);
    c->tcp.data = c;
    return c;
}

static void h1_on_connect(uv_connect_t *cr, int status)
{
    h1_conn *c = cr->data;
    if (c->closing) return;
    if (status < 0) {
        c->ai_at = c->ai_at ? c->ai_at->ai_next : NULL;
        if (c->ai_at && c->req) {
            /* Another address of the name: a fresh socket for it, made
             * before c is closed so no waiter takes the slot meanwhile. */
            upstream_h1 *h = c->h;
            h1_req *r = c->req;
            c->req = NULL;
            h1_conn *d = h1_conn_new(h, r);
            d->ai = c->ai;
            d->ai_at = c->ai_at;
            c->ai = NULL;
            h1_conn_close(c);
            h1_try_connect(d);
            return;
        }
        h1_req *r = c->req;
        h1_conn_close(c);
        if (r) {
            r->conn = NULL;
            /* The host is at most 253 bytes: the message fits. */
            snprintf(r->msg, sizeof(r->msg), "could not connect to %.180s:%.5s: %.40s", c->h->host, c->h->port,
                     uv_strerror(status));
            h1_deliver(r, H1_CONNECT);
        }
        return;
    }
    c->connected = true;
    if (c->ai) {
        uv_freeaddrinfo(c->ai);
        c->ai = c->ai_at = NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 60);
    uv_read_start((uv_stream_t *)&c->tcp, h1_alloc, h1_on_read);
    h1_req *r = c->req;
    if (!r) {   /* its request went away meanwhile: keep the connection for the next */
        h1_conn_release(c, true);
        return;
    }
    /* Connected: the request's timer now counts the whole attempt only. */
    uint64_t now = uv_now(c->h->u->loop);
    uv_timer_stop(&r->timer);
    c->req = NULL;
    r->conn = NULL;
    if (r->deadline_ms <= now) {
        h1_conn_release(c, true);
        h1_fail(r, H1_TIMEOUT, "%s", "provider timeout passed while connecting");
        return;
    }
    h1_arm(r, now);
    h1_send(c, r);
}

static void h1_try_connect(h1_conn *c)
{
    c->connect.data = c;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, c->ai_at->ai_addr, h1_on_connect);
    /* Refused at once: the same path as an asynchronous failure. */
    if (rc < 0) h1_on_connect(&c->connect, rc);
}

static void h1_on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    h1_conn *c = g->data;
    c->resolving = false;
    if (c->closing) {
        if (res) uv_freeaddrinfo(res);
        if (c->tcp_closed) h1_conn_free(c);
        return;
    }
    if (status < 0 || !res) {
        if (res) uv_freeaddrinfo(res);
        h1_req *r = c->req;
        h1_conn_close(c);
        if (r) {
            r->conn = NULL;
            h1_fail(r, H1_CONNECT, "could not resolve the provider's host: %s", uv_strerror(status));
        }
        return;
    }
    c->ai = c->ai_at = res;
    h1_try_connect(c);
}

/* A new connection for r (a slot is free). */
static void h1_connect(upstream_h1 *h, h1_req *r)
{
    h1_conn *c = h1_conn_new(h, r);
    if (h->numeric) {   /* an address: no resolver, no thread pool */
        c->ai_at = &h->addr_ai;
        h1_try_connect(c);
        return;
    }
    c->gai.data = c;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
    c->resolving = true;
    int rc = uv_getaddrinfo(h->u->loop, &c->gai, h1_on_resolved, h->host, h->port, &hints);
    if (rc < 0) h1_on_resolved(&c->gai, rc, NULL);
}

/* ------------------------------------------------------------ requests */

static void h1_on_timer(uv_timer_t *t)
{
    h1_req *r = t->data;
    if (r->ended) return;
    if (r->pending != H1_OK) {   /* a failure found before the caller got r */
        h1_deliver(r, r->pending);
        return;
    }
    h1_conn *c = r->conn;
    bool connecting = c && !c->connected;
    if (c) {
        c->req = NULL;
        r->conn = NULL;
        /* Mid-answer the connection cannot be reused; while connecting
         * it is dropped with its attempt, as curl does. */
        h1_conn_close(c);
    }
    h1_fail(r, H1_TIMEOUT, "%s", connecting ? "provider connect timeout passed" : "provider timeout passed");
}

static void h1_arm(h1_req *r, uint64_t now)
{
    if (r->ended || r->pending != H1_OK) return;   /* a failure is about to be delivered */
    uint64_t due = r->deadline_ms > now ? r->deadline_ms - now : 0;
    if (r->conn && !r->conn->connected && r->connect_timeout_ms < due) due = r->connect_timeout_ms;
    uv_timer_start(&r->timer, h1_on_timer, due, 0);
}

/* Send r on an idle connection, a new one, or queue it. */
static void h1_dispatch(h1_req *r)
{
    upstream_h1 *h = r->h;
    uint64_t now = uv_now(h->u->loop);
    while (h->idle) {
        h1_conn *c = h->idle;
        h->idle = c->idle_next;
        c->in_idle = false;
        if (c->closing) continue;
        h1_arm(r, now);
        h1_send(c, r);
        return;
    }
    if (h->n_conns < h->max_conns) {
        h1_connect(h, r);
        h1_arm(r, now);
        return;
    }
    r->waiting = true;
    r->wait_next = NULL;
    if (h->wait_tail) h->wait_tail->wait_next = r;
    else h->wait_head = r;
    h->wait_tail = r;
    h1_arm(r, now);
}

h1_req *upstream_h1_post(upstream_h1 *h, const char *path, const struct curl_slist *headers,
                         const char *body, size_t len, uint32_t timeout_ms, uint32_t connect_timeout_ms,
                         const h1_handlers *hd, void *owner)
{
    h1_req *r = xcalloc(1, sizeof(*r));
    r->h = h;
    r->hd = hd;
    r->owner = owner;
    r->path = path;
    r->headers = headers;
    r->body = body;
    r->body_len = len;
    r->connect_timeout_ms = connect_timeout_ms;
    r->deadline_ms = uv_now(h->u->loop) + timeout_ms;
    uv_timer_init(h->u->loop, &r->timer);
    r->timer.data = r;
    h->handles++;
    /* Nothing is delivered before the caller holds r: failures found now
     * (a connect refused at once) wait for the timer (fail_soon). */
    r->pending = H1_OK;
    r->in_post = true;
    h1_dispatch(r);
    r->in_post = false;
    return r;
}

void upstream_h1_pause(h1_req *r)
{
    if (r->ended || r->paused) return;
    r->paused = true;
    if (r->conn && r->conn->connected && !r->conn->closing) uv_read_stop((uv_stream_t *)&r->conn->tcp);
}

void upstream_h1_resume(h1_req *r)
{
    if (r->ended || !r->paused) return;
    r->paused = false;
    if (r->conn && r->conn->connected && !r->conn->closing)
        uv_read_start((uv_stream_t *)&r->conn->tcp, h1_alloc, h1_on_read);
}

void upstream_h1_cancel(h1_req *r)
{
    if (r->ended) return;
    h1_conn *c = r->conn;
    if (c) {
        c->req = NULL;
        r->conn = NULL;
        h1_conn_close(c);   /* an answer may be on its way: not reusable */
    }
    h1_req_end(r);
}

/* ---------------------------------------------------------------- pools */

static void h1_sweep(uv_timer_t *t)
{
    upstream_h1 *h = t->data;
    uint64_t now = uv_now(h->u->loop);
    for (h1_conn **pp = &h->idle; *pp;) {
        h1_conn *c = *pp;
        if (now - c->idle_since_ms >= H1_IDLE_MAX_MS) {
            *pp = c->idle_next;
            c->in_idle = false;
            h1_conn_close(c);
        } else {
            pp = &c->idle_next;
        }
    }
}

static void h1_sweep_closed(uv_handle_t *t) { h1_handle_gone(t->data); }

/* Whether this provider can go through the built-in client: plain http,
 * no credentials, query or fragment in the URL, no proxy in the
 * environment (curl would honour one), and not `http_client: curl`. On
 * success h's host, port, path and Host line are set. */
static bool h1_parse_base(upstream_h1 *h, const provider_cfg *p)
{
    if (!p || p->http_client_curl || !p->base_url) return false;
    static const char *proxies[] = { "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY" };
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++) {
        const char *v = getenv(proxies[i]);
        if (v && *v) return false;
    }
    const char *url = p->base_url;
    if (strncasecmp(url, "http://", 7) != 0) return false;
    const char *auth = url + 7;
    size_t alen = strcspn(auth, "/");
    const char *path = auth + alen;
    if (alen == 0 || memchr(auth, '@', alen) || strpbrk(url, "?#") ) return false;
    for (const char *q = url; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f || *q == '\\') return false;
    const char *host = auth, *host_end, *port = NULL;
    if (*host == '[') {
        host_end = memchr(auth, ']', alen);
        if (!host_end) return false;
        host++;
        if (host_end + 1 < auth + alen) {
            if (host_end[1] != ':') return false;
            port = host_end + 2;
        }
    } else {
        const char *colon = memchr(auth, ':', alen);
        host_end = colon ? colon : auth + alen;
        if (colon) port = colon + 1;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0 || hl > 253) return false;
    size_t pl = port ? (size_t)(auth + alen - port) : 0;
    if (port) {
        if (pl == 0 || pl > 5) return false;
        unsigned long v = 0;
        for (size_t i = 0; i < pl; i++) {
            if (port[i] < '0' || port[i] > '9') return false;
            v = v * 10 + (unsigned long)(port[i] - '0');
        }
        if (v == 0 || v > 65535) return false;
        snprintf(h->port, sizeof(h->port), "%lu", v);
    } else {
        memcpy(h->port, "80", 3);
    }
    h->host = xmalloc(hl + 1);
    memcpy(h->host, host, hl);
    h->host[hl] = '\0';
    unsigned short portnum = (unsigned short)atoi(h->port);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&h->addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&h->addr;
    if (uv_ip4_addr(h->host, portnum, a4) == 0 && inet_pton(AF_INET, h->host, &a4->sin_addr) == 1) {
        h->addr_ai.ai_family = AF_INET;
        h->addr_ai.ai_addrlen = sizeof(*a4);
        h->numeric = true;
    } else if (uv_ip6_addr(h->host, portnum, a6) == 0) {
        h->addr_ai.ai_family = AF_INET6;
        h->addr_ai.ai_addrlen = sizeof(*a6);
        h->numeric = true;
    }
    h->addr_ai.ai_socktype = SOCK_STREAM;
    h->addr_ai.ai_addr = (struct sockaddr *)&h->addr;
    size_t path_len = strlen(path);
    while (path_len > 0 && path[path_len - 1] == '/') path_len--;
    h->path_prefix = xmalloc(path_len + 1);
    memcpy(h->path_prefix, path, path_len);
    h->path_prefix[path_len] = '\0';
    buf line;
    buf_init(&line);
    buf_puts(&line, "Host: ");
    buf_append(&line, auth, alen);   /* as written, brackets and port included */
    buf_puts(&line, "\r\nUser-Agent: brigade/" BRIGADE_VERSION "\r\n");
    h->host_line = line.data;
    return true;
}

upstream_h1 *upstream_h1_get(upstream *u, const provider_cfg *p)
{
    for (size_t i = 0; i < u->n_h1; i++)
        if (u->h1[i]->prov == p) return u->h1[i]->usable ? u->h1[i] : NULL;
    upstream_h1 *h = xcalloc(1, sizeof(*h));
    h->u = u;
    h->prov = p;
    h->usable = h1_parse_base(h, p);
    if (h->usable) {
        h->max_conns = p->max_connections ? p->max_connections : 64;
        h->rbuf = xmalloc(H1_READ_BUF);
        uv_timer_init(u->loop, &h->sweep);
        h->sweep.data = h;
        uv_timer_start(&h->sweep, h1_sweep, H1_SWEEP_MS, H1_SWEEP_MS);
        uv_unref((uv_handle_t *)&h->sweep);
        h->handles = 1;
    }
    u->open_handles++;
    upstream_h1 **nh = xrealloc(u->h1, sizeof(*nh) * (u->n_h1 + 1));
    u->h1 = nh;
    u->h1[u->n_h1++] = h;
    return h->usable ? h : NULL;
}

void upstream_h1_free(upstream_h1 *h)
{
    h->closing = true;
    while (h->wait_head) {
        h1_req *r = h->wait_head;
        h1_fail(r, H1_CONNECT, "%s", "the upstream is shutting down");
    }
    while (h->conns) {
        h1_conn *c = h->conns;
        h1_req *r = c->req;
        h1_conn_close(c);
        if (r) {
            r->conn = NULL;
            h1_fail(r, H1_CONNECT, "%s", "the upstream is shutting down");
        }
    }
    h->idle = NULL;
    if (!h->usable) {
        h->handles = 1;
        h1_handle_gone(h);
        return;
    }
    uv_timer_stop(&h->sweep);
    uv_close((uv_handle_t *)&h->sweep, h1_sweep_closed);
}
