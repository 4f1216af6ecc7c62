/* obs_internal.h — what the obs module's files share: the span's layout and
 * the OTLP encoder (exposed for the unit tests). Nothing outside src/obs/
 * and tests/unit/obs/ includes this. */
#ifndef BRIGADE_OBS_INTERNAL_H
#define BRIGADE_OBS_INTERNAL_H

#include "obs/obs.h"
#include "obs/span_codec.h"
#include "util/buf.h"
#include "util/ids.h"


typedef struct obs_attr {
    char key[OBS_ATTR_KEY_MAX];
    obs_attr_type type;
    union {
        int64_t i;
        double d;
        bool b;
    } v;
    uint16_t off;                  /* OBS_ATTR_STR: the value, NUL-terminated, in the span's pool */
} obs_attr;

/* One malloc per span (about 4 KiB): attributes and their strings live
 * inline, so ending a span is a queue
 * push and freeing it is one free. */
struct obs_span {
    obs_trace_ctx ctx;             /* this span's trace and span id */
    uint8_t parent_id[8];          /* zero for a root */
    bool has_parent;
    obs_span_kind kind;
    char name[OBS_SPAN_NAME_MAX];
    char tenant_id[ID_MAX], user_id[ID_MAX];
    int64_t start_ns, end_ns;      /* unix ns (wall clock) */
    obs_status status;
    char status_msg[OBS_STATUS_MSG_MAX];
    obs_attr attrs[OBS_SPAN_ATTRS_MAX];
    unsigned n_attrs;
    uint16_t pool_used;
    char pool[OBS_SPAN_POOL];
    struct obs_span *next;         /* the tracer's queues */
};

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
