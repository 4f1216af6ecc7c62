/* mock_responses.c — the mock LLM's OpenAI Responses API face (POST
 * /v1/responses of `brigade mock-llm`): a Responses request rewritten as
 * the chat-completions request the planner reads, and the plan rendered as
 * a Response object or the Responses event stream (see mock_engine.h). So
 * markers, faults and the deterministic token counts are those of the chat
 * face. Like a real provider with `store: false`, nothing is kept: a
 * `previous_response_id` is refused (400), which is what lets a test see
 * that a gateway never sends one. Pure, like the rest of the engine. */
#include "mock/mock_engine.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- request */

static const char *mr_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The text of a message item's content: a string, or its text parts. */
static cJSON *mr_text(const cJSON *content)
{
    if (cJSON_IsString(content)) return cJSON_CreateString(content->valuestring);
    buf t;
    buf_init(&t);
    const cJSON *p;
    cJSON_ArrayForEach(p, content) {
        const char *tx = mr_str(p, "text");
        if (!tx) tx = mr_str(p, "refusal");
        if (tx) buf_puts(&t, tx);
    }
    buf_append(&t, "", 1);
    cJSON *s = cJSON_CreateString(t.data);
    buf_free(&t);
    return s;
}

/* One input item → chat messages appended to msgs (consecutive
 * function_call items join one assistant message). */
static bool mr_item(const cJSON *it, cJSON *msgs, const char **err)
{
    const char *type = mr_str(it, "type");
    const char *role = mr_str(it, "role");
    if (!cJSON_IsObject(it)) {
        *err = "each input item must be an object";
        return false;
    }
    if ((!type && role) || (type && strcmp(type, "message") == 0)) {
        if (!role) {
            *err = "a message item needs a role";
            return false;
        }
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", strcmp(role, "developer") == 0 ? "system" : role);
        cJSON_AddItemToObject(m, "content", mr_text(cJSON_GetObjectItemCaseSensitive(it, "content")));
        cJSON_AddItemToArray(msgs, m);
        return true;
    }
    if (type && strcmp(type, "function_call") == 0) {
        const char *cid = mr_str(it, "call_id"), *name = mr_str(it, "name"), *args = mr_str(it, "arguments");
        if (!cid || !name) {
            *err = "a function_call item needs a call_id and a name";
            return false;
        }
        cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
        cJSON *calls = cJSON_GetObjectItemCaseSensitive(last, "tool_calls");
        if (!calls) {
            last = cJSON_CreateObject();
            cJSON_AddStringToObject(last, "role", "assistant");
            cJSON_AddNullToObject(last, "content");
            calls = cJSON_AddArrayToObject(last, "tool_calls");
            cJSON_AddItemToArray(msgs, last);
        }
        cJSON *tc = cJSON_CreateObject();
        cJSON_AddStringToObject(tc, "id", cid);
        cJSON_AddStringToObject(tc, "type", "function");
        cJSON *fn = cJSON_AddObjectToObject(tc, "function");
        cJSON_AddStringToObject(fn, "name", name);
        cJSON_AddStringToObject(fn, "arguments", args ? args : "{}");
        cJSON_AddItemToArray(calls, tc);
        return true;
    }
    if (type && strcmp(type, "function_call_output") == 0) {
        const char *cid = mr_str(it, "call_id");
        const cJSON *out = cJSON_GetObjectItemCaseSensitive(it, "output");
        if (!cid || !out) {
            *err = "a function_call_output item needs a call_id and an output";
            return false;
        }
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "tool");
        cJSON_AddStringToObject(m, "tool_call_id", cid);
        cJSON_AddItemToObject(m, "content", mr_text(out));
        cJSON_AddItemToArray(msgs, m);
        return true;
    }
    if (type && strcmp(type, "reasoning") == 0) return true;   /* nothing to read */
    *err = "unsupported input item type";
    return false;
}

bool mock_responses_request(const char *body, size_t len, buf *out, const char **err)
{
    cJSON *in = body ? cJSON_ParseWithLength(body, len) : NULL;
    if (!cJSON_IsObject(in)) {
        cJSON_Delete(in);
        *err = "request body is not a valid JSON object";
        return false;
    }
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(in, "model"))) cJSON_AddItemToObject(o, "model", cJSON_Duplicate(v, 1));
    if ((v = cJSON_GetObjectItemCaseSensitive(in, "stream"))) cJSON_AddItemToObject(o, "stream", cJSON_Duplicate(v, 1));
    if ((v = cJSON_GetObjectItemCaseSensitive(in, "max_output_tokens")) && !cJSON_IsNull(v))
        cJSON_AddItemToObject(o, "max_completion_tokens", cJSON_Duplicate(v, 1));
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(in, "previous_response_id");
    if (prev && !cJSON_IsNull(prev)) {
        *err = "previous_response_id: this mock keeps no responses (it answers as with store: false)";
        ok = false;
    }
    cJSON *msgs = cJSON_AddArrayToObject(o, "messages");
    const char *instr = mr_str(in, "instructions");
    if (ok && instr) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", instr);
        cJSON_AddItemToArray(msgs, m);
    }
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(in, "input");
    if (!ok) {
    } else if (cJSON_IsString(input)) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", input->valuestring);
        cJSON_AddItemToArray(msgs, m);
    } else if (cJSON_IsArray(input) && cJSON_GetArraySize(input) > 0) {
        const cJSON *it;
        cJSON_ArrayForEach(it, input) {
            if (!(ok = mr_item(it, msgs, err))) break;
        }
    } else {
        *err = "'input' is required: a string or a non-empty array of items";
        ok = false;
    }
    /* function tools and a JSON schema, in their chat shapes, so the
     * planner's [[tool:…]] and structured output work as on the chat face */
    const cJSON *tool;
    cJSON *tools = cJSON_CreateArray();
    cJSON_ArrayForEach(tool, cJSON_GetObjectItemCaseSensitive(in, "tools")) {
        const char *name = mr_str(tool, "name");
        if (!name) continue;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "type", "function");
        cJSON *fn = cJSON_AddObjectToObject(t, "function");
        cJSON_AddStringToObject(fn, "name", name);
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(tool, "parameters");
        if (params) cJSON_AddItemToObject(fn, "parameters", cJSON_Duplicate(params, 1));
        cJSON_AddItemToArray(tools, t);
    }
    if (cJSON_GetArraySize(tools)) cJSON_AddItemToObject(o, "tools", tools);
    else cJSON_Delete(tools);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(in, "text"), "format");
    const char *ft = mr_str(fmt, "type");
    if (ft && strcmp(ft, "json_schema") == 0) {
        cJSON *rf = cJSON_AddObjectToObject(o, "response_format");
        cJSON_AddStringToObject(rf, "type", "json_schema");
        cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
        cJSON_AddStringToObject(js, "name", mr_str(fmt, "name") ? mr_str(fmt, "name") : "schema");
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(fmt, "schema");
        if (schema) cJSON_AddItemToObject(js, "schema", cJSON_Duplicate(schema, 1));
    } else if (ft && strcmp(ft, "json_object") == 0) {
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "response_format"), "type", "json_object");
    }
    if (ok) {
        char *s = cJSON_PrintUnformatted(o);
        if (s) {
            buf_puts(out, s);
            free(s);
        } else {
            *err = "out of memory";
            ok = false;
        }
    }
    cJSON_Delete(o);
    cJSON_Delete(in);
    return ok;
}

/* --------------------------------------------------------------- rendering */

/* The ids of one answer: resp_…, and msg_… or fc_… for its one item. */
static void mr_ids(const mock_plan *p, char resp_id[40], char item_id[40])
{
    uint64_t h = p->hash ^ p->call_nonce;
    snprintf(resp_id, 40, "resp_%016" PRIx64, h);
    snprintf(item_id, 40, "%s_%016" PRIx64, p->reply == MOCK_REPLY_TOOL_CALL ? "fc" : "msg", h);
}

/* The output item, whole (done) or as first announced (empty). */
static cJSON *mr_item_json(const mock_plan *p, bool done)
{
    char rid[40], iid[40];
    mr_ids(p, rid, iid);
    cJSON *it = cJSON_CreateObject();
    cJSON_AddStringToObject(it, "id", iid);
    if (p->reply == MOCK_REPLY_TOOL_CALL) {
        cJSON_AddStringToObject(it, "type", "function_call");
        cJSON_AddStringToObject(it, "status", done ? "completed" : "in_progress");
        cJSON_AddStringToObject(it, "call_id", p->tool_call_id);
        cJSON_AddStringToObject(it, "name", p->tool_name);
        char *args = strndup(p->tool_args, p->tool_args_len);
        cJSON_AddStringToObject(it, "arguments", done && args ? args : "");
        free(args);
        return it;
    }
    cJSON_AddStringToObject(it, "type", "message");
    cJSON_AddStringToObject(it, "status", done ? "completed" : "in_progress");
    cJSON_AddStringToObject(it, "role", "assistant");
    cJSON *content = cJSON_AddArrayToObject(it, "content");
    if (done) {
        cJSON *part = cJSON_CreateObject();
        cJSON_AddStringToObject(part, "type", "output_text");
        char *text = strndup(p->text ? p->text : "", p->text_len);
        cJSON_AddStringToObject(part, "text", text ? text : "");
        free(text);
        cJSON_AddArrayToObject(part, "annotations");
        cJSON_AddItemToArray(content, part);
    }
    return it;
}

/* The Response object: in progress (no output, no usage) or finished. */
static cJSON *mr_response(const mock_plan *p, bool done)
{
    char rid[40], iid[40];
    mr_ids(p, rid, iid);
    bool incomplete = done && strcmp(p->finish_reason, "length") == 0;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "id", rid);
    cJSON_AddStringToObject(r, "object", "response");
    cJSON_AddNumberToObject(r, "created_at", (double)p->created);
    cJSON_AddStringToObject(r, "status", !done ? "in_progress" : incomplete ? "incomplete" : "completed");
    cJSON_AddNullToObject(r, "error");
    if (incomplete)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "incomplete_details"), "reason", "max_output_tokens");
    else
        cJSON_AddNullToObject(r, "incomplete_details");
    cJSON_AddStringToObject(r, "model", p->model ? p->model : "");
    cJSON *output = cJSON_AddArrayToObject(r, "output");
    if (done) cJSON_AddItemToArray(output, mr_item_json(p, true));
    /* the Response's other required fields (the SDK's Response type): the
     * plan does not keep the request, so these are the API's defaults */
    cJSON_AddNullToObject(r, "instructions");
    cJSON_AddItemToObject(r, "metadata", cJSON_CreateObject());
    cJSON_AddBoolToObject(r, "parallel_tool_calls", true);
    cJSON_AddNumberToObject(r, "temperature", 1);
    cJSON_AddStringToObject(r, "tool_choice", "auto");
    cJSON_AddItemToObject(r, "tools", cJSON_CreateArray());
    cJSON_AddNumberToObject(r, "top_p", 1);
    cJSON_AddBoolToObject(r, "store", false);
    if (done) {
        cJSON *u = cJSON_AddObjectToObject(r, "usage");
        cJSON_AddNumberToObject(u, "input_tokens", (double)p->prompt_tokens);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "input_tokens_details"), "cached_tokens", 0);
        cJSON_AddNumberToObject(u, "output_tokens", (double)p->completion_tokens);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "output_tokens_details"), "reasoning_tokens", 0);
        cJSON_AddNumberToObject(u, "total_tokens", (double)(p->prompt_tokens + p->completion_tokens));
    } else {
        cJSON_AddNullToObject(r, "usage");
    }
    return r;
}

static void mr_print(cJSON *j, buf *out)
{
    char *s = cJSON_PrintUnformatted(j);
    if (s) buf_puts(out, s);
    free(s);
    cJSON_Delete(j);
}

void mock_render_responses_object(const mock_plan *p, buf *out) { mr_print(mr_response(p, true), out); }

size_t mock_responses_event_count(const mock_plan *p)
{
    /* created, in_progress, item added, [part added], deltas, [text done,
     * part done | arguments done], item done, completed */
    return (size_t)p->n_chunks + (p->reply == MOCK_REPLY_TOOL_CALL ? 6 : 8);
}

void mock_render_responses_event(const mock_plan *p, size_t i, buf *out)
{
    size_t n = mock_responses_event_count(p);
    if (i >= n) return;
    char rid[40], iid[40];
    mr_ids(p, rid, iid);
    bool tool = p->reply == MOCK_REPLY_TOOL_CALL;
    size_t first_delta = tool ? 3 : 4;
    const char *type;
    cJSON *ev = cJSON_CreateObject();
    if (i == 0 || i == 1 || i == n - 1) {
        type = i == 0 ? "response.created" : i == 1 ? "response.in_progress"
             : strcmp(p->finish_reason, "length") == 0 ? "response.incomplete" : "response.completed";
        cJSON_AddItemToObject(ev, "response", mr_response(p, i == n - 1));
    } else if (i == 2 || i == n - 2) {
        type = i == 2 ? "response.output_item.added" : "response.output_item.done";
        cJSON_AddNumberToObject(ev, "output_index", 0);
        cJSON_AddItemToObject(ev, "item", mr_item_json(p, i != 2));
    } else if (!tool && (i == 3 || i == n - 3)) {
        type = i == 3 ? "response.content_part.added" : "response.content_part.done";
        cJSON_AddStringToObject(ev, "item_id", iid);
        cJSON_AddNumberToObject(ev, "output_index", 0);
        cJSON_AddNumberToObject(ev, "content_index", 0);
        cJSON *part = cJSON_AddObjectToObject(ev, "part");
        cJSON_AddStringToObject(part, "type", "output_text");
        char *text = strndup(p->text ? p->text : "", i == 3 ? 0 : p->text_len);
        cJSON_AddStringToObject(part, "text", text ? text : "");
        free(text);
        cJSON_AddArrayToObject(part, "annotations");
    } else {
        bool done = i == n - (tool ? 3 : 4);
        cJSON_AddStringToObject(ev, "item_id", iid);
        cJSON_AddNumberToObject(ev, "output_index", 0);
        size_t a, b;
        if (tool) {
            type = done ? "response.function_call_arguments.done" : "response.function_call_arguments.delta";
            a = done ? 0 : mock_frag_at(p, i - first_delta);
            b = done ? p->tool_args_len : mock_frag_at(p, i - first_delta + 1);
        } else {
            type = done ? "response.output_text.done" : "response.output_text.delta";
            cJSON_AddNumberToObject(ev, "content_index", 0);
            size_t k = i - first_delta;
            a = done ? 0 : p->tok_off[(uint64_t)p->n_tokens * k / p->n_chunks];
            b = done ? p->text_len : p->tok_off[(uint64_t)p->n_tokens * (k + 1) / p->n_chunks];
        }
        const char *src = tool ? p->tool_args : (p->text ? p->text : "");
        char *s = strndup(src + a, b - a);
        cJSON_AddStringToObject(ev, done ? (tool ? "arguments" : "text") : "delta", s ? s : "");
        free(s);
    }
    /* type first, as the API sends it */
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNumberToObject(e, "sequence_number", (double)i);
    for (cJSON *f = ev->child; f;) {
        cJSON *next = f->next;
        cJSON_AddItemToObject(e, f->string, cJSON_DetachItemViaPointer(ev, f));
        f = next;
    }
    cJSON_Delete(ev);
    buf_printf(out, "event: %s\ndata: ", type);
    mr_print(e, out);
    buf_puts(out, "\n\n");
}
