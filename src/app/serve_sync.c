/* serve_sync.c — keeping this instance's identity cache in step with the
 * others when several share one store (PostgreSQL): a thread that reads
 * the audit log's new entries every SERVE_SYNC_INTERVAL_MS and, when one
 * of them changes authentication (a key made or revoked, a user disabled
 * or erased, a tenant's settings), reloads the cache (identity_sync). A
 * key revoked on instance A so fails on B within about that interval plus
 * the reload; a key made on A works on B as soon. The same thread renews
 * the heartbeat of this instance's runs every STORE_RUN_HEARTBEAT_S and
 * interrupts the runs of an instance that stopped renewing them
 * (store_runs_heartbeat), and stops the runs of this instance that another
 * was asked to cancel (store_runs_cancel_requested). docs/scale-out.md. */
#include "app/serve_sync.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "util/log.h"

#define SERVE_SYNC_INTERVAL_MS 250
#define SERVE_SYNC_CANCELS_MAX 64      /* marked runs handled per round */

struct serve_sync {
    identity       *id;
    store          *st;
    runs           *runs;
    pthread_t       thread;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    bool            stop;
};

/* Cancels asked on other instances for this one's runs: stopped as a
 * local cancel (the runs end cancelled on their loops; the instance that
 * asked reads the store until it says so). */
static void serve_sync_cancels(serve_sync *s)
{
    run_ref refs[SERVE_SYNC_CANCELS_MAX];
    size_t n = 0;
    if (!s->runs || store_runs_cancel_requested(s->st, refs, SERVE_SYNC_CANCELS_MAX, &n) != STORE_OK) return;
    for (size_t i = 0; i < n; i++)
        if (runs_cancel_remote(s->runs, refs[i].tenant_id, refs[i].user_id, refs[i].id))
            log_info("runs: %s cancelled at another instance's request", refs[i].id);
}

static void *serve_sync_main(void *arg)
{
    serve_sync *s = arg;
    pthread_setname_np(pthread_self(), "idsync");
    bool failing = false;
    int64_t next_beat = 0;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        int64_t now = time(NULL);
        if (now >= next_beat) {
            size_t lost = 0;
            if (store_runs_heartbeat(s->st, &lost) == STORE_OK) {
                next_beat = now + STORE_RUN_HEARTBEAT_S;
                if (lost)
                    log_warn("runs: %zu run(s) of an instance that stopped were interrupted (instance_lost)", lost);
            }
        }
        serve_sync_cancels(s);
        int n = identity_sync(s->id);
        if (n < 0 && !failing) log_warn("identity sync: the store could not be read; retrying");
        if (n >= 0 && failing) log_info("identity sync: the store answers again");
        if (n > 0) log_info("identity sync: %d change(s) from other instances applied", n);
        failing = n < 0;
        pthread_mutex_lock(&s->mu);
        if (s->stop) break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += SERVE_SYNC_INTERVAL_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT) {}
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

serve_sync *serve_sync_start(identity *id, store *st, runs *r)
{
    serve_sync *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->id = id;
    s->st = st;
    s->runs = r;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    /* the log's end now: what came before is in the cache already */
    if (identity_sync(id) < 0) log_warn("identity sync: the audit log could not be read at start");
    if (pthread_create(&s->thread, NULL, serve_sync_main, s) != 0) {
        log_error("identity sync: cannot start its thread: changes made on other instances will not be seen");
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

void serve_sync_stop(serve_sync *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
