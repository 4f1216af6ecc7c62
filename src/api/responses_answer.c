/* responses_answer.c — a chat completion told as a Response: the object of
 * POST /v1/responses (and GET /v1/responses/{id}), and its event stream
 * (see responses_translate.h). The shapes and the order of the events are
 * those the official SDKs parse: every event carries its type and a
 * sequence_number; an output item is announced (output_item.added), filled
 * (content_part / output_text / function_call_arguments deltas), closed
 * (….done, output_item.done), one item at a time; the stream ends with
 * response.completed (or response.incomplete) carrying the whole Response. */
#include "api/responses_translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"
#include "util/strmap.h"
#include "util/xalloc.h"
#include "util/json_num.h"

static const cJSON *ans_get(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static void ans_copy_or_null(cJSON *to, const char *name, const cJSON *from)
{
    const cJSON *v = ans_get(from, name);
    cJSON_AddItemToObject(to, name, v ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
}

cJSON *responses_object_new(const responses_request *r, const char *id, int64_t created_at)
{
    const cJSON *root = r->root;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "response");
    cJSON_AddNumberToObject(o, "created_at", (double)created_at);
    cJSON_AddStringToObject(o, "status", "in_progress");
    cJSON_AddBoolToObject(o, "background", false);
    cJSON_AddNullToObject(o, "error");
    cJSON_AddNullToObject(o, "incomplete_details");
    ans_copy_or_null(o, "instructions", root);
    ans_copy_or_null(o, "max_output_tokens", root);
    cJSON_AddStringToObject(o, "model", r->model->name);
    cJSON_AddArrayToObject(o, "output");
    const cJSON *ptc = ans_get(root, "parallel_tool_calls");
    cJSON_AddBoolToObject(o, "parallel_tool_calls", !ptc || cJSON_IsTrue(ptc));
    if (r->previous_id[0]) cJSON_AddStringToObject(o, "previous_response_id", r->previous_id);
    else cJSON_AddNullToObject(o, "previous_response_id");
    cJSON *reasoning = cJSON_AddObjectToObject(o, "reasoning");
    ans_copy_or_null(reasoning, "effort", ans_get(root, "reasoning"));
    ans_copy_or_null(reasoning, "summary", ans_get(root, "reasoning"));
    const cJSON *tier = ans_get(root, "service_tier");
    cJSON_AddStringToObject(o, "service_tier", cJSON_IsString(tier) ? tier->valuestring : "default");
    cJSON_AddBoolToObject(o, "store", r->store);
    const cJSON *temp = ans_get(root, "temperature");
    cJSON_AddNumberToObject(o, "temperature", temp ? temp->valuedouble : 1.0);
    const cJSON *text = ans_get(root, "text");
    if (text && ans_get(text, "format")) {
        cJSON_AddItemToObject(o, "text", cJSON_Duplicate(text, true));
    } else {
        cJSON *t = cJSON_AddObjectToObject(o, "text");
        cJSON *f = cJSON_AddObjectToObject(t, "format");
        cJSON_AddStringToObject(f, "type", "text");
    }
    const cJSON *tc = ans_get(root, "tool_choice");
    if (tc) cJSON_AddItemToObject(o, "tool_choice", cJSON_Duplicate(tc, true));
    else cJSON_AddStringToObject(o, "tool_choice", "auto");
    const cJSON *tools = ans_get(root, "tools");
    cJSON_AddItemToObject(o, "tools", tools ? cJSON_Duplicate(tools, true) : cJSON_CreateArray());
    const cJSON *top_p = ans_get(root, "top_p");
    cJSON_AddNumberToObject(o, "top_p", top_p ? top_p->valuedouble : 1.0);
    cJSON_AddStringToObject(o, "truncation", "disabled");
    cJSON_AddNullToObject(o, "usage");
    ans_copy_or_null(o, "user", root);
    const cJSON *md = ans_get(root, "metadata");
    cJSON_AddItemToObject(o, "metadata", md ? cJSON_Duplicate(md, true) : cJSON_CreateObject());
    return o;
}

/* ---- items ---- */

static cJSON *ans_text_part(const char *text)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "output_text");
    cJSON_AddArrayToObject(p, "annotations");
    cJSON_AddArrayToObject(p, "logprobs");
    cJSON_AddStringToObject(p, "text", text);
    return p;
}

/* A message item: in progress with no content (announced), or completed
 * with its text. */
static cJSON *ans_message_item(const char *id, const char *text)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", id);
    cJSON_AddStringToObject(m, "type", "message");
    cJSON_AddStringToObject(m, "status", text ? "completed" : "in_progress");
    cJSON *content = cJSON_AddArrayToObject(m, "content");
    if (text) cJSON_AddItemToArray(content, ans_text_part(text));
    cJSON_AddStringToObject(m, "role", "assistant");
    return m;
}

static cJSON *ans_call_item(const char *id, const char *call_id, const char *name,
                            const char *arguments, bool done)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", id);
    cJSON_AddStringToObject(c, "type", "function_call");
    cJSON_AddStringToObject(c, "status", done ? "completed" : "in_progress");
    cJSON_AddStringToObject(c, "arguments", arguments);
    cJSON_AddStringToObject(c, "call_id", call_id);
    cJSON_AddStringToObject(c, "name", name);
    return c;
}

/* Status and incomplete_details from a chat finish_reason. */
static void ans_set_status(cJSON *resp, const char *finish)
{
    const char *reason = NULL;
    if (finish && strcmp(finish, "length") == 0) reason = "max_output_tokens";
    else if (finish && strcmp(finish, "content_filter") == 0) reason = "content_filter";
    cJSON_ReplaceItemInObjectCaseSensitive(resp, "status",
                                           cJSON_CreateString(reason ? "incomplete" : "completed"));
    if (reason) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "reason", reason);
        cJSON_ReplaceItemInObjectCaseSensitive(resp, "incomplete_details", d);
    }
}

static void ans_set_usage(cJSON *resp, int64_t input, int64_t output)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "input_tokens", (double)input);
    cJSON *id = cJSON_AddObjectToObject(u, "input_tokens_details");
    cJSON_AddNumberToObject(id, "cached_tokens", 0);
    cJSON_AddNumberToObject(u, "output_tokens", (double)output);
    cJSON *od = cJSON_AddObjectToObject(u, "output_tokens_details");
    cJSON_AddNumberToObject(od, "reasoning_tokens", 0);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(input + output));
    cJSON_ReplaceItemInObjectCaseSensitive(resp, "usage", u);
}

static void ans_usage_of(const cJSON *usage, int64_t *input, int64_t *output)
{
    const cJSON *p = ans_get(usage, "prompt_tokens"), *c = ans_get(usage, "completion_tokens");
    /* garbage (negative, past 1e15) counts as absent: 0 */
    int64_t in = cJSON_IsNumber(p) ? json_num_tokens(p->valuedouble) : -1;
    int64_t out = cJSON_IsNumber(c) ? json_num_tokens(c->valuedouble) : -1;
    *input = in > 0 ? in : 0;
    *output = out > 0 ? out : 0;
}

bool responses_object_complete(cJSON *resp, const char *completion, size_t len)
{
    cJSON *cc = cJSON_ParseWithLength(completion, len);
    const cJSON *choice = cJSON_GetArrayItem(ans_get(cc, "choices"), 0);
    const cJSON *msg = ans_get(choice, "message");
    if (!cJSON_IsObject(msg)) {
        cJSON_Delete(cc);
        return false;
    }
    cJSON *output = cJSON_GetObjectItemCaseSensitive(resp, "output");
    char id[ID_MAX];
    const cJSON *content = ans_get(msg, "content");
    const cJSON *refusal = ans_get(msg, "refusal");
    if (cJSON_IsString(content) && content->valuestring[0]) {
        ids_new(id, "msg");
        cJSON_AddItemToArray(output, ans_message_item(id, content->valuestring));
    } else if (cJSON_IsString(refusal)) {
        ids_new(id, "msg");
        cJSON *m = ans_message_item(id, "");
        cJSON *parts = cJSON_GetObjectItemCaseSensitive(m, "content");
        cJSON_DeleteItemFromArray(parts, 0);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "type", "refusal");
        cJSON_AddStringToObject(p, "refusal", refusal->valuestring);
        cJSON_AddItemToArray(parts, p);
        cJSON_AddItemToArray(output, m);
    }
    const cJSON *call;
    cJSON_ArrayForEach(call, ans_get(msg, "tool_calls")) {
        const cJSON *fn = ans_get(call, "function");
        const cJSON *cid = ans_get(call, "id"), *name = ans_get(fn, "name"), *args = ans_get(fn, "arguments");
        if (!cJSON_IsString(cid) || !cJSON_IsString(name)) continue;
        ids_new(id, "fc");
        cJSON_AddItemToArray(output, ans_call_item(id, cid->valuestring, name->valuestring,
                                                   cJSON_IsString(args) ? args->valuestring : "{}", true));
    }
    const cJSON *finish = ans_get(choice, "finish_reason");
    ans_set_status(resp, cJSON_IsString(finish) ? finish->valuestring : NULL);
    int64_t in, out;
    ans_usage_of(ans_get(cc, "usage"), &in, &out);
    ans_set_usage(resp, in, out);
    cJSON_Delete(cc);
    return true;
}

cJSON *responses_turn_items(const responses_request *r, const cJSON *resp)
{
    cJSON *items = cJSON_Duplicate(r->input_items, true);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(resp, "output"))
        cJSON_AddItemToArray(items, cJSON_Duplicate(it, true));
    return items;
}

/* ---- the event stream ---- */

void responses_stream_init(responses_stream *s, cJSON *resp)
{
    memset(s, 0, sizeof *s);
    s->resp = resp;
    s->n_output = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp, "output"));
    s->text_index = s->call_index = -1;
    buf_init(&s->text);
    buf_init(&s->args);
}

void responses_stream_free(responses_stream *s)
{
    strmap_free(s->ids);
    s->ids = NULL;
    buf_free(&s->text);
    buf_free(&s->args);
}

/* Frame one event: its type in `event:` and in the payload, with the next
 * sequence number. Takes ev. */
static void ans_emit(responses_stream *s, const char *type, cJSON *ev, buf *out)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNumberToObject(e, "sequence_number", (double)s->seq++);
    for (cJSON *f = ev->child; f;) {
        cJSON *next = f->next;
        cJSON_AddItemToObject(e, f->string, cJSON_DetachItemViaPointer(ev, f));
        f = next;
    }
    cJSON_Delete(ev);
    char *text = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    xnonnull(text);
    buf_printf(out, "event: %s\ndata: %s\n\n", type, text);
    free(text);
}

static cJSON *ans_ev(int output_index, const char *item_id)
{
    cJSON *ev = cJSON_CreateObject();
    if (item_id) cJSON_AddStringToObject(ev, "item_id", item_id);
    cJSON_AddNumberToObject(ev, "output_index", output_index);
    return ev;
}

/* A translated stream's items are counted and the open call is held by
 * pointer: a chunk whose tool_calls alternate indexes opens a call at
 * each, and walking the output to count it, then again to find the call,
 * was quadratic (40 000 alternations: 12 s of the loop). At most
 * RESPONSES_STREAM_ITEMS_MAX items: past them the stream is malformed. */
#define RESPONSES_STREAM_ITEMS_MAX 1024

static int ans_output_count(responses_stream *s) { return s->n_output; }

static void ans_output_push(responses_stream *s, cJSON *item)
{
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(s->resp, "output"), item);
    s->n_output++;
}

static void ans_emit_response(responses_stream *s, const char *type, buf *out)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddItemToObject(ev, "response", cJSON_Duplicate(s->resp, true));
    ans_emit(s, type, ev, out);
}

void responses_stream_begin(responses_stream *s, buf *out)
{
    ans_emit_response(s, "response.created", out);
    ans_emit_response(s, "response.in_progress", out);
}

static void ans_close_text(responses_stream *s, buf *out)
{
    if (s->text_index < 0) return;
    buf_append(&s->text, "", 1);
    const char *text = s->text.data;
    cJSON *ev = ans_ev(s->text_index, s->text_id);
    cJSON_AddNumberToObject(ev, "content_index", 0);
    cJSON_AddStringToObject(ev, "text", text);
    cJSON_AddArrayToObject(ev, "logprobs");
    ans_emit(s, "response.output_text.done", ev, out);
    ev = ans_ev(s->text_index, s->text_id);
    cJSON_AddNumberToObject(ev, "content_index", 0);
    cJSON_AddItemToObject(ev, "part", ans_text_part(text));
    ans_emit(s, "response.content_part.done", ev, out);
    cJSON *item = ans_message_item(s->text_id, text);
    ev = ans_ev(s->text_index, NULL);
    cJSON_AddItemToObject(ev, "item", cJSON_Duplicate(item, true));
    ans_emit(s, "response.output_item.done", ev, out);
    ans_output_push(s, item);
    s->text_index = -1;
    s->text.len = 0;
}

/* The open function_call item is the last one of the Response's output
 * (added when it opened, so that output indexes stay in order). */
static void ans_close_call(responses_stream *s, buf *out)
{
    if (s->call_index < 0) return;
    buf_append(&s->args, "", 1);
    cJSON *item = s->call_item;
    const char *id = cJSON_GetObjectItemCaseSensitive(item, "id")->valuestring;
    cJSON_ReplaceItemInObjectCaseSensitive(item, "arguments", cJSON_CreateString(s->args.data));
    cJSON_ReplaceItemInObjectCaseSensitive(item, "status", cJSON_CreateString("completed"));
    cJSON *ev = ans_ev(s->call_index, id);
    cJSON_AddStringToObject(ev, "name", cJSON_GetObjectItemCaseSensitive(item, "name")->valuestring);
    cJSON_AddStringToObject(ev, "arguments", s->args.data);
    ans_emit(s, "response.function_call_arguments.done", ev, out);
    ev = ans_ev(s->call_index, NULL);
    cJSON_AddItemToObject(ev, "item", cJSON_Duplicate(item, true));
    ans_emit(s, "response.output_item.done", ev, out);
    s->call_index = -1;
    s->call_item = NULL;
    s->args.len = 0;
}

static bool ans_text_delta(responses_stream *s, const char *delta, buf *out)
{
    if (s->text_index < 0) {
        if (s->n_output >= RESPONSES_STREAM_ITEMS_MAX) return false;
        ans_close_call(s, out);
        s->text_index = ans_output_count(s);
        ids_new(s->text_id, "msg");
        cJSON *ev = ans_ev(s->text_index, NULL);
        cJSON_AddItemToObject(ev, "item", ans_message_item(s->text_id, NULL));
        ans_emit(s, "response.output_item.added", ev, out);
        ev = ans_ev(s->text_index, s->text_id);
        cJSON_AddNumberToObject(ev, "content_index", 0);
        cJSON_AddItemToObject(ev, "part", ans_text_part(""));
        ans_emit(s, "response.content_part.added", ev, out);
    }
    buf_puts(&s->text, delta);
    cJSON *ev = ans_ev(s->text_index, s->text_id);
    cJSON_AddNumberToObject(ev, "content_index", 0);
    cJSON_AddStringToObject(ev, "delta", delta);
    cJSON_AddArrayToObject(ev, "logprobs");
    ans_emit(s, "response.output_text.delta", ev, out);
    return true;
}

static bool ans_call_delta(responses_stream *s, const cJSON *tc, buf *out)
{
    const cJSON *index = ans_get(tc, "index");
    int chat_index = cJSON_IsNumber(index) ? index->valueint : 0;   /* clamped by cJSON */
    const cJSON *fn = ans_get(tc, "function");
    const cJSON *cid = ans_get(tc, "id"), *name = ans_get(fn, "name"), *args = ans_get(fn, "arguments");
    if (s->call_index < 0 || chat_index != s->call_chat_index) {
        /* a new call: the text or call before it is complete */
        if (s->n_output >= RESPONSES_STREAM_ITEMS_MAX) return false;
        ans_close_text(s, out);
        ans_close_call(s, out);
        char id[ID_MAX], call_id[ID_MAX];
        ids_new(id, "fc");
        if (!cJSON_IsString(cid)) ids_new(call_id, "call");
        cJSON *item = ans_call_item(id, cJSON_IsString(cid) ? cid->valuestring : call_id,
                                    cJSON_IsString(name) ? name->valuestring : "", "", false);
        s->call_index = ans_output_count(s);
        s->call_chat_index = chat_index;
        cJSON *ev = ans_ev(s->call_index, NULL);
        cJSON_AddItemToObject(ev, "item", cJSON_Duplicate(item, true));
        ans_emit(s, "response.output_item.added", ev, out);
        ans_output_push(s, item);
        s->call_item = item;
    }
    if (cJSON_IsString(args) && args->valuestring[0]) {
        buf_puts(&s->args, args->valuestring);
        cJSON *ev = ans_ev(s->call_index, cJSON_GetObjectItemCaseSensitive(s->call_item, "id")->valuestring);
        cJSON_AddStringToObject(ev, "delta", args->valuestring);
        ans_emit(s, "response.function_call_arguments.delta", ev, out);
    }
    return true;
}

bool responses_stream_chunk(responses_stream *s, const char *json, size_t len, buf *out)
{
    cJSON *chunk = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(chunk)) {
        cJSON_Delete(chunk);
        return false;
    }
    const cJSON *usage = ans_get(chunk, "usage");
    if (cJSON_IsObject(usage)) {
        ans_usage_of(usage, &s->input_tokens, &s->output_tokens);
        s->have_usage = true;
    }
    /* only the first choice: a Response has one answer */
    const cJSON *choice = cJSON_GetArrayItem(ans_get(chunk, "choices"), 0);
    const cJSON *delta = ans_get(choice, "delta");
    const cJSON *content = ans_get(delta, "content");
    bool ok = !(cJSON_IsString(content) && content->valuestring[0]) || ans_text_delta(s, content->valuestring, out);
    const cJSON *tc;
    cJSON_ArrayForEach(tc, ans_get(delta, "tool_calls")) {
        if (!ok) break;
        ok = ans_call_delta(s, tc, out);
    }
    if (!ok) {
        cJSON_Delete(chunk);
        return false;
    }
    const cJSON *finish = ans_get(choice, "finish_reason");
    if (cJSON_IsString(finish)) snprintf(s->finish, sizeof s->finish, "%s", finish->valuestring);
    cJSON_Delete(chunk);
    return true;
}

void responses_stream_finish(responses_stream *s, buf *out)
{
    ans_close_text(s, out);
    ans_close_call(s, out);
    ans_set_status(s->resp, s->finish[0] ? s->finish : NULL);
    ans_set_usage(s->resp, s->input_tokens, s->output_tokens);
}

void responses_stream_end(responses_stream *s, buf *out)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(s->resp, "status");
    bool incomplete = cJSON_IsString(st) && strcmp(st->valuestring, "incomplete") == 0;
    ans_emit_response(s, incomplete ? "response.incomplete" : "response.completed", out);
}

void responses_stream_fail(responses_stream *s, const char *code, const char *message, buf *out)
{
    cJSON_ReplaceItemInObjectCaseSensitive(s->resp, "status", cJSON_CreateString("failed"));
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_ReplaceItemInObjectCaseSensitive(s->resp, "error", e);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "code", code);
    cJSON_AddStringToObject(ev, "message", message);
    cJSON_AddNullToObject(ev, "param");
    ans_emit(s, "error", ev, out);
    ans_emit_response(s, "response.failed", out);
}
