/* console_session.c — the console's bounded in-memory session table (see
 * console_session.h). Linear scans: the table is small (bounded by
 * configuration, 1024 by default) and touched once per console request. */
#include "console/console_session.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"

typedef struct console_session {
    char    id[CONSOLE_SESSION_ID_HEX + 1];   /* "" = free slot */
    char    csrf[CONSOLE_CSRF_HEX + 1];
    char   *credential;                        /* malloc'd, wiped on close */
    int64_t expires_at;
    int64_t last_used;
} console_session;

struct console_sessions {
    pthread_mutex_t  mu;
    console_session *slots;
    uint32_t         n;
    uint32_t         ttl_s;
};

console_sessions *console_sessions_new(uint32_t max_sessions, uint32_t ttl_s)
{
    if (max_sessions == 0 || ttl_s == 0) return NULL;
    console_sessions *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->slots = calloc(max_sessions, sizeof *t->slots);
    if (!t->slots) {
        free(t);
        return NULL;
    }
    t->n = max_sessions;
    t->ttl_s = ttl_s;
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

static void slot_clear(console_session *s)
{
    if (s->credential) {
        /* the credential should not linger in freed memory */
        volatile char *p = s->credential;
        while (*p) *p++ = 0;
        free(s->credential);
    }
    memset(s, 0, sizeof *s);
}

void console_sessions_free(console_sessions *t)
{
    if (!t) return;
    for (uint32_t i = 0; i < t->n; i++) slot_clear(&t->slots[i]);
    pthread_mutex_destroy(&t->mu);
    free(t->slots);
    free(t);
}

/* Compare two NUL-terminated strings in time independent of where they
 * differ (the lengths are not secret: all ids and tokens are 64 hex). */
static bool const_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb) return false;
    unsigned char d = 0;
    for (size_t i = 0; i < la; i++) d |= (unsigned char)a[i] ^ (unsigned char)b[i];
    return d == 0;
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char raw[64];
    ids_random_bytes(raw, nbytes);
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hx[raw[i] >> 4];
        out[2 * i + 1] = hx[raw[i] & 15];
    }
    out[2 * nbytes] = 0;
}

bool console_session_open(console_sessions *t, const char *authorization, int64_t now_s,
                          char id_out[CONSOLE_SESSION_ID_HEX + 1],
                          char csrf_out[CONSOLE_CSRF_HEX + 1])
{
    if (!t || !authorization) return false;
    size_t len = strlen(authorization);
    if (len == 0 || len > CONSOLE_CREDENTIAL_MAX) return false;
    char *copy = malloc(len + 1);
    if (!copy) return false;
    memcpy(copy, authorization, len + 1);

    pthread_mutex_lock(&t->mu);
    /* One credential holds at most CONSOLE_SESSIONS_PER_CREDENTIAL
     * sessions: signing in again and again replaces its own oldest one,
     * and cannot push other people's sessions out of the table. Else a
     * free or expired slot, else the least recently used one. */
    console_session *own_oldest = NULL, *free_slot = NULL, *lru = NULL;
    unsigned own = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        console_session *s = &t->slots[i];
        if (!s->id[0] || s->expires_at <= now_s) {
            if (!free_slot) free_slot = s;
            continue;
        }
        if (!lru || s->last_used < lru->last_used) lru = s;
        if (const_eq(s->credential, copy)) {
            own++;
            if (!own_oldest || s->last_used < own_oldest->last_used) own_oldest = s;
        }
    }
    console_session *pick = own >= CONSOLE_SESSIONS_PER_CREDENTIAL ? own_oldest
                            : free_slot                            ? free_slot
                                                                   : lru;
    slot_clear(pick);
    random_hex(pick->id, CONSOLE_SESSION_ID_HEX / 2);
    random_hex(pick->csrf, CONSOLE_CSRF_HEX / 2);
    pick->credential = copy;
    pick->last_used = now_s;
    pick->expires_at = now_s + t->ttl_s;
    memcpy(id_out, pick->id, CONSOLE_SESSION_ID_HEX + 1);
    memcpy(csrf_out, pick->csrf, CONSOLE_CSRF_HEX + 1);
    pthread_mutex_unlock(&t->mu);
    return true;
}

static console_session *find_locked(console_sessions *t, const char *id, int64_t now_s)
{
    if (!id || strlen(id) != CONSOLE_SESSION_ID_HEX) return NULL;
    for (uint32_t i = 0; i < t->n; i++) {
        console_session *s = &t->slots[i];
        if (!s->id[0]) continue;
        if (const_eq(s->id, id)) {
            if (s->expires_at <= now_s) {
                slot_clear(s);
                return NULL;
            }
            return s;
        }
    }
    return NULL;
}

console_session_status console_session_resolve(console_sessions *t, const char *id,
                                               const char *csrf, bool check_csrf, int64_t now_s,
                                               char *cred_out, size_t cred_cap,
                                               char csrf_out[CONSOLE_CSRF_HEX + 1],
                                               int64_t *expires_out)
{
    if (!t) return CONSOLE_SESSION_UNKNOWN;
    console_session_status st = CONSOLE_SESSION_UNKNOWN;
    pthread_mutex_lock(&t->mu);
    console_session *s = find_locked(t, id, now_s);
    if (s) {
        if (check_csrf && (!csrf || !const_eq(s->csrf, csrf))) {
            st = CONSOLE_SESSION_BAD_CSRF;
        } else if (strlen(s->credential) + 1 > cred_cap) {
            st = CONSOLE_SESSION_UNKNOWN;
        } else {
            st = CONSOLE_SESSION_OK;
            strcpy(cred_out, s->credential);
            s->last_used = now_s;
            s->expires_at = now_s + t->ttl_s;   /* sliding */
            if (csrf_out) memcpy(csrf_out, s->csrf, CONSOLE_CSRF_HEX + 1);
            if (expires_out) *expires_out = s->expires_at;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

bool console_session_close(console_sessions *t, const char *id)
{
    if (!t) return false;
    pthread_mutex_lock(&t->mu);
    console_session *s = find_locked(t, id, 0);
    if (s) slot_clear(s);
    pthread_mutex_unlock(&t->mu);
    return s != NULL;
}

size_t console_sessions_count(console_sessions *t, int64_t now_s)
{
    if (!t) return 0;
    size_t n = 0;
    pthread_mutex_lock(&t->mu);
    for (uint32_t i = 0; i < t->n; i++)
        if (t->slots[i].id[0] && t->slots[i].expires_at > now_s) n++;
    pthread_mutex_unlock(&t->mu);
    return n;
}

bool console_cookie_get(const char *cookie_header, const char *name, char *out, size_t cap)
{
    if (!cookie_header || !name || cap == 0) return false;
    size_t nlen = strlen(name);
    const char *p = cookie_header;
    while (*p) {
        while (*p == ' ' || *p == ';') p++;
        const char *end = strchr(p, ';');
        size_t seg = end ? (size_t)(end - p) : strlen(p);
        if (seg > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = seg - nlen - 1;
            while (vlen && v[vlen - 1] == ' ') vlen--;
            if (vlen == 0 || vlen >= cap) return false;
            memcpy(out, v, vlen);
            out[vlen] = 0;
            return true;
        }
        if (!end) break;
        p = end + 1;
    }
    return false;
}
