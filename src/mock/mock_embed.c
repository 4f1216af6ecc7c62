/* mock_embed.c — the mock LLM's embeddings (POST /v1/embeddings, OpenAI's
 * shape): deterministic vectors, so tests can compare them.
 *
 * Each input's vector is seeded by the FNV-1a hash of its text (or of a
 * token array's JSON), drawn from splitmix64 as values in [-1, 1), and
 * normalised to unit length. A request for fewer `dimensions` takes the
 * first ones and normalises again — how OpenAI's shortened embeddings
 * behave — so equal texts give equal vectors, and a shortened vector is a
 * prefix direction of the full one. Tokens: ceil(bytes / 4) per text (at
 * least 1), the length of a token array. Pure, like the rest of the engine. */
#include "mock/mock_engine.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_escape.h"
#include "util/xalloc.h"

static uint64_t me_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void mock_embedding_vector(const char *text, size_t len, uint32_t dims, float *out)
{
    uint64_t seed = mock_hash(text, len);
    double norm = 0;
    for (uint32_t i = 0; i < dims; i++) {
        double v = (double)(me_splitmix(&seed) >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
        out[i] = (float)v;
        norm += v * v;
    }
    norm = sqrt(norm);
    if (norm > 0)
        for (uint32_t i = 0; i < dims; i++) out[i] = (float)(out[i] / norm);
}

/* Standard base64 with padding (what OpenAI's encoding_format base64 is). */
static void me_base64(const unsigned char *in, size_t n, buf *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63],
                     i + 1 < n ? tab[(v >> 6) & 63] : '=', i + 2 < n ? tab[v & 63] : '='};
        buf_append(out, q, 4);
    }
}

/* One input's text to seed from, and its token count; false if it is no
 * input (not a string, not an array of integers). */
static bool me_input(const cJSON *in, char **text, size_t *len, int64_t *tokens)
{
    if (cJSON_IsString(in)) {
        *text = xstrdup(in->valuestring);
        *len = strlen(in->valuestring);
        *tokens = *len ? (int64_t)((*len + 3) / 4) : 1;
        return true;
    }
    if (!cJSON_IsArray(in) || !in->child) return false;
    const cJSON *t;
    cJSON_ArrayForEach(t, in) if (!cJSON_IsNumber(t)) return false;
    *text = cJSON_PrintUnformatted(in);
    if (!*text) return false;
    *len = strlen(*text);
    *tokens = cJSON_GetArraySize(in);
    return true;
}

int mock_embeddings(const char *body, size_t len, buf *out, int64_t *prompt_tokens)
{
    *prompt_tokens = 0;
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    const char *why = NULL, *param = NULL;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
    const cJSON *dims_v = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "encoding_format");
    uint32_t dims = MOCK_EMBED_DEFAULT_DIMS;
    bool base64 = false;
    if (!cJSON_IsObject(root)) why = "request body is not a valid JSON object";
    else if (!cJSON_IsString(model)) why = "'model' is required", param = "model";
    else if (!input) why = "'input' is required", param = "input";
    else if (dims_v && !cJSON_IsNull(dims_v) &&
             !(cJSON_IsNumber(dims_v) && dims_v->valuedouble >= 1 &&
               dims_v->valuedouble <= MOCK_EMBED_MAX_DIMS &&
               dims_v->valuedouble == (double)(uint32_t)dims_v->valuedouble))
        why = "'dimensions' must be an integer from 1 to 8192", param = "dimensions";
    else if (fmt && !cJSON_IsNull(fmt) &&
             !(cJSON_IsString(fmt) && (strcmp(fmt->valuestring, "float") == 0 ||
                                       strcmp(fmt->valuestring, "base64") == 0)))
        why = "'encoding_format' must be \"float\" or \"base64\"", param = "encoding_format";
    if (!why) {
        if (cJSON_IsNumber(dims_v)) dims = (uint32_t)dims_v->valuedouble;
        base64 = cJSON_IsString(fmt) && strcmp(fmt->valuestring, "base64") == 0;
    }
    /* One input (a string or a token array), or an array of them. */
    const cJSON *single = NULL;
    if (!why && (cJSON_IsString(input) || (cJSON_IsArray(input) && cJSON_IsNumber(input->child))))
        single = input;
    else if (!why && (!cJSON_IsArray(input) || !input->child || cJSON_GetArraySize(input) > MOCK_EMBED_MAX_INPUTS))
        why = "'input' must be a string, a token array, or a non-empty array of them (at most 2048)",
        param = "input";
    if (why) {
        buf_puts(out, "{\"error\":{\"message\":");
        json_escape_string(out, why, strlen(why));
        buf_puts(out, ",\"type\":\"invalid_request_error\",\"param\":");
        if (param) json_escape_string(out, param, strlen(param));
        else buf_puts(out, "null");
        buf_puts(out, ",\"code\":null}}");
        cJSON_Delete(root);
        return 400;
    }
    float *vec = xmalloc(sizeof(float) * dims);
    buf_puts(out, "{\"object\":\"list\",\"data\":[");
    const cJSON *item = single ? single : input->child;
    int index = 0;
    for (; item; item = single ? NULL : item->next, index++) {
        char *text = NULL;
        size_t tl = 0;
        int64_t tok = 0;
        if (!me_input(item, &text, &tl, &tok)) {
            free(vec);
            cJSON_Delete(root);
            out->len = 0;
            buf_printf(out, "{\"error\":{\"message\":\"input[%d] must be a string or an array of "
                            "integers\",\"type\":\"invalid_request_error\",\"param\":\"input\","
                            "\"code\":null}}", index);
            return 400;
        }
        *prompt_tokens += tok;
        mock_embedding_vector(text, tl, dims, vec);
        free(text);
        buf_printf(out, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", index ? "," : "", index);
        if (base64) {
            buf_puts(out, "\"");
            me_base64((const unsigned char *)vec, sizeof(float) * dims, out);   /* little-endian hosts */
            buf_puts(out, "\"");
        } else {
            buf_puts(out, "[");
            for (uint32_t i = 0; i < dims; i++) buf_printf(out, "%s%.8g", i ? "," : "", (double)vec[i]);
            buf_puts(out, "]");
        }
        buf_puts(out, "}");
    }
    free(vec);
    buf_puts(out, "],\"model\":");
    json_escape_string(out, model->valuestring, strlen(model->valuestring));
    buf_printf(out, ",\"usage\":{\"prompt_tokens\":%" PRId64 ",\"total_tokens\":%" PRId64 "}}",
               *prompt_tokens, *prompt_tokens);
    cJSON_Delete(root);
    return 200;
}
