/* fuzz_chat_request.c — libFuzzer target for JSON request parsing: untrusted
 * bytes through the gateway's chat-completions check and rewrite, on the
 * embedded-default configuration. Any crash, leak or sanitizer report is a
 * finding; a valid result must re-parse as JSON. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#include "api/chat_request.h"

static brigade_config fuzz_cfg;
static int fuzz_ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_ready) {
        config_defaults(&fuzz_cfg);
        fuzz_ready = 1;
    }
    chat_request r;
    chat_request_error err;
    if (chat_request_parse((const char *)data, size, &fuzz_cfg, &r, &err)) {
        cJSON *again = cJSON_ParseWithLength(r.upstream_body, r.upstream_body_len);
        if (!again || !r.model) abort();   /* we must only ever send valid JSON upstream */
        cJSON_Delete(again);
        chat_request_free(&r);
    } else if (err.status != 400 && err.status != 404) {
        abort();
    }
    return 0;
}
