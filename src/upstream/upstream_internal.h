/* upstream_internal.h — what the upstream module's files share (not a
 * public contract): the call header every provider's call starts with, the
 * per-provider curl pool, the HTTP call engine of remote providers, plain
 * fetches, and the SSE parser. */
#ifndef BRIGADE_UPSTREAM_INTERNAL_H
#define BRIGADE_UPSTREAM_INTERNAL_H

#include <curl/curl.h>

#include "upstream/resilience.h"
#include "upstream/upstream.h"
#include "util/buf.h"

#define UPSTREAM_MAX_BODY   (8u << 20)   /* non-stream / error body cap */
#define UPSTREAM_MAX_EVENT  (1u << 20)   /* one SSE event's data cap */

typedef struct upstream_pool upstream_pool;

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
};

struct upstream {
    uv_loop_t            *loop;
    const brigade_config *cfg;
    upstream_call        *calls;
    upstream_fetch       *fetches;        /* plain fetches in flight */
    upstream_pool       **pools;
    size_t                n_pools;
    int                   open_handles;   /* pool timers not yet closed */
    bool                  freeing;
};

/* Record why upstream_chat is about to return NULL (upstream_last_error). */
void upstream_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Link a new call into u (upstream.c). */
void upstream_call_link(upstream *u, upstream_call *c, const model_cfg *m, const provider_cfg *p,
                        bool stream, const upstream_callbacks *cb, void *arg);
/* A provider call received bytes: feeds the first-byte and stream-idle
 * timeouts of its parent (dispatch.c). */
void upstream_call_activity(upstream_call *c);
/* Deliver on_done once and unlink; later calls do nothing. */
void upstream_call_deliver(upstream_call *c, const upstream_result *res);
/* A close callback finished: free u when it was being freed and nothing is left. */
void upstream_handle_closed(upstream *u);

/* Remember that a provider answered (for upstream_provider_reachable). */
void upstream_note_reachable(const provider_cfg *p);

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

/* --- the HTTP call engine of remote providers (provider_http.c) ---
 *
 * One engine does curl, headers, status, Retry-After, SSE, backpressure,
 * cancel and results; a provider_proto says what differs per protocol:
 * the path, the body sent, auth headers, and how an answer becomes the
 * OpenAI form. A stream event either passes through as is (OpenAI) or is
 * translated into zero or more OpenAI chunks queued with phttp_emit. */

typedef struct phttp_call phttp_call;

typedef enum phttp_ev {
    PHTTP_PASS,     /* hand the event to on_event as it is */
    PHTTP_QUEUED,   /* translated: chunks (maybe none) were queued with phttp_emit */
    PHTTP_END,      /* the protocol's end of stream ([DONE], message_stop); chunks may be queued */
    PHTTP_FAIL      /* c->err set (phttp_fail) */
} phttp_ev;

typedef struct provider_proto {
    const char *path;   /* appended to base_url, e.g. "/chat/completions" */
    /* The body to send (malloc'd), or NULL if the request cannot be expressed. */
    char     *(*request_body)(const model_cfg *m, const char *body, size_t len, bool stream,
                              size_t *out_len);
    /* Auth and protocol headers. */
    struct curl_slist *(*headers)(const provider_cfg *p, struct curl_slist *h);
    /* Per-call state of a stream translation (may be NULL). */
    void     *(*state_new)(void);
    void      (*state_free)(void *state);
    /* One SSE event's data. Usage goes to c->in_tok/out_tok/have_usage,
     * generated bytes to c->out_bytes. */
    phttp_ev  (*stream_event)(phttp_call *c, const char *data, size_t len);
    /* A 2xx non-stream body in c->resp: check it, take usage, and set
     * c->out_body when it has to be translated. false after phttp_fail. */
    bool      (*body)(phttp_call *c);
    /* The status to report for a provider's error status (529 → 503). */
    int       (*map_status)(int status);
} provider_proto;

struct phttp_call {
    upstream_call         base;          /* first: upstream_call* ⇄ phttp_call* */
    upstream_xfer         xfer;
    const provider_proto *proto;
    void                 *state;         /* proto->state_new */
    upstream_pool        *pool;
    CURL                 *easy;
    struct curl_slist    *hdrs;
    char                 *body;          /* what is sent */
    size_t                body_len;
    char                  errbuf[CURL_ERROR_SIZE];
    int                   status;        /* of the final response */
    uint32_t              retry_after;
    buf                   resp;          /* non-stream body, or any error body */
    char                 *out_body;      /* translated non-stream body (proto->body) */
    size_t                out_body_len;
    upstream_sse          sse;
    buf                   queue;         /* translated events: [u32 len][bytes][NUL]… */
    size_t                queue_pos;
    bool                  saw_end;
    bool                  have_usage;
    int64_t               in_tok, out_tok;
    size_t                out_bytes;     /* generated text seen, for estimates */
    upstream_error        err;           /* set inside a callback, which then aborts */
    const char           *errmsg;
    char                  errmsg_buf[256];
    int                   err_status;    /* err == HTTP_STATUS from inside a stream */
    bool                  paused;        /* on_event said stop */
    bool                  transfer_done; /* curl finished while we were paused */
    CURLcode              done_code;
    int                   busy;          /* our frames using this call */
};

void           phttp_emit(phttp_call *c, const char *json, size_t len);
bool           phttp_fail(phttp_call *c, upstream_error e, const char *msg);   /* returns false */
/* Header values from config or the caller must not smuggle in new lines. */
bool           phttp_header_safe(const char *v, size_t max);
upstream_call *phttp_chat(upstream *u, const model_cfg *m, const provider_cfg *p,
                          const provider_proto *proto, const char *body, size_t len, bool stream,
                          const upstream_opts *opts, const upstream_callbacks *cb, void *arg);

/* --- providers --- */

extern const provider_proto provider_openai_proto;      /* provider_openai.c */
extern const provider_proto provider_anthropic_proto;   /* provider_anthropic.c */
upstream_call *mockp_chat(upstream *u, const model_cfg *m, const provider_cfg *p, const char *body,
                          size_t len, bool stream, const upstream_callbacks *cb, void *arg);
/* One attempt on one provider (upstream.c): the provider kinds' dispatch. */
upstream_call *upstream_provider_chat(upstream *u, const model_cfg *m, const provider_cfg *p,
                                      const char *body, size_t len, bool stream,
                                      const upstream_opts *opts, const upstream_callbacks *cb, void *arg);

/* --- process-wide deployment state (health.c) --- */

typedef struct up_dep {
    const provider_cfg *prov;
    const char         *upstream_model;
    char                name[160];        /* "provider/upstream_model" */
    uint32_t            weight, max_concurrent;
    uint32_t            in_flight;
    int64_t             swrr_current;
    uint64_t            cool_until;       /* answered 429: avoid until then (ms) */
    upstream_breaker    br;
    uint64_t            calls, failures, retries, fallbacks, latency_sum, latency_count;
} up_dep;

typedef struct up_health_model up_health_model;

void             upstream_health_attach(const brigade_config *cfg);   /* upstream_new */
void             upstream_health_detach(void);                        /* upstream_free */
up_health_model *upstream_health_model(const model_cfg *m);
size_t           upstream_health_n(const up_health_model *hm);
/* Read-only fields (prov, upstream_model, name, weight) of deployment i. */
const up_dep    *upstream_health_dep(const up_health_model *hm, size_t i);
/* Choose and admit a deployment (in_flight counted), preferring those not
 * in tried_mask; -1 with *why if none may be used now. */
int              upstream_health_acquire(up_health_model *hm, uint64_t now, uint64_t tried_mask,
                                         uint64_t rnd, bool *probe, const char **why);
/* The attempt on deployment i ended with fault f. */
void             upstream_health_release(up_health_model *hm, int i, uint64_t now, upstream_fault f,
                                         bool probe, uint64_t latency_ms, bool retry);
void             upstream_health_cool(up_health_model *hm, int i, uint64_t until);
void             upstream_health_note_fallback(up_health_model *hm);
void             upstream_health_budget_request(const provider_cfg *p, uint64_t now);
bool             upstream_health_budget_retry(const provider_cfg *p, uint64_t now);

/* --- plain fetches (upstream_fetch.c) --- */

/* Deliver "cancelled" to every fetch in flight (upstream_free). */
void upstream_fetch_cancel_all(upstream *u);

#endif
