/* obs_setup.c — turning the `observability:` configuration into a running
 * tracer, log format and metric limits, in one call from `brigade serve`. */
#include "obs/obs.h"

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "util/log.h"

int obs_setup(const obs_cfg *c, store *st, char *err, size_t errlen)
{
    log_set_format(c->logs_format == 1 ? LOG_FORMAT_TEXT : LOG_FORMAT_JSON);
    log_set_content(c->logs_content);
    log_init_from_env();   /* BRIGADE_LOG / BRIGADE_LOG_FORMAT win over the file */
    obs_metrics_set_max_series(c->metrics_max_series ? c->metrics_max_series : 1000);
    /* Register brigade's own families up front, so a scrape right after
     * start already lists them (at zero). */
    obs_m_http_requests();
    obs_m_http_duration();
    obs_set_sample_ratio(c->traces_sample_ratio);
    bool exporting = c->otlp_endpoint && c->otlp_endpoint[0];
    if (!c->traces_enabled && !exporting) return 0;   /* spans are built and freed */
    obs_tracer_opts o = {
        .retention_hours = c->traces_retention_hours ? c->traces_retention_hours : 72,
        .max_spans = c->traces_max_spans ? c->traces_max_spans : 1000000,
        .otlp_endpoint = exporting ? c->otlp_endpoint : NULL,
        .otlp_max_queue = c->otlp_max_queue,
        .otlp_batch = c->otlp_batch,
        .otlp_interval_ms = c->otlp_interval_ms,
        .otlp_timeout_ms = c->otlp_timeout_ms,
        .service_name = c->service_name,
    };
    if (obs_tracer_start(&o, c->traces_enabled ? st : NULL, err, errlen) != 0) return -1;
    if (exporting) {
        /* The endpoint may carry user:password@ — never log that part. */
        const char *ep = c->otlp_endpoint, *host = strstr(ep, "://");
        host = host ? host + 3 : ep;
        const char *at = strchr(host, '@'), *slash = strchr(host, '/');
        if (at && (!slash || at < slash)) host = at + 1;
        log_info("obs: exporting spans over OTLP/HTTP to %s", host);
    }
    return 0;
}
