/* audit.c — the running audit log: turns "this scope did that" into an
 * entry of the hash chain, keeps the signing key at hand for checkpoints,
 * and bounds how fast authentication failures can grow the log.
 *
 * State is per store (a server and tests may hold several), found through a
 * short list keyed by the store pointer and made on first use, so every
 * caller needs only the store it already has. */
#include "obs/audit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/audit_chain.h"
#include "util/log.h"

/* The auth-failure bound: a fixed table of source slots, so a flood from
 * many addresses costs no memory — two sources sharing a slot just share
 * their one entry a second. */
#define AUDIT_SOURCE_SLOTS 1024

typedef struct audit_source {
    uint64_t hash;          /* of the source string; 0 = empty slot */
    int64_t  last_s;        /* second of the last written entry */
    uint64_t suppressed;    /* failures not written since */
} audit_source;

typedef struct audit_state {
    store *st;
    audit_key key;
    bool has_key;
    store_audit_chain chain;
    pthread_mutex_t mu;     /* the rate table */
    audit_source sources[AUDIT_SOURCE_SLOTS];
    int64_t global_s;
    unsigned global_n;
    struct audit_state *next;
} audit_state;

static pthread_mutex_t audit_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static audit_state *audit_reg;

static uint64_t audit_every_from_env(void)
{
    const char *v = getenv("BRIGADE_AUDIT_CHECKPOINT_EVERY");
    if (!v || !*v) return OBS_AUDIT_CHECKPOINT_EVERY;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || n == 0 || n > 100000000ULL) {
        log_warn("audit: BRIGADE_AUDIT_CHECKPOINT_EVERY=\"%s\" is not 1..100000000; using %d",
                 v, OBS_AUDIT_CHECKPOINT_EVERY);
        return OBS_AUDIT_CHECKPOINT_EVERY;
    }
    return n;
}

static audit_state *audit_state_of(store *st)
{
    pthread_mutex_lock(&audit_reg_mu);
    audit_state *s = audit_reg;
    while (s && s->st != st) s = s->next;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) abort();
        s->st = st;
        pthread_mutex_init(&s->mu, NULL);
        char dir[4096], err[512];
        store_data_dir(st, dir, sizeof dir);
        if (audit_key_load(dir, true, &s->key, err, sizeof err) == 0) s->has_key = true;
        else log_error("audit: no signing key, checkpoints are not written: %s", err);
        s->chain.hash = audit_chain_hash;
        s->chain.sign = s->has_key ? audit_chain_sign_cb : NULL;
        s->chain.sign_arg = s->has_key ? &s->key : NULL;
        s->chain.every = audit_every_from_env();
        s->next = audit_reg;
        audit_reg = s;
    }
    pthread_mutex_unlock(&audit_reg_mu);
    return s;
}

void obs_audit_actor(const scope *sc, char *out, size_t outlen)
{
    if (!scope_valid(sc)) snprintf(out, outlen, "anonymous");
    else if (sc->role == SCOPE_SERVER_ADMIN) snprintf(out, outlen, "server_admin");
    else if (sc->role == SCOPE_TENANT_ADMIN) snprintf(out, outlen, "tenant_admin:%s", sc->key_id);
    else snprintf(out, outlen, "user:%s", sc->user_id);
}

store_status obs_audit_raw(store *st, const char *tenant_id, const char *actor,
                           const char *credential, const char *action, const char *target,
                           cJSON *details)
{
    audit_state *s = audit_state_of(st);
    char *text = details ? cJSON_PrintUnformatted(details) : NULL;
    cJSON_Delete(details);
    audit_rec e;
    memset(&e, 0, sizeof e);
    e.tenant_id = tenant_id;
    e.actor = actor;
    e.credential = credential;
    e.action = action;
    e.target = target;
    e.details = text;
    store_status r = store_audit_append(st, &e, &s->chain);
    /* The act already happened: a lost entry must at least be loud. */
    if (r != STORE_OK)
        log_error("audit: could not record %s by %s on %s: %s", action ? action : "?",
                  actor ? actor : "?", target ? target : "", store_status_text(r));
    free(text);
    return r;
}

store_status obs_audit_for_tenant(store *st, const scope *actor, const char *tenant_id,
                                  const char *action, const char *target, cJSON *details)
{
    char who[96];
    obs_audit_actor(actor, who, sizeof who);
    return obs_audit_raw(st, tenant_id, who, scope_valid(actor) ? actor->key_id : "",
                         action, target, details);
}

store_status obs_audit(store *st, const scope *actor, const char *action, const char *target,
                       cJSON *details)
{
    return obs_audit_for_tenant(st, actor, scope_valid(actor) ? actor->tenant_id : "",
                                action, target, details);
}

static uint64_t audit_fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1;
}

bool obs_audit_auth_admit(store *st, const char *source, uint64_t *suppressed)
{
    audit_state *s = audit_state_of(st);
    uint64_t h = audit_fnv(source ? source : "");
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec;
    bool admit = false;
    pthread_mutex_lock(&s->mu);
    audit_source *slot = &s->sources[h % AUDIT_SOURCE_SLOTS];
    if (slot->hash != h) {              /* new source (or a collision): start afresh */
        slot->hash = h;
        slot->last_s = now - OBS_AUDIT_AUTH_PER_SOURCE_S;
        slot->suppressed = 0;
    }
    if (s->global_s != now) {
        s->global_s = now;
        s->global_n = 0;
    }
    if (now - slot->last_s >= OBS_AUDIT_AUTH_PER_SOURCE_S && s->global_n < OBS_AUDIT_AUTH_GLOBAL_PER_S) {
        admit = true;
        *suppressed = slot->suppressed;
        slot->suppressed = 0;
        slot->last_s = now;
        s->global_n++;
    } else {
        slot->suppressed++;
    }
    pthread_mutex_unlock(&s->mu);
    return admit;
}

int obs_audit_pubkey(const char *data_dir, char out[65], char *err, size_t errlen)
{
    audit_key key;
    if (audit_key_load(data_dir, true, &key, err, errlen) != 0) return -1;
    audit_hex(key.pk, sizeof key.pk, out);
    return 0;
}

void obs_audit_close(store *st)
{
    pthread_mutex_lock(&audit_reg_mu);
    audit_state **pp = &audit_reg;
    while (*pp && (*pp)->st != st) pp = &(*pp)->next;
    audit_state *s = *pp;
    if (s) *pp = s->next;
    pthread_mutex_unlock(&audit_reg_mu);
    if (!s) return;
    if (s->has_key) {
        store_status r = store_audit_checkpoint(st, &s->chain);
        if (r != STORE_OK) log_error("audit: shutdown checkpoint failed: %s", store_status_text(r));
    }
    pthread_mutex_destroy(&s->mu);
    memset(&s->key, 0, sizeof s->key);
    free(s);
}
