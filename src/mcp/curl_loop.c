/* curl_loop.c — libcurl's multi interface driven by the MCP hub's libuv
 * loop (the streamable HTTP transport's requests): curl tells which
 * sockets to watch and when to wake, uv_poll and one uv_timer do it, and a
 * finished transfer goes to the mcp_xfer in its CURLOPT_PRIVATE. The same
 * pattern as upstream's per-loop pools, for the one loop upstream does not
 * serve.
 *
 * A message read inside curl's write callback can make the hub send the
 * next one (initialize's answer → tools/list) or close the transport; curl
 * refuses its own API from inside its callbacks, so what is asked then is
 * done right after, on a 0 ms timer (mcp_curl_later, and adds). */
#include "mcp/mcp_internal.h"

#include <stdlib.h>

#include "util/xalloc.h"

typedef struct curl_sock {
    uv_poll_t         poll;
    mcp_curl         *c;
    curl_socket_t     fd;
    struct curl_sock *prev, *next;
} curl_sock;

typedef struct curl_later {
    void             (*fn)(void *arg);
    void              *arg;
    CURL              *add;          /* or: a handle to add */
    struct curl_later *next;
} curl_later;

struct mcp_curl {
    uv_loop_t  *loop;
    CURLM      *multi;
    uv_timer_t  timer;
    uv_timer_t  kick;               /* runs `later` after curl's callbacks */
    curl_sock  *socks;
    size_t      transfers;
    int         in_action;          /* inside curl_multi_socket_action */
    curl_later *later, *later_tail;
    bool        released;
    int         open_timers;
    const egress_net *allow_nets;   /* the operator's egress.allow_networks */
    size_t      n_allow_nets;
};

void mcp_curl_set_allow_nets(mcp_curl *c, const egress_net *nets, size_t n)
{
    c->allow_nets = nets;
    c->n_allow_nets = n;
}

const egress_net *mcp_curl_allow_nets(const mcp_curl *c, size_t *n)
{
    *n = c->n_allow_nets;
    return c->allow_nets;
}

static void sock_closed(uv_handle_t *h) { free(h->data); }

static void sock_close(curl_sock *s)
{
    mcp_curl *c = s->c;
    if (s->prev) s->prev->next = s->next;
    else c->socks = s->next;
    if (s->next) s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void curl_timer_closed(uv_handle_t *h)
{
    mcp_curl *c = h->data;
    if (--c->open_timers == 0) free(c);
}

static void curl_maybe_free(mcp_curl *c)
{
    if (!c->released || c->transfers > 0 || c->later || !c->multi || c->in_action) return;
    while (c->socks) sock_close(c->socks);
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    uv_timer_stop(&c->timer);
    uv_timer_stop(&c->kick);
    uv_close((uv_handle_t *)&c->timer, curl_timer_closed);
    uv_close((uv_handle_t *)&c->kick, curl_timer_closed);
}

static void curl_on_kick(uv_timer_t *t)
{
    mcp_curl *c = t->data;
    while (c->later) {
        curl_later *l = c->later;
        c->later = l->next;
        if (!c->later) c->later_tail = NULL;
        if (l->add) {
            if (!c->multi || curl_multi_add_handle(c->multi, l->add) != CURLM_OK) {
                c->transfers--;
                mcp_xfer *x = NULL;
                curl_easy_getinfo(l->add, CURLINFO_PRIVATE, (char **)&x);
                if (x && x->done) x->done(x, CURLE_FAILED_INIT);
            }
        } else {
            l->fn(l->arg);
        }
        free(l);
    }
    curl_maybe_free(c);
}

static void curl_push_later(mcp_curl *c, curl_later *l)
{
    if (c->later_tail) c->later_tail->next = l;
    else c->later = l;
    c->later_tail = l;
    uv_timer_start(&c->kick, curl_on_kick, 0, 0);
}

void mcp_curl_later(mcp_curl *c, void (*fn)(void *arg), void *arg)
{
    curl_later *l = xcalloc(1, sizeof *l);
    l->fn = fn;
    l->arg = arg;
    curl_push_later(c, l);
}

bool mcp_curl_busy(const mcp_curl *c) { return c && c->in_action > 0; }

uv_loop_t *mcp_curl_loop(const mcp_curl *c) { return c->loop; }

static void curl_collect(mcp_curl *c)
{
    CURLMsg *msg;
    int left;
    while (c->multi && (msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *e = msg->easy_handle;
        CURLcode code = msg->data.result;
        mcp_xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(c->multi, e);
        c->transfers--;
        if (x && x->done) x->done(x, code);   /* cleans up e */
    }
    curl_maybe_free(c);
}

static void curl_on_poll(uv_poll_t *h, int status, int events)
{
    curl_sock *s = h->data;
    mcp_curl *c = s->c;
    curl_socket_t fd = s->fd;
    int flags = status < 0 ? CURL_CSELECT_ERR : 0;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    c->in_action++;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_action--;
    curl_collect(c);
}

static void curl_on_timer(uv_timer_t *t)
{
    mcp_curl *c = t->data;
    int running;
    c->in_action++;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    c->in_action--;
    curl_collect(c);
}

static int curl_socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    mcp_curl *c = userp;
    curl_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            sock_close(s);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = xcalloc(1, sizeof *s);
        s->c = c;
        s->fd = fd;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks) c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, curl_on_poll);
    return 0;
}

static int curl_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    mcp_curl *c = userp;
    if (timeout_ms < 0) uv_timer_stop(&c->timer);
    else uv_timer_start(&c->timer, curl_on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

mcp_curl *mcp_curl_new(uv_loop_t *loop)
{
    mcp_curl *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return NULL;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_timer_init(loop, &c->kick);
    c->kick.data = c;
    c->open_timers = 2;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

bool mcp_curl_add(mcp_curl *c, CURL *e)
{
    if (!c || !c->multi) return false;
    if (c->in_action) {   /* added right after curl's callbacks */
        curl_later *l = xcalloc(1, sizeof *l);
        l->add = e;
        c->transfers++;
        curl_push_later(c, l);
        return true;
    }
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) return false;
    c->transfers++;
    return true;
}

void mcp_curl_remove(mcp_curl *c, CURL *e)
{
    if (!c->multi) return;
    /* a handle still waiting to be added is taken off that list */
    for (curl_later **pp = &c->later; *pp; pp = &(*pp)->next)
        if ((*pp)->add == e) {
            curl_later *l = *pp;
            *pp = l->next;
            if (c->later_tail == l) {
                c->later_tail = NULL;
                for (curl_later *q = c->later; q; q = q->next) c->later_tail = q;
            }
            free(l);
            c->transfers--;
            curl_maybe_free(c);
            return;
        }
    if (curl_multi_remove_handle(c->multi, e) == CURLM_OK) c->transfers--;
    curl_maybe_free(c);
}

void mcp_curl_release(mcp_curl *c)
{
    if (!c) return;
    c->released = true;
    curl_maybe_free(c);
}
