/* gate.c — the admission of one model call: limits resolved, budget
 * reserved and rates consumed (govern), then an upstream slot from the fair
 * queue (fairq) within the call's deadline; and the way out (settle or
 * release, slot back). The contract is in gate.h. */
#include "govern/gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/obs.h"
#include "util/log.h"
#include "util/strfmt.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

struct gate {
    const brigade_config *cfg;
    govern *gov;
    fairq  *fq;
    fairq_pool **pools;           /* one per model, in cfg->models order */
    reserve_journal *journal;     /* durable reservations; NULL = none (tests) */
    store  *ledger;               /* whose usage backlog sheds calls; NULL = none (tests) */
    uint64_t shed_rows;           /* past this backlog, calls are refused (gate_set_ledger) */
    govern_redis *redis;          /* governance.backend: redis; NULL = in-process */
    govern_slots *slots;          /* run concurrency in Redis; NULL = in-process */
};

struct gate_thread {
    gate         *g;
    uv_loop_t    *loop;
    fairq_thread *ft;
    govern_redis_conn *rc;        /* this loop's connection to Redis */
};

/* An admission in flight to Redis. Apart from the gate_call so that a call
 * left before Redis answered (gate_leave) can be forgotten: the answer then
 * only releases what it admitted. */
struct gate_redis_wait {
    gate_call       *c;           /* NULL once the call left */
    gate_thread     *t;
    govern_redis_res res;
    govern_subject   s;           /* for the fallback; strings below */
    char             tenant[GOVERN_ID_MAX], user[GOVERN_ID_MAX], key[GOVERN_ID_MAX];
    govern_cap      *caps[GOVERN_CAPS];
    int64_t          est_tokens, est_cost;
};

/* ---- set-up ---- */

void gate_set_journal(gate *g, reserve_journal *j) { g->journal = j; }

void gate_set_ledger(gate *g, store *st, uint64_t shed_rows)
{
    g->ledger = st;
    g->shed_rows = shed_rows;
}

reserve_journal *gate_thread_journal(const gate_thread *t) { return t ? t->g->journal : NULL; }

/* A model's upstream capacity: what its deployments may have in flight
 * together (0 = unlimited, when any deployment is unlimited). */
static uint32_t gate_model_capacity(const model_cfg *m)
{
    if (m->n_deployments == 0)
        return m->provider ? m->provider->max_concurrent : 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < m->n_deployments; i++) {
        uint32_t c = m->deployments[i].max_concurrent;
        if (c == 0) return 0;
        sum += c;
    }
    return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

gate *gate_new(const brigade_config *cfg, govern_clock_fn clock, void *clock_arg)
{
    gate *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->cfg = cfg;
    g->gov = govern_new(clock, clock_arg);
    g->fq = fairq_new(NULL, NULL, cfg->governance.queue_per_user, cfg->governance.queue_global);
    g->pools = calloc(cfg->n_models ? cfg->n_models : 1, sizeof *g->pools);
    if (!g->gov || !g->fq || !g->pools) {
        gate_free(g);
        return NULL;
    }
    govern_set_enabled(g->gov, cfg->governance.enabled);
    if (cfg->governance.backend == GOVERN_BACKEND_REDIS && cfg->governance.enabled) {
        g->redis = govern_redis_new(&cfg->governance.redis, NULL);
        g->slots = govern_slots_new(&cfg->governance.redis, 0);
        if (!g->redis || !g->slots) {
            gate_free(g);
            return NULL;
        }
    }
    for (size_t i = 0; i < cfg->n_models; i++) {
        g->pools[i] = fairq_pool_new(g->fq, cfg->models[i].name, gate_model_capacity(&cfg->models[i]));
        if (!g->pools[i]) {
            gate_free(g);
            return NULL;
        }
    }
    return g;
}

void gate_free(gate *g)
{
    if (!g) return;
    if (g->fq) fairq_free(g->fq);
    if (g->gov) govern_free(g->gov);
    govern_redis_free(g->redis);
    govern_slots_free(g->slots);
    free(g->pools);
    free(g);
}

govern *gate_govern(gate *g) { return g->gov; }
fairq  *gate_fairq(gate *g) { return g->fq; }

gate_thread *gate_thread_new(gate *g, uv_loop_t *loop)
{
    gate_thread *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->g = g;
    t->loop = loop;
    t->ft = fairq_thread_new(g->fq, loop);
    if (!t->ft) {
        free(t);
        return NULL;
    }
    if (g->redis && !(t->rc = govern_redis_conn_new(g->redis, loop))) {
        fairq_thread_close(t->ft);
        free(t);
        return NULL;
    }
    return t;
}

void gate_thread_close(gate_thread *t)
{
    if (!t) return;
    govern_redis_conn_close(t->rc);
    fairq_thread_close(t->ft);
    free(t);
}

static void gate_ledger_row(const char *tenant_id, const char *user_id, const char *key_id,
                            int64_t ts, int64_t cost_nusd, void *arg)
{
    govern_ledger_add(arg, tenant_id, user_id, key_id, ts, cost_nusd);
}

int gate_load_ledger(gate *g, store *st, char *err, size_t errlen)
{
    /* The current month holds every period a budget can look at. */
    if (g->redis) govern_redis_set_store(g->redis, st);
    int64_t from = govern_month_start(time_now_unix_ms()) / 1000;
    store_status s = store_usage_ledger(st, from, gate_ledger_row, g->gov);
    if (s != STORE_OK) {
        snprintf(err, errlen, "could not read the usage ledger (%s)", store_status_text(s));
        return -1;
    }
    return 0;
}

void gate_charge_recovered(gate *g, const usage_rec *row)
{
    if (g->redis)
        govern_redis_charge(g->redis, row->tenant_id, row->user_id, row->key_id, row->cost_nusd);
}

/* ---- limits ---- */

static const tier_cfg *gate_tier(const gate *g, const char *tier)
{
    const tier_cfg *t = tier ? config_find_tier(g->cfg, tier) : NULL;
    /* A tier the configuration no longer has is the default tier, never
     * "unlimited". */
    if (!t) t = config_find_tier(g->cfg, g->cfg->default_tier);
    return t;
}

static int64_t gate_usd_to_nusd(double usd)
{
    return usd <= 0 ? 0 : (int64_t)(usd * (double)GOVERN_NUSD_PER_USD + 0.5);
}

/* Override (>= 0) over the configured value. */
static void gate_limits(govern_limits *out, const tier_cfg *base, const user_limits *over)
{
    static const user_limits unset = {-1, -1, -1, -1, -1};
    static const tier_cfg none = {0};
    if (!over) over = &unset;
    if (!base) base = &none;
    out->rpm = over->rpm >= 0 ? over->rpm : base->rpm;
    out->tpm = over->tpm >= 0 ? over->tpm : base->tpm;
    out->max_concurrent_runs = over->max_concurrent_runs >= 0 ? over->max_concurrent_runs
                                                              : base->max_concurrent_runs;
    out->daily_budget_nusd = over->daily_budget_nusd >= 0 ? over->daily_budget_nusd
                                                          : gate_usd_to_nusd(base->daily_budget_usd);
    out->monthly_budget_nusd = over->monthly_budget_nusd >= 0
                                   ? over->monthly_budget_nusd
                                   : gate_usd_to_nusd(base->monthly_budget_usd);
}

void gate_subject(const gate *g, const gate_who *who, govern_subject *out)
{
    memset(out, 0, sizeof *out);
    out->tenant_id = who->tenant_id;
    out->user_id = who->user_id;
    out->key_id = who->key_id;
    gate_limits(&out->tenant, &g->cfg->governance.tenant_limits, who->tenant);
    if (who->user_id && who->user_id[0]) gate_limits(&out->user, gate_tier(g, who->tier), who->user);
    gate_limits(&out->key, NULL, who->key);
    out->key.max_concurrent_runs = 0;
}

uint32_t gate_weight(const gate *g, const char *tier)
{
    const tier_cfg *t = gate_tier(g, tier);
    return t && t->weight ? t->weight : 1;
}

void gate_estimate(const model_cfg *model, size_t prompt_bytes, uint64_t max_output,
                   int64_t *tokens, int64_t *cost_nusd)
{
    int64_t in = (int64_t)((prompt_bytes + 2) / 3) + 16;
    int64_t out = max_output ? (int64_t)max_output : (int64_t)model->max_output_tokens;
    *tokens = in + out;
    int64_t worst = config_cost_nusd(model, in, out);
    for (size_t i = 0; i < model->n_fallbacks && model->fallback_models; i++) {
        const model_cfg *f = model->fallback_models[i];
        if (!f) continue;
        int64_t c = config_cost_nusd(f, in, out);
        if (c > worst) worst = c;
    }
    *cost_nusd = worst;
}

/* ---- refusals ---- */

void gate_refusal_from_govern(gate_refusal *out, const govern_refusal *why)
{
    memset(out, 0, sizeof *out);
    out->status = why->status;
    snprintf(out->type, sizeof out->type, "%s", why->type);
    snprintf(out->code, sizeof out->code, "%s", why->code);
    snprintf(out->limit, sizeof out->limit, "%s", why->limit);
    snprintf(out->message, sizeof out->message, "%s", why->message);
    out->retry_after_s = why->retry_after_s;
}

bool gate_refusal_is_cost_cap(const gate_refusal *why)
{
    return strcmp(why->limit, "run.max_cost") == 0 || strcmp(why->limit, "session.max_cost") == 0;
}

/* What every refusal of the gate's own sets; the caller writes the message. */
static void gate_refusal_head(gate_refusal *out, int status, const char *type, const char *code,
                              const char *limit, uint32_t retry_after_s)
{
    memset(out, 0, sizeof *out);
    out->status = status;
    snprintf(out->type, sizeof out->type, "%s", type);
    snprintf(out->code, sizeof out->code, "%s", code);
    snprintf(out->limit, sizeof out->limit, "%s", limit);
    out->retry_after_s = retry_after_s;
}

static void gate_refuse_queue(gate_refusal *out, const char *model, uint32_t retry_after_s)
{
    gate_refusal_head(out, 503, "overloaded_error", "queue_full", "queue",
                      retry_after_s ? retry_after_s : 1);
    snprintf(out->message, sizeof out->message,
             "too many requests are waiting for model \"%s\"; retry after %u s", model,
             retry_after_s);
}

/* With the writer behind (backlog rows waiting, at least shed_rows), is
 * this tenant's call shed? Yes if the tenant holds an even share of the
 * rows waiting or more: the tenants that made the backlog are refused,
 * and the others, whose calls add little to it, are not (gate.h). */
static bool gate_ledger_sheds(const gate *g, const char *tenant_id, uint64_t backlog)
{
    if (backlog >= g->shed_rows + g->shed_rows / 2) return true;
    size_t tenants = 0;
    uint64_t mine = store_usage_backlog_of(g->ledger, tenant_id, &tenants);
    return tenants == 0 || mine * tenants >= backlog;
}

/* The store's writer is behind (store_usage_backlog): a call admitted now
 * would add a usage row to a queue that is already long, and one that is
 * full drops rows. Shed load instead, as any bounded queue does (invariant
 * 4): the refusal costs the loop almost nothing, which leaves the CPU to
 * the writer, and the client retries a second later. */
static void gate_refuse_ledger(gate_refusal *out, uint64_t backlog)
{
    gate_refusal_head(out, 503, "overloaded_error", "ledger_behind", "store.usage_queue", 1);
    snprintf(out->message, sizeof out->message,
             "the server is overloaded: %llu usage records are waiting to be written; retry after 1 s",
             (unsigned long long)backlog);
}

static void gate_refuse_deadline(gate_refusal *out, int64_t waited_ms)
{
    gate_refusal_head(out, 504, "timeout_error", "queue_timeout", "deadline", 1);
    snprintf(out->message, sizeof out->message,
             "the request's deadline passed after %lld ms waiting for an upstream slot",
             (long long)waited_ms);
}

/* /metrics: refusals by tenant and reason (rate_limit, concurrency,
 * budget, overload, deadline). */
static void gate_count_refusal(const char *tenant_id, const gate_refusal *why)
{
    /* The agent's own cost caps are not the operator's governance: a run
     * ended by its cap is a failed run, not a refusal (as before they were
     * reserved here). */
    if (gate_refusal_is_cost_cap(why)) return;
    const char *reason = "rate_limit";
    if (strcmp(why->type, "insufficient_quota") == 0) reason = "budget";
    else if (strcmp(why->type, "overloaded_error") == 0) reason = "overload";
    else if (strcmp(why->type, "timeout_error") == 0) reason = "deadline";
    else if (strcmp(why->code, "concurrency_limit") == 0) reason = "concurrency";
    obs_counter_add(obs_series_of(obs_m_refusals(), OBS_L(tenant_id && tenant_id[0] ? tenant_id : "-", reason)), 1);
}

/* ---- enter and leave ---- */

static fairq_pool *gate_pool(gate *g, const model_cfg *model)
{
    size_t i = (size_t)(model - g->cfg->models);
    if (model >= g->cfg->models && i < g->cfg->n_models) return g->pools[i];
    return fairq_pool_find(g->fq, model->name);
}

static void gate_release_all(gate_call *c);

static void gate_timer_closed(uv_handle_t *h) { free(h); }

static void gate_stop_timer(gate_call *c)
{
    if (!c->deadline_timer) return;
    uv_timer_stop(c->deadline_timer);
    uv_close((uv_handle_t *)c->deadline_timer, gate_timer_closed);
    c->deadline_timer = NULL;
}

static void gate_granted(fairq_waiter *w, void *arg)
{
    gate_call *c = arg;
    (void)w;
    gate_stop_timer(c);
    c->queued = false;
    c->holding_slot = true;
    c->queue_wait_ms = c->waiter.waited_ms;
    c->ready(c, c->arg);
}

static void gate_deadline_fire(uv_timer_t *timer)
{
    gate_call *c = timer->data;
    gate_stop_timer(c);
    if (!c->queued) return;
    if (!fairq_cancel(&c->waiter)) return;     /* cannot happen: a delivered grant unset queued */
    c->queued = false;
    /* fairq's clock (NULL at gate_new) is CLOCK_MONOTONIC in ms */
    int64_t waited = (int64_t)(time_mono_ns() / 1000000) - c->waiter.enqueued_ms;
    gate_release_all(c);
    gate_refusal why;
    gate_refuse_deadline(&why, waited < 0 ? 0 : waited);
    gate_count_refusal(c->reservation.tenant_id, &why);
    c->refused(c, &why, c->arg);
}

int gate_enter(gate_thread *t, gate_call *c, const gate_who *who, const model_cfg *model,
               int64_t est_tokens, int64_t est_cost_nusd, uint64_t deadline_ms,
               void (*ready)(gate_call *, void *), void (*refused)(gate_call *, const gate_refusal *, void *),
               void *arg, gate_refusal *why)
{
    return gate_enter_capped(t, c, who, NULL, model, est_tokens, est_cost_nusd, deadline_ms, ready,
                             refused, arg, why);
}

/* After the budgets and rates passed: a slot of the model's capacity. */
static int gate_queue(gate_thread *t, gate_call *c, const char *tenant_id, const char *user_id,
                      gate_refusal *why);
static int gate_enter_redis(gate_thread *t, gate_call *c, const govern_subject *s,
                            govern_cap *const caps[GOVERN_CAPS], int64_t est_tokens,
                            int64_t est_cost_nusd, gate_refusal *why);

int gate_enter_capped(gate_thread *t, gate_call *c, const gate_who *who,
                      govern_cap *const caps[GOVERN_CAPS], const model_cfg *model,
                      int64_t est_tokens, int64_t est_cost_nusd, uint64_t deadline_ms,
                      void (*ready)(gate_call *, void *),
                      void (*refused)(gate_call *, const gate_refusal *, void *), void *arg,
                      gate_refusal *why)
{
    memset(c, 0, sizeof *c);
    c->t = t;
    c->ready = ready;
    c->refused = refused;
    c->arg = arg;
    gate *g = t->g;
    c->model = model;
    c->deadline_ms = deadline_ms;
    c->weight = gate_weight(g, who->tier);
    if (g->ledger) {
        uint64_t backlog = store_usage_backlog(g->ledger);
        if (backlog >= g->shed_rows && gate_ledger_sheds(g, who->tenant_id, backlog)) {
            gate_refuse_ledger(why, backlog);
            gate_count_refusal(who->tenant_id, why);
            return GATE_REFUSED;
        }
    }
    govern_subject s;
    gate_subject(g, who, &s);
    if (g->redis && t->rc) return gate_enter_redis(t, c, &s, caps, est_tokens, est_cost_nusd, why);
    govern_refusal gr;
    if (!govern_admit_capped(g->gov, &s, caps, est_tokens, est_cost_nusd, &c->reservation, &gr,
                             &c->ratelimit)) {
        gate_refusal_from_govern(why, &gr);
        gate_count_refusal(who->tenant_id, why);
        return GATE_REFUSED;
    }
    c->entered = true;
    return gate_queue(t, c, who->tenant_id, who->user_id, why);
}

/* Settle (delivered) or release the call's Redis reservation, if any. */
static void gate_redis_finish(gate_call *c, govern_redis_conn *rc, bool delivered,
                              int64_t actual_tokens, int64_t actual_cost_nusd)
{
    if (!c->rres) return;
    if (c->rres->active) {
        if (delivered) govern_redis_settle(rc, c->rres, actual_tokens, actual_cost_nusd);
        else govern_redis_release(rc, c->rres);
    }
    free(c->rres);
    c->rres = NULL;
}

/* Give back everything the call holds in govern (in-process and Redis). */
static void gate_release_all(gate_call *c)
{
    govern_release(c->t->g->gov, &c->reservation);
    gate_redis_finish(c, c->t->rc, false, 0, 0);
}

static int gate_queue(gate_thread *t, gate_call *c, const char *tenant_id, const char *user_id,
                      gate_refusal *why)
{
    gate *g = t->g;
    c->pool = gate_pool(g, c->model);
    if (!c->pool) return GATE_READY;
    str_join2(c->user_key, sizeof c->user_key, tenant_id, '/', user_id && user_id[0] ? user_id : "-");
    uint32_t retry_after = 0;
    int r = fairq_acquire(t->ft, c->pool, c->user_key, c->weight, &c->waiter,
                          gate_granted, c, &retry_after);
    if (r == FAIRQ_GRANTED) {
        c->holding_slot = true;
        return GATE_READY;
    }
    if (r == FAIRQ_FULL) {
        gate_release_all(c);
        c->pool = NULL;
        gate_refuse_queue(why, c->model->name, retry_after);
        gate_count_refusal(tenant_id, why);
        return GATE_REFUSED;
    }
    c->queued = true;
    if (c->deadline_ms) {
        uint64_t now = uv_now(t->loop);
        c->deadline_timer = xmalloc(sizeof *c->deadline_timer);
        uv_timer_init(t->loop, c->deadline_timer);
        c->deadline_timer->data = c;
        uv_timer_start(c->deadline_timer, gate_deadline_fire,
                       c->deadline_ms > now ? c->deadline_ms - now : 0, 0);
    }
    return GATE_WAIT;
}

/* ---- the Redis backend ---- */

/* The rest of an admission once Redis answered (or could not). */
static void gate_redis_answer(int result, const govern_refusal *gwhy,
                              const govern_ratelimit_info *rl, void *arg)
{
    gate_redis_wait *w = arg;
    gate_call *c = w->c;
    if (!c) {                          /* the call left meanwhile */
        if (result == GOVERN_REDIS_ADMITTED) govern_redis_release(w->t->rc, &w->res);
        free(w);
        return;
    }
    c->rwait = NULL;
    gate *g = w->t->g;
    gate_refusal why;
    govern_refusal gr;
    /* The agent's cost caps are the process's own: reserved here, with
     * every budget and rate zero (Redis holds those) — or, Redis being
     * away, with the fallback's per-instance share of the rates. */
    govern_subject local = {.tenant_id = w->s.tenant_id, .user_id = w->s.user_id,
                            .key_id = w->s.key_id};
    bool ok = true;
    if (result == GOVERN_REDIS_REFUSED) {
        gate_refusal_from_govern(&why, gwhy);
        ok = false;
    } else if (result == GOVERN_REDIS_UNAVAILABLE) {
        if (govern_redis_fallback_refuses(&g->cfg->governance.redis, &w->s, &gr)) {
            gate_refusal_from_govern(&why, &gr);
            ok = false;
        } else
            govern_redis_fallback(&g->cfg->governance.redis, &w->s, &local);
    } else {
        c->rres = xmalloc(sizeof *c->rres);
        *c->rres = w->res;
        if (rl) c->ratelimit = *rl;
    }
    if (ok && !govern_admit_capped(g->gov, &local, w->caps, w->est_tokens, w->est_cost,
                                   &c->reservation, &gr,
                                   result == GOVERN_REDIS_ADMITTED ? NULL : &c->ratelimit)) {
        gate_refusal_from_govern(&why, &gr);
        ok = false;
    }
    if (ok) {
        int r = gate_queue(w->t, c, w->tenant, w->user, &why);
        free(w);
        if (r == GATE_READY) c->ready(c, c->arg);
        else if (r == GATE_REFUSED) {
            c->entered = false;
            c->refused(c, &why, c->arg);
        }
        return;
    }
    gate_redis_finish(c, w->t->rc, false, 0, 0);
    gate_count_refusal(w->tenant, &why);
    c->entered = false;
    free(w);
    c->refused(c, &why, c->arg);
}

static int gate_enter_redis(gate_thread *t, gate_call *c, const govern_subject *s,
                            govern_cap *const caps[GOVERN_CAPS], int64_t est_tokens,
                            int64_t est_cost_nusd, gate_refusal *why)
{
    gate_redis_wait *w = calloc(1, sizeof *w);
    if (!w) {
        gate_refusal_head(why, 503, "overloaded_error", "out_of_memory", "governance", 1);
        snprintf(why->message, sizeof why->message, "out of memory; retry");
        return GATE_REFUSED;
    }
    w->c = c;
    w->t = t;
    w->s = *s;
    snprintf(w->tenant, sizeof w->tenant, "%s", s->tenant_id ? s->tenant_id : "");
    snprintf(w->user, sizeof w->user, "%s", s->user_id ? s->user_id : "");
    snprintf(w->key, sizeof w->key, "%s", s->key_id ? s->key_id : "");
    w->s.tenant_id = w->tenant;
    w->s.user_id = w->user;
    w->s.key_id = w->key;
    for (int i = 0; i < GOVERN_CAPS; i++) w->caps[i] = caps ? caps[i] : NULL;
    w->est_tokens = est_tokens;
    w->est_cost = est_cost_nusd;
    c->rwait = w;
    c->entered = true;
    govern_redis_admit(t->rc, &w->s, est_tokens, est_cost_nusd, &w->res, gate_redis_answer, w);
    return GATE_WAIT;
}

bool gate_redis_stats(gate *g, govern_redis_stats *out)
{
    if (!g->redis) return false;
    govern_redis_stats_get(g->redis, out);
    return true;
}

bool gate_ready(gate *g, const char **why)
{
    *why = "ok";
    if (!g->redis) return true;
    govern_redis_stats st;
    govern_redis_stats_get(g->redis, &st);
    if (!st.connected) *why = "redis_unreachable";
    else if (!st.generation_ok) *why = "redis_rebuilding";
    else return true;
    /* fail_open keeps serving (budgets unchecked): degraded, not unready. */
    return g->cfg->governance.redis.fail_open;
}

void gate_leave(gate_call *c, bool delivered, int64_t actual_tokens, int64_t actual_cost_nusd)
{
    if (!c->entered) return;
    c->entered = false;
    gate *g = c->t->g;
    if (c->rwait) {                    /* Redis has not answered yet */
        c->rwait->c = NULL;
        c->rwait = NULL;
        return;
    }
    gate_stop_timer(c);
    if (c->queued) {
        c->queued = false;
        /* false: the grant was delivered already — then we own the slot */
        if (!fairq_cancel(&c->waiter)) c->holding_slot = true;
    }
    if (c->holding_slot) {
        c->holding_slot = false;
        fairq_release(c->pool);
    }
    if (delivered) govern_settle(g->gov, &c->reservation, actual_tokens, actual_cost_nusd);
    else govern_release(g->gov, &c->reservation);
    gate_redis_finish(c, c->t->rc, delivered, actual_tokens, actual_cost_nusd);
}

/* ---- runs and degradation ---- */

static bool gate_run_take(gate *g, const gate_who *who, govern_slot *slot, gate_refusal *why, bool over_limit)
{
    govern_subject s;
    gate_subject(g, who, &s);
    /* limits of 0 count the run without refusing it, in Redis as here */
    if (over_limit) s.user.max_concurrent_runs = s.tenant.max_concurrent_runs = 0;
    slot->node = NULL;
    govern_refusal gr;
    if (g->slots) {
        int rc = govern_slots_acquire(g->slots, &s, slot, &gr);
        if (rc == GOVERN_SLOTS_REFUSED) {
            gate_refusal_from_govern(why, &gr);
            gate_count_refusal(who->tenant_id, why);
            return false;
        }
        govern_subject local;
        if (rc == GOVERN_SLOTS_OK) {
            /* Redis decided: the local count is only this instance's view */
            local = s;
            local.user.max_concurrent_runs = local.tenant.max_concurrent_runs = 0;
        } else {
            govern_slots_fallback(&g->cfg->governance.redis, &s, &local);
            if (over_limit) local.user.max_concurrent_runs = local.tenant.max_concurrent_runs = 0;
        }
        if (govern_run_begin(g->gov, &local, &gr)) return true;
        govern_slots_release(g->slots, slot);
        gate_refusal_from_govern(why, &gr);
        gate_count_refusal(who->tenant_id, why);
        return false;
    }
    if (govern_run_begin(g->gov, &s, &gr)) return true;
    gate_refusal_from_govern(why, &gr);
    gate_count_refusal(who->tenant_id, why);
    return false;
}

bool gate_run_begin(gate *g, const gate_who *who, govern_slot *slot, gate_refusal *why)
{
    return gate_run_take(g, who, slot, why, false);
}

void gate_run_begin_over(gate *g, const gate_who *who, govern_slot *slot)
{
    gate_refusal ignored;
    (void)gate_run_take(g, who, slot, &ignored, true);
}

void gate_run_end(gate *g, const char *tenant_id, const char *user_id, govern_slot *slot)
{
    govern_run_end(g->gov, tenant_id, user_id);
    if (g->slots && slot) govern_slots_release(g->slots, slot);
}

bool gate_slots_stats(gate *g, govern_slots_stats *out)
{
    if (!g->slots) return false;
    govern_slots_stats_get(g->slots, out);
    return true;
}

bool gate_budget_nearly_spent(gate *g, const gate_who *who, double fraction)
{
    if (!who->user_id || !who->user_id[0]) return false;
    govern_subject s;
    gate_subject(g, who, &s);
    govern_period day, month;
    govern_spend(g->gov, who->tenant_id, who->user_id, &day, &month);
    if (s.user.daily_budget_nusd > 0 &&
        (double)(day.spent_nusd + day.reserved_nusd) >= fraction * (double)s.user.daily_budget_nusd)
        return true;
    if (s.user.monthly_budget_nusd > 0 &&
        (double)(month.spent_nusd + month.reserved_nusd) >=
            fraction * (double)s.user.monthly_budget_nusd)
        return true;
    return false;
}
