/* tool_clock.c — the built-in `clock` tool: the current time, in UTC.
 * Models are bad at knowing the date; this answers it from the system
 * clock. Only UTC is offered: a time zone database lookup would add a
 * dependency for something the model can convert itself. */
#include "tools/tools_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"

char *tool_clock_read(const cJSON *args, bool *ok)
{
    const cJSON *tz = cJSON_GetObjectItemCaseSensitive(args, "timezone");
    if (tz && !cJSON_IsNull(tz) && (!cJSON_IsString(tz) || strcmp(tz->valuestring, "UTC") != 0)) {
        char out[256];
        tools_json_error(out, sizeof out,
                         "only the timezone \"UTC\" is supported; convert from UTC yourself");
        *ok = false;
        return strdup(out);
    }
    int64_t now = time_now_unix();
    char iso[21];
    time_format_iso(iso, now);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "utc", iso);
    cJSON_AddNumberToObject(o, "unix", (double)now);
    char *txt = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    *ok = txt != NULL;
    return txt;
}
