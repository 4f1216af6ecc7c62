/* completions.c — POST /v1/completions (see completions.h): the legacy
 * text completions API on the gateway's one governed chat path. */
#include "api/completions.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* The fields read: the first COMP_COPIED are copied to the chat request
 * as they are (chat_request_parse governs them); the prompt is the user
 * message; echo, logprobs and suffix only in their "off" forms (below).
 * Any other is refused. */
static const char *const comp_fields[] = {
    "model", "stream", "stream_options", "max_tokens", "n", "best_of", "temperature", "top_p",
    "stop", "presence_penalty", "frequency_penalty", "logit_bias", "user", "seed",
    "prompt", "echo", "logprobs", "suffix",
};
#define COMP_COPIED 14

/* Legacy fields the chat path cannot honour. null is the same as absent
 * (echo and logprobs also take false and 0, their "off"). */
static bool comp_refused(const cJSON *root, chat_request_error *err)
{
    const cJSON *echo = cJSON_GetObjectItemCaseSensitive(root, "echo");
    if (echo && !cJSON_IsNull(echo) && !cJSON_IsFalse(echo))
        return chat_request_fail(err, 400, "unsupported_parameter", "echo",
                                 "\"echo\" is not supported: answers come from a chat model, "
                                 "which does not return the prompt");
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(root, "logprobs");
    if (lp && !cJSON_IsNull(lp) && !(cJSON_IsNumber(lp) && lp->valuedouble == 0))
        return chat_request_fail(err, 400, "unsupported_parameter", "logprobs",
                                 "\"logprobs\" is not supported on /v1/completions here");
    const cJSON *suffix = cJSON_GetObjectItemCaseSensitive(root, "suffix");
    if (suffix && !cJSON_IsNull(suffix))
        return chat_request_fail(err, 400, "unsupported_parameter", "suffix",
                                 "\"suffix\" (insertion) is not supported: a chat model only "
                                 "continues");
    return chat_request_known_fields(root, comp_fields, sizeof comp_fields / sizeof comp_fields[0],
                                     "completions", err);
}

/* The prompt: a string, or an array holding one string. */
static const char *comp_prompt(const cJSON *root, chat_request_error *err)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!p) {
        chat_request_fail(err, 400, "missing_field", "prompt", "missing required field \"prompt\"");
        return NULL;
    }
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(p->child)) p = p->child;
    else if (cJSON_IsArray(p) && cJSON_GetArraySize(p) > 1 && cJSON_IsString(p->child)) {
        chat_request_fail(err, 400, "unsupported_value", "prompt",
                          "\"prompt\" holds %d prompts; send one per request (each is its own "
                          "model call, governed on its own)", cJSON_GetArraySize(p));
        return NULL;
    }
    if (!cJSON_IsString(p)) {
        chat_request_fail(err, 400, "invalid_value", "prompt",
                          "\"prompt\" must be a string or an array of one string (token arrays "
                          "are not supported: token ids belong to one model's vocabulary)");
        return NULL;
    }
    return p->valuestring;
}

bool completions_request_parse(const char *body, size_t len, const brigade_config *cfg,
                               chat_request *out, chat_request_error *err)
{
    cJSON *root = chat_request_read_object(body, len, out, err);
    if (!root) return false;
    const char *prompt = comp_refused(root, err) ? comp_prompt(root, err) : NULL;
    if (!prompt) {
        cJSON_Delete(root);
        return false;
    }
    cJSON *chat = cJSON_CreateObject();
    for (size_t i = 0; i < COMP_COPIED; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, comp_fields[i]);
        if (v) cJSON_AddItemToObject(chat, comp_fields[i], cJSON_Duplicate(v, 1));
    }
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddStringToObject(msg, "role", "user");
    cJSON_AddStringToObject(msg, "content", prompt);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(chat, "messages"), msg);
    cJSON_Delete(root);
    return chat_request_parse_tree(chat, cfg, out, err);
}

/* cmpl- + the completion's id without the chat prefix. */
static void comp_id(const cJSON *root, cJSON *o)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const char *s = cJSON_IsString(id) ? id->valuestring : "";
    if (strncmp(s, "chatcmpl-", 9) == 0) s += 9;
    char buf_id[128];
    snprintf(buf_id, sizeof buf_id, "cmpl-%.100s", s);
    cJSON_AddStringToObject(o, "id", buf_id);
}

/* The text_completion frame of a chat body: id, object, created, model. */
static cJSON *comp_frame(const cJSON *root)
{
    cJSON *o = cJSON_CreateObject();
    comp_id(root, o);
    cJSON_AddStringToObject(o, "object", "text_completion");
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(root, "created");
    cJSON_AddNumberToObject(o, "created", cJSON_IsNumber(created) ? created->valuedouble : 0);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    cJSON_AddStringToObject(o, "model", cJSON_IsString(model) ? model->valuestring : "");
    return o;
}

/* One text_completion choice of a chat choice; `part` is "message" or
 * "delta". */
static cJSON *comp_choice(const cJSON *ch, const char *part)
{
    cJSON *c = cJSON_CreateObject();
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ch, part), "content");
    cJSON_AddStringToObject(c, "text", cJSON_IsString(content) ? content->valuestring : "");
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(ch, "index");
    cJSON_AddNumberToObject(c, "index", cJSON_IsNumber(ix) ? ix->valuedouble : 0);
    cJSON_AddNullToObject(c, "logprobs");
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
    if (cJSON_IsString(fr)) cJSON_AddStringToObject(c, "finish_reason", fr->valuestring);
    else cJSON_AddNullToObject(c, "finish_reason");
    return c;
}

char *completions_answer(const char *json, size_t len, size_t *out_len)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(choices)) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON *o = comp_frame(root);
    cJSON *arr = cJSON_AddArrayToObject(o, "choices");
    const cJSON *ch;
    cJSON_ArrayForEach(ch, choices) cJSON_AddItemToArray(arr, comp_choice(ch, "message"));
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (cJSON_IsObject(u)) cJSON_AddItemToObject(o, "usage", cJSON_Duplicate(u, 1));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    cJSON_Delete(root);
    if (s) *out_len = strlen(s);
    return s;
}

void completions_stream_chunk(bool wants_usage, const char *json, size_t len, buf *out)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    bool usage_only = cJSON_IsArray(choices) && !choices->child;
    if (!cJSON_IsObject(root) || !cJSON_IsArray(choices) || (usage_only && !wants_usage)) {
        cJSON_Delete(root);
        return;
    }
    cJSON *o = comp_frame(root);
    cJSON *arr = cJSON_AddArrayToObject(o, "choices");
    const cJSON *ch;
    cJSON_ArrayForEach(ch, choices) cJSON_AddItemToArray(arr, comp_choice(ch, "delta"));
    if (cJSON_IsObject(u)) cJSON_AddItemToObject(o, "usage", cJSON_Duplicate(u, 1));
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        buf_puts(out, "data: ");
        buf_puts(out, s);
        buf_puts(out, "\n\n");
        free(s);
    }
    cJSON_Delete(o);
    cJSON_Delete(root);
}
