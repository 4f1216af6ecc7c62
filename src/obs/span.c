/* span.c — building one span: begin, attributes, end. Everything here is
 * local to the span (one allocation, usually a reused span: span_pool.c);
 * only obs_span_end touches shared state, through the tracer's queue. */
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
static size_t obs_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

/* The tracer groups one owner's spans together by a cheap key
 * (obs_span.owner_key): an id's length and last eight bytes, where
 * brigade's ids keep their random part. Equal owners have equal keys; two
 * owners whose keys collide are only grouped less well. */
static uint64_t obs_id_tail(const char *s, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, s + (n > 8 ? n - 8 : 0), n < 8 ? n : 8);
    return w ^ n;
}

obs_span *obs_span_begin(const obs_trace_ctx *parent, const char *name, obs_span_kind kind,
                         const scope *owner)
{
    obs_trace_ctx ctx;
    if (parent) {
        memcpy(ctx.trace_id, parent->trace_id, 16);
        ctx.flags = parent->flags;
        ctx.made_here = parent->made_here;
        obs_random_id(ctx.span_id, 8);
    } else {
        obs_trace_ctx_new(&ctx);
    }
    /* Attributes and their strings come later, as they are set (an
     * unsampled span never has any: nothing will read them). */
    obs_span *s = obs_span_alloc();
    memset(s, 0, offsetof(obs_span, attrs_inline));   /* the inline room is written as used */
    s->attrs = s->attrs_inline;
    s->cap_attrs = OBS_SPAN_ATTRS_INLINE;
    s->pool = s->pool_inline;
    s->pool_cap = OBS_SPAN_POOL_INLINE;
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
        s->owner_key = 0;
        return;
    }
    size_t tn = obs_copy(s->tenant_id, sizeof s->tenant_id, owner->tenant_id);
    size_t un = obs_copy(s->user_id, sizeof s->user_id, owner->role == SCOPE_USER ? owner->user_id : "");
    s->owner_key = obs_id_tail(s->tenant_id, tn) * 0x9E3779B97F4A7C15ull ^ obs_id_tail(s->user_id, un);
}

void obs_span_set_name(obs_span *s, const char *name)
{
    if (s && name) obs_copy(s->name, sizeof s->name, name);
}

/* The slot for key: the existing one, a new one, or NULL when full. */
bool obs_span_recording(const obs_span *s) { return s && (s->ctx.flags & 1); }

/* What a span holds beyond itself. */
static void obs_span_release(obs_span *s)
{
    if (s->attrs != s->attrs_inline) free(s->attrs);
    if (s->pool != s->pool_inline) free(s->pool);
    free(s->status_msg);
}

void obs_span_free(obs_span *s)
{
    if (!s) return;
    obs_span_release(s);
    obs_span_recycle(&s, 1);
}

void obs_span_free_many(obs_span *const *spans, size_t n)
{
    for (size_t i = 0; i < n; i++) obs_span_release(spans[i]);
    obs_span_recycle(spans, n);
}

/* Room for n more bytes in the pool; false when it may not grow so far
 * (or out of memory: the attribute is dropped, never the span). */
static bool obs_pool_reserve(obs_span *s, size_t n)
{
    size_t need = (size_t)s->pool_used + n;
    if (need > OBS_SPAN_POOL_MAX) return false;
    if (need <= s->pool_cap) return true;
    size_t cap = s->pool_cap ? s->pool_cap : 256;
    while (cap < need) cap *= 2;
    if (cap > OBS_SPAN_POOL_MAX) cap = OBS_SPAN_POOL_MAX;
    char *p = s->pool == s->pool_inline ? malloc(cap) : realloc(s->pool, cap);
    if (!p) return false;
    if (s->pool == s->pool_inline) memcpy(p, s->pool_inline, s->pool_used);
    s->pool = p;
    s->pool_cap = (uint16_t)cap;
    return true;
}

/* One of 64 bits for a key, from its length and its first and last
 * bytes: keys of a span rarely share one, so most new keys skip the
 * search for an existing slot (a span gets ~10 attributes, each set
 * once, and the search compared each with all before it). */
static uint64_t obs_key_mark(const char *key, size_t kl)
{
    unsigned h = (unsigned)kl * 7u + (unsigned char)key[0] * 3u + (kl ? (unsigned char)key[kl - 1] : 0u);
    return (uint64_t)1 << (h & 63);
}

static obs_attr *obs_attr_slot(obs_span *s, const char *key)
{
    /* An unsampled span keeps no attributes: nothing will read them. */
    if (!s || !key || !(s->ctx.flags & 1)) return NULL;
    size_t kl = strnlen(key, OBS_ATTR_KEY_MAX - 1);
    uint64_t mark = obs_key_mark(key, kl);
    if (s->key_marks & mark)
        for (unsigned i = 0; i < s->n_attrs; i++) {
            const obs_attr *a = &s->attrs[i];
            if (a->klen == kl && s->pool[a->key] == key[0] && memcmp(s->pool + a->key, key, kl) == 0)
                return &s->attrs[i];
        }
    if (s->n_attrs >= OBS_SPAN_ATTRS_MAX) return NULL;
    if (s->n_attrs == s->cap_attrs) {
        unsigned cap = s->cap_attrs ? s->cap_attrs * 2 : 8;
        if (cap > OBS_SPAN_ATTRS_MAX) cap = OBS_SPAN_ATTRS_MAX;
        obs_attr *n = s->attrs == s->attrs_inline ? malloc(cap * sizeof *n) : realloc(s->attrs, cap * sizeof *n);
        if (!n) return NULL;
        if (s->attrs == s->attrs_inline) memcpy(n, s->attrs_inline, s->n_attrs * sizeof *n);
        s->attrs = n;
        s->cap_attrs = cap;
    }
    if (!obs_pool_reserve(s, kl + 1)) return NULL;
    obs_attr *a = &s->attrs[s->n_attrs++];
    s->key_marks |= mark;
    memset(a, 0, sizeof *a);
    a->key = s->pool_used;
    a->klen = (uint8_t)kl;
    memcpy(s->pool + a->key, key, kl);
    s->pool[a->key + kl] = '\0';
    s->pool_used = (uint16_t)(s->pool_used + kl + 1);
    a->type = OBS_ATTR_BOOL;   /* until its value is set */
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
    if ((size_t)s->values_used + n + 1 > OBS_SPAN_POOL || !obs_pool_reserve(s, n + 1)) {
        /* Pool full: keep the key, but with an empty value, so the
         * attribute does not silently keep a stale one. */
        n = 0;
        if ((size_t)s->values_used + 1 > OBS_SPAN_POOL || !obs_pool_reserve(s, 1)) {
            a->type = OBS_ATTR_BOOL;   /* nothing left at all: mark, never overrun */
            a->v.b = false;
            return;
        }
    }
    a->type = OBS_ATTR_STR;
    a->v.i = (int64_t)n;   /* its length: the encoder need not measure it again */
    a->off = s->pool_used;
    memcpy(s->pool + a->off, value, n);
    s->pool[a->off + n] = '\0';
    s->pool_used = (uint16_t)(s->pool_used + n + 1);
    s->values_used = (uint16_t)(s->values_used + n + 1);
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
        obs_span_free(s);
        return;
    }
    s->end_ns = obs_now_ns();
    if (s->end_ns < s->start_ns) s->end_ns = s->start_ns;   /* wall clock stepped back */
    s->status = status;
    /* An error's words can carry a user's text (a provider's error, a
     * tool's failure): personal data in them is replaced (util/pii.h). */
    if (status == OBS_STATUS_ERROR && message && !s->status_msg) {
        char msg[OBS_STATUS_MSG_MAX];
        pii_redact_into(message, strnlen(message, 4 * OBS_STATUS_MSG_MAX), msg, sizeof msg, NULL);
        s->status_msg = strdup(msg);   /* out of memory: the span goes without its words */
    }
    obs_tracer_submit(s);
}

void obs_span_discard(obs_span *s) { obs_span_free(s); }
