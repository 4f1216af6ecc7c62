/* obs_internal.h — what the obs module's files share: the span's layout and
 * the OTLP encoder (exposed for the unit tests). Nothing outside src/obs/
 * and tests/unit/obs/ includes this. */
#ifndef BRIGADE_OBS_INTERNAL_H
#define BRIGADE_OBS_INTERNAL_H

#include "obs/obs.h"
#include "obs/span_codec.h"
#include "util/buf.h"
#include "util/ids.h"


/* 16 bytes: the key and a string value are offsets into the span's pool. */
typedef struct obs_attr {
    union {
        int64_t i;                 /* OBS_ATTR_STR: the value's length */
        double d;
        bool b;
    } v;
    uint16_t key;                  /* the key, NUL-terminated, in the span's pool */
    uint16_t off;                  /* OBS_ATTR_STR: the value, NUL-terminated, in the pool */
    uint8_t  type;                 /* obs_attr_type */
    uint8_t  klen;                 /* the key's length: most lookups end at a length or first byte */
} obs_attr;

/* The pool holds keys and string values: values at most OBS_SPAN_POOL
 * bytes in all (what a stored span may hold), keys besides. */
#define OBS_SPAN_POOL_MAX (OBS_SPAN_POOL + OBS_SPAN_ATTRS_MAX * OBS_ATTR_KEY_MAX)

static inline const char *obs_attr_key(const struct obs_span *s, const obs_attr *a);

/* A span is small while it is open (a run holds a few spans open for its
 * whole life: their size was most of what an idle run cost): the fixed
 * part, room inline for the attributes and strings most spans have, and
 * only past that an array and a pool on the heap, grown on demand — so
 * the common span is one malloc of under 1 KB. Freed with obs_span_free. */
#define OBS_SPAN_ATTRS_INLINE 12
#define OBS_SPAN_POOL_INLINE 384
struct obs_span {
    obs_trace_ctx ctx;             /* this span's trace and span id */
    uint8_t parent_id[8];          /* zero for a root */
    bool has_parent;
    obs_span_kind kind;
    char name[OBS_SPAN_NAME_MAX];
    char tenant_id[ID_MAX], user_id[ID_MAX];
    uint64_t owner_key;            /* groups an owner's spans in the tracer (span.c) */
    int64_t start_ns, end_ns;      /* unix ns (wall clock) */
    obs_status status;
    char *status_msg;              /* an error's words, made when it ends (NULL: none; at
                                    * most OBS_STATUS_MSG_MAX - 1 bytes): not inline, where
                                    * every open span held room for it */
    obs_attr *attrs;               /* n_attrs used of cap_attrs (at most OBS_SPAN_ATTRS_MAX) */
    unsigned n_attrs, cap_attrs;
    uint64_t key_marks;            /* a bit per attribute key's mark (span.c, obs_key_mark):
                                    * a key whose bit is clear is new, without a search */
    char *pool;                    /* pool_used used of pool_cap (at most OBS_SPAN_POOL_MAX) */
    uint16_t pool_used, pool_cap;
    uint16_t values_used;          /* bytes of string values in the pool (at most OBS_SPAN_POOL) */
    struct obs_span *next;         /* the OTLP exporter's queue (otlp.c) */
    obs_attr attrs_inline[OBS_SPAN_ATTRS_INLINE];   /* attrs until they outgrow it */
    char pool_inline[OBS_SPAN_POOL_INLINE];         /* pool until it outgrows it */
};

static inline const char *obs_attr_key(const struct obs_span *s, const obs_attr *a) { return s->pool + a->key; }

/* span.c: free a span and what it holds; many at once (one lock). */
void obs_span_free(obs_span *s);
void obs_span_free_many(obs_span *const *spans, size_t n);
/* span_pool.c: room for a span (uninitialised), usually one given back
 * before; spans whose attributes, pool and message are already freed,
 * given back. */
obs_span *obs_span_alloc(void);
void obs_span_recycle(obs_span *const *spans, size_t n);
/* Spans in the shared pool, and its bound (tests). */
size_t obs_span_pool_size(void);
#define OBS_SPANS_KEPT 4096

/* traceparent.c: n (8 or 16) random bytes, never all zero. */
void obs_random_id(uint8_t *out, size_t n);

/* tracer.c: take an ended span (the tracer owns it from here). */
void obs_tracer_submit(obs_span *s);

/* span_codec.c: append the blob of n spans (one trace, one owner) to b. */
void obs_blob_encode(buf *b, obs_span *const *spans, size_t n);

/* otlp.c: an OTLP/HTTP JSON ExportTraceServiceRequest for n spans. */
void obs_otlp_encode(buf *b, obs_span *const *spans, size_t n, const char *service_name);
/* The attributes as a flat JSON object {"key": value} (kept for its unit test; reads use obs_span_view_attrs_json). */
void obs_attrs_json(buf *b, const obs_span *s);
/* JSON string literal with escapes. */
void obs_json_str(buf *b, const char *s);

/* otlp.c: the exporter thread (used by tracer.c). */
int  obs_otlp_start(const obs_tracer_opts *o, char *err, size_t errlen);
void obs_otlp_offer(obs_span **spans, size_t n);  /* takes ownership; drops past the cap */
void obs_otlp_stop(void);

#endif
