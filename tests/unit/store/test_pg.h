/* test_pg.h — a PostgreSQL server for the store's unit tests.
 *
 * test_pg_start: BRIGADE_TEST_PG_URL if set; otherwise a throwaway server
 * started by scripts/pg-test.sh (BRIGADE_PG_TEST_SCRIPT, set by meson) in
 * /tmp/brigade-pgtest-PID, stopped at exit. BRIGADE_TEST_PG=skip: no server
 * (test_pg_url() returns NULL and PostgreSQL cases skip). */
#ifndef BRIGADE_TEST_PG_H
#define BRIGADE_TEST_PG_H

#include <stdint.h>

#include "store/store.h"

int         test_pg_start(void);          /* 0, or -1 (message on stderr) */
const char *test_pg_url(void);            /* NULL: skipped */
void        test_pg_sql(const char *sql); /* run SQL; fails the test on error */
int64_t     test_pg_count(const char *sql);
int64_t     test_pg_count1(const char *sql, const char *bind);   /* one text parameter, $1 */
void        test_pg_fresh(void);          /* an empty schema */
store      *test_pg_open(unsigned pool);  /* store_pg_open on the server; fails the test on error */
/* Stop the server this process started, and call fn(arg) while it is
 * down, then start it again: 0, or -1 when the server is not ours
 * (BRIGADE_TEST_PG_URL) and the caller should skip. */
int         test_pg_restart(void (*while_down)(void *arg), void *arg);

#endif
