/* ids.h — random identifiers and hex encoding.
 *
 * Object ids are a short type prefix plus 24 random hex digits
 * ("usr_3f9a…"), so an id says what it names and cannot be guessed. */
#ifndef BRIGADE_IDS_H
#define BRIGADE_IDS_H

#include <stddef.h>

#define ID_MAX 40   /* room for any id brigade makes, with its NUL */

void ids_random_bytes(void *out, size_t n);              /* CSPRNG; aborts if unavailable */
void ids_hex(char *out, const void *in, size_t n);       /* out holds 2n+1 */
void ids_new(char out[ID_MAX], const char *prefix);      /* prefix + "_" + 24 hex */
void ids_request_id(char out[33]);                       /* 32 hex */

#endif
