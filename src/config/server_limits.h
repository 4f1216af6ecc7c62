/* server_limits.h — the per-request limits of the HTTP server (server.limits.*
 * in the config file) as a plain type. It lives below both config/ and http/
 * so that the config can carry the limits without including the HTTP layer;
 * http/http.h takes the type from here and applies the defaults. */
#ifndef BRIGADE_SERVER_LIMITS_H
#define BRIGADE_SERVER_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* Limits applied to every request. A zero field takes the default noted
 * beside it (http_limits_apply_defaults in http/). */
typedef struct http_limits {
    size_t   max_header_bytes;   /* all header lines together: 431 past it (default 16 KiB) */
    size_t   max_headers;        /* header count: 431 past it (default 64) */
    size_t   max_url_bytes;      /* request target: 414 past it (default 8 KiB) */
    size_t   max_body_bytes;     /* decoded body: 413 past it (default 1 MiB) */
    uint32_t header_timeout_ms;  /* whole header block must arrive within (default 10 s): 408 */
    uint32_t body_timeout_ms;    /* whole body must arrive within (default 30 s): 408 */
    uint32_t idle_timeout_ms;    /* keep-alive connection with no request (default 60 s) */
    uint32_t shutdown_grace_ms;  /* drain in-flight work on SIGTERM up to (default 10 s) */
    size_t   stream_high_water;  /* queued response bytes before a stream is "full" (default 256 KiB) */
    uint32_t max_connections;    /* per process; past it new connections are closed (default 10000) */
} http_limits;

#endif
