/* memory.c — /v1/memory: a user's long-term memory over HTTP, the same
 * records the agent's `memory` tool reads and writes. Every handler runs on
 * the thread pool with the caller's user scope, so a user reaches only
 * their own memory; another user's key is simply not found.
 *
 *   GET    /v1/memory?q=&limit=   search (q empty: newest first)
 *   GET    /v1/memory/{key}       one record
 *   PUT    /v1/memory/{key}       {"value": "…"} → the record
 *   DELETE /v1/memory/{key}       → {"object":"memory","key","deleted":true}
 *
 * A record shows who wrote it (`origin`, core/origin.h): what is PUT here
 * is the user's own; the memory tool records the run that wrote it. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "core/origin.h"
#include "util/utf8.h"

#define MEMORY_LIST_DEFAULT 20
#define MEMORY_LIST_MAX 100
#define MEMORY_QUERY_MAX 1024

static cJSON *memory_json(const memory_rec *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "memory");
    cJSON_AddStringToObject(o, "key", m->key);
    cJSON_AddStringToObject(o, "value", m->value ? m->value : "");
    cJSON_AddNumberToObject(o, "updated_at", (double)m->updated_at);
    cJSON *origin = m->origin_json ? cJSON_Parse(m->origin_json) : NULL;
    if (!cJSON_IsObject(origin)) {          /* an entry older than provenance */
        cJSON_Delete(origin);
        origin = origin_new(ORIGIN_UNKNOWN, true);
    }
    cJSON_AddItemToObject(o, "origin", origin);
    return o;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The key is a path segment: percent-decode it, then hold it to the
 * store's rule (1-256 bytes of UTF-8, no control characters). */
static bool memory_key_param(api_ctx *ctx, char out[STORE_MEMORY_KEY_MAX + 1])
{
    const char *raw = ctx->req->n_params > 0 ? ctx->req->params[0] : NULL;
    size_t n = 0;
    const char *why = NULL;
    for (const char *p = raw ? raw : ""; *p && !why; p++) {
        char c = *p;
        if (c == '%') {
            int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
            if (hi < 0 || lo < 0) {
                why = "has a malformed percent-escape";
                break;
            }
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        if (n == STORE_MEMORY_KEY_MAX) why = "is longer than 256 bytes";
        else out[n++] = c;
    }
    out[n] = '\0';
    if (!why && n == 0) why = "is empty";
    if (!why && !utf8_valid(out, n)) why = "is not valid UTF-8";
    for (size_t i = 0; !why && i < n; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) why = "contains a control character";
    if (why) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "key",
                 "the memory key %s (keys are 1 to 256 bytes of UTF-8 text, percent-encoded "
                 "in the path)", why);
        return false;
    }
    return true;
}

void api_memory_search(api_ctx *ctx)
{
    const char *q = http_query_get(ctx->req, "q");
    if (!q) q = "";
    size_t qlen = strlen(q);
    if (qlen > MEMORY_QUERY_MAX || !utf8_valid(q, qlen)) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "q",
                 "query parameter \"q\" must be UTF-8 text of at most %d bytes",
                 MEMORY_QUERY_MAX);
        return;
    }
    long long limit = MEMORY_LIST_DEFAULT;
    if (!api_query_int(ctx, "limit", 1, MEMORY_LIST_MAX, &limit, NULL)) return;

    /* One more than asked tells whether there is more. */
    memory_rec *arr = NULL;
    size_t n = 0;
    store_status st = store_memory_search(ctx->env->store, &ctx->scope, q, (size_t)limit + 1,
                                          &arr, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "memory");
        return;
    }
    bool more = n > (size_t)limit;
    cJSON *data = cJSON_CreateArray();
    for (size_t i = 0; i < n && i < (size_t)limit; i++)
        cJSON_AddItemToArray(data, memory_json(&arr[i]));
    store_free_memories(arr, n);
    api_reply(ctx, 200, api_json_list(data, more));
}

void api_memory_get(api_ctx *ctx)
{
    char key[STORE_MEMORY_KEY_MAX + 1];
    if (!memory_key_param(ctx, key)) return;
    memory_rec m;
    memset(&m, 0, sizeof m);
    store_status st = store_memory_get(ctx->env->store, &ctx->scope, key, &m);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "memory");
        return;
    }
    cJSON *o = memory_json(&m);
    memory_rec_free(&m);
    api_reply(ctx, 200, o);
}

void api_memory_put(api_ctx *ctx)
{
    char key[STORE_MEMORY_KEY_MAX + 1];
    if (!memory_key_param(ctx, key)) return;
    cJSON *body = api_body_object(ctx, (const char *const[]){"value", NULL}, false);
    if (!body) return;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "value");
    if (!v || cJSON_IsNull(v)) {
        cJSON_Delete(body);
        api_fail(ctx, 400, "invalid_request_error", "missing_field", "value",
                 "missing required field \"value\"");
        return;
    }
    /* Values are free text: newlines and tabs are fine, unlike in names. */
    if (!cJSON_IsString(v) || !v->valuestring) {
        cJSON_Delete(body);
        api_fail(ctx, 400, "invalid_request_error", "invalid_type", "value",
                 "field \"value\" must be a string");
        return;
    }
    size_t len = strlen(v->valuestring);
    if (len == 0 || len > STORE_MEMORY_VALUE_MAX) {
        cJSON_Delete(body);
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "value",
                 "field \"value\" must be 1 to %u bytes long", (unsigned)STORE_MEMORY_VALUE_MAX);
        return;
    }
    memory_rec m;
    memset(&m, 0, sizeof m);
    /* the user's own words, trusted as the user's message is */
    store_status st = store_memory_put_from(ctx->env->store, &ctx->scope, key, v->valuestring,
                                            "{\"kind\":\"user\",\"untrusted\":false}", &m);
    if (st != STORE_OK) {
        cJSON_Delete(body);
        api_fail_store(ctx, st, "memory");
        return;
    }
    if (!m.key[0]) memcpy(m.key, key, sizeof m.key);
    if (!m.value) m.value = strdup(v->valuestring);
    cJSON_Delete(body);
    cJSON *o = memory_json(&m);
    memory_rec_free(&m);
    api_reply(ctx, 200, o);
}

void api_memory_delete(api_ctx *ctx)
{
    char key[STORE_MEMORY_KEY_MAX + 1];
    if (!memory_key_param(ctx, key)) return;
    store_status st = store_memory_delete(ctx->env->store, &ctx->scope, key);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "memory");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "memory");
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddBoolToObject(o, "deleted", true);
    api_reply(ctx, 200, o);
}
