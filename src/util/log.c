/* log.c — structured one-line logs (see log.h). A line is built in a stack
 * buffer and written with one write(2), so lines from many threads never
 * interleave; a message longer than the buffer is cut, never split. */
#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/json_escape.h"
#include "util/pii.h"

#define LOG_LINE_MAX 4096

static atomic_int log_threshold = LOG_INFO;
static atomic_int log_fmt = LOG_FORMAT_JSON;
static atomic_bool log_content;
static const char *const log_names[] = {"debug", "info", "warn", "error"};

static _Thread_local struct {
    char request_id[72];
    char trace_id[40];
    char tenant[48];
} log_tctx;

void log_set_level(log_level lvl) { atomic_store(&log_threshold, (int)lvl); }
void log_set_format(log_format f) { atomic_store(&log_fmt, (int)f); }
void log_set_content(bool on) { atomic_store(&log_content, on); }
bool log_content_enabled(void) { return atomic_load(&log_content); }

bool log_format_parse(const char *s, log_format *out)
{
    if (!s) return false;
    if (strcmp(s, "json") == 0) *out = LOG_FORMAT_JSON;
    else if (strcmp(s, "text") == 0) *out = LOG_FORMAT_TEXT;
    else return false;
    return true;
}

void log_init_from_env(void)
{
    const char *v = getenv("BRIGADE_LOG");
    if (v)
        for (int i = 0; i < 4; i++)
            if (strcmp(v, log_names[i]) == 0) log_set_level((log_level)i);
    log_format f;
    if (log_format_parse(getenv("BRIGADE_LOG_FORMAT"), &f)) log_set_format(f);
}

/* snprintf(dst, cap, "%s", src) without the formatter (called for every
 * request, twice, three fields each). */
static void log_copy(char *dst, size_t cap, const char *src)
{
    if (!cap) return;
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

void log_ctx_set(const char *request_id, const char *trace_id, const char *tenant_id)
{
    log_copy(log_tctx.request_id, sizeof log_tctx.request_id, request_id);
    log_copy(log_tctx.trace_id, sizeof log_tctx.trace_id, trace_id);
    log_copy(log_tctx.tenant, sizeof log_tctx.tenant, tenant_id);
}

void log_ctx_clear(void)
{
    log_tctx.request_id[0] = log_tctx.trace_id[0] = log_tctx.tenant[0] = '\0';
}

/* A bounded line builder: appends never overrun; `len` stops at cap. */
typedef struct log_line {
    char *p;
    size_t len, cap;
} log_line;

static void log_put(log_line *l, const char *s, size_t n)
{
    if (l->len + n > l->cap) n = l->cap - l->len;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void log_puts(log_line *l, const char *s) { log_put(l, s, strlen(s)); }

/* As a JSON string body (no quotes), cut at a whole character or escape
 * when the line is full; one byte is left for the closing quote, so the
 * line stays valid JSON. */
static void log_put_json(log_line *l, const char *s, size_t n)
{
    if (l->len + 1 >= l->cap) return;
    l->len += json_escape_into(l->p + l->len, l->cap - l->len - 1, s, n);
}

static void log_put_field(log_line *l, bool json, const char *key, const char *val)
{
    if (!val || !val[0]) return;
    if (json) {
        log_put(l, ",\"", 2);
        log_put(l, key, strlen(key));
        log_put(l, "\":\"", 3);
        log_put_json(l, val, strlen(val));
        log_put(l, "\"", 1);
    } else {
        log_put(l, " ", 1);
        log_put(l, key, strlen(key));
        log_put(l, "=", 1);
        log_put(l, val, strlen(val));
    }
}

/* "component: rest" — a lower-case word (letters, digits, _ -) before ": ". */
static size_t log_component_len(const char *msg)
{
    size_t i = 0;
    while ((msg[i] >= 'a' && msg[i] <= 'z') || (msg[i] >= '0' && msg[i] <= '9') || msg[i] == '_' ||
           msg[i] == '-')
        i++;
    return (i > 0 && i <= 24 && msg[i] == ':' && msg[i + 1] == ' ') ? i : 0;
}

void log_msg(log_level lvl, const char *fmt, ...)
{
    if ((int)lvl < atomic_load(&log_threshold)) return;
    char msg[LOG_LINE_MAX / 2];
    /* formatted longer than msg, so that a value cut by msg's end is
     * still seen whole by the scanner */
    char formatted[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(formatted, sizeof formatted, fmt, ap);
    va_end(ap);
    size_t flen = m < 0 ? 0 : ((size_t)m >= sizeof formatted ? sizeof formatted - 1 : (size_t)m);
    /* The message is the one field that can carry a user's text (a tool's
     * argument, a provider's error echoing the prompt, a path): personal
     * data in it is replaced, always, whatever logs.content says. The
     * other fields are ids and names brigade made. */
    size_t mlen = pii_redact_into(formatted, flen, msg, sizeof msg, NULL);

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000));

    char out[LOG_LINE_MAX];
    log_line l = {out, 0, sizeof out - 3};   /* room for "\"}\n" */
    bool json = atomic_load(&log_fmt) == LOG_FORMAT_JSON;
    if (json) {
        /* The short bounded fields first and the message last, so that a
         * message too long for the line is what gets cut, and the line is
         * still one JSON object. */
        log_puts(&l, "{\"time\":\"");
        log_put(&l, when, strlen(when));
        log_puts(&l, "\",\"level\":\"");
        log_put(&l, log_names[lvl], strlen(log_names[lvl]));
        log_puts(&l, "\"");
        size_t cl = log_component_len(msg);
        if (cl) {
            log_puts(&l, ",\"component\":\"");
            log_put(&l, msg, cl);
            log_puts(&l, "\"");
        }
        log_put_field(&l, true, "request_id", log_tctx.request_id);
        log_put_field(&l, true, "trace_id", log_tctx.trace_id);
        log_put_field(&l, true, "tenant", log_tctx.tenant);
        log_puts(&l, ",\"msg\":\"");
        log_put_json(&l, msg, mlen);
        out[l.len++] = '"';
        out[l.len++] = '}';
    } else {
        log_put(&l, when, strlen(when));
        log_puts(&l, " ");
        log_put(&l, log_names[lvl], strlen(log_names[lvl]));
        log_puts(&l, " ");
        log_put(&l, msg, mlen);
        log_put_field(&l, false, "request_id", log_tctx.request_id);
        log_put_field(&l, false, "trace_id", log_tctx.trace_id);
        log_put_field(&l, false, "tenant", log_tctx.tenant);
    }
    out[l.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, out, l.len);
    (void)w;
}
