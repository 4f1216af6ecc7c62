/* upstream_sse.c — incremental Server-Sent Events parser for provider streams.
 *
 * Bytes arrive in arbitrary pieces (a read may end mid-line, mid-"\r\n" or
 * mid-UTF-8), so the parser keeps what it has not consumed and yields one
 * event at a time; the caller can stop between events (backpressure) and
 * continue later without losing anything. Per the SSE format: lines end in
 * \n, \r\n or \r; `data:` lines (one optional space after the colon) are
 * joined with \n; a blank line ends the event; `:` lines are comments; other
 * fields (event, id, retry) are ignored — OpenAI streams only use data.
 * A line or an event longer than max_event is an error, so a hostile or
 * broken provider cannot make us buffer without bound. */
#include <string.h>

#include "upstream/net/net.h"

void upstream_sse_init(upstream_sse *s, size_t max_event)
{
    buf_init(&s->in);
    buf_init(&s->data);
    s->pos = 0;
    s->scanned = 0;
    s->has_data = false;
    s->max_event = max_event;
}

void upstream_sse_free(upstream_sse *s)
{
    buf_free(&s->in);
    buf_free(&s->data);
}

void upstream_sse_feed(upstream_sse *s, const char *p, size_t n)
{
    /* Drop what is parsed before growing, so the buffer stays near the size
     * of one read plus one unfinished line. */
    if (s->pos > 0 && (s->pos == s->in.len || s->pos > 4096)) {
        buf_consume(&s->in, s->pos);
        s->pos = 0;
    }
    buf_append(&s->in, p, n);
}

int upstream_sse_next(upstream_sse *s, const char **data, size_t *len)
{
    if (!s->in.data) return 0;                      /* nothing fed yet */
    for (;;) {
        const char *base = s->in.data + s->pos;
        size_t avail = s->in.len - s->pos;
        /* The line's end: the first \n, or a \r before it (memchr, not a
         * loop per byte; a long line arriving in pieces is searched once). */
        const char *from = base + s->scanned;
        size_t rest = avail - s->scanned;
        const char *nl = memchr(from, '\n', rest);
        const char *cr = memchr(from, '\r', nl ? (size_t)(nl - from) : rest);
        const char *e = cr ? cr : nl;
        if (!e) {
            s->scanned = avail;
            if (avail > s->max_event) return -1;
            return 0;                               /* no complete line yet */
        }
        size_t i = (size_t)(e - base);
        size_t eol = 1;
        if (*e == '\r') {
            if (i + 1 == avail) {                   /* "\r" then maybe "\n": wait */
                s->scanned = i;
                return 0;
            }
            if (base[i + 1] == '\n') eol = 2;
        }
        const char *line = base;
        size_t llen = i;
        s->pos += i + eol;
        s->scanned = 0;

        if (llen == 0) {                            /* blank line: dispatch */
            if (!s->has_data) continue;
            s->has_data = false;
            *data = s->data.data;
            *len = s->data.len;
            return 1;
        }
        if (line[0] == ':') continue;               /* comment / keep-alive */
        if (llen >= 5 && memcmp(line, "data", 4) == 0 && (line[4] == ':')) {
            const char *v = line + 5;
            size_t vlen = llen - 5;
            if (vlen && v[0] == ' ') { v++; vlen--; }
            if (!s->has_data) s->data.len = 0;
            else buf_append(&s->data, "\n", 1);
            if (s->data.len + vlen > s->max_event) return -1;
            buf_append(&s->data, v, vlen);
            s->has_data = true;
        } else if (llen == 4 && memcmp(line, "data", 4) == 0) {
            /* "data" with no colon: an empty data line. Each one still adds a
             * newline, so it counts against the cap like any other byte. */
            if (!s->has_data) s->data.len = 0;
            else if (s->data.len + 1 > s->max_event) return -1;
            else buf_append(&s->data, "\n", 1);
            buf_reserve(&s->data, 1);
            s->data.data[s->data.len] = '\0';
            s->has_data = true;
        }
        /* other fields are ignored */
    }
}
