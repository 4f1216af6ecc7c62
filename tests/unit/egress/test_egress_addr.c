/* test_egress_addr.c — the address classifier of src/egress: every range
 * it refuses, the IPv6 forms that carry an IPv4 address, the public
 * addresses next to each range's edges, and operator networks (CIDR). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "egress/egress_addr.h"
#include "egress/egress_curl.h"

/* The class of an address written as text (either family). */
static egress_class cls_of(const char *text, egress_via *via)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, text, &in.sin_addr) == 1)
        return egress_classify((struct sockaddr *)&in, sizeof in, via);
    if (inet_pton(AF_INET6, text, &in6.sin6_addr) == 1)
        return egress_classify((struct sockaddr *)&in6, sizeof in6, via);
    fail_msg("bad test address %s", text);
    return EGRESS_NOT_IP;
}

typedef struct { const char *addr; egress_class cls; } case_t;

static void check_cases(const case_t *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        egress_class got = cls_of(c[i].addr, NULL);
        if (got != c[i].cls)
            fail_msg("%s: expected %s, got %s", c[i].addr, egress_class_name(c[i].cls),
                     egress_class_name(got));
    }
}

static void test_v4_ranges(void **state)
{
    (void)state;
    static const case_t c[] = {
        {"127.0.0.1", EGRESS_LOOPBACK},     {"127.255.255.254", EGRESS_LOOPBACK},
        {"127.0.1.1", EGRESS_LOOPBACK},     {"126.255.255.255", EGRESS_PUBLIC},
        {"128.0.0.0", EGRESS_PUBLIC},
        {"10.0.0.1", EGRESS_PRIVATE},       {"10.255.255.255", EGRESS_PRIVATE},
        {"11.0.0.0", EGRESS_PUBLIC},        {"9.255.255.255", EGRESS_PUBLIC},
        {"172.16.0.0", EGRESS_PRIVATE},     {"172.31.255.255", EGRESS_PRIVATE},
        {"172.15.255.255", EGRESS_PUBLIC},  {"172.32.0.0", EGRESS_PUBLIC},
        {"192.168.0.1", EGRESS_PRIVATE},    {"192.168.255.255", EGRESS_PRIVATE},
        {"192.169.0.0", EGRESS_PUBLIC},     {"192.167.255.255", EGRESS_PUBLIC},
        {"100.64.0.0", EGRESS_CGNAT},       {"100.127.255.255", EGRESS_CGNAT},
        {"100.63.255.255", EGRESS_PUBLIC},  {"100.128.0.0", EGRESS_PUBLIC},
        {"169.254.169.254", EGRESS_LINK_LOCAL}, {"169.254.0.1", EGRESS_LINK_LOCAL},
        {"169.253.255.255", EGRESS_PUBLIC}, {"169.255.0.0", EGRESS_PUBLIC},
        {"0.0.0.0", EGRESS_UNSPECIFIED},    {"0.1.2.3", EGRESS_UNSPECIFIED},
        {"1.0.0.0", EGRESS_PUBLIC},
        {"255.255.255.255", EGRESS_BROADCAST},
        {"224.0.0.1", EGRESS_MULTICAST},    {"239.255.255.250", EGRESS_MULTICAST},
        {"223.255.255.255", EGRESS_PUBLIC},
        {"240.0.0.1", EGRESS_RESERVED},     {"255.255.255.254", EGRESS_RESERVED},
        {"192.0.0.170", EGRESS_RESERVED},   {"192.0.2.1", EGRESS_RESERVED},
        {"198.51.100.7", EGRESS_RESERVED},  {"203.0.113.9", EGRESS_RESERVED},
        {"198.18.0.1", EGRESS_RESERVED},    {"198.19.255.255", EGRESS_RESERVED},
        {"198.20.0.0", EGRESS_PUBLIC},      {"192.88.99.1", EGRESS_RESERVED},
        {"8.8.8.8", EGRESS_PUBLIC},         {"1.1.1.1", EGRESS_PUBLIC},
        {"93.184.216.34", EGRESS_PUBLIC},
    };
    check_cases(c, sizeof c / sizeof c[0]);
}

static void test_v6_ranges(void **state)
{
    (void)state;
    static const case_t c[] = {
        {"::1", EGRESS_LOOPBACK},           {"::", EGRESS_UNSPECIFIED},
        {"fe80::1", EGRESS_LINK_LOCAL},     {"febf:ffff::1", EGRESS_LINK_LOCAL},
        {"fc00::1", EGRESS_UNIQUE_LOCAL},   {"fd12:3456::1", EGRESS_UNIQUE_LOCAL},
        {"fd00:ec2::254", EGRESS_UNIQUE_LOCAL},   /* the IPv6 metadata service of one cloud */
        {"fec0::1", EGRESS_UNIQUE_LOCAL},
        {"ff02::1", EGRESS_MULTICAST},      {"ff05::2", EGRESS_MULTICAST},
        {"2001:db8::1", EGRESS_RESERVED},   {"3fff::1", EGRESS_RESERVED},
        {"100::1", EGRESS_RESERVED},        {"2001:2::1", EGRESS_RESERVED},
        {"64:ff9b:1::1", EGRESS_RESERVED},  {"4000::1", EGRESS_RESERVED},
        {"::2:3:4:5:6", EGRESS_RESERVED},
        {"2606:4700:4700::1111", EGRESS_PUBLIC}, {"2a00:1450:4001::1", EGRESS_PUBLIC},
        {"2001:4860:4860::8888", EGRESS_PUBLIC},
    };
    check_cases(c, sizeof c / sizeof c[0]);
}

static void test_v6_embedded_v4(void **state)
{
    (void)state;
    static const struct { const char *addr; egress_class cls; egress_via via; } c[] = {
        {"::ffff:127.0.0.1", EGRESS_LOOPBACK, EGRESS_VIA_MAPPED},
        {"::ffff:7f00:1", EGRESS_LOOPBACK, EGRESS_VIA_MAPPED},
        {"::ffff:169.254.169.254", EGRESS_LINK_LOCAL, EGRESS_VIA_MAPPED},
        {"::ffff:10.1.2.3", EGRESS_PRIVATE, EGRESS_VIA_MAPPED},
        {"::ffff:0.0.0.0", EGRESS_UNSPECIFIED, EGRESS_VIA_MAPPED},
        {"::127.0.0.1", EGRESS_LOOPBACK, EGRESS_VIA_COMPATIBLE},
        {"::192.168.1.1", EGRESS_PRIVATE, EGRESS_VIA_COMPATIBLE},
        {"::ffff:0:127.0.0.1", EGRESS_LOOPBACK, EGRESS_VIA_SIIT},
        {"64:ff9b::127.0.0.1", EGRESS_LOOPBACK, EGRESS_VIA_NAT64},
        {"64:ff9b::a9fe:a9fe", EGRESS_LINK_LOCAL, EGRESS_VIA_NAT64},
        {"2002:7f00:1::", EGRESS_LOOPBACK, EGRESS_VIA_6TO4},
        {"2002:a9fe:a9fe::1", EGRESS_LINK_LOCAL, EGRESS_VIA_6TO4},
        {"2002:c0a8:101::1", EGRESS_PRIVATE, EGRESS_VIA_6TO4},
        /* Teredo: the client's address is stored inverted (127.0.0.1 ^ ff = 80ff:fffe) */
        {"2001:0:4136:e378:8000:63bf:80ff:fffe", EGRESS_LOOPBACK, EGRESS_VIA_TEREDO},
        {"2001:0:4136:e378:8000:63bf:5601:5601", EGRESS_LINK_LOCAL, EGRESS_VIA_TEREDO},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        egress_via via = EGRESS_VIA_NONE;
        egress_class got = cls_of(c[i].addr, &via);
        if (got != c[i].cls || via != c[i].via)
            fail_msg("%s: expected %s via %d, got %s via %d", c[i].addr, egress_class_name(c[i].cls),
                     (int)c[i].via, egress_class_name(got), (int)via);
    }
    /* Forms that embed a public IPv4 address: routed ones are public,
     * the compatible and SIIT forms are not routed at all. */
    egress_via via;
    assert_int_equal(cls_of("::ffff:8.8.8.8", &via), EGRESS_PUBLIC);
    assert_int_equal(cls_of("64:ff9b::8.8.8.8", &via), EGRESS_PUBLIC);
    assert_int_equal(cls_of("2002:808:808::1", &via), EGRESS_PUBLIC);
    assert_int_equal(cls_of("2001:0:4136:e378:8000:63bf:f7f7:f7f7", &via), EGRESS_PUBLIC);
    assert_int_equal(cls_of("::8.8.8.8", &via), EGRESS_RESERVED);
    assert_int_equal(cls_of("::ffff:0:8.8.8.8", &via), EGRESS_RESERVED);
}

static void test_not_ip_and_short(void **state)
{
    (void)state;
    struct sockaddr sa = {.sa_family = AF_UNIX};
    assert_int_equal(egress_classify(&sa, sizeof sa, NULL), EGRESS_NOT_IP);
    struct sockaddr_in in = {.sin_family = AF_INET};
    assert_int_equal(egress_classify((struct sockaddr *)&in, 4, NULL), EGRESS_NOT_IP);   /* too short */
    assert_int_equal(egress_classify(NULL, 0, NULL), EGRESS_NOT_IP);
    assert_string_equal(egress_class_name(EGRESS_LINK_LOCAL), "link-local");
    assert_string_equal(egress_class_name((egress_class)99), "unknown");
}

static void test_private_network_set(void **state)
{
    (void)state;
    assert_true(egress_class_is_private_network(EGRESS_LOOPBACK));
    assert_true(egress_class_is_private_network(EGRESS_PRIVATE));
    assert_true(egress_class_is_private_network(EGRESS_CGNAT));
    assert_true(egress_class_is_private_network(EGRESS_UNIQUE_LOCAL));
    assert_false(egress_class_is_private_network(EGRESS_LINK_LOCAL));
    assert_false(egress_class_is_private_network(EGRESS_UNSPECIFIED));
    assert_false(egress_class_is_private_network(EGRESS_MULTICAST));
    assert_false(egress_class_is_private_network(EGRESS_BROADCAST));
    assert_false(egress_class_is_private_network(EGRESS_RESERVED));
    assert_false(egress_class_is_private_network(EGRESS_PUBLIC));
}

static bool allows(const egress_policy *p, const char *text, egress_class *cls)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, text, &in.sin_addr) == 1)
        return egress_allows(p, (struct sockaddr *)&in, sizeof in, cls, NULL);
    assert_int_equal(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
    return egress_allows(p, (struct sockaddr *)&in6, sizeof in6, cls, NULL);
}

static void test_policy_decisions(void **state)
{
    (void)state;
    egress_class c;
    egress_policy strict = {0};
    assert_true(allows(&strict, "8.8.8.8", &c));
    assert_false(allows(&strict, "127.0.0.1", &c));
    assert_int_equal(c, EGRESS_LOOPBACK);
    assert_false(allows(&strict, "::ffff:127.0.0.1", &c));
    assert_int_equal(c, EGRESS_LOOPBACK);
    assert_false(allows(NULL, "10.0.0.1", &c));

    egress_policy priv = {.allow_private_networks = true};
    assert_true(allows(&priv, "127.0.0.1", &c));
    assert_true(allows(&priv, "::1", &c));
    assert_true(allows(&priv, "10.0.0.1", &c));
    assert_true(allows(&priv, "100.64.1.1", &c));
    assert_true(allows(&priv, "fd00::1", &c));
    /* never, even so: the metadata service, this host as 0.0.0.0, multicast */
    assert_false(allows(&priv, "169.254.169.254", &c));
    assert_int_equal(c, EGRESS_LINK_LOCAL);
    assert_false(allows(&priv, "::ffff:169.254.169.254", &c));
    assert_false(allows(&priv, "0.0.0.0", &c));
    assert_false(allows(&priv, "224.0.0.1", &c));
    assert_false(allows(&priv, "255.255.255.255", &c));

    egress_net nets[2];
    char why[128];
    assert_true(egress_net_parse("10.20.0.0/16", &nets[0], why, sizeof why));
    assert_true(egress_net_parse("169.254.169.254", &nets[1], why, sizeof why));
    egress_policy listed = {.allow_nets = nets, .n_allow_nets = 2};
    assert_true(allows(&listed, "10.20.3.4", &c));
    assert_true(allows(&listed, "::ffff:10.20.3.4", &c));
    assert_false(allows(&listed, "10.21.0.1", &c));
    assert_true(allows(&listed, "169.254.169.254", &c));   /* named explicitly */
    assert_false(allows(&listed, "169.254.169.253", &c));
    assert_false(allows(&listed, "127.0.0.1", &c));
    egress_net all;
    assert_true(egress_net_parse("0.0.0.0/0", &all, why, sizeof why));
    egress_policy everything = {.allow_nets = &all, .n_allow_nets = 1};
    assert_false(allows(&everything, "0.0.0.0", &c));      /* never the unspecified address */
    assert_true(allows(&everything, "127.0.0.1", &c));
}

static void test_net_parse(void **state)
{
    (void)state;
    egress_net n;
    char why[128];
    assert_true(egress_net_parse("127.0.0.1/32", &n, why, sizeof why));
    assert_int_equal(n.family, AF_INET);
    assert_int_equal(n.prefix, 32);
    assert_true(egress_net_parse("fd00::/8", &n, why, sizeof why));
    assert_int_equal(n.family, AF_INET6);
    assert_int_equal(n.prefix, 8);
    assert_true(egress_net_parse("::1", &n, why, sizeof why));
    assert_int_equal(n.prefix, 128);
    assert_false(egress_net_parse("10.1.2.3/16", &n, why, sizeof why));
    assert_non_null(strstr(why, "bits set"));
    assert_false(egress_net_parse("10.0.0.0/33", &n, why, sizeof why));
    assert_false(egress_net_parse("10.0.0.0/", &n, why, sizeof why));
    assert_false(egress_net_parse("10.0.0.0/1x", &n, why, sizeof why));
    assert_false(egress_net_parse("10.0.0.0/0008", &n, why, sizeof why));
    assert_false(egress_net_parse("localhost", &n, why, sizeof why));
    assert_false(egress_net_parse("", &n, why, sizeof why));
    assert_false(egress_net_parse("/8", &n, why, sizeof why));
    assert_false(egress_net_parse("127.1", &n, why, sizeof why));   /* no shorthand forms */
    assert_false(egress_net_parse(NULL, &n, why, sizeof why));
}

static void test_describe(void **state)
{
    (void)state;
    egress_check chk = {.refusals = 1, .cls = EGRESS_LOOPBACK, .via = EGRESS_VIA_MAPPED};
    strcpy(chk.address, "::ffff:127.0.0.1");
    char msg[300];
    egress_describe(&chk, msg, sizeof msg);
    assert_non_null(strstr(msg, "egress refused"));
    assert_non_null(strstr(msg, "::ffff:127.0.0.1"));
    assert_non_null(strstr(msg, "class loopback"));
    assert_non_null(strstr(msg, "IPv4-mapped"));
    assert_true(egress_refused(&chk, CURLE_COULDNT_CONNECT));
    assert_false(egress_refused(&chk, CURLE_OK));   /* another address of the name connected */
    chk.refusals = 0;
    assert_false(egress_refused(&chk, CURLE_COULDNT_CONNECT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_ranges),
        cmocka_unit_test(test_v6_ranges),
        cmocka_unit_test(test_v6_embedded_v4),
        cmocka_unit_test(test_not_ip_and_short),
        cmocka_unit_test(test_private_network_set),
        cmocka_unit_test(test_policy_decisions),
        cmocka_unit_test(test_net_parse),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
