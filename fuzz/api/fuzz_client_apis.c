/* fuzz_client_apis.c — libFuzzer target for the client APIs' request
 * readers and answer translations: the first byte picks the reader
 * (Anthropic Messages, legacy completions, embeddings) or the translation
 * of a provider's answer (a chat.completion or a chunk into a Messages
 * answer or stream, a text_completion), the rest is the untrusted input.
 * Any crash, leak or sanitizer report is a finding; so is an accepted
 * request whose forwarded body a provider would read otherwise than it was
 * governed (forwarded_view.h, as for chat completions), or is not JSON,
 * and a translation that produces invalid JSON. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/completions.h"
#include "api/embeddings.h"
#include "api/messages.h"
#include "forwarded_view.h"

static brigade_config fuzz_cfg;
static int fuzz_ready;

static void fuzz_check_request(bool ok, const chat_request *r, const chat_request_error *err, bool governed)
{
    if (!ok) {
        if (err->status != 400 && err->status != 404) abort();
        return;
    }
    cJSON *again = cJSON_ParseWithLength(r->upstream_body, r->upstream_body_len);
    if (!again || !r->model) abort();
    cJSON_Delete(again);
    char why[256];
    if (governed && !fv_check_governed(r->upstream_body, r->upstream_body_len, r->model->upstream_model,
                                       r->stream, r->choices, r->max_output_tokens, why, sizeof why)) {
        fprintf(stderr, "forwarded body differs from the governed one: %s\n", why);
        abort();
    }
}

static void fuzz_json_out(char *out, size_t n)
{
    if (!out) return;
    cJSON *j = cJSON_ParseWithLength(out, n);
    if (!j) abort();
    cJSON_Delete(j);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_ready) {
        config_defaults(&fuzz_cfg);
        fuzz_ready = 1;
    }
    if (size < 1) return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    chat_request r;
    chat_request_error err;
    size_t n = 0;
    switch (data[0] % 6) {
    case 0: {
        bool ok = messages_request_parse(in, len, &fuzz_cfg, &r, &err);
        fuzz_check_request(ok, &r, &err, true);
        if (ok) chat_request_free(&r);
        break;
    }
    case 1: {
        bool ok = completions_request_parse(in, len, &fuzz_cfg, &r, &err);
        fuzz_check_request(ok, &r, &err, true);
        if (ok) chat_request_free(&r);
        break;
    }
    case 2: {
        /* mock-large as an embedding model for this input */
        model_cfg *m = (model_cfg *)config_find_model(&fuzz_cfg, "mock-large");
        uint32_t cap = m->max_output_tokens;
        m->embedding = true;
        m->max_output_tokens = 0;
        m->dimensions = 512;
        bool ok = embeddings_request_parse(in, len, &fuzz_cfg, &r, &err);
        fuzz_check_request(ok, &r, &err, false);
        if (ok) {
            if (r.model != m || r.stream || r.max_output_tokens) abort();
            chat_request_free(&r);
        }
        m->embedding = false;
        m->max_output_tokens = cap;
        m->dimensions = 0;
        break;
    }
    case 3:
        fuzz_json_out(messages_answer(in, len, &n), n);
        break;
    case 4:
        fuzz_json_out(completions_answer(in, len, &n), n);
        break;
    default: {
        /* a stream: the input split at newlines into chunks */
        messages_stream s;
        messages_stream_init(&s);
        buf out;
        buf_init(&out);
        size_t start = 0;
        for (size_t i = 0; i <= len; i++)
            if (i == len || in[i] == '\n') {
                messages_stream_chunk(&s, in + start, i - start, &out);
                completions_stream_chunk(true, in + start, i - start, &out);
                start = i + 1;
            }
        messages_stream_end(&s, data[0] & 8, 502, "x", &out);
        buf_free(&out);
        break;
    }
    }
    return 0;
}
