/* fuzz_vault.c — libFuzzer target for what the vault reads from outside:
 * the Cookie header of an unauthenticated /oauth/callback request
 * (vault_cookie_get) and a provider's token endpoint answer
 * (vault_parse_token_response). The first input byte chooses the parser.
 *
 * Invariants (abort() when broken):
 *   - a cookie value found is non-empty, shorter than the buffer, holds no
 *     ';' and occurs in the header right after "brigade_oauth=";
 *   - a token answer accepted has an access token (and a refresh token, if
 *     any) of printable ASCII without spaces — what may go in a header —
 *     and a non-negative expires_in; a refused one names an error made of
 *     a-z and '_' only, or leaves nothing allocated. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vault/vault_internal.h"

static void check_token_text(const char *s)
{
    if (!s || !*s) abort();
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p > 0x7e) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] & 1) {
        char out[64];
        if (vault_cookie_get(text, "brigade_oauth", out, sizeof out)) {
            size_t n = strlen(out);
            if (n == 0 || n >= sizeof out || strchr(out, ';')) abort();
            char probe[80];
            memcpy(probe, "brigade_oauth=", 14);
            memcpy(probe + 14, out, n + 1);
            if (!strstr(text, probe)) abort();
        }
    } else {
        vault_token_response r;
        char why[256];
        int rc = vault_parse_token_response(text, size - 1, &r, why, sizeof why);
        if (rc == 0) {
            check_token_text(r.access_token);
            if (r.refresh_token) check_token_text(r.refresh_token);
            if (r.expires_in < 0) abort();
        } else if (rc == 1) {
            if (!r.error[0]) abort();
            for (const char *c = r.error; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || *c == '_')) abort();
            if (r.access_token || r.refresh_token) abort();
        } else if (r.access_token || r.refresh_token) {
            abort();
        }
        vault_token_response_free(&r);
    }
    free(text);
    return 0;
}
