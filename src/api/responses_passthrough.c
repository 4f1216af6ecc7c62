/* responses_passthrough.c — a Responses request sent as a Responses
 * request, to a provider with `responses: passthrough`, and its answer
 * told as brigade's own Response (see responses_translate.h).
 *
 * The provider's store is shared by every user behind one API key, so
 * nothing of it may cross: the request goes with `store: false` and
 * without `previous_response_id` (the conversation is expanded from
 * brigade's store into `input`, as on the translated path, with item ids
 * stripped: they are brigade's, the provider never saw them), and the
 * answer comes back under brigade's `resp_…` id with every output item
 * id replaced by one of brigade's. Only the Response fields that are the
 * provider's to say (status, incomplete_details, output, usage) are taken
 * from it; the rest is brigade's Response, built from the request. */
#include "api/responses_translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"
#include "util/strmap.h"
#include "util/xalloc.h"

static bool pass_provider(const provider_cfg *p)
{
    return p && p->kind == PROVIDER_OPENAI && p->responses_passthrough;
}

/* Every deployment of m alone. */
static bool pass_deployments(const model_cfg *m)
{
    if (!m) return false;
    if (m->n_deployments == 0) return pass_provider(m->provider);   /* one, named by `provider:` */
    for (size_t i = 0; i < m->n_deployments; i++)
        if (!pass_provider(m->deployments[i].provider)) return false;
    return true;
}

/* The call may land on any deployment of the model or of its fallbacks
 * (resilience/fallback.c walks the requested model's list): one body has
 * to fit them all, so a single deployment that translates makes the whole
 * call translate, rather than fail when it is tried. */
bool responses_model_passthrough(const model_cfg *m)
{
    if (!pass_deployments(m)) return false;
    for (size_t i = 0; i < m->n_fallbacks; i++)
        if (!m->fallback_models || !pass_deployments(m->fallback_models[i])) return false;
    return true;
}

/* An item as the provider may take it back: no id (brigade's, or one the
 * client copied), and no reasoning item (without the provider's store,
 * and without its encrypted content, it cannot be sent back: the
 * translated path drops them too). NULL: drop. */
static cJSON *pass_item(const cJSON *it)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "reasoning") == 0) return NULL;
    cJSON *c = cJSON_Duplicate(it, true);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "id");
    return c;
}

char *responses_passthrough_body(const responses_request *r, const cJSON *history,
                                 const char *upstream_model, uint32_t max_output_tokens,
                                 size_t *len)
{
    cJSON *b = cJSON_Duplicate(r->root, true);
    static const char *const dropped[] = {"previous_response_id", "store", "stream",
                                          "stream_options", "model", "input",
                                          "max_output_tokens"};
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(b, dropped[i]);
    cJSON_AddStringToObject(b, "model", upstream_model);
    cJSON *input = cJSON_AddArrayToObject(b, "input");
    const cJSON *it;
    cJSON_ArrayForEach(it, history) {
        cJSON *c = pass_item(it);
        if (c) cJSON_AddItemToArray(input, c);
    }
    cJSON_ArrayForEach(it, r->input_items) {
        cJSON *c = pass_item(it);
        if (c) cJSON_AddItemToArray(input, c);
    }
    cJSON_AddNumberToObject(b, "max_output_tokens", max_output_tokens);
    cJSON_AddFalseToObject(b, "store");
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    xnonnull(s);
    *len = strlen(s);
    return s;
}

/* brigade's id for a provider's item id: the same one every time within a
 * call (the stream names an item many times), with the provider's prefix
 * ("msg", "fc", "rs") when it has a short one. NULL past
 * RESPONSES_PASS_IDS_MAX ids (or out of memory): a Response has a handful
 * of items, and a provider naming new ones without end would grow the map
 * until the call's deadline. A map, not a cJSON object: its lookups walked
 * every id before (40 000 ids: 5.6 s of the loop). */
#define RESPONSES_PASS_IDS_MAX 4096

static const char *pass_map_id(strmap *ids, const char *theirs)
{
    const char *known = strmap_get(ids, theirs);
    if (known) return known;
    if (strmap_count(ids) >= RESPONSES_PASS_IDS_MAX) return NULL;
    char prefix[8] = "item";
    const char *us = strchr(theirs, '_');
    if (us && us > theirs && (size_t)(us - theirs) < sizeof prefix) {
        bool plain = true;
        for (const char *p = theirs; p < us; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) plain = false;
        if (plain) snprintf(prefix, sizeof prefix, "%.*s", (int)(us - theirs), theirs);
    }
    char *mine = malloc(ID_MAX);
    if (!mine) return NULL;
    ids_new(mine, prefix);
    if (strmap_put(ids, theirs, mine) != 0) {
        free(mine);
        return NULL;
    }
    return mine;
}

/* Replace an item's id (or an event's item_id) by brigade's. false: no
 * id could be given (pass_map_id). */
static bool pass_rename(strmap *ids, cJSON *obj, const char *field)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!cJSON_IsString(v)) return true;
    const char *mine = pass_map_id(ids, v->valuestring);
    if (!mine) return false;
    cJSON_ReplaceItemInObjectCaseSensitive(obj, field, cJSON_CreateString(mine));
    return true;
}

static const cJSON *pass_get(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* A count the provider reported, bounded as the usage the charge is read
 * from (provider_responses.c). */
static double pass_count(const cJSON *usage, const char *name)
{
    const cJSON *v = pass_get(usage, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1e15 ? (double)(int64_t)v->valuedouble : 0;
}

/* Fill resp from the provider's Response object (a parsed tree). */
static bool pass_fill(cJSON *resp, const cJSON *theirs, strmap *ids)
{
    const cJSON *output = pass_get(theirs, "output");
    const cJSON *status = pass_get(theirs, "status");
    if (!cJSON_IsObject(theirs) || !cJSON_IsArray(output)) return false;
    const char *st = cJSON_IsString(status) ? status->valuestring : "completed";
    if (strcmp(st, "completed") != 0 && strcmp(st, "incomplete") != 0) return false;
    cJSON_ReplaceItemInObjectCaseSensitive(resp, "status", cJSON_CreateString(st));
    const cJSON *inc = pass_get(theirs, "incomplete_details");
    const cJSON *reason = pass_get(inc, "reason");
    if (cJSON_IsString(reason)) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "reason", reason->valuestring);
        cJSON_ReplaceItemInObjectCaseSensitive(resp, "incomplete_details", d);
    }
    cJSON *out = cJSON_CreateArray();
    const cJSON *it;
    cJSON_ArrayForEach(it, output) {
        if (!cJSON_IsObject(it)) continue;
        cJSON *c = cJSON_Duplicate(it, true);
        cJSON_AddItemToArray(out, c);
        if (!pass_rename(ids, c, "id")) {
            cJSON_Delete(out);
            return false;
        }
    }
    cJSON_ReplaceItemInObjectCaseSensitive(resp, "output", out);
    const cJSON *usage = pass_get(theirs, "usage");
    double in = pass_count(usage, "input_tokens"), o = pass_count(usage, "output_tokens");
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "input_tokens", in);
    cJSON *idt = cJSON_AddObjectToObject(u, "input_tokens_details");
    cJSON_AddNumberToObject(idt, "cached_tokens",
                            pass_count(pass_get(usage, "input_tokens_details"), "cached_tokens"));
    cJSON_AddNumberToObject(u, "output_tokens", o);
    cJSON *odt = cJSON_AddObjectToObject(u, "output_tokens_details");
    cJSON_AddNumberToObject(odt, "reasoning_tokens",
                            pass_count(pass_get(usage, "output_tokens_details"), "reasoning_tokens"));
    cJSON_AddNumberToObject(u, "total_tokens", in + o);
    cJSON_ReplaceItemInObjectCaseSensitive(resp, "usage", u);
    return true;
}

bool responses_object_from_provider(responses_stream *s, const char *body, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (!s->ids) s->ids = xnonnull(strmap_new(free));
    bool ok = pass_fill(s->resp, j, s->ids);
    cJSON_Delete(j);
    return ok;
}

bool responses_stream_relay(responses_stream *s, const char *json, size_t len, buf *out)
{
    cJSON *ev = cJSON_ParseWithLength(json, len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    if (!cJSON_IsObject(ev) || !cJSON_IsString(type) || strncmp(type->valuestring, "response.", 9) != 0) {
        cJSON_Delete(ev);
        return false;
    }
    if (!s->ids) s->ids = xnonnull(strmap_new(free));
    const char *t = type->valuestring;
    /* brigade's own response.created / in_progress opened the stream, and
     * its response.completed ends it, after the turn is kept: the
     * provider's carry the provider's Response, never passed on. */
    if (!strcmp(t, "response.created") || !strcmp(t, "response.in_progress")) {
        cJSON_Delete(ev);
        return true;
    }
    if (!strcmp(t, "response.completed") || !strcmp(t, "response.incomplete")) {
        bool ok = pass_fill(s->resp, pass_get(ev, "response"), s->ids);
        s->relay_done = ok;
        cJSON_Delete(ev);
        return ok;
    }
    if (pass_get(ev, "response")) {   /* any other event with a whole Response */
        cJSON_Delete(ev);
        return false;
    }
    cJSON *item = cJSON_GetObjectItemCaseSensitive(ev, "item");
    if (!pass_rename(s->ids, ev, "item_id") || (cJSON_IsObject(item) && !pass_rename(s->ids, item, "id"))) {
        cJSON_Delete(ev);
        return false;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(ev, "sequence_number");
    cJSON_AddNumberToObject(ev, "sequence_number", (double)s->seq++);
    char *text = cJSON_PrintUnformatted(ev);
    xnonnull(text);
    buf_printf(out, "event: %s\ndata: %s\n\n", t, text);
    free(text);
    cJSON_Delete(ev);
    return true;
}
