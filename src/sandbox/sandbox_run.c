/* sandbox_run.c — one call of a sandboxed process: the input written to
 * its stdin (then closed), stdout read up to a cap (past it the sandbox is
 * killed and what was read is kept, marked cut), stderr read up to its own
 * cap (logged when the operator logs content; given to the model on
 * failure), and a timeout that kills the whole sandbox. The result
 * is handed back once the process has exited and both pipes are done. */
#include "sandbox/sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

struct sandbox_run_t {
    uv_pipe_t      in, out, err;
    uv_timer_t     timer;
    uv_write_t     wr;
    uv_shutdown_t  sd;
    sandbox_proc  *proc;
    sandbox_run_fn done;
    void          *arg;
    char          *input;
    char          *obuf, *ebuf;
    char          *slab;          /* the pipes' read buffer, made at the first read */
    size_t         olen, elen, max_out, max_err;
    int64_t        status;
    int            sig;
    int            open_handles;
    bool           exited, out_eof, err_eof, timed_out, cut, cancelled, finished;
    char           label[96];
    char           why[512];
};

static void run_handle_closed(uv_handle_t *h)
{
    sandbox_run_t *r = h->data;
    if (--r->open_handles > 0) return;
    free(r->input);
    free(r->obuf);
    free(r->ebuf);
    free(r->slab);
    free(r);
}

static void run_close(sandbox_run_t *r, uv_handle_t *h)
{
    (void)r;   /* reached again through h->data in the close callback */
    if (!uv_is_closing(h)) uv_close(h, run_handle_closed);
}

/* stderr, cut and made one line, for the log and the model */
static void run_err_text(const sandbox_run_t *r, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; i < r->elen && j + 1 < outlen; i++) {
        unsigned char c = (unsigned char)r->ebuf[i];
        out[j++] = c == '\n' || c == '\r' || c == '\t' ? ' ' : c < 0x20 ? '?' : (char)c;
    }
    while (j > 0 && out[j - 1] == ' ') j--;
    out[j] = '\0';
}

static void run_finish(sandbox_run_t *r)
{
    if (r->finished || !r->exited || !r->out_eof || !r->err_eof) return;
    r->finished = true;
    uv_timer_stop(&r->timer);
    char errtext[320];
    run_err_text(r, errtext, sizeof errtext);
    /* a tool's stderr may hold the user's data: logged only where the
     * operator opted in to content (the model gets it in the error) */
    if (errtext[0] && log_content_enabled())
        log_info("sandbox: %s stderr: %s", r->label, errtext);
    else if (r->elen)
        log_info("sandbox: %s wrote %zu bytes to stderr (observability.logs.content is off)",
                 r->label, r->elen);
    sandbox_result res = {.timed_out = r->timed_out, .output_cut = r->cut,
                          .exit_status = r->status, .term_signal = r->sig,
                          .out = r->obuf ? r->obuf : "", .out_len = r->olen};
    if (r->timed_out)
        snprintf(r->why, sizeof r->why, "the tool did not finish in time and was stopped");
    else if (r->cut)
        snprintf(r->why, sizeof r->why, "the tool's output passed %zu bytes; it was stopped and "
                 "the output cut", r->max_out);
    else if (r->sig)
        snprintf(r->why, sizeof r->why, "the tool was killed by signal %d%s%s", r->sig,
                 errtext[0] ? ": " : "", errtext);
    else if (r->status != 0)
        snprintf(r->why, sizeof r->why, "the tool exited with status %lld%s%s",
                 (long long)r->status, errtext[0] ? ": " : "", errtext);
    else
        res.ok = true;
    res.why = res.ok ? NULL : r->why;
    if (!r->cancelled) r->done(r->arg, &res);
    run_close(r, (uv_handle_t *)&r->in);
    run_close(r, (uv_handle_t *)&r->out);
    run_close(r, (uv_handle_t *)&r->err);
    run_close(r, (uv_handle_t *)&r->timer);
}

static void run_kill(sandbox_run_t *r)
{
    if (r->proc && !r->exited) sandbox_kill(r->proc);
}

static void run_exited(sandbox_proc *p, int64_t status, int sig, void *arg)
{
    (void)p;
    sandbox_run_t *r = arg;
    r->exited = true;
    r->proc = NULL;
    r->status = status;
    r->sig = sig;
    run_finish(r);
}

static void run_timeout(uv_timer_t *t)
{
    sandbox_run_t *r = t->data;
    if (r->exited) {
        /* exited, but something still holds a pipe open: stop waiting */
        r->out_eof = r->err_eof = true;
        uv_read_stop((uv_stream_t *)&r->out);
        uv_read_stop((uv_stream_t *)&r->err);
        run_finish(r);
        return;
    }
    r->timed_out = true;
    run_kill(r);
    /* the exit comes next; give the pipes a moment more, then finish */
    uv_timer_start(&r->timer, run_timeout, 2000, 0);
}

/* One buffer per run for both pipes: a read is copied out in its callback,
 * before the next read. (It is not a thread-local array: that would be
 * 64 kB in every thread of the process — each loop, each thread-pool
 * thread — made resident when the thread starts.) */
#define RUN_SLAB 65536

static void run_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    sandbox_run_t *r = h->data;
    if (!r->slab) r->slab = xmalloc(RUN_SLAB);
    *b = uv_buf_init(r->slab, RUN_SLAB);
}

static void run_read(sandbox_run_t *r, bool is_out, ssize_t n, const uv_buf_t *b)
{
    if (n < 0) {
        if (is_out) r->out_eof = true;
        else r->err_eof = true;
        uv_read_stop(is_out ? (uv_stream_t *)&r->out : (uv_stream_t *)&r->err);
        run_finish(r);
        return;
    }
    char **buf = is_out ? &r->obuf : &r->ebuf;
    size_t *len = is_out ? &r->olen : &r->elen;
    size_t max = is_out ? r->max_out : r->max_err;
    size_t take = (size_t)n;
    if (*len + take > max) {
        take = max - *len;
        if (is_out && !r->cut) {
            /* bounded: no more is read, and the tool is stopped */
            r->cut = true;
            run_kill(r);
        }
    }
    if (take) {
        *buf = xrealloc(*buf, *len + take + 1);
        memcpy(*buf + *len, b->base, take);
        *len += take;
        (*buf)[*len] = '\0';
    }
}

static void run_read_out(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    run_read(s->data, true, n, b);
}

static void run_read_err(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    run_read(s->data, false, n, b);
}

static void run_shut(uv_shutdown_t *sd, int status)
{
    (void)status;
    sandbox_run_t *r = sd->data;
    run_close(r, (uv_handle_t *)&r->in);
}

static void run_wrote(uv_write_t *w, int status)
{
    sandbox_run_t *r = w->data;
    /* a tool that does not read its input is not an error of ours */
    if (status == 0 && uv_shutdown(&r->sd, (uv_stream_t *)&r->in, run_shut) == 0) return;
    run_close(r, (uv_handle_t *)&r->in);
}

sandbox_run_t *sandbox_run(uv_loop_t *loop, const sandbox_spec *spec, const char *input,
                           size_t input_len, size_t max_out, size_t max_err, uint32_t timeout_ms,
                           sandbox_run_fn done, void *arg, char *err, size_t errlen)
{
    sandbox_run_t *r = xcalloc(1, sizeof *r);
    r->done = done;
    r->arg = arg;
    r->max_out = max_out ? max_out : 1;
    r->max_err = max_err;
    snprintf(r->label, sizeof r->label, "%s", spec && spec->label ? spec->label : "tool");
    uv_pipe_init(loop, &r->in, 0);
    uv_pipe_init(loop, &r->out, 0);
    uv_pipe_init(loop, &r->err, 0);
    uv_timer_init(loop, &r->timer);
    r->in.data = r->out.data = r->err.data = r->timer.data = r;
    r->open_handles = 4;
    r->proc = sandbox_spawn(loop, spec, &r->in, &r->out, &r->err, run_exited, r, err, errlen);
    if (!r->proc) {
        r->cancelled = r->finished = true;
        run_close(r, (uv_handle_t *)&r->in);
        run_close(r, (uv_handle_t *)&r->out);
        run_close(r, (uv_handle_t *)&r->err);
        run_close(r, (uv_handle_t *)&r->timer);
        return NULL;
    }
    uv_read_start((uv_stream_t *)&r->out, run_alloc, run_read_out);
    uv_read_start((uv_stream_t *)&r->err, run_alloc, run_read_err);
    r->input = xmalloc(input_len + 1);
    if (input_len) memcpy(r->input, input, input_len);
    uv_buf_t b = uv_buf_init(r->input, (unsigned)input_len);
    r->wr.data = r->sd.data = r;
    if (uv_write(&r->wr, (uv_stream_t *)&r->in, &b, 1, run_wrote) != 0)
        run_close(r, (uv_handle_t *)&r->in);
    uv_timer_start(&r->timer, run_timeout, timeout_ms ? timeout_ms : 10000, 0);
    return r;
}

void sandbox_run_cancel(sandbox_run_t *r)
{
    if (!r || r->finished) return;
    r->cancelled = true;
    run_kill(r);
}
