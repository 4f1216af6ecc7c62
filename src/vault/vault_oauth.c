/* vault_oauth.c — the pure pieces of OAuth 2 the vault needs: random
 * states and PKCE (RFC 7636, S256 only: "plain" would put the verifier on
 * the wire), hashing what is stored, percent-encoding, reading the flow's
 * cookie, and reading a token endpoint's answer (RFC 6749 5.1/5.2) with
 * bounds on everything. No I/O: unit-tested in tests/unit/vault/. */
#include "vault/vault_internal.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/json_strict.h"

void vault_random_token(char out[64])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, 64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

void vault_pkce_challenge(const char *verifier, char out[64])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)verifier, strlen(verifier));
    sodium_bin2base64(out, 64, h, sizeof h, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void vault_hash_hex(const char *text, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
    sodium_bin2hex(out, 65, h, sizeof h);
}

void vault_url_encode(char *out, size_t outlen, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t off = strlen(out);
    for (const unsigned char *p = (const unsigned char *)s; *p && off + 4 < outlen; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            out[off++] = (char)c;
        } else {
            out[off++] = '%';
            out[off++] = hex[c >> 4];
            out[off++] = hex[c & 15];
        }
    }
    out[off] = '\0';
}

bool vault_cookie_get(const char *header, const char *name, char *out, size_t outlen)
{
    if (!header || !name || !outlen) return false;
    size_t nlen = strlen(name);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';') p++;
        const char *eq = p;
        while (*eq && *eq != '=' && *eq != ';') eq++;
        const char *end = eq;
        while (*end && *end != ';') end++;
        if (*eq == '=' && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq + 1;
            size_t vlen = (size_t)(end - v);
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) vlen--;
            if (vlen >= outlen) return false;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return vlen > 0;
        }
        p = end;
    }
    return false;
}

void vault_token_response_free(vault_token_response *r)
{
    if (!r) return;
    if (r->access_token) {
        sodium_memzero(r->access_token, strlen(r->access_token));
        free(r->access_token);
    }
    if (r->refresh_token) {
        sodium_memzero(r->refresh_token, strlen(r->refresh_token));
        free(r->refresh_token);
    }
    memset(r, 0, sizeof *r);
}

/* A token is sent in an HTTP header: printable ASCII only, bounded. */
static bool token_text_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 16384) return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p > 0x7e) return false;
    return true;
}

int vault_parse_token_response(const char *body, size_t len, vault_token_response *out, char *why,
                               size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (!body || len == 0) {
        snprintf(why, whylen, "the provider's token endpoint answered with an empty body");
        return -1;
    }
    if (len > VAULT_MAX_TOKEN_RESPONSE) {
        snprintf(why, whylen, "the provider's token answer is over %d bytes", VAULT_MAX_TOKEN_RESPONSE);
        return -1;
    }
    json_strict_error jerr;
    cJSON *j = json_strict_text(body, len, "the token answer", &jerr)
                   ? cJSON_ParseWithLength(body, len) : NULL;
    if (j && !json_strict_tree(j, "the token answer", &jerr)) {
        cJSON_Delete(j);
        j = NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        snprintf(why, whylen, "the provider's token answer is not a JSON object");
        return -1;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (err) {
        const char *code = cJSON_IsString(err) ? err->valuestring : "";
        /* RFC 6749 error codes are a few ASCII words: keep only those
         * characters, so a provider cannot put anything in our messages */
        size_t k = 0;
        for (const char *c = code; *c && k + 1 < sizeof out->error; c++)
            if ((*c >= 'a' && *c <= 'z') || *c == '_') out->error[k++] = *c;
        out->error[k] = '\0';
        if (!k) snprintf(out->error, sizeof out->error, "unknown_error");
        cJSON_Delete(j);
        snprintf(why, whylen, "the provider refused: %s", out->error);
        return 1;
    }
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(j, "refresh_token");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(j, "token_type");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(j, "scope");
    if (!cJSON_IsString(at) || !token_text_ok(at->valuestring) ||
        (rt && (!cJSON_IsString(rt) || !token_text_ok(rt->valuestring)))) {
        cJSON_Delete(j);
        snprintf(why, whylen, "the provider's token answer has no usable access_token");
        return -1;
    }
    if (tt && (!cJSON_IsString(tt) || strcasecmp(tt->valuestring, "bearer") != 0)) {
        cJSON_Delete(j);
        snprintf(why, whylen, "the provider's token is not a bearer token");
        return -1;
    }
    if (ex && (!cJSON_IsNumber(ex) || ex->valuedouble < 0 || ex->valuedouble > 10 * 365 * 86400.0)) {
        cJSON_Delete(j);
        snprintf(why, whylen, "the provider's expires_in is not a number of seconds");
        return -1;
    }
    if (sc && (!cJSON_IsString(sc) || strlen(sc->valuestring) >= sizeof out->scope)) {
        cJSON_Delete(j);
        snprintf(why, whylen, "the provider's scope is not a string of at most %zu bytes", sizeof out->scope - 1);
        return -1;
    }
    out->access_token = strdup(at->valuestring);
    out->refresh_token = rt ? strdup(rt->valuestring) : NULL;
    out->expires_in = ex ? (int64_t)ex->valuedouble : 0;
    if (sc) snprintf(out->scope, sizeof out->scope, "%s", sc->valuestring);
    cJSON_Delete(j);
    if (!out->access_token || (rt && !out->refresh_token)) {
        vault_token_response_free(out);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    return 0;
}

int64_t vault_refresh_due_ms(int64_t now_ms, int64_t expires_in)
{
    if (expires_in <= 0) return 0;
    int64_t life = expires_in * 1000;
    int64_t margin = life / 4 < 5000 ? life / 4 : 5000;
    return now_ms + life - margin;
}
