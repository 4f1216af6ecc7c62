/* test_egress_curl.c — egress_apply on real libcurl transfers to a tiny
 * HTTP server on loopback (a thread): a strict policy refuses loopback
 * before any byte is sent, an operator's allowance lets it through, a
 * redirect hop is checked again (to the metadata address, to another
 * scheme), and a connection into a private network is never reused by a
 * stricter transfer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "egress/egress_curl.h"

/* The server: answers each request on a connection with `reply` (keeps the
 * connection open for the next), counts connections and requests. */
typedef struct server {
    int             fd;
    int             port;
    const char     *reply;
    int             connections, requests;
    pthread_t       thread;
    volatile int    stop;
} server;

static void *serve(void *arg)
{
    server *s = arg;
    while (!s->stop) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) break;
        if (s->stop) { close(c); break; }
        s->connections++;
        char buf[4096];
        for (;;) {
            ssize_t n = recv(c, buf, sizeof buf, 0);
            if (n <= 0) break;
            if (!memmem(buf, (size_t)n, "\r\n\r\n", 4)) continue;   /* small requests only */
            s->requests++;
            if (send(c, s->reply, strlen(s->reply), MSG_NOSIGNAL) < 0) break;
        }
        close(c);
    }
    return NULL;
}

static void server_start(server *s, const char *reply)
{
    memset(s, 0, sizeof *s);
    s->reply = reply;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(server *s)
{
    s->stop = 1;
    /* wake accept() */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    connect(c, (struct sockaddr *)&a, sizeof a);
    close(c);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    *(size_t *)ud += size * n;
    return size * n;
}

/* One GET of url under pol; the bytes of body received into *got. */
static CURLcode get(CURL *e, const char *url, const egress_policy *pol, egress_check *chk, size_t *got)
{
    *got = 0;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, got);
    assert_true(egress_apply(e, chk, pol));
    return curl_easy_perform(e);
}

#define OK_REPLY "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret"

static void test_strict_refuses_loopback_forms(void **state)
{
    (void)state;
    server s;
    server_start(&s, OK_REPLY);
    /* Every way of writing the server's own address that libcurl accepts. */
    const char *hosts[] = {"127.0.0.1", "localhost", "127.1", "2130706433", "0x7f000001",
                           "017700000001", "[::ffff:127.0.0.1]"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        char url[128];
        snprintf(url, sizeof url, "http://%s:%d/", hosts[i], s.port);
        CURL *e = curl_easy_init();
        egress_check chk;
        egress_policy strict = {.timeout_ms = 3000};
        size_t got;
        CURLcode rc = get(e, url, &strict, &chk, &got);
        if (!egress_refused(&chk, rc))
            fail_msg("%s was not refused (curl: %s, %zu bytes)", url, curl_easy_strerror(rc), got);
        assert_int_equal(got, 0);
        assert_int_equal(chk.cls, EGRESS_LOOPBACK);
        curl_easy_cleanup(e);
    }
    assert_int_equal(s.requests, 0);   /* nothing reached the server */
    server_stop(&s);
}

static void test_operator_allows_private(void **state)
{
    (void)state;
    server s;
    server_start(&s, OK_REPLY);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
    CURL *e = curl_easy_init();
    egress_check chk;
    egress_policy priv = {.allow_private_networks = true, .timeout_ms = 3000};
    size_t got;
    assert_int_equal(get(e, url, &priv, &chk, &got), CURLE_OK);
    assert_int_equal(got, 6);
    assert_false(egress_refused(&chk, CURLE_OK));
    assert_int_equal(chk.allowed, 1);
    /* an operator network naming the host does the same */
    egress_net n;
    char why[64];
    assert_true(egress_net_parse("127.0.0.0/8", &n, why, sizeof why));
    egress_policy listed = {.allow_nets = &n, .n_allow_nets = 1, .timeout_ms = 3000};
    assert_int_equal(get(e, url, &listed, &chk, &got), CURLE_OK);
    assert_int_equal(got, 6);
    curl_easy_cleanup(e);
    server_stop(&s);
}

/* The same easy handle keeps its connections: after an allowed transfer
 * into loopback, a strict transfer to the same host must connect again
 * (and be refused), not reuse the open connection. */
static void test_private_connection_not_reused(void **state)
{
    (void)state;
    server s;
    server_start(&s, OK_REPLY);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
    CURL *e = curl_easy_init();
    egress_check chk;
    egress_policy priv = {.allow_private_networks = true, .timeout_ms = 3000};
    egress_policy strict = {.timeout_ms = 3000};
    size_t got;
    assert_int_equal(get(e, url, &priv, &chk, &got), CURLE_OK);
    CURLcode rc = get(e, url, &strict, &chk, &got);
    assert_true(egress_refused(&chk, rc));
    assert_int_equal(got, 0);
    assert_int_equal(s.requests, 1);
    curl_easy_cleanup(e);
    server_stop(&s);
}

static void test_redirect_hops_checked(void **state)
{
    (void)state;
    server s;
    server_start(&s, "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\n"
                     "Content-Length: 0\r\n\r\n");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
    CURL *e = curl_easy_init();
    egress_check chk;
    size_t got;
    /* redirects not followed (the default): the 302 is the answer */
    egress_policy no_follow = {.allow_private_networks = true, .timeout_ms = 3000};
    assert_int_equal(get(e, url, &no_follow, &chk, &got), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 302);
    /* followed: the first hop is allowed, the metadata hop is not */
    egress_policy follow = {.allow_private_networks = true, .max_redirects = 3, .timeout_ms = 3000};
    CURLcode rc = get(e, url, &follow, &chk, &got);
    assert_true(egress_refused(&chk, rc));
    assert_int_equal(chk.cls, EGRESS_LINK_LOCAL);
    assert_string_equal(chk.address, "169.254.169.254");
    curl_easy_cleanup(e);
    server_stop(&s);

    /* another scheme in Location is refused by libcurl before any connection */
    const char *schemes[] = {"file:///etc/passwd", "gopher://127.0.0.1:70/_x", "dict://127.0.0.1:11211/"};
    for (size_t i = 0; i < 3; i++) {
        char reply[256];
        snprintf(reply, sizeof reply, "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n",
                 schemes[i]);
        server_start(&s, reply);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
        e = curl_easy_init();
        rc = get(e, url, &follow, &chk, &got);
        assert_int_equal(rc, CURLE_UNSUPPORTED_PROTOCOL);
        curl_easy_cleanup(e);
        server_stop(&s);
    }
}

static void test_schemes_and_bounds(void **state)
{
    (void)state;
    CURL *e = curl_easy_init();
    egress_check chk;
    size_t got;
    egress_policy pol = {.allow_private_networks = true, .timeout_ms = 2000};
    assert_int_equal(get(e, "file:///etc/hostname", &pol, &chk, &got), CURLE_UNSUPPORTED_PROTOCOL);
    assert_int_equal(get(e, "gopher://127.0.0.1:1/", &pol, &chk, &got), CURLE_UNSUPPORTED_PROTOCOL);
    curl_easy_cleanup(e);

    /* a body announced larger than the cap fails at once */
    server s;
    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
    e = curl_easy_init();
    egress_policy capped = {.allow_private_networks = true, .timeout_ms = 2000, .max_response_bytes = 1000};
    assert_int_equal(get(e, url, &capped, &chk, &got), CURLE_FILESIZE_EXCEEDED);
    curl_easy_cleanup(e);
    server_stop(&s);

    /* max_redirects is bounded */
    e = curl_easy_init();
    egress_policy many = {.max_redirects = 1000};
    assert_true(egress_apply(e, &chk, &many));
    assert_int_equal(chk.policy.max_redirects, EGRESS_MAX_REDIRECTS);
    curl_easy_cleanup(e);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict_refuses_loopback_forms),
        cmocka_unit_test(test_operator_allows_private),
        cmocka_unit_test(test_private_connection_not_reused),
        cmocka_unit_test(test_redirect_hops_checked),
        cmocka_unit_test(test_schemes_and_bounds),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
