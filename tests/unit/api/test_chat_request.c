/* test_chat_request.c — the gateway's request check and rewrite: what is
 * refused (with which status, code and param), and that an accepted body
 * reaches the provider with only "model" changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/chat_fields.h"
#include "api/chat_request.h"
#include "api/chat_scan.h"
#include "forwarded_view.h"
#include "util/json_strict.h"
#include "util/utf8.h"

static brigade_config cfg;

static int setup(void **state)
{
    (void)state;
    config_defaults(&cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    config_free(&cfg);
    return 0;
}

static void expect_refused(const char *body, int status, const char *code, const char *param)
{
    chat_request r;
    chat_request_error e;
    assert_false(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    assert_int_equal(e.status, status);
    assert_string_equal(e.code, code);
    assert_string_equal(e.param, param ? param : "");
    assert_true(strlen(e.message) > 10);
}

static void test_accepts_and_rewrites_model(void **state)
{
    (void)state;
    const model_cfg *m = config_find_model(&cfg, "mock-small");
    assert_non_null(m);
    const char *body = "{\"model\":\"mock-small\",\"temperature\":0.5,\"tools\":[{\"type\":\"function\","
                       "\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    chat_request r;
    chat_request_error e;
    assert_true(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    assert_ptr_equal(r.model, m);
    assert_true(r.stream);
    assert_true(r.client_wants_usage);
    cJSON *out = cJSON_Parse(r.upstream_body);
    assert_non_null(out);
    assert_string_equal(cJSON_GetObjectItem(out, "model")->valuestring, m->upstream_model);
    /* everything else passes through untouched */
    assert_true(cJSON_GetObjectItem(out, "temperature")->valuedouble == 0.5);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(out, "tools"), 0), "type")->valuestring,
                        "function");
    cJSON_Delete(out);
    chat_request_free(&r);
}

/* A model whose provider knows it by another name: "model" is rewritten,
 * the rest re-encoded unchanged. (Same names: the bytes are forwarded.) */
static void test_rewrites_to_the_upstream_name(void **state)
{
    (void)state;
    model_cfg *m = &cfg.models[1];
    char *saved = m->upstream_model;
    m->upstream_model = "provider-name-7";
    char body[200];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"top_p\":0.25,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
             m->name);
    chat_request r;
    chat_request_error e;
    assert_true(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    cJSON *out = cJSON_Parse(r.upstream_body);
    assert_non_null(out);
    assert_string_equal(cJSON_GetObjectItem(out, "model")->valuestring, "provider-name-7");
    assert_true(cJSON_GetObjectItem(out, "top_p")->valuedouble == 0.25);
    assert_int_equal(cJSON_GetObjectItem(out, "max_completion_tokens")->valueint, m->max_output_tokens);
    cJSON_Delete(out);
    chat_request_free(&r);
    m->upstream_model = saved;

    /* same name, the client's own output cap: byte for byte */
    snprintf(body, sizeof body,
             "{ \"model\" : \"%s\", \"max_tokens\": 7, \"messages\":[{\"role\":\"user\"}] }", m->name);
    assert_true(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    assert_int_equal(r.upstream_body_len, strlen(body));
    assert_memory_equal(r.upstream_body, body, strlen(body));
    assert_int_equal(r.max_output_tokens, 7);
    chat_request_free(&r);

    /* no cap: the model's is added (the reservation is priced on it), the
     * client's bytes otherwise as they came */
    snprintf(body, sizeof body,
             " { \"model\" : \"%s\", \"messages\":[{\"role\":\"user\"}] }", m->name);
    assert_true(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    char want[300];
    snprintf(want, sizeof want, " {\"max_completion_tokens\":%u, \"model\" : \"%s\", \"messages\":[{\"role\":\"user\"}] }",
             m->max_output_tokens, m->name);
    assert_int_equal(r.upstream_body_len, strlen(want));
    assert_memory_equal(r.upstream_body, want, strlen(want));
    assert_int_equal(r.max_output_tokens, m->max_output_tokens);
    chat_request_free(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("{\"model\":\"mock-small\",", 400, "invalid_json", NULL);
    expect_refused("[1,2]", 400, "invalid_json", NULL);
    expect_refused("{\"model\":\"mock-small\",\"messages\":[]} x", 400, "invalid_json", NULL);
    expect_refused("{\"messages\":[{\"role\":\"user\"}]}", 400, "missing_field", "model");
    expect_refused("{\"model\":7,\"messages\":[{\"role\":\"user\"}]}", 400, "invalid_value", "model");
    expect_refused("{\"model\":\"gpt-nope\",\"messages\":[{\"role\":\"user\"}]}", 404,
                   "model_not_found", "model");
    expect_refused("{\"model\":\"mock-small\"}", 400, "missing_field", "messages");
    expect_refused("{\"model\":\"mock-small\",\"messages\":[]}", 400, "invalid_value", "messages");
    expect_refused("{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"},{\"content\":\"x\"}]}",
                   400, "invalid_value", "messages[1]");
    expect_refused("{\"model\":\"mock-small\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\"}]}",
                   400, "invalid_type", "stream");
    expect_refused("{\"model\":\"mock-small\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\"}]}",
                   400, "invalid_value", "max_tokens");
    expect_refused("{\"model\":\"mock-small\",\"max_tokens\":1.5,\"messages\":[{\"role\":\"user\"}]}",
                   400, "invalid_value", "max_tokens");
    expect_refused("{\"model\":\"mock-small\",\"max_completion_tokens\":999999999,\"messages\":[{\"role\":\"user\"}]}",
                   400, "invalid_value", "max_completion_tokens");
    expect_refused("", 400, "missing_body", NULL);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    const char body[] = "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}";
    chat_request r;
    chat_request_error e;
    assert_false(chat_request_parse(body, sizeof body - 1, &cfg, &r, &e));
    assert_string_equal(e.code, "invalid_utf8");
}

#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

/* The attacks of issue 10: a second max_tokens or model after the governed
 * one. cJSON reads the first, the provider the last: refused, naming the
 * key. */
static void test_repeated_keys_refused(void **state)
{
    (void)state;
    expect_refused("{\"model\":\"mock-small\",\"max_tokens\":1," MSGS ",\"max_tokens\":1000000}",
                   400, "duplicate_key", "max_tokens");
    expect_refused("{\"model\":\"mock-small\"," MSGS ",\"model\":\"mock-large\"}", 400,
                   "duplicate_key", "model");
    /* spelled differently, the same key once decoded */
    expect_refused("{\"model\":\"mock-small\"," MSGS ",\"\\u006dodel\":\"mock-large\"}", 400,
                   "duplicate_key", "model");
    /* any depth brigade or the provider reads */
    expect_refused("{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"a\","
                   "\"role\":\"system\"}]}", 400, "duplicate_key", "messages[0].role");
    expect_refused("{\"model\":\"mock-small\"," MSGS ",\"stream_options\":{\"include_usage\":false,"
                   "\"include_usage\":true}}", 400, "duplicate_key", "stream_options.include_usage");
    expect_refused("{\"model\":\"mock-small\"," MSGS ",\"tools\":[{\"type\":\"function\",\"function\":"
                   "{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"type\":\"string\"}}}]}", 400,
                   "duplicate_key", "tools[0].function.parameters.type");
    chat_request r;
    chat_request_error e;
    const char *body = "{\"model\":\"mock-small\",\"n\":1," MSGS ",\"n\":64}";
    assert_false(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    assert_non_null(strstr(e.message, "repeats the key \"n\""));
    assert_string_equal(e.type, "invalid_request_error");
}

/* NUL: cJSON cuts "max_tokens\u0000x" to "max_tokens", a provider does not. */
static void test_nul_refused(void **state)
{
    (void)state;
    expect_refused("{\"model\":\"mock-small\"," MSGS ",\"max_tokens\\u0000x\":1}", 400,
                   "nul_character", NULL);
    expect_refused("{\"model\":\"mock-small\\u0000-large\"," MSGS "}", 400, "nul_character", NULL);
    const char raw[] = "{\"model\":\"mock-small\"," MSGS ",\"x\":\"a\0b\"}";
    chat_request r;
    chat_request_error e;
    assert_false(chat_request_parse(raw, sizeof raw - 1, &cfg, &r, &e));
    assert_string_equal(e.code, "nul_character");
}

/* What cJSON reads but strict parsers refuse (and lenient ones may read
 * otherwise) is not JSON: 400 invalid_json before anything is read. */
static void test_lenient_json_refused(void **state)
{
    (void)state;
    expect_refused("{\"model\":\"mock-small\",\"max_tokens\":09999999," MSGS "}", 400, "invalid_json", NULL);
    expect_refused("{\"model\":\"mock-small\",\"n\":2.," MSGS "}", 400, "invalid_json", NULL);
    expect_refused("{\"model\":\"mock-small\",\x0c" MSGS "}", 400, "invalid_json", NULL);
    /* cJSON reads a \u without four hex digits as U+0000. */
    expect_refused("{\"model\":\"mock-small\"," MSGS ",\"max_tokens\\u0x\":10}", 400, "invalid_json", NULL);
    expect_refused("{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"a\nb\"}]}",
                   400, "invalid_json", NULL);
}

/* Go's encoding/json matches keys without regard to case (and folds the
 * Kelvin sign to k): a governed field in another case is refused. */
static void test_case_variants_refused(void **state)
{
    (void)state;
    expect_refused("{\"model\":\"mock-small\",\"max_tokens\":1," MSGS ",\"MAX_TOKENS\":4096}", 400,
                   "invalid_value", "MAX_TOKENS");
    expect_refused("{\"model\":\"mock-small\"," MSGS ",\"Model\":\"mock-large\"}", 400,
                   "invalid_value", "Model");
    expect_refused("{\"model\":\"mock-small\"," MSGS ",\"N\":8}", 400, "invalid_value", "N");
    expect_refused("{\"model\":\"mock-small\",\"max_tokens\":1," MSGS ",\"max_to\xe2\x84\xaa" "ens\":9}",
                   400, "invalid_value", "max_to\xe2\x84\xaa" "ens");
    expect_refused("{\"model\":\"mock-small\"," MSGS ",\"\\u017ftream\":true}", 400, "invalid_value",
                   "\xc5\xbftream");
    /* Other fields in any case pass through (not brigade's to judge). */
    chat_request r;
    chat_request_error e;
    const char *ok = "{\"model\":\"mock-small\"," MSGS ",\"Temperature\":1,\"user\":\"u\",\"USER\":\"v\"}";
    assert_true(chat_request_parse(ok, strlen(ok), &cfg, &r, &e));
    chat_request_free(&r);
}

/* n: bounded by server.max_choices (default 8), reserved n times. */
static void test_choices(void **state)
{
    (void)state;
    chat_request r;
    chat_request_error e;
    const char *b1 = "{\"model\":\"mock-small\"," MSGS "}";
    assert_true(chat_request_parse(b1, strlen(b1), &cfg, &r, &e));
    assert_int_equal(r.choices, 1);
    chat_request_free(&r);
    const char *b3 = "{\"model\":\"mock-small\",\"n\":3,\"max_tokens\":50," MSGS "}";
    assert_true(chat_request_parse(b3, strlen(b3), &cfg, &r, &e));
    assert_int_equal(r.choices, 3);
    assert_int_equal(r.max_output_tokens, 50);
    chat_request_free(&r);
    const char *b8 = "{\"model\":\"mock-small\",\"n\":8," MSGS "}";
    assert_true(chat_request_parse(b8, strlen(b8), &cfg, &r, &e));
    assert_int_equal(r.choices, 8);
    chat_request_free(&r);
    expect_refused("{\"model\":\"mock-small\",\"n\":128," MSGS "}", 400, "invalid_value", "n");
    expect_refused("{\"model\":\"mock-small\",\"n\":9," MSGS "}", 400, "invalid_value", "n");
    expect_refused("{\"model\":\"mock-small\",\"n\":0," MSGS "}", 400, "invalid_value", "n");
    expect_refused("{\"model\":\"mock-small\",\"n\":2.5," MSGS "}", 400, "invalid_value", "n");
    expect_refused("{\"model\":\"mock-small\",\"n\":\"2\"," MSGS "}", 400, "invalid_value", "n");
    /* The operator's limit. */
    cfg.max_choices = 2;
    expect_refused("{\"model\":\"mock-small\",\"n\":3," MSGS "}", 400, "invalid_value", "n");
    cfg.max_choices = 8;
}

/* Both caps given: providers differ in which one wins, so the larger is
 * what is reserved. */
static void test_larger_cap_reserved(void **state)
{
    (void)state;
    chat_request r;
    chat_request_error e;
    const char *b = "{\"model\":\"mock-small\",\"max_completion_tokens\":10,\"max_tokens\":2000," MSGS "}";
    assert_true(chat_request_parse(b, strlen(b), &cfg, &r, &e));
    assert_int_equal(r.max_output_tokens, 2000);
    chat_request_free(&r);
}

/* "max_completion_tokens": null with no other cap: the model's cap
 * replaces the null rather than being added as a second copy of the key
 * (which a last-key reader would read as null: no cap at all). */
static void test_null_cap_replaced_not_repeated(void **state)
{
    (void)state;
    chat_request r;
    chat_request_error e;
    const char *b = "{\"model\":\"mock-small\",\"max_completion_tokens\":null," MSGS "}";
    assert_true(chat_request_parse(b, strlen(b), &cfg, &r, &e));
    const model_cfg *m = config_find_model(&cfg, "mock-small");
    char why[200];
    assert_true(fv_check_governed(r.upstream_body, r.upstream_body_len, m->upstream_model, false, 1,
                                  r.max_output_tokens, why, sizeof why));
    assert_null(strstr(r.upstream_body, "null"));
    chat_request_free(&r);
}

/* Billed outside tokens × prices, or beyond n × the cap: refused, naming
 * the parameter. */
static void test_unmetered_refused(void **state)
{
    (void)state;
    expect_refused("{\"model\":\"mock-small\",\"best_of\":4," MSGS "}", 400, "unsupported_parameter", "best_of");
    expect_refused("{\"model\":\"mock-small\",\"audio\":{\"voice\":\"alloy\",\"format\":\"wav\"}," MSGS "}",
                   400, "unsupported_parameter", "audio");
    expect_refused("{\"model\":\"mock-small\",\"modalities\":[\"text\",\"audio\"]," MSGS "}", 400,
                   "unsupported_parameter", "modalities");
    expect_refused("{\"model\":\"mock-small\",\"modalities\":[\"image\"]," MSGS "}", 400,
                   "unsupported_parameter", "modalities");
    expect_refused("{\"model\":\"mock-small\",\"modalities\":\"text\"," MSGS "}", 400, "invalid_type",
                   "modalities");
    expect_refused("{\"model\":\"mock-small\",\"prediction\":{\"type\":\"content\",\"content\":\"x\"}," MSGS "}",
                   400, "unsupported_parameter", "prediction");
    expect_refused("{\"model\":\"mock-small\",\"web_search_options\":{}," MSGS "}", 400,
                   "unsupported_parameter", "web_search_options");
    expect_refused("{\"model\":\"mock-small\",\"service_tier\":\"priority\"," MSGS "}", 400,
                   "unsupported_parameter", "service_tier");
    const char *ok[] = {
        "{\"model\":\"mock-small\",\"modalities\":[\"text\"],\"audio\":null,\"best_of\":null," MSGS "}",
        "{\"model\":\"mock-small\",\"service_tier\":\"flex\"," MSGS "}",
        "{\"model\":\"mock-small\",\"service_tier\":\"auto\",\"prediction\":null," MSGS "}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        chat_request r;
        chat_request_error e;
        assert_true(chat_request_parse(ok[i], strlen(ok[i]), &cfg, &r, &e));
        chat_request_free(&r);
    }
}

/* ---- the property: whatever is accepted is forwarded as governed ---- */

static uint64_t prng_state = 0x9E3779B97F4A7C15ULL;
static uint32_t prng(uint32_t below)
{
    prng_state ^= prng_state << 13;
    prng_state ^= prng_state >> 7;
    prng_state ^= prng_state << 17;
    return (uint32_t)(prng_state % below);
}

static const char *pick(const char *const *list, size_t n) { return list[prng((uint32_t)n)]; }
#define PICK(list) pick(list, sizeof list / sizeof list[0])

/* One spelling of a field name: as is, in another case, with an escape,
 * with the Kelvin sign or long s, with a NUL. */
static void spell_key(char *out, size_t outlen, const char *name)
{
    switch (prng(24)) {
    case 0: {   /* upper-case the first letter */
        snprintf(out, outlen, "%c%s", name[0] - 32, name + 1);
        return;
    }
    case 1:     /* the first letter escaped */
        snprintf(out, outlen, "\\u%04x%s", (unsigned char)name[0], name + 1);
        return;
    case 2: {   /* k or s folded in from outside ASCII, if it has one */
        const char *k = strpbrk(name, "ks");
        if (k) {
            snprintf(out, outlen, "%.*s%s%s", (int)(k - name), name, *k == 'k' ? "\\u212a" : "\\u017f", k + 1);
            return;
        }
        break;
    }
    case 3:
        snprintf(out, outlen, "%s\\u0000", name);
        return;
    default:
        break;
    }
    snprintf(out, outlen, "%s", name);
}

/* A value for field f: usually one a client would send, sometimes not. */
static const char *random_value(const char *f)
{
    static const char *const models[] = {"\"mock-small\"", "\"mock-large\"", "\"mock\\u002dsmall\""};
    static const char *const bad_models[] = {"\"nope\"", "7", "null", "\"mock-small\\u0000x\""};
    static const char *const msgs[] = {"[{\"role\":\"user\",\"content\":\"hi\"}]",
                                       "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]"};
    static const char *const bad_msgs[] = {"[{\"role\":\"user\",\"content\":\"a\",\"role\":\"system\"}]", "[]"};
    static const char *const bools[] = {"true", "false", "null"};
    static const char *const counts[] = {"1", "2", "3", "8", "4096", "null", "2.0", "1e3"};
    static const char *const bad_counts[] = {"9", "128", "4097", "1000000", "0", "1.5", "\"7\"", "01", "1.", "2.e0"};
    static const char *const tiers[] = {"\"auto\"", "\"flex\"", "null"};
    static const char *const mods[] = {"[\"text\"]", "null"};
    static const char *const opts[] = {"{\"include_usage\":true}", "null"};
    bool bad = prng(6) == 0;
    if (strcmp(f, "model") == 0) return bad ? PICK(bad_models) : PICK(models);
    if (strcmp(f, "messages") == 0) return bad ? PICK(bad_msgs) : PICK(msgs);
    if (strcmp(f, "stream") == 0) return bad ? "\"yes\"" : PICK(bools);
    if (strcmp(f, "service_tier") == 0) return bad ? "\"priority\"" : PICK(tiers);
    if (strcmp(f, "modalities") == 0) return bad ? "[\"text\",\"audio\"]" : PICK(mods);
    if (strcmp(f, "stream_options") == 0)
        return bad ? "{\"include_usage\":true,\"include_usage\":false}" : PICK(opts);
    if (strcmp(f, "best_of") == 0) return bad ? "2" : "null";
    if (strcmp(f, "audio") == 0 || strcmp(f, "prediction") == 0 || strcmp(f, "web_search_options") == 0)
        return bad ? "{}" : "null";
    return bad ? PICK(bad_counts) : PICK(counts);
}

/* A body of the fields the gateway governs (chat_fields.h) and one it does
 * not, in random order, spelling and repetition, with values mostly valid. */
static void random_body(char *out, size_t outlen)
{
    const char *chosen[12];
    size_t k = 0;
    if (prng(10) != 0) chosen[k++] = "model";
    if (prng(10) != 0) chosen[k++] = "messages";
    for (uint32_t extra = prng(5); extra > 0; extra--) {
        uint32_t f = prng(CHAT_FIELD_COUNT + 1);
        chosen[k++] = f < CHAT_FIELD_COUNT ? chat_governed_fields[f].name : "temperature";
    }
    for (size_t i = k; i > 1; i--) {   /* shuffle */
        size_t j = prng((uint32_t)i);
        const char *t = chosen[i - 1];
        chosen[i - 1] = chosen[j];
        chosen[j] = t;
    }
    size_t at = (size_t)snprintf(out, outlen, "%s{", prng(4) == 0 ? " " : "");
    for (size_t i = 0; i < k; i++) {
        char key[64];
        spell_key(key, sizeof key, chosen[i]);
        at += (size_t)snprintf(out + at, outlen - at, "%s\"%s\":%s", i ? "," : "", key,
                               random_value(chosen[i]));
    }
    snprintf(out + at, outlen - at, "}");
}

static void test_property_forwarded_is_governed(void **state)
{
    (void)state;
    model_cfg *large = (model_cfg *)config_find_model(&cfg, "mock-large");
    char *saved = large->upstream_model;
    unsigned accepted = 0, refused = 0, capped = 0, renamed = 0;
    char body[2048], why[256];
    for (int i = 0; i < 40000; i++) {
        /* Half the time mock-large is known upstream by another name, so
         * the re-encoding path is exercised too. */
        large->upstream_model = (i & 1) ? "provider-large" : saved;
        random_body(body, sizeof body);
        chat_request r;
        chat_request_error e;
        if (!chat_request_parse(body, strlen(body), &cfg, &r, &e)) {
            assert_true(e.status == 400 || e.status == 404);
            refused++;
            continue;
        }
        accepted++;
        if (!strstr(body, "max_tokens\":") && !strstr(body, "max_completion_tokens\":")) capped++;
        if (strcmp(r.model->name, r.model->upstream_model) != 0) renamed++;
        if (!fv_check_governed(r.upstream_body, r.upstream_body_len, r.model->upstream_model, r.stream,
                               r.choices, r.max_output_tokens, why, sizeof why))
            fail_msg("accepted %s\nforwarded %s\n%s", body, r.upstream_body, why);
        chat_request_free(&r);
    }
    large->upstream_model = saved;
    print_message("property: %u accepted (%u capped by brigade, %u renamed), %u refused\n", accepted,
                  capped, renamed, refused);
    /* The generator reaches both sides and both forwarding paths. */
    assert_true(accepted > 1000);
    assert_true(refused > 1000);
    assert_true(capped > 50);
    assert_true(renamed > 50);
}

/* ---- the scan (chat_scan.c) against the tree path ---- */

/* body through chat_request_parse (scan first) and through the tree path
 * alone: the same answer, field for field and byte for byte, accepted or
 * refused. Returns whether the scan decided it. */
static bool same_as_tree(const char *body, size_t len);

/* A renamed model changes only the model's value: numbers past a double's
 * precision, a float's spelling, escapes and spacing reach the provider as
 * the client wrote them, on the scan (plain key) and the tree path (an
 * escaped key) alike. */
static void test_renamed_model_keeps_the_clients_bytes(void **state)
{
    (void)state;
    model_cfg *m = &cfg.models[1];
    char *saved = m->upstream_model;
    m->upstream_model = "provider \"q\"";
    struct { const char *fmt, *want_fmt; } cases[] = {
        {"{\"seed\":12345678901234567,\"model\":\"%s\",\"temperature\":0.10000000000000001,"
         "\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"\\u00e9\"}]}",
         "{\"seed\":12345678901234567,\"model\":\"provider \\\"q\\\"\",\"temperature\":0.10000000000000001,"
         "\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"\\u00e9\"}]}"},
        {"{ \"mod\\u0065l\" : \"%s\" , \"x\":{\"model\":1e400},\"max_tokens\":5,\"messages\":[{\"role\":\"user\"}]}",
         "{ \"mod\\u0065l\" : \"provider \\\"q\\\"\" , \"x\":{\"model\":1e400},\"max_tokens\":5,\"messages\":[{\"role\":\"user\"}]}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[400];
        snprintf(body, sizeof body, cases[i].fmt, m->name);
        chat_request r;
        chat_request_error e;
        assert_true(chat_request_parse(body, strlen(body), &cfg, &r, &e));
        assert_string_equal(r.upstream_body, cases[i].want_fmt);
        assert_int_equal(r.upstream_body_len, strlen(cases[i].want_fmt));
        chat_request_free(&r);
        same_as_tree(body, strlen(body));
    }
    /* a null cap replaced where it stands, the model renamed after it */
    char body[300], want[300];
    snprintf(body, sizeof body,
             "{\"max_completion_tokens\" :null,\"seed\":-9007199254740993,\"model\":\"%s\",\"messages\":[{\"role\":\"user\"}]}",
             m->name);
    snprintf(want, sizeof want,
             "{\"max_completion_tokens\" :%u,\"seed\":-9007199254740993,\"model\":\"provider \\\"q\\\"\",\"messages\":[{\"role\":\"user\"}]}",
             m->max_output_tokens);
    chat_request r;
    chat_request_error e;
    assert_true(m->max_output_tokens > 0);
    assert_true(chat_request_parse(body, strlen(body), &cfg, &r, &e));
    assert_string_equal(r.upstream_body, want);
    chat_request_free(&r);
    assert_true(same_as_tree(body, strlen(body)));   /* the scan decides it */
    m->upstream_model = saved;

    /* a byte order mark (cJSON reads past it) is not forwarded: strict
     * readers refuse it, renamed model or not */
    for (int renamed = 0; renamed < 2; renamed++) {
        m->upstream_model = renamed ? "up" : saved;
        snprintf(body, sizeof body, "\xef\xbb\xbf{\"model\":\"%s\",\"max_tokens\":3,\"messages\":[{\"role\":\"user\"}]}",
                 m->name);
        snprintf(want, sizeof want, "{\"model\":\"%s\",\"max_tokens\":3,\"messages\":[{\"role\":\"user\"}]}",
                 m->upstream_model);
        assert_true(chat_request_parse(body, strlen(body), &cfg, &r, &e));
        assert_string_equal(r.upstream_body, want);
        chat_request_free(&r);
        same_as_tree(body, strlen(body));
    }
    m->upstream_model = saved;
}

static bool same_as_tree(const char *body, size_t len)
{
    chat_request a, b;
    chat_request_error ea, eb;
    bool scanned = false;
    json_strict_error je;
    if (len && utf8_valid(body, len) && json_strict_text(body, len, "the request body", &je)) {
        chat_request s;
        scanned = chat_scan(body, len, &cfg, &s);
        if (scanned) chat_request_free(&s);
    }
    bool ok_a = chat_request_parse(body, len, &cfg, &a, &ea);
    bool ok_b = chat_request_parse_tree_path(body, len, &cfg, &b, &eb);
    if (scanned && !ok_b) fail_msg("the scan accepted what the tree path refuses: %.*s", (int)len, body);
    if (ok_a != ok_b) fail_msg("accepted by one path only: %.*s", (int)len, body);
    if (ok_a) {
        if (a.model != b.model || a.stream != b.stream || a.client_wants_usage != b.client_wants_usage ||
            a.max_output_tokens != b.max_output_tokens || a.choices != b.choices ||
            a.upstream_body_len != b.upstream_body_len ||
            memcmp(a.upstream_body, b.upstream_body, a.upstream_body_len) != 0)
            fail_msg("the paths differ on %.*s", (int)len, body);
        chat_request_free(&a);
        chat_request_free(&b);
    } else {
        assert_int_equal(ea.status, eb.status);
        assert_string_equal(ea.code, eb.code);
        assert_string_equal(ea.param, eb.param);
        assert_string_equal(ea.message, eb.message);
    }
    return scanned;
}

static void test_scan_agrees_with_tree(void **state)
{
    (void)state;
    static const char *const hand[] = {
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        " {\"model\":\"mock-small\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}\r\n",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"\\ud83d\\ude00 \\u00e9\\n\\\"\\/\"}],"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"n\":2,\"temperature\":0.5e-1,"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}],"
        "\"service_tier\":\"flex\",\"best_of\":null,\"modalities\":null,\"max_tokens\":100}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"},{\"content\":\"x\",\"role\":\"assistant\"}],\"stream_options\":{\"include_usage\":false}}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"a\":{\"b\":[1,2,{\"c\":[]}],\"b2\":{}}}],\"x\":[[],[[]],{}]}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"\\ud83d\"}]}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"\\ude00\"}]}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"content\":\"\\x\"}]}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\",\"a\":1,\"a\":2}]}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":7}]}",
        "{\"model\":\"mock-small\",\"messages\":[\"user\"]}",
        "{\"model\":\"mock-small\",\"messages\":[],\"stream\":1}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"}],\"max_tokens\":1e2}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"}],\"max_tokens\":12345678901234567890}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"}],\"stream_options\":[{\"include_usage\":true}]}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"}],\"Max_Tokens\":5}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"}],\"n\":9}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"}]} x",
        "{\"model\":\"mock-embed\",\"messages\":[{\"role\":\"user\"}]}",
        "\xef\xbb\xbf{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"}]}",
        "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"}],\"x\":123456789012345678901234567890123456789012345678901234567890.12345}",
        "{}", "[]", "", "{\"model\":\"mock-small\"",
    };
    unsigned decided = 0;
    for (size_t i = 0; i < sizeof hand / sizeof hand[0]; i++) decided += same_as_tree(hand[i], strlen(hand[i]));
    assert_true(decided >= 5);
    /* Deep nesting: past the scan's depth, the tree path answers. */
    char deep[400];
    int at = snprintf(deep, sizeof deep, "{\"model\":\"mock-small\",\"messages\":[{\"role\":\"user\"}],\"x\":");
    for (int d = 0; d < 80; d++) deep[at++] = '[';
    for (int d = 0; d < 80; d++) deep[at++] = ']';
    deep[at++] = '}';
    same_as_tree(deep, (size_t)at);

    /* The property generator's bodies (both forwarding paths), and each
     * mutated: a byte changed, dropped or repeated, the text cut. */
    model_cfg *large = (model_cfg *)config_find_model(&cfg, "mock-large");
    char *saved = large->upstream_model;
    static const char alphabet[] = "{}[]\",:\\u0123456789abcdefnultrsme -.eE\t\n";
    char body[2048], mut[2100];
    unsigned total = 0;
    decided = 0;
    for (int i = 0; i < 20000; i++) {
        large->upstream_model = (i & 1) ? "provider-large" : saved;
        random_body(body, sizeof body);
        size_t n = strlen(body);
        decided += same_as_tree(body, n);
        for (int k = 0; k < 3; k++) {
            size_t m = n, at2 = prng((uint32_t)n);
            memcpy(mut, body, n);
            switch (prng(4)) {
            case 0: mut[at2] = alphabet[prng(sizeof alphabet - 1)]; break;
            case 1: memmove(mut + at2, mut + at2 + 1, n - at2 - 1); m--; break;
            case 2: memmove(mut + at2 + 1, mut + at2, n - at2); m++; break;
            default: m = at2; break;
            }
            decided += same_as_tree(mut, m);
            total++;
        }
        total++;
    }
    large->upstream_model = saved;
    print_message("scan: decided %u of %u bodies, the tree path the rest\n", decided, total);
    assert_true(decided > 2000);
}

/* ---- every governed field (chat_fields.h), on both paths ---- */

/* A body naming governed field f under `key` with `value`, beside the
 * fields every request needs (f replaces its own default: the model or the
 * messages); with `again`, a second member after it (key and value). */
static size_t governed_body(char *out, size_t outlen, chat_field f, const char *key, const char *value,
                            const char *again_key, const char *again_value)
{
    size_t at = (size_t)snprintf(out, outlen, "{");
    if (f != CHAT_FIELD_MODEL) at += (size_t)snprintf(out + at, outlen - at, "\"model\":\"mock-small\",");
    if (f != CHAT_FIELD_MESSAGES) at += (size_t)snprintf(out + at, outlen - at, MSGS ",");
    at += (size_t)snprintf(out + at, outlen - at, "\"%s\":%s", key, value);
    if (again_key) at += (size_t)snprintf(out + at, outlen - at, ",\"%s\":%s", again_key, again_value);
    at += (size_t)snprintf(out + at, outlen - at, "}");
    assert_true(at < outlen);
    return at;
}

/* Both paths answer alike (same_as_tree) and refuse it, naming param. */
static void refused_on_both_paths(const char *body, size_t len, const char *code, const char *param)
{
    same_as_tree(body, len);
    chat_request r;
    chat_request_error e;
    if (chat_request_parse(body, len, &cfg, &r, &e)) fail_msg("accepted %s", body);
    assert_string_equal(e.code, code);
    assert_string_equal(e.param, param);
}

/* The list of governed fields is one (chat_fields.h), but each path reads
 * the values on its own: every field, in every value a client could send
 * it, must get the same answer from the scan as from the tree path (the
 * scan accepting what the tree path refuses is a budget bypass: the client
 * chooses the path), and every field repeated, or spelled in another case,
 * is refused by both. A field the scan were told it reads (chat_scan.c,
 * scan_decides_absence_only) without the tree path's check fails here. */
static void test_each_governed_field_same_on_both_paths(void **state)
{
    (void)state;
    static const char *const values[] = {
        "null", "true", "false", "0", "-1", "1", "2", "8", "9", "1.5", "1e3", "2.0", "4096", "4097",
        "1000000000", "10000000000", "\"\"", "\"x\"", "\"2\"", "\"auto\"", "\"default\"", "\"flex\"",
        "\"priority\"", "\"\\u0061uto\"", "\"mock-large\"", "\"mock-embed\"", "\"nope\"", "\"text\"",
        "[]", "[\"text\"]", "[\"audio\"]", "[\"text\",\"audio\"]", "[1]", "{}", "{\"include_usage\":true}",
        "{\"include_usage\":false}", "{\"voice\":\"alloy\",\"format\":\"wav\"}",
        "[{\"role\":\"user\"}]", "[{\"role\":\"user\"},{\"content\":\"x\"}]", "[\"user\"]",
    };
    model_cfg *large = (model_cfg *)config_find_model(&cfg, "mock-large");
    char *saved = large->upstream_model;
    char body[1024], key[96];
    unsigned decided = 0;
    for (int f = 0; f < CHAT_FIELD_COUNT; f++) {
        const char *name = chat_governed_fields[f].name;
        assert_int_equal(strlen(name), chat_governed_fields[f].len);
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            /* both forwarding paths: the model's name kept, and renamed */
            for (int renamed = 0; renamed < 2; renamed++) {
                large->upstream_model = renamed ? "provider-large" : saved;
                size_t n = governed_body(body, sizeof body, (chat_field)f, name, values[v], NULL, NULL);
                decided += same_as_tree(body, n);
            }
            large->upstream_model = saved;
            /* repeated: as it is, and with a letter escaped (the same key) */
            size_t n = governed_body(body, sizeof body, (chat_field)f, name, values[v], name, values[v]);
            refused_on_both_paths(body, n, "duplicate_key", name);
            snprintf(key, sizeof key, "\\u%04x%s", (unsigned char)name[0], name + 1);
            n = governed_body(body, sizeof body, (chat_field)f, name, values[v], key, values[v]);
            refused_on_both_paths(body, n, "duplicate_key", name);
            /* in another letter case, after the field or alone */
            snprintf(key, sizeof key, "%c%s", name[0] - 32, name + 1);
            n = governed_body(body, sizeof body, (chat_field)f, name, values[v], key, values[v]);
            refused_on_both_paths(body, n, "invalid_value", key);
            n = governed_body(body, sizeof body, (chat_field)f, key, values[v], NULL, NULL);
            refused_on_both_paths(body, n, "invalid_value", key);
        }
        /* Go folds the Kelvin sign to k and the long s to s */
        const char *ks = strpbrk(name, "ks");
        if (ks) {
            int at = (int)(ks - name);
            char raw[96];
            snprintf(key, sizeof key, "%.*s%s%s", at, name, *ks == 'k' ? "\\u212a" : "\\u017f", ks + 1);
            snprintf(raw, sizeof raw, "%.*s%s%s", at, name, *ks == 'k' ? "\xe2\x84\xaa" : "\xc5\xbf", ks + 1);
            size_t n = governed_body(body, sizeof body, (chat_field)f, name, "null", key, "null");
            refused_on_both_paths(body, n, "invalid_value", raw);
        }
    }
    print_message("governed fields: the scan decided %u of the bodies\n", decided);
    assert_true(decided > 50);   /* the scan's side is exercised, not only the tree path's */
}

/* The fuzz target starts from a seed for each governed field
 * (fuzz/corpus/fuzz_chat_request/governed_<name>.json, the folder given to
 * this test by meson): a field added to chat_fields.h without one fails
 * here. Each seed goes down both paths too. */
static const char *seed_dir;

static void test_each_governed_field_has_a_fuzz_seed(void **state)
{
    (void)state;
    if (!seed_dir) skip();
    for (int f = 0; f < CHAT_FIELD_COUNT; f++) {
        const char *name = chat_governed_fields[f].name;
        char path[512], text[4096], quoted[64];
        snprintf(path, sizeof path, "%s/governed_%s.json", seed_dir, name);
        FILE *fp = fopen(path, "rb");
        if (!fp) fail_msg("no fuzz seed for the governed field \"%s\": %s", name, path);
        size_t n = fread(text, 1, sizeof text - 1, fp);
        fclose(fp);
        text[n] = '\0';
        snprintf(quoted, sizeof quoted, "\"%s\"", name);
        if (!strstr(text, quoted)) fail_msg("%s does not name \"%s\"", path, name);
        same_as_tree(text, n);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_and_rewrites_model),
        cmocka_unit_test(test_rewrites_to_the_upstream_name),
        cmocka_unit_test(test_renamed_model_keeps_the_clients_bytes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_repeated_keys_refused),
        cmocka_unit_test(test_nul_refused),
        cmocka_unit_test(test_lenient_json_refused),
        cmocka_unit_test(test_case_variants_refused),
        cmocka_unit_test(test_choices),
        cmocka_unit_test(test_larger_cap_reserved),
        cmocka_unit_test(test_null_cap_replaced_not_repeated),
        cmocka_unit_test(test_unmetered_refused),
        cmocka_unit_test(test_property_forwarded_is_governed),
        cmocka_unit_test(test_scan_agrees_with_tree),
        cmocka_unit_test(test_each_governed_field_same_on_both_paths),
        cmocka_unit_test(test_each_governed_field_has_a_fuzz_seed),
    };
    seed_dir = argc > 1 ? argv[1] : NULL;
    return cmocka_run_group_tests(tests, setup, teardown);
}
