/* span_codec.c — spans to the compact blob a trace row holds, and back.
 *
 * Encoding runs on the tracer thread for every stored span, so it is
 * copies only: no formatting, no JSON, one growing buffer reused across
 * flushes. Decoding runs when a trace is read; it trusts nothing in the
 * blob (the layout and its bounds are in span_codec.h). */
#include "obs/obs_internal.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "util/json_escape.h"

/* Version 2 (written now) differs from 1 (still read) only in how an
 * attribute's key is stored: see obs_blob_keys. */
#define OBS_BLOB_MAGIC_V1 "BTR\x01"
#define OBS_BLOB_MAGIC "BTR\x02"
#define OBS_BLOB_HEADER 8
#define OBS_BLOB_SPAN_FIXED 38   /* ids 16, 4 bytes of flags…n_attrs, times 16, two lengths */

/* ---- the key table ----
 *
 * The attribute keys brigade itself sets, by number. In a version 2 blob
 * a key's length byte with the high bit set is (0x80 | its number here)
 * instead of a length and the key's bytes: the keys were about half of a
 * stored trace (527 of a gateway request's 1,083 bytes), and every byte
 * stored is written twice by the store (its WAL, then the database) and
 * kept for the retention period. Other keys are written out as before.
 * APPEND ONLY: a number, once written to a blob, means its key for ever;
 * a key that is no longer set stays here. At most 127. */
static const char *const obs_blob_keys[] = {
    "http.request.method", "http.route", "http.response.status_code", "error.type",
    "brigade.request_id", "brigade.auth.role", "brigade.auth.result", "brigade.auth.provisioned",
    "brigade.auth.caught_up", "gen_ai.operation.name", "gen_ai.system", "gen_ai.request.model",
    "gen_ai.response.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.agent.name", "gen_ai.tool.name", "gen_ai.tool.call.id", "brigade.stream",
    "brigade.deployment", "brigade.attempts", "brigade.attempt", "brigade.cost_usd",
    "brigade.estimate.tokens", "brigade.estimate.cost_usd", "brigade.decision", "brigade.outcome",
    "brigade.duration_ms", "brigade.breaker_probe", "brigade.next", "brigade.queue.wait_ms",
    "brigade.limit", "brigade.refused", "brigade.client_aborted", "brigade.credential",
    "brigade.approval", "brigade.session_id", "brigade.run_id", "brigade.run.status",
    "brigade.run.steps", "brigade.run.tool_calls", "brigade.tool.ok", "brigade.mcp.server",
    "brigade.guardrail.check", "brigade.guardrail.decision", "brigade.guardrail.score",
    "brigade.guardrail.channel", "brigade.provenance.kind", "brigade.provenance.untrusted",
    "brigade.provenance.tainted", "brigade.provenance.tainted_by",
    "brigade.provenance.memory_keys", "brigade.provenance.memory_entries",
    "brigade.provenance.url_host", "brigade.egress.tool", "brigade.egress.decision",
    "brigade.egress.class", "brigade.egress.address", "brigade.egress.connections",
    "brigade.egress.allow_private_networks",
};
#define OBS_BLOB_NKEYS (sizeof obs_blob_keys / sizeof obs_blob_keys[0])
_Static_assert(OBS_BLOB_NKEYS <= 127, "key numbers are 7 bits");

/* Key → number: open addressing over a hash of the key's bytes, built
 * once (the tracer encodes; pthread_once for any other caller). */
#define OBS_KEY_SLOTS 256
static uint8_t obs_key_slot[OBS_KEY_SLOTS];   /* number + 1; 0 = empty */
static uint8_t obs_key_len[OBS_BLOB_NKEYS];
static pthread_once_t obs_key_once = PTHREAD_ONCE_INIT;

/* Of the length and three bytes: cheap, and the table's keys differ in
 * them enough that probes are short (a wrong guess costs one memcmp). */
static unsigned obs_key_hash(const char *k, size_t n)
{
    if (!n) return 0;
    uint32_t h = (uint32_t)n * 0x9E3779B1u;
    h ^= (uint8_t)k[n - 1] * 0x85EBCA77u;
    h ^= (uint8_t)k[n / 2] * 0xC2B2AE3Du;
    h ^= (uint8_t)k[n / 3] * 0x27D4EB2Fu;
    return (h ^ h >> 15) & (OBS_KEY_SLOTS - 1);
}

static void obs_key_table_build(void)
{
    for (size_t i = 0; i < OBS_BLOB_NKEYS; i++) {
        obs_key_len[i] = (uint8_t)strlen(obs_blob_keys[i]);
        unsigned h = obs_key_hash(obs_blob_keys[i], obs_key_len[i]);
        while (obs_key_slot[h]) h = (h + 1) & (OBS_KEY_SLOTS - 1);
        obs_key_slot[h] = (uint8_t)(i + 1);
    }
}

/* The key's number, or -1 when it is not in the table. */
static int obs_key_number(const char *k, size_t n)
{
    for (unsigned h = obs_key_hash(k, n);; h = (h + 1) & (OBS_KEY_SLOTS - 1)) {
        unsigned v = obs_key_slot[h];
        if (!v) return -1;
        if (obs_key_len[v - 1] == n && memcmp(obs_blob_keys[v - 1], k, n) == 0) return (int)(v - 1);
    }
}

/* ---- encoding ---- */

static uint8_t *obs_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *obs_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

static uint8_t *obs_put_str8(uint8_t *p, const char *s, size_t n)
{
    *p++ = (uint8_t)n;
    memcpy(p, s, n);
    return p + n;
}

/* The strings a span holds are bounded by its setters (span.c), which
 * keep the lengths of keys and string values (obs_attr): they fit their
 * fields, and are clamped here even if they did not. */
typedef struct obs_attr_len {
    int key_no;          /* obs_blob_keys number, or -1: written out */
    uint8_t key_n;
    uint16_t value_n;    /* OBS_ATTR_STR */
} obs_attr_len;

static size_t obs_span_blob_size(const obs_span *s, size_t *name_n, size_t *msg_n, obs_attr_len *lens)
{
    *name_n = strnlen(s->name, OBS_SPAN_NAME_MAX - 1);
    *msg_n = s->status_msg ? strnlen(s->status_msg, OBS_STATUS_MSG_MAX - 1) : 0;
    size_t n = OBS_BLOB_SPAN_FIXED + *name_n + *msg_n;
    for (unsigned i = 0; i < s->n_attrs; i++) {
        const obs_attr *a = &s->attrs[i];
        size_t kn = a->klen < OBS_ATTR_KEY_MAX ? a->klen : OBS_ATTR_KEY_MAX - 1;
        lens[i].key_n = (uint8_t)kn;
        lens[i].key_no = obs_key_number(obs_attr_key(s, a), kn);
        n += 2 + (lens[i].key_no >= 0 ? 0 : kn);
        switch (a->type) {
        case OBS_ATTR_STR:
            lens[i].value_n = (uint16_t)(a->v.i >= 0 && a->v.i < OBS_ATTR_STR_MAX ? a->v.i
                                                                                 : OBS_ATTR_STR_MAX - 1);
            n += 2 + lens[i].value_n;
            break;
        case OBS_ATTR_BOOL: n += 1; break;
        default: n += 8; break;
        }
    }
    return n;
}

void obs_blob_encode(buf *b, obs_span *const *spans, size_t n)
{
    pthread_once(&obs_key_once, obs_key_table_build);
    buf_reserve(b, OBS_BLOB_HEADER);
    uint8_t *p = (uint8_t *)b->data + b->len;
    memcpy(p, OBS_BLOB_MAGIC, 4);
    uint32_t cnt = (uint32_t)n;
    for (int i = 0; i < 4; i++) p[4 + i] = (uint8_t)(cnt >> (8 * i));
    b->len += OBS_BLOB_HEADER;
    for (size_t k = 0; k < n; k++) {
        const obs_span *s = spans[k];
        size_t name_n, msg_n;
        obs_attr_len lens[OBS_SPAN_ATTRS_MAX];
        size_t need = obs_span_blob_size(s, &name_n, &msg_n, lens);
        buf_reserve(b, need);
        p = (uint8_t *)b->data + b->len;
        memcpy(p, s->ctx.span_id, 8);
        if (s->has_parent) memcpy(p + 8, s->parent_id, 8);
        else memset(p + 8, 0, 8);
        p += 16;
        *p++ = s->has_parent ? 1 : 0;
        *p++ = (uint8_t)s->kind;
        *p++ = (uint8_t)s->status;
        *p++ = (uint8_t)s->n_attrs;
        p = obs_put_u64(p, (uint64_t)s->start_ns);
        p = obs_put_u64(p, (uint64_t)s->end_ns);
        p = obs_put_str8(p, s->name, name_n);
        p = obs_put_str8(p, s->status_msg ? s->status_msg : "", msg_n);
        for (unsigned i = 0; i < s->n_attrs; i++) {
            const obs_attr *a = &s->attrs[i];
            if (lens[i].key_no >= 0) *p++ = (uint8_t)(0x80 | lens[i].key_no);
            else p = obs_put_str8(p, obs_attr_key(s, a), lens[i].key_n);
            *p++ = (uint8_t)a->type;
            switch (a->type) {
            case OBS_ATTR_STR: {
                const char *v = s->pool + a->off;
                size_t vn = lens[i].value_n;
                p = obs_put_u16(p, (uint16_t)vn);
                memcpy(p, v, vn);
                p += vn;
                break;
            }
            case OBS_ATTR_INT: p = obs_put_u64(p, (uint64_t)a->v.i); break;
            case OBS_ATTR_DOUBLE: {
                uint64_t bits;
                memcpy(&bits, &a->v.d, 8);
                p = obs_put_u64(p, bits);
                break;
            }
            case OBS_ATTR_BOOL: *p++ = a->v.b ? 1 : 0; break;
            }
        }
        b->len += need;
    }
}

/* ---- decoding ---- */

int obs_blob_open(obs_blob_reader *r, const void *blob, size_t len)
{
    memset(r, 0, sizeof *r);
    if (!blob || len < OBS_BLOB_HEADER) return -1;
    bool v2 = memcmp(blob, OBS_BLOB_MAGIC, 4) == 0;
    if (!v2 && memcmp(blob, OBS_BLOB_MAGIC_V1, 4) != 0) return -1;
    const uint8_t *p = blob;
    uint32_t cnt = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    /* A count the bytes cannot hold is corrupt from the start. */
    if (cnt > OBS_BLOB_SPANS_MAX || cnt > (len - OBS_BLOB_HEADER) / OBS_BLOB_SPAN_FIXED) return -1;
    r->p = p;
    r->len = len;
    r->off = OBS_BLOB_HEADER;
    r->left = cnt;
    r->numbered_keys = v2;
    return 0;
}

static bool obs_take(obs_blob_reader *r, void *out, size_t n)
{
    if (n > r->len - r->off) return false;
    memcpy(out, r->p + r->off, n);
    r->off += n;
    return true;
}

static bool obs_take_u8(obs_blob_reader *r, uint8_t *v) { return obs_take(r, v, 1); }

static bool obs_take_u64(obs_blob_reader *r, uint64_t *v)
{
    uint8_t b[8];
    if (!obs_take(r, b, 8)) return false;
    *v = 0;
    for (int i = 7; i >= 0; i--) *v = *v << 8 | b[i];
    return true;
}

/* A string of n bytes into out (room for cap with its NUL): no NUL inside. */
static bool obs_take_str(obs_blob_reader *r, char *out, size_t n, size_t cap)
{
    if (n >= cap || !obs_take(r, out, n)) return false;
    out[n] = '\0';
    return memchr(out, '\0', n) == NULL;
}

static bool obs_take_str8(obs_blob_reader *r, char *out, size_t cap)
{
    uint8_t n;
    return obs_take_u8(r, &n) && obs_take_str(r, out, n, cap);
}

/* An attribute's key: its bytes, or (version 2) its number in obs_blob_keys. */
static bool obs_take_key(obs_blob_reader *r, char *out)
{
    uint8_t n;
    if (!obs_take_u8(r, &n)) return false;
    if (r->numbered_keys && (n & 0x80)) {
        unsigned no = n & 0x7f;
        if (no >= OBS_BLOB_NKEYS) return false;
        _Static_assert(sizeof "brigade.egress.allow_private_networks" <= OBS_ATTR_KEY_MAX, "keys fit");
        strcpy(out, obs_blob_keys[no]);
        return true;
    }
    return obs_take_str(r, out, n, OBS_ATTR_KEY_MAX);
}

static bool obs_blob_attr(obs_blob_reader *r, obs_span_view *v, unsigned i, size_t *pool_used)
{
    uint8_t type;
    if (!obs_take_key(r, v->attrs[i].key) || !v->attrs[i].key[0]) return false;
    if (!obs_take_u8(r, &type)) return false;
    v->attrs[i].type = (obs_attr_type)type;
    uint64_t u;
    switch (type) {
    case OBS_ATTR_STR: {
        uint8_t lb[2];
        if (!obs_take(r, lb, 2)) return false;
        size_t n = (size_t)lb[0] | (size_t)lb[1] << 8;
        if (n >= OBS_ATTR_STR_MAX || *pool_used + n + 1 > sizeof v->pool) return false;
        if (!obs_take_str(r, v->pool + *pool_used, n, OBS_ATTR_STR_MAX)) return false;
        v->attrs[i].off = (uint16_t)*pool_used;
        *pool_used += n + 1;
        return true;
    }
    case OBS_ATTR_INT:
        if (!obs_take_u64(r, &u)) return false;
        v->attrs[i].i = (int64_t)u;
        return true;
    case OBS_ATTR_DOUBLE:
        if (!obs_take_u64(r, &u)) return false;
        memcpy(&v->attrs[i].d, &u, 8);
        return true;
    case OBS_ATTR_BOOL: {
        uint8_t b;
        if (!obs_take_u8(r, &b) || b > 1) return false;
        v->attrs[i].b = b;
        return true;
    }
    default: return false;
    }
}

int obs_blob_next(obs_blob_reader *r, obs_span_view *v)
{
    if (!r->p) return -1;
    if (r->left == 0) return r->off == r->len ? 0 : -1;   /* trailing bytes: corrupt */
    uint8_t ids[16], hdr[4];
    uint64_t start, end;
    if (!obs_take(r, ids, 16) || !obs_take(r, hdr, 4) || !obs_take_u64(r, &start) ||
        !obs_take_u64(r, &end))
        goto bad;
    if (hdr[0] > 1 || hdr[1] < OBS_SPAN_INTERNAL || hdr[1] > OBS_SPAN_CLIENT ||
        hdr[2] > OBS_STATUS_ERROR || hdr[3] > OBS_SPAN_ATTRS_MAX)
        goto bad;
    if ((int64_t)end < (int64_t)start) goto bad;
    ids_hex(v->span_id, ids, 8);
    if (hdr[0]) ids_hex(v->parent_span_id, ids + 8, 8);
    else v->parent_span_id[0] = '\0';
    v->kind = hdr[1];
    v->status = hdr[2];
    v->start_ns = (int64_t)start;
    v->end_ns = (int64_t)end;
    if (!obs_take_str8(r, v->name, sizeof v->name) ||
        !obs_take_str8(r, v->status_message, sizeof v->status_message))
        goto bad;
    size_t pool_used = 0;
    v->n_attrs = 0;
    for (unsigned i = 0; i < hdr[3]; i++) {
        if (!obs_blob_attr(r, v, i, &pool_used)) goto bad;
        v->n_attrs = i + 1;
    }
    r->left--;
    return 1;
bad:
    r->p = NULL;   /* stays failed: a caller cannot resume mid-corruption */
    return -1;
}

void obs_span_view_attrs_json(buf *b, const obs_span_view *v)
{
    buf_append(b, "{", 1);
    for (unsigned i = 0; i < v->n_attrs; i++) {
        if (i) buf_append(b, ",", 1);
        json_escape_string(b, v->attrs[i].key, strlen(v->attrs[i].key));
        buf_append(b, ":", 1);
        switch (v->attrs[i].type) {
        case OBS_ATTR_STR: {
            const char *s = v->pool + v->attrs[i].off;
            json_escape_string(b, s, strlen(s));
            break;
        }
        case OBS_ATTR_INT: buf_printf(b, "%lld", (long long)v->attrs[i].i); break;
        case OBS_ATTR_DOUBLE:
            if (isnan(v->attrs[i].d) || isinf(v->attrs[i].d)) buf_puts(b, "null");
            else buf_printf(b, "%.17g", v->attrs[i].d);
            break;
        case OBS_ATTR_BOOL: buf_puts(b, v->attrs[i].b ? "true" : "false"); break;
        }
    }
    buf_append(b, "}", 1);
}
