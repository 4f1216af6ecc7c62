/* fuzz_anthropic.c — libFuzzer target for the OpenAI ⇄ Anthropic
 * translation (src/upstream/providers/anthropic_translate.c): what a provider or a
 * client sends us goes through it.
 *
 * The first byte picks the direction: an Anthropic stream (the rest cut
 * into events at 0x1e bytes, each fed to anthropic_stream_event), a whole
 * Anthropic response, or an OpenAI request. What is checked:
 *   - no sanitizer report, whatever the bytes;
 *   - every chunk emitted, every translated body and request is valid JSON
 *     (what we hand on must parse, whatever we were given);
 *   - once an event says DONE, later events say DONE too and emit nothing;
 *   - an error or malformed event always comes with a message. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/providers/anthropic_translate.h"

static size_t emitted;

static void check_json(const char *s, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(s, len);
    if (!j || !cJSON_IsObject(j)) abort();
    cJSON_Delete(j);
}

static void on_chunk(void *ctx, const char *json, size_t len)
{
    (void)ctx;
    emitted++;
    check_json(json, len);
}

static void fuzz_stream(const uint8_t *d, size_t n)
{
    anthropic_stream s;
    anthropic_stream_init(&s, 1700000000);
    size_t at = 0;
    bool done = false;
    while (at <= n) {
        const uint8_t *sep = memchr(d + at, 0x1e, n - at);
        size_t len = sep ? (size_t)(sep - (d + at)) : n - at;
        size_t before = emitted;
        anthropic_ev ev = anthropic_stream_event(&s, (const char *)d + at, len, on_chunk, NULL);
        if (done && (ev != ANTHROPIC_EV_DONE || emitted != before)) abort();
        if (ev == ANTHROPIC_EV_DONE) done = true;
        if ((ev == ANTHROPIC_EV_ERROR || ev == ANTHROPIC_EV_MALFORMED) && !s.err_message[0]) abort();
        if (ev == ANTHROPIC_EV_ERROR || ev == ANTHROPIC_EV_MALFORMED) break;   /* the provider stops there */
        if (!sep) break;
        at += len + 1;
    }
    anthropic_stream_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0] % 3;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    if (mode == 0) {
        fuzz_stream(data + 1, n);
    } else if (mode == 1) {
        anthropic_usage u;
        const char *err = NULL;
        int st = 0;
        char *s = anthropic_response_to_openai(p, n, 1, &u, &err, &st);
        if (s) {
            check_json(s, strlen(s));
            free(s);
        } else if (!err) {
            abort();
        }
    } else {
        const char *err = NULL;
        size_t len = 0;
        char *s = anthropic_request_from_openai(p, n, 64, (data[0] & 4) != 0, &len, &err);
        if (s) {
            if (len != strlen(s)) abort();
            check_json(s, len);
            free(s);
        } else if (!err) {
            abort();
        }
    }
    return 0;
}
