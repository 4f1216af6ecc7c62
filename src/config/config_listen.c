/* config_listen.c — parsing of listen addresses ("HOST:PORT", "[::1]:PORT"),
 * shared by the `server.listen` option and the `--listen` flag. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"

int config_parse_listen(const char *s, char **host, int *port, char *err, size_t errlen)
{
    char hostbuf[INET6_ADDRSTRLEN + 1];
    const char *colon;
    size_t hlen;
    int v6 = 0;

    if (!s || !*s) {
        snprintf(err, errlen, "empty listen address (want HOST:PORT)");
        return -1;
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "bad listen address \"%s\" (want [IPv6]:PORT, e.g. [::1]:8080)", s);
            return -1;
        }
        hlen = (size_t)(close - s - 1);
        if (hlen >= sizeof(hostbuf)) {
            snprintf(err, errlen, "bad IPv6 address in \"%s\"", s);
            return -1;
        }
        memcpy(hostbuf, s + 1, hlen);
        hostbuf[hlen] = '\0';
        colon = close + 1;
        v6 = 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "bad listen address \"%s\" (want HOST:PORT, e.g. 127.0.0.1:8080)", s);
            return -1;
        }
        if (strchr(s, ':') != colon) {
            snprintf(err, errlen, "bad listen address \"%s\" (put an IPv6 address in brackets: [::1]:8080)", s);
            return -1;
        }
        hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen >= sizeof(hostbuf)) {
            snprintf(err, errlen, "bad listen address \"%s\" (missing host, e.g. 127.0.0.1:8080)", s);
            return -1;
        }
        memcpy(hostbuf, s, hlen);
        hostbuf[hlen] = '\0';
    }

    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(v6 ? AF_INET6 : AF_INET, hostbuf, addr) != 1) {
        snprintf(err, errlen, "bad listen host \"%s\" (want an IP address such as 127.0.0.1, 0.0.0.0 or [::1])",
                 hostbuf);
        return -1;
    }

    const char *p = colon + 1;
    if (*p < '0' || *p > '9') {
        snprintf(err, errlen, "bad port in \"%s\" (want 0..65535)", s);
        return -1;
    }
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno || *end || v < 0 || v > 65535 || end - p > 5) {
        snprintf(err, errlen, "bad port in \"%s\" (want 0..65535)", s);
        return -1;
    }
    *host = config_xstrdup(hostbuf);
    *port = (int)v;
    return 0;
}
