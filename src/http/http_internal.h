/* http_internal.h — what the files of the HTTP layer share and nothing else
 * sees: the parser wrapper (parse.c), the connection (conn.c), the worker
 * thread and server (server.c), the response writer (response.c).
 *
 * Ownership in one paragraph: a worker owns its loop, its listener and a
 * list of connections. A connection owns its socket, one timer, the parser
 * and the unparsed bytes. A request is owned by the handler from dispatch
 * until it is finished; it holds a reference on its connection so the
 * connection's memory outlives the socket when the client leaves early.
 *
 * Streamed bytes are "corked": http_stream_begin/_write append to the
 * connection's cork buffer and put the connection on its worker's corked
 * list; the worker's uv_check flushes every cork once per loop turn, so an
 * upstream read that yields twenty SSE events costs one write, not twenty.
 * Any other write to the connection (http_conn_write) sends the cork first,
 * in the same call, so bytes always leave in the order they were produced.
 */
#ifndef BRIGADE_HTTP_INTERNAL_H
#define BRIGADE_HTTP_INTERNAL_H

#include <llhttp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "http/http.h"
#include "util/buf.h"
#include "util/log_limit.h"

/* ---------------- parser (parse.c) ---------------- */

/* One header as offsets into the parser's scratch buffer, while the header
 * block is still arriving (pieces may straddle reads). */
typedef struct http_hdr_ref {
    uint32_t name_off, name_len;
    uint32_t val_off, val_len;
} http_hdr_ref;

typedef enum {
    HTTP_PARSE_MORE,      /* all bytes consumed, request not complete yet */
    HTTP_PARSE_REQUEST,   /* a whole request is ready: http_parser_take() */
    HTTP_PARSE_ERROR,     /* unrecoverable: answer p->err_* and close */
} http_parse_result;

typedef struct http_parser {
    llhttp_t           ll;
    const http_limits *limits;
    buf                scratch;       /* url NUL name NUL value NUL … */
    http_hdr_ref      *refs;
    size_t             n_refs, cap_refs;
    size_t             url_len;
    size_t             header_bytes;
    size_t             body_cap;      /* bytes allocated for req->body */
    bool               url_done;
    bool               value_open;    /* a header value is being collected */
    bool               name_open;     /* a header name is being collected */
    size_t             name_start;    /* its offset in scratch */
    bool               headers_done;  /* later header callbacks are trailers */
    bool               in_message;    /* between message begin and complete */
    bool               paused;        /* stopped after a complete request */
    bool               expect_continue;
    http_request      *req;           /* the request being assembled */
    /* error, when HTTP_PARSE_ERROR */
    int                err_status;
    const char        *err_type;
    const char        *err_code;
    const char        *err_msg;
    /* hooks */
    http_request    *(*new_request)(void *ctx);
    void             (*on_headers)(void *ctx, http_request *req); /* may be NULL */
    void              *ctx;
} http_parser;

void http_parser_init(http_parser *p, const http_limits *limits,
                      http_request *(*new_request)(void *ctx),
                      void (*on_headers)(void *ctx, http_request *req), void *ctx);
void http_parser_free(http_parser *p);   /* also recycles nothing: see take */
/* Feed bytes; *consumed says how many were used (the rest belongs to the
 * next request, pipelined). After HTTP_PARSE_REQUEST, take the request and
 * feed the remainder when ready for the next one. */
http_parse_result http_parser_feed(http_parser *p, const char *data, size_t len,
                                   size_t *consumed);
http_request *http_parser_take(http_parser *p);
/* The request being assembled, if any (for the error's request id). */
static inline http_request *http_parser_current(http_parser *p) { return p->req; }

/* ---------------- requests ---------------- */

typedef enum { HTTP_RS_PARSING, HTTP_RS_HANDLER, HTTP_RS_STREAMING, HTTP_RS_DONE } http_req_state;

struct http_request_priv {
    http_req_state state;
    int            status;
    bool           keep_alive;       /* what the client asked for */
    bool           resp_keep_alive;  /* what the response said */
    bool           http10;
    bool           head;             /* HEAD: no body is sent */
    bool           want_drain;       /* a stream write returned false */
    bool           has_id;           /* request_id already set */
    char          *xh;               /* extra response header lines */
    size_t         xh_len, xh_cap;
    uv_work_t      work;
    void         (*work_fn)(http_request *);
    void         (*done_fn)(http_request *);
};

typedef struct http_request_full {
    http_request              pub;
    struct http_request_priv  priv;
} http_request_full;

http_request *http_request_alloc(void);
void          http_request_recycle(http_request *req);  /* reset for reuse */
void          http_request_destroy(http_request *req);

/* ---------------- worker, server, connection ---------------- */

typedef struct http_worker http_worker;

struct http_server {
    http_server_config cfg;
    http_limits        limits;
    int                port;
    unsigned           n_workers;
    http_worker       *workers;
    atomic_uint        n_conns;      /* for max_connections, process-wide */
    char               host[64];
};

struct http_worker {
    http_server *srv;
    unsigned     index;
    int          fd;                 /* bound, listening; handed to libuv */
    pthread_t    thread;
    bool         thread_started;
    uv_loop_t    loop;
    uv_tcp_t     listener;
    uv_async_t   stop_async;
    uv_timer_t   grace_timer;
    void        *thread_data;
    char        *readbuf;            /* shared by this loop's reads */
    http_conn   *conns;              /* open connections (doubly linked) */
    size_t       n_conns;
    /* Corked connections, flushed by cork_check at the end of each loop
     * turn. cork_idle runs only while the list is non-empty, so a cork made
     * outside the poll phase (a timer callback, a drain re-cork) does not
     * wait in a blocking poll for the check. Both handles are unref'd. */
    uv_check_t   cork_check;
    uv_idle_t    cork_idle;
    http_conn   *cork_head, *cork_tail;   /* doubly linked via cork_prev/next */
    size_t       n_corked;
    /* Counters for tests and metrics; written by this loop's thread only. */
    atomic_size_t n_writes;          /* http_conn_write-level writes to sockets */
    atomic_size_t n_cork_flushes;    /* non-empty corks sent */
    bool         stopping;
    bool         finished;
    log_limit    accept_log;         /* "accept failed" at most once a second */
    /* "date: …\r\n", refreshed at most once a second */
    char         date[48];
    size_t       date_len;
    uint64_t     date_ms;
};

#define HTTP_READBUF_SIZE (64 * 1024)
/* A cork past this is sent at once rather than waiting for the loop turn's
 * end, so a burst never builds a large buffer (and a single big write skips
 * the copy into the cork). */
#define HTTP_CORK_MAX (64 * 1024)

/* The one deadline a connection has at a time. WRITE: bytes are queued and
 * the client must keep taking them (progress re-arms it), so a reader that
 * stalls forever cannot pin a connection and its producer. */
typedef enum { HTTP_T_NONE, HTTP_T_HEADER, HTTP_T_BODY, HTTP_T_IDLE, HTTP_T_LINGER,
               HTTP_T_WRITE } http_timer_state;

struct http_conn {
    uv_tcp_t       tcp;
    uv_timer_t     timer;
    uv_shutdown_t  shut;
    http_worker   *w;
    http_conn     *prev, *next;
    http_parser    parser;
    buf            pending;          /* received, not yet parsed */
    http_request  *cur;              /* request handed to a handler */
    http_request  *spare;            /* recycled request object */
    size_t         queued;           /* bytes in uv_write requests in flight */
    buf            cork;             /* streamed bytes not yet written (see top) */
    http_conn     *cork_prev, *cork_next;
    bool           corked;           /* on w's corked list */
    int            refs;
    int            open_handles;
    uint8_t        tstate;
    bool           closing;          /* uv_close called */
    bool           close_after_write;
    bool           lingering;        /* FIN sent, draining the client */
    bool           reading;
    bool           in_parse;
    bool           counted;          /* counted in srv->n_conns */
    _Alignas(max_align_t) unsigned char memo[HTTP_CONN_MEMO_BYTES];   /* http_conn_memo */
};

/* conn.c */
void http_conn_accept(http_worker *w);
void http_conn_close(http_conn *c);
/* Write now, after whatever is corked (in the same write). */
void http_conn_write(http_conn *c, const uv_buf_t *bufs, unsigned n);
/* Append to the cork; sent at the end of the loop turn, or at once (with the
 * cork) if the cork would pass HTTP_CORK_MAX. */
void http_conn_cork(http_conn *c, const uv_buf_t *bufs, unsigned n);
/* Send the cork now, if any. Never calls back into handlers. */
void http_conn_flush(http_conn *c);
/* The worker's end-of-turn pass: flush every corked connection, then fire
 * on_drain for streams whose queue the flush left below half high water. */
void http_conn_flush_corked(http_worker *w);
/* Bytes accepted for this connection but not yet taken by the kernel: what
 * stream backpressure is measured against. */
static inline size_t http_conn_pending(const http_conn *c) { return c->queued + c->cork.len; }
void http_conn_request_finished(http_request *req);
void http_conn_close_when_written(http_conn *c);
bool http_conn_is_idle(const http_conn *c);

/* server.c */
const char *http_worker_date(http_worker *w, size_t *len);
void        http_worker_conn_gone(http_worker *w);

/* response.c */
/* An error answer with no handler involved (parse errors, timeouts). */
void http_send_error_raw(http_conn *c, int status, const char *type, const char *code,
                         const char *message, const char *request_id);
bool http_request_id_valid(const char *s, size_t len);

#endif
