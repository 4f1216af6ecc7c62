/* fallback.c — what kind of failure an attempt's result is, and which
 * model a request falls back to when a model failed (resilience.h). */
#include <string.h>

#include "upstream/resilience/resilience.h"

/* Providers say "the prompt is too long" in a 400 with a known wording. */
static bool fault_is_context_window(const upstream_result *r)
{
    if (!r->body || !r->body_len) return false;
    static const char *const marks[] = {
        "context_length_exceeded",   /* OpenAI's error code */
        "prompt is too long",        /* Anthropic's message */
        "maximum context length",    /* OpenAI's message, servers that copy it without the code */
    };
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (memmem(r->body, r->body_len, marks[i], strlen(marks[i]))) return true;
    return false;
}

upstream_fault upstream_fault_of(const upstream_result *r)
{
    switch (r->error) {
    case UPSTREAM_OK:          return UPSTREAM_FAULT_NONE;
    case UPSTREAM_CONNECT:     return UPSTREAM_FAULT_CONNECT;
    case UPSTREAM_TIMEOUT:     return UPSTREAM_FAULT_TIMEOUT;
    case UPSTREAM_MALFORMED:
    case UPSTREAM_TRUNCATED:   return UPSTREAM_FAULT_MALFORMED;
    case UPSTREAM_CANCELLED:   return UPSTREAM_FAULT_CANCELLED;
    case UPSTREAM_HTTP_STATUS:
        if (r->status == 429) return UPSTREAM_FAULT_RATE_LIMIT;
        if (r->status >= 500 || r->status == 408) return UPSTREAM_FAULT_SERVER_ERROR;
        if ((r->status == 400 || r->status == 413) && fault_is_context_window(r))
            return UPSTREAM_FAULT_CONTEXT_WINDOW;
        return UPSTREAM_FAULT_REQUEST;
    }
    return UPSTREAM_FAULT_SERVER_ERROR;
}

const char *upstream_fault_name(upstream_fault f)
{
    switch (f) {
    case UPSTREAM_FAULT_NONE:           return "ok";
    case UPSTREAM_FAULT_REQUEST:        return "request";
    case UPSTREAM_FAULT_RATE_LIMIT:     return "rate_limit";
    case UPSTREAM_FAULT_SERVER_ERROR:   return "server_error";
    case UPSTREAM_FAULT_TIMEOUT:        return "timeout";
    case UPSTREAM_FAULT_CONNECT:        return "connect";
    case UPSTREAM_FAULT_MALFORMED:      return "malformed";
    case UPSTREAM_FAULT_CONTEXT_WINDOW: return "context_window";
    case UPSTREAM_FAULT_CANCELLED:      return "cancelled";
    }
    return "unknown";
}

uint32_t upstream_fault_bit(upstream_fault f)
{
    switch (f) {
    case UPSTREAM_FAULT_RATE_LIMIT:     return FALLBACK_RATE_LIMIT;
    case UPSTREAM_FAULT_SERVER_ERROR:   return FALLBACK_SERVER_ERROR;
    case UPSTREAM_FAULT_TIMEOUT:        return FALLBACK_TIMEOUT;
    case UPSTREAM_FAULT_CONNECT:        return FALLBACK_CONNECT;
    case UPSTREAM_FAULT_MALFORMED:      return FALLBACK_MALFORMED;
    case UPSTREAM_FAULT_CONTEXT_WINDOW: return FALLBACK_CONTEXT_WINDOW;
    default:                            return 0;
    }
}

bool upstream_fault_transient(upstream_fault f)
{
    return f == UPSTREAM_FAULT_RATE_LIMIT || f == UPSTREAM_FAULT_SERVER_ERROR || f == UPSTREAM_FAULT_TIMEOUT ||
           f == UPSTREAM_FAULT_CONNECT || f == UPSTREAM_FAULT_MALFORMED;
}

const model_cfg *upstream_fallback_next(const model_cfg *requested, size_t *pos, const model_cfg *failed,
                                        upstream_fault f, int64_t prompt_tokens)
{
    if (!requested || !requested->fallback_models) return NULL;
    uint32_t bit = upstream_fault_bit(f);
    if (!bit || !(requested->fallback_on & bit)) return NULL;
    while (*pos < requested->n_fallbacks) {
        const model_cfg *m = requested->fallback_models[(*pos)++];
        if (!m || m == failed) continue;
        if (prompt_tokens > 0 && (int64_t)m->context_window < prompt_tokens) continue;
        if (f == UPSTREAM_FAULT_CONTEXT_WINDOW && failed && m->context_window <= failed->context_window)
            continue;
        return m;
    }
    return NULL;
}
