/* store_pg_memory.c — a user's long-term memory on PostgreSQL, with search
 * by PostgreSQL's own full-text search (the same contracts and scope
 * rules as store_memory.c: the user's own entries only, others' keys are
 * "not found").
 *
 * Search. The query comes from a user or a model's tool call, so it is
 * never PostgreSQL tsquery syntax: it is cut into words by the same rule
 * as the SQLite backend (ASCII letters and digits and any non-ASCII byte
 * make words; everything else separates them; at most
 * STORE_MEMORY_TERMS_MAX words of at most STORE_MEMORY_TERM_MAX bytes),
 * each word is bound as a parameter to plainto_tsquery('brigade_memory', …)
 * (the 'simple' configuration with accents folded), and
 * the words are ORed (a sentence-like query still finds entries sharing
 * some of its words). Matches are ranked by ts_rank over the stored
 * tsvector of key and value, best first, ties newest first. ts_rank scores
 * a row from that row alone — no statistics over other rows — so nothing
 * another user stores can change a user's ranking, and the WHERE clause
 * limits the match to the caller's (tenant, user) rows.
 *
 * Writes lock the user's row (FOR UPDATE) first: an erased user gets no
 * new rows, and two instances writing for one user at once cannot both
 * pass the memory quotas. */
#include "store/store_internal.h"   /* store_quota_of / _check / _record, STORE_MEMORY_TERM* */
#include "store/store_pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"
#include "util/utf8.h"

#define PG_MEMORY_LIST_DEFAULT 20
#define PG_MEMORY_LIST_MAX 256
#define MEMORY_COLS "key, value, updated_at, origin"

static bool key_ok(const char *key)
{
    size_t n = key ? strnlen(key, STORE_MEMORY_KEY_MAX + 1) : 0;
    if (n == 0 || n > STORE_MEMORY_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x20) return false;
    return utf8_valid(key, n);
}

static bool value_ok(const char *value)
{
    size_t n = value ? strnlen(value, STORE_MEMORY_VALUE_MAX + 1) : STORE_MEMORY_VALUE_MAX + 1;
    return n <= STORE_MEMORY_VALUE_MAX && utf8_valid(value, n);
}

static bool origin_ok(const char *origin)
{
    if (!origin) return true;
    size_t n = strnlen(origin, STORE_ORIGIN_MAX + 1);
    return n > 0 && n <= STORE_ORIGIN_MAX && utf8_valid(origin, n);
}

static int fill(memory_rec *out, const char *key, const char *value, const char *origin, int64_t at)
{
    memset(out, 0, sizeof *out);
    snprintf(out->key, sizeof out->key, "%s", key);
    out->updated_at = at;
    if (!(out->value = strdup(value))) return -1;
    if (origin && !(out->origin_json = strdup(origin))) {
        memory_rec_free(out);
        return -1;
    }
    return 0;
}

static int fill_row(const PGresult *r, int i, memory_rec *out)
{
    return fill(out, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3), pg_i64(r, i, 2));
}

/* Lock the user's row: STORE_OK if the user still exists. */
static store_status lock_user(PGconn *c, const scope *sc)
{
    const char *p[2] = {sc->user_id, sc->tenant_id};
    store_status st;
    PGresult *r = pg_exec(c, "SELECT 1 FROM users WHERE id = $1 AND tenant_id = $2 FOR UPDATE", 2, p, &st,
                          "lock user");
    if (!r) return st;
    st = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
    PQclear(r);
    return st;
}

typedef struct pg_memory_args {
    const scope *sc;
    const char *key, *value, *origin;
    int64_t now, bytes;
    store_quota quota;
    store_quota_refusal refusal;
} pg_memory_args;

static store_status memory_quota(PGconn *c, pg_memory_args *a)
{
    if (a->quota.memory_entries <= 0 && a->quota.memory_bytes <= 0) return STORE_OK;
    const char *p[3] = {a->sc->tenant_id, a->sc->user_id, a->key};
    store_status st;
    PGresult *r = pg_exec(c,
        "SELECT count(*), COALESCE(SUM(bytes), 0)"
        " + (SELECT COALESCE(SUM(bytes), 0) FROM responses WHERE tenant_id = $1 AND user_id = $2),"
        " (SELECT bytes FROM memory WHERE tenant_id = $1 AND user_id = $2 AND key = $3)"
        " FROM memory WHERE tenant_id = $1 AND user_id = $2", 3, p, &st, "memory quota");
    if (!r) return st;
    int64_t entries = pg_i64(r, 0, 0), bytes = pg_i64(r, 0, 1), old = pg_i64(r, 0, 2);
    bool exists = !PQgetisnull(r, 0, 2);
    PQclear(r);
    st = store_quota_check("memory_bytes", a->quota.memory_bytes, bytes, bytes - old + a->bytes, a->bytes,
                           &a->refusal);
    if (st == STORE_OK && !exists)
        st = store_quota_check("memory_entries", a->quota.memory_entries, entries, entries + 1, 1,
                               &a->refusal);
    return st;
}

static store_status memory_put_op(PGconn *c, void *arg)
{
    pg_memory_args *a = arg;
    store_status st = lock_user(c, a->sc);
    if (st != STORE_OK) return st;
    if ((st = memory_quota(c, a)) != STORE_OK) return st;
    char now[PG_I64_MAX], bytes[PG_I64_MAX];
    const char *p[7] = {a->sc->tenant_id, a->sc->user_id, a->key, a->value, pg_num(now, a->now),
                        pg_num(bytes, a->bytes), a->origin};
    return pg_run(c, "INSERT INTO memory (tenant_id, user_id, key, value, updated_at, bytes, origin)"
                     " VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (tenant_id, user_id, key) DO UPDATE SET"
                     " value = excluded.value, updated_at = excluded.updated_at, bytes = excluded.bytes,"
                     " origin = excluded.origin", 7, p, "put memory");
}

store_status store_pg_memory_put_from(store *st, const scope *sc, const char *key, const char *value,
                                      const char *origin_json, memory_rec *out)
{
    if (out) memset(out, 0, sizeof *out);
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!key_ok(key) || !value_ok(value) || !origin_ok(origin_json)) return STORE_INVALID;
    pg_memory_args a = {sc, key, value, origin_json, time_now_unix(),
                        (int64_t)(strlen(key) + strlen(value)), {0}, {0}};
    store_quota_of(st, sc, &a.quota);
    store_status r = store_quota_record(pg_write(st, memory_put_op, &a), &a.refusal);
    if (r != STORE_OK || !out) return r;
    return fill(out, key, value, origin_json, a.now) == 0 ? STORE_OK : STORE_ERROR;
}

store_status store_pg_memory_get(struct pg_store *p, const scope *sc, const char *key, memory_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!key_ok(key)) return STORE_INVALID;
    const char *params[3] = {sc->tenant_id, sc->user_id, key};
    store_status st;
    PGresult *r = pg_read(p, "SELECT " MEMORY_COLS " FROM memory WHERE tenant_id = $1 AND user_id = $2"
                             " AND key = $3", 3, params, &st, "get memory");
    if (!r) return st;
    st = PQntuples(r) == 1 ? (fill_row(r, 0, out) == 0 ? STORE_OK : STORE_ERROR) : STORE_NOT_FOUND;
    PQclear(r);
    return st;
}

static store_status memory_delete_op(PGconn *c, void *arg)
{
    pg_memory_args *a = arg;
    const char *p[3] = {a->sc->tenant_id, a->sc->user_id, a->key};
    store_status st;
    int64_t n = pg_run_count(c, "DELETE FROM memory WHERE tenant_id = $1 AND user_id = $2 AND key = $3", 3, p,
                             &st, "delete memory");
    if (n < 0) return st;
    return n == 1 ? STORE_OK : STORE_NOT_FOUND;
}

store_status store_pg_memory_delete(store *st, const scope *sc, const char *key)
{
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (!key_ok(key)) return STORE_INVALID;
    pg_memory_args a = {.sc = sc, .key = key};
    return pg_write(st, memory_delete_op, &a);
}

/* ---- search ---- */

static bool word_byte(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch >= 0x80;
}

/* Cut query into words (copies in buf, pointers in words): how many. */
static size_t split_words(const char *query, char buf[][STORE_MEMORY_TERM_MAX + 1], const char **words)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)(query ? query : "");
    while (*p && n < STORE_MEMORY_TERMS_MAX) {
        while (*p && !word_byte(*p)) p++;
        const unsigned char *w = p;
        while (*p && word_byte(*p)) p++;
        size_t wn = (size_t)(p - w);
        if (wn == 0 || wn > STORE_MEMORY_TERM_MAX || !utf8_valid((const char *)w, wn)) continue;
        memcpy(buf[n], w, wn);
        buf[n][wn] = '\0';
        words[n] = buf[n];
        n++;
    }
    return n;
}

static store_status collect(PGresult *r, memory_rec **out, size_t *n)
{
    int rows = PQntuples(r);
    if (rows > 0) {
        memory_rec *arr = calloc((size_t)rows, sizeof *arr);
        if (!arr) { PQclear(r); return STORE_ERROR; }
        for (int i = 0; i < rows; i++) {
            if (fill_row(r, i, &arr[i]) != 0) {
                store_free_memories(arr, (size_t)i);
                PQclear(r);
                return STORE_ERROR;
            }
        }
        *out = arr;
        *n = (size_t)rows;
    }
    PQclear(r);
    return STORE_OK;
}

store_status store_pg_memory_search(struct pg_store *p, const scope *sc, const char *query, size_t limit,
                                    memory_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!scope_valid(sc)) return STORE_NOT_FOUND;
    if (sc->role != SCOPE_USER) return STORE_FORBIDDEN;
    if (limit == 0) limit = PG_MEMORY_LIST_DEFAULT;
    if (limit > PG_MEMORY_LIST_MAX) limit = PG_MEMORY_LIST_MAX;
    char lim[PG_I64_MAX];
    pg_num(lim, (int64_t)limit);

    char (*words_buf)[STORE_MEMORY_TERM_MAX + 1] = malloc(STORE_MEMORY_TERMS_MAX * sizeof *words_buf);
    if (!words_buf) return STORE_ERROR;
    const char *params[3 + STORE_MEMORY_TERMS_MAX] = {sc->tenant_id, sc->user_id, lim};
    size_t nwords = split_words(query, words_buf, params + 3);
    store_status st;
    PGresult *r;
    if (nwords == 0) {
        /* no words at all (empty, or only punctuation): newest first */
        r = pg_read(p, "SELECT " MEMORY_COLS " FROM memory WHERE tenant_id = $1 AND user_id = $2"
                       " ORDER BY updated_at DESC, id DESC LIMIT $3", 3, params, &st, "list memory");
    } else {
        /* (plainto_tsquery('brigade_memory', $4) || … $5 …): each word a
         * parameter, never syntax */
        char sql[1024 + STORE_MEMORY_TERMS_MAX * 40];
        size_t len = (size_t)snprintf(sql, sizeof sql,
            "WITH q AS (SELECT (");
        for (size_t i = 0; i < nwords; i++)
            len += (size_t)snprintf(sql + len, sizeof sql - len, "%splainto_tsquery('brigade_memory', $%zu)",
                                    i ? " || " : "", i + 4);
        snprintf(sql + len, sizeof sql - len,
            ") AS tsq)"
            " SELECT " MEMORY_COLS " FROM memory, q WHERE tenant_id = $1 AND user_id = $2 AND fts @@ q.tsq"
            " ORDER BY ts_rank(fts, q.tsq) DESC, updated_at DESC, id DESC LIMIT $3");
        r = pg_read(p, sql, (int)(3 + nwords), params, &st, "search memory");
    }
    free(words_buf);
    if (!r) return st;
    return collect(r, out, n);
}
