/* scope_mint.h — making scopes. PRIVATE to src/identity/ (and unit tests):
 * a scope is a capability, so only authentication may create one. */
#ifndef BRIGADE_SCOPE_MINT_H
#define BRIGADE_SCOPE_MINT_H

#include "scope/scope.h"

void scope_mint_server_admin(scope *out);
void scope_mint_tenant_admin(scope *out, const char *tenant_id, const char *key_id);
void scope_mint_user(scope *out, const char *tenant_id, const char *user_id,
                     const char *key_id, const char *tier);

#endif
