/* fuzz_openai_scan.c — libFuzzer target for the tree-less reading of a
 * provider's OpenAI answer (src/upstream/providers/openai_scan.c), against
 * the cJSON reading it replaces.
 *
 * The first byte picks the field of the choices ("message" for a whole
 * answer, "delta" for a stream chunk); the rest is the provider's text.
 * What is checked:
 *   - no sanitizer report, whatever the bytes;
 *   - whenever openai_scan decides a text, cJSON parses it to an object and
 *     reads the same usage (both counts, and whether they were valid) and
 *     the same number of text bytes, so a provider can never make the two
 *     readers disagree about what is charged. A text cJSON refuses is never
 *     decided. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/providers/openai_scan.h"

static size_t ref_text_bytes(const cJSON *msg)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *field = (data[0] & 1) ? "delta" : "message";
    const char *t = (const char *)data + 1;
    size_t len = size - 1;
    openai_scan_result a;
    if (!openai_scan(t, len, field, &a)) return 0;
    cJSON *j = cJSON_ParseWithLength(t, len);
    if (!j || !cJSON_IsObject(j)) abort();
    bool have = false;
    int64_t in = 0, out = 0;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (cJSON_IsNumber(pt) && cJSON_IsNumber(ct) && pt->valuedouble >= 0 && ct->valuedouble >= 0 &&
        pt->valuedouble <= 1e15 && ct->valuedouble <= 1e15) {
        in = (int64_t)pt->valuedouble;
        out = (int64_t)ct->valuedouble;
        have = true;
    }
    size_t bytes = 0;
    const cJSON *ch;
    cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(j, "choices"))
        bytes += ref_text_bytes(cJSON_GetObjectItemCaseSensitive(ch, field));
    cJSON_Delete(j);
    if (have != a.have_usage || in != a.in_tok || out != a.out_tok || bytes != a.text_bytes) abort();
    return 0;
}
