/* admin_cli.c — `brigade admin`: create tenants, users and keys straight
 * against the store, for bootstrapping a deployment before any HTTP admin
 * exists. It acts with the authority of whoever can read the data
 * directory, and refuses to run while `brigade serve` holds that directory
 * (the server's identity cache would not see the change; use the HTTP API
 * then). Keys are printed once and never again. Each change is audited
 * like its HTTP twin, with the credential "cli". */
#include "app/app.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "obs/audit.h"
#include "util/log.h"

static const char admin_usage[] =
    "usage: brigade admin [--data-dir DIR] [--config FILE] COMMAND\n"
    "\n"
    "Commands:\n"
    "  tenant create NAME                       a tenant and its admin key (bk_adm_…)\n"
    "  tenant list\n"
    "  user create --tenant ID [--tier T] [--name DISPLAY] EXTERNAL_ID\n"
    "  user list --tenant ID\n"
    "  key create --tenant ID --user ID         a user key (bk_usr_…)\n"
    "  key revoke --tenant ID KEY_ID\n"
    "  vault rotate-key                         a new vault key; every connection re-sealed\n"
    "                                           (runs while brigade serve does)\n"
    "  migrate --from sqlite:DIR --to postgres:URL   move the data into an empty PostgreSQL\n"
    "                                           database; row counts and the audit chain checked\n"
    "  backup FILE                              a consistent copy of the database into a new\n"
    "                                           FILE (0600), while brigade serve runs; the key\n"
    "                                           files are not in it (docs/operations.md)\n"
    "\n"
    "Results are printed as JSON; a key is shown once and only its hash is kept.\n"
    "Stop `brigade serve` on the same data directory first (or use the HTTP API).\n"
    "  --data-dir DIR   default ./brigade-data\n"
    "  --config FILE    used to check tier names\n";

typedef struct admin_env {
    brigade_config cfg;
    store         *store;
    identity      *identity;
    int            lock_fd;
} admin_env;

static void admin_print(cJSON *o)
{
    char *s = cJSON_Print(o);
    if (s) puts(s);
    free(s);
    cJSON_Delete(o);
}

static int admin_fail_store(const char *what, store_status st)
{
    fprintf(stderr, "brigade admin: %s: %s\n", what, store_status_text(st));
    return 1;
}

static int admin_open(admin_env *env, const char *data_dir, const char *config_path)
{
    char err[1024];
    if (!config_path) config_defaults(&env->cfg);
    else if (config_load_file(config_path, &env->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "brigade admin: %s\n", err);
        return -1;
    }
    if (data_dir) {
        free(env->cfg.data_dir);
        env->cfg.data_dir = strdup(data_dir);
    }
    env->lock_fd = app_lock_data_dir(env->cfg.data_dir, err, sizeof err);
    if (env->lock_fd < 0) {
        fprintf(stderr, "brigade admin: %s\nbrigade admin: stop it first, or use the HTTP API.\n", err);
        return -1;
    }
    env->store = store_open_backend(&(store_backend){.kind = (store_backend_kind)env->cfg.store.kind,
        .url = env->cfg.store.url, .pool_size = env->cfg.store.pool_size}, env->cfg.data_dir, err, sizeof err);
    if (!env->store) {
        fprintf(stderr, "brigade admin: store: %s\n", err);
        return -1;
    }
    env->identity = identity_open(env->store, env->cfg.data_dir, NULL, err, sizeof err);
    if (!env->identity) {
        fprintf(stderr, "brigade admin: identity: %s\n", err);
        return -1;
    }
    identity_set_default_tier(env->identity, env->cfg.default_tier);
    /* no sealer: an admin command is short, and its close seals */
    obs_audit_open(env->store, env->cfg.observability.audit_checkpoint_every,
                   env->cfg.observability.audit_checkpoint_interval_s, false);
    return 0;
}

static void admin_close(admin_env *env)
{
    if (env->identity) identity_close(env->identity);
    if (env->store) obs_audit_close(env->store);   /* the closing checkpoint */
    if (env->store) store_close(env->store);
    if (env->lock_fd > 0) close(env->lock_fd);
    config_free(&env->cfg);
}

/* Options after the COMMAND words: --tenant, --user, --tier, --name. */
typedef struct admin_opts {
    const char *tenant, *user, *tier, *name;
    const char *arg;    /* the one positional argument, if any */
} admin_opts;

static int admin_parse_opts(int argc, char **argv, admin_opts *o)
{
    static const struct option lopts[] = {
        {"tenant", required_argument, NULL, 'T'}, {"user", required_argument, NULL, 'u'},
        {"tier", required_argument, NULL, 't'},   {"name", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "+", lopts, NULL)) != -1) {
        switch (c) {
        case 'T': o->tenant = optarg; break;
        case 'u': o->user = optarg; break;
        case 't': o->tier = optarg; break;
        case 'n': o->name = optarg; break;
        default: return -1;
        }
    }
    if (optind < argc) o->arg = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "brigade admin: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    return 0;
}

static int admin_need(const char *v, const char *what)
{
    if (v && *v) return 0;
    fprintf(stderr, "brigade admin: missing %s\n\n%s", what, admin_usage);
    return -1;
}

static int admin_run(admin_env *env, const char *noun, const char *verb, admin_opts *o)
{
    scope sc;
    api_env fake;   /* the JSON shapes need the configuration (tiers, limits) */
    memset(&fake, 0, sizeof fake);
    fake.cfg = env->cfg;
    if (strcmp(noun, "tenant") == 0 && strcmp(verb, "create") == 0) {
        if (admin_need(o->arg, "the tenant NAME") != 0) return 2;
        identity_cli_scope(env->identity, &sc);
        tenant_rec t;
        char key[KEY_MAX];
        obs_audit_act a;   /* every act and its entry in one transaction */
        obs_audit_act_begin(&a, env->store, &sc, "", "tenant.create", NULL, NULL);
        obs_audit_act_tenant(&a, t.id);
        obs_audit_act_target(&a, t.id);
        store_status st = identity_create_tenant(env->identity, &sc, o->arg, NULL, &t, key);
        obs_audit_act_end(&a);
        if (st != STORE_OK) return admin_fail_store("tenant create", st);
        cJSON *j = api_json_tenant(&fake, &t);
        cJSON_AddStringToObject(j, "admin_key", key);
        tenant_rec_free(&t);
        admin_print(j);
        return 0;
    }
    if (strcmp(noun, "tenant") == 0 && strcmp(verb, "list") == 0) {
        identity_cli_scope(env->identity, &sc);
        tenant_rec *ts;
        size_t n;
        store_status st = store_tenant_list(env->store, &sc, &ts, &n);
        if (st != STORE_OK) return admin_fail_store("tenant list", st);
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, api_json_tenant(&fake, &ts[i]));
        store_free_tenants(ts, n);
        admin_print(arr);
        return 0;
    }
    if (admin_need(o->tenant, "--tenant ID") != 0) return 2;
    if (identity_cli_tenant_scope(env->identity, o->tenant, &sc) != 0) {
        fprintf(stderr, "brigade admin: no tenant %s\n", o->tenant);
        return 1;
    }
    if (strcmp(noun, "user") == 0 && strcmp(verb, "create") == 0) {
        if (admin_need(o->arg, "the user's EXTERNAL_ID") != 0) return 2;
        if (o->tier && !config_find_tier(&env->cfg, o->tier)) {
            fprintf(stderr, "brigade admin: no tier named \"%s\" in the configuration\n", o->tier);
            return 2;
        }
        user_rec u;
        obs_audit_act a;
        obs_audit_act_begin(&a, env->store, &sc, NULL, "user.create", NULL, NULL);
        obs_audit_act_target(&a, u.id);
        store_status st = identity_create_user(env->identity, &sc, o->arg, o->tier, o->name, &u);
        obs_audit_act_end(&a);
        if (st != STORE_OK) return admin_fail_store("user create", st);
        admin_print(api_json_user(&fake, &u));
        return 0;
    }
    if (strcmp(noun, "user") == 0 && strcmp(verb, "list") == 0) {
        user_rec *us;
        size_t n;
        store_status st = store_user_list(env->store, &sc, NULL, 100000, &us, &n);
        if (st != STORE_OK) return admin_fail_store("user list", st);
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, api_json_user(&fake, &us[i]));
        free(us);
        admin_print(arr);
        return 0;
    }
    if (strcmp(noun, "key") == 0 && strcmp(verb, "create") == 0) {
        if (admin_need(o->user, "--user ID") != 0) return 2;
        key_rec k;
        char key[KEY_MAX];
        obs_audit_act a;
        obs_audit_act_begin(&a, env->store, &sc, NULL, "key.create", NULL, NULL);
        obs_audit_act_target(&a, k.id);
        obs_audit_act_detail(&a, "user_id", k.user_id);
        obs_audit_act_detail(&a, "prefix", k.prefix);
        store_status st = identity_create_user_key(env->identity, &sc, o->user, &k, key);
        obs_audit_act_end(&a);
        if (st != STORE_OK) return admin_fail_store("key create", st);
        cJSON *j = api_json_key(&k);
        cJSON_AddStringToObject(j, "key", key);
        admin_print(j);
        return 0;
    }
    if (strcmp(noun, "key") == 0 && strcmp(verb, "revoke") == 0) {
        if (admin_need(o->arg, "the KEY_ID") != 0) return 2;
        obs_audit_act a;
        obs_audit_act_begin(&a, env->store, &sc, NULL, "key.revoke", o->arg, NULL);
        store_status st = identity_revoke_key(env->identity, &sc, o->arg);
        obs_audit_act_end(&a);
        if (st == STORE_CONFLICT) {
            fprintf(stderr, "brigade admin: key revoke: this is the tenant's last active admin key; "
                            "create another (POST /v1/tenants/{id}/admin-keys) before revoking it\n");
            return 1;
        }
        if (st != STORE_OK) return admin_fail_store("key revoke", st);
        printf("{\"id\": \"%s\", \"revoked\": true}\n", o->arg);
        return 0;
    }
    fprintf(stderr, "brigade admin: unknown command \"%s %s\"\n\n%s", noun, verb, admin_usage);
    return 2;
}

/* The data directory of the commands that run beside a server, without
 * its lock: --data-dir, else the config's (or the default). */
static int admin_data_dir(const char *data_dir, const char *config_path, char *out, size_t outlen)
{
    if (data_dir) {
        snprintf(out, outlen, "%s", data_dir);
        return 0;
    }
    brigade_config cfg;
    char err[1024];
    if (!config_path) config_defaults(&cfg);
    else if (config_load_file(config_path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "brigade admin: %s\n", err);
        return -1;
    }
    snprintf(out, outlen, "%s", cfg.data_dir);
    config_free(&cfg);
    return 0;
}

int app_admin_main(int argc, char **argv)
{
    const char *data_dir = NULL, *config_path = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(admin_usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
            data_dir = argv[++i];
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "brigade admin: unknown option \"%s\"\n\n%s", argv[i], admin_usage);
            return 2;
        } else {
            break;
        }
    }
    if (argc - i < 2) {
        fputs(admin_usage, stderr);
        return 2;
    }
    const char *noun = argv[i], *verb = argv[i + 1];
    if (strcmp(noun, "migrate") == 0) return app_admin_migrate(argc - i - 1, argv + i + 1);
    if (strcmp(noun, "backup") == 0) {
        /* without the data dir's lock: a backup is taken while serving */
        if (argc - i != 2) {
            fprintf(stderr, "brigade admin: backup takes one argument, the new FILE\n");
            return 2;
        }
        char dir[4096], err[1024];
        if (admin_data_dir(data_dir, config_path, dir, sizeof dir) != 0) return 1;
        if (config_path) {
            /* the backup copies the SQLite database: a PostgreSQL store is
             * backed up with PostgreSQL's own tools */
            brigade_config cfg;
            if (config_load_file(config_path, &cfg, err, sizeof err) != 0) {
                fprintf(stderr, "brigade admin: %s\n", err);
                return 1;
            }
            bool pg = cfg.store.kind == STORE_CFG_POSTGRES;
            config_free(&cfg);
            if (pg) {
                fprintf(stderr, "brigade admin: backup copies a SQLite store; this configuration's store is "
                                "PostgreSQL (store.kind postgres): back it up with pg_dump "
                                "(docs/operations.md), and the data directory's key files apart\n");
                return 1;
            }
        }
        store_backup_info info;
        if (store_backup(dir, verb, &info, err, sizeof err) != 0) {
            fprintf(stderr, "brigade admin: backup: %s\n", err);
            return 1;
        }
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "object", "backup");
        cJSON_AddStringToObject(j, "file", verb);
        cJSON_AddNumberToObject(j, "pages", (double)info.pages);
        cJSON_AddNumberToObject(j, "bytes", (double)info.bytes);
        admin_print(j);
        return 0;
    }
    for (int k = i + 2; k < argc; k++)
        if (strcmp(argv[k], "-h") == 0 || strcmp(argv[k], "--help") == 0) {
            fputs(admin_usage, stdout);
            return 0;
        }
    if (strcmp(noun, "vault") == 0 && strcmp(verb, "rotate-key") == 0) {
        if (argc - i > 2) {
            fprintf(stderr, "brigade admin: vault rotate-key takes no arguments\n");
            return 2;
        }
        char dir[4096], err[1024];
        if (admin_data_dir(data_dir, config_path, dir, sizeof dir) != 0) return 1;
        /* the configuration's store (a PostgreSQL one holds the sealed rows) */
        brigade_config cfg;
        if (!config_path) config_defaults(&cfg);
        else if (config_load_file(config_path, &cfg, err, sizeof err) != 0) {
            fprintf(stderr, "brigade admin: %s\n", err);
            return 1;
        }
        store_backend b = {.kind = (store_backend_kind)cfg.store.kind, .url = cfg.store.url,
                           .pool_size = cfg.store.pool_size};
        int rc = app_vault_rotate_key(dir, &b);
        config_free(&cfg);
        return rc;
    }
    admin_opts o;
    /* getopt wants argv[0] to be a program name: hand it the verb. */
    if (admin_parse_opts(argc - (i + 1), argv + i + 1, &o) != 0) {
        fputs(admin_usage, stderr);
        return 2;
    }
    admin_env env;
    memset(&env, 0, sizeof env);
    env.lock_fd = -1;
    if (admin_open(&env, data_dir, config_path) != 0) {
        admin_close(&env);
        return 1;
    }
    int rc = admin_run(&env, noun, verb, &o);
    admin_close(&env);
    return rc;
}
