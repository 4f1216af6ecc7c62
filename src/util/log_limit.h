/* log_limit.h — at most one log line a second for an event that can repeat
 * thousands of times a second (a full queue dropping every row offered to
 * it): the line says how many happened since the last one, and the log
 * stays readable and cheap when it matters most. */
#ifndef BRIGADE_LOG_LIMIT_H
#define BRIGADE_LOG_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct log_limit {
    int64_t  next_ms;     /* monotonic ms before which no line is due */
    uint64_t pending;     /* events since the last line, this one included */
} log_limit;

/* Count one event. True when a line is due now; *events is then how many
 * it stands for (≥ 1) and the count starts again. Not thread-safe: call
 * it under the lock that guards what the event is about. */
bool log_limit_event(log_limit *l, uint64_t *events);

/* Events counted but not yet logged, once their line is due: true with
 * *events set (and the count started again), so a burst that stopped
 * inside its second is still told. Call it now and then (the store's
 * writer does after each commit). */
bool log_limit_flush(log_limit *l, uint64_t *events);

#endif
