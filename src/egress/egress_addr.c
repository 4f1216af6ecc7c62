/* egress_addr.c — the classifier of egress_addr.h: IPv4 and IPv6 special
 * ranges (RFC 6890 and the registries it started), the IPv6 forms that
 * embed an IPv4 address, and operator networks in CIDR notation. Pure. */
#include "egress/egress_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

const char *egress_class_name(egress_class c)
{
    static const char *const names[EGRESS_CLASS_COUNT] = {
        [EGRESS_PUBLIC] = "public",           [EGRESS_LOOPBACK] = "loopback",
        [EGRESS_PRIVATE] = "private",         [EGRESS_CGNAT] = "cgnat",
        [EGRESS_LINK_LOCAL] = "link-local",   [EGRESS_UNIQUE_LOCAL] = "unique-local",
        [EGRESS_MULTICAST] = "multicast",     [EGRESS_UNSPECIFIED] = "unspecified",
        [EGRESS_BROADCAST] = "broadcast",     [EGRESS_RESERVED] = "reserved",
        [EGRESS_NOT_IP] = "not-ip",
    };
    return (unsigned)c < EGRESS_CLASS_COUNT ? names[c] : "unknown";
}

const char *egress_via_name(egress_via v)
{
    switch (v) {
    case EGRESS_VIA_MAPPED: return "IPv4-mapped IPv6";
    case EGRESS_VIA_COMPATIBLE: return "IPv4-compatible IPv6";
    case EGRESS_VIA_SIIT: return "IPv4-translated IPv6";
    case EGRESS_VIA_NAT64: return "NAT64 IPv6";
    case EGRESS_VIA_6TO4: return "6to4 IPv6";
    case EGRESS_VIA_TEREDO: return "Teredo IPv6";
    case EGRESS_VIA_NONE: break;
    }
    return "";
}

bool egress_class_is_private_network(egress_class c)
{
    return c == EGRESS_LOOPBACK || c == EGRESS_PRIVATE || c == EGRESS_CGNAT ||
           c == EGRESS_UNIQUE_LOCAL;
}

/* Does the address start with the first `bits` bits of prefix? */
static bool in_prefix(const uint8_t *a, const uint8_t *prefix, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, prefix, whole) != 0) return false;
    if (!rest) return true;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (a[whole] & mask) == (prefix[whole] & mask);
}

egress_class egress_classify_v4(const uint8_t a[4])
{
    static const struct { uint8_t net[4]; unsigned bits; egress_class cls; } table[] = {
        {{0, 0, 0, 0}, 8, EGRESS_UNSPECIFIED},          /* "this network"; 0.0.0.0 reaches the host */
        {{127, 0, 0, 0}, 8, EGRESS_LOOPBACK},
        {{10, 0, 0, 0}, 8, EGRESS_PRIVATE},
        {{172, 16, 0, 0}, 12, EGRESS_PRIVATE},
        {{192, 168, 0, 0}, 16, EGRESS_PRIVATE},
        {{100, 64, 0, 0}, 10, EGRESS_CGNAT},
        {{169, 254, 0, 0}, 16, EGRESS_LINK_LOCAL},      /* 169.254.169.254: cloud metadata */
        {{255, 255, 255, 255}, 32, EGRESS_BROADCAST},
        {{224, 0, 0, 0}, 4, EGRESS_MULTICAST},
        {{240, 0, 0, 0}, 4, EGRESS_RESERVED},           /* class E, future use */
        {{192, 0, 0, 0}, 24, EGRESS_RESERVED},          /* IETF protocol assignments */
        {{192, 0, 2, 0}, 24, EGRESS_RESERVED},          /* TEST-NET-1 */
        {{198, 51, 100, 0}, 24, EGRESS_RESERVED},       /* TEST-NET-2 */
        {{203, 0, 113, 0}, 24, EGRESS_RESERVED},        /* TEST-NET-3 */
        {{198, 18, 0, 0}, 15, EGRESS_RESERVED},         /* benchmarking, often used inside */
        {{192, 88, 99, 0}, 24, EGRESS_RESERVED},        /* the deprecated 6to4 relay anycast */
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (in_prefix(a, table[i].net, table[i].bits)) return table[i].cls;
    return EGRESS_PUBLIC;
}

egress_class egress_classify_v6(const uint8_t a[16], egress_via *via)
{
    static const uint8_t zero[16] = {0};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    static const uint8_t siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0};
    static const uint8_t nat64[12] = {0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t nat64_local[6] = {0x00, 0x64, 0xFF, 0x9B, 0x00, 0x01};
    static const uint8_t sixto4[2] = {0x20, 0x02};
    static const uint8_t teredo[4] = {0x20, 0x01, 0x00, 0x00};
    static const uint8_t doc[4] = {0x20, 0x01, 0x0D, 0xB8};
    static const uint8_t doc2[3] = {0x3F, 0xFF, 0x00};     /* 3fff::/20 (RFC 9637) */
    static const uint8_t discard[8] = {0x01, 0x00, 0, 0, 0, 0, 0, 0};
    static const uint8_t bench[6] = {0x20, 0x01, 0x00, 0x02, 0x00, 0x00};
    static const uint8_t orchid[4] = {0x20, 0x01, 0x00, 0x10};
    egress_via dummy;
    if (!via) via = &dummy;
    *via = EGRESS_VIA_NONE;

    if (memcmp(a, zero, 16) == 0) return EGRESS_UNSPECIFIED;
    if (memcmp(a, zero, 15) == 0 && a[15] == 1) return EGRESS_LOOPBACK;

    uint8_t v4[4];
    egress_via form = EGRESS_VIA_NONE;
    if (memcmp(a, mapped, 12) == 0) {
        form = EGRESS_VIA_MAPPED;
        memcpy(v4, a + 12, 4);
    } else if (memcmp(a, zero, 12) == 0) {
        form = EGRESS_VIA_COMPATIBLE;     /* ::a.b.c.d (:: and ::1 were taken above) */
        memcpy(v4, a + 12, 4);
    } else if (memcmp(a, siit, 12) == 0) {
        form = EGRESS_VIA_SIIT;
        memcpy(v4, a + 12, 4);
    } else if (memcmp(a, nat64, 12) == 0) {
        form = EGRESS_VIA_NAT64;
        memcpy(v4, a + 12, 4);
    } else if (memcmp(a, sixto4, 2) == 0) {
        form = EGRESS_VIA_6TO4;
        memcpy(v4, a + 2, 4);
    } else if (memcmp(a, teredo, 4) == 0) {
        form = EGRESS_VIA_TEREDO;          /* the client's address, obfuscated */
        for (int i = 0; i < 4; i++) v4[i] = (uint8_t)(a[12 + i] ^ 0xFF);
    }
    if (form != EGRESS_VIA_NONE) {
        egress_class c = egress_classify_v4(v4);
        if (c != EGRESS_PUBLIC) {
            *via = form;
            return c;
        }
        /* The compatible and SIIT forms are not routed on the Internet. */
        if (form == EGRESS_VIA_COMPATIBLE || form == EGRESS_VIA_SIIT) return EGRESS_RESERVED;
        /* A 6to4 or Teredo address whose relay (the Teredo server, too)
         * is inside is refused as the inside it reaches. */
        if (form == EGRESS_VIA_TEREDO) {
            c = egress_classify_v4(a + 4);
            if (c != EGRESS_PUBLIC) {
                *via = form;
                return c;
            }
        }
        return EGRESS_PUBLIC;
    }

    if (a[0] == 0xFF) return EGRESS_MULTICAST;
    if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) return EGRESS_LINK_LOCAL;      /* fe80::/10 */
    if (a[0] == 0xFE && (a[1] & 0xC0) == 0xC0) return EGRESS_UNIQUE_LOCAL;    /* fec0::/10 */
    if ((a[0] & 0xFE) == 0xFC) return EGRESS_UNIQUE_LOCAL;                    /* fc00::/7 */
    if (in_prefix(a, nat64_local, 48)) return EGRESS_RESERVED;  /* local-use NAT64: the operator's own */
    if (in_prefix(a, doc, 32) || in_prefix(a, doc2, 20) || in_prefix(a, discard, 64) ||
        in_prefix(a, bench, 48) || in_prefix(a, orchid, 28))
        return EGRESS_RESERVED;
    /* Global unicast is 2000::/3; everything else is unassigned or special. */
    if ((a[0] & 0xE0) != 0x20) return EGRESS_RESERVED;
    return EGRESS_PUBLIC;
}

egress_class egress_classify(const struct sockaddr *sa, size_t len, egress_via *via)
{
    if (via) *via = EGRESS_VIA_NONE;
    if (!sa) return EGRESS_NOT_IP;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uint8_t a[4];
        memcpy(a, &in->sin_addr, 4);
        return egress_classify_v4(a);
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uint8_t a[16];
        memcpy(a, &in6->sin6_addr, 16);
        return egress_classify_v6(a, via);
    }
    return EGRESS_NOT_IP;
}

void egress_addr_text(const struct sockaddr *sa, size_t len, char *out, size_t outlen)
{
    if (!outlen) return;
    out[0] = '\0';
    char tmp[INET6_ADDRSTRLEN] = "";
    if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, tmp, sizeof tmp);
    else if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, tmp, sizeof tmp);
    else
        snprintf(tmp, sizeof tmp, "family %d", sa ? (int)sa->sa_family : -1);
    snprintf(out, outlen, "%s", tmp);
}

bool egress_net_parse(const char *text, egress_net *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = text ? strchr(text, '/') : NULL;
    size_t alen = slash ? (size_t)(slash - text) : (text ? strlen(text) : 0);
    if (!text || alen == 0 || alen >= sizeof addr) {
        snprintf(why, whylen, "expected an address or ADDRESS/BITS");
        return false;
    }
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    unsigned max;
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        snprintf(why, whylen, "\"%s\" is not an IPv4 or IPv6 address", addr);
        return false;
    }
    unsigned bits = max;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3) {
            snprintf(why, whylen, "the prefix length after \"/\" must be 0 to %u", max);
            return false;
        }
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9') {
                snprintf(why, whylen, "the prefix length after \"/\" must be 0 to %u", max);
                return false;
            }
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max) {
            snprintf(why, whylen, "the prefix length after \"/\" must be 0 to %u", max);
            return false;
        }
    }
    for (unsigned b = bits; b < max; b++)
        if (out->addr[b / 8] & (0x80 >> (b % 8))) {
            snprintf(why, whylen, "\"%s\" has bits set after its /%u prefix", text, bits);
            return false;
        }
    out->prefix = (uint8_t)bits;
    return true;
}

bool egress_net_contains(const egress_net *net, const struct sockaddr *sa, size_t len)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (!net || !sa) return false;
    uint8_t a[16];
    int family;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        family = AF_INET;
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        family = AF_INET6;
        if (net->family == AF_INET && memcmp(a, mapped, 12) == 0) {
            memmove(a, a + 12, 4);
            family = AF_INET;
        }
    } else {
        return false;
    }
    return family == net->family && in_prefix(a, net->addr, net->prefix);
}
