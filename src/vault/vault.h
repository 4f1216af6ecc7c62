/* vault.h — users' own credentials for tools: sealed connections to
 * credential providers, the OAuth consent that makes them, and the token a
 * tool call is made with.
 *
 * A connection belongs to one (tenant, user, provider). Its secrets (an
 * OAuth access and refresh token, or a pasted API key) are sealed with
 * XChaCha20-Poly1305 under a vault key kept outside the database
 * (data_dir/vault.key, vault_key.c); the associated data binds tenant, user
 * and connection id, so a row copied to another user does not open.
 *
 * Consent (docs/security.md, "Consent"): vault_connect makes a flow with a
 * random state, a PKCE verifier and a start ticket, all kept hashed or
 * sealed; connect_url is brigade's own GET /oauth/start?ticket=…, which
 * works once, binds the flow to the browser with a cookie and redirects to
 * the provider; GET /oauth/callback completes it only in that browser.
 *
 * A tool call asks for a token with vault_token_get (blocking: thread pool)
 * or vault_fetch (asynchronous, answered on the caller's loop). An expired
 * access token is refreshed, one refresh at a time per connection in this
 * process (a lock per connection) and across processes sharing the
 * database (a lease column); a refused refresh (invalid_grant) makes the
 * connection `expired`.
 *
 * No function here puts a secret in a log line, an error message or a
 * returned record other than the token handed to the tool. */
#ifndef BRIGADE_VAULT_H
#define BRIGADE_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config/config.h"
#include "scope/scope.h"
#include "store/store.h"
#include "store/store_connections.h"

typedef struct vault vault;

typedef enum vault_status {
    VAULT_OK = 0,
    VAULT_NOT_FOUND,     /* no such provider, connection or flow (404) */
    VAULT_INVALID,       /* a bad request: why says what (400) */
    VAULT_CONFLICT,      /* e.g. a connect link opened twice (409) */
    VAULT_PROVIDER,      /* the provider failed or refused: why says how (502) */
    VAULT_ERROR          /* the store or the key failed (500) */
} vault_status;

#define VAULT_URL_MAX 4096
#define VAULT_WHY_MAX 256
#define VAULT_FLOW_TTL_S 600          /* a consent flow lives 10 minutes */
#define VAULT_COOKIE "brigade_oauth"  /* the browser binding of a flow */
#define VAULT_MAX_TOKEN_RESPONSE 65536
#define VAULT_MAX_API_KEY 4096

/* Open the vault: loads (or creates, 0600) data_dir/vault.key. */
vault *vault_open(store *st, const brigade_config *cfg, const char *data_dir, char *err, size_t errlen);
void   vault_free(vault *v);

/* Told (on any thread) when a connection becomes active: the runs of that
 * user waiting for that provider go on. */
typedef void (*vault_active_fn)(void *arg, const char *tenant_id, const char *user_id, const char *provider);
void vault_set_on_active(vault *v, vault_active_fn fn, void *arg);

/* Providers made at run time: an MCP server with `auth: {kind: oauth}` is
 * the provider "mcp:SERVER:HASH" (docs/mcp.md), whose authorization server
 * is found by MCP discovery. The resolver fills `out` (strings malloc'd;
 * kind oauth2, endpoints given, client_id from the configuration or a
 * registration made with `redirect_uri`) for `tenant_id`'s server of that
 * name, or returns -1 with why. Called on the thread pool, at most once per
 * name and process when it succeeds. Set before serving. */
#define VAULT_MCP_PROVIDER_PREFIX "mcp:"
typedef int (*vault_provider_resolver)(void *arg, const char *tenant_id, const char *name, const char *redirect_uri,
                                       credential_provider_cfg *out, char *why, size_t whylen);
void vault_set_provider_resolver(vault *v, vault_provider_resolver fn, void *arg);

/* Has sc's user an active connection to provider? (A read: no consent flow
 * is begun, unlike vault_token_get's MISSING.) Blocking. */
bool vault_connection_active(vault *v, const scope *sc, const char *provider);

/* ---- the API side (blocking: call on the thread pool) ---- */

/* Begin a connection of the caller to `provider`. oauth2: *out is the
 * (pending or still active) connection and connect_url where the user
 * consents. api_key: api_key is sealed at once and *out is active. */
vault_status vault_connect(vault *v, const scope *sc, const char *provider, const char *api_key,
                           connection_rec *out, char connect_url[VAULT_URL_MAX], char why[VAULT_WHY_MAX]);
/* Revoke at the provider when it has a revocation endpoint (told in
 * *revoked_remote), then erase here, whatever the provider said. */
vault_status vault_disconnect(vault *v, const scope *sc, const char *id, bool *revoked_remote,
                              char why[VAULT_WHY_MAX]);
/* GET /oauth/start?ticket=: a new cookie value (to set) and the provider's
 * authorization URL (to redirect to). */
vault_status vault_oauth_start(vault *v, const char *ticket, char cookie[64],
                               char location[VAULT_URL_MAX], char why[VAULT_WHY_MAX]);
/* Whose flow a callback completed (for the page and the audit entry);
 * empty fields when the state named no flow. */
typedef struct vault_flow_owner {
    char tenant_id[ID_MAX];
    char user_id[ID_MAX];
    char connection_id[ID_MAX];
    char provider[CONN_PROVIDER_MAX];
} vault_flow_owner;

/* GET /oauth/callback: state, code or error and iss (RFC 9207, may be
 * NULL) from the provider, and the browser's cookie. On VAULT_OK the
 * connection is active. */
vault_status vault_oauth_callback(vault *v, const char *state, const char *code, const char *error,
                                  const char *iss, const char *cookie, vault_flow_owner *owner,
                                  char why[VAULT_WHY_MAX]);

/* The value of cookie `name` in a Cookie header (RFC 6265 pairs split by
 * ";"), or false when absent, empty or longer than outlen - 1. */
bool vault_cookie_get(const char *header, const char *name, char *out, size_t outlen);

/* ---- the tool side ---- */

typedef enum vault_token_status { VAULT_TOKEN_OK, VAULT_TOKEN_MISSING, VAULT_TOKEN_ERROR } vault_token_status;

typedef struct vault_token {
    vault_token_status status;
    char *header_value;                 /* OK: format with {token} replaced (malloc'd secret) */
    char  connection_id[ID_MAX];        /* OK */
    char  connect_url[VAULT_URL_MAX];   /* MISSING: a fresh link for an oauth2 provider, else "" */
    char  why[VAULT_WHY_MAX];           /* MISSING, ERROR */
} vault_token;

void vault_token_clear(vault_token *t);   /* wipes and frees header_value */

/* The owner's token for `provider` as `format` ("Bearer {token}"),
 * refreshed if due. Blocking. */
void vault_token_get(vault *v, const scope *sc, const char *provider, char *const *scopes,
                     size_t n_scopes, const char *format, vault_token *out);

/* The service the token was for refused it (HTTP 401, or a 403 asking for
 * more scope) while sc's user's run used it: the grant was revoked at the
 * provider, or the token no longer covers what the tool does. The
 * connection `connection_id` (the one that token came from) is marked
 * expired, so the user's next call of a tool of that provider asks the user
 * to connect again (MISSING, the run waits in waiting_auth) instead of
 * failing the same way on every call. Only that connection, and only if it
 * is still active and was not renewed (connected again, or refreshed)
 * after `fetched_at_s`, when the refused token was read from it (unix s).
 * Blocking (a store write). */
void vault_token_refused(vault *v, const scope *sc, const char *provider, const char *connection_id,
                         int64_t fetched_at_s);

/* The same on the thread pool; `done` runs on `loop` (unless cancelled). */
typedef void (*vault_fetch_done)(void *arg, const vault_token *t);
typedef struct vault_fetch vault_fetch;
vault_fetch *vault_fetch_start(vault *v, uv_loop_t *loop, const scope *sc, const char *provider,
                               char *const *scopes, size_t n_scopes, const char *format,
                               vault_fetch_done done, void *arg);
void         vault_fetch_cancel(vault_fetch *f);

/* ---- key rotation (brigade admin vault rotate-key) ---- */

/* Make a new key version, re-seal every row with it, then drop the old
 * versions from the key file. Safe while a server runs on the same data
 * dir: it reloads the key file when it meets a version it does not hold.
 * *resealed counts the rows. */
int vault_rotate_key(store *st, const char *data_dir, size_t *resealed, int *new_version,
                     char *err, size_t errlen);

/* ---- pieces, for tests and the benchmark ---- */

/* Seal / open a connection's secret JSON for (tenant, user, connection). */
char *vault_seal_for(vault *v, const char *tenant_id, const char *user_id, const char *conn_id,
                     const char *plain, int *key_version);
int   vault_open_for(vault *v, const char *tenant_id, const char *user_id, const char *conn_id,
                     const char *sealed, char **plain);

#endif
