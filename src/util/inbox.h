/* inbox.h — a cross-loop inbox: items that any thread appends, handed to
 * one libuv loop's thread. It is what runs/mailbox.c (run a function on
 * another loop) and govern/fairq.c (deliver a grant on the waiter's loop)
 * share: an intrusive FIFO list, a closed flag, and a uv_async_t that wakes
 * the loop, with the rules that make them safe across threads:
 *   - everything is guarded by one mutex that the owner gives (its own, or
 *     one it already holds for related state, as the fair queue does);
 *     the `_locked` calls need it held;
 *   - a push wakes the loop with uv_async_send while holding the lock, so
 *     closing cannot free the handle between the check of `closed` and the
 *     send; a push after close appends nothing and returns false;
 *   - the handle is unreferenced: an idle inbox never keeps a loop alive;
 *   - how the loop drains (all at once, or one at a time so a delivery may
 *     unlink a later item) and what closing does to what is still inside
 *     (delivered, or given back) are the owner's choice, made in its wake
 *     function and before inbox_close_handle.
 * The inbox allocates nothing: items embed an inbox_node, and the owner
 * embeds the inbox and frees it in on_closed. */
#ifndef BRIGADE_INBOX_H
#define BRIGADE_INBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

typedef struct inbox_node {
    struct inbox_node *prev, *next;
} inbox_node;

typedef struct inbox inbox;
struct inbox {
    uv_async_t       async;
    pthread_mutex_t *lock;
    inbox_node      *head, *tail;
    bool             closed;
    void            *owner;                    /* for the callbacks */
    void           (*wake)(inbox *ib);         /* on the loop's thread, lock not held */
    void           (*on_closed)(inbox *ib);
};

/* On the loop's thread. Returns 0 or a libuv error (then nothing to undo). */
int inbox_init(inbox *ib, uv_loop_t *loop, pthread_mutex_t *lock, void (*wake)(inbox *ib),
               void *owner);

/* Append n at the tail and wake the loop; false (n not appended) once
 * closed. */
bool inbox_push_locked(inbox *ib, inbox_node *n);
/* The oldest item, taken out; NULL when empty. */
inbox_node *inbox_pop_locked(inbox *ib);
/* The whole list, oldest first, linked by `next`; the inbox is left empty. */
inbox_node *inbox_take_all_locked(inbox *ib);
/* Take n (which is in ib) out, wherever it is. */
void inbox_unlink_locked(inbox *ib, inbox_node *n);
/* From now on pushes fail. */
void inbox_mark_closed_locked(inbox *ib);

/* On the loop's thread, lock not held, once closed and drained by the
 * owner: close the wake-up handle; on_closed runs when libuv is done with
 * it (free the owner there). */
void inbox_close_handle(inbox *ib, void (*on_closed)(inbox *ib));

#endif
