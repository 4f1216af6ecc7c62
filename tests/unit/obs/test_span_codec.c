/* test_span_codec.c — the stored form of spans (src/obs/span_codec.c):
 * a round trip of every attribute type at its bounds, and hostile blobs —
 * every truncation, every single-byte corruption, lengths and counts that
 * lie — which must end in an error, never a read past the blob (ASan
 * builds check that) nor a string past its bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "obs/obs_internal.h"

/* The key goes at the pool's end (after the one long value). */
static void attr(obs_span *s, const char *key, obs_attr_type t)
{
    obs_attr *a = &s->attrs[s->n_attrs++];
    a->key = s->pool_used;
    strcpy(s->pool + a->key, key);
    a->klen = (uint8_t)strlen(key);   /* span.c keeps the key's length */
    s->pool_used = (uint16_t)(s->pool_used + strlen(key) + 1);
    a->type = t;
}

/* A span as span.c builds it, without the tracer: filled by hand. */
static obs_span *span(uint8_t id, bool child)
{
    obs_span *s = calloc(1, sizeof *s);
    memset(s->ctx.trace_id, 0xab, 16);
    memset(s->ctx.span_id, id, 8);
    s->has_parent = child;
    if (child) memset(s->parent_id, 1, 8);
    s->kind = child ? OBS_SPAN_CLIENT : OBS_SPAN_SERVER;
    s->status = child ? OBS_STATUS_ERROR : OBS_STATUS_OK;
    memset(s->name, 'n', OBS_SPAN_NAME_MAX - 1);      /* the longest name */
    if (child) s->status_msg = strdup("upstream 502");
    s->start_ns = 1700000000000000000LL + id;
    s->end_ns = s->start_ns + 12345;
    s->attrs = calloc(OBS_SPAN_ATTRS_MAX, sizeof *s->attrs);
    s->cap_attrs = OBS_SPAN_ATTRS_MAX;
    s->pool = calloc(1, OBS_SPAN_POOL_MAX);
    s->pool_cap = OBS_SPAN_POOL_MAX;
    memset(s->pool, 'v', OBS_ATTR_STR_MAX - 1);        /* the longest value */
    s->pool_used = OBS_ATTR_STR_MAX;
    attr(s, "s", OBS_ATTR_STR);
    s->attrs[0].off = 0;
    s->attrs[0].v.i = OBS_ATTR_STR_MAX - 1;            /* and a string value's */
    attr(s, "i", OBS_ATTR_INT);
    s->attrs[1].v.i = INT64_MIN;
    attr(s, "d", OBS_ATTR_DOUBLE);
    s->attrs[2].v.d = child ? NAN : -0.5;
    attr(s, "b", OBS_ATTR_BOOL);
    s->attrs[3].v.b = true;
    return s;
}

static void encode_two(buf *b)
{
    obs_span *sp[2] = {span(1, false), span(2, true)};
    buf_init(b);
    obs_blob_encode(b, sp, 2);
    obs_span_free(sp[0]);
    obs_span_free(sp[1]);
}

static obs_span_view v;

static void test_round_trip(void **state)
{
    (void)state;
    buf b;
    encode_two(&b);
    obs_blob_reader r;
    assert_int_equal(obs_blob_open(&r, b.data, b.len), 0);
    assert_int_equal(obs_blob_next(&r, &v), 1);
    assert_string_equal(v.span_id, "0101010101010101");
    assert_string_equal(v.parent_span_id, "");
    assert_int_equal(v.kind, OBS_SPAN_SERVER);
    assert_int_equal(v.status, OBS_STATUS_OK);
    assert_int_equal(strlen(v.name), OBS_SPAN_NAME_MAX - 1);
    assert_int_equal(v.start_ns, 1700000000000000001LL);
    assert_int_equal(v.end_ns - v.start_ns, 12345);
    assert_int_equal(v.n_attrs, 4);
    assert_string_equal(v.attrs[0].key, "s");
    assert_int_equal(strlen(v.pool + v.attrs[0].off), OBS_ATTR_STR_MAX - 1);
    assert_true(v.attrs[1].i == INT64_MIN);
    assert_true(v.attrs[2].d == -0.5);
    assert_true(v.attrs[3].b);
    assert_int_equal(obs_blob_next(&r, &v), 1);
    assert_string_equal(v.parent_span_id, "0101010101010101");
    assert_string_equal(v.status_message, "upstream 502");
    assert_true(isnan(v.attrs[2].d));
    buf j;
    buf_init(&j);
    obs_span_view_attrs_json(&j, &v);
    assert_non_null(strstr(j.data, "\"d\":null"));
    assert_non_null(strstr(j.data, "\"i\":-9223372036854775808"));
    assert_non_null(strstr(j.data, "\"b\":true"));
    buf_free(&j);
    assert_int_equal(obs_blob_next(&r, &v), 0);
    assert_int_equal(obs_blob_next(&r, &v), 0);
    buf_free(&b);
}

/* Decodes as far as it goes: the number of spans read, -1 on an error. */
static int decode_all(const void *p, size_t len)
{
    obs_blob_reader r;
    if (obs_blob_open(&r, p, len) != 0) return -1;
    int n = 0, rc;
    while ((rc = obs_blob_next(&r, &v)) == 1) {
        /* whatever was read keeps its bounds */
        assert_true(strlen(v.name) < sizeof v.name);
        assert_true(v.n_attrs <= OBS_SPAN_ATTRS_MAX);
        for (unsigned i = 0; i < v.n_attrs; i++)
            if (v.attrs[i].type == OBS_ATTR_STR)
                assert_true(v.attrs[i].off + strlen(v.pool + v.attrs[i].off) < sizeof v.pool);
        n++;
    }
    return rc < 0 ? -1 : n;
}

static void test_truncated(void **state)
{
    (void)state;
    buf b;
    encode_two(&b);
    for (size_t len = 0; len < b.len; len++) {
        /* a copy of exactly len bytes, so ASan sees a read past it */
        unsigned char *p = malloc(len ? len : 1);
        memcpy(p, b.data, len);
        assert_int_equal(decode_all(p, len), -1);
        free(p);
    }
    assert_int_equal(decode_all(b.data, b.len), 2);
    buf_free(&b);
}

static void test_corrupt_bytes(void **state)
{
    (void)state;
    buf b;
    encode_two(&b);
    unsigned char *p = malloc(b.len);
    static const unsigned char vals[] = {0x00, 0x01, 0x20, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < b.len; i++)
        for (size_t k = 0; k < sizeof vals; k++) {
            memcpy(p, b.data, b.len);
            p[i] = vals[k];
            (void)decode_all(p, b.len);   /* any answer, within bounds */
        }
    free(p);
    buf_free(&b);
}

static void test_lies(void **state)
{
    (void)state;
    buf b;
    encode_two(&b);
    unsigned char *p = malloc(b.len + 1);
    /* a count larger than the bytes could hold */
    memcpy(p, b.data, b.len);
    p[4] = 0xff; p[5] = 0xff; p[6] = 0xff; p[7] = 0x7f;
    assert_int_equal(decode_all(p, b.len), -1);
    /* one span fewer than there are: the bytes left over are corrupt */
    memcpy(p, b.data, b.len);
    p[4] = 1;
    assert_int_equal(decode_all(p, b.len), -1);
    /* a trailing byte */
    memcpy(p, b.data, b.len);
    p[b.len] = 0;
    assert_int_equal(decode_all(p, b.len + 1), -1);
    /* more attributes than a span may have */
    memcpy(p, b.data, b.len);
    p[8 + 19] = OBS_SPAN_ATTRS_MAX + 1;
    assert_int_equal(decode_all(p, b.len), -1);
    /* a kind that does not exist, an end before the start */
    memcpy(p, b.data, b.len);
    p[8 + 17] = 9;
    assert_int_equal(decode_all(p, b.len), -1);
    memcpy(p, b.data, b.len);
    p[8 + 20 + 7] = 0x7f;          /* start_ns (bytes 28..35) very late */
    memset(p + 8 + 28, 0, 8);      /* end_ns (bytes 36..43) at 0 */
    assert_int_equal(decode_all(p, b.len), -1);
    /* not a blob at all */
    assert_int_equal(decode_all("{\"a\":1}", 7), -1);
    assert_int_equal(decode_all(NULL, 0), -1);
    free(p);
    buf_free(&b);
}

/* A hand-made span whose one string claims a length past the pool. */
static void test_string_past_pool(void **state)
{
    (void)state;
    unsigned char p[8 + 38 + 1 + 1 + 1 + 2 + 300] = {'B', 'T', 'R', 1, 1, 0, 0, 0};
    unsigned char *q = p + 8 + 16;
    q[0] = 0; q[1] = OBS_SPAN_INTERNAL; q[2] = 0; q[3] = 1;   /* one attribute */
    q += 4 + 16;
    *q++ = 0;            /* name "" */
    *q++ = 0;            /* message "" */
    *q++ = 1; *q++ = 'k'; *q++ = OBS_ATTR_STR;
    *q++ = 0x2c; *q++ = 0x01;   /* 300 bytes: more than a value may hold */
    memset(q, 'x', 300);
    assert_int_equal(decode_all(p, sizeof p), -1);
}

/* Version 2: brigade's own keys are stored as a number, other keys as
 * bytes; version 1 blobs (already in stores) still read; a number past the
 * table, or a numbered key in a version 1 blob, is corrupt. */
static void test_numbered_keys(void **state)
{
    (void)state;
    obs_span *s = span(3, false);
    s->n_attrs = 0;
    s->pool_used = OBS_ATTR_STR_MAX;
    attr(s, "gen_ai.request.model", OBS_ATTR_STR);
    s->attrs[0].off = 0;
    s->attrs[0].v.i = OBS_ATTR_STR_MAX - 1;
    attr(s, "http.response.status_code", OBS_ATTR_INT);
    s->attrs[1].v.i = 200;
    attr(s, "custom.key", OBS_ATTR_BOOL);
    s->attrs[2].v.b = false;
    buf b;
    buf_init(&b);
    obs_blob_encode(&b, &s, 1);
    obs_span_free(s);
    assert_int_equal(((unsigned char *)b.data)[3], 2);
    assert_null(memmem(b.data, b.len, "gen_ai.request.model", 20));   /* a number */
    assert_non_null(memmem(b.data, b.len, "custom.key", 10));         /* bytes */
    obs_blob_reader r;
    assert_int_equal(obs_blob_open(&r, b.data, b.len), 0);
    assert_int_equal(obs_blob_next(&r, &v), 1);
    assert_int_equal(v.n_attrs, 3);
    assert_string_equal(v.attrs[0].key, "gen_ai.request.model");
    assert_string_equal(v.attrs[1].key, "http.response.status_code");
    assert_int_equal(v.attrs[1].i, 200);
    assert_string_equal(v.attrs[2].key, "custom.key");
    assert_int_equal(obs_blob_next(&r, &v), 0);

    /* the first key's byte: the number past the table is corrupt */
    unsigned char *p = malloc(b.len);
    memcpy(p, b.data, b.len);
    size_t key_at = 8 + 38 + OBS_SPAN_NAME_MAX - 1;   /* header, fixed part, the name, "" */
    assert_true((p[key_at] & 0x80) != 0);
    p[key_at] = 0xff;
    assert_int_equal(decode_all(p, b.len), -1);
    /* a numbered key in a version 1 blob is a length of 128+: corrupt */
    memcpy(p, b.data, b.len);
    p[3] = 1;
    assert_int_equal(decode_all(p, b.len), -1);
    free(p);
    buf_free(&b);

    /* a version 1 blob as stores hold them */
    unsigned char v1[8 + 38 + 2] = {'B', 'T', 'R', 1, 1, 0, 0, 0};
    unsigned char *q = v1 + 8 + 16;
    q[0] = 0; q[1] = OBS_SPAN_INTERNAL; q[2] = 0; q[3] = 1;
    q += 4 + 16;
    *q++ = 0;
    *q++ = 0;
    *q++ = 1; *q++ = 'k';
    unsigned char with_value[sizeof v1 + 2];
    memcpy(with_value, v1, sizeof v1);
    with_value[sizeof v1] = OBS_ATTR_BOOL;
    with_value[sizeof v1 + 1] = 1;
    assert_int_equal(obs_blob_open(&r, with_value, sizeof with_value), 0);
    assert_int_equal(obs_blob_next(&r, &v), 1);
    assert_string_equal(v.attrs[0].key, "k");
    assert_true(v.attrs[0].b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt_bytes),
        cmocka_unit_test(test_lies),
        cmocka_unit_test(test_string_past_pool),
        cmocka_unit_test(test_numbered_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
