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
 * turn) and streaming the API's events to the client that started it.
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

#include "config/config.h"
#include "http/http.h"
#include "identity/scope.h"
#include "obs/obs.h"
#include "store/store.h"
#include "tools/tools.h"
#include "upstream/upstream.h"

typedef struct runs runs;                 /* process-wide registry */
typedef struct runs_thread runs_thread;   /* one loop's part */

typedef enum runs_if_busy { RUNS_BUSY_REJECT = 0, RUNS_BUSY_ENQUEUE, RUNS_BUSY_INTERRUPT } runs_if_busy;

#define RUNS_QUEUE_MAX 8          /* messages waiting on one busy session */
#define RUNS_PING_MS 15000        /* ": ping" comment on idle streams */

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

/* POST /v1/sessions/{id}/messages. The handler has authenticated the user
 * and validated the body; the runs module takes the request over and
 * answers it — an error, the finished run (stream false), or the event
 * stream (stream true). */
void runs_post_message(runs_thread *t, http_request *req, const scope *sc, const char *session_id,
                       const char *content, bool stream, runs_if_busy if_busy,
                       const obs_trace_ctx *trace /* the request's span; NULL = a new trace */);

/* POST /v1/runs/{id}/cancel: answers with the run once it has stopped. */
void runs_cancel(runs_thread *t, http_request *req, const scope *sc, const char *run_id);

/* The live state of an active run of this user, to overlay on the stored
 * one (GET /v1/runs/{id}); false if not active. */
bool runs_live_status(runs *r, const scope *sc, const char *run_id, run_status *status);

/* A credential was lost (identity_on_revocation's listener): a revoked
 * key, a disabled or erased user. Every active run it started ends
 * `cancelled` within moments, with rv->code ("revoked_credential",
 * "user_disabled", "user_deleted") and rv->message as its error; messages
 * of that credential queued on a busy session never start (their client
 * gets 401 with the same code). Thread-safe. */
struct identity_revocation;
void runs_on_revocation(runs *r, const struct identity_revocation *rv);

/* Is a run active on this session? (DELETE /v1/sessions/{id} refuses then.) */
bool runs_session_busy(runs *r, const char *session_id);

/* The JSON of a run record (shared with the API handlers). */
#include <cjson/cJSON.h>
cJSON *runs_json_run(const run_rec *run);
cJSON *runs_json_message(const message_rec *m);

#endif
