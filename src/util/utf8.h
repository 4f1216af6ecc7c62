/* utf8.h — UTF-8 validation for everything that arrives from the network. */
#ifndef BRIGADE_UTF8_H
#define BRIGADE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
bool utf8_valid(const char *s, size_t n);

/* The UTF-8 bytes of code point cp (at most U+10FFFF; the caller has
 * checked it) at out; how many (1-4). */
size_t utf8_encode(uint32_t cp, char out[4]);

#endif
