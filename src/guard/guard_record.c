/* guard_record.c — keeping the guard's decisions (guard_record.h): the
 * row, the metric, and for a decision that withheld something its audit
 * entry, all without waiting for the disk. */
#include "guard/guard_record.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/audit.h"
#include "obs/obs.h"
#include "util/log.h"

static store *_Atomic rec_store;
static guard_decision_retention rec_keep;   /* set before serving, read-only after */
/* audit entries queued and not yet ended: the audit chain's state must
 * outlive them (obs_audit_close comes after guard_record_close) */
static atomic_int rec_pending;

void guard_record_open(store *st, const guard_decision_retention *keep)
{
    rec_keep = keep ? *keep : (guard_decision_retention){0};
    atomic_store(&rec_store, st);
}

void guard_record_close(void)
{
    atomic_store(&rec_store, NULL);
    /* the writer commits within milliseconds; 10 s is a stuck disk */
    for (int i = 0; i < 10000 && atomic_load(&rec_pending) > 0; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    if (atomic_load(&rec_pending) > 0)
        log_error("guard: %d decisions' audit entries were still queued at shutdown",
                  atomic_load(&rec_pending));
}

/* The audit action of a decision that withheld something; NULL: not
 * audited here. A refused tool call is audited by the harness already, as
 * a tool.call entry with `allowed: false` and `refused: <code>`
 * (runs/toolrun.c): a second entry would only repeat it. */
static const char *guard_record_audit_action(const char *action)
{
    if (strcmp(action, "block") == 0) return "guard.blocked";
    if (strcmp(action, "drop") == 0) return "guard.dropped";
    if (strcmp(action, "withhold") == 0) return "guard.withheld";
    return NULL;
}

/* Called by the writer after the commit: the entry's act is over. */
static void guard_record_audit_done(void *arg, store_status status)
{
    obs_audit_act *a = arg;
    if (status != STORE_OK) log_error("guard: a decision and its audit entry were not written");
    obs_audit_act_end(a);
    free(a);
    atomic_fetch_sub(&rec_pending, 1);
}

/* One row: its metric, then the row and (audit_action) its entry, queued. */
static void guard_record_row(const scope *sc, guard_decision_rec *r, const char *const *labels,
                             size_t n_labels, const char *audit_action)
{
    obs_counter_add(obs_series_of(obs_m_guard_decisions(),
                                  OBS_L(r->action, r->channel, r->detector)), 1);
    store *st = atomic_load(&rec_store);
    if (!st || !scope_valid(sc) || !sc->tenant_id[0]) return;
    snprintf(r->tenant_id, sizeof r->tenant_id, "%s", sc->tenant_id);
    snprintf(r->user_id, sizeof r->user_id, "%s", sc->role == SCOPE_USER ? sc->user_id : "");
    r->created_at = (int64_t)time(NULL);
    /* the labels as a JSON array, each clipped: rule labels, never the text */
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n_labels && labels[i]; i++) {
        char one[65];
        obs_audit_clip(labels[i], 64, one, sizeof one);
        cJSON_AddItemToArray(arr, cJSON_CreateString(one));
        char *text = cJSON_PrintUnformatted(arr);
        bool fits = text && strlen(text) < sizeof r->labels;
        free(text);
        if (!fits) {
            cJSON_DeleteItemFromArray(arr, cJSON_GetArraySize(arr) - 1);
            break;
        }
    }
    char *text = cJSON_PrintUnformatted(arr);
    snprintf(r->labels, sizeof r->labels, "%s", text ? text : "[]");
    obs_audit_act *a = NULL;
    if (audit_action && (a = malloc(sizeof *a)) != NULL) {
        cJSON *d = cJSON_CreateObject();
        if (r->session_id[0]) cJSON_AddStringToObject(d, "session_id", r->session_id);
        if (r->run_id[0]) cJSON_AddStringToObject(d, "run_id", r->run_id);
        cJSON_AddStringToObject(d, "channel", r->channel);
        if (r->tool[0]) cJSON_AddStringToObject(d, "tool", r->tool);
        cJSON_AddStringToObject(d, "detector", r->detector);
        cJSON_AddStringToObject(d, "action", r->action);
        cJSON_AddItemToObject(d, "labels", arr);
        arr = NULL;
        atomic_fetch_add(&rec_pending, 1);
        obs_audit_act_begin(a, st, sc, NULL, audit_action,
                            r->run_id[0] ? r->run_id : r->session_id, d);
    }
    cJSON_Delete(arr);
    free(text);
    if (store_guard_decision_record(st, r, &rec_keep, a ? guard_record_audit_done : NULL, a) !=
        STORE_OK) {
        log_error("guard: a %s decision of %s could not be queued for the store", r->action,
                  r->detector);
        if (a) {
            obs_audit_act_end(a);
            free(a);
            atomic_fetch_sub(&rec_pending, 1);
        }
    }
}

static void guard_record_ids(guard_decision_rec *r, const char *session_id, const char *run_id,
                             const char *tool)
{
    snprintf(r->session_id, sizeof r->session_id, "%s", session_id ? session_id : "");
    snprintf(r->run_id, sizeof r->run_id, "%s", run_id ? run_id : "");
    /* the model names the tool: clipped, valid UTF-8, no control bytes */
    obs_audit_clip(tool ? tool : "", GUARD_DECISION_TOOL_MAX - 4, r->tool, sizeof r->tool);
}

void guard_record_finding(const scope *sc, const char *session_id, const char *run_id,
                          const guard_finding *f, const char *channel, const char *tool,
                          const char *action, bool audited)
{
    guard_decision_rec r;
    memset(&r, 0, sizeof r);
    guard_record_ids(&r, session_id, run_id, tool);
    snprintf(r.channel, sizeof r.channel, "%s", channel);
    snprintf(r.detector, sizeof r.detector, "%s", f->detector ? f->detector : "unknown");
    snprintf(r.action, sizeof r.action, "%s", action);
    /* a remote classifier's score is the network's: kept in [0, 1], NaN as 0 */
    double score = f->score >= 0 ? (f->score <= 1 ? f->score : 1) : 0;
    r.score = (double)(int)(score * 1000) / 1000.0;
    guard_record_row(sc, &r, f->det.labels, f->det.n_labels,
                     audited ? NULL : guard_record_audit_action(action));
}

void guard_record_verdict(const guard_ctx *ctx, const guard_effect *e, const guard_decision *d)
{
    if (d->verdict == GUARD_ALLOW || !d->check) return;
    bool taint = strcmp(d->check, "taint") == 0;
    bool exfil = strcmp(d->check, "exfiltration") == 0;
    if (!taint && !exfil) return;
    guard_decision_rec r;
    memset(&r, 0, sizeof r);
    bool answer = e->kind == GUARD_EFFECT_FINISH;
    guard_record_ids(&r, ctx->session_id, ctx->run_id, answer ? NULL : e->tool_name);
    snprintf(r.channel, sizeof r.channel, "%s", answer ? "answer" : "tool_call");
    snprintf(r.detector, sizeof r.detector, "%s", d->check);
    snprintf(r.action, sizeof r.action, "%s",
             d->verdict == GUARD_NEEDS_APPROVAL ? "approval" : answer ? "withhold" : "refuse");
    r.score = -1;
    /* what kind of thing it was, in fixed words: never the value */
    const char *label = taint ? "tainted_run" : answer ? "user_value_or_query_in_url"
                                                        : "user_value_in_arguments";
    const char *labels[] = {label};
    guard_record_row(ctx->sc, &r, labels, 1, guard_record_audit_action(r.action));
}
