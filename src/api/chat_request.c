/* chat_request.c — checking and rewriting chat-completions requests (see
 * chat_request.h). Unknown fields are passed through on purpose: OpenAI adds
 * request fields often, and a gateway that rejects them breaks clients. */
#include "api/chat_request.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

static bool chat_fail(chat_request_error *err, int status, const char *code, const char *param,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static bool chat_fail(chat_request_error *err, int status, const char *code, const char *param,
                      const char *fmt, ...)
{
    err->status = status;
    err->type = status == 404 ? "not_found_error" : "invalid_request_error";
    err->code = code;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return false;
}

static bool chat_check_max_tokens(const cJSON *body, const model_cfg *m, const char *name,
                                  chat_request_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e9 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return chat_fail(err, 400, "invalid_value", name, "%s must be a positive integer", name);
    if (m->max_output_tokens && v->valuedouble > m->max_output_tokens)
        return chat_fail(err, 400, "invalid_value", name,
                         "%s is %.0f, but model \"%s\" allows at most %u output tokens", name,
                         v->valuedouble, m->name, m->max_output_tokens);
    return true;
}

static bool chat_check_messages(const cJSON *body, chat_request_error *err)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (!msgs)
        return chat_fail(err, 400, "missing_field", "messages",
                         "missing required field \"messages\"");
    if (!cJSON_IsArray(msgs) || !msgs->child)
        return chat_fail(err, 400, "invalid_value", "messages",
                         "\"messages\" must be a non-empty array");
    int i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            char param[32];
            snprintf(param, sizeof param, "messages[%d]", i);
            return chat_fail(err, 400, "invalid_value", param,
                             "%s must be an object with a string \"role\"", param);
        }
    }
    return true;
}

bool chat_request_parse(const char *body, size_t len, const brigade_config *cfg,
                        chat_request *out, chat_request_error *err)
{
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    if (!body || len == 0)
        return chat_fail(err, 400, "missing_body", NULL, "this request needs a JSON object body");
    if (!utf8_valid(body, len))
        return chat_fail(err, 400, "invalid_utf8", NULL, "the request body is not valid UTF-8");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        return chat_fail(err, 400, "invalid_json", NULL,
                         "the request body is not valid JSON (error near byte %zu)", at);
    }
    bool ok = false;
    for (const char *p = end; p < body + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            chat_fail(err, 400, "invalid_json", NULL, "unexpected data after the JSON value");
            goto out;
        }
    if (!cJSON_IsObject(root)) {
        chat_fail(err, 400, "invalid_json", NULL, "the request body must be a JSON object");
        goto out;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!model) {
        chat_fail(err, 400, "missing_field", "model", "missing required field \"model\"");
        goto out;
    }
    if (!cJSON_IsString(model) || !model->valuestring[0] || strlen(model->valuestring) > 128) {
        chat_fail(err, 400, "invalid_value", "model", "\"model\" must be a model name (a string)");
        goto out;
    }
    const model_cfg *m = config_find_model(cfg, model->valuestring);
    if (!m) {
        chat_fail(err, 404, "model_not_found", "model",
                  "the model \"%s\" does not exist on this server (GET /v1/models lists them)",
                  model->valuestring);
        goto out;
    }
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (stream && !cJSON_IsBool(stream) && !cJSON_IsNull(stream)) {
        chat_fail(err, 400, "invalid_type", "stream", "\"stream\" must be true or false");
        goto out;
    }
    if (!chat_check_messages(root, err) || !chat_check_max_tokens(root, m, "max_tokens", err) ||
        !chat_check_max_tokens(root, m, "max_completion_tokens", err))
        goto out;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    out->model = m;
    out->stream = cJSON_IsTrue(stream);
    /* The output cap bounds the call's worst-case cost (the reservation). */
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens");
    if (!cJSON_IsNumber(mt)) mt = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    out->max_output_tokens = cJSON_IsNumber(mt) ? (uint32_t)mt->valuedouble : 0;
    out->client_wants_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    /* A request without an output cap gets the model's: the reservation
     * is priced on it, so the provider must not be free to go past it.
     * (max_completion_tokens is OpenAI's current name; the Anthropic
     * translation and the mock read it too.) */
    uint32_t cap = out->max_output_tokens ? 0 : m->max_output_tokens;
    if (cap) out->max_output_tokens = cap;
    if (strcmp(m->name, m->upstream_model) == 0) {
        /* Nothing to rewrite: send the client's bytes as they came (they
         * parsed as one JSON object above), without re-encoding them — the
         * cap, if one is added, goes in textually right after the opening
         * brace, which in an object is always followed by a member. */
        char capfield[48] = "";
        int cl = cap ? snprintf(capfield, sizeof capfield, "\"max_completion_tokens\":%u,", cap) : 0;
        size_t brace = 0;
        while (brace < len && body[brace] != '{') brace++;
        out->upstream_body = malloc(len + (size_t)cl + 1);
        if (!out->upstream_body) abort();
        memcpy(out->upstream_body, body, brace + 1);
        memcpy(out->upstream_body + brace + 1, capfield, (size_t)cl);
        memcpy(out->upstream_body + brace + 1 + cl, body + brace + 1, len - brace - 1);
        out->upstream_body_len = len + (size_t)cl;
        out->upstream_body[out->upstream_body_len] = '\0';
    } else {
        if (cap) cJSON_AddNumberToObject(root, "max_completion_tokens", cap);
        cJSON_ReplaceItemInObjectCaseSensitive(root, "model", cJSON_CreateString(m->upstream_model));
        out->upstream_body = cJSON_PrintUnformatted(root);
        if (!out->upstream_body) {
            chat_fail(err, 400, "invalid_json", NULL, "the request could not be re-encoded");
            goto out;
        }
        out->upstream_body_len = strlen(out->upstream_body);
    }
    ok = true;
out:
    cJSON_Delete(root);
    return ok;
}

void chat_request_free(chat_request *r)
{
    free(r->upstream_body);
    r->upstream_body = NULL;
}
