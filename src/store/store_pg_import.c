/* store_pg_import.c — moving a deployment from SQLite to PostgreSQL
 * (`brigade admin migrate --from sqlite:DIR --to postgres:URL`).
 *
 * Every table of the schema is copied row for row, in one PostgreSQL
 * transaction, into an empty database migrated to the same version: a
 * failure anywhere leaves the target as empty as it was. The columns are
 * the target's (information_schema), minus the ones PostgreSQL computes
 * itself (the memory search vector, the `ord` creation order, which is
 * filled in SQLite's rowid order because rows are inserted in that order);
 * values travel as text, blobs as binary, NULL as NULL. Identity columns
 * keep their values and their sequences are moved past them. SQLite's
 * trace packs (trace_pack.h: several traces in one row, which the
 * PostgreSQL store does not write) become a row per trace, each with the
 * seq it had inside the pack (seq counts spans). After the copy, each
 * table's row count is compared inside the same transaction before it
 * commits (for traces, against the rows the packs unfold into); the caller then verifies the audit chain on the
 * target (src/app/admin_cli.c). */
#include "store/store_internal.h"
#include "store/store_pg_internal.h"
#include "store/trace_pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* In dependency order (foreign keys: tenants, then users, then the rest). */
static const char *const import_tables[] = {
    "tenants", "users", "keys", "usage", "sessions", "messages", "runs", "memory", "audit",
    "audit_checkpoints", "connections", "oauth_flows", "run_waits", "approvals", "tenant_defs",
    "responses", "guard_decisions", "traces", "oauth_clients",
};
#define IMPORT_NTABLES (sizeof import_tables / sizeof import_tables[0])
#define IMPORT_COLS_MAX 32

typedef struct import_cols {
    int n;
    char name[IMPORT_COLS_MAX][64];
    bool bytea[IMPORT_COLS_MAX];
} import_cols;

/* The target table's columns that take values (not generated, not ALWAYS identity). */
static int import_columns(PGconn *c, const char *table, import_cols *cols, char *err, size_t errlen)
{
    const char *p[1] = {table};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT column_name, udt_name FROM information_schema.columns"
                             " WHERE table_schema = current_schema() AND table_name = $1"
                             " AND is_generated = 'NEVER' AND NOT (is_identity = 'YES' AND identity_generation = 'ALWAYS')"
                             " ORDER BY ordinal_position", 1, p, &st, "import columns");
    if (!r) { snprintf(err, errlen, "cannot read the columns of %s", table); return -1; }
    cols->n = 0;
    for (int i = 0; i < PQntuples(r) && cols->n < IMPORT_COLS_MAX; i++) {
        snprintf(cols->name[cols->n], sizeof cols->name[0], "%s", PQgetvalue(r, i, 0));
        cols->bytea[cols->n] = strcmp(PQgetvalue(r, i, 1), "bytea") == 0;
        cols->n++;
    }
    PQclear(r);
    if (cols->n == 0) { snprintf(err, errlen, "table %s has no columns on the target", table); return -1; }
    return 0;
}

static int64_t sqlite_count(sqlite3 *db, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", table);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) return -1;
    int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    return n;
}

/* The rows of table (those `where` selects, when not NULL) copied column
 * for column. */
static int import_table(sqlite3 *db, PGconn *c, const char *table, const char *where, int64_t *copied,
                        char *err, size_t errlen)
{
    import_cols cols;
    if (import_columns(c, table, &cols, err, errlen) != 0) return -1;
    char sel[4096], ins[4096];
    size_t sl = (size_t)snprintf(sel, sizeof sel, "SELECT "), il = (size_t)snprintf(ins, sizeof ins,
                                                                                       "INSERT INTO %s (", table);
    for (int i = 0; i < cols.n; i++) {
        sl += (size_t)snprintf(sel + sl, sizeof sel - sl, "%s\"%s\"", i ? ", " : "", cols.name[i]);
        il += (size_t)snprintf(ins + il, sizeof ins - il, "%s\"%s\"", i ? ", " : "", cols.name[i]);
    }
    il += (size_t)snprintf(ins + il, sizeof ins - il, ") VALUES (");
    for (int i = 0; i < cols.n; i++) il += (size_t)snprintf(ins + il, sizeof ins - il, "%s$%d", i ? "," : "", i + 1);
    snprintf(ins + il, sizeof ins - il, ")");
    /* rowid order: creation order, which the target's `ord` columns take on;
     * the tables without a rowid in their primary key's order */
    snprintf(sel + sl, sizeof sel - sl, " FROM \"%s\"%s%s ORDER BY %s", table, where ? " WHERE " : "",
             where ? where : "",
             strcmp(table, "tenant_defs") == 0 ? "1, 2, 3"
             : strcmp(table, "messages") == 0  ? "session_id, seq"
                                               : "rowid");
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sel, -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "reading %s from SQLite: %s", table, sqlite3_errmsg(db));
        return -1;
    }
    const char *vals[IMPORT_COLS_MAX];
    int lens[IMPORT_COLS_MAX], fmts[IMPORT_COLS_MAX];
    int rc;
    *copied = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (int i = 0; i < cols.n; i++) {
            if (sqlite3_column_type(s, i) == SQLITE_NULL) {
                vals[i] = NULL; lens[i] = 0; fmts[i] = 0;
            } else if (cols.bytea[i]) {
                vals[i] = sqlite3_column_blob(s, i);
                lens[i] = sqlite3_column_bytes(s, i);
                fmts[i] = 1;
                if (!vals[i]) vals[i] = "";
            } else {
                vals[i] = (const char *)sqlite3_column_text(s, i);
                lens[i] = 0;
                fmts[i] = 0;
            }
        }
        PGresult *r = PQexecParams(c, ins, cols.n, NULL, vals, lens, fmts, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(err, errlen, "copying %s: %s", table, PQresultErrorMessage(r));
            PQclear(r);
            sqlite3_finalize(s);
            return -1;
        }
        PQclear(r);
        (*copied)++;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "reading %s from SQLite: %s", table, sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* One PostgreSQL trace row from a pack's entry; seq and the counts as
 * text, spans binary. */
static int import_trace_row(PGconn *c, int64_t seq, const trace_rec *r, char *err, size_t errlen)
{
    char seq_s[24], start_s[24], end_s[24], status_s[24], spans_s[24];
    snprintf(seq_s, sizeof seq_s, "%lld", (long long)seq);
    snprintf(start_s, sizeof start_s, "%lld", (long long)r->start_ns);
    snprintf(end_s, sizeof end_s, "%lld", (long long)r->end_ns);
    snprintf(status_s, sizeof status_s, "%d", r->status);
    snprintf(spans_s, sizeof spans_s, "%u", r->span_count);
    const char *vals[10] = {seq_s, r->trace_id, r->tenant_id, r->user_id, start_s, end_s, r->root_name,
                            status_s, spans_s, r->blob_len ? (const char *)r->blob : ""};
    int lens[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, (int)r->blob_len}, fmts[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    PGresult *res = PQexecParams(c,
                                 "INSERT INTO traces (seq, trace_id, tenant_id, user_id, start_ns, end_ns,"
                                 " root_name, status, span_count, spans)"
                                 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                                 10, NULL, vals, lens, fmts, 0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc) snprintf(err, errlen, "copying traces: %s", PQresultErrorMessage(res));
    PQclear(res);
    return rc;
}

/* The traces table: its rows as every table's, then its packs unfolded.
 * *read counts SQLite rows, *written PostgreSQL rows. A pack that does not
 * read is an error: the migration stops rather than lose what it holds. */
static int import_traces(sqlite3 *db, PGconn *c, int64_t *read, int64_t *written, char *err, size_t errlen)
{
    if (import_table(db, c, "traces", "id_window = 0", written, err, errlen) != 0) return -1;
    *read = *written;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, tenant_id, user_id, span_count, spans FROM traces"
                           " WHERE id_window <> 0 ORDER BY rowid",
                           -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "reading traces from SQLite: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        (*read)++;
        trace_rec r;
        memset(&r, 0, sizeof r);
        int64_t seq = sqlite3_column_int64(s, 0);
        snprintf(r.tenant_id, sizeof r.tenant_id, "%s", (const char *)sqlite3_column_text(s, 1));
        snprintf(r.user_id, sizeof r.user_id, "%s", (const char *)sqlite3_column_text(s, 2));
        /* A pack's seq is the last of its spans: each entry's is where its
         * own spans end, counted back from there. */
        trace_pack_reader rd;
        if (trace_pack_open(&rd, sqlite3_column_blob(s, 4), (size_t)sqlite3_column_bytes(s, 4)) != 0) {
            snprintf(err, errlen, "the trace pack at seq %lld is corrupt; nothing was imported", (long long)seq);
            goto fail;
        }
        int64_t at = seq - sqlite3_column_int64(s, 3);
        int got;
        while ((got = trace_pack_next(&rd, &r)) == 1) {
            at += r.span_count;
            if (import_trace_row(c, at, &r, err, errlen) != 0) {
                trace_pack_close(&rd);
                goto fail;
            }
            (*written)++;
        }
        trace_pack_close(&rd);
        if (got < 0) {
            snprintf(err, errlen, "the trace pack at seq %lld is corrupt; nothing was imported", (long long)seq);
            goto fail;
        }
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "reading traces from SQLite: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
fail:
    sqlite3_finalize(s);
    return -1;
}

int store_pg_import_sqlite(const char *data_dir, const char *url, store_import_report *rep, char *err,
                           size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    char path[4200];
    snprintf(path, sizeof path, "%s/brigade.db", data_dir);
    /* the source at its newest schema (the SQLite store migrates it), then read-only */
    store *src = store_open(data_dir, err, errlen);
    if (!src) return -1;
    int src_version = store_schema_version(src);
    store_close(src);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    store *dst = store_pg_open(url, 1, err, errlen);
    if (!dst) { sqlite3_close(db); return -1; }
    int rc = -1;
    struct pg_store *p = store_pg_of(dst);
    PGconn *c = pg_acquire(p);
    if (!c) { snprintf(err, errlen, "no PostgreSQL connection"); goto out; }
    if (store_pg_schema_version(p) != src_version) {
        snprintf(err, errlen, "schema versions differ: SQLite %d, PostgreSQL %d", src_version,
                 store_pg_schema_version(p));
        goto out_conn;
    }
    if (pg_run(c, "BEGIN ISOLATION LEVEL SERIALIZABLE", 0, NULL, "import") != STORE_OK) {
        snprintf(err, errlen, "cannot begin the import");
        goto out_conn;
    }
    /* an empty target only: a migration never merges into live data */
    for (size_t t = 0; t < IMPORT_NTABLES; t++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", import_tables[t]);
        store_status st;
        PGresult *r = pg_exec(c, sql, 0, NULL, &st, "import");
        int64_t n = r ? pg_i64(r, 0, 0) : -1;
        PQclear(r);
        if (n != 0) {
            snprintf(err, errlen, "the target database is not empty (%s has %lld rows): migrate into a new database",
                     import_tables[t], (long long)n);
            goto out_rb;
        }
    }
    for (size_t t = 0; t < IMPORT_NTABLES; t++) {
        int64_t copied = 0, rows_read = 0;
        if (strcmp(import_tables[t], "traces") == 0) {
            if (import_traces(db, c, &rows_read, &copied, err, errlen) != 0) goto out_rb;
        } else {
            if (import_table(db, c, import_tables[t], NULL, &copied, err, errlen) != 0) goto out_rb;
            rows_read = copied;
        }
        int64_t want = sqlite_count(db, import_tables[t]);
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", import_tables[t]);
        store_status st;
        PGresult *r = pg_exec(c, sql, 0, NULL, &st, "import");
        int64_t got = r ? pg_i64(r, 0, 0) : -1;
        PQclear(r);
        /* every SQLite row read, and PostgreSQL holding what was written
         * (for traces, packs unfolded: more rows than SQLite's) */
        if (want < 0 || rows_read != want || got != copied) {
            snprintf(err, errlen, "%s: %lld rows in SQLite (%lld read), %lld written, %lld in PostgreSQL",
                     import_tables[t], (long long)want, (long long)rows_read, (long long)copied, (long long)got);
            goto out_rb;
        }
        snprintf(rep->table[t], sizeof rep->table[t], "%s", import_tables[t]);
        rep->rows[t] = got;
        rep->ntables = t + 1;
    }
    /* identity columns with explicit values: their sequences move past them */
    static const char *const seqs[][2] = {{"usage", "id"}, {"memory", "id"}, {"guard_decisions", "id"},
                                          {"traces", "seq"}};
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT setval(pg_get_serial_sequence('%s', '%s'),"
                                  " GREATEST((SELECT max(%s) FROM %s), 1))", seqs[i][0], seqs[i][1], seqs[i][1], seqs[i][0]);
        if (pg_run(c, sql, 0, NULL, "import sequences") != STORE_OK) {
            snprintf(err, errlen, "cannot move the sequence of %s.%s", seqs[i][0], seqs[i][1]);
            goto out_rb;
        }
    }
    if (pg_run(c, "COMMIT", 0, NULL, "import") != STORE_OK) {
        snprintf(err, errlen, "the import did not commit");
        goto out_rb;
    }
    rc = 0;
    goto out_conn;
out_rb:
    PQclear(PQexec(c, "ROLLBACK"));
out_conn:
    pg_release(p, c);
out:
    store_close(dst);
    sqlite3_close(db);
    return rc;
}
