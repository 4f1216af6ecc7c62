/* guard_record.h — every decision of the guard that is not "allow" is kept:
 * a row in the store (store.h guard_decision_rec; who, where, which
 * detector or check, what it did — never the text), a count in
 * brigade_guard_decisions_total{action,channel,detector}, and, when the
 * decision withheld something, an audit entry in the same transaction as
 * the row: guard.blocked (a user message; runs/start.c writes that one),
 * guard.dropped (a tool's output), guard.withheld (a final answer). A
 * refused tool call (taint, exfiltration) has its audit entry already, the
 * harness's tool.call with `refused` (runs/toolrun.c); docs/audit.md.
 *
 * Nothing here waits for the disk: the row and its entry are queued for
 * the store's writer (store_guard_decision_record), so the hooks may run on
 * a run's loop. A process records into the one store opened with
 * guard_record_open (serve); without it, only the metric counts. */
#ifndef BRIGADE_GUARD_RECORD_H
#define BRIGADE_GUARD_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "guard/engine.h"
#include "guard/guard.h"
#include "scope/scope.h"
#include "store/store.h"

/* Record into st from now on, keeping what `keep` allows. */
void guard_record_open(store *st, const guard_decision_retention *keep);
/* Stop recording (before store_close); rows queued so far still commit. */
void guard_record_close(void);

/* A detector's finding (guard.flagged): channel "user" or "tool"; action
 * flag, spotlight, drop or block. `audited`: the caller writes the audit
 * entry itself (the blocked user message, runs/start.c). */
void guard_record_finding(const scope *sc, const char *session_id, const char *run_id,
                          const guard_finding *f, const char *channel, const char *tool,
                          const char *action, bool audited);

/* A check's decision before an effect (guard_before_effect): the taint and
 * exfiltration checks' refusals, approvals asked and withheld answers are
 * recorded; the other checks' decisions (permission, arguments, the loop
 * guard) are the model's mistakes, not the guard's policy, and are not. */
void guard_record_verdict(const guard_ctx *ctx, const guard_effect *e, const guard_decision *d);

#endif
