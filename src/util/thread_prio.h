/* thread_prio.h — background threads yield the CPU to the loops.
 *
 * The store writer and the tracer do their work in bursts (a group commit
 * of every usage row and span queued over up to 100 ms, then an fsync).
 * At the default priority such a burst competes as an equal with a loop
 * thread that is answering a request on the same core, and the kernel lets
 * the burst finish its slice first: the loop waits, and a 100 µs request
 * takes milliseconds (the c=1 tail in docs/benchmarks.md). A raised nice
 * value makes the scheduler preempt the burst as soon as a loop wakes,
 * while the thread still gets the CPU whenever the loops leave it idle and
 * a share of it when they do not. That is not all it takes, measured:
 * see thread_background_yield below. */
#ifndef BRIGADE_THREAD_PRIO_H
#define BRIGADE_THREAD_PRIO_H

/* How much nicer than the process a background thread runs: at +10 its
 * share of a contended core is about a tenth of a loop's (CFS weights 110
 * against 1024), enough for the writer's ~20 % of a loop's work under full
 * load (docs/benchmarks.md). */
#define THREAD_BACKGROUND_NICE 10

/* Lower the calling thread's priority by THREAD_BACKGROUND_NICE (Linux:
 * per thread). Returns 0, or -1 if the kernel refused (the thread then runs
 * as before; nothing else changes). */
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

#endif
