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
 * inserted row, the rest of a renumbered tail) are not reported again. */
#include "obs/audit_chain.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_LOOK 8                       /* rows looked at on each side */
#define AUDIT_RING 32                      /* > 2 * AUDIT_LOOK + 1 */
#define AUDIT_SHIFT_NONE 1000000           /* contents match no nearby seq */

typedef struct vrow {
    int64_t seq, ts;
    char    hash[AUDIT_HASH_HEX], prev[AUDIT_HASH_HEX];
    int     shift;                         /* contents hash as seq - shift; 0 = intact */
    bool    reported;                      /* a reported problem already explains it */
} vrow;

typedef struct vcp {
    int64_t seq;
    char    hash[AUDIT_HASH_HEX];
} vcp;

typedef struct vstate {
    audit_verify_result *res;
    const unsigned char *pk;
    vrow     ring[AUDIT_RING];
    uint64_t n_read, n_judged;
    vcp     *cps;                          /* checkpoints with a good signature */
    size_t   n_cps, cap_cps, next_cp;
    int64_t  last_good_cp;                 /* the newest checkpoint that held so far */
    bool     oom;
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
}

const char *audit_problem_kind_name(audit_problem_kind k)
{
    switch (k) {
    case AUDIT_MODIFIED: return "modified";
    case AUDIT_DELETED: return "deleted";
    case AUDIT_INSERTED: return "inserted";
    case AUDIT_REORDERED: return "reordered";
    case AUDIT_CHECKPOINT: return "checkpoint";
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

static int on_checkpoint(const audit_checkpoint *cp, void *arg)
{
    vstate *v = arg;
    v->res->checkpoints++;
    if (v->pk && !audit_checkpoint_valid(v->pk, cp)) {
        problem(v, AUDIT_CHECKPOINT, cp->seq,
                "checkpoint at seq %lld has a bad signature (forged or altered)", (long long)cp->seq);
        return 0;
    }
    if (v->n_cps == v->cap_cps) {
        size_t cap = v->cap_cps ? v->cap_cps * 2 : 64;
        vcp *nc = realloc(v->cps, cap * sizeof *nc);
        if (!nc) { v->oom = true; return 1; }
        v->cps = nc;
        v->cap_cps = cap;
    }
    v->cps[v->n_cps].seq = cp->seq;
    snprintf(v->cps[v->n_cps].hash, sizeof v->cps[v->n_cps].hash, "%s", cp->hash);
    v->n_cps++;
    if (cp->seq > v->res->last_checkpoint_seq) v->res->last_checkpoint_seq = cp->seq;
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

    /* Checkpoints this row passes: each must name an existing entry whose
     * stored hash is the signed one. */
    while (v->next_cp < v->n_cps && v->cps[v->next_cp].seq <= e->seq) {
        const vcp *cp = &v->cps[v->next_cp++];
        if (cp->seq < e->seq)
            problem(v, AUDIT_DELETED, cp->seq, "entry %lld was deleted: a signed checkpoint "
                    "names it, but it is not in the log", (long long)cp->seq);
        else if (strcmp(cp->hash, e->hash) != 0)
            problem(v, AUDIT_CHECKPOINT, cp->seq, "entry %lld differs from its signed checkpoint: "
                    "the chain was rewritten after seq %lld", (long long)cp->seq,
                    (long long)v->last_good_cp);
        else
            v->last_good_cp = cp->seq;
    }

    v->n_read++;
    while (v->n_judged + AUDIT_LOOK < v->n_read) judge(v, (int64_t)v->n_judged++);
    return 0;
}

store_status audit_verify(store *st, const unsigned char *pk, audit_verify_result *res)
{
    memset(res, 0, sizeof *res);
    res->intact = true;
    res->key_missing = pk == NULL;
    vstate *v = calloc(1, sizeof *v);
    if (!v) return STORE_ERROR;
    v->res = res;
    v->pk = pk;
    store_status r = store_audit_scan(st, on_checkpoint, on_entry, v);
    if (r == STORE_OK && v->oom) r = STORE_ERROR;
    if (r == STORE_OK) {
        while (v->n_judged < v->n_read) judge(v, (int64_t)v->n_judged++);
        for (; v->next_cp < v->n_cps; v->next_cp++) {
            const vcp *cp = &v->cps[v->next_cp];
            problem(v, AUDIT_DELETED, cp->seq, "entries after seq %lld were deleted: a signed "
                    "checkpoint names entry %lld", (long long)res->last_seq, (long long)cp->seq);
        }
    }
    free(v->cps);
    free(v);
    return r;
}
