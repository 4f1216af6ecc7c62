/* recent.h — the key metrics of the last hour, kept by the process itself:
 * a ring of per-minute counters (requests, 4xx, 5xx, tokens, cost, latency
 * percentiles), so the server admin's console page needs no Prometheus.
 * Thread-safe; fixed memory (60 buckets). */
#ifndef BRIGADE_OBS_RECENT_H
#define BRIGADE_OBS_RECENT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#define OBS_RECENT_MINUTES 60

/* One finished request: its status, its latency, and the process's running
 * totals of tokens and cost at that moment (the minute's tokens and cost
 * are the growth of those totals, so usage charged by any path counts). */
void obs_recent_request(int64_t now_s, int status, double latency_s, uint64_t tokens_total,
                        uint64_t cost_nusd_total);

/* The last OBS_RECENT_MINUTES minutes, oldest first, minutes with no
 * request included as zeros: {"minutes":[{"start","requests","errors_4xx",
 * "errors_5xx","tokens","cost_usd","p50_ms","p99_ms"}], "window_s"}.
 * Percentiles are bucket upper bounds (buckets grow by a factor of √2). */
cJSON *obs_recent_json(int64_t now_s);

/* Forget everything (tests). */
void obs_recent_reset(void);

#endif
