/* listen_addr.h — parsing "HOST:PORT" and "[v6]:PORT" listen addresses. */
#ifndef BRIGADE_LISTEN_ADDR_H
#define BRIGADE_LISTEN_ADDR_H

#include <stddef.h>

/* Split into host (no brackets) and port 1..65535 (0 allowed when
 * allow_zero). Returns 0, or -1 with err set. */
int listen_addr_parse(const char *s, char *host, size_t hostlen, int *port, int allow_zero,
                      char *err, size_t errlen);

#endif
