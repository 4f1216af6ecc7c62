/* events.c — the API's stream events (`event: NAME` / `data: JSON`), written
 * to the client that started the run while it is connected. Every event
 * carries the run id. A full stream (the client reads slowly) is noted so
 * the model call pauses instead of buffering without bound. */
#include "runs/runs_internal.h"

#include <string.h>

void run_event(run_exec *x, const char *name, cJSON *data)
{
    if (!x->sub || !x->stream_begun || x->sub->aborted) {
        cJSON_Delete(data);
        return;
    }
    cJSON_AddStringToObject(data, "run_id", x->rec.id);
    char *json = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    if (!json) return;
    run_event_text(x, name, json, strlen(json));
    cJSON_free(json);
}

void run_event_text(run_exec *x, const char *name, const char *json, size_t len)
{
    if (!x->sub || !x->stream_begun) return;
    x->sse.len = 0;
    buf_puts(&x->sse, "event: ");
    buf_puts(&x->sse, name);
    buf_puts(&x->sse, "\ndata: ");
    buf_append(&x->sse, json, len);
    buf_append(&x->sse, "\n\n", 2);
    x->sse_full = !http_stream_write(x->sub, x->sse.data, x->sse.len);
}
