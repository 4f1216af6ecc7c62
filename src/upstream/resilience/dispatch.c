/* dispatch.c — upstream_chat: one call of the caller, carried out as a
 * series of attempts on the model's deployments and fallbacks.
 *
 * The caller holds an `rcall`; each attempt is a provider call (a
 * phttp_call or mockp_call) whose parent is the rcall. One uv timer per
 * rcall does all the waiting: the backoff before a retry, and while an
 * attempt runs, the watchdog of the call's deadline, the attempt's
 * timeout_ms, and for streams the first-byte and stream-idle timeouts (a
 * watchdog fires, cancels the attempt, and the attempt counts as timed
 * out). The rules — what is retried, how long to wait, which deployment,
 * which fallback — are resilience.h's; the shared state is health.c's.
 *
 * A stream's leading events that carry nothing yet (the role chunk) are
 * held back until the first one with content, so a failure right after
 * them can still be retried: the client has seen nothing.
 *
 * The reserved output is a hard cap (outcap.h): a stream that would pass
 * it is cut and ended at it; an answer reporting more is charged the cap.
 *
 * Invariants: nothing is retried once an event reached the caller; a
 * failed attempt that delivered nothing is not charged (its usage is not
 * reported); every callback runs from the loop, never inside
 * upstream_chat. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "obs/obs.h"
#include "upstream/providers/openai_scan.h"
#include "upstream/resilience/health.h"
#include "upstream/resilience/outcap.h"
#include "upstream/resilience/replay.h"
#include "upstream/upstream_internal.h"
#include "util/buf.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/xalloc.h"

typedef enum rcall_phase { RC_IDLE, RC_ATTEMPT, RC_WAIT, RC_DONE } rcall_phase;

/* One attempt in flight: a provider call on one deployment. */
typedef struct rattempt {
    upstream_call *call;
    int            dep;              /* deployment index, -1 none */
    bool           probe;            /* the half-open breaker's probe */
    bool           is_retry;
    uint64_t       start, last_byte;
    bool           got_byte;
    const char    *kill_why;         /* our watchdog stopped it: why */
    bool           kill_deadline;    /* … because the whole call's deadline passed */
} rattempt;

typedef struct rcall {
    upstream_call    base;           /* first: what the caller holds */
    uv_timer_t       timer;
    rcall_phase      phase;
    rattempt         cur;            /* the attempt in flight (or the last one) */
    rattempt         hedge;          /* a hedged attempt racing it (call NULL: none) */
    uv_timer_t       htimer;         /* starts the hedge, then watches it */
    int              open_timers;    /* handles not yet closed */
    upstream_call   *loser;          /* the attempt being cancelled for losing a race */
    bool             hedged;         /* this call has hedged (at most once per attempt) */
    const model_cfg *requested;
    const model_cfg *model;          /* the model of the chain being tried */
    up_health_model *hm;
    size_t           fb_pos;         /* next index in requested->fallback_models */
    char            *body;           /* the caller's body (model = requested->upstream_model) */
    size_t           body_len;
    char            *alt_body;       /* the body for another upstream name, cached */
    size_t           alt_len;
    const char      *alt_for;
    char            *request_id, *traceparent;
    uint64_t         deadline;       /* 0: none */
    int64_t          prompt_tokens;  /* estimate, for context-window checks */
    unsigned         attempts;       /* started, in all */
    unsigned         model_retries;  /* retries on the current model */
    unsigned         resumes;        /* replays of a cut stream (stream_resume) */
    uint64_t         tried;          /* deployments of the current model tried (bit i) */
    bool             responses;      /* the body is a Responses request (upstream_opts) */
    /* upstream_opts.plain_stream: it still holds of the body for another
     * upstream name (rcall_body_for changes only "model") */
    bool             plain_stream;
    bool             delivered;      /* an event reached the caller */
    buf              held;           /* leading events without content, not yet passed on */
    unsigned         n_held;
    bool             cancelling;     /* the caller cancelled */
    upstream_outcap  cap;            /* the reserved output, counted as streamed */
    bool             cut;            /* the stream was cut at the cap: end it there */
    upstream_replay  replay;         /* stream_resume: the delivered text, a replay's progress */
    buf              replay_out;     /* a replayed event trimmed to its new text */
    bool             diverged;       /* the replay did not repeat the delivered text */
    int64_t          cut_in, cut_out;/* usage of the cut attempt a replay resumes: what the
                                      * client has, charged if the replay fails */
    upstream_result  pending;        /* a failure found without an attempt (RC_IDLE + timer 0) */
    bool             has_pending;
    upstream_fault   pending_fault;
    struct rcall_texts *tx;          /* a failure's message and body: made when one is written */
} rcall;

/* The texts of a failure the dispatcher words itself. Most calls never
 * have one, so they are made on the first write (rcall_tx), not held by
 * every call in flight (720 bytes of each). */
typedef struct rcall_texts {
    char msg[320];
    char pending_body[400];          /* an OpenAI error body for a refusal */
} rcall_texts;

static rcall_texts *rcall_tx(rcall *rc)
{
    if (!rc->tx) rc->tx = xcalloc(1, sizeof *rc->tx);
    return rc->tx;
}

static void rcall_attempt(rcall *rc);
static void rcall_race_decided(rcall *rc, bool hedge_won);
static bool rcall_replay(rcall *rc, const upstream_result *res, upstream_fault f);
static void rcall_after_failure(rcall *rc, upstream_result *res, upstream_fault f);

static uint64_t rcall_now(rcall *rc) { return uv_now(rc->base.u->loop); }

/* Balancing picks and backoff jitter need spread, not secrecy: splitmix64
 * per thread, seeded once from the kernel, rather than a getrandom(2)
 * system call on every call (one per gateway request). */
static uint64_t rcall_random(void)
{
    static _Thread_local uint64_t state;
    static _Thread_local bool seeded;
    if (!seeded) {
        ids_random_bytes(&state, sizeof state);
        seeded = true;
    }
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const up_dep *rattempt_dep(const rcall *rc, const rattempt *a)
{
    return a->dep >= 0 ? upstream_health_dep(rc->hm, (size_t)a->dep) : NULL;
}

static const up_dep *rcall_dep(const rcall *rc) { return rattempt_dep(rc, &rc->cur); }

/* ------------------------------------------------------------- the end */

static void rcall_closed(uv_handle_t *h)
{
    rcall *rc = h->data;
    if (--rc->open_timers > 0) return;
    free(rc->body);
    free(rc->alt_body);
    free(rc->request_id);
    free(rc->traceparent);
    buf_free(&rc->held);
    upstream_outcap_free(&rc->cap);
    upstream_replay_free(&rc->replay);
    buf_free(&rc->replay_out);
    free(rc->tx);
    free(rc);
}

static void rcall_close_timers(rcall *rc)
{
    uv_close((uv_handle_t *)&rc->timer, rcall_closed);
    uv_close((uv_handle_t *)&rc->htimer, rcall_closed);
}

/* Hand the result to the caller (with what served it) and free the rcall
 * once its timers have closed. */
static void rcall_deliver(rcall *rc, upstream_result *res)
{
    if (rc->phase == RC_DONE) return;
    rc->phase = RC_DONE;
    uv_timer_stop(&rc->timer);
    uv_timer_stop(&rc->htimer);
    const up_dep *d = rcall_dep(rc);
    res->served_model = d ? rc->model : NULL;
    res->deployment = d ? d->name : NULL;
    res->attempts = rc->attempts;
    /* Honest charging: what the caller is told to charge is the usage of
     * an attempt it received something from — never of failed attempts. */
    if (res->error != UPSTREAM_OK && !rc->delivered) {
        res->input_tokens = res->output_tokens = 0;
        res->usage_estimated = false;
    }
    if (res->error != UPSTREAM_OK && rc->delivered && res->output_tokens < rc->cut_out) {
        /* A replay of a cut stream that failed: the client keeps what the
         * cut attempt delivered, and is charged for that. */
        res->input_tokens = rc->cut_in;
        res->output_tokens = rc->cut_out;
        res->usage_estimated = true;
    }
    upstream_call_deliver(&rc->base, res);
    rcall_close_timers(rc);
}

/* ------------------------------------------------------------- watchdog */

/* The first-byte deadline of an attempt on deployment d: the deployment's
 * own, else the model's, else the provider's (hang detection). */
static uint32_t rcall_first_byte_ms(const rcall *rc, const up_dep *d)
{
    if (!d) return 0;
    if (d->first_byte_timeout_ms) return d->first_byte_timeout_ms;
    if (rc->model->first_byte_timeout_ms) return rc->model->first_byte_timeout_ms;
    return d->prov ? d->prov->first_byte_timeout_ms : 0;
}

/* When the next timeout of attempt a falls due (0: none). The call's
 * deadline is watched on the current attempt only (a hedge ends with it). */
static uint64_t rcall_watch_due(const rcall *rc, const rattempt *a, const char **why, bool *is_deadline)
{
    const up_dep *d = rattempt_dep(rc, a);
    const provider_cfg *p = d ? d->prov : NULL;
    uint32_t first_byte = rcall_first_byte_ms(rc, d);
    uint64_t due = 0;
    *why = NULL;
    *is_deadline = false;
#define RC_SOONER(t, w, dl) do { uint64_t t_ = (t); if (t_ && (!due || t_ < due)) { due = t_; *why = (w); *is_deadline = (dl); } } while (0)
    if (rc->deadline && a == &rc->cur) RC_SOONER(rc->deadline, "the call's deadline passed", true);
    if (p && p->timeout_ms) RC_SOONER(a->start + p->timeout_ms, "the attempt's timeout_ms passed", false);
    if (p && rc->base.stream) {
        if (!a->got_byte && first_byte)
            RC_SOONER(a->start + first_byte, "no first byte within first_byte_timeout_ms", false);
        if (a->got_byte && p->stream_idle_timeout_ms)
            RC_SOONER(a->last_byte + p->stream_idle_timeout_ms, "the stream went quiet for stream_idle_timeout_ms", false);
    }
#undef RC_SOONER
    return due;
}

static void rcall_on_watch(uv_timer_t *t);
static void rcall_on_hedge_timer(uv_timer_t *t);

/* When a hedge is due for the current attempt (0: none): the model hedges,
 * this attempt has had no first byte, nothing reached the caller, and the
 * call has not hedged this attempt yet. */
static uint64_t rcall_hedge_due(const rcall *rc)
{
    if (!rc->model->hedge_after_ms || rc->hedge.call || rc->hedged || rc->delivered || rc->cur.got_byte ||
        !rc->cur.call || upstream_health_n(rc->hm) < 2)
        return 0;
    return rc->cur.start + rc->model->hedge_after_ms;
}

static void rcall_arm_watch(rcall *rc)
{
    const char *why;
    bool dl;
    uint64_t now = rcall_now(rc);
    uint64_t due = rcall_watch_due(rc, &rc->cur, &why, &dl);
    if (due) uv_timer_start(&rc->timer, rcall_on_watch, due > now ? due - now : 0, 0);
    /* The second timer: the hedge's watchdog while one runs, else the
     * moment to start one. */
    uint64_t hdue = rc->hedge.call ? rcall_watch_due(rc, &rc->hedge, &why, &dl) : rcall_hedge_due(rc);
    if (hdue) uv_timer_start(&rc->htimer, rcall_on_hedge_timer, hdue > now ? hdue - now : 0, 0);
    else uv_timer_stop(&rc->htimer);
}

static void rcall_on_watch(uv_timer_t *t)
{
    rcall *rc = t->data;
    if (rc->phase != RC_ATTEMPT || !rc->cur.call) return;
    const char *why;
    bool dl;
    uint64_t due = rcall_watch_due(rc, &rc->cur, &why, &dl);
    if (due && due <= rcall_now(rc)) {
        rc->cur.kill_why = why;
        rc->cur.kill_deadline = dl;
        upstream_call_cancel(rc->cur.call);    /* rcall_inner_done follows, now */
        return;
    }
    rcall_arm_watch(rc);                   /* bytes came meanwhile: look again later */
}

static void rcall_start_hedge(rcall *rc);

static void rcall_on_hedge_timer(uv_timer_t *t)
{
    rcall *rc = t->data;
    if (rc->phase != RC_ATTEMPT || !rc->cur.call) return;
    uint64_t now = rcall_now(rc);
    if (!rc->hedge.call) {
        uint64_t due = rcall_hedge_due(rc);
        if (due && due <= now) rcall_start_hedge(rc);
        if (rc->phase == RC_ATTEMPT) rcall_arm_watch(rc);
        return;
    }
    const char *why;
    bool dl;
    uint64_t due = rcall_watch_due(rc, &rc->hedge, &why, &dl);
    if (due && due <= now) {
        rc->hedge.kill_why = why;
        upstream_call_cancel(rc->hedge.call);  /* rcall_inner_done drops it, now */
        return;
    }
    rcall_arm_watch(rc);
}

void upstream_call_activity(upstream_call *c)
{
    rcall *rc = (rcall *)c->parent;
    if (!rc) return;
    rattempt *a = rc->cur.call == c ? &rc->cur : rc->hedge.call == c ? &rc->hedge : NULL;
    if (!a) return;
    a->last_byte = rcall_now(rc);
    a->got_byte = true;
}

/* --------------------------------------------------- attempts' callbacks */

/* An OpenAI chunk that tells the client nothing yet: every choice's delta
 * has at most a role and empty content, no finish_reason, no usage. */
static bool rcall_event_is_empty(const char *json, size_t len, const openai_scan_result *facts)
{
    /* the same reading without a tree: the provider's, or a scan */
    openai_scan_result r;
    if (!facts && openai_scan(json, len, "delta", &r)) facts = &r;
    if (facts && !facts->type_member) return facts->quiet;
    cJSON *j = cJSON_ParseWithLength(json, len);
    bool empty = cJSON_IsObject(j) && !cJSON_GetObjectItemCaseSensitive(j, "usage");
    /* A passed-through Responses stream opens with these two: nothing of
     * the answer yet, so a failure after them may still be retried. */
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (cJSON_IsString(type)) {
        bool opening = !strcmp(type->valuestring, "response.created") ||
                       !strcmp(type->valuestring, "response.in_progress");
        cJSON_Delete(j);
        return opening;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    if (!cJSON_IsArray(choices) || cJSON_GetArraySize(choices) == 0) empty = false;
    const cJSON *ch;
    cJSON_ArrayForEach(ch, choices) {
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
        if (fr && !cJSON_IsNull(fr)) empty = false;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(ch, "delta"), *f;
        cJSON_ArrayForEach(f, d) {
            /* an array delta's elements have no name: they say something */
            if (!f->string) {
                empty = false;
                continue;
            }
            if (!strcmp(f->string, "role")) continue;
            if (!strcmp(f->string, "content") && (cJSON_IsNull(f) || (cJSON_IsString(f) && !f->valuestring[0])))
                continue;
            empty = false;
        }
    }
    cJSON_Delete(j);
    return empty;
}

/* Hand one event to the caller, with the provider's reading of it when
 * there is one for these very bytes (facts; NULL otherwise), so a caller
 * that reads chunks (an agent run) need not check the text again
 * (upstream_event_facts). Every event the caller gets passes here: the
 * facts are set anew for each, and cleared after it (they may point into
 * this frame's caller), as provider_http.c does for its own. rc outlives
 * its on_event, even one that cancels it (the callers read rc->phase
 * after). */
static bool rcall_emit(rcall *rc, const char *json, size_t len, const openai_scan_result *facts)
{
    rc->base.event_facts = facts;
    rc->base.event_facts_text = json;
    rc->base.event_facts_len = len;
    bool more = rc->base.cb.on_event(&rc->base, json, len, rc->base.arg);
    rc->base.event_facts = NULL;
    return more;
}

/* Pass the held events on: the stream is committed to this attempt. */
static bool rcall_flush_held(rcall *rc)
{
    bool more = true;
    size_t at = 0;
    while (at < rc->held.len && rc->phase != RC_DONE) {
        uint32_t n;
        memcpy(&n, rc->held.data + at, sizeof n);
        const char *d = rc->held.data + at + sizeof n;
        at += sizeof n + n + 1;
        rc->delivered = true;
        if (rc->base.cb.on_event) more = rcall_emit(rc, d, n, NULL) && more;
    }
    rc->held.len = 0;
    rc->n_held = 0;
    return more;
}

#define RCALL_MAX_HELD 4

static bool rcall_inner_event(upstream_call *call, const char *json, size_t len, void *arg)
{
    rcall *rc = arg;
    /* In a race, the first event decides it. */
    if (rc->hedge.call && (call == rc->hedge.call || call == rc->cur.call))
        rcall_race_decided(rc, call == rc->hedge.call);
    if (call != rc->cur.call) return false;
    rc->cur.last_byte = rcall_now(rc);
    rc->cur.got_byte = true;
    if (rc->replay.active) {
        /* A replay: drop what the client already has, pass the rest. */
        rc->replay_out.len = 0;
        upstream_replay_verdict v = upstream_replay_match(&rc->replay, json, len, &rc->replay_out);
        if (v == UPSTREAM_REPLAY_SKIP) return true;
        if (v == UPSTREAM_REPLAY_DIVERGED) {
            obs_counter_add(obs_series_of(obs_m_stream_resumes(), OBS_L(rc->model->name, "diverged")), 1);
            rc->diverged = true;
            upstream_call_cancel(call);    /* rcall_inner_done ends the stream with the error, now */
            return false;
        }
        obs_counter_add(obs_series_of(obs_m_stream_resumes(), OBS_L(rc->model->name, "resumed")), 1);
        json = rc->replay_out.data;
        len = rc->replay_out.len;
    }
    /* The provider's reading of the chunk, or one made here when the cap
     * reads every chunk anyway: made once, for the cap, the held-event
     * check and the caller (rcall_emit). */
    const openai_scan_result *facts = upstream_call_event_facts(call, json, len);
    openai_scan_result scanned;
    if (!facts && upstream_outcap_reads_chunks(&rc->cap) && openai_scan(json, len, "delta", &scanned))
        facts = &scanned;
    if (!upstream_outcap_pass(&rc->cap, upstream_outcap_tokens(&rc->cap, json, len, facts))) {
        /* Past the reserved output: this event does not go out; the
         * stream ends here, at the cap (rcall_inner_done, now). */
        rc->cut = true;
        upstream_call_cancel(call);
        return false;
    }
    if (!rc->delivered && rc->n_held < RCALL_MAX_HELD && len < 4096 && rcall_event_is_empty(json, len, facts)) {
        uint32_t n = (uint32_t)len;
        buf_append(&rc->held, &n, sizeof n);
        buf_append(&rc->held, json, len);
        buf_append(&rc->held, "", 1);
        rc->n_held++;
        return true;
    }
    bool more = rcall_flush_held(rc);
    if (rc->phase == RC_DONE) return false;   /* cancelled from on_event */
    rc->delivered = true;
    if (rc->model->stream_resume) upstream_replay_note(&rc->replay, json, len);
    if (!rc->base.cb.on_event) return more;
    return rcall_emit(rc, json, len, facts) && more;
}

/* /metrics: every attempt by provider and outcome, its duration, and
 * whether a retry follows. Labels are configured names only. */
static void rcall_attempt_metrics(const up_dep *d, const upstream_result *res, uint64_t duration_ms,
                                  const char *next)
{
    const char *prov = d && d->prov && d->prov->name ? d->prov->name : "unknown";
    const char *outcome = "error";
    if (res->error == UPSTREAM_OK) outcome = "ok";
    else if (res->error == UPSTREAM_TIMEOUT) outcome = "timeout";
    else if (res->error == UPSTREAM_CANCELLED) outcome = "cancelled";
    else if (res->error == UPSTREAM_HTTP_STATUS && res->status == 429) outcome = "rate_limited";
    obs_counter_add(obs_series_of(obs_m_upstream_requests(), OBS_L(prov, outcome)), 1);
    obs_histogram_observe(obs_series_of(obs_m_upstream_duration(), OBS_L(prov)),
                          (double)duration_ms / 1000.0);
    if (next && strcmp(next, "retry") == 0)
        obs_counter_add(obs_series_of(obs_m_upstream_retries(), OBS_L(prov)), 1);
}

static void rcall_report_attempt_of(rcall *rc, const rattempt *at, const upstream_result *res, upstream_fault f,
                                    const char *next)
{
    /* A refusal to start one (breakers open, prompt too long) is no attempt. */
    if (res == &rc->pending) return;
    const up_dep *d = rattempt_dep(rc, at);
    rcall_attempt_metrics(d, res, rcall_now(rc) - at->start, next);
    if (!rc->base.cb.on_attempt) return;
    upstream_attempt a = {
        .model = rc->model,
        .deployment = d ? d->name : NULL,
        .number = rc->attempts ? rc->attempts - 1 : 0,
        .error = res->error,
        .status = res->status,
        .fault = upstream_fault_name(f),
        .message = res->message,
        .started_ms = at->start,
        .duration_ms = rcall_now(rc) - at->start,
        .probe = at->probe,
        .next = next,
    };
    rc->base.cb.on_attempt(&rc->base, &a, rc->base.arg);
}

static void rcall_report_attempt(rcall *rc, const upstream_result *res, upstream_fault f, const char *next)
{
    rcall_report_attempt_of(rc, &rc->cur, res, f, next);
}

/* ---------------------------------------------------------------- hedging
 *
 * A model with hedge_after_ms starts a second attempt on another deployment
 * when the current one has had no first byte by then. The first of the two
 * to send an event (a stream) or a successful answer (otherwise) wins; the
 * other is cancelled — never charged, and no fault of its provider. One
 * that fails while the other runs just drops out of the race. A hedge is
 * extra load, so it takes from its provider's retry budget. */

static void rcall_hedge_metric(rcall *rc, const char *winner)
{
    obs_counter_add(obs_series_of(obs_m_upstream_hedges(), OBS_L(rc->model->name, winner)), 1);
}

/* Cancel the attempt in the hedge slot, which lost the race (its
 * rcall_inner_done drops it, now). */
static void rcall_cancel_loser(rcall *rc)
{
    if (!rc->hedge.call) return;
    rc->loser = rc->hedge.call;
    upstream_call_cancel(rc->hedge.call);
    rc->loser = NULL;
}

/* The race is decided: the winner becomes the current attempt. */
static void rcall_race_decided(rcall *rc, bool hedge_won)
{
    rcall_hedge_metric(rc, hedge_won ? "hedge" : "primary");
    if (hedge_won) {
        rattempt t = rc->cur;
        rc->cur = rc->hedge;
        rc->hedge = t;
    }
    rcall_cancel_loser(rc);
    if (rc->phase == RC_ATTEMPT) rcall_arm_watch(rc);
}

/* The attempt in the hedge slot ended without winning: release its
 * deployment (a loser's cancel is nobody's fault); the other goes on. */
static void rcall_drop_hedge(rcall *rc, const upstream_result *in)
{
    rattempt h = rc->hedge;
    memset(&rc->hedge, 0, sizeof rc->hedge);
    rc->hedge.dep = -1;
    uint64_t now = rcall_now(rc);
    upstream_result res = *in;
    upstream_fault f = upstream_fault_of(&res);
    bool lost = rc->loser == h.call;
    if (lost) {
        f = UPSTREAM_FAULT_CANCELLED;
    } else {
        if (h.kill_why && res.error == UPSTREAM_CANCELLED) {
            res.error = UPSTREAM_TIMEOUT;
            res.message = h.kill_why;
            f = UPSTREAM_FAULT_TIMEOUT;
        }
        rcall_hedge_metric(rc, "primary");   /* the hedge failed: the current attempt carries on */
    }
    upstream_health_release(rc->hm, h.dep, now, f, h.probe, now - h.start, true);
    rcall_report_attempt_of(rc, &h, &res, f, "done");
    if (!lost && rc->phase == RC_ATTEMPT) rcall_arm_watch(rc);
}

/* The reserved output as a hard cap on what an attempt is charged. A
 * stream cut at the cap (rc->cut) becomes a complete answer of what was
 * streamed; any other result reporting more output than the cap is
 * charged the cap. true: the provider went past the cap (a provider
 * fault: logged, counted, held against the breaker). */
static bool rcall_apply_cap(rcall *rc, upstream_result *res, upstream_fault *f)
{
    uint64_t cap = rc->cap.cap;
    bool overrun = false;
    if (rc->cut && res->error == UPSTREAM_CANCELLED) {
        res->error = UPSTREAM_OK;
        res->status = 200;
        res->message = NULL;
        res->output_tokens = (int64_t)rc->cap.streamed;
        res->usage_estimated = true;
        *f = UPSTREAM_FAULT_NONE;
        overrun = true;
    } else if (cap && res->output_tokens > (int64_t)cap) {
        /* A count of our own (estimated from the bytes) is no proof of an
         * overrun; the provider's own report is. Both are capped. */
        overrun = *f == UPSTREAM_FAULT_NONE && !res->usage_estimated;
        if (overrun)
            log_warn("upstream request=%s deployment=%s: provider reported %lld output tokens past the "
                     "reserved %llu (it ignored the output cap); charged %llu",
                     rc->request_id ? rc->request_id : "-", rcall_dep(rc) ? rcall_dep(rc)->name : "?",
                     (long long)res->output_tokens, (unsigned long long)cap, (unsigned long long)cap);
        res->output_tokens = (int64_t)cap;
    }
    if (rc->cut)
        log_warn("upstream request=%s deployment=%s: stream cut at the reserved %llu output tokens "
                 "(the provider ignored the output cap)",
                 rc->request_id ? rc->request_id : "-", rcall_dep(rc) ? rcall_dep(rc)->name : "?",
                 (unsigned long long)cap);
    if (overrun) {
        const up_dep *d = rcall_dep(rc);
        obs_counter_add(obs_series_of(obs_m_provider_overrun(), OBS_L(d ? d->name : "unknown")), 1);
    }
    return overrun;
}

/* Pass on the events that end a stream cut at the cap (outcap.h). */
static void rcall_end_at_cap(rcall *rc, int64_t input_tokens)
{
    buf ends;
    buf_init(&ends);
    size_t n = upstream_outcap_end_events(&rc->cap, input_tokens, &ends), at = 0;
    for (size_t i = 0; i < n && rc->phase != RC_DONE; i++) {
        const char *e = ends.data + at;
        size_t len = strlen(e);
        at += len + 1;
        rc->delivered = true;
        if (rc->base.cb.on_event) (void)rcall_emit(rc, e, len, NULL);
    }
    buf_free(&ends);
}

static void rcall_inner_done(upstream_call *call, const upstream_result *in, void *arg)
{
    rcall *rc = arg;
    if (call == rc->hedge.call) {
        /* A successful answer (not streamed, or a stream of nothing) before
         * the current attempt sent anything wins the race; else it drops out. */
        bool wins = rc->loser != call && !rc->hedge.kill_why && rc->cur.call && !rc->delivered &&
                    upstream_fault_of(in) == UPSTREAM_FAULT_NONE;
        if (!wins) {
            rcall_drop_hedge(rc, in);
            return;
        }
        rcall_race_decided(rc, true);    /* now call == rc->cur.call */
    }
    if (call != rc->cur.call) return;
    if (rc->hedge.call) {
        upstream_fault pf = upstream_fault_of(in);
        if (pf != UPSTREAM_FAULT_NONE && pf != UPSTREAM_FAULT_REQUEST && !rc->cancelling && !rc->cur.kill_deadline &&
            !rc->delivered) {
            /* The current attempt failed while its hedge runs: the hedge
             * carries on as the current attempt. */
            rattempt a = rc->cur;
            rc->cur = rc->hedge;
            memset(&rc->hedge, 0, sizeof rc->hedge);
            rc->hedge.dep = -1;
            rcall_hedge_metric(rc, "hedge");
            uint64_t now = rcall_now(rc);
            upstream_result res = *in;
            if (a.kill_why && res.error == UPSTREAM_CANCELLED) {
                res.error = UPSTREAM_TIMEOUT;
                res.message = a.kill_why;
                pf = UPSTREAM_FAULT_TIMEOUT;
            }
            upstream_health_release(rc->hm, a.dep, now, pf, a.probe, now - a.start, a.is_retry);
            rcall_report_attempt_of(rc, &a, &res, pf, "hedge");
            rcall_arm_watch(rc);
            return;
        }
        /* Its answer stands (or the call is over): the hedge loses. */
        rcall_hedge_metric(rc, rc->cancelling || rc->cur.kill_deadline ? "none" : "primary");
        rcall_cancel_loser(rc);
    }
    rc->cur.call = NULL;
    uv_timer_stop(&rc->timer);
    upstream_result res = *in;
    uint64_t now = rcall_now(rc);
    upstream_fault f = upstream_fault_of(&res);
    if (rc->cur.kill_why && res.error == UPSTREAM_CANCELLED) {
        /* Our watchdog stopped it: a timeout, not a cancel. */
        res.error = UPSTREAM_TIMEOUT;
        res.status = 0;
        const up_dep *d = rcall_dep(rc);
        rcall_texts *tx = rcall_tx(rc);
        snprintf(tx->msg, sizeof tx->msg, "%s (%s)", rc->cur.kill_why, d ? d->name : "?");
        res.message = tx->msg;
        f = UPSTREAM_FAULT_TIMEOUT;
    }
    bool diverged = rc->diverged && res.error == UPSTREAM_CANCELLED;
    if (diverged) {
        /* A replay that did not repeat what the client has: the stream
         * ends with an error, as it would have without resuming. */
        rc->diverged = false;
        res.error = UPSTREAM_MALFORMED;
        res.message = "the stream was cut, and its replay did not repeat the text already delivered";
        f = UPSTREAM_FAULT_MALFORMED;
    }
    bool overrun = rcall_apply_cap(rc, &res, &f);
    /* The caller's cancel (or upstream_free) is not the provider's fault;
     * an answer past the cap is, though it is delivered; a replay that
     * answers differently is no fault either. */
    upstream_health_release(rc->hm, rc->cur.dep, now,
                            overrun ? UPSTREAM_FAULT_MALFORMED : diverged ? UPSTREAM_FAULT_CANCELLED : f,
                            rc->cur.probe, now - rc->cur.start, rc->cur.is_retry);
    rc->phase = RC_IDLE;
    if (f == UPSTREAM_FAULT_NONE && rc->n_held) {
        /* A stream of nothing but empty chunks: they are the answer. */
        rcall_flush_held(rc);
        if (rc->phase == RC_DONE) return;   /* the caller cancelled meanwhile */
    }
    if (rc->cut) {
        rcall_end_at_cap(rc, res.input_tokens);
        if (rc->phase == RC_DONE) return;   /* the caller cancelled meanwhile */
    }
    /* Held events of a failed attempt are dropped: the client saw nothing. */
    rc->held.len = 0;
    rc->n_held = 0;
    if (rc->delivered && !diverged && rcall_replay(rc, &res, f)) return;
    if (f == UPSTREAM_FAULT_NONE || f == UPSTREAM_FAULT_CANCELLED || f == UPSTREAM_FAULT_REQUEST ||
        rc->delivered) {
        rcall_report_attempt(rc, &res, f, "done");
        rcall_deliver(rc, &res);
        return;
    }
    if (rc->cur.kill_deadline) {
        rcall_report_attempt(rc, &res, f, "done");
        rcall_texts *tx = rcall_tx(rc);
        snprintf(tx->msg, sizeof tx->msg, "the deadline of the call passed (after %u attempts)", rc->attempts);
        res.message = tx->msg;
        rcall_deliver(rc, &res);
        return;
    }
    rcall_after_failure(rc, &res, f);
}

/* --------------------------------------------------------------- retries */

static void rcall_on_wait(uv_timer_t *t)
{
    rcall *rc = t->data;
    if (rc->phase != RC_WAIT) return;
    rc->phase = RC_IDLE;
    if (rc->has_pending) {
        rc->has_pending = false;
        rcall_after_failure(rc, &rc->pending, rc->pending_fault);
        return;
    }
    rcall_attempt(rc);
}

static void rcall_wait(rcall *rc, uint64_t ms)
{
    rc->phase = RC_WAIT;
    uv_timer_start(&rc->timer, rcall_on_wait, ms, 0);
}

static void rcall_deadline_failure(rcall *rc)
{
    upstream_result r;
    memset(&r, 0, sizeof r);
    r.error = UPSTREAM_TIMEOUT;
    rcall_texts *tx = rcall_tx(rc);
    snprintf(tx->msg, sizeof tx->msg, "the deadline of the call passed (after %u attempts)", rc->attempts);
    r.message = tx->msg;
    rcall_deliver(rc, &r);
}

/* An attempt (or the choice of one) failed with transient fault f, or the
 * prompt does not fit: retry on this model, move down the fallback chain,
 * or give the caller the failure. */
static void rcall_after_failure(rcall *rc, upstream_result *res, upstream_fault f)
{
    uint64_t now = rcall_now(rc);
    const up_dep *d = rcall_dep(rc);
    const provider_cfg *p = d ? d->prov : rc->model->provider;
    bool attempted = res != &rc->pending;   /* a real attempt, not a refusal to start one */
    if (rc->deadline && now >= rc->deadline) {
        rcall_report_attempt(rc, res, f, "done");
        rcall_deadline_failure(rc);
        return;
    }
    if (attempted && upstream_fault_transient(f) && p && rc->model_retries < p->max_retries) {
        uint64_t delay = upstream_backoff_ms(p->retry_backoff_ms, p->retry_backoff_max_ms, rc->model_retries,
                                             rcall_random());
        bool may = true;
        if (f == UPSTREAM_FAULT_RATE_LIMIT && res->retry_after_s) {
            uint64_t ra = (uint64_t)res->retry_after_s * 1000;
            /* Other calls avoid this deployment until then, and so does
             * our retry when the model has another one. With none, the
             * retry waits — if the deadline leaves room for that. */
            upstream_health_cool(rc->hm, rc->cur.dep, now + ra);
            if (upstream_health_n(rc->hm) == 1) {
                if (rc->deadline && now + ra >= rc->deadline) may = false;
                if (ra > delay) delay = ra;
            }
        }
        if (may && rc->deadline && now + delay >= rc->deadline) may = false;
        /* The retry budget protects a failing provider from retry storms: a
         * retry that can go to a provider this call has not tried (another
         * deployment) does not load this one, and takes none of its budget. */
        uint64_t avoid = rc->tried | upstream_health_provider_mask(rc->hm, rc->tried);
        bool elsewhere = upstream_health_any_usable(rc->hm, now, avoid);
        if (may && !elsewhere && !upstream_health_budget_retry(p, now)) {
            log_info("upstream request=%s model=%s: retry budget of provider \"%s\" spent; not retrying",
                     rc->request_id ? rc->request_id : "-", rc->model->name, p->name);
            may = false;
        }
        if (may) {
            rcall_report_attempt(rc, res, f, "retry");
            rc->model_retries++;
            rc->cur.is_retry = true;
            rcall_wait(rc, delay);
            return;
        }
    }
    const model_cfg *next = upstream_fallback_next(rc->requested, &rc->fb_pos, rc->model, f, rc->prompt_tokens);
    if (next) {
        rcall_report_attempt(rc, res, f, "fallback");
        log_info("upstream request=%s: model %s failed (%s); falling back to %s",
                 rc->request_id ? rc->request_id : "-", rc->model->name, upstream_fault_name(f), next->name);
        upstream_health_note_fallback(rc->hm);
        rc->model = next;
        rc->hm = upstream_health_model(next);
        rc->model_retries = 0;
        rc->tried = 0;
        rc->cur.is_retry = false;
        rcall_wait(rc, 0);
        return;
    }
    rcall_report_attempt(rc, res, f, "done");
    rcall_deliver(rc, res);
}

/* A stream cut by transient fault f after text reached the client, on a
 * model with stream_resume: replay it (replay.h) if allowed — at most
 * max_retries replays per model (apart from the ordinary retries, which
 * the cut attempt may have used), within the retry budget (unless it can
 * go to a provider not tried) and the deadline; then on the fallback
 * chain's models that resume too. true: a replay is under way. */
static bool rcall_replay(rcall *rc, const upstream_result *res, upstream_fault f)
{
    const up_dep *d = rcall_dep(rc);
    const provider_cfg *p = d ? d->prov : NULL;
    uint64_t now = rcall_now(rc);
    if (!rc->model->stream_resume || !rc->replay.resumable || !upstream_fault_transient(f) || rc->cancelling ||
        rc->cur.kill_deadline || !p)
        return false;
    uint64_t delay = 0;
    uint64_t avoid = rc->tried | upstream_health_provider_mask(rc->hm, rc->tried);
    const model_cfg *next = NULL;
    size_t pos = rc->fb_pos;
    if (rc->resumes < p->max_retries &&
        (upstream_health_any_usable(rc->hm, now, avoid) || upstream_health_budget_retry(p, now))) {
        delay = upstream_backoff_ms(p->retry_backoff_ms, p->retry_backoff_max_ms, rc->resumes, rcall_random());
    } else {
        /* No more replays here: replay on the next model of the fallback
         * chain that resumes too — if it repeats the text (the same model
         * elsewhere, answering deterministically), the stream goes on. */
        next = upstream_fallback_next(rc->requested, &pos, rc->model, f, rc->prompt_tokens);
        if (!next || !next->stream_resume) return false;
    }
    if (rc->deadline && now + delay >= rc->deadline) return false;
    obs_counter_add(obs_series_of(obs_m_stream_resumes(), OBS_L(rc->model->name, "attempted")), 1);
    log_info("upstream request=%s model=%s: stream cut after text reached the client (%s); resuming by replay%s%s",
             rc->request_id ? rc->request_id : "-", rc->model->name, upstream_fault_name(f), next ? " on " : "",
             next ? next->name : "");
    rcall_report_attempt(rc, res, f, next ? "fallback" : "resume");
    if (next) {
        upstream_health_note_fallback(rc->hm);
        rc->fb_pos = pos;
        rc->model = next;
        rc->hm = upstream_health_model(next);
        rc->model_retries = 0;
        rc->resumes = 0;
        rc->tried = 0;
        rc->cur.dep = -1;
    }
    if (res->output_tokens > rc->cut_out) {
        rc->cut_in = res->input_tokens;
        rc->cut_out = res->output_tokens;
    }
    rc->resumes++;
    rc->cur.is_retry = true;
    upstream_replay_begin(&rc->replay);
    rcall_wait(rc, delay);
    return true;
}

/* A failure found before any attempt could start: handled from the loop,
 * like every result (never inside upstream_chat). */
static void rcall_refuse(rcall *rc, upstream_error e, int status, upstream_fault f, const char *fmt, const char *a,
                         const char *b)
{
    memset(&rc->pending, 0, sizeof rc->pending);
    rc->pending.error = e;
    rc->pending.status = status;
    rcall_texts *tx = rcall_tx(rc);
    snprintf(tx->msg, sizeof tx->msg, fmt, a, b);
    rc->pending.message = tx->msg;
    if (status >= 400) {
        /* Callers read the provider's error body for the message; give one. */
        cJSON *e = cJSON_CreateObject(), *in = cJSON_AddObjectToObject(e, "error");
        cJSON_AddStringToObject(in, "message", tx->msg);
        cJSON_AddStringToObject(in, "code", f == UPSTREAM_FAULT_CONTEXT_WINDOW ? "context_length_exceeded"
                                            : status == 503 ? "unavailable" : "invalid_request");
        if (!cJSON_PrintPreallocated(e, tx->pending_body, (int)sizeof tx->pending_body, false))
            tx->pending_body[0] = '\0';
        cJSON_Delete(e);
        rc->pending.body = tx->pending_body;
        rc->pending.body_len = strlen(tx->pending_body);
    }
    rc->pending_fault = f;
    rc->has_pending = true;
    rcall_wait(rc, 0);
}

/* ---------------------------------------------------------------- attempts */

/* The body for an upstream name other than the one the caller put in. */
static const char *rcall_body_for(rcall *rc, const char *upstream_model, size_t *len)
{
    if (!upstream_model || strcmp(upstream_model, rc->requested->upstream_model) == 0) {
        *len = rc->body_len;
        return rc->body;
    }
    if (rc->alt_body && rc->alt_for && strcmp(rc->alt_for, upstream_model) == 0) {
        *len = rc->alt_len;
        return rc->alt_body;
    }
    cJSON *j = cJSON_ParseWithLength(rc->body, rc->body_len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        *len = rc->body_len;
        return rc->body;    /* the provider will say what is wrong with it */
    }
    cJSON_DeleteItemFromObjectCaseSensitive(j, "model");
    cJSON_AddStringToObject(j, "model", upstream_model);
    char *s = xnonnull(cJSON_PrintUnformatted(j));
    cJSON_Delete(j);
    free(rc->alt_body);
    rc->alt_body = s;
    rc->alt_len = strlen(s);
    rc->alt_for = upstream_model;
    *len = rc->alt_len;
    return rc->alt_body;
}

/* Start the next attempt on rc->model. `first`: inside upstream_chat, where
 * a request the provider cannot take is returned as NULL, not called back. */
static bool rcall_start(rcall *rc, bool first)
{
    static const upstream_callbacks inner_cbs = {rcall_inner_event, rcall_inner_done, NULL};
    uint64_t now = rcall_now(rc);
    if (rc->deadline && now >= rc->deadline) {
        rcall_refuse(rc, UPSTREAM_TIMEOUT, 0, UPSTREAM_FAULT_TIMEOUT, "the deadline of the call passed%s%s", "", "");
        return true;
    }
    if (rc->model->context_window && rc->prompt_tokens > (int64_t)rc->model->context_window) {
        char n[32];
        snprintf(n, sizeof n, "%lld", (long long)rc->prompt_tokens);
        rcall_refuse(rc, UPSTREAM_HTTP_STATUS, 400, UPSTREAM_FAULT_CONTEXT_WINDOW,
                     "the prompt (about %s tokens) exceeds the context window of model \"%s\"", n,
                     rc->model->name);
        return true;
    }
    bool probe;
    const char *why;
    /* A retry prefers a deployment on a provider this call has not tried:
     * it loads no provider that is failing it. */
    uint64_t tried_provs = upstream_health_provider_mask(rc->hm, rc->tried);
    int i = upstream_health_acquire(rc->hm, now, rc->tried | tried_provs, rcall_random(), &probe, &why);
    if (i < 0) {
        rcall_refuse(rc, UPSTREAM_HTTP_STATUS, 503, UPSTREAM_FAULT_SERVER_ERROR, "model \"%s\": %s",
                     rc->model->name, why);
        return true;
    }
    const up_dep *d = upstream_health_dep(rc->hm, (size_t)i);
    rc->cur.dep = i;
    rc->cur.probe = probe;
    if (i < 64) rc->tried |= 1ull << i;
    /* The first attempt of this call on a provider is a request there (a
     * retry moved to it is no retry of it: it took no retry budget). */
    if (!rc->cur.is_retry || i >= 64 || !((tried_provs >> i) & 1)) upstream_health_budget_request(d->prov, now);
    rc->hedged = false;
    size_t len;
    const char *body = rcall_body_for(rc, d->upstream_model, &len);
    upstream_opts o = {.deadline_ms = rc->deadline, .request_id = rc->request_id, .traceparent = rc->traceparent,
                       .responses = rc->responses, .plain_stream = rc->plain_stream};
    rc->attempts++;
    rc->cur.start = now;
    rc->cur.got_byte = false;
    rc->cur.kill_why = NULL;
    rc->cur.kill_deadline = false;
    if (!rc->delivered) upstream_outcap_reset(&rc->cap);
    rc->phase = RC_ATTEMPT;
    upstream_clear_error();
    upstream_call *c = upstream_provider_chat(rc->base.u, rc->model, d->prov, body, len, rc->base.stream, &o,
                                              &inner_cbs, rc);
    if (!c) {
        rc->phase = RC_IDLE;
        rc->attempts--;
        upstream_health_release(rc->hm, i, now, UPSTREAM_FAULT_CANCELLED, probe, 0, false);
        const char *e = upstream_last_error();
        if (first && e[0]) return false;     /* the client's request to fix: NULL from upstream_chat */
        /* A fallback of another protocol that cannot express it, or no memory. */
        rcall_refuse(rc, UPSTREAM_HTTP_STATUS, e[0] ? 400 : 503,
                     e[0] ? UPSTREAM_FAULT_REQUEST : UPSTREAM_FAULT_SERVER_ERROR,
                     "the call could not be started: %s%s", e[0] ? e : "internal error", "");
        return true;
    }
    c->parent = &rc->base;
    rc->cur.call = c;
    rcall_arm_watch(rc);
    return true;
}

static void rcall_attempt(rcall *rc) { (void)rcall_start(rc, false); }

/* Start a hedged attempt beside the current one (see "hedging" above), on a
 * deployment this call has not tried; none: no hedge. */
static void rcall_start_hedge(rcall *rc)
{
    static const upstream_callbacks inner_cbs = {rcall_inner_event, rcall_inner_done, NULL};
    uint64_t now = rcall_now(rc);
    rc->hedged = true;
    if (rc->deadline && now >= rc->deadline) return;
    bool probe;
    const char *why;
    int i = upstream_health_acquire(rc->hm, now, rc->tried, rcall_random(), &probe, &why);
    if (i < 0) return;
    const up_dep *d = upstream_health_dep(rc->hm, (size_t)i);
    if (i >= 64 || ((rc->tried >> i) & 1) || !upstream_health_budget_retry(d->prov, now)) {
        /* nowhere new to go, or the budget says no */
        upstream_health_release(rc->hm, i, now, UPSTREAM_FAULT_CANCELLED, probe, 0, false);
        return;
    }
    rc->tried |= 1ull << i;
    size_t len;
    const char *body = rcall_body_for(rc, d->upstream_model, &len);
    upstream_opts o = {.deadline_ms = rc->deadline, .request_id = rc->request_id, .traceparent = rc->traceparent,
                       .responses = rc->responses, .plain_stream = rc->plain_stream};
    rattempt *h = &rc->hedge;
    memset(h, 0, sizeof *h);
    h->dep = i;
    h->probe = probe;
    h->is_retry = true;
    h->start = now;
    upstream_call *c = upstream_provider_chat(rc->base.u, rc->model, d->prov, body, len, rc->base.stream, &o,
                                              &inner_cbs, rc);
    if (!c) {
        upstream_health_release(rc->hm, i, now, UPSTREAM_FAULT_CANCELLED, probe, 0, false);
        memset(h, 0, sizeof *h);
        h->dep = -1;
        return;
    }
    c->parent = &rc->base;
    h->call = c;
    rc->attempts++;
    log_info("upstream request=%s model=%s: no first byte from %s after %u ms; hedging on %s",
             rc->request_id ? rc->request_id : "-", rc->model->name, rcall_dep(rc) ? rcall_dep(rc)->name : "?",
             rc->model->hedge_after_ms, d->name);
}

/* ------------------------------------------------------ cancel / resume */

static void rcall_cancel(upstream_call *base)
{
    rcall *rc = (rcall *)base;
    if (rc->phase == RC_DONE) return;
    rc->cancelling = true;
    if (rc->cur.call) {
        upstream_call_cancel(rc->cur.call);    /* rcall_inner_done delivers CANCELLED */
        return;
    }
    upstream_result r;
    memset(&r, 0, sizeof r);
    r.error = UPSTREAM_CANCELLED;
    r.message = "cancelled";
    rcall_deliver(rc, &r);
}

static void rcall_resume(upstream_call *base)
{
    rcall *rc = (rcall *)base;
    if (rc->cur.call) upstream_call_resume(rc->cur.call);
}

const model_cfg *upstream_call_model(const upstream_call *call)
{
    if (!call) return NULL;
    if (call->cancel != rcall_cancel) return call->model;
    return ((const rcall *)call)->model;
}

const char *upstream_call_upstream_model(const upstream_call *call)
{
    if (!call || call->cancel != rcall_cancel) return call && call->model ? call->model->upstream_model : NULL;
    const rcall *rc = (const rcall *)call;
    const up_dep *d = rcall_dep(rc);
    return d ? d->upstream_model : rc->model->upstream_model;
}

const char *upstream_call_deployment(const upstream_call *call)
{
    if (!call || call->cancel != rcall_cancel) return NULL;
    const up_dep *d = rcall_dep((const rcall *)call);
    return d ? d->name : NULL;
}

/* ------------------------------------------------------------------ start */

static char *rcall_strdup(const char *s)
{
    if (!s) return NULL;
    char *d = xstrdup(s);
    return d;
}

upstream_call *upstream_chat(upstream *u, const model_cfg *model, const char *body, size_t body_len,
                             bool stream, const upstream_opts *opts, const upstream_callbacks *cb,
                             void *arg)
{
    upstream_clear_error();
    if (!u || u->freeing || !model || !model->provider || !body || !cb || !cb->on_done) return NULL;
    rcall *rc = xcalloc(1, sizeof(*rc));
    rc->body = xmalloc(body_len + 1);
    memcpy(rc->body, body, body_len);
    rc->body[body_len] = '\0';
    rc->body_len = body_len;
    rc->requested = rc->model = model;
    rc->hm = upstream_health_model(model);
    rc->cur.dep = -1;
    rc->prompt_tokens = upstream_estimate_tokens(body, body_len);
    if (opts) {
        rc->deadline = opts->deadline_ms;
        rc->responses = opts->responses;
        rc->plain_stream = opts->plain_stream;
        upstream_outcap_init(&rc->cap, opts->max_output_tokens, opts->responses);
        rc->request_id = rcall_strdup(opts->request_id);
        rc->traceparent = rcall_strdup(opts->traceparent);
    }
    buf_init(&rc->held);
    buf_init(&rc->replay_out);
    upstream_replay_init(&rc->replay);
    if (!stream || rc->responses) rc->replay.resumable = false;
    uv_timer_init(u->loop, &rc->timer);
    rc->timer.data = rc;
    uv_timer_init(u->loop, &rc->htimer);
    rc->htimer.data = rc;
    rc->open_timers = 2;
    rc->hedge.dep = -1;
    rc->base.cancel = rcall_cancel;
    rc->base.resume = rcall_resume;
    upstream_call_link(u, &rc->base, model, model->provider, stream, cb, arg);
    /* The loop's clock is cached from its last turn; deadlines and
     * timeouts start from now. */
    uv_update_time(u->loop);
    if (!rcall_start(rc, true)) {
        /* Unlink without callbacks: the caller sees NULL. The message of
         * upstream_last_error stays. */
        rc->base.cb.on_done = NULL;
        rc->phase = RC_DONE;
        upstream_call_deliver(&rc->base, NULL);
        rcall_close_timers(rc);
        return NULL;
    }
    return &rc->base;
}
