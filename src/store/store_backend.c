/* store_backend.c — choosing the store's backend (store.h
 * store_open_backend): SQLite in the data directory (the default) or
 * PostgreSQL at a URL, and the PostgreSQL side of the `struct store` that
 * both share (store_pg.h explains the dispatch).
 *
 * Until the PostgreSQL backend implements every store.h function,
 * store_open_backend refuses `kind: postgres` with the list of what is
 * missing: a partial backend would fail at the first call it lacks, in the
 * middle of serving. store_pg_open (the unit tests) opens it regardless. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>


/* Every store.h (and store_connections.h) function that touches stored
 * data and has no PostgreSQL implementation yet. Functions that need no
 * backend (the *_free helpers, store_quota_describe, store_status_text)
 * are not listed; store_backup and store_scrub_freed are SQLite file
 * operations (a PostgreSQL deployment is backed up with pg_dump). Keep this
 * in step with the STORE_PG_DISPATCH lines: test_store_backends checks
 * that every function named here is refused on PostgreSQL. */
static const char pg_missing[] =
    "";

const char *store_pg_missing(void) { return pg_missing; }

struct pg_store *store_pg_of(const store *st) { return st->pg; }

store *store_pg_open(const char *url, unsigned pool, char *err, size_t errlen)
{
    store *st = calloc(1, sizeof *st);
    if (!st) { snprintf(err, errlen, "out of memory"); return NULL; }
    /* The SQLite members stay zero: no SQLite path is reachable on this
     * store (every implemented function forwards before touching them). */
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->readers_mu, NULL);
    pthread_cond_init(&st->wake, NULL);
    pthread_cond_init(&st->done, NULL);
    st->stopping = 1;   /* a SQLite write path reached by mistake refuses at once */
    st->pg = store_pg_new(url, pool, err, errlen);
    if (!st->pg) {
        pthread_mutex_destroy(&st->mu);
        pthread_mutex_destroy(&st->readers_mu);
        pthread_cond_destroy(&st->wake);
        pthread_cond_destroy(&st->done);
        free(st);
        return NULL;
    }
    st->schema_version = store_pg_schema_version(st->pg);
    return st;
}

void store_pg_close_store(store *st)
{
    store_pg_close(st->pg);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->readers_mu);
    pthread_cond_destroy(&st->wake);
    pthread_cond_destroy(&st->done);
    free(st);
}

store *store_open_backend(const store_backend *b, const char *data_dir, char *err, size_t errlen)
{
    if (!b || b->kind == STORE_BACKEND_SQLITE) return store_open(data_dir, err, errlen);
    if (b->kind != STORE_BACKEND_POSTGRES) {
        snprintf(err, errlen, "store.kind: unknown backend %d", (int)b->kind);
        return NULL;
    }
    if (pg_missing[0]) {
        size_t count = 1;
        for (const char *c = pg_missing; *c; c++) count += *c == ',';
        snprintf(err, errlen,
                 "store.kind postgres: the PostgreSQL backend is not complete yet and will not start "
                 "(docs/scale-out.md, \"PostgreSQL store\"): %zu store functions are not "
                 "implemented on it: %s", count, pg_missing);
        return NULL;
    }
    /* the data directory still holds the key files (secret, vault.key,
     * the audit key): made private as the SQLite store makes it */
    if (data_dir && mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", data_dir, strerror(errno));
        return NULL;
    }
    store *st = store_pg_open(b->url, b->pool_size ? b->pool_size : 8, err, errlen);
    /* store_data_dir: the key files stay in the data directory */
    if (st && data_dir) snprintf(st->path, sizeof st->path, "%s/brigade.db", data_dir);
    /* the instance's id, on the runs it starts: kept in its data directory
     * (one serve per data directory: serve.lock), so a restart knows its
     * own runs from before and interrupts them at once, not 30 s later */
    if (st && data_dir && store_pg_load_instance(st->pg, data_dir, err, errlen) != 0) {
        store_pg_close_store(st);
        return NULL;
    }
    return st;
}
