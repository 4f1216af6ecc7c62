/* test_reserve_journal.c — reservations that survive a crash
 * (govern/reserve_journal.h) and acts that carry their audit entry
 * (obs/audit.h obs_audit_act_*), on real files and a real SQLite store:
 *
 *   - recovery charges exactly the reservations left open (not those closed
 *     by hand or by a committed usage row), at their reservation, with a
 *     budget.reconcile audit entry, and empties the journal;
 *   - a line cut by the crash is ignored; fields with spaces, '%' and
 *     non-ASCII bytes come back as they went in;
 *   - a reservation whose usage row was committed before its journal
 *     record was closed (or that the reconciliation already charged) is
 *     charged once; ids never repeat across processes;
 *   - compaction keeps exactly the open reservations, does not rewrite a
 *     large open set at every close, and keeps what loop threads append
 *     while it writes the new file;
 *   - an act that fails leaves no entry; one that succeeds has its entry,
 *     with the id the act created filled in late. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "govern/reserve_journal.h"
#include "identity/scope_mint.h"
#include "obs/audit.h"
#include "test_util.h"

typedef struct fixture {
    char   dir[256];
    store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->st = test_store_open(f->dir, sizeof f->dir, "brigade-rj");
    if (!f->st) return -1;
    obs_audit_open(f->st, 0, 0, false);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    obs_audit_close(f->st);
    test_store_close(f->st, f->dir);
    free(f);
    return 0;
}

/* ---- what the ledger and the audit log hold ---- */

typedef struct ledger_sum {
    int64_t cost;
    int     rows;
    char    last_tenant[ID_MAX], last_user[ID_MAX];
} ledger_sum;

static void ledger_add(const char *tenant_id, const char *user_id, const char *key_id, int64_t ts,
                       int64_t cost_nusd, void *arg)
{
    (void)key_id;
    (void)ts;
    ledger_sum *s = arg;
    s->cost += cost_nusd;
    s->rows++;
    snprintf(s->last_tenant, sizeof s->last_tenant, "%s", tenant_id);
    snprintf(s->last_user, sizeof s->last_user, "%s", user_id);
}

static ledger_sum ledger(store *st)
{
    ledger_sum s;
    memset(&s, 0, sizeof s);
    assert_int_equal(store_usage_ledger(st, 0, ledger_add, &s), STORE_OK);
    return s;
}

typedef struct audit_count {
    const char *action;
    int         n;
    char        target[128], details[512];
} audit_count;

static int audit_count_entry(const audit_rec *e, void *arg)
{
    audit_count *c = arg;
    if (e->action && strcmp(e->action, c->action) == 0) {
        c->n++;
        snprintf(c->target, sizeof c->target, "%s", e->target ? e->target : "");
        snprintf(c->details, sizeof c->details, "%s", e->details ? e->details : "");
    }
    return 0;
}

static int audit_skip_checkpoint(const audit_checkpoint *cp, void *arg)
{
    (void)cp;
    (void)arg;
    return 0;
}

static audit_count audited(store *st, const char *action)
{
    audit_count c = {.action = action};
    assert_int_equal(store_audit_scan(st, 1, audit_skip_checkpoint, audit_count_entry, &c), STORE_OK);
    return c;
}

static off_t file_size(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, RESERVE_JOURNAL_FILE);
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static reserve_entry entry(const char *user, int64_t cost)
{
    reserve_entry e = {"ten_a", user, "key_a", "model-x", "req", cost, 100};
    return e;
}

/* ---- recovery ---- */

/* What recover_each told of: the rows it committed (Redis gets them). */
typedef struct told { int n; int64_t cost; char user[64]; } told;

static void on_charged(const usage_rec *row, void *arg)
{
    told *t = arg;
    t->n++;
    t->cost += row->cost_nusd;
    snprintf(t->user, sizeof t->user, "%s", row->user_id);
}

static void test_recovery_charges_only_what_is_open(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
    assert_non_null(j);
    reserve_entry a = entry("usr_a", 1000), b = entry("usr_b", 2000), c = entry("usr_c", 4000);
    uint64_t ia = reserve_journal_open_entry(j, &a);
    uint64_t ib = reserve_journal_open_entry(j, &b);
    uint64_t ic = reserve_journal_open_entry(j, &c);
    assert_true(ia && ib && ic && ia != ib && ib != ic);
    assert_int_equal(reserve_journal_open_count(j), 3);
    reserve_journal_close_entry(j, ia);                 /* delivered nothing */
    usage_rec row;
    memset(&row, 0, sizeof row);
    row.reservation_id = ib;                            /* its usage row committed */
    reserve_journal_on_usage_committed(j, &row, 1);
    assert_int_equal(reserve_journal_open_count(j), 1);
    reserve_journal_close(j);                           /* the "crash": c still open */

    reserve_recovery r;
    told t = {0};
    assert_int_equal(reserve_journal_recover_each(f->st, f->dir, &r, on_charged, &t, err, sizeof err), 0);
    assert_int_equal(r.open, 1);
    assert_int_equal(r.charged_nusd, 4000);
    assert_int_equal(r.torn, 0);
    assert_int_equal(t.n, 1);                           /* exactly what it charged */
    assert_int_equal(t.cost, 4000);
    assert_string_equal(t.user, "usr_c");
    ledger_sum s = ledger(f->st);
    assert_int_equal(s.rows, 1);
    assert_int_equal(s.cost, 4000);
    assert_string_equal(s.last_user, "usr_c");
    audit_count ac = audited(f->st, "budget.reconcile");
    assert_int_equal(ac.n, 1);
    assert_non_null(strstr(ac.details, "\"reservations\":1"));
    assert_int_equal(file_size(f->dir), 0);             /* emptied */

    /* a second start finds nothing more to charge */
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.open, 0);
    assert_int_equal(ledger(f->st).cost, 4000);
    assert_int_equal(audited(f->st, "budget.reconcile").n, 1);
}

static char *read_journal(const char *dir, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, RESERVE_JOURNAL_FILE);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = calloc(1, 1 << 16);
    *len = fread(buf, 1, (1 << 16) - 1, fp);
    fclose(fp);
    return buf;
}

static void write_journal(const char *dir, const char *buf, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, RESERVE_JOURNAL_FILE);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
}

/* The crash between the writer's COMMIT of a usage row and the close of its
 * journal record: the row is in the ledger, the record still open. It is
 * charged once (its row's actual cost), not again at its reservation —
 * charging it twice put a budget at its cap over it (crash_loop e2e). */
static void test_a_row_committed_before_its_close_is_charged_once(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
    assert_non_null(j);
    reserve_entry a = entry("usr_a", 9000), b = entry("usr_b", 2000);
    uint64_t ia = reserve_journal_open_entry(j, &a);
    uint64_t ib = reserve_journal_open_entry(j, &b);
    assert_true(ia && ib);
    usage_rec row;
    memset(&row, 0, sizeof row);
    row.ts = time(NULL);
    snprintf(row.tenant_id, sizeof row.tenant_id, "ten_a");
    snprintf(row.user_id, sizeof row.user_id, "usr_a");
    row.cost_nusd = 500;                                /* what a actually cost */
    row.status = 200;
    row.reservation_id = ia;
    assert_int_equal(store_usage_insert_now(f->st, &row, 1), STORE_OK);
    reserve_journal_close(j);                           /* the "crash": a's close never written */

    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.in_ledger, 1);
    assert_int_equal(r.open, 1);                        /* only b, in flight */
    assert_int_equal(r.charged_nusd, 2000);
    ledger_sum s = ledger(f->st);
    assert_int_equal(s.rows, 2);
    assert_int_equal(s.cost, 500 + 2000);
}

/* A crash after the reconciliation committed but before the journal was
 * emptied: the next start reads the same open records, finds their ids in
 * the ledger (the reconciliation's rows keep them) and charges nothing. */
static void test_a_crash_before_the_journal_is_emptied_charges_nothing_again(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
    assert_non_null(j);
    reserve_entry c = entry("usr_c", 4000);
    assert_true(reserve_journal_open_entry(j, &c) != 0);
    reserve_journal_close(j);
    size_t len;
    char *before = read_journal(f->dir, &len);
    assert_true(len > 0);

    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.charged_nusd, 4000);
    write_journal(f->dir, before, len);                 /* as if the truncate never happened */
    free(before);
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.open, 0);
    assert_int_equal(r.in_ledger, 1);
    assert_int_equal(r.charged_nusd, 0);
    assert_int_equal(ledger(f->st).cost, 4000);
    assert_int_equal(audited(f->st, "budget.reconcile").n, 1);
}

/* Ids are unique across processes: a later process never reuses an id a
 * ledger row may already carry. */
static void test_ids_differ_between_processes(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_journal *j1 = reserve_journal_open(f->dir, err, sizeof err);
    reserve_entry a = entry("usr_a", 1);
    uint64_t i1 = reserve_journal_open_entry(j1, &a);
    reserve_journal_close(j1);
    reserve_journal *j2 = reserve_journal_open(f->dir, err, sizeof err);
    uint64_t i2 = reserve_journal_open_entry(j2, &a);
    reserve_journal_close(j2);
    assert_true(i1 >= (UINT64_C(1) << 32) && i2 >= (UINT64_C(1) << 32));
    assert_true(i1 < (UINT64_C(1) << 62) && i2 < (UINT64_C(1) << 62));
    assert_true(i1 != i2 && i1 + 1 != i2);
}

static void test_recovery_ignores_a_torn_line_and_keeps_odd_fields(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
    assert_non_null(j);
    reserve_entry e = {"ten with space", "usr%25 caf\xc3\xa9", "", "m/x:1", "a b\nc", 777, 5};
    assert_true(reserve_journal_open_entry(j, &e) != 0);
    reserve_journal_close(j);
    /* the crash cut the next record in the middle of its write */
    char path[512];
    snprintf(path, sizeof path, "%s/%s", f->dir, RESERVE_JOURNAL_FILE);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    const char torn[] = "R 99 1767225600 5000 5 =ten_a =usr";
    assert_int_equal(write(fd, torn, sizeof torn - 1), (ssize_t)(sizeof torn - 1));
    close(fd);

    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.open, 1);
    assert_int_equal(r.torn, 1);
    ledger_sum s = ledger(f->st);
    assert_int_equal(s.cost, 777);
    assert_string_equal(s.last_tenant, "ten with space");
    assert_string_equal(s.last_user, "usr%25 caf\xc3\xa9");
}

/* A process killed while serving leaves the file as the mapping made it:
 * the records, then the allocated zeros (reserve_journal.c). Recovery reads
 * the records and stops at the zeros, without counting them as torn. */
static void test_a_killed_process_leaves_records_then_zeros(void **state)
{
    fixture *f = *state;
    char err[256];
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
        if (!j) _exit(2);
        reserve_entry a = entry("usr_a", 1000), b = entry("usr_b", 2000), c = entry("usr_c", 4000);
        uint64_t ia = reserve_journal_open_entry(j, &a);
        if (!ia || !reserve_journal_open_entry(j, &b) || !reserve_journal_open_entry(j, &c)) _exit(3);
        reserve_journal_close_entry(j, ia);
        kill(getpid(), SIGKILL);                        /* no close, no trim */
        _exit(4);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(file_size(f->dir) >= 1 << 20);          /* allocated ahead, zeros past the records */

    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.open, 2);
    assert_int_equal(r.charged_nusd, 6000);
    assert_int_equal(r.torn, 0);
    assert_int_equal(file_size(f->dir), 0);
}

/* A journal opened on a file that still holds records and zeros (recovery
 * failed to empty it) appends after the records, not after the zeros where
 * a reader would never see them; a record cut mid-line is ended first, so
 * the next one is whole. */
static void test_reopen_appends_after_the_records(void **state)
{
    fixture *f = *state;
    char err[256];
    char content[4096];
    memset(content, 0, sizeof content);
    const char recs[] = "R 77 1767225600 3000 5 =ten_a =usr_x =key_a =m =req\nR 99 1767225600 5000 5 =ten_a =usr";
    memcpy(content, recs, sizeof recs - 1);
    write_journal(f->dir, content, sizeof content);
    reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
    assert_non_null(j);
    reserve_entry b = entry("usr_b", 2000);
    assert_true(reserve_journal_open_entry(j, &b) != 0);
    reserve_journal_close(j);
    size_t len;
    char *text = read_journal(f->dir, &len);
    assert_int_equal(strlen(text), len);                /* trimmed: no zeros left */
    free(text);

    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.open, 2);                        /* 77 and usr_b's */
    assert_int_equal(r.charged_nusd, 5000);
    assert_int_equal(r.torn, 1);                        /* 99, cut */
}

static void test_no_journal_is_nothing_to_charge(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.open, 0);
    assert_int_equal(ledger(f->st).rows, 0);
    assert_int_equal(audited(f->st, "budget.reconcile").n, 0);
}

/* Settle ids as the store's writer does after a commit: one call for a
 * batch of usage rows. */
static void settle(reserve_journal *j, const uint64_t *ids, size_t n)
{
    usage_rec rows[64];
    while (n) {
        size_t k = n < 64 ? n : 64;
        memset(rows, 0, k * sizeof rows[0]);
        for (size_t i = 0; i < k; i++) rows[i].reservation_id = ids[i];
        reserve_journal_on_usage_committed(j, rows, k);
        ids += k;
        n -= k;
    }
}

static ino_t journal_inode(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, RESERVE_JOURNAL_FILE);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_ino;
}

static void test_compaction_keeps_exactly_the_open_ones(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
    assert_non_null(j);
    /* enough records to pass the compaction threshold several times; every
     * 1000th stays open; most are settled as the writer settles them, a
     * few closed as a call that delivered nothing is */
    int64_t open_cost = 0;
    size_t kept = 0, compactions = 0, pending = 0;
    uint64_t batch[64];
    ino_t ino = journal_inode(f->dir);
    for (int i = 0; compactions < 2 || i % 1000 != 1; i++) {
        assert_true(i < 2000000);
        reserve_entry e = entry("usr_many", 1 + i % 7);
        uint64_t id = reserve_journal_open_entry(j, &e);
        assert_true(id != 0);
        if (i % 1000 == 0) {
            open_cost += e.cost_nusd;
            kept++;
        } else if (i % 10 == 0) {
            reserve_journal_close_entry(j, id);
        } else {
            batch[pending++] = id;
            if (pending == 64) {
                settle(j, batch, pending);
                pending = 0;
            }
        }
        if (journal_inode(f->dir) != ino) {
            compactions++;
            ino = journal_inode(f->dir);
        }
    }
    settle(j, batch, pending);
    assert_int_equal(reserve_journal_open_count(j), kept);
    /* compacted, and so far smaller than all that was written */
    assert_true(compactions >= 2);
    assert_true(file_size(f->dir) < (off_t)RESERVE_JOURNAL_COMPACT_BYTES);
    reserve_journal_close(j);
    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.open, kept);
    assert_int_equal(r.charged_nusd, open_cost);
    assert_int_equal(ledger(f->st).cost, open_cost);
}

/* The store's writer far behind: more reservations open than the
 * compaction threshold holds. Closing a few of them must not rewrite the
 * whole file at every close (it did: a writer rewriting a 21 MB journal
 * for each batch it settled, its queue full, the server refusing every
 * call); once the open ones are under half the file, one rewrite. */
static void test_a_large_open_set_is_not_rewritten_at_every_close(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
    assert_non_null(j);
    /* a long request id: ~220-byte lines, so 90 000 hold ~20 MB */
    char req[160];
    memset(req, 'r', sizeof req - 1);
    req[sizeof req - 1] = '\0';
    enum { N = 90000 };
    uint64_t *ids = malloc(N * sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        reserve_entry e = entry("usr_behind", 5);
        e.request_id = req;
        ids[i] = reserve_journal_open_entry(j, &e);
        assert_true(ids[i] != 0);
    }
    assert_true(file_size(f->dir) > (off_t)RESERVE_JOURNAL_COMPACT_BYTES);
    ino_t ino = journal_inode(f->dir);
    int rewrites = 0;
    for (int i = 0; i < 40; i++) {                      /* forty commits of one row */
        settle(j, &ids[i], 1);
        if (journal_inode(f->dir) != ino) {
            rewrites++;
            ino = journal_inode(f->dir);
        }
    }
    assert_int_equal(rewrites, 0);                      /* the open ones are most of the file */
    /* settle all but 1 000 of the rest, as commits of 64 rows: the file is
     * rewritten once the open ones are under half of it — once or twice
     * in all, not at every commit past the threshold */
    for (int i = 40; i < N - 1000; i += 64) {
        settle(j, &ids[i], (size_t)(N - 1000 - i < 64 ? N - 1000 - i : 64));
        if (journal_inode(f->dir) != ino) {
            rewrites++;
            ino = journal_inode(f->dir);
        }
    }
    assert_true(rewrites >= 1 && rewrites <= 2);
    assert_true(file_size(f->dir) < (off_t)RESERVE_JOURNAL_COMPACT_BYTES);
    assert_int_equal(reserve_journal_open_count(j), 1000);
    reserve_journal_close(j);
    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.open, 1000);
    assert_int_equal(r.charged_nusd, 5 * 1000);
    free(ids);
}

/* Loop threads go on opening and closing reservations while the writer
 * compacts (the file is written without the lock): what they append
 * meanwhile must reach the new file. */
typedef struct racer {
    reserve_journal *j;
    volatile int stop;
    size_t kept;
    int64_t kept_cost;
} racer;

static void *racer_main(void *arg)
{
    racer *r = arg;
    for (unsigned i = 0; !r->stop; i++) {
        reserve_entry e = entry("usr_loop", 3);
        uint64_t id = reserve_journal_open_entry(r->j, &e);
        if (!id) continue;
        if (i % 2 == 0) {
            r->kept++;
            r->kept_cost += e.cost_nusd;
        } else {
            reserve_journal_close_entry(r->j, id);
        }
    }
    return NULL;
}

static void test_records_appended_during_a_compaction_are_kept(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
    assert_non_null(j);
    racer rc = {.j = j};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, racer_main, &rc), 0);
    /* the writer: reservations opened and settled in batches, until the
     * file has been rewritten several times under the racer */
    size_t kept = 0, compactions = 0;
    uint64_t batch[64];
    ino_t ino = journal_inode(f->dir);
    for (int i = 0; compactions < 4 && i < 2000000; i++) {
        reserve_entry e = entry("usr_writer", 7);
        uint64_t id = reserve_journal_open_entry(j, &e);
        assert_true(id != 0);
        if (i % 500 == 0) {
            kept++;
            continue;
        }
        batch[i % 64] = id;
        if (i % 64 == 63) settle(j, batch, 64);
        if (i % 64 == 63 && journal_inode(f->dir) != ino) {
            compactions++;
            ino = journal_inode(f->dir);
        }
    }
    rc.stop = 1;
    pthread_join(t, NULL);
    assert_true(compactions >= 4);
    size_t open = reserve_journal_open_count(j);
    reserve_journal_close(j);
    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    /* every reservation still open in memory is open in the file: none of
     * the racer's lost in a rewrite (a lost C line would show as one too many) */
    assert_int_equal(r.open, open);
    assert_true(r.open >= kept + rc.kept);
    assert_int_equal(r.charged_nusd, (int64_t)(r.open - rc.kept) * 7 + rc.kept_cost);
}

/* ---- an act and its audit entry ---- */

static void test_act_and_entry_commit_together(void **state)
{
    fixture *f = *state;
    scope admin;
    scope_mint_server_admin(&admin);
    char id[ID_MAX] = "", late[ID_MAX] = "";
    obs_audit_act a;
    obs_audit_act_begin(&a, f->st, &admin, "", "tenant.create", NULL, NULL);
    obs_audit_act_target(&a, late);                      /* read when the entry is appended */
    obs_audit_act_tenant(&a, late);
    snprintf(late, sizeof late, "ten_filled_late");      /* as identity fills its out record */
    assert_int_equal(test_store_tenant(f->st, &admin, "acme", id), STORE_OK);
    assert_int_equal(obs_audit_act_end(&a), STORE_OK);
    audit_count c = audited(f->st, "tenant.create");
    assert_int_equal(c.n, 1);
    assert_string_equal(c.target, "ten_filled_late");

    /* the same name again: the act fails, and so no entry is written */
    char id2[ID_MAX] = "";
    obs_audit_act_begin(&a, f->st, &admin, "", "tenant.create", NULL, NULL);
    obs_audit_act_target(&a, id2);
    assert_int_equal(test_store_tenant(f->st, &admin, "acme", id2), STORE_CONFLICT);
    assert_int_not_equal(obs_audit_act_end(&a), STORE_OK);
    assert_int_equal(audited(f->st, "tenant.create").n, 1);

    /* an act that makes no write at all: no entry either, and the next
     * write of the thread carries none */
    obs_audit_act_begin(&a, f->st, &admin, "", "tenant.create", "nothing", NULL);
    assert_int_not_equal(obs_audit_act_end(&a), STORE_OK);
    char id3[ID_MAX];
    assert_int_equal(test_store_tenant(f->st, &admin, "other", id3), STORE_OK);
    assert_int_equal(audited(f->st, "tenant.create").n, 1);
}

/* The writer settles a whole batch in one call, thousands of rows at
 * saturation, some without a reservation: every one is closed, though the
 * journal's lock is taken a chunk at a time (reserve_journal.c). */
static void test_a_batch_of_many_rows_closes_every_reservation(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
    assert_non_null(j);
    enum { N = 1000 };
    usage_rec *rows = calloc(N + N / 5, sizeof *rows);
    size_t k = 0;
    for (int i = 0; i < N; i++) {
        reserve_entry e = entry("usr_batch", 1);
        rows[k++].reservation_id = reserve_journal_open_entry(j, &e);
        if (i % 5 == 0) k++;   /* a row that reserved nothing: id 0 */
    }
    int64_t open_cost = 0;
    for (int i = 0; i < 3; i++) {
        reserve_entry e = entry("usr_stays", 100 + i);
        assert_true(reserve_journal_open_entry(j, &e) != 0);
        open_cost += e.cost_nusd;
    }
    reserve_journal_on_usage_committed(j, rows, k);
    assert_int_equal(reserve_journal_open_count(j), 3);
    reserve_journal_close(j);
    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.open, 3);
    assert_int_equal(r.charged_nusd, open_cost);
    free(rows);
}

/* Every gateway call opens a record and closes it: 200 000 of them,
 * a few open at a time, must not grow the open set's table. It was
 * rebuilt at twice its size whenever tombstones filled it, so it grew
 * with the count ever opened (4 M slots after 2 M calls). */
static void test_the_open_set_stays_small_under_churn(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
    assert_non_null(j);
    enum { OPEN_AT_ONCE = 64, CALLS = 200000 };
    uint64_t ids[OPEN_AT_ONCE] = {0};
    reserve_entry e = entry("usr_churn", 1);
    for (int i = 0; i < CALLS; i++) {
        size_t k = (size_t)i % OPEN_AT_ONCE;
        if (ids[k]) reserve_journal_close_entry(j, ids[k]);
        ids[k] = reserve_journal_open_entry(j, &e);
        assert_true(ids[k] != 0);
    }
    assert_int_equal(reserve_journal_open_count(j), OPEN_AT_ONCE);
    assert_true(reserve_journal_open_slots(j) <= 512);
    /* and a large open set still fits, then shrinks back once closed */
    uint64_t *many = calloc(5000, sizeof *many);
    for (int i = 0; i < 5000; i++) many[i] = reserve_journal_open_entry(j, &e);
    assert_int_equal(reserve_journal_open_count(j), OPEN_AT_ONCE + 5000);
    for (int i = 0; i < 5000; i++) reserve_journal_close_entry(j, many[i]);
    for (int i = 0; i < 20000; i++) {
        size_t k = (size_t)i % OPEN_AT_ONCE;
        reserve_journal_close_entry(j, ids[k]);
        ids[k] = reserve_journal_open_entry(j, &e);
    }
    assert_int_equal(reserve_journal_open_count(j), OPEN_AT_ONCE);
    assert_true(reserve_journal_open_slots(j) <= 512);
    free(many);
    reserve_journal_close(j);
    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.open, OPEN_AT_ONCE);
}

/* Loops opening and closing calls while the writer settles batches: the
 * lock now changes hands between chunks, and nothing is lost or closed
 * twice. */
typedef struct churn {
    reserve_journal *j;
    int n;
} churn;

static void *churn_singles(void *arg)
{
    churn *c = arg;
    for (int i = 0; i < c->n; i++) {
        reserve_entry e = entry("usr_single", 1);
        uint64_t id = reserve_journal_open_entry(c->j, &e);
        assert_true(id != 0);
        reserve_journal_close_entry(c->j, id);
    }
    return NULL;
}

static void test_closing_batches_while_calls_open_and_close(void **state)
{
    fixture *f = *state;
    char err[256];
    reserve_journal *j = reserve_journal_open(f->dir, err, sizeof err);
    assert_non_null(j);
    churn c = {j, 20000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, churn_singles, &c), 0);
    enum { BATCH = 2000 };
    usage_rec *rows = calloc(BATCH, sizeof *rows);
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < BATCH; i++) {
            reserve_entry e = entry("usr_batched", 1);
            rows[i].reservation_id = reserve_journal_open_entry(j, &e);
        }
        reserve_journal_on_usage_committed(j, rows, BATCH);
    }
    pthread_join(t, NULL);
    assert_int_equal(reserve_journal_open_count(j), 0);
    reserve_journal_close(j);
    reserve_recovery r;
    assert_int_equal(reserve_journal_recover(f->st, f->dir, &r, err, sizeof err), 0);
    assert_int_equal(r.open, 0);
    assert_int_equal(r.charged_nusd, 0);
    free(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recovery_charges_only_what_is_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_ignores_a_torn_line_and_keeps_odd_fields, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_killed_process_leaves_records_then_zeros, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_appends_after_the_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_journal_is_nothing_to_charge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_row_committed_before_its_close_is_charged_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_crash_before_the_journal_is_emptied_charges_nothing_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ids_differ_between_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_keeps_exactly_the_open_ones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_large_open_set_is_not_rewritten_at_every_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_records_appended_during_a_compaction_are_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_act_and_entry_commit_together, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_of_many_rows_closes_every_reservation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closing_batches_while_calls_open_and_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_open_set_stays_small_under_churn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
