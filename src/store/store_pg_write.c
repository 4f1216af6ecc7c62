/* store_pg_write.c — how the PostgreSQL backend writes: one transaction per
 * act, with the audit entries armed on the calling thread appended inside
 * it (invariant 5: an act and its entry commit together or not at all),
 * and the audit log itself (append, checkpoint) on PostgreSQL.
 *
 * One chain for every instance: an append takes a transaction-scoped
 * advisory lock before it reads the newest entry, so appends from all
 * instances are serialized until their commit; no two can read the same
 * "last entry", and an append that does not commit leaves no gap. */
#include "store/store_internal.h"
#include "store/store_pg_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

#define AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define PG_AUDIT_LOCK "7262726967617564"   /* any constant other applications will not use */

static store_status pg_audit_append_in(PGconn *c, audit_rec *e, const store_audit_chain *chain);

store_status pg_txn(PGconn *c, pg_write_fn fn, void *arg, audit_rec **e, const store_audit_chain **chain,
                    int n)
{
    store_status r = pg_run(c, "BEGIN", 0, NULL, "begin");
    if (r == STORE_OK) r = fn(c, arg);
    for (int i = 0; r == STORE_OK && i < n; i++) {
        r = pg_audit_append_in(c, e[i], chain[i]);
        if (r != STORE_OK)
            log_error("store: the audit entry of an act could not be written: the act is "
                      "not done either");
    }
    if (r == STORE_OK) r = pg_run(c, "COMMIT", 0, NULL, "commit");
    if (r != STORE_OK && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
        PQclear(PQexec(c, "ROLLBACK"));
    for (int i = 0; i < n; i++) e[i]->written = r == STORE_OK;
    return r;
}

store_status pg_write_async(store *st, pg_write_fn fn, void *arg, void (*done)(void *arg, store_status status),
                            void *done_arg)
{
    pg_async *op = calloc(1, sizeof *op);
    if (!op) {
        store_audit_detach(st);
        return STORE_ERROR;
    }
    if (!store_audit_take_armed(st, op->audit, op->chain, &op->n_audit)) {
        free(op);
        return STORE_ERROR;
    }
    op->fn = fn;
    op->arg = arg;
    op->done = done;
    op->done_arg = done_arg;
    struct pg_store *p = store_pg_of(st);
    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->async_n >= STORE_ASYNC_QUEUE_MAX) {
        int closing = p->stopping;
        pthread_mutex_unlock(&p->mu);
        free(op);
        log_error("store: a write was dropped (%s)", closing ? "closing" : "queue full");
        return STORE_ERROR;
    }
    p->async_n++;
    if (p->async_tail) p->async_tail->next = op; else p->async_head = op;
    p->async_tail = op;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    return STORE_OK;
}

store_status pg_write(store *st, pg_write_fn fn, void *arg)
{
    audit_rec *e[STORE_AUDIT_ATTACH_MAX];
    const store_audit_chain *chain[STORE_AUDIT_ATTACH_MAX];
    int n = 0;
    if (!store_audit_take_armed(st, e, chain, &n)) return STORE_ERROR;
    struct pg_store *p = store_pg_of(st);
    /* Usage queued before this write is durable when it returns, as on
     * SQLite, where queued rows commit in the same batch as the next
     * write: a client that gets its answer (and its stored Response) and
     * then reads /v1/usage sees the call charged. */
    pthread_mutex_lock(&p->mu);
    uint64_t usage_before = p->usage_queued_seq;
    pthread_mutex_unlock(&p->mu);
    PGconn *c = pg_acquire(p);
    if (!c) return STORE_ERROR;
    store_status r = pg_txn(c, fn, arg, e, chain, n);
    pg_release(p, c);
    pthread_mutex_lock(&p->mu);
    if (p->usage_done_seq < usage_before) {
        p->flush_wanted = 1;
        pthread_cond_signal(&p->wake);
        while (p->usage_done_seq < usage_before && p->writer_started)
            pthread_cond_wait(&p->done, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_lock(&p->mu);
    if (r == STORE_OK) p->stats.commits++;
    p->stats.ops++;
    pthread_mutex_unlock(&p->mu);
    return r;
}

/* ---- the audit log ---- */

static store_status pg_audit_last(PGconn *c, int64_t *seq, int64_t *ts, char hash[AUDIT_HASH_HEX])
{
    *seq = 0;
    *ts = 0;
    snprintf(hash, AUDIT_HASH_HEX, "%s", AUDIT_ZERO_HASH);
    store_status st;
    PGresult *r = pg_exec(c, "SELECT seq, ts, hash FROM audit ORDER BY seq DESC LIMIT 1", 0, NULL,
                          &st, "audit last");
    if (!r) return st;
    if (PQntuples(r) == 1) {
        *seq = pg_i64(r, 0, 0);
        *ts = pg_i64(r, 0, 1);
        pg_copy(r, 0, 2, hash, AUDIT_HASH_HEX);
    }
    PQclear(r);
    return STORE_OK;
}

static store_status pg_audit_last_checkpoint(PGconn *c, int64_t *seq, char sig[AUDIT_SIG_HEX])
{
    *seq = 0;
    sig[0] = '\0';
    store_status st;
    PGresult *r = pg_exec(c, "SELECT seq, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
                          0, NULL, &st, "audit last checkpoint");
    if (!r) return st;
    if (PQntuples(r) == 1) {
        *seq = pg_i64(r, 0, 0);
        pg_copy(r, 0, 1, sig, AUDIT_SIG_HEX);
    }
    PQclear(r);
    return STORE_OK;
}

static store_status pg_audit_insert_checkpoint(PGconn *c, const store_audit_chain *chain, int64_t seq,
                                               int64_t ts, const char *hash, uint32_t flags,
                                               bool *written)
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
    store_status r = pg_audit_last_checkpoint(c, &cp.prev_seq, cp.prev_signature);
    if (r != STORE_OK) return r;
    if (!chain->sign || chain->sign(chain->sign_arg, &cp) != 0) return STORE_OK;
    char v[7][24];
    snprintf(v[0], 24, "%" PRId64, cp.seq);
    snprintf(v[1], 24, "%" PRId64, cp.ts);
    snprintf(v[2], 24, "%d", cp.version);
    snprintf(v[3], 24, "%" PRIu64, cp.every);
    snprintf(v[4], 24, "%" PRIu64, cp.interval_s);
    snprintf(v[5], 24, "%" PRIu32, cp.flags);
    snprintf(v[6], 24, "%" PRId64, cp.prev_seq);
    const char *params[9] = {v[0], cp.hash, v[1], cp.signature, v[2], v[3], v[4], v[5], v[6]};
    store_status st;
    PGresult *res = pg_exec(c, "INSERT INTO audit_checkpoints (seq, hash, ts, signature, version,"
                               " every, interval_s, flags, prev_seq) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
                               " ON CONFLICT (seq) DO NOTHING",
                            9, params, &st, "insert audit checkpoint");
    if (!res) return st;
    *written = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return STORE_OK;
}

static store_status pg_audit_lock(PGconn *c)
{
    return pg_run(c, "SELECT pg_advisory_xact_lock(x'" PG_AUDIT_LOCK "'::bigint)", 0, NULL,
                  "audit lock");
}

static store_status pg_audit_append_in(PGconn *c, audit_rec *e, const store_audit_chain *chain)
{
    if (e->finish) e->finish(e);
    store_status r = pg_audit_lock(c);
    if (r != STORE_OK) return r;
    int64_t last_seq, last_ts;
    r = pg_audit_last(c, &last_seq, &last_ts, e->prev_hash);
    if (r != STORE_OK) return r;
    e->seq = last_seq + 1;
    int64_t now = (int64_t)time(NULL);
    e->ts = now > last_ts ? now : last_ts;   /* never backwards along the chain */
    chain->hash(e, e->hash);
    char seq[24], ts[24];
    snprintf(seq, sizeof seq, "%" PRId64, e->seq);
    snprintf(ts, sizeof ts, "%" PRId64, e->ts);
    const char *params[10] = {seq, ts, e->tenant_id, e->actor, e->credential, e->action, e->target,
                              e->details, e->prev_hash, e->hash};
    r = pg_run(c, "INSERT INTO audit (seq, ts, tenant_id, actor, credential, action, target, details,"
                  " prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
               10, params, "insert audit entry");
    if (r != STORE_OK) return r;
    e->sealed = false;
    if (!chain->every || !chain->sign) return STORE_OK;
    int64_t cp_seq;
    char cp_sig[AUDIT_SIG_HEX];
    r = pg_audit_last_checkpoint(c, &cp_seq, cp_sig);
    if (r != STORE_OK || (uint64_t)(e->seq - cp_seq) < chain->every) return r;
    return pg_audit_insert_checkpoint(c, chain, e->seq, e->ts, e->hash, 0, &e->sealed);
}

typedef struct pg_audit_args {
    audit_rec *e;
    const store_audit_chain *chain;
    uint32_t flags;
    int64_t sealed;
} pg_audit_args;

static store_status pg_audit_append_op(PGconn *c, void *arg)
{
    pg_audit_args *a = arg;
    return pg_audit_append_in(c, a->e, a->chain);
}

store_status store_pg_audit_append(store *st, audit_rec *e, const store_audit_chain *chain)
{
    if (!store_audit_prepare(e, chain)) return STORE_INVALID;
    pg_audit_args a = {e, chain, 0, 0};
    return pg_write(st, pg_audit_append_op, &a);
}

static store_status pg_audit_checkpoint_op(PGconn *c, void *arg)
{
    pg_audit_args *a = arg;
    a->sealed = 0;
    store_status r = pg_audit_lock(c);
    if (r != STORE_OK) return r;
    int64_t seq, ts, covered;
    char hash[AUDIT_HASH_HEX], sig[AUDIT_SIG_HEX];
    r = pg_audit_last(c, &seq, &ts, hash);
    if (r != STORE_OK || seq == 0) return r;
    r = pg_audit_last_checkpoint(c, &covered, sig);
    if (r != STORE_OK || covered >= seq) return r;
    int64_t now = (int64_t)time(NULL);
    bool written;
    r = pg_audit_insert_checkpoint(c, a->chain, seq, now > ts ? now : ts, hash, a->flags, &written);
    if (r == STORE_OK && written) a->sealed = seq;
    return r;
}

store_status store_pg_audit_checkpoint(store *st, const store_audit_chain *chain, uint32_t flags,
                                       int64_t *sealed)
{
    if (sealed) *sealed = 0;
    if (!chain || !chain->sign) return STORE_INVALID;
    pg_audit_args a = {NULL, chain, flags, 0};
    store_status r = pg_write(st, pg_audit_checkpoint_op, &a);
    if (sealed) *sealed = a.sealed;
    return r;
}
