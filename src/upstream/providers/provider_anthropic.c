/* provider_anthropic.c — the Anthropic Messages API, for the HTTP call
 * engine (provider_http.c).
 *
 * POST {base_url}/messages with `x-api-key` and `anthropic-version`. The
 * OpenAI request is translated to Anthropic's form, and the answer back to
 * OpenAI's (anthropic_translate.c): a whole message becomes a
 * `chat.completion`; stream events become `chat.completion.chunk`s queued
 * on the call, so backpressure and cancel work exactly as for OpenAI.
 * Anthropic's `error` event inside a 200 stream, and an error object in a
 * 200 body, are reported like an error status (with the status its error
 * type stands for); HTTP 529 (overloaded) is reported as 503. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "upstream/providers/anthropic_translate.h"
#include "upstream/providers/providers.h"
#include "util/xalloc.h"

static char *anthropic_request_body(const model_cfg *m, const char *body, size_t len, bool stream,
                                    const upstream_opts *opts, size_t *out_len)
{
    (void)opts;   /* the body is translated: read whole anyway */
    const char *err = NULL;
    char *out = anthropic_request_from_openai(body, len, m->max_output_tokens, stream, out_len, &err);
    if (!out) upstream_set_error("%s", err ? err : "the request cannot be expressed for Anthropic");
    return out;
}

static struct curl_slist *anthropic_headers(const provider_cfg *p, struct curl_slist *h)
{
    char line[600];
    if (p->api_key && p->api_key[0] && upstream_header_safe(p->api_key, 512)) {
        snprintf(line, sizeof(line), "x-api-key: %s", p->api_key);
        h = curl_slist_append(h, line);
    }
    const char *v = p->anthropic_version && p->anthropic_version[0] &&
                            upstream_header_safe(p->anthropic_version, 64)
                        ? p->anthropic_version
                        : ANTHROPIC_DEFAULT_VERSION;
    snprintf(line, sizeof(line), "anthropic-version: %s", v);
    return curl_slist_append(h, line);
}

static void *anthropic_state_new(void)
{
    anthropic_stream *s = xmalloc(sizeof(*s));
    anthropic_stream_init(s, (int64_t)time(NULL));
    return s;
}

static void anthropic_state_free(void *st)
{
    anthropic_stream_free(st);
    free(st);
}

static void anthropic_emit(void *ctx, const char *json, size_t len) { phttp_emit(ctx, json, len); }

static void anthropic_take_usage(phttp_call *c, const anthropic_usage *u)
{
    c->out_bytes = u->out_bytes;
    if (!u->have) return;
    c->have_usage = true;
    c->in_tok = u->input_tokens;
    c->out_tok = u->output_tokens;
}

static phttp_ev anthropic_stream_ev(phttp_call *c, const char *d, size_t dl)
{
    anthropic_stream *s = c->state;
    anthropic_ev ev = anthropic_stream_event(s, d, dl, anthropic_emit, c);
    anthropic_take_usage(c, &s->usage);
    switch (ev) {
    case ANTHROPIC_EV_OK:
        return PHTTP_QUEUED;
    case ANTHROPIC_EV_DONE:
        return PHTTP_END;
    case ANTHROPIC_EV_ERROR:
        /* The error event's JSON is the error body the caller sees. */
        c->resp.len = 0;
        buf_append(&c->resp, d, dl);
        buf_append(&c->resp, "", 1);
        c->resp.len--;
        c->err_status = s->err_status;
        snprintf(c->errmsg_buf, sizeof(c->errmsg_buf), "%s", s->err_message);
        phttp_fail(c, UPSTREAM_HTTP_STATUS, c->errmsg_buf);
        return PHTTP_FAIL;
    case ANTHROPIC_EV_MALFORMED:
    default:
        snprintf(c->errmsg_buf, sizeof(c->errmsg_buf), "%s", s->err_message);
        phttp_fail(c, UPSTREAM_MALFORMED, c->errmsg_buf);
        return PHTTP_FAIL;
    }
}

static bool anthropic_body(phttp_call *c)
{
    anthropic_usage u;
    const char *err = NULL;
    int st = 0;
    char *out = anthropic_response_to_openai(c->resp.data, c->resp.len, (int64_t)time(NULL), &u,
                                             &err, &st);
    if (!out) {
        if (st) {
            c->err_status = st;
            return phttp_fail(c, UPSTREAM_HTTP_STATUS, "provider answered with an error object");
        }
        return phttp_fail(c, UPSTREAM_MALFORMED, err ? err : "provider body is not a valid message");
    }
    anthropic_take_usage(c, &u);
    c->out_body = out;
    c->out_body_len = strlen(out);
    return true;
}

static int anthropic_map_status(int status)
{
    /* 529: Anthropic is overloaded — transient, like a 503 anywhere else. */
    return status == 529 ? 503 : status;
}

const provider_proto provider_anthropic_proto = {
    .path = "/messages",
    .request_body = anthropic_request_body,
    .headers = anthropic_headers,
    .state_new = anthropic_state_new,
    .state_free = anthropic_state_free,
    .stream_event = anthropic_stream_ev,
    .body = anthropic_body,
    .map_status = anthropic_map_status,
};
