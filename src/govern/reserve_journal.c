/* reserve_journal.c — reservations that survive a crash: the append-only
 * journal, its in-memory open set, compaction, and the reconciliation at
 * start. The why and the format are in reserve_journal.h. */
#include "govern/reserve_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "obs/audit.h"
#include "util/log.h"
#include "util/strfmt.h"
#include "util/timeutil.h"

/* One record's line is at most this long (five escaped fields of at most
 * 128 bytes, three numbers): longer fields are cut, never the line. */
#define RJ_LINE_MAX 2048
#define RJ_FIELD_MAX 128

/* ---- the open set: id → the record's line, open addressing ---- */

#define RJ_EMPTY 0
#define RJ_GONE UINT64_MAX

typedef struct rj_slot {
    uint64_t id;
    char    *line;                  /* the R line, newline included */
    size_t   len;                   /* its length (0 where line is not text: recovery's use) */
} rj_slot;

typedef struct rj_set {
    rj_slot *slots;
    size_t   cap, used, live;       /* used counts tombstones too */
    uint64_t live_bytes;            /* the live slots' lengths: what a compaction writes */
} rj_set;

static size_t rj_hash(uint64_t id, size_t cap)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)id & (cap - 1);
}

/* Rebuild the table without its tombstones, sized from the live slots
 * alone: at most a quarter full after, so at least a quarter of the table
 * is put before the next rebuild (its O(cap) cost amortised). Sizing it
 * from the old capacity instead doubled it at every rebuild: every
 * gateway call opens and closes one record, so the tombstones alone
 * triggered the rebuilds, and at saturation the table grew without bound
 * (millions of slots after a minute, 24 bytes each, zeroed pages faulted
 * in on the loops and a compaction walking them all). */
static bool rj_set_rehash(rj_set *s)
{
    size_t cap = 256;
    while (cap < s->live * 4) cap *= 2;
    rj_slot *n = calloc(cap, sizeof *n);
    if (!n) return false;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].id == RJ_EMPTY || s->slots[i].id == RJ_GONE) continue;
        size_t h = rj_hash(s->slots[i].id, cap);
        while (n[h].id != RJ_EMPTY) h = (h + 1) & (cap - 1);
        n[h] = s->slots[i];
    }
    free(s->slots);
    s->slots = n;
    s->cap = cap;
    s->used = s->live;
    return true;
}

static bool rj_set_put(rj_set *s, uint64_t id, char *line, size_t len)
{
    if ((s->used + 1) * 2 > s->cap && !rj_set_rehash(s)) return false;
    size_t h = rj_hash(id, s->cap);
    while (s->slots[h].id != RJ_EMPTY && s->slots[h].id != RJ_GONE) h = (h + 1) & (s->cap - 1);
    if (s->slots[h].id == RJ_EMPTY) s->used++;
    s->slots[h].id = id;
    s->slots[h].line = line;
    s->slots[h].len = len;
    s->live++;
    s->live_bytes += len;
    return true;
}

/* Remove id; its line (the caller frees it: outside the journal's lock),
 * or NULL if it was not there. */
static char *rj_set_take(rj_set *s, uint64_t id)
{
    if (!s->cap) return NULL;
    size_t h = rj_hash(id, s->cap);
    for (size_t n = 0; n < s->cap && s->slots[h].id != RJ_EMPTY; n++, h = (h + 1) & (s->cap - 1)) {
        if (s->slots[h].id != id) continue;
        char *line = s->slots[h].line;
        s->slots[h].line = NULL;
        s->slots[h].id = RJ_GONE;
        s->live--;
        s->live_bytes -= s->slots[h].len;
        s->slots[h].len = 0;
        return line;
    }
    return NULL;
}

static void rj_set_free(rj_set *s)
{
    for (size_t i = 0; i < s->cap; i++) free(s->slots[i].line);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

/* ---- fields ---- */

/* Percent-escape a field so a line is split by spaces alone; "=" leads it
 * so that an empty field still has a token. */
static bool rj_plain(unsigned char c) { return c > 0x20 && c < 0x7f && c != '%'; }

static size_t rj_escape(char *out, size_t cap, const char *in)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    if (cap > 3 * RJ_FIELD_MAX + 4 && in) {
        /* Room for the worst case: runs of plain bytes are copied whole
         * (ids are nothing else), the rest escaped; the same bytes as the
         * loop below. This runs on every gateway request. */
        out[n++] = '=';
        size_t i = 0;
        while (i < RJ_FIELD_MAX && in[i]) {
            size_t run = i;
            while (run < RJ_FIELD_MAX && in[run] && rj_plain((unsigned char)in[run])) run++;
            memcpy(out + n, in + i, run - i);
            n += run - i;
            i = run;
            if (i < RJ_FIELD_MAX && in[i]) {
                unsigned char c = (unsigned char)in[i++];
                out[n++] = '%';
                out[n++] = hex[c >> 4];
                out[n++] = hex[c & 15];
            }
        }
        return n;
    }
    if (n < cap) out[n++] = '=';
    for (size_t i = 0; in && in[i] && i < RJ_FIELD_MAX && n + 3 < cap; i++) {
        unsigned char c = (unsigned char)in[i];
        if (rj_plain(c)) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    return n;
}

static int rj_hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Undo rj_escape into out (cap bytes with the NUL). false: not a field. */
static bool rj_unescape(const char *tok, char *out, size_t cap)
{
    if (tok[0] != '=') return false;
    size_t n = 0;
    for (const char *p = tok + 1; *p; p++) {
        char c = *p;
        if (c == '%') {
            int hi = rj_hexval(p[1]), lo = hi < 0 ? -1 : rj_hexval(p[2]);
            if (hi < 0 || lo < 0) return false;
            c = (char)(hi << 4 | lo);
            p += 2;
        }
        if (c == '\0' || n + 1 >= cap) return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

/* ---- the journal while serving ---- */

/* Records are appended by copying them into a shared mapping of the file,
 * not by write(2): a write(2) per metered call was one more system call on
 * the loop thread per request, and one that now and then waited
 * milliseconds for the filesystem to grow the file (docs/benchmarks.md).
 * A store into a MAP_SHARED page is in the kernel's page cache the moment
 * it is made, so it survives the death of the process exactly as a
 * returned write(2) did. The mapping is a window of RJ_WINDOW bytes of the
 * file, allocated on disk first (posix_fallocate: no SIGBUS for a full
 * disk later; a full disk refuses the call, as a failed write(2) did),
 * and moved along as the journal grows. Bytes past the last record are
 * zeros; recovery reads up to the first of them. */
#define RJ_WINDOW (1u << 20)

struct reserve_journal {
    pthread_mutex_t mu;
    int             fd;
    char           *path, *tmp_path;
    uint64_t        next_id;
    uint64_t        bytes;          /* written since the last compaction (its trigger) */
    uint64_t        end;            /* where the next record goes: the records' end */
    char           *map;            /* the window, or NULL */
    uint64_t        map_off;        /* the file offset of map[0] */
    rj_set          open;
    bool            no_compact;     /* a record is on disk but not in the open set */
    bool            compacting;     /* a compaction is writing the new file (without mu) */
};

static char *rj_path(const char *data_dir, const char *name)
{
    size_t n = strlen(data_dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", data_dir, name);
    return p;
}

/* write(2) all of it (a short write is retried; EINTR too). */
static int rj_write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Map the window that holds [off, off + len), allocating its blocks. */
static int rj_map_at(reserve_journal *j, uint64_t off)
{
    if (j->map) munmap(j->map, RJ_WINDOW);
    j->map = NULL;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t start = off & ~(uint64_t)(page > 0 ? page - 1 : 4095);
    int e = posix_fallocate(j->fd, (off_t)start, RJ_WINDOW);
    if (e != 0) {
        errno = e;
        return -1;
    }
    void *m = mmap(NULL, RJ_WINDOW, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, (off_t)start);
    if (m == MAP_FAILED) return -1;
    j->map = m;
    j->map_off = start;
    return 0;
}

/* Append len bytes at the records' end (under j->mu). 0, or -1 with
 * errno and nothing appended. */
static int rj_append(reserve_journal *j, const char *buf, size_t len)
{
    if (!j->map || j->end < j->map_off || j->end + len > j->map_off + RJ_WINDOW) {
        if (rj_map_at(j, j->end) != 0) return -1;
    }
    memcpy(j->map + (j->end - j->map_off), buf, len);
    j->end += len;
    return 0;
}

/* Where the records of an existing file end: at its first zero byte (the
 * allocated, never written part), or at its end. A last line cut by a
 * crash is ended with a newline, so the next record starts a line of its
 * own (the cut one is then read as torn). */
static int rj_find_end(reserve_journal *j)
{
    struct stat sb;
    if (fstat(j->fd, &sb) != 0) return -1;
    char chunk[4096];
    uint64_t off = 0;
    char last = '\n';
    while (off < (uint64_t)sb.st_size) {
        ssize_t n = pread(j->fd, chunk, sizeof chunk, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        const char *z = memchr(chunk, '\0', (size_t)n);
        if (z) {
            off += (uint64_t)(z - chunk);
            if (z > chunk) last = z[-1];
            break;
        }
        off += (uint64_t)n;
        last = chunk[n - 1];
    }
    j->end = j->bytes = off;
    if (last != '\n' && rj_append(j, "\n", 1) != 0) return -1;
    return 0;
}

reserve_journal *reserve_journal_open(const char *data_dir, char *err, size_t errlen)
{
    reserve_journal *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->path = rj_path(data_dir, RESERVE_JOURNAL_FILE);
    j->tmp_path = rj_path(data_dir, RESERVE_JOURNAL_FILE ".new");
    if (!j->path || !j->tmp_path) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    j->fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", j->path, strerror(errno));
        goto fail;
    }
    if (rj_find_end(j) != 0) {
        snprintf(err, errlen, "cannot prepare %s: %s", j->path, strerror(errno));
        if (j->map) munmap(j->map, RJ_WINDOW);
        close(j->fd);
        goto fail;
    }
    /* Ids are unique across restarts, not only within a process: a ledger
     * row keeps its reservation's id (usage.reservation), and recovery
     * skips an open reservation whose id is already in the ledger. So each
     * process starts at a random point of [2^32, 2^62): another process's
     * range overlaps it with a chance of about 2^-30 per billion calls. */
    uint64_t base = 0;
    if (getrandom(&base, sizeof base, 0) != (ssize_t)sizeof base) {
        snprintf(err, errlen, "cannot draw the reservation ids' start: %s", strerror(errno));
        close(j->fd);
        goto fail;
    }
    j->next_id = (base & ((UINT64_C(1) << 62) - 1)) | (UINT64_C(1) << 32);
    pthread_mutex_init(&j->mu, NULL);
    return j;
fail:
    free(j->path);
    free(j->tmp_path);
    free(j);
    return NULL;
}

void reserve_journal_close(reserve_journal *j)
{
    if (!j) return;
    /* Whatever is still open stays in the file: a clean stop has none (the
     * store flushed every row first); otherwise the next start charges it.
     * The allocated zeros past the records go. */
    if (j->map) munmap(j->map, RJ_WINDOW);
    if (ftruncate(j->fd, (off_t)j->end) != 0)
        log_warn("reservations: cannot trim %s: %s", j->path, strerror(errno));
    close(j->fd);
    rj_set_free(&j->open);
    pthread_mutex_destroy(&j->mu);
    free(j->path);
    free(j->tmp_path);
    free(j);
}

/* ---- compaction ----
 *
 * The file is rewritten with the open reservations only when it has grown
 * past RESERVE_JOURNAL_COMPACT_BYTES *and* to more than twice what the open
 * ones hold. The second condition is what keeps it cheap: without it, an
 * open set that itself held more than the threshold (a store writer far
 * behind, so many settled calls not yet closed) made every close rewrite
 * the whole file again — measured: a writer stuck rewriting a 21 MB journal
 * line by line, its usage queue full, the server refusing all calls
 * (docs/benchmarks.md, session 8). With it, a rewrite of N bytes follows at
 * least N bytes of new records.
 *
 * The slow part runs without j->mu, so loop threads go on opening
 * reservations meanwhile: the open lines are copied out under the lock,
 * written and synced to the new file without it, and then, under the lock
 * again, what was appended to the old file since the copy is copied after
 * them before the new file replaces the old one by rename(2). Only the
 * store's writer compacts (reserve_journal_on_usage_committed), so a loop
 * never waits for the disk; a close from a loop thread compacts only when
 * the file is past twice the threshold (no usage commits: the writer would
 * never get to it). */

/* Under j->mu. */
static bool rj_compact_due(const reserve_journal *j, uint64_t threshold)
{
    return !j->no_compact && !j->compacting && j->bytes > threshold &&
           j->bytes / 2 > j->open.live_bytes;
}

/* Copy [from, from + len) of the file in fd_in to the end of fd_out. */
static int rj_copy_range(int fd_in, uint64_t from, uint64_t len, int fd_out)
{
    char chunk[65536];
    while (len) {
        size_t want = len < sizeof chunk ? (size_t)len : sizeof chunk;
        ssize_t n = pread(fd_in, chunk, want, (off_t)from);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;   /* the records end before j->end: cannot be */
            return -1;
        }
        if (rj_write_all(fd_out, chunk, (size_t)n) != 0) return -1;
        from += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

/* Compact if due (see above); called without j->mu. On any failure the
 * old file stays as it was, and growing: logged, retried after another
 * threshold's worth of records. */
static void rj_compact(reserve_journal *j, uint64_t threshold)
{
    pthread_mutex_lock(&j->mu);
    if (!rj_compact_due(j, threshold)) {
        pthread_mutex_unlock(&j->mu);
        return;
    }
    size_t n = (size_t)j->open.live_bytes;
    char *snap = malloc(n ? n : 1);
    if (!snap) {
        j->bytes = 0;
        pthread_mutex_unlock(&j->mu);
        log_error("reservations: cannot compact the journal: out of memory");
        return;
    }
    size_t at = 0;
    for (size_t i = 0; i < j->open.cap; i++) {
        const rj_slot *s = &j->open.slots[i];
        if (s->id == RJ_EMPTY || s->id == RJ_GONE) continue;
        memcpy(snap + at, s->line, s->len);
        at += s->len;
    }
    uint64_t from = j->end;        /* records past this are copied from the old file */
    j->compacting = true;
    pthread_mutex_unlock(&j->mu);

    /* O_RDWR: the new file is mapped for the records that follow. */
    int fd = open(j->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    /* the open lines must be whole on disk before the file replaces the old one */
    bool ok = fd >= 0 && rj_write_all(fd, snap, at) == 0 && fsync(fd) == 0;
    free(snap);

    pthread_mutex_lock(&j->mu);
    uint64_t tail = j->end - from;
    if (ok) ok = rj_copy_range(j->fd, from, tail, fd) == 0;
    if (!ok || rename(j->tmp_path, j->path) != 0) {
        log_error("reservations: cannot compact the journal (%s): %s", j->tmp_path, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(j->tmp_path);
        j->bytes = 0;              /* wait for another threshold's worth */
        j->compacting = false;
        pthread_mutex_unlock(&j->mu);
        return;
    }
    if (j->map) munmap(j->map, RJ_WINDOW);
    j->map = NULL;                 /* the next record maps the new file */
    close(j->fd);
    j->fd = fd;
    j->end = j->bytes = (uint64_t)at + tail;
    j->compacting = false;
    pthread_mutex_unlock(&j->mu);
}

uint64_t reserve_journal_open_entry(reserve_journal *j, const reserve_entry *e)
{
    char line[RJ_LINE_MAX];
    pthread_mutex_lock(&j->mu);
    uint64_t id = j->next_id++;
    /* "R id ts cost tokens ": four numbers of at most 20 bytes each. */
    size_t len = 0;
    line[len++] = 'R';
    line[len++] = ' ';
    len += fmt_u64(line + len, id);
    line[len++] = ' ';
    len += fmt_i64(line + len, time_now_unix());
    line[len++] = ' ';
    len += fmt_i64(line + len, e->cost_nusd);
    line[len++] = ' ';
    len += fmt_i64(line + len, e->tokens);
    line[len++] = ' ';
    const char *fields[] = {e->tenant_id, e->user_id, e->key_id, e->model, e->request_id};
    for (size_t i = 0; i < 5; i++) {
        len += rj_escape(line + len, sizeof line - len - 2, fields[i]);
        line[len++] = i < 4 ? ' ' : '\n';
    }
    line[len] = '\0';
    char *copy = malloc(len + 1);
    if (!copy || rj_append(j, line, len) != 0) {
        int e_no = copy ? errno : ENOMEM;
        pthread_mutex_unlock(&j->mu);
        free(copy);
        log_error("reservations: cannot record a reservation in %s: %s: the call is refused",
                  j->path, strerror(e_no));
        return 0;
    }
    memcpy(copy, line, len + 1);
    if (!rj_set_put(&j->open, id, copy, len)) {
        /* on disk, not in memory (out of memory): a compaction would drop
         * it, and a crash then undercount it, so compaction stops for good
         * (the file grows; logged once). Its C line is still written. */
        free(copy);
        if (!j->no_compact)
            log_error("reservations: out of memory keeping the open set: the journal is no longer "
                      "compacted until restart");
        j->no_compact = true;
    }
    j->bytes += len;
    pthread_mutex_unlock(&j->mu);
    return id;
}

/* Closes ids[0..n) (0 skipped, n <= RJ_CLOSE_CHUNK): their "C id" lines
 * in one copy into the map. j->mu is held only for the open set and that
 * copy, the lines being formatted before and the records' lines freed
 * after: every gateway call's reservation is opened under it on a loop
 * thread, and the writer closes a whole batch's (~4 000 at saturation).
 * When the writer held it through a batch, the loops waited on it in
 * futex and lost their core (docs/benchmarks.md, session 11). */
#define RJ_CLOSE_CHUNK 256
static void rj_close_chunk(reserve_journal *j, const uint64_t *ids, size_t n)
{
    char buf[RJ_CLOSE_CHUNK * 24];   /* "C " 20 digits "\n" */
    char *lines[RJ_CLOSE_CHUNK];
    size_t len = 0, taken = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ids[i]) continue;
        buf[len++] = 'C';
        buf[len++] = ' ';
        len += fmt_u64(buf + len, ids[i]);
        buf[len++] = '\n';
    }
    if (!len) return;
    pthread_mutex_lock(&j->mu);
    for (size_t i = 0; i < n; i++)
        if (ids[i]) lines[taken++] = rj_set_take(&j->open, ids[i]);
    /* a lost C line only overcharges at the next start: logged */
    int rc = rj_append(j, buf, len), err = errno;
    if (rc == 0) j->bytes += len;
    pthread_mutex_unlock(&j->mu);
    if (rc != 0) log_error("reservations: cannot close a reservation in %s: %s", j->path, strerror(err));
    for (size_t i = 0; i < taken; i++) free(lines[i]);
}

void reserve_journal_close_entry(reserve_journal *j, uint64_t id)
{
    if (!j || !id) return;
    rj_close_chunk(j, &id, 1);
    rj_compact(j, 2 * (uint64_t)RESERVE_JOURNAL_COMPACT_BYTES);   /* the writer's job: see above */
}

void reserve_journal_on_usage_committed(void *journal, const usage_rec *rows, size_t n)
{
    reserve_journal *j = journal;
    if (!j || !n) return;
    uint64_t ids[RJ_CLOSE_CHUNK];
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; i < n && k < RJ_CLOSE_CHUNK; i++)
            if (rows[i].reservation_id) ids[k++] = rows[i].reservation_id;
        if (k) rj_close_chunk(j, ids, k);
    }
    rj_compact(j, RESERVE_JOURNAL_COMPACT_BYTES);
}

size_t reserve_journal_open_count(reserve_journal *j)
{
    pthread_mutex_lock(&j->mu);
    size_t n = j->open.live;
    pthread_mutex_unlock(&j->mu);
    return n;
}

size_t reserve_journal_open_slots(reserve_journal *j)
{
    pthread_mutex_lock(&j->mu);
    size_t n = j->open.cap;
    pthread_mutex_unlock(&j->mu);
    return n;
}

/* ---- recovery ---- */

typedef struct rj_found {
    uint64_t  id;
    usage_rec row;
} rj_found;

/* Parse one R line's fields into f. false: malformed. */
static bool rj_parse_open(char *line, rj_found *f)
{
    char *save = NULL;
    char *tok[9];
    int n = 0;
    for (char *t = strtok_r(line, " ", &save); t && n < 9; t = strtok_r(NULL, " ", &save)) tok[n++] = t;
    if (n != 9 || strcmp(tok[0], "R") != 0) return false;
    char *end;
    errno = 0;
    f->id = strtoull(tok[1], &end, 10);
    if (*end || errno || !f->id) return false;
    memset(&f->row, 0, sizeof f->row);
    f->row.ts = strtoll(tok[2], &end, 10);
    if (*end) return false;
    f->row.cost_nusd = strtoll(tok[3], &end, 10);
    if (*end || f->row.cost_nusd < 0) return false;
    (void)strtoll(tok[4], &end, 10);
    if (*end) return false;
    return rj_unescape(tok[5], f->row.tenant_id, sizeof f->row.tenant_id) &&
           rj_unescape(tok[6], f->row.user_id, sizeof f->row.user_id) &&
           rj_unescape(tok[7], f->row.key_id, sizeof f->row.key_id) &&
           rj_unescape(tok[8], f->row.model, sizeof f->row.model) && f->row.tenant_id[0];
}

/* Read the whole journal; the open reservations into *found (malloc'd). */
static int rj_read(const char *path, rj_found **found, size_t *n_found, reserve_recovery *out,
                   char *err, size_t errlen)
{
    *found = NULL;
    *n_found = 0;
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    rj_set ids = {0};              /* id → index+1 into *found, as a tagged pointer */
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &lcap, f)) > 0) {
        /* The records end at the first zero byte: past it the file was
         * allocated but never written (rj_map_at). A line cut there is a
         * record the crash interrupted. */
        const char *zero = memchr(line, '\0', (size_t)len);
        if (zero) {
            if (zero > line) out->torn++;
            break;
        }
        if (line[len - 1] != '\n') {   /* cut by the crash: its copy never finished */
            out->torn++;
            continue;
        }
        line[len - 1] = '\0';
        if (line[0] == 'C' && line[1] == ' ') {
            char *end;
            uint64_t id = strtoull(line + 2, &end, 10);
            if (*end || !id) {
                out->torn++;
                continue;
            }
            /* the slot's "line" holds the index; mark the row closed */
            for (size_t h = ids.cap ? rj_hash(id, ids.cap) : 0, k = 0; ids.cap && k < ids.cap &&
                 ids.slots[h].id != RJ_EMPTY; k++, h = (h + 1) & (ids.cap - 1)) {
                if (ids.slots[h].id != id) continue;
                (*found)[(uintptr_t)ids.slots[h].line - 1].id = 0;
                ids.slots[h].line = NULL;
                ids.slots[h].id = RJ_GONE;
                ids.live--;
                break;
            }
            continue;
        }
        rj_found r;
        if (!rj_parse_open(line, &r)) {
            out->torn++;
            continue;
        }
        if (*n_found == cap) {
            cap = cap ? cap * 2 : 64;
            rj_found *nf = realloc(*found, cap * sizeof *nf);
            if (!nf) {
                snprintf(err, errlen, "out of memory reading %s", path);
                rc = -1;
                break;
            }
            *found = nf;
        }
        (*found)[*n_found] = r;
        (*n_found)++;
        if (!rj_set_put(&ids, r.id, (char *)(uintptr_t)*n_found, 0)) {
            snprintf(err, errlen, "out of memory reading %s", path);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    /* the set's "lines" are indexes, not allocations */
    for (size_t i = 0; i < ids.cap; i++) ids.slots[i].line = NULL;
    rj_set_free(&ids);
    if (rc != 0) {
        free(*found);
        *found = NULL;
        *n_found = 0;
    }
    return rc;
}

int reserve_journal_recover(store *st, const char *data_dir, reserve_recovery *out, char *err,
                            size_t errlen)
{
    return reserve_journal_recover_each(st, data_dir, out, NULL, NULL, err, errlen);
}

int reserve_journal_recover_each(store *st, const char *data_dir, reserve_recovery *out,
                                 reserve_charged_fn charged, void *arg, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *path = rj_path(data_dir, RESERVE_JOURNAL_FILE);
    if (!path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rj_found *found;
    size_t n;
    if (rj_read(path, &found, &n, out, err, errlen) != 0) {
        free(path);
        return -1;
    }
    /* Open ones whose row is already in the ledger: committed just before
     * the crash, their journal record not yet closed. Their row charged
     * them; charging them again would put a budget at its cap over it. */
    size_t open = 0;
    int64_t since = INT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (found[i].id) {
            found[open++] = found[i];
            if (found[open - 1].row.ts < since) since = found[open - 1].row.ts;
        }
    n = open;
    if (n) {
        uint64_t *ids = malloc(n * sizeof *ids);
        bool *in_ledger = malloc(n * sizeof *in_ledger);
        store_status ls = ids && in_ledger ? STORE_OK : STORE_ERROR;
        for (size_t i = 0; ls == STORE_OK && i < n; i++) ids[i] = found[i].id;
        if (ls == STORE_OK) ls = store_usage_reservations_committed(st, since, ids, n, in_ledger);
        if (ls != STORE_OK) {
            snprintf(err, errlen, "cannot read the ledger to reconcile %zu open reservation(s): %s", n,
                     store_status_text(ls));
            free(ids);
            free(in_ledger);
            free(found);
            free(path);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            if (in_ledger[i]) {
                found[i].id = 0;
                out->in_ledger++;
            }
        free(ids);
        free(in_ledger);
    }
    /* the rest, as ledger rows: status 0 says "charged at the reservation
     * by the reconciliation at start"; each keeps its reservation's id, so
     * a crash before the journal is emptied does not charge it again */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!found[i].id) continue;
        found[i].row.reservation_id = found[i].id;
        found[k].row = found[i].row;
        found[k].row.status = 0;
        snprintf(found[k].row.deployment, sizeof found[k].row.deployment, "reconciled");
        out->charged_nusd += found[k].row.cost_nusd;
        k++;
    }
    out->open = k;
    int rc = 0;
    if (k) {
        usage_rec *rows = malloc(k * sizeof *rows);
        if (!rows) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else {
            for (size_t i = 0; i < k; i++) rows[i] = found[i].row;
            cJSON *d = cJSON_CreateObject();
            cJSON_AddNumberToObject(d, "reservations", (double)k);
            cJSON_AddNumberToObject(d, "charged_usd", (double)out->charged_nusd / 1e9);
            cJSON_AddStringToObject(d, "why", "calls in flight when the process stopped; charged at "
                                              "their reservation");
            obs_audit_act a;   /* the charge and its entry in one transaction */
            obs_audit_act_begin_raw(&a, st, "", "system", "startup", "budget.reconcile",
                                    RESERVE_JOURNAL_FILE, d);
            store_status s = store_usage_insert_now(st, rows, k);
            obs_audit_act_end(&a);
            free(rows);
            if (s != STORE_OK) {
                snprintf(err, errlen, "cannot charge %zu open reservation(s) to the ledger: %s", k,
                         store_status_text(s));
                rc = -1;
            } else {
                log_warn("reservations: %zu call(s) were in flight when brigade stopped; charged "
                         "$%.6f at their reservations (budget.reconcile in the audit log)",
                         k, (double)out->charged_nusd / 1e9);
                /* only once committed: a charge the ledger does not hold
                 * must not reach a shared counter either */
                for (size_t i = 0; charged && i < k; i++) charged(&found[i].row, arg);
            }
        }
    }
    free(found);
    /* charged (or nothing to charge): the journal starts empty. A crash
     * before this truncate charges them again at the next start — an
     * overcount, never an undercount. */
    if (rc == 0 && truncate(path, 0) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot empty %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (out->in_ledger)
        log_info("reservations: %zu open reservation(s) were already settled in the ledger (committed "
                 "just before the stop); not charged again", out->in_ledger);
    if (out->torn) log_warn("reservations: %zu cut or unreadable line(s) in the journal ignored", out->torn);
    free(path);
    return rc;
}
