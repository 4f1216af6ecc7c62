/* events.c — what the run tells its subscriber (runs.h): the API's events
 * (a name and JSON carrying the run id) while it wants them, and the end.
 * A full subscriber (a client reading slowly) is noted so the model call
 * pauses instead of buffering without bound. */
#include "runs/runs_internal.h"

#include <string.h>

void run_event(run_exec *x, const char *name, cJSON *data)
{
    if (!x->sub || !x->sub_started || !x->sub->on_event) {
        cJSON_Delete(data);
        return;
    }
    cJSON_AddStringToObject(data, "run_id", x->rec.id);
    char *json = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    if (!json) return;
    x->sub_full = !x->sub->on_event(x->sub, name, json, strlen(json));
    cJSON_free(json);
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
