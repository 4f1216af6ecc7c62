/* egress_curl.h — the one gate every outbound request made for an agent
 * passes: HTTP tools (src/tools through upstream_http_fetch), OAuth calls
 * to credential providers (src/vault), MCP over HTTP. Model providers are
 * the operator's own configuration and do not pass here.
 *
 * Use, for a libcurl easy handle `e` that is about to be performed:
 *
 *     egress_policy pol = {.allow_private_networks = tool->allow_private_networks,
 *                          .max_redirects = tool->max_redirects,
 *                          .timeout_ms = 10000, .max_response_bytes = 1 << 20,
 *                          .allow_nets = cfg->egress_allow_nets,
 *                          .n_allow_nets = cfg->n_egress_allow_nets};
 *     egress_check chk;           // must outlive the transfer
 *     egress_apply(e, &chk, &pol);
 *     CURLcode rc = curl_easy_perform(e);      // or through a multi handle
 *     if (egress_refused(&chk, rc)) {
 *         char msg[256];
 *         egress_describe(&chk, msg, sizeof msg);   // for the model / the caller
 *         // chk.cls, chk.address: for the span and the audit entry
 *     }
 *
 * egress_apply sets, after anything the caller set (call it last):
 *   - CURLOPT_OPENSOCKETFUNCTION: every address libcurl is about to connect
 *     to — whatever name it came from, on the first request and on every
 *     redirect hop — is classified (egress_addr.h) and refused unless it is
 *     public, inside an operator's allow_nets, or a private network the
 *     policy allows; a refused address gets no socket (libcurl may still
 *     try the name's other addresses);
 *   - CURLOPT_PROTOCOLS_STR and CURLOPT_REDIR_PROTOCOLS_STR "http,https";
 *   - CURLOPT_PROXY "": no proxy from the environment (a proxy would make
 *     the check see the proxy's address, not the destination's);
 *   - redirects followed only when max_redirects > 0, at most that many;
 *   - the timeouts and the response size cap of the policy (defaults
 *     below when 0);
 *   - a policy that allows private networks never shares a connection:
 *     CURLOPT_FORBID_REUSE and CURLOPT_FRESH_CONNECT, so a connection into
 *     a private network is closed after its transfer and cannot be picked
 *     up by a transfer of a stricter policy on the same multi handle
 *     (which would skip the socket check).
 *
 * Thread-safe: the check is written only by the transfer that owns it. */
#ifndef BRIGADE_EGRESS_CURL_H
#define BRIGADE_EGRESS_CURL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "egress/egress_addr.h"

#define EGRESS_MAX_REDIRECTS 10
#define EGRESS_DEFAULT_TIMEOUT_MS 10000
#define EGRESS_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define EGRESS_ADDR_MAX 64

typedef struct egress_policy {
    bool              allow_private_networks; /* operator only: loopback, RFC 1918, CGNAT, ULA */
    uint32_t          max_redirects;          /* 0 (default): a 3xx is the answer; at most 10 */
    uint32_t          timeout_ms;             /* whole transfer; 0: EGRESS_DEFAULT_TIMEOUT_MS */
    uint32_t          connect_timeout_ms;     /* 0: min(timeout, EGRESS_DEFAULT_CONNECT_TIMEOUT_MS) */
    uint64_t          max_response_bytes;     /* > 0: a larger announced body fails at once */
    const egress_net *allow_nets;             /* operator's egress.allow_networks */
    size_t            n_allow_nets;
} egress_policy;

typedef struct egress_check {
    egress_policy policy;                     /* a copy (allow_nets still points at the caller's) */
    unsigned      allowed;                    /* connections let through */
    unsigned      refusals;                   /* addresses refused */
    egress_class  cls;                        /* the first refused address: its class */
    egress_via    via;                        /*   and the IPv6 form it came in */
    char          address[EGRESS_ADDR_MAX];   /*   and the address itself */
} egress_check;

/* Install the policy on e (see above). The check is reset; it and the
 * policy's allow_nets must outlive the transfer. Returns false if libcurl
 * refused an option the gate depends on (the caller must not perform). */
bool egress_apply(CURL *e, egress_check *chk, const egress_policy *pol);

/* Did the transfer fail because egress refused an address? (An address
 * refused while another of the same name connected is not a failure.) */
bool egress_refused(const egress_check *chk, CURLcode rc);

/* The refusal for a person or a model: "egress refused: 127.0.0.1 is the
 * server's own loopback (class loopback); requests for an agent reach
 * only public addresses unless the operator allows it". */
void egress_describe(const egress_check *chk, char *out, size_t outlen);

/* The decision for one address, as the socket callback makes it (exposed
 * for the unit tests): true to connect; else *cls says why. */
bool egress_allows(const egress_policy *pol, const struct sockaddr *sa, size_t len,
                   egress_class *cls, egress_via *via);

#endif
