/* tool_exec.c — running a tool call: parse the arguments, start the tool's kind
 * (memory on the thread pool, HTTP on the loop through upstream, clock at
 * once), and hand the result back capped — always on a later loop turn,
 * never from inside tools_execute, so the caller can finish its own
 * bookkeeping first. Also the output cap and the UTF-8 clean-up every
 * result goes through. */
#include "tools/tools_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

/* ---- output: UTF-8 clean-up and the cap ---- */

char *tools_utf8_sanitize(const char *s, size_t n, size_t *out_len)
{
    if (utf8_valid(s, n) && !memchr(s, '\0', n)) {
        char *copy = malloc(n + 1);
        if (!copy) return NULL;
        memcpy(copy, s, n);
        copy[n] = '\0';
        *out_len = n;
        return copy;
    }
    /* Worst case every byte becomes the 3-byte U+FFFD. */
    char *o = malloc(n * 3 + 1);
    if (!o) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                                 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (c != 0 && len && i + len <= n && utf8_valid(s + i, len)) {
            memcpy(o + j, s + i, len);
            j += len;
            i += len;
        } else {
            memcpy(o + j, "\xEF\xBF\xBD", 3);
            j += 3;
            i++;
        }
    }
    o[j] = '\0';
    *out_len = j;
    return o;
}

char *tools_cap_output(const char *text, size_t len, size_t max, size_t *out_len)
{
    if (!text) len = 0;
    if (len <= max) {
        char *copy = malloc(len + 1);
        if (!copy) return NULL;
        if (len) memcpy(copy, text, len);
        copy[len] = '\0';
        if (out_len) *out_len = len;
        return copy;
    }
    /* The note's own length depends on the digits of what is kept, so size
     * it with the widest value first (at most len's digits). */
    char note[80];
    int note_max = snprintf(note, sizeof note, "\n[output cut: %zu of %zu bytes]", len, len);
    size_t keep = max > (size_t)note_max ? max - (size_t)note_max : max;
    bool with_note = max > (size_t)note_max;
    if (with_note) {
        /* Fewer digits kept can leave room for a few more bytes. */
        int n2 = snprintf(note, sizeof note, "\n[output cut: %zu of %zu bytes]", keep, len);
        size_t keep2 = max - (size_t)n2;
        if (keep2 > keep && snprintf(note, sizeof note, "\n[output cut: %zu of %zu bytes]",
                                     keep2, len) == n2)
            keep = keep2;
    }
    /* Back off to the start of a UTF-8 sequence: never split a character. */
    size_t back = 0;
    while (keep > 0 && back < 3 && ((unsigned char)text[keep] & 0xC0) == 0x80) {
        keep--;
        back++;
    }
    int note_len = with_note ? snprintf(note, sizeof note, "\n[output cut: %zu of %zu bytes]",
                                        keep, len)
                             : 0;
    char *o = malloc(keep + (size_t)note_len + 1);
    if (!o) return NULL;
    memcpy(o, text, keep);
    if (note_len) memcpy(o + keep, note, (size_t)note_len);
    o[keep + (size_t)note_len] = '\0';
    if (out_len) *out_len = keep + (size_t)note_len;
    return o;
}

void tools_json_error(char *out, size_t outlen, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    char *txt = o ? cJSON_PrintUnformatted(o) : NULL;
    snprintf(out, outlen, "%s", txt ? txt : "{\"error\":\"out of memory\"}");
    free(txt);
    cJSON_Delete(o);
}

void tool_exec_deliver(tool_exec *x, bool ok, const char *text, size_t len)
{
    size_t clean_len = 0, capped_len = 0;
    char *clean = tools_utf8_sanitize(text ? text : "", text ? len : 0, &clean_len);
    char *capped = clean ? tools_cap_output(clean, clean_len, x->max_output, &capped_len) : NULL;
    free(clean);
    if (capped)
        x->done(x->arg, ok, capped, capped_len);
    else
        x->done(x->arg, false, "out of memory", 13);
    free(capped);
}

/* ---- results known at once, delivered on the next loop turn ---- */

typedef struct exec_later {
    tool_exec  base;
    uv_timer_t timer;
    bool       ok;
    char      *text;
    size_t     len;
} exec_later;

static void later_free(uv_handle_t *h)
{
    exec_later *l = h->data;
    free(l->text);
    free(l);
}

static void later_fire(uv_timer_t *t)
{
    exec_later *l = t->data;
    tool_exec_deliver(&l->base, l->ok, l->text, l->len);
    uv_close((uv_handle_t *)&l->timer, later_free);
}

/* Takes ownership of text (malloc'd). */
static tool_exec *exec_later_start(uv_loop_t *loop, tool_done_fn done, void *arg, size_t max,
                                   bool ok, char *text)
{
    exec_later *l = calloc(1, sizeof *l);
    if (!l || !text) {
        free(l);
        free(text);
        return NULL;
    }
    l->base = (tool_exec){.impl = EXEC_LATER, .done = done, .arg = arg, .max_output = max};
    l->ok = ok;
    l->text = text;
    l->len = strlen(text);
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    /* A 0 ms timer runs in the timers phase of a loop iteration, after the
     * current callback has returned: never inside tools_execute. */
    uv_timer_start(&l->timer, later_fire, 0, 0);
    return &l->base;
}

static void exec_later_cancel(tool_exec *x)
{
    exec_later *l = (exec_later *)x;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, later_free);
}

/* ---- the entry points ---- */

/* The arguments passed validation, but tools_execute does not rely on it:
 * an empty string is {} (as in validation), anything else must parse to
 * an object. */
static cJSON *exec_parse_args(const char *arguments)
{
    const char *p = arguments ? arguments : "";
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    if (!*p) return cJSON_CreateObject();
    cJSON *v = cJSON_Parse(p);
    if (v && !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

tool_exec *tools_execute(const tool_def *t, const tool_env *env, const char *arguments,
                         tool_done_fn done, void *arg)
{
    if (!t || !env || !env->loop || !done) return NULL;
    size_t max = env->max_output_bytes ? env->max_output_bytes : TOOLS_DEFAULT_MAX_OUTPUT;
    char out[512];
    out[0] = '\0';
    tool_exec *x = NULL;
    cJSON *args = exec_parse_args(arguments);
    if (!args) {
        snprintf(out, sizeof out, "arguments: expected a JSON object");
        return exec_later_start(env->loop, done, arg, max, false, strdup(out));
    }
    switch (t->kind) {
    case TOOL_CLOCK: {
        bool ok = false;
        char *text = tool_clock_read(args, &ok);
        cJSON_Delete(args);
        return exec_later_start(env->loop, done, arg, max, ok, text);
    }
    case TOOL_MEMORY:
        x = tool_memory_start(env, args, out, sizeof out);
        break;
    case TOOL_HTTP:
        x = tool_http_start(t, env, args, out, sizeof out);
        break;
    case TOOL_COMMAND:
        x = tool_command_start(t, env, args, out, sizeof out);
        break;
    case TOOL_MCP:
        x = tool_mcp_start(t, env, args, max, out, sizeof out);
        break;
    default:
        snprintf(out, sizeof out, "tool %s has an unknown kind", t->name);
        break;
    }
    cJSON_Delete(args);
    if (x) {
        x->done = done;
        x->arg = arg;
        x->max_output = max;
        return x;
    }
    return exec_later_start(env->loop, done, arg, max, false,
                            strdup(out[0] ? out : "the tool could not start"));
}

void tools_cancel(tool_exec *x)
{
    if (!x) return;
    switch (x->impl) {
    case EXEC_LATER: exec_later_cancel(x); break;
    case EXEC_MEMORY: tool_memory_cancel(x); break;
    case EXEC_HTTP: tool_http_cancel(x); break;
    case EXEC_COMMAND: tool_command_cancel(x); break;
    case EXEC_MCP: tool_mcp_cancel(x); break;
    }
}
