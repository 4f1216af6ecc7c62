/* messages_request.c — an Anthropic Messages request read as the chat
 * request brigade governs (see messages.h). Every field of the request is
 * either translated, or refused with a 400 that names it: a field passed
 * on unread would be a field nobody governed. */
#include "api/messages.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/tool_use_map.h"

typedef struct mr_ctx {
    chat_request_error *err;
    size_t blocks;             /* content blocks read so far (MESSAGES_MAX_BLOCKS) */
} mr_ctx;

static const char *mr_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A content block's "type", after checking it is an object with one. */
static const char *mr_block_type(mr_ctx *c, const cJSON *b, const char *param)
{
    const char *type = mr_str(b, "type");
    if (!cJSON_IsObject(b) || !type) {
        chat_request_fail(c->err, 400, "invalid_value", param,
                          "%s must be a content block: an object with a string \"type\"", param);
        return NULL;
    }
    if (++c->blocks > MESSAGES_MAX_BLOCKS) {
        chat_request_fail(c->err, 400, "too_many_blocks", param,
                          "a request may hold at most %d content blocks", MESSAGES_MAX_BLOCKS);
        return NULL;
    }
    return type;
}

/* {"type":"text","text":…} → the same OpenAI content part. */
static cJSON *mr_text_part(mr_ctx *c, const cJSON *b, const char *param)
{
    const char *t = mr_str(b, "text");
    if (!t) {
        chat_request_fail(c->err, 400, "invalid_value", param, "%s.text must be a string", param);
        return NULL;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "text");
    cJSON_AddStringToObject(p, "text", t);
    return p;
}

/* {"type":"image","source":{base64|url}} → an image_url part (a data: URL
 * for base64 data). */
static cJSON *mr_image_part(mr_ctx *c, const cJSON *b, const char *param)
{
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(b, "source");
    const char *kind = mr_str(src, "type");
    buf url;
    buf_init(&url);
    if (kind && strcmp(kind, "base64") == 0 && mr_str(src, "media_type") && mr_str(src, "data")) {
        const char *mt = mr_str(src, "media_type");
        if (strncmp(mt, "image/", 6) != 0 || strlen(mt) > 64 || strpbrk(mt, ";,")) {
            chat_request_fail(c->err, 400, "invalid_value", param,
                              "%s.source.media_type must be an image type (image/png, …)", param);
            return NULL;
        }
        buf_printf(&url, "data:%s;base64,", mt);
        buf_puts(&url, mr_str(src, "data"));
    } else if (kind && strcmp(kind, "url") == 0 && mr_str(src, "url")) {
        buf_puts(&url, mr_str(src, "url"));
    } else {
        chat_request_fail(c->err, 400, "invalid_value", param,
                          "%s.source must be {\"type\":\"base64\",\"media_type\",\"data\"} or "
                          "{\"type\":\"url\",\"url\"}", param);
        return NULL;
    }
    buf_append(&url, "", 1);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "image_url");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "image_url"), "url", url.data);
    buf_free(&url);
    return p;
}

/* A tool_result's content (a string, or text blocks) as the tool
 * message's text. Images cannot go into an OpenAI tool message. */
static bool mr_tool_result_text(mr_ctx *c, const cJSON *content, const char *param, buf *out)
{
    if (!content || cJSON_IsNull(content)) return true;
    if (cJSON_IsString(content)) {
        buf_puts(out, content->valuestring);
        return true;
    }
    if (!cJSON_IsArray(content))
        return chat_request_fail(c->err, 400, "invalid_value", param,
                                 "%s.content must be a string or an array of text blocks", param);
    const cJSON *b;
    int i = 0;
    cJSON_ArrayForEach(b, content) {
        char p[160];
        snprintf(p, sizeof p, "%s.content[%d]", param, i++);
        const char *type = mr_block_type(c, b, p);
        if (!type) return false;
        if (strcmp(type, "text") != 0)
            return chat_request_fail(c->err, 400, "unsupported_content", p,
                                     "%s is a \"%.32s\" block; a tool result can only be text "
                                     "here (the chat form has no images in tool results)", p, type);
        const char *t = mr_str(b, "text");
        if (!t) return chat_request_fail(c->err, 400, "invalid_value", p, "%s.text must be a string", p);
        if (out->len) buf_puts(out, "\n");
        buf_puts(out, t);
    }
    return true;
}

/* One Anthropic message → OpenAI messages appended to msgs: a user
 * message's tool_result blocks become "tool" messages (first: they answer
 * the assistant's calls just before), the rest one user message; an
 * assistant message's tool_use blocks become its tool_calls. */
static bool mr_message(mr_ctx *c, const cJSON *m, int index, cJSON *msgs)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%d]", index);
    const char *role = mr_str(m, "role");
    if (!cJSON_IsObject(m) || !role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
        return chat_request_fail(c->err, 400, "invalid_value", param,
                                 "%s must be an object with role \"user\" or \"assistant\"", param);
    bool assistant = role[0] == 'a';
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(content)) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "role", role);
        cJSON_AddStringToObject(o, "content", content->valuestring);
        cJSON_AddItemToArray(msgs, o);
        return true;
    }
    if (!cJSON_IsArray(content))
        return chat_request_fail(c->err, 400, "invalid_value", param,
                                 "%s.content must be a string or an array of content blocks", param);
    cJSON *parts = cJSON_CreateArray();
    cJSON *calls = cJSON_CreateArray();
    buf text;                   /* an assistant's text: one string */
    buf_init(&text);
    bool ok = false;
    int i = 0;
    const cJSON *b;
    cJSON_ArrayForEach(b, content) {
        char p[96];
        snprintf(p, sizeof p, "%s.content[%d]", param, i++);
        const char *type = mr_block_type(c, b, p);
        if (!type) goto out;
        if (strcmp(type, "text") == 0) {
            cJSON *part = mr_text_part(c, b, p);
            if (!part) goto out;
            if (assistant) {
                buf_puts(&text, mr_str(b, "text"));
                cJSON_Delete(part);
            } else {
                cJSON_AddItemToArray(parts, part);
            }
        } else if (strcmp(type, "image") == 0 && !assistant) {
            cJSON *part = mr_image_part(c, b, p);
            if (!part) goto out;
            cJSON_AddItemToArray(parts, part);
        } else if (strcmp(type, "tool_use") == 0 && assistant) {
            cJSON *tc = tool_use_to_call(b, true, NULL);
            if (!tc) {
                chat_request_fail(c->err, 400, "invalid_value", p,
                                  "%s: a tool_use block needs a string \"id\" and \"name\" and an "
                                  "object \"input\"", p);
                goto out;
            }
            cJSON_AddItemToArray(calls, tc);
        } else if (strcmp(type, "tool_result") == 0 && !assistant) {
            const char *id = mr_str(b, "tool_use_id");
            if (!id) {
                chat_request_fail(c->err, 400, "invalid_value", p,
                                  "%s: a tool_result block needs a string \"tool_use_id\"", p);
                goto out;
            }
            buf t;
            buf_init(&t);
            if (!mr_tool_result_text(c, cJSON_GetObjectItemCaseSensitive(b, "content"), p, &t)) {
                buf_free(&t);
                goto out;
            }
            /* An error result says so in its text: the chat form has no flag. */
            bool is_error = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "is_error"));
            buf_append(&t, "", 1);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "role", "tool");
            cJSON_AddStringToObject(o, "tool_call_id", id);
            if (is_error) {
                buf e;
                buf_init(&e);
                buf_puts(&e, "error: ");
                buf_puts(&e, t.data);
                buf_append(&e, "", 1);
                cJSON_AddStringToObject(o, "content", e.data);
                buf_free(&e);
            } else {
                cJSON_AddStringToObject(o, "content", t.data);
            }
            buf_free(&t);
            cJSON_AddItemToArray(msgs, o);
        } else if ((strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0) &&
                   assistant) {
            /* The model's own earlier reasoning: the chat form has no place
             * for it, and a model reads the conversation without it. */
        } else {
            chat_request_fail(c->err, 400, "unsupported_content", p,
                              "%s is a \"%.32s\" block, which this gateway cannot translate for "
                              "a %s message (text, image, tool_use and tool_result are)",
                              p, type, role);
            goto out;
        }
    }
    if (assistant) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "role", "assistant");
        buf_append(&text, "", 1);
        if (text.data[0] || !cJSON_GetArraySize(calls)) cJSON_AddStringToObject(o, "content", text.data);
        else cJSON_AddNullToObject(o, "content");
        if (cJSON_GetArraySize(calls)) {
            cJSON_AddItemToObject(o, "tool_calls", calls);
            calls = NULL;
        }
        cJSON_AddItemToArray(msgs, o);
    } else if (cJSON_GetArraySize(parts) || !cJSON_GetArraySize(content)) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "role", "user");
        cJSON_AddItemToObject(o, "content", parts);
        parts = NULL;
        cJSON_AddItemToArray(msgs, o);
    }
    ok = true;
out:
    cJSON_Delete(parts);
    cJSON_Delete(calls);
    buf_free(&text);
    return ok;
}

/* system: a string or text blocks → the first, system, message. */
static bool mr_system(mr_ctx *c, const cJSON *sys, cJSON *msgs)
{
    if (!sys || cJSON_IsNull(sys)) return true;
    buf t;
    buf_init(&t);
    if (cJSON_IsString(sys)) {
        buf_puts(&t, sys->valuestring);
    } else if (cJSON_IsArray(sys)) {
        const cJSON *b;
        int i = 0;
        cJSON_ArrayForEach(b, sys) {
            char p[32];
            snprintf(p, sizeof p, "system[%d]", i++);
            const char *type = mr_block_type(c, b, p);
            if (!type || strcmp(type, "text") != 0 || !mr_str(b, "text")) {
                if (type) chat_request_fail(c->err, 400, "invalid_value", p,
                                            "%s must be a text block", p);
                buf_free(&t);
                return false;
            }
            if (t.len) buf_puts(&t, "\n");
            buf_puts(&t, mr_str(b, "text"));
        }
    } else {
        return chat_request_fail(c->err, 400, "invalid_type", "system",
                                 "\"system\" must be a string or an array of text blocks");
    }
    buf_append(&t, "", 1);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "role", "system");
    cJSON_AddStringToObject(o, "content", t.data);
    cJSON_AddItemToArray(msgs, o);
    buf_free(&t);
    return true;
}

/* tools: custom tools ({name, description, input_schema}) → functions.
 * Anthropic's own hosted tools (a "type" other than "custom") run at
 * Anthropic and are billed per use: not translatable, not reservable. */
static bool mr_tools(mr_ctx *c, const cJSON *tools, cJSON *out)
{
    if (!tools || cJSON_IsNull(tools)) return true;
    if (!cJSON_IsArray(tools))
        return chat_request_fail(c->err, 400, "invalid_type", "tools", "\"tools\" must be an array");
    if (cJSON_GetArraySize(tools) > MESSAGES_MAX_TOOLS)
        return chat_request_fail(c->err, 400, "invalid_value", "tools",
                                 "a request may declare at most %d tools", MESSAGES_MAX_TOOLS);
    cJSON *arr = cJSON_AddArrayToObject(out, "tools");
    const cJSON *t;
    int i = 0;
    cJSON_ArrayForEach(t, tools) {
        char p[32];
        snprintf(p, sizeof p, "tools[%d]", i++);
        const char *type = mr_str(t, "type");
        if (cJSON_IsObject(t) && type && strcmp(type, "custom") != 0)
            return chat_request_fail(c->err, 400, "unsupported_tool", p,
                                     "%s is the hosted tool \"%.48s\", which runs at Anthropic and "
                                     "is billed per use; this gateway supports custom tools "
                                     "(name, description, input_schema) only", p, type);
        const char *name = mr_str(t, "name");
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(t, "input_schema");
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(t, "description");
        if (!cJSON_IsObject(t) || !name || !name[0] || !cJSON_IsObject(schema) ||
            (desc && !cJSON_IsString(desc)))
            return chat_request_fail(c->err, 400, "invalid_value", p,
                                     "%s must be an object with a string \"name\", an object "
                                     "\"input_schema\" and maybe a string \"description\"", p);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "type", "function");
        cJSON *fn = cJSON_AddObjectToObject(f, "function");
        cJSON_AddStringToObject(fn, "name", name);
        if (desc) cJSON_AddStringToObject(fn, "description", desc->valuestring);
        cJSON_AddItemToObject(fn, "parameters", cJSON_Duplicate(schema, 1));
        cJSON_AddItemToArray(arr, f);
    }
    return true;
}

/* tool_choice: auto | any (→ required) | tool (→ that function) | none;
 * disable_parallel_tool_use → parallel_tool_calls false. */
static bool mr_tool_choice(mr_ctx *c, const cJSON *tc, cJSON *out)
{
    if (!tc || cJSON_IsNull(tc)) return true;
    const char *type = mr_str(tc, "type");
    if (!cJSON_IsObject(tc) || !type)
        return chat_request_fail(c->err, 400, "invalid_value", "tool_choice",
                                 "\"tool_choice\" must be an object with a \"type\"");
    if (strcmp(type, "auto") == 0) {
        cJSON_AddStringToObject(out, "tool_choice", "auto");
    } else if (strcmp(type, "any") == 0) {
        cJSON_AddStringToObject(out, "tool_choice", "required");
    } else if (strcmp(type, "none") == 0) {
        cJSON_AddStringToObject(out, "tool_choice", "none");
    } else if (strcmp(type, "tool") == 0 && mr_str(tc, "name")) {
        cJSON *o = cJSON_AddObjectToObject(out, "tool_choice");
        cJSON_AddStringToObject(o, "type", "function");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "function"), "name", mr_str(tc, "name"));
    } else {
        return chat_request_fail(c->err, 400, "invalid_value", "tool_choice",
                                 "\"tool_choice\" must be {\"type\":\"auto\"}, {\"type\":\"any\"}, "
                                 "{\"type\":\"none\"} or {\"type\":\"tool\",\"name\":…}");
    }
    const cJSON *dp = cJSON_GetObjectItemCaseSensitive(tc, "disable_parallel_tool_use");
    if (dp && !cJSON_IsBool(dp))
        return chat_request_fail(c->err, 400, "invalid_type", "tool_choice.disable_parallel_tool_use",
                                 "\"disable_parallel_tool_use\" must be true or false");
    if (cJSON_IsTrue(dp) && strcmp(type, "none") != 0)
        cJSON_AddBoolToObject(out, "parallel_tool_calls", 0);
    return true;
}

/* A number field copied when present (null = absent). */
static bool mr_number(mr_ctx *c, const cJSON *in, const char *name, double lo, double hi,
                      bool integer, cJSON *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, name);
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
        (integer && v->valuedouble != (double)(int64_t)v->valuedouble))
        return chat_request_fail(c->err, 400, "invalid_value", name,
                                 "\"%s\" must be a%s number from %g to %g", name,
                                 integer ? "n integer" : "", lo, hi);
    cJSON_AddNumberToObject(out, name, v->valuedouble);
    return true;
}

/* The fields of the Messages API this gateway reads; any other is refused. */
static const char *const mr_fields[] = {
    "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature",
    "top_p", "top_k", "metadata", "tools", "tool_choice", "thinking", "service_tier",
};

/* The translation proper: root (read strictly) → the chat request. */
static cJSON *mr_translate(mr_ctx *c, const cJSON *root, const brigade_config *cfg)
{
    if (!chat_request_known_fields(root, mr_fields, sizeof mr_fields / sizeof mr_fields[0],
                                   "Messages API", c->err))
        return NULL;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsString(model)) {
        chat_request_fail(c->err, 400, model ? "invalid_value" : "missing_field", "model",
                          "\"model\" is required and must be a model name (a string)");
        return NULL;
    }
    /* Anthropic requires max_tokens; so does this route, so that a client
     * gets the same answer from both. */
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    if (!mt) {
        chat_request_fail(c->err, 400, "missing_field", "max_tokens",
                          "missing required field \"max_tokens\"");
        return NULL;
    }
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(msgs) || !msgs->child) {
        chat_request_fail(c->err, 400, msgs ? "invalid_value" : "missing_field", "messages",
                          "\"messages\" is required and must be a non-empty array");
        return NULL;
    }
    const cJSON *thinking = cJSON_GetObjectItemCaseSensitive(root, "thinking");
    const char *tk = mr_str(thinking, "type");
    if (thinking && !cJSON_IsNull(thinking) && !(tk && strcmp(tk, "disabled") == 0)) {
        chat_request_fail(c->err, 400, "unsupported_parameter", "thinking",
                          "extended thinking is not supported by this gateway (the chat form it "
                          "governs has no thinking blocks); leave \"thinking\" out");
        return NULL;
    }
    const cJSON *tier = cJSON_GetObjectItemCaseSensitive(root, "service_tier");
    if (tier && !cJSON_IsNull(tier) &&
        !(cJSON_IsString(tier) && (strcmp(tier->valuestring, "auto") == 0 ||
                                   strcmp(tier->valuestring, "standard_only") == 0))) {
        chat_request_fail(c->err, 400, "invalid_value", "service_tier",
                          "\"service_tier\" may be \"auto\" or \"standard_only\"");
        return NULL;
    }

    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "model", model->valuestring);
    cJSON_AddItemToObject(out, "max_tokens", cJSON_Duplicate(mt, 0));
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (stream) cJSON_AddItemToObject(out, "stream", cJSON_Duplicate(stream, 0));
    cJSON *om = cJSON_AddArrayToObject(out, "messages");
    if (!mr_system(c, cJSON_GetObjectItemCaseSensitive(root, "system"), om)) goto fail;
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        if (!mr_message(c, m, i++, om)) goto fail;
    }
    if (!mr_number(c, root, "temperature", 0, 1, false, out) ||
        !mr_number(c, root, "top_p", 0, 1, false, out))
        goto fail;
    const cJSON *top_k = cJSON_GetObjectItemCaseSensitive(root, "top_k");
    if (top_k && !cJSON_IsNull(top_k)) {
        /* OpenAI's chat API has no top_k and refuses unknown fields: it can
         * go only to a model whose provider reads it. */
        const model_cfg *mc = config_find_model(cfg, model->valuestring);
        if (mc && mc->provider && mc->provider->kind == PROVIDER_OPENAI) {
            chat_request_fail(c->err, 400, "unsupported_parameter", "top_k",
                              "\"top_k\" cannot be sent to model \"%s\": its provider is "
                              "OpenAI-compatible and has no top_k", mc->name);
            goto fail;
        }
        if (!mr_number(c, root, "top_k", 1, 1e6, true, out)) goto fail;
    }
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(root, "stop_sequences");
    if (stop && !cJSON_IsNull(stop)) {
        const cJSON *s;
        bool strings = cJSON_IsArray(stop) && cJSON_GetArraySize(stop) <= 16;
        cJSON_ArrayForEach(s, stop) strings = strings && cJSON_IsString(s) && s->valuestring[0];
        if (!strings) {
            chat_request_fail(c->err, 400, "invalid_value", "stop_sequences",
                              "\"stop_sequences\" must be an array of at most 16 non-empty strings");
            goto fail;
        }
        if (cJSON_GetArraySize(stop)) cJSON_AddItemToObject(out, "stop", cJSON_Duplicate(stop, 1));
    }
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    if (md && !cJSON_IsNull(md)) {
        const cJSON *uid = cJSON_GetObjectItemCaseSensitive(md, "user_id");
        if (!cJSON_IsObject(md) || (cJSON_GetArraySize(md) != (uid ? 1 : 0)) ||
            (uid && !cJSON_IsString(uid) && !cJSON_IsNull(uid))) {
            chat_request_fail(c->err, 400, "invalid_value", "metadata",
                              "\"metadata\" may hold only \"user_id\", a string");
            goto fail;
        }
        if (cJSON_IsString(uid)) cJSON_AddStringToObject(out, "user", uid->valuestring);
    }
    if (!mr_tools(c, cJSON_GetObjectItemCaseSensitive(root, "tools"), out) ||
        !mr_tool_choice(c, cJSON_GetObjectItemCaseSensitive(root, "tool_choice"), out))
        goto fail;
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

bool messages_request_parse(const char *body, size_t len, const brigade_config *cfg,
                            chat_request *out, chat_request_error *err)
{
    cJSON *root = chat_request_read_object(body, len, out, err);
    if (!root) return false;
    mr_ctx c = {.err = err};
    cJSON *chat = mr_translate(&c, root, cfg);
    cJSON_Delete(root);
    if (!chat) return false;
    return chat_request_parse_tree(chat, cfg, out, err);
}
