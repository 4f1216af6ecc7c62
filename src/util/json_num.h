/* json_num.h — a JSON number as a C integer without undefined behaviour.
 * A number from the network (a provider's usage, an MCP server's ids) can
 * be 1e300; casting that double to an integer type is undefined in C, and
 * UBSan stops the process on it. These clamp to the type's range instead
 * (NaN, which JSON cannot carry, gives 0). */
#ifndef BRIGADE_UTIL_JSON_NUM_H
#define BRIGADE_UTIL_JSON_NUM_H

#include <stdint.h>

static inline int64_t json_num_i64(double d)
{
    if (!(d == d)) return 0;                       /* NaN */
    if (d >= 9.2e18) return INT64_MAX;
    if (d <= -9.2e18) return INT64_MIN;
    return (int64_t)d;
}

/* A provider's token count: a number in [0, JSON_TOKENS_MAX], else -1
 * (garbage: a count past 1e15 is no real request's, and sums of such
 * counts must stay far inside int64's range). The providers' parsers
 * (provider_openai.c, openai_scan.c, anthropic_translate.c) keep to the
 * same bound. */
#define JSON_TOKENS_MAX 1e15
static inline int64_t json_num_tokens(double d)
{
    return d >= 0 && d <= JSON_TOKENS_MAX ? (int64_t)d : -1;
}

#endif
