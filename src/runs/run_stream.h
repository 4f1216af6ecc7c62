/* run_stream.h — a run's events shared through Redis, so that any instance
 * of a deployment (PostgreSQL + governance in Redis) can serve
 * GET /v1/runs/{id}/events for a run another instance runs
 * (docs/scale-out.md, "Run events from any instance").
 *
 * The owning instance publishes every event of its runs (the same numbers
 * as its own event log, event_log.c) to one Redis Stream per run; other
 * instances follow that stream. All Redis traffic happens on one thread of
 * this module with its own libuv loop and hiredis connection: publishing
 * only copies into a bounded queue, a reader is woken on its own loop with
 * uv_async. Nothing here ever blocks a caller's loop. */
#ifndef BRIGADE_RUN_STREAM_H
#define BRIGADE_RUN_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"

typedef struct run_stream run_stream;
typedef struct run_stream_reader run_stream_reader;

/* Bounds: what a stream keeps in Redis is the event log's own bound. */
#define RUN_STREAM_MAXLEN        512     /* entries per run (XADD MAXLEN ~) */
#define RUN_STREAM_LINGER_S      300     /* the key lives this long after the run's end */
#define RUN_STREAM_IDLE_S        3600    /* … and this long after a live run's last event */
#define RUN_STREAM_MAX_READERS   256     /* followers on this instance */
#define RUN_STREAM_READER_FRAMES 64      /* frames buffered per follower (and ~256 KiB) */
#define RUN_STREAM_QUEUE_MAX     8192    /* events waiting to be published (and 8 MiB) */
#define RUN_STREAM_POLL_MS       100     /* a follower's poll */

/* Start the thread, connecting to cfg's Redis (reconnecting every 500 ms
 * while it is away). NULL on failure (logged). */
run_stream *run_stream_start(const governance_redis_cfg *cfg);
/* Stop and join; every reader must have been unfollowed. NULL is fine. */
void        run_stream_stop(run_stream *s);

/* Owner side: thread-safe, never blocks. An event numbered seq, and the
 * run's end after its last event last_seq. Dropped (counted, logged once)
 * when the queue is full. */
void run_stream_publish(run_stream *s, const char *run_id, uint64_t seq, const char *name, const char *json,
                        size_t len);
void run_stream_end(run_stream *s, const char *run_id, uint64_t last_seq);

/* Reader side. */
typedef enum run_stream_state {
    RUN_STREAM_WAITING = 0,   /* no answer from Redis yet */
    RUN_STREAM_LIVE,          /* the stream exists: events come as they are published */
    RUN_STREAM_ENDED,         /* the run's end was read and every event taken */
    RUN_STREAM_ABSENT,        /* Redis has no stream for this run */
    RUN_STREAM_UNREACHABLE,   /* Redis did not answer (or went away): nothing more will come */
} run_stream_state;

typedef struct run_stream_frame {
    uint64_t seq;
    char    *name;            /* owned by the reader until the next take */
    char    *json;
    size_t   len;
} run_stream_frame;

typedef void (*run_stream_wake_fn)(void *arg);

/* Follow run_id's stream after event `after`, waking `wake(arg)` on `loop`
 * when there is something to take. NULL when RUN_STREAM_MAX_READERS are
 * following already, or out of memory. */
run_stream_reader *run_stream_follow(run_stream *s, const char *run_id, uint64_t after, uv_loop_t *loop,
                                     run_stream_wake_fn wake, void *arg);
/* On the reader's loop: the frames buffered (at most max; valid until the
 * next take or unfollow), events no longer in Redis before them
 * (*skip_from..*skip_to, 0 when none) and the state. */
size_t run_stream_take(run_stream_reader *rd, run_stream_frame *out, size_t max, run_stream_state *state,
                       uint64_t *skip_from, uint64_t *skip_to);
/* On the reader's loop: stop following (wake is not called again). */
void   run_stream_unfollow(run_stream_reader *rd);

/* For /metrics. */
typedef struct run_stream_stats {
    bool     up;               /* connected to Redis */
    uint64_t published;        /* events and ends Redis acknowledged */
    uint64_t dropped;          /* not published: the queue was full, or Redis refused them */
    size_t   followers;        /* streams of other instances' runs followed now */
} run_stream_stats;
void run_stream_stats_get(run_stream *s, run_stream_stats *out);

#endif
