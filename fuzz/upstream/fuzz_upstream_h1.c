/* fuzz_upstream_h1.c — libFuzzer target for the response path of brigade's
 * own HTTP/1.1 client (src/upstream/net/upstream_h1.c): the input is what a
 * provider answers.
 *
 * The client is driven exactly as the gateway drives it: upstream_h1_get on
 * a provider at http://127.0.0.1:<port>, upstream_h1_post, a libuv loop.
 * The provider is a plain non-blocking socket listening on loopback inside
 * this process (not on the loop, so the harness decides when bytes move):
 * it accepts the client's connection, reads the request, then writes the
 * answer in up to five pieces, letting the loop turn once after each so the
 * client reads each piece on its own (read boundaries come from the input,
 * not from timing), and finally closes. The loop and the listener live for
 * the whole run; each input gets a fresh client, freed at its end.
 *
 * Input: 6 control bytes, then the answer.
 *   [0] flags: 1 the owner refuses the k-th body piece; 2 the owner cancels
 *       inside its k-th callback; 4 the owner pauses at each body piece and
 *       resumes after a loop turn (a stream's backpressure); 8 a second
 *       request follows on the same client (the kept connection's reuse);
 *       16 with 8: the provider drops that second request unanswered on a
 *       reused connection (the stale-connection retry);
 *   [1] k for flags 1 and 2;
 *   [2..5] where the answer is cut (each a fraction of its length).
 *
 * What is checked, in the handlers (abort() on a breach):
 *   - nothing after done or after a cancel: no status, header, body or a
 *     second done;
 *   - a status of three digits (100 to 999), and again only after an
 *     interim 1xx (not 101); headers only after a status; body only after
 *     a final status, and never for a 1xx, 204 or 304 (RFC 9112 6.3,
 *     whatever the headers say); header names of 1 to 32 bytes and values
 *     up to 256, without CR or LF (nor a colon in a name);
 *   - body bytes never more than the answer's bytes;
 *   - done exactly once per request not cancelled, never H1_TIMEOUT (the
 *     provider always ends), H1_OK only after a final status, H1_CONNECT
 *     only when no final status was delivered, a message with every
 *     failure, H1_BROKEN right after a refused body piece;
 *   - the second request (a well-formed answer) always succeeds, whatever
 *     the first answer left behind on the connection. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "upstream/net/net.h"

#define CTL_BYTES      6
#define F_REFUSE       1
#define F_CANCEL       2
#define F_PAUSE        4
#define F_SECOND       8
#define F_DROP_REUSED  16
#define MAX_TURNS      10000   /* loop turns waiting for one thing: a harness bug past this */

static const char REQ_BODY[] = "{\"model\":\"m\",\"messages\":[]}";
static const char SECOND_ANSWER[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";

static uv_loop_t    loop;
static upstream     ups;
static provider_cfg prov;
static char         base_url[64];
static int          listen_fd = -1;
static int          clients_freed;   /* upstream_handle_closed calls */

/* upstream.c is not linked: the h1 client's last close lands here. */
void upstream_handle_closed(upstream *u)
{
    (void)u;
    clients_freed++;
}

/* ---------------------------------------------------------- the owner */

typedef struct owner {
    h1_req     *req;
    int         calls;             /* callbacks so far */
    int         refuse_at, cancel_at;
    bool        pause;
    bool        paused;
    bool        done, cancelled, refused;
    bool        any_status, final_status;
    h1_outcome  outcome;
    int         status;
    size_t      body_bytes, answer_bytes;
    char        body[8];           /* the start of the body (the second answer's check) */
} owner;

static bool is_final(int status) { return status > 199 || status == 101; }

/* Every callback: never after the end; counts toward k; may cancel. */
static bool owner_enter(owner *o)
{
    if (o->done || o->cancelled || o->refused) abort();
    o->calls++;
    if (o->cancel_at && o->calls == o->cancel_at) {
        upstream_h1_cancel(o->req);
        o->cancelled = true;
        return false;
    }
    return true;
}

static void on_status(void *arg, int status)
{
    owner *o = arg;
    if (o->final_status) abort();   /* a second status after a final one */
    if (status < 100 || status > 999) abort();
    if (!owner_enter(o)) return;
    o->any_status = true;
    o->status = status;
    if (is_final(status)) o->final_status = true;
}

static void on_header(void *arg, const char *name, size_t nl, const char *value, size_t vl)
{
    owner *o = arg;
    if (!o->any_status) abort();
    if (nl == 0 || nl > 32 || vl > 256) abort();
    for (size_t i = 0; i < nl; i++)
        if (name[i] == '\r' || name[i] == '\n' || name[i] == ':') abort();
    for (size_t i = 0; i < vl; i++)
        if (value[i] == '\r' || value[i] == '\n') abort();
    owner_enter(o);
}

static bool on_body(void *arg, const char *p, size_t n)
{
    owner *o = arg;
    if (!o->final_status || n == 0) abort();
    if (o->status == 204 || o->status == 304) abort();   /* never a body (nor has a 1xx) */
    o->body_bytes += n;
    if (o->body_bytes > o->answer_bytes) abort();
    size_t had = o->body_bytes - n;
    if (had < sizeof(o->body)) memcpy(o->body + had, p, n < sizeof(o->body) - had ? n : sizeof(o->body) - had);
    if (!owner_enter(o)) return false;
    if (o->refuse_at && o->calls >= o->refuse_at) {
        o->refused = true;   /* the next callback must be done(H1_BROKEN) */
        return false;
    }
    if (o->pause && !o->paused) {
        upstream_h1_pause(o->req);
        o->paused = true;
    }
    return true;
}

static void on_done(void *arg, h1_outcome out, const char *msg)
{
    owner *o = arg;
    if (o->done || o->cancelled) abort();
    if (o->refused && out != H1_BROKEN) abort();
    o->refused = false;
    o->done = true;
    o->outcome = out;
    switch (out) {
    case H1_OK: if (!o->final_status || msg) abort(); break;
    case H1_CONNECT: if (o->final_status) abort(); break;
    case H1_BROKEN: break;
    default: abort();   /* H1_TIMEOUT: the provider always ends its side */
    }
    if (out != H1_OK && (!msg || strlen(msg) >= CURL_ERROR_SIZE)) abort();
}

static const h1_handlers HANDLERS = { on_status, on_header, on_body, on_done };

static bool owner_over(const owner *o) { return o->done || o->cancelled; }

/* One loop turn; a request paused in it is resumed (backpressure lifted). */
static void turn(owner *o)
{
    uv_run(&loop, UV_RUN_NOWAIT);
    if (o && o->paused && !owner_over(o)) {
        o->paused = false;
        upstream_h1_resume(o->req);
    }
}

/* ------------------------------------------------------- the provider */

typedef struct provider_side {
    int    fd;        /* the connection the last request came on */
    bool   reused;    /* that connection carried an earlier request */
    char   in[4096];
    size_t in_len;
} provider_side;

static void send_all(owner *o, int fd, const uint8_t *p, size_t n)
{
    for (int t = 0; n > 0 && t < MAX_TURNS; t++) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno != EAGAIN && errno != EINTR) return;   /* the client closed */
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        }
        if (n > 0) turn(o);   /* the client reads, the socket drains */
    }
}

/* Whether in holds one whole request (head and REQ_BODY). */
static bool request_whole(const provider_side *s)
{
    const char *end = memmem(s->in, s->in_len, "\r\n\r\n", 4);
    return end && s->in_len >= (size_t)(end - s->in) + 4 + strlen(REQ_BODY);
}

/* Turn the loop until the client's request arrived whole, on the kept
 * connection s->fd or on a new one. False: the request ended first. */
static bool take_request(provider_side *s, owner *o)
{
    s->in_len = 0;
    for (int t = 0; t < MAX_TURNS && !owner_over(o); t++) {
        int nfd = accept(listen_fd, NULL, NULL);
        if (nfd >= 0) {
            if (s->fd >= 0) close(s->fd);   /* the client left the kept one */
            s->fd = nfd;
            s->reused = false;
            s->in_len = 0;
        }
        if (s->fd >= 0) {
            ssize_t k = recv(s->fd, s->in + s->in_len, sizeof(s->in) - s->in_len, MSG_DONTWAIT);
            if (k > 0) s->in_len += (size_t)k;
            if (request_whole(s)) return true;
        }
        turn(o);
    }
    if (!owner_over(o)) abort();   /* the request never came */
    return false;
}

static void provider_close(provider_side *s)
{
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
}

static void run_until_over(owner *o)
{
    for (int t = 0; !owner_over(o); t++) {
        if (t == MAX_TURNS) abort();
        if (o->paused) {   /* before blocking: a stopped read would wait for the timeout */
            o->paused = false;
            upstream_h1_resume(o->req);
        }
        uv_run(&loop, UV_RUN_ONCE);
    }
}

/* ------------------------------------------------------------ the run */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    /* A proxy in the environment would send this provider through curl. */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    if (uv_loop_init(&loop) != 0) abort();
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(listen_fd, 64) != 0 ||
        getsockname(listen_fd, (struct sockaddr *)&a, &al) != 0)
        abort();
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d/v1", ntohs(a.sin_port));
    prov.name = "p";
    prov.kind = PROVIDER_OPENAI;
    prov.base_url = base_url;
    prov.max_connections = 1;
    ups.loop = &loop;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < CTL_BYTES) return 0;
    uint8_t flags = data[0], k = data[1];
    const uint8_t *ans = data + CTL_BYTES;
    size_t n = size - CTL_BYTES;
    size_t cut[6] = { 0 };
    for (int i = 0; i < 4; i++) cut[i + 1] = (size_t)data[2 + i] * n / 255;
    cut[5] = n;
    for (int i = 1; i < 6; i++)   /* in order */
        for (int j = i; j > 1 && cut[j] < cut[j - 1]; j--) {
            size_t t = cut[j];
            cut[j] = cut[j - 1];
            cut[j - 1] = t;
        }

    upstream_h1 *h = upstream_h1_get(&ups, &prov);
    if (!h) abort();
    owner o1 = { .answer_bytes = n, .pause = flags & F_PAUSE };
    if (flags & F_REFUSE) o1.refuse_at = k ? k : 1;
    if (flags & F_CANCEL) o1.cancel_at = k ? k : 1;
    o1.req = upstream_h1_post(h, "/chat/completions", NULL, REQ_BODY, strlen(REQ_BODY), 10000, 10000, &HANDLERS, &o1);

    provider_side s = { .fd = -1 };
    if (take_request(&s, &o1)) {
        for (int i = 0; i < 5 && !owner_over(&o1); i++) {
            if (cut[i + 1] > cut[i]) send_all(&o1, s.fd, ans + cut[i], cut[i + 1] - cut[i]);
            turn(&o1);
        }
        /* The first answer ends with the connection, unless a second request
         * may reuse it: then only when the client still waits for more. */
        if (!(flags & F_SECOND) || !owner_over(&o1)) provider_close(&s);
    }
    run_until_over(&o1);

    if ((flags & F_SECOND)) {
        /* The client noticed everything the provider did meanwhile. */
        for (int i = 0; i < 3; i++) turn(NULL);
        s.reused = s.fd >= 0;
        owner o2 = { .answer_bytes = sizeof(SECOND_ANSWER) };
        o2.req = upstream_h1_post(h, "/chat/completions", NULL, REQ_BODY, strlen(REQ_BODY), 10000, 10000, &HANDLERS, &o2);
        if (!take_request(&s, &o2)) abort();
        if ((flags & F_DROP_REUSED) && s.reused) {
            provider_close(&s);   /* the client sends it again on a new connection */
            if (!take_request(&s, &o2)) abort();
        }
        send_all(&o2, s.fd, (const uint8_t *)SECOND_ANSWER, strlen(SECOND_ANSWER));
        run_until_over(&o2);
        if (o2.outcome != H1_OK || o2.status != 200 || o2.body_bytes != 2 || memcmp(o2.body, "{}", 2) != 0) abort();
        provider_close(&s);
    }
    provider_close(&s);

    /* A fresh client for the next input: free this one, and every
     * connection left in the listener's queue. */
    int freed = clients_freed;
    upstream_h1_free(h);
    for (int t = 0; clients_freed == freed; t++) {
        if (t == MAX_TURNS) abort();
        uv_run(&loop, UV_RUN_ONCE);
    }
    free(ups.h1);
    ups.h1 = NULL;
    ups.n_h1 = 0;
    ups.open_handles = 0;
    for (int fd; (fd = accept(listen_fd, NULL, NULL)) >= 0;) close(fd);
    return 0;
}
