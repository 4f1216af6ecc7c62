/* store_run_cancel.c — a cancel asked on one instance for a run another
 * instance runs (store.h, store_run_request_cancel). With SQLite there is
 * one instance: a run not active in it is active nowhere, so nothing is
 * ever marked; PostgreSQL's side is store_pg_run_cancel.c. */
#include "store/store_internal.h"
#include "store/store_pg.h"

store_status store_run_request_cancel(store *st, const scope *sc, const char *run_id, bool *requested)
{
    STORE_PG_DISPATCH(st, store_pg_run_request_cancel(st, sc, run_id, requested));
    *requested = false;
    if (!scope_valid(sc) || !run_id) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER && sc->role != SCOPE_TENANT_ADMIN) return STORE_FORBIDDEN;
    return STORE_OK;
}

store_status store_runs_cancel_requested(store *st, run_ref *out, size_t max, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_runs_cancel_requested(store_pg_of(st), out, max, n));
    (void)out;
    (void)max;
    *n = 0;
    return STORE_OK;
}
