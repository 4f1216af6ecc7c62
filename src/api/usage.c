/* usage.c — GET /v1/usage: tokens and cost, grouped by day, model or user,
 * as JSON or (format=csv) as a CSV report. A tenant admin sees its tenant
 * (optionally one user); a user sees only its own usage, whatever `user=`
 * says. Usage rows reach the store within STORE_USAGE_FLUSH_MS of the
 * request that caused them. The CSV writer is shared with `brigade usage`
 * so the command line and the API report the same bytes. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"

int64_t api_usage_parse_time(const char *v)
{
    if (!v || !*v) return -1;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (*end == '\0' && n >= 0 && n < 253402300800LL) return n;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(v, "%Y-%m-%d", &tm);
    if (rest && *rest == '\0') return (int64_t)timegm(&tm);
    return -1;
}

/* A time bound: unix seconds, or a UTC date "YYYY-MM-DD". */
static bool api_usage_time(api_ctx *ctx, const char *name, int64_t *out)
{
    const char *v = http_query_get(ctx->req, name);
    if (!v || !*v) return true;
    int64_t t = api_usage_parse_time(v);
    if (t >= 0) {
        *out = t;
        return true;
    }
    api_fail(ctx, 400, "invalid_request_error", "invalid_value", name,
             "query parameter \"%s\" must be unix seconds or a date YYYY-MM-DD (UTC)", name);
    return false;
}

/* One CSV field, RFC 4180: quoted when it holds a comma, quote, CR or LF
 * (or starts with a character a spreadsheet would run as a formula, which
 * is then neutralised with a leading quote — model names come from config,
 * user ids from admins, and a report gets opened in spreadsheets). */
static void api_csv_field(buf *b, const char *s)
{
    bool formula = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@';
    bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;
    if (!quote) {
        buf_append(b, s, strlen(s));
        return;
    }
    buf_append(b, "\"", 1);
    if (formula) buf_append(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"') buf_append(b, "\"\"", 2);
        else buf_append(b, p, 1);
    }
    buf_append(b, "\"", 1);
}

char *api_usage_csv(const usage_row *rows, size_t n, const char *tenant_id, bool header)
{
    buf b;
    buf_init(&b);
    if (header) {
        const char *h = "group,requests,input_tokens,output_tokens,cost_usd\r\n";
        if (tenant_id) buf_append(&b, "tenant_id,", 10);
        buf_append(&b, h, strlen(h));
    }
    for (size_t i = 0; i < n; i++) {
        char nums[160];
        if (tenant_id) {
            api_csv_field(&b, tenant_id);
            buf_append(&b, ",", 1);
        }
        api_csv_field(&b, rows[i].group);
        /* cost with all nine decimals: exact nano-USD, no float rounding */
        int64_t c = rows[i].cost_nusd;
        int len = snprintf(nums, sizeof nums, ",%lld,%lld,%lld,%s%lld.%09lld\r\n",
                           (long long)rows[i].requests, (long long)rows[i].input_tokens,
                           (long long)rows[i].output_tokens, c < 0 ? "-" : "",
                           (long long)(c < 0 ? -c : c) / 1000000000LL,
                           (long long)(c < 0 ? -c : c) % 1000000000LL);
        buf_append(&b, nums, (size_t)len);
    }
    return buf_detach(&b);
}

cJSON *api_usage_json_row(const usage_row *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "group", r->group);
    cJSON_AddNumberToObject(o, "requests", (double)r->requests);
    cJSON_AddNumberToObject(o, "input_tokens", (double)r->input_tokens);
    cJSON_AddNumberToObject(o, "output_tokens", (double)r->output_tokens);
    cJSON_AddNumberToObject(o, "cost_usd", api_usd(r->cost_nusd));
    return o;
}

void api_usage_get(api_ctx *ctx)
{
    usage_query q;
    memset(&q, 0, sizeof q);
    q.group_by = USAGE_GROUP_DAY;
    if (!api_usage_time(ctx, "from", &q.from) || !api_usage_time(ctx, "to", &q.to)) return;
    if (q.from && q.to && q.from >= q.to) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "to",
                 "\"to\" must be after \"from\" (the range is [from, to))");
        return;
    }
    const char *g = http_query_get(ctx->req, "group_by");
    if (g && strcmp(g, "day") == 0) q.group_by = USAGE_GROUP_DAY;
    else if (g && strcmp(g, "model") == 0) q.group_by = USAGE_GROUP_MODEL;
    else if (g && strcmp(g, "user") == 0 && ctx->scope.role == SCOPE_TENANT_ADMIN)
        q.group_by = USAGE_GROUP_USER;
    else if (g) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "group_by",
                 ctx->scope.role == SCOPE_TENANT_ADMIN ? "group_by must be day, model or user"
                                                       : "group_by must be day or model");
        return;
    }
    const char *format = http_query_get(ctx->req, "format");
    bool csv = false;
    if (format && strcmp(format, "csv") == 0) csv = true;
    else if (format && strcmp(format, "json") != 0) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "format",
                 "format must be json or csv");
        return;
    }
    const char *user = http_query_get(ctx->req, "user");
    if (user && ctx->scope.role == SCOPE_TENANT_ADMIN) {
        if (strlen(user) >= ID_MAX) {
            api_fail(ctx, 400, "invalid_request_error", "invalid_value", "user",
                     "query parameter \"user\" must be a user id");
            return;
        }
        q.user_id = user;
    }
    usage_row *rows = NULL;
    size_t n = 0;
    store_status st = store_usage_query(ctx->env->store, &ctx->scope, &q, &rows, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "usage");
        return;
    }
    if (csv) {
        char *text = api_usage_csv(rows, n, NULL, true);
        free(rows);
        api_reply_text(ctx, 200, "text/csv; charset=utf-8; header=present", text);
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, api_usage_json_row(&rows[i]));
    free(rows);
    cJSON *out = api_json_list(arr, false);
    /* Spend so far and what is left of the budgets, live (the rows above
     * are the ledger, which lags by up to the usage batch interval). */
    cJSON *budget = api_json_budget(ctx);
    if (budget) cJSON_AddItemToObject(out, "budget", budget);
    api_reply(ctx, 200, out);
}
