/* egress_addr.h — what kind of place an IP address is: the pure half of
 * egress (no I/O, no libcurl), so every rule is unit-tested on its own
 * (tests/unit/egress/test_egress_addr.c).
 *
 * An outbound request made for an agent (an HTTP tool, an MCP server over
 * HTTP, a tenant's OAuth provider) must not reach the machine itself or the
 * networks behind it. libcurl resolves the name; egress_curl.c hands each
 * address it is about to connect to egress_classify(), and only
 * EGRESS_PUBLIC (or a class the policy allows) gets a socket.
 *
 * IPv6 forms that carry an IPv4 address — IPv4-mapped ::ffff:0:0/96,
 * IPv4-compatible ::/96, SIIT ::ffff:0:0:0/96, NAT64 64:ff9b::/96, 6to4
 * 2002::/16 and Teredo 2001::/32 (the client address, inverted) — are
 * classified by the IPv4 address inside, so [::ffff:127.0.0.1] is loopback.
 * What is refused, and why, is in docs/egress.md. */
#ifndef BRIGADE_EGRESS_ADDR_H
#define BRIGADE_EGRESS_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef enum egress_class {
    EGRESS_PUBLIC = 0,      /* anything not below: may be reached */
    EGRESS_LOOPBACK,        /* 127.0.0.0/8, ::1 */
    EGRESS_PRIVATE,         /* RFC 1918: 10/8, 172.16/12, 192.168/16 */
    EGRESS_CGNAT,           /* RFC 6598 shared address space 100.64.0.0/10 */
    EGRESS_LINK_LOCAL,      /* 169.254.0.0/16 (cloud metadata 169.254.169.254), fe80::/10 */
    EGRESS_UNIQUE_LOCAL,    /* fc00::/7, and the deprecated site-local fec0::/10 */
    EGRESS_MULTICAST,       /* 224.0.0.0/4, ff00::/8 */
    EGRESS_UNSPECIFIED,     /* 0.0.0.0/8 ("this network": Linux connects 0.0.0.0 to itself), :: */
    EGRESS_BROADCAST,       /* 255.255.255.255 */
    EGRESS_RESERVED,        /* documentation, benchmarking, IETF protocol, 240/4, IPv6 outside 2000::/3 */
    EGRESS_NOT_IP,          /* a socket family other than IPv4 and IPv6 (a Unix socket) */
    EGRESS_CLASS_COUNT
} egress_class;

/* How the classified IPv4 address was written, when it came inside IPv6. */
typedef enum egress_via {
    EGRESS_VIA_NONE = 0,    /* the address itself */
    EGRESS_VIA_MAPPED,      /* ::ffff:a.b.c.d */
    EGRESS_VIA_COMPATIBLE,  /* ::a.b.c.d */
    EGRESS_VIA_SIIT,        /* ::ffff:0:a.b.c.d */
    EGRESS_VIA_NAT64,       /* 64:ff9b::a.b.c.d */
    EGRESS_VIA_6TO4,        /* 2002:AABB:CCDD:: */
    EGRESS_VIA_TEREDO       /* 2001:0:…, the client address XOR ff */
} egress_via;

/* A short stable name: "public", "loopback", "private", "cgnat",
 * "link-local", "unique-local", "multicast", "unspecified", "broadcast",
 * "reserved", "not-ip" — used in audit entries, spans and messages. */
const char *egress_class_name(egress_class c);
/* "IPv4-mapped IPv6" … or "" for EGRESS_VIA_NONE. */
const char *egress_via_name(egress_via v);

/* Classes an operator's allow_private_networks lets through: loopback,
 * private, CGNAT, unique-local. Link-local (the metadata service),
 * multicast, unspecified, broadcast and reserved never are. */
bool egress_class_is_private_network(egress_class c);

/* The class of an IPv4 address given as its 4 bytes in network order. */
egress_class egress_classify_v4(const uint8_t a[4]);
/* The class of an IPv6 address (16 bytes); *via says whether an embedded
 * IPv4 address decided it (may be NULL). */
egress_class egress_classify_v6(const uint8_t a[16], egress_via *via);
/* Either family from a socket address of `len` bytes (a short or unknown
 * one is EGRESS_NOT_IP). */
egress_class egress_classify(const struct sockaddr *sa, size_t len, egress_via *via);

/* The address as text ("127.0.0.1", "::ffff:127.0.0.1") into out. */
void egress_addr_text(const struct sockaddr *sa, size_t len, char *out, size_t outlen);

/* An operator's network ("10.1.0.0/16", "fd00::/8", a bare address = one
 * host): the config's egress.allow_networks. */
typedef struct egress_net {
    int     family;          /* AF_INET or AF_INET6 */
    uint8_t addr[16];        /* the first 4 bytes for IPv4 */
    uint8_t prefix;          /* bits */
} egress_net;

/* Parse "ADDR/BITS" or "ADDR"; false with why (host bits set after the
 * prefix are refused: "10.1.2.3/16" is probably a mistake). */
bool egress_net_parse(const char *text, egress_net *out, char *why, size_t whylen);
/* Is the socket address inside net? An IPv4-mapped IPv6 address is
 * compared as the IPv4 address it maps. */
bool egress_net_contains(const egress_net *net, const struct sockaddr *sa, size_t len);

#endif
