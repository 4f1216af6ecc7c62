/* store_connections.h — the vault's rows: a user's connections to
 * credential providers and the OAuth consent flows in progress.
 *
 * The store keeps only what the vault hands it: a connection's secrets
 * arrive sealed (src/vault/vault_seal.c) and leave sealed; a flow's state,
 * start ticket and browser binding arrive as hashes, its PKCE verifier
 * sealed. Functions that take a scope reach only that user's rows (another
 * user's connection is STORE_NOT_FOUND); those that take (tenant_id,
 * user_id) are for the vault, which has proved the owner (a run's scope,
 * or a consent flow's state row). */
#ifndef BRIGADE_STORE_CONNECTIONS_H
#define BRIGADE_STORE_CONNECTIONS_H

#include <stdint.h>

#include "store/store.h"

#define CONN_PROVIDER_MAX 72
#define CONN_SCOPES_MAX 2048

typedef struct connection_rec {
    char    id[ID_MAX];
    char    tenant_id[ID_MAX];
    char    user_id[ID_MAX];
    char    provider[CONN_PROVIDER_MAX];
    char    status[16];              /* pending, active, expired, revoked */
    char    scopes[CONN_SCOPES_MAX]; /* space-separated, as granted */
    char   *sealed;                  /* malloc'd; NULL while pending */
    int     key_version;             /* of the vault key that sealed it */
    int64_t expires_at;              /* access token expiry, unix s; 0 = does not expire */
    int64_t refreshing_until;        /* an instance holds the refresh lease until then (unix ms) */
    int64_t created_at, updated_at;
} connection_rec;

void connection_rec_free(connection_rec *c);           /* frees sealed only */
void connection_recs_free(connection_rec *arr, size_t n);

/* The caller's connections (a user scope), newest first. */
store_status store_connection_list(store *st, const scope *sc, connection_rec **out, size_t *n);
/* One of the caller's connections, by id. */
store_status store_connection_get(store *st, const scope *sc, const char *id, connection_rec *out);
/* The owner's connection to `provider`. */
store_status store_connection_find(store *st, const char *tenant_id, const char *user_id,
                                   const char *provider, connection_rec *out);
/* The caller's connection to `provider`: the existing row, or a new
 * pending one with id new_id. */
store_status store_connection_begin(store *st, const scope *sc, const char *provider,
                                    const char *new_id, int64_t now, connection_rec *out);
/* Store new secrets (sealed) for the owner's connection, status active. */
store_status store_connection_seal(store *st, const char *tenant_id, const char *user_id,
                                   const char *id, const char *scopes, const char *sealed,
                                   int key_version, int64_t expires_at, int64_t now);
/* Set the status (e.g. "expired" after invalid_grant); the secrets go. */
store_status store_connection_set_status(store *st, const char *tenant_id, const char *user_id,
                                         const char *id, const char *status, int64_t now);
/* Erase one of the caller's connections (and its flows). */
store_status store_connection_delete(store *st, const scope *sc, const char *id);
/* The refresh lease across processes: STORE_OK if this caller now holds
 * it until `until_ms`, STORE_CONFLICT if another holds it. */
store_status store_connection_lease(store *st, const char *id, int64_t now_ms, int64_t until_ms);
store_status store_connection_unlease(store *st, const char *id);

/* Key rotation: every sealed row of a key version other than `version`
 * (at most `limit`); re-seal one only if it still holds `old_sealed`
 * (a refresh may have rewritten it meanwhile: then STORE_CONFLICT). */
store_status store_connection_list_sealed_other(store *st, int version, size_t limit,
                                                connection_rec **out, size_t *n);
store_status store_connection_reseal(store *st, const char *id, const char *old_sealed,
                                     const char *new_sealed, int version);

/* ---- brigade's own registrations at authorization servers ----
 * A dynamic registration (RFC 7591) at an MCP server's authorization
 * server, kept across restarts and shared by instances. Public clients
 * only: nothing secret is kept. */

#define OAUTH_CLIENT_URL_MAX 2048   /* MCP_OAUTH_URL_MAX */

typedef struct oauth_client_rec {
    char    provider[CONN_PROVIDER_MAX];
    char    redirect_uri[OAUTH_CLIENT_URL_MAX];
    char    token_endpoint[OAUTH_CLIENT_URL_MAX];   /* the registration is for that server */
    char    client_id[512];
    char    auth_method[32];
    int64_t created_at;
} oauth_client_rec;

/* STORE_NOT_FOUND when none was kept for (provider, redirect_uri). */
store_status store_oauth_client_get(store *st, const char *provider, const char *redirect_uri,
                                    oauth_client_rec *out);
/* Keep it (replacing any for the same provider and redirect URI). */
store_status store_oauth_client_put(store *st, const oauth_client_rec *rec);

/* ---- consent flows in progress ---- */

typedef struct oauth_flow_rec {
    char    state_hash[65];          /* hex SHA-256 of the state sent to the provider */
    char    start_hash[65];          /* hex SHA-256 of the connect_url's ticket */
    char    browser_hash[65];        /* hex SHA-256 of the browser cookie; "" until started */
    char    connection_id[ID_MAX];
    char    tenant_id[ID_MAX];
    char    user_id[ID_MAX];
    char    provider[CONN_PROVIDER_MAX];
    char   *sealed_verifier;         /* malloc'd */
    int     key_version;
    int64_t expires_at;              /* unix s */
} oauth_flow_rec;

void oauth_flow_rec_free(oauth_flow_rec *f);

/* Record a new flow (expired flows are swept at the same time). */
store_status store_oauth_flow_put(store *st, const oauth_flow_rec *f, int64_t now);
/* The browser opened the connect_url: bind the flow to its cookie, once.
 * STORE_NOT_FOUND if no such unexpired flow; STORE_CONFLICT if it was
 * already started. */
store_status store_oauth_flow_start(store *st, const char *start_hash, const char *browser_hash,
                                    int64_t now, oauth_flow_rec *out);
/* The callback: take (delete) the flow of this state — single use,
 * whatever happens next. STORE_NOT_FOUND if none (forged, replayed or
 * expired: expired ones are taken too, and reported NOT_FOUND). */
store_status store_oauth_flow_take(store *st, const char *state_hash, int64_t now, oauth_flow_rec *out);

#endif
