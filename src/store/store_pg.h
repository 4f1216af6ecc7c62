/* store_pg.h — the PostgreSQL backend of store.h, and how the SQLite files
 * hand a call over to it.
 *
 * Dispatch: a store opened on PostgreSQL is the same `struct store` with
 * `pg` set and no SQLite connection at all. Each store.h function that the
 * PostgreSQL backend implements starts with one STORE_PG_DISPATCH line that
 * forwards the call; the SQLite code below that line keeps its shape. A
 * store.h function without that line is not implemented on PostgreSQL yet,
 * and store_open_backend refuses `kind: postgres` while any is missing
 * (store_pg_missing lists them), so no caller can reach a SQLite code path
 * with a PostgreSQL store.
 *
 * This header does not include libpq: the SQLite files include it for the
 * dispatch macros only. The backend's own files include store_pg_internal.h. */
#ifndef BRIGADE_STORE_PG_H
#define BRIGADE_STORE_PG_H

#include "store/store.h"

struct pg_store;

/* Forward a store.h call to the PostgreSQL backend when the store is one. */
#define STORE_PG_DISPATCH(st, call) \
    do { if ((st) && store_pg_of(st)) return call; } while (0)
#define STORE_PG_DISPATCH_VOID(st, call) \
    do { if ((st) && store_pg_of(st)) { call; return; } } while (0)

struct pg_store *store_pg_of(const store *st);   /* NULL: a SQLite store */

/* Open a PostgreSQL store whatever is implemented (the unit tests use this;
 * serve and the CLI go through store_open_backend, which refuses a
 * partial backend). url: a libpq connection string or URI. pool: read/write
 * connections (1..256); the usage writer has one more of its own. */
store *store_pg_open(const char *url, unsigned pool, char *err, size_t errlen);

/* The backend alone (connections, migrations, the writer thread), without
 * the store handle around it: store_pg_open's half. */
struct pg_store *store_pg_new(const char *url, unsigned pool, char *err, size_t errlen);

/* The store.h functions not implemented on PostgreSQL yet, comma-separated
 * ("" once every one is). */
const char *store_pg_missing(void);

/* ---- the implemented functions (same contracts as store.h) ---- */
void         store_pg_close(struct pg_store *p);
void         store_pg_close_store(store *st);   /* store_close of a PostgreSQL store */
bool         store_pg_ping(struct pg_store *p);
store_status store_pg_scrub_freed(struct pg_store *p);
int          store_pg_schema_version(struct pg_store *p);
void         store_pg_get_stats(struct pg_store *p, store_stats *out);
uint64_t     store_pg_usage_backlog(struct pg_store *p);
uint64_t     store_pg_usage_backlog_of(struct pg_store *p, const char *tenant_id, size_t *tenants);

void         store_pg_usage_record(struct pg_store *p, const usage_rec *u);
void         store_pg_usage_flush(struct pg_store *p);
void         store_pg_set_usage_committed_hook(struct pg_store *p,
                                               void (*fn)(void *arg, const usage_rec *rows, size_t n),
                                               void *arg);
store_status store_pg_usage_insert_now(store *st, const usage_rec *rows, size_t n);
store_status store_pg_usage_query(struct pg_store *p, const scope *sc, const usage_query *q,
                                  usage_row **out, size_t *n);
store_status store_pg_usage_spent(struct pg_store *p, const scope *sc, int64_t from, int64_t to,
                                  int64_t *cost_nusd);
store_status store_pg_usage_reservations_committed(struct pg_store *p, int64_t since, const uint64_t *ids,
                                                   size_t n, bool *committed);
store_status store_pg_usage_ledger(struct pg_store *p, int64_t from,
                                   void (*fn)(const char *tenant_id, const char *user_id,
                                              const char *key_id, int64_t ts, int64_t cost_nusd,
                                              void *arg),
                                   void *arg);

/* the audit log: appends take the store (its thread's armed entries ride
 * on the store's own transaction) */
store_status store_pg_audit_append(store *st, audit_rec *e, const store_audit_chain *chain);
store_status store_pg_audit_checkpoint(store *st, const store_audit_chain *chain, uint32_t flags,
                                       int64_t *sealed);
store_status store_pg_audit_tail(struct pg_store *p, audit_tail *out);
store_status store_pg_audit_list(struct pg_store *p, const scope *sc, const audit_query *q,
                                 void (*fn)(const audit_rec *e, void *arg), void *arg, bool *has_more);
store_status store_pg_audit_scan(struct pg_store *p, int64_t from,
                                 int (*on_checkpoint)(const audit_checkpoint *cp, void *arg),
                                 int (*on_entry)(const audit_rec *e, void *arg), void *arg);

/* tenants, users, keys (store_pg_tenants.c, store_pg_users.c); writes take
 * the store (their audit entries ride on the transaction) */
store_status store_pg_load_tenants(struct pg_store *p, void (*fn)(const tenant_rec *t, void *arg), void *arg);
store_status store_pg_tenant_create(store *st, const scope *sc, const tenant_rec *t, const key_rec *admin_key);
store_status store_pg_tenant_list(struct pg_store *p, const scope *sc, tenant_rec **out, size_t *n);
store_status store_pg_tenant_get(struct pg_store *p, const scope *sc, const char *tenant_id, tenant_rec *out);
store_status store_pg_tenant_set_limits(store *st, const scope *sc, const char *tenant_id,
                                        const user_limits *limits);
store_status store_pg_tenant_set_jwt(store *st, const scope *sc, const char *tenant_id, const tenant_jwt *jwt);
store_status store_pg_tenant_reseal_jwt_key(store *st, const char *tenant_id, const char *old_key,
                                            const char *new_key);
store_status store_pg_load_users(struct pg_store *p, void (*fn)(const user_rec *u, void *arg), void *arg);
store_status store_pg_load_keys(struct pg_store *p, void (*fn)(const key_rec *k, void *arg), void *arg);
store_status store_pg_user_provision(store *st, const char *tenant_id, const char *external_id,
                                     const char *tier, user_rec *out);
store_status store_pg_user_create(store *st, const scope *sc, const user_rec *u);
store_status store_pg_user_get(struct pg_store *p, const scope *sc, const char *user_id, user_rec *out);
store_status store_pg_user_list(struct pg_store *p, const scope *sc, const char *after, size_t limit,
                                user_rec **out, size_t *n);
store_status store_pg_user_update(store *st, const scope *sc, const char *user_id, const user_update *upd,
                                  user_rec *out);
store_status store_pg_user_delete(store *st, const scope *sc, const char *user_id);
store_status store_pg_key_create(store *st, const scope *sc, const key_rec *k);
store_status store_pg_key_list(struct pg_store *p, const scope *sc, const char *user_id, key_rec **out,
                               size_t *n);
store_status store_pg_key_get(struct pg_store *p, const scope *sc, const char *key_id, key_rec *out);
store_status store_pg_key_revoke(store *st, const scope *sc, const char *key_id, int64_t when);
store_status store_pg_admin_key_list(struct pg_store *p, const scope *sc, key_rec **out, size_t *n);

/* memory (store_pg_memory.c): search by PostgreSQL full-text search */
store_status store_pg_memory_put_from(store *st, const scope *sc, const char *key, const char *value,
                                      const char *origin_json, memory_rec *out);
store_status store_pg_memory_get(struct pg_store *p, const scope *sc, const char *key, memory_rec *out);
store_status store_pg_memory_delete(store *st, const scope *sc, const char *key);
store_status store_pg_memory_search(struct pg_store *p, const scope *sc, const char *query, size_t limit,
                                    memory_rec **out, size_t *n);

/* tenant definitions (store_pg_defs.c) and stored Responses (store_pg_responses.c) */
store_status store_pg_def_create(store *st, const scope *sc, store_def_kind kind, const char *name,
                                 const char *body, size_t max_count);
store_status store_pg_def_update(store *st, const scope *sc, store_def_kind kind, const char *name,
                                 const char *body);
store_status store_pg_def_delete(store *st, const scope *sc, store_def_kind kind, const char *name);
store_status store_pg_def_get(struct pg_store *p, const scope *sc, store_def_kind kind, const char *name,
                              def_rec *out);
store_status store_pg_def_list(struct pg_store *p, const scope *sc, store_def_kind kind, def_rec **out,
                               size_t *n);
store_status store_pg_response_put(store *st, const scope *sc, const char *id, const char *previous_id,
                                   const char *model, const char *items_json, const char *object_json);
store_status store_pg_response_room(store *st, const scope *sc, int64_t bytes);
store_status store_pg_response_get(struct pg_store *p, const scope *sc, const char *id, char **object_json);
store_status store_pg_response_chain(struct pg_store *p, const scope *sc, const char *id, char **items_json);
store_status store_pg_response_delete(store *st, const scope *sc, const char *id);

/* traces (store_pg_traces.c) */
store_status store_pg_traces_insert(store *st, const trace_rec *rows, size_t n, int64_t prune_before_ns,
                                    uint64_t max_spans);
/* Written at once (this backend's writes are made on the caller's thread);
 * done is called before it returns. */
store_status store_pg_traces_insert_async(store *st, const trace_rec *rows, size_t n,
                                          int64_t prune_before_ns, uint64_t max_spans,
                                          void (*done)(void *done_arg, store_status status),
                                          void *done_arg);
store_status store_pg_trace_get(struct pg_store *p, const scope *sc, const char *trace_id, trace_rec **out,
                                size_t *n);

/* sessions, messages, runs (store_pg_sessions.c) */
store_status store_pg_session_create(store *st, const scope *sc, const char *agent, const char *metadata_json,
                                     session_rec *out);
store_status store_pg_session_get(struct pg_store *p, const scope *sc, const char *session_id, session_rec *out);
store_status store_pg_session_list(struct pg_store *p, const scope *sc, const char *before, size_t limit,
                                   session_rec **out, size_t *n);
store_status store_pg_session_delete(store *st, const scope *sc, const char *session_id);
store_status store_pg_message_list(struct pg_store *p, const scope *sc, const char *session_id,
                                   int64_t after_seq, size_t limit, message_rec **out, size_t *n);
store_status store_pg_message_tail(struct pg_store *p, const scope *sc, const char *session_id, size_t limit,
                                   message_rec **out, size_t *n);
store_status store_pg_run_start(store *st, const scope *sc, const char *session_id, const char *agent,
                                const char *user_content, run_status status, run_rec *out);
store_status store_pg_run_append(store *st, const scope *sc, const run_rec *run, const message_rec *msgs,
                                 size_t n);
store_status store_pg_run_finish(store *st, const scope *sc, run_rec *run, const message_rec *final);
store_status store_pg_run_set_status(store *st, const scope *sc, const run_rec *run);
store_status store_pg_run_get(struct pg_store *p, const scope *sc, const char *run_id, run_rec *out);
store_status store_pg_runs_recover(store *st, size_t *n);
store_status store_pg_runs_heartbeat(store *st, size_t *lost);
store_status store_pg_run_request_cancel(store *st, const scope *sc, const char *run_id, bool *requested);
store_status store_pg_runs_cancel_requested(struct pg_store *p, run_ref *out, size_t max, size_t *n);
/* This instance's id: DATA_DIR/instance.id, made (random) the first time.
 * Without a data directory (tests) it is "ins_default". 0, or -1 with err. */
int          store_pg_load_instance(struct pg_store *p, const char *data_dir, char *err, size_t errlen);
store_status store_pg_session_spent(struct pg_store *p, const scope *sc, const char *session_id,
                                    int64_t *cost_nusd);

/* paused runs and approvals (store_pg_approvals.c) */
store_status store_pg_run_pause(store *st, const scope *sc, const run_rec *run, const run_wait_rec *w,
                                const approval_rec *approvals, size_t n);
store_status store_pg_run_unpause(store *st, const scope *sc, const char *run_id, run_wait_rec *out);
store_status store_pg_run_waits_all(struct pg_store *p, run_wait_rec **out, size_t *n);
store_status store_pg_run_wait_of(struct pg_store *p, const scope *sc, const char *run_id, run_wait_rec *out);
store_status store_pg_approvals_of_run(struct pg_store *p, const char *tenant_id, const char *user_id,
                                       const char *run_id, approval_rec **out, size_t *n);
store_status store_pg_approvals_pending(struct pg_store *p, const char *tenant_id, const char *user_id,
                                        size_t limit, approval_rec **out, size_t *n);
store_status store_pg_approval_decide(store *st, const char *tenant_id, const char *by_user, const char *admin_key,
                                      const char *run_id, const char *call_id, bool approve, const char *note,
                                      approval_rec *out, size_t *pending_left);
store_status store_pg_approval_expire_next(store *st, int64_t now, approval_rec *out);

/* guard decisions (store_pg_guard.c) */
store_status store_pg_guard_decision_record(store *st, const guard_decision_rec *r,
                                            const guard_decision_retention *keep,
                                            void (*done)(void *arg, store_status status), void *arg);
store_status store_pg_guard_decisions_prune(store *st, const guard_decision_retention *keep, int64_t now,
                                            int64_t *deleted);
store_status store_pg_guard_decisions_list(struct pg_store *p, const scope *sc, const guard_decision_query *q,
                                           guard_decision_rec **out, size_t *n, bool *has_more);
store_status store_pg_guard_decisions_summary(struct pg_store *p, const scope *sc, const guard_decision_query *q,
                                              guard_decision_count **out, size_t *n, bool *truncated);

/* vault connections and consent flows (store_pg_connections.c; types in
 * store_connections.h) */
struct connection_rec;
struct oauth_flow_rec;
store_status store_pg_connection_list(struct pg_store *p, const scope *sc, struct connection_rec **out, size_t *n);
store_status store_pg_connection_get(struct pg_store *p, const scope *sc, const char *id, struct connection_rec *out);
store_status store_pg_connection_find(struct pg_store *p, const char *tenant_id, const char *user_id,
                                      const char *provider, struct connection_rec *out);
store_status store_pg_connection_begin(store *st, const scope *sc, const char *provider, const char *new_id,
                                       int64_t now, struct connection_rec *out);
store_status store_pg_connection_seal(store *st, const char *tenant_id, const char *user_id, const char *id,
                                      const char *scopes, const char *sealed, int key_version, int64_t expires_at,
                                      int64_t now);
store_status store_pg_connection_set_status(store *st, const char *tenant_id, const char *user_id, const char *id,
                                            const char *status, int64_t now);
store_status store_pg_connection_delete(store *st, const scope *sc, const char *id);
store_status store_pg_connection_lease(store *st, const char *id, int64_t now_ms, int64_t until_ms);
store_status store_pg_connection_unlease(store *st, const char *id);
store_status store_pg_connection_list_sealed_other(struct pg_store *p, int version, size_t limit,
                                                   struct connection_rec **out, size_t *n);
store_status store_pg_connection_reseal(store *st, const char *id, const char *old_sealed, const char *new_sealed,
                                        int version);
store_status store_pg_oauth_flow_put(store *st, const struct oauth_flow_rec *f, int64_t now);
store_status store_pg_oauth_flow_start(store *st, const char *start_hash, const char *browser_hash, int64_t now,
                                       struct oauth_flow_rec *out);
store_status store_pg_oauth_flow_take(store *st, const char *state_hash, int64_t now, struct oauth_flow_rec *out);
struct oauth_client_rec;
store_status store_pg_oauth_client_get(struct pg_store *p, const char *provider, const char *redirect_uri,
                                       struct oauth_client_rec *out);
store_status store_pg_oauth_client_put(store *st, const struct oauth_client_rec *rec);

/* store_pg_migrations.c, for the tests: the newest PostgreSQL schema version
 * (the same number as store_migrations_latest: same numbers, same meaning). */
int store_pg_migrations_latest(void);

#endif
