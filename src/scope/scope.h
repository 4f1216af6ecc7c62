/* scope.h — the scope type: invariant 2, docs/architecture.md, "scope is a capability".
 *
 * A scope names who is acting: the server admin, one tenant's admin, or one
 * user of one tenant. Every access to stored state takes a `const scope *`,
 * and the store answers only within it: another tenant's or another user's
 * object is "not found", never "forbidden".
 *
 * Only authentication makes scopes. The constructors live in
 * identity/scope_mint.h, which only src/identity/ may include (checked by
 * scripts/check-style.sh, run as a test). Handlers receive a scope from the
 * request's authentication and pass it down; they never build one from a
 * user id found in a request body.
 *
 * The type has a folder of its own, below the store, because the store takes
 * scopes and identity (which mints them) stands on the store: with the type
 * in identity/, store.h and identity.h included each other. Header only. */
#ifndef BRIGADE_SCOPE_H
#define BRIGADE_SCOPE_H

#include <stdbool.h>

#include "util/ids.h"

typedef enum scope_role {
    SCOPE_NONE = 0,          /* not authenticated: no access to anything */
    SCOPE_SERVER_ADMIN,      /* manages tenants; sees no user data */
    SCOPE_TENANT_ADMIN,      /* manages one tenant's users, keys, usage */
    SCOPE_USER               /* one user's own world */
} scope_role;

typedef struct scope {
    scope_role role;
    char tenant_id[ID_MAX];  /* "" for the server admin */
    char user_id[ID_MAX];    /* set only for SCOPE_USER */
    char key_id[ID_MAX];     /* the credential used: key id, "jwt", or "admin-token" */
    char tier[32];           /* the user's tier (SCOPE_USER) */
    unsigned minted;         /* SCOPE_MINTED when made by identity; 0 otherwise */
} scope;

#define SCOPE_MINTED 0x5C09E0u

/* True if the scope was produced by authentication. Store functions refuse
 * (STORE_NOT_FOUND) any scope that was not. */
static inline bool scope_valid(const scope *s)
{
    return s && s->minted == SCOPE_MINTED && s->role != SCOPE_NONE;
}

static inline bool scope_is_user(const scope *s) { return scope_valid(s) && s->role == SCOPE_USER; }
static inline bool scope_is_tenant_admin(const scope *s) { return scope_valid(s) && s->role == SCOPE_TENANT_ADMIN; }
static inline bool scope_is_server_admin(const scope *s) { return scope_valid(s) && s->role == SCOPE_SERVER_ADMIN; }

/* "server_admin", "tenant_admin", "user"; "none" otherwise. */
static inline const char *scope_role_name(scope_role r)
{
    switch (r) {
    case SCOPE_SERVER_ADMIN: return "server_admin";
    case SCOPE_TENANT_ADMIN: return "tenant_admin";
    case SCOPE_USER: return "user";
    case SCOPE_NONE: break;
    }
    return "none";
}

#endif
