/* guard.c — the checks behind guard.h, as a table per kind of effect: a
 * check either allows or decides, and the first that decides wins. A new
 * check (a detector, an approval rule) is one function and one row. */
#include "guard/guard.h"
#include "guard/approval_when.h"
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
    free(g);
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
    (void)g;
    bool listed = tools_name_listed(ctx->agent->tools, ctx->agent->n_tools, e->tool_name);
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
    const tool_cfg *t = d->tool ? d->tool->http : NULL;
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

/* In order: the first check that decides wins (a refused tool's arguments
 * are not validated). */
static const guard_check guard_checks[] = {
    {"tool_loop", GUARD_EFFECT_TOOL_CALLS, false, guard_check_repeated},
    {"tool_permission", GUARD_EFFECT_TOOL_CALL, true, guard_check_permission},
    {"tool_arguments", GUARD_EFFECT_TOOL_CALL, true, guard_check_arguments},
    {"tool_approval", GUARD_EFFECT_TOOL_CALL, false, guard_check_approval},   /* traces itself */
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
            return d;
        }
    }
    d.verdict = GUARD_ALLOW;
    return d;
}

guard_review guard_after_result(guard_run *g, const guard_ctx *ctx, const guard_result *r)
{
    /* No check looks at results yet: the detectors of prompt injection and
     * exfiltration will, as rows of their own table. */
    (void)g;
    (void)ctx;
    (void)r;
    guard_review v;
    memset(&v, 0, sizeof v);
    return v;
}
