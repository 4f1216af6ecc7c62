/* recent.c — the per-minute ring of recent.h. One bucket per minute of
 * the last hour, reused when its minute comes round again; a latency
 * histogram per bucket gives p50/p99 without keeping samples. */
#include "obs/recent.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define LAT_BUCKETS 48   /* upper bounds 0.5 ms · √2^i: up to ~5.9 hours */

typedef struct minute_bucket {
    int64_t  minute;               /* unix time / 60; 0 = never used */
    uint64_t requests, errors_4xx, errors_5xx;
    uint64_t tokens_first, tokens_last;   /* running totals seen in the minute */
    uint64_t cost_first, cost_last;
    uint32_t lat[LAT_BUCKETS];
} minute_bucket;

static pthread_mutex_t recent_mu = PTHREAD_MUTEX_INITIALIZER;
static minute_bucket ring[OBS_RECENT_MINUTES];

/* The bucket bounds, computed once: every request files its latency, and
 * pow() per bucket tried was most of that. */
static double lat_bounds[LAT_BUCKETS];
static pthread_once_t lat_bounds_once = PTHREAD_ONCE_INIT;

static void lat_bounds_fill(void)
{
    for (int i = 0; i < LAT_BUCKETS; i++) lat_bounds[i] = 0.5 * pow(M_SQRT2, i);
}

static double lat_bound_ms(int i)
{
    pthread_once(&lat_bounds_once, lat_bounds_fill);
    return lat_bounds[i];
}

static int lat_index(double ms)
{
    pthread_once(&lat_bounds_once, lat_bounds_fill);
    for (int i = 0; i < LAT_BUCKETS - 1; i++)
        if (ms <= lat_bounds[i]) return i;
    return LAT_BUCKETS - 1;
}

void obs_recent_request(int64_t now_s, int status, double latency_s, uint64_t tokens_total,
                        uint64_t cost_nusd_total)
{
    int64_t minute = now_s / 60;
    minute_bucket *b = &ring[minute % OBS_RECENT_MINUTES];
    double ms = latency_s > 0 ? latency_s * 1000.0 : 0;
    pthread_mutex_lock(&recent_mu);
    if (b->minute != minute) {
        memset(b, 0, sizeof *b);
        b->minute = minute;
        b->tokens_first = b->tokens_last = tokens_total;
        b->cost_first = b->cost_last = cost_nusd_total;
    }
    b->requests++;
    if (status >= 500) b->errors_5xx++;
    else if (status >= 400) b->errors_4xx++;
    if (tokens_total > b->tokens_last) b->tokens_last = tokens_total;
    if (cost_nusd_total > b->cost_last) b->cost_last = cost_nusd_total;
    b->lat[lat_index(ms)]++;
    pthread_mutex_unlock(&recent_mu);
}

static double percentile_ms(const minute_bucket *b, double q)
{
    uint64_t n = 0;
    for (int i = 0; i < LAT_BUCKETS; i++) n += b->lat[i];
    if (n == 0) return 0;
    uint64_t want = (uint64_t)ceil(q * (double)n), seen = 0;
    if (want == 0) want = 1;
    for (int i = 0; i < LAT_BUCKETS; i++) {
        seen += b->lat[i];
        if (seen >= want) return lat_bound_ms(i);
    }
    return lat_bound_ms(LAT_BUCKETS - 1);
}

cJSON *obs_recent_json(int64_t now_s)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "minutes");
    cJSON_AddNumberToObject(root, "window_s", OBS_RECENT_MINUTES * 60);
    int64_t now_min = now_s / 60;
    const minute_bucket *prev = NULL;
    pthread_mutex_lock(&recent_mu);
    for (int64_t m = now_min - OBS_RECENT_MINUTES + 1; m <= now_min; m++) {
        const minute_bucket *b = &ring[((m % OBS_RECENT_MINUTES) + OBS_RECENT_MINUTES) % OBS_RECENT_MINUTES];
        bool live = b->minute == m && m > 0;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "start", (double)(m * 60));
        cJSON_AddNumberToObject(o, "requests", live ? (double)b->requests : 0);
        cJSON_AddNumberToObject(o, "errors_4xx", live ? (double)b->errors_4xx : 0);
        cJSON_AddNumberToObject(o, "errors_5xx", live ? (double)b->errors_5xx : 0);
        uint64_t tokens = 0, cost = 0;
        if (live) {
            /* growth since the last minute seen (usage charged between two
             * requests lands in the later one), else within the minute */
            uint64_t t0 = prev ? prev->tokens_last : b->tokens_first;
            uint64_t c0 = prev ? prev->cost_last : b->cost_first;
            tokens = b->tokens_last > t0 ? b->tokens_last - t0 : 0;
            cost = b->cost_last > c0 ? b->cost_last - c0 : 0;
            prev = b;
        }
        cJSON_AddNumberToObject(o, "tokens", (double)tokens);
        cJSON_AddNumberToObject(o, "cost_usd", (double)cost / 1e9);
        cJSON_AddNumberToObject(o, "p50_ms", live ? percentile_ms(b, 0.50) : 0);
        cJSON_AddNumberToObject(o, "p99_ms", live ? percentile_ms(b, 0.99) : 0);
        cJSON_AddItemToArray(arr, o);
    }
    pthread_mutex_unlock(&recent_mu);
    return root;
}

void obs_recent_reset(void)
{
    pthread_mutex_lock(&recent_mu);
    memset(ring, 0, sizeof ring);
    pthread_mutex_unlock(&recent_mu);
}
