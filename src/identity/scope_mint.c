/* scope_mint.c — minting scopes (scope_mint.h; the type is scope/scope.h).
 *
 * Minting is the only way a scope gets SCOPE_MINTED; the store refuses
 * anything else. The constructors copy with bounds and NUL-terminate, so a
 * scope never holds a truncated-but-unterminated id. */
#include "identity/scope_mint.h"

#include <string.h>

/* snprintf(dst, n, "%s", src) without the formatter: four of these per
 * authenticated request showed up in the gateway's profile. */
static void scope_copy(char *dst, size_t n, const char *src)
{
    if (!n) return;
    size_t len = src ? strnlen(src, n - 1) : 0;
    if (len) memcpy(dst, src, len);
    dst[len] = '\0';
}

void scope_mint_server_admin(scope *out)
{
    memset(out, 0, sizeof *out);
    out->role = SCOPE_SERVER_ADMIN;
    scope_copy(out->key_id, sizeof out->key_id, "admin-token");
    out->minted = SCOPE_MINTED;
}

void scope_mint_tenant_admin(scope *out, const char *tenant_id, const char *key_id)
{
    memset(out, 0, sizeof *out);
    out->role = SCOPE_TENANT_ADMIN;
    scope_copy(out->tenant_id, sizeof out->tenant_id, tenant_id);
    scope_copy(out->key_id, sizeof out->key_id, key_id);
    out->minted = SCOPE_MINTED;
}

void scope_mint_user(scope *out, const char *tenant_id, const char *user_id,
                     const char *key_id, const char *tier)
{
    memset(out, 0, sizeof *out);
    out->role = SCOPE_USER;
    scope_copy(out->tenant_id, sizeof out->tenant_id, tenant_id);
    scope_copy(out->user_id, sizeof out->user_id, user_id);
    scope_copy(out->key_id, sizeof out->key_id, key_id);
    scope_copy(out->tier, sizeof out->tier, tier);
    out->minted = SCOPE_MINTED;
}
