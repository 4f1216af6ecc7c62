/* store_util.c — statement helpers the per-object files share.
 *
 * The object files (tenants, users, keys, usage, sessions, runs, memory)
 * each run the same few statement shapes: "does this owned row exist",
 * "run this write", "collect every row into an array" and "bind the owner
 * of a row". Those shapes live here once, so each object file says only
 * what is particular to its table. Connection and statement-cache plumbing stays in
 * store_sqlite.c. */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

#define STORE_ROWS_FIRST_CAP 16   /* first array size of an unbounded collect */

void store_bind_owned(sqlite3_stmt *s, int first, const char *id, const scope *sc)
{
    store_bind_text(s, first, id);
    store_bind_text(s, first + 1, sc->user_id);
    store_bind_text(s, first + 2, sc->tenant_id);
}

store_status store_step_exists(store_conn *c, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, what);
}

store_status store_step_done(store_conn *c, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_sqlite_status(c, rc, what);
}

int store_col_dup(sqlite3_stmt *s, int col, char **dst)
{
    *dst = NULL;
    const unsigned char *v = sqlite3_column_text(s, col);
    if (!v) return 0;
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    char *d = malloc(n + 1);
    if (!d) return -1;
    memcpy(d, v, n);
    d[n] = '\0';
    *dst = d;
    return 0;
}

/* Free the first n records of arr the way kind says. */
static void store_rows_free(const store_rows *kind, void *arr, size_t n)
{
    if (kind->free) kind->free(arr, n);
    else free(arr);
}

store_status store_collect(store_conn *c, sqlite3_stmt *s, const store_rows *kind, size_t limit,
                           void **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    /* The array grows by doubling, up to the limit (the statement's LIMIT
     * is the same number). A bounded query gets a first small array up
     * front, so an empty page is still a non-NULL array — not its whole
     * limit: a run's history asks for 200 messages (~50 KB zeroed) and
     * most sessions hold a few. */
    size_t cap = limit < STORE_ROWS_FIRST_CAP ? limit : STORE_ROWS_FIRST_CAP;
    char *arr = NULL;
    if (cap) {
        arr = calloc(cap, kind->size);
        if (!arr) { sqlite3_reset(s); return STORE_ERROR; }
    }
    int rc = SQLITE_DONE;
    store_status res = STORE_OK;
    while ((!limit || *n < limit) && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : STORE_ROWS_FIRST_CAP;
            if (limit && ncap > limit) ncap = limit;
            char *na = realloc(arr, ncap * kind->size);
            if (!na) { res = STORE_ERROR; break; }
            memset(na + cap * kind->size, 0, (ncap - cap) * kind->size);   /* as calloc's */
            arr = na;
            cap = ncap;
        }
        if (kind->read(s, arr + *n * kind->size) != 0) { res = STORE_ERROR; break; }
        (*n)++;
    }
    if (res == STORE_OK && (!limit || *n < limit) && rc != SQLITE_DONE)
        res = store_sqlite_status(c, rc, kind->what);
    sqlite3_reset(s);
    if (res != STORE_OK) {
        store_rows_free(kind, arr, *n);
        *n = 0;
        return res;
    }
    *out = arr;
    return STORE_OK;
}
