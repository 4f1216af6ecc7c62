/* log.h — structured one-line logs to stderr.
 *
 * Lines are `ts level msg key=value…`; level is filtered by BRIGADE_LOG
 * (debug|info|warn|error, default info). Thread-safe: one write(2) a line. */
#ifndef BRIGADE_LOG_H
#define BRIGADE_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level lvl);
void log_init_from_env(void);
void log_msg(log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
