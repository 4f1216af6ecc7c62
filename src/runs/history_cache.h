/* history_cache.h — a session's newest messages kept in memory between its
 * runs, so a run on a long conversation does not read and parse its
 * history from the store at every start (docs/context.md "The history
 * cache").
 *
 * What makes it safe to keep:
 * - Stored messages are never changed, only appended (a run's) or deleted
 *   with their whole session (session deletion, user erasure). Each append
 *   counts in the session's message_count, in the same transaction.
 * - So an entry says "the session as of `count` stored messages". A start
 *   reads the session's count anyway (the quota check); the entry is used
 *   only when its count is that count, and its scope the caller's. Whatever
 *   else wrote to the session (another instance on PostgreSQL, a paused
 *   run going on, a run whose writes failed) changed the count: the entry
 *   is dropped and the history read from the store, as without a cache.
 * - An entry is the run's alone while the run lives: taken out at the
 *   start, put back when the run has ended and everything it wrote landed.
 *   The run's conversation refers to the entry's messages (no copy), which
 *   nothing may change (core/step.h).
 * - A deletion here (session, user) drops its entries, and any entry taken
 *   before it is not put back (an epoch). Another instance's deletions are
 *   not seen here: the session no longer exists (every start of it fails)
 *   and its entry goes when unused for `idle` or pushed out by others.
 *
 * Thread-safe: the cache's own calls lock; an entry taken out is used by
 * one thread at a time (the run's start job, then its loop). */
#ifndef BRIGADE_HISTORY_CACHE_H
#define BRIGADE_HISTORY_CACHE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scope/scope.h"
#include "store/store.h"

typedef struct history_cache history_cache;
typedef struct history_entry history_entry;

/* max_bytes: what the entries may hold in all (an estimate of their
 * memory); 0 turns the cache off (every call below then does nothing and
 * history_cache_take finds nothing). An entry unused for idle_ms goes. */
history_cache *history_cache_new(size_t max_bytes, uint64_t idle_ms);
void           history_cache_free(history_cache *c);
bool           history_cache_enabled(const history_cache *c);

/* Read before the store is read for a start: an entry made or taken now
 * is put back only if no deletion came after this moment. */
uint64_t history_cache_epoch(history_cache *c);

/* The session's entry, taken out of the cache, when it is the scope's and
 * holds the session as of `count` stored messages; NULL otherwise (an
 * entry that does not match is dropped). */
history_entry *history_cache_take(history_cache *c, const scope *sc, const char *session_id,
                                  int64_t count, uint64_t epoch);

/* A new entry from the session's newest stored messages (oldest first, as
 * store_message_tail gives them), the session having `count` messages,
 * minus the one numbered skip_seq (0: none) which is not counted. At most
 * `max` are kept. NULL on out-of-memory. */
history_entry *history_entry_from_rows(const scope *sc, const char *session_id,
                                       const message_rec *rows, size_t n, int64_t skip_seq,
                                       int64_t count, size_t max, uint64_t epoch);

/* The history a run starts with: the newest `limit` messages of the entry,
 * without tool results at its start (a result whose call was cut off), as
 * references to the entry's messages (nothing may change them). */
cJSON *history_entry_view(const history_entry *e, size_t limit);

/* A message the run has stored (its user's message, a step's, the final
 * answer): appended as a load from the store would give it, and counted.
 * false on out-of-memory (the entry must then not be put back). */
bool history_entry_add(history_entry *e, const message_rec *m);

/* The run has ended with everything it wrote stored: the entry goes back
 * (its oldest messages past `max` dropped), unless a deletion came since
 * its epoch; then, or when the cache is off, it is freed. Frees the
 * entries that were unused too long or do not fit. */
void history_cache_put(history_cache *c, history_entry *e, size_t max);
void history_entry_free(history_entry *e);

/* Deleted from the store: this session's entry, every entry of a user. */
void history_cache_drop_session(history_cache *c, const char *session_id);
void history_cache_drop_user(history_cache *c, const char *tenant_id, const char *user_id);
/* Entries unused for idle_ms go, at most `max` of them (every put also
 * lets them go, with those that do not fit). */
void history_cache_expire(history_cache *c, size_t max);

/* What the cache holds now (tests, metrics). */
size_t history_cache_entries(history_cache *c);
size_t history_cache_bytes(history_cache *c);
/* history_cache_take's answers so far: an entry, or none (or a stale one). */
void   history_cache_counts(history_cache *c, uint64_t *hits, uint64_t *misses);

#endif
