/* runs.h — the harness side of agents: sessions' runs, performed effect by
 * effect.
 *
 * A run starts when a user posts a message to a session. The harness drives
 * an agent core (core/step.h) and performs every effect it returns — model
 * calls through the loop's upstream client, tool calls through tools/ after
 * checking the agent may use the tool and validating the arguments — while
 * enforcing the agent's limits (steps, tool calls, wall time, output
 * tokens), recording usage, persisting the transcript step by step (a tool
 * call and its results are written together, so a crash never leaves half a
 * turn) and reporting the API's events to whoever started it.
 *
 * The harness does not speak HTTP. Whoever starts a run — the API (an SSE
 * stream or a JSON answer, api/sessions.c), a test, the CLI, another
 * instance — hands it a subscriber (runs_subscriber): the run reports its
 * start, its events and its end there.
 *
 * Runs are event-driven: a run waiting on a model is a struct and a curl
 * handle, not a thread. A run executes on the loop of the request that
 * started it. The registry (process-wide, under a mutex) knows every active
 * run by id and by session, so that a second message to a busy session is
 * rejected, queued or made to interrupt the first (`if_busy`), and a cancel
 * arriving on another loop reaches the run through that loop's mailbox.
 *
 * A client that disconnects does not stop its run; the result is read
 * later (GET /v1/runs/{id}, the transcript). */
#ifndef BRIGADE_RUNS_H
#define BRIGADE_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/step.h"
#include "obs/obs.h"
#include "scope/scope.h"
#include "store/store.h"
#include "tools/tools.h"
#include "upstream/upstream.h"

typedef struct runs runs;                 /* process-wide registry */
typedef struct runs_thread runs_thread;   /* one loop's part */

typedef enum runs_if_busy { RUNS_BUSY_REJECT = 0, RUNS_BUSY_ENQUEUE, RUNS_BUSY_INTERRUPT } runs_if_busy;

#define RUNS_QUEUE_MAX 8          /* messages waiting on one busy session */

runs *runs_new(const brigade_config *cfg, store *st, const tool_registry *tools);
void  runs_free(runs *r);
/* Active runs now (all loops). */
size_t runs_active(runs *r);

/* Governance (govern/gate.h): every model call of a run passes the gate,
 * with the limits identity has for the run's user. Call before serving;
 * without it runs are ungoverned (unit tests). */
struct gate;
struct gate_thread;
struct identity;
void runs_set_gate(runs *r, struct gate *g, struct identity *id);
void runs_thread_set_gate(runs_thread *t, struct gate_thread *gt);

/* One per loop thread, created on that thread. */
runs_thread *runs_thread_new(runs *r, uv_loop_t *loop, upstream *up);
/* Cancel this loop's runs (status interrupted, "server_shutdown"), close
 * the mailbox; the loop must run again for handles to close. */
void         runs_thread_free(runs_thread *t);

/* ---- who hears of a run ---- */

/* Why a message did not run (or its run was refused before the model
 * said anything): the API turns the kind into a status. */
typedef enum runs_error_kind {
    RUNS_ERR_NOT_FOUND = 1,       /* no such session or run (of this user) */
    RUNS_ERR_BUSY,                /* the session is busy and if_busy was reject */
    RUNS_ERR_QUEUE_FULL,          /* … and RUNS_QUEUE_MAX messages already wait */
    RUNS_ERR_AGENT_NOT_ALLOWED,   /* the caller's tier may not use the agent */
    RUNS_ERR_AGENT_UNAVAILABLE,   /* the session's agent is no longer configured */
    RUNS_ERR_STORAGE_QUOTA,       /* the user's storage quota is full */
    RUNS_ERR_CREDENTIAL_LOST,     /* revoked, or its user disabled or erased, while waiting */
    RUNS_ERR_STORE,               /* the store failed */
    RUNS_ERR_SHUTDOWN,            /* the server is shutting down */
    RUNS_ERR_GOVERNED,            /* a governance refusal: see `refusal` */
    RUNS_ERR_GUARD_BLOCKED,       /* the agent blocks the message: a detector flagged it */
} runs_error_kind;

struct gate_refusal;                   /* govern/gate.h */
typedef struct runs_error {
    runs_error_kind     kind;
    const char         *code;          /* the API's error code ("session_busy", …) */
    const char         *message;       /* in words, for the caller */
    uint32_t            retry_after_s; /* worth retrying after this long (0: not as is) */
    const struct gate_refusal *refusal; /* RUNS_ERR_GOVERNED: the gate's answer */
    const char         *run_id;        /* the run that was recorded (failed), or NULL */
} runs_error;

/* How it ended: `error` if the message never ran or was refused at once;
 * otherwise `run` as stored, with its final assistant message (NULL when
 * it has none). A cancel answers with `run` alone. */
typedef struct runs_outcome {
    const runs_error  *error;
    const run_rec     *run;
    const message_rec *message;
} runs_outcome;

/* The subscriber: owned by whoever started the run, called on the loop of
 * the run. Pointers passed to it are valid during the call only. */
typedef struct runs_subscriber runs_subscriber;
struct runs_subscriber {
    /* The run has started (its record written). Return false to leave at
     * once (its client is already gone). May be NULL. */
    bool (*on_start)(runs_subscriber *s, const run_rec *run);
    /* One of the run's events ("run.started", "message.delta", …) as JSON
     * carrying the run id, and its number in the run's event log (its SSE
     * id; 0 when it could not be kept). Return false when full: the run
     * pauses its model until runs_subscriber_drained. NULL: the subscriber
     * wants the end only. */
    bool (*on_event)(runs_subscriber *s, const char *name, const char *json, size_t len, uint64_t seq);
    /* Exactly once; the run has forgotten the subscriber before the call. */
    void (*on_end)(runs_subscriber *s, const runs_outcome *o);
    void *run;                         /* the runs module's: the run it hears */
    void *paused;                      /* the runs module's: its run, while paused */
};

/* The subscriber leaves (its client went away) after on_start: the run
 * goes on and calls it no more (its result is read later). */
void runs_subscriber_gone(runs_subscriber *s);
/* A full subscriber has room again. */
void runs_subscriber_drained(runs_subscriber *s);

/* Post a message to a session (the caller has authenticated the user and
 * validated it): run it — now, after the active run, or instead of it, as
 * if_busy says. `sub` hears of it until on_end. */
void runs_post_message(runs_thread *t, runs_subscriber *sub, const scope *sc,
                       const char *session_id, const char *content, runs_if_busy if_busy,
                       const obs_trace_ctx *trace /* the caller's span; NULL = a new trace */);

/* Cancel a run of this user: `sub` gets its state (or an error) once it
 * has stopped. Only on_end is called. */
void runs_cancel(runs_thread *t, runs_subscriber *sub, const scope *sc, const char *run_id);

/* The agent core runs use (default step_core_toolcall): a test's scripted
 * core, or a later pluggable one. Call before serving. */
void runs_set_core(runs *r, const step_core *core);

/* The live state of an active run of this user, to overlay on the stored
 * one (GET /v1/runs/{id}); false if not active. */
bool runs_live_status(runs *r, const scope *sc, const char *run_id, run_status *status);
/* The active run as memory knows it (id, session, agent, live status,
 * times; counters 0), if it is this user's: for a run whose start is not
 * stored yet (written behind, store.h). false: not active here. */
bool runs_live_run(runs *r, const scope *sc, const char *run_id, run_rec *out);

/* A tenant's active runs as the registry has them now (the tenant admin's
 * live view): up to `max` into out, the number returned. */
typedef struct runs_live {
    char       run_id[ID_MAX];
    char       session_id[ID_MAX];
    char       user_id[ID_MAX];
    run_status status;
} runs_live;
size_t runs_list_live(runs *r, const char *tenant_id, runs_live *out, size_t max);

/* A tenant admin's cancel: stop the tenant's active run `run_id` (the run
 * ends `cancelled` on its own loop, as a user's cancel does). false when
 * the tenant has no such active run. */
bool runs_cancel_in_tenant(runs *r, const char *tenant_id, const char *run_id);
/* A user's cancel asked on another instance (store_runs_cancel_requested,
 * polled by serve_sync.c): stop this user's active run `run_id` as a local
 * cancel does. false when it is not active here. Thread-safe. */
bool runs_cancel_remote(runs *r, const char *tenant_id, const char *user_id, const char *run_id);

/* A credential was lost (identity_on_revocation's listener): a revoked
 * key, a disabled or erased user. Every active run it started ends
 * `cancelled` within moments, with rv->code ("revoked_credential",
 * "user_disabled", "user_deleted") and rv->message as its error; messages
 * of that credential queued on a busy session never start (their client
 * gets 401 with the same code). Thread-safe. */
struct identity_revocation;
void runs_on_revocation(runs *r, const struct identity_revocation *rv);
/* A session was deleted from the store (DELETE /v1/sessions/{id}): what
 * this process kept of its messages between runs goes (an erased user's
 * goes with runs_on_revocation's "user_deleted"). Thread-safe. */
void runs_session_deleted(runs *r, const char *session_id);

/* ---- a run's events, readable again (event_log.c) ----
 * Every event a run sends is numbered (from 1, its SSE id) and kept in a
 * bounded log while the run lives and for a while after its end, so a
 * client can read them again: GET /v1/runs/{id}/events, from the start or
 * after the Last-Event-ID it saw. Readers never slow the run down. */
typedef struct runs_event_watch runs_event_watch;
typedef struct runs_event_frame {
    uint64_t    seq;
    const char *name;
    const char *json;
    size_t      len;
} runs_event_frame;
/* Called on the watcher's loop when there may be new events or the log
 * ended (several appends may wake it once). */
typedef void (*runs_event_wake_fn)(void *arg);
/* Watch the events of run_id after number `after` (0: from the first kept),
 * on `loop` (its own thread). NULL when this process keeps no events of
 * that run for that user (it never ran here, was forgotten, or is another
 * user's). `wake` comes at once for what is already there. */
runs_event_watch *runs_events_watch(runs *r, const char *tenant_id, const char *user_id, const char *run_id,
                                    uint64_t after, uv_loop_t *loop, runs_event_wake_fn wake, void *arg);
/* The events after the last taken, at most max, into out (valid until the
 * next take or unwatch). *skipped_from..*skipped_to (0 when none): events
 * dropped from the log before this reader took them. *ended: the run has
 * ended and every event has been taken. */
size_t runs_events_take(runs *r, runs_event_watch *w, runs_event_frame *out, size_t max, bool *ended,
                        uint64_t *skipped_from, uint64_t *skipped_to);
/* On the watcher's loop: stop (wake is not called again). */
void runs_events_unwatch(runs *r, runs_event_watch *w);
/* Several instances sharing Redis: every run's events are published there
 * too, and a run of another instance is read from there (run_stream.h).
 * Set before serving; NULL (the default): this instance's runs only. */
struct run_stream;
void               runs_set_stream(runs *r, struct run_stream *s);
struct run_stream *runs_stream(runs *r);

/* Is a run active on this session? (DELETE /v1/sessions/{id} refuses then.) */
bool runs_session_busy(runs *r, const char *session_id);

/* ---- paused runs: waiting_approval, waiting_auth (pause.c) ----
 *
 * A run whose tool calls need a person's approval, or the user's own
 * credential for a provider not yet connected, is paused: it is stored
 * whole (the pending assistant message, the approvals, its counters) and
 * leaves memory; only its session stays busy. It goes on — rebuilt from the
 * store through the core's RESUME event, the same way whether the server
 * restarted in between or not — once every approval is decided (or denied
 * at its deadline), or the connection becomes active; a streaming client
 * still attached hears the rest. A non-streamed message answers at once
 * with the run in its waiting status. */

/* At start, before serving, after store_runs_recover: know the runs paused
 * before the restart again (their sessions busy, their deadlines watched),
 * denying the approvals whose deadline passed while the server was down. */
void runs_restore_paused(runs *r);
/* A run's approvals were all decided (api): it goes on. Thread-safe. */
void runs_approvals_decided(runs *r, const char *run_id);

/* A stored message as the core holds it (OpenAI chat form), with its
 * `origin` (core/origin.h; inferred from the role for a row older than
 * provenance) — which the harness removes before a request goes upstream. */
cJSON *runs_model_message(const message_rec *m);

#endif
