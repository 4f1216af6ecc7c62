/* tools_internal.h — what the files of src/tools/ share, and nothing else
 * includes: the common head of a running tool call, and each tool kind's
 * start and cancel functions, which tool_exec.c dispatches to. */
#ifndef BRIGADE_TOOLS_INTERNAL_H
#define BRIGADE_TOOLS_INTERNAL_H

#include "tools/tools.h"

/* How a call is being carried out (not the same as the tool's kind: a
 * clock reading or an early error is simply delivered on the next turn). */
typedef enum tool_exec_impl { EXEC_LATER = 1, EXEC_MEMORY, EXEC_HTTP, EXEC_COMMAND, EXEC_MCP } tool_exec_impl;

/* The first member of every kind's own struct. */
struct tool_exec {
    tool_exec_impl impl;
    tool_done_fn   done;
    void          *arg;
    size_t         max_output;
};

/* Give the result to the caller: sanitised to UTF-8, capped to
 * max_output, then done(). The caller frees x afterwards. */
void tool_exec_deliver(tool_exec *x, bool ok, const char *text, size_t len);

/* Replace invalid UTF-8 and NUL bytes with U+FFFD: a tool's output goes
 * into JSON for a model and must be text. Returns malloc'd (NULL on OOM). */
char *tools_utf8_sanitize(const char *s, size_t n, size_t *out_len);

/* Each kind's start returns its exec, or NULL with `out` holding the
 * (failed) result text for the model, which tool_exec.c delivers on the next
 * loop turn. `args` is the parsed, validated argument object. */
tool_exec *tool_memory_start(const tool_env *env, const cJSON *args, char *out, size_t outlen);
void       tool_memory_cancel(tool_exec *x);

tool_exec *tool_http_start(const tool_def *t, const tool_env *env, const cJSON *args,
                           char *out, size_t outlen);
void       tool_http_cancel(tool_exec *x);

tool_exec *tool_command_start(const tool_def *t, const tool_env *env, const cJSON *args,
                              char *out, size_t outlen);
void       tool_command_cancel(tool_exec *x);
/* A command tool's argv template (tool_argv.c): every {placeholder} names
 * a top-level property of the schema, none is in argv[0]; and one entry
 * filled with the arguments (malloc'd). */
bool       tool_command_check(const tool_cfg *tc, const cJSON *schema, char *why, size_t whylen);
char      *tool_argv_fill(const char *tmpl, const cJSON *args);
tool_exec *tool_mcp_start(const tool_def *t, const tool_env *env, const cJSON *args,
                          size_t max_output, char *out, size_t outlen);
void       tool_mcp_cancel(tool_exec *x);

/* The clock's answer as JSON text (malloc'd); *ok false for an
 * unsupported timezone. */
char *tool_clock_read(const cJSON *args, bool *ok);

/* A JSON object {"error": msg} as text into out (for memory and clock). */
void tools_json_error(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
