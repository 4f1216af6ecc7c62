/* audit.c — the running audit log: turns "this scope did that" into an
 * entry of the hash chain, keeps the signing key at hand for checkpoints,
 * seals the chain within the configured bound (every N entries — in the
 * store's append — or T seconds — the sealer thread here — and at
 * shutdown), and bounds how fast and how much authentication failures can
 * grow the log.
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
#include "util/pii.h"
#include "util/utf8.h"
#include "util/xalloc.h"

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
    /* the newest checkpoint this process knows committed: if the store's
     * newest is older, checkpoints were deleted under us */
    pthread_mutex_t cp_mu;
    int64_t committed_cp_seq;
    /* the sealer thread (time bound) */
    pthread_t sealer;
    bool sealer_running, stopping;
    pthread_mutex_t seal_mu;
    pthread_cond_t seal_cv;
    pthread_mutex_t mu;     /* the rate table */
    audit_source sources[AUDIT_SOURCE_SLOTS];
    int64_t global_s;
    unsigned global_n;
    struct audit_state *next;
} audit_state;

static pthread_mutex_t audit_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static audit_state *audit_reg;

static void audit_note_sealed(audit_state *s, int64_t seq)
{
    pthread_mutex_lock(&s->cp_mu);
    if (seq > s->committed_cp_seq) s->committed_cp_seq = seq;
    pthread_mutex_unlock(&s->cp_mu);
}

/* The store's sign callback (writer thread, inside the transaction). The
 * store chains the checkpoint to its newest row; if that is older than a
 * checkpoint this process saw committed, someone deleted checkpoints: say
 * so, and chain to the one we know, so the deletion stays on record for
 * every later verify. */
static int audit_sign_cb(void *arg, audit_checkpoint *cp)
{
    audit_state *s = arg;
    pthread_mutex_lock(&s->cp_mu);
    int64_t known = s->committed_cp_seq;
    pthread_mutex_unlock(&s->cp_mu);
    if (cp->prev_seq < known) {
        log_error("audit: the store lost checkpoints this server wrote (its newest is at seq %lld, "
                  "this server committed one at seq %lld): the audit log was tampered with; the "
                  "checkpoint at seq %lld chains to seq %lld, so verify reports it",
                  (long long)cp->prev_seq, (long long)known, (long long)cp->seq, (long long)known);
        cp->prev_seq = known;
        cp->prev_signature[0] = '\0';
    }
    audit_checkpoint_sign(&s->key, cp);
    return 0;
}

static audit_state *audit_state_locked(store *st, uint64_t every, uint64_t interval_s)
{
    audit_state *s = audit_reg;
    while (s && s->st != st) s = s->next;
    if (s) return s;
    s = xcalloc(1, sizeof *s);
    s->st = st;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->cp_mu, NULL);
    pthread_mutex_init(&s->seal_mu, NULL);
    pthread_cond_init(&s->seal_cv, NULL);
    char dir[4096], err[512];
    store_data_dir(st, dir, sizeof dir);
    if (audit_key_load(dir, true, &s->key, err, sizeof err) == 0) s->has_key = true;
    else log_error("audit: no signing key, checkpoints are not written: %s", err);
    s->chain.hash = audit_chain_hash;
    s->chain.sign = s->has_key ? audit_sign_cb : NULL;
    s->chain.sign_arg = s->has_key ? s : NULL;
    s->chain.every = every ? every : AUDIT_DEFAULT_EVERY;
    s->chain.interval_s = interval_s ? interval_s : AUDIT_DEFAULT_INTERVAL_S;
    audit_tail t;
    if (store_audit_tail(st, &t) == STORE_OK) s->committed_cp_seq = t.last_cp_seq;
    s->next = audit_reg;
    audit_reg = s;
    return s;
}

static audit_state *audit_state_of(store *st)
{
    pthread_mutex_lock(&audit_reg_mu);
    audit_state *s = audit_state_locked(st, 0, 0);
    pthread_mutex_unlock(&audit_reg_mu);
    return s;
}

/* Seal the newest entry if the first unsealed one is interval_s old. */
static void audit_seal_if_due(audit_state *s)
{
    audit_tail t;
    if (store_audit_tail(s->st, &t) != STORE_OK || !t.first_unsealed_seq) return;
    if ((int64_t)time(NULL) - t.first_unsealed_ts < (int64_t)s->chain.interval_s) return;
    int64_t sealed = 0;
    store_status r = store_audit_checkpoint(s->st, &s->chain, 0, &sealed);
    if (r != STORE_OK) log_error("audit: timed checkpoint failed: %s", store_status_text(r));
    else if (sealed) audit_note_sealed(s, sealed);
}

/* Wakes every second: a seal is due within a second of its bound. */
static void *audit_sealer_main(void *arg)
{
    audit_state *s = arg;
    pthread_setname_np(pthread_self(), "sealer");   /* top -H (docs/architecture.md, Threads) */
    pthread_mutex_lock(&s->seal_mu);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->seal_cv, &s->seal_mu, &ts);
        if (s->stopping) break;
        pthread_mutex_unlock(&s->seal_mu);
        audit_seal_if_due(s);
        pthread_mutex_lock(&s->seal_mu);
    }
    pthread_mutex_unlock(&s->seal_mu);
    return NULL;
}

void obs_audit_open(store *st, uint64_t every, uint64_t interval_s, bool sealer)
{
    pthread_mutex_lock(&audit_reg_mu);
    audit_state *s = audit_state_locked(st, every, interval_s);
    pthread_mutex_unlock(&audit_reg_mu);
    if (!s->has_key) return;
    /* A tail the last run left unsealed: it crashed before its shutdown
     * checkpoint (or the newest checkpoints were deleted while it was
     * down — the checkpoint says "recovery", verify warns of it). */
    audit_tail t;
    if (store_audit_tail(st, &t) == STORE_OK && t.first_unsealed_seq) {
        int64_t sealed = 0;
        store_status r = store_audit_checkpoint(st, &s->chain, AUDIT_CP_RECOVERY, &sealed);
        if (r != STORE_OK) log_error("audit: startup checkpoint failed: %s", store_status_text(r));
        else if (sealed) {
            audit_note_sealed(s, sealed);
            log_warn("audit: entries %lld..%lld were not sealed by a checkpoint (the last run did "
                     "not stop cleanly); sealed now", (long long)t.first_unsealed_seq,
                     (long long)t.last_seq);
        }
    }
    if (sealer && !s->sealer_running) {
        if (pthread_create(&s->sealer, NULL, audit_sealer_main, s) == 0) s->sealer_running = true;
        else log_error("audit: cannot start the sealer thread: checkpoints only every %llu entries "
                       "and at shutdown", (unsigned long long)s->chain.every);
    }
}

void obs_audit_clip(const char *s, size_t max, char *out, size_t outlen)
{
    static const char ellipsis[] = "\xe2\x80\xa6";     /* U+2026 */
    size_t o = 0, i = 0, len = s ? strlen(s) : 0;
    if (!outlen) return;
    if (max >= outlen) max = outlen - 1;
    bool cut = len > max;
    size_t room = cut && max >= 3 ? max - 3 : max;     /* leave room for the "…" */
    while (i < len) {
        const unsigned char *p = (const unsigned char *)s + i;
        size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
                 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = n > 0 && i + n <= len && utf8_valid((const char *)p, n) && !(n == 1 && (*p < 0x20 || *p == 0x7f));
        size_t take = ok ? n : 1;
        if (o + (ok ? n : 1) > room) { cut = true; break; }
        if (ok) memcpy(out + o, p, n);
        else out[o] = '?';
        o += ok ? n : 1;
        i += take;
    }
    if (cut && max >= 3) {
        memcpy(out + o, ellipsis, 3);
        o += 3;
    }
    out[o] = '\0';
}

void obs_audit_actor(const scope *sc, char *out, size_t outlen)
{
    if (!scope_valid(sc)) snprintf(out, outlen, "anonymous");
    else if (sc->role == SCOPE_SERVER_ADMIN) snprintf(out, outlen, "server_admin");
    else if (sc->role == SCOPE_TENANT_ADMIN) snprintf(out, outlen, "tenant_admin:%s", sc->key_id);
    else snprintf(out, outlen, "user:%s", sc->user_id);
}

/* Personal data in the details' strings (a tool's argument, a message's
 * words) is replaced before the entry is written and chained (util/pii.h):
 * the audit log outlives erasure, so it must not hold what erasure removes.
 * Keys and numbers are brigade's own. */
static void audit_redact(cJSON *j)
{
    cJSON *c;
    if (cJSON_IsString(j) && j->valuestring) {
        char *r = pii_redact_dup(j->valuestring, strlen(j->valuestring), NULL);
        if (r) {
            free(j->valuestring);             /* cJSON's default allocator: no hooks are set */
            j->valuestring = r;
        }
        return;
    }
    cJSON_ArrayForEach(c, j) audit_redact(c);
}

/* Fill a->e from the fields, clipped, with the details as text. */
static void audit_entry_prepare(obs_audit_act *a, const char *tenant_id, const char *actor,
                                const char *credential, const char *action, const char *target,
                                cJSON *details)
{
    memset(a, 0, sizeof *a);
    audit_redact(details);
    char *text = details ? cJSON_PrintUnformatted(details) : NULL;
    cJSON_Delete(details);
    /* Defence in depth: no field grows an entry past its bound, whoever
     * calls (request text is clipped before, by the caller that knows it). */
    if (text && strlen(text) > OBS_AUDIT_DETAILS_MAX) {
        log_error("audit: details of %s (%zu bytes) exceed %d bytes; recorded as truncated",
                  action ? action : "?", strlen(text), OBS_AUDIT_DETAILS_MAX);
        char small[96];
        snprintf(small, sizeof small, "{\"truncated\":true,\"bytes\":%zu}", strlen(text));
        free(text);
        text = strdup(small);
    }
    obs_audit_clip(tenant_id, OBS_AUDIT_FIELD_MAX, a->f_tenant, sizeof a->f_tenant);
    obs_audit_clip(actor, OBS_AUDIT_FIELD_MAX, a->f_actor, sizeof a->f_actor);
    obs_audit_clip(credential, OBS_AUDIT_FIELD_MAX, a->f_cred, sizeof a->f_cred);
    obs_audit_clip(action, OBS_AUDIT_FIELD_MAX, a->f_action, sizeof a->f_action);
    obs_audit_clip(target, OBS_AUDIT_FIELD_MAX, a->f_target, sizeof a->f_target);
    a->e.tenant_id = a->f_tenant;
    a->e.actor = actor ? a->f_actor : NULL;
    a->e.credential = a->f_cred;
    a->e.action = action ? a->f_action : NULL;
    a->e.target = a->f_target;
    a->e.details = text;
    a->details_text = text;
}

store_status obs_audit_raw(store *st, const char *tenant_id, const char *actor,
                           const char *credential, const char *action, const char *target,
                           cJSON *details)
{
    audit_state *s = audit_state_of(st);
    obs_audit_act a;
    audit_entry_prepare(&a, tenant_id, actor, credential, action, target, details);
    store_status r = store_audit_append(st, &a.e, &s->chain);
    if (r == STORE_OK && a.e.sealed) audit_note_sealed(s, a.e.seq);
    /* The act already happened: a lost entry must at least be loud. */
    if (r != STORE_OK)
        log_error("audit: could not record %s by %s on %s: %s", action ? action : "?",
                  actor ? actor : "?", target ? target : "", store_status_text(r));
    free(a.details_text);
    return r;
}

/* ---- an act and its entry in one transaction ---- */

void obs_audit_act_begin(obs_audit_act *a, store *st, const scope *actor, const char *tenant_id,
                         const char *action, const char *target, cJSON *details)
{
    char who[96];
    obs_audit_actor(actor, who, sizeof who);
    obs_audit_act_begin_raw(a, st, tenant_id ? tenant_id : scope_valid(actor) ? actor->tenant_id : "",
                            who, scope_valid(actor) ? actor->key_id : "", action, target, details);
}

void obs_audit_act_begin_raw(obs_audit_act *a, store *st, const char *tenant_id, const char *actor,
                             const char *credential, const char *action, const char *target,
                             cJSON *details)
{
    audit_state *s = audit_state_of(st);
    audit_entry_prepare(a, tenant_id, actor, credential, action, target, details);
    a->st = st;
    store_audit_attach(st, &a->e, &s->chain);
}

/* store_audit_append_in calls it (writer thread, inside the transaction). */
static void audit_act_finish(audit_rec *e)
{
    obs_audit_act *a = (obs_audit_act *)e;       /* e is the act's first member */
    if (a->late_target) {
        obs_audit_clip(a->late_target, OBS_AUDIT_FIELD_MAX, a->f_target, sizeof a->f_target);
        e->target = a->f_target;
    }
    if (a->late_tenant) {
        obs_audit_clip(a->late_tenant, OBS_AUDIT_FIELD_MAX, a->f_tenant, sizeof a->f_tenant);
        e->tenant_id = a->f_tenant;
    }
    if (a->n_late || a->late_fill) {
        if (!a->late_details) a->late_details = cJSON_CreateObject();
        if (a->late_fill) a->late_fill(a->late_details, a->late_fill_arg);
        for (int i = 0; i < a->n_late; i++) {
            char v[OBS_AUDIT_FIELD_MAX + 1];
            obs_audit_clip(a->late_val[i], OBS_AUDIT_FIELD_MAX, v, sizeof v);
            cJSON_DeleteItemFromObjectCaseSensitive(a->late_details, a->late_key[i]);
            cJSON_AddStringToObject(a->late_details, a->late_key[i], v);
        }
        audit_redact(a->late_details);
        free(a->details_text);
        a->details_text = cJSON_PrintUnformatted(a->late_details);
        e->details = a->details_text ? a->details_text : "{}";
    }
    if (a->late_action && a->late_action[0]) {
        obs_audit_clip(a->late_action, OBS_AUDIT_FIELD_MAX, a->f_action, sizeof a->f_action);
        e->action = a->f_action;
    }
}

void obs_audit_act_target(obs_audit_act *a, const char *target)
{
    a->late_target = target;
    a->e.finish = audit_act_finish;
}

void obs_audit_act_action(obs_audit_act *a, const char *action)
{
    a->late_action = action;
    a->e.finish = audit_act_finish;
}

void obs_audit_act_tenant(obs_audit_act *a, const char *tenant_id)
{
    a->late_tenant = tenant_id;
    a->e.finish = audit_act_finish;
}

static void audit_act_late_details(obs_audit_act *a)
{
    if (!a->late_details) {
        a->late_details = a->details_text ? cJSON_Parse(a->details_text) : cJSON_CreateObject();
        if (!a->late_details) a->late_details = cJSON_CreateObject();
    }
    a->e.finish = audit_act_finish;
}

void obs_audit_act_fill(obs_audit_act *a, void (*fill)(cJSON *details, void *arg), void *arg)
{
    audit_act_late_details(a);
    a->late_fill = fill;
    a->late_fill_arg = arg;
}

void obs_audit_act_detail(obs_audit_act *a, const char *key, const char *value)
{
    if (a->n_late == OBS_AUDIT_LATE_MAX) return;
    audit_act_late_details(a);
    a->late_key[a->n_late] = key;
    a->late_val[a->n_late] = value;
    a->n_late++;
    a->e.finish = audit_act_finish;
}

store_status obs_audit_act_end(obs_audit_act *a)
{
    if (!a->st) return STORE_ERROR;
    store_audit_detach(a->st);
    audit_state *s = audit_state_of(a->st);
    if (a->e.written && a->e.sealed) audit_note_sealed(s, a->e.seq);
    free(a->details_text);
    a->details_text = NULL;
    cJSON_Delete(a->late_details);
    a->late_details = NULL;
    a->st = NULL;
    return a->e.written ? STORE_OK : STORE_ERROR;
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

/* ---- an entry queued without waiting (obs_audit_behind) ---- */

typedef struct audit_behind {
    obs_audit_act act;                 /* first: its entry is what the store gets */
    audit_state  *s;                   /* lives until obs_audit_close has settled the queue */
} audit_behind;

/* Writer thread, after the commit (or its failure). */
static void audit_behind_done(void *arg, store_status status, audit_rec *e)
{
    audit_behind *b = arg;
    (void)e;                           /* = &b->act.e */
    if (status == STORE_OK && b->act.e.sealed) audit_note_sealed(b->s, b->act.e.seq);
    if (status != STORE_OK)
        log_error("audit: could not record %s by %s on %s: %s", b->act.f_action, b->act.f_actor,
                  b->act.f_target, store_status_text(status));
    free(b->act.details_text);
    free(b);
}

bool obs_audit_behind(store *st, const scope *actor, const char *action, const char *target,
                      cJSON *details)
{
    if (!store_runs_write_behind(st)) return false;   /* details stay the caller's */
    audit_behind *b = malloc(sizeof *b);
    if (!b) {
        cJSON_Delete(details);
        log_error("audit: could not record %s: out of memory", action ? action : "?");
        return true;
    }
    b->s = audit_state_of(st);
    char who[96];
    obs_audit_actor(actor, who, sizeof who);
    audit_entry_prepare(&b->act, scope_valid(actor) ? actor->tenant_id : "", who,
                        scope_valid(actor) ? actor->key_id : "", action, target, details);
    b->act.st = st;
    store_status r = store_audit_append_behind(st, &b->act.e, &b->s->chain, audit_behind_done, b);
    if (r != STORE_OK) {
        log_error("audit: could not record %s by %s on %s: %s", b->act.f_action, b->act.f_actor,
                  b->act.f_target, store_status_text(r));
        free(b->act.details_text);
        free(b);
    }
    return true;
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
    if (s->sealer_running) {
        pthread_mutex_lock(&s->seal_mu);
        s->stopping = true;
        pthread_cond_signal(&s->seal_cv);
        pthread_mutex_unlock(&s->seal_mu);
        pthread_join(s->sealer, NULL);
    }
    /* Entries queued without waiting (obs_audit_behind) use s->chain in
     * the writer and s in their callbacks: all committed and called back
     * before s goes (and before the checkpoint, which then covers them). */
    store_runs_settle(st);
    if (s->has_key) {
        store_status r = store_audit_checkpoint(st, &s->chain, 0, NULL);
        if (r != STORE_OK) log_error("audit: shutdown checkpoint failed: %s", store_status_text(r));
    }
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->cp_mu);
    pthread_mutex_destroy(&s->seal_mu);
    pthread_cond_destroy(&s->seal_cv);
    memset(&s->key, 0, sizeof s->key);
    free(s);
}
