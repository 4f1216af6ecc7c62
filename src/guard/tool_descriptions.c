/* tool_descriptions.c — scanning the MCP tools offered to a run for
 * poisoned descriptions and schemas (tool_descriptions.h), with a small
 * process-wide cache of verdicts. */
#include "guard/tool_descriptions.h"
#include "guard/spotlight.h"
#include "util/xalloc.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the schema's strings ---- */

typedef struct schema_walk {
    char  *out;
    size_t cap, len;
    size_t nodes;
    bool   cut;
} schema_walk;

static void walk_add(schema_walk *w, const char *s)
{
    size_t l = strlen(s);
    if (w->len + l + 2 > w->cap) {     /* room for the text, '\n' and NUL */
        w->cut = true;
        return;
    }
    memcpy(w->out + w->len, s, l);
    w->len += l;
    w->out[w->len++] = '\n';
    w->out[w->len] = 0;
}

/* Every string a model reads in a schema: the values of any key (titles,
 * descriptions, enum values, defaults, examples, const, patterns) and the
 * names of properties — whatever the key, since a hostile server is not
 * bound to the keywords a model honours. Numbers and booleans say nothing. */
static void walk(schema_walk *w, const cJSON *node, int depth)
{
    if (w->cut) return;
    if (++w->nodes > GUARD_SCHEMA_MAX_NODES || depth > GUARD_SCHEMA_MAX_DEPTH) {
        w->cut = true;
        return;
    }
    if (cJSON_IsString(node) && node->valuestring) {
        walk_add(w, node->valuestring);
        return;
    }
    if (!cJSON_IsObject(node) && !cJSON_IsArray(node)) return;
    const cJSON *c;
    cJSON_ArrayForEach(c, node) {
        if (cJSON_IsObject(node) && c->string) walk_add(w, c->string);
        walk(w, c, depth + 1);
        if (w->cut) return;
    }
}

bool guard_schema_strings(const cJSON *schema, char *out, size_t cap)
{
    schema_walk w = {.out = out, .cap = cap};
    out[0] = 0;
    walk(&w, schema, 0);
    return !w.cut;
}

/* ---- the cache of verdicts ---- */

#define TOOLDESC_CACHE_SLOTS 256

/* A slot is found by the SHA-256 of what was judged (the server, the tool,
 * its description and its schema's strings, each with its length), and
 * holds the whole digest. The key was a 64-bit FNV-1a alone: an MCP server
 * could compute a poisoned description whose key equals that of a clean
 * one it served first (a 2^32 birthday search: minutes), and be given the
 * clean verdict from the cache. */
#define TOOLDESC_KEY_BYTES 32

typedef struct cache_slot {
    bool               used;
    unsigned char      key[TOOLDESC_KEY_BYTES];
    guard_tooldesc_hit verdict;       /* f.flagged false: clean */
} cache_slot;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_slot      cache[TOOLDESC_CACHE_SLOTS];

static bool key_field(EVP_MD_CTX *c, const char *s)
{
    uint64_t n = strlen(s);
    return EVP_DigestUpdate(c, &n, sizeof n) == 1 && EVP_DigestUpdate(c, s, n) == 1;
}

/* false: no digest (out of memory): the verdict is not cached. */
static bool tooldesc_key(unsigned char key[TOOLDESC_KEY_BYTES], const char *server, const char *tool,
                         const char *description, const char *schema_text)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned len = 0;
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 && key_field(c, server) &&
              key_field(c, tool) && key_field(c, description) && key_field(c, schema_text) &&
              EVP_DigestFinal_ex(c, key, &len) == 1 && len == TOOLDESC_KEY_BYTES;
    EVP_MD_CTX_free(c);
    return ok;
}

static cache_slot *cache_slot_of(const unsigned char key[TOOLDESC_KEY_BYTES])
{
    uint64_t at;
    memcpy(&at, key, sizeof at);
    return &cache[at % TOOLDESC_CACHE_SLOTS];
}

void guard_tool_descriptions_cache_clear(void)
{
    pthread_mutex_lock(&cache_lock);
    memset(cache, 0, sizeof cache);
    pthread_mutex_unlock(&cache_lock);
}

/* Point the finding's names at the hit's own copies. */
static void hit_own(guard_tooldesc_hit *h)
{
    h->f.detector = h->detector_buf;
    for (size_t i = 0; i < h->f.det.n_labels; i++) h->f.det.labels[i] = h->label_bufs[i];
    for (size_t i = 0; i < h->f.det.n_spans; i++) h->f.det.spans[i].label = "";
}

static void hit_copy_names(guard_tooldesc_hit *h, const guard_finding *f)
{
    h->f = *f;
    snprintf(h->detector_buf, sizeof h->detector_buf, "%s", f->detector ? f->detector : "");
    for (size_t i = 0; i < f->det.n_labels; i++)
        snprintf(h->label_bufs[i], sizeof h->label_bufs[i], "%s", f->det.labels[i]);
    hit_own(h);
}

static bool cache_get(const unsigned char key[TOOLDESC_KEY_BYTES], guard_tooldesc_hit *out)
{
    bool found = false;
    pthread_mutex_lock(&cache_lock);
    cache_slot *s = cache_slot_of(key);
    if (s->used && memcmp(s->key, key, TOOLDESC_KEY_BYTES) == 0) {
        *out = s->verdict;
        hit_own(out);
        found = true;
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}

static void cache_put(const unsigned char key[TOOLDESC_KEY_BYTES], const guard_tooldesc_hit *v)
{
    pthread_mutex_lock(&cache_lock);
    cache_slot *s = cache_slot_of(key);   /* the newest wins the slot */
    s->used = true;
    memcpy(s->key, key, TOOLDESC_KEY_BYTES);
    s->verdict = *v;
    hit_own(&s->verdict);
    pthread_mutex_unlock(&cache_lock);
}

/* ---- what poisons a description ---- */

/* A description is instructions to the model by nature ("Get the forecast
 * for a city."), so the classifier, which scores how much a text reads as
 * instructions, cannot tell a clean one from a poisoned one (measured with
 * the shipped weights, tool channel: clean descriptions score 0.52-0.82, a
 * poisoned one 0.65). Descriptions are judged by the pattern rules (an
 * override, a role change, a fake system message) and by what a clean
 * description never needs: a tag that shouts to the model (<IMPORTANT>,
 * <SYSTEM>), or asking to keep something from the user. */
static const struct { const char *phrase, *label; } desc_rules[] = {
    {"<important>", "hidden_instruction_tag"}, {"</important>", "hidden_instruction_tag"},
    {"<system>", "hidden_instruction_tag"}, {"<instructions>", "hidden_instruction_tag"},
    {"<secret>", "hidden_instruction_tag"},
    {"do not tell the user", "secrecy"}, {"don't tell the user", "secrecy"},
    {"do not mention", "secrecy"}, {"never mention", "secrecy"}, {"don't mention", "secrecy"},
    {"without telling the user", "secrecy"}, {"do not inform the user", "secrecy"},
    {"do not reveal this", "secrecy"}, {"hide this from the user", "secrecy"},
    {"not visible to the user", "secrecy"},
};

static void scan_description_rules(const char *text, size_t len, guard_finding *f)
{
    memset(f, 0, sizeof *f);
    char *low = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++)
        low[i] = (text[i] >= 'A' && text[i] <= 'Z') ? (char)(text[i] + 32) : text[i];
    low[len] = 0;
    for (size_t r = 0; r < sizeof desc_rules / sizeof desc_rules[0]; r++) {
        const char *at = strstr(low, desc_rules[r].phrase);
        if (!at) continue;
        f->flagged = true;
        f->detector = "description_rules";
        f->score = 0.9;
        bool have = false;
        for (size_t i = 0; i < f->det.n_labels; i++)
            if (!strcmp(f->det.labels[i], desc_rules[r].label)) have = true;
        if (!have && f->det.n_labels < GUARD_LABELS_MAX)
            f->det.labels[f->det.n_labels++] = desc_rules[r].label;
        if (f->det.n_spans < GUARD_SPANS_MAX) {
            guard_text_span *s = &f->det.spans[f->det.n_spans++];
            s->start = (size_t)(at - low);
            s->end = s->start + strlen(desc_rules[r].phrase);
            s->label = desc_rules[r].label;
        }
    }
    f->det.score = f->score;
    free(low);
}

/* The pattern rules, then the description rules, on one text. */
static void scan_text(const char *text, size_t len, guard_finding *f)
{
    guard_engine_scan_rules(text, len, GUARD_CHANNEL_TOOL, f);
    if (!f->flagged) scan_description_rules(text, len, f);
}

/* ---- one tool ---- */

/* The verdict on one offered MCP tool: its description and schema text. */
static void judge(const tool_def *def, const char *description, const cJSON *schema,
                  guard_tooldesc_hit *v)
{
    char *text = xmalloc(GUARD_SCHEMA_MAX_TEXT);
    bool whole = guard_schema_strings(schema, text, GUARD_SCHEMA_MAX_TEXT);
    unsigned char key[TOOLDESC_KEY_BYTES];
    bool keyed = tooldesc_key(key, def->mcp_server ? def->mcp_server->name : "",
                              def->mcp_tool ? def->mcp_tool : def->name, description, text);
    memset(v, 0, sizeof *v);
    if (keyed && cache_get(key, v)) {
        free(text);
        return;
    }
    guard_finding f;
    memset(&f, 0, sizeof f);
    size_t dlen = strlen(description);
    if (!whole || dlen > GUARD_SCHEMA_MAX_TEXT) {
        /* the model would read text that was not scanned */
        f.flagged = true;
        f.detector = "schema_limits";
        f.score = 1.0;
        f.det.labels[0] = whole ? "description_too_large" : "schema_too_large";
        f.det.n_labels = 1;
    } else {
        scan_text(description, dlen, &f);
        if (!f.flagged && text[0]) scan_text(text, strlen(text), &f);
    }
    free(text);
    if (f.flagged) hit_copy_names(v, &f);
    if (keyed) cache_put(key, v);
}

guard_tooldesc_hit *guard_tool_descriptions_review(const tool_registry *tools, cJSON *specs,
                                                   guard_output_action act, size_t *n)
{
    *n = 0;
    if (act == GUARD_OUTPUT_OFF || !guard_engine_active() || !cJSON_IsArray(specs)) return NULL;
    guard_tooldesc_hit *hits = NULL;
    size_t cap = 0;
    cJSON *spec = specs->child;
    while (spec) {
        cJSON *next = spec->next;
        cJSON *fn = cJSON_GetObjectItemCaseSensitive(spec, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const tool_def *def = cJSON_IsString(name) ? tools_find(tools, name->valuestring) : NULL;
        if (!def || def->kind != TOOL_MCP) {
            spec = next;
            continue;
        }
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(fn, "description");
        const char *d = cJSON_IsString(desc) ? desc->valuestring : "";
        guard_tooldesc_hit v;
        judge(def, d, cJSON_GetObjectItemCaseSensitive(fn, "parameters"), &v);
        if (v.f.flagged) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 4;
                hits = xrealloc(hits, cap * sizeof *hits);
            }
            guard_tooldesc_hit *h = &hits[(*n)++];
            *h = v;
            hit_own(h);
            snprintf(h->tool, sizeof h->tool, "%s", name->valuestring);
            if (act == GUARD_OUTPUT_DROP) {
                h->dropped = true;
                cJSON_Delete(cJSON_DetachItemViaPointer(specs, spec));
            } else if (act == GUARD_OUTPUT_SPOTLIGHT && d[0]) {
                char *marked = guard_spotlight(h->tool, d, strlen(d));
                cJSON_ReplaceItemInObjectCaseSensitive(fn, "description", cJSON_CreateString(marked));
                free(marked);
            }
        }
        spec = next;
    }
    return hits;
}
