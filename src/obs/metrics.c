/* metrics.c — the process-wide metric registry and its Prometheus text
 * rendering (exposition format 0.0.4).
 *
 * Families are few and registered once; series are looked up by label
 * values in a small hash table under the family's mutex, and from then on
 * updated with atomics only. Series are never removed, so a pointer a
 * caller keeps stays valid for the life of the process, and the renderer
 * can walk a family's list without stopping updates.
 *
 * Cardinality is bounded per family (max_series): past it, updates land in
 * a single series whose label values are all "_overflow_", and the family's
 * overflow count (brigade_metrics_series_overflow_total{metric=…}) says how
 * many lookups were folded there. Totals stay right; only the breakdown is
 * lost, and memory cannot grow with hostile label values. */
#include "obs/obs_internal.h"
#include "util/xalloc.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OBS_SERIES_HASH 256
#define OBS_OVERFLOW_VALUE "_overflow_"

typedef enum { OBS_COUNTER, OBS_GAUGE, OBS_HISTOGRAM } obs_metric_type;

struct obs_series {
    struct obs_series *hnext;       /* hash chain */
    struct obs_series *next;        /* insertion order (render) */
    char *labels[OBS_LABELS_MAX];
    atomic_uint_fast64_t count;     /* counter value; histogram observation count */
    _Atomic uint64_t bits;          /* gauge value; histogram sum (double bits) */
    atomic_uint_fast64_t *buckets;  /* histogram: per-bucket (not cumulative) counts */
    const struct obs_metric *family;
};

struct obs_metric {
    struct obs_metric *next;
    char *name, *help;
    obs_metric_type type;
    size_t nlabels;
    char *label_names[OBS_LABELS_MAX];
    double *bounds;
    size_t nbounds;
    pthread_mutex_t mu;
    /* Looked up without the lock: a series is published here (release)
     * only once whole, with its hnext set, and never removed or freed;
     * the lock is taken to add one. */
    _Atomic(obs_series *) hash[OBS_SERIES_HASH];
    obs_series *first, *last;
    size_t nseries;
    obs_series *overflow;
    atomic_uint_fast64_t overflowed;
    /* A family without labels has one series: kept here once made, so the
     * per-request totals skip the hash and the lock (series are never freed). */
    _Atomic(obs_series *) only;
};

static pthread_mutex_t obs_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static obs_metric *obs_reg_first, *obs_reg_last;
static atomic_size_t obs_max_series = 1000;

void obs_metrics_set_max_series(size_t n) { atomic_store(&obs_max_series, n ? n : 1); }
size_t obs_metrics_max_series(void) { return atomic_load(&obs_max_series); }

static char *obs_xstrdup(const char *s)
{
    char *d = xstrdup(s ? s : "");
    return d;
}

static bool obs_name_ok(const char *n, bool label)
{
    if (!n || !*n) return false;
    for (const char *p = n; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
        if (!alpha && !(p > n && c >= '0' && c <= '9')) return false;
    }
    return true;
}

static const double obs_default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                             1, 2.5, 5, 10, 30, 60};

static obs_metric *obs_register(const char *name, const char *help, obs_metric_type type,
                                const char *const *labels, const double *bounds, size_t nb)
{
    if (!obs_name_ok(name, false)) abort();   /* a programming error, caught by any test */
    pthread_mutex_lock(&obs_reg_mu);
    for (obs_metric *m = obs_reg_first; m; m = m->next)
        if (strcmp(m->name, name) == 0) {
            pthread_mutex_unlock(&obs_reg_mu);
            return m;
        }
    obs_metric *m = xcalloc(1, sizeof *m);
    m->name = obs_xstrdup(name);
    m->help = obs_xstrdup(help);
    m->type = type;
    for (size_t i = 0; labels && labels[i]; i++) {
        if (i >= OBS_LABELS_MAX || !obs_name_ok(labels[i], true) ||
            (type == OBS_HISTOGRAM && strcmp(labels[i], "le") == 0))
            abort();
        m->label_names[m->nlabels++] = obs_xstrdup(labels[i]);
    }
    if (type == OBS_HISTOGRAM) {
        if (!bounds) {
            bounds = obs_default_buckets;
            nb = sizeof obs_default_buckets / sizeof obs_default_buckets[0];
        }
        m->bounds = xmalloc((nb ? nb : 1) * sizeof *m->bounds);
        for (size_t i = 0; i < nb; i++) {
            if (i && !(bounds[i] > bounds[i - 1])) abort();   /* must ascend */
            m->bounds[i] = bounds[i];
        }
        m->nbounds = nb;
    }
    pthread_mutex_init(&m->mu, NULL);
    if (obs_reg_last) obs_reg_last->next = m;
    else obs_reg_first = m;
    obs_reg_last = m;
    pthread_mutex_unlock(&obs_reg_mu);
    return m;
}

obs_metric *obs_counter(const char *name, const char *help, const char *const *labels)
{
    return obs_register(name, help, OBS_COUNTER, labels, NULL, 0);
}

obs_metric *obs_gauge(const char *name, const char *help, const char *const *labels)
{
    return obs_register(name, help, OBS_GAUGE, labels, NULL, 0);
}

obs_metric *obs_histogram(const char *name, const char *help, const char *const *labels,
                          const double *buckets, size_t n_buckets)
{
    return obs_register(name, help, OBS_HISTOGRAM, labels, buckets, n_buckets);
}

static obs_series *obs_series_new(obs_metric *m, const char *const *values)
{
    obs_series *s = xcalloc(1, sizeof *s);
    s->family = m;
    for (size_t i = 0; i < m->nlabels; i++) s->labels[i] = obs_xstrdup(values ? values[i] : "");
    if (m->type == OBS_HISTOGRAM) {
        s->buckets = xcalloc(m->nbounds + 1, sizeof *s->buckets);
    }
    if (m->last) m->last->next = s;
    else m->first = s;
    m->last = s;
    return s;
}

/* The series of these label values in slot's chain, or NULL. */
static obs_series *obs_series_find(obs_metric *m, size_t slot, const char *const *vals)
{
    for (obs_series *s = atomic_load_explicit(&m->hash[slot], memory_order_acquire); s; s = s->hnext) {
        size_t i;
        for (i = 0; i < m->nlabels; i++)
            if (strcmp(s->labels[i], vals[i]) != 0) break;
        if (i == m->nlabels) return s;
    }
    return NULL;
}

obs_series *obs_series_of(obs_metric *m, const char *const *values)
{
    if (m->nlabels == 0) {
        obs_series *only = atomic_load_explicit(&m->only, memory_order_acquire);
        if (only) return only;
    }
    /* Missing values (a shorter list than the family's names) read as "". */
    const char *vals[OBS_LABELS_MAX] = {0};
    bool ended = values == NULL;
    for (size_t i = 0; i < m->nlabels; i++) {
        if (!ended && !values[i]) ended = true;
        vals[i] = ended ? "" : values[i];
    }
    uint64_t h = 1469598103934665603ull;   /* FNV-1a over the values, 0-separated */
    for (size_t i = 0; i < m->nlabels; i++) {
        for (const unsigned char *p = (const unsigned char *)vals[i]; *p; p++) h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    size_t slot = (size_t)(h % OBS_SERIES_HASH);
    obs_series *s = obs_series_find(m, slot, vals);
    if (s) return s;
    pthread_mutex_lock(&m->mu);
    s = obs_series_find(m, slot, vals);   /* another thread may have added it */
    if (!s) {
        if (m->nseries >= atomic_load(&obs_max_series)) {
            if (!m->overflow) {
                const char *ov[OBS_LABELS_MAX];
                for (size_t i = 0; i < m->nlabels; i++) ov[i] = OBS_OVERFLOW_VALUE;
                m->overflow = obs_series_new(m, ov);
            }
            atomic_fetch_add(&m->overflowed, 1);
            s = m->overflow;
        } else {
            s = obs_series_new(m, vals);
            s->hnext = atomic_load_explicit(&m->hash[slot], memory_order_relaxed);
            atomic_store_explicit(&m->hash[slot], s, memory_order_release);
            m->nseries++;
        }
    }
    if (m->nlabels == 0) atomic_store_explicit(&m->only, s, memory_order_release);
    pthread_mutex_unlock(&m->mu);
    return s;
}

/* ---- updates ---- */

static double obs_bits_to_d(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t obs_d_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static void obs_atomic_add_double(_Atomic uint64_t *bits, double d)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, obs_d_to_bits(obs_bits_to_d(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

uint64_t obs_counter_value(const obs_series *s)
{
    return s ? atomic_load(&((obs_series *)s)->count) : 0;
}

void obs_counter_add(obs_series *s, uint64_t n)
{
    atomic_fetch_add_explicit(&s->count, n, memory_order_relaxed);
}

void obs_gauge_set(obs_series *s, double v)
{
    atomic_store_explicit(&s->bits, obs_d_to_bits(v), memory_order_relaxed);
}

void obs_gauge_add(obs_series *s, double d) { obs_atomic_add_double(&s->bits, d); }

void obs_histogram_observe(obs_series *s, double v)
{
    const obs_metric *m = s->family;
    if (m->type != OBS_HISTOGRAM) return;
    size_t b = 0;
    while (b < m->nbounds && v > m->bounds[b]) b++;   /* le: v <= bound; b == nbounds is +Inf */
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    obs_atomic_add_double(&s->bits, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

/* ---- rendering ---- */

typedef struct obs_out {
    void (*append)(void *ctx, const char *s, size_t n);
    void *ctx;
} obs_out;

static void obs_put(obs_out *o, const char *s) { o->append(o->ctx, s, strlen(s)); }

static void obs_putf(obs_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void obs_putf(obs_out *o, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) o->append(o->ctx, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Label values: backslash, double quote and line feed are escaped. HELP
 * text: backslash and line feed only (format 0.0.4). */
static void obs_put_escaped(obs_out *o, const char *s, bool quote)
{
    const char *run = s;
    for (const char *p = s;; p++) {
        const char *esc = NULL;
        if (*p == '\\') esc = "\\\\";
        else if (*p == '\n') esc = "\\n";
        else if (quote && *p == '"') esc = "\\\"";
        if (esc || !*p) {
            if (p > run) o->append(o->ctx, run, (size_t)(p - run));
            if (!*p) break;
            obs_put(o, esc);
            run = p + 1;
        }
    }
}

/* A sample value: integers without a fraction, +Inf / -Inf / NaN spelled
 * as Prometheus expects. */
static void obs_put_double(obs_out *o, double d)
{
    if (isnan(d)) obs_put(o, "NaN");
    else if (isinf(d)) obs_put(o, d > 0 ? "+Inf" : "-Inf");
    else if (d == floor(d) && fabs(d) < 1e15) obs_putf(o, "%.0f", d);
    else obs_putf(o, "%.15g", d);
}

/* `{a="x",b="y"` plus an optional le, closed with `}`; nothing without labels. */
static void obs_put_labels(obs_out *o, const obs_metric *m, const obs_series *s, const char *le)
{
    if (!m->nlabels && !le) return;
    obs_put(o, "{");
    for (size_t i = 0; i < m->nlabels; i++) {
        if (i) obs_put(o, ",");
        obs_put(o, m->label_names[i]);
        obs_put(o, "=\"");
        obs_put_escaped(o, s->labels[i], true);
        obs_put(o, "\"");
    }
    if (le) {
        if (m->nlabels) obs_put(o, ",");
        obs_put(o, "le=\"");
        obs_put(o, le);
        obs_put(o, "\"");
    }
    obs_put(o, "}");
}

static void obs_render_family(obs_out *o, obs_metric *m)
{
    static const char *const tnames[] = {"counter", "gauge", "histogram"};
    obs_put(o, "# HELP ");
    obs_put(o, m->name);
    obs_put(o, " ");
    obs_put_escaped(o, m->help, false);
    obs_put(o, "\n# TYPE ");
    obs_put(o, m->name);
    obs_put(o, " ");
    obs_put(o, tnames[m->type]);
    obs_put(o, "\n");
    /* A family without labels always has its one series, even at zero. */
    if (m->nlabels == 0) (void)obs_series_of(m, NULL);
    /* Held while walking: it only keeps out new series (updates of
     * existing ones are atomics and go on). */
    pthread_mutex_lock(&m->mu);
    for (obs_series *s = m->first; s; s = s->next) {
        if (m->type == OBS_COUNTER) {
            obs_put(o, m->name);
            obs_put_labels(o, m, s, NULL);
            obs_putf(o, " %llu\n", (unsigned long long)atomic_load(&s->count));
        } else if (m->type == OBS_GAUGE) {
            obs_put(o, m->name);
            obs_put_labels(o, m, s, NULL);
            obs_put(o, " ");
            obs_put_double(o, obs_bits_to_d(atomic_load(&s->bits)));
            obs_put(o, "\n");
        } else {
            /* Read the buckets first and derive _count from them, so the
             * +Inf bucket always equals _count even under concurrent
             * observations. */
            uint64_t cum = 0;
            for (size_t b = 0; b <= m->nbounds; b++) {
                cum += atomic_load(&s->buckets[b]);
                char le[48];
                if (b == m->nbounds) snprintf(le, sizeof le, "+Inf");
                else snprintf(le, sizeof le, "%.15g", m->bounds[b]);
                obs_put(o, m->name);
                obs_put(o, "_bucket");
                obs_put_labels(o, m, s, le);
                obs_putf(o, " %llu\n", (unsigned long long)cum);
            }
            obs_put(o, m->name);
            obs_put(o, "_sum");
            obs_put_labels(o, m, s, NULL);
            obs_put(o, " ");
            obs_put_double(o, obs_bits_to_d(atomic_load(&s->bits)));
            obs_put(o, "\n");
            obs_put(o, m->name);
            obs_put(o, "_count");
            obs_put_labels(o, m, s, NULL);
            obs_putf(o, " %llu\n", (unsigned long long)cum);
        }
    }
    pthread_mutex_unlock(&m->mu);
}

void obs_metrics_render(void (*append)(void *ctx, const char *s, size_t n), void *ctx)
{
    obs_out o = {append, ctx};
    pthread_mutex_lock(&obs_reg_mu);
    obs_metric *first = obs_reg_first;
    pthread_mutex_unlock(&obs_reg_mu);
    /* Families are only ever appended: walking without the lock is safe
     * once the head is read (next pointers are written before publication
     * under the registry mutex, and we re-take it for each step). */
    for (obs_metric *m = first; m;) {
        obs_render_family(&o, m);
        pthread_mutex_lock(&obs_reg_mu);
        m = m->next;
        pthread_mutex_unlock(&obs_reg_mu);
    }
    obs_put(&o, "# HELP brigade_metrics_series_overflow_total Label sets folded into the _overflow_ "
                "series because a metric reached its series cap.\n"
                "# TYPE brigade_metrics_series_overflow_total counter\n");
    pthread_mutex_lock(&obs_reg_mu);
    for (obs_metric *m = obs_reg_first; m; m = m->next) {
        uint64_t v = atomic_load(&m->overflowed);
        if (!v) continue;
        obs_put(&o, "brigade_metrics_series_overflow_total{metric=\"");
        obs_put(&o, m->name);
        obs_putf(&o, "\"} %llu\n", (unsigned long long)v);
    }
    pthread_mutex_unlock(&obs_reg_mu);
}
