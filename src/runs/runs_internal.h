/* runs_internal.h — what the files of src/runs/ share: the registry, the
 * per-loop mailbox, the run being executed, and the message waiting for a
 * busy session. Not a public contract (see runs.h). */
#ifndef BRIGADE_RUNS_INTERNAL_H
#define BRIGADE_RUNS_INTERNAL_H

#include <cjson/cJSON.h>
#include <pthread.h>

#include "core/step.h"
#include "govern/call.h"
#include "govern/gate.h"
#include "guard/guard.h"
#include "identity/identity.h"
#include "runs/credentials.h"
#include "runs/history_cache.h"
#include "runs/runs.h"
#include "tools/tool_tenant.h"
#include "util/buf.h"
#include "util/strmap.h"

/* ---- mailbox: run a function on another loop (mailbox.c) ---- */

typedef void (*mailbox_fn)(void *arg);
typedef struct mailbox mailbox;

mailbox *mailbox_new(uv_loop_t *loop);
/* Thread-safe. The function runs on the mailbox's loop, soon. Returns false
 * (and runs nothing) once the mailbox is closed. */
bool     mailbox_post(mailbox *m, mailbox_fn fn, void *arg);
/* On the loop thread: refuse further posts, run what is queued, close. */
void     mailbox_close(mailbox *m);

/* ---- the registry (registry.c) ---- */

typedef struct run_exec run_exec;
typedef struct run_start run_start;
typedef struct tool_slot tool_slot;

/* Someone waiting for an active run to end: a queued message, or a cancel
 * request wanting the final state. */
typedef struct run_waiter {
    struct run_waiter *next;
    runs_thread       *t;           /* the loop to resume on */
    mailbox_fn         fn;          /* called there with arg */
    void              *arg;
    char               key_id[ID_MAX];  /* a queued message: the credential it came with */
} run_waiter;

typedef struct session_slot {
    char         session_id[ID_MAX];
    char         run_id[ID_MAX];    /* the active run; "" while one is starting */
    runs_thread *t;                 /* the loop that runs it */
    run_exec    *run;               /* dereferenced only on t's loop */
    char         tenant_id[ID_MAX], user_id[ID_MAX];
    char         key_id[ID_MAX];    /* the credential of the active (or starting) run */
    run_waiter  *queue, *queue_tail;   /* messages waiting (FIFO) */
    size_t       queued;
    run_waiter  *cancel_waiters;    /* cancel requests waiting for the end */
    run_status   live_status;
    char         live_agent[STORE_AGENT_MAX];  /* the active run's, for runs_live_run */
    int64_t      live_created_at;
    bool         interrupt_pending; /* an interrupt came while the run was starting */
    /* its credential was revoked while the run was starting: stopped with
     * this code and message (string literals) as soon as it has started */
    const char  *revoke_code, *revoke_message;
    /* The run is paused (pause.c): it has no run_exec until it goes on. */
    bool         paused;
    scope        pause_sc;          /* its user, to go on as */
    runs_subscriber *pause_sub;     /* a streaming client still attached (on t's loop) */
    run_status   pause_kind;        /* RUN_WAITING_APPROVAL or RUN_WAITING_AUTH */
    char         pause_provider[72];/* waiting_auth: for which provider */
    int64_t      pause_deadline;    /* unix s: the earliest deadline to act on */
    /* a decision or a connection came while the pause was being written:
     * the run goes on as soon as it is paused */
    bool         wake_pending;
} session_slot;

/* The runs' event logs (event_log.c). At most this many ended runs' logs,
 * and this many bytes of their events, are kept (each for a while after
 * its run), oldest forgotten first: 4 096 logs of up to 128 KiB could
 * otherwise hold 512 MiB. */
#define RUN_LOG_MAX_ENDED 4096
#define RUN_LOG_ENDED_BYTES_MAX (256u << 20)
typedef struct run_logs run_logs;
typedef struct run_log run_log;
run_logs *run_logs_new(void);
void      run_logs_free(run_logs *l);
/* Publish every event and end to Redis too (several instances; NULL: no). */
struct run_stream;
void      run_logs_set_stream(run_logs *l, struct run_stream *pub);
/* Keep one event of a run; its number (0: not kept). Thread-safe. */
uint64_t  run_log_append(run_logs *l, const char *run_id, const char *tenant_id, const char *user_id,
                         const char *name, const char *json, size_t len);
/* The run has ended: its log is kept a while for readers, then forgotten. */
void      run_log_end(run_logs *l, const char *run_id);

struct runs {
    const brigade_config *cfg;
    store                *st;
    const tool_registry  *tools;
    pthread_mutex_t       lock;
    strmap               *sessions;    /* session id → session_slot* */
    strmap               *active;      /* run id → session_slot* */
    size_t                n_active;
    struct gate          *gate;        /* governance; NULL = none (unit tests) */
    struct identity      *identity;    /* the limits of a run's user */
    const step_core      *core;        /* the agent core (runs_set_core) */
    runs_credentials      creds;       /* the users' own tool credentials (runs_set_credentials) */
    bool                  has_creds;
    runs_thread          *home;        /* the loop that watches paused runs' deadlines */
    run_logs             *logs;        /* every run's events, readable again (event_log.c) */
    struct run_stream    *stream;      /* … and from other instances (run_stream.h); NULL: one instance */
    history_cache        *history;     /* sessions' recent messages between runs (history_cache.h) */
};

struct runs_thread {
    runs      *r;
    uv_loop_t *loop;
    upstream  *up;
    struct gate_thread *gate;          /* this loop's fair-queue inbox */
    mailbox   *mbox;
    run_exec  *runs;                   /* this loop's runs (list) */
    bool       closing;
    int        orphans;                /* runs whose store job outlives runs_thread_free */
    uv_timer_t *sweep;                 /* the home loop's: paused runs' deadlines (pause.c) */
};

/* Claim the session for a new run. Returns 0 if it was idle (now claimed by
 * t), 1 if busy and the start was queued (run_start resumes later through
 * resume_fn), -1 if busy and not queued (*busy_run gets the active run id;
 * *full says the queue was full). Interrupt also asks the active run to
 * stop. */
int  runs_registry_claim(runs *r, runs_thread *t, const scope *sc, const char *session_id,
                         runs_if_busy mode, mailbox_fn resume_fn, void *resume_arg,
                         char busy_run[ID_MAX], bool *full);
/* The run has its id: index it. */
void runs_registry_started(runs *r, const char *session_id, const char *run_id, run_exec *x);
/* The run ended (or never started): free the session for the next queued
 * message and wake every cancel waiter. */
void runs_registry_release(runs *r, const char *session_id, const char *run_id);
/* Stop every active run of this tenant's user (user_id NULL: any user)
 * started with key_id (NULL: any credential), status cancelled with this
 * code and message (string literals). A run still starting is stopped as
 * soon as it has started. Messages queued behind them are refused when
 * their turn comes (the credential check in exec.c). Thread-safe; returns
 * how many runs were asked to stop. */
size_t runs_registry_revoke(runs *r, const char *tenant_id, const char *user_id,
                            const char *key_id, const char *code, const char *message);
/* Cancel an active run of this user: answer_fn runs on t's loop when it has
 * ended. false if no such active run (then read the store). */
bool runs_registry_cancel(runs *r, runs_thread *t, const scope *sc, const char *run_id,
                          mailbox_fn answer_fn, void *answer_arg);

/* ---- a pending start (start.c) ---- */

#define RUNS_HISTORY_MAX 200   /* stored messages loaded as a run's history */
#define RUNS_HISTORY_IDLE_MS (10 * 60 * 1000)   /* a cached history unused this long goes */
#define RUNS_HISTORY_EXPIRE_PER_SWEEP 64        /* … at most this many each second (pause.c) */

/* The session's newest messages as the model sees them, oldest first,
 * complete turns only, without the message numbered skip_seq (0: none). */
cJSON *runs_load_history(store *st, const scope *sc, const char *session_id, int64_t skip_seq);

/* One blocking step on the thread pool, then its completion on the loop. */
typedef struct runs_job {
    uv_work_t work;
    void    (*fn)(void *arg);
    void    (*done)(void *arg);
    void     *arg;
} runs_job;

struct run_start {
    runs_thread    *t;
    runs_subscriber *sub;             /* told when the run ends or fails to start */
    runs_job        job;              /* the load and persist jobs, one at a time */
    scope           sc;
    char            session_id[ID_MAX];
    char           *content;
    runs_if_busy    if_busy;
    const agent_cfg *agent;           /* = set.agent */
    tools_run_set   set;              /* the agent and tools for the tenant; moves to the run */
    /* the claim of the session, made in the load job */
    int             claim;            /* 0 claimed, 1 queued, -1 refused */
    char            busy[ID_MAX];     /* refused: the active run */
    bool            full;             /* refused: the queue was full */
    /* the credential was revoked (or its user disabled or erased) before
     * the run was written: refused with this code (a literal) */
    const char     *lost_code;
    char            lost_why[128];
    bool            loaded;           /* the load job's completion has run */
    bool            resume_pending;   /* our turn came before that */
    bool            persisted_in_load;/* claimed at once: the run was written in that job */
    bool            start_unwritten;  /* written behind: checked, the start rides with a later write */
    /* governance: the run counts against max_concurrent_runs from its
     * claim of an idle session until it ends */
    bool            counted;
    govern_slot     slot;             /* its slot in Redis (gate_run_begin), if any */
    bool            refused;
    gate_refusal    refusal;
    bool            has_trace;
    obs_trace_ctx   trace;            /* the request's span: the run's parent */
    int64_t         session_spent_nusd; /* earlier runs of the session (per-session cap) */
    /* filled by the store job */
    store_status    st;
    run_rec         run;
    cJSON          *history;
    history_entry  *hist;             /* what history refers to (history_cache.h); moves to the run */
    char            error[300];
    bool            guard_blocked;    /* `error` is the guard's: the message was blocked */
    char            quota_why[300];   /* st is a quota refusal: which quota, in words */
};

/* ---- the run in flight (exec.c, model.c, toolrun.c, events.c) ---- */

/* The texts of the conversation's messages in the last model request, by
 * the core's numbers (request_text.c). */
typedef struct run_text {
    const cJSON *child;               /* the message's first member when written */
    char        *text;
    size_t       len;
} run_text;
typedef struct run_texts {
    uint64_t  first;                  /* the number of v[0] */
    run_text *v;
    size_t    n, cap;
} run_texts;

struct run_exec {
    run_exec        *next, *prev;     /* the loop's list */
    runs_thread     *t;
    runs            *r;
    scope            sc;
    run_rec          rec;             /* mirrors the store; counters live here */
    const agent_cfg *agent;           /* = set.agent */
    tools_run_set    set;             /* its tenant's agent and tools, taken at the start */
    step_agent       core_agent;
    cJSON           *tool_specs;      /* the agent's tools offered to the model */
    const step_core *core;
    void            *core_state;

    runs_subscriber *sub;             /* who started it, until it leaves or the end */
    bool             sub_started;     /* its on_start was called: events go to it */

    /* the current model call */
    upstream_call   *call;
    char            *call_body;       /* the request, kept for retries */
    size_t           call_body_len;
    run_texts        texts;           /* its messages' texts, for the next request */
    bool             reply_started;   /* text of this reply reached the client */
    bool             sub_full;        /* the subscriber asked for a pause */
    buf              reply_text;
    cJSON           *reply_tools;     /* tool_calls being assembled, by index */
    buf             *reply_args;      /* their arguments as they stream in, by index */
    size_t           n_reply_args;

    /* a run that went on after a pause: the decided approvals of its
     * pending calls, {call id: {"approved": bool, "note", "by"}} */
    cJSON           *decisions;
    struct run_pause_job *pause_job;  /* the pause being written (pause.c) */
    size_t           n_creds_pending; /* credential fetches of this batch still out */

    /* the current tool calls */
    cJSON           *pending_calls;   /* the effect's tool_calls */
    cJSON           *assistant_msg;   /* the assistant message that asked for them */
    cJSON           *results;         /* tool messages, in call order */
    tool_exec      **execs;
    /* the guards' view of the run and their memory of it (guard.h) */
    guard_ctx        guard_ctx;
    guard_run       *guard;
    struct tool_slot *tool_slots;     /* callback args, one per call */
    size_t           n_execs, n_done;

    uv_timer_t       wall_timer;
    int              open_handles;
    uv_work_t        work;            /* one store job at a time */
    void           (*work_fn)(run_exec *x);
    void           (*work_done)(run_exec *x);
    store_status     work_status;
    message_rec     *work_msgs;       /* what a store job writes */
    size_t           work_n;
    message_rec      final_msg;

    /* governance */
    bool             counted;         /* holds one of the user's concurrent runs */
    govern_slot      slot;            /* and its slot in Redis, if any (gate_run_end) */
    metered_call     mcall;           /* the model call: admission, provider, usage, spans */
    govern_cap       run_cap, session_cap; /* the agent's cost caps, reserved in govern */
    bool             caps_set;        /* run_cap and session_cap hold this run's state */
    gate_refusal    *refusal;         /* a governance refusal ended the run (NULL: none; on
                                       * the heap: 392 bytes few runs need) */
    int64_t          queue_wait_ms;   /* total wait for upstream slots */
    int64_t          session_spent_nusd; /* the session's earlier runs */
    const model_cfg *call_model;      /* the model of the call in flight (degraded, maybe) */
    /* traces: the run (its model calls' spans are the metered call's) */
    obs_span        *run_span;
    bool             degraded;        /* calls go to the agent's degrade model */

    /* Written behind (a SQLite store, store_run_write_behind): the start
     * and the steps are held a moment, then queued without waiting; the
     * end is waited for, and takes what is held along. */
    bool             behind;
    char            *unwritten_start; /* the user's message, until the start is queued */
    message_rec     *held_msgs;       /* the steps not queued yet (own copies) */
    size_t           held_n;
    run_rec         *held_rec;        /* the run as of the last of them */
    int64_t          queued_steps;    /* the steps as the last queued write stores them */
    uv_timer_t       start_timer;     /* queues what is held once RUN_WRITE_HOLD_MS passed */
    struct run_behind_state *behind_state; /* a step written behind failed */
    int64_t          behind_final_seq;/* the end as written (set on the writer thread, */
    bool             behind_broken;   /*  read on the loop after the mailbox hand-over) */

    /* The session's recent messages, taken from the history cache at the
     * start (the core's conversation refers to them) with what the run
     * stores added; put back at the release if hist_ok (every write of the
     * run landed), freed otherwise. NULL: no cache, or a run gone on after
     * a pause. */
    history_entry   *hist;
    char            *hist_user;       /* the user's message, not added to hist yet */
    bool             hist_ok;
    bool             finishing;       /* past the point of no return */
    bool             orphan;          /* its loop is shutting down */
    bool             stopped;         /* cancel requested */
    const char      *stop_code;       /* "cancelled", "interrupted", "max_wall_time", … */
    run_status       stop_status;
    char             stop_message[160];
};

/* gate.c of runs (governance.c): who a run's user is, for the gate */
typedef struct runs_who {
    gate_who    who;
    user_limits lim[3];               /* user, key, tenant */
} runs_who;
void runs_gate_who(runs *r, const scope *sc, runs_who *out);

/* exec.c */
/* The start has claimed the session and written the run: make it run.
 * It takes s's history, content and concurrent-run slot; the caller
 * frees s. */
void run_exec_begin(run_start *s);
void run_exec_stop(run_exec *x, run_status status, const char *code, const char *message);
void run_exec_effect(run_exec *x, step_effect *e);
void run_exec_feed(run_exec *x, step_event *ev);
void run_exec_fail(run_exec *x, const char *code, const char *message);
void run_exec_job(run_exec *x, void (*fn)(run_exec *), void (*done)(run_exec *));
/* Call first in a store job's `done`: if the run was ended or stopped while
 * the job ran, this carries it out and returns true (the caller returns). */
bool run_exec_job_superseded(run_exec *x);
/* Written behind: queue what the run holds (its start, a step) now,
 * before any write that is not written behind (a pause, a shutdown). */
void run_exec_flush_writes(run_exec *x);
/* Written behind: hold a step's messages (copied) for the run's next
 * write, or RUN_WRITE_HOLD_MS. false: not held, the run must fail. */
bool run_exec_write_step(run_exec *x, const message_rec *msgs, size_t n);
/* Messages the run has stored (or queued to be, written behind), in
 * order: added to its cached history (x->hist), if it has one. */
void run_exec_history_add(run_exec *x, const message_rec *msgs, size_t n);

/* Unlink and free a run (its registry entry is the caller's business). */
void run_exec_release(run_exec *x);
/* A new run_exec for a run that exists in the store (start, or going on
 * after a pause): linked to t, its core state created, its wall timer
 * started. It takes `set` (the agent and tools of the run's tenant; *set
 * is emptied). */
run_exec *run_exec_new(runs_thread *t, const scope *sc, const run_rec *rec,
                       tools_run_set *set, const obs_trace_ctx *trace);

/* pause.c */
/* Pause the run for the calls in `approvals` (an array of {id, tool,
 * arguments, reason}, taken; may be NULL for waiting_auth) or, with
 * `provider`, for the user's credential. The pending assistant message is
 * x->assistant_msg. */
void run_pause(run_exec *x, run_status kind, cJSON *approvals, const char *provider,
               const char *connect_url, const char *auth_tool, const char *auth_call_id,
               uint32_t auth_timeout_s);
/* Under r->lock: the paused run of slot s goes on (stop_code NULL) or ends
 * with this status and code. Returns false if it was not paused. */
/* The resumed run has its run_exec again. */
void runs_registry_resumed(runs *r, const char *session_id, run_exec *x);
bool runs_paused_wake_locked(runs *r, session_slot *s, run_status stop_status,
                             const char *stop_code, const char *stop_message);
/* A streaming client of a paused run went away (runs_subscriber_gone). */
void runs_paused_subscriber_gone(runs_subscriber *sub);
/* The sweeper of the home loop (runs_thread_new, runs_thread_free). */
void runs_sweep_start(runs_thread *t);
void runs_sweep_stop(runs_thread *t);

/* model.c */
void run_model_call(run_exec *x, cJSON *request, const step_context_ref *context);

/* ---- the request's text (request_text.c) ---- */

/* The text of a core's model request as the provider is sent it: every
 * member as it is, but each message without its `origin` — the guard has
 * seen it (guard_before_effect); it is brigade's bookkeeping, not a field
 * of the provider's API. The request's messages refer to the conversation
 * (core/step.h), so the origin is left out here, never removed from them.
 * Sets *len; the caller frees the text. */
char *run_model_body(const cJSON *request, size_t *len);
/* The same text, with the conversation's messages that `t` has written at
 * an earlier step of the run taken from it, and the new ones written and
 * kept (`context`: which they are, from the core's effect). */
char *run_model_body_kept(run_texts *t, const cJSON *request, const step_context_ref *context,
                          size_t *len);
void run_texts_free(run_texts *t);
void run_model_abort(run_exec *x);
/* The buffers of a reply's tool-call arguments (model.c), at the run's end. */
void run_model_reply_args_free(run_exec *x);

/* toolrun.c */
void run_tools_call(run_exec *x, cJSON *tool_calls);
void run_tools_abort(run_exec *x);

/* provenance.c (core/origin.h) */
/* The origin of a tool call's result: by the tool's kind (refused: the
 * text is brigade's, kind system); `memory_read` is what the memory tool
 * told it read (tools.h read_origins), or NULL. */
cJSON *run_origin_tool_result(const tool_def *def, bool refused, const char *tool,
                              const char *call_id, const char *memory_read);
/* The origin the memory tool records on what this run writes now
 * (malloc'd JSON): the run, and whether its context is tainted. */
char  *run_memory_write_origin(const run_exec *x);
/* brigade.provenance.* attributes of a span: of one origin (a tool's
 * span), or of the run's taint (the run's span). */
void   run_origin_trace(obs_span *span, const cJSON *origin);
void   run_taint_trace(obs_span *span, const guard_run *g);

/* events.c: hand one API event to the subscriber, if it wants events;
 * and the end to it, if it is still there. */
void run_event(run_exec *x, const char *name, cJSON *data /* taken */);
/* The same with the event's JSON written already (it names the run). */
void run_event_text(run_exec *x, const char *name, const char *json, size_t len);
/* A `message.delta` event: {"text", "run_id"}, written by hand (one a chunk). */
void run_event_delta(run_exec *x, const char *text, size_t len);
/* Emit a guard review's `guard.flagged` events (and free them). */
void run_guard_events(run_exec *x, guard_review *v);
void run_guard_verdict_events(run_exec *x);
void run_event_end(run_exec *x, const runs_outcome *o);

#endif
