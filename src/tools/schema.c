/* schema.c — the JSON Schema subset that tool definitions use: checking a
 * schema when the configuration loads, and validating a model's arguments
 * against it before a tool runs.
 *
 * Two passes on purpose. tools_schema_check() refuses, at start, every
 * keyword brigade does not implement: a schema that silently meant less
 * than it says (a `pattern` or `$ref` skipped) would let arguments through
 * that its author thought impossible. After that, tools_schema_validate()
 * can trust the schema's shape and only looks at the value.
 *
 * `pattern` is refused rather than mapped to POSIX regex: JSON Schema
 * patterns are ECMA-262 (\d, \w, lookahead, non-greedy, unanchored search),
 * and regcomp() would accept many of them with a different meaning.
 *
 * Messages name the path of the offending value from a root the caller
 * gives ("arguments.items[2].name: expected a string, got number"), so a
 * model that gets one back as its tool result can correct the call. */
#include "tools/tools.h"
#include "util/json_strict.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- paths for messages ---- */

#define SCHEMA_PATH_MAX 256

typedef struct schema_path {
    char   s[SCHEMA_PATH_MAX];
    size_t len;
    bool   cut;                        /* something did not fit: shown as "…" */
} schema_path;

static void path_init(schema_path *p, const char *root)
{
    p->cut = false;
    int n = snprintf(p->s, sizeof p->s, "%s", root && root[0] ? root : "value");
    p->len = n < 0 ? 0 : ((size_t)n < sizeof p->s ? (size_t)n : sizeof p->s - 1);
}

static bool path_ident(const char *name)
{
    if (!name || !name[0]) return false;
    for (const char *c = name; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' ||
                  *c == '$' || *c == '-' || (c != name && *c >= '0' && *c <= '9');
        if (!ok) return false;
    }
    return true;
}

/* Append; returns the old length so the caller can pop back to it. */
static size_t path_push(schema_path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(schema_path *p, const char *fmt, ...)
{
    size_t old = p->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->s + p->len, sizeof p->s - p->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof p->s - p->len) {
        p->s[old] = '\0';           /* does not fit: keep the prefix, mark it */
        p->cut = true;
    } else {
        p->len += (size_t)n;
    }
    return old;
}

static size_t path_push_key(schema_path *p, const char *name)
{
    if (path_ident(name)) return path_push(p, ".%s", name);
    /* Odd names are quoted, with quotes and control bytes made harmless. */
    char q[96];
    size_t j = 0;
    for (const char *c = name ? name : ""; *c && j + 2 < sizeof q; c++)
        q[j++] = (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) ? '?' : *c;
    q[j] = '\0';
    return path_push(p, "[\"%s\"]", q);
}

static void path_pop(schema_path *p, size_t old)
{
    p->len = old;
    p->s[old] = '\0';
}

/* ---- shared helpers ---- */

typedef struct schema_ctx {
    schema_path path;
    char       *err;
    size_t      errlen;
    size_t      nodes;
} schema_ctx;

static bool fail(schema_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(schema_ctx *c, const char *fmt, ...)
{
    if (!c->err || c->errlen == 0) return false;
    int n = snprintf(c->err, c->errlen, "%s%s: ", c->path.s, c->path.cut ? "…" : "");
    if (n < 0) n = 0;
    if ((size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return false;
}

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "boolean";
    if (cJSON_IsNumber(v)) return "number";
    if (cJSON_IsString(v)) return "string";
    if (cJSON_IsArray(v)) return "array";
    if (cJSON_IsObject(v)) return "object";
    return "unknown";
}

static bool is_integer_value(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
           floor(v->valuedouble) == v->valuedouble;
}

static void fmt_num(char out[40], double d)
{
    if (isfinite(d) && floor(d) == d && fabs(d) < 1e15)
        snprintf(out, 40, "%.0f", d);
    else
        snprintf(out, 40, "%.15g", d);
}

/* Characters, not bytes: the value was checked to be UTF-8, so counting
 * the bytes that start a sequence counts code points. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) n++;
    return n;
}

static const char *const schema_types[] = {"object", "array",  "string", "number",
                                           "integer", "boolean", "null", NULL};

static bool known_type(const char *t)
{
    for (const char *const *k = schema_types; *k; k++)
        if (strcmp(*k, t) == 0) return true;
    return false;
}

/* ======================= checking a schema at load ======================= */

static bool check_schema(schema_ctx *c, const cJSON *s, int depth);

static bool check_nonneg_int(schema_ctx *c, const cJSON *v, const char *kw)
{
    if (!is_integer_value(v) || v->valuedouble < 0 || v->valuedouble > 1e15)
        return fail(c, "\"%s\" must be a non-negative integer", kw);
    return true;
}

static bool check_schema_list(schema_ctx *c, const cJSON *v, const char *kw, int depth)
{
    if (!cJSON_IsArray(v) || !v->child)
        return fail(c, "\"%s\" must be a non-empty array of schemas", kw);
    int i = 0;
    for (const cJSON *alt = v->child; alt; alt = alt->next, i++) {
        size_t mark = path_push(&c->path, ".%s[%d]", kw, i);
        if (!check_schema(c, alt, depth + 1)) return false;
        path_pop(&c->path, mark);
    }
    return true;
}

static bool check_type(schema_ctx *c, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        if (!known_type(v->valuestring))
            return fail(c, "unknown type \"%.40s\" (types: object, array, string, number, "
                           "integer, boolean, null)", v->valuestring);
        return true;
    }
    if (!cJSON_IsArray(v) || !v->child)
        return fail(c, "\"type\" must be a type name or a non-empty array of them");
    for (const cJSON *t = v->child; t; t = t->next) {
        if (!cJSON_IsString(t) || !known_type(t->valuestring))
            return fail(c, "\"type\" array holds something that is not a known type name");
        for (const cJSON *u = v->child; u != t; u = u->next)
            if (strcmp(u->valuestring, t->valuestring) == 0)
                return fail(c, "\"type\" lists \"%s\" twice", t->valuestring);
    }
    return true;
}

/* Keywords that are accepted and carry no validation meaning. */
static const char *const schema_annotations[] = {"description", "title", "default", "examples",
                                                 "$schema", "$comment", NULL};

static bool check_keyword(schema_ctx *c, const cJSON *kv, int depth)
{
    const char *k = kv->string;
    for (const char *const *a = schema_annotations; *a; a++)
        if (strcmp(k, *a) == 0) return true;

    if (strcmp(k, "type") == 0) return check_type(c, kv);
    if (strcmp(k, "properties") == 0) {
        if (!cJSON_IsObject(kv)) return fail(c, "\"properties\" must be an object of schemas");
        for (const cJSON *p = kv->child; p; p = p->next) {
            size_t mark = path_push(&c->path, ".properties");
            path_push_key(&c->path, p->string);
            if (!check_schema(c, p, depth + 1)) return false;
            path_pop(&c->path, mark);
        }
        return true;
    }
    if (strcmp(k, "required") == 0) {
        if (!cJSON_IsArray(kv)) return fail(c, "\"required\" must be an array of names");
        for (const cJSON *r = kv->child; r; r = r->next)
            if (!cJSON_IsString(r)) return fail(c, "\"required\" must hold only strings");
        return true;
    }
    if (strcmp(k, "additionalProperties") == 0 || strcmp(k, "items") == 0) {
        if (cJSON_IsArray(kv))
            return fail(c, "the array (tuple) form of \"%s\" is not supported", k);
        size_t mark = path_push(&c->path, ".%s", k);
        if (!check_schema(c, kv, depth + 1)) return false;
        path_pop(&c->path, mark);
        return true;
    }
    if (strcmp(k, "enum") == 0) {
        if (!cJSON_IsArray(kv) || !kv->child) return fail(c, "\"enum\" must be a non-empty array");
        return true;
    }
    if (strcmp(k, "const") == 0) return true;
    if (strcmp(k, "minimum") == 0 || strcmp(k, "maximum") == 0) {
        if (!cJSON_IsNumber(kv)) return fail(c, "\"%s\" must be a number", k);
        return true;
    }
    if (strcmp(k, "exclusiveMinimum") == 0 || strcmp(k, "exclusiveMaximum") == 0) {
        if (!cJSON_IsNumber(kv) && !cJSON_IsBool(kv))
            return fail(c, "\"%s\" must be a number (or, draft-4 style, a boolean)", k);
        return true;
    }
    if (strcmp(k, "minLength") == 0 || strcmp(k, "maxLength") == 0 ||
        strcmp(k, "minItems") == 0 || strcmp(k, "maxItems") == 0)
        return check_nonneg_int(c, kv, k);
    if (strcmp(k, "anyOf") == 0 || strcmp(k, "oneOf") == 0)
        return check_schema_list(c, kv, k, depth);

    if (strcmp(k, "pattern") == 0 || strcmp(k, "patternProperties") == 0)
        return fail(c, "\"%s\" is not supported: JSON Schema regular expressions (ECMA-262) "
                       "are not checked by brigade; remove it and describe the format in "
                       "\"description\"", k);
    return fail(c, "keyword \"%.64s\" is not supported (the supported JSON Schema subset "
                   "is listed in docs/tools.md)", k);
}

static bool check_schema(schema_ctx *c, const cJSON *s, int depth)
{
    if (depth > TOOLS_SCHEMA_MAX_DEPTH)
        return fail(c, "schema nested deeper than %d levels", TOOLS_SCHEMA_MAX_DEPTH);
    if (++c->nodes > TOOLS_SCHEMA_MAX_NODES)
        return fail(c, "schema has more than %d subschemas", TOOLS_SCHEMA_MAX_NODES);
    if (cJSON_IsBool(s)) return true;   /* true: anything; false: nothing */
    if (!cJSON_IsObject(s)) return fail(c, "a schema must be an object (or true/false)");
    for (const cJSON *kv = s->child; kv; kv = kv->next)
        if (!check_keyword(c, kv, depth)) return false;
    /* Bounds that contradict each other are almost always a typo. */
    const cJSON *lo = cJSON_GetObjectItemCaseSensitive(s, "minLength");
    const cJSON *hi = cJSON_GetObjectItemCaseSensitive(s, "maxLength");
    if (lo && hi && lo->valuedouble > hi->valuedouble)
        return fail(c, "\"minLength\" is greater than \"maxLength\"");
    lo = cJSON_GetObjectItemCaseSensitive(s, "minItems");
    hi = cJSON_GetObjectItemCaseSensitive(s, "maxItems");
    if (lo && hi && lo->valuedouble > hi->valuedouble)
        return fail(c, "\"minItems\" is greater than \"maxItems\"");
    return true;
}

/* The path json_strict gives a repeated key ends with the key: the
 * object that repeats it is the rest, pushed onto c's path. */
static void push_dup_parent(schema_ctx *c, const json_strict_error *dup, size_t *parent_len)
{
    size_t pl = strlen(dup->path), kl = strlen(dup->key);
    if (pl >= kl && strcmp(dup->path + pl - kl, dup->key) == 0) pl -= kl;
    if (pl && dup->path[pl - 1] == '.') pl--;
    if (pl) path_push(&c->path, "%s%.*s", dup->path[0] == '[' ? "" : ".", (int)pl, dup->path);
    *parent_len = pl;
}

bool tools_schema_check(const cJSON *schema, const char *where, char *err, size_t errlen)
{
    schema_ctx c = {.err = err, .errlen = errlen};
    path_init(&c.path, where && where[0] ? where : "parameters");
    if (!schema) return fail(&c, "no schema");
    /* A key repeated anywhere, found in one pass (json_strict's seeded
     * set): the keywords and properties of each schema were compared
     * pairwise, up to ~2 M comparisons for a tool of 2 048 properties, for
     * each of an MCP server's 512 tools. */
    json_strict_error dup;
    if (!json_strict_tree(schema, "the schema", &dup)) {
        size_t pl;
        push_dup_parent(&c, &dup, &pl);   /* a keyword, or a property when the path ends .properties */
        return fail(&c, "key \"%.64s\" appears twice", dup.key);
    }
    return check_schema(&c, schema, 0);
}

/* ========================= validating a value ========================= */

static bool validate(schema_ctx *c, const cJSON *s, const cJSON *v, int depth);

static bool type_matches(const char *t, const cJSON *v)
{
    if (strcmp(t, "object") == 0) return cJSON_IsObject(v);
    if (strcmp(t, "array") == 0) return cJSON_IsArray(v);
    if (strcmp(t, "string") == 0) return cJSON_IsString(v);
    if (strcmp(t, "number") == 0) return cJSON_IsNumber(v);
    if (strcmp(t, "integer") == 0) return is_integer_value(v);
    if (strcmp(t, "boolean") == 0) return cJSON_IsBool(v);
    if (strcmp(t, "null") == 0) return cJSON_IsNull(v);
    return false;
}

static const char *with_article(const char *t)
{
    if (strcmp(t, "object") == 0) return "an object";
    if (strcmp(t, "array") == 0) return "an array";
    if (strcmp(t, "string") == 0) return "a string";
    if (strcmp(t, "number") == 0) return "a number";
    if (strcmp(t, "integer") == 0) return "an integer";
    if (strcmp(t, "boolean") == 0) return "a boolean";
    return "null";
}

static bool validate_type(schema_ctx *c, const cJSON *type, const cJSON *v)
{
    if (cJSON_IsString(type)) {
        if (type_matches(type->valuestring, v)) return true;
        return fail(c, "expected %s, got %s", with_article(type->valuestring), json_kind(v));
    }
    char names[128] = "";
    size_t used = 0;
    for (const cJSON *t = type->child; t; t = t->next) {
        if (type_matches(t->valuestring, v)) return true;
        int n = snprintf(names + used, sizeof names - used, "%s%s",
                         used ? (t->next ? ", " : " or ") : "", t->valuestring);
        if (n > 0 && (size_t)n < sizeof names - used) used += (size_t)n;
    }
    return fail(c, "expected %s, got %s", names, json_kind(v));
}

static bool validate_enum(schema_ctx *c, const cJSON *en, const cJSON *v)
{
    for (const cJSON *e = en->child; e; e = e->next)
        if (cJSON_Compare(e, v, true)) return true;
    char list[200] = "";
    size_t used = 0;
    for (const cJSON *e = en->child; e; e = e->next) {
        char *txt = cJSON_PrintUnformatted(e);
        if (!txt) break;
        int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", txt);
        free(txt);
        if (n < 0 || (size_t)n >= sizeof list - used) {
            snprintf(list + used, sizeof list - used, ", …");
            break;
        }
        used += (size_t)n;
    }
    return fail(c, "must be one of %s", list);
}

static bool validate_number(schema_ctx *c, const cJSON *s, double d)
{
    char a[40], b[40];
    fmt_num(b, d);
    const cJSON *min = cJSON_GetObjectItemCaseSensitive(s, "minimum");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(s, "maximum");
    const cJSON *xmin = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum");
    const cJSON *xmax = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum");
    /* draft 4: exclusiveMinimum: true turns minimum into a strict bound */
    bool min_strict = cJSON_IsTrue(xmin), max_strict = cJSON_IsTrue(xmax);
    if (min) {
        fmt_num(a, min->valuedouble);
        if (min_strict ? !(d > min->valuedouble) : !(d >= min->valuedouble))
            return fail(c, "must be %s %s, got %s", min_strict ? ">" : ">=", a, b);
    }
    if (max) {
        fmt_num(a, max->valuedouble);
        if (max_strict ? !(d < max->valuedouble) : !(d <= max->valuedouble))
            return fail(c, "must be %s %s, got %s", max_strict ? "<" : "<=", a, b);
    }
    if (cJSON_IsNumber(xmin)) {
        fmt_num(a, xmin->valuedouble);
        if (!(d > xmin->valuedouble)) return fail(c, "must be > %s, got %s", a, b);
    }
    if (cJSON_IsNumber(xmax)) {
        fmt_num(a, xmax->valuedouble);
        if (!(d < xmax->valuedouble)) return fail(c, "must be < %s, got %s", a, b);
    }
    return true;
}

static bool validate_string(schema_ctx *c, const cJSON *s, const char *str)
{
    const cJSON *minl = cJSON_GetObjectItemCaseSensitive(s, "minLength");
    const cJSON *maxl = cJSON_GetObjectItemCaseSensitive(s, "maxLength");
    if (!minl && !maxl) return true;
    size_t n = utf8_chars(str);
    if (minl && (double)n < minl->valuedouble)
        return fail(c, "must be at least %.0f characters long, got %zu", minl->valuedouble, n);
    if (maxl && (double)n > maxl->valuedouble)
        return fail(c, "must be at most %.0f characters long, got %zu", maxl->valuedouble, n);
    return true;
}

static bool validate_array(schema_ctx *c, const cJSON *s, const cJSON *v, int depth)
{
    size_t n = 0;
    for (const cJSON *e = v->child; e; e = e->next) n++;
    const cJSON *mini = cJSON_GetObjectItemCaseSensitive(s, "minItems");
    const cJSON *maxi = cJSON_GetObjectItemCaseSensitive(s, "maxItems");
    if (mini && (double)n < mini->valuedouble)
        return fail(c, "must have at least %.0f items, got %zu", mini->valuedouble, n);
    if (maxi && (double)n > maxi->valuedouble)
        return fail(c, "must have at most %.0f items, got %zu", maxi->valuedouble, n);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
    if (!items) return true;
    size_t i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        size_t mark = path_push(&c->path, "[%zu]", i);
        if (!validate(c, items, e, depth + 1)) return false;
        path_pop(&c->path, mark);
    }
    return true;
}

static bool validate_object(schema_ctx *c, const cJSON *s, const cJSON *v, int depth)
{
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
    for (const cJSON *r = req ? req->child : NULL; r; r = r->next)
        if (!cJSON_GetObjectItemCaseSensitive(v, r->valuestring))
            return fail(c, "missing required property \"%.64s\"", r->valuestring);

    const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
    for (const cJSON *m = v->child; m; m = m->next) {
        const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, m->string) : NULL;
        if (!ps && cJSON_IsFalse(extra)) {
            char allowed[160] = "";
            size_t used = 0;
            for (const cJSON *p = props ? props->child : NULL; p; p = p->next) {
                int n = snprintf(allowed + used, sizeof allowed - used, "%s%s",
                                 used ? ", " : "", p->string);
                if (n < 0 || (size_t)n >= sizeof allowed - used) {
                    allowed[used] = '\0';
                    break;
                }
                used += (size_t)n;
            }
            if (used)
                return fail(c, "unknown property \"%.64s\" (allowed: %s)", m->string, allowed);
            return fail(c, "unknown property \"%.64s\" (no properties are allowed)", m->string);
        }
        const cJSON *sub = ps ? ps : extra;
        if (!sub) continue;
        size_t mark = path_push_key(&c->path, m->string);
        if (!validate(c, sub, m, depth + 1)) return false;
        path_pop(&c->path, mark);
    }
    return true;
}

/* anyOf / oneOf: try each alternative with its own message buffer, so the
 * failure can say why the first ones did not fit. */
static bool validate_alternatives(schema_ctx *c, const cJSON *alts, const cJSON *v, int depth,
                                  bool one)
{
    size_t matched = 0, count = 0;
    char first[256] = "";
    for (const cJSON *a = alts->child; a; a = a->next, count++) {
        char scratch[256];
        schema_ctx sub = {.path = c->path, .err = scratch, .errlen = sizeof scratch};
        if (validate(&sub, a, v, depth + 1))
            matched++;
        else if (!first[0])
            snprintf(first, sizeof first, "%s", scratch);
    }
    if (one) {
        if (matched == 1) return true;
        if (matched > 1)
            return fail(c, "matches %zu of the %zu \"oneOf\" schemas; exactly one must match",
                        matched, count);
        return fail(c, "matches none of the %zu \"oneOf\" schemas (the first says: %s)", count,
                    first);
    }
    if (matched) return true;
    return fail(c, "matches none of the %zu \"anyOf\" schemas (the first says: %s)", count,
                first);
}

static bool validate(schema_ctx *c, const cJSON *s, const cJSON *v, int depth)
{
    if (depth > TOOLS_SCHEMA_MAX_DEPTH) return fail(c, "nested too deeply");
    if (cJSON_IsTrue(s)) return true;
    if (cJSON_IsFalse(s)) return fail(c, "no value is allowed here");
    if (!cJSON_IsObject(s)) return fail(c, "the tool's schema is not usable");

    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (type && !validate_type(c, type, v)) return false;

    const cJSON *cst = cJSON_GetObjectItemCaseSensitive(s, "const");
    if (cst && !cJSON_Compare(cst, v, true)) {
        char *txt = cJSON_PrintUnformatted(cst);
        bool r = fail(c, "must be %.120s", txt ? txt : "the constant value");
        free(txt);
        return r;
    }
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(s, "enum");
    if (en && !validate_enum(c, en, v)) return false;

    if (cJSON_IsNumber(v) && !validate_number(c, s, v->valuedouble)) return false;
    if (cJSON_IsString(v) && !validate_string(c, s, v->valuestring)) return false;
    if (cJSON_IsArray(v) && !validate_array(c, s, v, depth)) return false;
    if (cJSON_IsObject(v) && !validate_object(c, s, v, depth)) return false;

    const cJSON *any = cJSON_GetObjectItemCaseSensitive(s, "anyOf");
    if (any && !validate_alternatives(c, any, v, depth, false)) return false;
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(s, "oneOf");
    if (one && !validate_alternatives(c, one, v, depth, true)) return false;
    return true;
}

bool tools_schema_validate(const cJSON *schema, const cJSON *value, const char *root,
                           char *err, size_t errlen)
{
    schema_ctx c = {.err = err, .errlen = errlen};
    path_init(&c.path, root);
    if (!schema || !value) return fail(&c, "nothing to validate");
    /* cJSON keeps duplicate keys; a consumer may read either copy, so one
     * value could be validated and the other used. Refuse them, in one
     * pass over the whole value (json_strict's seeded set): each object
     * compared its keys pairwise before, and a model's 1 MiB of arguments
     * (~100 000 keys) took ~20 s of a loop thread. */
    json_strict_error dup;
    if (!json_strict_tree(value, root, &dup)) {
        size_t pl;
        push_dup_parent(&c, &dup, &pl);
        return fail(&c, "property \"%.64s\" appears twice", dup.key);
    }
    return validate(&c, schema, value, 0);
}
