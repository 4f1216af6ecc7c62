/* log.h — structured one-line logs to stderr.
 *
 * Two formats (observability.logs.format, or BRIGADE_LOG_FORMAT=json|text;
 * the environment wins; default json):
 *   json  {"time":"2026-11-28T00:42:53.123Z","level":"info","component":"http",
 *          "msg":"http: accept failed: …","request_id":"…","trace_id":"…","tenant":"…"}
 *   text  2026-11-28T00:42:53.123Z info msg request_id=… trace_id=… tenant=…
 * `component` is the message's "word: " prefix, when it has one. The level
 * is filtered by BRIGADE_LOG (debug|info|warn|error, default info).
 *
 * Request context: api_core sets the current request's id, trace id and
 * tenant on the thread that runs a handler (log_ctx_set … log_ctx_clear),
 * and every line logged on that thread meanwhile carries them; code that
 * logs for a request on another thread passes them explicitly (log_ctx_set
 * there too). Thread-safe: one write(2) a line.
 *
 * Never log credentials (keys, tokens, Authorization headers) or message
 * content; log_content_enabled() says whether the operator opted in to
 * content (observability.logs.content). Whatever is logged, personal data
 * in the message (e-mails, phones, cards, IBANs, national ids: util/pii.h)
 * is replaced by [EMAIL], [CARD], … before the line is written. */
#ifndef BRIGADE_LOG_H
#define BRIGADE_LOG_H

#include <stdbool.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;
typedef enum { LOG_FORMAT_JSON, LOG_FORMAT_TEXT } log_format;

void log_set_level(log_level lvl);
void log_set_format(log_format f);
/* BRIGADE_LOG (level) and BRIGADE_LOG_FORMAT (json|text). */
void log_init_from_env(void);
/* Parse "json"/"text"; false for anything else. */
bool log_format_parse(const char *s, log_format *out);

void log_set_content(bool on);
bool log_content_enabled(void);

/* The calling thread's current request (any argument may be NULL/""):
 * copied, so the caller's strings need not outlive the call. */
void log_ctx_set(const char *request_id, const char *trace_id, const char *tenant_id);
void log_ctx_clear(void);

void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
