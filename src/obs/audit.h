/* audit.h — recording security-relevant acts (invariant 5, docs/architecture.md).
 *
 * An act that is a store write records its entry in the same transaction
 * (obs_audit_act_begin / _end, below). obs_audit() records an act that is
 * not a store write (a tool call made, an authentication failure) after
 * it, from the thread pool (it blocks until the entry is committed, so the
 * entry is durable before the response). The actor, the tenant and the credential come from the scope
 * that authorised the act:
 *
 *     obs_audit(st, &ctx->scope, "key.revoke", key_id, NULL);
 *     obs_audit(st, &ctx->scope, "tool.call", "http_fetch",
 *               details);   // e.g. {"run": "run_…", "credential": "vault:github"}
 *
 * `details` is a JSON object (may be NULL) and is taken: freed by the call.
 * Never put a secret in it. Actions in use: auth.failure, tenant.create,
 * tenant.update, user.create, user.update, user.delete, key.create,
 * key.revoke, budget.change, tool.call, consent.grant, consent.revoke,
 * data.erase, guard.blocked, guard.dropped, guard.withheld (guard/guard_record.h); tool.create, tool.update, tool.delete, tool.enable,
 * tool.disable and the same for agent. (a tenant's own definitions and the
 * catalogue entries it enables, api/tenant_defs.c).
 *
 * State (the signing key, the auth-failure rate bound, the sealer) is per
 * store: obs_audit_open() starts it with the configured bound (else it is
 * made on first use with the defaults); obs_audit_close() writes the
 * shutdown checkpoint and frees it — call it before store_close(). */
#ifndef BRIGADE_OBS_AUDIT_H
#define BRIGADE_OBS_AUDIT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "scope/scope.h"
#include "store/store.h"

#define OBS_AUDIT_FIELD_MAX 256             /* bytes of a text field (a path from a request) */
#define OBS_AUDIT_DETAILS_MAX 8192          /* bytes of an entry's details (JSON) */
#define OBS_AUDIT_AUTH_PER_SOURCE_S 1       /* auth.failure entries: one per source per second */
#define OBS_AUDIT_AUTH_GLOBAL_PER_S 50      /* … and at most this many per second in all */

/* Start the audit log of st: checkpoints at least every `every` entries
 * (0 = the default 1000) and within `interval_s` seconds of an entry (0 =
 * the default 60), a seal of any tail the last run left unsealed (a crash),
 * and — when `sealer` — a thread that enforces the time bound. */
void obs_audit_open(store *st, uint64_t every, uint64_t interval_s, bool sealer);

/* Copy at most max bytes of s into out (outlen > max), cut on a UTF-8
 * character boundary, bytes that are not UTF-8 or are control characters
 * replaced by '?', and "…" at the end when cut. For text that arrives
 * from the network before anyone is authenticated. */
void obs_audit_clip(const char *s, size_t max, char *out, size_t outlen);

/* The act of the scope's holder; the entry's tenant is the scope's. */
store_status obs_audit(store *st, const scope *actor, const char *action, const char *target,
                       cJSON *details);
/* obs_audit for a loop thread, where nothing may wait for the disk (a
 * tool call made by a run): the entry is queued behind every write
 * already queued, without waiting, and commits with the store's next
 * batch that someone waits for — the run's next step or its end, so
 * always before that end is acknowledged — or at the latest
 * STORE_USAGE_FLUSH_MS / 2 later. A failure is logged (as obs_audit's).
 * Returns false, having written nothing and taken nothing, where writes
 * are not queued (PostgreSQL: store_runs_write_behind is false): then
 * call obs_audit on the thread pool. True: details was taken. */
bool obs_audit_behind(store *st, const scope *actor, const char *action, const char *target,
                      cJSON *details);
/* The same for an act on another tenant than the actor's own (the server
 * admin creating or changing tenant T: tenant_id T, so T's admin sees it). */
store_status obs_audit_for_tenant(store *st, const scope *actor, const char *tenant_id,
                                  const char *action, const char *target, cJSON *details);
/* Without a scope: authentication failures ("anonymous"), the system. */
store_status obs_audit_raw(store *st, const char *tenant_id, const char *actor,
                           const char *credential, const char *action, const char *target,
                           cJSON *details);

/* An act and its entry in ONE transaction: a crash can never leave the act
 * without its entry (invariant 5, docs/architecture.md). Use it for every act that is
 * a store write:
 *
 *     obs_audit_act a;
 *     obs_audit_act_begin(&a, st, &ctx->scope, NULL, "key.revoke", key_id, NULL);
 *     store_status r = identity_revoke_key(...);   // its first store write is the act
 *     obs_audit_act_end(&a);
 *
 * Between begin and end the calling thread's next store write carries the
 * entry (store_audit_attach); reads do not. Several acts' entries may ride
 * on one write (begin each; end each). If the act fails, no entry is
 * written; if the entry cannot be written, the act is undone. tenant_id
 * NULL: the actor's tenant. details is taken. end returns STORE_OK when the
 * entry committed with its act. The struct may be large: keep it on the
 * stack of a pool thread, never a loop thread's long-lived state. */
#define OBS_AUDIT_LATE_MAX 4
typedef struct obs_audit_act {
    audit_rec e;                      /* first: finish() finds the act from it */
    store    *st;
    char     *details_text;
    const char *late_target;          /* read when the entry is appended */
    cJSON    *late_details;           /* the details, kept until then when late fields exist */
    const char *late_tenant;
    const char *late_action;
    int       n_late;
    const char *late_key[OBS_AUDIT_LATE_MAX], *late_val[OBS_AUDIT_LATE_MAX];
    void    (*late_fill)(cJSON *details, void *arg);
    void     *late_fill_arg;
    char      f_tenant[OBS_AUDIT_FIELD_MAX + 1], f_actor[OBS_AUDIT_FIELD_MAX + 1],
              f_cred[OBS_AUDIT_FIELD_MAX + 1], f_action[OBS_AUDIT_FIELD_MAX + 1],
              f_target[OBS_AUDIT_FIELD_MAX + 1];
} obs_audit_act;

void obs_audit_act_begin(obs_audit_act *a, store *st, const scope *actor, const char *tenant_id,
                         const char *action, const char *target, cJSON *details);
void obs_audit_act_begin_raw(obs_audit_act *a, store *st, const char *tenant_id, const char *actor,
                             const char *credential, const char *action, const char *target,
                             cJSON *details);
/* What only the act knows — the id it creates, a key's prefix — given as
 * buffers the act fills before its store write; they are read when the
 * entry is appended, inside the act's transaction. They must outlive end.
 * Call before the act. */
void obs_audit_act_target(obs_audit_act *a, const char *target);
void obs_audit_act_tenant(obs_audit_act *a, const char *tenant_id);
/* The action itself, when only the act knows which it was (an approval
 * found expired is an approval.timeout, not the decision asked for); read
 * after fill, so fill may write it. */
void obs_audit_act_action(obs_audit_act *a, const char *action);
void obs_audit_act_detail(obs_audit_act *a, const char *key, const char *value);
/* The same for details with structure: fill adds to them (no secrets). */
void obs_audit_act_fill(obs_audit_act *a, void (*fill)(cJSON *details, void *arg), void *arg);
store_status obs_audit_act_end(obs_audit_act *a);

/* Rate bound for auth.failure entries; never blocks (call on a loop
 * thread). True: write an entry for this failure now, and *suppressed says
 * how many failures from this source were not written since the last one.
 * False: count it and write nothing. */
bool obs_audit_auth_admit(store *st, const char *source, uint64_t *suppressed);

/* The actor string of a scope: "server_admin", "tenant_admin:key_…",
 * "user:usr_…". */
void obs_audit_actor(const scope *sc, char *out, size_t outlen);

/* The public key checkpoints are signed with, 64 hex digits (the key is
 * created if the data directory has none). 0, or -1 with err. */
int obs_audit_pubkey(const char *data_dir, char out[65], char *err, size_t errlen);

/* Write a checkpoint over the newest entry (if not yet covered) and forget
 * this store's audit state. Call before store_close. */
void obs_audit_close(store *st);

#endif
