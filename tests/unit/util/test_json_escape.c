/* test_json_escape.c — the one JSON string escaper: what is escaped and how
 * (quote, backslash, the short forms, other control bytes and DEL as
 * \u00XX), well-formed UTF-8 kept, every byte of broken UTF-8 (stray
 * continuation, overlong, surrogate, above U+10FFFF, cut sequence) replaced
 * by U+FFFD, and the bounded form cutting only at whole characters. Every
 * output is checked to parse back as the JSON string it should be. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_escape.h"
#include "util/utf8.h"

#define FFFD "\xef\xbf\xbd"

typedef struct escape_case {
    const char *in;
    size_t in_len;     /* 0: strlen(in) */
    const char *out;   /* the literal, with quotes */
} escape_case;

static const escape_case cases[] = {
    {"", 0, "\"\""},
    {"plain text", 0, "\"plain text\""},
    {"a\"b\\c", 0, "\"a\\\"b\\\\c\""},
    {"line\nbreak\r\ttab", 0, "\"line\\nbreak\\r\\ttab\""},
    {"\b\f", 0, "\"\\u0008\\u000c\""},
    {"\x01" "ctl\x1f", 0, "\"\\u0001ctl\\u001f\""},
    {"del\x7f", 0, "\"del\\u007f\""},
    {"nul\0in", 6, "\"nul\\u0000in\""},
    {"/ slash stays", 0, "\"/ slash stays\""},
    /* well-formed UTF-8 of each length passes as it is */
    {"caf\xc3\xa9", 0, "\"caf\xc3\xa9\""},
    {"\xe2\x82\xac euro", 0, "\"\xe2\x82\xac euro\""},
    {"\xf0\x9f\x98\x80", 0, "\"\xf0\x9f\x98\x80\""},
    {"\xed\x9f\xbf \xee\x80\x80 \xf4\x8f\xbf\xbf", 0, "\"\xed\x9f\xbf \xee\x80\x80 \xf4\x8f\xbf\xbf\""},
    /* broken UTF-8: each bad byte becomes U+FFFD */
    {"bad\xff\xfe" "end", 0, "\"bad" FFFD FFFD "end\""},
    {"\x80", 0, "\"" FFFD "\""},                                   /* stray continuation */
    {"\xc0\xaf", 0, "\"" FFFD FFFD "\""},                          /* overlong '/' */
    {"\xe0\x80\xaf", 0, "\"" FFFD FFFD FFFD "\""},                 /* overlong, 3 bytes */
    {"\xed\xa0\x80", 0, "\"" FFFD FFFD FFFD "\""},                 /* surrogate U+D800 */
    {"\xf4\x90\x80\x80", 0, "\"" FFFD FFFD FFFD FFFD "\""},        /* above U+10FFFF */
    {"\xf5\x80", 0, "\"" FFFD FFFD "\""},
    {"cut\xe2\x82", 0, "\"cut" FFFD FFFD "\""},                   /* sequence cut at the end */
    {"\xe2\x82" "a", 0, "\"" FFFD FFFD "a\""},                    /* cut before ASCII */
    {"\xc3\"", 0, "\"" FFFD "\\\"\""},                             /* lead byte before an escape */
};

static size_t case_len(const escape_case *c) { return c->in_len ? c->in_len : strlen(c->in); }

/* The literal parses as JSON, to a string of valid UTF-8. */
static void assert_valid_literal(const char *lit, size_t n)
{
    assert_true(utf8_valid(lit, n));
    cJSON *j = cJSON_ParseWithLength(lit, n);
    assert_non_null(j);
    assert_true(cJSON_IsString(j));
    cJSON_Delete(j);
}

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf b;
        buf_init(&b);
        json_escape_string(&b, cases[i].in, case_len(&cases[i]));
        assert_int_equal(b.len, strlen(cases[i].out));
        assert_memory_equal(b.data, cases[i].out, b.len);
        assert_valid_literal(b.data, b.len);
        buf_free(&b);
    }
}

/* The body form is the literal without its quotes, and appends. */
static void test_body_appends(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    buf_append(&b, "{\"k\":\"", 6);
    json_escape_body(&b, "x\"y", 3);
    json_escape_body(&b, "\x7f", 1);
    buf_append(&b, "\"}", 2);
    assert_int_equal(b.len, strlen("{\"k\":\"x\\\"y\\u007f\"}"));
    assert_memory_equal(b.data, "{\"k\":\"x\\\"y\\u007f\"}", b.len);
    /* nothing to write: s may be NULL */
    b.len = 0;
    json_escape_body(&b, NULL, 0);
    assert_int_equal(b.len, 0);
    json_escape_string(&b, NULL, 0);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "\"\"", 2);
    char out[1];
    assert_int_equal(json_escape_into(out, sizeof out, NULL, 0), 0);
    buf_free(&b);
}

/* With room for all, json_escape_into writes what json_escape_body does. */
static void test_into_matches_body(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = case_len(&cases[i]);
        char out[256];
        size_t w = json_escape_into(out, n * JSON_ESCAPE_MAX_GROWTH, cases[i].in, n);
        buf b;
        buf_init(&b);
        json_escape_body(&b, cases[i].in, n);
        assert_int_equal(w, b.len);
        assert_memory_equal(out, b.data, w);
        buf_free(&b);
    }
}

/* A short buffer gets a prefix of the full output that ends at a whole
 * character or escape, at every cap, and never a byte past the cap. */
static void test_into_cuts_whole(void **state)
{
    (void)state;
    const char *in = "ab\xe2\x82\xac\"c\x01\xf0\x9f\x98\x80\xff" "d";
    size_t n = strlen(in);
    buf full;
    buf_init(&full);
    json_escape_body(&full, in, n);
    for (size_t cap = 0; cap <= full.len + 2; cap++) {
        char out[128];
        memset(out, 'Z', sizeof out);
        size_t w = json_escape_into(out, cap, in, n);
        assert_true(w <= cap);
        assert_int_equal(out[cap], 'Z');
        assert_memory_equal(out, full.data, w);
        if (cap >= full.len) assert_int_equal(w, full.len);
        else assert_true(cap - w < JSON_ESCAPE_MAX_GROWTH);   /* stopped only at what did not fit */
        char lit[130];
        lit[0] = '"';
        memcpy(lit + 1, out, w);
        lit[w + 1] = '"';
        assert_valid_literal(lit, w + 2);
    }
    buf_free(&full);
}

/* Every single byte, and every pair of bytes, makes a valid literal that
 * parses back; for well-formed input it parses back to the input. */
static void test_every_byte_pair(void **state)
{
    (void)state;
    buf b;
    buf_init(&b);
    for (unsigned x = 0; x < 256; x++) {
        for (unsigned y = 0; y < 256; y++) {
            char in[2] = {(char)x, (char)y};
            b.len = 0;
            json_escape_string(&b, in, 2);
            assert_true(utf8_valid(b.data, b.len));
            cJSON *j = cJSON_ParseWithLength(b.data, b.len);
            assert_non_null(j);
            assert_true(cJSON_IsString(j));
            if (x && y && utf8_valid(in, 2)) assert_memory_equal(j->valuestring, in, 2);
            cJSON_Delete(j);
        }
    }
    buf_free(&b);
}

/* A byte or a pair of bytes of every interesting kind (controls, the
 * quote, the backslash, DEL, UTF-8 leads, continuation and broken bytes,
 * and their plain neighbours 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7e) at every
 * offset of a 40-byte plain text is escaped exactly as the pair alone is:
 * the runs before and after it are copied whole, nothing in them is let
 * through that should not be, and the escape is written in place. */
static void test_every_offset(void **state)
{
    (void)state;
    static const unsigned char odd[] = {0x00, 0x01, 0x08, 0x0a, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c,
                                        0x5d, 0x7e, 0x7f, 0x80, 0xa9, 0xbf, 0xc3, 0xe2, 0xf0, 0xff};
    const size_t n_odd = sizeof odd, len = 40;
    buf got, pair;
    buf_init(&got);
    buf_init(&pair);
    for (size_t i = 0; i < n_odd; i++) {
        for (size_t j = 0; j <= n_odd; j++) {              /* j == n_odd: the byte alone */
            size_t k = j < n_odd ? 2 : 1;
            char two[2] = {(char)odd[i], j < n_odd ? (char)odd[j] : 0};
            pair.len = 0;
            json_escape_body(&pair, two, k);
            for (size_t at = 0; at + k <= len; at++) {
                char in[40];
                memset(in, 'x', sizeof in);
                memcpy(in + at, two, k);
                got.len = 0;
                json_escape_body(&got, in, len);
                /* the plain filler stays as it is around the pair's escape */
                assert_int_equal(got.len, len - k + pair.len);
                assert_memory_equal(got.data, in, at);
                assert_memory_equal(got.data + at, pair.data, pair.len);
                assert_memory_equal(got.data + at + pair.len, in + at + k, len - at - k);
            }
        }
    }
    buf_free(&got);
    buf_free(&pair);
}

/* A long plain text goes through whole (the run path), around escapes. */
static void test_long_runs(void **state)
{
    (void)state;
    size_t n = 100000;
    char *in = malloc(n);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++) in[i] = (char)('a' + i % 26);
    in[5000] = '"';
    in[n - 1] = '\n';
    buf b;
    buf_init(&b);
    json_escape_string(&b, in, n);
    assert_int_equal(b.len, n + 2 + 2);
    assert_memory_equal(b.data + 1, in, 5000);
    assert_memory_equal(b.data + b.len - 3, "\\n\"", 3);
    free(in);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_body_appends),
        cmocka_unit_test(test_into_matches_body),
        cmocka_unit_test(test_into_cuts_whole),
        cmocka_unit_test(test_every_byte_pair),
        cmocka_unit_test(test_long_runs),
        cmocka_unit_test(test_every_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
