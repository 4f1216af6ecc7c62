/* approvals.c — a person decides the tool calls that wait for them:
 *
 *   GET  /v1/approvals                          the caller's pending approvals
 *                                               (a tenant admin: the tenant's)
 *   POST /v1/runs/{id}/approvals/{call_id}      {decision: "approve"|"deny", note?}
 *
 * Who may decide is the agent's `approval_by` (user, tenant_admin, any),
 * copied onto each approval when the run paused. Another user's (or
 * another tenant's) approval is 404; one the policy keeps from the caller
 * is 403; one already decided (by a person or its deadline) is 409. Each
 * decision is audited — who decided, the decision, the tool, the run and
 * the call; never the arguments or the note, which may hold secrets or
 * personal data (they stay in the approval, readable by those who may see
 * it). The last decision of a run makes it go on (runs.h). */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include "obs/audit.h"

#define APPROVALS_LIST_MAX 100          /* GET /v1/approvals answers at most this many */
#define APPROVAL_NOTE_MAX 1000          /* bytes of a decision's note */

static const char *api_approval_status(approval_status s)
{
    return s == APPROVAL_APPROVED ? "approved" : s == APPROVAL_DENIED ? "denied" : "pending";
}

static const char *api_approval_by(int by)
{
    return by == APPROVAL_BY_USER ? "user" : by == APPROVAL_BY_TENANT_ADMIN ? "tenant_admin" : "any";
}

cJSON *api_json_approval(const approval_rec *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "approval");
    cJSON_AddStringToObject(o, "id", a->call_id);
    cJSON_AddStringToObject(o, "run_id", a->run_id);
    cJSON_AddStringToObject(o, "session_id", a->session_id);
    cJSON_AddStringToObject(o, "user_id", a->user_id);
    cJSON_AddStringToObject(o, "tool", a->tool);
    cJSON_AddStringToObject(o, "arguments", a->arguments ? a->arguments : "{}");
    cJSON_AddStringToObject(o, "reason", a->reason);
    cJSON_AddStringToObject(o, "status", api_approval_status(a->status));
    cJSON_AddStringToObject(o, "approval_by", api_approval_by(a->approval_by));
    if (a->status != APPROVAL_PENDING) {
        cJSON_AddStringToObject(o, "decided_by", a->decided_by);
        cJSON_AddNumberToObject(o, "decided_at", (double)a->decided_at);
        if (a->note) cJSON_AddStringToObject(o, "note", a->note);
        else cJSON_AddNullToObject(o, "note");
    }
    cJSON_AddNumberToObject(o, "deadline", (double)a->deadline);
    cJSON_AddNumberToObject(o, "created_at", (double)a->created_at);
    return o;
}

void api_approvals_list(api_ctx *ctx)
{
    const scope *sc = &ctx->scope;
    approval_rec *a = NULL;
    size_t n = 0;
    store_status st = store_approvals_pending(ctx->env->store, sc->tenant_id,
                                              sc->role == SCOPE_USER ? sc->user_id : NULL,
                                              APPROVALS_LIST_MAX, &a, &n);
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "approvals");
        return;
    }
    cJSON *data = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(data, api_json_approval(&a[i]));
    store_free_approvals(a, n);
    api_reply(ctx, 200, api_json_list(data, n == APPROVALS_LIST_MAX));
}

/* What approval.approve/.deny/.timeout records, read in the decision's
 * transaction, once the store has read the approval. */
typedef struct approval_audit {
    const approval_rec *a;
    bool approve;
    char action[24];
} approval_audit;

static void approval_audit_details(cJSON *d, void *arg)
{
    approval_audit *aa = arg;
    const approval_rec *a = aa->a;
    bool timed_out = strcmp(a->decided_by, "timeout") == 0;
    snprintf(aa->action, sizeof aa->action, "%s",
             timed_out ? "approval.timeout" : aa->approve ? "approval.approve" : "approval.deny");
    cJSON_AddStringToObject(d, "run_id", a->run_id);
    cJSON_AddStringToObject(d, "call_id", a->call_id);
    cJSON_AddStringToObject(d, "tool", a->tool);
    cJSON_AddStringToObject(d, "decision", aa->approve && !timed_out ? "approved" : "denied");
    cJSON_AddStringToObject(d, "user_id", a->user_id);
}

void api_approvals_decide(api_ctx *ctx)
{
    const scope *sc = &ctx->scope;
    const char *run_id = ctx->req->params[0], *call_id = ctx->req->params[1];
    cJSON *body = api_body_object(ctx, (const char *const[]){"decision", "note", NULL}, false);
    if (!body) return;
    char decision[16] = "", note[APPROVAL_NOTE_MAX + 1] = "";
    bool has_note = false;
    if (!api_field_string(ctx, body, "decision", true, sizeof decision - 1, decision, sizeof decision, NULL) ||
        !api_field_string(ctx, body, "note", false, APPROVAL_NOTE_MAX, note, sizeof note, &has_note)) {
        cJSON_Delete(body);
        return;
    }
    cJSON_Delete(body);
    bool approve = strcmp(decision, "approve") == 0;
    if (!approve && strcmp(decision, "deny") != 0) {
        api_fail(ctx, 400, "invalid_request_error", "invalid_value", "decision",
                 "\"decision\" must be \"approve\" or \"deny\"");
        return;
    }
    approval_rec a;
    size_t left = 0;
    /* the decision and its audit entry in one transaction; a call found
     * past its deadline is recorded as the approval.timeout it became */
    approval_audit aa = {&a, approve, ""};
    obs_audit_act act;
    obs_audit_act_begin(&act, ctx->env->store, sc, NULL, approve ? "approval.approve" : "approval.deny",
                        call_id, NULL);
    obs_audit_act_fill(&act, approval_audit_details, &aa);
    obs_audit_act_action(&act, aa.action);
    store_status st = store_approval_decide(ctx->env->store, sc->tenant_id,
                                            sc->role == SCOPE_USER ? sc->user_id : NULL, sc->key_id,
                                            run_id, call_id, approve, has_note ? note : NULL, &a, &left);
    obs_audit_act_end(&act);
    if (st == STORE_FORBIDDEN) {
        api_fail(ctx, 403, "permission_error", "approval_not_yours", NULL,
                 "this agent's approvals are decided by %s",
                 a.approval_by == APPROVAL_BY_USER ? "the run's user" : "a tenant admin");
        approval_rec_free(&a);
        return;
    }
    if (st == STORE_CONFLICT) {
        api_fail(ctx, 409, "invalid_request_error", "approval_decided", NULL,
                 "this call was already decided (%s by %s)", api_approval_status(a.status),
                 a.decided_by[0] ? a.decided_by : "someone");
        approval_rec_free(&a);
        return;
    }
    if (st != STORE_OK) {
        api_fail_store(ctx, st, "approval");
        return;
    }
    if (left == 0) runs_approvals_decided(ctx->env->runs, a.run_id);
    cJSON *j = api_json_approval(&a);
    approval_rec_free(&a);
    api_reply(ctx, 200, j);
}
