/* b64url.h — base64url without padding (RFC 4648 §5), as JWTs and brigade
 * keys use it. Decoding is strict: padding, whitespace, characters outside
 * the URL-safe alphabet and non-zero trailing bits are all refused, so one
 * token has exactly one spelling. Private to src/identity/. */
#ifndef BRIGADE_B64URL_H
#define BRIGADE_B64URL_H

#include <stddef.h>

/* out holds b64url_encoded_len(n) + 1 bytes; returns the length written. */
size_t b64url_encode(char *out, const unsigned char *in, size_t n);
static inline size_t b64url_encoded_len(size_t n) { return (n * 4 + 2) / 3; }

/* Decode in[0..n) into out (room for n*3/4 bytes). Returns the decoded
 * length, or -1 if the input is not canonical base64url. */
long b64url_decode(unsigned char *out, const char *in, size_t n);

#endif
