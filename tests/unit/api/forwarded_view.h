/* forwarded_view.h — how a provider reads the body the gateway forwards,
 * for the property test and the fuzz target of chat_request.
 *
 * Written apart from cJSON on purpose: it is the oracle, so it must not
 * share cJSON's readings. It reads a JSON object's top-level members the
 * way most providers' parsers do — keys decoded in full (an escaped NUL
 * stays in the key), the LAST copy of a repeated key winning — and can also
 * look a field up the way Go's encoding/json does (letter case folded, the
 * last match winning). Values are kept as their raw text. */
#ifndef BRIGADE_TEST_FORWARDED_VIEW_H
#define BRIGADE_TEST_FORWARDED_VIEW_H

#include <stdbool.h>
#include <stddef.h>

typedef enum fv_type { FV_ABSENT = 0, FV_NULL, FV_BOOL, FV_NUMBER, FV_STRING, FV_ARRAY, FV_OBJECT } fv_type;

typedef struct fv_value {
    fv_type     type;
    const char *raw;     /* the value's text in the body */
    size_t      raw_len;
} fv_value;

typedef struct forwarded_view {
    size_t n, cap;
    struct fv_member {
        fv_value key;   /* the key's string text, decoded when looked up */
        fv_value v;
    } *m;
} forwarded_view;

/* Read `text` as one JSON object (with nothing but whitespace around it).
 * false if it is not valid JSON of that shape. fv_free after either. */
bool fv_read(forwarded_view *fv, const char *text, size_t len);
void fv_free(forwarded_view *fv);

/* The last member named exactly `name` (FV_ABSENT type if none). */
fv_value fv_last(const forwarded_view *fv, const char *name);
/* The last member whose name equals `name` (lower-case ASCII) with letter
 * case folded as Go folds it (ASCII, U+212A = k, U+017F = s). */
fv_value fv_last_folded(const forwarded_view *fv, const char *name);

/* Value helpers. */
bool fv_is_true(fv_value v);
/* The number's value; false if not a number. */
bool fv_number(fv_value v, double *out);
/* Decoded string into out (NUL-terminated; *out_len its length, which may
 * include NUL bytes); false if not a string or too long. */
bool fv_string(fv_value v, char *out, size_t outlen, size_t *out_len);

/* The property the gateway's budget rests on: the forwarded body `text`,
 * read by a provider (last copy of a key wins; and again with Go's case
 * folding), asks for exactly what was governed — model `upstream_model`,
 * `stream`, `choices` answers, output caps no larger than `max_output`
 * (and one present), nothing billed outside tokens. true if so; else
 * false with the first difference in why. */
bool fv_check_governed(const char *text, size_t len, const char *upstream_model, bool stream,
                       unsigned choices, unsigned max_output, char *why, size_t whylen);

#endif
