/* upstream_internal.h — what the upstream module's files share (not a
 * public contract): the call header every provider's call starts with, the
 * per-provider curl pool, and the SSE parser. */
#ifndef BRIGADE_UPSTREAM_INTERNAL_H
#define BRIGADE_UPSTREAM_INTERNAL_H

#include <curl/curl.h>

#include "upstream/upstream.h"
#include "util/buf.h"

#define UPSTREAM_MAX_BODY   (8u << 20)   /* non-stream / error body cap */
#define UPSTREAM_MAX_EVENT  (1u << 20)   /* one SSE event's data cap */

typedef struct upstream_pool upstream_pool;

/* The first member of every provider's call struct. */
struct upstream_call {
    upstream           *u;
    upstream_callbacks  cb;
    void               *arg;
    const model_cfg    *model;
    const provider_cfg *prov;
    bool                stream;
    bool                finished;     /* on_done delivered */
    upstream_call      *prev, *next;  /* u's list of calls not yet finished */
    void              (*cancel)(upstream_call *c);   /* provider: deliver CANCELLED, release */
    void              (*resume)(upstream_call *c);
};

struct upstream {
    uv_loop_t            *loop;
    const brigade_config *cfg;
    upstream_call        *calls;
    upstream_pool       **pools;
    size_t                n_pools;
    int                   open_handles;   /* pool timers not yet closed */
    bool                  freeing;
};

/* Link a new call into u (upstream.c). */
void upstream_call_link(upstream *u, upstream_call *c, const model_cfg *m, bool stream,
                        const upstream_callbacks *cb, void *arg);
/* Deliver on_done once and unlink; later calls do nothing. */
void upstream_call_deliver(upstream_call *c, const upstream_result *res);
/* A close callback finished: free u when it was being freed and nothing is left. */
void upstream_handle_closed(upstream *u);

/* Remember that a provider answered (for upstream_provider_reachable). */
void upstream_note_reachable(const provider_cfg *p);

/* --- curl pool: one multi handle per (loop, provider), driven by uv --- */

upstream_pool *upstream_pool_get(upstream *u, const provider_cfg *p);   /* created on first use */
CURLM         *upstream_pool_multi(upstream_pool *pool);
void           upstream_pool_free(upstream_pool *pool);                 /* no transfers left */
/* Called by the pool for each finished transfer (provider_openai.c). */
void           openai_transfer_done(CURL *easy, CURLcode code);

/* --- providers --- */

upstream_call *openai_chat(upstream *u, const model_cfg *m, const char *body, size_t len,
                           bool stream, const char *request_id, const upstream_callbacks *cb,
                           void *arg);
upstream_call *mockp_chat(upstream *u, const model_cfg *m, const char *body, size_t len,
                          bool stream, const upstream_callbacks *cb, void *arg);

/* --- SSE parsing (upstream_sse.c) --- */

typedef struct upstream_sse {
    buf    in;          /* bytes received, not yet parsed past `pos` */
    size_t pos;
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

#endif
