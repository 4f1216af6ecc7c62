/* server.c — worker threads, listening sockets, the cached date header,
 * graceful shutdown and signal handling.
 *
 * Each worker has its own loop and its own listening socket bound with
 * SO_REUSEPORT, so the kernel spreads connections over the cores and no
 * lock is taken per connection. Sockets are bound and listening before
 * http_server_start returns, so a caller can connect at once and binding
 * errors are reported synchronously. Because SO_REUSEPORT would let a
 * second process silently share an explicit port, the port is first probed
 * with a plain socket: "address in use" then really means it.
 */
#include "http/http_internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

/* ---------------- date header ---------------- */

const char *http_worker_date(http_worker *w, size_t *len)
{
    uint64_t now = uv_now(&w->loop);
    if (!w->date_len || now - w->date_ms >= 1000) {
        static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        static const char mons[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        int n = snprintf(w->date, sizeof w->date, "date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                         days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12],
                         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        w->date_len = (n > 0 && (size_t)n < sizeof w->date) ? (size_t)n : 0;
        w->date_ms = now;
    }
    *len = w->date_len;
    return w->date;
}

/* ---------------- shutdown ---------------- */

static void worker_finish(http_worker *w)
{
    if (w->finished) return;
    w->finished = true;
    uv_timer_stop(&w->grace_timer);
    uv_close((uv_handle_t *)&w->grace_timer, NULL);
    uv_close((uv_handle_t *)&w->stop_async, NULL);
    /* No connection is left, so nothing is corked. */
    uv_check_stop(&w->cork_check);
    uv_idle_stop(&w->cork_idle);
    uv_close((uv_handle_t *)&w->cork_check, NULL);
    uv_close((uv_handle_t *)&w->cork_idle, NULL);
    /* Handles the application left on this loop must not keep it running. */
    uv_stop(&w->loop);
}

void http_worker_conn_gone(http_worker *w)
{
    if (w->stopping && w->n_conns == 0) worker_finish(w);
}

static void on_grace(uv_timer_t *t)
{
    http_worker *w = t->data;
    for (http_conn *c = w->conns; c; c = c->next) http_conn_close(c);
}

static void on_stop(uv_async_t *a)
{
    http_worker *w = a->data;
    if (w->stopping) return;
    w->stopping = true;
    if (!uv_is_closing((uv_handle_t *)&w->listener)) uv_close((uv_handle_t *)&w->listener, NULL);
    /* Idle keep-alive connections go now; requests in handlers may finish
     * (their responses say "connection: close"). */
    for (http_conn *c = w->conns; c; c = c->next)
        if (http_conn_is_idle(c)) http_conn_close(c);
    if (w->n_conns == 0) worker_finish(w);
    else uv_timer_start(&w->grace_timer, on_grace, w->srv->limits.shutdown_grace_ms, 0);
}

/* End of every loop turn: send what streams corked during it. */
static void on_cork_check(uv_check_t *h)
{
    http_worker *w = h->data;
    if (w->cork_head) http_conn_flush_corked(w);
}

static void close_leftover(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void *worker_main(void *arg)
{
    http_worker *w = arg;
    http_server *srv = w->srv;
    char thread_name[16];   /* "loop-N" in top -H; Linux allows 15 characters */
    snprintf(thread_name, sizeof thread_name, "loop-%u", w->index);
    pthread_setname_np(pthread_self(), thread_name);
    if (srv->cfg.thread_init) w->thread_data = srv->cfg.thread_init(&w->loop, w->index, srv->cfg.thread_arg);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (srv->cfg.thread_fini) srv->cfg.thread_fini(w->thread_data);
    uv_walk(&w->loop, close_leftover, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);   /* close callbacks, deferred work */
    if (uv_loop_close(&w->loop) != 0) log_warn("http: worker %u loop did not close cleanly", w->index);
    return NULL;
}

static void on_connection(uv_stream_t *server, int status)
{
    http_worker *w = server->data;
    if (status < 0) {
        /* Out of descriptors, every pending connection fails its accept at
         * once, and did so thousands of times a second: the log is told
         * once a second how many (libuv closes them meanwhile). */
        uint64_t n;
        if (log_limit_event(&w->accept_log, &n))
            log_warn("http: accept failed %llu time(s) in the last second: %s%s", (unsigned long long)n,
                     uv_strerror(status),
                     status == UV_EMFILE || status == UV_ENFILE
                         ? " (out of file descriptors: see limits.max_connections and the process's open-file limit)"
                         : "");
        return;
    }
    http_conn_accept(w);
}

/* Connections past max_connections are answered 503 and closed, which
 * needs a descriptor; other descriptors (upstream sockets, the store,
 * tool sandboxes) need theirs. The open-file limit is raised towards its
 * hard limit to hold max_connections and this reserve; if it cannot be,
 * max_connections is lowered to fit, said once. Past the limit the accept
 * loop failed on every connection (EMFILE) and nothing got the 503. */
#define HTTP_FD_RESERVE 1024

static void http_fd_budget(http_limits *l)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
    rlim_t want = (rlim_t)l->max_connections + HTTP_FD_RESERVE;
    if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < want) {
        struct rlimit up = r;
        up.rlim_cur = r.rlim_max == RLIM_INFINITY || r.rlim_max > want ? want : r.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) r = up;
    }
    if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < want) {
        uint32_t fit = r.rlim_cur > 2 * HTTP_FD_RESERVE ? (uint32_t)(r.rlim_cur - HTTP_FD_RESERVE)
                                                        : (uint32_t)(r.rlim_cur / 2);
        log_warn("http: the open-file limit is %llu (hard %llu): limits.max_connections %u is lowered to %u, "
                 "keeping %d for the rest; raise the limit (ulimit -n, LimitNOFILE=) to serve more",
                 (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max, l->max_connections, fit,
                 HTTP_FD_RESERVE);
        l->max_connections = fit ? fit : 1;
    }
}

/* ---------------- binding ---------------- */

static int bind_socket(const struct sockaddr *sa, socklen_t salen, bool reuseport, int *out_fd,
                       char *err, size_t errlen, const char *host, int port)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        snprintf(err, errlen, "SO_REUSEPORT: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, sa, salen) != 0) {
        int e = errno;
        if (e == EADDRINUSE)
            snprintf(err, errlen, "address in use: %s port %d", host, port);
        else
            snprintf(err, errlen, "bind %s port %d: %s", host, port, strerror(e));
        close(fd);
        return -1;
    }
    *out_fd = fd;
    return 0;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET6) ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

static void server_free(http_server *s)
{
    if (!s) return;
    if (s->workers) {
        for (unsigned i = 0; i < s->n_workers; i++) {
            free(s->workers[i].readbuf);
        }
        free(s->workers);
    }
    free(s);
}

http_server *http_server_start(const http_server_config *cfg, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    signal(SIGPIPE, SIG_IGN);

    http_server *s = xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    s->limits = cfg->limits;
    http_limits_apply_defaults(&s->limits);
    http_fd_budget(&s->limits);
    snprintf(s->host, sizeof s->host, "%s", cfg->host && *cfg->host ? cfg->host : "127.0.0.1");
    unsigned n = cfg->threads;
    if (!n) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (unsigned)cpus : 1;
    }
    if (n > 256) n = 256;
    if (cfg->port < 0 || cfg->port > 65535) {
        snprintf(err, errlen, "invalid port %d", cfg->port);
        server_free(s);
        return NULL;
    }

    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gr = getaddrinfo(s->host, NULL, &hints, &ai);
    if (gr != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve host %s: %s", s->host, gai_strerror(gr));
        server_free(s);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t salen = (socklen_t)ai->ai_addrlen;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);

    int port = cfg->port;
    if (port != 0) {
        /* Probe without SO_REUSEPORT: fails if anyone listens there already. */
        int probe;
        set_port(&ss, port);
        if (bind_socket((struct sockaddr *)&ss, salen, false, &probe, err, errlen, s->host, port) != 0) {
            server_free(s);
            return NULL;
        }
        close(probe);
    }

    s->n_workers = n;
    s->workers = xcalloc(n, sizeof(http_worker));
    unsigned bound = 0;
    for (unsigned i = 0; i < n; i++) {
        http_worker *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        w->fd = -1;
        set_port(&ss, port);
        if (bind_socket((struct sockaddr *)&ss, salen, true, &w->fd, err, errlen, s->host, port) != 0)
            goto fail;
        bound++;
        if (port == 0) {
            /* The first socket picks the port; the others join it. */
            struct sockaddr_storage got;
            socklen_t gl = sizeof got;
            getsockname(w->fd, (struct sockaddr *)&got, &gl);
            port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                   : ((struct sockaddr_in *)&got)->sin_port);
        }
        if (listen(w->fd, 1024) != 0) {
            snprintf(err, errlen, "listen: %s", strerror(errno));
            goto fail;
        }
    }
    s->port = port;

    for (unsigned i = 0; i < n; i++) {
        http_worker *w = &s->workers[i];
        w->readbuf = xmalloc(HTTP_READBUF_SIZE);
        uv_loop_init(&w->loop);
        uv_tcp_init(&w->loop, &w->listener);
        w->listener.data = w;
        int r = uv_tcp_open(&w->listener, w->fd);
        if (r == 0) r = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection);
        if (r != 0) {
            /* Cannot happen for a socket we just bound; do not half-start. */
            log_error("http: listen on worker %u: %s", i, uv_strerror(r));
            abort();
        }
        w->fd = -1;   /* owned by libuv now */
        uv_async_init(&w->loop, &w->stop_async, on_stop);
        w->stop_async.data = w;
        uv_timer_init(&w->loop, &w->grace_timer);
        w->grace_timer.data = w;
        /* Unref'd: corked bytes belong to connections, which keep the loop
         * alive by themselves. The idle handle is started only while
         * something is corked (conn.c). */
        uv_check_init(&w->loop, &w->cork_check);
        w->cork_check.data = w;
        uv_check_start(&w->cork_check, on_cork_check);
        uv_unref((uv_handle_t *)&w->cork_check);
        uv_idle_init(&w->loop, &w->cork_idle);
        w->cork_idle.data = w;
        uv_unref((uv_handle_t *)&w->cork_idle);
    }
    for (unsigned i = 0; i < n; i++) {
        http_worker *w = &s->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) abort();
        w->thread_started = true;
    }
    return s;

fail:
    for (unsigned i = 0; i < bound; i++)
        if (s->workers[i].fd >= 0) close(s->workers[i].fd);
    server_free(s);
    return NULL;
}

int http_server_port(const http_server *s)
{
    return s ? s->port : -1;
}

void http_server_stop(http_server *s)
{
    if (!s) return;
    for (unsigned i = 0; i < s->n_workers; i++) uv_async_send(&s->workers[i].stop_async);
    for (unsigned i = 0; i < s->n_workers; i++)
        if (s->workers[i].thread_started) pthread_join(s->workers[i].thread, NULL);
    server_free(s);
}

/* ---------------- signals ---------------- */

static void on_signal(uv_signal_t *h, int signum)
{
    int *out = h->data;
    *out = signum;
    uv_stop(h->loop);
}

int http_server_run_until_signal(http_server *s, void (*ready)(void *arg), void *arg)
{
    uv_loop_t loop;
    uv_signal_t sint, sterm;
    int sig = 0;
    uv_loop_init(&loop);
    uv_signal_init(&loop, &sint);
    uv_signal_init(&loop, &sterm);
    sint.data = sterm.data = &sig;
    uv_signal_start(&sint, on_signal, SIGINT);
    uv_signal_start(&sterm, on_signal, SIGTERM);
    if (ready) ready(arg);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&sint, NULL);
    uv_close((uv_handle_t *)&sterm, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    log_info("http: signal %d, shutting down", sig);
    http_server_stop(s);
    return sig;
}
