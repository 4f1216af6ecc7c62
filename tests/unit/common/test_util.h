/* test_util.h — what the unit tests share: fresh temp directories, turning
 * a libuv loop until something happens, and a store with a tenant and
 * users in it.
 *
 * The helpers report failure by return value and never assert, so each
 * test keeps its own assertions (and this library needs no cmocka). */
#ifndef BRIGADE_TEST_UTIL_H
#define BRIGADE_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "store/store.h"
#include "util/ids.h"

/* ---- temp directories (test_util.c) ---- */

/* Make a fresh private directory /tmp/<name>-XXXXXX into dir (len bytes).
 * Returns dir, or NULL if it could not be made. */
char *test_tmpdir(char *dir, size_t len, const char *name);
/* Remove dir and everything below it, not following links. */
void test_rmtree(const char *dir);

/* ---- the libuv loop (test_util.c) ---- */

/* Turn loop until *flag is non-zero or timeout_ms have passed; returns
 * *flag. Adds no handle of its own: while nothing holds the loop alive each
 * turn returns at once and the flag and clock are checked again. The
 * upstream tests need exactly this: with a timer of ours keeping the loop
 * alive, their calls stall until it fires. A loop that is alive but idle
 * can block a turn past the deadline; test_run_timed bounds that. */
int test_run_until(uv_loop_t *loop, const int *flag, unsigned timeout_ms);
/* Turn loop until *flag is non-zero (flag NULL: never) or timeout_ms have
 * passed; returns *flag (0 for NULL). A timer of its own bounds the wait,
 * so even an idle loop gives control back on time. */
int test_run_timed(uv_loop_t *loop, const int *flag, unsigned timeout_ms);
/* Turn loop for ms milliseconds, whatever happens. */
void test_spin(uv_loop_t *loop, unsigned ms);

/* ---- store fixtures (test_store_util.c; link store_lib) ---- */

/* Open a store in a fresh directory /tmp/<name>-XXXXXX (made into dir,
 * len bytes). NULL if either fails. */
store *test_store_open(char *dir, size_t len, const char *name);
/* Close the store and remove its directory. */
void test_store_close(store *st, const char *dir);
/* Create a tenant called name, with an admin key, the way the admin API
 * would; the tenant's id goes to id_out. */
store_status test_store_tenant(store *st, const scope *server_admin, const char *name,
                               char id_out[ID_MAX]);
/* Create a user of the tenant admin's tenant with tier "default" and every
 * limit taken from the tier; the user's id goes to id_out unless NULL. */
store_status test_store_user(store *st, const scope *tenant_admin, const char *external_id,
                             char id_out[ID_MAX]);
/* Queue n usage rows of tenant_id (user "usr_t", model "m") for st's
 * writer, as finished calls do. */
void test_store_queue_usage(store *st, const char *tenant_id, int n);
/* Hold st's writer (SQLite) inside a batch until test_store_release_writer:
 * what is queued meanwhile waits, uncommitted. Returns once it is held
 * (true), or false if it could not be within 20 s. */
bool test_store_hold_writer(store *st);
void test_store_release_writer(void);
/* The first column of the first row of sql (one optional text parameter,
 * bind) on the SQLite store in dir, read through a connection of its own:
 * what the file holds, not what the store says. -1 on any error (said on
 * stderr), which no count equals. */
long long test_sqlite_count(const char *dir, const char *sql, const char *bind);

#endif
