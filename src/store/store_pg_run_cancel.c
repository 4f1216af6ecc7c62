/* store_pg_run_cancel.c — a cancel asked on one instance for a run another
 * instance runs (store.h, store_run_request_cancel): the mark in the runs
 * row (migration 20) and the owner's look for its marked runs. */
#include "store/store_pg_internal.h"

#include <string.h>

#include "util/timeutil.h"

typedef struct request_args {
    const scope *sc;
    const char  *run_id, *instance;
    bool         requested;
} request_args;

/* Only a run another instance owns and still says it runs (its heartbeat
 * within the lease): a lost instance's runs are interrupted instead. */
static store_status request_op(PGconn *c, void *arg)
{
    request_args *a = arg;
    char stale[PG_I64_MAX];
    /* a user's own run, or (a tenant admin) any run of the tenant */
    bool admin = a->sc->role == SCOPE_TENANT_ADMIN;
    const char *p[5] = {a->run_id, a->sc->tenant_id, a->instance,
                        pg_num(stale, time_now_unix() - STORE_RUN_LEASE_S), a->sc->user_id};
    store_status st;
    int64_t n = pg_run_count(c, admin
                                    ? "UPDATE runs SET cancel_requested = 1 WHERE id = $1 AND tenant_id = $2"
                                      " AND status IN (1, 2) AND owner <> '' AND owner <> $3"
                                      " AND heartbeat >= $4"
                                    : "UPDATE runs SET cancel_requested = 1 WHERE id = $1 AND tenant_id = $2"
                                      " AND status IN (1, 2) AND owner <> '' AND owner <> $3"
                                      " AND heartbeat >= $4 AND user_id = $5",
                             admin ? 4 : 5, p, &st, "request a run's cancel");
    if (n < 0) return st;
    a->requested = n > 0;
    return STORE_OK;
}

store_status store_pg_run_request_cancel(store *st, const scope *sc, const char *run_id, bool *requested)
{
    *requested = false;
    if (!scope_valid(sc) || !run_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER && sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    request_args a = {.sc = sc, .run_id = run_id, .instance = store_pg_of(st)->instance};
    store_status res = pg_write(st, request_op, &a);
    if (res == STORE_OK) *requested = a.requested;
    return res;
}

store_status store_pg_runs_cancel_requested(struct pg_store *p, run_ref *out, size_t max, size_t *n)
{
    *n = 0;
    if (!max) return STORE_OK;
    char lim[PG_I64_MAX];
    const char *params[2] = {p->instance, pg_num(lim, (int64_t)max)};
    store_status st;
    /* runs_cancel_requested: only marked active runs are in that index */
    PGresult *r = pg_read(p, "SELECT id, tenant_id, user_id FROM runs WHERE owner = $1 AND cancel_requested <> 0"
                             " AND status IN (1, 2) ORDER BY id LIMIT $2",
                          2, params, &st, "runs asked to cancel");
    if (!r) return st;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && (size_t)i < max; i++) {
        memset(&out[i], 0, sizeof out[i]);
        pg_copy(r, i, 0, out[i].id, sizeof out[i].id);
        pg_copy(r, i, 1, out[i].tenant_id, sizeof out[i].tenant_id);
        pg_copy(r, i, 2, out[i].user_id, sizeof out[i].user_id);
        (*n)++;
    }
    PQclear(r);
    return STORE_OK;
}
