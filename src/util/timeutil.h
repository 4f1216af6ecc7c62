/* timeutil.h — clocks: wall time for records, monotonic time for timeouts. */
#ifndef BRIGADE_TIMEUTIL_H
#define BRIGADE_TIMEUTIL_H

#include <stdint.h>

int64_t time_now_unix(void);        /* seconds since the epoch */
int64_t time_now_unix_ms(void);
uint64_t time_mono_ns(void);        /* CLOCK_MONOTONIC */
/* ISO-8601 UTC, "2026-11-27T22:39:48Z"; out holds 21 bytes. */
void time_format_iso(char out[21], int64_t unix_seconds);

#endif
