/* config_tiers.c — the `tiers:` and `governance:` sections: a tier's rate
 * limits, budgets, fair-queue weight and storage quotas, and governance's
 * queue bounds and the tenant limits, which share the tier's limit keys. */
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_load.h"

enum { TI_NAME, TI_RPM, TI_TPM, TI_RUNS, TI_DAILY, TI_MONTHLY, TI_WEIGHT,
       TI_Q_MEM_BYTES, TI_Q_MEM_ENTRIES, TI_Q_SESSIONS, TI_Q_MESSAGES, TI__N };

/* The limit keys a tier and governance.tenant_limits share; `s` holds the
 * collected slots, `path` the mapping's key path. */
static int ld_limit_fields(ld *l, slot *s, const char *path, tier_cfg *t)
{
    char kp[160];
#define TI_INT(idx, field, max) \
    if (s[idx].present) { ld_path(kp, sizeof(kp), path, s[idx].key); \
        if (ld_int(l, &s[idx], kp, 0, (max), &t->field) < 0) return -1; }
#define TI_USD(idx, field) \
    if (s[idx].present) { ld_path(kp, sizeof(kp), path, s[idx].key); \
        if (ld_double(l, &s[idx], kp, 0, 1e9, &t->field) < 0) return -1; }
    TI_INT(TI_RPM, rpm, 1000000000LL)
    TI_INT(TI_TPM, tpm, 1000000000000LL)
    TI_INT(TI_RUNS, max_concurrent_runs, 1000000)
    TI_USD(TI_DAILY, daily_budget_usd)
    TI_USD(TI_MONTHLY, monthly_budget_usd)
#undef TI_INT
#undef TI_USD
    return 0;
}

#define TI_SLOTS                                                                          \
    [TI_NAME] = {.key = "name"},   [TI_RPM] = {.key = "rpm"}, [TI_TPM] = {.key = "tpm"},  \
    [TI_RUNS] = {.key = "max_concurrent_runs"}, [TI_DAILY] = {.key = "daily_budget_usd"},  \
    [TI_MONTHLY] = {.key = "monthly_budget_usd"}, [TI_WEIGHT] = {.key = "weight"},        \
    [TI_Q_MEM_BYTES] = {.key = "memory_bytes"}, [TI_Q_MEM_ENTRIES] = {.key = "memory_entries"}, \
    [TI_Q_SESSIONS] = {.key = "sessions"}, [TI_Q_MESSAGES] = {.key = "messages_per_session"}

static int ld_tier(ld *l, struct fy_node *n, int line, const char *path, tier_cfg *t, entry_lines *el)
{
    slot s[TI__N] = {TI_SLOTS};
    if (config_node_is_null(n))
        return ld_fail(l, line, path, "expected a mapping (name, rpm, …), got nothing");
    if (ld_collect(l, n, line, path, s, TI__N) < 0)
        return -1;
    char kp[160];
    if (!s[TI_NAME].present)
        return ld_fail(l, line, path, "missing required key \"name\"");
    ld_path(kp, sizeof(kp), path, "name");
    if (ld_name(l, &s[TI_NAME], kp, &t->name) < 0)
        return -1;
    el->name = s[TI_NAME].line;
    t->weight = 1;
    if (s[TI_WEIGHT].present) {
        ld_path(kp, sizeof(kp), path, "weight");
        if (ld_u32(l, &s[TI_WEIGHT], kp, 1, 1000, &t->weight) < 0)
            return -1;
    }
    /* Storage quotas: left out or null = the default, 0 = unlimited. */
    config_tier_quota_defaults(t);
    struct { int idx; int64_t max; int64_t *field; } quotas[] = {
        {TI_Q_MEM_BYTES, 1LL << 40, &t->quota_memory_bytes},
        {TI_Q_MEM_ENTRIES, 1000000000LL, &t->quota_memory_entries},
        {TI_Q_SESSIONS, 1000000000LL, &t->quota_sessions},
        {TI_Q_MESSAGES, 1000000000LL, &t->quota_messages_per_session},
    };
    for (size_t i = 0; i < sizeof quotas / sizeof quotas[0]; i++) {
        slot *q = &s[quotas[i].idx];
        if (!q->present || config_node_is_null(q->val)) continue;
        ld_path(kp, sizeof(kp), path, q->key);
        if (ld_int(l, q, kp, 0, quotas[i].max, quotas[i].field) < 0)
            return -1;
    }
    return ld_limit_fields(l, s, path, t);
}


enum { GV_ENABLED, GV_QUEUE_USER, GV_QUEUE_GLOBAL, GV_TENANT, GV_BACKEND, GV_REDIS, GV__N };
enum { GR_URL, GR_PREFIX, GR_UNREACHABLE, GR_INSTANCES, GR_TTL, GR_TIMEOUT, GR__N };

/* redis://[host][:port][/db] — no password or TLS (hiredis 0.14 has no
 * TLS; keep Redis on a private network or loopback). */
static int ld_redis_url(ld *l, int line, const char *url, governance_redis_cfg *r)
{
    const char *p = "governance.redis.url";
    if (strncmp(url, "redis://", 8) != 0)
        return ld_fail(l, line, p, "must start with redis:// (got \"%.64s\")", url);
    const char *h = url + 8, *e = h + strcspn(h, ":/");
    if (memchr(h, '@', strlen(h)))
        return ld_fail(l, line, p, "credentials in the URL are not supported");
    free(r->host);
    r->host = e > h ? strndup(h, (size_t)(e - h)) : strdup("127.0.0.1");
    if (!r->host)
        return ld_fail(l, line, p, "out of memory");
    if (*e == ':') {
        char *end;
        long port = strtol(e + 1, &end, 10);
        if (end == e + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
            return ld_fail(l, line, p, "bad port in \"%.64s\"", url);
        r->port = (int)port;
        e = end;
    }
    if (*e == '/' && e[1]) {
        char *end;
        long db = strtol(e + 1, &end, 10);
        if (end == e + 1 || *end || db < 0 || db > 15)
            return ld_fail(l, line, p, "the database must be a number 0..15 in \"%.64s\"", url);
        r->db = (int)db;
    }
    return 0;
}

static int ld_governance_redis(ld *l, const slot *rs, governance_redis_cfg *r)
{
    slot s[GR__N] = {
        [GR_URL] = {.key = "url"},         [GR_PREFIX] = {.key = "key_prefix"},
        [GR_UNREACHABLE] = {.key = "on_unreachable"}, [GR_INSTANCES] = {.key = "instances"},
        [GR_TTL] = {.key = "reservation_ttl_s"}, [GR_TIMEOUT] = {.key = "timeout_ms"},
    };
    if (ld_collect(l, rs->val, rs->line, "governance.redis", s, GR__N) < 0)
        return -1;
    if (!s[GR_URL].present)
        return ld_fail(l, rs->line, "governance.redis.url", "required (redis://host:port/db)");
    char *url = NULL;
    if (ld_nonempty(l, &s[GR_URL], "governance.redis.url", &url, NULL) < 0)
        return -1;
    int rc = ld_redis_url(l, s[GR_URL].line, url, r);
    free(url);
    if (rc < 0)
        return -1;
    if (s[GR_PREFIX].present) {
        if (ld_nonempty(l, &s[GR_PREFIX], "governance.redis.key_prefix", &r->key_prefix, NULL) < 0)
            return -1;
        if (strlen(r->key_prefix) > 64 || strpbrk(r->key_prefix, " {}\r\n\t"))
            return ld_fail(l, s[GR_PREFIX].line, "governance.redis.key_prefix",
                           "at most 64 characters, no spaces or braces");
    }
    if (s[GR_UNREACHABLE].present) {
        const char *t;
        size_t n;
        if (ld_text(l, &s[GR_UNREACHABLE], "governance.redis.on_unreachable", &t, &n) < 0)
            return -1;
        if (n == 11 && !memcmp(t, "fail_closed", 11)) r->fail_open = false;
        else if (n == 9 && !memcmp(t, "fail_open", 9)) r->fail_open = true;
        else
            return ld_fail(l, s[GR_UNREACHABLE].line, "governance.redis.on_unreachable",
                           "must be fail_closed or fail_open");
    }
    if (s[GR_INSTANCES].present &&
        ld_u32(l, &s[GR_INSTANCES], "governance.redis.instances", 1, 1000, &r->instances) < 0)
        return -1;
    if (s[GR_TTL].present &&
        ld_u32(l, &s[GR_TTL], "governance.redis.reservation_ttl_s", 5, 86400, &r->reservation_ttl_s) < 0)
        return -1;
    if (s[GR_TIMEOUT].present &&
        ld_u32(l, &s[GR_TIMEOUT], "governance.redis.timeout_ms", 10, 60000, &r->timeout_ms) < 0)
        return -1;
    return 0;
}

/* `governance:` — on/off, the fair queue's bounds, and the limits every
 * tenant has unless its admin changed them (PATCH /v1/tenants/{id}). */
int ld_governance(ld *l, struct fy_node *n, int line)
{
    governance_cfg *g = &l->cfg->governance;
    slot s[GV__N] = {
        [GV_ENABLED] = {.key = "enabled"},         [GV_QUEUE_USER] = {.key = "queue_per_user"},
        [GV_QUEUE_GLOBAL] = {.key = "queue_global"}, [GV_TENANT] = {.key = "tenant_limits"},
        [GV_BACKEND] = {.key = "backend"},         [GV_REDIS] = {.key = "redis"},
    };
    if (config_node_is_null(n))
        return 0;
    if (ld_collect(l, n, line, "governance", s, GV__N) < 0)
        return -1;
    if (s[GV_ENABLED].present && ld_bool(l, &s[GV_ENABLED], "governance.enabled", &g->enabled) < 0)
        return -1;
    if (s[GV_QUEUE_USER].present &&
        ld_u32(l, &s[GV_QUEUE_USER], "governance.queue_per_user", 0, 100000, &g->queue_per_user) < 0)
        return -1;
    if (s[GV_QUEUE_GLOBAL].present &&
        ld_u32(l, &s[GV_QUEUE_GLOBAL], "governance.queue_global", 0, 10000000, &g->queue_global) < 0)
        return -1;
    if (s[GV_BACKEND].present) {
        const char *t;
        size_t n;
        if (ld_text(l, &s[GV_BACKEND], "governance.backend", &t, &n) < 0)
            return -1;
        if (n == 5 && !memcmp(t, "local", 5)) g->backend = GOVERN_BACKEND_LOCAL;
        else if (n == 5 && !memcmp(t, "redis", 5)) g->backend = GOVERN_BACKEND_REDIS;
        else
            return ld_fail(l, s[GV_BACKEND].line, "governance.backend", "must be local or redis");
    }
    if (g->backend == GOVERN_BACKEND_REDIS && !s[GV_REDIS].present)
        return ld_fail(l, line, "governance.redis", "backend redis needs a redis: section with its url");
    if (s[GV_REDIS].present) {
        if (g->backend != GOVERN_BACKEND_REDIS)
            return ld_fail(l, s[GV_REDIS].line, "governance.redis",
                           "only read with backend: redis; set it or remove the section");
        if (ld_governance_redis(l, &s[GV_REDIS], &g->redis) < 0)
            return -1;
        if (!g->redis.key_prefix && !(g->redis.key_prefix = strdup("brigade:")))
            return ld_fail(l, line, "governance.redis", "out of memory");
    }
    if (s[GV_TENANT].present) {
        slot ts[TI__N] = {TI_SLOTS};
        const char *tp = "governance.tenant_limits";
        if (config_node_is_null(s[GV_TENANT].val))
            return 0;
        if (ld_collect(l, s[GV_TENANT].val, s[GV_TENANT].line, tp, ts, TI__N) < 0)
            return -1;
        if (ts[TI_NAME].present)
            return ld_fail(l, ts[TI_NAME].line, "governance.tenant_limits.name",
                           "tenant limits have no name; remove the key");
        if (ts[TI_WEIGHT].present)
            return ld_fail(l, ts[TI_WEIGHT].line, "governance.tenant_limits.weight",
                           "weights are per tier; remove the key");
        for (int q = TI_Q_MEM_BYTES; q <= TI_Q_MESSAGES; q++)
            if (ts[q].present) {
                char kq[96];
                ld_path(kq, sizeof(kq), tp, ts[q].key);
                return ld_fail(l, ts[q].line, kq, "storage quotas are per tier; remove the key");
            }
        if (ld_limit_fields(l, ts, tp, &g->tenant_limits) < 0)
            return -1;
    }
    return 0;
}

int ld_tier_fn(ld *l, struct fy_node *n, int line, const char *path, void *e, entry_lines *el)
{
    return ld_tier(l, n, line, path, e, el);
}
void ld_tier_free(void *e) { config_tier_free(e); }
