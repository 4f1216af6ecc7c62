/* fuzz_guard_scan.c — the injection detectors' text path: the normaliser
 * (both readings), the pattern rules with base64 rescanning, the windows,
 * and the classifier's features, on any bytes. Checks that nothing
 * crashes, that every span lies inside the input, that a normalised text
 * is never longer than its input and maps back inside it. The first byte
 * picks the channel. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guard/classifier.h"
#include "guard/detect.h"
#include "guard/normalize.h"
#include "guard/patterns.h"

static guard_detector *fuzz_patterns;

/* A small rule set of the shipped file's shapes (bounded gaps,
 * alternations, anchors), so the target does not depend on a path. */
static const char fuzz_rules[] =
    "ov instruction_override 0.9 any \\b(ignore|disregard)\\b[^.\\n]{0,40}\\b(previous|all)\\b[^.\\n]{0,30}\\binstructions?\\b\n"
    "rh role_hijack 0.7 any (^|\\n)\\s{0,4}(system|assistant)\\s{0,2}:\n"
    "ct role_hijack 0.9 tool <\\|(im_start|im_end)\\|>\n"
    "md exfiltration 0.8 any !\\[[^\\]\\n]{0,100}\\]\\(https?://[^)\\s]{1,200}[?&][a-z]{1,30}=\n";

static void count(uint32_t h, void *ctx)
{
    (void)h;
    (*(size_t *)ctx)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_patterns) {
        char err[256];
        guard_rules *r = guard_rules_parse(fuzz_rules, strlen(fuzz_rules), "fuzz", err, sizeof err);
        if (!r) abort();
        fuzz_patterns = guard_patterns_new(r);
    }
    if (size == 0) return 0;
    guard_channel ch = data[0] & 1 ? GUARD_CHANNEL_TOOL : GUARD_CHANNEL_USER;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    for (unsigned flags = 0; flags <= GUARD_NORM_LEET; flags++) {
        guard_norm g;
        if (guard_normalize(text, len, flags, &g) != 0) abort();
        if (g.len > len || strlen(g.text) > g.len) abort();
        for (size_t i = 0; i < g.len; i++)
            if (g.origin[i] >= len) abort();
        if (g.len) {
            size_t s, e;
            guard_norm_span(&g, 0, g.len, &s, &e);
            if (s > e || e > len) abort();
        }
        guard_norm_free(&g);
    }
    guard_detection d;
    guard_detect_scan(fuzz_patterns, text, len, ch, &d);
    if (!(d.score >= 0.0 && d.score <= 1.0)) abort();
    for (size_t i = 0; i < d.n_spans; i++)
        if (d.spans[i].start > d.spans[i].end || d.spans[i].end > len) abort();
    size_t n = 0;
    if (guard_features(text, len, count, &n) != n) abort();
    return 0;
}
