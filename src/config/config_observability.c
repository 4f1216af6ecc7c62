/* config_observability.c — the `observability:` section: logs, traces
 * (retention, sampling), OTLP export, metrics and audit checkpoints. */
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_load.h"

/* `observability:` — logs, traces, OTLP export, metrics (docs/observability.md). */
enum { OB_LOGS, OB_TRACES, OB_OTLP, OB_METRICS, OB_AUDIT, OB__N };
enum { OBL_FORMAT, OBL_CONTENT, OBL__N };
enum { OBT_ENABLED, OBT_RETENTION, OBT_MAX_SPANS, OBT_SAMPLE, OBT__N };
enum { OBO_ENDPOINT, OBO_QUEUE, OBO_BATCH, OBO_INTERVAL, OBO_TIMEOUT, OBO_SERVICE, OBO__N };
enum { OBM_MAX_SERIES, OBM__N };
enum { OBA_EVERY, OBA_INTERVAL, OBA__N };

int ld_observability(ld *l, struct fy_node *n, int line)
{
    obs_cfg *o = &l->cfg->observability;
    slot s[OB__N] = {[OB_LOGS] = {.key = "logs"}, [OB_TRACES] = {.key = "traces"},
                     [OB_OTLP] = {.key = "otlp"}, [OB_METRICS] = {.key = "metrics"},
                     [OB_AUDIT] = {.key = "audit"}};
    if (ld_collect(l, n, line, "observability", s, OB__N) < 0)
        return -1;
    if (s[OB_LOGS].present) {
        slot g[OBL__N] = {[OBL_FORMAT] = {.key = "format"}, [OBL_CONTENT] = {.key = "content"}};
        if (ld_collect(l, s[OB_LOGS].val, s[OB_LOGS].line, "observability.logs", g, OBL__N) < 0)
            return -1;
        if (g[OBL_FORMAT].present) {
            char *v = NULL;
            if (ld_nonempty(l, &g[OBL_FORMAT], "observability.logs.format", &v, NULL) < 0) {
                free(v);
                return -1;
            }
            int fmt = strcmp(v, "json") == 0 ? 0 : strcmp(v, "text") == 0 ? 1 : -1;
            free(v);
            if (fmt < 0)
                return ld_fail(l, g[OBL_FORMAT].line, "observability.logs.format",
                               "expected json or text");
            o->logs_format = fmt;
        }
        if (g[OBL_CONTENT].present &&
            ld_bool(l, &g[OBL_CONTENT], "observability.logs.content", &o->logs_content) < 0)
            return -1;
    }
    if (s[OB_TRACES].present) {
        slot g[OBT__N] = {[OBT_ENABLED] = {.key = "enabled"}, [OBT_RETENTION] = {.key = "retention_hours"},
                          [OBT_MAX_SPANS] = {.key = "max_spans"}, [OBT_SAMPLE] = {.key = "sample_ratio"}};
        if (ld_collect(l, s[OB_TRACES].val, s[OB_TRACES].line, "observability.traces", g, OBT__N) < 0)
            return -1;
        if (g[OBT_ENABLED].present &&
            ld_bool(l, &g[OBT_ENABLED], "observability.traces.enabled", &o->traces_enabled) < 0)
            return -1;
        if (g[OBT_RETENTION].present &&
            ld_u32(l, &g[OBT_RETENTION], "observability.traces.retention_hours", 1, 24 * 3650,
                   &o->traces_retention_hours) < 0)
            return -1;
        if (g[OBT_MAX_SPANS].present) {
            int64_t v;
            if (ld_int(l, &g[OBT_MAX_SPANS], "observability.traces.max_spans", 1000, 1000000000, &v) < 0)
                return -1;
            o->traces_max_spans = (uint64_t)v;
        }
        if (g[OBT_SAMPLE].present &&
            ld_double(l, &g[OBT_SAMPLE], "observability.traces.sample_ratio", 0.0, 1.0,
                      &o->traces_sample_ratio) < 0)
            return -1;
    }
    if (s[OB_OTLP].present) {
        slot g[OBO__N] = {[OBO_ENDPOINT] = {.key = "endpoint"}, [OBO_QUEUE] = {.key = "max_queue"},
                          [OBO_BATCH] = {.key = "batch"},       [OBO_INTERVAL] = {.key = "interval_ms"},
                          [OBO_TIMEOUT] = {.key = "timeout_ms"}, [OBO_SERVICE] = {.key = "service_name"}};
        if (ld_collect(l, s[OB_OTLP].val, s[OB_OTLP].line, "observability.otlp", g, OBO__N) < 0)
            return -1;
        if (g[OBO_ENDPOINT].present) {
            size_t host_at;
            free(o->otlp_endpoint);
            o->otlp_endpoint = NULL;
            if (ld_http_url(l, &g[OBO_ENDPOINT], "observability.otlp.endpoint", &o->otlp_endpoint,
                            &host_at) < 0)
                return -1;
        }
        if (g[OBO_QUEUE].present &&
            ld_u32(l, &g[OBO_QUEUE], "observability.otlp.max_queue", 1, 10000000, &o->otlp_max_queue) < 0)
            return -1;
        if (g[OBO_BATCH].present &&
            ld_u32(l, &g[OBO_BATCH], "observability.otlp.batch", 1, 4096, &o->otlp_batch) < 0)
            return -1;
        if (g[OBO_INTERVAL].present &&
            ld_u32(l, &g[OBO_INTERVAL], "observability.otlp.interval_ms", 10, 600000, &o->otlp_interval_ms) < 0)
            return -1;
        if (g[OBO_TIMEOUT].present &&
            ld_u32(l, &g[OBO_TIMEOUT], "observability.otlp.timeout_ms", 10, 600000, &o->otlp_timeout_ms) < 0)
            return -1;
        if (g[OBO_SERVICE].present) {
            free(o->service_name);
            o->service_name = NULL;
            if (ld_nonempty(l, &g[OBO_SERVICE], "observability.otlp.service_name", &o->service_name, NULL) < 0)
                return -1;
        }
    }
    if (s[OB_METRICS].present) {
        slot g[OBM__N] = {[OBM_MAX_SERIES] = {.key = "max_series"}};
        if (ld_collect(l, s[OB_METRICS].val, s[OB_METRICS].line, "observability.metrics", g, OBM__N) < 0)
            return -1;
        if (g[OBM_MAX_SERIES].present &&
            ld_u32(l, &g[OBM_MAX_SERIES], "observability.metrics.max_series", 10, 1000000,
                   &o->metrics_max_series) < 0)
            return -1;
    }
    if (s[OB_AUDIT].present) {
        slot g[OBA__N] = {[OBA_EVERY] = {.key = "checkpoint_every"},
                          [OBA_INTERVAL] = {.key = "checkpoint_interval_s"}};
        if (ld_collect(l, s[OB_AUDIT].val, s[OB_AUDIT].line, "observability.audit", g, OBA__N) < 0)
            return -1;
        if (g[OBA_EVERY].present &&
            ld_u32(l, &g[OBA_EVERY], "observability.audit.checkpoint_every", 1, 1000000,
                   &o->audit_checkpoint_every) < 0)
            return -1;
        if (g[OBA_INTERVAL].present &&
            ld_u32(l, &g[OBA_INTERVAL], "observability.audit.checkpoint_interval_s", 1, 86400,
                   &o->audit_checkpoint_interval_s) < 0)
            return -1;
    }
    return 0;
}
