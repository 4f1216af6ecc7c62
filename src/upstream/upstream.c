/* upstream.c — the per-loop upstream: call bookkeeping and dispatch to the
 * provider kinds, plus the small shared helpers of upstream.h. */
#include "upstream/net/net.h"
#include "upstream/providers/providers.h"
#include "upstream/resilience/health.h"
#include "upstream/upstream_internal.h"

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>

#include "util/timeutil.h"
#include "util/xalloc.h"

static pthread_once_t upstream_curl_once = PTHREAD_ONCE_INIT;
static void upstream_curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

upstream *upstream_new(uv_loop_t *loop, const brigade_config *cfg)
{
    /* curl_global_init is not thread-safe on every build: do it once. */
    pthread_once(&upstream_curl_once, upstream_curl_init);
    upstream *u = xcalloc(1, sizeof(*u));
    u->loop = loop;
    u->cfg = cfg;
    upstream_health_attach(cfg);
    return u;
}

void upstream_handle_closed(upstream *u)
{
    u->open_handles--;
    if (u->freeing && u->open_handles == 0) {
        free(u->pools);
        free(u->h1);
        free(u);
    }
}

void upstream_free(upstream *u)
{
    if (!u) return;
    while (u->calls) upstream_call_cancel(u->calls);
    upstream_fetch_cancel_all(u);
    for (size_t i = 0; i < u->n_pools; i++) upstream_pool_free(u->pools[i]);
    u->n_pools = 0;
    for (size_t i = 0; i < u->n_h1; i++) upstream_h1_free(u->h1[i]);
    u->n_h1 = 0;
    u->freeing = true;
    upstream_health_detach();
    if (u->open_handles == 0) {
        free(u->pools);
        free(u->h1);
        free(u);
    }
    /* else: freed by the last close callback — run the loop once more. */
}

void upstream_call_link(upstream *u, upstream_call *c, const model_cfg *m, const provider_cfg *p,
                        bool stream, const upstream_callbacks *cb, void *arg)
{
    c->u = u;
    c->cb = *cb;
    c->arg = arg;
    c->model = m;
    c->prov = p;
    c->stream = stream;
    c->event_facts = NULL;
    c->prev = NULL;
    c->next = u->calls;
    if (u->calls) u->calls->prev = c;
    u->calls = c;
}

const struct openai_scan_result *upstream_call_event_facts(const upstream_call *c, const char *json,
                                                           size_t len)
{
    if (!c->event_facts || c->event_facts_text != json || c->event_facts_len != len) return NULL;
    return c->event_facts;
}

const struct openai_scan_result *upstream_event_facts(const upstream_call *call, const char *json,
                                                      size_t len)
{
    return call ? upstream_call_event_facts(call, json, len) : NULL;
}

void upstream_call_deliver(upstream_call *c, const upstream_result *res)
{
    if (c->finished) return;
    c->finished = true;
    if (c->prev) c->prev->next = c->next;
    else c->u->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (c->cb.on_done) c->cb.on_done(c, res, c->arg);
}

static _Thread_local char upstream_err[256];

const char *upstream_last_error(void) { return upstream_err; }

void upstream_clear_error(void) { upstream_err[0] = '\0'; }

void upstream_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(upstream_err, sizeof upstream_err, fmt, ap);
    va_end(ap);
}

upstream_call *upstream_provider_chat(upstream *u, const model_cfg *m, const provider_cfg *p,
                                      const char *body, size_t len, bool stream,
                                      const upstream_opts *opts, const upstream_callbacks *cb, void *arg)
{
    /* An embedding model's call is an embeddings request (its kind says
     * so, and a fallback is of the same kind: config checks). */
    if (m->embedding && p->kind == PROVIDER_ANTHROPIC) {
        upstream_set_error("provider \"%s\" is an Anthropic provider, which has no embeddings API",
                           p->name);
        return NULL;
    }
    if (opts && opts->responses) {
        if (p->kind != PROVIDER_OPENAI || !p->responses_passthrough) {
            upstream_set_error("provider \"%s\" does not take Responses requests (it has no "
                               "`responses: passthrough`)", p->name);
            return NULL;
        }
        return phttp_chat(u, m, p, &provider_openai_responses_proto, body, len, stream, opts, cb, arg);
    }
    switch (p->kind) {
    case PROVIDER_MOCK:
        return mockp_chat(u, m, p, body, len, stream, cb, arg);
    case PROVIDER_OPENAI:
        return phttp_chat(u, m, p, m->embedding ? &provider_openai_embeddings_proto : &provider_openai_proto,
                          body, len, stream, opts, cb, arg);
    case PROVIDER_ANTHROPIC:
        return phttp_chat(u, m, p, &provider_anthropic_proto, body, len, stream, opts, cb, arg);
    }
    return NULL;
}

void upstream_call_resume(upstream_call *call)
{
    if (call && !call->finished && call->resume) call->resume(call);
}

void upstream_call_cancel(upstream_call *call)
{
    if (call && !call->finished) call->cancel(call);
}

int64_t upstream_estimate_tokens(const char *text, size_t len)
{
    (void)text;
    return (int64_t)((len + 3) / 4);
}

const char *upstream_error_name(upstream_error e)
{
    switch (e) {
    case UPSTREAM_OK:          return "ok";
    case UPSTREAM_CONNECT:     return "connect";
    case UPSTREAM_TIMEOUT:     return "timeout";
    case UPSTREAM_HTTP_STATUS: return "http_status";
    case UPSTREAM_MALFORMED:   return "malformed";
    case UPSTREAM_TRUNCATED:   return "truncated";
    case UPSTREAM_CANCELLED:   return "cancelled";
    }
    return "unknown";
}

/* ------------------------------------------------------------ reachability */

/* Providers that answered recently, so /readyz does not open a probe
 * connection on every call while traffic flows. Small and fixed: past its
 * size, the probe is simply done. */
#define UPSTREAM_SEEN_SLOTS 32
#define UPSTREAM_SEEN_FRESH_MS 30000
static pthread_mutex_t upstream_seen_mu = PTHREAD_MUTEX_INITIALIZER;
/* A provider is its config entry and its base_url then: a config reloaded
 * may put another provider at a freed entry's address. */
static struct { const provider_cfg *p; char url[256]; int64_t at_ms; } upstream_seen[UPSTREAM_SEEN_SLOTS];

static bool upstream_same_provider(const provider_cfg *p, const provider_cfg *q, const char *q_url)
{
    return p == q && strncmp(p->base_url ? p->base_url : "", q_url, 255) == 0;
}

void upstream_note_reachable(const provider_cfg *p)
{
    int64_t now = time_now_unix_ms();
    pthread_mutex_lock(&upstream_seen_mu);
    size_t oldest = 0;
    for (size_t i = 0; i < UPSTREAM_SEEN_SLOTS; i++) {
        if (upstream_same_provider(p, upstream_seen[i].p, upstream_seen[i].url)) { oldest = i; break; }
        if (upstream_seen[i].at_ms < upstream_seen[oldest].at_ms) oldest = i;
    }
    upstream_seen[oldest].p = p;
    snprintf(upstream_seen[oldest].url, sizeof upstream_seen[oldest].url, "%s", p->base_url ? p->base_url : "");
    upstream_seen[oldest].at_ms = now;
    pthread_mutex_unlock(&upstream_seen_mu);
}

static bool upstream_seen_recently(const provider_cfg *p)
{
    int64_t now = time_now_unix_ms();
    bool yes = false;
    pthread_mutex_lock(&upstream_seen_mu);
    for (size_t i = 0; i < UPSTREAM_SEEN_SLOTS; i++)
        if (upstream_same_provider(p, upstream_seen[i].p, upstream_seen[i].url) &&
            now - upstream_seen[i].at_ms <= UPSTREAM_SEEN_FRESH_MS)
            yes = true;
    pthread_mutex_unlock(&upstream_seen_mu);
    return yes;
}

/* Non-blocking connect bounded by the time left until `deadline_ms`. */
static bool upstream_tcp_probe(const struct addrinfo *ai, int64_t deadline_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return false;
    bool ok = false;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        ok = true;
    } else if (errno == EINPROGRESS) {
        int64_t left = deadline_ms - time_now_unix_ms();
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        if (left > 0 && poll(&pfd, 1, (int)left) == 1) {
            int err = 0;
            socklen_t el = sizeof(err);
            ok = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0;
        }
    }
    close(fd);
    return ok;
}

/* Probes that failed, and probes under way: /readyz is public, and each
 * probe of a provider that does not answer holds a thread-pool thread for
 * up to 2 s (getaddrinfo has no timeout). Probed on every call, a flood of
 * /readyz held the whole pool — every store job, run and resolve queued
 * behind it — and connected to the provider at the flood's rate. A
 * failure is now believed for UPSTREAM_PROBE_FAIL_FRESH_MS, and while one
 * probe of a provider is under way the others answer at once what the
 * last probe found (unreachable before any). */
#define UPSTREAM_PROBE_SLOTS 32
#define UPSTREAM_PROBE_FAIL_FRESH_MS 5000
static pthread_mutex_t upstream_probe_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    const provider_cfg *p;
    char     url[256];              /* its base_url then: a config reloaded may reuse p */
    int64_t  failed_ms;
    bool     probing, last_ok;
} upstream_probe[UPSTREAM_PROBE_SLOTS];

/* The probe slot of p (taken from the oldest failure when p has none);
 * lock held. */
static size_t upstream_probe_slot(const provider_cfg *p)
{
    size_t oldest = 0;
    for (size_t i = 0; i < UPSTREAM_PROBE_SLOTS; i++) {
        if (upstream_same_provider(p, upstream_probe[i].p, upstream_probe[i].url)) return i;
        if (!upstream_probe[i].probing && upstream_probe[i].failed_ms < upstream_probe[oldest].failed_ms) oldest = i;
    }
    if (upstream_probe[oldest].probing) return UPSTREAM_PROBE_SLOTS;   /* all busy: probe untracked */
    upstream_probe[oldest].p = p;
    snprintf(upstream_probe[oldest].url, sizeof upstream_probe[oldest].url, "%s", p->base_url);
    upstream_probe[oldest].failed_ms = 0;
    upstream_probe[oldest].last_ok = false;
    return oldest;
}

/* true: this caller probes (and must call upstream_probe_end); false:
 * answer *known now (a fresh failure, or another probe running). */
static bool upstream_probe_begin(const provider_cfg *p, size_t *slot, bool *known)
{
    int64_t now = time_now_unix_ms();
    pthread_mutex_lock(&upstream_probe_mu);
    size_t i = upstream_probe_slot(p);
    bool go = true;
    *known = false;
    if (i < UPSTREAM_PROBE_SLOTS) {
        if (upstream_probe[i].probing) {
            go = false;
            *known = upstream_probe[i].last_ok;
        } else if (upstream_probe[i].failed_ms && now - upstream_probe[i].failed_ms < UPSTREAM_PROBE_FAIL_FRESH_MS) {
            go = false;
        } else {
            upstream_probe[i].probing = true;
        }
    }
    pthread_mutex_unlock(&upstream_probe_mu);
    *slot = i;
    return go;
}

static void upstream_probe_end(size_t slot, bool ok)
{
    if (slot >= UPSTREAM_PROBE_SLOTS) return;
    pthread_mutex_lock(&upstream_probe_mu);
    upstream_probe[slot].probing = false;
    upstream_probe[slot].last_ok = ok;
    upstream_probe[slot].failed_ms = ok ? 0 : time_now_unix_ms();
    pthread_mutex_unlock(&upstream_probe_mu);
}

static bool upstream_probe_reachable(const provider_cfg *p);

bool upstream_provider_reachable(const provider_cfg *p)
{
    if (!p) return false;
    if (p->kind == PROVIDER_MOCK) return true;
    if (upstream_seen_recently(p)) return true;
    if (!p->base_url) return false;
    size_t slot;
    bool known;
    if (!upstream_probe_begin(p, &slot, &known)) return known;
    bool ok = upstream_probe_reachable(p);
    upstream_probe_end(slot, ok);
    return ok;
}

static bool upstream_probe_reachable(const provider_cfg *p)
{

    CURLU *url = curl_url();
    if (!url) return false;
    char *host = NULL, *port = NULL;
    bool ok = false;
    if (curl_url_set(url, CURLUPART_URL, p->base_url, 0) == CURLUE_OK &&
        curl_url_get(url, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        /* IPv6 literals come back in brackets. */
        size_t hl = strlen(host);
        if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
            memmove(host, host + 1, hl - 2);
            host[hl - 2] = '\0';
        }
        int64_t deadline = time_now_unix_ms() + 2000;
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
        struct addrinfo *res = NULL;
        /* getaddrinfo has no timeout of its own; the 2 s bound covers the
         * connects, which is where an unreachable host hangs. */
        if (getaddrinfo(host, port, &hints, &res) == 0) {
            for (struct addrinfo *ai = res; ai && !ok && time_now_unix_ms() < deadline; ai = ai->ai_next)
                ok = upstream_tcp_probe(ai, deadline);
            freeaddrinfo(res);
        }
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(url);
    if (ok) upstream_note_reachable(p);
    return ok;
}
