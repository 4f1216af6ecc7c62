/* classifier.h — the small injection classifier: hashed word and character
 * n-grams of the normalised text, and a linear model (logistic regression)
 * trained by scripts/guard-train.py on a labelled corpus.
 *
 * Features (guard_features), over the text folded by normalize.h (no
 * leetspeak reading):
 *   - each word (a run of [a-z0-9] and non-ASCII bytes): FNV-1a("w" word)
 *   - each pair of neighbouring words:  FNV-1a("b" word1 " " word2)
 *   - each 4 bytes of the text:         FNV-1a("c" 4 bytes)
 * A feature's index is its 32-bit hash masked to the model's `bits`.
 * The score of a text is
 *     sigmoid(bias[channel] + Σ weight[index] / sqrt(number of features))
 * over every occurrence (counts, scaled so that length does not decide).
 * `brigade guard features` prints the indices, so the training script
 * never re-implements them: one definition, here.
 *
 * An injection is often one sentence inside a long page, and averaged
 * over the page it would vanish; so a text is scored in pieces of
 * GUARD_CLS_PIECE bytes every GUARD_CLS_STEP bytes (on character
 * boundaries), and its score is the highest piece's. The training script
 * cuts its examples the same way.
 *
 * Weights file (examples/guard-classifier.bin), little-endian:
 *     8 bytes  "BRGDCLS1"
 *     u32      bits (10..22): the model has 2^bits weights
 *     u32      0 (reserved)
 *     f32      bias of the user channel
 *     f32      bias of the tool channel
 *     f32 × 2^bits   the weights
 * A file of any other size, magic or bits is refused. */
#ifndef BRIGADE_GUARD_CLASSIFIER_H
#define BRIGADE_GUARD_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "guard/detect.h"

#define GUARD_CLS_BITS_MIN 10
#define GUARD_CLS_BITS_MAX 22
#define GUARD_CLS_PIECE    256
#define GUARD_CLS_STEP     128

typedef struct guard_classifier guard_classifier;

guard_classifier *guard_classifier_parse(const void *data, size_t len, const char *name,
                                         char *err, size_t errlen);
guard_classifier *guard_classifier_load(const char *path, char *err, size_t errlen);
void              guard_classifier_free(guard_classifier *c);

/* The model's probability that text[0..len), as one piece, is an
 * injection. */
double guard_classifier_score(const guard_classifier *c, const char *text, size_t len,
                              guard_channel ch);

/* The highest score of the text's pieces, and where that piece is. */
double guard_classifier_scan(const guard_classifier *c, const char *text, size_t len,
                             guard_channel ch, size_t *best_start, size_t *best_end);

/* Each feature occurrence of text[0..len), as its 32-bit hash. Returns the
 * number of occurrences. */
typedef void (*guard_feature_fn)(uint32_t hash, void *ctx);
size_t guard_features(const char *text, size_t len, guard_feature_fn fn, void *ctx);

/* A detector that owns `c`: score = guard_classifier_scan's; the label
 * "injection_classifier" and the best piece's span when it is >= 0.5. */
guard_detector *guard_classifier_detector_new(guard_classifier *c);

#endif
