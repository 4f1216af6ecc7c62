/* upstream_fetch.c — one-shot HTTP requests on the loop (declared HTTP
 * tools), on the same curl-on-libuv machinery as model calls, each through
 * egress (egress/egress_curl.h): the address is checked before connecting.
 *
 * Every fetch of a loop shares one pool (upstream_pool_get(u, NULL)), so
 * connections to a tool's host are kept alive and reused. The result comes
 * through `done` exactly once, always from the loop and never from inside
 * upstream_http_fetch: a request that fails before curl even sees it (bad
 * URL scheme, bad header, unknown method) is reported on the next loop turn
 * through a zero timer. Only http and https are spoken, and redirects are
 * followed only as far as the request's egress policy says. A policy that
 * lets a fetch into a private network also keeps its connection out of the
 * shared pool (egress_apply), so a stricter fetch never reuses it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "upstream/net/net.h"
#include "util/xalloc.h"

#define FETCH_DEFAULT_TIMEOUT_MS 10000
#define FETCH_DEFAULT_MAX_BYTES  262144
#define FETCH_CONNECT_TIMEOUT_MS 5000

struct upstream_fetch {
    upstream_xfer       xfer;          /* CURLOPT_PRIVATE points here */
    upstream           *u;
    upstream_fetch     *prev, *next;   /* u->fetches */
    upstream_pool      *pool;
    CURL               *easy;          /* NULL when it failed before starting */
    struct curl_slist  *hdrs;
    buf                 resp;
    size_t              max;
    uint32_t            timeout_ms;
    bool                over;          /* the response passed max */
    char                errbuf[CURL_ERROR_SIZE];
    char                msg[CURL_ERROR_SIZE + 64];
    uv_timer_t         *early;         /* delivers a failure found before starting */
    egress_check        egress;        /* the socket callback writes here */
    egress_check       *egress_out;    /* the caller's copy, filled before done */
    upstream_http_done  done;
    void               *arg;
};

static void fetch_unlink(upstream_fetch *f)
{
    if (f->prev) f->prev->next = f->next;
    else if (f->u->fetches == f) f->u->fetches = f->next;
    if (f->next) f->next->prev = f->prev;
    f->prev = f->next = NULL;
}

static void fetch_timer_closed(uv_handle_t *h) { free(h); }

static void fetch_destroy(upstream_fetch *f)
{
    if (f->easy) {
        curl_multi_remove_handle(upstream_pool_multi(f->pool), f->easy);
        curl_easy_cleanup(f->easy);
    }
    if (f->early) {
        uv_timer_stop(f->early);
        uv_close((uv_handle_t *)f->early, fetch_timer_closed);
    }
    curl_slist_free_all(f->hdrs);
    buf_free(&f->resp);
    free(f);
}

/* Deliver once and free. The fetch is unlinked and its handle removed
 * first, so `done` may start or cancel other fetches freely. */
static void fetch_deliver(upstream_fetch *f, int status, const char *error)
{
    fetch_unlink(f);
    if (f->egress_out) *f->egress_out = f->egress;
    if (f->easy) curl_multi_remove_handle(upstream_pool_multi(f->pool), f->easy);
    const char *body = error ? NULL : (f->resp.data ? f->resp.data : "");
    f->done(f->arg, status, body, error ? 0 : f->resp.len, error);
    fetch_destroy(f);
}

static size_t fetch_on_write(char *p, size_t size, size_t n, void *ud)
{
    upstream_fetch *f = ud;
    size_t len = size * n;
    if (f->resp.len + len > f->max) {
        f->over = true;
        return 0;   /* CURLE_WRITE_ERROR: the transfer stops here */
    }
    buf_append(&f->resp, p, len);
    return len;
}

static void fetch_transfer_done(upstream_xfer *x, CURLcode code)
{
    upstream_fetch *f = (upstream_fetch *)x;   /* xfer is the first member */
    long status = 0;
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
    const char *detail = f->errbuf[0] ? f->errbuf : curl_easy_strerror(code);
    const char *err = f->msg;
    if (egress_refused(&f->egress, code)) {
        egress_describe(&f->egress, f->msg, sizeof(f->msg));
        status = 0;
    } else if (f->over || code == CURLE_FILESIZE_EXCEEDED) {
        snprintf(f->msg, sizeof(f->msg), "response over %zu bytes", f->max);
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        snprintf(f->msg, sizeof(f->msg), "timed out after %u ms", f->timeout_ms);
    } else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
               code == CURLE_COULDNT_RESOLVE_PROXY || code == CURLE_SSL_CONNECT_ERROR ||
               code == CURLE_PEER_FAILED_VERIFICATION) {
        snprintf(f->msg, sizeof(f->msg), "could not connect: %s", detail);
    } else if (code != CURLE_OK) {
        snprintf(f->msg, sizeof(f->msg), "request failed: %s", detail);
    } else {
        err = NULL;
    }
    fetch_deliver(f, (int)status, err);
}

static void fetch_early_fire(uv_timer_t *t)
{
    upstream_fetch *f = t->data;
    fetch_deliver(f, 0, f->msg);
}

/* Report `why` on the next loop turn (never inside upstream_http_fetch). */
static upstream_fetch *fetch_fail_later(upstream_fetch *f, const char *why)
{
    snprintf(f->msg, sizeof(f->msg), "%s", why);
    if (f->easy) {
        curl_easy_cleanup(f->easy);
        f->easy = NULL;
    }
    f->early = xmalloc(sizeof(*f->early));
    uv_timer_init(f->u->loop, f->early);
    f->early->data = f;
    uv_timer_start(f->early, fetch_early_fire, 0, 0);
    return f;
}

upstream_fetch *upstream_http_fetch(upstream *u, const upstream_http_req *req,
                                    upstream_http_done done, void *arg)
{
    if (!u || u->freeing || !req || !req->url || !done) return NULL;
    upstream_fetch *f = xcalloc(1, sizeof(*f));
    f->u = u;
    f->done = done;
    f->arg = arg;
    f->xfer.done = fetch_transfer_done;
    f->egress_out = req->egress_out;
    f->max = req->max_response_bytes ? req->max_response_bytes : FETCH_DEFAULT_MAX_BYTES;
    f->timeout_ms = req->timeout_ms ? req->timeout_ms : FETCH_DEFAULT_TIMEOUT_MS;
    buf_init(&f->resp);
    f->next = u->fetches;
    if (u->fetches) u->fetches->prev = f;
    u->fetches = f;

    /* A declared tool speaks HTTP and nothing else: no file://, gopher://,
     * dict:// … that curl could otherwise be talked into. */
    if (strncasecmp(req->url, "http://", 7) != 0 && strncasecmp(req->url, "https://", 8) != 0)
        return fetch_fail_later(f, "only http:// and https:// URLs are allowed");
    const char *method = req->method && req->method[0] ? req->method : "GET";
    static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD" };
    bool known = false;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(method, methods[i]) == 0) known = true;
    if (!known) return fetch_fail_later(f, "unsupported HTTP method");
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i];
        const char *colon = h ? strchr(h, ':') : NULL;
        if (!h || !colon || colon == h || !upstream_header_safe(h, 8192))
            return fetch_fail_later(f, "invalid header line (want \"Name: value\" without control characters)");
    }

    f->pool = upstream_pool_get(u, NULL);
    f->easy = xnonnull(curl_easy_init());
    f->hdrs = curl_slist_append(f->hdrs, "Expect:");   /* no 100-continue round trip */
    for (size_t i = 0; i < req->n_headers; i++) f->hdrs = curl_slist_append(f->hdrs, req->headers[i]);
    if (req->request_id && req->request_id[0] && upstream_header_safe(req->request_id, 128)) {
        char line[160];
        snprintf(line, sizeof(line), "x-request-id: %s", req->request_id);
        f->hdrs = curl_slist_append(f->hdrs, line);
    }

    CURL *e = f->easy;
    if (curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK)
        return fetch_fail_later(f, "malformed URL");
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") == 0 || req->body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
            curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
        }
        if (strcmp(method, "POST") != 0) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    /* Tool URLs are checked (host, scheme) where they are declared and
     * built; the address they resolve to, and the address of any redirect
     * hop, is checked by egress when the connection is opened (whatever
     * the name: "localhost.", 2130706433, a DNS name pointing inside). */
    upstream_easy_setup(e, &(upstream_easy_opts){
        .headers = f->hdrs,
        .on_write = fetch_on_write,
        .on_header = NULL,
        .owner = f,
        .xfer = &f->xfer,
        .errbuf = f->errbuf,
        .timeout_ms = (long)f->timeout_ms,
        .connect_timeout_ms =
            (long)(f->timeout_ms < FETCH_CONNECT_TIMEOUT_MS ? f->timeout_ms : FETCH_CONNECT_TIMEOUT_MS),
        .http_version = (long)CURL_HTTP_VERSION_NONE,
        .pipewait = false,
        .max_body = (curl_off_t)f->max,
    });
    /* Egress last: its options (redirects, protocols, proxy, the socket
     * check) win over the shared setup; the request's own time and size
     * bounds are the policy's. */
    egress_policy pol = req->egress ? *req->egress : (egress_policy){0};
    pol.timeout_ms = f->timeout_ms;
    pol.connect_timeout_ms = f->timeout_ms < FETCH_CONNECT_TIMEOUT_MS ? f->timeout_ms : FETCH_CONNECT_TIMEOUT_MS;
    pol.max_response_bytes = f->max;
    if (!egress_apply(e, &f->egress, &pol))
        return fetch_fail_later(f, "the request's egress policy could not be applied");
    if (curl_multi_add_handle(upstream_pool_multi(f->pool), e) != CURLM_OK)
        return fetch_fail_later(f, "could not start the request");
    return f;
}

void upstream_fetch_cancel(upstream_fetch *f)
{
    if (!f) return;
    fetch_unlink(f);
    fetch_destroy(f);
}

void upstream_fetch_cancel_all(upstream *u)
{
    /* Like model calls on upstream_free: each owner hears of it once, so it
     * can release what it holds. */
    while (u->fetches) fetch_deliver(u->fetches, 0, "cancelled: the upstream is shutting down");
}
