/* messages_answer.c — brigade's chat answer in the Anthropic Messages
 * API's shapes (see messages.h): a whole `message`, the event stream an
 * Anthropic SDK parses (message_start, content_block_start/delta/stop,
 * message_delta, message_stop, ping), and the error object. */
#include "api/messages.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_escape.h"
#include "util/tool_use_map.h"

/* OpenAI finish_reason → Anthropic stop_reason (util/tool_use_map.h). A
 * stop sequence and a natural end are both "stop" in the chat form:
 * end_turn. */
static const char *ma_stop_reason(const char *finish) { return tool_use_stop_reason(finish); }

/* A count from a usage object (0 when absent or absurd). */
static int64_t ma_count(const cJSON *usage, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1e15 ? (int64_t)v->valuedouble : 0;
}

/* msg_ + the completion's id without OpenAI's prefix: the same call is
 * findable by either id. */
static void ma_id(const cJSON *root, char out[128])
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const char *s = cJSON_IsString(id) ? id->valuestring : "";
    if (strncmp(s, "chatcmpl-", 9) == 0) s += 9;
    snprintf(out, 128, "msg_%.100s", s);
}

char *messages_answer(const char *json, size_t len, size_t *out_len)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    if (!cJSON_IsObject(root) || !cJSON_IsObject(msg)) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    char id[128];
    ma_id(root, id);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "type", "message");
    cJSON_AddStringToObject(o, "role", "assistant");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON_AddStringToObject(o, "model", cJSON_IsString(model) ? model->valuestring : "");
    cJSON *content = cJSON_AddArrayToObject(o, "content");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (cJSON_IsString(text) && text->valuestring[0]) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "text");
        cJSON_AddStringToObject(b, "text", text->valuestring);
        cJSON_AddItemToArray(content, b);
    }
    const cJSON *tc;
    cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(msg, "tool_calls")) {
        cJSON *b = tool_call_to_use(tc);
        if (b) cJSON_AddItemToArray(content, b);
    }
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
    cJSON_AddStringToObject(o, "stop_reason", ma_stop_reason(cJSON_IsString(fr) ? fr->valuestring : NULL));
    cJSON_AddNullToObject(o, "stop_sequence");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    cJSON *usage = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(usage, "input_tokens", (double)ma_count(u, "prompt_tokens"));
    cJSON_AddNumberToObject(usage, "output_tokens", (double)ma_count(u, "completion_tokens"));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    cJSON_Delete(root);
    if (s) *out_len = strlen(s);
    return s;
}

/* ------------------------------------------------------------- the stream */

void messages_stream_init(messages_stream *s)
{
    memset(s, 0, sizeof *s);
    s->open_block = -1;
    for (size_t i = 0; i < sizeof s->tool_block / sizeof s->tool_block[0]; i++) s->tool_block[i] = -1;
}

/* One event: `event: TYPE` and its data line. */
static void ms_event(buf *out, const char *type)
{
    buf_printf(out, "event: %s\ndata: ", type);
}

static void ms_close_block(messages_stream *s, buf *out)
{
    if (s->open_block < 0) return;
    ms_event(out, "content_block_stop");
    buf_printf(out, "{\"type\":\"content_block_stop\",\"index\":%d}\n\n", s->open_block);
    s->open_block = -1;
}

static void ms_start(messages_stream *s, const cJSON *chunk, buf *out)
{
    if (s->started) return;
    s->started = true;
    ms_event(out, "message_start");
    char id[128];
    ma_id(chunk, id);
    buf_puts(out, "{\"type\":\"message_start\",\"message\":{\"id\":");
    json_escape_string(out, id, strlen(id));
    buf_puts(out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(chunk, "model");
    const char *m = cJSON_IsString(model) ? model->valuestring : "";
    json_escape_string(out, m, strlen(m));
    /* The input count is known at the end only: message_delta carries it. */
    buf_puts(out, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                  "\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}\n\n");
    ms_event(out, "ping");
    buf_puts(out, "{\"type\":\"ping\"}\n\n");
}

static void ms_text(messages_stream *s, const char *text, buf *out)
{
    if (!text[0]) return;
    if (s->open_block < 0 || !s->open_is_text) {
        ms_close_block(s, out);
        s->open_block = s->next_block++;
        s->open_is_text = true;
        ms_event(out, "content_block_start");
        buf_printf(out, "{\"type\":\"content_block_start\",\"index\":%d,"
                        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n", s->open_block);
    }
    ms_event(out, "content_block_delta");
    buf_printf(out, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":"
                    "{\"type\":\"text_delta\",\"text\":", s->open_block);
    json_escape_string(out, text, strlen(text));
    buf_puts(out, "}}\n\n");
}

/* A tool-call delta: its first piece (id and name) starts a tool_use
 * block, its argument text goes out as input_json_delta. */
static void ms_tool(messages_stream *s, const cJSON *tc, buf *out)
{
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(tc, "index");
    int k = cJSON_IsNumber(ix) ? ix->valueint : 0;   /* valueint: cJSON clamps it to int */
    if (k < 0 || k >= (int)(sizeof s->tool_block / sizeof s->tool_block[0])) return;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(tc, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    if (s->tool_block[k] < 0) {
        if (!cJSON_IsString(id) || !cJSON_IsString(name)) return;   /* not started: nothing to attach to */
        ms_close_block(s, out);
        s->tool_block[k] = s->open_block = s->next_block++;
        s->open_is_text = false;
        ms_event(out, "content_block_start");
        buf_printf(out, "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":"
                        "{\"type\":\"tool_use\",\"id\":", s->open_block);
        json_escape_string(out, id->valuestring, strlen(id->valuestring));
        buf_puts(out, ",\"name\":");
        json_escape_string(out, name->valuestring, strlen(name->valuestring));
        buf_puts(out, ",\"input\":{}}}\n\n");
    }
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    /* Providers send one call's pieces in order; a piece of an earlier,
     * already closed call cannot be placed and is dropped. */
    if (!cJSON_IsString(args) || !args->valuestring[0] || s->tool_block[k] != s->open_block) return;
    ms_event(out, "content_block_delta");
    buf_printf(out, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":"
                    "{\"type\":\"input_json_delta\",\"partial_json\":", s->open_block);
    json_escape_string(out, args->valuestring, strlen(args->valuestring));
    buf_puts(out, "}}\n\n");
}

void messages_stream_chunk(messages_stream *s, const char *json, size_t len, buf *out)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return;
    }
    ms_start(s, root, out);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (cJSON_IsObject(u)) {
        s->input_tokens = ma_count(u, "prompt_tokens");
        s->output_tokens = ma_count(u, "completion_tokens");
    }
    /* One answer: the chat request made here never asks for n > 1. */
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(delta, "content");
    if (cJSON_IsString(text)) ms_text(s, text->valuestring, out);
    const cJSON *tc;
    cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls")) ms_tool(s, tc, out);
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
    if (cJSON_IsString(fr))
        snprintf(s->stop_reason, sizeof s->stop_reason, "%s", ma_stop_reason(fr->valuestring));
    cJSON_Delete(root);
}

void messages_stream_end(messages_stream *s, bool ok, int status, const char *message, buf *out)
{
    if (!ok) {
        ms_event(out, "error");
        messages_error_body(status, message ? message : "the call failed", out);
        buf_puts(out, "\n\n");
        return;
    }
    if (!s->started) {
        cJSON *empty = cJSON_CreateObject();
        ms_start(s, empty, out);
        cJSON_Delete(empty);
    }
    ms_close_block(s, out);
    ms_event(out, "message_delta");
    buf_printf(out, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
                    "\"stop_sequence\":null},\"usage\":{\"input_tokens\":%" PRId64
                    ",\"output_tokens\":%" PRId64 "}}\n\n",
               s->stop_reason[0] ? s->stop_reason : "end_turn", s->input_tokens, s->output_tokens);
    ms_event(out, "message_stop");
    buf_puts(out, "{\"type\":\"message_stop\"}\n\n");
}

/* ------------------------------------------------------------------ errors */

const char *messages_error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: case 529: return "overloaded_error";
    default: return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

void messages_error_body(int status, const char *message, buf *out)
{
    buf_puts(out, "{\"type\":\"error\",\"error\":{\"type\":\"");
    buf_puts(out, messages_error_type(status));
    buf_puts(out, "\",\"message\":");
    json_escape_string(out, message, strlen(message));
    buf_puts(out, "}}");
}
