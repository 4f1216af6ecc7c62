/* mcp_oauth.h — MCP authorization (2025-11-25, with the 2025-03-26
 * fallbacks) from the client's side: reading a 401/403's
 * `WWW-Authenticate` (oauth_www.c, pure, unit-tested and fuzzed), the
 * well-known URLs to try for RFC 9728 protected-resource metadata and RFC
 * 8414 / OpenID authorization-server metadata (oauth_www.c), and the
 * authorization itself (oauth_flow.c): discovery, the client's identity
 * (pre-registered, a client ID metadata document, or RFC 7591 dynamic
 * registration), PKCE S256, RFC 8707 `resource`, the token request with
 * the token endpoint auth method the server asks for. Every request of the
 * flow passes egress (egress_curl.h) with the server's policy. */
#ifndef BRIGADE_MCP_OAUTH_H
#define BRIGADE_MCP_OAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "egress/egress_curl.h"

#define MCP_OAUTH_URL_MAX 2048
#define MCP_OAUTH_SCOPE_MAX 1024
#define MCP_OAUTH_MAX_WELL_KNOWN 4
/* Authorizations one request may cause (the first on a 401, then step-ups
 * on 403 insufficient_scope): after that the request fails, no loop. */
#define MCP_OAUTH_MAX_TRIES 3
#define MCP_OAUTH_PROTOCOL_VERSION "2025-11-25"

/* ---- WWW-Authenticate (RFC 6750 3, RFC 9728 5.1) ---- */

typedef struct mcp_www_auth {
    bool bearer;                                /* a Bearer challenge was found */
    char resource_metadata[MCP_OAUTH_URL_MAX];  /* "" when absent */
    char scope[MCP_OAUTH_SCOPE_MAX];
    char error[64];
} mcp_www_auth;

/* Parse one WWW-Authenticate header value (it may hold several
 * challenges; the Bearer one is read). Parameters are token or
 * quoted-string (with \-escapes); an over-long value is refused, not cut.
 * false when the text is malformed or holds no Bearer challenge. */
bool mcp_www_auth_parse(const char *value, mcp_www_auth *out);

/* ---- the well-known URLs ---- */

/* RFC 9728 3.1 for a server URL: path insertion first
 * (https://h/.well-known/oauth-protected-resource/PATH), then the root
 * (https://h/.well-known/oauth-protected-resource). Returns how many URLs
 * were written (0: not an http(s) URL). */
size_t mcp_prm_urls(const char *server_url, char out[][MCP_OAUTH_URL_MAX], size_t max);

/* Authorization-server metadata for an issuer (MCP 2025-11-25): with a
 * path: RFC 8414 path insertion, OIDC path insertion, OIDC path appended;
 * without: RFC 8414 then OIDC at the root. Returns the count (0: bad). */
size_t mcp_as_meta_urls(const char *issuer, char out[][MCP_OAUTH_URL_MAX], size_t max);

/* scheme://host[:port] of a URL (no path), for the 2025-03-26 fallbacks
 * and same-origin checks; false when it is not http(s). */
bool mcp_url_origin(const char *url, char *out, size_t outlen);

/* ---- the flow ---- */

typedef struct mcp_oauth_client {
    /* pre-registered (operator config; the conformance suite's context) */
    const char *client_id;
    const char *client_secret;
    const char *token_endpoint_auth_method;  /* NULL: from the server's metadata */
    /* a client ID metadata document's URL (brigade's public URL); used
     * when the server says client_id_metadata_document_supported */
    const char *client_metadata_url;
    const char *redirect_uri;
    const char *client_name;
    const char *scopes;                      /* space-separated; asked when the server names none */
    /* a dynamic registration made earlier (kept by the caller, e.g. in the
     * store), used instead of registering again when the authorization
     * server's token endpoint is still `registered_for`: a refresh token
     * is bound to the client that got it, so a new registration after a
     * restart would make every user consent again */
    const char *registered_client_id;
    const char *registered_auth_method;
    const char *registered_for;
} mcp_oauth_client;

typedef struct mcp_oauth mcp_oauth;

/* The state of one client's authorization to one MCP server: the access
 * token and what it took to get it. `policy` is the egress policy of every
 * request of the flow (copied; its allow_nets must outlive the object). */
mcp_oauth *mcp_oauth_new(const char *server_url, const mcp_oauth_client *client, const egress_policy *policy);
void       mcp_oauth_free(mcp_oauth *o);
/* The access token to send (NULL before the first authorization). */
const char *mcp_oauth_token(const mcp_oauth *o);

/* The authorization-code redirect, as a browser would follow it. A headless
 * client (brigade mcp-client) GETs the authorization URL and reads the
 * `code` from the redirect's Location; an agent run sends the user there.
 * Returns the callback URL (malloc'd) or NULL with err. */
typedef char *(*mcp_oauth_consent_fn)(void *arg, const char *authorization_url, char *err, size_t errlen);

/* Authorize (blocking: the CLI; a server runs it off its loop): after a 401
 * or a 403 insufficient_scope with `challenge` (may be NULL: none was
 * sent). Discovery, the client's identity, the authorization request
 * through `consent`, the token request. true with a new token. */
bool mcp_oauth_authorize(mcp_oauth *o, const mcp_www_auth *challenge, mcp_oauth_consent_fn consent,
                         void *consent_arg, char *err, size_t errlen);

/* Discovery without authorizing (an agent run's: the vault then runs the
 * user's consent with what it found): the challenge of a request without a
 * token, the metadata, the client's identity (a registration is made
 * here). Blocking. false with err; `refused` says egress refused an
 * address on the way (for the audit entry). */
typedef struct mcp_oauth_discovery {
    char  issuer[MCP_OAUTH_URL_MAX];                 /* "" for a 2025-03-26 server without metadata */
    char  authorization_endpoint[MCP_OAUTH_URL_MAX];
    char  token_endpoint[MCP_OAUTH_URL_MAX];
    char  resource[MCP_OAUTH_URL_MAX];
    char  scope[MCP_OAUTH_SCOPE_MAX];
    char  auth_method[32];                           /* none | client_secret_basic | client_secret_post */
    char *client_id, *client_secret;                 /* owned */
    bool  registered;                                /* a dynamic registration was made now */
    char  registered_for[MCP_OAUTH_URL_MAX];         /* registered: the token endpoint it is for */
    bool  refused;
    char  refused_class[32], refused_address[64], refused_form[32];
} mcp_oauth_discovery;
bool mcp_oauth_discover(const char *server_url, const mcp_oauth_client *client, const egress_policy *policy,
                        mcp_oauth_discovery *out, char *err, size_t errlen);
void mcp_oauth_discovery_free(mcp_oauth_discovery *d);

/* The vault's provider name for an MCP server with `auth: {kind: oauth}`:
 * "mcp:NAME:HASH", HASH the first 16 hex digits of SHA-256 over the
 * tenant (a tenant's own server; "" for the configuration's), the URL and
 * the configured client: a server whose URL changes is another provider,
 * so a user's token never follows a definition to another host. */
#define MCP_OAUTH_PROVIDER_MAX 72
void mcp_oauth_provider_name(const char *server_name, const char *url, const char *client_id,
                             const char *tenant_id, char out[MCP_OAUTH_PROVIDER_MAX]);

/* The headless consent: GET the authorization URL (egress policy of `o`),
 * no redirect followed, the Location of a 3xx is the answer. */
char *mcp_oauth_consent_headless(void *oauth, const char *authorization_url, char *err, size_t errlen);

#endif
