/* config_guard.c — the `guard:` section (which detectors, their
 * thresholds, the remote classifier) and an agent's `guard:` policy (what
 * a flag does on user input and tool output, the taint rule, the
 * exfiltration check, personal data in and out). docs/guard.md and docs/config.md describe both. */
#include "config/config_internal.h"
#include "config/config_load.h"

#include <string.h>

enum { GD_RULES, GD_CLASSIFIER, GD_THRESHOLDS, GD_REMOTE, GD_DECISIONS, GD__N };
enum { TH_PATTERNS, TH_USER, TH_TOOL, TH__N };
enum { RM_URL, RM_TIMEOUT, RM_ON_ERROR, RM_THRESHOLD, RM__N };

static int ld_word(ld *l, const slot *s, const char *path, const char *const *words, size_t n,
                   const char *want);
static int ld_guard_decisions(ld *l, const slot *s, guard_cfg *g);

int ld_guard(ld *l, struct fy_node *n, int line)
{
    guard_cfg *g = &l->cfg->guard;
    slot s[GD__N] = {
        [GD_RULES] = {.key = "rules"}, [GD_CLASSIFIER] = {.key = "classifier"},
        [GD_THRESHOLDS] = {.key = "thresholds"}, [GD_REMOTE] = {.key = "remote"},
        [GD_DECISIONS] = {.key = "decisions"},
    };
    if (config_node_is_null(n))
        return 0;
    if (ld_collect(l, n, line, "guard", s, GD__N) < 0)
        return -1;
    if (s[GD_RULES].present && ld_nonempty(l, &s[GD_RULES], "guard.rules", &g->rules, NULL) < 0)
        return -1;
    if (s[GD_CLASSIFIER].present &&
        ld_nonempty(l, &s[GD_CLASSIFIER], "guard.classifier", &g->classifier, NULL) < 0)
        return -1;
    if (s[GD_THRESHOLDS].present && !config_node_is_null(s[GD_THRESHOLDS].val)) {
        slot t[TH__N] = {
            [TH_PATTERNS] = {.key = "patterns"}, [TH_USER] = {.key = "classifier_user"},
            [TH_TOOL] = {.key = "classifier_tool"},
        };
        if (ld_collect(l, s[GD_THRESHOLDS].val, s[GD_THRESHOLDS].line, "guard.thresholds", t,
                       TH__N) < 0)
            return -1;
        double *dst[TH__N] = {&g->threshold_patterns, &g->threshold_user, &g->threshold_tool};
        for (int i = 0; i < TH__N; i++) {
            char kp[96];
            ld_path(kp, sizeof kp, "guard.thresholds", t[i].key);
            if (t[i].present && ld_double(l, &t[i], kp, 0.01, 1.0, dst[i]) < 0)
                return -1;
        }
    }
    if (s[GD_REMOTE].present && !config_node_is_null(s[GD_REMOTE].val)) {
        slot r[RM__N] = {
            [RM_URL] = {.key = "url"}, [RM_TIMEOUT] = {.key = "timeout_ms"},
            [RM_ON_ERROR] = {.key = "on_error"}, [RM_THRESHOLD] = {.key = "threshold"},
        };
        if (ld_collect(l, s[GD_REMOTE].val, s[GD_REMOTE].line, "guard.remote", r, RM__N) < 0)
            return -1;
        if (!r[RM_URL].present)
            return ld_fail(l, s[GD_REMOTE].line, "guard.remote", "missing required key \"url\"");
        size_t host_at;
        if (ld_http_url(l, &r[RM_URL], "guard.remote.url", &g->remote_url, &host_at) < 0)
            return -1;
        if (r[RM_TIMEOUT].present &&
            ld_u32(l, &r[RM_TIMEOUT], "guard.remote.timeout_ms", 10, 60000, &g->remote_timeout_ms) < 0)
            return -1;
        if (r[RM_THRESHOLD].present &&
            ld_double(l, &r[RM_THRESHOLD], "guard.remote.threshold", 0.01, 1.0, &g->threshold_remote) < 0)
            return -1;
        if (r[RM_ON_ERROR].present) {
            static const char *const w[] = {"fail_open", "fail_closed"};
            int v = ld_word(l, &r[RM_ON_ERROR], "guard.remote.on_error", w, 2,
                            "fail_open or fail_closed");
            if (v < 0) return -1;
            g->remote_fail_closed = v == 1;
        }
    }
    if (s[GD_DECISIONS].present && !config_node_is_null(s[GD_DECISIONS].val))
        return ld_guard_decisions(l, &s[GD_DECISIONS], g);
    return 0;
}

/* guard.decisions: how long the recorded decisions are kept. */
static int ld_guard_decisions(ld *l, const slot *s, guard_cfg *g)
{
    enum { DC_DAYS, DC_MAX, DC__N };
    slot d[DC__N] = {[DC_DAYS] = {.key = "retention_days"}, [DC_MAX] = {.key = "max_per_tenant"}};
    if (ld_collect(l, s->val, s->line, "guard.decisions", d, DC__N) < 0)
        return -1;
    if (d[DC_DAYS].present && ld_u32(l, &d[DC_DAYS], "guard.decisions.retention_days", 0, 3650,
                                     &g->decisions_retention_days) < 0)
        return -1;
    if (d[DC_MAX].present && ld_u32(l, &d[DC_MAX], "guard.decisions.max_per_tenant", 0, 100000000,
                                    &g->decisions_max_per_tenant) < 0)
        return -1;
    return 0;
}

/* One word of a fixed set: its index, or -1 after the error. */
static int ld_word(ld *l, const slot *s, const char *path, const char *const *words, size_t n,
                   const char *want)
{
    const char *v;
    size_t len;
    if (ld_scalar(l, s, path, want, &v, &len) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strlen(words[i]) == len && !memcmp(words[i], v, len)) return (int)i;
    ld_fail(l, s->line, path, "expected %s, got \"%.*s\"", want, (int)(len > 40 ? 40 : len), v);
    return -1;
}

enum { AGD_USER, AGD_TOOL, AGD_TAINT, AGD_EXFIL, AGD_PII, AGD__N };
enum { PII_IN, PII_OUT, PII__N };

/* `pii: {input: off|flag|redact, output: off|flag|redact}` */
static int ld_agent_pii(ld *l, const slot *s, const char *path, agent_guard_cfg *g)
{
    if (config_node_is_null(s->val))
        return 0;
    slot k[PII__N] = {[PII_IN] = {.key = "input"}, [PII_OUT] = {.key = "output"}};
    if (ld_collect(l, s->val, s->line, path, k, PII__N) < 0)
        return -1;
    static const char *const w[] = {"off", "flag", "redact"};
    guard_pii_action *dst[PII__N] = {&g->pii_input, &g->pii_output};
    for (int i = 0; i < PII__N; i++) {
        if (!k[i].present) continue;
        char kp[220];
        ld_path(kp, sizeof kp, path, k[i].key);
        int v = ld_word(l, &k[i], kp, w, 3, "off, flag or redact");
        if (v < 0) return -1;
        *dst[i] = (guard_pii_action)v;
    }
    return 0;
}

int ld_agent_guard(ld *l, const slot *s, const char *path, agent_guard_cfg *g)
{
    slot k[AGD__N] = {
        [AGD_USER] = {.key = "user_input"}, [AGD_TOOL] = {.key = "tool_output"},
        [AGD_TAINT] = {.key = "tainted_tools"}, [AGD_EXFIL] = {.key = "exfiltration"},
        [AGD_PII] = {.key = "pii"},
    };
    if (config_node_is_null(s->val))
        return 0;
    if (ld_collect(l, s->val, s->line, path, k, AGD__N) < 0)
        return -1;
    char kp[200];
    int v;
    if (k[AGD_USER].present) {
        static const char *const w[] = {"off", "flag", "block"};
        ld_path(kp, sizeof kp, path, "user_input");
        if ((v = ld_word(l, &k[AGD_USER], kp, w, 3, "off, flag or block")) < 0) return -1;
        g->user_input = (guard_input_action)v;
    }
    if (k[AGD_TOOL].present) {
        static const char *const w[] = {"off", "flag", "spotlight", "drop"};
        ld_path(kp, sizeof kp, path, "tool_output");
        if ((v = ld_word(l, &k[AGD_TOOL], kp, w, 4, "off, flag, spotlight or drop")) < 0) return -1;
        g->tool_output = (guard_output_action)v;
    }
    if (k[AGD_TAINT].present) {
        static const char *const w[] = {"allow", "approve", "refuse"};
        ld_path(kp, sizeof kp, path, "tainted_tools");
        if ((v = ld_word(l, &k[AGD_TAINT], kp, w, 3, "allow, approve or refuse")) < 0) return -1;
        g->tainted_tools = (guard_taint_action)v;
    }
    if (k[AGD_EXFIL].present) {
        static const char *const w[] = {"off", "block"};
        ld_path(kp, sizeof kp, path, "exfiltration");
        if ((v = ld_word(l, &k[AGD_EXFIL], kp, w, 2, "off or block")) < 0) return -1;
        g->exfiltration = v == 1;
    }
    if (k[AGD_PII].present) {
        ld_path(kp, sizeof kp, path, "pii");
        if (ld_agent_pii(l, &k[AGD_PII], kp, g) < 0) return -1;
    }
    return 0;
}
