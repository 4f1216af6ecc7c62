/* store_pg.c — the PostgreSQL backend's lifetime: connecting, the
 * connection pool, migrations at open, and the query helpers every
 * store_pg_*.c file uses (store_pg_internal.h says how calls are threaded). */
#include "store/store_pg_internal.h"
#include "store/usage_shares.h"
#include "util/ids.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"

/* Server notices (e.g. "relation already exists, skipping") are not ours
 * to print on stderr. */
static void pg_notice_quiet(void *arg, const char *msg) { (void)arg; (void)msg; }

PGconn *pg_connect(const char *url, char *err, size_t errlen)
{
    PGconn *c = PQconnectdb(url);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        /* libpq's message names the host and the reason, never the password */
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
                 c ? PQerrorMessage(c) : "out of memory");
        size_t l = strlen(err);
        while (l && (err[l - 1] == '\n' || err[l - 1] == ' ')) err[--l] = '\0';
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, pg_notice_quiet, NULL);
    /* Dates are grouped in UTC (usage by day), as the SQLite backend does. */
    PGresult *r = PQexec(c, "SET TIME ZONE 'UTC'; SET client_encoding = 'UTF8'");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        snprintf(err, errlen, "PostgreSQL session setup failed: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

bool pg_alive(PGconn *c)
{
    /* A server that restarted or shut down has told its clients so and
     * closed the socket: reading what is pending (libpq's socket is
     * non-blocking, this never waits) turns the connection BAD, and it is
     * re-established below instead of failing the caller's first query. */
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE) PQconsumeInput(c);
    if (PQstatus(c) == CONNECTION_OK) return true;
    PQreset(c);
    if (PQstatus(c) != CONNECTION_OK) {
        log_error("store: PostgreSQL unreachable: %s", PQerrorMessage(c));
        return false;
    }
    PQsetNoticeProcessor(c, pg_notice_quiet, NULL);
    PQclear(PQexec(c, "SET TIME ZONE 'UTC'"));
    return true;
}

PGconn *pg_acquire(struct pg_store *p)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += PG_POOL_WAIT_MS / 1000;
    until.tv_nsec += (long)(PG_POOL_WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }

    pthread_mutex_lock(&p->pool_mu);
    for (;;) {
        for (unsigned i = 0; i < p->nconns; i++) {
            if (p->busy[i]) continue;
            p->busy[i] = 1;
            PGconn *c = p->conns[i];
            pthread_mutex_unlock(&p->pool_mu);
            /* A connection broken by a server restart is re-established
             * here, so the store recovers without a restart of brigade. */
            if (!pg_alive(c)) {
                pg_release(p, c);
                return NULL;
            }
            return c;
        }
        if (pthread_cond_timedwait(&p->pool_free, &p->pool_mu, &until) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->pool_mu);
            log_error("store: no PostgreSQL connection free within %d ms (pool of %u)",
                      PG_POOL_WAIT_MS, p->nconns);
            return NULL;
        }
    }
}

void pg_release(struct pg_store *p, PGconn *c)
{
    if (!c) return;
    /* A call that failed mid-transaction must not hand an aborted
     * transaction to the next borrower. */
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
        PQclear(PQexec(c, "ROLLBACK"));
    pthread_mutex_lock(&p->pool_mu);
    for (unsigned i = 0; i < p->nconns; i++)
        if (p->conns[i] == c) { p->busy[i] = 0; break; }
    pthread_cond_signal(&p->pool_free);
    pthread_mutex_unlock(&p->pool_mu);
}

PGresult *pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                  store_status *st, const char *what)
{
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        *st = STORE_OK;
        return r;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "23505") == 0) {
        *st = STORE_CONFLICT;
    } else {
        *st = STORE_ERROR;
        log_error("store: %s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    }
    PQclear(r);
    return NULL;
}

store_status pg_run(PGconn *c, const char *sql, int nparams, const char *const *params,
                    const char *what)
{
    store_status st;
    PGresult *r = pg_exec(c, sql, nparams, params, &st, what);
    PQclear(r);
    return st;
}

void pg_copy(const PGresult *r, int row, int col, char *dst, size_t dstlen)
{
    if (!dstlen) return;
    dst[0] = '\0';
    if (PQgetisnull(r, row, col)) return;
    snprintf(dst, dstlen, "%s", PQgetvalue(r, row, col));
}

int64_t pg_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

const char *pg_num(char buf[PG_I64_MAX], int64_t v)
{
    snprintf(buf, PG_I64_MAX, "%lld", (long long)v);
    return buf;
}

int64_t pg_changed(const PGresult *r)
{
    const char *t = PQcmdTuples((PGresult *)r);
    return t && *t ? strtoll(t, NULL, 10) : 0;
}

int64_t pg_run_count(PGconn *c, const char *sql, int nparams, const char *const *params,
                     store_status *st, const char *what)
{
    PGresult *r = pg_exec(c, sql, nparams, params, st, what);
    if (!r) return -1;
    int64_t n = pg_changed(r);
    PQclear(r);
    return n;
}

PGresult *pg_read(struct pg_store *p, const char *sql, int n, const char *const *params,
                  store_status *st, const char *what)
{
    PGconn *c = pg_acquire(p);
    if (!c) { *st = STORE_ERROR; return NULL; }
    PGresult *r = pg_exec(c, sql, n, params, st, what);
    /* the connection died under this read (a restart): reads may be
     * repeated, so once more on a fresh connection */
    if (!r && PQstatus(c) != CONNECTION_OK && pg_alive(c)) r = pg_exec(c, sql, n, params, st, what);
    pg_release(p, c);
    return r;
}

/* ---- lifetime ---- */

static void pg_free(struct pg_store *p)
{
    for (unsigned i = 0; i < p->nconns; i++) PQfinish(p->conns[i]);
    PQfinish(p->wconn);
    free(p->usage);
    usage_shares_free(p->usage_shares);
    free(p->url);
    pthread_mutex_destroy(&p->pool_mu);
    pthread_cond_destroy(&p->pool_free);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p);
}

struct pg_store *store_pg_new(const char *url, unsigned pool, char *err, size_t errlen)
{
    if (!url || !*url) { snprintf(err, errlen, "store.url: no PostgreSQL URL"); return NULL; }
    if (pool < 1 || pool > PG_POOL_MAX) {
        snprintf(err, errlen, "store.pool_size: %u is out of range (1..%d)", pool, PG_POOL_MAX);
        return NULL;
    }
    struct pg_store *p = calloc(1, sizeof *p);
    if (!p || !(p->url = strdup(url))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(p->instance, sizeof p->instance, "ins_default");   /* store_pg_load_instance */
    pthread_mutex_init(&p->pool_mu, NULL);
    pthread_cond_init(&p->pool_free, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* usage flush deadlines */
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&p->done, NULL);
    p->usage_shares = usage_shares_new();

    /* The first connection applies the migrations (under the advisory
     * lock), then joins the pool. */
    PGconn *c = pg_connect(url, err, errlen);
    if (!c) goto fail;
    p->conns[p->nconns++] = c;
    if (pg_migrate(c, &p->schema_version, err, errlen) != 0) goto fail;
    while (p->nconns < pool) {
        if (!(c = pg_connect(url, err, errlen))) goto fail;
        p->conns[p->nconns++] = c;
    }
    if (!(p->wconn = pg_connect(url, err, errlen))) goto fail;
    if (pg_usage_writer_start(p, err, errlen) != 0) goto fail;
    return p;
fail:
    pg_free(p);
    return NULL;
}

void store_pg_close(struct pg_store *p)
{
    if (!p) return;
    pg_usage_writer_stop(p);     /* commits queued usage first */
    pg_free(p);
}

bool store_pg_ping(struct pg_store *p)
{
    store_status st;
    PQclear(pg_read(p, "SELECT count(*) FROM tenants", 0, NULL, &st, "ping"));
    return st == STORE_OK;
}

int store_pg_schema_version(struct pg_store *p) { return p->schema_version; }

store_status store_pg_scrub_freed(struct pg_store *p)
{
    /* PostgreSQL keeps replaced row versions until VACUUM reclaims them:
     * reclaim those of the tables whose secrets were just rewritten (a
     * plaintext JWT key sealed). Reclaimed space is reused by later rows;
     * it is not zeroed (docs/scale-out.md). Not in a transaction. */
    PGconn *c = pg_acquire(p);
    if (!c) return STORE_ERROR;
    store_status st = pg_run(c, "VACUUM tenants, connections, oauth_flows", 0, NULL, "vacuum");
    pg_release(p, c);
    return st;
}

void store_pg_get_stats(struct pg_store *p, store_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    out->usage_queued = atomic_load_explicit(&p->usage_backlog, memory_order_relaxed);
    pthread_mutex_unlock(&p->mu);
}

int store_pg_load_instance(struct pg_store *p, const char *data_dir, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/instance.id", data_dir);
    FILE *f = fopen(path, "re");
    if (f) {
        char line[ID_MAX + 2] = "";
        bool ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        size_t n = strlen(line);
        if (ok && strncmp(line, "ins_", 4) == 0 && n < sizeof p->instance) {
            memcpy(p->instance, line, n + 1);
            return 0;
        }
        snprintf(err, errlen, "%s: not an instance id (remove it: a new one is made)", path);
        return -1;
    }
    char id[ID_MAX];
    ids_new(id, "ins");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t len = strlen(id);
    bool ok = write(fd, id, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    snprintf(p->instance, sizeof p->instance, "%s", id);
    return 0;
}
