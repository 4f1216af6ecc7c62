/* pii_policy.c — the agent's PII policy (see pii_policy.h): flag or redact
 * personal data in a message's content, a string or text parts. */
#include "guard/pii_policy.h"

#include "core/step.h"
#include "util/pii.h"

#include <stdlib.h>
#include <string.h>

/* Redact one string item in place when asked; the kinds and spans found
 * go to *kinds and `spans` (offsets into the original, never values). */
static void pii_string(cJSON *item, bool redact, unsigned *kinds, cJSON *spans)
{
    if (!cJSON_IsString(item) || !item->valuestring) return;
    const char *t = item->valuestring;
    size_t n = strlen(t), pos = 0;
    pii_span sp;
    bool any = false;
    while (pii_next(t, n, &pos, &sp)) {
        any = true;
        *kinds |= PII_BIT(sp.kind);
        if (spans && cJSON_GetArraySize(spans) < 64) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "start", (double)sp.start);
            cJSON_AddNumberToObject(o, "end", (double)sp.end);
            cJSON_AddStringToObject(o, "label", pii_kind_name(sp.kind));
            cJSON_AddItemToArray(spans, o);
        }
    }
    if (!any || !redact) return;
    char *r = pii_redact_dup(t, n, NULL);
    if (r) {
        free(item->valuestring);              /* cJSON's default allocator: no hooks are set */
        item->valuestring = r;
    }
}

/* A message's content: a string, or an array of parts with "text". */
static void pii_content(cJSON *message, bool redact, unsigned *kinds, cJSON *spans)
{
    cJSON *c = cJSON_GetObjectItemCaseSensitive(message, "content");
    if (cJSON_IsString(c)) {
        pii_string(c, redact, kinds, spans);
        return;
    }
    cJSON *part;
    cJSON_ArrayForEach(part, c) pii_string(cJSON_GetObjectItemCaseSensitive(part, "text"), redact,
                                           kinds, spans);
}

static void pii_review(const guard_ctx *ctx, cJSON *message, guard_pii_action act,
                       const char *channel, const char *tool, cJSON **events)
{
    if (act == GUARD_PII_OFF || !cJSON_IsObject(message)) return;
    unsigned kinds = 0;
    cJSON *spans = cJSON_CreateArray();
    pii_content(message, act == GUARD_PII_REDACT, &kinds, spans);
    if (!kinds) {
        cJSON_Delete(spans);
        return;
    }
    const char *action = act == GUARD_PII_REDACT ? "redact" : "flag";
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "channel", channel);
    if (tool && tool[0]) cJSON_AddStringToObject(ev, "tool", tool);
    cJSON_AddStringToObject(ev, "detector", "pii");
    cJSON_AddNumberToObject(ev, "score", 1);
    cJSON_AddStringToObject(ev, "action", action);
    cJSON *labels = cJSON_AddArrayToObject(ev, "labels");
    for (int k = 0; k < PII__KINDS; k++)
        if (kinds & PII_BIT(k)) cJSON_AddItemToArray(labels, cJSON_CreateString(pii_kind_name(k)));
    cJSON_AddItemToObject(ev, "spans", spans);
    if (!*events) *events = cJSON_CreateArray();
    cJSON_AddItemToArray(*events, ev);
    /* the decision's span, as the injection detectors' (guard.c) */
    obs_span *s = obs_span_begin(NULL, "guardrail", OBS_SPAN_INTERNAL, ctx->sc);
    obs_span_set_str(s, "brigade.guardrail.check", "pii");
    obs_span_set_str(s, "brigade.guardrail.decision", action);
    obs_span_set_str(s, "brigade.guardrail.channel", channel);
    obs_span_set_double(s, "brigade.guardrail.score", 1.0);
    obs_span_end(s, OBS_STATUS_OK, NULL);
}

void guard_pii_input(const guard_ctx *ctx, cJSON *message, const char *channel, const char *tool,
                     cJSON **events)
{
    if (!ctx || !ctx->agent) return;
    pii_review(ctx, message, ctx->agent->guard.pii_input, channel, tool, events);
}

void guard_pii_output(const guard_ctx *ctx, cJSON *message, cJSON **events)
{
    if (!ctx || !ctx->agent) return;
    pii_review(ctx, message, ctx->agent->guard.pii_output, "model", NULL, events);
}

void guard_pii_request(const guard_ctx *ctx, cJSON *request)
{
    if (!ctx || !ctx->agent || ctx->agent->guard.pii_input != GUARD_PII_REDACT) return;
    cJSON *messages = cJSON_GetObjectItemCaseSensitive(request, "messages");
    for (cJSON *m = messages ? messages->child : NULL, *next; m; m = next) {
        next = m->next;
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role) ||
            (strcmp(role->valuestring, "user") != 0 && strcmp(role->valuestring, "tool") != 0))
            continue;
        /* The request's messages refer to the run's own (step.h, a reference):
         * the redaction is made on a copy, which replaces the reference, so
         * the run keeps what the user and the tools said. */
        cJSON *copy = step_message_copy(m);
        if (!copy || !cJSON_ReplaceItemViaPointer(messages, m, copy)) {
            /* out of memory: the message is left out rather than sent unredacted */
            cJSON_Delete(copy);
            cJSON_Delete(cJSON_DetachItemViaPointer(messages, m));
            continue;
        }
        unsigned kinds = 0;
        pii_content(copy, true, &kinds, NULL);
    }
}
