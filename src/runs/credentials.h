/* credentials.h — the seam through which a run gets the calling user's own
 * credential for a tool, without the harness knowing how it is kept.
 *
 * A tool that declares `auth: {provider, scopes}` (tool_cfg.auth_provider)
 * is called with the token of the run's user for that provider. The harness
 * (src/runs/) asks for it through this table of functions just before the
 * call; the vault (src/vault/) implements it — opening the sealed
 * connection, refreshing it when it has expired, one refresh at a time —
 * and the program wires the two together (runs_set_credentials). Unit tests
 * of the harness plug in their own table.
 *
 * A user who has no usable connection for the provider gets MISSING with a
 * connect URL: the run then waits in `waiting_auth` (it emits
 * `auth.required`) until runs_on_connection_active() says the connection
 * is there, or the wait times out. The token is a secret: it goes into the
 * tool's request header and nowhere else — no log line, span, audit entry,
 * event, error message or core state holds it. */
#ifndef BRIGADE_RUNS_CREDENTIALS_H
#define BRIGADE_RUNS_CREDENTIALS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "scope/scope.h"

typedef enum runs_cred_status {
    RUNS_CRED_OK = 0,          /* header_name/header_value are set */
    RUNS_CRED_MISSING,         /* no active connection (none, expired or revoked): ask the user */
    RUNS_CRED_ERROR,           /* the vault or the provider failed: the call fails with `why` */
} runs_cred_status;

typedef struct runs_cred_answer {
    runs_cred_status status;
    const char *header_name;     /* OK: e.g. "Authorization" */
    const char *header_value;    /* OK: e.g. "Bearer …" (a secret) */
    const char *connection_id;   /* OK: the connection used (named in the audit, never its token) */
    const char *connect_url;     /* MISSING: where the user connects the provider (may be NULL) */
    const char *why;             /* MISSING, ERROR: in words, without any secret */
} runs_cred_answer;

/* Called exactly once per fetch that was not cancelled, on the loop given
 * to fetch, on a later loop turn. The answer's strings are valid during the
 * call only. */
typedef void (*runs_cred_done)(void *arg, const runs_cred_answer *a);

typedef struct runs_credentials {
    /* Start getting sc's user's credential for `provider` with at least
     * `scopes`, sent as `header_name` in `format` ("Bearer {token}").
     * Returns a handle for cancel (non-NULL). */
    void *(*fetch)(void *self, uv_loop_t *loop, const scope *sc, const char *provider,
                   char *const *scopes, size_t n_scopes, const char *header_name,
                   const char *format, runs_cred_done done, void *arg);
    /* Forget a fetch: `done` will not be called. Safe until done is called. */
    void  (*cancel)(void *self, void *handle);
    /* The service refused the token fetched at `fetched_at_s` (unix s)
     * from connection `connection_id`: have the user asked to connect
     * again at the next call (the vault marks it expired). Must not block
     * the loop. NULL: nothing is done, the call just fails. */
    void  (*refused)(void *self, uv_loop_t *loop, const scope *sc, const char *provider,
                     const char *connection_id, int64_t fetched_at_s);
    void  *self;
} runs_credentials;

struct runs;
/* Install the credentials (copied). Without them a tool with `auth` fails
 * with "no credential store is configured". Call before serving. */
void runs_set_credentials(struct runs *r, const runs_credentials *c);
/* A connection of (tenant, user, provider) has become active: the runs of
 * that user waiting in `waiting_auth` for that provider go on. Thread-safe. */
void runs_on_connection_active(struct runs *r, const char *tenant_id, const char *user_id,
                               const char *provider);

#endif
