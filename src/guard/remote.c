/* remote.c — the remote classifier over libcurl's easy interface
 * (remote.h): blocking, so used only off the event loop. */
#include "guard/remote.h"
#include "util/buf.h"
#include "util/xalloc.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct remote {
    char    *url;
    uint32_t timeout_ms;
    bool     fail_closed;
} remote;

typedef struct remote_answer {
    buf  body;
    bool too_long;
} remote_answer;

static size_t remote_write(char *p, size_t size, size_t n, void *arg)
{
    remote_answer *a = arg;
    size_t len = size * n;
    if (a->body.len + len > GUARD_REMOTE_ANSWER) {
        a->too_long = true;
        return 0;                      /* stops the transfer */
    }
    buf_append(&a->body, p, len);
    return len;
}

static int64_t remote_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One piece: its score, or -1 on any failure. */
static double remote_ask(const remote *r, const char *text, size_t len, guard_channel ch,
                         int64_t left_ms)
{
    if (left_ms <= 0) return -1;
    cJSON *req = cJSON_CreateObject();
    char *copy = xmalloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = 0;
    cJSON_AddStringToObject(req, "text", copy);
    free(copy);
    cJSON_AddStringToObject(req, "channel", guard_channel_name(ch));
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!body) return -1;
    CURL *c = curl_easy_init();
    if (!c) { free(body); return -1; }
    struct curl_slist *h = curl_slist_append(NULL, "content-type: application/json");
    remote_answer a = {0};
    buf_init(&a.body);
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, remote_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    free(body);
    double score = -1;
    if (rc == CURLE_OK && status == 200 && !a.too_long) {
        cJSON *j = cJSON_ParseWithLength(a.body.data ? a.body.data : "", a.body.len);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "score");
        if (cJSON_IsNumber(s) && s->valuedouble >= 0 && s->valuedouble <= 1) score = s->valuedouble;
        cJSON_Delete(j);
    }
    buf_free(&a.body);
    return score;
}

static void remote_scan(const guard_detector *d, const char *text, size_t len, guard_channel ch,
                        guard_detection *out)
{
    const remote *r = d->impl;
    int64_t deadline = remote_now_ms() + r->timeout_ms;
    double best = 0;
    size_t start = 0;
    for (;;) {
        size_t end = start + GUARD_REMOTE_PIECE < len ? start + GUARD_REMOTE_PIECE : len;
        /* never cut a UTF-8 character: back over continuation bytes */
        for (int k = 0; k < 3 && end < len && end > start && ((unsigned char)text[end] & 0xC0) == 0x80; k++)
            end--;
        double s = remote_ask(r, text + start, end - start, ch, deadline - remote_now_ms());
        out->windows++;
        if (s < 0) {
            out->failed = true;
            out->score = r->fail_closed ? 1.0 : 0.0;
            if (r->fail_closed) guard_detection_label(out, "remote_unavailable");
            return;
        }
        if (s > best) {
            best = s;
            out->spans[0] = (guard_text_span){start, end, "remote_classifier"};
        }
        if (end >= len) break;
        start = end > GUARD_OVERLAP ? end - GUARD_OVERLAP : end;
    }
    out->score = best;
    if (best >= 0.5) {
        guard_detection_label(out, "remote_classifier");
        out->n_spans = 1;
    }
}

static void remote_destroy(guard_detector *d)
{
    remote *r = d->impl;
    free(r->url);
    free(r);
    free(d);
}

guard_detector *guard_remote_new(const char *url, uint32_t timeout_ms, bool fail_closed)
{
    remote *r = xcalloc(1, sizeof *r);
    r->url = xstrdup(url);
    r->timeout_ms = timeout_ms;
    r->fail_closed = fail_closed;
    guard_detector *d = xcalloc(1, sizeof *d);
    d->name = "remote";
    d->scan = remote_scan;
    d->destroy = remote_destroy;
    d->whole_text = true;
    d->impl = r;
    return d;
}
