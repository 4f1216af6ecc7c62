/* fuzz_chat_request.c — libFuzzer target for JSON request parsing: untrusted
 * bytes through the gateway's chat-completions check and rewrite, on the
 * embedded-default configuration (every other input with mock-large known
 * upstream by another name, so that both forwarding paths run). Any crash,
 * leak or sanitizer report is a finding; so is an accepted body whose
 * forwarded bytes a provider would read otherwise than they were governed
 * (tests/unit/api/forwarded_view.h: last key wins, Go's case folding —
 * model, stream, n, output caps, unmetered fields), and an accepted body
 * that is not valid JSON. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/chat_request.h"
#include "forwarded_view.h"

static brigade_config fuzz_cfg;
static int fuzz_ready;
static char *fuzz_large_name;
static unsigned fuzz_round;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_ready) {
        config_defaults(&fuzz_cfg);
        fuzz_large_name = (char *)config_find_model(&fuzz_cfg, "mock-large")->upstream_model;
        fuzz_ready = 1;
    }
    model_cfg *large = (model_cfg *)config_find_model(&fuzz_cfg, "mock-large");
    large->upstream_model = (fuzz_round++ & 1) ? "provider-large" : fuzz_large_name;
    chat_request r;
    chat_request_error err;
    if (chat_request_parse((const char *)data, size, &fuzz_cfg, &r, &err)) {
        cJSON *again = cJSON_ParseWithLength(r.upstream_body, r.upstream_body_len);
        if (!again || !r.model) abort();   /* we must only ever send valid JSON upstream */
        cJSON_Delete(again);
        char why[256];
        if (!fv_check_governed(r.upstream_body, r.upstream_body_len, r.model->upstream_model,
                               r.stream, r.choices, r.max_output_tokens, why, sizeof why)) {
            fprintf(stderr, "forwarded body differs from the governed one: %s\n", why);
            abort();
        }
        chat_request_free(&r);
    } else if (err.status != 400 && err.status != 404) {
        abort();
    }
    return 0;
}
