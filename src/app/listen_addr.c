/* listen_addr.c — parsing listen addresses (see listen_addr.h). */
#include "app/listen_addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int listen_addr_parse(const char *s, char *host, size_t hostlen, int *port, int allow_zero,
                      char *err, size_t errlen)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "\"%s\": an IPv6 address is written [ADDR]:PORT", s);
            return -1;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "\"%s\": expected HOST:PORT, e.g. 127.0.0.1:8080", s);
            return -1;
        }
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen) {
        snprintf(err, errlen, "\"%s\": missing or too long host", s);
        return -1;
    }
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < (allow_zero ? 0 : 1) || p > 65535) {
        snprintf(err, errlen, "\"%s\": the port must be a number from %d to 65535", s,
                 allow_zero ? 0 : 1);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}
