/* pii.h — finding and redacting personal data in a UTF-8 text: e-mail
 * addresses, phone numbers, payment card numbers, IBANs and national ids.
 *
 * In util/ because the logs (util/log.c), spans and audit entries (obs/)
 * and the agents' PII policy (guard/pii_policy.c) all use it, and util is
 * the only layer they can all include. Pure: no allocation except
 * pii_redact_dup, no global state, no locale.
 *
 * One forward pass; each position is tried by a few matchers whose
 * lookahead is bounded (an address at most 320 bytes, a number at most 48),
 * so the time is linear in the text whatever it holds (a megabyte of digits,
 * of "a.a.a.", of invalid UTF-8). Bytes that are not ASCII are boundaries:
 * nothing non-ASCII is ever part of a match (full-width digits are not
 * detected).
 *
 * What each kind is (docs/guard.md, "PII"):
 *   email        local@domain.tld — local part [A-Za-z0-9._%+-] starting
 *                with a letter or digit, at most 64 bytes; a domain of two
 *                or more labels, the last alphabetic (2–63), at most 253.
 *   phone        "+" and 8–15 digits (E.164, separators allowed); or a
 *                North American number written with separators
 *                ("(415) 555-2671", "415-555-2671", "415.555.2671"); or a
 *                national number starting with 0, 10–12 digits, written
 *                in groups ("020 7946 0958", "06 12 34 56 78"). A bare
 *                run of digits without "+" is never a phone: ids,
 *                timestamps and counts are.
 *   card         13–19 digits, together or in groups (4-4-4-4, 4-6-5, …)
 *                separated by spaces or dashes, passing the Luhn check,
 *                with an issuer prefix in use (Visa, Mastercard, Amex,
 *                Diners, Discover, JCB, UnionPay, Maestro).
 *   iban         a country's code and length (the SWIFT registry's 80
 *                countries), check digits by ISO 7064 mod 97-10; together
 *                or in groups of four.
 *   national_id  US SSN written AAA-GG-SSSS (area not 000, 666 or 9xx;
 *                group not 00; serial not 0000); UK National Insurance
 *                number (the prefixes HMRC does not issue refused, suffix
 *                A–D); Spanish DNI and NIE (the check letter, mod 23);
 *                Italian codice fiscale (the check character).
 *
 * A match must stand alone: the byte before and after it is not a letter,
 * a digit or '_', and a number is not part of a larger one ("1.415-555-2671",
 * "2026-12-04"). */
#ifndef BRIGADE_PII_H
#define BRIGADE_PII_H

#include <stdbool.h>
#include <stddef.h>

typedef enum pii_kind {
    PII_EMAIL = 0,
    PII_PHONE,
    PII_CARD,
    PII_IBAN,
    PII_NATIONAL_ID,
    PII__KINDS
} pii_kind;

/* A bit per kind, for "which kinds were found". */
#define PII_BIT(k) (1u << (k))

typedef struct pii_span {
    size_t   start, end;              /* byte offsets: [start, end) */
    pii_kind kind;
} pii_span;

/* "email", "phone", "card", "iban", "national_id". */
const char *pii_kind_name(pii_kind k);
/* What replaces it: "[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[NATIONAL_ID]". */
const char *pii_kind_token(pii_kind k);

/* The first match at or after *pos: true with *out set and *pos moved to
 * its end; false when there is none. Matches never overlap. */
bool pii_next(const char *text, size_t len, size_t *pos, pii_span *out);

/* Does the text hold any? (The first match, then stop.) */
bool pii_contains(const char *text, size_t len);

/* Redact into out (cap bytes, cap >= 1; always NUL-terminated, cut at a
 * whole replacement or byte when full). Returns the bytes written, not
 * counting the NUL. *kinds (may be NULL) gets the bits of the kinds found. */
size_t pii_redact_into(const char *text, size_t len, char *out, size_t cap, unsigned *kinds);

/* A redacted copy (malloc'd, NUL-terminated), or NULL when nothing was
 * found — callers keep their text and allocate nothing. *kinds as above. */
char *pii_redact_dup(const char *text, size_t len, unsigned *kinds);

#endif
