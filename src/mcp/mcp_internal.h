/* mcp_internal.h — what the files of src/mcp/ share: a transport (how
 * messages reach one server: stdio.c, and the one place a child process is
 * started, spawn.c) and a client session over it (session.c: ids, pending
 * requests and their timeouts, the server's own requests). Everything here
 * runs on the hub's loop (hub.c). */
#ifndef BRIGADE_MCP_INTERNAL_H
#define BRIGADE_MCP_INTERNAL_H

#include <curl/curl.h>
#include <uv.h>

#include "egress/egress_addr.h"
#include "egress/egress_curl.h"
#include "mcp/mcp.h"
#include "mcp/mcp_proto.h"

/* ---- a transport ---- */

typedef struct mcp_transport_cb {
    /* One message's text (not NUL-terminated beyond len). */
    void (*on_message)(void *arg, const char *text, size_t len);
    /* The transport ended (the child exited, a pipe broke): no more
     * messages. Called at most once, never after mcp_transport.close. */
    void (*on_closed)(void *arg, const char *why);
    /* Egress refused an address of a request (HTTP; before that request's
     * error answer is delivered): the class and address for the audit
     * entry. May be NULL. */
    void (*on_egress_refused)(void *arg, const egress_check *chk);
    void *arg;
} mcp_transport_cb;

typedef struct mcp_transport mcp_transport;
struct mcp_transport {
    /* Queue one message; false when the transport is gone. */
    bool (*send)(mcp_transport *t, const char *text, size_t len);
    /* End it (stdio: close stdin, SIGTERM, SIGKILL after a grace; http:
     * DELETE the session); frees itself when done; no callback after this. */
    void (*close)(mcp_transport *t);
    /* The protocol version initialize agreed on (http sends it on every
     * request after); NULL when the transport does not care. */
    void (*negotiated)(mcp_transport *t, const char *version);
};

/* The one place a server process is started (spawn.c): cfg's command and
 * args with {workdir} filled in, the whole environment (PATH and cfg's
 * env), in the sandbox unless cfg->sandbox is false. `workdir` is the
 * instance's directory on the host (the sandbox's writable /work);
 * `mcp_root` is data_dir/mcp (real path), whose parent nothing of the
 * sandbox may show. The pipes must be initialised on `loop`; they become
 * the child's stdin, stdout and stderr. on_exit is called once, when the
 * process has exited (for a sandbox: with everything it started); the
 * child frees itself after it. NULL with `err` when it did not start. */
typedef struct mcp_child mcp_child;
typedef void (*mcp_child_exit_fn)(void *arg, int64_t status, int term_signal);
mcp_child *mcp_spawn(uv_loop_t *loop, const mcp_server_cfg *cfg, const char *workdir,
                     const char *mcp_root, uv_pipe_t *in, uv_pipe_t *out, uv_pipe_t *err,
                     mcp_child_exit_fn on_exit, void *arg, char *errbuf, size_t errlen);
/* SIGTERM: to its process group. SIGKILL: that, and for a sandbox every
 * process in its cgroup. Nothing once it has exited. */
void mcp_child_signal(mcp_child *c, int sig);

/* A stdio transport: start the server's command for the instance whose
 * directory is `workdir` (mcp_root as for mcp_spawn). */
mcp_transport *mcp_stdio_open(uv_loop_t *loop, const mcp_server_cfg *cfg, const char *workdir,
                              const char *mcp_root, mcp_transport_cb cb, char *err, size_t errlen);

/* ---- HTTP: libcurl on the hub's loop (curl_loop.c) ---- */

typedef struct mcp_curl mcp_curl;
/* CURLOPT_PRIVATE of every handle added: `done` gets it once it finished
 * (already removed from the multi; the owner cleans the handle up). */
typedef struct mcp_xfer {
    void (*done)(struct mcp_xfer *x, CURLcode code);
} mcp_xfer;

mcp_curl *mcp_curl_new(uv_loop_t *loop);
bool      mcp_curl_add(mcp_curl *c, CURL *e);
void      mcp_curl_remove(mcp_curl *c, CURL *e);   /* a transfer given up (not from
                                                    * inside curl's callbacks: see busy) */
/* Inside curl's callbacks now? Then run fn(arg) right after them. */
bool      mcp_curl_busy(const mcp_curl *c);
void      mcp_curl_later(mcp_curl *c, void (*fn)(void *arg), void *arg);
uv_loop_t *mcp_curl_loop(const mcp_curl *c);
/* The networks every server may reach although private: the operator's
 * egress.allow_networks (they must outlive the curl loop). */
void      mcp_curl_set_allow_nets(mcp_curl *c, const egress_net *nets, size_t n);
const egress_net *mcp_curl_allow_nets(const mcp_curl *c, size_t *n);
/* No more transfers will be added: freed once the last one finished. */
void      mcp_curl_release(mcp_curl *c);

/* A streamable HTTP transport to cfg->url (http.c). */
mcp_transport *mcp_http_open(mcp_curl *curl, const mcp_server_cfg *cfg, mcp_transport_cb cb,
                             char *err, size_t errlen);

/* Open the GET stream (messages the server sends on its own) once
 * initialize is done; the hub's transports do, `brigade mcp-client` not. */
void mcp_http_enable_get_stream(mcp_transport *t);

/* The user's Authorization header value (the vault's "Bearer …") for every
 * request from now on (copied; NULL: none). A server with `auth: {kind:
 * oauth}` in the hub. */
void mcp_http_set_bearer(mcp_transport *t, const char *value);

/* MCP authorization for an HTTP transport: a 401 (or a 403
 * insufficient_scope) runs mcp_oauth_authorize with `consent` and sends the
 * request again with the new token (bounded: MCP_OAUTH_MAX_TRIES). `o`
 * must outlive the transport. */
struct mcp_oauth;
void mcp_http_set_oauth(mcp_transport *t, struct mcp_oauth *o,
                        char *(*consent)(void *arg, const char *authorization_url, char *err, size_t errlen),
                        void *consent_arg);

/* ---- a client session: JSON-RPC over a transport ---- */

typedef struct mcp_session mcp_session;

/* The answer to one request: m is the RESULT or ERROR message, or NULL
 * with `why` when it timed out or the session closed. */
typedef void (*mcp_reply_fn)(void *arg, const mcp_msg *m, const char *why);

typedef struct mcp_session_cb {
    /* A notification from the server (not progress: see on_progress). */
    void (*on_notification)(void *arg, const mcp_msg *m);
    void (*on_progress)(void *arg, int64_t token, double progress, double total, const char *message);
    /* The transport ended or broke the protocol; every pending request is
     * answered with `why` before this. */
    void (*on_closed)(void *arg, const char *why);
    /* Egress refused an address (mcp_transport_cb's); may be NULL. */
    void (*on_egress_refused)(void *arg, const egress_check *chk);
    void *arg;
} mcp_session_cb;

/* The session takes the transport: create with mcp_session_new, then open
 * the transport with mcp_session_transport_cb(s) as its callbacks and
 * attach it. */
mcp_session     *mcp_session_new(uv_loop_t *loop, const char *label, mcp_session_cb cb);
mcp_transport_cb mcp_session_transport_cb(mcp_session *s);
void             mcp_session_attach(mcp_session *s, mcp_transport *t);
mcp_transport   *mcp_session_transport(mcp_session *s);
/* Send a request; `reply` is called once (never from inside this call).
 * `with_progress` adds _meta.progressToken = the id. Returns the id, or 0
 * when the session is closed (then reply is called on a later turn). */
int64_t mcp_session_request(mcp_session *s, const char *method, cJSON *params, uint32_t timeout_ms,
                            bool with_progress, mcp_reply_fn reply, void *arg);
/* Forget a pending request (its reply is not called) and tell the server
 * with notifications/cancelled. */
void    mcp_session_cancel(mcp_session *s, int64_t id, const char *reason);
void    mcp_session_notify(mcp_session *s, const char *method, cJSON *params);
/* Close: pending requests are answered with `why`; frees the session and
 * its transport; no callback after this returns. */
void    mcp_session_close(mcp_session *s, const char *why);

#endif
