/* traces.c — GET /v1/traces/{trace_id}: the spans of one trace as a tree.
 *
 * A trace is stored as rows of binary spans (src/obs/span_codec.h); this
 * read is where they become JSON, and only here.
 *
 * Scoped by the store (store_trace_get): a tenant admin reads traces of its
 * tenant, a user only traces all of whose spans are its own. Everything
 * else — another tenant's or user's trace, a malformed id, a trace that
 * never existed — is the same 404, so the answer says nothing about traces
 * outside the caller's scope. Spans are in the store within
 * OBS_TRACE_FLUSH_MS of their end, so a trace read right after a request
 * may still be missing that request's last spans. */
#include "api/api.h"
#include "obs/span_codec.h"
#include "util/log.h"
#include "util/strmap.h"
#include "util/xalloc.h"

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

static cJSON *api_json_span(const obs_span_view *v, buf *scratch)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "span_id", v->span_id);
    if (v->parent_span_id[0]) cJSON_AddStringToObject(o, "parent_span_id", v->parent_span_id);
    else cJSON_AddNullToObject(o, "parent_span_id");
    cJSON_AddStringToObject(o, "name", v->name);
    cJSON_AddStringToObject(o, "kind", api_span_kind(v->kind));
    /* Nanoseconds since the epoch do not fit a double exactly: strings,
     * as OTLP does; duration in ms as a number for people. */
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)v->start_ns);
    cJSON_AddStringToObject(o, "start_unix_nano", num);
    snprintf(num, sizeof num, "%lld", (long long)v->end_ns);
    cJSON_AddStringToObject(o, "end_unix_nano", num);
    cJSON_AddNumberToObject(o, "duration_ms", (double)(v->end_ns - v->start_ns) / 1e6);
    cJSON *st = cJSON_AddObjectToObject(o, "status");
    cJSON_AddStringToObject(st, "code", api_span_status(v->status));
    if (v->status_message[0]) cJSON_AddStringToObject(st, "message", v->status_message);
    /* Through the one JSON string policy (util/json_escape.h): broken
     * UTF-8 in a value reads as U+FFFD, as it always has. */
    scratch->len = 0;
    obs_span_view_attrs_json(scratch, v);
    cJSON *attrs = cJSON_ParseWithLength(scratch->data, scratch->len);
    cJSON_AddItemToObject(o, "attributes", attrs ? attrs : cJSON_CreateObject());
    cJSON_AddItemToObject(o, "children", cJSON_CreateArray());
    return o;
}

/* One decoded span, with what ordering and the tree need. */
typedef struct api_trace_span {
    int64_t start_ns, end_ns;
    size_t order;                  /* rows by start then arrival, spans in row order */
    char span_id[17], parent_span_id[17];
    cJSON *flat, *node;
} api_trace_span;

static int api_trace_span_order(const void *pa, const void *pb)
{
    const api_trace_span *a = pa, *b = pb;
    if (a->start_ns != b->start_ns) return a->start_ns < b->start_ns ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

/* Decodes every row's spans into out (at most STORE_TRACE_SPANS_MAX). A
 * corrupt blob ends that row (what came before it is kept) and is logged. */
static size_t api_trace_decode(const trace_rec *rows, size_t nrows, api_trace_span *out)
{
    obs_span_view *v = xmalloc(sizeof *v);
    buf scratch;
    buf_init(&scratch);
    size_t n = 0;
    for (size_t r = 0; r < nrows && n < STORE_TRACE_SPANS_MAX; r++) {
        obs_blob_reader rd;
        int rc = obs_blob_open(&rd, rows[r].blob, rows[r].blob_len);
        while (rc == 0 && n < STORE_TRACE_SPANS_MAX) {
            int got = obs_blob_next(&rd, v);
            if (got <= 0) {
                rc = got;
                break;
            }
            api_trace_span *t = &out[n];
            t->start_ns = v->start_ns;
            t->end_ns = v->end_ns;
            t->order = n;
            memcpy(t->span_id, v->span_id, sizeof t->span_id);
            memcpy(t->parent_span_id, v->parent_span_id, sizeof t->parent_span_id);
            t->flat = api_json_span(v, &scratch);
            t->node = api_json_span(v, &scratch);
            n++;
        }
        if (rc < 0) log_warn("traces: a stored row of trace %s is corrupt; its spans are cut short",
                             rows[r].trace_id);
    }
    buf_free(&scratch);
    free(v);
    return n;
}

void api_traces_get(api_ctx *ctx)
{
    const char *id = ctx->req->params[0];
    if (!obs_trace_id_valid(id)) {
        api_fail(ctx, 404, "not_found_error", "not_found", NULL, "trace not found");
        return;
    }
    trace_rec *rows = NULL;
    size_t nrows = 0;
    store_status st = store_trace_get(ctx->env->store, &ctx->scope, id, &rows, &nrows);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "trace");
        return;
    }
    size_t want = 0;
    for (size_t r = 0; r < nrows; r++) want += rows[r].span_count;
    if (want > STORE_TRACE_SPANS_MAX) want = STORE_TRACE_SPANS_MAX;
    api_trace_span *spans = xcalloc(want ? want : 1, sizeof *spans);
    size_t n = api_trace_decode(rows, nrows, spans);
    store_free_traces(rows, nrows);
    qsort(spans, n, sizeof *spans, api_trace_span_order);

    /* `spans`: flat, by start time; `tree`: the roots, each span with its
     * `children` (a span whose parent is not in the answer — the client's
     * own span, or one outside the caller's view — is a root). */
    cJSON *flat = cJSON_CreateArray();
    cJSON *tree = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(flat, spans[i].flat);
    /* Only an earlier span can be a parent (spans are sorted by start):
     * forged ids can therefore never make a cycle. The earliest span of an
     * id is found by a map (span ids are the client's to choose through
     * traceparent: a search through every earlier span was quadratic in a
     * trace of up to 10 000). */
    strmap *earlier = xnonnull(strmap_new(NULL));
    for (size_t i = 0; i < n; i++) {
        size_t p = n;
        uintptr_t at = spans[i].parent_span_id[0] ? (uintptr_t)strmap_get(earlier, spans[i].parent_span_id) : 0;
        if (at) p = at - 1;
        cJSON *into = p < n ? cJSON_GetObjectItemCaseSensitive(spans[p].node, "children") : tree;
        cJSON_AddItemToArray(into, spans[i].node);
        if (!strmap_get(earlier, spans[i].span_id))
            (void)strmap_put(earlier, spans[i].span_id, (void *)(uintptr_t)(i + 1));   /* OOM: a root */
    }
    strmap_free(earlier);
    int64_t start = n ? spans[0].start_ns : 0, end = 0;
    for (size_t i = 0; i < n; i++)
        if (spans[i].end_ns > end) end = spans[i].end_ns;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "trace_id", id);
    cJSON_AddNumberToObject(o, "span_count", (double)n);
    cJSON_AddNumberToObject(o, "duration_ms", n ? (double)(end - start) / 1e6 : 0);
    cJSON_AddItemToObject(o, "spans", flat);
    cJSON_AddItemToObject(o, "tree", tree);
    free(spans);
    api_reply(ctx, 200, o);
}
