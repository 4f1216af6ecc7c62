/* identity.c — credentials to scopes, and the changes that affect them.
 *
 * Hot path: identity_authenticate resolves a credential from memory only
 * (the cache below, under the read side of a rwlock). Cold path: every
 * mutation writes the store first — durably, through the group-commit
 * writer — and only then updates the cache under the write lock, so the
 * cache never claims something the disk does not, and a revocation or a
 * disabled flag is in force for the very next request.
 *
 * Cache tables (all keyed by strings, see util/strmap.h):
 *   keys     HMAC hex       → id_key     (key id, tenant, user, kind, revoked)
 *   users    user id        → id_user    (tenant, external id, tier, disabled)
 *   ext      tenant\nextid  → user id    (JWT subject → user)
 *   issuers  iss            → id_issuer  (tenant, audience, parsed key)
 *   tenants  tenant id      → id_tenant  (default tier, its issuer)
 *
 * Tenants' JWT keys are sealed under the server secret before they reach
 * the store and opened only here, into the parsed keys above (seal.h). */
#include "identity/identity.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "util/strmap.h"
#include "identity/hmac.h"
#include "identity/jwt.h"
#include "identity/scope_mint.h"
#include "identity/seal.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/timeutil.h"

#define IDENTITY_JWT_LEEWAY_S 60
#define IDENTITY_CRED_MAX JWT_MAX_TOKEN

typedef struct id_key {
    char key_id[ID_MAX];
    char tenant_id[ID_MAX];
    char user_id[ID_MAX];
    key_kind kind;
    bool revoked;
} id_key;

typedef struct id_user {
    char tenant_id[ID_MAX];
    char external_id[STORE_NAME_MAX];
    char tier[32];
    bool disabled;
    user_limits limits;            /* overrides of the tier (-1 = not set) */
} id_user;

typedef struct id_issuer {
    char tenant_id[ID_MAX];
    char issuer[STORE_NAME_MAX];
    char audience[STORE_NAME_MAX];
    jwt_alg alg;
    jwt_key *key;
} id_issuer;

typedef struct id_tenant {
    char default_tier[32];
    char issuer[STORE_NAME_MAX];   /* "" if no JWT configured */
    user_limits limits;            /* overrides of governance.tenant_limits (-1 = not set) */
} id_tenant;

struct identity {
    store *st;
    char default_tier[32];         /* the server's default tier, for new tenants */
    unsigned char secret[IDENTITY_SECRET_LEN];
    unsigned char seal_key[SEAL_KEY_LEN];   /* derived from secret: seals tenants' JWT keys */
    identity_hmac_key *key_mac;    /* HMAC under secret, its pads hashed once (id_hash) */
    bool has_admin;
    char admin_hash[65];           /* HMAC of the admin token: compared, never the token */
    pthread_rwlock_t lock;         /* guards the tables */
    pthread_mutex_t mutate;        /* orders store-then-cache updates of admin changes */
    strmap *keys, *users, *ext, *issuers, *tenants;
    strmap *key_limits;            /* key id → user_limits, for keys with limits of their own */
    struct id_legacy *legacy;      /* during identity_open: JWT keys still stored in plaintext */
    strmap *revoked_ids;           /* key id → (marker) for every revoked key */
    identity_revoked_fn on_revoked;   /* set before serving (runs) */
    void  *on_revoked_arg;
    /* several instances on one store (identity_sync): the audit log's
     * position this cache has seen, one round at a time (sync_mu), and how
     * many rounds have completed (for identity_catch_up) */
    pthread_mutex_t  sync_mu;
    int64_t          sync_after;
    _Atomic uint64_t sync_rounds;
    _Atomic bool     shared;           /* identity_sync has run: other instances may write */
};

/* The value stored in revoked_ids: only its presence matters. */
static char id_revoked_marker;

/* A tenant whose JWT key an older version stored in plaintext: sealed and
 * written back once, at start. */
typedef struct id_legacy {
    char tenant_id[ID_MAX];
    char alg[8];
    char *stored;                  /* the plaintext, as stored */
    struct id_legacy *next;
} id_legacy;

static const user_limits id_no_limits = {-1, -1, -1, -1, -1};

static void id_issuer_free(void *p)
{
    id_issuer *i = p;
    if (i) jwt_key_free(i->key);
    free(i);
}

static void id_copy(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src ? src : ""); }

static void id_ext_key(char *out, size_t n, const char *tenant_id, const char *external_id)
{
    /* '\n' cannot occur in a tenant id, so the pair is unambiguous */
    snprintf(out, n, "%s\n%s", tenant_id, external_id);
}

/* ---- cache updates (caller holds the write lock) ---- */

static void id_cache_key(identity *id, const key_rec *k)
{
    id_key *e = malloc(sizeof *e);
    if (!e) return;
    id_copy(e->key_id, sizeof e->key_id, k->id);
    id_copy(e->tenant_id, sizeof e->tenant_id, k->tenant_id);
    id_copy(e->user_id, sizeof e->user_id, k->user_id);
    e->kind = k->kind;
    e->revoked = k->revoked_at != 0;
    if (strmap_put(id->keys, k->hash, e) != 0) free(e);
    if (k->revoked_at) strmap_put(id->revoked_ids, k->id, &id_revoked_marker);
    const user_limits *l = &k->limits;
    if (l->rpm >= 0 || l->tpm >= 0 || l->daily_budget_nusd >= 0 || l->monthly_budget_nusd >= 0) {
        user_limits *kl = malloc(sizeof *kl);
        if (kl) {
            *kl = *l;
            if (strmap_put(id->key_limits, k->id, kl) != 0) free(kl);
        }
    }
}

static void id_cache_user(identity *id, const user_rec *u)
{
    id_user *e = malloc(sizeof *e);
    char *uid = strdup(u->id);
    char ek[ID_MAX + STORE_NAME_MAX + 2];
    if (!e || !uid) { free(e); free(uid); return; }
    id_copy(e->tenant_id, sizeof e->tenant_id, u->tenant_id);
    id_copy(e->external_id, sizeof e->external_id, u->external_id);
    id_copy(e->tier, sizeof e->tier, u->tier);
    e->disabled = u->disabled;
    e->limits = u->limits;
    if (strmap_put(id->users, u->id, e) != 0) free(e);
    id_ext_key(ek, sizeof ek, u->tenant_id, u->external_id);
    if (strmap_put(id->ext, ek, uid) != 0) free(uid);
}

/* Replace the tenant's issuer entry with jwt (NULL: remove it). */
static void id_cache_tenant(identity *id, const char *tenant_id, const char *default_tier,
                            const tenant_jwt *jwt)
{
    id_tenant *t = strmap_get(id->tenants, tenant_id);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t || strmap_put(id->tenants, tenant_id, t) != 0) { free(t); return; }
        t->limits = id_no_limits;
    }
    if (default_tier) id_copy(t->default_tier, sizeof t->default_tier, default_tier[0] ? default_tier : "default");
    if (t->issuer[0]) {
        id_issuer *old = strmap_get(id->issuers, t->issuer);
        if (old && strcmp(old->tenant_id, tenant_id) == 0) strmap_del(id->issuers, t->issuer);
        t->issuer[0] = '\0';
    }
    if (!jwt) return;
    char err[128];
    if (!jwt->audience[0])
        log_warn("identity: tenant %s: its JWT settings name no audience; its tokens are refused "
                 "until its admin sets one (PATCH /v1/tenants/%s with jwt.audience)", tenant_id, tenant_id);
    jwt_alg alg = jwt_alg_from_name(jwt->alg);
    jwt_key *k = jwt_key_load(alg, jwt->key, jwt->key ? strlen(jwt->key) : 0, err, sizeof err);
    if (!k) {
        log_warn("identity: tenant %s: JWT key unusable (%s); its tokens will be refused", tenant_id, err);
        return;
    }
    id_issuer *is = calloc(1, sizeof *is);
    if (!is) { jwt_key_free(k); return; }
    id_copy(is->tenant_id, sizeof is->tenant_id, tenant_id);
    id_copy(is->issuer, sizeof is->issuer, jwt->issuer);
    id_copy(is->audience, sizeof is->audience, jwt->audience);
    is->alg = alg;
    is->key = k;
    if (strmap_put(id->issuers, jwt->issuer, is) != 0) { id_issuer_free(is); return; }
    id_copy(t->issuer, sizeof t->issuer, jwt->issuer);
}

/* ---- open / close ---- */

static void id_cache_tenant_limits(identity *id, const char *tenant_id, const user_limits *l)
{
    id_tenant *t = strmap_get(id->tenants, tenant_id);
    if (t) t->limits = *l;
}

static void id_load_tenant_cb(const tenant_rec *t, void *arg)
{
    identity *id = arg;
    tenant_jwt jwt;
    const tenant_jwt *use = NULL;
    char *plain = NULL;
    if (t->has_jwt && t->jwt.key) {
        jwt = t->jwt;
        if (seal_is_sealed(t->jwt.key)) {
            if (seal_open_jwt_key(id->seal_key, t->id, t->jwt.alg, t->jwt.key, &plain) == 0) {
                jwt.key = plain;
                use = &jwt;
            } else {
                /* another server secret, or a row altered or copied from
                 * another tenant: sign-in by JWT is off until its admin
                 * sets the key again */
                log_error("identity: tenant %s: its JWT key does not open under this server's "
                          "secret; its tokens are refused until its admin sets the key again", t->id);
            }
        } else {
            use = &t->jwt;
            id_legacy *l = calloc(1, sizeof *l);
            if (l && (l->stored = strdup(t->jwt.key))) {
                id_copy(l->tenant_id, sizeof l->tenant_id, t->id);
                id_copy(l->alg, sizeof l->alg, t->jwt.alg);
                l->next = id->legacy;
                id->legacy = l;
            } else {
                free(l);
            }
        }
    }
    id_cache_tenant(id, t->id, t->default_tier, use);
    id_cache_tenant_limits(id, t->id, &t->limits);
    if (plain) {
        OPENSSL_cleanse(plain, strlen(plain));
        free(plain);
    }
}

/* Seal the JWT keys older versions stored in plaintext, then rewrite the
 * database so the plaintext does not stay behind in freed pages. A failure
 * is logged and left for the next start: the keys still work meanwhile. */
static void id_seal_legacy_keys(identity *id)
{
    size_t sealed = 0;
    while (id->legacy) {
        id_legacy *l = id->legacy;
        id->legacy = l->next;
        char *box = seal_jwt_key(id->seal_key, l->tenant_id, l->alg, l->stored, strlen(l->stored));
        store_status s = box ? store_tenant_reseal_jwt_key(id->st, l->tenant_id, l->stored, box)
                             : STORE_ERROR;
        if (s == STORE_OK) sealed++;
        else log_error("identity: tenant %s: cannot seal its JWT key: %s", l->tenant_id, store_status_text(s));
        free(box);
        OPENSSL_cleanse(l->stored, strlen(l->stored));
        free(l->stored);
        free(l);
    }
    if (sealed) {
        log_info("identity: sealed %zu tenant JWT key(s) stored in plaintext by an older version", sealed);
        store_scrub_freed(id->st);
    }
}
static void id_load_user_cb(const user_rec *u, void *arg) { id_cache_user(arg, u); }
static void id_load_key_cb(const key_rec *k, void *arg) { id_cache_key(arg, k); }

identity *identity_open(store *st, const char *data_dir, const char *admin_token,
                        char *err, size_t errlen)
{
    identity *id = calloc(1, sizeof *id);
    if (!id) { snprintf(err, errlen, "out of memory"); return NULL; }
    id->st = st;
    id_copy(id->default_tier, sizeof id->default_tier, "default");
    if (identity_load_secret(data_dir, id->secret, err, errlen) != 0) { free(id); return NULL; }
    if (seal_derive_key(id->secret, id->seal_key) != 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        OPENSSL_cleanse(id->secret, sizeof id->secret);
        free(id);
        return NULL;
    }
    id->key_mac = identity_hmac_key_new(id->secret, sizeof id->secret);
    pthread_rwlock_init(&id->lock, NULL);
    pthread_mutex_init(&id->mutate, NULL);
    pthread_mutex_init(&id->sync_mu, NULL);
    id->keys = strmap_new(free);
    id->users = strmap_new(free);
    id->ext = strmap_new(free);
    id->issuers = strmap_new(id_issuer_free);
    id->tenants = strmap_new(free);
    id->key_limits = strmap_new(free);
    id->revoked_ids = strmap_new(NULL);
    if (!id->keys || !id->users || !id->ext || !id->issuers || !id->tenants || !id->key_limits ||
        !id->revoked_ids) {
        snprintf(err, errlen, "out of memory");
        identity_close(id);
        return NULL;
    }
    if (admin_token && *admin_token) {
        id->has_admin = true;
        identity_hash_key(id->secret, sizeof id->secret, admin_token, id->admin_hash);
    }
    if (store_load_tenants(st, id_load_tenant_cb, id) != STORE_OK ||
        store_load_users(st, id_load_user_cb, id) != STORE_OK ||
        store_load_keys(st, id_load_key_cb, id) != STORE_OK) {
        snprintf(err, errlen, "cannot load credentials from the store");
        identity_close(id);
        return NULL;
    }
    id_seal_legacy_keys(id);
    return id;
}

void identity_close(identity *id)
{
    if (!id) return;
    strmap_free(id->keys);
    strmap_free(id->users);
    strmap_free(id->ext);
    strmap_free(id->issuers);
    strmap_free(id->tenants);
    strmap_free(id->key_limits);
    strmap_free(id->revoked_ids);
    pthread_rwlock_destroy(&id->lock);
    pthread_mutex_destroy(&id->mutate);
    pthread_mutex_destroy(&id->sync_mu);
    while (id->legacy) {
        id_legacy *l = id->legacy;
        id->legacy = l->next;
        free(l->stored);
        free(l);
    }
    identity_hmac_key_free(id->key_mac);
    OPENSSL_cleanse(id->secret, sizeof id->secret);
    OPENSSL_cleanse(id->seal_key, sizeof id->seal_key);
    free(id);
}

/* identity_hash_key under the server secret, through the prepared key
 * (the same MAC; the one-shot form if preparing it failed). */
static void id_hash(identity *id, const char *cred, char out_hex[65])
{
    unsigned char mac[32];
    if (id->key_mac && identity_hmac_sha256_with(id->key_mac, cred, strlen(cred), mac)) {
        ids_hex(out_hex, mac, 32);
        OPENSSL_cleanse(mac, sizeof mac);
        return;
    }
    identity_hash_key(id->secret, sizeof id->secret, cred, out_hex);
}

/* ---- authentication ---- */

static auth_status id_fail(char *why, size_t whylen, auth_status st, const char *msg)
{
    if (why && whylen) snprintf(why, whylen, "%s", msg);
    return st;
}

/* "Bearer <cred>": scheme case-insensitive (RFC 7235), one credential. */
static bool id_parse_bearer(const char *h, const char **cred, size_t *len)
{
    while (*h == ' ' || *h == '\t') h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) return false;
    h += 6;
    while (*h == ' ' || *h == '\t') h++;
    size_t n = strnlen(h, IDENTITY_CRED_MAX + 1);
    if (n > IDENTITY_CRED_MAX) return false;
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] <= 0x20 || (unsigned char)h[i] >= 0x7f) return false;
    *cred = h;
    *len = n;
    return true;
}

static auth_status id_auth_key(identity *id, const char *hash, scope *out, char *why, size_t whylen)
{
    auth_status res;
    pthread_rwlock_rdlock(&id->lock);
    const id_key *k = strmap_get(id->keys, hash);
    const id_user *u = NULL;
    if (!k) {
        /* With other instances writing to the store, a key made there a
         * moment ago may not be in this cache yet: the caller catches up
         * (identity_catch_up) and asks again before answering 401. */
        res = id_fail(why, whylen, atomic_load(&id->shared) ? AUTH_UNSEEN_KEY : AUTH_INVALID,
                      "invalid API key");
    } else if (k->revoked) {
        res = id_fail(why, whylen, AUTH_REVOKED, "API key has been revoked");
    } else if (!strmap_get(id->tenants, k->tenant_id)) {
        res = id_fail(why, whylen, AUTH_INVALID, "invalid API key");
    } else if (k->kind == KEY_KIND_ADMIN) {
        scope_mint_tenant_admin(out, k->tenant_id, k->key_id);
        res = AUTH_OK;
    } else if (!(u = strmap_get(id->users, k->user_id)) || strcmp(u->tenant_id, k->tenant_id) != 0) {
        res = id_fail(why, whylen, AUTH_INVALID, "invalid API key");   /* user erased */
    } else if (u->disabled) {
        res = id_fail(why, whylen, AUTH_DISABLED, "user is disabled");
    } else {
        scope_mint_user(out, k->tenant_id, k->user_id, k->key_id, u->tier);
        res = AUTH_OK;
    }
    pthread_rwlock_unlock(&id->lock);
    return res;
}

static auth_status id_auth_jwt(identity *id, const char *token, scope *out, auth_pending *pending,
                               char *why, size_t whylen)
{
    char iss[STORE_NAME_MAX];
    if (!jwt_peek_issuer(token, iss, sizeof iss))
        return id_fail(why, whylen, AUTH_INVALID, "invalid token");

    auth_status res;
    pthread_rwlock_rdlock(&id->lock);
    const id_issuer *is = strmap_get(id->issuers, iss);
    if (!is) {
        pthread_rwlock_unlock(&id->lock);
        return id_fail(why, whylen, AUTH_INVALID, "invalid token: issuer not accepted");
    }
    if (!is->audience[0]) {
        /* settings from before audiences were required: a token minted for
         * any other app of the same identity provider would pass */
        pthread_rwlock_unlock(&id->lock);
        return id_fail(why, whylen, AUTH_INVALID,
                       "invalid token: this tenant's JWT settings name no audience; its admin must "
                       "set jwt.audience before tokens are accepted");
    }
    jwt_issuer_cfg cfg = {
        .issuer = is->issuer,
        .audience = is->audience,
        .alg = is->alg,
        .leeway_s = IDENTITY_JWT_LEEWAY_S,
    };
    jwt_claims cl;
    /* Verified under the read lock: the parsed key cannot be freed by a
     * concurrent settings change while in use, and readers do not block
     * each other. */
    jwt_status js = jwt_verify_with_key(token, &cfg, is->key, time_now_unix(), &cl);
    if (js != JWT_OK) {
        char msg[128];
        snprintf(msg, sizeof msg, "invalid token: %s", jwt_status_text(js));
        res = id_fail(why, whylen, (js == JWT_EXPIRED || js == JWT_NOT_YET_VALID) ? AUTH_EXPIRED : AUTH_INVALID, msg);
        pthread_rwlock_unlock(&id->lock);
        return res;
    }
    char tenant_id[ID_MAX];
    id_copy(tenant_id, sizeof tenant_id, is->tenant_id);
    char ek[ID_MAX + STORE_NAME_MAX + 2];
    id_ext_key(ek, sizeof ek, tenant_id, cl.sub);
    const char *uid = strmap_get(id->ext, ek);
    const id_user *u = uid ? strmap_get(id->users, uid) : NULL;
    if (!u) {
        if (pending) {
            memset(pending, 0, sizeof *pending);
            id_copy(pending->tenant_id, sizeof pending->tenant_id, tenant_id);
            id_copy(pending->external_id, sizeof pending->external_id, cl.sub);
        }
        res = id_fail(why, whylen, AUTH_NEEDS_PROVISION, "user not yet provisioned");
    } else if (u->disabled) {
        res = id_fail(why, whylen, AUTH_DISABLED, "user is disabled");
    } else {
        scope_mint_user(out, tenant_id, uid, "jwt", u->tier);
        res = AUTH_OK;
    }
    pthread_rwlock_unlock(&id->lock);
    return res;
}

/* The credential's MAC as hex: from the connection's memo when it holds
 * exactly these bytes, else computed (and kept there if it is a key).
 * Compared in constant time: behind a proxy that reuses its upstream
 * connections, the memo may hold another client's key, and how long a
 * comparison took must not tell how much of it a guess got right. */
static void id_hash_memo(identity *id, const char *cred, size_t n, identity_key_memo *memo, char hash[65])
{
    bool keepable = memo && n <= IDENTITY_KEY_MEMO_MAX && strncmp(cred, "bk_", 3) == 0;
    if (keepable && memo->len == n && CRYPTO_memcmp(memo->cred, cred, n) == 0) {
        memcpy(hash, memo->hash, sizeof memo->hash);
        return;
    }
    id_hash(id, cred, hash);
    if (keepable && !(id->has_admin && CRYPTO_memcmp(hash, id->admin_hash, 64) == 0)) {
        memcpy(memo->cred, cred, n);
        memcpy(memo->hash, hash, sizeof memo->hash);
        memo->len = (uint8_t)n;
    }
}

auth_status identity_authenticate(identity *id, const char *authorization, scope *out,
                                  auth_pending *pending, char *why, size_t whylen)
{
    return identity_authenticate_memo(id, authorization, NULL, out, pending, why, whylen);
}

/* Credentials up to this long are copied on the stack (keys, most JWTs). */
#define ID_CRED_STACK 512

auth_status identity_authenticate_memo(identity *id, const char *authorization, identity_key_memo *memo,
                                       scope *out, auth_pending *pending, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (why && whylen) why[0] = '\0';
    if (!authorization || !*authorization)
        return id_fail(why, whylen, AUTH_MISSING, "missing Authorization header");
    const char *cp;
    size_t n;
    if (!id_parse_bearer(authorization, &cp, &n))
        return id_fail(why, whylen, AUTH_MALFORMED, "Authorization must be \"Bearer <credential>\"");
    char small[ID_CRED_STACK];
    char *cred = n < sizeof small ? small : malloc(n + 1);
    if (!cred) return id_fail(why, whylen, AUTH_INVALID, "invalid credential");
    memcpy(cred, cp, n);
    cred[n] = '\0';

    auth_status res;
    char hash[65];
    id_hash_memo(id, cred, n, memo, hash);
    size_t dots = 0;
    for (size_t i = 0; i < n; i++) dots += cred[i] == '.';

    /* Compare MACs, not the token: constant time whatever the lengths. */
    if (id->has_admin && CRYPTO_memcmp(hash, id->admin_hash, 64) == 0) {
        scope_mint_server_admin(out);
        res = AUTH_OK;
    } else if (strncmp(cred, "bk_", 3) == 0) {
        res = id_auth_key(id, hash, out, why, whylen);
    } else if (dots == 2) {
        res = id_auth_jwt(id, cred, out, pending, why, whylen);
    } else {
        res = id_fail(why, whylen, AUTH_INVALID, "invalid credential");
    }
    OPENSSL_cleanse(cred, n);
    if (cred != small) free(cred);
    return res;
}

bool identity_is_admin_token(identity *id, const char *authorization)
{
    const char *cp;
    size_t n;
    if (!id || !id->has_admin || !authorization || !id_parse_bearer(authorization, &cp, &n))
        return false;
    char *cred = malloc(n + 1);
    if (!cred) return false;
    memcpy(cred, cp, n);
    cred[n] = '\0';
    char hash[65];
    id_hash(id, cred, hash);
    OPENSSL_cleanse(cred, n);
    free(cred);
    return CRYPTO_memcmp(hash, id->admin_hash, 64) == 0;
}

auth_status identity_provision(identity *id, const auth_pending *pending, scope *out,
                               char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (!pending || !pending->tenant_id[0] || !pending->external_id[0])
        return id_fail(why, whylen, AUTH_INVALID, "invalid token");
    char tier[32] = "";
    pthread_rwlock_rdlock(&id->lock);
    const id_tenant *t = strmap_get(id->tenants, pending->tenant_id);
    if (t) id_copy(tier, sizeof tier, t->default_tier);
    pthread_rwlock_unlock(&id->lock);
    if (!t) return id_fail(why, whylen, AUTH_INVALID, "invalid token");

    user_rec u;
    pthread_mutex_lock(&id->mutate);   /* store then cache, as every change (id_reload) */
    store_status s = store_user_provision(id->st, pending->tenant_id, pending->external_id, tier, &u);
    if (s != STORE_OK) {
        pthread_mutex_unlock(&id->mutate);
        log_error("identity: provisioning %s failed: %s", pending->tenant_id, store_status_text(s));
        return id_fail(why, whylen, AUTH_INVALID, "cannot provision user");
    }
    /* Racing provisions read back the same row, so caching it twice is harmless. */
    pthread_rwlock_wrlock(&id->lock);
    id_cache_user(id, &u);
    pthread_rwlock_unlock(&id->lock);
    pthread_mutex_unlock(&id->mutate);
    if (u.disabled) return id_fail(why, whylen, AUTH_DISABLED, "user is disabled");
    scope_mint_user(out, u.tenant_id, u.id, "jwt", u.tier);
    return AUTH_OK;
}

/* ---- validation helpers ---- */

static bool id_text_ok(const char *s, size_t max)
{
    if (!s || !*s) return false;
    size_t n = strnlen(s, max);
    if (n >= max) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

static bool id_jwt_ok(const tenant_jwt *j)
{
    if (!id_text_ok(j->issuer, sizeof j->issuer)) return false;
    /* required: without it a token minted for another app of the same
     * identity provider would sign its holder in here */
    if (!id_text_ok(j->audience, sizeof j->audience)) return false;
    jwt_alg alg = jwt_alg_from_name(j->alg);
    if (alg == JWT_ALG_NONE || !j->key) return false;
    char err[128];
    if (jwt_check_key(alg, j->key, strlen(j->key), err, sizeof err) != 0) {
        log_info("identity: JWT key refused: %s", err);
        return false;
    }
    return true;
}

static void id_new_key(identity *id, key_kind kind, key_rec *k, char key_out[KEY_MAX])
{
    memset(k, 0, sizeof *k);
    identity_generate_key(kind == KEY_KIND_ADMIN ? "bk_adm_" : "bk_usr_", key_out);
    ids_new(k->id, "key");
    k->kind = kind;
    memcpy(k->prefix, key_out, KEY_PREFIX_LEN);
    k->prefix[KEY_PREFIX_LEN] = '\0';
    id_hash(id, key_out, k->hash);
    k->created_at = time_now_unix();
}

/* ---- tenants ---- */

void identity_set_default_tier(identity *id, const char *tier)
{
    if (tier && tier[0]) id_copy(id->default_tier, sizeof id->default_tier, tier);
}

store_status identity_create_tenant(identity *id, const scope *sc, const char *name,
                                    const tenant_jwt *jwt, tenant_rec *out,
                                    char admin_key_out[KEY_MAX])
{
    if (out) memset(out, 0, sizeof *out);
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    if (!id_text_ok(name, STORE_NAME_MAX)) return STORE_INVALID;
    if (jwt && !id_jwt_ok(jwt)) return STORE_INVALID;

    tenant_rec t;
    memset(&t, 0, sizeof t);
    ids_new(t.id, "ten");
    id_copy(t.name, sizeof t.name, name);
    id_copy(t.default_tier, sizeof t.default_tier, id->default_tier);
    t.created_at = time_now_unix();
    char *sealed = NULL;
    if (jwt) {
        sealed = seal_jwt_key(id->seal_key, t.id, jwt->alg, jwt->key, strlen(jwt->key));
        if (!sealed) return STORE_ERROR;
        t.has_jwt = true;
        t.jwt = *jwt;
        t.jwt.key = sealed;   /* the store keeps only the sealed form */
    }

    char key[KEY_MAX];
    key_rec k;
    id_new_key(id, KEY_KIND_ADMIN, &k, key);
    id_copy(k.tenant_id, sizeof k.tenant_id, t.id);

    /* out is filled before the write: an act's audit entry reads the new
     * id from it inside the act's transaction (obs_audit_act_target). */
    if (out) {
        *out = t;
        out->jwt.key = NULL;
    }
    pthread_mutex_lock(&id->mutate);
    store_status s = store_tenant_create(id->st, sc, &t, &k);
    if (s == STORE_OK) {
        pthread_rwlock_wrlock(&id->lock);
        id_cache_tenant(id, t.id, t.default_tier, jwt);
        id_cache_key(id, &k);
        pthread_rwlock_unlock(&id->lock);
    }
    pthread_mutex_unlock(&id->mutate);
    if (s == STORE_OK) {
        if (admin_key_out) memcpy(admin_key_out, key, KEY_MAX);
        if (out) out->jwt.key = jwt && jwt->key ? strdup(jwt->key) : NULL;
    } else if (out) {
        memset(out, 0, sizeof *out);
    }
    free(sealed);
    OPENSSL_cleanse(key, sizeof key);
    return s;
}

/* What the audit records of a tenant's JWT settings: never the key, only
 * its fingerprint (the stored key is opened to compute it). */
static void id_jwt_summary(identity *id, const char *tenant_id, const tenant_rec *t,
                           jwt_settings_summary *out)
{
    memset(out, 0, sizeof *out);
    if (!t->has_jwt) return;
    out->set = true;
    id_copy(out->issuer, sizeof out->issuer, t->jwt.issuer);
    id_copy(out->audience, sizeof out->audience, t->jwt.audience);
    id_copy(out->alg, sizeof out->alg, t->jwt.alg);
    char *plain = NULL;
    if (t->jwt.key && seal_open_jwt_key(id->seal_key, tenant_id, t->jwt.alg, t->jwt.key, &plain) == 0) {
        identity_key_fingerprint(plain, strlen(plain), out->key_fingerprint);
        OPENSSL_cleanse(plain, strlen(plain));
        free(plain);
    }
}

store_status identity_set_tenant_jwt(identity *id, const scope *sc, const char *tenant_id,
                                     const tenant_jwt *jwt, tenant_rec *out,
                                     jwt_settings_summary *before, jwt_settings_summary *after)
{
    if (out) memset(out, 0, sizeof *out);
    if (before) memset(before, 0, sizeof *before);
    if (after) memset(after, 0, sizeof *after);
    if (!scope_valid(sc) || !tenant_id) return STORE_NOT_FOUND;
    /* The server admin sets them at creation only: afterwards it could
     * point them at an issuer it controls and sign in as any user. */
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (strcmp(sc->tenant_id, tenant_id) != 0) return STORE_NOT_FOUND;
    if (jwt && !id_jwt_ok(jwt)) return STORE_INVALID;
    tenant_jwt sealed_jwt;
    char *sealed = NULL;
    if (jwt) {
        sealed = seal_jwt_key(id->seal_key, tenant_id, jwt->alg, jwt->key, strlen(jwt->key));
        if (!sealed) return STORE_ERROR;
        sealed_jwt = *jwt;
        sealed_jwt.key = sealed;
    }
    /* after is known before the write: an act's audit entry reads both
     * summaries inside the act's transaction (obs_audit_act_fill) */
    if (after && jwt) {
        after->set = true;
        id_copy(after->issuer, sizeof after->issuer, jwt->issuer);
        id_copy(after->audience, sizeof after->audience, jwt->audience);
        id_copy(after->alg, sizeof after->alg, jwt->alg);
        identity_key_fingerprint(jwt->key, strlen(jwt->key), after->key_fingerprint);
    }
    pthread_mutex_lock(&id->mutate);
    tenant_rec old;
    store_status s = store_tenant_get(id->st, sc, tenant_id, &old);
    if (s == STORE_OK) {
        if (before) id_jwt_summary(id, tenant_id, &old, before);
        tenant_rec_free(&old);
        s = store_tenant_set_jwt(id->st, sc, tenant_id, jwt ? &sealed_jwt : NULL);
    }
    if (s == STORE_OK) {
        pthread_rwlock_wrlock(&id->lock);
        id_cache_tenant(id, tenant_id, NULL, jwt);
        pthread_rwlock_unlock(&id->lock);
    }
    pthread_mutex_unlock(&id->mutate);
    free(sealed);
    if (s != STORE_OK && after) memset(after, 0, sizeof *after);
    if (s == STORE_OK && out) s = store_tenant_get(id->st, sc, tenant_id, out);
    return s;
}

/* ---- users ---- */

store_status identity_create_user(identity *id, const scope *sc, const char *external_id,
                                  const char *tier, const char *display_name, user_rec *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    if (!id_text_ok(external_id, STORE_NAME_MAX)) return STORE_INVALID;
    if (tier && !id_text_ok(tier, sizeof ((user_rec *)0)->tier)) return STORE_INVALID;
    if (display_name && display_name[0] && !id_text_ok(display_name, STORE_NAME_MAX)) return STORE_INVALID;

    user_rec u;
    memset(&u, 0, sizeof u);
    ids_new(u.id, "usr");
    id_copy(u.tenant_id, sizeof u.tenant_id, sc->tenant_id);
    id_copy(u.external_id, sizeof u.external_id, external_id);
    id_copy(u.display_name, sizeof u.display_name, display_name);
    if (tier) {
        id_copy(u.tier, sizeof u.tier, tier);
    } else {
        pthread_rwlock_rdlock(&id->lock);
        const id_tenant *t = strmap_get(id->tenants, sc->tenant_id);
        id_copy(u.tier, sizeof u.tier, t && t->default_tier[0] ? t->default_tier : "default");
        pthread_rwlock_unlock(&id->lock);
    }
    u.limits = (user_limits){-1, -1, -1, -1, -1};
    u.created_at = time_now_unix();

    if (out) *out = u;             /* before the write: the audit entry reads the id */
    pthread_mutex_lock(&id->mutate);
    store_status s = store_user_create(id->st, sc, &u);
    if (s == STORE_OK) {
        pthread_rwlock_wrlock(&id->lock);
        id_cache_user(id, &u);
        pthread_rwlock_unlock(&id->lock);
    }
    pthread_mutex_unlock(&id->mutate);
    if (s != STORE_OK && out) memset(out, 0, sizeof *out);
    return s;
}

/* Tell the listener, outside every lock of ours. */
static void id_notify(identity *id, const char *tenant_id, const char *user_id,
                      const char *key_id, const char *code, const char *message)
{
    pthread_rwlock_rdlock(&id->lock);
    identity_revoked_fn fn = id->on_revoked;
    void *arg = id->on_revoked_arg;
    pthread_rwlock_unlock(&id->lock);
    if (!fn) return;
    identity_revocation rv = {tenant_id, user_id, key_id, code, message};
    fn(arg, &rv);
}

store_status identity_update_user(identity *id, const scope *sc, const char *user_id,
                                  const user_update *upd, user_rec *out)
{
    user_rec u;
    pthread_mutex_lock(&id->mutate);
    store_status s = store_user_update(id->st, sc, user_id, upd, &u);
    if (s == STORE_OK) {
        pthread_rwlock_wrlock(&id->lock);
        id_cache_user(id, &u);
        pthread_rwlock_unlock(&id->lock);
    }
    pthread_mutex_unlock(&id->mutate);
    if (s == STORE_OK && u.disabled)
        id_notify(id, u.tenant_id, u.id, NULL, "user_disabled", "the user was disabled");
    if (out) {
        if (s == STORE_OK) *out = u; else memset(out, 0, sizeof *out);
    }
    return s;
}

static bool id_key_of_user(const char *key, void *val, void *arg)
{
    (void)key;
    return strcmp(((const id_key *)val)->user_id, arg) == 0;
}

store_status identity_delete_user(identity *id, const scope *sc, const char *user_id)
{
    if (!user_id) return STORE_NOT_FOUND;
    pthread_mutex_lock(&id->mutate);
    store_status s = store_user_delete(id->st, sc, user_id);
    if (s == STORE_OK) {
        pthread_rwlock_wrlock(&id->lock);
        id_user *u = strmap_get(id->users, user_id);
        if (u) {
            char ek[ID_MAX + STORE_NAME_MAX + 2];
            id_ext_key(ek, sizeof ek, u->tenant_id, u->external_id);
            strmap_del(id->ext, ek);
            strmap_del(id->users, user_id);
        }
        strmap_foreach(id->keys, id_key_of_user, (void *)user_id);
        pthread_rwlock_unlock(&id->lock);
    }
    pthread_mutex_unlock(&id->mutate);
    if (s == STORE_OK)
        id_notify(id, sc->tenant_id, user_id, NULL, "user_deleted", "the user was deleted");
    return s;
}

/* ---- keys ---- */

/* Store a new key, then cache it, under the mutation lock (store first:
 * what the cache says is on disk); hand the key out once and wipe the
 * local copy whatever happened. */
static store_status id_store_new_key(identity *id, const scope *sc, key_rec *k, char key[KEY_MAX],
                                     key_rec *out, char key_out[KEY_MAX])
{
    if (out) *out = *k;            /* before the write: the audit entry reads the id */
    pthread_mutex_lock(&id->mutate);
    store_status s = store_key_create(id->st, sc, k);
    if (s == STORE_OK) {
        pthread_rwlock_wrlock(&id->lock);
        id_cache_key(id, k);
        pthread_rwlock_unlock(&id->lock);
    }
    pthread_mutex_unlock(&id->mutate);
    if (s == STORE_OK) {
        if (key_out) memcpy(key_out, key, KEY_MAX);
    } else if (out) {
        memset(out, 0, sizeof *out);
    }
    OPENSSL_cleanse(key, KEY_MAX);
    return s;
}

store_status identity_create_user_key(identity *id, const scope *sc, const char *user_id,
                                      key_rec *out, char key_out[KEY_MAX])
{
    return identity_create_user_key_limited(id, sc, user_id, NULL, out, key_out);
}

store_status identity_create_user_key_limited(identity *id, const scope *sc, const char *user_id,
                                              const user_limits *limits, key_rec *out,
                                              char key_out[KEY_MAX])
{
    if (out) memset(out, 0, sizeof *out);
    if (!scope_valid(sc) || !user_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    char key[KEY_MAX];
    key_rec k;
    id_new_key(id, KEY_KIND_USER, &k, key);
    id_copy(k.tenant_id, sizeof k.tenant_id, sc->tenant_id);
    id_copy(k.user_id, sizeof k.user_id, user_id);
    k.limits = limits ? *limits : id_no_limits;
    k.limits.max_concurrent_runs = -1;

    return id_store_new_key(id, sc, &k, key, out, key_out);   /* checks the user is this tenant's */
}

store_status identity_revoke_key(identity *id, const scope *sc, const char *key_id)
{
    key_rec k;
    pthread_mutex_lock(&id->mutate);
    store_status s = store_key_get(id->st, sc, key_id, &k);     /* scope-checked */
    if (s == STORE_OK) s = store_key_revoke(id->st, sc, key_id, time_now_unix());
    if (s == STORE_OK) {
        pthread_rwlock_wrlock(&id->lock);
        id_key *e = strmap_get(id->keys, k.hash);
        if (e) e->revoked = true;
        strmap_put(id->revoked_ids, k.id, &id_revoked_marker);
        pthread_rwlock_unlock(&id->lock);
    }
    pthread_mutex_unlock(&id->mutate);
    if (s == STORE_OK && k.kind == KEY_KIND_USER)
        id_notify(id, k.tenant_id, k.user_id, k.id, "revoked_credential",
                  "the API key that started the run was revoked");
    return s;
}

/* ---- tenant admin keys ---- */

/* The tenant-admin scope an admin-key change runs under: the tenant's own
 * admin's, or — for the server admin — one minted for that tenant (its
 * audit entries still name the server admin: the handlers record them
 * with the caller's scope). */
static store_status id_admin_scope(identity *id, const scope *sc, const char *tenant_id, scope *as)
{
    memset(as, 0, sizeof *as);
    if (!scope_valid(sc) || !tenant_id) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_TENANT_ADMIN) {
        if (strcmp(sc->tenant_id, tenant_id) != 0) return STORE_NOT_FOUND;
        *as = *sc;
        return STORE_OK;
    }
    if (sc->role != SCOPE_SERVER_ADMIN) return STORE_FORBIDDEN;
    pthread_rwlock_rdlock(&id->lock);
    bool known = strmap_get(id->tenants, tenant_id) != NULL;
    pthread_rwlock_unlock(&id->lock);
    if (!known) return STORE_NOT_FOUND;
    scope_mint_tenant_admin(as, tenant_id, sc->key_id);
    return STORE_OK;
}

store_status identity_create_admin_key(identity *id, const scope *sc, const char *tenant_id,
                                       key_rec *out, char key_out[KEY_MAX])
{
    if (out) memset(out, 0, sizeof *out);
    scope as;
    store_status s = id_admin_scope(id, sc, tenant_id, &as);
    if (s != STORE_OK) return s;
    char key[KEY_MAX];
    key_rec k;
    id_new_key(id, KEY_KIND_ADMIN, &k, key);
    id_copy(k.tenant_id, sizeof k.tenant_id, tenant_id);
    k.limits = id_no_limits;
    return id_store_new_key(id, &as, &k, key, out, key_out);
}

store_status identity_list_admin_keys(identity *id, const scope *sc, const char *tenant_id,
                                      key_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    scope as;
    store_status s = id_admin_scope(id, sc, tenant_id, &as);
    return s == STORE_OK ? store_admin_key_list(id->st, &as, out, n) : s;
}

store_status identity_revoke_admin_key(identity *id, const scope *sc, const char *tenant_id,
                                       const char *key_id)
{
    scope as;
    store_status s = id_admin_scope(id, sc, tenant_id, &as);
    if (s != STORE_OK) return s;
    key_rec k;
    s = store_key_get(id->st, &as, key_id, &k);
    if (s == STORE_OK && k.kind != KEY_KIND_ADMIN) s = STORE_NOT_FOUND;   /* a user key: not here */
    return s == STORE_OK ? identity_revoke_key(id, &as, key_id) : s;
}

/* ---- limits ---- */

store_status identity_set_tenant_limits(identity *id, const scope *sc, const char *tenant_id,
                                        const user_limits *limits)
{
    pthread_mutex_lock(&id->mutate);
    store_status s = store_tenant_set_limits(id->st, sc, tenant_id, limits);
    if (s == STORE_OK) {
        pthread_rwlock_wrlock(&id->lock);
        id_cache_tenant_limits(id, tenant_id, limits);
        pthread_rwlock_unlock(&id->lock);
    }
    pthread_mutex_unlock(&id->mutate);
    return s;
}

bool identity_limits(identity *id, const scope *sc, user_limits *user, user_limits *key,
                     user_limits *tenant)
{
    *user = *key = *tenant = id_no_limits;
    if (!scope_valid(sc)) return false;
    pthread_rwlock_rdlock(&id->lock);
    const id_tenant *t = strmap_get(id->tenants, sc->tenant_id);
    if (t) *tenant = t->limits;
    if (sc->user_id[0]) {
        const id_user *u = strmap_get(id->users, sc->user_id);
        if (u) *user = u->limits;
    }
    const user_limits *kl = sc->key_id[0] ? strmap_get(id->key_limits, sc->key_id) : NULL;
    if (kl) *key = *kl;
    pthread_rwlock_unlock(&id->lock);
    return t != NULL;
}

/* ---- credentials lost while work they started goes on ---- */

/* ---- several instances: the cache follows the audit log ---- */

/* The actions whose entries mean the cache may be stale (their targets'
 * rows changed in the same transaction). */
static bool id_sync_action(const char *a)
{
    static const char *const prefixes[] = {"key.", "user.", "tenant.", "admin_key.", "budget.change"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (a && strncmp(a, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return false;
}

typedef struct id_sync_scan {
    int64_t last;
    int     relevant;
    size_t  rows;
} id_sync_scan;

static void id_sync_entry(const audit_rec *e, void *arg)
{
    id_sync_scan *s = arg;
    s->rows++;
    if (e->seq > s->last) s->last = e->seq;
    if (id_sync_action(e->action)) s->relevant++;
}

/* One revocation to tell, collected under the lock, told after it. */
typedef struct id_lost {
    char tenant_id[ID_MAX], user_id[ID_MAX], key_id[ID_MAX];
    const char *code, *message;
    struct id_lost *next;
} id_lost;

static id_lost *id_lost_add(id_lost *list, const char *t, const char *u, const char *k, const char *code,
                            const char *message)
{
    id_lost *l = calloc(1, sizeof *l);
    if (!l) return list;
    id_copy(l->tenant_id, sizeof l->tenant_id, t);
    id_copy(l->user_id, sizeof l->user_id, u);
    if (k) id_copy(l->key_id, sizeof l->key_id, k);
    l->code = code;
    l->message = message;
    l->next = list;
    return l;
}

typedef struct id_diff {
    identity *fresh;
    id_lost  *lost;
} id_diff;

static bool id_diff_key(const char *hash, void *val, void *arg)
{
    id_diff *d = arg;
    const id_key *old = val;
    const id_key *now = strmap_get(d->fresh->keys, hash);
    if (!old->revoked && (!now || now->revoked))
        d->lost = id_lost_add(d->lost, old->tenant_id, old->user_id, old->key_id, "revoked_credential",
                              "the credential was revoked");
    return true;
}

static bool id_diff_user(const char *uid, void *val, void *arg)
{
    id_diff *d = arg;
    const id_user *old = val;
    const id_user *now = strmap_get(d->fresh->users, uid);
    if (!now) d->lost = id_lost_add(d->lost, old->tenant_id, uid, NULL, "user_deleted", "the user was deleted");
    else if (!old->disabled && now->disabled)
        d->lost = id_lost_add(d->lost, old->tenant_id, uid, NULL, "user_disabled", "the user was disabled");
    return true;
}

/* Load every key, user and tenant into fresh tables, swap them in, and
 * tell the listener what was lost. */
static int id_reload(identity *id)
{
    identity fresh;
    memset(&fresh, 0, sizeof fresh);
    memcpy(fresh.seal_key, id->seal_key, sizeof fresh.seal_key);
    fresh.keys = strmap_new(free);
    fresh.users = strmap_new(free);
    fresh.ext = strmap_new(free);
    fresh.issuers = strmap_new(id_issuer_free);
    fresh.tenants = strmap_new(free);
    fresh.key_limits = strmap_new(free);
    fresh.revoked_ids = strmap_new(NULL);
    int rc = 0;
    /* Held from the load to the swap: a change of ours (store, then cache,
     * under this lock) is either in what we load or made after the swap —
     * never lost by swapping in tables read before it committed. */
    pthread_mutex_lock(&id->mutate);
    if (!fresh.keys || !fresh.users || !fresh.ext || !fresh.issuers || !fresh.tenants || !fresh.key_limits ||
        !fresh.revoked_ids || store_load_tenants(id->st, id_load_tenant_cb, &fresh) != STORE_OK ||
        store_load_users(id->st, id_load_user_cb, &fresh) != STORE_OK ||
        store_load_keys(id->st, id_load_key_cb, &fresh) != STORE_OK)
        rc = -1;
    while (fresh.legacy) {   /* plaintext JWT keys are sealed by the instance that starts, not here */
        id_legacy *l = fresh.legacy;
        fresh.legacy = l->next;
        OPENSSL_cleanse(l->stored, strlen(l->stored));
        free(l->stored);
        free(l);
    }
    id_diff d = {&fresh, NULL};
    if (rc == 0) {
        pthread_rwlock_wrlock(&id->lock);
        strmap_foreach(id->keys, id_diff_key, &d);
        strmap_foreach(id->users, id_diff_user, &d);
#define ID_SWAP(f) do { strmap *t_ = id->f; id->f = fresh.f; fresh.f = t_; } while (0)
        ID_SWAP(keys); ID_SWAP(users); ID_SWAP(ext); ID_SWAP(issuers); ID_SWAP(tenants);
        ID_SWAP(key_limits); ID_SWAP(revoked_ids);
#undef ID_SWAP
        pthread_rwlock_unlock(&id->lock);
    }
    pthread_mutex_unlock(&id->mutate);
    strmap_free(fresh.keys);
    strmap_free(fresh.users);
    strmap_free(fresh.ext);
    strmap_free(fresh.issuers);
    strmap_free(fresh.tenants);
    strmap_free(fresh.key_limits);
    strmap_free(fresh.revoked_ids);
    OPENSSL_cleanse(fresh.seal_key, sizeof fresh.seal_key);
    while (d.lost) {
        id_lost *l = d.lost;
        d.lost = l->next;
        id_notify(id, l->tenant_id, l->user_id, l->key_id[0] ? l->key_id : NULL, l->code, l->message);
        free(l);
    }
    return rc;
}

/* One round of identity_sync; sync_mu held. */
static int id_sync_round(identity *id)
{
    int64_t *after = &id->sync_after;
    if (*after == 0) {
        audit_tail t;
        if (store_audit_tail(id->st, &t) != STORE_OK) return -1;
        *after = t.last_seq > 0 ? t.last_seq : -1;   /* -1: an empty log, start at its beginning */
        atomic_store(&id->shared, true);
        return 0;
    }
    scope sa;
    scope_mint_server_admin(&sa);
    int relevant = 0;
    int64_t cursor = *after < 0 ? 0 : *after;
    for (int round = 0; round < 64; round++) {   /* at most 64,000 entries a call: the next call goes on */
        id_sync_scan s = {.last = cursor};
        audit_query q = {.after = cursor, .limit = 1000};
        bool more = false;
        if (store_audit_list(id->st, &sa, &q, id_sync_entry, &s, &more) != STORE_OK) return -1;
        cursor = s.last;
        relevant += s.relevant;
        if (!more || !s.rows) break;
    }
    /* the cursor moves only once the cache has what it saw */
    if (relevant && id_reload(id) != 0) return -1;
    if (cursor > 0) *after = cursor;
    return relevant;
}

int identity_sync(identity *id)
{
    pthread_mutex_lock(&id->sync_mu);
    int n = id_sync_round(id);
    atomic_fetch_add(&id->sync_rounds, 1);
    pthread_mutex_unlock(&id->sync_mu);
    return n;
}

/* A round that began after the caller arrived has seen every change
 * committed before it: the round running when it arrived (if any) ends
 * as rounds+1, so rounds+2 is the first that surely began later. Callers
 * waiting together share one round; the store sees one round at a time
 * however many unknown keys arrive. */
int identity_catch_up(identity *id)
{
    uint64_t arrived = atomic_load(&id->sync_rounds);
    pthread_mutex_lock(&id->sync_mu);
    int n = 0;
    if (atomic_load(&id->sync_rounds) < arrived + 2) {
        n = id_sync_round(id);
        atomic_fetch_add(&id->sync_rounds, 1);
    }
    pthread_mutex_unlock(&id->sync_mu);
    return n;
}

void identity_on_revocation(identity *id, identity_revoked_fn fn, void *arg)
{
    pthread_rwlock_wrlock(&id->lock);
    id->on_revoked = fn;
    id->on_revoked_arg = arg;
    pthread_rwlock_unlock(&id->lock);
}

auth_status identity_scope_check(identity *id, const scope *sc, char *why, size_t whylen)
{
    if (!scope_valid(sc)) return id_fail(why, whylen, AUTH_INVALID, "invalid credential");
    if (sc->role == SCOPE_SERVER_ADMIN) return AUTH_OK;
    auth_status res = AUTH_OK;
    pthread_rwlock_rdlock(&id->lock);
    const id_user *u = sc->role == SCOPE_USER ? strmap_get(id->users, sc->user_id) : NULL;
    if (!strmap_get(id->tenants, sc->tenant_id))
        res = id_fail(why, whylen, AUTH_INVALID, "the tenant no longer exists");
    else if (sc->key_id[0] && strmap_get(id->revoked_ids, sc->key_id))
        res = id_fail(why, whylen, AUTH_REVOKED, "API key has been revoked");
    else if (sc->role == SCOPE_USER && (!u || strcmp(u->tenant_id, sc->tenant_id) != 0))
        res = id_fail(why, whylen, AUTH_INVALID, "the user no longer exists");
    else if (u && u->disabled)
        res = id_fail(why, whylen, AUTH_DISABLED, "user is disabled");
    pthread_rwlock_unlock(&id->lock);
    return res;
}

/* A paused run rebuilt after a restart goes on as its user, with the
 * credential it was started with: the scope is minted here (only identity
 * mints scopes) for a user that still exists in that tenant. Whether the
 * credential is still good is the caller's identity_scope_check, as for a
 * queued message. */
bool identity_scope_of_paused_run(identity *id, const char *tenant_id, const char *user_id,
                                  const char *key_id, scope *out)
{
    memset(out, 0, sizeof *out);
    if (!tenant_id || !user_id || !key_id) return false;
    pthread_rwlock_rdlock(&id->lock);
    const id_user *u = strmap_get(id->users, user_id);
    bool ok = u && strcmp(u->tenant_id, tenant_id) == 0;
    if (ok) scope_mint_user(out, tenant_id, user_id, key_id, u->tier);
    pthread_rwlock_unlock(&id->lock);
    return ok;
}

/* ---- the command line ---- */

void identity_cli_scope(identity *id, scope *out)
{
    (void)id;
    scope_mint_server_admin(out);
    id_copy(out->key_id, sizeof out->key_id, "cli");
}

store_status identity_cli_tenant_scope(identity *id, const char *tenant_id, scope *out)
{
    memset(out, 0, sizeof *out);
    if (!tenant_id) return STORE_NOT_FOUND;
    pthread_rwlock_rdlock(&id->lock);
    bool known = strmap_get(id->tenants, tenant_id) != NULL;
    pthread_rwlock_unlock(&id->lock);
    if (!known) return STORE_NOT_FOUND;
    scope_mint_tenant_admin(out, tenant_id, "cli");
    return STORE_OK;
}

store_status identity_system_tenant_scope(identity *id, const char *tenant_id, const char *purpose, scope *out)
{
    memset(out, 0, sizeof *out);
    if (!tenant_id || !purpose) return STORE_NOT_FOUND;
    pthread_rwlock_rdlock(&id->lock);
    bool known = strmap_get(id->tenants, tenant_id) != NULL;
    pthread_rwlock_unlock(&id->lock);
    if (!known) return STORE_NOT_FOUND;
    scope_mint_tenant_admin(out, tenant_id, purpose);
    return STORE_OK;
}
