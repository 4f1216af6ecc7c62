/* store_rank.c — ranking memory search results by the caller's rows only.
 *
 * FTS5's built-in bm25() weighs each word by its inverse document
 * frequency over the WHOLE table and normalises lengths by the whole
 * table's average: every user's notes move every other user's ranking. A
 * user who searches for a word and watches the order change could learn
 * whether anybody else stores it — one tenant's data leaking into another's
 * answers. So the ranking is computed here instead, from statistics over
 * the caller's own matching entries:
 *
 *   - an FTS5 auxiliary function, brigade_match_stats(memory_fts), reports
 *     for one row how often each phrase of the query occurs in the key and
 *     in the value, and the two columns' lengths in tokens — facts about
 *     that row alone (registered on every read connection);
 *   - store_rank_memory then computes, over the caller's matching rows, the
 *     document frequency of each word and the average length, and scores
 *     every row with the BM25 formula FTS5 uses (k1 1.2, b 0.75, the key
 *     weighing double), N being the number of the caller's entries.
 *
 * Nothing another user writes enters the numbers, so their order cannot
 * depend on it. Ties (equal scores) go to the newest entry, then the
 * highest id: a total order, so equal inputs give equal outputs. */
#include "store/store_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One row's facts, as brigade_match_stats returns them: a blob of
 * uint32 values — key length, value length, then per phrase (the owner
 * phrase first, as in the MATCH expression) its count in key and in value. */
#define RANK_PHRASES_MAX (STORE_MEMORY_TERMS_MAX + 1)

static void store_rank_stats_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                                int nval, sqlite3_value **vals)
{
    (void)nval;
    (void)vals;
    uint32_t out[2 + 2 * RANK_PHRASES_MAX];
    memset(out, 0, sizeof out);
    int n = 0;
    if (api->xColumnSize(fts, 0, &n) == SQLITE_OK && n > 0) out[0] = (uint32_t)n;
    n = 0;
    if (api->xColumnSize(fts, 1, &n) == SQLITE_OK && n > 0) out[1] = (uint32_t)n;
    int ninst = 0;
    if (api->xInstCount(fts, &ninst) != SQLITE_OK) {
        sqlite3_result_error(ctx, "brigade_match_stats: cannot read the matches", -1);
        return;
    }
    for (int i = 0; i < ninst; i++) {
        int phrase, col, off;
        if (api->xInst(fts, i, &phrase, &col, &off) != SQLITE_OK) continue;
        if (phrase < 0 || phrase >= RANK_PHRASES_MAX || col < 0 || col > 1) continue;
        out[2 + 2 * phrase + col]++;
    }
    sqlite3_result_blob(ctx, out, (int)sizeof out, SQLITE_TRANSIENT);
}

int store_rank_register(sqlite3 *db)
{
    fts5_api *api = NULL;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &s, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_pointer(s, 1, (void *)&api, "fts5_api_ptr", NULL);
    sqlite3_step(s);
    sqlite3_finalize(s);
    if (!api || api->iVersion < 2) return -1;
    return api->xCreateFunction(api, "brigade_match_stats", NULL, store_rank_stats_fn, NULL) == SQLITE_OK
               ? 0 : -1;
}

/* ---- scoring (pure) ---- */

#define RANK_K1 1.2
#define RANK_B 0.75
#define RANK_KEY_WEIGHT 2.0     /* a word in the key names what the entry is about */
#define RANK_VALUE_WEIGHT 1.0

void store_rank_score(store_rank_row *rows, size_t n, size_t nwords, int64_t entries)
{
    if (nwords > STORE_MEMORY_TERMS_MAX) nwords = STORE_MEMORY_TERMS_MAX;
    double idf[STORE_MEMORY_TERMS_MAX];
    double total_len = 0;
    for (size_t w = 0; w < nwords; w++) {
        size_t hits = 0;
        for (size_t i = 0; i < n; i++)
            if (rows[i].tf[w][0] || rows[i].tf[w][1]) hits++;
        /* a collection smaller than the matches (a row written between the
         * two reads) must not make the logarithm's argument negative */
        double big_n = (double)(entries > (int64_t)n ? entries : (int64_t)n);
        double v = log((big_n - (double)hits + 0.5) / ((double)hits + 0.5));
        idf[w] = v > 1e-6 ? v : 1e-6;   /* as FTS5: common words still count a little */
    }
    for (size_t i = 0; i < n; i++) total_len += (double)rows[i].len;
    double avgdl = n && total_len > 0 ? total_len / (double)n : 1.0;
    for (size_t i = 0; i < n; i++) {
        double score = 0, d = (double)rows[i].len;
        for (size_t w = 0; w < nwords; w++) {
            double f = RANK_KEY_WEIGHT * rows[i].tf[w][0] + RANK_VALUE_WEIGHT * rows[i].tf[w][1];
            if (f == 0) continue;
            score += idf[w] * (f * (RANK_K1 + 1.0)) / (f + RANK_K1 * (1.0 - RANK_B + RANK_B * d / avgdl));
        }
        rows[i].score = score;
    }
}

static int store_rank_cmp(const void *pa, const void *pb)
{
    const store_rank_row *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->updated_at != b->updated_at) return a->updated_at > b->updated_at ? -1 : 1;
    return a->id > b->id ? -1 : a->id < b->id;
}

void store_rank_sort(store_rank_row *rows, size_t n)
{
    if (n > 1) qsort(rows, n, sizeof *rows, store_rank_cmp);   /* rows is NULL when nothing matched */
}

/* ---- the query ---- */

store_status store_rank_memory(store_conn *c, const scope *sc, const char *expr, size_t nwords,
                               store_rank_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s = store_stmt(c, "SELECT count(*) FROM memory WHERE tenant_id = ? AND user_id = ?");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, sc->tenant_id);
    store_bind_text(s, 2, sc->user_id);
    int rc = sqlite3_step(s);
    int64_t entries = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return store_sqlite_status(c, rc, "count memory");

    /* CROSS JOIN keeps memory_fts the outer loop: one pass over the
     * caller's matches. Left to the planner, the (tenant, user) index of
     * memory came first and FTS5 ran the whole MATCH once per entry. */
    s = store_stmt(c, "SELECT m.id, m.updated_at, brigade_match_stats(memory_fts) FROM memory_fts"
                      " CROSS JOIN memory AS m ON m.id = memory_fts.rowid"
                      " WHERE memory_fts MATCH ?1 AND m.tenant_id = ?2 AND m.user_id = ?3");
    if (!s) return STORE_ERROR;
    store_bind_text(s, 1, expr);
    store_bind_text(s, 2, sc->tenant_id);
    store_bind_text(s, 3, sc->user_id);
    store_rank_row *rows = NULL;
    size_t cnt = 0, cap = 0;
    store_status res = STORE_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            store_rank_row *nr = realloc(rows, ncap * sizeof *nr);
            if (!nr) { res = STORE_ERROR; break; }
            rows = nr;
            cap = ncap;
        }
        store_rank_row *r = &rows[cnt++];
        memset(r, 0, sizeof *r);
        r->id = sqlite3_column_int64(s, 0);
        r->updated_at = sqlite3_column_int64(s, 1);
        const uint32_t *st = sqlite3_column_blob(s, 2);
        if (st && sqlite3_column_bytes(s, 2) == (int)((2 + 2 * RANK_PHRASES_MAX) * sizeof *st)) {
            r->len = st[0] + st[1];
            /* phrase 0 is the owner; the words are phrases 1… */
            for (size_t w = 0; w < nwords && w < STORE_MEMORY_TERMS_MAX; w++) {
                r->tf[w][0] = st[2 + 2 * (w + 1)];
                r->tf[w][1] = st[2 + 2 * (w + 1) + 1];
            }
        }
    }
    if (res == STORE_OK && rc != SQLITE_DONE) res = store_sqlite_status(c, rc, "rank memory");
    sqlite3_reset(s);
    if (res != STORE_OK) {
        free(rows);
        return res;
    }
    store_rank_score(rows, cnt, nwords, entries);
    store_rank_sort(rows, cnt);
    *out = rows;
    *n = cnt;
    return STORE_OK;
}
