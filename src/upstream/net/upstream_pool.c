/* upstream_pool.c — a libcurl multi handle driven by a libuv loop.
 *
 * One pool per (upstream, provider): the multi handle keeps that provider's
 * connection cache, so keep-alive connections (and HTTP/2 streams) are
 * reused across calls, and CURLMOPT_MAX_HOST_CONNECTIONS applies the
 * provider's max_connections. This is curl's multi_socket interface: curl
 * tells us which sockets to watch (SOCKETFUNCTION → a uv_poll per socket) and
 * when to wake it (TIMERFUNCTION → a uv_timer); we tell curl what happened
 * with curl_multi_socket_action and then collect finished transfers.
 * Plain fetches (declared HTTP tools) share one more pool, keyed NULL. */
#include <stdlib.h>
#include <string.h>

#include "upstream/net/net.h"
#include "util/xalloc.h"

typedef struct upstream_sock upstream_sock;

struct upstream_pool {
    upstream           *u;
    const provider_cfg *prov;
    CURLM              *multi;
    uv_timer_t          timer;
    upstream_sock      *socks;     /* live poll handles, to close on free */
    bool                closing;   /* curl_multi_cleanup in progress */
    CURL               *idle[UPSTREAM_IDLE_EASY];  /* reset handles ready for reuse */
    size_t              n_idle;
    struct {                       /* parsed URLs by protocol path (upstream_pool_url) */
        const char *path;
        CURLU      *uh;
    } urls[UPSTREAM_POOL_URLS];
    size_t              n_urls;
};

struct upstream_sock {
    uv_poll_t      poll;
    upstream_pool *pool;
    curl_socket_t  fd;
    int            events;     /* the UV_* mask being watched (0: stopped) */
    upstream_sock *prev, *next;
};

static void upstream_sock_closed(uv_handle_t *h) { free(h->data); }

static void upstream_sock_close(upstream_sock *s)
{
    upstream_pool *p = s->pool;
    if (s->prev) s->prev->next = s->next;
    else p->socks = s->next;
    if (s->next) s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, upstream_sock_closed);
}

/* Hand every finished transfer to its owner (see upstream_xfer). */
static void upstream_pool_collect(upstream_pool *p)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(p->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        upstream_xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        if (x && x->done) x->done(x, code);
    }
}

static void upstream_pool_on_poll(uv_poll_t *h, int status, int events)
{
    upstream_sock *s = h->data;
    upstream_pool *p = s->pool;      /* s may be closed inside socket_action */
    curl_socket_t fd = s->fd;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(p->multi, fd, flags, &running);
    upstream_pool_collect(p);
}

static void upstream_pool_on_timer(uv_timer_t *t)
{
    upstream_pool *p = t->data;
    int running;
    curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    upstream_pool_collect(p);
}

static int upstream_pool_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    upstream_pool *p = userp;
    upstream_sock *s = socketp;
    if (p->closing) return 0;   /* handles are already closed by upstream_pool_free */
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            upstream_sock_close(s);
            curl_multi_assign(p->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->pool = p;
        s->fd = fd;
        if (uv_poll_init_socket(p->u->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->next = p->socks;
        if (p->socks) p->socks->prev = s;
        p->socks = s;
        curl_multi_assign(p->multi, fd, s);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= UV_WRITABLE;
    /* curl repeats the same request for a socket it already watches (each
     * transfer on a reused connection says IN again). uv_poll_start stops
     * the watcher first, so the loop's next epoll_ctl is an ADD that fails
     * with EEXIST and is retried as a MOD: two system calls for nothing. */
    if (ev == s->events) return 0;
    if (uv_poll_start(&s->poll, ev, upstream_pool_on_poll) == 0) s->events = ev;
    return 0;
}

static int upstream_pool_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    upstream_pool *p = userp;
    if (p->closing) return 0;
    if (timeout_ms < 0) uv_timer_stop(&p->timer);
    /* 0 means "now": the timer fires on the next loop turn, since calling
     * socket_action from inside this callback is not allowed. */
    else uv_timer_start(&p->timer, upstream_pool_on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

upstream_pool *upstream_pool_get(upstream *u, const provider_cfg *prov)
{
    for (size_t i = 0; i < u->n_pools; i++)
        if (u->pools[i]->prov == prov) return u->pools[i];
    upstream_pool *p = xcalloc(1, sizeof(*p));
    p->u = u;
    p->prov = prov;
    p->multi = xnonnull(curl_multi_init());
    long maxc = prov && prov->max_connections ? (long)prov->max_connections : 64;
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, upstream_pool_socket_cb);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, upstream_pool_timer_cb);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxc);
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, maxc);   /* keep that many idle */
    curl_multi_setopt(p->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    uv_timer_init(u->loop, &p->timer);
    p->timer.data = p;
    u->open_handles++;
    upstream_pool **np = xrealloc(u->pools, sizeof(*np) * (u->n_pools + 1));
    u->pools = np;
    u->pools[u->n_pools++] = p;
    return p;
}

CURLM *upstream_pool_multi(upstream_pool *pool) { return pool->multi; }

static void upstream_pool_timer_closed(uv_handle_t *h)
{
    upstream_pool *p = h->data;
    upstream *u = p->u;
    free(p);
    upstream_handle_closed(u);
}

/* Easy handles are reused: curl_easy_init + cleanup per request showed up
 * in the gateway's profile, and a reset handle keeps nothing of the last
 * call but its allocations (connections live in the multi's cache anyway). */
CURL *upstream_pool_easy(upstream_pool *p)
{
    if (p->n_idle) return p->idle[--p->n_idle];
    CURL *e = xnonnull(curl_easy_init());
    return e;
}

void upstream_pool_easy_done(upstream_pool *p, CURL *e)
{
    curl_multi_remove_handle(p->multi, e);
    if (p->closing || p->n_idle == UPSTREAM_IDLE_EASY) {
        curl_easy_cleanup(e);
        return;
    }
    curl_easy_reset(e);
    p->idle[p->n_idle++] = e;
}

/* The provider's base URL joined with a protocol's path, parsed once per
 * pool: handing curl a CURLU (CURLOPT_CURLU) spares it parsing the URL
 * string on every transfer. NULL if the URL does not parse or the table is
 * full (the caller then passes the string, and curl reports what is wrong
 * with it as before). `path` is a protocol's static string: compared by
 * address. The handle lives as long as the pool, after every transfer. */
const CURLU *upstream_pool_url(upstream_pool *p, const char *base_url, const char *path)
{
    for (size_t i = 0; i < p->n_urls; i++)
        if (p->urls[i].path == path) return p->urls[i].uh;
    if (p->n_urls == UPSTREAM_POOL_URLS || !base_url) return NULL;
    size_t bl = strlen(base_url), pl = strlen(path);
    while (bl > 0 && base_url[bl - 1] == '/') bl--;
    char *url = xmalloc(bl + pl + 1);
    memcpy(url, base_url, bl);
    memcpy(url + bl, path, pl + 1);
    CURLU *uh = curl_url();
    /* the flags curl itself uses for a CURLOPT_URL string */
    if (uh && curl_url_set(uh, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        curl_url_cleanup(uh);
        uh = NULL;
    }
    free(url);
    if (!uh) return NULL;
    p->urls[p->n_urls].path = path;
    p->urls[p->n_urls].uh = uh;
    p->n_urls++;
    return uh;
}

void upstream_pool_free(upstream_pool *p)
{
    while (p->n_idle) curl_easy_cleanup(p->idle[--p->n_idle]);
    /* Stop watching before curl closes its sockets (a uv_poll must be
     * stopped before its fd is closed), then let curl close them. */
    while (p->socks) upstream_sock_close(p->socks);
    p->closing = true;
    curl_multi_cleanup(p->multi);
    while (p->n_urls) curl_url_cleanup(p->urls[--p->n_urls].uh);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, upstream_pool_timer_closed);
}
