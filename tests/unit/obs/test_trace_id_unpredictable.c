/* test_trace_id_unpredictable.c — new trace ids (src/obs/traceparent.c)
 * cannot be worked out from ids already seen.
 *
 * Why it matters: anyone may send spans into a trace id they name, and a
 * trace with another owner's span in it is hidden from its owner. Ids once
 * came straight from splitmix64, whose every output gives its state away,
 * so one user could compute the ids of other users' next requests and hide
 * their traces. A new id is 48 bits of Unix milliseconds, then 80 bits of
 * SipHash under a key drawn once per process. This file fails if the
 * random part goes back to anything predictable: the attack that worked
 * (splitmix64's state recovered from one id, or from a span id, which is
 * still that generator's raw output) must predict nothing; the bits must
 * look independent (no repeats, no constant step, each bit set about half
 * the time and unrelated to the same bit of the previous id); and two
 * processes started in the same millisecond must not make the same ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "obs/obs_internal.h"

#define IDS 4096       /* ids made in a row per check */
#define RAND_BYTES 10  /* the random part: trace_id[6..15] */

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static uint64_t time_prefix(const obs_trace_ctx *c)
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++) ms = ms << 8 | c->trace_id[i];
    return ms;
}

static const uint8_t *random_part(const obs_trace_ctx *c) { return c->trace_id + 6; }

static int cmp_random(const void *a, const void *b) { return memcmp(a, b, RAND_BYTES); }

/* How many of the n rows of `width` bytes are repeats of another. */
static size_t repeats(uint8_t *rows, size_t n, size_t width)
{
    qsort(rows, n, width, cmp_random);
    size_t same = 0;
    for (size_t i = 1; i < n; i++) same += memcmp(rows + (i - 1) * width, rows + i * width, width) == 0;
    return same;
}

/* The random parts as 80-bit big-endian numbers: b - a, modulo 2^80. */
static void difference(const uint8_t *a, const uint8_t *b, uint8_t *out)
{
    int borrow = 0;
    for (int i = RAND_BYTES - 1; i >= 0; i--) {
        int d = b[i] - a[i] - borrow;
        borrow = d < 0;
        out[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
}

static obs_trace_ctx ids[IDS];

/* (a) Each id carries the millisecond it was made in; ids made later never
 * sort earlier. */
static void test_time_prefix_is_the_current_ms(void **state)
{
    (void)state;
    for (int i = 0; i < IDS; i++) {
        uint64_t before = now_ms();
        obs_trace_ctx_new(&ids[i]);
        uint64_t after = now_ms();
        uint64_t ms = time_prefix(&ids[i]);
        if (ms < before || ms > after)
            fail_msg("id %d: time prefix %llu outside [%llu, %llu]", i, (unsigned long long)ms,
                     (unsigned long long)before, (unsigned long long)after);
        if (i && ms < time_prefix(&ids[i - 1])) fail_msg("id %d is older than the one before it", i);
    }
}

/* (b) The random parts of ids made in a row: none repeats, consecutive ones
 * differ by no constant (neither XOR nor subtraction: a counter, or any
 * generator stepping by a constant, would), and each of the 80 bits is set
 * in about half of them and equals the previous id's bit about half the
 * time. The bounds are 6 standard deviations of a fair coin: with 80 bits
 * and two counts each, a false alarm is ~3e-7 likely; a biased or
 * correlated bit is far outside them. */
static void test_random_parts_look_independent(void **state)
{
    (void)state;
    for (int i = 0; i < IDS; i++) obs_trace_ctx_new(&ids[i]);

    static uint8_t rows[IDS][RAND_BYTES], xors[IDS - 1][RAND_BYTES], diffs[IDS - 1][RAND_BYTES];
    for (int i = 0; i < IDS; i++) memcpy(rows[i], random_part(&ids[i]), RAND_BYTES);
    for (int i = 1; i < IDS; i++) {
        for (int b = 0; b < RAND_BYTES; b++) xors[i - 1][b] = rows[i][b] ^ rows[i - 1][b];
        difference(rows[i - 1], rows[i], diffs[i - 1]);
    }
    /* counted before repeats() sorts the rows */
    int set[RAND_BYTES * 8] = {0}, same_as_before[RAND_BYTES * 8] = {0};
    for (int i = 0; i < IDS; i++)
        for (int bit = 0; bit < RAND_BYTES * 8; bit++) {
            int v = rows[i][bit / 8] >> (bit % 8) & 1;
            set[bit] += v;
            if (i) same_as_before[bit] += v == (rows[i - 1][bit / 8] >> (bit % 8) & 1);
        }
    assert_int_equal(repeats(&rows[0][0], IDS, RAND_BYTES), 0);
    /* 2^-80 per pair: any repeated step means a relation, not chance */
    assert_int_equal(repeats(&xors[0][0], IDS - 1, RAND_BYTES), 0);
    assert_int_equal(repeats(&diffs[0][0], IDS - 1, RAND_BYTES), 0);

    double bound = 6 * sqrt(IDS) / 2;   /* 6 sigma of a binomial(n, 1/2) */
    for (int bit = 0; bit < RAND_BYTES * 8; bit++) {
        if (fabs(set[bit] - IDS / 2.0) > bound)
            fail_msg("bit %d of the random part is set in %d of %d ids", bit, set[bit], IDS);
        if (fabs(same_as_before[bit] - (IDS - 1) / 2.0) > bound)
            fail_msg("bit %d equals the previous id's in %d of %d pairs", bit, same_as_before[bit], IDS - 1);
    }
}

/* ---- the attack that worked: splitmix64's state from one output ---- */

#define GOLDEN 0x9E3779B97F4A7C15ull
#define AHEAD 64   /* outputs predicted after the one seen */

static uint64_t splitmix_out(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t unxorshift(uint64_t y, int s)
{
    uint64_t x = y;
    for (int i = s; i < 64; i += s) x = y ^ (x >> s);
    return x;
}

static uint64_t inverse_mod_2_64(uint64_t a)   /* a odd: Newton's iteration */
{
    uint64_t x = a;
    for (int i = 0; i < 5; i++) x *= 2 - a * x;
    return x;
}

/* The generator's state that gave output z. */
static uint64_t splitmix_state_of(uint64_t z)
{
    z = unxorshift(z, 31);
    z *= inverse_mod_2_64(0x94D049BB133111EBull);
    z = unxorshift(z, 27);
    z *= inverse_mod_2_64(0xBF58476D1CE4E5B9ull);
    return unxorshift(z, 30);
}

static uint64_t read_le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint64_t read_be(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

/* Does any 8-byte window of `next` (RAND_BYTES long), read in either byte
 * order, equal one of the AHEAD outputs that follow the one read from the
 * 8 bytes at `seen` (either order)? */
static bool predicts(const uint8_t *seen, const uint8_t *next)
{
    uint64_t states[2] = {splitmix_state_of(read_le(seen)), splitmix_state_of(read_be(seen))};
    for (int o = 0; o < 2; o++)
        for (uint64_t j = 1; j <= AHEAD; j++) {
            uint64_t p = splitmix_out(states[o] + j * GOLDEN);
            for (int w = 0; w + 8 <= RAND_BYTES; w++)
                if (read_le(next + w) == p || read_be(next + w) == p) return true;
        }
    return false;
}

/* How many of n contexts in a row an attacker could have predicted from
 * the one before: from its trace id's random part or its span id (both
 * seen by whoever made that request, in `traceparent`). */
static int predicted(const obs_trace_ctx *c, int n)
{
    int hits = 0;
    for (int i = 1; i < n; i++) {
        const uint8_t *next = random_part(&c[i]);
        bool hit = predicts(c[i - 1].span_id, next);
        for (int w = 0; !hit && w + 8 <= RAND_BYTES; w++) hit = predicts(random_part(&c[i - 1]) + w, next);
        hits += hit;
    }
    return hits;
}

static void test_splitmix_state_recovery_predicts_nothing(void **state)
{
    (void)state;
    /* The attack works where it should: on ids made as they once were
     * (obs_random_id(id + 6, 10): one output and two bytes of the next,
     * then the span id), it predicts every next id. */
    uint64_t s = 0x0123456789abcdefull;
    static obs_trace_ctx old[64];
    for (int i = 0; i < 64; i++) {
        uint64_t a = splitmix_out(s += GOLDEN), b = splitmix_out(s += GOLDEN), sp = splitmix_out(s += GOLDEN);
        memcpy(old[i].trace_id + 6, &a, 8);
        memcpy(old[i].trace_id + 14, &b, 2);
        memcpy(old[i].span_id, &sp, 8);
        for (int child = 0; child < i % 5; child++) s += GOLDEN;   /* spans made between */
    }
    assert_int_equal(splitmix_state_of(splitmix_out(42)), 42);
    assert_int_equal(predicted(old, 64), 63);

    /* On the ids the server makes, it predicts none. */
    for (int i = 0; i < IDS; i++) obs_trace_ctx_new(&ids[i]);
    int hits = predicted(ids, IDS);
    if (hits) fail_msg("%d of %d new trace ids were predicted from the id made before", hits, IDS - 1);
}

/* ---- (c) two processes ---- */

#define CHILD_IDS 256

/* The child's part (this program run again with --emit-ids START_MS): wait
 * for START_MS, then make CHILD_IDS ids and write them, raw, to stdout. */
static int emit_ids(const char *start)
{
    uint64_t at = strtoull(start, NULL, 10);
    while (now_ms() < at) {}
    static obs_trace_ctx mine[CHILD_IDS];
    for (int i = 0; i < CHILD_IDS; i++) obs_trace_ctx_new(&mine[i]);
    return fwrite(mine, sizeof mine[0], CHILD_IDS, stdout) == CHILD_IDS ? 0 : 1;
}

/* Start this program as a child that emits ids from start_ms; its pid, and
 * the read end of its stdout in *fd. */
static pid_t spawn_emitter(uint64_t start_ms, int *fd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        char arg[32];
        snprintf(arg, sizeof arg, "%llu", (unsigned long long)start_ms);
        execl("/proc/self/exe", "test_trace_id_unpredictable", "--emit-ids", arg, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    *fd = p[0];
    return pid;
}

static void read_ids(int fd, obs_trace_ctx *out)
{
    size_t want = CHILD_IDS * sizeof out[0], got = 0;
    while (got < want) {
        ssize_t r = read(fd, (char *)out + got, want - got);
        if (r <= 0) fail_msg("a child process wrote %zu of %zu bytes of ids", got, want);
        got += (size_t)r;
    }
    close(fd);
}

/* The key is drawn per process: two processes that start making ids in
 * the same millisecond (a seed taken from the clock, or a key built in,
 * would make them equal) share no random part. */
static void test_two_processes_make_different_ids(void **state)
{
    (void)state;
    static obs_trace_ctx a[CHILD_IDS], b[CHILD_IDS];
    uint64_t start = now_ms() + 1000;   /* both children are up by then (ASan too) */
    int fa, fb;
    pid_t pa = spawn_emitter(start, &fa), pb = spawn_emitter(start, &fb);
    read_ids(fa, a);
    read_ids(fb, b);
    int st;
    assert_int_equal(waitpid(pa, &st, 0), pa);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(waitpid(pb, &st, 0), pb);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    static uint8_t rows[2 * CHILD_IDS][RAND_BYTES];
    int same_ms = 0;
    for (int i = 0; i < CHILD_IDS; i++) {
        memcpy(rows[i], random_part(&a[i]), RAND_BYTES);
        memcpy(rows[CHILD_IDS + i], random_part(&b[i]), RAND_BYTES);
        same_ms += time_prefix(&a[i]) == time_prefix(&b[i]);
    }
    /* Both start at `start` unless one came up late (a busy machine):
     * then they are merely close in time, and still must not agree. */
    print_message("two processes: %d of %d ids made in the same ms as the other's\n", same_ms, CHILD_IDS);
    size_t shared = repeats(&rows[0][0], 2 * CHILD_IDS, RAND_BYTES);
    if (shared) fail_msg("two processes made %zu of the same random parts", shared);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--emit-ids") == 0) return emit_ids(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_prefix_is_the_current_ms),
        cmocka_unit_test(test_random_parts_look_independent),
        cmocka_unit_test(test_splitmix_state_recovery_predicts_nothing),
        cmocka_unit_test(test_two_processes_make_different_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
