/* egress_curl.c — egress_curl.h on libcurl: the socket callback that
 * checks each address before a connection is made, and the options that
 * keep a transfer to http and https, without a proxy from the environment,
 * with bounded redirects, time and size. */
#include "egress/egress_curl.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

bool egress_allows(const egress_policy *pol, const struct sockaddr *sa, size_t len,
                   egress_class *cls, egress_via *via)
{
    egress_via v = EGRESS_VIA_NONE;
    egress_class c = egress_classify(sa, len, &v);
    if (cls) *cls = c;
    if (via) *via = v;
    if (c == EGRESS_PUBLIC) return true;
    if (c == EGRESS_NOT_IP) return false;
    /* The operator's own networks, named one by one. The unspecified
     * address is never one: on Linux it connects to the host itself. */
    if (c != EGRESS_UNSPECIFIED && pol)
        for (size_t i = 0; i < pol->n_allow_nets; i++)
            if (egress_net_contains(&pol->allow_nets[i], sa, len)) return true;
    return pol && pol->allow_private_networks && egress_class_is_private_network(c);
}

static curl_socket_t egress_open_socket(void *clientp, curlsocktype purpose,
                                        struct curl_sockaddr *a)
{
    egress_check *chk = clientp;
    egress_class cls = EGRESS_NOT_IP;
    egress_via via = EGRESS_VIA_NONE;
    /* libcurl passes the address in a buffer of addrlen bytes that starts
     * at a->addr (struct curl_sockaddr documents it so). */
    bool ok = purpose == CURLSOCKTYPE_IPCXN &&
              egress_allows(&chk->policy, &a->addr, a->addrlen, &cls, &via);
    if (!ok) {
        if (chk->refusals++ == 0) {
            chk->cls = cls;
            chk->via = via;
            egress_addr_text(&a->addr, a->addrlen, chk->address, sizeof chk->address);
        }
        return CURL_SOCKET_BAD;
    }
    chk->allowed++;
    /* Close-on-exec: a sandboxed tool process forked later must not
     * inherit the connection. */
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

bool egress_apply(CURL *e, egress_check *chk, const egress_policy *pol)
{
    memset(chk, 0, sizeof *chk);
    if (pol) chk->policy = *pol;
    egress_policy *p = &chk->policy;
    if (p->max_redirects > EGRESS_MAX_REDIRECTS) p->max_redirects = EGRESS_MAX_REDIRECTS;
    long timeout = p->timeout_ms ? (long)p->timeout_ms : EGRESS_DEFAULT_TIMEOUT_MS;
    long connect = p->connect_timeout_ms ? (long)p->connect_timeout_ms
                   : (timeout < EGRESS_DEFAULT_CONNECT_TIMEOUT_MS ? timeout
                                                                  : EGRESS_DEFAULT_CONNECT_TIMEOUT_MS);
    bool ok = true;
    ok &= curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, egress_open_socket) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, chk) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, p->max_redirects ? 1L : 0L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)p->max_redirects) == CURLE_OK;
    /* A credential set with CURLOPT_USERNAME/PASSWORD stays with the first host. */
    ok &= curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect) == CURLE_OK;
    ok &= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    if (p->max_response_bytes)
        ok &= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)p->max_response_bytes) == CURLE_OK;
    if (p->allow_private_networks || p->n_allow_nets) {
        ok &= curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) == CURLE_OK;
        ok &= curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L) == CURLE_OK;
    }
    return ok;
}

bool egress_refused(const egress_check *chk, CURLcode rc)
{
    return chk && chk->refusals > 0 && rc != CURLE_OK;
}

void egress_describe(const egress_check *chk, char *out, size_t outlen)
{
    if (!outlen) return;
    const char *via = egress_via_name(chk->via);
    char form[64] = "";
    if (via[0]) snprintf(form, sizeof form, ", written as %s", via);
    const char *what;
    switch (chk->cls) {
    case EGRESS_LOOPBACK: what = "the server's own loopback"; break;
    case EGRESS_PRIVATE: what = "a private network (RFC 1918)"; break;
    case EGRESS_CGNAT: what = "the shared CGNAT space (100.64.0.0/10)"; break;
    case EGRESS_LINK_LOCAL: what = "link-local (this covers the cloud metadata service 169.254.169.254)"; break;
    case EGRESS_UNIQUE_LOCAL: what = "a unique-local IPv6 network"; break;
    case EGRESS_MULTICAST: what = "multicast"; break;
    case EGRESS_UNSPECIFIED: what = "the unspecified address (it reaches the server itself)"; break;
    case EGRESS_BROADCAST: what = "broadcast"; break;
    case EGRESS_RESERVED: what = "a reserved or special-purpose range"; break;
    default: what = "not an Internet address"; break;
    }
    snprintf(out, outlen,
             "egress refused: %s is %s (class %s%s); requests for an agent reach only "
             "public addresses unless the operator allows it",
             chk->address[0] ? chk->address : "?", what, egress_class_name(chk->cls), form);
}
