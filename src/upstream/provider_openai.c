/* provider_openai.c — OpenAI-compatible providers over libcurl.
 *
 * POST {base_url}/chat/completions on the provider's pool (upstream_pool.c).
 * Non-streaming: the body is collected (capped) and checked to be JSON, and
 * usage is read from it. Streaming: the SSE stream is parsed as it arrives
 * (upstream_sse.c); each event is checked to be JSON and handed to on_event;
 * usage comes from the final usage chunk, which we ask for by adding
 * stream_options.include_usage. A stream that ends without [DONE] is
 * TRUNCATED.
 *
 * Backpressure: when on_event returns false we stop handing out events and
 * answer curl's next write with CURL_WRITEFUNC_PAUSE (curl keeps those bytes
 * and redelivers them after curl_easy_pause(CONT) in upstream_call_resume).
 *
 * Lifetime: the call may be cancelled from inside on_event, i.e. from inside
 * a curl callback, where the easy handle must not be removed. `busy` counts
 * our frames on the stack; the handle is only torn down when nothing of ours
 * or curl's is running for it (see openai_release). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "upstream/upstream_internal.h"

typedef struct openai_call {
    upstream_call      base;          /* first: upstream_call* ⇄ openai_call* */
    upstream_pool     *pool;
    CURL              *easy;
    struct curl_slist *hdrs;
    char              *body;
    size_t             body_len;
    char               errbuf[CURL_ERROR_SIZE];
    int                status;        /* of the final response */
    uint32_t           retry_after;
    buf                resp;          /* non-stream body, or any error body */
    upstream_sse       sse;
    bool               saw_done;
    bool               have_usage;
    int64_t            in_tok, out_tok;
    size_t             out_bytes;     /* generated text seen, for estimates */
    upstream_error     err;           /* set inside a callback, which then aborts */
    const char        *errmsg;
    bool               paused;        /* on_event said stop */
    bool               transfer_done; /* curl finished while we were paused */
    CURLcode           done_code;
    int                busy;          /* our frames using this call */
} openai_call;

static void openai_destroy(openai_call *c)
{
    curl_multi_remove_handle(upstream_pool_multi(c->pool), c->easy);
    curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->hdrs);
    free(c->body);
    buf_free(&c->resp);
    upstream_sse_free(&c->sse);
    free(c);
}

/* Tear down a finished call unless one of our frames still uses it (that
 * frame calls this again when it unwinds). */
static void openai_release(openai_call *c)
{
    if (c->busy == 0 && c->base.finished) openai_destroy(c);
}

/* ----------------------------------------------------------- curl callbacks */

static size_t openai_on_header(char *b, size_t size, size_t n, void *ud)
{
    openai_call *c = ud;
    size_t len = size * n;
    if (len >= 12 && memcmp(b, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): start over. */
        const char *sp = memchr(b, ' ', len);
        c->status = sp && (size_t)(sp - b) + 4 <= len ? atoi(sp + 1) : 0;
        c->retry_after = 0;
        c->resp.len = 0;
    } else if (len > 12 && strncasecmp(b, "retry-after:", 12) == 0) {
        char v[96];
        size_t vl = len - 12 < sizeof(v) - 1 ? len - 12 : sizeof(v) - 1;
        memcpy(v, b + 12, vl);
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
    return len;
}

static bool openai_fail(openai_call *c, upstream_error e, const char *msg)
{
    c->err = e;
    c->errmsg = msg;
    return false;
}

/* Count generated text of a choice (stream delta or final message). */
static size_t openai_text_bytes(const cJSON *msg)
{
    size_t n = 0;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (cJSON_IsString(content)) n += strlen(content->valuestring);
    const cJSON *tc, *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    cJSON_ArrayForEach(tc, calls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (cJSON_IsString(a)) n += strlen(a->valuestring);
        if (cJSON_IsString(nm)) n += strlen(nm->valuestring);
    }
    return n;
}

static void openai_take_usage(openai_call *c, const cJSON *root)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (cJSON_IsNumber(pt) && cJSON_IsNumber(ct) && pt->valuedouble >= 0 && ct->valuedouble >= 0) {
        c->in_tok = (int64_t)pt->valuedouble;
        c->out_tok = (int64_t)ct->valuedouble;
        c->have_usage = true;
    }
}

/* Hand out parsed events until paused, finished, failed or out of bytes. */
static void openai_drain(openai_call *c)
{
    while (!c->paused && !c->base.finished && !c->err) {
        const char *d;
        size_t dl;
        int r = upstream_sse_next(&c->sse, &d, &dl);
        if (r == 0) break;
        if (r < 0) {
            openai_fail(c, UPSTREAM_MALFORMED, "provider stream event over 1 MiB");
            break;
        }
        if (dl == 6 && memcmp(d, "[DONE]", 6) == 0) {
            c->saw_done = true;
            continue;
        }
        if (c->saw_done) continue;   /* nothing counts after [DONE] */
        cJSON *j = cJSON_ParseWithLength(d, dl);
        if (!j || !cJSON_IsObject(j)) {
            cJSON_Delete(j);
            openai_fail(c, UPSTREAM_MALFORMED, "provider stream event is not a JSON object");
            break;
        }
        openai_take_usage(c, j);
        const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
        c->out_bytes += openai_text_bytes(cJSON_GetObjectItemCaseSensitive(ch, "delta"));
        cJSON_Delete(j);
        if (!c->base.cb.on_event) continue;
        bool more = c->base.cb.on_event(&c->base, d, dl, c->base.arg);
        if (c->base.finished) break;     /* cancelled from on_event */
        if (!more) c->paused = true;
    }
}

static size_t openai_on_write(char *p, size_t size, size_t n, void *ud)
{
    openai_call *c = ud;
    size_t len = size * n;
    if (c->base.finished || c->err) return 0;
    if (!c->base.stream || c->status < 200 || c->status >= 300) {
        if (c->resp.len + len > UPSTREAM_MAX_BODY) {
            openai_fail(c, UPSTREAM_MALFORMED, "provider body over 8 MiB");
            return 0;
        }
        buf_append(&c->resp, p, len);
        return len;
    }
    if (c->paused) return CURL_WRITEFUNC_PAUSE;   /* curl keeps these bytes */
    upstream_sse_feed(&c->sse, p, len);
    c->busy++;
    openai_drain(c);
    c->busy--;
    if (c->base.finished || c->err) return 0;     /* abort; DONE follows */
    return len;
}

/* ---------------------------------------------------------------- finish */

static upstream_error openai_map_code(CURLcode code)
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

static void openai_finish(openai_call *c, CURLcode code)
{
    upstream_result r;
    memset(&r, 0, sizeof(r));
    r.status = c->status;
    r.retry_after_s = c->retry_after;
    if (c->status) upstream_note_reachable(c->base.prov);
    bool ok2xx = c->status >= 200 && c->status < 300;
    cJSON *j = NULL;

    if (c->err) {
        r.error = c->err;
        r.message = c->errmsg;
    } else if (code != CURLE_OK && !(c->status >= 300 && code != CURLE_OPERATION_TIMEDOUT)) {
        r.error = openai_map_code(code);
        if (r.error == UPSTREAM_TRUNCATED && c->status == 0) r.error = UPSTREAM_CONNECT;
        r.message = c->errbuf[0] ? c->errbuf : curl_easy_strerror(code);
    } else if (!ok2xx) {
        r.error = UPSTREAM_HTTP_STATUS;
        r.message = "provider answered with an error status";
        r.body = c->resp.data ? c->resp.data : "";
        r.body_len = c->resp.len;
    } else if (c->base.stream) {
        if (!c->saw_done) {
            r.error = UPSTREAM_TRUNCATED;
            r.message = "provider stream ended before [DONE]";
        }
    } else {
        j = cJSON_ParseWithLength(c->resp.data ? c->resp.data : "", c->resp.len);
        if (!j || !cJSON_IsObject(j)) {
            r.error = UPSTREAM_MALFORMED;
            r.message = "provider body is not a JSON object";
        } else {
            openai_take_usage(c, j);
            const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
            c->out_bytes += openai_text_bytes(cJSON_GetObjectItemCaseSensitive(ch, "message"));
            r.body = c->resp.data;
            r.body_len = c->resp.len;
        }
    }
    cJSON_Delete(j);
    if (c->have_usage) {
        r.input_tokens = c->in_tok;
        r.output_tokens = c->out_tok;
    } else {
        r.input_tokens = upstream_estimate_tokens(c->body, c->body_len);
        r.output_tokens = upstream_estimate_tokens(NULL, c->out_bytes);
        r.usage_estimated = true;
    }
    upstream_call_deliver(&c->base, &r);
    openai_release(c);
}

void openai_transfer_done(CURL *easy, CURLcode code)
{
    openai_call *c = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
    if (!c) return;
    if (c->base.finished) {            /* cancelled earlier; the abort landed */
        openai_release(c);
        return;
    }
    if (c->paused && code == CURLE_OK) {
        /* Events are still buffered: finish after the caller resumes. */
        c->transfer_done = true;
        c->done_code = code;
        return;
    }
    openai_finish(c, code);
}

/* -------------------------------------------------------- cancel / resume */

static void openai_cancel(upstream_call *base)
{
    openai_call *c = (openai_call *)base;
    upstream_result r;
    memset(&r, 0, sizeof(r));
    r.error = UPSTREAM_CANCELLED;
    r.status = c->status;
    r.message = "cancelled";
    r.input_tokens = c->have_usage ? c->in_tok : upstream_estimate_tokens(c->body, c->body_len);
    r.output_tokens = c->have_usage ? c->out_tok : upstream_estimate_tokens(NULL, c->out_bytes);
    r.usage_estimated = !c->have_usage;
    upstream_call_deliver(&c->base, &r);
    openai_release(c);
}

static void openai_resume(upstream_call *base)
{
    openai_call *c = (openai_call *)base;
    if (!c->paused || c->busy) {   /* nested inside our own frames: they go on */
        c->paused = false;
        return;
    }
    c->paused = false;
    c->busy++;
    openai_drain(c);
    if (!c->base.finished && !c->paused) {
        if (c->err) {
            /* Bad event while draining: stop the transfer and report now. */
            openai_finish(c, CURLE_OK);
        } else if (c->transfer_done) {
            openai_finish(c, c->done_code);
        } else {
            /* May redeliver held bytes synchronously through openai_on_write. */
            curl_easy_pause(c->easy, CURLPAUSE_CONT);
        }
    }
    c->busy--;
    openai_release(c);
}

/* ------------------------------------------------------------------ start */

/* Header values from config or the caller must not smuggle in new lines. */
static bool openai_header_safe(const char *v, size_t max)
{
    size_t n = 0;
    for (; v[n]; n++)
        if ((unsigned char)v[n] < 0x20 || v[n] == 0x7f || n >= max) return false;
    return true;
}

/* The streaming body: stream true, stream_options.include_usage true. */
static char *openai_stream_body(const char *body, size_t len, size_t *out_len)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(j, "stream");
    cJSON_AddBoolToObject(j, "stream", 1);
    cJSON *so = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
    if (!cJSON_IsObject(so)) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, "stream_options");
        so = cJSON_AddObjectToObject(j, "stream_options");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(so, "include_usage");
    cJSON_AddBoolToObject(so, "include_usage", 1);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (s) *out_len = strlen(s);
    return s;
}

upstream_call *openai_chat(upstream *u, const model_cfg *m, const char *body, size_t len,
                           bool stream, const char *request_id, const upstream_callbacks *cb,
                           void *arg)
{
    const provider_cfg *p = m->provider;
    if (!p->base_url) return NULL;
    openai_call *c = calloc(1, sizeof(*c));
    if (!c) abort();
    if (stream) {
        c->body = openai_stream_body(body, len, &c->body_len);
        if (!c->body) {
            free(c);
            return NULL;
        }
    } else {
        c->body = malloc(len + 1);
        if (!c->body) abort();
        memcpy(c->body, body, len);
        c->body[len] = '\0';
        c->body_len = len;
    }
    buf_init(&c->resp);
    upstream_sse_init(&c->sse, UPSTREAM_MAX_EVENT);
    c->pool = upstream_pool_get(u, p);
    c->easy = curl_easy_init();
    if (!c->easy) abort();

    size_t bl = strlen(p->base_url);
    while (bl > 0 && p->base_url[bl - 1] == '/') bl--;
    char *url = malloc(bl + sizeof("/chat/completions"));
    if (!url) abort();
    memcpy(url, p->base_url, bl);
    memcpy(url + bl, "/chat/completions", sizeof("/chat/completions"));

    c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
    c->hdrs = curl_slist_append(c->hdrs, stream ? "Accept: text/event-stream" : "Accept: application/json");
    c->hdrs = curl_slist_append(c->hdrs, "Expect:");   /* no 100-continue round trip */
    char line[600];
    if (p->api_key && p->api_key[0] && openai_header_safe(p->api_key, 512)) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", p->api_key);
        c->hdrs = curl_slist_append(c->hdrs, line);
    }
    if (request_id && request_id[0] && openai_header_safe(request_id, 128)) {
        snprintf(line, sizeof(line), "x-request-id: %s", request_id);
        c->hdrs = curl_slist_append(c->hdrs, line);
    }

    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);   /* copied by curl */
    free(url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, openai_on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, openai_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);   /* prefer an h2 stream over a new connection */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(p->timeout_ms ? p->timeout_ms : 120000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(p->connect_timeout_ms ? p->connect_timeout_ms : 5000));
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "brigade/" BRIGADE_VERSION);

    c->base.cancel = openai_cancel;
    c->base.resume = openai_resume;
    upstream_call_link(u, &c->base, m, stream, cb, arg);
    if (curl_multi_add_handle(upstream_pool_multi(c->pool), e) != CURLM_OK) {
        /* Unlink without callbacks: the caller sees NULL. */
        c->base.cb.on_done = NULL;
        upstream_call_deliver(&c->base, NULL);
        curl_easy_cleanup(e);
        curl_slist_free_all(c->hdrs);
        free(c->body);
        buf_free(&c->resp);
        upstream_sse_free(&c->sse);
        free(c);
        return NULL;
    }
    return &c->base;
}
