/* log_limit.c — one log line a second for a repeated event (log_limit.h). */
#include "util/log_limit.h"

#include "util/timeutil.h"

bool log_limit_event(log_limit *l, uint64_t *events)
{
    l->pending++;
    int64_t now = (int64_t)(time_mono_ns() / 1000000);
    if (now < l->next_ms) return false;
    l->next_ms = now + 1000;
    *events = l->pending;
    l->pending = 0;
    return true;
}

bool log_limit_flush(log_limit *l, uint64_t *events)
{
    if (!l->pending) return false;
    int64_t now = (int64_t)(time_mono_ns() / 1000000);
    if (now < l->next_ms) return false;
    l->next_ms = now + 1000;
    *events = l->pending;
    l->pending = 0;
    return true;
}
