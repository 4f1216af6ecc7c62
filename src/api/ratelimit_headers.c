/* ratelimit_headers.c — the x-ratelimit-* response headers of the OpenAI
 * form, from the rate-limit state the gate reports (govern_ratelimit_info).
 * Here and not in govern/: writing HTTP headers is the API's business;
 * govern only knows the numbers. */
#include "api/api.h"

#include <stdio.h>

/* OpenAI writes resets as durations: "1s", "6m0s", "20ms". */
static void ratelimit_duration(char *out, size_t n, int64_t ms)
{
    if (ms < 0) ms = 0;
    if (ms < 1000) snprintf(out, n, "%lldms", (long long)ms);
    else if (ms < 60000) snprintf(out, n, "%.3gs", (double)ms / 1000.0);
    else snprintf(out, n, "%lldm%llds", (long long)(ms / 60000), (long long)((ms % 60000) / 1000));
}

/* One trio: x-ratelimit-{limit,remaining,reset}-{what}. */
static void ratelimit_trio(http_request *req, const char *what, int64_t limit, int64_t remaining,
                           int64_t reset_ms)
{
    char name[48], v[32];
    snprintf(name, sizeof name, "x-ratelimit-limit-%s", what);
    snprintf(v, sizeof v, "%lld", (long long)limit);
    http_add_header(req, name, v);
    snprintf(name, sizeof name, "x-ratelimit-remaining-%s", what);
    snprintf(v, sizeof v, "%lld", (long long)(remaining < 0 ? 0 : remaining));
    http_add_header(req, name, v);
    snprintf(name, sizeof name, "x-ratelimit-reset-%s", what);
    ratelimit_duration(v, sizeof v, reset_ms);
    http_add_header(req, name, v);
}

void api_add_ratelimit_headers(http_request *req, const govern_ratelimit_info *rl)
{
    if (rl->has_requests)
        ratelimit_trio(req, "requests", rl->limit_requests, rl->remaining_requests,
                       rl->reset_requests_ms);
    if (rl->has_tokens)
        ratelimit_trio(req, "tokens", rl->limit_tokens, rl->remaining_tokens, rl->reset_tokens_ms);
}
