/* test_store_security.c — the store's defences of issue 10: memory search
 * ranked from the caller's rows only (no cross-tenant "does anyone store
 * this word?" oracle), storage quotas checked atomically with the write,
 * erasure that takes spans and leaves no trace in the file or the WAL, and
 * database files private to their owner. Each test works in a fresh data
 * directory under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity/scope_mint.h"
#include "test_util.h"
#include "store/store.h"
#include "store/store_internal.h"   /* store_rank_score, store_rank_sort */
#include "util/ids.h"
#include "util/timeutil.h"

typedef struct fx {
    char dir[64];
    store *st;
    scope admin, ta, tb;
    char ta_id[ID_MAX], tb_id[ID_MAX];
    char ua[ID_MAX], uc[ID_MAX], ub[ID_MAX];
    scope sa, sc, sb;      /* sa, sc: users of tenant a; sb: a user of tenant b */
    store_quota quota;     /* what the quota function answers for tier "small" */
} fx;

static void quota_of(void *arg, const char *tier, store_quota *out)
{
    fx *f = arg;
    if (tier && strcmp(tier, "small") == 0) *out = f->quota;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->st = test_store_open(f->dir, sizeof f->dir, "brigade-sec");
    assert_non_null(f->st);
    scope_mint_server_admin(&f->admin);
    assert_int_equal(test_store_tenant(f->st, &f->admin, "tenant-a", f->ta_id), STORE_OK);
    assert_int_equal(test_store_tenant(f->st, &f->admin, "tenant-b", f->tb_id), STORE_OK);
    scope_mint_tenant_admin(&f->ta, f->ta_id, "key_a");
    scope_mint_tenant_admin(&f->tb, f->tb_id, "key_b");
    assert_int_equal(test_store_user(f->st, &f->ta, "alice", f->ua), STORE_OK);
    assert_int_equal(test_store_user(f->st, &f->ta, "carol", f->uc), STORE_OK);
    assert_int_equal(test_store_user(f->st, &f->tb, "bob", f->ub), STORE_OK);
    scope_mint_user(&f->sa, f->ta_id, f->ua, "key_1", "small");
    scope_mint_user(&f->sc, f->ta_id, f->uc, "key_2", "default");
    scope_mint_user(&f->sb, f->tb_id, f->ub, "key_3", "default");
    store_set_quota_fn(f->st, quota_of, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    test_store_close(f->st, f->dir);
    free(f);
    return 0;
}

/* ---------------- ranking ---------------- */

/* The keys of a search's results, joined with '|'. */
static void search_keys(fx *f, const scope *sc, const char *q, char *out, size_t outlen)
{
    memory_rec *arr;
    size_t n;
    assert_int_equal(store_memory_search(f->st, sc, q, 50, &arr, &n), STORE_OK);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(out, arr[i].key, outlen - strlen(out) - 1);
        strncat(out, "|", outlen - strlen(out) - 1);
    }
    store_free_memories(arr, n);
}

/* What FTS5's own bm25() would answer for the same user and query (the
 * ranking brigade used before): statistics over every user's rows. */
static void bm25_keys(fx *f, const char *user_id, const char *words, char *out, size_t outlen)
{
    char path[128], expr[512];
    snprintf(path, sizeof path, "%s/brigade.db", f->dir);
    snprintf(expr, sizeof expr, "user_id : \"%s\" AND {key value} : (%s)", user_id, words);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT m.key FROM memory_fts JOIN memory AS m ON"
                                            " m.id = memory_fts.rowid WHERE memory_fts MATCH ?"
                                            " ORDER BY bm25(memory_fts, 2.0, 1.0, 0.0)",
                                        -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, expr, -1, SQLITE_TRANSIENT);
    out[0] = '\0';
    while (sqlite3_step(s) == SQLITE_ROW) {
        strncat(out, (const char *)sqlite3_column_text(s, 0), outlen - strlen(out) - 1);
        strncat(out, "|", outlen - strlen(out) - 1);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void put_many(fx *f, const scope *sc, const char *prefix, const char *value, int n)
{
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s-%d", prefix, i);
        assert_int_equal(store_memory_put(f->st, sc, key, value, NULL), STORE_OK);
    }
}

static void test_rank_ignores_other_users(void **state)
{
    fx *f = *state;
    f->quota = (store_quota){0};   /* no quotas here */
    /* Alice's notes: each mentions one of the two query words once, and a
     * few notes mention neither, so both words are rare for her. */
    assert_int_equal(store_memory_put(f->st, &f->sa, "n1", "orchid seeds in the blue pot", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &f->sa, "n2", "walrus facts from the old zoo", NULL), STORE_OK);
    put_many(f, &f->sa, "other", "nothing relevant here at all", 6);
    char before[512], after[512], bm_before[512], bm_after[512];
    search_keys(f, &f->sa, "orchid walrus", before, sizeof before);
    bm25_keys(f, f->ua, "\"orchid\" OR \"walrus\"", bm_before, sizeof bm_before);
    assert_string_equal(before, "n2|n1|");   /* a tie: newest first, then highest id */

    /* Another tenant stores "orchid" everywhere: with global statistics
     * the word becomes common and Alice's walrus note would move up. */
    put_many(f, &f->sb, "b", "orchid orchid orchid", 150);
    search_keys(f, &f->sa, "orchid walrus", after, sizeof after);
    assert_string_equal(after, before);
    bm25_keys(f, f->ua, "\"orchid\" OR \"walrus\"", bm_after, sizeof bm_after);
    /* the attack is real against bm25(): this data moves its order */
    assert_string_not_equal(bm_after, bm_before);

    /* a user of Alice's own tenant, the other way round */
    put_many(f, &f->sc, "c", "walrus walrus walrus walrus", 300);
    search_keys(f, &f->sa, "orchid walrus", after, sizeof after);
    assert_string_equal(after, before);

    /* Alice's own notes still count: one more walrus note of hers makes
     * walrus the commoner word for her, and the orchid note comes first
     * by weight rather than by age. */
    assert_int_equal(store_memory_put(f->st, &f->sa, "n3", "walrus again", NULL), STORE_OK);
    search_keys(f, &f->sa, "walrus orchid", after, sizeof after);
    assert_string_equal(after, "n1|n3|n2|");
}

static void test_rank_score_pure(void **state)
{
    (void)state;
    store_rank_row rows[3];
    memset(rows, 0, sizeof rows);
    /* word 0 in row 0's key, word 0 in row 1's value, word 1 in row 2 */
    rows[0].id = 1; rows[0].len = 4; rows[0].tf[0][0] = 1;
    rows[1].id = 2; rows[1].len = 4; rows[1].tf[0][1] = 1;
    rows[2].id = 3; rows[2].len = 4; rows[2].tf[1][1] = 1;
    store_rank_score(rows, 3, 2, 10);
    assert_true(rows[0].score > rows[1].score);     /* the key weighs double */
    assert_true(rows[2].score > rows[1].score);     /* the rarer word weighs more */
    assert_true(rows[1].score > 0);
    store_rank_sort(rows, 3);
    assert_int_equal(rows[2].id, 2);
    /* equal scores: newest, then highest id */
    store_rank_row tie[3];
    memset(tie, 0, sizeof tie);
    tie[0].id = 5; tie[0].updated_at = 100;
    tie[1].id = 6; tie[1].updated_at = 100;
    tie[2].id = 7; tie[2].updated_at = 50;
    store_rank_sort(tie, 3);
    assert_int_equal(tie[0].id, 6);
    assert_int_equal(tie[1].id, 5);
    assert_int_equal(tie[2].id, 7);
    /* a collection smaller than the matches never yields a NaN */
    store_rank_row one = {.id = 1, .len = 1, .tf = {{1, 0}}};
    store_rank_score(&one, 1, 1, 0);
    assert_true(one.score > 0);
}

/* ---------------- quotas ---------------- */

static void test_quota_memory(void **state)
{
    fx *f = *state;
    f->quota = (store_quota){.memory_entries = 3, .memory_bytes = 100};
    char v40[41];
    memset(v40, 'x', 40);
    v40[40] = '\0';
    assert_int_equal(store_memory_put(f->st, &f->sa, "k1", v40, NULL), STORE_OK);   /* 42 */
    assert_int_equal(store_memory_put(f->st, &f->sa, "k2", v40, NULL), STORE_OK);   /* 84 */
    /* a third 42-byte entry would make 126 > 100 */
    assert_int_equal(store_memory_put(f->st, &f->sa, "k3", v40, NULL), STORE_QUOTA);
    const store_quota_refusal *r = store_quota_refused();
    assert_string_equal(r->quota, "memory_bytes");
    assert_int_equal(r->limit, 100);
    assert_int_equal(r->used, 84);
    assert_int_equal(r->wanted, 126);
    char why[300];
    store_quota_describe(r, "small", why, sizeof why);
    assert_non_null(strstr(why, "memory_bytes quota of tier \"small\" is 100 bytes"));
    /* one item larger than the whole quota: too large, not "full" */
    char v200[201];
    memset(v200, 'y', 200);
    v200[200] = '\0';
    assert_int_equal(store_memory_put(f->st, &f->sa, "big", v200, NULL), STORE_TOO_LARGE);
    /* replacing a key counts its new size, not both */
    assert_int_equal(store_memory_put(f->st, &f->sa, "k2", "short", NULL), STORE_OK);    /* 49 */
    assert_int_equal(store_memory_put(f->st, &f->sa, "k3", "x", NULL), STORE_OK);        /* 3 entries */
    assert_int_equal(store_memory_put(f->st, &f->sa, "k4", "x", NULL), STORE_QUOTA);
    assert_string_equal(store_quota_refused()->quota, "memory_entries");
    /* replacing within the quota still works at the entry limit */
    assert_int_equal(store_memory_put(f->st, &f->sa, "k3", "y", NULL), STORE_OK);
    /* deleting frees room */
    assert_int_equal(store_memory_delete(f->st, &f->sa, "k1"), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &f->sa, "k4", "x", NULL), STORE_OK);
    /* over the quota after it was lowered: shrinking is still allowed */
    f->quota.memory_bytes = 10;
    assert_int_equal(store_memory_put(f->st, &f->sa, "k2", "s", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &f->sa, "k2", "longer", NULL), STORE_QUOTA);
    /* another tier: no quota from this function */
    put_many(f, &f->sc, "free", "anything", 20);
}

typedef struct racer {
    fx *f;
    int id, ok, refused;
} racer;

static void *race_memory(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 20; i++) {
        char key[32];
        snprintf(key, sizeof key, "r%d-%d", r->id, i);
        store_status s = store_memory_put(r->f->st, &r->f->sa, key, "value", NULL);
        if (s == STORE_OK) r->ok++;
        else if (s == STORE_QUOTA) r->refused++;
    }
    return NULL;
}

static void *race_sessions(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 10; i++) {
        session_rec s;
        store_status st = store_session_create(r->f->st, &r->f->sa, "helper", NULL, &s);
        if (st == STORE_OK) { r->ok++; session_rec_free(&s); }
        else if (st == STORE_QUOTA) r->refused++;
    }
    return NULL;
}

static long long db_count(fx *f, const char *sql, const char *bind)
{
    return test_sqlite_count(f->dir, sql, bind);
}

static void test_quota_parallel(void **state)
{
    fx *f = *state;
    f->quota = (store_quota){.memory_entries = 25, .sessions = 7};
    pthread_t th[8];
    racer r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (racer){f, i, 0, 0};
        pthread_create(&th[i], NULL, race_memory, &r[i]);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].ok;
        refused += r[i].refused;
    }
    assert_int_equal(ok, 25);                /* exactly the quota, never one more */
    assert_int_equal(refused, 8 * 20 - 25);
    assert_int_equal(db_count(f, "SELECT count(*) FROM memory WHERE user_id = ?", f->ua), 25);

    for (int i = 0; i < 8; i++) {
        r[i] = (racer){f, i, 0, 0};
        pthread_create(&th[i], NULL, race_sessions, &r[i]);
    }
    ok = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].ok;
    }
    assert_int_equal(ok, 7);
    assert_int_equal(db_count(f, "SELECT count(*) FROM sessions WHERE user_id = ?", f->ua), 7);
}

static void test_quota_messages(void **state)
{
    fx *f = *state;
    f->quota = (store_quota){.messages_per_session = 3};
    session_rec s;
    assert_int_equal(store_session_create(f->st, &f->sa, "helper", NULL, &s), STORE_OK);
    run_rec run;
    assert_int_equal(store_run_start(f->st, &f->sa, s.id, NULL, "one", RUN_RUNNING, &run), STORE_OK);
    /* the run's own messages are never cut off */
    message_rec m;
    memset(&m, 0, sizeof m);
    memcpy(m.role, "assistant", 10);
    m.content = "answer";
    run.status = RUN_COMPLETED;
    assert_int_equal(store_run_finish(f->st, &f->sa, &run, &m), STORE_OK);
    assert_int_equal(store_run_start(f->st, &f->sa, s.id, NULL, "two", RUN_RUNNING, &run), STORE_OK);
    run.status = RUN_COMPLETED;
    assert_int_equal(store_run_finish(f->st, &f->sa, &run, &m), STORE_OK);
    /* 4 messages now: the next user message is refused, and nothing written */
    assert_int_equal(store_run_start(f->st, &f->sa, s.id, NULL, "three", RUN_RUNNING, &run),
                     STORE_QUOTA);
    assert_string_equal(store_quota_refused()->quota, "messages_per_session");
    session_rec got;
    assert_int_equal(store_session_get(f->st, &f->sa, s.id, &got), STORE_OK);
    assert_int_equal(got.message_count, 4);
    session_rec_free(&got);
    assert_int_equal(db_count(f, "SELECT count(*) FROM runs WHERE session_id = ?", s.id), 2);
    session_rec_free(&s);
}

/* ---------------- erasure ---------------- */

/* Does the file (if any) contain the bytes of needle? */
static bool file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc(len > 0 ? (size_t)len : 1);
    size_t got = fread(buf, 1, len > 0 ? (size_t)len : 0, fp);
    fclose(fp);
    bool found = memmem(buf, got, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

/* A trace row whose blob carries `note` (the store never opens it). */
static trace_rec trace_of(const char *trace, const char *tenant, const char *user, const char *note)
{
    trace_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.trace_id, sizeof r.trace_id, "%s", trace);
    snprintf(r.root_name, sizeof r.root_name, "POST /v1/memory/{key}");
    snprintf(r.tenant_id, sizeof r.tenant_id, "%s", tenant);
    snprintf(r.user_id, sizeof r.user_id, "%s", user);
    r.start_ns = time_now_unix() * 1000000000LL;
    r.end_ns = r.start_ns + 1000;
    r.span_count = 1;
    r.blob = (unsigned char *)note;
    r.blob_len = strlen(note);
    return r;
}

static void test_erasure_scrubs(void **state)
{
    fx *f = *state;
    f->quota = (store_quota){0};
    static const char canary_mem[] = "quixoticcanarymemory7731";
    static const char canary_msg[] = "quixoticcanarymessage7731";
    static const char canary_span[] = "quixoticcanaryspan7731";
    char value[256];
    snprintf(value, sizeof value, "remember %s please", canary_mem);
    assert_int_equal(store_memory_put(f->st, &f->sa, "secret note", value, NULL), STORE_OK);
    put_many(f, &f->sa, "filler", "some words that stay in the index", 30);
    put_many(f, &f->sc, "carol", "carol keeps hers", 10);
    session_rec s;
    assert_int_equal(store_session_create(f->st, &f->sa, "helper", NULL, &s), STORE_OK);
    run_rec run;
    char content[128];
    snprintf(content, sizeof content, "my message %s", canary_msg);
    assert_int_equal(store_run_start(f->st, &f->sa, s.id, NULL, content, RUN_RUNNING, &run), STORE_OK);
    char attrs[128];
    snprintf(attrs, sizeof attrs, "{\"note\":\"%s\"}", canary_span);
    const char *trace = "0af7651916cd43dd8448eb211c80319c";
    trace_rec rows[2] = {
        trace_of(trace, f->ta_id, f->ua, attrs),
        trace_of("1af7651916cd43dd8448eb211c80319c", f->ta_id, f->uc, "{}"),
    };
    assert_int_equal(store_traces_insert(f->st, rows, 2, 0, 0), STORE_OK);
    trace_rec *got;
    size_t n;
    assert_int_equal(store_trace_get(f->st, &f->ta, trace, &got, &n), STORE_OK);
    store_free_traces(got, n);

    char db[128], wal[128];
    snprintf(db, sizeof db, "%s/brigade.db", f->dir);
    snprintf(wal, sizeof wal, "%s/brigade.db-wal", f->dir);
    /* the canaries are on disk before (so the check below can fail) */
    assert_true(file_contains(db, canary_mem) || file_contains(wal, canary_mem));
    assert_true(file_contains(db, canary_span) || file_contains(wal, canary_span));

    assert_int_equal(store_user_delete(f->st, &f->ta, f->ua), STORE_OK);
    assert_int_equal(store_trace_get(f->st, &f->ta, trace, &got, &n), STORE_NOT_FOUND);
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces WHERE trace_id = ?", trace), 0);
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces WHERE user_id = ?", f->uc), 1);
    /* a row of the erased user that reaches the store late is dropped */
    trace_rec late = trace_of(trace, f->ta_id, f->ua, attrs);
    assert_int_equal(store_traces_insert(f->st, &late, 1, 0, 0), STORE_OK);
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces WHERE trace_id = ?", trace), 0);

    /* nothing of the erased user in the file, nor in the WAL */
    const char *canaries[] = {canary_mem, canary_msg, canary_span};
    for (size_t i = 0; i < 3; i++) {
        assert_false(file_contains(db, canaries[i]));
        assert_false(file_contains(wal, canaries[i]));
    }
    struct stat sb;
    assert_true(stat(wal, &sb) != 0 || sb.st_size == 0);
    /* what stays is whole */
    memory_rec *arr;
    assert_int_equal(store_memory_search(f->st, &f->sc, "carol", 50, &arr, &n), STORE_OK);
    assert_int_equal(n, 10);
    store_free_memories(arr, n);
    session_rec_free(&s);
}

/* ---------------- file modes ---------------- */

static void test_files_private(void **state)
{
    (void)state;
    char dir[64];
    assert_non_null(test_tmpdir(dir, sizeof dir, "brigade-modes"));
    mode_t old = umask(022);
    char path[128];
    /* an existing database readable by others, and a stray -wal, are narrowed */
    snprintf(path, sizeof path, "%s/brigade.db-wal", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    chmod(path, 0644);
    char err[256];
    store *st = store_open(dir, err, sizeof err);
    assert_non_null(st);
    scope admin;
    scope_mint_server_admin(&admin);
    char tid[ID_MAX];
    assert_int_equal(test_store_tenant(st, &admin, "t", tid), STORE_OK);   /* a write: -wal, -shm */
    static const char *const files[] = {"brigade.db", "brigade.db-wal", "brigade.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
    }
    store_close(st);
    snprintf(path, sizeof path, "%s/brigade.db", dir);
    chmod(path, 0644);
    st = store_open(dir, err, sizeof err);
    assert_non_null(st);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    umask(old);
    test_store_close(st, dir);
}


/* ---------------- stored Responses ---------------- */

/* A response id of the store's form, numbered. */
static void resp_id(char out[ID_MAX], int n) { snprintf(out, ID_MAX, "resp_%024x", n); }

static void test_responses_scoped(void **state)
{
    fx *f = *state;
    char id[ID_MAX], other[ID_MAX];
    resp_id(id, 1);
    resp_id(other, 2);
    assert_int_equal(store_response_put(f->st, &f->sa, id, NULL, "m", "[{\"role\":\"user\",\"content\":\"secret\"}]",
                                        "{\"id\":\"x\"}"), STORE_OK);
    char *text = NULL;
    assert_int_equal(store_response_get(f->st, &f->sa, id, &text), STORE_OK);
    assert_string_equal(text, "{\"id\":\"x\"}");
    free(text);
    /* another user of the same tenant, a user of another tenant: not found */
    const scope *others[] = {&f->sc, &f->sb};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(store_response_get(f->st, others[i], id, &text), STORE_NOT_FOUND);
        assert_null(text);
        assert_int_equal(store_response_chain(f->st, others[i], id, &text), STORE_NOT_FOUND);
        assert_null(text);
        assert_int_equal(store_response_delete(f->st, others[i], id), STORE_NOT_FOUND);
    }
    /* an admin scope has no responses */
    assert_int_equal(store_response_get(f->st, &f->ta, id, &text), STORE_FORBIDDEN);
    /* a row linked to another user's response: the walk stops at the scope,
     * so the chain is broken, not joined to the other user's items */
    assert_int_equal(store_response_put(f->st, &f->sc, other, id, "m", "[]", "{}"), STORE_OK);
    assert_int_equal(store_response_chain(f->st, &f->sc, other, &text), STORE_NOT_FOUND);
    assert_null(text);
    /* malformed ids never reach SQL */
    assert_int_equal(store_response_get(f->st, &f->sa, "resp_' OR 1=1", &text), STORE_NOT_FOUND);
    assert_int_equal(store_response_put(f->st, &f->sa, "sess_1", NULL, "m", "[]", "{}"), STORE_INVALID);
    /* the owner's row is still there */
    assert_int_equal(store_response_get(f->st, &f->sa, id, &text), STORE_OK);
    free(text);
}

static void test_responses_chain(void **state)
{
    fx *f = *state;
    char ids[STORE_RESPONSE_CHAIN_MAX + 1][ID_MAX];
    for (int i = 0; i < 3; i++) {
        resp_id(ids[i], 100 + i);
        char items[64];
        snprintf(items, sizeof items, "[{\"n\":%d},{\"m\":%d}]", i, i);
        assert_int_equal(store_response_put(f->st, &f->sc, ids[i], i ? ids[i - 1] : NULL, "m", items, "{}"),
                         STORE_OK);
    }
    char *text = NULL;
    assert_int_equal(store_response_chain(f->st, &f->sc, ids[2], &text), STORE_OK);
    assert_string_equal(text, "[{\"n\":0},{\"m\":0},{\"n\":1},{\"m\":1},{\"n\":2},{\"m\":2}]");
    free(text);
    assert_int_equal(store_response_chain(f->st, &f->sc, ids[0], &text), STORE_OK);
    assert_string_equal(text, "[{\"n\":0},{\"m\":0}]");
    free(text);
    /* an earlier response deleted: the conversation cannot be continued */
    assert_int_equal(store_response_delete(f->st, &f->sc, ids[1]), STORE_OK);
    assert_int_equal(store_response_chain(f->st, &f->sc, ids[2], &text), STORE_NOT_FOUND);
    assert_null(text);
    /* a chain of the maximum length cannot be continued further */
    for (int i = 0; i < STORE_RESPONSE_CHAIN_MAX; i++) {
        resp_id(ids[i], 200 + i);
        assert_int_equal(store_response_put(f->st, &f->sc, ids[i], i ? ids[i - 1] : NULL, "m", "[]", "{}"),
                         STORE_OK);
    }
    assert_int_equal(store_response_chain(f->st, &f->sc, ids[STORE_RESPONSE_CHAIN_MAX - 2], &text), STORE_OK);
    free(text);
    assert_int_equal(store_response_chain(f->st, &f->sc, ids[STORE_RESPONSE_CHAIN_MAX - 1], &text),
                     STORE_TOO_LARGE);
    assert_null(text);
}

static void test_responses_quota_and_erasure(void **state)
{
    fx *f = *state;
    f->quota = (store_quota){.memory_bytes = 100};
    char id[ID_MAX];
    /* 40 bytes of items + 2 of object = 42 each; memory counts too */
    char items[41];
    memset(items, ' ', 40);
    items[0] = '[';
    items[39] = ']';
    items[40] = '\0';
    resp_id(id, 1);
    assert_int_equal(store_response_put(f->st, &f->sa, id, NULL, "m", items, "{}"), STORE_OK);
    assert_int_equal(store_response_room(f->st, &f->sa, 42), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &f->sa, "k", "0123456789012345678901234567890123456789", NULL),
                     STORE_OK);   /* 41: 83 in use */
    resp_id(id, 2);
    assert_int_equal(store_response_put(f->st, &f->sa, id, NULL, "m", items, "{}"), STORE_QUOTA);
    assert_string_equal(store_quota_refused()->quota, "memory_bytes");
    assert_int_equal(store_quota_refused()->used, 83);
    assert_int_equal(store_response_room(f->st, &f->sa, 42), STORE_QUOTA);
    assert_int_equal(store_response_room(f->st, &f->sa, 500), STORE_TOO_LARGE);
    /* a turn over the size bound is refused whatever the quota */
    char *huge = malloc(STORE_RESPONSE_MAX_BYTES + 8);
    memset(huge, ' ', STORE_RESPONSE_MAX_BYTES + 6);
    huge[0] = '[';
    huge[STORE_RESPONSE_MAX_BYTES + 5] = ']';
    huge[STORE_RESPONSE_MAX_BYTES + 6] = '\0';
    assert_int_equal(store_response_put(f->st, &f->sc, id, NULL, "m", huge, "{}"), STORE_INVALID);
    free(huge);
    /* erasure takes the user's responses */
    resp_id(id, 1);
    assert_int_equal(store_user_delete(f->st, &f->ta, f->ua), STORE_OK);
    char *text = NULL;
    assert_int_equal(store_response_get(f->st, &f->sa, id, &text), STORE_NOT_FOUND);
    assert_null(text);
    /* and no new row can be written for the erased user */
    resp_id(id, 3);
    assert_int_not_equal(store_response_put(f->st, &f->sa, id, NULL, "m", "[]", "{}"), STORE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rank_ignores_other_users, setup, teardown),
        cmocka_unit_test(test_rank_score_pure),
        cmocka_unit_test_setup_teardown(test_quota_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erasure_scrubs, setup, teardown),
        cmocka_unit_test(test_files_private),
        cmocka_unit_test_setup_teardown(test_responses_scoped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responses_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_responses_quota_and_erasure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
