/* usage_cli.c — `brigade usage`: the usage report of GET /v1/usage on the
 * command line, for one tenant or every tenant, as an aligned table, CSV or
 * JSON. It reads the store as a second SQLite connection, or the PostgreSQL
 * database the configuration names (--config), so it works while the server
 * runs (rows the server has not flushed yet, at most STORE_USAGE_FLUSH_MS
 * old, are not in it). The CSV is written by the same function as the API's
 * format=csv. */
#include "app/cli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "config/config.h"
#include "identity/identity.h"
#include "store/store.h"

static const char usage_usage[] =
    "usage: brigade usage [OPTIONS]\n"
    "\n"
    "Tokens and cost from the usage ledger, grouped by day, model or user.\n"
    "\n"
    "Options:\n"
    "  --data-dir DIR              the server's data directory (default ./brigade-data)\n"
    "  --config FILE               the server's configuration: its store (a PostgreSQL\n"
    "                              store is read at its url; default: SQLite in DIR)\n"
    "  --tenant ID                 one tenant (default: every tenant, one block each)\n"
    "  --user ID                   one user of that tenant (needs --tenant)\n"
    "  --from DATE                 from this UTC day (YYYY-MM-DD) or unix second, inclusive\n"
    "  --to DATE                   up to this UTC day or unix second, exclusive\n"
    "  --group-by day|model|user   default day\n"
    "  --format table|csv|json     default table; csv is RFC 4180 with a header line,\n"
    "                              the same bytes as GET /v1/usage?format=csv\n"
    "  --help                      this text\n"
    "\n"
    "Works while `brigade serve` runs on the same directory.\n";

typedef enum usage_fmt { FMT_TABLE, FMT_CSV, FMT_JSON } usage_fmt;

typedef struct usage_opts {
    const char *data_dir, *config, *tenant, *user;
    usage_query q;
    usage_fmt fmt;
} usage_opts;

static int usage_bad(const char *fmt, const char *v)
{
    fprintf(stderr, "brigade usage: ");
    fprintf(stderr, fmt, v);
    fprintf(stderr, "\n(brigade usage --help)\n");
    return 2;
}

static int usage_parse(int argc, char **argv, usage_opts *o)
{
    memset(o, 0, sizeof *o);
    o->data_dir = "./brigade-data";
    o->q.group_by = USAGE_GROUP_DAY;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_usage, stdout);
            return 1;
        }
        if (a[0] != '-') return usage_bad("unexpected argument \"%s\"", a);
        if (i + 1 >= argc) return usage_bad("%s needs a value", a);
        const char *v = argv[++i];
        if (strcmp(a, "--data-dir") == 0) {
            if (!*v) return usage_bad("--data-dir must not be empty%s", "");
            o->data_dir = v;
        } else if (strcmp(a, "--config") == 0) {
            if (!*v) return usage_bad("--config must not be empty%s", "");
            o->config = v;
        } else if (strcmp(a, "--tenant") == 0) {
            if (!*v || strlen(v) >= ID_MAX) return usage_bad("--tenant must be a tenant id, not \"%s\"", v);
            o->tenant = v;
        } else if (strcmp(a, "--user") == 0) {
            if (!*v || strlen(v) >= ID_MAX) return usage_bad("--user must be a user id, not \"%s\"", v);
            o->user = v;
        } else if (strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0) {
            int64_t t = api_usage_parse_time(v);
            if (t < 0) return usage_bad("\"%s\" is not a date YYYY-MM-DD (UTC) or unix seconds", v);
            if (a[2] == 'f') o->q.from = t; else o->q.to = t;
        } else if (strcmp(a, "--group-by") == 0) {
            if (strcmp(v, "day") == 0) o->q.group_by = USAGE_GROUP_DAY;
            else if (strcmp(v, "model") == 0) o->q.group_by = USAGE_GROUP_MODEL;
            else if (strcmp(v, "user") == 0) o->q.group_by = USAGE_GROUP_USER;
            else return usage_bad("--group-by must be day, model or user, not \"%s\"", v);
        } else if (strcmp(a, "--format") == 0) {
            if (strcmp(v, "table") == 0) o->fmt = FMT_TABLE;
            else if (strcmp(v, "csv") == 0) o->fmt = FMT_CSV;
            else if (strcmp(v, "json") == 0) o->fmt = FMT_JSON;
            else return usage_bad("--format must be table, csv or json, not \"%s\"", v);
        } else {
            return usage_bad("unknown option \"%s\"", a);
        }
    }
    if (o->user && !o->tenant) return usage_bad("--user needs --tenant%s", "");
    if (o->q.from && o->q.to && o->q.from >= o->q.to)
        return usage_bad("--to must be after --from (the range is [from, to))%s", "");
    o->q.user_id = o->user;
    return 0;
}

/* The report of one tenant, appended to the output of its format. */
typedef struct usage_out {
    usage_fmt fmt;
    bool several;              /* every tenant: a tenant column */
    bool header_done;
    cJSON *json;               /* FMT_JSON: the data array */
    int64_t requests, in, out, cost;
} usage_out;

static void usage_emit(usage_out *u, const char *tenant_id, const usage_row *rows, size_t n)
{
    if (u->fmt == FMT_CSV) {
        char *csv = api_usage_csv(rows, n, u->several ? tenant_id : NULL, !u->header_done);
        u->header_done = true;
        if (csv) fputs(csv, stdout);
        free(csv);
        return;
    }
    if (u->fmt == FMT_JSON) {
        for (size_t i = 0; i < n; i++) {
            cJSON *o = api_usage_json_row(&rows[i]);
            if (u->several) cJSON_AddStringToObject(o, "tenant_id", tenant_id);
            cJSON_AddItemToArray(u->json, o);
        }
        return;
    }
    if (!u->header_done) {
        printf("%-*s%-28s %10s %14s %14s %16s\n", u->several ? 30 : 0, u->several ? "TENANT" : "",
               "GROUP", "REQUESTS", "INPUT_TOKENS", "OUTPUT_TOKENS", "COST_USD");
        u->header_done = true;
    }
    for (size_t i = 0; i < n; i++) {
        printf("%-*s%-28s %10lld %14lld %14lld %16.6f\n", u->several ? 30 : 0,
               u->several ? tenant_id : "", rows[i].group, (long long)rows[i].requests,
               (long long)rows[i].input_tokens, (long long)rows[i].output_tokens,
               api_usd(rows[i].cost_nusd));
        u->requests += rows[i].requests;
        u->in += rows[i].input_tokens;
        u->out += rows[i].output_tokens;
        u->cost += rows[i].cost_nusd;
    }
}

static int usage_tenant(store *st, identity *id, const usage_opts *o, const char *tenant_id,
                        usage_out *u)
{
    scope sc;
    if (identity_cli_tenant_scope(id, tenant_id, &sc) != STORE_OK) {
        fprintf(stderr, "brigade usage: no tenant %s\n", tenant_id);
        return 1;
    }
    if (o->user) {
        user_rec ur;
        if (store_user_get(st, &sc, o->user, &ur) != STORE_OK) {
            fprintf(stderr, "brigade usage: no user %s in tenant %s\n", o->user, tenant_id);
            return 1;
        }
    }
    usage_row *rows = NULL;
    size_t n = 0;
    store_status r = store_usage_query(st, &sc, &o->q, &rows, &n);
    if (r != STORE_OK) {
        fprintf(stderr, "brigade usage: %s: %s\n", tenant_id, store_status_text(r));
        return 1;
    }
    usage_emit(u, tenant_id, rows, n);
    free(rows);
    return 0;
}

int app_usage_main(int argc, char **argv)
{
    usage_opts o;
    int pr = usage_parse(argc, argv, &o);
    if (pr == 1) return 0;        /* --help */
    if (pr != 0) return pr;
    char path[4200], err[1024];
    struct stat sb;
    /* the configuration's store: SQLite in the data directory, or the
     * PostgreSQL database it names (its url kept until opened) */
    store_backend backend = {.kind = STORE_BACKEND_SQLITE};
    char *pg_url = NULL;
    if (o.config) {
        brigade_config cfg;
        if (config_load_file(o.config, &cfg, err, sizeof err) != 0) {
            fprintf(stderr, "brigade usage: %s\n", err);
            return 2;
        }
        if (cfg.store.kind == STORE_CFG_POSTGRES) {
            backend = (store_backend){.kind = STORE_BACKEND_POSTGRES, .pool_size = 1};
            pg_url = cfg.store.url;
            cfg.store.url = NULL;
        }
        config_free(&cfg);
    }
    snprintf(path, sizeof path, "%s/brigade.db", o.data_dir);
    if (!pg_url && stat(path, &sb) != 0) {
        fprintf(stderr, "brigade usage: no database at %s (a PostgreSQL store: add --config FILE)\n", path);
        return 1;
    }
    backend.url = pg_url;
    store *st = store_open_backend(&backend, o.data_dir, err, sizeof err);
    free(pg_url);
    if (!st) {
        fprintf(stderr, "brigade usage: store: %s\n", err);
        return 1;
    }
    identity *id = identity_open(st, o.data_dir, NULL, err, sizeof err);
    if (!id) {
        fprintf(stderr, "brigade usage: identity: %s\n", err);
        store_close(st);
        return 1;
    }
    usage_out u = {.fmt = o.fmt, .several = o.tenant == NULL};
    if (o.fmt == FMT_JSON) u.json = cJSON_CreateArray();
    int rc = 0;
    if (o.tenant) {
        rc = usage_tenant(st, id, &o, o.tenant, &u);
    } else {
        scope admin;
        identity_cli_scope(id, &admin);
        tenant_rec *ts = NULL;
        size_t n = 0;
        store_status r = store_tenant_list(st, &admin, &ts, &n);
        if (r != STORE_OK) {
            fprintf(stderr, "brigade usage: tenant list: %s\n", store_status_text(r));
            rc = 1;
        }
        for (size_t i = 0; rc == 0 && i < n; i++) rc = usage_tenant(st, id, &o, ts[i].id, &u);
        store_free_tenants(ts, n);
    }
    if (rc == 0 && o.fmt == FMT_JSON) {
        cJSON *list = api_json_list(u.json, false);   /* takes the array */
        u.json = NULL;
        char *s = cJSON_Print(list);
        if (s) puts(s);
        free(s);
        cJSON_Delete(list);
    } else if (rc == 0 && o.fmt == FMT_TABLE) {
        if (!u.header_done) printf("no usage\n");
        else
            printf("%-*s%-28s %10lld %14lld %14lld %16.6f\n", u.several ? 30 : 0, "", "TOTAL",
                   (long long)u.requests, (long long)u.in, (long long)u.out, api_usd(u.cost));
    }
    cJSON_Delete(u.json);
    identity_close(id);
    store_close(st);
    return rc;
}
