/* store_pg_audit.c — reading the audit log on PostgreSQL: the tail, the
 * scoped listing, and the full scan the verifier reads (the same contracts
 * as store_audit.c; appends are in store_pg_write.c).
 *
 * The tail and the scan run in one REPEATABLE READ transaction, so
 * checkpoints and entries come from one snapshot while other instances
 * append. The scan reads entries in pages (PG_AUDIT_PAGE rows) by seq
 * inside that transaction, so a long log is never held in memory whole. */
#include "store/store_pg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_AUDIT_PAGE 2000
#define AUDIT_COLS "seq, ts, tenant_id, actor, credential, action, target, details, prev_hash, hash"
#define CP_COLS "seq, hash, ts, signature, version, every, interval_s, flags, prev_seq"

/* Row i of an AUDIT_COLS result; text fields point into r (valid until PQclear). */
static void pg_audit_row(const PGresult *r, int i, audit_rec *e)
{
    memset(e, 0, sizeof *e);
    e->seq = pg_i64(r, i, 0);
    e->ts = pg_i64(r, i, 1);
    e->tenant_id = PQgetvalue(r, i, 2);
    e->actor = PQgetvalue(r, i, 3);
    e->credential = PQgetvalue(r, i, 4);
    e->action = PQgetvalue(r, i, 5);
    e->target = PQgetvalue(r, i, 6);
    e->details = PQgetvalue(r, i, 7);
    const char *p = PQgetvalue(r, i, 8), *h = PQgetvalue(r, i, 9);
    if (strlen(p) >= AUDIT_HASH_HEX || strlen(h) >= AUDIT_HASH_HEX) e->malformed = true;
    snprintf(e->prev_hash, sizeof e->prev_hash, "%s", p);
    snprintf(e->hash, sizeof e->hash, "%s", h);
}

static void pg_cp_row(const PGresult *r, int i, audit_checkpoint *cp)
{
    memset(cp, 0, sizeof *cp);
    cp->seq = pg_i64(r, i, 0);
    pg_copy(r, i, 1, cp->hash, sizeof cp->hash);
    cp->ts = pg_i64(r, i, 2);
    pg_copy(r, i, 3, cp->signature, sizeof cp->signature);
    cp->version = (int)pg_i64(r, i, 4);
    cp->every = (uint64_t)pg_i64(r, i, 5);
    cp->interval_s = (uint64_t)pg_i64(r, i, 6);
    cp->flags = (uint32_t)pg_i64(r, i, 7);
    cp->prev_seq = pg_i64(r, i, 8);
}

store_status store_pg_audit_tail(struct pg_store *p, audit_tail *out)
{
    memset(out, 0, sizeof *out);
    PGconn *c = pg_acquire(p);
    if (!c) return STORE_ERROR;
    store_status st = pg_run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL, "audit tail");
    PGresult *r = NULL;
    if (st == STORE_OK &&
        (r = pg_exec(c, "SELECT (SELECT coalesce(max(seq), 0) FROM audit),"
                        " (SELECT coalesce(max(seq), 0) FROM audit_checkpoints)", 0, NULL, &st,
                     "audit tail"))) {
        out->last_seq = pg_i64(r, 0, 0);
        out->last_cp_seq = pg_i64(r, 0, 1);
        PQclear(r);
    }
    if (st == STORE_OK && out->last_cp_seq &&
        (r = pg_exec(c, "SELECT signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1", 0, NULL,
                     &st, "audit tail"))) {
        if (PQntuples(r)) pg_copy(r, 0, 0, out->last_cp_signature, sizeof out->last_cp_signature);
        PQclear(r);
    }
    if (st == STORE_OK && out->last_seq > out->last_cp_seq) {
        char v[24];
        snprintf(v, sizeof v, "%" PRId64, out->last_cp_seq);
        const char *params[1] = {v};
        if ((r = pg_exec(c, "SELECT seq, ts FROM audit WHERE seq > $1 ORDER BY seq LIMIT 1", 1, params,
                         &st, "audit tail"))) {
            if (PQntuples(r)) {
                out->first_unsealed_seq = pg_i64(r, 0, 0);
                out->first_unsealed_ts = pg_i64(r, 0, 1);
            }
            PQclear(r);
        }
    }
    if (st == STORE_OK) st = pg_run(c, "COMMIT", 0, NULL, "audit tail");
    pg_release(p, c);
    return st;
}

store_status store_pg_audit_list(struct pg_store *p, const scope *sc, const audit_query *q,
                                 void (*fn)(const audit_rec *e, void *arg), void *arg, bool *has_more)
{
    if (has_more) *has_more = false;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role == SCOPE_USER) return STORE_FORBIDDEN;
    if (!q || q->limit == 0 || q->limit > 1000 || q->from < 0 || q->to < 0 || q->after < 0)
        return STORE_INVALID;
    const char *tenant = sc->role == SCOPE_TENANT_ADMIN ? sc->tenant_id : q->tenant_id;
    char after[24], from[24], to[24], lim[24];
    snprintf(after, sizeof after, "%" PRId64, q->after);
    snprintf(from, sizeof from, "%" PRId64, q->from);
    snprintf(to, sizeof to, "%" PRId64, q->to);
    snprintf(lim, sizeof lim, "%zu", q->limit + 1);   /* one more: is there a next page? */
    const char *params[7] = {after, tenant, q->actor, q->action, from, to, lim};
    PGconn *c = pg_acquire(p);
    if (!c) return STORE_ERROR;
    store_status st;
    PGresult *r = pg_exec(c, "SELECT " AUDIT_COLS " FROM audit WHERE seq > $1"
                             " AND ($2::text IS NULL OR tenant_id = $2)"
                             " AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR action = $4)"
                             " AND ($5::bigint = 0 OR ts >= $5) AND ($6::bigint = 0 OR ts < $6)"
                             " ORDER BY seq LIMIT $7",
                          7, params, &st, "list audit");
    pg_release(p, c);
    if (!r) return st;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        if ((size_t)i == q->limit) {
            if (has_more) *has_more = true;
            break;
        }
        audit_rec e;
        pg_audit_row(r, i, &e);
        fn(&e, arg);
    }
    PQclear(r);
    return STORE_OK;
}

store_status store_pg_audit_scan(struct pg_store *p, int64_t from,
                                 int (*on_checkpoint)(const audit_checkpoint *cp, void *arg),
                                 int (*on_entry)(const audit_rec *e, void *arg), void *arg)
{
    PGconn *c = pg_acquire(p);
    if (!c) return STORE_ERROR;
    store_status st = pg_run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, "audit scan");
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, from);
    const char *params[2] = {v, NULL};
    /* checkpoints: one per `every` entries, few enough to hold */
    PGresult *cps = st == STORE_OK ? pg_exec(c, "SELECT " CP_COLS " FROM audit_checkpoints WHERE seq >= $1"
                                                " ORDER BY seq", 1, params, &st, "audit scan checkpoints")
                                   : NULL;
    int ci = 0, nc = cps ? PQntuples(cps) : 0;
    int64_t next = from;
    int stop = 0;
    while (st == STORE_OK && !stop) {
        char nv[24], lim[24];
        snprintf(nv, sizeof nv, "%" PRId64, next);
        snprintf(lim, sizeof lim, "%d", PG_AUDIT_PAGE);
        const char *ep[2] = {nv, lim};
        PGresult *es = pg_exec(c, "SELECT " AUDIT_COLS " FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2",
                               2, ep, &st, "audit scan entries");
        if (!es) break;
        int ne = PQntuples(es);
        for (int ei = 0; ei < ne && !stop; ei++) {
            int64_t seq = pg_i64(es, ei, 0);
            while (!stop && ci < nc && pg_i64(cps, ci, 0) <= seq) {   /* a checkpoint before its entry */
                audit_checkpoint cp;
                pg_cp_row(cps, ci++, &cp);
                if (on_checkpoint && on_checkpoint(&cp, arg) != 0) stop = 1;
            }
            if (stop) break;
            audit_rec e;
            pg_audit_row(es, ei, &e);
            if (on_entry && on_entry(&e, arg) != 0) stop = 1;
            next = seq + 1;
        }
        PQclear(es);
        if (ne < PG_AUDIT_PAGE) break;
    }
    while (st == STORE_OK && !stop && ci < nc) {   /* checkpoints past the last entry */
        audit_checkpoint cp;
        pg_cp_row(cps, ci++, &cp);
        if (on_checkpoint && on_checkpoint(&cp, arg) != 0) stop = 1;
    }
    PQclear(cps);
    if (st == STORE_OK) pg_run(c, "COMMIT", 0, NULL, "audit scan");
    pg_release(p, c);
    return st;
}
