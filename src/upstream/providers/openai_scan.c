/* openai_scan.c — usage and generated text of an OpenAI answer, read
 * without a tree (see openai_scan.h for what is decided here and why the
 * result is always cJSON's).
 *
 * Pass 1 checks the whole text against the JSON grammar and the limits that
 * make cJSON's reading predictable; pass 2, on a text known valid, walks
 * only to usage and to choices[].{message|delta}.{content, tool_calls[].
 * function.{name, arguments}}, taking the first copy of a repeated key as
 * cJSON_GetObjectItemCaseSensitive does. Neither pass allocates. */
#include "upstream/providers/openai_scan.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

#define SCAN_MAX_DEPTH 128
#define SCAN_MAX_NUMBER 63    /* cJSON reads at most 63 characters of a number */

/* ---- pass 1: strict JSON, and nothing cJSON would read otherwise ---- */

typedef struct scan {
    const char *p, *end;
    /* the root's first members of these names (pass 1 notes them) */
    const char *usage, *choices, *type, *id, *model, *created;
    /* openai_scan_members: two more names (quoted), their first values and counts */
    const char *extra[2];
    size_t      extra_len[2];
    const char *extra_first[2];
    unsigned    extra_count[2];
} scan;

/* Bytes that end a run of plain string characters: the quote, the
 * backslash, and the control characters (refused in a string). */
static const unsigned char scan_stop[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1, [0x07] = 1,
    [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1, [0x0e] = 1, [0x0f] = 1,
    [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1,
    [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1,
    ['"'] = 1, ['\\'] = 1,
};

static void scan_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int scan_hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

/* A string; a key may not hold an escape (it could spell a field's name). */
static bool scan_string(scan *s, bool key)
{
    /* a local cursor: stores through s->p could alias the bytes read */
    const char *p = s->p + 1, *end = s->end;   /* past the opening quote */
    for (;;) {
        while (p < end && !scan_stop[(unsigned char)*p]) p++;
        if (p >= end) return false;
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            s->p = p + 1;
            return true;
        }
        if (c < 0x20) return false;
        if (key || end - p < 2) return false;   /* c is the backslash */
        char e = p[1];
        if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
            e == 't') {
            p += 2;
            continue;
        }
        if (e != 'u' || end - p < 6) return false;
        int cp = scan_hex4(p + 2);
        /* \u0000 cuts cJSON's string; a lone surrogate fails its parse */
        if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return false;
        p += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return false;
            int lo = scan_hex4(p + 2);
            if (lo < 0xDC00 || lo > 0xDFFF) return false;
            p += 6;
        }
    }
}

static bool scan_digits(scan *s)
{
    const char *at = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    return s->p > at;
}

static bool scan_number(scan *s)
{
    const char *at = s->p;
    if (*s->p == '-') s->p++;
    if (s->p < s->end && *s->p == '0') s->p++;
    else if (!scan_digits(s)) return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!scan_digits(s)) return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (!scan_digits(s)) return false;
    }
    return s->p - at <= SCAN_MAX_NUMBER;
}

static bool scan_word(scan *s, const char *w, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) return false;
    s->p += n;
    return true;
}

static bool scan_value(scan *s, int depth)
{
    if (s->p >= s->end) return false;
    char c = *s->p;
    if (c == '"') return scan_string(s, false);
    if (c == '-' || (c >= '0' && c <= '9')) return scan_number(s);
    if (c == 't') return scan_word(s, "true", 4);
    if (c == 'f') return scan_word(s, "false", 5);
    if (c == 'n') return scan_word(s, "null", 4);
    if (c != '{' && c != '[') return false;
    if (depth >= SCAN_MAX_DEPTH) return false;
    char close = c == '{' ? '}' : ']';
    s->p++;
    scan_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return true;
    }
    for (;;) {
        if (c == '{') {
            const char *key = s->p;
            if (s->p >= s->end || *s->p != '"' || !scan_string(s, true)) return false;
            size_t klen = (size_t)(s->p - key);   /* with both quotes */
            scan_ws(s);
            if (s->p >= s->end || *s->p != ':') return false;
            s->p++;
            scan_ws(s);
            if (depth == 0) {
                if (!s->usage && klen == 7 && memcmp(key, "\"usage\"", 7) == 0) s->usage = s->p;
                if (!s->choices && klen == 9 && memcmp(key, "\"choices\"", 9) == 0) s->choices = s->p;
                if (!s->type && klen == 6 && memcmp(key, "\"type\"", 6) == 0) s->type = s->p;
                if (!s->id && klen == 4 && memcmp(key, "\"id\"", 4) == 0) s->id = s->p;
                if (!s->model && klen == 7 && memcmp(key, "\"model\"", 7) == 0) s->model = s->p;
                if (!s->created && klen == 9 && memcmp(key, "\"created\"", 9) == 0) s->created = s->p;
                for (int i = 0; i < 2; i++) {
                    if (!s->extra[i] || klen != s->extra_len[i] || memcmp(key, s->extra[i], klen) != 0)
                        continue;
                    if (!s->extra_count[i]++) s->extra_first[i] = s->p;
                }
            }
        }
        if (!scan_value(s, depth + 1)) return false;
        scan_ws(s);
        if (s->p >= s->end) return false;
        if (*s->p == close) {
            s->p++;
            return true;
        }
        if (*s->p != ',') return false;
        s->p++;
        scan_ws(s);
    }
}

/* Pass 1 over a whole text: one object, whitespace around it and nothing
 * else (cJSON ignores trailing bytes; such a text is left to cJSON). */
static bool scan_whole(scan *s)
{
    scan_ws(s);
    if (s->p >= s->end || *s->p != '{' || !scan_value(s, 0)) return false;
    scan_ws(s);
    return s->p == s->end;
}

/* ---- pass 2: the walk, on a text pass 1 accepted ---- */

static const char *walk_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Past the string starting at p (its opening quote). */
static const char *walk_string(const char *p, const char *end)
{
    p++;
    for (;;) {
        while (p < end && !scan_stop[(unsigned char)*p]) p++;
        if (p >= end || *p == '"') return p + 1;
        p += 2;   /* an escape (pass 1 refused control characters) */
    }
}

/* Past the value starting at p. */
static const char *walk_value(const char *p, const char *end)
{
    if (*p == '"') return walk_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
               *p != '\n' && *p != '\r')
            p++;
        return p;
    }
    int depth = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            p = walk_string(p, end);
            continue;
        }
        if (c == '{' || c == '[') depth++;
        else if ((c == '}' || c == ']') && --depth == 0) return p + 1;
        p++;
    }
    return p;
}

/* The next element's value in the object or array being walked: *p is at
 * the container's first byte or just past the previous element. NULL at
 * the end. For an object, *key and *klen name the member. */
static const char *walk_next(const char **p, const char *end, bool object, const char **key,
                             size_t *klen)
{
    if (**p == '}' || **p == ']') return NULL;   /* past the last element */
    const char *q = walk_ws(*p + 1, end);      /* past '{', '[' or ',' */
    if (q >= end || *q == '}' || *q == ']') return NULL;
    if (object) {
        const char *kend = walk_string(q, end);
        *key = q + 1;
        *klen = (size_t)(kend - 1 - (q + 1));
        q = walk_ws(kend, end);
        q = walk_ws(q + 1, end);   /* past ':' */
    }
    const char *after = walk_ws(walk_value(q, end), end);
    *p = after;                    /* at ',' or the closing bracket */
    return q;
}

/* The value of the first member named `name` of the object at p; NULL if p
 * is not an object (cJSON_GetObjectItemCaseSensitive's reading) or has none. */
static const char *walk_get(const char *p, const char *end, const char *name)
{
    if (!p || *p != '{') return NULL;
    size_t n = strlen(name);
    const char *key, *v;
    size_t klen;
    while ((v = walk_next(&p, end, true, &key, &klen)))
        if (klen == n && memcmp(key, name, n) == 0) return v;
    return NULL;
}

/* walk_get of two names in one pass over the object's members. */
static void walk_get2(const char *p, const char *end, const char *n1, const char **v1,
                      const char *n2, const char **v2)
{
    *v1 = *v2 = NULL;
    if (!p || *p != '{') return;
    size_t l1 = strlen(n1), l2 = strlen(n2);
    const char *key, *v;
    size_t klen;
    while ((!*v1 || !*v2) && (v = walk_next(&p, end, true, &key, &klen))) {
        if (!*v1 && klen == l1 && memcmp(key, n1, l1) == 0) *v1 = v;
        else if (!*v2 && klen == l2 && memcmp(key, n2, l2) == 0) *v2 = v;
    }
}

/* cJSON_ArrayForEach: the children of an array or of an object. */
typedef struct walk_each {
    const char *p, *end;
    bool        object, live;
} walk_each;

static walk_each walk_children(const char *p, const char *end)
{
    walk_each w = {p, end, p && *p == '{', p && (*p == '{' || *p == '[')};
    return w;
}

static const char *walk_child(walk_each *w)
{
    if (!w->live) return NULL;
    const char *key;
    size_t klen;
    const char *v = walk_next(&w->p, w->end, w->object, &key, &klen);
    if (!v) w->live = false;
    return v;
}

/* strlen of cJSON's decoded copy of the string at p (pass 1 excluded
 * \u0000 and unpaired surrogates); 0 if p is not a string. */
static size_t walk_strlen(const char *p, const char *end)
{
    if (!p || *p != '"') return 0;
    size_t n = 0;
    p++;
    while (p < end && *p != '"') {
        if (*p != '\\') {
            n++;
            p++;
            continue;
        }
        if (p[1] != 'u') {
            n++;
            p += 2;
            continue;
        }
        int cp = scan_hex4(p + 2);
        p += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            n += 4;
            p += 6;
        } else {
            n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
        }
    }
    return n;
}

/* A number's value as cJSON has it (strtod of its text); false if p is not
 * a number. */
static bool walk_number(const char *p, const char *end, double *out)
{
    if (!p || !(*p == '-' || (*p >= '0' && *p <= '9'))) return false;
    const char *e = walk_value(p, end);
    char num[SCAN_MAX_NUMBER + 1];
    size_t n = (size_t)(e - p);
    if (n > SCAN_MAX_NUMBER) return false;   /* pass 1 refused such a text already */
    /* A plain count of up to 15 digits is below 2^53: exact as a double,
     * so it equals strtod's correctly rounded value without its cost. */
    if (n <= 15) {
        double v = 0;
        size_t i = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9') v = v * 10 + (p[i++] - '0');
        if (i == n) {
            *out = v;
            return true;
        }
    }
    memcpy(num, p, n);
    num[n] = '\0';
    *out = strtod(num, NULL);
    return true;
}

/* openai_text_bytes of provider_openai.c, on the text. */
static size_t walk_text_bytes(const char *msg, const char *end)
{
    if (!msg || *msg != '{') return 0;
    const char *content, *tool_calls, *args, *name;
    walk_get2(msg, end, "content", &content, "tool_calls", &tool_calls);
    size_t n = walk_strlen(content, end);
    walk_each calls = walk_children(tool_calls, end);
    const char *tc;
    while ((tc = walk_child(&calls))) {
        walk_get2(walk_get(tc, end, "function"), end, "arguments", &args, "name", &name);
        n += walk_strlen(args, end) + walk_strlen(name, end);
    }
    return n;
}

/* A string other than "" (pass 1 excluded \u0000, so the decoded copy of
 * any longer one starts with a non-NUL byte). */
static bool walk_nonempty(const char *p, const char *end)
{
    return p && *p == '"' && walk_string(p, end) - p > 2;
}

/* Whether a tool_calls value has a call whose function's arguments are a
 * non-empty string. */
static bool walk_calls_have_args(const char *calls, const char *end)
{
    walk_each each = walk_children(calls, end);
    const char *tc;
    while ((tc = walk_child(&each)))
        if (walk_nonempty(walk_get(walk_get(tc, end, "function"), end, "arguments"), end)) return true;
    return false;
}

/* The next element of the array or object being walked, found without
 * skipping it: *p is at the container's opening byte, or at the end of the
 * previous element's value (where the caller moved it, having read or
 * skipped that value). NULL at the end, with *p at the closing byte. For an
 * object, *key and *klen name the member. */
static const char *walk_step(const char **p, const char *end, bool object, const char **key,
                             size_t *klen)
{
    const char *q = walk_ws(*p, end);            /* the opening byte, a ',' or the closing one */
    if (q >= end) return NULL;
    if (*q == '}' || *q == ']') {
        *p = q;
        return NULL;
    }
    q = walk_ws(q + 1, end);
    if (q >= end) return NULL;
    if (*q == '}' || *q == ']') {                /* an empty container */
        *p = q;
        return NULL;
    }
    if (object) {
        const char *kend = walk_string(q, end);
        *key = q + 1;
        *klen = (size_t)(kend - 1 - (q + 1));
        q = walk_ws(kend, end);
        q = walk_ws(q + 1, end);                 /* past ':' */
    }
    return q;
}

/* A stream chunk's delta at d, in one pass over its members; returns the
 * end of the value. Gives the text bytes (walk_text_bytes' count), whether
 * it carries text as the output cap counts it (a non-empty content,
 * refusal, reasoning_content or reasoning, or a tool call's arguments: the
 * first copy of each, as outcap.c's cJSON reading), and whether it is
 * quiet (every member, each copy as cJSON_ArrayForEach visits them, a role
 * or a null or empty content; an array delta with any element is not). */
static const char *walk_delta(const char *d, const char *end, size_t *text_bytes, bool *has_text,
                              bool *quiet)
{
    *has_text = false;
    *quiet = true;
    if (*d != '{') {
        if (*d == '[') {
            const char *p = d, *key;
            size_t klen;
            *quiet = walk_step(&p, end, false, &key, &klen) == NULL;
        }
        return walk_value(d, end);
    }
    const char *content = NULL, *refusal = NULL, *reasoning_content = NULL, *reasoning = NULL,
               *tool_calls = NULL;
    const char *p = d, *key, *v;
    size_t klen;
    while ((v = walk_step(&p, end, true, &key, &klen))) {
        p = walk_value(v, end);
        bool is_content = klen == 7 && memcmp(key, "content", 7) == 0;
        if (is_content && !content) content = v;
        else if (klen == 7 && !refusal && memcmp(key, "refusal", 7) == 0) refusal = v;
        else if (klen == 17 && !reasoning_content && memcmp(key, "reasoning_content", 17) == 0)
            reasoning_content = v;
        else if (klen == 9 && !reasoning && memcmp(key, "reasoning", 9) == 0) reasoning = v;
        else if (klen == 10 && !tool_calls && memcmp(key, "tool_calls", 10) == 0) tool_calls = v;
        if (klen == 4 && memcmp(key, "role", 4) == 0) continue;
        if (is_content && (*v == 'n' || (*v == '"' && v[1] == '"'))) continue;
        *quiet = false;
    }
    const char *after = p + 1;                   /* p is at the closing brace */
    *has_text = walk_nonempty(content, end) || walk_nonempty(refusal, end) ||
                walk_nonempty(reasoning_content, end) || walk_nonempty(reasoning, end) ||
                walk_calls_have_args(tool_calls, end);
    if (!content && !tool_calls) return after;
    size_t n = walk_strlen(content, end);
    walk_each calls = walk_children(tool_calls, end);
    const char *tc, *args, *name;
    while ((tc = walk_child(&calls))) {
        walk_get2(walk_get(tc, end, "function"), end, "arguments", &args, "name", &name);
        n += walk_strlen(args, end) + walk_strlen(name, end);
    }
    *text_bytes += n;
    return after;
}

/* One choice object at ch, one pass over its members (the first copy of
 * index, delta and finish_reason, the delta read where it stands); returns
 * the end of the object. */
static const char *walk_choice(const char *ch, const char *end, openai_scan_result *out)
{
    const char *ix = NULL, *finish = NULL, *p = ch, *key, *v;
    size_t klen;
    bool delta = false, has_text = false, quiet = true;
    while ((v = walk_step(&p, end, true, &key, &klen))) {
        if (!delta && klen == 5 && memcmp(key, "delta", 5) == 0) {
            delta = true;
            p = walk_delta(v, end, &out->text_bytes, &has_text, &quiet);
            continue;
        }
        p = walk_value(v, end);
        if (!ix && klen == 5 && memcmp(key, "index", 5) == 0) ix = v;
        else if (!finish && klen == 13 && memcmp(key, "finish_reason", 13) == 0) finish = v;
    }
    double num;
    if (walk_number(ix, end, &num) && num >= 0 && num < OPENAI_SCAN_MAX_CHOICE_INDEX &&
        (uint32_t)num + 1 > out->choice_slots)
        out->choice_slots = (uint32_t)num + 1;
    if (has_text) out->text_choices++;
    if ((finish && *finish != 'n') || !quiet) out->quiet = false;
    return p + 1;                                /* p is at the closing brace */
}

/* A string value's bytes (NULL if p is not a string); *plain false when
 * it holds an escape (otherwise its decoded copy is the same bytes: pass 1
 * refused raw control characters). */
static const char *walk_plain_string(const char *p, const char *end, size_t *len, bool *plain)
{
    if (!p || *p != '"') return NULL;
    const char *close = walk_string(p, end) - 1;
    if (memchr(p + 1, '\\', (size_t)(close - (p + 1)))) *plain = false;
    *len = (size_t)(close - (p + 1));
    return p + 1;
}

/* A stream chunk: its choices, each read in one pass (walk_choice), and
 * the facts of openai_scan.h for the resilience layer. */
static void walk_chunk(const scan *s, const char *end, openai_scan_result *out)
{
    out->ids_plain = true;
    out->id = walk_plain_string(s->id, end, &out->id_len, &out->ids_plain);
    out->model = walk_plain_string(s->model, end, &out->model_len, &out->ids_plain);
    if (!out->ids_plain) out->id = out->model = NULL;
    out->have_created = walk_number(s->created, end, &out->created);
    out->usage_member = s->usage != NULL;
    out->type_member = s->type != NULL;
    out->quiet = !s->usage && s->choices && *s->choices == '[';
    bool any_choice = false;
    const char *p = s->choices, *ch, *key;
    size_t klen;
    if (p && (*p == '[' || *p == '{')) {
        bool object = *p == '{';                 /* cJSON_ArrayForEach visits an object's members too */
        while ((ch = walk_step(&p, end, object, &key, &klen))) {
            any_choice = true;
            p = *ch == '{' ? walk_choice(ch, end, out) : walk_value(ch, end);
        }
    }
    if (!any_choice) out->quiet = false;
}

bool openai_scan(const char *text, size_t len, const char *choice_field, openai_scan_result *out)
{
    memset(out, 0, sizeof *out);
    if (!text) return false;
    scan s = {.p = text, .end = text + len};
    if (!scan_whole(&s)) return false;
    const char *end = s.end;
    out->choices = s.choices;

    const char *ptv, *ctv;
    walk_get2(s.usage, end, "prompt_tokens", &ptv, "completion_tokens", &ctv);
    double pt, ct;
    if (walk_number(ptv, end, &pt) && walk_number(ctv, end, &ct) && pt >= 0 && ct >= 0 &&
        pt <= 1e15 && ct <= 1e15) {
        out->in_tok = (int64_t)pt;
        out->out_tok = (int64_t)ct;
        out->have_usage = true;
    }
    if (strcmp(choice_field, "delta") == 0) {
        walk_chunk(&s, end, out);
        return true;
    }
    /* A whole answer's text is counted only for an estimate, which only an
     * answer without usage needs: walking the choices again (each content
     * byte three more times) was a third of the scan. */
    if (out->have_usage) return true;
    walk_each choices = walk_children(s.choices, end);
    const char *ch;
    while ((ch = walk_child(&choices)))
        out->text_bytes += walk_text_bytes(walk_get(ch, end, choice_field), end);
    return true;
}

/* ---- an agent run's reading of a stream chunk ---- */

static void walk_str(const char *p, const char *end, openai_scan_str *out)
{
    out->plain = true;
    out->p = walk_plain_string(p, end, &out->len, &out->plain);
    if (!out->p) out->len = 0;
}

/* openai_scan_delta's pass 2, from the root's "choices" value (or NULL). */
static void walk_run_delta(const char *choices, const char *end, openai_scan_str *content,
                           void (*on_call)(void *arg, const openai_scan_call *call), void *arg)
{
    /* cJSON_GetArrayItem(choices, 0): the first child of an array or object */
    const char *p = choices, *choice = NULL, *key;
    size_t klen;
    if (p && (*p == '[' || *p == '{')) choice = walk_step(&p, end, *p == '{', &key, &klen);
    const char *delta = walk_get(choice, end, "delta"), *c, *calls;
    walk_get2(delta, end, "content", &c, "tool_calls", &calls);
    walk_str(c, end, content);
    walk_each each = walk_children(calls, end);
    const char *tc;
    while ((tc = walk_child(&each))) {
        openai_scan_call call;
        memset(&call, 0, sizeof call);
        const char *ix, *id, *fn, *name, *args;
        walk_get2(tc, end, "index", &ix, "id", &id);
        fn = walk_get(tc, end, "function");
        walk_get2(fn, end, "name", &name, "arguments", &args);
        double num;
        if (walk_number(ix, end, &num))   /* cJSON's valueint: saturated, truncated */
            call.index = num >= INT_MAX ? INT_MAX : num <= (double)INT_MIN ? INT_MIN : (int)num;
        walk_str(id, end, &call.id);
        walk_str(name, end, &call.name);
        walk_str(args, end, &call.arguments);
        on_call(arg, &call);
    }
}

bool openai_scan_delta(const char *text, size_t len, openai_scan_str *content,
                       void (*on_call)(void *arg, const openai_scan_call *call), void *arg)
{
    memset(content, 0, sizeof *content);
    if (!text) return false;
    scan s = {.p = text, .end = text + len};
    if (!scan_whole(&s)) return false;
    walk_run_delta(s.choices, s.end, content, on_call, arg);
    return true;
}

void openai_scan_delta_of(const char *text, size_t len, const openai_scan_result *facts,
                          openai_scan_str *content,
                          void (*on_call)(void *arg, const openai_scan_call *call), void *arg)
{
    memset(content, 0, sizeof *content);
    walk_run_delta(facts->choices, text + len, content, on_call, arg);
}

size_t openai_scan_str_decode(const openai_scan_str *s, char *out)
{
    size_t n = 0;
    const char *p = s->p, *end = s->p ? s->p + s->len : NULL;
    while (p && p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = bs ? (size_t)(bs - p) : (size_t)(end - p);
        memcpy(out + n, p, run);
        n += run;
        p += run;
        if (!bs) break;
        /* pass 1 accepted the string: every escape is whole, every \u
         * not zero, a high surrogate always followed by a low one */
        char e = p[1];
        p += 2;
        switch (e) {
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp = (unsigned)scan_hex4(p);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo = (unsigned)scan_hex4(p + 2);
                p += 6;
                cp = 0x10000 + (((cp & 0x3FF) << 10) | (lo & 0x3FF));
            }
            n += utf8_encode(cp, out + n);
            break;
        }
        default: out[n++] = e; break;   /* \" \\ \/ */
        }
    }
    out[n] = '\0';
    return n;
}

/* The name with its quotes, as pass 1 compares keys; false if too long. */
static bool scan_quoted(const char *name, char *out, size_t cap, size_t *len)
{
    size_t n = strlen(name);
    if (n + 3 > cap) return false;
    out[0] = '"';
    memcpy(out + 1, name, n);
    out[n + 1] = '"';
    out[n + 2] = '\0';
    *len = n + 2;
    return true;
}

bool openai_scan_members(const char *text, size_t len, const char *const names[2],
                         openai_scan_member out[2])
{
    memset(out, 0, 2 * sizeof *out);
    if (!text) return false;
    char q[2][64];
    scan s = {.p = text, .end = text + len};
    for (int i = 0; i < 2; i++) {
        if (!scan_quoted(names[i], q[i], sizeof q[i], &s.extra_len[i])) return false;
        s.extra[i] = q[i];
    }
    if (!scan_whole(&s)) return false;
    for (int i = 0; i < 2; i++) {
        out[i].value = s.extra_first[i];
        out[i].count = s.extra_count[i];
        if (out[i].value) out[i].value_len = (size_t)(walk_value(out[i].value, s.end) - out[i].value);
    }
    return true;
}
