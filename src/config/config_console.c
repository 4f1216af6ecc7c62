/* config_console.c — the `console:` section: whether the web console at
 * /ui/ is served, and the bounds of its sign-in sessions (docs/console.md). */
#include <libfyaml.h>

#include "config/config_internal.h"
#include "config/config_load.h"
#include "config/config_node.h"

enum { CO_ENABLED, CO_TTL, CO_MAX, CO__N };

int ld_console(ld *l, struct fy_node *n, int line)
{
    console_cfg *c = &l->cfg->console;
    slot s[CO__N] = {
        [CO_ENABLED] = {.key = "enabled"},
        [CO_TTL] = {.key = "session_ttl_s"},
        [CO_MAX] = {.key = "max_sessions"},
    };
    if (config_node_is_null(n))
        return 0;
    if (ld_collect(l, n, line, "console", s, CO__N) < 0)
        return -1;
    if (s[CO_ENABLED].present && ld_bool(l, &s[CO_ENABLED], "console.enabled", &c->enabled) < 0)
        return -1;
    /* A minute at least (a page must live long enough to be used), a day
     * at most: a forgotten browser tab should not hold a sign-in forever. */
    if (s[CO_TTL].present &&
        ld_u32(l, &s[CO_TTL], "console.session_ttl_s", 60, 86400, &c->session_ttl_s) < 0)
        return -1;
    if (s[CO_MAX].present &&
        ld_u32(l, &s[CO_MAX], "console.max_sessions", 1, 100000, &c->max_sessions) < 0)
        return -1;
    return 0;
}
