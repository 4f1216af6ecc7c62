/* patterns.c — the rule file reader and the PCRE2 matcher behind the
 * pattern detector (patterns.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "guard/patterns.h"
#include "guard/normalize.h"
#include "util/xalloc.h"

#include <pcre2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct guard_rule {
    char        name[65];
    char        label[49];
    char       *src;             /* the regular expression as written */
    double      weight;
    int         channels;        /* bit 1 << guard_channel */
    pcre2_code *code;
} guard_rule;

struct guard_rules {
    guard_rule          *rules;
    size_t               n;
    pcre2_match_context *mctx;
    /* per channel, every rule that applies as one alternation, each rule
     * in a group of its own: one pass over the text instead of one per
     * rule (the rules' common first-character map lets PCRE2 skip ahead).
     * group[ch][k] is the capture group of the k-th rule of that channel,
     * rule_of[ch][k] its index. */
    pcre2_code          *combined[2];
    uint32_t            *group[2];
    uint32_t            *rule_of[2];
    size_t               n_of[2];
};

#define RULE_ANY ((1 << GUARD_CHANNEL_USER) | (1 << GUARD_CHANNEL_TOOL))

static bool rule_word_ok(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* The next whitespace-separated field of line[*at..n). */
static bool rule_field(const char *line, size_t n, size_t *at, const char **f, size_t *flen)
{
    size_t i = *at;
    while (i < n && (line[i] == ' ' || line[i] == '\t')) i++;
    size_t s = i;
    while (i < n && line[i] != ' ' && line[i] != '\t') i++;
    *f = line + s;
    *flen = i - s;
    *at = i;
    return *flen > 0;
}

static int rule_parse_line(guard_rules *r, const char *line, size_t n, const char *name,
                           size_t lineno, char *err, size_t errlen)
{
    const char *f[4];
    size_t fl[4], at = 0;
    for (int k = 0; k < 4; k++)
        if (!rule_field(line, n, &at, &f[k], &fl[k])) {
            snprintf(err, errlen, "%s:%zu: a rule is NAME LABEL WEIGHT CHANNELS REGEX", name, lineno);
            return -1;
        }
    while (at < n && (line[at] == ' ' || line[at] == '\t')) at++;
    size_t rend = n;
    while (rend > at && (line[rend - 1] == ' ' || line[rend - 1] == '\t' || line[rend - 1] == '\r'))
        rend--;
    if (rend == at) {
        snprintf(err, errlen, "%s:%zu: the rule has no regular expression", name, lineno);
        return -1;
    }
    if (!rule_word_ok(f[0], fl[0], 64) || !rule_word_ok(f[1], fl[1], 48)) {
        snprintf(err, errlen, "%s:%zu: NAME and LABEL are [a-z0-9_] (64 and 48 bytes at most)",
                 name, lineno);
        return -1;
    }
    char wbuf[32];
    if (fl[2] >= sizeof wbuf) fl[2] = sizeof wbuf - 1;
    memcpy(wbuf, f[2], fl[2]);
    wbuf[fl[2]] = 0;
    char *endp;
    double w = strtod(wbuf, &endp);
    if (*endp || !(w > 0.0 && w <= 1.0)) {
        snprintf(err, errlen, "%s:%zu: WEIGHT must be a number in (0, 1]", name, lineno);
        return -1;
    }
    int ch;
    if (fl[3] == 3 && memcmp(f[3], "any", 3) == 0) ch = RULE_ANY;
    else if (fl[3] == 4 && memcmp(f[3], "user", 4) == 0) ch = 1 << GUARD_CHANNEL_USER;
    else if (fl[3] == 4 && memcmp(f[3], "tool", 4) == 0) ch = 1 << GUARD_CHANNEL_TOOL;
    else {
        snprintf(err, errlen, "%s:%zu: CHANNELS must be any, user or tool", name, lineno);
        return -1;
    }
    for (size_t i = 0; i < r->n; i++)
        if (strlen(r->rules[i].name) == fl[0] && memcmp(r->rules[i].name, f[0], fl[0]) == 0) {
            snprintf(err, errlen, "%s:%zu: rule \"%.*s\" is defined twice", name, lineno,
                     (int)fl[0], f[0]);
            return -1;
        }
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)(line + at), rend - at,
                                     PCRE2_CASELESS,
                                     &ecode, &eoff, NULL);
    if (!code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        snprintf(err, errlen, "%s:%zu: regular expression, at offset %zu: %s", name, lineno,
                 (size_t)eoff, (const char *)msg);
        return -1;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);   /* faster when available; works without */
    guard_rule *g = &r->rules[r->n++];
    memset(g, 0, sizeof *g);
    memcpy(g->name, f[0], fl[0]);
    memcpy(g->label, f[1], fl[1]);
    g->weight = w;
    g->channels = ch;
    g->code = code;
    g->src = xmalloc(rend - at + 1);
    memcpy(g->src, line + at, rend - at);
    g->src[rend - at] = 0;
    return 0;
}

/* Join the rules of each channel into one pattern. A rule's own numbered
 * groups shift, so rules may not use numbered back-references (\\1): the
 * joined pattern would then mean something else; such a rule is refused. */
static int rules_combine(guard_rules *r, const char *name, char *err, size_t errlen)
{
    for (int ch = 0; ch < 2; ch++) {
        size_t cap = 64;
        for (size_t i = 0; i < r->n; i++) cap += strlen(r->rules[i].src) + 8;
        char *pat = xmalloc(cap);
        size_t o = 0;
        uint32_t next_group = 1;
        r->group[ch] = xcalloc(r->n + 1, sizeof(uint32_t));
        r->rule_of[ch] = xcalloc(r->n + 1, sizeof(uint32_t));
        for (size_t i = 0; i < r->n; i++) {
            if (!(r->rules[i].channels & (1 << ch))) continue;
            uint32_t inner = 0, backref = 0;
            pcre2_pattern_info(r->rules[i].code, PCRE2_INFO_CAPTURECOUNT, &inner);
            pcre2_pattern_info(r->rules[i].code, PCRE2_INFO_BACKREFMAX, &backref);
            if (backref) {
                snprintf(err, errlen, "%s: rule \"%s\" uses a back-reference; rules may not",
                         name, r->rules[i].name);
                free(pat);
                return -1;
            }
            o += (size_t)snprintf(pat + o, cap - o, "%s(%s)", r->n_of[ch] ? "|" : "",
                                  r->rules[i].src);
            r->group[ch][r->n_of[ch]] = next_group;
            r->rule_of[ch][r->n_of[ch]] = (uint32_t)i;
            r->n_of[ch]++;
            next_group += 1 + inner;
        }
        if (r->n_of[ch] == 0) { free(pat); continue; }
        int ecode;
        PCRE2_SIZE eoff;
        r->combined[ch] = pcre2_compile((PCRE2_SPTR)pat, o, PCRE2_CASELESS, &ecode, &eoff, NULL);
        free(pat);
        if (!r->combined[ch]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            snprintf(err, errlen, "%s: the rules together do not compile: %s", name,
                     (const char *)msg);
            return -1;
        }
        pcre2_jit_compile(r->combined[ch], PCRE2_JIT_COMPLETE);
    }
    return 0;
}

guard_rules *guard_rules_parse(const char *text, size_t len, const char *name, char *err,
                               size_t errlen)
{
    if (len > GUARD_RULES_FILE_MAX) {
        snprintf(err, errlen, "%s: larger than %d bytes", name, GUARD_RULES_FILE_MAX);
        return NULL;
    }
    guard_rules *r = xcalloc(1, sizeof *r);
    r->rules = xcalloc(GUARD_RULES_MAX, sizeof *r->rules);
    r->mctx = pcre2_match_context_create(NULL);
    /* bounds on backtracking: a rule that would take longer is a miss */
    pcre2_set_match_limit(r->mctx, 200000);
    pcre2_set_depth_limit(r->mctx, 2000);
    size_t at = 0, lineno = 0;
    while (at < len) {
        size_t e = at;
        while (e < len && text[e] != '\n') e++;
        lineno++;
        const char *line = text + at;
        size_t n = e - at;
        at = e + 1;
        size_t s = 0;
        while (s < n && (line[s] == ' ' || line[s] == '\t' || line[s] == '\r')) s++;
        if (s == n || line[s] == '#') continue;
        if (n > GUARD_RULE_LINE_MAX) {
            snprintf(err, errlen, "%s:%zu: longer than %d bytes", name, lineno, GUARD_RULE_LINE_MAX);
            guard_rules_free(r);
            return NULL;
        }
        if (memchr(line, 0, n)) {
            snprintf(err, errlen, "%s:%zu: a NUL byte", name, lineno);
            guard_rules_free(r);
            return NULL;
        }
        if (r->n == GUARD_RULES_MAX) {
            snprintf(err, errlen, "%s: more than %d rules", name, GUARD_RULES_MAX);
            guard_rules_free(r);
            return NULL;
        }
        if (rule_parse_line(r, line + s, n - s, name, lineno, err, errlen) != 0) {
            guard_rules_free(r);
            return NULL;
        }
    }
    if (r->n == 0) {
        snprintf(err, errlen, "%s: no rules", name);
        guard_rules_free(r);
        return NULL;
    }
    if (rules_combine(r, name, err, errlen) != 0) {
        guard_rules_free(r);
        return NULL;
    }
    return r;
}

guard_rules *guard_rules_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return NULL;
    }
    char *buf = xmalloc(GUARD_RULES_FILE_MAX + 1);
    size_t n = fread(buf, 1, GUARD_RULES_FILE_MAX + 1, f);
    fclose(f);
    guard_rules *r = guard_rules_parse(buf, n, path, err, errlen);
    free(buf);
    return r;
}

size_t guard_rules_count(const guard_rules *r) { return r ? r->n : 0; }

void guard_rules_free(guard_rules *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        pcre2_code_free(r->rules[i].code);
        free(r->rules[i].src);
    }
    for (int ch = 0; ch < 2; ch++) {
        pcre2_code_free(r->combined[ch]);
        free(r->group[ch]);
        free(r->rule_of[ch]);
    }
    pcre2_match_context_free(r->mctx);
    free(r->rules);
    free(r);
}

/* ---- scanning ---- */

typedef struct scan_state {
    const guard_rules *r;
    guard_channel      ch;
    bool               matched[GUARD_RULES_MAX];
    double             keep;              /* Π (1 − weight) of matched rules */
    pcre2_match_data  *md;
    guard_detection   *out;
} scan_state;

static void scan_hit(scan_state *st, size_t i, const guard_norm *g, size_t s0, size_t e0,
                     bool decoded, size_t run_start, size_t run_end)
{
    const guard_rule *rule = &st->r->rules[i];
    st->matched[i] = true;
    st->keep *= 1.0 - rule->weight;
    guard_detection_label(st->out, rule->label);
    if (decoded) {
        guard_detection_label(st->out, "encoded_payload");
        guard_detection_span(st->out, run_start, run_end, rule->label);
    } else {
        size_t s, e;
        guard_norm_span(g, s0, e0, &s, &e);
        guard_detection_span(st->out, s, e, rule->label);
    }
}

/* One pass of the channel's joined pattern; after each match, go on from
 * the next byte, so every rule that matches somewhere is found unless
 * another rule, earlier in the file, matches at the very same place. */
static void scan_reading(scan_state *st, const guard_norm *g, bool decoded, size_t run_start,
                         size_t run_end)
{
    const guard_rules *r = st->r;
    const pcre2_code *code = r->combined[st->ch];
    if (!code) return;
    size_t off = 0;
    while (off < g->len) {
        int rc = pcre2_match(code, (PCRE2_SPTR)g->text, g->len, off, 0, st->md, r->mctx);
        if (rc < 0) return;   /* no more matches, or the match limit: stop */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md);
        uint32_t count = pcre2_get_ovector_count(st->md);
        for (size_t k = 0; k < r->n_of[st->ch]; k++) {
            uint32_t grp = r->group[st->ch][k];
            if (grp >= count || ov[2 * grp] == PCRE2_UNSET) continue;
            size_t i = r->rule_of[st->ch][k];
            if (!st->matched[i]) scan_hit(st, i, g, ov[2 * grp], ov[2 * grp + 1], decoded,
                                          run_start, run_end);
            break;
        }
        off = ov[0] + 1;
    }
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Decode a base64 run (standard or URL alphabet, padding optional); the
 * output is at most 3/4 of the input. Returns the length. */
static size_t b64_decode(const char *s, size_t n, unsigned char *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) break;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

/* Does it look like text? Valid UTF-8, mostly printable. */
static bool b64_texty(const unsigned char *s, size_t n)
{
    if (n < 8) return false;
    size_t ok = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        int32_t cp = guard_utf8_next(s + i, n - i, &len);
        if (cp < 0) return false;
        if (cp >= 0x20 || cp == '\n' || cp == '\t' || cp == '\r') ok += len;
        i += len;
    }
    return ok * 10 >= n * 9;
}

static void scan_text(scan_state *st, const char *text, size_t len, int depth, bool decoded,
                      size_t run_start, size_t run_end);

static void scan_base64(scan_state *st, const char *text, size_t len, int depth, bool decoded,
                        size_t run_start, size_t run_end)
{
    size_t i = 0;
    while (i < len) {
        if (b64_value((unsigned char)text[i]) < 0) { i++; continue; }
        size_t s = i;
        while (i < len && b64_value((unsigned char)text[i]) >= 0) i++;
        size_t e = i;
        while (i < len && text[i] == '=') i++;
        if (e - s < GUARD_BASE64_MIN) continue;
        /* a long word of letters only is rarely base64; a run needs a digit,
         * or both cases, to be worth decoding */
        bool lower = false, upper = false, digit = false;
        for (size_t k = s; k < e; k++) {
            char c = text[k];
            lower |= c >= 'a' && c <= 'z';
            upper |= c >= 'A' && c <= 'Z';
            digit |= (c >= '0' && c <= '9') || c == '+' || c == '/';
        }
        if (!(lower && upper) && !digit) continue;
        unsigned char *buf = xmalloc((e - s) * 3 / 4 + 4);
        size_t n = b64_decode(text + s, e - s, buf);
        if (b64_texty(buf, n))
            scan_text(st, (const char *)buf, n, depth + 1, true, decoded ? run_start : s,
                      decoded ? run_end : e);
        free(buf);
    }
}

static void scan_text(scan_state *st, const char *text, size_t len, int depth, bool decoded,
                      size_t run_start, size_t run_end)
{
    guard_norm g;
    if (guard_normalize(text, len, 0, &g) != 0) return;
    scan_reading(st, &g, decoded, run_start, run_end);
    guard_norm l;
    guard_norm_leet(&g, &l);
    if (l.len != g.len || memcmp(l.text, g.text, g.len) != 0)
        scan_reading(st, &l, decoded, run_start, run_end);
    guard_norm_free(&l);
    guard_norm_free(&g);
    if (depth < GUARD_DECODE_DEPTH) scan_base64(st, text, len, depth, decoded, run_start, run_end);
}

static void patterns_scan(const guard_detector *d, const char *text, size_t len, guard_channel ch,
                          guard_detection *out)
{
    const guard_rules *r = d->impl;
    scan_state *st = xcalloc(1, sizeof *st);
    st->r = r;
    st->ch = ch;
    st->keep = 1.0;
    st->out = out;
    st->md = pcre2_match_data_create_from_pattern(r->combined[ch] ? r->combined[ch] : r->rules[0].code, NULL);
    scan_text(st, text, len, 0, false, 0, 0);
    out->score = 1.0 - st->keep;
    pcre2_match_data_free(st->md);
    free(st);
}

static void patterns_destroy(guard_detector *d)
{
    guard_rules_free(d->impl);
    free(d);
}

guard_detector *guard_patterns_new(guard_rules *rules)
{
    guard_detector *d = xcalloc(1, sizeof *d);
    d->name = "patterns";
    d->scan = patterns_scan;
    d->destroy = patterns_destroy;
    d->impl = rules;
    return d;
}
