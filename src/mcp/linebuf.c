/* linebuf.c — the newline framing of MCP's stdio transport: a child's
 * stdout read in chunks, handed on as whole lines, each at most `max`
 * bytes. An over-long line is reported once and skipped to its end, so a
 * server that never writes a newline costs at most `max` bytes of memory. */
#include "mcp/mcp_proto.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void mcp_linebuf_init(mcp_linebuf *lb, size_t max)
{
    memset(lb, 0, sizeof *lb);
    lb->max = max ? max : MCP_MAX_MESSAGE_BYTES;
}

void mcp_linebuf_free(mcp_linebuf *lb)
{
    free(lb->data);
    memset(lb, 0, sizeof *lb);
}

static void lb_emit(mcp_linebuf *lb,
                    void (*on_line)(void *, mcp_line_status, const char *, size_t), void *arg)
{
    size_t n = lb->len;
    if (n && lb->data[n - 1] == '\r') n--;
    if (n) {
        lb->data[n] = '\0';
        on_line(arg, MCP_LINE_OK, lb->data, n);
    }
    lb->len = 0;
}

void mcp_linebuf_feed(mcp_linebuf *lb, const char *data, size_t n,
                      void (*on_line)(void *arg, mcp_line_status st, const char *line, size_t len),
                      void *arg)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t chunk = nl ? (size_t)(nl - data) : n;
        if (lb->skipping) {
            if (nl) lb->skipping = false;
        } else if (lb->len + chunk > lb->max) {
            lb->len = 0;
            lb->skipping = !nl;
            on_line(arg, MCP_LINE_TOO_LONG, NULL, 0);
        } else {
            if (lb->len + chunk + 1 > lb->cap) {
                size_t cap = lb->cap ? lb->cap : 4096;
                while (cap < lb->len + chunk + 1) cap *= 2;
                if (cap > lb->max + 1) cap = lb->max + 1;
                lb->data = xrealloc(lb->data, cap);
                lb->cap = cap;
            }
            memcpy(lb->data + lb->len, data, chunk);
            lb->len += chunk;
            if (nl) lb_emit(lb, on_line, arg);
        }
        if (!nl) break;
        data = nl + 1;
        n -= chunk + 1;
    }
}
