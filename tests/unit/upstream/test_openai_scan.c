/* test_openai_scan.c — openai_scan (the tree-less reading of an OpenAI
 * answer) against the cJSON reading it replaces: whenever the scanner
 * decides a text, cJSON must parse it to an object and find the same usage
 * and text length; a text cJSON refuses must never be decided. Hand-made
 * texts cover what differs between the two readers (repeated keys,
 * escapes, surrogates, \u0000, numbers, depth, trailing bytes), then
 * thousands of mutations of real answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openai_scan_ref.h"

static int decided, refused_by_cjson, delta_decided;

/* The one property: decided ⇒ cJSON reads the same. Returns whether the
 * scanner decided. */
static bool check(const char *t, size_t len, const char *field)
{
    openai_scan_result a, b;
    bool dec = openai_scan(t, len, field, &a);
    /* an agent run's reading of the same text as a chunk */
    int delta = ref_delta_agrees(t, len);
    if (delta < 0) fail();
    if (delta > 0) delta_decided++;
    int ref = ref_read(t, len, field, &b);
    if (ref < 0) refused_by_cjson++;
    if (!dec) return false;
    decided++;
    bool chunk_differs = a.usage_member != b.usage_member || a.type_member != b.type_member ||
                         a.text_choices != b.text_choices || a.choice_slots != b.choice_slots ||
                         (!a.type_member && a.quiet != b.quiet);
    if (!strcmp(field, "delta") && ref == 0 && !ref_ids_agree(t, len, &a)) {
        fprintf(stderr, "id/model/created differ on [%.*s]\n", (int)len, t);
        chunk_differs = true;
    }
    if (chunk_differs)
        fprintf(stderr, "chunk facts differ on [%.*s]: scan usage/type %d/%d text %u slots %u quiet %d, "
                "cJSON %d/%d %u %u %d\n", (int)len, t, a.usage_member, a.type_member, a.text_choices,
                a.choice_slots, a.quiet, b.usage_member, b.type_member, b.text_choices, b.choice_slots, b.quiet);
    if (ref != 0 || a.have_usage != b.have_usage || a.in_tok != b.in_tok || chunk_differs ||
        a.out_tok != b.out_tok || a.text_bytes != b.text_bytes) {
        fprintf(stderr, "differs on [%.*s]: scan usage=%d %lld/%lld text=%zu, cJSON %d usage=%d "
                "%lld/%lld text=%zu\n", (int)len, t, a.have_usage, (long long)a.in_tok,
                (long long)a.out_tok, a.text_bytes, ref, b.have_usage, (long long)b.in_tok,
                (long long)b.out_tok, b.text_bytes);
        fail();
    }
    return true;
}

static bool check_s(const char *t) { return check(t, strlen(t), "message"); }

static const char *answer =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello \\u00e9\\ud83d\\ude00"
    " there\\n\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"get\","
    "\"arguments\":\"{\\\"a\\\":1}\"}}]},\"finish_reason\":\"stop\"},{\"index\":1,\"message\":"
    "{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":16,\"total_tokens\":28}}";

static const char *chunk =
    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \\\"q\\\"\"}}],"
    "\"usage\":null}";

static void test_answers_decided(void **state)
{
    (void)state;
    openai_scan_result r;
    assert_true(openai_scan(answer, strlen(answer), "message", &r));
    assert_true(r.have_usage);
    assert_int_equal(r.in_tok, 12);
    assert_int_equal(r.out_tok, 16);
    /* with usage the text is not counted (only an estimate would use it) */
    assert_int_equal(r.text_bytes, 0);
    assert_true(check_s(answer));
    /* without: "Hello " 6 + é 2 + 😀 4 + " there\n" 7, "get" 3, {"a":1} 7, "x" 1 */
    char bare[1024];
    const char *u = strstr(answer, "\"usage\"");
    int bl = snprintf(bare, sizeof bare, "%.*s\"usage\":null}", (int)(u - answer), answer);
    assert_true(openai_scan(bare, (size_t)bl, "message", &r));
    assert_false(r.have_usage);
    assert_int_equal(r.text_bytes, 6 + 2 + 4 + 7 + 3 + 7 + 1);
    assert_true(check_s(bare));
    assert_true(check(chunk, strlen(chunk), "delta"));
    assert_true(openai_scan(chunk, strlen(chunk), "delta", &r));
    assert_false(r.have_usage);
    assert_int_equal(r.text_bytes, 7);
    /* whitespace around, and a text not NUL-terminated (a body buffer) */
    char buf[64];
    memcpy(buf, " {\"a\":1}\n", 9);
    memset(buf + 9, '}', sizeof buf - 9);
    assert_true(openai_scan(buf, 9, "message", &r));
}

static void test_hand_cases(void **state)
{
    (void)state;
    /* decided, and equal to cJSON */
    const char *same[] = {
        "{}",
        "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":9}}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"},\"message\":{\"content\":\"bbbb\"}}]}",
        "{\"choices\":{\"x\":{\"message\":{\"content\":\"abc\"}},\"y\":{\"message\":{\"content\":\"d\"}}}}",
        "{\"choices\":[{\"message\":[{\"content\":\"abc\"}]}]}",
        "{\"choices\":[1,\"s\",null,{\"message\":{\"content\":5}}]}",
        "{\"choices\":\"abc\"}",
        "{\"choices\":[{\"message\":{\"tool_calls\":{\"k\":{\"function\":{\"name\":\"ab\",\"arguments\":\"c\"}}}}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":[\"name\"]},{\"function\":{\"name\":1}}]}}]}",
        "{\"usage\":{\"prompt_tokens\":-1,\"completion_tokens\":2}}",
        "{\"usage\":{\"prompt_tokens\":1e15,\"completion_tokens\":2.9}}",
        "{\"usage\":{\"prompt_tokens\":1e16,\"completion_tokens\":2}}",
        "{\"usage\":{\"prompt_tokens\":1E+2,\"completion_tokens\":-0.0}}",
        "{\"usage\":{\"prompt_tokens\":\"1\",\"completion_tokens\":2}}",
        "{\"usage\":[1,2]}",
        "{\"usage\":{\"prompt_tokens\":1}}",
        "{\"usage\":{\"prompt_tokens\":1e400,\"completion_tokens\":1}}",
        "{\"choices\":[{\"message\":{\"content\":\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u07ff\\u0800\\uffff\"}}]}",
        "{\"choices\":[{\"message\":{\"content\":\"\xc3\xa9\xff raw bytes\"}}]}",
        "{\"Choices\":[{\"message\":{\"content\":\"abc\"}}],\"usage \":{}}",
        "{\"a\":[[[[{\"b\":[true,false,null]}]]]],\"choices\":[]}",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        if (!check_s(same[i])) fail_msg("not decided: %s", same[i]);
    }
    /* left to cJSON (it may accept or refuse; never decided here) */
    const char *left[] = {
        "[]", "\"s\"", "1", "", " ", "{", "{\"a\":1}x", "{\"a\":1,}", "{\"a\" 1}", "{'a':1}",
        "{\"us\\u0061ge\":{\"prompt_tokens\":1,\"completion_tokens\":1}}",   /* escaped key */
        "{\"choices\":[{\"message\":{\"content\":\"a\\u0000b\"}}]}",          /* \u0000 */
        "{\"c\":\"\\ud800\"}", "{\"c\":\"\\udc00\"}", "{\"c\":\"\\ud800\\u0041\"}",
        "{\"c\":\"\\x\"}", "{\"c\":\"\\u12g4\"}", "{\"c\":\"a\tb\"}",
        "{\"n\":01}", "{\"n\":1.}", "{\"n\":.5}", "{\"n\":+1}", "{\"n\":1e}", "{\"n\":-}",
        "{\"n\":1234567890123456789012345678901234567890123456789012345678901234}",
        "{\"a\":tru}", "{\"a\":nul}", "\xef\xbb\xbf{}", "{\"a\":1}\f", "{\"a\"\v:1}",
    };
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        openai_scan_result r;
        if (openai_scan(left[i], strlen(left[i]), "message", &r)) fail_msg("decided: %s", left[i]);
        check_s(left[i]);
    }
    /* a raw NUL inside the length */
    openai_scan_result r;
    assert_false(openai_scan("{\"a\":\"x\0y\"}", 11, "message", &r));
    /* nesting: 127 levels inside the root are decided, deeper is left to cJSON */
    char deep[600];
    for (int d = 126; d <= 129; d++) {
        size_t n = 0;
        deep[n++] = '{';
        memcpy(deep + n, "\"a\":", 4);
        n += 4;
        for (int i = 0; i < d; i++) deep[n++] = '[';
        for (int i = 0; i < d; i++) deep[n++] = ']';
        deep[n++] = '}';
        bool dec = check(deep, n, "message");
        assert_true(dec == (d < 128));
    }
}

/* Stream chunks: what the output cap counts and what is still "quiet". */
static void test_chunk_facts(void **state)
{
    (void)state;
    static const struct { const char *t; uint32_t text, slots; bool quiet; } cases[] = {
        {"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}", 0, 1, true},
        {"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null},\"finish_reason\":null}]}", 0, 1, true},
        {"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}", 1, 1, false},
        {"{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}", 0, 1, false},
        {"{\"choices\":[],\"usage\":null}", 0, 0, false},
        {"{\"choices\":[{\"delta\":{}}],\"usage\":null}", 0, 0, false},
        {"{\"choices\":{\"a\":{\"delta\":{}}}}", 0, 0, false},
        {"{\"choices\":[{\"delta\":[1]}]}", 0, 0, false},
        {"{\"choices\":[{\"delta\":[]}]}", 0, 0, true},
        {"{\"choices\":[{\"delta\":\"s\"},1,null]}", 0, 0, true},
        {"{\"choices\":[{\"delta\":{\"content\":\"\",\"content\":\"x\"}}]}", 0, 0, false},
        {"{\"choices\":[{\"delta\":{\"refusal\":\"no\"}},{\"index\":3.7,\"delta\":{\"reasoning\":\"r\"}}]}", 2, 4, false},
        {"{\"choices\":[{\"index\":127,\"delta\":{\"reasoning_content\":\"r\"}},{\"index\":128},{\"index\":-0.0}]}", 1, 128, false},
        {"{\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"\"}},{\"function\":{\"arguments\":\"{\"}}]}}]}", 1, 0, false},
        {"{\"choices\":[{\"delta\":{\"tool_calls\":{\"k\":{\"function\":{\"arguments\":\"x\"}}}}}]}", 1, 0, false},
        {"{\"choices\":[{\"index\":\"1\",\"delta\":{\"content\":\"\\n\"}}]}", 1, 0, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *t = cases[i].t;
        openai_scan_result r;
        if (!check(t, strlen(t), "delta")) fail_msg("not decided: %s", t);
        assert_true(openai_scan(t, strlen(t), "delta", &r));
        if (r.text_choices != cases[i].text || r.choice_slots != cases[i].slots || r.quiet != cases[i].quiet)
            fail_msg("%s: text %u slots %u quiet %d", t, r.text_choices, r.choice_slots, r.quiet);
    }
    openai_scan_result r;
    /* id, model and created, as a cut stream's end chunks repeat them */
    const char *ids[] = {
        "{\"id\":\"chatcmpl-1\",\"model\":\"m\",\"created\":17,\"choices\":[]}",
        "{\"id\":\"a\\u00e9\",\"model\":\"m\",\"choices\":[]}",     /* escaped: not given */
        "{\"id\":7,\"model\":[\"m\"],\"created\":\"1\",\"choices\":[]}", /* not strings */
        "{\"id\":\"x\",\"id\":\"y\",\"model\":\"\",\"created\":-1.5e3}",
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (!check(ids[i], strlen(ids[i]), "delta")) fail_msg("not decided: %s", ids[i]);
    assert_true(openai_scan(ids[0], strlen(ids[0]), "delta", &r));
    assert_true(r.ids_plain && r.id_len == 10 && memcmp(r.id, "chatcmpl-1", 10) == 0 && r.created == 17);
    assert_true(openai_scan(ids[1], strlen(ids[1]), "delta", &r));
    assert_false(r.ids_plain);
    assert_null(r.id);
    const char *ev = "{\"type\":\"response.created\",\"response\":{}}";
    assert_true(openai_scan(ev, strlen(ev), "delta", &r));
    assert_true(r.type_member);
}

/* An agent run's reading of a chunk (openai_scan_delta): the first choice's
 * content and tool call fragments as cJSON reads them, on the shapes where
 * cJSON's reading is not the obvious one — choices an object, a choice or a
 * call that is not an object, indexes that are not small integers, escapes
 * and surrogate pairs, repeated keys. Each must be decided and agree. */
static void test_run_delta(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\te\\u00e9\\u20ac\\ud83d\\ude00\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":null}}]}",
        "{\"choices\":[{\"delta\":{\"content\":5}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\",\"content\":\"y\"}}]}",
        "{\"choices\":{\"first\":{\"delta\":{\"content\":\"from an object\"}}}}",
        "{\"choices\":[[{\"delta\":{\"content\":\"nested\"}}]]}",
        "{\"choices\":[{\"delta\":{\"content\":\"second ignored\"}},{\"delta\":{\"content\":\"no\"}}]}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}",
        "{\"choices\":\"x\"}",
        "{}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"clock\",\"arguments\":\"\"}}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"tz\\\":\"}},"
        "{\"index\":1,\"function\":{\"arguments\":\"\\\"UTC\\\"}\"}}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":{\"a\":{\"index\":2,\"id\":\"k\"},\"b\":{\"index\":1}}}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[1,\"s\",null,[{\"index\":3}],{}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":2.9},{\"index\":-0.5},{\"index\":-3},"
        "{\"index\":1e300},{\"index\":-1e300},{\"index\":\"1\"},{\"index\":true},{\"index\":2147483647.5}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,\"index\":2,\"id\":\"a\",\"id\":\"b\","
        "\"function\":{\"name\":\"f\",\"name\":\"g\"},\"function\":{\"name\":\"h\"}}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":\"not an object\",\"id\":7},"
        "{\"function\":[\"name\",\"x\"]},{\"function\":{\"name\":null,\"arguments\":{}}}]}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"t\",\"tool_calls\":[]}}],\"id\":\"c\",\"usage\":null}",
        "  {\"choices\":[{\"delta\":{\"content\":\"spaces\"}}]}  ",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int r = ref_delta_agrees(cases[i], strlen(cases[i]));
        if (r < 0) fail_msg("differs: %s", cases[i]);
        if (r == 0) fail_msg("not decided: %s", cases[i]);
    }
    /* not decided: what cJSON reads another way (or not at all) */
    static const char *const refused[] = {
        "{\"choices\":[{\"delta\":{\"content\":\"a\\u0000b\"}}]}",      /* cJSON cuts at \u0000 */
        "{\"choices\":[{\"delta\":{\"content\":\"\\ud83d\"}}]}",        /* a lone surrogate */
        "{\"choices\":[{\"delta\":{\"cont\\u0065nt\":\"x\"}}]}",        /* an escape in a key */
        "{\"choices\":[]} trailing",
        "[{\"choices\":[]}]",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        openai_scan_str c;
        if (openai_scan_delta(refused[i], strlen(refused[i]), &c, ref_on_call, &(ref_line){0}))
            fail_msg("decided: %s", refused[i]);
    }
    /* the decoded text itself, on one case */
    const char *t = "{\"choices\":[{\"delta\":{\"content\":\"\\u00e9\\ud83d\\ude00\\n\"}}]}";
    openai_scan_str c;
    ref_line none = {0};
    assert_true(openai_scan_delta(t, strlen(t), &c, ref_on_call, &none));
    assert_false(c.plain);
    char out[64];
    assert_int_equal(openai_scan_str_decode(&c, out), 7);
    assert_string_equal(out, "\xc3\xa9\xf0\x9f\x98\x80\n");
    free(none.p);
}

/* A request's top-level members, for the streamed request body. */
static const char *const stream_names[2] = {"stream", "stream_options"};

static bool check_members(const char *t, size_t len)
{
    openai_scan_member m[2];
    if (!openai_scan_members(t, len, stream_names, m)) return false;
    if (!ref_members_agree(t, len, stream_names, m)) fail_msg("members differ on [%.*s]", (int)len, t);
    return true;
}

static void test_request_members(void **state)
{
    (void)state;
    openai_scan_member m[2];
    const char *a = " {\"model\":\"m\",\"stream\" : true,\"messages\":[{\"stream\":1}]}\n";
    assert_true(openai_scan_members(a, strlen(a), stream_names, m));
    assert_int_equal(m[0].count, 1);
    assert_int_equal(m[0].value_len, 4);
    assert_memory_equal(m[0].value, "true", 4);
    assert_int_equal(m[1].count, 0);
    assert_null(m[1].value);
    assert_true(check_members(a, strlen(a)));
    const char *b = "{\"stream\":true,\"stream_options\":{\"include_usage\":false},\"stream\":false}";
    assert_true(openai_scan_members(b, strlen(b), stream_names, m));
    assert_int_equal(m[0].count, 2);
    assert_int_equal(m[1].count, 1);
    assert_true(check_members(b, strlen(b)));
    /* an escaped key may spell a name: never decided */
    const char *c = "{\"stream\":true,\"stream_\\u006fptions\":{}}";
    assert_false(openai_scan_members(c, strlen(c), stream_names, m));
    assert_false(openai_scan_members("[]", 2, stream_names, m));
}

/* Strings are skipped eight bytes at a time: a control byte (refused in
 * a JSON string), a quote (ends it early) or a backslash (begins an
 * escape) at any offset of a long string, in a key or a value, is seen —
 * the text is not decided, or (a quote or backslash that keeps it valid)
 * decided as cJSON reads it; and non-ASCII bytes are plain text. */
static void test_long_strings(void **state)
{
    (void)state;
    const char *base = "{\"choices\":[{\"message\":{\"content\":\"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ\"}}],"
                       "\"a_long_member_name_of_forty_bytes_or_so_x\":1,\"usage\":{\"prompt_tokens\":1}}";   /* no usage: the text is counted */
    const char *content = strstr(base, "abcdef"), *key = strstr(base, "a_long");
    size_t n = strlen(base);
    char t[512];
    openai_scan_result r;
    openai_scan_member m[2];
    assert_true(openai_scan(base, n, "message", &r));
    assert_int_equal(r.text_bytes, 46);
    const unsigned char bad[] = {0x00, 0x01, 0x09, 0x0a, 0x1f};
    for (int which = 0; which < 2; which++) {
        size_t from = (size_t)((which ? key : content) - base), len = which ? 40 : 46;
        for (size_t at = from; at < from + len; at++) {
            for (size_t k = 0; k < sizeof bad; k++) {
                memcpy(t, base, n);
                t[at] = (char)bad[k];
                assert_false(openai_scan(t, n, "message", &r));
                assert_false(openai_scan_members(t, n, stream_names, m));
            }
            memcpy(t, base, n);
            t[at] = '\\';                              /* \ then a letter or digit: mostly a bad escape */
            check(t, n, "message");
            check_members(t, n);
            t[at] = '"';
            check(t, n, "message");
            check_members(t, n);
            memcpy(t, base, n);
            t[at] = (char)0xc3;                          /* U+00E9 spread over two bytes: plain text */
            if (at + 1 < from + len) {
                t[at + 1] = (char)0xa9;
                assert_true(openai_scan(t, n, "message", &r));
                assert_true(check_members(t, n));
            }
        }
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

/* Mutations of real answers: byte flips, deletions, insertions of the
 * characters that matter to a JSON reader, duplicated spans. */
static void test_mutations(void **state)
{
    (void)state;
    static const char ins[] = "{}[]\",:\\u0123456789-+.eE tfn\x01\x7f\xc3\xa9";
    const char *seeds[] = {answer, chunk,
        "{\"choices\":[{\"message\":{\"content\":\"\\ud83d\\ude00\\u00e9\"}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}",
        "{\"id\":\"c\\u0041\",\"model\":\"m\",\"created\":5,\"choices\":[{\"index\":1,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"arguments\":\"x\"}}]},\"finish_reason\":null}]}",
        "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":false}",
        /* long strings: a control byte, quote or backslash put anywhere in
         * them must be found by the scan of eight bytes at a time */
        "{\"choices\":[{\"message\":{\"content\":\"The quick brown fox jumps over the lazy dog, twice: "
        "the quick brown fox jumps over the lazy dog \\\"again\\\" \u00e9\u00e9 caf\xc3\xa9 and done.\"}}],"
        "\"usage\":{\"prompt_tokens\":31,\"completion_tokens\":47},\"system_fingerprint_of_some_length\":"
        "\"fp_0123456789abcdef0123456789abcdef\"}"};
    char t[1024];
    decided = refused_by_cjson = delta_decided = 0;
    for (int iter = 0; iter < 120000; iter++) {
        const char *seed = seeds[iter % 6];
        size_t n = strlen(seed);
        memcpy(t, seed, n);
        int muts = 1 + (int)(rnd() % 3);
        for (int m = 0; m < muts && n > 2; m++) {
            size_t at = rnd() % n;
            switch (rnd() % 4) {
            case 0: t[at] = ins[rnd() % (sizeof ins - 1)]; break;
            case 1: memmove(t + at, t + at + 1, n - at - 1); n--; break;
            case 2:
                if (n + 1 < sizeof t) {
                    memmove(t + at + 1, t + at, n - at);
                    t[at] = ins[rnd() % (sizeof ins - 1)];
                    n++;
                }
                break;
            default: {
                size_t span = 1 + rnd() % 24;
                if (at + span <= n && n + span < sizeof t) {
                    memmove(t + at + span, t + at, n - at);
                    n += span;
                }
            }
            }
        }
        check(t, n, iter % 6 == 1 || iter % 6 == 3 ? "delta" : "message");
        check_members(t, n);
    }
    /* the property was exercised both ways */
    assert_true(delta_decided > 1000);
    assert_true(decided > 1000);
    assert_true(refused_by_cjson > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_decided),
        cmocka_unit_test(test_hand_cases),
        cmocka_unit_test(test_chunk_facts),
        cmocka_unit_test(test_run_delta),
        cmocka_unit_test(test_request_members),
        cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
