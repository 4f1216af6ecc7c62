/* sse.c — Server-Sent Events on a streamed response: the `event:` /
 * `id:` / `data:` framing (a payload with newlines becomes several data
 * lines, so it can never end an event early), `: comment` lines, and the
 * periodic ": ping" that keeps proxies from closing an idle stream. The
 * backpressure is the stream's (http_stream_write): a false return means
 * "full", and the request's on_drain says when to go on. */
#include "http/http.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xalloc.h"

struct http_sse {
    http_request *req;                /* NULL once ended */
    uv_timer_t    ping;
    buf           frame;              /* one event, reused */
};

static void sse_ping(uv_timer_t *t)
{
    http_sse *s = t->data;
    if (s->req) http_sse_comment(s, "ping");
}

http_sse *http_sse_begin(http_request *req, uint32_t ping_ms)
{
    http_sse *s = xcalloc(1, sizeof *s);
    s->req = req;
    buf_init(&s->frame);
    uv_timer_init(req->loop, &s->ping);
    s->ping.data = s;
    http_stream_begin(req, 200, "text/event-stream");
    if (ping_ms) uv_timer_start(&s->ping, sse_ping, ping_ms, ping_ms);
    return s;
}

/* Append `data` as data lines: "data: " before each line of it. */
static void sse_data_lines(buf *b, const char *data, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && data[i] != '\n' && data[i] != '\r') continue;
        buf_puts(b, "data: ");
        buf_append(b, data + start, i - start);
        buf_append(b, "\n", 1);
        if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n') i++;
        start = i + 1;
    }
}

bool http_sse_event(http_sse *s, const char *name, const char *id, const char *data, size_t len)
{
    if (!s->req) return false;
    s->frame.len = 0;
    if (name) {
        buf_puts(&s->frame, "event: ");
        buf_puts(&s->frame, name);
        buf_append(&s->frame, "\n", 1);
    }
    if (id) {
        buf_puts(&s->frame, "id: ");
        buf_puts(&s->frame, id);
        buf_append(&s->frame, "\n", 1);
    }
    sse_data_lines(&s->frame, data, len);
    buf_append(&s->frame, "\n", 1);
    return http_stream_write(s->req, s->frame.data, s->frame.len);
}

bool http_sse_comment(http_sse *s, const char *text)
{
    if (!s->req) return false;
    s->frame.len = 0;
    buf_puts(&s->frame, ": ");
    buf_puts(&s->frame, text);
    buf_append(&s->frame, "\n\n", 2);
    return http_stream_write(s->req, s->frame.data, s->frame.len);
}

static void sse_closed(uv_handle_t *h)
{
    http_sse *s = h->data;
    buf_free(&s->frame);
    free(s);
}

void http_sse_end(http_sse *s)
{
    if (!s) return;
    http_request *req = s->req;
    s->req = NULL;
    uv_timer_stop(&s->ping);
    uv_close((uv_handle_t *)&s->ping, sse_closed);
    if (req) http_stream_end(req);
}
