/* vault_http.c — the vault's calls to a provider's token, revocation and
 * discovery endpoints: one blocking libcurl request on the calling thread
 * (always a thread-pool thread, never a loop), bounded in time
 * (timeout_ms for the whole exchange) and size (VAULT_MAX_TOKEN_RESPONSE),
 * following no redirect (a token endpoint that redirects is refused: the
 * code or refresh token would be sent again to wherever it points). The
 * request and answer hold secrets: nothing here is logged. */
#include "vault/vault_internal.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct http_sink {
    char  *data;
    size_t len;
    bool   over;
} http_sink;

static size_t http_write(char *p, size_t size, size_t n, void *arg)
{
    http_sink *s = arg;
    size_t add = size * n;
    if (s->len + add > VAULT_MAX_TOKEN_RESPONSE) {
        s->over = true;
        return 0;   /* stops the transfer */
    }
    char *d = realloc(s->data, s->len + add + 1);
    if (!d) return 0;
    memcpy(d + s->len, p, add);
    s->data = d;
    s->len += add;
    d[s->len] = '\0';
    return add;
}

void vault_http(const char *url, const char *form, const char *user, const char *pass,
                uint32_t timeout_ms, vault_http_resp *out)
{
    memset(out, 0, sizeof *out);
    CURL *e = curl_easy_init();
    if (!e) {
        snprintf(out->error, sizeof out->error, "out of memory");
        return;
    }
    http_sink sink = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    if (form) h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "brigade-vault");
    if (form) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
    }
    if (user) {
        /* RFC 6749 2.3.1: the id and secret are form-encoded before basic auth */
        char u[1024] = "", p[1024] = "";
        vault_url_encode(u, sizeof u, user);
        vault_url_encode(p, sizeof p, pass ? pass : "");
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, u);
        curl_easy_setopt(e, CURLOPT_PASSWORD, p);
        explicit_bzero(p, sizeof p);
    }
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
    if (rc != CURLE_OK) {
        if (sink.over)
            snprintf(out->error, sizeof out->error, "the provider's answer is over %d bytes", VAULT_MAX_TOKEN_RESPONSE);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            snprintf(out->error, sizeof out->error, "the provider did not answer within %u ms", timeout_ms);
        else
            snprintf(out->error, sizeof out->error, "the provider could not be reached (%s)", curl_easy_strerror(rc));
        free(sink.data);
        sink.data = NULL;
        sink.len = 0;
        out->status = 0;
    }
    out->body = sink.data;
    out->len = sink.len;
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
}

void vault_http_resp_free(vault_http_resp *r)
{
    if (!r) return;
    if (r->body) {
        explicit_bzero(r->body, r->len);
        free(r->body);
    }
    memset(r, 0, sizeof *r);
}
