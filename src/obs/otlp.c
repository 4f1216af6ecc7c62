/* otlp.c — OTLP/HTTP JSON export of spans, from a thread of its own.
 *
 * The encoding follows the OTLP JSON mapping of ExportTraceServiceRequest:
 * ids as lower-case hex (not base64, unlike the proto3 default), 64-bit
 * integers (times, intValue) as decimal strings, enums as numbers.
 *
 * Export must never slow a request: spans reach here from the tracer
 * thread, never from a request thread, and the queue is bounded
 * (otlp.max_queue). When it is full, or a POST fails (collector down,
 * timeout, non-2xx), those spans are dropped and counted in
 * brigade_otlp_spans_dropped_total — there is no retry buffer, since a
 * collector that is down for minutes would otherwise hold the process's
 * memory hostage. */
#include "obs/obs_internal.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json_escape.h"
#include "util/log.h"

/* ---- encoding ---- */

void obs_json_str(buf *b, const char *s) { json_escape_string(b, s, strlen(s)); }

static void obs_json_double(buf *b, double d)
{
    if (isnan(d) || isinf(d)) buf_puts(b, "null");
    else buf_printf(b, "%.17g", d);
}

void obs_attrs_json(buf *b, const obs_span *s)
{
    buf_append(b, "{", 1);
    for (unsigned i = 0; i < s->n_attrs; i++) {
        const obs_attr *a = &s->attrs[i];
        if (i) buf_append(b, ",", 1);
        obs_json_str(b, obs_attr_key(s, a));
        buf_append(b, ":", 1);
        switch (a->type) {
        case OBS_ATTR_STR: obs_json_str(b, s->pool + a->off); break;
        case OBS_ATTR_INT: buf_printf(b, "%lld", (long long)a->v.i); break;
        case OBS_ATTR_DOUBLE: obs_json_double(b, a->v.d); break;
        case OBS_ATTR_BOOL: buf_puts(b, a->v.b ? "true" : "false"); break;
        }
    }
    buf_append(b, "}", 1);
}

static void obs_otlp_kv_str(buf *b, const char *key, const char *v)
{
    buf_puts(b, "{\"key\":");
    obs_json_str(b, key);
    buf_puts(b, ",\"value\":{\"stringValue\":");
    obs_json_str(b, v);
    buf_puts(b, "}}");
}

static void obs_otlp_attr(buf *b, const obs_span *s, const obs_attr *a)
{
    if (a->type == OBS_ATTR_STR) {
        obs_otlp_kv_str(b, obs_attr_key(s, a), s->pool + a->off);
        return;
    }
    buf_puts(b, "{\"key\":");
    obs_json_str(b, obs_attr_key(s, a));
    buf_puts(b, ",\"value\":{");
    switch (a->type) {
    case OBS_ATTR_INT: buf_printf(b, "\"intValue\":\"%lld\"", (long long)a->v.i); break;
    case OBS_ATTR_DOUBLE:
        /* proto3 JSON spells the non-finite doubles as strings */
        if (isnan(a->v.d)) buf_puts(b, "\"doubleValue\":\"NaN\"");
        else if (isinf(a->v.d)) buf_printf(b, "\"doubleValue\":\"%sInfinity\"", a->v.d < 0 ? "-" : "");
        else buf_printf(b, "\"doubleValue\":%.17g", a->v.d);
        break;
    case OBS_ATTR_BOOL: buf_printf(b, "\"boolValue\":%s", a->v.b ? "true" : "false"); break;
    default: break;
    }
    buf_puts(b, "}}");
}

static void obs_otlp_span(buf *b, const obs_span *s)
{
    char tid[33], sid[17], pid[17];
    ids_hex(tid, s->ctx.trace_id, 16);
    ids_hex(sid, s->ctx.span_id, 8);
    buf_printf(b, "{\"traceId\":\"%s\",\"spanId\":\"%s\"", tid, sid);
    if (s->has_parent) {
        ids_hex(pid, s->parent_id, 8);
        buf_printf(b, ",\"parentSpanId\":\"%s\"", pid);
    }
    buf_puts(b, ",\"name\":");
    obs_json_str(b, s->name);
    buf_printf(b, ",\"kind\":%d,\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":\"%lld\"",
               (int)s->kind, (long long)s->start_ns, (long long)s->end_ns);
    buf_puts(b, ",\"attributes\":[");
    bool first = true;
    for (unsigned i = 0; i < s->n_attrs; i++) {
        if (!first) buf_append(b, ",", 1);
        obs_otlp_attr(b, s, &s->attrs[i]);
        first = false;
    }
    if (s->tenant_id[0]) {
        if (!first) buf_append(b, ",", 1);
        obs_otlp_kv_str(b, "brigade.tenant.id", s->tenant_id);
        first = false;
    }
    if (s->user_id[0]) {
        if (!first) buf_append(b, ",", 1);
        obs_otlp_kv_str(b, "enduser.id", s->user_id);
    }
    buf_printf(b, "],\"status\":{\"code\":%d", (int)s->status);
    if (s->status_msg && s->status_msg[0]) {
        buf_puts(b, ",\"message\":");
        obs_json_str(b, s->status_msg);
    }
    buf_puts(b, "}}");
}

void obs_otlp_encode(buf *b, obs_span *const *spans, size_t n, const char *service_name)
{
    buf_puts(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    obs_otlp_kv_str(b, "service.name", service_name && service_name[0] ? service_name : "brigade");
    buf_append(b, ",", 1);
    obs_otlp_kv_str(b, "service.version", BRIGADE_VERSION);
    buf_puts(b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"brigade\",\"version\":\"" BRIGADE_VERSION
                "\"},\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) buf_append(b, ",", 1);
        obs_otlp_span(b, spans[i]);
    }
    buf_puts(b, "]}]}]}");
}

/* ---- the exporter thread ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    obs_span *head, *tail;
    size_t qlen;
    bool stopping;
    pthread_t thread;
    char url[2048];
    char service[128];
    uint32_t max_queue, batch, interval_ms, timeout_ms;
} obs_ex = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

void obs_otlp_offer(obs_span **spans, size_t n)
{
    size_t dropped = 0;
    pthread_mutex_lock(&obs_ex.mu);
    for (size_t i = 0; i < n; i++) {
        if (obs_ex.qlen >= obs_ex.max_queue || obs_ex.stopping) {
            obs_span_free(spans[i]);
            dropped++;
            continue;
        }
        spans[i]->next = NULL;
        if (obs_ex.tail) obs_ex.tail->next = spans[i];
        else obs_ex.head = spans[i];
        obs_ex.tail = spans[i];
        obs_ex.qlen++;
    }
    if (obs_ex.qlen >= obs_ex.batch) pthread_cond_signal(&obs_ex.wake);
    pthread_mutex_unlock(&obs_ex.mu);
    if (dropped) obs_counter_add(obs_series_of(obs_m_otlp_dropped(), NULL), dropped);
}

static size_t obs_curl_discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

/* POST one batch; true on a 2xx. */
static bool obs_otlp_post(CURL *curl, const buf *body)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, obs_ex.url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)obs_ex.timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)obs_ex.timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, obs_curl_discard);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    return rc == CURLE_OK && status >= 200 && status < 300;
}

static void *obs_otlp_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "otlp");   /* top -H (docs/architecture.md, Threads) */
    CURL *curl = curl_easy_init();
    int64_t last_fail_log = 0;
    pthread_mutex_lock(&obs_ex.mu);
    for (;;) {
        if (obs_ex.qlen < obs_ex.batch && !obs_ex.stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long ns = ts.tv_nsec + (long)(obs_ex.interval_ms % 1000) * 1000000L;
            ts.tv_sec += obs_ex.interval_ms / 1000 + ns / 1000000000L;
            ts.tv_nsec = ns % 1000000000L;
            pthread_cond_timedwait(&obs_ex.wake, &obs_ex.mu, &ts);
        }
        bool stop = obs_ex.stopping;
        if (!obs_ex.head) {
            if (stop) break;
            continue;
        }
        /* Take one batch. */
        obs_span *batch[4096];
        size_t n = 0, cap = obs_ex.batch < 4096 ? obs_ex.batch : 4096;
        while (obs_ex.head && n < cap) {
            batch[n++] = obs_ex.head;
            obs_ex.head = obs_ex.head->next;
            obs_ex.qlen--;
        }
        if (!obs_ex.head) obs_ex.tail = NULL;
        pthread_mutex_unlock(&obs_ex.mu);

        buf body;
        buf_init(&body);
        obs_otlp_encode(&body, batch, n, obs_ex.service);
        bool ok = curl && obs_otlp_post(curl, &body);
        buf_free(&body);
        obs_span_free_many(batch, n);
        if (ok) {
            obs_counter_add(obs_series_of(obs_m_otlp_exported(), NULL), n);
        } else {
            obs_counter_add(obs_series_of(obs_m_otlp_dropped(), NULL), n);
            time_t now = time(NULL);
            if (now - last_fail_log >= 60) {   /* once a minute, not once a batch */
                log_warn("obs: OTLP export failed; %zu spans dropped (collector unreachable?)", n);
                last_fail_log = now;
            }
        }
        pthread_mutex_lock(&obs_ex.mu);
        if (stop && !ok) {
            /* Shutting down and the collector is not answering: do not hold
             * the exit for another timeout per batch. */
            size_t rest = obs_ex.qlen;
            while (obs_ex.head) {
                obs_span *nx = obs_ex.head->next;
                obs_span_free(obs_ex.head);
                obs_ex.head = nx;
            }
            obs_ex.tail = NULL;
            obs_ex.qlen = 0;
            if (rest) obs_counter_add(obs_series_of(obs_m_otlp_dropped(), NULL), rest);
            break;
        }
    }
    pthread_mutex_unlock(&obs_ex.mu);
    if (curl) curl_easy_cleanup(curl);
    return NULL;
}

int obs_otlp_start(const obs_tracer_opts *o, char *err, size_t errlen)
{
    const char *ep = o->otlp_endpoint;
    size_t l = strlen(ep);
    while (l && ep[l - 1] == '/') l--;
    if (l + sizeof "/v1/traces" > sizeof obs_ex.url) {
        snprintf(err, errlen, "observability.otlp.endpoint is too long");
        return -1;
    }
    snprintf(obs_ex.url, sizeof obs_ex.url, "%.*s/v1/traces", (int)l, ep);
    snprintf(obs_ex.service, sizeof obs_ex.service, "%s",
             o->service_name && o->service_name[0] ? o->service_name : "brigade");
    obs_ex.max_queue = o->otlp_max_queue ? o->otlp_max_queue : 8192;
    obs_ex.batch = o->otlp_batch ? o->otlp_batch : 512;
    obs_ex.interval_ms = o->otlp_interval_ms ? o->otlp_interval_ms : 1000;
    obs_ex.timeout_ms = o->otlp_timeout_ms ? o->otlp_timeout_ms : 2000;
    obs_ex.stopping = false;
    int rc = pthread_create(&obs_ex.thread, NULL, obs_otlp_main, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the OTLP exporter thread: %s", strerror(rc));
        return -1;
    }
    return 0;
}

void obs_otlp_stop(void)
{
    pthread_mutex_lock(&obs_ex.mu);
    obs_ex.stopping = true;
    pthread_cond_signal(&obs_ex.wake);
    pthread_mutex_unlock(&obs_ex.mu);
    pthread_join(obs_ex.thread, NULL);
}
