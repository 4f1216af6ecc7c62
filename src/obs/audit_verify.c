/* audit_verify.c — checking the audit log end to end, and saying WHAT is
 * wrong: which entry was modified, deleted, inserted or moved, and which
 * checkpoint does not hold.
 *
 * One pass over the entries in seq order, keeping a small window of the
 * rows around the one being judged (AUDIT_LOOK on each side), so memory
 * stays constant however long the log is. Per row we know:
 *
 *   - whether its contents hash to its stored hash; if not, whether they
 *     would with a nearby seq (the row was renumbered or swapped: its
 *     `shift`), or not at all (edited or forged);
 *   - whether its prev_hash is the stored hash of the row before it;
 *   - whether its seq follows the previous one (a gap = deleted entries).
 *
 * The judgement then reads like the attacks: an edited entry still has the
 * chain pointing at it (the next row's prev_hash is its stored hash) but
 * its contents do not match; a forged entry is skipped by the chain (the
 * next row links to the one before it); a deleted entry leaves a gap, or a
 * renumbered tail whose contents hash one seq higher; swapped entries each
 * hash as the other's seq. Consequences of one problem (the link after an
 * inserted row, the rest of a renumbered tail) are not reported again.
 *
 * The checkpoints arrive merged with the entries (each before the entry it
 * signs). Each must be signed, chained to the checkpoint before it, name an
 * entry whose hash it signed, and come within its count bound. After the
 * newest one, the unsealed tail must be within the bound too — else the
 * newest checkpoints were deleted. */
#include "obs/audit_chain.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUDIT_LOOK 8                       /* rows looked at on each side */
#define AUDIT_RING 32                      /* > 2 * AUDIT_LOOK + 1 */
#define AUDIT_SHIFT_NONE 1000000           /* contents match no nearby seq */

typedef struct vrow {
    int64_t seq, ts;
    char    hash[AUDIT_HASH_HEX], prev[AUDIT_HASH_HEX];
    int     shift;                         /* contents hash as seq - shift; 0 = intact */
    bool    reported;                      /* a reported problem already explains it */
} vrow;

typedef struct vstate {
    audit_verify_result *res;
    const audit_verify_opts *o;
    vrow     ring[AUDIT_RING];
    uint64_t n_read, n_judged;
    /* checkpoints */
    int64_t  last_row_seq;                 /* the previous checkpoint row, valid or not */
    char     last_row_sig[AUDIT_SIG_HEX];
    uint64_t last_row_every, last_row_interval;   /* the bound it signed */
    uint64_t pending_interval;             /* the time bound of the stretch `pending` closes */
    bool     seen_v2;
    audit_checkpoint pending;              /* valid, its entry not read yet (seq 0 = none) */
    int64_t  last_good_cp;                 /* the newest checkpoint that held so far */
    bool     from_seen, head_cp_seen;
    /* the first entry after the newest valid checkpoint */
    int64_t  unsealed_seq, unsealed_ts, last_ts;
} vstate;

void audit_problems_json(cJSON *o, const audit_verify_result *res)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "problems");
    for (size_t i = 0; i < res->n_problems; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "kind", audit_problem_kind_name(res->problems[i].kind));
        cJSON_AddNumberToObject(p, "seq", (double)res->problems[i].seq);
        cJSON_AddStringToObject(p, "message", res->problems[i].message);
        cJSON_AddItemToArray(arr, p);
    }
    cJSON_AddNumberToObject(o, "more_problems", (double)res->more_problems);
    cJSON *w = cJSON_AddArrayToObject(o, "warnings");
    for (size_t i = 0; i < res->n_warnings; i++)
        cJSON_AddItemToArray(w, cJSON_CreateString(res->warnings[i]));
    cJSON_AddNumberToObject(o, "unsealed", (double)res->unsealed);
}

const char *audit_problem_kind_name(audit_problem_kind k)
{
    switch (k) {
    case AUDIT_MODIFIED: return "modified";
    case AUDIT_DELETED: return "deleted";
    case AUDIT_INSERTED: return "inserted";
    case AUDIT_REORDERED: return "reordered";
    case AUDIT_CHECKPOINT: return "checkpoint";
    case AUDIT_UNSEALED: return "unsealed";
    }
    return "unknown";
}

__attribute__((format(printf, 4, 5)))
static void problem(vstate *v, audit_problem_kind kind, int64_t seq, const char *fmt, ...)
{
    audit_verify_result *r = v->res;
    r->intact = false;
    if (r->n_problems == AUDIT_VERIFY_MAX_PROBLEMS) {
        r->more_problems++;
        return;
    }
    audit_problem *p = &r->problems[r->n_problems++];
    p->kind = kind;
    p->seq = seq;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 2, 3)))
static void warning(vstate *v, const char *fmt, ...)
{
    audit_verify_result *r = v->res;
    if (r->n_warnings == AUDIT_VERIFY_MAX_WARNINGS) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warnings[r->n_warnings++], sizeof r->warnings[0], fmt, ap);
    va_end(ap);
}

/* Row i of the stream, if still in the window. */
static vrow *row_at(vstate *v, int64_t i)
{
    if (i < 0 || (uint64_t)i >= v->n_read || (uint64_t)i + AUDIT_RING <= v->n_read) return NULL;
    return &v->ring[(uint64_t)i % AUDIT_RING];
}

/* ---- judging one row, with its neighbours in view ---- */

static void judge_forged(vstate *v, int64_t i, vrow *r, vrow *p, vrow *n)
{
    r->reported = true;
    if (n && strcmp(n->prev, r->hash) == 0) {
        problem(v, AUDIT_MODIFIED, r->seq,
                "entry %lld was modified: its contents do not match its hash",
                (long long)r->seq);
    } else if (p && n && strcmp(n->prev, p->hash) == 0) {
        problem(v, AUDIT_INSERTED, r->seq,
                "entry %lld was inserted: it is not part of the chain (entry %lld links to "
                "entry %lld)", (long long)r->seq, (long long)n->seq, (long long)p->seq);
    } else if (!n && p && strcmp(r->prev, p->hash) != 0) {
        problem(v, AUDIT_INSERTED, r->seq,
                "entry %lld was inserted: it does not link to entry %lld and its contents do "
                "not match its hash", (long long)r->seq, (long long)p->seq);
    } else {
        problem(v, AUDIT_MODIFIED, r->seq,
                "entry %lld was modified: its contents do not match its hash (hash mismatch)",
                (long long)r->seq);
    }
    (void)i;
}

static void judge_moved(vstate *v, int64_t i, vrow *r, vrow *p)
{
    int64_t content = r->seq - r->shift;          /* the seq its contents were hashed with */
    if (r->reported) return;                      /* the other half of a reported swap */
    if (r->shift < 0) {
        /* it holds a later entry: swapped with it, or earlier rows were deleted */
        for (int64_t j = i + 1; j <= i + AUDIT_LOOK; j++) {
            vrow *q = row_at(v, j);
            if (q && q->seq == content && q->shift != AUDIT_SHIFT_NONE && q->seq - q->shift == r->seq) {
                problem(v, AUDIT_REORDERED, r->seq,
                        "entries %lld and %lld were swapped: entry %lld holds the entry for seq "
                        "%lld (its chain links to a later entry)", (long long)r->seq,
                        (long long)q->seq, (long long)r->seq, (long long)content);
                r->reported = q->reported = true;
                return;
            }
        }
        if (p && p->shift == r->shift) return;    /* the rest of a renumbered tail */
        problem(v, AUDIT_DELETED, r->seq,
                "%lld entr%s deleted before entry %lld and the entries after renumbered (entry "
                "%lld holds the contents of seq %lld)", (long long)-r->shift,
                r->shift == -1 ? "y was" : "ies were", (long long)r->seq, (long long)r->seq,
                (long long)content);
        r->reported = true;
        return;
    }
    if (p && p->shift == r->shift) return;
    for (int64_t j = i - 1; j >= i - AUDIT_LOOK && j >= 0; j--) {
        vrow *q = row_at(v, j);
        if (q && q->reported && q->seq >= content) return;   /* the insertion is reported */
    }
    problem(v, AUDIT_INSERTED, content,
            "%lld entr%s inserted at seq %lld and the entries after renumbered (entry %lld "
            "holds the contents of seq %lld)", (long long)r->shift,
            r->shift == 1 ? "y was" : "ies were", (long long)content, (long long)r->seq,
            (long long)content);
    r->reported = true;
}

static void judge_intact(vstate *v, int64_t i, vrow *r, vrow *p)
{
    if (i == 0 && v->o->from) {
        /* incremental: the stream starts at the checkpoint verified before */
        if (r->seq != v->o->from->seq || strcmp(r->hash, v->o->from->hash) != 0)
            problem(v, AUDIT_CHECKPOINT, v->o->from->seq, "entry %lld, verified before, was "
                    "deleted or replaced", (long long)v->o->from->seq);
        return;
    }
    if (i == 0) {
        if (r->seq > 1)
            problem(v, AUDIT_DELETED, 1, "entr%s 1..%lld %s missing (the log starts at seq %lld)",
                    r->seq == 2 ? "y" : "ies", (long long)r->seq - 1,
                    r->seq == 2 ? "is" : "are", (long long)r->seq);
        else if (strcmp(r->prev, AUDIT_GENESIS_HASH) != 0)
            problem(v, AUDIT_INSERTED, 1, "entry 1 does not start the chain (its prev_hash is "
                    "not the genesis value)");
        return;
    }
    if (!p) return;                               /* fell out of the window: judged before */
    if (r->seq > p->seq + 1) {
        if (r->seq == p->seq + 2)
            problem(v, AUDIT_DELETED, p->seq + 1,
                    "entry %lld was deleted (gap between seq %lld and %lld)",
                    (long long)p->seq + 1, (long long)p->seq, (long long)r->seq);
        else
            problem(v, AUDIT_DELETED, p->seq + 1,
                    "entries %lld..%lld were deleted (gap between seq %lld and %lld)",
                    (long long)p->seq + 1, (long long)r->seq - 1, (long long)p->seq,
                    (long long)r->seq);
        r->reported = true;
    } else if (strcmp(r->prev, p->hash) != 0 && !p->reported && p->shift == 0) {
        for (int64_t j = i - 2; j >= i - AUDIT_LOOK && j >= 0; j--) {
            vrow *q = row_at(v, j);
            if (q && strcmp(q->hash, r->prev) == 0) {
                vrow *first = row_at(v, j + 1);
                problem(v, AUDIT_INSERTED, first ? first->seq : p->seq,
                        "entries %lld..%lld were inserted: not part of the chain (entry %lld "
                        "links to entry %lld)", (long long)(first ? first->seq : p->seq),
                        (long long)p->seq, (long long)r->seq, (long long)q->seq);
                r->reported = true;
                return;
            }
        }
        for (int64_t j = i + 1; j <= i + AUDIT_LOOK; j++) {
            vrow *q = row_at(v, j);
            if (q && strcmp(q->hash, r->prev) == 0) {
                problem(v, AUDIT_REORDERED, r->seq,
                        "entry %lld is out of order: its chain links to the later entry %lld",
                        (long long)r->seq, (long long)q->seq);
                r->reported = true;
                return;
            }
        }
        problem(v, AUDIT_DELETED, r->seq,
                "the chain breaks at entry %lld: prev_hash mismatch with entry %lld (entries "
                "between them were deleted, or entry %lld was replaced)", (long long)r->seq,
                (long long)p->seq, (long long)p->seq);
        r->reported = true;
    }
    if (!r->reported && r->ts < p->ts && !p->reported) {
        problem(v, AUDIT_REORDERED, r->seq, "entry %lld is older than entry %lld (ts out of order)",
                (long long)r->seq, (long long)p->seq);
        r->reported = true;
    }
}

static void judge(vstate *v, int64_t i)
{
    vrow *r = row_at(v, i), *p = row_at(v, i - 1), *n = row_at(v, i + 1);
    if (!r) return;
    if (r->shift == AUDIT_SHIFT_NONE) judge_forged(v, i, r, p, n);
    else if (r->shift != 0) judge_moved(v, i, r, p);
    else judge_intact(v, i, r, p);
}

/* ---- the scan callbacks ---- */

/* A valid checkpoint whose entry was not read: that entry is gone. */
static void pending_missing(vstate *v)
{
    if (!v->pending.seq) return;
    problem(v, AUDIT_DELETED, v->pending.seq, "entry %lld was deleted: a signed checkpoint "
            "names it, but it is not in the log", (long long)v->pending.seq);
    v->pending.seq = 0;
}

static bool checkpoint_chain_ok(vstate *v, audit_checkpoint *cp)
{
    /* The signature covers the previous checkpoint's signature: take it
     * from the row before, if that is the one this checkpoint names. */
    bool linked = cp->version == 1 || cp->prev_seq == v->last_row_seq;
    snprintf(cp->prev_signature, sizeof cp->prev_signature, "%s",
             linked && cp->prev_seq ? v->last_row_sig : "");
    if (!linked) {
        /* It names a checkpoint that is not the row before it. Said first:
         * its signature cannot hold without the one it names (unless the
         * server itself chained past a deletion, signing "" for it). */
        if (v->last_row_seq == 0 && !v->o->from)
            problem(v, AUDIT_CHECKPOINT, cp->prev_seq, "the checkpoints up to seq %lld were "
                    "deleted (the first checkpoint, at seq %lld, chains to one at seq %lld)",
                    (long long)cp->prev_seq, (long long)cp->seq, (long long)cp->prev_seq);
        else if (cp->prev_seq > v->last_row_seq)
            problem(v, AUDIT_CHECKPOINT, cp->prev_seq, "the checkpoint at seq %lld was deleted "
                    "(the checkpoint at seq %lld chains to it)", (long long)cp->prev_seq,
                    (long long)cp->seq);
        else
            problem(v, AUDIT_CHECKPOINT, cp->seq, "checkpoint at seq %lld chains to seq %lld, "
                    "not to the checkpoint before it at seq %lld", (long long)cp->seq,
                    (long long)cp->prev_seq, (long long)v->last_row_seq);
        v->seen_v2 = true;
        return !v->o->pk || audit_checkpoint_valid(v->o->pk, cp);
    }
    if (v->o->pk && !audit_checkpoint_valid(v->o->pk, cp)) {
        problem(v, AUDIT_CHECKPOINT, cp->seq, "checkpoint at seq %lld has a bad signature "
                "(forged or altered, or the checkpoint before it was replaced)", (long long)cp->seq);
        return false;
    }
    if (cp->version == 1) {
        if (v->seen_v2)
            problem(v, AUDIT_CHECKPOINT, cp->seq, "checkpoint at seq %lld is of the old, unchained "
                    "kind but comes after chained ones (inserted)", (long long)cp->seq);
        return !v->seen_v2;
    }
    v->seen_v2 = true;
    return true;
}

static int on_checkpoint(const audit_checkpoint *row, void *arg)
{
    vstate *v = arg;
    audit_checkpoint cp = *row;
    const audit_checkpoint *from = v->o->from, *head = v->o->head;
    v->res->checkpoints++;
    pending_missing(v);
    bool first_of_from = from && !v->from_seen;
    if (first_of_from) {
        v->from_seen = true;
        if (cp.seq != from->seq || strcmp(cp.signature, from->signature) != 0) {
            problem(v, AUDIT_CHECKPOINT, from->seq, "checkpoint at seq %lld, verified before, "
                    "was deleted or replaced", (long long)from->seq);
            v->last_row_seq = from->seq;
            snprintf(v->last_row_sig, sizeof v->last_row_sig, "%s", from->signature);
            v->seen_v2 = from->version == 2;
            if (cp.seq != from->seq) {               /* judge this row too */
                v->res->checkpoints--;
                return on_checkpoint(row, arg);
            }
            return 0;
        }
    }
    if (head && cp.seq == head->seq) {
        v->head_cp_seen = true;
        if (strcmp(cp.signature, head->signature) != 0 || strcmp(cp.hash, head->hash) != 0)
            problem(v, AUDIT_CHECKPOINT, cp.seq, "the checkpoint at seq %lld is not the published "
                    "head: it was replaced", (long long)cp.seq);
    }
    bool valid = first_of_from ? true : checkpoint_chain_ok(v, &cp);
    if (first_of_from) v->seen_v2 = cp.version == 2;
    /* The bound of the stretch this checkpoint closes: its own, or — if
     * the stretch may span a restart (a seal made at startup after a
     * crash) — the looser of its own and the previous checkpoint's. */
    uint64_t every = cp.every, interval = cp.interval_s;
    if ((cp.flags & AUDIT_CP_RECOVERY) && v->last_row_every > every) every = v->last_row_every;
    if ((cp.flags & AUDIT_CP_RECOVERY) && v->last_row_interval > interval)
        interval = v->last_row_interval;
    bool contiguous = valid && v->o->pk && cp.version == 2 && !first_of_from &&
                      cp.prev_seq == v->last_row_seq;
    /* the count bound: a checkpoint at least every `every` entries */
    if (contiguous && every && (uint64_t)(cp.seq - cp.prev_seq) > every)
        problem(v, AUDIT_UNSEALED, cp.prev_seq + 1, "entries %lld..%lld have no checkpoint, but "
                "one is signed every %llu entries: checkpoints between seq %lld and %lld were "
                "deleted", (long long)cp.prev_seq + 1, (long long)cp.seq - 1,
                (unsigned long long)every, (long long)cp.prev_seq, (long long)cp.seq);
    if (valid && (cp.flags & AUDIT_CP_RECOVERY) && !first_of_from)
        warning(v, "checkpoint at seq %lld was made at a restart after an unclean stop: the "
                "entries after seq %lld were protected by the chain only until then",
                (long long)cp.seq, (long long)cp.prev_seq);
    v->last_row_seq = cp.seq;
    snprintf(v->last_row_sig, sizeof v->last_row_sig, "%s", cp.signature);
    v->last_row_every = cp.every;
    v->last_row_interval = cp.interval_s;
    if (!valid) return 0;
    v->pending = cp;
    v->pending_interval = contiguous ? interval : 0;     /* 0: the time bound is not checked */
    if (cp.seq > v->res->last_checkpoint_seq) v->res->last_checkpoint_seq = cp.seq;
    return 0;
}

static int on_entry(const audit_rec *e, void *arg)
{
    vstate *v = arg;
    audit_verify_result *res = v->res;
    if (res->entries == 0) res->first_seq = e->seq;
    res->entries++;
    res->last_seq = e->seq;

    vrow *r = &v->ring[v->n_read % AUDIT_RING];
    memset(r, 0, sizeof *r);
    r->seq = e->seq;
    r->ts = e->ts;
    snprintf(r->hash, sizeof r->hash, "%s", e->hash);
    snprintf(r->prev, sizeof r->prev, "%s", e->prev_hash);
    r->shift = AUDIT_SHIFT_NONE;
    if (!e->malformed) {
        char h[AUDIT_HASH_HEX];
        audit_chain_hash(e, h);
        if (strcmp(h, e->hash) == 0) {
            r->shift = 0;
        } else {
            audit_rec moved = *e;
            for (int d = 1; d <= AUDIT_LOOK && r->shift == AUDIT_SHIFT_NONE; d++) {
                for (int sign = -1; sign <= 1; sign += 2) {
                    moved.seq = e->seq - sign * d;
                    if (moved.seq < 1) continue;
                    audit_chain_hash(&moved, h);
                    if (strcmp(h, e->hash) == 0) { r->shift = sign * d; break; }
                }
            }
        }
    }

    /* The checkpoint just before this row: it must name this entry, with
     * the stored hash it signed. */
    if (v->pending.seq && v->pending.seq < e->seq) pending_missing(v);
    if (v->pending.seq == e->seq) {
        if (strcmp(v->pending.hash, e->hash) != 0)
            problem(v, AUDIT_CHECKPOINT, e->seq, "entry %lld differs from its signed checkpoint: "
                    "the chain was rewritten after seq %lld", (long long)e->seq,
                    (long long)v->last_good_cp);
        else {
            /* the time bound: the entries this checkpoint seals were written
             * within its interval (plus slack) of the first of them, or a
             * running server would have sealed them sooner */
            int64_t first_ts = v->unsealed_seq ? v->unsealed_ts : e->ts;
            uint64_t iv = v->pending_interval;
            if (iv && e->ts - first_ts > (int64_t)(iv + AUDIT_SEAL_SLACK_S(iv)))
                problem(v, AUDIT_UNSEALED, v->unsealed_seq, "entries %lld..%lld span %lld s "
                        "before the checkpoint at seq %lld, but one is signed within %llu s: "
                        "checkpoints between seq %lld and %lld were deleted (or the clock jumped)",
                        (long long)v->unsealed_seq, (long long)e->seq, (long long)(e->ts - first_ts),
                        (long long)e->seq, (unsigned long long)iv, (long long)v->pending.prev_seq,
                        (long long)e->seq);
            v->last_good_cp = e->seq;
            res->newest = v->pending;
        }
        v->pending.seq = 0;
        v->unsealed_seq = 0;
    } else if (!v->unsealed_seq && e->seq > res->newest.seq) {
        v->unsealed_seq = e->seq;
        v->unsealed_ts = e->ts;
    }
    if (v->o->head && e->seq == v->o->head->seq && strcmp(e->hash, v->o->head->hash) != 0)
        problem(v, AUDIT_CHECKPOINT, e->seq, "entry %lld differs from the published head: the "
                "log was rewritten", (long long)e->seq);
    v->last_ts = e->ts;

    v->n_read++;
    while (v->n_judged + AUDIT_LOOK < v->n_read) judge(v, (int64_t)v->n_judged++);
    return 0;
}

/* After the newest checkpoint: fewer than its `every` entries, spanning
 * less than its interval (plus slack), or the newest checkpoints are gone.
 * Within the bound it is normal — the next seal is not due yet, or the
 * server stopped without its shutdown checkpoint — and only a warning. */
static void judge_tail(vstate *v)
{
    audit_verify_result *res = v->res;
    const audit_verify_opts *o = v->o;
    if (!v->unsealed_seq) return;
    int64_t after = res->newest.seq;
    res->unsealed = res->last_seq - v->unsealed_seq + 1;
    int64_t now = o->now ? o->now : (int64_t)time(NULL);
    res->unsealed_age_s = now > v->unsealed_ts ? now - v->unsealed_ts : 0;
    if (!o->pk) return;                   /* nothing is known to hold */
    bool own = res->newest.seq && res->newest.version == 2 && res->newest.every;
    uint64_t every = own ? res->newest.every : o->every ? o->every : AUDIT_DEFAULT_EVERY;
    uint64_t interval = own ? res->newest.interval_s : o->interval_s ? o->interval_s
                                                                     : AUDIT_DEFAULT_INTERVAL_S;
    int64_t span = v->last_ts - v->unsealed_ts;
    int64_t limit = (int64_t)interval + (int64_t)AUDIT_SEAL_SLACK_S(interval);
    const char *what = after ? "the checkpoints after it were deleted"
                             : "the log's checkpoints were deleted";
    if ((uint64_t)res->unsealed >= every)
        problem(v, AUDIT_UNSEALED, v->unsealed_seq, "%lld entries after seq %lld have no "
                "checkpoint, but one is signed every %llu entries: %s", (long long)res->unsealed,
                (long long)after, (unsigned long long)every, what);
    else if (interval && span > limit)
        problem(v, AUDIT_UNSEALED, v->unsealed_seq, "entries %lld..%lld span %lld s without a "
                "checkpoint, but one is signed within %llu s: %s", (long long)v->unsealed_seq,
                (long long)res->last_seq, (long long)span, (unsigned long long)interval, what);
    else if (interval && res->unsealed_age_s > limit)
        warning(v, "unsealed tail of %lld entries after seq %lld, the oldest %lld s old (the "
                "bound is %llu s): the server is not running and did not stop cleanly (it seals "
                "them when it starts), or the newest checkpoints were deleted — check against a "
                "published head (--head)", (long long)res->unsealed, (long long)after,
                (long long)res->unsealed_age_s, (unsigned long long)interval);
    else
        warning(v, "unsealed tail of %lld entries after seq %lld: protected by the chain only "
                "until the next checkpoint (due within %llu s or %llu entries)",
                (long long)res->unsealed, (long long)after, (unsigned long long)interval,
                (unsigned long long)every);
}

static void judge_head(vstate *v)
{
    const audit_checkpoint *head = v->o->head;
    audit_verify_result *res = v->res;
    if (!head) return;
    if (res->last_seq < head->seq)
        problem(v, AUDIT_DELETED, res->last_seq + 1, "the log ends at seq %lld, but the published "
                "head is at seq %lld: entries %lld..%lld were deleted", (long long)res->last_seq,
                (long long)head->seq, (long long)res->last_seq + 1, (long long)head->seq);
    else if (!v->head_cp_seen)
        problem(v, AUDIT_CHECKPOINT, head->seq, "the checkpoint of the published head (seq %lld) "
                "was deleted", (long long)head->seq);
}

store_status audit_verify_ex(store *st, const audit_verify_opts *o, audit_verify_result *res)
{
    memset(res, 0, sizeof *res);
    res->intact = true;
    res->key_missing = o->pk == NULL;
    vstate *v = calloc(1, sizeof *v);
    if (!v) return STORE_ERROR;
    v->res = res;
    v->o = o;
    if (o->from) {                         /* what the earlier run established */
        res->newest = *o->from;
        v->last_good_cp = o->from->seq;
    }
    store_status r = store_audit_scan(st, o->from ? o->from->seq : 1, on_checkpoint, on_entry, v);
    if (r == STORE_OK) {
        if (o->from && !v->from_seen)
            problem(v, AUDIT_CHECKPOINT, o->from->seq, "checkpoint at seq %lld, verified before, "
                    "was deleted", (long long)o->from->seq);
        while (v->n_judged < v->n_read) judge(v, (int64_t)v->n_judged++);
        if (v->pending.seq)
            problem(v, AUDIT_DELETED, v->pending.seq, "entries after seq %lld were deleted: a "
                    "signed checkpoint names entry %lld", (long long)res->last_seq,
                    (long long)v->pending.seq);
        judge_tail(v);
        judge_head(v);
    }
    free(v);
    return r;
}

store_status audit_verify(store *st, const unsigned char *pk, audit_verify_result *res)
{
    audit_verify_opts o = {.pk = pk};
    return audit_verify_ex(st, &o, res);
}

/* ---- the head: a checkpoint to publish ---- */

cJSON *audit_head_json(const audit_checkpoint *cp, const unsigned char pk[32])
{
    char pkhex[65];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "audit_head");
    cJSON_AddNumberToObject(o, "seq", (double)cp->seq);
    cJSON_AddStringToObject(o, "hash", cp->hash);
    cJSON_AddNumberToObject(o, "ts", (double)cp->ts);
    cJSON_AddNumberToObject(o, "version", cp->version);
    cJSON_AddNumberToObject(o, "every", (double)cp->every);
    cJSON_AddNumberToObject(o, "interval_s", (double)cp->interval_s);
    cJSON_AddNumberToObject(o, "flags", cp->flags);
    cJSON_AddNumberToObject(o, "prev_seq", (double)cp->prev_seq);
    cJSON_AddStringToObject(o, "prev_signature", cp->prev_signature);
    cJSON_AddStringToObject(o, "signature", cp->signature);
    if (pk) {
        audit_hex(pk, 32, pkhex);
        cJSON_AddStringToObject(o, "public_key", pkhex);
    }
    return o;
}

static bool head_int(const cJSON *o, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(it) || it->valuedouble < (double)lo || it->valuedouble > (double)hi ||
        it->valuedouble != (double)(int64_t)it->valuedouble)
        return false;
    *out = (int64_t)it->valuedouble;
    return true;
}

static bool head_str(const cJSON *o, const char *name, char *out, size_t outlen, bool hex_only)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(it) || strlen(it->valuestring) >= outlen) return false;
    for (const char *p = it->valuestring; hex_only && *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
    snprintf(out, outlen, "%s", it->valuestring);
    return true;
}

int audit_head_parse(const char *text, audit_checkpoint *cp, char *err, size_t errlen)
{
    memset(cp, 0, sizeof *cp);
    cJSON *o = cJSON_Parse(text);
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(o, "object");
    int64_t seq, ts, version, every, interval, flags, prev;
    const int64_t big = (int64_t)1 << 53;      /* exact in a JSON number */
    bool ok = cJSON_IsObject(o) && cJSON_IsString(obj) && strcmp(obj->valuestring, "audit_head") == 0 &&
              head_int(o, "seq", 1, big, &seq) && head_int(o, "ts", 0, big, &ts) &&
              head_int(o, "version", 2, 2, &version) && head_int(o, "every", 0, big, &every) &&
              head_int(o, "interval_s", 0, big, &interval) && head_int(o, "flags", 0, 0xffff, &flags) &&
              head_int(o, "prev_seq", 0, big, &prev) &&
              head_str(o, "hash", cp->hash, sizeof cp->hash, true) && strlen(cp->hash) == 64 &&
              head_str(o, "signature", cp->signature, sizeof cp->signature, true) &&
              strlen(cp->signature) == 128 &&
              head_str(o, "prev_signature", cp->prev_signature, sizeof cp->prev_signature, true);
    cJSON_Delete(o);
    if (!ok) {
        snprintf(err, errlen, "not an audit head (the JSON that `brigade audit head` prints)");
        return -1;
    }
    cp->seq = seq;
    cp->ts = ts;
    cp->version = (int)version;
    cp->every = (uint64_t)every;
    cp->interval_s = (uint64_t)interval;
    cp->flags = (uint32_t)flags;
    cp->prev_seq = prev;
    return 0;
}
