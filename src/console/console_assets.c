/* console_assets.c — finding an embedded console file by name. */
#include "console/console_assets.h"

#include <string.h>

const console_asset *console_asset_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < console_n_assets; i++)
        if (strcmp(console_assets[i].name, name) == 0) return &console_assets[i];
    return NULL;
}
