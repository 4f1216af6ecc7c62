/* trace_rows.c — what SQLite charges for storing a trace, by how the
 * traces are laid out in rows (docs/benchmarks.md, session 10; run by
 * bench/trace_rows.sh under callgrind, which counts the instructions).
 *
 *   trace_rows MODE ROWS [PER_COMMIT]
 *
 * Writes ROWS traces shaped like brigade's (a 573-byte blob, a 32-hex id
 * beginning with its time, two 28-character owner ids) into a fresh WAL
 * database in a temp dir, with the store writer's pragmas, PER_COMMIT
 * traces per transaction (default 64). MODE:
 *   indexed      one row per trace and the (trace_id, tenant_id) index, as
 *                the traces table before packs (time-ordered ids)
 *   random       the same with random ids
 *   noindex      one row per trace, no index
 *   multi16      one row per trace, 16 rows per INSERT statement, indexed
 *   pack64       one row per 64 traces (their bytes concatenated), no index
 *   pack256      one row per 256 traces
 * synchronous is OFF: the fsync is the same for every layout, and not an
 * instruction. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOB_LEN 573

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "trace_rows: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) die(db, sql);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: trace_rows indexed|random|noindex|multi16|pack64|pack256 ROWS [PER_COMMIT]\n");
        return 2;
    }
    const char *mode = argv[1];
    long rows = atol(argv[2]), per_commit = argc > 3 ? atol(argv[3]) : 64;
    int random_ids = strcmp(mode, "random") == 0;
    int indexed = random_ids || strcmp(mode, "indexed") == 0 || strcmp(mode, "multi16") == 0;
    int per_stmt = strcmp(mode, "multi16") == 0 ? 16 : 1;
    int pack = strcmp(mode, "pack64") == 0 ? 64 : strcmp(mode, "pack256") == 0 ? 256 : 0;
    if (rows <= 0 || per_commit <= 0 || (!indexed && !pack && strcmp(mode, "noindex") != 0)) {
        fprintf(stderr, "trace_rows: bad arguments\n");
        return 2;
    }

    char dir[] = "/tmp/brigade-trace-rows.XXXXXX", path[64];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/t.db", dir);
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL))
        die(db, "open");
    exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -32768;"
             " PRAGMA secure_delete = ON;");
    exec(db, "CREATE TABLE traces (seq INTEGER PRIMARY KEY, trace_id TEXT NOT NULL, tenant_id TEXT NOT NULL,"
             " user_id TEXT NOT NULL DEFAULT '', start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
             " root_name TEXT NOT NULL, status INTEGER NOT NULL, span_count INTEGER NOT NULL,"
             " spans BLOB NOT NULL)");
    if (indexed) exec(db, "CREATE INDEX traces_trace ON traces (trace_id, tenant_id)");

    char sql[4096];
    int off = snprintf(sql, sizeof sql, "INSERT INTO traces (seq, trace_id, tenant_id, user_id, start_ns,"
                                        " end_ns, root_name, status, span_count, spans) VALUES ");
    for (int r = 0; r < per_stmt; r++)
        off += snprintf(sql + off, sizeof sql - (size_t)off, "%s(?,?,?,?,?,?,?,?,?,?)", r ? "," : "");
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL)) die(db, "prepare");

    size_t cap = (size_t)BLOB_LEN * (pack ? (size_t)pack : 1);
    unsigned char *blob = malloc(cap);
    for (size_t i = 0; i < cap; i++) blob[i] = (unsigned char)rng();
    long per_row = pack ? pack : 1, seq = 0, in_stmt = 0;
    for (long i = 0; i < rows; i += per_row) {
        if (i % per_commit == 0) exec(db, "BEGIN");
        char id[40];   /* 32 hex; room for what the compiler cannot rule out */
        uint64_t tail = rng();
        if (random_ids) snprintf(id, sizeof id, "%016llx%016llx", (unsigned long long)rng(), (unsigned long long)tail);
        else snprintf(id, sizeof id, "%012llx%020llx", 1700000000000ull + (unsigned long long)i / 17,
                      (unsigned long long)(tail >> 16));
        int k = (int)in_stmt * 10;
        seq += 3 * per_row;
        sqlite3_bind_int64(s, k + 1, seq);
        sqlite3_bind_text(s, k + 2, pack ? "" : id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, k + 3, "ten_0b8e5f0e5d0c4c599a7b3f1f", -1, SQLITE_STATIC);
        sqlite3_bind_text(s, k + 4, "usr_3c7d1e9a2b4f4e8d8a6c5d9e", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, k + 5, 1700000000000000000LL + i * 1000);
        sqlite3_bind_int64(s, k + 6, 1700000000000000000LL + i * 1000 + 500);
        sqlite3_bind_text(s, k + 7, "POST /v1/chat/completions", -1, SQLITE_STATIC);
        sqlite3_bind_int(s, k + 8, 0);
        sqlite3_bind_int64(s, k + 9, 3 * per_row);
        sqlite3_bind_blob(s, k + 10, blob, (int)(BLOB_LEN * per_row), SQLITE_STATIC);
        if (++in_stmt == per_stmt) {
            if (sqlite3_step(s) != SQLITE_DONE) die(db, "insert");
            sqlite3_reset(s);
            in_stmt = 0;
        }
        if ((i + per_row) % per_commit == 0 || i + per_row >= rows) exec(db, "COMMIT");
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(blob);
    char wal[80], shm[80];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    unlink(path);
    unlink(wal);
    unlink(shm);
    rmdir(dir);
    return 0;
}
