/* traces.c — GET /v1/traces/{trace_id}: the spans of one trace as a tree.
 *
 * Scoped by the store (store_trace_get): a tenant admin reads traces of its
 * tenant, a user only traces all of whose spans are its own. Everything
 * else — another tenant's or user's trace, a malformed id, a trace that
 * never existed — is the same 404, so the answer says nothing about traces
 * outside the caller's scope. Spans are in the store within
 * OBS_TRACE_FLUSH_MS of their end, so a trace read right after a request
 * may still be missing that request's last spans. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *api_span_kind(int k)
{
    switch (k) {
    case OBS_SPAN_SERVER: return "server";
    case OBS_SPAN_CLIENT: return "client";
    default: return "internal";
    }
}

static const char *api_span_status(int s)
{
    return s == OBS_STATUS_OK ? "ok" : s == OBS_STATUS_ERROR ? "error" : "unset";
}

static cJSON *api_json_span(const span_rec *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "span_id", r->span_id);
    if (r->parent_span_id[0]) cJSON_AddStringToObject(o, "parent_span_id", r->parent_span_id);
    else cJSON_AddNullToObject(o, "parent_span_id");
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "kind", api_span_kind(r->kind));
    /* Nanoseconds since the epoch do not fit a double exactly: strings,
     * as OTLP does; duration in ms as a number for people. */
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)r->start_ns);
    cJSON_AddStringToObject(o, "start_unix_nano", num);
    snprintf(num, sizeof num, "%lld", (long long)r->end_ns);
    cJSON_AddStringToObject(o, "end_unix_nano", num);
    cJSON_AddNumberToObject(o, "duration_ms", (double)(r->end_ns - r->start_ns) / 1e6);
    cJSON *st = cJSON_AddObjectToObject(o, "status");
    cJSON_AddStringToObject(st, "code", api_span_status(r->status));
    if (r->status_message[0]) cJSON_AddStringToObject(st, "message", r->status_message);
    cJSON *attrs = r->attributes ? cJSON_Parse(r->attributes) : NULL;
    cJSON_AddItemToObject(o, "attributes", attrs ? attrs : cJSON_CreateObject());
    cJSON_AddItemToObject(o, "children", cJSON_CreateArray());
    return o;
}

void api_traces_get(api_ctx *ctx)
{
    const char *id = ctx->req->params[0];
    if (!obs_trace_id_valid(id)) {
        api_fail(ctx, 404, "not_found_error", "not_found", NULL, "trace not found");
        return;
    }
    span_rec *spans = NULL;
    size_t n = 0;
    store_status st = store_trace_get(ctx->env->store, &ctx->scope, id, &spans, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "trace");
        return;
    }
    /* `spans`: flat, by start time; `tree`: the roots, each span with its
     * `children` (a span whose parent is not in the answer — the client's
     * own span, or one outside the caller's view — is a root). */
    cJSON *flat = cJSON_CreateArray();
    cJSON **nodes = calloc(n, sizeof *nodes);
    if (!nodes) {
        cJSON_Delete(flat);
        store_free_spans(spans, n);
        api_fail(ctx, 500, "api_error", "internal_error", NULL, "out of memory");
        return;
    }
    cJSON *tree = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(flat, api_json_span(&spans[i]));
        nodes[i] = api_json_span(&spans[i]);
    }
    for (size_t i = 0; i < n; i++) {
        /* Only an earlier span can be a parent (spans are sorted by start):
         * forged ids can therefore never make a cycle. */
        size_t p = n;
        if (spans[i].parent_span_id[0])
            for (size_t j = 0; j < i; j++)
                if (strcmp(spans[j].span_id, spans[i].parent_span_id) == 0) { p = j; break; }
        cJSON *into = p < n ? cJSON_GetObjectItemCaseSensitive(nodes[p], "children") : tree;
        cJSON_AddItemToArray(into, nodes[i]);
    }
    int64_t start = n ? spans[0].start_ns : 0, end = 0;
    for (size_t i = 0; i < n; i++)
        if (spans[i].end_ns > end) end = spans[i].end_ns;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "trace_id", id);
    cJSON_AddNumberToObject(o, "span_count", (double)n);
    cJSON_AddNumberToObject(o, "duration_ms", n ? (double)(end - start) / 1e6 : 0);
    cJSON_AddItemToObject(o, "spans", flat);
    cJSON_AddItemToObject(o, "tree", tree);
    free(nodes);
    store_free_spans(spans, n);
    api_reply(ctx, 200, o);
}
