/* identity.h — who is calling: credentials to scopes.
 *
 * The identity module owns the server secret (data-dir/secret, mode 0600),
 * key generation and hashing (HMAC-SHA256 under that secret), JWT
 * verification, and an in-memory cache of every key hash, user and tenant
 * issuer so that authentication on the hot path touches no disk. Every
 * change that affects authentication (new key, revocation, user disabled or
 * deleted, tenant JWT settings) goes through this module, which writes the
 * store first (durably) and then updates the cache, so a revoked key or a
 * disabled user fails on the very next request. Work that outlives its
 * request hears of such a loss through identity_on_revocation (runs stop)
 * and can ask identity_scope_check (a queued message before it starts).
 *
 * Thread-safety: all functions are safe from any thread; the cache is under
 * a read-write lock (authentication takes the read side). Functions marked
 * (blocking) touch the store and must run off the loop thread. */
#ifndef BRIGADE_IDENTITY_H
#define BRIGADE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scope/scope.h"
#include "store/store.h"

typedef struct identity identity;

/* Credentials are "bk_adm_" / "bk_usr_" + 43 base64url characters (256 bits). */
#define KEY_MAX 64
#define KEY_PREFIX_LEN 12       /* shown in listings: "bk_usr_AbCdE" */

/* (blocking) Load or create the server secret in data_dir, then load every
 * key, user and tenant from the store into the cache. admin_token may be
 * NULL (then no server-admin access). */
identity *identity_open(store *st, const char *data_dir, const char *admin_token,
                        char *err, size_t errlen);
void      identity_close(identity *id);

typedef enum auth_status {
    AUTH_OK = 0,
    AUTH_MISSING,            /* no Authorization header */
    AUTH_MALFORMED,          /* not "Bearer <credential>" */
    AUTH_INVALID,            /* unknown key, bad signature, wrong issuer/audience/alg */
    AUTH_EXPIRED,            /* JWT exp passed / nbf in the future */
    AUTH_REVOKED,            /* key revoked */
    AUTH_DISABLED,           /* user disabled */
    AUTH_NEEDS_PROVISION,    /* valid JWT, unknown subject: call identity_provision */
    AUTH_UNSEEN_KEY          /* an API key this cache does not hold while other instances
                              * share the store: identity_catch_up, then authenticate again
                              * (a second AUTH_UNSEEN_KEY is AUTH_INVALID) */
} auth_status;

typedef struct auth_pending {   /* filled with AUTH_NEEDS_PROVISION */
    char tenant_id[ID_MAX];
    char external_id[256];
} auth_pending;

/* Resolve an Authorization header value. Never blocks. On failure `why`
 * gets a message safe to show the client. */
auth_status identity_authenticate(identity *id, const char *authorization, scope *out,
                                  auth_pending *pending, char *why, size_t whylen);

/* A connection's memo of the last API key it presented and that key's MAC
 * under the server secret. The MAC is a pure function of the two, so a
 * keep-alive connection presenting the same key again (what SDK clients
 * do) is not hashed again; everything else — the key's lookup, revocation,
 * a disabled or erased user, a deleted tenant — is checked on every
 * request as before. Only brigade keys (bk_…) short enough are kept, never
 * JWTs or the server admin token. Zeroed: empty. One connection's alone
 * (never shared: it holds the credential's bytes); wipe it when done. A
 * proxy in front may carry several clients' requests on one connection:
 * the memo then holds the last one's key, and a request with another key
 * is compared with it in constant time and hashed anew. */
#define IDENTITY_KEY_MEMO_MAX 80
typedef struct identity_key_memo {
    uint8_t len;                          /* bytes in cred; 0: empty */
    char cred[IDENTITY_KEY_MEMO_MAX];     /* not NUL-terminated */
    char hash[65];
} identity_key_memo;

/* identity_authenticate, with the connection's memo (NULL: none). */
auth_status identity_authenticate_memo(identity *id, const char *authorization, identity_key_memo *memo,
                                       scope *out, auth_pending *pending, char *why, size_t whylen);

/* Is this Authorization header value "Bearer <the server admin token>"?
 * Never blocks (MACs compared in constant time). For the public probes,
 * which show their details to the server admin only (/readyz). */
bool identity_is_admin_token(identity *id, const char *authorization);

/* (blocking) Create the user for a verified JWT subject with the tenant's
 * default tier (idempotent if two requests race), then mint its scope. */
auth_status identity_provision(identity *id, const auth_pending *pending, scope *out,
                               char *why, size_t whylen);

/* The tier new tenants start with (the configuration's default_tier;
 * "default" until set). Call before serving. */
void identity_set_default_tier(identity *id, const char *tier);

/* --- changes that affect authentication (all blocking) --- */

/* Server admin: create a tenant and its admin key; the key is written to
 * admin_key_out (shown once). */
store_status identity_create_tenant(identity *id, const scope *sc, const char *name,
                                    const tenant_jwt *jwt, tenant_rec *out,
                                    char admin_key_out[KEY_MAX]);
/* A tenant's JWT settings as the audit records them: never the key. */
typedef struct jwt_settings_summary {
    bool set;                       /* false: JWT sign-in off */
    char issuer[STORE_NAME_MAX];
    char audience[STORE_NAME_MAX];
    char alg[8];
    char key_fingerprint[17];       /* identity_key_fingerprint; "" if the key did not open */
} jwt_settings_summary;

/* That tenant's admin only: the server admin gets STORE_FORBIDDEN (it sets
 * them at creation; afterwards it could point them at an issuer of its own
 * and sign in as any user). jwt NULL clears it; jwt->audience is required.
 * before / after (may be NULL) get the settings replaced and the new ones. */
store_status identity_set_tenant_jwt(identity *id, const scope *sc, const char *tenant_id,
                                     const tenant_jwt *jwt, tenant_rec *out,
                                     jwt_settings_summary *before, jwt_settings_summary *after);
/* A tenant's admin keys, by the server admin (any tenant: the way back in
 * for a tenant that lost its keys) or by that tenant's admin (another
 * tenant's id is STORE_NOT_FOUND). Create shows the key once; revoking the
 * tenant's last active admin key is STORE_CONFLICT. */
store_status identity_create_admin_key(identity *id, const scope *sc, const char *tenant_id,
                                       key_rec *out, char key_out[KEY_MAX]);
store_status identity_list_admin_keys(identity *id, const scope *sc, const char *tenant_id,
                                      key_rec **out, size_t *n);
store_status identity_revoke_admin_key(identity *id, const scope *sc, const char *tenant_id,
                                       const char *key_id);
/* Tenant admin: a new key for one of its users; the key is shown once. */
store_status identity_create_user_key(identity *id, const scope *sc, const char *user_id,
                                      key_rec *out, char key_out[KEY_MAX]);
/* The same, with limits of the key's own (rpm, tpm, budgets; -1 = not set);
 * NULL = none. */
store_status identity_create_user_key_limited(identity *id, const scope *sc, const char *user_id,
                                              const user_limits *limits, key_rec *out,
                                              char key_out[KEY_MAX]);
/* Server admin: the tenant's own limits (-1 fields = governance.tenant_limits). */
store_status identity_set_tenant_limits(identity *id, const scope *sc, const char *tenant_id,
                                        const user_limits *limits);
/* The overrides that apply to a request of this scope, from the cache (never
 * blocks): the user's (over its tier), the key's, the tenant's; -1 = not
 * set. False if the tenant is unknown. */
bool identity_limits(identity *id, const scope *sc, user_limits *user, user_limits *key,
                     user_limits *tenant);
/* Tenant admin (any key of its tenant) or a user (own keys only);
 * STORE_CONFLICT for the tenant's last active admin key. */
store_status identity_revoke_key(identity *id, const scope *sc, const char *key_id);
/* Tenant admin. */
store_status identity_create_user(identity *id, const scope *sc, const char *external_id,
                                  const char *tier, const char *display_name, user_rec *out);
store_status identity_update_user(identity *id, const scope *sc, const char *user_id,
                                  const user_update *upd, user_rec *out);
store_status identity_delete_user(identity *id, const scope *sc, const char *user_id);

/* --- credentials lost while work they started goes on --- */

/* A key was revoked (key_id set), or a user disabled or erased (key_id
 * NULL: every credential of the user, JWTs too). `code` and `message` are
 * string literals (static storage): "revoked_credential" / "user_disabled"
 * / "user_deleted" and a sentence saying so. */
typedef struct identity_revocation {
    const char *tenant_id;
    const char *user_id;
    const char *key_id;
    const char *code;
    const char *message;
} identity_revocation;
typedef void (*identity_revoked_fn)(void *arg, const identity_revocation *rv);

/* Call `fn` after each such change is in the store and the cache, on the
 * thread that made it (NULL: no one). One listener — the run registry,
 * which stops that user's runs. Set it before serving, clear it after. */
void identity_on_revocation(identity *id, identity_revoked_fn fn, void *arg);

/* Is the credential behind `sc` still good? Never blocks. AUTH_OK, or
 * AUTH_REVOKED (its key), AUTH_DISABLED (its user) or AUTH_INVALID (user
 * or tenant erased), with `why` for the client. For work that outlives the
 * request that authenticated it: a queued message about to start. Scopes
 * that are not a user's are AUTH_OK if their key is not revoked. */
auth_status identity_scope_check(identity *id, const scope *sc, char *why, size_t whylen);
/* The scope of a run paused before a restart (runs/pause.c): its user,
 * tier as now, and the credential it was started with. false if the user
 * no longer exists in that tenant. */
bool identity_scope_of_paused_run(identity *id, const char *tenant_id, const char *user_id,
                                  const char *key_id, scope *out);

/* For `brigade admin` (no server running): mint an admin scope from the
 * command line's authority over the data directory. */
void identity_cli_scope(identity *id, scope *out);
/* For `brigade admin` ONLY: a tenant-admin scope for tenant_id, so the CLI
 * can create users and user keys without holding a tenant admin key. Its
 * authority is the same as identity_cli_scope's (write access to the data
 * directory); no request handler may call it. STORE_NOT_FOUND if the tenant
 * does not exist. */
store_status identity_cli_tenant_scope(identity *id, const char *tenant_id, scope *out);

/* ---- several instances on one store (docs/scale-out.md) ----
 * Another instance's changes (a key made or revoked, a user disabled or
 * erased, a tenant's JWT settings or limits) reach this cache through the
 * store's audit log, which every instance appends to in one sequence and
 * where each such change has its entry, written in the same transaction.
 * identity_sync (blocking) reads the entries after the position it last
 * reached (the first call only finds the log's end, and from then on
 * identity_authenticate answers AUTH_UNSEEN_KEY rather than AUTH_INVALID
 * for a key it does not hold) and, when one of them changes
 * authentication, reloads the whole cache from the store and tells the
 * revocation listener of every key now revoked and every user now disabled
 * or erased, as if the change had been made here. Returns how many such
 * entries it saw (-1: the store failed; the position is kept, the next
 * call tries again). Serve calls it a few times a second when the store is
 * shared (PostgreSQL). One round runs at a time. */
int identity_sync(identity *id);
/* For a request whose key this cache did not hold (AUTH_UNSEEN_KEY):
 * blocks until a round of identity_sync that began after the call has
 * ended, running it if none is under way, so a key made on another
 * instance before this request arrived is found. Callers that wait at once
 * share a round. Returns as identity_sync. */
int identity_catch_up(identity *id);

/* For the server's own work on a tenant's definitions, done for no request
 * (the MCP OAuth provider resolver reads the tenant's MCP servers to find
 * the one a vault provider name stands for): a tenant-admin scope whose key
 * id names the purpose, as audit shows it. No request handler may call it:
 * a handler has its caller's scope. STORE_NOT_FOUND if the tenant does not
 * exist. */
store_status identity_system_tenant_scope(identity *id, const char *tenant_id, const char *purpose, scope *out);

/* --- primitives, exposed for unit tests and the CLI --- */

/* HMAC-SHA256(secret, key) as 64 hex digits. */
void identity_hash_key(const unsigned char *secret, size_t secret_len, const char *key,
                       char out_hex[65]);
/* The first 16 hex digits of SHA-256 over a JWT key's bytes: names a key in
 * the audit log without revealing it. */
void identity_key_fingerprint(const char *key, size_t len, char out_hex[17]);
/* A fresh credential with the given prefix ("bk_usr_" / "bk_adm_"). */
void identity_generate_key(const char *prefix, char out[KEY_MAX]);

#define IDENTITY_SECRET_LEN 32
/* Load data_dir/secret, or create it (32 random bytes, mode 0600, created
 * with O_EXCL). A secret file readable or writable by group or others is
 * refused: 0, or -1 with err filled. */
int identity_load_secret(const char *data_dir, unsigned char out[IDENTITY_SECRET_LEN],
                         char *err, size_t errlen);

#endif
