/* mock_schema.c — a minimal instance of a JSON Schema, for the mock's
 * structured output: a request whose response_format is json_schema gets
 * JSON that validates against the schema, so the clients' structured
 * output helpers (zod parsing, generateObject, …) work against the
 * built-in demo.
 *
 * What is honoured: type (and type lists: the first that is not "null"),
 * const, enum (the first value), required properties of objects (only
 * those: the smallest valid object), arrays of minItems items (one when
 * unbounded, none when maxItems is 0; prefixItems first), minLength and
 * maxLength, minimum / maximum (exclusive too) and multipleOf of integers,
 * common string formats (date-time, date, time, email, uri, uuid), anyOf /
 * oneOf (the first branch that is not null), allOf (the first branch), and
 * local $ref ("#/$defs/…", "#/definitions/…"). A pattern is not
 * generated for. Depth and size are bounded (a recursive $ref ends in
 * null at MOCK_SCHEMA_MAX_DEPTH). Pure. */
#include "mock/mock_engine.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/json_escape.h"

#define MOCK_SCHEMA_MAX_DEPTH 24
#define MOCK_SCHEMA_MAX_ITEMS 16

static const cJSON *ms_get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* A local reference "#/a/b" resolved against the root schema. */
static const cJSON *ms_ref(const cJSON *root, const char *ref)
{
    if (ref[0] != '#') return NULL;
    const cJSON *at = root;
    const char *p = ref + 1;
    while (*p == '/' && at) {
        p++;
        char key[128];
        size_t n = 0;
        while (*p && *p != '/' && n + 1 < sizeof key) {
            /* JSON Pointer escapes: ~1 is '/', ~0 is '~' */
            if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) {
                key[n++] = p[1] == '1' ? '/' : '~';
                p += 2;
            } else {
                key[n++] = *p++;
            }
        }
        key[n] = '\0';
        at = ms_get(at, key);
    }
    return *p ? NULL : at;
}

/* The schema's type: a string, or the first of a list that is not null. */
static const char *ms_type(const cJSON *s)
{
    const cJSON *t = ms_get(s, "type");
    if (cJSON_IsString(t)) return t->valuestring;
    const char *first = NULL;
    const cJSON *e;
    cJSON_ArrayForEach(e, t) {
        if (!cJSON_IsString(e)) continue;
        if (strcmp(e->valuestring, "null") != 0) return e->valuestring;
        if (!first) first = e->valuestring;
    }
    if (first) return first;
    if (ms_get(s, "properties")) return "object";
    if (ms_get(s, "items") || ms_get(s, "prefixItems")) return "array";
    return NULL;
}

static double ms_num(const cJSON *s, const char *k, bool *have)
{
    const cJSON *v = ms_get(s, k);
    *have = cJSON_IsNumber(v);
    return *have ? v->valuedouble : 0;
}

static void ms_number(const cJSON *s, bool integer, buf *out)
{
    bool hlo, hhi, hxlo, hxhi, hmul;
    double lo = ms_num(s, "minimum", &hlo), hi = ms_num(s, "maximum", &hhi);
    double xlo = ms_num(s, "exclusiveMinimum", &hxlo), xhi = ms_num(s, "exclusiveMaximum", &hxhi);
    double mul = ms_num(s, "multipleOf", &hmul);
    double step = integer ? 1 : 0.5;
    if (hxlo && (!hlo || xlo + step > lo)) { lo = xlo + step; hlo = true; }
    if (hxhi && (!hhi || xhi - step < hi)) { hi = xhi - step; hhi = true; }
    double v = 1;
    if (hlo && v < lo) v = lo;
    if (hhi && v > hi) v = hi;
    if (hmul && mul > 0) {
        double k = ceil(v / mul) * mul;
        if (!hhi || k <= hi) v = k;
    }
    if (integer) v = hlo ? ceil(v) : floor(v);
    if (!isfinite(v)) v = 0;
    if (integer || v == floor(v)) buf_printf(out, "%.0f", v);
    else buf_printf(out, "%.17g", v);
}

static void ms_string(const cJSON *s, buf *out)
{
    const char *fmt = cJSON_IsString(ms_get(s, "format")) ? ms_get(s, "format")->valuestring : "";
    static const struct { const char *format, *value; } formats[] = {
        {"date-time", "2024-01-01T00:00:00Z"}, {"date", "2024-01-01"}, {"time", "00:00:00Z"},
        {"email", "user@example.com"}, {"uri", "https://example.com/"}, {"url", "https://example.com/"},
        {"uuid", "00000000-0000-4000-8000-000000000000"}, {"ipv4", "192.0.2.1"}, {"hostname", "example.com"},
    };
    const char *v = "alpha bravo";
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(fmt, formats[i].format) == 0) v = formats[i].value;
    bool hmin, hmax;
    double mn = ms_num(s, "minLength", &hmin), mx = ms_num(s, "maxLength", &hmax);
    size_t len = strlen(v);
    size_t want = len;
    if (hmin && mn > (double)want) want = mn > 4096 ? 4096 : (size_t)mn;
    if (hmax && mx >= 0 && (double)want > mx) want = (size_t)mx;
    buf_puts(out, "\"");
    for (size_t i = 0; i < want; i++) buf_append(out, i < len ? &v[i] : "a", 1);
    buf_puts(out, "\"");
}

static void ms_value(const cJSON *root, const cJSON *s, int depth, buf *out);

static void ms_object(const cJSON *root, const cJSON *s, int depth, buf *out)
{
    const cJSON *props = ms_get(s, "properties");
    const cJSON *req = ms_get(s, "required");
    buf_puts(out, "{");
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, req) {
        if (!cJSON_IsString(r)) continue;
        if (n++) buf_puts(out, ", ");
        json_escape_string(out, r->valuestring, strlen(r->valuestring));
        buf_puts(out, ": ");
        ms_value(root, ms_get(props, r->valuestring), depth + 1, out);
    }
    buf_puts(out, "}");
}

static void ms_array(const cJSON *root, const cJSON *s, int depth, buf *out)
{
    bool hmin, hmax;
    double mn = ms_num(s, "minItems", &hmin), mx = ms_num(s, "maxItems", &hmax);
    double n = hmin && mn > 1 ? mn : 1;
    if (hmax && n > mx) n = mx < 0 ? 0 : mx;
    if (n > MOCK_SCHEMA_MAX_ITEMS) n = MOCK_SCHEMA_MAX_ITEMS;
    const cJSON *prefix = ms_get(s, "prefixItems");
    const cJSON *items = ms_get(s, "items");
    buf_puts(out, "[");
    for (int i = 0; i < (int)n; i++) {
        if (i) buf_puts(out, ", ");
        const cJSON *is = cJSON_GetArrayItem(prefix, i);
        ms_value(root, is ? is : cJSON_IsArray(items) ? cJSON_GetArrayItem(items, i) : items, depth + 1, out);
    }
    buf_puts(out, "]");
}

/* The first branch of anyOf / oneOf that is not just {"type":"null"}. */
static const cJSON *ms_branch(const cJSON *list)
{
    const cJSON *b, *first = NULL;
    cJSON_ArrayForEach(b, list) {
        const char *t = ms_type(b);
        if (!first) first = b;
        if (!t || strcmp(t, "null") != 0) return b;
    }
    return first;
}

static void ms_value(const cJSON *root, const cJSON *s, int depth, buf *out)
{
    if (!cJSON_IsObject(s) || depth > MOCK_SCHEMA_MAX_DEPTH || out->len > (1u << 20)) {
        buf_puts(out, "null");
        return;
    }
    const cJSON *ref = ms_get(s, "$ref");
    if (cJSON_IsString(ref)) {
        ms_value(root, ms_ref(root, ref->valuestring), depth + 1, out);
        return;
    }
    const cJSON *c = ms_get(s, "const");
    const cJSON *en = ms_get(s, "enum");
    if (!c && cJSON_IsArray(en)) c = en->child;
    if (c) {
        char *t = cJSON_PrintUnformatted(c);
        buf_puts(out, t ? t : "null");
        cJSON_free(t);
        return;
    }
    const cJSON *alt = ms_branch(ms_get(s, "anyOf"));
    if (!alt) alt = ms_branch(ms_get(s, "oneOf"));
    if (!alt) alt = cJSON_GetArrayItem(ms_get(s, "allOf"), 0);
    const char *type = ms_type(s);
    if (alt && !type) {
        ms_value(root, alt, depth + 1, out);
        return;
    }
    if (!type || strcmp(type, "null") == 0) buf_puts(out, "null");
    else if (strcmp(type, "object") == 0) ms_object(root, s, depth, out);
    else if (strcmp(type, "array") == 0) ms_array(root, s, depth, out);
    else if (strcmp(type, "string") == 0) ms_string(s, out);
    else if (strcmp(type, "integer") == 0) ms_number(s, true, out);
    else if (strcmp(type, "number") == 0) ms_number(s, false, out);
    else if (strcmp(type, "boolean") == 0) buf_puts(out, "true");
    else buf_puts(out, "null");
}

void mock_schema_instance(const cJSON *schema, buf *out)
{
    ms_value(schema, schema, 0, out);
}
