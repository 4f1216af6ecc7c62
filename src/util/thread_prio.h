/* thread_prio.h — background threads yield the CPU to the loops.
 *
 * The store writer and the tracer do their work in bursts (a group commit
 * of every usage row and span queued over up to 100 ms, then an fsync).
 * Such a burst competes as an equal with a loop thread that is answering a
 * request on the same core, and the kernel lets the burst finish its slice
 * first: the loop waits, and a 100 µs request takes milliseconds (the c=1
 * tail in docs/benchmarks.md). The remedy: between rows a burst offers its
 * core to a thread waiting for it (thread_background_yield), so a loop
 * waits at most THREAD_BACKGROUND_YIELD_US behind it.
 *
 * Neither thread runs at a raised nice value, though both once did. A
 * niced thread gets about a tenth of a contended core (CFS weights 110
 * against 1024), and at full load that was less than either needed. The
 * niced writer fell behind loops that kept both cores busy until its queue
 * passed the shed bound and 60–70 % of the calls were refused (session 8).
 * The niced tracer dropped spans at its queue's bound: at saturation about
 * one trace in ten was incomplete even after its flushes stopped waiting
 * for the writer (session 9). At the loops' priority both kept up, and the
 * c=1 p99 did not move beyond this VM's noise (docs/benchmarks.md). */
#ifndef BRIGADE_THREAD_PRIO_H
#define BRIGADE_THREAD_PRIO_H

#include <stdbool.h>

/* How long a background thread works before it offers its core to any
 * thread waiting for it, in µs of wall time. */
#define THREAD_BACKGROUND_YIELD_US 200

/* A yield point for long background work (a group commit of thousands of
 * rows, a tracer flush): call it between rows. Every
 * THREAD_BACKGROUND_YIELD_US since the thread's last yield it calls
 * sched_yield(2), which lets a thread queued behind it on this core run
 * first; with nobody waiting it returns at once. Why a lower priority
 * would not do it: a woken loop thread queued on the core a background
 * burst holds was measured waiting out the burst's whole slice, 2–4 ms,
 * while the other core sat idle (perf sched timehist, docs/benchmarks.md),
 * even with the burst in SCHED_IDLE. Between calls it costs one clock
 * read (vDSO). */
void thread_background_yield(void);

/* While on, thread_background_yield on the calling thread returns without
 * yielding. For a thread that is behind (the store's writer with a long
 * usage queue, the tracer with a queue half full of spans): on a saturated machine each
 * yield was measured costing a third of a millisecond of waiting to run
 * again, so a writer yielding every 200 µs ran less than half the time it
 * could and never caught up (docs/benchmarks.md, session 8). Its queue is
 * then the longer wait; the loops' tail matters once it is short again. */
void thread_background_hurry(bool on);

/* How many times the calling thread has called sched_yield(2) in
 * thread_background_yield (tests, measurements). */
unsigned long thread_background_yields(void);

#endif
