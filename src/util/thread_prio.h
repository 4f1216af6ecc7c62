/* thread_prio.h — background threads yield the CPU to the loops.
 *
 * The store writer and the tracer do their work in bursts (a group commit
 * of every usage row and span queued over up to 100 ms, then an fsync).
 * Such a burst competes as an equal with a loop thread that is answering a
 * request on the same core, and the kernel lets the burst finish its slice
 * first: the loop waits, and a 100 µs request takes milliseconds (the c=1
 * tail in docs/benchmarks.md). Two remedies, used differently:
 *
 *   - thread_background_yield (both threads): between rows a burst offers
 *     its core to a thread waiting for it, so a loop waits at most
 *     THREAD_BACKGROUND_YIELD_US behind it;
 *   - a raised nice value (the tracer only): the scheduler preempts the
 *     thread as soon as a loop wakes, and gives it about a tenth of a
 *     contended core. That is right for work that may be shed — spans past
 *     the tracer's queue bound are dropped and counted — but not for the
 *     store's writer: its usage rows are money. Niced, the writer fell
 *     behind loops that kept both cores busy (gateway c=64, two loops) until
 *     its queue passed the shed bound and 60–70 % of the calls were
 *     refused; at the loops' priority it kept up and refused none, for a
 *     c=1 p99 within this VM's noise (docs/benchmarks.md, session 8). */
#ifndef BRIGADE_THREAD_PRIO_H
#define BRIGADE_THREAD_PRIO_H

#include <stdbool.h>

/* How much nicer than the process the tracer runs: at +10 its share of a
 * contended core is about a tenth of a loop's (CFS weights 110 against
 * 1024), above its ~6 % of a loop's work at full load (threads.sh). */
#define THREAD_BACKGROUND_NICE 10

/* Lower the calling thread's priority by THREAD_BACKGROUND_NICE (Linux:
 * per thread; one way: an unprivileged thread cannot raise it again).
 * Only for work that may be shed (above). Returns 0, or -1 if the kernel
 * refused (the thread then runs as before; nothing else changes). */
int thread_background(void);

/* How long a background thread works before it offers its core to any
 * thread waiting for it, in µs of wall time. */
#define THREAD_BACKGROUND_YIELD_US 200

/* A yield point for long background work (a group commit of thousands of
 * rows, a tracer flush): call it between rows. Every
 * THREAD_BACKGROUND_YIELD_US since the thread's last yield it calls
 * sched_yield(2), which lets a thread queued behind it on this core run
 * first; with nobody waiting it returns at once. Why the nice value alone
 * is not enough: a woken loop thread queued on the core a background
 * burst holds was measured waiting out the burst's whole slice, 2–4 ms,
 * while the other core sat idle (perf sched timehist, docs/benchmarks.md),
 * even with the burst in SCHED_IDLE. Between calls it costs one clock
 * read (vDSO). */
void thread_background_yield(void);

/* While on, thread_background_yield on the calling thread returns without
 * yielding. For a thread that is behind on work that may not be shed (the
 * store's writer, with a long usage queue): on a saturated machine each
 * yield was measured costing a third of a millisecond of waiting to run
 * again, so a writer yielding every 200 µs ran less than half the time it
 * could and never caught up (docs/benchmarks.md, session 8). Its queue is
 * then the longer wait; the loops' tail matters once it is short again. */
void thread_background_hurry(bool on);

/* How many times the calling thread has called sched_yield(2) in
 * thread_background_yield (tests, measurements). */
unsigned long thread_background_yields(void);

#endif
