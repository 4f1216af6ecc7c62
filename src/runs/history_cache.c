/* history_cache.c — the sessions' newest messages kept between runs: the
 * table, its bound and its idle expiry, the entries' conversion from
 * stored rows. Why it is safe, and the rules of use: history_cache.h. */
#include "runs/history_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runs/runs_internal.h"
#include "util/strfmt.h"
#include "util/strmap.h"
#include "util/timeutil.h"

struct history_entry {
    history_entry *prev, *next;       /* the cache's list, most recently put first */
    char     tenant_id[ID_MAX], user_id[ID_MAX], session_id[ID_MAX];
    cJSON   *msgs;                    /* model messages (runs_model_message), oldest first */
    size_t   n;
    int64_t  count;                   /* the session's stored messages as of the last one */
    size_t   bytes;                   /* the estimate of what msgs hold */
    uint64_t epoch;                   /* the cache's epoch when the store was read for it */
    uint64_t used_ns;                 /* put back at (monotonic) */
};

struct history_cache {
    pthread_mutex_t lock;
    strmap         *by_session;       /* session id → entry (not owned by the map) */
    history_entry  *newest, *oldest;
    size_t          bytes, max_bytes;
    uint64_t        idle_ns;
    uint64_t        epoch;            /* moves at every deletion */
    uint64_t        hits, misses;     /* history_cache_take's answers */
};

/* What a message holds in memory, near enough: each node's struct and
 * allocator overhead, its key and its string. */
#define HISTORY_NODE_BYTES 80
static size_t history_json_bytes(const cJSON *j)
{
    size_t b = 0;
    for (; j; j = j->next) {
        b += HISTORY_NODE_BYTES;
        if (j->string && !(j->type & cJSON_StringIsConst)) b += strlen(j->string) + 1;
        if (cJSON_IsString(j) && j->valuestring) b += strlen(j->valuestring) + 1;
        if (j->child) b += history_json_bytes(j->child);
    }
    return b;
}

static size_t history_msg_bytes(const cJSON *m)
{
    return HISTORY_NODE_BYTES + history_json_bytes(m ? m->child : NULL);
}

history_cache *history_cache_new(size_t max_bytes, uint64_t idle_ms)
{
    history_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->by_session = strmap_new(NULL);
    if (!c->by_session) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->max_bytes = max_bytes;
    c->idle_ns = idle_ms * 1000000ull;
    return c;
}

void history_entry_free(history_entry *e)
{
    if (!e) return;
    cJSON_Delete(e->msgs);
    free(e);
}

void history_cache_free(history_cache *c)
{
    if (!c) return;
    history_entry *e = c->newest;
    while (e) {
        history_entry *next = e->next;
        history_entry_free(e);
        e = next;
    }
    strmap_free(c->by_session);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

bool history_cache_enabled(const history_cache *c) { return c && c->max_bytes > 0; }

uint64_t history_cache_epoch(history_cache *c)
{
    if (!c) return 0;
    pthread_mutex_lock(&c->lock);
    uint64_t e = c->epoch;
    pthread_mutex_unlock(&c->lock);
    return e;
}

/* Under the lock: out of the list and the map. */
static void history_unlink(history_cache *c, history_entry *e)
{
    if (e->prev) e->prev->next = e->next;
    else c->newest = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->oldest = e->prev;
    e->prev = e->next = NULL;
    strmap_del(c->by_session, e->session_id);
    c->bytes -= e->bytes;
}

history_entry *history_cache_take(history_cache *c, const scope *sc, const char *session_id,
                                  int64_t count, uint64_t epoch)
{
    if (!history_cache_enabled(c) || !sc || !session_id) return NULL;
    pthread_mutex_lock(&c->lock);
    history_entry *e = strmap_get(c->by_session, session_id);
    if (!e || strcmp(e->tenant_id, sc->tenant_id) != 0 || strcmp(e->user_id, sc->user_id) != 0) {
        /* (another scope's is left alone: the store's check, before this,
         * refuses a session that is not the caller's) */
        c->misses++;
        pthread_mutex_unlock(&c->lock);
        return NULL;
    }
    history_unlink(c, e);
    bool current = e->count == count;
    if (current) c->hits++;
    else c->misses++;
    pthread_mutex_unlock(&c->lock);
    if (!current) {
        history_entry_free(e);        /* the session moved on without us */
        return NULL;
    }
    e->epoch = epoch;
    return e;
}

static history_entry *history_entry_new(const scope *sc, const char *session_id, int64_t count,
                                        uint64_t epoch)
{
    history_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->msgs = cJSON_CreateArray();
    if (!e->msgs) {
        free(e);
        return NULL;
    }
    str_copy(e->tenant_id, sizeof e->tenant_id, sc->tenant_id);
    str_copy(e->user_id, sizeof e->user_id, sc->user_id);
    str_copy(e->session_id, sizeof e->session_id, session_id);
    e->count = count;
    e->epoch = epoch;
    return e;
}

/* Appended, not counted (the caller decides what the count is). */
static bool history_entry_append(history_entry *e, const message_rec *m)
{
    cJSON *o = runs_model_message(m);
    if (!o || !cJSON_AddItemToArray(e->msgs, o)) {
        cJSON_Delete(o);
        return false;
    }
    e->n++;
    e->bytes += history_msg_bytes(o);
    return true;
}

static void history_entry_trim(history_entry *e, size_t max)
{
    while (e->n > max) {
        cJSON *m = cJSON_DetachItemViaPointer(e->msgs, e->msgs->child);
        e->bytes -= history_msg_bytes(m);
        cJSON_Delete(m);
        e->n--;
    }
}

history_entry *history_entry_from_rows(const scope *sc, const char *session_id,
                                       const message_rec *rows, size_t n, int64_t skip_seq,
                                       int64_t count, size_t max, uint64_t epoch)
{
    if (!sc || !session_id || (n && !rows)) return NULL;
    history_entry *e = history_entry_new(sc, session_id, count, epoch);
    if (!e) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (skip_seq && rows[i].seq == skip_seq) continue;
        if (!history_entry_append(e, &rows[i])) {
            history_entry_free(e);
            return NULL;
        }
    }
    history_entry_trim(e, max);
    return e;
}

static bool history_is_tool(const cJSON *m)
{
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    return cJSON_IsString(role) && strcmp(role->valuestring, "tool") == 0;
}

cJSON *history_entry_view(const history_entry *e, size_t limit)
{
    cJSON *out = cJSON_CreateArray();
    if (!out || !e) return out;
    const cJSON *m = e->msgs->child;
    for (size_t skip = e->n > limit ? e->n - limit : 0; m && skip; skip--) m = m->next;
    /* Never start the history on a tool result whose call was cut off. */
    while (m && history_is_tool(m)) m = m->next;
    for (; m; m = m->next) {
        cJSON *ref = cJSON_CreateObjectReference(m->child);
        if (!ref || !cJSON_AddItemToArray(out, ref)) {
            cJSON_Delete(ref);
            cJSON_Delete(out);
            return NULL;
        }
    }
    return out;
}

bool history_entry_add(history_entry *e, const message_rec *m)
{
    if (!e || !m || !history_entry_append(e, m)) return false;
    e->count++;
    return true;
}

/* Under the lock: unlink the entries unused too long or past the bound,
 * oldest first, onto *gone (freed by the caller, unlocked). */
static void history_evict_locked(history_cache *c, uint64_t now, size_t max, history_entry **gone)
{
    while (max-- && c->oldest && (c->bytes > c->max_bytes || now - c->oldest->used_ns > c->idle_ns)) {
        history_entry *o = c->oldest;
        history_unlink(c, o);
        o->next = *gone;
        *gone = o;
    }
}

static void history_free_list(history_entry *e)
{
    while (e) {
        history_entry *next = e->next;
        history_entry_free(e);
        e = next;
    }
}

void history_cache_put(history_cache *c, history_entry *e, size_t max)
{
    if (!e) return;
    if (!history_cache_enabled(c)) {
        history_entry_free(e);
        return;
    }
    history_entry_trim(e, max);
    history_entry *gone = NULL;
    uint64_t now = time_mono_ns();
    pthread_mutex_lock(&c->lock);
    history_entry *old = strmap_get(c->by_session, e->session_id);
    bool keep = e->epoch == c->epoch && e->bytes <= c->max_bytes;
    if (keep && old) {
        /* a later run's entry went back first: the newer one stays */
        if (old->count >= e->count) keep = false;
        else {
            history_unlink(c, old);
            old->next = gone;
            gone = old;
        }
    }
    if (keep && strmap_put(c->by_session, e->session_id, e) == 0) {
        e->used_ns = now;
        e->prev = NULL;
        e->next = c->newest;
        if (c->newest) c->newest->prev = e;
        else c->oldest = e;
        c->newest = e;
        c->bytes += e->bytes;
        e = NULL;
    }
    history_evict_locked(c, now, SIZE_MAX, &gone);
    pthread_mutex_unlock(&c->lock);
    history_entry_free(e);
    history_free_list(gone);
}

void history_cache_drop_session(history_cache *c, const char *session_id)
{
    if (!c || !session_id) return;
    pthread_mutex_lock(&c->lock);
    c->epoch++;
    history_entry *e = strmap_get(c->by_session, session_id);
    if (e) history_unlink(c, e);
    pthread_mutex_unlock(&c->lock);
    history_entry_free(e);
}

void history_cache_drop_user(history_cache *c, const char *tenant_id, const char *user_id)
{
    if (!c || !tenant_id) return;
    history_entry *gone = NULL;
    pthread_mutex_lock(&c->lock);
    c->epoch++;
    history_entry *e = c->newest;
    while (e) {
        history_entry *next = e->next;
        if (strcmp(e->tenant_id, tenant_id) == 0 && (!user_id || strcmp(e->user_id, user_id) == 0)) {
            history_unlink(c, e);
            e->next = gone;
            gone = e;
        }
        e = next;
    }
    pthread_mutex_unlock(&c->lock);
    history_free_list(gone);
}

void history_cache_expire(history_cache *c, size_t max)
{
    if (!c) return;
    history_entry *gone = NULL;
    pthread_mutex_lock(&c->lock);
    history_evict_locked(c, time_mono_ns(), max, &gone);
    pthread_mutex_unlock(&c->lock);
    history_free_list(gone);
}

size_t history_cache_entries(history_cache *c)
{
    if (!c) return 0;
    pthread_mutex_lock(&c->lock);
    size_t n = strmap_count(c->by_session);
    pthread_mutex_unlock(&c->lock);
    return n;
}

size_t history_cache_bytes(history_cache *c)
{
    if (!c) return 0;
    pthread_mutex_lock(&c->lock);
    size_t b = c->bytes;
    pthread_mutex_unlock(&c->lock);
    return b;
}

void history_cache_counts(history_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = *misses = 0;
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}
