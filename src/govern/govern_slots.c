/* govern_slots.c — run concurrency slots in Redis: blocking acquisitions
 * on a small pool of connections, and one thread that renews the leases
 * this process holds and sends its releases. The contract is in
 * govern_slots.h, the scripts in redis_scripts.c. */
#include "govern/govern_slots.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "govern/govern_internal.h"
#include "govern/redis_scripts.h"
#include "util/log.h"

enum { GS_BEGIN, GS_RENEW, GS_END, GS__N };
#define GS_POOL 8                          /* idle connections kept for acquisitions */
#define GS_KEY (64 + 2 + GOVERN_REDIS_LEVEL_MAX)
#define GS_BATCH 256                       /* keys per renewal or release script */

/* A lease this process holds (or has handed to the thread to release). */
typedef struct gs_node {
    struct gs_node *prev, *next;
    int  n;                                /* levels: user (if any), tenant */
    char key[2][GS_KEY];
    char member[48];
} gs_node;

struct govern_slots {
    char            *host, *prefix;
    int              port, db;
    uint32_t         timeout_ms, lease_ms, instances;
    char             sha[GS__N][41];
    char             instance[17];
    atomic_uint_fast64_t seq;
    pthread_mutex_t  mu;                   /* everything below */
    pthread_cond_t   wake;
    gs_node          held;                 /* list head: leases to renew */
    gs_node         *released;             /* singly linked (next): to send */
    redisContext    *idle[GS_POOL];
    int              n_idle;
    bool             stop;
    pthread_t        thread;
    atomic_bool      up;
    atomic_uint_fast64_t acquired, refused, unavailable, renewals, releases;
};

static const char *const gs_text[GS__N] = {GR_LUA_RUN_BEGIN, GR_LUA_RUN_RENEW, GR_LUA_RUN_END};

/* ---- connections ---- */

static redisContext *gs_connect(govern_slots *g)
{
    struct timeval tv = {.tv_sec = g->timeout_ms / 1000, .tv_usec = (g->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(g->host, g->port, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    /* every read and write too: a Redis that hangs is an unreachable one */
    redisSetTimeout(c, tv);
    if (g->db != 0) {
        redisReply *r = redisCommand(c, "SELECT %d", g->db);
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

static redisContext *gs_get(govern_slots *g)
{
    pthread_mutex_lock(&g->mu);
    redisContext *c = g->n_idle ? g->idle[--g->n_idle] : NULL;
    pthread_mutex_unlock(&g->mu);
    return c ? c : gs_connect(g);
}

static void gs_put(govern_slots *g, redisContext *c)
{
    if (!c) return;
    pthread_mutex_lock(&g->mu);
    if (g->n_idle < GS_POOL && !c->err) {
        g->idle[g->n_idle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&g->mu);
    if (c) redisFree(c);
}

/* EVALSHA, and EVAL with the text after NOSCRIPT (Redis restarted or
 * flushed its scripts). argv[0..1] are left for the command and the
 * script. NULL: no answer (the connection is then broken: *c freed). */
static redisReply *gs_eval(govern_slots *g, redisContext **c, int script, int argc,
                           const char **argv, size_t *len)
{
    argv[0] = "EVALSHA";
    len[0] = 7;
    argv[1] = g->sha[script];
    len[1] = 40;
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *r = redisCommandArgv(*c, argc, argv, len);
        if (!r) {
            redisFree(*c);
            *c = NULL;
            return NULL;
        }
        if (attempt == 0 && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            freeReplyObject(r);
            argv[0] = "EVAL";
            len[0] = 4;
            argv[1] = gs_text[script];
            len[1] = strlen(gs_text[script]);
            continue;
        }
        return r;
    }
    return NULL;
}

/* ---- acquire and release ---- */

static int64_t gs_share(int64_t limit, uint32_t instances)
{
    if (limit <= 0 || instances <= 1) return limit;
    int64_t s = limit / instances;
    return s < 1 ? 1 : s;
}

void govern_slots_fallback(const governance_redis_cfg *cfg, const govern_subject *in,
                           govern_subject *out)
{
    *out = *in;
    out->user.max_concurrent_runs = gs_share(in->user.max_concurrent_runs, cfg->instances);
    out->tenant.max_concurrent_runs = gs_share(in->tenant.max_concurrent_runs, cfg->instances);
}

int govern_slots_acquire(govern_slots *g, const govern_subject *s, govern_slot *slot,
                         govern_refusal *why)
{
    slot->node = NULL;
    gs_node *nd = calloc(1, sizeof *nd);
    if (!nd) return GOVERN_SLOTS_UNAVAILABLE;
    const char *names[2];
    int64_t limits[2];
    /* the user level (levels as govern_redis_level_id names them), then the tenant */
    static const int levels[2] = {0, 2};
    for (int i = 0; i < 2; i++) {
        char id[GOVERN_REDIS_LEVEL_MAX];
        if (!govern_redis_level_id(s, levels[i], id)) continue;
        snprintf(nd->key[nd->n], GS_KEY, "%sc:%s", g->prefix, id);
        names[nd->n] = levels[i] == 0 ? "user" : "tenant";
        limits[nd->n] = levels[i] == 0 ? s->user.max_concurrent_runs : s->tenant.max_concurrent_runs;
        nd->n++;
    }
    snprintf(nd->member, sizeof nd->member, "%s%" PRIxFAST64, g->instance,
             (uint_fast64_t)atomic_fetch_add(&g->seq, 1));
    char lease[24], nk[8], lim[2][24];
    snprintf(lease, sizeof lease, "%" PRIu32, g->lease_ms);
    snprintf(nk, sizeof nk, "%d", nd->n);
    const char *argv[3 + 2 + 2 + 4];
    size_t len[3 + 2 + 2 + 4];
    int argc = 2;
    argv[argc++] = nk;
    for (int i = 0; i < nd->n; i++) argv[argc++] = nd->key[i];
    argv[argc++] = nd->member;
    argv[argc++] = lease;
    for (int i = 0; i < nd->n; i++) {
        snprintf(lim[i], sizeof lim[i], "%" PRId64, limits[i] > 0 ? limits[i] : 0);
        argv[argc++] = names[i];
        argv[argc++] = lim[i];
    }
    for (int i = 2; i < argc; i++) len[i] = strlen(argv[i]);

    redisContext *c = gs_get(g);
    redisReply *r = c ? gs_eval(g, &c, GS_BEGIN, argc, argv, len) : NULL;
    gs_put(g, c);
    int rc = GOVERN_SLOTS_UNAVAILABLE;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        if (strcmp(r->element[0]->str, "ok") == 0) {
            rc = GOVERN_SLOTS_OK;
        } else if (strcmp(r->element[0]->str, "refused") == 0 && r->elements >= 3 &&
                   r->element[1]->type == REDIS_REPLY_STRING) {
            rc = GOVERN_SLOTS_REFUSED;
            int64_t l = r->element[2]->type == REDIS_REPLY_INTEGER ? r->element[2]->integer : 0;
            govern_refuse_runs(why, strcmp(r->element[1]->str, "user") == 0 ? "user" : "tenant", l);
        }
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        log_warn("governance: redis run slot failed: %s", r->str);
    }
    atomic_store(&g->up, r != NULL);
    if (r) freeReplyObject(r);
    if (rc == GOVERN_SLOTS_REFUSED) {
        free(nd);
        atomic_fetch_add(&g->refused, 1);
        return rc;
    }
    /* Unavailable: held all the same, so that the first renewal once Redis
     * answers writes its lease and the run joins the count of every
     * instance (the caller meanwhile counts it in process). */
    atomic_fetch_add(rc == GOVERN_SLOTS_OK ? &g->acquired : &g->unavailable, 1);
    pthread_mutex_lock(&g->mu);
    nd->next = g->held.next;
    nd->prev = &g->held;
    g->held.next->prev = nd;
    g->held.next = nd;
    pthread_mutex_unlock(&g->mu);
    slot->node = nd;
    return rc;
}

void govern_slots_release(govern_slots *g, govern_slot *slot)
{
    gs_node *nd = slot->node;
    if (!nd) return;
    slot->node = NULL;
    pthread_mutex_lock(&g->mu);
    nd->prev->next = nd->next;
    nd->next->prev = nd->prev;
    nd->prev = NULL;
    nd->next = g->released;
    g->released = nd;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->mu);
}

/* ---- the thread: releases and renewals ---- */

typedef struct gs_pair { char key[GS_KEY]; char member[48]; } gs_pair;

/* One script over up to GS_BATCH (key, member) pairs; false: no answer. */
static bool gs_send_batch(govern_slots *g, redisContext **c, int script, const gs_pair *p, size_t n)
{
    const char **argv = calloc(4 + 2 * n, sizeof *argv);
    size_t *len = calloc(4 + 2 * n, sizeof *len);
    char nk[16], lease[24];
    bool ok = false;
    if (argv && len) {
        snprintf(nk, sizeof nk, "%zu", n);
        snprintf(lease, sizeof lease, "%" PRIu32, g->lease_ms);
        int argc = 2;
        argv[argc++] = nk;
        for (size_t i = 0; i < n; i++) argv[argc++] = p[i].key;
        if (script == GS_RENEW) argv[argc++] = lease;
        for (size_t i = 0; i < n; i++) argv[argc++] = p[i].member;
        for (int i = 2; i < argc; i++) len[i] = strlen(argv[i]);
        redisReply *r = gs_eval(g, c, script, argc, argv, len);
        ok = r && r->type == REDIS_REPLY_INTEGER;
        if (r && r->type == REDIS_REPLY_ERROR) log_warn("governance: redis run slots: %s", r->str);
        if (r) freeReplyObject(r);
    }
    free(argv);
    free(len);
    return ok;
}

static void gs_send(govern_slots *g, redisContext **c, int script, const gs_pair *p, size_t n)
{
    for (size_t i = 0; i < n; i += GS_BATCH) {
        if (!*c && !(*c = gs_connect(g))) {
            atomic_store(&g->up, false);
            return;                        /* leases expire; the next renewal puts live ones back */
        }
        size_t k = n - i < GS_BATCH ? n - i : GS_BATCH;
        bool ok = gs_send_batch(g, c, script, p + i, k);
        atomic_store(&g->up, ok || *c != NULL);
        if (ok) atomic_fetch_add(script == GS_RENEW ? &g->renewals : &g->releases, k);
    }
}

static int64_t gs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *gs_thread(void *arg)
{
    govern_slots *g = arg;
    redisContext *c = NULL;
    uint32_t every = g->lease_ms / 3 ? g->lease_ms / 3 : 1;
    int64_t next = gs_now_ms() + every;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->stop && !g->released && gs_now_ms() < next) {
            int64_t at = next;
            struct timespec ts = {.tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000};
            int e = pthread_cond_timedwait(&g->wake, &g->mu, &ts);
            if (e != 0 && e != ETIMEDOUT && e != EINTR) break;
        }
        bool stop = g->stop;
        gs_node *rel = g->released;
        g->released = NULL;
        size_t nrel = 0, nren = 0;
        for (gs_node *n = rel; n; n = n->next) nrel += (size_t)n->n;
        gs_pair *ren = NULL;
        bool renew = !stop && gs_now_ms() >= next;
        if (renew) {
            next = gs_now_ms() + every;
            for (gs_node *n = g->held.next; n != &g->held; n = n->next) nren += (size_t)n->n;
            ren = nren ? malloc(nren * sizeof *ren) : NULL;
            size_t k = 0;
            for (gs_node *n = g->held.next; ren && n != &g->held; n = n->next)
                for (int j = 0; j < n->n; j++, k++) {
                    memcpy(ren[k].key, n->key[j], GS_KEY);
                    memcpy(ren[k].member, n->member, sizeof n->member);
                }
            if (!ren) nren = 0;
        }
        pthread_mutex_unlock(&g->mu);
        /* releases first: the slots they free may be waited for */
        gs_pair *rp = nrel ? malloc(nrel * sizeof *rp) : NULL;
        size_t k = 0;
        while (rel) {
            gs_node *n = rel;
            rel = n->next;
            for (int j = 0; rp && j < n->n; j++, k++) {
                memcpy(rp[k].key, n->key[j], GS_KEY);
                memcpy(rp[k].member, n->member, sizeof n->member);
            }
            free(n);
        }
        if (rp) gs_send(g, &c, GS_END, rp, k);
        free(rp);
        if (ren) gs_send(g, &c, GS_RENEW, ren, nren);
        free(ren);
        pthread_mutex_lock(&g->mu);
        if (stop && !g->released) break;
    }
    pthread_mutex_unlock(&g->mu);
    if (c) redisFree(c);
    return NULL;
}

/* ---- the process-wide part ---- */

static void gs_sha1_hex(const char *text, char out[41])
{
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)text, strlen(text), d);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

govern_slots *govern_slots_new(const governance_redis_cfg *cfg, uint32_t lease_ms)
{
    govern_slots *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->host = strdup(cfg->host ? cfg->host : "127.0.0.1");
    g->prefix = strdup(cfg->key_prefix ? cfg->key_prefix : "brigade:");
    unsigned char rnd[8];
    if (!g->host || !g->prefix || RAND_bytes(rnd, sizeof rnd) != 1) {
        free(g->host);
        free(g->prefix);
        free(g);
        return NULL;
    }
    for (int i = 0; i < 8; i++) snprintf(g->instance + 2 * i, 3, "%02x", rnd[i]);
    g->port = cfg->port ? cfg->port : 6379;
    g->db = cfg->db;
    g->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 500;
    g->instances = cfg->instances ? cfg->instances : 1;
    g->lease_ms = lease_ms ? lease_ms : GOVERN_SLOT_LEASE_MS;
    for (int i = 0; i < GS__N; i++) gs_sha1_hex(gs_text[i], g->sha[i]);
    g->held.next = g->held.prev = &g->held;
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->wake, &ca);
    pthread_condattr_destroy(&ca);
    atomic_store(&g->up, true);   /* until a round trip says otherwise */
    if (pthread_create(&g->thread, NULL, gs_thread, g) != 0) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->mu);
        free(g->host);
        free(g->prefix);
        free(g);
        return NULL;
    }
    return g;
}

void govern_slots_free(govern_slots *g)
{
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    while (g->held.next != &g->held) {
        gs_node *n = g->held.next;
        g->held.next = n->next;
        free(n);
    }
    for (int i = 0; i < g->n_idle; i++) redisFree(g->idle[i]);
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->mu);
    free(g->host);
    free(g->prefix);
    free(g);
}

void govern_slots_stats_get(govern_slots *g, govern_slots_stats *out)
{
    out->up = atomic_load(&g->up);
    out->acquired = atomic_load(&g->acquired);
    out->refused = atomic_load(&g->refused);
    out->unavailable = atomic_load(&g->unavailable);
    out->renewals = atomic_load(&g->renewals);
    out->releases = atomic_load(&g->releases);
}
