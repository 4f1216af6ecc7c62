/* govern.c — admission of model calls and agent runs against budgets,
 * rate limits and concurrency (contract in govern.h).
 *
 * One mutex guards everything. An admission is a handful of hash lookups
 * and integer compares, so the lock is held for well under a microsecond;
 * finer locking would buy nothing and make the all-or-nothing rule
 * (invariant 3, docs/architecture.md) harder to see. The rule itself is kept by
 * checking every limit first and changing state only once all passed. */
#include "govern/govern.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "govern/gcra.h"
#include "govern/govern_internal.h"
#include "util/strmap.h"

#define NS_PER_MS 1000000LL
#define DAY_MS    86400000LL
/* Tokens beyond the estimate are charged to the tpm bucket, but at most an
 * hour's worth, so one runaway call cannot lock a subject out for days. */
#define GOVERN_MAX_DEBT_NS (60LL * GCRA_WINDOW_NS)

struct govern {
    pthread_mutex_t mu;
    govern_clock_fn clock;
    void           *clock_arg;
    bool            enabled;
    strmap         *ents;          /* "<kind>\x1f..." -> govern_ent */
    /* The current periods, recomputed only when now leaves them. */
    int64_t         day_start, day_end, month_start, month_end;
    govern_stats    st;
};

enum { LV_USER = 0, LV_KEY = 1, LV_TENANT = 2, LV_N = 3 };
static const char *const lv_name[LV_N] = { "user", "key", "tenant" };

static int64_t govern_wall_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / NS_PER_MS;
}

govern *govern_new(govern_clock_fn clock, void *clock_arg)
{
    govern *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->ents = strmap_new(free);
    if (!g->ents) { free(g); return NULL; }
    pthread_mutex_init(&g->mu, NULL);
    g->clock = clock ? clock : govern_wall_ms;
    g->clock_arg = clock_arg;
    g->enabled = true;
    /* An empty range: the first call computes the periods. */
    g->day_start = g->day_end = g->month_start = g->month_end = 0;
    return g;
}

void govern_free(govern *g)
{
    if (!g) return;
    strmap_free(g->ents);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void govern_set_enabled(govern *g, bool on)
{
    pthread_mutex_lock(&g->mu);
    g->enabled = on;
    pthread_mutex_unlock(&g->mu);
}

static bool empty(const char *s) { return !s || !*s; }

/* Read the clock and make the cached periods contain now. Under the lock. */
static int64_t govern_now(govern *g)
{
    int64_t now = g->clock(g->clock_arg);
    if (now < g->day_start || now >= g->day_end) {
        g->day_start = govern_day_start(now);
        g->day_end = g->day_start + DAY_MS;
    }
    if (now < g->month_start || now >= g->month_end) {
        g->month_start = govern_month_start(now);
        g->month_end = govern_month_end(now);
    }
    return now;
}

/* Start the entry's new day / month if the clock has passed into one.
 * Only forwards: a clock stepping back does not resurrect old spend. */
static void ent_roll(const govern *g, govern_ent *e)
{
    if (g->day_start > e->day_start) {
        e->day_start = g->day_start;
        e->day_spent = 0;
    }
    if (g->month_start > e->month_start) {
        e->month_start = g->month_start;
        e->month_spent = 0;
    }
}

/* The table key of a level: a kind letter and the id parts, separated by
 * the unit separator (which ids do not contain). Fits `cap` or is
 * malloc'ed; the caller frees it when it differs from buf. */
static char *ent_key(char *buf, size_t cap, char kind, const char *a, const char *b,
                     const char *c)
{
    size_t la = strlen(a), lb = b ? strlen(b) : 0, lc = c ? strlen(c) : 0;
    size_t need = 1 + 1 + la + (b ? 1 + lb : 0) + (c ? 1 + lc : 0) + 1;
    char *k = need <= cap ? buf : malloc(need);
    if (!k) return NULL;
    char *p = k;
    *p++ = kind;
    *p++ = '\x1f';
    memcpy(p, a, la); p += la;
    if (b) { *p++ = '\x1f'; memcpy(p, b, lb); p += lb; }
    if (c) { *p++ = '\x1f'; memcpy(p, c, lc); p += lc; }
    *p = '\0';
    return k;
}

/* Find (and with `create`, make) the counters of one level. NULL when the
 * level does not apply, is absent and !create, or on OOM. */
static govern_ent *ent_get(govern *g, int level, const char *tenant, const char *user,
                           const char *key, bool create)
{
    char buf[256], *k;
    if (empty(tenant)) return NULL;
    switch (level) {
    case LV_TENANT:
        k = ent_key(buf, sizeof buf, 't', tenant, NULL, NULL);
        break;
    case LV_USER:
        if (empty(user)) return NULL;
        k = ent_key(buf, sizeof buf, 'u', tenant, user, NULL);
        break;
    default:
        if (empty(key)) return NULL;
        /* "jwt" is not a shared key but each user's JWT session. */
        if (strcmp(key, "jwt") == 0)
            k = ent_key(buf, sizeof buf, 'k', tenant, empty(user) ? "" : user, key);
        else
            k = ent_key(buf, sizeof buf, 'k', tenant, key, NULL);
        break;
    }
    if (!k) return NULL;
    govern_ent *e = strmap_get(g->ents, k);
    if (!e && create) {
        e = calloc(1, sizeof *e);
        if (e) {
            e->day_start = g->day_start;
            e->month_start = g->month_start;
            if (strmap_put(g->ents, k, e) != 0) { free(e); e = NULL; }
        }
    }
    if (k != buf) free(k);
    if (e) ent_roll(g, e);
    return e;
}

void govern_ledger_add(govern *g, const char *tenant_id, const char *user_id,
                       const char *key_id, int64_t ts_unix_s, int64_t cost_nusd)
{
    pthread_mutex_lock(&g->mu);
    govern_now(g);
    int64_t ts = ts_unix_s * 1000;
    bool in_day = ts >= g->day_start && ts < g->day_end;
    bool in_month = ts >= g->month_start && ts < g->month_end;
    if (in_day || in_month) {
        for (int lv = 0; lv < LV_N; lv++) {
            govern_ent *e = ent_get(g, lv, tenant_id, user_id, key_id, true);
            if (!e) continue;
            if (in_day) e->day_spent += cost_nusd;
            if (in_month) e->month_spent += cost_nusd;
        }
    }
    pthread_mutex_unlock(&g->mu);
}

/* Copy an id into a reservation's fixed field, truncating. */
static void copy_id(char dst[GOVERN_ID_MAX], const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= GOVERN_ID_MAX) n = GOVERN_ID_MAX - 1;
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

static int64_t ceil_ms(int64_t ns) { return (ns + NS_PER_MS - 1) / NS_PER_MS; }

/* The most constraining bucket (lowest remaining) of the levels given. */
static void fill_rate_info(govern_ent *const ents[LV_N], const govern_limits *const lims[LV_N],
                           int64_t now_ns, govern_ratelimit_info *rl)
{
    memset(rl, 0, sizeof *rl);
    for (int lv = 0; lv < LV_N; lv++) {
        const govern_limits *l = lims[lv];
        if (!l) continue;
        int64_t rtat = ents[lv] ? ents[lv]->rpm_tat_ns : 0;
        int64_t ttat = ents[lv] ? ents[lv]->tpm_tat_ns : 0;
        if (l->rpm > 0) {
            int64_t rem = gcra_remaining(rtat, now_ns, l->rpm);
            if (!rl->has_requests || rem < rl->remaining_requests) {
                rl->has_requests = true;
                rl->limit_requests = l->rpm;
                rl->remaining_requests = rem;
                rl->reset_requests_ms = ceil_ms(gcra_reset_ns(rtat, now_ns));
            }
        }
        if (l->tpm > 0) {
            int64_t rem = gcra_remaining(ttat, now_ns, l->tpm);
            if (!rl->has_tokens || rem < rl->remaining_tokens) {
                rl->has_tokens = true;
                rl->limit_tokens = l->tpm;
                rl->remaining_tokens = rem;
                rl->reset_tokens_ms = ceil_ms(gcra_reset_ns(ttat, now_ns));
            }
        }
    }
}

/* The limits of each level of s, NULL where the level does not apply. */
static void subject_limits(const govern_subject *s, const govern_limits *lims[LV_N])
{
    lims[LV_USER] = empty(s->user_id) ? NULL : &s->user;
    lims[LV_KEY] = empty(s->key_id) ? NULL : &s->key;
    lims[LV_TENANT] = &s->tenant;
}

/* ---- cost caps (the caller's counters, under g->mu when g exists) ---- */

static bool caps_fit(govern_cap *const caps[GOVERN_CAPS], int64_t est_cost, govern_refusal *why)
{
    for (int i = 0; caps && i < GOVERN_CAPS; i++) {
        const govern_cap *c = caps[i];
        if (!c || c->limit_nusd <= 0) continue;
        /* Written as a difference so a huge estimate cannot overflow. */
        if (est_cost > c->limit_nusd - c->spent_nusd - c->reserved_nusd) {
            govern_refuse_cap(why, c, est_cost);
            return false;
        }
    }
    return true;
}

static void caps_reserve(govern_cap *const caps[GOVERN_CAPS], int64_t est_cost,
                         govern_reservation *out)
{
    for (int i = 0; caps && i < GOVERN_CAPS; i++) {
        out->caps[i] = caps[i];
        if (caps[i]) caps[i]->reserved_nusd += est_cost;
    }
}

static void caps_finish(govern_reservation *r, bool settle, int64_t actual_cost)
{
    for (int i = 0; i < GOVERN_CAPS; i++) {
        govern_cap *c = r->caps[i];
        if (!c) continue;
        c->reserved_nusd -= r->est_cost_nusd;
        if (c->reserved_nusd < 0) c->reserved_nusd = 0;
        if (settle) c->spent_nusd += actual_cost;
        r->caps[i] = NULL;
    }
}

bool govern_caps_allow(govern_cap *const caps[GOVERN_CAPS], int64_t est_cost_nusd,
                       govern_refusal *why)
{
    return caps_fit(caps, est_cost_nusd < 0 ? 0 : est_cost_nusd, why);
}

void govern_cap_read(govern *g, const govern_cap *cap, int64_t *spent, int64_t *reserved)
{
    pthread_mutex_lock(&g->mu);
    if (spent) *spent = cap->spent_nusd;
    if (reserved) *reserved = cap->reserved_nusd;
    pthread_mutex_unlock(&g->mu);
}

bool govern_admit(govern *g, const govern_subject *s, int64_t est_tokens,
                  int64_t est_cost_nusd, govern_reservation *out,
                  govern_refusal *why, govern_ratelimit_info *rl)
{
    return govern_admit_capped(g, s, NULL, est_tokens, est_cost_nusd, out, why, rl);
}

bool govern_admit_capped(govern *g, const govern_subject *s, govern_cap *const caps[GOVERN_CAPS],
                         int64_t est_tokens, int64_t est_cost_nusd, govern_reservation *out,
                         govern_refusal *why, govern_ratelimit_info *rl)
{
    if (est_tokens < 0) est_tokens = 0;
    if (est_cost_nusd < 0) est_cost_nusd = 0;
    const govern_limits *lims[LV_N];
    subject_limits(s, lims);

    pthread_mutex_lock(&g->mu);
    int64_t now = govern_now(g);
    int64_t now_ns = now * NS_PER_MS;
    govern_ent *ents[LV_N] = { NULL, NULL, NULL };

    /* 0. The agent's cost caps, governed or not: spent + reserved + this
     * call's worst case must fit. */
    if (!caps_fit(caps, est_cost_nusd, why)) {
        g->st.refused_cost_cap++;
        if (!g->enabled) {
            pthread_mutex_unlock(&g->mu);
            if (rl) memset(rl, 0, sizeof *rl);
            return false;
        }
        for (int lv = 0; lv < LV_N; lv++) lims[lv] = NULL;   /* no rate state to report */
        goto refused;
    }

    if (!g->enabled) {
        memset(out, 0, sizeof *out);
        out->state = GOVERN_RES_UNGOVERNED;
        out->admitted_ms = now;
        out->est_cost_nusd = est_cost_nusd;
        caps_reserve(caps, est_cost_nusd, out);
        g->st.admits++;
        pthread_mutex_unlock(&g->mu);
        if (rl) memset(rl, 0, sizeof *rl);
        return true;
    }

    for (int lv = 0; lv < LV_N; lv++) {
        if (!lims[lv]) continue;
        ents[lv] = ent_get(g, lv, s->tenant_id, s->user_id, s->key_id, true);
        if (!ents[lv]) lims[lv] = NULL;   /* OOM or no tenant: nothing to count on */
    }

    /* 1. A request larger than a tpm limit can never pass. */
    for (int lv = 0; lv < LV_N; lv++) {
        if (lims[lv] && lims[lv]->tpm > 0 && est_tokens > lims[lv]->tpm) {
            g->st.refused_tokens_exceed++;
            govern_refuse_tokens(why, lv_name[lv], lims[lv]->tpm, est_tokens);
            goto refused;
        }
    }

    /* 2. Budgets: spent in the period + every outstanding reservation + this
     * call's worst case must fit, at every level, for the day and the month. */
    for (int month = 0; month < 2; month++) {
        for (int lv = 0; lv < LV_N; lv++) {
            if (!lims[lv]) continue;
            int64_t budget = month ? lims[lv]->monthly_budget_nusd : lims[lv]->daily_budget_nusd;
            if (budget <= 0) continue;
            govern_ent *e = ents[lv];
            int64_t spent = month ? e->month_spent : e->day_spent;
            /* Written as a difference so a huge estimate cannot overflow. */
            if (est_cost_nusd > budget - spent - e->reserved) {
                if (month) g->st.refused_monthly_budget++;
                else       g->st.refused_daily_budget++;
                govern_refuse_budget(why, lv_name[lv], month, budget, spent, e->reserved,
                                     est_cost_nusd, now, month ? g->month_end : g->day_end);
                goto refused;
            }
        }
    }

    /* 3. Rates: try every bucket; keep the new TATs; on refusal name the
     * longest wait, the one after which every bucket passes. */
    int64_t rpm_tat[LV_N], tpm_tat[LV_N];
    int64_t worst_wait = 0, worst_limit = 0;
    int worst_lv = -1;
    bool worst_tokens = false;
    for (int lv = 0; lv < LV_N; lv++) {
        if (!lims[lv]) continue;
        int64_t wait;
        rpm_tat[lv] = ents[lv]->rpm_tat_ns;
        tpm_tat[lv] = ents[lv]->tpm_tat_ns;
        if (lims[lv]->rpm > 0 &&
            !gcra_try(ents[lv]->rpm_tat_ns, now_ns, 1, lims[lv]->rpm, &rpm_tat[lv], &wait) &&
            wait > worst_wait) {
            worst_wait = wait; worst_lv = lv; worst_tokens = false; worst_limit = lims[lv]->rpm;
        }
        if (lims[lv]->tpm > 0 &&
            !gcra_try(ents[lv]->tpm_tat_ns, now_ns, est_tokens, lims[lv]->tpm, &tpm_tat[lv],
                      &wait) &&
            wait > worst_wait) {
            worst_wait = wait; worst_lv = lv; worst_tokens = true; worst_limit = lims[lv]->tpm;
        }
    }
    if (worst_lv >= 0) {
        if (worst_tokens) g->st.refused_tpm++;
        else              g->st.refused_rpm++;
        govern_refuse_rate(why, lv_name[worst_lv], worst_tokens, worst_limit,
                           ceil_ms(worst_wait));
        goto refused;
    }

    /* 4. Everything passed: apply. */
    memset(out, 0, sizeof *out);
    for (int lv = 0; lv < LV_N; lv++) {
        if (!lims[lv]) continue;
        govern_ent *e = ents[lv];
        e->rpm_tat_ns = rpm_tat[lv];
        e->tpm_tat_ns = tpm_tat[lv];
        e->reserved += est_cost_nusd;
        out->ent[lv] = e;
        out->tpm_interval_ns[lv] = lims[lv]->tpm > 0 ? gcra_interval_ns(lims[lv]->tpm) : 0;
    }
    caps_reserve(caps, est_cost_nusd, out);
    out->state = GOVERN_RES_ACTIVE;
    out->est_tokens = est_tokens;
    out->est_cost_nusd = est_cost_nusd;
    out->admitted_ms = now;
    out->day_start_ms = g->day_start;
    out->month_start_ms = g->month_start;
    g->st.admits++;
    g->st.reserved_nusd += est_cost_nusd;
    if (rl) fill_rate_info(ents, lims, now_ns, rl);
    pthread_mutex_unlock(&g->mu);
    copy_id(out->tenant_id, s->tenant_id);
    copy_id(out->user_id, s->user_id);
    copy_id(out->key_id, s->key_id);
    return true;

refused:
    if (rl) fill_rate_info(ents, lims, now_ns, rl);
    pthread_mutex_unlock(&g->mu);
    return false;
}

/* Settle (charge actual cost and tokens) or release (charge nothing, give
 * the estimated tokens back) a reservation. */
static void govern_finish(govern *g, govern_reservation *r, bool settle,
                          int64_t actual_tokens, int64_t actual_cost)
{
    if (actual_tokens < 0) actual_tokens = 0;
    if (actual_cost < 0) actual_cost = 0;
    pthread_mutex_lock(&g->mu);
    if (r->state != GOVERN_RES_ACTIVE) {
        if (r->state == GOVERN_RES_UNGOVERNED) {
            caps_finish(r, settle, actual_cost);
            r->state = GOVERN_RES_DONE;
            if (settle) g->st.settles++;
            else        g->st.releases++;
        }
        pthread_mutex_unlock(&g->mu);
        return;
    }
    int64_t now_ns = govern_now(g) * NS_PER_MS;
    int64_t dtok = (settle ? actual_tokens : 0) - r->est_tokens;
    for (int lv = 0; lv < LV_N; lv++) {
        govern_ent *e = r->ent[lv];
        if (!e) continue;
        ent_roll(g, e);
        e->reserved -= r->est_cost_nusd;
        if (e->reserved < 0) e->reserved = 0;
        if (settle) {
            e->day_spent += actual_cost;
            e->month_spent += actual_cost;
        }
        int64_t t = r->tpm_interval_ns[lv];
        if (t > 0 && dtok != 0) {
            int64_t d = dtok;
            if (d > GOVERN_MAX_DEBT_NS / t) d = GOVERN_MAX_DEBT_NS / t;
            int64_t base = e->tpm_tat_ns;
            if (d > 0 && base < now_ns) base = now_ns;   /* debt starts from now */
            e->tpm_tat_ns = base + d * t;
            /* Giving back never makes the bucket fuller than full. */
            if (e->tpm_tat_ns < now_ns) e->tpm_tat_ns = now_ns;
        }
    }
    caps_finish(r, settle, actual_cost);
    g->st.reserved_nusd -= r->est_cost_nusd;
    if (settle) g->st.settles++;
    else        g->st.releases++;
    r->state = GOVERN_RES_DONE;
    pthread_mutex_unlock(&g->mu);
}

void govern_settle(govern *g, govern_reservation *r, int64_t actual_tokens,
                   int64_t actual_cost_nusd)
{
    govern_finish(g, r, true, actual_tokens, actual_cost_nusd);
}

void govern_release(govern *g, govern_reservation *r)
{
    govern_finish(g, r, false, 0, 0);
}

void govern_peek_rate(govern *g, const govern_subject *s, govern_ratelimit_info *rl)
{
    const govern_limits *lims[LV_N];
    subject_limits(s, lims);
    govern_ent *ents[LV_N] = { NULL, NULL, NULL };
    pthread_mutex_lock(&g->mu);
    int64_t now_ns = govern_now(g) * NS_PER_MS;
    for (int lv = 0; lv < LV_N; lv++)
        if (lims[lv]) ents[lv] = ent_get(g, lv, s->tenant_id, s->user_id, s->key_id, false);
    fill_rate_info(ents, lims, now_ns, rl);   /* an absent entry is a full bucket */
    pthread_mutex_unlock(&g->mu);
}

bool govern_run_begin(govern *g, const govern_subject *s, govern_refusal *why)
{
    pthread_mutex_lock(&g->mu);
    govern_now(g);
    govern_ent *u = ent_get(g, LV_USER, s->tenant_id, s->user_id, NULL, true);
    govern_ent *t = ent_get(g, LV_TENANT, s->tenant_id, NULL, NULL, true);
    if (g->enabled) {
        if (u && s->user.max_concurrent_runs > 0 && u->runs >= s->user.max_concurrent_runs) {
            govern_refuse_runs(why, "user", s->user.max_concurrent_runs);
            g->st.refused_concurrency++;
            pthread_mutex_unlock(&g->mu);
            return false;
        }
        if (t && s->tenant.max_concurrent_runs > 0 && t->runs >= s->tenant.max_concurrent_runs) {
            govern_refuse_runs(why, "tenant", s->tenant.max_concurrent_runs);
            g->st.refused_concurrency++;
            pthread_mutex_unlock(&g->mu);
            return false;
        }
    }
    if (u) u->runs++;
    if (t) t->runs++;
    g->st.runs_begun++;
    pthread_mutex_unlock(&g->mu);
    return true;
}

void govern_run_end(govern *g, const char *tenant_id, const char *user_id)
{
    pthread_mutex_lock(&g->mu);
    govern_ent *u = ent_get(g, LV_USER, tenant_id, user_id, NULL, false);
    govern_ent *t = ent_get(g, LV_TENANT, tenant_id, NULL, NULL, false);
    /* An unmatched end (the user has none) must not take the tenant's
     * count from another user's run. */
    bool counted = empty(user_id) || (u && u->runs > 0);
    if (u && u->runs > 0) u->runs--;
    if (counted && t && t->runs > 0) t->runs--;
    pthread_mutex_unlock(&g->mu);
}

int64_t govern_active_runs(govern *g, const char *tenant_id, const char *user_id)
{
    pthread_mutex_lock(&g->mu);
    govern_ent *e = empty(user_id) ? ent_get(g, LV_TENANT, tenant_id, NULL, NULL, false)
                                   : ent_get(g, LV_USER, tenant_id, user_id, NULL, false);
    int64_t n = e ? e->runs : 0;
    pthread_mutex_unlock(&g->mu);
    return n;
}

void govern_spend(govern *g, const char *tenant_id, const char *user_id,
                  govern_period *day, govern_period *month)
{
    pthread_mutex_lock(&g->mu);
    govern_now(g);
    govern_ent *e = empty(user_id) ? ent_get(g, LV_TENANT, tenant_id, NULL, NULL, false)
                                   : ent_get(g, LV_USER, tenant_id, user_id, NULL, false);
    if (day) {
        day->spent_nusd = e ? e->day_spent : 0;
        day->reserved_nusd = e ? e->reserved : 0;
        day->start_ms = g->day_start;
        day->end_ms = g->day_end;
    }
    if (month) {
        month->spent_nusd = e ? e->month_spent : 0;
        month->reserved_nusd = e ? e->reserved : 0;
        month->start_ms = g->month_start;
        month->end_ms = g->month_end;
    }
    pthread_mutex_unlock(&g->mu);
}

void govern_stats_get(govern *g, govern_stats *out)
{
    pthread_mutex_lock(&g->mu);
    *out = g->st;
    pthread_mutex_unlock(&g->mu);
}
