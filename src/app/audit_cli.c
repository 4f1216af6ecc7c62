/* audit_cli.c — `brigade audit`: check the audit log end to end, and print
 * the public key its checkpoints are signed with.
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

#include "obs/audit.h"
#include "obs/audit_chain.h"
#include "store/store.h"

static const char audit_usage[] =
    "usage: brigade audit COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  verify   check every entry's hash, the chain linking them, and the signed\n"
    "           checkpoints; name each modified, deleted, inserted or reordered entry\n"
    "  pubkey   print the Ed25519 public key the checkpoints are signed with (hex);\n"
    "           creates the key if the data directory has none yet\n"
    "\n"
    "Options:\n"
    "  --data-dir DIR   the server's data directory (default ./brigade-data)\n"
    "  --pubkey HEX     verify: check signatures against this public key (64 hex\n"
    "                   digits, as printed by `pubkey` earlier) instead of the key\n"
    "                   file in DIR, which someone with write access could replace\n"
    "  --json           verify: print the result as JSON\n"
    "  --help           this text\n"
    "\n"
    "Works while `brigade serve` runs on the same directory.\n"
    "Exit status of verify: 0 intact, 1 tampered, 2 usage error, 3 the log could\n"
    "not be read.\n";

static int audit_cli_verify(const char *data_dir, const char *pin_hex, bool json)
{
    char path[4200], err[1024];
    struct stat sb;
    snprintf(path, sizeof path, "%s/brigade.db", data_dir);
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "brigade audit: no database at %s\n", path);
        return 3;
    }
    unsigned char pin[32];
    if (pin_hex && audit_from_hex(pin_hex, pin, sizeof pin) != 0) {
        fprintf(stderr, "brigade audit: --pubkey must be 64 hex digits\n");
        return 2;
    }
    audit_key key;
    bool has_file_key = audit_key_load(data_dir, false, &key, err, sizeof err) == 0;
    const unsigned char *pk = pin_hex ? pin : has_file_key ? key.pk : NULL;
    if (!pin_hex && !has_file_key)
        fprintf(stderr, "brigade audit: warning: no key (%s): checkpoint signatures are NOT checked\n", err);
    if (pin_hex && has_file_key && memcmp(pin, key.pk, sizeof pin) != 0)
        fprintf(stderr, "brigade audit: warning: the key file in %s is not the pinned key\n", data_dir);

    store *st = store_open(data_dir, err, sizeof err);
    if (!st) {
        fprintf(stderr, "brigade audit: store: %s\n", err);
        return 3;
    }
    audit_verify_result *res = malloc(sizeof *res);
    if (!res) {
        store_close(st);
        return 3;
    }
    store_status r = audit_verify(st, pk, res);
    store_close(st);
    if (r != STORE_OK) {
        fprintf(stderr, "brigade audit: could not read the audit log: %s\n", store_status_text(r));
        free(res);
        return 3;
    }
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
    } else {
        printf("audit log: %llu entries", (unsigned long long)res->entries);
        if (res->entries)
            printf(" (seq %lld..%lld)", (long long)res->first_seq, (long long)res->last_seq);
        printf(", %llu checkpoints", (unsigned long long)res->checkpoints);
        if (res->last_checkpoint_seq) printf(" (last signs seq %lld)", (long long)res->last_checkpoint_seq);
        printf("\n");
        if (!pk) printf("signatures: not checked (no key)\n");
        for (size_t i = 0; i < res->n_problems; i++)
            printf("TAMPERED %s at seq %lld: %s\n", audit_problem_kind_name(res->problems[i].kind),
                   (long long)res->problems[i].seq, res->problems[i].message);
        if (res->more_problems)
            printf("… and %llu more problems\n", (unsigned long long)res->more_problems);
        if (res->intact) {
            printf("intact\n");
            if (res->last_seq > res->last_checkpoint_seq)
                printf("note: the %lld entries after the last checkpoint are protected by the "
                       "chain only (the server signs at shutdown and every N entries)\n",
                       (long long)(res->last_seq - res->last_checkpoint_seq));
        } else {
            printf("tampered: %zu problem%s found\n", res->n_problems + (size_t)res->more_problems,
                   res->n_problems + res->more_problems == 1 ? "" : "s");
        }
    }
    int rc = res->intact ? 0 : 1;
    free(res);
    return rc;
}

int app_audit_main(int argc, char **argv)
{
    const char *data_dir = "./brigade-data", *pin = NULL, *cmd = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(audit_usage, stdout);
            return 0;
        } else if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
            data_dir = argv[++i];
        } else if (strcmp(argv[i], "--pubkey") == 0 && i + 1 < argc) {
            pin = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
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
    if (!data_dir[0]) {
        fprintf(stderr, "brigade audit: --data-dir must not be empty\n");
        return 2;
    }
    if (strcmp(cmd, "verify") == 0) return audit_cli_verify(data_dir, pin, json);
    if (strcmp(cmd, "pubkey") == 0) {
        if (pin || json) {
            fprintf(stderr, "brigade audit: pubkey takes only --data-dir\n");
            return 2;
        }
        char hex[65], err[1024];
        struct stat sb;
        if (stat(data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "brigade audit: no data directory %s\n", data_dir);
            return 1;
        }
        if (obs_audit_pubkey(data_dir, hex, err, sizeof err) != 0) {
            fprintf(stderr, "brigade audit: %s\n", err);
            return 1;
        }
        printf("%s\n", hex);
        return 0;
    }
    fprintf(stderr, "brigade audit: unknown command \"%s\"\n\n%s", cmd, audit_usage);
    return 2;
}
