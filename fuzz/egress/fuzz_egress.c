/* fuzz_egress.c — the egress classifier and the operator's network parser
 * on arbitrary bytes, with the properties that make the classifier safe:
 *   - every IPv6 form that embeds an IPv4 address (mapped, NAT64, 6to4)
 *     has the class of that IPv4 address, and the compatible and
 *     translated forms are never public;
 *   - a parsed network contains its own address, and only addresses of its
 *     family (an IPv4 network also its IPv4-mapped form);
 *   - the allowed decision never lets through the unspecified address.
 * Any violation aborts. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "egress/egress_addr.h"
#include "egress/egress_curl.h"

static void check_embedded(const uint8_t v4[4])
{
    egress_class want = egress_classify_v4(v4);
    uint8_t a[16];
    static const uint8_t forms[][12] = {
        {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF},              /* mapped */
        {0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0},          /* NAT64 */
    };
    for (size_t f = 0; f < 2; f++) {
        memcpy(a, forms[f], 12);
        memcpy(a + 12, v4, 4);
        if (egress_classify_v6(a, NULL) != want) abort();
    }
    memset(a, 0, 16);
    a[0] = 0x20;
    a[1] = 0x02;
    memcpy(a + 2, v4, 4);                                          /* 6to4 */
    if (egress_classify_v6(a, NULL) != want) abort();
    memset(a, 0, 16);
    memcpy(a + 12, v4, 4);                                         /* compatible */
    egress_class c = egress_classify_v6(a, NULL);
    if (c == EGRESS_PUBLIC) abort();
    a[8] = a[9] = 0xFF;                                            /* translated */
    if (egress_classify_v6(a, NULL) == EGRESS_PUBLIC) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4) check_embedded(data);
    if (size >= 16) {
        egress_via via;
        egress_class c = egress_classify_v6(data, &via);
        if ((unsigned)c >= EGRESS_CLASS_COUNT) abort();
        if (via != EGRESS_VIA_NONE && c == EGRESS_PUBLIC) abort();
    }
    char text[128];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    egress_net net;
    char why[160];
    if (!egress_net_parse(text, &net, why, sizeof why)) return 0;
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    if (net.family == AF_INET) {
        memcpy(&in.sin_addr, net.addr, 4);
        if (!egress_net_contains(&net, (struct sockaddr *)&in, sizeof in)) abort();
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
        memcpy(&in6.sin6_addr, mapped, 12);
        memcpy((uint8_t *)&in6.sin6_addr + 12, net.addr, 4);
        if (!egress_net_contains(&net, (struct sockaddr *)&in6, sizeof in6)) abort();
        egress_policy pol = {.allow_nets = &net, .n_allow_nets = 1};
        struct sockaddr_in zero = {.sin_family = AF_INET};
        if (egress_allows(&pol, (struct sockaddr *)&zero, sizeof zero, NULL, NULL)) abort();
    } else {
        if (net.family != AF_INET6) abort();
        memcpy(&in6.sin6_addr, net.addr, 16);
        if (!egress_net_contains(&net, (struct sockaddr *)&in6, sizeof in6)) abort();
        if (net.prefix > 0 && egress_net_contains(&net, (struct sockaddr *)&in, sizeof in)) abort();
    }
    return 0;
}
