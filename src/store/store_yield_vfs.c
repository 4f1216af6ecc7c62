/* store_yield_vfs.c — the store writer's file I/O: its calls give up the
 * core between them, its writes reach the kernel gathered, and its
 * checkpoints read the WAL ahead.
 *
 * The store writer commits in bursts: a group commit writes each changed
 * page to the WAL (two pwrite(2) calls a page), and every thousand pages
 * SQLite's automatic checkpoint copies them into the database (a pread and
 * a pwrite a page). One such call runs for milliseconds inside
 * sqlite3_step, with no row boundary where the writer could yield, and a
 * loop thread woken onto the same core was measured waiting it out, 2–4 ms,
 * while the other core was idle (docs/benchmarks.md, "The c=1 tail").
 *
 * This is SQLite's VFS shim pattern: a VFS that opens every file through
 * the default one and forwards each method, except that reads, writes and
 * syncs first pass a yield point (util/thread_prio.h), which calls
 * sched_yield(2) every THREAD_BACKGROUND_YIELD_US. Only the writer's
 * connection opens files through it; readers use the default VFS.
 *
 * Gathered writes. SQLite writes a WAL frame as two calls (its 24-byte
 * header, then the page), and a checkpoint copies each page into the
 * database as a read of the WAL and a write of the database, in page order.
 * A group commit of a few hundred pages made hundreds of system calls,
 * each dear on a virtual machine (docs/benchmarks.md). So a write to the
 * WAL or the database file that continues the previous write to the same
 * file is held in memory (up to WAL_GATHER_MAX bytes, 31 frames) and
 * reaches the real file as one write when anything else happens on this
 * thread's files: a write elsewhere, a read of that file, a sync, a size
 * query, a truncation, a lock, a file control, a shared-memory call, a
 * close. Reads of the other file do not send it (a checkpoint's reads of
 * the WAL between its writes to the database), as nothing read there
 * depends on it. What SQLite shows to readers is always preceded by such
 * a call: a commit's frames by the sync of the WAL (synchronous=FULL) and
 * by the barrier before the WAL index header is written (walIndexWriteHdr);
 * a checkpoint's pages by its SQLITE_FCNTL_CKPT_DONE file control, made
 * before it publishes how far it copied (nBackfill). So no reader, and no
 * durable claim, meets bytes still in memory. Every real I/O call happens
 * in the order SQLite made it, except that adjacent writes are merged and
 * a read of the other file may pass them. A held write that fails is
 * reported by the call that sent it (a sync's failure fails the commit),
 * or, for a call with no status (the barrier, an unlock), by the next one.
 * What is held is this thread's (thread-local): a transaction must run on
 * one thread from its start to its end, which the store's are (the
 * writer's batches, a scrub's VACUUM). A transaction always ends with an
 * unlock, which sends, so nothing is held between transactions.
 *
 * Reads ahead in a checkpoint. Between SQLite's SQLITE_FCNTL_CKPT_START and
 * SQLITE_FCNTL_CKPT_DONE file controls, a read of the WAL fetches up to
 * WAL_GATHER_MAX bytes from where it starts, and the checkpoint's next
 * reads (the pages in order, mostly frames in a row: a commit writes its
 * pages in page order) are served from them. The frames a checkpoint
 * copies are committed and stay as they are until the WAL restarts, which
 * cannot happen while the checkpoint runs; still, any write to or
 * truncation of that WAL, and the end of the checkpoint, drop what was
 * read ahead.
 * Nothing changes on disk: the same bytes at the same offsets. */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/thread_prio.h"

/* At most this many bytes held (31 WAL frames of a 4 KiB page); a write
 * that would pass it sends what is held first. Not more: SQLite's unix VFS
 * writes at most 0x1ffff bytes in one call (its seekAndWrite masks the
 * count to 17 bits), so a larger write would be cut short. */
#define WAL_GATHER_MAX 0x1ffff

typedef struct yield_file {
    sqlite3_file base;      /* pMethods: yield_io_v1/v2/v3, or NULL */
    sqlite3_file *real;     /* the default VFS's file, right after this struct */
    int gathers;            /* the WAL or the database: adjacent writes are held */
    unsigned char *held;    /* WAL_GATHER_MAX bytes once first needed, or NULL */
    int held_len;
    sqlite3_int64 held_off; /* where held[0] goes */
    int is_wal;
    unsigned char *ahead;   /* WAL_GATHER_MAX bytes once a checkpoint reads, or NULL */
    int ahead_len;          /* valid bytes in ahead (0: none) */
    sqlite3_int64 ahead_off;
} yield_file;

/* The one file of this thread whose bytes are held, if any, and the
 * status of a held write that failed where no status could be returned. */
static _Thread_local yield_file *holder;
static _Thread_local int held_failure;
/* Between a checkpoint's CKPT_START and CKPT_DONE on this thread, and the
 * WAL whose bytes were read ahead in it (NULL: none are). */
static _Thread_local int checkpointing;
static _Thread_local yield_file *read_ahead;

static void ahead_drop(void)
{
    if (read_ahead) read_ahead->ahead_len = 0;
    read_ahead = NULL;
}

static sqlite3_vfs *yield_real_vfs;

#define REAL(f) (((yield_file *)(f))->real)

/* Send what this thread holds; SQLITE_OK, or the real write's error (or
 * a failure kept from a call without a status). Every method but the
 * held append itself calls this first. */
static int held_send(void)
{
    int rc = held_failure;
    held_failure = SQLITE_OK;
    yield_file *y = holder;
    if (!y) return rc;
    holder = NULL;
    int len = y->held_len;
    y->held_len = 0;
    thread_background_yield();
    int wrc = y->real->pMethods->xWrite(y->real, y->held, len, y->held_off);
    return rc != SQLITE_OK ? rc : wrc;
}

static int yield_close(sqlite3_file *f)
{
    yield_file *y = (yield_file *)f;
    int rc = held_send();
    free(y->held);
    y->held = NULL;
    if (read_ahead == y) ahead_drop();
    free(y->ahead);
    y->ahead = NULL;
    int crc = y->real->pMethods ? y->real->pMethods->xClose(y->real) : SQLITE_OK;
    return rc != SQLITE_OK ? rc : crc;
}

/* A checkpoint's read of the WAL from what was read ahead, reading ahead
 * again when it is not there. 1 when served, 0 to read as usual. */
static int wal_read_ahead(yield_file *y, void *buf, int n, sqlite3_int64 off)
{
    if (read_ahead == y && off >= y->ahead_off && off + n <= y->ahead_off + y->ahead_len) {
        memcpy(buf, y->ahead + (off - y->ahead_off), (size_t)n);
        return 1;
    }
    ahead_drop();
    sqlite3_int64 size = 0;
    if (n <= 0 || n >= WAL_GATHER_MAX || y->real->pMethods->xFileSize(y->real, &size) != SQLITE_OK ||
        size - off < n)
        return 0;   /* a read past the end keeps SQLite's own answer */
    if (!y->ahead) y->ahead = malloc(WAL_GATHER_MAX);
    if (!y->ahead) return 0;
    int len = size - off < WAL_GATHER_MAX ? (int)(size - off) : WAL_GATHER_MAX;
    thread_background_yield();
    if (y->real->pMethods->xRead(y->real, y->ahead, len, off) != SQLITE_OK) return 0;
    y->ahead_off = off;
    y->ahead_len = len;
    read_ahead = y;
    memcpy(buf, y->ahead, (size_t)n);
    return 1;
}

static int yield_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    yield_file *y = (yield_file *)f;
    if (holder == y) {
        int rc = held_send();
        if (rc != SQLITE_OK) return rc;
    }
    if (checkpointing && y->is_wal && wal_read_ahead(y, buf, n, off)) return SQLITE_OK;
    thread_background_yield();
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int yield_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    yield_file *y = (yield_file *)f;
    if (read_ahead == y) ahead_drop();
    if (holder == y && held_failure == SQLITE_OK && off == y->held_off + y->held_len &&
        n <= WAL_GATHER_MAX - y->held_len) {
        memcpy(y->held + y->held_len, buf, (size_t)n);
        y->held_len += n;
        return SQLITE_OK;
    }
    int rc = held_send();
    if (rc != SQLITE_OK) return rc;
    if (y->gathers && n > 0 && n < WAL_GATHER_MAX) {
        if (!y->held) y->held = malloc(WAL_GATHER_MAX);   /* out of memory: written through */
        if (y->held) {
            memcpy(y->held, buf, (size_t)n);
            y->held_len = n;
            y->held_off = off;
            holder = y;
            return SQLITE_OK;
        }
    }
    thread_background_yield();
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int yield_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    if (read_ahead == (yield_file *)f) ahead_drop();
    int rc = held_send();
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int yield_sync(sqlite3_file *f, int flags)
{
    int rc = held_send();
    if (rc != SQLITE_OK) return rc;
    thread_background_yield();
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int yield_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    int rc = held_send();
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int yield_lock(sqlite3_file *f, int level)
{
    int rc = held_send();
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xLock(REAL(f), level);
}

/* Unlocking must happen even when a held write failed (SQLite unlocks
 * while it cleans up after an error): the failure is kept for the next call. */
static int yield_unlock(sqlite3_file *f, int level)
{
    held_failure = held_send();
    return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int yield_check_reserved(sqlite3_file *f, int *out)
{
    int rc = held_send();
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int yield_file_control(sqlite3_file *f, int op, void *arg)
{
    if (op == SQLITE_FCNTL_CKPT_START || op == SQLITE_FCNTL_CKPT_DONE) {
        checkpointing = op == SQLITE_FCNTL_CKPT_START;
        ahead_drop();
    }
    int rc = held_send();
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int yield_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int yield_device_chars(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int yield_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out)
{
    int rc = held_send();
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, out);
}

/* Shared-memory locks are released on error paths too: as xUnlock. */
static int yield_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    if (flags & SQLITE_SHM_UNLOCK) {
        /* A checkpoint ends before its locks go (and a lost CKPT_DONE
         * must not leave reads ahead on). */
        checkpointing = 0;
        ahead_drop();
        held_failure = held_send();
    } else {
        int rc = held_send();
        if (rc != SQLITE_OK) return rc;
    }
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

/* Before the WAL index publishes anything: the frames reach the file. */
static void yield_shm_barrier(sqlite3_file *f)
{
    held_failure = held_send();
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int yield_shm_unmap(sqlite3_file *f, int delete_flag)
{
    held_failure = held_send();
    return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}

static int yield_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
    int rc = held_send();
    if (rc != SQLITE_OK) {
        *out = NULL;
        return rc;
    }
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, out);
}

static int yield_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    held_failure = held_send();
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

/* One table per io_methods version, so that SQLite sees exactly the
 * methods the real file has (it checks iVersion before calling the shm
 * and fetch ones). */
#define YIELD_IO(version)                                                          \
    {version, yield_close, yield_read, yield_write, yield_truncate, yield_sync,   \
     yield_file_size, yield_lock, yield_unlock, yield_check_reserved,             \
     yield_file_control, yield_sector_size, yield_device_chars,                   \
     version >= 2 ? yield_shm_map : NULL, version >= 2 ? yield_shm_lock : NULL,   \
     version >= 2 ? yield_shm_barrier : NULL, version >= 2 ? yield_shm_unmap : NULL, \
     version >= 3 ? yield_fetch : NULL, version >= 3 ? yield_unfetch : NULL}
static const sqlite3_io_methods yield_io[3] = {YIELD_IO(1), YIELD_IO(2), YIELD_IO(3)};

static int yield_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    yield_file *y = (yield_file *)f;
    y->base.pMethods = NULL;
    y->real = (sqlite3_file *)&y[1];
    y->gathers = (flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_DB)) != 0;
    y->held = NULL;
    y->held_len = 0;
    y->held_off = 0;
    y->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
    y->ahead = NULL;
    y->ahead_len = 0;
    y->ahead_off = 0;
    memset(y->real, 0, (size_t)yield_real_vfs->szOsFile);
    int rc = yield_real_vfs->xOpen(yield_real_vfs, name, y->real, flags, out_flags);
    const sqlite3_io_methods *m = y->real->pMethods;
    if (m) {
        int v = m->iVersion < 1 ? 1 : m->iVersion > 3 ? 3 : m->iVersion;
        y->base.pMethods = &yield_io[v - 1];
    }
    return rc;
}

/* Everything but xOpen goes straight to the default VFS. */
static int yield_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return yield_real_vfs->xDelete(yield_real_vfs, name, sync_dir);
}
static int yield_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return yield_real_vfs->xAccess(yield_real_vfs, name, flags, out);
}
static int yield_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return yield_real_vfs->xFullPathname(yield_real_vfs, name, n, out);
}
static void *yield_dl_open(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return yield_real_vfs->xDlOpen(yield_real_vfs, name);
}
static void yield_dl_error(sqlite3_vfs *v, int n, char *msg)
{
    (void)v;
    yield_real_vfs->xDlError(yield_real_vfs, n, msg);
}
static void (*yield_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return yield_real_vfs->xDlSym(yield_real_vfs, h, sym);
}
static void yield_dl_close(sqlite3_vfs *v, void *h)
{
    (void)v;
    yield_real_vfs->xDlClose(yield_real_vfs, h);
}
static int yield_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return yield_real_vfs->xRandomness(yield_real_vfs, n, out);
}
static int yield_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return yield_real_vfs->xSleep(yield_real_vfs, us);
}
static int yield_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return yield_real_vfs->xCurrentTime(yield_real_vfs, out);
}
static int yield_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return yield_real_vfs->xGetLastError ? yield_real_vfs->xGetLastError(yield_real_vfs, n, out) : 0;
}
static int yield_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return yield_real_vfs->xCurrentTimeInt64(yield_real_vfs, out);
}

static sqlite3_vfs yield_vfs = {
    .iVersion = 2,
    .zName = STORE_YIELD_VFS,
    .xOpen = yield_open,
    .xDelete = yield_delete,
    .xAccess = yield_access,
    .xFullPathname = yield_full_pathname,
    .xDlOpen = yield_dl_open,
    .xDlError = yield_dl_error,
    .xDlSym = yield_dl_sym,
    .xDlClose = yield_dl_close,
    .xRandomness = yield_randomness,
    .xSleep = yield_sleep,
    .xCurrentTime = yield_current_time,
    .xGetLastError = yield_last_error,
    .xCurrentTimeInt64 = yield_current_time_int64,
};

static pthread_once_t yield_once = PTHREAD_ONCE_INIT;
static int yield_registered;

static void yield_register(void)
{
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (!real || real->iVersion < 2 || !real->xCurrentTimeInt64) return;
    yield_real_vfs = real;
    yield_vfs.szOsFile = (int)sizeof(yield_file) + real->szOsFile;
    yield_vfs.mxPathname = real->mxPathname;
    yield_registered = sqlite3_vfs_register(&yield_vfs, 0) == SQLITE_OK;
}

const char *store_yield_vfs(void)
{
    pthread_once(&yield_once, yield_register);
    return yield_registered ? STORE_YIELD_VFS : NULL;   /* NULL: the default VFS */
}
