/* guard_decisions.c — GET /v1/guard/decisions (the guard's recorded
 * decisions, filtered and paged, newest first) and GET /v1/guard/summary
 * (their counts by detector, action, channel and day).
 *
 * Who sees what: a user its own decisions only (asking for another user's
 * is a 403, never an empty page that would look like an answer); a tenant
 * admin its tenant's, optionally one user's; the server admin any
 * tenant's, `tenant=` to choose one. The rows hold no flagged text
 * (guard/guard_record.h), so nothing here filters content. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_PAGE_DEFAULT 100
#define GUARD_PAGE_MAX 1000

static const char *const guard_actions[] = {"flag", "spotlight", "drop", "block", "refuse",
                                            "approval", "withhold", NULL};
static const char *const guard_channels[] = {"user", "tool", "tool_description", "tool_call", "answer",
                                             NULL};

/* A time bound: unix seconds or a UTC date. */
static bool guard_query_time(api_ctx *ctx, const char *name, int64_t *out)
{
    const char *v = http_query_get(ctx->req, name);
    if (!v || !*v) return true;
    int64_t t = api_usage_parse_time(v);
    if (t < 0) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", name,
                 "query parameter \"%s\" must be unix seconds or a date YYYY-MM-DD (UTC)", name);
        return false;
    }
    *out = t;
    return true;
}

/* An id: 1..ID_MAX-1 bytes of [A-Za-z0-9_-] (every id brigade makes). */
static bool guard_query_id(api_ctx *ctx, const char *name, const char **out)
{
    const char *v = http_query_get(ctx->req, name);
    if (!v) return true;
    size_t len = strlen(v);
    bool ok = len > 0 && len < ID_MAX;
    for (size_t i = 0; ok && i < len; i++) {
        char c = v[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-';
    }
    if (!ok) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", name,
                 "query parameter \"%s\" must be an id (1 to %d letters, digits, _ or -)", name,
                 ID_MAX - 1);
        return false;
    }
    *out = v;
    return true;
}

/* One word of a fixed set. */
static bool guard_query_word(api_ctx *ctx, const char *name, const char *const *words,
                             const char *want, const char **out)
{
    const char *v = http_query_get(ctx->req, name);
    if (!v) return true;
    for (size_t i = 0; words[i]; i++)
        if (strcmp(v, words[i]) == 0) {
            *out = words[i];
            return true;
        }
    api_fail(ctx, 400, "invalid_request_error", "invalid_value", name,
             "query parameter \"%s\" must be one of %s", name, want);
    return false;
}

/* The filters every route shares: the scope's rules on tenant= and user=,
 * and the time range. */
static bool guard_query_scope(api_ctx *ctx, guard_decision_query *q)
{
    if (!guard_query_time(ctx, "from", &q->from) || !guard_query_time(ctx, "to", &q->to) ||
        !guard_query_id(ctx, "user", &q->user_id))
        return false;
    if (q->from && q->to && q->to <= q->from) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "to",
                 "query parameter \"to\" must be after \"from\"");
        return false;
    }
    if (http_query_get(ctx->req, "tenant")) {
        if (ctx->scope.role != SCOPE_SERVER_ADMIN) {
            api_fail(ctx, 400, "invalid_request_error", "invalid_value", "tenant",
                     "query parameter \"tenant\" is for the server admin; others always read "
                     "their own tenant");
            return false;
        }
        if (!guard_query_id(ctx, "tenant", &q->tenant_id)) return false;
    }
    if (ctx->scope.role == SCOPE_USER) {
        if (q->user_id && strcmp(q->user_id, ctx->scope.user_id) != 0) {
            api_fail(ctx, 403, "permission_error", "forbidden", "user",
                     "a user sees their own guard decisions only");
            return false;
        }
        q->user_id = ctx->scope.user_id;
    }
    return true;
}

static cJSON *guard_json_row(const guard_decision_rec *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)r->id);
    cJSON_AddStringToObject(o, "object", "guard.decision");
    cJSON_AddNumberToObject(o, "created_at", (double)r->created_at);
    cJSON_AddStringToObject(o, "tenant_id", r->tenant_id);
    if (r->user_id[0]) cJSON_AddStringToObject(o, "user_id", r->user_id);
    else cJSON_AddNullToObject(o, "user_id");
    if (r->session_id[0]) cJSON_AddStringToObject(o, "session_id", r->session_id);
    else cJSON_AddNullToObject(o, "session_id");
    if (r->run_id[0]) cJSON_AddStringToObject(o, "run_id", r->run_id);
    else cJSON_AddNullToObject(o, "run_id");
    cJSON_AddStringToObject(o, "channel", r->channel);
    if (r->tool[0]) cJSON_AddStringToObject(o, "tool", r->tool);
    else cJSON_AddNullToObject(o, "tool");
    cJSON_AddStringToObject(o, "detector", r->detector);
    if (r->score >= 0) cJSON_AddNumberToObject(o, "score", r->score);
    else cJSON_AddNullToObject(o, "score");
    cJSON_AddStringToObject(o, "action", r->action);
    cJSON *labels = cJSON_Parse(r->labels);
    cJSON_AddItemToObject(o, "labels", cJSON_IsArray(labels) ? labels : cJSON_CreateArray());
    if (labels && !cJSON_IsArray(labels)) cJSON_Delete(labels);
    return o;
}

void api_guard_decisions_list(api_ctx *ctx)
{
    guard_decision_query q;
    memset(&q, 0, sizeof q);
    long long limit = GUARD_PAGE_DEFAULT, cursor = 0;
    if (!api_query_int(ctx, "limit", 1, GUARD_PAGE_MAX, &limit, NULL) ||
        !api_query_int(ctx, "cursor", 1, INT64_MAX, &cursor, NULL) ||
        !guard_query_scope(ctx, &q) || !guard_query_id(ctx, "run", &q.run_id) ||
        !guard_query_word(ctx, "action", guard_actions,
                          "flag, spotlight, drop, block, refuse, approval or withhold", &q.action) ||
        !guard_query_word(ctx, "channel", guard_channels, "user, tool, tool_description, tool_call or answer",
                          &q.channel))
        return;
    q.limit = (size_t)limit;
    q.before = cursor;
    guard_decision_rec *rows = NULL;
    size_t n = 0;
    bool has_more = false;
    store_status st = store_guard_decisions_list(ctx->env->store, &ctx->scope, &q, &rows, &n,
                                                 &has_more);
    if (st != STORE_OK) {
        free(rows);
        api_fail_store(ctx, st, "guard decisions");
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, guard_json_row(&rows[i]));
    cJSON *list = api_json_list(arr, has_more);
    /* the cursor of the next page: pass it as `cursor` */
    if (has_more && n > 0) {
        char next[24];
        snprintf(next, sizeof next, "%lld", (long long)rows[n - 1].id);
        cJSON_AddStringToObject(list, "next_cursor", next);
    } else {
        cJSON_AddNullToObject(list, "next_cursor");
    }
    free(rows);
    api_reply(ctx, 200, list);
}

/* counts[key] += n, in an object of counts. */
static void guard_count_add(cJSON *counts, const char *key, int64_t n)
{
    cJSON *c = cJSON_GetObjectItemCaseSensitive(counts, key);
    if (c) cJSON_SetNumberValue(c, c->valuedouble + (double)n);
    else cJSON_AddNumberToObject(counts, key, (double)n);
}

void api_guard_summary(api_ctx *ctx)
{
    guard_decision_query q;
    memset(&q, 0, sizeof q);
    if (!guard_query_scope(ctx, &q)) return;
    guard_decision_count *rows = NULL;
    size_t n = 0;
    bool truncated = false;
    store_status st = store_guard_decisions_summary(ctx->env->store, &ctx->scope, &q, &rows, &n,
                                                    &truncated);
    if (st != STORE_OK) {
        free(rows);
        api_fail_store(ctx, st, "guard decisions");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "guard.summary");
    int64_t total = 0;
    cJSON *by_detector = cJSON_AddObjectToObject(o, "by_detector");
    cJSON *by_action = cJSON_AddObjectToObject(o, "by_action");
    cJSON *by_channel = cJSON_AddObjectToObject(o, "by_channel");
    cJSON *by_day = cJSON_AddObjectToObject(o, "by_day");
    /* detector × action: what the console's bars show */
    cJSON *by_da = cJSON_AddObjectToObject(o, "by_detector_action");
    for (size_t i = 0; i < n; i++) {
        const guard_decision_count *r = &rows[i];
        total += r->count;
        guard_count_add(by_detector, r->detector, r->count);
        guard_count_add(by_action, r->action, r->count);
        guard_count_add(by_channel, r->channel, r->count);
        guard_count_add(by_day, r->day, r->count);
        cJSON *d = cJSON_GetObjectItemCaseSensitive(by_da, r->detector);
        if (!d) d = cJSON_AddObjectToObject(by_da, r->detector);
        guard_count_add(d, r->action, r->count);
    }
    cJSON_AddNumberToObject(o, "total", (double)total);
    cJSON_AddBoolToObject(o, "truncated", truncated);
    free(rows);
    api_reply(ctx, 200, o);
}
