/* guard.c — the checks behind guard.h, as a table per kind of effect: a
 * check either allows or decides, and the first that decides wins. A new
 * check (a detector, an approval rule) is one function and one row. */
#include "guard/guard.h"
#include "core/origin.h"
#include "guard/approval_when.h"
#include "guard/engine.h"
#include "guard/exfil.h"
#include "guard/guard_record.h"
#include "guard/pii_policy.h"
#include "guard/spotlight.h"
#include "guard/tool_descriptions.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct guard_run {
    /* the loop guard: each distinct (tool, arguments) called so far in
     * this run, as a hash, and how often */
    uint64_t *seen_calls;
    uint32_t *seen_counts;
    size_t    n_seen, cap_seen;
    /* untrusted content is in the run's context (its messages' origins,
     * core/origin.h), and of which kinds (1u << origin_kind) */
    bool      tainted;
    uint32_t  taint_kinds;
    /* the user's values that must not leave (exfil.h) */
    guard_secrets secrets;
    /* the conversation's messages numbered below this were read at an
     * earlier model call (guard_effect.context) */
    uint64_t  context_next;
    /* the last batch of tool calls, to name the tool of each result */
    cJSON    *last_calls;
    /* a resumed run's first batch is the paused one again: its decisions
     * were recorded the first time (guard_record.h) */
    bool      resumed, replaying;
    /* MCP tools taken out of the offer for a poisoned description
     * (tool_descriptions.h): a call of one is refused */
    cJSON    *dropped_tools;
    /* `guard.flagged` payloads of the checks before an effect (taint,
     * exfiltration) not yet taken by the harness (guard_take_events) */
    cJSON    *pending_events;
};

guard_run *guard_run_new(void)
{
    guard_run *g = xcalloc(1, sizeof *g);
    return g;
}

void guard_run_free(guard_run *g)
{
    if (!g) return;
    free(g->seen_calls);
    free(g->seen_counts);
    guard_secrets_clear(&g->secrets);
    cJSON_Delete(g->last_calls);
    cJSON_Delete(g->dropped_tools);
    cJSON_Delete(g->pending_events);
    free(g);
}

/* Provenance decides the taint: a message whose origin is untrusted (a
 * tool's output, fetched content, memory read back); one with
 * no origin when it is a tool result (core/origin.h). */
static void guard_note_message(guard_run *g, const cJSON *m)
{
    if (!origin_message_untrusted(m)) return;
    g->tainted = true;
    g->taint_kinds |= 1u << origin_message_kind(m);
}

bool guard_run_tainted(const guard_run *g, uint32_t *kinds)
{
    if (kinds) *kinds = g ? g->taint_kinds : 0;
    return g && g->tainted;
}

/* A check: returns true to allow; false with `d` filled (verdict, code,
 * reason) and `note` (the short form for its span) to decide. */
typedef bool (*guard_check_fn)(guard_run *g, const guard_ctx *ctx, const guard_effect *e,
                               guard_decision *d, char *note, size_t notelen);

typedef struct guard_check {
    const char       *name;           /* brigade.guardrail.check */
    guard_effect_kind kind;           /* the effects it looks at */
    bool              traced;         /* a "guardrail" span per decision */
    guard_check_fn    fn;
} guard_check;

/* ---- the loop guard ---- */

/* FNV-1a over the tool's name and its arguments re-printed compactly, so
 * that whitespace differences do not hide a repetition. */
static uint64_t guard_call_hash(const char *name, const char *args)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = name; *p; p++) { h ^= (unsigned char)*p; h *= 1099511628211ULL; }
    h ^= 0xff;
    h *= 1099511628211ULL;
    cJSON *parsed = cJSON_Parse(args);
    char *norm = parsed ? cJSON_PrintUnformatted(parsed) : NULL;
    cJSON_Delete(parsed);
    for (const char *p = norm ? norm : args; *p; p++) { h ^= (unsigned char)*p; h *= 1099511628211ULL; }
    free(norm);
    return h;
}

/* How often this run has now asked for (name, args), this time included. */
static uint32_t guard_count_call(guard_run *g, const char *name, const char *args)
{
    uint64_t h = guard_call_hash(name, args);
    size_t i;
    for (i = 0; i < g->n_seen; i++)
        if (g->seen_calls[i] == h) break;
    if (i == g->n_seen) {
        if (g->n_seen == g->cap_seen) {
            size_t cap = g->cap_seen ? 2 * g->cap_seen : 8;
            uint64_t *c = xrealloc(g->seen_calls, cap * sizeof *c);
            g->seen_calls = c;
            uint32_t *k = xrealloc(g->seen_counts, cap * sizeof *k);
            g->seen_counts = k;
            g->cap_seen = cap;
        }
        g->seen_calls[i] = h;
        g->seen_counts[i] = 0;
        g->n_seen++;
    }
    return ++g->seen_counts[i];
}

/* A model that asks for the same tool with the same arguments again and
 * again is stuck, and each round costs a model call: the run stops. */
static bool guard_check_repeated(guard_run *g, const guard_ctx *ctx, const guard_effect *e,
                                 guard_decision *d, char *note, size_t notelen)
{
    const cJSON *call;
    cJSON_ArrayForEach(call, e->json) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        const char *tname = cJSON_IsString(name) ? name->valuestring : "";
        const char *targs = cJSON_IsString(args) && args->valuestring[0] ? args->valuestring : "{}";
        if (guard_count_call(g, tname, targs) > ctx->agent->max_repeated_tool_calls) {
            d->verdict = GUARD_STOP;
            d->code = "repeated_tool_call";
            snprintf(d->reason, sizeof d->reason, "the model asked for tool \"%.64s\" with the "
                     "same arguments more than %u times; the run was stopped as a loop", tname,
                     ctx->agent->max_repeated_tool_calls);
            snprintf(note, notelen, "repeated tool call");
            return false;
        }
    }
    return true;
}

/* ---- one tool call ---- */

static bool guard_check_permission(guard_run *g, const guard_ctx *ctx, const guard_effect *e,
                                   guard_decision *d, char *note, size_t notelen)
{
    bool listed = tools_name_listed(ctx->agent->tools, ctx->agent->n_tools, e->tool_name);
    const cJSON *dropped;
    cJSON_ArrayForEach(dropped, g->dropped_tools)
        if (strcmp(dropped->valuestring, e->tool_name) == 0) listed = false;
    d->tool = listed ? tools_find(ctx->tools, e->tool_name) : NULL;
    if (d->tool) return true;
    d->verdict = GUARD_REFUSE;
    d->code = "tool_not_allowed";
    snprintf(d->reason, sizeof d->reason, "the tool \"%.64s\" is not available to this agent",
             e->tool_name);
    snprintf(note, notelen, "tool not allowed");
    return false;
}

static bool guard_check_arguments(guard_run *g, const guard_ctx *ctx, const guard_effect *e,
                                  guard_decision *d, char *note, size_t notelen)
{
    (void)g;
    (void)ctx;
    if (tools_validate_args(d->tool, e->arguments, note, notelen)) return true;
    d->verdict = GUARD_REFUSE;
    d->code = "invalid_arguments";
    snprintf(d->reason, sizeof d->reason, "invalid arguments for %s: %s", e->tool_name, note);
    return false;
}

static void guard_span(const guard_ctx *ctx, const guard_effect *e, const char *check, bool allow,
                       const char *note);

/* A declared tool's approval policy (approval_when.h): the call waits for
 * a person. Last, so only a call that would otherwise run waits. Traced
 * only for a tool that has a policy: the others have nothing to decide. */
static bool guard_check_approval(guard_run *g, const guard_ctx *ctx, const guard_effect *e,
                                 guard_decision *d, char *note, size_t notelen)
{
    (void)g;
    (void)ctx;
    const tool_cfg *t = d->tool ? tools_approval_policy(d->tool) : NULL;
    if (!t || t->approval == TOOL_APPROVAL_NEVER) return true;
    cJSON *args = cJSON_Parse(e->arguments);
    bool needed = approval_needed(t, cJSON_IsObject(args) ? args : NULL, d->reason, sizeof d->reason);
    cJSON_Delete(args);
    snprintf(note, notelen, "%s", needed ? "needs approval" : "");
    guard_span(ctx, e, "tool_approval", !needed, note);
    if (!needed) return true;
    d->verdict = GUARD_NEEDS_APPROVAL;
    d->code = "approval_required";
    return false;
}

/* Would the call change something (brigade's state or the world)? */
static bool guard_tool_acts(const tool_def *t)
{
    return t && (t->effects == TOOL_EFFECTS_WRITE || t->effects == TOOL_EFFECTS_EXTERNAL);
}

/* In a tainted run, a write or external call must not carry the user's
 * values out (the agent's `exfiltration: block`). */
static bool guard_check_exfil_args(guard_run *g, const guard_ctx *ctx, const guard_effect *e,
                                   guard_decision *d, char *note, size_t notelen)
{
    if (!ctx->agent->guard.exfiltration || !g->tainted || !guard_tool_acts(d->tool)) return true;
    if (!guard_exfil_in_args(&g->secrets, e->arguments, note, notelen)) return true;
    guard_span(ctx, e, "exfiltration", false, "refused: carries a value of the user's");
    d->verdict = GUARD_REFUSE;
    d->code = "exfiltration_blocked";
    snprintf(d->reason, sizeof d->reason, "the call of %.64s was refused: %s, after untrusted "
             "content entered the run", e->tool_name, note);
    return false;
}

/* Once untrusted content is in the context, acting needs a person or is
 * refused (the agent's `tainted_tools`). */
static bool guard_check_taint(guard_run *g, const guard_ctx *ctx, const guard_effect *e,
                              guard_decision *d, char *note, size_t notelen)
{
    guard_taint_action act = ctx->agent->guard.tainted_tools;
    if (act == GUARD_TAINT_ALLOW || !g->tainted || !guard_tool_acts(d->tool)) return true;
    const char *eff = config_tool_effects_name(d->tool->effects);
    guard_span(ctx, e, "taint", false, act == GUARD_TAINT_REFUSE ? "refused: tainted run"
                                                                   : "needs approval: tainted run");
    if (act == GUARD_TAINT_REFUSE) {
        d->verdict = GUARD_REFUSE;
        d->code = "tainted_tool_refused";
        snprintf(d->reason, sizeof d->reason, "the tool %.64s (effects: %s) may not run once "
                 "untrusted content (a tool's output) is in the run's context", e->tool_name, eff);
        snprintf(note, notelen, "refused: tainted run");
        return false;
    }
    d->verdict = GUARD_NEEDS_APPROVAL;
    d->code = "approval_required";
    snprintf(d->reason, sizeof d->reason, "untrusted content (a tool's output) is in the run's "
             "context, and %.64s has effects: %s", e->tool_name, eff);
    snprintf(note, notelen, "needs approval: tainted run");
    return false;
}

/* The model's request: what is in the context (taint, the user's values). */
static bool guard_check_context(guard_run *g, const guard_ctx *ctx, const guard_effect *e,
                                guard_decision *d, char *note, size_t notelen)
{
    (void)ctx;
    (void)d;
    (void)note;
    (void)notelen;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(e->json, "messages");
    if (!cJSON_IsArray(msgs)) return true;
    /* Read once: the messages before the conversation's (the system prompt,
     * the note), then the conversation's not read at an earlier call. When
     * the request is not what the core said it is, all of it. */
    const step_context_ref *c = e->context;
    const cJSON *lead_end = NULL, *from = msgs->child;
    if (c && c->count && (size_t)cJSON_GetArraySize(msgs) == c->lead + c->count) {
        lead_end = msgs->child;
        for (size_t i = 0; i < c->lead; i++) lead_end = lead_end->next;
        uint64_t read = g->context_next > c->first ? g->context_next - c->first : 0;
        from = lead_end;
        for (uint64_t i = 0; i < read && from; i++) from = from->next;
        g->context_next = c->first + c->count;
    }
    if (lead_end) {
        guard_secrets_collect_range(&g->secrets, msgs->child, lead_end);
        for (const cJSON *m = msgs->child; m != lead_end; m = m->next) guard_note_message(g, m);
    }
    guard_secrets_collect_range(&g->secrets, from, NULL);
    for (const cJSON *m = from; m; m = m->next) guard_note_message(g, m);
    return true;
}

/* Remember the batch, to name the tool of each result. */
static bool guard_check_batch(guard_run *g, const guard_ctx *ctx, const guard_effect *e,
                              guard_decision *d, char *note, size_t notelen)
{
    (void)ctx;
    (void)d;
    (void)note;
    (void)notelen;
    cJSON_Delete(g->last_calls);
    g->last_calls = cJSON_Duplicate(e->json, true);
    g->replaying = g->resumed;
    g->resumed = false;
    return true;
}

/* A final answer must not carry the user's values to a URL (markdown
 * images load by themselves in many clients). */
static bool guard_check_exfil_answer(guard_run *g, const guard_ctx *ctx, const guard_effect *e,
                                     guard_decision *d, char *note, size_t notelen)
{
    if (!ctx->agent->guard.exfiltration) return true;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e->json, "content");
    if (!cJSON_IsString(c)) return true;
    if (!guard_exfil_in_markdown(&g->secrets, c->valuestring, g->tainted, note, notelen))
        return true;
    guard_span(ctx, e, "exfiltration", false, "answer withheld");
    d->verdict = GUARD_STOP;
    d->code = "exfiltration_blocked";
    snprintf(d->reason, sizeof d->reason, "the answer was withheld: it holds %s", note);
    return false;
}

/* In order: the first check that decides wins (a refused tool's arguments
 * are not validated). */
static const guard_check guard_checks[] = {
    {"context", GUARD_EFFECT_MODEL_CALL, false, guard_check_context},
    {"tool_loop", GUARD_EFFECT_TOOL_CALLS, false, guard_check_repeated},
    {"tool_batch", GUARD_EFFECT_TOOL_CALLS, false, guard_check_batch},
    {"tool_permission", GUARD_EFFECT_TOOL_CALL, true, guard_check_permission},
    {"tool_arguments", GUARD_EFFECT_TOOL_CALL, true, guard_check_arguments},
    {"exfiltration", GUARD_EFFECT_TOOL_CALL, false, guard_check_exfil_args},   /* traces itself */
    {"taint", GUARD_EFFECT_TOOL_CALL, false, guard_check_taint},               /* traces itself */
    {"tool_approval", GUARD_EFFECT_TOOL_CALL, false, guard_check_approval},   /* traces itself */
    {"exfiltration", GUARD_EFFECT_FINISH, false, guard_check_exfil_answer},
};

/* The decision's span: which check, what it decided. */
static void guard_span(const guard_ctx *ctx, const guard_effect *e, const char *check, bool allow,
                       const char *note)
{
    obs_span *s = obs_span_begin(e->span ? obs_span_ctx(e->span) : NULL, "guardrail",
                                 OBS_SPAN_INTERNAL, ctx->sc);
    obs_span_set_str(s, "brigade.guardrail.check", check);
    obs_span_set_str(s, "brigade.guardrail.decision", allow ? "allow" : "deny");
    obs_span_end(s, allow ? OBS_STATUS_OK : OBS_STATUS_ERROR, allow ? NULL : note);
}

/* The `guard.flagged` payload of a taint or exfiltration decision, in the
 * same fixed words as its recorded row (guard_record_verdict): the check,
 * what was done, a label — never the arguments or the user's values. */
static void guard_verdict_event(guard_run *g, const guard_effect *e, const guard_decision *d)
{
    bool taint = strcmp(d->check, "taint") == 0;
    if (!taint && strcmp(d->check, "exfiltration") != 0) return;
    bool answer = e->kind == GUARD_EFFECT_FINISH;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "channel", answer ? "answer" : "tool_call");
    if (!answer && e->tool_name) cJSON_AddStringToObject(ev, "tool", e->tool_name);
    cJSON_AddStringToObject(ev, "detector", d->check);
    cJSON_AddStringToObject(ev, "action", d->verdict == GUARD_NEEDS_APPROVAL ? "approval"
                                          : answer ? "withhold" : "refuse");
    cJSON *labels = cJSON_AddArrayToObject(ev, "labels");
    cJSON_AddItemToArray(labels, cJSON_CreateString(taint ? "tainted_run"
                                                    : answer ? "user_value_or_query_in_url"
                                                             : "user_value_in_arguments"));
    cJSON_AddArrayToObject(ev, "spans");
    if (!g->pending_events) g->pending_events = cJSON_CreateArray();
    cJSON_AddItemToArray(g->pending_events, ev);
}

cJSON *guard_take_events(guard_run *g)
{
    cJSON *events = g->pending_events;
    g->pending_events = NULL;
    return events;
}

guard_decision guard_before_effect(guard_run *g, const guard_ctx *ctx, const guard_effect *e)
{
    guard_decision d;
    memset(&d, 0, sizeof d);
    for (size_t i = 0; i < sizeof guard_checks / sizeof guard_checks[0]; i++) {
        const guard_check *c = &guard_checks[i];
        if (c->kind != e->kind) continue;
        char note[240] = "";
        bool allow = c->fn(g, ctx, e, &d, note, sizeof note);
        if (c->traced) guard_span(ctx, e, c->name, allow, note);
        if (!allow) {
            d.check = c->name;
            if (!g->replaying) {
                guard_record_verdict(ctx, e, &d);   /* kept: a row, a count */
                guard_verdict_event(g, e, &d);      /* and told to the run's client */
            }
            return d;
        }
    }
    d.verdict = GUARD_ALLOW;
    return d;
}

/* ---- after results ---- */

static const char *guard_tool_of(const guard_run *g, const char *call_id)
{
    const cJSON *call;
    cJSON_ArrayForEach(call, g->last_calls) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(call, "id");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (cJSON_IsString(id) && cJSON_IsString(name) && call_id &&
            strcmp(id->valuestring, call_id) == 0)
            return name->valuestring;
    }
    return "";
}

/* A `guard.flagged` payload, and the decision's span. */
static cJSON *guard_flag_event(const guard_ctx *ctx, const guard_finding *f, const char *channel,
                               const char *tool, const char *action)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "channel", channel);
    if (tool) cJSON_AddStringToObject(ev, "tool", tool);
    cJSON_AddStringToObject(ev, "detector", f->detector);
    cJSON_AddNumberToObject(ev, "score", (double)(int)(f->score * 1000) / 1000.0);
    cJSON_AddStringToObject(ev, "action", action);
    cJSON *labels = cJSON_AddArrayToObject(ev, "labels");
    for (size_t i = 0; i < f->det.n_labels; i++)
        cJSON_AddItemToArray(labels, cJSON_CreateString(f->det.labels[i]));
    cJSON *spans = cJSON_AddArrayToObject(ev, "spans");   /* offsets only: never the text */
    for (size_t i = 0; i < f->det.n_spans; i++) {
        cJSON *sp = cJSON_CreateObject();
        cJSON_AddNumberToObject(sp, "start", (double)f->det.spans[i].start);
        cJSON_AddNumberToObject(sp, "end", (double)f->det.spans[i].end);
        cJSON_AddStringToObject(sp, "label", f->det.spans[i].label);
        cJSON_AddItemToArray(spans, sp);
    }
    obs_span *s = obs_span_begin(NULL, "guardrail", OBS_SPAN_INTERNAL, ctx->sc);
    obs_span_set_str(s, "brigade.guardrail.check", f->detector);
    obs_span_set_str(s, "brigade.guardrail.decision", action);
    obs_span_set_str(s, "brigade.guardrail.channel", channel);
    obs_span_set_double(s, "brigade.guardrail.score", f->score);
    obs_span_end(s, OBS_STATUS_OK, NULL);
    guard_record_finding(ctx->sc, ctx->session_id, ctx->run_id, f, channel, tool, action, false);
    return ev;
}

static void guard_labels_text(const guard_finding *f, char *out, size_t len)
{
    out[0] = 0;
    size_t o = 0;
    for (size_t i = 0; i < f->det.n_labels && o + 2 < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", i ? ", " : "", f->det.labels[i]);
}

static void guard_add_event(guard_review *v, cJSON *ev)
{
    if (!v->events) v->events = cJSON_CreateArray();
    cJSON_AddItemToArray(v->events, ev);
}

/* A message's text: a string content, or its text parts joined. */
static char *guard_message_text(const cJSON *m)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(c)) return xstrdup(c->valuestring);
    if (!cJSON_IsArray(c)) return NULL;
    size_t n = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (cJSON_IsString(t)) n += strlen(t->valuestring) + 1;
    }
    char *out = xmalloc(n + 1), *o = out;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsString(t)) continue;
        size_t l = strlen(t->valuestring);
        memcpy(o, t->valuestring, l);
        o += l;
        *o++ = '\n';
    }
    *o = 0;
    return out;
}

static void guard_note_history(guard_run *g, const cJSON *history)
{
    guard_secrets_collect(&g->secrets, history);
    const cJSON *m;
    cJSON_ArrayForEach(m, history)
        guard_note_message(g, m);
}

/* The MCP tools offered to the model, their descriptions and schemas
 * (tool_descriptions.h), by the agent's tool_output policy: flagged, the
 * run is tainted from its first step (flag, spotlight) or the tool is not
 * offered (drop). `report`: a resumed run's were reported at its start. */
static void guard_review_offered(guard_run *g, const guard_ctx *ctx, cJSON *specs, bool report,
                                 guard_review *v)
{
    guard_output_action act = ctx->agent->guard.tool_output;
    size_t n = 0;
    guard_tooldesc_hit *hits = guard_tool_descriptions_review(ctx->tools, specs, act, &n);
    static const char *const names[] = {"off", "flag", "spotlight", "drop"};
    for (size_t i = 0; i < n; i++) {
        if (hits[i].dropped) {
            if (!g->dropped_tools) g->dropped_tools = cJSON_CreateArray();
            cJSON_AddItemToArray(g->dropped_tools, cJSON_CreateString(hits[i].tool));
        } else {
            g->tainted = true;
        }
        if (report)
            guard_add_event(v, guard_flag_event(ctx, &hits[i].f, "tool_description", hits[i].tool,
                                                names[act]));
    }
    free(hits);
}

static void guard_review_start(guard_run *g, const guard_ctx *ctx, const guard_result *r,
                               guard_review *v)
{
    guard_note_history(g, r->history);
    guard_review_offered(g, ctx, r->tools, true, v);
    cJSON *one = cJSON_CreateArray();
    cJSON_AddItemToArray(one, cJSON_Duplicate(r->json, true));
    guard_secrets_collect(&g->secrets, one);
    cJSON_Delete(one);
    guard_pii_input(ctx, r->json, "user", NULL, &v->events);
    guard_input_action act = ctx->agent->guard.user_input;
    if (act == GUARD_INPUT_OFF || !guard_engine_active()) return;
    char *text = guard_message_text(r->json);
    if (!text) return;
    guard_finding f;
    guard_engine_scan(text, strlen(text), GUARD_CHANNEL_USER, &f);
    free(text);
    if (!f.flagged) return;
    guard_add_event(v, guard_flag_event(ctx, &f, "user", NULL,
                                        act == GUARD_INPUT_BLOCK ? "block" : "flag"));
    if (act != GUARD_INPUT_BLOCK) return;
    char labels[160];
    guard_labels_text(&f, labels, sizeof labels);
    v->flagged = true;
    v->check = "user_input";
    v->code = "guard_blocked";
    snprintf(v->reason, sizeof v->reason, "the message was blocked: the %s detector flagged it "
             "as a likely prompt injection (%s)", f.detector, labels);
}

static void guard_review_tools(guard_run *g, const guard_ctx *ctx, const guard_result *r,
                               guard_review *v)
{
    guard_output_action act = ctx->agent->guard.tool_output;
    cJSON *m;
    cJSON_ArrayForEach(m, r->json) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
        const char *tool = guard_tool_of(g, cJSON_IsString(id) ? id->valuestring : NULL);
        if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(m, ORIGIN_MEMBER))) {
            guard_note_message(g, m);
        } else {
            /* a result the harness gave no origin: any tool's but the clock's */
            const tool_def *def = tools_find(ctx->tools, tool);
            if (!def || def->kind != TOOL_CLOCK) {
                g->tainted = true;
                g->taint_kinds |= 1u << ORIGIN_TOOL;
            }
        }
        guard_pii_input(ctx, m, "tool", tool, &v->events);
        cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (act == GUARD_OUTPUT_OFF || !guard_engine_active() || !cJSON_IsString(c)) continue;
        guard_finding f;
        guard_engine_scan(c->valuestring, strlen(c->valuestring), GUARD_CHANNEL_TOOL, &f);
        if (!f.flagged) continue;
        static const char *const names[] = {"off", "flag", "spotlight", "drop"};
        guard_add_event(v, guard_flag_event(ctx, &f, "tool", tool, names[act]));
        char *rewritten = NULL;
        if (act == GUARD_OUTPUT_SPOTLIGHT) {
            rewritten = guard_spotlight(tool, c->valuestring, strlen(c->valuestring));
        } else if (act == GUARD_OUTPUT_DROP) {
            char labels[160];
            guard_labels_text(&f, labels, sizeof labels);
            rewritten = guard_withheld(tool, f.detector, labels);
        }
        if (rewritten) {
            cJSON_ReplaceItemInObjectCaseSensitive(m, "content", cJSON_CreateString(rewritten));
            free(rewritten);
            /* the text is now brigade's around (or instead of) the tool's */
            cJSON *o = cJSON_GetObjectItemCaseSensitive(m, ORIGIN_MEMBER);
            if (cJSON_IsObject(o)) {
                cJSON_DeleteItemFromObjectCaseSensitive(o, "wrapped");
                cJSON_AddStringToObject(o, "wrapped", act == GUARD_OUTPUT_SPOTLIGHT ? "spotlight"
                                                                                    : "withheld");
            }
        }
    }
}

guard_review guard_after_result(guard_run *g, const guard_ctx *ctx, const guard_result *r)
{
    guard_review v;
    memset(&v, 0, sizeof v);
    switch (r->kind) {
    case GUARD_RESULT_START: guard_review_start(g, ctx, r, &v); break;
    case GUARD_RESULT_RESUME:
        guard_note_history(g, r->history);
        guard_review_offered(g, ctx, r->tools, false, &v);
        g->resumed = true;
        break;
    case GUARD_RESULT_TOOL_RESULTS: guard_review_tools(g, ctx, r, &v); break;
    case GUARD_RESULT_MODEL_REPLY: guard_pii_output(ctx, r->json, &v.events); break;
    default: break;
    }
    return v;
}
