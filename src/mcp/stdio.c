/* stdio.c — MCP's stdio transport: the server is a child process; each
 * message is one line of JSON on its stdin and stdout; what it writes to
 * stderr is logged, a line at most 240 bytes and at most 40 lines a
 * minute (a chatty or hostile server cannot flood the log). A line longer
 * than MCP_MAX_MESSAGE_BYTES ends the transport: an answer cut in two
 * would be worse than none. Stopping closes stdin, then SIGTERM to the
 * process group after a grace, then SIGKILL (for a sandboxed server, of
 * everything in its sandbox). The process itself is made by spawn.c. */
#include "mcp/mcp_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "util/log.h"
#include "util/xalloc.h"

#define STDIO_GRACE_MS 1500            /* stdin closed → SIGTERM → SIGKILL */
#define STDIO_STDERR_LINE 240
#define STDIO_STDERR_PER_MIN 40
#define STDIO_MAX_WRITE_QUEUE (16u << 20)

typedef struct stdio_tr {
    mcp_transport    base;
    uv_loop_t       *loop;
    mcp_transport_cb cb;
    char             label[48];
    mcp_child       *child;      /* NULL once it has exited */
    uv_pipe_t        in, out, err;
    uv_timer_t       stop_timer;
    int              open_handles;
    bool             exited, closing, told, killed_term;
    mcp_linebuf      lines;
    mcp_linebuf      errlines;
    char             rbuf[65536];
    uint64_t         err_window_start;
    unsigned         err_in_window, err_dropped;
} stdio_tr;

static void st_handle_closed(uv_handle_t *h)
{
    stdio_tr *t = h->data;
    if (--t->open_handles > 0) return;
    mcp_linebuf_free(&t->lines);
    mcp_linebuf_free(&t->errlines);
    free(t);
}

static void st_close_handle(stdio_tr *t, uv_handle_t *h)
{
    (void)t;
    if (!uv_is_closing(h)) uv_close(h, st_handle_closed);
}

static void st_tell_closed(stdio_tr *t, const char *why)
{
    if (t->told || t->closing) return;
    t->told = true;
    t->cb.on_closed(t->cb.arg, why);
}

static void st_on_line(void *arg, mcp_line_status st, const char *line, size_t len)
{
    stdio_tr *t = arg;
    if (t->closing || t->told) return;
    if (st == MCP_LINE_TOO_LONG) {
        st_tell_closed(t, "the server wrote a message longer than the limit");
        return;
    }
    t->cb.on_message(t->cb.arg, line, len);
}

static void st_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    stdio_tr *t = h->data;
    *b = uv_buf_init(t->rbuf, sizeof t->rbuf);
}

static void st_read_out(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    stdio_tr *t = s->data;
    if (n > 0) {
        mcp_linebuf_feed(&t->lines, b->base, (size_t)n, st_on_line, t);
        return;
    }
    if (n < 0) {
        uv_read_stop(s);
        st_tell_closed(t, n == UV_EOF ? "the server closed its stdout" : "reading the server's stdout failed");
    }
}

static void st_err_line(void *arg, mcp_line_status st, const char *line, size_t len)
{
    stdio_tr *t = arg;
    uint64_t now = uv_now(t->loop);
    if (now - t->err_window_start >= 60000) {
        if (t->err_dropped)
            log_msg(LOG_WARN, "mcp %s stderr: %u more line(s) not logged", t->label, t->err_dropped);
        t->err_window_start = now;
        t->err_in_window = 0;
        t->err_dropped = 0;
    }
    if (t->err_in_window >= STDIO_STDERR_PER_MIN) {
        t->err_dropped++;
        return;
    }
    t->err_in_window++;
    if (st == MCP_LINE_TOO_LONG) {
        log_msg(LOG_INFO, "mcp %s stderr: (a line too long to log)", t->label);
        return;
    }
    /* %.*s with a bound, and the log writer escapes control bytes */
    log_msg(LOG_INFO, "mcp %s stderr: %.*s", t->label, (int)(len > STDIO_STDERR_LINE ? STDIO_STDERR_LINE : len),
            line);
}

static void st_read_err(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    stdio_tr *t = s->data;
    if (n > 0) mcp_linebuf_feed(&t->errlines, b->base, (size_t)n, st_err_line, t);
    else if (n < 0) uv_read_stop(s);
}

static void st_exit(void *arg, int64_t status, int sig)
{
    stdio_tr *t = arg;
    t->exited = true;
    t->child = NULL;
    char why[96];
    if (sig) snprintf(why, sizeof why, "the server process was ended by signal %d", sig);
    else snprintf(why, sizeof why, "the server process exited with status %lld", (long long)status);
    st_tell_closed(t, why);
    if (t->closing) {
        uv_timer_stop(&t->stop_timer);
        st_close_handle(t, (uv_handle_t *)&t->stop_timer);
    }
}

typedef struct st_write {
    uv_write_t req;
    char      *data;
} st_write;

static void st_written(uv_write_t *req, int status)
{
    (void)status;   /* a failed write shows as the pipe closing */
    st_write *w = (st_write *)req;
    free(w->data);
    free(w);
}

static bool st_send(mcp_transport *base, const char *text, size_t len)
{
    stdio_tr *t = (stdio_tr *)base;
    if (t->closing || t->told || uv_is_closing((uv_handle_t *)&t->in)) return false;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&t->in) > STDIO_MAX_WRITE_QUEUE) return false;
    st_write *w = xcalloc(1, sizeof *w);
    w->data = xmalloc(len + 1);
    memcpy(w->data, text, len);
    w->data[len] = '\n';
    uv_buf_t b = uv_buf_init(w->data, (unsigned)(len + 1));
    if (uv_write(&w->req, (uv_stream_t *)&t->in, &b, 1, st_written) != 0) {
        free(w->data);
        free(w);
        return false;
    }
    return true;
}

static void st_stop_tick(uv_timer_t *tm)
{
    stdio_tr *t = tm->data;
    if (t->exited) return;
    /* the whole process group: what the server started goes with it */
    if (!t->killed_term) {
        t->killed_term = true;
        mcp_child_signal(t->child, SIGTERM);
        uv_timer_start(&t->stop_timer, st_stop_tick, STDIO_GRACE_MS, 0);
    } else {
        mcp_child_signal(t->child, SIGKILL);
    }
}

static void st_close(mcp_transport *base)
{
    stdio_tr *t = (stdio_tr *)base;
    if (t->closing) return;
    t->closing = true;
    st_close_handle(t, (uv_handle_t *)&t->in);   /* EOF on its stdin: the polite stop */
    st_close_handle(t, (uv_handle_t *)&t->out);
    st_close_handle(t, (uv_handle_t *)&t->err);
    if (t->exited) {
        st_close_handle(t, (uv_handle_t *)&t->stop_timer);
        return;
    }
    uv_timer_start(&t->stop_timer, st_stop_tick, STDIO_GRACE_MS, 0);
}

mcp_transport *mcp_stdio_open(uv_loop_t *loop, const mcp_server_cfg *cfg, const char *workdir,
                              const char *mcp_root, mcp_transport_cb cb, char *err, size_t errlen)
{
    stdio_tr *t = xcalloc(1, sizeof *t);
    t->base.send = st_send;
    t->base.close = st_close;
    t->loop = loop;
    t->cb = cb;
    snprintf(t->label, sizeof t->label, "%s", cfg->name);
    mcp_linebuf_init(&t->lines, MCP_MAX_MESSAGE_BYTES);
    mcp_linebuf_init(&t->errlines, 4096);
    uv_pipe_init(loop, &t->in, 0);
    uv_pipe_init(loop, &t->out, 0);
    uv_pipe_init(loop, &t->err, 0);
    uv_timer_init(loop, &t->stop_timer);
    t->in.data = t->out.data = t->err.data = t->stop_timer.data = t;
    t->open_handles = 4;   /* the pipes, the timer (the child closes its own) */

    t->child = mcp_spawn(loop, cfg, workdir, mcp_root, &t->in, &t->out, &t->err, st_exit, t, err, errlen);
    if (!t->child) {
        t->closing = true;
        t->exited = true;
        st_close_handle(t, (uv_handle_t *)&t->in);
        st_close_handle(t, (uv_handle_t *)&t->out);
        st_close_handle(t, (uv_handle_t *)&t->err);
        st_close_handle(t, (uv_handle_t *)&t->stop_timer);
        return NULL;
    }
    uv_read_start((uv_stream_t *)&t->out, st_alloc, st_read_out);
    uv_read_start((uv_stream_t *)&t->err, st_alloc, st_read_err);
    return &t->base;
}
