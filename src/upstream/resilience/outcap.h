/* outcap.h — the reserved output tokens as a hard cap on a streamed answer.
 *
 * A call's reservation is priced on its output cap (max_tokens, or the
 * model's max_output_tokens). A provider that ignores the cap would answer
 * — and be charged — past the reservation, so dispatch.c counts the
 * tokens of a stream as they pass and cuts it when the next event would
 * go past the cap, ending it as the provider would have at the cap: a
 * finish chunk with finish_reason "length" and a usage chunk (chat form),
 * or a `response.incomplete` with reason max_output_tokens (a passed-
 * through Responses stream). The client sees a well-formed end; the
 * charge is what was streamed.
 *
 * Counting "as streamed": each event that carries generated text (a
 * choice's delta content, refusal, reasoning or tool-call arguments; a
 * Responses `*.delta` event) counts one token per choice. Providers stream
 * at least one token per such event, so this never counts more than the
 * provider does: an honest stream is never cut. A provider that packs
 * several tokens into one event may get past the cap by the stream count;
 * its reported usage is then clamped to the cap at the end (dispatch.c).
 *
 * Pure: no I/O, no clock. */
#ifndef BRIGADE_UPSTREAM_OUTCAP_H
#define BRIGADE_UPSTREAM_OUTCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upstream/providers/openai_scan.h"
#include "util/buf.h"

#define UPSTREAM_OUTCAP_MAX_CHOICES 128

typedef struct upstream_outcap {
    uint64_t      cap;            /* output tokens reserved; 0: no cap */
    uint64_t      streamed;       /* tokens passed on so far */
    bool          responses;      /* Responses events, not chat chunks */
    /* chat form: what the synthesized end chunks repeat */
    char          id[96];
    char          model[160];
    int64_t       created;
    uint32_t      choices;        /* highest choice index seen + 1 */
    /* Responses form: the output items so far (a cJSON array), for the
     * Response of the synthesized response.incomplete, and the text their
     * deltas added since (outcap.c: appended here, joined at the end) */
    struct cJSON *items;
    struct outcap_text *texts;
    size_t        n_texts;
    size_t        kept;           /* bytes in texts, at most OUTCAP_KEEP_MAX */
} upstream_outcap;

void upstream_outcap_init(upstream_outcap *oc, uint64_t cap, bool responses);
/* Forget what an attempt's stream told (a retry starts over). */
void upstream_outcap_reset(upstream_outcap *oc);
void upstream_outcap_free(upstream_outcap *oc);

/* Whether upstream_outcap_tokens reads every chunk of this stream (a cap
 * on a chat stream): then a reading made before it is worth handing in. */
bool upstream_outcap_reads_chunks(const upstream_outcap *oc);
/* The tokens one event carries, as streamed (0 for an event without
 * generated text). Does not count them: see upstream_outcap_pass. facts:
 * the provider's tree-less reading of these very bytes, or NULL. */
uint64_t upstream_outcap_tokens(upstream_outcap *oc, const char *json, size_t len,
                                const struct openai_scan_result *facts);
/* May an event of `tokens` tokens pass? If so they are counted (true);
 * false: it would go past the cap — the stream is to be cut here. */
bool     upstream_outcap_pass(upstream_outcap *oc, uint64_t tokens);

/* The events that end a cut stream, each a JSON payload appended to out
 * and followed by a NUL (so `out` holds them back to back). Returns how
 * many. input_tokens: the usage to report with the streamed output. */
size_t   upstream_outcap_end_events(const upstream_outcap *oc, int64_t input_tokens, buf *out);

#endif
