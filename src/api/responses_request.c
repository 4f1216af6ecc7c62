/* responses_request.c — a Responses API request read and translated into
 * the chat-completions request brigade governs (see responses_translate.h).
 *
 * Unlike the chat route, which forwards the client's bytes and so passes
 * unknown fields through, nothing of a Responses body reaches the provider
 * as it came: a field this file does not know could only be dropped, and
 * the answer would then silently differ from the one asked for. So unknown
 * top-level fields are refused, like hosted tools and the server-side
 * features brigade does not have (background mode, conversations, stored
 * prompts). null is the same as absent everywhere, as OpenAI reads it. */
#include "api/responses_translate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static const cJSON *resp_get(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* The top-level fields: read and translated, accepted and not needed by a
 * gateway (include: extra output brigade never produces; truncation and
 * stream_options: nothing to do; user and friends: identify the end user
 * to OpenAI, brigade knows the caller), or refused when set. */
static const char *const resp_fields_translated[] = {
    "model", "input", "instructions", "tools", "tool_choice", "text", "max_output_tokens",
    "temperature", "top_p", "parallel_tool_calls", "metadata", "reasoning", "store", "stream",
    "previous_response_id", "service_tier", "include", "truncation", "stream_options", "user",
    "safety_identifier", "prompt_cache_key", "top_logprobs",
};

static const struct { const char *field, *why; } resp_fields_refused[] = {
    {"background", "background responses are not supported by this gateway"},
    {"conversation", "server-side conversations are not supported; use previous_response_id"},
    {"prompt", "stored prompt templates are not supported by this gateway"},
    {"max_tool_calls", "it limits hosted tool calls, which this gateway does not run"},
};

static bool resp_check_fields(const cJSON *root, chat_request_error *err)
{
    for (const cJSON *f = root->child; f; f = f->next) {
        bool known = false;
        for (size_t i = 0; i < sizeof resp_fields_translated / sizeof *resp_fields_translated; i++)
            if (strcmp(f->string, resp_fields_translated[i]) == 0) known = true;
        for (size_t i = 0; i < sizeof resp_fields_refused / sizeof *resp_fields_refused; i++) {
            if (strcmp(f->string, resp_fields_refused[i].field) != 0) continue;
            known = true;
            bool unset = cJSON_IsNull(f) || cJSON_IsFalse(f);
            if (!unset)
                return chat_request_fail(err, 400, "unsupported_parameter", f->string,
                                 "\"%s\" is not supported: %s", f->string, resp_fields_refused[i].why);
        }
        if (!known)
            return chat_request_fail(err, 400, "unknown_parameter", f->string,
                             "unknown parameter \"%.64s\": this gateway translates Responses "
                             "requests and would otherwise have to drop it", f->string);
    }
    const cJSON *tl = resp_get(root, "top_logprobs");
    if (tl && !(cJSON_IsNumber(tl) && tl->valuedouble == 0))
        return chat_request_fail(err, 400, "unsupported_parameter", "top_logprobs",
                         "\"top_logprobs\" is not supported by this gateway (only 0)");
    const cJSON *tr = resp_get(root, "truncation");
    if (tr && !(cJSON_IsString(tr) && (strcmp(tr->valuestring, "disabled") == 0 ||
                                       strcmp(tr->valuestring, "auto") == 0)))
        return chat_request_fail(err, 400, "invalid_value", "truncation",
                         "\"truncation\" must be \"disabled\" or \"auto\"");
    const cJSON *inc = resp_get(root, "include");
    if (inc && !cJSON_IsArray(inc))
        return chat_request_fail(err, 400, "invalid_type", "include", "\"include\" must be an array");
    return true;
}

/* metadata: up to 16 string values, keys up to 64 bytes, values up to 512. */
static bool resp_check_metadata(const cJSON *root, chat_request_error *err)
{
    const cJSON *md = resp_get(root, "metadata");
    if (!md) return true;
    if (!cJSON_IsObject(md))
        return chat_request_fail(err, 400, "invalid_type", "metadata", "\"metadata\" must be an object");
    int n = 0;
    for (const cJSON *e = md->child; e; e = e->next, n++) {
        if (n >= RESPONSES_MAX_METADATA || strlen(e->string) > 64 || !cJSON_IsString(e) ||
            strlen(e->valuestring) > 512)
            return chat_request_fail(err, 400, "invalid_value", "metadata",
                             "\"metadata\" holds at most %d string values, keys up to 64 "
                             "bytes and values up to 512", RESPONSES_MAX_METADATA);
    }
    return true;
}

/* ---- items ---- */

static const char *resp_hosted_tool_why(const char *type)
{
    static const char *const hosted[] = {
        "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11",
        "file_search", "computer_use_preview", "computer_use", "code_interpreter",
        "image_generation", "mcp", "local_shell", "custom",
    };
    for (size_t i = 0; i < sizeof hosted / sizeof *hosted; i++)
        if (strcmp(type, hosted[i]) == 0) return hosted[i];
    return NULL;
}

/* Check one input item's shape (the translation below relies on it). */
static bool resp_check_item(const cJSON *it, int i, chat_request_error *err)
{
    char param[48];
    snprintf(param, sizeof param, "input[%d]", i);
    if (!cJSON_IsObject(it))
        return chat_request_fail(err, 400, "invalid_type", param, "%s must be an object", param);
    const cJSON *type = resp_get(it, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : type ? NULL : "message";
    if (!t) return chat_request_fail(err, 400, "invalid_type", param, "%s.type must be a string", param);
    if (strcmp(t, "message") == 0) {
        const cJSON *role = resp_get(it, "role");
        if (!cJSON_IsString(role) ||
            (strcmp(role->valuestring, "user") != 0 && strcmp(role->valuestring, "assistant") != 0 &&
             strcmp(role->valuestring, "system") != 0 && strcmp(role->valuestring, "developer") != 0))
            return chat_request_fail(err, 400, "invalid_value", param,
                             "%s.role must be \"user\", \"assistant\", \"system\" or \"developer\"", param);
        const cJSON *content = resp_get(it, "content");
        if (cJSON_IsString(content)) return true;
        if (!cJSON_IsArray(content))
            return chat_request_fail(err, 400, "invalid_type", param,
                             "%s.content must be a string or an array of parts", param);
        int j = 0;
        for (const cJSON *p = content->child; p; p = p->next, j++) {
            const cJSON *pt = resp_get(p, "type");
            const char *ptype = cJSON_IsString(pt) ? pt->valuestring : "";
            bool text = strcmp(ptype, "input_text") == 0 || strcmp(ptype, "output_text") == 0 ||
                        strcmp(ptype, "refusal") == 0;
            const cJSON *field = resp_get(p, strcmp(ptype, "refusal") == 0 ? "refusal" : "text");
            if (text && cJSON_IsString(field)) continue;
            if (strcmp(ptype, "input_image") == 0 && cJSON_IsString(resp_get(p, "image_url")))
                continue;
            snprintf(param, sizeof param, "input[%d].content[%d]", i, j);
            return chat_request_fail(err, 400, "unsupported_content", param,
                             "%s: content parts may be input_text, output_text, refusal or an "
                             "input_image with an image_url (type \"%.32s\" is not supported)",
                             param, ptype);
        }
        return true;
    }
    if (strcmp(t, "function_call") == 0) {
        if (!cJSON_IsString(resp_get(it, "call_id")) || !cJSON_IsString(resp_get(it, "name")) ||
            !cJSON_IsString(resp_get(it, "arguments")))
            return chat_request_fail(err, 400, "invalid_value", param,
                             "%s: a function_call item needs string call_id, name and arguments", param);
        return true;
    }
    if (strcmp(t, "function_call_output") == 0) {
        const cJSON *out = resp_get(it, "output");
        if (!cJSON_IsString(resp_get(it, "call_id")) || !(cJSON_IsString(out) || cJSON_IsArray(out)))
            return chat_request_fail(err, 400, "invalid_value", param,
                             "%s: a function_call_output item needs a string call_id and an output", param);
        return true;
    }
    /* A reasoning item carries a model's own reasoning back to it; no chat
     * provider takes it back, and brigade never produces one. */
    if (strcmp(t, "reasoning") == 0) return true;
    return chat_request_fail(err, 400, "unsupported_item", param,
                     "%s: items of type \"%.40s\" are not supported (message, function_call, "
                     "function_call_output and reasoning are)", param, t);
}

static bool resp_read_input(const cJSON *root, responses_request *out, chat_request_error *err)
{
    const cJSON *input = resp_get(root, "input");
    out->input_items = cJSON_CreateArray();
    if (!input) {
        if (!out->previous_id[0])
            return chat_request_fail(err, 400, "missing_field", "input", "missing required field \"input\"");
        return true;
    }
    if (cJSON_IsString(input)) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "type", "message");
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", input->valuestring);
        cJSON_AddItemToArray(out->input_items, m);
        return true;
    }
    if (!cJSON_IsArray(input))
        return chat_request_fail(err, 400, "invalid_type", "input", "\"input\" must be a string or an array of items");
    int i = 0;
    for (const cJSON *it = input->child; it; it = it->next, i++) {
        if (i >= RESPONSES_MAX_ITEMS)
            return chat_request_fail(err, 400, "too_many_items", "input",
                             "\"input\" holds more than %d items", RESPONSES_MAX_ITEMS);
        if (!resp_check_item(it, i, err)) return false;
        cJSON_AddItemToArray(out->input_items, cJSON_Duplicate(it, true));
    }
    return true;
}

static bool resp_check_tools(const cJSON *root, chat_request_error *err)
{
    const cJSON *tools = resp_get(root, "tools");
    if (!tools) return true;
    if (!cJSON_IsArray(tools))
        return chat_request_fail(err, 400, "invalid_type", "tools", "\"tools\" must be an array");
    int i = 0;
    char param[48];
    for (const cJSON *t = tools->child; t; t = t->next, i++) {
        snprintf(param, sizeof param, "tools[%d]", i);
        if (i >= RESPONSES_MAX_TOOLS)
            return chat_request_fail(err, 400, "too_many_tools", "tools", "at most %d tools", RESPONSES_MAX_TOOLS);
        const cJSON *type = resp_get(t, "type");
        if (!cJSON_IsObject(t) || !cJSON_IsString(type))
            return chat_request_fail(err, 400, "invalid_value", param, "%s must be an object with a \"type\"", param);
        if (strcmp(type->valuestring, "function") != 0) {
            snprintf(param, sizeof param, "tools[%d].type", i);
            const char *hosted = resp_hosted_tool_why(type->valuestring);
            return chat_request_fail(err, 400, "unsupported_tool", param,
                             "%s: %s \"%.40s\" is not supported by this gateway: only function "
                             "tools can be translated for its providers", param,
                             hosted ? "the hosted tool" : "the tool type", type->valuestring);
        }
        const cJSON *name = resp_get(t, "name");
        if (!cJSON_IsString(name) || !name->valuestring[0] || strlen(name->valuestring) > 128)
            return chat_request_fail(err, 400, "invalid_value", param, "%s.name must be a function name", param);
        const cJSON *params = resp_get(t, "parameters");
        if (params && !cJSON_IsObject(params))
            return chat_request_fail(err, 400, "invalid_type", param, "%s.parameters must be an object", param);
    }
    return true;
}

static bool resp_check_text(const cJSON *root, chat_request_error *err)
{
    const cJSON *text = resp_get(root, "text");
    if (!text) return true;
    if (!cJSON_IsObject(text))
        return chat_request_fail(err, 400, "invalid_type", "text", "\"text\" must be an object");
    const cJSON *fmt = resp_get(text, "format");
    if (!fmt) return true;
    const cJSON *type = resp_get(fmt, "type");
    if (!cJSON_IsObject(fmt) || !cJSON_IsString(type))
        return chat_request_fail(err, 400, "invalid_value", "text.format", "\"text.format\" needs a \"type\"");
    const char *t = type->valuestring;
    if (strcmp(t, "text") == 0 || strcmp(t, "json_object") == 0) return true;
    if (strcmp(t, "json_schema") == 0) {
        const cJSON *name = resp_get(fmt, "name");
        if (!cJSON_IsString(name) || !cJSON_IsObject(resp_get(fmt, "schema")))
            return chat_request_fail(err, 400, "invalid_value", "text.format",
                             "a json_schema \"text.format\" needs a string \"name\" and an object \"schema\"");
        return true;
    }
    return chat_request_fail(err, 400, "invalid_value", "text.format.type",
                     "\"text.format.type\" must be \"text\", \"json_object\" or \"json_schema\"");
}

static bool resp_check_scalars(const cJSON *root, const model_cfg *m, chat_request_error *err)
{
    static const char *const numbers[] = {"temperature", "top_p"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = resp_get(root, numbers[i]);
        if (v && !cJSON_IsNumber(v))
            return chat_request_fail(err, 400, "invalid_type", numbers[i], "\"%s\" must be a number", numbers[i]);
    }
    static const char *const bools[] = {"parallel_tool_calls", "store", "stream"};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = resp_get(root, bools[i]);
        if (v && !cJSON_IsBool(v))
            return chat_request_fail(err, 400, "invalid_type", bools[i], "\"%s\" must be true or false", bools[i]);
    }
    const cJSON *mo = resp_get(root, "max_output_tokens");
    if (mo) {
        if (!cJSON_IsNumber(mo) || mo->valuedouble < 1 || mo->valuedouble > 1e9 ||
            mo->valuedouble != (double)(int64_t)mo->valuedouble)
            return chat_request_fail(err, 400, "invalid_value", "max_output_tokens",
                             "max_output_tokens must be a positive integer");
        if (m->max_output_tokens && mo->valuedouble > m->max_output_tokens)
            return chat_request_fail(err, 400, "invalid_value", "max_output_tokens",
                             "max_output_tokens is %.0f, but model \"%s\" allows at most %u output tokens",
                             mo->valuedouble, m->name, m->max_output_tokens);
    }
    const cJSON *instr = resp_get(root, "instructions");
    if (instr && !cJSON_IsString(instr))
        return chat_request_fail(err, 400, "invalid_type", "instructions", "\"instructions\" must be a string");
    const cJSON *reasoning = resp_get(root, "reasoning");
    if (reasoning) {
        const cJSON *effort = resp_get(reasoning, "effort");
        if (!cJSON_IsObject(reasoning) || (effort && !cJSON_IsString(effort)))
            return chat_request_fail(err, 400, "invalid_value", "reasoning",
                             "\"reasoning\" must be an object with a string \"effort\"");
    }
    const cJSON *tc = resp_get(root, "tool_choice");
    if (tc && !cJSON_IsString(tc) &&
        !(cJSON_IsObject(tc) && cJSON_IsString(resp_get(tc, "type")) &&
          strcmp(resp_get(tc, "type")->valuestring, "function") == 0 &&
          cJSON_IsString(resp_get(tc, "name"))))
        return chat_request_fail(err, 400, "invalid_value", "tool_choice",
                         "\"tool_choice\" must be \"auto\", \"none\", \"required\" or a function "
                         "{\"type\":\"function\",\"name\":…}");
    if (cJSON_IsString(tc) && strcmp(tc->valuestring, "auto") != 0 &&
        strcmp(tc->valuestring, "none") != 0 && strcmp(tc->valuestring, "required") != 0)
        return chat_request_fail(err, 400, "invalid_value", "tool_choice",
                         "\"tool_choice\" must be \"auto\", \"none\", \"required\" or a function");
    return true;
}

bool responses_request_parse(const char *body, size_t len, const brigade_config *cfg,
                             responses_request *out, chat_request_error *err)
{
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    cJSON *root = chat_request_body_object(body, len, err);
    if (!root) return false;
    out->root = root;
    if (!resp_check_fields(root, err)) return false;
    /* a chat model (an embedding model is /v1/embeddings'), as on every chat route */
    out->model = chat_request_model(root, cfg, false, err);
    if (!out->model) return false;
    const cJSON *prev = resp_get(root, "previous_response_id");
    if (prev) {
        if (!cJSON_IsString(prev) || !prev->valuestring[0] ||
            strlen(prev->valuestring) >= sizeof out->previous_id)
            return chat_request_fail(err, 400, "invalid_value", "previous_response_id",
                             "\"previous_response_id\" must be a response id (resp_…)");
        snprintf(out->previous_id, sizeof out->previous_id, "%s", prev->valuestring);
    }
    if (!resp_check_scalars(root, out->model, err) || !resp_check_metadata(root, err) ||
        !resp_check_tools(root, err) || !resp_check_text(root, err) || !resp_read_input(root, out, err))
        return false;
    out->stream = cJSON_IsTrue(resp_get(root, "stream"));
    const cJSON *store = resp_get(root, "store");
    out->store = !store || cJSON_IsTrue(store);
    return true;
}

void responses_request_free(responses_request *r)
{
    cJSON_Delete(r->root);
    cJSON_Delete(r->input_items);
    r->root = r->input_items = NULL;
}

/* ---- translation to chat completions ---- */

/* A message item's content as chat content: a string stays one; for a user
 * the parts become text and image_url parts; for other roles (assistant,
 * system) the text of the parts, joined. */
static cJSON *resp_chat_content(const cJSON *content, bool user)
{
    if (cJSON_IsString(content)) return cJSON_CreateString(content->valuestring);
    if (user) {
        cJSON *parts = cJSON_CreateArray();
        for (const cJSON *p = content ? content->child : NULL; p; p = p->next) {
            const char *t = resp_get(p, "type")->valuestring;
            cJSON *part = cJSON_CreateObject();
            if (strcmp(t, "input_image") == 0) {
                cJSON_AddStringToObject(part, "type", "image_url");
                cJSON *iu = cJSON_AddObjectToObject(part, "image_url");
                cJSON_AddStringToObject(iu, "url", resp_get(p, "image_url")->valuestring);
                const cJSON *detail = resp_get(p, "detail");
                if (cJSON_IsString(detail)) cJSON_AddStringToObject(iu, "detail", detail->valuestring);
            } else {
                cJSON_AddStringToObject(part, "type", "text");
                cJSON_AddStringToObject(part, "text",
                    resp_get(p, strcmp(t, "refusal") == 0 ? "refusal" : "text")->valuestring);
            }
            cJSON_AddItemToArray(parts, part);
        }
        return parts;
    }
    buf b;
    buf_init(&b);
    for (const cJSON *p = content ? content->child : NULL; p; p = p->next) {
        const char *t = resp_get(p, "type")->valuestring;
        const cJSON *text = resp_get(p, strcmp(t, "refusal") == 0 ? "refusal" : "text");
        if (cJSON_IsString(text)) buf_puts(&b, text->valuestring);
    }
    buf_append(&b, "", 1);
    cJSON *s = cJSON_CreateString(b.data);
    buf_free(&b);
    return s;
}

/* The text of a function_call_output's output (a string, or parts). */
static cJSON *resp_tool_output(const cJSON *output)
{
    if (cJSON_IsString(output)) return cJSON_CreateString(output->valuestring);
    buf b;
    buf_init(&b);
    for (const cJSON *p = output ? output->child : NULL; p; p = p->next) {
        const cJSON *text = resp_get(p, "text");
        if (cJSON_IsString(text)) buf_puts(&b, text->valuestring);
    }
    buf_append(&b, "", 1);
    cJSON *s = cJSON_CreateString(b.data);
    buf_free(&b);
    return s;
}

/* Append one item (already checked) to the chat messages. Consecutive
 * function_call items become one assistant message with several
 * tool_calls, joined to the assistant's text right before them. */
static void resp_item_to_chat(const cJSON *it, cJSON *messages)
{
    const cJSON *type = resp_get(it, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : "message";
    if (strcmp(t, "message") == 0) {
        const char *role = resp_get(it, "role")->valuestring;
        /* developer is OpenAI's newer name for system; not every provider
         * knows it */
        if (strcmp(role, "developer") == 0) role = "system";
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", role);
        cJSON_AddItemToObject(m, "content",
                              resp_chat_content(resp_get(it, "content"), strcmp(role, "user") == 0));
        cJSON_AddItemToArray(messages, m);
    } else if (strcmp(t, "function_call") == 0) {
        /* the last message: cJSON keeps it as the first one's prev (how it
         * appends in O(1)); counting to it was quadratic in a long chain
         * of function_call items */
        cJSON *last = messages->child ? messages->child->prev : NULL;
        const cJSON *lrole = last ? cJSON_GetObjectItemCaseSensitive(last, "role") : NULL;
        cJSON *m;
        if (lrole && strcmp(lrole->valuestring, "assistant") == 0) {
            m = last;
        } else {
            m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddNullToObject(m, "content");
            cJSON_AddItemToArray(messages, m);
        }
        cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (!calls) calls = cJSON_AddArrayToObject(m, "tool_calls");
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "id", resp_get(it, "call_id")->valuestring);
        cJSON_AddStringToObject(c, "type", "function");
        cJSON *fn = cJSON_AddObjectToObject(c, "function");
        cJSON_AddStringToObject(fn, "name", resp_get(it, "name")->valuestring);
        cJSON_AddStringToObject(fn, "arguments", resp_get(it, "arguments")->valuestring);
        cJSON_AddItemToArray(calls, c);
    } else if (strcmp(t, "function_call_output") == 0) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "tool");
        cJSON_AddStringToObject(m, "tool_call_id", resp_get(it, "call_id")->valuestring);
        cJSON_AddItemToObject(m, "content", resp_tool_output(resp_get(it, "output")));
        cJSON_AddItemToArray(messages, m);
    }
    /* reasoning: nothing to send (see resp_check_item) */
}

static void resp_copy(cJSON *to, const char *to_name, const cJSON *from, const char *from_name)
{
    const cJSON *v = resp_get(from, from_name);
    if (v) cJSON_AddItemToObject(to, to_name, cJSON_Duplicate(v, true));
}

char *responses_chat_body(const responses_request *r, const cJSON *history, size_t *len,
                          chat_request_error *err)
{
    memset(err, 0, sizeof *err);
    const cJSON *root = r->root;
    cJSON *chat = cJSON_CreateObject();
    cJSON_AddStringToObject(chat, "model", r->model->name);
    cJSON *messages = cJSON_AddArrayToObject(chat, "messages");
    const cJSON *instr = resp_get(root, "instructions");
    if (instr) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", instr->valuestring);
        cJSON_AddItemToArray(messages, m);
    }
    int i = 0;
    for (const cJSON *it = history ? history->child : NULL; it; it = it->next, i++) {
        /* stored items were checked when they were stored; check again, the
         * store is not where a translation should trust its input from */
        if (!resp_check_item(it, i, err)) {
            snprintf(err->param, sizeof err->param, "previous_response_id");
            cJSON_Delete(chat);
            return NULL;
        }
        resp_item_to_chat(it, messages);
    }
    for (const cJSON *it = r->input_items->child; it; it = it->next) resp_item_to_chat(it, messages);
    if (!messages->child) {
        cJSON_Delete(chat);
        chat_request_fail(err, 400, "invalid_value", "input", "the request has no message to answer");
        return NULL;
    }

    const cJSON *tools = resp_get(root, "tools");
    if (tools && tools->child) {
        cJSON *ct = cJSON_AddArrayToObject(chat, "tools");
        for (const cJSON *t = tools->child; t; t = t->next) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "type", "function");
            cJSON *fn = cJSON_AddObjectToObject(c, "function");
            resp_copy(fn, "name", t, "name");
            resp_copy(fn, "description", t, "description");
            resp_copy(fn, "parameters", t, "parameters");
            resp_copy(fn, "strict", t, "strict");
            cJSON_AddItemToArray(ct, c);
        }
        resp_copy(chat, "parallel_tool_calls", root, "parallel_tool_calls");
        const cJSON *tc = resp_get(root, "tool_choice");
        if (cJSON_IsString(tc)) {
            cJSON_AddStringToObject(chat, "tool_choice", tc->valuestring);
        } else if (tc) {
            cJSON *c = cJSON_AddObjectToObject(chat, "tool_choice");
            cJSON_AddStringToObject(c, "type", "function");
            cJSON *fn = cJSON_AddObjectToObject(c, "function");
            resp_copy(fn, "name", tc, "name");
        }
    }
    const cJSON *fmt = resp_get(resp_get(root, "text"), "format");
    const cJSON *ftype = resp_get(fmt, "type");
    if (ftype && strcmp(ftype->valuestring, "json_object") == 0) {
        cJSON *rf = cJSON_AddObjectToObject(chat, "response_format");
        cJSON_AddStringToObject(rf, "type", "json_object");
    } else if (ftype && strcmp(ftype->valuestring, "json_schema") == 0) {
        cJSON *rf = cJSON_AddObjectToObject(chat, "response_format");
        cJSON_AddStringToObject(rf, "type", "json_schema");
        cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
        resp_copy(js, "name", fmt, "name");
        resp_copy(js, "description", fmt, "description");
        resp_copy(js, "schema", fmt, "schema");
        resp_copy(js, "strict", fmt, "strict");
    }
    resp_copy(chat, "max_completion_tokens", root, "max_output_tokens");
    resp_copy(chat, "temperature", root, "temperature");
    resp_copy(chat, "top_p", root, "top_p");
    resp_copy(chat, "service_tier", root, "service_tier");
    const cJSON *effort = resp_get(resp_get(root, "reasoning"), "effort");
    if (effort) cJSON_AddStringToObject(chat, "reasoning_effort", effort->valuestring);
    if (r->stream) {
        cJSON_AddBoolToObject(chat, "stream", true);
        cJSON *so = cJSON_AddObjectToObject(chat, "stream_options");
        cJSON_AddBoolToObject(so, "include_usage", true);
    }
    char *text = cJSON_PrintUnformatted(chat);
    cJSON_Delete(chat);
    xnonnull(text);
    *len = strlen(text);
    return text;
}
