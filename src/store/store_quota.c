/* store_quota.c — per-user storage quotas: where a quota comes from, the
 * one comparison every guarded write makes, and how a refusal reaches the
 * caller.
 *
 * The limits are the tier's (src/config/), resolved on the caller's thread
 * through the function serve registers, so the store never reads the
 * configuration. The comparison runs inside the writer's transaction, next
 * to the count it compares with: two writes racing for the last free entry
 * are serialized by the single writer, and the second sees the first. */
#include "store/store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static _Thread_local store_quota_refusal store_last_refusal;

void store_set_quota_fn(store *st, store_quota_fn fn, void *arg)
{
    st->quota_fn = fn;
    st->quota_arg = arg;
}

void store_quota_of(store *st, const scope *sc, store_quota *out)
{
    memset(out, 0, sizeof *out);
    if (st->quota_fn && sc) st->quota_fn(st->quota_arg, sc->tier, out);
}

const store_quota_refusal *store_quota_refused(void) { return &store_last_refusal; }

store_status store_quota_record(store_status res, const store_quota_refusal *r)
{
    if (res == STORE_QUOTA || res == STORE_TOO_LARGE) store_last_refusal = *r;
    return res;
}

store_status store_quota_check(const char *quota, int64_t limit, int64_t used, int64_t wanted,
                               int64_t single, store_quota_refusal *r)
{
    /* a write that does not grow the usage passes even over the limit (a
     * tier lowered since): shrinking must stay possible */
    if (limit <= 0 || wanted <= limit || wanted <= used) return STORE_OK;
    r->quota = quota;
    r->limit = limit;
    r->used = used;
    r->wanted = wanted;
    return single > limit ? STORE_TOO_LARGE : STORE_QUOTA;
}

void store_quota_describe(const store_quota_refusal *r, const char *tier, char *out, size_t outlen)
{
    const char *quota = r->quota ? r->quota : "storage";
    const char *unit = strcmp(quota, "memory_bytes") == 0 ? " bytes"
                       : strcmp(quota, "memory_entries") == 0 ? " entries"
                       : strcmp(quota, "sessions") == 0 ? " sessions" : " messages";
    snprintf(out, outlen, "the %s quota of tier \"%s\" is %" PRId64 "%s: %" PRId64
             " in use, this write would make %" PRId64, quota, tier && tier[0] ? tier : "?",
             r->limit, unit, r->used, r->wanted);
}
