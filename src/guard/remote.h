/* remote.h — the optional remote classifier (`guard.remote`): an
 * operator's larger model (for example Prompt Guard behind an HTTP server)
 * asked over HTTP, as a detector (detect.h).
 *
 * For each piece of the text (GUARD_REMOTE_PIECE bytes, overlapping by
 * GUARD_OVERLAP, so nothing is truncated) it POSTs
 *     {"text": "...", "channel": "user" | "tool"}
 * and expects 200 with {"score": number in [0, 1]}; the text's score is the
 * highest piece's. The whole text has one deadline (`timeout_ms`). Any
 * failure — no answer in time, a status other than 200, an answer that is
 * not that JSON (at most 64 KiB read) — marks the detection `failed`, and
 * its score is 1 with fail_closed (the text is flagged, label
 * `remote_unavailable`) or 0 with fail_open.
 *
 * The call blocks: brigade makes it only where blocking is allowed — a
 * user's message, checked on the thread pool before its run starts — and
 * in `brigade guard`. Tool output, scanned on the run's loop, does not go
 * to the remote classifier (docs/guard.md). */
#ifndef BRIGADE_GUARD_REMOTE_H
#define BRIGADE_GUARD_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "guard/detect.h"

#define GUARD_REMOTE_PIECE  (16 * 1024)
#define GUARD_REMOTE_ANSWER (64 * 1024)

guard_detector *guard_remote_new(const char *url, uint32_t timeout_ms, bool fail_closed);

#endif
