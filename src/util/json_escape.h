/* json_escape.h — the one way brigade writes a string as JSON text by hand
 * (logs, span attributes, error envelopes, SSE chunks, translated bodies),
 * where building a cJSON tree would cost more than the string itself.
 *
 * The policy, the same for every caller:
 *   - `"` and `\` are escaped as \" and \\;
 *   - newline, carriage return and tab as \n, \r and \t;
 *   - every other control byte (0x00-0x1f) and DEL (0x7f) as \u00XX, lower
 *     case hex: DEL is legal JSON but a terminal or log viewer acts on it;
 *   - well-formed UTF-8 (no overlongs, no surrogates, nothing above
 *     U+10FFFF) passes as it is;
 *   - each byte that is not part of a well-formed UTF-8 sequence becomes
 *     U+FFFD (the three bytes EF BF BD), so the output is always valid UTF-8
 *     JSON and a reader sees where the input was broken. (\u00XX would be
 *     valid too, but would turn a stray 0xff into the letter ÿ.)
 * Text that needs no escaping is copied in runs, not a byte at a time: span
 * attributes are escaped for every span. */
#ifndef BRIGADE_JSON_ESCAPE_H
#define BRIGADE_JSON_ESCAPE_H

#include <stddef.h>

#include "util/buf.h"

/* The most bytes one input byte can become: \u00XX. */
#define JSON_ESCAPE_MAX_GROWTH 6

/* Append s[0..len) to out as a JSON string literal, with the quotes. */
void json_escape_string(buf *out, const char *s, size_t len);

/* Append s[0..len) to out escaped, without quotes (a part of a literal). */
void json_escape_body(buf *out, const char *s, size_t len);

/* Write s[0..len) escaped, without quotes, into out[0..cap): only whole
 * escapes and whole characters, so what is written is always valid inside a
 * literal; stops at the first one that does not fit. Returns the bytes
 * written. A cap of len * JSON_ESCAPE_MAX_GROWTH always fits all of s. */
size_t json_escape_into(char *out, size_t cap, const char *s, size_t len);

#endif
