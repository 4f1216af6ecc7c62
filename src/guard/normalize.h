/* normalize.h — the text the injection detectors look at: what an attacker
 * would write to slip past a pattern, folded back to plain lower-case ASCII
 * where it can be.
 *
 * One pass over UTF-8 input (hostile: any bytes):
 *   - bytes that are not well-formed UTF-8 are dropped (so "ign\xffore"
 *     reads "ignore"), as are zero-width and other invisible format
 *     characters (U+200B–U+200F, U+202A–U+202E, U+2060–U+2064, U+2066–
 *     U+2069, U+FEFF, U+00AD soft hyphen, U+180E, U+034F, tag characters);
 *   - look-alikes fold to ASCII by a small table of our own (normalize.c):
 *     full-width forms, Cyrillic and Greek letters that look Latin,
 *     mathematical alphanumerics, circled letters, Latin letters with
 *     accents — an NFKC-like folding limited to what spells English words;
 *   - every Unicode space is a space, runs of spaces and tabs are one space
 *     (a newline stays a newline); ASCII letters are lower-cased.
 * With GUARD_NORM_LEET, inside a "word" (a run of letters, digits, @ and $
 * holding at least one letter) the digits and signs that stand for letters
 * are read as those letters (0→o 1→i 3→e 4→a 5→s 7→t 8→b 9→g @→a $→s), and
 * letters spaced out one by one ("i g n o r e", "i.g.n.o.r.e") are joined.
 *
 * Each output byte remembers the input offset of the character it came
 * from, so that a detector's span in the normalised text maps back to the
 * bytes a person would see. The output is valid UTF-8. Output length is at
 * most the input length (nothing ever expands). */
#ifndef BRIGADE_GUARD_NORMALIZE_H
#define BRIGADE_GUARD_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

enum { GUARD_NORM_LEET = 1 };

typedef struct guard_norm {
    char     *text;        /* NUL-terminated, `len` bytes */
    size_t    len;
    uint32_t *origin;      /* origin[i]: input offset of the character output byte i came from */
    const char *input;     /* the input (not owned), for guard_norm_span */
    size_t    input_len;
} guard_norm;

/* Normalise in[0..n) (n < 4 GiB; callers scan in windows far smaller).
 * Returns 0, or -1 if n is too large. Free with guard_norm_free. */
int  guard_normalize(const char *in, size_t n, unsigned flags, guard_norm *out);
void guard_norm_free(guard_norm *g);

/* The GUARD_NORM_LEET reading of an already normalised text, without
 * decoding the input again. */
void guard_norm_leet(const guard_norm *from, guard_norm *to);

/* Map a span [start, end) of the normalised text back to the input's
 * bytes: [*in_start, *in_end), whole characters. */
void guard_norm_span(const guard_norm *g, size_t start, size_t end, size_t *in_start,
                     size_t *in_end);

/* Decode one UTF-8 character at s[0..n): its code point, and its length in
 * *len; -1 (and *len = 1) for a malformed byte. */
int32_t guard_utf8_next(const unsigned char *s, size_t n, size_t *len);

#endif
