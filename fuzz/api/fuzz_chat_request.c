/* fuzz_chat_request.c — libFuzzer target for JSON request parsing: untrusted
 * bytes through the gateway's chat-completions check and rewrite, on the
 * embedded-default configuration (every other input with mock-large known
 * upstream by another name, so that both forwarding paths run). Any crash,
 * leak or sanitizer report is a finding; so is an accepted body whose
 * forwarded bytes a provider would read otherwise than they were governed
 * (tests/unit/api/forwarded_view.h: last key wins, Go's case folding —
 * model, stream, n, output caps, unmetered fields), and an accepted body
 * that is not valid JSON, and any input on which the one-pass scan
 * (chat_scan.c, tried first) and the cJSON tree path answer differently. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/chat_request.h"
#include "api/chat_scan.h"
#include <string.h>
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
    chat_request r, t;
    chat_request_error err, terr;
    /* The tree path alone, for the scan's differential check. */
    bool tree_ok = chat_request_parse_tree_path((const char *)data, size, &fuzz_cfg, &t, &terr);
    bool ok = chat_request_parse((const char *)data, size, &fuzz_cfg, &r, &err);
    if (ok != tree_ok) abort();
    if (ok && (r.model != t.model || r.stream != t.stream || r.client_wants_usage != t.client_wants_usage ||
               r.max_output_tokens != t.max_output_tokens || r.choices != t.choices ||
               r.upstream_body_len != t.upstream_body_len ||
               memcmp(r.upstream_body, t.upstream_body, r.upstream_body_len) != 0))
        abort();
    if (!ok && (err.status != terr.status || strcmp(err.code, terr.code) != 0 ||
                strcmp(err.param, terr.param) != 0 || strcmp(err.message, terr.message) != 0))
        abort();
    if (tree_ok) chat_request_free(&t);
    if (ok) {
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
