/* net.h — upstream's network part (not a public contract): a libcurl multi
 * handle per (loop, provider) driven by libuv (upstream_pool.c), the
 * built-in HTTP/1.1 client of plain-http providers (upstream_h1.c), the one
 * easy-handle setup of every transfer (upstream_easy.c), plain fetches for
 * declared HTTP tools (upstream_fetch.c), and the incremental SSE parser of
 * provider streams (upstream_sse.c). Knows no provider and no retry. */
#ifndef BRIGADE_UPSTREAM_NET_H
#define BRIGADE_UPSTREAM_NET_H

#include <curl/curl.h>

#include "upstream/upstream_internal.h"
#include "util/buf.h"

/* --- curl pool: one multi handle per (loop, provider), driven by uv --- */

/* CURLOPT_PRIVATE of every easy handle on a pool points at one of these,
 * embedded in the transfer's owner: the pool calls `done` for each
 * finished transfer, whoever started it (a provider call, a plain fetch). */
typedef struct upstream_xfer upstream_xfer;
struct upstream_xfer {
    void (*done)(upstream_xfer *x, CURLcode code);
};

/* Created on first use. `p` NULL: the pool of plain HTTP fetches. */
upstream_pool *upstream_pool_get(upstream *u, const provider_cfg *p);
CURLM         *upstream_pool_multi(upstream_pool *pool);
/* A ready easy handle (reused when one is idle), and its return: removed
 * from the multi, reset, kept for the next call (or cleaned up). */
#define UPSTREAM_IDLE_EASY 64
CURL          *upstream_pool_easy(upstream_pool *pool);
void           upstream_pool_easy_done(upstream_pool *pool, CURL *e);
void           upstream_pool_free(upstream_pool *pool);                 /* no transfers left */
/* base_url + path parsed once for the pool (upstream_pool.c); NULL: pass the string. */
#define UPSTREAM_POOL_URLS 4
const CURLU   *upstream_pool_url(upstream_pool *pool, const char *base_url, const char *path);

/* What a transfer on a pool sets beyond the options every one shares
 * (upstream_easy.c): a model call and a tool's fetch differ only here. */
typedef struct upstream_easy_opts {
    struct curl_slist  *headers;
    curl_write_callback on_write;
    curl_write_callback on_header;   /* NULL: response headers not read */
    void               *owner;       /* the callbacks' argument */
    upstream_xfer      *xfer;
    char               *errbuf;      /* CURL_ERROR_SIZE bytes */
    long                timeout_ms, connect_timeout_ms;
    long                http_version;   /* CURL_HTTP_VERSION_NONE: curl's default */
    bool                pipewait;       /* wait to share a connection being set up */
    curl_off_t          max_body;       /* > 0: refuse a larger announced body */
} upstream_easy_opts;

/* Set the shared options and o's on e (the URL, method and body are the
 * caller's). */
void upstream_easy_setup(CURL *e, const upstream_easy_opts *o);
/* Header values from config, the caller or a model must not smuggle in new
 * lines: false on a control character or DEL, or past max bytes. */
bool upstream_header_safe(const char *v, size_t max);

/* --- the built-in HTTP/1.1 client of plain-http providers (upstream_h1.c) --- */

typedef struct upstream_h1 upstream_h1;   /* one per (upstream, provider) */
typedef struct h1_req h1_req;

typedef enum h1_outcome {
    H1_OK = 0,     /* a whole answer (any status) */
    H1_CONNECT,    /* no answer: resolve, connect, send failed, or the provider closed at once */
    H1_TIMEOUT,    /* the provider's timeout_ms (or connect_timeout_ms) passed */
    H1_BROKEN      /* the answer began and did not end */
} h1_outcome;

/* What a request's owner is told, in this order: status (again after a
 * 1xx), each header (names of 1 to 32 bytes and values up to 256; others
 * are skipped), body pieces (none for a 1xx, 204 or 304; false: stop, the
 * owner keeps its own error), then done exactly once — never from inside upstream_h1_post,
 * never after upstream_h1_cancel. `msg` is valid during done only. */
typedef struct h1_handlers {
    void (*status)(void *owner, int status);
    void (*header)(void *owner, const char *name, size_t name_len, const char *value, size_t value_len);
    bool (*body)(void *owner, const char *p, size_t n);
    void (*done)(void *owner, h1_outcome o, const char *msg);
} h1_handlers;

/* The client for p, or NULL when p goes through libcurl: https, a proxy in
 * the environment, credentials, a query or a fragment in base_url, or the
 * provider's `http_client: curl`. Decided once per (upstream, provider). */
upstream_h1 *upstream_h1_get(upstream *u, const provider_cfg *p);
/* POST {base_url path}{path}: the header lines (curl's "Name:" form with no
 * value is skipped), Host, User-Agent and Content-Length added. path,
 * headers and body must live until done or cancel. */
h1_req *upstream_h1_post(upstream_h1 *h, const char *path, const struct curl_slist *headers,
                         const char *body, size_t len, uint32_t timeout_ms, uint32_t connect_timeout_ms,
                         const h1_handlers *hd, void *owner);
/* Stop / go on reading the answer (backpressure of a stream). */
void upstream_h1_pause(h1_req *r);
void upstream_h1_resume(h1_req *r);
void upstream_h1_cancel(h1_req *r);   /* no callback follows */
void upstream_h1_free(upstream_h1 *h);   /* requests left get done(H1_CONNECT) */

/* --- SSE parsing (upstream_sse.c) --- */

typedef struct upstream_sse {
    buf    in;          /* bytes received, not yet parsed past `pos` */
    size_t pos;
    size_t scanned;     /* bytes past `pos` known to hold no line end (not searched again) */
    buf    data;        /* the current event's data lines, joined by \n */
    bool   has_data;
    size_t max_event;
} upstream_sse;

void upstream_sse_init(upstream_sse *s, size_t max_event);
void upstream_sse_free(upstream_sse *s);
void upstream_sse_feed(upstream_sse *s, const char *p, size_t n);
/* 1: an event (data/len valid until the next call); 0: need more bytes;
 * -1: an event or line over max_event. */
int  upstream_sse_next(upstream_sse *s, const char **data, size_t *len);

/* --- plain fetches (upstream_fetch.c) --- */

/* Deliver "cancelled" to every fetch in flight (upstream_free). */
void upstream_fetch_cancel_all(upstream *u);

#endif
