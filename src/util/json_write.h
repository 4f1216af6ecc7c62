/* json_write.h — a cJSON tree written as compact JSON text into a buf,
 * for the bodies brigade sends on every agent step (a model request holds
 * the whole conversation, printed again at every step).
 *
 * Why not cJSON_PrintUnformatted: it writes a string a byte at a time
 * through a switch and grows its buffer by probing; on a long conversation
 * that was a quarter of a step's CPU (docs/benchmarks.md). This writer
 * copies the plain runs of a string whole (json_escape.h) and writes into
 * one growing buf.
 *
 * The text means what cJSON's would: the same members in the same order
 * (repeated keys included), numbers written as cJSON writes them (an
 * integer as one, otherwise %1.15g, or %1.17g when that does not read back
 * as the same double — cJSON settles for %1.15g within an epsilon, which
 * cuts the last digits of some; here they are kept; NaN and infinities as
 * null), raw items as they are. Strings
 * follow json_escape.h's policy, which differs from cJSON's only in
 * spelling: \b and \f come out as \u0008 and \u000c, DEL is escaped, and
 * a byte of broken UTF-8 becomes U+FFFD instead of passing through (so the
 * text is always valid JSON, which cJSON's then was not). */
#ifndef BRIGADE_JSON_WRITE_H
#define BRIGADE_JSON_WRITE_H

#include <cjson/cJSON.h>

#include "util/buf.h"

/* Append `item`'s JSON text to out (a member's key is not written: only
 * its value). A NULL item writes null. */
void json_write(buf *out, const cJSON *item);

/* Append object `obj` leaving out its members named `omit` (every one of
 * them, at this level only); anything but an object is written whole. */
void json_write_omitting(buf *out, const cJSON *obj, const char *omit);

#endif
