/* reserve_journal.h — reservations that survive a crash (invariant 3,
 * "money is reserved before it is spent", made durable; docs/architecture.md).
 *
 * Budgets live in memory (govern.h) and are rebuilt from the usage ledger
 * at start. Usage rows reach the ledger in group commits, up to
 * STORE_USAGE_FLUSH_MS after the call ended; a kill -9 in that window would
 * lose them, and the restarted budgets would count less than was delivered.
 *
 * The journal closes that window. Before a metered call is sent to a
 * provider — so before anything of its answer can reach a client — its
 * reservation (who pays, the model, the worst-case cost) is appended to
 * `data_dir/reservations.journal` (copied into a shared mapping of the
 * file: no system call; reserve_journal.c says how). The record is closed
 * again when the call's usage row has been committed to the ledger (by the
 * store's writer, after its COMMIT), or at once when the call delivered
 * nothing and so costs nothing. A record copied into the mapping is in the
 * kernel's page cache: it survives the death of the process (not a power
 * cut — see docs/governance.md).
 *
 * At the next start, reserve_journal_recover() reads the journal: every
 * reservation still open was a call in flight (or settled but not yet in
 * the ledger) when the process died. Each is charged at its reservation, as
 * a ledger row with status 0 ("reconciled"), in one transaction with an
 * audit entry saying what was charged; a log line says it too. Then the
 * journal is emptied and the budgets are rebuilt from the ledger — which
 * now never counts less than what was delivered. It may count more: a call
 * in flight is charged its worst case, which admission had already set
 * aside, so a budget is not put over its cap. A call whose row was
 * committed just before the crash, but not yet closed in the journal, is
 * not charged twice: every ledger row keeps its reservation's id
 * (usage.reservation), and an open reservation whose id is in the ledger
 * is skipped. Ids are unique across restarts (each process starts at a
 * random point), and the reconciliation's own rows keep theirs, so a crash
 * before the journal is emptied does not charge them again either.
 *
 * The file holds one text line per record (fields percent-escaped):
 *   R <id> <ts> <cost_nusd> <tokens> =<tenant> =<user> =<key> =<model> =<request_id>
 *   C <id>
 * A line cut by the crash (no newline) is ignored: its copy had not
 * finished, so its call had not been sent. The file is allocated ahead of
 * the records in zeros; reading stops at the first zero byte. While
 * serving, the journal is compacted when it passes RESERVE_JOURNAL_COMPACT_BYTES
 * and holds more than twice what its open reservations do: those (kept in
 * memory too) are written to a new file that replaces the old one by
 * rename(2), on the store's writer, without holding up the loop threads
 * (reserve_journal.c, "compaction").
 *
 * Thread-safe: loop threads open and close reservations, the store's writer
 * closes the settled ones; one mutex guards the file and the open set. */
#ifndef BRIGADE_RESERVE_JOURNAL_H
#define BRIGADE_RESERVE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define RESERVE_JOURNAL_FILE "reservations.journal"
#define RESERVE_JOURNAL_COMPACT_BYTES (16u << 20)

typedef struct reserve_journal reserve_journal;

/* One reservation: who pays, for which model, at most how much. */
typedef struct reserve_entry {
    const char *tenant_id, *user_id, *key_id, *model, *request_id;
    int64_t     cost_nusd;    /* the reservation: the call's worst case */
    int64_t     tokens;       /* its estimated tokens */
} reserve_entry;

/* What recovery charged. */
typedef struct reserve_recovery {
    size_t  open;             /* reservations found open: calls in flight at the crash */
    int64_t charged_nusd;     /* what was charged for them, in all */
    size_t  torn;             /* lines cut by the crash, ignored */
    size_t  in_ledger;        /* open, but their row was committed: not charged again */
} reserve_recovery;

/* Charge every reservation the journal in data_dir still holds open (see
 * above), then empty the journal. 0, or -1 with err (nothing charged, the
 * journal left as it was: serving must not start). */
int reserve_journal_recover(store *st, const char *data_dir, reserve_recovery *out,
                            char *err, size_t errlen);

/* The same, telling charged() of each row it committed (after the commit).
 * With governance in Redis the ledger is not read back at start, so the
 * caller passes these charges on to Redis (gate_charge_recovered): without
 * that, the dead process's reservations would expire there and its calls
 * in flight, charged here, would be spent a second time by others. */
typedef void (*reserve_charged_fn)(const usage_rec *row, void *arg);
int reserve_journal_recover_each(store *st, const char *data_dir, reserve_recovery *out,
                                 reserve_charged_fn charged, void *arg, char *err, size_t errlen);

/* Open the (empty) journal for appending. NULL with err. */
reserve_journal *reserve_journal_open(const char *data_dir, char *err, size_t errlen);
void             reserve_journal_close(reserve_journal *j);

/* Record a reservation before its call is sent; returns its id (never 0).
 * 0: it could not be written (logged): the call must not be sent. */
uint64_t reserve_journal_open_entry(reserve_journal *j, const reserve_entry *e);

/* The reservation is over: its usage row is committed, or it cost nothing. */
void reserve_journal_close_entry(reserve_journal *j, uint64_t id);

/* The store's hook: usage rows were committed; close their reservations. */
void reserve_journal_on_usage_committed(void *journal, const usage_rec *rows, size_t n);

/* How many reservations are open now (tests, metrics). */
size_t reserve_journal_open_count(reserve_journal *j);

/* The open set's table size in slots: bounded by the open count, not by
 * how many reservations were ever opened (tests). */
size_t reserve_journal_open_slots(reserve_journal *j);

#endif
