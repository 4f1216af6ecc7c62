/* pii.c — the PII scanner and redaction (see pii.h): one forward pass,
 * each matcher's lookahead bounded, so the time is linear in the text. */
#include "util/pii.h"
#include "util/xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const pii_names[PII__KINDS] = {"email", "phone", "card", "iban", "national_id"};
static const char *const pii_tokens[PII__KINDS] = {"[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]",
                                                   "[NATIONAL_ID]"};

const char *pii_kind_name(pii_kind k) { return (unsigned)k < PII__KINDS ? pii_names[k] : "?"; }
const char *pii_kind_token(pii_kind k) { return (unsigned)k < PII__KINDS ? pii_tokens[k] : "[PII]"; }

/* ASCII only, no locale: a byte >= 0x80 is none of these. */
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static bool is_alpha(unsigned char c) { return is_upper(c) || is_lower(c); }
static bool is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }
static bool is_word(unsigned char c) { return is_alnum(c) || c == '_'; }

/* The scan's state: the text and what earlier attempts learned, so that no
 * byte is read more than a bounded number of times. */
typedef struct pii_scan {
    const unsigned char *t;
    size_t n;
    size_t local_run_end;             /* e-mail: end of the run of local-part bytes */
    size_t domain_at;                 /* e-mail: the '@' whose domain was read … */
    size_t domain_end;                /* … and where it ends (0: not a domain) */
} pii_scan;

static unsigned char at(const pii_scan *s, size_t i) { return i < s->n ? s->t[i] : 0; }

/* A match ends here: nothing word-like follows, nor a "+" or "(" and a
 * digit — a number running on ("…28+155…"), and after redaction such a
 * tail would start a match of its own. */
static bool ends_clean(const pii_scan *s, size_t end)
{
    unsigned char c = at(s, end);
    if (is_word(c)) return false;
    return !((c == '+' || c == '(') && is_digit(at(s, end + 1)));
}

/* ---------------------------------------------------------------- e-mail */

static bool email_local_byte(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* The domain after the '@' at `at_pos`: its end, or 0. Read once per '@'.
 * A full stop after the address ends a sentence, not the domain. */
static size_t email_domain(pii_scan *s, size_t at_pos)
{
    if (s->domain_at == at_pos + 1) return s->domain_end;
    s->domain_at = at_pos + 1;
    s->domain_end = 0;
    size_t start = at_pos + 1, i = start, labels = 0, last_start = i;
    bool last_alpha = false;
    for (;;) {
        size_t ls = i;
        bool alpha = true;
        while (i < s->n && i - start <= 253 && (is_alnum(s->t[i]) || s->t[i] == '-')) {
            if (!is_alpha(s->t[i])) alpha = false;
            i++;
        }
        size_t ll = i - ls;
        if (ll == 0 || ll > 63 || s->t[ls] == '-' || s->t[i - 1] == '-' || i - start > 253)
            return 0;
        labels++;
        last_start = ls;
        last_alpha = alpha;
        if (at(s, i) == '.' && is_alnum(at(s, i + 1))) {
            i++;
            continue;
        }
        break;
    }
    size_t last_len = i - last_start;
    if (labels < 2 || !last_alpha || last_len < 2 || last_len > 63) return 0;
    if (!ends_clean(s, i) || at(s, i) == '-' || at(s, i) == '@') return 0;
    s->domain_end = i;
    return i;
}

static bool match_email(pii_scan *s, size_t i, size_t *end)
{
    size_t j = s->local_run_end;
    if (i >= j) {
        /* At most 65 bytes: a longer local part is no address. Unbounded,
         * every word start inside one long run of local-part bytes
         * ("+14155552671.x." repeated) scanned to its end: quadratic in a
         * message, as pii_next starts a fresh scan for every match. The
         * run's end is kept for the starts inside it only when found. */
        for (j = i; j < s->n && j - i <= 64 && email_local_byte(s->t[j]);) j++;
        if (j - i <= 64) s->local_run_end = j;
    }
    if (at(s, j) != '@' || j - i > 64 || j == i || s->t[j - 1] == '.') return false;
    size_t d = email_domain(s, j);
    if (!d) return false;
    *end = d;
    return true;
}

/* ---------------------------------------------------------------- numbers */

/* A number (or an id that starts with a digit) does not continue a larger
 * one: not after "+" (that "+" was tried as a phone), nor after a
 * separator that follows a digit ("1.415-555-2671", "2026-12-04"). */
static bool number_starts_ok(const pii_scan *s, size_t i)
{
    unsigned char p = i ? s->t[i - 1] : 0, pp = i > 1 ? s->t[i - 2] : 0;
    if (p == '+') return false;
    return !((p == '.' || p == ',' || p == '-' || p == '/' || p == ':') && is_digit(pp));
}

/* A run of digit groups: "+1 (415) 555-2671", "4111 1111 1111 1111". */
#define NUM_GROUPS_MAX 12
#define NUM_DIGITS_MAX 24
typedef struct num_tok {
    bool     plus;
    int      ngroups;
    int      glen[NUM_GROUPS_MAX];
    /* the separator before group k (0: none); one more than the groups, so
     * that sep[ngroups] (the group after the last, never read when the
     * groups overflowed) is 0, not past the array (found by fuzz_pii) */
    char     sep[NUM_GROUPS_MAX + 1];
    bool     paren[NUM_GROUPS_MAX];
    size_t   gend[NUM_GROUPS_MAX];    /* the byte after group k (after its ')') */
    int      ndigits;                 /* in all groups */
    char     d[NUM_DIGITS_MAX + 1];
    bool     overflow;                /* more digits or groups followed */
} num_tok;

static bool num_sep(unsigned char c) { return c == ' ' || c == '-' || c == '.'; }

static void num_parse(const pii_scan *s, size_t i, num_tok *k)
{
    memset(k, 0, sizeof *k);
    if (at(s, i) == '+') {
        k->plus = true;
        i++;
    }
    char sep = 0;
    for (;;) {
        bool paren = false;
        size_t p = i;
        if (at(s, p) == '(') {
            paren = true;
            p++;
        }
        if (!is_digit(at(s, p))) break;
        int len = 0;
        while (is_digit(at(s, p))) {
            if (k->ndigits >= NUM_DIGITS_MAX) {
                k->overflow = true;
                return;
            }
            k->d[k->ndigits++] = (char)at(s, p);
            len++;
            p++;
        }
        if (paren) {
            if (at(s, p) != ')') {
                k->ndigits -= len;
                break;
            }
            p++;
        }
        if (k->ngroups >= NUM_GROUPS_MAX) {
            k->ndigits -= len;
            k->overflow = true;
            return;
        }
        int g = k->ngroups++;
        k->glen[g] = len;
        k->sep[g] = sep;
        k->paren[g] = paren;
        k->gend[g] = p;
        /* the next group: one separator, or none after a ')' */
        unsigned char c = at(s, p);
        if (num_sep(c) && (is_digit(at(s, p + 1)) || at(s, p + 1) == '(')) {
            sep = (char)c;
            i = p + 1;
        } else if (paren && (is_digit(c) || c == '(')) {
            sep = 0;
            i = p;
        } else {
            break;
        }
    }
    k->d[k->ndigits] = '\0';
}

/* Digits in the first g groups. */
static int num_digits_upto(const num_tok *k, int g)
{
    int n = 0;
    for (int i = 0; i < g; i++) n += k->glen[i];
    return n;
}

static bool luhn_ok(const char *d, int n)
{
    int sum = 0;
    for (int i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (i & 1) {
            v *= 2;
            if (v > 9) v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

static int prefix_num(const char *d, int digits)
{
    int v = 0;
    for (int i = 0; i < digits; i++) v = v * 10 + (d[i] - '0');
    return v;
}

/* An issuer's prefix in use, with a length it issues. */
static bool card_iin_ok(const char *d, int n)
{
    int p1 = d[0] - '0', p2 = prefix_num(d, 2), p3 = prefix_num(d, 3), p4 = prefix_num(d, 4);
    if (p1 == 4) return n == 13 || n == 16 || n == 19;                         /* Visa */
    if (p2 >= 51 && p2 <= 55) return n == 16;                                  /* Mastercard */
    if (p4 >= 2221 && p4 <= 2720) return n == 16;
    if (p2 == 34 || p2 == 37) return n == 15;                                  /* Amex */
    if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38) return n >= 14 && n <= 19; /* Diners */
    if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19;                   /* JCB */
    if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649)) return n >= 16 && n <= 19; /* Discover */
    if (p2 == 62) return n >= 16 && n <= 19;                                   /* UnionPay */
    if (p2 == 50 || (p2 >= 56 && p2 <= 58) || p2 == 63 || p2 == 67) return n >= 12 && n <= 19; /* Maestro */
    return false;
}

/* The first g groups written as a card is printed. */
static bool card_shape_ok(const num_tok *k, int g)
{
    if (k->plus) return false;
    for (int i = 0; i < g; i++)
        if (k->paren[i]) return false;
    if (g == 1) return true;
    for (int i = 1; i < g; i++)
        if (k->sep[i] != k->sep[1] || k->sep[i] == '.') return false;
    if (g == 3 && k->glen[0] == 4 && k->glen[1] == 6 && (k->glen[2] == 5 || k->glen[2] == 4))
        return true;                                                           /* Amex, Diners */
    for (int i = 0; i + 1 < g; i++)
        if (k->glen[i] != 4) return false;
    return k->glen[g - 1] >= 1 && k->glen[g - 1] <= 4;
}

static bool card_ok(const num_tok *k, int g)
{
    int n = num_digits_upto(k, g);
    return n >= 13 && n <= 19 && card_shape_ok(k, g) && luhn_ok(k->d, n) && card_iin_ok(k->d, n);
}

/* US SSN as AAA-GG-SSSS; the SSA never issues area 000, 666 or 900–999,
 * group 00 or serial 0000. */
static bool ssn_ok(const num_tok *k, int g)
{
    if (k->plus || g != 3 || k->paren[0] || k->paren[1] || k->paren[2]) return false;
    if (k->glen[0] != 3 || k->glen[1] != 2 || k->glen[2] != 4) return false;
    if (k->sep[1] != '-' || k->sep[2] != '-') return false;
    int area = prefix_num(k->d, 3), group = prefix_num(k->d + 3, 2), serial = prefix_num(k->d + 5, 4);
    return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
}

/* "(415) 555-2671", "415-555-2671", "1 415 555 2671": area and exchange
 * codes start 2–9. */
static bool phone_nanp_ok(const num_tok *k, int g)
{
    int first = 0;
    if (g == 4 && k->glen[0] == 1 && k->d[0] == '1' && !k->paren[0]) first = 1;
    else if (g != 3) return false;
    if (k->glen[first] != 3 || k->glen[first + 1] != 3 || k->glen[first + 2] != 4) return false;
    if (k->paren[first + 1] || k->paren[first + 2]) return false;
    int off = first;                                                           /* digits before the area */
    if (k->d[off] < '2' || k->d[off + 3] < '2') return false;
    char s2 = k->sep[first + 1], s3 = k->sep[first + 2];
    if (k->paren[first]) return (s2 == 0 || s2 == ' ') && (s3 == '-' || s3 == ' ');
    if (s2 != s3) return false;
    if (first && k->sep[1] != s2 && k->sep[1] != ' ') return false;
    return true;
}

/* A national number with its trunk 0 ("020 7946 0958", "06 12 34 56 78"),
 * or an international one after 00: in groups of 2+, one separator. */
static bool phone_trunk_ok(const num_tok *k, int g)
{
    if (k->d[0] != '0' || g < 2) return false;
    int n = num_digits_upto(k, g);
    bool intl = k->d[1] == '0';
    if (intl ? (n < 11 || n > 17) : (n < 10 || n > 12)) return false;
    for (int i = 0; i < g; i++) {
        if (k->glen[i] < 2) return false;
        if (i > 0 && k->paren[i]) return false;
    }
    char sep = 0;
    for (int i = 1; i < g; i++) {
        if (i == 1 && k->paren[0]) continue;                                  /* "(020) 7946 0958" */
        if (!sep) sep = k->sep[i];
        if (k->sep[i] != sep || sep == 0) return false;
    }
    return true;
}

/* "+" and 8–15 digits, country code not starting with 0; separators and
 * one parenthesised group allowed ("+1 (415) 555-2671", "+44 20 7946 0958"). */
static bool phone_e164_ok(const num_tok *k, int g)
{
    if (!k->plus || k->paren[0]) return false;
    int n = num_digits_upto(k, g);
    if (n < 8 || n > 15 || k->d[0] == '0') return false;
    int parens = 0;
    for (int i = 0; i < g; i++) parens += k->paren[i];
    return parens <= 1;
}

static bool phone_ok(const num_tok *k, int g)
{
    return phone_e164_ok(k, g) || (!k->plus && (phone_nanp_ok(k, g) || phone_trunk_ok(k, g)));
}

/* A number starting at i: a card, an SSN or a phone. It may end before
 * the token does only where a space follows (prose: "4111 1111 1111 1111
 * 12/26"); "2026-12-04", "10.0.0.12" and longer runs are not cut short. */
static bool match_number(const pii_scan *s, size_t i, size_t *end, pii_kind *kind)
{
    if (!number_starts_ok(s, i)) return false;
    num_tok k;
    num_parse(s, i, &k);
    if (k.ngroups == 0) return false;
    for (int g = k.ngroups; g >= 1; g--) {
        size_t e = k.gend[g - 1];
        bool whole = g == k.ngroups && !k.overflow;
        if (!whole && k.sep[g] != ' ') continue;
        if (whole) {
            unsigned char nx = at(s, e), nn = at(s, e + 1);
            if (!ends_clean(s, e)) continue;
            if ((nx == '.' || nx == ',' || nx == '-' || nx == '/' || nx == ':') && is_digit(nn))
                continue;                        /* not whole; a prefix cut at a space may be */
        }
        pii_kind kd;
        if (card_ok(&k, g)) kd = PII_CARD;
        else if (ssn_ok(&k, g)) kd = PII_NATIONAL_ID;
        else if (phone_ok(&k, g)) kd = PII_PHONE;
        else continue;
        *end = e;
        *kind = kd;
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------- IBAN */

/* The SWIFT IBAN registry: country and length. */
static const struct { char cc[3]; unsigned char len; } iban_countries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22},
    {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20},
    {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
    {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30},
    {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21},
    {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33},
    {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
    {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29},
    {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

static int iban_length(unsigned char a, unsigned char b)
{
    for (size_t i = 0; i < sizeof iban_countries / sizeof iban_countries[0]; i++)
        if (iban_countries[i].cc[0] == a && iban_countries[i].cc[1] == b) return iban_countries[i].len;
    return 0;
}

/* Add one character's value to a running mod-97 (letters are 10–35). */
static unsigned mod97_add(unsigned r, unsigned char c)
{
    if (is_digit(c)) return (r * 10 + (unsigned)(c - '0')) % 97;
    return (r * 100 + (unsigned)(c - 'A' + 10)) % 97;
}

static bool match_iban(const pii_scan *s, size_t i, size_t *end)
{
    if (!is_upper(at(s, i)) || !is_upper(at(s, i + 1)) || !is_digit(at(s, i + 2)) ||
        !is_digit(at(s, i + 3)))
        return false;
    int len = iban_length(s->t[i], s->t[i + 1]);
    if (!len) return false;
    /* Together, or in groups of four separated by one space. */
    bool spaced = at(s, i + 4) == ' ';
    char chars[34];
    size_t p = i;
    for (int k = 0; k < len; k++) {
        if (k && k % 4 == 0 && spaced) {
            if (at(s, p) != ' ') return false;
            p++;
        }
        unsigned char c = at(s, p);
        if (!is_upper(c) && !is_digit(c)) return false;
        chars[k] = (char)c;
        p++;
    }
    if (!ends_clean(s, p)) return false;
    unsigned r = 0;
    for (int k = 4; k < len; k++) r = mod97_add(r, (unsigned char)chars[k]);
    for (int k = 0; k < 4; k++) r = mod97_add(r, (unsigned char)chars[k]);
    if (r != 1) return false;
    *end = p;
    return true;
}

/* ---------------------------------------------------------------- national ids */

/* UK National Insurance number: "AB123456C" or "AB 12 34 56 C". */
static bool match_nino(const pii_scan *s, size_t i, size_t *end)
{
    unsigned char a = at(s, i), b = at(s, i + 1);
    if (!is_upper(a) || !is_upper(b)) return false;
    if (strchr("DFIQUV", a) || strchr("DFIOQUV", b)) return false;
    static const char *const never[] = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"};
    for (size_t k = 0; k < sizeof never / sizeof never[0]; k++)
        if (never[k][0] == a && never[k][1] == b) return false;
    size_t p = i + 2;
    bool spaced = at(s, p) == ' ';
    for (int pair = 0; pair < 3; pair++) {
        if (spaced) {
            if (at(s, p) != ' ') return false;
            p++;
        }
        if (!is_digit(at(s, p)) || !is_digit(at(s, p + 1))) return false;
        p += 2;
    }
    if (spaced) {
        if (at(s, p) != ' ') return false;
        p++;
    }
    unsigned char suffix = at(s, p);
    if (suffix < 'A' || suffix > 'D') return false;
    p++;
    if (!ends_clean(s, p)) return false;
    *end = p;
    return true;
}

/* Spanish DNI "12345678Z" and NIE "X1234567L": the letter is the number
 * mod 23 (an NIE's X, Y, Z count as 0, 1, 2). */
static bool match_dni(const pii_scan *s, size_t i, size_t *end)
{
    static const char letters[] = "TRWAGMYFPDXBNJZSQVHLCKE";
    unsigned char c = at(s, i);
    uint32_t v;
    if (is_digit(c) && number_starts_ok(s, i)) v = (uint32_t)(c - '0');
    else if (c == 'X' || c == 'Y' || c == 'Z') v = (uint32_t)(c - 'X');
    else return false;
    for (size_t k = 1; k < 8; k++) {
        unsigned char d = at(s, i + k);
        if (!is_digit(d)) return false;
        v = v * 10 + (uint32_t)(d - '0');
    }
    size_t p = i + 8;
    if (at(s, p) == '-') p++;
    if (at(s, p) != (unsigned char)letters[v % 23] || !ends_clean(s, p + 1)) return false;
    *end = p + 1;
    return true;
}

/* Italian codice fiscale: 6 letters, 2 digits, a month letter, 2 digits, a
 * letter and 3 digits, the check letter; digits may be replaced by the
 * letters LMNPQRSTUV (omocodia). */
static bool match_codice_fiscale(const pii_scan *s, size_t i, size_t *end)
{
    static const char shape[] = "LLLLLLNNLNNLNNNL";        /* L letter, N digit (or its letter) */
    static const unsigned char odd[26] = {1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18,
                                          20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23};
    unsigned sum = 0;
    for (size_t k = 0; k < 15; k++) {
        unsigned char c = at(s, i + k);
        if (shape[k] == 'L' ? !is_upper(c) : !(is_digit(c) || (c && strchr("LMNPQRSTUV", c))))
            return false;
        if (k == 8 && !strchr("ABCDEHLMPRST", c)) return false;           /* the month */
        unsigned v = is_digit(c) ? (unsigned)(c - '0') : (unsigned)(c - 'A');
        sum += (k % 2 == 0) ? odd[v] : v;                                 /* 1-based odd positions */
    }
    unsigned char check = at(s, i + 15);
    if (check != 'A' + sum % 26 || !ends_clean(s, i + 16)) return false;
    *end = i + 16;
    return true;
}

/* ---------------------------------------------------------------- the pass */

static bool try_at(pii_scan *s, size_t i, pii_span *out)
{
    unsigned char c = s->t[i];
    size_t end;
    pii_kind kind;
    if (is_alnum(c) && match_email(s, i, &end)) kind = PII_EMAIL;
    else if (is_upper(c) && match_iban(s, i, &end)) kind = PII_IBAN;
    else if (is_upper(c) && (match_codice_fiscale(s, i, &end) || match_nino(s, i, &end)))
        kind = PII_NATIONAL_ID;
    else if ((is_digit(c) || c == 'X' || c == 'Y' || c == 'Z') && match_dni(s, i, &end))
        kind = PII_NATIONAL_ID;
    else if ((is_digit(c) || c == '+' || c == '(') && match_number(s, i, &end, &kind)) {
    } else
        return false;
    out->start = i;
    out->end = end;
    out->kind = kind;
    return true;
}

static bool scan_next(pii_scan *s, size_t *pos, pii_span *out)
{
    for (size_t i = *pos; i < s->n; i++) {
        /* a match starts a word: never inside "abc123" or "x_4111…" */
        if (i && is_word(s->t[i - 1])) continue;
        if (try_at(s, i, out)) {
            *pos = out->end;
            return true;
        }
    }
    *pos = s->n;
    return false;
}

static void scan_init(pii_scan *s, const char *text, size_t len)
{
    memset(s, 0, sizeof *s);
    s->t = (const unsigned char *)text;
    s->n = text ? len : 0;
}

bool pii_next(const char *text, size_t len, size_t *pos, pii_span *out)
{
    pii_scan s;
    scan_init(&s, text, len);
    return scan_next(&s, pos, out);
}

bool pii_contains(const char *text, size_t len)
{
    size_t pos = 0;
    pii_span sp;
    return pii_next(text, len, &pos, &sp);
}

size_t pii_redact_into(const char *text, size_t len, char *out, size_t cap, unsigned *kinds)
{
    if (kinds) *kinds = 0;
    if (!cap) return 0;
    pii_scan s;
    scan_init(&s, text, len);
    size_t o = 0, from = 0, pos = 0;
    pii_span sp;
    for (;;) {
        bool found = scan_next(&s, &pos, &sp);
        size_t upto = found ? sp.start : s.n;
        size_t n = upto - from;
        if (n > cap - 1 - o) n = cap - 1 - o;
        memcpy(out + o, text + from, n);
        o += n;
        if (!found) break;
        if (kinds) *kinds |= PII_BIT(sp.kind);
        const char *tok = pii_tokens[sp.kind];
        size_t tl = strlen(tok);
        if (tl > cap - 1 - o) break;         /* a replacement is whole or absent */
        memcpy(out + o, tok, tl);
        o += tl;
        from = sp.end;
    }
    out[o] = '\0';
    return o;
}

char *pii_redact_dup(const char *text, size_t len, unsigned *kinds)
{
    if (kinds) *kinds = 0;
    pii_scan s;
    scan_init(&s, text, len);
    size_t pos = 0;
    pii_span sp;
    if (!scan_next(&s, &pos, &sp)) return NULL;
    /* A replacement is at most 13 bytes and a match at least 5, so the copy
     * is at most 13/5 of the text; measure exactly instead of guessing. */
    size_t need = 0, from = 0;
    pos = 0;
    scan_init(&s, text, len);
    while (scan_next(&s, &pos, &sp)) {
        need += (sp.start - from) + strlen(pii_tokens[sp.kind]);
        from = sp.end;
    }
    need += len - from;
    char *out = xmalloc(need + 1);
    pii_redact_into(text, len, out, need + 1, kinds);
    return out;
}
