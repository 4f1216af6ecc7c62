/* fuzz_responses_request.c — libFuzzer target for the Responses API reader
 * and its translation: untrusted bytes through responses_request_parse; an
 * accepted request is translated into a chat request (with its own items
 * as the history of a continued conversation too), and that request must
 * pass the gateway's chat check or be refused with 400/404 — never crash,
 * never produce invalid JSON, and what is forwarded must be what was
 * governed (forwarded_view.h). An input may hold a second part after a NUL
 * byte: a provider's answer, read whole and as a stream chunk into the
 * Response being built (without one, the request's own bytes are).
 * The passthrough rewriting too: the request for a provider's /responses
 * must be a JSON object with store false, no previous_response_id, brigade's
 * cap and the upstream name, whatever came in; the provider's answer, read
 * whole and relayed as an event, must leave brigade's id in place. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/chat_request.h"
#include "api/responses_translate.h"
#include "forwarded_view.h"

static brigade_config fuzz_cfg;
static int fuzz_ready;

static void fuzz_translate(const responses_request *r, const cJSON *history)
{
    chat_request_error err;
    size_t len = 0;
    char *chat = responses_chat_body(r, history, &len, &err);
    if (!chat) {
        if (err.status != 400) abort();
        return;
    }
    chat_request cr;
    if (chat_request_parse(chat, len, &fuzz_cfg, &cr, &err)) {
        char why[256];
        if (cr.model != r->model || cr.stream != r->stream ||
            !fv_check_governed(cr.upstream_body, cr.upstream_body_len, cr.model->upstream_model,
                               cr.stream, cr.choices, cr.max_output_tokens, why, sizeof why)) {
            fprintf(stderr, "translated request differs from the governed one\n");
            abort();
        }
        chat_request_free(&cr);
    } else if (err.status != 400 && err.status != 404) {
        abort();
    }
    free(chat);
}

static void fuzz_passthrough(const responses_request *r, const char *answer, size_t answer_len)
{
    size_t len = 0;
    char *body = responses_passthrough_body(r, r->input_items, "up", 77, &len);
    cJSON *b = cJSON_ParseWithLength(body, len);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(b, "model");
    const cJSON *cap = cJSON_GetObjectItemCaseSensitive(b, "max_output_tokens");
    if (!cJSON_IsObject(b) || !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(b, "store")) ||
        cJSON_GetObjectItemCaseSensitive(b, "previous_response_id") ||
        cJSON_GetObjectItemCaseSensitive(b, "stream") || !cJSON_IsString(model) ||
        strcmp(model->valuestring, "up") != 0 || !cJSON_IsNumber(cap) || cap->valueint != 77 ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(b, "input"))) {
        fprintf(stderr, "passthrough body is not the governed one: %s\n", body);
        abort();
    }
    cJSON_Delete(b);
    free(body);
    static const char mine[] = "resp_000000000000000000000001";
    cJSON *resp = responses_object_new(r, mine, 0);
    responses_stream s;
    responses_stream_init(&s, resp);
    buf out;
    buf_init(&out);
    responses_object_from_provider(&s, answer, answer_len);
    responses_stream_relay(&s, answer, answer_len, &out);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(resp, "id");
    char *text = cJSON_PrintUnformatted(resp);
    if (!text || !cJSON_IsString(id) || strcmp(id->valuestring, mine) != 0) abort();
    free(text);
    buf_free(&out);
    responses_stream_free(&s);
    cJSON_Delete(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_ready) {
        config_defaults(&fuzz_cfg);
        fuzz_ready = 1;
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t req_len = nul ? (size_t)(nul - data) : size;
    const char *answer = nul ? (const char *)nul + 1 : (const char *)data;
    size_t answer_len = nul ? size - req_len - 1 : size;
    responses_request r;
    chat_request_error err;
    if (!responses_request_parse((const char *)data, req_len, &fuzz_cfg, &r, &err)) {
        if (err.status != 400 && err.status != 404) abort();
        responses_request_free(&r);
        return 0;
    }
    fuzz_translate(&r, NULL);
    fuzz_translate(&r, r.input_items);
    fuzz_passthrough(&r, answer, answer_len);
    /* the answer side */
    cJSON *resp = responses_object_new(&r, "resp_000000000000000000000000", 0);
    responses_object_complete(resp, answer, answer_len);
    responses_stream s;
    responses_stream_init(&s, resp);
    buf out;
    buf_init(&out);
    responses_stream_begin(&s, &out);
    responses_stream_chunk(&s, answer, answer_len, &out);
    responses_stream_finish(&s, &out);
    responses_stream_end(&s, &out);
    cJSON *turn = responses_turn_items(&r, resp);
    char *text = cJSON_PrintUnformatted(turn);
    if (!text || !cJSON_IsArray(turn)) abort();
    free(text);
    cJSON_Delete(turn);
    buf_free(&out);
    responses_stream_free(&s);
    cJSON_Delete(resp);
    responses_request_free(&r);
    return 0;
}
