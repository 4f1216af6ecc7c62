/* audit_chain.h — the audit log's cryptography: how an entry is hashed,
 * how a checkpoint is signed, where the signing key lives, and how the
 * whole log is verified.
 *
 * Entry hash = SHA-256 over a canonical encoding of (seq, ts, tenant_id,
 * actor, credential, action, target, details, prev_hash): a domain tag,
 * then each field in that fixed order — integers as 8 bytes big-endian,
 * strings as an 8-byte big-endian length followed by their bytes. Every
 * field is length-delimited, so no two different entries encode alike
 * ("ab"+"c" and "a"+"bc" differ), unlike a naive concatenation.
 *
 * Checkpoint = Ed25519 signature (libsodium) over the encoding of (tag,
 * seq, hash, ts, every, interval_s, flags, prev_seq, prev_signature) with
 * the server key in DATA_DIR/audit_ed25519.key: the checkpoints form a
 * chain of their own, so none can be removed from the middle or replaced.
 * The entry chain alone shows that entries were changed, removed or added
 * in the middle; the signatures also stop someone who rewrites the chain
 * from the tampered entry onwards (they cannot re-sign the checkpoints
 * after it), and the bound a checkpoint signs (a seal at least every
 * `every` entries and `interval_s` seconds) lets the verifier tell a
 * missing newest checkpoint from one not yet due.
 *
 * Nothing here keeps state; src/obs/audit.c is the running log. */
#ifndef BRIGADE_AUDIT_CHAIN_H
#define BRIGADE_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define AUDIT_ENTRY_TAG "brigade-audit-entry-v1"
#define AUDIT_CHECKPOINT_TAG "brigade-audit-checkpoint-v2"
#define AUDIT_CHECKPOINT_TAG_V1 "brigade-audit-checkpoint-v1"   /* legacy rows, unchained */
#define AUDIT_KEY_FILE "audit_ed25519.key"
#define AUDIT_DEFAULT_EVERY 1000           /* a checkpoint at least every 1000 entries … */
#define AUDIT_DEFAULT_INTERVAL_S 60        /* … and within 60 s of an entry */
#define AUDIT_GENESIS_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* The canonical encoding of an entry (for the unit tests and for anyone
 * re-implementing the verifier). Writes at most outlen bytes, returns the
 * full length (like snprintf). */
size_t audit_chain_encode(const audit_rec *e, unsigned char *out, size_t outlen);
/* SHA-256 of the canonical encoding, 64 lower-case hex digits. */
void audit_chain_hash(const audit_rec *e, char out[AUDIT_HASH_HEX]);

/* The server's signing key. */
typedef struct audit_key {
    unsigned char pk[32];
    unsigned char sk[64];
} audit_key;

/* Load DATA_DIR/audit_ed25519.key, or create it (mode 0600, atomically: two
 * processes starting at once end up with the same key) when `create`.
 * A key file readable by group or others is refused. 0, or -1 with err. */
int audit_key_load(const char *data_dir, bool create, audit_key *key, char *err, size_t errlen);
/* Sign / check a checkpoint (sign fills cp->signature). */
void audit_checkpoint_sign(const audit_key *key, audit_checkpoint *cp);
bool audit_checkpoint_valid(const unsigned char pk[32], const audit_checkpoint *cp);
/* The store_audit_chain callback form of audit_checkpoint_sign (arg: audit_key). */
int  audit_chain_sign_cb(void *arg, audit_checkpoint *cp);

/* Hex helpers (lower case). from_hex: 0, or -1 if not exactly 2*n hex digits. */
void audit_hex(const unsigned char *in, size_t n, char *out);
int  audit_from_hex(const char *hex, unsigned char *out, size_t n);

/* --- verification (audit_verify.c) --- */

typedef enum audit_problem_kind {
    AUDIT_MODIFIED = 1,     /* an entry's contents do not match its hash */
    AUDIT_DELETED,          /* entries missing: a gap, or the chain skips over them */
    AUDIT_INSERTED,         /* an entry that is not part of the chain */
    AUDIT_REORDERED,        /* entries swapped / moved, or ts going backwards */
    AUDIT_CHECKPOINT,       /* a checkpoint's signature is bad, the entry it signs differs,
                             * or the checkpoints' own chain is broken */
    AUDIT_UNSEALED          /* more entries without a checkpoint than the bound allows */
} audit_problem_kind;

typedef struct audit_problem {
    audit_problem_kind kind;
    int64_t seq;            /* the entry (or checkpoint) it is about */
    char    message[240];
} audit_problem;

#define AUDIT_VERIFY_MAX_PROBLEMS 64
#define AUDIT_VERIFY_MAX_WARNINGS 8

/* The time a seal may be late past its bound: the sealer's tick, a busy
 * writer, entries written while the seal waits. */
#define AUDIT_SEAL_SLACK_S(interval_s) ((interval_s) / 2 + 5)

typedef struct audit_verify_opts {
    const unsigned char *pk;           /* checkpoints must be signed with it; NULL: signatures
                                        * and bounds are not checked (res->key_missing) */
    uint64_t every, interval_s;        /* the bound of a log whose newest checkpoint does not
                                        * say it (none, or legacy); 0 = the defaults */
    int64_t  now;                      /* unix seconds; 0 = the clock */
    const audit_checkpoint *head;      /* a published head (its signature checked by the
                                        * caller): the log must still hold it */
    const audit_checkpoint *from;      /* verify from this checkpoint on, verified earlier
                                        * (it must still be there, unchanged); NULL = all */
} audit_verify_opts;

typedef struct audit_verify_result {
    bool     intact;
    uint64_t entries, checkpoints;     /* read (from `from` on, if given) */
    int64_t  first_seq, last_seq;
    int64_t  last_checkpoint_seq;      /* 0 = none */
    audit_checkpoint newest;           /* the newest checkpoint that holds: the head (seq 0 = none) */
    int64_t  unsealed;                 /* entries after it */
    int64_t  unsealed_age_s;           /* how old the first of them is */
    bool     key_missing;              /* no public key: signatures not checked */
    size_t   n_problems;               /* reported (at most AUDIT_VERIFY_MAX_PROBLEMS) */
    uint64_t more_problems;            /* found beyond those */
    audit_problem problems[AUDIT_VERIFY_MAX_PROBLEMS];
    size_t   n_warnings;               /* not tampering, but worth knowing (an unsealed tail,
                                        * a seal made late at a restart after a crash) */
    char     warnings[AUDIT_VERIFY_MAX_WARNINGS][240];
} audit_verify_result;

/* Verify the log of `st` (one consistent snapshot) with opts. STORE_OK when
 * the log could be read — whether it is intact is res->intact. res is
 * large: allocate it, not on a small stack. */
store_status audit_verify_ex(store *st, const audit_verify_opts *opts, audit_verify_result *res);
/* The whole log, default bounds. */
store_status audit_verify(store *st, const unsigned char *pk, audit_verify_result *res);

/* A checkpoint as JSON (the head `brigade audit head` prints and
 * `--head FILE` reads) and back: 0, or -1 with err. */
struct cJSON;
struct cJSON *audit_head_json(const audit_checkpoint *cp, const unsigned char pk[32]);
int audit_head_parse(const char *text, audit_checkpoint *cp, char *err, size_t errlen);

const char *audit_problem_kind_name(audit_problem_kind k);   /* "modified", "deleted", … */

/* The findings as JSON, the same for the API and the command line: adds
 * "problems" [{kind, seq, message}], "more_problems", "warnings" [message]
 * and "unsealed" to o. */
void audit_problems_json(struct cJSON *o, const audit_verify_result *res);

#endif
