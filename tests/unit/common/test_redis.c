/* test_redis.c — the throwaway redis-server of the unit tests (see
 * test_redis.h). */
#include "test_redis.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

int test_redis_precheck(void)
{
    const char *skip = getenv("BRIGADE_TEST_REDIS");
    if (skip && strcmp(skip, "skip") == 0) {
        fprintf(stderr, "BRIGADE_TEST_REDIS=skip: skipped\n");
        return 77;
    }
    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        fprintf(stderr, "redis-server is not installed (scripts/deps.sh installs it; "
                        "BRIGADE_TEST_REDIS=skip skips this test)\n");
        return 1;
    }
    return 0;
}

bool test_redis_answers(const test_redis *r)
{
    redisContext *c = redisConnect("127.0.0.1", r->port);
    bool ok = c && !c->err;
    if (c) redisFree(c);
    return ok;
}

bool test_redis_start(test_redis *r)
{
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    r->pid = fork();
    if (r->pid < 0) {
        r->pid = 0;
        return false;
    }
    if (r->pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) _exit(127);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
               "--dir", r->dir, "--save", "", "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0;
            return false;
        }
        if (test_redis_answers(r)) return true;
        usleep(50000);
    }
    test_redis_stop(r);
    return false;
}

void test_redis_stop(test_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

int test_redis_open(test_redis *r, const char *tag, int salt)
{
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "/tmp/brigade-%s-XXXXXX", tag);
    if (!mkdtemp(r->dir)) {
        perror("mkdtemp");
        return -1;
    }
    for (int attempt = 0; attempt < 8; attempt++) {
        r->port = 20000 + (int)((getpid() + salt + attempt * 1543) % 12000);
        if (test_redis_answers(r)) continue;
        if (test_redis_start(r)) return 0;
    }
    fprintf(stderr, "redis-server did not start on any of 8 ports\n");
    rmdir(r->dir);
    return -1;
}

int test_redis_close(test_redis *r)
{
    test_redis_stop(r);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf '%s'", r->dir);
    return system(rm) == 0 ? 0 : -1;
}
