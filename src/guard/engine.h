/* engine.h — the process's injection detectors, as the `guard:` section
 * of the configuration names them (rule file, classifier weights,
 * thresholds), and one call that runs them all over a text.
 *
 * Loaded once at start-up (guard_engine_init), read-only afterwards, so
 * every loop thread may scan at once. With no `guard.rules` and no
 * `guard.classifier` there are no detectors, and nothing is ever flagged
 * (the taint and exfiltration rules of guard.h still hold). */
#ifndef BRIGADE_GUARD_ENGINE_H
#define BRIGADE_GUARD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "guard/detect.h"

/* What the detectors found in one text. */
typedef struct guard_finding {
    bool            flagged;
    const char     *detector;         /* the first that flagged: "patterns", "classifier" */
    double          score;            /* its score */
    guard_detection det;              /* its labels and spans */
} guard_finding;

/* Load the detectors of `cfg` (replacing any loaded before). Returns 0, or
 * -1 with `err` naming the file and what is wrong. */
int  guard_engine_init(const guard_cfg *cfg, char *err, size_t errlen);
void guard_engine_shutdown(void);
bool guard_engine_active(void);      /* any detector loaded */

/* Run the local detectors on text[0..len) (windows: detect.h). Never
 * blocks: for the event loop. */
void guard_engine_scan(const char *text, size_t len, guard_channel ch, guard_finding *out);

/* The pattern rules alone: for text that is instructions to the model by
 * nature (an MCP tool's description, tool_descriptions.h), where the
 * classifier's score says nothing. */
void guard_engine_scan_rules(const char *text, size_t len, guard_channel ch, guard_finding *out);

/* The same, then the remote classifier (remote.h) if configured: blocks
 * up to guard.remote.timeout_ms, so only off the loop (the thread pool,
 * the CLI). */
void guard_engine_scan_blocking(const char *text, size_t len, guard_channel ch, guard_finding *out);

#endif
