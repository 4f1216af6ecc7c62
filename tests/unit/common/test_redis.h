/* test_redis.h — a throwaway redis-server for the unit tests that need a
 * real one (the Redis governance backend, a run's events through Redis):
 * started here on a loopback port, no persistence, its directory in /tmp,
 * killed (SIGKILL: "Redis lost its data") and started again on the same
 * port by the tests that need it. The port is below the ephemeral range,
 * so a connect to it while nobody listens can never meet itself by TCP
 * simultaneous open. */
#ifndef BRIGADE_TEST_REDIS_H
#define BRIGADE_TEST_REDIS_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct test_redis {
    char  dir[64];
    int   port;
    pid_t pid;                 /* 0: not running */
} test_redis;

/* Before anything else: 77 (skip) when BRIGADE_TEST_REDIS=skip, 1 when
 * redis-server is not installed (said on stderr), 0 to go on. */
int  test_redis_precheck(void);
/* A temp dir (/tmp/brigade-<tag>-XXXXXX) and a server on a port nobody
 * answers on (salt varies the first choice between test programs). 0, or
 * -1 (said on stderr, nothing left behind). */
int  test_redis_open(test_redis *r, const char *tag, int salt);
/* Does something answer on r->port? */
bool test_redis_answers(const test_redis *r);
/* (Re)start on r->port: false if it exited (the port is taken) or never
 * answered. A server answering while ours has died is someone else's. */
bool test_redis_start(test_redis *r);
void test_redis_stop(test_redis *r);          /* SIGKILL, and reaped */
/* Stop and remove the directory: 0, or -1 if it could not be removed. */
int  test_redis_close(test_redis *r);

#endif
