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
 *     decided;
 *   - a request body's top-level "stream" and "stream_options" as
 *     openai_scan_members reads them (first value, number of copies) agree
 *     with cJSON's, so the streamed body brigade forwards always asks for
 *     usage;
 *   - of a stream chunk, the resilience layer's facts agree too: the output
 *     tokens counted against the reserved cap, the choices seen, and whether
 *     the chunk is still "quiet" (a failure after it may be retried);
 *   - of a stream chunk, an agent run's reading (openai_scan_delta: the
 *     first choice's content and tool call fragments, decoded) is cJSON's
 *     whenever the scan decides it, so a provider cannot make a run see
 *     other text or other tool calls than cJSON would. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openai_scan_ref.h"   /* tests/unit/upstream: the cJSON reading */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *field = (data[0] & 1) ? "delta" : "message";
    const char *t = (const char *)data + 1;
    size_t len = size - 1;
    static const char *const names[2] = {"stream", "stream_options"};
    openai_scan_member m[2];
    if (openai_scan_members(t, len, names, m) && !ref_members_agree(t, len, names, m)) abort();
    if (ref_delta_agrees(t, len) < 0) abort();
    openai_scan_result a, b;
    if (!openai_scan(t, len, field, &a)) return 0;
    if (ref_read(t, len, field, &b) != 0) abort();   /* decided, so cJSON must read an object */
    if (a.have_usage != b.have_usage || a.in_tok != b.in_tok || a.out_tok != b.out_tok ||
        a.text_bytes != b.text_bytes)
        abort();
    if (a.usage_member != b.usage_member || a.type_member != b.type_member ||
        a.text_choices != b.text_choices || a.choice_slots != b.choice_slots ||
        (!a.type_member && a.quiet != b.quiet))
        abort();
    if (!strcmp(field, "delta") && !ref_ids_agree(t, len, &a)) abort();
    return 0;
}
