/* mailbox.c — run a function on another loop's thread.
 *
 * Runs live on the loop of the request that started them, but a cancel, an
 * interrupt or "your turn" for a queued message can come from any loop. A
 * mailbox is a mutex-guarded queue plus a uv_async handle: any thread posts,
 * the owning loop drains. The handle is unreferenced so an idle mailbox
 * never keeps a loop alive. */
#include "runs/runs_internal.h"

#include <stdlib.h>

typedef struct mail {
    struct mail *next;
    mailbox_fn   fn;
    void        *arg;
} mail;

struct mailbox {
    uv_async_t      async;
    pthread_mutex_t lock;
    mail           *head, *tail;
    bool            closed;
};

static void mailbox_drain(uv_async_t *a)
{
    mailbox *m = a->data;
    pthread_mutex_lock(&m->lock);
    mail *list = m->head;
    m->head = m->tail = NULL;
    pthread_mutex_unlock(&m->lock);
    while (list) {
        mail *next = list->next;
        list->fn(list->arg);
        free(list);
        list = next;
    }
}

mailbox *mailbox_new(uv_loop_t *loop)
{
    mailbox *m = calloc(1, sizeof *m);
    if (!m) abort();
    pthread_mutex_init(&m->lock, NULL);
    uv_async_init(loop, &m->async, mailbox_drain);
    m->async.data = m;
    uv_unref((uv_handle_t *)&m->async);
    return m;
}

bool mailbox_post(mailbox *m, mailbox_fn fn, void *arg)
{
    mail *x = malloc(sizeof *x);
    if (!x) abort();
    x->next = NULL;
    x->fn = fn;
    x->arg = arg;
    pthread_mutex_lock(&m->lock);
    if (m->closed) {
        pthread_mutex_unlock(&m->lock);
        free(x);
        return false;
    }
    if (m->tail) m->tail->next = x;
    else m->head = x;
    m->tail = x;
    /* uv_async_send under the lock: mailbox_close cannot free the handle
     * between our check of `closed` and the send. */
    uv_async_send(&m->async);
    pthread_mutex_unlock(&m->lock);
    return true;
}

static void mailbox_closed(uv_handle_t *h)
{
    mailbox *m = h->data;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void mailbox_close(mailbox *m)
{
    pthread_mutex_lock(&m->lock);
    m->closed = true;
    pthread_mutex_unlock(&m->lock);
    mailbox_drain(&m->async);
    uv_close((uv_handle_t *)&m->async, mailbox_closed);
}
