/* store_migrations.c — the schema, as numbered migrations.
 *
 * Each migration is applied once, in order, inside one transaction together
 * with the `PRAGMA user_version` bump that records it, so a crash mid-way
 * leaves the database at the previous version, never half-migrated.
 * Never edit a migration that has shipped: add the next number. */
#include "store/store_internal.h"

#include <stdio.h>

typedef struct store_migration {
    int version;
    const char *sql;
} store_migration;

static const store_migration store_migrations[] = {
    {1,
     "CREATE TABLE tenants ("
     "  id           TEXT PRIMARY KEY,"
     "  name         TEXT NOT NULL UNIQUE,"
     "  default_tier TEXT NOT NULL DEFAULT 'default',"
     "  jwt_issuer   TEXT UNIQUE,"          /* one issuer names one tenant */
     "  jwt_audience TEXT,"
     "  jwt_alg      TEXT,"
     "  jwt_key      TEXT,"
     "  created_at   INTEGER NOT NULL"
     ");"
     "CREATE TABLE users ("
     "  id           TEXT PRIMARY KEY,"
     "  tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
     "  external_id  TEXT NOT NULL,"
     "  display_name TEXT NOT NULL DEFAULT '',"
     "  tier         TEXT NOT NULL,"
     "  disabled     INTEGER NOT NULL DEFAULT 0,"
     "  lim_rpm                 INTEGER NOT NULL DEFAULT -1,"
     "  lim_tpm                 INTEGER NOT NULL DEFAULT -1,"
     "  lim_max_concurrent_runs INTEGER NOT NULL DEFAULT -1,"
     "  lim_daily_budget_nusd   INTEGER NOT NULL DEFAULT -1,"
     "  lim_monthly_budget_nusd INTEGER NOT NULL DEFAULT -1,"
     "  created_at   INTEGER NOT NULL,"
     "  UNIQUE (tenant_id, external_id)"
     ");"
     "CREATE TABLE keys ("
     "  id         TEXT PRIMARY KEY,"
     "  tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
     "  user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,"   /* NULL: tenant admin key */
     "  kind       INTEGER NOT NULL CHECK (kind IN (1, 2)),"
     "  prefix     TEXT NOT NULL,"
     "  hash       TEXT NOT NULL UNIQUE,"
     "  created_at INTEGER NOT NULL,"
     "  revoked_at INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE INDEX keys_tenant_user ON keys (tenant_id, user_id);"
     /* usage is a ledger: no foreign keys, rows outlive deleted users */
     "CREATE TABLE usage ("
     "  id            INTEGER PRIMARY KEY,"
     "  ts            INTEGER NOT NULL,"
     "  tenant_id     TEXT NOT NULL,"
     "  user_id       TEXT NOT NULL DEFAULT '',"
     "  key_id        TEXT NOT NULL DEFAULT '',"
     "  model         TEXT NOT NULL DEFAULT '',"
     "  request_id    TEXT NOT NULL DEFAULT '',"
     "  input_tokens  INTEGER NOT NULL DEFAULT 0,"
     "  output_tokens INTEGER NOT NULL DEFAULT 0,"
     "  cost_nusd     INTEGER NOT NULL DEFAULT 0,"
     "  status        INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE INDEX usage_tenant_ts ON usage (tenant_id, ts);"
     "CREATE INDEX usage_tenant_user_ts ON usage (tenant_id, user_id, ts);"},

    /* 2: a user's agent world — sessions, their transcripts, runs, and
     * long-term memory with full-text search.
     *
     * No foreign keys here: every row carries tenant_id and user_id, the
     * scoped functions erase explicitly (store_user_delete,
     * store_session_delete), and the writes that create rows check inside
     * their transaction that the owner still exists. Sessions keep their
     * implicit rowid: it is max+1 at insert, so `ORDER BY rowid` is creation
     * order even within one second, and the (user_id) index carries it. */
    {2,
     "CREATE TABLE sessions ("
     "  id            TEXT PRIMARY KEY,"
     "  tenant_id     TEXT NOT NULL,"
     "  user_id       TEXT NOT NULL,"
     "  agent         TEXT NOT NULL,"
     "  metadata      TEXT,"
     "  created_at    INTEGER NOT NULL,"
     "  updated_at    INTEGER NOT NULL,"
     "  message_count INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE INDEX sessions_user ON sessions (user_id);"
     "CREATE TABLE messages ("
     "  session_id   TEXT NOT NULL,"
     "  seq          INTEGER NOT NULL,"
     "  run_id       TEXT NOT NULL DEFAULT '',"
     "  tenant_id    TEXT NOT NULL,"
     "  user_id      TEXT NOT NULL,"
     "  role         TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),"
     "  content      TEXT,"
     "  tool_calls   TEXT,"
     "  tool_call_id TEXT NOT NULL DEFAULT '',"
     "  created_at   INTEGER NOT NULL,"
     "  PRIMARY KEY (session_id, seq)"
     ");"   /* a rowid table until migration 23 */
     "CREATE TABLE runs ("
     "  id            TEXT PRIMARY KEY,"
     "  session_id    TEXT NOT NULL,"
     "  tenant_id     TEXT NOT NULL,"
     "  user_id       TEXT NOT NULL,"
     "  agent         TEXT NOT NULL,"
     "  status        INTEGER NOT NULL CHECK (status BETWEEN 1 AND 7),"
     "  error_code    TEXT NOT NULL DEFAULT '',"
     "  error_message TEXT NOT NULL DEFAULT '',"
     "  input_tokens  INTEGER NOT NULL DEFAULT 0,"
     "  output_tokens INTEGER NOT NULL DEFAULT 0,"
     "  cost_nusd     INTEGER NOT NULL DEFAULT 0,"
     "  steps         INTEGER NOT NULL DEFAULT 0,"
     "  tool_calls    INTEGER NOT NULL DEFAULT 0,"
     "  user_seq      INTEGER NOT NULL DEFAULT 0,"
     "  final_seq     INTEGER NOT NULL DEFAULT 0,"
     "  created_at    INTEGER NOT NULL,"
     "  started_at    INTEGER NOT NULL DEFAULT 0,"
     "  finished_at   INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE INDEX runs_session ON runs (session_id);"
     /* recovery at start looks only at runs still in flight (queued,
      * running, waiting_approval): a partial index stays small forever */
     "CREATE INDEX runs_active ON runs (status) WHERE status IN (1, 2, 3);"
     /* memory: (tenant, user, key) is the identity; `id` is an explicit
      * INTEGER PRIMARY KEY because the FTS index refers to rows by rowid,
      * and only an aliased rowid is guaranteed stable across VACUUM. */
     "CREATE TABLE memory ("
     "  id         INTEGER PRIMARY KEY,"
     "  tenant_id  TEXT NOT NULL,"
     "  user_id    TEXT NOT NULL,"
     "  key        TEXT NOT NULL,"
     "  value      TEXT NOT NULL,"
     "  updated_at INTEGER NOT NULL,"
     "  UNIQUE (tenant_id, user_id, key)"
     ");"
     "CREATE INDEX memory_user_updated ON memory (tenant_id, user_id, updated_at);"
     /* external-content FTS5: the text lives once, in memory; the triggers
      * keep the index exactly in step with every insert, update and delete.
      * user_id is indexed too, so a search intersects with the owner's
      * posting list inside FTS5 instead of ranking every user's matches
      * and filtering afterwards (store_memory.c). */
     "CREATE VIRTUAL TABLE memory_fts USING fts5("
     "  key, value, user_id, content = 'memory', content_rowid = 'id',"
     "  tokenize = 'unicode61 remove_diacritics 2');"
     "CREATE TRIGGER memory_fts_ai AFTER INSERT ON memory BEGIN"
     "  INSERT INTO memory_fts (rowid, key, value, user_id)"
     "  VALUES (new.id, new.key, new.value, new.user_id);"
     " END;"
     "CREATE TRIGGER memory_fts_ad AFTER DELETE ON memory BEGIN"
     "  INSERT INTO memory_fts (memory_fts, rowid, key, value, user_id)"
     "  VALUES ('delete', old.id, old.key, old.value, old.user_id);"
     " END;"
     "CREATE TRIGGER memory_fts_au AFTER UPDATE ON memory BEGIN"
     "  INSERT INTO memory_fts (memory_fts, rowid, key, value, user_id)"
     "  VALUES ('delete', old.id, old.key, old.value, old.user_id);"
     "  INSERT INTO memory_fts (rowid, key, value, user_id)"
     "  VALUES (new.id, new.key, new.value, new.user_id);"
     " END;"},

    /* 3: governance — limits for tenants and keys (users have had theirs
     * since 1; -1 = not set, inherit), and the deployment that served each
     * charged call, so a bill names who answered it. */
    {3,
     "ALTER TABLE tenants ADD COLUMN lim_rpm                 INTEGER NOT NULL DEFAULT -1;"
     "ALTER TABLE tenants ADD COLUMN lim_tpm                 INTEGER NOT NULL DEFAULT -1;"
     "ALTER TABLE tenants ADD COLUMN lim_max_concurrent_runs INTEGER NOT NULL DEFAULT -1;"
     "ALTER TABLE tenants ADD COLUMN lim_daily_budget_nusd   INTEGER NOT NULL DEFAULT -1;"
     "ALTER TABLE tenants ADD COLUMN lim_monthly_budget_nusd INTEGER NOT NULL DEFAULT -1;"
     "ALTER TABLE keys ADD COLUMN lim_rpm                 INTEGER NOT NULL DEFAULT -1;"
     "ALTER TABLE keys ADD COLUMN lim_tpm                 INTEGER NOT NULL DEFAULT -1;"
     "ALTER TABLE keys ADD COLUMN lim_daily_budget_nusd   INTEGER NOT NULL DEFAULT -1;"
     "ALTER TABLE keys ADD COLUMN lim_monthly_budget_nusd INTEGER NOT NULL DEFAULT -1;"
     "ALTER TABLE usage ADD COLUMN deployment TEXT NOT NULL DEFAULT '';"
     "CREATE INDEX usage_ts ON usage (ts);"},

    /* 4: the audit log — an append-only hash chain (see src/obs/audit_chain.c
     * for how `hash` is computed) and the signed checkpoints over it. No
     * foreign keys: entries outlive the tenants, users and keys they name. */
    {4,
     "CREATE TABLE audit ("
     "  seq        INTEGER PRIMARY KEY,"
     "  ts         INTEGER NOT NULL,"
     "  tenant_id  TEXT NOT NULL DEFAULT '',"
     "  actor      TEXT NOT NULL,"
     "  credential TEXT NOT NULL DEFAULT '',"
     "  action     TEXT NOT NULL,"
     "  target     TEXT NOT NULL DEFAULT '',"
     "  details    TEXT NOT NULL DEFAULT '{}',"
     "  prev_hash  TEXT NOT NULL,"
     "  hash       TEXT NOT NULL"
     ");"
     "CREATE INDEX audit_tenant_seq ON audit (tenant_id, seq);"
     "CREATE TABLE audit_checkpoints ("
     "  seq       INTEGER PRIMARY KEY,"
     "  hash      TEXT NOT NULL,"
     "  ts        INTEGER NOT NULL,"
     "  signature TEXT NOT NULL"
     ");"},
    {5,
     /* Spans of traces (src/obs/). seq orders rows by arrival, so keeping
      * the newest N is a range delete on the primary key. */
     "CREATE TABLE spans ("
     "  seq            INTEGER PRIMARY KEY,"
     "  trace_id       TEXT NOT NULL,"
     "  span_id        TEXT NOT NULL,"
     "  parent_span_id TEXT NOT NULL DEFAULT '',"
     "  name           TEXT NOT NULL,"
     "  kind           INTEGER NOT NULL,"
     "  tenant_id      TEXT NOT NULL DEFAULT '',"
     "  user_id        TEXT NOT NULL DEFAULT '',"
     "  start_ns       INTEGER NOT NULL,"
     "  end_ns         INTEGER NOT NULL,"
     "  status         INTEGER NOT NULL,"
     "  status_message TEXT NOT NULL DEFAULT '',"
     "  attributes     TEXT NOT NULL DEFAULT '{}'"
     ");"
     "CREATE INDEX spans_trace ON spans (trace_id);"
     "CREATE INDEX spans_end ON spans (end_ns);"},
    {6,
     /* Chained audit checkpoints (src/obs/audit_chain.c): each signs the
      * bound it was made under, why it was made, and the checkpoint before
      * it. Rows of migration 4 stay version 1 (signed the old way). */
     "ALTER TABLE audit_checkpoints ADD COLUMN version    INTEGER NOT NULL DEFAULT 1;"
     "ALTER TABLE audit_checkpoints ADD COLUMN every      INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE audit_checkpoints ADD COLUMN interval_s INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE audit_checkpoints ADD COLUMN flags      INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE audit_checkpoints ADD COLUMN prev_seq   INTEGER NOT NULL DEFAULT 0;"},

    /* 7: storage quotas.
     * memory.bytes (key + value, in bytes) with a covering index, so the
     * memory_bytes quota sums a user's entries from the index alone. The
     * full-text trigger now fires only when an indexed column is set, so
     * filling in `bytes` does not re-index every entry. */
    {7,
     "ALTER TABLE memory ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;"
     "DROP TRIGGER memory_fts_au;"
     "CREATE TRIGGER memory_fts_au AFTER UPDATE OF key, value, user_id ON memory BEGIN"
     "  INSERT INTO memory_fts (memory_fts, rowid, key, value, user_id)"
     "  VALUES ('delete', old.id, old.key, old.value, old.user_id);"
     "  INSERT INTO memory_fts (rowid, key, value, user_id)"
     "  VALUES (new.id, new.key, new.value, new.user_id);"
     " END;"
     "UPDATE memory SET bytes = length(CAST(key AS BLOB)) + length(CAST(value AS BLOB));"
     "CREATE INDEX memory_user_bytes ON memory (tenant_id, user_id, bytes);"},
    /* 8: the vault (src/vault/). A user's connection to a credential
     * provider, its secrets sealed (never plaintext here) under a key kept
     * outside the database, with the version of that key; refreshing_until
     * is the refresh lease shared by every instance on this database. And
     * consent flows in progress: only hashes of their state, start ticket
     * and browser cookie, the PKCE verifier sealed. */
    {8,
     "CREATE TABLE connections ("
     "  id               TEXT PRIMARY KEY,"
     "  tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
     "  user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  provider         TEXT NOT NULL,"
     "  status           TEXT NOT NULL CHECK (status IN ('pending','active','expired','revoked')),"
     "  scopes           TEXT NOT NULL DEFAULT '',"
     "  sealed           TEXT,"
     "  key_version      INTEGER NOT NULL DEFAULT 0,"
     "  expires_at       INTEGER NOT NULL DEFAULT 0,"
     "  refreshing_until INTEGER NOT NULL DEFAULT 0,"
     "  created_at       INTEGER NOT NULL,"
     "  updated_at       INTEGER NOT NULL,"
     "  UNIQUE (tenant_id, user_id, provider)"
     ");"
     "CREATE TABLE oauth_flows ("
     "  state_hash      TEXT PRIMARY KEY,"
     "  start_hash      TEXT NOT NULL UNIQUE,"
     "  browser_hash    TEXT NOT NULL DEFAULT '',"
     "  connection_id   TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,"
     "  tenant_id       TEXT NOT NULL,"
     "  user_id         TEXT NOT NULL,"
     "  provider        TEXT NOT NULL,"
     "  sealed_verifier TEXT NOT NULL,"
     "  key_version     INTEGER NOT NULL,"
     "  expires_at      INTEGER NOT NULL"
     ");"
     "CREATE INDEX oauth_flows_expiry ON oauth_flows (expires_at);"},
    /* 9: durable pauses of a run — waiting_approval (3) and waiting_auth
     * (8). The runs table is rebuilt only to let its status CHECK admit 8
     * (SQLite cannot alter a CHECK); its columns and indexes are as they
     * were, the partial index of runs in flight now covers 8 too. A paused
     * run keeps one run_waits row (what it waits for, the assistant message
     * whose tool calls wait, and whose credential it ran with, so that it
     * can be rebuilt after a restart) and one approvals row per call that
     * needs a person. */
    {9,
     "CREATE TABLE runs_v9 ("
     "  id            TEXT PRIMARY KEY,"
     "  session_id    TEXT NOT NULL,"
     "  tenant_id     TEXT NOT NULL,"
     "  user_id       TEXT NOT NULL,"
     "  agent         TEXT NOT NULL,"
     "  status        INTEGER NOT NULL CHECK (status BETWEEN 1 AND 8),"
     "  error_code    TEXT NOT NULL DEFAULT '',"
     "  error_message TEXT NOT NULL DEFAULT '',"
     "  input_tokens  INTEGER NOT NULL DEFAULT 0,"
     "  output_tokens INTEGER NOT NULL DEFAULT 0,"
     "  cost_nusd     INTEGER NOT NULL DEFAULT 0,"
     "  steps         INTEGER NOT NULL DEFAULT 0,"
     "  tool_calls    INTEGER NOT NULL DEFAULT 0,"
     "  user_seq      INTEGER NOT NULL DEFAULT 0,"
     "  final_seq     INTEGER NOT NULL DEFAULT 0,"
     "  created_at    INTEGER NOT NULL,"
     "  started_at    INTEGER NOT NULL DEFAULT 0,"
     "  finished_at   INTEGER NOT NULL DEFAULT 0"
     ");"
     "INSERT INTO runs_v9 SELECT id, session_id, tenant_id, user_id, agent, status, error_code,"
     " error_message, input_tokens, output_tokens, cost_nusd, steps, tool_calls, user_seq,"
     " final_seq, created_at, started_at, finished_at FROM runs;"
     "DROP TABLE runs;"
     "ALTER TABLE runs_v9 RENAME TO runs;"
     "CREATE INDEX runs_session ON runs (session_id);"
     "CREATE INDEX runs_active ON runs (status) WHERE status IN (1, 2, 3, 8);"
     "CREATE TABLE run_waits ("
     "  run_id      TEXT PRIMARY KEY,"
     "  tenant_id   TEXT NOT NULL,"
     "  user_id     TEXT NOT NULL,"
     "  session_id  TEXT NOT NULL,"
     "  key_id      TEXT NOT NULL,"      /* the credential the run was started with */
     "  kind        INTEGER NOT NULL CHECK (kind IN (3, 8)),"   /* the run's status */
     "  pending     TEXT NOT NULL,"      /* the assistant message with the waiting tool_calls */
     "  provider    TEXT NOT NULL DEFAULT '',"   /* waiting_auth: for which provider */
     "  connect_url TEXT NOT NULL DEFAULT '',"   /* always empty: the link is never stored */
     "  deadline    INTEGER NOT NULL,"   /* waiting_auth: the run fails after it */
     "  created_at  INTEGER NOT NULL"
     ");"
     "CREATE TABLE approvals ("
     "  run_id      TEXT NOT NULL,"
     "  id          TEXT NOT NULL,"      /* the tool call's id */
     "  tenant_id   TEXT NOT NULL,"
     "  user_id     TEXT NOT NULL,"
     "  session_id  TEXT NOT NULL,"
     "  tool        TEXT NOT NULL,"
     "  arguments   TEXT NOT NULL,"
     "  reason      TEXT NOT NULL,"
     "  approval_by INTEGER NOT NULL,"   /* 0 any, 1 user, 2 tenant_admin */
     "  status      INTEGER NOT NULL DEFAULT 0,"   /* 0 pending, 1 approved, 2 denied */
     "  decided_by  TEXT NOT NULL DEFAULT '',"
     "  note        TEXT NOT NULL DEFAULT '',"
     "  deadline    INTEGER NOT NULL,"
     "  created_at  INTEGER NOT NULL,"
     "  decided_at  INTEGER NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (run_id, id)"
     ");"
     "CREATE INDEX approvals_pending ON approvals (tenant_id, user_id) WHERE status = 0;"},

    /* 10: tools and agents per tenant (store_tenant_defs.c). One row per
     * (tenant, kind, name): kind 1 a tool, 2 an agent; body the tenant's
     * own definition as JSON, or NULL for an entry of the server's
     * catalogue that the tenant's admin enabled. */
    {10,
     "CREATE TABLE tenant_defs ("
     "  tenant_id  TEXT NOT NULL REFERENCES tenants(id),"
     "  kind       INTEGER NOT NULL,"
     "  name       TEXT NOT NULL,"
     "  body       TEXT,"
     "  created_at INTEGER NOT NULL,"
     "  updated_at INTEGER NOT NULL,"
     "  PRIMARY KEY (tenant_id, kind, name)"
     ") WITHOUT ROWID;"},

    /* 11: stored Responses (store_responses.c) — one row per turn of a
     * POST /v1/responses conversation, linked by previous_id; bytes counts
     * toward the owner's memory_bytes quota (covering index). */
    {11,
     "CREATE TABLE responses ("
     "  id          TEXT PRIMARY KEY,"
     "  tenant_id   TEXT NOT NULL,"
     "  user_id     TEXT NOT NULL,"
     "  previous_id TEXT NOT NULL DEFAULT '',"
     "  model       TEXT NOT NULL,"
     "  items       TEXT NOT NULL,"
     "  object      TEXT NOT NULL,"
     "  bytes       INTEGER NOT NULL,"
     "  created_at  INTEGER NOT NULL"
     ");"
     "CREATE INDEX responses_user_bytes ON responses (tenant_id, user_id, bytes);"},

    /* 12: provenance (core/origin.h, docs/guard.md). A transcript message's
     * origin and a memory entry's, as JSON objects the harness writes.
     * Rows older than this keep NULL: a message's origin is then inferred
     * from its role, a memory entry's is "unknown" (untrusted). */
    {12,
     "ALTER TABLE messages ADD COLUMN origin TEXT;"
     "ALTER TABLE memory ADD COLUMN origin TEXT;"},
    {13,
     /* The guard's decisions that were not "allow" (guard/guard_record.h):
      * who, where, which detector or check, what it did. Never the text
      * that was flagged: labels are the detector's rule labels. Pruned by
      * age and by count per tenant (guard.decisions in docs/config.md). */
     "CREATE TABLE guard_decisions ("
     "  id          INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,"
     "  user_id     TEXT NOT NULL,"
     "  session_id  TEXT NOT NULL,"
     "  run_id      TEXT NOT NULL,"
     "  channel     TEXT NOT NULL,"
     "  tool        TEXT NOT NULL,"
     "  detector    TEXT NOT NULL,"
     "  score       REAL,"
     "  action      TEXT NOT NULL,"
     "  labels      TEXT NOT NULL,"
     "  created_at  INTEGER NOT NULL"
     ");"
     "CREATE INDEX guard_decisions_tenant ON guard_decisions (tenant_id, id);"
     "CREATE INDEX guard_decisions_user ON guard_decisions (tenant_id, user_id, id);"
     "CREATE INDEX guard_decisions_age ON guard_decisions (created_at);"},
    {16,
     /* Traces as rows (store_traces.c): one row per trace per owner per
      * flush, its spans a binary blob (src/obs/span_codec.h). seq counts
      * spans, so keeping the newest N spans is a range delete on the
      * primary key. The rows of the span table (version 5) are dropped,
      * not converted: they are diagnostics kept 72 h by default, and
      * converting them would mean parsing their JSON here
      * (docs/observability.md, "Storage"). */
     "CREATE TABLE traces ("
     "  seq        INTEGER PRIMARY KEY,"
     "  trace_id   TEXT NOT NULL,"
     "  tenant_id  TEXT NOT NULL,"
     "  user_id    TEXT NOT NULL DEFAULT '',"
     "  start_ns   INTEGER NOT NULL,"
     "  end_ns     INTEGER NOT NULL,"
     "  root_name  TEXT NOT NULL,"
     "  status     INTEGER NOT NULL,"
     "  span_count INTEGER NOT NULL,"
     "  spans      BLOB NOT NULL"
     ");"
     "CREATE INDEX traces_trace ON traces (trace_id, tenant_id);"
     "CREATE INDEX traces_end ON traces (end_ns);"
     "DROP TABLE spans;"},
    {17,
     /* The reservation (govern/reserve_journal.h) each ledger row settles.
      * At start, a reservation still open in the journal whose row is
      * already here was committed just before the crash, with its journal
      * record not yet closed: it is charged once, by its row, not again by
      * the reconciliation. 0 = a row with no durable reservation (a call
      * that was not metered, rows from before this version). No index:
      * the reconciliation reads only rows since its oldest open
      * reservation, through usage_ts. */
     "ALTER TABLE usage ADD COLUMN reservation INTEGER NOT NULL DEFAULT 0;"},
    {18,
     /* Dynamic registrations brigade made at an MCP server's authorization
      * server (store_connections.h, store_oauth_client_*), kept so that a
      * restart, or another instance, uses the same client: a refresh token
      * is bound to the client that got it. Public clients only (no
      * secret). Keyed by the vault provider (server, URL, tenant) and the
      * redirect URI registered (PUBLIC_URL's). */
     "CREATE TABLE oauth_clients ("
     "  provider       TEXT NOT NULL,"
     "  redirect_uri   TEXT NOT NULL,"
     "  token_endpoint TEXT NOT NULL,"
     "  client_id      TEXT NOT NULL,"
     "  auth_method    TEXT NOT NULL,"
     "  created_at     INTEGER NOT NULL,"
     "  PRIMARY KEY (provider, redirect_uri)"
     ");"},
    {19,
     /* Which instance runs a queued or running run, and when it last said
      * so (store_runs_heartbeat). With several instances on one
      * PostgreSQL, an instance that starts interrupts only the runs of
      * instances that stopped saying so, not the others' live runs. One
      * SQLite server is the only instance: its start interrupts them all,
      * as before; the columns are written, not read. */
     "ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE runs ADD COLUMN heartbeat INTEGER NOT NULL DEFAULT 0;"},
    {20,
     /* A cancel asked on an instance that does not run the run: the
      * owner's sync thread finds the mark and stops the run
      * (store_run_request_cancel). One SQLite server is the only instance:
      * the column is there for the same schema, never set. */
     "ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;"},
    {21,
     /* usage_tenant_ts (1) duplicated the start of usage_tenant_user_ts:
      * every usage read filters on the tenant first, and the planner used
      * the three-column index for all of them (EXPLAIN QUERY PLAN), so this
      * one was only written — one more B-tree insert in every request's
      * usage row, on the store writer (docs/benchmarks.md). */
     "DROP INDEX IF EXISTS usage_tenant_ts;"},
    {22,
     /* traces_end served only age retention, at the cost of one B-tree
      * insert in every traced request's row on the store writer. Rows go
      * in as their traces end, so retention deletes in write order instead:
      * every row before the first one still young, found by a walk of the
      * primary key from its start (store_traces.c). */
     "DROP INDEX IF EXISTS traces_end;"},
    {23,
     /* messages becomes a WITHOUT ROWID table, stored in its primary key's
      * order (session, seq): a session's messages sit together on a few
      * pages. As a rowid table they lay in arrival order, interleaved with
      * every other session's, so loading a run's history (up to 200
      * messages, at every run start) read one table page per message
      * through the (session_id, seq) index — and a WAL reader keeps no
      * page across another connection's commit, so those were real reads
      * at every start (docs/benchmarks.md, "Agent runs: where a run's CPU
      * goes"). A write is one B-tree insert instead of a table append and
      * an index insert. A large row spills to overflow pages as it did. */
     "CREATE TABLE messages_clustered ("
     "  session_id   TEXT NOT NULL,"
     "  seq          INTEGER NOT NULL,"
     "  run_id       TEXT NOT NULL DEFAULT '',"
     "  tenant_id    TEXT NOT NULL,"
     "  user_id      TEXT NOT NULL,"
     "  role         TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),"
     "  content      TEXT,"
     "  tool_calls   TEXT,"
     "  tool_call_id TEXT NOT NULL DEFAULT '',"
     "  created_at   INTEGER NOT NULL,"
     "  origin       TEXT,"
     "  PRIMARY KEY (session_id, seq)"
     ") WITHOUT ROWID;"
     "INSERT INTO messages_clustered (session_id, seq, run_id, tenant_id, user_id, role, content,"
     "  tool_calls, tool_call_id, created_at, origin)"
     " SELECT session_id, seq, run_id, tenant_id, user_id, role, content, tool_calls, tool_call_id,"
     "  created_at, origin FROM messages;"
     "DROP TABLE messages;"
     "ALTER TABLE messages_clustered RENAME TO messages;"},
    {24,
     /* runs_active's condition is evaluated at every write of a run's
      * status. Written `status IN (1, 2, 3, 8)`, SQLite coded it as a
      * temporary b-tree of the four values (an IN list of more than two
      * constants): a table created, a page zeroed, filled and freed, once
      * for a run's INSERT and twice for each UPDATE of its status — ~10 %
      * of the instructions of a held run (docs/benchmarks.md). The same
      * rows (status is 1–8), as comparisons. The restart recovery names
      * the condition, so it searches the index instead of scanning every
      * run (store_runs_recover_op). */
     "DROP INDEX IF EXISTS runs_active;"
     "CREATE INDEX runs_active ON runs (status) WHERE status < 4 OR status = 8;"},
    {25,
     /* The same cost in every message's insert: its CHECK on the role,
      * `role IN ('user', 'assistant', 'tool')`, made SQLite build a
      * temporary b-tree of the three names for each row (a run writes
      * two to twenty). A CHECK cannot be changed in place: the table is
      * rebuilt, as in 23, with the same rows and the check as comparisons
      * (store_message_valid checks the role before any insert as well). */
     "CREATE TABLE messages_checked ("
     "  session_id   TEXT NOT NULL,"
     "  seq          INTEGER NOT NULL,"
     "  run_id       TEXT NOT NULL DEFAULT '',"
     "  tenant_id    TEXT NOT NULL,"
     "  user_id      TEXT NOT NULL,"
     "  role         TEXT NOT NULL CHECK (role = 'user' OR role = 'assistant' OR role = 'tool'),"
     "  content      TEXT,"
     "  tool_calls   TEXT,"
     "  tool_call_id TEXT NOT NULL DEFAULT '',"
     "  created_at   INTEGER NOT NULL,"
     "  origin       TEXT,"
     "  PRIMARY KEY (session_id, seq)"
     ") WITHOUT ROWID;"
     "INSERT INTO messages_checked (session_id, seq, run_id, tenant_id, user_id, role, content,"
     "  tool_calls, tool_call_id, created_at, origin)"
     " SELECT session_id, seq, run_id, tenant_id, user_id, role, content, tool_calls, tool_call_id,"
     "  created_at, origin FROM messages;"
     "DROP TABLE messages;"
     "ALTER TABLE messages_checked RENAME TO messages;"},
    {26,
     /* Packs (trace_pack.h): the traces of one owner whose ids this
      * server made in one 10 ms window, written as one row, found again
      * by that window. Rows of a single trace keep id_window 0 and stay
      * out of the partial index, so they cost no more than before. */
     "ALTER TABLE traces ADD COLUMN id_window INTEGER NOT NULL DEFAULT 0;"
     "CREATE INDEX traces_window ON traces (id_window) WHERE id_window <> 0;"},
};

#define STORE_NMIGRATIONS (sizeof store_migrations / sizeof store_migrations[0])

int store_migrations_latest(void)
{
    return store_migrations[STORE_NMIGRATIONS - 1].version;
}

static int store_get_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) *v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : -1;
}

int store_migrate(store_conn *c, int *version_out, char *err, size_t errlen)
{
    sqlite3 *db = c->db;
    char *emsg = NULL;
    int v = 0;

    /* IMMEDIATE: two processes starting at once serialize here instead of
     * both deciding to apply the same migration. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &emsg) != SQLITE_OK) goto fail;
    if (store_get_version(db, &v) != 0) goto fail_rb;
    if (v > store_migrations_latest()) {
        snprintf(err, errlen, "database schema version %d is newer than this brigade (%d)",
                 v, store_migrations_latest());
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    for (size_t i = 0; i < STORE_NMIGRATIONS; i++) {
        const store_migration *m = &store_migrations[i];
        if (m->version <= v) continue;
        if (sqlite3_exec(db, m->sql, NULL, NULL, &emsg) != SQLITE_OK) goto fail_rb;
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
        if (sqlite3_exec(db, pragma, NULL, NULL, &emsg) != SQLITE_OK) goto fail_rb;
        v = m->version;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, &emsg) != SQLITE_OK) goto fail_rb;
    *version_out = v;
    return 0;

fail_rb:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
fail:
    snprintf(err, errlen, "migration failed: %s", emsg ? emsg : sqlite3_errmsg(db));
    sqlite3_free(emsg);
    return -1;
}
