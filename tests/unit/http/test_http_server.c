/* test_http_server.c — the HTTP layer over real sockets on 127.0.0.1.
 *
 * A server with small limits runs on its own threads (port 0); each test
 * connects with plain blocking sockets, sends raw bytes and checks the raw
 * response: framing, keep-alive, pipelining order, chunked bodies, every
 * limit and its error envelope, timeouts, routing errors, streaming
 * backpressure, corked stream writes (coalesced per loop turn, in order,
 * dropped on close) and graceful shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "http/http_internal.h"

/* ---------------- handlers ---------------- */

static atomic_size_t g_max_queued;
static atomic_int    g_stream_full;
static atomic_int    g_done_count;

static void h_hello(http_request *req)
{
    http_respond(req, 200, "text/plain", "hello", 5);
}

/* 64 KiB of 'b' (a big answer to pipeline) */
static void h_big(http_request *req)
{
    static char body[64 * 1024];
    if (!body[0]) memset(body, 'b', sizeof body);
    http_respond(req, 200, "application/octet-stream", body, sizeof body);
}

static void h_echo(http_request *req)
{
    http_respond(req, 200, "application/octet-stream", req->body ? req->body : "", req->body_len);
}

static void h_user(http_request *req)
{
    char *s = arena_printf(&req->arena, "user=%s", req->params[0]);
    http_respond(req, 200, "text/plain", s, strlen(s));
}

static void h_user_key(http_request *req)
{
    char *s = arena_printf(&req->arena, "user=%s key=%s", req->params[0], req->params[1]);
    http_respond(req, 200, "text/plain", s, strlen(s));
}

static void h_query(http_request *req)
{
    const char *a = http_query_get(req, "a");
    const char *b = http_query_get(req, "b");
    char *s = arena_printf(&req->arena, "a=[%s] b=[%s]", a ? a : "(null)", b ? b : "(null)");
    http_respond(req, 200, "text/plain", s, strlen(s));
}

/* /slow?ms=N — answers from a timer on the request's loop. */
typedef struct slow { uv_timer_t t; http_request *req; } slow;

static void slow_closed(uv_handle_t *h) { free(h->data); }

static void slow_fire(uv_timer_t *t)
{
    slow *s = t->data;
    http_respond(s->req, 200, "text/plain", "slow", 4);
    t->data = s;
    uv_close((uv_handle_t *)t, slow_closed);
}

static void h_slow(http_request *req)
{
    const char *ms = http_query_get(req, "ms");
    slow *s = calloc(1, sizeof *s);
    s->req = req;
    uv_timer_init(req->loop, &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, slow_fire, ms ? (uint64_t)atoi(ms) : 100, 0);
}

/* /wait — like /slow, but notes when the client went away meanwhile. */
static atomic_int g_aborted;
static atomic_int g_wait_finished;

static void wait_abort(http_request *req)
{
    (void)req;
    atomic_fetch_add(&g_aborted, 1);
}

static void wait_fire(uv_timer_t *t)
{
    slow *s = t->data;
    if (s->req->aborted) atomic_fetch_add(&g_wait_finished, 1);
    /* the request object is still valid after the abort; answering frees it */
    http_respond(s->req, 200, "text/plain", "late", 4);
    uv_close((uv_handle_t *)t, slow_closed);
}

static void h_wait(http_request *req)
{
    slow *s = calloc(1, sizeof *s);
    s->req = req;
    req->on_abort = wait_abort;
    uv_timer_init(req->loop, &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, wait_fire, 200, 0);
}

/* /defer — work on the thread pool, answer on the loop. */
static void defer_work(http_request *req)
{
    usleep(20 * 1000);
    req->user = (void *)"deferred";
}

static void defer_done(http_request *req)
{
    http_respond(req, 200, "text/plain", req->user, strlen(req->user));
}

static void h_defer(http_request *req)
{
    http_request_defer(req, defer_work, defer_done);
}

/* /stream?kb=N — a producer that honours backpressure. */
typedef struct producer { size_t left; } producer;
static char g_chunk[16 * 1024];

static void stream_pump(http_request *req)
{
    producer *p = req->user;
    while (p->left) {
        size_t n = p->left < sizeof g_chunk ? p->left : sizeof g_chunk;
        p->left -= n;
        bool ok = http_stream_write(req, g_chunk, n);
        size_t q = http_conn_pending(req->conn);   /* queued + corked */
        size_t cur = atomic_load(&g_max_queued);
        while (q > cur && !atomic_compare_exchange_weak(&g_max_queued, &cur, q)) {}
        if (!ok) {
            if (req->aborted) break;
            atomic_fetch_add(&g_stream_full, 1);
            return;                  /* wait for on_drain */
        }
    }
    free(p);
    req->user = NULL;
    http_stream_end(req);
}

static atomic_int g_stream_aborted;

static void stream_abort(http_request *req)
{
    atomic_fetch_add(&g_stream_aborted, 1);
    free(req->user);
    req->user = NULL;
    http_stream_end(req);
}

static void h_stream(http_request *req)
{
    const char *kb = http_query_get(req, "kb");
    producer *p = calloc(1, sizeof *p);
    p->left = (size_t)(kb ? atoi(kb) : 64) * 1024;
    req->user = p;
    req->on_drain = stream_pump;
    req->on_abort = stream_abort;
    http_stream_begin(req, 200, "text/event-stream");
    stream_pump(req);
}

/* /burst?n=N&end=sync|timer|close|hold[&ms=M] — N small SSE events written
 * back to back inside the handler callback, then: end at once (sync), from
 * a timer (timer), by closing the connection under a non-empty cork
 * (close), or only when the client leaves (hold). */
typedef struct burst { uv_timer_t t; http_request *req; int phase; } burst;
static atomic_int g_burst_aborted;
static atomic_size_t g_close_cork_len;

static void burst_closed(uv_handle_t *h) { free(h->data); }

static void burst_fire(uv_timer_t *t)
{
    burst *b = t->data;
    b->req->user = NULL;
    http_stream_end(b->req);
    uv_close((uv_handle_t *)t, burst_closed);
}

static void burst_abort(http_request *req)
{
    atomic_fetch_add(&g_burst_aborted, 1);
    if (!req->user) http_stream_end(req);   /* else the pending timer ends it */
}

static void burst_later(http_request *req, uint64_t ms, uv_timer_cb cb)
{
    burst *b = calloc(1, sizeof *b);
    b->req = req;
    req->user = b;
    uv_timer_init(req->loop, &b->t);
    b->t.data = b;
    uv_timer_start(&b->t, cb, ms, 0);
}

static void h_burst(http_request *req)
{
    const char *ns = http_query_get(req, "n");
    const char *end = http_query_get(req, "end");
    const char *ms = http_query_get(req, "ms");
    int n = ns ? atoi(ns) : 100;
    req->on_abort = burst_abort;
    http_stream_begin(req, 200, "text/event-stream");
    for (int i = 0; i < n; i++) {
        char ev[48];
        int l = snprintf(ev, sizeof ev, "data: event-%d\n\n", i);
        http_stream_write(req, ev, (size_t)l);
    }
    if (!end || strcmp(end, "sync") == 0) {
        http_stream_end(req);
    } else if (strcmp(end, "timer") == 0) {
        burst_later(req, ms ? (uint64_t)atoi(ms) : 50, burst_fire);
    } else if (strcmp(end, "close") == 0) {
        atomic_store(&g_close_cork_len, req->conn->cork.len);  /* still corked */
        http_conn_close(req->conn);             /* on_abort ends the stream */
    }
    /* "hold": on_abort ends it */
}

/* /tick — the head now; one event from a timer callback 30 ms later (a
 * cork made outside the poll phase); the end 1.5 s after that. The event
 * must not wait for the end: nothing else wakes the loop meanwhile. */
static void tick_fire(uv_timer_t *t)
{
    burst *b = t->data;
    if (b->phase++ == 0) {
        http_stream_write(b->req, "data: tick\n\n", 12);
        uv_timer_start(t, tick_fire, 1500, 0);
        return;
    }
    burst_fire(t);
}

static void h_tick(http_request *req)
{
    req->on_abort = burst_abort;
    http_stream_begin(req, 200, "text/event-stream");
    burst_later(req, 30, tick_fire);
}

/* /sse — the SSE writer: one event with a name, an id and data of three
 * lines; pings every 20 ms; the end 90 ms later. */
typedef struct sse_state {
    uv_timer_t end;
    http_sse  *sse;
} sse_state;

static void sse_state_closed(uv_handle_t *h) { free(h->data); }

static void sse_fire(uv_timer_t *t)
{
    sse_state *st = t->data;
    http_sse_end(st->sse);
    uv_close((uv_handle_t *)t, sse_state_closed);
}

static void h_sse(http_request *req)
{
    sse_state *st = calloc(1, sizeof *st);
    st->sse = http_sse_begin(req, 20);
    assert_true(http_sse_event(st->sse, "note", "7", "a\nb\r\nc", 6));
    uv_timer_init(req->loop, &st->end);
    st->end.data = st;
    uv_timer_start(&st->end, sse_fire, 90, 0);
}

static void on_done(http_request *req, int status)
{
    (void)req;
    (void)status;
    atomic_fetch_add(&g_done_count, 1);
}

/* ---------------- server fixture ---------------- */

static http_router *make_router(void)
{
    http_router *r = http_router_new();
    http_router_add(r, "GET", "/hello", h_hello);
    http_router_add(r, "GET", "/big", h_big);
    http_router_add(r, "POST", "/echo", h_echo);
    http_router_add(r, "GET", "/users/{id}", h_user);
    http_router_add(r, "GET", "/users/{id}/keys/{kid}", h_user_key);
    http_router_add(r, "GET", "/query", h_query);
    http_router_add(r, "GET", "/slow", h_slow);
    http_router_add(r, "GET", "/defer", h_defer);
    http_router_add(r, "GET", "/stream", h_stream);
    http_router_add(r, "GET", "/wait", h_wait);
    http_router_add(r, "GET", "/burst", h_burst);
    http_router_add(r, "GET", "/tick", h_tick);
    http_router_add(r, "GET", "/sse", h_sse);
    return r;
}

static http_server_config make_config(http_router *r)
{
    http_server_config c;
    memset(&c, 0, sizeof c);
    c.host = "127.0.0.1";
    c.port = 0;
    c.threads = 2;
    c.router = r;
    c.limits.max_header_bytes = 1024;
    c.limits.max_headers = 10;
    c.limits.max_url_bytes = 256;
    c.limits.max_body_bytes = 1000;
    c.limits.header_timeout_ms = 300;
    c.limits.body_timeout_ms = 400;
    c.limits.idle_timeout_ms = 500;
    c.limits.shutdown_grace_ms = 2000;
    c.limits.stream_high_water = 64 * 1024;
    c.on_request_done = on_done;
    return c;
}

typedef struct fixture { http_router *router; http_server *srv; int port; } fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->router = make_router();
    http_server_config c = make_config(f->router);
    char err[128];
    f->srv = http_server_start(&c, err, sizeof err);
    if (!f->srv) {
        fprintf(stderr, "start: %s\n", err);
        return -1;
    }
    f->port = http_server_port(f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    http_server_stop(f->srv);
    http_router_free(f->router);
    free(f);
    return 0;
}

/* ---------------- a tiny blocking client ---------------- */

typedef struct client { int fd; char *buf; size_t len, cap; } client;

static void client_open(client *c, int port, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    if (rcvbuf) setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = { 3, 0 };
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
}

static void client_close(client *c)
{
    if (c->fd >= 0) close(c->fd);
    free(c->buf);
    c->fd = -1;
}

static void client_send(client *c, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}
#define SEND(c, lit) client_send((c), (lit), strlen(lit))

/* Read more bytes; 0 on EOF/timeout. */
static size_t client_fill(client *c)
{
    if (c->len == c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (r <= 0) return 0;
    c->len += (size_t)r;
    return (size_t)r;
}

typedef struct resp { int status; char head[4096]; char *body; size_t body_len; } resp;

static const char *resp_header(const resp *r, const char *name)
{
    static __thread char val[512];
    size_t nl = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p && p[2]) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            const char *e = strstr(v, "\r\n");
            size_t l = (size_t)(e - v);
            if (l >= sizeof val) l = sizeof val - 1;
            memcpy(val, v, l);
            val[l] = '\0';
            return val;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

static void consume(client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Read one full response (content-length or chunked); -1 if the server
 * closed or went quiet first. For HEAD pass no_body. */
static int read_response_ex(client *c, resp *r, bool no_body)
{
    memset(r, 0, sizeof *r);
    char *end;
    while (!(c->len && (end = memmem(c->buf, c->len, "\r\n\r\n", 4))))
        if (!client_fill(c)) return -1;
    size_t hl = (size_t)(end - c->buf) + 4;
    if (hl >= sizeof r->head) return -1;
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    r->status = atoi(r->head + 9);
    consume(c, hl);
    if (r->status == 100) return read_response_ex(c, r, no_body);
    const char *cl = resp_header(r, "content-length");
    const char *te = resp_header(r, "transfer-encoding");
    if (no_body) return 0;
    if (cl) {
        size_t n = (size_t)atol(cl);
        while (c->len < n)
            if (!client_fill(c)) return -1;
        r->body = malloc(n + 1);
        memcpy(r->body, c->buf, n);
        r->body[n] = '\0';
        r->body_len = n;
        consume(c, n);
    } else if (te && strcmp(te, "chunked") == 0) {
        size_t cap = 1024;
        r->body = malloc(cap);
        for (;;) {
            char *le;
            while (!(c->len && (le = memmem(c->buf, c->len, "\r\n", 2))))
                if (!client_fill(c)) return -1;
            size_t n = strtoul(c->buf, NULL, 16);
            size_t need = (size_t)(le - c->buf) + 2 + n + 2;
            while (c->len < need)
                if (!client_fill(c)) return -1;
            if (r->body_len + n + 1 > cap) {
                while (r->body_len + n + 1 > cap) cap *= 2;
                r->body = realloc(r->body, cap);
            }
            memcpy(r->body + r->body_len, le + 2, n);
            r->body_len += n;
            consume(c, need);
            if (n == 0) break;
        }
        r->body[r->body_len] = '\0';
    }
    return 0;
}

static int read_response(client *c, resp *r) { return read_response_ex(c, r, false); }

static void resp_free(resp *r) { free(r->body); r->body = NULL; }

/* Wait for EOF; true if the server closed within the receive timeout. */
static bool server_closed(client *c)
{
    char tmp[4096];
    for (;;) {
        ssize_t r = recv(c->fd, tmp, sizeof tmp, 0);
        if (r == 0) return true;
        if (r < 0) return errno == ECONNRESET;
    }
}

static void assert_envelope(const resp *r, int status, const char *type)
{
    assert_int_equal(r->status, status);
    assert_non_null(r->body);
    char want[128];
    snprintf(want, sizeof want, "{\"error\":{\"type\":\"%s\"", type);
    assert_non_null(strstr(r->body, want));
    assert_non_null(strstr(r->body, "\"param\":null}}"));
    assert_non_null(resp_header(r, "x-request-id"));
}

/* ---------------- tests ---------------- */

static void test_simple_get(void **state)
{
    fixture *f = *state;
    client c;
    client_open(&c, f->port, 0);
    SEND(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    resp r;
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello");
    assert_string_equal(resp_header(&r, "content-length"), "5");
    assert_non_null(resp_header(&r, "date"));
    assert_int_equal(strlen(resp_header(&r, "x-request-id")), 32);
    assert_null(resp_header(&r, "connection"));
    resp_free(&r);
    client_close(&c);
}

static void test_keepalive_and_request_id(void **state)
{
    fixture *f = *state;
    client c;
    client_open(&c, f->port, 0);
    resp r;
    SEND(&c, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc.DEF_12-3\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "x-request-id"), "abc.DEF_12-3");
    resp_free(&r);
    /* same socket, an invalid id is replaced */
    SEND(&c, "GET /users/7 HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad id!\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "user=7");
    assert_int_equal(strlen(resp_header(&r, "x-request-id")), 32);
    resp_free(&r);
    /* Connection: close is honoured */
    SEND(&c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(resp_header(&r, "connection"), "close");
    resp_free(&r);
    assert_true(server_closed(&c));
    client_close(&c);
}

static void test_http10(void **state)
{
    fixture *f = *state;
    client c;
    client_open(&c, f->port, 0);
    SEND(&c, "GET /hello HTTP/1.0\r\n\r\n");
    resp r;
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "connection"), "close");
    resp_free(&r);
    assert_true(server_closed(&c));
    client_close(&c);
    /* 1.0 with keep-alive stays open */
    client_open(&c, f->port, 0);
    SEND(&c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(resp_header(&r, "connection"), "keep-alive");
    resp_free(&r);
    SEND(&c, "GET /users/2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "user=2");
    resp_free(&r);
    client_close(&c);
}

static void test_pipelined_in_order(void **state)
{
    fixture *f = *state;
    client c;
    client_open(&c, f->port, 0);
    /* The first is slow (answered from a timer), the rest immediate: the
     * answers must still come back in request order. */
    SEND(&c, "GET /slow?ms=80 HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /users/3 HTTP/1.1\r\nHost: x\r\n\r\n");
    const char *want[] = { "slow", "user=1", "deferred", "user=3" };
    for (int i = 0; i < 4; i++) {
        resp r;
        assert_int_equal(read_response(&c, &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, want[i]);
        resp_free(&r);
    }
    client_close(&c);
}

static void test_chunked_body(void **state)
{
    fixture *f = *state;
    client c;
    client_open(&c, f->port, 0);
    SEND(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: t\r\n\r\n");
    resp r;
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello world");
    resp_free(&r);
    /* Content-Length body, then Expect: 100-continue */
    SEND(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "abc");
    resp_free(&r);
    SEND(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    char line[64] = { 0 };
    ssize_t n = recv(c.fd, line, 25, MSG_WAITALL);
    assert_int_equal(n, 25);
    assert_memory_equal(line, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    SEND(&c, "wxyz");
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "wxyz");
    resp_free(&r);
    client_close(&c);
}

static void test_body_too_large(void **state)
{
    fixture *f = *state;
    client c;
    resp r;
    client_open(&c, f->port, 0);
    SEND(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_envelope(&r, 413, "request_too_large");
    assert_string_equal(resp_header(&r, "connection"), "close");
    resp_free(&r);
    assert_true(server_closed(&c));
    client_close(&c);
    /* chunked: caught while decoding */
    client_open(&c, f->port, 0);
    SEND(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[600];
    memset(chunk, 'a', sizeof chunk);
    for (int i = 0; i < 2; i++) {
        SEND(&c, "258\r\n");
        client_send(&c, chunk, sizeof chunk);
        SEND(&c, "\r\n");
    }
    assert_int_equal(read_response(&c, &r), 0);
    assert_envelope(&r, 413, "request_too_large");
    resp_free(&r);
    client_close(&c);
}

static void test_header_limits(void **state)
{
    fixture *f = *state;
    client c;
    resp r;
    /* too many headers */
    client_open(&c, f->port, 0);
    SEND(&c, "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 12; i++) {
        char h[32];
        snprintf(h, sizeof h, "X-H%d: v\r\n", i);
        SEND(&c, h);
    }
    SEND(&c, "\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_envelope(&r, 431, "request_too_large");
    resp_free(&r);
    client_close(&c);
    /* header block too large */
    client_open(&c, f->port, 0);
    char big[1200];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    SEND(&c, "GET /hello HTTP/1.1\r\nX-Big: ");
    SEND(&c, big);
    SEND(&c, "\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_envelope(&r, 431, "request_too_large");
    resp_free(&r);
    client_close(&c);
    /* URL too long */
    client_open(&c, f->port, 0);
    char url[400];
    memset(url, 'u', sizeof url - 1);
    url[sizeof url - 1] = '\0';
    SEND(&c, "GET /");
    SEND(&c, url);
    SEND(&c, " HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_envelope(&r, 414, "invalid_request_error");
    resp_free(&r);
    client_close(&c);
}

static void test_malformed(void **state)
{
    fixture *f = *state;
    const char *bad[] = {
        "GET /hello HTTP/1.1\r\nHost x\r\n\r\n",
        "GARBAGE\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET /hello HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        client c;
        resp r;
        client_open(&c, f->port, 0);
        SEND(&c, bad[i]);
        assert_int_equal(read_response(&c, &r), 0);
        assert_envelope(&r, 400, "invalid_request_error");
        resp_free(&r);
        assert_true(server_closed(&c));
        client_close(&c);
    }
}

static void test_slowloris(void **state)
{
    fixture *f = *state;
    client slow, fast;
    client_open(&slow, f->port, 0);
    SEND(&slow, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool got = false;
    for (int i = 0; i < 20 && !got; i++) {
        SEND(&slow, "X-A: b\r\n");
        /* the well-behaved client is served meanwhile */
        if (i == 1) {
            client_open(&fast, f->port, 0);
            SEND(&fast, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
            resp r;
            assert_int_equal(read_response(&fast, &r), 0);
            assert_int_equal(r.status, 200);
            resp_free(&r);
            client_close(&fast);
        }
        struct pollfd pfd = { slow.fd, POLLIN, 0 };
        if (poll(&pfd, 1, 100) > 0) got = true;
    }
    assert_true(got);
    resp r;
    assert_int_equal(read_response(&slow, &r), 0);
    assert_envelope(&r, 408, "invalid_request_error");
    resp_free(&r);
    assert_true(server_closed(&slow));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 250 && ms < 1500);
    client_close(&slow);
}

static void test_body_timeout(void **state)
{
    fixture *f = *state;
    client c;
    resp r;
    client_open(&c, f->port, 0);
    SEND(&c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    assert_int_equal(read_response(&c, &r), 0);
    assert_envelope(&r, 408, "invalid_request_error");
    resp_free(&r);
    client_close(&c);
}

static void test_routing_errors(void **state)
{
    fixture *f = *state;
    client c;
    resp r;
    client_open(&c, f->port, 0);
    SEND(&c, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_envelope(&r, 405, "invalid_request_error");
    assert_string_equal(resp_header(&r, "allow"), "GET");
    resp_free(&r);
    /* the connection survives a 404 / 405 */
    SEND(&c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_envelope(&r, 404, "not_found_error");
    resp_free(&r);
    SEND(&c, "GET /users/42/keys/k7 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "user=42 key=k7");
    resp_free(&r);
    /* HEAD: headers of the GET, no body, connection still in sync */
    SEND(&c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response_ex(&c, &r, true), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "content-length"), "5");
    SEND(&c, "GET /query?a=hello%20wor+ld&b=%zz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "a=[hello wor ld] b=[(null)]");
    resp_free(&r);
    client_close(&c);
}

static void test_stream_backpressure(void **state)
{
    fixture *f = *state;
    atomic_store(&g_max_queued, 0);
    atomic_store(&g_stream_full, 0);
    client c;
    client_open(&c, f->port, 8 * 1024);
    SEND(&c, "GET /stream?kb=12288 HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(300 * 1000);            /* a slow reader: read nothing for a while */
    resp r;
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "transfer-encoding"), "chunked");
    assert_string_equal(resp_header(&r, "cache-control"), "no-cache");
    assert_string_equal(resp_header(&r, "x-accel-buffering"), "no");
    assert_int_equal(r.body_len, 12288 * 1024);
    resp_free(&r);
    /* the producer was told to stop, and the queue stayed near high water */
    assert_true(atomic_load(&g_stream_full) > 0);
    assert_true(atomic_load(&g_max_queued) <= 64 * 1024 + sizeof g_chunk + 64);
    client_close(&c);
}

/* ---------------- corked stream writes ---------------- */

static size_t total_writes(http_server *s)
{
    size_t n = 0;
    for (unsigned i = 0; i < s->n_workers; i++) n += atomic_load(&s->workers[i].n_writes);
    return n;
}

/* Is any worker's "something is corked" idle handle running? (Read from
 * the test's thread: a flag that only settles, checked after the loops
 * went quiet.) */
static bool cork_idle_running(http_server *s)
{
    for (unsigned i = 0; i < s->n_workers; i++)
        if (uv_is_active((uv_handle_t *)&s->workers[i].cork_idle)) return true;
    return false;
}

static void expect_events(const char *body, size_t len, int n)
{
    char want[48];
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        int l = snprintf(want, sizeof want, "data: event-%d\n\n", i);
        assert_true(off + (size_t)l <= len);
        assert_memory_equal(body + off, want, (size_t)l);
        off += (size_t)l;
    }
    assert_int_equal(off, len);
}

/* Wait until the socket has bytes (or ms pass); true if readable. */
static bool client_wait(client *c, int ms)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    return poll(&p, 1, ms) == 1;
}

static void test_cork_one_write(void **state)
{
    fixture *f = *state;
    client c;
    resp r;
    client_open(&c, f->port, 0);
    /* 200 events and the end inside one handler call: head, events and the
     * terminating chunk leave in a single write, hence one recv. */
    size_t before = total_writes(f->srv);
    SEND(&c, "GET /burst?n=200&end=sync HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(client_wait(&c, 2000));
    usleep(20 * 1000);   /* anything still to come would have come by now */
    assert_true(client_fill(&c) > 0);
    assert_non_null(memmem(c.buf, c.len, "0\r\n\r\n", 5));
    assert_int_equal(total_writes(f->srv) - before, 1);
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    expect_events(r.body, r.body_len, 200);
    resp_free(&r);
    /* The cork left with the end's write, not through the end-of-turn
     * pass: the idle handle that keeps a corked loop from sleeping must be
     * stopped all the same, or every later poll is a busy spin (it was:
     * two loop threads at ~70% CPU each with nothing to do). */
    for (int waited = 0; waited < 500 && cork_idle_running(f->srv); waited += 10) usleep(10 * 1000);
    assert_false(cork_idle_running(f->srv));

    /* Ended later from a timer: the events go at the end of the handler's
     * loop turn (not at the end of the stream), the terminator on its own. */
    before = total_writes(f->srv);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    SEND(&c, "GET /burst?n=200&end=timer&ms=600 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(client_wait(&c, 2000));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 400);
    assert_int_equal(total_writes(f->srv) - before, 1);   /* head + 200 events */
    assert_int_equal(read_response(&c, &r), 0);
    expect_events(r.body, r.body_len, 200);
    resp_free(&r);
    assert_int_equal(total_writes(f->srv) - before, 2);   /* + the terminator */

    /* HTTP/1.0 (no chunking, close-delimited): also one write. */
    client_close(&c);
    client_open(&c, f->port, 0);
    before = total_writes(f->srv);
    SEND(&c, "GET /burst?n=50&end=sync HTTP/1.0\r\n\r\n");
    while (client_fill(&c)) {}
    assert_int_equal(total_writes(f->srv) - before, 1);
    char *body = memmem(c.buf, c.len, "\r\n\r\n", 4);
    assert_non_null(body);
    body += 4;
    assert_null(memmem(c.buf, (size_t)(body - c.buf), "transfer-encoding", 17));
    expect_events(body, c.len - (size_t)(body - c.buf), 50);
    client_close(&c);
}

static void test_cork_timer_write_not_delayed(void **state)
{
    fixture *f = *state;
    client c;
    client_open(&c, f->port, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    SEND(&c, "GET /tick HTTP/1.1\r\nHost: x\r\n\r\n");
    /* the event is written from a timer 30 ms in; it must arrive long
     * before the end (1.5 s later) wakes the loop again */
    while (!memmem(c.buf, c.len, "data: tick", 10)) assert_true(client_fill(&c) > 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 400);
    resp r;
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "data: tick\n\n");
    resp_free(&r);
    client_close(&c);
}

static void test_sse_writer(void **state)
{
    fixture *f = *state;
    client c;
    client_open(&c, f->port, 0);
    SEND(&c, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n");
    resp r;
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    /* a payload's lines become data lines: none can end the event early */
    static const char ev[] = "event: note\nid: 7\ndata: a\ndata: b\ndata: c\n\n";
    assert_memory_equal(r.body, ev, sizeof ev - 1);
    /* then the pings, as comments, until the end */
    assert_non_null(strstr(r.body + sizeof ev - 1, ": ping\n\n"));
    assert_int_equal(strncmp(r.body + sizeof ev - 1, ": ping\n\n", 8), 0);
    resp_free(&r);
    client_close(&c);
}

static void test_cork_order_pipelined(void **state)
{
    fixture *f = *state;
    client c;
    client_open(&c, f->port, 0);
    SEND(&c, "GET /burst?n=40&end=timer&ms=60 HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /burst?n=7&end=sync HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /burst?n=3&end=timer&ms=10 HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /users/2 HTTP/1.1\r\nHost: x\r\n\r\n");
    resp r;
    assert_int_equal(read_response(&c, &r), 0);
    expect_events(r.body, r.body_len, 40);
    resp_free(&r);
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "user=1");
    resp_free(&r);
    assert_int_equal(read_response(&c, &r), 0);
    expect_events(r.body, r.body_len, 7);
    resp_free(&r);
    assert_int_equal(read_response(&c, &r), 0);
    expect_events(r.body, r.body_len, 3);
    resp_free(&r);
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "user=2");
    resp_free(&r);
    assert_int_equal(c.len, 0);   /* nothing stray after the last answer */
    client_close(&c);
}

static void test_cork_dropped_on_close(void **state)
{
    fixture *f = *state;
    atomic_store(&g_burst_aborted, 0);
    atomic_store(&g_close_cork_len, 0);
    client c;
    client_open(&c, f->port, 0);
    size_t before = total_writes(f->srv);
    SEND(&c, "GET /burst?n=30&end=close HTTP/1.1\r\nHost: x\r\n\r\n");
    /* the connection closed with head and events corked: none of it is
     * sent, the cork is freed (ASan), and the stream's on_abort ran */
    assert_true(server_closed(&c));
    assert_int_equal(c.len, 0);
    assert_true(atomic_load(&g_close_cork_len) > 0);
    for (int i = 0; i < 100 && atomic_load(&g_burst_aborted) == 0; i++) usleep(10 * 1000);
    assert_int_equal(atomic_load(&g_burst_aborted), 1);
    assert_int_equal(total_writes(f->srv) - before, 0);
    client_close(&c);

    /* a client that sends and half-closes at once: its EOF may arrive in the
     * same loop turn as the handler's corked events */
    for (int k = 0; k < 5; k++) {
        client_open(&c, f->port, 0);
        SEND(&c, "GET /burst?n=30&end=hold HTTP/1.1\r\nHost: x\r\n\r\n");
        shutdown(c.fd, SHUT_WR);
        assert_true(server_closed(&c));
        client_close(&c);
    }
    for (int i = 0; i < 100 && atomic_load(&g_burst_aborted) < 6; i++) usleep(10 * 1000);
    assert_int_equal(atomic_load(&g_burst_aborted), 6);

    /* the server is fine afterwards */
    client_open(&c, f->port, 0);
    SEND(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    resp r;
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "hello");
    resp_free(&r);
    client_close(&c);
}

/* Small events against a small high-water mark: the cork alone reaches it
 * (nothing in flight yet), the end-of-turn flush is taken whole by the
 * kernel, so no on_write will ever come: on_drain must fire from the flush
 * or the stream stalls. And a slow reader's memory stays bounded. */
#define EV_HW   4096
#define EV_SIZE 100
static atomic_size_t g_ev_max_pending;
static atomic_int    g_ev_full;

typedef struct evprod { size_t left; } evprod;

static void events_pump(http_request *req)
{
    evprod *p = req->user;
    char ev[EV_SIZE];
    memset(ev, 'e', sizeof ev);
    memcpy(ev, "data: ", 6);
    ev[EV_SIZE - 2] = ev[EV_SIZE - 1] = '\n';
    while (p->left) {
        p->left--;
        bool ok = http_stream_write(req, ev, sizeof ev);
        size_t q = http_conn_pending(req->conn);
        size_t cur = atomic_load(&g_ev_max_pending);
        while (q > cur && !atomic_compare_exchange_weak(&g_ev_max_pending, &cur, q)) {}
        if (!ok) {
            if (req->aborted) break;
            atomic_fetch_add(&g_ev_full, 1);
            return;
        }
    }
    free(p);
    req->user = NULL;
    http_stream_end(req);
}

static void events_abort(http_request *req)
{
    free(req->user);
    req->user = NULL;
    http_stream_end(req);
}

static void h_events(http_request *req)
{
    const char *n = http_query_get(req, "n");
    evprod *p = calloc(1, sizeof *p);
    p->left = (size_t)(n ? atoi(n) : 1000);
    req->user = p;
    req->on_drain = events_pump;
    req->on_abort = events_abort;
    http_stream_begin(req, 200, "text/event-stream");
    events_pump(req);
}

static void test_cork_drain_and_bound(void **state)
{
    (void)state;
    http_router *rt = http_router_new();
    http_router_add(rt, "GET", "/events", h_events);
    http_server_config cfg = make_config(rt);
    cfg.threads = 1;
    cfg.limits.stream_high_water = EV_HW;
    char err[128];
    http_server *srv = http_server_start(&cfg, err, sizeof err);
    assert_non_null(srv);
    int port = http_server_port(srv);

    for (int slow = 0; slow < 2; slow++) {
        atomic_store(&g_ev_max_pending, 0);
        atomic_store(&g_ev_full, 0);
        size_t before = total_writes(srv);
        client c;
        client_open(&c, port, slow ? 8 * 1024 : 0);
        SEND(&c, "GET /events?n=20000 HTTP/1.1\r\nHost: x\r\n\r\n");
        if (slow) usleep(200 * 1000);   /* a reader that takes nothing for a while */
        resp r;
        assert_int_equal(read_response(&c, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 20000 * EV_SIZE);
        resp_free(&r);
        /* the producer was stopped, resumed, and never had more than the
         * high water plus one framed event pending */
        assert_true(atomic_load(&g_ev_full) > 0);
        assert_true(atomic_load(&g_ev_max_pending) < EV_HW + EV_SIZE + 8);
        /* and the events were coalesced: tens per write, not one each */
        assert_true(total_writes(srv) - before < 20000 / 10);
        client_close(&c);
    }
    http_server_stop(srv);
    http_router_free(rt);
}

static void test_stalled_reader_cut_off(void **state)
{
    fixture *f = *state;
    atomic_store(&g_stream_aborted, 0);
    client c;
    client_open(&c, f->port, 8 * 1024);
    SEND(&c, "GET /stream?kb=65536 HTTP/1.1\r\nHost: x\r\n\r\n");
    /* never read: after idle_timeout_ms without progress the server gives up */
    for (int i = 0; i < 300 && atomic_load(&g_stream_aborted) == 0; i++) usleep(10 * 1000);
    assert_int_equal(atomic_load(&g_stream_aborted), 1);
    client_close(&c);
}

static void test_address_in_use(void **state)
{
    fixture *f = *state;
    http_router *r = make_router();
    http_server_config c = make_config(r);
    c.port = f->port;
    char err[128] = "";
    http_server *s = http_server_start(&c, err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "in use"));
    http_router_free(r);
}

static void test_client_abort(void **state)
{
    fixture *f = *state;
    atomic_store(&g_aborted, 0);
    atomic_store(&g_wait_finished, 0);
    int before = atomic_load(&g_done_count);
    client c;
    client_open(&c, f->port, 0);
    SEND(&c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50 * 1000);
    client_close(&c);                       /* gone while the handler waits */
    for (int i = 0; i < 100 && atomic_load(&g_wait_finished) == 0; i++) usleep(10 * 1000);
    assert_int_equal(atomic_load(&g_aborted), 1);
    assert_int_equal(atomic_load(&g_wait_finished), 1);
    /* the late answer still finished the request (metrics saw it) */
    for (int i = 0; i < 100 && atomic_load(&g_done_count) == before; i++) usleep(10 * 1000);
    assert_int_equal(atomic_load(&g_done_count), before + 1);
    /* deferred work whose client leaves meanwhile: done still runs safely */
    client_open(&c, f->port, 0);
    SEND(&c, "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n");
    client_close(&c);
    for (int i = 0; i < 100 && atomic_load(&g_done_count) == before + 1; i++) usleep(10 * 1000);
    assert_int_equal(atomic_load(&g_done_count), before + 2);
}

/* A keep-alive connection that has had one answer (GET /hello), idle. */
static void open_after_one_answer(client *c, int port)
{
    resp r;
    client_open(c, port, 0);
    SEND(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(c, &r), 0);
    resp_free(&r);
}

/* A client that pipelines many requests for big answers and reads none:
 * the server answers only while what it has queued stays under the
 * stream high-water mark (64 KiB here) plus what the kernel takes, then
 * waits; once the client reads, every answer comes, in order. Before,
 * every request was answered and queued at once (2 000 × 64 KiB). */
static void test_pipelined_answers_wait_for_the_reader(void **state)
{
    fixture *f = *state;
    enum { N = 2000 };
    static const char one[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t each = sizeof one - 1;
    char *all = malloc(N * each);
    assert_non_null(all);
    for (int i = 0; i < N; i++) memcpy(all + (size_t)i * each, one, each);
    int before = atomic_load(&g_done_count);
    client c;
    client_open(&c, f->port, 8 * 1024);
    client_send(&c, all, N * each);
    free(all);
    usleep(300 * 1000);                      /* under idle_timeout_ms: no write progress yet */
    int answered = atomic_load(&g_done_count) - before;
    /* the kernel's send buffer on loopback takes a few MB: some dozens */
    if (answered > 400) fail_msg("%d of %d answers made for a client that read none", answered, N);
    for (int i = 0; i < N; i++) {
        resp r;
        if (read_response(&c, &r) != 0) fail_msg("answer %d of %d did not come", i, N);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 64 * 1024);
        resp_free(&r);
    }
    client_close(&c);
}

/* Bytes that begin no request (the CR LF a client may send between
 * requests) do not keep an idle connection open: it still closes
 * idle_timeout_ms after its last answer. */
static void test_idle_timeout_not_renewed_by_crlf(void **state)
{
    fixture *f = *state;
    client c;
    open_after_one_answer(&c, f->port);
    /* a CR LF every 100 ms for 2 s (idle_timeout_ms = 500): closed all the same */
    bool closed = false;
    for (int i = 0; i < 20 && !closed; i++) {
        usleep(100 * 1000);
        SEND(&c, "\r\n");
        char b;
        ssize_t n = recv(c.fd, &b, 1, MSG_DONTWAIT);
        closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }
    if (!closed) fail_msg("a connection sent only CR LF was kept open past 2 s");
    client_close(&c);
}

/* The open-file limit is raised to hold max_connections and a reserve
 * (its hard limit allowing), or max_connections is lowered to fit: past
 * the limit every accept failed and no client got the 503. In a child, as
 * it changes the process's limit. */
static int fd_budget_child(rlim_t soft, rlim_t hard, uint32_t max_conns, rlim_t want_soft, uint32_t want_conns)
{
    struct rlimit r = {soft, hard};
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) return 10;
    http_router *rt = make_router();
    http_server_config c = make_config(rt);
    c.limits.max_connections = max_conns;
    char err[128];
    http_server *srv = http_server_start(&c, err, sizeof err);
    if (!srv) return 11;
    int rc = 0;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur != want_soft) rc = 12;
    if (!rc && srv->limits.max_connections != want_conns) rc = 13;
    http_server_stop(srv);
    http_router_free(rt);
    return rc;
}

static void test_fd_budget(void **state)
{
    (void)state;
    struct { rlim_t soft, hard; uint32_t conns; rlim_t want_soft; uint32_t want_conns; } cases[] = {
        {256, 8192, 1000, 2024, 1000},   /* raised to max_connections + 1 024 */
        {256, 1500, 1000, 1500, 750},    /* raised to the hard limit; max_connections lowered to half of it */
        {256, 4000, 5000, 4000, 2976},   /* ... or to what leaves 1 024 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(fd_budget_child(cases[i].soft, cases[i].hard, cases[i].conns, cases[i].want_soft, cases[i].want_conns));
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) != 0) fail_msg("case %zu: the child failed with %d", i, WEXITSTATUS(st));
    }
}

static void test_idle_timeout(void **state)
{
    fixture *f = *state;
    client c;
    open_after_one_answer(&c, f->port);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(server_closed(&c));          /* idle_timeout_ms = 500 */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 400 && ms < 1500);
    client_close(&c);
}

static void test_max_connections(void **state)
{
    (void)state;
    http_router *rt = make_router();
    http_server_config cfg = make_config(rt);
    cfg.limits.max_connections = 2;
    char err[128];
    http_server *srv = http_server_start(&cfg, err, sizeof err);
    assert_non_null(srv);
    int port = http_server_port(srv);
    client a, b, c;
    resp r;
    client_open(&a, port, 0);
    client_open(&b, port, 0);
    SEND(&a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(&a, &r), 0);
    resp_free(&r);
    SEND(&b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(&b, &r), 0);
    resp_free(&r);
    client_open(&c, port, 0);                /* the third is turned away */
    assert_int_equal(read_response(&c, &r), 0);
    assert_envelope(&r, 503, "overloaded_error");
    resp_free(&r);
    assert_true(server_closed(&c));
    client_close(&c);
    client_close(&a);                        /* room again */
    usleep(50 * 1000);
    client_open(&c, port, 0);
    SEND(&c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    client_close(&c);
    client_close(&b);
    http_server_stop(srv);
    http_router_free(rt);
}

static void test_ipv6(void **state)
{
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    if (probe < 0 || bind(probe, (struct sockaddr *)&a6, sizeof a6) != 0) {
        if (probe >= 0) close(probe);
        skip();                              /* no IPv6 loopback here */
    }
    close(probe);
    http_router *rt = make_router();
    http_server_config cfg = make_config(rt);
    cfg.host = "::1";
    char err[128];
    http_server *srv = http_server_start(&cfg, err, sizeof err);
    assert_non_null(srv);
    int port = http_server_port(srv);
    assert_true(port > 0);
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    a6.sin6_port = htons((uint16_t)port);
    assert_int_equal(connect(fd, (struct sockaddr *)&a6, sizeof a6), 0);
    client c;
    memset(&c, 0, sizeof c);
    c.fd = fd;
    c.cap = 4096;
    c.buf = malloc(c.cap);
    struct timeval tv = { 3, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SEND(&c, "GET /users/v6 HTTP/1.1\r\nHost: x\r\n\r\n");
    resp r;
    assert_int_equal(read_response(&c, &r), 0);
    assert_string_equal(r.body, "user=v6");
    resp_free(&r);
    client_close(&c);
    http_server_stop(srv);
    http_router_free(rt);
}

static atomic_int g_inits, g_finis;
static int g_marker;

static void *t_init(uv_loop_t *loop, unsigned index, void *arg)
{
    (void)loop;
    (void)index;
    (void)arg;
    atomic_fetch_add(&g_inits, 1);
    return &g_marker;
}

static void t_fini(void *td)
{
    if (td == &g_marker) atomic_fetch_add(&g_finis, 1);
}

static void *raise_later(void *arg)
{
    (void)arg;
    usleep(200 * 1000);
    kill(getpid(), SIGTERM);
    return NULL;
}

static void test_run_until_signal(void **state)
{
    (void)state;
    atomic_store(&g_inits, 0);
    atomic_store(&g_finis, 0);
    http_router *rt = make_router();
    http_server_config cfg = make_config(rt);
    cfg.thread_init = t_init;
    cfg.thread_fini = t_fini;
    char err[128];
    http_server *srv = http_server_start(&cfg, err, sizeof err);
    assert_non_null(srv);
    pthread_t th;
    pthread_create(&th, NULL, raise_later, NULL);
    int sig = http_server_run_until_signal(srv, NULL, NULL);
    pthread_join(th, NULL);
    assert_int_equal(sig, SIGTERM);
    assert_int_equal(atomic_load(&g_inits), 2);
    assert_int_equal(atomic_load(&g_finis), 2);
    http_router_free(rt);
}

typedef struct stopper { http_server *srv; } stopper;

static void *stop_thread(void *arg)
{
    stopper *s = arg;
    http_server_stop(s->srv);
    return NULL;
}

static void test_graceful_stop(void **state)
{
    (void)state;
    http_router *rt = make_router();
    http_server_config cfg = make_config(rt);
    char err[128];
    http_server *srv = http_server_start(&cfg, err, sizeof err);
    assert_non_null(srv);
    int port = http_server_port(srv);
    client busy, idle;
    client_open(&idle, port, 0);
    SEND(&idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    resp r;
    assert_int_equal(read_response(&idle, &r), 0);
    resp_free(&r);
    client_open(&busy, port, 0);
    SEND(&busy, "GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50 * 1000);
    pthread_t th;
    stopper st = { srv };
    pthread_create(&th, NULL, stop_thread, &st);
    /* the idle keep-alive connection is closed at once */
    assert_true(server_closed(&idle));
    /* the in-flight request finishes, told to close */
    assert_int_equal(read_response(&busy, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "slow");
    assert_string_equal(resp_header(&r, "connection"), "close");
    resp_free(&r);
    assert_true(server_closed(&busy));
    client_close(&busy);
    client_close(&idle);
    pthread_join(th, NULL);
    /* nothing listens any more */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_not_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
    http_router_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_keepalive_and_request_id),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_header_limits),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_body_timeout),
        cmocka_unit_test(test_routing_errors),
        cmocka_unit_test(test_stream_backpressure),
        cmocka_unit_test(test_stalled_reader_cut_off),
        cmocka_unit_test(test_cork_one_write),
        cmocka_unit_test(test_cork_timer_write_not_delayed),
        cmocka_unit_test(test_sse_writer),
        cmocka_unit_test(test_cork_order_pipelined),
        cmocka_unit_test(test_cork_dropped_on_close),
        cmocka_unit_test(test_cork_drain_and_bound),
        cmocka_unit_test(test_address_in_use),
        cmocka_unit_test(test_client_abort),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_fd_budget),
        cmocka_unit_test(test_idle_timeout_not_renewed_by_crlf),
        cmocka_unit_test(test_pipelined_answers_wait_for_the_reader),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_graceful_stop),
        cmocka_unit_test(test_run_until_signal),
    };
    return cmocka_run_group_tests_name("http_server", tests, setup, teardown);
}
