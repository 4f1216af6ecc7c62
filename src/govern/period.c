/* period.c — UTC day and month boundaries in epoch milliseconds (the
 * periods budgets are counted in; see govern.h).
 *
 * Days are plain arithmetic: Unix time has no leap seconds, so every UTC
 * day is 86 400 000 ms. Months go through gmtime_r/timegm, which know the
 * calendar (leap years included). timegm is not cheap, so govern caches
 * the current periods and calls these only when "now" leaves them. */
#include "govern/govern.h"

#include <time.h>

#define DAY_MS 86400000LL

/* Floor division, so instants before 1970 still land in their own day. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t govern_day_start(int64_t now_ms)
{
    return floor_div(now_ms, DAY_MS) * DAY_MS;
}

/* Start of the month containing now_ms, moved by `add` months. */
static int64_t month_start_add(int64_t now_ms, int add)
{
    time_t s = (time_t)floor_div(now_ms, 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mon += add;            /* timegm normalises month 12 to January */
    tm.tm_isdst = 0;
    return (int64_t)timegm(&tm) * 1000;
}

int64_t govern_month_start(int64_t now_ms) { return month_start_add(now_ms, 0); }
int64_t govern_month_end(int64_t now_ms)   { return month_start_add(now_ms, 1); }
