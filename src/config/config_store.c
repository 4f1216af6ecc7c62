/* config_store.c — the `store:` section: which backend holds brigade's
 * data. `kind: sqlite` (the default) keeps it in server.data_dir;
 * `kind: postgres` in the PostgreSQL database at `url` (docs/config.md,
 * docs/scale-out.md). */
#include <libfyaml.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "config/config_load.h"
#include "config/config_node.h"

enum { ST_KIND, ST_URL, ST_POOL, ST__N };

int ld_store(ld *l, struct fy_node *n, int line)
{
    store_cfg *c = &l->cfg->store;
    slot s[ST__N] = {
        [ST_KIND] = {.key = "kind"},
        [ST_URL] = {.key = "url"},
        [ST_POOL] = {.key = "pool_size"},
    };
    if (config_node_is_null(n))
        return 0;
    if (ld_collect(l, n, line, "store", s, ST__N) < 0)
        return -1;
    if (s[ST_KIND].present) {
        char *kind = NULL;
        if (ld_nonempty(l, &s[ST_KIND], "store.kind", &kind, NULL) < 0) {
            free(kind);
            return -1;
        }
        int pg = strcmp(kind, "postgres") == 0, lite = strcmp(kind, "sqlite") == 0;
        free(kind);
        if (!pg && !lite)
            return ld_fail(l, s[ST_KIND].line, "store.kind", "must be sqlite or postgres");
        c->kind = pg ? STORE_CFG_POSTGRES : STORE_CFG_SQLITE;
    }
    if (s[ST_URL].present) {
        int literal = 0;
        if (ld_nonempty(l, &s[ST_URL], "store.url", &c->url, &literal) < 0)
            return -1;
        /* a URL may carry a password: better read from the environment */
        if (literal && strchr(c->url, '@') && strchr(c->url, ':'))
            ld_warn(l, s[ST_URL].line, "store.url",
                    "the URL may hold a password written in the file; prefer ${DATABASE_URL}");
    }
    if (s[ST_POOL].present &&
        ld_u32(l, &s[ST_POOL], "store.pool_size", 1, 256, &c->pool_size) < 0)
        return -1;
    if (c->kind == STORE_CFG_POSTGRES && !c->url)
        return ld_fail(l, line, "store.url", "kind postgres needs url (e.g. url: ${DATABASE_URL})");
    if (c->kind == STORE_CFG_SQLITE && c->url)
        return ld_fail(l, s[ST_URL].line, "store.url",
                       "only for kind postgres (SQLite lives in server.data_dir)");
    return 0;
}
