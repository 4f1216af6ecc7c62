/* span.c — building one span: begin, attributes, end. Everything here is
 * local to the span (one malloc); only obs_span_end touches shared state,
 * through the tracer's queue. */
#include "obs/obs_internal.h"
#include "util/pii.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t obs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* snprintf("%s") without the format machinery: these run for every
 * span on the request's thread. Cuts at cap - 1 bytes, as snprintf did. */
static void obs_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

obs_span *obs_span_begin(const obs_trace_ctx *parent, const char *name, obs_span_kind kind,
                         const scope *owner)
{
    obs_trace_ctx ctx;
    if (parent) {
        memcpy(ctx.trace_id, parent->trace_id, 16);
        ctx.flags = parent->flags;
        obs_random_id(ctx.span_id, 8);
    } else {
        obs_trace_ctx_new(&ctx);
    }
    /* An unsampled span is never stored: it needs its context and the few
     * fields before the attributes, not the 4 KiB of attributes and string
     * pool (nothing touches those when bit 0 of the flags is clear). Not
     * calloc: the string pool need not be zeroed. */
    bool sampled = ctx.flags & 1;
    size_t size = sampled ? sizeof(obs_span) : offsetof(obs_span, attrs);
    obs_span *s = xmalloc(size);
    memset(s, 0, sampled ? offsetof(obs_span, pool) : size);
    s->ctx = ctx;
    if (parent) {
        memcpy(s->parent_id, parent->span_id, 8);
        s->has_parent = true;
    }
    s->kind = kind;
    obs_copy(s->name, sizeof s->name, name ? name : "span");
    obs_span_set_owner(s, owner);
    s->start_ns = obs_now_ns();
    return s;
}

const obs_trace_ctx *obs_span_ctx(const obs_span *s) { return &s->ctx; }

void obs_span_set_owner(obs_span *s, const scope *owner)
{
    if (!s) return;
    if (!owner || owner->role == SCOPE_NONE) {
        s->tenant_id[0] = s->user_id[0] = '\0';
        return;
    }
    obs_copy(s->tenant_id, sizeof s->tenant_id, owner->tenant_id);
    obs_copy(s->user_id, sizeof s->user_id, owner->role == SCOPE_USER ? owner->user_id : "");
}

void obs_span_set_name(obs_span *s, const char *name)
{
    if (s && name) obs_copy(s->name, sizeof s->name, name);
}

/* The slot for key: the existing one, a new one, or NULL when full. */
bool obs_span_recording(const obs_span *s) { return s && (s->ctx.flags & 1); }

static obs_attr *obs_attr_slot(obs_span *s, const char *key)
{
    /* An unsampled span keeps no attributes: nothing will read them. */
    if (!s || !key || !(s->ctx.flags & 1)) return NULL;
    for (unsigned i = 0; i < s->n_attrs; i++)
        if (strcmp(s->attrs[i].key, key) == 0) return &s->attrs[i];
    if (s->n_attrs >= OBS_SPAN_ATTRS_MAX) return NULL;
    obs_attr *a = &s->attrs[s->n_attrs++];
    obs_copy(a->key, sizeof a->key, key);
    return a;
}

void obs_span_set_str(obs_span *s, const char *key, const char *value)
{
    obs_attr *a = obs_attr_slot(s, key);
    if (!a) return;
    if (!value) value = "";
    size_t n = strnlen(value, OBS_ATTR_STR_MAX - 1);
    /* Do not cut a UTF-8 sequence in half: back off to a lead byte. */
    if (value[n] != '\0')
        while (n > 0 && ((unsigned char)value[n] & 0xC0) == 0x80) n--;
    if ((size_t)s->pool_used + n + 1 > sizeof s->pool) {
        /* Pool full: keep the key, but with an empty value, so the
         * attribute does not silently keep a stale one. */
        n = 0;
        if ((size_t)s->pool_used + 1 > sizeof s->pool) {
            a->type = OBS_ATTR_BOOL;   /* nothing left at all: mark, never overrun */
            a->v.b = false;
            return;
        }
    }
    a->type = OBS_ATTR_STR;
    a->off = s->pool_used;
    memcpy(s->pool + a->off, value, n);
    s->pool[a->off + n] = '\0';
    s->pool_used = (uint16_t)(s->pool_used + n + 1);
}

void obs_span_set_text(obs_span *s, const char *key, const char *value)
{
    if (!obs_span_recording(s)) return;
    char redacted[OBS_ATTR_STR_MAX];
    if (!value) value = "";
    pii_redact_into(value, strnlen(value, 4 * OBS_ATTR_STR_MAX), redacted, sizeof redacted, NULL);
    obs_span_set_str(s, key, redacted);
}

void obs_span_set_int(obs_span *s, const char *key, int64_t value)
{
    obs_attr *a = obs_attr_slot(s, key);
    if (!a) return;
    a->type = OBS_ATTR_INT;
    a->v.i = value;
}

void obs_span_set_double(obs_span *s, const char *key, double value)
{
    obs_attr *a = obs_attr_slot(s, key);
    if (!a) return;
    a->type = OBS_ATTR_DOUBLE;
    a->v.d = value;
}

void obs_span_set_bool(obs_span *s, const char *key, bool value)
{
    obs_attr *a = obs_attr_slot(s, key);
    if (!a) return;
    a->type = OBS_ATTR_BOOL;
    a->v.b = value;
}

void obs_span_end(obs_span *s, obs_status status, const char *message)
{
    if (!s) return;
    if (!(s->ctx.flags & 1)) {       /* not sampled: its context went on, the span does not */
        free(s);
        return;
    }
    s->end_ns = obs_now_ns();
    if (s->end_ns < s->start_ns) s->end_ns = s->start_ns;   /* wall clock stepped back */
    s->status = status;
    /* An error's words can carry a user's text (a provider's error, a
     * tool's failure): personal data in them is replaced (util/pii.h). */
    if (status == OBS_STATUS_ERROR && message)
        pii_redact_into(message, strnlen(message, 4 * OBS_STATUS_MSG_MAX), s->status_msg,
                        sizeof s->status_msg, NULL);
    obs_tracer_submit(s);
}

void obs_span_discard(obs_span *s) { free(s); }
