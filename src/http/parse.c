/* parse.c — request framing: llhttp callbacks, every request limit, and
 * the request object they fill (headers, target, body, request id).
 *
 * Nothing here touches a socket, so the fuzzer drives exactly the code the
 * server runs (http_parser_feed). Header names and values arrive in pieces
 * that may straddle reads; they are collected into one scratch buffer as
 * offsets and only turned into pointers, in the request arena, once the
 * header block is complete. Parsing pauses after each complete request so
 * pipelined requests are answered strictly one after another.
 */
#include "http/http_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/ids.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define HTTP_ARENA_BLOCK 4096

void http_limits_apply_defaults(http_limits *l)
{
    if (!l->max_header_bytes)  l->max_header_bytes = 16 * 1024;
    if (!l->max_headers)       l->max_headers = 64;
    if (!l->max_url_bytes)     l->max_url_bytes = 8 * 1024;
    if (!l->max_body_bytes)    l->max_body_bytes = 1024 * 1024;
    if (!l->header_timeout_ms) l->header_timeout_ms = 10000;
    if (!l->body_timeout_ms)   l->body_timeout_ms = 30000;
    if (!l->idle_timeout_ms)   l->idle_timeout_ms = 60000;
    if (!l->shutdown_grace_ms) l->shutdown_grace_ms = 10000;
    if (!l->stream_high_water) l->stream_high_water = 256 * 1024;
    if (!l->max_connections)   l->max_connections = 10000;
}

/* ---------------- request objects ---------------- */

http_request *http_request_alloc(void)
{
    http_request_full *f = xcalloc(1, sizeof(*f));
    f->pub.priv = &f->priv;
    arena_init(&f->pub.arena, HTTP_ARENA_BLOCK);
    return &f->pub;
}

void http_request_recycle(http_request *req)
{
    http_request_full *f = (http_request_full *)req;
    arena a = req->arena;
    arena_reset(&a);
    a.total = 0;
    memset(f, 0, sizeof(*f));
    f->pub.arena = a;
    f->pub.priv = &f->priv;
}

void http_request_destroy(http_request *req)
{
    if (!req) return;
    arena_free(&req->arena);
    free(req);
}

/* ---------------- helpers ---------------- */

static int parse_fail(http_parser *p, int status, const char *type, const char *code,
                      const char *msg)
{
    if (!p->err_status) {
        p->err_status = status;
        p->err_type = type;
        p->err_code = code;
        p->err_msg = msg;
    }
    return -1;   /* llhttp: HPE_USER, parsing stops */
}

static int too_large_headers(http_parser *p)
{
    return parse_fail(p, 431, "request_too_large", "headers_too_large",
                      "request header block is too large");
}

static void scratch_put(http_parser *p, const char *at, size_t len)
{
    buf_append(&p->scratch, at, len);
}

static void scratch_nul(http_parser *p)
{
    buf_append(&p->scratch, "", 1);
}

static inline char lower_ascii(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static http_parser *P(llhttp_t *ll) { return (http_parser *)ll->data; }

/* ---------------- llhttp callbacks ---------------- */

static int cb_message_begin(llhttp_t *ll)
{
    http_parser *p = P(ll);
    p->scratch.len = 0;
    p->n_refs = 0;
    p->url_len = 0;
    p->header_bytes = 0;
    p->body_cap = 0;
    p->url_done = false;
    p->value_open = false;
    p->name_open = false;
    p->headers_done = false;
    p->expect_continue = false;
    p->in_message = true;
    if (!p->req) p->req = p->new_request(p->ctx);
    return 0;
}

static int cb_url(llhttp_t *ll, const char *at, size_t len)
{
    http_parser *p = P(ll);
    p->url_len += len;
    if (p->url_len > p->limits->max_url_bytes)
        return parse_fail(p, 414, "invalid_request_error", "uri_too_long",
                          "request target is too long");
    scratch_put(p, at, len);
    return 0;
}

static int cb_url_complete(llhttp_t *ll)
{
    http_parser *p = P(ll);
    if (!p->url_done) {
        scratch_nul(p);
        p->url_done = true;
    }
    return 0;
}

static int cb_header_field(llhttp_t *ll, const char *at, size_t len)
{
    http_parser *p = P(ll);
    p->header_bytes += len;
    if (p->header_bytes > p->limits->max_header_bytes) return too_large_headers(p);
    if (p->headers_done) return 0;                 /* trailer: counted, not kept */
    if (!p->url_done) cb_url_complete(ll);
    if (p->value_open) {                           /* previous value had no complete cb */
        p->refs[p->n_refs - 1].val_len = (uint32_t)(p->scratch.len - p->refs[p->n_refs - 1].val_off);
        scratch_nul(p);
        p->value_open = false;
    }
    if (!p->name_open) {
        p->name_start = p->scratch.len;
        p->name_open = true;
    }
    /* Lower-case while copying: lookups then are plain strcmp. */
    buf_reserve(&p->scratch, len);
    char *dst = p->scratch.data + p->scratch.len;
    for (size_t i = 0; i < len; i++) dst[i] = lower_ascii(at[i]);
    p->scratch.len += len;
    return 0;
}

static int cb_header_field_complete(llhttp_t *ll)
{
    http_parser *p = P(ll);
    if (p->headers_done) return 0;
    if (p->n_refs >= p->limits->max_headers)
        return parse_fail(p, 431, "request_too_large", "too_many_headers",
                          "too many request headers");
    if (p->n_refs == p->cap_refs) {
        size_t cap = p->cap_refs ? p->cap_refs * 2 : 16;
        if (cap > p->limits->max_headers) cap = p->limits->max_headers;
        http_hdr_ref *r = xrealloc(p->refs, cap * sizeof(*r));
        p->refs = r;
        p->cap_refs = cap;
    }
    if (!p->name_open) {                           /* cannot happen: empty names are rejected */
        if (!p->url_done) cb_url_complete(ll);
        p->name_start = p->scratch.len;
    }
    size_t start = p->name_start, end = p->scratch.len;
    p->name_open = false;
    scratch_nul(p);
    http_hdr_ref *r = &p->refs[p->n_refs++];
    r->name_off = (uint32_t)start;
    r->name_len = (uint32_t)(end - start);
    r->val_off = (uint32_t)p->scratch.len;
    r->val_len = 0;
    p->value_open = true;
    p->header_bytes += 4;                          /* ": " and CRLF */
    return 0;
}

static int cb_header_value(llhttp_t *ll, const char *at, size_t len)
{
    http_parser *p = P(ll);
    p->header_bytes += len;
    if (p->header_bytes > p->limits->max_header_bytes) return too_large_headers(p);
    if (p->headers_done || !p->value_open) return 0;
    scratch_put(p, at, len);
    return 0;
}

static int cb_header_value_complete(llhttp_t *ll)
{
    http_parser *p = P(ll);
    if (p->headers_done || !p->value_open) return 0;
    http_hdr_ref *r = &p->refs[p->n_refs - 1];
    r->val_len = (uint32_t)(p->scratch.len - r->val_off);
    scratch_nul(p);
    p->value_open = false;
    return 0;
}

static bool ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen) return false;
    for (size_t i = 0; i < alen; i++)
        if (lower_ascii(a[i]) != b[i]) return false;
    return true;
}

bool http_request_id_valid(const char *s, size_t len)
{
    if (len < 1 || len > 64) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Request ids are generated per request on the hot path: draw the random
 * bytes from the kernel in batches rather than one getrandom(2) each. */
static void request_id_generate(char out[33])
{
    static __thread unsigned char pool[1024];
    static __thread size_t pos = sizeof pool;
    if (pos + 16 > sizeof pool) {
        ids_random_bytes(pool, sizeof pool);
        pos = 0;
    }
    ids_hex(out, pool + pos, 16);
    memset(pool + pos, 0, 16);          /* never hand out the same bytes twice */
    pos += 16;
}

static int cb_headers_complete(llhttp_t *ll)
{
    http_parser *p = P(ll);
    http_request *req = p->req;
    struct http_request_priv *pv = req->priv;
    if (!p->url_done) cb_url_complete(ll);
    if (p->value_open) cb_header_value_complete(ll);
    p->headers_done = true;

    /* One copy of the whole header block into the arena; pointers into it. */
    char *blk = arena_alloc(&req->arena, p->scratch.len ? p->scratch.len : 1);
    memcpy(blk, p->scratch.data, p->scratch.len);
    req->target = blk;
    const char *q = memchr(blk, '?', p->url_len);
    if (q) {
        req->path = arena_strndup(&req->arena, blk, (size_t)(q - blk));
        req->query = q + 1;
    } else {
        req->path = blk;
        req->query = "";
    }
    req->headers = p->n_refs ? arena_alloc(&req->arena, p->n_refs * sizeof(http_header)) : NULL;
    req->n_headers = p->n_refs;
    const char *req_id = NULL;
    size_t req_id_len = 0;
    for (size_t i = 0; i < p->n_refs; i++) {
        http_hdr_ref *r = &p->refs[i];
        char *v = blk + r->val_off;
        size_t vl = r->val_len;
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
        while (vl && (v[0] == ' ' || v[0] == '\t')) { v++; vl--; }
        v[vl] = '\0';
        http_header *h = &req->headers[i];
        h->name = blk + r->name_off;
        h->value = v;
        h->value_len = vl;
        if (r->name_len == 12 && memcmp(h->name, "x-request-id", 12) == 0) {
            req_id = v;
            req_id_len = vl;
        } else if (r->name_len == 6 && memcmp(h->name, "expect", 6) == 0) {
            p->expect_continue = ieq(v, vl, "100-continue");
        }
    }
    req->method = llhttp_method_name((llhttp_method_t)ll->method);
    if (req_id && http_request_id_valid(req_id, req_id_len)) {
        memcpy(req->request_id, req_id, req_id_len);
        req->request_id[req_id_len] = '\0';
    } else {
        request_id_generate(req->request_id);
    }
    pv->has_id = true;
    pv->http10 = ll->http_major == 1 && ll->http_minor == 0;
    pv->head = ll->method == HTTP_HEAD;
    req->started_ns = time_mono_ns();

    bool chunked = (ll->flags & F_CHUNKED) != 0;
    bool has_len = (ll->flags & F_CONTENT_LENGTH) != 0;
    if (has_len && ll->content_length > p->limits->max_body_bytes)
        return parse_fail(p, 413, "request_too_large", "body_too_large",
                          "request body is too large");
    if (!chunked && !(has_len && ll->content_length > 0)) p->expect_continue = false;
    if (has_len && ll->content_length > 0 && !chunked) {
        /* The size is known and within the limit: allocate it once. */
        p->body_cap = (size_t)ll->content_length;
        req->body = arena_alloc(&req->arena, p->body_cap + 1);
        req->body_len = 0;
    }
    if (p->on_headers) p->on_headers(p->ctx, req);
    return 0;
}

static int cb_body(llhttp_t *ll, const char *at, size_t len)
{
    http_parser *p = P(ll);
    http_request *req = p->req;
    if (req->body_len + len > p->limits->max_body_bytes)
        return parse_fail(p, 413, "request_too_large", "body_too_large",
                          "request body is too large");
    if (req->body_len + len > p->body_cap) {
        /* Chunked: grow by doubling inside the arena (old block is abandoned
         * there and freed with the request; waste is bounded by 2x). */
        size_t cap = p->body_cap ? p->body_cap * 2 : 4096;
        while (cap < req->body_len + len) cap *= 2;
        if (cap > p->limits->max_body_bytes) cap = p->limits->max_body_bytes;
        char *nb = arena_alloc(&req->arena, cap + 1);
        if (req->body_len) memcpy(nb, req->body, req->body_len);
        req->body = nb;
        p->body_cap = cap;
    }
    memcpy(req->body + req->body_len, at, len);
    req->body_len += len;
    return 0;
}

static int cb_message_complete(llhttp_t *ll)
{
    http_parser *p = P(ll);
    http_request *req = p->req;
    if (req->body) req->body[req->body_len] = '\0';
    struct http_request_priv *pv = req->priv;
    pv->keep_alive = llhttp_should_keep_alive(ll) && !ll->upgrade;
    p->in_message = false;
    return HPE_PAUSED;
}

static llhttp_settings_t http_settings;
static pthread_once_t http_settings_once = PTHREAD_ONCE_INIT;

static void settings_init(void)
{
    llhttp_settings_init(&http_settings);
    http_settings.on_message_begin = cb_message_begin;
    http_settings.on_url = cb_url;
    http_settings.on_url_complete = cb_url_complete;
    http_settings.on_header_field = cb_header_field;
    http_settings.on_header_field_complete = cb_header_field_complete;
    http_settings.on_header_value = cb_header_value;
    http_settings.on_header_value_complete = cb_header_value_complete;
    http_settings.on_headers_complete = cb_headers_complete;
    http_settings.on_body = cb_body;
    http_settings.on_message_complete = cb_message_complete;
}

/* ---------------- driver ---------------- */

void http_parser_init(http_parser *p, const http_limits *limits,
                      http_request *(*new_request)(void *ctx),
                      void (*on_headers)(void *ctx, http_request *req), void *ctx)
{
    pthread_once(&http_settings_once, settings_init);
    memset(p, 0, sizeof(*p));
    llhttp_init(&p->ll, HTTP_REQUEST, &http_settings);
    p->ll.data = p;
    p->limits = limits;
    p->new_request = new_request;
    p->on_headers = on_headers;
    p->ctx = ctx;
    buf_init(&p->scratch);
}

void http_parser_free(http_parser *p)
{
    buf_free(&p->scratch);
    free(p->refs);
    p->refs = NULL;
    if (p->req) {
        http_request_destroy(p->req);
        p->req = NULL;
    }
}

http_parse_result http_parser_feed(http_parser *p, const char *data, size_t len,
                                   size_t *consumed)
{
    if (p->err_status) {
        *consumed = len;
        return HTTP_PARSE_ERROR;
    }
    if (p->paused) {
        llhttp_resume(&p->ll);
        p->paused = false;
    }
    enum llhttp_errno e = llhttp_execute(&p->ll, data, len);
    if (e == HPE_OK) {
        *consumed = len;
        return HTTP_PARSE_MORE;
    }
    if (e == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&p->ll);
        size_t used = (pos && pos >= data && pos <= data + len) ? (size_t)(pos - data) : len;
        *consumed = used;
        p->paused = true;
        return HTTP_PARSE_REQUEST;
    }
    *consumed = len;
    if (!p->err_status) {
        /* llhttp's own verdict: a framing error, or an upgrade we don't do. */
        p->err_status = 400;
        p->err_type = "invalid_request_error";
        p->err_code = "malformed_request";
        p->err_msg = "malformed HTTP request";
    }
    return HTTP_PARSE_ERROR;
}

http_request *http_parser_take(http_parser *p)
{
    http_request *r = p->req;
    p->req = NULL;
    return r;
}

/* ---------------- request accessors ---------------- */

const char *http_header_get(const http_request *req, const char *lname)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcmp(req->headers[i].name, lname) == 0) return req->headers[i].value;
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode one query component; -1 on a bad escape or an encoded NUL. */
static long query_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') c = ' ';
        else if (c == '%') {
            if (i + 2 >= n) return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = (char)(h * 16 + l);
            if (c == '\0') return -1;
            i += 2;
        }
        if (out) out[o] = c;
        o++;
    }
    return (long)o;
}

/* Does the encoded key equal `name` once decoded? No allocation. */
static bool query_key_eq(const char *s, size_t n, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') c = ' ';
        else if (c == '%') {
            if (i + 2 >= n) return false;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return false;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (name[j] != c || c == '\0') return false;
        j++;
    }
    return name[j] == '\0';
}

const char *http_query_get(http_request *req, const char *name)
{
    const char *q = req->query;
    if (!q || !name) return NULL;
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t plen = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', plen);
        size_t klen = eq ? (size_t)(eq - q) : plen;
        if (klen && query_key_eq(q, klen, name)) {
            const char *v = eq ? eq + 1 : q + plen;
            size_t vlen = eq ? plen - klen - 1 : 0;
            long n = query_decode(v, vlen, NULL);
            if (n < 0) return NULL;
            char *out = arena_alloc(&req->arena, (size_t)n + 1);
            query_decode(v, vlen, out);
            out[n] = '\0';
            return out;
        }
        if (!amp) break;
        q = amp + 1;
    }
    return NULL;
}
