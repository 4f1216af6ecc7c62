/* mock_anthropic.c — the mock LLM's Anthropic Messages API face: an
 * Anthropic request rewritten as the OpenAI request the planner reads, and
 * the plan rendered as an Anthropic `message` or its stream events (see
 * mock_engine.h). Pure, like the rest of the engine. */
#include "mock/mock_engine.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_escape.h"
#include "util/tool_use_map.h"

/* ----------------------------------------------------------------- request */

static const char *ma_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Text of an Anthropic content: a string, or the text blocks of an array. */
static void ma_text(const cJSON *content, buf *out)
{
    if (cJSON_IsString(content)) {
        buf_puts(out, content->valuestring);
        return;
    }
    if (!cJSON_IsArray(content)) return;
    const cJSON *b;
    cJSON_ArrayForEach(b, content) {
        const char *t = ma_str(b, "text");
        const char *type = ma_str(b, "type");
        if (t && type && strcmp(type, "text") == 0) buf_puts(out, t);
    }
}

static cJSON *ma_string(buf *b)
{
    buf_append(b, "", 1);
    cJSON *s = cJSON_CreateString(b->data);
    b->len = 0;
    return s;
}

/* One Anthropic message → one or more OpenAI messages appended to msgs. */
static bool ma_message(const cJSON *m, cJSON *msgs, const char **err)
{
    const char *role = ma_str(m, "role");
    if (!cJSON_IsObject(m) || !role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
        *err = "each message must be an object with role \"user\" or \"assistant\"";
        return false;
    }
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(content)) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "role", role);
        cJSON_AddStringToObject(o, "content", content->valuestring);
        cJSON_AddItemToArray(msgs, o);
        return true;
    }
    if (!cJSON_IsArray(content)) {
        *err = "message content must be a string or an array of content blocks";
        return false;
    }
    bool assistant = role[0] == 'a';
    cJSON *parts = cJSON_CreateArray();
    cJSON *calls = cJSON_CreateArray();
    buf t;
    buf_init(&t);
    const cJSON *b;
    cJSON_ArrayForEach(b, content) {
        const char *type = ma_str(b, "type");
        if (!type) {
            *err = "each content block needs a string 'type'";
            goto fail;
        }
        if (strcmp(type, "text") == 0) {
            const char *tx = ma_str(b, "text");
            if (!tx) {
                *err = "a text block needs a string 'text'";
                goto fail;
            }
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "type", "text");
            cJSON_AddStringToObject(p, "text", tx);
            cJSON_AddItemToArray(parts, p);
        } else if (strcmp(type, "tool_use") == 0 && assistant) {
            cJSON *tc = tool_use_to_call(b, true, NULL);
            if (!tc) {
                *err = "a tool_use block needs an 'id', a 'name' and an object 'input'";
                goto fail;
            }
            cJSON_AddItemToArray(calls, tc);
        } else if (strcmp(type, "tool_result") == 0 && !assistant) {
            const char *id = ma_str(b, "tool_use_id");
            if (!id) {
                *err = "a tool_result block needs a 'tool_use_id'";
                goto fail;
            }
            ma_text(cJSON_GetObjectItemCaseSensitive(b, "content"), &t);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "role", "tool");
            cJSON_AddStringToObject(o, "tool_call_id", id);
            cJSON_AddItemToObject(o, "content", ma_string(&t));
            cJSON_AddItemToArray(msgs, o);
        }
        /* images, documents, thinking: no text to count or quote */
    }
    bool has_calls = cJSON_GetArraySize(calls) > 0;
    if (cJSON_GetArraySize(parts) > 0 || has_calls || cJSON_GetArraySize(content) == 0 || assistant) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "role", role);
        cJSON_AddItemToObject(o, "content", parts);
        parts = NULL;
        if (has_calls) {
            cJSON_AddItemToObject(o, "tool_calls", calls);
            calls = NULL;
        }
        cJSON_AddItemToArray(msgs, o);
    }
    cJSON_Delete(parts);
    cJSON_Delete(calls);
    buf_free(&t);
    return true;
fail:
    cJSON_Delete(parts);
    cJSON_Delete(calls);
    buf_free(&t);
    return false;
}

bool mock_anthropic_request(const char *body, size_t len, buf *out, const char **err)
{
    cJSON *in = body ? cJSON_ParseWithLength(body, len) : NULL;
    if (!cJSON_IsObject(in)) {
        cJSON_Delete(in);
        *err = "request body is not a valid JSON object";
        return false;
    }
    cJSON *o = cJSON_CreateObject();
    static const char *const copy[] = { "model", "stream", "max_tokens" };
    for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, copy[i]);
        if (v) cJSON_AddItemToObject(o, copy[i], cJSON_Duplicate(v, 1));
    }
    bool ok = true;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(in, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        *err = "'messages' is required and must be a non-empty array";
        ok = false;
    }
    if (ok && !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(in, "max_tokens"))) {
        *err = "'max_tokens' is required";   /* as the real API says */
        ok = false;
    }
    if (ok) {
        cJSON *om = cJSON_AddArrayToObject(o, "messages");
        const cJSON *sys = cJSON_GetObjectItemCaseSensitive(in, "system");
        if (cJSON_IsString(sys) || cJSON_IsArray(sys)) {
            buf t;
            buf_init(&t);
            ma_text(sys, &t);
            cJSON *sm = cJSON_CreateObject();
            cJSON_AddStringToObject(sm, "role", "system");
            cJSON_AddItemToObject(sm, "content", ma_string(&t));
            cJSON_AddItemToArray(om, sm);
            buf_free(&t);
        }
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs) {
            if (!(ok = ma_message(m, om, err))) break;
        }
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

static const char *ma_stop_reason(const mock_plan *p) { return tool_use_stop_reason(p->finish_reason); }

/* Anthropic ids: msg_… for the message, toolu_… for a tool call (the
 * OpenAI plan's call_<hex> with another prefix, so both faces agree). */
static void ma_ids(const mock_plan *p, char msg_id[40], char tool_id[40])
{
    snprintf(msg_id, 40, "msg_%016" PRIx64, p->hash ^ p->call_nonce);
    const char *hex = strncmp(p->tool_call_id, "call_", 5) == 0 ? p->tool_call_id + 5 : p->tool_call_id;
    snprintf(tool_id, 40, "toolu_%s", hex);
}

static void ma_tool_block(const mock_plan *p, const char *tool_id, bool with_input, buf *out)
{
    buf_printf(out, "{\"type\":\"tool_use\",\"id\":\"%s\",\"name\":", tool_id);
    json_escape_string(out, p->tool_name, strlen(p->tool_name));
    buf_puts(out, ",\"input\":");
    if (with_input) buf_append(out, p->tool_args, p->tool_args_len);
    else buf_puts(out, "{}");
    buf_puts(out, "}");
}

void mock_render_anthropic_message(const mock_plan *p, buf *out)
{
    char mid[40], tid[40];
    ma_ids(p, mid, tid);
    buf_reserve(out, 256 + p->text_len + p->tool_args_len);
    buf_printf(out, "{\"id\":\"%s\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", mid);
    json_escape_string(out, p->model, strlen(p->model));
    buf_puts(out, ",\"content\":[");
    if (p->reply == MOCK_REPLY_TOOL_CALL) {
        ma_tool_block(p, tid, true, out);
    } else if (p->text_len) {
        buf_puts(out, "{\"type\":\"text\",\"text\":");
        json_escape_string(out, p->text, p->text_len);
        buf_puts(out, "}");
    }
    buf_printf(out, "],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":%" PRId64
                    ",\"output_tokens\":%" PRId64 "}}",
               ma_stop_reason(p), p->prompt_tokens, p->completion_tokens);
}

size_t mock_anthropic_event_count(const mock_plan *p)
{
    /* message_start, block start, ping, deltas, block stop, message_delta, message_stop */
    return (size_t)p->n_chunks + 6;
}

void mock_render_anthropic_event(const mock_plan *p, size_t i, buf *out)
{
    size_t n = mock_anthropic_event_count(p);
    if (i >= n) return;
    char mid[40], tid[40];
    ma_ids(p, mid, tid);
    buf_reserve(out, 256);
    if (i == 0) {
        buf_printf(out, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"%s\","
                        "\"type\":\"message\",\"role\":\"assistant\",\"model\":", mid);
        json_escape_string(out, p->model, strlen(p->model));
        buf_printf(out, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":"
                        "{\"input_tokens\":%" PRId64 ",\"output_tokens\":1}}}\n\n", p->prompt_tokens);
    } else if (i == 1) {
        buf_puts(out, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
                      "\"content_block\":");
        if (p->reply == MOCK_REPLY_TOOL_CALL) ma_tool_block(p, tid, false, out);
        else buf_puts(out, "{\"type\":\"text\",\"text\":\"\"}");
        buf_puts(out, "}\n\n");
    } else if (i == 2) {
        buf_puts(out, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    } else if (i < n - 3) {
        size_t k = i - 3;
        buf_puts(out, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":");
        if (p->reply == MOCK_REPLY_TOOL_CALL) {
            size_t a = mock_frag_at(p, k), b = mock_frag_at(p, k + 1);
            buf_puts(out, "{\"type\":\"input_json_delta\",\"partial_json\":");
            json_escape_string(out, p->tool_args + a, b - a);
        } else {
            uint32_t t0 = (uint32_t)((uint64_t)p->n_tokens * k / p->n_chunks);
            uint32_t t1 = (uint32_t)((uint64_t)p->n_tokens * (k + 1) / p->n_chunks);
            buf_puts(out, "{\"type\":\"text_delta\",\"text\":");
            json_escape_string(out, p->text + p->tok_off[t0], p->tok_off[t1] - p->tok_off[t0]);
        }
        buf_puts(out, "}}\n\n");
    } else if (i == n - 3) {
        buf_puts(out, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
    } else if (i == n - 2) {
        buf_printf(out, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                        "\"%s\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":%" PRId64 "}}\n\n",
                   ma_stop_reason(p), p->completion_tokens);
    } else {
        buf_puts(out, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    }
}

void mock_render_anthropic_malformed(const mock_plan *p, bool stream, buf *out)
{
    char mid[40], tid[40];
    ma_ids(p, mid, tid);
    if (stream) buf_puts(out, "event: content_block_start\ndata: ");
    /* The start of a real answer, then it stops: unterminated string,
     * object and array. */
    buf_printf(out, "{\"id\":\"%s\",\"type\":\"message\",\"role\":\"assistant\",\"content\":"
                    "[{\"type\":\"text\",\"text\":\"alpha br", mid);
    if (stream) buf_puts(out, "\n\n");
}

void mock_render_anthropic_error(buf *out, const char *type, const char *message)
{
    buf_puts(out, "{\"type\":\"error\",\"error\":{\"type\":");
    json_escape_string(out, type, strlen(type));
    buf_puts(out, ",\"message\":");
    json_escape_string(out, message, strlen(message));
    buf_puts(out, "}}");
}

int mock_render_anthropic_fault_error(const mock_plan *p, buf *out, uint32_t *retry_after_s)
{
    if (retry_after_s) *retry_after_s = 0;
    if (p->status != 200) {
        mock_render_anthropic_error(out, "invalid_request_error", p->err_message);
        return p->status;
    }
    switch (p->fault) {
    case MOCK_FAULT_RATE_LIMIT:
        if (retry_after_s) *retry_after_s = 1;
        mock_render_anthropic_error(out, "rate_limit_error",
                                    "mock-llm: rate limit reached (injected fault), retry after 1s");
        return 429;
    case MOCK_FAULT_OVERLOADED:
        mock_render_anthropic_error(out, "overloaded_error", "mock-llm: overloaded (injected fault)");
        return 529;
    default:
        mock_render_anthropic_error(out, "api_error", "mock-llm: internal server error (injected fault)");
        return 500;
    }
}
