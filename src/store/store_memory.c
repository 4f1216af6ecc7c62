/* store_memory.c — a user's long-term memory: key → text, with full-text
 * search (SQLite FTS5 over key and value, kept in step by triggers, see
 * migration 2).
 *
 * The search query comes from a user or, more often, from a model's tool
 * call, so it is never trusted as FTS5 syntax: store_memory_fts_query turns
 * it into words, each a quoted FTS5 string, joined with OR. OR rather than
 * AND because models phrase queries as sentences ("what is the user's
 * favourite colour"): with AND one stray word would hide every match, while
 * with OR the ranking still puts the entries that share the most (and the
 * rarest) words first. The ranking is BM25 computed from the caller's own
 * entries only (store_rank.c), not FTS5's bm25(), whose statistics cover
 * every user's. The words are matched in key and value only, and the whole
 * expression is ANDed with the owner (`user_id : "usr_…"`, an indexed FTS
 * column), so FTS5 itself looks only at the caller's entries; the SQL
 * filters by tenant and user once more, so a query can match only the
 * caller's own entries even if the expression were wrong. */
#include "store/store_internal.h"
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"
#include "util/timeutil.h"
#include "util/utf8.h"

#define STORE_MEMORY_LIST_DEFAULT 20
#define STORE_MEMORY_LIST_MAX 256     /* values are up to 64 KiB: bounds one answer at 16 MiB */

void memory_rec_free(memory_rec *m)
{
    if (!m) return;
    free(m->value);
    free(m->origin_json);
    m->value = m->origin_json = NULL;
}

void store_free_memories(memory_rec *arr, size_t n)
{
    if (!arr) return;
    for (size_t i = 0; i < n; i++) memory_rec_free(&arr[i]);
    free(arr);
}

/* ---- validation and the FTS5 expression ---- */

static bool store_memory_key_ok(const char *key)
{
    size_t n = key ? strnlen(key, STORE_MEMORY_KEY_MAX + 1) : 0;
    if (n == 0 || n > STORE_MEMORY_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20) return false;
    return utf8_valid(key, n);
}

static bool store_memory_value_ok(const char *value)
{
    size_t n = value ? strnlen(value, STORE_MEMORY_VALUE_MAX + 1) : STORE_MEMORY_VALUE_MAX + 1;
    return n <= STORE_MEMORY_VALUE_MAX && utf8_valid(value, n);
}

/* A byte that belongs to a word: ASCII letters and digits, and every byte
 * of a multi-byte UTF-8 character (the unicode61 tokenizer decides inside
 * the quotes what is a letter there). Everything else — quotes, `*`, `(`,
 * `:`, `^`, `-`, `+`, spaces — separates words, so no FTS5 operator
 * character ever reaches the expression. */
static bool store_fts_word_byte(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch >= 0x80;
}

/* The words part of the MATCH expression: `"w1" OR "w2" …`, at most
 * STORE_MEMORY_TERMS_MAX words. */
size_t store_memory_fts_query(const char *query, char *out)
{
    size_t len = 0, terms = 0;
    const unsigned char *p = (const unsigned char *)(query ? query : "");
    out[0] = '\0';
    while (*p && terms < STORE_MEMORY_TERMS_MAX) {
        while (*p && !store_fts_word_byte(*p)) p++;
        const unsigned char *w = p;
        while (*p && store_fts_word_byte(*p)) p++;
        size_t wn = (size_t)(p - w);
        if (wn == 0 || wn > STORE_MEMORY_TERM_MAX) continue;   /* empty, or junk */
        if (!utf8_valid((const char *)w, wn)) continue;        /* a split or broken character */
        if (terms) { memcpy(out + len, " OR ", 4); len += 4; }
        out[len++] = '"';
        for (size_t i = 0; i < wn; i++) {
            /* cannot happen with today's word bytes; kept so that widening
             * store_fts_word_byte can never open a hole */
            if (w[i] == '"') out[len++] = '"';
            out[len++] = (char)w[i];
        }
        out[len++] = '"';
        out[len] = '\0';
        terms++;
    }
    return terms;
}

/* ---- put, get, delete ---- */

typedef struct memory_put_args {
    const scope *sc;
    const char *key, *value;
    const char *origin;            /* JSON text, or NULL */
    int64_t now;
    int64_t bytes;                 /* key + value */
    store_quota quota;
    store_quota_refusal refusal;   /* filled when a quota refuses */
} memory_put_args;

/* The memory_entries and memory_bytes quotas, against the user's entries
 * (memory_bytes also holds their stored Responses, store_responses.c)
 * as they are inside this transaction. Replacing a key counts its new size
 * instead of its old one, and no entry. */
static store_status store_memory_quota(store_conn *c, memory_put_args *a)
{
    if (a->quota.memory_entries <= 0 && a->quota.memory_bytes <= 0) return STORE_OK;
    sqlite3_stmt *s = store_stmt(c,
        "SELECT count(*), COALESCE(SUM(bytes), 0)"
        " + (SELECT COALESCE(SUM(bytes), 0) FROM responses WHERE tenant_id = ?1 AND user_id = ?2),"
        " (SELECT bytes FROM memory WHERE tenant_id = ?1 AND user_id = ?2 AND key = ?3)"
        " FROM memory WHERE tenant_id = ?1 AND user_id = ?2");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->sc->tenant_id);
    store_bind_text(s, 2, a->sc->user_id);
    store_bind_text(s, 3, a->key);
    int rc = sqlite3_step(s);
    int64_t entries = 0, bytes = 0, old = 0;
    bool exists = false;
    if (rc == SQLITE_ROW) {
        entries = sqlite3_column_int64(s, 0);
        bytes = sqlite3_column_int64(s, 1);
        exists = sqlite3_column_type(s, 2) != SQLITE_NULL;
        old = sqlite3_column_int64(s, 2);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return store_sqlite_status(c, rc, "memory quota");
    store_status res = store_quota_check("memory_bytes", a->quota.memory_bytes, bytes,
                                         bytes - old + a->bytes, a->bytes, &a->refusal);
    if (res == STORE_OK && !exists)
        res = store_quota_check("memory_entries", a->quota.memory_entries, entries, entries + 1, 1,
                                &a->refusal);
    return res;
}

static store_status store_memory_put_op(store_conn *c, void *arg)
{
    memory_put_args *a = arg;
    /* a user erased since the request authenticated must not get new rows */
    store_status res = store_user_alive(c, a->sc->tenant_id, a->sc->user_id);
    if (res != STORE_OK) return res;
    if ((res = store_memory_quota(c, a)) != STORE_OK) return res;
    sqlite3_stmt *s = store_stmt(c,
        "INSERT INTO memory (tenant_id, user_id, key, value, updated_at, bytes, origin) VALUES (?,?,?,?,?,?,?)"
        " ON CONFLICT (tenant_id, user_id, key) DO UPDATE SET value = excluded.value,"
        " updated_at = excluded.updated_at, bytes = excluded.bytes, origin = excluded.origin");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->sc->tenant_id);
    store_bind_text(s, 2, a->sc->user_id);
    store_bind_text(s, 3, a->key);
    store_bind_text(s, 4, a->value);
    sqlite3_bind_int64(s, 5, a->now);
    sqlite3_bind_int64(s, 6, a->bytes);
    store_bind_text(s, 7, a->origin);
    return store_step_done(c, s, "put memory");
}

static int store_memory_fill(memory_rec *out, const char *key, const char *value, size_t vlen,
                             const char *origin, int64_t updated_at)
{
    memset(out, 0, sizeof *out);
    snprintf(out->key, sizeof out->key, "%s", key);
    out->updated_at = updated_at;
    out->value = malloc(vlen + 1);
    if (!out->value) return -1;
    memcpy(out->value, value, vlen);
    out->value[vlen] = '\0';
    if (origin && !(out->origin_json = strdup(origin))) {
        memory_rec_free(out);
        return -1;
    }
    return 0;
}

#define STORE_MEMORY_COLS "key, value, updated_at, origin"

/* columns: STORE_MEMORY_COLS */
static int store_memory_row(sqlite3_stmt *s, void *rec)
{
    const char *v = (const char *)sqlite3_column_text(s, 1);
    return store_memory_fill(rec, (const char *)sqlite3_column_text(s, 0), v ? v : "",
                             (size_t)sqlite3_column_bytes(s, 1),
                             (const char *)sqlite3_column_text(s, 3), sqlite3_column_int64(s, 2));
}

/* The origin is the harness's JSON (core/origin.h), bounded and UTF-8;
 * it is not counted in the quota: its size does not depend on the user. */
static bool store_memory_origin_ok(const char *origin)
{
    if (!origin) return true;
    size_t n = strnlen(origin, STORE_ORIGIN_MAX + 1);
    return n > 0 && n <= STORE_ORIGIN_MAX && utf8_valid(origin, n);
}

store_status store_memory_put_from(store *st, const scope *sc, const char *key, const char *value,
                                   const char *origin_json, memory_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_memory_put_from(st, sc, key, value, origin_json, out));
    if (out) memset(out, 0, sizeof *out);
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!store_memory_key_ok(key) || !store_memory_value_ok(value) ||
        !store_memory_origin_ok(origin_json))
        return STORE_INVALID;
    memory_put_args a = {sc, key, value, origin_json, time_now_unix(),
                         (int64_t)(strlen(key) + strlen(value)), {0}, {0}};
    store_quota_of(st, sc, &a.quota);
    store_status res = store_quota_record(store_write(st, store_memory_put_op, &a), &a.refusal);
    if (res != STORE_OK || !out) return res;
    return store_memory_fill(out, key, value, strlen(value), origin_json, a.now) == 0 ? STORE_OK
                                                                                      : STORE_ERROR;
}

store_status store_memory_put(store *st, const scope *sc, const char *key, const char *value,
                              memory_rec *out)
{
    return store_memory_put_from(st, sc, key, value, NULL, out);
}

store_status store_memory_get(store *st, const scope *sc, const char *key, memory_rec *out)
{
    STORE_PG_DISPATCH(st, store_pg_memory_get(store_pg_of(st), sc, key, out));
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!store_memory_key_ok(key)) return STORE_INVALID;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;
    sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_MEMORY_COLS " FROM memory"
                                    " WHERE tenant_id = ? AND user_id = ? AND key = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, sc->tenant_id);
    store_bind_text(s, 2, sc->user_id);
    store_bind_text(s, 3, key);
    int rc = sqlite3_step(s);
    store_status res;
    if (rc == SQLITE_ROW) res = store_memory_row(s, out) == 0 ? STORE_OK : STORE_ERROR;
    else res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sqlite_status(c, rc, "get memory");
    sqlite3_reset(s);
    return res;
}

typedef struct memory_delete_args {
    const scope *sc;
    const char *key;
} memory_delete_args;

static store_status store_memory_delete_op(store_conn *c, void *arg)
{
    memory_delete_args *a = arg;
    sqlite3_stmt *s = store_stmt(c, "DELETE FROM memory WHERE tenant_id = ? AND user_id = ? AND key = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, a->sc->tenant_id);
    store_bind_text(s, 2, a->sc->user_id);
    store_bind_text(s, 3, a->key);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return store_sqlite_status(c, rc, "delete memory");
    return sqlite3_changes(c->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_memory_delete(store *st, const scope *sc, const char *key)
{
    STORE_PG_DISPATCH(st, store_pg_memory_delete(st, sc, key));
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!store_memory_key_ok(key)) return STORE_INVALID;
    memory_delete_args a = {sc, key};
    return store_write(st, store_memory_delete_op, &a);
}

/* ---- search ---- */

static void store_memory_rows_free(void *arr, size_t n) { store_free_memories(arr, n); }
static const store_rows memory_rows = {sizeof(memory_rec), store_memory_row, store_memory_rows_free,
                                       "search memory"};

/* A search with words: the caller's matches ranked by store_rank.c (from
 * the caller's rows only), then the best `limit` read in that order — all
 * in one read transaction, so the ranking and the rows agree. */
static store_status store_memory_ranked(store_conn *c, const scope *sc, const char *words,
                                        size_t nwords, size_t limit, memory_rec **out, size_t *n)
{
    /* owner part + words part; the user id is quoted like any string (ids
     * are hex, but the quoting does not rely on it) */
    char expr[STORE_FTS_EXPR_MAX + 2 * ID_MAX + 48];
    size_t len = (size_t)snprintf(expr, sizeof expr, "user_id : \"");
    /* at most ID_MAX - 1 characters, each at most doubled: fits */
    for (const char *p = sc->user_id; p < sc->user_id + ID_MAX && *p; p++) {
        if (*p == '"') expr[len++] = '"';
        expr[len++] = *p;
    }
    snprintf(expr + len, sizeof expr - len, "\" AND {key value} : (%s)", words);

    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return store_sqlite_status(c, sqlite3_errcode(c->db), "begin search");
    store_rank_row *rows = NULL;
    size_t nrows = 0;
    store_status res = store_rank_memory(c, sc, expr, nwords, &rows, &nrows);
    memory_rec *arr = res == STORE_OK ? calloc(limit, sizeof *arr) : NULL;
    size_t got = 0;
    if (res == STORE_OK && !arr) res = STORE_ERROR;
    for (size_t i = 0; res == STORE_OK && i < nrows && got < limit; i++) {
        sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_MEMORY_COLS " FROM memory"
                                        " WHERE id = ? AND tenant_id = ? AND user_id = ?");
        if (!s) { res = STORE_ERROR; break; }
        sqlite3_bind_int64(s, 1, rows[i].id);
        store_bind_text(s, 2, sc->tenant_id);
        store_bind_text(s, 3, sc->user_id);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            if (store_memory_row(s, &arr[got]) == 0) got++;
            else res = STORE_ERROR;
        } else if (rc != SQLITE_DONE) {
            res = store_sqlite_status(c, rc, "read ranked memory");
        }
        sqlite3_reset(s);
    }
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    free(rows);
    if (res != STORE_OK) {
        store_free_memories(arr, got);
        return res;
    }
    *out = arr;
    *n = got;
    return STORE_OK;
}

store_status store_memory_search(store *st, const scope *sc, const char *query, size_t limit,
                                 memory_rec **out, size_t *n)
{
    STORE_PG_DISPATCH(st, store_pg_memory_search(store_pg_of(st), sc, query, limit, out, n));
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (limit == 0) limit = STORE_MEMORY_LIST_DEFAULT;
    if (limit > STORE_MEMORY_LIST_MAX) limit = STORE_MEMORY_LIST_MAX;
    store_conn *c = store_reader(st);
    if (!c) return STORE_ERROR;

    char words[STORE_FTS_EXPR_MAX];
    size_t nwords = store_memory_fts_query(query, words);
    if (nwords > 0) return store_memory_ranked(c, sc, words, nwords, limit, out, n);

    /* no words at all (empty, or only punctuation): newest first */
    sqlite3_stmt *s = store_stmt(c, "SELECT " STORE_MEMORY_COLS " FROM memory"
                                    " WHERE tenant_id = ?2 AND user_id = ?3"
                                    " ORDER BY updated_at DESC, id DESC LIMIT ?4");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 2, sc->tenant_id);
    store_bind_text(s, 3, sc->user_id);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)limit);

    void *arr;
    store_status res = store_collect(c, s, &memory_rows, limit, &arr, n);
    *out = arr;
    return res;
}
