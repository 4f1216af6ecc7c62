/* upstream_internal.h — what the upstream module's three parts share (not a
 * public contract): the call header every provider's call starts with, the
 * per-loop upstream, and the call bookkeeping of upstream.c. Each part has
 * its own header for the rest: net/net.h (curl pool, fetches, SSE),
 * providers/providers.h (the HTTP call engine, the protocols, the mock
 * provider), resilience/health.h (deployment state) beside resilience.h. */
#ifndef BRIGADE_UPSTREAM_INTERNAL_H
#define BRIGADE_UPSTREAM_INTERNAL_H

#include "upstream/upstream.h"

#define UPSTREAM_MAX_BODY   (8u << 20)   /* non-stream / error body cap */
#define UPSTREAM_MAX_EVENT  (1u << 20)   /* one SSE event's data cap */

typedef struct upstream_pool upstream_pool;
typedef struct upstream_h1 upstream_h1;

/* The first member of every provider's call struct, and of the call the
 * caller holds (dispatch.c's rcall, which runs provider calls as its
 * attempts: their `parent`). */
struct upstream_call {
    upstream           *u;
    upstream_callbacks  cb;
    void               *arg;
    const model_cfg    *model;
    const provider_cfg *prov;
    upstream_call      *parent;       /* attempt: the caller's call; else NULL */
    bool                stream;
    bool                finished;     /* on_done delivered */
    upstream_call      *prev, *next;  /* u's list of calls not yet finished */
    void              (*cancel)(upstream_call *c);   /* provider: deliver CANCELLED, release */
    void              (*resume)(upstream_call *c);
    /* While on_event runs for a stream chunk the provider already read
     * without a tree: that reading and the bytes it is of, so the
     * resilience layer does not scan the same chunk again. NULL otherwise. */
    const struct openai_scan_result *event_facts;
    const char                      *event_facts_text;
    size_t                           event_facts_len;
};

struct upstream {
    uv_loop_t            *loop;
    const brigade_config *cfg;
    upstream_call        *calls;
    upstream_fetch       *fetches;        /* plain fetches in flight */
    upstream_pool       **pools;
    size_t                n_pools;
    upstream_h1         **h1;             /* built-in HTTP/1.1 clients, one per provider seen */
    size_t                n_h1;
    int                   open_handles;   /* pool timers and h1 clients not yet closed */
    bool                  freeing;
};

/* Record why upstream_chat is about to return NULL (upstream_last_error). */
void upstream_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* No reason recorded (before each call and attempt): upstream_set_error("%s", "")
 * without the formatter. */
void upstream_clear_error(void);

/* Link a new call into u (upstream.c). */
void upstream_call_link(upstream *u, upstream_call *c, const model_cfg *m, const provider_cfg *p,
                        bool stream, const upstream_callbacks *cb, void *arg);
/* A provider call received bytes: feeds the first-byte and stream-idle
 * timeouts of its parent (dispatch.c). */
void upstream_call_activity(upstream_call *c);
/* The provider's reading of the stream chunk (json, len) being delivered
 * by c (openai_scan.h), or NULL when it has none for exactly these bytes
 * (a translated or replayed event, a chunk the scan left to cJSON). */
const struct openai_scan_result *upstream_call_event_facts(const upstream_call *c, const char *json,
                                                           size_t len);
/* Deliver on_done once and unlink; later calls do nothing. */
void upstream_call_deliver(upstream_call *c, const upstream_result *res);
/* A close callback finished: free u when it was being freed and nothing is left. */
void upstream_handle_closed(upstream *u);

/* Remember that a provider answered (for upstream_provider_reachable). */
void upstream_note_reachable(const provider_cfg *p);

/* One attempt on one provider (upstream.c): the provider kinds' dispatch. */
upstream_call *upstream_provider_chat(upstream *u, const model_cfg *m, const provider_cfg *p,
                                      const char *body, size_t len, bool stream,
                                      const upstream_opts *opts, const upstream_callbacks *cb, void *arg);

#endif
