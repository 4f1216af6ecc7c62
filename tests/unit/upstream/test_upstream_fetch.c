/* test_upstream_fetch.c — upstream_http_fetch against a tiny HTTP server
 * written here on the same libuv loop: GET and POST, the headers sent,
 * status and body, a timeout, the response size cap (with and without a
 * Content-Length), a refused connection, cancel, a redirect that must not
 * be followed, and URLs that are not http(s). Each test ends with
 * uv_loop_close() == 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "test_util.h"
#include "upstream/upstream.h"
#include "util/buf.h"
#include "util/timeutil.h"

static uv_loop_t      L;
static brigade_config CFG;
static upstream      *U;

/* ---------------------------------------------------------- tiny server */

typedef struct conn {
    uv_tcp_t tcp;
    buf      in;
    bool     answered;
} conn;

static uv_tcp_t SRV;
static int      PORT;
static int      N_REQUESTS;
static buf      LAST_REQ;
static conn    *CONNS[16];

static void conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    for (int i = 0; i < 16; i++)
        if (CONNS[i] == c) CONNS[i] = NULL;
    buf_free(&c->in);
    free(c);
}

static void srv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(sz);
    b->len = sz;
}

static void write_done(uv_write_t *w, int status)
{
    (void)status;
    conn *c = w->data;
    free(((char **)(w + 1))[0]);
    free(w);
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void srv_send(conn *c, buf *resp)
{
    uv_write_t *w = malloc(sizeof(*w) + sizeof(char *));
    w->data = c;
    char *data = buf_detach(resp);
    ((char **)(w + 1))[0] = data;
    uv_buf_t b = uv_buf_init(data, (unsigned)strlen(data));
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, write_done);
}

static void srv_answer(conn *c, const char *req, size_t head, size_t cl)
{
    buf r;
    buf_init(&r);
    const char *path = strchr(req, ' ') + 1;
    if (strncmp(path, "/hello ", 7) == 0) {
        buf_puts(&r, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world");
    } else if (strncmp(path, "/echo ", 6) == 0) {
        buf_printf(&r, "HTTP/1.1 201 Created\r\nContent-Length: %zu\r\n\r\n", cl);
        buf_append(&r, req + head, cl);
        buf_append(&r, "", 1);
    } else if (strncmp(path, "/big ", 5) == 0) {
        buf_puts(&r, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n");
        for (int i = 0; i < 5000; i++) buf_append(&r, "x", 1);
        buf_append(&r, "", 1);
    } else if (strncmp(path, "/bigchunked ", 12) == 0) {
        buf_puts(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (int i = 0; i < 10; i++) {
            buf_puts(&r, "200\r\n");
            for (int k = 0; k < 512; k++) buf_append(&r, "y", 1);
            buf_puts(&r, "\r\n");
        }
        buf_puts(&r, "0\r\n\r\n");
    } else if (strncmp(path, "/redirect ", 10) == 0) {
        buf_printf(&r, "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/hello\r\nContent-Length: 5\r\n\r\nmoved", PORT);
    } else if (strncmp(path, "/hang ", 6) == 0) {
        buf_free(&r);
        return;   /* never answers; the client's timeout ends it */
    } else {
        buf_puts(&r, "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno");
    }
    c->answered = true;
    srv_send(c, &r);
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    if (n > 0) buf_append(&c->in, b->base, (size_t)n);
    free(b->base);
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    if (c->answered || !c->in.data) return;
    buf_append(&c->in, "", 1);
    c->in.len--;
    const char *end = strstr(c->in.data, "\r\n\r\n");
    if (!end) return;
    size_t head = (size_t)(end - c->in.data) + 4, cl = 0;
    for (const char *p = c->in.data + 1; p < end; p++)
        if (p[-1] == '\n' && strncasecmp(p, "content-length:", 15) == 0) cl = strtoul(p + 15, NULL, 10);
    if (c->in.len < head + cl) return;
    N_REQUESTS++;
    LAST_REQ.len = 0;
    buf_append(&LAST_REQ, c->in.data, c->in.len);
    buf_append(&LAST_REQ, "", 1);
    srv_answer(c, c->in.data, head, cl);
}

static void srv_accept(uv_stream_t *srv, int status)
{
    assert_int_equal(status, 0);
    conn *c = calloc(1, sizeof(*c));
    buf_init(&c->in);
    uv_tcp_init(&L, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&c->tcp), 0);
    for (int i = 0; i < 16; i++)
        if (!CONNS[i]) { CONNS[i] = c; break; }
    uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_read);
}

static int setup(void **st)
{
    (void)st;
    assert_int_equal(uv_loop_init(&L), 0);
    U = upstream_new(&L, &CFG);
    N_REQUESTS = 0;
    buf_init(&LAST_REQ);
    uv_tcp_init(&L, &SRV);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&SRV, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&SRV, 16, srv_accept), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&SRV, (struct sockaddr *)&got, &len);
    PORT = ntohs(got.sin_port);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    upstream_free(U);
    for (int i = 0; i < 16; i++)
        if (CONNS[i] && !uv_is_closing((uv_handle_t *)&CONNS[i]->tcp))
            uv_close((uv_handle_t *)&CONNS[i]->tcp, conn_closed);
    if (!uv_is_closing((uv_handle_t *)&SRV)) uv_close((uv_handle_t *)&SRV, NULL);
    uv_run(&L, UV_RUN_DEFAULT);
    buf_free(&LAST_REQ);
    assert_int_equal(uv_loop_close(&L), 0);
    return 0;
}

/* ------------------------------------------------------------- client */

typedef struct result {
    int      done, status;
    buf      body;
    char     error[256];
    bool     has_error;
    uint64_t t0, t_done;
} result;

static void on_done(void *arg, int status, const char *body, size_t len, const char *error)
{
    result *r = arg;
    r->done++;
    r->status = status;
    if (body) buf_append(&r->body, body, len);
    buf_append(&r->body, "", 1);
    r->has_error = error != NULL;
    if (error) snprintf(r->error, sizeof(r->error), "%s", error);
    r->t_done = time_mono_ns();
}

/* The test server is on loopback: the operator's allowance, unless a
 * test sets another policy (NULL: the strictest) and where to copy the
 * check. */
static const egress_policy LOOPBACK_OK = {.allow_private_networks = true};
static const egress_policy *POLICY = &LOOPBACK_OK;
static egress_check *CHECK_OUT;

static void idle_noop(uv_idle_t *h) { (void)h; }

static void fetch(result *r, const char *method, const char *path, const char *body,
                  const char *const *headers, size_t n_headers, uint32_t timeout_ms, size_t max)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->body);
    char url[256];
    if (strstr(path, "://")) snprintf(url, sizeof(url), "%s", path);
    else snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", PORT, path);
    upstream_http_req req = {
        .method = method, .url = url, .headers = headers, .n_headers = n_headers,
        .body = body, .body_len = body ? strlen(body) : 0, .timeout_ms = timeout_ms,
        .max_response_bytes = max, .request_id = "rid-7", .egress = POLICY, .egress_out = CHECK_OUT,
    };
    r->t0 = time_mono_ns();
    assert_non_null(upstream_http_fetch(U, &req, on_done, r));
    assert_int_equal(r->done, 0);   /* never inside upstream_http_fetch */
    /* A fetch egress refuses ends inside curl's timer callback, with no
     * I/O after it: an idle handle keeps UV_RUN_ONCE from blocking in
     * the poll once the flag is set. */
    uv_idle_t idle;
    uv_idle_init(&L, &idle);
    uv_idle_start(&idle, idle_noop);
    int got = test_run_until(&L, &r->done, 4000);
    uv_close((uv_handle_t *)&idle, NULL);
    assert_int_equal(got, 1);
    for (int i = 0; i < 3; i++) uv_run(&L, UV_RUN_NOWAIT);
    assert_int_equal(r->done, 1);
}

static void test_get_post(void **st)
{
    (void)st;
    result r;
    static const char *const hdrs[] = { "Authorization: Bearer tok-1", "X-Custom: yes" };
    fetch(&r, "GET", "/hello", NULL, hdrs, 2, 2000, 1000);
    if (r.has_error) fail_msg("%s", r.error);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "hello world");
    assert_true(strncmp(LAST_REQ.data, "GET /hello HTTP/1.1\r\n", 21) == 0);
    assert_non_null(strcasestr(LAST_REQ.data, "\r\nauthorization: Bearer tok-1\r\n"));
    assert_non_null(strcasestr(LAST_REQ.data, "\r\nx-custom: yes\r\n"));
    assert_non_null(strcasestr(LAST_REQ.data, "\r\nx-request-id: rid-7\r\n"));
    buf_free(&r.body);

    static const char *const ct[] = { "Content-Type: application/json" };
    fetch(&r, "POST", "/echo", "{\"a\":1}", ct, 1, 2000, 1000);
    assert_false(r.has_error);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body.data, "{\"a\":1}");
    assert_true(strncmp(LAST_REQ.data, "POST /echo HTTP/1.1\r\n", 21) == 0);
    assert_non_null(strcasestr(LAST_REQ.data, "\r\ncontent-type: application/json\r\n"));
    assert_null(strcasestr(LAST_REQ.data, "expect:"));
    buf_free(&r.body);

    fetch(&r, "PUT", "/echo", "put-body", NULL, 0, 2000, 1000);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body.data, "put-body");
    assert_true(strncmp(LAST_REQ.data, "PUT /echo HTTP/1.1\r\n", 20) == 0);
    buf_free(&r.body);

    fetch(&r, "DELETE", "/nothing", NULL, NULL, 0, 2000, 1000);
    assert_false(r.has_error);   /* a complete response, whatever its status */
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body.data, "no");
    assert_true(strncmp(LAST_REQ.data, "DELETE /nothing HTTP/1.1\r\n", 26) == 0);
    buf_free(&r.body);
}

static void test_limits(void **st)
{
    (void)st;
    result r;
    fetch(&r, "GET", "/big", NULL, NULL, 0, 2000, 1000);
    assert_true(r.has_error);
    assert_string_equal(r.error, "response over 1000 bytes");
    buf_free(&r.body);

    fetch(&r, "GET", "/bigchunked", NULL, NULL, 0, 2000, 1000);
    assert_true(r.has_error);
    assert_string_equal(r.error, "response over 1000 bytes");
    buf_free(&r.body);

    fetch(&r, "GET", "/big", NULL, NULL, 0, 2000, 5000);   /* exactly at the cap: fine */
    assert_false(r.has_error);
    assert_int_equal(strlen(r.body.data), 5000);
    buf_free(&r.body);

    fetch(&r, "GET", "/hang", NULL, NULL, 0, 150, 1000);
    assert_true(r.has_error);
    assert_string_equal(r.error, "timed out after 150 ms");
    assert_true(r.t_done - r.t0 >= 140000000ULL);
    buf_free(&r.body);
}

static void test_no_redirect_and_schemes(void **st)
{
    (void)st;
    result r;
    fetch(&r, "GET", "/redirect", NULL, NULL, 0, 2000, 1000);
    assert_false(r.has_error);
    assert_int_equal(r.status, 302);
    assert_string_equal(r.body.data, "moved");
    assert_int_equal(N_REQUESTS, 1);   /* /hello was never asked for */
    buf_free(&r.body);

    static const char *const bad_urls[] = { "file:///etc/passwd", "gopher://127.0.0.1/x", "ftp://127.0.0.1/" };
    for (size_t i = 0; i < 3; i++) {
        fetch(&r, "GET", bad_urls[i], NULL, NULL, 0, 2000, 1000);
        assert_true(r.has_error);
        assert_string_equal(r.error, "only http:// and https:// URLs are allowed");
        assert_int_equal(r.status, 0);
        buf_free(&r.body);
    }
    static const char *const smuggle[] = { "X-A: 1\r\nX-B: 2" };
    fetch(&r, "GET", "/hello", NULL, smuggle, 1, 2000, 1000);
    assert_true(r.has_error);
    assert_non_null(strstr(r.error, "invalid header"));
    buf_free(&r.body);
    fetch(&r, "TRACE", "/hello", NULL, NULL, 0, 2000, 1000);
    assert_true(r.has_error);
    buf_free(&r.body);
    assert_int_equal(N_REQUESTS, 1);
}

static void test_refused_and_cancel(void **st)
{
    (void)st;
    result r;
    char url[64];
    /* A port nobody listens on: bind one, close it. */
    uv_tcp_t tmp;
    uv_tcp_init(&L, &tmp);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&tmp, (const struct sockaddr *)&a, 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&tmp, (struct sockaddr *)&got, &len);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(got.sin_port));
    uv_close((uv_handle_t *)&tmp, NULL);
    uv_run(&L, UV_RUN_NOWAIT);
    fetch(&r, "GET", url, NULL, NULL, 0, 2000, 1000);
    assert_true(r.has_error);
    assert_true(strncmp(r.error, "could not connect: ", 19) == 0);
    assert_int_equal(r.status, 0);
    buf_free(&r.body);

    /* Cancel in flight: done is never called, nothing leaks. */
    result c;
    memset(&c, 0, sizeof(c));
    buf_init(&c.body);
    char hang[64];
    snprintf(hang, sizeof(hang), "http://127.0.0.1:%d/hang", PORT);
    upstream_http_req req = { .method = "GET", .url = hang, .timeout_ms = 2000, .egress = &LOOPBACK_OK };
    upstream_fetch *f = upstream_http_fetch(U, &req, on_done, &c);
    assert_non_null(f);
    for (int i = 0; i < 20 && N_REQUESTS == 0; i++) uv_run(&L, UV_RUN_ONCE);
    upstream_fetch_cancel(f);
    for (int i = 0; i < 5; i++) uv_run(&L, UV_RUN_NOWAIT);
    assert_int_equal(c.done, 0);

    /* Cancel before the first loop turn, also of an early failure. */
    f = upstream_http_fetch(U, &req, on_done, &c);
    upstream_fetch_cancel(f);
    upstream_http_req bad = { .method = "GET", .url = "file:///x" };
    f = upstream_http_fetch(U, &bad, on_done, &c);
    upstream_fetch_cancel(f);
    for (int i = 0; i < 5; i++) uv_run(&L, UV_RUN_NOWAIT);
    assert_int_equal(c.done, 0);

    /* upstream_free with a fetch in flight: done once, "cancelled". */
    f = upstream_http_fetch(U, &req, on_done, &c);
    assert_non_null(f);
    upstream_free(U);
    U = upstream_new(&L, &CFG);
    assert_int_equal(c.done, 1);
    assert_true(c.has_error);
    assert_non_null(strstr(c.error, "cancelled"));
    buf_free(&c.body);
}

/* Egress: the strictest policy (none given) refuses the loopback server
 * before any byte is sent, and says so; an allowed connection into
 * loopback is not reused by a strict fetch; redirects are followed only
 * when the policy says, each hop checked. */
static void test_egress(void **st)
{
    (void)st;
    result r;
    egress_check chk;
    CHECK_OUT = &chk;
    POLICY = NULL;
    fetch(&r, "GET", "/hello", NULL, NULL, 0, 2000, 1000);
    assert_true(r.has_error);
    assert_true(strncmp(r.error, "egress refused: 127.0.0.1 is", 28) == 0);
    assert_non_null(strstr(r.error, "class loopback"));
    assert_int_equal(r.status, 0);
    assert_int_equal(chk.cls, EGRESS_LOOPBACK);
    assert_string_equal(chk.address, "127.0.0.1");
    assert_int_equal(N_REQUESTS, 0);
    buf_free(&r.body);

    POLICY = &LOOPBACK_OK;
    fetch(&r, "GET", "/hello", NULL, NULL, 0, 2000, 1000);
    assert_false(r.has_error);
    assert_int_equal(N_REQUESTS, 1);
    buf_free(&r.body);
    static const egress_policy strict = {0};
    POLICY = &strict;
    fetch(&r, "GET", "/hello", NULL, NULL, 0, 2000, 1000);
    assert_true(r.has_error);
    assert_int_equal(N_REQUESTS, 1);   /* the open connection was not reused */
    buf_free(&r.body);

    static const egress_policy follow = {.allow_private_networks = true, .max_redirects = 2};
    POLICY = &follow;
    fetch(&r, "GET", "/redirect", NULL, NULL, 0, 2000, 1000);
    assert_false(r.has_error);
    assert_int_equal(r.status, 200);
    assert_int_equal(N_REQUESTS, 3);   /* /redirect, then /hello */
    buf_free(&r.body);
    POLICY = &LOOPBACK_OK;
    CHECK_OUT = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_redirect_and_schemes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_egress, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
