/* chat_scan.c — a chat-completions request read in one pass over its bytes,
 * without a cJSON tree (see chat_scan.h for when it decides).
 *
 * Why: the tree path parsed every gateway request into ~15 allocated nodes,
 * looked its fields up by name one strcmp at a time and freed the tree:
 * ~11k of the loop thread's ~100k instructions per request. This pass
 * checks the whole text's structure (what cJSON would accept), that no
 * object names a key twice, and reads the handful of top-level fields the
 * gateway governs, then applies the tree path's rules to them. Whatever it
 * is not sure of, it leaves to the tree path. */
#include "api/chat_scan.h"

#include <stdint.h>
#include <string.h>

#include "api/chat_fields.h"

#define SCAN_DEPTH     64    /* deeper: the tree path (cJSON allows 1000) */
#define SCAN_KEYS      512   /* keys of the objects open at once */
#define SCAN_OBJ_KEYS  64    /* keys of one object, checked pairwise */
#define SCAN_NUM_MAX   63    /* cJSON reads at most 63 characters of a number */

/* What a value slot is, for the frames and fields that care: a governed
 * top-level field's slot is its chat_field, the others come after. */
enum {
    SLOT_NONE = -1,
    SLOT_MESSAGE = CHAT_FIELD_COUNT,   /* an element of "messages" */
    SLOT_ROLE,                         /* "role" of such an element */
    SLOT_INCLUDE_USAGE,                /* "include_usage" of "stream_options" */
};

typedef enum { V_NONE = 0, V_STRING, V_NUMBER, V_TRUE, V_FALSE, V_NULL, V_OBJECT, V_ARRAY } scan_type;

typedef struct scan_value {
    scan_type   type;
    const char *p;         /* a string's bytes (no quotes) or a number's text */
    size_t      n;
    bool        escaped;   /* a string with a backslash in it */
} scan_value;

typedef enum { K_OTHER, K_TOP, K_MESSAGES, K_MESSAGE, K_STREAM_OPTIONS } frame_kind;

typedef struct scan_frame {
    char       open;       /* '{' or '[' */
    frame_kind kind;
    size_t     key0;       /* this object's first key in keys[] */
    bool       role_ok;    /* K_MESSAGE: a string "role" seen */
} scan_frame;

typedef struct scan_span { const char *p; size_t n; } scan_span;

typedef struct scan {
    const char *p, *end;
    scan_frame  st[SCAN_DEPTH];
    int         depth;                  /* frames open; st[depth - 1] is the innermost */
    scan_span   keys[SCAN_KEYS];
    size_t      n_keys;
    scan_value  f[CHAT_FIELD_COUNT];    /* the governed fields, by chat_field */
    size_t      n_messages;
    bool        messages_ok;            /* every element an object with a string "role" */
    bool        include_usage;
} scan;

static void scan_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

static int scan_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The code unit of a \u escape at p (6 bytes there), or -1. */
static int scan_u16(const char *p, const char *end)
{
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return -1;
    int cp = 0;
    for (int i = 2; i < 6; i++) {
        int h = scan_hex(p[i]);
        if (h < 0) return -1;
        cp = cp * 16 + h;
    }
    return cp;
}

/* At '"': the string to its closing quote, escapes checked as cJSON reads
 * them: a high surrogate only with a low one after it, never a low one
 * alone (\u0000 is json_strict_text's refusal, left to the tree path). */
static bool scan_string(scan *s, scan_value *v)
{
    const char *p = ++s->p;
    v->escaped = false;
    while (p < s->end && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) return false;
        if (c != '\\') {
            p++;
            continue;
        }
        v->escaped = true;
        if (p + 1 >= s->end) return false;
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            break;
        case 'u': {
            int cp = scan_u16(p, s->end);
            if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return false;
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = scan_u16(p, s->end);
                if (lo < 0xDC00 || lo > 0xDFFF) return false;
                p += 6;
            }
            break;
        }
        default:
            return false;
        }
    }
    if (p >= s->end) return false;
    v->type = V_STRING;
    v->p = s->p;
    v->n = (size_t)(p - s->p);
    s->p = p + 1;
    return true;
}

static bool scan_digits(const char **p, const char *end)
{
    const char *q = *p;
    while (*p < end && **p >= '0' && **p <= '9') (*p)++;
    return *p > q;
}

/* A number of the JSON grammar, no longer than cJSON reads whole. */
static bool scan_number(scan *s, scan_value *v)
{
    const char *p = s->p;
    if (p < s->end && *p == '-') p++;
    if (p < s->end && *p == '0') p++;
    else if (!scan_digits(&p, s->end)) return false;
    if (p < s->end && *p == '.') {
        p++;
        if (!scan_digits(&p, s->end)) return false;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < s->end && (*p == '+' || *p == '-')) p++;
        if (!scan_digits(&p, s->end)) return false;
    }
    if ((size_t)(p - s->p) > SCAN_NUM_MAX) return false;
    v->type = V_NUMBER;
    v->p = s->p;
    v->n = (size_t)(p - s->p);
    s->p = p;
    return true;
}

static bool scan_literal(scan *s, const char *lit, size_t n, scan_type t, scan_value *v)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) return false;
    v->p = s->p;   /* a null cap is replaced at these bytes */
    v->n = n;
    s->p += n;
    v->type = t;
    return true;
}

static bool scan_push(scan *s, char open, frame_kind kind)
{
    if (s->depth == SCAN_DEPTH) return false;
    s->st[s->depth++] = (scan_frame){ .open = open, .kind = kind, .key0 = s->n_keys };
    return true;
}

/* The slot of the value after `key` in the innermost object. */
static int scan_key_slot(const scan *s, const char *k, size_t n)
{
    const scan_frame *fr = &s->st[s->depth - 1];
    if (fr->kind == K_TOP) {
        for (int i = 0; i < CHAT_FIELD_COUNT; i++)
            if (chat_governed_fields[i].len == n && memcmp(chat_governed_fields[i].name, k, n) == 0)
                return i;
    } else if (fr->kind == K_MESSAGE) {
        if (n == 4 && memcmp(k, "role", 4) == 0) return SLOT_ROLE;
    } else if (fr->kind == K_STREAM_OPTIONS) {
        if (n == 13 && memcmp(k, "include_usage", 13) == 0) return SLOT_INCLUDE_USAGE;
    }
    return SLOT_NONE;
}

/* A key of the innermost object, at '"': no escape in it (then its bytes
 * are its value), not a repeat of one before it in the object, and at the
 * top level not a governed field in another letter case. */
static bool scan_object_key(scan *s, int *slot)
{
    scan_value k;
    if (s->p >= s->end || *s->p != '"' || !scan_string(s, &k) || k.escaped) return false;
    scan_frame *fr = &s->st[s->depth - 1];
    if (s->n_keys - fr->key0 >= SCAN_OBJ_KEYS || s->n_keys == SCAN_KEYS) return false;
    for (size_t i = fr->key0; i < s->n_keys; i++)
        if (s->keys[i].n == k.n && memcmp(s->keys[i].p, k.p, k.n) == 0) return false;
    s->keys[s->n_keys++] = (scan_span){ k.p, k.n };
    if (fr->kind == K_TOP && k.n <= 3 * CHAT_FIELD_NAME_MAX) {
        /* Folding takes 1 to 3 bytes per letter of a field of at most
         * CHAT_FIELD_NAME_MAX letters: a longer key never folds to one. */
        char key[3 * CHAT_FIELD_NAME_MAX + 1];
        memcpy(key, k.p, k.n);
        key[k.n] = '\0';
        if (chat_request_case_clash(key)) return false;
    }
    *slot = scan_key_slot(s, k.p, k.n);
    scan_ws(s);
    if (s->p >= s->end || *s->p != ':') return false;
    s->p++;
    return true;
}

/* A value closed (a scalar read, or a container's end): its slot notes it. */
static void scan_note(scan *s, int slot, const scan_value *v)
{
    if (slot >= 0 && slot < CHAT_FIELD_COUNT) {
        s->f[slot] = *v;
    } else if (slot == SLOT_ROLE) {
        if (v->type == V_STRING) s->st[s->depth - 1].role_ok = true;
    } else if (slot == SLOT_INCLUDE_USAGE) {
        s->include_usage = v->type == V_TRUE;
    }
}

/* The whole text: one object, nothing but whitespace after it. */
static bool scan_text(scan *s)
{
    int slot = SLOT_NONE;
    /* The slot of each open container, to note it when it closes. */
    int slots[SCAN_DEPTH];
    scan_ws(s);
    if (s->p >= s->end || *s->p != '{') return false;
    s->p++;
    if (!scan_push(s, '{', K_TOP)) return false;
    slots[0] = SLOT_NONE;
    scan_ws(s);
    if (s->p < s->end && *s->p == '}') return false;   /* no messages: the tree path's refusal */
    goto key;

value:
    scan_ws(s);
    if (s->p >= s->end) return false;
    {
        scan_value v = { 0 };
        char c = *s->p;
        if (slot == SLOT_MESSAGE) {
            s->n_messages++;
            if (c != '{') s->messages_ok = false;
        }
        if (c == '{' || c == '[') {
            frame_kind kind = K_OTHER;
            if (c == '{' && slot == CHAT_FIELD_STREAM_OPTIONS) kind = K_STREAM_OPTIONS;
            else if (c == '{' && slot == SLOT_MESSAGE) kind = K_MESSAGE;
            else if (c == '[' && slot == CHAT_FIELD_MESSAGES) kind = K_MESSAGES;
            if (!scan_push(s, c, kind)) return false;
            slots[s->depth - 1] = slot;
            s->p++;
            scan_ws(s);
            if (c == '{') {
                if (s->p < s->end && *s->p == '}') {
                    s->p++;
                    goto close;
                }
                goto key;
            }
            if (s->p < s->end && *s->p == ']') {
                s->p++;
                goto close;
            }
            slot = kind == K_MESSAGES ? SLOT_MESSAGE : SLOT_NONE;
            goto value;
        }
        bool ok;
        if (c == '"') ok = scan_string(s, &v);
        else if (c == '-' || (c >= '0' && c <= '9')) ok = scan_number(s, &v);
        else if (c == 't') ok = scan_literal(s, "true", 4, V_TRUE, &v);
        else if (c == 'f') ok = scan_literal(s, "false", 5, V_FALSE, &v);
        else if (c == 'n') ok = scan_literal(s, "null", 4, V_NULL, &v);
        else ok = false;
        if (!ok) return false;
        scan_note(s, slot, &v);
        goto after;
    }

key:
    if (!scan_object_key(s, &slot)) return false;
    goto value;

close: {
        /* The innermost container ended: pop it, note it in its slot. */
        scan_frame *fr = &s->st[s->depth - 1];
        if (fr->kind == K_MESSAGE && !fr->role_ok) s->messages_ok = false;
        scan_value v = { .type = fr->open == '{' ? V_OBJECT : V_ARRAY };
        int was = slots[s->depth - 1];
        s->n_keys = fr->key0;
        s->depth--;
        if (s->depth == 0) {
            scan_ws(s);
            return s->p == s->end;
        }
        scan_note(s, was, &v);
    }

after:
    scan_ws(s);
    if (s->p >= s->end) return false;
    if (s->st[s->depth - 1].open == '{') {
        if (*s->p == ',') {
            s->p++;
            scan_ws(s);
            goto key;
        }
        if (*s->p != '}') return false;
        s->p++;
        goto close;
    }
    if (*s->p == ',') {
        s->p++;
        slot = s->st[s->depth - 1].kind == K_MESSAGES ? SLOT_MESSAGE : SLOT_NONE;
        goto value;
    }
    if (*s->p != ']') return false;
    s->p++;
    goto close;
}

static bool scan_absent(const scan_value *v) { return v->type == V_NONE || v->type == V_NULL; }

/* Which governed fields the scan reads a value of (in chat_scan, as the
 * tree path reads it), and which it decides only when absent or null,
 * leaving any value to the tree path. The switch names every field of
 * chat_fields.h: a field added there does not compile (-Wswitch) until it
 * is put on one side, so no governed field goes unchecked by the scan. */
static bool scan_decides_absence_only(chat_field f)
{
    switch (f) {
    case CHAT_FIELD_MODEL:
    case CHAT_FIELD_MESSAGES:
    case CHAT_FIELD_STREAM:
    case CHAT_FIELD_STREAM_OPTIONS:
    case CHAT_FIELD_MAX_TOKENS:
    case CHAT_FIELD_MAX_COMPLETION_TOKENS:
    case CHAT_FIELD_N:
    case CHAT_FIELD_SERVICE_TIER:
        return false;
    case CHAT_FIELD_BEST_OF:
    case CHAT_FIELD_AUDIO:
    case CHAT_FIELD_PREDICTION:
    case CHAT_FIELD_WEB_SEARCH_OPTIONS:
    case CHAT_FIELD_MODALITIES:
    case CHAT_FIELD_COUNT:
        break;
    }
    return true;
}

/* A governed count as the tree path reads it: a plain integer (no sign,
 * fraction or exponent, at most 15 digits, so its double is exact) from 1
 * to 1e9. Anything else is either refused there or not worth deciding. */
static bool scan_count(const scan_value *v, uint64_t *out)
{
    if (v->type != V_NUMBER || v->n > 15) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (v->p[i] < '0' || v->p[i] > '9') return false;
        x = x * 10 + (uint64_t)(v->p[i] - '0');
    }
    if (x < 1 || x > 1000000000u) return false;
    *out = x;
    return true;
}

/* max_tokens or max_completion_tokens: absent or null (0), or within the
 * model's cap (chat_check_max_tokens). */
static bool scan_max_tokens(const scan_value *v, const model_cfg *m, uint32_t *out)
{
    *out = 0;
    if (scan_absent(v)) return true;
    uint64_t x;
    if (!scan_count(v, &x) || (m->max_output_tokens && x > m->max_output_tokens)) return false;
    *out = (uint32_t)x;
    return true;
}

bool chat_scan(const char *body, size_t len, const brigade_config *cfg, chat_request *out)
{
    memset(out, 0, sizeof *out);
    scan s;
    s.p = body;
    s.end = body + len;
    s.depth = 0;
    s.n_keys = 0;
    memset(s.f, 0, sizeof s.f);
    s.n_messages = 0;
    s.messages_ok = true;
    s.include_usage = false;
    if (!scan_text(&s)) return false;

    /* model: a configured chat model, named without escapes. */
    const scan_value *mv = &s.f[CHAT_FIELD_MODEL];
    if (mv->type != V_STRING || mv->escaped || mv->n == 0 || mv->n > 128) return false;
    char name[129];
    memcpy(name, mv->p, mv->n);
    name[mv->n] = '\0';
    const model_cfg *m = config_find_model(cfg, name);
    if (!m || m->embedding) return false;

    const scan_value *st = &s.f[CHAT_FIELD_STREAM];
    if (!scan_absent(st) && st->type != V_TRUE && st->type != V_FALSE) return false;
    if (s.f[CHAT_FIELD_MESSAGES].type != V_ARRAY || s.n_messages == 0 || !s.messages_ok) return false;
    uint32_t max_tokens, max_completion_tokens;
    if (!scan_max_tokens(&s.f[CHAT_FIELD_MAX_TOKENS], m, &max_tokens) ||
        !scan_max_tokens(&s.f[CHAT_FIELD_MAX_COMPLETION_TOKENS], m, &max_completion_tokens))
        return false;
    uint32_t choices = 1;
    if (!scan_absent(&s.f[CHAT_FIELD_N])) {
        uint32_t limit = cfg->max_choices ? cfg->max_choices : 8;
        uint64_t x;
        if (!scan_count(&s.f[CHAT_FIELD_N], &x) || x > limit) return false;
        choices = (uint32_t)x;
    }
    /* The unmetered fields (and any other the scan does not read): only
     * their absence (or null) is decided here. */
    for (int f = 0; f < CHAT_FIELD_COUNT; f++)
        if (scan_decides_absence_only((chat_field)f) && !scan_absent(&s.f[f])) return false;
    const scan_value *tier = &s.f[CHAT_FIELD_SERVICE_TIER];
    if (!scan_absent(tier)) {
        if (tier->type != V_STRING || tier->escaped) return false;
        bool fine = (tier->n == 4 && memcmp(tier->p, "auto", 4) == 0) ||
                    (tier->n == 7 && memcmp(tier->p, "default", 7) == 0) ||
                    (tier->n == 4 && memcmp(tier->p, "flex", 4) == 0);
        if (!fine) return false;
    }
    /* stream_options: its include_usage is read from an object only. */
    const scan_value *so = &s.f[CHAT_FIELD_STREAM_OPTIONS];
    if (!scan_absent(so) && so->type != V_OBJECT) return false;

    uint32_t max_out = max_tokens > max_completion_tokens ? max_tokens : max_completion_tokens;
    uint32_t cap = max_out ? 0 : m->max_output_tokens;
    /* The edits the tree path makes, at the same bytes: a renamed model's
     * value (its quotes around mv->p), a null cap's literal. */
    chat_forward_edits ed = {.cap = cap};
    const scan_value *mct = &s.f[CHAT_FIELD_MAX_COMPLETION_TOKENS];
    if (cap && mct->type != V_NONE) {
        ed.cap_replaces = true;
        ed.cap_start = (size_t)(mct->p - body);
        ed.cap_end = ed.cap_start + mct->n;
    }
    if (strcmp(m->name, m->upstream_model) != 0) {
        ed.upstream_model = m->upstream_model;
        ed.model_start = (size_t)(mv->p - body) - 1;
        ed.model_end = (size_t)(mv->p - body) + mv->n + 1;
    }
    out->model = m;
    out->stream = st->type == V_TRUE;
    out->choices = choices;
    out->max_output_tokens = cap ? cap : max_out;
    out->client_wants_usage = so->type == V_OBJECT && s.include_usage;
    chat_request_forward_bytes(body, len, &ed, out);
    return true;
}
