/* vault_http.c — the vault's calls to a provider's token, revocation and
 * discovery endpoints: one blocking libcurl request on the calling thread
 * (always a thread-pool thread, never a loop), through egress
 * (egress/egress_curl.h: the provider's address is checked before
 * connecting; a private one only with the operator's
 * allow_private_networks), bounded in time (the provider's timeout_ms for
 * the whole exchange) and size (VAULT_MAX_TOKEN_RESPONSE), following no
 * redirect (a token endpoint that redirects is refused: the code or
 * refresh token would be sent again to wherever it points). The request
 * and answer hold secrets: nothing here is logged, and a refusal's audit
 * entry names the provider and the address class only. */
#include "vault/vault_internal.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/egress_curl.h"
#include "obs/audit.h"

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

/* The refusal's audit entry: the system acting for a provider of the
 * server's configuration, so the entry is the server's (no tenant). */
static void vault_egress_audit(const vault_http_to *to, const egress_check *chk)
{
    if (!to->st) return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "provider", to->provider->name);
    cJSON_AddStringToObject(d, "class", egress_class_name(chk->cls));
    cJSON_AddStringToObject(d, "address", chk->address);
    if (chk->via != EGRESS_VIA_NONE) cJSON_AddStringToObject(d, "form", egress_via_name(chk->via));
    obs_audit_raw(to->st, "", "system", "vault", "egress.refuse", to->provider->name, d);
}

void vault_http(const vault_http_to *to, const char *url, const char *form, const char *user,
                const char *pass, vault_http_resp *out)
{
    uint32_t timeout_ms = to->provider->timeout_ms ? to->provider->timeout_ms : 10000;
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
    /* Egress last: no redirects, http and https, no proxy from the
     * environment, the address checked before connecting. */
    const egress_policy pol = {
        .allow_private_networks = to->provider->allow_private_networks,
        .max_redirects = 0,
        .timeout_ms = timeout_ms,
        .connect_timeout_ms = timeout_ms,
        .max_response_bytes = VAULT_MAX_TOKEN_RESPONSE,
        .allow_nets = to->cfg ? to->cfg->egress_allow_nets : NULL,
        .n_allow_nets = to->cfg ? to->cfg->n_egress_allow_nets : 0,
    };
    egress_check chk;
    CURLcode rc = egress_apply(e, &chk, &pol) ? curl_easy_perform(e) : CURLE_FAILED_INIT;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
    if (rc != CURLE_OK) {
        if (egress_refused(&chk, rc)) {
            char why[256];
            egress_describe(&chk, why, sizeof why);
            snprintf(out->error, sizeof out->error, "the provider \"%.40s\" may not be reached: %.170s",
                     to->provider->name, why);
            out->egress_refused = true;
            vault_egress_audit(to, &chk);
        } else if (sink.over || rc == CURLE_FILESIZE_EXCEEDED)
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
