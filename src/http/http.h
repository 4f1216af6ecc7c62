/* http.h — the HTTP/1.1 server layer: its contract with the rest of brigade.
 *
 * One libuv loop per worker thread, each accepting on its own SO_REUSEPORT
 * socket, so both cores serve connections with no shared state in the hot
 * path. llhttp frames requests; this layer enforces every limit (header size
 * and count, URL length, body size, idle and slow-request timeouts), answers
 * pipelined requests in order, decodes chunked bodies, and streams responses
 * (chunked / Server-Sent Events) with backpressure.
 *
 * Threading rule: every function here is called on the loop thread that owns
 * the request, except http_request_defer's work callback, which runs on the
 * libuv thread pool and must not touch the request's connection.
 *
 * Lifetime rule: a request handed to a handler stays valid until the handler
 * finishes it (http_respond*, or http_stream_end), even if the client has
 * gone: writes to a closed connection are dropped, and `req->aborted` is set
 * and `req->on_abort` called so long work can stop early if it wants to.
 * (A client that half-closes, EOF, while its request is in a handler counts
 * as gone, as in nginx.) on_abort runs from a libuv callback of its own,
 * never from inside an http_* call; it may finish the request.
 *
 * HEAD is routed to the GET handler when no HEAD route exists, and answered
 * without a body. Errors the layer answers itself (400/408/413/414/431,
 * 404/405, 503 over max_connections) use the error envelope below.
 */
#ifndef BRIGADE_HTTP_H
#define BRIGADE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/server_limits.h"
#include "util/arena.h"

typedef struct http_server http_server;
typedef struct http_conn http_conn;
typedef struct http_request http_request;

/* Fill each zero field of l (type in config/server_limits.h) with its default. */
void http_limits_apply_defaults(http_limits *l);

typedef struct http_header {
    const char *name;            /* lower-cased */
    const char *value;           /* leading/trailing whitespace trimmed */
    size_t      value_len;
} http_header;

#define HTTP_MAX_PARAMS 4

struct http_request {
    /* --- filled by the server --- */
    const char   *method;        /* "GET", "POST", … */
    const char   *target;        /* raw request target, NUL-terminated */
    const char   *path;          /* target up to '?', percent-decoding NOT applied */
    const char   *query;         /* after '?', or "" */
    http_header  *headers;
    size_t        n_headers;
    char         *body;          /* decoded (chunked removed), NUL-terminated; NULL if none */
    size_t        body_len;
    char          request_id[65];/* a valid incoming x-request-id (1-64 of [A-Za-z0-9._-]),
                                    else 32 generated hex digits */
    const char   *params[HTTP_MAX_PARAMS]; /* router path parameters, in pattern order */
    size_t        n_params;
    arena         arena;         /* freed when the request is finished */
    uv_loop_t    *loop;          /* the loop that owns this request */
    void         *thread_data;   /* the per-thread pointer from http_server_config */
    bool          aborted;       /* client went away before we finished */
    uint64_t      started_ns;    /* monotonic time the headers completed */

    /* --- set by handlers --- */
    void         *user;          /* handler state */
    void         *app_ctx;       /* the application's own context of the request (the
                                  * API's), kept while handlers hand `user` around */
    void        (*on_abort)(http_request *req);  /* client disconnected (optional) */
    void        (*on_drain)(http_request *req);  /* stream dropped below high water (optional) */

    /* --- private to the http layer --- */
    http_conn    *conn;
    struct http_request_priv *priv;
};

/* Room the application keeps something in for as long as the request's
 * connection lives, so that the next request on a keep-alive connection
 * finds it (the API keeps the last key's MAC there, identity.h): zeroed
 * when the connection opens, wiped when it closes, never seen by another
 * connection. HTTP_CONN_MEMO_BYTES long, aligned for any type; NULL for a
 * request without a connection. */
#define HTTP_CONN_MEMO_BYTES 160
void *http_conn_memo(http_request *req);

/* Look up a request header by lower-case name; NULL if absent. */
const char *http_header_get(const http_request *req, const char *lname);

/* Query-string parameter, percent-decoded into the request arena; NULL if absent. */
const char *http_query_get(http_request *req, const char *name);

/* Add a response header (copied). Call before http_respond* / http_stream_begin. */
void http_add_header(http_request *req, const char *name, const char *value);

/* Send a complete response and finish the request. `body` is copied.
 * Adds content-length, x-request-id, date, connection handling. */
void http_respond(http_request *req, int status, const char *content_type,
                  const char *body, size_t len);

/* The OpenAI-shaped error envelope:
 * {"error":{"type":…,"code":…,"message":…,"param":…}} — param may be NULL. */
void http_respond_error(http_request *req, int status, const char *type,
                        const char *code, const char *message, const char *param);

/* Streaming responses (chunked transfer encoding). For SSE pass
 * content_type "text/event-stream"; the layer adds cache-control: no-cache. */
void http_stream_begin(http_request *req, int status, const char *content_type);

/* Queue bytes on the stream. Returns true while the queue is under the high
 * water mark; false means "full": stop producing until on_drain fires.
 * Bytes are never dropped while the client is connected (the caller's
 * stop-on-false is what bounds memory). Writes made during one loop turn
 * leave together at its end (one socket write, not one per call), or at
 * once when they pass 64 KiB or another response, the end or an abort
 * follows them; the queue above counts these not-yet-written bytes. */
bool http_stream_write(http_request *req, const char *data, size_t len);

/* Finish the stream (last chunk) and the request. */
void http_stream_end(http_request *req);

/* --- Server-Sent Events (sse.c) over a stream --- */

typedef struct http_sse http_sse;

/* Begin a 200 text/event-stream response; a ": ping" comment goes out
 * every ping_ms (0: none) until http_sse_end. */
http_sse *http_sse_begin(http_request *req, uint32_t ping_ms);
/* One event: "event: NAME" (NULL: none), "id: ID" (NULL: none), then the
 * data, one "data: " line per line of it, and the blank line. Returns
 * http_stream_write's answer: false = full, wait for on_drain. */
bool      http_sse_event(http_sse *s, const char *name, const char *id, const char *data,
                         size_t len);
/* A comment line ": TEXT" (ignored by clients; keeps the stream alive). */
bool      http_sse_comment(http_sse *s, const char *text);
/* Finish the stream and the request; frees s. */
void      http_sse_end(http_sse *s);

/* Cut the response off and finish the request: bytes already queued are
 * sent, then the connection closes without the terminating chunk (or, if no
 * response was started, with nothing at all). The client sees a truncated
 * transfer. */
void http_abort(http_request *req);

/* Run `work` on the libuv thread pool (for SQLite and other blocking work),
 * then `done` on the request's loop thread. `work` must not call http_*.
 * One deferral at a time per request; `done` runs even if the client left
 * (check req->aborted), and must still finish the request. */
void http_request_defer(http_request *req, void (*work)(http_request *req),
                        void (*done)(http_request *req));

/* --- routing --- */

typedef void (*http_handler)(http_request *req);

typedef struct http_router http_router;

http_router *http_router_new(void);
void         http_router_free(http_router *r);
/* pattern: "/v1/users/{id}/keys" — `{name}` matches one non-empty segment. */
void         http_router_add(http_router *r, const char *method, const char *pattern,
                             http_handler h);
/* Fills req->params. Returns the handler, or NULL with *status set to 404
 * (no such path) or 405 (path exists, method does not). */
http_handler http_router_match(const http_router *r, http_request *req, int *status);
/* After a 405: the methods the path does allow, "GET, POST", in the request
 * arena (for the `allow` header); NULL if the path matches no route. */
const char  *http_router_allow(const http_router *r, http_request *req);

/* --- the server --- */

typedef struct http_server_config {
    const char  *host;           /* "127.0.0.1", "::1", "0.0.0.0" */
    int          port;           /* 0 = pick a free port (see http_server_port) */
    unsigned     threads;        /* loops/threads; 0 = number of CPUs */
    http_limits  limits;
    http_router *router;         /* requests go here */
    const char  *server_name;    /* for logs */
    /* Called on each loop thread before it serves; the return value becomes
     * req->thread_data for requests on that thread. */
    void      *(*thread_init)(uv_loop_t *loop, unsigned index, void *arg);
    void       (*thread_fini)(void *thread_data);
    void        *thread_arg;
    /* Called for every finished request (status, duration), for metrics. */
    void       (*on_request_done)(http_request *req, int status);
} http_server_config;

/* Bind and start the worker threads. Returns NULL and sets *err (static
 * string or errno text) on failure, e.g. address in use. */
http_server *http_server_start(const http_server_config *cfg, char *err, size_t errlen);
int          http_server_port(const http_server *s);   /* the bound port */
/* Stop accepting, let in-flight requests finish up to the grace period,
 * then close everything and join the threads. Safe to call from a signal
 * watcher on another loop. Frees the server: `s` is invalid afterwards.
 * Connections past max_connections are accepted, answered 503
 * overloaded_error (best effort, one non-blocking write) and closed. */
void         http_server_stop(http_server *s);
/* Block until SIGINT/SIGTERM, then http_server_stop (which frees `s`).
 * `ready` (may be NULL) is called once the signal handlers are in place —
 * print "listening" there, so a signal sent as soon as a supervisor sees
 * that line stops the server gracefully instead of killing it.
 * Returns the signal. */
int          http_server_run_until_signal(http_server *s, void (*ready)(void *arg), void *arg);

/* Status code reason phrase ("OK", "Not Found"…). */
const char *http_status_text(int status);

#endif
