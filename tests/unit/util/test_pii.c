/* test_pii.c — the PII scanner (util/pii.h): each kind's positives, the
 * near misses that must stay (Luhn-failing cards, wrong IBAN checks, SSN
 * areas never issued, dates, versions, addresses, timestamps, ids), and
 * hostile inputs (long digit runs, invalid UTF-8, a megabyte), with the
 * redacted text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "util/pii.h"

static char *redact(const char *in)
{
    static char out[4096];
    pii_redact_into(in, strlen(in), out, sizeof out, NULL);
    return out;
}

#define REDACTS(in, want) assert_string_equal(redact(in), want)
#define KEEPS(in) assert_string_equal(redact(in), in)

static void test_email(void **st)
{
    (void)st;
    REDACTS("write to jane.doe+tag@example.co.uk today", "write to [EMAIL] today");
    REDACTS("<bob_99@mail.example.org>", "<[EMAIL]>");
    REDACTS("mail a@b.io.", "mail [EMAIL].");
    REDACTS("x:Alice%Smith@Sub-Domain.Example.COM,", "x:[EMAIL],");
    KEEPS("user@localhost");
    KEEPS("not an email: @example.com and foo@ and a@b");
    KEEPS("a@b.c1");                       /* the last label is alphabetic */
    KEEPS("john@-bad.com");
    KEEPS("me.@example.com");              /* a local part does not end with a dot */
    KEEPS("version@2.0");
    /* a local part is at most 64 bytes, from the last word start that fits */
    char a64[65], text[200];
    memset(a64, 'a', 64);
    a64[64] = '\0';
    snprintf(text, sizeof text, "%s@example.com", a64);
    REDACTS(text, "[EMAIL]");
    snprintf(text, sizeof text, "b%s@example.com", a64);
    KEEPS(text);
    snprintf(text, sizeof text, "x.%s@example.com", a64);
    REDACTS(text, "x.[EMAIL]");
}

static void test_card(void **st)
{
    (void)st;
    REDACTS("card 4111111111111111 exp", "card [CARD] exp");
    REDACTS("4111 1111 1111 1111", "[CARD]");
    REDACTS("5500-0000-0000-0004.", "[CARD].");
    REDACTS("amex 3782 822463 10005", "amex [CARD]");
    REDACTS("378282246310005", "[CARD]");
    REDACTS("6011111111111117", "[CARD]");
    REDACTS("pay 4111 1111 1111 1111 12/26", "pay [CARD] 12/26");
    KEEPS("4111111111111112");            /* Luhn fails */
    KEEPS("4111 1111 1111 1112");
    KEEPS("1234567812345670");            /* Luhn passes, no issuer starts with 1 */
    KEEPS("41111111111111111111");         /* 20 digits */
    KEEPS("order_4111111111111111");       /* inside a word */
    KEEPS("4111-1111 1111-1111");          /* mixed separators */
    KEEPS("id a4111111111111111");
}

static void test_iban(void **st)
{
    (void)st;
    REDACTS("IBAN GB82 WEST 1234 5698 7654 32.", "IBAN [IBAN].");
    REDACTS("DE89370400440532013000", "[IBAN]");
    REDACTS("FR14 2004 1010 0505 0001 3M02 606", "[IBAN]");
    REDACTS("to NL91ABNA0417164300 please", "to [IBAN] please");
    KEEPS("GB82WEST12345698765431");      /* wrong check */
    KEEPS("GB83 WEST 1234 5698 7654 32");
    KEEPS("DE8937040044053201300");        /* one short for DE */
    KEEPS("QQ82WEST12345698765432");       /* no such country */
    KEEPS("DE89 37040044 0532013000");     /* not in fours */
}

static void test_phone(void **st)
{
    (void)st;
    REDACTS("call +1 (415) 555-2671 now", "call [PHONE] now");
    REDACTS("+14155552671", "[PHONE]");
    REDACTS("+44 20 7946 0958", "[PHONE]");
    REDACTS("+33 6 12 34 56 78", "[PHONE]");
    REDACTS("(415) 555-2671", "[PHONE]");
    REDACTS("415-555-2671", "[PHONE]");
    REDACTS("415.555.2671", "[PHONE]");
    REDACTS("1-415-555-2671", "[PHONE]");
    REDACTS("ring 020 7946 0958 or 07700 900123", "ring [PHONE] or [PHONE]");
    REDACTS("06 12 34 56 78", "[PHONE]");
    KEEPS("4155552671");                   /* a bare run of digits: an id, a timestamp */
    KEEPS("1733338087123");
    KEEPS("2026-12-04 18:48:07");
    KEEPS("2026-12-04T18:48:07.123Z");
    KEEPS("04.12.2026 10:30");
    KEEPS("10.0.0.12 and 192.168.100.200");
    KEEPS("version 1.2.3 and 10.15.7");
    KEEPS("115-555-2671");                 /* area codes start 2-9 */
    KEEPS("415-155-2671");
    KEEPS("+0 123 456 789");
    KEEPS("+123");
    KEEPS("UTC+05:30");
    KEEPS("1.415-555-2671");               /* part of a larger number */
    KEEPS("415-555-2671-9");
    KEEPS("in 2024 2025 2026 2027");
    KEEPS("12345678-1234-5678-1234-567812345678");
    KEEPS("v415-555-2671");
}

static void test_national_ids(void **st)
{
    (void)st;
    REDACTS("ssn 123-45-6789.", "ssn [NATIONAL_ID].");
    KEEPS("666-12-3456");
    KEEPS("900-12-3456");
    KEEPS("000-12-3456");
    KEEPS("123-00-6789");
    KEEPS("123-45-0000");
    KEEPS("123456789");                   /* bare nine digits are not an SSN */
    REDACTS("NI AB123456C", "NI [NATIONAL_ID]");
    REDACTS("AB 12 34 56 C", "[NATIONAL_ID]");
    KEEPS("GB123456A");                    /* prefix never issued */
    KEEPS("DA123456A");
    KEEPS("AB123456E");                    /* suffix A-D */
    REDACTS("DNI 12345678Z", "DNI [NATIONAL_ID]");
    REDACTS("12345678-Z", "[NATIONAL_ID]");
    REDACTS("NIE X1234567L", "NIE [NATIONAL_ID]");
    KEEPS("12345678A");                    /* wrong letter */
    KEEPS("X1234567A");
    REDACTS("CF RSSMRA85T10A562S", "CF [NATIONAL_ID]");
    KEEPS("RSSMRA85T10A562T");             /* wrong check character */
    KEEPS("RSSMRA85Z10A562S");             /* Z is not a month */
    /* found by fuzz_pii: a match does not run into "+digits" or
     * "(digits", and a token glued to a letter may still hold one that a
     * space cuts off */
    KEEPS("AB 12 34 56 C+123456787");
    KEEPS("+155-153255-15328+155");
    REDACTS("123-55-6789 4 12345678Z", "[NATIONAL_ID] 4 [NATIONAL_ID]");
    KEEPS("+11-2-53467+12345678Z");
}

static void test_kinds_and_spans(void **st)
{
    (void)st;
    const char *t = "a@b.io 4111111111111111 +14155552671 DE89370400440532013000 123-45-6789";
    char out[256];
    unsigned kinds = 0;
    pii_redact_into(t, strlen(t), out, sizeof out, &kinds);
    assert_string_equal(out, "[EMAIL] [CARD] [PHONE] [IBAN] [NATIONAL_ID]");
    assert_int_equal(kinds, PII_BIT(PII_EMAIL) | PII_BIT(PII_CARD) | PII_BIT(PII_PHONE) |
                                PII_BIT(PII_IBAN) | PII_BIT(PII_NATIONAL_ID));
    size_t pos = 0;
    pii_span sp;
    assert_true(pii_next(t, strlen(t), &pos, &sp));
    assert_int_equal(sp.start, 0);
    assert_int_equal(sp.end, 6);
    assert_int_equal(sp.kind, PII_EMAIL);
    assert_true(pii_next(t, strlen(t), &pos, &sp));
    assert_int_equal(sp.start, 7);
    assert_int_equal(sp.kind, PII_CARD);
    assert_string_equal(pii_kind_name(PII_NATIONAL_ID), "national_id");
    assert_true(pii_contains(t, strlen(t)));
    assert_false(pii_contains("nothing here", 12));
    assert_null(pii_redact_dup("nothing here", 12, &kinds));
    assert_int_equal(kinds, 0);
    char *d = pii_redact_dup(t, strlen(t), NULL);
    assert_string_equal(d, out);
    free(d);
    /* not NUL-terminated: the length is the end */
    assert_false(pii_contains("a@b.io", 3));
    /* NULL text is empty */
    assert_false(pii_contains(NULL, 10));
}

/* A full buffer cuts at a whole replacement, never in the middle of one,
 * and never writes past cap. */
static void test_bounded_output(void **st)
{
    (void)st;
    const char *t = "xx a@b.io yy";
    char out[16];
    memset(out, '#', sizeof out);
    size_t n = pii_redact_into(t, strlen(t), out, 6, NULL);
    assert_int_equal(n, 3);
    assert_string_equal(out, "xx ");
    assert_int_equal(out[6], '#');
    n = pii_redact_into(t, strlen(t), out, 11, NULL);
    assert_string_equal(out, "xx [EMAIL]");
    n = pii_redact_into(t, strlen(t), out, 1, NULL);
    assert_int_equal(n, 0);
    assert_string_equal(out, "");
}

/* Non-ASCII and broken UTF-8 are boundaries and pass through untouched. */
static void test_utf8(void **st)
{
    (void)st;
    REDACTS("\xc3\xa9t\xc3\xa9 jane@example.com\xe2\x80\x8b", "\xc3\xa9t\xc3\xa9 [EMAIL]\xe2\x80\x8b");
    REDACTS("\xff\xfe""4111111111111111\xff", "\xff\xfe[CARD]\xff");
    /* full-width digits are not digits */
    KEEPS("\xef\xbc\x94\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91");
    /* NUL inside the length is a boundary */
    const char t[] = "a\0jane@example.com";
    char out[64];
    size_t n = pii_redact_into(t, sizeof t - 1, out, sizeof out, NULL);
    assert_int_equal(n, 9);
    assert_memory_equal(out, "a\0[EMAIL]", 9);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Each hostile megabyte in bounded time (linear: a quadratic scan of a
 * megabyte would take minutes). */
static void test_adversarial_megabytes(void **st)
{
    (void)st;
    const size_t n = 1 << 20;
    char *t = malloc(n + 1);
    char *out = malloc(3 * n + 1);
    const char *fills[] = {"0123456789", "a.", "a-", "a@", "@a.", "4111 ", "+1 ", "1-", "(1)",
                           "\xff", "a@b.", "AB12", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@"};
    for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
        size_t fl = strlen(fills[f]);
        for (size_t i = 0; i < n; i++) t[i] = fills[f][i % fl];
        t[n] = '\0';
        double t0 = now_s();
        pii_redact_into(t, n, out, 3 * n + 1, NULL);
        double dt = now_s() - t0;
        /* generous for a sanitised build on a loaded machine */
        assert_true(dt < 5.0);
    }
    /* a megabyte of real matches: every one found */
    const char *unit = "jane@example.com ";
    size_t ul = strlen(unit), k = n / ul;
    for (size_t i = 0; i < k; i++) memcpy(t + i * ul, unit, ul);
    t[k * ul] = '\0';
    char *d = pii_redact_dup(t, k * ul, NULL);
    assert_non_null(d);
    assert_int_equal(strlen(d), k * strlen("[EMAIL] "));
    free(d);
    free(t);
    free(out);
}

/* Finding every match one pii_next at a time (guard/pii_policy.c does),
 * each a fresh scan, over a message of phone numbers inside one long run
 * of the bytes an address's local part may have: each word start of the
 * run scanned to its end: 256 KiB took ~1.6 s, a MiB ~25 s. Linear now. */
static void test_next_over_one_long_local_run(void **st)
{
    (void)st;
    const char *unit = "+14155552671.x.";
    size_t ul = strlen(unit), n = 1024 * 1024 / ul * ul;
    char *t = malloc(n + 1);
    assert_non_null(t);
    for (size_t i = 0; i < n; i += ul) memcpy(t + i, unit, ul);
    t[n] = '\0';
    double t0 = now_s();
    size_t pos = 0, found = 0;
    pii_span sp;
    while (pii_next(t, n, &pos, &sp)) found++;
    double dt = now_s() - t0;
    free(t);
    assert_int_equal(found, n / ul);   /* every phone number */
    if (dt > 2.0) fail_msg("a MiB took %.2f s", dt);   /* generous for sanitisers */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_card),
        cmocka_unit_test(test_iban),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_national_ids),
        cmocka_unit_test(test_kinds_and_spans),
        cmocka_unit_test(test_bounded_output),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_adversarial_megabytes),
        cmocka_unit_test(test_next_over_one_long_local_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
