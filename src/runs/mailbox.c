/* mailbox.c — run a function on another loop's thread.
 *
 * Runs live on the loop of the request that started them, but a cancel, an
 * interrupt or "your turn" for a queued message can come from any loop. A
 * mailbox is a cross-loop inbox (util/inbox.h) with its own lock, of
 * (function, argument) letters: any thread posts, the owning loop drains
 * them all at once, in order (a letter posted while draining waits for the
 * next wake-up). Once closed, a post runs nothing and returns false; what
 * was posted before is still run, by mailbox_close itself. */
#include "runs/runs_internal.h"

#include <stddef.h>
#include <stdlib.h>

#include "util/inbox.h"
#include "util/xalloc.h"

typedef struct mail {
    inbox_node   node;          /* first: a node is its mail */
    mailbox_fn   fn;
    void        *arg;
} mail;

struct mailbox {
    inbox           in;
    pthread_mutex_t lock;
};

static void mailbox_drain(inbox *ib)
{
    mailbox *m = ib->owner;
    pthread_mutex_lock(&m->lock);
    inbox_node *list = inbox_take_all_locked(&m->in);
    pthread_mutex_unlock(&m->lock);
    while (list) {
        inbox_node *next = list->next;
        mail *x = (mail *)list;
        x->fn(x->arg);
        free(x);
        list = next;
    }
}

mailbox *mailbox_new(uv_loop_t *loop)
{
    mailbox *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    if (inbox_init(&m->in, loop, &m->lock, mailbox_drain, m) != 0) abort();
    return m;
}

bool mailbox_post(mailbox *m, mailbox_fn fn, void *arg)
{
    mail *x = xmalloc(sizeof *x);
    x->fn = fn;
    x->arg = arg;
    pthread_mutex_lock(&m->lock);
    bool posted = inbox_push_locked(&m->in, &x->node);
    pthread_mutex_unlock(&m->lock);
    if (!posted) free(x);
    return posted;
}

static void mailbox_closed(inbox *ib)
{
    mailbox *m = ib->owner;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void mailbox_close(mailbox *m)
{
    pthread_mutex_lock(&m->lock);
    inbox_mark_closed_locked(&m->in);
    pthread_mutex_unlock(&m->lock);
    mailbox_drain(&m->in);
    inbox_close_handle(&m->in, mailbox_closed);
}
