/* test_tools_schema.c — the JSON Schema subset (every keyword, paths in
 * messages, the depth and size bounds, refused keywords), the registry
 * (built-ins, declared tools, the OpenAI specs), argument validation, and
 * the output cap on UTF-8 boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/tools.h"
#include "util/utf8.h"

/* Parse schema text, check it (must pass), validate value text; returns
 * the verdict and leaves the message in err. */
static bool run(const char *schema_text, const char *value_text, char *err, size_t errlen)
{
    cJSON *s = cJSON_Parse(schema_text);
    assert_non_null(s);
    char cerr[256] = "";
    if (!tools_schema_check(s, "parameters", cerr, sizeof cerr)) fail_msg("schema refused: %s", cerr);
    cJSON *v = cJSON_Parse(value_text);
    assert_non_null(v);
    err[0] = '\0';
    bool ok = tools_schema_validate(s, v, "arguments", err, errlen);
    cJSON_Delete(v);
    cJSON_Delete(s);
    return ok;
}

#define ACCEPT(s, v)                                              \
    do {                                                          \
        char e_[512];                                             \
        if (!run(s, v, e_, sizeof e_)) fail_msg("%s rejected %s: %s", s, v, e_); \
    } while (0)

#define REJECT(s, v, msg)                                          \
    do {                                                           \
        char e_[512];                                              \
        if (run(s, v, e_, sizeof e_)) fail_msg("%s accepted %s", s, v); \
        if (!strstr(e_, msg)) fail_msg("message \"%s\" lacks \"%s\"", e_, msg); \
    } while (0)

static void test_types(void **state)
{
    (void)state;
    ACCEPT("{\"type\":\"string\"}", "\"x\"");
    REJECT("{\"type\":\"string\"}", "3", "arguments: expected a string, got number");
    ACCEPT("{\"type\":\"number\"}", "3.5");
    ACCEPT("{\"type\":\"integer\"}", "3");
    ACCEPT("{\"type\":\"integer\"}", "3.0");
    REJECT("{\"type\":\"integer\"}", "3.5", "expected an integer, got number");
    ACCEPT("{\"type\":\"boolean\"}", "false");
    REJECT("{\"type\":\"boolean\"}", "0", "expected a boolean");
    ACCEPT("{\"type\":\"null\"}", "null");
    ACCEPT("{\"type\":\"array\"}", "[]");
    REJECT("{\"type\":\"object\"}", "[]", "expected an object, got array");
    ACCEPT("{\"type\":[\"string\",\"null\"]}", "null");
    REJECT("{\"type\":[\"string\",\"null\"]}", "1", "expected string or null, got number");
}

static void test_objects_and_paths(void **state)
{
    (void)state;
    const char *s = "{\"type\":\"object\",\"properties\":{"
                    "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
                    "\"properties\":{\"name\":{\"type\":\"string\"}},\"required\":[\"name\"]}}},"
                    "\"required\":[\"items\"]}";
    ACCEPT(s, "{\"items\":[{\"name\":\"a\"},{\"name\":\"b\"}]}");
    REJECT(s, "{\"items\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":7}]}",
           "arguments.items[2].name: expected a string, got number");
    REJECT(s, "{\"items\":[{}]}", "arguments.items[0]: missing required property \"name\"");
    REJECT(s, "{}", "arguments: missing required property \"items\"");
    /* odd property names are quoted in the path */
    REJECT("{\"properties\":{\"a b\":{\"type\":\"string\"}}}", "{\"a b\":1}",
           "arguments[\"a b\"]: expected a string");
    /* additionalProperties: false and as a schema */
    const char *closed = "{\"type\":\"object\",\"properties\":{\"a\":{}},"
                         "\"additionalProperties\":false}";
    ACCEPT(closed, "{\"a\":1}");
    REJECT(closed, "{\"a\":1,\"b\":2}", "arguments: unknown property \"b\" (allowed: a)");
    const char *typed = "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}";
    ACCEPT(typed, "{\"x\":1,\"y\":2}");
    REJECT(typed, "{\"x\":1,\"y\":\"2\"}", "arguments.y: expected an integer, got string");
    /* duplicate keys in a value are refused */
    REJECT("{\"type\":\"object\"}", "{\"a\":1,\"a\":2}", "arguments: property \"a\" appears twice");
    /* anywhere inside, named where */
    REJECT("{\"type\":\"object\"}", "{\"o\":{\"b\":[{\"a\":1,\"a\":2}]}}",
           "arguments.o.b[0]: property \"a\" appears twice");
}

/* A model's arguments of many distinct keys are checked in one pass: each
 * object compared its keys pairwise once, and 100 000 keys (what 1 MiB
 * of arguments holds) took ~20 s of the loop thread. The bound below is
 * ~100× what the pass takes, under sanitizers too. */
static void test_many_keys_in_linear_time(void **state)
{
    (void)state;
    enum { N = 100000 };
    size_t cap = (size_t)N * 16 + 16;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t at = (size_t)snprintf(text, cap, "{");
    for (int i = 0; i < N; i++) at += (size_t)snprintf(text + at, cap - at, "%s\"k%d\":%d", i ? "," : "", i, i);
    snprintf(text + at, cap - at, "}");
    char err[256];
    clock_t t0 = clock();
    bool ok = run("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}", text, err, sizeof err);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    free(text);
    if (!ok) fail_msg("refused: %s", err);
    if (secs > 2.0) fail_msg("100 000 keys took %.2f s of CPU", secs);
}

static void test_enum_const_numbers(void **state)
{
    (void)state;
    ACCEPT("{\"enum\":[\"a\",1,null]}", "1");
    REJECT("{\"enum\":[\"a\",\"b\"]}", "\"c\"", "must be one of \"a\", \"b\"");
    ACCEPT("{\"const\":{\"k\":[1,2]}}", "{\"k\":[1,2]}");
    REJECT("{\"const\":\"x\"}", "\"y\"", "must be \"x\"");
    ACCEPT("{\"minimum\":1,\"maximum\":3}", "1");
    ACCEPT("{\"minimum\":1,\"maximum\":3}", "3");
    REJECT("{\"minimum\":1}", "0", "must be >= 1, got 0");
    REJECT("{\"maximum\":3}", "3.5", "must be <= 3, got 3.5");
    REJECT("{\"exclusiveMinimum\":1}", "1", "must be > 1, got 1");
    ACCEPT("{\"exclusiveMinimum\":1}", "1.01");
    REJECT("{\"exclusiveMaximum\":10}", "10", "must be < 10");
    /* draft-4 boolean form */
    REJECT("{\"minimum\":5,\"exclusiveMinimum\":true}", "5", "must be > 5");
    ACCEPT("{\"minimum\":5,\"exclusiveMinimum\":false}", "5");
    /* bounds apply to numbers only */
    ACCEPT("{\"minimum\":5}", "\"abc\"");
}

static void test_strings_arrays(void **state)
{
    (void)state;
    /* lengths count characters: "héé" is 3 characters, 5 bytes */
    ACCEPT("{\"maxLength\":3}", "\"h\\u00e9\\u00e9\"");
    ACCEPT("{\"minLength\":3}", "\"h\xc3\xa9\xc3\xa9\"");
    REJECT("{\"maxLength\":2}", "\"h\xc3\xa9\xc3\xa9\"", "at most 2 characters long, got 3");
    REJECT("{\"minLength\":4}", "\"\xf0\x9f\x98\x80x\"", "at least 4 characters long, got 2");
    ACCEPT("{\"minItems\":1,\"maxItems\":2}", "[1,2]");
    REJECT("{\"minItems\":1}", "[]", "at least 1 items, got 0");
    REJECT("{\"maxItems\":1}", "[1,2]", "at most 1 items, got 2");
    REJECT("{\"items\":{\"type\":\"string\"}}", "[\"a\",2]", "arguments[1]: expected a string");
    /* true/false schemas */
    ACCEPT("true", "{\"any\":1}");
    REJECT("{\"properties\":{\"x\":false}}", "{\"x\":1}", "arguments.x: no value is allowed");
}

static void test_any_one_of(void **state)
{
    (void)state;
    const char *any = "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}";
    ACCEPT(any, "\"a\"");
    ACCEPT(any, "4");
    REJECT(any, "true", "matches none of the 2 \"anyOf\" schemas");
    REJECT(any, "true", "expected a string, got boolean");
    const char *one = "{\"oneOf\":[{\"type\":\"number\"},{\"type\":\"integer\"}]}";
    ACCEPT(one, "1.5");
    REJECT(one, "2", "matches 2 of the 2 \"oneOf\" schemas");
    REJECT(one, "\"x\"", "matches none of the 2 \"oneOf\"");
}

static void check_refused(const char *schema_text, const char *msg)
{
    cJSON *s = cJSON_Parse(schema_text);
    assert_non_null(s);
    char err[512] = "";
    bool ok = tools_schema_check(s, "tools[0].parameters", err, sizeof err);
    cJSON_Delete(s);
    if (ok) fail_msg("schema accepted: %s", schema_text);
    if (!strstr(err, msg)) fail_msg("message \"%s\" lacks \"%s\"", err, msg);
}

static void test_refused_schemas(void **state)
{
    (void)state;
    check_refused("{\"type\":\"string\",\"pattern\":\"^a\"}", "\"pattern\" is not supported");
    check_refused("{\"properties\":{\"x\":{\"pattern\":\"a\"}}}",
                  "tools[0].parameters.properties.x: \"pattern\" is not supported");
    check_refused("{\"$ref\":\"#/defs/x\"}", "keyword \"$ref\" is not supported");
    check_refused("{\"allOf\":[{}]}", "keyword \"allOf\" is not supported");
    check_refused("{\"format\":\"email\"}", "keyword \"format\" is not supported");
    check_refused("{\"items\":[{},{}]}", "tuple");
    check_refused("{\"type\":\"text\"}", "unknown type \"text\"");
    check_refused("{\"type\":[]}", "non-empty array");
    check_refused("{\"minLength\":-1}", "non-negative integer");
    check_refused("{\"minItems\":1.5}", "non-negative integer");
    check_refused("{\"minLength\":3,\"maxLength\":2}", "greater than");
    check_refused("{\"required\":[1]}", "only strings");
    check_refused("{\"enum\":[]}", "non-empty");
    check_refused("{\"anyOf\":[]}", "non-empty array of schemas");
    check_refused("{\"anyOf\":[{\"type\":\"x\"}]}", "parameters.anyOf[0]: unknown type");
    check_refused("3", "must be an object");
    /* a key repeated anywhere, named where */
    check_refused("{\"type\":\"object\",\"type\":\"string\"}", "tools[0].parameters: key \"type\" appears twice");
    check_refused("{\"properties\":{\"x\":{},\"x\":{}}}",
                  "tools[0].parameters.properties: key \"x\" appears twice");
    check_refused("{\"properties\":{\"o\":{\"properties\":{\"y\":{},\"y\":{}}}}}",
                  "tools[0].parameters.properties.o.properties: key \"y\" appears twice");
    check_refused("{\"properties\":{\"properties\":{\"minimum\":1,\"minimum\":2}}}",
                  "tools[0].parameters.properties.properties: key \"minimum\" appears twice");
    /* annotations are fine */
    cJSON *s = cJSON_Parse("{\"title\":\"t\",\"description\":\"d\",\"default\":1,"
                           "\"examples\":[1],\"$schema\":\"x\",\"$comment\":\"c\"}");
    char err[256];
    assert_true(tools_schema_check(s, "p", err, sizeof err));
    cJSON_Delete(s);
}

static void test_depth_and_size_bounds(void **state)
{
    (void)state;
    /* nesting: {"items":{"items":…}} one deeper than allowed is refused */
    char text[4096] = "";
    for (int i = 0; i <= TOOLS_SCHEMA_MAX_DEPTH + 1; i++) strcat(text, "{\"items\":");
    strcat(text, "true");
    for (int i = 0; i <= TOOLS_SCHEMA_MAX_DEPTH + 1; i++) strcat(text, "}");
    check_refused(text, "nested deeper than 32");
    /* exactly at the bound is fine */
    text[0] = '\0';
    for (int i = 0; i < TOOLS_SCHEMA_MAX_DEPTH; i++) strcat(text, "{\"items\":");
    strcat(text, "true");
    for (int i = 0; i < TOOLS_SCHEMA_MAX_DEPTH; i++) strcat(text, "}");
    cJSON *s = cJSON_Parse(text);
    char err[256];
    assert_true(tools_schema_check(s, "p", err, sizeof err));
    cJSON_Delete(s);
    /* too many subschemas */
    size_t cap = 64 * (TOOLS_SCHEMA_MAX_NODES + 10);
    char *big = malloc(cap);
    size_t n = (size_t)snprintf(big, cap, "{\"properties\":{");
    for (int i = 0; i < TOOLS_SCHEMA_MAX_NODES + 5; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s\"p%d\":{}", i ? "," : "", i);
    snprintf(big + n, cap - n, "}}");
    check_refused(big, "more than 2048 subschemas");
    free(big);
}

/* ---- registry ---- */

static tool_cfg make_tool(const char *name, const char *url, const char *method,
                          const char *params)
{
    tool_cfg t;
    memset(&t, 0, sizeof t);
    t.name = (char *)name;
    t.description = (char *)"a test tool";
    t.url = (char *)url;
    t.method = (char *)method;
    t.parameters_json = (char *)params;
    return t;
}

static void test_registry_builtins_and_specs(void **state)
{
    (void)state;
    brigade_config cfg;
    memset(&cfg, 0, sizeof cfg);
    tool_cfg tools[1] = {make_tool("weather", "https://example.test/w/{city}", "GET",
                                   "{\"type\":\"object\",\"properties\":{\"city\":"
                                   "{\"type\":\"string\"}},\"required\":[\"city\"]}")};
    cfg.tools = tools;
    cfg.n_tools = 1;
    char err[256] = "";
    tool_registry *r = tools_registry_new(&cfg, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(tools_count(r), 3);
    const tool_def *mem = tools_find(r, "memory");
    assert_non_null(mem);
    assert_int_equal(mem->kind, TOOL_MEMORY);
    assert_int_equal(tools_find(r, "clock")->kind, TOOL_CLOCK);
    const tool_def *w = tools_find(r, "weather");
    assert_int_equal(w->kind, TOOL_HTTP);
    assert_ptr_equal(w->http, &tools[0]);
    assert_null(tools_find(r, "nope"));

    char *names[] = {"clock", "weather", "unknown", "clock"};
    cJSON *specs = tools_openai_specs(r, names, 4);
    assert_int_equal(cJSON_GetArraySize(specs), 2);
    cJSON *first = cJSON_GetArrayItem(specs, 0);
    assert_string_equal(cJSON_GetObjectItem(first, "type")->valuestring, "function");
    cJSON *fn = cJSON_GetObjectItem(first, "function");
    assert_string_equal(cJSON_GetObjectItem(fn, "name")->valuestring, "clock");
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(fn, "parameters")));
    cJSON *wf = cJSON_GetObjectItem(cJSON_GetArrayItem(specs, 1), "function");
    assert_string_equal(cJSON_GetObjectItem(wf, "description")->valuestring, "a test tool");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(wf, "parameters"),
                                                               "required"), 0)->valuestring,
                        "city");
    cJSON_Delete(specs);
    specs = tools_openai_specs(r, NULL, 0);
    assert_int_equal(cJSON_GetArraySize(specs), 3);
    cJSON_Delete(specs);

    /* memory arguments */
    assert_true(tools_validate_args(mem, "{\"action\":\"save\",\"key\":\"k\",\"value\":\"v\"}",
                                    err, sizeof err));
    assert_false(tools_validate_args(mem, "{\"action\":\"forget\"}", err, sizeof err));
    assert_non_null(strstr(err, "arguments.action: must be one of"));
    assert_false(tools_validate_args(mem, "{}", err, sizeof err));
    assert_non_null(strstr(err, "missing required property \"action\""));
    assert_false(tools_validate_args(mem, "{\"action\":\"save\",\"extra\":1}", err, sizeof err));
    assert_non_null(strstr(err, "unknown property \"extra\""));
    /* clock: only UTC; empty arguments are {} */
    const tool_def *clk = tools_find(r, "clock");
    assert_true(tools_validate_args(clk, "", err, sizeof err));
    assert_true(tools_validate_args(clk, "{\"timezone\":\"UTC\"}", err, sizeof err));
    assert_false(tools_validate_args(clk, "{\"timezone\":\"Europe/Paris\"}", err, sizeof err));
    assert_non_null(strstr(err, "arguments.timezone"));
    /* invalid JSON and non-UTF-8 */
    assert_false(tools_validate_args(w, "{\"city\":", err, sizeof err));
    assert_non_null(strstr(err, "not valid JSON"));
    assert_false(tools_validate_args(w, "{\"city\":\"a\"} x", err, sizeof err));
    assert_non_null(strstr(err, "after the JSON value"));
    assert_false(tools_validate_args(w, "{\"city\":\"\xff\"}", err, sizeof err));
    assert_non_null(strstr(err, "UTF-8"));
    /* a number no double holds: cJSON would read infinity and forward null
     * (found by fuzz_tool_args) */
    assert_false(tools_validate_args(w, "{\"city\":\"a\",\"n\":[1,{\"x\":-1e999}]}", err, sizeof err));
    assert_non_null(strstr(err, "arguments.n[1].x: number out of range"));
    /* the largest doubles pass that check (and reach the schema, which closes
     * a declared tool's object) */
    assert_false(tools_validate_args(w, "{\"city\":\"a\",\"n\":-1.7e308}", err, sizeof err));
    assert_non_null(strstr(err, "unknown property \"n\""));
    /* A repeated key (the schema and the tool would read the first copy,
     * the model may mean the last) and a NUL are refused, with the key
     * named for the model. */
    assert_false(tools_validate_args(mem, "{\"action\":\"save\",\"key\":\"k\",\"value\":\"v\","
                                          "\"action\":\"delete\"}", err, sizeof err));
    assert_non_null(strstr(err, "repeats the key \"action\""));
    assert_false(tools_validate_args(w, "{\"city\":\"a\\u0000b\"}", err, sizeof err));
    assert_non_null(strstr(err, "\\u0000"));
    assert_false(tools_validate_args(w, "[]", err, sizeof err));
    assert_non_null(strstr(err, "expected an object, got array"));
    /* an escaped NUL would cut the string short in cJSON: refused; an
     * escaped backslash followed by "u0000" is just text */
    assert_false(tools_validate_args(w, "{\"city\":\"..\\u0000x\"}", err, sizeof err));
    assert_non_null(strstr(err, "NUL character"));
    assert_true(tools_validate_args(w, "{\"city\":\"a\\\\u0000\"}", err, sizeof err));
    tools_registry_free(r);
}

static void expect_registry_error(tool_cfg t, const char *msg)
{
    brigade_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.tools = &t;
    cfg.n_tools = 1;
    char err[512] = "";
    tool_registry *r = tools_registry_new(&cfg, err, sizeof err);
    if (r) {
        tools_registry_free(r);
        fail_msg("registry accepted tool %s", t.name);
    }
    if (!strstr(err, msg)) fail_msg("message \"%s\" lacks \"%s\"", err, msg);
}

static void test_registry_refuses(void **state)
{
    (void)state;
    expect_registry_error(make_tool("t", "https://x.test/", "POST",
                                    "{\"type\":\"object\",\"properties\":{\"a\":"
                                    "{\"type\":\"string\",\"pattern\":\"x\"}}}"),
                          "tools[0].parameters.properties.a: \"pattern\" is not supported");
    expect_registry_error(make_tool("t", "https://x.test/", "POST", "{\"type\":"),
                          "not valid JSON");
    expect_registry_error(make_tool("t", "https://x.test/", "POST", "{\"type\":\"string\"}"),
                          "top level must be");
    expect_registry_error(make_tool("memory", "https://x.test/", "POST", NULL), "already exists");
    expect_registry_error(make_tool("t", "https://{host}/x", "GET", NULL), "only after the host");
    expect_registry_error(make_tool("t", "ftp://x.test/", "GET", NULL), "http:// or https://");
    expect_registry_error(make_tool("t", "https://x.test/{}", "GET", NULL), "placeholder");
    expect_registry_error(make_tool("t", "https://x.test/", "HEAD", NULL), "method");
    expect_registry_error(make_tool("bad name", "https://x.test/", "GET", NULL), "name");
    /* a placeholder must name a declared property; none in the fragment;
     * no dot segment in the template's path */
    expect_registry_error(make_tool("t", "https://x.test/p/{id}", "GET", NULL),
                          "tools[0].url: placeholder {id} is not a property");
    expect_registry_error(make_tool("t", "https://x.test/p/{id}", "GET",
                                    "{\"type\":\"object\",\"properties\":{\"other\":{}}}"),
                          "placeholder {id} is not a property");
    expect_registry_error(make_tool("t", "https://x.test/p#{id}", "GET",
                                    "{\"type\":\"object\",\"properties\":{\"id\":{}}}"),
                          "#fragment");
    expect_registry_error(make_tool("t", "https://x.test/a/../b", "GET", NULL), "segment");
    expect_registry_error(make_tool("t", "https://x.test/a/%2e%2e/b", "GET", NULL), "segment");
    /* defaults: no parameters_json means {"type":"object"}, method POST,
     * and a declared tool's top level gets additionalProperties: false */
    brigade_config cfg;
    memset(&cfg, 0, sizeof cfg);
    tool_cfg t = make_tool("plain", "http://127.0.0.1/x", NULL, NULL);
    cfg.tools = &t;
    cfg.n_tools = 1;
    char err[256];
    tool_registry *r = tools_registry_new(&cfg, err, sizeof err);
    assert_non_null(r);
    assert_true(tools_validate_args(tools_find(r, "plain"), "{}", err, sizeof err));
    assert_false(tools_validate_args(tools_find(r, "plain"), "{\"anything\":[1]}", err, sizeof err));
    assert_non_null(strstr(err, "arguments: unknown property \"anything\" (no properties are allowed)"));
    /* the model is offered the schema as enforced */
    cJSON *specs = tools_openai_specs(r, NULL, 0);
    const cJSON *params = NULL;
    for (const cJSON *sp = specs->child; sp; sp = sp->next) {
        const cJSON *f = cJSON_GetObjectItem(sp, "function");
        if (strcmp(cJSON_GetObjectItem(f, "name")->valuestring, "plain") == 0)
            params = cJSON_GetObjectItem(f, "parameters");
    }
    assert_non_null(params);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(params, "additionalProperties")));
    cJSON_Delete(specs);
    tools_registry_free(r);
    /* a tool that says additionalProperties: true keeps it (its extra
     * arguments pass validation; tool_http.c still sends only declared ones) */
    t = make_tool("open", "http://127.0.0.1/x", NULL,
                  "{\"type\":\"object\",\"properties\":{\"a\":{}},\"additionalProperties\":true}");
    r = tools_registry_new(&cfg, err, sizeof err);
    assert_non_null(r);
    assert_true(tools_validate_args(tools_find(r, "open"), "{\"a\":1,\"b\":2}", err, sizeof err));
    tools_registry_free(r);
    /* with no configuration at all: the built-ins */
    r = tools_registry_new(NULL, err, sizeof err);
    assert_int_equal(tools_count(r), 2);
    tools_registry_free(r);
}

/* ---- output cap ---- */

static void test_cap_output(void **state)
{
    (void)state;
    size_t n = 0;
    char *o = tools_cap_output("hello", 5, 5, &n);
    assert_string_equal(o, "hello");
    assert_int_equal(n, 5);
    free(o);

    /* 100 × "é" (200 bytes) cut at odd maxima never splits a character and
     * never exceeds the cap */
    char text[201];
    for (int i = 0; i < 100; i++) memcpy(text + 2 * i, "\xc3\xa9", 2);
    text[200] = '\0';
    for (size_t max = 0; max < 200; max++) {
        o = tools_cap_output(text, 200, max, &n);
        assert_non_null(o);
        assert_true(n <= max);
        assert_int_equal(strlen(o), n);
        assert_true(utf8_valid(o, n));
        char *note = strstr(o, "\n[output cut: ");
        if (max >= 60) {
            assert_non_null(note);
            size_t kept = (size_t)(note - o);
            assert_int_equal(kept % 2, 0);
            char expect[64];
            snprintf(expect, sizeof expect, "\n[output cut: %zu of 200 bytes]", kept);
            assert_string_equal(note, expect);
        }
        free(o);
    }
    /* 4-byte characters */
    const char *emoji = "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80";
    o = tools_cap_output(emoji, 12, 6, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(o, emoji, 4);
    free(o);
    /* a long ASCII text: exact size with the note */
    char big[1000];
    memset(big, 'a', sizeof big);
    o = tools_cap_output(big, sizeof big, 100, &n);
    assert_int_equal(n, 100);
    assert_non_null(strstr(o, "of 1000 bytes]"));
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_objects_and_paths),
        cmocka_unit_test(test_many_keys_in_linear_time),
        cmocka_unit_test(test_enum_const_numbers),
        cmocka_unit_test(test_strings_arrays),
        cmocka_unit_test(test_any_one_of),
        cmocka_unit_test(test_refused_schemas),
        cmocka_unit_test(test_depth_and_size_bounds),
        cmocka_unit_test(test_registry_builtins_and_specs),
        cmocka_unit_test(test_registry_refuses),
        cmocka_unit_test(test_cap_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
