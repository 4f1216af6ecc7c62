/* outcap.c — counting a stream's output tokens against the reserved cap,
 * and the events that end a stream cut at it (see outcap.h). */
#include "upstream/resilience/outcap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "upstream/providers/openai_scan.h"
#include "util/json_escape.h"
#include "util/strfmt.h"
#include "util/xalloc.h"

_Static_assert(UPSTREAM_OUTCAP_MAX_CHOICES == OPENAI_SCAN_MAX_CHOICE_INDEX,
              "the scan and the cJSON reading bound choices[].index alike");

/* Output items of a Responses stream kept for the synthesized end. */
#define OUTCAP_MAX_ITEMS 64

/* The text deltas add to an item (a content part's text, or a call's
 * arguments: part -1) since its last output_item event, appended to a
 * buffer and joined to the item only when the end is synthesized.
 * Appending to the cJSON string instead copied all of it at every delta:
 * quadratic in a long answer of small deltas. At most OUTCAP_TEXTS of
 * them and OUTCAP_KEEP_MAX bytes in all (a Response's text past that is
 * cut in the synthesized end, which the client's deltas still had). */
#define OUTCAP_TEXTS 128
#define OUTCAP_KEEP_MAX (4u << 20)

typedef struct outcap_text {
    int item, part;
    buf text;
} outcap_text;

void upstream_outcap_init(upstream_outcap *oc, uint64_t cap, bool responses)
{
    memset(oc, 0, sizeof *oc);
    oc->cap = cap;
    oc->responses = responses;
}

void upstream_outcap_reset(upstream_outcap *oc)
{
    upstream_outcap_free(oc);
    upstream_outcap_init(oc, oc->cap, oc->responses);
}

void upstream_outcap_free(upstream_outcap *oc)
{
    cJSON_Delete(oc->items);
    oc->items = NULL;
    for (size_t i = 0; i < oc->n_texts; i++) buf_free(&oc->texts[i].text);
    free(oc->texts);
    oc->texts = NULL;
    oc->n_texts = 0;
    oc->kept = 0;
}

static bool outcap_nonempty(const cJSON *s) { return cJSON_IsString(s) && s->valuestring[0]; }

/* ---------------------------------------------------------- chat chunks */

static uint64_t outcap_chat_tokens(upstream_outcap *oc, const cJSON *j)
{
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices"), *ch;
    uint64_t n = 0;
    cJSON_ArrayForEach(ch, choices) {
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(ch, "index");
        if (cJSON_IsNumber(ix) && ix->valuedouble >= 0 && ix->valuedouble < UPSTREAM_OUTCAP_MAX_CHOICES &&
            (uint32_t)ix->valuedouble + 1 > oc->choices)
            oc->choices = (uint32_t)ix->valuedouble + 1;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(ch, "delta");
        bool text = outcap_nonempty(cJSON_GetObjectItemCaseSensitive(d, "content")) ||
                    outcap_nonempty(cJSON_GetObjectItemCaseSensitive(d, "refusal")) ||
                    outcap_nonempty(cJSON_GetObjectItemCaseSensitive(d, "reasoning_content")) ||
                    outcap_nonempty(cJSON_GetObjectItemCaseSensitive(d, "reasoning"));
        const cJSON *tc;
        cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(d, "tool_calls")) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
            if (outcap_nonempty(cJSON_GetObjectItemCaseSensitive(fn, "arguments"))) text = true;
        }
        if (text) n++;
    }
    if (n && !oc->id[0]) {
        /* The end chunks repeat the stream's id, created and model. */
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
        const cJSON *created = cJSON_GetObjectItemCaseSensitive(j, "created");
        snprintf(oc->id, sizeof oc->id, "%s", cJSON_IsString(id) ? id->valuestring : "chatcmpl-cut");
        snprintf(oc->model, sizeof oc->model, "%s", cJSON_IsString(model) ? model->valuestring : "");
        oc->created = cJSON_IsNumber(created) && created->valuedouble >= 0 && created->valuedouble < 1e12
                          ? (int64_t)created->valuedouble : 0;
    }
    return n;
}

/* ------------------------------------------------------ Responses events */

static cJSON *outcap_item_at(upstream_outcap *oc, const cJSON *ev)
{
    const cJSON *oi = cJSON_GetObjectItemCaseSensitive(ev, "output_index");
    if (!cJSON_IsNumber(oi) || oi->valuedouble < 0 || oi->valuedouble >= OUTCAP_MAX_ITEMS) return NULL;
    return cJSON_GetArrayItem(oc->items, (int)oi->valuedouble);
}

/* Put (a copy of) item at its output_index; the text kept for the item
 * it replaces goes (an item done carries its whole text). */
static void outcap_set_item(upstream_outcap *oc, const cJSON *ev, const cJSON *item)
{
    const cJSON *oi = cJSON_GetObjectItemCaseSensitive(ev, "output_index");
    if (!cJSON_IsObject(item) || !cJSON_IsNumber(oi) || oi->valuedouble < 0 || oi->valuedouble >= OUTCAP_MAX_ITEMS)
        return;
    int at = (int)oi->valuedouble;
    if (!oc->items) oc->items = cJSON_CreateArray();
    while (cJSON_GetArraySize(oc->items) <= at) cJSON_AddItemToArray(oc->items, cJSON_CreateNull());
    cJSON_ReplaceItemInArray(oc->items, at, cJSON_Duplicate(item, true));
    for (size_t i = 0; i < oc->n_texts; i++)
        if (oc->texts[i].item == at) {
            oc->kept -= oc->texts[i].text.len;
            oc->texts[i].text.len = 0;
        }
}

/* Keep text that a delta added to item `item` (part -1: the arguments). */
static void outcap_keep_text(upstream_outcap *oc, int item, int part, const char *text)
{
    size_t tl = strlen(text);
    if (item < 0 || oc->kept + tl > OUTCAP_KEEP_MAX) return;
    outcap_text *t = NULL;
    for (size_t i = 0; i < oc->n_texts && !t; i++)
        if (oc->texts[i].item == item && oc->texts[i].part == part) t = &oc->texts[i];
    if (!t) {
        if (oc->n_texts == OUTCAP_TEXTS) return;
        if (!oc->texts) oc->texts = xcalloc(OUTCAP_TEXTS, sizeof *oc->texts);
        t = &oc->texts[oc->n_texts++];
        t->item = item;
        t->part = part;
        buf_init(&t->text);
    }
    buf_append(&t->text, text, tl);
    oc->kept += tl;
}

/* Append text to the string `key` of obj (created if missing). */
static void outcap_append(cJSON *obj, const char *key, const char *text, size_t tl)
{
    if (!cJSON_IsObject(obj)) return;
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *o = cJSON_IsString(old) ? old->valuestring : "";
    size_t ol = strlen(o);
    char *s = xmalloc(ol + tl + 1);
    memcpy(s, o, ol);
    memcpy(s + ol, text, tl);
    s[ol + tl] = '\0';
    cJSON *v = cJSON_CreateString(s);
    free(s);
    if (old) cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v);
    else cJSON_AddItemToObject(obj, key, v);
}

static uint64_t outcap_responses_tokens(upstream_outcap *oc, const cJSON *ev)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    if (!cJSON_IsString(type)) return 0;
    const char *t = type->valuestring;
    if (!strcmp(t, "response.output_item.added") || !strcmp(t, "response.output_item.done")) {
        outcap_set_item(oc, ev, cJSON_GetObjectItemCaseSensitive(ev, "item"));
        return 0;
    }
    cJSON *item = outcap_item_at(oc, ev);
    if (!strcmp(t, "response.content_part.added")) {
        const cJSON *part = cJSON_GetObjectItemCaseSensitive(ev, "part");
        cJSON *content = cJSON_GetObjectItemCaseSensitive(item, "content");
        if (cJSON_IsArray(content) && cJSON_IsObject(part) && cJSON_GetArraySize(content) < OUTCAP_MAX_ITEMS)
            cJSON_AddItemToArray(content, cJSON_Duplicate(part, true));
        return 0;
    }
    size_t tl = strlen(t);
    if (tl < 6 || strcmp(t + tl - 6, ".delta") != 0) return 0;
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(ev, "delta");
    if (!outcap_nonempty(delta)) return 0;
    const cJSON *oi = cJSON_GetObjectItemCaseSensitive(ev, "output_index");
    int at = item ? (int)oi->valuedouble : -1;   /* outcap_item_at read it */
    if (!strcmp(t, "response.output_text.delta")) {
        const cJSON *ci = cJSON_GetObjectItemCaseSensitive(ev, "content_index");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(item, "content");
        if (cJSON_IsNumber(ci) && cJSON_IsObject(cJSON_GetArrayItem(content, ci->valueint)))
            outcap_keep_text(oc, at, ci->valueint, delta->valuestring);
    } else if (!strcmp(t, "response.function_call_arguments.delta")) {
        if (cJSON_IsObject(item)) outcap_keep_text(oc, at, -1, delta->valuestring);
    }
    return 1;
}

/* ------------------------------------------------------------- counting */

/* The id, model and created of the first chunk with text, from the scan,
 * as outcap_chat_tokens takes them from the tree; false when the scan
 * could not give a string's decoded bytes (an escape in it). */
static bool outcap_take_ids(upstream_outcap *oc, const openai_scan_result *f)
{
    if (!f->ids_plain) return false;
    if (f->id) str_copy_max(oc->id, sizeof oc->id, f->id, f->id_len);
    else str_copy(oc->id, sizeof oc->id, "chatcmpl-cut");
    if (f->model) str_copy_max(oc->model, sizeof oc->model, f->model, f->model_len);
    else oc->model[0] = '\0';
    oc->created = f->have_created && f->created >= 0 && f->created < 1e12 ? (int64_t)f->created : 0;
    return true;
}

bool upstream_outcap_reads_chunks(const upstream_outcap *oc)
{
    return oc->cap && !oc->responses;
}

uint64_t upstream_outcap_tokens(upstream_outcap *oc, const char *json, size_t len,
                                const openai_scan_result *facts)
{
    if (!oc->cap) return 0;
    /* Every chunk of a capped stream passes here: read it without a tree
     * (the same reading, openai_scan.h) — the provider's reading when it
     * made one, else a scan. The first chunk with text also gives the id,
     * model and created that a cut's end chunks repeat (from the scan too,
     * unless one of them holds an escape: then that chunk goes to cJSON). */
    openai_scan_result r;
    if (!oc->responses && !facts && openai_scan(json, len, "delta", &r)) facts = &r;
    if (!oc->responses && facts && !facts->type_member &&
        (facts->text_choices == 0 || oc->id[0] || outcap_take_ids(oc, facts))) {
        if (facts->choice_slots > oc->choices) oc->choices = facts->choice_slots;
        return facts->text_choices;
    }
    cJSON *j = cJSON_ParseWithLength(json, len);
    uint64_t n = 0;
    if (cJSON_IsObject(j)) n = oc->responses ? outcap_responses_tokens(oc, j) : outcap_chat_tokens(oc, j);
    cJSON_Delete(j);
    return n;
}

bool upstream_outcap_pass(upstream_outcap *oc, uint64_t tokens)
{
    if (!oc->cap || !tokens) return true;
    if (oc->streamed + tokens > oc->cap) return false;
    oc->streamed += tokens;
    return true;
}

/* ------------------------------------------------------------- the end */

static void outcap_emit(buf *out, buf *ev)
{
    buf_append(out, ev->data, ev->len);
    buf_append(out, "", 1);
    ev->len = 0;
}

static void outcap_chunk_head(const upstream_outcap *oc, buf *ev)
{
    buf_puts(ev, "{\"id\":");
    json_escape_string(ev, oc->id, strlen(oc->id));
    buf_printf(ev, ",\"object\":\"chat.completion.chunk\",\"created\":%" PRId64 ",\"model\":", oc->created);
    json_escape_string(ev, oc->model, strlen(oc->model));
}

/* The output items so far, with whatever is not finished marked
 * incomplete. */
static cJSON *outcap_final_items(const upstream_outcap *oc)
{
    cJSON *out = cJSON_CreateArray(), *it;
    int at = -1;
    cJSON_ArrayForEach(it, oc->items) {
        at++;
        if (!cJSON_IsObject(it)) continue;
        cJSON *c = cJSON_Duplicate(it, true);
        for (size_t i = 0; i < oc->n_texts; i++) {
            const outcap_text *t = &oc->texts[i];
            if (t->item != at || !t->text.len) continue;
            cJSON *into = t->part < 0 ? c : cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "content"), t->part);
            outcap_append(into, t->part < 0 ? "arguments" : "text", t->text.data, t->text.len);
        }
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "status");
        if (!cJSON_IsString(st) || strcmp(st->valuestring, "completed") != 0)
            cJSON_ReplaceItemInObjectCaseSensitive(c, "status", cJSON_CreateString("incomplete"));
        cJSON_AddItemToArray(out, c);
    }
    return out;
}

size_t upstream_outcap_end_events(const upstream_outcap *oc, int64_t input_tokens, buf *out)
{
    int64_t o = (int64_t)oc->streamed;
    buf ev;
    buf_init(&ev);
    size_t n = 0;
    if (oc->responses) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "type", "response.incomplete");
        cJSON *r = cJSON_AddObjectToObject(e, "response");
        cJSON_AddStringToObject(r, "object", "response");
        cJSON_AddStringToObject(r, "status", "incomplete");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "incomplete_details"), "reason", "max_output_tokens");
        cJSON_AddItemToObject(r, "output", outcap_final_items(oc));
        cJSON *u = cJSON_AddObjectToObject(r, "usage");
        cJSON_AddNumberToObject(u, "input_tokens", (double)input_tokens);
        cJSON_AddNumberToObject(u, "output_tokens", (double)o);
        cJSON_AddNumberToObject(u, "total_tokens", (double)(input_tokens + o));
        char *s = xnonnull(cJSON_PrintUnformatted(e));
        cJSON_Delete(e);
        buf_puts(&ev, s);
        free(s);
        outcap_emit(out, &ev);
        buf_free(&ev);
        return 1;
    }
    /* One finish chunk per choice, then the usage chunk — what a provider
     * sends when it stops at max_tokens. */
    uint32_t choices = oc->choices ? oc->choices : 1;
    for (uint32_t k = 0; k < choices; k++, n++) {
        outcap_chunk_head(oc, &ev);
        buf_printf(&ev, ",\"choices\":[{\"index\":%u,\"delta\":{},\"finish_reason\":\"length\"}]}", k);
        outcap_emit(out, &ev);
    }
    outcap_chunk_head(oc, &ev);
    buf_printf(&ev, ",\"choices\":[],\"usage\":{\"prompt_tokens\":%" PRId64 ",\"completion_tokens\":%" PRId64
                    ",\"total_tokens\":%" PRId64 "}}", input_tokens, o, input_tokens + o);
    outcap_emit(out, &ev);
    n++;
    buf_free(&ev);
    return n;
}
