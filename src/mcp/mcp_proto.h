/* mcp_proto.h — the pure readers and writers of the Model Context Protocol
 * client (no I/O, no loop): JSON-RPC 2.0 messages, the newline framing of
 * the stdio transport, the Server-Sent Events framing of the streamable
 * HTTP transport, and a tools/call result turned into text for a model.
 * Everything here takes untrusted bytes from a server: every input is
 * bounded, and a bad one is an error with a message, never a crash (unit
 * tests in tests/unit/mcp, fuzz target fuzz/mcp). */
#ifndef BRIGADE_MCP_PROTO_H
#define BRIGADE_MCP_PROTO_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The protocol version brigade asks for, and the older ones it accepts
 * when a server answers with one of them. */
#define MCP_PROTOCOL_VERSION "2025-11-25"
bool mcp_protocol_version_ok(const char *v);

/* One message is at most this long (a line on stdio, an SSE event's data
 * or a JSON body over HTTP); a longer one is an error. */
#define MCP_MAX_MESSAGE_BYTES (4u << 20)

/* ---- JSON-RPC 2.0 (jsonrpc.c) ---- */

typedef enum mcp_msg_kind {
    MCP_MSG_REQUEST = 1,      /* method + id: the server asks us */
    MCP_MSG_NOTIFICATION,     /* method, no id */
    MCP_MSG_RESULT,           /* id + result */
    MCP_MSG_ERROR             /* id (may be null) + error {code, message} */
} mcp_msg_kind;

typedef struct mcp_msg {
    mcp_msg_kind kind;
    cJSON       *root;        /* owned: the whole message */
    const char  *method;      /* REQUEST, NOTIFICATION */
    bool         id_is_num;   /* ids brigade sends are numbers */
    int64_t      id_num;
    const char  *id_str;      /* a string id (a server's request) or NULL */
    const cJSON *id;          /* the id as sent (NULL for a notification) */
    const cJSON *params;      /* may be NULL */
    const cJSON *result;      /* RESULT */
    int64_t      error_code;  /* ERROR */
    const char  *error_message;
} mcp_msg;

/* Parse one message. False with a message in err (the text is never
 * echoed whole: a server's bytes are not trusted). A batch (an array) is
 * refused: MCP 2025-06-18 and later removed batching. */
bool mcp_msg_parse(const char *text, size_t len, mcp_msg *out, char *err, size_t errlen);
void mcp_msg_free(mcp_msg *m);

/* Writers: a compact JSON text with no newline in it (cJSON escapes
 * control characters in strings), malloc'd. `params` is taken (may be
 * NULL). */
char *mcp_write_request(int64_t id, const char *method, cJSON *params);
char *mcp_write_notification(const char *method, cJSON *params);
/* The answer to a server's request: `result` taken; or an error when
 * result is NULL. `id` is the request's id (copied). */
char *mcp_write_response(const cJSON *id, cJSON *result, int code, const char *message);

/* ---- newline framing of the stdio transport (linebuf.c) ---- */

/* Bytes in, whole lines out. A line longer than `max` is reported once as
 * too long and its bytes up to the next newline are dropped, so a server
 * cannot make brigade buffer without bound. */
typedef struct mcp_linebuf {
    char  *data;
    size_t len, cap, max;
    bool   skipping;          /* inside an over-long line */
} mcp_linebuf;

typedef enum mcp_line_status { MCP_LINE_NONE = 0, MCP_LINE_OK, MCP_LINE_TOO_LONG } mcp_line_status;

void mcp_linebuf_init(mcp_linebuf *lb, size_t max);
void mcp_linebuf_free(mcp_linebuf *lb);
/* Feed bytes; calls `on_line` for each complete line (without the "\n" or
 * a "\r" before it; empty lines skipped) and for each over-long one
 * (line NULL, status MCP_LINE_TOO_LONG). */
void mcp_linebuf_feed(mcp_linebuf *lb, const char *data, size_t n,
                      void (*on_line)(void *arg, mcp_line_status st, const char *line, size_t len),
                      void *arg);

/* ---- Server-Sent Events reader (sse_reader.c) ---- */

/* One event as the SSE spec defines dispatch: `data` lines joined by
 * "\n"; `id` is the last event id seen (kept across events, as the spec
 * says); `event` the type ("message" when none was given). */
typedef struct mcp_sse_event {
    const char *event;
    const char *data;
    size_t      data_len;
    const char *id;           /* NULL when the stream never gave one */
    uint32_t    retry_ms;     /* 0 when not given */
} mcp_sse_event;

typedef struct mcp_sse_reader {
    char    *line;            /* the line being read */
    size_t   line_len, line_cap;
    char    *data;            /* the event being built */
    size_t   data_len, data_cap;
    bool     has_data;
    char     event[64];
    char     last_id[256];
    bool     has_id;
    uint32_t retry_ms;
    size_t   max;             /* max line and max event data */
    bool     too_long;        /* the stream broke the bound: stop reading it */
    bool     after_cr;        /* a "\r" ended the last line: skip a "\n" */
    bool     bom_checked;
} mcp_sse_reader;

void mcp_sse_init(mcp_sse_reader *r, size_t max);
void mcp_sse_free(mcp_sse_reader *r);
/* Feed bytes; calls on_event for each dispatched event. Returns false once
 * a line or an event is longer than max (the reader then ignores the rest:
 * the caller ends the stream with an error). */
bool mcp_sse_feed(mcp_sse_reader *r, const char *data, size_t n,
                  void (*on_event)(void *arg, const mcp_sse_event *ev), void *arg);

/* ---- a tools/call result as tool output (content.c) ---- */

/* Turn a CallToolResult into the text a model sees: text blocks as they
 * are, an image or audio block as a one-line note ("[image image/png,
 * 1234 bytes base64 — not shown]"), an embedded resource's text (or a note
 * for a blob), a resource link as its URI; structuredContent when no
 * content block carried anything. At most `max` bytes are written — the
 * rest is never copied (the caller cuts with a note). *is_error reports
 * the result's isError. Returns malloc'd NUL-terminated text, *len its
 * length, *total the length the whole text would have had. */
char *mcp_content_to_text(const cJSON *result, size_t max, bool *is_error, size_t *len,
                          size_t *total);

#endif
