/* govern_redis.c — the Redis governance backend: connections on the loop
 * threads (hiredis async + its libuv adapter), the scripts sent by SHA with
 * a fallback to their text, admission timeouts, reconnection, and the
 * rebuild of spend from the ledger when Redis lost its data. The contract
 * is in govern_redis.h, the scripts' semantics in redis_scripts.c. */
#include "govern/govern_redis.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "govern/govern_internal.h"
#include "govern/redis_scripts.h"
#include "util/log.h"
#include "util/strmap.h"
#include "util/timeutil.h"

enum { SC_ADMIT, SC_SETTLE, SC_SEED, SC_RESTORE, SC__N };
static const char *const gr_script_text[SC__N] = {GR_LUA_ADMIT, GR_LUA_SETTLE, GR_LUA_SEED,
                                                  GR_LUA_RESTORE};

/* A reservation this process holds in Redis (active), or a settle Redis
 * has not acknowledged yet (pending: cost and token delta to send). */
typedef struct gr_node {
    struct gr_node  *prev, *next;
    govern_redis_res res;
    int64_t          cost, delta;
} gr_node;

typedef struct gr_list { gr_node head; } gr_list;

struct govern_redis {
    governance_redis_cfg cfg;          /* strings owned below */
    pthread_mutex_t mu;                /* the two lists */
    gr_list      active, pending;
    char        *host, *prefix;
    store       *st;
    char         sha[SC__N][41];
    char         instance[17];         /* random, names this process's reservations */
    atomic_uint_fast64_t seq;
    atomic_bool  seeding;
    atomic_int   conns_up;
    atomic_bool  gen_ok;
    atomic_uint_fast64_t admits, refusals, unavailable, reseeds, reconnects, noscript;
};

struct govern_redis_conn {
    govern_redis      *r;
    uv_loop_t         *loop;
    redisAsyncContext *ac;             /* NULL while disconnected */
    bool               up, closing;
    bool               warned;         /* this outage is logged already */
    uv_timer_t         retry;          /* reconnection */
    uv_timer_t         watch;          /* connect deadline and liveness (gr_watch) */
    uint64_t           connect_ms;     /* when the current attempt began */
    uint64_t           ping_sent_ms;   /* 0: no liveness PING unanswered */
    uint64_t           last_ping_ms;   /* when the last one was sent */
    int                open_handles;   /* retry and watch, until both closed */
};

/* hiredis 0.14's libuv adapter drops poll errors: a connect refused by a
 * Redis that is still down never calls back, and a connection that breaks
 * while a write is pending is never reported. Without a watch, one such
 * attempt ends reconnection for good and budgets fail closed until a
 * restart. So: an attempt not up within GR_CONNECT_TIMEOUT_MS is abandoned
 * and made again, and an up connection is sent a PING every GR_PING_MS; one
 * unanswered for GR_PING_TIMEOUT_MS is dropped and made again. */
#define GR_WATCH_MS        250
#define GR_CONNECT_TIMEOUT_MS 1000
#define GR_PING_MS         1000
#define GR_PING_TIMEOUT_MS 2000

/* One command in flight: its arguments are kept so that a NOSCRIPT reply
 * can be answered by sending the script's text. */
typedef struct gr_cmd {
    govern_redis_conn *c;
    int        script;
    int        argc;
    char     **argv;
    size_t    *argvlen;
    bool       retried;
    /* an admission */
    govern_redis_res     *res;         /* the caller's, valid until answered */
    govern_redis_res      own;         /* a copy, to release a late admission */
    govern_redis_admit_cb cb;
    void                 *arg;
    uv_timer_t           *timer;       /* the admission's timeout */
    bool                  answered;    /* cb ran (reply or timeout) */
    int                   refs;        /* the reply and the timer */
    int64_t               est_cost, est_tokens;
    gr_node              *node;        /* a settle's record until acknowledged */
    struct gr_seed       *seed;        /* a rebuild's, until answered */
} gr_cmd;

/* ---- the lists (under r->mu) ---- */

static void gr_list_init(gr_list *l) { l->head.prev = l->head.next = &l->head; }

static void gr_list_add(gr_list *l, gr_node *n)
{
    n->next = &l->head;
    n->prev = l->head.prev;
    l->head.prev->next = n;
    l->head.prev = n;
}

static void gr_list_del(gr_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* Move every node of from to the end of to, by relinking its two ends.
 * (Not node by node: GCC 12 at -O2 compiled that loop, gr_list_del then
 * gr_list_add until from was empty, into one that never re-read from's
 * head, and a rebuild abandoned with a settle in it spun forever — seen in
 * test_govern_redis's release build.) */
static void gr_list_splice(gr_list *to, gr_list *from)
{
    gr_node *first = from->head.next, *last = from->head.prev;
    if (first == &from->head) return;
    first->prev = to->head.prev;
    to->head.prev->next = first;
    last->next = &to->head;
    to->head.prev = last;
    gr_list_init(from);
}

/* ---- small helpers ---- */

static void gr_sha1_hex(const char *text, char out[41])
{
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)text, strlen(text), d);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static bool gr_present(const char *s) { return s && *s; }

bool govern_redis_level_id(const govern_subject *s, int level, char out[GOVERN_REDIS_LEVEL_MAX])
{
    /* Ids are length-prefixed so that no two subjects share a key whatever
     * characters their ids hold. */
    const char *t = s->tenant_id ? s->tenant_id : "";
    int n = -1;
    if (level == 0 && gr_present(s->user_id))
        n = snprintf(out, GOVERN_REDIS_LEVEL_MAX, "u:%zu:%s:%s", strlen(t), t, s->user_id);
    else if (level == 1 && gr_present(s->key_id)) {
        if (strcmp(s->key_id, "jwt") == 0)   /* a user's JWT session: per user */
            n = snprintf(out, GOVERN_REDIS_LEVEL_MAX, "j:%zu:%s:%s", strlen(t), t,
                         s->user_id ? s->user_id : "");
        else
            n = snprintf(out, GOVERN_REDIS_LEVEL_MAX, "k:%zu:%s:%s", strlen(t), t, s->key_id);
    } else if (level == 2)
        n = snprintf(out, GOVERN_REDIS_LEVEL_MAX, "t:%s", t);
    return n > 0 && n < GOVERN_REDIS_LEVEL_MAX;
}

static const govern_limits *gr_limits(const govern_subject *s, int level)
{
    return level == 0 ? &s->user : level == 1 ? &s->key : &s->tenant;
}

static const char *gr_level_name(int level)
{
    return level == 0 ? "user" : level == 1 ? "key" : "tenant";
}

/* ---- commands ---- */

static gr_cmd *gr_cmd_new(govern_redis_conn *c, int script, int argc)
{
    gr_cmd *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->c = c;
    m->script = script;
    m->argv = calloc((size_t)argc, sizeof *m->argv);
    m->argvlen = calloc((size_t)argc, sizeof *m->argvlen);
    if (!m->argv || !m->argvlen) {
        free(m->argv);
        free(m->argvlen);
        free(m);
        return NULL;
    }
    return m;
}

static void gr_cmd_set(gr_cmd *m, const char *v)
{
    m->argv[m->argc] = strdup(v ? v : "");
    m->argvlen[m->argc] = m->argv[m->argc] ? strlen(m->argv[m->argc]) : 0;
    m->argc++;
}

static void gr_cmd_setf(gr_cmd *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gr_cmd_setf(gr_cmd *m, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    gr_cmd_set(m, buf);
}

static bool gr_cmd_ok(const gr_cmd *m)
{
    for (int i = 0; i < m->argc; i++)
        if (!m->argv[i]) return false;
    return true;
}

static void gr_cmd_free(gr_cmd *m)
{
    for (int i = 0; i < m->argc; i++) free(m->argv[i]);
    free(m->argv);
    free(m->argvlen);
    free(m);
}

static void gr_reply(redisAsyncContext *ac, void *reply, void *priv);

/* argv[0] is "EVALSHA" and argv[1] the SHA; after NOSCRIPT they become
 * "EVAL" and the text. */
static bool gr_send(gr_cmd *m)
{
    govern_redis_conn *c = m->c;
    if (!c->ac || !c->up) return false;
    return redisAsyncCommandArgv(c->ac, gr_reply, m, m->argc, (const char **)m->argv,
                                 m->argvlen) == REDIS_OK;
}

static void gr_unref(gr_cmd *m)
{
    if (--m->refs == 0) gr_cmd_free(m);
}

static void gr_timer_closed(uv_handle_t *h)
{
    gr_cmd *m = h->data;
    free(h);
    gr_unref(m);
}

static void gr_stop_timer(gr_cmd *m)
{
    if (m->timer) {
        uv_timer_stop(m->timer);
        uv_close((uv_handle_t *)m->timer, gr_timer_closed);
        m->timer = NULL;
    }
}

static void gr_answer(gr_cmd *m, int result, const govern_refusal *why,
                      const govern_ratelimit_info *rl)
{
    if (m->answered || !m->cb) return;
    m->answered = true;
    govern_redis *r = m->c->r;
    if (result == GOVERN_REDIS_ADMITTED) atomic_fetch_add(&r->admits, 1);
    else if (result == GOVERN_REDIS_REFUSED) atomic_fetch_add(&r->refusals, 1);
    else atomic_fetch_add(&r->unavailable, 1);
    m->cb(result, why, rl, m->arg);
}

static void gr_start_seed(govern_redis_conn *c);
struct gr_seed;
static void gr_seed_done(gr_cmd *m, const redisReply *rp);
static void gr_flush_pending(govern_redis_conn *c);

static int64_t gr_int(const redisReply *e)
{
    if (!e) return 0;
    if (e->type == REDIS_REPLY_INTEGER) return e->integer;
    if (e->type == REDIS_REPLY_STRING) return strtoll(e->str, NULL, 10);
    return 0;
}

/* The admission's reply into a result for the caller. */
static void gr_admit_reply(gr_cmd *m, const redisReply *rp)
{
    govern_redis *r = m->c->r;
    if (!rp || rp->type != REDIS_REPLY_ARRAY || rp->elements < 1 ||
        rp->element[0]->type != REDIS_REPLY_STRING) {
        if (rp && rp->type == REDIS_REPLY_ERROR)
            log_warn("governance: redis admission failed: %s", rp->str);
        gr_answer(m, GOVERN_REDIS_UNAVAILABLE, NULL, NULL);
        return;
    }
    const char *tag = rp->element[0]->str;
    if (strcmp(tag, "nogen") == 0) {
        /* Redis lost its data: nothing may be admitted against it until
         * the spend is rebuilt from the ledger. */
        atomic_store(&r->gen_ok, false);
        gr_start_seed(m->c);
        gr_answer(m, GOVERN_REDIS_UNAVAILABLE, NULL, NULL);
        return;
    }
    atomic_store(&r->gen_ok, true);
    if (strcmp(tag, "refused") == 0 && rp->elements >= 8) {
        govern_refusal why;
        memset(&why, 0, sizeof why);
        const char *what = rp->element[1]->str ? rp->element[1]->str : "";
        const char *lvl = rp->element[2]->str ? rp->element[2]->str : "user";
        int64_t lim = gr_int(rp->element[3]), spent = gr_int(rp->element[4]);
        int64_t res = gr_int(rp->element[5]), wait = gr_int(rp->element[6]);
        int64_t now = gr_int(rp->element[7]);
        if (strcmp(what, "tokens") == 0)
            govern_refuse_tokens(&why, lvl, lim, m->est_tokens);
        else if (strcmp(what, "daily") == 0)
            govern_refuse_budget(&why, lvl, false, lim, spent, res, m->est_cost, now,
                                 govern_day_start(now) + 86400000);
        else if (strcmp(what, "monthly") == 0)
            govern_refuse_budget(&why, lvl, true, lim, spent, res, m->est_cost, now,
                                 govern_month_end(now));
        else
            govern_refuse_rate(&why, lvl, strcmp(what, "tpm") == 0, lim, wait);
        gr_answer(m, GOVERN_REDIS_REFUSED, &why, NULL);
        return;
    }
    if (strcmp(tag, "ok") == 0 && rp->elements >= 10) {
        govern_ratelimit_info rl;
        memset(&rl, 0, sizeof rl);
        rl.has_requests = gr_int(rp->element[2]) != 0;
        rl.limit_requests = gr_int(rp->element[3]);
        rl.remaining_requests = gr_int(rp->element[4]);
        rl.reset_requests_ms = gr_int(rp->element[5]);
        rl.has_tokens = gr_int(rp->element[6]) != 0;
        rl.limit_tokens = gr_int(rp->element[7]);
        rl.remaining_tokens = gr_int(rp->element[8]);
        rl.reset_tokens_ms = gr_int(rp->element[9]);
        if (m->answered) {
            /* Admitted after its caller gave up (timeout): give it back. */
            m->own.active = true;
            govern_redis_release(m->c, &m->own);
            return;
        }
        m->res->active = true;
        gr_node *n = calloc(1, sizeof *n);
        if (n) {
            n->res = *m->res;
            pthread_mutex_lock(&r->mu);
            gr_list_add(&r->active, n);
            pthread_mutex_unlock(&r->mu);
        }
        m->res->node = n;
        gr_answer(m, GOVERN_REDIS_ADMITTED, NULL, &rl);
        return;
    }
    gr_answer(m, GOVERN_REDIS_UNAVAILABLE, NULL, NULL);
}

static void gr_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    gr_cmd *m = priv;
    redisReply *rp = reply;
    govern_redis *r = m->c->r;
    if (rp && rp->type == REDIS_REPLY_ERROR && strncmp(rp->str, "NOSCRIPT", 8) == 0 &&
        !m->retried) {
        /* Redis restarted or flushed its script cache: send the text once. */
        atomic_fetch_add(&r->noscript, 1);
        m->retried = true;
        free(m->argv[0]);
        free(m->argv[1]);
        m->argv[0] = strdup("EVAL");
        m->argv[1] = strdup(gr_script_text[m->script]);
        if (m->argv[0] && m->argv[1]) {
            m->argvlen[0] = 4;
            m->argvlen[1] = strlen(m->argv[1]);
            if (gr_send(m)) return;
        }
        rp = NULL;
    }
    if (m->script == SC_ADMIT) {
        gr_admit_reply(m, rp);
        gr_stop_timer(m);
    } else if (m->script == SC_SETTLE) {
        bool acked = rp && rp->type == REDIS_REPLY_STRING && strcmp(rp->str, "ok") == 0;
        if (rp && rp->type == REDIS_REPLY_ERROR)
            log_warn("governance: redis settle failed: %s", rp->str);
        if (rp && rp->type == REDIS_REPLY_STRING && strcmp(rp->str, "nogen") == 0) {
            atomic_store(&r->gen_ok, false);
            gr_start_seed(m->c);
        }
        if (m->node) {
            /* Not acknowledged: kept, sent again on reconnection or added
             * to the rebuild's spend (nogen). */
            if (acked) free(m->node);
            else {
                pthread_mutex_lock(&r->mu);
                gr_list_add(&r->pending, m->node);
                pthread_mutex_unlock(&r->mu);
            }
            m->node = NULL;
        }
    } else if (m->script == SC_SEED) {
        gr_seed_done(m, rp);
    }
    gr_unref(m);
}

static void gr_admit_timeout(uv_timer_t *t)
{
    gr_cmd *m = t->data;
    /* No reply in time: the caller falls back now; a late admission is
     * released when it arrives (gr_admit_reply). */
    gr_answer(m, GOVERN_REDIS_UNAVAILABLE, NULL, NULL);
    gr_stop_timer(m);
}

/* Not sent at all: answer on the next loop turn (never inside admit). */
static void gr_fail_soon(gr_cmd *m)
{
    m->refs = 1;                          /* the timer only */
    uv_timer_start(m->timer, gr_admit_timeout, 0, 0);
}

/* ---- the levels of a call ---- */

static void gr_keys(gr_cmd *m, govern_redis *r, const govern_redis_res *res)
{
    gr_cmd_setf(m, "%sgen", r->prefix);
    for (int j = 0; j < res->n; j++) {
        gr_cmd_setf(m, "%ss:%s", r->prefix, res->level[j]);
        gr_cmd_setf(m, "%sr:%s", r->prefix, res->level[j]);
        gr_cmd_setf(m, "%sg:%s", r->prefix, res->level[j]);
    }
}

void govern_redis_admit(govern_redis_conn *c, const govern_subject *s, int64_t est_tokens,
                        int64_t est_cost_nusd, govern_redis_res *res,
                        govern_redis_admit_cb cb, void *arg)
{
    govern_redis *r = c->r;
    if (est_tokens < 0) est_tokens = 0;
    if (est_cost_nusd < 0) est_cost_nusd = 0;
    memset(res, 0, sizeof *res);
    res->est_tokens = est_tokens;
    res->est_cost_nusd = est_cost_nusd;
    int lv[3];
    for (int j = 0; j < 3; j++)
        if (govern_redis_level_id(s, j, res->level[res->n])) {
            lv[res->n] = j;
            res->tpm[res->n] = gr_limits(s, j)->tpm;
            res->n++;
        }
    snprintf(res->member, sizeof res->member, "%s%" PRIxFAST64 ":%" PRId64, r->instance,
             (uint_fast64_t)atomic_fetch_add(&r->seq, 1), est_cost_nusd);

    gr_cmd *m = gr_cmd_new(c, SC_ADMIT, 3 + 1 + 3 * res->n + 5 + 5 * res->n);
    uv_timer_t *t = m ? malloc(sizeof *t) : NULL;
    if (!m || !t) {
        /* Out of memory with no timer to answer through later: the one
         * case where cb does not run. */
        log_error("governance: out of memory in a redis admission");
        free(t);
        if (m) gr_cmd_free(m);
        return;
    }
    m->res = res;
    m->cb = cb;
    m->arg = arg;
    m->est_cost = est_cost_nusd;
    m->est_tokens = est_tokens;
    m->timer = t;
    uv_timer_init(c->loop, t);
    t->data = m;

    gr_cmd_set(m, "EVALSHA");
    gr_cmd_set(m, r->sha[SC_ADMIT]);
    gr_cmd_setf(m, "%d", 1 + 3 * res->n);
    gr_keys(m, r, res);
    gr_cmd_setf(m, "%d", res->n);
    gr_cmd_set(m, res->member);
    gr_cmd_setf(m, "%" PRId64, est_cost_nusd);
    gr_cmd_setf(m, "%" PRId64, est_tokens);
    gr_cmd_setf(m, "%" PRIu64, (uint64_t)r->cfg.reservation_ttl_s * 1000);
    for (int j = 0; j < res->n; j++) {
        const govern_limits *l = gr_limits(s, lv[j]);
        gr_cmd_set(m, gr_level_name(lv[j]));
        gr_cmd_setf(m, "%" PRId64, l->daily_budget_nusd);
        gr_cmd_setf(m, "%" PRId64, l->monthly_budget_nusd);
        gr_cmd_setf(m, "%" PRId64, l->rpm);
        gr_cmd_setf(m, "%" PRId64, l->tpm);
    }
    m->own = *res;
    if (!gr_cmd_ok(m) || !gr_send(m)) {
        gr_fail_soon(m);
        return;
    }
    m->refs = 2;
    uv_timer_start(t, gr_admit_timeout, r->cfg.timeout_ms, 0);
}

static void gr_send_settle(govern_redis_conn *c, gr_node *node);

static void gr_finish(govern_redis_conn *c, govern_redis_res *res, int64_t cost, int64_t delta)
{
    if (!res->active) return;
    res->active = false;
    govern_redis *r = c->r;
    gr_node *node = res->node;
    res->node = NULL;
    if (!node && !(node = calloc(1, sizeof *node))) return;   /* expires on its own */
    pthread_mutex_lock(&r->mu);
    if (node->next) gr_list_del(node);
    pthread_mutex_unlock(&r->mu);
    node->res = *res;
    node->res.node = NULL;
    node->cost = cost < 0 ? 0 : cost;
    node->delta = delta;
    gr_send_settle(c, node);
}

/* Send (or send again) a settle; kept pending when it cannot go now. */
static void gr_send_settle(govern_redis_conn *c, gr_node *node)
{
    govern_redis *r = c->r;
    const govern_redis_res *res = &node->res;
    int64_t cost = node->cost, delta = node->delta;
    gr_cmd *m = gr_cmd_new(c, SC_SETTLE, 3 + 1 + 3 * res->n + 4 + res->n);
    if (!m) goto keep;
    gr_cmd_set(m, "EVALSHA");
    gr_cmd_set(m, r->sha[SC_SETTLE]);
    gr_cmd_setf(m, "%d", 1 + 3 * res->n);
    gr_keys(m, r, res);
    gr_cmd_setf(m, "%d", res->n);
    gr_cmd_set(m, res->member);
    gr_cmd_setf(m, "%" PRId64, cost < 0 ? 0 : cost);
    gr_cmd_setf(m, "%" PRId64, delta);
    for (int j = 0; j < res->n; j++) gr_cmd_setf(m, "%" PRId64, res->tpm[j]);
    m->refs = 1;
    m->node = node;
    if (gr_cmd_ok(m) && gr_send(m)) return;
    m->node = NULL;
    gr_cmd_free(m);
keep:
    /* Redis away: the reservation expires by itself; the cost is sent on
     * reconnection (or joins the rebuild's spend). */
    pthread_mutex_lock(&r->mu);
    gr_list_add(&r->pending, node);
    pthread_mutex_unlock(&r->mu);
}

/* On reconnection, with the generation present: the settles kept. */
static void gr_flush_pending(govern_redis_conn *c)
{
    govern_redis *r = c->r;
    gr_list todo;
    gr_list_init(&todo);
    pthread_mutex_lock(&r->mu);
    gr_list_splice(&todo, &r->pending);
    pthread_mutex_unlock(&r->mu);
    while (todo.head.next != &todo.head) {
        gr_node *n = todo.head.next;
        gr_list_del(n);
        gr_send_settle(c, n);
    }
}

void govern_redis_settle(govern_redis_conn *c, govern_redis_res *res, int64_t actual_tokens,
                         int64_t actual_cost_nusd)
{
    if (actual_tokens < 0) actual_tokens = 0;
    gr_finish(c, res, actual_cost_nusd, actual_tokens - res->est_tokens);
}

void govern_redis_release(govern_redis_conn *c, govern_redis_res *res)
{
    gr_finish(c, res, 0, -res->est_tokens);
}

void govern_redis_charge(govern_redis *r, const char *tenant_id, const char *user_id,
                         const char *key_id, int64_t cost_nusd)
{
    if (cost_nusd <= 0) return;
    gr_node *node = calloc(1, sizeof *node);
    if (!node) {
        log_error("governance: out of memory: a recovered charge of %s does not reach redis",
                  tenant_id ? tenant_id : "");
        return;
    }
    govern_subject s = {.tenant_id = tenant_id, .user_id = user_id, .key_id = key_id};
    for (int j = 0; j < 3; j++)
        if (govern_redis_level_id(&s, j, node->res.level[node->res.n])) node->res.n++;
    /* a member no reservation has: the settle removes nothing, charges cost */
    snprintf(node->res.member, sizeof node->res.member, "%sc%" PRIxFAST64 ":0", r->instance,
             (uint_fast64_t)atomic_fetch_add(&r->seq, 1));
    node->cost = cost_nusd;
    pthread_mutex_lock(&r->mu);
    gr_list_add(&r->pending, node);
    pthread_mutex_unlock(&r->mu);
}

/* ---- the rebuild from the ledger ---- */

typedef struct gr_seed_ent {
    char    level[GOVERN_REDIS_LEVEL_MAX];
    int64_t day, month;
} gr_seed_ent;

typedef struct gr_seed {
    uv_work_t          work;
    govern_redis_conn *c;
    int64_t            day_start_s, month_start_s;
    gr_seed_ent       *e;
    size_t             n, cap;
    strmap            *index;          /* level → its entry's number + 1 in e */
    bool               failed;
    gr_list            pend;           /* settles folded into this rebuild */
} gr_seed;

/* The ledger gives a row per (tenant, user, key, day), grouped by
 * subject, so the last entry is most often the one; otherwise a map by
 * level. A linear search here made a rebuild quadratic in the month's
 * subjects: ~5·10⁹ comparisons at 100 000 users and keys, with budgets
 * closed until it ended. */
static gr_seed_ent *gr_seed_find(gr_seed *sd, const char *level)
{
    if (sd->n && strcmp(sd->e[sd->n - 1].level, level) == 0) return &sd->e[sd->n - 1];
    if (!sd->index && !(sd->index = strmap_new(NULL))) return NULL;
    uintptr_t at = (uintptr_t)strmap_get(sd->index, level);
    if (at) return &sd->e[at - 1];
    if (sd->n == sd->cap) {
        size_t nc = sd->cap ? sd->cap * 2 : 64;
        gr_seed_ent *ne = realloc(sd->e, nc * sizeof *ne);
        if (!ne) return NULL;
        sd->e = ne;
        sd->cap = nc;
    }
    gr_seed_ent *e = &sd->e[sd->n];
    snprintf(e->level, sizeof e->level, "%s", level);
    e->day = e->month = 0;
    if (strmap_put(sd->index, e->level, (void *)(uintptr_t)(sd->n + 1)) != 0) return NULL;
    sd->n++;
    return e;
}

static void gr_seed_row(const char *tenant_id, const char *user_id, const char *key_id,
                        int64_t ts, int64_t cost, void *arg)
{
    gr_seed *sd = arg;
    if (ts < sd->month_start_s) return;
    govern_subject s = {.tenant_id = tenant_id, .user_id = user_id, .key_id = key_id};
    for (int j = 0; j < 3; j++) {
        char id[GOVERN_REDIS_LEVEL_MAX];
        if (!govern_redis_level_id(&s, j, id)) continue;
        gr_seed_ent *e = gr_seed_find(sd, id);
        if (!e) {
            sd->failed = true;
            return;
        }
        e->month += cost;
        if (ts >= sd->day_start_s) e->day += cost;
    }
}

static void gr_seed_work(uv_work_t *w)
{
    gr_seed *sd = w->data;
    store *st = sd->c->r->st;
    if (st && store_usage_ledger(st, sd->month_start_s, gr_seed_row, sd) != STORE_OK)
        sd->failed = true;
}

static void gr_seed_free(gr_seed *sd)
{
    while (sd->pend.head.next != &sd->pend.head) {
        gr_node *n = sd->pend.head.next;
        gr_list_del(n);
        free(n);
    }
    free(sd->e);
    strmap_free(sd->index);
    free(sd);
}

/* The rebuild did not happen: its settles go back to pending. */
static void gr_seed_abandon(govern_redis *r, gr_seed *sd)
{
    pthread_mutex_lock(&r->mu);
    gr_list_splice(&r->pending, &sd->pend);
    pthread_mutex_unlock(&r->mu);
    gr_seed_free(sd);
    atomic_store(&r->seeding, false);
}

static void gr_seed_after(uv_work_t *w, int status)
{
    gr_seed *sd = w->data;
    govern_redis_conn *c = sd->c;
    govern_redis *r = c->r;
    if (status != 0 || sd->failed || c->closing) {
        log_error("governance: could not read the usage ledger to rebuild spend in redis; "
                  "budgets stay closed and the next admission retries");
        gr_seed_abandon(r, sd);
        return;
    }
    /* The settles Redis never got join the spend (a call whose ledger row
     * was read too is counted twice: too much, never too little), and this
     * process's calls in flight come back as reservations. */
    pthread_mutex_lock(&r->mu);
    gr_list_splice(&sd->pend, &r->pending);
    size_t nres = 0;
    for (gr_node *n = r->active.head.next; n != &r->active.head; n = n->next) nres += (size_t)n->res.n;
    pthread_mutex_unlock(&r->mu);
    for (gr_node *n = sd->pend.head.next; n != &sd->pend.head; n = n->next)
        for (int j = 0; j < n->res.n; j++) {
            gr_seed_ent *e = gr_seed_find(sd, n->res.level[j]);
            if (!e) {
                gr_seed_abandon(r, sd);
                return;
            }
            e->day += n->cost;
            e->month += n->cost;
        }
    gr_cmd *m = gr_cmd_new(c, SC_SEED, (int)(3 + 1 + sd->n + 2 * nres + 4 + 2 * sd->n + 3 * nres));
    if (!m) {
        gr_seed_abandon(r, sd);
        return;
    }
    gr_cmd_set(m, "EVALSHA");
    gr_cmd_set(m, r->sha[SC_SEED]);
    pthread_mutex_lock(&r->mu);
    /* (the active list may have changed since it was counted: only on this
     * loop's thread it cannot; other loops' admissions wait for the gen) */
    size_t nres2 = 0;
    for (gr_node *n = r->active.head.next; n != &r->active.head; n = n->next) nres2 += (size_t)n->res.n;
    if (nres2 > nres) nres2 = nres;
    gr_cmd_setf(m, "%zu", 1 + sd->n + 2 * nres2);
    gr_cmd_setf(m, "%sgen", r->prefix);
    for (size_t i = 0; i < sd->n; i++) gr_cmd_setf(m, "%ss:%s", r->prefix, sd->e[i].level);
    size_t k = 0;
    for (gr_node *n = r->active.head.next; n != &r->active.head && k < nres2; n = n->next)
        for (int j = 0; j < n->res.n && k < nres2; j++, k++) {
            gr_cmd_setf(m, "%sr:%s", r->prefix, n->res.level[j]);
            gr_cmd_setf(m, "%ss:%s", r->prefix, n->res.level[j]);
        }
    gr_cmd_setf(m, "%s:%" PRId64, r->instance, time_now_unix_ms());
    gr_cmd_setf(m, "d:%" PRId64, sd->day_start_s * 1000);
    gr_cmd_setf(m, "m:%" PRId64, sd->month_start_s * 1000);
    gr_cmd_setf(m, "%zu", sd->n);
    for (size_t i = 0; i < sd->n; i++) {
        gr_cmd_setf(m, "%" PRId64, sd->e[i].day);
        gr_cmd_setf(m, "%" PRId64, sd->e[i].month);
    }
    k = 0;
    for (gr_node *n = r->active.head.next; n != &r->active.head && k < nres2; n = n->next)
        for (int j = 0; j < n->res.n && k < nres2; j++, k++) {
            gr_cmd_set(m, n->res.member);
            gr_cmd_setf(m, "%" PRId64, n->res.est_cost_nusd);
            gr_cmd_setf(m, "%" PRIu64, (uint64_t)r->cfg.reservation_ttl_s * 1000);
        }
    pthread_mutex_unlock(&r->mu);
    m->refs = 1;
    m->seed = sd;
    if (gr_cmd_ok(m) && gr_send(m)) return;
    m->seed = NULL;
    gr_cmd_free(m);
    gr_seed_abandon(r, sd);
}

/* This process's calls in flight, back as reservations (RESTORE). */
static void gr_restore_active(govern_redis_conn *c)
{
    govern_redis *r = c->r;
    pthread_mutex_lock(&r->mu);
    size_t nres = 0;
    for (gr_node *n = r->active.head.next; n != &r->active.head; n = n->next) nres += (size_t)n->res.n;
    gr_cmd *m = nres ? gr_cmd_new(c, SC_RESTORE, (int)(3 + 5 * nres)) : NULL;
    if (m) {
        gr_cmd_set(m, "EVALSHA");
        gr_cmd_set(m, r->sha[SC_RESTORE]);
        gr_cmd_setf(m, "%zu", 2 * nres);
        for (gr_node *n = r->active.head.next; n != &r->active.head; n = n->next)
            for (int j = 0; j < n->res.n; j++) {
                gr_cmd_setf(m, "%sr:%s", r->prefix, n->res.level[j]);
                gr_cmd_setf(m, "%ss:%s", r->prefix, n->res.level[j]);
            }
        for (gr_node *n = r->active.head.next; n != &r->active.head; n = n->next)
            for (int j = 0; j < n->res.n; j++) {
                gr_cmd_set(m, n->res.member);
                gr_cmd_setf(m, "%" PRId64, n->res.est_cost_nusd);
                gr_cmd_setf(m, "%" PRIu64, (uint64_t)r->cfg.reservation_ttl_s * 1000);
            }
    }
    pthread_mutex_unlock(&r->mu);
    if (!m) return;
    m->refs = 1;
    if (!gr_cmd_ok(m) || !gr_send(m)) gr_cmd_free(m);
}

static void gr_seed_done(gr_cmd *m, const redisReply *rp)
{
    govern_redis *r = m->c->r;
    gr_seed *sd = m->seed;
    m->seed = NULL;
    if (rp && rp->type == REDIS_REPLY_INTEGER) {
        atomic_store(&r->gen_ok, true);
        if (rp->integer == 1) {
            atomic_fetch_add(&r->reseeds, 1);
            log_info("governance: rebuilt spend in redis from the usage ledger");
            if (sd) {
                gr_seed_free(sd);
                sd = NULL;
            }
        }
    }
    if (sd) {
        /* Another instance rebuilt first, or no answer: the settles are
         * sent as settles again, the calls in flight restored. */
        gr_seed_abandon(r, sd);
        if (rp && rp->type == REDIS_REPLY_INTEGER) {
            gr_restore_active(m->c);
            gr_flush_pending(m->c);
        }
        return;
    }
    atomic_store(&r->seeding, false);
}

/* One rebuild at a time per process; the SEED script makes several
 * instances' rebuilds harmless (the first wins, the others are no-ops). */
static void gr_start_seed(govern_redis_conn *c)
{
    govern_redis *r = c->r;
    bool no = false;
    /* No ledger yet (start-up): never write spend from nothing. */
    if (c->closing || !r->st) return;
    if (!atomic_compare_exchange_strong(&r->seeding, &no, true)) return;
    gr_seed *sd = calloc(1, sizeof *sd);
    if (!sd) {
        atomic_store(&r->seeding, false);
        return;
    }
    int64_t now = time_now_unix_ms();
    sd->c = c;
    gr_list_init(&sd->pend);
    sd->day_start_s = govern_day_start(now) / 1000;
    sd->month_start_s = govern_month_start(now) / 1000;
    sd->work.data = sd;
    if (uv_queue_work(c->loop, &sd->work, gr_seed_work, gr_seed_after) != 0) {
        free(sd);
        atomic_store(&r->seeding, false);
    }
}

/* ---- connections ---- */

static void gr_connect(govern_redis_conn *c);

static void gr_retry(uv_timer_t *t)
{
    gr_connect(t->data);
}

static void gr_schedule_retry(govern_redis_conn *c)
{
    if (!c->closing) uv_timer_start(&c->retry, gr_retry, 500, 0);
}

static void gr_on_exists(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    govern_redis_conn *c = priv;
    redisReply *rp = reply;
    if (rp && rp->type == REDIS_REPLY_INTEGER && !c->closing) {
        /* Up only once a real Redis answered, not when TCP connected. */
        if (!c->up) {
            c->up = true;
            c->warned = false;
            atomic_fetch_add(&c->r->conns_up, 1);
            atomic_fetch_add(&c->r->reconnects, 1);
        }
        atomic_store(&c->r->gen_ok, rp->integer == 1);
        if (rp->integer == 0) gr_start_seed(c);
        else gr_flush_pending(c);
    }
}

static void gr_on_connect(const redisAsyncContext *ac, int status)
{
    govern_redis_conn *c = ac->data;
    if (status != REDIS_OK) {
        c->ac = NULL;                     /* hiredis frees it */
        gr_schedule_retry(c);
        return;
    }
    char db[12], gen[128];
    snprintf(db, sizeof db, "%d", c->r->cfg.db);
    snprintf(gen, sizeof gen, "%sgen", c->r->prefix);
    redisAsyncContext *a = (redisAsyncContext *)ac;
    if (c->r->cfg.db != 0) redisAsyncCommand(a, NULL, NULL, "SELECT %s", db);
    redisAsyncCommand(a, gr_on_exists, c, "EXISTS %s", gen);
}

static void gr_on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    govern_redis_conn *c = ac->data;
    if (c->up) atomic_fetch_sub(&c->r->conns_up, 1);
    c->up = false;
    c->ac = NULL;                         /* hiredis frees it */
    if (!c->closing) log_warn("governance: lost the connection to redis; reconnecting");
    gr_schedule_retry(c);
}

static void gr_connect(govern_redis_conn *c)
{
    if (c->closing || c->ac) return;
    redisAsyncContext *ac = redisAsyncConnect(c->r->host, c->r->cfg.port);
    if (!ac) {
        gr_schedule_retry(c);
        return;
    }
    if (ac->err) {
        redisAsyncFree(ac);
        gr_schedule_retry(c);
        return;
    }
    ac->data = c;
    if (redisLibuvAttach(ac, c->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        gr_schedule_retry(c);
        return;
    }
    redisAsyncSetConnectCallback(ac, gr_on_connect);
    redisAsyncSetDisconnectCallback(ac, gr_on_disconnect);
    c->ac = ac;
    c->connect_ms = c->last_ping_ms = time_mono_ns() / 1000000;
    c->ping_sent_ms = 0;
}

static void gr_on_pong(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    govern_redis_conn *c = priv;
    if (reply && !c->closing) c->ping_sent_ms = 0;
}

/* Drop the current attempt or connection and make another (see above). */
static void gr_abandon(govern_redis_conn *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    bool connected = (ac->c.flags & REDIS_CONNECTED) != 0;
    if (!c->warned) log_warn("governance: redis %s; reconnecting (every 0.5 s, logged once)", why);
    c->warned = true;
    if (connected) {
        /* pending callbacks get NULL (unavailable), then gr_on_disconnect
         * clears c->ac and schedules the retry */
        redisAsyncFree(ac);
        return;
    }
    c->ac = NULL;
    redisAsyncFree(ac);                   /* never connected: no callback runs */
    gr_schedule_retry(c);
}

static void gr_watch(uv_timer_t *t)
{
    govern_redis_conn *c = t->data;
    if (c->closing || !c->ac) return;
    uint64_t now = time_mono_ns() / 1000000;
    if (!c->up) {
        if (now - c->connect_ms >= GR_CONNECT_TIMEOUT_MS) gr_abandon(c, "did not answer a connection attempt in time");
        return;
    }
    if (c->ping_sent_ms) {
        if (now - c->ping_sent_ms >= GR_PING_TIMEOUT_MS) gr_abandon(c, "stopped answering (PING unanswered)");
        return;
    }
    if (now - c->last_ping_ms >= GR_PING_MS && redisAsyncCommand(c->ac, gr_on_pong, c, "PING") == REDIS_OK)
        c->ping_sent_ms = c->last_ping_ms = now;
}

govern_redis_conn *govern_redis_conn_new(govern_redis *r, uv_loop_t *loop)
{
    govern_redis_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->r = r;
    c->loop = loop;
    uv_timer_init(loop, &c->retry);
    c->retry.data = c;
    uv_timer_init(loop, &c->watch);
    c->watch.data = c;
    c->open_handles = 2;
    /* Referenced: while an attempt hangs (the adapter's poll handle was
     * stopped by libuv on the error) it may be all that keeps the loop
     * turning; govern_redis_conn_close closes it. */
    uv_timer_start(&c->watch, gr_watch, GR_WATCH_MS, GR_WATCH_MS);
    gr_connect(c);
    return c;
}

bool govern_redis_conn_up(const govern_redis_conn *c) { return c->up; }

static void gr_conn_closed(uv_handle_t *h)
{
    govern_redis_conn *c = h->data;
    if (--c->open_handles == 0) free(c);
}

void govern_redis_conn_close(govern_redis_conn *c)
{
    if (!c) return;
    c->closing = true;
    uv_timer_stop(&c->retry);
    uv_timer_stop(&c->watch);
    if (c->ac) {
        /* Pending callbacks run with a NULL reply (UNAVAILABLE); the
         * disconnect callback then runs and sees closing. */
        redisAsyncContext *ac = c->ac;
        redisAsyncFree(ac);
        c->ac = NULL;
    }
    if (c->up) atomic_fetch_sub(&c->r->conns_up, 1);
    c->up = false;
    uv_close((uv_handle_t *)&c->retry, gr_conn_closed);
    uv_close((uv_handle_t *)&c->watch, gr_conn_closed);
}

/* ---- the process-wide part ---- */

govern_redis *govern_redis_new(const governance_redis_cfg *cfg, store *st)
{
    govern_redis *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->cfg = *cfg;
    r->host = strdup(cfg->host ? cfg->host : "127.0.0.1");
    r->prefix = strdup(cfg->key_prefix ? cfg->key_prefix : "brigade:");
    if (!r->host || !r->prefix) {
        govern_redis_free(r);
        return NULL;
    }
    r->cfg.host = r->host;
    r->cfg.key_prefix = r->prefix;
    if (r->cfg.timeout_ms == 0) r->cfg.timeout_ms = 500;
    if (r->cfg.reservation_ttl_s == 0) r->cfg.reservation_ttl_s = 900;
    if (r->cfg.instances == 0) r->cfg.instances = 1;
    r->st = st;
    pthread_mutex_init(&r->mu, NULL);
    gr_list_init(&r->active);
    gr_list_init(&r->pending);
    for (int i = 0; i < SC__N; i++) gr_sha1_hex(gr_script_text[i], r->sha[i]);
    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        govern_redis_free(r);
        return NULL;
    }
    for (int i = 0; i < 8; i++) snprintf(r->instance + 2 * i, 3, "%02x", rnd[i]);
    return r;
}

void govern_redis_set_store(govern_redis *r, store *st) { r->st = st; }

void govern_redis_free(govern_redis *r)
{
    if (!r) return;
    if (r->active.head.next) {
        gr_list *ls[2] = {&r->active, &r->pending};
        for (int i = 0; i < 2; i++)
            while (ls[i]->head.next != &ls[i]->head) {
                gr_node *n = ls[i]->head.next;
                gr_list_del(n);
                free(n);
            }
        pthread_mutex_destroy(&r->mu);
    }
    free(r->host);
    free(r->prefix);
    free(r);
}

void govern_redis_stats_get(govern_redis *r, govern_redis_stats *out)
{
    out->connected = atomic_load(&r->conns_up) > 0;
    out->generation_ok = atomic_load(&r->gen_ok);
    out->admits = atomic_load(&r->admits);
    out->refusals = atomic_load(&r->refusals);
    out->unavailable = atomic_load(&r->unavailable);
    out->reseeds = atomic_load(&r->reseeds);
    out->reconnects = atomic_load(&r->reconnects);
    out->noscript = atomic_load(&r->noscript);
}

/* ---- while Redis is away ---- */

static int64_t gr_share(int64_t limit, uint32_t instances)
{
    if (limit <= 0 || instances <= 1) return limit;
    int64_t s = limit / instances;
    return s < 1 ? 1 : s;
}

void govern_redis_fallback(const governance_redis_cfg *cfg, const govern_subject *in,
                           govern_subject *out)
{
    *out = *in;
    govern_limits *l[3] = {&out->user, &out->key, &out->tenant};
    for (int j = 0; j < 3; j++) {
        l[j]->rpm = gr_share(l[j]->rpm, cfg->instances);
        l[j]->tpm = gr_share(l[j]->tpm, cfg->instances);
        if (cfg->fail_open) l[j]->daily_budget_nusd = l[j]->monthly_budget_nusd = 0;
    }
}

bool govern_redis_fallback_refuses(const governance_redis_cfg *cfg, const govern_subject *s,
                                   govern_refusal *why)
{
    if (cfg->fail_open) return false;
    const govern_limits *l[3] = {&s->user, &s->key, &s->tenant};
    bool has = false;
    for (int j = 0; j < 3; j++) {
        char id[GOVERN_REDIS_LEVEL_MAX];
        if (govern_redis_level_id(s, j, id) &&
            (l[j]->daily_budget_nusd > 0 || l[j]->monthly_budget_nusd > 0))
            has = true;
    }
    if (!has) return false;
    memset(why, 0, sizeof *why);
    why->status = 503;
    why->type = "overloaded_error";
    snprintf(why->code, sizeof why->code, "governance_unavailable");
    snprintf(why->limit, sizeof why->limit, "governance.redis");
    snprintf(why->message, sizeof why->message,
             "Budgets cannot be checked right now: the shared governance store is "
             "unreachable or rebuilding. Retry shortly.");
    why->retry_after_s = 1;
    return true;
}
