/* console_assets.h — the web console's files (HTML, the esbuild bundle,
 * CSS), embedded in the binary at build time by scripts/console_bundle.py:
 * nothing is read from disk or fetched at run time. */
#ifndef BRIGADE_CONSOLE_ASSETS_H
#define BRIGADE_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct console_asset {
    const char          *name;           /* "index.html", "app.js", … */
    const char          *content_type;
    const unsigned char *data;
    size_t               len;
    const char          *etag;           /* quoted: "\"sha256-prefix\"" */
} console_asset;

/* The asset called `name` (a file name, no slashes), or NULL. */
const console_asset *console_asset_find(const char *name);

/* generated (console_bundle.c) */
extern const console_asset console_assets[];
extern const size_t console_n_assets;

#endif
