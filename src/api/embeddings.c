/* embeddings.c — checking a POST /v1/embeddings request (see
 * embeddings.h); the route is in client_routes.c. */
#include "api/embeddings.h"

#include "api/chat_scan.h"
#include "util/json_member.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const char *const emb_fields[] = {"model", "input", "encoding_format", "dimensions", "user"};

/* One input: a non-empty string within the model's context window. */
static bool emb_input(const cJSON *v, const model_cfg *m, const char *param, chat_request_error *err)
{
    if (cJSON_IsArray(v) || cJSON_IsNumber(v))
        return chat_request_fail(err, 400, "unsupported_value", param,
                                 "%s is a token array; send text (token ids belong to one model's "
                                 "vocabulary)", param);
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return chat_request_fail(err, 400, "invalid_value", param, "%s must be a non-empty string",
                                 param);
    size_t bytes = strlen(v->valuestring);
    if ((bytes + 3) / 4 > m->context_window)
        return chat_request_fail(err, 400, "input_too_long", param,
                                 "%s is about %zu tokens; model \"%s\" takes at most %u per input",
                                 param, (bytes + 3) / 4, m->name, m->context_window);
    return true;
}

static bool emb_check(const cJSON *root, const model_cfg *m, chat_request_error *err)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
    if (!input)
        return chat_request_fail(err, 400, "missing_field", "input", "missing required field \"input\"");
    if (cJSON_IsArray(input) && cJSON_IsNumber(input->child))
        return emb_input(input, m, "input", err);
    if (cJSON_IsArray(input)) {
        int n = cJSON_GetArraySize(input);
        if (n < 1 || n > EMBEDDINGS_MAX_INPUTS)
            return chat_request_fail(err, 400, "invalid_value", "input",
                                     "\"input\" holds %d texts; send 1 to %d per request", n,
                                     EMBEDDINGS_MAX_INPUTS);
        int i = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, input) {
            char p[32];
            snprintf(p, sizeof p, "input[%d]", i++);
            if (!emb_input(v, m, p, err)) return false;
        }
    } else if (!emb_input(input, m, "input", err)) {
        return false;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "encoding_format");
    if (fmt && !cJSON_IsNull(fmt) &&
        !(cJSON_IsString(fmt) && (strcmp(fmt->valuestring, "float") == 0 ||
                                  strcmp(fmt->valuestring, "base64") == 0)))
        return chat_request_fail(err, 400, "invalid_value", "encoding_format",
                                 "\"encoding_format\" must be \"float\" or \"base64\"");
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
    uint32_t max = m->dimensions ? m->dimensions : 65536;
    if (dims && !cJSON_IsNull(dims) &&
        !(cJSON_IsNumber(dims) && dims->valuedouble >= 1 && dims->valuedouble <= max &&
          dims->valuedouble == (double)(uint32_t)dims->valuedouble))
        return chat_request_fail(err, 400, "invalid_value", "dimensions",
                                 "\"dimensions\" must be a whole number from 1 to %u for model \"%s\"",
                                 max, m->name);
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(root, "user");
    if (user && !cJSON_IsNull(user) && !(cJSON_IsString(user) && strlen(user->valuestring) <= 256))
        return chat_request_fail(err, 400, "invalid_value", "user",
                                 "\"user\" must be a string of at most 256 bytes");
    return true;
}

bool embeddings_request_parse(const char *body, size_t len, const brigade_config *cfg,
                              chat_request *out, chat_request_error *err)
{
    cJSON *root = chat_request_read_object(body, len, out, err);
    if (!root) return false;
    bool ok = false;
    const model_cfg *m = NULL;
    if (!chat_request_known_fields(root, emb_fields, sizeof emb_fields / sizeof emb_fields[0],
                                   "embeddings", err) ||
        !(m = chat_request_model(root, cfg, true, err)))
        goto out;
    if (!emb_check(root, m, err)) goto out;
    /* The client's bytes with only the model's value swapped, not re-encoded
     * (json_member.h): token ids and every other field go on as written. */
    chat_forward_edits ed = {.upstream_model = m->upstream_model};
    if (!json_top_member(body, len, "model", 5, &ed.model_start, &ed.model_end)) {
        chat_request_fail(err, 400, "invalid_json", NULL, "the request could not be re-encoded");
        goto out;
    }
    chat_request_forward_bytes(body, len, &ed, out);
    out->model = m;
    out->choices = 1;
    out->max_output_tokens = 0;     /* with the model's cap of 0: nothing reserved for output */
    ok = true;
out:
    cJSON_Delete(root);
    return ok;
}
