/* utf8.h — UTF-8 validation for everything that arrives from the network. */
#ifndef BRIGADE_UTF8_H
#define BRIGADE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
bool utf8_valid(const char *s, size_t n);

#endif
