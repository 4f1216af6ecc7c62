/* detect.h — the one interface every injection detector has: a text and
 * the channel it came in on give a score, labels and spans of the text.
 *
 * Detectors (patterns.h, classifier.h, remote.h) are objects with a scan
 * function; guard_detect_scan() runs one over any length of text in
 * overlapping windows, so nothing is truncated and a match that straddles
 * a window boundary is still seen whole by one window (the overlap is
 * longer than any rule's longest match, patterns.h). The result of a long
 * text is the maximum score over windows, the union of labels and the
 * spans, shifted to the whole text's offsets.
 *
 * Spans and labels are bounded (GUARD_SPANS_MAX, GUARD_LABELS_MAX); a
 * detection that found more says so (`more_spans`). Labels are static
 * strings owned by the detector (rule labels live as long as the rules). */
#ifndef BRIGADE_GUARD_DETECT_H
#define BRIGADE_GUARD_DETECT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum guard_channel {
    GUARD_CHANNEL_USER = 0,   /* what a person typed */
    GUARD_CHANNEL_TOOL = 1,   /* a tool's output, fetched content: untrusted data */
} guard_channel;

const char *guard_channel_name(guard_channel ch);          /* "user", "tool" */
int         guard_channel_parse(const char *s, guard_channel *ch);   /* 0 or -1 */

#define GUARD_SPANS_MAX  16
#define GUARD_LABELS_MAX 12

/* Windows: GUARD_WINDOW bytes, each starting GUARD_WINDOW - GUARD_OVERLAP
 * after the last (cut on UTF-8 character boundaries). */
#define GUARD_WINDOW  4096
#define GUARD_OVERLAP 1024

typedef struct guard_text_span {
    size_t      start, end;   /* byte offsets into the scanned text */
    const char *label;
} guard_text_span;

typedef struct guard_detection {
    double          score;                    /* 0 (clean) .. 1 (attack) */
    const char     *labels[GUARD_LABELS_MAX];
    size_t          n_labels;
    guard_text_span spans[GUARD_SPANS_MAX];
    size_t          n_spans;
    bool            more_spans;               /* some spans did not fit */
    size_t          windows;                  /* how many windows were scanned */
    bool            failed;                   /* the detector could not judge (remote down) */
} guard_detection;

typedef struct guard_detector guard_detector;
struct guard_detector {
    const char *name;                          /* "patterns", "classifier", "remote" */
    /* Scan text[0..len) (len <= GUARD_WINDOW when called by guard_detect_scan,
     * or any length for a detector with whole_text) into `out` (zeroed by
     * the caller). Must not fail on any bytes. */
    void (*scan)(const guard_detector *d, const char *text, size_t len, guard_channel ch,
                 guard_detection *out);
    void (*destroy)(guard_detector *d);
    bool  whole_text;                          /* does its own windowing (remote) */
    void *impl;
};

/* Run `d` over text[0..len) in windows; `out` is filled (zeroed first). */
void guard_detect_scan(const guard_detector *d, const char *text, size_t len, guard_channel ch,
                       guard_detection *out);

void guard_detector_free(guard_detector *d);

/* Helpers for detectors: add a label once; add a span (or set more_spans). */
void guard_detection_label(guard_detection *out, const char *label);
void guard_detection_span(guard_detection *out, size_t start, size_t end, const char *label);

#endif
