/* session.c — one MCP client session: JSON-RPC over a transport. It gives
 * each request a number id and a timer, routes each answer to its request
 * (an answer nobody waits for any more — timed out, cancelled — is
 * dropped), answers the server's own requests (ping; anything else is
 * "method not found": brigade offers no client capabilities), and hands
 * notifications on. A message that does not parse is logged (bounded) and
 * skipped. Callbacks may close the session; it is freed only once no
 * callback of it is running. */
#include "mcp/mcp_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"
#include "util/json_num.h"

typedef struct pending {
    struct pending *next;
    mcp_session    *s;
    int64_t         id;
    uv_timer_t      timer;
    mcp_reply_fn    reply;
    void           *arg;
    char           *late_why;     /* answered on the next turn (closed session) */
} pending;

struct mcp_session {
    uv_loop_t     *loop;
    mcp_transport *t;
    mcp_session_cb cb;
    char           label[48];
    int64_t        next_id;
    pending       *head;
    int            depth;          /* callbacks running */
    int            timers;         /* pending timers not yet closed */
    bool           closed, free_when_idle;
    unsigned       bad_logged;
};

static void session_maybe_free(mcp_session *s)
{
    if (s->free_when_idle && s->depth == 0 && s->timers == 0) free(s);
}

static void pending_closed(uv_handle_t *h)
{
    pending *p = h->data;
    mcp_session *s = p->s;
    free(p->late_why);
    free(p);
    s->timers--;
    session_maybe_free(s);
}

static pending *pending_take(mcp_session *s, int64_t id)
{
    for (pending **pp = &s->head; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            pending *p = *pp;
            *pp = p->next;
            return p;
        }
    return NULL;
}

static void pending_end(pending *p)
{
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static void pending_timeout(uv_timer_t *tm)
{
    pending *p = tm->data;
    mcp_session *s = p->s;
    pending_take(s, p->id);
    char why[160];
    if (p->late_why) snprintf(why, sizeof why, "%s", p->late_why);
    else {
        snprintf(why, sizeof why, "the MCP server %s did not answer in time", s->label);
        /* tell the server to stop working on it */
        cJSON *params = cJSON_CreateObject();
        cJSON_AddNumberToObject(params, "requestId", (double)p->id);
        cJSON_AddStringToObject(params, "reason", "timed out");
        mcp_session_notify(s, "notifications/cancelled", params);
    }
    s->depth++;
    p->reply(p->arg, NULL, why);
    s->depth--;
    pending_end(p);
}

mcp_session *mcp_session_new(uv_loop_t *loop, const char *label, mcp_session_cb cb)
{
    mcp_session *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->cb = cb;
    s->next_id = 1;
    snprintf(s->label, sizeof s->label, "%s", label);
    return s;
}

static void session_on_message(void *arg, const char *text, size_t len);
static void session_on_closed(void *arg, const char *why);

static void session_on_egress_refused(void *arg, const egress_check *chk)
{
    mcp_session *s = arg;
    if (!s->closed && s->cb.on_egress_refused) s->cb.on_egress_refused(s->cb.arg, chk);
}

mcp_transport_cb mcp_session_transport_cb(mcp_session *s)
{
    return (mcp_transport_cb){.on_message = session_on_message, .on_closed = session_on_closed,
                              .on_egress_refused = session_on_egress_refused, .arg = s};
}

void mcp_session_attach(mcp_session *s, mcp_transport *t) { s->t = t; }

mcp_transport *mcp_session_transport(mcp_session *s) { return s ? s->t : NULL; }

static bool session_send(mcp_session *s, char *text)
{
    bool ok = text && s->t && !s->closed && s->t->send(s->t, text, strlen(text));
    free(text);
    return ok;
}

void mcp_session_notify(mcp_session *s, const char *method, cJSON *params)
{
    if (s->closed) {
        cJSON_Delete(params);
        return;
    }
    session_send(s, mcp_write_notification(method, params));
}

int64_t mcp_session_request(mcp_session *s, const char *method, cJSON *params, uint32_t timeout_ms,
                            bool with_progress, mcp_reply_fn reply, void *arg)
{
    pending *p = xcalloc(1, sizeof *p);
    p->s = s;
    p->reply = reply;
    p->arg = arg;
    uv_timer_init(s->loop, &p->timer);
    p->timer.data = p;
    s->timers++;
    int64_t id = s->next_id++;
    p->id = id;
    if (with_progress) {
        if (!params) params = cJSON_CreateObject();
        cJSON *meta = cJSON_AddObjectToObject(params, "_meta");
        cJSON_AddNumberToObject(meta, "progressToken", (double)id);
    }
    if (s->closed || !session_send(s, mcp_write_request(id, method, params))) {
        p->late_why = xstrdup(s->closed ? "the MCP session is closed" : "the MCP server cannot be written to");
        p->next = s->head;
        s->head = p;
        uv_timer_start(&p->timer, pending_timeout, 0, 0);
        return 0;
    }
    p->next = s->head;
    s->head = p;
    uv_timer_start(&p->timer, pending_timeout, timeout_ms ? timeout_ms : 60000, 0);
    return id;
}

void mcp_session_cancel(mcp_session *s, int64_t id, const char *reason)
{
    pending *p = pending_take(s, id);
    if (!p) return;
    pending_end(p);
    cJSON *params = cJSON_CreateObject();
    cJSON_AddNumberToObject(params, "requestId", (double)id);
    if (reason) cJSON_AddStringToObject(params, "reason", reason);
    mcp_session_notify(s, "notifications/cancelled", params);
}

/* Every pending request answered with `why` (each removed first, so a
 * callback that sends a new one does not loop here). */
static void session_fail_all(mcp_session *s, const char *why)
{
    while (s->head) {
        pending *p = s->head;
        s->head = p->next;
        s->depth++;
        p->reply(p->arg, NULL, why);
        s->depth--;
        pending_end(p);
    }
}

static void session_on_closed(void *arg, const char *why)
{
    mcp_session *s = arg;
    if (s->closed) return;
    s->closed = true;
    char msg[200];
    snprintf(msg, sizeof msg, "the MCP server %s stopped: %s", s->label, why);
    s->depth++;
    session_fail_all(s, msg);
    s->cb.on_closed(s->cb.arg, msg);
    s->depth--;
    session_maybe_free(s);
}

void mcp_session_close(mcp_session *s, const char *why)
{
    if (!s || s->free_when_idle) return;
    bool was_closed = s->closed;
    s->closed = true;
    s->free_when_idle = true;
    s->depth++;
    if (!was_closed) session_fail_all(s, why ? why : "the MCP session was closed");
    else session_fail_all(s, why ? why : "the MCP session was closed");
    s->depth--;
    if (s->t) s->t->close(s->t);
    s->t = NULL;
    session_maybe_free(s);
}

static void session_answer_request(mcp_session *s, const mcp_msg *m)
{
    if (!strcmp(m->method, "ping")) {
        session_send(s, mcp_write_response(m->id, cJSON_CreateObject(), 0, NULL));
        return;
    }
    session_send(s, mcp_write_response(m->id, NULL, -32601, "method not found"));
}

static void session_progress(mcp_session *s, const mcp_msg *m)
{
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(m->params, "progressToken");
    const cJSON *prog = cJSON_GetObjectItemCaseSensitive(m->params, "progress");
    const cJSON *tot = cJSON_GetObjectItemCaseSensitive(m->params, "total");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(m->params, "message");
    if (!cJSON_IsNumber(tok) || !cJSON_IsNumber(prog)) return;
    s->cb.on_progress(s->cb.arg, json_num_i64(tok->valuedouble), prog->valuedouble,
                      cJSON_IsNumber(tot) ? tot->valuedouble : -1,
                      cJSON_IsString(msg) ? msg->valuestring : NULL);
}

static void session_on_message(void *arg, const char *text, size_t len)
{
    mcp_session *s = arg;
    if (s->closed) return;
    mcp_msg m;
    char err[160];
    if (!mcp_msg_parse(text, len, &m, err, sizeof err)) {
        if (s->bad_logged++ < 20)
            log_msg(LOG_WARN, "mcp %s: a message skipped: %s", s->label, err);
        return;
    }
    s->depth++;
    switch (m.kind) {
    case MCP_MSG_RESULT:
    case MCP_MSG_ERROR: {
        pending *p = m.id_is_num ? pending_take(s, m.id_num) : NULL;
        if (p) {
            p->reply(p->arg, &m, NULL);
            pending_end(p);
        }
        break;
    }
    case MCP_MSG_REQUEST:
        session_answer_request(s, &m);
        break;
    case MCP_MSG_NOTIFICATION:
        if (!strcmp(m.method, "notifications/progress")) session_progress(s, &m);
        else s->cb.on_notification(s->cb.arg, &m);
        break;
    }
    s->depth--;
    mcp_msg_free(&m);
    session_maybe_free(s);
}
