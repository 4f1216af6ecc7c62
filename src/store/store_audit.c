/* store_audit.c — the audit log's rows: append (on the writer), list
 * (scoped), and the full scan the verifier reads.
 *
 * The chain's integrity rests on one fact: seq, ts and prev_hash of a new
 * entry are read from the table inside the writer's transaction, right
 * before the insert. The writer is one thread and each batch one
 * transaction, so no two appends can both see the same "last entry", and a
 * batch that fails to commit takes its entries with it — the chain on disk
 * never forks or skips. The hash itself and the checkpoint signature come
 * from the caller (store_audit_chain), so this file knows no cryptography
 * and holds no key. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* ---- append ---- */

typedef struct audit_append_args {
    audit_rec *e;
    const store_audit_chain *chain;
} audit_append_args;

/* The newest entry: its seq, ts and hash (seq 0 and the zero hash when the
 * log is empty). */
static store_status audit_last(store_conn *c, int64_t *seq, int64_t *ts, char hash[AUDIT_HASH_HEX])
{
    *seq = 0;
    *ts = 0;
    snprintf(hash, AUDIT_HASH_HEX, "%s", AUDIT_ZERO_HASH);
    sqlite3_stmt *s = store_stmt(c, "SELECT seq, ts, hash FROM audit ORDER BY seq DESC LIMIT 1");
    if (!s) return STORE_ERROR;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        *ts = sqlite3_column_int64(s, 1);
        store_col_copy(s, 2, hash, AUDIT_HASH_HEX);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_sqlite_status(c, rc, "audit last");
    return STORE_OK;
}

/* The newest checkpoint: its seq and signature (0 and "" when none). */
static store_status audit_last_checkpoint(store_conn *c, int64_t *seq, char sig[AUDIT_SIG_HEX])
{
    *seq = 0;
    sig[0] = '\0';
    sqlite3_stmt *s = store_stmt(c, "SELECT seq, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1");
    if (!s) return STORE_ERROR;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        store_col_copy(s, 1, sig, AUDIT_SIG_HEX);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_sqlite_status(c, rc, "audit last checkpoint");
    return STORE_OK;
}

/* Sign entry `seq` and write the checkpoint, chained to the newest one in
 * the table (the signer may chain it elsewhere: src/obs/audit.c does when
 * the table lost checkpoints it wrote). *written: whether it was. */
static store_status audit_insert_checkpoint(store_conn *c, const store_audit_chain *chain,
                                            int64_t seq, int64_t ts, const char *hash,
                                            uint32_t flags, bool *written)
{
    *written = false;
    audit_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    cp.seq = seq;
    cp.ts = ts;
    cp.version = 2;
    cp.every = chain->every;
    cp.interval_s = chain->interval_s;
    cp.flags = flags;
    snprintf(cp.hash, sizeof cp.hash, "%s", hash);
    store_status r = audit_last_checkpoint(c, &cp.prev_seq, cp.prev_signature);
    if (r != STORE_OK) return r;
    /* No signature, no checkpoint: the entry itself is still written. */
    if (!chain->sign || chain->sign(chain->sign_arg, &cp) != 0) return STORE_OK;
    sqlite3_stmt *s = store_stmt(c, "INSERT OR IGNORE INTO audit_checkpoints (seq, hash, ts, signature,"
                                    " version, every, interval_s, flags, prev_seq)"
                                    " VALUES (?,?,?,?,?,?,?,?,?)");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, cp.seq);
    store_bind_text(s, 2, cp.hash);
    sqlite3_bind_int64(s, 3, cp.ts);
    store_bind_text(s, 4, cp.signature);
    sqlite3_bind_int64(s, 5, cp.version);
    sqlite3_bind_int64(s, 6, (int64_t)cp.every);
    sqlite3_bind_int64(s, 7, (int64_t)cp.interval_s);
    sqlite3_bind_int64(s, 8, cp.flags);
    sqlite3_bind_int64(s, 9, cp.prev_seq);
    r = store_step_done(c, s, "insert audit checkpoint");
    if (r == STORE_OK) *written = sqlite3_changes(c->db) > 0;
    return r;
}

store_status store_audit_append_in(store_conn *c, audit_rec *e, const store_audit_chain *chain)
{
    audit_append_args args = {e, chain}, *a = &args;
    if (e->finish) e->finish(e);
    int64_t last_seq, last_ts;
    store_status r = audit_last(c, &last_seq, &last_ts, e->prev_hash);
    if (r != STORE_OK) return r;
    e->seq = last_seq + 1;
    /* ts never goes backwards along the chain, even if the clock does, so
     * "out of ts order" is always a sign of tampering. */
    int64_t now = (int64_t)time(NULL);
    e->ts = now > last_ts ? now : last_ts;
    a->chain->hash(e, e->hash);
    sqlite3_stmt *s = store_stmt(c, "INSERT INTO audit (seq, ts, tenant_id, actor, credential, action,"
                                    " target, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, e->seq);
    sqlite3_bind_int64(s, 2, e->ts);
    store_bind_text(s, 3, e->tenant_id);
    store_bind_text(s, 4, e->actor);
    store_bind_text(s, 5, e->credential);
    store_bind_text(s, 6, e->action);
    store_bind_text(s, 7, e->target);
    store_bind_text(s, 8, e->details);
    store_bind_text(s, 9, e->prev_hash);
    store_bind_text(s, 10, e->hash);
    r = store_step_done(c, s, "insert audit entry");
    if (r != STORE_OK) return r;
    /* The count bound: every `every` entries since the last checkpoint
     * (whatever made it — the count, the time bound or a restart), so no
     * more than every-1 entries are ever unsealed. */
    e->sealed = false;
    if (!a->chain->every || !a->chain->sign) return STORE_OK;
    int64_t cp_seq;
    char cp_sig[AUDIT_SIG_HEX];
    r = audit_last_checkpoint(c, &cp_seq, cp_sig);
    if (r != STORE_OK || (uint64_t)(e->seq - cp_seq) < a->chain->every) return r;
    return audit_insert_checkpoint(c, a->chain, e->seq, e->ts, e->hash, 0, &e->sealed);
}

static store_status store_audit_append_op(store_conn *c, void *arg)
{
    audit_append_args *a = arg;
    return store_audit_append_in(c, a->e, a->chain);
}

bool store_audit_prepare(audit_rec *e, const store_audit_chain *chain)
{
    if (!e || !chain || !chain->hash || !e->actor || !e->actor[0] || !e->action || !e->action[0])
        return false;
    if (!e->tenant_id) e->tenant_id = "";
    if (!e->credential) e->credential = "";
    if (!e->target) e->target = "";
    if (!e->details || !e->details[0]) e->details = "{}";
    e->written = false;
    return true;
}

store_status store_audit_append(store *st, audit_rec *e, const store_audit_chain *chain)
{
    STORE_PG_DISPATCH(st, store_pg_audit_append(st, e, chain));
    if (!store_audit_prepare(e, chain)) return STORE_INVALID;
    audit_append_args a = {e, chain};
    return store_write(st, store_audit_append_op, &a);
}

/* ---- append without waiting ---- */

typedef struct audit_behind_op {
    audit_append_args args;
    store_audit_behind_done done;
    void *done_arg;
} audit_behind_op;

static void store_audit_behind_committed(void *arg, store_status status)
{
    audit_behind_op *o = arg;
    o->args.e->written = status == STORE_OK;
    o->done(o->done_arg, status, o->args.e);
    free(o);
}

store_status store_audit_append_behind(store *st, audit_rec *e, const store_audit_chain *chain,
                                       store_audit_behind_done done, void *done_arg)
{
    /* PostgreSQL writes on the caller's thread: no queue to ride on */
    if (store_pg_of(st) || !done) return STORE_INVALID;
    if (!store_audit_prepare(e, chain)) return STORE_INVALID;
    audit_behind_op *o = calloc(1, sizeof *o);
    if (!o) return STORE_ERROR;
    *o = (audit_behind_op){{e, chain}, done, done_arg};
    store_status r = store_write_async_lazy(st, store_audit_append_op, &o->args,
                                            store_audit_behind_committed, o);
    if (r != STORE_OK) free(o);
    return r;
}

typedef struct audit_seal_args {
    const store_audit_chain *chain;
    uint32_t flags;
    int64_t sealed;
} audit_seal_args;

static store_status store_audit_checkpoint_op(store_conn *c, void *arg)
{
    audit_seal_args *a = arg;
    int64_t seq, ts, covered;
    char hash[AUDIT_HASH_HEX], sig[AUDIT_SIG_HEX];
    a->sealed = 0;
    store_status r = audit_last(c, &seq, &ts, hash);
    if (r != STORE_OK || seq == 0) return r;
    r = audit_last_checkpoint(c, &covered, sig);
    if (r != STORE_OK || covered >= seq) return r;
    int64_t now = (int64_t)time(NULL);
    bool written;
    r = audit_insert_checkpoint(c, a->chain, seq, now > ts ? now : ts, hash, a->flags, &written);
    if (r == STORE_OK && written) a->sealed = seq;
    return r;
}

store_status store_audit_checkpoint(store *st, const store_audit_chain *chain, uint32_t flags,
                                    int64_t *sealed)
{
    STORE_PG_DISPATCH(st, store_pg_audit_checkpoint(st, chain, flags, sealed));
    if (sealed) *sealed = 0;
    if (!chain || !chain->sign) return STORE_INVALID;
    audit_seal_args a = {chain, flags, 0};
    store_status r = store_write(st, store_audit_checkpoint_op, &a);
    if (sealed) *sealed = a.sealed;
    return r;
}

store_status store_audit_tail(store *st, audit_tail *out)
{
    STORE_PG_DISPATCH(st, store_pg_audit_tail(store_pg_of(st), out));
    memset(out, 0, sizeof *out);
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return store_sqlite_status(c, sqlite3_errcode(c->db), "audit tail begin");
    int64_t ts;
    char hash[AUDIT_HASH_HEX];
    store_status r = audit_last(c, &out->last_seq, &ts, hash);
    if (r == STORE_OK) r = audit_last_checkpoint(c, &out->last_cp_seq, out->last_cp_signature);
    if (r == STORE_OK && out->last_seq > out->last_cp_seq) {
        sqlite3_stmt *s = store_stmt(c, "SELECT seq, ts FROM audit WHERE seq > ? ORDER BY seq LIMIT 1");
        if (!s) r = STORE_ERROR;
        else {
            sqlite3_bind_int64(s, 1, out->last_cp_seq);
            int rc = sqlite3_step(s);
            if (rc == SQLITE_ROW) {
                out->first_unsealed_seq = sqlite3_column_int64(s, 0);
                out->first_unsealed_ts = sqlite3_column_int64(s, 1);
            }
            sqlite3_reset(s);
            if (rc != SQLITE_ROW && rc != SQLITE_DONE) r = store_sqlite_status(c, rc, "audit tail");
        }
    }
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    return r;
}

/* ---- reading ---- */

#define AUDIT_COLS "seq, ts, tenant_id, actor, credential, action, target, details, prev_hash, hash"

/* A text column as the verifier must see it: any other type, or a NUL byte
 * inside (which C strings would silently cut), marks the row malformed. */
static const char *audit_col_text(sqlite3_stmt *s, int col, bool *malformed)
{
    if (sqlite3_column_type(s, col) != SQLITE_TEXT) *malformed = true;
    const char *v = (const char *)sqlite3_column_text(s, col);
    if (!v) return "";
    if ((int)strlen(v) != sqlite3_column_bytes(s, col)) *malformed = true;
    return v;
}

static void audit_read_row(sqlite3_stmt *s, audit_rec *e)
{
    memset(e, 0, sizeof *e);
    if (sqlite3_column_type(s, 0) != SQLITE_INTEGER || sqlite3_column_type(s, 1) != SQLITE_INTEGER)
        e->malformed = true;
    e->seq = sqlite3_column_int64(s, 0);
    e->ts = sqlite3_column_int64(s, 1);
    e->tenant_id = audit_col_text(s, 2, &e->malformed);
    e->actor = audit_col_text(s, 3, &e->malformed);
    e->credential = audit_col_text(s, 4, &e->malformed);
    e->action = audit_col_text(s, 5, &e->malformed);
    e->target = audit_col_text(s, 6, &e->malformed);
    e->details = audit_col_text(s, 7, &e->malformed);
    const char *p = audit_col_text(s, 8, &e->malformed);
    const char *h = audit_col_text(s, 9, &e->malformed);
    if (strlen(p) >= AUDIT_HASH_HEX || strlen(h) >= AUDIT_HASH_HEX) e->malformed = true;
    snprintf(e->prev_hash, sizeof e->prev_hash, "%s", p);
    snprintf(e->hash, sizeof e->hash, "%s", h);
}

store_status store_audit_list(store *st, const scope *sc, const audit_query *q,
                              void (*fn)(const audit_rec *e, void *arg), void *arg,
                              bool *has_more)
{
    STORE_PG_DISPATCH(st, store_pg_audit_list(store_pg_of(st), sc, q, fn, arg, has_more));
    if (has_more) *has_more = false;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_USER) return STORE_FORBIDDEN;
    if (!q || q->limit == 0 || q->limit > 1000 || q->from < 0 || q->to < 0 || q->after < 0)
        return STORE_INVALID;
    const char *tenant = sc->role == SCOPE_TENANT_ADMIN ? sc->tenant_id : q->tenant_id;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " AUDIT_COLS " FROM audit WHERE seq > ?1"
                                    " AND (?2 IS NULL OR tenant_id = ?2)"
                                    " AND (?3 IS NULL OR actor = ?3) AND (?4 IS NULL OR action = ?4)"
                                    " AND (?5 = 0 OR ts >= ?5) AND (?6 = 0 OR ts < ?6)"
                                    " ORDER BY seq LIMIT ?7");
    if (!s) return STORE_ERROR;
    sqlite3_bind_int64(s, 1, q->after);
    store_bind_text(s, 2, tenant);
    store_bind_text(s, 3, q->actor);
    store_bind_text(s, 4, q->action);
    sqlite3_bind_int64(s, 5, q->from);
    sqlite3_bind_int64(s, 6, q->to);
    sqlite3_bind_int64(s, 7, (int64_t)q->limit + 1);   /* one more: is there a next page? */
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == q->limit) {
            if (has_more) *has_more = true;
            break;
        }
        audit_rec e;
        audit_read_row(s, &e);
        fn(&e, arg);
        n++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_sqlite_status(c, rc, "list audit");
    return STORE_OK;
}

static void audit_read_checkpoint(sqlite3_stmt *s, audit_checkpoint *cp)
{
    memset(cp, 0, sizeof *cp);
    cp->seq = sqlite3_column_int64(s, 0);
    store_col_copy(s, 1, cp->hash, sizeof cp->hash);
    cp->ts = sqlite3_column_int64(s, 2);
    store_col_copy(s, 3, cp->signature, sizeof cp->signature);
    cp->version = (int)sqlite3_column_int64(s, 4);
    cp->every = (uint64_t)sqlite3_column_int64(s, 5);
    cp->interval_s = (uint64_t)sqlite3_column_int64(s, 6);
    cp->flags = (uint32_t)sqlite3_column_int64(s, 7);
    cp->prev_seq = sqlite3_column_int64(s, 8);
}

store_status store_audit_scan(store *st, int64_t from,
                              int (*on_checkpoint)(const audit_checkpoint *cp, void *arg),
                              int (*on_entry)(const audit_rec *e, void *arg), void *arg)
{
    STORE_PG_DISPATCH(st, store_pg_audit_scan(store_pg_of(st), from, on_checkpoint, on_entry, arg));
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    /* One read transaction: checkpoints and entries from the same snapshot,
     * so a checkpoint written while we read cannot point past our entries.
     * The two tables are read side by side and merged by seq (a checkpoint
     * before the entry it signs), so the reader keeps no list. */
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return store_sqlite_status(c, sqlite3_errcode(c->db), "audit scan begin");
    store_status res = STORE_OK;
    sqlite3_stmt *cs = store_stmt(c, "SELECT seq, hash, ts, signature, version, every, interval_s,"
                                     " flags, prev_seq FROM audit_checkpoints WHERE seq >= ? ORDER BY seq");
    sqlite3_stmt *es = store_stmt(c, "SELECT " AUDIT_COLS " FROM audit WHERE seq >= ? ORDER BY seq");
    if (!cs || !es) res = STORE_ERROR;
    int crc = SQLITE_DONE, erc = SQLITE_DONE;
    if (res == STORE_OK) {
        sqlite3_bind_int64(cs, 1, from);
        sqlite3_bind_int64(es, 1, from);
        crc = sqlite3_step(cs);
        erc = sqlite3_step(es);
    }
    while (res == STORE_OK && (crc == SQLITE_ROW || erc == SQLITE_ROW)) {
        if (crc == SQLITE_ROW &&
            (erc != SQLITE_ROW || sqlite3_column_int64(cs, 0) <= sqlite3_column_int64(es, 0))) {
            audit_checkpoint cp;
            audit_read_checkpoint(cs, &cp);
            if (on_checkpoint && on_checkpoint(&cp, arg) != 0) break;
            crc = sqlite3_step(cs);
        } else {
            audit_rec e;
            audit_read_row(es, &e);
            if (on_entry && on_entry(&e, arg) != 0) break;
            erc = sqlite3_step(es);
        }
    }
    if (res == STORE_OK && crc != SQLITE_DONE && crc != SQLITE_ROW)
        res = store_sqlite_status(c, crc, "audit scan checkpoints");
    if (res == STORE_OK && erc != SQLITE_DONE && erc != SQLITE_ROW)
        res = store_sqlite_status(c, erc, "audit scan entries");
    if (cs) sqlite3_reset(cs);
    if (es) sqlite3_reset(es);
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    return res;
}

void store_data_dir(const store *st, char *out, size_t outlen)
{
    /* st->path is data_dir/brigade.db */
    snprintf(out, outlen, "%s", st->path);
    char *slash = strrchr(out, '/');
    if (slash && slash != out) *slash = '\0';
    else snprintf(out, outlen, "%s", slash ? "/" : ".");
}
