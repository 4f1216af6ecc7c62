/* anthropic_translate.c — OpenAI chat completions ⇄ Anthropic Messages API
 * (see anthropic_translate.h). Requests and whole responses go through
 * cJSON trees (they are parsed anyway); stream chunks are written straight
 * into a buffer, since a long answer is hundreds of them. */
#include "upstream/providers/anthropic_translate.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_escape.h"
#include "util/tool_use_map.h"
#include "util/xalloc.h"

/* ------------------------------------------------------------- helpers */

static const cJSON *at_get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *at_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A non-negative token count, or -1. */
static int64_t at_count(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 1e15) return -1;
    return (int64_t)v->valuedouble;
}

/* Copy at most cap-1 bytes of s, not cutting a UTF-8 sequence. */
static void at_copy(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

const char *anthropic_finish_reason(const char *stop_reason)
{
    return tool_use_finish_reason(stop_reason);
}

int anthropic_error_status(const char *type)
{
    if (!type) return 500;
    static const struct { const char *type; int status; } map[] = {
        { "invalid_request_error", 400 }, { "authentication_error", 401 },
        { "billing_error", 402 },         { "permission_error", 403 },
        { "not_found_error", 404 },       { "request_too_large", 413 },
        { "rate_limit_error", 429 },      { "api_error", 500 },
        { "timeout_error", 504 },
        /* Anthropic answers 529 when overloaded: a transient server-side
         * condition, handled everywhere in brigade like a 503. */
        { "overloaded_error", 503 },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(type, map[i].type) == 0) return map[i].status;
    return 500;
}

/* ------------------------------------------------------------- request */

/* Text of an OpenAI content: a string, or the "text" parts of an array
 * joined. Returns false if it is neither (nor null). */
static bool at_content_text(const cJSON *content, buf *out)
{
    if (!content || cJSON_IsNull(content)) return true;
    if (cJSON_IsString(content)) {
        buf_puts(out, content->valuestring);
        return true;
    }
    if (!cJSON_IsArray(content)) return false;
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const char *t = at_str(part, "text");
        if (t) buf_puts(out, t);
    }
    return true;
}

static void at_add_text_block(cJSON *blocks, const char *text, size_t len)
{
    /* Anthropic rejects empty text blocks. */
    if (len == 0) return;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "text");
    char *t = xmalloc(len + 1);
    memcpy(t, text, len);
    t[len] = '\0';
    cJSON_AddStringToObject(b, "text", t);
    free(t);
    cJSON_AddItemToArray(blocks, b);
}

/* An image_url part: a data: URL becomes a base64 source, anything else a
 * url source. */
static bool at_image_block(cJSON *blocks, const cJSON *part)
{
    const cJSON *iu = at_get(part, "image_url");
    const char *url = cJSON_IsString(iu) ? iu->valuestring : at_str(iu, "url");
    if (!url || !url[0]) return false;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "image");
    cJSON *src = cJSON_AddObjectToObject(b, "source");
    if (strncmp(url, "data:", 5) == 0) {
        const char *semi = strstr(url, ";base64,");
        const char *comma = semi ? semi + 8 : NULL;
        if (!semi || semi == url + 5) {
            cJSON_Delete(b);
            return false;
        }
        size_t ml = (size_t)(semi - (url + 5));
        char mt[64];
        if (ml >= sizeof(mt)) {
            cJSON_Delete(b);
            return false;
        }
        memcpy(mt, url + 5, ml);
        mt[ml] = '\0';
        cJSON_AddStringToObject(src, "type", "base64");
        cJSON_AddStringToObject(src, "media_type", mt);
        cJSON_AddStringToObject(src, "data", comma);
    } else {
        cJSON_AddStringToObject(src, "type", "url");
        cJSON_AddStringToObject(src, "url", url);
    }
    cJSON_AddItemToArray(blocks, b);
    return true;
}

static bool at_user_blocks(const cJSON *content, cJSON *blocks, const char **err)
{
    if (!content || cJSON_IsNull(content)) return true;
    if (cJSON_IsString(content)) {
        at_add_text_block(blocks, content->valuestring, strlen(content->valuestring));
        return true;
    }
    if (!cJSON_IsArray(content)) {
        *err = "message content must be a string or an array of parts";
        return false;
    }
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const char *type = at_str(part, "type");
        if (type && strcmp(type, "text") == 0) {
            const char *t = at_str(part, "text");
            if (!t) { *err = "a text content part has no 'text' string"; return false; }
            at_add_text_block(blocks, t, strlen(t));
        } else if (type && strcmp(type, "image_url") == 0) {
            if (!at_image_block(blocks, part)) {
                *err = "an image_url content part has no usable URL (http(s) or data:TYPE;base64,…)";
                return false;
            }
        } else {
            *err = "a content part type is not supported by the Anthropic provider (text and image_url are)";
            return false;
        }
    }
    return true;
}

static bool at_assistant_blocks(const cJSON *m, cJSON *blocks, const char **err)
{
    buf t;
    buf_init(&t);
    if (!at_content_text(at_get(m, "content"), &t)) {
        buf_free(&t);
        *err = "assistant content must be a string, an array of parts or null";
        return false;
    }
    at_add_text_block(blocks, t.data, t.len);
    buf_free(&t);
    const cJSON *calls = at_get(m, "tool_calls"), *tc;
    if (calls && !cJSON_IsArray(calls) && !cJSON_IsNull(calls)) {
        *err = "tool_calls must be an array";
        return false;
    }
    if (!cJSON_IsArray(calls)) calls = NULL;
    cJSON_ArrayForEach(tc, calls) {
        cJSON *b = tool_call_to_use(tc);
        if (!b) {
            *err = "each tool call needs an 'id' and a function 'name'";
            return false;
        }
        cJSON_AddItemToArray(blocks, b);
    }
    return true;
}

static bool at_tool_blocks(const cJSON *m, cJSON *blocks, const char **err)
{
    const char *id = at_str(m, "tool_call_id");
    if (!id) {
        *err = "a tool message needs a 'tool_call_id' string";
        return false;
    }
    buf t;
    buf_init(&t);
    if (!at_content_text(at_get(m, "content"), &t)) {
        buf_free(&t);
        *err = "tool message content must be a string or an array of parts";
        return false;
    }
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "tool_result");
    cJSON_AddStringToObject(b, "tool_use_id", id);
    if (t.len) cJSON_AddStringToObject(b, "content", t.data);
    cJSON_AddItemToArray(blocks, b);
    buf_free(&t);
    return true;
}

static bool at_tools(const cJSON *in, cJSON *out, const char **err)
{
    const cJSON *tools = at_get(in, "tools"), *t;
    if (!tools || cJSON_IsNull(tools)) return true;
    if (!cJSON_IsArray(tools)) {
        *err = "'tools' must be an array";
        return false;
    }
    if (cJSON_GetArraySize(tools) == 0) return true;
    cJSON *arr = cJSON_AddArrayToObject(out, "tools");
    cJSON_ArrayForEach(t, tools) {
        const char *type = at_str(t, "type");
        const cJSON *fn = at_get(t, "function");
        const char *name = at_str(fn, "name");
        if ((type && strcmp(type, "function") != 0) || !name) {
            *err = "each tool must be {\"type\":\"function\",\"function\":{\"name\":…}}";
            return false;
        }
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "name", name);
        const char *desc = at_str(fn, "description");
        if (desc) cJSON_AddStringToObject(a, "description", desc);
        const cJSON *params = at_get(fn, "parameters");
        if (cJSON_IsObject(params)) {
            cJSON_AddItemToObject(a, "input_schema", cJSON_Duplicate(params, 1));
        } else {
            cJSON *s = cJSON_AddObjectToObject(a, "input_schema");
            cJSON_AddStringToObject(s, "type", "object");
        }
        cJSON_AddItemToArray(arr, a);
    }
    return true;
}

static bool at_tool_choice(const cJSON *in, cJSON *out, const char **err)
{
    const cJSON *tc = at_get(in, "tool_choice");
    const cJSON *ptc = at_get(in, "parallel_tool_calls");
    cJSON *c = NULL;
    if (cJSON_IsString(tc)) {
        const char *v = tc->valuestring;
        c = cJSON_CreateObject();
        if (strcmp(v, "auto") == 0) cJSON_AddStringToObject(c, "type", "auto");
        else if (strcmp(v, "none") == 0) cJSON_AddStringToObject(c, "type", "none");
        else if (strcmp(v, "required") == 0) cJSON_AddStringToObject(c, "type", "any");
        else {
            cJSON_Delete(c);
            *err = "tool_choice must be auto, none, required or {\"type\":\"function\",…}";
            return false;
        }
    } else if (cJSON_IsObject(tc)) {
        const char *name = at_str(at_get(tc, "function"), "name");
        if (!name) {
            *err = "tool_choice object needs function.name";
            return false;
        }
        c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "type", "tool");
        cJSON_AddStringToObject(c, "name", name);
    } else if (tc && !cJSON_IsNull(tc)) {
        *err = "tool_choice must be a string or an object";
        return false;
    }
    if (cJSON_IsFalse(ptc) && at_get(out, "tools")) {
        if (!c) {
            c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "type", "auto");
        }
        cJSON_AddBoolToObject(c, "disable_parallel_tool_use", 1);
    }
    if (c) {
        /* Anthropic refuses a tool_choice without tools. */
        if (at_get(out, "tools")) cJSON_AddItemToObject(out, "tool_choice", c);
        else cJSON_Delete(c);
    }
    return true;
}

static bool at_sampling(const cJSON *in, cJSON *out, uint32_t default_max, const char **err)
{
    /* The Messages API answers once: a client asking for several answers
     * is told so rather than silently given one. */
    const cJSON *n = at_get(in, "n");
    if (cJSON_IsNumber(n) && n->valuedouble != 1) {
        *err = "n other than 1 is not supported by the Anthropic provider (it gives one answer)";
        return false;
    }
    const cJSON *mt = at_get(in, "max_completion_tokens");
    if (!cJSON_IsNumber(mt)) mt = at_get(in, "max_tokens");
    double max = default_max ? default_max : 4096;
    if (cJSON_IsNumber(mt)) {
        if (!(mt->valuedouble >= 1) || mt->valuedouble > 1e9) {
            *err = "max_tokens must be a positive integer";
            return false;
        }
        max = mt->valuedouble;
    }
    cJSON_AddNumberToObject(out, "max_tokens", (double)(int64_t)max);

    const cJSON *temp = at_get(in, "temperature");
    if (cJSON_IsNumber(temp)) {
        /* OpenAI allows 0..2, Anthropic 0..1: clamp rather than fail a
         * request that is valid for the API the client speaks. */
        double t = temp->valuedouble;
        if (!(t >= 0)) t = 0;
        if (t > 1) t = 1;
        cJSON_AddNumberToObject(out, "temperature", t);
    }
    const cJSON *top_p = at_get(in, "top_p");
    if (cJSON_IsNumber(top_p)) cJSON_AddNumberToObject(out, "top_p", top_p->valuedouble);

    const cJSON *stop = at_get(in, "stop");
    if (cJSON_IsString(stop) && stop->valuestring[0]) {
        cJSON *a = cJSON_AddArrayToObject(out, "stop_sequences");
        cJSON_AddItemToArray(a, cJSON_CreateString(stop->valuestring));
    } else if (cJSON_IsArray(stop) && cJSON_GetArraySize(stop) > 0) {
        cJSON *a = cJSON_AddArrayToObject(out, "stop_sequences");
        const cJSON *s;
        cJSON_ArrayForEach(s, stop) {
            if (!cJSON_IsString(s)) {
                *err = "stop must be a string or an array of strings";
                return false;
            }
            if (s->valuestring[0]) cJSON_AddItemToArray(a, cJSON_CreateString(s->valuestring));
        }
    } else if (stop && !cJSON_IsNull(stop) && !cJSON_IsString(stop) && !cJSON_IsArray(stop)) {
        *err = "stop must be a string or an array of strings";
        return false;
    }
    const char *user = at_str(in, "user");
    if (user && user[0]) {
        cJSON *md = cJSON_AddObjectToObject(out, "metadata");
        cJSON_AddStringToObject(md, "user_id", user);
    }
    return true;
}

char *anthropic_request_from_openai(const char *body, size_t len, uint32_t default_max_tokens,
                                    bool stream, size_t *out_len, const char **err)
{
    static const char *dummy;
    if (!err) err = &dummy;
    *err = NULL;
    cJSON *in = body ? cJSON_ParseWithLength(body, len) : NULL;
    if (!cJSON_IsObject(in)) {
        cJSON_Delete(in);
        *err = "request body is not a JSON object";
        return NULL;
    }
    const cJSON *msgs = at_get(in, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        cJSON_Delete(in);
        *err = "'messages' must be a non-empty array";
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    const char *model = at_str(in, "model");
    if (model) cJSON_AddStringToObject(out, "model", model);

    buf sys;
    buf_init(&sys);
    cJSON *amsgs = cJSON_CreateArray();
    cJSON *last_content = NULL;
    const char *last_role = NULL;
    bool ok = true;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        const char *role = at_str(m, "role");
        if (!cJSON_IsObject(m) || !role) {
            *err = "each message must be an object with a string 'role'";
            ok = false;
            break;
        }
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            size_t before = sys.len;
            if (sys.len) buf_puts(&sys, "\n\n");
            size_t mark = sys.len;
            if (!at_content_text(at_get(m, "content"), &sys)) {
                *err = "system content must be a string or an array of parts";
                ok = false;
                break;
            }
            if (sys.len == mark) sys.len = before;   /* empty: no separator either */
            continue;
        }
        cJSON *blocks = cJSON_CreateArray();
        const char *arole = "user";
        if (strcmp(role, "user") == 0) {
            ok = at_user_blocks(at_get(m, "content"), blocks, err);
        } else if (strcmp(role, "assistant") == 0) {
            arole = "assistant";
            ok = at_assistant_blocks(m, blocks, err);
        } else if (strcmp(role, "tool") == 0) {
            ok = at_tool_blocks(m, blocks, err);
        } else {
            *err = "message role must be system, developer, user, assistant or tool";
            ok = false;
        }
        if (!ok || cJSON_GetArraySize(blocks) == 0) {
            cJSON_Delete(blocks);
            if (!ok) break;
            continue;   /* nothing to say: Anthropic rejects empty messages */
        }
        if (last_role && strcmp(last_role, arole) == 0) {
            /* Anthropic wants user and assistant turns to alternate: fold
             * consecutive messages of one role into one, block by block. */
            cJSON *b;
            while ((b = cJSON_DetachItemFromArray(blocks, 0))) cJSON_AddItemToArray(last_content, b);
            cJSON_Delete(blocks);
            continue;
        }
        cJSON *am = cJSON_CreateObject();
        cJSON_AddStringToObject(am, "role", arole);
        cJSON_AddItemToObject(am, "content", blocks);
        cJSON_AddItemToArray(amsgs, am);
        last_content = blocks;
        last_role = arole;
    }
    if (ok && cJSON_GetArraySize(amsgs) == 0) {
        *err = "the request has no user or assistant message with content";
        ok = false;
    }
    if (ok) {
        if (sys.len) {
            buf_append(&sys, "", 1);
            cJSON_AddStringToObject(out, "system", sys.data);
        }
        cJSON_AddItemToObject(out, "messages", amsgs);
        amsgs = NULL;
        ok = at_tools(in, out, err) && at_tool_choice(in, out, err) &&
             at_sampling(in, out, default_max_tokens, err);
        if (ok && stream) cJSON_AddBoolToObject(out, "stream", 1);
    }
    buf_free(&sys);
    cJSON_Delete(amsgs);
    cJSON_Delete(in);
    char *s = ok ? cJSON_PrintUnformatted(out) : NULL;
    cJSON_Delete(out);
    if (ok && !s) *err = "out of memory";
    if (s && out_len) *out_len = strlen(s);
    return s;
}

/* ------------------------------------------------------------ response */

static void at_usage_from(const cJSON *u, anthropic_usage *usage)
{
    int64_t in = at_count(u, "input_tokens"), out = at_count(u, "output_tokens");
    int64_t cc = at_count(u, "cache_creation_input_tokens"), cr = at_count(u, "cache_read_input_tokens");
    /* OpenAI's prompt_tokens include cached ones; Anthropic counts them apart. */
    if (in >= 0) {
        usage->input_tokens = in + (cc > 0 ? cc : 0) + (cr > 0 ? cr : 0);
        usage->have = true;
    }
    if (out >= 0) {
        usage->output_tokens = out;
        usage->have = true;
    }
}

char *anthropic_response_to_openai(const char *body, size_t len, int64_t created,
                                   anthropic_usage *usage, const char **err, int *err_status)
{
    static const char *dummy_e;
    int dummy_s;
    anthropic_usage dummy_u;
    if (!err) err = &dummy_e;
    if (!err_status) err_status = &dummy_s;
    if (!usage) usage = &dummy_u;
    memset(usage, 0, sizeof(*usage));
    *err = NULL;
    *err_status = 0;
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        *err = "provider body is not a JSON object";
        return NULL;
    }
    const char *type = at_str(root, "type");
    if (type && strcmp(type, "error") == 0) {
        const cJSON *e = at_get(root, "error");
        *err_status = anthropic_error_status(at_str(e, "type"));
        *err = "provider answered with an error object";
        cJSON_Delete(root);
        return NULL;
    }
    const cJSON *content = at_get(root, "content");
    if (!cJSON_IsArray(content)) {
        cJSON_Delete(root);
        *err = "provider message has no content array";
        return NULL;
    }
    buf text;
    buf_init(&text);
    cJSON *calls = cJSON_CreateArray();
    const cJSON *b;
    bool ok = true;
    cJSON_ArrayForEach(b, content) {
        const char *bt = at_str(b, "type");
        if (!bt) {
            *err = "provider content block has no type";
            ok = false;
            break;
        }
        if (strcmp(bt, "text") == 0) {
            const char *t = at_str(b, "text");
            if (!t) {
                *err = "provider text block has no text";
                ok = false;
                break;
            }
            buf_puts(&text, t);
        } else if (strcmp(bt, "tool_use") == 0) {
            size_t args_len = 0;
            cJSON *tc = tool_use_to_call(b, false, &args_len);
            if (!tc) {
                *err = "provider tool_use block needs an id, a name and an object input";
                ok = false;
                break;
            }
            usage->out_bytes += strlen(at_str(b, "name")) + args_len;
            cJSON_AddItemToArray(calls, tc);
        }
        /* thinking, redacted_thinking, server tool blocks: not part of the
         * OpenAI form. */
    }
    if (!ok) {
        buf_free(&text);
        cJSON_Delete(calls);
        cJSON_Delete(root);
        return NULL;
    }
    usage->out_bytes += text.len;
    at_usage_from(at_get(root, "usage"), usage);

    cJSON *o = cJSON_CreateObject();
    const char *id = at_str(root, "id");
    cJSON_AddStringToObject(o, "id", id ? id : "msg");
    cJSON_AddStringToObject(o, "object", "chat.completion");
    cJSON_AddNumberToObject(o, "created", (double)created);
    const char *model = at_str(root, "model");
    cJSON_AddStringToObject(o, "model", model ? model : "");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(ch, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    bool has_calls = cJSON_GetArraySize(calls) > 0;
    if (text.len || !has_calls) {
        buf_append(&text, "", 1);
        cJSON_AddStringToObject(msg, "content", text.data);
    } else {
        cJSON_AddNullToObject(msg, "content");
    }
    if (has_calls) cJSON_AddItemToObject(msg, "tool_calls", calls);
    else cJSON_Delete(calls);
    cJSON_AddNullToObject(msg, "refusal");
    cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddStringToObject(ch, "finish_reason", anthropic_finish_reason(at_str(root, "stop_reason")));
    cJSON_AddItemToArray(choices, ch);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)usage->input_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)usage->output_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(usage->input_tokens + usage->output_tokens));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    cJSON_Delete(root);
    buf_free(&text);
    if (!s) *err = "out of memory";
    return s;
}

/* ----------------------------------------------------------- streaming */

void anthropic_stream_init(anthropic_stream *s, int64_t created)
{
    memset(s, 0, sizeof(*s));
    s->created = created;
    buf_init(&s->scratch);
    strcpy(s->id, "msg");
    strcpy(s->finish_reason, "stop");
}

void anthropic_stream_free(anthropic_stream *s)
{
    free(s->block);
    s->block = NULL;
    buf_free(&s->scratch);
}

static anthropic_ev at_bad(anthropic_stream *s, const char *why)
{
    at_copy(s->err_message, sizeof(s->err_message), why);
    return ANTHROPIC_EV_MALFORMED;
}

/* Start a chunk: {"id":…,"object":"chat.completion.chunk",…,"choices":[ */
static buf *at_chunk_head(anthropic_stream *s)
{
    buf *b = &s->scratch;
    b->len = 0;
    buf_puts(b, "{\"id\":");
    json_escape_string(b, s->id, strlen(s->id));
    buf_printf(b, ",\"object\":\"chat.completion.chunk\",\"created\":%" PRId64 ",\"model\":", s->created);
    json_escape_string(b, s->model, strlen(s->model));
    buf_puts(b, ",\"choices\":[");
    return b;
}

/* A chunk with one choice whose delta is `delta` (JSON object text). */
static void at_emit_delta(anthropic_stream *s, const char *delta, size_t dlen, const char *finish,
                          anthropic_emit_fn emit, void *ctx)
{
    buf *b = at_chunk_head(s);
    buf_puts(b, "{\"index\":0,\"delta\":");
    buf_append(b, delta, dlen);
    if (finish) buf_printf(b, ",\"logprobs\":null,\"finish_reason\":\"%s\"}]}", finish);
    else buf_puts(b, ",\"logprobs\":null,\"finish_reason\":null}]}");
    emit(ctx, b->data, b->len);
}

static void at_emit_text(anthropic_stream *s, const char *t, anthropic_emit_fn emit, void *ctx)
{
    size_t n = strlen(t);
    if (n == 0) return;
    s->usage.out_bytes += n;
    buf d;
    buf_init(&d);
    buf_puts(&d, "{\"content\":");
    json_escape_string(&d, t, n);
    buf_puts(&d, "}");
    at_emit_delta(s, d.data, d.len, NULL, emit, ctx);
    buf_free(&d);
}

static void at_emit_finish(anthropic_stream *s, anthropic_emit_fn emit, void *ctx)
{
    if (s->finished) return;
    s->finished = true;
    at_emit_delta(s, "{}", 2, s->finish_reason, emit, ctx);
}

/* The content block an event names, or -1 after setting the error. */
static long at_block_index(anthropic_stream *s, const cJSON *j)
{
    const cJSON *ix = at_get(j, "index");
    if (!cJSON_IsNumber(ix) || !(ix->valuedouble >= 0) || ix->valuedouble >= ANTHROPIC_MAX_BLOCKS ||
        ix->valuedouble != (double)(long)ix->valuedouble) {
        at_bad(s, "provider stream event has a bad content block index");
        return -1;
    }
    return (long)ix->valuedouble;
}

static anthropic_ev at_block_start(anthropic_stream *s, const cJSON *j, anthropic_emit_fn emit, void *ctx)
{
    long ix = at_block_index(s, j);
    if (ix < 0) return ANTHROPIC_EV_MALFORMED;
    if ((size_t)ix >= s->n_block) {
        size_t n = (size_t)ix + 1;
        int16_t *nb = xrealloc(s->block, n * sizeof(*nb));
        for (size_t i = s->n_block; i < n; i++) nb[i] = -3;
        s->block = nb;
        s->n_block = n;
    }
    if (s->block[ix] != -3) return at_bad(s, "provider stream started a content block twice");
    const cJSON *cb = at_get(j, "content_block");
    const char *type = at_str(cb, "type");
    if (!type) return at_bad(s, "provider content_block_start has no content_block type");
    if (strcmp(type, "text") == 0) {
        s->block[ix] = -1;
        const char *t = at_str(cb, "text");
        if (t) at_emit_text(s, t, emit, ctx);
        return ANTHROPIC_EV_OK;
    }
    if (strcmp(type, "tool_use") != 0) {
        s->block[ix] = -2;   /* thinking and the like: not in the OpenAI form */
        return ANTHROPIC_EV_OK;
    }
    const char *id = at_str(cb, "id"), *name = at_str(cb, "name");
    if (!id || !name) return at_bad(s, "provider tool_use block needs an id and a name");
    int k = s->n_tools++;
    s->block[ix] = (int16_t)k;
    s->usage.out_bytes += strlen(name);
    buf d;
    buf_init(&d);
    buf_printf(&d, "{\"tool_calls\":[{\"index\":%d,\"id\":", k);
    json_escape_string(&d, id, strlen(id));
    buf_puts(&d, ",\"type\":\"function\",\"function\":{\"name\":");
    json_escape_string(&d, name, strlen(name));
    buf_puts(&d, ",\"arguments\":\"\"}}]}");
    at_emit_delta(s, d.data, d.len, NULL, emit, ctx);
    buf_free(&d);
    return ANTHROPIC_EV_OK;
}

static anthropic_ev at_block_delta(anthropic_stream *s, const cJSON *j, anthropic_emit_fn emit, void *ctx)
{
    long ix = at_block_index(s, j);
    if (ix < 0) return ANTHROPIC_EV_MALFORMED;
    if ((size_t)ix >= s->n_block || s->block[ix] == -3)
        return at_bad(s, "provider stream sent a delta for a content block it did not start");
    const cJSON *d = at_get(j, "delta");
    const char *type = at_str(d, "type");
    if (!type) return at_bad(s, "provider content_block_delta has no delta type");
    int kind = s->block[ix];
    if (strcmp(type, "text_delta") == 0) {
        const char *t = at_str(d, "text");
        if (!t || kind != -1) return at_bad(s, "provider text_delta is not for a text block");
        at_emit_text(s, t, emit, ctx);
    } else if (strcmp(type, "input_json_delta") == 0) {
        const char *pj = at_str(d, "partial_json");
        if (!pj || kind < 0) return at_bad(s, "provider input_json_delta is not for a tool_use block");
        size_t n = strlen(pj);
        if (n == 0) return ANTHROPIC_EV_OK;
        s->usage.out_bytes += n;
        buf o;
        buf_init(&o);
        buf_printf(&o, "{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":", kind);
        json_escape_string(&o, pj, n);
        buf_puts(&o, "}}]}");
        at_emit_delta(s, o.data, o.len, NULL, emit, ctx);
        buf_free(&o);
    }
    /* thinking_delta, signature_delta, citations_delta: not in the OpenAI form. */
    return ANTHROPIC_EV_OK;
}

anthropic_ev anthropic_stream_event(anthropic_stream *s, const char *data, size_t len,
                                    anthropic_emit_fn emit, void *ctx)
{
    if (s->done) return ANTHROPIC_EV_DONE;   /* nothing counts after message_stop */
    cJSON *j = data ? cJSON_ParseWithLength(data, len) : NULL;
    const char *type = at_str(j, "type");
    anthropic_ev r = ANTHROPIC_EV_OK;
    if (!cJSON_IsObject(j) || !type) {
        r = at_bad(s, "provider stream event is not a JSON object with a type");
        goto out;
    }
    if (strcmp(type, "ping") == 0) goto out;
    if (strcmp(type, "error") == 0) {
        const cJSON *e = at_get(j, "error");
        s->err_status = anthropic_error_status(at_str(e, "type"));
        const char *m = at_str(e, "message");
        at_copy(s->err_message, sizeof(s->err_message), m ? m : "provider stream error");
        r = ANTHROPIC_EV_ERROR;
        goto out;
    }
    if (strcmp(type, "message_start") == 0) {
        if (s->started) {
            r = at_bad(s, "provider stream sent message_start twice");
            goto out;
        }
        const cJSON *m = at_get(j, "message");
        if (!cJSON_IsObject(m)) {
            r = at_bad(s, "provider message_start has no message");
            goto out;
        }
        s->started = true;
        const char *id = at_str(m, "id"), *model = at_str(m, "model");
        if (id) at_copy(s->id, sizeof(s->id), id);
        if (model) at_copy(s->model, sizeof(s->model), model);
        at_usage_from(at_get(m, "usage"), &s->usage);
        static const char role[] = "{\"role\":\"assistant\",\"content\":\"\"}";
        at_emit_delta(s, role, sizeof(role) - 1, NULL, emit, ctx);
        goto out;
    }
    if (!s->started) {
        r = at_bad(s, "provider stream event came before message_start");
        goto out;
    }
    if (strcmp(type, "content_block_start") == 0) {
        r = at_block_start(s, j, emit, ctx);
    } else if (strcmp(type, "content_block_delta") == 0) {
        r = at_block_delta(s, j, emit, ctx);
    } else if (strcmp(type, "message_delta") == 0) {
        const char *sr = at_str(at_get(j, "delta"), "stop_reason");
        if (sr) at_copy(s->finish_reason, sizeof(s->finish_reason), anthropic_finish_reason(sr));
        /* message_delta's usage is cumulative: it replaces what came before. */
        const cJSON *u = at_get(j, "usage");
        int64_t out_tok = at_count(u, "output_tokens");
        if (out_tok >= 0) {
            s->usage.output_tokens = out_tok;
            s->usage.have = true;
        }
        if (at_count(u, "input_tokens") >= 0) {
            anthropic_usage tmp = s->usage;
            at_usage_from(u, &tmp);
            s->usage.input_tokens = tmp.input_tokens;
        }
        at_emit_finish(s, emit, ctx);
    } else if (strcmp(type, "message_stop") == 0) {
        at_emit_finish(s, emit, ctx);
        buf *b = at_chunk_head(s);
        buf_printf(b, "],\"usage\":{\"prompt_tokens\":%" PRId64 ",\"completion_tokens\":%" PRId64
                      ",\"total_tokens\":%" PRId64 "}}",
                   s->usage.input_tokens, s->usage.output_tokens,
                   s->usage.input_tokens + s->usage.output_tokens);
        emit(ctx, b->data, b->len);
        s->done = true;
        r = ANTHROPIC_EV_DONE;
    }
    /* content_block_stop, and event types added later: nothing to say. */
out:
    cJSON_Delete(j);
    return r;
}
