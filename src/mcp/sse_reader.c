/* sse_reader.c — reading a Server-Sent Events stream as the HTML living
 * standard defines it (the streamable HTTP transport's answers): lines end
 * with CRLF, LF or CR; `data:` lines are joined with "\n"; `id:` sets the
 * last event id (one containing NUL is ignored) which a reconnection sends
 * back as Last-Event-ID; `retry:` only digits; a line starting with ":" is
 * a comment; an empty line dispatches. A line or an event's data longer
 * than the bound stops the reader: the caller ends that stream. */
#include "mcp/mcp_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void mcp_sse_init(mcp_sse_reader *r, size_t max)
{
    memset(r, 0, sizeof *r);
    r->max = max ? max : MCP_MAX_MESSAGE_BYTES;
}

void mcp_sse_free(mcp_sse_reader *r)
{
    free(r->line);
    free(r->data);
    memset(r, 0, sizeof *r);
}

static bool sse_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n, size_t max)
{
    if (*len + n > max) return false;
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1) c *= 2;
        if (c > max + 1) c = max + 1;
        *buf = xrealloc(*buf, c);
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return true;
}

static void sse_dispatch(mcp_sse_reader *r, void (*on_event)(void *, const mcp_sse_event *),
                         void *arg)
{
    if (r->has_data) {
        mcp_sse_event ev = {
            .event = r->event[0] ? r->event : "message",
            .data = r->data ? r->data : "",
            .data_len = r->data_len,
            .id = r->has_id ? r->last_id : NULL,
            .retry_ms = r->retry_ms,
        };
        on_event(arg, &ev);
    }
    r->has_data = false;
    r->data_len = 0;
    if (r->data) r->data[0] = '\0';
    r->event[0] = '\0';
}

static bool sse_line(mcp_sse_reader *r, const char *line, size_t n,
                     void (*on_event)(void *, const mcp_sse_event *), void *arg)
{
    if (n == 0) {
        sse_dispatch(r, on_event, arg);
        return true;
    }
    if (line[0] == ':') return true;
    const char *colon = memchr(line, ':', n);
    size_t flen = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    size_t vlen = colon ? n - flen - 1 : 0;
    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    if (flen == 4 && !memcmp(line, "data", 4)) {
        if (r->has_data && !sse_append(&r->data, &r->data_len, &r->data_cap, "\n", 1, r->max))
            return false;
        if (!sse_append(&r->data, &r->data_len, &r->data_cap, v, vlen, r->max)) return false;
        r->has_data = true;
    } else if (flen == 5 && !memcmp(line, "event", 5)) {
        size_t k = vlen < sizeof r->event - 1 ? vlen : sizeof r->event - 1;
        memcpy(r->event, v, k);
        r->event[k] = '\0';
    } else if (flen == 2 && !memcmp(line, "id", 2)) {
        /* An id with NUL is ignored (spec); one longer than we keep is too:
         * a cut id would resume at the wrong place. */
        if (!memchr(v, '\0', vlen) && vlen < sizeof r->last_id) {
            memcpy(r->last_id, v, vlen);
            r->last_id[vlen] = '\0';
            r->has_id = true;
        }
    } else if (flen == 5 && !memcmp(line, "retry", 5)) {
        uint64_t ms = 0;
        bool digits = vlen > 0 && vlen <= 9;
        for (size_t i = 0; digits && i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9') digits = false;
            else ms = ms * 10 + (uint64_t)(v[i] - '0');
        }
        if (digits) r->retry_ms = (uint32_t)ms;
    }
    return true;
}

bool mcp_sse_feed(mcp_sse_reader *r, const char *data, size_t n,
                  void (*on_event)(void *arg, const mcp_sse_event *ev), void *arg)
{
    if (r->too_long) return false;
    size_t i = 0;
    if (!r->bom_checked && n > 0) {
        /* A UTF-8 byte order mark at the very start is skipped. */
        if (n >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) i = 3;
        r->bom_checked = true;
    }
    while (i < n) {
        char c = data[i];
        if (r->after_cr) {
            r->after_cr = false;
            if (c == '\n') {
                i++;
                continue;
            }
        }
        const char *start = data + i;
        size_t k = 0;
        while (i + k < n && start[k] != '\n' && start[k] != '\r') k++;
        if (!sse_append(&r->line, &r->line_len, &r->line_cap, start, k, r->max)) {
            r->too_long = true;
            return false;
        }
        i += k;
        if (i >= n) break;          /* the line goes on in the next chunk */
        if (data[i] == '\r') r->after_cr = true;
        i++;
        bool ok = sse_line(r, r->line ? r->line : "", r->line_len, on_event, arg);
        r->line_len = 0;
        if (!ok) {
            r->too_long = true;
            return false;
        }
    }
    return true;
}
