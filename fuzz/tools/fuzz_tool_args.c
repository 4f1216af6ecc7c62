/* fuzz_tool_args.c — libFuzzer target for the validation of a model's tool
 * arguments: tools_validate_args (size, UTF-8, strict JSON, repeated keys)
 * and the JSON Schema subset of src/tools/schema.c. The arguments are
 * written by the model, so by whoever wrote the text it read; what passes
 * here is what a tool acts on.
 *
 * Input: the first byte picks the schema. Below 0xe0 it indexes a fixed
 * set of realistic tool schemas and the rest of the input is the arguments
 * text; from 0xe0 up, the bytes up to the first NUL are a schema (checked
 * with tools_schema_check, which is fuzzed that way too) and the bytes
 * after it the arguments.
 *
 * Invariants (abort() when broken; leaks are caught by LeakSanitizer):
 *   - a refused argument text, or a refused schema, comes with a message;
 *   - validation is deterministic (same verdict, same message);
 *   - accepted arguments, re-serialised as brigade forwards them
 *     (cJSON_PrintUnformatted), are text that json_strict_text and
 *     json_strict_tree accept, that validates again against the same
 *     schema, and that re-serialises to itself. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tools/tools.h"
#include "util/json_strict.h"

static const char *const fixed_schemas[] = {
    /* a tool without parameters */
    "{\"type\":\"object\"}",
    /* memory-like: an operation on a key */
    "{\"type\":\"object\",\"properties\":{\"op\":{\"enum\":[\"put\",\"get\",\"delete\",\"list\"]},"
    "\"key\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128},"
    "\"value\":{\"type\":\"string\",\"maxLength\":65536}},"
    "\"required\":[\"op\"],\"additionalProperties\":false}",
    /* search: bounded integers and numbers */
    "{\"type\":\"object\",\"properties\":{\"query\":{\"type\":\"string\",\"minLength\":1,"
    "\"description\":\"what to look for\"},"
    "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":50,\"default\":10},"
    "\"score\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1}},"
    "\"required\":[\"query\"]}",
    /* an order: an array of objects */
    "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":10,"
    "\"items\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
    "\"qty\":{\"type\":\"integer\",\"minimum\":0}},\"required\":[\"name\"],"
    "\"additionalProperties\":false}}},\"required\":[\"items\"]}",
    /* alternatives, const, null, type lists, additionalProperties as a schema */
    "{\"type\":\"object\",\"properties\":{\"id\":{\"anyOf\":[{\"type\":\"string\",\"maxLength\":36},"
    "{\"type\":\"integer\"}]},\"mode\":{\"oneOf\":[{\"const\":\"fast\"},{\"const\":\"slow\"},"
    "{\"type\":\"null\"}]},\"flags\":{\"type\":[\"array\",\"null\"],\"items\":{\"type\":\"boolean\"}}},"
    "\"additionalProperties\":{\"type\":\"string\"}}",
    /* a declared HTTP tool with URL placeholders {project} and {ticket} */
    "{\"type\":\"object\",\"properties\":{\"project\":{\"type\":\"string\",\"minLength\":1,"
    "\"maxLength\":64},\"ticket\":{\"type\":\"integer\",\"minimum\":1}},"
    "\"required\":[\"project\",\"ticket\"],\"additionalProperties\":false}",
    /* draft-4 boolean exclusive bounds, nested objects */
    "{\"$schema\":\"http://json-schema.org/draft-04/schema#\",\"type\":\"object\",\"properties\":"
    "{\"n\":{\"type\":\"number\",\"minimum\":0,\"exclusiveMinimum\":true,\"maximum\":100,"
    "\"exclusiveMaximum\":false},\"meta\":{\"type\":\"object\",\"properties\":{\"tags\":"
    "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"enum\":[\"a\",\"b\",\"c\"]}}}}}}",
};
#define N_FIXED (sizeof fixed_schemas / sizeof fixed_schemas[0])

static cJSON *fixed_parsed[N_FIXED];

static void check_accepted(const tool_def *t, const char *args)
{
    /* As tools_validate_args reads it: only whitespace means {}. */
    size_t i = strspn(args, " \t\r\n");
    cJSON *v = args[i] ? cJSON_Parse(args) : cJSON_CreateObject();
    if (!v) abort();
    char *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (!text) abort();
    json_strict_error jerr;
    if (!json_strict_text(text, strlen(text), "the re-serialised arguments", &jerr)) abort();
    cJSON *w = cJSON_Parse(text);
    if (!w) abort();
    if (!json_strict_tree(w, "the re-serialised arguments", &jerr)) abort();
    char *again = cJSON_PrintUnformatted(w);
    cJSON_Delete(w);
    if (!again || strcmp(again, text) != 0) abort();
    char err[256] = "";
    if (!tools_validate_args(t, text, err, sizeof err)) abort();
    free(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024) return 0;
    cJSON *schema = NULL, *owned = NULL;
    const uint8_t *args_at = data + 1;
    if (data[0] < 0xe0) {
        size_t k = data[0] % N_FIXED;
        if (!fixed_parsed[k]) {
            fixed_parsed[k] = cJSON_Parse(fixed_schemas[k]);
            char err[256] = "";
            if (!fixed_parsed[k] || !tools_schema_check(fixed_parsed[k], "fixed", err, sizeof err)) abort();
        }
        schema = fixed_parsed[k];
    } else {
        const uint8_t *nul = memchr(data + 1, 0, size - 1);
        if (!nul) return 0;
        owned = cJSON_ParseWithLength((const char *)data + 1, (size_t)(nul - data - 1));
        if (!owned) return 0;
        char e1[256] = "", e2[256] = "";
        bool ok1 = tools_schema_check(owned, "parameters", e1, sizeof e1);
        bool ok2 = tools_schema_check(owned, "parameters", e2, sizeof e2);
        if (ok1 != ok2 || strcmp(e1, e2) != 0) abort();
        if (!ok1) {
            if (!e1[0]) abort();
            cJSON_Delete(owned);
            return 0;
        }
        schema = owned;
        args_at = nul + 1;
    }

    size_t n = size - (size_t)(args_at - data);
    char *args = malloc(n + 1);
    if (!args) abort();
    memcpy(args, args_at, n);
    args[n] = '\0';

    tool_def t = {.name = "fuzz_tool", .description = "", .kind = TOOL_HTTP, .parameters = schema};
    char e1[256] = "", e2[256] = "";
    bool ok1 = tools_validate_args(&t, args, e1, sizeof e1);
    bool ok2 = tools_validate_args(&t, args, e2, sizeof e2);
    if (ok1 != ok2 || strcmp(e1, e2) != 0) abort();
    if (!ok1 && !e1[0]) abort();
    if (ok1) check_accepted(&t, args);

    free(args);
    cJSON_Delete(owned);
    return 0;
}
