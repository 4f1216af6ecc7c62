/* fuzz_mcp_readers.c — libFuzzer target for what an MCP server sends
 * brigade: a JSON-RPC message (mcp_msg_parse), the stdio transport's
 * newline framing (mcp_linebuf), the streamable HTTP transport's SSE
 * reader (mcp_sse_reader) and a tools/call result turned into text
 * (mcp_content_to_text). A server is not trusted: none may crash, leak or
 * go past its bound.
 *
 * Input: the first byte picks the chunk size the stream readers are fed
 * with (1..64 bytes, so chunk borders fall anywhere); the rest is the
 * server's bytes, given to all four readers.
 *
 * Invariants (abort() when broken):
 *   - a refused message has a message; an accepted one has a kind, and a
 *     response's id is a number or a string (or null for an error);
 *   - every line framed is at most the bound and holds no newline;
 *   - every SSE event's data is at most the bound; once the reader says
 *     "too long" it stays so;
 *   - content text is at most the cap and counted in full (total >= len). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/mcp_proto.h"

#define FUZZ_BOUND 256

static void check_line(void *arg, mcp_line_status st, const char *line, size_t len)
{
    (void)arg;
    if (st == MCP_LINE_TOO_LONG) return;
    if (len == 0 || len > FUZZ_BOUND || memchr(line, '\n', len) || line[len] != '\0') abort();
    mcp_msg m;
    char err[160];
    if (mcp_msg_parse(line, len, &m, err, sizeof err)) mcp_msg_free(&m);
}

static void check_event(void *arg, const mcp_sse_event *e)
{
    (void)arg;
    if (e->data_len > FUZZ_BOUND || !e->event || !e->data) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t chunk = 1 + data[0] % 64;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;

    mcp_msg m;
    char err[160] = "";
    if (mcp_msg_parse(text, n, &m, err, sizeof err)) {
        if (m.kind < MCP_MSG_REQUEST || m.kind > MCP_MSG_ERROR) abort();
        if ((m.kind == MCP_MSG_RESULT) && !m.id_is_num && !m.id_str) abort();
        if (m.kind == MCP_MSG_RESULT) {
            bool is_error;
            size_t len, total;
            char *t = mcp_content_to_text(m.result, 100, &is_error, &len, &total);
            if (!t || len > 100 || total < len || strlen(t) != len) abort();
            free(t);
        }
        mcp_msg_free(&m);
    } else if (!err[0]) {
        abort();
    }

    mcp_linebuf lb;
    mcp_linebuf_init(&lb, FUZZ_BOUND);
    for (size_t i = 0; i < n; i += chunk)
        mcp_linebuf_feed(&lb, text + i, n - i < chunk ? n - i : chunk, check_line, NULL);
    mcp_linebuf_free(&lb);

    mcp_sse_reader r;
    mcp_sse_init(&r, FUZZ_BOUND);
    bool stopped = false;
    for (size_t i = 0; i < n; i += chunk) {
        bool ok = mcp_sse_feed(&r, text + i, n - i < chunk ? n - i : chunk, check_event, NULL);
        if (stopped && ok) abort();
        if (!ok) stopped = true;
    }
    mcp_sse_free(&r);
    return 0;
}
