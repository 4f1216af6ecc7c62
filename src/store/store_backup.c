/* store_backup.c — a consistent copy of the database while brigade serves
 * (`brigade admin backup`), with SQLite's online backup API: it copies a
 * snapshot page by page from a read-only connection, so the server's
 * writer goes on; a write that lands during the copy makes SQLite restart
 * it from that snapshot on, never a torn file. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Pages per step: small enough that the source's read lock is brief. */
#define BACKUP_PAGES_PER_STEP 256
#define BACKUP_MAX_RESTARTS_MS (10 * 60 * 1000)

int store_backup(const char *data_dir, const char *dest, store_backup_info *out, char *err,
                 size_t errlen)
{
    memset(out, 0, sizeof *out);
    char src_path[4096];
    if ((size_t)snprintf(src_path, sizeof src_path, "%s/brigade.db", data_dir) >= sizeof src_path) {
        snprintf(err, errlen, "data directory path too long");
        return -1;
    }
    struct stat sb;
    if (stat(src_path, &sb) != 0) {
        snprintf(err, errlen, "no database at %s: %s", src_path, strerror(errno));
        return -1;
    }
    /* Never overwrite: a backup over the live database, or over an older
     * backup someone meant to keep, is not something to do by accident.
     * Created 0600: it holds every tenant's data. */
    int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s%s", dest, strerror(errno),
                 errno == EEXIST ? " (choose a new file name)" : "");
        return -1;
    }
    close(fd);
    sqlite3 *src = NULL, *dst = NULL;
    int rc = sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_open_v2(dest, &dst, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", dst ? dest : src_path,
                 sqlite3_errmsg(dst ? dst : src));
        goto fail;
    }
    sqlite3_busy_timeout(src, 5000);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        snprintf(err, errlen, "cannot start the backup: %s", sqlite3_errmsg(dst));
        goto fail;
    }
    int waited_ms = 0;
    do {
        rc = sqlite3_backup_step(b, BACKUP_PAGES_PER_STEP);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
            sqlite3_sleep(20);
            waited_ms += 20;
        }
    } while ((rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) &&
             waited_ms < BACKUP_MAX_RESTARTS_MS);
    out->pages = (uint64_t)sqlite3_backup_pagecount(b);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "the backup did not finish: %s", sqlite3_errstr(rc));
        goto fail;
    }
    /* The copy must open and read as a whole database. */
    sqlite3_stmt *s = NULL;
    rc = sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &s, NULL);
    const char *verdict = rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW
                              ? (const char *)sqlite3_column_text(s, 0) : NULL;
    if (!verdict || strcmp(verdict, "ok") != 0) {
        snprintf(err, errlen, "the copy failed its check: %s", verdict ? verdict : sqlite3_errmsg(dst));
        sqlite3_finalize(s);
        goto fail;
    }
    sqlite3_finalize(s);
    sqlite3_close(src);
    sqlite3_close(dst);
    if (stat(dest, &sb) == 0) out->bytes = (uint64_t)sb.st_size;
    return 0;
fail:
    sqlite3_close(src);
    sqlite3_close(dst);
    unlink(dest);
    return -1;
}
