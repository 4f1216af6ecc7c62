/* inbox.c — a cross-loop inbox (see inbox.h). */
#include "util/inbox.h"

#include <stddef.h>

static void inbox_on_async(uv_async_t *a)
{
    inbox *ib = a->data;
    ib->wake(ib);
}

int inbox_init(inbox *ib, uv_loop_t *loop, pthread_mutex_t *lock, void (*wake)(inbox *ib),
               void *owner)
{
    ib->lock = lock;
    ib->head = ib->tail = NULL;
    ib->closed = false;
    ib->owner = owner;
    ib->wake = wake;
    ib->on_closed = NULL;
    int rc = uv_async_init(loop, &ib->async, inbox_on_async);
    if (rc != 0) return rc;
    ib->async.data = ib;
    uv_unref((uv_handle_t *)&ib->async);
    return 0;
}

bool inbox_push_locked(inbox *ib, inbox_node *n)
{
    if (ib->closed) return false;
    n->prev = ib->tail;
    n->next = NULL;
    if (ib->tail) ib->tail->next = n;
    else          ib->head = n;
    ib->tail = n;
    /* Under the lock: the handle cannot be closed between the check of
     * `closed` above and this send. */
    uv_async_send(&ib->async);
    return true;
}

void inbox_unlink_locked(inbox *ib, inbox_node *n)
{
    if (n->prev) n->prev->next = n->next;
    else         ib->head = n->next;
    if (n->next) n->next->prev = n->prev;
    else         ib->tail = n->prev;
    n->prev = n->next = NULL;
}

inbox_node *inbox_pop_locked(inbox *ib)
{
    inbox_node *n = ib->head;
    if (n) inbox_unlink_locked(ib, n);
    return n;
}

inbox_node *inbox_take_all_locked(inbox *ib)
{
    inbox_node *list = ib->head;
    ib->head = ib->tail = NULL;
    return list;
}

void inbox_mark_closed_locked(inbox *ib) { ib->closed = true; }

static void inbox_handle_closed(uv_handle_t *h)
{
    inbox *ib = h->data;
    if (ib->on_closed) ib->on_closed(ib);
}

void inbox_close_handle(inbox *ib, void (*on_closed)(inbox *ib))
{
    ib->on_closed = on_closed;
    uv_close((uv_handle_t *)&ib->async, inbox_handle_closed);
}
