/* test_trace_pack.c — several traces of one owner in one SQLite row
 * (src/store/trace_pack.h): the format read back exactly and never past
 * its end, compressed or not; which rows the store packs; that a packed trace is read as
 * before, by its owner only, hidden by one foreign row, pruned and erased
 * with its owner; and that the read finds packs by index, not by a scan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/scope_mint.h"
#include "store/store.h"
#include "store/trace_pack.h"
#include "test_util.h"
#include "util/timeutil.h"

/* ---------------- the format ---------------- */

static trace_rec rec(const char *trace, const char *blob, uint32_t spans, int64_t start)
{
    trace_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.trace_id, sizeof r.trace_id, "%s", trace);
    snprintf(r.root_name, sizeof r.root_name, "POST /v1/chat/completions");
    r.start_ns = start;
    r.end_ns = start + 500;
    r.status = 2;
    r.span_count = spans;
    r.blob = (unsigned char *)blob;
    r.blob_len = strlen(blob);
    r.local_id = true;
    return r;
}

static void test_pack_round_trip(void **state)
{
    (void)state;
    trace_rec in[3] = {rec("0190a1b2c3d4aaaaaaaaaaaaaaaaaaaa", "first blob", 3, 100),
                       rec("0190a1b2c3d5bbbbbbbbbbbbbbbbbbbb", "", 1, -7),
                       rec("0190a1b2c3d6cccccccccccccccccccc", "third", 9, INT64_MAX - 500)};
    in[1].root_name[0] = '\0';
    buf b;
    buf_init(&b);
    trace_pack_begin(&b);
    size_t want = 4;
    for (int i = 0; i < 3; i++) {
        trace_pack_add(&b, &in[i]);
        want += trace_pack_entry_size(&in[i]);
    }
    assert_int_equal(b.len, want);
    trace_pack_reader rd;
    assert_int_equal(trace_pack_open(&rd, b.data, b.len), 0);
    for (int i = 0; i < 3; i++) {
        trace_rec out;
        memset(&out, 0x5a, sizeof out);
        assert_int_equal(trace_pack_next(&rd, &out), 1);
        assert_string_equal(out.trace_id, in[i].trace_id);
        assert_string_equal(out.root_name, in[i].root_name);
        assert_int_equal(out.start_ns, in[i].start_ns);
        assert_int_equal(out.end_ns, in[i].end_ns);
        assert_int_equal(out.status, 2);
        assert_int_equal(out.span_count, in[i].span_count);
        assert_int_equal(out.blob_len, in[i].blob_len);
        assert_memory_equal(out.blob, in[i].blob, in[i].blob_len);
    }
    trace_rec end;
    assert_int_equal(trace_pack_next(&rd, &end), 0);

    /* Every cut short of the whole is refused, never read past: run under
     * ASan, a read beyond the copy would be reported. */
    for (size_t cut = 0; cut < b.len; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, b.data, cut);
        int opened = trace_pack_open(&rd, copy, cut), got = 0, entries = 0;
        if (opened == 0)
            while ((got = trace_pack_next(&rd, &end)) == 1) entries++;
        assert_true(opened < 0 || got < 0 || (got == 0 && entries < 3));
        free(copy);
    }
    /* a root name as long as the field or an entry of no spans: corrupt */
    unsigned char *bad = malloc(b.len);
    memcpy(bad, b.data, b.len);
    bad[4 + 37] = STORE_SPAN_NAME_MAX;
    assert_int_equal(trace_pack_open(&rd, bad, b.len), 0);
    assert_int_equal(trace_pack_next(&rd, &end), -1);
    memcpy(bad, b.data, b.len);
    memset(bad + 4 + 33, 0, 4);
    assert_int_equal(trace_pack_open(&rd, bad, b.len), 0);
    assert_int_equal(trace_pack_next(&rd, &end), -1);
    bad[0] = 'X';
    assert_int_equal(trace_pack_open(&rd, bad, b.len), -1);
    assert_int_equal(trace_pack_open(&rd, NULL, 0), -1);
    free(bad);
    buf_free(&b);
}

/* A blob shaped like a real trace's: the same names and keys each time,
 * an id and times that differ. */
static char *trace_like_blob(unsigned i)
{
    char *b = malloc(512);
    snprintf(b, 512,
             "POST /v1/chat/completions\x01http.method POST http.route /v1/chat/completions "
             "request.id %032x user authenticate ok chat bench-model openai m/bench-model "
             "governance admitted attempt done start %u end %u",
             i * 2654435761u, i * 7919u, i * 7919u + 480u);
    return b;
}

static void fill_pack(buf *b, trace_rec *in, char (*ids)[33], char **blobs, int n)
{
    buf_init(b);
    trace_pack_begin(b);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], 33, "0190a1b2c3d4%020x", (unsigned)i);
        blobs[i] = trace_like_blob((unsigned)i);
        in[i] = rec(ids[i], blobs[i], 5, 1000 + i);
        trace_pack_add(b, &in[i]);
    }
}

/* Reads the pack through; the entries it held, or -1 if it was refused
 * or corrupt (the count of what came before does not matter then). */
static int read_through(const void *p, size_t len)
{
    trace_pack_reader rd;
    if (trace_pack_open(&rd, p, len) != 0) return -1;
    trace_rec e;
    int got, n = 0;
    while ((got = trace_pack_next(&rd, &e)) == 1) n++;
    trace_pack_close(&rd);
    return got < 0 ? -1 : n;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void test_pack_sealed(void **state)
{
    (void)state;
    enum { N = 120 };
    trace_rec in[N];
    char ids[N][33], *blobs[N];
    buf b;
    fill_pack(&b, in, ids, blobs, N);
    trace_pack_sealer *z = malloc(sizeof *z);
    trace_pack_sealer_init(z);
    const void *out;
    size_t len = trace_pack_seal(z, &b, &out);
    /* compressed: its own magic and size, and well under half */
    assert_ptr_equal(out, z->out.data);
    assert_int_equal(len, z->out.len);
    assert_memory_equal(out, "BTK\x02", 4);
    assert_true(len < b.len / 2);
    const uint8_t *h = out;
    assert_int_equal((uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24,
                     b.len - 4);
    trace_pack_reader rd;
    assert_int_equal(trace_pack_open(&rd, out, len), 0);
    for (int i = 0; i < N; i++) {
        trace_rec e;
        assert_int_equal(trace_pack_next(&rd, &e), 1);
        assert_string_equal(e.trace_id, in[i].trace_id);
        assert_int_equal(e.start_ns, in[i].start_ns);
        assert_int_equal(e.span_count, 5);
        assert_int_equal(e.blob_len, in[i].blob_len);
        assert_memory_equal(e.blob, in[i].blob, in[i].blob_len);
    }
    trace_rec e;
    assert_int_equal(trace_pack_next(&rd, &e), 0);
    trace_pack_close(&rd);

    /* Every cut of it is refused or reads short, never past its end
     * (ASan), and so is every byte of it changed. */
    unsigned char *copy = malloc(len);
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *c = malloc(cut ? cut : 1);
        memcpy(c, out, cut);
        assert_true(read_through(c, cut) < N);
        free(c);
    }
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, out, len);
        copy[i] ^= 0xa5;
        (void)read_through(copy, len);   /* whatever it makes of it, within bounds */
    }
    /* a stated size the block does not fill exactly, none, or past the bound */
    memcpy(copy, out, len);
    const uint32_t sizes[] = {(uint32_t)(b.len - 4 + 1), (uint32_t)(b.len - 4 - 1), 0,
                              TRACE_PACK_READ_MAX_BYTES + 1, UINT32_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        put_u32(copy + 4, sizes[i]);
        assert_int_equal(trace_pack_open(&rd, copy, len), -1);
    }
    assert_int_equal(trace_pack_open(&rd, copy, 8), -1);   /* a header and no block */
    free(copy);

    /* The same sealer again (reset, not set up anew): the same bytes. */
    unsigned char *first = malloc(len);
    memcpy(first, out, len);
    assert_int_equal(trace_pack_seal(z, &b, &out), len);
    assert_memory_equal(out, first, len);
    free(first);

    /* A pack under TRACE_PACK_SEAL_MIN_BYTES is stored as it is. */
    buf small;
    trace_rec few[3];
    char few_ids[3][33], *few_blobs[3];
    fill_pack(&small, few, few_ids, few_blobs, 3);
    assert_true(small.len < TRACE_PACK_SEAL_MIN_BYTES);
    assert_int_equal(trace_pack_seal(z, &small, &out), small.len);
    assert_ptr_equal(out, small.data);
    for (int i = 0; i < 3; i++) free(few_blobs[i]);
    buf_free(&small);

    /* What LZ4 cannot shrink is stored as it is. */
    buf r;
    buf_init(&r);
    trace_pack_begin(&r);
    unsigned char noise[3 * TRACE_PACK_SEAL_MIN_BYTES];
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < sizeof noise; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        noise[i] = (unsigned char)x;
    }
    trace_rec one = rec("0190a1b2c3d4aaaaaaaaaaaaaaaaaaaa", "", 1, 1);
    one.blob = noise;
    one.blob_len = sizeof noise;
    trace_pack_add(&r, &one);
    assert_int_equal(trace_pack_seal(z, &r, &out), r.len);
    assert_ptr_equal(out, r.data);
    assert_int_equal(read_through(out, r.len), 1);
    buf_free(&r);

    for (int i = 0; i < N; i++) free(blobs[i]);
    trace_pack_sealer_free(z);
    free(z);
    buf_free(&b);
}

static void test_pack_window(void **state)
{
    (void)state;
    /* 0x0190a1b2c3d4 ms = 1720699765716 */
    int64_t w = trace_pack_window("0190a1b2c3d4aaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(w, 1720699765716LL / TRACE_PACK_WINDOW_MS + 1);
    assert_int_equal(trace_pack_window("0190a1b2c3d5ffffffffffffffffffff"), w);
    assert_int_equal(trace_pack_window("00000000000000000000000000000001"), 1);
    assert_int_equal(trace_pack_window(NULL), 0);
    assert_int_equal(trace_pack_window(""), 0);
    assert_int_equal(trace_pack_window("0190A1B2C3D4aaaaaaaaaaaaaaaaaaaa"), 0);    /* upper case */
    assert_int_equal(trace_pack_window("0190a1b2c3d4aaaaaaaaaaaaaaaaaaa"), 0);     /* 31 digits */
    assert_int_equal(trace_pack_window("0190a1b2c3d4aaaaaaaaaaaaaaaaaaaaa"), 0);   /* 33 */
    assert_int_equal(trace_pack_window("0190a1b2c3d4aaaaaaaaaaaaaaaaaaag"), 0);
}

/* ---------------- in the store ---------------- */

typedef struct fx {
    char dir[64];
    store *st;
    scope admin, ta, tb;
    char ta_id[ID_MAX], tb_id[ID_MAX], ua[ID_MAX], uc[ID_MAX], ub[ID_MAX];
    scope sa, sc, sb;
    int64_t now_ms;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->st = test_store_open(f->dir, sizeof f->dir, "brigade-pack");
    assert_non_null(f->st);
    scope_mint_server_admin(&f->admin);
    assert_int_equal(test_store_tenant(f->st, &f->admin, "tenant-a", f->ta_id), STORE_OK);
    assert_int_equal(test_store_tenant(f->st, &f->admin, "tenant-b", f->tb_id), STORE_OK);
    scope_mint_tenant_admin(&f->ta, f->ta_id, "key_a");
    scope_mint_tenant_admin(&f->tb, f->tb_id, "key_b");
    assert_int_equal(test_store_user(f->st, &f->ta, "alice", f->ua), STORE_OK);
    assert_int_equal(test_store_user(f->st, &f->ta, "carol", f->uc), STORE_OK);
    assert_int_equal(test_store_user(f->st, &f->tb, "bob", f->ub), STORE_OK);
    scope_mint_user(&f->sa, f->ta_id, f->ua, "key_1", "default");
    scope_mint_user(&f->sc, f->ta_id, f->uc, "key_2", "default");
    scope_mint_user(&f->sb, f->tb_id, f->ub, "key_3", "default");
    /* the start of a window, so that ids at +0..+9 ms share it */
    f->now_ms = time_now_unix() * 1000 / TRACE_PACK_WINDOW_MS * TRACE_PACK_WINDOW_MS;
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

/* An id made at now + ms_later, as traceparent.c makes them. */
static void local_id(const fx *f, int64_t ms_later, unsigned tail, char out[33])
{
    snprintf(out, 33, "%012llx%020x", (unsigned long long)(f->now_ms + ms_later), tail);
}

static trace_rec owned(const char *trace, const char *tenant, const char *user, const char *blob,
                       uint32_t spans, int64_t start)
{
    trace_rec r = rec(trace, blob, spans, start);
    snprintf(r.tenant_id, sizeof r.tenant_id, "%s", tenant);
    snprintf(r.user_id, sizeof r.user_id, "%s", user);
    return r;
}

static long long db_count(fx *f, const char *sql) { return test_sqlite_count(f->dir, sql, NULL); }

/* Changes the file behind the store's back (a corruption, an older schema). */
static void db_exec(fx *f, const char *sql)
{
    char path[128];
    snprintf(path, sizeof path, "%s/brigade.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *emsg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &emsg) != SQLITE_OK) fail_msg("%s: %s", sql, emsg);
    sqlite3_close(db);
}

/* The one record of trace `id` that `who` reads: its blob must be `blob`. */
static void read_one(fx *f, const scope *who, const char *id, const char *blob, uint32_t spans)
{
    trace_rec *got;
    size_t n;
    assert_int_equal(store_trace_get(f->st, who, id, &got, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].trace_id, id);
    assert_int_equal(got[0].span_count, spans);
    assert_int_equal(got[0].blob_len, strlen(blob));
    assert_memory_equal(got[0].blob, blob, strlen(blob));
    assert_string_equal(got[0].root_name, "POST /v1/chat/completions");
    store_free_traces(got, n);
}

static void test_pack_in_store(void **state)
{
    fx *f = *state;
    char a1[33], a2[33], a3[33], c1[33], far[33], client[33];
    local_id(f, 1, 1, a1);
    local_id(f, 2, 2, a2);
    local_id(f, 3, 3, a3);
    local_id(f, 4, 4, c1);
    local_id(f, 250, 5, far);        /* alice's too, a later window */
    local_id(f, 5, 6, client);       /* alice's, but sent by a client */
    int64_t t0 = f->now_ms * 1000000LL;
    trace_rec rows[7] = {
        owned(a1, f->ta_id, f->ua, "alice one", 3, t0 + 10),
        owned(a2, f->ta_id, f->ua, "alice two", 2, t0 + 20),
        owned(a3, f->ta_id, f->ua, "alice three", 4, t0 + 30),
        owned(c1, f->ta_id, f->uc, "carol one", 1, t0 + 40),
        owned(far, f->ta_id, f->ua, "alice far", 5, t0 + 50),
        owned(client, f->ta_id, f->ua, "alice client", 6, t0 + 60),
        owned(a1, f->ta_id, f->ua, "alice one, later", 2, t0 + 5),   /* after another owner's row */
    };
    rows[5].local_id = false;
    assert_int_equal(store_traces_insert(f->st, rows, 7, 0, 0), STORE_OK);
    /* alice's first three are one row; the rest go alone */
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces"), 5);
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces WHERE id_window <> 0"), 1);
    assert_int_equal(db_count(f, "SELECT span_count FROM traces WHERE id_window <> 0"), 9);
    assert_int_equal(db_count(f, "SELECT max(seq) FROM traces"), 23);   /* seq still counts spans */

    read_one(f, &f->sa, a2, "alice two", 2);
    read_one(f, &f->sa, a3, "alice three", 4);
    read_one(f, &f->sa, far, "alice far", 5);
    read_one(f, &f->sa, client, "alice client", 6);
    read_one(f, &f->sc, c1, "carol one", 1);
    read_one(f, &f->ta, a2, "alice two", 2);   /* the tenant's admin */
    /* a trace in a pack and in a row of its own: both, by start */
    trace_rec *got;
    size_t n;
    assert_int_equal(store_trace_get(f->st, &f->sa, a1, &got, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(got[0].blob, "alice one, later", 16);
    assert_memory_equal(got[1].blob, "alice one", 9);
    store_free_traces(got, n);

    /* Nobody else reads a packed trace: not carol in the same tenant and
     * window, not another tenant, not its admin. */
    assert_int_equal(store_trace_get(f->st, &f->sc, a2, &got, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->sb, a2, &got, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->tb, a2, &got, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->admin, a2, &got, &n), STORE_FORBIDDEN);
    /* an id of the window that nobody used */
    char unused[33];
    local_id(f, 6, 99, unused);
    assert_int_equal(store_trace_get(f->st, &f->sa, unused, &got, &n), STORE_NOT_FOUND);

    /* carol puts a span into alice's packed trace (a traceparent naming
     * its id): the whole trace is hidden from alice, as for a plain row */
    trace_rec forged = owned(a3, f->ta_id, f->uc, "forged", 1, t0 + 70);
    forged.local_id = false;
    assert_int_equal(store_traces_insert(f->st, &forged, 1, 0, 0), STORE_OK);
    assert_int_equal(store_trace_get(f->st, &f->sa, a3, &got, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->sc, a3, &got, &n), STORE_NOT_FOUND);
    /* ... and the other way round: carol's spans packed with carol's,
     * into a trace id of alice's own row */
    char c2[33];
    local_id(f, 7, 7, c2);
    trace_rec into[2] = {owned(c2, f->ta_id, f->uc, "carol two", 1, t0 + 80),
                         owned(far, f->ta_id, f->uc, "carol in far", 1, t0 + 90)};
    assert_int_equal(store_traces_insert(f->st, into, 2, 0, 0), STORE_OK);   /* windows differ: no pack */
    assert_int_equal(store_trace_get(f->st, &f->sa, far, &got, &n), STORE_NOT_FOUND);
    read_one(f, &f->sa, a2, "alice two", 2);   /* the rest of the pack is still hers */

    /* Erasure takes alice's packs with her rows. */
    assert_int_equal(store_user_delete(f->st, &f->ta, f->ua), STORE_OK);
    assert_int_equal(store_trace_get(f->st, &f->ta, a2, &got, &n), STORE_NOT_FOUND);
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces WHERE id_window <> 0"), 0);
    read_one(f, &f->sc, c1, "carol one", 1);
}

static void test_pack_bounds_and_prune(void **state)
{
    fx *f = *state;
    /* 600 traces of alice in one window: packs of at most
     * TRACE_PACK_MAX_TRACES, every trace read back */
    enum { N = 600 };
    trace_rec *rows = calloc(N, sizeof *rows);
    char (*ids)[33] = calloc(N, 33);
    int64_t t0 = f->now_ms * 1000000LL;
    for (int i = 0; i < N; i++) {
        local_id(f, i % 9, (unsigned)i, ids[i]);
        rows[i] = owned(ids[i], f->ta_id, f->ua, "a span", 1, t0 + i);
    }
    assert_int_equal(store_traces_insert(f->st, rows, N, 0, 0), STORE_OK);
    long long packs = (N + TRACE_PACK_MAX_TRACES - 1) / TRACE_PACK_MAX_TRACES;
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces"), packs);
    assert_int_equal(db_count(f, "SELECT max(length(spans)) FROM traces") <= (long long)TRACE_PACK_MAX_BYTES, 1);
    for (int i = 0; i < N; i += 37) read_one(f, &f->sa, ids[i], "a span", 1);
    read_one(f, &f->sa, ids[N - 1], "a span", 1);

    /* Big blobs: a pack stays under TRACE_PACK_MAX_BYTES; a blob bigger
     * than that goes alone. */
    size_t big = TRACE_PACK_MAX_BYTES / 3;
    char *blob = malloc(TRACE_PACK_MAX_BYTES + 2);
    memset(blob, 'x', TRACE_PACK_MAX_BYTES + 1);
    blob[TRACE_PACK_MAX_BYTES + 1] = '\0';
    trace_rec bigs[5];
    char bid[5][33];
    for (int i = 0; i < 5; i++) {
        local_id(f, 300, 1000u + (unsigned)i, bid[i]);
        bigs[i] = owned(bid[i], f->ta_id, f->uc, blob, 1, t0 + i);
        bigs[i].blob_len = i == 4 ? TRACE_PACK_MAX_BYTES + 1 : big;
    }
    long long before = db_count(f, "SELECT count(*) FROM traces");
    assert_int_equal(store_traces_insert(f->st, bigs, 5, 0, 0), STORE_OK);
    /* two of a third each fit (with the pack's own bytes), the third does not */
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces") - before, 3);
    trace_rec *got;
    size_t n;
    assert_int_equal(store_trace_get(f->st, &f->sc, bid[4], &got, &n), STORE_OK);
    assert_int_equal(got[0].blob_len, TRACE_PACK_MAX_BYTES + 1);
    store_free_traces(got, n);
    assert_int_equal(store_trace_get(f->st, &f->sc, bid[2], &got, &n), STORE_OK);
    assert_int_equal(got[0].blob_len, big);
    store_free_traces(got, n);

    /* Keeping the newest spans deletes whole packs, oldest first. */
    assert_int_equal(store_traces_insert(f->st, NULL, 0, 0, 10), STORE_OK);
    assert_int_equal(store_trace_get(f->st, &f->sa, ids[0], &got, &n), STORE_NOT_FOUND);
    assert_int_equal(store_trace_get(f->st, &f->sc, bid[4], &got, &n), STORE_OK);
    store_free_traces(got, n);
    /* and by age: every row ended before the cutoff */
    assert_int_equal(store_traces_insert(f->st, NULL, 0, t0 + 1000000000000LL, 0), STORE_OK);
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces"), 0);
    free(blob);
    free(ids);
    free(rows);
}

/* Packs are written compressed, read back whole, and a pack written
 * before compression (version 0x01) still reads. */
static void test_pack_sealed_in_store(void **state)
{
    fx *f = *state;
    enum { N = 100 };
    trace_rec rows[N];
    char ids[N][33], *blobs[N];
    int64_t t0 = f->now_ms * 1000000LL;
    size_t raw = 4;
    for (int i = 0; i < N; i++) {
        local_id(f, i % 9, (unsigned)i, ids[i]);
        blobs[i] = trace_like_blob((unsigned)i);
        rows[i] = owned(ids[i], f->ta_id, f->ua, blobs[i], 5, t0 + i);
        raw += trace_pack_entry_size(&rows[i]);
    }
    assert_int_equal(store_traces_insert(f->st, rows, N, 0, 0), STORE_OK);
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces"), 1);
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces WHERE substr(spans, 1, 4) = X'42544B02'"), 1);
    assert_true(db_count(f, "SELECT length(spans) FROM traces") < (long long)raw / 2);
    for (int i = 0; i < N; i++) read_one(f, &f->sa, ids[i], blobs[i], 5);

    /* an uncompressed pack, as this store wrote them before */
    char old1[33], old2[33];
    local_id(f, 60, 1, old1);
    local_id(f, 61, 2, old2);
    trace_rec olds[2] = {owned(old1, f->ta_id, f->ua, "old one", 2, t0 + 200),
                         owned(old2, f->ta_id, f->ua, "old two", 3, t0 + 201)};
    buf b;
    buf_init(&b);
    trace_pack_begin(&b);
    trace_pack_add(&b, &olds[0]);
    trace_pack_add(&b, &olds[1]);
    size_t sql_len = 512 + 2 * b.len;
    char *sql = malloc(sql_len);
    int at = snprintf(sql, sql_len,
                      "INSERT INTO traces (seq, trace_id, tenant_id, user_id, start_ns, end_ns, root_name,"
                      " status, span_count, spans, id_window) VALUES ((SELECT max(seq) FROM traces) + 5, '',"
                      " '%s', '%s', %lld, %lld, '', 0, 5, X'",
                      f->ta_id, f->ua, (long long)(t0 + 200), (long long)(t0 + 701));
    for (size_t i = 0; i < b.len; i++) at += snprintf(sql + at, sql_len - (size_t)at, "%02X", (unsigned char)b.data[i]);
    snprintf(sql + at, sql_len - (size_t)at, "', %lld)", (long long)trace_pack_window(old1));
    db_exec(f, sql);
    read_one(f, &f->sa, old2, "old two", 3);
    read_one(f, &f->sa, old1, "old one", 2);
    trace_rec *got;
    size_t n;
    assert_int_equal(store_trace_get(f->st, &f->sc, old1, &got, &n), STORE_NOT_FOUND);
    free(sql);
    buf_free(&b);
    for (int i = 0; i < N; i++) free(blobs[i]);
}

/* A corrupt pack fails the reads of its window (it might hold a foreign
 * record that must hide a trace), and only those. */
static void test_pack_corrupt(void **state)
{
    fx *f = *state;
    char p1[33], p2[33], other[33];
    local_id(f, 1, 1, p1);
    local_id(f, 2, 2, p2);
    local_id(f, 40, 3, other);
    int64_t t0 = f->now_ms * 1000000LL;
    trace_rec rows[3] = {owned(p1, f->ta_id, f->ua, "one", 1, t0), owned(p2, f->ta_id, f->ua, "two", 1, t0 + 1),
                         owned(other, f->ta_id, f->ua, "other", 1, t0 + 2)};
    assert_int_equal(store_traces_insert(f->st, rows, 3, 0, 0), STORE_OK);
    read_one(f, &f->sa, p1, "one", 1);
    /* the magic right, an entry cut short */
    db_exec(f, "UPDATE traces SET spans = substr(spans, 1, 30) WHERE id_window <> 0");
    trace_rec *got;
    size_t n;
    assert_int_equal(store_trace_get(f->st, &f->sa, p1, &got, &n), STORE_ERROR);
    assert_null(got);
    assert_int_equal(store_trace_get(f->st, &f->sa, p2, &got, &n), STORE_ERROR);
    read_one(f, &f->sa, other, "other", 1);   /* another window */
}

/* A store from before packs (version 25: no id_window) is migrated, its
 * trace rows still read, and packs written and read beside them. */
static void test_pack_migration(void **state)
{
    fx *f = *state;
    char old[33], p1[33], p2[33];
    local_id(f, 1, 1, old);
    local_id(f, 2, 2, p1);
    local_id(f, 3, 3, p2);
    int64_t t0 = f->now_ms * 1000000LL;
    trace_rec before = owned(old, f->ta_id, f->ua, "from before", 2, t0);
    assert_int_equal(store_traces_insert(f->st, &before, 1, 0, 0), STORE_OK);
    store_close(f->st);
    db_exec(f, "BEGIN; DROP INDEX traces_window; ALTER TABLE traces DROP COLUMN id_window;"
               " PRAGMA user_version = 25; COMMIT;");
    char err[256];
    f->st = store_open(f->dir, err, sizeof err);
    assert_non_null(f->st);
    assert_true(store_schema_version(f->st) >= 26);   /* packs came in 26 */
    read_one(f, &f->sa, old, "from before", 2);
    trace_rec rows[2] = {owned(p1, f->ta_id, f->ua, "packed one", 1, t0 + 1),
                         owned(p2, f->ta_id, f->ua, "packed two", 1, t0 + 2)};
    assert_int_equal(store_traces_insert(f->st, rows, 2, 0, 0), STORE_OK);
    assert_int_equal(db_count(f, "SELECT count(*) FROM traces WHERE id_window <> 0"), 1);
    read_one(f, &f->sa, p2, "packed two", 1);
    read_one(f, &f->sa, old, "from before", 2);
}

/* The read finds a trace's rows by its id's index and packs by the
 * window's, never by reading the table through. */
static void test_pack_read_plan(void **state)
{
    fx *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/brigade.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
        "EXPLAIN QUERY PLAN SELECT trace_id, tenant_id, user_id, start_ns, end_ns, root_name, status,"
        " span_count, spans, (tenant_id = ?2 AND (?3 = '' OR user_id = ?3)) AS mine, id_window, seq"
        " FROM traces WHERE trace_id = ?1 OR (id_window = ?5 AND id_window <> 0) LIMIT ?4",
        -1, &s, NULL), SQLITE_OK);
    char plan[1024] = "";
    while (sqlite3_step(s) == SQLITE_ROW) {
        strncat(plan, (const char *)sqlite3_column_text(s, 3), sizeof plan - strlen(plan) - 2);
        strcat(plan, "|");
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_non_null(strstr(plan, "MULTI-INDEX OR"));
    assert_non_null(strstr(plan, "traces_trace"));
    assert_non_null(strstr(plan, "traces_window"));
    assert_null(strstr(plan, "SCAN traces"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_round_trip),
        cmocka_unit_test(test_pack_sealed),
        cmocka_unit_test(test_pack_window),
        cmocka_unit_test_setup_teardown(test_pack_in_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_bounds_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_read_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_sealed_in_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
