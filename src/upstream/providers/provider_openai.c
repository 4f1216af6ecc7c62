/* provider_openai.c — the OpenAI chat completions protocol, for the HTTP
 * call engine (provider_http.c).
 *
 * POST {base_url}/chat/completions with `Authorization: Bearer`. The
 * internal form is OpenAI's, so nothing is translated: a non-stream body is
 * checked to be JSON and its usage read; each stream event is checked to be
 * JSON and passed on as is; usage comes from the final usage chunk, which
 * we ask for by adding stream_options.include_usage; [DONE] ends the
 * stream. An embedding model's calls go to {base_url}/embeddings instead
 * (provider_openai_embeddings_proto), passed as they are. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/providers/openai_scan.h"
#include "upstream/providers/providers.h"
#include "util/xalloc.h"

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

static void openai_take_usage(phttp_call *c, const cJSON *root)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    /* a count past 1e15 is garbage, and past int64's range its cast undefined */
    if (cJSON_IsNumber(pt) && cJSON_IsNumber(ct) && pt->valuedouble >= 0 && ct->valuedouble >= 0 &&
        pt->valuedouble <= 1e15 && ct->valuedouble <= 1e15) {
        c->in_tok = (int64_t)pt->valuedouble;
        c->out_tok = (int64_t)ct->valuedouble;
        c->have_usage = true;
    }
}

/* What openai_scan read, applied as openai_take_usage and the text count
 * below apply the cJSON reading. */
static void openai_take_scan(phttp_call *c, const openai_scan_result *r)
{
    if (r->have_usage) {
        c->in_tok = r->in_tok;
        c->out_tok = r->out_tok;
        c->have_usage = true;
    }
    c->out_bytes += r->text_bytes;
}

static phttp_ev openai_stream_event(phttp_call *c, const char *d, size_t dl)
{
    if (dl == 6 && memcmp(d, "[DONE]", 6) == 0) return PHTTP_END;
    if (openai_scan(d, dl, "delta", &c->facts)) {
        openai_take_scan(c, &c->facts);
        c->facts_valid = true;   /* handed on with the event (upstream_call_event_facts) */
        return PHTTP_PASS;
    }
    cJSON *j = cJSON_ParseWithLength(d, dl);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        phttp_fail(c, UPSTREAM_MALFORMED, "provider stream event is not a JSON object");
        return PHTTP_FAIL;
    }
    openai_take_usage(c, j);
    /* Every choice (a request with n > 1 gets several): without a usage
     * report, the charge is estimated from all the text generated. */
    const cJSON *ch;
    cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(j, "choices"))
        c->out_bytes += openai_text_bytes(cJSON_GetObjectItemCaseSensitive(ch, "delta"));
    cJSON_Delete(j);
    return PHTTP_PASS;
}

static bool openai_body(phttp_call *c)
{
    /* Most answers are decided without a tree (openai_scan.h); the rest
     * are read with cJSON, the same way. */
    openai_scan_result r;
    if (openai_scan(c->resp.data, c->resp.len, "message", &r)) {
        openai_take_scan(c, &r);
        return true;
    }
    cJSON *j = cJSON_ParseWithLength(c->resp.data, c->resp.len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return phttp_fail(c, UPSTREAM_MALFORMED, "provider body is not a JSON object");
    }
    openai_take_usage(c, j);
    const cJSON *ch;
    cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(j, "choices"))
        c->out_bytes += openai_text_bytes(cJSON_GetObjectItemCaseSensitive(ch, "message"));
    cJSON_Delete(j);
    return true;
}

/* The body as given; for streaming with stream true and
 * stream_options.include_usage true. */
static char *openai_request_body(const model_cfg *m, const char *body, size_t len, bool stream,
                                 const upstream_opts *opts, size_t *out_len)
{
    (void)m;
    static const char options[] = "\"stream_options\":{\"include_usage\":true},";
    if (!stream) {
        char *s = xmalloc(len + 1);
        memcpy(s, body, len);
        s[len] = '\0';
        *out_len = len;
        return s;
    }
    /* The common case without a tree: one "stream", true, and no
     * "stream_options" — the client's bytes with the options put right
     * after the opening brace (numbers and all else as the client wrote
     * them); brigade's own text is that case by construction
     * (upstream_opts.plain_stream). Anything else is rewritten through cJSON. */
    static const char *const names[2] = {"stream", "stream_options"};
    openai_scan_member mem[2];
    bool plain = opts && opts->plain_stream;
    if (!plain)
        plain = openai_scan_members(body, len, names, mem) && mem[0].count == 1 &&
                mem[0].value_len == 4 && memcmp(mem[0].value, "true", 4) == 0 && mem[1].count == 0;
    const char *brace = plain ? memchr(body, '{', len) : NULL;   /* the object's: only whitespace before it */
    if (brace) {
        size_t head = (size_t)(brace + 1 - body), n = len + sizeof options - 1;
        char *s = xmalloc(n + 1);
        memcpy(s, body, head);
        memcpy(s + head, options, sizeof options - 1);
        memcpy(s + head + sizeof options - 1, body + head, len - head);
        s[n] = '\0';
        *out_len = n;
        return s;
    }
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

static struct curl_slist *openai_headers(const provider_cfg *p, struct curl_slist *h)
{
    if (p->api_key && p->api_key[0] && upstream_header_safe(p->api_key, 512)) {
        char line[600];
        snprintf(line, sizeof(line), "Authorization: Bearer %s", p->api_key);
        h = curl_slist_append(h, line);
    }
    return h;
}

const provider_proto provider_openai_proto = {
    .path = "/chat/completions",
    .request_body = openai_request_body,
    .headers = openai_headers,
    .stream_event = openai_stream_event,
    .body = openai_body,
};

/* --- embeddings: POST {base_url}/embeddings --- */

/* The body as given (an embeddings call is never streamed). */
static char *openai_embeddings_request_body(const model_cfg *m, const char *body, size_t len,
                                            bool stream, const upstream_opts *opts, size_t *out_len)
{
    (void)m;
    if (stream) return NULL;
    return openai_request_body(m, body, len, false, opts, out_len);
}

/* usage.prompt_tokens is all there is to charge: an embedding generates
 * no tokens. */
static bool openai_embeddings_body(phttp_call *c)
{
    cJSON *j = cJSON_ParseWithLength(c->resp.data, c->resp.len);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    if (!cJSON_IsObject(j) || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "data"))) {
        cJSON_Delete(j);
        return phttp_fail(c, UPSTREAM_MALFORMED, "provider body is not an embeddings list");
    }
    if (cJSON_IsNumber(pt) && pt->valuedouble >= 0 && pt->valuedouble <= 1e15) {
        c->in_tok = (int64_t)pt->valuedouble;
        c->out_tok = 0;
        c->have_usage = true;
    }
    cJSON_Delete(j);
    return true;
}

const provider_proto provider_openai_embeddings_proto = {
    .path = "/embeddings",
    .request_body = openai_embeddings_request_body,
    .headers = openai_headers,
    .stream_event = openai_stream_event,
    .body = openai_embeddings_body,
};
