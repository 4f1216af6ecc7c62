/* provider_http.c — the HTTP call engine of remote providers.
 *
 * POST {base_url}{proto->path}, over brigade's own HTTP/1.1 client for a
 * plain-http provider (upstream_h1.c) or libcurl on the provider's pool
 * (upstream_pool.c) for https and the rest (upstream_h1_get says which);
 * with the body and headers the protocol (provider_openai.c,
 * provider_anthropic.c) makes. Non-streaming: the body is collected
 * (capped) and handed to the protocol, which checks it, reads usage and
 * may translate it. Streaming: the SSE stream is parsed as it arrives
 * (upstream_sse.c); each event goes to the protocol, which passes it on as
 * is or translates it into OpenAI chunks queued here; the chunks are handed
 * to on_event one by one. A stream that ends before the protocol's end
 * marker is TRUNCATED.
 *
 * Backpressure: when on_event returns false we stop handing out events.
 * Over curl, its next write is answered with CURL_WRITEFUNC_PAUSE (curl
 * keeps those bytes and redelivers them after curl_easy_pause(CONT) in
 * upstream_call_resume); over the built-in client the bytes already read
 * are kept and the socket is no longer read until then. Queued chunks and
 * unparsed bytes wait in our buffers meanwhile.
 *
 * Lifetime: the call may be cancelled from inside on_event, i.e. from inside
 * a curl callback, where the easy handle must not be removed. `busy` counts
 * our frames on the stack; the handle is only torn down when nothing of ours
 * or curl's is running for it (see phttp_release). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "upstream/providers/providers.h"
#include "util/xalloc.h"

/* The request's header list without an allocation per line: the fixed
 * lines and the call's own (x-request-id, traceparent) are nodes of one
 * block, and the provider's lines (proto->headers: auth, version), made by
 * curl_slist_append, are linked between them, in the order the lines had
 * when every one was a curl_slist_append. curl only reads the list. */
struct phttp_hdrs {
    struct curl_slist fixed[3];      /* Content-Type, Accept, Expect */
    struct curl_slist *provider;     /* proto->headers' nodes, or NULL */
    struct curl_slist *provider_last;
    struct curl_slist own[2];
    char              text[];        /* the own lines */
};

static struct curl_slist *phttp_slist_last(struct curl_slist *l)
{
    while (l->next) l = l->next;
    return l;
}

static struct curl_slist *phttp_hdrs_build(phttp_call *c, const provider_proto *proto, const provider_cfg *p,
                                           bool stream, const char *request_id, const char *traceparent)
{
    /* Both values are under 128 bytes (upstream_header_safe). */
    bool rid = request_id && request_id[0] && upstream_header_safe(request_id, 128);
    bool tp = traceparent && traceparent[0] && upstream_header_safe(traceparent, 128);
    size_t rl = rid ? strlen(request_id) : 0, tl = tp ? strlen(traceparent) : 0;
    struct phttp_hdrs *h = xmalloc(sizeof *h + (rid ? 14 + rl + 1 : 0) + (tp ? 13 + tl + 1 : 0));
    c->hdr_block = h;
    h->fixed[0] = (struct curl_slist){ (char *)"Content-Type: application/json", &h->fixed[1] };
    h->fixed[1] = (struct curl_slist){ (char *)(stream ? "Accept: text/event-stream" : "Accept: application/json"),
                                       &h->fixed[2] };
    h->fixed[2] = (struct curl_slist){ (char *)"Expect:", NULL };   /* no 100-continue round trip */
    h->provider = proto->headers(p, NULL);
    h->fixed[2].next = h->provider;
    h->provider_last = h->provider ? phttp_slist_last(h->provider) : NULL;
    struct curl_slist *tail = h->provider ? h->provider_last : &h->fixed[2];
    char *t = h->text;
    if (rid) {
        h->own[0] = (struct curl_slist){ t, NULL };
        memcpy(t, "x-request-id: ", 14);
        memcpy(t + 14, request_id, rl + 1);
        t += 14 + rl + 1;
        tail->next = &h->own[0];
        tail = &h->own[0];
    }
    if (tp) {   /* the provider's own tracing can join the caller's trace */
        h->own[1] = (struct curl_slist){ t, NULL };
        memcpy(t, "traceparent: ", 13);
        memcpy(t + 13, traceparent, tl + 1);
        tail->next = &h->own[1];
    }
    return &h->fixed[0];
}

static void phttp_hdrs_free(struct phttp_hdrs *h)
{
    if (!h) return;
    if (h->provider) {
        h->provider_last->next = NULL;   /* the own nodes that follow are not curl's */
        curl_slist_free_all(h->provider);
    }
    free(h);
}

static void phttp_destroy(phttp_call *c)
{
    if (c->easy) upstream_pool_easy_done(c->pool, c->easy);
    if (c->h1req) upstream_h1_cancel(c->h1req);
    phttp_hdrs_free(c->hdr_block);
    if (c->state && c->proto->state_free) c->proto->state_free(c->state);
    free(c->body);
    free(c->out_body);
    buf_free(&c->resp);
    buf_free(&c->queue);
    upstream_sse_free(&c->sse);
    free(c);
}

/* Tear down a finished call unless one of our frames still uses it (that
 * frame calls this again when it unwinds). */
static void phttp_release(phttp_call *c)
{
    if (c->busy == 0 && c->base.finished) phttp_destroy(c);
}

bool phttp_fail(phttp_call *c, upstream_error e, const char *msg)
{
    c->err = e;
    c->errmsg = msg;
    return false;
}

void phttp_emit(phttp_call *c, const char *json, size_t len)
{
    uint32_t n = (uint32_t)len;
    buf_append(&c->queue, &n, sizeof(n));
    buf_append(&c->queue, json, len);
    buf_append(&c->queue, "", 1);   /* consumers may treat it as a C string */
}

/* ----------------------------------------------------------- curl callbacks */

/* A response begins (again after a 100 Continue, say): start over. */
static void phttp_on_status(phttp_call *c, int status)
{
    upstream_call_activity(&c->base);
    c->status = status;
    c->retry_after = 0;
    c->resp.len = 0;
}

/* A Retry-After value: seconds, or an HTTP date. */
static void phttp_on_retry_after(phttp_call *c, const char *val, size_t len)
{
    {
        char v[96];
        size_t vl = len < sizeof(v) - 1 ? len : sizeof(v) - 1;
        memcpy(v, val, vl);
        v[vl] = '\0';
        char *s = v;
        while (*s == ' ' || *s == '\t') s++;
        long secs = -1;
        if (*s >= '0' && *s <= '9') {
            secs = 0;
            while (*s >= '0' && *s <= '9' && secs < 1000000) secs = secs * 10 + (*s++ - '0');
        } else {
            /* HTTP-date form. */
            time_t t = curl_getdate(s, NULL);
            if (t > 0) secs = (long)(t - time(NULL));
            if (secs < 0 && t > 0) secs = 0;
        }
        if (secs >= 0) c->retry_after = secs > 86400 ? 86400 : (uint32_t)secs;
    }
}

static size_t phttp_on_header(char *b, size_t size, size_t n, void *ud)
{
    phttp_call *c = ud;
    size_t len = size * n;
    if (len >= 12 && memcmp(b, "HTTP/", 5) == 0) {
        const char *sp = memchr(b, ' ', len);
        phttp_on_status(c, sp && (size_t)(sp - b) + 4 <= len ? atoi(sp + 1) : 0);
    } else {
        upstream_call_activity(&c->base);
        if (len > 12 && strncasecmp(b, "retry-after:", 12) == 0) phttp_on_retry_after(c, b + 12, len - 12);
    }
    return len;
}

/* Hand out one queued chunk; false if the queue is empty. */
static bool phttp_deliver_queued(phttp_call *c)
{
    if (c->queue_pos >= c->queue.len) {
        c->queue.len = c->queue_pos = 0;
        return false;
    }
    uint32_t n;
    memcpy(&n, c->queue.data + c->queue_pos, sizeof(n));
    const char *d = c->queue.data + c->queue_pos + sizeof(n);
    c->queue_pos += sizeof(n) + n + 1;
    if (!c->base.cb.on_event) return true;
    bool more = c->base.cb.on_event(&c->base, d, n, c->base.arg);
    if (!c->base.finished && !more) c->paused = true;
    return true;
}

/* Hand out events until paused, finished, failed or out of bytes. */
static void phttp_drain(phttp_call *c)
{
    while (!c->paused && !c->base.finished && !c->err) {
        if (phttp_deliver_queued(c)) continue;
        const char *d;
        size_t dl;
        int r = upstream_sse_next(&c->sse, &d, &dl);
        if (r == 0) break;
        if (r < 0) {
            phttp_fail(c, UPSTREAM_MALFORMED, "provider stream event over 1 MiB");
            break;
        }
        if (c->saw_end) continue;   /* nothing counts after the end marker */
        c->facts_valid = false;
        phttp_ev ev = c->proto->stream_event(c, d, dl);
        if (ev == PHTTP_FAIL) break;
        if (ev == PHTTP_END) {
            c->saw_end = true;
            continue;
        }
        if (ev != PHTTP_PASS || !c->base.cb.on_event) continue;
        if (c->facts_valid) {
            c->base.event_facts = &c->facts;
            c->base.event_facts_text = d;
            c->base.event_facts_len = dl;
        }
        bool more = c->base.cb.on_event(&c->base, d, dl, c->base.arg);
        c->base.event_facts = NULL;
        if (c->base.finished) break;     /* cancelled from on_event */
        if (!more) c->paused = true;
    }
}

/* A non-stream (or error) body piece: kept, within the cap. */
static bool phttp_keep_body(phttp_call *c, const char *p, size_t len)
{
    if (c->resp.len + len > UPSTREAM_MAX_BODY) return phttp_fail(c, UPSTREAM_MALFORMED, "provider body over 8 MiB");
    buf_append(&c->resp, p, len);
    return true;
}

static bool phttp_is_stream_body(const phttp_call *c)
{
    return c->base.stream && c->status >= 200 && c->status < 300;
}

static size_t phttp_on_write(char *p, size_t size, size_t n, void *ud)
{
    phttp_call *c = ud;
    size_t len = size * n;
    if (c->base.finished || c->err) return 0;
    upstream_call_activity(&c->base);
    if (!phttp_is_stream_body(c)) return phttp_keep_body(c, p, len) ? len : 0;
    if (c->paused) return CURL_WRITEFUNC_PAUSE;   /* curl keeps these bytes */
    upstream_sse_feed(&c->sse, p, len);
    c->busy++;
    phttp_drain(c);
    c->busy--;
    if (c->base.finished || c->err) return 0;     /* abort; DONE follows */
    return len;
}

/* ---------------------------------------------------------------- finish */

static upstream_error phttp_map_code(CURLcode code)
{
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return UPSTREAM_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return UPSTREAM_CONNECT;
    default:
        return UPSTREAM_TRUNCATED;
    }
}

/* The transfer ended: `terr` is how the wire ended (UPSTREAM_OK: a whole
 * answer), `tmsg` its message. */
static void phttp_finish(phttp_call *c, upstream_error terr, const char *tmsg)
{
    upstream_result r;
    memset(&r, 0, sizeof(r));
    r.status = c->status;
    r.retry_after_s = c->retry_after;
    if (c->status) upstream_note_reachable(c->base.prov);
    bool ok2xx = c->status >= 200 && c->status < 300;

    if (c->err) {
        r.error = c->err;
        r.message = c->errmsg;
        if (c->err == UPSTREAM_HTTP_STATUS) {
            /* An error reported inside a 2xx answer (an error event). */
            r.status = c->err_status;
            r.body = c->resp.data ? c->resp.data : "";
            r.body_len = c->resp.len;
        }
    } else if (terr != UPSTREAM_OK && !(c->status >= 300 && terr != UPSTREAM_TIMEOUT)) {
        r.error = terr;
        if (r.error == UPSTREAM_TRUNCATED && c->status == 0) r.error = UPSTREAM_CONNECT;
        r.message = tmsg;
    } else if (!ok2xx) {
        r.error = UPSTREAM_HTTP_STATUS;
        if (c->proto->map_status) r.status = c->proto->map_status(c->status);
        r.message = "provider answered with an error status";
        r.body = c->resp.data ? c->resp.data : "";
        r.body_len = c->resp.len;
    } else if (c->base.stream) {
        if (!c->saw_end) {
            r.error = UPSTREAM_TRUNCATED;
            r.message = "provider stream ended before its end marker";
        }
    } else {
        if (!c->resp.data) buf_append(&c->resp, "", 0);
        if (!c->proto->body(c)) {
            r.error = c->err;
            r.message = c->errmsg;
            if (c->err == UPSTREAM_HTTP_STATUS) {
                r.status = c->err_status;
                r.body = c->resp.data;
                r.body_len = c->resp.len;
            }
        } else if (c->out_body) {
            r.body = c->out_body;
            r.body_len = c->out_body_len;
        } else {
            r.body = c->resp.data;
            r.body_len = c->resp.len;
        }
    }
    if (c->have_usage) {
        r.input_tokens = c->in_tok;
        r.output_tokens = c->out_tok;
    } else {
        r.input_tokens = upstream_estimate_tokens(c->body, c->body_len);
        r.output_tokens = upstream_estimate_tokens(NULL, c->out_bytes);
        r.usage_estimated = true;
    }
    upstream_call_deliver(&c->base, &r);
    phttp_release(c);
}

/* Either client's end of the transfer. */
static void phttp_ended(phttp_call *c, upstream_error terr, const char *tmsg)
{
    if (c->base.finished) {            /* cancelled earlier; the abort landed */
        phttp_release(c);
        return;
    }
    if (c->paused && terr == UPSTREAM_OK) {
        /* Events are still buffered: finish after the caller resumes. */
        c->transfer_done = true;
        return;
    }
    phttp_finish(c, terr, tmsg);
}

static void phttp_transfer_done(upstream_xfer *x, CURLcode code)
{
    phttp_call *c = (phttp_call *)((char *)x - offsetof(phttp_call, xfer));
    if (code == CURLE_OK) {
        phttp_ended(c, UPSTREAM_OK, NULL);
        return;
    }
    phttp_ended(c, phttp_map_code(code), c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
}

/* ------------------------------------------- the built-in client's handlers */

static void phttp_h1_status(void *owner, int status) { phttp_on_status(owner, status); }

static void phttp_h1_header(void *owner, const char *name, size_t nl, const char *value, size_t vl)
{
    phttp_call *c = owner;
    upstream_call_activity(&c->base);
    if (nl == 11 && strncasecmp(name, "retry-after", 11) == 0) phttp_on_retry_after(c, value, vl);
}

static bool phttp_h1_body(void *owner, const char *p, size_t len)
{
    phttp_call *c = owner;
    if (c->base.finished || c->err) return false;
    upstream_call_activity(&c->base);
    if (!phttp_is_stream_body(c)) return phttp_keep_body(c, p, len);
    /* Bytes read while paused are kept (one read at most: the socket is
     * no longer read) and handed out on resume. */
    upstream_sse_feed(&c->sse, p, len);
    if (c->paused) return true;
    c->busy++;
    phttp_drain(c);
    c->busy--;
    bool go_on = !c->base.finished && !c->err;
    if (go_on && c->paused) upstream_h1_pause(c->h1req);
    phttp_release(c);   /* cancelled from on_event: torn down now */
    return go_on;
}

static void phttp_h1_done(void *owner, h1_outcome o, const char *msg)
{
    phttp_call *c = owner;
    c->h1req = NULL;   /* the client frees it */
    upstream_error terr = o == H1_OK ? UPSTREAM_OK : o == H1_TIMEOUT ? UPSTREAM_TIMEOUT
                        : o == H1_CONNECT ? UPSTREAM_CONNECT : UPSTREAM_TRUNCATED;
    if (msg) {
        snprintf(c->errbuf, sizeof(c->errbuf), "%s", msg);
        msg = c->errbuf;
    }
    phttp_ended(c, terr, msg);
}

static const h1_handlers phttp_h1 = {
    .status = phttp_h1_status,
    .header = phttp_h1_header,
    .body = phttp_h1_body,
    .done = phttp_h1_done,
};

/* -------------------------------------------------------- cancel / resume */

static void phttp_cancel(upstream_call *base)
{
    phttp_call *c = (phttp_call *)base;
    upstream_result r;
    memset(&r, 0, sizeof(r));
    r.error = UPSTREAM_CANCELLED;
    r.status = c->status;
    r.message = "cancelled";
    r.input_tokens = c->have_usage ? c->in_tok : upstream_estimate_tokens(c->body, c->body_len);
    r.output_tokens = c->have_usage ? c->out_tok : upstream_estimate_tokens(NULL, c->out_bytes);
    r.usage_estimated = !c->have_usage;
    upstream_call_deliver(&c->base, &r);
    phttp_release(c);
}

static void phttp_resume(upstream_call *base)
{
    phttp_call *c = (phttp_call *)base;
    if (!c->paused || c->busy) {   /* nested inside our own frames: they go on */
        c->paused = false;
        return;
    }
    c->paused = false;
    c->busy++;
    phttp_drain(c);
    if (!c->base.finished && !c->paused) {
        if (c->err) {
            /* Bad event while draining: stop the transfer and report now. */
            phttp_finish(c, UPSTREAM_OK, NULL);
        } else if (c->transfer_done) {
            phttp_finish(c, UPSTREAM_OK, NULL);
        } else if (c->h1req) {
            upstream_h1_resume(c->h1req);
        } else {
            /* May redeliver held bytes synchronously through phttp_on_write. */
            curl_easy_pause(c->easy, CURLPAUSE_CONT);
        }
    }
    c->busy--;
    phttp_release(c);
}

/* ------------------------------------------------------------------ start */

upstream_call *phttp_chat(upstream *u, const model_cfg *m, const provider_cfg *p,
                          const provider_proto *proto, const char *body, size_t len, bool stream,
                          const upstream_opts *opts, const upstream_callbacks *cb, void *arg)
{
    const char *request_id = opts ? opts->request_id : NULL;
    if (!p->base_url) return NULL;
    phttp_call *c = xcalloc(1, sizeof(*c));
    c->proto = proto;
    c->body = proto->request_body(m, body, len, stream, opts, &c->body_len);
    if (!c->body) {
        free(c);
        return NULL;
    }
    if (stream && proto->state_new) c->state = proto->state_new();
    c->xfer.done = phttp_transfer_done;
    buf_init(&c->resp);
    buf_init(&c->queue);
    upstream_sse_init(&c->sse, UPSTREAM_MAX_EVENT);
    c->hdrs = phttp_hdrs_build(c, proto, p, stream, request_id, opts ? opts->traceparent : NULL);
    uint32_t timeout_ms = p->timeout_ms ? p->timeout_ms : 120000;
    uint32_t connect_timeout_ms = p->connect_timeout_ms ? p->connect_timeout_ms : 5000;

    c->base.cancel = phttp_cancel;
    c->base.resume = phttp_resume;
    upstream_h1 *h1 = upstream_h1_get(u, p);
    if (h1) {
        upstream_call_link(u, &c->base, m, p, stream, cb, arg);
        c->h1req = upstream_h1_post(h1, proto->path, c->hdrs, c->body, c->body_len, timeout_ms,
                                    connect_timeout_ms, &phttp_h1, c);
        return &c->base;
    }

    c->pool = upstream_pool_get(u, p);
    c->easy = upstream_pool_easy(c->pool);
    CURL *e = c->easy;
    const CURLU *uh = upstream_pool_url(c->pool, p->base_url, proto->path);
    if (uh) {
        curl_easy_setopt(e, CURLOPT_CURLU, uh);   /* curl works on its own copy */
    } else {
        size_t bl = strlen(p->base_url), pl = strlen(proto->path);
        while (bl > 0 && p->base_url[bl - 1] == '/') bl--;
        char *url = xmalloc(bl + pl + 1);
        memcpy(url, p->base_url, bl);
        memcpy(url + bl, proto->path, pl + 1);
        curl_easy_setopt(e, CURLOPT_URL, url);   /* copied by curl */
        free(url);
    }
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
    upstream_easy_setup(e, &(upstream_easy_opts){
        .headers = c->hdrs,
        .on_write = phttp_on_write,
        .on_header = phttp_on_header,
        .owner = c,
        .xfer = &c->xfer,
        .errbuf = c->errbuf,
        .timeout_ms = (long)timeout_ms,
        .connect_timeout_ms = (long)connect_timeout_ms,
        .http_version = (long)CURL_HTTP_VERSION_2TLS,
        /* Over https, wait for a connection being set up to learn (ALPN)
         * whether it speaks h2, and then share it rather than open another.
         * Over plain http there is no h2 to learn of — and PIPEWAIT would
         * hold a second concurrent call until the first one's whole
         * response is done, which halved the parallelism to a local
         * provider (measured: the second of two concurrent calls started
         * only when the first ended). */
        .pipewait = strncmp(p->base_url, "https:", 6) == 0,
        .max_body = 0,   /* bodies are capped as they arrive (phttp_on_write), with its own error */
    });

    upstream_call_link(u, &c->base, m, p, stream, cb, arg);
    if (curl_multi_add_handle(upstream_pool_multi(c->pool), e) != CURLM_OK) {
        /* Unlink without callbacks: the caller sees NULL. */
        c->base.cb.on_done = NULL;
        upstream_call_deliver(&c->base, NULL);
        phttp_destroy(c);
        return NULL;
    }
    return &c->base;
}
