/* span_codec.h — the stored form of a trace's spans: a compact binary blob
 * (one per trace row, see docs/observability.md "Storage"), written by the
 * tracer thread and read back only when a trace is asked for.
 *
 * Layout (all integers little-endian):
 *   header  "BTR" 0x02 (0x01: version 1, still read), u32 span count
 *   span    span_id[8] parent_id[8] u8 flags(bit 0: has parent) u8 kind
 *           u8 status u8 n_attrs i64 start_ns i64 end_ns
 *           u8 name_len name  u8 msg_len msg
 *           n_attrs × (key u8 type value)
 *   key     u8 len then len bytes; in version 2, a byte 0x80 | k instead is
 *           the key numbered k in span_codec.c's table of brigade's own keys
 *   value   str: u16 len bytes · int: i64 · double: f64 bits · bool: u8
 * Every length is checked against the limits below when decoding, so a
 * corrupt or hostile blob yields an error, never a read past its end. */
#ifndef BRIGADE_OBS_SPAN_CODEC_H
#define BRIGADE_OBS_SPAN_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "obs/obs.h"
#include "util/buf.h"

#define OBS_ATTR_KEY_MAX 48
#define OBS_ATTR_STR_MAX 256       /* one string value, bytes with its NUL */
#define OBS_SPAN_POOL 2048         /* all string values of one span, bytes */
#define OBS_SPAN_NAME_MAX 96
#define OBS_STATUS_MSG_MAX 160
#define OBS_BLOB_SPANS_MAX 16384   /* spans in one blob (the tracer writes at most 512: a take's chunk) */

typedef enum { OBS_ATTR_STR, OBS_ATTR_INT, OBS_ATTR_DOUBLE, OBS_ATTR_BOOL } obs_attr_type;

/* One decoded span: every string NUL-terminated, within its bound. */
typedef struct obs_span_view {
    char span_id[17], parent_span_id[17];   /* hex; parent "" for a root */
    char name[OBS_SPAN_NAME_MAX];
    int kind;                                /* obs_span_kind */
    int status;                              /* obs_status */
    int64_t start_ns, end_ns;
    char status_message[OBS_STATUS_MSG_MAX];
    unsigned n_attrs;
    struct {
        char key[OBS_ATTR_KEY_MAX];
        obs_attr_type type;
        int64_t i;
        double d;
        bool b;
        uint16_t off;                        /* OBS_ATTR_STR: in pool */
    } attrs[OBS_SPAN_ATTRS_MAX];
    char pool[OBS_SPAN_POOL];
} obs_span_view;

typedef struct obs_blob_reader {
    const uint8_t *p;
    size_t len, off;
    uint32_t left;                           /* spans not read yet */
    bool numbered_keys;                      /* version 2 */
} obs_blob_reader;

/* Checks the header; -1 when it is not a span blob. */
int obs_blob_open(obs_blob_reader *r, const void *blob, size_t len);
/* The next span: 1, 0 at the end, -1 when the blob is corrupt (stop there). */
int obs_blob_next(obs_blob_reader *r, obs_span_view *out);
/* The span's attributes as a flat JSON object {"key": value}: strings
 * escaped by util/json_escape.h, non-finite doubles as null. */
void obs_span_view_attrs_json(buf *b, const obs_span_view *v);

#endif
