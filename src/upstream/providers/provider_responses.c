/* provider_responses.c — the OpenAI Responses protocol, for the HTTP call
 * engine (provider_http.c): what a provider with `responses: passthrough`
 * gets for POST /v1/responses (upstream_opts.responses).
 *
 * POST {base_url}/responses with `Authorization: Bearer`. The body is the
 * Responses request the gateway already rewrote (api/responses_passthrough.c:
 * store false, no previous_response_id, the output cap); here only
 * `stream` is set. A non-stream answer must be a Response object; usage is
 * its usage.input_tokens / output_tokens. Stream events are passed on as
 * they are (the gateway rewrites ids and sequence numbers); usage comes from
 * the terminal response.completed / response.incomplete event, which also
 * ends the stream (the Responses stream has no [DONE]). An `error` or
 * response.failed event is a failed call. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/providers/providers.h"
#include "util/xalloc.h"

/* usage of a Response object (a count past 1e15 is garbage, and past
 * int64's range its cast undefined) */
static void responses_take_usage(phttp_call *c, const cJSON *response)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(response, "usage");
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(u, "input_tokens");
    const cJSON *ot = cJSON_GetObjectItemCaseSensitive(u, "output_tokens");
    if (cJSON_IsNumber(it) && cJSON_IsNumber(ot) && it->valuedouble >= 0 && ot->valuedouble >= 0 &&
        it->valuedouble <= 1e15 && ot->valuedouble <= 1e15) {
        c->in_tok = (int64_t)it->valuedouble;
        c->out_tok = (int64_t)ot->valuedouble;
        c->have_usage = true;
    }
}

static phttp_ev responses_stream_event(phttp_call *c, const char *d, size_t dl)
{
    if (dl == 6 && memcmp(d, "[DONE]", 6) == 0) return PHTTP_END;
    cJSON *j = cJSON_ParseWithLength(d, dl);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsObject(j) || !cJSON_IsString(type)) {
        cJSON_Delete(j);
        phttp_fail(c, UPSTREAM_MALFORMED, "provider stream event is not a Responses event");
        return PHTTP_FAIL;
    }
    const char *t = type->valuestring;
    if (!strcmp(t, "error") || !strcmp(t, "response.failed")) {
        cJSON_Delete(j);
        phttp_fail(c, UPSTREAM_MALFORMED, "provider stream reported a failure");
        return PHTTP_FAIL;
    }
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(j, "delta");
    if (cJSON_IsString(delta)) c->out_bytes += strlen(delta->valuestring);
    if (!strcmp(t, "response.completed") || !strcmp(t, "response.incomplete")) {
        /* the last event: passed on (queued), then the end */
        responses_take_usage(c, cJSON_GetObjectItemCaseSensitive(j, "response"));
        cJSON_Delete(j);
        phttp_emit(c, d, dl);
        return PHTTP_END;
    }
    cJSON_Delete(j);
    return PHTTP_PASS;
}

static bool responses_body(phttp_call *c)
{
    cJSON *j = cJSON_ParseWithLength(c->resp.data, c->resp.len);
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(j, "object");
    if (!cJSON_IsObject(j) || !cJSON_IsString(obj) || strcmp(obj->valuestring, "response") != 0 ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "output"))) {
        cJSON_Delete(j);
        return phttp_fail(c, UPSTREAM_MALFORMED, "provider body is not a Response object");
    }
    responses_take_usage(c, j);
    cJSON_Delete(j);
    return true;
}

/* The body with "stream" as asked (the rest was rewritten by the gateway). */
static char *responses_request_body(const model_cfg *m, const char *body, size_t len, bool stream,
                                    const upstream_opts *opts, size_t *out_len)
{
    (void)opts;   /* the body is translated: read whole anyway */
    (void)m;
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(j, "stream");
    cJSON_AddBoolToObject(j, "stream", stream);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (s) *out_len = strlen(s);
    return s;
}

static struct curl_slist *responses_headers(const provider_cfg *p, struct curl_slist *h)
{
    return provider_openai_proto.headers(p, h);
}

const provider_proto provider_openai_responses_proto = {
    .path = "/responses",
    .request_body = responses_request_body,
    .headers = responses_headers,
    .stream_event = responses_stream_event,
    .body = responses_body,
};
