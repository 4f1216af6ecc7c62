/* store.h — the store interface: every byte of durable state goes through here.
 *
 * Handlers never see SQL. Two backends implement it: SQLite (the default;
 * store_sqlite.c and the object files) and PostgreSQL (store_pg*.c, for
 * several instances), chosen at open (store_open_backend); a PostgreSQL
 * store forwards each call at its first line (store_pg.h).
 *
 * Scope (invariant 2, docs/architecture.md): every function that reads or changes
 * tenant or user data takes a `const scope *` and answers only inside it.
 * An object outside the scope is STORE_NOT_FOUND, exactly like an object
 * that does not exist. Functions in the "authentication" section run before
 * a scope exists; only src/identity/ calls them.
 *
 * Durability: a write function returns only after its transaction has
 * committed (group commit: one writer thread batches the writes of many
 * callers into one transaction, each in its own savepoint so one failure
 * does not undo the others). Usage records are the exception: they are
 * queued and committed in batches within STORE_USAGE_FLUSH_MS.
 *
 * Threading: every function is blocking and thread-safe; call from the
 * thread pool (http_request_defer) or from the CLI, never on a loop thread,
 * except store_usage_record, which only enqueues. */
#ifndef BRIGADE_STORE_H
#define BRIGADE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scope/scope.h"
#include "util/ids.h"

typedef struct store store;

typedef enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND,     /* no such object in this scope */
    STORE_CONFLICT,      /* unique constraint (e.g. external_id already used) */
    STORE_FORBIDDEN,     /* the scope's role may not do this at all (403) */
    STORE_INVALID,       /* argument out of range */
    STORE_ERROR,         /* I/O or database error; logged */
    STORE_QUOTA,         /* a storage quota is full (429); store_quota_refusal says which */
    STORE_TOO_LARGE      /* this one item exceeds a storage quota on its own (413) */
} store_status;

#define STORE_USAGE_FLUSH_MS 200   /* usage rows reach disk within this bound */
#define STORE_NAME_MAX 256

typedef struct tenant_jwt {
    char issuer[STORE_NAME_MAX];
    char audience[STORE_NAME_MAX];   /* required when set; "" only in rows from older versions */
    char alg[8];                     /* "HS256" | "RS256" | "ES256" */
    char *key;                       /* secret or PEM; malloc'd, freed by tenant_rec_free. In
                                      * the store it is sealed (src/identity/seal.h): the
                                      * store never sees a plaintext key. */
} tenant_jwt;

/* Overrides of the configured limits (a user's over its tier, a key's and a
 * tenant's over governance.tenant_limits); a negative value means "not set,
 * use the tier". Budgets in nano-USD. */
typedef struct user_limits {
    int64_t rpm, tpm, max_concurrent_runs;
    int64_t daily_budget_nusd, monthly_budget_nusd;
} user_limits;

typedef struct tenant_rec {
    char    id[ID_MAX];
    char    name[STORE_NAME_MAX];
    char    default_tier[32];
    bool    has_jwt;
    tenant_jwt jwt;
    user_limits limits;              /* tenant-wide limits (all users together) */
    int64_t created_at;              /* unix seconds */
} tenant_rec;


typedef struct user_rec {
    char    id[ID_MAX];
    char    tenant_id[ID_MAX];
    char    external_id[STORE_NAME_MAX];
    char    display_name[STORE_NAME_MAX];
    char    tier[32];
    bool    disabled;
    user_limits limits;
    int64_t created_at;
} user_rec;

/* A PATCH: only fields with their `set_` flag true change. */
typedef struct user_update {
    bool set_tier;         char tier[32];
    bool set_disabled;     bool disabled;
    bool set_display_name; char display_name[STORE_NAME_MAX];
    bool set_limits;       user_limits limits;   /* the complete new override set */
} user_update;

typedef enum key_kind { KEY_KIND_ADMIN = 1, KEY_KIND_USER = 2 } key_kind;

typedef struct key_rec {
    char     id[ID_MAX];
    char     tenant_id[ID_MAX];
    char     user_id[ID_MAX];        /* "" for tenant admin keys */
    key_kind kind;
    char     prefix[16];             /* first characters of the key, for listings */
    char     hash[65];               /* HMAC-SHA256 hex; never returned by the API */
    int64_t  created_at;
    int64_t  revoked_at;             /* 0 = active */
    user_limits limits;              /* rpm, tpm and budgets of this key (max_concurrent_runs unused) */
} key_rec;

typedef struct usage_rec {
    int64_t ts;                      /* unix seconds */
    char    tenant_id[ID_MAX];
    char    user_id[ID_MAX];         /* "" for tenant-admin calls */
    char    key_id[ID_MAX];
    char    model[128];
    char    request_id[33];
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cost_nusd;               /* nano-USD: 1e-9 dollars */
    int     status;                  /* HTTP status returned to the client */
    char    deployment[128];         /* provider/upstream model that served it ("" = unknown) */
    uint64_t reservation_id;         /* its durable reservation (govern/reserve_journal.h),
                                        closed once the row is committed; 0 = none. Stored
                                        (usage.reservation), so recovery charges it once. */
} usage_rec;

typedef enum usage_group { USAGE_GROUP_DAY, USAGE_GROUP_MODEL, USAGE_GROUP_USER } usage_group;

typedef struct usage_query {
    const char *user_id;             /* tenant admin: filter; NULL = all. Ignored for users (always self). */
    int64_t     from, to;            /* unix seconds, [from, to); 0 = open */
    usage_group group_by;
} usage_query;

typedef struct usage_row {
    char    group[128];              /* "2026-11-27", a model name, or a user id */
    int64_t requests;
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cost_nusd;
} usage_row;

/* --- lifetime --- */

/* Open (create) data_dir/brigade.db, WAL mode, apply pending migrations,
 * start the writer thread. */
store *store_open(const char *data_dir, char *err, size_t errlen);
/* Which backend holds the data (config `store:`, docs/config.md). */
typedef enum store_backend_kind { STORE_BACKEND_SQLITE = 0, STORE_BACKEND_POSTGRES } store_backend_kind;
typedef struct store_backend {
    store_backend_kind kind;
    const char *url;                 /* postgres: a libpq URI or connection string */
    unsigned pool_size;              /* postgres: connections of the pool (0: 8) */
} store_backend;
/* store_open for SQLite (data_dir), or open PostgreSQL at b->url, applying
 * its migrations under an advisory lock. NULL (b NULL) means SQLite. A
 * backend that does not implement every function below is refused with
 * err naming what is missing (store_pg.h). */
store *store_open_backend(const store_backend *b, const char *data_dir, char *err, size_t errlen);
/* `brigade admin migrate`: copy the SQLite database of data_dir (migrated
 * to the newest schema first) into the PostgreSQL database at url, which
 * must be empty, in one transaction; every table's row count is compared
 * before it commits. 0, or -1 with err (the target unchanged). */
#define STORE_IMPORT_TABLES_MAX 24
typedef struct store_import_report {
    size_t  ntables;
    char    table[STORE_IMPORT_TABLES_MAX][32];
    int64_t rows[STORE_IMPORT_TABLES_MAX];
} store_import_report;
int store_pg_import_sqlite(const char *data_dir, const char *url, store_import_report *rep, char *err,
                           size_t errlen);
/* Flush queued usage, stop the writer, close. No other thread may still be
 * using the store (their per-thread read connections are closed here). */
void   store_close(store *st);
/* Cheap liveness check for /readyz: a read that touches the database. */
bool   store_ping(store *st);
int    store_schema_version(store *st);
/* One read snapshot for several reads on the calling thread (SQLite;
 * nothing on PostgreSQL). Each read otherwise begins a read transaction
 * of its own, and each costs the WAL's shared-memory locks (fcntl system
 * calls) and, when anything was committed since (always, under load), a
 * cold page cache. Between begin and end the thread's reads see one state
 * of the store, taken at the first read: begin only after whatever must
 * be seen (a run's history only once its session is claimed). Nested
 * pairs are counted: only the outermost end ends it. Reads that open a
 * transaction of their own (audit verify and list, memory search) must
 * not run inside one; and a snapshot held long holds the WAL's checkpoint
 * back, so end it before waiting on anything but the disk. Never around
 * code that writes and reads its write back (an MCP connection refreshing
 * an OAuth token does): the read would not see it. */
void   store_read_begin(store *st);
void   store_read_end(store *st);
/* Writer counters for /metrics: transactions committed, write operations
 * run, usage rows committed. ops / commits is the group-commit batch size. */
typedef struct store_stats {
    uint64_t commits, ops, usage_rows;
    /* How long the oldest usage row of each commit waited, from being
     * queued to being committed: its sum and count (one per commit with
     * usage rows) and the longest. STORE_USAGE_FLUSH_MS holds while the
     * writer keeps up; this says whether it does (/metrics). */
    uint64_t usage_wait_ms_sum, usage_wait_count, usage_wait_ms_max;
    /* Usage rows refused because the queue was full (or the store
     * closing): not in the ledger until the next start charges their
     * reservations from the journal (govern/reserve_journal.h). */
    uint64_t usage_dropped;
    uint64_t usage_queued;        /* rows not committed yet, queued or in the commit under way
                                   * (store_usage_backlog; store_get_stats) */
} store_stats;

/* Account one commit's usage rows whose oldest was queued at first_ms. */
static inline void store_stats_usage_wait(store_stats *s, int64_t first_ms, int64_t now_ms)
{
    uint64_t w = now_ms > first_ms ? (uint64_t)(now_ms - first_ms) : 0;
    s->usage_wait_ms_sum += w;
    s->usage_wait_count++;
    if (w > s->usage_wait_ms_max) s->usage_wait_ms_max = w;
}
void   store_get_stats(store *st, store_stats *out);

/* Usage rows queued and not yet committed, read without a lock (either
 * backend). Past STORE_USAGE_SHED_ROWS new metered calls are refused with
 * 503 and Retry-After until the writer catches up (govern/gate.c): the
 * queue's hard bound (100 000 rows, past which rows are dropped and only
 * charged at the next start) is then reached only if the calls already
 * admitted finish faster than the writer commits — and invariant 4 says a
 * bounded queue sheds load rather than lose what it queues. */
#define STORE_USAGE_SHED_ROWS 50000
uint64_t store_usage_backlog(store *st);
/* How many of those rows are tenant_id's; *tenants (may be NULL): how many
 * tenants have rows among them. What the gate sheds by: a tenant holding
 * at least an even share is shed first (govern/gate.c). */
uint64_t store_usage_backlog_of(store *st, const char *tenant_id, size_t *tenants);

/* --- storage quotas ---
 * Per user, by tier (docs/config.md `tiers`): what stops one user from
 * filling the disk. 0 = unlimited. Each check runs inside the writer's
 * transaction together with the write it guards, so parallel writes can
 * never pass it together. */
typedef struct store_quota {
    int64_t memory_bytes;            /* keys and values together, in bytes */
    int64_t memory_entries;
    int64_t sessions;
    int64_t messages_per_session;    /* checked when a run starts (the user's message) */
} store_quota;

/* Which quota refused a write: the names are the config keys. */
typedef struct store_quota_refusal {
    const char *quota;               /* "memory_bytes", "memory_entries", "sessions",
                                      * "messages_per_session" */
    int64_t limit;                   /* the tier's value */
    int64_t used;                    /* before the refused write */
    int64_t wanted;                  /* what the write would have made it */
} store_quota_refusal;

/* How the store learns the quota of a scope's tier: called on the caller's
 * thread before a write that a quota guards; must be thread-safe and must
 * not block. Not set (the default): no quotas. Set once, before serving. */
typedef void (*store_quota_fn)(void *arg, const char *tier, store_quota *out);
void store_set_quota_fn(store *st, store_quota_fn fn, void *arg);
/* After STORE_QUOTA or STORE_TOO_LARGE: which quota, for this thread's
 * latest refused store call (like errno: read it right away). */
const store_quota_refusal *store_quota_refused(void);
/* "the memory_bytes quota of tier "pro" is 10485760 bytes: 10480000 in use,
 * this write would make 10490000" — for error messages. */
void store_quota_describe(const store_quota_refusal *r, const char *tier, char *out, size_t outlen);

/* --- authentication (src/identity/ only; no scope yet) --- */

/* Call fn for every key, user and tenant (at start, to fill caches). */
store_status store_load_keys(store *st, void (*fn)(const key_rec *k, void *arg), void *arg);
store_status store_load_users(store *st, void (*fn)(const user_rec *u, void *arg), void *arg);
store_status store_load_tenants(store *st, void (*fn)(const tenant_rec *t, void *arg), void *arg);
/* Replace a tenant's stored JWT key, only if it still reads old_key (the
 * one-time sealing of keys stored in plaintext by older versions). */
store_status store_tenant_reseal_jwt_key(store *st, const char *tenant_id, const char *old_key,
                                         const char *new_key);
/* Rewrite the database file and empty the write-ahead log, so bytes of
 * rows that were replaced (a plaintext key just sealed) are not left in
 * free pages. Blocking; for start-up, before serving. */
store_status store_scrub_freed(store *st);
/* JWT provisioning: insert the user if (tenant, external_id) is new, else
 * return the existing one. */
store_status store_user_provision(store *st, const char *tenant_id, const char *external_id,
                                  const char *tier, user_rec *out);

/* --- tenants --- */

/* Server admin. Creates the tenant and its first admin key in one transaction. */
store_status store_tenant_create(store *st, const scope *sc, const tenant_rec *t,
                                 const key_rec *admin_key);
/* Server admin: all tenants; tenant admin: its own. Caller frees with store_free_tenants. */
store_status store_tenant_list(store *st, const scope *sc, tenant_rec **out, size_t *n);
store_status store_tenant_get(store *st, const scope *sc, const char *tenant_id, tenant_rec *out);
/* Server admin only (a tenant may not raise its own budget). */
store_status store_tenant_set_limits(store *st, const scope *sc, const char *tenant_id,
                                     const user_limits *limits);
/* That tenant's admin only (the server admin sets them at creation). */
store_status store_tenant_set_jwt(store *st, const scope *sc, const char *tenant_id,
                                  const tenant_jwt *jwt /* NULL clears */);
void         tenant_rec_free(tenant_rec *t);              /* frees jwt.key */
void         store_free_tenants(tenant_rec *arr, size_t n);

/* --- users (tenant admin; a user scope may read only itself) --- */

store_status store_user_create(store *st, const scope *sc, const user_rec *u);
store_status store_user_get(store *st, const scope *sc, const char *user_id, user_rec *out);
/* Paged by id: users with id > after (NULL = from the start), at most limit. */
store_status store_user_list(store *st, const scope *sc, const char *after, size_t limit,
                             user_rec **out, size_t *n);
store_status store_user_update(store *st, const scope *sc, const char *user_id,
                               const user_update *upd, user_rec *out);
/* Erases the user, their keys, sessions, messages, runs, memory and spans
 * (and the ownerless spans of their traces). The erased rows are
 * overwritten on disk (secure_delete), the memory search index is merged
 * so that no word of theirs stays in it, and the WAL is emptied before
 * this returns. */
store_status store_user_delete(store *st, const scope *sc, const char *user_id);

/* --- keys --- */

store_status store_key_create(store *st, const scope *sc, const key_rec *k);
/* Tenant admin: keys of one of its users; user: own keys only. */
store_status store_key_list(store *st, const scope *sc, const char *user_id,
                            key_rec **out, size_t *n);
store_status store_key_get(store *st, const scope *sc, const char *key_id, key_rec *out);
/* STORE_CONFLICT if key_id is the tenant's last active admin key. */
store_status store_key_revoke(store *st, const scope *sc, const char *key_id, int64_t when);
/* Tenant admin: its tenant's admin keys (prefixes, never hashes to the API). */
store_status store_admin_key_list(store *st, const scope *sc, key_rec **out, size_t *n);

/* --- usage --- */

/* Enqueue (never blocks on disk; safe on a loop thread). */
void         store_usage_record(store *st, const usage_rec *u);
/* Tenant admin: its tenant (optionally one user); user: own usage only. */
store_status store_usage_query(store *st, const scope *sc, const usage_query *q,
                               usage_row **out, size_t *n);
/* Spend of one user over [from, to), nano-USD (for /v1/me). */
store_status store_usage_spent(store *st, const scope *sc, int64_t from, int64_t to,
                               int64_t *cost_nusd);
/* A consistent copy of data_dir's database into dest (a new file, 0600),
 * taken while a server may be writing (SQLite's online backup), then
 * checked (quick_check). The key files beside the database are not in it:
 * docs/operations.md. 0, or -1 with err (dest removed). */
typedef struct store_backup_info {
    uint64_t pages, bytes;
} store_backup_info;
int store_backup(const char *data_dir, const char *dest, store_backup_info *out, char *err,
                 size_t errlen);
/* Wait until every usage record queued so far is committed (tests, shutdown). */
void         store_usage_flush(store *st);
/* Called by the writer thread after each commit of queued usage rows, with
 * the rows just made durable (the reservation journal closes theirs). Set
 * before serving. Rows dropped on an error are not passed. */
void         store_set_usage_committed_hook(store *st,
                                            void (*fn)(void *arg, const usage_rec *rows, size_t n),
                                            void *arg);
/* Insert rows into the ledger now, in one transaction (durable on return):
 * the reconciliation at start. */
store_status store_usage_insert_now(store *st, const usage_rec *rows, size_t n);
/* Start-up only (no scope: it feeds the governance rebuild): the spend
 * since `from` (unix s), one call per (tenant, user, key, UTC day) with
 * that day's start and total. */
/* Start-up only: which of the reservation ids (< 2^63, none 0) already
 * settle a ledger row with ts >= `since` (unix s; a row's ts is never
 * before its reservation's). committed[i] is set for ids[i]. */
store_status store_usage_reservations_committed(store *st, int64_t since, const uint64_t *ids, size_t n,
                                                bool *committed);
store_status store_usage_ledger(store *st, int64_t from,
                                void (*fn)(const char *tenant_id, const char *user_id,
                                           const char *key_id, int64_t ts, int64_t cost_nusd,
                                           void *arg),
                                void *arg);


/* ==================== sessions, messages, runs, memory ====================
 * All of these belong to one user: every function takes that user's scope
 * (SCOPE_USER) and sees nothing else; other scopes get STORE_FORBIDDEN, and
 * another user's objects are STORE_NOT_FOUND. */

#define STORE_AGENT_MAX 65
#define STORE_MEMORY_KEY_MAX 256            /* bytes, keys are [^\x00-\x1f]{1,256} */
#define STORE_MEMORY_VALUE_MAX (64u << 10)  /* 64 KiB a value */
#define STORE_ORIGIN_MAX (16u << 10)        /* a message's or memory entry's origin JSON */

typedef struct session_rec {
    char    id[ID_MAX];                 /* "ses_…" */
    char    agent[STORE_AGENT_MAX];
    char   *metadata_json;              /* malloc'd JSON object text, or NULL */
    int64_t created_at;
    int64_t updated_at;                 /* last message */
    int64_t message_count;
} session_rec;

typedef struct message_rec {
    int64_t seq;                        /* order within the session, from 1 */
    char    session_id[ID_MAX];
    char    run_id[ID_MAX];             /* the run that wrote it ("" for none) */
    char    role[12];                   /* user | assistant | tool */
    char   *content;                    /* malloc'd, may be NULL (assistant with only tool calls) */
    char   *tool_calls_json;            /* malloc'd OpenAI tool_calls array text, or NULL */
    char    tool_call_id[72];           /* role tool */
    char   *origin_json;                /* malloc'd: its origin (core/origin.h) as JSON
                                           object text; NULL for a row older than
                                           provenance (migration 12) */
    int64_t created_at;
} message_rec;

typedef enum run_status {
    RUN_QUEUED = 1, RUN_RUNNING, RUN_WAITING_APPROVAL, RUN_COMPLETED, RUN_FAILED,
    RUN_CANCELLED, RUN_INTERRUPTED, RUN_WAITING_AUTH
} run_status;

typedef struct run_rec {
    char       id[ID_MAX];              /* "run_…" */
    char       session_id[ID_MAX];
    char       agent[STORE_AGENT_MAX];
    run_status status;
    char       error_code[48];          /* failed / interrupted / cancelled: why */
    char       error_message[256];
    int64_t    input_tokens, output_tokens, cost_nusd;
    int64_t    steps, tool_calls;
    int64_t    user_seq;                /* the user message that started it */
    int64_t    final_seq;               /* the final assistant message (0 until completed) */
    int64_t    history_count;           /* set by a run's start only: the session's stored
                                           messages before its user message (the count a
                                           cached history is checked against) */
    int64_t    created_at, started_at, finished_at;
} run_rec;

typedef struct memory_rec {
    char    key[STORE_MEMORY_KEY_MAX + 1];
    char   *value;                      /* malloc'd */
    char   *origin_json;                /* malloc'd: who wrote it (core/origin.h), JSON
                                           object text; NULL: not recorded (older entry) */
    int64_t updated_at;
} memory_rec;

const char *run_status_name(run_status s);    /* "queued", "running", … */
bool        run_status_terminal(run_status s);

void session_rec_free(session_rec *s);
void message_rec_free(message_rec *m);          /* frees content, tool_calls_json, origin_json */
void store_free_sessions(session_rec *arr, size_t n);
void store_free_messages(message_rec *arr, size_t n);
void memory_rec_free(memory_rec *m);
void store_free_memories(memory_rec *arr, size_t n);

/* --- sessions --- */
store_status store_session_create(store *st, const scope *sc, const char *agent,
                                  const char *metadata_json, session_rec *out);
store_status store_session_get(store *st, const scope *sc, const char *session_id,
                               session_rec *out);
/* Newest first; paged by `before` (a session id, NULL = newest). */
store_status store_session_list(store *st, const scope *sc, const char *before, size_t limit,
                                session_rec **out, size_t *n);
/* Erases the session, its messages and its runs. */
store_status store_session_delete(store *st, const scope *sc, const char *session_id);

/* --- messages --- */
/* The transcript, oldest first: messages with seq > after_seq, at most limit. */
store_status store_message_list(store *st, const scope *sc, const char *session_id,
                                int64_t after_seq, size_t limit, message_rec **out, size_t *n);
/* The newest `limit` messages, oldest first (for building a context). */
store_status store_message_tail(store *st, const scope *sc, const char *session_id,
                                size_t limit, message_rec **out, size_t *n);

/* --- runs --- */
/* Start a run: in one transaction, append the user message and create the
 * run (status queued or running). Fills run->id, user_seq, created_at. */
store_status store_run_start(store *st, const scope *sc, const char *session_id,
                             const char *agent, const char *user_content, run_status status,
                             run_rec *out);
/* A step finished: append its messages (an assistant message with
 * tool_calls and all their tool results, as one group) and update the
 * run's counters — one transaction, so a crash never leaves a tool call
 * without its result. Messages get seq in order; run_id is set. */
store_status store_run_append(store *st, const scope *sc, const run_rec *run,
                              const message_rec *msgs, size_t n);
/* The run ended (completed / failed / cancelled / interrupted): set its
 * status, error, counters and, with a final message, append it — one
 * transaction. `final` may be NULL. Fills run->final_seq. */
store_status store_run_finish(store *st, const scope *sc, run_rec *run, const message_rec *final);
/* Writes behind (store_runs.c): on SQLite a run's start and steps are
 * queued without waiting and land in queue order; only the end is waited
 * for (its done callback). The PostgreSQL backend writes eagerly through
 * the calls above; store_runs_write_behind says which applies. */
bool         store_runs_write_behind(const store *st);
/* The checks of store_run_start, on a reader, without writing: fills out
 * (id, agent, times). On PostgreSQL it is store_run_start (written now). */
store_status store_run_check_start(store *st, const scope *sc, const char *session_id,
                                   const char *agent, const char *user_content, run_status status,
                                   run_rec *out);
typedef struct store_run_behind {
    const char        *start_content;  /* not NULL: the run's start (its user message) rides along */
    const message_rec *msgs;           /* a step: an assistant message and its tool results */
    size_t             n;
    int64_t            expect_steps;   /* the run's steps as its previous write stored them */
    bool               finish;         /* the end: status, error, counters, `final` */
    const message_rec *final;
} store_run_behind;
/* Called on the writer thread once the write committed (or failed): st,
 * and the run as written (user_seq, final_seq; a run whose earlier step
 * is missing is ended failed, store_error, and `stored` says so). */
typedef void (*store_run_behind_done)(void *arg, store_status st, const run_rec *stored);
/* Queue one write of the run (copies everything; never blocks on disk).
 * STORE_OK: queued, done (may be NULL) will be called; else nothing was
 * queued. */
store_status store_run_write_behind(store *st, const scope *sc, const run_rec *run,
                                    const store_run_behind *w, store_run_behind_done done,
                                    void *done_arg);
/* Returns once every write queued before it has committed and its done
 * callback has run (shutdown). */
void         store_runs_settle(store *st);
/* Status change only (queued → running). */
store_status store_run_set_status(store *st, const scope *sc, const run_rec *run);
store_status store_run_get(store *st, const scope *sc, const char *run_id, run_rec *out);
/* What the session's runs have cost so far, in nano-USD (the agent's
 * max_cost_usd_per_session). */
store_status store_session_spent(store *st, const scope *sc, const char *session_id,
                                 int64_t *cost_nusd);
/* At start, before serving: every run still queued or running is marked
 * interrupted (error_code "server_restart"); a run paused in
 * waiting_approval or waiting_auth is not (it was stored whole: see
 * store_approvals.c). No scope: only serve calls it. Returns how many
 * through *n. */
store_status store_runs_recover(store *st, size_t *n);
/* Several instances on one PostgreSQL (docs/scale-out.md): each stamps the
 * runs it starts with its instance id (random per process) and renews
 * their heartbeat with this call, every STORE_RUN_HEARTBEAT_S; the same
 * call interrupts (error_code "instance_lost") the queued or running runs
 * of other instances whose heartbeat is older than STORE_RUN_LEASE_S —
 * an instance killed mid-run. store_runs_recover then interrupts only such
 * runs, never another live instance's. *lost gets how many it
 * interrupted. SQLite (one instance): nothing to do, STORE_OK. */
#define STORE_RUN_HEARTBEAT_S 10
#define STORE_RUN_LEASE_S 30
store_status store_runs_heartbeat(store *st, size_t *lost);
/* A cancel asked on an instance that does not run the run (several
 * instances on one PostgreSQL): marks the caller's queued or running run
 * (a user's own; a tenant admin's, any of the tenant) when another live
 * instance owns it; *requested says whether it did (false:
 * no such run of the caller's, it has ended, or no other instance runs it).
 * The owner finds the mark with store_runs_cancel_requested and stops the
 * run as a local cancel does. SQLite (one instance): a run not active here
 * is active nowhere — nothing marked, STORE_OK. */
store_status store_run_request_cancel(store *st, const scope *sc, const char *run_id, bool *requested);
/* This instance's queued or running runs that another instance asked to
 * cancel, at most max. SQLite: none. */
typedef struct run_ref {
    char id[ID_MAX], tenant_id[ID_MAX], user_id[ID_MAX];
} run_ref;
store_status store_runs_cancel_requested(store *st, run_ref *out, size_t max, size_t *n);

/* --- paused runs and their approvals (store_approvals.c) --- */
#define STORE_CALL_ID_MAX 260           /* a tool call id (the core allows 256 bytes) */
#define STORE_APPROVALS_PENDING_PER_USER 50     /* pending approvals of one user */
#define STORE_APPROVALS_PENDING_PER_TENANT 1000 /* … and of one tenant */

typedef enum approval_status {
    APPROVAL_PENDING = 0, APPROVAL_APPROVED, APPROVAL_DENIED,
} approval_status;

typedef struct approval_rec {
    char    run_id[ID_MAX];
    char    call_id[STORE_CALL_ID_MAX];
    char    tenant_id[ID_MAX], user_id[ID_MAX], session_id[ID_MAX];
    char    tool[72];
    char   *arguments;                  /* malloc'd: the call's JSON arguments */
    char    reason[300];                /* the policy's rule that matched */
    int     approval_by;                /* approval_by of config.h */
    approval_status status;
    char    decided_by[80];             /* "user:ID", "tenant_admin:KEY", "timeout", "run_ended" */
    char   *note;                       /* malloc'd, may be NULL */
    int64_t deadline, created_at, decided_at;
} approval_rec;

/* What a paused run waits for, and what it needs to go on. */
typedef struct run_wait_rec {
    char    run_id[ID_MAX];
    char    tenant_id[ID_MAX], user_id[ID_MAX], session_id[ID_MAX];
    char    key_id[ID_MAX];             /* the credential the run was started with */
    run_status kind;                    /* RUN_WAITING_APPROVAL or RUN_WAITING_AUTH */
    char   *pending;                    /* malloc'd: the assistant message (JSON) */
    char    provider[72];               /* waiting_auth */
    char   *connect_url;                /* for the auth.required event only: never stored (read back NULL) */
    int64_t deadline;                   /* waiting_auth: the run fails after it; approval: the
                                           earliest deadline of its pending calls */
} run_wait_rec;

void approval_rec_free(approval_rec *a);
void store_free_approvals(approval_rec *arr, size_t n);
void run_wait_rec_free(run_wait_rec *w);
void store_free_run_waits(run_wait_rec *arr, size_t n);

/* Pause a run: in one transaction, its status (w->kind) and counters, the
 * wait and its approvals (n may be 0 for waiting_auth). STORE_QUOTA when
 * the user or the tenant already has too many pending approvals. */
store_status store_run_pause(store *st, const scope *sc, const run_rec *run,
                             const run_wait_rec *w, const approval_rec *approvals, size_t n);
/* The paused run goes on: its wait is taken (read and deleted) and its
 * status set back to running, in one transaction. STORE_NOT_FOUND when it
 * has no wait (already resumed or ended). */
store_status store_run_unpause(store *st, const scope *sc, const char *run_id, run_wait_rec *out);
/* Every paused run (at start, to know them again). Not scoped. */
store_status store_run_waits_all(store *st, run_wait_rec **out, size_t *n);
/* What one paused run of this user waits for (GET /v1/runs/{id}):
 * STORE_NOT_FOUND when it is not paused (or not theirs). */
store_status store_run_wait_of(store *st, const scope *sc, const char *run_id, run_wait_rec *out);
/* The approvals of a run of the tenant (user_id NULL: any of its users),
 * in the order they were asked. */
store_status store_approvals_of_run(store *st, const char *tenant_id, const char *user_id,
                                    const char *run_id, approval_rec **out, size_t *n);
/* Pending approvals of a user (user_id NULL: the whole tenant's), oldest
 * first, at most limit. */
store_status store_approvals_pending(store *st, const char *tenant_id, const char *user_id,
                                     size_t limit, approval_rec **out, size_t *n);
/* Decide one pending approval. `by_user` is the deciding user's id (a
 * tenant admin: NULL, `admin_key` names the key), checked against the
 * approval's approval_by. STORE_NOT_FOUND: no such approval for this user
 * (or tenant); STORE_FORBIDDEN: the policy does not let this caller decide;
 * STORE_CONFLICT: already decided. *out gets the row as decided and
 * *pending_left how many of the run's approvals still wait. */
store_status store_approval_decide(store *st, const char *tenant_id, const char *by_user,
                                   const char *admin_key, const char *run_id,
                                   const char *call_id, bool approve, const char *note,
                                   approval_rec *out, size_t *pending_left);
/* Deny the pending approval whose deadline passed first (decided_by
 * "timeout"); *out gets it as denied. STORE_NOT_FOUND: none is due. One
 * per write, so that the denial's audit entry rides on it (the sweeper
 * calls it until none is left). Not scoped: the server's sweeper. A
 * decision that comes after the deadline finds the call denied the same
 * way (STORE_CONFLICT), whether the sweeper has noticed or not. */
store_status store_approval_expire_next(store *st, int64_t now, approval_rec *out);
/* ---- a tenant's own tools and agents, and the catalogue entries it
 * enabled (store_tenant_defs.c). Read by the tenant's admin and, for runs
 * and listings, by its users; written by its admin only. A row's body is
 * the definition as JSON (validated by the caller with the config
 * readers), or NULL: the server's catalogue entry of that name, enabled. */
/* kind 3: an MCP server (POST /v1/mcp-servers): rows of the same table */
typedef enum store_def_kind { STORE_DEF_TOOL = 1, STORE_DEF_AGENT = 2, STORE_DEF_MCP = 3 } store_def_kind;
#define STORE_DEF_NAME_MAX 65          /* 64 bytes and the NUL */
#define STORE_DEF_BODY_MAX (128u << 10)
typedef struct def_rec {
    char    name[STORE_DEF_NAME_MAX];
    char   *body;                      /* malloc'd; NULL = an enabled catalogue entry */
    int64_t created_at, updated_at;
} def_rec;
void def_rec_free(def_rec *d);
void store_free_defs(def_rec *arr, size_t n);
/* Create (STORE_CONFLICT if the name is taken in this tenant and kind;
 * STORE_QUOTA if the tenant has max_count rows of this kind already). */
store_status store_def_create(store *st, const scope *sc, store_def_kind kind, const char *name,
                              const char *body, size_t max_count);
/* Replace the body of one of the tenant's own definitions (not of an
 * enabled catalogue entry: STORE_NOT_FOUND). */
store_status store_def_update(store *st, const scope *sc, store_def_kind kind, const char *name,
                              const char *body);
store_status store_def_get(store *st, const scope *sc, store_def_kind kind, const char *name, def_rec *out);
store_status store_def_delete(store *st, const scope *sc, store_def_kind kind, const char *name);
/* Every row of this kind in the caller's tenant, by name (NULL when none). */
store_status store_def_list(store *st, const scope *sc, store_def_kind kind, def_rec **out, size_t *n);

/* --- memory (the user's long-term memory; FTS5 search) --- */
store_status store_memory_put(store *st, const scope *sc, const char *key, const char *value,
                              memory_rec *out /* may be NULL */);
/* The same, recording who wrote it: `origin_json` is a JSON object's text
 * (at most STORE_ORIGIN_MAX bytes; NULL: not recorded). */
store_status store_memory_put_from(store *st, const scope *sc, const char *key, const char *value,
                                   const char *origin_json, memory_rec *out /* may be NULL */);
store_status store_memory_get(store *st, const scope *sc, const char *key, memory_rec *out);
store_status store_memory_delete(store *st, const scope *sc, const char *key);

/* --- stored Responses (store_responses.c): POST /v1/responses with
 * "store", continued by previous_response_id. A user's own (role user);
 * another user's id is STORE_NOT_FOUND. Their bytes count against the
 * memory_bytes quota together with memory entries. --- */

#define STORE_RESPONSE_MAX_BYTES   (1u << 20)  /* one stored turn: its items and its object */
#define STORE_RESPONSE_CHAIN_MAX   64          /* responses in one conversation, at most */
#define STORE_RESPONSE_CHAIN_BYTES (4u << 20)  /* their items together */

/* Keep one turn: items_json is a JSON array (its input and output items),
 * object_json the response object. STORE_INVALID for a malformed id or a
 * turn over STORE_RESPONSE_MAX_BYTES; STORE_QUOTA / STORE_TOO_LARGE. */
store_status store_response_put(store *st, const scope *sc, const char *id, const char *previous_id,
                                const char *model, const char *items_json, const char *object_json);
/* Would `bytes` more fit the memory_bytes quota now? (checked again, and
 * decisively, by store_response_put). */
store_status store_response_room(store *st, const scope *sc, int64_t bytes);
/* The response object of one of the caller's responses (malloc'd). */
store_status store_response_get(store *st, const scope *sc, const char *id, char **object_json);
/* Every item of the conversation that ends with `id`, oldest first, as one
 * JSON array (malloc'd). STORE_NOT_FOUND also when an earlier response of
 * the chain was deleted; STORE_TOO_LARGE when the chain already holds
 * STORE_RESPONSE_CHAIN_MAX responses (one more would pass the bound) or
 * STORE_RESPONSE_CHAIN_BYTES. */
store_status store_response_chain(store *st, const scope *sc, const char *id, char **items_json);
store_status store_response_delete(store *st, const scope *sc, const char *id);
/* Full-text search over keys and values (FTS5), at most limit, best first:
 * BM25 with statistics over the caller's own entries only, so nothing
 * another user stores changes the order (store_rank.c); ties newest first.
 * `query` is plain words from a user or a model: it is quoted into an FTS5
 * expression, never passed through as syntax. Empty query: newest first. */
store_status store_memory_search(store *st, const scope *sc, const char *query, size_t limit,
                                 memory_rec **out, size_t *n);

const char *store_status_text(store_status s);

/* --- traces (store_traces.c; written by src/obs/ in batches) ---
 * One record per trace per owner per flush: the spans themselves are an
 * opaque blob (src/obs/span_codec.h) the store never looks inside. On
 * SQLite, consecutive records of one owner whose ids this server made in
 * the same 10 ms are stored together as one row (trace_pack.h); a read
 * gives them back one record per trace as before. */
#define STORE_SPAN_NAME_MAX 96
#define STORE_TRACE_SPANS_MAX 10000            /* spans one read returns at most */
typedef struct trace_rec {
    char     trace_id[33];                     /* 32 lower-case hex */
    char     tenant_id[ID_MAX];                /* never "": ownerless spans are not stored */
    char     user_id[ID_MAX];                  /* "" = a tenant admin's */
    int64_t  start_ns, end_ns;                 /* earliest start, latest end (unix ns) */
    char     root_name[STORE_SPAN_NAME_MAX];   /* the first span without a parent, else the first */
    int      status;                           /* 2 if any span failed, else the root's */
    uint32_t span_count;                       /* spans in the blob, at least 1 */
    unsigned char *blob;                       /* insert: borrowed; read: malloc'd */
    size_t   blob_len;
    bool     local_id;                         /* insert: this server made the id (it begins
                                                * with its time), so the row may share a
                                                * stored pack with others (trace_pack.h) */
} trace_rec;

/* Write a batch of trace rows in one writer operation, then prune: rows
 * that ended before `prune_before_ns`, and rows all of whose spans are
 * older than the newest `max_spans` spans (0 = no cap). A row of a user
 * who no longer exists is skipped. Not scoped: only the tracer calls it. */
store_status store_traces_insert(store *st, const trace_rec *rows, size_t n,
                                 int64_t prune_before_ns, uint64_t max_spans);
/* The same, not waited for (the tracer's flushes): the rows ride with the
 * store's next batch, within STORE_USAGE_FLUSH_MS / 2 — at once when
 * `now` — and done(done_arg, status) is called after their commit, on the
 * writer's thread. rows and their blobs must stay valid until then.
 * STORE_OK: queued, and done will be called once. Anything else: not
 * queued (invalid rows, closing, the writer's queue full), and done is not
 * called. On PostgreSQL the write is made before this returns, and done is
 * called from here. */
store_status store_traces_insert_async(store *st, const trace_rec *rows, size_t n,
                                       int64_t prune_before_ns, uint64_t max_spans, bool now,
                                       void (*done)(void *done_arg, store_status status),
                                       void *done_arg);
/* The rows of one trace, by start time. A tenant admin sees a trace if
 * every row of it belongs to its tenant; a user only if every row is its
 * own. Anything else, or no such trace, is STORE_NOT_FOUND. Rows stop
 * once STORE_TRACE_SPANS_MAX spans are reached. */
store_status store_trace_get(store *st, const scope *sc, const char *trace_id,
                             trace_rec **out, size_t *n);
void store_free_traces(trace_rec *arr, size_t n);

/* --- audit log (store_audit.c) ---
 * An append-only, hash-chained log of security-relevant acts. The store
 * keeps the chain consistent: seq, ts and prev_hash of a new entry are
 * taken inside the single writer's transaction, so concurrent appends form
 * one line. How an entry is hashed and how a checkpoint is signed are the
 * caller's (src/obs/audit_chain.c), passed in as store_audit_chain: the
 * store holds no key. Reading text fields: valid during the callback only. */
#define AUDIT_HASH_HEX 65                 /* 64 hex digits of SHA-256 + NUL */
#define AUDIT_SIG_HEX 129                 /* 128 hex digits of an Ed25519 signature + NUL */

typedef struct audit_rec {
    int64_t     seq;                      /* position in the chain, from 1 */
    int64_t     ts;                       /* unix seconds; never decreases along the chain */
    const char *tenant_id;                /* "" = not a tenant's act (server admin, unknown) */
    const char *actor;                    /* "tenant_admin:key_…", "user:usr_…", "server_admin", "anonymous" */
    const char *credential;               /* the key id, "jwt", "admin-token", "cli" or a kind */
    const char *action;                   /* "key.create", "auth.failure", … */
    const char *target;                   /* the object acted on ("" = none) */
    const char *details;                  /* JSON object text */
    char        prev_hash[AUDIT_HASH_HEX];
    char        hash[AUDIT_HASH_HEX];
    bool        malformed;                /* read back: a column had a wrong type or a NUL byte */
    bool        sealed;                   /* append: a checkpoint over this entry was written too */
    bool        written;                  /* attached to an act: it committed with it */
    /* attached to an act: called inside the act's transaction, after the
     * act and before the entry is hashed, to fill what only the act knew
     * (the id it created); NULL = nothing to fill */
    void      (*finish)(struct audit_rec *e);
} audit_rec;

typedef struct audit_checkpoint {
    int64_t seq;                          /* the entry it signs */
    int64_t ts;                           /* when it was made */
    char    hash[AUDIT_HASH_HEX];         /* that entry's hash */
    char    signature[AUDIT_SIG_HEX];     /* Ed25519 over the checkpoint encoding, hex */
    int     version;                      /* 2: chained (below); 1: a legacy checkpoint, signs
                                           * seq, hash and ts only */
    uint64_t every;                       /* v2: the bound it was made under — entries … */
    uint64_t interval_s;                  /* … and seconds between seals */
    uint32_t flags;                       /* v2: AUDIT_CP_* */
    int64_t prev_seq;                     /* v2: the checkpoint before it (0 = the first) */
    char    prev_signature[AUDIT_SIG_HEX];/* v2: that checkpoint's signature ("" = first);
                                           * not a column — the previous row's signature */
} audit_checkpoint;

#define AUDIT_CP_RECOVERY 1u              /* seals a tail found unsealed at startup (after a crash) */

typedef struct store_audit_chain {
    /* fill e->hash from every other field (e->prev_hash included) */
    void (*hash)(const audit_rec *e, char out[AUDIT_HASH_HEX]);
    /* fill cp->signature; 0, or -1 to make no checkpoint. NULL: never sign. */
    int (*sign)(void *arg, audit_checkpoint *cp);
    void *sign_arg;
    uint64_t every;                       /* a checkpoint each `every` entries (0 = none) */
    uint64_t interval_s;                  /* recorded in each checkpoint: the time bound of the
                                           * sealer (src/obs/audit.c) */
} store_audit_chain;

typedef struct audit_query {
    const char *tenant_id;                /* server admin: filter (NULL = every tenant); else forced */
    const char *actor, *action;           /* exact match; NULL = any */
    int64_t     from, to;                 /* ts in [from, to); 0 = open */
    int64_t     after;                    /* seq > after (pagination) */
    size_t      limit;                    /* rows wanted (1..1000) */
} audit_query;

/* Append one entry: fills e->seq, e->ts, e->prev_hash, e->hash. Durable on
 * return. Every `chain->every` entries a signed checkpoint is written in
 * the same transaction. Not scoped: the actor is data here, and only
 * src/obs/audit.c calls it. */
store_status store_audit_append(store *st, audit_rec *e, const store_audit_chain *chain);
/* The same without waiting, for a loop thread (SQLite only; STORE_INVALID
 * on PostgreSQL, whose writes are made on the caller's thread): the entry
 * is queued behind every write already queued and commits with the next
 * batch someone waits for (a run's step or end), or at the latest
 * STORE_USAGE_FLUSH_MS / 2 after it was queued. Then done(done_arg,
 * status, e) is called on the writer thread (e->written and e->sealed
 * set): e, and what it points at, must live until then. STORE_OK: queued,
 * done will be called; anything else: not queued, done is not called. */
typedef void (*store_audit_behind_done)(void *arg, store_status status, audit_rec *e);
store_status store_audit_append_behind(store *st, audit_rec *e, const store_audit_chain *chain,
                                       store_audit_behind_done done, void *done_arg);
/* An act and its audit entry in one transaction (invariant 5, docs/architecture.md).
 * store_audit_attach arms the calling thread: the next store write it makes
 * — the act — appends the entry in the same transaction, right after the
 * act's own statements succeeded. If the act or the entry fails, neither
 * is kept: a crash can never leave an act without its entry. Up to
 * STORE_AUDIT_ATTACH_MAX entries may ride on one act (attach several
 * times). e->target may point at a buffer the act itself fills (the id it
 * creates): it is read when the entry is appended. After the act,
 * store_audit_detach disarms the thread; e->written then says whether the
 * entry committed (false also when no write was made). Only src/obs/audit.c
 * calls these (obs_audit_act_begin / _end). */
#define STORE_AUDIT_ATTACH_MAX 4
void store_audit_attach(store *st, audit_rec *e, const store_audit_chain *chain);
void store_audit_detach(store *st);
/* Sign the newest entry if no checkpoint covers it yet (at shutdown, when
 * the time bound is reached, at startup after a crash with `flags`
 * AUDIT_CP_RECOVERY). *sealed (may be NULL): the seq signed, 0 if none. */
store_status store_audit_checkpoint(store *st, const store_audit_chain *chain, uint32_t flags,
                                    int64_t *sealed);
/* The log's tail as it stands: the newest entry, the newest checkpoint, and
 * the first entry after that checkpoint (0 / 0 when none). One read. */
typedef struct audit_tail {
    int64_t last_seq, last_cp_seq;
    int64_t first_unsealed_seq, first_unsealed_ts;
    char    last_cp_signature[AUDIT_SIG_HEX];
} audit_tail;
store_status store_audit_tail(store *st, audit_tail *out);
/* Entries in seq order: a tenant admin its tenant's, the server admin any;
 * users STORE_FORBIDDEN. fn is called for at most q->limit rows; *has_more
 * says whether more match. */
store_status store_audit_list(store *st, const scope *sc, const audit_query *q,
                              void (*fn)(const audit_rec *e, void *arg), void *arg,
                              bool *has_more);
/* The log for verification, in one read transaction (a consistent
 * snapshot while a server writes): checkpoints and entries from seq `from`
 * on (1 = the whole log), merged in seq order, a checkpoint before the
 * entry it signs. A callback returning non-zero stops the scan. Not
 * scoped: the verifier (src/obs/audit_verify.c) only. */
store_status store_audit_scan(store *st, int64_t from,
                              int (*on_checkpoint)(const audit_checkpoint *cp, void *arg),
                              int (*on_entry)(const audit_rec *e, void *arg), void *arg);
/* The data directory the store lives in (where the audit key is kept). */
void store_data_dir(const store *st, char *out, size_t outlen);

/* --- the guard's decisions (store_guard.c) ---
 * One row per decision of the guard that was not "allow" (a detector's
 * flag, spotlight, drop or block; a refusal by taint or exfiltration; a
 * withheld answer): who, where, what decided and what it did. Never the
 * flagged text or the user's data. Written without waiting (the writer's
 * next batch), pruned by age on every write, by count per tenant every max/100 writes. */
#define GUARD_DECISION_TOOL_MAX 129       /* bytes of a tool name, with its NUL */
#define GUARD_DECISION_LABELS_MAX 512     /* bytes of the labels (a JSON array), with its NUL */

typedef struct guard_decision_rec {
    int64_t id;                           /* read: the row's id (the cursor) */
    int64_t created_at;                   /* unix seconds */
    char    tenant_id[ID_MAX];
    char    user_id[ID_MAX];              /* "" when no user (a tenant admin's run) */
    char    session_id[ID_MAX];
    char    run_id[ID_MAX];               /* "" when refused before the run existed */
    char    channel[24];                  /* user | tool | tool_description | tool_call | answer */
    char    tool[GUARD_DECISION_TOOL_MAX];/* "" when none */
    char    detector[64];                 /* a detector, or the check: taint, exfiltration */
    double  score;                        /* < 0: none (a check, not a detector) */
    char    action[16];                   /* flag | spotlight | drop | block | refuse |
                                             approval | withhold */
    char    labels[GUARD_DECISION_LABELS_MAX]; /* a JSON array of strings */
} guard_decision_rec;

typedef struct guard_decision_retention {
    int64_t max_age_s;                    /* rows older are deleted; 0 = no age bound */
    int64_t max_per_tenant;               /* a tenant's oldest rows past this go; 0 = no bound */
} guard_decision_retention;

/* Queue one row (never blocks on disk; safe on a loop thread); the audit
 * entries armed on this thread (obs_audit_act_begin) ride on its write.
 * done(arg, status) is called on the writer thread once committed (may be
 * NULL). STORE_OK: queued; else nothing was queued and done is not called. */
store_status store_guard_decision_record(store *st, const guard_decision_rec *r,
                                         const guard_decision_retention *keep,
                                         void (*done)(void *arg, store_status status), void *arg);

typedef struct guard_decision_query {
    const char *tenant_id;                /* server admin: filter (NULL = every tenant); else forced */
    const char *user_id;                  /* tenant admin: filter; users: ignored (always self) */
    const char *run_id, *action, *channel; /* exact match; NULL = any */
    int64_t     from, to;                 /* created_at in [from, to); 0 = open */
    int64_t     before;                   /* id < before (the cursor); 0 = from the newest */
    size_t      limit;                    /* rows wanted, 1..1000 */
} guard_decision_query;

/* Newest first. A user sees its own rows only, a tenant admin its tenant's. */
store_status store_guard_decisions_list(store *st, const scope *sc, const guard_decision_query *q,
                                        guard_decision_rec **out, size_t *n, bool *has_more);

/* Counts in one grouping: (detector, action, channel, UTC day). */
typedef struct guard_decision_count {
    char    detector[64];
    char    action[16];
    char    channel[24];
    char    day[11];                      /* YYYY-MM-DD */
    int64_t count;
} guard_decision_count;
#define GUARD_DECISION_COUNTS_MAX 20000   /* groups read at most; *truncated says so */

/* The same scope rules as the list; q's run_id/action/channel/before/limit unused. */
store_status store_guard_decisions_summary(store *st, const scope *sc,
                                           const guard_decision_query *q,
                                           guard_decision_count **out, size_t *n, bool *truncated);

/* Delete what the retention does not keep, for every tenant (tests, and
 * the writes themselves prune their own tenant). Rows deleted in *deleted. */
store_status store_guard_decisions_prune(store *st, const guard_decision_retention *keep,
                                         int64_t now, int64_t *deleted);

#endif
