/* events.c — what the run tells its subscriber (runs.h): the API's events
 * (a name and JSON carrying the run id) while it wants them, and the end.
 * A full subscriber (a client reading slowly) is noted so the model call
 * pauses instead of buffering without bound. Every event also goes to the
 * run's event log (event_log.c), numbered. */
#include "runs/runs_internal.h"

#include <string.h>

#include "util/json_escape.h"

void run_event_text(run_exec *x, const char *name, const char *json, size_t len)
{
    /* kept (and numbered) whether or not anyone hears it now: a client
     * whose stream broke reads it again (GET /v1/runs/{id}/events) */
    uint64_t seq = run_log_append(x->r->logs, x->rec.id, x->sc.tenant_id, x->sc.user_id, name, json, len);
    if (x->sub && x->sub_started && x->sub->on_event)
        x->sub_full = !x->sub->on_event(x->sub, name, json, len, seq);
}

void run_event(run_exec *x, const char *name, cJSON *data)
{
    cJSON_AddStringToObject(data, "run_id", x->rec.id);
    char *json = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    if (!json) return;
    run_event_text(x, name, json, strlen(json));
    cJSON_free(json);
}

void run_event_delta(run_exec *x, const char *text, size_t len)
{
    /* {"text": …, "run_id": …}, as run_event would write it, without a
     * tree built and printed for each of a reply's many chunks */
    buf ev;
    buf_init(&ev);
    buf_reserve(&ev, len + sizeof x->rec.id + 32);
    buf_puts(&ev, "{\"text\":");
    json_escape_string(&ev, text, len);
    buf_puts(&ev, ",\"run_id\":");
    json_escape_string(&ev, x->rec.id, strnlen(x->rec.id, sizeof x->rec.id));
    buf_puts(&ev, "}");
    run_event_text(x, "message.delta", ev.data, ev.len);
    buf_free(&ev);
}

void run_event_end(run_exec *x, const runs_outcome *o)
{
    runs_subscriber *sub = x->sub;
    if (!sub) return;
    x->sub = NULL;
    sub->run = NULL;
    sub->on_end(sub, o);
}

void runs_subscriber_gone(runs_subscriber *s)
{
    if (s->paused) {                   /* its run is paused: it no longer waits for it */
        runs_paused_subscriber_gone(s);
        return;
    }
    run_exec *x = s->run;
    s->run = NULL;
    if (!x || x->sub != s) return;
    x->sub = NULL;
    if (x->sub_full) {                 /* nobody left to wait for */
        x->sub_full = false;
        if (x->call) upstream_call_resume(x->call);
    }
}

void runs_subscriber_drained(runs_subscriber *s)
{
    run_exec *x = s->run;
    if (!x) return;
    x->sub_full = false;
    if (x->call) upstream_call_resume(x->call);
}
