/* spotlight.h — what the model sees of a flagged tool output, by the
 * agent's policy (docs/guard.md "Policies"):
 *
 *   spotlight  the output, wrapped between two markers that carry a random
 *              id made for this output, and datamarked: every space or tab
 *              is replaced by U+02C6 (ˆ), so that the model reads it as one
 *              marked block of data. A line before it tells the model it is
 *              data from that tool and not instructions. The wrapper cannot
 *              be closed from inside: the id is unpredictable (getrandom),
 *              and every "<<" and ">>" of the output is replaced by "‹‹"
 *              and "››" first, so the output cannot even spell a marker.
 *   drop       a notice that the output was withheld, naming the detector
 *              and its labels, and nothing of the output.
 */
#ifndef BRIGADE_GUARD_SPOTLIGHT_H
#define BRIGADE_GUARD_SPOTLIGHT_H

#include <stddef.h>

/* The spotlighted form of content[0..len) (malloc'd, NUL-terminated). */
char *guard_spotlight(const char *tool, const char *content, size_t len);

/* The notice that replaces a dropped output (malloc'd). */
char *guard_withheld(const char *tool, const char *detector, const char *labels);

#endif
