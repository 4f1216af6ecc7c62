/* serve_sync.h — with several instances on one store: the identity cache
 * following the others' changes through the audit log, and the runs'
 * heartbeat (serve_sync.c). */
#ifndef BRIGADE_SERVE_SYNC_H
#define BRIGADE_SERVE_SYNC_H

#include "identity/identity.h"
#include "runs/runs.h"

typedef struct serve_sync serve_sync;

/* Start following, and renewing the heartbeat of this instance's runs
 * (NULL, logged, if the thread cannot start). */
serve_sync *serve_sync_start(identity *id, store *st, runs *r);
/* Stop and join; NULL is fine. */
void        serve_sync_stop(serve_sync *s);

#endif
