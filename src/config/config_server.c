/* config_server.c — the `server:` section: where to listen, threads, the
 * data directory, the admin token, timeouts and the HTTP limits
 * (server.limits.*). */
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_load.h"

enum { LIM_BODY, LIM_HDR_BYTES, LIM_HDRS, LIM_URL, LIM_HDR_TO, LIM_BODY_TO, LIM_IDLE_TO,
       LIM_GRACE, LIM_CONNS, LIM_HIGH_WATER, LIM__N };

static int ld_limits(ld *l, struct fy_node *n, int line, const char *path, http_limits *lim)
{
    slot s[LIM__N] = {
        [LIM_BODY] = {.key = "max_body_bytes"},     [LIM_HDR_BYTES] = {.key = "max_header_bytes"},
        [LIM_HDRS] = {.key = "max_headers"},        [LIM_URL] = {.key = "max_url_bytes"},
        [LIM_HDR_TO] = {.key = "header_timeout_ms"}, [LIM_BODY_TO] = {.key = "body_timeout_ms"},
        [LIM_IDLE_TO] = {.key = "idle_timeout_ms"}, [LIM_GRACE] = {.key = "shutdown_grace_ms"},
        [LIM_CONNS] = {.key = "max_connections"},   [LIM_HIGH_WATER] = {.key = "stream_high_water_bytes"},
    };
    if (ld_collect(l, n, line, path, s, LIM__N) < 0)
        return -1;
    char p[160];
    const int64_t day_ms = 86400000, gib = 1LL << 30, mib = 1LL << 20;
#define LIM_SIZE(idx, field, max) \
    if (s[idx].present) { ld_path(p, sizeof(p), path, s[idx].key); \
        if (ld_size(l, &s[idx], p, (max), &lim->field) < 0) return -1; }
#define LIM_MS(idx, field) \
    if (s[idx].present) { ld_path(p, sizeof(p), path, s[idx].key); \
        if (ld_u32(l, &s[idx], p, 0, day_ms, &lim->field) < 0) return -1; }
    LIM_SIZE(LIM_BODY, max_body_bytes, gib)
    LIM_SIZE(LIM_HDR_BYTES, max_header_bytes, mib)
    LIM_SIZE(LIM_HDRS, max_headers, 10000)
    LIM_SIZE(LIM_URL, max_url_bytes, mib)
    LIM_MS(LIM_HDR_TO, header_timeout_ms)
    LIM_MS(LIM_BODY_TO, body_timeout_ms)
    LIM_MS(LIM_IDLE_TO, idle_timeout_ms)
    LIM_MS(LIM_GRACE, shutdown_grace_ms)
    LIM_SIZE(LIM_HIGH_WATER, stream_high_water, gib)
#undef LIM_SIZE
#undef LIM_MS
    if (s[LIM_CONNS].present) {
        ld_path(p, sizeof(p), path, s[LIM_CONNS].key);
        if (ld_u32(l, &s[LIM_CONNS], p, 0, 1000000, &lim->max_connections) < 0)
            return -1;
    }
    return 0;
}

enum { SRV_LISTEN, SRV_THREADS, SRV_DATA_DIR, SRV_ADMIN, SRV_ADMIN_ENV, SRV_LIMITS, SRV_REQ_TIMEOUT,
       SRV_MAX_REQ_TIMEOUT, SRV_MAX_CHOICES, SRV_PUBLIC_URL, SRV_HISTORY_CACHE, SRV__N };

int ld_server(ld *l, struct fy_node *n, int line)
{
    brigade_config *cfg = l->cfg;
    slot s[SRV__N] = {
        [SRV_LISTEN] = {.key = "listen"},     [SRV_THREADS] = {.key = "threads"},
        [SRV_DATA_DIR] = {.key = "data_dir"}, [SRV_ADMIN] = {.key = "admin_token"},
        [SRV_ADMIN_ENV] = {.key = "admin_token_env"}, [SRV_LIMITS] = {.key = "limits"},
        [SRV_REQ_TIMEOUT] = {.key = "request_timeout_ms"},
        [SRV_MAX_REQ_TIMEOUT] = {.key = "max_request_timeout_ms"},
        [SRV_MAX_CHOICES] = {.key = "max_choices"},
        [SRV_PUBLIC_URL] = {.key = "public_url"},
        [SRV_HISTORY_CACHE] = {.key = "history_cache_mb"},
    };
    if (ld_collect(l, n, line, "server", s, SRV__N) < 0)
        return -1;

    if (s[SRV_LISTEN].present) {
        char *v = NULL, *host = NULL, why[256];
        int port;
        if (ld_nonempty(l, &s[SRV_LISTEN], "server.listen", &v, NULL) < 0) {
            free(v);
            return -1;
        }
        int rc = config_parse_listen(v, &host, &port, why, sizeof(why));
        free(v);
        if (rc < 0)
            return ld_fail(l, s[SRV_LISTEN].line, "server.listen", "%s", why);
        free(cfg->listen_host);
        cfg->listen_host = host;
        cfg->listen_port = port;
    }
    if (s[SRV_THREADS].present) {
        int64_t v;
        if (ld_int(l, &s[SRV_THREADS], "server.threads", 0, 1024, &v) < 0)
            return -1;
        cfg->threads = (unsigned)v;
    }
    if (s[SRV_DATA_DIR].present && ld_nonempty(l, &s[SRV_DATA_DIR], "server.data_dir", &cfg->data_dir, NULL) < 0)
        return -1;
    if (s[SRV_ADMIN].present && s[SRV_ADMIN_ENV].present)
        return ld_fail(l, s[SRV_ADMIN_ENV].line, "server.admin_token_env",
                       "give either admin_token or admin_token_env, not both");
    if (s[SRV_ADMIN].present) {
        int literal = 0;
        if (ld_nonempty(l, &s[SRV_ADMIN], "server.admin_token", &cfg->admin_token, &literal) < 0)
            return -1;
        if (literal)
            ld_warn(l, s[SRV_ADMIN].line, "server.admin_token",
                    "the token is written in the file; prefer admin_token_env or ${VAR}");
    }
    if (s[SRV_ADMIN_ENV].present &&
        ld_from_env(l, &s[SRV_ADMIN_ENV], "server.admin_token_env", &cfg->admin_token) < 0)
        return -1;
    if (s[SRV_LIMITS].present &&
        ld_limits(l, s[SRV_LIMITS].val, s[SRV_LIMITS].line, "server.limits", &cfg->limits) < 0)
        return -1;
    if (s[SRV_REQ_TIMEOUT].present &&
        ld_u32(l, &s[SRV_REQ_TIMEOUT], "server.request_timeout_ms", 1, 86400000, &cfg->request_timeout_ms) < 0)
        return -1;
    if (s[SRV_MAX_REQ_TIMEOUT].present &&
        ld_u32(l, &s[SRV_MAX_REQ_TIMEOUT], "server.max_request_timeout_ms", 1, 86400000,
               &cfg->max_request_timeout_ms) < 0)
        return -1;
    if (s[SRV_MAX_CHOICES].present &&
        ld_u32(l, &s[SRV_MAX_CHOICES], "server.max_choices", 1, 128, &cfg->max_choices) < 0)
        return -1;
    if (s[SRV_HISTORY_CACHE].present &&
        ld_u32(l, &s[SRV_HISTORY_CACHE], "server.history_cache_mb", 0, 65536, &cfg->history_cache_mb) < 0)
        return -1;
    if (s[SRV_PUBLIC_URL].present) {
        /* where users' browsers reach brigade: the OAuth redirect_uri and
         * connect_url are built on it, so it is an origin and nothing more */
        size_t host_at;
        if (ld_http_url(l, &s[SRV_PUBLIC_URL], "server.public_url", &cfg->public_url, &host_at) < 0)
            return -1;
        size_t len = strlen(cfg->public_url);
        while (len > host_at && cfg->public_url[len - 1] == '/')
            cfg->public_url[--len] = '\0';
        if (strpbrk(cfg->public_url + host_at, "/?#@"))
            return ld_fail(l, s[SRV_PUBLIC_URL].line, "server.public_url",
                           "must be an origin (scheme://host[:port]) without a path, query or user");
    }
    if (cfg->request_timeout_ms > cfg->max_request_timeout_ms) {
        int at = s[SRV_REQ_TIMEOUT].present ? s[SRV_REQ_TIMEOUT].line : s[SRV_MAX_REQ_TIMEOUT].line;
        return ld_fail(l, at ? at : line, "server.request_timeout_ms",
                       "request_timeout_ms (%u) exceeds max_request_timeout_ms (%u)",
                       cfg->request_timeout_ms, cfg->max_request_timeout_ms);
    }
    return 0;
}
