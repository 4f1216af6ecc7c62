/* engine.c — the configured detectors and their thresholds (engine.h). */
#include "guard/engine.h"
#include "guard/tool_descriptions.h"
#include "guard/classifier.h"
#include "guard/patterns.h"
#include "guard/remote.h"

#include <string.h>

static struct {
    guard_detector *patterns, *classifier, *remote;
    double thr_patterns, thr_user, thr_tool, thr_remote;
} engine;

void guard_engine_shutdown(void)
{
    guard_detector_free(engine.patterns);
    guard_detector_free(engine.classifier);
    guard_detector_free(engine.remote);
    memset(&engine, 0, sizeof engine);
}

int guard_engine_init(const guard_cfg *cfg, char *err, size_t errlen)
{
    guard_tool_descriptions_cache_clear();   /* its verdicts were the old detectors' */
    guard_engine_shutdown();
    engine.thr_patterns = cfg->threshold_patterns;
    engine.thr_user = cfg->threshold_user;
    engine.thr_tool = cfg->threshold_tool;
    engine.thr_remote = cfg->threshold_remote;
    if (cfg->remote_url)
        engine.remote = guard_remote_new(cfg->remote_url, cfg->remote_timeout_ms,
                                         cfg->remote_fail_closed);
    if (cfg->rules) {
        guard_rules *r = guard_rules_load(cfg->rules, err, errlen);
        if (!r) return -1;
        engine.patterns = guard_patterns_new(r);
    }
    if (cfg->classifier) {
        guard_classifier *c = guard_classifier_load(cfg->classifier, err, errlen);
        if (!c) {
            guard_engine_shutdown();
            return -1;
        }
        engine.classifier = guard_classifier_detector_new(c);
    }
    return 0;
}

bool guard_engine_active(void) { return engine.patterns || engine.classifier || engine.remote; }

static void engine_scan(const char *text, size_t len, guard_channel ch, bool remote,
                        guard_finding *out);

void guard_engine_scan(const char *text, size_t len, guard_channel ch, guard_finding *out)
{
    engine_scan(text, len, ch, false, out);
}

void guard_engine_scan_rules(const char *text, size_t len, guard_channel ch, guard_finding *out)
{
    memset(out, 0, sizeof *out);
    if (!engine.patterns) return;
    guard_detect_scan(engine.patterns, text, len, ch, &out->det);
    if (out->det.score < engine.thr_patterns) return;
    out->flagged = true;
    out->detector = "patterns";
    out->score = out->det.score;
}

void guard_engine_scan_blocking(const char *text, size_t len, guard_channel ch, guard_finding *out)
{
    engine_scan(text, len, ch, true, out);
}

static void engine_scan(const char *text, size_t len, guard_channel ch, bool remote,
                        guard_finding *out)
{
    memset(out, 0, sizeof *out);
    /* patterns first: cheaper, and their labels say more than a score */
    if (engine.patterns) {
        guard_detect_scan(engine.patterns, text, len, ch, &out->det);
        if (out->det.score >= engine.thr_patterns) {
            out->flagged = true;
            out->detector = "patterns";
            out->score = out->det.score;
            return;
        }
    }
    if (engine.classifier) {
        guard_detect_scan(engine.classifier, text, len, ch, &out->det);
        double thr = ch == GUARD_CHANNEL_USER ? engine.thr_user : engine.thr_tool;
        if (out->det.score >= thr) {
            out->flagged = true;
            out->detector = "classifier";
            out->score = out->det.score;
            return;
        }
    }
    if (remote && engine.remote) {
        guard_detect_scan(engine.remote, text, len, ch, &out->det);
        if (out->det.score >= engine.thr_remote) {
            out->flagged = true;
            out->detector = "remote";
            out->score = out->det.score;
            return;
        }
    }
    memset(&out->det, 0, sizeof out->det);
}
