/* conn.c — one client connection: reading, framing requests in order,
 * handing them to the router, writing, the per-connection timer, and the
 * way out (graceful "lingering" close, abort of a pending handler).
 *
 * Reads land in the worker's shared buffer and are parsed in place; only
 * bytes of a pipelined request that arrive while a handler is still busy
 * are copied into the connection's `pending` buffer, and parsing resumes
 * there once the response is out of the handler's hands. This is what keeps
 * pipelined answers in order without any response queue.
 *
 * One uv_timer per connection runs whichever deadline is current: header
 * (slowloris), body, idle keep-alive, or linger. It is re-armed only on a
 * phase change, never per read.
 *
 * Lifetime: the socket and timer together hold one reference, a request in
 * a handler holds another, so the struct survives a client that leaves
 * while its handler is still working.
 *
 * Writing: streamed bytes collect in the connection's cork until the end of
 * the loop turn (http_conn_flush_corked, from the worker's uv_check); every
 * direct write sends the cork ahead of itself in the same write, which is
 * what keeps the byte order without any bookkeeping in the callers.
 */
#include "http/http_internal.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define HTTP_LINGER_MS 2000

typedef struct http_wreq {
    uv_write_t req;
    http_conn *conn;
    size_t     len;
    char       data[];
} http_wreq;

static void conn_resume(http_conn *c);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);

/* Relaxed increment of a counter only this loop's thread writes: a plain
 * add, but readable from a test thread without a data race. */
#define COUNT(x) atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + 1, \
                                       memory_order_relaxed)

static void cork_unlink(http_conn *c);

static void conn_unref(http_conn *c)
{
    if (--c->refs > 0) return;
    cork_unlink(c);                 /* already off the list once closed; be sure */
    http_parser_free(&c->parser);
    buf_free(&c->pending);
    buf_free(&c->cork);
    http_request_destroy(c->spare);
    explicit_bzero(c->memo, sizeof c->memo);   /* it may hold a credential */
    free(c);
}

void *http_conn_memo(http_request *req) { return req && req->conn ? req->conn->memo : NULL; }

/* ---------------- timer ---------------- */

static void on_timer(uv_timer_t *t);

static void timer_set(http_conn *c, http_timer_state st)
{
    if (c->closing || c->tstate == st) return;
    c->tstate = (uint8_t)st;
    const http_limits *l = &c->w->srv->limits;
    uint64_t ms;
    switch (st) {
    case HTTP_T_HEADER: ms = l->header_timeout_ms; break;
    case HTTP_T_BODY:   ms = l->body_timeout_ms; break;
    case HTTP_T_IDLE:   ms = l->idle_timeout_ms; break;
    case HTTP_T_WRITE:  ms = l->idle_timeout_ms; break;
    case HTTP_T_LINGER: ms = HTTP_LINGER_MS; break;
    default:
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static const char *conn_request_id(http_conn *c)
{
    http_request *r = http_parser_current(&c->parser);
    return (r && r->priv->has_id) ? r->request_id : NULL;
}

static void on_timer(uv_timer_t *t)
{
    http_conn *c = t->data;
    switch (c->tstate) {
    case HTTP_T_HEADER:
        if (c->parser.in_message) {
            /* Slowloris: the header block is still trickling in. */
            http_send_error_raw(c, 408, "invalid_request_error", "header_timeout",
                                "request headers not received in time", conn_request_id(c));
            http_conn_close_when_written(c);
        } else {
            http_conn_close(c);     /* connected and said nothing */
        }
        break;
    case HTTP_T_BODY:
        http_send_error_raw(c, 408, "invalid_request_error", "body_timeout",
                            "request body not received in time", conn_request_id(c));
        http_conn_close_when_written(c);
        break;
    default:
        http_conn_close(c);         /* idle keep-alive, linger, stuck final write */
        break;
    }
}

/* ---------------- closing ---------------- */

static void on_close(uv_handle_t *h)
{
    http_conn *c = h->data;
    if (--c->open_handles > 0) return;
    http_worker *w = c->w;
    if (c->prev) c->prev->next = c->next;
    else w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    w->n_conns--;
    if (c->counted) atomic_fetch_sub(&w->srv->n_conns, 1);
    /* Tell a still-running handler now, from a callback of our own, so it
     * may finish the request right here without re-entering a write. */
    http_request *r = c->cur;
    if (r && r->on_abort) r->on_abort(r);
    conn_unref(c);
    http_worker_conn_gone(w);
}

void http_conn_close(http_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    uv_timer_stop(&c->timer);
    /* Nobody will read what is corked: drop it, and leave no pointer to this
     * connection on the corked list. */
    cork_unlink(c);
    buf_free(&c->cork);
    if (c->cur) c->cur->aborted = true;   /* on_abort is called from on_close */
    uv_close((uv_handle_t *)&c->tcp, on_close);
    uv_close((uv_handle_t *)&c->timer, on_close);
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    http_conn *c = s->data;
    if (status < 0 && !c->closing) http_conn_close(c);
}

/* Send FIN, then keep reading (and discarding) briefly: closing a socket
 * with unread input makes the kernel send RST, which can destroy the
 * response we just wrote before the client reads it. */
static void conn_start_linger(http_conn *c)
{
    if (c->closing || c->lingering) return;
    c->lingering = true;
    c->tstate = HTTP_T_NONE;
    timer_set(c, HTTP_T_LINGER);
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        http_conn_close(c);
        return;
    }
    if (!c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
    }
}

void http_conn_close_when_written(http_conn *c)
{
    if (c->closing) return;
    http_conn_flush(c);             /* what is corked is part of "written" */
    if (c->closing) return;         /* the flush failed */
    c->close_after_write = true;
    if (c->queued == 0) {
        conn_start_linger(c);
    } else {
        /* Bound the wait for a client that never reads its last response. */
        timer_set(c, HTTP_T_IDLE);
    }
}

/* ---------------- writing ---------------- */

static void on_write(uv_write_t *w, int status)
{
    http_wreq *wr = (http_wreq *)w;
    http_conn *c = wr->conn;
    c->queued -= wr->len;
    free(wr);
    if (c->closing) return;
    if (status < 0) {
        http_conn_close(c);
        return;
    }
    if (c->queued == 0 && c->close_after_write) {
        conn_start_linger(c);
        return;
    }
    if (c->tstate == HTTP_T_WRITE) {
        if (c->queued > 0) {
            uv_timer_start(&c->timer, on_timer, c->w->srv->limits.idle_timeout_ms, 0);
        } else {
            c->tstate = HTTP_T_NONE;
            uv_timer_stop(&c->timer);
            if (!c->cur && !c->parser.in_message) timer_set(c, HTTP_T_IDLE);
        }
    }
    http_request *r = c->cur;
    if (r && r->priv->want_drain &&
        http_conn_pending(c) < c->w->srv->limits.stream_high_water / 2) {
        r->priv->want_drain = false;
        if (r->on_drain && !r->aborted) r->on_drain(r);
    }
    /* pipelined requests held back by the backlog (conn_backlogged) */
    if (!r && !c->in_parse && (c->pending.len || !c->reading) &&
        http_conn_pending(c) < c->w->srv->limits.stream_high_water / 2)
        conn_resume(c);
}

/* The socket write itself: try the kernel at once, queue the remainder. */
static void conn_write_now(http_conn *c, const uv_buf_t *bufs, unsigned n)
{
    if (c->closing || c->lingering) return;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) total += bufs[i].len;
    if (!total) return;
    COUNT(c->w->n_writes);
    size_t done = 0;
    /* Fast path: nothing queued, so the kernel can take it now, in order. */
    if (c->queued == 0 && c->tcp.write_queue_size == 0) {
        int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (r > 0) done = (size_t)r;
        else if (r < 0 && r != UV_EAGAIN) {
            http_conn_close(c);
            return;
        }
        if (done == total) return;
    }
    size_t rest = total - done;
    http_wreq *wr = xmalloc(sizeof(*wr) + rest);
    wr->conn = c;
    wr->len = rest;
    char *o = wr->data;
    size_t skip = done;
    for (unsigned i = 0; i < n; i++) {
        size_t l = bufs[i].len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(o, bufs[i].base + skip, l - skip);
        o += l - skip;
        skip = 0;
    }
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)rest);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(wr);
        http_conn_close(c);
        return;
    }
    c->queued += rest;
    if (c->tstate == HTTP_T_NONE || c->tstate == HTTP_T_IDLE) timer_set(c, HTTP_T_WRITE);
}

/* ---------------- the cork ---------------- */

/* A cork buffer kept between turns of one stream saves a malloc per turn;
 * past this it is given back, so a burst does not pin memory. */
#define HTTP_CORK_KEEP (16 * 1024)
/* Most bufs any caller passes to http_conn_write (response head + body). */
#define HTTP_WRITE_MAX_BUFS 4

static void cork_noop(uv_idle_t *h) { (void)h; }

static void cork_link(http_conn *c)
{
    if (c->corked) return;
    http_worker *w = c->w;
    c->corked = true;
    c->cork_next = NULL;
    c->cork_prev = w->cork_tail;
    if (w->cork_tail) w->cork_tail->cork_next = c;
    else w->cork_head = c;
    w->cork_tail = c;
    /* Keep the next poll from sleeping while bytes wait: the check that
     * sends them runs only after poll returns. */
    if (w->n_corked++ == 0) uv_idle_start(&w->cork_idle, cork_noop);
}

static void cork_unlink(http_conn *c)
{
    if (!c->corked) return;
    http_worker *w = c->w;
    if (c->cork_prev) c->cork_prev->cork_next = c->cork_next;
    else w->cork_head = c->cork_next;
    if (c->cork_next) c->cork_next->cork_prev = c->cork_prev;
    else w->cork_tail = c->cork_prev;
    c->cork_prev = c->cork_next = NULL;
    c->corked = false;
    /* The last cork gone, by whatever path (a write that took the cork
     * along, a close): the loop may sleep again. Left running, the idle
     * handle turns every poll into a busy spin until the next cork. */
    if (--w->n_corked == 0) uv_idle_stop(&w->cork_idle);
}

/* After a write that sent `b` (the former cork): reuse it for the next turn
 * if it is small and nothing was corked meanwhile, else free it. */
static void cork_give_back(http_conn *c, buf *b)
{
    if (!c->closing && c->cork.cap == 0 && b->cap <= HTTP_CORK_KEEP) {
        b->len = 0;
        c->cork = *b;
    } else {
        buf_free(b);
    }
}

void http_conn_write(http_conn *c, const uv_buf_t *bufs, unsigned n)
{
    if (!c->cork.len || n > HTTP_WRITE_MAX_BUFS) {
        http_conn_flush(c);     /* no-op when nothing is corked */
        conn_write_now(c, bufs, n);
        return;
    }
    /* The cork goes first, in the same write: one syscall, order kept. */
    buf b = c->cork;
    buf_init(&c->cork);
    cork_unlink(c);
    uv_buf_t all[HTTP_WRITE_MAX_BUFS + 1];
    all[0] = uv_buf_init(b.data, (unsigned)b.len);
    memcpy(all + 1, bufs, n * sizeof *bufs);
    COUNT(c->w->n_cork_flushes);
    conn_write_now(c, all, n + 1);
    cork_give_back(c, &b);
}

void http_conn_flush(http_conn *c)
{
    cork_unlink(c);
    if (!c->cork.len) return;
    buf b = c->cork;
    buf_init(&c->cork);
    uv_buf_t one = uv_buf_init(b.data, (unsigned)b.len);
    COUNT(c->w->n_cork_flushes);
    conn_write_now(c, &one, 1);
    cork_give_back(c, &b);
}

void http_conn_cork(http_conn *c, const uv_buf_t *bufs, unsigned n)
{
    if (c->closing || c->lingering) return;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) total += bufs[i].len;
    if (!total) return;
    if (c->cork.len + total > HTTP_CORK_MAX) {
        http_conn_write(c, bufs, n);    /* cork + these, now */
        return;
    }
    for (unsigned i = 0; i < n; i++) buf_append(&c->cork, bufs[i].base, bufs[i].len);
    cork_link(c);
}

void http_conn_flush_corked(http_worker *w)
{
    const size_t hw = w->srv->limits.stream_high_water;
    /* Only as many as were corked when the pass began: a drain callback
     * that corks again is appended at the tail and sent next turn (the idle
     * handle keeps that turn from sleeping), so one fast client cannot hold
     * the loop here. */
    for (size_t n = w->n_corked; n > 0 && w->cork_head; n--) {
        http_conn *c = w->cork_head;
        http_conn_flush(c);             /* unlinks c */
        if (c->closing) continue;       /* on_abort comes from on_close */
        /* The kernel may have taken everything, in which case no on_write
         * will come to say the stream drained: say it here. */
        http_request *r = c->cur;
        if (r && r->priv->want_drain && http_conn_pending(c) < hw / 2) {
            r->priv->want_drain = false;
            if (r->on_drain && !r->aborted) r->on_drain(r);   /* may free c */
        }
    }
    if (!w->cork_head) uv_idle_stop(&w->cork_idle);
}

/* ---------------- requests ---------------- */

static http_request *conn_new_request(void *ctx)
{
    http_conn *c = ctx;
    http_request *r = c->spare;
    if (r) c->spare = NULL;
    else r = http_request_alloc();
    r->conn = c;
    r->loop = &c->w->loop;
    r->thread_data = c->w->thread_data;
    r->priv->state = HTTP_RS_PARSING;
    return r;
}

static void conn_on_headers(void *ctx, http_request *req)
{
    (void)req;
    http_conn *c = ctx;
    llhttp_t *ll = &c->parser.ll;
    bool body = (ll->flags & F_CHUNKED) || ((ll->flags & F_CONTENT_LENGTH) && ll->content_length > 0);
    if (c->parser.expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
        http_conn_write(c, &b, 1);
    }
    if (body) timer_set(c, HTTP_T_BODY);
}

static void conn_dispatch(http_conn *c, http_request *req)
{
    timer_set(c, HTTP_T_NONE);
    c->cur = req;
    c->refs++;
    req->priv->state = HTTP_RS_HANDLER;
    http_router *router = c->w->srv->cfg.router;
    int status = 404;
    http_handler h = router ? http_router_match(router, req, &status) : NULL;
    if (h) {
        h(req);
        return;
    }
    if (status == 405) {
        const char *allow = http_router_allow(router, req);
        if (allow) http_add_header(req, "allow", allow);
        http_respond_error(req, 405, "invalid_request_error", "method_not_allowed",
                           "method not allowed for this path", NULL);
    } else {
        http_respond_error(req, 404, "not_found_error", "not_found", "no such route", NULL);
    }
}

void http_conn_request_finished(http_request *req)
{
    http_conn *c = req->conn;
    struct http_request_priv *pv = req->priv;
    pv->state = HTTP_RS_DONE;
    /* A finished request leaves nothing corked (its last write flushed);
     * an idle keep-alive connection holds no cork memory. */
    if (!c->cork.len) buf_free(&c->cork);
    http_server *srv = c->w->srv;
    if (srv->cfg.on_request_done) srv->cfg.on_request_done(req, pv->status);
    bool keep = pv->resp_keep_alive && !c->w->stopping;
    if (c->cur == req) c->cur = NULL;
    if (c->closing) {
        http_request_destroy(req);
        conn_unref(c);              /* may free c */
        return;
    }
    if (!c->spare) {
        http_request_recycle(req);
        c->spare = req;
    } else {
        http_request_destroy(req);
    }
    c->refs--;                      /* the handles still hold one */
    if (!keep) {
        http_conn_close_when_written(c);
        return;
    }
    if (!c->in_parse) conn_resume(c);
}

bool http_conn_is_idle(const http_conn *c)
{
    /* A connection already finishing its last response closes by itself. */
    return c->cur == NULL && !c->close_after_write;
}

/* ---------------- reading and framing ---------------- */

static void conn_parse_error(http_conn *c)
{
    http_parser *p = &c->parser;
    http_send_error_raw(c, p->err_status, p->err_type, p->err_code, p->err_msg,
                        conn_request_id(c));
    http_conn_close_when_written(c);
}

/* Answers not yet taken by the client past the stream high-water mark:
 * the next pipelined request waits (its bytes stay in `pending`, and
 * reading stops past pending_cap) until they drain to half of it
 * (on_write). Dispatched regardless, a client that sent requests and
 * never read had every answer queued here: 72 KB of requests for a 97 KB
 * file held 190 MB, and each request it sent re-armed the timer that
 * would have closed it. */
static bool conn_backlogged(const http_conn *c)
{
    return http_conn_pending(c) >= c->w->srv->limits.stream_high_water;
}

/* Parse as many requests as the handler state allows; returns bytes used. */
static size_t conn_parse(http_conn *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (c->closing || c->close_after_write || c->cur) break;
        if (!c->parser.in_message && conn_backlogged(c)) break;
        size_t used = 0;
        bool was_in = c->parser.in_message;
        http_parse_result r = http_parser_feed(&c->parser, data + off, len - off, &used);
        off += used;
        /* The header deadline runs from a message's first byte (unless its
         * headers are already done: the body's then runs). Bytes that
         * begin none (the CR LF the grammar lets a client send between
         * requests) leave the idle timer as it was: re-arming it at each
         * one let a client hold a connection for ever with two bytes a
         * minute. */
        if (!was_in && c->parser.in_message && c->tstate != HTTP_T_BODY) timer_set(c, HTTP_T_HEADER);
        if (r == HTTP_PARSE_MORE) break;
        if (r == HTTP_PARSE_ERROR) {
            conn_parse_error(c);
            return len;
        }
        http_request *req = http_parser_take(&c->parser);
        if (c->closing) {               /* e.g. the 100-continue write failed */
            http_request_destroy(req);
            break;
        }
        conn_dispatch(c, req);
    }
    return off;
}

static void conn_after_parse(http_conn *c)
{
    if (c->closing || c->close_after_write || c->cur) return;
    if (!c->parser.in_message) timer_set(c, c->queued ? HTTP_T_WRITE : HTTP_T_IDLE);
}

static size_t pending_cap(const http_conn *c)
{
    const http_limits *l = &c->w->srv->limits;
    size_t cap = l->max_header_bytes + l->max_url_bytes;
    return cap < 64 * 1024 ? 64 * 1024 : cap;
}

static void conn_resume(http_conn *c)
{
    if (c->closing || c->close_after_write) return;
    if (c->pending.len) {
        c->in_parse = true;
        size_t used = conn_parse(c, c->pending.data, c->pending.len);
        c->in_parse = false;
        if (used >= c->pending.len) c->pending.len = 0;
        else buf_consume(&c->pending, used);
        /* an idle connection does not keep a pipelining burst's buffer */
        if (!c->pending.len && c->pending.cap > 16 * 1024) buf_free(&c->pending);
    }
    if (!c->closing && !c->reading && !c->close_after_write) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
    }
    conn_after_parse(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    http_conn *c = h->data;
    /* One buffer per loop: every read is consumed before the next alloc. */
    *b = uv_buf_init(c->w->readbuf, HTTP_READBUF_SIZE);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    http_conn *c = s->data;
    if (nread == 0 || c->closing) return;
    if (nread < 0) {
        /* EOF or reset. A client that half-closes while its request is in a
         * handler is treated as gone (as nginx does): the handler is told. */
        http_conn_close(c);
        return;
    }
    if (c->lingering || c->close_after_write) return;   /* discard */
    size_t n = (size_t)nread;
    if (c->cur || (!c->parser.in_message && conn_backlogged(c))) {
        buf_append(&c->pending, b->base, n);
        if (c->pending.len > pending_cap(c)) {
            uv_read_stop(s);
            c->reading = false;
        }
        return;
    }
    if (c->pending.len) {
        buf_append(&c->pending, b->base, n);
        conn_resume(c);
        return;
    }
    c->in_parse = true;
    size_t used = conn_parse(c, b->base, n);
    c->in_parse = false;
    if (used < n && !c->closing && !c->close_after_write) buf_append(&c->pending, b->base + used, n - used);
    conn_after_parse(c);
}

/* ---------------- accepting ---------------- */

void http_conn_accept(http_worker *w)
{
    http_server *srv = w->srv;
    http_conn *c = xcalloc(1, sizeof(*c));
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->refs = 1;
    c->open_handles = 2;
    buf_init(&c->pending);
    buf_init(&c->cork);
    http_parser_init(&c->parser, &srv->limits, conn_new_request, conn_on_headers, c);
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    if (uv_accept((uv_stream_t *)&w->listener, (uv_stream_t *)&c->tcp) != 0) {
        http_conn_close(c);
        return;
    }
    unsigned n = atomic_fetch_add(&srv->n_conns, 1) + 1;
    c->counted = true;
    if (n > srv->limits.max_connections || w->stopping) {
        /* Over the limit: one best-effort 503, then close. */
        http_send_error_raw(c, 503, "overloaded_error", "too_many_connections",
                            "server is at its connection limit", NULL);
        http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    timer_set(c, HTTP_T_HEADER);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        http_conn_close(c);
        return;
    }
    c->reading = true;
}
