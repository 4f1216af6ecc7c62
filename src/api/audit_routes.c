/* audit_routes.c — GET /v1/audit (the log, filtered and paged) and
 * GET /v1/audit/verify (is the chain intact?).
 *
 * A tenant admin reads its tenant's entries only; the server admin reads
 * every entry and may filter by tenant. Verification always covers the
 * whole chain (one chain for all tenants): the server admin gets every
 * finding, a tenant admin only "intact or not" and the first bad seq, since
 * the findings may describe other tenants' entries. */
#include "api/api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "obs/audit.h"
#include "obs/audit_chain.h"

#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX 1000

/* A time bound: unix seconds, or a UTC date "YYYY-MM-DD". */
static bool api_audit_time(api_ctx *ctx, const char *name, int64_t *out)
{
    const char *v = http_query_get(ctx->req, name);
    if (!v || !*v) return true;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (*end == '\0' && n >= 0 && n < 253402300800LL) {
        *out = n;
        return true;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(v, "%Y-%m-%d", &tm);
    if (rest && *rest == '\0') {
        *out = (int64_t)timegm(&tm);
        return true;
    }
    api_fail(ctx, 400, "invalid_request_error", "invalid_value", name,
             "query parameter \"%s\" must be unix seconds or a date YYYY-MM-DD (UTC)", name);
    return false;
}

/* An exact-match filter: printable, bounded. */
static bool api_audit_filter(api_ctx *ctx, const char *name, size_t max, const char **out)
{
    const char *v = http_query_get(ctx->req, name);
    if (!v) return true;
    size_t len = strlen(v);
    bool ok = len > 0 && len <= max;
    for (size_t i = 0; ok && i < len; i++)
        if ((unsigned char)v[i] < 0x20) ok = false;
    if (!ok) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", name,
                 "query parameter \"%s\" must be 1 to %zu printable bytes", name, max);
        return false;
    }
    *out = v;
    return true;
}

static void api_audit_row(const audit_rec *e, void *arg)
{
    cJSON *arr = arg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seq", (double)e->seq);
    cJSON_AddStringToObject(o, "object", "audit_entry");
    cJSON_AddNumberToObject(o, "ts", (double)e->ts);
    cJSON_AddStringToObject(o, "tenant_id", e->tenant_id);
    cJSON_AddStringToObject(o, "actor", e->actor);
    cJSON_AddStringToObject(o, "credential", e->credential);
    cJSON_AddStringToObject(o, "action", e->action);
    cJSON_AddStringToObject(o, "target", e->target);
    cJSON *d = cJSON_Parse(e->details);
    if (d) cJSON_AddItemToObject(o, "details", d);
    else cJSON_AddStringToObject(o, "details", e->details);   /* tampered: shown as it is */
    cJSON_AddStringToObject(o, "prev_hash", e->prev_hash);
    cJSON_AddStringToObject(o, "hash", e->hash);
    cJSON_AddItemToArray(arr, o);
}

void api_audit_list(api_ctx *ctx)
{
    audit_query q;
    memset(&q, 0, sizeof q);
    long long limit = AUDIT_PAGE_DEFAULT, after = 0;
    if (!api_query_int(ctx, "limit", 1, AUDIT_PAGE_MAX, &limit, NULL) ||
        !api_query_int(ctx, "after", 0, INT64_MAX, &after, NULL) ||
        !api_audit_time(ctx, "from", &q.from) || !api_audit_time(ctx, "to", &q.to) ||
        !api_audit_filter(ctx, "actor", 200, &q.actor) ||
        !api_audit_filter(ctx, "action", 64, &q.action))
        return;
    const char *tenant = http_query_get(ctx->req, "tenant");
    if (tenant) {
        if (ctx->scope.role != SCOPE_SERVER_ADMIN) {
            api_fail(ctx, 400, "invalid_request_error", "invalid_value", "tenant",
                     "query parameter \"tenant\" is for the server admin; a tenant admin always "
                     "reads its own tenant");
            return;
        }
        if (!api_audit_filter(ctx, "tenant", ID_MAX - 1, &q.tenant_id)) return;
    }
    q.limit = (size_t)limit;
    q.after = after;
    cJSON *arr = cJSON_CreateArray();
    bool has_more = false;
    store_status st = store_audit_list(ctx->env->store, &ctx->scope, &q, api_audit_row, arr,
                                       &has_more);
    if (st != STORE_OK) {
        cJSON_Delete(arr);
        api_fail_store(ctx, st, "audit log");
        return;
    }
    cJSON *list = api_json_list(arr, has_more);
    int n = cJSON_GetArraySize(arr);
    if (has_more && n > 0) {
        /* the cursor for the next page: pass it as `after` */
        const cJSON *last = cJSON_GetArrayItem(arr, n - 1);
        cJSON_AddNumberToObject(list, "next_after",
                                cJSON_GetObjectItemCaseSensitive(last, "seq")->valuedouble);
    }
    api_reply(ctx, 200, list);
}

/* What earlier verifications established, process-wide: the newest
 * checkpoint a verify found holding. A call verifies from it (the work of
 * the entries since), and the full scan — every entry from seq 1 — runs at
 * most once per AUDIT_FULL_SCAN_INTERVAL_S and one at a time. A full scan
 * that found the log tampered is kept: tampering does not heal, so later
 * calls get that verdict ("scan": "cached") until a full scan finds the
 * log intact. */
#define AUDIT_FULL_SCAN_INTERVAL_S 60

static struct {
    pthread_mutex_t mu;
    const store *st;
    bool have, full_running;
    audit_checkpoint verified;
    audit_verify_result *failed;  /* the last full scan's, if it found tampering */
    int64_t last_full;            /* monotonic seconds of the last full scan's start */
} api_verified = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t api_audit_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* Claim the full scan: false (and *wait set) when one ran too recently or runs now. */
static bool api_audit_claim_full(int64_t *wait)
{
    int64_t now = api_audit_mono_s();
    bool ok = false;
    pthread_mutex_lock(&api_verified.mu);
    if (api_verified.full_running) {
        *wait = 1;
    } else if (api_verified.last_full && now - api_verified.last_full < AUDIT_FULL_SCAN_INTERVAL_S) {
        *wait = AUDIT_FULL_SCAN_INTERVAL_S - (now - api_verified.last_full);
    } else {
        api_verified.full_running = true;
        api_verified.last_full = now;
        ok = true;
    }
    pthread_mutex_unlock(&api_verified.mu);
    return ok;
}

/* The verdict; the server admin gets the findings and the head. Frees res. */
static void api_audit_verify_reply(api_ctx *ctx, audit_verify_result *res, const char *scan,
                                   int64_t from_seq, const unsigned char *pk)
{
    int64_t first_bad = 0;
    for (size_t i = 0; i < res->n_problems; i++)
        if (first_bad == 0 || res->problems[i].seq < first_bad) first_bad = res->problems[i].seq;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "audit_verification");
    cJSON_AddBoolToObject(o, "intact", res->intact);
    if (first_bad) cJSON_AddNumberToObject(o, "first_bad_seq", (double)first_bad);
    else cJSON_AddNullToObject(o, "first_bad_seq");
    cJSON_AddStringToObject(o, "scan", scan);
    cJSON_AddNumberToObject(o, "from_seq", (double)from_seq);
    if (ctx->scope.role == SCOPE_SERVER_ADMIN) {
        cJSON_AddNumberToObject(o, "entries", (double)res->entries);
        cJSON_AddNumberToObject(o, "last_seq", (double)res->last_seq);
        cJSON_AddNumberToObject(o, "checkpoints", (double)res->checkpoints);
        cJSON_AddNumberToObject(o, "last_checkpoint_seq", (double)res->last_checkpoint_seq);
        cJSON_AddBoolToObject(o, "signatures_checked", !res->key_missing);
        audit_problems_json(o, res);
        if (res->intact && res->newest.seq)
            cJSON_AddItemToObject(o, "head", audit_head_json(&res->newest, pk));
        else
            cJSON_AddNullToObject(o, "head");
    }
    free(res);
    api_reply(ctx, 200, o);
}

void api_audit_verify(api_ctx *ctx)
{
    store *st = ctx->env->store;
    const char *fullq = http_query_get(ctx->req, "full");
    bool want_full = false;
    if (fullq) {
        if (strcmp(fullq, "true") == 0) want_full = true;
        else if (strcmp(fullq, "false") != 0) {
            api_fail(ctx, 400, "invalid_request_error", "invalid_value", "full",
                     "query parameter \"full\" must be true or false");
            return;
        }
    }
    if (want_full && ctx->scope.role != SCOPE_SERVER_ADMIN) {
        api_fail(ctx, 403, "permission_error", "forbidden", "full",
                 "a full scan of the audit log is for the server admin");
        return;
    }
    char dir[4096], err[512];
    store_data_dir(st, dir, sizeof dir);
    audit_key key;
    bool has_key = audit_key_load(dir, false, &key, err, sizeof err) == 0;

    audit_checkpoint from;
    pthread_mutex_lock(&api_verified.mu);
    if (api_verified.st != st) {            /* another store (tests): start over */
        api_verified.st = st;
        api_verified.have = false;
        free(api_verified.failed);
        api_verified.failed = NULL;
    }
    bool incremental = has_key && api_verified.have && !want_full;
    if (incremental) from = api_verified.verified;
    audit_verify_result *res = malloc(sizeof *res);
    bool cached = !incremental && !want_full && api_verified.failed && res;
    if (cached) *res = *api_verified.failed;
    pthread_mutex_unlock(&api_verified.mu);
    if (cached) {
        api_audit_verify_reply(ctx, res, "cached", 1, has_key ? key.pk : NULL);
        return;
    }
    int64_t wait = 0;
    if (!incremental && !api_audit_claim_full(&wait)) {
        free(res);
        /* wait is at most the scan interval; the clamp lets gcc -O2 see it fits */
        if (wait < 1) wait = 1;
        if (wait > AUDIT_FULL_SCAN_INTERVAL_S) wait = AUDIT_FULL_SCAN_INTERVAL_S;
        snprintf(ctx->retry_after, sizeof ctx->retry_after, "%d", (int)wait);
        api_fail(ctx, 429, "rate_limit_error", "rate_limited", "full",
                 "a full scan of the audit log runs at most once every %d s; retry after %lld s",
                 AUDIT_FULL_SCAN_INTERVAL_S, (long long)wait);
        return;
    }

    store_status r = STORE_ERROR;
    if (res) {
        const obs_cfg *oc = &ctx->env->cfg.observability;
        audit_verify_opts o = {.pk = has_key ? key.pk : NULL, .every = oc->audit_checkpoint_every,
                               .interval_s = oc->audit_checkpoint_interval_s,
                               .from = incremental ? &from : NULL};
        r = audit_verify_ex(st, &o, res);
    }
    pthread_mutex_lock(&api_verified.mu);
    if (!incremental) api_verified.full_running = false;
    /* Remember the newest checkpoint that held, so the next call starts there. */
    if (r == STORE_OK && res->intact && has_key && res->newest.seq &&
        (!api_verified.have || res->newest.seq >= api_verified.verified.seq)) {
        api_verified.verified = res->newest;
        api_verified.have = true;
    }
    /* An intact log with no checkpoint yet is shorter than the count bound:
     * reading it was cheap, and must not hold back the first real scan. */
    if (r == STORE_OK && !incremental && res->intact && has_key && !res->newest.seq)
        api_verified.last_full = 0;
    if (r == STORE_OK && !incremental) {
        free(api_verified.failed);
        api_verified.failed = NULL;
        if (!res->intact && (api_verified.failed = malloc(sizeof *res)) != NULL)
            *api_verified.failed = *res;
    }
    pthread_mutex_unlock(&api_verified.mu);
    if (!res) {
        api_fail(ctx, 500, "api_error", "internal_error", NULL, "out of memory");
        return;
    }
    if (r != STORE_OK) {
        free(res);
        api_fail_store(ctx, r, "audit log");
        return;
    }
    api_audit_verify_reply(ctx, res, incremental ? "incremental" : "full",
                           incremental ? from.seq : 1, has_key ? key.pk : NULL);
}

/* ---- authentication failures ---- */

typedef struct api_auth_audit {
    char source[64];
    char credential[16];        /* the KIND of credential presented, never the secret */
    const char *code;
    uint64_t suppressed;
} api_auth_audit;

/* The peer's address. http.h has no accessor for it yet; an http_conn
 * begins with its uv_tcp_t (http_internal.h), which is what this reads. */
static void api_audit_peer(http_request *req, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(out, outlen, "unknown");
    if (!req->conn || uv_tcp_getpeername((const uv_tcp_t *)(const void *)req->conn,
                                         (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) uv_ip4_name((const struct sockaddr_in *)&ss, out, outlen);
    else if (ss.ss_family == AF_INET6) uv_ip6_name((const struct sockaddr_in6 *)&ss, out, outlen);
}

/* What kind of credential was presented: enough to tell a probing of admin
 * keys from expired JWTs, without keeping a byte of the secret. */
static const char *api_audit_credential_kind(const char *authorization)
{
    if (!authorization || !*authorization) return "none";
    if (strncasecmp(authorization, "Bearer ", 7) != 0) return "malformed";
    const char *t = authorization + 7;
    while (*t == ' ') t++;
    if (strncmp(t, "bk_adm_", 7) == 0) return "admin_key";
    if (strncmp(t, "bk_usr_", 7) == 0) return "user_key";
    const char *dot = strchr(t, '.');
    if (dot && strchr(dot + 1, '.')) return "jwt";
    return "other";
}

static void api_audit_auth_work(http_request *req)
{
    api_ctx *ctx = req->user;
    api_auth_audit *a = ctx->handler_state;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "reason", a->code);
    cJSON_AddStringToObject(d, "source", a->source);
    char method[32];
    obs_audit_clip(req->method, sizeof method - 1, method, sizeof method);
    cJSON_AddStringToObject(d, "method", method);
    /* The path is the caller's text, before anyone is authenticated: at
     * most OBS_AUDIT_FIELD_MAX bytes of it are kept, and its length. */
    char path[OBS_AUDIT_FIELD_MAX + 1];
    obs_audit_clip(req->path, OBS_AUDIT_FIELD_MAX, path, sizeof path);
    cJSON_AddStringToObject(d, "path", path);
    if (strlen(req->path) > OBS_AUDIT_FIELD_MAX)
        cJSON_AddNumberToObject(d, "path_bytes", (double)strlen(req->path));
    cJSON_AddStringToObject(d, "request_id", req->request_id);
    cJSON_AddNumberToObject(d, "suppressed_before", (double)a->suppressed);
    obs_audit_raw(ctx->env->store, "", "anonymous", a->credential, "auth.failure", "", d);
}

static void api_audit_auth_done(http_request *req)
{
    api_send(req->user);
}

void api_audit_auth_failure(api_ctx *ctx, const char *code)
{
    api_auth_audit *a = arena_alloc(&ctx->req->arena, sizeof *a);
    memset(a, 0, sizeof *a);
    api_audit_peer(ctx->req, a->source, sizeof a->source);
    if (!obs_audit_auth_admit(ctx->env->store, a->source, &a->suppressed)) {
        api_send(ctx);
        return;
    }
    snprintf(a->credential, sizeof a->credential, "%s",
             api_audit_credential_kind(http_header_get(ctx->req, "authorization")));
    a->code = code;
    ctx->handler_state = a;
    /* Durable before the 401 goes out, like every audited act. */
    http_request_defer(ctx->req, api_audit_auth_work, api_audit_auth_done);
}
