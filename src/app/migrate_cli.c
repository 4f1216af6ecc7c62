/* migrate_cli.c — `brigade admin migrate --from sqlite:DIR --to postgres:URL`:
 * moves a deployment's data from its SQLite store to an empty PostgreSQL
 * database (store_pg_import_sqlite: one transaction, row counts compared
 * per table), then checks what it moved: the audit chain on the target is
 * verified with the data directory's key, and must be intact. Stop
 * `brigade serve` on DIR first. The key files stay in DIR: point the new
 * configuration's server.data_dir at it (or copy them). */
#include "app/app.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/audit_chain.h"
#include "store/store.h"

static const char migrate_usage[] =
    "usage: brigade admin migrate --from sqlite:DIR --to postgres:URL\n"
    "  copies every table of DIR/brigade.db into the empty PostgreSQL database at URL,\n"
    "  compares the row counts, and verifies the audit chain there (stop brigade serve first)\n";

int app_admin_migrate(int argc, char **argv)
{
    const char *from = NULL, *to = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) from = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) to = argv[++i];
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) { fputs(migrate_usage, stdout); return 0; }
        else { fprintf(stderr, "brigade admin migrate: unexpected \"%s\"\n%s", argv[i], migrate_usage); return 2; }
    }
    if (!from || !to || strncmp(from, "sqlite:", 7) != 0 || !from[7] || strncmp(to, "postgres:", 9) != 0 || !to[9]) {
        fputs(migrate_usage, stderr);
        return 2;
    }
    const char *dir = from + 7, *url = to + 9;
    char err[2048];
    /* the key that signs the checkpoints must be there before anything moves */
    audit_key key;
    if (audit_key_load(dir, false, &key, err, sizeof err) != 0) {
        fprintf(stderr, "brigade admin migrate: %s\n", err);
        return 1;
    }
    store_import_report rep;
    if (store_pg_import_sqlite(dir, url, &rep, err, sizeof err) != 0) {
        fprintf(stderr, "brigade admin migrate: %s (nothing was written to the target)\n", err);
        return 1;
    }
    store_backend b = {.kind = STORE_BACKEND_POSTGRES, .url = url, .pool_size = 1};
    store *st = store_open_backend(&b, dir, err, sizeof err);
    if (!st) {
        fprintf(stderr, "brigade admin migrate: copied, but cannot reopen the target: %s\n", err);
        return 1;
    }
    audit_verify_result *res = calloc(1, sizeof *res);
    store_status vr = res ? audit_verify(st, key.pk, res) : STORE_ERROR;
    store_close(st);
    explicit_bzero(&key, sizeof key);
    if (vr != STORE_OK || !res->intact) {
        fprintf(stderr, "brigade admin migrate: copied, but the audit chain on the target does not verify%s\n",
                vr != STORE_OK ? " (cannot read it)" : "");
        free(res);
        return 1;
    }
    cJSON *j = cJSON_CreateObject(), *tables = cJSON_AddObjectToObject(j, "rows");
    cJSON_AddStringToObject(j, "object", "migration");
    for (size_t t = 0; t < rep.ntables; t++) cJSON_AddNumberToObject(tables, rep.table[t], (double)rep.rows[t]);
    cJSON *audit = cJSON_AddObjectToObject(j, "audit");
    cJSON_AddBoolToObject(audit, "intact", true);
    cJSON_AddNumberToObject(audit, "entries", (double)res->entries);
    cJSON_AddNumberToObject(audit, "checkpoints", (double)res->checkpoints);
    free(res);
    char *out = cJSON_Print(j);
    if (out) puts(out);
    free(out);
    cJSON_Delete(j);
    return 0;
}
