/* retry.c — when a failed model call is worth another attempt, and after
 * how long. One policy for the gateway and for agent runs, so both treat a
 * provider the same way. The callers add their own condition: never retry
 * once part of an answer has reached the client. */
#include "upstream/upstream.h"

#include "util/ids.h"

bool upstream_should_retry(const provider_cfg *p, unsigned attempt, const upstream_result *res,
                           uint64_t *delay_ms)
{
    if (!p || attempt >= p->max_retries) return false;
    uint64_t base = (uint64_t)p->retry_backoff_ms << (attempt < 16 ? attempt : 16);
    unsigned char r;
    ids_random_bytes(&r, 1);
    /* ±25% jitter, so many clients failing together do not retry in step. */
    *delay_ms = base * (75 + (uint64_t)r * 50 / 255) / 100;
    switch (res->error) {
    case UPSTREAM_CONNECT:
    case UPSTREAM_MALFORMED:
    case UPSTREAM_TRUNCATED:
        return true;
    case UPSTREAM_HTTP_STATUS:
        if (res->status == 429) {
            /* Honour a short Retry-After; a long one goes back to the client. */
            if (res->retry_after_s > UPSTREAM_RETRY_AFTER_MAX_S) return false;
            if ((uint64_t)res->retry_after_s * 1000 > *delay_ms)
                *delay_ms = (uint64_t)res->retry_after_s * 1000;
            return true;
        }
        return res->status >= 500;
    case UPSTREAM_OK:
    case UPSTREAM_TIMEOUT:          /* the deadline is spent */
    case UPSTREAM_CANCELLED:
    default:
        return false;
    }
}
