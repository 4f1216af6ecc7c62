/* step.c — the small shared part of the step interface (step.h): releasing
 * what an effect holds once the harness has performed it.
 *
 * Includes: only <cjson/cJSON.h>, standard string/memory/stdlib/stdio
 * headers and core/ headers — no I/O, storage, clocks or randomness
 * (invariant 1, docs/architecture.md; checked by tests/unit/core/test_core_purity.c). */
#include <string.h>

#include <cjson/cJSON.h>

#include "core/step.h"

void step_effect_clear(step_effect *e)
{
    if (!e)
        return;
    cJSON_Delete(e->request);
    cJSON_Delete(e->tool_calls);
    cJSON_Delete(e->message);
    /* Zero everything so a second clear, or a stale read, sees nothing. */
    memset(e, 0, sizeof(*e));
}
