/* audit_cli.c — `brigade audit`: check the audit log end to end, print its
 * head (to publish elsewhere, and check a later log against), and print the
 * public key its checkpoints are signed with.
 *
 * It reads the database as a second SQLite connection, so it works while
 * the server runs (WAL: one consistent snapshot, the server is not
 * blocked). It never writes an audit entry or a key. */
#include "app/cli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "obs/audit.h"
#include "obs/audit_chain.h"
#include "store/store.h"

static const char audit_usage[] =
    "usage: brigade audit COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  verify   check every entry's hash, the chain linking them, and the signed,\n"
    "           chained checkpoints and their bound; name each modified, deleted,\n"
    "           inserted or reordered entry\n"
    "  head     verify, then print the log's head (its newest checkpoint: seq, hash,\n"
    "           signature) as JSON, to publish somewhere the server cannot write\n"
    "  pubkey   print the Ed25519 public key the checkpoints are signed with (hex);\n"
    "           creates the key if the data directory has none yet\n"
    "\n"
    "Options:\n"
    "  --data-dir DIR   the server's data directory (default ./brigade-data)\n"
    "  --config FILE    the server's configuration: its store (a PostgreSQL store is\n"
    "                   read at its url) and the checkpoint bound\n"
    "                   (observability.audit) of a log with no checkpoint to say it\n"
    "  --pubkey HEX     check signatures against this public key (64 hex digits, as\n"
    "                   printed by `pubkey` earlier) instead of the key file in DIR,\n"
    "                   which someone with write access could replace\n"
    "  --head FILE      verify: the log must still hold this head (printed by `head`\n"
    "                   earlier): detects a log cut back to before it\n"
    "  --json           verify: print the result as JSON\n"
    "  --help           this text\n"
    "\n"
    "Works while `brigade serve` runs on the same directory.\n"
    "Exit status: 0 intact, 1 tampered (or head: no checkpoint yet), 2 usage error,\n"
    "3 the log could not be read.\n";

typedef struct audit_cli_opts {
    const char *data_dir, *pin, *config, *head_file;
    bool json;
} audit_cli_opts;

/* The public key: pinned, else the key file (NULL with a warning if none). */
static bool audit_cli_key(const audit_cli_opts *o, unsigned char pin[32], audit_key *key,
                          const unsigned char **pk)
{
    char err[1024];
    if (o->pin && audit_from_hex(o->pin, pin, 32) != 0) {
        fprintf(stderr, "brigade audit: --pubkey must be 64 hex digits\n");
        return false;
    }
    bool has_file_key = audit_key_load(o->data_dir, false, key, err, sizeof err) == 0;
    *pk = o->pin ? pin : has_file_key ? key->pk : NULL;
    if (!o->pin && !has_file_key)
        fprintf(stderr, "brigade audit: warning: no key (%s): checkpoint signatures are NOT checked\n", err);
    if (o->pin && has_file_key && memcmp(pin, key->pk, 32) != 0)
        fprintf(stderr, "brigade audit: warning: the key file in %s is not the pinned key\n", o->data_dir);
    return true;
}

/* A published head: parsed, and its signature checked with pk. 0, 2 (usage). */
static int audit_cli_read_head(const char *file, const unsigned char *pk, audit_checkpoint *head)
{
    char err[256], buf[8192];
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "brigade audit: cannot read --head %s\n", file);
        return 2;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool too_long = !feof(f);
    fclose(f);
    buf[n] = '\0';
    if (too_long || audit_head_parse(buf, head, err, sizeof err) != 0) {
        fprintf(stderr, "brigade audit: --head %s: %s\n", file, too_long ? "too long" : err);
        return 2;
    }
    if (!pk) {
        fprintf(stderr, "brigade audit: --head needs the public key (--pubkey, or the key file)\n");
        return 2;
    }
    if (!audit_checkpoint_valid(pk, head)) {
        fprintf(stderr, "brigade audit: --head %s: its signature does not verify with the key "
                        "(another log's head, or altered)\n", file);
        return 2;
    }
    return 0;
}

/* Verify the log in o->data_dir; *res filled. 0, or an exit status. */
static int audit_cli_run(const audit_cli_opts *o, audit_verify_result *res, const unsigned char **pk_out)
{
    static unsigned char pin[32];
    static audit_key key;
    char path[4200], err[1024];
    struct stat sb;
    /* the configuration's store: SQLite in the data directory, or the
     * PostgreSQL database it names (its url read here, freed below) */
    store_backend backend = {.kind = STORE_BACKEND_SQLITE};
    char *pg_url = NULL;
    audit_verify_opts vo = {0};
    if (o->config) {
        brigade_config cfg;
        if (config_load_file(o->config, &cfg, err, sizeof err) != 0) {
            fprintf(stderr, "brigade audit: %s\n", err);
            return 2;
        }
        vo.every = cfg.observability.audit_checkpoint_every;
        vo.interval_s = cfg.observability.audit_checkpoint_interval_s;
        if (cfg.store.kind == STORE_CFG_POSTGRES) {
            backend = (store_backend){.kind = STORE_BACKEND_POSTGRES, .pool_size = 1};
            pg_url = cfg.store.url;
            cfg.store.url = NULL;
        }
        config_free(&cfg);
    }
    snprintf(path, sizeof path, "%s/brigade.db", o->data_dir);
    if (!pg_url && stat(path, &sb) != 0) {
        fprintf(stderr, "brigade audit: no database at %s (a PostgreSQL store: add --config FILE)\n", path);
        return 3;
    }
    const unsigned char *pk;
    if (!audit_cli_key(o, pin, &key, &pk)) { free(pg_url); return 2; }
    *pk_out = pk;
    vo.pk = pk;
    audit_checkpoint head;
    if (o->head_file) {
        int rc = audit_cli_read_head(o->head_file, pk, &head);
        if (rc) { free(pg_url); return rc; }
        vo.head = &head;
    }
    backend.url = pg_url;
    store *st = store_open_backend(&backend, o->data_dir, err, sizeof err);
    free(pg_url);
    if (!st) {
        fprintf(stderr, "brigade audit: store: %s\n", err);
        return 3;
    }
    store_status r = audit_verify_ex(st, &vo, res);
    store_close(st);
    if (r != STORE_OK) {
        fprintf(stderr, "brigade audit: could not read the audit log: %s\n", store_status_text(r));
        return 3;
    }
    return 0;
}

static void audit_cli_print(const audit_verify_result *res, const unsigned char *pk, bool json)
{
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "intact", res->intact);
        cJSON_AddNumberToObject(o, "entries", (double)res->entries);
        cJSON_AddNumberToObject(o, "first_seq", (double)res->first_seq);
        cJSON_AddNumberToObject(o, "last_seq", (double)res->last_seq);
        cJSON_AddNumberToObject(o, "checkpoints", (double)res->checkpoints);
        cJSON_AddNumberToObject(o, "last_checkpoint_seq", (double)res->last_checkpoint_seq);
        cJSON_AddBoolToObject(o, "signatures_checked", pk != NULL);
        audit_problems_json(o, res);
        char *s = cJSON_Print(o);
        if (s) puts(s);
        free(s);
        cJSON_Delete(o);
        return;
    }
    printf("audit log: %llu entr%s", (unsigned long long)res->entries, res->entries == 1 ? "y" : "ies");
    if (res->entries)
        printf(" (seq %lld..%lld)", (long long)res->first_seq, (long long)res->last_seq);
    printf(", %llu checkpoint%s", (unsigned long long)res->checkpoints, res->checkpoints == 1 ? "" : "s");
    if (res->last_checkpoint_seq) printf(" (last signs seq %lld)", (long long)res->last_checkpoint_seq);
    printf("\n");
    if (!pk) printf("signatures: not checked (no key)\n");
    for (size_t i = 0; i < res->n_problems; i++)
        printf("TAMPERED %s at seq %lld: %s\n", audit_problem_kind_name(res->problems[i].kind),
               (long long)res->problems[i].seq, res->problems[i].message);
    if (res->more_problems)
        printf("… and %llu more problems\n", (unsigned long long)res->more_problems);
    for (size_t i = 0; i < res->n_warnings; i++) printf("warning: %s\n", res->warnings[i]);
    if (res->intact)
        printf("intact\n");
    else
        printf("tampered: %zu problem%s found\n", res->n_problems + (size_t)res->more_problems,
               res->n_problems + res->more_problems == 1 ? "" : "s");
}

static int audit_cli_verify(const audit_cli_opts *o)
{
    audit_verify_result *res = malloc(sizeof *res);
    if (!res) return 3;
    const unsigned char *pk = NULL;
    int rc = audit_cli_run(o, res, &pk);
    if (rc == 0) {
        audit_cli_print(res, pk, o->json);
        rc = res->intact ? 0 : 1;
    }
    free(res);
    return rc;
}

static int audit_cli_head(const audit_cli_opts *o)
{
    audit_verify_result *res = malloc(sizeof *res);
    if (!res) return 3;
    const unsigned char *pk = NULL;
    int rc = audit_cli_run(o, res, &pk);
    if (rc == 0 && !pk) {
        fprintf(stderr, "brigade audit: no key: a head cannot be checked without one\n");
        rc = 1;
    } else if (rc == 0 && !res->intact) {
        fprintf(stderr, "brigade audit: the log is not intact; no head to publish:\n");
        for (size_t i = 0; i < res->n_problems; i++)
            fprintf(stderr, "TAMPERED %s at seq %lld: %s\n",
                    audit_problem_kind_name(res->problems[i].kind),
                    (long long)res->problems[i].seq, res->problems[i].message);
        rc = 1;
    } else if (rc == 0 && !res->newest.seq) {
        fprintf(stderr, "brigade audit: the log has no checkpoint yet: nothing to publish\n");
        rc = 1;
    } else if (rc == 0) {
        for (size_t i = 0; i < res->n_warnings; i++)
            fprintf(stderr, "brigade audit: warning: %s\n", res->warnings[i]);
        cJSON *h = audit_head_json(&res->newest, pk);
        char *s = cJSON_Print(h);
        if (s) puts(s);
        free(s);
        cJSON_Delete(h);
    }
    free(res);
    return rc;
}

int app_audit_main(int argc, char **argv)
{
    audit_cli_opts o = {.data_dir = "./brigade-data"};
    const char *cmd = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(audit_usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
            o.data_dir = argv[++i];
        } else if (strcmp(argv[i], "--pubkey") == 0 && i + 1 < argc) {
            o.pin = argv[++i];
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            o.config = argv[++i];
        } else if (strcmp(argv[i], "--head") == 0 && i + 1 < argc) {
            o.head_file = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            o.json = true;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "brigade audit: unknown option or missing value \"%s\"\n\n%s", argv[i],
                    audit_usage);
            return 2;
        } else if (!cmd) {
            cmd = argv[i];
        } else {
            fprintf(stderr, "brigade audit: unexpected argument \"%s\"\n\n%s", argv[i], audit_usage);
            return 2;
        }
    }
    if (!cmd) {
        fputs(audit_usage, stderr);
        return 2;
    }
    if (!o.data_dir[0]) {
        fprintf(stderr, "brigade audit: --data-dir must not be empty\n");
        return 2;
    }
    if (strcmp(cmd, "verify") == 0) return audit_cli_verify(&o);
    if (strcmp(cmd, "head") == 0) {
        if (o.json || o.head_file) {
            fprintf(stderr, "brigade audit: head takes --data-dir, --config and --pubkey\n");
            return 2;
        }
        return audit_cli_head(&o);
    }
    if (strcmp(cmd, "pubkey") == 0) {
        if (o.pin || o.json || o.config || o.head_file) {
            fprintf(stderr, "brigade audit: pubkey takes only --data-dir\n");
            return 2;
        }
        char hex[65], err[1024];
        struct stat sb;
        if (stat(o.data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "brigade audit: no data directory %s\n", o.data_dir);
            return 1;
        }
        if (obs_audit_pubkey(o.data_dir, hex, err, sizeof err) != 0) {
            fprintf(stderr, "brigade audit: %s\n", err);
            return 1;
        }
        printf("%s\n", hex);
        return 0;
    }
    fprintf(stderr, "brigade audit: unknown command \"%s\"\n\n%s", cmd, audit_usage);
    return 2;
}
