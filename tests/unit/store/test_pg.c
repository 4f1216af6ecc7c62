/* test_pg.c — the PostgreSQL server of the store's unit tests (test_pg.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_pg.h"
#include "test_pg.h"

static char pg_url[1024];
static char pg_dir[128];
static int pg_skip;

static void pg_stop(void)
{
    if (!pg_dir[0]) return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' stop '%s' && rm -rf '%s'", getenv("BRIGADE_PG_TEST_SCRIPT"), pg_dir,
             pg_dir);
    if (system(cmd) != 0) fprintf(stderr, "pg-test.sh stop failed\n");
    pg_dir[0] = '\0';
}

int test_pg_start(void)
{
    const char *env = getenv("BRIGADE_TEST_PG_URL");
    const char *skip = getenv("BRIGADE_TEST_PG");
    if (skip && strcmp(skip, "skip") == 0) { pg_skip = 1; return 0; }
    if (env && *env) { snprintf(pg_url, sizeof pg_url, "%s", env); return 0; }
    const char *script = getenv("BRIGADE_PG_TEST_SCRIPT");
    if (!script) { fprintf(stderr, "no BRIGADE_PG_TEST_SCRIPT and no BRIGADE_TEST_PG_URL\n"); return -1; }
    snprintf(pg_dir, sizeof pg_dir, "/tmp/brigade-pgtest-%d", (int)getpid());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' start '%s'", script, pg_dir);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    if (!fgets(pg_url, sizeof pg_url, p)) pg_url[0] = '\0';
    int rc = pclose(p);
    pg_url[strcspn(pg_url, "\n")] = '\0';
    if (rc != 0 || !pg_url[0]) {
        fprintf(stderr, "pg-test.sh start failed: PostgreSQL 15 is needed (scripts/deps.sh installs "
                        "postgresql-15; BRIGADE_TEST_PG=skip skips the PostgreSQL tests)\n");
        return -1;
    }
    /* a failed assertion exits too; an abort (ASan) leaves the server:
     * scripts/pg-test.sh stop /tmp/brigade-pgtest-PID */
    atexit(pg_stop);
    return 0;
}

const char *test_pg_url(void) { return pg_skip ? NULL : pg_url; }

static void quiet(void *arg, const char *msg) { (void)arg; (void)msg; }

void test_pg_sql(const char *sql)
{
    PGconn *c = PQconnectdb(pg_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQsetNoticeProcessor(c, quiet, NULL);
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

int64_t test_pg_count(const char *sql)
{
    PGconn *c = PQconnectdb(pg_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

int64_t test_pg_count1(const char *sql, const char *bind)
{
    PGconn *c = PQconnectdb(pg_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    const char *p[1] = {bind};
    PGresult *r = PQexecParams(c, sql, bind ? 1 : 0, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

void test_pg_fresh(void) { test_pg_sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"); }

int test_pg_restart(void (*while_down)(void *arg), void *arg)
{
    if (!pg_dir[0]) return -1;
    const char *script = getenv("BRIGADE_PG_TEST_SCRIPT");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' stop '%s'", script, pg_dir);
    assert_int_equal(system(cmd), 0);
    if (while_down) while_down(arg);
    snprintf(cmd, sizeof cmd, "'%s' start '%s' >/dev/null", script, pg_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

store *test_pg_open(unsigned pool)
{
    char err[512];
    store *st = store_pg_open(pg_url, pool, err, sizeof err);
    if (!st) fail_msg("store_pg_open: %s", err);
    return st;
}
