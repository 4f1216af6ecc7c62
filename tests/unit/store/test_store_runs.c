/* test_store_runs.c — the store's per-user half: sessions, transcripts, runs
 * and long-term memory (FTS5). Scope isolation between users of one tenant,
 * seq order and atomicity of run writes, recovery after a restart, hostile
 * search queries, parallel users, and erasure of a user. Each test works in
 * a fresh data directory under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity/scope_mint.h"
#include "test_pg.h"
#include "test_util.h"
#include "store/store.h"
#include "store/store_internal.h"   /* store_memory_fts_query */
#include "util/ids.h"
#include "util/timeutil.h"

typedef struct fx {
    char dir[64];
    store *st;
    scope admin, ta;
    char ta_id[ID_MAX];
    char u1[ID_MAX], u2[ID_MAX];
    scope s1, s2;          /* two users of the same tenant */
} fx;

/* BRIGADE_TEST_STORE=postgres (the meson test test_store_runs_pg): the
 * same tests on a fresh schema of a PostgreSQL server (test_pg.h). */
static int on_pg;

static store *reopen_store(fx *f)
{
    if (on_pg) return test_pg_open(4);
    char err[256];
    return store_open(f->dir, err, sizeof err);
}

static void mkuser(fx *f, const char *ext, char id_out[ID_MAX])
{
    assert_int_equal(test_store_user(f->st, &f->ta, ext, id_out), STORE_OK);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (on_pg) {
        test_pg_fresh();
        f->st = test_pg_open(4);
    } else {
        f->st = test_store_open(f->dir, sizeof f->dir, "brigade-runs");
    }
    assert_non_null(f->st);
    scope_mint_server_admin(&f->admin);
    assert_int_equal(test_store_tenant(f->st, &f->admin, "tenant-a", f->ta_id), STORE_OK);
    scope_mint_tenant_admin(&f->ta, f->ta_id, "key_a");
    mkuser(f, "one", f->u1);
    mkuser(f, "two", f->u2);
    scope_mint_user(&f->s1, f->ta_id, f->u1, "key_1", "default");
    scope_mint_user(&f->s2, f->ta_id, f->u2, "key_2", "default");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (on_pg) store_close(f->st); else test_store_close(f->st, f->dir);
    free(f);
    return 0;
}

static message_rec msg(const char *role, const char *content, const char *tool_calls, const char *tcid)
{
    message_rec m;
    memset(&m, 0, sizeof m);
    snprintf(m.role, sizeof m.role, "%s", role);
    m.content = (char *)content;
    m.tool_calls_json = (char *)tool_calls;
    if (tcid) snprintf(m.tool_call_id, sizeof m.tool_call_id, "%s", tcid);
    return m;
}

/* count rows of a table (or any one-integer query) straight from the file */
static long long db_count(fx *f, const char *sql, const char *bind)
{
    if (on_pg) {
        /* the same question in PostgreSQL's words: $1 for ?, and the
         * memory search index is the memory table's tsvector column */
        char q[512];
        const char *fts = strstr(sql, "FROM memory_fts WHERE memory_fts MATCH ?");
        if (fts) snprintf(q, sizeof q, "SELECT count(*) FROM memory WHERE fts @@ plainto_tsquery('brigade_memory', $1)");
        else {
            size_t j = 0;
            for (const char *c = sql; *c && j + 3 < sizeof q; c++) {
                if (*c == '?') { q[j++] = '$'; q[j++] = '1'; } else q[j++] = *c;
            }
            q[j] = '\0';
        }
        return (long long)test_pg_count1(q, bind);
    }
    return test_sqlite_count(f->dir, sql, bind);
}

/* ---- helpers and schema ---- */

static void test_status_names_and_schema(void **state)
{
    fx *f = *state;
    assert_int_equal(store_schema_version(f->st), store_migrations_latest());
    assert_string_equal(run_status_name(RUN_QUEUED), "queued");
    assert_string_equal(run_status_name(RUN_RUNNING), "running");
    assert_string_equal(run_status_name(RUN_WAITING_APPROVAL), "waiting_approval");
    assert_string_equal(run_status_name(RUN_COMPLETED), "completed");
    assert_string_equal(run_status_name(RUN_FAILED), "failed");
    assert_string_equal(run_status_name(RUN_CANCELLED), "cancelled");
    assert_string_equal(run_status_name(RUN_INTERRUPTED), "interrupted");
    assert_string_equal(run_status_name((run_status)99), "unknown");
    assert_false(run_status_terminal(RUN_QUEUED));
    assert_false(run_status_terminal(RUN_RUNNING));
    assert_false(run_status_terminal(RUN_WAITING_APPROVAL));
    assert_true(run_status_terminal(RUN_COMPLETED));
    assert_true(run_status_terminal(RUN_FAILED));
    assert_true(run_status_terminal(RUN_CANCELLED));
    assert_true(run_status_terminal(RUN_INTERRUPTED));
    /* freeing zeroed and NULL records is harmless */
    session_rec s = {0};
    session_rec_free(&s);
    message_rec m = {0};
    message_rec_free(&m);
    memory_rec r = {0};
    memory_rec_free(&r);
    store_free_sessions(NULL, 0);
    store_free_messages(NULL, 0);
    store_free_memories(NULL, 0);
}

/* ---- sessions ---- */

static void test_sessions_crud_paging(void **state)
{
    fx *f = *state;
    char ids[7][ID_MAX];
    for (int i = 0; i < 7; i++) {
        session_rec s;
        assert_int_equal(store_session_create(f->st, &f->s1, "helper", i == 3 ? "{\"k\":3}" : NULL, &s), STORE_OK);
        assert_memory_equal(s.id, "ses_", 4);
        assert_string_equal(s.agent, "helper");
        assert_int_equal(s.message_count, 0);
        memcpy(ids[i], s.id, ID_MAX);
        session_rec_free(&s);
    }
    /* newest first, three at a time, by cursor */
    char before[ID_MAX] = "";
    int seen = 0;
    for (int page = 0; page < 4; page++) {
        session_rec *arr; size_t n;
        assert_int_equal(store_session_list(f->st, &f->s1, before[0] ? before : NULL, 3, &arr, &n), STORE_OK);
        assert_int_equal(n, page < 2 ? 3 : page == 2 ? 1 : 0);
        for (size_t i = 0; i < n; i++) assert_string_equal(arr[i].id, ids[6 - seen - (int)i]);
        if (n) memcpy(before, arr[n - 1].id, ID_MAX);
        seen += (int)n;
        store_free_sessions(arr, n);
    }
    assert_int_equal(seen, 7);

    session_rec s;
    assert_int_equal(store_session_get(f->st, &f->s1, ids[3], &s), STORE_OK);
    assert_non_null(s.metadata_json);
    assert_string_equal(s.metadata_json, "{\"k\":3}");
    assert_true(s.created_at > 0);
    session_rec_free(&s);
    assert_int_equal(store_session_get(f->st, &f->s1, ids[2], &s), STORE_OK);
    assert_null(s.metadata_json);

    assert_int_equal(store_session_delete(f->st, &f->s1, ids[3]), STORE_OK);
    assert_int_equal(store_session_get(f->st, &f->s1, ids[3], &s), STORE_NOT_FOUND);
    assert_int_equal(store_session_delete(f->st, &f->s1, ids[3]), STORE_NOT_FOUND);
    session_rec *arr; size_t n;
    assert_int_equal(store_session_list(f->st, &f->s1, NULL, 0, &arr, &n), STORE_OK);
    assert_int_equal(n, 6);
    store_free_sessions(arr, n);
    /* a deleted or unknown cursor is not an empty page */
    assert_int_equal(store_session_list(f->st, &f->s1, ids[3], 10, &arr, &n), STORE_NOT_FOUND);
    assert_int_equal(n, 0);

    /* bad arguments and roles */
    char longagent[STORE_AGENT_MAX + 8];
    memset(longagent, 'a', sizeof longagent - 1);
    longagent[sizeof longagent - 1] = '\0';
    assert_int_equal(store_session_create(f->st, &f->s1, "", NULL, &s), STORE_INVALID);
    assert_int_equal(store_session_create(f->st, &f->s1, NULL, NULL, &s), STORE_INVALID);
    assert_int_equal(store_session_create(f->st, &f->s1, longagent, NULL, &s), STORE_INVALID);
    assert_int_equal(store_session_create(f->st, &f->s1, "bad\nagent", NULL, &s), STORE_INVALID);
    assert_int_equal(store_session_create(f->st, &f->s1, "ok", "\xff\xfe", &s), STORE_INVALID);
    assert_int_equal(store_session_create(f->st, &f->ta, "helper", NULL, &s), STORE_FORBIDDEN);
    assert_int_equal(store_session_list(f->st, &f->ta, NULL, 10, &arr, &n), STORE_FORBIDDEN);
    assert_int_equal(store_session_get(f->st, &f->admin, ids[0], &s), STORE_FORBIDDEN);
    scope forged = f->s1;
    forged.minted = 0;
    assert_int_equal(store_session_get(f->st, &forged, ids[0], &s), STORE_NOT_FOUND);
    assert_int_equal(store_session_create(f->st, &forged, "helper", NULL, &s), STORE_NOT_FOUND);
}

/* ---- isolation between users of one tenant ---- */

static void test_other_user_not_found(void **state)
{
    fx *f = *state;
    session_rec s;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s), STORE_OK);
    run_rec r;
    assert_int_equal(store_run_start(f->st, &f->s1, s.id, NULL, "hello", RUN_RUNNING, &r), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &f->s1, "colour", "blue", NULL), STORE_OK);

    /* user two sees none of it, under any function */
    session_rec s2;
    assert_int_equal(store_session_get(f->st, &f->s2, s.id, &s2), STORE_NOT_FOUND);
    assert_int_equal(store_session_delete(f->st, &f->s2, s.id), STORE_NOT_FOUND);
    session_rec *sarr; size_t n;
    assert_int_equal(store_session_list(f->st, &f->s2, NULL, 10, &sarr, &n), STORE_OK);
    assert_int_equal(n, 0);
    free(sarr);
    assert_int_equal(store_session_list(f->st, &f->s2, s.id, 10, &sarr, &n), STORE_NOT_FOUND);
    message_rec *marr;
    assert_int_equal(store_message_list(f->st, &f->s2, s.id, 0, 10, &marr, &n), STORE_NOT_FOUND);
    assert_int_equal(store_message_tail(f->st, &f->s2, s.id, 10, &marr, &n), STORE_NOT_FOUND);
    run_rec r2;
    assert_int_equal(store_run_start(f->st, &f->s2, s.id, NULL, "planted", RUN_QUEUED, &r2), STORE_NOT_FOUND);
    assert_int_equal(store_run_get(f->st, &f->s2, r.id, &r2), STORE_NOT_FOUND);
    message_rec planted = msg("assistant", "planted", NULL, NULL);
    assert_int_equal(store_run_append(f->st, &f->s2, &r, &planted, 1), STORE_NOT_FOUND);
    run_rec fin = r;
    fin.status = RUN_CANCELLED;
    assert_int_equal(store_run_finish(f->st, &f->s2, &fin, &planted), STORE_NOT_FOUND);
    run_rec st = r;
    st.status = RUN_WAITING_APPROVAL;
    assert_int_equal(store_run_set_status(f->st, &f->s2, &st), STORE_NOT_FOUND);
    memory_rec m;
    assert_int_equal(store_memory_get(f->st, &f->s2, "colour", &m), STORE_NOT_FOUND);
    assert_int_equal(store_memory_delete(f->st, &f->s2, "colour"), STORE_NOT_FOUND);
    /* the same key for user two is a different entry */
    assert_int_equal(store_memory_put(f->st, &f->s2, "colour", "red", NULL), STORE_OK);
    memory_rec *mem;
    assert_int_equal(store_memory_search(f->st, &f->s2, "blue", 10, &mem, &n), STORE_OK);
    assert_int_equal(n, 0);
    free(mem);

    /* a tenant admin is not a user: forbidden, not a back door */
    assert_int_equal(store_run_get(f->st, &f->ta, r.id, &r2), STORE_FORBIDDEN);
    assert_int_equal(store_message_list(f->st, &f->ta, s.id, 0, 10, &marr, &n), STORE_FORBIDDEN);
    assert_int_equal(store_memory_get(f->st, &f->ta, "colour", &m), STORE_FORBIDDEN);
    assert_int_equal(store_memory_search(f->st, &f->ta, "", 10, &mem, &n), STORE_FORBIDDEN);

    /* user one's world is untouched */
    assert_int_equal(store_run_get(f->st, &f->s1, r.id, &r2), STORE_OK);
    assert_int_equal(r2.status, RUN_RUNNING);
    assert_int_equal(store_message_list(f->st, &f->s1, s.id, 0, 10, &marr, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(marr[0].content, "hello");
    store_free_messages(marr, n);
    assert_int_equal(store_memory_get(f->st, &f->s1, "colour", &m), STORE_OK);
    assert_string_equal(m.value, "blue");
    memory_rec_free(&m);
    assert_int_equal(store_session_get(f->st, &f->s1, s.id, &s2), STORE_OK);
    assert_int_equal(s2.message_count, 1);
    session_rec_free(&s2);
    session_rec_free(&s);
}

/* ---- runs ---- */

static void test_run_sequence(void **state)
{
    fx *f = *state;
    session_rec s;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s), STORE_OK);
    run_rec r;
    assert_int_equal(store_run_start(f->st, &f->s1, s.id, NULL, "what is 2+2?", RUN_RUNNING, &r), STORE_OK);
    assert_memory_equal(r.id, "run_", 4);
    assert_string_equal(r.session_id, s.id);
    assert_string_equal(r.agent, "helper");     /* the session's agent */
    assert_int_equal(r.user_seq, 1);
    assert_true(r.started_at > 0);

    message_rec step[3] = {
        msg("assistant", NULL, "[{\"id\":\"c1\"},{\"id\":\"c2\"}]", NULL),
        msg("tool", "4", NULL, "c1"),
        msg("tool", "four", NULL, "c2"),
    };
    r.input_tokens = 10; r.output_tokens = 5; r.cost_nusd = 700; r.steps = 1; r.tool_calls = 2;
    assert_int_equal(store_run_append(f->st, &f->s1, &r, step, 3), STORE_OK);
    message_rec fin = msg("assistant", "It is 4.", NULL, NULL);
    r.status = RUN_COMPLETED;
    r.input_tokens = 30; r.output_tokens = 9; r.cost_nusd = 1500; r.steps = 2;
    assert_int_equal(store_run_finish(f->st, &f->s1, &r, &fin), STORE_OK);
    assert_int_equal(r.final_seq, 5);
    assert_true(r.finished_at > 0);

    message_rec *m; size_t n;
    assert_int_equal(store_message_list(f->st, &f->s1, s.id, 0, 100, &m, &n), STORE_OK);
    assert_int_equal(n, 5);
    const char *roles[] = {"user", "assistant", "tool", "tool", "assistant"};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(m[i].seq, (int64_t)i + 1);
        assert_string_equal(m[i].role, roles[i]);
        assert_string_equal(m[i].run_id, r.id);
        assert_string_equal(m[i].session_id, s.id);
    }
    assert_string_equal(m[0].content, "what is 2+2?");
    assert_null(m[1].content);
    assert_string_equal(m[1].tool_calls_json, "[{\"id\":\"c1\"},{\"id\":\"c2\"}]");
    assert_string_equal(m[2].tool_call_id, "c1");
    assert_string_equal(m[3].content, "four");
    assert_string_equal(m[4].content, "It is 4.");
    store_free_messages(m, n);
    /* paging and tail */
    assert_int_equal(store_message_list(f->st, &f->s1, s.id, 2, 2, &m, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(m[0].seq, 3);
    assert_int_equal(m[1].seq, 4);
    store_free_messages(m, n);
    assert_int_equal(store_message_tail(f->st, &f->s1, s.id, 2, &m, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(m[0].seq, 4);
    assert_int_equal(m[1].seq, 5);
    store_free_messages(m, n);

    run_rec g;
    assert_int_equal(store_run_get(f->st, &f->s1, r.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_COMPLETED);
    assert_int_equal(g.user_seq, 1);
    assert_int_equal(g.final_seq, 5);
    assert_int_equal(g.input_tokens, 30);
    assert_int_equal(g.output_tokens, 9);
    assert_int_equal(g.cost_nusd, 1500);
    assert_int_equal(g.steps, 2);
    assert_int_equal(g.tool_calls, 2);
    assert_true(g.finished_at >= g.started_at);

    /* a finished run is final */
    assert_int_equal(store_run_append(f->st, &f->s1, &r, &fin, 1), STORE_CONFLICT);
    r.status = RUN_CANCELLED;
    assert_int_equal(store_run_finish(f->st, &f->s1, &r, NULL), STORE_CONFLICT);
    assert_int_equal(store_run_get(f->st, &f->s1, r.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_COMPLETED);
    assert_int_equal(r.final_seq, 5);   /* the failed finish did not touch the record */

    /* second run: queued → running → failed without a final message */
    run_rec r2;
    assert_int_equal(store_run_start(f->st, &f->s1, s.id, "other", "again", RUN_QUEUED, &r2), STORE_OK);
    assert_int_equal(r2.user_seq, 6);
    assert_int_equal(r2.started_at, 0);
    assert_string_equal(r2.agent, "other");
    r2.status = RUN_RUNNING;
    assert_int_equal(store_run_set_status(f->st, &f->s1, &r2), STORE_OK);
    assert_int_equal(store_run_get(f->st, &f->s1, r2.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_RUNNING);
    assert_true(g.started_at > 0);
    r2.status = RUN_COMPLETED;
    assert_int_equal(store_run_set_status(f->st, &f->s1, &r2), STORE_INVALID);   /* finish does that */
    r2.status = RUN_FAILED;
    snprintf(r2.error_code, sizeof r2.error_code, "upstream_error");
    snprintf(r2.error_message, sizeof r2.error_message, "the provider said no");
    assert_int_equal(store_run_finish(f->st, &f->s1, &r2, NULL), STORE_OK);
    assert_int_equal(r2.final_seq, 0);
    assert_int_equal(store_run_get(f->st, &f->s1, r2.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_FAILED);
    assert_string_equal(g.error_code, "upstream_error");
    assert_string_equal(g.error_message, "the provider said no");
    r2.status = RUN_RUNNING;
    assert_int_equal(store_run_set_status(f->st, &f->s1, &r2), STORE_CONFLICT);

    session_rec s2;
    assert_int_equal(store_session_get(f->st, &f->s1, s.id, &s2), STORE_OK);
    assert_int_equal(s2.message_count, 6);
    session_rec_free(&s2);

    /* bad arguments */
    assert_int_equal(store_run_start(f->st, &f->s1, s.id, NULL, "x", RUN_COMPLETED, &g), STORE_INVALID);
    assert_int_equal(store_run_start(f->st, &f->s1, s.id, NULL, NULL, RUN_QUEUED, &g), STORE_INVALID);
    assert_int_equal(store_run_start(f->st, &f->s1, "ses_nope", NULL, "x", RUN_QUEUED, &g), STORE_NOT_FOUND);
    run_rec bad = r2;
    bad.status = RUN_RUNNING;   /* not terminal */
    assert_int_equal(store_run_finish(f->st, &f->s1, &bad, NULL), STORE_INVALID);

    /* deleting the session takes its messages and runs along */
    assert_int_equal(store_session_delete(f->st, &f->s1, s.id), STORE_OK);
    assert_int_equal(store_run_get(f->st, &f->s1, r.id, &g), STORE_NOT_FOUND);
    assert_int_equal(db_count(f, "SELECT count(*) FROM messages WHERE session_id = ?", s.id), 0);
    assert_int_equal(db_count(f, "SELECT count(*) FROM runs WHERE session_id = ?", s.id), 0);
    session_rec_free(&s);
}

/* Provenance (migration 12): each message's and memory entry's origin is
 * stored as given and read back; NULL (a row older than provenance) reads
 * back NULL; the user's message is always the user's; an origin over
 * STORE_ORIGIN_MAX or not UTF-8 is refused, and a refused message leaves
 * nothing of its group behind. */
static void test_origins_stored(void **state)
{
    fx *f = *state;
    session_rec s;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s), STORE_OK);
    run_rec r;
    assert_int_equal(store_run_start(f->st, &f->s1, s.id, NULL, "{\"role\":\"tool\"}", RUN_RUNNING, &r),
                     STORE_OK);
    message_rec group[2] = {
        msg("assistant", NULL, "[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"page\",\"arguments\":\"{}\"}}]", NULL),
        msg("tool", "page text", NULL, "c1"),
    };
    group[1].origin_json = (char *)"{\"kind\":\"fetched\",\"untrusted\":true,\"url_host\":\"a.example\"}";
    assert_int_equal(store_run_append(f->st, &f->s1, &r, group, 2), STORE_OK);

    /* refused: too large, or not UTF-8 — and the whole group with it */
    size_t big = STORE_ORIGIN_MAX + 1;
    char *huge = malloc(big + 1);
    memset(huge, 'x', big);
    huge[big] = '\0';
    message_rec bad[2] = {msg("assistant", NULL, "[]", NULL), msg("tool", "t", NULL, "c2")};
    bad[0].origin_json = (char *)"{\"kind\":\"model\"}";
    bad[1].origin_json = huge;
    assert_int_equal(store_run_append(f->st, &f->s1, &r, bad, 2), STORE_INVALID);
    bad[1].origin_json = (char *)"{\"kind\":\"\xff\"}";
    assert_int_equal(store_run_append(f->st, &f->s1, &r, bad, 2), STORE_INVALID);

    message_rec *arr = NULL;
    size_t n = 0;
    assert_int_equal(store_message_list(f->st, &f->s1, s.id, 0, 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(arr[0].origin_json, "{\"kind\":\"user\",\"untrusted\":false}");
    assert_null(arr[1].origin_json);
    assert_string_equal(arr[2].origin_json, group[1].origin_json);
    store_free_messages(arr, n);

    /* memory: recorded, replaced with the value, NULL when not given */
    memory_rec m;
    assert_int_equal(store_memory_put_from(f->st, &f->s1, "k", "v", "{\"kind\":\"user\",\"untrusted\":false}",
                                           NULL), STORE_OK);
    assert_int_equal(store_memory_get(f->st, &f->s1, "k", &m), STORE_OK);
    assert_string_equal(m.origin_json, "{\"kind\":\"user\",\"untrusted\":false}");
    memory_rec_free(&m);
    assert_int_equal(store_memory_put_from(f->st, &f->s1, "k", "w", "{\"kind\":\"run\",\"untrusted\":true}",
                                           &m), STORE_OK);
    assert_string_equal(m.origin_json, "{\"kind\":\"run\",\"untrusted\":true}");
    memory_rec_free(&m);
    memory_rec *found = NULL;
    assert_int_equal(store_memory_search(f->st, &f->s1, "w", 10, &found, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(found[0].origin_json, "{\"kind\":\"run\",\"untrusted\":true}");
    store_free_memories(found, n);
    assert_int_equal(store_memory_put(f->st, &f->s1, "k", "x", NULL), STORE_OK);   /* not recorded */
    assert_int_equal(store_memory_get(f->st, &f->s1, "k", &m), STORE_OK);
    assert_null(m.origin_json);
    memory_rec_free(&m);
    assert_int_equal(store_memory_put_from(f->st, &f->s1, "k", "y", huge, NULL), STORE_INVALID);
    assert_int_equal(store_memory_put_from(f->st, &f->s1, "k", "y", "", NULL), STORE_INVALID);
    assert_int_equal(store_memory_get(f->st, &f->s1, "k", &m), STORE_OK);
    assert_string_equal(m.value, "x");
    memory_rec_free(&m);
    free(huge);
}

/* Migration 23 turned messages into a WITHOUT ROWID table in (session,
 * seq) order: a store whose messages are in the old rowid table (runs of
 * two sessions interleaved) keeps every message, in order, with its
 * origin, and the table is clustered afterwards. */
static void test_messages_clustered_by_migration(void **state)
{
    if (on_pg) skip();   /* SQLite's layout; PostgreSQL's table is unchanged */
    fx *f = *state;
    session_rec sa, sb;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &sa), STORE_OK);
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &sb), STORE_OK);
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 2; k++) {
            char ask[32], answer[32];
            snprintf(ask, sizeof ask, "ask %d%c", i, k ? 'b' : 'a');
            snprintf(answer, sizeof answer, "answer %d%c", i, k ? 'b' : 'a');
            run_rec r;
            assert_int_equal(store_run_start(f->st, &f->s1, k ? sb.id : sa.id, NULL, ask, RUN_RUNNING, &r),
                             STORE_OK);
            message_rec fin = msg("assistant", answer, NULL, NULL);
            r.status = RUN_COMPLETED;
            assert_int_equal(store_run_finish(f->st, &f->s1, &r, &fin), STORE_OK);
        }
    }
    message_rec *before; size_t nbefore;
    assert_int_equal(store_message_list(f->st, &f->s1, sa.id, 0, 100, &before, &nbefore), STORE_OK);
    assert_int_equal(nbefore, 6);
    store_close(f->st);

    /* the file as version 22 left it: messages a rowid table, and no
     * trace packs (migration 26) */
    char path[128];
    snprintf(path, sizeof path, "%s/brigade.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *emsg = NULL;
    int rc = sqlite3_exec(db,
        "BEGIN;"
        "CREATE TABLE messages_rowid (session_id TEXT NOT NULL, seq INTEGER NOT NULL,"
        " run_id TEXT NOT NULL DEFAULT '', tenant_id TEXT NOT NULL, user_id TEXT NOT NULL,"
        " role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')), content TEXT, tool_calls TEXT,"
        " tool_call_id TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, origin TEXT,"
        " PRIMARY KEY (session_id, seq));"
        "INSERT INTO messages_rowid SELECT session_id, seq, run_id, tenant_id, user_id, role, content,"
        " tool_calls, tool_call_id, created_at, origin FROM messages ORDER BY created_at, seq;"
        "DROP TABLE messages;"
        "ALTER TABLE messages_rowid RENAME TO messages;"
        "DROP INDEX traces_window;"
        "ALTER TABLE traces DROP COLUMN id_window;"
        "PRAGMA user_version = 22;"
        "COMMIT;", NULL, NULL, &emsg);
    if (rc != SQLITE_OK) fail_msg("%s", emsg);
    sqlite3_close(db);
    assert_int_equal(db_count(f, "SELECT count(*) FROM sqlite_master WHERE name = 'messages'"
                                 " AND sql LIKE '%WITHOUT ROWID%'", NULL), 0);

    f->st = reopen_store(f);
    assert_non_null(f->st);
    assert_int_equal(store_schema_version(f->st), store_migrations_latest());
    assert_int_equal(db_count(f, "SELECT count(*) FROM sqlite_master WHERE name = 'messages'"
                                 " AND sql LIKE '%WITHOUT ROWID%'", NULL), 1);
    message_rec *after; size_t nafter;
    assert_int_equal(store_message_list(f->st, &f->s1, sa.id, 0, 100, &after, &nafter), STORE_OK);
    assert_int_equal(nafter, nbefore);
    for (size_t i = 0; i < nafter; i++) {
        assert_int_equal(after[i].seq, before[i].seq);
        assert_string_equal(after[i].role, before[i].role);
        assert_string_equal(after[i].content, before[i].content);
        assert_string_equal(after[i].run_id, before[i].run_id);
        assert_int_equal(after[i].created_at, before[i].created_at);
        if (before[i].origin_json) assert_string_equal(after[i].origin_json, before[i].origin_json);
        else assert_null(after[i].origin_json);
    }
    store_free_messages(before, nbefore);
    store_free_messages(after, nafter);
    /* the other session's tail, and a run that goes on writing after it */
    assert_int_equal(store_message_tail(f->st, &f->s1, sb.id, 2, &after, &nafter), STORE_OK);
    assert_int_equal(nafter, 2);
    assert_string_equal(after[0].content, "ask 2b");
    assert_string_equal(after[1].content, "answer 2b");
    store_free_messages(after, nafter);
    run_rec r;
    assert_int_equal(store_run_start(f->st, &f->s1, sb.id, NULL, "ask 3b", RUN_RUNNING, &r), STORE_OK);
    assert_int_equal(r.user_seq, 7);
    /* erasure still finds them */
    assert_int_equal(store_session_delete(f->st, &f->s1, sa.id), STORE_OK);
    assert_int_equal(db_count(f, "SELECT count(*) FROM messages WHERE session_id = ?", sa.id), 0);
    session_rec_free(&sa);
    session_rec_free(&sb);
}

static void test_run_append_atomic(void **state)
{
    fx *f = *state;
    session_rec s;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s), STORE_OK);
    run_rec r;
    assert_int_equal(store_run_start(f->st, &f->s1, s.id, NULL, "go", RUN_RUNNING, &r), STORE_OK);

    /* the third message of the group is malformed: the first two were
     * already inserted inside the operation and must vanish with it */
    message_rec bad_role[3] = {
        msg("assistant", NULL, "[{\"id\":\"c1\"}]", NULL),
        msg("tool", "result", NULL, "c1"),
        msg("system", "sneaky", NULL, NULL),
    };
    r.steps = 1; r.tool_calls = 1; r.input_tokens = 99;
    assert_int_equal(store_run_append(f->st, &f->s1, &r, bad_role, 3), STORE_INVALID);
    message_rec no_call_id[2] = {
        msg("assistant", NULL, "[{\"id\":\"c1\"}]", NULL),
        msg("tool", "result", NULL, NULL),
    };
    assert_int_equal(store_run_append(f->st, &f->s1, &r, no_call_id, 2), STORE_INVALID);
    message_rec bad_utf8[2] = {
        msg("assistant", NULL, "[{\"id\":\"c1\"}]", NULL),
        msg("tool", "\xc3\x28", NULL, "c1"),
    };
    assert_int_equal(store_run_append(f->st, &f->s1, &r, bad_utf8, 2), STORE_INVALID);

    message_rec *m; size_t n;
    assert_int_equal(store_message_list(f->st, &f->s1, s.id, 0, 100, &m, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(m[0].role, "user");
    store_free_messages(m, n);
    run_rec g;
    assert_int_equal(store_run_get(f->st, &f->s1, r.id, &g), STORE_OK);
    assert_int_equal(g.steps, 0);          /* counters did not move either */
    assert_int_equal(g.input_tokens, 0);
    session_rec s2;
    assert_int_equal(store_session_get(f->st, &f->s1, s.id, &s2), STORE_OK);
    assert_int_equal(s2.message_count, 1);
    session_rec_free(&s2);

    /* a good group afterwards continues the sequence without a gap */
    assert_int_equal(store_run_append(f->st, &f->s1, &r, bad_role, 2), STORE_OK);
    assert_int_equal(store_message_list(f->st, &f->s1, s.id, 0, 100, &m, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(m[1].seq, 2);
    assert_int_equal(m[2].seq, 3);
    store_free_messages(m, n);
    assert_int_equal(store_run_get(f->st, &f->s1, r.id, &g), STORE_OK);
    assert_int_equal(g.steps, 1);
    assert_int_equal(g.input_tokens, 99);
    /* a malformed final message leaves the run running */
    message_rec badfin = msg("tool", "no id", NULL, NULL);
    r.status = RUN_COMPLETED;
    assert_int_equal(store_run_finish(f->st, &f->s1, &r, &badfin), STORE_INVALID);
    assert_int_equal(store_run_get(f->st, &f->s1, r.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_RUNNING);
    assert_int_equal(r.final_seq, 0);
    session_rec_free(&s);
}

/* Two threads append to one session at once: every seq distinct, no gaps. */
typedef struct seq_arg { fx *f; run_rec run; } seq_arg;

static void *seq_thread(void *p)
{
    seq_arg *a = p;
    for (int i = 0; i < 25; i++) {
        message_rec g[2] = {
            msg("assistant", NULL, "[{\"id\":\"x\"}]", NULL),
            msg("tool", "r", NULL, "x"),
        };
        if (store_run_append(a->f->st, &a->f->s1, &a->run, g, 2) != STORE_OK) return (void *)1;
    }
    return NULL;
}

/* Written behind (SQLite): the start is only checked until a later write
 * carries it; writes land in queue order without anyone waiting; a write
 * whose predecessor is missing refuses, and an end then lands failed; the
 * end's callback comes after its commit. */
/* One write's callback (the writer calls a batch's callbacks in no
 * promised order: each write has its own). */
typedef struct behind_seen {
    int calls;
    store_status st;
    run_rec stored;
} behind_seen;

static void behind_done(void *arg, store_status st, const run_rec *stored)
{
    behind_seen *b = arg;
    b->st = st;
    b->stored = *stored;
    b->calls++;
}

static void test_run_write_behind(void **state)
{
    fx *f = *state;
    if (on_pg) {
        assert_false(store_runs_write_behind(f->st));   /* PostgreSQL writes eagerly */
        return;
    }
    assert_true(store_runs_write_behind(f->st));
    session_rec s;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s), STORE_OK);
    run_rec r;
    /* another user's session: refused at the check, nothing written */
    assert_int_equal(store_run_check_start(f->st, &f->s2, s.id, NULL, "hi", RUN_RUNNING, &r), STORE_NOT_FOUND);
    assert_int_equal(store_run_check_start(f->st, &f->s1, s.id, NULL, "hi", RUN_RUNNING, &r), STORE_OK);
    assert_memory_equal(r.id, "run_", 4);
    assert_string_equal(r.agent, "helper");
    run_rec g;
    assert_int_equal(store_run_get(f->st, &f->s1, r.id, &g), STORE_NOT_FOUND);   /* only checked */

    behind_seen b[7] = {{0}};
    /* the start rides with the first step; nobody waits */
    message_rec step[2] = {
        msg("assistant", NULL, "[{\"id\":\"c1\"}]", NULL),
        msg("tool", "4", NULL, "c1"),
    };
    r.steps = 1; r.tool_calls = 1; r.input_tokens = 7;
    store_run_behind w1 = {.start_content = "hi", .msgs = step, .n = 2, .expect_steps = 0};
    assert_int_equal(store_run_write_behind(f->st, &f->s1, &r, &w1, behind_done, &b[0]), STORE_OK);
    /* the end, queued after it: lands after it */
    message_rec fin = msg("assistant", "It is 4.", NULL, NULL);
    r.status = RUN_COMPLETED; r.steps = 2;
    store_run_behind w2 = {.expect_steps = 1, .finish = true, .final = &fin};
    assert_int_equal(store_run_write_behind(f->st, &f->s1, &r, &w2, behind_done, &b[1]), STORE_OK);
    store_runs_settle(f->st);      /* both callbacks have run */
    assert_int_equal(b[0].calls, 1);
    assert_int_equal(b[1].calls, 1);
    assert_int_equal(b[0].st, STORE_OK);
    assert_int_equal(b[1].st, STORE_OK);
    assert_int_equal(b[1].stored.final_seq, 4);
    assert_int_equal(b[1].stored.status, RUN_COMPLETED);
    assert_int_equal(store_run_get(f->st, &f->s1, r.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_COMPLETED);
    assert_int_equal(g.user_seq, 1);
    assert_int_equal(g.final_seq, 4);
    assert_int_equal(g.steps, 2);
    message_rec *m; size_t n;
    assert_int_equal(store_message_list(f->st, &f->s1, s.id, 0, 100, &m, &n), STORE_OK);
    assert_int_equal(n, 4);
    const char *roles[] = {"user", "assistant", "tool", "assistant"};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(m[i].role, roles[i]);
        assert_string_equal(m[i].run_id, r.id);
    }
    store_free_messages(m, n);

    /* a second run whose step fails (malformed): the next step refuses
     * (no hole), and its end lands as a failure, not as completed */
    run_rec r2;
    assert_int_equal(store_run_check_start(f->st, &f->s1, s.id, NULL, "again", RUN_RUNNING, &r2), STORE_OK);
    store_run_behind ws = {.start_content = "again", .expect_steps = 0};
    assert_int_equal(store_run_write_behind(f->st, &f->s1, &r2, &ws, behind_done, &b[2]), STORE_OK);
    message_rec bad[1] = {msg("tool", "no call id", NULL, NULL)};
    r2.steps = 1;
    store_run_behind wb = {.msgs = bad, .n = 1, .expect_steps = 0};
    assert_int_equal(store_run_write_behind(f->st, &f->s1, &r2, &wb, behind_done, &b[3]), STORE_OK);
    r2.steps = 2;
    store_run_behind wn = {.msgs = step, .n = 2, .expect_steps = 1};
    assert_int_equal(store_run_write_behind(f->st, &f->s1, &r2, &wn, behind_done, &b[4]), STORE_OK);
    r2.status = RUN_COMPLETED; r2.steps = 3;
    store_run_behind we = {.expect_steps = 2, .finish = true, .final = &fin};
    assert_int_equal(store_run_write_behind(f->st, &f->s1, &r2, &we, behind_done, &b[5]), STORE_OK);
    store_runs_settle(f->st);
    for (int k = 2; k < 6; k++) assert_int_equal(b[k].calls, 1);
    assert_int_equal(b[2].st, STORE_OK);        /* the start */
    assert_int_equal(b[3].st, STORE_INVALID);   /* the bad step */
    assert_int_equal(b[4].st, STORE_CONFLICT);  /* the step after it: refused */
    assert_int_equal(b[5].st, STORE_OK);        /* the end ... */
    assert_int_equal(b[5].stored.status, RUN_FAILED);   /* ... as a failure */
    assert_string_equal(b[5].stored.error_code, "store_error");
    assert_int_equal(store_run_get(f->st, &f->s1, r2.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_FAILED);
    assert_int_equal(g.final_seq, 0);
    assert_int_equal(store_message_list(f->st, &f->s1, s.id, 0, 100, &m, &n), STORE_OK);
    assert_int_equal(n, 5);                      /* only its user message */
    assert_string_equal(m[4].role, "user");
    assert_string_equal(m[4].run_id, r2.id);
    store_free_messages(m, n);

    /* another user cannot write behind into this user's run */
    run_rec r3 = r2;
    r3.status = RUN_COMPLETED;
    store_run_behind wx = {.expect_steps = 3, .finish = true};
    assert_int_equal(store_run_write_behind(f->st, &f->s2, &r3, &wx, behind_done, &b[6]), STORE_OK);
    store_runs_settle(f->st);
    assert_int_equal(b[6].calls, 1);
    assert_int_equal(b[6].st, STORE_NOT_FOUND);
}

static void test_run_concurrent_seq(void **state)
{
    fx *f = *state;
    session_rec s;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s), STORE_OK);
    seq_arg a[2];
    memset(a, 0, sizeof a);
    a[0].f = a[1].f = f;
    /* one running and one queued: PostgreSQL allows one active run per
     * session (migration 19); both append concurrently */
    for (int i = 0; i < 2; i++)
        assert_int_equal(store_run_start(f->st, &f->s1, s.id, NULL, "go", i ? RUN_QUEUED : RUN_RUNNING, &a[i].run),
                         STORE_OK);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, seq_thread, &a[i]);
    for (int i = 0; i < 2; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        assert_null(rv);
    }
    message_rec *m; size_t n;
    assert_int_equal(store_message_list(f->st, &f->s1, s.id, 0, 1000, &m, &n), STORE_OK);
    assert_int_equal(n, 102);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(m[i].seq, (int64_t)i + 1);
        /* a tool result always directly follows its run's assistant message */
        if (strcmp(m[i].role, "tool") == 0) {
            assert_string_equal(m[i - 1].role, "assistant");
            assert_string_equal(m[i - 1].run_id, m[i].run_id);
        }
    }
    store_free_messages(m, n);
    session_rec_free(&s);
}

static void test_runs_recover(void **state)
{
    fx *f = *state;
    session_rec s;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s), STORE_OK);
    run_rec q, r, w, c, o;
    assert_int_equal(store_run_start(f->st, &f->s1, s.id, NULL, "q", RUN_QUEUED, &q), STORE_OK);
    assert_int_equal(store_run_start(f->st, &f->s1, s.id, NULL, "r", RUN_RUNNING, &r), STORE_OK);
    /* w and c on sessions of their own: one active run per session */
    session_rec sw, scm;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &sw), STORE_OK);
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &scm), STORE_OK);
    assert_int_equal(store_run_start(f->st, &f->s1, sw.id, NULL, "w", RUN_RUNNING, &w), STORE_OK);
    w.status = RUN_WAITING_APPROVAL;
    assert_int_equal(store_run_set_status(f->st, &f->s1, &w), STORE_OK);
    assert_int_equal(store_run_start(f->st, &f->s1, scm.id, NULL, "c", RUN_RUNNING, &c), STORE_OK);
    c.status = RUN_COMPLETED;
    message_rec fin = msg("assistant", "done", NULL, NULL);
    assert_int_equal(store_run_finish(f->st, &f->s1, &c, &fin), STORE_OK);
    session_rec s2;
    assert_int_equal(store_session_create(f->st, &f->s2, "helper", NULL, &s2), STORE_OK);
    assert_int_equal(store_run_start(f->st, &f->s2, s2.id, NULL, "o", RUN_RUNNING, &o), STORE_OK);

    /* "crash": close and reopen, then recover as serve does at start */
    store_close(f->st);
    f->st = reopen_store(f);
    assert_non_null(f->st);
    size_t n = 99;
    assert_int_equal(store_runs_recover(f->st, &n), STORE_OK);
    assert_int_equal(n, 3);
    run_rec g;
    /* a paused run survives the restart as it was (store_approvals.c) */
    assert_int_equal(store_run_get(f->st, &f->s1, w.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_WAITING_APPROVAL);
    const run_rec *inflight[] = {&q, &r};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(store_run_get(f->st, &f->s1, inflight[i]->id, &g), STORE_OK);
        assert_int_equal(g.status, RUN_INTERRUPTED);
        assert_string_equal(g.error_code, "server_restart");
        assert_true(g.finished_at > 0);
    }
    assert_int_equal(store_run_get(f->st, &f->s2, o.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_INTERRUPTED);
    assert_int_equal(store_run_get(f->st, &f->s1, c.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_COMPLETED);
    assert_string_equal(g.error_code, "");
    assert_int_equal(store_runs_recover(f->st, &n), STORE_OK);
    assert_int_equal(n, 0);
    session_rec_free(&s);
    session_rec_free(&s2);
    session_rec_free(&sw);
    session_rec_free(&scm);
}

/* A write of a run's status evaluates runs_active's condition; spelled as
 * an IN list of four constants it made SQLite build a temporary b-tree at
 * every such write (migration 24), and a message's insert its CHECK on the
 * role, a list of three (migration 25). None now, and the restart recovery
 * (its statement as store_runs_recover_op has it) searches the index (it
 * keeps its own temporary b-tree, of the rows found, as it changes the
 * indexed column: once, at start). */
static void test_run_writes_without_temporary_btrees(void **state)
{
    fx *f = *state;
    if (on_pg) return;   /* PostgreSQL plans IN lists its own way */
    char path[128];
    snprintf(path, sizeof path, "%s/brigade.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    const char *writes[] = {
        "INSERT INTO runs (id, session_id, tenant_id, user_id, agent, status, created_at)"
        " VALUES ('x', 's', 't', 'u', 'a', 2, 1)",
        "UPDATE runs SET status = 4, finished_at = 1 WHERE id = 'x'",
        "UPDATE runs SET status = 2 WHERE id = 'x' AND status IN (3, 8)",
        "INSERT INTO messages (session_id, seq, run_id, tenant_id, user_id, role, content, tool_calls,"
        " tool_call_id, created_at, origin) VALUES ('s', 1, 'r', 't', 'u', 'tool', 'c', NULL, 'id', 1, NULL)",
        "UPDATE runs SET status = 7, error_code = 'server_restart', finished_at = 1"
        " WHERE (status < 4 OR status = 8) AND status IN (1, 2)",
    };
    for (size_t i = 0; i < 4; i++) {
        char sql[512];
        snprintf(sql, sizeof sql, "EXPLAIN %s", writes[i]);
        sqlite3_stmt *s;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        while (sqlite3_step(s) == SQLITE_ROW)
            if (strcmp((const char *)sqlite3_column_text(s, 1), "OpenEphemeral") == 0)
                fail_msg("a temporary b-tree in: %s", writes[i]);
        sqlite3_finalize(s);
    }
    char sql[512];
    snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", writes[4]);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    bool indexed = false;
    while (sqlite3_step(s) == SQLITE_ROW)
        indexed |= strstr((const char *)sqlite3_column_text(s, 3), "USING INDEX runs_active") != NULL;
    sqlite3_finalize(s);
    assert_true(indexed);
    sqlite3_close(db);
    /* the check as comparisons still refuses another role */
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO messages (session_id, seq, tenant_id, user_id, role,"
                                      " created_at) VALUES ('s', 1, 't', 'u', 'system', 1)", NULL, NULL, NULL),
                     SQLITE_CONSTRAINT);
    assert_int_equal(sqlite3_extended_errcode(db), SQLITE_CONSTRAINT_CHECK);
    sqlite3_close(db);
}

/* A cancel asked on one instance for a run another instance runs
 * (migration 20): marked only for the caller's active run of another live
 * instance; the owner finds it. SQLite is one instance: never marked. */
static void test_run_cancel_request(void **state)
{
    fx *f = *state;
    session_rec s, s2;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s), STORE_OK);
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s2), STORE_OK);
    run_rec r, done;
    assert_int_equal(store_run_start(f->st, &f->s1, s.id, NULL, "r", RUN_RUNNING, &r), STORE_OK);
    assert_int_equal(store_run_start(f->st, &f->s1, s2.id, NULL, "d", RUN_RUNNING, &done), STORE_OK);
    done.status = RUN_COMPLETED;
    message_rec fin = msg("assistant", "done", NULL, NULL);
    assert_int_equal(store_run_finish(f->st, &f->s1, &done, &fin), STORE_OK);
    bool req = true;
    run_ref refs[4];
    size_t n = 99;
    if (!on_pg) {
        assert_int_equal(store_run_request_cancel(f->st, &f->s1, r.id, &req), STORE_OK);
        assert_false(req);
        assert_int_equal(store_runs_cancel_requested(f->st, refs, 4, &n), STORE_OK);
        assert_int_equal(n, 0);
        assert_int_equal(store_run_request_cancel(f->st, &f->ta, r.id, &req), STORE_OK);
        assert_false(req);
        assert_int_equal(store_run_request_cancel(f->st, &f->admin, r.id, &req), STORE_FORBIDDEN);
        session_rec_free(&s);
        session_rec_free(&s2);
        return;
    }
    /* this instance's own run: nobody else to ask */
    assert_int_equal(store_run_request_cancel(f->st, &f->s1, r.id, &req), STORE_OK);
    assert_false(req);
    /* the run of another live instance */
    char sql[512];
    snprintf(sql, sizeof sql, "UPDATE runs SET owner = 'ins_other', heartbeat = %lld WHERE id IN ('%s', '%s')",
             (long long)time_now_unix(), r.id, done.id);
    test_pg_sql(sql);
    /* another user of the same tenant, another tenant's admin, the server
     * admin, an unknown run, an ended run: nothing */
    assert_int_equal(store_run_request_cancel(f->st, &f->s2, r.id, &req), STORE_OK);
    assert_false(req);
    scope foreign_admin;
    scope_mint_tenant_admin(&foreign_admin, "ten_other", "key_x");
    assert_int_equal(store_run_request_cancel(f->st, &foreign_admin, r.id, &req), STORE_OK);
    assert_false(req);
    assert_int_equal(store_run_request_cancel(f->st, &f->admin, r.id, &req), STORE_FORBIDDEN);
    assert_int_equal(store_run_request_cancel(f->st, &f->s1, "run_nope", &req), STORE_OK);
    assert_false(req);
    assert_int_equal(store_run_request_cancel(f->st, &f->s1, done.id, &req), STORE_OK);
    assert_false(req);
    assert_int_equal(test_pg_count("SELECT count(*) FROM runs WHERE cancel_requested <> 0"), 0);
    /* the tenant's admin: any active run of the tenant */
    assert_int_equal(store_run_request_cancel(f->st, &f->ta, r.id, &req), STORE_OK);
    assert_true(req);
    assert_int_equal(test_pg_count("SELECT count(*) FROM runs WHERE cancel_requested <> 0"), 1);
    test_pg_sql("UPDATE runs SET cancel_requested = 0");
    /* the caller's: marked; it is not this instance's to stop */
    assert_int_equal(store_run_request_cancel(f->st, &f->s1, r.id, &req), STORE_OK);
    assert_true(req);
    assert_int_equal(store_runs_cancel_requested(f->st, refs, 4, &n), STORE_OK);
    assert_int_equal(n, 0);
    /* seen as the owner (this store's instance is ins_default) */
    test_pg_sql("UPDATE runs SET owner = 'ins_default' WHERE cancel_requested <> 0");
    assert_int_equal(store_runs_cancel_requested(f->st, refs, 4, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(refs[0].id, r.id);
    assert_string_equal(refs[0].tenant_id, f->ta_id);
    assert_string_equal(refs[0].user_id, f->u1);
    assert_int_equal(store_runs_cancel_requested(f->st, refs, 0, &n), STORE_OK);
    assert_int_equal(n, 0);
    /* once it has ended it is not found again */
    r.status = RUN_CANCELLED;
    assert_int_equal(store_run_finish(f->st, &f->s1, &r, NULL), STORE_OK);
    assert_int_equal(store_runs_cancel_requested(f->st, refs, 4, &n), STORE_OK);
    assert_int_equal(n, 0);
    /* an instance whose heartbeat is stale is not asked (its runs are interrupted instead) */
    session_rec s3;
    run_rec r3;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s3), STORE_OK);
    assert_int_equal(store_run_start(f->st, &f->s1, s3.id, NULL, "r3", RUN_RUNNING, &r3), STORE_OK);
    snprintf(sql, sizeof sql, "UPDATE runs SET owner = 'ins_gone', heartbeat = 1 WHERE id = '%s'", r3.id);
    test_pg_sql(sql);
    assert_int_equal(store_run_request_cancel(f->st, &f->s1, r3.id, &req), STORE_OK);
    assert_false(req);
    session_rec_free(&s);
    session_rec_free(&s2);
    session_rec_free(&s3);
}

/* ---- paused runs and approvals (store_approvals.c) ---- */

static void test_run_pause_and_approvals(void **state)
{
    fx *f = *state;
    session_rec s;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s), STORE_OK);
    run_rec r;
    assert_int_equal(store_run_start(f->st, &f->s1, s.id, NULL, "pay", RUN_RUNNING, &r), STORE_OK);
    r.steps = 1;
    run_wait_rec w = {.kind = RUN_WAITING_APPROVAL, .pending = "{\"role\":\"assistant\"}",
                      .deadline = 0};
    approval_rec a[2] = {
        {.call_id = "call_1", .tool = "pay", .arguments = "{\"amount\":500}",
         .reason = "over 100", .approval_by = 0, .deadline = time(NULL) + 3600},
        {.call_id = "call_2", .tool = "pay", .arguments = "{}", .reason = "always",
         .approval_by = 2, .deadline = time(NULL) - 1},
    };
    assert_int_equal(store_run_pause(f->st, &f->s1, &r, &w, a, 2), STORE_OK);
    run_rec g;
    assert_int_equal(store_run_get(f->st, &f->s1, r.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_WAITING_APPROVAL);
    assert_int_equal(g.steps, 1);
    /* pausing twice is refused: the run is no longer running */
    assert_int_equal(store_run_pause(f->st, &f->s1, &r, &w, a, 2), STORE_CONFLICT);

    approval_rec *arr;
    size_t n, left;
    assert_int_equal(store_approvals_pending(f->st, f->s1.tenant_id, f->s1.user_id, 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(arr[0].call_id, "call_1");
    assert_string_equal(arr[0].arguments, "{\"amount\":500}");
    store_free_approvals(arr, n);
    /* another user of the tenant sees none, and cannot decide */
    assert_int_equal(store_approvals_pending(f->st, f->s2.tenant_id, f->s2.user_id, 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 0);
    store_free_approvals(arr, n);
    approval_rec d;
    assert_int_equal(store_approval_decide(f->st, f->s2.tenant_id, f->s2.user_id, NULL, r.id,
                                           "call_1", true, NULL, &d, &left), STORE_NOT_FOUND);
    /* call_2 is for a tenant admin only */
    assert_int_equal(store_approval_decide(f->st, f->s1.tenant_id, f->s1.user_id, NULL, r.id,
                                           "call_2", true, NULL, &d, &left), STORE_FORBIDDEN);
    approval_rec_free(&d);
    assert_int_equal(store_approval_decide(f->st, f->s1.tenant_id, f->s1.user_id, NULL, r.id,
                                           "call_1", false, "too much", &d, &left), STORE_OK);
    assert_int_equal(d.status, APPROVAL_DENIED);
    assert_int_equal(left, 1);
    approval_rec_free(&d);
    /* replayed: already decided */
    assert_int_equal(store_approval_decide(f->st, f->s1.tenant_id, f->s1.user_id, NULL, r.id,
                                           "call_1", true, NULL, &d, &left), STORE_CONFLICT);
    approval_rec_free(&d);
    /* a decision after the deadline finds the call denied, sweeper or not */
    approval_rec late = {.call_id = "call_3", .tool = "pay", .arguments = "{}", .reason = "always",
                         .deadline = time(NULL) - 5};
    run_rec r0;
    session_rec s0;   /* its own session: r is paused on s (one active run per session) */
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s0), STORE_OK);
    assert_int_equal(store_run_start(f->st, &f->s1, s0.id, NULL, "late", RUN_RUNNING, &r0), STORE_OK);
    assert_int_equal(store_run_pause(f->st, &f->s1, &r0, &w, &late, 1), STORE_OK);
    assert_int_equal(store_approval_decide(f->st, f->s1.tenant_id, f->s1.user_id, NULL, r0.id,
                                           "call_3", true, NULL, &d, &left), STORE_CONFLICT);
    assert_int_equal(d.status, APPROVAL_DENIED);
    assert_string_equal(d.decided_by, "timeout");
    approval_rec_free(&d);
    r0.status = RUN_CANCELLED;
    assert_int_equal(store_run_finish(f->st, &f->s1, &r0, NULL), STORE_OK);
    /* call_2's deadline has passed: the sweeper denies it */
    assert_int_equal(store_approval_expire_next(f->st, time(NULL), &d), STORE_OK);
    assert_string_equal(d.call_id, "call_2");
    assert_string_equal(d.decided_by, "timeout");
    approval_rec_free(&d);
    assert_int_equal(store_approval_expire_next(f->st, time(NULL), &d), STORE_NOT_FOUND);
    assert_int_equal(store_approvals_of_run(f->st, f->s1.tenant_id, NULL, r.id, &arr, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(arr[0].note, "too much");
    assert_string_equal(arr[1].decided_by, "timeout");
    store_free_approvals(arr, n);

    /* the wait survives a reopen, and is taken once */
    store_close(f->st);
    f->st = reopen_store(f);
    assert_non_null(f->st);
    assert_int_equal(store_runs_recover(f->st, &n), STORE_OK);
    run_wait_rec *all;
    assert_int_equal(store_run_waits_all(f->st, &all, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(all[0].run_id, r.id);
    assert_string_equal(all[0].key_id, f->s1.key_id);
    store_free_run_waits(all, n);
    run_wait_rec got;
    assert_int_equal(store_run_unpause(f->st, &f->s2, r.id, &got), STORE_NOT_FOUND);
    assert_int_equal(store_run_unpause(f->st, &f->s1, r.id, &got), STORE_OK);
    assert_string_equal(got.pending, "{\"role\":\"assistant\"}");
    run_wait_rec_free(&got);
    assert_int_equal(store_run_unpause(f->st, &f->s1, r.id, &got), STORE_NOT_FOUND);
    assert_int_equal(store_run_get(f->st, &f->s1, r.id, &g), STORE_OK);
    assert_int_equal(g.status, RUN_RUNNING);

    /* a run that ends while paused leaves nothing pending */
    run_rec r2;
    session_rec s2x;   /* r is running again on s: one active run per session */
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s2x), STORE_OK);
    assert_int_equal(store_run_start(f->st, &f->s1, s2x.id, NULL, "x", RUN_RUNNING, &r2), STORE_OK);
    w.kind = RUN_WAITING_APPROVAL;
    a[0].deadline = time(NULL) + 3600;
    assert_int_equal(store_run_pause(f->st, &f->s1, &r2, &w, a, 1), STORE_OK);
    r2.status = RUN_CANCELLED;
    assert_int_equal(store_run_finish(f->st, &f->s1, &r2, NULL), STORE_OK);
    assert_int_equal(store_approvals_pending(f->st, f->s1.tenant_id, NULL, 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 0);
    store_free_approvals(arr, n);
    assert_int_equal(store_run_waits_all(f->st, &all, &n), STORE_OK);
    assert_int_equal(n, 0);

    /* bounded: at most STORE_APPROVALS_PENDING_PER_USER pending per user */
    approval_rec many[STORE_APPROVALS_PENDING_PER_USER + 1];
    memset(many, 0, sizeof many);
    for (int i = 0; i <= STORE_APPROVALS_PENDING_PER_USER; i++) {
        snprintf(many[i].call_id, sizeof many[i].call_id, "c%d", i);
        snprintf(many[i].tool, sizeof many[i].tool, "pay");
        many[i].deadline = time(NULL) + 60;
    }
    run_rec r3;
    session_rec s3x;   /* its own session, as r2 */
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s3x), STORE_OK);
    assert_int_equal(store_run_start(f->st, &f->s1, s3x.id, NULL, "y", RUN_RUNNING, &r3), STORE_OK);
    assert_int_equal(store_run_pause(f->st, &f->s1, &r3, &w, many, STORE_APPROVALS_PENDING_PER_USER + 1),
                     STORE_QUOTA);
    assert_int_equal(store_run_pause(f->st, &f->s1, &r3, &w, many, STORE_APPROVALS_PENDING_PER_USER),
                     STORE_OK);
    session_rec_free(&s);
    session_rec_free(&s0);
    session_rec_free(&s2x);
    session_rec_free(&s3x);
}

/* ---- memory ---- */

static void test_memory_basic(void **state)
{
    fx *f = *state;
    memory_rec m;
    assert_int_equal(store_memory_put(f->st, &f->s1, "favourite colour", "deep blue, like the sea", &m), STORE_OK);
    assert_string_equal(m.key, "favourite colour");
    assert_string_equal(m.value, "deep blue, like the sea");
    assert_true(m.updated_at > 0);
    memory_rec_free(&m);
    assert_int_equal(store_memory_put(f->st, &f->s1, "pet", "a cat called Ada", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &f->s1, "café order", "flat white", NULL), STORE_OK);

    memory_rec *arr; size_t n;
    /* by a word of the key */
    assert_int_equal(store_memory_search(f->st, &f->s1, "colour", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(arr[0].key, "favourite colour");
    store_free_memories(arr, n);
    /* by a word of the value, case-insensitively; OR across words */
    assert_int_equal(store_memory_search(f->st, &f->s1, "CAT's name: Ada?", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(arr[0].key, "pet");
    store_free_memories(arr, n);
    assert_int_equal(store_memory_search(f->st, &f->s1, "sea ada", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 2);
    store_free_memories(arr, n);
    /* diacritics folded */
    assert_int_equal(store_memory_search(f->st, &f->s1, "cafe", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_free_memories(arr, n);
    /* empty query: everything, newest first */
    assert_int_equal(store_memory_search(f->st, &f->s1, "", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(arr[0].key, "café order");
    assert_string_equal(arr[2].key, "favourite colour");
    store_free_memories(arr, n);
    assert_int_equal(store_memory_search(f->st, &f->s1, NULL, 2, &arr, &n), STORE_OK);
    assert_int_equal(n, 2);
    store_free_memories(arr, n);

    /* overwrite: the index follows the new value, not the old */
    assert_int_equal(store_memory_put(f->st, &f->s1, "pet", "a dog called Rex", NULL), STORE_OK);
    assert_int_equal(store_memory_get(f->st, &f->s1, "pet", &m), STORE_OK);
    assert_string_equal(m.value, "a dog called Rex");
    memory_rec_free(&m);
    assert_int_equal(store_memory_search(f->st, &f->s1, "ada", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 0);
    free(arr);
    assert_int_equal(store_memory_search(f->st, &f->s1, "rex", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_free_memories(arr, n);
    assert_int_equal(db_count(f, "SELECT count(*) FROM memory WHERE key = ?", "pet"), 1);

    /* delete: gone from the table and from the index */
    assert_int_equal(store_memory_delete(f->st, &f->s1, "pet"), STORE_OK);
    assert_int_equal(store_memory_get(f->st, &f->s1, "pet", &m), STORE_NOT_FOUND);
    assert_int_equal(store_memory_delete(f->st, &f->s1, "pet"), STORE_NOT_FOUND);
    assert_int_equal(store_memory_search(f->st, &f->s1, "rex dog", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 0);
    free(arr);
    assert_int_equal(db_count(f, "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?", "rex"), 0);

    /* bounds */
    char key[STORE_MEMORY_KEY_MAX + 2];
    memset(key, 'k', sizeof key - 1);
    key[STORE_MEMORY_KEY_MAX] = '\0';
    assert_int_equal(store_memory_put(f->st, &f->s1, key, "v", NULL), STORE_OK);
    key[STORE_MEMORY_KEY_MAX] = 'k';
    key[STORE_MEMORY_KEY_MAX + 1] = '\0';
    assert_int_equal(store_memory_put(f->st, &f->s1, key, "v", NULL), STORE_INVALID);
    assert_int_equal(store_memory_get(f->st, &f->s1, key, &m), STORE_INVALID);
    assert_int_equal(store_memory_delete(f->st, &f->s1, key), STORE_INVALID);
    assert_int_equal(store_memory_get(f->st, &f->s1, "a\x1b", &m), STORE_INVALID);
    assert_int_equal(store_memory_put(f->st, &f->s1, "", "v", NULL), STORE_INVALID);
    assert_int_equal(store_memory_put(f->st, &f->s1, NULL, "v", NULL), STORE_INVALID);
    assert_int_equal(store_memory_put(f->st, &f->s1, "tab\there", "v", NULL), STORE_INVALID);
    assert_int_equal(store_memory_put(f->st, &f->s1, "bad\xff", "v", NULL), STORE_INVALID);
    assert_int_equal(store_memory_put(f->st, &f->s1, "k", NULL, NULL), STORE_INVALID);
    assert_int_equal(store_memory_put(f->st, &f->s1, "k", "\xed\xa0\x80", NULL), STORE_INVALID);
    char *big = malloc(STORE_MEMORY_VALUE_MAX + 2);
    memset(big, 'x', STORE_MEMORY_VALUE_MAX + 1);
    big[STORE_MEMORY_VALUE_MAX] = '\0';
    assert_int_equal(store_memory_put(f->st, &f->s1, "big", big, NULL), STORE_OK);
    assert_int_equal(store_memory_get(f->st, &f->s1, "big", &m), STORE_OK);
    assert_int_equal(strlen(m.value), STORE_MEMORY_VALUE_MAX);
    memory_rec_free(&m);
    big[STORE_MEMORY_VALUE_MAX] = 'x';
    big[STORE_MEMORY_VALUE_MAX + 1] = '\0';
    assert_int_equal(store_memory_put(f->st, &f->s1, "big", big, NULL), STORE_INVALID);
    free(big);
    assert_int_equal(store_memory_put(f->st, &f->s1, "multi\xc3\xa9", "line\none\ttwo", NULL), STORE_OK);
}

static void test_memory_fts_query_builder(void **state)
{
    (void)state;
    char out[STORE_FTS_EXPR_MAX];
    assert_int_equal(store_memory_fts_query("a\"b NEAR( OR -c* x:y ^z", out), 8);
    assert_string_equal(out, "\"a\" OR \"b\" OR \"NEAR\" OR \"OR\" OR \"c\" OR \"x\" OR \"y\" OR \"z\"");
    assert_int_equal(store_memory_fts_query("", out), 0);
    assert_string_equal(out, "");
    assert_int_equal(store_memory_fts_query(NULL, out), 0);
    assert_int_equal(store_memory_fts_query("\"*\" () - : ^ {} +", out), 0);
    assert_int_equal(store_memory_fts_query("héllo wörld", out), 2);
    assert_string_equal(out, "\"héllo\" OR \"wörld\"");
    /* capped at 16 words, however long the input */
    char many[4096] = "";
    for (int i = 0; i < 200; i++) strcat(many, "w ");
    assert_int_equal(store_memory_fts_query(many, out), STORE_MEMORY_TERMS_MAX);
    /* an over-long word is dropped, not truncated into something else */
    char lw[STORE_MEMORY_TERM_MAX + 10];
    memset(lw, 'q', sizeof lw - 1);
    lw[sizeof lw - 1] = '\0';
    char q[sizeof lw + 8];
    snprintf(q, sizeof q, "%s ok", lw);
    assert_int_equal(store_memory_fts_query(q, out), 1);
    assert_string_equal(out, "\"ok\"");
    /* broken UTF-8 words are dropped */
    assert_int_equal(store_memory_fts_query("\xc3 fine \xff\xfe", out), 1);
    assert_string_equal(out, "\"fine\"");
}

static void test_memory_search_hostile(void **state)
{
    fx *f = *state;
    assert_int_equal(store_memory_put(f->st, &f->s1, "secret plan", "owner one: near the lake", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &f->s1, "notes", "owner one: secret recipe or two", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &f->s2, "secret plan", "owner two: secret secret secret", NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, &f->s2, "other", "owner two: nothing", NULL), STORE_OK);

    char longq[12000];
    memset(longq, '(', sizeof longq - 1);
    longq[sizeof longq - 1] = '\0';
    memcpy(longq + 100, " secret ", 8);
    const char *queries[] = {
        "\"", "\"secret", "secret\"*", "NEAR(secret lake, 2)", "OR", "secret OR", "OR secret",
        "-secret", "secret -lake", "key:secret", "value : secret", "^secret", "secret AND NOT two",
        "*", "(", ")", "\"\" OR \"\"", "{key value}: secret", "'; DROP TABLE memory; --",
        "secret*", "\x01\x02secret\x7f", "\xff\xfe\xfd", "user_id:*", "rowid=1 OR 1=1", longq,
        "AND", "NOT", "secret NOT", "NEAR", "\"secret\" \"secret\"", "  \t\n ",
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        memory_rec *arr; size_t n;
        assert_int_equal(store_memory_search(f->st, &f->s1, queries[i], 50, &arr, &n), STORE_OK);
        for (size_t j = 0; j < n; j++) assert_non_null(strstr(arr[j].value, "owner one"));
        /* anything naming "secret" finds both of user one's entries */
        if (strstr(queries[i], "secret") && !strstr(queries[i], "\xff")) assert_int_equal(n, 2);
        store_free_memories(arr, n);
        assert_int_equal(store_memory_search(f->st, &f->s2, queries[i], 50, &arr, &n), STORE_OK);
        for (size_t j = 0; j < n; j++) assert_non_null(strstr(arr[j].value, "owner two"));
        store_free_memories(arr, n);
    }
    /* and the table is still there */
    assert_int_equal(db_count(f, "SELECT count(*) FROM memory WHERE key = ?", "secret plan"), 2);
}

/* 200 users × 5 entries, written and searched from 8 threads at once. */
#define PAR_USERS 200
#define PAR_THREADS 8

typedef struct par_arg {
    fx *f;
    int first, count;
    int failures;
    char (*ids)[ID_MAX];     /* user i's id, filled by the writing pass */
} par_arg;

static void *par_thread(void *p)
{
    par_arg *a = p;
    for (int i = a->first; i < a->first + a->count; i++) {
        user_rec u;
        memset(&u, 0, sizeof u);
        ids_new(u.id, "usr");
        snprintf(u.external_id, sizeof u.external_id, "par-%d", i);
        snprintf(u.tier, sizeof u.tier, "default");
        u.limits = (user_limits){-1, -1, -1, -1, -1};
        if (store_user_create(a->f->st, &a->f->ta, &u) != STORE_OK) { a->failures++; continue; }
        memcpy(a->ids[i], u.id, ID_MAX);
        scope sc;
        scope_mint_user(&sc, a->f->ta_id, u.id, "k", "default");
        for (int k = 0; k < 5; k++) {
            char key[32], val[128];
            snprintf(key, sizeof key, "note %d", k);
            snprintf(val, sizeof val, "common shared words marker%d entry%d", i, k);
            if (store_memory_put(a->f->st, &sc, key, val, NULL) != STORE_OK) a->failures++;
        }
    }
    return NULL;
}

static void *par_search_thread(void *p)
{
    par_arg *a = p;
    for (int i = a->first; i < a->first + a->count; i++) {
        scope sc;
        scope_mint_user(&sc, a->f->ta_id, a->ids[i], "k", "default");
        char marker[32];
        snprintf(marker, sizeof marker, "marker%d", i);
        memory_rec *arr; size_t n;
        const char *qs[] = {"common", marker, "common words NEAR entry3"};
        for (int q = 0; q < 3; q++) {
            if (store_memory_search(a->f->st, &sc, qs[q], 100, &arr, &n) != STORE_OK) { a->failures++; continue; }
            if (n != 5) a->failures++;
            for (size_t j = 0; j < n; j++) {
                /* "marker1" must not match "marker12": compare the word */
                const char *w = strstr(arr[j].value, marker);
                if (!w || w[strlen(marker)] != ' ') a->failures++;
            }
            store_free_memories(arr, n);
        }
    }
    return NULL;
}

static void test_memory_parallel_users(void **state)
{
    fx *f = *state;
    pthread_t t[PAR_THREADS];
    par_arg a[PAR_THREADS];
    static char ids[PAR_USERS][ID_MAX];
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < PAR_THREADS; i++) {
            a[i] = (par_arg){f, i * (PAR_USERS / PAR_THREADS), PAR_USERS / PAR_THREADS, 0, ids};
            pthread_create(&t[i], NULL, pass == 0 ? par_thread : par_search_thread, &a[i]);
        }
        for (int i = 0; i < PAR_THREADS; i++) {
            pthread_join(t[i], NULL);
            assert_int_equal(a[i].failures, 0);
        }
    }
    assert_int_equal(db_count(f, "SELECT count(*) FROM memory WHERE value LIKE ?", "common%"), PAR_USERS * 5);
    store_stats stats;
    store_get_stats(f->st, &stats);
    /* the writes were batched (SQLite's writer; PostgreSQL takes them as
     * concurrent transactions, one commit each) */
    if (!on_pg) assert_true(stats.ops > stats.commits);
}

/* ---- erasure ---- */

static void populate(fx *f, const scope *sc, const char *word, char sid[ID_MAX])
{
    session_rec s;
    assert_int_equal(store_session_create(f->st, sc, "helper", "{}", &s), STORE_OK);
    memcpy(sid, s.id, ID_MAX);
    session_rec_free(&s);
    run_rec r;
    assert_int_equal(store_run_start(f->st, sc, sid, NULL, word, RUN_RUNNING, &r), STORE_OK);
    message_rec g[2] = {msg("assistant", NULL, "[{\"id\":\"c\"}]", NULL), msg("tool", word, NULL, "c")};
    assert_int_equal(store_run_append(f->st, sc, &r, g, 2), STORE_OK);
    run_rec q;
    assert_int_equal(store_run_start(f->st, sc, sid, NULL, "later", RUN_QUEUED, &q), STORE_OK);
    char val[64];
    snprintf(val, sizeof val, "remember %s", word);
    assert_int_equal(store_memory_put(f->st, sc, "fact", val, NULL), STORE_OK);
    assert_int_equal(store_memory_put(f->st, sc, word, "second", NULL), STORE_OK);
}

static void test_user_delete_erases(void **state)
{
    fx *f = *state;
    char sid1[ID_MAX], sid2[ID_MAX];
    populate(f, &f->s1, "zebra", sid1);
    populate(f, &f->s2, "walrus", sid2);

    assert_int_equal(store_user_delete(f->st, &f->ta, f->u1), STORE_OK);

    static const char *const tables[] = {
        "SELECT count(*) FROM sessions WHERE user_id = ?",
        "SELECT count(*) FROM messages WHERE user_id = ?",
        "SELECT count(*) FROM runs WHERE user_id = ?",
        "SELECT count(*) FROM memory WHERE user_id = ?",
    };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(db_count(f, tables[i], f->u1), 0);
        assert_true(db_count(f, tables[i], f->u2) > 0);
    }
    /* the full-text index lost user one's rows too (a stale external-content
     * entry would still match here) and is consistent with its table */
    assert_int_equal(db_count(f, "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?", "zebra"), 0);
    assert_int_equal(db_count(f, "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH ?", "walrus"), 2);
    if (!on_pg) {   /* FTS5's own consistency check (PostgreSQL's index is a column) */
        char path[128];
        snprintf(path, sizeof path, "%s/brigade.db", f->dir);
        sqlite3 *db;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 2000);
        assert_int_equal(sqlite3_exec(db, "INSERT INTO memory_fts(memory_fts, rank) VALUES('integrity-check', 1)",
                                      NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }

    /* the erased user's still-circulating scope creates nothing new */
    session_rec s;
    assert_int_equal(store_session_create(f->st, &f->s1, "helper", NULL, &s), STORE_NOT_FOUND);
    assert_int_equal(store_memory_put(f->st, &f->s1, "k", "v", NULL), STORE_NOT_FOUND);
    run_rec r;
    assert_int_equal(store_run_start(f->st, &f->s1, sid1, NULL, "x", RUN_QUEUED, &r), STORE_NOT_FOUND);
    assert_int_equal(db_count(f, "SELECT count(*) FROM memory WHERE user_id = ?", f->u1), 0);

    /* user two is whole */
    assert_int_equal(store_session_get(f->st, &f->s2, sid2, &s), STORE_OK);
    assert_int_equal(s.message_count, 4);
    session_rec_free(&s);
    memory_rec *arr; size_t n;
    assert_int_equal(store_memory_search(f->st, &f->s2, "walrus", 10, &arr, &n), STORE_OK);
    assert_int_equal(n, 2);
    store_free_memories(arr, n);
}

int main(void)
{
    const char *kind = getenv("BRIGADE_TEST_STORE");
    on_pg = kind && strcmp(kind, "postgres") == 0;
    if (on_pg && test_pg_start() != 0) return 1;
    if (on_pg && !test_pg_url()) {   /* BRIGADE_TEST_PG=skip, said explicitly */
        fprintf(stderr, "BRIGADE_TEST_PG=skip: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_names_and_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_crud_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_user_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_clustered_by_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_append_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_origins_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_concurrent_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_write_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_pause_and_approvals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_writes_without_temporary_btrees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_cancel_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_basic, setup, teardown),
        cmocka_unit_test(test_memory_fts_query_builder),
        cmocka_unit_test_setup_teardown(test_memory_search_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_parallel_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_delete_erases, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
