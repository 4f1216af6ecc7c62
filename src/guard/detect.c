/* detect.c — running a detector over a text of any length in overlapping
 * windows, and the small helpers every detector shares (detect.h). */
#include "guard/detect.h"

#include <stdlib.h>
#include <string.h>

const char *guard_channel_name(guard_channel ch)
{
    return ch == GUARD_CHANNEL_TOOL ? "tool" : "user";
}

int guard_channel_parse(const char *s, guard_channel *ch)
{
    if (s && strcmp(s, "user") == 0) { *ch = GUARD_CHANNEL_USER; return 0; }
    if (s && strcmp(s, "tool") == 0) { *ch = GUARD_CHANNEL_TOOL; return 0; }
    return -1;
}

void guard_detection_label(guard_detection *out, const char *label)
{
    for (size_t i = 0; i < out->n_labels; i++)
        if (strcmp(out->labels[i], label) == 0) return;
    if (out->n_labels < GUARD_LABELS_MAX) out->labels[out->n_labels++] = label;
}

void guard_detection_span(guard_detection *out, size_t start, size_t end, const char *label)
{
    for (size_t i = 0; i < out->n_spans; i++)   /* the same span seen twice (window overlap) */
        if (out->spans[i].start == start && out->spans[i].end == end &&
            strcmp(out->spans[i].label, label) == 0)
            return;
    if (out->n_spans == GUARD_SPANS_MAX) { out->more_spans = true; return; }
    out->spans[out->n_spans++] = (guard_text_span){start, end, label};
}

/* Move `end` back so that a window never cuts a UTF-8 character: back over
 * at most 3 continuation bytes. */
static size_t detect_char_boundary(const char *text, size_t len, size_t end)
{
    if (end >= len) return len;
    size_t e = end;
    for (int k = 0; k < 3 && e > 0 && ((unsigned char)text[e] & 0xC0) == 0x80; k++) e--;
    return e > 0 ? e : end;
}

void guard_detect_scan(const guard_detector *d, const char *text, size_t len, guard_channel ch,
                       guard_detection *out)
{
    memset(out, 0, sizeof *out);
    if (d->whole_text || len <= GUARD_WINDOW) {
        d->scan(d, text, len, ch, out);
        out->windows = 1;
        return;
    }
    size_t start = 0;
    for (;;) {
        size_t end = detect_char_boundary(text, len, start + GUARD_WINDOW);
        guard_detection w;
        memset(&w, 0, sizeof w);
        d->scan(d, text + start, end - start, ch, &w);
        out->windows++;
        if (w.score > out->score) out->score = w.score;
        out->failed |= w.failed;
        out->more_spans |= w.more_spans;
        for (size_t i = 0; i < w.n_labels; i++) guard_detection_label(out, w.labels[i]);
        for (size_t i = 0; i < w.n_spans; i++)
            guard_detection_span(out, start + w.spans[i].start, start + w.spans[i].end,
                                 w.spans[i].label);
        if (end >= len) break;
        start = detect_char_boundary(text, len, end - GUARD_OVERLAP);
    }
}

void guard_detector_free(guard_detector *d)
{
    if (d && d->destroy) d->destroy(d);
}
