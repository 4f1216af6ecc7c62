/* replay.h — resuming a stream cut after text reached the client, by
 * replay (models with `stream_resume: true`; docs/resilience.md).
 *
 * While a stream is passed on, the text of its one answer is kept. When the
 * stream fails after that, dispatch.c sends the request again; the replayed
 * answer must repeat the kept text exactly — those events are dropped —
 * and what comes after it is passed on, the first event trimmed to the new
 * text. A replay that says anything else (other text, a tool call, an end
 * before the kept text) has diverged: the stream ends with the error, as
 * without resuming. So the client never sees text that contradicts what it
 * already has; a provider that does not answer deterministically simply
 * does not get resumed.
 *
 * Chat-chunk streams with one choice and text only; anything else is not
 * resumable. Pure: no I/O. */
#ifndef BRIGADE_UPSTREAM_REPLAY_H
#define BRIGADE_UPSTREAM_REPLAY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define UPSTREAM_REPLAY_MAX_TEXT (256u << 10)   /* kept text past this: not resumable */

typedef struct upstream_replay {
    buf    text;          /* the answer's text passed on so far */
    bool   resumable;     /* one choice, text only, within the bound */
    bool   active;        /* a replay is skipping the kept text */
    size_t pos;           /* bytes of `text` the replay has repeated */
} upstream_replay;

typedef enum upstream_replay_verdict {
    UPSTREAM_REPLAY_SKIP,       /* within the kept text: drop the event */
    UPSTREAM_REPLAY_PASS,       /* past it: pass `out` (the event, trimmed); the replay is over */
    UPSTREAM_REPLAY_DIVERGED    /* says something else: give up */
} upstream_replay_verdict;

void upstream_replay_init(upstream_replay *r);
void upstream_replay_free(upstream_replay *r);
/* An event passed on to the caller (not during a replay). */
void upstream_replay_note(upstream_replay *r, const char *json, size_t len);
/* Start a replay: its events go to upstream_replay_match. */
void upstream_replay_begin(upstream_replay *r);
upstream_replay_verdict upstream_replay_match(upstream_replay *r, const char *json, size_t len, buf *out);

#endif
